/*
 * test_train_cli.c - `mixprec train` and `mixprec eval` end to end on tiny
 * IDX files written here: a run in each precision writes the JSON lines of
 * DESIGN.md "Metrics" and a checkpoint that eval reads back; and every bad
 * input (missing dataset, corrupt or truncated IDX, a label out of range,
 * counts that differ, bad flags and argument files, a checkpoint of another
 * model) gives exit 2 and exactly one line on stderr.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "tiny_idx.h"
#include "mixprec.h"

static char root[] = "/tmp/mixprec_train_cli_XXXXXX";

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return s;
}

static void test_runs(const char *good) {
    static const char *const modes[3] = {"no", "bf16", "fp16"};
    for (int i = 0; i < 3; i++) {
        char log[600], ck[600];
        snprintf(log, sizeof log, "%s/%s.jsonl", root, modes[i]);
        snprintf(ck, sizeof ck, "%s/ck_%s", root, modes[i]);
        result r = RUN("train", "--data", good, "--model", "mlp", "--epochs", "2", "--batch-size",
                       "16", "--mixed-precision", modes[i], "--log", log, "--save", ck, "--threads",
                       "2", "--warmup-steps", "2", "--stats-every", "1");
        CHECK(r.status == 0, "train %s: exit %d: %s", modes[i], r.status, r.err);
        CHECK(strstr(r.out, "test accuracy") && strstr(r.out, "memory bytes: weights"),
              "train %s: summary: %s", modes[i], r.out);
        result_free(&r);
        char *text = read_text(log);
        CHECK(text != NULL, "log %s written", log);
        if (!text) continue;
        /* 64 samples / 16 = 4 steps per epoch, 2 epochs: 8 step lines, 2 eval, 1 summary */
        int steps = 0, evals = 0, summaries = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            if (strstr(line, "\"event\":\"step\"")) {
                steps++;
                static const char *const keys[] = {
                    "\"step\":",       "\"epoch\":",   "\"loss\":",      "\"lr\":",
                    "\"loss_scale\":", "\"skipped\":", "\"grad_norm\":", "\"samples_per_s\":"};
                for (int k = 0; k < 8; k++)
                    CHECK(strstr(line, keys[k]), "step line lacks %s: %s", keys[k], line);
            }
            if (strstr(line, "\"event\":\"eval\""))
                evals +=
                    strstr(line, "\"split\":\"test\"") && strstr(line, "\"accuracy\":") != NULL;
            if (strstr(line, "\"event\":\"summary\"")) {
                summaries++;
                char want[64];
                snprintf(want, sizeof want, "\"mixed_precision\":\"%s\"", modes[i]);
                CHECK(strstr(line, want), "summary names %s: %s", modes[i], line);
                static const char *const keys[] = {
                    "\"steps\":8",         "\"skipped_steps\":",
                    "\"final_loss\":",     "\"test_accuracy\":",
                    "\"wall_s\":",         "\"samples_per_s\":",
                    "\"peak_rss_bytes\":", "\"memory_bytes\":{\"weights\":",
                    "\"master_weights\":", "\"grads\":",
                    "\"optimizer\":",      "\"activations\":"};
                for (int k = 0; k < 12; k++)
                    CHECK(strstr(line, keys[k]), "summary lacks %s: %s", keys[k], line);
            }
        }
        CHECK(steps == 8 && evals == 2 && summaries == 1, "%s: %d step, %d eval, %d summary lines",
              modes[i], steps, evals, summaries);
        free(text);
        r = RUN("eval", "--checkpoint", ck, "--data", good);
        CHECK(r.status == 0 && strstr(r.out, "test accuracy"), "eval %s: %d %s %s", modes[i],
              r.status, r.out, r.err);
        result_free(&r);
    }
    /* Trainer-style YAML: fp16 from the file, a flag beats it */
    char yaml[600], log[600];
    snprintf(yaml, sizeof yaml, "%s/args.yaml", root);
    FILE *f = fopen(yaml, "w");
    fputs("# Trainer-style arguments\nfp16: true\nper_device_train_batch_size: 32\n"
          "num_train_epochs: 1\n",
          f);
    fclose(f);
    snprintf(log, sizeof log, "%s/yaml.jsonl", root);
    result r =
        RUN("train", "--data", good, "--model", "mlp", "--args", yaml, "--log", log, "--quiet");
    CHECK(r.status == 0, "train --args: %s", r.err);
    result_free(&r);
    char *text = read_text(log);
    CHECK(text && strstr(text, "\"mixed_precision\":\"fp16\"") && strstr(text, "\"steps\":2"),
          "--args fp16, batch 32 (2 steps): %.300s", text ? text : "(no log)");
    free(text);
    r = RUN("train", "--data", good, "--model", "mlp", "--args", yaml, "--log", log, "--quiet",
            "--mixed-precision", "bf16");
    text = read_text(log);
    CHECK(text && strstr(text, "\"mixed_precision\":\"bf16\""), "flag over --args");
    free(text);
    result_free(&r);
    /* the environment set by `mixprec launch` beats the default, a flag beats it */
    r = run_env(ARGS("MIXPREC_MIXED_PRECISION=fp16"),
                ARGS("train", "--data", good, "--model", "mlp", "--epochs", "1", "--batch-size",
                     "16", "--log", log, "--quiet"));
    text = read_text(log);
    CHECK(r.status == 0 && text && strstr(text, "\"mixed_precision\":\"fp16\""),
          "MIXPREC_MIXED_PRECISION=fp16: %s", r.err);
    free(text);
    result_free(&r);
}

static void test_bad_input(const char *good) {
    char empty[600], missing_root[600], yaml[600], ck[600], path[700];
    snprintf(empty, sizeof empty, "%s/empty", root);
    mkdir(empty, 0700);
    snprintf(missing_root, sizeof missing_root, "MIXPREC_DATA_DIR=%s/nowhere", root);
    /* the default dataset missing: names the apt package */
    result r = run_env(ARGS(missing_root), ARGS("train"));
    CHECK(r.status == 2 && strstr(r.err, "apt-get install dataset-fashion-mnist"),
          "missing dataset: %d %s", r.status, r.err);
    result_free(&r);
    expect_usage_env("missing dataset", ARGS(missing_root), ARGS("train"), 2);
    EXPECT_USAGE("train", "--data", empty);
    const char *trunc = make_set(root, "truncated", 64, 64, 32, 100, -1);
    r = RUN("train", "--data", trunc);
    CHECK(strstr(r.err, "train-images-idx3-ubyte"), "truncated file named: %s", r.err);
    result_free(&r);
    EXPECT_USAGE("train", "--data", trunc);
    const char *badlabel = make_set(root, "badlabel", 64, 64, 32, 0, 5);
    r = RUN("train", "--data", badlabel);
    CHECK(strstr(r.err, "12") && strstr(r.err, "range"), "label 12: %s", r.err);
    result_free(&r);
    EXPECT_USAGE("train", "--data", badlabel);
    EXPECT_USAGE("train", "--data", make_set(root, "counts", 64, 63, 32, 0, -1));
    EXPECT_USAGE("train", "--data", good, "--batch-size", "-3");
    EXPECT_USAGE("train", "--data", good, "--batch-size", "0");
    EXPECT_USAGE("train", "--data", good, "--batch-size", "65");
    EXPECT_USAGE("train", "--data", good, "--mixed-precision", "fp8");
    EXPECT_USAGE("train", "--data", good, "--lr", "abc");
    EXPECT_USAGE("train", "--data", good, "--lr", "-1");
    EXPECT_USAGE("train", "--data", good, "--loss-scale", "0");
    EXPECT_USAGE("train", "--data", good, "--master-weights", "maybe");
    EXPECT_USAGE("train", "--data", good, "--min-loss-scale", "100", "--max-loss-scale", "10");
    EXPECT_USAGE("train", "--data", good, "--model", "resnet");
    EXPECT_USAGE("train", "--data", good, "--optimizer", "lion");
    EXPECT_USAGE("train", "--data", good, "--epochs", "1.5");
    EXPECT_USAGE("train", "--bogus");
    EXPECT_USAGE("train", "stray");
    expect_usage_env("bad env precision", ARGS("MIXPREC_MIXED_PRECISION=fp8"),
                     ARGS("train", "--data", good), 2);
    snprintf(yaml, sizeof yaml, "%s/bad.yaml", root);
    FILE *f = fopen(yaml, "w");
    fputs("bf16: true\nlearning_rate: fast\n", f);
    fclose(f);
    r = RUN("train", "--data", good, "--args", yaml);
    CHECK(strstr(r.err, "bad.yaml:2"), "yaml error names file:line: %s", r.err);
    result_free(&r);
    EXPECT_USAGE("train", "--data", good, "--args", yaml);
    f = fopen(yaml, "w");
    fputs("lr: [1, 2]\n", f);
    fclose(f);
    EXPECT_USAGE("train", "--data", good, "--args", yaml);
    snprintf(path, sizeof path, "%s/none.yaml", root);
    EXPECT_USAGE("train", "--data", good, "--args", path);
    /* eval: no checkpoint, a checkpoint of another model, a corrupt config */
    EXPECT_USAGE("eval");
    EXPECT_USAGE("eval", "--checkpoint", empty);
    snprintf(path, sizeof path, "%s/ck_no", root); /* an output directory: its newest */
    CHECK(mxp_checkpoint_find(path, ck, sizeof ck) == MXP_OK, "find: %s", mxp_last_error());
    snprintf(path, sizeof path, "%s/config.json", ck);
    char *cfg = read_text(path);
    CHECK(cfg != NULL, "checkpoint config.json exists");
    if (cfg) {
        char *name = strstr(cfg, "\"mlp\"");
        if (name) memcpy(name, "\"cnn\"", 5); /* the weights are an mlp's */
        f = fopen(path, "w");
        fputs(cfg, f);
        fclose(f);
        r = RUN("eval", "--checkpoint", ck, "--data", good);
        CHECK(r.status == 2 && strstr(r.err, "config.json") && strstr(r.err, "cnn"),
              "another model: %s", r.err);
        result_free(&r);
        expect_usage_env("eval of another model", NULL,
                         ARGS("eval", "--checkpoint", ck, "--data", good), 2);
        f = fopen(path, "w");
        fputs("{\"format\": 1, \"model\": ", f);
        fclose(f);
        expect_usage_env("eval of a truncated config", NULL,
                         ARGS("eval", "--checkpoint", ck, "--data", good), 2);
        free(cfg);
    }
}

int main(void) {
    if (access(binary, X_OK) != 0) {
        fprintf(stderr, "test_train_cli: %s is not built\n", binary);
        return 1;
    }
    if (!mkdtemp(root)) {
        fprintf(stderr, "cannot make a temporary directory\n");
        return 1;
    }
    const char *good = make_set(root, "good", 64, 64, 32, 0, -1);
    test_runs(good);
    test_bad_input(good);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return check_exit("test_train_cli");
}
