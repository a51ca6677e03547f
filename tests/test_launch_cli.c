/*
 * test_launch_cli.c - `mixprec config` and `mixprec launch` as a user runs them: the file
 * config writes is what launch uses; flags beat the file, which beats the defaults; the
 * default location (MIXPREC_CONFIG_FILE, XDG_CONFIG_HOME, HOME); every bad input is one line
 * and exit 2; PROGRAM really runs with its MIXPREC_* environment, on one process and on two
 * under mpirun; a failing rank ends the job with a last line saying so; SIGTERM reaches every
 * rank; and the questionnaire, answered through a pseudo-terminal. HOME points into a
 * temporary directory, so nothing touches the real one.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "mixprec/io.h"

#include "cli_run.h"
#include "test_util.h"

/* ---- helpers --------------------------------------------------------------------------------- */

/* whether text has a line that is exactly line */
static int has_line(const char *text, const char *line) {
    const size_t n = strlen(line);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\r')) return 1;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return 0;
}

/* whether text has a line starting with prefix */
static int has_prefix(const char *text, const char *prefix) {
    const size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0) return 1;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return 0;
}

/* the first line of text, in a static buffer */
static const char *first_line(const char *text) {
    static char buf[1024];
    const char *nl = strchr(text, '\n');
    snprintf(buf, sizeof buf, "%.*s", nl ? (int)(nl - text) : (int)strlen(text), text);
    return buf;
}

/* the last line of text, in a static buffer */
static const char *last_line(const char *text) {
    static char buf[1024];
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n') n--;
    size_t b = n;
    while (b && text[b - 1] != '\n') b--;
    snprintf(buf, sizeof buf, "%.*s", (int)(n - b), text + b);
    return buf;
}

/* Run the binary under `timeout 60` (when there is one), so a launch that hangs fails fast. */
static result run_timeout(const char *const *env, const char *const *args) {
    if (access("/usr/bin/timeout", X_OK) != 0) return run_env(env, args);
    const char *argv2[64];
    int n = 0;
    argv2[n++] = "60";
    argv2[n++] = MIXPREC_BINARY_DIR "/mixprec";
    for (int i = 0; args[i] && n < 62; i++) argv2[n++] = args[i];
    argv2[n] = NULL;
    const char *saved = binary;
    binary = "/usr/bin/timeout";
    result r = run_env(env, argv2);
    binary = saved;
    return r;
}

static int have_mpirun(void) {
    const char *path = getenv("PATH");
    char buf[PATH_MAX];
    for (const char *p = path ? path : ""; *p;) {
        const char *colon = strchr(p, ':');
        const int n = colon ? (int)(colon - p) : (int)strlen(p);
        snprintf(buf, sizeof buf, "%.*s/mpirun", n, p);
        if (n && access(buf, X_OK) == 0) return 1;
        if (!colon) break;
        p = colon + 1;
    }
    return 0;
}

static char cfg_bf16[256], cfg_fp16[256]; /* made by test_config_default, test_precedence */

/* ---- config writes what launch uses ---------------------------------------------------------- */

static void test_config_default(void) {
    snprintf(cfg_bf16, sizeof cfg_bf16, "%s", tpath("cfg/sub/run.yaml"));
    result r = RUN("config", "--default", "--config-file", cfg_bf16);
    char want[512];
    snprintf(want, sizeof want, "wrote %s", cfg_bf16);
    CHECK(r.status == 0 && r.err[0] == '\0', "config --default: exit %d: %s", r.status, r.err);
    CHECK(!strcmp(first_line(r.out), want), "config --default printed: %s", r.out);
    CHECK(has_line(r.out, "  mixed_precision: bf16") && has_line(r.out, "  num_processes: 1"),
          "config --default values: %s", r.out);
    result_free(&r);
    mxp_launch_config c;
    CHECK(mxp_launch_config_read(&c, cfg_bf16) == MXP_OK && c.num_processes == 1 &&
              !strcmp(c.mixed_precision, "bf16"),
          "the written file: %s", mxp_last_error());

    /* launch with no flags uses it: precision from the file, nothing else of ours */
    r = RUN("launch", "--dry-run", "--config-file", cfg_bf16, "true");
    CHECK(r.status == 0 && r.err[0] == '\0', "launch --dry-run: exit %d %s", r.status, r.err);
    snprintf(want, sizeof want, "MIXPREC_CONFIG_FILE=%s", cfg_bf16);
    CHECK(has_line(r.out, want) && has_line(r.out, "MIXPREC_MIXED_PRECISION=bf16") &&
              has_line(r.out, "MIXPREC_NUM_PROCESSES=1"),
          "launch --dry-run with the default config:\n%s", r.out);
    CHECK(!has_prefix(r.out, "MIXPREC_NUM_THREADS=") && !has_prefix(r.out, "MIXPREC_LOSS_SCALE=") &&
              !has_prefix(r.out, "MIXPREC_GRAD_ACCUM=") &&
              !has_prefix(r.out, "MIXPREC_INIT_SCALE="),
          "launch exported settings nobody gave:\n%s", r.out);
    const char *cmd = first_line(r.out);
    CHECK(!strstr(cmd, "mpirun") && strlen(cmd) > 5 && !strcmp(cmd + strlen(cmd) - 5, "/true"),
          "one process runs PROGRAM itself: %s", cmd);
    CHECK(count_lines(r.out) == 4, "dry run: %d lines:\n%s", count_lines(r.out), r.out);
    result_free(&r);

    /* off a terminal, config without --default writes the defaults without asking */
    const char *quiet = tpath("quiet.yaml");
    r = RUN("config", "--config_file", quiet);
    CHECK(r.status == 0 && !strstr(r.out, "?") && access(quiet, F_OK) == 0,
          "config off a terminal: exit %d %s%s", r.status, r.out, r.err);
    result_free(&r);
    r = RUN("help", "config");
    CHECK(r.status == 0 && strstr(r.out, "usage: mixprec config"), "help config: %s", r.out);
    result_free(&r);
    r = RUN("launch", "--help");
    CHECK(r.status == 0 && strstr(r.out, "usage: mixprec launch") && strstr(r.out, "--dry-run"),
          "launch --help: %s", r.out);
    result_free(&r);
    r = RUN("--help");
    CHECK(strstr(r.out, "  config ") && strstr(r.out, "  launch "), "--help lists: %s", r.out);
    result_free(&r);
}

/* ---- where the file is found --------------------------------------------------------------- */

static void test_default_location(void) {
    char home_cfg[512], xdg[300], xdg_env[320], xdg_cfg[512], want[600];
    snprintf(home_cfg, sizeof home_cfg, "%s/.config/mixprec/default_config.yaml", tpath("home"));
    /* no file at the default location: launch runs with the defaults and exports none */
    result r = RUN("launch", "--dry-run", "true");
    CHECK(r.status == 0 && has_line(r.out, "MIXPREC_NUM_PROCESSES=1") && count_lines(r.out) == 2,
          "no config file: exit %d:\n%s%s", r.status, r.out, r.err);
    result_free(&r);
    r = RUN("config", "--default");
    snprintf(want, sizeof want, "wrote %s", home_cfg);
    CHECK(r.status == 0 && !strcmp(first_line(r.out), want) && access(home_cfg, F_OK) == 0,
          "config --default into HOME: %s%s", r.out, r.err);
    result_free(&r);
    r = RUN("launch", "--dry-run", "true");
    snprintf(want, sizeof want, "MIXPREC_CONFIG_FILE=%s", home_cfg);
    CHECK(r.status == 0 && has_line(r.out, want) && has_line(r.out, "MIXPREC_MIXED_PRECISION=bf16"),
          "launch finds ~/.config/mixprec: %s%s", r.out, r.err);
    result_free(&r);
    r = RUN("env");
    CHECK(r.status == 0 && strstr(r.out, home_cfg) && strstr(r.out, "from HOME; exists"),
          "env names the config: %s", r.out);
    result_free(&r);

    /* XDG_CONFIG_HOME comes before HOME */
    snprintf(xdg, sizeof xdg, "%s", tpath("xdg"));
    snprintf(xdg_env, sizeof xdg_env, "XDG_CONFIG_HOME=%s", xdg);
    snprintf(xdg_cfg, sizeof xdg_cfg, "%s/mixprec/default_config.yaml", xdg);
    const char *env_xdg[] = {xdg_env, NULL};
    r = run_env(env_xdg, ARGS("config", "--default"));
    snprintf(want, sizeof want, "wrote %s", xdg_cfg);
    CHECK(r.status == 0 && !strcmp(first_line(r.out), want), "config with XDG_CONFIG_HOME: %s%s",
          r.out, r.err);
    result_free(&r);
    r = run_env(env_xdg, ARGS("launch", "--dry-run", "true"));
    snprintf(want, sizeof want, "MIXPREC_CONFIG_FILE=%s", xdg_cfg);
    CHECK(r.status == 0 && has_line(r.out, want), "launch with XDG_CONFIG_HOME: %s%s", r.out,
          r.err);
    result_free(&r);
    r = run_env(env_xdg, ARGS("env", "--json"));
    CHECK(r.status == 0 && strstr(r.out, "\"from\":\"XDG_CONFIG_HOME\"") &&
              strstr(r.out, "\"exists\":true") && strstr(r.out, "\"mixprec_environment\":{"),
          "env --json with XDG_CONFIG_HOME: %s", r.out);
    result_free(&r);

    /* MIXPREC_CONFIG_FILE comes first of all, for config and launch */
    char env_file[600];
    const char *mine = tpath("env/mine.yaml");
    snprintf(env_file, sizeof env_file, "MIXPREC_CONFIG_FILE=%s", mine);
    const char *env_mine[] = {env_file, xdg_env, NULL};
    r = run_env(env_mine, ARGS("config", "--default"));
    snprintf(want, sizeof want, "wrote %s", mine);
    CHECK(r.status == 0 && !strcmp(first_line(r.out), want),
          "config with MIXPREC_CONFIG_FILE: %s%s", r.out, r.err);
    result_free(&r);
    tmp_text("env/mine.yaml", "mixed_precision: fp16\nnum_processes: 2\n");
    r = run_env(env_mine, ARGS("launch", "--dry-run", "true"));
    CHECK(r.status == 0 && has_line(r.out, "MIXPREC_MIXED_PRECISION=fp16") &&
              has_line(r.out, env_file) && strstr(first_line(r.out), "mpirun") &&
              strstr(first_line(r.out), " -np 2 "),
          "launch honours MIXPREC_CONFIG_FILE: %s%s", r.out, r.err);
    result_free(&r);
    /* --config-file beats MIXPREC_CONFIG_FILE */
    r = run_env(env_mine, ARGS("launch", "--dry-run", "--config-file", cfg_bf16, "true"));
    CHECK(r.status == 0 && has_line(r.out, "MIXPREC_MIXED_PRECISION=bf16") &&
              !strstr(first_line(r.out), "mpirun"),
          "--config-file beats MIXPREC_CONFIG_FILE: %s%s", r.out, r.err);
    result_free(&r);
    remove(home_cfg); /* the later tests name their files */
}

/* ---- flag > file > default ------------------------------------------------------------------ */

static void test_precedence(void) {
    snprintf(cfg_fp16, sizeof cfg_fp16, "%s",
             tmp_text("fp16.yaml", "# every key\n"
                                   "num_processes: 2\nmixed_precision: fp16\nloss_scale: 1024\n"
                                   "num_threads: 3\ngradient_accumulation_steps: 2\n"
                                   "hysteresis: 2\ninit_scale: 512\ngrowth_interval: 100\n"));
    result r = RUN("launch", "--dry-run", "--config-file", cfg_fp16, "sh", "-c", "echo hi");
    const char *cmd = first_line(r.out);
    CHECK(r.status == 0 && strstr(cmd, "mpirun -np 2 --oversubscribe --bind-to none ") &&
              strstr(cmd, " -x MIXPREC_MIXED_PRECISION ") &&
              strstr(cmd, " -x MIXPREC_NUM_PROCESSES ") && strstr(cmd, "/sh -c 'echo hi'"),
          "the mpirun command: exit %d: %s %s", r.status, cmd, r.err);
    CHECK(!!strstr(cmd, "--allow-run-as-root") == (geteuid() == 0), "--allow-run-as-root: %s", cmd);
    const char *all[] = {"MIXPREC_NUM_PROCESSES=2", "MIXPREC_MIXED_PRECISION=fp16",
                         "MIXPREC_NUM_THREADS=3",   "MIXPREC_LOSS_SCALE=1024",
                         "MIXPREC_INIT_SCALE=512",  "MIXPREC_GROWTH_INTERVAL=100",
                         "MIXPREC_HYSTERESIS=2",    "MIXPREC_GRAD_ACCUM=2"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        CHECK(has_line(r.out, all[i]), "from the file: no %s in:\n%s", all[i], r.out);
    result_free(&r);

    /* every flag beats the file */
    r = RUN("launch", "--dry-run", "--config-file", cfg_fp16, "--num-processes", "1",
            "--mixed-precision", "no", "--num-threads", "5", "--loss-scale", "dynamic",
            "--grad-accum", "7", "true");
    const char *flags[] = {"MIXPREC_NUM_PROCESSES=1", "MIXPREC_MIXED_PRECISION=no",
                           "MIXPREC_NUM_THREADS=5",   "MIXPREC_LOSS_SCALE=dynamic",
                           "MIXPREC_GRAD_ACCUM=7",    "MIXPREC_HYSTERESIS=2"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        CHECK(has_line(r.out, flags[i]), "flags: no %s in:\n%s%s", flags[i], r.out, r.err);
    CHECK(!strstr(first_line(r.out), "mpirun"), "--num-processes 1 still ran mpirun: %s", r.out);
    result_free(&r);

    /* accelerate's spellings */
    r = RUN("launch", "--dry-run", "--num_processes=3", "--mixed_precision", "bf16",
            "--config_file", cfg_fp16, "--num_cpu_threads_per_process", "4",
            "--gradient_accumulation_steps", "6", "true");
    CHECK(r.status == 0 && strstr(first_line(r.out), " -np 3 ") &&
              has_line(r.out, "MIXPREC_MIXED_PRECISION=bf16") &&
              has_line(r.out, "MIXPREC_NUM_THREADS=4") && has_line(r.out, "MIXPREC_GRAD_ACCUM=6"),
          "accelerate's spellings: exit %d\n%s%s", r.status, r.out, r.err);
    result_free(&r);

    /* N > 1 with no thread count: the cores divided among the processes, at least 1 */
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char want[64];
    snprintf(want, sizeof want, "MIXPREC_NUM_THREADS=%ld", cores / 2 > 1 ? cores / 2 : 1);
    r = RUN("launch", "--dry-run", "--config-file", cfg_bf16, "--num-processes", "2", "true");
    CHECK(r.status == 0 && has_line(r.out, want), "2 processes, %ld cores: want %s in\n%s%s", cores,
          want, r.out, r.err);
    result_free(&r);
    r = RUN("launch", "--dry-run", "--config-file", cfg_bf16, "--num-processes", "1000", "true");
    CHECK(r.status == 0 && has_line(r.out, "MIXPREC_NUM_THREADS=1"), "1000 processes: %s%s", r.out,
          r.err);
    result_free(&r);
    /* ... unless the environment already says */
    r = run_env(ARGS("MIXPREC_NUM_THREADS=7"), ARGS("launch", "--dry-run", "--config-file",
                                                    cfg_bf16, "--num-processes", "2", "true"));
    CHECK(r.status == 0 && !has_prefix(r.out, "MIXPREC_NUM_THREADS="),
          "an inherited MIXPREC_NUM_THREADS is kept: %s%s", r.out, r.err);
    result_free(&r);

    /* PROGRAM's own words are PROGRAM's, even when they look like ours */
    r = RUN("launch", "--dry-run", "--config-file", cfg_bf16, "sh", "-c", "echo hi",
            "--num-processes", "5");
    cmd = first_line(r.out);
    const char *tail = "/sh -c 'echo hi' --num-processes 5";
    CHECK(r.status == 0 && strlen(cmd) > strlen(tail) &&
              !strcmp(cmd + strlen(cmd) - strlen(tail), tail) &&
              has_line(r.out, "MIXPREC_NUM_PROCESSES=1"),
          "arguments after PROGRAM: %s", r.out);
    result_free(&r);
    r = RUN("launch", "--dry-run", "--config-file", cfg_bf16, "--", "true", "--dry-run");
    CHECK(r.status == 0 && strstr(first_line(r.out), "/true --dry-run"), "after --: %s%s", r.out,
          r.err);
    result_free(&r);

    /* a mixprec command word runs this very binary */
    char self[PATH_MAX], line[PATH_MAX + 64];
    CHECK(realpath(binary, self) != NULL, "realpath %s", binary);
    snprintf(line, sizeof line, "%s train --epochs 1", self);
    r = RUN("launch", "--dry-run", "--config-file", cfg_bf16, "train", "--epochs", "1");
    CHECK(r.status == 0 && !strcmp(first_line(r.out), line), "train: want %s, got %s%s", line,
          r.out, r.err);
    result_free(&r);
    r = RUN("launch", "--dry-run", "--config-file", cfg_bf16, "--num-processes", "2", "eval");
    snprintf(line, sizeof line, " %s eval", self);
    CHECK(r.status == 0 && strstr(first_line(r.out), line), "eval under mpirun: %s%s", r.out,
          r.err);
    result_free(&r);
}

/* ---- bad input: one line, exit 2 ------------------------------------------------------------ */

static void expect_usage_has(const char *what, const char *const *env, const char *const *args,
                             const char *want) {
    expect_usage_env(what, env, args, 2);
    result r = run_env(env, args);
    CHECK(strstr(r.err, want) != NULL, "%s: want '%s' in: %s", what, want, r.err);
    result_free(&r);
}

static void test_errors(void) {
    expect_usage_has("no PROGRAM", NULL, ARGS("launch"), "no PROGRAM given");
    expect_usage_has("no PROGRAM, options only", NULL, ARGS("launch", "--dry-run"),
                     "no PROGRAM given");
    expect_usage_has("0 processes", NULL, ARGS("launch", "--num-processes", "0", "true"),
                     "--num-processes: '0' is not a positive integer");
    expect_usage_has("x processes", NULL, ARGS("launch", "--num-processes", "x", "true"),
                     "--num-processes");
    expect_usage_has("2000 processes", NULL, ARGS("launch", "--num-processes", "2000", "true"),
                     "too large");
    expect_usage_has("fp8", NULL, ARGS("launch", "--mixed-precision", "fp8", "true"),
                     "not supported by mixprec: fp8");
    expect_usage_has("fp32", NULL, ARGS("launch", "--mixed_precision", "fp32", "true"),
                     "--mixed-precision: 'fp32' is not no, fp16 or bf16");
    expect_usage_has("loss scale", NULL, ARGS("launch", "--loss-scale", "abc", "true"),
                     "--loss-scale");
    expect_usage_has("grad accum", NULL, ARGS("launch", "--grad-accum", "0", "true"),
                     "--grad-accum");
    expect_usage_has("threads", NULL, ARGS("launch", "--num-threads", "-1", "true"),
                     "--num-threads");
    expect_usage_has("no value", NULL, ARGS("launch", "--num-processes"), "needs a value");
    expect_usage_has("unknown option", NULL, ARGS("launch", "--frobnicate", "true"),
                     "unknown option");
    const char *missing = tpath("missing.yaml");
    expect_usage_has("missing --config-file", NULL,
                     ARGS("launch", "--config-file", missing, "true"), "No such file");
    expect_usage_has("empty --config-file", NULL, ARGS("launch", "--config-file", "", "true"),
                     "--config-file");
    expect_usage_has("directory --config-file", NULL,
                     ARGS("launch", "--config-file", tmpdir, "true"), "is a directory");
    char env_missing[400];
    snprintf(env_missing, sizeof env_missing, "MIXPREC_CONFIG_FILE=%s", missing);
    expect_usage_has("missing MIXPREC_CONFIG_FILE", ARGS(env_missing), ARGS("launch", "true"),
                     "MIXPREC_CONFIG_FILE=");

    /* a bad file: one line naming file:line and the key */
    const char *bad[][2] = {
        {"num_processes: x\n", ":1: num_processes: 'x' is not a positive integer"},
        {"debug: false\nfoo: 1\n", ":2: unknown key 'foo'"},
        {"distributed_type: MULTI_GPU\n", ":1: distributed_type: not supported by mixprec"},
        {"num_processes: 2\ndistributed_type: NO\n", ":2: distributed_type: NO disagrees"},
        {"num_machines: 2\n", ":1: num_machines: not supported by mixprec"},
        {"mixed_precision: fp8\n", "not supported by mixprec: fp8"},
        {"tpu_env: []\n", ":1:"},
        {"num_processes: [1\n", "bad.yaml"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = tmp_text("bad.yaml", bad[i][0]);
        expect_usage_has(bad[i][0], NULL, ARGS("launch", "--config-file", path, "true"), bad[i][1]);
        char env[400];
        snprintf(env, sizeof env, "MIXPREC_CONFIG_FILE=%s", path);
        expect_usage_has(bad[i][0], ARGS(env), ARGS("launch", "--dry-run", "true"), bad[i][1]);
    }

    /* PROGRAM that is not there */
    expect_usage_has("unknown PROGRAM", NULL, ARGS("launch", "no-such-program-xyz"),
                     "neither a mixprec command nor a program on PATH");
    expect_usage_has("missing ./PROGRAM", NULL, ARGS("launch", "./no-such-program-xyz"),
                     "No such file");
    expect_usage_has("PROGRAM not executable", NULL, ARGS("launch", tmp_text("plain.txt", "x\n")),
                     "not an executable file");

    /* config */
    expect_usage_has("config word", NULL, ARGS("config", "extra"), "unexpected argument");
    expect_usage_has("config empty file", NULL, ARGS("config", "--config-file", ""),
                     "--config-file");
    tmp_text("afile", "a file, not a directory\n");
    expect_usage_has("config under a file", NULL,
                     ARGS("config", "--default", "--config-file", tpath("afile/x/cfg.yaml")),
                     "afile");
    expect_usage_has("config bad option", NULL, ARGS("config", "--defaults"), "unknown option");
}

/* ---- running PROGRAM ------------------------------------------------------------------------ */

static void test_run_one(void) {
    char want[600];
    result r = run_timeout(NULL, ARGS("launch", "--num-processes", "1", "--mixed-precision", "fp16",
                                      "--grad-accum", "4", "--config-file", cfg_bf16, "sh", "-c",
                                      "echo $MIXPREC_MIXED_PRECISION $MIXPREC_GRAD_ACCUM "
                                      "$MIXPREC_NUM_PROCESSES $MIXPREC_CONFIG_FILE"));
    snprintf(want, sizeof want, "fp16 4 1 %s\n", cfg_bf16);
    CHECK(r.status == 0 && !strcmp(r.out, want), "one process: exit %d, out '%s' want '%s' (%s)",
          r.status, r.out, want, r.err);
    result_free(&r);
    r = run_timeout(NULL, ARGS("launch", "--config-file", cfg_bf16, "/usr/bin/env"));
    CHECK(r.status == 0 && has_line(r.out, "MIXPREC_MIXED_PRECISION=bf16") &&
              has_line(r.out, "MIXPREC_NUM_PROCESSES=1") &&
              !has_prefix(r.out, "MIXPREC_NUM_THREADS="),
          "/usr/bin/env: exit %d %s", r.status, r.err);
    result_free(&r);
    /* PROGRAM's exit status is launch's */
    r = run_timeout(NULL, ARGS("launch", "sh", "-c", "exit 5"));
    CHECK(r.status == 5, "sh -c 'exit 5': exit %d", r.status);
    result_free(&r);
    /* a command word runs this mixprec, which sees the settings */
    r = run_timeout(NULL, ARGS("launch", "--mixed-precision", "fp16", "env"));
    CHECK(r.status == 0 && strstr(r.out, "MIXPREC_MIXED_PRECISION=fp16") &&
              strstr(r.out, "world          1 process (MIXPREC_NUM_PROCESSES=1"),
          "launch env: exit %d %s%s", r.status, r.out, r.err);
    result_free(&r);
}

/* Whether pid is gone (or a zombie, which is as dead). */
static int process_gone(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

static void test_run_mpi(void) {
    /* without mpirun on PATH, two processes are a clear error */
    const char *saved = getenv("PATH");
    char *old = saved ? strdup(saved) : NULL;
    setenv("PATH", tpath("nompi"), 1);
    mkdir(tpath("nompi"), 0755);
    expect_usage_has("no mpirun", NULL, ARGS("launch", "--num-processes", "2", "/bin/true"),
                     "apt-get install openmpi-bin");
    if (old) setenv("PATH", old, 1);
    free(old);
    if (!have_mpirun()) {
        printf("note: mpirun is not on PATH; the runs on 2 processes are not exercised\n");
        return;
    }

    result r = run_timeout(NULL, ARGS("launch", "--num-processes", "2", "--mixed-precision", "bf16",
                                      "sh", "-c",
                                      "echo rank $OMPI_COMM_WORLD_RANK $MIXPREC_MIXED_PRECISION "
                                      "$MIXPREC_NUM_PROCESSES"));
    CHECK(r.status == 0 && count_lines(r.out) == 2 && has_line(r.out, "rank 0 bf16 2") &&
              has_line(r.out, "rank 1 bf16 2"),
          "2 processes: exit %d, out:\n%s\nerr:\n%s", r.status, r.out, r.err);
    result_free(&r);

    /* one rank fails: mpirun ends the other (sleeping) one, launch says so and fails */
    const double t0 = seconds();
    r = run_timeout(NULL, ARGS("launch", "--num-processes", "2", "sh", "-c",
                               "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then exit 3; fi; sleep 30"));
    const double took = seconds() - t0;
    CHECK(r.status != 0 && r.status != 124, "a failing rank: exit %d (124: timed out)", r.status);
    CHECK(took < 25.0, "a failing rank: launch took %.1f s (the other rank was not stopped)", took);
    char want[200];
    snprintf(want, sizeof want,
             "mixprec launch: sh failed on 2 processes (exit status %d; mpirun's report is above)",
             r.status);
    CHECK(!strcmp(last_line(r.err), want), "last line: '%s', want '%s'", last_line(r.err), want);
    CHECK(r.status == 3, "mpirun's status is the failing rank's: %d", r.status);
    result_free(&r);

    /* SIGTERM to launch reaches mpirun, which ends every rank */
    const char *dir = tpath("pids");
    mkdir(dir, 0755);
    char script[600], pidfile[2][600];
    snprintf(script, sizeof script,
             "echo $$ > %s/pid.$OMPI_COMM_WORLD_RANK.tmp && mv %s/pid.$OMPI_COMM_WORLD_RANK.tmp "
             "%s/pid.$OMPI_COMM_WORLD_RANK && exec sleep 100",
             dir, dir, dir);
    for (int i = 0; i < 2; i++) snprintf(pidfile[i], sizeof pidfile[i], "%s/pid.%d", dir, i);
    const pid_t pid = fork();
    if (pid == 0) {
        const int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execl(binary, binary, "launch", "--num-processes", "2", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    long ranks[2] = {0, 0};
    for (double t = seconds(); seconds() - t < 30 && (!ranks[0] || !ranks[1]);) {
        for (int i = 0; i < 2; i++) {
            FILE *f = ranks[i] ? NULL : fopen(pidfile[i], "r");
            if (f) {
                if (fscanf(f, "%ld", &ranks[i]) != 1) ranks[i] = 0;
                fclose(f);
            }
        }
        usleep(20000);
    }
    CHECK(ranks[0] > 0 && ranks[1] > 0, "the ranks did not start (pids %ld %ld)", ranks[0],
          ranks[1]);
    kill(pid, SIGTERM);
    int st = 0, done = 0;
    for (double t = seconds(); seconds() - t < 30 && !done;) {
        done = waitpid(pid, &st, WNOHANG) == pid;
        if (!done) usleep(20000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    CHECK(done && WIFEXITED(st) && WEXITSTATUS(st) != 0, "SIGTERM: launch %s (status %#x)",
          done ? "exited" : "hung", st);
    int gone = 0;
    for (double t = seconds(); seconds() - t < 10 && !gone;) {
        gone = (!ranks[0] || process_gone((pid_t)ranks[0])) &&
               (!ranks[1] || process_gone((pid_t)ranks[1]));
        if (!gone) usleep(20000);
    }
    CHECK(gone, "ranks %ld %ld still run after SIGTERM to launch", ranks[0], ranks[1]);
    for (int i = 0; i < 2 && !gone; i++)
        if (ranks[i] > 0 && !process_gone((pid_t)ranks[i])) kill((pid_t)ranks[i], SIGKILL);
}

/* ---- the questionnaire on a terminal ----------------------------------------------------------
 */

static int pty_missing;

/* Run the binary with args on a new pseudo-terminal (stdin, stdout and stderr), type input
 * (once the first prompt is out), and collect everything it shows. */
static result run_pty(const char *const *args, const char *input) {
    result r = {-1, NULL, NULL};
    char name[128];
    const int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, name, sizeof name) != 0) {
        if (m >= 0) close(m);
        pty_missing = 1;
        return r;
    }
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)binary;
    for (int i = 0; args[i] && argc < 62; i++) argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    const pid_t pid = fork();
    if (pid == 0) {
        setsid(); /* a new session, whose controlling terminal the slave becomes */
        const int s = open(name, O_RDWR);
        if (s < 0) _exit(126);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        if (s > 2) close(s);
        close(m);
        execv(binary, argv);
        _exit(127);
    }
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    int typed = input == NULL;
    for (double t0 = seconds(); seconds() - t0 < 60;) {
        struct pollfd p = {m, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            const ssize_t n = read(m, out + len, cap - len - 1);
            if (n <= 0) break; /* EIO: the child and its terminal are gone */
            len += (size_t)n;
            if (len + 1 >= cap) break;
        }
        if (!typed && len > 0) {
            /* the terminal keeps the lines; each fgets takes one */
            if (write(m, input, strlen(input)) != (ssize_t)strlen(input)) break;
            typed = 1;
        }
    }
    out[len] = '\0';
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) != pid) {
        usleep(200000);
        if (waitpid(pid, &st, WNOHANG) != pid) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
    }
    close(m);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    r.out = out;
    r.err = calloc(1, 1);
    return r;
}

static void test_questionnaire(void) {
    /* Enter everywhere: the defaults; mixprec's keys stay unset (comments in the file) */
    const char *path = tpath("q/defaults.yaml");
    result r = run_pty(ARGS("config", "--config-file", path), "\n\n\n\n\n");
    if (pty_missing) return;
    mxp_launch_config c;
    CHECK(r.status == 0 && strstr(r.out, "compute environment") &&
              strstr(r.out, "How many processes") && strstr(r.out, "Mixed precision") &&
              strstr(r.out, "Gradient accumulation") && !strstr(r.out, "Loss scale") &&
              strstr(r.out, "wrote "),
          "all defaults: exit %d:\n%s", r.status, r.out);
    result_free(&r);
    CHECK(mxp_launch_config_read(&c, path) == MXP_OK && c.num_processes == 1 &&
              !strcmp(c.mixed_precision, "bf16") &&
              !(c.set & (MXP_LAUNCH_KEY_NUM_THREADS | MXP_LAUNCH_KEY_GRAD_ACCUM)),
          "all defaults: the file (%s), set %#x", mxp_last_error(), c.set);

    /* bad answers are explained and asked again; fp16 asks for the scaler */
    path = tpath("q/answers.yaml");
    r = run_pty(ARGS("config", "--config-file", path),
                "cloud\n\nx\n2\nabc\n3\nfp8\nfp16\n\n1024\n\n2\n4\n");
    CHECK(r.status == 0 && strstr(r.out, "this machine only") &&
              strstr(r.out, "'x' is not a positive integer; try again") &&
              strstr(r.out, "'abc' is not a whole number") &&
              strstr(r.out, "not supported by mixprec: fp8") && strstr(r.out, "Loss scale") &&
              strstr(r.out, "Initial loss scale") && strstr(r.out, "Hysteresis"),
          "answers: exit %d:\n%s", r.status, r.out);
    result_free(&r);
    const unsigned want_set = MXP_LAUNCH_KEY_NUM_THREADS | MXP_LAUNCH_KEY_INIT_SCALE |
                              MXP_LAUNCH_KEY_HYSTERESIS | MXP_LAUNCH_KEY_GRAD_ACCUM;
    CHECK(mxp_launch_config_read(&c, path) == MXP_OK && c.num_processes == 2 &&
              !strcmp(c.distributed_type, "MULTI_CPU") && !strcmp(c.mixed_precision, "fp16") &&
              c.num_threads == 3 && c.init_scale == 1024.0f && c.hysteresis == 2 &&
              c.gradient_accumulation_steps == 4 && (c.set & want_set) == want_set &&
              !(c.set & (MXP_LAUNCH_KEY_LOSS_SCALE | MXP_LAUNCH_KEY_GROWTH_INTERVAL)),
          "answers: the file (%s): %d processes %s threads %d init %g set %#x", mxp_last_error(),
          c.num_processes, c.mixed_precision, c.num_threads, (double)c.init_scale, c.set);
    /* and launch passes on exactly what was chosen */
    r = RUN("launch", "--dry-run", "--config-file", path, "true");
    CHECK(r.status == 0 && has_line(r.out, "MIXPREC_INIT_SCALE=1024") &&
              has_line(r.out, "MIXPREC_HYSTERESIS=2") && has_line(r.out, "MIXPREC_NUM_THREADS=3") &&
              !has_prefix(r.out, "MIXPREC_LOSS_SCALE=") &&
              !has_prefix(r.out, "MIXPREC_GROWTH_INTERVAL="),
          "launch after the questionnaire:\n%s%s", r.out, r.err);
    result_free(&r);

    /* a static loss scale asks nothing more about it */
    path = tpath("q/static.yaml");
    r = run_pty(ARGS("config", "--config-file", path), "\n\n\nfp16\n128\n\n");
    CHECK(r.status == 0 && !strstr(r.out, "Initial loss scale"), "static scale: exit %d:\n%s",
          r.status, r.out);
    result_free(&r);
    CHECK(mxp_launch_config_read(&c, path) == MXP_OK && !strcmp(c.loss_scale, "128") &&
              (c.set & MXP_LAUNCH_KEY_LOSS_SCALE),
          "static scale: %s, set %#x", c.loss_scale, c.set);

    /* end of input (Ctrl-D) is an error, and nothing is written */
    path = tpath("q/eof.yaml");
    r = run_pty(ARGS("config", "--config-file", path), "\n2\n\x04");
    CHECK(r.status == 2 &&
              strstr(r.out, "mixprec: config: end of input at the threads per process"),
          "EOF: exit %d:\n%s", r.status, r.out);
    CHECK(access(path, F_OK) != 0, "EOF: %s was written", path);
    result_free(&r);

    /* --default on a terminal asks nothing */
    path = tpath("q/default.yaml");
    r = run_pty(ARGS("config", "--default", "--config-file", path), NULL);
    CHECK(r.status == 0 && !strstr(r.out, "How many") && access(path, F_OK) == 0,
          "--default on a terminal: exit %d:\n%s", r.status, r.out);
    result_free(&r);
}

int main(void) {
    if (access(binary, X_OK) != 0) {
        fprintf(stderr, "test_launch_cli: %s is not built (build the `mixprec` target first)\n",
                binary);
        return 1;
    }
    if (tmpdir_make("launch-cli") != 0) {
        perror("mkdtemp");
        return 1;
    }
    /* nothing of the caller's reaches the commands: no MIXPREC_*, a HOME of our own */
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "MIXPREC_", 8) != 0) continue;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(strcspn(*e, "=")), *e);
            unsetenv(name);
            again = 1;
            break;
        }
    }
    setenv("HOME", tpath("home"), 1);
    unsetenv("XDG_CONFIG_HOME");
    mkdir(tpath("home"), 0755);

    test_config_default();
    test_default_location();
    test_precedence();
    test_errors();
    test_run_one();
    test_run_mpi();
    test_questionnaire();
    tmpdir_remove();
    if (pty_missing && !check_failures) {
        printf("%d checks passed\n", check_count);
        SKIP("no pseudo-terminal (posix_openpt failed): the questionnaire is not tested");
    }
    return check_exit("test_launch_cli");
}
