/*
 * convert_avx2.c - bulk conversions with AVX2 and F16C, 16 elements a step;
 * the last n % 16 elements go through the scalar reference, which gives the
 * same bits. Compiled with AVX2 flags; called only when cpuid says so.
 */
#include <immintrin.h>

#include "numerics_impl.h"

/* 8 fp32 -> 8 bf16 in 32-bit lanes, round to nearest even, NaN quieted */
static inline __m256i bf16_round8(__m256i u) {
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, lsb), _mm256_set1_epi32(0x7fff)), 16);
    /* |u| > 0x7f800000 as signed compare: both sides are non-negative */
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(r, q, nan);
}

static void f32_to_bf16_avx2(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = bf16_round8(_mm256_loadu_si256((const __m256i *)(s + i)));
        __m256i b = bf16_round8(_mm256_loadu_si256((const __m256i *)(s + i + 8)));
        /* packus works within 128-bit halves; the permute restores order */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(d + i), p);
    }
    mxp_cvt_table ref;
    mxp_cvt_register_ref(&ref);
    if (i < n) ref.f32_to_bf16(d + i, s + i, n - i);
}

#define F16_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

static void f32_to_f16_avx2(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(s + i), F16_RNE);
        __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(s + i + 8), F16_RNE);
        _mm_storeu_si128((__m128i *)(d + i), a);
        _mm_storeu_si128((__m128i *)(d + i + 8), b);
    }
    mxp_cvt_table ref;
    mxp_cvt_register_ref(&ref);
    if (i < n) ref.f32_to_f16(d + i, s + i, n - i);
}

/* 8 fp16 -> 8 fp32, keeping a signalling NaN signalling */
static inline __m256 f16_widen8(__m128i h) {
    const __m256 f = _mm256_cvtph_ps(h);
    const __m256i a = _mm256_and_si256(_mm256_cvtepu16_epi32(h), _mm256_set1_epi32(0x7fff));
    const __m256i snan = _mm256_and_si256(_mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7c00)),
                                          _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7e00), a));
    const __m256i clear = _mm256_and_si256(snan, _mm256_set1_epi32(0x00400000));
    return _mm256_castsi256_ps(_mm256_andnot_si256(clear, _mm256_castps_si256(f)));
}

static void f16_to_f32_avx2(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(d + i, f16_widen8(_mm_loadu_si128((const __m128i *)(s + i))));
        _mm256_storeu_ps(d + i + 8, f16_widen8(_mm_loadu_si128((const __m128i *)(s + i + 8))));
    }
    mxp_cvt_table ref;
    mxp_cvt_register_ref(&ref);
    if (i < n) ref.f16_to_f32(d + i, s + i, n - i);
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
    mxp_cvt_table ref;
    mxp_cvt_register_ref(&ref);
    if (i < n) ref.bf16_to_f32(d + i, s + i, n - i);
}

void mxp_cvt_register_avx2(mxp_cvt_table *t) {
    t->f32_to_f16 = f32_to_f16_avx2;
    t->f32_to_bf16 = f32_to_bf16_avx2;
    t->f16_to_f32 = f16_to_f32_avx2;
    t->bf16_to_f32 = bf16_to_f32_avx2;
}
