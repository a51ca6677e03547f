/*
 * gemm_avx2.c - the fp32 GEMM microkernel for AVX2 + FMA (6 x 16: 12 ymm
 * accumulators, two B vectors, one broadcast of A per row and k). All input
 * dtypes are widened to fp32 by the portable packer; there is no bf16 dot
 * product on this family. Compiled with AVX2 flags only.
 */
#include <immintrin.h>

#include "gemm_impl.h"

enum { MR = 6, NR = 16 };

/* Named accumulators, not an array: gcc keeps an array of __m256 on the
 * stack inside the k loop (measured: 38 GFLOP/s instead of ~100). */
#define FMA_ROW(i)                                                                                 \
    do {                                                                                           \
        const __m256 ai = _mm256_broadcast_ss(ap + i);                                             \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                                                \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                                                \
    } while (0)

#define DECL_ROW(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps()

#define STORE_ROW(i)                                                                               \
    do {                                                                                           \
        if (i < m) store_row(c + (size_t)i * ldc, n, c##i##0, c##i##1, alpha, beta);               \
    } while (0)

/* One row of the tile: alpha acc + beta C over the first n <= 16 columns. */
static inline void store_row(float *cr, size_t n, __m256 a0, __m256 a1, float alpha, float beta) {
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    __m256 v0 = _mm256_mul_ps(a0, va), v1 = _mm256_mul_ps(a1, va);
    if (n == NR) {
        if (beta != 0.0f) {
            v0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), v0);
            v1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), v1);
        }
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
        return;
    }
    /* edge tile: through a row buffer so nothing past n is touched */
    float row[NR];
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
    for (size_t j = 0; j < n; j++) cr[j] = beta == 0.0f ? row[j] : row[j] + beta * cr[j];
}

static void gemm_f32_avx2(size_t kp, const void *a, const void *b, float *c, size_t ldc, size_t m,
                          size_t n, float alpha, float beta) {
    const float *ap = a, *bp = b;
    DECL_ROW(0);
    DECL_ROW(1);
    DECL_ROW(2);
    DECL_ROW(3);
    DECL_ROW(4);
    DECL_ROW(5);
    for (size_t k = 0; k < kp; k++) {
        const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        FMA_ROW(0);
        FMA_ROW(1);
        FMA_ROW(2);
        FMA_ROW(3);
        FMA_ROW(4);
        FMA_ROW(5);
        ap += MR;
        bp += NR;
    }
    STORE_ROW(0);
    STORE_ROW(1);
    STORE_ROW(2);
    STORE_ROW(3);
    STORE_ROW(4);
    STORE_ROW(5);
}

void mxp_gemm_register_avx2(gemm_table *t) {
    const gemm_kernel k = {"gemm_f32_avx2", PACK_F32, MR, NR, 3072, 256, 256, gemm_f32_avx2, NULL};
    t->f32 = k;
    t->bf16 = k;
}
