/*
 * test_gpt_cli.c - `mixprec train --model gpt`, `eval` and `generate` end to
 * end on a small text file and on llm.c token shards: every precision trains
 * and lowers the loss, the log carries tokens/s and validation events, a
 * resumed run ends byte-identical to an uninterrupted one, generation is
 * reproducible from its seed, and bad settings give one line.
 */
#include <stdio.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "mixprec.h"
#include "test_util.h"

static char root[] = "/tmp/mixprec_gpt_cli_XXXXXX";
static char text_path[600], shard_dir[600];

/* tiny shapes: a step is a few milliseconds */
#define TINY                                                                                       \
    "train", "--model", "gpt", "--n-layer", "2", "--n-head", "2", "--n-embd", "32",                \
        "--block-size", "32", "--batch-size", "4", "--threads", "1", "--warmup-steps", "5",        \
        "--lr", "3e-3", "--quiet"

/* ~40 KB of English-like text with a small alphabet: a pattern a tiny model learns fast */
static void write_text(void) {
    static const char *words[] = {"the",  "cat", "sat",  "on",   "mat",  "and",
                                  "a",    "dog", "ran",  "to",   "see",  "it",
                                  "when", "sun", "rose", "over", "hill", "quiet"};
    snprintf(text_path, sizeof text_path, "%s/corpus.txt", root);
    FILE *f = fopen(text_path, "w");
    uint32_t r[4];
    for (int i = 0; i < 8000; i++) {
        if (i % 4 == 0) mxp_philox4x32(5, (uint64_t)i / 4, r);
        fputs(words[r[i % 4] % 18], f);
        fputc(i % 11 == 10 ? '\n' : ' ', f);
    }
    fclose(f);
}

/* two llm.c shards (train, val) of ids < 300 following a fixed cycle */
static void write_shards(void) {
    snprintf(shard_dir, sizeof shard_dir, "%s/shards", root);
    mkdir(shard_dir, 0777);
    const int64_t n = 6000;
    uint16_t *tok = malloc((size_t)n * sizeof *tok);
    for (int64_t i = 0; i < n; i++) tok[i] = (uint16_t)((i * 7) % 300);
    char p[700];
    snprintf(p, sizeof p, "%s/toy_train_000001.bin", shard_dir);
    CHECK(mxp_shard_write(p, tok, n) == MXP_OK, "write %s: %s", p, mxp_last_error());
    snprintf(p, sizeof p, "%s/toy_val_000000.bin", shard_dir);
    CHECK(mxp_shard_write(p, tok, n / 4) == MXP_OK, "write %s: %s", p, mxp_last_error());
    free(tok);
}

static char *read_text(const char *path) {
    size_t n = 0;
    char *t = (char *)file_bytes(path, &n);
    if (t) t[n] = '\0';
    return t;
}

/* the "loss" of the first and the last step line of a log */
static void first_last_loss(const char *log, double *first, double *last) {
    *first = *last = -1;
    char *t = read_text(log);
    for (char *p = t; p && (p = strstr(p, "\"event\":\"step\"")); p++) {
        char *l = strstr(p, "\"loss\":");
        if (!l) break;
        const double v = atof(l + 7);
        if (*first < 0) *first = v;
        *last = v;
    }
    free(t);
}

static void test_precisions(void) {
    const char *modes[] = {"no", "bf16", "fp16"};
    for (int i = 0; i < 3; i++) {
        char log[700], out[700];
        snprintf(log, sizeof log, "%s/%s.jsonl", root, modes[i]);
        snprintf(out, sizeof out, "%s/run-%s", root, modes[i]);
        result r =
            RUN(TINY, "--data", text_path, "--mixed-precision", modes[i], "--max-steps", "60",
                "--eval-every", "20", "--eval-batches", "4", "--log", log, "--save", out);
        CHECK(r.status == 0 && strstr(r.out, "val loss") && strstr(r.out, "tokens/s"),
              "%s: exit %d: %s %s", modes[i], r.status, r.out, r.err);
        result_free(&r);
        double first, last;
        first_last_loss(log, &first, &last);
        /* from ln(vocab) ~ 3.0 to well below it: the model learns the words */
        CHECK(first > 2.5 && last > 0 && last < first - 0.7, "%s: loss %g -> %g", modes[i], first,
              last);
        char *t = read_text(log);
        CHECK(t && strstr(t, "\"tokens_per_s\":") && strstr(t, "\"split\":\"val\"") &&
                  strstr(t, "\"event\":\"eval\",\"step\":20,") && strstr(t, "\"val_loss\":"),
              "%s: the log: %.300s", modes[i], t ? t : "");
        free(t);
        /* the checkpoint names follow GPT-2 and the vocabulary is stored */
        char p[800];
        snprintf(p, sizeof p, "%s/checkpoint-60/config.json", out);
        t = read_text(p);
        CHECK(t && strstr(t, "\"vocab\"") && strstr(t, "\"n_layer\": 2"), "config: %.300s",
              t ? t : "");
        free(t);
        r = RUN("show", out);
        CHECK(r.status == 0 && strstr(r.out, "h.1.attn.c_attn.weight") &&
                  strstr(r.out, "wte.weight") && strstr(r.out, "ln_f.bias"),
              "show: %.400s %s", r.out, r.err);
        result_free(&r);
    }
}

static void test_resume_exact(void) {
    char a[700], b[700], pa[800], pb[800];
    snprintf(a, sizeof a, "%s/straight", root);
    snprintf(b, sizeof b, "%s/resumed", root);
    result r = RUN(TINY, "--data", text_path, "--mixed-precision", "bf16", "--max-steps", "24",
                   "--save", a, "--save-every", "10");
    CHECK(r.status == 0, "straight: %s", r.err);
    result_free(&r);
    snprintf(pa, sizeof pa, "%s/checkpoint-10", a);
    r = RUN(TINY, "--data", text_path, "--mixed-precision", "bf16", "--max-steps", "24", "--save",
            b, "--save-every", "10", "--resume", pa);
    CHECK(r.status == 0, "resumed: %s", r.err);
    result_free(&r);
    const char *files[] = {"model.safetensors", "training_state.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(pa, sizeof pa, "%s/checkpoint-24/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/checkpoint-24/%s", b, files[i]);
        size_t na = 0, nb = 0;
        unsigned char *x = file_bytes(pa, &na), *y = file_bytes(pb, &nb);
        CHECK(x && y && na == nb && memcmp(x, y, na) == 0, "%s differs after resume", files[i]);
        free(x);
        free(y);
    }
    /* a different model shape, or another split of the text, cannot resume it */
    EXPECT_USAGE(TINY, "--data", text_path, "--mixed-precision", "bf16", "--n-embd", "64",
                 "--resume", a);
    EXPECT_USAGE(TINY, "--data", text_path, "--mixed-precision", "bf16", "--val-split", "0.2",
                 "--resume", a);
    result r2 = RUN(TINY, "--data", text_path, "--mixed-precision", "bf16", "--val-split", "0.2",
                    "--resume", a);
    CHECK(strstr(r2.err, "--val-split 0.1") && strstr(r2.err, "0.2"), "names the split: %s",
          r2.err);
    result_free(&r2);
}

static void test_generate(void) {
    char ck[700];
    snprintf(ck, sizeof ck, "%s/run-no", root);
    result r1 =
        RUN("generate", "--checkpoint", ck, "--prompt", "the ", "--tokens", "60", "--seed", "3");
    result r2 =
        RUN("generate", "--checkpoint", ck, "--prompt", "the ", "--tokens", "60", "--seed", "3");
    result r3 = RUN("generate", "--checkpoint", ck, "--prompt", "the ", "--tokens", "60", "--seed",
                    "4", "--temperature", "1.5");
    CHECK(r1.status == 0 && strncmp(r1.out, "the ", 4) == 0, "generate: %s %s", r1.out, r1.err);
    CHECK(r1.out && strlen(r1.out) >= 64 && strlen(r1.out) <= 65, "64 bytes + newline: %zu",
          r1.out ? strlen(r1.out) : 0);
    CHECK(r1.out && r2.out && strcmp(r1.out, r2.out) == 0, "same seed, same text");
    CHECK(r1.out && r3.out && strcmp(r1.out, r3.out) != 0, "another seed, other text");
    result_free(&r1);
    result_free(&r2);
    result_free(&r3);
    r1 = RUN("generate", "--checkpoint", ck, "--prompt", "the ", "--tokens", "40", "--temperature",
             "0", "--seed", "1");
    r2 = RUN("generate", "--checkpoint", ck, "--prompt", "the ", "--tokens", "40", "--temperature",
             "0", "--seed", "2", "--top-k", "3");
    CHECK(r1.status == 0 && r1.out && r2.out && strcmp(r1.out, r2.out) == 0,
          "greedy ignores seed and top-k: %s | %s", r1.out, r2.out);
    result_free(&r1);
    result_free(&r2);
    r1 = RUN("eval", "--checkpoint", ck);
    CHECK(r1.status == 0 && strstr(r1.out, "val loss"), "eval: %s %s", r1.out, r1.err);
    result_free(&r1);
    EXPECT_USAGE("eval", "--checkpoint", ck, "--data", shard_dir);   /* text model, shards */
    EXPECT_USAGE("generate", "--checkpoint", ck, "--prompt", "THE"); /* not in the vocabulary */
    EXPECT_USAGE("generate", "--checkpoint", ck, "--temperature", "-1");
    EXPECT_USAGE("generate", "--checkpoint", ck, "--tokens", "x");
    EXPECT_USAGE("generate", "--checkpoint", root); /* holds no checkpoint */
    EXPECT_USAGE("generate");
}

static void test_shards(void) {
    char out[700];
    snprintf(out, sizeof out, "%s/run-shards", root);
    result r = RUN(TINY, "--data", shard_dir, "--mixed-precision", "bf16", "--max-steps", "10",
                   "--save", out, "--eval-batches", "2");
    CHECK(r.status == 0 && strstr(r.out, "val loss"), "shards: %s %s", r.out, r.err);
    result_free(&r);
    r = RUN("generate", "--checkpoint", out, "--prompt", "7,14,21", "--tokens", "5");
    CHECK(r.status == 0 && strncmp(r.out, "7 14 21 ", 8) == 0, "ids in, ids out: %s %s", r.out,
          r.err);
    result_free(&r);
    EXPECT_USAGE("generate", "--checkpoint", out, "--prompt", "70000");
}

static void test_bad_settings(void) {
    EXPECT_USAGE(TINY, "--data", text_path, "--n-head", "3"); /* 32 % 3 */
    EXPECT_USAGE(TINY, "--data", text_path, "--block-size", "100000");
    EXPECT_USAGE(TINY, "--data", "/nonexistent/corpus.txt");
    EXPECT_USAGE(TINY, "--data", text_path, "--val-split", "0.9");
    EXPECT_USAGE(TINY, "--data", text_path, "--n-layer", "0");
    EXPECT_USAGE(TINY, "--data", "fashion-mnist"); /* images are not text */
    /* nor is a directory of IDX files read as fortune files */
    char idx_dir[700], f[800];
    snprintf(idx_dir, sizeof idx_dir, "%s/idx", root);
    mkdir(idx_dir, 0777);
    snprintf(f, sizeof f, "%s/train-images-idx3-ubyte.gz", idx_dir);
    FILE *fp = fopen(f, "w");
    for (int i = 0; fp && i < 5000; i++) fputc(i * 7, fp);
    if (fp) fclose(fp);
    EXPECT_USAGE(TINY, "--data", idx_dir);
}

int main(void) {
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    write_text();
    write_shards();
    test_precisions();
    test_resume_exact();
    test_generate();
    test_shards();
    test_bad_settings();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (check_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return check_exit("test_gpt_cli");
}
