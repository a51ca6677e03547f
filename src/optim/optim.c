/*
 * optim.c - SGD and AdamW over a model's parameters, LR schedules, global
 * gradient norm. The arithmetic lives in the kernels (mxp_sgd_update,
 * mxp_adamw_update, which also round stochastically); this file owns the
 * moments, walks the parameters and hands each step and parameter its
 * random words.
 */
#include <math.h>
#include <string.h>

#include "base/base_impl.h"
#include "mixprec/optim.h"

struct mxp_optimizer {
    mxp_optim_config cfg;
    mxp_model_t *model; /* retained */
    float **m, **v;     /* (n_params) fp32 moments, each (numel); v only for AdamW */
    int n;
    int64_t steps;
    size_t state_bytes;
};

mxp_status mxp_optim_config_default(mxp_optim_config *c, mxp_optim_kind kind) {
    if (!c) return MXP_FAIL(MXP_ERR_INVALID_ARG, "config is NULL");
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    if (kind == MXP_OPTIM_SGD) {
        c->lr = 0.01f;
        c->momentum = 0.9f;
    } else if (kind == MXP_OPTIM_ADAMW) {
        c->lr = 1e-3f;
        c->weight_decay = 0.01f;
    } else {
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown optimizer kind %d", (int)kind);
    }
    return MXP_OK;
}

mxp_status mxp_optim_parse(const char *name, mxp_optim_kind *out) {
    if (name && out && strcmp(name, "sgd") == 0)
        *out = MXP_OPTIM_SGD;
    else if (name && out && strcmp(name, "adamw") == 0)
        *out = MXP_OPTIM_ADAMW;
    else
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown optimizer '%s' (choose sgd or adamw)",
                        name ? name : "(null)");
    return MXP_OK;
}

const char *mxp_optim_name(mxp_optim_kind kind) {
    return kind == MXP_OPTIM_SGD ? "sgd" : kind == MXP_OPTIM_ADAMW ? "adamw" : "?";
}

static int in01(float x) { return x >= 0.0f && x < 1.0f; }

mxp_status mxp_optimizer_create(mxp_optimizer_t **out, const mxp_optim_config *c) {
    if (!out || !c) return MXP_FAIL(MXP_ERR_INVALID_ARG, "out or config is NULL");
    *out = NULL;
    if (c->kind != MXP_OPTIM_SGD && c->kind != MXP_OPTIM_ADAMW)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown optimizer kind %d", (int)c->kind);
    if (!(c->lr > 0.0f) || !isfinite(c->lr))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "learning rate %g must be a positive number",
                        (double)c->lr);
    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "weight decay %g must be >= 0",
                        (double)c->weight_decay);
    if (c->kind == MXP_OPTIM_SGD &&
        (!in01(c->momentum) || !(c->dampening >= 0.0f) || c->dampening > 1.0f ||
         (c->nesterov && (c->momentum == 0.0f || c->dampening != 0.0f))))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "sgd: momentum must be in [0, 1), dampening in [0, 1]; Nesterov needs "
                        "momentum > 0 and no dampening");
    if (c->kind == MXP_OPTIM_ADAMW && (!in01(c->beta1) || !in01(c->beta2) || !(c->eps > 0.0f)))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "adamw: betas must be in [0, 1) and eps > 0");
    mxp_optimizer_t *o = mxp_alloc(sizeof *o);
    if (!o) return MXP_FAIL(MXP_ERR_NOMEM, "optimizer");
    memset(o, 0, sizeof *o);
    o->cfg = *c;
    *out = o;
    return MXP_OK;
}

void mxp_optimizer_free(mxp_optimizer_t *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) {
        if (o->m) mxp_free(o->m[i]);
        if (o->v) mxp_free(o->v[i]);
    }
    mxp_free(o->m);
    mxp_free(o->v);
    mxp_free(o);
}

/* 16-bit working weights and no fp32 copy of them: the one setting stochastic rounding fits */
static int pure_16bit(const mxp_model_t *m) {
    if (m->work != MXP_DTYPE_BF16 && m->work != MXP_DTYPE_F16) return 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i]->master) return 0;
    return 1;
}

mxp_status mxp_optimizer_bind(mxp_optimizer_t *o, mxp_model_t *m) {
    if (!o || !m) return MXP_FAIL(MXP_ERR_INVALID_ARG, "optimizer or model is NULL");
    if (o->model) return MXP_FAIL(MXP_ERR_INVALID_ARG, "the optimizer is already bound");
    if (o->cfg.stochastic_rounding && !pure_16bit(m))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "stochastic rounding applies to 16-bit weights kept without fp32 masters "
                        "(--master-weights off, bf16 or fp16); this model has %s weights%s",
                        m->work == MXP_DTYPE_F32 ? "fp32" : mxp_dtype_name(m->work),
                        m->work == MXP_DTYPE_F32 ? "" : " with fp32 masters");
    const int need_m = o->cfg.kind == MXP_OPTIM_ADAMW || o->cfg.momentum != 0.0f;
    const int need_v = o->cfg.kind == MXP_OPTIM_ADAMW;
    o->n = m->n_params;
    o->m = mxp_alloc_array((size_t)o->n + 1, sizeof *o->m);
    o->v = mxp_alloc_array((size_t)o->n + 1, sizeof *o->v);
    if (!o->m || !o->v) goto nomem;
    memset(o->m, 0, ((size_t)o->n + 1) * sizeof *o->m);
    memset(o->v, 0, ((size_t)o->n + 1) * sizeof *o->v);
    for (int i = 0; i < o->n; i++) {
        const size_t n = (size_t)mxp_tensor_numel(m->params[i]->work);
        if (need_m && !(o->m[i] = mxp_alloc_array(n, sizeof(float)))) goto nomem;
        if (need_v && !(o->v[i] = mxp_alloc_array(n, sizeof(float)))) goto nomem;
        if (need_m) memset(o->m[i], 0, n * sizeof(float));
        if (need_v) memset(o->v[i], 0, n * sizeof(float));
        o->state_bytes += (size_t)(need_m + need_v) * n * sizeof(float);
    }
    o->model = m;
    return MXP_OK;
nomem:
    for (int i = 0; i < o->n; i++) {
        if (o->m) mxp_free(o->m[i]);
        if (o->v) mxp_free(o->v[i]);
    }
    mxp_free(o->m);
    mxp_free(o->v);
    o->m = o->v = NULL;
    o->n = 0;
    o->state_bytes = 0;
    return MXP_FAIL(MXP_ERR_NOMEM, "optimizer state");
}

mxp_status mxp_optimizer_step(mxp_optimizer_t *o, float lr, float grad_mul,
                              mxp_update_stats *stats) {
    if (!o || !o->model) return MXP_FAIL(MXP_ERR_INVALID_ARG, "the optimizer is not bound");
    const mxp_optim_config *c = &o->cfg;
    const uint64_t sr_key = c->stochastic_rounding ? mxp_optim_sr_key(c->sr_seed, o->steps) : 0;
    uint64_t offset = 0; /* the parameter's first element in the model: its first word */
    for (int i = 0; i < o->n; i++) {
        mxp_param *p = o->model->params[i];
        const size_t n = (size_t)mxp_tensor_numel(p->work);
        offset += n;
        if (!p->var.has_grad) continue; /* no gradient this step (unused parameter) */
        mxp_update_io io = {.master = p->master ? p->master->data : NULL,
                            .work = p->work->data,
                            .work_dtype = p->work->dtype,
                            .grad = p->grad->data,
                            .grad_dtype = p->grad->dtype,
                            .grad_mul = grad_mul,
                            .n = n,
                            .n_updated = stats ? &stats->updated : NULL,
                            .n_lost = stats ? &stats->lost : NULL,
                            .stochastic = c->stochastic_rounding != 0,
                            .sr_seed = sr_key,
                            .sr_offset = offset - n};
        const float wd = p->decay ? c->weight_decay : 0.0f;
        if (c->kind == MXP_OPTIM_SGD) {
            mxp_sgd_hparams h = {.lr = lr,
                                 .momentum = c->momentum,
                                 .dampening = c->dampening,
                                 .weight_decay = wd,
                                 .nesterov = c->nesterov};
            MXP_TRY(mxp_sgd_update(&io, o->m[i], &h, o->steps == 0));
        } else {
            mxp_adamw_hparams h = {.lr = lr,
                                   .beta1 = c->beta1,
                                   .beta2 = c->beta2,
                                   .eps = c->eps,
                                   .weight_decay = wd,
                                   .step = o->steps + 1};
            MXP_TRY(mxp_adamw_update(&io, o->m[i], o->v[i], &h));
        }
    }
    o->steps++;
    return MXP_OK;
}

/* splitmix64's finaliser: a bijection of 64 bits that spreads every input bit over all */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Keyed apart from the other streams of the run's seed (initialisation, dropout, shuffling
 * use Philox(seed) directly): the seed is mixed with a constant of this use, then the step
 * is added and mixed again. */
uint64_t mxp_optim_sr_key(uint64_t seed, int64_t step) {
    return mix64(mix64(seed ^ 0x5352u /* "SR" */) + (uint64_t)step);
}

int64_t mxp_optimizer_steps(const mxp_optimizer_t *o) { return o ? o->steps : 0; }

mxp_status mxp_optimizer_set_steps(mxp_optimizer_t *o, int64_t steps) {
    if (!o || steps < 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "optimizer step count %lld must be >= 0",
                        (long long)steps);
    o->steps = steps;
    return MXP_OK;
}

mxp_status mxp_optimizer_moments(const mxp_optimizer_t *o, int i, float **m1, float **m2,
                                 const char **n1, const char **n2) {
    if (!o || !o->model || i < 0 || i >= o->n || !m1 || !m2)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "optimizer moments: not bound or index %d out of range", i);
    *m1 = o->m[i];
    *m2 = o->v[i];
    if (n1) *n1 = o->cfg.kind == MXP_OPTIM_ADAMW ? "exp_avg" : "momentum_buffer";
    if (n2) *n2 = o->cfg.kind == MXP_OPTIM_ADAMW ? "exp_avg_sq" : NULL;
    return MXP_OK;
}

const mxp_model_t *mxp_optimizer_model(const mxp_optimizer_t *o) { return o ? o->model : NULL; }
size_t mxp_optimizer_state_bytes(const mxp_optimizer_t *o) { return o ? o->state_bytes : 0; }
const mxp_optim_config *mxp_optimizer_config(const mxp_optimizer_t *o) {
    return o ? &o->cfg : NULL;
}

/* ---- schedules ----------------------------------------------------------------- */

float mxp_schedule_lr(const mxp_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (step < s->warmup_steps) return s->base_lr * (float)(step + 1) / (float)s->warmup_steps;
    if (s->kind == MXP_SCHED_CONSTANT) return s->base_lr;
    const int64_t span = s->total_steps - s->warmup_steps;
    if (span <= 0 || step >= s->total_steps) return s->min_lr;
    const double t = (double)(step - s->warmup_steps) / (double)span;
    return (float)(s->min_lr + 0.5 * (s->base_lr - s->min_lr) * (1.0 + cos(M_PI * t)));
}

mxp_status mxp_schedule_parse(const char *name, mxp_sched_kind *out) {
    if (name && out && strcmp(name, "constant") == 0)
        *out = MXP_SCHED_CONSTANT;
    else if (name && out && strcmp(name, "cosine") == 0)
        *out = MXP_SCHED_COSINE;
    else
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown schedule '%s' (choose constant or cosine)",
                        name ? name : "(null)");
    return MXP_OK;
}

/* ---- gradients ------------------------------------------------------------------ */

mxp_status mxp_grad_norm(const mxp_model_t *m, float inv_scale, float *norm, int *found_inf) {
    if (!m || !norm || !found_inf) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL argument");
    double total = 0.0;
    int bad = 0;
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        if (!p->var.has_grad) continue;
        float ss;
        MXP_TRY(mxp_reduce(MXP_REDUCE_SUMSQ, &ss, p->grad->data, p->grad->dtype,
                           (size_t)mxp_tensor_numel(p->grad)));
        if (!isfinite(ss)) bad = 1;
        total += (double)ss;
    }
    *found_inf = bad;
    *norm = bad ? NAN : (float)(sqrt(total) * (double)inv_scale);
    return MXP_OK;
}

float mxp_clip_coef(float norm, float max_norm) {
    const float c = max_norm / (norm + 1e-6f);
    return c < 1.0f ? c : 1.0f;
}
