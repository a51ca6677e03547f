/*
 * test_gemm.c - mxp_gemm against a double-precision reference with an
 * a-priori error bound, and every SIMD family against the scalar reference
 * kernel: all transposition cases, all input and output dtypes, odd sizes and
 * edge tiles, alpha/beta (beta = 0 over a NaN-filled C), bias in each dtype,
 * activations, pre-activation output, K = 0, thread grids and short OpenMP
 * teams (bit-identical to one thread), 16-bit C over several row blocks and
 * its workspace size, the cached workspace and the allocator hook, bad arguments.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mixprec.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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
    mxp_dtype bias_dt;
    size_t row_step; /* 0: check every row; else rows i % row_step == 0 and 32 at each end */
} gcase;

/* A plain case: alpha 1, beta 0, no bias or activation, no pre_act, every
 * row checked; callers set the rest. */
static gcase gc(mxp_trans ta, mxp_trans tb, size_t M, size_t N, size_t K, mxp_dtype at,
                mxp_dtype bt, mxp_dtype ct) {
    gcase g = {
        ta, tb, M, N, K, at, bt, ct, 1.0f, 0.0f, MXP_BIAS_NONE, MXP_ACT_NONE, 0, MXP_DTYPE_F32, 0};
    return g;
}

static int row_checked(const gcase *g, size_t i) {
    return !g->row_step || i % g->row_step == 0 || i < 32 || i + 32 >= g->M;
}

/* Run one case and compare every element with the double reference:
 * |got - ref| <= 2 K u32 sum|alpha a b| + |beta c| u32 + 2 u(C) |ref| + tiny,
 * where the K term bounds fp32 accumulation (products of fp32, bf16 or fp16
 * values are formed exactly or with one fp32 rounding), and u(C) covers the
 * one rounding to C's dtype (twice for the activation's own fp32 error).
 * Columns past N in each row (ldc > N, ld_pre > N) of C and pre_act must keep
 * their NaN sentinels.
 * With ref (the reference kernel's output for the same inputs), a SIMD
 * family's result must also lie within twice that bound of the reference's.
 * Returns the output (malloc'd, in ct). */
static void *run_case(const gcase *g, const char *tag, const void *ref) {
    const size_t lda = (g->ta ? g->M : g->K) + 3, ldb = (g->tb ? g->K : g->N) + 5;
    const size_t ldc = g->N + 2, ldp = g->N + 1;
    const size_t arows = g->ta ? g->K : g->M, brows = g->tb ? g->N : g->K;
    buf A = buf_rand(g->at, arows * lda + 1), B = buf_rand(g->bt, brows * ldb + 1);
    buf C0 = buf_rand(g->ct, g->beta != 0.0f ? g->M * ldc + 1 : 1);
    buf bias = buf_rand(g->bias_dt, (g->bias == MXP_BIAS_ROW ? g->M : g->N) + 1);
    const size_t cs = mxp_dtype_size(g->ct);
    void *C = malloc(g->M * ldc * cs + 4), *P = g->pre ? malloc(g->M * ldp * cs + 4) : NULL;
    if (g->beta == 0.0f)
        set_nan(C, g->ct, g->M * ldc);
    else
        memcpy(C, C0.p, g->M * ldc * cs);
    for (size_t i = 0; i < g->M; i++) set_nan((char *)C + (i * ldc + g->N) * cs, g->ct, ldc - g->N);
    if (P) set_nan(P, g->ct, g->M * ldp);
    mxp_gemm_epilogue epi = {bias.p, g->bias_dt, g->bias, g->act, g->pre ? P : NULL, ldp};
    mxp_status st = mxp_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A.p, g->at, lda, B.p, g->bt,
                             ldb, g->beta, C, g->ct, ldc, &epi);
    CHECK(st == MXP_OK, "%s: status %d (%s)", tag, st, mxp_last_error());
    int bad = 0;
    for (size_t i = 0; i < g->M && st == MXP_OK; i++) {
        if (!row_checked(g, i)) continue;
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
            const double tol_c =
                bound * 1.5 + 2 * unit(g->ct) * fabs(z) + 4 * 0x1p-24 * (1 + fabs(z)) + 1e-30;
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
        if (g->pre && !isnan(get(P, g->ct, i * ldp + g->N)) && bad++ < 3)
            CHECK(0, "%s: pre_act[%zu][%zu] past N was written", tag, i, g->N);
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
    static char s[200];
    snprintf(s, sizeof s, "%s %c%c %zux%zux%zu %s*%s->%s a=%g b=%g bias=%d/%s act=%d pre=%d",
             mxp_isa_name(isa), g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->M, g->N, g->K,
             mxp_dtype_name(g->at), mxp_dtype_name(g->bt), mxp_dtype_name(g->ct), g->alpha, g->beta,
             g->bias, mxp_dtype_name(g->bias_dt), g->act, g->pre);
    return s;
}

/* Each case on every supported ISA from `first` on with the same inputs; the
 * reference kernel's result (first == MXP_ISA_REF) is the yardstick for the
 * SIMD families. */
static void run_isas(const gcase *g, mxp_isa first) {
    void *ref = NULL;
    const uint64_t saved = rng_state;
    for (int isa = (int)first; isa < MXP_ISA_COUNT; isa++) {
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

static void run_all_isas(const gcase *g) { run_isas(g, MXP_ISA_REF); }

/* Sizes around every register block (MR 4/6/14, NR 16/32) and 1, 7, 100, in each of M, N and
 * K for every dtype and transposition. The full 10^3 product x 12 x 4 ISAs is too slow, so
 * each case runs an orthogonal array: (s[i], s[j], s[(i + j + q) % 10]) over all i, j gives
 * every pair of sizes in every pair of dimensions once; q shifts it per case so the 12 cases
 * see different triples. Plus the diagonal M = N = K, which the array holds only once. */
static void test_shapes(void) {
    static const size_t sizes[] = {1, 7, 14, 15, 16, 17, 31, 32, 33, 100};
    static const mxp_dtype dts[] = {MXP_DTYPE_F32, MXP_DTYPE_BF16, MXP_DTYPE_F16};
    for (int d = 0; d < 3; d++)
        for (int t = 0; t < 4; t++) {
            const int q = d * 4 + t;
            for (int i = 0; i < 10; i++)
                for (int j = 0; j <= 10; j++) {
                    const int k = j < 10 ? (i + j + q) % 10 : i; /* j == 10: the diagonal */
                    gcase g = gc(t & 1, t >> 1, sizes[i], sizes[j < 10 ? j : i], sizes[k], dts[d],
                                 dts[d], MXP_DTYPE_F32);
                    run_all_isas(&g);
                }
        }
}

static void test_mixed_and_epilogues(void) {
    static const mxp_dtype dts[] = {MXP_DTYPE_F32, MXP_DTYPE_BF16, MXP_DTYPE_F16};
    /* every input pair and output dtype, with alpha, beta, bias (each bias dtype 9 times)
     * and an activation */
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++) {
                gcase g = gc(MXP_NO_TRANS, MXP_TRANS, 33, 47, 65, dts[a], dts[b], dts[c]);
                g.alpha = 0.5f;
                g.beta = 0.75f;
                g.bias = MXP_BIAS_COL;
                g.act = MXP_ACT_GELU_TANH;
                g.pre = 1;
                g.bias_dt = dts[(a + b + c) % 3];
                run_all_isas(&g);
            }
    /* beta = 0 over NaN, row bias, relu, 16-bit C with K spanning several k blocks */
    gcase g1 =
        gc(MXP_TRANS, MXP_NO_TRANS, 29, 70, 1100, MXP_DTYPE_BF16, MXP_DTYPE_BF16, MXP_DTYPE_BF16);
    g1.bias = MXP_BIAS_ROW;
    g1.act = MXP_ACT_RELU;
    g1.pre = 1;
    g1.bias_dt = MXP_DTYPE_BF16;
    run_all_isas(&g1);
    gcase g2 = g1;
    g2.beta = -1.5f;
    g2.ct = MXP_DTYPE_F16;
    g2.at = g2.bt = MXP_DTYPE_F16;
    g2.bias_dt = MXP_DTYPE_F16;
    run_all_isas(&g2);
    /* fp16 C, beta = 0 over a NaN-filled C with K > 0 (one k block and several), f32 bias */
    gcase g4 =
        gc(MXP_NO_TRANS, MXP_NO_TRANS, 37, 45, 65, MXP_DTYPE_F32, MXP_DTYPE_F16, MXP_DTYPE_F16);
    run_all_isas(&g4);
    g4.K = 700;
    g4.bias = MXP_BIAS_COL;
    g4.act = MXP_ACT_GELU_TANH;
    g4.pre = 1;
    run_all_isas(&g4);
    gcase g3 =
        gc(MXP_NO_TRANS, MXP_NO_TRANS, 45, 33, 600, MXP_DTYPE_F32, MXP_DTYPE_F32, MXP_DTYPE_F32);
    g3.alpha = 2.0f;
    g3.beta = 1.0f;
    g3.bias = MXP_BIAS_COL;
    g3.pre = 1;
    g3.bias_dt = MXP_DTYPE_F16;
    run_all_isas(&g3);
    /* K = 0: C = act(beta C + bias) */
    for (int c = 0; c < 3; c++) {
        gcase g = gc(MXP_NO_TRANS, MXP_NO_TRANS, 5, 9, 0, MXP_DTYPE_BF16, MXP_DTYPE_BF16, dts[c]);
        g.beta = 0.5f;
        g.bias = MXP_BIAS_COL;
        g.act = MXP_ACT_RELU;
        g.pre = 1;
        g.bias_dt = dts[(c + 1) % 3];
        run_all_isas(&g);
        g.beta = 0.0f;
        run_all_isas(&g);
    }
}

/* Large enough for the threaded path and several cache blocks; odd edges. */
static void test_large(void) {
    gcase g = gc(MXP_NO_TRANS, MXP_NO_TRANS, 1023, 130, 77, MXP_DTYPE_BF16, MXP_DTYPE_BF16,
                 MXP_DTYPE_F32);
    run_all_isas(&g);
    gcase h = gc(MXP_TRANS, MXP_TRANS, 77, 1023, 530, MXP_DTYPE_F32, MXP_DTYPE_F32, MXP_DTYPE_BF16);
    h.bias = MXP_BIAS_COL;
    h.bias_dt = MXP_DTYPE_BF16;
    run_all_isas(&h);
    gcase i =
        gc(MXP_NO_TRANS, MXP_TRANS, 300, 1100, 1031, MXP_DTYPE_BF16, MXP_DTYPE_BF16, MXP_DTYPE_F32);
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
        mxp_gemm(MXP_NO_TRANS, MXP_TRANS, M, 20, K, 1, A.p, MXP_DTYPE_BF16, K, B.p, MXP_DTYPE_BF16,
                 K, 0, c1, MXP_DTYPE_F32, 20, NULL);
        mxp_set_num_threads(2);
        mxp_gemm(MXP_NO_TRANS, MXP_TRANS, M, 20, K, 1, A.p, MXP_DTYPE_BF16, K, B.p, MXP_DTYPE_BF16,
                 K, 0, c2, MXP_DTYPE_F32, 20, NULL);
        CHECK(memcmp(c1, c2, M * 20 * 4) == 0, "%s: row split differs", mxp_isa_name(isa));
    }
    mxp_set_num_threads(saved);
    mxp_isa_set(mxp_isa_detect());
    buf_free(&A);
    buf_free(&B);
    free(c1);
    free(c2);
}

/* The register block NR (columns) of the kernel the active ISA uses for these inputs, from
 * its report name ("gemm_f32_avx512 14x32 ..."); 0 if the name does not say. */
static int active_nr(mxp_dtype at, mxp_dtype bt) {
    int mr = 0, nr = 0;
    const char *s = strchr(mxp_gemm_kernel_name(at, bt), ' ');
    if (!s || sscanf(s, " %dx%d", &mr, &nr) != 2) return 0;
    return nr;
}

/* Fixed inputs for g, with lda, ldb, ldc and ld_pre equal to the rows (the thread tests
 * compare outputs bit for bit, not with the reference). */
typedef struct gdata {
    buf A, B, C0, bias;
} gdata;

static gdata gdata_make(const gcase *g) {
    gdata d = {buf_rand(g->at, g->M * g->K), buf_rand(g->bt, g->K * g->N),
               buf_rand(g->ct, g->M * g->N), buf_rand(g->bias_dt, g->M + g->N)};
    return d;
}

static void gdata_free(gdata *d) {
    buf_free(&d->A);
    buf_free(&d->B);
    buf_free(&d->C0);
    buf_free(&d->bias);
}

/* C (M, N) = the case on d, C starting as C0; P (M, N) the pre-activation if g->pre */
static mxp_status call_case(const gcase *g, const gdata *d, void *C, void *P) {
    memcpy(C, d->C0.p, g->M * g->N * mxp_dtype_size(g->ct));
    const mxp_gemm_epilogue epi = {d->bias.p, g->bias_dt, g->bias, g->act, g->pre ? P : NULL, g->N};
    return mxp_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, d->A.p, g->at, g->ta ? g->M : g->K,
                    d->B.p, g->bt, g->tb ? g->K : g->N, g->beta, C, g->ct, g->N, &epi);
}

/* The thread grid (gemm.c): tn threads split the columns when each gets >= 2 NR panels, tm =
 * nt / tn split the rows. With N in [4 NR, 8 NR), 4 threads make a 2 x 2 grid; 3 threads
 * split rows (N < 6 NR) or columns (N >= 6 NR). Each grid must give the bits of 1 thread,
 * for an fp32 C (K in one k block) and a 16-bit C with beta, bias, GELU and pre_act over
 * several k blocks; and the 2 x 2 grid must match the double reference. */
static void test_thread_grid(void) {
    if (!mxp_have_openmp()) return;
    const int saved = mxp_num_threads();
    const gcase cfg[2] = {
        {MXP_NO_TRANS, MXP_NO_TRANS, 300, 0, 100, MXP_DTYPE_BF16, MXP_DTYPE_BF16, MXP_DTYPE_F32,
         1.0f, 0.0f, MXP_BIAS_NONE, MXP_ACT_NONE, 0, MXP_DTYPE_F32, 0},
        {MXP_TRANS, MXP_NO_TRANS, 300, 0, 530, MXP_DTYPE_F16, MXP_DTYPE_F32, MXP_DTYPE_BF16, 0.5f,
         0.25f, MXP_BIAS_COL, MXP_ACT_GELU_TANH, 1, MXP_DTYPE_F16, 0}};
    for (int isa = 0; isa < MXP_ISA_COUNT; isa++) {
        if (mxp_isa_set((mxp_isa)isa) != MXP_OK) continue;
        for (int c = 0; c < 2; c++) {
            const size_t NR = (size_t)active_nr(cfg[c].at, cfg[c].bt);
            CHECK(NR > 0, "no NR in '%s'", mxp_gemm_kernel_name(cfg[c].at, cfg[c].bt));
            const size_t Ns[2] = {6 * NR - 3, 7 * NR + 5};
            for (int n = 0; n < 2 && NR; n++) {
                gcase g = cfg[c];
                g.N = Ns[n];
                gdata d = gdata_make(&g);
                const size_t bytes = g.M * g.N * mxp_dtype_size(g.ct);
                void *c1 = malloc(bytes), *p1 = malloc(bytes), *ct = malloc(bytes),
                     *pt = malloc(bytes);
                mxp_set_num_threads(1);
                CHECK(call_case(&g, &d, c1, p1) == MXP_OK, "1 thread");
                for (int nt = 2; nt <= 4; nt++) {
                    mxp_set_num_threads(nt);
                    CHECK(call_case(&g, &d, ct, pt) == MXP_OK, "%d threads", nt);
                    CHECK(memcmp(c1, ct, bytes) == 0, "%s: %d threads give other bits than 1",
                          tagf(&g, (mxp_isa)isa), nt);
                    CHECK(!g.pre || memcmp(p1, pt, bytes) == 0,
                          "%s: pre_act on %d threads differs from 1", tagf(&g, (mxp_isa)isa), nt);
                }
                free(c1);
                free(p1);
                free(ct);
                free(pt);
                gdata_free(&d);
            }
        }
    }
    mxp_isa_set(mxp_isa_detect());
    /* against the reference on 4 threads: N = 100 is 2 x 2 for NR 16, N = 200 for NR 32 */
    mxp_set_num_threads(4);
    for (int n = 0; n < 2; n++) {
        gcase g = cfg[1];
        g.N = n ? 200 : 100;
        run_all_isas(&g);
    }
    mxp_set_num_threads(saved);
}

#ifdef _OPENMP
/* A GEMM that never returns is reported as a failure here, not as a ctest timeout. */
static const char *volatile hang_where = "";
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_gemm: FAILED: mxp_gemm called from an OpenMP team hung: ";
    if (write(2, msg, sizeof msg - 1) >= 0 && write(2, hang_where, strlen(hang_where)) >= 0)
        (void)!write(2, "\n", 1);
    _exit(1);
}

/* Calls from inside the caller's own OpenMP team of 2 (nesting off, so a region the library
 * opens gets 1 thread): GEMMs big enough to ask for 4 threads (granted 1) and GEMMs below the
 * parallel threshold (run on the calling thread). Each must give the bits of the same call
 * made outside on 1 thread, whether both of the team's threads run the same GEMM, GEMMs with
 * different numbers of k blocks, or only one of them calls: the library must never
 * synchronise with its caller's team. */
static void test_short_team(void) {
    const int saved = mxp_num_threads(), saved_levels = omp_get_max_active_levels();
    enum { NC = 4, NS = 6 };
    const gcase g[NC] = {
        /* 6 MFLOP, 1 k block: asks for 4 threads */
        {MXP_NO_TRANS, MXP_NO_TRANS, 300, 100, 100, MXP_DTYPE_BF16, MXP_DTYPE_BF16, MXP_DTYPE_F32,
         1.0f, 0.0f, MXP_BIAS_NONE, MXP_ACT_NONE, 0, MXP_DTYPE_F32, 0},
        /* 72 MFLOP, 2 or 3 k blocks, 16-bit C with the whole epilogue */
        {MXP_NO_TRANS, MXP_TRANS, 300, 200, 600, MXP_DTYPE_F32, MXP_DTYPE_F32, MXP_DTYPE_BF16, 1.0f,
         0.5f, MXP_BIAS_COL, MXP_ACT_RELU, 1, MXP_DTYPE_F32, 0},
        /* below 4 MFLOP: one thread whatever mxp_num_threads says */
        {MXP_NO_TRANS, MXP_NO_TRANS, 20, 30, 40, MXP_DTYPE_F32, MXP_DTYPE_F32, MXP_DTYPE_F32, 1.0f,
         0.0f, MXP_BIAS_NONE, MXP_ACT_NONE, 0, MXP_DTYPE_F32, 0},
        {MXP_TRANS, MXP_NO_TRANS, 8, 20, 1100, MXP_DTYPE_BF16, MXP_DTYPE_BF16, MXP_DTYPE_F16, 1.0f,
         0.0f, MXP_BIAS_ROW, MXP_ACT_NONE, 0, MXP_DTYPE_BF16, 0}};
    /* the case each of the team's 2 threads runs (-1: none) */
    static const int scen[NS][2] = {{0, 0}, {0, 1}, {2, 2}, {2, 3}, {3, -1}, {-1, 1}};
    static const char *const scen_name[NS] = {
        "both threads the same 4-thread GEMM", "4-thread GEMMs with 1 and 2+ k blocks",
        "both threads the same small GEMM",    "small GEMMs with 1 and 3+ k blocks",
        "only thread 0, a small GEMM",         "only thread 1, a 4-thread GEMM"};
    gdata d[NC];
    void *c1[NC], *p1[NC], *out[2], *pre[2];
    size_t bytes[NC], most = 0;
    for (int i = 0; i < NC; i++) {
        d[i] = gdata_make(&g[i]);
        bytes[i] = g[i].M * g[i].N * mxp_dtype_size(g[i].ct);
        most = bytes[i] > most ? bytes[i] : most;
        c1[i] = malloc(bytes[i]);
        p1[i] = malloc(bytes[i]);
    }
    for (int t = 0; t < 2; t++) {
        out[t] = malloc(most);
        pre[t] = malloc(most);
    }
    signal(SIGALRM, on_alarm);
    alarm(60);
    for (int isa = 0; isa < MXP_ISA_COUNT; isa++) {
        if (mxp_isa_set((mxp_isa)isa) != MXP_OK) continue;
        mxp_set_num_threads(1);
        for (int i = 0; i < NC; i++)
            CHECK(call_case(&g[i], &d[i], c1[i], p1[i]) == MXP_OK, "1 thread, case %d", i);
        mxp_set_num_threads(4);
        omp_set_max_active_levels(1);
        for (int s = 0; s < NS; s++) {
            mxp_status st[2] = {MXP_OK, MXP_OK};
            int team = 0;
            hang_where = scen_name[s];
#pragma omp parallel num_threads(2)
            {
                const int t = omp_get_thread_num(), i = t < 2 ? scen[s][t] : -1;
                if (t == 0) team = omp_get_num_threads();
                if (i >= 0) st[t] = call_case(&g[i], &d[i], out[t], pre[t]);
            }
            CHECK(team == 2, "the caller's team has %d threads, not 2", team);
            for (int t = 0; t < 2; t++) {
                const int i = scen[s][t];
                if (i < 0) continue;
                CHECK(st[t] == MXP_OK, "%s, %s: status %d", mxp_isa_name(isa), scen_name[s], st[t]);
                CHECK(memcmp(out[t], c1[i], bytes[i]) == 0,
                      "%s, %s: thread %d's C differs from 1 thread outside (%s)", mxp_isa_name(isa),
                      scen_name[s], t, tagf(&g[i], (mxp_isa)isa));
                CHECK(!g[i].pre || memcmp(pre[t], p1[i], bytes[i]) == 0,
                      "%s, %s: thread %d's pre_act differs", mxp_isa_name(isa), scen_name[s], t);
            }
        }
        omp_set_max_active_levels(saved_levels);
    }
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    /* and 1 thread outside is right: the same cases against the double reference */
    mxp_set_num_threads(1);
    for (int i = 0; i < NC; i++) run_all_isas(&g[i]);
    for (int i = 0; i < NC; i++) {
        free(c1[i]);
        free(p1[i]);
        gdata_free(&d[i]);
    }
    for (int t = 0; t < 2; t++) {
        free(out[t]);
        free(pre[t]);
    }
    mxp_set_num_threads(saved);
    mxp_isa_set(mxp_isa_detect());
}
#endif

static void test_errors(void) {
    float a[4] = {0}, b[4] = {0}, c[4] = {0};
    CHECK(mxp_gemm(2, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, NULL) == MXP_ERR_INVALID_ARG,
          "bad trans");
    CHECK(strlen(mxp_last_error()) > 0, "message");
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, (mxp_dtype)9, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, NULL) == MXP_ERR_DTYPE,
          "bad dtype");
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 1, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, NULL) == MXP_ERR_INVALID_ARG,
          "lda too small");
    CHECK(mxp_gemm(0, 1, 2, 2, 3, 1, a, MXP_DTYPE_F32, 3, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, NULL) == MXP_ERR_INVALID_ARG,
          "ldb too small for B^T");
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   1, NULL) == MXP_ERR_INVALID_ARG,
          "ldc too small");
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, NULL, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c,
                   MXP_DTYPE_F32, 2, NULL) == MXP_ERR_INVALID_ARG,
          "NULL A");
    mxp_gemm_epilogue e = {NULL, MXP_DTYPE_F32, MXP_BIAS_COL, MXP_ACT_NONE, NULL, 0};
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, &e) == MXP_ERR_INVALID_ARG,
          "bias mode without bias");
    e.bias_mode = MXP_BIAS_NONE;
    e.act = (mxp_act)7;
    CHECK(mxp_gemm(0, 0, 2, 2, 2, 1, a, MXP_DTYPE_F32, 2, b, MXP_DTYPE_F32, 2, 0, c, MXP_DTYPE_F32,
                   2, &e) == MXP_ERR_INVALID_ARG,
          "bad act");
    /* empty problems are fine and touch nothing */
    CHECK(mxp_gemm(0, 0, 0, 2, 2, 1, NULL, MXP_DTYPE_F32, 2, NULL, MXP_DTYPE_F32, 2, 0, NULL,
                   MXP_DTYPE_F32, 2, NULL) == MXP_OK,
          "M = 0");
    CHECK(strstr(mxp_gemm_kernel_name(MXP_DTYPE_BF16, MXP_DTYPE_BF16), "gemm_") != NULL, "name");
}

/* A tracking allocator for mxp_set_allocator: it counts, keeps the largest request, can
 * refuse every request, and remembers the blocks it made, so a free of a block it did not
 * make is caught (and handed to free(), which suits the default hook's aligned_alloc). */
enum { TR_SLOTS = 64 };
static struct {
    int fail;
    long allocs, frees, foreign, full;
    size_t largest;
    void *live[TR_SLOTS];
} tr;

static void *tr_alloc(size_t size, size_t align, void *u) {
    (void)u;
    if (tr.fail) return NULL;
    if (size > tr.largest) tr.largest = size;
    for (int i = 0; i < TR_SLOTS; i++)
        if (!tr.live[i]) {
            tr.live[i] = aligned_alloc(align, (size + align - 1) / align * align);
            if (tr.live[i]) tr.allocs++;
            return tr.live[i];
        }
    tr.full++;
    return NULL;
}

static void tr_free(void *p, void *u) {
    (void)u;
    for (int i = 0; i < TR_SLOTS; i++)
        if (tr.live[i] == p) {
            tr.live[i] = NULL;
            tr.frees++;
            free(p);
            return;
        }
    tr.foreign++;
    free(p);
}

static int tr_live(void) {
    int n = 0;
    for (int i = 0; i < TR_SLOTS; i++) n += tr.live[i] != NULL;
    return n;
}

static void tr_install(void) {
    memset(&tr, 0, sizeof tr);
    const mxp_allocator al = {tr_alloc, tr_free, NULL};
    mxp_set_allocator(&al);
}

/* A failing allocator makes mxp_gemm return MXP_ERR_NOMEM cleanly. */
static void test_nomem(void) {
    mxp_gemm_release_workspace();
    tr_install();
    tr.fail = 1;
    float a[64] = {0}, b[64] = {0}, c[64];
    CHECK(mxp_gemm(0, 0, 8, 8, 8, 1, a, MXP_DTYPE_F32, 8, b, MXP_DTYPE_F32, 8, 0, c, MXP_DTYPE_F32,
                   8, NULL) == MXP_ERR_NOMEM,
          "allocation failure is reported");
    tr.fail = 0;
    CHECK(mxp_gemm(0, 0, 8, 8, 8, 1, a, MXP_DTYPE_F32, 8, b, MXP_DTYPE_F32, 8, 0, c, MXP_DTYPE_F32,
                   8, NULL) == MXP_OK,
          "and then it works");
    mxp_gemm_release_workspace();
    CHECK(tr.allocs == tr.frees && tr_live() == 0 && tr.foreign == 0,
          "nomem: %ld allocations, %ld frees, %d live, %ld foreign", tr.allocs, tr.frees, tr_live(),
          tr.foreign);
    mxp_set_allocator(NULL);
}

/* The workspace cached between calls goes back to the hook that made it: made by the default
 * hook and outgrown under a tracking one, the tracking free never sees it; made by the
 * tracking hook and outgrown after the default is back, it still returns there; and
 * mxp_gemm_release_workspace leaves the tracking hook balanced. */
static void test_workspace_hooks(void) {
    enum { S = 24, L = 200 };
    float *a = calloc(L * L, 4), *b = calloc(L * L, 4), *c = malloc(L * L * 4);
    mxp_gemm_release_workspace();
    mxp_set_allocator(NULL);
    CHECK(mxp_gemm(0, 0, S, S, S, 1, a, MXP_DTYPE_F32, S, b, MXP_DTYPE_F32, S, 0, c, MXP_DTYPE_F32,
                   S, NULL) == MXP_OK,
          "small GEMM, default hook");
    tr_install();
    CHECK(mxp_gemm(0, 0, L, L, L, 1, a, MXP_DTYPE_F32, L, b, MXP_DTYPE_F32, L, 0, c, MXP_DTYPE_F32,
                   L, NULL) == MXP_OK,
          "bigger GEMM, tracking hook");
    CHECK(tr.foreign == 0, "the tracking hook was asked to free %ld block(s) it never made",
          tr.foreign);
    CHECK(tr.allocs >= 1, "the bigger GEMM did not allocate through the new hook");
    CHECK(mxp_gemm(0, 0, L, L, L, 1, a, MXP_DTYPE_F32, L, b, MXP_DTYPE_F32, L, 0, c, MXP_DTYPE_F32,
                   L, NULL) == MXP_OK,
          "again");
    mxp_gemm_release_workspace();
    CHECK(tr.allocs == tr.frees && tr_live() == 0 && tr.foreign == 0,
          "after release: %ld allocations, %ld frees, %d live, %ld foreign", tr.allocs, tr.frees,
          tr_live(), tr.foreign);
    /* the other way: cached by the tracking hook, outgrown under the default one */
    CHECK(mxp_gemm(0, 0, S, S, S, 1, a, MXP_DTYPE_F32, S, b, MXP_DTYPE_F32, S, 0, c, MXP_DTYPE_F32,
                   S, NULL) == MXP_OK,
          "small GEMM, tracking hook");
    mxp_set_allocator(NULL);
    CHECK(mxp_gemm(0, 0, L, L, L, 1, a, MXP_DTYPE_F32, L, b, MXP_DTYPE_F32, L, 0, c, MXP_DTYPE_F32,
                   L, NULL) == MXP_OK,
          "bigger GEMM, default hook");
    mxp_gemm_release_workspace();
    CHECK(tr.allocs == tr.frees && tr_live() == 0,
          "the tracking hook's block was not returned to it: %ld allocations, %ld frees", tr.allocs,
          tr.frees);
    free(a);
    free(b);
    free(c);
}

/* A 16-bit C is accumulated in an fp32 block of rows. Over several row blocks of the SIMD
 * kernels (mc 3072 / 4032; K = 600 also spans k blocks) the results must be right, the row
 * bias and pre_act on the right rows. With K in one k block and M x N large, no single
 * allocation may reach 32 MiB (the fp32 block is meant to stay within CACC_BUDGET, 16 MiB;
 * unbounded it would be mc x N x 4 bytes, 46 MiB for M = 4032 = the AVX-512 mc). The big
 * cases check every 29th row and 32 rows at each end. */
static void test_c16_blocks(void) {
    gcase g = gc(MXP_NO_TRANS, MXP_NO_TRANS, 4100, 40, 600, MXP_DTYPE_BF16, MXP_DTYPE_BF16,
                 MXP_DTYPE_BF16);
    g.bias = MXP_BIAS_ROW;
    g.act = MXP_ACT_RELU;
    g.pre = 1;
    g.bias_dt = MXP_DTYPE_F16;
    run_isas(&g, MXP_ISA_AVX2);
    g.at = g.bt = g.ct = MXP_DTYPE_F16;
    g.beta = 0.5f;
    g.bias = MXP_BIAS_COL;
    g.bias_dt = MXP_DTYPE_F32;
    g.act = MXP_ACT_GELU_TANH;
    run_isas(&g, MXP_ISA_AVX2);

    static const size_t Ms[] = {4096, 4032};
    for (int m = 0; m < 2; m++) {
        gcase h = gc(MXP_NO_TRANS, MXP_TRANS, Ms[m], 3000, 64, MXP_DTYPE_BF16, MXP_DTYPE_BF16,
                     MXP_DTYPE_BF16);
        h.row_step = 29;
        for (int isa = MXP_ISA_AVX2; isa < MXP_ISA_COUNT; isa++) {
            if (mxp_isa_set((mxp_isa)isa) != MXP_OK) continue;
            mxp_gemm_release_workspace();
            tr_install();
            free(run_case(&h, tagf(&h, (mxp_isa)isa), NULL));
            CHECK(tr.largest < ((size_t)32 << 20), "%s: an allocation of %.1f MiB",
                  tagf(&h, (mxp_isa)isa), (double)tr.largest / (1 << 20));
            mxp_gemm_release_workspace();
            CHECK(tr.allocs == tr.frees && tr.foreign == 0, "%s: %ld allocations, %ld frees",
                  tagf(&h, (mxp_isa)isa), tr.allocs, tr.frees);
            mxp_set_allocator(NULL);
        }
    }
    mxp_isa_set(mxp_isa_detect());
}

int main(void) {
    test_errors();
    test_nomem();
    test_shapes();
    test_mixed_and_epilogues();
    test_large();
    test_threads_bitwise();
    test_thread_grid();
    test_c16_blocks();
    test_workspace_hooks();
#ifdef _OPENMP
    test_short_team(); /* last: a hang there ends the program */
#endif
    mxp_gemm_release_workspace();
    return check_exit("test_gemm");
}
