/*
 * simd_avx512.h - in-register conversions between fp32 and the 16-bit
 * formats for AVX-512 code (bulk conversion, GEMM packing, element-wise
 * kernels), with exactly the bits of the scalar reference in numerics_impl.h.
 * Include only from files compiled with the AVX-512 flags (*_avx512*.c).
 */
#ifndef MIXPREC_SIMD_AVX512_H
#define MIXPREC_SIMD_AVX512_H

#include <immintrin.h>

#include "numerics_impl.h"

/* 16 fp32 -> 16 bf16, round to nearest even; NaN -> quiet, sign and top payload kept */
static inline __m256i mxp_bf16_round16(__m512i u) {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, lsb), _mm512_set1_epi32(0x7fff)), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    const __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(r, nan, q));
}

#define MXP_F16_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* 16 fp32 -> 16 fp16, round to nearest even (vcvtps2ph quiets NaN as the reference does) */
static inline __m256i mxp_f16_round16(__m512 v) { return _mm512_cvtps_ph(v, MXP_F16_RNE); }

/* 16 fp16 -> 16 fp32, keeping a signalling NaN signalling */
static inline __m512 mxp_f16_widen16(__m256i h) {
    const __m512 f = _mm512_cvtph_ps(h);
    const __m256i a = _mm256_and_si256(h, _mm256_set1_epi16(0x7fff));
    /* signalling NaN: 0x7c00 < |h| < 0x7e00 */
    const __mmask16 snan = _mm256_cmpgt_epi16_mask(a, _mm256_set1_epi16(0x7c00)) &
                           _mm256_cmplt_epi16_mask(a, _mm256_set1_epi16(0x7e00));
    return _mm512_castsi512_ps(_mm512_mask_and_epi32(
        _mm512_castps_si512(f), snan, _mm512_castps_si512(f), _mm512_set1_epi32(~0x00400000)));
}

static inline __m512 mxp_bf16_widen16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* mask of the first n (< 16 allowed) lanes */
static inline __mmask16 mxp_mask16(size_t n) {
    return (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1);
}

#endif
