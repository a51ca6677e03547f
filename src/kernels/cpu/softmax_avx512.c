/*
 * softmax_avx512.c - one row of softmax / log-softmax with AVX-512 and the vector exp of
 * vec_avx512.h (~1 ulp; the reference uses libm): the three passes of softmax.c, which
 * states the row semantics, with masked tails. Rows, threads and checks are softmax.c's.
 */
#include <math.h>

#include "vec_avx512.h"

MXP_INLINE void row(mxp_dtype xt, mxp_dtype yt, void *y, const void *x, size_t n, int log_sm) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    size_t i;

    /* pass 1: the maximum, NaN if any element is NaN */
    const float m = mxp_row_max16(xt, x, n);
    if (m == -INFINITY) { /* fully masked row */
        const __m512 fill = log_sm ? ninf : _mm512_setzero_ps();
        for (i = 0; i < n; i += 16) mxp_st16_mask(yt, y, i, mxp_mask16(n - i), fill);
        return;
    }
    const __m512 vm = _mm512_set1_ps(m);

    /* pass 2: sum of exp(x - m), in blocks of MXP_REDUCE_LEAF (softmax.c); an fp32 y keeps
     * the exps for pass 3 */
    const int keep = yt == MXP_DTYPE_F32 && !log_sm;
    __m512 total = _mm512_setzero_ps();
    for (size_t b = 0; b < n; b += MXP_REDUCE_LEAF) {
        const size_t end = MXP_MIN(n, b + MXP_REDUCE_LEAF);
        __m512 s0 = _mm512_setzero_ps(), s1 = s0;
        for (i = b; i + 32 <= end; i += 32) {
            const __m512 e0 = mxp_exp16(_mm512_sub_ps(mxp_ld16(xt, x, i), vm));
            const __m512 e1 = mxp_exp16(_mm512_sub_ps(mxp_ld16(xt, x, i + 16), vm));
            s0 = _mm512_add_ps(s0, e0);
            s1 = _mm512_add_ps(s1, e1);
            if (keep) {
                _mm512_storeu_ps((float *)y + i, e0);
                _mm512_storeu_ps((float *)y + i + 16, e1);
            }
        }
        for (; i < end; i += 16) { /* only in the last block: LEAF is a multiple of 32 */
            const __mmask16 k = mxp_mask16(end - i);
            const __m512 e =
                _mm512_maskz_mov_ps(k, mxp_exp16(_mm512_sub_ps(mxp_ld16_mask(xt, x, i, k), vm)));
            s0 = _mm512_add_ps(s0, e);
            if (keep) _mm512_mask_storeu_ps((float *)y + i, k, e);
        }
        total = _mm512_add_ps(total, _mm512_add_ps(s0, s1));
    }
    const float sum = _mm512_reduce_add_ps(total);

    /* pass 3 */
    if (log_sm) {
        const __m512 ls = _mm512_set1_ps(logf(sum));
        for (i = 0; i < n; i += 16) {
            const __mmask16 k = mxp_mask16(n - i);
            const __m512 v = _mm512_sub_ps(_mm512_sub_ps(mxp_ld16_mask(xt, x, i, k), vm), ls);
            mxp_st16_mask(yt, y, i, k, v);
        }
        return;
    }
    const __m512 inv = _mm512_set1_ps(1.0f / sum);
    for (i = 0; i < n; i += 16) {
        const __mmask16 k = mxp_mask16(n - i);
        const __m512 e = keep ? _mm512_maskz_loadu_ps(k, (const float *)y + i)
                              : mxp_exp16(_mm512_sub_ps(mxp_ld16_mask(xt, x, i, k), vm));
        mxp_st16_mask(yt, y, i, k, _mm512_mul_ps(e, inv));
    }
}

/* One instance per dtype pair; the names are spelled out in full so they can be found. */
#define ROW(name, xt, yt)                                                                          \
    static void name(void *y, const void *x, size_t n, int log_sm) { row(xt, yt, y, x, n, log_sm); }
#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

ROW(softmax_f32_to_f32_avx512, F32, F32)
ROW(softmax_f32_to_f16_avx512, F32, F16)
ROW(softmax_f32_to_bf16_avx512, F32, BF16)
ROW(softmax_f16_to_f32_avx512, F16, F32)
ROW(softmax_f16_to_f16_avx512, F16, F16)
ROW(softmax_f16_to_bf16_avx512, F16, BF16)
ROW(softmax_bf16_to_f32_avx512, BF16, F32)
ROW(softmax_bf16_to_f16_avx512, BF16, F16)
ROW(softmax_bf16_to_bf16_avx512, BF16, BF16)

void mxp_softmax_register_avx512(mxp_ew_table *t) {
    const mxp_softmax_row_fn f[3][3] = {
        {softmax_f32_to_f32_avx512, softmax_f32_to_f16_avx512, softmax_f32_to_bf16_avx512},
        {softmax_f16_to_f32_avx512, softmax_f16_to_f16_avx512, softmax_f16_to_bf16_avx512},
        {softmax_bf16_to_f32_avx512, softmax_bf16_to_f16_avx512, softmax_bf16_to_bf16_avx512}};
    for (int a = 0; a < MXP_DTYPE_COUNT; a++)
        for (int b = 0; b < MXP_DTYPE_COUNT; b++) t->softmax_row[a][b] = f[a][b];
}
