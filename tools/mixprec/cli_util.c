/*
 * cli_util.c - option parsing, environment checks, error lines, number
 * formatting and JSON output shared by the mixprec commands.
 * It knows no command's options; those live in each cmd_*.c table.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

cli_globals cli_g;

const cli_opt cli_global_opts[] = {
    {"--threads", "N", "threads for the kernels (1..1024; overrides MIXPREC_NUM_THREADS)"},
    {"--isa", "NAME", "force a kernel family: ref|avx2|avx512|avx512bf16 (overrides MIXPREC_ISA)"},
};
const int cli_nglobal_opts = (int)(sizeof cli_global_opts / sizeof cli_global_opts[0]);

/* ---- error lines ------------------------------------------------------- */

const char *cli_quote(const char *s) {
    enum { KEEP = 48, NBUF = 4 };
    static char bufs[NBUF][KEEP + 32];
    static int next;
    char *b = bufs[next];
    next = (next + 1) % NBUF;
    size_t len = strlen(s), j = 0;
    for (size_t i = 0; i < len && i < KEEP; i++) {
        unsigned char c = (unsigned char)s[i];
        b[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    b[j] = '\0';
    if (len > KEEP) snprintf(b + j, sizeof bufs[0] - j, "...(%zu bytes)", len);
    return b;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* whatever went into msg, it leaves as one line */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (cmd && *cmd)
        fprintf(stderr, "mixprec: %s: %s\n", cmd, msg);
    else
        fprintf(stderr, "mixprec: %s\n", msg);
    return CLI_EXIT_USAGE;
}

int cli_lib_error(const char *cmd, mxp_status st) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s", mxp_last_error());
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "mixprec: %s: %s: %s\n", cmd, mxp_status_str(st), *msg ? msg : "(no detail)");
    return CLI_EXIT_RUNTIME;
}

int cli_file_error(const char *cmd, mxp_status st) {
    const char *msg = mxp_last_error(), *colon = strstr(msg, ": ");
    /* "checkpoint.c:42: detail" -> "detail": the user needs the detail, not our line number */
    cli_usage_error(cmd, "%s", colon ? colon + 2 : *msg ? msg : mxp_status_str(st));
    return st == MXP_ERR_NOMEM ? CLI_EXIT_RUNTIME : CLI_EXIT_USAGE;
}

/* ---- numbers on the command line --------------------------------------- */

int cli_parse_count(const char *cmd, const char *opt, const char *s, unsigned long long min,
                    unsigned long long max, unsigned long long *out) {
    if (!*s) return cli_usage_error(cmd, "%s needs a whole number, got an empty string", opt);
    if (s[0] == '-' && s[1] >= '0' && s[1] <= '9')
        return cli_usage_error(cmd, "%s must be at least %llu, got '%s'", opt, min, cli_quote(s));
    unsigned long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return cli_usage_error(cmd, "%s needs a whole number like %llu, got '%s'", opt,
                                   min > 1 ? min : 1024ull, cli_quote(s));
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10)
            return cli_usage_error(cmd, "%s %s is too large (at most %llu)", opt, cli_quote(s),
                                   max);
        v = v * 10 + d;
    }
    if (v < min) return cli_usage_error(cmd, "%s must be at least %llu, got %llu", opt, min, v);
    *out = v;
    return 0;
}

/* ---- global options and the environment -------------------------------- */

int cli_set_global(const char *name, const char *value) {
    if (strcmp(name, "--threads") == 0) {
        cli_g.threads = value;
        return 1;
    }
    if (strcmp(name, "--isa") == 0) {
        cli_g.isa = value;
        return 1;
    }
    return 0;
}

/* The library quietly falls back when MIXPREC_ISA or MIXPREC_NUM_THREADS is
 * unusable (a kernel must never die on a typo); the command line says so
 * instead, because a user who set them expects them to take effect. */
static int check_env(const char *cmd) {
    const char *e = getenv("MIXPREC_ISA");
    if (e && *e) {
        mxp_isa isa;
        if (mxp_isa_parse(e, &isa) != MXP_OK) {
            mxp_clear_error();
            return cli_usage_error(cmd,
                                   "MIXPREC_ISA='%s' is not a kernel family (use ref, avx2, "
                                   "avx512 or avx512bf16, or unset it)",
                                   cli_quote(e));
        }
        if (isa > mxp_isa_detect())
            return cli_usage_error(cmd,
                                   "MIXPREC_ISA=%s: this CPU cannot run it (best here: %s); "
                                   "unset it or choose a lower family",
                                   mxp_isa_name(isa), mxp_isa_name(mxp_isa_detect()));
        cli_g.isa_why = "forced by MIXPREC_ISA";
    }
    const char *t = getenv("MIXPREC_NUM_THREADS");
    if (t && *t) {
        unsigned long long n;
        /* same rule as the library: a whole number 1..1024 */
        if (cli_parse_count(cmd, "MIXPREC_NUM_THREADS", t, 1, 1024, &n) != 0) return CLI_EXIT_USAGE;
        cli_g.threads_why = "from MIXPREC_NUM_THREADS";
    }
    return 0;
}

static int apply_globals(const char *cmd) {
    if (!cli_g.isa_why) cli_g.isa_why = "the best this CPU supports";
    if (!cli_g.threads_why)
        cli_g.threads_why = mxp_have_openmp() ? "OpenMP's default: OMP_NUM_THREADS or the CPUs"
                                              : "library built without OpenMP";
    if (check_env(cmd) != 0) return CLI_EXIT_USAGE;
    if (cli_g.isa) {
        mxp_isa isa;
        if (mxp_isa_parse(cli_g.isa, &isa) != MXP_OK) {
            mxp_clear_error();
            return cli_usage_error(cmd,
                                   "--isa '%s' is not a kernel family (use ref, avx2, "
                                   "avx512 or avx512bf16)",
                                   cli_quote(cli_g.isa));
        }
        mxp_status st = mxp_isa_set(isa);
        if (st != MXP_OK) {
            mxp_clear_error();
            return cli_usage_error(cmd, "--isa %s: this CPU cannot run it (best here: %s)",
                                   mxp_isa_name(isa), mxp_isa_name(mxp_isa_detect()));
        }
        cli_g.isa_why = "forced by --isa";
    }
    if (cli_g.threads) {
        unsigned long long n;
        if (cli_parse_count(cmd, "--threads", cli_g.threads, 1, 1024, &n) != 0)
            return CLI_EXIT_USAGE;
        mxp_status st = mxp_set_num_threads((int)n);
        if (st != MXP_OK) return cli_lib_error(cmd, st);
        cli_g.threads_why = mxp_have_openmp() ? "set by --threads"
                                              : "library built without OpenMP (--threads ignored)";
    }
    return 0;
}

/* ---- option parsing ---------------------------------------------------- */

static int find_opt(const cli_opt *opts, int nopts, const char *name, size_t len) {
    for (int i = 0; i < nopts; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return i;
    return -1;
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, int nopts,
              const char **vals, char **pos, int *npos) {
    int help = 0, only_pos = 0;
    *npos = 0;
    for (int i = 0; i < nopts; i++) vals[i] = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0' || (a[1] != '-' && a[1] != 'h')) {
            pos[(*npos)++] = argv[i]; /* words, "-", and negative numbers like -0.5 */
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = 1;
            continue;
        }
        if (a[1] != '-')
            return cli_usage_error(cmd, "unknown option '%s' (see mixprec help %s)", cli_quote(a),
                                   cmd);
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        int k = find_opt(opts, nopts, a, len);
        int g = k < 0 ? find_opt(cli_global_opts, cli_nglobal_opts, a, len) : -1;
        if (k < 0 && g < 0)
            return cli_usage_error(cmd, "unknown option '%s' (see mixprec help %s)", cli_quote(a),
                                   cmd);
        const cli_opt *o = k >= 0 ? &opts[k] : &cli_global_opts[g];
        const char *v;
        if (!o->metavar) {
            if (eq) return cli_usage_error(cmd, "option %s takes no value", o->name);
            v = "";
        } else if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            v = argv[++i];
        } else {
            return cli_usage_error(cmd, "option %s needs a value: %s %s", o->name, o->name,
                                   o->metavar);
        }
        if (k >= 0)
            vals[k] = v;
        else
            cli_set_global(o->name, v);
    }
    if (help) return CLI_HELP;
    return apply_globals(cmd);
}

void cli_print_opts(FILE *out, const cli_opt *opts, int nopts) {
    for (int i = 0; i < nopts; i++) {
        char left[48];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
                 opts[i].metavar ? opts[i].metavar : "");
        fprintf(out, "  %-22s %s\n", left, opts[i].help);
    }
}

/* ---- formatting -------------------------------------------------------- */

void fmt_shortest(char *buf, size_t size, double v) {
    char tmp[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
    const char *e = strchr(tmp, 'e');
    const int exp10 = e ? atoi(e + 1) : 0;
    /* positional where it is short (65520, 0.1), scientific elsewhere, as Python's repr */
    if (isfinite(v) && exp10 >= -4 && exp10 < 17)
        snprintf(buf, size, "%.*f", p - 1 - exp10 > 0 ? p - 1 - exp10 : 0, v);
    else
        snprintf(buf, size, "%.*g", p, v);
}

int fmt_exact(char *buf, size_t size, double v) {
    /* glibc prints the exact binary value for any precision; 767 significant
     * digits cover every double, the rest are zeros we strip. */
    static char tmp[1024];
    snprintf(tmp, sizeof tmp, "%.*e", 780, fabs(v));
    char *e = strchr(tmp, 'e');
    if (!e || !isfinite(v)) {
        snprintf(buf, size, "%g", v);
        return 0;
    }
    int exp10 = atoi(e + 1);
    char digits[800];
    size_t nd = 0;
    for (char *p = tmp; p < e; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    const char *sign = signbit(v) ? "-" : "";
    if (nd + 8 > size) {
        snprintf(buf, size, "~%.17g", v);
        return (int)nd;
    }
    if (exp10 >= -5 && exp10 < 17 && nd + 24 < size) {
        /* positional: 0.000123 or 65504 or 1.5 */
        size_t j = 0;
        j += (size_t)snprintf(buf + j, size - j, "%s", sign);
        if (exp10 < 0) {
            j += (size_t)snprintf(buf + j, size - j, "0.");
            for (int z = 0; z < -exp10 - 1; z++) buf[j++] = '0';
            snprintf(buf + j, size - j, "%s", digits);
        } else {
            for (int d = 0; d <= exp10 || (size_t)d < nd; d++) {
                if (d == exp10 + 1) buf[j++] = '.';
                buf[j++] = (size_t)d < nd ? digits[d] : '0';
            }
            buf[j] = '\0';
        }
    } else {
        snprintf(buf, size, "%s%c%s%se%+03d", sign, digits[0], nd > 1 ? "." : "", digits + 1,
                 exp10);
    }
    return (int)nd;
}

void fmt_pow2(char *buf, size_t size, double v) {
    int e;
    double m = frexp(fabs(v), &e);
    if (v != 0 && isfinite(v) && m == 0.5)
        snprintf(buf, size, " (2^%d)", e - 1);
    else if (size)
        buf[0] = '\0';
}

void json_num(FILE *out, double v) {
    if (!isfinite(v)) {
        fputs("null", out);
        return;
    }
    char buf[40];
    fmt_shortest(buf, sizeof buf, v);
    fputs(buf, out);
}

void json_meas(FILE *out, double v) {
    if (!isfinite(v))
        fputs("null", out);
    else
        fprintf(out, "%.6g", v);
}

void json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else if (*p >= 0x80)
            fputc('?', out); /* argv may hold bytes that are not UTF-8; JSON must be */
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_check_memory(const char *cmd, double bytes) {
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    double phys = pages > 0 && psize > 0 ? (double)pages * (double)psize : 0;
    if (phys > 0 && bytes > 0.9 * phys) {
        fprintf(stderr,
                "mixprec: %s: out of memory: needs %.1f GiB of buffers but this machine has "
                "%.1f GiB; use smaller sizes\n",
                cmd, bytes / 1073741824.0, phys / 1073741824.0);
        return CLI_EXIT_RUNTIME;
    }
    return 0;
}

int cli_buffer_bytes(const char *cmd, const char *what, unsigned long long rows,
                     unsigned long long cols, size_t elem_size, size_t *bytes) {
    size_t n, b;
    if (rows > SIZE_MAX || cols > SIZE_MAX ||
        __builtin_mul_overflow((size_t)rows, (size_t)cols, &n) ||
        __builtin_mul_overflow(n, elem_size, &b)) {
        fprintf(stderr,
                "mixprec: %s: out of memory: %s needs %llu x %llu x %zu bytes, more than this "
                "machine can address; use smaller sizes\n",
                cmd, what, rows, cols, elem_size);
        return CLI_EXIT_RUNTIME;
    }
    *bytes = b;
    return 0;
}
