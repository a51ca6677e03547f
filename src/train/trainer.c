/*
 * trainer.c - the Trainer-style job: arguments (flags and YAML share one
 * setter), data and model set-up, the epoch loop on the accelerator,
 * evaluation, JSON-lines metrics and the end summary. It prints nothing: the
 * CLI renders progress from the callback.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/autograd_impl.h"
#include "base/base_impl.h"
#include "mixprec/dist.h"
#include "mixprec/train.h"

void mxp_trainer_args_default(mxp_trainer_args *a) {
    memset(a, 0, sizeof *a);
    snprintf(a->model, sizeof a->model, "cnn");
    a->master_weights = -1;
    snprintf(a->optimizer, sizeof a->optimizer, "adamw");
    a->weight_decay = -1.0f;
    a->momentum = -1.0f;
    snprintf(a->schedule, sizeof a->schedule, "cosine");
    a->warmup_steps = 100;
    a->epochs = 5;
    a->grad_clip = 1.0f;
    a->seed = 42;
    a->log_every = 1;
    a->stats_every = 50;
    a->dropout = -1.0f;
}

/* ---- parsing one argument --------------------------------------------------- */

static mxp_status bad(const char *key, const char *value, const char *what) {
    return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: '%s' is not %s", key, value, what);
}

static mxp_status parse_i64(const char *key, const char *v, int64_t lo, int64_t *out) {
    char *end;
    errno = 0;
    const long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo)
        return bad(key, v, lo > 0 ? "a positive integer" : "an integer >= 0");
    *out = x;
    return MXP_OK;
}

static mxp_status parse_f32(const char *key, const char *v, int allow_zero, float *out) {
    char *end;
    errno = 0;
    const double x = strtod(v, &end);
    /* the range is checked on the float that is stored (and that a checkpoint's config.json
     * prints back with %.9g), so a value accepted once is accepted again: 3e38 rounds up to
     * 3.00000001e38, 1e-50 down to 0. 3.4e38 < FLT_MAX keeps the conversion defined. */
    if (!*v || *end || errno || !isfinite(x) || x < 0.0 || x > 3.4e38)
        return bad(key, v, allow_zero ? "a number >= 0" : "a positive number");
    const float f = (float)x;
    if (f > 3.0e38f || (!allow_zero && f == 0.0f))
        return bad(key, v, allow_zero ? "a number >= 0" : "a positive number");
    *out = f;
    return MXP_OK;
}

static mxp_status parse_bool(const char *key, const char *v, int *out) {
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes") || !strcmp(v, "on") ||
        !strcmp(v, "1"))
        *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no") || !strcmp(v, "off") ||
             !strcmp(v, "0"))
        *out = 0;
    else
        return bad(key, v, "true or false");
    return MXP_OK;
}

static mxp_status copy_str(const char *key, const char *v, char *dst, size_t size) {
    if (strlen(v) >= size) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: value is too long", key);
    memcpy(dst, v, strlen(v) + 1);
    return MXP_OK;
}

mxp_status mxp_trainer_args_set(mxp_trainer_args *a, const char *key_in, const char *v) {
    if (!a || !key_in || !v) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL argument");
    char key[64];
    size_t n = strlen(key_in);
    if (n >= sizeof key) return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown argument '%s'", key_in);
    for (size_t i = 0; i <= n; i++) key[i] = key_in[i] == '_' ? '-' : key_in[i];
#define IS(name) (strcmp(key, name) == 0)
    int64_t i64;
    int flag;
    if (IS("model")) {
        mxp_model_config c;
        MXP_TRY(mxp_model_config_default(&c, v));
        return copy_str(key, v, a->model, sizeof a->model);
    }
    if (IS("data")) return copy_str(key, v, a->data, sizeof a->data);
    if (IS("mixed-precision")) {
        mxp_precision p;
        MXP_TRY(mxp_precision_parse(v, &p));
        return copy_str(key, mxp_precision_name(p), a->mixed_precision, sizeof a->mixed_precision);
    }
    if (IS("bf16") || IS("fp16")) { /* Trainer-style: `bf16: true` */
        MXP_TRY(parse_bool(key, v, &flag));
        if (flag) return copy_str(key, key, a->mixed_precision, sizeof a->mixed_precision);
        if (!strcmp(a->mixed_precision, key))
            snprintf(a->mixed_precision, sizeof a->mixed_precision, "no");
        return MXP_OK;
    }
    if (IS("master-weights")) {
        MXP_TRY(parse_bool(key, v, &flag));
        a->master_weights = flag;
        return MXP_OK;
    }
    if (IS("loss-scale")) {
        float s;
        if (strcmp(v, "dynamic") != 0 && parse_f32(key, v, 0, &s) != MXP_OK)
            return bad(key, v, "'dynamic' or a positive number");
        return copy_str(key, v, a->loss_scale, sizeof a->loss_scale);
    }
    if (IS("hysteresis")) {
        MXP_TRY(parse_i64(key, v, 1, &i64));
        a->hysteresis = i64 > 1000000 ? 1000000 : (int)i64;
        return MXP_OK;
    }
    if (IS("growth-interval")) return parse_i64(key, v, 1, &a->growth_interval);
    if (IS("init-loss-scale")) return parse_f32(key, v, 0, &a->init_scale);
    if (IS("min-loss-scale")) return parse_f32(key, v, 1, &a->min_scale);
    if (IS("max-loss-scale")) return parse_f32(key, v, 1, &a->max_scale);
    if (IS("optimizer") || IS("optim")) {
        const char *name = !strncmp(v, "adamw", 5) ? "adamw" : v; /* HF's adamw_torch */
        mxp_optim_kind k;
        MXP_TRY(mxp_optim_parse(name, &k));
        return copy_str(key, name, a->optimizer, sizeof a->optimizer);
    }
    if (IS("lr") || IS("learning-rate")) return parse_f32(key, v, 0, &a->lr);
    if (IS("weight-decay")) return parse_f32(key, v, 1, &a->weight_decay);
    if (IS("momentum")) { /* a refused value leaves the argument as it was */
        float m;
        MXP_TRY(parse_f32(key, v, 1, &m));
        if (!(m < 1.0f)) return bad(key, v, "in [0, 1)");
        a->momentum = m;
        return MXP_OK;
    }
    if (IS("nesterov")) return parse_bool(key, v, &a->nesterov);
    if (IS("schedule") || IS("lr-scheduler-type")) {
        mxp_sched_kind k;
        MXP_TRY(mxp_schedule_parse(v, &k));
        return copy_str(key, v, a->schedule, sizeof a->schedule);
    }
    if (IS("warmup-steps")) return parse_i64(key, v, 0, &a->warmup_steps);
    if (IS("batch-size") || IS("per-device-train-batch-size"))
        return parse_i64(key, v, 1, &a->batch_size);
    if (IS("epochs") || IS("num-train-epochs")) return parse_i64(key, v, 1, &a->epochs);
    if (IS("max-steps")) {
        if (!strcmp(v, "-1")) { /* HF: no limit */
            a->max_steps = 0;
            return MXP_OK;
        }
        return parse_i64(key, v, 0, &a->max_steps);
    }
    if (IS("grad-clip") || IS("max-grad-norm")) return parse_f32(key, v, 1, &a->grad_clip);
    if (IS("grad-accum") || IS("gradient-accumulation-steps")) {
        MXP_TRY(parse_i64(key, v, 1, &i64));
        if (i64 > 65536) return bad(key, v, "at most 65536");
        a->grad_accum = (int)i64;
        return MXP_OK;
    }
    if (IS("seed")) {
        MXP_TRY(parse_i64(key, v, 0, &i64));
        a->seed = (uint64_t)i64;
        return MXP_OK;
    }
    if (IS("threads")) {
        MXP_TRY(parse_i64(key, v, 1, &i64));
        if (i64 > 1024) return bad(key, v, "at most 1024");
        a->threads = (int)i64;
        return MXP_OK;
    }
    if (IS("log")) return copy_str(key, v, a->log, sizeof a->log);
    if (IS("save") || IS("output-dir")) return copy_str(key, v, a->save, sizeof a->save);
    if (IS("save-every") || IS("save-steps")) return parse_i64(key, v, 0, &a->save_every);
    if (IS("keep-last") || IS("save-total-limit")) {
        MXP_TRY(parse_i64(key, v, 0, &i64));
        a->keep_last = i64 > 1000000 ? 1000000 : (int)i64;
        return MXP_OK;
    }
    if (IS("resume") || IS("resume-from-checkpoint"))
        return copy_str(key, v, a->resume, sizeof a->resume);
    if (IS("log-every") || IS("logging-steps")) return parse_i64(key, v, 1, &a->log_every);
    if (IS("stats-every")) {
        MXP_TRY(parse_i64(key, v, 0, &i64));
        a->stats_every = i64 > 1000000000 ? 1000000000 : (int)i64;
        return MXP_OK;
    }
    if (IS("dropout")) {
        float p;
        MXP_TRY(parse_f32(key, v, 1, &p));
        if (!(p < 1.0f)) return bad(key, v, "in [0, 1)");
        a->dropout = p;
        return MXP_OK;
    }
    if (IS("hidden")) return parse_i64(key, v, 1, &a->hidden);
    if (IS("n-layer")) return parse_i64(key, v, 1, &a->n_layer);
    if (IS("n-head")) return parse_i64(key, v, 1, &a->n_head);
    if (IS("n-embd")) return parse_i64(key, v, 1, &a->n_embd);
    if (IS("block-size")) return parse_i64(key, v, 1, &a->block_size);
    if (IS("val-split")) {
        float f;
        MXP_TRY(parse_f32(key, v, 1, &f));
        if (f > 0.5f) return bad(key, v, "in [0, 0.5]");
        a->val_split = f;
        return MXP_OK;
    }
    if (IS("eval-every") || IS("eval-steps")) return parse_i64(key, v, 0, &a->eval_every);
    if (IS("eval-batches")) return parse_i64(key, v, 0, &a->eval_batches);
    if (IS("profile")) return parse_bool(key, v, &a->profile);
    if (IS("numerics-stats")) return parse_bool(key, v, &a->numerics_stats);
    if (IS("stochastic-rounding")) return parse_bool(key, v, &a->stochastic_rounding);
#undef IS
    return MXP_FAIL(MXP_ERR_INVALID_ARG,
                    "unknown argument '%s' (see `mixprec train --help` for the names)", key_in);
}

mxp_status mxp_trainer_args_load(mxp_trainer_args *a, const char *path) {
    mxp_kvlist kv;
    MXP_TRY(mxp_yaml_read_flat(&kv, path));
    mxp_status st = MXP_OK;
    for (int i = 0; i < kv.n && st == MXP_OK; i++) {
        st = mxp_trainer_args_set(a, kv.items[i].key, kv.items[i].value);
        if (st != MXP_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", mxp_last_error());
            const char *colon = strstr(msg, ": "); /* drop the file:line of the setter */
            st = MXP_FAIL(st, "%s:%d: %s", path, kv.items[i].line, colon ? colon + 2 : msg);
        }
    }
    mxp_kvlist_free(&kv);
    return st;
}

typedef void (*each_fn)(const char *key, const char *value, void *user);

static void put_i64(each_fn fn, void *u, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    fn(key, buf, u);
}

static void put_f32(each_fn fn, void *u, const char *key, float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)v); /* reads back to the same float */
    fn(key, buf, u);
}

void mxp_trainer_args_each(const mxp_trainer_args *a, each_fn fn, void *u) {
    fn("model", a->model, u);
    if (a->data[0]) fn("data", a->data, u);
    if (a->mixed_precision[0]) fn("mixed-precision", a->mixed_precision, u);
    if (a->master_weights >= 0) fn("master-weights", a->master_weights ? "true" : "false", u);
    if (a->loss_scale[0]) fn("loss-scale", a->loss_scale, u);
    if (a->hysteresis > 0) put_i64(fn, u, "hysteresis", a->hysteresis);
    if (a->growth_interval > 0) put_i64(fn, u, "growth-interval", a->growth_interval);
    if (a->init_scale > 0.0f) put_f32(fn, u, "init-loss-scale", a->init_scale);
    if (a->min_scale > 0.0f) put_f32(fn, u, "min-loss-scale", a->min_scale);
    if (a->max_scale > 0.0f) put_f32(fn, u, "max-loss-scale", a->max_scale);
    fn("optimizer", a->optimizer, u);
    if (a->lr > 0.0f) put_f32(fn, u, "lr", a->lr);
    if (a->weight_decay >= 0.0f) put_f32(fn, u, "weight-decay", a->weight_decay);
    if (a->momentum >= 0.0f) put_f32(fn, u, "momentum", a->momentum);
    fn("nesterov", a->nesterov ? "true" : "false", u);
    fn("schedule", a->schedule, u);
    put_i64(fn, u, "warmup-steps", a->warmup_steps);
    if (a->batch_size > 0) put_i64(fn, u, "batch-size", a->batch_size);
    put_i64(fn, u, "epochs", a->epochs);
    put_i64(fn, u, "max-steps", a->max_steps);
    put_f32(fn, u, "grad-clip", a->grad_clip);
    if (a->grad_accum > 0) put_i64(fn, u, "grad-accum", a->grad_accum);
    put_i64(fn, u, "seed", (int64_t)a->seed);
    if (a->threads > 0) put_i64(fn, u, "threads", a->threads);
    if (a->log[0]) fn("log", a->log, u);
    if (a->save[0]) fn("save", a->save, u);
    put_i64(fn, u, "save-every", a->save_every);
    put_i64(fn, u, "keep-last", a->keep_last);
    put_i64(fn, u, "log-every", a->log_every);
    put_i64(fn, u, "stats-every", a->stats_every);
    if (a->dropout >= 0.0f) put_f32(fn, u, "dropout", a->dropout);
    if (a->hidden > 0) put_i64(fn, u, "hidden", a->hidden);
    fn("profile", a->profile ? "true" : "false", u);
    if (a->numerics_stats) fn("numerics-stats", "true", u);
    if (a->stochastic_rounding) fn("stochastic-rounding", "true", u);
    if (a->n_layer > 0) put_i64(fn, u, "n-layer", a->n_layer);
    if (a->n_head > 0) put_i64(fn, u, "n-head", a->n_head);
    if (a->n_embd > 0) put_i64(fn, u, "n-embd", a->n_embd);
    if (a->block_size > 0) put_i64(fn, u, "block-size", a->block_size);
    if (a->val_split > 0.0f) put_f32(fn, u, "val-split", a->val_split);
    if (a->eval_every > 0) put_i64(fn, u, "eval-every", a->eval_every);
    if (a->eval_batches > 0) put_i64(fn, u, "eval-batches", a->eval_batches);
}

/* ---- the run ------------------------------------------------------------------ */

typedef struct run {
    const mxp_trainer_args *a;
    mxp_dataset_t *train_ds, *test_ds;
    mxp_model_t *model;
    mxp_optimizer_t *opt;
    mxp_loader_t *train;
    mxp_accelerator_t *acc;
    mxp_jsonl_t *log;
    mxp_train_summary sum;
    mxp_train_callback cb;
    void *user;
    double t0, train_s;
    int64_t samples;
    double zero_sum, lost_sum;
    int64_t stats_n;
    mxp_checkpoint_meta *resumed; /* the checkpoint resumed from, or NULL */
    int gpt;                      /* a language model on token windows */
    int64_t tokens_per_sample;    /* gpt: the block T (a sample is a window); else 1 */
    int64_t eval_step;            /* the step last evaluated (-1: none), so an epoch ending
                                     on an --eval-every step is not evaluated twice */
    char resume_dir[4096];
    char last_saved[4096]; /* the newest checkpoint this run wrote or resumed, "" if none */
    int64_t saved_step;    /* its step (-1: none) */
    int rank, world;       /* the data-parallel job (0 of 1 alone): rank 0 logs, evaluates,
                              reports and saves; every rank trains */
    /* numerics statistics (a->numerics_stats): merged over the run for the advisor */
    mxp_numerics *grads_all, *acts_all; /* unscaled gradients (weights' and activations'),
                                           forward activations */
    double lost16_sum, lostbf_sum;
    int64_t lost_n, numerics_steps, numerics_last_step;
    mxp_status numerics_err; /* a failed log write inside the callback */
} run;

static void emit(run *r, mxp_train_event *ev) {
    if (r->cb && r->rank == 0) r->cb(ev, r->user);
}

static mxp_status log_step(run *r, int64_t step, int64_t epoch, double loss,
                           const mxp_step_result *res, double sps) {
    if (!r->log) return MXP_OK;
    mxp_json o;
    mxp_json_begin(&o);
    mxp_json_str(&o, "event", "step");
    mxp_json_int(&o, "step", step);
    mxp_json_int(&o, "epoch", epoch);
    mxp_json_num(&o, "loss", loss);
    mxp_json_num(&o, "lr", res->lr);
    mxp_json_num(&o, "loss_scale", res->loss_scale);
    mxp_json_bool(&o, "skipped", res->skipped);
    mxp_json_num(&o, "grad_norm", res->grad_norm);
    mxp_json_num(&o, "samples_per_s", sps);
    if (r->gpt) mxp_json_num(&o, "tokens_per_s", sps * (double)r->tokens_per_sample);
    if (res->have_stats) {
        mxp_json_num(&o, "zero_grad_frac", res->zero_grad_frac);
        mxp_json_num(&o, "lost_update_frac", res->lost_update_frac);
    }
    if (res->lost_fp16_frac >= 0.0) { /* the shares fp16 and bf16 weights would lose */
        mxp_json_num(&o, "lost_update_frac_fp16", res->lost_fp16_frac);
        mxp_json_num(&o, "lost_update_frac_bf16", res->lost_bf16_frac);
    }
    if (r->world > 1) {
        mxp_json_int(&o, "comm_bytes", (int64_t)res->comm_bytes);
        mxp_json_num(&o, "comm_s", res->comm_s);
    }
    mxp_status st = mxp_jsonl_write(r->log, &o);
    mxp_json_free(&o);
    return st;
}

/* One measured tensor: a "numerics" line in the log (rank 0), and the run's totals. */
static void on_numerics(const mxp_numerics_record *rec, void *user) {
    run *r = user;
    const mxp_numerics *s = rec->s;
    if (rec->step != r->numerics_last_step) {
        r->numerics_last_step = rec->step;
        r->numerics_steps++;
    }
    if (!strcmp(rec->kind, "grad") || !strcmp(rec->kind, "activation_grad"))
        mxp_numerics_merge(r->grads_all, s);
    else if (!strcmp(rec->kind, "activation"))
        mxp_numerics_merge(r->acts_all, s);
    if (!r->log || r->numerics_err != MXP_OK) return;
    int lo = 0, hi = -1; /* the nonempty bins */
    for (int i = 0; i < MXP_LOG2_BINS; i++)
        if (s->log2[i]) {
            if (hi < 0) lo = i;
            hi = i;
        }
    const double n = s->n ? (double)s->n : 1.0;
    mxp_json o;
    mxp_json_begin(&o);
    mxp_json_str(&o, "event", "numerics");
    mxp_json_int(&o, "step", rec->step);
    mxp_json_str(&o, "kind", rec->kind);
    mxp_json_str(&o, "name", rec->name);
    mxp_json_int(&o, "n", (int64_t)s->n);
    mxp_json_int(&o, "zero", (int64_t)s->zero);
    mxp_json_int(&o, "nonfinite", (int64_t)s->nonfinite);
    mxp_json_int(&o, "log2_lo", hi < 0 ? 0 : MXP_LOG2_MIN + lo);
    mxp_json_uint_array(&o, "log2_counts", s->log2 + lo, hi < 0 ? 0 : (size_t)(hi - lo + 1));
    const mxp_range_stats *fs[2] = {&s->fp16, &s->bf16};
    for (int k = 0; k < 2; k++) {
        mxp_json_object_begin(&o, k ? "bf16" : "fp16");
        mxp_json_num(&o, "overflow", (double)fs[k]->overflow / n);
        mxp_json_num(&o, "subnormal", (double)fs[k]->subnormal / n);
        mxp_json_num(&o, "underflow", (double)fs[k]->flush / n);
        mxp_json_object_end(&o);
    }
    mxp_json_num(&o, "max_abs", s->max_abs);
    mxp_json_num(&o, "min_abs", s->min_abs);
    r->numerics_err = mxp_jsonl_write(r->log, &o);
    mxp_json_free(&o);
}

static mxp_status do_eval(run *r, int64_t step, int64_t epoch) {
    if (step == r->eval_step) return MXP_OK;
    r->eval_step = step;
    if (r->rank != 0) return MXP_OK; /* rank 0 evaluates the whole split alone */
    double loss, acc;
    MXP_TRY(mxp_evaluate_limit(r->model, r->test_ds, r->gpt ? r->a->batch_size : 256,
                               r->a->eval_batches, &loss, &acc));
    r->sum.test_loss = loss;
    r->sum.test_accuracy = acc;
    if (r->log) {
        mxp_json o;
        mxp_json_begin(&o);
        mxp_json_str(&o, "event", "eval");
        mxp_json_int(&o, "step", step);
        mxp_json_int(&o, "epoch", epoch);
        mxp_json_str(&o, "split", r->gpt ? "val" : "test");
        mxp_json_num(&o, "loss", loss);
        mxp_json_num(&o, "accuracy", acc);
        mxp_status st = mxp_jsonl_write(r->log, &o);
        mxp_json_free(&o);
        MXP_TRY(st);
    }
    mxp_train_event ev = {.kind = MXP_TRAIN_EVENT_EVAL,
                          .step = step,
                          .epoch = epoch,
                          .total_steps = r->sum.total_steps,
                          .loss = loss,
                          .accuracy = acc,
                          .elapsed_s = mxp_graph_clock() - r->t0};
    emit(r, &ev);
    return MXP_OK;
}

/* The advisor's numbers and text as an "advice" line. */
static mxp_status log_advice(run *r) {
    const mxp_train_summary *s = &r->sum;
    if (!r->log || !s->have_advice) return MXP_OK;
    const mxp_numerics_advice *v = &s->advice;
    mxp_json o;
    mxp_json_begin(&o);
    mxp_json_str(&o, "event", "advice");
    mxp_json_str(&o, "mixed_precision", s->mixed_precision);
    mxp_json_int(&o, "stats_steps", r->numerics_steps);
    mxp_json_num(&o, "grad_flush_fp16", v->grad_flush_fp16);
    mxp_json_num(&o, "grad_subnormal_fp16", v->grad_subnormal_fp16);
    mxp_json_num(&o, "grad_max", v->grad_max);
    mxp_json_num(&o, "grad_low", v->grad_low);
    mxp_json_num(&o, "act_max", v->act_max);
    mxp_json_num(&o, "loss_scale_min", v->scale_min);
    mxp_json_num(&o, "loss_scale_max", v->scale_max);
    mxp_json_bool(&o, "fp16_ok", v->fp16_ok);
    if (v->lost_bf16 >= 0) {
        mxp_json_num(&o, "lost_update_frac_fp16", v->lost_fp16);
        mxp_json_num(&o, "lost_update_frac_bf16", v->lost_bf16);
    }
    mxp_json_str(&o, "text", s->advice_text);
    mxp_status st = mxp_jsonl_write(r->log, &o);
    mxp_json_free(&o);
    return st;
}

static mxp_status log_summary(run *r) {
    if (!r->log) return MXP_OK;
    MXP_TRY(log_advice(r));
    const mxp_train_summary *s = &r->sum;
    mxp_json o;
    mxp_json_begin(&o);
    mxp_json_str(&o, "event", "summary");
    mxp_json_str(&o, "model", r->a->model);
    mxp_json_str(&o, "mixed_precision", s->mixed_precision);
    mxp_json_bool(&o, "master_weights", s->master_weights);
    mxp_json_int(&o, "steps", s->steps);
    mxp_json_int(&o, "skipped_steps", s->skipped_steps);
    mxp_json_num(&o, "final_loss", s->final_loss);
    mxp_json_num(&o, r->gpt ? "val_loss" : "test_loss", s->test_loss);
    mxp_json_num(&o, r->gpt ? "val_accuracy" : "test_accuracy", s->test_accuracy);
    mxp_json_num(&o, "wall_s", s->wall_s);
    mxp_json_num(&o, "samples_per_s", s->samples_per_s);
    if (r->gpt) mxp_json_num(&o, "tokens_per_s", s->tokens_per_s);
    mxp_json_int(&o, "peak_rss_bytes", (int64_t)s->peak_rss_bytes);
    mxp_json_num(&o, "final_loss_scale", s->final_loss_scale);
    if (s->zero_grad_frac >= 0.0) mxp_json_num(&o, "zero_grad_frac", s->zero_grad_frac);
    if (s->lost_update_frac >= 0.0) mxp_json_num(&o, "lost_update_frac", s->lost_update_frac);
    mxp_json_int(&o, "params", s->params);
    mxp_json_int(&o, "processes", s->processes);
    if (r->a->numerics_stats) { /* what the measuring cost */
        mxp_json_num(&o, "numerics_s", s->numerics_s);
        mxp_json_num(&o, "numerics_share", r->train_s > 0 ? s->numerics_s / r->train_s : 0.0);
    }
    if (s->processes > 1) {
        mxp_json_int(&o, "comm_bytes_per_step", (int64_t)s->comm_bytes_per_step);
        mxp_json_num(&o, "comm_s", s->comm_s);
    }
    mxp_json_object_begin(&o, "memory_bytes");
    mxp_json_int(&o, "weights", (int64_t)s->memory.weights);
    mxp_json_int(&o, "master_weights", (int64_t)s->memory.master_weights);
    mxp_json_int(&o, "grads", (int64_t)s->memory.grads);
    mxp_json_int(&o, "optimizer", (int64_t)s->memory.optimizer);
    mxp_json_int(&o, "activations", (int64_t)s->memory.activations);
    mxp_json_int(&o, "workspace", (int64_t)s->memory.workspace);
    mxp_json_object_end(&o);
    mxp_status st = mxp_jsonl_write(r->log, &o);
    mxp_json_free(&o);
    for (int i = 0; st == MXP_OK && i < s->n_profile; i++) {
        mxp_json_begin(&o);
        mxp_json_str(&o, "event", "profile");
        mxp_json_str(&o, "op", s->profile[i].op);
        mxp_json_num(&o, "forward_s", s->profile[i].fwd_s);
        mxp_json_num(&o, "backward_s", s->profile[i].bwd_s);
        mxp_json_int(&o, "calls", s->profile[i].calls);
        st = mxp_jsonl_write(r->log, &o);
        mxp_json_free(&o);
    }
    return st;
}

static void collect_profile(const char *op, double f, double b, int64_t calls, void *user) {
    mxp_train_summary *s = user;
    if (s->n_profile == 16) return;
    snprintf(s->profile[s->n_profile].op, sizeof s->profile[0].op, "%s", op);
    s->profile[s->n_profile].fwd_s = f;
    s->profile[s->n_profile].bwd_s = b;
    s->profile[s->n_profile].calls = calls;
    s->n_profile++;
}

/* A resumed run must build the model and read the data exactly as the saved run did. */
static mxp_status check_resume(run *r, const mxp_model_config *want) {
    const mxp_trainer_args *a = r->a;
    const mxp_checkpoint_meta *cm = r->resumed;
    const mxp_model_config *got = &r->model->config;
    if (!cm->have_state)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "--resume %s: the checkpoint has no training state (an inference-only "
                        "checkpoint); it can be evaluated or exported, not resumed",
                        r->resume_dir);
    if (!strcmp(got->name, "gpt") && !strcmp(want->name, "gpt") &&
        (got->n_layer != want->n_layer || got->n_head != want->n_head ||
         got->n_embd != want->n_embd || got->block_size != want->block_size ||
         got->vocab_size != want->vocab_size))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "--resume %s: the checkpoint holds a gpt of %lld layers, %lld heads, %lld "
                        "wide, block %lld, vocab %lld; this run builds %lld, %lld, %lld, %lld, "
                        "%lld; resume with the same --n-layer, --n-head, --n-embd, --block-size "
                        "and data",
                        r->resume_dir, (long long)got->n_layer, (long long)got->n_head,
                        (long long)got->n_embd, (long long)got->block_size,
                        (long long)got->vocab_size, (long long)want->n_layer,
                        (long long)want->n_head, (long long)want->n_embd,
                        (long long)want->block_size, (long long)want->vocab_size);
    if (strcmp(got->name, want->name) != 0 || got->H != want->H || got->W != want->W ||
        got->C != want->C || got->n_classes != want->n_classes || got->hidden1 != want->hidden1 ||
        got->hidden2 != want->hidden2 || got->channels1 != want->channels1 ||
        got->channels2 != want->channels2 || got->dropout != want->dropout)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "--resume %s: the checkpoint holds a %s for %lldx%lldx%lld inputs and %d "
                        "classes (hidden %lld, dropout %g), this run builds a %s for "
                        "%lldx%lldx%lld and %d classes (hidden %lld, dropout %g); resume with "
                        "the same --model, --hidden, --dropout and data",
                        r->resume_dir, got->name, (long long)got->H, (long long)got->W,
                        (long long)got->C, got->n_classes, (long long)got->hidden1,
                        (double)got->dropout, want->name, (long long)want->H, (long long)want->W,
                        (long long)want->C, want->n_classes, (long long)want->hidden1,
                        (double)want->dropout);
    if (cm->have_args) {
        const mxp_trainer_args *b = &cm->args;
        const char *what = strcmp(b->optimizer, a->optimizer) ? "optimizer"
                           : b->batch_size != a->batch_size   ? "batch-size"
                           : b->seed != a->seed               ? "seed"
                                                              : NULL;
        if (what)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "--resume %s: the checkpoint was trained with --optimizer %s "
                            "--batch-size %lld --seed %llu, this run has %s %lld %llu; resume "
                            "with the same --%s (the data order and the state depend on it)",
                            r->resume_dir, b->optimizer, (long long)b->batch_size,
                            (unsigned long long)b->seed, a->optimizer, (long long)a->batch_size,
                            (unsigned long long)a->seed, what);
    }
    if (r->gpt && cm->have_args) { /* the split sets the training windows and their order */
        mxp_text_options d;        /* 0 stands for the loader's default split */
        mxp_text_options_default(&d);
        const float was = cm->args.val_split > 0.0f ? cm->args.val_split : (float)d.val_frac;
        const float now = a->val_split > 0.0f ? a->val_split : (float)d.val_frac;
        if (was != now)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "--resume %s: the checkpoint was trained with --val-split %g, this "
                            "run has %g; resume with the same (the training windows and their "
                            "order depend on it)",
                            r->resume_dir, (double)was, (double)now);
    }
    if (cm->processes != r->world)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "--resume %s: the checkpoint was trained on %d process%s, this run has "
                        "%d; resume with mixprec launch --num-processes %d (the global batch and "
                        "the data order depend on it)",
                        r->resume_dir, cm->processes, cm->processes > 1 ? "es" : "", r->world,
                        cm->processes);
    if (cm->state.position > r->train_ds->n)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "--resume %s: the checkpoint stopped at sample %lld of an epoch, but "
                        "this data has %lld training samples; resume on the same data",
                        r->resume_dir, (long long)cm->state.position, (long long)r->train_ds->n);
    return MXP_OK;
}

/* A resumed run saves into the output directory it came from, or into one without
 * checkpoints. In its own directory no checkpoint may lie beyond the resumed step: that
 * would be an abandoned continuation, which --keep-last would keep instead of this run's
 * saves and which a later --resume would take. */
static mxp_status check_resume_save(run *r) {
    const char *save = r->a->save;
    char from_parent[4096], here[PATH_MAX], there[PATH_MAX], newest[4096];
    snprintf(from_parent, sizeof from_parent, "%s", r->resume_dir);
    char *slash = strrchr(from_parent, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(from_parent, sizeof from_parent, ".");
    if (mxp_checkpoint_find(save, newest, sizeof newest) != MXP_OK) return MXP_OK; /* empty */
    const int same = realpath(save, here) && realpath(from_parent, there) && !strcmp(here, there);
    if (!same)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "--save %s already holds checkpoints of another run (the newest is %s); "
                        "save the resumed run in %s or in a new directory",
                        save, newest, from_parent);
    const char *tail = strrchr(newest, '/');
    const long long step = tail ? strtoll(tail + 1 + 11, NULL, 10) : 0;
    if (step > r->resumed->state.accel.steps)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "--resume %s goes back to step %lld, but %s already holds %s of a later "
                        "step: save this branch in a new directory (--save), or remove the later "
                        "checkpoints",
                        r->resume_dir, (long long)r->resumed->state.accel.steps, save, newest);
    return MXP_OK;
}

static mxp_status setup(run *r) {
    const mxp_trainer_args *a = r->a;
    char dir[4096];
    MXP_TRY(mxp_dist_init()); /* a job of several processes: which rank this is */
    r->rank = mxp_dist_rank();
    r->world = mxp_dist_world();
    /* a fresh run must not mix its checkpoints with an earlier run's: --resume would later
     * take whichever step number is highest */
    if (a->save[0] && !r->resumed && mxp_checkpoint_find(a->save, dir, sizeof dir) == MXP_OK)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "--save %s already holds checkpoints of a run (the newest is %s): "
                        "continue it with --resume %s, or save this run elsewhere",
                        a->save, dir, a->save);
    mxp_model_config mc;
    MXP_TRY(mxp_model_config_default(&mc, a->model));
    /* a resumed gpt reads its text with the checkpoint's vocabulary: the ids must not move */
    if (r->resumed) MXP_TRY(mxp_checkpoint_load(r->resume_dir, &r->model, r->resumed));
    if (r->gpt) {
        if (a->n_layer > 0) mc.n_layer = a->n_layer;
        if (a->n_head > 0) mc.n_head = a->n_head;
        if (a->n_embd > 0) mc.n_embd = a->n_embd;
        if (a->block_size > 0) mc.block_size = a->block_size;
        mxp_text_options to;
        mxp_text_options_default(&to);
        to.block = mc.block_size;
        if (a->val_split > 0.0f) to.val_frac = a->val_split;
        if (r->resumed && r->resumed->n_chars > 0) {
            to.chars = r->resumed->chars;
            to.n_chars = r->resumed->n_chars;
        }
        if (!strcmp(a->data, "fashion-mnist"))
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "--data fashion-mnist is images, for the mlp and cnn models; a gpt "
                            "trains on text: --data fortunes (the default), a text file or "
                            "directory, or llm.c .bin shards");
        MXP_TRY(mxp_text_load(&r->train_ds, &r->test_ds, a->data, &to));
        mc.vocab_size = r->train_ds->vocab_size;
        mc.n_classes = (int)mc.vocab_size;
        r->tokens_per_sample = mc.block_size;
    } else {
        MXP_TRY(mxp_dataset_dir(dir, sizeof dir, a->data));
        MXP_TRY(mxp_dataset_load_idx(&r->train_ds, dir, "train"));
        MXP_TRY(mxp_dataset_load_idx(&r->test_ds, dir, "test"));
        MXP_TRY(mxp_dataset_set_norm(r->test_ds, r->train_ds->mean, r->train_ds->std));
        mc.H = r->train_ds->H;
        mc.W = r->train_ds->W;
        mc.C = r->train_ds->C;
        if (a->dropout >= 0.0f) mc.dropout = a->dropout;
        if (a->hidden > 0) mc.hidden1 = a->hidden;
        int max_label = 0;
        for (int64_t i = 0; i < r->train_ds->n; i++)
            if (r->train_ds->labels[i] > max_label) max_label = r->train_ds->labels[i];
        mc.n_classes = max_label + 1 > 2 ? max_label + 1 : 2;
        r->tokens_per_sample = 1;
    }
    mc.seed = a->seed;
    if (a->batch_size > r->train_ds->n)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "batch size %lld is larger than the %lld training %s",
                        (long long)a->batch_size, (long long)r->train_ds->n,
                        r->gpt ? "windows of --block-size tokens" : "samples");
    if (r->resumed) {
        MXP_TRY(check_resume(r, &mc));
        if (a->save[0]) MXP_TRY(check_resume_save(r));
    } else {
        MXP_TRY(mxp_model_create(&r->model, &mc));
    }

    mxp_optim_config oc;
    mxp_optim_kind kind;
    MXP_TRY(mxp_optim_parse(a->optimizer, &kind));
    MXP_TRY(mxp_optim_config_default(&oc, kind));
    if (a->lr > 0.0f) oc.lr = a->lr;
    if (a->weight_decay >= 0.0f) oc.weight_decay = a->weight_decay;
    if (a->momentum >= 0.0f) oc.momentum = a->momentum;
    oc.nesterov = a->nesterov;
    oc.stochastic_rounding = a->stochastic_rounding;
    oc.sr_seed = a->seed;
    MXP_TRY(mxp_optimizer_create(&r->opt, &oc));

    mxp_accelerator_options ao;
    mxp_accelerator_options_init(&ao);
    ao.mixed_precision = a->mixed_precision[0] ? a->mixed_precision : NULL;
    ao.master_weights = a->master_weights;
    ao.loss_scale = a->loss_scale[0] ? a->loss_scale : NULL;
    ao.hysteresis = a->hysteresis;
    ao.growth_interval = a->growth_interval;
    ao.init_scale = a->init_scale;
    ao.min_scale = a->min_scale;
    ao.max_scale = a->max_scale;
    ao.grad_accum = a->grad_accum;
    ao.num_threads = a->threads;
    ao.seed = a->seed;
    ao.stats_every = a->stats_every;
    ao.profile = a->profile;
    ao.numerics_stats = a->numerics_stats;
    MXP_TRY(mxp_accelerator_create(&r->acc, &ao));
    if (a->numerics_stats) {
        r->grads_all = mxp_alloc(sizeof *r->grads_all);
        r->acts_all = mxp_alloc(sizeof *r->acts_all);
        if (!r->grads_all || !r->acts_all) return MXP_FAIL(MXP_ERR_NOMEM, "numerics statistics");
        mxp_numerics_clear(r->grads_all);
        mxp_numerics_clear(r->acts_all);
        mxp_accelerator_set_numerics(r->acc, on_numerics, r);
    }
    MXP_TRY(mxp_loader_create(&r->train, r->train_ds, a->batch_size, 1, a->seed, 0));
    MXP_TRY(mxp_accelerator_prepare(r->acc, r->model, r->opt, r->train, NULL));
    if (r->resumed) {
        const mxp_checkpoint_meta *cm = r->resumed;
        const char *prec = mxp_precision_name(mxp_accelerator_precision(r->acc));
        if (strcmp(cm->mixed_precision, prec) != 0 ||
            cm->master_weights != mxp_accelerator_master_weights(r->acc))
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "--resume %s: the checkpoint was trained with --mixed-precision %s "
                            "--master-weights %s, this run has %s %s; resume with the same "
                            "(an exact resume needs them)",
                            r->resume_dir, cm->mixed_precision, cm->master_weights ? "on" : "off",
                            prec, mxp_accelerator_master_weights(r->acc) ? "on" : "off");
        const int accum = mxp_accelerator_grad_accum(r->acc);
        if (cm->have_args && cm->args.grad_accum > 0 && cm->args.grad_accum != accum)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "--resume %s: the checkpoint was trained with --grad-accum %d, this "
                            "run has %d; resume with the same",
                            r->resume_dir, cm->args.grad_accum, accum);
        MXP_TRY(mxp_checkpoint_load_optimizer(r->resume_dir, r->opt));
        MXP_TRY(mxp_accelerator_set_state(r->acc, &cm->state.accel));
        snprintf(r->last_saved, sizeof r->last_saved, "%s", r->resume_dir);
        r->saved_step = cm->state.accel.steps;
    }

    const int64_t per_epoch =
        (mxp_loader_batches_per_epoch(r->train) + mxp_accelerator_grad_accum(r->acc) - 1) /
        mxp_accelerator_grad_accum(r->acc);
    int64_t total = per_epoch * a->epochs;
    if (a->max_steps > 0 && a->max_steps < total) total = a->max_steps;
    r->sum.total_steps = total;
    mxp_schedule sc = {.base_lr = oc.lr, .warmup_steps = a->warmup_steps, .total_steps = total};
    MXP_TRY(mxp_schedule_parse(a->schedule, &sc.kind));
    mxp_accelerator_set_schedule(r->acc, &sc);
    if (a->log[0] && r->rank == 0) MXP_TRY(mxp_jsonl_open(&r->log, a->log, r->resumed != NULL));
    if (r->log && r->resumed) {
        mxp_json o;
        mxp_json_begin(&o);
        mxp_json_str(&o, "event", "resume");
        mxp_json_int(&o, "step", r->resumed->state.accel.steps);
        mxp_json_int(&o, "epoch", r->resumed->state.epoch);
        mxp_json_int(&o, "position", r->resumed->state.position);
        mxp_json_num(&o, "loss_scale", r->resumed->state.accel.scaler.scale);
        mxp_json_str(&o, "checkpoint", r->resume_dir);
        mxp_status st = mxp_jsonl_write(r->log, &o);
        mxp_json_free(&o);
        MXP_TRY(st);
    }
    return MXP_OK;
}

/* mkdir -p path. Errors: MXP_ERR_IO naming the directory that could not be made. */
static mxp_status make_dirs(const char *path) {
    char buf[4096];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "output directory %s: path too long", path);
    for (char *p = buf + 1;; p++) {
        const char c = *p;
        if (c != '/' && c != '\0') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return MXP_FAIL(MXP_ERR_IO, "cannot create output directory %s: %s", buf,
                            strerror(errno));
        *p = c;
        if (!c) return MXP_OK;
    }
}

/* Save the state at a step boundary as <save>/checkpoint-<step> (epoch and position: where
 * the data order stands), then rotate. */
static mxp_status save_checkpoint(run *r, int64_t step, int64_t epoch, int64_t position) {
    const mxp_trainer_args *a = r->a;
    if (!a->save[0] || step == r->saved_step) return MXP_OK;
    /* rank 0 saves for the job; first every rank proves it holds the same weights, so the
     * checkpoint any of them resumes from is theirs */
    MXP_TRY(mxp_dist_check_params(r->model));
    if (r->rank != 0) {
        r->saved_step = step;
        return MXP_OK;
    }
    MXP_TRY(make_dirs(a->save));
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s/checkpoint-%lld", a->save, (long long)step) >=
        sizeof dir)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "output directory %s: path too long", a->save);
    mxp_checkpoint_meta *m = mxp_alloc(sizeof *m);
    if (!m) return MXP_FAIL(MXP_ERR_NOMEM, "checkpoint metadata");
    mxp_checkpoint_meta_init(m);
    snprintf(m->mixed_precision, sizeof m->mixed_precision, "%s",
             mxp_precision_name(mxp_accelerator_precision(r->acc)));
    m->master_weights = mxp_accelerator_master_weights(r->acc);
    m->processes = r->world;
    m->mean = r->gpt ? 0.0f : r->train_ds->mean; /* token ids are not normalised */
    m->std = r->gpt ? 1.0f : r->train_ds->std;
    m->n_chars = r->train_ds->n_chars;
    memcpy(m->chars, r->train_ds->chars, sizeof m->chars);
    m->have_args = 1;
    m->args = *a;
    m->args.resume[0] = '\0';
    m->args.grad_accum = mxp_accelerator_grad_accum(r->acc); /* as resolved (env included) */
    snprintf(m->args.mixed_precision, sizeof m->args.mixed_precision, "%s", m->mixed_precision);
    m->have_state = 1;
    mxp_accelerator_get_state(r->acc, &m->state.accel);
    m->state.epoch = epoch;
    m->state.position = position;
    mxp_status st = mxp_checkpoint_save(dir, r->model, r->opt, m);
    mxp_free(m);
    if (st != MXP_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", mxp_last_error_text());
        if (r->last_saved[0])
            return MXP_FAIL(st,
                            "%s; the previous checkpoint %s is intact (free space and "
                            "--resume from it)",
                            why, r->last_saved);
        return MXP_FAIL(st, "%s; no earlier checkpoint exists", why);
    }
    snprintf(r->last_saved, sizeof r->last_saved, "%s", dir);
    r->saved_step = step;
    return mxp_checkpoint_rotate(a->save, a->keep_last);
}

/* A diverged run's error, naming the newest checkpoint to resume from. */
static mxp_status diverged(run *r, mxp_status st) {
    if (st != MXP_ERR_NONFINITE) return st;
    char why[1024];
    snprintf(why, sizeof why, "%s", mxp_last_error_text());
    if (r->last_saved[0])
        return MXP_FAIL(st,
                        "%s; the newest checkpoint %s is intact (--resume from it, or from an "
                        "earlier one if it diverges again, with a lower --lr or --grad-clip)",
                        why, r->last_saved);
    return MXP_FAIL(st,
                    "%s; lower --lr or set --grad-clip (no checkpoint was saved: --save DIR "
                    "--save-every N keeps one)",
                    why);
}

/* The step state of the loop. */
typedef struct loop {
    int64_t step;
    int cycle_n; /* micro-batches backpropagated in the cycle */
    double t_start, t_eval;
} loop;

/* End the accumulation cycle: clip, step, log, report, save every save_every steps. */
static mxp_status finish_step(run *r, loop *L, int64_t epoch) {
    const mxp_trainer_args *a = r->a;
    mxp_accelerator_t *acc = r->acc;
    MXP_TRY(mxp_accelerator_clip_grad_norm(acc, a->grad_clip, NULL));
    mxp_step_result res;
    mxp_status st = mxp_accelerator_step(acc, &res);
    if (st != MXP_OK) return diverged(r, st);
    const int64_t step = ++L->step;
    const double mean_loss = res.loss; /* over the cycle's micro-batches and every rank */
    L->cycle_n = 0;
    r->sum.comm_bytes_per_step = res.comm_bytes;
    r->sum.comm_s += res.comm_s;
    MXP_TRY(r->numerics_err);
    r->sum.numerics_s += res.numerics_s;
    if (res.lost_fp16_frac >= 0.0) {
        r->lost16_sum += res.lost_fp16_frac;
        r->lostbf_sum += res.lost_bf16_frac;
        r->lost_n++;
    }
    if (res.have_stats) {
        r->zero_sum += res.zero_grad_frac;
        r->lost_sum += res.lost_update_frac;
        r->stats_n++;
    }
    r->sum.final_loss = mean_loss;
    const double el = mxp_graph_clock() - L->t_start - L->t_eval;
    const double sps = el > 0 ? (double)r->samples / el : 0.0;
    if (step % a->log_every == 0 || step == r->sum.total_steps)
        MXP_TRY(log_step(r, step, epoch, mean_loss, &res, sps));
    mxp_train_event ev = {.kind = MXP_TRAIN_EVENT_STEP,
                          .step = step,
                          .epoch = epoch,
                          .total_steps = r->sum.total_steps,
                          .loss = mean_loss,
                          .samples_per_s = sps,
                          .elapsed_s = el,
                          .res = res};
    emit(r, &ev);
    if (a->eval_every > 0 && step % a->eval_every == 0 && step < r->sum.total_steps) {
        const double ts = mxp_graph_clock();
        MXP_TRY(do_eval(r, step, epoch));
        L->t_eval += mxp_graph_clock() - ts;
    }
    if (a->save_every > 0 && step % a->save_every == 0) {
        const double ts = mxp_graph_clock();
        MXP_TRY(save_checkpoint(r, step, epoch, mxp_loader_position(r->train)));
        L->t_eval += mxp_graph_clock() - ts;
    }
    return MXP_OK;
}

static mxp_status train_loop(run *r) {
    const mxp_trainer_args *a = r->a;
    mxp_accelerator_t *acc = r->acc;
    mxp_graph_t *g = mxp_accelerator_graph(acc);
    const int fp16_scaled = mxp_accelerator_scaler(acc)->cfg.enabled;
    int64_t epoch0 = 0, pos0 = 0;
    loop L = {.t_start = mxp_graph_clock()};
    if (r->resumed) {
        L.step = r->resumed->state.accel.steps;
        epoch0 = r->resumed->state.epoch;
        pos0 = r->resumed->state.position;
    }
    const int64_t first = L.step;
    for (int64_t epoch = epoch0; epoch < a->epochs && L.step < r->sum.total_steps; epoch++) {
        MXP_TRY(mxp_loader_start_epoch(r->train, epoch, epoch == epoch0 ? pos0 : 0));
        int epoch_done = 0;
        while (L.step < r->sum.total_steps) {
            mxp_var *x = NULL, *logits, *loss;
            const int32_t *y, *tok = NULL;
            int64_t b, T = 0;
            if (r->gpt)
                MXP_TRY(mxp_accelerator_next_tokens(acc, r->train, &tok, &y, &b, &T));
            else
                MXP_TRY(mxp_accelerator_next_batch(acc, r->train, &x, &y, &b));
            if (b == 0) {
                epoch_done = 1;
                /* a cycle the epoch cut short is stepped as it is (as the HF Trainer does), so
                 * that a checkpoint at the epoch's end holds no pending gradient */
                if (L.cycle_n > 0) {
                    mxp_accelerator_end_cycle(acc);
                    MXP_TRY(finish_step(r, &L, epoch));
                }
                break;
            }
            if (r->gpt)
                MXP_TRY(mxp_model_forward_tokens(r->model, g, tok, b, T, &logits));
            else
                MXP_TRY(mxp_model_forward(r->model, g, x, &logits));
            MXP_TRY(mxp_op_cross_entropy(g, &loss, logits, y));
            const double lv = *(const float *)loss->value->data;
            if (!isfinite(lv) && !fp16_scaled)
                return diverged(
                    r, MXP_FAIL(MXP_ERR_NONFINITE,
                                "step %lld: the loss is %g in %s mode, where no loss "
                                "scaler can absorb it: the run has diverged",
                                (long long)L.step + 1, lv,
                                mxp_accelerator_precision(acc) == MXP_PREC_NO ? "fp32" : "bf16"));
            MXP_TRY(mxp_accelerator_backward(acc, loss));
            L.cycle_n++;
            r->samples += mxp_loader_global_count(r->train); /* every rank's share */
            if (mxp_accelerator_sync_gradients(acc)) MXP_TRY(finish_step(r, &L, epoch));
        }
        const double te = mxp_graph_clock();
        MXP_TRY(do_eval(r, L.step, epoch));
        /* the end of an epoch is saved as the start of the next one; a run cut short by
         * max_steps is saved where it stands */
        if (epoch_done &&
            (a->save_every == 0 || epoch + 1 == a->epochs || L.step >= r->sum.total_steps))
            MXP_TRY(save_checkpoint(r, L.step, epoch + 1, 0));
        else if (!epoch_done)
            MXP_TRY(save_checkpoint(r, L.step, epoch, mxp_loader_position(r->train)));
        L.t_eval += mxp_graph_clock() - te;
        r->sum.epochs = epoch + 1;
    }
    if (L.step == first && r->resumed) MXP_TRY(do_eval(r, L.step, epoch0)); /* nothing left */
    r->sum.steps = L.step;
    r->train_s = mxp_graph_clock() - L.t_start - L.t_eval;
    return MXP_OK;
}

mxp_status mxp_trainer_run(const mxp_trainer_args *a, mxp_train_callback cb, void *user,
                           mxp_train_summary *summary) {
    if (!a) return MXP_FAIL(MXP_ERR_INVALID_ARG, "args is NULL");
    run r;
    memset(&r, 0, sizeof r);
    /* the per-model defaults, resolved once: the checkpoints record what was used */
    mxp_trainer_args resolved = *a;
    r.gpt = strcmp(a->model, "gpt") == 0;
    /* the precision: the flag or argument file, else what mixprec launch set in the
     * environment (the accelerator reads it), else mixprec train's default */
    const char *env_mp = getenv("MIXPREC_MIXED_PRECISION");
    if (!resolved.mixed_precision[0] && !(env_mp && *env_mp))
        snprintf(resolved.mixed_precision, sizeof resolved.mixed_precision, "bf16");
    if (!resolved.data[0])
        snprintf(resolved.data, sizeof resolved.data, "%s", r.gpt ? "fortunes" : "fashion-mnist");
    if (resolved.batch_size <= 0) resolved.batch_size = r.gpt ? 8 : 128;
    a = &resolved;
    r.a = a;
    r.cb = cb;
    r.user = user;
    r.t0 = mxp_graph_clock();
    r.sum.zero_grad_frac = r.sum.lost_update_frac = -1.0;
    r.saved_step = -1;
    r.eval_step = -1;
    mxp_checkpoint_meta *resumed = NULL;
    mxp_status st = MXP_OK;
    if (a->resume[0]) {
        resumed = mxp_alloc(sizeof *resumed);
        if (!resumed) return MXP_FAIL(MXP_ERR_NOMEM, "checkpoint metadata");
        mxp_checkpoint_meta_init(resumed);
        r.resumed = resumed;
        st = mxp_checkpoint_find(a->resume, r.resume_dir, sizeof r.resume_dir);
    }
    if (st == MXP_OK) st = setup(&r);
    if (st == MXP_OK) {
        mxp_train_summary *s = &r.sum;
        snprintf(s->mixed_precision, sizeof s->mixed_precision, "%s",
                 mxp_precision_name(mxp_accelerator_precision(r.acc)));
        s->master_weights = mxp_accelerator_master_weights(r.acc);
        s->processes = r.world;
        s->params = mxp_model_numel(r.model);
        mxp_model_describe(r.model, s->model_desc, sizeof s->model_desc);
        if (r.resumed) {
            s->first_step = r.resumed->state.accel.steps;
            snprintf(s->checkpoint, sizeof s->checkpoint, "%.511s", r.resume_dir);
        }
        mxp_train_event ev = {
            .kind = MXP_TRAIN_EVENT_START, .total_steps = s->total_steps, .summary = s};
        emit(&r, &ev);
        st = train_loop(&r);
    }
    if (r.acc) {
        mxp_train_summary *s = &r.sum;
        s->skipped_steps = mxp_accelerator_scaler(r.acc)->skipped;
        s->final_loss_scale = mxp_accelerator_scaler(r.acc)->scale;
        if (r.last_saved[0]) snprintf(s->checkpoint, sizeof s->checkpoint, "%.511s", r.last_saved);
        s->wall_s = mxp_graph_clock() - r.t0;
        s->samples_per_s = r.train_s > 0 ? (double)r.samples / r.train_s : 0.0;
        if (r.gpt) s->tokens_per_s = s->samples_per_s * (double)r.tokens_per_sample;
        s->peak_rss_bytes = mxp_peak_rss_bytes();
        mxp_accelerator_memory(r.acc, &s->memory);
        if (r.stats_n) {
            s->zero_grad_frac = r.zero_sum / (double)r.stats_n;
            s->lost_update_frac = r.lost_sum / (double)r.stats_n;
        }
        if (a->profile) mxp_graph_profile(mxp_accelerator_graph(r.acc), collect_profile, s);
        if (r.numerics_steps > 0) {
            mxp_numerics_advise(r.grads_all, r.acts_all,
                                r.lost_n ? r.lost16_sum / (double)r.lost_n : -1.0,
                                r.lost_n ? r.lostbf_sum / (double)r.lost_n : -1.0, &s->advice);
            mxp_numerics_advice_text(&s->advice, s->advice_text, sizeof s->advice_text);
            s->have_advice = 1;
        }
        if (st == MXP_OK) {
            st = log_summary(&r);
            mxp_train_event ev = {.kind = MXP_TRAIN_EVENT_END,
                                  .step = s->steps,
                                  .total_steps = s->total_steps,
                                  .summary = s,
                                  .elapsed_s = s->wall_s};
            emit(&r, &ev);
        }
        if (summary) *summary = *s;
    }
    mxp_status cst = mxp_jsonl_close(r.log);
    if (st == MXP_OK) st = cst;
    mxp_accelerator_free(r.acc);
    mxp_loader_free(r.train);
    mxp_optimizer_free(r.opt);
    mxp_model_free(r.model);
    mxp_dataset_free(r.train_ds);
    mxp_dataset_free(r.test_ds);
    mxp_free(resumed);
    mxp_free(r.grads_all);
    mxp_free(r.acts_all);
    return st;
}
