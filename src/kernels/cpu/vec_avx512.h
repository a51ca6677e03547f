/*
 * vec_avx512.h - what the AVX-512 kernels of this folder share: loads and stores of 16
 * elements of any dtype as fp32 (16-bit formats rounded exactly like mxp_convert, through
 * simd_avx512.h), masked versions for tails, and a vector expf. Include only from files
 * compiled with the AVX-512 flags (*_avx512*.c).
 */
#ifndef MIXPREC_VEC_AVX512_H
#define MIXPREC_VEC_AVX512_H

#include "eltwise_impl.h"
#include "numerics/simd_avx512.h"

MXP_INLINE __m512 mxp_ld16(mxp_dtype dt, const void *p, size_t i) {
    const uint16_t *h = (const uint16_t *)p + i;
    switch (dt) {
    case MXP_DTYPE_F16: return mxp_f16_widen16(_mm256_loadu_si256((const __m256i *)h));
    case MXP_DTYPE_BF16: return mxp_bf16_widen16(_mm256_loadu_si256((const __m256i *)h));
    default: return _mm512_loadu_ps((const float *)p + i);
    }
}

/* lanes outside m read nothing (no fault past the end) and come back as +0 */
MXP_INLINE __m512 mxp_ld16_mask(mxp_dtype dt, const void *p, size_t i, __mmask16 m) {
    const uint16_t *h = (const uint16_t *)p + i;
    switch (dt) {
    case MXP_DTYPE_F16: return mxp_f16_widen16(_mm256_maskz_loadu_epi16(m, h));
    case MXP_DTYPE_BF16: return mxp_bf16_widen16(_mm256_maskz_loadu_epi16(m, h));
    default: return _mm512_maskz_loadu_ps(m, (const float *)p + i);
    }
}

/* fp32 -> dt, round to nearest even (fp16 by vcvtps2ph, bf16 in integer arithmetic) */
MXP_INLINE __m256i mxp_round16(mxp_dtype dt, __m512 v) {
    return dt == MXP_DTYPE_F16 ? mxp_f16_round16(v) : mxp_bf16_round16(_mm512_castps_si512(v));
}

MXP_INLINE void mxp_st16(mxp_dtype dt, void *p, size_t i, __m512 v) {
    if (dt == MXP_DTYPE_F32)
        _mm512_storeu_ps((float *)p + i, v);
    else
        _mm256_storeu_si256((__m256i *)((uint16_t *)p + i), mxp_round16(dt, v));
}

MXP_INLINE void mxp_st16_mask(mxp_dtype dt, void *p, size_t i, __mmask16 m, __m512 v) {
    if (dt == MXP_DTYPE_F32)
        _mm512_mask_storeu_ps((float *)p + i, m, v);
    else
        _mm256_mask_storeu_epi16((uint16_t *)p + i, m, mxp_round16(dt, v));
}

/* exp(x) per lane. Accuracy: within 1 ulp of the exact value over the whole range (the
 * tests measure the worst case on a sweep and assert <= 2 ulp). exp(-inf) = +0,
 * exp(+inf) = inf, NaN gives a quiet NaN, results past FLT_MAX are inf and results below
 * 2^-126 are subnormals rounded once (gradual underflow), 0 below ~-103.97.
 * Method (Cephes expf): x = n ln2 + r with |r| <= ln2/2 by Cody-Waite reduction (n times
 * the high part of ln2 is exact), exp(r) = 1 + r + r^2 P(r) with P of degree 5 in Horner
 * form with FMA, then times 2^n by vscalefps, which rounds once and handles overflow and
 * the subnormal range. vec_avx2.h does the same operations and gives the same bits. */
MXP_INLINE __m512 mxp_exp16(__m512 x) {
    /* Clamp so that n stays in [-150, 128]: exp(-104) is below half the smallest subnormal
     * and exp(88.8) is past FLT_MAX, so the clamp changes no result. max(lo, x) and
     * min(hi, x) return x when it is NaN. */
    const __m512 xc =
        _mm512_min_ps(_mm512_set1_ps(88.8f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    const __m512 z = _mm512_mul_ps(r, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* The largest of x[0..n) in fp32, NaN if any element is NaN (vmaxps alone would drop
 * it, so NaN is tracked on the side), -inf for n == 0. MAX reductions and softmax's
 * first pass share it. */
MXP_INLINE float mxp_row_max16(mxp_dtype dt, const void *x, size_t n) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    __m512 m0 = ninf, m1 = ninf;
    __mmask16 nan = 0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 v0 = mxp_ld16(dt, x, i), v1 = mxp_ld16(dt, x, i + 16);
        m0 = _mm512_max_ps(m0, v0);
        m1 = _mm512_max_ps(m1, v1);
        nan |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = mxp_mask16(n - i);
        const __m512 v = _mm512_mask_mov_ps(ninf, k, mxp_ld16_mask(dt, x, i, k));
        m0 = _mm512_max_ps(m0, v);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    }
    return nan ? __builtin_nanf("") : _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

/* NaN-propagating max (vmaxps alone returns its second operand when either is NaN) */
MXP_INLINE __m512 mxp_max16(__m512 a, __m512 b) {
    return _mm512_mask_add_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), a, b);
}

#endif
