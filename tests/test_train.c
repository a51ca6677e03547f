/*
 * test_train.c - the training engine end to end without data files: the loss
 * scaler against GradScaler's documented algorithm (scripted traces, with and
 * without hysteresis), a tiny MLP trained 10 steps against PyTorch in fp32,
 * bf16 and fp16 (tests/reference/ops_ref.bin), gradient accumulation,
 * skipped steps, master weights off, schedules, arguments and environment.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mixprec.h"

static fixture fx;

static const float *F(const char *name) {
    const float *p = fixture_f32(&fx, name, NULL);
    if (!p) {
        fprintf(stderr, "fixture record %s missing\n", name);
        exit(1);
    }
    return p;
}

/* ---- the loss scaler ------------------------------------------------------------- */

/* One step of a scripted trace: did the step overflow; expected skip; expected scale after it. */
typedef struct scaler_step {
    int inf, skip;
    float scale;
} scaler_step;

/* s initialised from c, then the n steps of trace through it, each step's skip and scale
 * checked (name says which trace) */
static void run_trace(mxp_scaler *s, const mxp_scaler_config *c, const char *name,
                      const scaler_step *trace, size_t n) {
    CHECK(mxp_scaler_init(s, c) == MXP_OK, "init");
    for (size_t i = 0; i < n; i++) {
        const int skip = mxp_scaler_update(s, trace[i].inf);
        CHECK(skip == trace[i].skip && s->scale == trace[i].scale,
              "%s step %zu: skip %d scale %g, expected %d %g", name, i, skip, (double)s->scale,
              trace[i].skip, (double)trace[i].scale);
    }
}

/* Worked by hand from torch.cuda.amp.GradScaler's documentation with
 * init_scale 8, growth_factor 2, backoff_factor 0.5, growth_interval 3. */
static void test_scaler_gradscaler(void) {
    static const scaler_step trace[] = {
        {0, 0, 8}, {0, 0, 8}, {0, 0, 16}, /* third clean step: x2, tracker reset */
        {1, 1, 8},                        /* overflow: skip, x0.5 */
        {0, 0, 8}, {0, 0, 8}, {1, 1, 4},  /* tracker reset by the overflow */
        {1, 1, 2},                        /* consecutive overflows halve each time */
        {0, 0, 2}, {0, 0, 2}, {0, 0, 4},  {0, 0, 4}, {0, 0, 4}, {0, 0, 8},
    };
    mxp_scaler_config c;
    mxp_scaler_config_default(&c);
    CHECK(c.init_scale == 65536.0f && c.growth_factor == 2.0f && c.backoff_factor == 0.5f &&
              c.growth_interval == 2000 && c.hysteresis == 1,
          "GradScaler defaults");
    c.init_scale = 8;
    c.growth_interval = 3;
    mxp_scaler s;
    run_trace(&s, &c, "gradscaler", trace, sizeof trace / sizeof trace[0]);
    CHECK(s.skipped == 3, "3 skipped steps counted, got %lld", (long long)s.skipped);
}

/* DeepSpeed-style hysteresis 2: the first overflow only skips; the second
 * backs off; growth refills the allowance. min_scale floors the backoff. */
static void test_scaler_hysteresis(void) {
    static const scaler_step trace[] = {
        {1, 1, 64},             /* tolerated: skip, scale kept */
        {1, 1, 32},             /* allowance spent: back off */
        {1, 1, 16},             /* still spent */
        {0, 0, 16}, {0, 0, 32}, /* growth after 2 clean steps refills the allowance */
        {1, 1, 32}, {0, 0, 32}, {1, 1, 16}, {1, 1, 8}, {1, 1, 8}, /* min_scale 8 */
    };
    mxp_scaler_config c;
    mxp_scaler_config_default(&c);
    c.init_scale = 64;
    c.growth_interval = 2;
    c.hysteresis = 2;
    c.min_scale = 8;
    mxp_scaler s;
    run_trace(&s, &c, "hysteresis", trace, sizeof trace / sizeof trace[0]);
    /* static: never changes, still skips an overflow */
    c.dynamic = 0;
    c.init_scale = 1024;
    mxp_scaler_init(&s, &c);
    CHECK(mxp_scaler_update(&s, 1) == 1 && s.scale == 1024, "static scale skips, keeps 1024");
    for (int i = 0; i < 5; i++) mxp_scaler_update(&s, 0);
    CHECK(s.scale == 1024, "static scale never grows");
    c.dynamic = 1;
    c.backoff_factor = 1.5f;
    CHECK(mxp_scaler_init(&s, &c) == MXP_ERR_INVALID_ARG, "backoff 1.5 refused");
    c.backoff_factor = 0.5f;
    c.init_scale = NAN;
    CHECK(mxp_scaler_init(&s, &c) == MXP_ERR_INVALID_ARG, "NaN scale refused");
}

/* ---- the tiny MLP against PyTorch ---------------------------------------------------- */

static mxp_model_t *tiny_mlp(void) {
    mxp_model_t *m;
    mxp_model_sequential(&m, "tiny", 1, 1, 20, 10);
    mxp_model_add_flatten(m);
    mxp_model_add_linear(m, 20, 16);
    mxp_model_add_relu(m);
    mxp_model_add_linear(m, 16, 10);
    static const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    static const char *ref[4] = {"mlp.w1", "mlp.b1", "mlp.w2", "mlp.b2"};
    for (int i = 0; i < 4; i++) {
        mxp_param *p = mxp_model_param(m, names[i]);
        CHECK(p != NULL, "parameter %s", names[i]);
        memcpy(p->master->data, F(ref[i]), mxp_tensor_nbytes(p->master));
        p->decay = 1; /* torch.optim decays every parameter, biases too */
    }
    return m;
}

/* Train 10 steps on the fixture's batches; losses[10] out; returns the model. */
static mxp_model_t *train_tiny(const char *prec, const char *loss_scale, mxp_optim_kind kind,
                               int accum_split, float *losses) {
    mxp_model_t *m = tiny_mlp();
    mxp_optim_config oc;
    mxp_optim_config_default(&oc, kind);
    if (kind == MXP_OPTIM_SGD) {
        oc.lr = 0.1f;
        oc.momentum = 0.9f;
        oc.weight_decay = 1e-4f;
    } else {
        oc.lr = 1e-2f;
        oc.weight_decay = 1e-2f;
    }
    mxp_optimizer_t *opt;
    mxp_optimizer_create(&opt, &oc);
    mxp_accelerator_options ao;
    mxp_accelerator_options_init(&ao);
    ao.mixed_precision = prec;
    ao.loss_scale = loss_scale;
    ao.grad_accum = accum_split ? 2 : 1;
    mxp_accelerator_t *acc;
    CHECK(mxp_accelerator_create(&acc, &ao) == MXP_OK, "accelerator: %s", mxp_last_error());
    CHECK(mxp_accelerator_prepare(acc, m, opt, NULL, NULL) == MXP_OK, "prepare: %s",
          mxp_last_error());
    const float *x = F("mlp.x");
    const int32_t *y = fixture_i32(&fx, "mlp.labels", NULL);
    for (int step = 0; step < 10; step++) {
        const int parts = accum_split ? 2 : 1, rows = 8 / parts;
        losses[step] = 0;
        for (int part = 0; part < parts; part++) {
            mxp_graph_t *g = mxp_accelerator_graph(acc);
            mxp_graph_reset(g);
            mxp_tensor xt;
            mxp_tensor_wrap(&xt, (void *)(x + (step * 8 + part * rows) * 20), MXP_DTYPE_F32, 4,
                            (int64_t[]){rows, 1, 1, 20}, NULL);
            mxp_var *xv = mxp_graph_input(g, &xt), *logits, *loss;
            CHECK(mxp_model_forward(m, g, xv, &logits) == MXP_OK, "forward: %s", mxp_last_error());
            CHECK(mxp_op_cross_entropy(g, &loss, logits, y + step * 8 + part * rows) == MXP_OK,
                  "loss");
            losses[step] += *(float *)loss->value->data / (float)parts;
            CHECK(mxp_accelerator_backward(acc, loss) == MXP_OK, "backward: %s", mxp_last_error());
        }
        mxp_step_result r;
        CHECK(mxp_accelerator_step(acc, &r) == MXP_OK && r.stepped && !r.skipped, "step %d applied",
              step);
        CHECK(fabs(r.loss - losses[step]) <= 1e-6 * fabs(losses[step]),
              "step %d: the step's loss %.9g, the micro-batches' mean %.9g", step, r.loss,
              (double)losses[step]);
    }
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    return m;
}

/* A cycle the data cut short (end_cycle after 2 of 3 micro-batches): its loss is the mean of
 * the 2, and clip_grad_norm before the cycle is complete leaves the gradients alone. */
static void test_short_cycle(void) {
    mxp_model_t *m = tiny_mlp();
    mxp_optim_config oc;
    mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW);
    mxp_optimizer_t *opt;
    mxp_optimizer_create(&opt, &oc);
    mxp_accelerator_options ao;
    mxp_accelerator_options_init(&ao);
    ao.mixed_precision = "bf16";
    ao.grad_accum = 3;
    mxp_accelerator_t *acc;
    CHECK(mxp_accelerator_create(&acc, &ao) == MXP_OK &&
              mxp_accelerator_prepare(acc, m, opt, NULL, NULL) == MXP_OK,
          "accelerator: %s", mxp_last_error());
    const float *x = F("mlp.x");
    const int32_t *y = fixture_i32(&fx, "mlp.labels", NULL);
    double sum = 0;
    for (int part = 0; part < 2; part++) {
        mxp_graph_t *g = mxp_accelerator_graph(acc);
        mxp_graph_reset(g);
        mxp_tensor xt;
        mxp_tensor_wrap(&xt, (void *)(x + part * 4 * 20), MXP_DTYPE_F32, 4,
                        (int64_t[]){4, 1, 1, 20}, NULL);
        mxp_var *xv = mxp_graph_input(g, &xt), *logits, *loss;
        CHECK(mxp_model_forward(m, g, xv, &logits) == MXP_OK &&
                  mxp_op_cross_entropy(g, &loss, logits, y + part * 4) == MXP_OK &&
                  mxp_accelerator_backward(acc, loss) == MXP_OK,
              "micro-batch %d: %s", part, mxp_last_error());
        sum += *(float *)loss->value->data;
        float norm = 0.0f;
        CHECK(mxp_accelerator_clip_grad_norm(acc, 1.0f, &norm) == MXP_OK && isnan(norm),
              "clip in the middle of a cycle measures nothing (norm %g)", (double)norm);
    }
    mxp_accelerator_end_cycle(acc);
    mxp_step_result r;
    CHECK(mxp_accelerator_step(acc, &r) == MXP_OK && r.stepped && !r.skipped && r.grad_norm > 0.0f,
          "the short cycle is stepped (norm %g)", (double)r.grad_norm);
    CHECK(fabs(r.loss - sum / 2) <= 1e-9, "short cycle loss %.9g, want the mean of 2: %.9g", r.loss,
          sum / 2);
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    mxp_model_free(m);
}

static void compare_losses(const char *what, const float *got, const char *ref_name, double tol) {
    const float *ref = F(ref_name);
    double worst = 0;
    for (int i = 0; i < 10; i++) worst = fmax(worst, fabs((double)got[i] - ref[i]));
    CHECK(worst <= tol, "%s vs %s: max loss difference %g > %g (step 10: %g vs %g)", what, ref_name,
          worst, tol, (double)got[9], (double)ref[9]);
    printf("%-22s vs %-24s max |dloss| %.2e (tolerance %.0e)\n", what, ref_name, worst, tol);
}

static void test_tiny_mlp(void) {
    float l[10], l2[10];
    /* fp32: PyTorch's own nn.Linear + F.cross_entropy + torch.optim, to 1e-4 */
    mxp_model_t *m = train_tiny("no", NULL, MXP_OPTIM_SGD, 0, l);
    compare_losses("fp32 sgd", l, "mlp.sgd.fp32.loss", 1e-4);
    static const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    static const char *ref[4] = {"mlp.sgd.fp32.w1", "mlp.sgd.fp32.b1", "mlp.sgd.fp32.w2",
                                 "mlp.sgd.fp32.b2"};
    for (int i = 0; i < 4; i++) {
        const mxp_param *p = mxp_model_param(m, names[i]);
        const float *r = F(ref[i]), *w = p->master->data;
        double worst = 0;
        for (int64_t j = 0; j < mxp_tensor_numel(p->master); j++)
            worst = fmax(worst, fabs((double)w[j] - r[j]));
        CHECK(worst < 1e-4, "fp32 sgd final %s differs from PyTorch by %g", names[i], worst);
    }
    mxp_model_free(m);
    mxp_model_free(train_tiny("no", NULL, MXP_OPTIM_ADAMW, 0, l));
    compare_losses("fp32 adamw", l, "mlp.adamw.fp32.loss", 1e-4);

    /* gradient accumulation: two micro-batches of 4 == one batch of 8 (the
     * mean of the two means, the same gradient up to fp32 rounding) */
    mxp_model_free(train_tiny("no", NULL, MXP_OPTIM_SGD, 1, l2));
    compare_losses("fp32 sgd accum 2x4", l2, "mlp.sgd.fp32.loss", 1e-4);

    /* bf16: the logits carry bf16's 8-bit significand: relative error up to
     * 2^-9 each, about 0.01 on logits of magnitude ~3, which moves the loss by
     * up to ~1e-2; measured 4e-3 against PyTorch's own bf16 autocast. */
    for (int k = 0; k < 2; k++) {
        const mxp_optim_kind kind = k ? MXP_OPTIM_ADAMW : MXP_OPTIM_SGD;
        const char *o = k ? "adamw" : "sgd";
        char name[64], what[64];
        mxp_model_free(train_tiny("bf16", NULL, kind, 0, l));
        snprintf(what, sizeof what, "bf16 %s", o);
        snprintf(name, sizeof name, "mlp.%s.bf16autocast.loss", o);
        compare_losses(what, l, name, 1.5e-2);
        snprintf(name, sizeof name, "mlp.%s.bf16emu.loss", o);
        compare_losses(what, l, name, 1.5e-2);
        /* fp16 with the emulation's static scale 1024: 11-bit significand,
         * 8x finer than bf16: 2e-3 */
        mxp_model_free(train_tiny("fp16", "1024", kind, 0, l));
        snprintf(what, sizeof what, "fp16 %s", o);
        snprintf(name, sizeof name, "mlp.%s.fp16emu.loss", o);
        compare_losses(what, l, name, 2e-3);
        snprintf(name, sizeof name, "mlp.%s.fp32.loss", o);
        compare_losses(what, l, name, 2e-3);
    }
}

/* ---- skipped steps, master weights off --------------------------------------------- */

static void snapshot(const mxp_model_t *m, float *out) {
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        mxp_convert(out, MXP_DTYPE_F32, p->master ? p->master->data : p->work->data,
                    p->master ? MXP_DTYPE_F32 : p->work->dtype, (size_t)mxp_tensor_numel(p->work));
        out += mxp_tensor_numel(p->work);
    }
}

/* one step of the tiny MLP on batch 0 with the given accelerator */
static mxp_step_result one_step(mxp_accelerator_t *acc, mxp_model_t *m) {
    mxp_graph_t *g = mxp_accelerator_graph(acc);
    mxp_graph_reset(g);
    mxp_tensor xt;
    mxp_tensor_wrap(&xt, (void *)F("mlp.x"), MXP_DTYPE_F32, 4, (int64_t[]){8, 1, 1, 20}, NULL);
    mxp_var *xv = mxp_graph_input(g, &xt), *logits, *loss;
    mxp_model_forward(m, g, xv, &logits);
    mxp_op_cross_entropy(g, &loss, logits, fixture_i32(&fx, "mlp.labels", NULL));
    mxp_accelerator_backward(acc, loss);
    mxp_accelerator_clip_grad_norm(acc, 0.0f, NULL);
    mxp_step_result r;
    mxp_accelerator_step(acc, &r);
    return r;
}

static void test_skip_and_ablation(void) {
    /* fp16 with a loss scale so large the gradients overflow: every step is
     * skipped, weights and moments stay, the schedule does not advance */
    mxp_model_t *m = tiny_mlp();
    mxp_optim_config oc;
    mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW);
    mxp_optimizer_t *opt;
    mxp_optimizer_create(&opt, &oc);
    mxp_accelerator_options ao;
    mxp_accelerator_options_init(&ao);
    ao.mixed_precision = "fp16";
    ao.init_scale = 1e30f; /* dynamic, starting far too high */
    mxp_accelerator_t *acc;
    mxp_accelerator_create(&acc, &ao);
    mxp_accelerator_prepare(acc, m, opt, NULL, NULL);
    const int64_t n = mxp_model_numel(m);
    float *before = malloc((size_t)n * sizeof *before), *after = malloc((size_t)n * sizeof *after);
    snapshot(m, before);
    mxp_schedule sc = {.kind = MXP_SCHED_CONSTANT, .base_lr = 1e-3f, .warmup_steps = 10};
    mxp_accelerator_set_schedule(acc, &sc);
    mxp_step_result r = one_step(acc, m);
    CHECK(r.stepped && r.skipped && isnan(r.grad_norm), "overflow: skipped, norm NaN");
    snapshot(m, after);
    CHECK(memcmp(before, after, (size_t)n * sizeof *before) == 0,
          "a skipped step changes no weight");
    CHECK(mxp_optimizer_steps(opt) == 0 && mxp_accelerator_applied_steps(acc) == 0,
          "a skipped step is not an optimizer step");
    CHECK(mxp_accelerator_scaler(acc)->scale == 5e29f, "scale backed off to %g",
          (double)mxp_accelerator_scaler(acc)->scale);
    int skipped = 1;
    for (int i = 0; i < 200 && r.skipped; i++, skipped += r.skipped) r = one_step(acc, m);
    CHECK(!r.skipped, "the scale comes down until a step succeeds (after %d skips)", skipped);
    CHECK(fabsf(r.lr - 1e-4f) < 1e-9f, "first applied step uses warmup step 0's lr: %g",
          (double)r.lr);
    CHECK(mxp_accelerator_scaler(acc)->skipped == skipped, "skips counted");
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    mxp_model_free(m);

    /* bf16 without master weights at a tiny learning rate: the updates are
     * below half an ulp of the weights and vanish; with master weights the
     * fp32 copy moves */
    for (int master = 0; master < 2; master++) {
        m = tiny_mlp();
        mxp_optim_config_default(&oc, MXP_OPTIM_SGD);
        oc.lr = 1e-5f;
        oc.momentum = 0;
        mxp_optimizer_create(&opt, &oc);
        mxp_accelerator_options_init(&ao);
        ao.mixed_precision = "bf16";
        ao.master_weights = master;
        ao.stats_every = 1;
        mxp_accelerator_create(&acc, &ao);
        mxp_accelerator_prepare(acc, m, opt, NULL, NULL);
        CHECK((m->params[0]->master != NULL) == master, "master copy present iff on");
        snapshot(m, before);
        for (int i = 0; i < 5; i++) r = one_step(acc, m);
        snapshot(m, after);
        int64_t changed = 0;
        for (int64_t i = 0; i < n; i++) changed += before[i] != after[i];
        CHECK(r.have_stats && r.lost_update_frac > 0.9, "master %d: lost fraction %g", master,
              r.lost_update_frac);
        if (master)
            CHECK(changed > n / 2, "with master weights %lld of %lld fp32 weights moved",
                  (long long)changed, (long long)n);
        else
            CHECK(changed < n / 10, "without master weights only %lld of %lld moved",
                  (long long)changed, (long long)n);
        printf("bf16 lr 1e-5, master weights %s: %lld of %lld weights changed in 5 steps, "
               "%.1f%% of updates below half an ulp\n",
               master ? "on " : "off", (long long)changed, (long long)n, 100 * r.lost_update_frac);
        mxp_accelerator_free(acc);
        mxp_optimizer_free(opt);
        mxp_model_free(m);
    }
    free(before);
    free(after);
}

/* ---- schedules, arguments, environment ---------------------------------------------- */

static void test_schedule(void) {
    mxp_schedule s = {.kind = MXP_SCHED_COSINE,
                      .base_lr = 1.0f,
                      .min_lr = 0.0f,
                      .warmup_steps = 4,
                      .total_steps = 14};
    CHECK(mxp_schedule_lr(&s, 0) == 0.25f && mxp_schedule_lr(&s, 3) == 1.0f, "warmup ramp");
    CHECK(fabsf(mxp_schedule_lr(&s, 4) - 1.0f) < 1e-6f, "cosine starts at base");
    CHECK(fabsf(mxp_schedule_lr(&s, 9) - 0.5f) < 1e-6f, "cosine half way: %g",
          (double)mxp_schedule_lr(&s, 9));
    CHECK(mxp_schedule_lr(&s, 14) == 0.0f && mxp_schedule_lr(&s, 100) == 0.0f, "cosine end");
    s.kind = MXP_SCHED_CONSTANT;
    CHECK(mxp_schedule_lr(&s, 100) == 1.0f, "constant");
}

static void test_args(void) {
    mxp_trainer_args a;
    mxp_trainer_args_default(&a);
    CHECK(!strcmp(a.model, "cnn") && !a.mixed_precision[0], "defaults");
    CHECK(mxp_trainer_args_set(&a, "batch-size", "-3") == MXP_ERR_INVALID_ARG &&
              strstr(mxp_last_error(), "batch-size") && strstr(mxp_last_error(), "-3"),
          "negative batch size: %s", mxp_last_error());
    CHECK(mxp_trainer_args_set(&a, "mixed-precision", "fp8") == MXP_ERR_INVALID_ARG,
          "unknown precision");
    CHECK(mxp_trainer_args_set(&a, "lr", "nan") == MXP_ERR_INVALID_ARG, "lr nan");
    CHECK(mxp_trainer_args_set(&a, "model", "resnet") == MXP_ERR_INVALID_ARG, "unknown model");
    CHECK(mxp_trainer_args_set(&a, "frobnicate", "1") == MXP_ERR_INVALID_ARG, "unknown key");
    CHECK(mxp_trainer_args_set(&a, "per_device_train_batch_size", "64") == MXP_OK &&
              a.batch_size == 64,
          "HF name");
    char path[] = "/tmp/mixprec-args-XXXXXX";
    const int fd = mkstemp(path);
    const char yaml[] = "# Trainer-style\nfp16: true\nlearning_rate: 3e-4\nnum_train_epochs: 2\n";
    CHECK(fd >= 0 && write(fd, yaml, sizeof yaml - 1) == (ssize_t)(sizeof yaml - 1), "tmp");
    close(fd);
    mxp_trainer_args_default(&a);
    CHECK(mxp_trainer_args_load(&a, path) == MXP_OK, "load: %s", mxp_last_error());
    CHECK(!strcmp(a.mixed_precision, "fp16") && fabsf(a.lr - 3e-4f) < 1e-9f && a.epochs == 2,
          "yaml applied: %s %g %lld", a.mixed_precision, (double)a.lr, (long long)a.epochs);
    FILE *f = fopen(path, "w");
    fputs("bf16: true\nbatch_size: zero\n", f);
    fclose(f);
    CHECK(mxp_trainer_args_load(&a, path) == MXP_ERR_INVALID_ARG && strstr(mxp_last_error(), ":2:"),
          "bad value names its line: %s", mxp_last_error());
    unlink(path);
}

static void test_env(void) {
    mxp_accelerator_options o;
    mxp_accelerator_options_init(&o);
    mxp_accelerator_t *acc;
    setenv("MIXPREC_MIXED_PRECISION", "fp16", 1);
    CHECK(mxp_accelerator_create(&acc, &o) == MXP_OK &&
              mxp_accelerator_precision(acc) == MXP_PREC_FP16 &&
              mxp_accelerator_scaler(acc)->scale == 65536.0f,
          "fp16 from the environment, dynamic scaling");
    mxp_accelerator_free(acc);
    o.mixed_precision = "bf16"; /* an option beats the environment */
    CHECK(mxp_accelerator_create(&acc, &o) == MXP_OK &&
              mxp_accelerator_precision(acc) == MXP_PREC_BF16 &&
              !mxp_accelerator_scaler(acc)->cfg.enabled,
          "bf16 option over the environment, no scaler");
    mxp_accelerator_free(acc);
    o.mixed_precision = NULL;
    setenv("MIXPREC_MIXED_PRECISION", "fp8", 1);
    CHECK(mxp_accelerator_create(&acc, &o) == MXP_ERR_INVALID_ARG &&
              strstr(mxp_last_error(), "MIXPREC_MIXED_PRECISION=fp8"),
          "bad environment named: %s", mxp_last_error());
    unsetenv("MIXPREC_MIXED_PRECISION");
    setenv("MIXPREC_GRAD_ACCUM", "4", 1);
    CHECK(mxp_accelerator_create(&acc, &o) == MXP_OK && mxp_accelerator_grad_accum(acc) == 4 &&
              mxp_accelerator_precision(acc) == MXP_PREC_NO,
          "accumulation from the environment; precision defaults to no");
    mxp_accelerator_free(acc);
    unsetenv("MIXPREC_GRAD_ACCUM");
    /* the scaler settings mixprec launch exports from a config file */
    setenv("MIXPREC_MIXED_PRECISION", "fp16", 1);
    setenv("MIXPREC_INIT_SCALE", "1024", 1);
    setenv("MIXPREC_GROWTH_INTERVAL", "7", 1);
    setenv("MIXPREC_HYSTERESIS", "3", 1);
    CHECK(mxp_accelerator_create(&acc, &o) == MXP_OK &&
              mxp_accelerator_scaler(acc)->scale == 1024.0f &&
              mxp_accelerator_scaler(acc)->cfg.growth_interval == 7 &&
              mxp_accelerator_scaler(acc)->cfg.hysteresis == 3,
          "scaler settings from the environment");
    mxp_accelerator_free(acc);
    o.init_scale = 8.0f; /* an option beats the environment */
    CHECK(mxp_accelerator_create(&acc, &o) == MXP_OK && mxp_accelerator_scaler(acc)->scale == 8.0f,
          "init scale option over the environment");
    mxp_accelerator_free(acc);
    o.init_scale = 0.0f;
    setenv("MIXPREC_INIT_SCALE", "1e-50", 1); /* positive, but 0 as a float */
    CHECK(mxp_accelerator_create(&acc, &o) == MXP_ERR_INVALID_ARG &&
              strstr(mxp_last_error(), "MIXPREC_INIT_SCALE=1e-50"),
          "an init scale that rounds to 0 is refused: %s", mxp_last_error());
    setenv("MIXPREC_INIT_SCALE", "1024", 1);
    setenv("MIXPREC_GROWTH_INTERVAL", "-2", 1);
    CHECK(mxp_accelerator_create(&acc, &o) == MXP_ERR_INVALID_ARG &&
              strstr(mxp_last_error(), "MIXPREC_GROWTH_INTERVAL=-2"),
          "bad growth interval named: %s", mxp_last_error());
    unsetenv("MIXPREC_MIXED_PRECISION");
    unsetenv("MIXPREC_INIT_SCALE");
    unsetenv("MIXPREC_GROWTH_INTERVAL");
    unsetenv("MIXPREC_HYSTERESIS");
}

int main(void) {
    const char *path = MIXPREC_SOURCE_DIR "/tests/reference/ops_ref.bin";
    if (fixture_load(&fx, path) != 0) {
        fprintf(stderr, "cannot load %s\n", path);
        return 1;
    }
    test_scaler_gradscaler();
    test_scaler_hysteresis();
    test_tiny_mlp();
    test_short_cycle();
    test_skip_and_ablation();
    test_schedule();
    test_args();
    test_env();
    mxp_gemm_release_workspace();
    fixture_free(&fx);
    return check_exit("test_train");
}
