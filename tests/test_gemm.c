/*
 * test_gemm.c - mxp_gemm against a double-precision reference with an
 * a-priori error bound, and every SIMD family against the scalar reference
 * kernel: all transposition cases, all input and output dtypes, odd sizes and
 * edge tiles, alpha/beta (beta = 0 over a NaN-filled C), bias, activations,
 * pre-activation output, K = 0, thread-count independence and bad arguments.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixprec.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* a buffer of n random values in dtype dt, and the same values widened to double */
typedef struct buf {
    void *p;
    double *d;
    mxp_dtype dt;
    size_t n;
} buf;

static buf buf_rand(mxp_dtype dt, size_t n) {
    buf b = {malloc(n * 4 + 4), malloc(n * sizeof(double) + 8), dt, n};
    float *tmp = calloc(n + 1, 4);
    for (size_t i = 0; i < n; i++) tmp[i] = frand();
    mxp_convert(b.p, dt, tmp, MXP_DTYPE_F32, n);
    mxp_convert(tmp, MXP_DTYPE_F32, b.p, dt, n);
    for (size_t i = 0; i < n; i++) b.d[i] = tmp[i];
    free(tmp);
    return b;
}

static void buf_free(buf *b) {
    free(b->p);
    free(b->d);
}

static double get(const void *p, mxp_dtype dt, size_t i) {
    switch (dt) {
    case MXP_DTYPE_BF16: return mxp_bf16_to_fp32(((const uint16_t *)p)[i]);
    case MXP_DTYPE_F16: return mxp_fp16_to_fp32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

static void set_nan(void *p, mxp_dtype dt, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (dt == MXP_DTYPE_F32)
            ((float *)p)[i] = NAN;
        else
            ((uint16_t *)p)[i] = dt == MXP_DTYPE_BF16 ? 0x7fc0 : 0x7e00;
    }
}

static double gelu(double x) {
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/* unit roundoff of a dtype */
static double unit(mxp_dtype dt) {
    return dt == MXP_DTYPE_F32 ? 0x1p-24 : dt == MXP_DTYPE_F16 ? 0x1p-11 : 0x1p-8;
}

typedef struct gcase {
    mxp_trans ta, tb;
    size_t M, N, K;
    mxp_dtype at, bt, ct;
    float alpha, beta;
    mxp_bias_mode bias;
    mxp_act act;
    int pre;
} gcase;

/* Run one case and compare every element with the double reference:
 * |got - ref| <= 2 K u32 sum|alpha a b| + |beta c| u32 + 2 u(C) |ref| + tiny,
 * where the K term bounds fp32 accumulation (products of fp32, bf16 or fp16
 * values are formed exactly or with one fp32 rounding), and u(C) covers the
 * one rounding to C's dtype (twice for the activation's own fp32 error).
 * Columns past N in each row (ldc > N) must keep their NaN sentinels.
 * With ref (the reference kernel's output for the same inputs), a SIMD
 * family's result must also lie within twice that bound of the reference's.
 * Returns the output (malloc'd, in ct). */
static void *run_case(const gcase *g, const char *tag, const void *ref) {
    const size_t lda = (g->ta ? g->M : g->K) + 3, ldb = (g->tb ? g->K : g->N) + 5;
    const size_t ldc = g->N + 2, ldp = g->N + 1;
    const size_t arows = g->ta ? g->K : g->M, brows = g->tb ? g->N : g->K;
    buf A = buf_rand(g->at, arows * lda + 1), B = buf_rand(g->bt, brows * ldb + 1);
    buf C0 = buf_rand(g->ct, g->M * ldc + 1);
    buf bias = buf_rand(MXP_DTYPE_BF16, (g->bias == MXP_BIAS_ROW ? g->M : g->N) + 1);
    const size_t cs = mxp_dtype_size(g->ct);
    void *C = malloc(g->M * ldc * cs + 4), *P = malloc(g->M * ldp * cs + 4);
    if (g->beta == 0.0f)
        set_nan(C, g->ct, g->M * ldc);
    else
        memcpy(C, C0.p, g->M * ldc * cs);
    for (size_t i = 0; i < g->M; i++) set_nan((char *)C + (i * ldc + g->N) * cs, g->ct, ldc - g->N);
    set_nan(P, g->ct, g->M * ldp);
    mxp_gemm_epilogue epi = {bias.p, MXP_DTYPE_BF16, g->bias, g->act, g->pre ? P : NULL, ldp};
    mxp_status st = mxp_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A.p, g->at, lda, B.p, g->bt,
                             ldb, g->beta, C, g->ct, ldc, &epi);
    CHECK(st == MXP_OK, "%s: status %d (%s)", tag, st, mxp_last_error());
    int bad = 0;
    for (size_t i = 0; i < g->M && st == MXP_OK; i++) {
        for (size_t j = 0; j < g->N; j++) {
            double s = 0, sa = 0;
            for (size_t k = 0; k < g->K; k++) {
                const double a = g->ta ? A.d[k * lda + i] : A.d[i * lda + k];
                const double b = g->tb ? B.d[j * ldb + k] : B.d[k * ldb + j];
                s += a * b;
                sa += fabs(a * b);
            }
            double z = g->alpha * s;
            double bound = 2.0 * (double)(g->K + 1) * 0x1p-24 * fabs(g->alpha) * sa;
            if (g->beta != 0.0f) {
                z += g->beta * C0.d[i * ldc + j];
                bound += 2 * 0x1p-24 * fabs(g->beta * C0.d[i * ldc + j]);
            }
            if (g->bias == MXP_BIAS_COL) z += bias.d[j];
            if (g->bias == MXP_BIAS_ROW) z += bias.d[i];
            const double pre = z;
            if (g->act == MXP_ACT_RELU) z = z > 0 ? z : 0;
            if (g->act == MXP_ACT_GELU_TANH) z = gelu(z);
            const double tol_c = bound * 1.5 + 2 * unit(g->ct) * fabs(z) + 4 * 0x1p-24 * (1 + fabs(z)) + 1e-30;
            const double got = get(C, g->ct, i * ldc + j);
            if (!(fabs(got - z) <= tol_c) && bad++ < 3)
                CHECK(0, "%s: C[%zu][%zu] = %.9g, want %.9g (tol %.3g)", tag, i, j, got, z, tol_c);
            if (ref) {
                const double r = get(ref, g->ct, i * ldc + j);
                if (!(fabs(got - r) <= 2 * tol_c) && bad++ < 3)
                    CHECK(0, "%s: C[%zu][%zu] = %.9g, reference kernel %.9g", tag, i, j, got, r);
            }
            if (g->pre) {
                const double gp = get(P, g->ct, i * ldp + j);
                const double tol_p = bound * 1.5 + 2 * unit(g->ct) * fabs(pre) + 1e-30;
                if (!(fabs(gp - pre) <= tol_p) && bad++ < 3)
                    CHECK(0, "%s: pre_act[%zu][%zu] = %.9g, want %.9g", tag, i, j, gp, pre);
            }
        }
        for (size_t j = g->N; j < ldc; j++)
            if (!isnan(get(C, g->ct, i * ldc + j)) && bad++ < 3)
                CHECK(0, "%s: C[%zu][%zu] past N was written", tag, i, j);
    }
    CHECK(bad == 0, "%s: %d elements out of bounds", tag, bad);
    buf_free(&A);
    buf_free(&B);
    buf_free(&C0);
    buf_free(&bias);
    free(P);
    return C;
}

static const char *tagf(const gcase *g, mxp_isa isa) {
    static char s[160];
    snprintf(s, sizeof s, "%s %c%c %zux%zux%zu %s*%s->%s a=%g b=%g bias=%d act=%d pre=%d",
             mxp_isa_name(isa), g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->M, g->N, g->K,
             mxp_dtype_name(g->at), mxp_dtype_name(g->bt), mxp_dtype_name(g->ct), g->alpha,
             g->beta, g->bias, g->act, g->pre);
    return s;
}

/* Each case on every supported ISA with the same inputs; the first (ref)
 * result is the yardstick for the SIMD families. */
static void run_all_isas(const gcase *g) {
    void *ref = NULL;
    const uint64_t saved = rng_state;
    for (int isa = 0; isa < MXP_ISA_COUNT; isa++) {
        if (mxp_isa_set((mxp_isa)isa) != MXP_OK) continue;
        rng_state = saved;
        void *c = run_case(g, tagf(g, (mxp_isa)isa), ref);
        if (!ref)
            ref = c;
        else
            free(c);
    }
    free(ref);
    mxp_isa_set(mxp_isa_detect());
}

static void test_shapes(void) {
    static const size_t sizes[] = {1, 7, 14, 15, 16, 17, 31, 32, 33, 100};
    static const mxp_dtype dts[] = {MXP_DTYPE_F32, MXP_DTYPE_BF16, MXP_DTYPE_F16};
    for (int d = 0; d < 3; d++)
        for (int t = 0; t < 4; t++)
            for (int a = 0; a < 10; a += 3)
                for (int b = 0; b < 10; b += 2)
                    for (int c = 0; c < 10; c += 4) {
                        gcase g = {t & 1, t >> 1, sizes[a], sizes[b], sizes[c], dts[d], dts[d],
                                   MXP_DTYPE_F32, 1.0f, 0.0f, MXP_BIAS_NONE, MXP_ACT_NONE, 0};
                        run_all_isas(&g);
                    }
}

static void test_mixed_and_epilogues(void) {
    static const mxp_dtype dts[] = {MXP_DTYPE_F32, MXP_DTYPE_BF16, MXP_DTYPE_F16};
    /* every input pair and output dtype, with alpha, beta, bias and an activation */
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++) {
                gcase g = {MXP_NO_TRANS, MXP_TRANS, 33, 47, 65, dts[a], dts[b], dts[c], 0.5f, 0.75f,
                           MXP_BIAS_COL, MXP_ACT_GELU_TANH, 1};
                run_all_isas(&g);
            }
    /* beta = 0 over NaN, row bias, relu, 16-bit C with K spanning several k blocks */
    gcase g1 = {MXP_TRANS, MXP_NO_TRANS, 29, 70, 1100, MXP_DTYPE_BF16, MXP_DTYPE_BF16,
                MXP_DTYPE_BF16, 1.0f, 0.0f, MXP_BIAS_ROW, MXP_ACT_RELU, 1};
    run_all_isas(&g1);
    gcase g2 = g1;
    g2.beta = -1.5f;
    g2.ct = MXP_DTYPE_F16;
    g2.at = g2.bt = MXP_DTYPE_F16;
    run_all_isas(&g2);
    gcase g3 = {MXP_NO_TRANS, MXP_NO_TRANS, 45, 33, 600, MXP_DTYPE_F32, MXP_DTYPE_F32,
                MXP_DTYPE_F32, 2.0f, 1.0f, MXP_BIAS_COL, MXP_ACT_NONE, 1};
    run_all_isas(&g3);
    /* K = 0: C = act(beta C + bias) */
    for (int c = 0; c < 3; c++) {
        gcase g = {MXP_NO_TRANS, MXP_NO_TRANS, 5, 9, 0, MXP_DTYPE_BF16, MXP_DTYPE_BF16, dts[c],
                   1.0f, 0.5f, MXP_BIAS_COL, MXP_ACT_RELU, 1};
        run_all_isas(&g);
        g.beta = 0.0f;
        run_all_isas(&g);
    }
}

/* Large enough for the threaded path and several cache blocks; odd edges. */
static void test_large(void) {
    gcase g = {MXP_NO_TRANS, MXP_NO_TRANS, 1023, 130, 77, MXP_DTYPE_BF16, MXP_DTYPE_BF16,
               MXP_DTYPE_F32, 1.0f, 0.0f, MXP_BIAS_NONE, MXP_ACT_NONE, 0};
    run_all_isas(&g);
    gcase h = {MXP_TRANS, MXP_TRANS, 77, 1023, 530, MXP_DTYPE_F32, MXP_DTYPE_F32, MXP_DTYPE_BF16,
               1.0f, 0.0f, MXP_BIAS_COL, MXP_ACT_NONE, 0};
    run_all_isas(&h);
    gcase i = {MXP_NO_TRANS, MXP_TRANS, 300, 1100, 1031, MXP_DTYPE_BF16, MXP_DTYPE_BF16,
               MXP_DTYPE_F32, 1.0f, 0.0f, MXP_BIAS_NONE, MXP_ACT_NONE, 0};
    run_all_isas(&i);
}

/* The same call on 1 and 2 threads gives the same bits: threads split rows
 * or columns, never the sum over k. */
static void test_threads_bitwise(void) {
    if (!mxp_have_openmp()) return;
    const size_t M = 257, N = 391, K = 700;
    buf A = buf_rand(MXP_DTYPE_BF16, M * K), B = buf_rand(MXP_DTYPE_BF16, K * N);
    float *c1 = malloc(M * N * 4), *c2 = malloc(M * N * 4);
    int saved = mxp_num_threads();
    for (int isa = 0; isa < MXP_ISA_COUNT; isa++) {
        if (mxp_isa_set((mxp_isa)isa) != MXP_OK) continue;
        mxp_set_num_threads(1);
        mxp_gemm(MXP_NO_TRANS, MXP_NO_TRANS, M, N, K, 1, A.p, MXP_DTYPE_BF16, K, B.p,
                 MXP_DTYPE_BF16, N, 0, c1, MXP_DTYPE_F32, N, NULL);
        mxp_set_num_threads(2);
        mxp_gemm(MXP_NO_TRANS, MXP_NO_TRANS, M, N, K, 1, A.p, MXP_DTYPE_BF16, K, B.p,
                 MXP_DTYPE_BF16, N, 0, c2, MXP_DTYPE_F32, N, NULL);
        CHECK(memcmp(c1, c2, M * N * 4) == 0, "%s: 1 and 2 threads differ", mxp_isa_name(isa));
        /* tall-thin: the rows are split instead of the columns */
        mxp_set_num_threads(1);
        mxp_gemm(MXP_NO_TRANS, MXP_TRANS, M, 20, K, 1, A.p, MXP_DTYPE_BF16, K, B.p,
                 MXP_DTYPE_BF16, K, 0, c1, MXP_DTYPE_F32, 20, NULL);
        mxp_set_num_threads(2);
        mxp_gemm(MXP_NO_TRANS, MXP_TRANS, M, 20, K, 1, A.p, MXP_DTYPE_BF16, K, B.p,
                 MXP_DTYPE_BF16, K, 0, c2, MXP_DTYPE_F32, 20, NULL);
        CHECK(memcmp(c1, c2, M * 20 * 4) == 0, "%s: row split differs", mxp_isa_name(isa));
    }
    mxp_set_num_threads(saved);
    mxp_isa_set(mxp_isa_detect());
    buf_free(&A);
    buf_free(&B);
    free(c1);
    free(c2);
}

static void test_errors(void) {
    float a[4] = {0}, b[4] = {0}, c[4] = {0};
    CHECK(mxp_gemm(2, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, NULL) == MXP_ERR_INVALID_ARG, "bad trans");
    CHECK(strlen(mxp_last_error()) > 0, "message");
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, (mxp_dtype)9, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, NULL) == MXP_ERR_DTYPE, "bad dtype");
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 1, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, NULL) == MXP_ERR_INVALID_ARG, "lda too small");
    CHECK(mxp_gemm(0, 1, 2, 2, 3, 1, a, MXP_DTYPE_F32, 3, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, NULL) == MXP_ERR_INVALID_ARG, "ldb too small for B^T");
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   1, NULL) == MXP_ERR_INVALID_ARG, "ldc too small");
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, NULL, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c,
                   MXP_DTYPE_F32, 2, NULL) == MXP_ERR_INVALID_ARG, "NULL A");
    mxp_gemm_epilogue e = {NULL, MXP_DTYPE_F32, MXP_BIAS_COL, MXP_ACT_NONE, NULL, 0};
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, &e) == MXP_ERR_INVALID_ARG, "bias mode without bias");
    e.bias_mode = MXP_BIAS_NONE;
    e.act = (mxp_act)7;
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, &e) == MXP_ERR_INVALID_ARG, "bad act");
    /* empty problems are fine and touch nothing */
    CHECK(mxp_gemm(0, 0, 0, 2, 2, 1, NULL, MXP_DTYPE_F32, 2, NULL, MXP_DTYPE_F32, 2, 0, NULL,
                   MXP_DTYPE_F32, 2, NULL) == MXP_OK, "M = 0");
    CHECK(strstr(mxp_gemm_kernel_name(MXP_DTYPE_BF16, MXP_DTYPE_BF16), "gemm_") != NULL, "name");
}

/* A failing allocator makes mxp_gemm return MXP_ERR_NOMEM cleanly. */
static int fail_alloc;
static void *count_alloc(size_t size, size_t align, void *u) {
    (void)u;
    if (fail_alloc) return NULL;
    return aligned_alloc(align, (size + align - 1) / align * align);
}
static void count_free(void *p, void *u) {
    (void)u;
    free(p);
}

static void test_nomem(void) {
    mxp_gemm_release_workspace();
    mxp_allocator al = {count_alloc, count_free, NULL};
    mxp_set_allocator(&al);
    fail_alloc = 1;
    float a[64] = {0}, b[64] = {0}, c[64];
    CHECK(mxp_gemm(0, 0, 8, 8, 8, 1, a, MXP_DTYPE_F32, 8, b, MXP_DTYPE_F32, 8, 0, c, MXP_DTYPE_F32,
                   8, NULL) == MXP_ERR_NOMEM, "allocation failure is reported");
    fail_alloc = 0;
    CHECK(mxp_gemm(0, 0, 8, 8, 8, 1, a, MXP_DTYPE_F32, 8, b, MXP_DTYPE_F32, 8, 0, c, MXP_DTYPE_F32,
                   8, NULL) == MXP_OK, "and then it works");
    mxp_gemm_release_workspace();
    mxp_set_allocator(NULL);
}

int main(void) {
    test_errors();
    test_nomem();
    test_shapes();
    test_mixed_and_epilogues();
    test_large();
    test_threads_bitwise();
    mxp_gemm_release_workspace();
    return check_exit("test_gemm");
}
