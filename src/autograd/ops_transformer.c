/*
 * ops_transformer.c - the differentiable ops of a GPT block that ops.c does not have: token +
 * position embedding, layernorm and causal self-attention, each a forward through the
 * kernels of src/kernels/cpu/transformer.c, what it saves, and its backward. The shared
 * helpers (gradient destinations, fp32 gradient sums, profiling) are ops.c's, declared in
 * autograd_impl.h. Linear layers and the loss are ops.c's.
 */
#include <string.h>

#include "autograd/autograd_impl.h"

/* ---- helpers ----------------------------------------------------------------------- */

/* grad(v) rows idx[u] (u < U) += src (U, C) fp32, each row added in fp32 and rounded once;
 * rows of v's gradient that no idx names keep their value (or become 0 when the gradient
 * held nothing yet). For an embedding table only the rows a batch used are touched. */
static mxp_status grad_add_rows_f32(mxp_graph_t *g, mxp_var *v, const int32_t *idx, float *src,
                                    size_t U, size_t C) {
    float beta;
    mxp_tensor *gt = mxp_var_grad_target(g, v, &beta);
    if (!gt) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    const size_t es = mxp_dtype_size(gt->dtype);
    if (beta == 0.0f) memset(gt->data, 0, (size_t)mxp_tensor_numel(gt) * es); /* +0 bits */
    for (size_t u = 0; u < U; u++) {
        char *row = (char *)gt->data + (size_t)idx[u] * C * es;
        float *s = src + u * C;
        if (beta != 0.0f) {
            enum { BLK = 1024 };
            float old[BLK];
            for (size_t j0 = 0; j0 < C; j0 += BLK) {
                const size_t m = MXP_MIN((size_t)BLK, C - j0);
                MXP_TRY(mxp_convert(old, MXP_DTYPE_F32, row + j0 * es, gt->dtype, m));
                for (size_t j = 0; j < m; j++) s[j0 + j] += old[j];
            }
        }
        MXP_TRY(mxp_convert(row, gt->dtype, s, MXP_DTYPE_F32, C));
    }
    return MXP_OK;
}

static void *scratch_zeroed(mxp_graph_t *g, size_t bytes) {
    void *p = mxp_arena_alloc(mxp_graph_scratch(g), bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

/* ---- embedding (FOLLOW) ---------------------------------------------------------------- */

typedef struct embedding_ctx {
    const int32_t *tokens; /* (B, T), lent */
    int64_t B, T;
} embedding_ctx;

static mxp_status embedding_backward(mxp_graph_t *g, mxp_node *n) {
    embedding_ctx *c = n->ctx;
    mxp_var *wte = n->in[0], *wpe = n->in[1];
    const mxp_dtype dt = mxp_graph_dtype(g);
    const int64_t V = wte->value->shape[0], C = wte->value->shape[1];
    const size_t rows = (size_t)(c->B * c->T);
    const void *dx = n->out->grad->data; /* (B, T, C) */
    if (mxp_ag_needs_grad(wte)) {
        /* the rows the batch used, numbered by first appearance: the kernel sums into a
         * compact (U, C) fp32 block through the renumbered tokens, in the same order as
         * into the full table */
        int32_t *slot = mxp_arena_alloc(mxp_graph_scratch(g), (size_t)V * sizeof(int32_t));
        int32_t *used = mxp_arena_alloc(mxp_graph_scratch(g), rows * sizeof(int32_t));
        int32_t *local = mxp_arena_alloc(mxp_graph_scratch(g), rows * sizeof(int32_t));
        if (!slot || !used || !local) return MXP_FAIL(MXP_ERR_NOMEM, "graph scratch arena");
        memset(slot, 0xff, (size_t)V * sizeof(int32_t)); /* -1 */
        size_t U = 0;
        for (size_t r = 0; r < rows; r++) {
            const int32_t tok = c->tokens[r];
            if (slot[tok] < 0) {
                slot[tok] = (int32_t)U;
                used[U++] = tok;
            }
            local[r] = slot[tok];
        }
        float *dwte = scratch_zeroed(g, U * (size_t)C * sizeof(float)); /* (U, C) */
        if (!dwte) return MXP_FAIL(MXP_ERR_NOMEM, "graph scratch arena");
        MXP_TRY(mxp_embedding_backward(dwte, NULL, dx, local, dt, c->B, c->T, C, (int64_t)U));
        MXP_TRY(grad_add_rows_f32(g, wte, used, dwte, U, (size_t)C));
    }
    if (mxp_ag_needs_grad(wpe)) {
        float *dwpe = scratch_zeroed(g, (size_t)(c->T * C) * sizeof(float)); /* (T, C) */
        int32_t *pos = mxp_arena_alloc(mxp_graph_scratch(g), (size_t)c->T * sizeof(int32_t));
        if (!dwpe || !pos) return MXP_FAIL(MXP_ERR_NOMEM, "graph scratch arena");
        for (int64_t t = 0; t < c->T; t++) pos[t] = (int32_t)t;
        MXP_TRY(mxp_embedding_backward(NULL, dwpe, dx, c->tokens, dt, c->B, c->T, C, V));
        MXP_TRY(grad_add_rows_f32(g, wpe, pos, dwpe, (size_t)c->T, (size_t)C));
    }
    return MXP_OK;
}

mxp_status mxp_op_embedding(mxp_graph_t *g, mxp_var **x, const int32_t *tokens, int64_t B,
                            int64_t T, mxp_var *wte, mxp_var *wpe) {
    if (!g || !x || !tokens || !wte || !wpe)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "embedding: NULL argument");
    char s1[96], s2[96];
    const mxp_tensor *ev = wte->value, *pv = wpe->value;
    if (B < 1 || T < 1 || ev->ndim != 2 || pv->ndim != 2 || ev->shape[1] != pv->shape[1] ||
        pv->shape[0] < T || T > INT32_MAX || !mxp_tensor_is_contiguous(ev) ||
        !mxp_tensor_is_contiguous(pv))
        return MXP_FAIL(MXP_ERR_SHAPE,
                        "embedding: tokens (%lld, %lld) do not fit wte %s (V, C) and wpe %s "
                        "(block >= T, C)",
                        (long long)B, (long long)T, mxp_ag_shape_str(ev, s1, sizeof s1),
                        mxp_ag_shape_str(pv, s2, sizeof s2));
    MXP_TRY(mxp_ag_check_work(g, "embedding", "wte", wte));
    MXP_TRY(mxp_ag_check_work(g, "embedding", "wpe", wpe));
    PROF_BEGIN(g);
    const mxp_dtype dt = mxp_graph_dtype(g);
    const int64_t V = ev->shape[0], C = ev->shape[1];
    MXP_TRY(mxp_graph_var(g, x, dt, 3, (int64_t[]){B, T, C}));
    MXP_TRY(mxp_embedding_forward((*x)->value->data, tokens, ev->data, pv->data, dt, B, T, C, V));
    embedding_ctx *c = mxp_ag_ctx(g, sizeof *c);
    if (!c) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    c->tokens = tokens;
    c->B = B;
    c->T = T;
    mxp_var *in[2] = {wte, wpe};
    MXP_TRY(
        mxp_graph_record(g, "embedding", MXP_PREC_CLASS_FOLLOW, *x, in, 2, c, embedding_backward));
    PROF_END(g, "embedding");
    return MXP_OK;
}

/* ---- layernorm (FP32 statistics, FOLLOW output) ---------------------------------------- */

typedef struct layernorm_ctx {
    float *mean, *rstd; /* (rows) fp32 */
} layernorm_ctx;

static mxp_status layernorm_backward(mxp_graph_t *g, mxp_node *n) {
    layernorm_ctx *c = n->ctx;
    mxp_var *x = n->in[0], *w = n->in[1], *b = n->in[2];
    const mxp_dtype dt = mxp_graph_dtype(g);
    const size_t rows = (size_t)mxp_ag_rows(x->value), C = (size_t)w->value->shape[0];
    mxp_tensor *dx = NULL;
    int add = 0;
    if (mxp_ag_needs_grad(x)) {
        MXP_TRY(mxp_ag_grad_dest(g, x, &dx, &add));
    } else if (mxp_tensor_arena(mxp_graph_scratch(g), &dx, dt, x->value->ndim, x->value->shape) !=
               MXP_OK) { /* the kernel always writes dx */
        return MXP_FAIL(MXP_ERR_NOMEM, "graph scratch arena");
    }
    float *dw = mxp_ag_needs_grad(w) ? scratch_zeroed(g, C * sizeof(float)) : NULL;
    float *db = mxp_ag_needs_grad(b) ? scratch_zeroed(g, C * sizeof(float)) : NULL;
    if ((mxp_ag_needs_grad(w) && !dw) || (mxp_ag_needs_grad(b) && !db))
        return MXP_FAIL(MXP_ERR_NOMEM, "graph scratch arena");
    MXP_TRY(mxp_layernorm_backward(dx->data, dw, db, n->out->grad->data, x->value->data, c->mean,
                                   c->rstd, w->value->data, dt, rows, C));
    if (mxp_ag_needs_grad(x)) MXP_TRY(mxp_ag_grad_commit(x, dx, add));
    if (dw) MXP_TRY(mxp_ag_grad_add_f32(g, w, dw, C));
    if (db) MXP_TRY(mxp_ag_grad_add_f32(g, b, db, C));
    return MXP_OK;
}

mxp_status mxp_op_layernorm(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                            float eps) {
    if (!g || !y || !x || !w || !b)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "layernorm: NULL argument");
    char s1[96], s2[96];
    const mxp_tensor *xv = x->value;
    if (xv->ndim < 1 || w->value->ndim != 1 || b->value->ndim != 1 ||
        xv->shape[xv->ndim - 1] != w->value->shape[0] || b->value->shape[0] != w->value->shape[0] ||
        !mxp_tensor_is_contiguous(xv))
        return MXP_FAIL(MXP_ERR_SHAPE, "layernorm: input %s does not fit weight %s (C)",
                        mxp_ag_shape_str(xv, s1, sizeof s1),
                        mxp_ag_shape_str(w->value, s2, sizeof s2));
    if (!(eps > 0.0f))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "layernorm: eps = %g must be > 0", (double)eps);
    MXP_TRY(mxp_ag_check_work(g, "layernorm", "the weight", w));
    MXP_TRY(mxp_ag_check_work(g, "layernorm", "the bias", b));
    PROF_BEGIN(g);
    MXP_TRY(mxp_ag_cast_to_work(g, &x, x));
    xv = x->value;
    const mxp_dtype dt = mxp_graph_dtype(g);
    const size_t rows = (size_t)mxp_ag_rows(xv), C = (size_t)w->value->shape[0];
    MXP_TRY(mxp_graph_var(g, y, dt, xv->ndim, xv->shape));
    layernorm_ctx *c = mxp_ag_ctx(g, sizeof *c);
    if (!c) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    if (mxp_graph_training(g)) { /* the statistics backward needs, fp32 (2 floats a row) */
        c->mean = mxp_arena_alloc(mxp_graph_arena(g), rows * sizeof(float));
        c->rstd = mxp_arena_alloc(mxp_graph_arena(g), rows * sizeof(float));
        if (!c->mean || !c->rstd) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    }
    MXP_TRY(mxp_layernorm_forward((*y)->value->data, c->mean, c->rstd, xv->data, w->value->data,
                                  b->value->data, dt, rows, C, eps));
    mxp_var *in[3] = {x, w, b};
    MXP_TRY(
        mxp_graph_record(g, "layernorm", MXP_PREC_CLASS_FP32, *y, in, 3, c, layernorm_backward));
    PROF_END(g, "layernorm");
    return MXP_OK;
}

/* ---- causal self-attention (LOW products, FP32 softmax) ----------------------------------- */

typedef struct attention_ctx {
    int64_t NH;
    mxp_tensor *att; /* (B, NH, T, T) in the working dtype: the probabilities */
} attention_ctx;

static mxp_status attention_backward(mxp_graph_t *g, mxp_node *n) {
    attention_ctx *c = n->ctx;
    mxp_var *qkv = n->in[0];
    const int64_t *s = qkv->value->shape;
    if (!c->att) return MXP_OK; /* qkv needs no gradient */
    mxp_tensor *dqkv;
    int add;
    MXP_TRY(mxp_ag_grad_dest(g, qkv, &dqkv, &add));
    MXP_TRY(mxp_attention_backward(dqkv->data, n->out->grad->data, qkv->value->data, c->att->data,
                                   mxp_graph_dtype(g), s[0], s[1], s[2] / 3, c->NH));
    return mxp_ag_grad_commit(qkv, dqkv, add);
}

mxp_status mxp_op_attention(mxp_graph_t *g, mxp_var **y, mxp_var *qkv, int64_t n_head) {
    if (!g || !y || !qkv) return MXP_FAIL(MXP_ERR_INVALID_ARG, "attention: NULL argument");
    char s1[96];
    const mxp_tensor *qv = qkv->value;
    if (qv->ndim != 3 || qv->shape[2] % 3 != 0 || qv->shape[2] == 0 ||
        !mxp_tensor_is_contiguous(qv))
        return MXP_FAIL(MXP_ERR_SHAPE, "attention: qkv %s must be contiguous (B, T, 3C)",
                        mxp_ag_shape_str(qv, s1, sizeof s1));
    const int64_t B = qv->shape[0], T = qv->shape[1], C = qv->shape[2] / 3;
    if (n_head < 1 || C % n_head != 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "attention: C = %lld is not a multiple of %lld heads",
                        (long long)C, (long long)n_head);
    PROF_BEGIN(g);
    MXP_TRY(mxp_ag_cast_to_work(g, &qkv, qkv));
    const mxp_dtype dt = mxp_graph_dtype(g);
    MXP_TRY(mxp_graph_var(g, y, dt, 3, (int64_t[]){B, T, C}));
    attention_ctx *c = mxp_ag_ctx(g, sizeof *c);
    if (!c) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    c->NH = n_head;
    /* the probabilities only when a backward will read them; evaluation keeps nothing */
    if (mxp_graph_training(g) && qkv->requires_grad)
        MXP_TRY(mxp_tensor_arena(mxp_graph_arena(g), &c->att, dt, 4, (int64_t[]){B, n_head, T, T}));
    MXP_TRY(mxp_attention_forward((*y)->value->data, c->att ? c->att->data : NULL, qkv->value->data,
                                  dt, B, T, C, n_head));
    MXP_TRY(
        mxp_graph_record(g, "attention", MXP_PREC_CLASS_LOW, *y, &qkv, 1, c, attention_backward));
    PROF_END(g, "attention");
    return MXP_OK;
}
