/*
 * model.c - parameters and sequential models (the built-in mlp and cnn):
 * construction, PyTorch-style initialisation, the precision switch that
 * makes work/grad copies, and the forward pass with activation fusion.
 * It computes nothing itself: every op goes through the autograd layer.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base_impl.h"
#include "nn/nn_impl.h"

/* ---- parameters ----------------------------------------------------------- */

mxp_status mxp_nn_param_new(mxp_model_t *m, mxp_param **out, const char *name, int ndim,
                            const int64_t *shape, int decay) {
    if (m->work != MXP_DTYPE_F32 || !m->master_weights)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "add layers before mxp_model_set_precision");
    mxp_param *p = mxp_alloc(sizeof *p);
    if (!p) return MXP_FAIL(MXP_ERR_NOMEM, "parameter %s", name);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->decay = decay;
    mxp_status st = mxp_tensor_create(&p->master, MXP_DTYPE_F32, ndim, shape);
    if (st == MXP_OK) st = mxp_tensor_create(&p->grad, MXP_DTYPE_F32, ndim, shape);
    mxp_param **list = NULL;
    if (st == MXP_OK) {
        list = mxp_alloc_array((size_t)m->n_params + 1, sizeof *list);
        if (!list) st = MXP_FAIL(MXP_ERR_NOMEM, "parameter list");
    }
    if (st != MXP_OK) {
        mxp_tensor_free(p->master);
        mxp_tensor_free(p->grad);
        mxp_free(p);
        return st;
    }
    p->work = p->master;
    p->var.value = p->work;
    p->var.grad = p->grad;
    p->var.requires_grad = 1;
    p->var.name = p->name;
    if (m->n_params) memcpy(list, m->params, (size_t)m->n_params * sizeof *list);
    mxp_free(m->params);
    m->params = list;
    m->params[m->n_params++] = p;
    *out = p;
    return MXP_OK;
}

static void param_free(mxp_param *p) {
    if (!p) return;
    if (p->work != p->master) mxp_tensor_free(p->work);
    mxp_tensor_free(p->master);
    mxp_tensor_free(p->grad);
    mxp_free(p);
}

/* uniform in (-bound, bound): element i of parameter `index` uses Philox word
 * i of the counter stream (index << 40) + i / 4, so every tensor's values
 * depend only on the seed and its position in the model */
static void init_uniform(float *w, int64_t n, float bound, uint64_t seed, uint64_t index) {
    uint32_t r[4];
    for (int64_t i = 0; i < n; i++) {
        if ((i & 3) == 0) mxp_philox4x32(seed, (index << 40) + (uint64_t)i / 4, r);
        const float u = (float)(r[i & 3] >> 8) * (1.0f / 16777216.0f); /* [0, 1) */
        w[i] = (2.0f * u - 1.0f) * bound;
    }
}

/* ---- building ------------------------------------------------------------- */

mxp_status mxp_model_sequential(mxp_model_t **out, const char *name, int64_t H, int64_t W,
                                int64_t C, int n_classes) {
    if (!out || !name || H < 1 || W < 1 || C < 1 || n_classes < 2)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "model: bad input shape or class count");
    *out = NULL;
    mxp_model_t *m = mxp_alloc(sizeof *m);
    if (!m) return MXP_FAIL(MXP_ERR_NOMEM, "model");
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->in_shape[0] = H;
    m->in_shape[1] = W;
    m->in_shape[2] = C;
    m->n_classes = n_classes;
    m->work = MXP_DTYPE_F32;
    m->master_weights = 1;
    *out = m;
    return MXP_OK;
}

static mxp_status add_layer(mxp_model_t *m, mxp_layer **out) {
    if (!m) return MXP_FAIL(MXP_ERR_INVALID_ARG, "model is NULL");
    if (m->n_layers == m->cap_layers) {
        const int cap = m->cap_layers ? 2 * m->cap_layers : 16;
        mxp_layer *l = mxp_alloc_array((size_t)cap, sizeof *l);
        if (!l) return MXP_FAIL(MXP_ERR_NOMEM, "layers");
        if (m->n_layers) memcpy(l, m->layers, (size_t)m->n_layers * sizeof *l);
        mxp_free(m->layers);
        m->layers = l;
        m->cap_layers = cap;
    }
    *out = &m->layers[m->n_layers];
    memset(*out, 0, sizeof **out);
    return MXP_OK;
}

/* layer names count Linear and Conv2d layers separately: fc1, fc2, conv1, ... */
static int count_kind(const mxp_model_t *m, mxp_layer_kind k) {
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) n += m->layers[i].kind == k;
    return n;
}

mxp_status mxp_model_add_linear(mxp_model_t *m, int64_t in, int64_t out) {
    mxp_layer *l = NULL;
    MXP_TRY(add_layer(m, &l));
    if (in < 1 || out < 1)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "linear: %lld -> %lld", (long long)in, (long long)out);
    char name[40];
    const int idx = count_kind(m, MXP_LAYER_LINEAR) + 1;
    l->kind = MXP_LAYER_LINEAR;
    l->in = in;
    l->out = out;
    snprintf(name, sizeof name, "fc%d.weight", idx);
    MXP_TRY(mxp_nn_param_new(m, &l->w, name, 2, (int64_t[]){out, in}, 1));
    snprintf(name, sizeof name, "fc%d.bias", idx);
    MXP_TRY(mxp_nn_param_new(m, &l->b, name, 1, (int64_t[]){out}, 0));
    m->n_layers++;
    return MXP_OK;
}

mxp_status mxp_model_add_conv2d(mxp_model_t *m, int64_t in, int64_t out, int64_t k, int64_t stride,
                                int64_t pad) {
    mxp_layer *l = NULL;
    MXP_TRY(add_layer(m, &l));
    if (in < 1 || out < 1 || k < 1 || stride < 1 || pad < 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "conv2d: bad sizes");
    char name[40];
    const int idx = count_kind(m, MXP_LAYER_CONV2D) + 1;
    l->kind = MXP_LAYER_CONV2D;
    l->in = in;
    l->out = out;
    l->k = k;
    l->stride = stride;
    l->pad = pad;
    snprintf(name, sizeof name, "conv%d.weight", idx);
    MXP_TRY(mxp_nn_param_new(m, &l->w, name, 4, (int64_t[]){out, k, k, in}, 1));
    snprintf(name, sizeof name, "conv%d.bias", idx);
    MXP_TRY(mxp_nn_param_new(m, &l->b, name, 1, (int64_t[]){out}, 0));
    m->n_layers++;
    return MXP_OK;
}

static mxp_status add_simple(mxp_model_t *m, mxp_layer_kind kind, int64_t k, int64_t stride,
                             float p) {
    mxp_layer *l = NULL;
    MXP_TRY(add_layer(m, &l));
    l->kind = kind;
    l->k = k;
    l->stride = stride;
    l->p = p;
    m->n_layers++;
    return MXP_OK;
}

mxp_status mxp_model_add_maxpool2d(mxp_model_t *m, int64_t k, int64_t stride) {
    if (k < 1 || stride < 1) return MXP_FAIL(MXP_ERR_INVALID_ARG, "maxpool2d: bad sizes");
    return add_simple(m, MXP_LAYER_MAXPOOL2D, k, stride, 0.0f);
}
mxp_status mxp_model_add_relu(mxp_model_t *m) { return add_simple(m, MXP_LAYER_RELU, 0, 0, 0); }
mxp_status mxp_model_add_gelu(mxp_model_t *m) { return add_simple(m, MXP_LAYER_GELU, 0, 0, 0); }
mxp_status mxp_model_add_flatten(mxp_model_t *m) {
    return add_simple(m, MXP_LAYER_FLATTEN, 0, 0, 0);
}
mxp_status mxp_model_add_dropout(mxp_model_t *m, float p) {
    if (!(p >= 0.0f && p < 1.0f))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "dropout: p = %g is outside [0, 1)", (double)p);
    return add_simple(m, MXP_LAYER_DROPOUT, 0, 0, p);
}

mxp_status mxp_model_init(mxp_model_t *m, uint64_t seed) {
    if (!m) return MXP_FAIL(MXP_ERR_INVALID_ARG, "model is NULL");
    if (m->gpt) return mxp_gpt_init(m, seed);
    uint64_t index = 0;
    for (int i = 0; i < m->n_layers; i++) {
        mxp_layer *l = &m->layers[i];
        if (!l->w) continue;
        if (!l->w->master || !l->b->master)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "init: the fp32 weights were dropped");
        const int64_t fan_in = l->kind == MXP_LAYER_CONV2D ? l->in * l->k * l->k : l->in;
        const float bound = 1.0f / sqrtf((float)fan_in); /* kaiming_uniform(a=sqrt(5)) */
        init_uniform(l->w->master->data, mxp_tensor_numel(l->w->master), bound, seed, index++);
        init_uniform(l->b->master->data, mxp_tensor_numel(l->b->master), bound, seed, index++);
    }
    return mxp_model_refresh_work(m);
}

mxp_status mxp_model_config_default(mxp_model_config *cfg, const char *name) {
    if (!cfg || !name) return MXP_FAIL(MXP_ERR_INVALID_ARG, "config or name is NULL");
    memset(cfg, 0, sizeof *cfg);
    cfg->H = 28;
    cfg->W = 28;
    cfg->C = 1;
    cfg->n_classes = 10;
    cfg->seed = 42;
    if (strcmp(name, "mlp") == 0) {
        cfg->hidden1 = 512;
        cfg->hidden2 = 256;
        cfg->dropout = 0.0f;
    } else if (strcmp(name, "cnn") == 0) {
        cfg->channels1 = 32;
        cfg->channels2 = 64;
        cfg->hidden1 = 256;
        cfg->dropout = 0.25f;
    } else if (strcmp(name, "gpt") == 0) {
        mxp_gpt_config_default(cfg);
    } else {
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown model '%s' (known: mlp, cnn, gpt)", name);
    }
    snprintf(cfg->name, sizeof cfg->name, "%s", name);
    return MXP_OK;
}

static mxp_status build(mxp_model_t *m, const mxp_model_config *c) {
    const int64_t in = c->H * c->W * c->C;
    if (strcmp(c->name, "mlp") == 0) {
        MXP_TRY(mxp_model_add_flatten(m));
        MXP_TRY(mxp_model_add_linear(m, in, c->hidden1));
        MXP_TRY(mxp_model_add_relu(m));
        MXP_TRY(mxp_model_add_linear(m, c->hidden1, c->hidden2));
        MXP_TRY(mxp_model_add_relu(m));
        if (c->dropout > 0.0f) MXP_TRY(mxp_model_add_dropout(m, c->dropout));
        return mxp_model_add_linear(m, c->hidden2, c->n_classes);
    }
    if (c->H % 4 || c->W % 4)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "cnn: input %lldx%lld is not a multiple of 4",
                        (long long)c->H, (long long)c->W);
    MXP_TRY(mxp_model_add_conv2d(m, c->C, c->channels1, 5, 1, 2));
    MXP_TRY(mxp_model_add_relu(m));
    MXP_TRY(mxp_model_add_maxpool2d(m, 2, 2));
    MXP_TRY(mxp_model_add_conv2d(m, c->channels1, c->channels2, 5, 1, 2));
    MXP_TRY(mxp_model_add_relu(m));
    MXP_TRY(mxp_model_add_maxpool2d(m, 2, 2));
    MXP_TRY(mxp_model_add_flatten(m));
    MXP_TRY(mxp_model_add_linear(m, (c->H / 4) * (c->W / 4) * c->channels2, c->hidden1));
    MXP_TRY(mxp_model_add_relu(m));
    if (c->dropout > 0.0f) MXP_TRY(mxp_model_add_dropout(m, c->dropout));
    return mxp_model_add_linear(m, c->hidden1, c->n_classes);
}

mxp_status mxp_model_create(mxp_model_t **out, const mxp_model_config *cfg) {
    if (!out || !cfg) return MXP_FAIL(MXP_ERR_INVALID_ARG, "out or cfg is NULL");
    *out = NULL;
    mxp_model_config check;
    MXP_TRY(mxp_model_config_default(&check, cfg->name));
    if (strcmp(cfg->name, "gpt") == 0) {
        mxp_model_t *m;
        MXP_TRY(mxp_model_sequential(&m, cfg->name, 1, 1, 1, 2));
        mxp_status st = mxp_gpt_build(m, cfg);
        m->config = *cfg;
        m->config.n_classes = m->n_classes; /* the vocabulary: one class per token */
        if (st == MXP_OK) st = mxp_gpt_init(m, cfg->seed);
        if (st != MXP_OK) {
            mxp_model_free(m);
            return st;
        }
        *out = m;
        return MXP_OK;
    }
    const int is_mlp = strcmp(cfg->name, "mlp") == 0;
    if (cfg->hidden1 < 1 || (is_mlp && cfg->hidden2 < 1) ||
        (!is_mlp && (cfg->channels1 < 1 || cfg->channels2 < 1)) || !(cfg->dropout >= 0.0f) ||
        cfg->dropout >= 1.0f)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: a width is < 1 or dropout is outside [0, 1)",
                        cfg->name);
    mxp_model_t *m;
    MXP_TRY(mxp_model_sequential(&m, cfg->name, cfg->H, cfg->W, cfg->C, cfg->n_classes));
    mxp_status st = build(m, cfg);
    if (st == MXP_OK) st = mxp_model_init(m, cfg->seed);
    m->config = *cfg;
    if (st != MXP_OK) {
        mxp_model_free(m);
        return st;
    }
    *out = m;
    return MXP_OK;
}

void mxp_model_free(mxp_model_t *m) {
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) param_free(m->params[i]);
    mxp_free(m->params);
    mxp_free(m->layers);
    mxp_gpt_free(m->gpt);
    mxp_free(m);
}

/* ---- precision -------------------------------------------------------------- */

mxp_status mxp_model_set_precision(mxp_model_t *m, mxp_dtype work, int master_weights) {
    if (!m) return MXP_FAIL(MXP_ERR_INVALID_ARG, "model is NULL");
    if (work != MXP_DTYPE_F32 && work != MXP_DTYPE_BF16 && work != MXP_DTYPE_F16)
        return MXP_FAIL(MXP_ERR_DTYPE, "working dtype must be f32, bf16 or f16");
    if (m->work != MXP_DTYPE_F32 || !m->master_weights)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "the model's precision was already set");
    if (work == MXP_DTYPE_F32) return MXP_OK; /* work = master, grads fp32: as built */
    /* allocate everything first so a failure leaves the model as it was */
    mxp_tensor **nw = mxp_alloc_array((size_t)m->n_params * 2 + 1, sizeof *nw);
    if (!nw) return MXP_FAIL(MXP_ERR_NOMEM, "precision switch");
    mxp_status st = MXP_OK;
    int made = 0;
    for (int i = 0; i < m->n_params && st == MXP_OK; i++) {
        const mxp_tensor *t = m->params[i]->master;
        st = mxp_tensor_create(&nw[made++], work, t->ndim, t->shape);
        if (st == MXP_OK) st = mxp_tensor_create(&nw[made++], work, t->ndim, t->shape);
    }
    if (st != MXP_OK) {
        for (int i = 0; i < made; i++) mxp_tensor_free(nw[i]);
        mxp_free(nw);
        return st;
    }
    for (int i = 0; i < m->n_params; i++) {
        mxp_param *p = m->params[i];
        p->work = nw[2 * i];
        mxp_tensor_free(p->grad);
        p->grad = nw[2 * i + 1];
        mxp_convert(p->work->data, work, p->master->data, MXP_DTYPE_F32,
                    (size_t)mxp_tensor_numel(p->master));
        if (!master_weights) {
            mxp_tensor_free(p->master);
            p->master = NULL;
        }
        p->var.value = p->work;
        p->var.grad = p->grad;
        p->var.has_grad = 0;
    }
    mxp_free(nw);
    m->work = work;
    m->master_weights = master_weights != 0;
    return MXP_OK;
}

mxp_status mxp_model_refresh_work(mxp_model_t *m) {
    for (int i = 0; i < m->n_params; i++) {
        mxp_param *p = m->params[i];
        if (!p->master || p->work == p->master) continue;
        MXP_TRY(mxp_convert(p->work->data, p->work->dtype, p->master->data, MXP_DTYPE_F32,
                            (size_t)mxp_tensor_numel(p->master)));
    }
    return MXP_OK;
}

void mxp_model_zero_grad(mxp_model_t *m) {
    for (int i = 0; i < m->n_params; i++) m->params[i]->var.has_grad = 0;
}

int64_t mxp_model_numel(const mxp_model_t *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += mxp_tensor_numel(m->params[i]->work);
    return n;
}

void mxp_model_bytes(const mxp_model_t *m, size_t *master, size_t *work, size_t *grad) {
    size_t a = 0, b = 0, c = 0;
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        if (p->master && p->master != p->work) a += mxp_tensor_nbytes(p->master);
        b += mxp_tensor_nbytes(p->work);
        c += mxp_tensor_nbytes(p->grad);
    }
    if (master) *master = a;
    if (work) *work = b;
    if (grad) *grad = c;
}

mxp_param *mxp_model_param(const mxp_model_t *m, const char *name) {
    for (int i = 0; m && name && i < m->n_params; i++)
        if (strcmp(m->params[i]->name, name) == 0) return m->params[i];
    return NULL;
}

const char *mxp_model_describe(const mxp_model_t *m, char *buf, size_t size) {
    if (!buf || !size) return buf;
    size_t at = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (at < size) at += (size_t)snprintf(buf + at, size - at, __VA_ARGS__);                   \
    } while (0)
    if (m->gpt) {
        mxp_gpt_describe(m, buf, size);
        return buf;
    }
    PUT("%s:", m->name);
    for (int i = 0; i < m->n_layers; i++) {
        const mxp_layer *l = &m->layers[i];
        switch (l->kind) {
        case MXP_LAYER_LINEAR:
            PUT(" linear(%lld->%lld)", (long long)l->in, (long long)l->out);
            break;
        case MXP_LAYER_CONV2D:
            PUT(" conv(%lld->%lld,k%lld%s)", (long long)l->in, (long long)l->out, (long long)l->k,
                l->pad ? ",same" : "");
            break;
        case MXP_LAYER_MAXPOOL2D: PUT(" maxpool(%lld)", (long long)l->k); break;
        case MXP_LAYER_RELU: PUT(" relu"); break;
        case MXP_LAYER_GELU: PUT(" gelu"); break;
        case MXP_LAYER_FLATTEN: PUT(" flatten"); break;
        case MXP_LAYER_DROPOUT: PUT(" dropout(%.2g)", (double)l->p); break;
        }
    }
    PUT(" (%lld parameters)", (long long)mxp_model_numel(m));
#undef PUT
    return buf;
}

/* ---- forward ------------------------------------------------------------------ */

mxp_status mxp_model_forward(mxp_model_t *m, mxp_graph_t *g, mxp_var *x, mxp_var **logits) {
    if (!m || !g || !x || !logits) return MXP_FAIL(MXP_ERR_INVALID_ARG, "forward: NULL argument");
    if (m->gpt)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "gpt takes token ids: use mxp_model_forward_tokens, not mxp_model_forward");
    const mxp_tensor *xv = x->value;
    if (xv->ndim != 4 || xv->shape[1] != m->in_shape[0] || xv->shape[2] != m->in_shape[1] ||
        xv->shape[3] != m->in_shape[2]) {
        char s[96];
        return MXP_FAIL(MXP_ERR_SHAPE, "%s: input %s is not (B, %lld, %lld, %lld)", m->name,
                        mxp_tensor_describe(xv, s, sizeof s), (long long)m->in_shape[0],
                        (long long)m->in_shape[1], (long long)m->in_shape[2]);
    }
    if (mxp_graph_dtype(g) != m->work)
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: the graph works in %s but the model in %s", m->name,
                        mxp_dtype_name(mxp_graph_dtype(g)), mxp_dtype_name(m->work));
    mxp_var *h = x;
    for (int i = 0; i < m->n_layers; i++) {
        const mxp_layer *l = &m->layers[i];
        /* Linear/Conv2d + ReLU/GELU: one GEMM with the activation in its epilogue */
        mxp_act act = MXP_ACT_NONE;
        if ((l->kind == MXP_LAYER_LINEAR || l->kind == MXP_LAYER_CONV2D) && i + 1 < m->n_layers) {
            const mxp_layer_kind next = m->layers[i + 1].kind;
            act = next == MXP_LAYER_RELU   ? MXP_ACT_RELU
                  : next == MXP_LAYER_GELU ? MXP_ACT_GELU_TANH
                                           : MXP_ACT_NONE;
        }
        switch (l->kind) {
        case MXP_LAYER_LINEAR: MXP_TRY(mxp_op_linear(g, &h, h, &l->w->var, &l->b->var, act)); break;
        case MXP_LAYER_CONV2D:
            MXP_TRY(mxp_op_conv2d(g, &h, h, &l->w->var, &l->b->var, l->stride, l->pad, act));
            break;
        case MXP_LAYER_MAXPOOL2D: MXP_TRY(mxp_op_maxpool2d(g, &h, h, l->k, l->stride)); break;
        case MXP_LAYER_RELU: MXP_TRY(mxp_op_relu(g, &h, h)); break;
        case MXP_LAYER_GELU: MXP_TRY(mxp_op_gelu(g, &h, h)); break;
        case MXP_LAYER_FLATTEN: MXP_TRY(mxp_op_flatten(g, &h, h)); break;
        case MXP_LAYER_DROPOUT: MXP_TRY(mxp_op_dropout(g, &h, h, l->p)); break;
        }
        if (act != MXP_ACT_NONE) i++; /* the activation was fused */
    }
    if (h->value->ndim != 2 || h->value->shape[1] != m->n_classes)
        return MXP_FAIL(MXP_ERR_SHAPE, "%s: the last layer does not give (B, %d) logits", m->name,
                        m->n_classes);
    *logits = h;
    return MXP_OK;
}
