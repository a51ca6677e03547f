/*
 * mixprec/tensor.h - strided n-dimensional views of typed memory, and the
 * per-step arena they are usually allocated from.
 *
 * A tensor is a small struct the caller can read: dtype, device, shape and
 * strides (in elements, not bytes), and a pointer to its first element. It
 * either owns its storage (made by mxp_tensor_create, released by
 * mxp_tensor_free), borrows it (mxp_tensor_wrap over caller memory), or is a
 * view of another tensor (reshape, slice, transpose, permute, select): views
 * never own storage and must not outlive what they view.
 *
 *     mxp_tensor *x;                                   // (B, C, H, W) = (8, 3, 28, 28)
 *     mxp_tensor_create(&x, MXP_DTYPE_BF16, 4, (int64_t[]){8, 3, 28, 28});
 *     mxp_tensor xt;                                   // (B, C, W, H) view, no copy
 *     mxp_tensor_transpose(&xt, x, 2, 3);
 *     mxp_tensor_free(x);
 *
 * The arena serves one training step: every tensor of the step is carved
 * out of one block, and mxp_arena_reset releases them all at once. After the
 * first step the arena holds a single block as large as the step's peak, so
 * later steps do no allocation at all.
 */
#ifndef MIXPREC_TENSOR_H
#define MIXPREC_TENSOR_H

#include <stdint.h>

#include "mixprec/numerics.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MXP_MAX_DIMS 6

/* Where a tensor's memory lives. Append-only. */
typedef enum mxp_device {
    MXP_DEVICE_CPU = 0,
    MXP_DEVICE_CUDA = 1 /* reserved for the CUDA backend; nothing allocates it yet */
} mxp_device;

typedef struct mxp_tensor {
    mxp_dtype dtype;
    mxp_device device;
    int ndim;                     /* 0 (a scalar) .. MXP_MAX_DIMS */
    int64_t shape[MXP_MAX_DIMS];  /* sizes, >= 0; entries past ndim are 1 */
    int64_t stride[MXP_MAX_DIMS]; /* element strides (may be 0 for broadcast) */
    void *data;                   /* the element at index (0, ..., 0) */
    void *owned;                  /* storage to release on free, or NULL */
} mxp_tensor;

/* Allocate a contiguous (row-major) tensor and its storage on the CPU,
 * contents uninitialised. *out is set only on success; the caller frees it
 * with mxp_tensor_free. Errors: MXP_ERR_INVALID_ARG (ndim out of range, a
 * negative size), MXP_ERR_DTYPE, MXP_ERR_NOMEM (also when the byte count
 * overflows). */
MXP_API mxp_status mxp_tensor_create(mxp_tensor **out, mxp_dtype dtype, int ndim,
                                     const int64_t *shape);

/* Free a tensor from mxp_tensor_create and the storage it owns.
 * mxp_tensor_free(NULL) does nothing. */
MXP_API void mxp_tensor_free(mxp_tensor *t);

/* Initialise a caller-owned struct that borrows `data` (not freed by
 * anyone here). strides NULL means contiguous row-major. The caller keeps the
 * memory alive as long as the tensor is used. Errors: MXP_ERR_INVALID_ARG,
 * MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_tensor_wrap(mxp_tensor *t, void *data, mxp_dtype dtype, int ndim,
                                   const int64_t *shape, const int64_t *strides);

/* Elements (product of the shape; 1 for a scalar, 0 if any size is 0). */
MXP_API int64_t mxp_tensor_numel(const mxp_tensor *t);

/* Bytes the elements occupy when contiguous: numel * dtype size. */
MXP_API size_t mxp_tensor_nbytes(const mxp_tensor *t);

/* 1 when the strides are those of a row-major tensor of this shape
 * (size-1 dimensions may have any stride), else 0. */
MXP_API int mxp_tensor_is_contiguous(const mxp_tensor *t);

/* Address of the element at idx[0..ndim-1]; NULL if an index is out of range. */
MXP_API void *mxp_tensor_ptr(const mxp_tensor *t, const int64_t *idx);

/* ---- views: *view is a caller-owned struct; src is not changed ---------- */

/* Same elements, new shape; one size may be -1 (inferred). Requires a
 * contiguous src. Errors: MXP_ERR_SHAPE (element counts differ, or src not
 * contiguous), MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_tensor_reshape(mxp_tensor *view, const mxp_tensor *src, int ndim,
                                      const int64_t *shape);

/* Elements start, start+step, ... (len of them) along dim; step >= 1.
 * Errors: MXP_ERR_INVALID_ARG (out of range). */
MXP_API mxp_status mxp_tensor_slice(mxp_tensor *view, const mxp_tensor *src, int dim, int64_t start,
                                    int64_t len, int64_t step);

/* Swap two dimensions. Errors: MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_tensor_transpose(mxp_tensor *view, const mxp_tensor *src, int d0, int d1);

/* Reorder dimensions: view dim i is src dim perm[i] (perm a permutation of
 * 0..ndim-1). Errors: MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_tensor_permute(mxp_tensor *view, const mxp_tensor *src, const int *perm);

/* Fix index `index` of dim and drop that dimension. Errors: MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_tensor_select(mxp_tensor *view, const mxp_tensor *src, int dim,
                                     int64_t index);

/* ---- data ---------------------------------------------------------------- */

/* Copy src into dst elementwise, converting dtype (round to nearest even,
 * as mxp_convert). Any strides for src (stride 0 broadcasts); shapes must be
 * equal. No two indices of dst may name the same element: taking dst's dims
 * of size > 1 by increasing |stride|, each |stride| must exceed the elements
 * the dims before it span (this refuses stride 0 and self-overlapping
 * layouts, and a few exotic interleavings that never collide). dst and src
 * must not overlap in memory unless they are the same view (then nothing is
 * done). Errors: MXP_ERR_SHAPE, MXP_ERR_INVALID_ARG (overlap, a
 * self-overlapping dst), MXP_ERR_BACKEND (a tensor not on the CPU). */
MXP_API mxp_status mxp_tensor_copy(mxp_tensor *dst, const mxp_tensor *src);

/* Set every element to value (rounded to the dtype).
 * Errors: MXP_ERR_INVALID_ARG, MXP_ERR_BACKEND (a tensor not on the CPU). */
MXP_API mxp_status mxp_tensor_fill(mxp_tensor *t, float value);

/* "bf16 (8, 3, 28, 28)" into buf (always NUL-terminated). Returns buf. */
MXP_API const char *mxp_tensor_describe(const mxp_tensor *t, char *buf, size_t size);

/* ---- the per-step arena ------------------------------------------------ */

typedef struct mxp_arena mxp_arena_t;

/* An arena whose first block holds `capacity` bytes (0: grow on demand).
 * Errors: MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_arena_create(mxp_arena_t **out, size_t capacity);

/* Release the arena and everything allocated from it. NULL does nothing. */
MXP_API void mxp_arena_free(mxp_arena_t *a);

/* `size` bytes aligned to 64 from the arena, valid until the next reset or
 * free. Grows by adding a block when full; NULL (and MXP_ERR_NOMEM as the
 * last error) if that allocation fails. size 0 returns a valid unique pointer. */
MXP_API void *mxp_arena_alloc(mxp_arena_t *a, size_t size);

/* Release everything allocated since the last reset. If the arena had to
 * grow, its blocks are replaced by one block of the peak size, so the next
 * step of the same shape needs no allocation. */
MXP_API void mxp_arena_reset(mxp_arena_t *a);

/* Bytes handed out since the last reset, the most ever handed out between
 * resets, and the bytes the arena holds from the allocator. */
MXP_API size_t mxp_arena_used(const mxp_arena_t *a);
MXP_API size_t mxp_arena_peak(const mxp_arena_t *a);
MXP_API size_t mxp_arena_capacity(const mxp_arena_t *a);

/* A contiguous CPU tensor whose struct and storage both live in the arena
 * (so it needs no free). Errors as mxp_tensor_create. */
MXP_API mxp_status mxp_tensor_arena(mxp_arena_t *a, mxp_tensor **out, mxp_dtype dtype, int ndim,
                                    const int64_t *shape);

#ifdef __cplusplus
}
#endif
#endif
