/*
 * test_io.c - the I/O layer: flat YAML argument files (what is accepted, each refusal with its
 * file:line, empty, truncated and binary input, allocation failures) and the JSON-lines writer
 * (escaping, nesting, numbers that read back, null for non-finite values, misuse, allocation
 * failures, files that cannot be opened or written).
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mixprec/io.h"
#include "test_util.h"

static const char *write_text(const char *name, const void *text, size_t n) {
    const char *path = tpath(name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    return path;
}

static size_t read_text(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

/* ---- YAML ------------------------------------------------------------------------------------ */

static void test_yaml_flat(void) {
    static const char text[] = "# Trainer arguments\n"                                    /* 1 */
                               "output_dir: runs/fmnist   # trailing comment\n"           /* 2 */
                               "bf16: true\n"                                             /* 3 */
                               "fp16: False\n"                                            /* 4 */
                               "learning_rate: 3e-4\n"                                    /* 5 */
                               "\n"                                                       /* 6 */
                               "num_train_epochs: 3\n"                                    /* 7 */
                               "run_name: \"a \\\"quoted\\\" name: with # no comment\"\n" /* 8 */
                               "single: 'it''s'\n"                                        /* 9 */
                               "empty:\n"                                                 /* 10 */
                               "tilde: ~\n"                                               /* 11 */
                               "unicode: \"caf\\u00e9 \xce\xbb\"\n"                       /* 12 */
                               "'quoted key': 7\n"                                        /* 13 */
                               "folded: >\n  two\n  lines\n"; /* 14-16 */
    const char *path = write_text("args.yaml", text, sizeof text - 1);
    mxp_kvlist kv;
    mxp_status st = mxp_yaml_read_flat(&kv, path);
    CHECK(st == MXP_OK, "flat yaml: %s", mxp_last_error());
    if (st != MXP_OK) return;
    static const struct {
        const char *key, *value;
        int line;
    } want[] = {{"output_dir", "runs/fmnist", 2},
                {"bf16", "true", 3},
                {"fp16", "False", 4},
                {"learning_rate", "3e-4", 5},
                {"num_train_epochs", "3", 7},
                {"run_name", "a \"quoted\" name: with # no comment", 8},
                {"single", "it's", 9},
                {"empty", "", 10},
                {"tilde", "~", 11},
                {"unicode", "caf\xc3\xa9 \xce\xbb", 12},
                {"quoted key", "7", 13},
                {"folded", "two lines\n", 14}};
    enum { NW = sizeof want / sizeof want[0] };
    CHECK(kv.n == NW, "%d entries, want %d", kv.n, NW);
    for (int i = 0; i < kv.n && i < NW; i++) {
        CHECK(strcmp(kv.items[i].key, want[i].key) == 0, "key %d: '%s', want '%s'", i,
              kv.items[i].key, want[i].key);
        CHECK(strcmp(kv.items[i].value, want[i].value) == 0, "value of %s: '%s', want '%s'",
              want[i].key, kv.items[i].value, want[i].value);
        CHECK(kv.items[i].line == want[i].line, "line of %s: %d, want %d", want[i].key,
              kv.items[i].line, want[i].line);
    }
    const char *v = mxp_kvlist_get(&kv, "learning_rate");
    CHECK(v && strcmp(v, "3e-4") == 0, "get learning_rate: %s", v ? v : "(null)");
    CHECK(mxp_kvlist_get(&kv, "nope") == NULL, "get of a missing key");
    CHECK(mxp_kvlist_get(&kv, NULL) == NULL && mxp_kvlist_get(NULL, "bf16") == NULL, "get NULL");
    mxp_kvlist_free(&kv);
    CHECK(kv.n == 0 && kv.items == NULL, "free did not zero");
    mxp_kvlist_free(NULL);

    /* flow mapping at the top, a document marker, a BOM: still flat */
    static const char flow[] = "\xef\xbb\xbf---\n{a: 1, b: two}\n...\n";
    path = write_text("flow.yaml", flow, sizeof flow - 1);
    st = mxp_yaml_read_flat(&kv, path);
    CHECK(st == MXP_OK && kv.n == 2, "flow mapping: %d entries: %s", kv.n, mxp_last_error());
    if (st == MXP_OK && kv.n == 2)
        CHECK(strcmp(mxp_kvlist_get(&kv, "b"), "two") == 0 && kv.items[1].line == 2,
              "flow mapping values");
    mxp_kvlist_free(&kv);

    /* empty: no bytes, only comments, only a document marker */
    static const char *const empties[] = {"", "# nothing here\n\n   # at all\n", "---\n", "\n\n\n"};
    for (int i = 0; i < 4; i++) {
        path = write_text("empty.yaml", empties[i], strlen(empties[i]));
        memset(&kv, 0x5a, sizeof kv);
        st = mxp_yaml_read_flat(&kv, path);
        CHECK(st == MXP_OK && kv.n == 0 && kv.items == NULL, "empty input %d: status %d n %d: %s",
              i, st, kv.n, mxp_last_error());
        mxp_kvlist_free(&kv);
    }
}

/* path's text is refused with MXP_ERR_FORMAT and a message with "<path>:<line>:" and want. */
static void expect_yaml_refused(const char *what, const char *text, int line, const char *want) {
    const char *path = write_text("bad.yaml", text, strlen(text));
    mxp_kvlist kv;
    memset(&kv, 0x5a, sizeof kv);
    mxp_clear_error();
    const mxp_status st = mxp_yaml_read_flat(&kv, path);
    const char *msg = mxp_last_error();
    char where[300];
    snprintf(where, sizeof where, "%s:%d: ", path, line);
    CHECK(st == MXP_ERR_FORMAT, "%s: status %d, want FORMAT: %s", what, st, msg);
    CHECK(strstr(msg, where) != NULL, "%s: message lacks '%s': %s", what, where, msg);
    CHECK(strstr(msg, want) != NULL, "%s: message lacks '%s': %s", what, want, msg);
    CHECK(strchr(msg, '\n') == NULL, "%s: message of more than one line: %s", what, msg);
    CHECK(kv.n == 0 && kv.items == NULL, "%s: out not zeroed", what);
    if (st == MXP_OK) mxp_kvlist_free(&kv);
}

static void test_yaml_refused(void) {
    expect_yaml_refused("flow sequence", "a: 1\nb: 2\nlayers: [1, 2]\n", 3, "sequence");
    expect_yaml_refused("block sequence", "a: 1\nlayers:\n  - 1\n  - 2\n", 3, "sequence");
    expect_yaml_refused("nested mapping", "a: 1\nopt:\n  lr: 3\n", 3, "nested mapping");
    expect_yaml_refused("flow nested mapping", "a: 1\n\nopt: {lr: 3}\n", 3, "nested mapping");
    expect_yaml_refused("top-level sequence", "# list\n- a\n- b\n", 2, "sequence");
    expect_yaml_refused("top-level scalar", "\nhello\n", 2, "not a mapping");
    expect_yaml_refused("anchor", "a: 1\nb: &x 2\n", 2, "anchor");
    expect_yaml_refused("anchor on a key", "&k a: 1\n", 1, "anchor");
    expect_yaml_refused("alias", "a: 1\nb: 2\nc: *x\n", 3, "alias");
    expect_yaml_refused("tag", "a: !!int 3\n", 1, "tag");
    expect_yaml_refused("duplicate key", "lr: 1\nbf16: true\nlr: 2\n", 3,
                        "duplicate key 'lr' (first at line 1)");
    expect_yaml_refused("duplicate, quoted", "lr: 1\n\"lr\": 2\n", 2, "duplicate key 'lr'");
    expect_yaml_refused("two documents", "a: 1\n---\nb: 2\n", 2, "second YAML document");
    expect_yaml_refused("unterminated string", "a: 1\nb: \"open\n", 3, "syntax error");
    expect_yaml_refused("key: key: value", "a: 1\nb: c: d\n", 2, "syntax error");
    expect_yaml_refused("bad indentation", "a: 1\n  b: 2\n", 2, "syntax error");
    expect_yaml_refused("tab indentation", "a:\n\tb: 2\n", 2, "");
    expect_yaml_refused("NUL escape", "a: 1\nb: \"x\\0y\"\n", 2, "NUL");
    expect_yaml_refused("complex key", "? [a, b]\n: 1\n", 1, "sequence");
    expect_yaml_refused("empty key", "a: 1\n\"\": 2\n", 2, "empty key");
    expect_yaml_refused("invalid UTF-8", "a: 1\nb: \xff\xfe\n", 2, "not YAML text");
    /* a NUL byte in the text (libyaml calls it a control character) */
    const char nul[] = "a: 1\nb: x\0y\n";
    const char *path = write_text("nul.yaml", nul, sizeof nul - 1);
    mxp_kvlist kv;
    mxp_clear_error();
    CHECK(mxp_yaml_read_flat(&kv, path) == MXP_ERR_FORMAT, "NUL byte accepted");
    char where[300];
    snprintf(where, sizeof where, "%s:2: ", path);
    CHECK(strstr(mxp_last_error(), where) != NULL, "NUL byte: message %s", mxp_last_error());

    /* cannot open: IO, naming the path */
    const char *missing = tpath("missing.yaml");
    mxp_clear_error();
    CHECK(mxp_yaml_read_flat(&kv, missing) == MXP_ERR_IO, "missing file");
    CHECK(strstr(mxp_last_error(), missing) != NULL, "missing: %s", mxp_last_error());
    CHECK(mxp_yaml_read_flat(&kv, tmpdir) == MXP_ERR_IO, "a directory: %s", mxp_last_error());
    CHECK(mxp_yaml_read_flat(&kv, NULL) == MXP_ERR_INVALID_ARG, "NULL path");
    CHECK(mxp_yaml_read_flat(NULL, missing) == MXP_ERR_INVALID_ARG, "NULL out");
}

/* Garbage must never crash or leak: every prefix of a valid file, random bytes, and a valid
 * file with single bytes damaged. Each gives OK or FORMAT. */
static void test_yaml_garbage(void) {
    static const char text[] = "a: 1\n# c\nname: \"x y\"\nlist: [1, {b: 2}]\nz: &q 'v'\n";
    int other = 0, total = 0;
    mxp_kvlist kv;
    for (size_t cut = 0; cut <= sizeof text - 1; cut++) {
        const char *path = write_text("cut.yaml", text, cut);
        const mxp_status st = mxp_yaml_read_flat(&kv, path);
        other += st != MXP_OK && st != MXP_ERR_FORMAT;
        total++;
        mxp_kvlist_free(&kv);
    }
    uint32_t state = 7;
    unsigned char bin[700];
    int refused = 0, nbin = 0;
    for (int round = 0; round < 300; round++) {
        const size_t n = 1 + (size_t)(round * 7 % 699);
        for (size_t i = 0; i < n; i++) {
            state = state * 1664525u + 1013904223u;
            bin[i] = (unsigned char)(state >> 24);
        }
        const char *path = write_text("bin.yaml", bin, n);
        const mxp_status st = mxp_yaml_read_flat(&kv, path);
        other += st != MXP_OK && st != MXP_ERR_FORMAT;
        refused += st == MXP_ERR_FORMAT;
        nbin++;
        total++;
        mxp_kvlist_free(&kv);
    }
    for (size_t i = 0; i < sizeof text - 1; i++) {
        static const unsigned char subst[] = {0, ':', '[', '"', '\n', 0xc3, '&', '*', '-', ' '};
        for (int k = 0; k < 10; k++) {
            char t[sizeof text];
            memcpy(t, text, sizeof text);
            t[i] = (char)subst[k];
            const char *path = write_text("flip.yaml", t, sizeof text - 1);
            const mxp_status st = mxp_yaml_read_flat(&kv, path);
            other += st != MXP_OK && st != MXP_ERR_FORMAT;
            total++;
            mxp_kvlist_free(&kv);
        }
    }
    CHECK(other == 0, "garbage: %d of %d inputs gave a status other than OK or FORMAT", other,
          total);
    CHECK(refused == nbin, "random binary: only %d of %d refused", refused, nbin);
    /* a file larger than any argument file */
    const char *big = tpath("big.yaml");
    FILE *f = fopen(big, "wb");
    if (f) {
        static char line[1024];
        memset(line, '#', sizeof line);
        for (int i = 0; i < 65 * 1024; i++) fwrite(line, 1, sizeof line, f);
        fclose(f);
        mxp_clear_error();
        CHECK(mxp_yaml_read_flat(&kv, big) == MXP_ERR_FORMAT, "65 MiB file: %s", mxp_last_error());
        remove(big);
    }
}

static void test_yaml_nomem(void) {
    /* enough entries that the list grows */
    char text[4096];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "key_%d: value %d\n", i, i);
    const char *path = write_text("many.yaml", text, n);
    const char *dup = write_text("dup.yaml", "a: 1\nb: 2\na: 3\n", 15);
    for (int which = 0; which < 2; which++) {
        long budget;
        for (budget = 0; budget < 1000; budget++) {
            hook_on(budget);
            mxp_kvlist kv;
            const mxp_status st = mxp_yaml_read_flat(&kv, which ? dup : path);
            const int done = which ? st == MXP_ERR_FORMAT : st == MXP_OK;
            if (done) {
                if (st == MXP_OK) CHECK(kv.n == 40, "%d entries", kv.n);
                mxp_kvlist_free(&kv);
                CHECK(hk.allocs == hk.frees, "yaml %d: %ld allocations, %ld frees", which,
                      hk.allocs, hk.frees);
                hook_off();
                break;
            }
            CHECK(st == MXP_ERR_NOMEM, "yaml %d, budget %ld: status %d: %s", which, budget, st,
                  mxp_last_error());
            CHECK(kv.n == 0 && kv.items == NULL, "yaml %d, budget %ld: out not zeroed", which,
                  budget);
            CHECK(hk.allocs == hk.frees, "yaml %d, budget %ld: leaked %ld", which, budget,
                  hk.allocs - hk.frees);
            hook_off();
        }
        CHECK(budget > (which ? 3 : 80), "yaml %d: only %ld allocations", which, budget);
    }
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static void expect_json(const char *what, mxp_json *o, const char *want) {
    const char *got = mxp_json_end(o);
    CHECK(got && strcmp(got, want) == 0, "%s:\n   got %s\n  want %s", what, got ? got : "(null)",
          want);
    CHECK(o->err == MXP_OK, "%s: err %d", what, o->err);
    mxp_json_free(o);
}

static void test_json(void) {
    mxp_json o;
    /* the header's example */
    mxp_json_begin(&o);
    mxp_json_str(&o, "event", "step");
    mxp_json_int(&o, "step", 12);
    mxp_json_num(&o, "loss", 0.4183);
    expect_json("example", &o, "{\"event\":\"step\",\"step\":12,\"loss\":0.4183}");

    mxp_json_begin(&o);
    expect_json("empty", &o, "{}");

    /* escaping: quote, backslash, every control character, UTF-8 and '/' as they are */
    mxp_json_begin(&o);
    mxp_json_str(&o, "q\"k\\", "a\"b\\c\nd\te\x01\x1f\x7f/caf\xc3\xa9");
    expect_json("escapes", &o,
                "{\"q\\\"k\\\\\":\"a\\\"b\\\\c\\u000ad\\u0009e\\u0001\\u001f\x7f/caf\xc3\xa9\"}");
    char ctl[33];
    for (int c = 1; c < 33; c++) ctl[c - 1] = (char)c;
    ctl[32] = '\0';
    mxp_json_begin(&o);
    mxp_json_str(&o, "c", ctl);
    const char *t = mxp_json_end(&o);
    char want[300] = "{\"c\":\"";
    for (int c = 1; c < 32; c++) snprintf(want + strlen(want), 8, "\\u%04x", c);
    strcat(want, " \"}");
    CHECK(t && strcmp(t, want) == 0, "controls: %s", t ? t : "(null)");
    mxp_json_free(&o);

    /* every kind of value, nesting, and end closing what is still open */
    mxp_json_begin(&o);
    mxp_json_int(&o, "min", INT64_MIN);
    mxp_json_int(&o, "max", INT64_MAX);
    mxp_json_bool(&o, "t", 1);
    mxp_json_bool(&o, "f", 0);
    mxp_json_null(&o, "n");
    mxp_json_str(&o, "s", NULL);
    mxp_json_object_begin(&o, "o");
    mxp_json_object_begin(&o, "e");
    mxp_json_object_end(&o);
    mxp_json_num(&o, "x", 1.5);
    mxp_json_object_begin(&o, "deep");
    mxp_json_int(&o, "d", 3);
    mxp_json_object_end(&o);
    mxp_json_object_end(&o);
    mxp_json_str(&o, "after", "y");
    mxp_json_object_begin(&o, "open");
    mxp_json_object_begin(&o, "open2");
    mxp_json_int(&o, "k", -1);
    CHECK(o.depth == 2, "depth %d", o.depth);
    expect_json("nesting", &o,
                "{\"min\":-9223372036854775808,\"max\":9223372036854775807,\"t\":true,"
                "\"f\":false,\"n\":null,\"s\":null,\"o\":{\"e\":{},\"x\":1.5,\"deep\":{\"d\":3}},"
                "\"after\":\"y\",\"open\":{\"open2\":{\"k\":-1}}}");

    /* numbers: %.9g, every fp32 value reads back bit-exactly; non-finite as null */
    static const float fl[] = {
        0.1f,           1.0f / 3, 3.4028235e38f, 1.17549435e-38f,
        1e-45f,         -2.5f,    16777217.0f,   0.2860f,
        6.02214076e23f, -0.0f,    123456789.0f,  1000.00085f /* needs all 9 digits */,
        1000.00385f};
    enum { NF = sizeof fl / sizeof fl[0] };
    for (int i = 0; i < NF; i++) {
        mxp_json_begin(&o);
        mxp_json_num(&o, "v", fl[i]);
        const char *s = mxp_json_end(&o);
        float back = NAN;
        if (s && strncmp(s, "{\"v\":", 5) == 0) back = strtof(s + 5, NULL);
        CHECK(memcmp(&back, &fl[i], 4) == 0, "%.9g printed as %s, reads back %.9g", fl[i],
              s ? s : "(null)", back);
        mxp_json_free(&o);
    }
    mxp_json_begin(&o);
    mxp_json_num(&o, "f", 0.1f); /* the double nearest 0.1f, to 9 digits */
    expect_json("0.1f", &o, "{\"f\":0.100000001}");
    mxp_json_begin(&o);
    mxp_json_num(&o, "a", NAN);
    mxp_json_num(&o, "b", INFINITY);
    mxp_json_num(&o, "c", -INFINITY);
    mxp_json_num(&o, "d", 1e300);
    mxp_json_num(&o, "e", 0.1);
    expect_json("non-finite", &o, "{\"a\":null,\"b\":null,\"c\":null,\"d\":1e+300,\"e\":0.1}");

    /* misuse: remembered in err, the text is refused */
    mxp_json_begin(&o);
    mxp_json_object_end(&o);
    CHECK(o.err == MXP_ERR_INVALID_ARG && mxp_json_end(&o) == NULL, "end of no nested object");
    mxp_json_free(&o);
    mxp_json_begin(&o);
    mxp_json_int(&o, NULL, 1);
    CHECK(o.err == MXP_ERR_INVALID_ARG, "NULL key");
    mxp_json_free(&o);
    mxp_json_begin(&o);
    mxp_json_int(&o, "a", 1);
    const char *first = mxp_json_end(&o);
    CHECK(first && strcmp(first, "{\"a\":1}") == 0, "end once");
    CHECK(mxp_json_end(&o) == first && strcmp(first, "{\"a\":1}") == 0, "end twice");
    mxp_json_int(&o, "b", 2);
    CHECK(o.err == MXP_ERR_INVALID_ARG && mxp_json_end(&o) == NULL, "a field after end");
    mxp_json_free(&o);
    memset(&o, 0, sizeof o);
    mxp_json_int(&o, "a", 1);
    CHECK(o.err == MXP_ERR_INVALID_ARG && mxp_json_end(&o) == NULL, "a field before begin");
    mxp_json_free(&o);
    mxp_json_free(NULL);
    mxp_json_begin(NULL);
    mxp_json_int(NULL, "a", 1);
    CHECK(mxp_json_end(NULL) == NULL, "end(NULL)");

    /* allocation failures: err is NOMEM, later calls do nothing, nothing leaks */
    long budget;
    for (budget = 0; budget < 100; budget++) {
        hook_on(budget);
        mxp_json_begin(&o);
        for (int i = 0; i < 100; i++) mxp_json_str(&o, "a long enough key", "and a value");
        const char *s = mxp_json_end(&o);
        const mxp_status err = o.err;
        const size_t len = o.len;
        mxp_json_free(&o);
        CHECK(hk.allocs == hk.frees, "json, budget %ld: leaked %ld", budget, hk.allocs - hk.frees);
        hook_off();
        if (s) {
            CHECK(err == MXP_OK && len == 2 + 100 * 34 - 1, "json, budget %ld: %zu bytes", budget,
                  len);
            break;
        }
        CHECK(err == MXP_ERR_NOMEM, "json, budget %ld: no text, err %d", budget, err);
    }
    CHECK(budget >= 4, "a 3 kB object took only %ld allocations", budget);
}

static void test_jsonl(void) {
    const char *path = tpath("log.jsonl");
    mxp_jsonl_t *j = NULL;
    CHECK(mxp_jsonl_open(&j, path, 0) == MXP_OK, "open: %s", mxp_last_error());
    if (!j) return;
    mxp_json o;
    for (int i = 0; i < 2; i++) {
        mxp_json_begin(&o);
        mxp_json_int(&o, "step", i);
        mxp_json_object_begin(&o, "m"); /* left open: write closes it */
        mxp_json_num(&o, "loss", 0.5 * i);
        CHECK(mxp_jsonl_write(j, &o) == MXP_OK, "write %d: %s", i, mxp_last_error());
        mxp_json_free(&o);
    }
    /* written and flushed already, before close */
    char buf[512];
    read_text(path, buf, sizeof buf);
    CHECK(strcmp(buf, "{\"step\":0,\"m\":{\"loss\":0}}\n{\"step\":1,\"m\":{\"loss\":0.5}}\n") == 0,
          "file: %s", buf);
    CHECK(mxp_jsonl_close(j) == MXP_OK, "close");
    CHECK(mxp_jsonl_close(NULL) == MXP_OK, "close(NULL)");

    /* append (a resumed run), then truncate */
    CHECK(mxp_jsonl_open(&j, path, 1) == MXP_OK, "open append");
    mxp_json_begin(&o);
    mxp_json_str(&o, "event", "resume");
    CHECK(mxp_jsonl_write(j, &o) == MXP_OK, "append write");
    mxp_json_free(&o);
    mxp_jsonl_close(j);
    read_text(path, buf, sizeof buf);
    CHECK(strcmp(buf, "{\"step\":0,\"m\":{\"loss\":0}}\n{\"step\":1,\"m\":{\"loss\":0.5}}\n"
                      "{\"event\":\"resume\"}\n") == 0,
          "appended file: %s", buf);
    CHECK(mxp_jsonl_open(&j, path, 0) == MXP_OK, "open truncating");
    mxp_json_begin(&o);
    CHECK(mxp_jsonl_write(j, &o) == MXP_OK, "write {}");
    mxp_json_free(&o);
    mxp_jsonl_close(j);
    read_text(path, buf, sizeof buf);
    CHECK(strcmp(buf, "{}\n") == 0, "truncated file: %s", buf);

    /* a failed object is not written; the status says why */
    CHECK(mxp_jsonl_open(&j, path, 0) == MXP_OK, "open");
    hook_on(0);
    mxp_json_begin(&o);
    mxp_json_int(&o, "a", 1);
    const mxp_status st = mxp_jsonl_write(j, &o);
    mxp_json_free(&o);
    hook_off();
    CHECK(st == MXP_ERR_NOMEM, "write of a failed object: %d", st);
    mxp_json_begin(&o);
    mxp_json_object_end(&o);
    CHECK(mxp_jsonl_write(j, &o) == MXP_ERR_INVALID_ARG, "write of a misbuilt object");
    mxp_json_free(&o);
    CHECK(mxp_jsonl_write(j, NULL) == MXP_ERR_INVALID_ARG, "write NULL object");
    CHECK(mxp_jsonl_write(NULL, &o) == MXP_ERR_INVALID_ARG, "write to NULL");
    mxp_jsonl_close(j);
    read_text(path, buf, sizeof buf);
    CHECK(strcmp(buf, "") == 0, "failed objects were written: %s", buf);

    /* cannot open: IO naming the path, nothing leaked */
    static const char *const bad[] = {"/nonexistent-mxp-dir/log.jsonl", NULL};
    char under_file[300];
    snprintf(under_file, sizeof under_file, "%s/log.jsonl", path); /* path is a file */
    for (int i = 0; i < 2; i++) {
        const char *p = bad[i] ? bad[i] : under_file;
        hook_on(-1);
        mxp_clear_error();
        j = (mxp_jsonl_t *)&j;
        const mxp_status s = mxp_jsonl_open(&j, p, i);
        CHECK(s == MXP_ERR_IO && j == NULL, "open %s: %d", p, s);
        CHECK(strstr(mxp_last_error(), p) != NULL, "message lacks the path: %s", mxp_last_error());
        CHECK(hk.allocs == hk.frees, "failed open leaked %ld", hk.allocs - hk.frees);
        hook_off();
    }
    CHECK(mxp_jsonl_open(&j, NULL, 0) == MXP_ERR_INVALID_ARG, "NULL path");
    CHECK(mxp_jsonl_open(NULL, path, 0) == MXP_ERR_INVALID_ARG, "NULL out");
    for (long budget = 0; budget < 2; budget++) {
        hook_on(budget);
        CHECK(mxp_jsonl_open(&j, path, 0) == MXP_ERR_NOMEM && j == NULL, "open, budget %ld",
              budget);
        CHECK(hk.allocs == hk.frees, "open, budget %ld: leaked", budget);
        hook_off();
    }

    /* a full disk: /dev/full takes the open and refuses the write */
    if (access("/dev/full", W_OK) == 0) {
        CHECK(mxp_jsonl_open(&j, "/dev/full", 0) == MXP_OK, "open /dev/full");
        if (j) {
            mxp_json_begin(&o);
            mxp_json_int(&o, "a", 1);
            mxp_clear_error();
            CHECK(mxp_jsonl_write(j, &o) == MXP_ERR_IO, "write to /dev/full");
            CHECK(strstr(mxp_last_error(), "/dev/full") != NULL, "message: %s", mxp_last_error());
            mxp_json_free(&o);
            mxp_jsonl_close(j);
        }
    } else {
        printf("note: no /dev/full; the disk-full write is not tested\n");
    }
}

int main(void) {
    if (tmpdir_make("io") != 0) {
        perror("mkdtemp");
        return 1;
    }
    test_yaml_flat();
    test_yaml_refused();
    test_yaml_garbage();
    test_yaml_nomem();
    test_json();
    test_jsonl();
    tmpdir_remove();
    return check_exit("test_io");
}
