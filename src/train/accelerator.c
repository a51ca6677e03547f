/*
 * accelerator.c - the accelerate-style object: settings from options and the
 * MIXPREC_* environment, prepare(), backward with the loss scale, clipping on
 * unscaled gradients, the skip-on-overflow step, memory accounting, and
 * evaluation. It owns the step graph and the scaler; it computes nothing
 * itself.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "autograd/autograd_impl.h"
#include "base/base_impl.h"
#include "mixprec/dist.h"
#include "mixprec/train.h"

struct mxp_accelerator {
    mxp_precision prec;
    mxp_dtype work;
    int master_weights;
    int grad_accum;
    int stats_every;
    uint64_t seed;
    mxp_scaler scaler;
    mxp_graph_t *graph;
    mxp_model_t *model;   /* retained */
    mxp_optimizer_t *opt; /* retained */
    int have_schedule;
    mxp_schedule sched;
    int micro;     /* micro-batches backpropagated in this cycle */
    int norm_done; /* clip_grad_norm ran in this cycle */
    int found_inf;
    float norm, clip_coef;
    int64_t applied;     /* optimizer steps applied */
    int64_t cycles;      /* optimizer steps applied or skipped */
    int64_t micro_total; /* micro-batches ever: seeds dropout */
    /* data parallelism (mxp_dist): this rank's share of the micro-batch being read, as the
     * weight of its gradients in the global mean; the cycle's loss, weighted likewise */
    int rank, world;
    double weight;
    double loss_sum;   /* sum over the cycle's micro-batches of weight * loss (this rank) */
    int loss_n;        /* micro-batches in loss_sum (fewer than grad_accum after end_cycle) */
    int reduced;       /* the gradients of this cycle were all-reduced */
    size_t comm_bytes; /* handed to MPI this cycle */
    double comm_s;     /* seconds in collectives this cycle */
    int numerics;      /* options.numerics_stats */
    mxp_numerics_fn numerics_fn;
    void *numerics_user;
};

void mxp_accelerator_options_init(mxp_accelerator_options *o) {
    memset(o, 0, sizeof *o);
    o->master_weights = -1;
}

/* a setting: the option if set, else the environment variable, else NULL */
static const char *pick(const char *opt, const char *env, const char **from) {
    if (opt) {
        *from = "option";
        return opt;
    }
    const char *e = getenv(env);
    if (e && *e) {
        *from = env;
        return e;
    }
    return NULL;
}

static mxp_status parse_int_env(const char *env, int *out) {
    const char *e = getenv(env);
    if (!e || !*e) return MXP_OK;
    char *end;
    long v = strtol(e, &end, 10);
    if (*end || v < 1 || v > 1 << 20)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s=%s: expected a positive integer", env, e);
    *out = (int)v;
    return MXP_OK;
}

static mxp_status parse_i64_env(const char *env, int64_t *out) {
    const char *e = getenv(env);
    if (!e || !*e) return MXP_OK;
    char *end;
    long long v = strtoll(e, &end, 10);
    if (*end || v < 1)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s=%s: expected a positive integer", env, e);
    *out = v;
    return MXP_OK;
}

static mxp_status parse_scale_env(const char *env, float *out) {
    const char *e = getenv(env);
    if (!e || !*e) return MXP_OK;
    char *end;
    const double v = strtod(e, &end);
    /* checked on the float kept: 1e-50 would round to 0; 3.00000001e38, what 3e38 rounds to
     * and prints back as, is accepted */
    if (*end || !(v > 0.0) || v > 3.4e38 || !((float)v > 0.0f) || (float)v > 3.0e38f)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s=%s: expected a positive number", env, e);
    *out = (float)v;
    return MXP_OK;
}

mxp_status mxp_accelerator_create(mxp_accelerator_t **out, const mxp_accelerator_options *o) {
    if (!out || !o) return MXP_FAIL(MXP_ERR_INVALID_ARG, "out or options is NULL");
    *out = NULL;
    const char *from = "default";
    mxp_precision prec = MXP_PREC_NO;
    const char *mp = pick(o->mixed_precision, "MIXPREC_MIXED_PRECISION", &from);
    if (mp && mxp_precision_parse(mp, &prec) != MXP_OK)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s%s%s: unknown mixed precision '%s' (choose no, fp16 or bf16)",
                        strcmp(from, "option") ? from : "mixed precision",
                        strcmp(from, "option") ? "=" : "", strcmp(from, "option") ? mp : "", mp);
    int master = o->master_weights;
    if (master < 0) {
        const char *e = getenv("MIXPREC_MASTER_WEIGHTS");
        master = 1;
        if (e && *e) {
            if (strcmp(e, "on") == 0 || strcmp(e, "1") == 0)
                master = 1;
            else if (strcmp(e, "off") == 0 || strcmp(e, "0") == 0)
                master = 0;
            else
                return MXP_FAIL(MXP_ERR_INVALID_ARG,
                                "MIXPREC_MASTER_WEIGHTS=%s: expected on or off", e);
        }
    }
    mxp_scaler_config sc;
    mxp_scaler_config_default(&sc);
    sc.enabled = prec == MXP_PREC_FP16;
    const char *ls = pick(o->loss_scale, "MIXPREC_LOSS_SCALE", &from);
    if (ls) {
        if (strcmp(ls, "dynamic") == 0) {
            sc.enabled = prec != MXP_PREC_NO;
        } else {
            char *end;
            const double v = strtod(ls, &end);
            if (*end || !(v > 0.0) || !isfinite(v) || v > 3.0e38 || !((float)v > 0.0f))
                return MXP_FAIL(MXP_ERR_INVALID_ARG,
                                "loss scale '%s' (%s): expected 'dynamic' or a positive number", ls,
                                from);
            sc.enabled = 1;
            sc.dynamic = 0;
            sc.init_scale = (float)v;
        }
    }
    float init_scale = o->init_scale;
    if (init_scale <= 0.0f) MXP_TRY(parse_scale_env("MIXPREC_INIT_SCALE", &init_scale));
    if (init_scale > 0.0f && sc.dynamic) sc.init_scale = init_scale;
    if (o->growth_interval > 0)
        sc.growth_interval = o->growth_interval;
    else
        MXP_TRY(parse_i64_env("MIXPREC_GROWTH_INTERVAL", &sc.growth_interval));
    if (o->hysteresis > 0)
        sc.hysteresis = o->hysteresis;
    else
        MXP_TRY(parse_int_env("MIXPREC_HYSTERESIS", &sc.hysteresis));
    sc.max_scale = o->max_scale;
    sc.min_scale = o->min_scale > 0.0f ? o->min_scale : 1.0f; /* DeepSpeed's min_loss_scale */
    if (o->min_scale <= 0.0f && sc.max_scale > 0.0f && sc.min_scale > sc.max_scale)
        sc.min_scale = sc.max_scale; /* a ceiling under the default floor lowers the floor */
    int accum = o->grad_accum;
    if (accum <= 0) {
        accum = 1;
        MXP_TRY(parse_int_env("MIXPREC_GRAD_ACCUM", &accum));
    }
    int threads = o->num_threads;
    if (threads <= 0) MXP_TRY(parse_int_env("MIXPREC_NUM_THREADS", &threads));
    if (threads > 0) MXP_TRY(mxp_set_num_threads(threads));
    MXP_TRY(mxp_dist_init()); /* joins the job when mixprec launch / mpirun started several */

    mxp_accelerator_t *acc = mxp_alloc(sizeof *acc);
    if (!acc) return MXP_FAIL(MXP_ERR_NOMEM, "accelerator");
    memset(acc, 0, sizeof *acc);
    acc->prec = prec;
    acc->work = mxp_precision_dtype(prec);
    acc->master_weights = prec == MXP_PREC_NO ? 1 : master;
    acc->grad_accum = accum;
    acc->stats_every = o->stats_every;
    acc->numerics = o->numerics_stats;
    acc->seed = o->seed;
    acc->clip_coef = 1.0f;
    acc->rank = mxp_dist_rank();
    acc->world = mxp_dist_world();
    acc->weight = 1.0;
    mxp_status st = mxp_scaler_init(&acc->scaler, &sc);
    if (st == MXP_OK) st = mxp_graph_create(&acc->graph, acc->work);
    if (st != MXP_OK) {
        mxp_free(acc);
        return st;
    }
    mxp_graph_set_profiling(acc->graph, o->profile);
    *out = acc;
    return MXP_OK;
}

void mxp_accelerator_free(mxp_accelerator_t *acc) {
    if (!acc) return;
    mxp_graph_free(acc->graph);
    mxp_free(acc);
}

mxp_status mxp_accelerator_prepare(mxp_accelerator_t *acc, mxp_model_t *model, mxp_optimizer_t *opt,
                                   mxp_loader_t *train, mxp_loader_t *valid) {
    if (!acc || !model || !opt)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "prepare: NULL model or optimizer");
    if (acc->model) return MXP_FAIL(MXP_ERR_INVALID_ARG, "prepare was already called");
    /* each rank reads its share of every global batch of the training data; the validation
     * loader is left whole (mxp_evaluate reads a dataset, on whichever rank evaluates) */
    if (train && acc->world > 1) MXP_TRY(mxp_loader_shard(train, acc->rank, acc->world));
    (void)valid;
    MXP_TRY(mxp_model_set_precision(model, acc->work, acc->master_weights));
    MXP_TRY(mxp_dist_broadcast_params(model)); /* every rank starts from rank 0's weights */
    MXP_TRY(mxp_optimizer_bind(opt, model));
    mxp_model_zero_grad(model);
    acc->model = model;
    acc->opt = opt;
    return MXP_OK;
}

void mxp_accelerator_set_schedule(mxp_accelerator_t *acc, const mxp_schedule *s) {
    acc->have_schedule = s != NULL;
    if (s) acc->sched = *s;
}

mxp_graph_t *mxp_accelerator_graph(mxp_accelerator_t *acc) { return acc->graph; }

/* A micro-batch's fresh graph, its dropout masks keyed by how many came before it and by
 * the rank (each rank's samples get masks of their own; rank 0's are a lone process's). */
static void start_micro(mxp_accelerator_t *acc) {
    mxp_graph_reset(acc->graph);
    mxp_graph_set_seed(acc->graph, acc->seed ^
                                       (0x9e3779b97f4a7c15ull * (uint64_t)(acc->micro_total + 1)) ^
                                       (0xd1b54a32d192ed03ull * (uint64_t)acc->rank));
}

/* The share of the global micro-batch that this rank's b samples are: the weight of its
 * gradients (1 alone, 1/world for equal shares). */
static void set_weight(mxp_accelerator_t *acc, mxp_loader_t *ld, int64_t b) {
    const int64_t g = mxp_loader_global_count(ld);
    acc->weight = acc->world > 1 && b > 0 && g > 0 ? (double)b / (double)g : 1.0;
}

mxp_status mxp_accelerator_next_batch(mxp_accelerator_t *acc, mxp_loader_t *ld, mxp_var **x,
                                      const int32_t **labels, int64_t *b) {
    if (!acc || !ld || !x || !labels || !b) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL argument");
    start_micro(acc);
    const mxp_dataset_t *ds = mxp_loader_dataset(ld);
    /* room for a full batch; the loader says how many it filled */
    const int64_t cap = mxp_loader_batch_size(ld);
    mxp_tensor *xt;
    MXP_TRY(mxp_tensor_arena(mxp_graph_arena(acc->graph), &xt, acc->work, 4,
                             (int64_t[]){cap, ds->H, ds->W, ds->C}));
    int32_t *y = mxp_arena_alloc(mxp_graph_arena(acc->graph), (size_t)cap * sizeof *y);
    if (!y) return MXP_FAIL(MXP_ERR_NOMEM, "batch labels");
    MXP_TRY(mxp_loader_next(ld, xt->data, acc->work, y, b));
    set_weight(acc, ld, *b);
    xt->shape[0] = *b; /* a short last batch: the same storage, fewer rows */
    *x = mxp_graph_input(acc->graph, xt);
    if (!*x) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
    *labels = y;
    return MXP_OK;
}

mxp_status mxp_accelerator_next_tokens(mxp_accelerator_t *acc, mxp_loader_t *ld, const int32_t **x,
                                       const int32_t **y, int64_t *b, int64_t *T) {
    if (!acc || !ld || !x || !y || !b || !T) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL argument");
    start_micro(acc);
    const mxp_dataset_t *ds = mxp_loader_dataset(ld);
    const size_t n = (size_t)(mxp_loader_batch_size(ld) * ds->block);
    int32_t *xt = mxp_arena_alloc(mxp_graph_arena(acc->graph), n * sizeof *xt);
    int32_t *yt = mxp_arena_alloc(mxp_graph_arena(acc->graph), n * sizeof *yt);
    if (!xt || !yt) return MXP_FAIL(MXP_ERR_NOMEM, "token batch");
    MXP_TRY(mxp_loader_next_tokens(ld, xt, yt, b));
    set_weight(acc, ld, *b);
    *x = xt;
    *y = yt;
    *T = ds->block;
    return MXP_OK;
}

mxp_status mxp_accelerator_backward(mxp_accelerator_t *acc, mxp_var *loss) {
    if (!acc || !loss) return MXP_FAIL(MXP_ERR_INVALID_ARG, "backward: NULL argument");
    if (!acc->model) return MXP_FAIL(MXP_ERR_INVALID_ARG, "backward before prepare");
    if (mxp_tensor_numel(loss->value) != 1)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "backward: the loss must be a scalar");
    float lv = 0.0f;
    MXP_TRY(mxp_convert(&lv, MXP_DTYPE_F32, loss->value->data, loss->value->dtype, 1));
    float seed = acc->scaler.scale / (float)acc->grad_accum;
    if (acc->weight != 1.0) seed = (float)((double)seed * acc->weight);
    MXP_TRY(mxp_graph_backward(acc->graph, loss, seed));
    acc->loss_sum += acc->weight * (double)lv;
    acc->loss_n++;
    acc->weight = 1.0; /* the share belongs to the micro-batch the accelerator read */
    acc->micro++;
    acc->micro_total++;
    return MXP_OK;
}

int mxp_accelerator_sync_gradients(const mxp_accelerator_t *acc) {
    return acc->micro >= acc->grad_accum;
}

void mxp_accelerator_end_cycle(mxp_accelerator_t *acc) {
    if (acc->micro > 0) acc->micro = acc->grad_accum;
}

/* The cycle's gradients summed over the ranks (once), then their unscaled norm and the
 * overflow check, agreed by every rank together with the cycle's loss. Alone: the norm. */
static mxp_status measure(mxp_accelerator_t *acc) {
    if (acc->world > 1 && !acc->reduced) {
        const double t = mxp_graph_clock();
        MXP_TRY(mxp_dist_allreduce_grads(acc->model, &acc->comm_bytes));
        acc->reduced = 1;
        acc->comm_s += mxp_graph_clock() - t;
    }
    MXP_TRY(mxp_grad_norm(acc->model, 1.0f / acc->scaler.scale, &acc->norm, &acc->found_inf));
    if (acc->world > 1) {
        /* the summed gradients are the same on every rank, so is the flag; agreeing on it
         * costs one small message and guards against a reduction that is not */
        const double t = mxp_graph_clock();
        double v[2] = {acc->found_inf ? 1.0 : 0.0, acc->loss_sum};
        MXP_TRY(mxp_dist_allreduce_sum(v, 2));
        acc->found_inf = v[0] > 0.0;
        acc->loss_sum = v[1];
        acc->comm_bytes += sizeof v;
        acc->comm_s += mxp_graph_clock() - t;
    }
    acc->norm_done = 1;
    return MXP_OK;
}

mxp_status mxp_accelerator_clip_grad_norm(mxp_accelerator_t *acc, float max_norm, float *norm) {
    if (!acc || !(max_norm >= 0.0f)) return MXP_FAIL(MXP_ERR_INVALID_ARG, "max norm must be >= 0");
    if (!acc->model) return MXP_FAIL(MXP_ERR_INVALID_ARG, "clip_grad_norm before prepare");
    if (acc->micro < acc->grad_accum) { /* the cycle's gradients are not complete yet */
        if (norm) *norm = NAN;
        return MXP_OK;
    }
    if (!acc->norm_done) MXP_TRY(measure(acc));
    acc->clip_coef = max_norm > 0.0f && !acc->found_inf ? mxp_clip_coef(acc->norm, max_norm) : 1.0f;
    if (norm) *norm = acc->norm;
    return MXP_OK;
}

/* fraction of zero values among all weight-gradient elements */
static mxp_status zero_grad_fraction(const mxp_model_t *m, double *frac) {
    uint64_t c[4] = {0, 0, 0, 0};
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        if (!p->var.has_grad) continue;
        MXP_TRY(
            mxp_count_classes(c, p->grad->data, p->grad->dtype, (size_t)mxp_tensor_numel(p->grad)));
    }
    const uint64_t total = c[0] + c[1] + c[2] + c[3];
    *frac = total ? (double)c[0] / (double)total : 0.0;
    return MXP_OK;
}

void mxp_accelerator_set_numerics(mxp_accelerator_t *acc, mxp_numerics_fn fn, void *user) {
    acc->numerics_fn = fn;
    acc->numerics_user = user;
}

/* The fp32 weights the optimizer updates: the master, or an fp32 working copy; NULL when the
 * weights exist only in 16 bits. */
static const mxp_tensor *fp32_weights(const mxp_param *p) {
    if (p->master) return p->master;
    return p->work->dtype == MXP_DTYPE_F32 ? p->work : NULL;
}

static mxp_status report(mxp_accelerator_t *acc, const char *kind, const char *name,
                         const mxp_numerics *s) {
    const mxp_numerics_record rec = {acc->cycles + 1, kind, name, s};
    acc->numerics_fn(&rec, acc->numerics_user);
    return MXP_OK;
}

enum { MAX_LABELS = 64 }; /* op kinds / profile labels of one step's activations */

/* Measure and report every tensor of the step about to be taken: each parameter's weights
 * and gradient (unscaled, and as stored when scaled), and the last micro-batch's activations
 * and their gradients merged per op label (the graph's tape). */
static mxp_status report_numerics(mxp_accelerator_t *acc) {
    const float unscale = 1.0f / acc->scaler.scale;
    mxp_numerics *s = mxp_alloc(sizeof *s);
    mxp_numerics *acts = mxp_alloc_array(2 * MAX_LABELS, sizeof *acts); /* value, grad */
    if (!s || !acts) {
        mxp_free(s);
        mxp_free(acts);
        return MXP_FAIL(MXP_ERR_NOMEM, "numerics statistics");
    }
    mxp_status st = MXP_OK;
    const mxp_model_t *m = acc->model;
    for (int i = 0; st == MXP_OK && i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        const mxp_tensor *w = fp32_weights(p) ? fp32_weights(p) : p->work;
        mxp_numerics_clear(s);
        st = mxp_numerics_add(s, w->data, w->dtype, (size_t)mxp_tensor_numel(w), 1.0f);
        if (st == MXP_OK) st = report(acc, "weight", p->name, s);
        if (st != MXP_OK || !p->var.has_grad) continue;
        const size_t n = (size_t)mxp_tensor_numel(p->grad);
        mxp_numerics_clear(s);
        st = mxp_numerics_add(s, p->grad->data, p->grad->dtype, n, unscale);
        if (st == MXP_OK) st = report(acc, "grad", p->name, s);
        if (st != MXP_OK || acc->scaler.scale == 1.0f) continue;
        mxp_numerics_clear(s);
        st = mxp_numerics_add(s, p->grad->data, p->grad->dtype, n, 1.0f);
        if (st == MXP_OK) st = report(acc, "grad_scaled", p->name, s);
    }
    /* activations grouped by the model's profile label ("attn.c_attn" for every gpt block),
     * else by op and its occurrence in the step ("linear.1", "linear.2", ...: one per layer) */
    char labels[MAX_LABELS][48];
    const char *ops[MAX_LABELS]; /* op kinds seen without a label, and how often */
    int op_count[MAX_LABELS], nl = 0, nops = 0;
    for (int i = 0; st == MXP_OK && i < mxp_graph_n_nodes(acc->graph); i++) {
        const mxp_node *node = mxp_graph_node(acc->graph, i);
        /* not the loss: a scalar kept in fp32 in every mode, whose gradient is the seed */
        if (mxp_tensor_numel(node->out->value) == 1) continue;
        char label[48];
        if (node->prof && node->prof != node->op) {
            snprintf(label, sizeof label, "%s", node->prof);
        } else {
            int o = 0;
            while (o < nops && strcmp(ops[o], node->op) != 0) o++;
            if (o == nops) {
                if (nops == MAX_LABELS) continue;
                ops[nops] = node->op;
                op_count[nops++] = 0;
            }
            snprintf(label, sizeof label, "%s.%d", node->op, ++op_count[o]);
        }
        int k = 0;
        while (k < nl && strcmp(labels[k], label) != 0) k++;
        if (k == nl) {
            if (nl == MAX_LABELS) continue; /* more groups than a report holds: the rest */
            snprintf(labels[nl++], sizeof labels[0], "%s", label);
            mxp_numerics_clear(&acts[2 * k]);
            mxp_numerics_clear(&acts[2 * k + 1]);
        }
        const mxp_tensor *v = node->out->value, *gr = node->out->grad;
        st = mxp_numerics_add(&acts[2 * k], v->data, v->dtype, (size_t)mxp_tensor_numel(v), 1.0f);
        if (st == MXP_OK && node->out->has_grad && gr)
            st = mxp_numerics_add(&acts[2 * k + 1], gr->data, gr->dtype,
                                  (size_t)mxp_tensor_numel(gr), unscale);
    }
    for (int k = 0; st == MXP_OK && k < nl; k++) {
        st = report(acc, "activation", labels[k], &acts[2 * k]);
        if (st == MXP_OK && acts[2 * k + 1].n)
            st = report(acc, "activation_grad", labels[k], &acts[2 * k + 1]);
    }
    mxp_free(s);
    mxp_free(acts);
    return st;
}

/* The fp32 weights before the update (NULL when the model has none), for lost_updates. */
static mxp_status snapshot_weights(const mxp_model_t *m, float **out) {
    *out = NULL;
    size_t total = 0;
    for (int i = 0; i < m->n_params; i++)
        if (fp32_weights(m->params[i])) total += (size_t)mxp_tensor_numel(m->params[i]->work);
    if (!total) return MXP_OK;
    float *b = mxp_alloc_array(total, sizeof *b);
    if (!b) return MXP_FAIL(MXP_ERR_NOMEM, "numerics: a copy of the weights");
    size_t at = 0;
    for (int i = 0; i < m->n_params; i++) {
        const mxp_tensor *w = fp32_weights(m->params[i]);
        if (!w) continue;
        memcpy(b + at, w->data, (size_t)mxp_tensor_numel(w) * sizeof *b);
        at += (size_t)mxp_tensor_numel(w);
    }
    *out = b;
    return MXP_OK;
}

/* Of the nonzero updates from old to the current fp32 weights, the shares that storing the
 * weights in fp16 and in bf16 would lose: round(new) == round(old), rounded by the bulk
 * conversions a chunk at a time. */
static mxp_status lost_updates(const mxp_model_t *m, const float *old, double *f16, double *bf16) {
    enum { CHUNK = 2048 };
    uint16_t a16[CHUNK], b16[CHUNK], abf[CHUNK], bbf[CHUNK];
    uint64_t updated = 0, lost16 = 0, lostbf = 0;
    size_t at = 0;
    for (int i = 0; i < m->n_params; i++) {
        const mxp_tensor *w = fp32_weights(m->params[i]);
        if (!w) continue;
        const float *now = w->data;
        const size_t n = (size_t)mxp_tensor_numel(w);
        for (size_t j = 0; j < n; j += CHUNK) {
            const size_t k = n - j < CHUNK ? n - j : CHUNK;
            const float *o = old + at + j, *c = now + j;
            MXP_TRY(mxp_convert(a16, MXP_DTYPE_F16, o, MXP_DTYPE_F32, k));
            MXP_TRY(mxp_convert(b16, MXP_DTYPE_F16, c, MXP_DTYPE_F32, k));
            MXP_TRY(mxp_convert(abf, MXP_DTYPE_BF16, o, MXP_DTYPE_F32, k));
            MXP_TRY(mxp_convert(bbf, MXP_DTYPE_BF16, c, MXP_DTYPE_F32, k));
            for (size_t e = 0; e < k; e++) {
                const int moved = o[e] != c[e];
                updated += moved;
                lost16 += moved & (a16[e] == b16[e]);
                lostbf += moved & (abf[e] == bbf[e]);
            }
        }
        at += n;
    }
    *f16 = updated ? (double)lost16 / (double)updated : 0.0;
    *bf16 = updated ? (double)lostbf / (double)updated : 0.0;
    return MXP_OK;
}

mxp_status mxp_accelerator_step(mxp_accelerator_t *acc, mxp_step_result *res) {
    mxp_step_result r;
    memset(&r, 0, sizeof r);
    if (!acc || !acc->model) return MXP_FAIL(MXP_ERR_INVALID_ARG, "step before prepare");
    if (acc->micro < acc->grad_accum) {
        if (res) *res = r;
        return MXP_OK;
    }
    if (!acc->norm_done) MXP_TRY(measure(acc));
    r.stepped = 1;
    r.grad_norm = acc->norm;
    r.loss_scale = acc->scaler.scale;
    r.loss = acc->loss_n ? acc->loss_sum / (double)acc->loss_n : NAN;
    r.comm_bytes = acc->comm_bytes;
    r.comm_s = acc->comm_s;
    const float grad_mul = acc->clip_coef / acc->scaler.scale;
    const int stats = acc->stats_every > 0 && acc->cycles % acc->stats_every == 0;
    if (stats && !acc->found_inf) MXP_TRY(zero_grad_fraction(acc->model, &r.zero_grad_frac));
    /* numerics on every stats step, and on every step that overflows (what a diverging fp16
     * run needs looked at), before anything changes */
    const int numerics = acc->numerics && acc->numerics_fn && (stats || acc->found_inf);
    float *old = NULL;
    r.lost_fp16_frac = r.lost_bf16_frac = -1.0;
    if (numerics) {
        const double t = mxp_graph_clock();
        MXP_TRY(report_numerics(acc));
        if (!acc->found_inf) MXP_TRY(snapshot_weights(acc->model, &old));
        r.numerics_s += mxp_graph_clock() - t;
    }
    if (acc->found_inf && !acc->scaler.cfg.enabled)
        return MXP_FAIL(MXP_ERR_NONFINITE,
                        "step %lld: a gradient is not finite in %s mode, where no loss scaler can "
                        "absorb it: the run has diverged",
                        (long long)acc->cycles + 1,
                        acc->prec == MXP_PREC_NO ? "fp32" : mxp_precision_name(acc->prec));
    r.skipped = mxp_scaler_update(&acc->scaler, acc->found_inf);
    if (acc->scaler.collapsed)
        return MXP_FAIL(MXP_ERR_NONFINITE,
                        "step %lld: the gradients overflow with the loss scale already at its "
                        "minimum %g (%lld steps skipped): the run has diverged, scaling cannot "
                        "save it",
                        (long long)acc->cycles + 1, (double)acc->scaler.scale,
                        (long long)acc->scaler.skipped);
    if (!r.skipped) {
        r.lr = acc->have_schedule ? mxp_schedule_lr(&acc->sched, acc->applied)
                                  : mxp_optimizer_config(acc->opt)->lr;
        mxp_update_stats us = {0, 0};
        const mxp_status st = mxp_optimizer_step(acc->opt, r.lr, grad_mul, stats ? &us : NULL);
        if (st == MXP_OK && old) {
            const double t = mxp_graph_clock();
            const mxp_status sl =
                lost_updates(acc->model, old, &r.lost_fp16_frac, &r.lost_bf16_frac);
            if (sl != MXP_OK) {
                mxp_free(old);
                return sl;
            }
            r.numerics_s += mxp_graph_clock() - t;
        }
        mxp_free(old);
        old = NULL;
        MXP_TRY(st);
        if (stats) {
            r.have_stats = 1;
            r.lost_update_frac = us.updated ? (double)us.lost / (double)us.updated : 0.0;
        }
        acc->applied++;
    }
    acc->cycles++;
    mxp_model_zero_grad(acc->model);
    acc->micro = 0;
    acc->norm_done = 0;
    acc->found_inf = 0;
    acc->clip_coef = 1.0f;
    acc->loss_sum = 0.0;
    acc->loss_n = 0;
    acc->reduced = 0;
    acc->comm_bytes = 0;
    acc->comm_s = 0.0;
    if (res) *res = r;
    return MXP_OK;
}

void mxp_accelerator_get_state(const mxp_accelerator_t *acc, mxp_accel_state *s) {
    memset(s, 0, sizeof *s);
    s->steps = acc->cycles;
    s->applied = acc->applied;
    s->micro_batches = acc->micro_total;
    s->scaler = acc->scaler;
}

mxp_status mxp_accelerator_set_state(mxp_accelerator_t *acc, const mxp_accel_state *s) {
    if (!acc || !s) return MXP_FAIL(MXP_ERR_INVALID_ARG, "set_state: NULL argument");
    if (!acc->model) return MXP_FAIL(MXP_ERR_INVALID_ARG, "set_state before prepare");
    if (acc->micro != 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "set_state in the middle of a gradient accumulation cycle");
    const mxp_scaler *sc = &s->scaler;
    if (s->steps < 0 || s->applied < 0 || s->applied > s->steps || s->micro_batches < 0 ||
        sc->growth_tracker < 0 || sc->hysteresis_left < 0 || sc->skipped < 0 || sc->overflows < 0 ||
        sc->skipped > s->steps)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "training state: inconsistent counters (steps %lld, applied %lld, "
                        "micro-batches %lld, skipped %lld)",
                        (long long)s->steps, (long long)s->applied, (long long)s->micro_batches,
                        (long long)sc->skipped);
    if (!(sc->scale > 0.0f) || !isfinite(sc->scale))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "training state: loss scale %g is not a positive number",
                        (double)sc->scale);
    MXP_TRY(mxp_optimizer_set_steps(acc->opt, s->applied));
    acc->cycles = s->steps;
    acc->applied = s->applied;
    acc->micro_total = s->micro_batches;
    const mxp_scaler_config cfg = acc->scaler.cfg; /* this run's settings stay */
    acc->scaler = *sc;
    acc->scaler.cfg = cfg;
    acc->scaler.collapsed = 0;
    if (!cfg.enabled) {
        acc->scaler.scale = 1.0f; /* a mode without scaling: the scale is 1 */
    } else if (!cfg.dynamic) {
        acc->scaler.scale = cfg.init_scale;
    } else { /* this run's bounds hold from its first step */
        if (acc->scaler.scale < cfg.min_scale) acc->scaler.scale = cfg.min_scale;
        if (cfg.max_scale > 0.0f && acc->scaler.scale > cfg.max_scale)
            acc->scaler.scale = cfg.max_scale;
        if (acc->scaler.hysteresis_left > cfg.hysteresis)
            acc->scaler.hysteresis_left = cfg.hysteresis;
    }
    return MXP_OK;
}

mxp_precision mxp_accelerator_precision(const mxp_accelerator_t *acc) { return acc->prec; }
const mxp_scaler *mxp_accelerator_scaler(const mxp_accelerator_t *acc) { return &acc->scaler; }
int mxp_accelerator_master_weights(const mxp_accelerator_t *acc) { return acc->master_weights; }
int mxp_accelerator_grad_accum(const mxp_accelerator_t *acc) { return acc->grad_accum; }
int64_t mxp_accelerator_applied_steps(const mxp_accelerator_t *acc) { return acc->applied; }
int mxp_accelerator_process_index(const mxp_accelerator_t *acc) { return acc->rank; }
int mxp_accelerator_num_processes(const mxp_accelerator_t *acc) { return acc->world; }
int mxp_accelerator_is_main_process(const mxp_accelerator_t *acc) { return acc->rank == 0; }

void mxp_accelerator_memory(const mxp_accelerator_t *acc, mxp_memory_report *r) {
    memset(r, 0, sizeof *r);
    if (acc->model) mxp_model_bytes(acc->model, &r->master_weights, &r->weights, &r->grads);
    r->optimizer = mxp_optimizer_state_bytes(acc->opt);
    r->activations = mxp_arena_peak(mxp_graph_arena(acc->graph));
    r->workspace = mxp_arena_peak(mxp_graph_scratch(acc->graph));
}

size_t mxp_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}

/* One evaluation batch of ld through model on g (reset here): *logits (rows, V) and *y (rows),
 * rows = the samples (images) or the samples times T (tokens); *rows 0 at the end. */
static mxp_status eval_batch(mxp_model_t *model, mxp_graph_t *g, mxp_loader_t *ld, mxp_var **logits,
                             const int32_t **y, int64_t *rows) {
    const mxp_dataset_t *ds = mxp_loader_dataset(ld);
    const int64_t cap = mxp_loader_batch_size(ld);
    const int tokens = ds->kind == MXP_DATASET_TOKENS;
    const size_t per = tokens ? (size_t)ds->block : 1; /* labels per sample */
    mxp_graph_reset(g);
    *rows = 0;
    int32_t *lab = mxp_arena_alloc(mxp_graph_arena(g), (size_t)cap * per * sizeof *lab);
    if (!lab) return MXP_FAIL(MXP_ERR_NOMEM, "evaluation batch");
    int64_t b = 0;
    if (tokens) {
        int32_t *x = mxp_arena_alloc(mxp_graph_arena(g), (size_t)cap * per * sizeof *x);
        if (!x) return MXP_FAIL(MXP_ERR_NOMEM, "evaluation batch");
        MXP_TRY(mxp_loader_next_tokens(ld, x, lab, &b));
        if (b > 0) MXP_TRY(mxp_model_forward_tokens(model, g, x, b, ds->block, logits));
    } else {
        mxp_tensor *xt;
        MXP_TRY(mxp_tensor_arena(mxp_graph_arena(g), &xt, model->work, 4,
                                 (int64_t[]){cap, ds->H, ds->W, ds->C}));
        MXP_TRY(mxp_loader_next(ld, xt->data, model->work, lab, &b));
        xt->shape[0] = b;
        mxp_var *x = b > 0 ? mxp_graph_input(g, xt) : NULL;
        if (b > 0 && !x) return MXP_FAIL(MXP_ERR_NOMEM, "graph arena");
        if (b > 0) MXP_TRY(mxp_model_forward(model, g, x, logits));
    }
    *y = lab;
    *rows = b * (int64_t)per;
    return MXP_OK;
}

mxp_status mxp_evaluate(mxp_model_t *model, const mxp_dataset_t *ds, int64_t batch, double *loss,
                        double *accuracy) {
    return mxp_evaluate_limit(model, ds, batch, 0, loss, accuracy);
}

mxp_status mxp_evaluate_limit(mxp_model_t *model, const mxp_dataset_t *ds, int64_t batch,
                              int64_t max_batches, double *loss, double *accuracy) {
    if (!model || !ds || batch < 1 || !loss || !accuracy)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "evaluate: bad arguments");
    if ((ds->kind == MXP_DATASET_TOKENS) != (model->gpt != NULL))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "evaluate: a %s model cannot be evaluated on %s data",
                        model->name, ds->kind == MXP_DATASET_TOKENS ? "token" : "image");
    mxp_graph_t *g;
    MXP_TRY(mxp_graph_create(&g, model->work));
    mxp_graph_set_training(g, 0);
    mxp_loader_t *ld = NULL;
    mxp_status st = mxp_loader_create(&ld, ds, batch < ds->n ? batch : ds->n, 0, 0, 0);
    const int64_t V = model->n_classes;
    float *row = mxp_alloc_array((size_t)V, sizeof *row); /* (V) one row of logits in fp32 */
    if (st == MXP_OK && !row) st = MXP_FAIL(MXP_ERR_NOMEM, "evaluation row");
    double total = 0.0;
    int64_t correct = 0, seen = 0, batches = 0;
    while (st == MXP_OK && (max_batches <= 0 || batches++ < max_batches)) {
        mxp_var *logits = NULL, *l = NULL;
        const int32_t *y = NULL;
        int64_t rows = 0;
        st = eval_batch(model, g, ld, &logits, &y, &rows);
        if (st != MXP_OK || rows == 0) break;
        st = mxp_op_cross_entropy(g, &l, logits, y);
        if (st != MXP_OK) break;
        total += (double)*(float *)l->value->data * (double)rows;
        const size_t es = mxp_dtype_size(logits->value->dtype);
        for (int64_t i = 0; i < rows; i++) { /* the prediction: the row's largest logit */
            mxp_convert(row, MXP_DTYPE_F32,
                        (const char *)logits->value->data + (size_t)(i * V) * es,
                        logits->value->dtype, (size_t)V);
            int64_t best = 0;
            for (int64_t j = 1; j < V; j++)
                if (row[j] > row[best]) best = j;
            correct += best == y[i];
        }
        seen += rows;
    }
    mxp_free(row);
    mxp_loader_free(ld);
    mxp_graph_free(g);
    if (st != MXP_OK) return st;
    *loss = seen ? total / (double)seen : NAN;
    *accuracy = seen ? (double)correct / (double)seen : NAN;
    return MXP_OK;
}
