/*
 * test_launch_config.c - the launch configuration of the io layer: defaults, write then read
 * back, every bad value and unknown key refused in one line naming file:line and the key,
 * distributed_type derived from num_processes (and checked when given), accelerate's own files,
 * writing into missing directories and where it cannot, allocation failures, and the default
 * location from MIXPREC_CONFIG_FILE, XDG_CONFIG_HOME and HOME.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mixprec/io.h"
#include "test_util.h"

static void expect_defaults(const mxp_launch_config *c, const char *what) {
    CHECK(!strcmp(c->compute_environment, "LOCAL_MACHINE") && !strcmp(c->distributed_type, "NO") &&
              c->num_processes == 1 && c->num_machines == 1 && c->machine_rank == 0 &&
              !strcmp(c->mixed_precision, "bf16") && c->num_threads == 0 &&
              !strcmp(c->loss_scale, "dynamic") && c->init_scale == 65536.0f &&
              c->growth_interval == 2000 && c->hysteresis == 1 &&
              c->gradient_accumulation_steps == 1,
          "%s: not the defaults (processes %d, precision %s, threads %d, scale %s)", what,
          c->num_processes, c->mixed_precision, c->num_threads, c->loss_scale);
}

static void test_defaults(void) {
    mxp_launch_config c;
    memset(&c, 0x5a, sizeof c);
    mxp_launch_config_default(&c);
    expect_defaults(&c, "mxp_launch_config_default");
    CHECK(c.set == 0, "default set bits %#x", c.set);
    /* an empty file is the defaults, with nothing set */
    const char *path = tmp_text("empty.yaml", "");
    CHECK(mxp_launch_config_read(&c, path) == MXP_OK, "empty file: %s", mxp_last_error());
    expect_defaults(&c, "empty file");
    CHECK(c.set == 0, "empty file set bits %#x", c.set);
}

static void test_round_trip(void) {
    mxp_launch_config c, r;
    mxp_launch_config_default(&c);
    const char *kv[][2] = {{"num_processes", "4"},
                           {"mixed_precision", "fp16"},
                           {"num_threads", "3"},
                           {"loss_scale", "dynamic"},
                           {"init_scale", "1024.5"},
                           {"growth_interval", "123456789012"},
                           {"hysteresis", "7"},
                           {"gradient_accumulation_steps", "8"},
                           {"compute_environment", "LOCAL_MACHINE"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        CHECK(mxp_launch_config_set(&c, kv[i][0], kv[i][1]) == MXP_OK, "set %s=%s: %s", kv[i][0],
              kv[i][1], mxp_last_error());
    CHECK(!strcmp(c.distributed_type, "MULTI_CPU"), "4 processes: distributed_type %s",
          c.distributed_type);
    /* into directories that do not exist yet */
    const char *path = tpath("a/b/c/default_config.yaml");
    CHECK(mxp_launch_config_write(&c, path) == MXP_OK, "write: %s", mxp_last_error());
    CHECK(mxp_launch_config_read(&r, path) == MXP_OK, "read back: %s", mxp_last_error());
    CHECK(!strcmp(r.compute_environment, c.compute_environment) &&
              !strcmp(r.distributed_type, "MULTI_CPU") && r.num_processes == 4 &&
              r.num_machines == 1 && r.machine_rank == 0 && !strcmp(r.mixed_precision, "fp16") &&
              r.num_threads == 3 && !strcmp(r.loss_scale, "dynamic") && r.init_scale == 1024.5f &&
              r.growth_interval == 123456789012ll && r.hysteresis == 7 &&
              r.gradient_accumulation_steps == 8,
          "round trip changed a value: processes %d precision %s threads %d init %g growth %lld",
          r.num_processes, r.mixed_precision, r.num_threads, (double)r.init_scale,
          (long long)r.growth_interval);
    /* every key was given: the file has all of them, and reading sets every bit */
    CHECK(r.set == 0xfffu, "set bits after reading a full file: %#x", r.set);
    size_t n;
    char *text = (char *)file_bytes(path, &n);
    CHECK(text && text[0] == '#', "the file starts with a comment: %.80s", text ? text : "(none)");
    /* accelerate's keys in its (alphabetical) order, mixprec's after */
    const char *order[] = {
        "compute_environment:", "distributed_type:", "machine_rank:",
        "mixed_precision:",     "num_machines:",     "num_processes:",
        "num_threads:",         "loss_scale:",       "gradient_accumulation_steps:"};
    const char *at = text;
    for (size_t i = 0; text && i < sizeof order / sizeof order[0]; i++) {
        const char *p = strstr(text, order[i]);
        CHECK(p && p > at, "key %s missing or out of order", order[i]);
        if (p) at = p;
    }
    CHECK(text && strstr(text, "distributed_type: MULTI_CPU\n"), "%s", text);
    free(text);
    /* a random float survives %.9g */
    mxp_launch_config_set(&c, "init_scale", "0.1");
    CHECK(mxp_launch_config_write(&c, path) == MXP_OK &&
              mxp_launch_config_read(&r, path) == MXP_OK && r.init_scale == 0.1f,
          "init_scale 0.1 came back as %.9g", (double)r.init_scale);
    /* 3e38 rounds to the float printed as 3.00000001e+38, which must read back */
    mxp_launch_config_set(&c, "init_scale", "3e38");
    CHECK(mxp_launch_config_write(&c, path) == MXP_OK &&
              mxp_launch_config_read(&r, path) == MXP_OK && r.init_scale == 3e38f,
          "init_scale 3e38 came back as %.9g: %s", (double)r.init_scale, mxp_last_error());

    /* the defaults: accelerate's keys, mixprec's only as comments, so nothing of ours is set */
    mxp_launch_config_default(&c);
    CHECK(mxp_launch_config_write(&c, path) == MXP_OK, "write defaults: %s", mxp_last_error());
    CHECK(mxp_launch_config_read(&r, path) == MXP_OK, "read defaults: %s", mxp_last_error());
    expect_defaults(&r, "defaults written and read");
    const unsigned core = MXP_LAUNCH_KEY_COMPUTE_ENVIRONMENT | MXP_LAUNCH_KEY_DISTRIBUTED_TYPE |
                          MXP_LAUNCH_KEY_NUM_PROCESSES | MXP_LAUNCH_KEY_NUM_MACHINES |
                          MXP_LAUNCH_KEY_MACHINE_RANK | MXP_LAUNCH_KEY_MIXED_PRECISION;
    CHECK(r.set == core, "defaults: set bits %#x, want %#x", r.set, core);
    text = (char *)file_bytes(path, &n);
    /* YAML 1.1 would read a bare NO as false: accelerate quotes it, so do we */
    CHECK(text && strstr(text, "distributed_type: 'NO'\n") &&
              strstr(text, "# loss_scale: dynamic\n") && strstr(text, "# num_threads: 0\n"),
          "defaults file:\n%s", text ? text : "(none)");
    free(text);
    mxp_launch_config_set(&c, "mixed_precision", "no");
    CHECK(mxp_launch_config_write(&c, path) == MXP_OK &&
              mxp_launch_config_read(&r, path) == MXP_OK && !strcmp(r.mixed_precision, "no"),
          "mixed_precision no: %s", r.mixed_precision);
    text = (char *)file_bytes(path, &n);
    CHECK(text && strstr(text, "mixed_precision: 'no'\n"), "no is quoted: %s", text);
    free(text);
    /* no temporary is left beside the file */
    int others = 0;
    DIR *d = opendir(tpath("a/b/c"));
    for (struct dirent *e; d && (e = readdir(d));)
        others += e->d_name[0] != '.' && strcmp(e->d_name, "default_config.yaml") != 0;
    if (d) closedir(d);
    CHECK(others == 0, "%d other files beside the config", others);
}

/* One bad line (line 3, after two good ones): read fails with one line naming file:3 and key,
 * containing want, and leaves the defaults. */
static void expect_bad(const char *key, const char *value, const char *want) {
    char text[512];
    snprintf(text, sizeof text, "# comment\ndebug: false\n%s: %s\n", key, value);
    const char *path = tmp_text("bad.yaml", text);
    mxp_launch_config c;
    memset(&c, 0x5a, sizeof c);
    const mxp_status st = mxp_launch_config_read(&c, path);
    const char *msg = mxp_last_error();
    char head[300]; /* "FILE:3: KEY: ..." or "FILE:3: unknown key 'KEY'" */
    snprintf(head, sizeof head, "%s:3: %s%s%s", path, want[0] == 'u' ? "unknown key '" : "", key,
             want[0] == 'u' ? "'" : "");
    CHECK(st == MXP_ERR_INVALID_ARG, "%s: %s: status %d (%s)", key, value, st, msg);
    CHECK(strstr(msg, head) != NULL, "%s: %s: message does not name %s: %s", key, value, head, msg);
    CHECK(strstr(msg, want) != NULL, "%s: %s: message lacks '%s': %s", key, value, want, msg);
    CHECK(!strchr(msg, '\n'), "%s: %s: message is not one line: %s", key, value, msg);
    expect_defaults(&c, "after a bad file");
}

static void test_bad_values(void) {
    expect_bad("num_processes", "x", "num_processes: 'x' is not a positive integer");
    expect_bad("num_processes", "0", "is not a positive integer");
    expect_bad("num_processes", "-2", "is not a positive integer");
    expect_bad("num_processes", "1.5", "is not a positive integer");
    expect_bad("num_processes", "2x", "is not a positive integer");
    expect_bad("num_processes", "''", "is not a positive integer");
    expect_bad("num_processes", "5000", "too large (at most 1024)");
    expect_bad("num_processes", "99999999999999999999999", "too large");
    expect_bad("num_machines", "2", "not supported by mixprec: 2");
    expect_bad("num_machines", "two", "is not a positive integer");
    expect_bad("machine_rank", "1", "not supported by mixprec: 1");
    expect_bad("machine_rank", "-1", "is not a whole number");
    expect_bad("mixed_precision", "fp8", "not supported by mixprec: fp8");
    expect_bad("mixed_precision", "fp32", "'fp32' is not no, fp16 or bf16");
    expect_bad("mixed_precision", "BF16", "is not no, fp16 or bf16");
    expect_bad("mixed_precision", "true", "is not no, fp16 or bf16");
    expect_bad("distributed_type", "MULTI_GPU", "not supported by mixprec: MULTI_GPU");
    expect_bad("distributed_type", "DEEPSPEED", "not supported by mixprec: DEEPSPEED");
    expect_bad("distributed_type", "multi_cpu", "is not NO or MULTI_CPU");
    expect_bad("compute_environment", "AMAZON_SAGEMAKER", "not supported by mixprec");
    expect_bad("compute_environment", "laptop", "is not LOCAL_MACHINE");
    expect_bad("num_threads", "-1", "is not a whole number");
    expect_bad("num_threads", "2000", "is not a whole number");
    expect_bad("loss_scale", "abc", "neither 'dynamic' nor a positive number");
    expect_bad("loss_scale", "0", "neither 'dynamic' nor a positive number");
    expect_bad("loss_scale", "-8", "neither 'dynamic' nor a positive number");
    expect_bad("loss_scale", "inf", "neither 'dynamic' nor a positive number");
    expect_bad("loss_scale", "nan", "neither 'dynamic' nor a positive number");
    expect_bad("loss_scale", "1e39", "neither 'dynamic' nor a positive number");
    expect_bad("loss_scale", "Dynamic", "neither 'dynamic' nor a positive number");
    expect_bad("init_scale", "0", "is not a positive number");
    expect_bad("init_scale", "1e39", "is not a positive number");
    expect_bad("init_scale", "x", "is not a positive number");
    /* found by fuzz_launch: a positive double that rounds to 0 as a float */
    expect_bad("init_scale", "1e-50", "is not a positive number");
    expect_bad("loss_scale", "1e-50", "nor a positive number");
    expect_bad("growth_interval", "0", "is not a positive integer");
    expect_bad("growth_interval", "1e3", "is not a positive integer");
    expect_bad("hysteresis", "0", "is not a positive integer");
    expect_bad("hysteresis", "2000000", "too large");
    expect_bad("gradient_accumulation_steps", "0", "is not a positive integer");
    expect_bad("gradient_accumulation_steps", "2000000", "too large");
    /* an unknown key lists the known ones */
    expect_bad("num_process", "2", "unknown key 'num_process' (known: compute_environment");
    expect_bad("mixed-precision", "bf16", "unknown key 'mixed-precision' (known: ");
}

static void test_distributed_type(void) {
    mxp_launch_config c;
    const char *cases[][2] = {{"num_processes: 4\n", "MULTI_CPU"},
                              {"num_processes: 1\n", "NO"},
                              {"distributed_type: MULTI_CPU\nnum_processes: 3\n", "MULTI_CPU"},
                              {"num_processes: 3\ndistributed_type: MULTI_CPU\n", "MULTI_CPU"},
                              {"distributed_type: NO\nnum_processes: 1\n", "NO"},
                              {"distributed_type: 'NO'\n", "NO"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = tmp_text("type.yaml", cases[i][0]);
        const mxp_status st = mxp_launch_config_read(&c, path);
        CHECK(st == MXP_OK && !strcmp(c.distributed_type, cases[i][1]), "%s-> %s (status %d: %s)",
              cases[i][0], c.distributed_type, st, mxp_last_error());
    }
    /* given and disagreeing: named at the distributed_type line */
    const char *bad[][2] = {{"num_processes: 4\ndistributed_type: NO\n", ":2: distributed_type"},
                            {"distributed_type: MULTI_CPU\n", ":1: distributed_type"},
                            {"distributed_type: NO\nnum_processes: 2\n", ":1: distributed_type"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = tmp_text("type.yaml", bad[i][0]);
        const mxp_status st = mxp_launch_config_read(&c, path);
        CHECK(st == MXP_ERR_INVALID_ARG && strstr(mxp_last_error(), bad[i][1]) &&
                  strstr(mxp_last_error(), "disagrees with num_processes"),
              "%s: status %d: %s", bad[i][0], st, mxp_last_error());
    }
    /* write refuses a struct whose distributed_type contradicts num_processes */
    mxp_launch_config_default(&c);
    c.num_processes = 2;
    CHECK(mxp_launch_config_write(&c, tpath("never.yaml")) == MXP_ERR_INVALID_ARG &&
              access(tpath("never.yaml"), F_OK) != 0,
          "write with 2 processes and NO: %s", mxp_last_error());
}

static void test_accelerate_file(void) {
    /* what `accelerate config` writes for one machine, CPU only (the scalar keys) */
    const char *path = tmp_text("accelerate.yaml", "compute_environment: LOCAL_MACHINE\n"
                                                   "debug: false\n"
                                                   "distributed_type: MULTI_CPU\n"
                                                   "downcast_bf16: 'no'\n"
                                                   "enable_cpu_affinity: false\n"
                                                   "gpu_ids: all\n"
                                                   "machine_rank: 0\n"
                                                   "main_process_ip: null\n"
                                                   "main_process_port: null\n"
                                                   "main_training_function: main\n"
                                                   "mixed_precision: no\n"
                                                   "num_machines: 1\n"
                                                   "num_processes: 4\n"
                                                   "rdzv_backend: static\n"
                                                   "same_network: true\n"
                                                   "tpu_use_cluster: false\n"
                                                   "tpu_use_sudo: false\n"
                                                   "use_cpu: true\n");
    mxp_launch_config c;
    const mxp_status st = mxp_launch_config_read(&c, path);
    CHECK(st == MXP_OK, "accelerate's file: %s", mxp_last_error());
    CHECK(c.num_processes == 4 && !strcmp(c.distributed_type, "MULTI_CPU") &&
              !strcmp(c.mixed_precision, "no"),
          "accelerate's file: %d processes, %s, %s", c.num_processes, c.distributed_type,
          c.mixed_precision);
    CHECK(!(c.set & (MXP_LAUNCH_KEY_NUM_THREADS | MXP_LAUNCH_KEY_LOSS_SCALE)),
          "ignored keys set bits: %#x", c.set);
    /* a sequence (accelerate's tpu_env: []) is beyond a flat file: refused with its line */
    path = tmp_text("seq.yaml", "num_processes: 2\ntpu_env: []\n");
    CHECK(mxp_launch_config_read(&c, path) == MXP_ERR_FORMAT && strstr(mxp_last_error(), ":2:"),
          "a sequence: %s", mxp_last_error());
    /* a file that is not there, and one that is not YAML */
    CHECK(mxp_launch_config_read(&c, tpath("missing.yaml")) == MXP_ERR_IO &&
              strstr(mxp_last_error(), "missing.yaml"),
          "missing file: %s", mxp_last_error());
    path = tmp_text("garbage.yaml", "num_processes: [1\n");
    CHECK(mxp_launch_config_read(&c, path) == MXP_ERR_FORMAT, "garbage: %s", mxp_last_error());
}

static void test_write_errors(void) {
    mxp_launch_config c;
    mxp_launch_config_default(&c);
    CHECK(mxp_launch_config_write(NULL, tpath("x.yaml")) == MXP_ERR_INVALID_ARG, "NULL config");
    CHECK(mxp_launch_config_write(&c, NULL) == MXP_ERR_INVALID_ARG, "NULL path");
    CHECK(mxp_launch_config_write(&c, "") == MXP_ERR_INVALID_ARG, "empty path");
    CHECK(mxp_launch_config_read(NULL, tpath("x.yaml")) == MXP_ERR_INVALID_ARG, "read NULL");
    CHECK(mxp_launch_config_set(&c, NULL, "1") == MXP_ERR_INVALID_ARG, "set NULL key");
    /* a value set() would refuse is not written */
    c.num_processes = 0;
    CHECK(mxp_launch_config_write(&c, tpath("x.yaml")) == MXP_ERR_INVALID_ARG &&
              strstr(mxp_last_error(), "num_processes"),
          "0 processes: %s", mxp_last_error());
    mxp_launch_config_default(&c);
    snprintf(c.mixed_precision, sizeof c.mixed_precision, "fp64");
    CHECK(mxp_launch_config_write(&c, tpath("x.yaml")) == MXP_ERR_INVALID_ARG, "fp64 written");
    memset(c.loss_scale, 'x', sizeof c.loss_scale);
    CHECK(mxp_launch_config_write(&c, tpath("x.yaml")) == MXP_ERR_INVALID_ARG,
          "unterminated string written");
    CHECK(access(tpath("x.yaml"), F_OK) != 0, "a refused config left a file");
    /* a directory that cannot be made: its parent is a file */
    mxp_launch_config_default(&c);
    tmp_text("plain", "not a directory\n");
    const mxp_status st = mxp_launch_config_write(&c, tpath("plain/sub/cfg.yaml"));
    CHECK(st == MXP_ERR_IO && strstr(mxp_last_error(), "plain"), "under a file: %d %s", st,
          mxp_last_error());
    /* the failed set leaves c as it was */
    mxp_launch_config before = c;
    CHECK(mxp_launch_config_set(&c, "num_processes", "zero") == MXP_ERR_INVALID_ARG &&
              !memcmp(&before, &c, sizeof c),
          "a refused set changed the config");
    CHECK(mxp_launch_config_set(&c, "gpu_ids", "0,1") == MXP_OK && !memcmp(&before, &c, sizeof c),
          "an ignored key changed the config");
}

static void test_nomem(void) {
    const char *path = tmp_text("nomem.yaml", "num_processes: 2\nmixed_precision: fp16\n"
                                              "loss_scale: 128\nhysteresis: 2\n");
    long budget;
    for (budget = 0; budget < 1000; budget++) {
        hook_on(budget);
        mxp_launch_config c;
        const mxp_status st = mxp_launch_config_read(&c, path);
        const long allocs = hk.allocs, frees = hk.frees;
        hook_off();
        CHECK(allocs == frees, "budget %ld: %ld allocations, %ld frees", budget, allocs, frees);
        if (st == MXP_OK) {
            CHECK(c.num_processes == 2 && !strcmp(c.loss_scale, "128"), "read under a budget");
            break;
        }
        CHECK(st == MXP_ERR_NOMEM, "budget %ld: status %d: %s", budget, st, mxp_last_error());
        expect_defaults(&c, "after running out of memory");
    }
    CHECK(budget > 0 && budget < 1000, "read needed %ld allocations", budget);
    mxp_launch_config c;
    mxp_launch_config_default(&c);
    for (budget = 0; budget < 100; budget++) {
        hook_on(budget);
        const mxp_status st = mxp_launch_config_write(&c, tpath("nomem/out.yaml"));
        const long allocs = hk.allocs, frees = hk.frees;
        hook_off();
        CHECK(allocs == frees, "write, budget %ld: %ld allocations, %ld frees", budget, allocs,
              frees);
        if (st == MXP_OK) break;
        CHECK(st == MXP_ERR_NOMEM, "write, budget %ld: status %d: %s", budget, st,
              mxp_last_error());
    }
    CHECK(budget < 100, "write never succeeded");
}

/* ---- the default location ------------------------------------------------------------------ */

static void set_env(const char *name, const char *value) {
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static void expect_path(const char *mixprec, const char *xdg, const char *home, const char *want,
                        const char *want_from) {
    set_env("MIXPREC_CONFIG_FILE", mixprec);
    set_env("XDG_CONFIG_HOME", xdg);
    set_env("HOME", home);
    char buf[512];
    const char *from = "untouched";
    const mxp_status st = mxp_launch_config_path(buf, sizeof buf, &from);
    if (!want) {
        CHECK(st == MXP_ERR_INVALID_ARG && strstr(mxp_last_error(), "HOME"),
              "no variables: status %d %s", st, mxp_last_error());
        return;
    }
    CHECK(st == MXP_OK && !strcmp(buf, want) && !strcmp(from, want_from),
          "MIXPREC_CONFIG_FILE=%s XDG_CONFIG_HOME=%s HOME=%s: got %s from %s, want %s from %s",
          mixprec ? mixprec : "(unset)", xdg ? xdg : "(unset)", home ? home : "(unset)", buf, from,
          want, want_from);
}

static void test_path(void) {
    expect_path("/etc/x.yaml", "/xdg", "/home/u", "/etc/x.yaml", "MIXPREC_CONFIG_FILE");
    expect_path("rel/x.yaml", NULL, NULL, "rel/x.yaml", "MIXPREC_CONFIG_FILE");
    expect_path("", "/xdg", "/home/u", "/xdg/mixprec/default_config.yaml", "XDG_CONFIG_HOME");
    expect_path(NULL, "/xdg", "/home/u", "/xdg/mixprec/default_config.yaml", "XDG_CONFIG_HOME");
    /* the XDG spec: a relative (or empty) XDG_CONFIG_HOME is ignored */
    expect_path(NULL, "xdg", "/home/u", "/home/u/.config/mixprec/default_config.yaml", "HOME");
    expect_path(NULL, "", "/home/u", "/home/u/.config/mixprec/default_config.yaml", "HOME");
    expect_path(NULL, NULL, "/home/u", "/home/u/.config/mixprec/default_config.yaml", "HOME");
    expect_path(NULL, NULL, NULL, NULL, NULL);
    expect_path(NULL, "", "", NULL, NULL);
    /* too small a buffer is an error, not a truncated path */
    set_env("HOME", "/home/u");
    char small[16];
    CHECK(mxp_launch_config_path(small, sizeof small, NULL) == MXP_ERR_INVALID_ARG &&
              small[0] == '\0',
          "a 16-byte buffer: %s", mxp_last_error());
    CHECK(mxp_launch_config_path(NULL, 10, NULL) == MXP_ERR_INVALID_ARG, "NULL buffer");
    /* and the path written, then read, from a HOME of our own */
    char home[256];
    snprintf(home, sizeof home, "%s", tpath("home"));
    set_env("HOME", home);
    char path[512];
    CHECK(mxp_launch_config_path(path, sizeof path, NULL) == MXP_OK, "%s", mxp_last_error());
    mxp_launch_config c, r;
    mxp_launch_config_default(&c);
    mxp_launch_config_set(&c, "num_processes", "2");
    CHECK(mxp_launch_config_write(&c, path) == MXP_OK &&
              mxp_launch_config_read(&r, path) == MXP_OK && r.num_processes == 2,
          "write and read %s: %s", path, mxp_last_error());
    struct stat sb;
    CHECK(stat(tpath("home/.config/mixprec"), &sb) == 0 && S_ISDIR(sb.st_mode),
          "~/.config/mixprec was not created");
}

int main(void) {
    if (tmpdir_make("launch-config") != 0) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_round_trip();
    test_bad_values();
    test_distributed_type();
    test_accelerate_file();
    test_write_errors();
    test_nomem();
    test_path();
    tmpdir_remove();
    return check_exit("test_launch_config");
}
