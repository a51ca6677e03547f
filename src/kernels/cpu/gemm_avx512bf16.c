/*
 * gemm_avx512bf16.c - the bf16 GEMM microkernel on vdpbf16ps (14 x 32 fp32
 * accumulators; each instruction multiplies a (k, k+1) pair of A by 16 pairs
 * of B and adds both products in fp32), and the packers that interleave bf16
 * sources into k-pairs. Only bf16 x bf16 comes here; every other input mix
 * uses the fp32 kernel. Compiled with AVX512-BF16 flags only.
 *
 * Numerics: vdpbf16ps rounds to nearest even and treats fp32 subnormal
 * inputs and results as zero whatever MXCSR says, so results can differ from
 * the reference kernel in the last bits and below 2^-126.
 */
#include "gemm_avx512.h"

enum { MR = 14, NR = 32 };

#define DOT_ROW(i)                                                                                 \
    do {                                                                                           \
        const __m512bh ai = (__m512bh)_mm512_set1_epi32(ap[i]);                                    \
        c##i##0 = _mm512_dpbf16_ps(c##i##0, ai, b0);                                               \
        c##i##1 = _mm512_dpbf16_ps(c##i##1, ai, b1);                                               \
    } while (0)

static void gemm_bf16_f32acc_avx512bf16(size_t kp, const void *a, const void *b, float *c,
                                        size_t ldc, size_t m, size_t n, float alpha, float beta) {
    const int32_t *ap = a; /* one (k, k+1) pair of bf16 per word */
    const int32_t *bp = b;
    mxp_prefetch_c_tile(c, ldc, m);
    MXP_ROWS14(DECL_ROW);
    for (size_t k = 0; k < kp; k++) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512(bp);
        const __m512bh b1 = (__m512bh)_mm512_load_si512(bp + 16);
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
        MXP_ROWS14(DOT_ROW);
        ap += MR;
        bp += NR;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __mmask16 m0 = mxp_mask16(n), m1 = mxp_mask16(n > 16 ? n - 16 : 0);
    MXP_ROWS14(STORE_ROW);
}

/* mask of the first n 16-bit lanes of 32 */
static inline __mmask32 mask32(size_t n) { return n >= 32 ? 0xffffffffu : (1u << n) - 1; }

/* Pack bf16 into pair panels [kc/2][rows] of 32-bit words (k even in the low
 * half). rs == 1: rows contiguous, interleave rows k and k+1. cs == 1: each
 * row contiguous along k, so its pairs are already words: transpose 16x16
 * blocks of words. Other strides go to the portable packer. Only bf16 sources
 * come here: pick_kernel sends every other dtype to the fp32 kernel. */
static void pack_bf16_avx512bf16(void *dst, const void *src, mxp_dtype st, size_t rs, size_t cs,
                                 size_t m, size_t kc, int rows) {
    const size_t R = (size_t)rows, kcp = (kc + 1) / 2;
    const uint16_t *s = src;
    (void)st; /* always MXP_DTYPE_BF16 */
    if (rs != 1 && cs != 1) {
        mxp_gemm_pack_ref(PACK_BF16, dst, src, st, rs, cs, m, kc, rows);
        return;
    }
    for (size_t p0 = 0; p0 < m; p0 += R) {
        const size_t rr = MXP_MIN(R, m - p0);
        uint32_t *d = (uint32_t *)dst + p0 * kcp;
        if (rs == 1) {
            for (size_t kq = 0; kq < kcp; kq++) {
                const size_t k = 2 * kq;
                const uint16_t *lo = s + p0 + k * cs, *hi = lo + cs;
                for (size_t r = 0; r < R; r += 16) {
                    const size_t left = r < rr ? MXP_MIN((size_t)16, rr - r) : 0;
                    const __mmask16 lm = mxp_mask16(left);
                    __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lm, lo + r));
                    if (k + 1 < kc)
                        w = _mm512_or_si512(
                            w,
                            _mm512_slli_epi32(
                                _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lm, hi + r)), 16));
                    _mm512_mask_storeu_epi32(d + kq * R + r, mxp_mask16(R - r), w);
                }
            }
        } else {
            for (size_t r0 = 0; r0 < R; r0 += 16) {
                const size_t nrow = r0 < rr ? MXP_MIN((size_t)16, rr - r0) : 0;
                const __mmask16 wm = mxp_mask16(MXP_MIN((size_t)16, R - r0));
                for (size_t q0 = 0; q0 < kcp; q0 += 16) {
                    const size_t nq = MXP_MIN((size_t)16, kcp - q0);
                    const size_t nel = MXP_MIN((size_t)32, kc - 2 * q0); /* bf16 left in the row */
                    __m512 t[16];
                    for (size_t r = 0; r < 16; r++) {
                        if (r >= nrow) {
                            t[r] = _mm512_setzero_ps();
                            continue;
                        }
                        const uint16_t *row = s + (p0 + r0 + r) * rs + 2 * q0;
                        _mm_prefetch((const char *)row + 256,
                                     _MM_HINT_T0); /* as in gemm_avx512.c */
                        t[r] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask32(nel), row));
                    }
                    mxp_transpose16x16(t);
                    for (size_t q = 0; q < nq; q++)
                        _mm512_mask_storeu_ps((float *)(d + (q0 + q) * R + r0), wm, t[q]);
                }
            }
        }
    }
}

void mxp_gemm_register_avx512bf16(gemm_table *t) {
    const gemm_kernel k = {
        "gemm_bf16_f32acc_avx512bf16", PACK_BF16,           MR, NR, 4032, 512, 512,
        gemm_bf16_f32acc_avx512bf16,   pack_bf16_avx512bf16};
    t->bf16 = k;
}
