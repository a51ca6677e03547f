/*
 * autograd_impl.h - what ops.c (and the nn layer's own ops) need from the
 * graph beyond the public header. Never installed.
 */
#ifndef MIXPREC_AUTOGRAD_IMPL_H
#define MIXPREC_AUTOGRAD_IMPL_H

#include "mixprec/autograd.h"

/* Monotonic seconds. */
double mxp_graph_clock(void);

/* Whether per-op timing is on; add one forward timing for op. */
int mxp_graph_profiling(const mxp_graph_t *g);
void mxp_graph_profile_forward(mxp_graph_t *g, const char *op, double seconds);

/* Reserve `words` Philox words for a dropout mask; returns their offset in the
 * stream of *seed (the graph's seed). */
uint64_t mxp_graph_rng_take(mxp_graph_t *g, uint64_t words, uint64_t *seed);

#endif
