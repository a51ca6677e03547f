/*
 * test_export_cli.c - `mixprec export` and `mixprec show` end to end on
 * checkpoints written here through the library: each export (bf16, fp16,
 * fp32) read back bit-exactly against the library's round-to-nearest-even
 * conversion of the fp32 weights, with names, shapes and metadata; show lists
 * every tensor of a file and of a checkpoint; every bad input gives exit 2
 * and exactly one line on stderr, and leaves no file behind.
 * `test_export_cli --python PYTHON SCRIPT` checks the exports with the
 * official safetensors and torch (tests/reference/check_export.py; exit 77
 * when python lacks them).
 */
#include <limits.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli_run.h"
#include "mixprec.h"
#include "test_util.h"

/* A failure of the test's own setup (not of what is tested): say what, and stop. */
static void die(const char *what) {
    fprintf(stderr, "test_export_cli: %s\n", what);
    exit(2);
}

static const char *const dtypes[3] = {"bf16", "fp16", "fp32"};
static const mxp_dtype dtype_of[3] = {MXP_DTYPE_BF16, MXP_DTYPE_F16, MXP_DTYPE_F32};

/* ---- checkpoints -------------------------------------------------------- */

/* The fp32 weights of p (the master copy when the model keeps one). */
static float *w32(const mxp_param *p) { return (float *)(p->master ? p->master : p->work)->data; }

/* The float whose bits are u. */
static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Fill fc1.weight with values that exercise the conversions: ties to even in
 * bf16 and fp16, fp16 subnormals and values that flush to zero, fp32
 * subnormals, signed zeros, 65504 and the largest fp32 below 65520 (which
 * fp16 rounds down to 65504), then random bit patterns below 32768. */
static void fill_edges(mxp_model_t *m) {
    static const uint32_t edges[] = {
        0x3f808000u, /* 1 + 2^-8: a bf16 tie (to 1) */
        0x3f818000u, /* 1 + 3*2^-8: a bf16 tie (up) */
        0x3f801000u, /* 1 + 2^-11: an fp16 tie (to 1) */
        0x3f803000u, /* 1 + 3*2^-11: an fp16 tie (up) */
        0x33000000u, /* 2^-25: half fp16's smallest subnormal, a tie to 0 */
        0x33400000u, /* 1.5 * 2^-25: rounds up to 2^-24 */
        0x38800000u, /* 2^-14: fp16's smallest normal */
        0x0d800000u, /* 7.9e-31: 0 in fp16 */
        0x00000001u, /* fp32's smallest subnormal */
        0x80400000u, /* a negative fp32 subnormal */
        0x80000000u, /* -0 */
        0x477fe000u, /* 65504 */
        0xc77fefffu, /* -65519.996: fp16 rounds it to -65504 */
        0x7f7f0000u, /* 3.3895e38, bf16's largest (only in the bf16/fp32 checkpoint) */
    };
    float *w = w32(mxp_model_param(m, "fc1.weight"));
    const size_t n = (size_t)mxp_tensor_numel(mxp_model_param(m, "fc1.weight")->work);
    const size_t ne = sizeof edges / sizeof edges[0];
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        if (i < ne) {
            w[i] = from_bits(edges[i]);
            continue;
        }
        uint32_t u = (uint32_t)splitmix64(&s);
        const uint32_t e = (u >> 23) & 0xff;
        if (e > 141) u = (u & ~(0xffu << 23)) | ((e % 142) << 23); /* |x| < 32768 */
        w[i] = from_bits(u);
    }
}

/* Save a small mlp checkpoint (hidden 24/12) at dir, trained "in" prec.
 * edges: fill fc1.weight with fill_edges (without bf16's max when for_fp16);
 * poke: if name is not NULL, set its first element to value. state: also save
 * training_state.safetensors with AdamW moments. Returns the model (the
 * caller frees it) holding exactly the weights saved. */
static mxp_model_t *make_checkpoint(const char *dir, const char *prec, int edges, int for_fp16,
                                    const char *name, float value, int state) {
    mxp_model_config c;
    mxp_model_t *m = NULL;
    mxp_optimizer_t *opt = NULL;
    if (mxp_model_config_default(&c, "mlp") != MXP_OK) die(mxp_last_error());
    c.hidden1 = 24;
    c.hidden2 = 12;
    c.seed = 7;
    if (mxp_model_create(&m, &c) != MXP_OK) die(mxp_last_error());
    if (edges) fill_edges(m);
    if (edges && for_fp16) w32(mxp_model_param(m, "fc1.weight"))[13] = 1.0f;
    if (name) w32(mxp_model_param(m, name))[0] = value;
    mxp_checkpoint_meta meta;
    mxp_checkpoint_meta_init(&meta);
    snprintf(meta.mixed_precision, sizeof meta.mixed_precision, "%s", prec);
    meta.mean = 0.25f;
    meta.std = 0.5f;
    if (state) {
        mxp_optim_config oc;
        if (mxp_model_set_precision(m, MXP_DTYPE_BF16, 1) != MXP_OK ||
            mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW) != MXP_OK ||
            mxp_optimizer_create(&opt, &oc) != MXP_OK || mxp_optimizer_bind(opt, m) != MXP_OK)
            die(mxp_last_error());
        meta.have_state = 1;
        snprintf(meta.optimizer, sizeof meta.optimizer, "adamw");
        meta.state.accel.scaler.scale = 1.0f;
    }
    if (mxp_checkpoint_save(dir, m, opt, &meta) != MXP_OK) die(mxp_last_error());
    mxp_optimizer_free(opt);
    return m;
}

/* ---- reading an export back ------------------------------------------------ */

/* The bits the library's own conversion gives for x in dt (fp32: x's bits). */
static uint32_t want_bits(float x, mxp_dtype dt) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (dt == MXP_DTYPE_BF16) return mxp_fp32_to_bf16(x);
    if (dt == MXP_DTYPE_F16) return mxp_fp32_to_fp16(x);
    return u;
}

/* path holds exactly m's parameters, in order, with their shapes, in dtype dt,
 * each element the round-to-nearest-even conversion of the fp32 weight; and the
 * metadata says what it is. */
static void check_export(const char *path, const mxp_model_t *m, mxp_dtype dt, const char *dname,
                         const char *prec, const char *ckdir) {
    mxp_safetensors_t *f = NULL;
    mxp_status st = mxp_safetensors_open(&f, path);
    CHECK(st == MXP_OK, "open %s: %s", path, mxp_last_error());
    if (st != MXP_OK) return;
    CHECK(mxp_safetensors_count(f) == m->n_params, "%s: %d tensors, want %d", path,
          mxp_safetensors_count(f), m->n_params);
    for (int i = 0; i < m->n_params && i < mxp_safetensors_count(f); i++) {
        const mxp_param *p = m->params[i];
        const mxp_st_info *in = mxp_safetensors_info(f, i);
        CHECK(strcmp(in->name, p->name) == 0, "%s: tensor %d is '%s', want '%s'", path, i, in->name,
              p->name);
        CHECK(in->dtype == dt, "%s: '%s' is %s", path, p->name, mxp_dtype_name(in->dtype));
        int same = in->ndim == p->work->ndim;
        for (int d = 0; same && d < in->ndim; d++) same = in->shape[d] == p->work->shape[d];
        CHECK(same, "%s: '%s' has another shape", path, p->name);
        if (!same || in->dtype != dt) continue;
        mxp_tensor *t;
        if (mxp_tensor_create(&t, dt, in->ndim, in->shape) != MXP_OK) die(mxp_last_error());
        st = mxp_safetensors_read(f, p->name, t);
        CHECK(st == MXP_OK, "read '%s': %s", p->name, mxp_last_error());
        const float *x = w32(p);
        const int64_t n = mxp_tensor_numel(t);
        int64_t bad = 0, first = -1;
        for (int64_t j = 0; st == MXP_OK && j < n; j++) {
            uint32_t got = 0;
            memcpy(&got, (const char *)t->data + (size_t)j * esize(dt), esize(dt));
            if (got != want_bits(x[j], dt)) bad++, first = first < 0 ? j : first;
        }
        CHECK(bad == 0, "%s: '%s': %lld elements differ from the library's conversion (first %lld)",
              path, p->name, (long long)bad, (long long)first);
        mxp_tensor_free(t);
    }
    char real[PATH_MAX];
    if (!realpath(ckdir, real)) die(ckdir);
    const char *const want[] = {"format",
                                "pt",
                                "dtype",
                                dname,
                                "trained_mixed_precision",
                                prec,
                                "model",
                                "mlp",
                                "mixprec_version",
                                mxp_version(),
                                "source_checkpoint",
                                real,
                                "data_mean",
                                "0.25",
                                "data_std",
                                "0.5",
                                NULL};
    for (int k = 0; want[k]; k += 2) {
        const char *v = mxp_safetensors_meta(f, want[k]);
        CHECK(v && strcmp(v, want[k + 1]) == 0, "%s: metadata %s = '%s', want '%s'", path, want[k],
              v ? v : "(none)", want[k + 1]);
    }
    const char *arch = mxp_safetensors_meta(f, "architecture");
    const char *cfg = mxp_safetensors_meta(f, "model_config");
    CHECK(arch && strstr(arch, "linear(784->24)"), "architecture: %s", arch ? arch : "(none)");
    CHECK(cfg && strstr(cfg, "\"hidden1\":24") && strstr(cfg, "\"name\":\"mlp\""),
          "model_config: %s", cfg ? cfg : "(none)");
    mxp_safetensors_close(f);
}

/* Whether anything is at path. */
static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Run export and expect success with one summary line naming the output. */
static void export_ok(const char *ck, const char *dtype, const char *out) {
    result r = RUN("export", "--checkpoint", ck, "--dtype", dtype, "-o", out);
    CHECK(r.status == 0, "export %s %s: exit %d: %s", ck, dtype, r.status, r.err);
    CHECK(r.err && r.err[0] == '\0', "export %s: stderr: %s", dtype, r.err);
    CHECK(r.out && count_lines(r.out) == 1 && strstr(r.out, out) && strstr(r.out, "19270"),
          "export %s: summary: %s", dtype, r.out);
    result_free(&r);
}

/* ---- the tests ------------------------------------------------------------- */

/* Exports in each dtype, of an output directory (newest checkpoint) and of a checkpoint,
 * read back bit-exactly; dtype aliases; the fp16 boundary just below 65520. */
static void test_export(void) {
    /* an output directory with two checkpoints: the newest (largest N) is exported */
    const char *run = tpath("run");
    char old[600], ck[600];
    mkdir(run, 0700);
    snprintf(old, sizeof old, "%s/checkpoint-9", run);
    snprintf(ck, sizeof ck, "%s/checkpoint-10", run);
    mxp_model_t *mo = make_checkpoint(old, "fp16", 0, 0, NULL, 0, 0);
    mxp_model_free(mo);
    mxp_model_t *m = make_checkpoint(ck, "bf16", 1, 0, NULL, 0, 1);
    for (int k = 0; k < 3; k++) {
        char out[600];
        snprintf(out, sizeof out, "%s/export-%s.safetensors", tmpdir, dtypes[k]);
        if (dtype_of[k] == MXP_DTYPE_F16) continue; /* this one holds 3.4e38: fp16 below */
        export_ok(run, dtypes[k], out);
        check_export(out, m, dtype_of[k], dtypes[k], "bf16", ck);
    }
    mxp_model_free(m);
    /* fp16: the same edges without bf16's max; the checkpoint named directly */
    const char *ck16 = tpath("ck16");
    m = make_checkpoint(ck16, "fp16", 1, 1, NULL, 0, 0);
    const char *out16 = tpath("export-fp16.safetensors");
    export_ok(ck16, "fp16", out16);
    check_export(out16, m, MXP_DTYPE_F16, "fp16", "fp16", ck16);
    mxp_model_free(m);
    /* dtype spellings mxp_dtype_parse accepts; an existing output is replaced */
    const char *alias = tpath("alias.safetensors");
    m = make_checkpoint(tpath("ck_plain"), "no", 0, 0, NULL, 0, 0);
    export_ok(tpath("ck_plain"), "bfloat16", alias);
    export_ok(tpath("ck_plain"), "float32", alias);
    check_export(alias, m, MXP_DTYPE_F32, "fp32", "no", tpath("ck_plain"));
    mxp_model_free(m);
    /* the largest fp32 below 65520 rounds to 65504 in fp16: allowed */
    m = make_checkpoint(tpath("ck_edge"), "fp16", 0, 0, "fc2.bias", from_bits(0x477fefffu), 0);
    export_ok(tpath("ck_edge"), "fp16", tpath("edge.safetensors"));
    check_export(tpath("edge.safetensors"), m, MXP_DTYPE_F16, "fp16", "fp16", tpath("ck_edge"));
    mxp_model_free(m);
}

/* `mixprec show` of a file (table and --json) and of a checkpoint directory. */
static void test_show(void) {
    mxp_model_t *m = make_checkpoint(tpath("ck_show"), "bf16", 0, 0, NULL, 0, 1);
    const char *file = tpath("show.safetensors");
    export_ok(tpath("ck_show"), "bf16", file);
    result r = RUN("show", file);
    CHECK(r.status == 0 && r.err[0] == '\0', "show: exit %d: %s", r.status, r.err);
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        char shape[64], row[128];
        if (p->work->ndim == 2)
            snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)p->work->shape[0],
                     (long long)p->work->shape[1]);
        else
            snprintf(shape, sizeof shape, "[%lld]", (long long)p->work->shape[0]);
        snprintf(row, sizeof row, "%s ", p->name);
        const char *at = strstr(r.out, row);
        const char *eol = at ? strchr(at, '\n') : NULL;
        const char *sh = at ? strstr(at, shape) : NULL;
        CHECK(at && sh && sh < eol && strstr(at, "BF16") < eol, "show lists '%s' %s: %s", p->name,
              shape, r.out);
        /* the row's numel and bytes */
        char nums[64];
        const int64_t n = mxp_tensor_numel(p->work);
        snprintf(nums, sizeof nums, "%lld", (long long)(2 * n));
        CHECK(at && strstr(at, nums) && strstr(at, nums) < eol, "'%s' bytes %s", p->name, nums);
    }
    CHECK(strstr(r.out, "6 tensors, 19270 elements, 38540 bytes") && strstr(r.out, "format: pt") &&
              strstr(r.out, "dtype: bf16"),
          "show totals and metadata: %s", r.out);
    result_free(&r);
    r = RUN("show", "--json", file);
    CHECK(r.status == 0 && count_lines(r.out) == m->n_params + 1, "show --json: %d lines: %s",
          count_lines(r.out), r.out);
    CHECK(strstr(r.out, "{\"kind\":\"tensor\",") &&
              strstr(r.out, "\"name\":\"fc1.weight\",\"dtype\":\"BF16\",\"shape\":[24,784],"
                            "\"numel\":18816,\"bytes\":37632") &&
              strstr(r.out, "\"shape\":[10]") && strstr(r.out, "{\"kind\":\"file\",") &&
              strstr(r.out, "\"numel\":19270,") && strstr(r.out, "\"metadata\":{\"format\":\"pt\""),
          "show --json: %s", r.out);
    result_free(&r);
    /* a checkpoint directory (and the run directory above it): config and both files */
    r = RUN("show", tpath("ck_show"));
    CHECK(r.status == 0 && strstr(r.out, "model mlp") && strstr(r.out, "trained in bf16") &&
              strstr(r.out, "format 2") && strstr(r.out, "model.safetensors: 6 tensors") &&
              strstr(r.out, "training_state.safetensors: 12 tensors") &&
              strstr(r.out, "optimizer.exp_avg.fc1.weight") && strstr(r.out, "fc3.bias"),
          "show checkpoint: %d %s %s", r.status, r.out, r.err);
    result_free(&r);
    r = RUN("show", "--json", tpath("run"));
    CHECK(r.status == 0 && strncmp(r.out, "{\"kind\":\"checkpoint\"", 20) == 0 &&
              strstr(r.out, "checkpoint-10\"") && strstr(r.out, "\"mixed_precision\":\"bf16\"") &&
              strstr(r.out, "\"name\":\"mlp\"") && count_lines(r.out) == 1 + 7 + 13,
          "show --json run dir: %d lines: %s %s", count_lines(r.out), r.out, r.err);
    result_free(&r);
    r = RUN("show", tpath("ck16"));
    CHECK(r.status == 0 && strstr(r.out, "training_state.safetensors: absent"),
          "show without training state: %s %s", r.out, r.err);
    result_free(&r);
    mxp_model_free(m);
}

/* Copy file from to file to, without its last drop bytes. */
static void copy_file(const char *from, const char *to, long drop) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) die(from);
    fseek(in, 0, SEEK_END);
    long n = ftell(in) - drop;
    fseek(in, 0, SEEK_SET);
    for (long i = 0; i < n; i++) fputc(fgetc(in), out);
    fclose(in);
    fclose(out);
}

/* A copy of checkpoint dir src at dst with model.safetensors cut short by drop bytes. */
static void truncated_copy(const char *src, const char *dst, long drop) {
    char a[PATH_MAX], b[PATH_MAX];
    mkdir(dst, 0700);
    snprintf(a, sizeof a, "%s/config.json", src);
    snprintf(b, sizeof b, "%s/config.json", dst);
    copy_file(a, b, 0);
    snprintf(a, sizeof a, "%s/model.safetensors", src);
    snprintf(b, sizeof b, "%s/model.safetensors", dst);
    copy_file(a, b, drop);
}

/* Every bad input: exit 2, nothing on stdout, one line on stderr, and no file written. */
static void test_bad_input(void) {
    char ck[600], out[600], empty[600]; /* copies: tpath's buffers are reused */
    snprintf(ck, sizeof ck, "%s", tpath("ck_plain"));
    snprintf(out, sizeof out, "%s", tpath("bad.safetensors"));
    snprintf(empty, sizeof empty, "%s", tpath("empty"));
    mkdir(empty, 0700);
    /* the command line */
    EXPECT_USAGE("export", "--dtype", "bf16", "-o", out);
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "fp8", "-o", out);
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "", "-o", out);
    EXPECT_USAGE("export", "--checkpoint", ck, "-o", out);
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "bf16");
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "bf16", "-o");
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "bf16", "-o", out, "extra");
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "bf16", "--bogus", "-o", out);
    /* the checkpoint */
    EXPECT_USAGE("export", "--checkpoint", empty, "--dtype", "bf16", "-o", out);
    EXPECT_USAGE("export", "--checkpoint", tpath("nowhere"), "--dtype", "bf16", "-o", out);
    truncated_copy(ck, tpath("ck_trunc"), 100);
    EXPECT_USAGE("export", "--checkpoint", tpath("ck_trunc"), "--dtype", "bf16", "-o", out);
    result r = RUN("export", "--checkpoint", tpath("ck_trunc"), "--dtype", "bf16", "-o", out);
    CHECK(strstr(r.err, "model.safetensors") && !strstr(r.err, ".c:"),
          "truncated: names the file, not our source: %s", r.err);
    result_free(&r);
    /* the output */
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", tmpdir);
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "bf16", "-o", nodir);
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "bf16", "-o", empty);
    char own[700];
    snprintf(own, sizeof own, "%s/model.safetensors", ck);
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "bf16", "-o", own);
    snprintf(own, sizeof own, "%s/config.json", ck);
    EXPECT_USAGE("export", "--checkpoint", ck, "--dtype", "bf16", "-o", own);
    /* weights the dtype cannot hold: refused, naming the tensor and its max |x| */
    mxp_model_free(make_checkpoint(tpath("ck_big"), "bf16", 0, 0, "fc2.weight", 1e6f, 0));
    EXPECT_USAGE("export", "--checkpoint", tpath("ck_big"), "--dtype", "fp16", "-o", out);
    r = RUN("export", "--checkpoint", tpath("ck_big"), "--dtype", "fp16", "-o", out);
    CHECK(strstr(r.err, "fc2.weight") && strstr(r.err, "1000000") && strstr(r.err, "65504"),
          "fp16 overflow message: %s", r.err);
    result_free(&r);
    mxp_model_free(make_checkpoint(tpath("ck_65520"), "fp16", 0, 0, "fc1.bias", 65520.0f, 0));
    EXPECT_USAGE("export", "--checkpoint", tpath("ck_65520"), "--dtype", "fp16", "-o", out);
    mxp_model_free(make_checkpoint(tpath("ck_nan"), "bf16", 0, 0, "fc3.bias", NAN, 0));
    EXPECT_USAGE("export", "--checkpoint", tpath("ck_nan"), "--dtype", "bf16", "-o", out);
    r = RUN("export", "--checkpoint", tpath("ck_nan"), "--dtype", "fp32", "-o", out);
    CHECK(r.status == 2 && strstr(r.err, "fc3.bias") && strstr(r.err, "NaN"), "NaN: %s", r.err);
    result_free(&r);
    /* 1e6 fits bf16 */
    export_ok(tpath("ck_big"), "bf16", tpath("big-bf16.safetensors"));
    CHECK(!exists(out), "a refused export left %s", out);
    /* show */
    EXPECT_USAGE("show");
    EXPECT_USAGE("show", out, out);
    EXPECT_USAGE("show", tpath("nowhere.safetensors"));
    EXPECT_USAGE("show", empty);
    EXPECT_USAGE("show", tpath("ck_trunc"));
    const char *trunc = tpath("trunc.safetensors"), *junk = tpath("junk.safetensors");
    copy_file(tpath("show.safetensors"), trunc, 10);
    EXPECT_USAGE("show", trunc);
    FILE *f = fopen(junk, "wb");
    fputs("this is not a safetensors file at all, just text\n", f);
    fclose(f);
    EXPECT_USAGE("show", junk);
    EXPECT_USAGE("show", "--json", junk);
    /* help */
    r = RUN("export", "--help");
    CHECK(r.status == 0 && strstr(r.out, "usage: mixprec export"), "export --help: %s", r.out);
    result_free(&r);
    r = RUN("help", "show");
    CHECK(r.status == 0 && strstr(r.out, "usage: mixprec show"), "help show: %s", r.out);
    result_free(&r);
    r = RUN("--help");
    CHECK(r.status == 0 && strstr(r.out, "  export ") && strstr(r.out, "  show "),
          "mixprec --help lists export and show: %s", r.out);
    result_free(&r);
}

/* ---- against the official reader (python) ---------------------------------- */

/* Export one checkpoint in each dtype and run SCRIPT with PYTHON on the checkpoint's
 * model.safetensors and the three exports. Returns 77 when the script skips. */
static int run_python(const char *python, const char *script) {
    const char *ck = tpath("ck_py");
    mxp_model_t *m = make_checkpoint(ck, "fp16", 1, 1, NULL, 0, 0);
    mxp_model_free(m);
    char *argv[8];
    int argc = 0;
    argv[argc++] = (char *)python;
    argv[argc++] = (char *)script;
    char model[600];
    snprintf(model, sizeof model, "%s/model.safetensors", ck);
    argv[argc++] = model;
    static char outs[3][600];
    for (int k = 0; k < 3; k++) {
        snprintf(outs[k], sizeof outs[k], "%s/py-%s.safetensors", tmpdir, dtypes[k]);
        export_ok(ck, dtypes[k], outs[k]);
        argv[argc++] = outs[k];
    }
    argv[argc] = NULL;
    pid_t pid;
    int status = 0;
    if (posix_spawn(&pid, python, NULL, NULL, argv, environ) != 0) die(python);
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) return 77;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "%s: the exports disagree with safetensors.torch and torch's conversions (status %d)",
          script, status);
    return 0;
}

int main(int argc, char **argv) {
    if (access(binary, X_OK) != 0) {
        fprintf(stderr, "test_export_cli: %s is not built\n", binary);
        return 1;
    }
    if (tmpdir_make("export") != 0) die("mkdtemp");
    int rc = 0;
    if (argc == 4 && strcmp(argv[1], "--python") == 0) {
        rc = run_python(argv[2], argv[3]);
    } else {
        test_export();
        test_show();
        test_bad_input();
    }
    tmpdir_remove();
    if (rc == 77) SKIP("python lacks torch or safetensors (pip install --no-deps safetensors)");
    return check_exit(argc == 4 ? "test_export_cli --python" : "test_export_cli");
}
