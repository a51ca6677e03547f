/*
 * eltwise_impl.h - the per-ISA table of the non-GEMM CPU kernels (element-wise ops and
 * activations, unscale + inf check, reductions, softmax), BLIS style: the scalar reference
 * fills every slot, then each ISA family's register functions override the slots they
 * implement. Also the scalar helpers and constants that the reference kernels, the SIMD
 * kernels and the drivers must agree on. Never installed.
 */
#ifndef MIXPREC_ELTWISE_IMPL_H
#define MIXPREC_ELTWISE_IMPL_H

#include <stdint.h>

#include "mixprec/kernels.h"
#include "numerics/numerics_impl.h"

/* Kernel bodies are written once, generic in dtype and op, and instantiated per dtype by
 * small wrappers with constant arguments. The inlining is forced because the bodies are
 * large enough that gcc might otherwise call one shared copy, and then no switch on the
 * dtype or op would fold away inside the loops. */
#define MXP_INLINE static inline __attribute__((always_inline))

/* ---- kernel signatures (every slot works for one dtype, or one pair) ------ */

/* y[i] = f(a[i], b[i]) for i < n; y may be a or b exactly */
typedef void (*mxp_ew_binary_fn)(void *y, const void *a, const void *b, size_t n);

/* y[i] = f(x[i]) for i < n; s is scale's factor, ignored by the activations; y may be x */
typedef void (*mxp_ew_unary_fn)(void *y, const void *x, float s, size_t n);

/* dst[i] = src[i] * inv_scale rounded to dst's dtype; returns 1 if any stored element
 * is inf or NaN (judged on the stored bits), else 0 */
typedef int (*mxp_ew_unscale_fn)(void *dst, const void *src, float inv_scale, size_t n);

/* op over x[0..n) with n <= MXP_REDUCE_LEAF, in fp32. SUM and SUMSQ return the sum (the
 * MEAN slot holds the SUM kernel; the driver divides), MAX returns the largest element,
 * NaN if any is NaN, -inf for n == 0. The order of additions depends only on n. */
typedef float (*mxp_reduce_leaf_fn)(const void *x, size_t n);

/* Column reduction over one block of rows: for j < cols, v = op over x[r*ld + j] for
 * r < rows (rows <= MXP_REDUCE_ROW_BLOCK, each column's rows added in order), then
 * out[j] = first ? v : out[j] (+ or NaN-propagating max) v. */
typedef void (*mxp_reduce_cols_fn)(float *out, const void *x, size_t ld, size_t rows, size_t cols,
                                   int first);

/* One row of softmax (log_sm == 0) or log-softmax (log_sm == 1) over cols elements;
 * y may be x when the dtypes match. */
typedef void (*mxp_softmax_row_fn)(void *y, const void *x, size_t cols, int log_sm);

/* y[i] = exp(x[i]) in fp32: the exp that GELU and softmax use, as a slot of its own so the
 * tests can measure its accuracy directly. y may be x. */
typedef void (*mxp_exp_fn)(float *y, const float *x, size_t n);

/* One output row (b, oh) of a max-pool whose windows do not overlap (K == stride):
 * y (OW, C) and argmax (OW, C) from the image x (H, W, C), as mxp_maxpool2d_forward. */
typedef void (*mxp_pool_row_fn)(void *y, int32_t *argmax, const void *img, int64_t W, int64_t C,
                                int64_t K, int64_t OW, int64_t oh);

typedef struct mxp_ew_table {
    /* element-wise, [dtype] */
    mxp_ew_binary_fn add[MXP_DTYPE_COUNT];
    mxp_ew_binary_fn mul[MXP_DTYPE_COUNT];
    mxp_ew_binary_fn relu_backward[MXP_DTYPE_COUNT];      /* (dx, dy, x) */
    mxp_ew_binary_fn gelu_tanh_backward[MXP_DTYPE_COUNT]; /* (dx, dy, x) */
    mxp_ew_unary_fn scale[MXP_DTYPE_COUNT];
    mxp_ew_unary_fn relu[MXP_DTYPE_COUNT];
    mxp_ew_unary_fn gelu_tanh[MXP_DTYPE_COUNT];
    mxp_ew_unscale_fn unscale[MXP_DTYPE_COUNT][MXP_DTYPE_COUNT]; /* [src][dst] */
    mxp_exp_fn exp_f32;
    /* reductions, [mxp_reduce_op][dtype] */
    mxp_reduce_leaf_fn reduce_leaf[4][MXP_DTYPE_COUNT];
    mxp_reduce_cols_fn reduce_cols[4][MXP_DTYPE_COUNT];
    /* softmax, [x dtype][y dtype] */
    mxp_softmax_row_fn softmax_row[MXP_DTYPE_COUNT][MXP_DTYPE_COUNT];
    /* max-pool rows, [dtype]; NULL: conv.c's portable loop */
    mxp_pool_row_fn pool_row[MXP_DTYPE_COUNT];
} mxp_ew_table;

/* One ISA's element-wise kernels as its register function lists them:
 * [dtype], unscale [src][dst]. */
typedef struct mxp_ew_set {
    mxp_ew_binary_fn add[MXP_DTYPE_COUNT], mul[MXP_DTYPE_COUNT];
    mxp_ew_binary_fn relu_backward[MXP_DTYPE_COUNT], gelu_tanh_backward[MXP_DTYPE_COUNT];
    mxp_ew_unary_fn scale[MXP_DTYPE_COUNT], relu[MXP_DTYPE_COUNT], gelu_tanh[MXP_DTYPE_COUNT];
    mxp_ew_unscale_fn unscale[MXP_DTYPE_COUNT][MXP_DTYPE_COUNT];
    mxp_exp_fn exp_f32;
} mxp_ew_set;

static inline void mxp_ew_install(mxp_ew_table *t, const mxp_ew_set *s) {
    for (int d = 0; d < MXP_DTYPE_COUNT; d++) {
        t->add[d] = s->add[d];
        t->mul[d] = s->mul[d];
        t->relu_backward[d] = s->relu_backward[d];
        t->gelu_tanh_backward[d] = s->gelu_tanh_backward[d];
        t->scale[d] = s->scale[d];
        t->relu[d] = s->relu[d];
        t->gelu_tanh[d] = s->gelu_tanh[d];
        for (int e = 0; e < MXP_DTYPE_COUNT; e++) t->unscale[d][e] = s->unscale[d][e];
    }
    t->exp_f32 = s->exp_f32;
}

/* One ISA's reduction kernels: [SUM, MAX, SUMSQ][dtype]. MEAN gets the SUM
 * kernels; the driver divides. */
typedef struct mxp_reduce_set {
    mxp_reduce_leaf_fn leaf[3][MXP_DTYPE_COUNT];
    mxp_reduce_cols_fn cols[3][MXP_DTYPE_COUNT];
} mxp_reduce_set;

static inline void mxp_reduce_install(mxp_ew_table *t, const mxp_reduce_set *s) {
    static const mxp_reduce_op ops[3] = {MXP_REDUCE_SUM, MXP_REDUCE_MAX, MXP_REDUCE_SUMSQ};
    for (int o = 0; o < 3; o++)
        for (int d = 0; d < MXP_DTYPE_COUNT; d++) {
            t->reduce_leaf[ops[o]][d] = s->leaf[o][d];
            t->reduce_cols[ops[o]][d] = s->cols[o][d];
        }
    for (int d = 0; d < MXP_DTYPE_COUNT; d++) {
        t->reduce_leaf[MXP_REDUCE_MEAN][d] = s->leaf[0][d];
        t->reduce_cols[MXP_REDUCE_MEAN][d] = s->cols[0][d];
    }
}

/* Each file fills the slots of its concern; ref first, then the ISA files in order. */
void mxp_ew_register_ref(mxp_ew_table *t);
void mxp_ew_register_avx2(mxp_ew_table *t);
void mxp_ew_register_avx512(mxp_ew_table *t);
void mxp_pool_register_avx512(mxp_ew_table *t);
void mxp_reduce_register_ref(mxp_ew_table *t);
void mxp_reduce_register_avx2(mxp_ew_table *t);
void mxp_reduce_register_avx512(mxp_ew_table *t);
void mxp_softmax_register_ref(mxp_ew_table *t);
void mxp_softmax_register_avx2(mxp_ew_table *t);
void mxp_softmax_register_avx512(mxp_ew_table *t);

/* The complete table of an ISA family (built once; ref under anything it lacks). */
const mxp_ew_table *mxp_ew_table_for(mxp_isa isa);

/* The element-wise ops, for the generic kernel bodies of every ISA file. */
enum { OP_ADD, OP_MUL, OP_RELU_BWD, OP_GELU_BWD, OP_SCALE, OP_RELU, OP_GELU };

/* ---- constants the drivers, kernels and tests share ---------------------- */

enum {
    /* Element-wise: a thread must get at least this many elements before one more thread
     * pays for its wake-up (a warm OpenMP team costs a few microseconds; 2^16 fp32 adds take
     * ~10 us on one core): memory-bound ops (add, scale, unscale) ... */
    MXP_EW_GRAIN = 1 << 16,
    /* ... and ops that evaluate an exp per element (GELU, softmax rows) */
    MXP_EW_GRAIN_EXP = 1 << 12,
    /* Threads split the elements in slices whose boundaries are multiples of this (a cache
     * line for every dtype), so no two threads write the same line. */
    MXP_EW_ALIGN = 64,

    /* Reductions: the leaf a kernel sums in one call (SIMD lanes inside); leaf sums are
     * combined pairwise, so the rounding error grows with log2(n), not n. */
    MXP_REDUCE_LEAF = 1024,
    /* n is split into at most this many tasks of whole leaves, sized by n alone, so the
     * order of additions never depends on how many threads share the tasks. */
    MXP_REDUCE_TASKS = 64,
    MXP_REDUCE_TASK_MIN = 1 << 16,
    /* Column reductions add the rows of a block in order, then the block sums in order. */
    MXP_REDUCE_ROW_BLOCK = 128
};

/* GELU-tanh: gelu(x) = 0.5 x (1 + tanh(u)), u = K (x + C x^3), which equals x sigmoid(2u).
 * Every kernel evaluates the second form (eltwise.c says how, with one exp that cannot
 * overflow): mathematically equal, and free of the cancellation in 1 + tanh(u) at x < 0. */
#define MXP_GELU_K 0.7978845608028654f /* sqrt(2 / pi) */
#define MXP_GELU_C 0.044715f

/* ---- scalar helpers ------------------------------------------------------ */

/* max that returns NaN when either argument is NaN (fmaxf would drop it) */
static inline float mxp_ew_max(float a, float b) {
    if (a != a || b != b) return a + b;
    return a > b ? a : b;
}

/* how two partial results of a reduction combine */
static inline float mxp_reduce_combine(mxp_reduce_op op, float a, float b) {
    return op == MXP_REDUCE_MAX ? mxp_ew_max(a, b) : a + b;
}

/* what a reduction of zero elements gives */
static inline float mxp_reduce_empty(mxp_reduce_op op) {
    switch (op) {
    case MXP_REDUCE_MEAN: return __builtin_nanf("");
    case MXP_REDUCE_MAX: return -__builtin_inff();
    default: return 0.0f;
    }
}

/* Threads for n elements of work when each must get at least grain of them. */
static inline int mxp_ew_threads(size_t n, size_t grain) {
    if (n < 2 * grain) return 1;
    const size_t most = n / grain;
    const int nt = mxp_num_threads();
    return most < (size_t)nt ? (int)most : nt;
}

#endif
