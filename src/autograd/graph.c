/*
 * graph.c - the per-step tape: variables and nodes in an arena, the reverse
 * walk, gradient accumulation, per-op profiling. The derivative rules of the
 * ops are in ops.c; this file knows nothing about any particular op.
 */
#include <string.h>
#include <time.h>

#include "autograd/autograd_impl.h"
#include "base/base_impl.h"

#define PROFILE_KINDS 32

typedef struct profile_row {
    const char *op;
    double fwd_s, bwd_s;
    int64_t calls;
} profile_row;

struct mxp_graph {
    mxp_dtype work;
    mxp_arena_t *arena;
    mxp_arena_t *scratch; /* per-op workspace, apart from the values */
    mxp_node **tape;      /* (cap) nodes of this step, in execution order */
    int n_nodes, cap;
    int training;
    int backward_done;
    uint64_t seed;
    uint64_t rng_offset; /* Philox words used by dropout so far in this step */
    int profiling;
    const char *label; /* mxp_graph_set_profile_label's, or NULL: rows by op kind */
    profile_row prof[PROFILE_KINDS];
    int n_prof;
};

int mxp_graph_n_nodes(const mxp_graph_t *g) { return g ? g->n_nodes : 0; }

const mxp_node *mxp_graph_node(const mxp_graph_t *g, int i) {
    return g && i >= 0 && i < g->n_nodes ? g->tape[i] : NULL;
}

double mxp_graph_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

mxp_status mxp_graph_create(mxp_graph_t **out, mxp_dtype work) {
    if (!out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (work != MXP_DTYPE_F32 && work != MXP_DTYPE_BF16 && work != MXP_DTYPE_F16)
        return MXP_FAIL(MXP_ERR_DTYPE, "working dtype %d is not f32, bf16 or f16", (int)work);
    mxp_graph_t *g = mxp_alloc(sizeof *g);
    if (!g) return MXP_FAIL(MXP_ERR_NOMEM, "graph");
    memset(g, 0, sizeof *g);
    g->work = work;
    g->training = 1;
    mxp_status st = mxp_arena_create(&g->arena, 0);
    if (st == MXP_OK) st = mxp_arena_create(&g->scratch, 0);
    if (st != MXP_OK) {
        mxp_arena_free(g->arena);
        mxp_free(g);
        return st;
    }
    *out = g;
    return MXP_OK;
}

void mxp_graph_free(mxp_graph_t *g) {
    if (!g) return;
    mxp_arena_free(g->arena);
    mxp_arena_free(g->scratch);
    mxp_free(g->tape);
    mxp_free(g);
}

void mxp_graph_reset(mxp_graph_t *g) {
    if (!g) return;
    g->n_nodes = 0;
    g->backward_done = 0;
    g->rng_offset = 0;
    mxp_arena_reset(g->arena);
    mxp_arena_reset(g->scratch);
}

mxp_dtype mxp_graph_dtype(const mxp_graph_t *g) { return g->work; }
mxp_arena_t *mxp_graph_arena(mxp_graph_t *g) { return g->arena; }
mxp_arena_t *mxp_graph_scratch(mxp_graph_t *g) { return g->scratch; }
void mxp_graph_set_training(mxp_graph_t *g, int training) { g->training = training != 0; }
int mxp_graph_training(const mxp_graph_t *g) { return g->training; }
void mxp_graph_set_seed(mxp_graph_t *g, uint64_t seed) { g->seed = seed; }
void mxp_graph_set_profiling(mxp_graph_t *g, int on) { g->profiling = on != 0; }
void mxp_graph_set_profile_label(mxp_graph_t *g, const char *label) {
    if (g) g->label = label;
}
int mxp_graph_profiling(const mxp_graph_t *g) { return g->profiling; }

uint64_t mxp_graph_rng_take(mxp_graph_t *g, uint64_t words, uint64_t *seed) {
    uint64_t off = g->rng_offset;
    g->rng_offset += words;
    *seed = g->seed;
    return off;
}

static profile_row *profile_row_for(mxp_graph_t *g, const char *op) {
    for (int i = 0; i < g->n_prof; i++)
        if (g->prof[i].op == op || strcmp(g->prof[i].op, op) == 0) return &g->prof[i];
    if (g->n_prof == PROFILE_KINDS) return NULL;
    profile_row *r = &g->prof[g->n_prof++];
    r->op = op;
    return r;
}

void mxp_graph_profile_forward(mxp_graph_t *g, const char *op, double seconds) {
    profile_row *r = profile_row_for(g, g->label ? g->label : op);
    if (!r) return;
    r->fwd_s += seconds;
    r->calls++;
}

void mxp_graph_profile(const mxp_graph_t *g,
                       void (*fn)(const char *op, double fwd_s, double bwd_s, int64_t calls,
                                  void *user),
                       void *user) {
    if (!g || !fn) return;
    for (int i = 0; i < g->n_prof; i++)
        fn(g->prof[i].op, g->prof[i].fwd_s, g->prof[i].bwd_s, g->prof[i].calls, user);
}

mxp_var *mxp_graph_input(mxp_graph_t *g, mxp_tensor *t) {
    mxp_var *v = mxp_arena_alloc(g->arena, sizeof *v);
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->value = t;
    v->name = "input";
    return v;
}

mxp_status mxp_graph_var(mxp_graph_t *g, mxp_var **out, mxp_dtype dt, int ndim,
                         const int64_t *shape) {
    mxp_var *v = mxp_arena_alloc(g->arena, sizeof *v);
    if (!v) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    memset(v, 0, sizeof *v);
    MXP_TRY(mxp_tensor_arena(g->arena, &v->value, dt, ndim, shape));
    *out = v;
    return MXP_OK;
}

mxp_status mxp_graph_record(mxp_graph_t *g, const char *op, mxp_prec_class prec, mxp_var *out,
                            mxp_var *const *in, int n_in, void *ctx, mxp_backward_fn backward) {
    if (!g || !op || !out || n_in < 0 || n_in > 4 || (n_in && !in) || !backward)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_graph_record: bad arguments for op %s",
                        op ? op : "?");
    out->name = op;
    if (!g->training) return MXP_OK;
    int needs = 0;
    for (int i = 0; i < n_in; i++) needs |= in[i] && in[i]->requires_grad;
    if (!needs) return MXP_OK; /* nothing upstream wants a gradient: no node */
    mxp_node *n = mxp_arena_alloc(g->arena, sizeof *n);
    if (!n) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    memset(n, 0, sizeof *n);
    n->op = op;
    n->prof = g->label ? g->label : op;
    n->prec = prec;
    n->out = out;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    n->ctx = ctx;
    n->backward = backward;
    if (g->n_nodes == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        mxp_node **t = mxp_alloc_array((size_t)cap, sizeof *t);
        if (!t) return MXP_FAIL(MXP_ERR_NOMEM, "graph tape of %d nodes", cap);
        if (g->n_nodes) memcpy(t, g->tape, (size_t)g->n_nodes * sizeof *t);
        mxp_free(g->tape);
        g->tape = t;
        g->cap = cap;
    }
    g->tape[g->n_nodes++] = n;
    out->node = n;
    out->requires_grad = 1;
    return MXP_OK;
}

mxp_tensor *mxp_var_grad_target(mxp_graph_t *g, mxp_var *v, float *beta) {
    if (!v->grad) {
        if (mxp_tensor_arena(g->arena, &v->grad, v->value->dtype, v->value->ndim,
                             v->value->shape) != MXP_OK)
            return NULL;
        v->has_grad = 0;
    }
    *beta = v->has_grad ? 1.0f : 0.0f;
    v->has_grad = 1;
    return v->grad;
}

mxp_status mxp_var_accumulate(mxp_graph_t *g, mxp_var *v, const mxp_tensor *contrib) {
    const int64_t n = mxp_tensor_numel(v->value);
    if (mxp_tensor_numel(contrib) != n || contrib->dtype != v->value->dtype)
        return MXP_FAIL(MXP_ERR_SHAPE, "gradient of %s: contribution does not match its value",
                        v->name ? v->name : "?");
    float beta;
    mxp_tensor *gt = mxp_var_grad_target(g, v, &beta);
    if (!gt) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    if (beta == 0.0f) {
        memcpy(gt->data, contrib->data, (size_t)n * mxp_dtype_size(contrib->dtype));
        return MXP_OK;
    }
    return mxp_add(gt->data, gt->data, contrib->data, gt->dtype, (size_t)n);
}

/* the reverse walk over the tape, after the seed gradient is in place */
static mxp_status walk(mxp_graph_t *g) {
    g->backward_done = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        mxp_node *n = g->tape[i];
        if (!n->out->has_grad) continue; /* no path from the loss to this node */
        double t0 = g->profiling ? mxp_graph_clock() : 0.0;
        MXP_TRY(n->backward(g, n));
        if (g->profiling) {
            profile_row *r = profile_row_for(g, n->prof ? n->prof : n->op);
            if (r) r->bwd_s += mxp_graph_clock() - t0;
        }
    }
    return MXP_OK;
}

mxp_status mxp_graph_backward(mxp_graph_t *g, mxp_var *loss, float seed) {
    if (!g || !loss || !loss->value || mxp_tensor_numel(loss->value) != 1 ||
        loss->value->dtype != MXP_DTYPE_F32)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "backward needs the fp32 scalar loss");
    if (g->backward_done)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "backward was already run on this step's graph; reset it first");
    if (!loss->requires_grad || !loss->node) return MXP_OK; /* nothing to differentiate */
    float beta;
    mxp_tensor *dl = mxp_var_grad_target(g, loss, &beta);
    if (!dl) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    *(float *)dl->data = beta != 0.0f ? *(float *)dl->data + seed : seed;
    return walk(g);
}

mxp_status mxp_graph_backward_from(mxp_graph_t *g, mxp_var *v, const mxp_tensor *dv) {
    if (!g || !v || !v->value || !dv)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "backward_from: NULL argument");
    if (g->backward_done)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "backward was already run on this step's graph; reset it first");
    if (!mxp_tensor_is_contiguous(dv))
        return MXP_FAIL(MXP_ERR_SHAPE, "backward_from: the seed gradient must be contiguous");
    if (!v->requires_grad) return MXP_OK;
    MXP_TRY(mxp_var_accumulate(g, v, dv));
    return walk(g);
}
