/*
 * gemm_avx512.h - register helpers shared by the AVX-512 GEMM files
 * (gemm_avx512.c, gemm_avx512bf16.c). Include only from files compiled with
 * AVX-512 flags.
 */
#ifndef MIXPREC_GEMM_AVX512_H
#define MIXPREC_GEMM_AVX512_H

#include "../../numerics/simd_avx512.h"
#include "gemm_impl.h"

/* Transpose a 16x16 block of 32-bit lanes held in r[0..15]: afterwards r[k]
 * holds what was column k. Works for any 32-bit payload (fp32, bf16 pairs). */
static inline void mxp_transpose16x16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}

/* The end of both 14 x 32 microkernels: row i of the accumulators
 * (c<i>0, c<i>1) scaled by alpha, plus beta C when beta != 0, stored to C with
 * the first n columns masked in (m0, m1). Expects c, ldc, m, beta, va, vb, m0, m1. */
#define STORE_ROW(i)                                                                               \
    do {                                                                                           \
        if (i < m) {                                                                               \
            float *cr = c + (size_t)i * ldc;                                                       \
            __m512 v0 = _mm512_mul_ps(c##i##0, va), v1 = _mm512_mul_ps(c##i##1, va);               \
            if (beta != 0.0f) {                                                                    \
                v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v0);                       \
                v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v1);                  \
            }                                                                                      \
            _mm512_mask_storeu_ps(cr, m0, v0);                                                     \
            _mm512_mask_storeu_ps(cr + 16, m1, v1);                                                \
        }                                                                                          \
    } while (0)

/* Ask for the m rows of the C tile (two cache lines each) at the start of a
 * microkernel, so they arrive while the k loop runs: C is read and written
 * once per k block, and without this every tile waits on its misses at the
 * end (measured: 2-thread fp32 GEMM dropped from ~190 to ~155 GFLOP/s
 * whenever C fell out of a contended L3). */
static inline void mxp_prefetch_c_tile(const float *c, size_t ldc, size_t m) {
    for (size_t i = 0; i < m; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
}

/* X(i) for the 14 rows of a microkernel tile, as straight-line code. */
#define MXP_ROWS14(X)                                                                              \
    X(0);                                                                                          \
    X(1);                                                                                          \
    X(2);                                                                                          \
    X(3);                                                                                          \
    X(4);                                                                                          \
    X(5);                                                                                          \
    X(6);                                                                                          \
    X(7);                                                                                          \
    X(8);                                                                                          \
    X(9);                                                                                          \
    X(10);                                                                                         \
    X(11);                                                                                         \
    X(12);                                                                                         \
    X(13)

/* Row i of the accumulators, zeroed. */
#define DECL_ROW(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps()

#endif
