/*
 * sr_effect.c - what stochastic rounding does for pure 16-bit weights: the same run (model,
 * data order, initial weights, AdamW, learning rate, schedule) in three modes,
 *   master  bf16 (or fp16) weights with fp32 master weights (the default recipe)
 *   rne     master weights off, the update rounded to nearest even (updates below half an
 *           ulp are lost: the source document's failure)
 *   sr      master weights off, the update rounded stochastically (mxp_optim_config
 *           .stochastic_rounding, keyed by the run's seed)
 * and, per mode, one JSON line: final train loss (mean of the last 50 steps), test loss and
 * accuracy, the fraction of nonzero updates the working dtype loses (counted every
 * --stats-every steps, null with 0; for "master" what bf16 alone would lose), and step times
 * (median and p10/p90 of the steps that did not count). Then the cost of the update alone: AdamW
 * over as many elements as the model has, each mode, 1 thread and all of them ("event":"update").
 *
 *   sr_effect [--model mlp|gpt] [--precision bf16|fp16] [--lr LR] [--steps N] [--batch B]
 *             [--threads T] [--seed S] [--schedule cosine|constant] [--warmup N]
 *             [--stats-every N] [--eval-batches N] [--modes master,rne,sr] [--out FILE]
 * Defaults are `mixprec train`'s: AdamW (weight decay 0.01), cosine with 100 warmup steps,
 * gradient clipping at 1, seed 42; mlp batch 128 on Fashion-MNIST for 1 epoch, gpt batch 8
 * on fortunes for 200 steps. Lines go to stdout and, with --out, are appended to FILE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mixprec.h"

#include "bench_util.h"

#define TRY(e)                                                                                     \
    do {                                                                                           \
        if ((e) != MXP_OK) {                                                                       \
            fprintf(stderr, "sr_effect: %s\n", mxp_last_error());                                  \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

typedef struct opts {
    const char *model, *precision, *schedule, *modes, *out;
    float lr;
    int64_t steps, batch, warmup, eval_batches;
    int threads, stats_every;
    uint64_t seed;
} opts;

static FILE *out_file;
static char host[64];

static void emit(const char *line) {
    fputs(line, stdout);
    fflush(stdout);
    if (out_file) {
        fputs(line, out_file);
        fflush(out_file);
    }
}

/* One training run in `mode`; prints its line. */
static void run_mode(const opts *o, const char *mode, const mxp_dataset_t *train,
                     const mxp_dataset_t *test, int64_t *numel_out) {
    const int gpt = !strcmp(o->model, "gpt");
    const int master = !strcmp(mode, "master"), sr = !strcmp(mode, "sr");
    mxp_model_config mc;
    TRY(mxp_model_config_default(&mc, o->model));
    mc.seed = o->seed;
    if (gpt) {
        mc.vocab_size = train->vocab_size;
        mc.n_classes = (int)mc.vocab_size;
    }
    mxp_model_t *m;
    TRY(mxp_model_create(&m, &mc));
    *numel_out = mxp_model_numel(m);
    mxp_optim_config oc;
    TRY(mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW));
    oc.lr = o->lr;
    oc.stochastic_rounding = sr;
    oc.sr_seed = o->seed;
    mxp_optimizer_t *opt;
    TRY(mxp_optimizer_create(&opt, &oc));
    mxp_accelerator_options ao;
    mxp_accelerator_options_init(&ao);
    ao.mixed_precision = o->precision;
    ao.master_weights = master;
    ao.num_threads = o->threads;
    ao.seed = o->seed;
    ao.stats_every = o->stats_every;
    mxp_accelerator_t *acc;
    TRY(mxp_accelerator_create(&acc, &ao));
    mxp_loader_t *ld;
    TRY(mxp_loader_create(&ld, train, o->batch, 1, o->seed, 0));
    TRY(mxp_accelerator_prepare(acc, m, opt, ld, NULL));
    mxp_schedule sc = {.base_lr = o->lr, .warmup_steps = o->warmup, .total_steps = o->steps};
    TRY(mxp_schedule_parse(o->schedule, &sc.kind));
    mxp_accelerator_set_schedule(acc, &sc);

    double *t = malloc((size_t)o->steps * sizeof *t), *t_all = malloc((size_t)o->steps * sizeof *t);
    double *loss = malloc((size_t)o->steps * sizeof *loss);
    int64_t nt = 0, step = 0, epoch = 0, nstats = 0;
    double lost_sum = 0;
    const double t_start = now();
    TRY(mxp_loader_start_epoch(ld, epoch, 0));
    while (step < o->steps) {
        const double t0 = now();
        mxp_graph_t *g = mxp_accelerator_graph(acc);
        mxp_var *x = NULL, *logits, *lv;
        const int32_t *y, *tok = NULL;
        int64_t b, T = 0;
        if (gpt)
            TRY(mxp_accelerator_next_tokens(acc, ld, &tok, &y, &b, &T));
        else
            TRY(mxp_accelerator_next_batch(acc, ld, &x, &y, &b));
        if (b == 0) {
            TRY(mxp_loader_start_epoch(ld, ++epoch, 0));
            continue;
        }
        if (gpt)
            TRY(mxp_model_forward_tokens(m, g, tok, b, T, &logits));
        else
            TRY(mxp_model_forward(m, g, x, &logits));
        TRY(mxp_op_cross_entropy(g, &lv, logits, y));
        TRY(mxp_accelerator_backward(acc, lv));
        TRY(mxp_accelerator_clip_grad_norm(acc, 1.0f, NULL));
        mxp_step_result r;
        TRY(mxp_accelerator_step(acc, &r));
        const double dt = now() - t0;
        loss[step] = r.loss;
        t_all[step] = dt;
        if (r.have_stats) {
            lost_sum += r.lost_update_frac;
            nstats++;
        } else {
            t[nt++] = dt;
        }
        step++;
    }
    const double wall = now() - t_start;
    double tail = 0;
    const int64_t k = o->steps < 50 ? o->steps : 50;
    for (int64_t i = o->steps - k; i < o->steps; i++) tail += loss[i];
    double test_loss, test_acc;
    TRY(mxp_evaluate_limit(m, test, gpt ? o->batch : 256, o->eval_batches, &test_loss, &test_acc));
    if (nt == 0) { /* every step counted (--stats-every 1): time them all */
        memcpy(t, t_all, (size_t)o->steps * sizeof *t);
        nt = o->steps;
    }
    qsort(t, (size_t)nt, sizeof *t, cmp);
    char lost[32] = "null"; /* JSON has no NaN: null when no step counted */
    if (nstats) snprintf(lost, sizeof lost, "%.5f", lost_sum / (double)nstats);
    char line[1024];
    snprintf(line, sizeof line,
             "{\"bench\":\"sr_effect\",\"event\":\"run\",\"host\":\"%s\",\"model\":\"%s\","
             "\"precision\":\"%s\",\"mode\":\"%s\",\"optimizer\":\"adamw\",\"lr\":%g,"
             "\"schedule\":\"%s\",\"warmup\":%lld,\"steps\":%lld,\"batch\":%lld,\"seed\":%llu,"
             "\"threads\":%d,\"params\":%lld,\"final_train_loss\":%.5f,\"first_loss\":%.5f,"
             "\"test_loss\":%.5f,\"test_accuracy\":%.5f,\"eval_batches\":%lld,"
             "\"lost_update_frac\":%s,\"stats_steps\":%lld,\"ms_per_step\":%.3f,"
             "\"ms_p10\":%.3f,\"ms_p90\":%.3f,\"wall_s\":%.2f,\"isa\":\"%s\"}\n",
             host, o->model, o->precision, mode, (double)o->lr, o->schedule, (long long)o->warmup,
             (long long)o->steps, (long long)o->batch, (unsigned long long)o->seed,
             mxp_num_threads(), (long long)*numel_out, tail / (double)k, loss[0], test_loss,
             test_acc, (long long)o->eval_batches, lost, (long long)nstats, 1e3 * t[nt / 2],
             1e3 * t[nt / 10], 1e3 * t[nt * 9 / 10], wall, mxp_isa_name(mxp_isa_active()));
    emit(line);
    free(t);
    free(t_all);
    free(loss);
    mxp_loader_free(ld);
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    mxp_model_free(m);
}

/* The AdamW update alone over n elements (16-bit weights and gradients), each mode: the
 * median of 21 calls after 3 warm-up calls, on 1 thread and on all of them. */
static void update_cost(const opts *o, int64_t n64) {
    const size_t n = (size_t)n64;
    const mxp_dtype wt = !strcmp(o->precision, "fp16") ? MXP_DTYPE_F16 : MXP_DTYPE_BF16;
    float *master = malloc(n * 4), *mom = calloc(n, 4), *var = calloc(n, 4), *tmp = malloc(n * 4);
    uint16_t *work = malloc(n * 2), *grad = malloc(n * 2);
    uint32_t r[4];
    for (size_t i = 0; i < n; i++) {
        if (i % 4 == 0) mxp_philox4x32(11, i / 4, r);
        master[i] = ((float)(r[i % 4] >> 8) / 16777216.0f - 0.5f) * 0.1f;
        tmp[i] = ((float)(r[(i + 1) % 4] >> 8) / 16777216.0f - 0.5f) * 1e-3f;
    }
    TRY(mxp_convert(work, wt, master, MXP_DTYPE_F32, n));
    TRY(mxp_convert(grad, wt, tmp, MXP_DTYPE_F32, n));
    const int all = o->threads > 0 ? o->threads : mxp_num_threads();
    const int tcounts[2] = {1, all};
    static const char *modes[3] = {"master", "rne", "sr"};
    for (int ti = 0; ti < (all > 1 ? 2 : 1); ti++) {
        mxp_set_num_threads(tcounts[ti]);
        double med[3];
        for (int md = 0; md < 3; md++) {
            double t[24];
            for (int it = 0; it < 24; it++) {
                const mxp_update_io io = {.master = md == 0 ? master : NULL,
                                          .work = work,
                                          .work_dtype = wt,
                                          .grad = grad,
                                          .grad_dtype = wt,
                                          .grad_mul = 1.0f,
                                          .n = n,
                                          .stochastic = md == 2,
                                          .sr_seed = mxp_optim_sr_key(o->seed, it),
                                          .sr_offset = 0};
                const mxp_adamw_hparams h = {.lr = o->lr,
                                             .beta1 = 0.9f,
                                             .beta2 = 0.999f,
                                             .eps = 1e-8f,
                                             .weight_decay = 0.01f,
                                             .step = it + 1};
                const double t0 = now();
                TRY(mxp_adamw_update(&io, mom, var, &h));
                t[it] = now() - t0;
            }
            qsort(t + 3, 21, sizeof *t, cmp);
            med[md] = t[3 + 10];
        }
        for (int md = 0; md < 3; md++) {
            char line[512];
            snprintf(line, sizeof line,
                     "{\"bench\":\"sr_effect\",\"event\":\"update\",\"host\":\"%s\","
                     "\"precision\":\"%s\",\"mode\":\"%s\",\"optimizer\":\"adamw\",\"n\":%zu,"
                     "\"threads\":%d,\"ms\":%.4f,\"ns_per_elem\":%.3f,\"vs_rne\":%.2f,"
                     "\"isa\":\"%s\"}\n",
                     host, o->precision, modes[md], n, tcounts[ti], 1e3 * med[md],
                     1e9 * med[md] / (double)n, med[md] / med[1], mxp_isa_name(mxp_isa_active()));
            emit(line);
        }
    }
    mxp_set_num_threads(all);
    free(master);
    free(mom);
    free(var);
    free(tmp);
    free(work);
    free(grad);
}

int main(int argc, char **argv) {
    opts o = {.model = "mlp",
              .precision = "bf16",
              .schedule = "cosine",
              .modes = "master,rne,sr",
              .lr = 1e-3f,
              .steps = 0,
              .batch = 0,
              .warmup = 100,
              .eval_batches = 0,
              .stats_every = 10,
              .seed = 42};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "sr_effect: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model"))
            o.model = v;
        else if (!strcmp(a, "--precision"))
            o.precision = v;
        else if (!strcmp(a, "--lr"))
            o.lr = strtof(v, NULL);
        else if (!strcmp(a, "--steps"))
            o.steps = atoll(v);
        else if (!strcmp(a, "--batch"))
            o.batch = atoll(v);
        else if (!strcmp(a, "--threads"))
            o.threads = atoi(v);
        else if (!strcmp(a, "--seed"))
            o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--schedule"))
            o.schedule = v;
        else if (!strcmp(a, "--warmup"))
            o.warmup = atoll(v);
        else if (!strcmp(a, "--stats-every"))
            o.stats_every = atoi(v);
        else if (!strcmp(a, "--eval-batches"))
            o.eval_batches = atoll(v);
        else if (!strcmp(a, "--modes"))
            o.modes = v;
        else if (!strcmp(a, "--out"))
            o.out = v;
        else {
            fprintf(stderr, "sr_effect: unknown option %s\n", a);
            return 2;
        }
    }
    const int gpt = !strcmp(o.model, "gpt");
    if (!o.batch) o.batch = gpt ? 8 : 128;
    if (o.threads > 0) mxp_set_num_threads(o.threads);
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    if (o.out && !(out_file = fopen(o.out, "a"))) {
        fprintf(stderr, "sr_effect: cannot open %s\n", o.out);
        return 1;
    }

    mxp_dataset_t *train, *test;
    if (gpt) {
        mxp_model_config mc;
        TRY(mxp_model_config_default(&mc, "gpt"));
        mxp_text_options to;
        mxp_text_options_default(&to);
        to.block = mc.block_size;
        TRY(mxp_text_load(&train, &test, "fortunes", &to));
        if (!o.steps) o.steps = 200;
        if (!o.eval_batches) o.eval_batches = 50;
    } else {
        char dir[512];
        TRY(mxp_dataset_dir(dir, sizeof dir, "fashion-mnist"));
        TRY(mxp_dataset_load_idx(&train, dir, "train"));
        TRY(mxp_dataset_load_idx(&test, dir, "test"));
        TRY(mxp_dataset_set_norm(test, train->mean, train->std));
        if (!o.steps) o.steps = (train->n + o.batch - 1) / o.batch; /* one epoch */
    }
    int64_t numel = 0;
    char modes[64];
    snprintf(modes, sizeof modes, "%s", o.modes);
    for (char *save = NULL, *md = strtok_r(modes, ",", &save); md;
         md = strtok_r(NULL, ",", &save)) {
        if (strcmp(md, "master") && strcmp(md, "rne") && strcmp(md, "sr")) {
            fprintf(stderr, "sr_effect: unknown mode %s (master, rne, sr)\n", md);
            return 2;
        }
        run_mode(&o, md, train, test, &numel);
    }
    if (numel) update_cost(&o, numel);
    mxp_dataset_free(train);
    mxp_dataset_free(test);
    if (out_file) fclose(out_file);
    mxp_gemm_release_workspace();
    return 0;
}
