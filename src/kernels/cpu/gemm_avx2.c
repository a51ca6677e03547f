/*
 * gemm_avx2.c - the fp32 GEMM microkernel for AVX2 + FMA (6 x 16: 12 ymm
 * accumulators, two B vectors, one broadcast of A per row and k). All input
 * dtypes are widened to fp32 by the portable packer; there is no bf16 dot
 * product on this family. Compiled with AVX2 flags only.
 */
#include <immintrin.h>

#include "gemm_impl.h"

enum { MR = 6, NR = 16 };

static void gemm_f32_avx2(size_t kp, const void *a, const void *b, float *c, size_t ldc, size_t m,
                          size_t n, float alpha, float beta) {
    const float *ap = a, *bp = b;
    __m256 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (size_t k = 0; k < kp; k++) {
        const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        ap += MR;
        bp += NR;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (size_t i = 0; i < m; i++) {
        float *cr = c + i * ldc;
        __m256 v0 = _mm256_mul_ps(acc[i][0], va), v1 = _mm256_mul_ps(acc[i][1], va);
        if (n == NR) {
            if (beta != 0.0f) {
                v0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), v0);
                v1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), v1);
            }
            _mm256_storeu_ps(cr, v0);
            _mm256_storeu_ps(cr + 8, v1);
        } else {
            /* edge tile: go through a row buffer so nothing past n is touched */
            float row[NR];
            _mm256_storeu_ps(row, v0);
            _mm256_storeu_ps(row + 8, v1);
            for (size_t j = 0; j < n; j++) cr[j] = beta == 0.0f ? row[j] : row[j] + beta * cr[j];
        }
    }
}

void mxp_gemm_register_avx2(gemm_table *t) {
    const gemm_kernel k = {"gemm_f32_avx2", PACK_F32, MR, NR, 3072, 256, 256, gemm_f32_avx2, NULL};
    t->f32 = k;
    t->bf16 = k;
}
