/*
 * transformer_avx512.c - the row kernels of transformer.c with AVX-512, 16 lanes a step with
 * masked tails: layernorm forward and backward and the attention softmax backward. The same
 * formulas as the scalar reference (transformer.c) with fp32 sums in 16 lanes and FMA, so
 * results differ from it only by rounding. No threads, no checks: transformer.c does both.
 */
#include <math.h>
#include <string.h>

#include "transformer_impl.h"
#include "vec_avx512.h"

#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

MXP_INLINE void ln_fwd(mxp_dtype dt, void *y, float *mean, float *rstd, const void *x,
                       const void *w, const void *b, size_t n, float eps) {
    __m512 s = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16)
        s = _mm512_add_ps(s, mxp_ld16_mask(dt, x, i, mxp_mask16(n - i)));
    const float m = _mm512_reduce_add_ps(s) / (float)n;
    const __m512 vm = _mm512_set1_ps(m);
    __m512 v = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = mxp_mask16(n - i);
        const __m512 d = _mm512_maskz_sub_ps(k, mxp_ld16_mask(dt, x, i, k), vm);
        v = _mm512_fmadd_ps(d, d, v);
    }
    const float r = 1.0f / sqrtf(_mm512_reduce_add_ps(v) / (float)n + eps);
    const __m512 vr = _mm512_set1_ps(r);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = mxp_mask16(n - i);
        const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(mxp_ld16_mask(dt, x, i, k), vm), vr);
        mxp_st16_mask(dt, y, i, k,
                      _mm512_fmadd_ps(xh, mxp_ld16_mask(dt, w, i, k), mxp_ld16_mask(dt, b, i, k)));
    }
    *mean = m;
    *rstd = r;
}

MXP_INLINE void ln_bwd(mxp_dtype dt, void *dx, float *dw_acc, float *db_acc, const void *dy,
                       const void *x, const void *w, float mean, float rstd, size_t n) {
    const __m512 vm = _mm512_set1_ps(mean), vr = _mm512_set1_ps(rstd);
    __m512 sg = _mm512_setzero_ps(), sgx = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = mxp_mask16(n - i);
        const __m512 g = _mm512_mul_ps(mxp_ld16_mask(dt, dy, i, k), mxp_ld16_mask(dt, w, i, k));
        const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(mxp_ld16_mask(dt, x, i, k), vm), vr);
        sg = _mm512_add_ps(sg, g);
        sgx = _mm512_fmadd_ps(g, xh, sgx);
    }
    const __m512 va = _mm512_set1_ps(_mm512_reduce_add_ps(sg) / (float)n);
    const __m512 vc = _mm512_set1_ps(_mm512_reduce_add_ps(sgx) / (float)n);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = mxp_mask16(n - i);
        const __m512 d = mxp_ld16_mask(dt, dy, i, k);
        const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(mxp_ld16_mask(dt, x, i, k), vm), vr);
        const __m512 g = _mm512_mul_ps(d, mxp_ld16_mask(dt, w, i, k));
        mxp_st16_mask(
            dt, dx, i, k,
            _mm512_mul_ps(vr, _mm512_sub_ps(_mm512_sub_ps(g, va), _mm512_mul_ps(xh, vc))));
        if (dw_acc) {
            _mm512_mask_storeu_ps(dw_acc + i, k,
                                  _mm512_fmadd_ps(d, xh, _mm512_maskz_loadu_ps(k, dw_acc + i)));
            _mm512_mask_storeu_ps(db_acc + i, k,
                                  _mm512_add_ps(d, _mm512_maskz_loadu_ps(k, db_acc + i)));
        }
    }
}

MXP_INLINE void dsoftmax(mxp_dtype dt, void *ds, const float *dp, const void *p, size_t n,
                         size_t ntot, float scale) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(dp + j), mxp_ld16(dt, p, j), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(dp + j + 16), mxp_ld16(dt, p, j + 16), acc1);
    }
    for (; j < n; j += 16) {
        const __mmask16 k = mxp_mask16(n - j);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, dp + j), mxp_ld16_mask(dt, p, j, k), acc0);
    }
    const __m512 vd = _mm512_set1_ps(_mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)));
    const __m512 vs = _mm512_set1_ps(scale);
    for (j = 0; j < n; j += 16) {
        const __mmask16 k = mxp_mask16(n - j);
        const __m512 pv = mxp_ld16_mask(dt, p, j, k);
        const __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, dp + j), vd);
        mxp_st16_mask(dt, ds, j, k, _mm512_mul_ps(_mm512_mul_ps(pv, g), vs));
    }
    memset((char *)ds + n * mxp_dtype_size(dt), 0, (ntot - n) * mxp_dtype_size(dt));
}

/* One instance per dtype; the names are spelled out in full so they can be found. */
#define LN_FWD(name, dt)                                                                           \
    static void name(void *y, float *m, float *r, const void *x, const void *w, const void *b,     \
                     size_t n, float eps) {                                                        \
        ln_fwd(dt, y, m, r, x, w, b, n, eps);                                                      \
    }
#define LN_BWD(name, dt)                                                                           \
    static void name(void *dx, float *dw, float *db, const void *dy, const void *x, const void *w, \
                     float m, float r, size_t n) {                                                 \
        ln_bwd(dt, dx, dw, db, dy, x, w, m, r, n);                                                 \
    }
#define DSOFTMAX(name, dt)                                                                         \
    static void name(void *ds, const float *dp, const void *p, size_t n, size_t ntot, float s) {   \
        dsoftmax(dt, ds, dp, p, n, ntot, s);                                                       \
    }

LN_FWD(layernorm_fwd_f32_avx512, F32)
LN_FWD(layernorm_fwd_f16_avx512, F16)
LN_FWD(layernorm_fwd_bf16_avx512, BF16)
LN_BWD(layernorm_bwd_f32_avx512, F32)
LN_BWD(layernorm_bwd_f16_avx512, F16)
LN_BWD(layernorm_bwd_bf16_avx512, BF16)
DSOFTMAX(dsoftmax_f32_avx512, F32)
DSOFTMAX(dsoftmax_f16_avx512, F16)
DSOFTMAX(dsoftmax_bf16_avx512, BF16)

void mxp_tf_register_avx512(mxp_tf_table *t) {
    const mxp_tf_table s = {
        {layernorm_fwd_f32_avx512, layernorm_fwd_f16_avx512, layernorm_fwd_bf16_avx512},
        {layernorm_bwd_f32_avx512, layernorm_bwd_f16_avx512, layernorm_bwd_bf16_avx512},
        {dsoftmax_f32_avx512, dsoftmax_f16_avx512, dsoftmax_bf16_avx512}};
    *t = s;
}
