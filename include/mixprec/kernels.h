/*
 * mixprec/kernels.h - CPU compute kernels on raw row-major buffers.
 *
 * Every kernel has a portable scalar reference and SIMD versions for AVX2,
 * AVX-512 and AVX512-BF16; the family is chosen at run time (mxp_isa_active,
 * MIXPREC_ISA) and the work is split over mxp_num_threads() OpenMP threads.
 *
 * Precision contract (DESIGN.md "Autocast policy"):
 *  - GEMM takes fp32, bf16 or fp16 inputs and always accumulates in fp32; the
 *    result is rounded once (to nearest even) to C's dtype.
 *  - Element-wise ops ("follow") read their inputs in dtype dt, compute in
 *    fp32 and round the result to dt.
 *  - Reductions, softmax and log-softmax compute in fp32.
 *  - Results may differ from the scalar reference in the last bits where the
 *    SIMD order of additions differs (GEMM, reductions) or where a vector exp
 *    is used (GELU, softmax); tests bound the difference per dtype.
 *  - bf16 x bf16 GEMM on AVX512-BF16 (vdpbf16ps) treats fp32 subnormal inputs,
 *    partial sums and results as zero whatever MXCSR says: magnitudes below
 *    2^-126 flush to zero there, where the other families keep them.
 *
 * Worked example, a Linear layer's forward pass in bf16 with fused bias+GELU:
 *
 *     // x (B, Cin) bf16, w (Cout, Cin) bf16, b (Cout) bf16 -> y (B, Cout) bf16
 *     mxp_gemm_epilogue epi = {.bias = b, .bias_dtype = MXP_DTYPE_BF16,
 *                              .bias_mode = MXP_BIAS_COL, .act = MXP_ACT_GELU_TANH};
 *     mxp_gemm(MXP_NO_TRANS, MXP_TRANS, B, Cout, Cin, 1.0f, x, MXP_DTYPE_BF16, Cin,
 *              w, MXP_DTYPE_BF16, Cin, 0.0f, y, MXP_DTYPE_BF16, Cout, &epi);
 */
#ifndef MIXPREC_KERNELS_H
#define MIXPREC_KERNELS_H

#include "mixprec/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- GEMM -------------------------------------------------------------- */

typedef enum mxp_trans { MXP_NO_TRANS = 0, MXP_TRANS = 1 } mxp_trans;

/* Activation applied by the GEMM epilogue (and available element-wise). */
typedef enum mxp_act {
    MXP_ACT_NONE = 0,
    MXP_ACT_RELU = 1,
    MXP_ACT_GELU_TANH = 2 /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} mxp_act;

typedef enum mxp_bias_mode {
    MXP_BIAS_NONE = 0,
    MXP_BIAS_COL = 1, /* bias (N): bias[j] added to C[i][j] (Linear) */
    MXP_BIAS_ROW = 2  /* bias (M): bias[i] added to C[i][j] (conv as W x im2col) */
} mxp_bias_mode;

/* What happens to each result before it is stored (all optional; a zeroed
 * struct or NULL means none):
 *     z = alpha * op(A) op(B) + beta * C + bias;   pre_act = z;   C = act(z) */
typedef struct mxp_gemm_epilogue {
    const void *bias; /* (N) or (M) per bias_mode, dtype bias_dtype */
    mxp_dtype bias_dtype;
    mxp_bias_mode bias_mode;
    mxp_act act;
    void *pre_act; /* (M, ld_pre) in C's dtype, or NULL: z before act,
                      kept for the backward pass */
    size_t ld_pre;
} mxp_gemm_epilogue;

/* C = act(alpha * op(A) op(B) + beta * C + bias), all row-major.
 *   op(A) is (M, K): A is (M, lda) if ta == MXP_NO_TRANS, else (K, lda) read transposed.
 *   op(B) is (K, N): B is (K, ldb) if tb == MXP_NO_TRANS, else (N, ldb) read transposed.
 *   C is (M, ldc).
 * a_type, b_type: F32, BF16 or F16, independently. c_type: any of the three.
 * Accumulation is in fp32 whatever the dtypes; bf16 x bf16 uses vdpbf16ps
 * where the CPU has it, fp16 is widened to fp32 while packing.
 * beta == 0 means C is not read (it may hold NaN). K == 0 gives
 * act(beta * C + bias). C must not overlap A, B, bias or pre_act.
 * Errors: MXP_ERR_INVALID_ARG (NULL with a nonzero size, a leading dimension
 * smaller than its row, unknown enum), MXP_ERR_DTYPE, MXP_ERR_NOMEM (packing
 * buffers). */
MXP_API mxp_status mxp_gemm(mxp_trans ta, mxp_trans tb, size_t M, size_t N, size_t K, float alpha,
                            const void *A, mxp_dtype a_type, size_t lda, const void *B,
                            mxp_dtype b_type, size_t ldb, float beta, void *C, mxp_dtype c_type,
                            size_t ldc, const mxp_gemm_epilogue *epi);

/* The GEMM kernel the active ISA uses for these input dtypes, for reports:
 * e.g. "gemm_bf16_f32acc_avx512bf16 14x32". A per-thread buffer, valid until
 * the next call on the same thread. */
MXP_API const char *mxp_gemm_kernel_name(mxp_dtype a_type, mxp_dtype b_type);

/* mxp_gemm keeps its packing workspace between calls (a fresh block per call
 * would cost page faults). This returns it to the allocator hook that made
 * it, e.g. before a test checks that allocations and frees balance, or at
 * shutdown. Safe to call at any time; if a GEMM on another thread is using
 * the block at that moment, nothing is freed (call again later). */
MXP_API void mxp_gemm_release_workspace(void);

/* ---- element-wise ("follow": dtype dt in and out, fp32 inside) ----------- */
/* All take n elements; y may alias an input exactly (in place), no other
 * overlap. Errors: MXP_ERR_INVALID_ARG (NULL with n > 0), MXP_ERR_DTYPE. */

MXP_API mxp_status mxp_add(void *y, const void *a, const void *b, mxp_dtype dt,
                           size_t n); /* y = a + b */
MXP_API mxp_status mxp_mul(void *y, const void *a, const void *b, mxp_dtype dt,
                           size_t n); /* y = a * b */
MXP_API mxp_status mxp_scale(void *y, const void *x, float s, mxp_dtype dt,
                             size_t n);                                      /* y = s * x */
MXP_API mxp_status mxp_relu(void *y, const void *x, mxp_dtype dt, size_t n); /* y = max(x, 0) */
MXP_API mxp_status mxp_gelu_tanh(void *y, const void *x, mxp_dtype dt, size_t n);
/* dx = dy * (x > 0) */
MXP_API mxp_status mxp_relu_backward(void *dx, const void *dy, const void *x, mxp_dtype dt,
                                     size_t n);
/* dx = dy * gelu_tanh'(x) */
MXP_API mxp_status mxp_gelu_tanh_backward(void *dx, const void *dy, const void *x, mxp_dtype dt,
                                          size_t n);

/* ---- reductions (fp32 accumulation, fp32 result) ----------------------- */

typedef enum mxp_reduce_op {
    MXP_REDUCE_SUM = 0,
    MXP_REDUCE_MEAN = 1,
    MXP_REDUCE_MAX = 2,  /* NaN if any input is NaN; -inf for n == 0 */
    MXP_REDUCE_SUMSQ = 3 /* sum of x^2 (the squared L2 norm) */
} mxp_reduce_op;

/* *out = op over x[0..n). The order of additions depends only on n and the
 * ISA, never on the thread count. MEAN of 0 elements is NaN.
 * For the three reductions: out must not overlap x. Errors: MXP_ERR_INVALID_ARG
 * (unknown op, NULL with a nonzero size, overlap), MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_reduce(mxp_reduce_op op, float *out, const void *x, mxp_dtype dt, size_t n);

/* out[i] = op over row i of x (rows, cols): out is (rows). */
MXP_API mxp_status mxp_reduce_rows(mxp_reduce_op op, float *out, const void *x, mxp_dtype dt,
                                   size_t rows, size_t cols);

/* out[j] = op over column j of x (rows, cols): out is (cols) (a bias gradient). */
MXP_API mxp_status mxp_reduce_cols(mxp_reduce_op op, float *out, const void *x, mxp_dtype dt,
                                   size_t rows, size_t cols);

/* ---- softmax (fp32 inside) --------------------------------------------- */

/* Row-wise over x (rows, cols) in x_type, written to y (rows, cols) in y_type:
 * y = exp(x - max) / sum exp(x - max). y may be x when the dtypes match.
 * -inf entries (masked) give 0; a row of only -inf (fully masked) gives all 0,
 * not NaN; a NaN or +inf in a row makes that whole row NaN.
 * Errors: MXP_ERR_INVALID_ARG (NULL with a nonzero size, partial overlap),
 * MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_softmax(void *y, mxp_dtype y_type, const void *x, mxp_dtype x_type,
                               size_t rows, size_t cols);

/* y = x - max - log(sum exp(x - max)), row-wise, as mxp_softmax (-inf where
 * softmax gives 0 for a masked entry or a fully masked row). Errors as
 * mxp_softmax. */
MXP_API mxp_status mxp_log_softmax(void *y, mxp_dtype y_type, const void *x, mxp_dtype x_type,
                                   size_t rows, size_t cols);

/* ---- loss scaling ------------------------------------------------------ */

/* One pass: dst = src * inv_scale (in fp32, rounded to dst_type) and
 * *found_inf |= 1 if any stored result is inf or NaN (never cleared here, so
 * one flag can collect over many tensors). dst may be src (same dtype) for
 * in place; src 16-bit with dst F32 unscales into fp32 master gradients.
 * Errors: MXP_ERR_INVALID_ARG (NULL, overlap), MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_unscale_check(void *dst, mxp_dtype dst_type, const void *src,
                                     mxp_dtype src_type, size_t n, float inv_scale, int *found_inf);

#ifdef __cplusplus
}
#endif
#endif
