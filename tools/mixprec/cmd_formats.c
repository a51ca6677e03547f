/*
 * cmd_formats.c - `mixprec formats`: the range table of each number format,
 * every figure computed by the library from the format's descriptor (no
 * number is written here), plus where rounding overflows or flushes to zero.
 */
#include <math.h>
#include <string.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--all", NULL, "also show the fp8 formats e4m3 and e5m2"},
    {"--json", NULL, "one JSON object per format per line"},
};
enum { NOPTS = sizeof opts / sizeof opts[0] };

void help_formats(FILE *out) {
    fprintf(out,
            "usage: mixprec formats [--all] [--json]\n"
            "\n"
            "The range of each number format: bits as sign-exponent-mantissa, exponent bias,\n"
            "the largest finite value, the smallest normal and subnormal values, epsilon (the\n"
            "gap above 1.0), decimal digits of precision, and the fp32 magnitudes that round\n"
            "to inf (overflow) or to zero (underflow) when stored in the format.\n"
            "fp16 reaches only 2^-24 .. 65504: small gradients underflow; bf16 keeps fp32's\n"
            "range with fewer digits.\n"
            "\n"
            "options:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out,
            "\nJSON keys: format, bits, sign_bits, exp_bits, man_bits, bias, max, min_normal,\n"
            "min_subnormal, epsilon, decimal_digits, overflow_from, flush_upto (null when\n"
            "no fp32 value overflows or flushes), nonfinite (ieee or fn).\n");
}

static int overflows(const mxp_format *f, uint32_t fbits) {
    float x;
    memcpy(&x, &fbits, sizeof x);
    mxp_class c = mxp_format_classify(f, mxp_format_encode(f, x));
    return c == MXP_CLASS_INF || c == MXP_CLASS_NAN;
}

static int flushes(const mxp_format *f, uint32_t fbits) {
    float x;
    memcpy(&x, &fbits, sizeof x);
    return mxp_format_classify(f, mxp_format_encode(f, x)) == MXP_CLASS_ZERO;
}

/* The smallest positive finite fp32 value that the format stores as inf (or
 * NaN), found by bisection over fp32 bit patterns (ordered like the values);
 * NAN when none does. Asking the encoder, not a formula, keeps the answer
 * true to the rounding rule for every format, the FN ones included. */
static double overflow_from(const mxp_format *f) {
    uint32_t lo = 0, hi = 0x7f7fffffu; /* +0 .. FLT_MAX */
    if (!overflows(f, hi)) return NAN;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (overflows(f, mid))
            hi = mid;
        else
            lo = mid;
    }
    float x;
    memcpy(&x, &hi, sizeof x);
    return x;
}

/* The largest positive fp32 value that the format rounds to zero; NAN when
 * even the smallest fp32 subnormal survives. */
static double flush_upto(const mxp_format *f) {
    uint32_t lo = 1, hi = 0x7f7fffffu;
    if (!flushes(f, lo)) return NAN;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (flushes(f, mid))
            lo = mid;
        else
            hi = mid;
    }
    float x;
    memcpy(&x, &lo, sizeof x);
    return x;
}

/* "(2 - 2^-10) x 2^15" for a largest finite value */
static void fmt_max_pow2(char *buf, size_t size, double mx) {
    int e;
    frexp(mx, &e);
    double frac = ldexp(mx, -(e - 1)); /* in [1, 2) */
    int k;
    double rest = frexp(2.0 - frac, &k);
    if (rest == 0.5)
        snprintf(buf, size, "(2 - 2^%d) x 2^%d", k - 1, e - 1);
    else
        snprintf(buf, size, "%.17g x 2^%d", frac, e - 1);
}

/* "2^-14" for a power of two, else the shortest decimal */
static const char *bare_pow2(char *buf, size_t size, double v) {
    int e;
    if (frexp(v, &e) == 0.5)
        snprintf(buf, size, "2^%d", e - 1);
    else
        fmt_shortest(buf, size, v);
    return buf;
}

static void print_json(const mxp_format *f) {
    printf("{\"format\":");
    json_str(stdout, f->name);
    printf(",\"bits\":%d,\"sign_bits\":1,\"exp_bits\":%d,\"man_bits\":%d,\"bias\":%d", f->bits,
           f->exp_bits, f->man_bits, f->bias);
    printf(",\"max\":");
    json_num(stdout, mxp_format_max(f));
    printf(",\"min_normal\":");
    json_num(stdout, mxp_format_min_normal(f));
    printf(",\"min_subnormal\":");
    json_num(stdout, mxp_format_min_subnormal(f));
    printf(",\"epsilon\":");
    json_num(stdout, mxp_format_epsilon(f));
    printf(",\"decimal_digits\":");
    json_num(stdout, mxp_format_decimal_digits(f));
    printf(",\"overflow_from\":");
    json_num(stdout, overflow_from(f));
    printf(",\"flush_upto\":");
    json_num(stdout, flush_upto(f));
    printf(",\"nonfinite\":\"%s\"}\n", f->special == MXP_SPECIAL_FN ? "fn" : "ieee");
}

int cmd_formats(int argc, char **argv) {
    const char *vals[NOPTS];
    char **pos = argv; /* cli_parse packs the positionals into argv */
    int npos;
    int rc = cli_parse("formats", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos)
        return cli_usage_error("formats",
                               "unexpected argument '%s' (formats takes only --all "
                               "and --json)",
                               cli_quote(pos[0]));
    const int all = vals[0] != NULL, json = vals[1] != NULL;
    const mxp_format *fmts[] = {&mxp_format_fp32, &mxp_format_fp16, &mxp_format_bf16,
                                &mxp_format_e4m3, &mxp_format_e5m2};
    const int nf = all ? 5 : 3;

    if (json) {
        for (int i = 0; i < nf; i++) print_json(fmts[i]);
        return CLI_EXIT_OK;
    }
    printf("%-6s %4s  %-7s %4s  %-12s %-12s %-13s %-12s %6s\n", "format", "bits", "s-e-m", "bias",
           "max", "min normal", "min subnormal", "epsilon", "digits");
    for (int i = 0; i < nf; i++) {
        const mxp_format *f = fmts[i];
        char layout[16];
        snprintf(layout, sizeof layout, "1-%d-%d", f->exp_bits, f->man_bits);
        printf("%-6s %4d  %-7s %4d  %-12.6g %-12.6g %-13.6g %-12.6g %6.2f\n", f->name, f->bits,
               layout, f->bias, mxp_format_max(f), mxp_format_min_normal(f),
               mxp_format_min_subnormal(f), mxp_format_epsilon(f), mxp_format_decimal_digits(f));
    }
    printf("\nexactly, and what rounding an fp32 value into the format does:\n");
    for (int i = 0; i < nf; i++) {
        const mxp_format *f = fmts[i];
        char mx[48], mn[24], ms[24], ep[24], fl[24];
        fmt_max_pow2(mx, sizeof mx, mxp_format_max(f));
        printf("%-6s max %s, min normal %s, min subnormal %s, epsilon %s\n", f->name, mx,
               bare_pow2(mn, sizeof mn, mxp_format_min_normal(f)),
               bare_pow2(ms, sizeof ms, mxp_format_min_subnormal(f)),
               bare_pow2(ep, sizeof ep, mxp_format_epsilon(f)));
        const double of = overflow_from(f), fz = flush_upto(f);
        if (isnan(of) && isnan(fz)) {
            printf("%-6s every finite fp32 value is stored without overflow or underflow\n", "");
            continue;
        }
        char ofs[64] = "no fp32 value overflows";
        if (!isnan(of)) {
            /* "> 464" reads better than ">= 464.000031" when the value below is a tie that
             * rounds down */
            const float below = nextafterf((float)of, 0.0f);
            char a[24], b[24];
            snprintf(a, sizeof a, "%.9g", of);
            snprintf(b, sizeof b, "%.9g", below);
            mxp_class c = mxp_format_classify(f, mxp_format_encode(f, (float)of));
            snprintf(ofs, sizeof ofs, "|x| %s %s becomes %s",
                     strlen(b) < strlen(a) ? ">" : ">=", strlen(b) < strlen(a) ? b : a,
                     mxp_class_name(c));
        }
        fmt_pow2(fl, sizeof fl, fz);
        if (isnan(fz))
            printf("%-6s %s; every nonzero fp32 value stays nonzero\n", "", ofs);
        else
            printf("%-6s %s; 0 < |x| <= %.9g%s becomes 0 (underflow)\n", "", ofs, fz, fl);
    }
    return CLI_EXIT_OK;
}
