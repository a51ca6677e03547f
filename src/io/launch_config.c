/*
 * launch_config.c - the launch configuration of `mixprec config` and `mixprec launch`:
 * accelerate's default_config.yaml keys plus mixprec's, each value checked where it is set,
 * the file read through mxp_yaml_read_flat and written atomically, and its default location.
 * It launches nothing and exports nothing: tools/mixprec/cmd_launch.c does.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base_impl.h"
#include "mixprec/io.h"

enum { MAX_PROCESSES = 1024, MAX_THREADS = 1024, MAX_ACCUM = 1 << 20, MAX_HYSTERESIS = 1000000 };

/* The keys mixprec reads, in the order a file is written. */
static const struct {
    const char *name;
    unsigned bit;
} keys[] = {
    {"compute_environment", MXP_LAUNCH_KEY_COMPUTE_ENVIRONMENT},
    {"distributed_type", MXP_LAUNCH_KEY_DISTRIBUTED_TYPE},
    {"machine_rank", MXP_LAUNCH_KEY_MACHINE_RANK},
    {"mixed_precision", MXP_LAUNCH_KEY_MIXED_PRECISION},
    {"num_machines", MXP_LAUNCH_KEY_NUM_MACHINES},
    {"num_processes", MXP_LAUNCH_KEY_NUM_PROCESSES},
    {"num_threads", MXP_LAUNCH_KEY_NUM_THREADS},
    {"loss_scale", MXP_LAUNCH_KEY_LOSS_SCALE},
    {"init_scale", MXP_LAUNCH_KEY_INIT_SCALE},
    {"growth_interval", MXP_LAUNCH_KEY_GROWTH_INTERVAL},
    {"hysteresis", MXP_LAUNCH_KEY_HYSTERESIS},
    {"gradient_accumulation_steps", MXP_LAUNCH_KEY_GRAD_ACCUM},
};
enum { NKEYS = sizeof keys / sizeof keys[0] };

/* Keys of accelerate's file that mean nothing to a CPU-only, one-machine launcher. They are
 * accepted (a file written by `accelerate config` reads) and ignored. */
static const char *const ignored[] = {
    "debug",           "downcast_bf16",     "gpu_ids",         "main_training_function",
    "use_cpu",         "rdzv_backend",      "same_network",    "enable_cpu_affinity",
    "main_process_ip", "main_process_port", "tpu_use_cluster", "tpu_use_sudo",
    "dynamo_backend",  "tpu_name",          "tpu_zone",        "command_file",
    "commands",
};

/* distributed_type values accelerate writes that need hardware or libraries mixprec lacks */
static const char *const foreign_types[] = {"MULTI_GPU",  "MULTI_XPU", "MULTI_NPU",  "MULTI_MLU",
                                            "MULTI_MUSA", "MULTI_HPU", "MULTI_SDAA", "DEEPSPEED",
                                            "FSDP",       "TPU",       "XLA",        "MEGATRON_LM"};

void mxp_launch_config_default(mxp_launch_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->compute_environment, sizeof c->compute_environment, "LOCAL_MACHINE");
    snprintf(c->distributed_type, sizeof c->distributed_type, "NO");
    c->num_processes = 1;
    c->num_machines = 1;
    c->machine_rank = 0;
    snprintf(c->mixed_precision, sizeof c->mixed_precision, "bf16");
    c->num_threads = 0;
    snprintf(c->loss_scale, sizeof c->loss_scale, "dynamic");
    c->init_scale = 65536.0f;
    c->growth_interval = 2000;
    c->hysteresis = 1;
    c->gradient_accumulation_steps = 1;
}

/* ---- values ------------------------------------------------------------------------------ */

/* A whole number of digits only (no sign, space or exponent) in [0, max]: 0, -1 when it is
 * not one, -2 when it is larger than max. */
static int parse_count(const char *s, int64_t max, int64_t *out) {
    if (!*s) return -1;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        const int d = *p - '0';
        if (v > (max - d) / 10) return -2;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A positive whole number in [1, max] for key; the message says which rule it broke. */
static mxp_status positive(const char *key, const char *v, int64_t max, int64_t *out) {
    const int rc = parse_count(v, max, out);
    if (rc == -2)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: '%s' is too large (at most %lld)", key, v,
                        (long long)max);
    if (rc != 0 || *out < 1)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: '%s' is not a positive integer", key, v);
    return MXP_OK;
}

/* A finite number > 0 and <= max, as strtod reads it, with nothing after it. */
static int positive_number(const char *s, double max, double *out) {
    if (!*s || *s == ' ' || *s == '\t') return -1;
    char *end;
    const double v = strtod(s, &end);
    if (*end || !isfinite(v) || !(v > 0.0) || v > max) return -1;
    *out = v;
    return 0;
}

static int in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return 1;
    return 0;
}

static void derive_type(mxp_launch_config *c) {
    snprintf(c->distributed_type, sizeof c->distributed_type, "%s",
             c->num_processes > 1 ? "MULTI_CPU" : "NO");
}

mxp_status mxp_launch_config_set(mxp_launch_config *c, const char *key, const char *v) {
    if (!c || !key || !v)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_launch_config_set: NULL argument");
    if (in_list(key, ignored, sizeof ignored / sizeof ignored[0])) return MXP_OK;
    int64_t n;
    double x;
#define IS(name) (strcmp(key, name) == 0)
    if (IS("compute_environment")) {
        if (strcmp(v, "LOCAL_MACHINE") != 0)
            return MXP_FAIL(
                MXP_ERR_INVALID_ARG,
                strcmp(v, "AMAZON_SAGEMAKER") == 0
                    ? "%s: not supported by mixprec: %s (only LOCAL_MACHINE, this machine)"
                    : "%s: '%s' is not LOCAL_MACHINE (the only compute environment)",
                key, v);
        snprintf(c->compute_environment, sizeof c->compute_environment, "%s", v);
        c->set |= MXP_LAUNCH_KEY_COMPUTE_ENVIRONMENT;
        return MXP_OK;
    }
    if (IS("distributed_type")) {
        if (in_list(v, foreign_types, sizeof foreign_types / sizeof foreign_types[0]))
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: not supported by mixprec: %s (use NO for one process or "
                            "MULTI_CPU for several over MPI)",
                            key, v);
        if (strcmp(v, "NO") != 0 && strcmp(v, "MULTI_CPU") != 0)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: '%s' is not NO or MULTI_CPU", key, v);
        snprintf(c->distributed_type, sizeof c->distributed_type, "%s", v);
        c->set |= MXP_LAUNCH_KEY_DISTRIBUTED_TYPE;
        return MXP_OK;
    }
    if (IS("num_processes")) {
        MXP_TRY(positive(key, v, MAX_PROCESSES, &n));
        c->num_processes = (int)n;
        derive_type(c);
        c->set |= MXP_LAUNCH_KEY_NUM_PROCESSES;
        return MXP_OK;
    }
    if (IS("num_machines")) {
        MXP_TRY(positive(key, v, INT32_MAX, &n));
        if (n != 1)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: not supported by mixprec: %s (it runs on one machine only)", key,
                            v);
        c->num_machines = 1;
        c->set |= MXP_LAUNCH_KEY_NUM_MACHINES;
        return MXP_OK;
    }
    if (IS("machine_rank")) {
        const int rc = parse_count(v, INT32_MAX, &n);
        if (rc != 0) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: '%s' is not a whole number", key, v);
        if (n != 0)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: not supported by mixprec: %s (one machine only, rank 0)", key, v);
        c->machine_rank = 0;
        c->set |= MXP_LAUNCH_KEY_MACHINE_RANK;
        return MXP_OK;
    }
    if (IS("mixed_precision")) {
        if (strcmp(v, "fp8") == 0)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: not supported by mixprec: fp8 (choose no, fp16 or bf16)", key);
        if (strcmp(v, "no") != 0 && strcmp(v, "fp16") != 0 && strcmp(v, "bf16") != 0)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: '%s' is not no, fp16 or bf16", key, v);
        snprintf(c->mixed_precision, sizeof c->mixed_precision, "%s", v);
        c->set |= MXP_LAUNCH_KEY_MIXED_PRECISION;
        return MXP_OK;
    }
    if (IS("num_threads")) {
        const int rc = parse_count(v, MAX_THREADS, &n);
        if (rc != 0)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: '%s' is not a whole number from 0 (the cores divided among the "
                            "processes) to %d",
                            key, v, MAX_THREADS);
        c->num_threads = (int)n;
        c->set |= MXP_LAUNCH_KEY_NUM_THREADS;
        return MXP_OK;
    }
    if (IS("loss_scale")) {
        /* the accelerator's bound: a static scale must be a finite fp32 number */
        if (strcmp(v, "dynamic") != 0 &&
            (positive_number(v, 3.0e38, &x) != 0 || !((float)x > 0.0f)))
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: '%s' is neither 'dynamic' nor a positive number", key, v);
        if (strlen(v) >= sizeof c->loss_scale)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: '%s' is longer than %zu characters", key, v,
                            sizeof c->loss_scale - 1);
        snprintf(c->loss_scale, sizeof c->loss_scale, "%s", v);
        c->set |= MXP_LAUNCH_KEY_LOSS_SCALE;
        return MXP_OK;
    }
    if (IS("init_scale")) {
        /* checked on the float that is kept, with the accelerator's bound (MIXPREC_INIT_SCALE):
         * 1e-50 would round to 0, and a value the file accepts must be one launch can pass on */
        if (positive_number(v, 3.4e38, &x) != 0 || !((float)x > 0.0f) || (float)x > 3.0e38f)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: '%s' is not a positive number (from 1.2e-38 to 3e38)", key, v);
        c->init_scale = (float)x;
        c->set |= MXP_LAUNCH_KEY_INIT_SCALE;
        return MXP_OK;
    }
    if (IS("growth_interval")) {
        MXP_TRY(positive(key, v, INT64_MAX, &n));
        c->growth_interval = n;
        c->set |= MXP_LAUNCH_KEY_GROWTH_INTERVAL;
        return MXP_OK;
    }
    if (IS("hysteresis")) {
        MXP_TRY(positive(key, v, MAX_HYSTERESIS, &n));
        c->hysteresis = (int)n;
        c->set |= MXP_LAUNCH_KEY_HYSTERESIS;
        return MXP_OK;
    }
    if (IS("gradient_accumulation_steps")) {
        MXP_TRY(positive(key, v, MAX_ACCUM, &n));
        c->gradient_accumulation_steps = (int)n;
        c->set |= MXP_LAUNCH_KEY_GRAD_ACCUM;
        return MXP_OK;
    }
#undef IS
    char known[400];
    size_t len = 0;
    for (int i = 0; i < NKEYS; i++)
        len +=
            (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", keys[i].name);
    return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown key '%s' (known: %s)", key, known);
}

/* ---- reading ----------------------------------------------------------------------------- */

mxp_status mxp_launch_config_read(mxp_launch_config *c, const char *path) {
    if (!c || !path) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_launch_config_read: NULL argument");
    mxp_launch_config_default(c);
    mxp_kvlist kv;
    MXP_TRY(mxp_yaml_read_flat(&kv, path));
    mxp_launch_config r;
    mxp_launch_config_default(&r);
    mxp_status st = MXP_OK;
    int type_line = 0;
    for (int i = 0; i < kv.n && st == MXP_OK; i++) {
        st = mxp_launch_config_set(&r, kv.items[i].key, kv.items[i].value);
        if (st != MXP_OK) {
            char msg[512]; /* the setter's words without its source location */
            snprintf(msg, sizeof msg, "%s", mxp_last_error_text());
            st = MXP_FAIL(st, "%s:%d: %s", path, kv.items[i].line, msg);
        } else if (strcmp(kv.items[i].key, "distributed_type") == 0) {
            type_line = kv.items[i].line;
        }
    }
    if (st == MXP_OK && type_line) {
        /* set() re-derived distributed_type from num_processes; the file's own word is kept */
        const char *given = mxp_kvlist_get(&kv, "distributed_type");
        const int multi = strcmp(given, "MULTI_CPU") == 0;
        if (multi != (r.num_processes > 1))
            st = MXP_FAIL(MXP_ERR_INVALID_ARG,
                          "%s:%d: distributed_type: %s disagrees with num_processes %d (NO is "
                          "one process, MULTI_CPU several; or remove the key)",
                          path, type_line, given, r.num_processes);
        snprintf(r.distributed_type, sizeof r.distributed_type, "%s", given);
    }
    mxp_kvlist_free(&kv);
    if (st == MXP_OK) *c = r;
    return st;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* The text of key k's value in c (what set() would read back to the same value). */
static void value_text(const mxp_launch_config *c, unsigned bit, char *buf, size_t size) {
    switch (bit) {
    case MXP_LAUNCH_KEY_COMPUTE_ENVIRONMENT:
        snprintf(buf, size, "%s", c->compute_environment);
        break;
    case MXP_LAUNCH_KEY_DISTRIBUTED_TYPE: snprintf(buf, size, "%s", c->distributed_type); break;
    case MXP_LAUNCH_KEY_NUM_PROCESSES: snprintf(buf, size, "%d", c->num_processes); break;
    case MXP_LAUNCH_KEY_NUM_MACHINES: snprintf(buf, size, "%d", c->num_machines); break;
    case MXP_LAUNCH_KEY_MACHINE_RANK: snprintf(buf, size, "%d", c->machine_rank); break;
    case MXP_LAUNCH_KEY_MIXED_PRECISION: snprintf(buf, size, "%s", c->mixed_precision); break;
    case MXP_LAUNCH_KEY_NUM_THREADS: snprintf(buf, size, "%d", c->num_threads); break;
    case MXP_LAUNCH_KEY_LOSS_SCALE: snprintf(buf, size, "%s", c->loss_scale); break;
    /* %.9g reads back to the same float */
    case MXP_LAUNCH_KEY_INIT_SCALE: snprintf(buf, size, "%.9g", (double)c->init_scale); break;
    case MXP_LAUNCH_KEY_GROWTH_INTERVAL:
        snprintf(buf, size, "%lld", (long long)c->growth_interval);
        break;
    case MXP_LAUNCH_KEY_HYSTERESIS: snprintf(buf, size, "%d", c->hysteresis); break;
    case MXP_LAUNCH_KEY_GRAD_ACCUM:
        snprintf(buf, size, "%d", c->gradient_accumulation_steps);
        break;
    default: buf[0] = '\0';
    }
}

/* mkdir -p of the directory part of path. 0, or an MXP_ERR_IO naming the directory. */
static mxp_status make_parents(const char *path) {
    const size_t n = strlen(path);
    char *dir = mxp_alloc(n + 1);
    if (!dir) return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate its name", path);
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    mxp_status st = MXP_OK;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; st == MXP_OK; p++) {
            const int end = *p == '\0';
            if (*p != '/' && !end) continue;
            *p = '\0';
            struct stat sb;
            if (mkdir(dir, 0777) != 0 && errno != EEXIST)
                st = MXP_FAIL(MXP_ERR_IO, "%s: cannot create directory %s: %s", path, dir,
                              strerror(errno));
            else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
                st = MXP_FAIL(MXP_ERR_IO, "%s: %s is not a directory", path, dir);
            if (end) break;
            *p = '/';
        }
    }
    mxp_free(dir);
    return st;
}

mxp_status mxp_launch_config_write(const mxp_launch_config *c, const char *path) {
    if (!c || !path || !*path)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_launch_config_write: NULL or empty argument");
    if (!memchr(c->compute_environment, '\0', sizeof c->compute_environment) ||
        !memchr(c->distributed_type, '\0', sizeof c->distributed_type) ||
        !memchr(c->mixed_precision, '\0', sizeof c->mixed_precision) ||
        !memchr(c->loss_scale, '\0', sizeof c->loss_scale))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: a string field of the config is not terminated",
                        path);
    /* accelerate's keys always; mixprec's only when given, else as a comment showing the
     * default: `mixprec launch` exports what the file gives, and an exported
     * MIXPREC_LOSS_SCALE=dynamic nobody asked for would turn loss scaling on for bf16 */
    const unsigned core = MXP_LAUNCH_KEY_COMPUTE_ENVIRONMENT | MXP_LAUNCH_KEY_DISTRIBUTED_TYPE |
                          MXP_LAUNCH_KEY_NUM_PROCESSES | MXP_LAUNCH_KEY_NUM_MACHINES |
                          MXP_LAUNCH_KEY_MACHINE_RANK | MXP_LAUNCH_KEY_MIXED_PRECISION;
    mxp_launch_config def;
    mxp_launch_config_default(&def);
    char text[2048];
    size_t len = (size_t)snprintf(text, sizeof text,
                                  "# mixprec launch configuration: the keys of accelerate's "
                                  "default_config.yaml, then mixprec's\n"
                                  "# written by `mixprec config`, read by `mixprec launch` "
                                  "(docs/LAUNCH.md)\n");
    mxp_launch_config check = def;
    for (int i = 0; i < NKEYS; i++) {
        const unsigned bit = keys[i].bit;
        const int given = (bit & core) || (c->set & bit);
        char v[64];
        value_text(given ? c : &def, bit, v, sizeof v);
        /* a value set() refuses would be a file read() refuses */
        if (given && mxp_launch_config_set(&check, keys[i].name, v) != MXP_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", mxp_last_error_text());
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: not written: %s", path, msg);
        }
        if (bit == MXP_LAUNCH_KEY_NUM_THREADS)
            len += (size_t)snprintf(text + len, sizeof text - len,
                                    "# mixprec's keys (accelerate has none of them); a commented "
                                    "one keeps its default\n# and is not passed on\n");
        /* YAML 1.1 reads a bare no as false: quote it, as accelerate does */
        const int quote = strcmp(v, "no") == 0 || strcmp(v, "NO") == 0;
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s: %s%s%s\n", given ? "" : "# ",
                                keys[i].name, quote ? "'" : "", v, quote ? "'" : "");
    }
    if (strcmp(check.distributed_type, c->distributed_type) != 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: not written: distributed_type %s disagrees with num_processes %d",
                        path, c->distributed_type, c->num_processes);
    MXP_TRY(make_parents(path));
    return mxp_file_write_atomic(path, text, len);
}

/* ---- where the file is ------------------------------------------------------------------- */

mxp_status mxp_launch_config_path(char *buf, size_t size, const char **from) {
    if (!buf || !size) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_launch_config_path: no buffer");
    buf[0] = '\0';
    const char *e = getenv("MIXPREC_CONFIG_FILE"), *why;
    int n;
    if (e && *e) {
        why = "MIXPREC_CONFIG_FILE";
        n = snprintf(buf, size, "%s", e);
    } else if ((e = getenv("XDG_CONFIG_HOME")) && e[0] == '/') {
        /* the XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored */
        why = "XDG_CONFIG_HOME";
        n = snprintf(buf, size, "%s/mixprec/default_config.yaml", e);
    } else if ((e = getenv("HOME")) && *e) {
        why = "HOME";
        n = snprintf(buf, size, "%s/.config/mixprec/default_config.yaml", e);
    } else {
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "no default launch config location: MIXPREC_CONFIG_FILE, XDG_CONFIG_HOME "
                        "and HOME are all unset (name a file instead)");
    }
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "the launch config path from %s is longer than %zu bytes", why, size - 1);
    }
    if (from) *from = why;
    return MXP_OK;
}
