/*
 * trainer.c - the Trainer-style job: arguments (flags and YAML share one
 * setter), data and model set-up, the epoch loop on the accelerator,
 * evaluation, JSON-lines metrics and the end summary. It prints nothing: the
 * CLI renders progress from the callback.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd_impl.h"
#include "base/base_impl.h"
#include "mixprec/train.h"

void mxp_trainer_args_default(mxp_trainer_args *a) {
    memset(a, 0, sizeof *a);
    snprintf(a->model, sizeof a->model, "cnn");
    snprintf(a->data, sizeof a->data, "fashion-mnist");
    snprintf(a->mixed_precision, sizeof a->mixed_precision, "bf16");
    a->master_weights = -1;
    snprintf(a->optimizer, sizeof a->optimizer, "adamw");
    a->weight_decay = -1.0f;
    a->momentum = -1.0f;
    snprintf(a->schedule, sizeof a->schedule, "cosine");
    a->warmup_steps = 100;
    a->batch_size = 128;
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
    if (!*v || *end || errno || !isfinite(x) || x < 0.0 || (!allow_zero && x == 0.0) || x > 3.0e38)
        return bad(key, v, allow_zero ? "a number >= 0" : "a positive number");
    *out = (float)x;
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
    if (IS("momentum")) {
        MXP_TRY(parse_f32(key, v, 1, &a->momentum));
        return a->momentum < 1.0f ? MXP_OK : bad(key, v, "in [0, 1)");
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
    if (IS("log-every") || IS("logging-steps")) return parse_i64(key, v, 1, &a->log_every);
    if (IS("stats-every")) {
        MXP_TRY(parse_i64(key, v, 0, &i64));
        a->stats_every = i64 > 1000000000 ? 1000000000 : (int)i64;
        return MXP_OK;
    }
    if (IS("dropout")) {
        MXP_TRY(parse_f32(key, v, 1, &a->dropout));
        return a->dropout < 1.0f ? MXP_OK : bad(key, v, "in [0, 1)");
    }
    if (IS("hidden")) return parse_i64(key, v, 1, &a->hidden);
    if (IS("profile")) return parse_bool(key, v, &a->profile);
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
} run;

static void emit(run *r, mxp_train_event *ev) {
    if (r->cb) r->cb(ev, r->user);
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
    if (res->have_stats) {
        mxp_json_num(&o, "zero_grad_frac", res->zero_grad_frac);
        mxp_json_num(&o, "lost_update_frac", res->lost_update_frac);
    }
    mxp_status st = mxp_jsonl_write(r->log, &o);
    mxp_json_free(&o);
    return st;
}

static mxp_status do_eval(run *r, int64_t step, int64_t epoch) {
    double loss, acc;
    MXP_TRY(mxp_evaluate(r->model, r->test_ds, 256, &loss, &acc));
    r->sum.test_loss = loss;
    r->sum.test_accuracy = acc;
    if (r->log) {
        mxp_json o;
        mxp_json_begin(&o);
        mxp_json_str(&o, "event", "eval");
        mxp_json_int(&o, "step", step);
        mxp_json_int(&o, "epoch", epoch);
        mxp_json_str(&o, "split", "test");
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

static mxp_status log_summary(run *r) {
    if (!r->log) return MXP_OK;
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
    mxp_json_num(&o, "test_loss", s->test_loss);
    mxp_json_num(&o, "test_accuracy", s->test_accuracy);
    mxp_json_num(&o, "wall_s", s->wall_s);
    mxp_json_num(&o, "samples_per_s", s->samples_per_s);
    mxp_json_int(&o, "peak_rss_bytes", (int64_t)s->peak_rss_bytes);
    mxp_json_num(&o, "final_loss_scale", s->final_loss_scale);
    if (s->zero_grad_frac >= 0.0) mxp_json_num(&o, "zero_grad_frac", s->zero_grad_frac);
    if (s->lost_update_frac >= 0.0) mxp_json_num(&o, "lost_update_frac", s->lost_update_frac);
    mxp_json_int(&o, "params", s->params);
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

static mxp_status setup(run *r) {
    const mxp_trainer_args *a = r->a;
    char dir[4096];
    MXP_TRY(mxp_dataset_dir(dir, sizeof dir, a->data));
    MXP_TRY(mxp_dataset_load_idx(&r->train_ds, dir, "train"));
    MXP_TRY(mxp_dataset_load_idx(&r->test_ds, dir, "test"));
    MXP_TRY(mxp_dataset_set_norm(r->test_ds, r->train_ds->mean, r->train_ds->std));
    if (a->batch_size > r->train_ds->n)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "batch size %lld is larger than the %lld training samples",
                        (long long)a->batch_size, (long long)r->train_ds->n);

    mxp_model_config mc;
    MXP_TRY(mxp_model_config_default(&mc, a->model));
    mc.H = r->train_ds->H;
    mc.W = r->train_ds->W;
    mc.C = r->train_ds->C;
    mc.seed = a->seed;
    if (a->dropout >= 0.0f) mc.dropout = a->dropout;
    if (a->hidden > 0) mc.hidden1 = a->hidden;
    int max_label = 0;
    for (int64_t i = 0; i < r->train_ds->n; i++)
        if (r->train_ds->labels[i] > max_label) max_label = r->train_ds->labels[i];
    mc.n_classes = max_label + 1 > 2 ? max_label + 1 : 2;
    MXP_TRY(mxp_model_create(&r->model, &mc));

    mxp_optim_config oc;
    mxp_optim_kind kind;
    MXP_TRY(mxp_optim_parse(a->optimizer, &kind));
    MXP_TRY(mxp_optim_config_default(&oc, kind));
    if (a->lr > 0.0f) oc.lr = a->lr;
    if (a->weight_decay >= 0.0f) oc.weight_decay = a->weight_decay;
    if (a->momentum >= 0.0f) oc.momentum = a->momentum;
    oc.nesterov = a->nesterov;
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
    MXP_TRY(mxp_accelerator_create(&r->acc, &ao));
    MXP_TRY(mxp_loader_create(&r->train, r->train_ds, a->batch_size, 1, a->seed, 0));
    MXP_TRY(mxp_accelerator_prepare(r->acc, r->model, r->opt, r->train, NULL));

    const int64_t per_epoch =
        (mxp_loader_batches_per_epoch(r->train) + mxp_accelerator_grad_accum(r->acc) - 1) /
        mxp_accelerator_grad_accum(r->acc);
    int64_t total = per_epoch * a->epochs;
    if (a->max_steps > 0 && a->max_steps < total) total = a->max_steps;
    r->sum.total_steps = total;
    mxp_schedule sc = {.base_lr = oc.lr, .warmup_steps = a->warmup_steps, .total_steps = total};
    MXP_TRY(mxp_schedule_parse(a->schedule, &sc.kind));
    mxp_accelerator_set_schedule(r->acc, &sc);
    if (a->log[0]) MXP_TRY(mxp_jsonl_open(&r->log, a->log, 0));
    return MXP_OK;
}

static mxp_status train_loop(run *r) {
    const mxp_trainer_args *a = r->a;
    mxp_accelerator_t *acc = r->acc;
    mxp_graph_t *g = mxp_accelerator_graph(acc);
    const int fp16_scaled = mxp_accelerator_scaler(acc)->cfg.enabled;
    int64_t step = 0;
    double cycle_loss = 0.0;
    int cycle_n = 0;
    const double t_start = mxp_graph_clock();
    double t_eval = 0.0;
    for (int64_t epoch = 0; epoch < a->epochs && step < r->sum.total_steps; epoch++) {
        MXP_TRY(mxp_loader_start_epoch(r->train, epoch, 0));
        for (;;) {
            mxp_var *x, *logits, *loss;
            const int32_t *y;
            int64_t b;
            MXP_TRY(mxp_accelerator_next_batch(acc, r->train, &x, &y, &b));
            if (b == 0) break;
            MXP_TRY(mxp_model_forward(r->model, g, x, &logits));
            MXP_TRY(mxp_op_cross_entropy(g, &loss, logits, y));
            const double lv = *(const float *)loss->value->data;
            MXP_TRY(mxp_accelerator_backward(acc, loss));
            cycle_loss += lv;
            cycle_n++;
            r->samples += b;
            if (!mxp_accelerator_sync_gradients(acc)) continue;
            MXP_TRY(mxp_accelerator_clip_grad_norm(acc, a->grad_clip, NULL));
            mxp_step_result res;
            MXP_TRY(mxp_accelerator_step(acc, &res));
            step++;
            const double mean_loss = cycle_loss / cycle_n;
            cycle_loss = 0.0;
            cycle_n = 0;
            if (res.skipped && !fp16_scaled)
                return MXP_FAIL(MXP_ERR_NONFINITE,
                                "step %lld: the loss (%g) or a gradient is not finite in %s mode, "
                                "where no loss scaler can absorb it; lower --lr or set --grad-clip",
                                (long long)step, mean_loss,
                                mxp_precision_name(mxp_accelerator_precision(acc)));
            if (res.have_stats) {
                r->zero_sum += res.zero_grad_frac;
                r->lost_sum += res.lost_update_frac;
                r->stats_n++;
            }
            r->sum.final_loss = mean_loss;
            const double el = mxp_graph_clock() - t_start - t_eval;
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
            if (step >= r->sum.total_steps) break;
        }
        const double te = mxp_graph_clock();
        MXP_TRY(do_eval(r, step, epoch));
        if (a->save[0])
            MXP_TRY(mxp_checkpoint_save(a->save, r->model, r->train_ds->mean, r->train_ds->std,
                                        mxp_precision_name(mxp_accelerator_precision(acc))));
        t_eval += mxp_graph_clock() - te;
        r->sum.epochs = epoch + 1;
    }
    r->sum.steps = step;
    r->train_s = mxp_graph_clock() - t_start - t_eval;
    return MXP_OK;
}

mxp_status mxp_trainer_run(const mxp_trainer_args *a, mxp_train_callback cb, void *user,
                           mxp_train_summary *summary) {
    if (!a) return MXP_FAIL(MXP_ERR_INVALID_ARG, "args is NULL");
    run r;
    memset(&r, 0, sizeof r);
    r.a = a;
    r.cb = cb;
    r.user = user;
    r.t0 = mxp_graph_clock();
    r.sum.zero_grad_frac = r.sum.lost_update_frac = -1.0;
    mxp_status st = setup(&r);
    if (st == MXP_OK) {
        mxp_train_summary *s = &r.sum;
        snprintf(s->mixed_precision, sizeof s->mixed_precision, "%s",
                 mxp_precision_name(mxp_accelerator_precision(r.acc)));
        s->master_weights = mxp_accelerator_master_weights(r.acc);
        s->params = mxp_model_numel(r.model);
        mxp_model_describe(r.model, s->model_desc, sizeof s->model_desc);
        mxp_train_event ev = {
            .kind = MXP_TRAIN_EVENT_START, .total_steps = s->total_steps, .summary = s};
        emit(&r, &ev);
        st = train_loop(&r);
    }
    if (r.acc) {
        mxp_train_summary *s = &r.sum;
        s->skipped_steps = mxp_accelerator_scaler(r.acc)->skipped;
        s->final_loss_scale = mxp_accelerator_scaler(r.acc)->scale;
        s->wall_s = mxp_graph_clock() - r.t0;
        s->samples_per_s = r.train_s > 0 ? (double)r.samples / r.train_s : 0.0;
        s->peak_rss_bytes = mxp_peak_rss_bytes();
        mxp_accelerator_memory(r.acc, &s->memory);
        if (r.stats_n) {
            s->zero_grad_frac = r.zero_sum / (double)r.stats_n;
            s->lost_update_frac = r.lost_sum / (double)r.stats_n;
        }
        if (a->profile) mxp_graph_profile(mxp_accelerator_graph(r.acc), collect_profile, s);
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
    return st;
}
