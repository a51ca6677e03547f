/*
 * test_dist.c - data-parallel training over MPI, end to end through
 * `mixprec launch` (issue 6):
 *   - 2 processes with batch B give the losses of 1 process with batch 2B:
 *     fp32 within 1e-5 (mlp and gpt), bf16 and fp16 within the bounds
 *     justified at check_equivalent;
 *   - the bytes each rank all-reduces per step: the gradients in the working
 *     dtype (bf16 half of fp32) plus two doubles; rank 0 alone logs;
 *   - when one rank alone sees an overflow, every rank skips that step and
 *     backs the scale off alike (this program as the worker, case overflow);
 *   - a 2-process run resumed from its checkpoint continues exactly; resuming
 *     it on 1 process is refused with one line;
 *   - a rank that is killed, or that aborts, ends the whole launch with a
 *     non-zero status and a message, within seconds, never a hang.
 * Without MPI (mpirun missing) it skips.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "mixprec.h"
#include "test_util.h"
#include "tiny_idx.h"

/* ---- the worker: this program run by mixprec launch on every rank ---------------------- */

#define WCHECK(call)                                                                               \
    do {                                                                                           \
        if ((call) != MXP_OK) {                                                                    \
            fprintf(stderr, "worker rank %d: %s\n", mxp_dist_rank(), mxp_last_error());            \
            mxp_dist_abort(1);                                                                     \
        }                                                                                          \
    } while (0)

/* Train a small mlp on the IDX set in dir with the accelerator (fp16, dynamic scale), a
 * batch of 16 per rank. overflow: rank 1 alone writes +inf into a gradient after the
 * backward of step 3. die: rank 1 kills itself at step 3. fail: rank 1 aborts the job there.
 * Prints one line per rank: the steps skipped and the scale after each step. */
static int worker(const char *kase, const char *dir) {
    mxp_accelerator_options o;
    mxp_accelerator_options_init(&o);
    o.mixed_precision = "fp16";
    mxp_accelerator_t *acc;
    WCHECK(mxp_accelerator_create(&acc, &o));
    const int rank = mxp_accelerator_process_index(acc);
    mxp_dataset_t *ds;
    WCHECK(mxp_dataset_load_idx(&ds, dir, "train"));
    mxp_loader_t *ld;
    WCHECK(mxp_loader_create(&ld, ds, 16, 1, 7, 0));
    mxp_model_config mc;
    WCHECK(mxp_model_config_default(&mc, "mlp"));
    mc.hidden1 = 32;
    mc.hidden2 = 16;
    mxp_model_t *m;
    WCHECK(mxp_model_create(&m, &mc));
    mxp_optim_config oc;
    WCHECK(mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW));
    mxp_optimizer_t *opt;
    WCHECK(mxp_optimizer_create(&opt, &oc));
    WCHECK(mxp_accelerator_prepare(acc, m, opt, ld, NULL));
    WCHECK(mxp_loader_start_epoch(ld, 0, 0));
    char line[1024];
    int len =
        snprintf(line, sizeof line, "rank %d of %d:", rank, mxp_accelerator_num_processes(acc));
    for (int step = 1; step <= 6; step++) {
        mxp_var *x, *logits, *loss;
        const int32_t *y;
        int64_t b;
        WCHECK(mxp_accelerator_next_batch(acc, ld, &x, &y, &b));
        WCHECK(mxp_model_forward(m, mxp_accelerator_graph(acc), x, &logits));
        WCHECK(mxp_op_cross_entropy(mxp_accelerator_graph(acc), &loss, logits, y));
        WCHECK(mxp_accelerator_backward(acc, loss));
        if (step == 3 && rank == 1) {
            if (!strcmp(kase, "overflow")) ((uint16_t *)m->params[0]->grad->data)[5] = 0x7c00;
            if (!strcmp(kase, "die")) raise(SIGKILL);
            if (!strcmp(kase, "fail")) {
                fprintf(stderr, "worker rank 1: failing on purpose\n");
                mxp_dist_abort(3);
            }
        }
        mxp_param *first = m->params[0], *last = m->params[m->n_params - 1];
        if (step == 4) { /* no rank has a gradient for the last bias; rank 0 alone for the first */
            last->var.has_grad = 0;
            if (rank == 1) first->var.has_grad = 0;
        }
        WCHECK(mxp_accelerator_clip_grad_norm(acc, 1.0f, NULL));
        if (step == 4 && (last->var.has_grad || !first->var.has_grad)) {
            fprintf(stderr,
                    "worker rank %d: after the all-reduce the first parameter has %s "
                    "gradient and the last %s (want one, none)\n",
                    rank, first->var.has_grad ? "a" : "no", last->var.has_grad ? "a" : "no");
            mxp_dist_abort(1);
        }
        mxp_step_result r;
        WCHECK(mxp_accelerator_step(acc, &r));
        len += snprintf(line + len, sizeof line - (size_t)len, " %s%g", r.skipped ? "skip@" : "",
                        (double)mxp_accelerator_scaler(acc)->scale);
    }
    WCHECK(mxp_dist_check_params(m)); /* the skip left every replica identical */
    printf("%s\n", line);
    fflush(stdout);
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    mxp_model_free(m);
    mxp_loader_free(ld);
    mxp_dataset_free(ds);
    mxp_dist_finalize();
    return 0;
}

/* ---- the checks, run from ctest ---------------------------------------------------------- */

static long long g_params; /* "params" of the last summary read_losses saw */

/* The step lines' "loss" values of a metrics log, and the first step line's comm_bytes. */
static int read_losses(const char *path, double *loss, int cap, long long *comm, int *summaries) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    int n = 0;
    *comm = -1;
    *summaries = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "\"event\":\"summary\"")) {
            ++*summaries;
            const char *p = strstr(line, "\"params\":");
            if (p) g_params = strtoll(p + 9, NULL, 10);
        }
        if (!strstr(line, "\"event\":\"step\"")) continue;
        const char *l = strstr(line, "\"loss\":"), *c = strstr(line, "\"comm_bytes\":");
        if (l && n < cap) loss[n++] = strtod(l + 7, NULL);
        if (c && *comm < 0) *comm = strtoll(c + 13, NULL, 10);
    }
    fclose(f);
    return n;
}

static const char *env_1thread[] = {"MIXPREC_NUM_THREADS=1", NULL};

/* mixprec train on 1 process with batch 2B and through launch on 2 with batch B: the same
 * losses. Each rank's share of the global batch weights its gradient (B / 2B), so the
 * all-reduced sum is the gradient of the mean over the 2B samples, and the logged loss is
 * the mean over them too. What differs is only where sums are rounded:
 *   fp32: the order of fp32 additions in the GEMMs and the loss mean: ~1e-7 relative per
 *         step, so 1e-5 over 20 steps;
 *   bf16/fp16: the weight gradient is rounded to the working dtype on each rank, then the
 *         sum of the two once more (one hop), where one process rounds the fp32 GEMM sum
 *         once: up to 1 ulp more per element (2^-8 in bf16, 2^-11 in fp16). The first step
 *         sees identical weights, so its loss agrees to 1e-6; later steps drift by what
 *         those ulps move the weights: measured at most 0.4% (bf16) and 0.2% (fp16) over
 *         50 mlp steps; the bound is 1.5% / 0.5% over 20 steps, and the distance between
 *         the 1- and 2-process runs must stay of the order of the precision's own rounding
 *         noise: below twice the distance of the 1-process run from fp32 (measured here:
 *         1.1e-4 against 1.4e-4 in bf16, 9.9e-6 against 7.0e-5 in fp16). */
static void check_equivalent(const char *name, const char *const *model_args, const char *prec,
                             double first_tol, double tol, const double *fp32_loss) {
    char b1[16], b2[16];
    const char *log1 = tpath("one.jsonl"), *log2 = tpath("two.jsonl");
    remove(log1);
    remove(log2);
    const char *batch = model_args[0];
    snprintf(b1, sizeof b1, "%d", 2 * atoi(batch));
    snprintf(b2, sizeof b2, "%s", batch);
    const char *a1[40] = {"train", "--mixed-precision",
                          prec,    "--batch-size",
                          b1,      "--max-steps",
                          "20",    "--quiet",
                          "--log", log1};
    const char *a2[40] = {"launch",  "--num-processes", "2", "train",       "--mixed-precision",
                          prec,      "--batch-size",    b2,  "--max-steps", "20",
                          "--quiet", "--log",           log2};
    int n1 = 10, n2 = 13;
    for (int i = 1; model_args[i]; i++) a1[n1++] = a2[n2++] = model_args[i];
    a1[n1] = a2[n2] = NULL;
    result r1 = run_env(env_1thread, a1), r2 = run_env(NULL, a2);
    CHECK(r1.status == 0, "%s %s 1 process: exit %d: %s", name, prec, r1.status, r1.err);
    CHECK(r2.status == 0, "%s %s 2 processes: exit %d: %s", name, prec, r2.status, r2.err);
    /* rank 0 alone reports: one summary on stdout, one in the log */
    const char *s = r2.out ? strstr(r2.out, "steps 20,") : NULL;
    CHECK(s && !strstr(s + 1, "steps 20,"), "%s %s: want one summary, stdout: %.400s", name, prec,
          r2.out);
    CHECK(r2.out && strstr(r2.out, "data parallel: 2 processes"), "%s %s: stdout: %.400s", name,
          prec, r2.out);
    double l1[64], l2[64];
    long long c1, c2;
    int s1, s2;
    const int k1 = read_losses(log1, l1, 64, &c1, &s1), k2 = read_losses(log2, l2, 64, &c2, &s2);
    CHECK(k1 == 20 && k2 == 20 && s1 == 1 && s2 == 1,
          "%s %s: %d and %d step lines, %d and %d summaries (want 20, 20, 1, 1)", name, prec, k1,
          k2, s1, s2);
    double worst = 0, worst_fp32 = 0;
    for (int i = 0; i < k1 && i < k2; i++) {
        const double d = fabs(l1[i] - l2[i]) / fabs(l1[i]);
        CHECK(d <= (i == 0 ? first_tol : tol), "%s %s step %d: loss %.9g on 1 process, %.9g on 2",
              name, prec, i + 1, l1[i], l2[i]);
        if (d > worst) worst = d;
        if (fp32_loss && fabs(l1[i] - fp32_loss[i]) / fabs(l1[i]) > worst_fp32)
            worst_fp32 = fabs(l1[i] - fp32_loss[i]) / fabs(l1[i]);
    }
    if (fp32_loss) /* of the order of the precision's own rounding noise, never above it */
        CHECK(worst < 2 * worst_fp32,
              "%s %s: 1 vs 2 processes differ by %.3g, more than twice %s vs fp32 (%.3g)", name,
              prec, worst, prec, worst_fp32);
    printf("%s %s: 1 vs 2 processes, worst relative loss difference %.3g (vs fp32: %.3g)\n", name,
           prec, worst, worst_fp32);
    CHECK(c1 < 0 && c2 > 0, "%s %s: comm_bytes %lld alone, %lld on 2", name, prec, c1, c2);
    result_free(&r1);
    result_free(&r2);
}

/* The comm_bytes of one rank's step: the gradients in the working dtype plus two doubles. */
static long long comm_of(const char *prec, const char *data) {
    const char *log = tpath("comm.jsonl");
    remove(log);
    result r = RUN("launch", "--num-processes", "2", "train", "--model", "mlp", "--data", data,
                   "--hidden", "64", "--batch-size", "16", "--max-steps", "2", "--quiet",
                   "--mixed-precision", prec, "--log", log);
    CHECK(r.status == 0, "comm %s: exit %d: %s", prec, r.status, r.err);
    result_free(&r);
    double l[4];
    long long c;
    int s;
    read_losses(log, l, 4, &c, &s);
    return c;
}

static void check_overflow(const char *self, const char *data) {
    result r = RUN("launch", "--num-processes", "2", self, "--worker", "overflow", data);
    CHECK(r.status == 0, "overflow: exit %d: %.600s", r.status, r.err);
    /* both ranks: step 3 skipped, the scale halved there, then the same scales */
    const char *l0 = r.out ? strstr(r.out, "rank 0 of 2:") : NULL;
    const char *l1 = r.out ? strstr(r.out, "rank 1 of 2:") : NULL;
    CHECK(l0 && l1, "overflow: stdout: %.400s", r.out);
    if (l0 && l1) {
        char a[256], b[256];
        sscanf(l0 + 12, "%255[^\n]", a);
        sscanf(l1 + 12, "%255[^\n]", b);
        CHECK(!strcmp(a, b), "overflow: the ranks disagree: '%s' vs '%s'", a, b);
        CHECK(!strcmp(a, " 65536 65536 skip@32768 32768 32768 32768"), "overflow: rank 0 saw '%s'",
              a);
    }
    result_free(&r);
}

static void check_resume(const char *data) {
    const char *full = tpath("full.jsonl"), *part = tpath("part.jsonl"), *save = tpath("ckpt");
#define TRAIN2(...)                                                                                \
    RUN("launch", "--num-processes", "2", "train", "--model", "mlp", "--data", data, "--hidden",   \
        "64", "--batch-size", "16", "--max-steps", "12", "--mixed-precision", "fp16", "--quiet",   \
        __VA_ARGS__)
    result r = TRAIN2("--log", full, "--save", save, "--save-every", "6");
    CHECK(r.status == 0, "resume: the full run: exit %d: %s", r.status, r.err);
    result_free(&r);
    char ck[512];
    snprintf(ck, sizeof ck, "%s/checkpoint-6", save);
    const char *save2 = tpath("ckpt2");
    r = TRAIN2("--log", part, "--resume", ck, "--save", save2);
    CHECK(r.status == 0, "resume: exit %d: %s", r.status, r.err);
    result_free(&r);
    double a[16], b[16];
    long long c;
    int s;
    const int na = read_losses(full, a, 16, &c, &s), nb = read_losses(part, b, 16, &c, &s);
    CHECK(na == 12 && nb == 6, "resume: %d and %d step lines (want 12, 6)", na, nb);
    for (int i = 0; i < 6 && nb == 6 && na == 12; i++)
        CHECK(a[6 + i] == b[i], "resume: step %d loss %.9g, resumed %.9g", 7 + i, a[6 + i], b[i]);
    /* on one process the global batch would differ: refused, one line */
    const char *const env[] = {"MIXPREC_NUM_THREADS=1", NULL};
    result r1 = run_env(env, ARGS("train", "--model", "mlp", "--data", data, "--hidden", "64",
                                  "--batch-size", "16", "--max-steps", "12", "--mixed-precision",
                                  "fp16", "--quiet", "--resume", ck));
    CHECK(r1.status == 2 && r1.err && count_lines(r1.err) == 1 &&
              strstr(r1.err, "trained on 2 processes"),
          "resume on 1 process: exit %d: %s", r1.status, r1.err);
    result_free(&r1);
#undef TRAIN2
}

/* A rank that dies (SIGKILL) or aborts: launch fails, says so, and does not hang. */
static void check_dead_rank(const char *self, const char *data, const char *kase) {
    const double t = seconds();
    result r = RUN("launch", "--num-processes", "2", self, "--worker", kase, data);
    const double el = seconds() - t;
    CHECK(r.status != 0, "%s: launch exited 0", kase);
    CHECK(r.err && strstr(r.err, "mixprec launch: "), "%s: no final line from launch: %.600s", kase,
          r.err);
    CHECK(el < 60, "%s: took %.1f s", kase, el);
    printf("dead rank (%s): launch exit %d after %.2f s\n", kase, r.status, el);
    result_free(&r);
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--worker")) return worker(argv[2], argv[3]);
    (void)expect_usage_env; /* cli_run.h's, for the tests of usage errors */
    char mpi[256];
    mxp_dist_library(mpi, sizeof mpi);
    if (!strcmp(mpi, "none")) SKIP("this build has no MPI (MIXPREC_MPI=OFF)");
    if (system("command -v mpirun >/dev/null 2>&1") != 0)
        SKIP("mpirun is not installed (apt-get install openmpi-bin)");
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) SKIP("cannot find this program's path");
    self[n] = '\0';
    if (tmpdir_make("dist") != 0) SKIP("cannot make a temporary directory");
    /* in a sanitizer build every rank is checked for leaks too, except Open MPI's own */
    char asan[1024];
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%sfast_unwind_on_malloc=0", was ? was : "",
             was && *was ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    setenv("LSAN_OPTIONS",
           "suppressions=" MIXPREC_SOURCE_DIR "/tests/lsan_mpi.supp:print_suppressions=0", 1);
    const char *data = make_set(tmpdir, "idx", 1024, 1024, 256, 0, -1);

    /* mlp: fp32 to 1e-5, then bf16 and fp16 against it */
    const char *mlp[] = {"16", "--model", "mlp", "--data", data, "--hidden", "64", NULL};
    check_equivalent("mlp", mlp, "no", 1e-6, 1e-5, NULL);
    double fp32[64];
    long long c;
    int s;
    read_losses(tpath("one.jsonl"), fp32, 64, &c, &s);
    check_equivalent("mlp", mlp, "bf16", 1e-6, 1.5e-2, fp32);
    check_equivalent("mlp", mlp, "fp16", 1e-6, 5e-3, fp32);

    /* gpt on a small text: fp32 to 1e-5 */
    FILE *f = fopen(tpath("text.txt"), "w");
    for (int i = 0; f && i < 400; i++)
        fprintf(f, "line %d: the quick brown fox jumps over the lazy dog %d\n", i, i * 7 % 13);
    if (f) fclose(f);
    const char *gpt[] = {"4",
                         "--model",
                         "gpt",
                         "--data",
                         tpath("text.txt"),
                         "--n-layer",
                         "1",
                         "--n-head",
                         "2",
                         "--n-embd",
                         "32",
                         "--block-size",
                         "32",
                         "--eval-batches",
                         "2",
                         NULL};
    check_equivalent("gpt", gpt, "no", 1e-6, 1e-5, NULL);

    /* bytes per step: the gradients in the working dtype, plus the loss and found-inf */
    const long long c32 = comm_of("no", data), c16 = comm_of("bf16", data);
    const long long params = g_params, tensors = 6; /* the mlp's 3 weights and 3 biases */
    CHECK(c32 == (params + tensors) * 4 + 16 && c16 == (params + tensors) * 2 + 16,
          "comm bytes fp32 %lld, bf16 %lld (params %lld)", c32, c16, params);
    printf("bytes per step per rank: fp32 %lld, bf16 %lld\n", c32, c16);

    /* the source document's snippet (examples/accelerate_style.c), as the issue runs it */
    result ex = RUN("launch", "--mixed-precision", "bf16", "--num-processes", "2",
                    MIXPREC_BINARY_DIR "/example_accelerate_style", data);
    CHECK(ex.status == 0 && ex.out && strstr(ex.out, "bf16 on 2 process(es): test accuracy"),
          "example: exit %d, stdout %.300s, stderr %.300s", ex.status, ex.out, ex.err);
    result_free(&ex);
    check_overflow(self, data);
    check_resume(data);
    check_dead_rank(self, data, "die");
    check_dead_rank(self, data, "fail");
    tmpdir_remove();
    return check_exit("test_dist");
}
