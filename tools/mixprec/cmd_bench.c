/*
 * cmd_bench.c - `mixprec bench`: picks the benchmark, and times bulk
 * conversion (mxp_convert) against memcpy of the same source bytes. It
 * measures and reports; it asserts no speed (that is docs/BENCHMARKS.md's job).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_opt convert_opts[] = {
    {"--n", "N", "fp32 elements to convert (default 67108864: 256 MiB of fp32)"},
    {"--repeat", "R", "timed runs after one warm-up; median and best are reported (default 5)"},
    {"--json", NULL, "one JSON object per conversion per line"},
};
enum { CONVERT_NOPTS = sizeof convert_opts / sizeof convert_opts[0] };

void help_bench(FILE *out) {
    fprintf(out,
            "usage: mixprec bench gemm [--dtype fp32|bf16|fp16] [--m M] [--n N] [--k K]\n"
            "                          [--threads T] [--trans-a] [--trans-b] [--repeat R] "
            "[--json]\n"
            "       mixprec bench convert [--n N] [--threads T] [--repeat R] [--json]\n"
            "\n"
            "bench gemm times C = op(A) op(B) with A, B in the dtype (random values in [-1, 1))\n"
            "and C in fp32 (accumulation is always fp32), after one warm-up run, and reports\n"
            "the median and best time and GFLOP/s = 2 M N K / time.\n"
            "\n");
    cli_print_opts(out, bench_gemm_opts, bench_gemm_nopts);
    fprintf(out,
            "\nbench convert times mxp_convert f32->bf16, f32->f16, bf16->f32 and f16->f32 on N\n"
            "elements, and memcpy of the N*4 source bytes; it reports GB/s (bytes read plus\n"
            "written) and the conversion's time as a multiple of memcpy's.\n"
            "\n");
    cli_print_opts(out, convert_opts, CONVERT_NOPTS);
    fprintf(out, "\noptions for both:\n");
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out,
            "\nJSON keys: gemm: bench, dtype, m, n, k, trans_a, trans_b, threads, isa, kernel,\n"
            "repeat, ms_median, ms_best, gflops (median), gflops_best; convert: bench, op\n"
            "(convert or memcpy), from, to, n, threads, isa, repeat, ms_median, ms_best, gbps\n"
            "(median), gbps_best, vs_memcpy (median time / memcpy's median time).\n"
            "\nexample: mixprec bench gemm --dtype bf16 --m 1024 --n 1024 --k 1024 --threads 1\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_stats(double *t, int n, double *median, double *best) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *best = t[0];
    *median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

mxp_status bench_fill(void *dst, mxp_dtype dt, size_t n, uint64_t seed) {
    enum { CHUNK = 4096 };
    float buf[CHUNK];
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    const size_t es = mxp_dtype_size(dt);
    for (size_t i = 0; i < n; i += CHUNK) {
        const size_t m = n - i < CHUNK ? n - i : CHUNK;
        for (size_t j = 0; j < m; j++) {
            /* xorshift64*: plenty for benchmark data */
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            const uint64_t r = s * 0x2545F4914F6CDD1Dull;
            buf[j] = (float)(r >> 40) * (1.0f / 8388608.0f) - 1.0f;
        }
        mxp_status st = mxp_convert((char *)dst + i * es, dt, buf, MXP_DTYPE_F32, m);
        if (st != MXP_OK) return st;
    }
    return MXP_OK;
}

/* memcpy split over the kernels' threads, so the baseline uses the same cores
 * as mxp_convert does. */
static void copy_threaded(void *dst, const void *src, size_t bytes, int nt) {
    if (nt <= 1 || bytes < (1u << 20)) {
        memcpy(dst, src, bytes); /* waking threads costs more than a small copy */
        return;
    }
    const size_t per = (bytes / (size_t)nt + 63) / 64 * 64;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
    for (int t = 0; t < nt; t++) {
        const size_t b = (size_t)t * per;
        if (b < bytes)
            memcpy((char *)dst + b, (const char *)src + b, bytes - b < per ? bytes - b : per);
    }
}

typedef struct conv_case {
    const char *from, *to;
    mxp_dtype dt, st;
    void *dst;
    const void *src;
    double bytes; /* read + written (a double: only ever divided by a time) */
} conv_case;

static int bench_convert(int argc, char **argv) {
    const char *cmd = "bench convert";
    const char *vals[CONVERT_NOPTS];
    char **pos = argv;
    int npos;
    int rc = cli_parse(cmd, argc, argv, convert_opts, CONVERT_NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos)
        return cli_usage_error(cmd, "unexpected argument '%s' (see mixprec help bench)",
                               cli_quote(pos[0]));
    unsigned long long n = 64ull << 20, repeat = 5;
    if (vals[0] && cli_parse_count(cmd, "--n", vals[0], 1, 1ull << 40, &n)) return CLI_EXIT_USAGE;
    if (vals[1] && cli_parse_count(cmd, "--repeat", vals[1], 1, 10000, &repeat))
        return CLI_EXIT_USAGE;
    const int json = vals[2] != NULL;
    const int nt = mxp_num_threads();

    /* src fp32 (n), bf16 and fp16 copies (n each), fp32 destination (n); the
     * sizes are checked in size_t before the total is checked against memory */
    size_t f32_bytes, f16_bytes;
    if (cli_buffer_bytes(cmd, "each fp32 buffer", n, 1, 4, &f32_bytes) ||
        cli_buffer_bytes(cmd, "each 16-bit buffer", n, 1, 2, &f16_bytes))
        return CLI_EXIT_RUNTIME;
    if (cli_check_memory(cmd, 2.0 * (double)f32_bytes + 2.0 * (double)f16_bytes))
        return CLI_EXIT_RUNTIME;
    double *times = malloc(repeat * sizeof *times);
    if (!times) {
        fprintf(stderr, "mixprec: %s: out of memory for %llu timings\n", cmd, repeat);
        return CLI_EXIT_RUNTIME;
    }
    float *src = mxp_alloc(f32_bytes);
    uint16_t *hb = mxp_alloc(f16_bytes), *hh = mxp_alloc(f16_bytes);
    float *dst = mxp_alloc(f32_bytes);
    mxp_status st = MXP_OK;
    if (!src || !hb || !hh || !dst) st = MXP_ERR_NOMEM;
    /* touch every page before timing, so page faults are not measured */
    if (st == MXP_OK) st = bench_fill(src, MXP_DTYPE_F32, n, 1);
    if (st == MXP_OK) {
        memset(hb, 0, f16_bytes);
        memset(hh, 0, f16_bytes);
        memset(dst, 0, f32_bytes);
    }
    const double moved = 6.0 * (double)n; /* 4 bytes read and 2 written, or 2 and 4 */
    const conv_case cases[] = {
        {"f32", "bf16", MXP_DTYPE_BF16, MXP_DTYPE_F32, hb, src, moved},
        {"f32", "f16", MXP_DTYPE_F16, MXP_DTYPE_F32, hh, src, moved},
        {"bf16", "f32", MXP_DTYPE_F32, MXP_DTYPE_BF16, dst, hb, moved},
        {"f16", "f32", MXP_DTYPE_F32, MXP_DTYPE_F16, dst, hh, moved},
    };
    enum { NCASES = sizeof cases / sizeof cases[0] };
    double med[NCASES + 1], best[NCASES + 1];
    for (int c = 0; c <= NCASES && st == MXP_OK; c++) {
        for (unsigned long long r = 0; r <= repeat && st == MXP_OK; r++) {
            const double t0 = cli_now();
            if (c == NCASES)
                copy_threaded(dst, src, f32_bytes, nt);
            else
                st = mxp_convert(cases[c].dst, cases[c].dt, cases[c].src, cases[c].st, n);
            if (r > 0) times[r - 1] = cli_now() - t0; /* run 0 is the warm-up */
        }
        if (st == MXP_OK) bench_stats(times, (int)repeat, &med[c], &best[c]);
    }
    if (st != MXP_OK) {
        rc = cli_lib_error(cmd, st);
    } else {
        const char *isa = mxp_isa_name(mxp_isa_active());
        if (!json)
            printf("convert %llu elements (%.4g MiB of fp32), %d thread%s, isa %s, median of %llu "
                   "runs\n",
                   n, (double)n * 4 / 1048576.0, nt, nt == 1 ? "" : "s", isa, repeat);
        for (int c = 0; c <= NCASES; c++) {
            const int is_copy = c == NCASES;
            const char *from = is_copy ? "f32" : cases[c].from, *to = is_copy ? "f32" : cases[c].to;
            const double bytes = is_copy ? 8.0 * (double)n : cases[c].bytes;
            const double gbps = bytes / med[c] * 1e-9, gbps_best = bytes / best[c] * 1e-9;
            const double ratio = med[c] / med[NCASES];
            if (json) {
                printf("{\"bench\":\"convert\",\"op\":\"%s\",\"from\":\"%s\",\"to\":\"%s\","
                       "\"n\":%llu,\"threads\":%d,\"isa\":\"%s\",\"repeat\":%llu,\"ms_median\":",
                       is_copy ? "memcpy" : "convert", from, to, n, nt, isa, repeat);
                json_meas(stdout, med[c] * 1e3);
                printf(",\"ms_best\":");
                json_meas(stdout, best[c] * 1e3);
                printf(",\"gbps\":");
                json_meas(stdout, gbps);
                printf(",\"gbps_best\":");
                json_meas(stdout, gbps_best);
                printf(",\"vs_memcpy\":");
                json_meas(stdout, ratio);
                printf("}\n");
            } else {
                char label[16];
                snprintf(label, sizeof label, "%s->%s", from, to);
                printf("  %-10s %9.4g ms %8.2f GB/s (best %8.2f)   %5.2fx memcpy's time\n",
                       is_copy ? "memcpy" : label, med[c] * 1e3, gbps, gbps_best, ratio);
            }
        }
    }
    free(times);
    mxp_free(src);
    mxp_free(hb);
    mxp_free(hh);
    mxp_free(dst);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc == 0)
        return cli_usage_error("bench", "which benchmark? (mixprec bench gemm|convert; see "
                                        "mixprec help bench)");
    if (strcmp(argv[0], "gemm") == 0) return bench_gemm(argc - 1, argv + 1);
    if (strcmp(argv[0], "convert") == 0) return bench_convert(argc - 1, argv + 1);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) return CLI_HELP;
    return cli_usage_error("bench", "unknown benchmark '%s' (use gemm or convert)",
                           cli_quote(argv[0]));
}
