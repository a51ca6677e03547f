/*
 * reduce.c - sum, mean, max and sum of squares over a vector, the rows or the columns of a
 * matrix, accumulated in fp32: the entry points, the fixed summation tree that makes every
 * result independent of the thread count, and the scalar reference kernels. The SIMD
 * kernels (reduce_avx2.c, reduce_avx512.c) only sum one leaf or one block of rows. No
 * compensated (Kahan) summation: the pairwise tree keeps the error at O(log n) ulps of
 * sum |x|. Nothing here allocates.
 */
#include <stdint.h>

#include "eltwise_impl.h"

/* ---- scalar reference kernels -------------------------------------------- */

MXP_INLINE float leaf_ref(mxp_reduce_op op, mxp_dtype dt, const void *x, size_t n) {
    if (op == MXP_REDUCE_MAX) {
        float m = -__builtin_inff();
        for (size_t i = 0; i < n; i++) m = mxp_ew_max(m, mxp_load_f32(dt, x, i));
        return m;
    }
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float v = mxp_load_f32(dt, x, i);
        s += op == MXP_REDUCE_SUMSQ ? v * v : v;
    }
    return s;
}

MXP_INLINE void cols_ref(mxp_reduce_op op, mxp_dtype dt, float *out, const void *x, size_t ld,
                         size_t rows, size_t cols, int first) {
    for (size_t j = 0; j < cols; j++) {
        float v = op == MXP_REDUCE_MAX ? -__builtin_inff() : 0.0f;
        for (size_t r = 0; r < rows; r++) {
            const float e = mxp_load_f32(dt, x, r * ld + j);
            v = op == MXP_REDUCE_MAX ? mxp_ew_max(v, e) : v + (op == MXP_REDUCE_SUMSQ ? e * e : e);
        }
        out[j] = first ? v : mxp_reduce_combine(op, out[j], v);
    }
}

/* One instance per op and dtype; the names are spelled out in full so they can be found. */
#define LEAF_REF(name, op, dt)                                                                     \
    static float name(const void *x, size_t n) { return leaf_ref(op, dt, x, n); }
#define COLS_REF(name, op, dt)                                                                     \
    static void name(float *out, const void *x, size_t ld, size_t rows, size_t cols, int first) {  \
        cols_ref(op, dt, out, x, ld, rows, cols, first);                                           \
    }
#define SUM MXP_REDUCE_SUM
#define MAX MXP_REDUCE_MAX
#define SUMSQ MXP_REDUCE_SUMSQ

LEAF_REF(sum_f32_ref, SUM, MXP_DTYPE_F32)
LEAF_REF(sum_f16_ref, SUM, MXP_DTYPE_F16)
LEAF_REF(sum_bf16_ref, SUM, MXP_DTYPE_BF16)
LEAF_REF(max_f32_ref, MAX, MXP_DTYPE_F32)
LEAF_REF(max_f16_ref, MAX, MXP_DTYPE_F16)
LEAF_REF(max_bf16_ref, MAX, MXP_DTYPE_BF16)
LEAF_REF(sumsq_f32_ref, SUMSQ, MXP_DTYPE_F32)
LEAF_REF(sumsq_f16_ref, SUMSQ, MXP_DTYPE_F16)
LEAF_REF(sumsq_bf16_ref, SUMSQ, MXP_DTYPE_BF16)
COLS_REF(sum_cols_f32_ref, SUM, MXP_DTYPE_F32)
COLS_REF(sum_cols_f16_ref, SUM, MXP_DTYPE_F16)
COLS_REF(sum_cols_bf16_ref, SUM, MXP_DTYPE_BF16)
COLS_REF(max_cols_f32_ref, MAX, MXP_DTYPE_F32)
COLS_REF(max_cols_f16_ref, MAX, MXP_DTYPE_F16)
COLS_REF(max_cols_bf16_ref, MAX, MXP_DTYPE_BF16)
COLS_REF(sumsq_cols_f32_ref, SUMSQ, MXP_DTYPE_F32)
COLS_REF(sumsq_cols_f16_ref, SUMSQ, MXP_DTYPE_F16)
COLS_REF(sumsq_cols_bf16_ref, SUMSQ, MXP_DTYPE_BF16)

void mxp_reduce_register_ref(mxp_ew_table *t) {
    static const mxp_reduce_set set = {
        .leaf = {{sum_f32_ref, sum_f16_ref, sum_bf16_ref},
                 {max_f32_ref, max_f16_ref, max_bf16_ref},
                 {sumsq_f32_ref, sumsq_f16_ref, sumsq_bf16_ref}},
        .cols = {{sum_cols_f32_ref, sum_cols_f16_ref, sum_cols_bf16_ref},
                 {max_cols_f32_ref, max_cols_f16_ref, max_cols_bf16_ref},
                 {sumsq_cols_f32_ref, sumsq_cols_f16_ref, sumsq_cols_bf16_ref}}};
    mxp_reduce_install(t, &set);
}

/* ---- the summation tree --------------------------------------------------- */

/* op over the leaves of x[0..n) (n > 0), combined pairwise: a binary counter of pending
 * partials merges two of equal weight as soon as both exist, so the tree has depth
 * log2(leaves) and its shape depends on n alone. */
static float reduce_span(mxp_reduce_leaf_fn leaf, mxp_reduce_op op, const char *x, size_t es,
                         size_t n) {
    float pending[64];
    int depth = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i += MXP_REDUCE_LEAF, k++) {
        float v = leaf(x + i * es, MXP_MIN((size_t)MXP_REDUCE_LEAF, n - i));
        for (size_t c = k; c & 1; c >>= 1) v = mxp_reduce_combine(op, pending[--depth], v);
        pending[depth++] = v;
    }
    float v = pending[--depth];
    while (depth) v = mxp_reduce_combine(op, pending[--depth], v);
    return v;
}

/* op over x[0..n) (n > 0). n is cut into tasks of whole leaves whose number and size
 * depend on n alone; threads (when `threaded` and n is large) share the tasks, and the task
 * results are combined pairwise in a fixed order, so 1 or 64 threads give the same bits. */
static float reduce_vec(const mxp_ew_table *t, mxp_reduce_op op, const void *x, mxp_dtype dt,
                        size_t n, int threaded) {
    const mxp_reduce_leaf_fn leaf = t->reduce_leaf[op][dt];
    const size_t es = mxp_dtype_size(dt);
    size_t ntask = MXP_MIN((size_t)MXP_REDUCE_TASKS, MXP_MAX((size_t)1, n / MXP_REDUCE_TASK_MIN));
    size_t per = (n + ntask - 1) / ntask;
    per = (per + MXP_REDUCE_LEAF - 1) / MXP_REDUCE_LEAF * MXP_REDUCE_LEAF;
    ntask = (n + per - 1) / per;
    if (ntask == 1) return reduce_span(leaf, op, x, es, n);

    float part[MXP_REDUCE_TASKS];
    const int nt = threaded ? (int)MXP_MIN((size_t)mxp_ew_threads(n, MXP_EW_GRAIN), ntask) : 1;
    (void)nt; /* only MXP_OMP reads it, and not at all without OpenMP */
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int k = 0; k < (int)ntask; k++) {
        const size_t lo = (size_t)k * per, len = MXP_MIN(per, n - lo);
        part[k] = reduce_span(leaf, op, (const char *)x + lo * es, es, len);
    }
    for (size_t m = ntask; m > 1; m = (m + 1) / 2) {
        for (size_t i = 0; i < m / 2; i++)
            part[i] = mxp_reduce_combine(op, part[2 * i], part[2 * i + 1]);
        if (m & 1) part[m / 2] = part[m - 1];
    }
    return part[0];
}

/* MEAN divides the fp32 sum in double and rounds once */
static float finish(mxp_reduce_op op, float v, size_t n) {
    return op == MXP_REDUCE_MEAN ? (float)((double)v / (double)n) : v;
}

/* ---- argument checks and entry points ------------------------------------ */

static mxp_status check_reduce(const char *fn, mxp_reduce_op op, const float *out, size_t nout,
                               const void *x, mxp_dtype dt, size_t rows, size_t cols) {
    if ((int)op < MXP_REDUCE_SUM || (int)op > MXP_REDUCE_SUMSQ)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: unknown reduce op %d", fn, (int)op);
    if (!mxp_dtype_size(dt))
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown dtype %d (use f32, f16 or bf16)", fn, (int)dt);
    if (cols && rows > SIZE_MAX / 4 / cols)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %zu x %zu elements is too many", fn, rows, cols);
    if (nout && !out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: out is NULL", fn);
    if (rows * cols != 0 && !x)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: x is NULL with %zu elements", fn, rows * cols);
    /* out is written while x is still being read (rows, cols) */
    if (mxp_overlaps(out, nout * sizeof(float), x, rows * cols * mxp_dtype_size(dt)))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: out overlaps x", fn);
    return MXP_OK;
}

static const mxp_ew_table *active(void) { return mxp_ew_table_for(mxp_isa_active()); }

mxp_status mxp_reduce(mxp_reduce_op op, float *out, const void *x, mxp_dtype dt, size_t n) {
    MXP_TRY(check_reduce("mxp_reduce", op, out, 1, x, dt, 1, n));
    *out = n ? finish(op, reduce_vec(active(), op, x, dt, n, 1), n) : mxp_reduce_empty(op);
    return MXP_OK;
}

/* Each row is exactly mxp_reduce of that row (the same tree), whichever way the threads
 * are spread: over rows when there are enough of them, else inside each row. */
mxp_status mxp_reduce_rows(mxp_reduce_op op, float *out, const void *x, mxp_dtype dt, size_t rows,
                           size_t cols) {
    MXP_TRY(check_reduce("mxp_reduce_rows", op, out, rows, x, dt, rows, cols));
    if (rows == 0) return MXP_OK;
    if (cols == 0) {
        for (size_t i = 0; i < rows; i++) out[i] = mxp_reduce_empty(op);
        return MXP_OK;
    }
    const mxp_ew_table *t = active();
    const size_t rs = cols * mxp_dtype_size(dt); /* bytes per row */
    const int nt = mxp_ew_threads(rows * cols, MXP_EW_GRAIN);
    if (nt > 1 && rows < (size_t)nt) {
        for (size_t i = 0; i < rows; i++)
            out[i] = finish(op, reduce_vec(t, op, (const char *)x + i * rs, dt, cols, 1), cols);
        return MXP_OK;
    }
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t i = 0; i < (int64_t)rows; i++)
        out[i] = finish(op, reduce_vec(t, op, (const char *)x + (size_t)i * rs, dt, cols, 0), cols);
    return MXP_OK;
}

/* Each column's rows are added in blocks of MXP_REDUCE_ROW_BLOCK, in order, and the block
 * sums in order (error ~ (block + rows/block) ulps); threads take disjoint column slices,
 * so the thread count changes nothing. One column is a contiguous vector: it takes the
 * mxp_reduce path. A matrix with few columns and many rows uses one thread. */
mxp_status mxp_reduce_cols(mxp_reduce_op op, float *out, const void *x, mxp_dtype dt, size_t rows,
                           size_t cols) {
    MXP_TRY(check_reduce("mxp_reduce_cols", op, out, cols, x, dt, rows, cols));
    if (cols == 0) return MXP_OK;
    if (rows == 0) {
        for (size_t j = 0; j < cols; j++) out[j] = mxp_reduce_empty(op);
        return MXP_OK;
    }
    const mxp_ew_table *t = active();
    if (cols == 1) {
        out[0] = finish(op, reduce_vec(t, op, x, dt, rows, 1), rows);
        return MXP_OK;
    }
    const mxp_reduce_cols_fn f = t->reduce_cols[op][dt];
    const size_t es = mxp_dtype_size(dt);
    int nt = mxp_ew_threads(rows * cols, MXP_EW_GRAIN);
    size_t per = (cols + (size_t)nt - 1) / (size_t)nt;
    per = (per + MXP_EW_ALIGN - 1) / MXP_EW_ALIGN * MXP_EW_ALIGN;
    nt = (int)((cols + per - 1) / per);
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int k = 0; k < nt; k++) {
        const size_t j0 = (size_t)k * per, jn = MXP_MIN(per, cols - j0);
        for (size_t r0 = 0; r0 < rows; r0 += MXP_REDUCE_ROW_BLOCK) {
            const size_t nr = MXP_MIN((size_t)MXP_REDUCE_ROW_BLOCK, rows - r0);
            f(out + j0, (const char *)x + (r0 * cols + j0) * es, cols, nr, jn, r0 == 0);
        }
        for (size_t j = j0; j < j0 + jn; j++) out[j] = finish(op, out[j], rows);
    }
    return MXP_OK;
}
