/*
 * convert_avx512.c - bulk conversions with AVX-512 (F, BW, VL) and F16C.
 * Same bits as the scalar reference for every input: fp32 -> bf16 rounds in
 * integer arithmetic (vcvtneps2bf16 would flush fp32 subnormals to zero, which
 * PyTorch does not); fp16 decode puts back the signalling bit that vcvtph2ps
 * sets. Tails use masked loads and stores, so every n takes the SIMD path.
 * Compiled with AVX-512 flags; called only when cpuid says so.
 */
#include "simd_avx512.h"

static void f32_to_bf16_avx512(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = mxp_bf16_round16(_mm512_loadu_si512(s + i));
        __m256i b = mxp_bf16_round16(_mm512_loadu_si512(s + i + 16));
        _mm256_storeu_si256((__m256i *)(d + i), a);
        _mm256_storeu_si256((__m256i *)(d + i + 16), b);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = mxp_mask16(n - i);
        _mm256_mask_storeu_epi16(d + i, m, mxp_bf16_round16(_mm512_maskz_loadu_epi32(m, s + i)));
    }
}

static void f32_to_f16_avx512(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = mxp_f16_round16(_mm512_loadu_ps(s + i));
        __m256i b = mxp_f16_round16(_mm512_loadu_ps(s + i + 16));
        _mm256_storeu_si256((__m256i *)(d + i), a);
        _mm256_storeu_si256((__m256i *)(d + i + 16), b);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = mxp_mask16(n - i);
        _mm256_mask_storeu_epi16(d + i, m, mxp_f16_round16(_mm512_maskz_loadu_ps(m, s + i)));
    }
}

static void f16_to_f32_avx512(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(d + i, mxp_f16_widen16(_mm256_loadu_si256((const __m256i *)(s + i))));
        _mm512_storeu_ps(d + i + 16,
                         mxp_f16_widen16(_mm256_loadu_si256((const __m256i *)(s + i + 16))));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = mxp_mask16(n - i);
        _mm512_mask_storeu_ps(d + i, m, mxp_f16_widen16(_mm256_maskz_loadu_epi16(m, s + i)));
    }
}

static void bf16_to_f32_avx512(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(d + i, mxp_bf16_widen16(_mm256_loadu_si256((const __m256i *)(s + i))));
        _mm512_storeu_ps(d + i + 16,
                         mxp_bf16_widen16(_mm256_loadu_si256((const __m256i *)(s + i + 16))));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = mxp_mask16(n - i);
        _mm512_mask_storeu_ps(d + i, m, mxp_bf16_widen16(_mm256_maskz_loadu_epi16(m, s + i)));
    }
}

void mxp_cvt_register_avx512(mxp_cvt_table *t) {
    t->f32_to_f16 = f32_to_f16_avx512;
    t->f32_to_bf16 = f32_to_bf16_avx512;
    t->f16_to_f32 = f16_to_f32_avx512;
    t->bf16_to_f32 = bf16_to_f32_avx512;
}
