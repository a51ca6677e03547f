/*
 * cmd_inspect.c - `mixprec inspect VALUE...`: how each value is stored in
 * fp32, fp16 and bf16 (bits, stored value, rounding error, ulp, class, and
 * what went wrong). All numerics come from the library; nothing is re-derived.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--all", NULL, "also show the fp8 formats e4m3 and e5m2"},
    {"--json", NULL, "one JSON object per value per format per line"},
};
enum { NOPTS = sizeof opts / sizeof opts[0], MAXF = 5 };

void help_inspect(FILE *out) {
    fprintf(out,
            "usage: mixprec inspect [--all] [--json] VALUE...\n"
            "\n"
            "For each VALUE (a decimal like 0.1 or -2.5e-3, a hex float like 0x1p-24, inf or\n"
            "nan) and each of fp32, fp16 and bf16: the bits as sign | exponent | mantissa, the\n"
            "bits in hex, the stored value (exact decimal), the absolute and relative rounding\n"
            "error against VALUE read as a double, the gap to the next number there (ulp), the\n"
            "class (zero, subnormal, normal, inf, nan), and a note when the value overflows to\n"
            "inf, becomes subnormal or flushes to zero. fp16 and bf16 round the fp32 value,\n"
            "to nearest with ties to even, exactly as the library converts tensors.\n"
            "Use -- before values to stop option parsing (negative values work without it).\n"
            "\n"
            "options:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out,
            "\nJSON keys: input, value, format, sign, exponent, mantissa, hex, stored, class,\n"
            "abs_error, rel_error, ulp, exact, overflow, subnormal, flush, note (numbers that\n"
            "are inf or NaN are null; class and sign say which).\n"
            "\nexample: mixprec inspect 0.1 1e-8 70000\n");
}

/* Parse one VALUE strictly: the whole word must be a number. */
static int parse_value(const char *s, double *out, int *underflow) {
    if (!*s || (*s >= '\t' && *s <= '\r') || *s == ' ')
        return cli_usage_error("inspect",
                               "'%s' is not a number (try 0.1, 1e-8, -2.5, inf, nan "
                               "or 0x1p-24)",
                               cli_quote(s));
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return cli_usage_error("inspect",
                               "'%s' is not a number (try 0.1, 1e-8, -2.5, inf, nan "
                               "or 0x1p-24)",
                               cli_quote(s));
    if (errno == ERANGE && isinf(v))
        return cli_usage_error("inspect",
                               "'%s' is too large even for a double (write inf for "
                               "infinity)",
                               cli_quote(s));
    *underflow = errno == ERANGE && v == 0;
    *out = v;
    return 0;
}

/* double -> float with round to nearest even, written out because C leaves
 * the conversion of an out-of-range value undefined: at or above FLT_MAX
 * plus half its ulp the value rounds to inf. */
static float to_f32(double x) {
    const double limit = (double)FLT_MAX + ldexp(1.0, 127 - 24); /* 2^128 - 2^103 */
    if (fabs(x) >= limit) return x < 0 ? -INFINITY : INFINITY;
    if (fabs(x) > FLT_MAX) return x < 0 ? -FLT_MAX : FLT_MAX;
    return (float)x;
}

typedef struct row {
    const mxp_format *f;
    uint32_t bits;
    double stored;
    mxp_class cls;
    double abs_err, rel_err, ulp;
    int exact, overflow, subnormal, flush;
    char sign[2], exp[12], man[32], hex[16];
    char note[320];
} row;

static void field(char *buf, uint32_t v, int width) {
    for (int i = 0; i < width; i++) buf[i] = (char)('0' + ((v >> (width - 1 - i)) & 1u));
    buf[width] = '\0';
}

static void fill_row(row *r, const mxp_format *f, double x) {
    memset(r, 0, sizeof *r);
    r->f = f;
    const float x32 = to_f32(x);
    r->bits = mxp_format_encode(f, x32);
    r->stored = mxp_format_decode(f, r->bits);
    r->cls = mxp_format_classify(f, r->bits);
    const int M = f->man_bits, E = f->exp_bits;
    field(r->sign, r->bits >> (f->bits - 1), 1);
    field(r->exp, (r->bits >> M) & ((1u << E) - 1), E);
    field(r->man, r->bits & ((1u << M) - 1), M);
    snprintf(r->hex, sizeof r->hex, "0x%0*x", (f->bits + 3) / 4, r->bits);
    r->ulp = mxp_format_ulp(f, x);
    if (isfinite(x)) {
        r->abs_err = fabs(r->stored - x);
        r->rel_err = x != 0 ? r->abs_err / fabs(x) : NAN;
    } else {
        /* inf stored as inf, NaN as NaN: no error to speak of */
        r->abs_err = r->rel_err = NAN;
    }
    r->exact = isnan(x) ? isnan(r->stored) : r->stored == x;
    r->overflow = isfinite(x) && (r->cls == MXP_CLASS_INF || r->cls == MXP_CLASS_NAN);
    r->flush = x != 0 && isfinite(x) && r->cls == MXP_CLASS_ZERO;
    r->subnormal = r->cls == MXP_CLASS_SUBNORMAL;
}

/* ", normal in bf16 and fp32" - the other formats shown that hold x as a normal number */
static void holders(char *buf, size_t size, const row *rows, int nf, int self) {
    size_t j = 0;
    int n = 0;
    buf[0] = '\0';
    for (int i = 0; i < nf; i++) {
        if (i == self || rows[i].cls != MXP_CLASS_NORMAL) continue;
        j +=
            (size_t)snprintf(buf + j, size - j, "%s%s", n ? ", " : "; normal in ", rows[i].f->name);
        if (j >= size) break;
        n++;
    }
}

static void make_note(row *rows, int nf, int i, double x, const char *input) {
    row *r = &rows[i];
    const mxp_format *f = r->f;
    char h[80], a[32], b[32];
    holders(h, sizeof h, rows, nf, i);
    if (r->overflow) {
        fmt_shortest(a, sizeof a, mxp_format_max(f));
        snprintf(r->note, sizeof r->note, "overflows to %s: past %s's largest finite value %s%s",
                 mxp_class_name(r->cls), f->name, a, h);
    } else if (r->flush) {
        snprintf(a, sizeof a, "%.6g", mxp_format_min_subnormal(f));
        fmt_pow2(b, sizeof b, mxp_format_min_subnormal(f));
        snprintf(r->note, sizeof r->note,
                 "flushes to zero (underflow): %s's smallest subnormal is %s%s%s", f->name, a, b,
                 h);
    } else if (r->subnormal) {
        /* a subnormal keeps only the bits below its leading one */
        uint32_t m = r->bits & ((1u << f->man_bits) - 1);
        int sig = 0;
        while (m >> sig) sig++;
        snprintf(a, sizeof a, "%.6g", mxp_format_min_normal(f));
        fmt_pow2(b, sizeof b, mxp_format_min_normal(f));
        snprintf(r->note, sizeof r->note,
                 "subnormal: below %s's smallest normal %s%s, only %d significant bit%s left%s",
                 f->name, a, b, sig, sig == 1 ? "" : "s", h);
    } else if (isinf(x) && r->cls == MXP_CLASS_NAN) {
        snprintf(r->note, sizeof r->note, "%s has no inf: infinity is stored as NaN", f->name);
    } else if (isnan(x)) {
        snprintf(r->note, sizeof r->note, "NaN stays a quiet NaN with its sign");
    } else if (!r->exact && f == &mxp_format_fp32) {
        snprintf(r->note, sizeof r->note, "%s has no exact fp32 form: rounded to the nearest",
                 cli_quote(input));
    }
}

static void print_text(const char *input, double x, int underflow, row *rows, int nf) {
    char v[40];
    fmt_shortest(v, sizeof v, x);
    int digits = 0;
    for (const char *p = input; *p && *p != 'e' && *p != 'E'; p++) digits += *p >= '0' && *p <= '9';
    if (underflow)
        printf("%s = %s (below the smallest double: read as zero)\n", cli_quote(input), v);
    else if (strpbrk(input, "xX") || digits > 17)
        printf("%s = %s as a double\n", cli_quote(input), v); /* hex, or more than a double holds */
    else
        printf("%s\n", cli_quote(input));
    for (int i = 0; i < nf; i++) {
        const row *r = &rows[i];
        char bits[64], stored[200], u[48], p[24];
        snprintf(bits, sizeof bits, "%s | %s | %s", r->sign, r->exp, r->man);
        printf("  %-5s %-39s %-11s %s\n", r->f->name, bits, r->hex, mxp_class_name(r->cls));
        if (isnan(r->stored))
            snprintf(stored, sizeof stored, "%snan", signbit(r->stored) ? "-" : "");
        else
            fmt_exact(stored, sizeof stored, r->stored);
        printf("        stored  %s\n", stored);
        if (isnan(r->ulp)) {
            snprintf(u, sizeof u, "-");
        } else {
            fmt_pow2(p, sizeof p, r->ulp);
            snprintf(u, sizeof u, "%.6g%s", r->ulp, p);
        }
        if (isnan(r->abs_err))
            printf("        error   -   ulp here %s\n", u);
        else if (r->exact)
            printf("        error   0 (exact)   ulp here %s\n", u);
        else if (isnan(r->rel_err))
            printf("        error   abs %.6g   ulp here %s\n", r->abs_err, u);
        else
            printf("        error   abs %.6g, rel %.6g (rounded %s)   ulp here %s\n", r->abs_err,
                   r->rel_err, fabs(r->stored) > fabs(x) ? "away from zero" : "toward zero", u);
        if (r->note[0]) printf("        note    %s\n", r->note);
    }
}

static void print_json(const char *input, double x, const row *rows, int nf) {
    for (int i = 0; i < nf; i++) {
        const row *r = &rows[i];
        printf("{\"input\":");
        json_str(stdout, input);
        printf(",\"value\":");
        json_num(stdout, x);
        printf(",\"format\":\"%s\",\"sign\":%s,\"exponent\":\"%s\",\"mantissa\":\"%s\","
               "\"hex\":\"%s\",\"stored\":",
               r->f->name, r->sign, r->exp, r->man, r->hex);
        json_num(stdout, r->stored);
        printf(",\"class\":\"%s\",\"abs_error\":", mxp_class_name(r->cls));
        json_num(stdout, r->abs_err);
        printf(",\"rel_error\":");
        json_num(stdout, r->rel_err);
        printf(",\"ulp\":");
        json_num(stdout, r->ulp);
        printf(",\"exact\":%s,\"overflow\":%s,\"subnormal\":%s,\"flush\":%s,\"note\":",
               r->exact ? "true" : "false", r->overflow ? "true" : "false",
               r->subnormal ? "true" : "false", r->flush ? "true" : "false");
        json_str(stdout, r->note);
        printf("}\n");
    }
}

int cmd_inspect(int argc, char **argv) {
    const char *vals[NOPTS];
    char **pos = argv; /* cli_parse packs the positionals into argv */
    int npos;
    int rc = cli_parse("inspect", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    const int all = vals[0] != NULL, json = vals[1] != NULL;
    if (npos == 0)
        return cli_usage_error("inspect", "no VALUE given (try mixprec inspect 0.1 1e-8 70000)");

    /* read every value before printing anything, so a bad one leaves no half output */
    double *xs = malloc((size_t)npos * sizeof *xs);
    int *under = malloc((size_t)npos * sizeof *under);
    if (!xs || !under) {
        free(xs);
        free(under);
        fprintf(stderr, "mixprec: inspect: out of memory for %d values\n", npos);
        return CLI_EXIT_RUNTIME;
    }
    for (int i = 0; i < npos; i++) {
        if (parse_value(pos[i], &xs[i], &under[i]) != 0) {
            free(xs);
            free(under);
            return CLI_EXIT_USAGE;
        }
    }

    const mxp_format *fmts[MAXF] = {&mxp_format_fp32, &mxp_format_fp16, &mxp_format_bf16,
                                    &mxp_format_e4m3, &mxp_format_e5m2};
    const int nf = all ? MAXF : 3;
    if (!json)
        printf("fp16/bf16%s round the fp32 value (nearest, ties to even); errors are against the "
               "input as a double\n",
               all ? "/fp8" : "");
    for (int v = 0; v < npos; v++) {
        row rows[MAXF];
        for (int i = 0; i < nf; i++) fill_row(&rows[i], fmts[i], xs[v]);
        for (int i = 0; i < nf; i++) make_note(rows, nf, i, xs[v], pos[v]);
        if (json) {
            print_json(pos[v], xs[v], rows, nf);
        } else {
            printf("\n");
            print_text(pos[v], xs[v], under[v], rows, nf);
        }
    }
    free(xs);
    free(under);
    return CLI_EXIT_OK;
}
