/*
 * tensor_impl.h - what tensor.c shares with arena.c: planning the layout of a
 * new contiguous tensor (checks and overflow-safe sizes) and filling in its
 * struct. Never installed.
 */
#ifndef MIXPREC_TENSOR_IMPL_H
#define MIXPREC_TENSOR_IMPL_H

#include "../base/base_impl.h"
#include "../numerics/numerics_impl.h"
#include "mixprec/tensor.h"

/* Check dtype, ndim and shape for a new contiguous tensor and compute its
 * row-major strides (stride[0..MXP_MAX_DIMS-1]) and byte count. `fn` names
 * the public caller for the message. Errors: MXP_ERR_INVALID_ARG (ndim out of
 * range, NULL shape, a negative size), MXP_ERR_DTYPE, MXP_ERR_NOMEM (the
 * layout would span more than PTRDIFF_MAX bytes). */
mxp_status mxp_tensor_plan(const char *fn, mxp_dtype dtype, int ndim, const int64_t *shape,
                           int64_t *stride, size_t *nbytes);

/* Fill *t as a CPU tensor over data with a shape and strides from
 * mxp_tensor_plan; owned is set to NULL. */
void mxp_tensor_init(mxp_tensor *t, void *data, mxp_dtype dtype, int ndim, const int64_t *shape,
                     const int64_t *stride);

#endif
