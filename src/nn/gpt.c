/*
 * gpt.c - the gpt model: a GPT-2 style decoder-only transformer over token ids
 * (nanoGPT / llm.c's GPT-2, pre-LayerNorm, GELU-tanh MLP, tied LM head).
 *
 * The parameters carry Hugging Face GPT-2's names and layouts (Conv1D
 * weights stored (in, out)), so a checkpoint's model.safetensors loads into
 * transformers' GPT2Model as it is. Like model.c it computes nothing itself:
 * every op goes through the autograd layer, which applies the precision
 * policy (GEMMs in the working dtype with fp32 accumulation, LayerNorm
 * statistics, softmax and the loss in fp32).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base_impl.h"
#include "nn/nn_impl.h"

typedef struct gpt_block {
    mxp_param *ln1_w, *ln1_b;   /* (C) */
    mxp_param *attn_w, *attn_b; /* (C, 3C), (3C) */
    mxp_param *proj_w, *proj_b; /* (C, C), (C) */
    mxp_param *ln2_w, *ln2_b;   /* (C) */
    mxp_param *fc_w, *fc_b;     /* (C, 4C), (4C) */
    mxp_param *out_w, *out_b;   /* (4C, C), (C): mlp.c_proj */
} gpt_block;

struct mxp_gpt {
    int64_t n_layer, n_head, C, block, vocab;
    mxp_param *wte;           /* (vocab, C), also the LM head */
    mxp_param *wpe;           /* (block, C) */
    mxp_param *lnf_w, *lnf_b; /* (C) */
    gpt_block *h;             /* (n_layer) */
};

enum { GPT_MAX_LAYERS = 1000 };
static const float LN_EPS = 1e-5f;

void mxp_gpt_config_default(mxp_model_config *c) {
    c->n_layer = 6;
    c->n_head = 6;
    c->n_embd = 384;
    c->block_size = 256;
    c->vocab_size = 65;
    c->dropout = 0.0f;
}

void mxp_gpt_free(struct mxp_gpt *gpt) {
    if (!gpt) return;
    mxp_free(gpt->h);
    mxp_free(gpt);
}

/* A parameter named printf-style. */
static mxp_status param(mxp_model_t *m, mxp_param **out, int ndim, const int64_t *shape,
                        const char *fmt, long long layer, const char *leaf) {
    char name[48];
    if (layer >= 0)
        snprintf(name, sizeof name, fmt, layer, leaf);
    else
        snprintf(name, sizeof name, fmt, leaf);
    /* decay on the 2-D weights only (nanoGPT, llm.c): not biases or LayerNorm */
    return mxp_nn_param_new(m, out, name, ndim, shape, ndim == 2);
}

mxp_status mxp_gpt_build(mxp_model_t *m, const mxp_model_config *c) {
    if (c->n_layer < 1 || c->n_layer > GPT_MAX_LAYERS || c->n_head < 1 || c->n_embd < 1 ||
        c->block_size < 1 || c->vocab_size < 2 || c->vocab_size > (1 << 24) ||
        c->n_embd > (1 << 16) || c->block_size > (1 << 20))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "gpt: sizes out of range (n_layer %lld, n_head %lld, n_embd %lld, "
                        "block_size %lld, vocab_size %lld)",
                        (long long)c->n_layer, (long long)c->n_head, (long long)c->n_embd,
                        (long long)c->block_size, (long long)c->vocab_size);
    if (c->n_embd % c->n_head)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "gpt: n_embd %lld is not a multiple of n_head %lld (each head gets "
                        "n_embd / n_head columns)",
                        (long long)c->n_embd, (long long)c->n_head);
    struct mxp_gpt *g = mxp_alloc(sizeof *g);
    if (!g) return MXP_FAIL(MXP_ERR_NOMEM, "gpt");
    memset(g, 0, sizeof *g);
    m->gpt = g;
    g->h = mxp_alloc_array((size_t)c->n_layer, sizeof *g->h);
    if (!g->h) return MXP_FAIL(MXP_ERR_NOMEM, "gpt layers");
    memset(g->h, 0, (size_t)c->n_layer * sizeof *g->h);
    g->n_layer = c->n_layer;
    g->n_head = c->n_head;
    g->C = c->n_embd;
    g->block = c->block_size;
    g->vocab = c->vocab_size;
    m->n_classes = (int)c->vocab_size;
    const int64_t C = c->n_embd;
    MXP_TRY(param(m, &g->wte, 2, (int64_t[]){c->vocab_size, C}, "%s", -1, "wte.weight"));
    MXP_TRY(param(m, &g->wpe, 2, (int64_t[]){c->block_size, C}, "%s", -1, "wpe.weight"));
    for (int64_t l = 0; l < c->n_layer; l++) {
        gpt_block *b = &g->h[l];
        const char *f = "h.%lld.%s";
        MXP_TRY(param(m, &b->ln1_w, 1, (int64_t[]){C}, f, l, "ln_1.weight"));
        MXP_TRY(param(m, &b->ln1_b, 1, (int64_t[]){C}, f, l, "ln_1.bias"));
        MXP_TRY(param(m, &b->attn_w, 2, (int64_t[]){C, 3 * C}, f, l, "attn.c_attn.weight"));
        MXP_TRY(param(m, &b->attn_b, 1, (int64_t[]){3 * C}, f, l, "attn.c_attn.bias"));
        MXP_TRY(param(m, &b->proj_w, 2, (int64_t[]){C, C}, f, l, "attn.c_proj.weight"));
        MXP_TRY(param(m, &b->proj_b, 1, (int64_t[]){C}, f, l, "attn.c_proj.bias"));
        MXP_TRY(param(m, &b->ln2_w, 1, (int64_t[]){C}, f, l, "ln_2.weight"));
        MXP_TRY(param(m, &b->ln2_b, 1, (int64_t[]){C}, f, l, "ln_2.bias"));
        MXP_TRY(param(m, &b->fc_w, 2, (int64_t[]){C, 4 * C}, f, l, "mlp.c_fc.weight"));
        MXP_TRY(param(m, &b->fc_b, 1, (int64_t[]){4 * C}, f, l, "mlp.c_fc.bias"));
        MXP_TRY(param(m, &b->out_w, 2, (int64_t[]){4 * C, C}, f, l, "mlp.c_proj.weight"));
        MXP_TRY(param(m, &b->out_b, 1, (int64_t[]){C}, f, l, "mlp.c_proj.bias"));
    }
    MXP_TRY(param(m, &g->lnf_w, 1, (int64_t[]){C}, "%s", -1, "ln_f.weight"));
    MXP_TRY(param(m, &g->lnf_b, 1, (int64_t[]){C}, "%s", -1, "ln_f.bias"));
    return MXP_OK;
}

/* ---- GPT-2 initialisation --------------------------------------------------------- */

/* normal(0, std) by Box-Muller: element i of parameter `index` uses Philox block
 * (index << 40) + i / 2 (two uniforms per element), so every tensor depends only on
 * the seed and its position in the model */
static void init_normal(mxp_param *p, float std, uint64_t seed, uint64_t index) {
    float *w = p->master->data;
    const int64_t n = mxp_tensor_numel(p->master);
    uint32_t r[4];
    for (int64_t i = 0; i < n; i++) {
        if ((i & 1) == 0) mxp_philox4x32(seed, (index << 40) + (uint64_t)i / 2, r);
        const uint32_t *u = r + 2 * (i & 1);
        /* u1 in (0, 1], u2 in [0, 1): log(u1) is finite */
        const double u1 = ((double)(u[0] >> 8) + 1.0) * (1.0 / 16777216.0);
        const double u2 = (double)(u[1] >> 8) * (1.0 / 16777216.0);
        w[i] = (float)(std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

static void init_const(mxp_param *p, float v) {
    float *w = p->master->data;
    const int64_t n = mxp_tensor_numel(p->master);
    for (int64_t i = 0; i < n; i++) w[i] = v;
}

mxp_status mxp_gpt_init(mxp_model_t *m, uint64_t seed) {
    struct mxp_gpt *g = m->gpt;
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i]->master)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "init: the fp32 weights were dropped");
    const float std = 0.02f, std_proj = 0.02f / sqrtf(2.0f * (float)g->n_layer);
    uint64_t index = 0;
    init_normal(g->wte, std, seed, index++);
    init_normal(g->wpe, std, seed, index++);
    for (int64_t l = 0; l < g->n_layer; l++) {
        gpt_block *b = &g->h[l];
        init_const(b->ln1_w, 1.0f);
        init_const(b->ln1_b, 0.0f);
        init_normal(b->attn_w, std, seed, index++);
        init_const(b->attn_b, 0.0f);
        init_normal(b->proj_w, std_proj, seed, index++);
        init_const(b->proj_b, 0.0f);
        init_const(b->ln2_w, 1.0f);
        init_const(b->ln2_b, 0.0f);
        init_normal(b->fc_w, std, seed, index++);
        init_const(b->fc_b, 0.0f);
        init_normal(b->out_w, std_proj, seed, index++);
        init_const(b->out_b, 0.0f);
    }
    init_const(g->lnf_w, 1.0f);
    init_const(g->lnf_b, 0.0f);
    return mxp_model_refresh_work(m);
}

void mxp_gpt_describe(const mxp_model_t *m, char *buf, size_t size) {
    const struct mxp_gpt *g = m->gpt;
    snprintf(buf, size,
             "gpt: %lld layers, %lld heads, %lld wide, block %lld, vocab %lld (%lld parameters)",
             (long long)g->n_layer, (long long)g->n_head, (long long)g->C, (long long)g->block,
             (long long)g->vocab, (long long)mxp_model_numel(m));
}

/* ---- forward ------------------------------------------------------------------------ */

mxp_status mxp_model_forward_tokens(mxp_model_t *m, mxp_graph_t *g, const int32_t *tokens,
                                    int64_t B, int64_t T, mxp_var **logits) {
    if (!m || !g || !tokens || !logits)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "forward: NULL argument");
    if (!m->gpt)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s takes images: use mxp_model_forward, not mxp_model_forward_tokens",
                        m->name);
    const struct mxp_gpt *G = m->gpt;
    if (B < 1 || T < 1 || T > G->block)
        return MXP_FAIL(MXP_ERR_SHAPE,
                        "gpt: a batch of (%lld, %lld) tokens; T must be in [1, %lld]", (long long)B,
                        (long long)T, (long long)G->block);
    if (mxp_graph_dtype(g) != m->work)
        return MXP_FAIL(MXP_ERR_DTYPE, "gpt: the graph works in %s but the model in %s",
                        mxp_dtype_name(mxp_graph_dtype(g)), mxp_dtype_name(m->work));
        /* --profile reports time per layer type: each op's row is named by its role */
#define AS(label, call)                                                                            \
    do {                                                                                           \
        mxp_graph_set_profile_label(g, label);                                                     \
        const mxp_status st_ = (call);                                                             \
        mxp_graph_set_profile_label(g, NULL);                                                      \
        if (st_ != MXP_OK) return st_;                                                             \
    } while (0)
    mxp_var *x, *a, *y;
    AS("embedding",
       mxp_op_embedding(g, &x, tokens, B, T, &G->wte->var, &G->wpe->var)); /* (B,T,C) */
    for (int64_t l = 0; l < G->n_layer; l++) {
        const gpt_block *b = &G->h[l];
        AS("layernorm", mxp_op_layernorm(g, &a, x, &b->ln1_w->var, &b->ln1_b->var, LN_EPS));
        AS("attn.c_attn", mxp_op_linear_kn(g, &y, a, &b->attn_w->var, &b->attn_b->var,
                                           MXP_ACT_NONE));      /* (B, T, 3C) */
        AS("attention", mxp_op_attention(g, &y, y, G->n_head)); /* (B, T, C) */
        AS("attn.c_proj",
           mxp_op_linear_kn(g, &y, y, &b->proj_w->var, &b->proj_b->var, MXP_ACT_NONE));
        AS("residual", mxp_op_add(g, &x, x, y));
        AS("layernorm", mxp_op_layernorm(g, &a, x, &b->ln2_w->var, &b->ln2_b->var, LN_EPS));
        AS("mlp.c_fc+gelu", mxp_op_linear_kn(g, &y, a, &b->fc_w->var, &b->fc_b->var,
                                             MXP_ACT_GELU_TANH)); /* (B, T, 4C) */
        AS("mlp.c_proj", mxp_op_linear_kn(g, &y, y, &b->out_w->var, &b->out_b->var, MXP_ACT_NONE));
        AS("residual", mxp_op_add(g, &x, x, y));
    }
    AS("layernorm", mxp_op_layernorm(g, &a, x, &G->lnf_w->var, &G->lnf_b->var, LN_EPS));
    /* the tied head: logits (B, T, V) = a wte^T */
    AS("lm_head", mxp_op_linear(g, logits, a, &G->wte->var, NULL, MXP_ACT_NONE));
#undef AS
    return MXP_OK;
}

/* ---- sampling ------------------------------------------------------------------------ */

/* The next token from row (V) fp32 logits: greedy, or a draw from the top-k softmax at
 * this temperature with uniform u in [0, 1). row is overwritten. */
static int32_t pick(float *row, int64_t V, const mxp_sample_options *o, double u) {
    int64_t best = 0;
    for (int64_t j = 1; j < V; j++)
        if (row[j] > row[best]) best = j;
    if (o->temperature == 0.0f) return (int32_t)best;
    float cut = -INFINITY; /* the k-th largest logit: keep those >= it */
    if (o->top_k > 0 && o->top_k < V) {
        /* k passes of "largest below the previous one" would be O(kV); a copy sorted by
         * insertion of the top k is simpler and V is small next to the forward pass */
        float *top = row + V; /* scratch of k floats after the row */
        int64_t n = 0;
        for (int64_t j = 0; j < V; j++) {
            const float x = row[j];
            if (n == o->top_k && x <= top[n - 1]) continue;
            int64_t i = n < o->top_k ? n++ : n - 1;
            while (i > 0 && top[i - 1] < x) {
                top[i] = top[i - 1];
                i--;
            }
            top[i] = x;
        }
        cut = top[o->top_k - 1];
    }
    double sum = 0.0;
    const double mx = row[best];
    for (int64_t j = 0; j < V; j++) {
        const double p = row[j] >= cut ? exp(((double)row[j] - mx) / o->temperature) : 0.0;
        row[j] = (float)p;
        sum += p;
    }
    double acc = 0.0, target = u * sum;
    for (int64_t j = 0; j < V; j++) {
        acc += row[j];
        if (row[j] > 0.0f && acc > target) return (int32_t)j;
    }
    return (int32_t)best; /* rounding left target past the last sum: the mode */
}

mxp_status mxp_model_generate(mxp_model_t *m, const int32_t *prompt, int64_t n_prompt,
                              int64_t n_new, const mxp_sample_options *o, int32_t *out,
                              void (*fn)(int32_t token, void *user), void *user) {
    if (!m || !m->gpt) return MXP_FAIL(MXP_ERR_INVALID_ARG, "generate: the model is not a gpt");
    if (!prompt || n_prompt < 1 || n_new < 0 || !o || !out)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "generate: needs a prompt of at least one token");
    if (!(o->temperature >= 0.0f) || !isfinite(o->temperature) || o->top_k < 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "generate: temperature %g must be >= 0 and top-k %d >= 0",
                        (double)o->temperature, o->top_k);
    const struct mxp_gpt *G = m->gpt;
    for (int64_t i = 0; i < n_prompt; i++) {
        if (prompt[i] < 0 || prompt[i] >= G->vocab)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "generate: prompt token %lld is %d, outside the vocabulary [0, %lld)",
                            (long long)i, prompt[i], (long long)G->vocab);
        out[i] = prompt[i];
    }
    mxp_graph_t *g;
    MXP_TRY(mxp_graph_create(&g, m->work));
    mxp_graph_set_training(g, 0);
    const int64_t k = o->top_k > 0 && o->top_k < G->vocab ? o->top_k : 0;
    float *row = mxp_alloc_array((size_t)(G->vocab + k), sizeof *row);
    mxp_status st = row ? MXP_OK : MXP_FAIL(MXP_ERR_NOMEM, "generate: logits row");
    for (int64_t i = 0; st == MXP_OK && i < n_new; i++) {
        const int64_t len = n_prompt + i, T = len < G->block ? len : G->block;
        mxp_graph_reset(g);
        mxp_var *logits;
        st = mxp_model_forward_tokens(m, g, out + len - T, 1, T, &logits); /* (1, T, V) */
        if (st != MXP_OK) break;
        const size_t es = mxp_dtype_size(logits->value->dtype);
        st = mxp_convert(row, MXP_DTYPE_F32,
                         (const char *)logits->value->data + (size_t)((T - 1) * G->vocab) * es,
                         logits->value->dtype, (size_t)G->vocab);
        if (st != MXP_OK) break;
        uint32_t r[4];
        mxp_philox4x32(o->seed, (uint64_t)i, r);
        const double u = (double)((uint64_t)r[0] << 21 ^ r[1] >> 11) * (1.0 / 9007199254740992.0);
        out[len] = pick(row, G->vocab, o, u);
        if (fn) fn(out[len], user);
    }
    mxp_free(row);
    mxp_graph_free(g);
    return st;
}
