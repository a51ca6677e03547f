/*
 * convert_avx512.c - bulk conversions with AVX-512 (F, BW, VL) and F16C.
 * Same bits as the scalar reference for every input: fp32 -> bf16 rounds in
 * integer arithmetic (vcvtneps2bf16 would flush fp32 subnormals to zero, which
 * PyTorch does not); fp16 decode puts back the signalling bit that vcvtph2ps
 * sets. Tails use masked loads and stores, so every n takes the SIMD path.
 * Compiled with AVX-512 flags; called only when cpuid says so.
 */
#include <immintrin.h>

#include "numerics_impl.h"

/* 16 fp32 -> 16 bf16, round to nearest even; NaN -> quiet, sign and top payload kept */
static inline __m256i bf16_round16(__m512i u) {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, lsb), _mm512_set1_epi32(0x7fff)), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    const __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(r, nan, q));
}

static void f32_to_bf16_avx512(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = bf16_round16(_mm512_loadu_si512(s + i));
        __m256i b = bf16_round16(_mm512_loadu_si512(s + i + 16));
        _mm256_storeu_si256((__m256i *)(d + i), a);
        _mm256_storeu_si256((__m256i *)(d + i + 16), b);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(d + i, m, bf16_round16(_mm512_maskz_loadu_epi32(m, s + i)));
    }
}

#define F16_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

static void f32_to_f16_avx512(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm512_cvtps_ph(_mm512_loadu_ps(s + i), F16_RNE);
        __m256i b = _mm512_cvtps_ph(_mm512_loadu_ps(s + i + 16), F16_RNE);
        _mm256_storeu_si256((__m256i *)(d + i), a);
        _mm256_storeu_si256((__m256i *)(d + i + 16), b);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(d + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, s + i), F16_RNE));
    }
}

/* 16 fp16 -> 16 fp32, keeping a signalling NaN signalling */
static inline __m512 f16_widen16(__m256i h) {
    const __m512 f = _mm512_cvtph_ps(h);
    const __m256i a = _mm256_and_si256(h, _mm256_set1_epi16(0x7fff));
    /* signalling NaN: 0x7c00 < |h| < 0x7e00 */
    const __mmask16 snan = _mm256_cmpgt_epi16_mask(a, _mm256_set1_epi16(0x7c00)) &
                           _mm256_cmplt_epi16_mask(a, _mm256_set1_epi16(0x7e00));
    return _mm512_castsi512_ps(_mm512_mask_and_epi32(_mm512_castps_si512(f), snan, _mm512_castps_si512(f),
                                                     _mm512_set1_epi32(~0x00400000)));
}

static void f16_to_f32_avx512(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(d + i, f16_widen16(_mm256_loadu_si256((const __m256i *)(s + i))));
        _mm512_storeu_ps(d + i + 16, f16_widen16(_mm256_loadu_si256((const __m256i *)(s + i + 16))));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(d + i, m, f16_widen16(_mm256_maskz_loadu_epi16(m, s + i)));
    }
}

static inline __m512 bf16_widen16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static void bf16_to_f32_avx512(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(d + i, bf16_widen16(_mm256_loadu_si256((const __m256i *)(s + i))));
        _mm512_storeu_ps(d + i + 16, bf16_widen16(_mm256_loadu_si256((const __m256i *)(s + i + 16))));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(d + i, m, bf16_widen16(_mm256_maskz_loadu_epi16(m, s + i)));
    }
}

void mxp_cvt_register_avx512(mxp_cvt_table *t) {
    t->f32_to_f16 = f32_to_f16_avx512;
    t->f32_to_bf16 = f32_to_bf16_avx512;
    t->f16_to_f32 = f16_to_f32_avx512;
    t->bf16_to_f32 = bf16_to_f32_avx512;
}
