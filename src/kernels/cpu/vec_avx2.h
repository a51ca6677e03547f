/*
 * vec_avx2.h - what the AVX2 kernels of this folder share: loads and stores of 8 elements
 * of any dtype as fp32 (16-bit formats rounded exactly like mxp_convert, through
 * simd_avx2.h), partial versions for tails (AVX2 has no masked 16-bit loads, so they go
 * through a small stack buffer and the tail still takes the vector path), and the vector
 * expf of vec_avx512.h with the same bits. Include only from files compiled with the AVX2
 * flags (*_avx2.c).
 */
#ifndef MIXPREC_VEC_AVX2_H
#define MIXPREC_VEC_AVX2_H

#include <string.h>

#include "eltwise_impl.h"
#include "numerics/simd_avx2.h"

MXP_INLINE __m256 mxp_ld8(mxp_dtype dt, const void *p, size_t i) {
    const uint16_t *h = (const uint16_t *)p + i;
    switch (dt) {
    case MXP_DTYPE_F16: return mxp_f16_widen8(_mm_loadu_si128((const __m128i *)h));
    case MXP_DTYPE_BF16: return mxp_bf16_widen8(_mm_loadu_si128((const __m128i *)h));
    default: return _mm256_loadu_ps((const float *)p + i);
    }
}

/* fp32 -> dt, round to nearest even (fp16 by vcvtps2ph, bf16 in integer arithmetic) */
MXP_INLINE __m128i mxp_round8(mxp_dtype dt, __m256 v) {
    return dt == MXP_DTYPE_F16 ? _mm256_cvtps_ph(v, MXP_F16_RNE) : mxp_bf16_pack8(v);
}

MXP_INLINE void mxp_st8(mxp_dtype dt, void *p, size_t i, __m256 v) {
    if (dt == MXP_DTYPE_F32)
        _mm256_storeu_ps((float *)p + i, v);
    else
        _mm_storeu_si128((__m128i *)((uint16_t *)p + i), mxp_round8(dt, v));
}

/* the first k < 8 elements at i; the other lanes are +0 */
MXP_INLINE __m256 mxp_ld8_part(mxp_dtype dt, const void *p, size_t i, size_t k) {
    const size_t es = dt == MXP_DTYPE_F32 ? 4 : 2;
    unsigned char buf[32] = {0};
    memcpy(buf, (const char *)p + i * es, k * es);
    return mxp_ld8(dt, buf, 0);
}

/* store the first k < 8 lanes at i, nothing past them */
MXP_INLINE void mxp_st8_part(mxp_dtype dt, void *p, size_t i, size_t k, __m256 v) {
    const size_t es = dt == MXP_DTYPE_F32 ? 4 : 2;
    unsigned char buf[32];
    mxp_st8(dt, buf, 0, v);
    memcpy((char *)p + i * es, buf, k * es);
}

/* all-ones in the lanes below k, zero above */
MXP_INLINE __m256 mxp_lanes8(size_t k) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), idx));
}

/* exp(x) per lane: the algorithm, constants and accuracy of mxp_exp16 in vec_avx512.h. 2^n
 * is applied as two exact powers of two, 2^(n>>1) then 2^(n - (n>>1)), both normal for n in
 * [-150, 128]: the first product is exact, the second rounds once, as vscalefps does. */
MXP_INLINE __m256 mxp_exp8(__m256 x) {
    const __m256 xc =
        _mm256_min_ps(_mm256_set1_ps(88.8f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    const __m256 z = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, z, r), _mm256_set1_ps(1.0f));
    /* NaN: n converts to INT_MIN and the scales are garbage, but p is NaN already */
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* NaN-propagating max (vmaxps alone returns its second operand when either is NaN) */
MXP_INLINE __m256 mxp_max8(__m256 a, __m256 b) {
    return _mm256_blendv_ps(_mm256_max_ps(a, b), _mm256_add_ps(a, b),
                            _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}

/* horizontal sum and max in a fixed order (the order of additions must depend on n alone) */
MXP_INLINE float mxp_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

MXP_INLINE float mxp_hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The largest of x[0..n) in fp32, NaN if any element is NaN (vmaxps alone would drop
 * it, so NaN is tracked on the side), -inf for n == 0. MAX reductions and softmax's
 * first pass share it. */
MXP_INLINE float mxp_row_max8(mxp_dtype dt, const void *x, size_t n) {
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    __m256 m0 = ninf, m1 = ninf, nan = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 v0 = mxp_ld8(dt, x, i), v1 = mxp_ld8(dt, x, i + 8);
        m0 = _mm256_max_ps(m0, v0);
        m1 = _mm256_max_ps(m1, v1);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
    }
    for (; i < n; i += 8) {
        const size_t k = MXP_MIN((size_t)8, n - i);
        __m256 v = k == 8 ? mxp_ld8(dt, x, i) : mxp_ld8_part(dt, x, i, k);
        v = _mm256_blendv_ps(ninf, v, mxp_lanes8(k));
        m0 = _mm256_max_ps(m0, v);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    return _mm256_movemask_ps(nan) ? __builtin_nanf("") : mxp_hmax8(_mm256_max_ps(m0, m1));
}

#endif
