/*
 * simd_avx2.h - in-register conversions between fp32 and the 16-bit formats
 * for AVX2 code, with exactly the bits of the scalar reference in
 * numerics_impl.h. Include only from files compiled with the AVX2 flags.
 */
#ifndef MIXPREC_SIMD_AVX2_H
#define MIXPREC_SIMD_AVX2_H

#include <immintrin.h>

#include "numerics_impl.h"

/* 8 fp32 -> 8 bf16 in 32-bit lanes, round to nearest even, NaN quieted */
static inline __m256i mxp_bf16_round8(__m256i u) {
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, lsb), _mm256_set1_epi32(0x7fff)), 16);
    /* |u| > 0x7f800000 as signed compare: both sides are non-negative */
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(r, q, nan);
}

#define MXP_F16_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* 8 fp16 -> 8 fp32, keeping a signalling NaN signalling */
static inline __m256 mxp_f16_widen8(__m128i h) {
    const __m256 f = _mm256_cvtph_ps(h);
    const __m256i a = _mm256_and_si256(_mm256_cvtepu16_epi32(h), _mm256_set1_epi32(0x7fff));
    const __m256i snan = _mm256_and_si256(_mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7c00)),
                                          _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7e00), a));
    const __m256i clear = _mm256_and_si256(snan, _mm256_set1_epi32(0x00400000));
    return _mm256_castsi256_ps(_mm256_andnot_si256(clear, _mm256_castps_si256(f)));
}

/* 8 bf16 -> 8 fp32 (exact) */
static inline __m256 mxp_bf16_widen8(__m128i h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* 8 fp32 -> 8 bf16 packed in a __m128i */
static inline __m128i mxp_bf16_pack8(__m256 v) {
    const __m256i r = mxp_bf16_round8(_mm256_castps_si256(v));
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

#endif
