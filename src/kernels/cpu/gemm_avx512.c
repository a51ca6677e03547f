/*
 * gemm_avx512.c - the fp32 GEMM microkernel for AVX-512 (14 x 32: 28 zmm
 * accumulators, two B vectors, one broadcast of A per row and k) and the
 * packers that turn strided fp32/bf16/fp16 sources into its fp32 panels. On
 * this family bf16 inputs are widened to fp32 while packing (no vdpbf16ps);
 * gemm_avx512bf16.c replaces that. Compiled with AVX-512 flags only.
 */
#include "gemm_avx512.h"

enum { MR = 14, NR = 32 };

#define FMA_ROW(i)                                                                                 \
    do {                                                                                           \
        const __m512 ai = _mm512_set1_ps(ap[i]);                                                   \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                                \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                                                \
    } while (0)

static void gemm_f32_avx512(size_t kp, const void *a, const void *b, float *c, size_t ldc, size_t m,
                            size_t n, float alpha, float beta) {
    const float *ap = a, *bp = b;
    mxp_prefetch_c_tile(c, ldc, m);
    MXP_ROWS14(DECL_ROW);
    for (size_t k = 0; k < kp; k++) {
        const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
        _mm_prefetch((const char *)(bp + 8 * NR), _MM_HINT_T0);
        MXP_ROWS14(FMA_ROW);
        ap += MR;
        bp += NR;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __mmask16 m0 = mxp_mask16(n), m1 = mxp_mask16(n > 16 ? n - 16 : 0);
    MXP_ROWS14(STORE_ROW);
}

/* 16 consecutive source elements (any dtype) widened to fp32 */
static inline __m512 load16(const void *src, mxp_dtype st, size_t idx, __mmask16 mk) {
    switch (st) {
    case MXP_DTYPE_BF16:
        return mxp_bf16_widen16(_mm256_maskz_loadu_epi16(mk, (const uint16_t *)src + idx));
    case MXP_DTYPE_F16:
        return mxp_f16_widen16(_mm256_maskz_loadu_epi16(mk, (const uint16_t *)src + idx));
    default: return _mm512_maskz_loadu_ps(mk, (const float *)src + idx);
    }
}

/* Pack into fp32 panels of `rows` rows: panel [k][rows]. Two fast cases:
 * rs == 1 (the panel's rows are contiguous in memory: copy rows*k strips) and
 * cs == 1 (each row is contiguous along k: transpose 16x16 blocks). */
static void pack_f32_avx512(void *dst, const void *src, mxp_dtype st, size_t rs, size_t cs,
                            size_t m, size_t kc, int rows) {
    const size_t R = (size_t)rows;
    for (size_t p0 = 0; p0 < m; p0 += R) {
        const size_t rr = MXP_MIN(R, m - p0);
        float *d = (float *)dst + p0 * kc;
        if (rs == 1) {
            /* element (r, k) at src[p0 + r + k*cs]: one strip of rr per k */
            for (size_t k = 0; k < kc; k++) {
                const size_t base = p0 + k * cs;
                for (size_t r = 0; r < R; r += 16) {
                    const size_t left = r < rr ? rr - r : 0;
                    const __m512 v = load16(src, st, base + r, mxp_mask16(left));
                    if (R - r >= 16)
                        _mm512_storeu_ps(d + k * R + r, v);
                    else
                        _mm512_mask_storeu_ps(d + k * R + r, mxp_mask16(R - r), v);
                }
            }
        } else if (cs == 1) {
            /* element (r, k) at src[(p0 + r)*rs + k]: transpose 16 rows x 16 k */
            for (size_t r0 = 0; r0 < R; r0 += 16) {
                const size_t nrow = r0 < rr ? MXP_MIN((size_t)16, rr - r0) : 0;
                const size_t wrow = MXP_MIN((size_t)16, R - r0); /* rows of the panel to write */
                for (size_t k0 = 0; k0 < kc; k0 += 16) {
                    const size_t nk = MXP_MIN((size_t)16, kc - k0);
                    __m512 t[16];
                    for (size_t r = 0; r < 16; r++) {
                        if (r >= nrow) {
                            t[r] = _mm512_setzero_ps();
                            continue;
                        }
                        const size_t at = (p0 + r0 + r) * rs + k0;
                        /* 16 row streams are more than the hardware prefetcher
                         * follows: fetch each row 256 bytes ahead ourselves */
                        _mm_prefetch((const char *)src + at * mxp_dtype_size(st) + 256,
                                     _MM_HINT_T0);
                        t[r] = load16(src, st, at, mxp_mask16(nk));
                    }
                    mxp_transpose16x16(t);
                    const __mmask16 wm = mxp_mask16(wrow);
                    for (size_t k = 0; k < nk; k++)
                        _mm512_mask_storeu_ps(d + (k0 + k) * R + r0, wm, t[k]);
                }
            }
        } else {
            mxp_gemm_pack_ref(PACK_F32, d, (const char *)src + p0 * rs * mxp_dtype_size(st), st, rs,
                              cs, rr, kc, rows);
        }
    }
}

void mxp_gemm_register_avx512(gemm_table *t) {
    const gemm_kernel k = {"gemm_f32_avx512", PACK_F32,       MR, NR, 4032, 512, 384,
                           gemm_f32_avx512,   pack_f32_avx512};
    t->f32 = k;
    t->bf16 = k;
}
