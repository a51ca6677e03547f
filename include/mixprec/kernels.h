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

/* ---- convolution by im2col (NHWC activations) --------------------------- */
/* Activations are NHWC, (B, H, W, C); a conv weight is (Cout, KH, KW, Cin), so
 * that a window of the input is one row of the im2col matrix and the conv is
 * one GEMM: y (B*OH*OW, Cout) = cols (B*OH*OW, KH*KW*Cin) x W^T. */
typedef struct mxp_conv2d_geom {
    int64_t B, H, W, C;          /* input (B, H, W, C) */
    int64_t KH, KW, stride, pad; /* square stride and symmetric zero padding */
    int64_t OH, OW;              /* output (B, OH, OW, Cout): (H + 2 pad - KH) / stride + 1 */
} mxp_conv2d_geom;

/* Fill g from the sizes and compute OH, OW. Errors: MXP_ERR_INVALID_ARG (a size
 * < 1, pad < 0, stride < 1), MXP_ERR_SHAPE (the kernel does not fit the padded input). */
MXP_API mxp_status mxp_conv2d_geom_init(mxp_conv2d_geom *g, int64_t B, int64_t H, int64_t W,
                                        int64_t C, int64_t KH, int64_t KW, int64_t stride,
                                        int64_t pad);

/* cols (B*OH*OW, KH*KW*C) from x (B, H, W, C), both in dt; zero where a
 * window covers padding. Pure copies: exact in every dtype. cols must not
 * overlap x. Errors: MXP_ERR_INVALID_ARG, MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_im2col(void *cols, const void *x, mxp_dtype dt, const mxp_conv2d_geom *g);

/* The adjoint of im2col: dx (B, H, W, C) = for each input element, the sum of
 * the dcols (B*OH*OW, KH*KW*C) entries that copied it, accumulated in fp32
 * in a fixed order and rounded once to dt; dx is overwritten (elements no
 * window reads get 0). Errors: MXP_ERR_INVALID_ARG, MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_col2im(void *dx, const void *dcols, mxp_dtype dt, const mxp_conv2d_geom *g);

/* ---- max pooling (NHWC, no padding) --------------------------------------- */

/* y (B, OH, OW, C) = max of x (B, H, W, C) over K x K windows moved by
 * stride, OH = (H - K) / stride + 1. argmax (B, OH, OW, C), if not NULL,
 * receives the flat index h * W + w of the chosen element (the first maximum
 * in row-major window order; a NaN wins and propagates). Exact in every dtype.
 * Errors: MXP_ERR_INVALID_ARG (K or stride < 1, K > H or W), MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_maxpool2d_forward(void *y, int32_t *argmax, const void *x, mxp_dtype dt,
                                         int64_t B, int64_t H, int64_t W, int64_t C, int64_t K,
                                         int64_t stride);

/* dx (B, H, W, C) = dy (B, OH, OW, C) routed to the argmax of each window,
 * 0 elsewhere; where windows overlap (stride < K) contributions add in fp32
 * and dx is rounded once to dt. dx is overwritten. Errors as forward. */
MXP_API mxp_status mxp_maxpool2d_backward(void *dx, const void *dy, const int32_t *argmax,
                                          mxp_dtype dt, int64_t B, int64_t H, int64_t W, int64_t C,
                                          int64_t K, int64_t stride);

/* ---- softmax cross-entropy (fp32 inside) ---------------------------------- */

/* Mean over B rows of logits (B, V) (dtype dt) of -log softmax(logits)[label]:
 * *loss = (1/B) sum_i (logsumexp(x_i) - x_i[labels[i]]), all in fp32 with the
 * max subtracted. probs (B, V) fp32, if not NULL, receives softmax(x) for the
 * backward pass. A label outside [0, V) is an error (MXP_ERR_INVALID_ARG,
 * naming the row), checked before any work. NaN or inf logits give a
 * non-finite loss (data for the caller, not an error). */
MXP_API mxp_status mxp_cross_entropy_forward(float *loss, float *probs, const void *logits,
                                             mxp_dtype dt, const int32_t *labels, int64_t B,
                                             int64_t V);

/* dlogits (B, V) in dt = (scale / B) * (probs - onehot(labels)), computed in
 * fp32 and rounded once; scale is the upstream gradient of the loss (the loss
 * scale during mixed-precision training). Errors as forward. */
MXP_API mxp_status mxp_cross_entropy_backward(void *dlogits, mxp_dtype dt, const float *probs,
                                              const int32_t *labels, int64_t B, int64_t V,
                                              float scale);

/* ---- dropout -------------------------------------------------------------- */

/* y = x * keep / (1 - p), keep[i] = 1 when the Philox uniform for
 * (seed, offset + i) is >= p, else 0; mask (n) receives keep. The same
 * (seed, offset) gives the same mask on any ISA and thread count. p in
 * [0, 1); p == 0 copies. y may be x. Errors: MXP_ERR_INVALID_ARG, MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_dropout_forward(void *y, uint8_t *mask, const void *x, mxp_dtype dt,
                                       size_t n, float p, uint64_t seed, uint64_t offset);

/* dx = dy * mask / (1 - p). dx may be dy. Errors as forward. */
MXP_API mxp_status mxp_dropout_backward(void *dx, const void *dy, const uint8_t *mask, mxp_dtype dt,
                                        size_t n, float p);

/* ---- optimizer updates (fp32 arithmetic, fused cast of the working copy) --- */

/* The memory one update touches, n elements each:
 *   master  fp32 master weights, updated in place; NULL when master weights
 *           are off, and then the update is applied to work directly (and is
 *           rounded to work_dtype: the failure the source document shows).
 *   work    the working copy in work_dtype, rewritten from the new master (the
 *           cast cache, one rounding to nearest even). May be the same memory
 *           as master when work_dtype is F32.
 *   grad    gradients in grad_dtype, read as grad * grad_mul in fp32
 *           (grad_mul = 1 / loss scale x clip coefficient: the unscale is
 *           fused into the read).
 * Counters (either may be NULL), for the numerics report:
 *   *n_updated += elements whose fp32 update was nonzero;
 *   *n_lost    += of those, elements where round(work_old + update) in
 *                 work_dtype equals work_old: the update rounding throws away
 *                 when the weights are kept only in work_dtype (without master
 *                 weights: the stored weight did not move, whatever the rounding).
 * Stochastic rounding (stochastic != 0; only with master == NULL and work_dtype
 * F16 or BF16, else MXP_ERR_INVALID_ARG): the new weight w_new (fp32, the old
 * weight widened plus the update, the same fp32 operations as above) is stored
 * as mxp_format_encode_sr(format of work_dtype, w_new, r_i), r_i = random word
 * (sr_offset + i) of the Philox stream keyed by sr_seed (word w is element
 * w % 4 of mxp_philox4x32(sr_seed, w / 4): mxp_convert_sr's words). Rounds up
 * with probability (w_new - lo) / (hi - lo), so the expected stored weight is
 * w_new and updates below half an ulp survive on average. The bits do not
 * depend on thread count, ISA or how a buffer is split (give each split its
 * own sr_offset); two updates must not share (sr_seed, word) or their
 * roundings correlate. stochastic == 0: round to nearest even, sr_* ignored.
 * Arithmetic follows PyTorch's torch.optim (foreach=False) in fp32. */
typedef struct mxp_update_io {
    float *master; /* (n) or NULL */
    void *work;    /* (n) */
    mxp_dtype work_dtype;
    const void *grad; /* (n) */
    mxp_dtype grad_dtype;
    float grad_mul;
    size_t n;
    uint64_t *n_updated; /* optional */
    uint64_t *n_lost;    /* optional */
    int stochastic;      /* round work stochastically (master == NULL, 16-bit work only) */
    uint64_t sr_seed;    /* the Philox key of this update */
    uint64_t sr_offset;  /* element i uses word sr_offset + i */
} mxp_update_io;

/* SGD as torch.optim.SGD: g += weight_decay * w; with momentum:
 * buf = g on the first step, else momentum * buf + (1 - dampening) * g;
 * g = nesterov ? g + momentum * buf : buf; w -= lr * g. */
typedef struct mxp_sgd_hparams {
    float lr, momentum, dampening, weight_decay;
    int nesterov;
} mxp_sgd_hparams;

/* momentum_buf (n) fp32, required when momentum != 0 (else may be NULL);
 * first_step != 0 initialises it from g. Errors: MXP_ERR_INVALID_ARG
 * (NULL buffers, overlap, stochastic with master weights or f32 work), MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_sgd_update(const mxp_update_io *io, float *momentum_buf,
                                  const mxp_sgd_hparams *h, int first_step);

/* AdamW as torch.optim.AdamW: w *= 1 - lr * weight_decay; m = b1 m + (1 - b1) g;
 * v = b2 v + (1 - b2) g^2; w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
 * t = step (>= 1). */
typedef struct mxp_adamw_hparams {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;
} mxp_adamw_hparams;

/* m, v (n) fp32 moments. Errors: MXP_ERR_INVALID_ARG (NULL, step < 1,
 * overlap, stochastic with master weights or f32 work), MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_adamw_update(const mxp_update_io *io, float *m, float *v,
                                    const mxp_adamw_hparams *h);

/* ---- transformer kernels (gpt) ---------------------------------------------- */
/* Activations are row-major (B, T, C) (rows = B * T); dt is the working
 * dtype (F32, BF16 or F16) of inputs and outputs; statistics, softmax and
 * every sum are fp32. Results do not depend on the thread count. */

/* y (rows, cols) = (x - mean) * rstd * w + b, per row, with mean and
 * rstd = 1 / sqrt(var + eps) (biased variance) computed in fp32 from x and
 * written to mean, rstd (rows) fp32 when not NULL (kept for backward).
 * x, w (cols), b (cols) and y in dt; y rounded once. y must not overlap x.
 * Errors: MXP_ERR_INVALID_ARG (NULL with a nonzero size, eps <= 0), MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_layernorm_forward(void *y, float *mean, float *rstd, const void *x,
                                         const void *w, const void *b, mxp_dtype dt, size_t rows,
                                         size_t cols, float eps);

/* dx (rows, cols) in dt, overwritten; dw, db (cols) fp32, ADDED to (+=) in an
 * order fixed by rows and cols alone. From dy, x (rows, cols), w (cols) in dt
 * and the forward's mean, rstd. dw or db may be NULL (not wanted).
 * Errors: as forward. */
MXP_API mxp_status mxp_layernorm_backward(void *dx, float *dw, float *db, const void *dy,
                                          const void *x, const float *mean, const float *rstd,
                                          const void *w, mxp_dtype dt, size_t rows, size_t cols);

/* Causal multi-head self-attention. qkv (B, T, 3C) holds per token [q | k | v],
 * head h in columns h*hd .. h*hd + hd - 1 of each (hd = C / NH). For each
 * (b, h): S = q k^T / sqrt(hd) (inputs in dt, fp32 accumulation), entries
 * above the diagonal masked, P = softmax(S) in fp32 and rounded to dt,
 * out = P v (fp32 accumulation) rounded to dt, written to out (B, T, C) at
 * head h's columns. att (B, NH, T, T) in dt receives P when not NULL (the
 * backward needs it; entries above the diagonal are 0).
 * Errors: MXP_ERR_INVALID_ARG (a size < 1, C not a multiple of NH, NULL),
 * MXP_ERR_DTYPE, MXP_ERR_NOMEM (scratch). */
MXP_API mxp_status mxp_attention_forward(void *out, void *att, const void *qkv, mxp_dtype dt,
                                         int64_t B, int64_t T, int64_t C, int64_t NH);

/* dqkv (B, T, 3C) in dt, overwritten: the gradient of the forward above from
 * dout (B, T, C), the forward's qkv and att. dP = dout v^T (fp32 accumulation),
 * dS = P * (dP - rowsum(dP * P)) / sqrt(hd) in fp32 and rounded to dt (the
 * input of the two products that follow, as under PyTorch's autocast),
 * dq = dS k, dk = dS^T q, dv = P^T dout, each accumulated in fp32 and rounded
 * once. Errors: as forward. */
MXP_API mxp_status mxp_attention_backward(void *dqkv, const void *dout, const void *qkv,
                                          const void *att, mxp_dtype dt, int64_t B, int64_t T,
                                          int64_t C, int64_t NH);

/* x (B, T, C) in dt = wte[tokens[b][t]] + wpe[t], added in fp32 and rounded
 * once; wte (V, C), wpe (>= T, C) in dt; tokens (B, T). A token outside
 * [0, V) is MXP_ERR_INVALID_ARG naming its position, checked before any work.
 * Errors: also MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_embedding_forward(void *x, const int32_t *tokens, const void *wte,
                                         const void *wpe, mxp_dtype dt, int64_t B, int64_t T,
                                         int64_t C, int64_t V);

/* dwte (V, C) fp32 += the rows of dx (B, T, C) (dt) scattered by token, and
 * dwpe (T, C) fp32 += dx summed over the batch; either may be NULL. The sums
 * run in an order fixed by the shapes (never by the thread count).
 * Errors: as forward (tokens are not re-checked). */
MXP_API mxp_status mxp_embedding_backward(float *dwte, float *dwpe, const void *dx,
                                          const int32_t *tokens, mxp_dtype dt, int64_t B, int64_t T,
                                          int64_t C, int64_t V);

/* ---- value census (numerics statistics) ---------------------------------- */

/* counts[c] += number of the n elements of x (dtype dt) in class c:
 * 0 zero (either sign), 1 subnormal, 2 normal, 3 inf or NaN. Exact.
 * Errors: MXP_ERR_INVALID_ARG, MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_count_classes(uint64_t counts[4], const void *x, mxp_dtype dt, size_t n);

#ifdef __cplusplus
}
#endif
#endif
