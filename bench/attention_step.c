/*
 * attention_step.c - what one GPT block's attention and layernorm kernels cost: the median
 * milliseconds of mxp_attention_forward + mxp_attention_backward (probabilities saved, as in
 * training) and of mxp_layernorm_forward + mxp_layernorm_backward, per dtype and thread
 * count, with the attention's GFLOP/s counted on the causal-useful flops
 * (6 hd T (T + 1) per (b, h): two products forward, four backward, lower triangle only),
 * and the process CPU time of the attention (on a busy machine the one-thread CPU time is
 * the better measure of the kernels).
 *
 *   attention_step [B T C NH] [REPS]     default 8 256 384 6 (GPT reference shape), 20 reps
 * Data are fixed random values: the benchmark measures compute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixprec.h"

#include "bench_util.h"

/* CPU seconds of the whole process: on a shared machine a one-thread run's CPU time is
 * what the kernel costs, whatever else the cores are doing */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define TRY(e)                                                                                     \
    do {                                                                                           \
        if ((e) != MXP_OK) {                                                                       \
            fprintf(stderr, "attention_step: %s\n", mxp_last_error());                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* n values of dtype dt, uniform in [-1, 1) (fixed seed) */
static void *rnd(mxp_dtype dt, size_t n, unsigned *seed) {
    float *f = malloc(n * sizeof(float));
    void *p = malloc(n * mxp_dtype_size(dt));
    if (!f || !p) exit(1);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        f[i] = (float)(*seed >> 8) * 0x1p-23f - 1.0f;
    }
    TRY(mxp_convert(p, dt, f, MXP_DTYPE_F32, n));
    free(f);
    return p;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp);
    return t[n / 2];
}

int main(int argc, char **argv) {
    int64_t B = 8, T = 256, C = 384, NH = 6;
    int reps = 20;
    if (argc >= 5) {
        B = atoll(argv[1]), T = atoll(argv[2]), C = atoll(argv[3]), NH = atoll(argv[4]);
        if (argc >= 6) reps = atoi(argv[5]);
    } else if (argc >= 2) {
        reps = atoi(argv[1]);
    }
    if (B < 1 || T < 1 || C < 1 || NH < 1 || C % NH || reps < 1) {
        fprintf(stderr, "usage: attention_step [B T C NH] [REPS]\n");
        return 2;
    }
    const double useful = 6.0 * (double)(C / NH) * (double)T * (double)(T + 1) * (double)(B * NH);
    printf("attention and layernorm, B=%lld T=%lld C=%lld NH=%lld, median of %d (isa %s)\n",
           (long long)B, (long long)T, (long long)C, (long long)NH, reps,
           mxp_isa_name(mxp_isa_active()));
    const mxp_dtype dts[] = {MXP_DTYPE_F32, MXP_DTYPE_BF16, MXP_DTYPE_F16};
    double *ta = malloc((size_t)reps * sizeof(double)), *tf = malloc((size_t)reps * sizeof(double));
    double *tl = malloc((size_t)reps * sizeof(double)), *tc = malloc((size_t)reps * sizeof(double));
    for (int d = 0; d < 3; d++) {
        const mxp_dtype dt = dts[d];
        unsigned seed = 12345;
        const size_t rows = (size_t)(B * T);
        void *qkv = rnd(dt, rows * 3 * (size_t)C, &seed), *dout = rnd(dt, rows * (size_t)C, &seed);
        void *out = malloc(rows * (size_t)C * mxp_dtype_size(dt));
        void *dqkv = malloc(rows * 3 * (size_t)C * mxp_dtype_size(dt));
        void *att = malloc((size_t)(B * NH * T * T) * mxp_dtype_size(dt));
        void *w = rnd(dt, (size_t)C, &seed), *bias = rnd(dt, (size_t)C, &seed);
        void *y = malloc(rows * (size_t)C * mxp_dtype_size(dt));
        void *dx = malloc(rows * (size_t)C * mxp_dtype_size(dt));
        float *mean = malloc(rows * sizeof(float)), *rstd = malloc(rows * sizeof(float));
        float *dw = calloc((size_t)C, sizeof(float)), *db = calloc((size_t)C, sizeof(float));
        for (int nt = 1; nt <= 2; nt++) {
            TRY(mxp_set_num_threads(nt));
            for (int r = -3; r < reps; r++) {
                const double c0 = cpu_now(), t0 = now();
                TRY(mxp_attention_forward(out, att, qkv, dt, B, T, C, NH));
                const double t1 = now();
                TRY(mxp_attention_backward(dqkv, dout, qkv, att, dt, B, T, C, NH));
                const double t2 = now(), c2 = cpu_now();
                TRY(mxp_layernorm_forward(y, mean, rstd, qkv, w, bias, dt, rows, (size_t)C, 1e-5f));
                TRY(mxp_layernorm_backward(dx, dw, db, dout, qkv, mean, rstd, w, dt, rows,
                                           (size_t)C));
                const double t3 = now();
                if (r >= 0) ta[r] = t2 - t0, tf[r] = t1 - t0, tl[r] = t3 - t2, tc[r] = c2 - c0;
            }
            const double a = median(ta, reps), f = median(tf, reps), l = median(tl, reps);
            const double c = median(tc, reps);
            printf("%-4s %dt  attention fwd+bwd %7.2f ms (fwd %6.2f, bwd %6.2f, cpu %7.2f)  %6.1f "
                   "GFLOP/s   layernorm fwd+bwd %6.3f ms\n",
                   mxp_dtype_name(dt), nt, 1e3 * a, 1e3 * f, 1e3 * (a - f), 1e3 * c,
                   useful / a * 1e-9, 1e3 * l);
        }
        free(qkv), free(dout), free(out), free(dqkv), free(att), free(w), free(bias), free(y);
        free(dx), free(mean), free(rstd), free(dw), free(db);
    }
    free(ta), free(tf), free(tl), free(tc);
    return 0;
}
