/*
 * conv_avx512.c - max pooling with non-overlapping windows, 16 channels a
 * step, for fp32 and bf16 (both widen to fp32 by moving bits, so the winner's
 * bits go back out exactly). The same rule as conv.c's portable loop: the
 * first maximum in window order wins, a NaN wins over numbers. fp16 and
 * overlapping windows stay in conv.c.
 */
#include "eltwise_impl.h"
#include "vec_avx512.h"

static inline __m512 load16(const void *p, int bf16, __mmask16 m) {
    if (!bf16) return _mm512_maskz_loadu_ps(m, p);
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static inline void pool_row(void *y, int32_t *argmax, const void *img, int64_t W, int64_t C,
                            int64_t K, int64_t OW, int64_t oh, int bf16) {
    const size_t es = bf16 ? 2 : 4;
    for (int64_t ow = 0; ow < OW; ow++) {
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
            const __mmask16 m = (__mmask16)(C - c0 >= 16 ? 0xffff : (1u << (C - c0)) - 1);
            __m512 best = _mm512_setzero_ps();
            __m512i arg = _mm512_setzero_si512();
            for (int64_t kh = 0; kh < K; kh++) {
                for (int64_t kw = 0; kw < K; kw++) {
                    const int32_t idx = (int32_t)((oh * K + kh) * W + ow * K + kw);
                    const __m512 u =
                        load16((const char *)img + (size_t)((int64_t)idx * C + c0) * es, bf16, m);
                    if (kh == 0 && kw == 0) {
                        best = u;
                        arg = _mm512_set1_epi32(idx);
                        continue;
                    }
                    /* take u when u > best, or u is NaN and best is not */
                    const __mmask16 take = _mm512_cmp_ps_mask(u, best, _CMP_GT_OQ) |
                                           (_mm512_cmp_ps_mask(u, u, _CMP_UNORD_Q) &
                                            _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
                    best = _mm512_mask_blend_ps(take, best, u);
                    arg = _mm512_mask_blend_epi32(take, arg, _mm512_set1_epi32(idx));
                }
            }
            const size_t o = (size_t)(ow * C + c0);
            if (bf16) {
                const __m256i h =
                    _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(best), 16));
                _mm256_mask_storeu_epi16((uint16_t *)y + o, m, h);
            } else {
                _mm512_mask_storeu_ps((float *)y + o, m, best);
            }
            _mm512_mask_storeu_epi32(argmax + o, m, arg);
        }
    }
}

static void pool_row_f32(void *y, int32_t *argmax, const void *img, int64_t W, int64_t C, int64_t K,
                         int64_t OW, int64_t oh) {
    pool_row(y, argmax, img, W, C, K, OW, oh, 0);
}

static void pool_row_bf16(void *y, int32_t *argmax, const void *img, int64_t W, int64_t C,
                          int64_t K, int64_t OW, int64_t oh) {
    pool_row(y, argmax, img, W, C, K, OW, oh, 1);
}

void mxp_pool_register_avx512(mxp_ew_table *t) {
    t->pool_row[MXP_DTYPE_F32] = pool_row_f32;
    t->pool_row[MXP_DTYPE_BF16] = pool_row_bf16;
}
