/*
 * softmax_avx2.c - one row of softmax / log-softmax with AVX2 and the vector exp of
 * vec_avx2.h (~1 ulp; the reference uses libm): the three passes of softmax.c, which
 * states the row semantics; the tail goes through the same vector code with its padding
 * lanes neutralised. Rows, threads and checks are softmax.c's.
 */
#include <math.h>

#include "vec_avx2.h"

/* 8 elements from i, of which k are real: the full load, or the partial one */
MXP_INLINE __m256 ld(mxp_dtype dt, const void *p, size_t i, size_t k) {
    return k == 8 ? mxp_ld8(dt, p, i) : mxp_ld8_part(dt, p, i, k);
}

MXP_INLINE void st(mxp_dtype dt, void *p, size_t i, size_t k, __m256 v) {
    if (k == 8)
        mxp_st8(dt, p, i, v);
    else
        mxp_st8_part(dt, p, i, k, v);
}

MXP_INLINE void row(mxp_dtype xt, mxp_dtype yt, void *y, const void *x, size_t n, int log_sm) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    size_t i;

    /* pass 1: the maximum, NaN if any element is NaN */
    const float m = mxp_row_max8(xt, x, n);
    if (m == -INFINITY) { /* fully masked row */
        const __m256 fill = log_sm ? ninf : _mm256_setzero_ps();
        for (i = 0; i < n; i += 8) st(yt, y, i, MXP_MIN((size_t)8, n - i), fill);
        return;
    }
    const __m256 vm = _mm256_set1_ps(m);

    /* pass 2: sum of exp(x - m), in blocks of MXP_REDUCE_LEAF (softmax.c); an fp32 y keeps
     * the exps for pass 3 */
    const int keep = yt == MXP_DTYPE_F32 && !log_sm;
    __m256 total = _mm256_setzero_ps();
    for (size_t b = 0; b < n; b += MXP_REDUCE_LEAF) {
        const size_t end = MXP_MIN(n, b + MXP_REDUCE_LEAF);
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        for (i = b; i + 16 <= end; i += 16) {
            const __m256 e0 = mxp_exp8(_mm256_sub_ps(mxp_ld8(xt, x, i), vm));
            const __m256 e1 = mxp_exp8(_mm256_sub_ps(mxp_ld8(xt, x, i + 8), vm));
            s0 = _mm256_add_ps(s0, e0);
            s1 = _mm256_add_ps(s1, e1);
            if (keep) {
                _mm256_storeu_ps((float *)y + i, e0);
                _mm256_storeu_ps((float *)y + i + 8, e1);
            }
        }
        for (; i < end; i += 8) { /* only in the last block: LEAF is a multiple of 16 */
            const size_t k = MXP_MIN((size_t)8, end - i);
            const __m256 e =
                _mm256_and_ps(mxp_exp8(_mm256_sub_ps(ld(xt, x, i, k), vm)), mxp_lanes8(k));
            s0 = _mm256_add_ps(s0, e);
            if (keep) st(MXP_DTYPE_F32, y, i, k, e);
        }
        total = _mm256_add_ps(total, _mm256_add_ps(s0, s1));
    }
    const float sum = mxp_hsum8(total);

    /* pass 3 */
    if (log_sm) {
        const __m256 ls = _mm256_set1_ps(logf(sum));
        for (i = 0; i < n; i += 8) {
            const size_t k = MXP_MIN((size_t)8, n - i);
            st(yt, y, i, k, _mm256_sub_ps(_mm256_sub_ps(ld(xt, x, i, k), vm), ls));
        }
        return;
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i < n; i += 8) {
        const size_t k = MXP_MIN((size_t)8, n - i);
        const __m256 e =
            keep ? ld(MXP_DTYPE_F32, y, i, k) : mxp_exp8(_mm256_sub_ps(ld(xt, x, i, k), vm));
        st(yt, y, i, k, _mm256_mul_ps(e, inv));
    }
}

/* One instance per dtype pair; the names are spelled out in full so they can be found. */
#define ROW(name, xt, yt)                                                                          \
    static void name(void *y, const void *x, size_t n, int log_sm) { row(xt, yt, y, x, n, log_sm); }
#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

ROW(softmax_f32_to_f32_avx2, F32, F32)
ROW(softmax_f32_to_f16_avx2, F32, F16)
ROW(softmax_f32_to_bf16_avx2, F32, BF16)
ROW(softmax_f16_to_f32_avx2, F16, F32)
ROW(softmax_f16_to_f16_avx2, F16, F16)
ROW(softmax_f16_to_bf16_avx2, F16, BF16)
ROW(softmax_bf16_to_f32_avx2, BF16, F32)
ROW(softmax_bf16_to_f16_avx2, BF16, F16)
ROW(softmax_bf16_to_bf16_avx2, BF16, BF16)

void mxp_softmax_register_avx2(mxp_ew_table *t) {
    const mxp_softmax_row_fn f[3][3] = {
        {softmax_f32_to_f32_avx2, softmax_f32_to_f16_avx2, softmax_f32_to_bf16_avx2},
        {softmax_f16_to_f32_avx2, softmax_f16_to_f16_avx2, softmax_f16_to_bf16_avx2},
        {softmax_bf16_to_f32_avx2, softmax_bf16_to_f16_avx2, softmax_bf16_to_bf16_avx2}};
    for (int a = 0; a < MXP_DTYPE_COUNT; a++)
        for (int b = 0; b < MXP_DTYPE_COUNT; b++) t->softmax_row[a][b] = f[a][b];
}
