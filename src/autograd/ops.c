/*
 * ops.c - every differentiable op: its forward (through the kernels layer),
 * what it saves, and its backward, all in one place (micrograd style); the
 * transformer ops (embedding, layernorm, attention) are in ops_transformer.c
 * and share the helpers below through autograd_impl.h.
 * Precision follows the autocast classes of mixprec/autograd.h; no op here
 * allocates outside the graph's arena.
 */
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "autograd/autograd_impl.h"
#include "base/base_impl.h"

/* ---- helpers shared with ops_transformer.c (autograd_impl.h) ---------------- */

const char *mxp_ag_shape_str(const mxp_tensor *t, char *buf, size_t size) {
    return mxp_tensor_describe(t, buf, size);
}

mxp_status mxp_ag_tmp_like(mxp_graph_t *g, mxp_tensor **out, const mxp_tensor *t) {
    return mxp_tensor_arena(mxp_graph_arena(g), out, t->dtype, t->ndim, t->shape);
}

void *mxp_ag_ctx(mxp_graph_t *g, size_t size) {
    void *p = mxp_arena_alloc(mxp_graph_arena(g), size);
    if (p) memset(p, 0, size);
    return p;
}

/* A contribution computed by `fill` either straight into v's gradient (when
 * it holds nothing yet) or into a temporary that is then added. Element-wise
 * backward kernels overwrite their output, so this is how they get +=. */
mxp_status mxp_ag_grad_dest(mxp_graph_t *g, mxp_var *v, mxp_tensor **dest, int *add) {
    float beta;
    *add = 0;
    mxp_tensor *gt = mxp_var_grad_target(g, v, &beta);
    if (!gt) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    *add = beta != 0.0f;
    if (!*add) {
        *dest = gt;
        return MXP_OK;
    }
    return mxp_ag_tmp_like(g, dest, v->value);
}

mxp_status mxp_ag_grad_commit(mxp_var *v, mxp_tensor *dest, int add) {
    if (!add) return MXP_OK;
    return mxp_add(v->grad->data, v->grad->data, dest->data, v->grad->dtype,
                   (size_t)mxp_tensor_numel(dest));
}

/* grad(v) (n) += src (n) fp32 (a bias gradient from a column reduction),
 * added in fp32 and rounded once to v's dtype. The old gradient is widened a
 * stack block at a time, so a vocabulary-sized sum needs no second copy. */
mxp_status mxp_ag_grad_add_f32(mxp_graph_t *g, mxp_var *v, float *src, size_t n) {
    float beta;
    mxp_tensor *gt = mxp_var_grad_target(g, v, &beta);
    if (!gt) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    if (beta != 0.0f) {
        enum { BLK = 2048 };
        float old[BLK];
        const size_t es = mxp_dtype_size(gt->dtype);
        for (size_t i0 = 0; i0 < n; i0 += BLK) {
            const size_t m = MXP_MIN((size_t)BLK, n - i0);
            MXP_TRY(
                mxp_convert(old, MXP_DTYPE_F32, (const char *)gt->data + i0 * es, gt->dtype, m));
            for (size_t i = 0; i < m; i++) src[i0 + i] += old[i];
        }
    }
    return mxp_convert(gt->data, gt->dtype, src, MXP_DTYPE_F32, n);
}

/* dz = d(act(z))/dz * dy for the fused activations, given the op's saved
 * output y (ReLU: y > 0 exactly where z > 0) or pre-activation z (GELU). */
static mxp_status act_backward(mxp_graph_t *g, mxp_tensor **dz, mxp_act act, mxp_tensor *dy,
                               const mxp_tensor *y, const mxp_tensor *pre) {
    if (act == MXP_ACT_NONE) {
        *dz = dy;
        return MXP_OK;
    }
    MXP_TRY(mxp_ag_tmp_like(g, dz, dy));
    const size_t n = (size_t)mxp_tensor_numel(dy);
    if (act == MXP_ACT_RELU) return mxp_relu_backward((*dz)->data, dy->data, y->data, dy->dtype, n);
    return mxp_gelu_tanh_backward((*dz)->data, dy->data, pre->data, dy->dtype, n);
}

mxp_status mxp_ag_check_work(mxp_graph_t *g, const char *op, const char *what, const mxp_var *v) {
    if (v->value->dtype != mxp_graph_dtype(g))
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: %s is %s but the graph works in %s", op, what,
                        mxp_dtype_name(v->value->dtype), mxp_dtype_name(mxp_graph_dtype(g)));
    return MXP_OK;
}

/* ---- cast to the working dtype (FOLLOW: the input's gradient dtype) -------- */

static mxp_status cast_backward(mxp_graph_t *g, mxp_node *n) {
    mxp_var *x = n->in[0];
    mxp_tensor *d;
    int add;
    MXP_TRY(mxp_ag_grad_dest(g, x, &d, &add));
    MXP_TRY(mxp_convert(d->data, d->dtype, n->out->grad->data, n->out->grad->dtype,
                        (size_t)mxp_tensor_numel(d)));
    return mxp_ag_grad_commit(x, d, add);
}

mxp_status mxp_ag_cast_to_work(mxp_graph_t *g, mxp_var **y, mxp_var *x) {
    if (x->value->dtype == mxp_graph_dtype(g)) {
        *y = x;
        return MXP_OK;
    }
    if (!mxp_tensor_is_contiguous(x->value))
        return MXP_FAIL(MXP_ERR_SHAPE, "cast: the input must be contiguous");
    MXP_TRY(mxp_graph_var(g, y, mxp_graph_dtype(g), x->value->ndim, x->value->shape));
    MXP_TRY(mxp_convert((*y)->value->data, (*y)->value->dtype, x->value->data, x->value->dtype,
                        (size_t)mxp_tensor_numel(x->value)));
    return mxp_graph_record(g, "cast", MXP_PREC_CLASS_FOLLOW, *y, &x, 1, NULL, cast_backward);
}

/* ---- linear (LOW) ------------------------------------------------------------ */
/* x (..., K) is seen as (B, K) with B the product of its leading dimensions. The
 * weight is (N, K) (torch.nn.Linear) or, for linear_kn, (K, N) (GPT-2's Conv1D);
 * the layouts differ only in the transpose flags of the three GEMMs. */

typedef struct linear_ctx {
    mxp_act act;
    int kn;          /* w is (K, N) */
    mxp_tensor *pre; /* (B, N) z before the activation (GELU only) */
} linear_ctx;

static mxp_status linear_backward(mxp_graph_t *g, mxp_node *n) {
    linear_ctx *c = n->ctx;
    mxp_var *x = n->in[0], *w = n->in[1], *b = n->in[2];
    const mxp_dtype dt = mxp_graph_dtype(g);
    const size_t K = (size_t)x->value->shape[x->value->ndim - 1];
    const size_t B = (size_t)mxp_ag_rows(x->value);
    const size_t N = (size_t)w->value->shape[c->kn ? 1 : 0];
    mxp_tensor *dz;
    MXP_TRY(act_backward(g, &dz, c->act, n->out->grad, n->out->value, c->pre));
    float beta;
    if (mxp_ag_needs_grad(x)) { /* dx (B, K) += dz (B, N) w (N, K) [or w (K, N)^T] */
        mxp_tensor *dx = mxp_var_grad_target(g, x, &beta);
        if (!dx) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
        MXP_TRY(mxp_gemm(MXP_NO_TRANS, c->kn ? MXP_TRANS : MXP_NO_TRANS, B, K, N, 1.0f, dz->data,
                         dt, N, w->value->data, dt, c->kn ? N : K, beta, dx->data, dx->dtype, K,
                         NULL));
    }
    if (mxp_ag_needs_grad(w)) {
        mxp_tensor *dw = mxp_var_grad_target(g, w, &beta);
        if (!dw) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
        if (c->kn) /* dw (K, N) += x^T (K, B) dz (B, N) */
            MXP_TRY(mxp_gemm(MXP_TRANS, MXP_NO_TRANS, K, N, B, 1.0f, x->value->data, dt, K,
                             dz->data, dt, N, beta, dw->data, dw->dtype, N, NULL));
        else /* dw (N, K) += dz^T (N, B) x (B, K) */
            MXP_TRY(mxp_gemm(MXP_TRANS, MXP_NO_TRANS, N, K, B, 1.0f, dz->data, dt, N,
                             x->value->data, dt, K, beta, dw->data, dw->dtype, K, NULL));
    }
    if (mxp_ag_needs_grad(b)) { /* db (N) += column sums of dz, fp32 */
        float *s = mxp_arena_alloc(mxp_graph_arena(g), N * sizeof(float));
        if (!s) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
        MXP_TRY(mxp_reduce_cols(MXP_REDUCE_SUM, s, dz->data, dt, B, N));
        MXP_TRY(mxp_ag_grad_add_f32(g, b, s, N));
    }
    return MXP_OK;
}

static mxp_status linear(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                         mxp_act act, int kn) {
    const char *op = kn ? "linear_kn" : "linear";
    if (!g || !y || !x || !w) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL argument", op);
    PROF_BEGIN(g);
    char s1[96], s2[96];
    const mxp_tensor *xv = x->value, *wv = w->value;
    const int nd = xv->ndim;
    const int64_t N = wv->ndim == 2 ? wv->shape[kn ? 1 : 0] : -1;
    if (nd < 2 || wv->ndim != 2 || xv->shape[nd - 1] != wv->shape[kn ? 0 : 1] ||
        !mxp_tensor_is_contiguous(xv) || (b && (b->value->ndim != 1 || b->value->shape[0] != N)))
        return MXP_FAIL(MXP_ERR_SHAPE, "%s: input %s does not fit weight %s%s", op,
                        mxp_ag_shape_str(xv, s1, sizeof s1), mxp_ag_shape_str(wv, s2, sizeof s2),
                        kn ? " (K, N)" : " (N, K)");
    MXP_TRY(mxp_ag_check_work(g, op, "the weight", w));
    if (b) MXP_TRY(mxp_ag_check_work(g, op, "the bias", b));
    MXP_TRY(mxp_ag_cast_to_work(g, &x, x));
    const mxp_dtype dt = mxp_graph_dtype(g);
    const int64_t K = x->value->shape[nd - 1], B = mxp_ag_rows(x->value);
    int64_t yshape[MXP_MAX_DIMS];
    memcpy(yshape, x->value->shape, sizeof yshape);
    yshape[nd - 1] = N;
    MXP_TRY(mxp_graph_var(g, y, dt, nd, yshape));
    linear_ctx *c = mxp_ag_ctx(g, sizeof *c);
    if (!c) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    c->act = act;
    c->kn = kn;
    mxp_gemm_epilogue epi = {.bias = b ? b->value->data : NULL,
                             .bias_dtype = dt,
                             .bias_mode = b ? MXP_BIAS_COL : MXP_BIAS_NONE,
                             .act = act};
    if (act == MXP_ACT_GELU_TANH && mxp_graph_training(g)) {
        MXP_TRY(mxp_tensor_arena(mxp_graph_arena(g), &c->pre, dt, 2, (int64_t[]){B, N}));
        epi.pre_act = c->pre->data;
        epi.ld_pre = (size_t)N;
    }
    MXP_TRY(mxp_gemm(MXP_NO_TRANS, kn ? MXP_NO_TRANS : MXP_TRANS, (size_t)B, (size_t)N, (size_t)K,
                     1.0f, x->value->data, dt, (size_t)K, w->value->data, dt, (size_t)(kn ? N : K),
                     0.0f, (*y)->value->data, dt, (size_t)N, &epi));
    mxp_var *in[3] = {x, w, b};
    MXP_TRY(mxp_graph_record(g, "linear", MXP_PREC_CLASS_LOW, *y, in, 3, c, linear_backward));
    PROF_END(g, "linear");
    return MXP_OK;
}

mxp_status mxp_op_linear(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                         mxp_act act) {
    return linear(g, y, x, w, b, act, 0);
}

mxp_status mxp_op_linear_kn(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                            mxp_act act) {
    return linear(g, y, x, w, b, act, 1);
}

/* ---- conv2d (LOW): im2col + GEMM per chunk of images, NHWC ------------------- */
/* The batch is cut into chunks of whole images (about CONV_CHUNK_ROWS output
 * pixels each, a function of the shape alone) and each thread takes whole
 * chunks: im2col of a chunk, its GEMM and, backward, its col2im all stay in
 * the core's cache instead of streaming a batch-sized im2col matrix through
 * memory. Nothing is saved for backward but x: the columns are rebuilt. The
 * weight gradient sums fp32 partials of fixed groups of chunks in order, and
 * the input gradient of a chunk is accumulated in fp32 and rounded once, so
 * neither depends on the thread count. */

/* ~output pixels per chunk; at most this many weight-gradient partials */
enum { CONV_CHUNK_ROWS = 1024, CONV_GROUPS = 16 };

typedef struct conv_ctx {
    mxp_conv2d_geom geom; /* the whole batch */
    int64_t per_chunk;    /* images per chunk */
    mxp_act act;
    mxp_tensor *pre; /* (B*OH*OW, Cout), GELU only */
} conv_ctx;

static int64_t conv_chunk_images(const mxp_conv2d_geom *g) {
    const int64_t per = CONV_CHUNK_ROWS / (g->OH * g->OW);
    return per < 1 ? 1 : per > g->B ? g->B : per;
}

/* the geometry of chunk c (images b0 .. b0 + n) */
static mxp_conv2d_geom conv_chunk(const conv_ctx *c, int64_t ci, int64_t *b0) {
    mxp_conv2d_geom g = c->geom;
    *b0 = ci * c->per_chunk;
    g.B = MXP_MIN(c->per_chunk, c->geom.B - *b0);
    return g;
}

/* one scratch buffer of `bytes` per thread; NULL on failure */
static char *per_thread(mxp_graph_t *g, int nt, size_t bytes) {
    return mxp_arena_alloc(mxp_graph_scratch(g), (size_t)nt * bytes);
}

static mxp_status conv_backward(mxp_graph_t *g, mxp_node *n) {
    conv_ctx *c = n->ctx;
    mxp_var *x = n->in[0], *w = n->in[1], *b = n->in[2];
    const mxp_dtype dt = mxp_graph_dtype(g);
    const size_t es = mxp_dtype_size(dt);
    const mxp_conv2d_geom *ge = &c->geom;
    const size_t M = (size_t)(ge->B * ge->OH * ge->OW), KK = (size_t)(ge->KH * ge->KW * ge->C);
    const size_t Co = (size_t)w->value->shape[0];
    mxp_tensor *dz;
    MXP_TRY(act_backward(g, &dz, c->act, n->out->grad, n->out->value, c->pre));
    if (mxp_ag_needs_grad(b)) {
        float *s = mxp_arena_alloc(mxp_graph_arena(g), Co * sizeof(float));
        if (!s) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
        MXP_TRY(mxp_reduce_cols(MXP_REDUCE_SUM, s, dz->data, dt, M, Co));
        MXP_TRY(mxp_ag_grad_add_f32(g, b, s, Co));
    }
    const int want_w = mxp_ag_needs_grad(w), want_x = mxp_ag_needs_grad(x);
    if (!want_w && !want_x) return MXP_OK;
    /* chunks are taken in groups of G consecutive ones (G from the shape alone): a group's
     * weight-gradient partial accumulates its chunks in order, in fp32 */
    const int64_t nchunks = (ge->B + c->per_chunk - 1) / c->per_chunk;
    const int64_t G = (nchunks + CONV_GROUPS - 1) / CONV_GROUPS;
    const int64_t ngroups = (nchunks + G - 1) / G;
    const size_t crow = (size_t)(c->per_chunk * ge->OH * ge->OW); /* rows of a full chunk */
    const size_t img_x = (size_t)(ge->H * ge->W * ge->C);
    const int nt = (int)MXP_MIN((int64_t)mxp_num_threads(), ngroups);
    char *cols = per_thread(g, nt, crow * KK * es);
    /* dcols and the chunk's dx stay fp32 until dx is rounded once to dt */
    float *dcols = want_x ? (float *)per_thread(g, nt, crow * KK * sizeof(float)) : NULL;
    float *dxc = want_x && dt != MXP_DTYPE_F32
                     ? (float *)per_thread(g, nt, (size_t)c->per_chunk * img_x * sizeof(float))
                     : NULL;
    float *partial =
        want_w ? mxp_arena_alloc(mxp_graph_scratch(g), (size_t)ngroups * Co * KK * sizeof(float))
               : NULL; /* (ngroups, Co, KK) */
    mxp_tensor *dx = NULL;
    int add = 0;
    if (want_x) MXP_TRY(mxp_ag_grad_dest(g, x, &dx, &add));
    if (!cols || (want_x && !dcols) || (want_x && dt != MXP_DTYPE_F32 && !dxc) ||
        (want_w && !partial))
        return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    mxp_status st = MXP_OK;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t gi = 0; gi < ngroups; gi++) {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        char *ct = cols + (size_t)tid * crow * KK * es;
        float *dct = want_x ? dcols + (size_t)tid * crow * KK : NULL;
        float *dxt = dxc ? dxc + (size_t)tid * (size_t)c->per_chunk * img_x : NULL;
        mxp_status s2 = MXP_OK;
        for (int64_t ci = gi * G; ci < MXP_MIN(nchunks, (gi + 1) * G) && s2 == MXP_OK; ci++) {
            int64_t b0;
            const mxp_conv2d_geom cg = conv_chunk(c, ci, &b0);
            const size_t rows = (size_t)(cg.B * cg.OH * cg.OW);
            const char *dzc =
                (const char *)dz->data + (size_t)b0 * (size_t)(ge->OH * ge->OW) * Co * es;
            s2 = mxp_im2col(ct, (const char *)x->value->data + (size_t)b0 * img_x * es, dt, &cg);
            /* dW partial (Co, KK) += dz_c^T (Co, rows) cols_c (rows, KK), fp32 */
            if (s2 == MXP_OK && want_w)
                s2 = mxp_gemm(MXP_TRANS, MXP_NO_TRANS, Co, KK, rows, 1.0f, dzc, dt, Co, ct, dt, KK,
                              ci == gi * G ? 0.0f : 1.0f, partial + (size_t)gi * Co * KK,
                              MXP_DTYPE_F32, KK, NULL);
            if (s2 == MXP_OK && want_x) {
                /* dcols_c (rows, KK) = dz_c (rows, Co) w (Co, KK) in fp32; dx_c = col2im */
                s2 = mxp_gemm(MXP_NO_TRANS, MXP_NO_TRANS, rows, KK, Co, 1.0f, dzc, dt, Co,
                              w->value->data, dt, KK, 0.0f, dct, MXP_DTYPE_F32, KK, NULL);
                char *dxo = (char *)dx->data + (size_t)b0 * img_x * es;
                if (s2 == MXP_OK) s2 = mxp_col2im(dxt ? (void *)dxt : dxo, dct, MXP_DTYPE_F32, &cg);
                if (s2 == MXP_OK && dxt)
                    s2 = mxp_convert(dxo, dt, dxt, MXP_DTYPE_F32, (size_t)cg.B * img_x);
            }
        }
        if (s2 != MXP_OK) {
            MXP_OMP(omp critical(mxp_conv_status))
            st = s2;
        }
    }
    MXP_TRY(st);
    if (want_x) MXP_TRY(mxp_ag_grad_commit(x, dx, add));
    if (want_w) { /* the groups' partials in group order, in fp32 */
        const size_t nw = Co * KK;
        for (int64_t gi = 1; gi < ngroups; gi++) {
            const float *src = partial + (size_t)gi * nw;
            for (size_t j = 0; j < nw; j++) partial[j] += src[j];
        }
        MXP_TRY(mxp_ag_grad_add_f32(g, w, partial, nw));
    }
    return MXP_OK;
}

mxp_status mxp_op_conv2d(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                         int64_t stride, int64_t pad, mxp_act act) {
    if (!g || !y || !x || !w) return MXP_FAIL(MXP_ERR_INVALID_ARG, "conv2d: NULL argument");
    PROF_BEGIN(g);
    char s1[96], s2[96];
    const mxp_tensor *xv = x->value, *wv = w->value;
    if (xv->ndim != 4 || wv->ndim != 4 || xv->shape[3] != wv->shape[3] ||
        wv->shape[1] != wv->shape[2] || !mxp_tensor_is_contiguous(xv) ||
        (b && (b->value->ndim != 1 || b->value->shape[0] != wv->shape[0])))
        return MXP_FAIL(MXP_ERR_SHAPE,
                        "conv2d: input %s (B, H, W, Cin) does not fit weight %s (Cout, K, K, Cin)",
                        mxp_ag_shape_str(xv, s1, sizeof s1), mxp_ag_shape_str(wv, s2, sizeof s2));
    MXP_TRY(mxp_ag_check_work(g, "conv2d", "the weight", w));
    if (b) MXP_TRY(mxp_ag_check_work(g, "conv2d", "the bias", b));
    MXP_TRY(mxp_ag_cast_to_work(g, &x, x));
    const mxp_dtype dt = mxp_graph_dtype(g);
    const size_t es = mxp_dtype_size(dt);
    conv_ctx *c = mxp_ag_ctx(g, sizeof *c);
    if (!c) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    xv = x->value;
    MXP_TRY(mxp_conv2d_geom_init(&c->geom, xv->shape[0], xv->shape[1], xv->shape[2], xv->shape[3],
                                 wv->shape[1], wv->shape[2], stride, pad));
    c->act = act;
    c->per_chunk = conv_chunk_images(&c->geom);
    const mxp_conv2d_geom *ge = &c->geom;
    const int64_t M = ge->B * ge->OH * ge->OW, KK = ge->KH * ge->KW * ge->C, Co = wv->shape[0];
    MXP_TRY(mxp_graph_var(g, y, dt, 4, (int64_t[]){ge->B, ge->OH, ge->OW, Co}));
    if (act == MXP_ACT_GELU_TANH && mxp_graph_training(g))
        MXP_TRY(mxp_tensor_arena(mxp_graph_arena(g), &c->pre, dt, 2, (int64_t[]){M, Co}));
    const int64_t nchunks = (ge->B + c->per_chunk - 1) / c->per_chunk;
    const size_t crow = (size_t)(c->per_chunk * ge->OH * ge->OW);
    const int nt = (int)MXP_MIN((int64_t)mxp_num_threads(), nchunks);
    char *cols = per_thread(g, nt, crow * (size_t)KK * es);
    if (!cols) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    const size_t img_x = (size_t)(ge->H * ge->W * ge->C), img_y = (size_t)(ge->OH * ge->OW * Co);
    mxp_status st = MXP_OK;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t ci = 0; ci < nchunks; ci++) {
        if (st != MXP_OK) continue;
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        int64_t b0;
        const mxp_conv2d_geom cg = conv_chunk(c, ci, &b0);
        const size_t rows = (size_t)(cg.B * cg.OH * cg.OW);
        char *ct = cols + (size_t)tid * crow * (size_t)KK * es;
        mxp_status s3 = mxp_im2col(ct, (const char *)xv->data + (size_t)b0 * img_x * es, dt, &cg);
        mxp_gemm_epilogue epi = {.bias = b ? b->value->data : NULL,
                                 .bias_dtype = dt,
                                 .bias_mode = b ? MXP_BIAS_COL : MXP_BIAS_NONE,
                                 .act = act};
        if (c->pre) {
            epi.pre_act = (char *)c->pre->data + (size_t)b0 * img_y * es;
            epi.ld_pre = (size_t)Co;
        }
        if (s3 == MXP_OK)
            s3 =
                mxp_gemm(MXP_NO_TRANS, MXP_TRANS, rows, (size_t)Co, (size_t)KK, 1.0f, ct, dt,
                         (size_t)KK, wv->data, dt, (size_t)KK, 0.0f,
                         (char *)(*y)->value->data + (size_t)b0 * img_y * es, dt, (size_t)Co, &epi);
        if (s3 != MXP_OK) {
            MXP_OMP(omp critical(mxp_conv_status))
            st = s3;
        }
    }
    MXP_TRY(st);
    mxp_var *in[3] = {x, w, b};
    MXP_TRY(mxp_graph_record(g, "conv2d", MXP_PREC_CLASS_LOW, *y, in, 3, c, conv_backward));
    PROF_END(g, "conv2d");
    return MXP_OK;
}

/* ---- max pooling (FOLLOW) ---------------------------------------------------- */

typedef struct pool_ctx {
    int64_t K, stride;
    int32_t *argmax; /* (B, OH, OW, C) */
} pool_ctx;

static mxp_status pool_backward(mxp_graph_t *g, mxp_node *n) {
    pool_ctx *c = n->ctx;
    mxp_var *x = n->in[0];
    const int64_t *s = x->value->shape;
    mxp_tensor *dx;
    int add;
    MXP_TRY(mxp_ag_grad_dest(g, x, &dx, &add));
    MXP_TRY(mxp_maxpool2d_backward(dx->data, n->out->grad->data, c->argmax, dx->dtype, s[0], s[1],
                                   s[2], s[3], c->K, c->stride));
    return mxp_ag_grad_commit(x, dx, add);
}

mxp_status mxp_op_maxpool2d(mxp_graph_t *g, mxp_var **y, mxp_var *x, int64_t K, int64_t stride) {
    if (!g || !y || !x) return MXP_FAIL(MXP_ERR_INVALID_ARG, "maxpool2d: NULL argument");
    PROF_BEGIN(g);
    char s1[96];
    const mxp_tensor *xv = x->value;
    if (xv->ndim != 4 || !mxp_tensor_is_contiguous(xv) || K < 1 || stride < 1 || K > xv->shape[1] ||
        K > xv->shape[2])
        return MXP_FAIL(MXP_ERR_SHAPE, "maxpool2d: window %lld stride %lld on input %s",
                        (long long)K, (long long)stride, mxp_ag_shape_str(xv, s1, sizeof s1));
    const int64_t B = xv->shape[0], H = xv->shape[1], W = xv->shape[2], C = xv->shape[3];
    const int64_t OH = (H - K) / stride + 1, OW = (W - K) / stride + 1;
    MXP_TRY(mxp_graph_var(g, y, xv->dtype, 4, (int64_t[]){B, OH, OW, C}));
    pool_ctx *c = mxp_ag_ctx(g, sizeof *c);
    if (!c) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    c->K = K;
    c->stride = stride;
    if (mxp_graph_training(g) && x->requires_grad) {
        c->argmax =
            mxp_arena_alloc(mxp_graph_arena(g), (size_t)(B * OH * OW * C) * sizeof(int32_t));
        if (!c->argmax) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    }
    MXP_TRY(mxp_maxpool2d_forward((*y)->value->data, c->argmax, xv->data, xv->dtype, B, H, W, C, K,
                                  stride));
    MXP_TRY(mxp_graph_record(g, "maxpool2d", MXP_PREC_CLASS_FOLLOW, *y, &x, 1, c, pool_backward));
    PROF_END(g, "maxpool2d");
    return MXP_OK;
}

/* ---- element-wise activations (FOLLOW) ---------------------------------------- */

static mxp_status relu_backward(mxp_graph_t *g, mxp_node *n) {
    mxp_var *x = n->in[0];
    mxp_tensor *dx;
    int add;
    MXP_TRY(mxp_ag_grad_dest(g, x, &dx, &add));
    /* y > 0 exactly where x > 0, so the saved output serves as the mask */
    MXP_TRY(mxp_relu_backward(dx->data, n->out->grad->data, n->out->value->data, dx->dtype,
                              (size_t)mxp_tensor_numel(dx)));
    return mxp_ag_grad_commit(x, dx, add);
}

static mxp_status gelu_backward(mxp_graph_t *g, mxp_node *n) {
    mxp_var *x = n->in[0];
    mxp_tensor *dx;
    int add;
    MXP_TRY(mxp_ag_grad_dest(g, x, &dx, &add));
    MXP_TRY(mxp_gelu_tanh_backward(dx->data, n->out->grad->data, x->value->data, dx->dtype,
                                   (size_t)mxp_tensor_numel(dx)));
    return mxp_ag_grad_commit(x, dx, add);
}

static mxp_status unary(mxp_graph_t *g, mxp_var **y, mxp_var *x, const char *op,
                        mxp_backward_fn bwd) {
    if (!g || !y || !x) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL argument", op);
    if (!mxp_tensor_is_contiguous(x->value))
        return MXP_FAIL(MXP_ERR_SHAPE, "%s: the input must be contiguous", op);
    PROF_BEGIN(g);
    const mxp_tensor *xv = x->value;
    const size_t n = (size_t)mxp_tensor_numel(xv);
    MXP_TRY(mxp_graph_var(g, y, xv->dtype, xv->ndim, xv->shape));
    if (bwd == relu_backward)
        MXP_TRY(mxp_relu((*y)->value->data, xv->data, xv->dtype, n));
    else
        MXP_TRY(mxp_gelu_tanh((*y)->value->data, xv->data, xv->dtype, n));
    MXP_TRY(mxp_graph_record(g, op, MXP_PREC_CLASS_FOLLOW, *y, &x, 1, NULL, bwd));
    PROF_END(g, op);
    return MXP_OK;
}

mxp_status mxp_op_relu(mxp_graph_t *g, mxp_var **y, mxp_var *x) {
    return unary(g, y, x, "relu", relu_backward);
}

mxp_status mxp_op_gelu(mxp_graph_t *g, mxp_var **y, mxp_var *x) {
    return unary(g, y, x, "gelu", gelu_backward);
}

/* ---- add (FOLLOW) ---------------------------------------------------------------- */

static mxp_status add_backward(mxp_graph_t *g, mxp_node *n) {
    /* Only this node reads the output's gradient (every other use of it ran earlier in the
     * reverse walk), so the first input that holds no gradient yet takes that tensor over
     * instead of a copy: a transformer's residual stream hands one buffer down through its
     * blocks. Parameters keep their own buffers (node == NULL). */
    int lent = 0;
    for (int i = 0; i < 2; i++) {
        mxp_var *in = n->in[i];
        if (!mxp_ag_needs_grad(in)) continue;
        if (!lent && in->node && !in->has_grad) {
            in->grad = n->out->grad;
            in->has_grad = 1;
            lent = 1;
            continue;
        }
        MXP_TRY(mxp_var_accumulate(g, in, n->out->grad));
    }
    return MXP_OK;
}

mxp_status mxp_op_add(mxp_graph_t *g, mxp_var **y, mxp_var *a, mxp_var *b) {
    if (!g || !y || !a || !b) return MXP_FAIL(MXP_ERR_INVALID_ARG, "add: NULL argument");
    char s1[96], s2[96];
    const mxp_tensor *av = a->value, *bv = b->value;
    if (av->dtype != bv->dtype || mxp_tensor_numel(av) != mxp_tensor_numel(bv) ||
        av->ndim != bv->ndim || memcmp(av->shape, bv->shape, sizeof av->shape) != 0 ||
        !mxp_tensor_is_contiguous(av) || !mxp_tensor_is_contiguous(bv))
        return MXP_FAIL(MXP_ERR_SHAPE, "add: %s and %s differ (same shape and dtype needed)",
                        mxp_ag_shape_str(av, s1, sizeof s1), mxp_ag_shape_str(bv, s2, sizeof s2));
    PROF_BEGIN(g);
    MXP_TRY(mxp_graph_var(g, y, av->dtype, av->ndim, av->shape));
    MXP_TRY(
        mxp_add((*y)->value->data, av->data, bv->data, av->dtype, (size_t)mxp_tensor_numel(av)));
    mxp_var *in[2] = {a, b};
    MXP_TRY(mxp_graph_record(g, "add", MXP_PREC_CLASS_FOLLOW, *y, in, 2, NULL, add_backward));
    PROF_END(g, "add");
    return MXP_OK;
}

/* ---- flatten (a view) ------------------------------------------------------------- */

static mxp_status flatten_backward(mxp_graph_t *g, mxp_node *n) {
    mxp_var *x = n->in[0];
    mxp_tensor view; /* the (B, F) gradient seen with x's shape */
    MXP_TRY(mxp_tensor_reshape(&view, n->out->grad, x->value->ndim, x->value->shape));
    return mxp_var_accumulate(g, x, &view);
}

mxp_status mxp_op_flatten(mxp_graph_t *g, mxp_var **y, mxp_var *x) {
    if (!g || !y || !x) return MXP_FAIL(MXP_ERR_INVALID_ARG, "flatten: NULL argument");
    if (x->value->ndim < 1 || !mxp_tensor_is_contiguous(x->value))
        return MXP_FAIL(MXP_ERR_SHAPE, "flatten: the input must be contiguous with a batch dim");
    mxp_var *v = mxp_arena_alloc(mxp_graph_arena(g), sizeof *v);
    mxp_tensor *t = mxp_arena_alloc(mxp_graph_arena(g), sizeof *t);
    if (!v || !t) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    memset(v, 0, sizeof *v);
    const int64_t B = x->value->shape[0];
    const int64_t F = B ? mxp_tensor_numel(x->value) / B : 0;
    MXP_TRY(mxp_tensor_reshape(t, x->value, 2, (int64_t[]){B, F}));
    v->value = t;
    *y = v;
    return mxp_graph_record(g, "flatten", MXP_PREC_CLASS_FOLLOW, v, &x, 1, NULL, flatten_backward);
}

/* ---- dropout (FOLLOW) ------------------------------------------------------------- */

typedef struct dropout_ctx {
    float p;
    uint8_t *mask; /* (numel) */
} dropout_ctx;

static mxp_status dropout_backward(mxp_graph_t *g, mxp_node *n) {
    dropout_ctx *c = n->ctx;
    mxp_var *x = n->in[0];
    mxp_tensor *dx;
    int add;
    MXP_TRY(mxp_ag_grad_dest(g, x, &dx, &add));
    MXP_TRY(mxp_dropout_backward(dx->data, n->out->grad->data, c->mask, dx->dtype,
                                 (size_t)mxp_tensor_numel(dx), c->p));
    return mxp_ag_grad_commit(x, dx, add);
}

mxp_status mxp_op_dropout(mxp_graph_t *g, mxp_var **y, mxp_var *x, float p) {
    if (!g || !y || !x) return MXP_FAIL(MXP_ERR_INVALID_ARG, "dropout: NULL argument");
    if (!(p >= 0.0f && p < 1.0f))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "dropout: p = %g is outside [0, 1)", (double)p);
    if (!mxp_graph_training(g) || p == 0.0f) {
        *y = x;
        return MXP_OK;
    }
    if (!mxp_tensor_is_contiguous(x->value))
        return MXP_FAIL(MXP_ERR_SHAPE, "dropout: the input must be contiguous");
    PROF_BEGIN(g);
    const size_t n = (size_t)mxp_tensor_numel(x->value);
    dropout_ctx *c = mxp_ag_ctx(g, sizeof *c);
    if (!c) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    c->p = p;
    c->mask = mxp_arena_alloc(mxp_graph_arena(g), n);
    if (!c->mask) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    MXP_TRY(mxp_graph_var(g, y, x->value->dtype, x->value->ndim, x->value->shape));
    uint64_t seed;
    const uint64_t off = mxp_graph_rng_take(g, n, &seed);
    MXP_TRY(mxp_dropout_forward((*y)->value->data, c->mask, x->value->data, x->value->dtype, n, p,
                                seed, off));
    MXP_TRY(mxp_graph_record(g, "dropout", MXP_PREC_CLASS_FOLLOW, *y, &x, 1, c, dropout_backward));
    PROF_END(g, "dropout");
    return MXP_OK;
}

/* ---- softmax cross-entropy (FP32) ------------------------------------------------- */

typedef struct ce_ctx {
    int64_t B, V;          /* rows (the product of the leading dims), classes */
    float *probs;          /* (B, V) fp32 */
    const int32_t *labels; /* (B), lent */
} ce_ctx;

static mxp_status ce_backward(mxp_graph_t *g, mxp_node *n) {
    ce_ctx *c = n->ctx;
    mxp_var *x = n->in[0];
    const float dloss = *(const float *)n->out->grad->data; /* the loss scale */
    mxp_tensor *dx;
    int add;
    MXP_TRY(mxp_ag_grad_dest(g, x, &dx, &add));
    MXP_TRY(
        mxp_cross_entropy_backward(dx->data, dx->dtype, c->probs, c->labels, c->B, c->V, dloss));
    return mxp_ag_grad_commit(x, dx, add);
}

mxp_status mxp_op_cross_entropy(mxp_graph_t *g, mxp_var **loss, mxp_var *logits,
                                const int32_t *labels) {
    if (!g || !loss || !logits || !labels)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "cross_entropy: NULL argument");
    char s1[96];
    const mxp_tensor *lv = logits->value;
    if (lv->ndim < 2 || !mxp_tensor_is_contiguous(lv))
        return MXP_FAIL(MXP_ERR_SHAPE, "cross_entropy: logits %s must be contiguous (..., V)",
                        mxp_ag_shape_str(lv, s1, sizeof s1));
    PROF_BEGIN(g);
    const int64_t V = lv->shape[lv->ndim - 1], B = mxp_ag_rows(lv);
    ce_ctx *c = mxp_ag_ctx(g, sizeof *c);
    if (!c) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    c->B = B;
    c->V = V;
    c->labels = labels;
    if (mxp_graph_training(g) && logits->requires_grad) {
        c->probs = mxp_arena_alloc(mxp_graph_arena(g), (size_t)(B * V) * sizeof(float));
        if (!c->probs) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    }
    MXP_TRY(mxp_graph_var(g, loss, MXP_DTYPE_F32, 0, NULL));
    MXP_TRY(mxp_cross_entropy_forward((float *)(*loss)->value->data, c->probs, lv->data, lv->dtype,
                                      labels, B, V));
    MXP_TRY(mxp_graph_record(g, "cross_entropy", MXP_PREC_CLASS_FP32, *loss, &logits, 1, c,
                             ce_backward));
    PROF_END(g, "cross_entropy");
    return MXP_OK;
}
