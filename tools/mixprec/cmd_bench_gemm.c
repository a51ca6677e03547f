/*
 * cmd_bench_gemm.c - `mixprec bench gemm`: times mxp_gemm with A and B in
 * fp32, bf16 or fp16 and C in fp32 (alpha 1, beta 0) and reports GFLOP/s.
 * It checks no results; tests/test_gemm.c does that against the reference.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const cli_opt bench_gemm_opts[] = {
    {"--dtype", "T", "input dtype of A and B: fp32, bf16 or fp16 (default bf16)"},
    {"--m", "M", "rows of op(A) and C (default 1024)"},
    {"--n", "N", "columns of op(B) and C (default 1024)"},
    {"--k", "K", "the inner dimension (default 1024)"},
    {"--trans-a", NULL, "A is stored (K, M) and read transposed"},
    {"--trans-b", NULL, "B is stored (N, K) and read transposed"},
    {"--repeat", "R", "timed runs after one warm-up; median and best are reported (default 5)"},
    {"--json", NULL, "one JSON object on one line"},
};
const int bench_gemm_nopts = (int)(sizeof bench_gemm_opts / sizeof bench_gemm_opts[0]);
enum { O_DTYPE, O_M, O_N, O_K, O_TA, O_TB, O_REPEAT, O_JSON };

/* A dimension may be large; the size checks below (each buffer must fit in
 * size_t, then all of them in memory) stop what this machine cannot hold,
 * with a clean message. */
static const unsigned long long MAX_DIM = 1ull << 40;

int bench_gemm(int argc, char **argv) {
    const char *cmd = "bench gemm";
    const char *vals[sizeof bench_gemm_opts / sizeof bench_gemm_opts[0]];
    char **pos = argv;
    int npos;
    int rc = cli_parse(cmd, argc, argv, bench_gemm_opts, bench_gemm_nopts, vals, pos, &npos);
    if (rc) return rc;
    if (npos)
        return cli_usage_error(cmd, "unexpected argument '%s' (see mixprec help bench)",
                               cli_quote(pos[0]));
    mxp_dtype dt = MXP_DTYPE_BF16;
    if (vals[O_DTYPE] && mxp_dtype_parse(vals[O_DTYPE], &dt) != MXP_OK) {
        mxp_clear_error();
        return cli_usage_error(cmd, "--dtype '%s' is not supported (use fp32, bf16 or fp16)",
                               cli_quote(vals[O_DTYPE]));
    }
    unsigned long long m = 1024, n = 1024, k = 1024, repeat = 5;
    if (vals[O_M] && cli_parse_count(cmd, "--m", vals[O_M], 1, MAX_DIM, &m)) return CLI_EXIT_USAGE;
    if (vals[O_N] && cli_parse_count(cmd, "--n", vals[O_N], 1, MAX_DIM, &n)) return CLI_EXIT_USAGE;
    if (vals[O_K] && cli_parse_count(cmd, "--k", vals[O_K], 1, MAX_DIM, &k)) return CLI_EXIT_USAGE;
    if (vals[O_REPEAT] && cli_parse_count(cmd, "--repeat", vals[O_REPEAT], 1, 10000, &repeat))
        return CLI_EXIT_USAGE;
    const int ta = vals[O_TA] != NULL, tb = vals[O_TB] != NULL, json = vals[O_JSON] != NULL;
    const size_t es = mxp_dtype_size(dt);

    /* each buffer's size must fit in size_t before anything multiplies in
     * it; then the total (in double) must fit in this machine's memory */
    size_t a_bytes, b_bytes, c_bytes;
    if (cli_buffer_bytes(cmd, "A", m, k, es, &a_bytes) ||
        cli_buffer_bytes(cmd, "B", k, n, es, &b_bytes) ||
        cli_buffer_bytes(cmd, "C", m, n, 4, &c_bytes))
        return CLI_EXIT_RUNTIME;
    if (cli_check_memory(cmd, (double)a_bytes + (double)b_bytes + (double)c_bytes))
        return CLI_EXIT_RUNTIME;
    double *times = malloc(repeat * sizeof *times);
    if (!times) {
        fprintf(stderr, "mixprec: %s: out of memory for %llu timings\n", cmd, repeat);
        return CLI_EXIT_RUNTIME;
    }
    void *A = mxp_alloc(a_bytes);  /* (M, K), or (K, M) with --trans-a */
    void *B = mxp_alloc(b_bytes);  /* (K, N), or (N, K) with --trans-b */
    float *C = mxp_alloc(c_bytes); /* (M, N) fp32 */
    mxp_status st = (A && B && C) ? MXP_OK : MXP_ERR_NOMEM;
    /* filling A, B and C touches every page before the clock starts */
    if (st == MXP_OK) st = bench_fill(A, dt, a_bytes / es, 1);
    if (st == MXP_OK) st = bench_fill(B, dt, b_bytes / es, 2);
    if (st == MXP_OK) memset(C, 0, c_bytes);
    const size_t lda = ta ? m : k, ldb = tb ? k : n;
    for (unsigned long long r = 0; r <= repeat && st == MXP_OK; r++) {
        const double t0 = cli_now();
        st = mxp_gemm(ta ? MXP_TRANS : MXP_NO_TRANS, tb ? MXP_TRANS : MXP_NO_TRANS, m, n, k, 1.0f,
                      A, dt, lda, B, dt, ldb, 0.0f, C, MXP_DTYPE_F32, n, NULL);
        if (r > 0) times[r - 1] = cli_now() - t0; /* run 0 is the warm-up */
    }
    if (st != MXP_OK) {
        rc = cli_lib_error(cmd, st);
    } else {
        double med, best;
        bench_stats(times, (int)repeat, &med, &best);
        const double flop = 2.0 * (double)m * (double)n * (double)k;
        const int nt = mxp_num_threads();
        const char *isa = mxp_isa_name(mxp_isa_active()), *kernel = mxp_gemm_kernel_name(dt, dt);
        const char *dname = dt == MXP_DTYPE_F32 ? "fp32" : dt == MXP_DTYPE_F16 ? "fp16" : "bf16";
        if (json) {
            printf("{\"bench\":\"gemm\",\"dtype\":\"%s\",\"m\":%llu,\"n\":%llu,\"k\":%llu,"
                   "\"trans_a\":%s,\"trans_b\":%s,\"threads\":%d,\"isa\":\"%s\",\"kernel\":",
                   dname, m, n, k, ta ? "true" : "false", tb ? "true" : "false", nt, isa);
            json_str(stdout, kernel);
            printf(",\"repeat\":%llu,\"ms_median\":", repeat);
            json_meas(stdout, med * 1e3);
            printf(",\"ms_best\":");
            json_meas(stdout, best * 1e3);
            printf(",\"gflops\":");
            json_meas(stdout, flop / med * 1e-9);
            printf(",\"gflops_best\":");
            json_meas(stdout, flop / best * 1e-9);
            printf("}\n");
        } else {
            printf("gemm %s x %s -> fp32 (fp32 accumulation), M=%llu N=%llu K=%llu, op(A)=%s "
                   "op(B)=%s, %d thread%s\n",
                   dname, dname, m, n, k, ta ? "A^T" : "A", tb ? "B^T" : "B", nt,
                   nt == 1 ? "" : "s");
            printf("  isa %s, kernel %s\n", isa, kernel);
            printf("  median %.4g ms  %.2f GFLOP/s   best %.4g ms  %.2f GFLOP/s   (%llu runs)\n",
                   med * 1e3, flop / med * 1e-9, best * 1e3, flop / best * 1e-9, repeat);
        }
    }
    free(times);
    mxp_free(A);
    mxp_free(B);
    mxp_free(C);
    mxp_gemm_release_workspace();
    return rc;
}
