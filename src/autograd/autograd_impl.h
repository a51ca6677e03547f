/*
 * autograd_impl.h - what ops.c, ops_transformer.c (and the nn layer's own ops)
 * need from the graph beyond the public header, and the helpers the op files
 * share (defined in ops.c). Never installed.
 */
#ifndef MIXPREC_AUTOGRAD_IMPL_H
#define MIXPREC_AUTOGRAD_IMPL_H

#include "mixprec/autograd.h"
#include "base/base_impl.h"

/* Monotonic seconds. */
double mxp_graph_clock(void);

/* Whether per-op timing is on; add one forward timing for op. */
int mxp_graph_profiling(const mxp_graph_t *g);
void mxp_graph_profile_forward(mxp_graph_t *g, const char *op, double seconds);

/* Reserve `words` Philox words for a dropout mask; returns their offset in the
 * stream of *seed (the graph's seed). */
uint64_t mxp_graph_rng_take(mxp_graph_t *g, uint64_t words, uint64_t *seed);

/* ---- helpers of the op files (ops.c) ---------------------------------------- */

/* Time an op's forward when profiling is on: PROF_BEGIN(g) first in the
 * function body (after the argument checks), PROF_END(g, "op") before success. */
#define PROF_BEGIN(g) double prof_t0_ = mxp_graph_profiling(g) ? mxp_graph_clock() : 0.0
#define PROF_END(g, op)                                                                            \
    do {                                                                                           \
        if (mxp_graph_profiling(g))                                                                \
            mxp_graph_profile_forward(g, op, mxp_graph_clock() - prof_t0_);                        \
    } while (0)

/* t's shape and dtype as text in buf, for messages; returns buf. */
const char *mxp_ag_shape_str(const mxp_tensor *t, char *buf, size_t size);

/* A contiguous arena tensor with t's dtype and shape (contents uninitialised). */
mxp_status mxp_ag_tmp_like(mxp_graph_t *g, mxp_tensor **out, const mxp_tensor *t);

/* size zeroed bytes in the graph arena for an op's saved context; NULL when full. */
void *mxp_ag_ctx(mxp_graph_t *g, size_t size);

/* Where an overwriting backward kernel writes v's contribution: *dest is v's
 * gradient itself (*add = 0) when it holds nothing yet, else an arena
 * temporary (*add = 1) that mxp_ag_grad_commit then adds to it (fp32, one
 * rounding). */
mxp_status mxp_ag_grad_dest(mxp_graph_t *g, mxp_var *v, mxp_tensor **dest, int *add);
mxp_status mxp_ag_grad_commit(mxp_var *v, mxp_tensor *dest, int add);

/* grad(v) (n) += src (n) fp32, added in fp32 and rounded once to v's dtype;
 * src is overwritten (it ends holding the fp32 sum). */
mxp_status mxp_ag_grad_add_f32(mxp_graph_t *g, mxp_var *v, float *src, size_t n);

/* MXP_ERR_DTYPE unless v (named `what` in op's message) is in the working dtype. */
mxp_status mxp_ag_check_work(mxp_graph_t *g, const char *op, const char *what, const mxp_var *v);

/* *y = x when x is in the working dtype, else a recorded cast of it. */
mxp_status mxp_ag_cast_to_work(mxp_graph_t *g, mxp_var **y, mxp_var *x);

static inline int mxp_ag_needs_grad(const mxp_var *v) { return v && v->requires_grad; }

/* The product of all dimensions but the last: the rows of a (..., K) tensor. */
static inline int64_t mxp_ag_rows(const mxp_tensor *t) {
    int64_t r = 1;
    for (int d = 0; d + 1 < t->ndim; d++) r *= t->shape[d];
    return r;
}

#endif
