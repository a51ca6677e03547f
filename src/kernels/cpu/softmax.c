/*
 * softmax.c - row-wise softmax and log-softmax in fp32 (any input dtype, any output
 * dtype): the entry points (checks, ISA dispatch, threads over rows), the row semantics,
 * and the scalar reference kernel with libm's expf and logf. The SIMD rows are in
 * softmax_avx2.c / softmax_avx512.c. A single very long row runs on one thread.
 *
 * Row semantics, shared by every kernel (x one row of cols elements, m = max x):
 *   softmax:     y = exp(x - m) * (1 / sum exp(x - m))      (three passes: max, exp+sum, scale)
 *   log-softmax: y = (x - m) - log(sum exp(x - m))
 *   The sum is taken in blocks of MXP_REDUCE_LEAF elements, block sums added in order, so
 *   a vocabulary-sized row (50257) rounds ~(1024/lanes + cols/1024) times, not cols/lanes.
 *   -inf entries (masked) give 0 (softmax) and -inf (log-softmax).
 *   A row of only -inf (fully masked) gives all 0 and all -inf, not the NaN of 0/0: no NaN
 *   leaks from a fully masked attention row into the backward pass.
 *   A NaN anywhere in a row makes the whole row NaN; so does +inf (inf - inf), as in PyTorch.
 */
#include <math.h>
#include <stdint.h>

#include "eltwise_impl.h"

/* ---- scalar reference ---------------------------------------------------- */

MXP_INLINE void row_ref(mxp_dtype xt, mxp_dtype yt, void *y, const void *x, size_t n, int log_sm) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = mxp_ew_max(m, mxp_load_f32(xt, x, i));
    if (m == -INFINITY) {
        for (size_t i = 0; i < n; i++) mxp_store_f32(yt, y, i, log_sm ? -INFINITY : 0.0f);
        return;
    }
    /* an fp32 y holds exp(x - m) between the passes; 16-bit y recomputes it (rounding it to
     * y's dtype in between would round twice) */
    const int keep = yt == MXP_DTYPE_F32 && !log_sm;
    float sum = 0.0f;
    for (size_t b = 0; b < n; b += MXP_REDUCE_LEAF) {
        float block = 0.0f;
        for (size_t i = b; i < MXP_MIN(n, b + MXP_REDUCE_LEAF); i++) {
            const float e = expf(mxp_load_f32(xt, x, i) - m);
            block += e;
            if (keep) ((float *)y)[i] = e;
        }
        sum += block;
    }
    if (log_sm) {
        const float ls = logf(sum);
        for (size_t i = 0; i < n; i++) mxp_store_f32(yt, y, i, (mxp_load_f32(xt, x, i) - m) - ls);
        return;
    }
    const float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++) {
        const float e = keep ? ((const float *)y)[i] : expf(mxp_load_f32(xt, x, i) - m);
        mxp_store_f32(yt, y, i, e * inv);
    }
}

/* One instance per dtype pair; the names are spelled out in full so they can be found. */
#define ROW_REF(name, xt, yt)                                                                      \
    static void name(void *y, const void *x, size_t n, int log_sm) {                               \
        row_ref(xt, yt, y, x, n, log_sm);                                                          \
    }
#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

ROW_REF(softmax_f32_to_f32_ref, F32, F32)
ROW_REF(softmax_f32_to_f16_ref, F32, F16)
ROW_REF(softmax_f32_to_bf16_ref, F32, BF16)
ROW_REF(softmax_f16_to_f32_ref, F16, F32)
ROW_REF(softmax_f16_to_f16_ref, F16, F16)
ROW_REF(softmax_f16_to_bf16_ref, F16, BF16)
ROW_REF(softmax_bf16_to_f32_ref, BF16, F32)
ROW_REF(softmax_bf16_to_f16_ref, BF16, F16)
ROW_REF(softmax_bf16_to_bf16_ref, BF16, BF16)

void mxp_softmax_register_ref(mxp_ew_table *t) {
    const mxp_softmax_row_fn f[3][3] = {
        {softmax_f32_to_f32_ref, softmax_f32_to_f16_ref, softmax_f32_to_bf16_ref},
        {softmax_f16_to_f32_ref, softmax_f16_to_f16_ref, softmax_f16_to_bf16_ref},
        {softmax_bf16_to_f32_ref, softmax_bf16_to_f16_ref, softmax_bf16_to_bf16_ref}};
    for (int a = 0; a < MXP_DTYPE_COUNT; a++)
        for (int b = 0; b < MXP_DTYPE_COUNT; b++) t->softmax_row[a][b] = f[a][b];
}

/* ---- entry points --------------------------------------------------------- */

static mxp_status softmax_rows(const char *fn, int log_sm, void *y, mxp_dtype yt, const void *x,
                               mxp_dtype xt, size_t rows, size_t cols) {
    const size_t ys = mxp_dtype_size(yt), xs = mxp_dtype_size(xt);
    if (!ys || !xs)
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown dtype (x %d, y %d; use f32, f16 or bf16)", fn,
                        (int)xt, (int)yt);
    if (cols && rows > SIZE_MAX / 4 / cols)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %zu x %zu elements is too many", fn, rows, cols);
    const size_t n = rows * cols;
    if (n == 0) return MXP_OK;
    if (!y || !x) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer with %zu elements", fn, n);
    if (!(y == x && yt == xt) && mxp_overlaps(y, n * ys, x, n * xs))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: y and x overlap (only y == x with equal dtypes is allowed)", fn);

    const mxp_softmax_row_fn f = mxp_ew_table_for(mxp_isa_active())->softmax_row[xt][yt];
    const int nt = (int)MXP_MIN((size_t)mxp_ew_threads(n, MXP_EW_GRAIN_EXP), rows);
    (void)nt; /* only MXP_OMP reads it, and not at all without OpenMP */
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t i = 0; i < (int64_t)rows; i++)
        f((char *)y + (size_t)i * cols * ys, (const char *)x + (size_t)i * cols * xs, cols, log_sm);
    return MXP_OK;
}

mxp_status mxp_softmax(void *y, mxp_dtype y_type, const void *x, mxp_dtype x_type, size_t rows,
                       size_t cols) {
    return softmax_rows("mxp_softmax", 0, y, y_type, x, x_type, rows, cols);
}

mxp_status mxp_log_softmax(void *y, mxp_dtype y_type, const void *x, mxp_dtype x_type, size_t rows,
                           size_t cols) {
    return softmax_rows("mxp_log_softmax", 1, y, y_type, x, x_type, rows, cols);
}
