/*
 * convert_avx2.c - bulk conversions with AVX2 and F16C, 16 elements a step;
 * the last n % 16 elements go through the inline scalar conversions, which
 * give the same bits. Compiled with AVX2 flags; called only when cpuid says so.
 */
#include "simd_avx2.h"

static void f32_to_bf16_avx2(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = mxp_bf16_round8(_mm256_loadu_si256((const __m256i *)(s + i)));
        __m256i b = mxp_bf16_round8(_mm256_loadu_si256((const __m256i *)(s + i + 8)));
        /* packus works within 128-bit halves; the permute restores order */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(d + i), p);
    }
    for (; i < n; i++) d[i] = mxp_f32_to_bf16_inl(s[i]);
}

static void f32_to_f16_avx2(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(s + i), MXP_F16_RNE);
        __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(s + i + 8), MXP_F16_RNE);
        _mm_storeu_si128((__m128i *)(d + i), a);
        _mm_storeu_si128((__m128i *)(d + i + 8), b);
    }
    for (; i < n; i++) d[i] = mxp_f32_to_f16_inl(s[i]);
}

static void f16_to_f32_avx2(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(d + i, mxp_f16_widen8(_mm_loadu_si128((const __m128i *)(s + i))));
        _mm256_storeu_ps(d + i + 8, mxp_f16_widen8(_mm_loadu_si128((const __m128i *)(s + i + 8))));
    }
    for (; i < n; i++) d[i] = mxp_f16_to_f32_inl(s[i]);
}

static void bf16_to_f32_avx2(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
        __m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i + 8)));
        _mm256_storeu_si256((__m256i *)(d + i), _mm256_slli_epi32(a, 16));
        _mm256_storeu_si256((__m256i *)(d + i + 8), _mm256_slli_epi32(b, 16));
    }
    for (; i < n; i++) d[i] = mxp_bf16_to_f32_inl(s[i]);
}

void mxp_cvt_register_avx2(mxp_cvt_table *t) {
    t->f32_to_f16 = f32_to_f16_avx2;
    t->f32_to_bf16 = f32_to_bf16_avx2;
    t->f16_to_f32 = f16_to_f32_avx2;
    t->bf16_to_f32 = bf16_to_f32_avx2;
}
