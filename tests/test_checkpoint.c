/*
 * test_checkpoint.c - checkpoints through the library: exact resume and the
 * files' hard inputs.
 *
 * Exact resume: a run of N+M steps that saves along the way, and a second
 * run resumed from its step-N checkpoint, must report the same loss and
 * loss scale at every step after N (compared as doubles, bit for bit) and
 * write byte-identical weights and optimizer state at the end, in every
 * precision mode, with the dynamic loss scale between two growths and after
 * overflows, with gradient accumulation, dropout, SGD and AdamW, mid-epoch
 * and at an epoch's end.
 *
 * Hard inputs: config.json, model.safetensors and training_state.safetensors
 * that are damaged, of another model, optimizer or format version each give
 * one error naming the file, never a crash; finding and rotating checkpoints.
 */
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mixprec.h"
#include "test_util.h"
#include "tiny_idx.h"

static char root[] = "/tmp/mixprec_ckpt_XXXXXX";
static const char *data_dir;

/* ---- a run, with its per-step trace ------------------------------------------------ */

typedef struct trace {
    int64_t n;
    int64_t step[256];
    double loss[256];
    float scale[256];
    int skipped[256];
} trace;

static void on_event(const mxp_train_event *ev, void *user) {
    trace *t = user;
    if (ev->kind != MXP_TRAIN_EVENT_STEP || t->n == 256) return;
    t->step[t->n] = ev->step;
    t->loss[t->n] = ev->loss;
    t->scale[t->n] = ev->res.loss_scale;
    t->skipped[t->n] = ev->res.skipped;
    t->n++;
}

/* run the trainer with kv = {key, value, ..., NULL} on top of small defaults */
static mxp_status train(const char *const *kv, trace *t, mxp_train_summary *s) {
    mxp_trainer_args a;
    mxp_trainer_args_default(&a);
    const char *base[] = {
        "data",        data_dir, "model", "mlp",          "hidden", "32",      "batch-size",
        "16",          "epochs", "2",     "warmup-steps", "3",      "threads", "2",
        "stats-every", "0",      NULL};
    for (int i = 0; base[i]; i += 2)
        if (mxp_trainer_args_set(&a, base[i], base[i + 1]) != MXP_OK) return MXP_ERR_INVALID_ARG;
    for (int i = 0; kv[i]; i += 2) {
        mxp_status st = mxp_trainer_args_set(&a, kv[i], kv[i + 1]);
        if (st != MXP_OK) return st;
    }
    memset(t, 0, sizeof *t);
    return mxp_trainer_run(&a, on_event, t, s);
}

/* 1 when dir_a/file and dir_b/file have the same bytes */
static int same_file(const char *dir_a, const char *dir_b, const char *file) {
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/%s", dir_a, file);
    snprintf(pb, sizeof pb, "%s/%s", dir_b, file);
    size_t na = 0, nb = 0;
    unsigned char *a = file_bytes(pa, &na), *b = file_bytes(pb, &nb);
    const int same = a && b && na == nb && memcmp(a, b, na) == 0;
    free(a);
    free(b);
    return same;
}

/* ---- exact resume ------------------------------------------------------------------ */

typedef struct resume_case {
    const char *name;
    const char *kv[24]; /* the run's settings, NULL-terminated */
    int64_t save_every;
    int64_t resume_at[3]; /* checkpoints to resume from, 0-terminated */
} resume_case;

static void check_state(const char *what, const char *dir, int want_mid_growth) {
    mxp_model_t *m = NULL;
    mxp_checkpoint_meta meta;
    CHECK(mxp_checkpoint_load(dir, &m, &meta) == MXP_OK, "%s: load %s: %s", what, dir,
          mxp_last_error());
    CHECK(meta.have_state && meta.have_args && meta.format == MXP_CHECKPOINT_FORMAT,
          "%s: state %d args %d format %d", what, meta.have_state, meta.have_args, meta.format);
    if (want_mid_growth) {
        const mxp_scaler *sc = &meta.state.accel.scaler;
        CHECK(sc->growth_tracker > 0 && sc->skipped > 0 && sc->scale < 1e9f,
              "%s: the checkpoint should be between two growths after overflows: tracker %lld, "
              "skipped %lld, scale %g",
              what, (long long)sc->growth_tracker, (long long)sc->skipped, (double)sc->scale);
    }
    mxp_model_free(m);
}

static void test_resume(const resume_case *c) {
    char full[600], part[600];
    snprintf(full, sizeof full, "%s/%s_full", root, c->name);
    char every[32];
    snprintf(every, sizeof every, "%lld", (long long)c->save_every);
    const char *kv[40];
    int n = 0;
    for (int i = 0; c->kv[i]; i++) kv[n++] = c->kv[i];
    kv[n++] = "save-every";
    kv[n++] = every;
    kv[n++] = "save";
    kv[n++] = full;
    kv[n] = NULL;
    static trace ta, tb;
    mxp_train_summary sa, sb;
    mxp_status st = train(kv, &ta, &sa);
    CHECK(st == MXP_OK, "%s: full run: %s", c->name, mxp_last_error());
    if (st != MXP_OK) return;
    char final_a[700];
    snprintf(final_a, sizeof final_a, "%s/checkpoint-%lld", full, (long long)sa.steps);
    for (int r = 0; c->resume_at[r]; r++) {
        const int64_t at = c->resume_at[r];
        char from[700];
        snprintf(from, sizeof from, "%s/checkpoint-%lld", full, (long long)at);
        snprintf(part, sizeof part, "%s/%s_from%lld", root, c->name, (long long)at);
        check_state(c->name, from, strstr(c->name, "growth") != NULL);
        kv[n - 1] = part; /* save elsewhere */
        kv[n] = "resume";
        kv[n + 1] = from;
        kv[n + 2] = NULL;
        st = train(kv, &tb, &sb);
        kv[n] = NULL;
        CHECK(st == MXP_OK, "%s from %lld: %s", c->name, (long long)at, mxp_last_error());
        if (st != MXP_OK) continue;
        CHECK(sb.steps == sa.steps && sb.first_step == at,
              "%s from %lld: steps %lld/%lld first %lld", c->name, (long long)at,
              (long long)sb.steps, (long long)sa.steps, (long long)sb.first_step);
        CHECK(tb.n == ta.n - at, "%s from %lld: %lld steps after resume, want %lld", c->name,
              (long long)at, (long long)tb.n, (long long)(ta.n - at));
        int bad = 0;
        for (int64_t i = 0; i < tb.n && i + at < ta.n; i++) {
            const int64_t j = i + at;
            if (tb.step[i] != ta.step[j] || tb.loss[i] != ta.loss[j] ||
                tb.scale[i] != ta.scale[j] || tb.skipped[i] != ta.skipped[j]) {
                if (bad++ < 3)
                    CHECK(0,
                          "%s from %lld: step %lld: loss %.17g scale %g, uninterrupted %.17g "
                          "scale %g",
                          c->name, (long long)at, (long long)tb.step[i], tb.loss[i],
                          (double)tb.scale[i], ta.loss[j], (double)ta.scale[j]);
            }
        }
        CHECK(bad == 0, "%s from %lld: %d steps differ", c->name, (long long)at, bad);
        CHECK(sb.test_loss == sa.test_loss && sb.final_loss_scale == sa.final_loss_scale &&
                  sb.skipped_steps == sa.skipped_steps,
              "%s from %lld: test loss %.17g vs %.17g, scale %g vs %g, skipped %lld vs %lld",
              c->name, (long long)at, sb.test_loss, sa.test_loss, (double)sb.final_loss_scale,
              (double)sa.final_loss_scale, (long long)sb.skipped_steps,
              (long long)sa.skipped_steps);
        char final_b[700];
        snprintf(final_b, sizeof final_b, "%s/checkpoint-%lld", part, (long long)sb.steps);
        CHECK(same_file(final_a, final_b, "model.safetensors"),
              "%s from %lld: final weights differ (%s vs %s)", c->name, (long long)at, final_a,
              final_b);
        CHECK(same_file(final_a, final_b, "training_state.safetensors"),
              "%s from %lld: final optimizer/scaler state differs", c->name, (long long)at);
    }
    printf("%-28s %lld steps, resumed from", c->name, (long long)sa.steps);
    for (int r = 0; c->resume_at[r]; r++) printf(" %lld", (long long)c->resume_at[r]);
    printf(": identical losses and final files (final scale %g, %lld skipped)\n",
           (double)sa.final_loss_scale, (long long)sa.skipped_steps);
}

static void test_exact_resume(void) {
    /* 200 samples, batch 16: 13 micro-batches an epoch (the last one short), 2 epochs */
    static const resume_case cases[] = {
        {"fp32_adamw_dropout", {"mixed-precision", "no", "dropout", "0.25", NULL}, 5, {10, 15, 0}},
        {"fp16_growth_overflow",
         {"mixed-precision", "fp16", "init-loss-scale", "1e9", "growth-interval", "4", "grad-clip",
          "0", NULL},
         3,
         {12, 0}},
        {"bf16_accum3",
         {"mixed-precision", "bf16", "grad-accum", "3", "dropout", "0.1", NULL},
         1,
         {3, 5, 0}},
        {"bf16_sgd_no_master",
         {"mixed-precision", "bf16", "master-weights", "off", "optimizer", "sgd", "lr", "0.05",
          NULL},
         7,
         {14, 0}},
        {"fp16_cnn_hysteresis",
         {"mixed-precision", "fp16", "model", "cnn", "hidden", "16", "hysteresis", "2",
          "init-loss-scale", "1e8", "growth-interval", "3", "schedule", "constant", NULL},
         4,
         {8, 0}},
        {"fp32_epoch_end", {"mixed-precision", "no", "optimizer", "sgd", NULL}, 0, {13, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_resume(&cases[i]);

    /* the last step ends a short accumulation cycle at an epoch's end: still saved */
    {
        char out[600], last[700];
        snprintf(out, sizeof out, "%s/accum_last", root);
        const char *kv5[] = {"grad-accum", "3",    "max-steps", "5", "save-every",
                             "3",          "save", out,         NULL};
        static trace t5;
        mxp_train_summary s5;
        CHECK(train(kv5, &t5, &s5) == MXP_OK, "accum last: %s", mxp_last_error());
        snprintf(last, sizeof last, "%s/checkpoint-5", out);
        struct stat sb;
        CHECK(s5.steps == 5 && stat(last, &sb) == 0, "the final state (step 5) was not saved");
    }

    /* a resume may shorten --growth-interval: a tracker already past it grows at once */
    {
        mxp_scaler_config c;
        mxp_scaler_config_default(&c);
        c.growth_interval = 4;
        mxp_scaler sc;
        mxp_scaler_init(&sc, &c);
        sc.growth_tracker = 9;
        CHECK(mxp_scaler_update(&sc, 0) == 0 && sc.scale == 131072.0f && sc.growth_tracker == 0,
              "tracker 9 with interval 4: scale %g tracker %lld", (double)sc.scale,
              (long long)sc.growth_tracker);
    }

    /* the kernels give the same bits for any thread count, so a run saved with 2 threads
     * resumes exactly with 1 (a cnn in bf16: convolution, pooling, dropout) */
    char full[600], from[700], part[600], fa[700], fb[700];
    snprintf(full, sizeof full, "%s/threads_full", root);
    snprintf(part, sizeof part, "%s/threads_part", root);
    const char *kv[] = {"mixed-precision", "bf16", "model", "cnn", "hidden",     "16",
                        "max-steps",       "12",   "save",  full,  "save-every", "6",
                        "threads",         "2",    NULL,    NULL,  NULL};
    static trace ta, tb;
    mxp_train_summary s;
    CHECK(train(kv, &ta, &s) == MXP_OK, "threads: %s", mxp_last_error());
    snprintf(from, sizeof from, "%s/checkpoint-6", full);
    kv[9] = part;
    kv[13] = "1";
    kv[14] = "resume";
    kv[15] = from;
    CHECK(train(kv, &tb, &s) == MXP_OK, "threads resume: %s", mxp_last_error());
    snprintf(fa, sizeof fa, "%s/checkpoint-12", full);
    snprintf(fb, sizeof fb, "%s/checkpoint-12", part);
    CHECK(same_file(fa, fb, "model.safetensors") && same_file(fa, fb, "training_state.safetensors"),
          "saved with 2 threads, resumed with 1: the final files differ");
}

/* ---- hard inputs --------------------------------------------------------------------- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* copy a checkpoint directory's three files */
static void copy_ckpt(const char *from, const char *to) {
    mkdir(to, 0700);
    static const char *const files[] = {"config.json", "model.safetensors",
                                        "training_state.safetensors"};
    for (int i = 0; i < 3; i++) {
        char pa[700], pb[700];
        snprintf(pa, sizeof pa, "%s/%s", from, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", to, files[i]);
        size_t n = 0;
        unsigned char *b = file_bytes(pa, &n);
        if (!b) continue;
        FILE *f = fopen(pb, "wb");
        fwrite(b, 1, n, f);
        fclose(f);
        free(b);
    }
}

/* load dir (and its optimizer state into an AdamW bound to it); expect failure code want
 * with `needle` in the message */
static void expect_load_error(const char *what, const char *dir, mxp_status want,
                              const char *needle) {
    mxp_model_t *m = NULL;
    mxp_checkpoint_meta meta;
    mxp_status st = mxp_checkpoint_load(dir, &m, &meta);
    if (st == MXP_OK) {
        mxp_optim_config oc;
        mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW);
        mxp_optimizer_t *o = NULL;
        mxp_optimizer_create(&o, &oc);
        mxp_optimizer_bind(o, m);
        st = mxp_checkpoint_load_optimizer(dir, o);
        mxp_optimizer_free(o);
        mxp_model_free(m);
    }
    const char *msg = mxp_last_error();
    CHECK(st == want, "%s: status %d, want %d (%s)", what, st, want, msg);
    CHECK(!needle || strstr(msg, needle), "%s: message lacks '%s': %s", what, needle, msg);
    CHECK(!strchr(msg, '\n'), "%s: message is not one line: %s", what, msg);
}

/* replace the first `from` in dir/file with `to` */
static void patch(const char *dir, const char *file, const char *from, const char *to) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    size_t n = 0;
    unsigned char *b = file_bytes(p, &n);
    char *hit = memmem(b, n, from, strlen(from)); /* safetensors start with binary bytes */
    CHECK(hit != NULL, "patch: '%s' not in %s", from, p);
    if (!hit) {
        free(b);
        return;
    }
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, (size_t)(hit - (char *)b), f);
    fputs(to, f);
    fwrite(hit + strlen(from), 1, n - (size_t)(hit - (char *)b) - strlen(from), f);
    fclose(f);
    free(b);
}

static void truncate_file(const char *dir, const char *file, long keep) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    CHECK(truncate(p, keep) == 0, "truncate %s", p);
}

static void test_hard_inputs(void) {
    /* a good checkpoint of an mlp with AdamW state */
    char good_out[600], good[700], bad[700];
    snprintf(good_out, sizeof good_out, "%s/good", root);
    const char *kv[] = {"mixed-precision", "bf16", "max-steps", "3", "save", good_out, NULL};
    trace t;
    mxp_train_summary s;
    CHECK(train(kv, &t, &s) == MXP_OK, "good run: %s", mxp_last_error());
    snprintf(good, sizeof good, "%s/checkpoint-3", good_out);
    expect_load_error("good", good, MXP_OK, NULL);

    int k = 0;
#define CASE(label)                                                                                \
    snprintf(bad, sizeof bad, "%s/bad%02d", root, k++);                                            \
    copy_ckpt(good, bad);                                                                          \
    const char *what = label;

    {
        CASE("newer format");
        patch(bad, "config.json", "\"format\": 2", "\"format\": 99");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "upgrade mixprec");
    }
    {
        CASE("format 0");
        patch(bad, "config.json", "\"format\": 2", "\"format\": 0");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "\"format\"");
    }
    {
        CASE("truncated config");
        truncate_file(bad, "config.json", 40);
        expect_load_error(what, bad, MXP_ERR_FORMAT, "config.json");
    }
    {
        CASE("config not an object");
        write_text(strcat(strcpy((char[800]){0}, bad), "/config.json"), "[1, 2, 3]\n");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "not a JSON object");
    }
    {
        CASE("duplicate key");
        patch(bad, "config.json", "\"format\": 2", "\"format\": 2, \"format\": 2");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "config.json");
    }
    {
        CASE("unknown model");
        patch(bad, "config.json", "\"name\": \"mlp\"", "\"name\": \"resnet\"");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "unknown model");
    }
    {
        CASE("absurd size");
        patch(bad, "config.json", "\"H\": 28", "\"H\": 1099511627776");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "\"H\"");
    }
    {
        CASE("wrong type");
        patch(bad, "config.json", "\"W\": 28", "\"W\": \"28\"");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "\"W\"");
    }
    {
        CASE("another model's weights (config says wider)");
        patch(bad, "config.json", "\"hidden1\": 32", "\"hidden1\": 64");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "model.safetensors");
    }
    {
        CASE("bad training argument");
        patch(bad, "config.json", "\"batch-size\": \"16\"", "\"batch-size\": \"-16\"");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "batch-size");
    }
    {
        CASE("unknown training argument");
        patch(bad, "config.json", "\"batch-size\"", "\"batch-sighs\"");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "batch-sighs");
    }
    {
        CASE("truncated weights");
        truncate_file(bad, "model.safetensors", 300);
        expect_load_error(what, bad, MXP_ERR_FORMAT, "model.safetensors");
    }
    {
        CASE("empty weights");
        truncate_file(bad, "model.safetensors", 0);
        expect_load_error(what, bad, MXP_ERR_FORMAT, "model.safetensors");
    }
    {
        CASE("weights missing");
        char p[800];
        snprintf(p, sizeof p, "%s/model.safetensors", bad);
        unlink(p);
        expect_load_error(what, bad, MXP_ERR_IO, "model.safetensors");
    }
    {
        CASE("state of another kind");
        patch(bad, "training_state.safetensors", "mixprec-training-state",
              "mixprec-training-st8te");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "not a mixprec training state");
    }
    {
        CASE("state counters inconsistent");
        patch(bad, "training_state.safetensors", "\"applied_steps\":\"3\"",
              "\"applied_steps\":\"9\"");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "inconsistent");
    }
    {
        CASE("state counter not a number");
        patch(bad, "training_state.safetensors", "\"epoch\":\"0\"", "\"epoch\":\"x\"");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "epoch");
    }
    {
        CASE("state with a NaN loss scale");
        patch(bad, "training_state.safetensors", "\"loss_scale\":\"1\"", "\"loss_scale\":\"n\"");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "loss scale");
    }
    {
        CASE("state of another optimizer");
        patch(bad, "training_state.safetensors", "\"optimizer\":\"adamw\"",
              "\"optimizer\":\"sgd\"  ");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "optimizer sgd");
    }
    {
        CASE("state with a moment renamed");
        patch(bad, "training_state.safetensors", "optimizer.exp_avg.fc1.weight",
              "optimizer.exp_avg.fc9.weight");
        expect_load_error(what, bad, MXP_ERR_FORMAT, "fc1.weight");
    }
    {
        CASE("truncated state");
        truncate_file(bad, "training_state.safetensors", 500);
        expect_load_error(what, bad, MXP_ERR_FORMAT, "training_state.safetensors");
    }
    {
        CASE("state missing");
        char p[800];
        snprintf(p, sizeof p, "%s/training_state.safetensors", bad);
        unlink(p);
        expect_load_error(what, bad, MXP_ERR_IO, "not resumed");
    }
#undef CASE
}

/* ---- finding and rotating ------------------------------------------------------------ */

static int exists(const char *dir, const char *name) {
    char p[800];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static void test_find_rotate(void) {
    char out[600], found[700], good[700];
    snprintf(out, sizeof out, "%s/good", root);
    snprintf(good, sizeof good, "%s/checkpoint-3", out);
    char rot[600];
    snprintf(rot, sizeof rot, "%s/rot", root);
    mkdir(rot, 0700);
    CHECK(mxp_checkpoint_find(rot, found, sizeof found) == MXP_ERR_IO &&
              strstr(mxp_last_error(), "no checkpoint"),
          "empty dir: %s", mxp_last_error());
    const int steps[] = {5, 40, 7, 100, 12};
    for (int i = 0; i < 5; i++) {
        char d[700];
        snprintf(d, sizeof d, "%s/checkpoint-%d", rot, steps[i]);
        copy_ckpt(good, d);
    }
    char d[700];
    snprintf(d, sizeof d, "%s/checkpoint-900.tmp-1234", rot); /* a killed save's leftover */
    copy_ckpt(good, d);
    snprintf(d, sizeof d, "%s/checkpoint-x", rot);
    copy_ckpt(good, d);
    snprintf(d, sizeof d, "%s/checkpoint-0900", rot); /* not the name of step 900 */
    copy_ckpt(good, d);
    snprintf(d, sizeof d, "%s/checkpoint-500", rot); /* incomplete: no config.json */
    mkdir(d, 0700);
    CHECK(mxp_checkpoint_find(rot, found, sizeof found) == MXP_OK &&
              strstr(found, "/checkpoint-100") && !strstr(found, "checkpoint-1000"),
          "find: %s (%s)", found, mxp_last_error());
    CHECK(mxp_checkpoint_find(good, found, sizeof found) == MXP_OK && !strcmp(found, good),
          "find of a checkpoint itself: %s", found);
    char file[800];
    snprintf(file, sizeof file, "%s/config.json", good);
    CHECK(mxp_checkpoint_find(file, found, sizeof found) == MXP_ERR_IO, "find of a file: %s",
          mxp_last_error());
    CHECK(mxp_checkpoint_rotate(rot, 2) == MXP_OK, "rotate: %s", mxp_last_error());
    CHECK(exists(rot, "checkpoint-100") && exists(rot, "checkpoint-500") &&
              !exists(rot, "checkpoint-40") && !exists(rot, "checkpoint-12") &&
              !exists(rot, "checkpoint-5") && exists(rot, "checkpoint-x"),
          "rotate kept the wrong ones");
    /* pid 1234 is most likely not alive here; if it is, the leftover may stay */
    if (kill(1234, 0) != 0) CHECK(!exists(rot, "checkpoint-900.tmp-1234"), "stale temp kept");
    CHECK(mxp_checkpoint_rotate(rot, 0) == MXP_OK && exists(rot, "checkpoint-100"), "keep all");

    /* saving over an existing checkpoint replaces it whole (an atomic exchange) */
    mxp_model_t *m = NULL;
    mxp_checkpoint_meta meta;
    CHECK(mxp_checkpoint_load(good, &m, &meta) == MXP_OK, "load: %s", mxp_last_error());
    if (!m) return;
    snprintf(d, sizeof d, "%s/checkpoint-100", rot);
    ((float *)m->params[0]->master->data)[0] = 1234.5f;
    CHECK(mxp_checkpoint_save(d, m, NULL, &meta) == MXP_OK, "save over: %s", mxp_last_error());
    mxp_model_free(m);
    m = NULL;
    CHECK(mxp_checkpoint_load(d, &m, &meta) == MXP_OK && !meta.have_state &&
              ((float *)m->params[0]->master->data)[0] == 1234.5f,
          "the replaced checkpoint holds the new weights and no stale state");
    mxp_model_free(m);
    CHECK(exists(rot, "checkpoint-0900"),
          "rotation left checkpoint-0900 (not a step's name) alone");
    CHECK(count_entries(rot) == 4, "no temporaries left after replacing (%d entries)",
          count_entries(rot));
}

/* ---- opened elsewhere ------------------------------------------------------------------ */

extern char **environ;

/* A checkpoint through the official safetensors reader into a torch.nn mlp
 * (tests/reference/check_checkpoint.py): its test loss must be mixprec's. 77: skip. */
static int run_python(const char *python, const char *script) {
    char out[600], dir[700], loss_text[64];
    snprintf(out, sizeof out, "%s/py", root);
    const char *kv[] = {"mixed-precision", "bf16", "max-steps", "6", "save", out, NULL};
    trace t;
    mxp_train_summary s;
    CHECK(train(kv, &t, &s) == MXP_OK, "train: %s", mxp_last_error());
    snprintf(dir, sizeof dir, "%s/checkpoint-6", out);
    mxp_model_t *m = NULL;
    mxp_checkpoint_meta meta;
    mxp_dataset_t *test = NULL;
    double loss = 0, acc = 0;
    mxp_status st = mxp_checkpoint_load(dir, &m, &meta);
    if (st == MXP_OK) st = mxp_dataset_load_idx(&test, data_dir, "test");
    if (st == MXP_OK) st = mxp_dataset_set_norm(test, meta.mean, meta.std);
    if (st == MXP_OK) st = mxp_evaluate(m, test, 64, &loss, &acc); /* fp32 */
    CHECK(st == MXP_OK, "evaluate: %s", mxp_last_error());
    mxp_dataset_free(test);
    mxp_model_free(m);
    snprintf(loss_text, sizeof loss_text, "%.9g", loss);
    char *argv[] = {(char *)python, (char *)script, dir, (char *)data_dir, loss_text, NULL};
    pid_t pid;
    int status = 0;
    if (posix_spawn(&pid, python, NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) != pid) {
        CHECK(0, "cannot run %s", python);
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) return 77;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the checkpoint does not check out",
          script);
    return 0;
}

int main(int argc, char **argv) {
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    data_dir = make_set(root, "data", 200, 200, 48, 0, -1);
    if (argc == 4 && strcmp(argv[1], "--python") == 0) {
        const int rc = run_python(argv[2], argv[3]);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
        if (rc == 77) SKIP("python lacks torch or safetensors");
        return check_exit("test_checkpoint --python");
    }
    test_exact_resume();
    test_hard_inputs();
    test_find_rotate();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (check_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return check_exit("test_checkpoint");
}
