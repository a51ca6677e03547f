/*
 * reduce_avx2.c - the leaf and column-block kernels of the reductions with AVX2 and FMA:
 * 4 x 8 fp32 accumulators (SUMSQ by FMA), tails through the vector path with padding
 * lanes set to the identity, a fixed horizontal tree, so the order of additions depends on
 * n alone. MAX tracks NaN on the side (vmaxps drops it). The tree above the leaves,
 * threading and checks are in reduce.c.
 */
#include "vec_avx2.h"

MXP_INLINE float leaf(mxp_reduce_op op, mxp_dtype dt, const void *x, size_t n) {
    size_t i = 0;
    if (op == MXP_REDUCE_MAX) return mxp_row_max8(dt, x, n);
    const int sq = op == MXP_REDUCE_SUMSQ;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 32 <= n; i += 32) {
        const __m256 v0 = mxp_ld8(dt, x, i), v1 = mxp_ld8(dt, x, i + 8);
        const __m256 v2 = mxp_ld8(dt, x, i + 16), v3 = mxp_ld8(dt, x, i + 24);
        a0 = sq ? _mm256_fmadd_ps(v0, v0, a0) : _mm256_add_ps(a0, v0);
        a1 = sq ? _mm256_fmadd_ps(v1, v1, a1) : _mm256_add_ps(a1, v1);
        a2 = sq ? _mm256_fmadd_ps(v2, v2, a2) : _mm256_add_ps(a2, v2);
        a3 = sq ? _mm256_fmadd_ps(v3, v3, a3) : _mm256_add_ps(a3, v3);
    }
    for (; i < n; i += 8) {
        const size_t k = MXP_MIN((size_t)8, n - i);
        const __m256 v = k == 8 ? mxp_ld8(dt, x, i) : mxp_ld8_part(dt, x, i, k); /* +0 padding */
        a0 = sq ? _mm256_fmadd_ps(v, v, a0) : _mm256_add_ps(a0, v);
    }
    return mxp_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* w vectors of 8 columns from j on (w = 4 for whole strips: four independent accumulators;
 * w = 1 with k < 8 valid columns for the tail) over `rows` rows in order, then into out */
MXP_INLINE void cols_strip(mxp_reduce_op op, mxp_dtype dt, float *out, const void *x, size_t ld,
                           size_t rows, size_t j, int w, size_t k, int first) {
    const __m256 init =
        op == MXP_REDUCE_MAX ? _mm256_set1_ps(-__builtin_inff()) : _mm256_setzero_ps();
    __m256 a[4] = {init, init, init, init};
    __m256 nan[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (size_t r = 0; r < rows; r++) {
        for (int q = 0; q < w; q++) {
            const size_t at = r * ld + j + 8 * (size_t)q;
            const __m256 v = k == 8 ? mxp_ld8(dt, x, at) : mxp_ld8_part(dt, x, at, k);
            if (op == MXP_REDUCE_MAX) {
                a[q] = _mm256_max_ps(a[q], v);
                nan[q] = _mm256_or_ps(nan[q], _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            } else if (op == MXP_REDUCE_SUMSQ) {
                a[q] = _mm256_fmadd_ps(v, v, a[q]);
            } else {
                a[q] = _mm256_add_ps(a[q], v);
            }
        }
    }
    for (int q = 0; q < w; q++) {
        float *o = out + j + 8 * (size_t)q;
        __m256 v = a[q];
        if (op == MXP_REDUCE_MAX)
            v = _mm256_blendv_ps(v, _mm256_set1_ps(__builtin_nanf("")), nan[q]);
        if (!first) {
            const __m256 prev = k == 8 ? _mm256_loadu_ps(o) : mxp_ld8_part(MXP_DTYPE_F32, o, 0, k);
            v = op == MXP_REDUCE_MAX ? mxp_max8(prev, v) : _mm256_add_ps(prev, v);
        }
        if (k == 8)
            _mm256_storeu_ps(o, v);
        else
            mxp_st8_part(MXP_DTYPE_F32, o, 0, k, v);
    }
}

/* Columns in strips of 32; a strip's rows are read 128 bytes at a time. */
MXP_INLINE void cols(mxp_reduce_op op, mxp_dtype dt, float *out, const void *x, size_t ld,
                     size_t rows, size_t ncols, int first) {
    size_t j = 0;
    for (; j + 32 <= ncols; j += 32) cols_strip(op, dt, out, x, ld, rows, j, 4, 8, first);
    for (; j < ncols; j += 8)
        cols_strip(op, dt, out, x, ld, rows, j, 1, MXP_MIN((size_t)8, ncols - j), first);
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

LEAF(sum_f32_avx2, SUM, MXP_DTYPE_F32)
LEAF(sum_f16_avx2, SUM, MXP_DTYPE_F16)
LEAF(sum_bf16_avx2, SUM, MXP_DTYPE_BF16)
LEAF(max_f32_avx2, MAX, MXP_DTYPE_F32)
LEAF(max_f16_avx2, MAX, MXP_DTYPE_F16)
LEAF(max_bf16_avx2, MAX, MXP_DTYPE_BF16)
LEAF(sumsq_f32_avx2, SUMSQ, MXP_DTYPE_F32)
LEAF(sumsq_f16_avx2, SUMSQ, MXP_DTYPE_F16)
LEAF(sumsq_bf16_avx2, SUMSQ, MXP_DTYPE_BF16)
COLS(sum_cols_f32_avx2, SUM, MXP_DTYPE_F32)
COLS(sum_cols_f16_avx2, SUM, MXP_DTYPE_F16)
COLS(sum_cols_bf16_avx2, SUM, MXP_DTYPE_BF16)
COLS(max_cols_f32_avx2, MAX, MXP_DTYPE_F32)
COLS(max_cols_f16_avx2, MAX, MXP_DTYPE_F16)
COLS(max_cols_bf16_avx2, MAX, MXP_DTYPE_BF16)
COLS(sumsq_cols_f32_avx2, SUMSQ, MXP_DTYPE_F32)
COLS(sumsq_cols_f16_avx2, SUMSQ, MXP_DTYPE_F16)
COLS(sumsq_cols_bf16_avx2, SUMSQ, MXP_DTYPE_BF16)

void mxp_reduce_register_avx2(mxp_ew_table *t) {
    static const mxp_reduce_set set = {
        .leaf = {{sum_f32_avx2, sum_f16_avx2, sum_bf16_avx2},
                 {max_f32_avx2, max_f16_avx2, max_bf16_avx2},
                 {sumsq_f32_avx2, sumsq_f16_avx2, sumsq_bf16_avx2}},
        .cols = {{sum_cols_f32_avx2, sum_cols_f16_avx2, sum_cols_bf16_avx2},
                 {max_cols_f32_avx2, max_cols_f16_avx2, max_cols_bf16_avx2},
                 {sumsq_cols_f32_avx2, sumsq_cols_f16_avx2, sumsq_cols_bf16_avx2}}};
    mxp_reduce_install(t, &set);
}
