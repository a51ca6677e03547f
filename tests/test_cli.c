/*
 * test_cli.c - runs the built `mixprec` binary as a user would (posix_spawn,
 * stdout/stderr captured, exit status checked) and checks its output against
 * the library: formats, inspect, env, bench, help, and every kind of bad input
 * (exit 2, exactly one line on stderr, nothing on stdout). Speed is not checked.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "mixprec.h"

#include "cli_run.h"

/* ---- a minimal JSON checker -------------------------------------------- */
/* Enough of RFC 8259 to reject what a sloppy printer produces (inf, nan,
 * trailing commas, bad escapes, unquoted keys) and to read top-level fields. */

typedef struct jfield {
    char key[48];
    const char *val; /* start of the value's text */
    char type;       /* 's' string, 'n' number, 'b' bool, 'z' null, 'o' object, 'a' array */
} jfield;

typedef struct jobj {
    jfield f[48];
    int n;
} jobj;

static const char *jws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

static const char *jstring(const char *p) {
    if (*p++ != '"') return NULL;
    while (*p && *p != '"') {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *jdigits(const char *p) {
    if (*p < '0' || *p > '9') return NULL;
    while (*p >= '0' && *p <= '9') p++;
    return p;
}

static const char *jnumber(const char *p) {
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (!(p = jdigits(p)))
        return NULL;
    if (*p == '.' && !(p = jdigits(p + 1))) return NULL;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(p = jdigits(p))) return NULL;
    }
    return p;
}

static const char *jvalue(const char *p, char *type, int depth, jobj *top);

static const char *jobject(const char *p, int depth, jobj *top) {
    p = jws(p + 1);
    if (*p == '}') return p + 1;
    for (;;) {
        const char *k = p;
        if (!(p = jstring(p))) return NULL;
        jfield *f = top && depth == 1 && top->n < 48 ? &top->f[top->n] : NULL;
        if (f) snprintf(f->key, sizeof f->key, "%.*s", (int)(p - k - 2), k + 1);
        p = jws(p);
        if (*p++ != ':') return NULL;
        p = jws(p);
        char t;
        if (f) f->val = p;
        if (!(p = jvalue(p, &t, depth, top))) return NULL;
        if (f) {
            f->type = t;
            top->n++;
        }
        p = jws(p);
        if (*p == '}') return p + 1;
        if (*p++ != ',') return NULL;
        p = jws(p);
    }
}

static const char *jvalue(const char *p, char *type, int depth, jobj *top) {
    if (depth > 32) return NULL;
    switch (*p) {
    case '{': *type = 'o'; return jobject(p, depth + 1, top);
    case '[':
        *type = 'a';
        p = jws(p + 1);
        if (*p == ']') return p + 1;
        for (;;) {
            char t;
            if (!(p = jvalue(p, &t, depth + 1, top))) return NULL;
            p = jws(p);
            if (*p == ']') return p + 1;
            if (*p++ != ',') return NULL;
            p = jws(p);
        }
    case '"': *type = 's'; return jstring(p);
    case 't': *type = 'b'; return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': *type = 'b'; return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': *type = 'z'; return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: *type = 'n'; return jnumber(p);
    }
}

/* Parse one line holding exactly one JSON object; 1 if valid. */
static int json_line(const char *line, size_t len, jobj *o) {
    char *s = malloc(len + 1);
    memcpy(s, line, len);
    s[len] = '\0';
    o->n = 0;
    const char *p = jws(s);
    char t;
    int ok = *p == '{' && (p = jvalue(p, &t, 0, o)) && *jws(p) == '\0';
    /* the value pointers point into s: re-point them into line before s goes */
    for (int i = 0; ok && i < o->n; i++) o->f[i].val = line + (o->f[i].val - s);
    free(s);
    return ok;
}

static const jfield *jget(const jobj *o, const char *key) {
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->f[i].key, key) == 0) return &o->f[i];
    return NULL;
}

/* NAN when absent or not a number; INFINITY marks null */
static double jnum(const jobj *o, const char *key) {
    const jfield *f = jget(o, key);
    if (!f) return NAN;
    if (f->type == 'z') return INFINITY;
    return f->type == 'n' ? strtod(f->val, NULL) : NAN;
}

static int jstr_is(const jobj *o, const char *key, const char *want) {
    const jfield *f = jget(o, key);
    size_t n = strlen(want);
    return f && f->type == 's' && strncmp(f->val + 1, want, n) == 0 && f->val[n + 1] == '"';
}

static int jbool(const jobj *o, const char *key) {
    const jfield *f = jget(o, key);
    if (!f || f->type != 'b') return -1;
    return f->val[0] == 't';
}

/* Split stdout into lines and parse each as an object; returns the count, or
 * -1 if any line is not one JSON object. */
static int json_lines(const char *out, jobj *objs, int max) {
    int n = 0;
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl) return -1; /* every line ends with a newline */
        if (n >= max || !json_line(p, (size_t)(nl - p), &objs[n])) return -1;
        n++;
        p = nl + 1;
    }
    return n;
}

static void test_json_checker(void) {
    /* the checker itself must be able to say no */
    jobj o;
    const char *bad[] = {"{\"a\":inf}", "{\"a\":nan}",      "{\"a\":1,}",  "{a:1}",
                         "{\"a\":01}",  "{\"a\":\"x\\q\"}", "{\"a\":1} x", "[1]",
                         "{\"a\":1.}",  "{\"a\":-}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!json_line(bad[i], strlen(bad[i]), &o), "checker accepted %s", bad[i]);
    const char *good = "{\"a\":-1.5e-3,\"b\":\"x\\\"y\",\"c\":null,\"d\":[1,{\"e\":true}],"
                       "\"f\":false}";
    CHECK(json_line(good, strlen(good), &o), "checker rejected %s", good);
    CHECK(o.n == 5 && jnum(&o, "a") == -1.5e-3 && isinf(jnum(&o, "c")) && jbool(&o, "f") == 0,
          "checker read the fields wrong (n=%d)", o.n);
}

/* ---- formats ----------------------------------------------------------- */

static const mxp_format *const formats3[] = {&mxp_format_fp32, &mxp_format_fp16, &mxp_format_bf16};

static void test_formats(void) {
    result r = RUN("formats");
    CHECK(r.status == 0 && r.err[0] == '\0', "formats: exit %d, stderr %s", r.status, r.err);
    for (int i = 0; i < 3; i++) {
        const mxp_format *f = formats3[i];
        char key[16];
        snprintf(key, sizeof key, "\n%s ", f->name);
        const char *line = strstr(r.out, key);
        CHECK(line != NULL, "formats: no row for %s", f->name);
        if (!line) continue;
        char name[16], layout[16];
        int bits, bias;
        double mx, mn, ms, eps, dig;
        int got = sscanf(line + 1, "%15s %d %15s %d %lf %lf %lf %lf %lf", name, &bits, layout,
                         &bias, &mx, &mn, &ms, &eps, &dig);
        CHECK(got == 9, "formats: %s row has %d fields", f->name, got);
        char want_layout[16];
        snprintf(want_layout, sizeof want_layout, "1-%d-%d", f->exp_bits, f->man_bits);
        CHECK(strcmp(layout, want_layout) == 0 && bits == f->bits && bias == f->bias,
              "formats: %s layout %s bits %d bias %d", f->name, layout, bits, bias);
        CHECK(check_close(mx, mxp_format_max(f), 0, 1e-5), "%s max %g", f->name, mx);
        CHECK(check_close(mn, mxp_format_min_normal(f), 0, 1e-5), "%s min normal %g", f->name, mn);
        CHECK(check_close(ms, mxp_format_min_subnormal(f), 0, 1e-5), "%s min sub %g", f->name, ms);
        CHECK(check_close(eps, mxp_format_epsilon(f), 0, 1e-5), "%s eps %g", f->name, eps);
        CHECK(check_close(dig, mxp_format_decimal_digits(f), 0.006, 0), "%s digits %g", f->name,
              dig);
    }
    /* the source document's fp16 numbers, independently of the library */
    const char *fp16 = strstr(r.out, "\nfp16 ");
    if (fp16) {
        double mx, mn, ms, eps;
        sscanf(fp16 + 1, "%*s %*d %*s %*d %lf %lf %lf %lf", &mx, &mn, &ms, &eps);
        CHECK(mx == 65504 && check_close(mn, 6.10352e-05, 0, 1e-5) &&
                  check_close(ms, 5.96046e-08, 0, 1e-5) && check_close(eps, 0.000976562, 0, 1e-5),
              "fp16 row: %g %g %g %g", mx, mn, ms, eps);
    }
    CHECK(strstr(r.out, "2^-24") && strstr(r.out, "65520"), "formats: no exact fp16 range lines");
    CHECK(!strstr(r.out, "e4m3"), "formats without --all shows fp8");
    result_free(&r);

    r = RUN("formats", "--all");
    CHECK(r.status == 0 && strstr(r.out, "\ne4m3 ") && strstr(r.out, "\ne5m2 "),
          "formats --all: exit %d, no fp8 rows", r.status);
    result_free(&r);

    r = RUN("formats", "--json", "--all");
    jobj o[8];
    int n = json_lines(r.out, o, 8);
    CHECK(r.status == 0 && n == 5, "formats --json --all: exit %d, %d JSON lines", r.status, n);
    const mxp_format *all[] = {&mxp_format_fp32, &mxp_format_fp16, &mxp_format_bf16,
                               &mxp_format_e4m3, &mxp_format_e5m2};
    for (int i = 0; i < n && i < 5; i++) {
        const mxp_format *f = all[i];
        CHECK(jstr_is(&o[i], "format", f->name), "formats --json line %d is not %s", i, f->name);
        CHECK(jnum(&o[i], "bits") == f->bits && jnum(&o[i], "exp_bits") == f->exp_bits &&
                  jnum(&o[i], "man_bits") == f->man_bits && jnum(&o[i], "bias") == f->bias &&
                  jnum(&o[i], "sign_bits") == 1,
              "formats --json %s: layout fields", f->name);
        /* JSON numbers are printed to round trip, so these are exact */
        CHECK(jnum(&o[i], "max") == mxp_format_max(f), "%s json max", f->name);
        CHECK(jnum(&o[i], "min_normal") == mxp_format_min_normal(f), "%s json min_normal", f->name);
        CHECK(jnum(&o[i], "min_subnormal") == mxp_format_min_subnormal(f), "%s json min_subnormal",
              f->name);
        CHECK(jnum(&o[i], "epsilon") == mxp_format_epsilon(f), "%s json epsilon", f->name);
        CHECK(jnum(&o[i], "decimal_digits") == mxp_format_decimal_digits(f), "%s json digits",
              f->name);
        CHECK(jget(&o[i], "overflow_from") && jget(&o[i], "flush_upto") && jget(&o[i], "nonfinite"),
              "%s json: missing keys", f->name);
    }
    if (n >= 3) {
        CHECK(isinf(jnum(&o[0], "overflow_from")) && isinf(jnum(&o[0], "flush_upto")),
              "fp32 overflow_from/flush_upto should be null");
        CHECK(jnum(&o[1], "overflow_from") == 65520 && jnum(&o[1], "flush_upto") == ldexp(1, -25),
              "fp16 overflow_from %g flush_upto %g", jnum(&o[1], "overflow_from"),
              jnum(&o[1], "flush_upto"));
        /* the thresholds agree with the encoder on both sides */
        const double of = jnum(&o[2], "overflow_from"), fz = jnum(&o[2], "flush_upto");
        CHECK(mxp_format_classify(&mxp_format_bf16, mxp_fp32_to_bf16((float)of)) == MXP_CLASS_INF &&
                  mxp_format_classify(&mxp_format_bf16, mxp_fp32_to_bf16(nextafterf(
                                                            (float)of, 0))) == MXP_CLASS_NORMAL,
              "bf16 overflow_from %g is not the edge", of);
        CHECK(mxp_fp32_to_bf16((float)fz) == 0 && mxp_fp32_to_bf16(nextafterf((float)fz, 1)) != 0,
              "bf16 flush_upto %g is not the edge", fz);
    }
    result_free(&r);
}

/* ---- inspect ----------------------------------------------------------- */

/* The text between the header line `value` and the next blank line. */
static char *block_of(const char *out, const char *value) {
    char key[64];
    snprintf(key, sizeof key, "\n%s\n", value);
    const char *b = strstr(out, key);
    if (!b) return NULL;
    b += 1;
    const char *e = strstr(b, "\n\n");
    size_t n = e ? (size_t)(e - b) : strlen(b);
    char *s = malloc(n + 1);
    memcpy(s, b, n);
    s[n] = '\0';
    return s;
}

/* The lines of format `fmt` inside a block (from "  fmt " to the next format). */
static char *section_of(const char *block, const char *fmt) {
    char key[16];
    snprintf(key, sizeof key, "\n  %s ", fmt);
    const char *b = strstr(block, key);
    if (!b) return NULL;
    b += 1;
    const char *e = strstr(b + 3, "\n  f");
    const char *e2 = strstr(b + 3, "\n  b");
    if (!e || (e2 && e2 < e)) e = e2;
    size_t n = e ? (size_t)(e - b) : strlen(b);
    char *s = malloc(n + 1);
    memcpy(s, b, n);
    s[n] = '\0';
    return s;
}

static void test_inspect_text(void) {
    result r = RUN("inspect", "0.1", "1e-8", "70000");
    CHECK(r.status == 0 && r.err[0] == '\0', "inspect demo: exit %d stderr %s", r.status, r.err);
    char *b01 = block_of(r.out, "0.1"), *b8 = block_of(r.out, "1e-8"),
         *b7 = block_of(r.out, "70000");
    CHECK(b01 && b8 && b7, "inspect demo: missing a value's block:\n%s", r.out);
    if (b01 && b8 && b7) {
        char *h01 = section_of(b01, "fp16"), *f01 = section_of(b01, "fp32");
        CHECK(h01 && strstr(h01, "0 | 01011 | 1001100110") && strstr(h01, "0x2e66") &&
                  strstr(h01, "0.0999755859375"),
              "fp16 of 0.1: %s", h01);
        /* 0.1's rounding error in fp16: |0.0999755859375 - 0.1| */
        CHECK(h01 && strstr(h01, "abs 2.44141e-05"), "fp16 0.1 error: %s", h01);
        CHECK(f01 && strstr(f01, "0 | 01111011 | 10011001100110011001101") &&
                  strstr(f01, "0.100000001490116119384765625") && strstr(f01, "note"),
              "fp32 of 0.1 (exact stored value, rounding note): %s", f01);
        char *h8 = section_of(b8, "fp16"), *bf8 = section_of(b8, "bf16");
        CHECK(h8 && strstr(h8, "flushes to zero") && strstr(h8, "0x0000"), "fp16 1e-8: %s", h8);
        CHECK(bf8 && !strstr(bf8, "flush") && strstr(bf8, "normal") && !strstr(bf8, "note"),
              "bf16 1e-8 should be fine: %s", bf8);
        char *h7 = section_of(b7, "fp16"), *bf7 = section_of(b7, "bf16");
        CHECK(h7 && strstr(h7, "overflows to inf") && strstr(h7, "0x7c00") && strstr(h7, "65504"),
              "fp16 70000: %s", h7);
        CHECK(bf7 && !strstr(bf7, "overflow") && strstr(bf7, "70144"), "bf16 70000: %s", bf7);
        free(h01), free(f01), free(h8), free(bf8), free(h7), free(bf7);
    }
    free(b01), free(b8), free(b7);
    result_free(&r);
}

/* What the library says a value becomes in format f (the CLI's rows must match). */
typedef struct expect {
    double stored;
    mxp_class cls;
} expect;

static expect expected(const mxp_format *f, double x) {
    uint32_t bits = mxp_format_encode(f, (float)x);
    expect e = {mxp_format_decode(f, bits), mxp_format_classify(f, bits)};
    return e;
}

static void check_inspect_json(const char *const *values, int nv, int all) {
    const char *args[64];
    int na = 0;
    args[na++] = "inspect";
    args[na++] = "--json";
    if (all) args[na++] = "--all";
    args[na++] = "--";
    for (int i = 0; i < nv; i++) args[na++] = values[i];
    args[na] = NULL;
    result r = run_env(NULL, args);
    const int nf = all ? 5 : 3;
    jobj *o = malloc(sizeof *o * 128);
    int n = json_lines(r.out, o, 128);
    CHECK(r.status == 0 && n == nv * nf, "inspect --json: exit %d, %d lines (want %d): %s",
          r.status, n, nv * nf, r.err);
    const mxp_format *fmts[] = {&mxp_format_fp32, &mxp_format_fp16, &mxp_format_bf16,
                                &mxp_format_e4m3, &mxp_format_e5m2};
    const char *keys[] = {"input", "value",    "format",    "sign",      "exponent",  "mantissa",
                          "hex",   "stored",   "class",     "abs_error", "rel_error", "ulp",
                          "exact", "overflow", "subnormal", "flush",     "note"};
    for (int i = 0; i < n && i < nv * nf; i++) {
        const jobj *j = &o[i];
        const mxp_format *f = fmts[i % nf];
        const double x = strtod(values[i / nf], NULL);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            CHECK(jget(j, keys[k]), "inspect --json %s %s: no key %s", values[i / nf], f->name,
                  keys[k]);
        CHECK(jstr_is(j, "format", f->name), "inspect --json line %d: format", i);
        expect e = expected(f, x);
        CHECK(jstr_is(j, "class", mxp_class_name(e.cls)), "inspect %s %s: class, want %s",
              values[i / nf], f->name, mxp_class_name(e.cls));
        double stored = jnum(j, "stored");
        if (isfinite(e.stored))
            CHECK(stored == e.stored, "inspect %s %s: stored %.17g want %.17g", values[i / nf],
                  f->name, stored, e.stored);
        else
            CHECK(isinf(stored), "inspect %s %s: stored should be null", values[i / nf], f->name);
        if (isfinite(x) && isfinite(e.stored)) {
            CHECK(jnum(j, "abs_error") == fabs(e.stored - x), "inspect %s %s: abs_error %.17g",
                  values[i / nf], f->name, jnum(j, "abs_error"));
            if (x != 0)
                CHECK(check_close(jnum(j, "rel_error"), fabs(e.stored - x) / fabs(x), 0, 1e-15),
                      "inspect %s %s: rel_error", values[i / nf], f->name);
        }
        if (isfinite(x))
            CHECK(jnum(j, "ulp") == mxp_format_ulp(f, x), "inspect %s %s: ulp %.17g want %.17g",
                  values[i / nf], f->name, jnum(j, "ulp"), mxp_format_ulp(f, x));
        const int ovf = isfinite(x) && (e.cls == MXP_CLASS_INF || e.cls == MXP_CLASS_NAN);
        const int fl = isfinite(x) && x != 0 && e.cls == MXP_CLASS_ZERO;
        CHECK(jbool(j, "overflow") == ovf && jbool(j, "flush") == fl &&
                  jbool(j, "subnormal") == (e.cls == MXP_CLASS_SUBNORMAL),
              "inspect %s %s: flags overflow=%d flush=%d", values[i / nf], f->name,
              jbool(j, "overflow"), jbool(j, "flush"));
        const jfield *note = jget(j, "note");
        CHECK(!(ovf || fl) || (note && note->val[1] != '"'), "inspect %s %s: no note",
              values[i / nf], f->name);
        CHECK(jnum(j, "sign") == (signbit(x) ? 1 : 0), "inspect %s %s: sign", values[i / nf],
              f->name);
        /* the bits fields are the stored pattern */
        const jfield *ex = jget(j, "exponent"), *ma = jget(j, "mantissa");
        if (ex && ma) {
            uint32_t bits = mxp_format_encode(f, (float)x), be = 0, bm = 0;
            int le = 0, lm = 0;
            for (const char *p = ex->val + 1; *p == '0' || *p == '1'; p++, le++)
                be = be * 2 + (uint32_t)(*p - '0');
            for (const char *p = ma->val + 1; *p == '0' || *p == '1'; p++, lm++)
                bm = bm * 2 + (uint32_t)(*p - '0');
            CHECK(le == f->exp_bits && lm == f->man_bits &&
                      be == ((bits >> f->man_bits) & ((1u << f->exp_bits) - 1)) &&
                      bm == (bits & ((1u << f->man_bits) - 1)),
                  "inspect %s %s: exponent/mantissa fields", values[i / nf], f->name);
        }
    }
    free(o);
    result_free(&r);
}

static void test_inspect_json(void) {
    const char *demo[] = {"0.1", "1e-8", "70000"};
    check_inspect_json(demo, 3, 0);
    const char *special[] = {"inf",    "-inf", "nan",  "-0",    "0x1p-24", "65520", "65519",
                             "1e-310", "1e39", "-2.5", "1e-45", "3e-8",    "448",   "500"};
    check_inspect_json(special, 14, 1);

    /* the demo's facts, spelled out */
    result r = RUN("inspect", "--json", "1e-8", "70000");
    jobj o[6];
    int n = json_lines(r.out, o, 6);
    CHECK(n == 6, "inspect --json 1e-8 70000: %d lines", n);
    if (n == 6) {
        CHECK(jbool(&o[1], "flush") == 1 && jstr_is(&o[1], "class", "zero"), "fp16 1e-8 flush");
        CHECK(jbool(&o[2], "flush") == 0 && jstr_is(&o[2], "class", "normal"), "bf16 1e-8 ok");
        CHECK(jbool(&o[4], "overflow") == 1 && jstr_is(&o[4], "class", "inf") &&
                  jstr_is(&o[4], "hex", "0x7c00"),
              "fp16 70000 overflow");
        CHECK(jbool(&o[5], "overflow") == 0 && jnum(&o[5], "stored") == 70144, "bf16 70000");
    }
    result_free(&r);

    /* many values: nothing is sized by a fixed table */
    const char *many[505];
    many[0] = "inspect";
    many[1] = "--json";
    for (int i = 2; i < 502; i++) many[i] = (i % 3) ? "0.3" : "-1e-5";
    many[502] = NULL;
    r = run_env(NULL, many);
    CHECK(r.status == 0 && count_lines(r.out) == 1500, "inspect with 500 values: exit %d, %d lines",
          r.status, count_lines(r.out));
    result_free(&r);
}

/* ---- env, global options and the environment variables ------------------ */

static void test_env(void) {
    result r = RUN("env");
    CHECK(r.status == 0 && r.err[0] == '\0', "env: exit %d stderr %s", r.status, r.err);
    char want[96];
    snprintf(want, sizeof want, "isa active     %s (", mxp_isa_name(mxp_isa_detect()));
    CHECK(strstr(r.out, want) != NULL, "env: want '%s' in:\n%s", want, r.out);
    CHECK(strstr(r.out, mxp_version()) && strstr(r.out, "gemm kernels") &&
              strstr(r.out, "threads") && strstr(r.out, "build"),
          "env output incomplete:\n%s", r.out);
    const mxp_dtype dts[] = {MXP_DTYPE_F32, MXP_DTYPE_BF16, MXP_DTYPE_F16};
    const char *labels[] = {"fp32: ", "bf16: ", "fp16: "};
    for (int i = 0; i < 3; i++) {
        char line[160];
        snprintf(line, sizeof line, "%s%s\n", labels[i], mxp_gemm_kernel_name(dts[i], dts[i]));
        CHECK(strstr(r.out, line) != NULL, "env: want kernel line '%s'", line);
    }
    result_free(&r);

    r = run_env(ARGS("MIXPREC_ISA=ref"), ARGS("env"));
    CHECK(r.status == 0 && strstr(r.out, "isa active     ref (forced by MIXPREC_ISA"),
          "MIXPREC_ISA=ref env:\n%s%s", r.out, r.err);
    result_free(&r);
    r = RUN("--isa", "ref", "env");
    CHECK(r.status == 0 && strstr(r.out, "isa active     ref (forced by --isa"),
          "--isa ref env:\n%s%s", r.out, r.err);
    result_free(&r);
    r = RUN("env", "--isa=avx2", "--json");
    jobj o[2];
    if (mxp_isa_detect() >= MXP_ISA_AVX2) {
        CHECK(r.status == 0 && json_lines(r.out, o, 2) == 1 && jstr_is(&o[0], "isa_active", "avx2"),
              "env --isa=avx2 --json: %s%s", r.out, r.err);
    }
    result_free(&r);

    r = run_env(ARGS("MIXPREC_NUM_THREADS=1"), ARGS("env", "--json"));
    int n = json_lines(r.out, o, 2);
    CHECK(r.status == 0 && n == 1, "env --json: exit %d, %d lines", r.status, n);
    const char *keys[] = {"version",  "cpu_features", "isa_detected", "isa_active",
                          "isa_why",  "gemm_kernels", "threads",      "openmp",
                          "compiler", "sanitizers"};
    for (size_t i = 0; n == 1 && i < sizeof keys / sizeof keys[0]; i++)
        CHECK(jget(&o[0], keys[i]), "env --json: no key %s", keys[i]);
    CHECK(n == 1 && jnum(&o[0], "threads") == 1, "MIXPREC_NUM_THREADS=1: threads %g",
          jnum(&o[0], "threads"));
    result_free(&r);
    r = RUN("--threads", "3", "env", "--json");
    n = json_lines(r.out, o, 2);
    CHECK(r.status == 0 && n == 1 && jnum(&o[0], "threads") == (mxp_have_openmp() ? 3 : 1),
          "--threads 3: %s%s", r.out, r.err);
    result_free(&r);
    /* an empty variable counts as unset, as in the library */
    r = run_env(ARGS("MIXPREC_ISA="), ARGS("formats"));
    CHECK(r.status == 0, "MIXPREC_ISA= (empty): exit %d %s", r.status, r.err);
    result_free(&r);

    const char *cmds[][3] = {{"env", NULL, NULL},
                             {"formats", NULL, NULL},
                             {"inspect", "1", NULL},
                             {"bench", "convert", NULL}};
    const char *bad_env[] = {"MIXPREC_ISA=bogus",        "MIXPREC_ISA=AVX2",
                             "MIXPREC_NUM_THREADS=0",    "MIXPREC_NUM_THREADS=abc",
                             "MIXPREC_NUM_THREADS=5000", "MIXPREC_NUM_THREADS=-2",
                             "MIXPREC_NUM_THREADS=2x"};
    for (size_t c = 0; c < 4; c++) {
        for (size_t e = 0; e < sizeof bad_env / sizeof bad_env[0]; e++) {
            char what[96];
            snprintf(what, sizeof what, "%s mixprec %s", bad_env[e], cmds[c][0]);
            const char *env[] = {bad_env[e], NULL};
            expect_usage_env(what, env, cmds[c], 2);
        }
    }
    r = run_env(ARGS("MIXPREC_ISA=bogus"), ARGS("env"));
    CHECK(strstr(r.err, "MIXPREC_ISA") && strstr(r.err, "bogus"), "MIXPREC_ISA=bogus: %s", r.err);
    result_free(&r);
    /* a family this CPU cannot run: the library would fall back quietly */
    if (mxp_isa_detect() < MXP_ISA_AVX512BF16) {
        char var[64];
        snprintf(var, sizeof var, "MIXPREC_ISA=%s", mxp_isa_name(mxp_isa_detect() + 1));
        const char *env[] = {var, NULL};
        expect_usage_env("unsupported MIXPREC_ISA", env, ARGS("env"), 2);
        expect_usage_env("unsupported --isa", NULL,
                         ARGS("--isa", mxp_isa_name(mxp_isa_detect() + 1), "env"), 2);
    } else {
        printf("note: this CPU runs every ISA family; the unsupported-ISA case is not exercised\n");
    }
}

/* ---- bench ------------------------------------------------------------- */

static void test_bench_convert(void) {
    result r = RUN("bench", "convert", "--n", "4099", "--repeat", "2", "--json", "--threads", "2");
    jobj o[8];
    int n = json_lines(r.out, o, 8);
    CHECK(r.status == 0 && n == 5, "bench convert --json: exit %d, %d lines: %s", r.status, n,
          r.err);
    const char *pairs[][2] = {
        {"f32", "bf16"}, {"f32", "f16"}, {"bf16", "f32"}, {"f16", "f32"}, {"f32", "f32"}};
    for (int i = 0; i < n && i < 5; i++) {
        CHECK(jstr_is(&o[i], "bench", "convert") && jstr_is(&o[i], "from", pairs[i][0]) &&
                  jstr_is(&o[i], "to", pairs[i][1]),
              "bench convert line %d: from/to", i);
        CHECK(jstr_is(&o[i], "op", i == 4 ? "memcpy" : "convert"), "bench convert line %d: op", i);
        CHECK(jnum(&o[i], "n") == 4099 && jnum(&o[i], "threads") >= 1 && jnum(&o[i], "repeat") == 2,
              "bench convert line %d: n/threads/repeat", i);
        CHECK(jnum(&o[i], "gbps") > 0 && isfinite(jnum(&o[i], "gbps")) &&
                  jnum(&o[i], "gbps_best") >= jnum(&o[i], "gbps") && jnum(&o[i], "ms_median") > 0 &&
                  jnum(&o[i], "vs_memcpy") > 0 && jget(&o[i], "isa") && jget(&o[i], "ms_best"),
              "bench convert line %d: measurements", i);
    }
    result_free(&r);
    r = RUN("bench", "convert", "--n=1000", "--repeat=1");
    CHECK(r.status == 0 && strstr(r.out, "f32->bf16") && strstr(r.out, "memcpy") &&
              strstr(r.out, "GB/s"),
          "bench convert text: exit %d\n%s%s", r.status, r.out, r.err);
    result_free(&r);
}

static void test_bench_gemm(void) {
    const char *dtypes[] = {"fp32", "bf16", "fp16"};
    for (int d = 0; d < 3; d++) {
        for (int t = 0; t < 4; t++) {
            const char *args[20] = {"bench",    "gemm", "--dtype", dtypes[d],   "--m",
                                    "17",       "--n",  "33",      "--k",       "9",
                                    "--repeat", "2",    "--json",  "--threads", "1"};
            int na = 15;
            if (t & 1) args[na++] = "--trans-a";
            if (t & 2) args[na++] = "--trans-b";
            args[na] = NULL;
            result r = run_env(NULL, args);
            jobj o[2];
            int n = json_lines(r.out, o, 2);
            CHECK(r.status == 0 && n == 1, "bench gemm %s trans %d: exit %d, %d lines: %s",
                  dtypes[d], t, r.status, n, r.err);
            if (n == 1) {
                const jobj *j = &o[0];
                CHECK(jstr_is(j, "bench", "gemm") && jstr_is(j, "dtype", dtypes[d]) &&
                          jnum(j, "m") == 17 && jnum(j, "n") == 33 && jnum(j, "k") == 9 &&
                          jnum(j, "threads") == 1 && jbool(j, "trans_a") == (t & 1) &&
                          jbool(j, "trans_b") == ((t & 2) != 0),
                      "bench gemm %s: fields", dtypes[d]);
                CHECK(jget(j, "isa") && jget(j, "kernel") && jnum(j, "ms_median") > 0 &&
                          jnum(j, "gflops") > 0 && isfinite(jnum(j, "gflops")) &&
                          jnum(j, "gflops_best") >= jnum(j, "gflops"),
                      "bench gemm %s: measurements", dtypes[d]);
            }
            result_free(&r);
        }
    }
    result r = RUN("--isa", "ref", "bench", "gemm", "--dtype", "bf16", "--m", "5", "--n", "7",
                   "--k", "3", "--repeat", "1");
    CHECK(r.status == 0 && strstr(r.out, "GFLOP/s") && strstr(r.out, "isa ref"),
          "bench gemm text with --isa ref: exit %d\n%s%s", r.status, r.out, r.err);
    result_free(&r);
}

/* ---- help -------------------------------------------------------------- */

static void test_help(void) {
    const char *cmds[] = {"formats", "inspect", "env", "bench", "help"};
    result r = RUN("--help");
    CHECK(r.status == 0 && r.err[0] == '\0', "--help: exit %d", r.status);
    for (int i = 0; i < 5; i++)
        CHECK(strstr(r.out, cmds[i]) != NULL, "--help does not list %s", cmds[i]);
    CHECK(strstr(r.out, "--threads") && strstr(r.out, "--isa") && strstr(r.out, "MIXPREC_ISA"),
          "--help: global options missing");
    result_free(&r);
    r = RUN("help");
    CHECK(r.status == 0 && strstr(r.out, "inspect"), "help: exit %d", r.status);
    result_free(&r);
    for (int i = 0; i < 5; i++) {
        char usage[48];
        snprintf(usage, sizeof usage, "usage: mixprec %s", cmds[i]);
        r = RUN("help", cmds[i]);
        CHECK(r.status == 0 && strstr(r.out, usage), "help %s: exit %d", cmds[i], r.status);
        result_free(&r);
        r = RUN(cmds[i], "--help");
        CHECK(r.status == 0 && strstr(r.out, usage), "%s --help: exit %d", cmds[i], r.status);
        result_free(&r);
    }
    r = RUN("help", "bench");
    const char *bench_opts[] = {"--dtype",   "--m",      "--n",    "--k",       "--trans-a",
                                "--trans-b", "--repeat", "--json", "--threads", "convert"};
    for (size_t i = 0; i < sizeof bench_opts / sizeof bench_opts[0]; i++)
        CHECK(strstr(r.out, bench_opts[i]) != NULL, "help bench: no %s", bench_opts[i]);
    result_free(&r);
    r = RUN("bench", "gemm", "-h");
    CHECK(r.status == 0 && strstr(r.out, "--trans-a"), "bench gemm -h: exit %d", r.status);
    result_free(&r);
    r = RUN("--version");
    char v[64];
    snprintf(v, sizeof v, "mixprec %s\n", mxp_version());
    CHECK(r.status == 0 && strcmp(r.out, v) == 0, "--version: %s", r.out);
    result_free(&r);
    /* help and --version still work with a broken environment */
    r = run_env(ARGS("MIXPREC_ISA=bogus"), ARGS("--help"));
    CHECK(r.status == 0, "--help with MIXPREC_ISA=bogus: exit %d", r.status);
    result_free(&r);
}

/* ---- bad input --------------------------------------------------------- */

static void test_errors(void) {
    result r = RUN("inspect", "abc");
    CHECK(strstr(r.err, "'abc' is not a number"), "inspect abc: %s", r.err);
    result_free(&r);
    r = RUN("frobnicate");
    CHECK(strstr(r.err, "formats") && strstr(r.err, "inspect") && strstr(r.err, "bench"),
          "unknown command should list the commands: %s", r.err);
    result_free(&r);
    r = RUN("bench", "gemm", "--m", "-5");
    CHECK(strstr(r.err, "--m"), "--m -5 should name the option: %s", r.err);
    result_free(&r);

    EXPECT_USAGE("inspect", "abc");
    EXPECT_USAGE("inspect");
    EXPECT_USAGE("inspect", "--json");
    EXPECT_USAGE("inspect", "");
    EXPECT_USAGE("inspect", " 1");
    EXPECT_USAGE("inspect", "0.1x");
    EXPECT_USAGE("inspect", "0.1", "abc"); /* nothing printed for the good value either */
    EXPECT_USAGE("inspect", "1e999");
    EXPECT_USAGE("inspect", "--", "--json");
    EXPECT_USAGE("inspect", "--bogus", "1");
    EXPECT_USAGE("inspect", "-x");
    EXPECT_USAGE("inspect", "--json=yes", "1");
    EXPECT_USAGE("frobnicate");
    EXPECT_USAGE("");
    EXPECT_USAGE("-x");
    EXPECT_USAGE("--bogus", "formats");
    EXPECT_USAGE("--threads");
    EXPECT_USAGE("--threads", "2");
    EXPECT_USAGE("formats", "--bogus");
    EXPECT_USAGE("formats", "extra");
    EXPECT_USAGE("formats", "--threads");
    EXPECT_USAGE("formats", "--threads", "0");
    EXPECT_USAGE("formats", "--threads", "-1");
    EXPECT_USAGE("formats", "--threads", "two");
    EXPECT_USAGE("formats", "--threads", "100000");
    EXPECT_USAGE("formats", "--isa", "bogus");
    EXPECT_USAGE("formats", "--isa");
    EXPECT_USAGE("formats", "--isa", "");
    EXPECT_USAGE("env", "extra");
    EXPECT_USAGE("help", "frobnicate");
    EXPECT_USAGE("help", "bench", "gemm");
    EXPECT_USAGE("bench");
    EXPECT_USAGE("bench", "step");
    EXPECT_USAGE("bench", "--json");
    EXPECT_USAGE("bench", "gemm", "--m");
    EXPECT_USAGE("bench", "gemm", "--m", "--n", "4");
    EXPECT_USAGE("bench", "gemm", "--m", "-5");
    EXPECT_USAGE("bench", "gemm", "--m", "0");
    EXPECT_USAGE("bench", "gemm", "--m", "1e99");
    EXPECT_USAGE("bench", "gemm", "--m", "12x");
    EXPECT_USAGE("bench", "gemm", "--m", "");
    EXPECT_USAGE("bench", "gemm", "--m", "1.5");
    EXPECT_USAGE("bench", "gemm", "--m", "0x10");
    EXPECT_USAGE("bench", "gemm", "--m", "99999999999999999999999");
    EXPECT_USAGE("bench", "gemm", "--k", "18446744073709551617");
    EXPECT_USAGE("bench", "gemm", "--dtype", "fp8");
    EXPECT_USAGE("bench", "gemm", "--dtype", "");
    EXPECT_USAGE("bench", "gemm", "--dtype");
    EXPECT_USAGE("bench", "gemm", "--repeat", "0");
    EXPECT_USAGE("bench", "gemm", "--trans-a=1");
    EXPECT_USAGE("bench", "gemm", "extra");
    EXPECT_USAGE("bench", "gemm", "--bogus");
    EXPECT_USAGE("bench", "convert", "--n", "0");
    EXPECT_USAGE("bench", "convert", "--n", "-1");
    EXPECT_USAGE("bench", "convert", "--n", "1k");
    EXPECT_USAGE("bench", "convert", "--m", "4");
    EXPECT_USAGE("bench", "convert", "--repeat", "99999999");

    /* hostile words: huge, with newlines and control bytes, not UTF-8 */
    enum { BIG = 100000 }; /* under Linux's 128 KiB limit on one argument */
    char *big = malloc(BIG + 1);
    memset(big, '7', BIG);
    big[BIG] = '\0';
    char *bigopt = malloc(BIG + 3);
    memcpy(bigopt, "--", 2);
    memset(bigopt + 2, 'x', BIG);
    bigopt[BIG + 2] = '\0';
    EXPECT_USAGE(big);
    EXPECT_USAGE(bigopt);
    EXPECT_USAGE("formats", bigopt);
    EXPECT_USAGE("bench", "gemm", "--dtype", big);
    EXPECT_USAGE("bench", "gemm", "--m", big);
    EXPECT_USAGE("bench", big);
    EXPECT_USAGE("help", big);
    EXPECT_USAGE("inspect", "a\nb");
    EXPECT_USAGE("a\nb\nc");
    EXPECT_USAGE("inspect", "\x01\x7f\xff\xfe");
    EXPECT_USAGE("bench", "gemm", "--dtype", "bf\n16");
    big[0] = 'x'; /* not a number */
    EXPECT_USAGE("inspect", big);
    /* a valid number 100000 characters long: 0.777... */
    big[0] = '0';
    big[1] = '.';
    r = RUN("inspect", "--json", big);
    CHECK(r.status == 0 && count_lines(r.out) == 3, "inspect 0.777...(100000 digits): exit %d",
          r.status);
    result_free(&r);
    free(big);
    free(bigopt);

    /* sizes this machine cannot hold: exit 1, one line, no crash */
    const char *huge[][16] = {
        {"bench", "gemm", "--m", "1000000", "--n", "1000000", "--k", "1000000", NULL},
        {"bench", "gemm", "--m", "1099511627776", "--n", "1099511627776", "--k", "1", NULL},
        {"bench", "convert", "--n", "1099511627776", NULL},
    };
    for (int i = 0; i < 3; i++) {
        r = run_env(NULL, huge[i]);
        CHECK(r.status == 1 && count_lines(r.err) == 1 && strstr(r.err, "out of memory") &&
                  r.out[0] == '\0',
              "huge sizes %d: exit %d, stderr %s", i, r.status, r.err);
        result_free(&r);
    }
    /* buffer sizes past SIZE_MAX: refused by the size_t check itself (which
     * does not rely on sysconf knowing the memory size), naming the buffer */
    const char *wrap[][16] = {
        {"bench", "gemm", "--m", "1099511627776", "--k", "1099511627776", "--n", "1", NULL},
        {"bench", "gemm", "--dtype", "fp32", "--k", "1099511627776", "--n", "1099511627776", "--m",
         "1", NULL},
        {"bench", "gemm", "--m", "1099511627776", "--n", "1099511627776", "--k", "1", NULL},
        {"bench", "gemm", "--m", "1099511627776", "--n", "1099511627776", "--k", "1099511627776",
         "--trans-a", "--trans-b", NULL},
    };
    const char *which[] = {"A needs", "B needs", "C needs", "A needs"};
    for (int i = 0; i < 4; i++) {
        r = run_env(NULL, wrap[i]);
        CHECK(r.status == 1 && count_lines(r.err) == 1 && strstr(r.err, "out of memory") &&
                  strstr(r.err, which[i]) && strstr(r.err, "address") && r.out[0] == '\0',
              "sizes past SIZE_MAX %d: exit %d, stderr %s", i, r.status, r.err);
        result_free(&r);
    }
}

int main(void) {
    if (access(binary, X_OK) != 0) {
        fprintf(stderr, "test_cli: %s is not built (build the `mixprec` target first)\n", binary);
        return 1;
    }
    test_json_checker();
    test_help();
    test_formats();
    test_inspect_text();
    test_inspect_json();
    test_env();
    test_errors();
    test_bench_convert();
    test_bench_gemm();
    return check_exit("test_cli");
}
