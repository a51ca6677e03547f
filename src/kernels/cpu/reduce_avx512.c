/*
 * reduce_avx512.c - the leaf and column-block kernels of the reductions with AVX-512:
 * 4 x 16 fp32 accumulators (SUMSQ by FMA), masked tails, a fixed horizontal tree, so the
 * order of additions depends on n alone. MAX tracks NaN on the side (vmaxps drops it).
 * The tree above the leaves, threading and checks are in reduce.c.
 */
#include "vec_avx512.h"

MXP_INLINE float leaf(mxp_reduce_op op, mxp_dtype dt, const void *x, size_t n) {
    size_t i = 0;
    if (op == MXP_REDUCE_MAX) return mxp_row_max16(dt, x, n);
    const int sq = op == MXP_REDUCE_SUMSQ;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 64 <= n; i += 64) {
        const __m512 v0 = mxp_ld16(dt, x, i), v1 = mxp_ld16(dt, x, i + 16);
        const __m512 v2 = mxp_ld16(dt, x, i + 32), v3 = mxp_ld16(dt, x, i + 48);
        a0 = sq ? _mm512_fmadd_ps(v0, v0, a0) : _mm512_add_ps(a0, v0);
        a1 = sq ? _mm512_fmadd_ps(v1, v1, a1) : _mm512_add_ps(a1, v1);
        a2 = sq ? _mm512_fmadd_ps(v2, v2, a2) : _mm512_add_ps(a2, v2);
        a3 = sq ? _mm512_fmadd_ps(v3, v3, a3) : _mm512_add_ps(a3, v3);
    }
    for (; i < n; i += 16) {
        const __m512 v = mxp_ld16_mask(dt, x, i, mxp_mask16(n - i)); /* +0 past the end */
        a0 = sq ? _mm512_fmadd_ps(v, v, a0) : _mm512_add_ps(a0, v);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* w vectors of 16 columns from j on (w = 4 for whole strips: four independent
 * accumulators, so the adds of a row overlap; w = 1 with mask m for the tail) over `rows`
 * rows in order, then into out */
MXP_INLINE void cols_strip(mxp_reduce_op op, mxp_dtype dt, float *out, const void *x, size_t ld,
                           size_t rows, size_t j, int w, __mmask16 m, int first) {
    const __m512 init =
        op == MXP_REDUCE_MAX ? _mm512_set1_ps(-__builtin_inff()) : _mm512_setzero_ps();
    __m512 a[4] = {init, init, init, init};
    __mmask16 nan[4] = {0, 0, 0, 0};
    for (size_t r = 0; r < rows; r++) {
        for (int k = 0; k < w; k++) {
            const size_t at = r * ld + j + 16 * (size_t)k;
            const __m512 v = m == 0xffff ? mxp_ld16(dt, x, at) : mxp_ld16_mask(dt, x, at, m);
            if (op == MXP_REDUCE_MAX) {
                a[k] = _mm512_max_ps(a[k], v);
                nan[k] |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            } else {
                a[k] =
                    op == MXP_REDUCE_SUMSQ ? _mm512_fmadd_ps(v, v, a[k]) : _mm512_add_ps(a[k], v);
            }
        }
    }
    for (int k = 0; k < w; k++) {
        float *o = out + j + 16 * (size_t)k;
        __m512 v = a[k];
        if (op == MXP_REDUCE_MAX)
            v = _mm512_mask_mov_ps(v, nan[k], _mm512_set1_ps(__builtin_nanf("")));
        if (!first) {
            const __m512 prev = _mm512_maskz_loadu_ps(m, o);
            v = op == MXP_REDUCE_MAX ? mxp_max16(prev, v) : _mm512_add_ps(prev, v);
        }
        _mm512_mask_storeu_ps(o, m, v);
    }
}

/* Columns in strips of 64; a strip's rows are read 256 bytes at a time, which the
 * prefetchers follow well. */
MXP_INLINE void cols(mxp_reduce_op op, mxp_dtype dt, float *out, const void *x, size_t ld,
                     size_t rows, size_t ncols, int first) {
    size_t j = 0;
    for (; j + 64 <= ncols; j += 64) cols_strip(op, dt, out, x, ld, rows, j, 4, 0xffff, first);
    for (; j < ncols; j += 16)
        cols_strip(op, dt, out, x, ld, rows, j, 1, mxp_mask16(ncols - j), first);
}

#define LEAF(name, op, dt)                                                                         \
    static float name(const void *x, size_t n) { return leaf(op, dt, x, n); }
#define COLS(name, op, dt)                                                                         \
    static void name(float *out, const void *x, size_t ld, size_t rows, size_t n, int first) {     \
        cols(op, dt, out, x, ld, rows, n, first);                                                  \
    }
#define SUM MXP_REDUCE_SUM
#define MAX MXP_REDUCE_MAX
#define SUMSQ MXP_REDUCE_SUMSQ

LEAF(sum_f32_avx512, SUM, MXP_DTYPE_F32)
LEAF(sum_f16_avx512, SUM, MXP_DTYPE_F16)
LEAF(sum_bf16_avx512, SUM, MXP_DTYPE_BF16)
LEAF(max_f32_avx512, MAX, MXP_DTYPE_F32)
LEAF(max_f16_avx512, MAX, MXP_DTYPE_F16)
LEAF(max_bf16_avx512, MAX, MXP_DTYPE_BF16)
LEAF(sumsq_f32_avx512, SUMSQ, MXP_DTYPE_F32)
LEAF(sumsq_f16_avx512, SUMSQ, MXP_DTYPE_F16)
LEAF(sumsq_bf16_avx512, SUMSQ, MXP_DTYPE_BF16)
COLS(sum_cols_f32_avx512, SUM, MXP_DTYPE_F32)
COLS(sum_cols_f16_avx512, SUM, MXP_DTYPE_F16)
COLS(sum_cols_bf16_avx512, SUM, MXP_DTYPE_BF16)
COLS(max_cols_f32_avx512, MAX, MXP_DTYPE_F32)
COLS(max_cols_f16_avx512, MAX, MXP_DTYPE_F16)
COLS(max_cols_bf16_avx512, MAX, MXP_DTYPE_BF16)
COLS(sumsq_cols_f32_avx512, SUMSQ, MXP_DTYPE_F32)
COLS(sumsq_cols_f16_avx512, SUMSQ, MXP_DTYPE_F16)
COLS(sumsq_cols_bf16_avx512, SUMSQ, MXP_DTYPE_BF16)

void mxp_reduce_register_avx512(mxp_ew_table *t) {
    static const mxp_reduce_set set = {
        .leaf = {{sum_f32_avx512, sum_f16_avx512, sum_bf16_avx512},
                 {max_f32_avx512, max_f16_avx512, max_bf16_avx512},
                 {sumsq_f32_avx512, sumsq_f16_avx512, sumsq_bf16_avx512}},
        .cols = {{sum_cols_f32_avx512, sum_cols_f16_avx512, sum_cols_bf16_avx512},
                 {max_cols_f32_avx512, max_cols_f16_avx512, max_cols_bf16_avx512},
                 {sumsq_cols_f32_avx512, sumsq_cols_f16_avx512, sumsq_cols_bf16_avx512}}};
    mxp_reduce_install(t, &set);
}
