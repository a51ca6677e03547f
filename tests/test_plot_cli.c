/*
 * test_plot_cli.c - `mixprec plot` end to end on synthetic training logs (with and without
 * numerics events, a resumed run, several precision modes): the PNGs gnuplot draws are
 * checked for the signature and an IHDR of the --size asked; a stand-in gnuplot (a shell
 * script put first on PATH) keeps the data files the command hands to gnuplot, so the resume
 * and the sums over tensors are checked exactly, and fails in the ways gnuplot fails. Every bad
 * input gives one line on stderr and its exit status, and leaves no file behind. The checks
 * that need the real gnuplot skip (exit 77) where it is not installed; the others always run.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_run.h"
#include "test_util.h"

/* A failure of the test's own setup (not of what is tested): say what, and stop. */
static void die(const char *what) {
    fprintf(stderr, "test_plot_cli: %s\n", what);
    exit(2);
}

static char outdir[128];  /* where the PNGs go: must hold nothing else afterwards */
static char scratch[128]; /* TMPDIR of the command: must be empty afterwards */
static char fakebin[128]; /* the stand-in gnuplot */
static char keepdir[128]; /* what the stand-in kept of the command's temporary directory */
static char *real_path;   /* PATH as the test found it */

/* A lasting copy of a path from tpath (whose buffers are reused after 8 calls). */
static const char *keep(const char *path) {
    static char kept[32][256];
    static int n;
    if (n == 32) die("too many paths");
    snprintf(kept[n], sizeof kept[n], "%s", path);
    return kept[n++];
}

/* ---- writing logs --------------------------------------------------------------------------- */

static FILE *open_log(const char *name) {
    FILE *f = fopen(tpath(name), "w");
    if (!f) die("cannot write a log");
    return f;
}

static void close_log(FILE *f) {
    if (ferror(f) || fclose(f) != 0) die("cannot write a log");
}

/* The log2 histogram of one gradient tensor at a step: n values, `zero` of them 0, the rest in
 * bins lo, lo+1, ... with counts c[0..nc); fp16 flushes `under` of the n to zero. */
static void numerics_event(FILE *f, int step, const char *kind, const char *name, int n, int zero,
                           int lo, const int *c, int nc, double under) {
    fprintf(f,
            "{\"event\":\"numerics\",\"step\":%d,\"kind\":\"%s\",\"name\":\"%s\",\"n\":%d,"
            "\"zero\":%d,\"nonfinite\":0,\"log2_lo\":%d,\"log2_counts\":[",
            step, kind, name, n, zero, lo);
    for (int i = 0; i < nc; i++) fprintf(f, "%s%d", i ? "," : "", c[i]);
    fprintf(f,
            "],\"fp16\":{\"overflow\":0,\"subnormal\":0.25,\"underflow\":%.17g},"
            "\"bf16\":{\"overflow\":0,\"subnormal\":0,\"underflow\":0},\"max_abs\":0.5,"
            "\"min_abs\":1e-12}\n",
            under);
}

/* The numerics events of one step: two weight-gradient tensors (n 100 and 60), their
 * loss-scaled copies 2^scale_log2 higher when scaled, and kinds that are not plotted. */
static void numerics_step(FILE *f, int step, int scaled, int scale_log2) {
    static const int a[] = {10, 20, 30, 20, 10}, b[] = {5, 15, 25, 10};
    numerics_event(f, step, "grad", "fc1.weight", 100, 10, -30, a, 5, 0.3);
    numerics_event(f, step, "grad", "fc2.weight", 60, 5, -27, b, 4, 0.1);
    if (scaled) {
        numerics_event(f, step, "grad_scaled", "fc1.weight", 100, 10, -30 + scale_log2, a, 5, 0);
        numerics_event(f, step, "grad_scaled", "fc2.weight", 60, 5, -27 + scale_log2, b, 4, 0);
    }
    numerics_event(f, step, "weight", "fc1.weight", 100, 0, -8, a, 5, 0);
    numerics_event(f, step, "activation", "fc1", 100, 50, -3, b, 4, 0);
    fprintf(f, "{\"event\":\"numerics_updates\",\"step\":%d,\"lost\":0.5}\n", step);
}

/* A log of `steps` steps of a run in mode (the summary's mixed_precision; NULL: no summary):
 * fp16 starts at loss scale 2^16 and skips steps 1 and 2; an eval every 10 steps; numerics
 * events every 10 steps when asked; unknown events and keys throughout; step 7's loss null. */
static const char *write_log(const char *name, const char *mode, int master, int steps,
                             int numerics) {
    FILE *f = open_log(name);
    const int fp16 = mode && strcmp(mode, "fp16") == 0;
    double scale = fp16 ? 65536 : 1;
    for (int s = 1; s <= steps; s++) {
        const int skipped = fp16 && s <= 2;
        if (skipped) scale /= 2;
        fprintf(f, "{\"event\":\"step\",\"step\":%d,\"epoch\":0,\"loss\":", s);
        if (s == 7)
            fprintf(f, "null");
        else
            fprintf(f, "%.6f", 2.0 / (1 + 0.05 * s));
        fprintf(f,
                ",\"lr\":0.01,\"loss_scale\":%.17g,\"skipped\":%s,\"grad_norm\":1.5,"
                "\"samples_per_s\":1000,\"future\":{\"a\":[1,{\"b\":null}]}}\n",
                scale, skipped ? "true" : "false");
        if (s % 10 == 0) {
            fprintf(f,
                    "{\"event\":\"eval\",\"step\":%d,\"split\":\"test\",\"loss\":%.6f,"
                    "\"accuracy\":0.8}\n",
                    s, 2.2 / (1 + 0.05 * s));
            if (numerics) numerics_step(f, s, fp16, 15);
            fprintf(f, "{\"event\":\"advice\",\"text\":\"keep going\"}\n\n");
        }
    }
    if (mode)
        fprintf(f,
                "{\"event\":\"summary\",\"mixed_precision\":\"%s\",\"master_weights\":%s,"
                "\"steps\":%d,\"memory_bytes\":{\"weights\":1}}\n"
                "{\"event\":\"profile\",\"op\":\"gemm\",\"forward_s\":0.1}\n",
                mode, master ? "true" : "false", steps);
    close_log(f);
    return keep(tpath(name));
}

/* A resumed run: steps 1..30 at loss 3 (numerics at 10, 20, 30), a crash, a resume from the
 * checkpoint of step 20, then steps 21..40 at loss 1 (numerics at 30 and 40; at 40 only the
 * first tensor). The first run's steps 21..30 are replaced by the second run's. */
static const char *write_resumed(const char *name) {
    static const int c[] = {40, 50};
    FILE *f = open_log(name);
    for (int s = 1; s <= 50; s++) {
        if (s == 31) /* the first run ends here (no summary); the second begins */
            fprintf(f, "{\"event\":\"resume\",\"step\":20,\"epoch\":0,\"position\":20,"
                       "\"loss_scale\":1,\"checkpoint\":\"run/checkpoint-20\"}\n");
        const int second = s > 30, step = second ? s - 10 : s; /* 1..30, then 21..40 */
        fprintf(f,
                "{\"event\":\"step\",\"step\":%d,\"epoch\":0,\"loss\":%d,\"lr\":0.01,"
                "\"loss_scale\":1,\"skipped\":false}\n",
                step, second ? 1 : 3);
        if (step % 10 == 0) {
            fprintf(f, "{\"event\":\"eval\",\"step\":%d,\"split\":\"val\",\"loss\":%d}\n", step,
                    second ? 1 : 3);
            /* first tensor: 100 values, 10 zero; second: 60 values; fp16 flushes half of the
             * first run's values and a tenth of the second's */
            const double under = second ? 0.1 : 0.5;
            numerics_event(f, step, "grad", "fc1.weight", 100, 10, second ? -20 : -40, c, 2, under);
            if (step != 40) numerics_event(f, step, "grad", "fc2.weight", 60, 0, -5, c, 1, under);
        }
    }
    fprintf(f, "{\"event\":\"summary\",\"mixed_precision\":\"bf16\",\"master_weights\":false}\n");
    close_log(f);
    return keep(tpath(name));
}

/* ---- checking ----------------------------------------------------------------------------- */

/* Whether gnuplot is on PATH (as the command looks for it). */
static int have_gnuplot(void) {
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *p = path ? path : "/bin:/usr/bin"; p && *p;) {
        const char *colon = strchr(p, ':');
        const int len = colon ? (int)(colon - p) : (int)strlen(p);
        snprintf(buf, sizeof buf, "%.*s/gnuplot", len, p);
        if (access(buf, X_OK) == 0) return 1;
        p = colon ? colon + 1 : NULL;
    }
    return 0;
}

/* Entries in dir other than . and .. (-1 if it cannot be read). */
static int entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (const struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* Remove the files in dir (not dir). */
static void empty_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[512];
    for (const struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The PNG at path: its signature, its first chunk an IHDR of w x h. */
static void check_png(const char *what, const char *path, uint32_t w, uint32_t h) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = 0;
    unsigned char *b = file_bytes(path, &n);
    CHECK(b && n > 33, "%s: %s is missing or too short (%zu bytes)", what, path, n);
    if (!b || n <= 33) {
        free(b);
        return;
    }
    CHECK(memcmp(b, sig, 8) == 0, "%s: %s has no PNG signature", what, path);
    CHECK(be32(b + 8) == 13 && memcmp(b + 12, "IHDR", 4) == 0, "%s: no IHDR first", what);
    CHECK(be32(b + 16) == w && be32(b + 20) == h, "%s: the PNG is %u x %u, want %u x %u", what,
          be32(b + 16), be32(b + 20), w, h);
    free(b);
}

/* A success: status 0, stderr empty, stdout exactly "wrote OUT (W x H)\n", the PNG of that
 * size, and nothing else left in outdir or scratch. */
static void expect_png(const char *what, const char *out, uint32_t w, uint32_t h,
                       const char *const *args) {
    result r = run_env(NULL, args);
    char want[512];
    snprintf(want, sizeof want, "wrote %s (%u x %u)\n", out, w, h);
    CHECK(r.status == 0, "%s: exit %d (stderr: %.300s)", what, r.status, r.err);
    CHECK(r.err && r.err[0] == '\0', "%s: stderr: %.300s", what, r.err);
    CHECK(r.out && strcmp(r.out, want) == 0, "%s: stdout '%s', want '%s'", what, r.out, want);
    result_free(&r);
    check_png(what, out, w, h);
    CHECK(entries(outdir) == 1, "%s: %d entries in %s, want the PNG alone", what, entries(outdir),
          outdir);
    CHECK(entries(scratch) == 0, "%s: the temporary directory was left in %s", what, scratch);
    empty_dir(outdir);
}

/* A failure: status, nothing on stdout, one line on stderr starting "mixprec: plot: " that
 * holds `needle`, and nothing left in outdir or scratch. */
static void expect_fail(const char *what, int status, const char *needle, const char *const *args) {
    result r = run_env(NULL, args);
    CHECK(r.status == status, "%s: exit %d, want %d (stderr: %.300s)", what, r.status, status,
          r.err);
    CHECK(r.out && r.out[0] == '\0', "%s: printed to stdout: %.200s", what, r.out);
    CHECK(r.err && count_lines(r.err) == 1 && r.err[strlen(r.err) - 1] == '\n',
          "%s: want exactly one line on stderr, got: %.400s", what, r.err);
    CHECK(r.err && strncmp(r.err, "mixprec: plot: ", 15) == 0, "%s: stderr: %.200s", what, r.err);
    CHECK(r.err && strstr(r.err, needle), "%s: stderr lacks '%s': %.300s", what, needle, r.err);
    result_free(&r);
    CHECK(entries(outdir) == 0, "%s: %d files left in %s", what, entries(outdir), outdir);
    CHECK(entries(scratch) == 0, "%s: the temporary directory was left in %s", what, scratch);
    empty_dir(outdir);
}

#define EXPECT_FAIL(status, needle, ...)                                                           \
    expect_fail(#__VA_ARGS__, status, needle, ARGS(__VA_ARGS__))

/* ---- bad command lines and logs (no gnuplot needed) ------------------------------------------ */

static void test_bad_input(void) {
    const char *log = write_log("ok.jsonl", "bf16", 1, 12, 0);
    char out[256], nodir[256];
    snprintf(out, sizeof out, "%s/p.png", outdir);
    snprintf(nodir, sizeof nodir, "%s/nowhere/p.png", outdir);
    EXPECT_FAIL(2, "needs at least one LOG.jsonl", "plot");
    EXPECT_USAGE("plot", log, "-o", out, "--frobnicate");
    EXPECT_USAGE("plot", log, "-o", out, "--title");
    EXPECT_FAIL(2, "needs -o FILE.png", "plot", log);
    EXPECT_FAIL(2, "needs at least one LOG.jsonl", "plot", "-o", out);
    EXPECT_FAIL(2, "-o needs a value", "plot", log, "-o");
    EXPECT_FAIL(2, "missing.jsonl: cannot open the log", "plot", tpath("missing.jsonl"), "-o", out);
    EXPECT_FAIL(2, "cannot read the log", "plot", tmpdir, "-o", out); /* a directory */
    EXPECT_FAIL(2, "does not exist", "plot", log, "-o", nodir);
    EXPECT_FAIL(2, "is a directory", "plot", log, "-o", outdir);
    EXPECT_FAIL(2, "is the log", "plot", log, "-o", log);
    size_t n = 0;
    unsigned char *b = file_bytes(log, &n);
    CHECK(b && n > 0 && b[0] == '{', "plot LOG -o LOG changed the log");
    free(b);
    const char *bad_sizes[] = {"abc",      "100x100", "1280",     "1280x",     "x720",
                               "9000x600", "-5x5",    "12.5x100", "640x480x2", ""};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++)
        EXPECT_FAIL(2, "--size", "plot", log, "-o", out, "--size", bad_sizes[i]);
    /* line 3 is not JSON: the message names the file and the line */
    tmp_text("bad.jsonl", "{\"event\":\"step\",\"step\":1,\"loss\":1}\n\n{\"event\":\"step\",\n"
                          "{\"event\":\"step\",\"step\":2,\"loss\":1}\n");
    EXPECT_FAIL(2, "bad.jsonl:3: not JSON", "plot", tpath("bad.jsonl"), "-o", out);
    tmp_text("nan.jsonl", "{\"event\":\"step\",\"step\":1,\"loss\":NaN}\n");
    EXPECT_FAIL(2, "nan.jsonl:1: not JSON", "plot", tpath("nan.jsonl"), "-o", out);
    tmp_text("array.jsonl", "{\"event\":\"step\",\"step\":1,\"loss\":1}\n[1,2]\n");
    EXPECT_FAIL(2, "array.jsonl:2: not a JSON object", "plot", tpath("array.jsonl"), "-o", out);
    tmp_text("nostepno.jsonl", "{\"event\":\"step\",\"loss\":1}\n");
    EXPECT_FAIL(2, "nostepno.jsonl:1:", "plot", tpath("nostepno.jsonl"), "-o", out);
    /* no step events: empty, only an eval, only a summary; a later log is checked too */
    tmp_text("empty.jsonl", "");
    tmp_text("evalonly.jsonl", "{\"event\":\"eval\",\"step\":10,\"loss\":1}\n"
                               "{\"event\":\"summary\",\"mixed_precision\":\"fp16\"}\n");
    EXPECT_FAIL(2, "no \"step\" events", "plot", tpath("empty.jsonl"), "-o", out);
    EXPECT_FAIL(2, "evalonly.jsonl: no \"step\" events", "plot", log, tpath("evalonly.jsonl"), "-o",
                out);
}

/* ---- a stand-in gnuplot (always runs) ------------------------------------------------------- */

/* fakebin/gnuplot: a shell script that copies the directory of its script argument (argv:
 * gnuplot -d DIR/plot.gp) to keepdir, prints `say` to stderr and exits with `status`. */
static void fake_gnuplot(const char *say, int status) {
    char path[256], text[1024];
    snprintf(path, sizeof path, "%s/gnuplot", fakebin);
    snprintf(
        text, sizeof text,
        "#!/bin/sh\n/bin/rm -rf '%s'\n/bin/cp -r \"${2%%/*}\" '%s'\nprintf '%s' >&2\nexit %d\n",
        keepdir, keepdir, say, status);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, 0755) != 0)
        die("cannot write the stand-in gnuplot");
}

/* The rows of keepdir/name as (x, y) pairs (columns 1 and col); their number, -1 if missing. */
static int read_rows(const char *name, int col, double *x, double *y, int cap) {
    char path[256], line[256];
    snprintf(path, sizeof path, "%s/%s", keepdir, name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (n < cap && fgets(line, sizeof line, f)) {
        double v[3] = {NAN, NAN, NAN};
        char *p = line;
        for (int c = 0; c < 3; c++) {
            char *end;
            v[c] = strtod(p, &end);
            if (end == p) break;
            p = end;
        }
        x[n] = v[0];
        y[n] = v[col - 1];
        n++;
    }
    fclose(f);
    return n;
}

static void test_fake_gnuplot(void) {
    char out[256];
    snprintf(out, sizeof out, "%s/p.png", outdir);
    const char *resumed = write_resumed("resumed.jsonl");
    setenv("PATH", fakebin, 1);

    /* gnuplot's error line, found among its echo of the command and its caret */
    fake_gnuplot("\\nplot foo\\n     ^\\n\\042/tmp/x/plot.gp\\042 line 7: undefined variable: foo"
                 "\\n\\n",
                 1);
    EXPECT_FAIL(1, "gnuplot failed (exit status 1): line 7: undefined variable: foo", "plot",
                resumed, "-o", out);
    /* anything else: its first line that is not blank */
    fake_gnuplot("\\nboom: the first line\\nthe second line\\n", 3);
    EXPECT_FAIL(1, "gnuplot failed (exit status 3): boom: the first line", "plot", resumed, "-o",
                out);
    /* a gnuplot that exits 0 without writing the picture */
    fake_gnuplot("", 0);
    EXPECT_FAIL(1, "without writing", "plot", resumed, "-o", out);

    /* what the resumed log became: steps 1..40 once each, 21..30 from the second run */
    double x[64], y[64];
    int n = read_rows("s0.dat", 2, x, y, 64);
    CHECK(n == 40, "resumed: %d steps handed to gnuplot, want 40", n);
    for (int i = 0; i < n && i < 40; i++)
        CHECK(x[i] == i + 1 && y[i] == (i < 20 ? 3 : 1), "resumed: row %d is step %g loss %g", i,
              x[i], y[i]);
    /* evals at 10 and 20 (first run), 30 and 40 (second) */
    n = read_rows("e0.dat", 2, x, y, 64);
    CHECK(n == 4 && x[2] == 30 && y[2] == 1 && y[1] == 3, "resumed: evals %d, third %g %g", n, x[2],
          y[2]);
    /* fp16 flush share per step, % of all values of both tensors (100 + 60) */
    n = read_rows("f0.dat", 2, x, y, 64);
    CHECK(n == 4, "resumed: %d numerics steps, want 4", n);
    const double fl[4] = {50, 50, 10, 10};
    for (int i = 0; i < n && i < 4; i++)
        CHECK(x[i] == 10 * (i + 1) && check_close(y[i], fl[i], 1e-9, 1e-9),
              "resumed: flush row %d: step %g %g%%, want %g", i, x[i], y[i], fl[i]);
    /* the histogram of step 40, the last with numerics (one tensor, 100 values, 10 zero):
     * bins -20 and -19 hold 40 and 50 of the 100; rows for the rise and fall below */
    n = read_rows("g0.dat", 2, x, y, 64);
    CHECK(n == 4 && x[1] == -20 && check_close(y[1], 0.4, 0, 1e-9) && x[2] == -19 &&
              check_close(y[2], 0.5, 0, 1e-9) && y[0] < 1e-3 && y[3] < 1e-3,
          "resumed: histogram rows %d: %g %g, %g %g", n, x[1], y[1], x[2], y[2]);

    /* two tensors at one step sum into one histogram; the loss-scaled one shifts by 2^15 */
    const char *fp16 = write_log("fp16.jsonl", "fp16", 1, 20, 1);
    fake_gnuplot("", 1);
    EXPECT_FAIL(1, "gnuplot failed", "plot", fp16, "-o", out);
    n = read_rows("g0.dat", 2, x, y, 64);
    /* fc1: bins -30..-26 = 10 20 30 20 10; fc2: bins -27..-24 = 5 15 25 10; of n = 160 */
    const double want[] = {10, 20, 30, 25, 25, 25, 10};
    CHECK(n == 9, "fp16: %d histogram rows, want 9", n);
    for (int i = 0; i < 7 && n == 9; i++)
        CHECK(x[i + 1] == -30 + i && check_close(y[i + 1], want[i] / 160, 0, 1e-9),
              "fp16: bin %g share %g, want %g", x[i + 1], y[i + 1], want[i] / 160);
    n = read_rows("h0.dat", 2, x, y, 64);
    CHECK(n == 9 && x[1] == -15, "fp16: loss-scaled histogram %d rows from %g", n, x[1]);
    n = read_rows("k0.dat", 2, x, y, 64);
    CHECK(n == 2 && x[0] == 1 && y[0] == 32768 && x[1] == 2 && y[1] == 16384,
          "fp16: skipped steps %d: %g at %g", n, x[0], y[0]);

    /* gnuplot missing: PATH holds no gnuplot */
    setenv("PATH", outdir, 1);
    EXPECT_FAIL(1, "apt-get install gnuplot-nox", "plot", resumed, "-o", out);
    setenv("PATH", real_path, 1);
}

/* ---- the real gnuplot ----------------------------------------------------------------------- */

static void test_png(void) {
    char out[256], arg[300];
    snprintf(out, sizeof out, "%s/p.png", outdir);
    const char *fp16 = write_log("fp16.jsonl", "fp16", 1, 60, 1);
    const char *bf16 = write_log("bf16.jsonl", "bf16", 1, 60, 1);
    const char *fp32 = write_log("fp32.jsonl", "no", 0, 60, 0);
    const char *nomaster = write_log("fp16-nomaster.jsonl", "fp16", 0, 60, 1);
    const char *bare = write_log("bare.jsonl", NULL, 1, 3, 0); /* a crashed run: no summary */
    const char *resumed = write_resumed("resumed.jsonl");

    /* 4 panels: two logs with numerics (fp16 also loss-scaled), the size asked */
    expect_png("4 panels", out, 800, 600, ARGS("plot", fp16, bf16, "-o", out, "--size", "800x600"));
    /* 4 panels at the default size; a log without numerics among them */
    expect_png("4 panels, default size", out, 1280, 960,
               ARGS("plot", fp32, nomaster, fp16, "-o", out, "--title", "three modes"));
    /* 2 panels: no numerics in any log */
    expect_png("2 panels, default size", out, 1280, 720, ARGS("plot", fp32, "-o", out));
    expect_png("2 panels", out, 640, 400,
               ARGS("plot", fp32, bare, "--output", out, "--size", "640X400"));
    /* a resumed run (numerics: 4 panels); --opt=value spellings */
    snprintf(arg, sizeof arg, "--output=%s", out);
    expect_png("resumed", out, 1000, 1000, ARGS("plot", resumed, arg, "--size=1000x1000"));
    /* the smallest size, many logs, a title gnuplot would otherwise read as markup or quotes */
    expect_png("small", out, 200, 200,
               ARGS("plot", fp16, bf16, fp32, nomaster, bare, resumed, fp16, bf16, fp32, nomaster,
                    bare, "-o", out, "--size", "200x200", "--title",
                    "it's \"odd\": 50% _x^{2} \\n @ & ~ `echo`"));
    /* a log with no finite loss or loss scale: empty panels that say so */
    tmp_text("nulls.jsonl", "{\"event\":\"step\",\"step\":1,\"loss\":null,\"loss_scale\":null}\n"
                            "{\"event\":\"step\",\"step\":2,\"loss\":null,\"loss_scale\":0}\n");
    expect_png("nulls", out, 600, 400,
               ARGS("plot", tpath("nulls.jsonl"), "-o", out, "--size", "600x400"));
    /* an existing file is replaced whole */
    tmp_text("outdir/p.png", "not a png");
    expect_png("replace", out, 640, 480, ARGS("plot", bf16, "-o", out, "--size", "640x480"));
}

int main(void) {
    if (access(binary, X_OK) != 0) {
        fprintf(stderr, "test_plot_cli: %s is not built\n", binary);
        return 1;
    }
    if (tmpdir_make("plot") != 0) die("mkdtemp");
    snprintf(outdir, sizeof outdir, "%s/outdir", tmpdir);
    snprintf(scratch, sizeof scratch, "%s/scratch", tmpdir);
    snprintf(fakebin, sizeof fakebin, "%s/fakebin", tmpdir);
    snprintf(keepdir, sizeof keepdir, "%s/keep", tmpdir);
    if (mkdir(outdir, 0755) != 0 || mkdir(scratch, 0755) != 0 || mkdir(fakebin, 0755) != 0)
        die("mkdir");
    const char *path = getenv("PATH");
    real_path = strdup(path ? path : "/usr/bin:/bin");
    setenv("TMPDIR", scratch, 1); /* the command's temporary directory goes there */
    const int gnuplot = have_gnuplot();

    test_bad_input();
    test_fake_gnuplot();
    if (gnuplot) test_png();

    tmpdir_remove();
    free(real_path);
    const int rc = check_exit("test_plot_cli");
    if (rc == 0 && !gnuplot)
        SKIP("gnuplot is not installed (apt-get install gnuplot-nox): the PNGs were not drawn; "
             "the argument errors and the data handed to gnuplot were checked");
    return rc;
}
