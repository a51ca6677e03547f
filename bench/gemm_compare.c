/*
 * gemm_compare.c - one GEMM timing, the same way for every implementation:
 * mixprec's mxp_gemm, oneDNN's matmul (plain row-major weights, and weights
 * pre-reordered to oneDNN's preferred blocked layout outside the timing) and
 * OpenBLAS's cblas_sgemm. One implementation per process, so no two thread
 * pools ever spin at once; bench/run.sh alternates processes and takes medians.
 * It is a benchmark, not a test: it asserts nothing about speed.
 *
 *   gemm_compare IMPL DTYPE M N K THREADS [REPS] [TA TB]
 *     IMPL  mixprec | onednn | onednn-blocked | openblas
 *     DTYPE f32 | bf16 | f16 (inputs; C is fp32; openblas: f32 only)
 * Prints one JSON line: median and best GFLOP/s over REPS timed calls after
 * one warm-up call, C = A B with alpha 1, beta 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mixprec.h>
#include "bench_util.h"

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#endif
#ifdef HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

static void die(const char *what) {
    fprintf(stderr, "gemm_compare: %s\n", what);
    exit(2);
}

typedef struct job {
    size_t M, N, K;
    int ta, tb;
    mxp_dtype dt;
    void *A, *B;
    float *C;
} job;

static void run_mixprec(void *ctx) {
    job *j = ctx;
    mxp_status st = mxp_gemm(j->ta ? MXP_TRANS : MXP_NO_TRANS, j->tb ? MXP_TRANS : MXP_NO_TRANS,
                             j->M, j->N, j->K, 1.0f, j->A, j->dt, j->ta ? j->M : j->K, j->B, j->dt,
                             j->tb ? j->K : j->N, 0.0f, j->C, MXP_DTYPE_F32, j->N, NULL);
    if (st != MXP_OK) die(mxp_last_error());
}

#ifdef HAVE_OPENBLAS
static void run_openblas(void *ctx) {
    job *j = ctx;
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                (int)j->M, (int)j->N, (int)j->K, 1.0f, j->A, (int)(j->ta ? j->M : j->K), j->B,
                (int)(j->tb ? j->K : j->N), 0.0f, j->C, (int)j->N);
}
#endif

#ifdef HAVE_ONEDNN
typedef struct dnn {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[3];
} dnn;

#define DNN_OK(x)                                                                                  \
    do {                                                                                           \
        if ((x) != dnnl_success) die("oneDNN call failed: " #x);                                   \
    } while (0)

static void dnn_setup(dnn *d, job *j, int blocked) {
    dnnl_data_type_t t = j->dt == MXP_DTYPE_BF16  ? dnnl_bf16
                         : j->dt == MXP_DTYPE_F16 ? dnnl_f16
                                                  : dnnl_f32;
    dnnl_dims_t ad = {(dnnl_dim_t)j->M, (dnnl_dim_t)j->K},
                bd = {(dnnl_dim_t)j->K, (dnnl_dim_t)j->N},
                cd = {(dnnl_dim_t)j->M, (dnnl_dim_t)j->N};
    dnnl_memory_desc_t a_md, b_md, b_plain, c_md;
    DNN_OK(dnnl_engine_create(&d->eng, dnnl_cpu, 0));
    DNN_OK(dnnl_stream_create(&d->strm, d->eng, dnnl_stream_default_flags));
    DNN_OK(dnnl_memory_desc_init_by_tag(&a_md, 2, ad, t, j->ta ? dnnl_ba : dnnl_ab));
    DNN_OK(dnnl_memory_desc_init_by_tag(&b_plain, 2, bd, t, j->tb ? dnnl_ba : dnnl_ab));
    if (blocked)
        DNN_OK(dnnl_memory_desc_init_by_tag(&b_md, 2, bd, t, dnnl_format_tag_any));
    else
        b_md = b_plain;
    DNN_OK(dnnl_memory_desc_init_by_tag(&c_md, 2, cd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    DNN_OK(dnnl_matmul_desc_init(&md, &a_md, &b_md, NULL, &c_md));
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &md, NULL, d->eng, NULL) != dnnl_success)
        die("oneDNN has no matmul for this dtype on this CPU");
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    fprintf(stderr, "onednn impl: %s\n", impl ? impl : "?");
    DNN_OK(dnnl_primitive_create(&d->prim, pd));
    dnnl_memory_t am, bm, cm;
    DNN_OK(dnnl_memory_create(&am, &a_md, d->eng, j->A));
    DNN_OK(dnnl_memory_create(&cm, &c_md, d->eng, j->C));
    if (blocked) {
        /* weights reordered once, outside the timing, as an inference or
         * training framework that caches them would */
        const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        dnnl_memory_t src;
        DNN_OK(dnnl_memory_create(&src, &b_plain, d->eng, j->B));
        DNN_OK(dnnl_memory_create(&bm, want, d->eng, DNNL_MEMORY_ALLOCATE));
        dnnl_primitive_desc_t rpd;
        DNN_OK(dnnl_reorder_primitive_desc_create(&rpd, &b_plain, d->eng, want, d->eng, NULL));
        dnnl_primitive_t r;
        DNN_OK(dnnl_primitive_create(&r, rpd));
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, bm}};
        DNN_OK(dnnl_primitive_execute(r, d->strm, 2, ra));
        DNN_OK(dnnl_stream_wait(d->strm));
    } else {
        DNN_OK(dnnl_memory_create(&bm, &b_md, d->eng, j->B));
    }
    d->args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, am};
    d->args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, bm};
    d->args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, cm};
}

static void run_onednn(void *ctx) {
    dnn *d = ctx;
    DNN_OK(dnnl_primitive_execute(d->prim, d->strm, 3, d->args));
    DNN_OK(dnnl_stream_wait(d->strm));
}
#endif

static size_t parse_size(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v == 0 || v > (1ull << 20)) die("sizes must be integers in 1..1048576");
    return (size_t)v;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: gemm_compare mixprec|onednn|onednn-blocked|openblas f32|bf16|f16 M "
                        "N K THREADS [REPS] [TA TB]\n");
        return 2;
    }
    const char *impl = argv[1];
    job j = {0};
    if (mxp_dtype_parse(argv[2], &j.dt) != MXP_OK) die("dtype must be f32, bf16 or f16");
    j.M = parse_size(argv[3]);
    j.N = parse_size(argv[4]);
    j.K = parse_size(argv[5]);
    const int threads = (int)parse_size(argv[6]);
    const int reps = argc > 7 ? (int)parse_size(argv[7]) : 10;
    j.ta = argc > 8 && atoi(argv[8]);
    j.tb = argc > 9 && atoi(argv[9]);

    const size_t es = mxp_dtype_size(j.dt);
    j.A = malloc(j.M * j.K * es);
    j.B = malloc(j.K * j.N * es);
    j.C = malloc(j.M * j.N * sizeof(float));
    float *tmp = malloc((j.M * j.K > j.K * j.N ? j.M * j.K : j.K * j.N) * sizeof(float));
    if (!j.A || !j.B || !j.C || !tmp) die("out of memory");
    uint32_t s = 12345;
    for (size_t i = 0; i < j.M * j.K || i < j.K * j.N; i++) {
        s = s * 1664525u + 1013904223u;
        tmp[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    mxp_convert(j.A, j.dt, tmp, MXP_DTYPE_F32, j.M * j.K);
    mxp_convert(j.B, j.dt, tmp, MXP_DTYPE_F32, j.K * j.N);
    memset(j.C, 0, j.M * j.N * sizeof(float));
    free(tmp);

    void (*fn)(void *) = NULL;
    void *ctx = &j;
    char kernel[128] = "";
    if (strcmp(impl, "mixprec") == 0) {
        if (mxp_set_num_threads(threads) != MXP_OK) die("bad thread count");
        fn = run_mixprec;
        snprintf(kernel, sizeof kernel, "%s", mxp_gemm_kernel_name(j.dt, j.dt));
    }
#ifdef HAVE_OPENBLAS
    else if (strcmp(impl, "openblas") == 0) {
        if (j.dt != MXP_DTYPE_F32) die("openblas: only f32 (Debian's OpenBLAS exports no sbgemm)");
        openblas_set_num_threads(threads);
        fn = run_openblas;
        snprintf(kernel, sizeof kernel, "%s", openblas_get_config());
    }
#endif
#ifdef HAVE_ONEDNN
    else if (strcmp(impl, "onednn") == 0 || strcmp(impl, "onednn-blocked") == 0) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        static dnn d;
        dnn_setup(&d, &j, strcmp(impl, "onednn-blocked") == 0);
        fn = run_onednn;
        ctx = &d;
        snprintf(kernel, sizeof kernel, "oneDNN %s", dnnl_version()->hash);
    }
#endif
    if (!fn) die("unknown or unavailable implementation");

    fn(ctx); /* warm-up: page faults, packing buffers, JIT */
    double *t = malloc((size_t)reps * sizeof(double));
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        fn(ctx);
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp);
    const double flop = 2.0 * (double)j.M * (double)j.N * (double)j.K;
    const double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    printf("{\"bench\":\"gemm\",\"impl\":\"%s\",\"dtype\":\"%s\",\"m\":%zu,\"n\":%zu,\"k\":%zu,"
           "\"ta\":%d,\"tb\":%d,\"threads\":%d,\"reps\":%d,\"ms_median\":%.4f,\"gflops\":%.2f,"
           "\"gflops_best\":%.2f,\"kernel\":\"%s\"}\n",
           impl, mxp_dtype_name(j.dt), j.M, j.N, j.K, j.ta, j.tb, threads, reps, med * 1e3,
           flop / med * 1e-9, flop / t[0] * 1e-9, kernel);
    free(t);
    return 0;
}
