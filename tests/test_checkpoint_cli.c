/*
 * test_checkpoint_cli.c - what `mixprec train --save/--resume` promises when
 * things go wrong, end to end:
 *  - SIGKILL: a training process saving every step is killed at random times,
 *    again and again; after each kill the newest checkpoint loads, and the run
 *    resumed from it after every kill ends with weights bit-identical to an
 *    uninterrupted run's;
 *  - a full disk (a file-size limit, and where the machine allows it a real
 *    tmpfs of a few hundred KB) fails the save with one line that names the
 *    intact previous checkpoint, which still loads and resumes;
 *  - divergence in fp32 and bf16 (a non-finite loss) and in fp16 (the loss
 *    scale at its floor) stops the run naming the step, and the last good
 *    checkpoint stays intact with finite weights;
 *  - --keep-last, the resume event in the log, and every resume that cannot be
 *    exact (another model, batch size, precision, optimizer, an inference-only
 *    or missing checkpoint) refused with one line and exit 2.
 */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "mixprec.h"
#include "test_util.h"
#include "tiny_idx.h"

static char root[] = "/tmp/mixprec_ckpt_cli_XXXXXX";
static const char *data_dir;

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* number of entries of dir whose name contains `part` */
static int count_named(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static int same_bytes(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *x = file_bytes(a, &na), *y = file_bytes(b, &nb);
    const int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Load the newest checkpoint under out completely (weights, config, optimizer state of
 * `optim`); 1 if it loads and every weight is finite. *step gets its step. */
static int loads(const char *out, const char *optim, int64_t *step) {
    char dir[1024];
    if (mxp_checkpoint_find(out, dir, sizeof dir) != MXP_OK) return 0;
    mxp_model_t *m = NULL;
    mxp_checkpoint_meta meta;
    if (mxp_checkpoint_load(dir, &m, &meta) != MXP_OK) return 0;
    mxp_optim_config oc;
    mxp_optim_kind kind;
    mxp_optim_parse(optim, &kind);
    mxp_optim_config_default(&oc, kind);
    mxp_optimizer_t *o = NULL;
    int ok = mxp_optimizer_create(&o, &oc) == MXP_OK && mxp_optimizer_bind(o, m) == MXP_OK &&
             mxp_checkpoint_load_optimizer(dir, o) == MXP_OK && meta.have_state;
    for (int i = 0; ok && i < m->n_params; i++) {
        const float *w = m->params[i]->master->data;
        for (int64_t j = 0; j < mxp_tensor_numel(m->params[i]->master); j++)
            if (!isfinite(w[j])) ok = 0;
    }
    if (step) *step = meta.state.accel.steps;
    mxp_optimizer_free(o);
    mxp_model_free(m);
    return ok;
}

/* ---- SIGKILL at random points ------------------------------------------------------- */

/* start `mixprec argv...` with output discarded; its pid */
static pid_t spawn_quiet(const char *const *args) {
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)binary;
    for (int i = 0; args[i] && argc < 62; i++) argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    if (posix_spawn(&pid, binary, &fa, NULL, argv, environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static void test_sigkill(void) {
    char ref[600], out[600], ref_final[700], out_final[700];
    snprintf(ref, sizeof ref, "%s/kill_ref", root);
    snprintf(out, sizeof out, "%s/kill_out", root);
    /* the default mlp (535k parameters): a checkpoint is 6.4 MB written and fsync'd at every
     * step (~11 ms here), so most of the run's time is spent saving. A kill comes 15-155 ms
     * after the start: in start-up, in a step or in a save; 40 kills cover about 250 of the
     * 400 steps and a last run without a kill finishes */
#define KILL_ARGS                                                                                  \
    "train", "--data", data_dir, "--model", "mlp", "--mixed-precision", "fp16", "--batch-size",    \
        "16", "--epochs", "20", "--max-steps", "400", "--growth-interval", "3", "--dropout",       \
        "0.2", "--threads", "1", "--quiet"
    result r = RUN(KILL_ARGS, "--save", ref);
    CHECK(r.status == 0, "reference run: %s", r.err);
    result_free(&r);

    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    int kills = 0, mid_save = 0, resumed = 0, no_ckpt = 0;
    for (int i = 0; i < 40; i++) {
        int64_t step = 0;
        const int have = exists(out) && loads(out, "adamw", &step);
        CHECK(have || !exists(out) || count_named(out, "checkpoint-") == count_named(out, ".tmp-"),
              "kill %d: %s holds checkpoints but none loads", i, out);
        if (have && step >= 400) break; /* finished between two kills */
        pid_t pid = have ? spawn_quiet(ARGS(KILL_ARGS, "--save", out, "--save-every", "1",
                                            "--keep-last", "2", "--resume", out))
                         : spawn_quiet(ARGS(KILL_ARGS, "--save", out, "--save-every", "1",
                                            "--keep-last", "2"));
        CHECK(pid > 0, "spawn");
        if (pid <= 0) return;
        resumed += have;
        no_ckpt += !have;
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        const long ms = 15 + (long)((rng >> 33) % 140); /* start-up, training, saving */
        struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&nap, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st)) {
            kills++;
            mid_save += count_named(out, ".tmp-") > 0 || count_named(out, ".del-") > 0;
        }
    }
    /* finish without a kill: the weights must be those of the uninterrupted run */
    const int have = exists(out) && loads(out, "adamw", NULL);
    r = have ? RUN(KILL_ARGS, "--save", out, "--save-every", "1", "--keep-last", "2", "--resume",
                   out)
             : RUN(KILL_ARGS, "--save", out, "--save-every", "1", "--keep-last", "2");
    CHECK(r.status == 0, "final resume: %s", r.err);
    result_free(&r);
    snprintf(ref_final, sizeof ref_final, "%s/checkpoint-400/model.safetensors", ref);
    snprintf(out_final, sizeof out_final, "%s/checkpoint-400/model.safetensors", out);
    CHECK(same_bytes(ref_final, out_final),
          "after %d kills the final weights differ from the uninterrupted run's", kills);
    snprintf(ref_final, sizeof ref_final, "%s/checkpoint-400/training_state.safetensors", ref);
    snprintf(out_final, sizeof out_final, "%s/checkpoint-400/training_state.safetensors", out);
    CHECK(same_bytes(ref_final, out_final), "after %d kills the final state differs", kills);
    CHECK(kills >= 30, "only %d kills landed", kills);
    CHECK(count_named(out, "checkpoint-") == 2, "--keep-last 2 left %d entries",
          count_named(out, "checkpoint-"));
    printf("SIGKILL: %d kills (%d with a save in flight, %d resumed, %d before any checkpoint); "
           "final weights and state identical to the uninterrupted run\n",
           kills, mid_save, resumed, no_ckpt);
#undef KILL_ARGS
}

/* ---- a full disk --------------------------------------------------------------------- */

#define SMALL_ARGS                                                                                 \
    "train", "--data", data_dir, "--model", "mlp", "--hidden", "32", "--batch-size", "16",         \
        "--epochs", "2", "--threads", "1", "--quiet"

static void test_disk_full_rlimit(void) {
    char out[600], ck[700];
    snprintf(out, sizeof out, "%s/fsize", root);
    result r = RUN(SMALL_ARGS, "--max-steps", "4", "--save", out, "--save-every", "2");
    CHECK(r.status == 0, "first run: %s", r.err);
    result_free(&r);
    /* files may not grow past 64 KB: the next checkpoint's weights (147 KB) cannot be written */
    struct rlimit old, lim = {64 * 1024, 64 * 1024};
    getrlimit(RLIMIT_FSIZE, &old);
    lim.rlim_max = old.rlim_max;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead */
    setrlimit(RLIMIT_FSIZE, &lim);
    r = RUN(SMALL_ARGS, "--max-steps", "8", "--save", out, "--save-every", "2", "--resume", out);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    snprintf(ck, sizeof ck, "%s/checkpoint-4", out);
    CHECK(r.status != 0 && count_lines(r.err) == 1 && strstr(r.err, "checkpoint-6") &&
              strstr(r.err, "File too large") && strstr(r.err, ck) && strstr(r.err, "intact"),
          "a failed save names the error and the intact checkpoint: exit %d: %s", r.status, r.err);
    result_free(&r);
    int64_t step = 0;
    CHECK(loads(out, "adamw", &step) && step == 4, "the previous checkpoint loads (step %lld)",
          (long long)step);
    CHECK(count_named(out, ".tmp-") == 0 &&
              !exists(strcat(strcpy((char[800]){0}, out), "/checkpoint-6")),
          "no partial checkpoint left behind");
    r = RUN(SMALL_ARGS, "--max-steps", "8", "--save", out, "--save-every", "2", "--resume", out);
    CHECK(r.status == 0 && loads(out, "adamw", &step) && step == 8,
          "resumed after space came back: %s", r.err);
    result_free(&r);
}

/* a real "No space left on device": a 700 KB tmpfs in a private mount namespace holds one
 * checkpoint (441 KB) but not two. Needs unshare (root or user namespaces); else skipped. */
static void test_disk_full_tmpfs(void) {
    char script[4096], mnt[600], errf[600];
    snprintf(mnt, sizeof mnt, "%s/tmpfs", root);
    snprintf(errf, sizeof errf, "%s/tmpfs.err", root);
    mkdir(mnt, 0700);
    snprintf(script, sizeof script,
             "unshare -rm sh -c 'mount -t tmpfs -o size=700k tmpfs %s || exit 77; "
             "%s train --data %s --model mlp --hidden 32 --batch-size 16 --epochs 2 --threads 1 "
             "--quiet --max-steps 6 --save %s/out --save-every 2 2>%s; echo train=$?; "
             "ls %s/out; %s eval --checkpoint %s/out --data %s' 2>/dev/null",
             mnt, binary, data_dir, mnt, errf, mnt, binary, mnt, data_dir);
    FILE *p = popen(script, "r");
    char text[8192] = "";
    size_t n = p ? fread(text, 1, sizeof text - 1, p) : 0;
    text[n] = '\0';
    const int rc = p ? pclose(p) : -1;
    if (!strstr(text, "train=")) {
        printf("disk full (tmpfs): skipped, no private mount namespace here (exit %d)\n", rc);
        return;
    }
    size_t en = 0;
    char *err = (char *)file_bytes(errf, &en);
    if (err) err[en] = '\0';
    CHECK(!strstr(text, "train=0") && err && count_lines(err) == 1 &&
              strstr(err, "No space left on device") && strstr(err, "checkpoint-2 is intact"),
          "tmpfs full: %s / %s", text, err ? err : "");
    CHECK(strstr(text, "checkpoint-2") && !strstr(text, "checkpoint-4") && !strstr(text, ".tmp-") &&
              strstr(text, "test accuracy"),
          "after ENOSPC the previous checkpoint is alone and evaluates: %s", text);
    printf("disk full (tmpfs 700 KB): %s", err ? err : "");
    free(err);
}

/* ---- divergence ------------------------------------------------------------------------ */

static void test_divergence(void) {
    static const char *const modes[] = {"no", "bf16", "fp16"};
    for (int i = 0; i < 3; i++) {
        char out[600];
        snprintf(out, sizeof out, "%s/div_%s", root, modes[i]);
        /* an absurd learning rate: weights explode after the first steps */
        result r = RUN(SMALL_ARGS, "--mixed-precision", modes[i], "--optimizer", "sgd", "--lr",
                       "1e30", "--grad-clip", "0", "--warmup-steps", "0", "--schedule", "constant",
                       "--init-loss-scale", "16", "--save", out, "--save-every", "1");
        const char *want = i < 2 ? "diverged" : "minimum";
        CHECK(r.status == 1 && count_lines(r.err) == 1 && strstr(r.err, "step ") &&
                  strstr(r.err, want) && strstr(r.err, "is intact"),
              "%s divergence: exit %d: %s", modes[i], r.status, r.err);
        int64_t step = -1;
        CHECK(loads(out, "sgd", &step), "%s: the last good checkpoint loads with finite weights",
              modes[i]);
        char named[64];
        snprintf(named, sizeof named, "checkpoint-%lld is intact", (long long)step);
        CHECK(strstr(r.err, named), "%s: the message names the newest checkpoint (%s): %s",
              modes[i], named, r.err);
        printf("divergence %-4s: %s", modes[i], r.err);
        result_free(&r);
    }
}

/* ---- resume: the log, --keep-last, and what cannot be resumed -------------------------- */

static void test_resume_cli(void) {
    char out[600], log[600], ck[700];
    snprintf(out, sizeof out, "%s/cli/runs", root); /* --save makes missing parents */
    snprintf(log, sizeof log, "%s/cli.jsonl", root);
    result r = RUN(SMALL_ARGS, "--mixed-precision", "bf16", "--max-steps", "5", "--save", out,
                   "--save-every", "1", "--keep-last", "2", "--log", log);
    CHECK(r.status == 0 && strstr(r.out, "checkpoint ") && strstr(r.out, "checkpoint-5"),
          "save: %s %s", r.out, r.err);
    result_free(&r);
    CHECK(count_named(out, "checkpoint-") == 2 &&
              exists(strcat(strcpy((char[800]){0}, out), "/checkpoint-4")),
          "--keep-last 2 keeps 4 and 5");
    r = RUN(SMALL_ARGS, "--mixed-precision", "bf16", "--max-steps", "7", "--save", out,
            "--save-every", "1", "--log", log, "--resume", out);
    CHECK(r.status == 0 && strstr(r.out, "steps 7"), "resume to 7: %s %s", r.out, r.err);
    result_free(&r);
    size_t n = 0;
    char *text = (char *)file_bytes(log, &n);
    if (text) text[n] = '\0';
    CHECK(text && strstr(text, "\"event\":\"resume\",\"step\":5") &&
              strstr(text, "\"event\":\"step\",\"step\":6") &&
              strstr(text, "\"event\":\"step\",\"step\":1,"),
          "the log is appended to, with a resume event: %.400s", text ? text : "");
    free(text);
    /* eval and the library find the newest checkpoint of an output directory */
    r = RUN("eval", "--checkpoint", out, "--data", data_dir);
    CHECK(r.status == 0 && strstr(r.out, "test accuracy"), "eval of an output dir: %s", r.err);
    result_free(&r);

    /* a fresh run into a directory holding checkpoints is refused: its checkpoints would mix
     * with the earlier run's */
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--save", out);
    r = RUN(SMALL_ARGS, "--mixed-precision", "bf16", "--save", out);
    CHECK(strstr(r.err, "already holds checkpoints") && strstr(r.err, "--resume"),
          "fresh run into a used --save: %s", r.err);
    result_free(&r);

    /* going back to an older checkpoint in the same directory would leave the abandoned later
     * ones outranking this branch's saves: refused; a new directory is fine */
    char older[700], branch[700];
    snprintf(older, sizeof older, "%s/checkpoint-5", out);
    snprintf(branch, sizeof branch, "%s/cli/branch", root);
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--save", out, "--resume", older);
    r = RUN(SMALL_ARGS, "--mixed-precision", "bf16", "--max-steps", "6", "--save", branch,
            "--resume", older);
    CHECK(r.status == 0 && strstr(r.out, "checkpoint-6"), "a branch in a new directory: %s", r.err);
    result_free(&r);

    /* what cannot be resumed exactly */
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out, "--model", "cnn");
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out, "--hidden", "64");
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "fp16", "--resume", out);
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out, "--batch-size", "8");
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out, "--optimizer", "sgd");
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out, "--seed", "7");
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out, "--master-weights",
                 "off");
    r = RUN(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out, "--batch-size", "8");
    CHECK(strstr(r.err, "batch-size"), "names the setting: %s", r.err);
    result_free(&r);
    EXPECT_USAGE(SMALL_ARGS, "--resume", root); /* no checkpoint in it */
    EXPECT_USAGE(SMALL_ARGS, "--resume", "/nonexistent/dir");
    snprintf(ck, sizeof ck, "%s/checkpoint-7/training_state.safetensors", out);
    CHECK(unlink(ck) == 0, "remove %s", ck);
    r = RUN(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out);
    CHECK(r.status == 2 && strstr(r.err, "no training state"), "inference-only: %s", r.err);
    result_free(&r);
    EXPECT_USAGE(SMALL_ARGS, "--mixed-precision", "bf16", "--resume", out);
}

int main(void) {
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    data_dir = make_set(root, "data", 320, 320, 48, 0, -1);
    test_resume_cli();
    test_divergence();
    test_disk_full_rlimit();
    test_disk_full_tmpfs();
    test_sigkill();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (check_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return check_exit("test_checkpoint_cli");
}
