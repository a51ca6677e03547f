/*
 * transformer_impl.h - the row kernels of transformer.c (layernorm forward and backward, the
 * softmax backward of attention) as a per-dtype table: the scalar reference fills it, the
 * AVX-512 file replaces the slots it implements. transformer.c owns the loops, threads and
 * checks. Never installed.
 */
#ifndef MIXPREC_TRANSFORMER_IMPL_H
#define MIXPREC_TRANSFORMER_IMPL_H

#include <stddef.h>

#include "mixprec/kernels.h"

/* One row of layernorm: y (n) = (x - mean) * rstd * w + b, mean and rstd = 1 / sqrt(var +
 * eps) (biased variance, two passes over x) in fp32, written to *mean and *rstd. */
typedef void (*mxp_ln_fwd_row_fn)(void *y, float *mean, float *rstd, const void *x, const void *w,
                                  const void *b, size_t n, float eps);

/* One row of layernorm backward: with xhat = (x - mean) rstd and g = dy w,
 * dx (n) = rstd (g - mean(g) - xhat mean(g xhat)), rounded once to dt; and, when dw_acc and
 * db_acc are not NULL, dw_acc (n) += dy xhat, db_acc (n) += dy in fp32. */
typedef void (*mxp_ln_bwd_row_fn)(void *dx, float *dw_acc, float *db_acc, const void *dy,
                                  const void *x, const void *w, float mean, float rstd, size_t n);

/* One row of the attention softmax backward: d = sum_{j<n} dp[j] p[j] (fp32), then
 * ds[j] = p[j] (dp[j] - d) scale for j < n and ds[j] = 0 for n <= j < ntot, rounded to dt.
 * dp (n) fp32, p (n) and ds (ntot) in dt. */
typedef void (*mxp_dsoftmax_row_fn)(void *ds, const float *dp, const void *p, size_t n, size_t ntot,
                                    float scale);

typedef struct mxp_tf_table {
    mxp_ln_fwd_row_fn ln_fwd[MXP_DTYPE_COUNT];
    mxp_ln_bwd_row_fn ln_bwd[MXP_DTYPE_COUNT];
    mxp_dsoftmax_row_fn dsoftmax[MXP_DTYPE_COUNT];
} mxp_tf_table;

void mxp_tf_register_avx512(mxp_tf_table *t);

#endif
