/*
 * test_kernels.c - the non-GEMM CPU kernels (element-wise ops, activations, unscale + inf
 * check, reductions, softmax, and the vector exp under GELU and softmax) on every ISA
 * family this CPU supports, every dtype, odd sizes and the threaded path. Where the
 * contract fixes the bits (one fp32 operation, one rounding) results must match exactly;
 * elsewhere they are compared with double-precision formulas and with the scalar reference
 * under per-dtype tolerances. Also: special values, in-place aliasing, the inf/NaN flag,
 * bit-identical reductions on 1, 2 and 3 threads, and error returns. Not GEMM
 * (test_gemm.c), not speed (bench/).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/eltwise_impl.h"
#include "test_util.h"

#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

static const mxp_dtype dtypes[] = {F32, F16, BF16};

/* large enough that every op splits over 2 threads (and reductions over several tasks) */
enum { BIG = 2 * MXP_EW_GRAIN + 77 };
static const size_t sizes[] = {0, 1, 7, 15, 16, 17, 33, 1023, 4097, BIG};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static mxp_isa isas[MXP_ISA_COUNT]; /* the families this CPU runs */
static int nisa;

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t rnd_u64(void) { return splitmix64(&rng); }

static float rnd_range(float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(rnd_u64() >> 11) * 0x1p-53);
}

/* exactly n elements, so AddressSanitizer sees any access past the end */
static void *alloc_dt(mxp_dtype dt, size_t n) { return xmalloc(n * esize(dt)); }

/* v rounded to dt once, to nearest even: what the kernels must store */
static float rnd(mxp_dtype dt, float v) {
    uint32_t tmp;
    put(dt, &tmp, 0, v);
    return get(dt, &tmp, 0);
}

static uint32_t bits(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* the same stored value: equal bits (so -0 differs from +0), or both NaN */
static int same(float a, float b) { return (isnan(a) && isnan(b)) || bits(a) == bits(b); }

/* |got - want| <= atol + rtol |want|; for a 16-bit dt also one ulp of dt more, because the
 * fp32 result (a few fp32 ulps off the exact value) may sit on the other side of a rounding
 * boundary of dt than the exact value, and then the neighbour of the correctly rounded
 * value is stored. inf and NaN must match exactly. */
static int close_out(mxp_dtype dt, float got, double want, double atol, double rtol) {
    if (isnan(want)) return isnan(got);
    if (same(got, rnd(dt, (float)want))) return 1; /* the correctly rounded value, inf included */
    if (isinf(want) || isnan(got) || isinf(got)) return 0;
    const double err = fabs((double)got - want), tol = atol + rtol * fabs(want);
    if (err <= tol) return 1;
    if (dt == F32) return 0;
    return err <= tol + mxp_format_ulp(mxp_format_of(dt), fmax(fabs((double)got), fabs(want)));
}

static int set_isa(mxp_isa isa) {
    const mxp_status st = mxp_isa_set(isa);
    CHECK(st == MXP_OK, "mxp_isa_set(%s): %s", mxp_isa_name(isa), mxp_last_error());
    return st == MXP_OK;
}

/* ---- double-precision formulas ------------------------------------------- */

static const double GELU_K = 0.79788456080286535588; /* sqrt(2/pi) */
static const double GELU_C = 0.044715;

/* x sigmoid(2u) = 0.5 x (1 + tanh u), free of the cancellation of 1 + tanh u at x < 0 */
static double gelu_d(double x) {
    if (x == -INFINITY) return -0.0;
    const double u = GELU_K * (x + GELU_C * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}

/* s + x s (1 - s) 2u' with s (1 - s) = t / (1 + t)^2, t = exp(-|2u|): nothing overflows */
static double gelu_grad_d(double x) {
    if (x == INFINITY) return 1.0;
    if (x == -INFINITY) return 0.0;
    const double a = 2.0 * GELU_K * (x + GELU_C * x * x * x);
    const double t = exp(-fabs(a)), q = 1.0 / (1.0 + t);
    const double s = a >= 0 ? q : t * q;
    return s + x * 2.0 * GELU_K * (1.0 + 3.0 * GELU_C * x * x) * t * q * q;
}

/* ---- element-wise --------------------------------------------------------- */

typedef enum { E_ADD, E_MUL, E_SCALE, E_RELU, E_GELU, E_RELU_BWD, E_GELU_BWD, E_COUNT } ew_op;
static const char *const ew_name[E_COUNT] = {
    "add", "mul", "scale", "relu", "gelu_tanh", "relu_backward", "gelu_tanh_backward"};
static const float SCALE_S = 0.3f; /* not a power of two: scale must round */

static mxp_status ew_call(ew_op op, void *y, const void *a, const void *b, mxp_dtype dt, size_t n) {
    switch (op) {
    case E_ADD: return mxp_add(y, a, b, dt, n);
    case E_MUL: return mxp_mul(y, a, b, dt, n);
    case E_SCALE: return mxp_scale(y, a, SCALE_S, dt, n);
    case E_RELU: return mxp_relu(y, a, dt, n);
    case E_GELU: return mxp_gelu_tanh(y, a, dt, n);
    case E_RELU_BWD: return mxp_relu_backward(y, a, b, dt, n); /* a = dy, b = x */
    default: return mxp_gelu_tanh_backward(y, a, b, dt, n);
    }
}

static int ew_exact(ew_op op) { return op != E_GELU && op != E_GELU_BWD; }

/* The contract computed here: one fp32 operation (the caller rounds once to dt). */
static float ew_f32(ew_op op, float a, float b) {
    switch (op) {
    case E_ADD: return a + b;
    case E_MUL: return a * b;
    case E_SCALE: return SCALE_S * a;
    case E_RELU: return (a > 0.0f || isnan(a)) ? a : 0.0f; /* relu(-0) = +0, NaN stays */
    default: return a * (b > 0.0f ? 1.0f : 0.0f);          /* relu_backward, literally */
    }
}

static double ew_double(ew_op op, double a, double b) {
    return op == E_GELU ? gelu_d(a) : a * gelu_grad_d(b);
}

/* GELU in fp32: exp is ~1 ulp, but 2u is an fp32 value |2u| ulps wide, so the relative
 * error grows to ~|2u| * 3 ulps (5e-6 at x = -7). The derivative g is a sum of terms up to
 * ~1 that cancels near its zero at x = -0.75, so its error is absolute, ~1e-6 * |dy| in
 * dx = dy g (this also covers g in the fp32 subnormal range, x < -10.2). */
static double ew_atol(ew_op op, double dy) {
    return op == E_GELU ? 1e-30 : 1e-6 * fabs(dy) + 1e-30;
}
static const double EW_RTOL = 1e-5;

static void random_inputs(ew_op op, float *a, float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (op) {
        case E_ADD:
        case E_MUL:
        case E_SCALE: /* mixed magnitudes, so the sums and products round */
            a[i] = ldexpf(rnd_range(-1, 1), (int)(rnd_u64() % 13) - 6);
            b[i] = ldexpf(rnd_range(-1, 1), (int)(rnd_u64() % 13) - 6);
            break;
        case E_GELU:
        case E_GELU_BWD:
            a[i] = op == E_GELU ? rnd_range(-7, 7) : rnd_range(-2, 2);
            b[i] = rnd_range(-7, 7);
            break;
        default:
            a[i] = rnd_range(-4, 4);
            b[i] = rnd_range(-4, 4);
            break;
        }
    }
}

/* Run op on every ISA over inputs af/bf (already representable in dt) and check each one
 * against the contract and against the reference ISA. */
static void check_ew_case(ew_op op, mxp_dtype dt, const float *af, const float *bf, size_t n,
                          const char *what) {
    void *A = alloc_dt(dt, n), *B = alloc_dt(dt, n), *Y = alloc_dt(dt, n), *R = alloc_dt(dt, n);
    for (size_t i = 0; i < n; i++) {
        put(dt, A, i, af[i]);
        put(dt, B, i, bf[i]);
    }
    set_isa(MXP_ISA_REF);
    CHECK(ew_call(op, R, A, B, dt, n) == MXP_OK, "%s ref: %s", ew_name[op], mxp_last_error());
    for (int k = 0; k < nisa; k++) {
        if (!set_isa(isas[k])) continue;
        memset(Y, 0xa5, n ? n * esize(dt) : 1);
        const mxp_status st = ew_call(op, Y, A, B, dt, n);
        CHECK(st == MXP_OK, "%s: %s", ew_name[op], mxp_last_error());
        size_t bad = 0, first = 0;
        float got0 = 0;
        double want0 = 0;
        for (size_t i = 0; i < n; i++) {
            const float got = get(dt, Y, i), ref = get(dt, R, i);
            const float a = get(dt, A, i), b = get(dt, B, i);
            int ok;
            double want;
            if (ew_exact(op)) {
                want = rnd(dt, ew_f32(op, a, b));
                ok = same(got, (float)want);
            } else {
                want = ew_double(op, a, b);
                ok = close_out(dt, got, want, ew_atol(op, a), EW_RTOL) &&
                     close_out(dt, got, ref, 2 * ew_atol(op, a), 2 * EW_RTOL);
            }
            if (!ok && bad++ == 0) {
                first = i;
                got0 = got;
                want0 = want;
            }
        }
        CHECK(bad == 0,
              "%s %s %s n=%zu isa=%s: %zu bad, first [%zu] a=%.9g b=%.9g: got %.9g want %.9g",
              ew_name[op], mxp_dtype_name(dt), what, n, mxp_isa_name(isas[k]), bad, first,
              n ? get(dt, A, first) : 0.0, n ? get(dt, B, first) : 0.0, got0, want0);
    }
    free(A);
    free(B);
    free(Y);
    free(R);
}

static void test_eltwise_random(void) {
    float *a = malloc(BIG * sizeof(float)), *b = malloc(BIG * sizeof(float));
    for (int op = 0; op < E_COUNT; op++) {
        for (size_t d = 0; d < 3; d++) {
            for (size_t s = 0; s < NSIZES; s++) {
                const size_t n = sizes[s];
                random_inputs((ew_op)op, a, b, n);
                for (size_t i = 0; i < n; i++) { /* representable in dt */
                    a[i] = rnd(dtypes[d], a[i]);
                    b[i] = rnd(dtypes[d], b[i]);
                }
                check_ew_case((ew_op)op, dtypes[d], a, b, n, "random");
            }
        }
    }
    free(a);
    free(b);
}

/* Every pair of special values (529 elements: also a masked tail). */
static void test_eltwise_special(void) {
    const float sp[] = {0.0f,   -0.0f,   1.0f,    -1.0f,    INFINITY, -INFINITY, NAN,   -NAN,
                        1e-40f, -1e-40f, FLT_MIN, 65504.0f, 65520.f,  -1e5f,     1e30f, -1e30f,
                        3e38f,  -3e38f,  1e-8f,   5.96e-8f, -0.75f,   10.5f,     -10.5f};
    const size_t m = sizeof sp / sizeof sp[0], n = m * m;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    for (size_t d = 0; d < 3; d++) {
        for (size_t i = 0; i < n; i++) { /* 65520 becomes inf in fp16, 1e-8 becomes 0 ... */
            a[i] = rnd(dtypes[d], sp[i / m]);
            b[i] = rnd(dtypes[d], sp[i % m]);
        }
        for (int op = 0; op < E_COUNT; op++)
            check_ew_case((ew_op)op, dtypes[d], a, b, n, "special");
    }
    free(a);
    free(b);

    /* the limits and conventions the header and eltwise.c promise */
    for (int k = 0; k < nisa; k++) {
        if (!set_isa(isas[k])) continue;
        float x[3] = {-INFINITY, INFINITY, -0.0f}, y[3], dy[3] = {2.0f, 2.0f, 1.0f};
        mxp_gelu_tanh(y, x, F32, 3);
        CHECK(y[0] == 0.0f && signbit(y[0]) && y[1] == INFINITY && y[2] == 0.0f && signbit(y[2]),
              "gelu(-inf, inf, -0) = %g %g %g on %s", y[0], y[1], y[2], mxp_isa_name(isas[k]));
        mxp_gelu_tanh_backward(y, dy, x, F32, 3);
        CHECK(y[0] == 0.0f && y[1] == 2.0f && y[2] == 0.5f, "gelu' at -inf, inf, -0: %g %g %g",
              y[0], y[1], y[2]);
        mxp_relu(y, x, F32, 3);
        CHECK(y[0] == 0.0f && !signbit(y[0]) && y[2] == 0.0f && !signbit(y[2]), "relu(-0) = +0");
        float inf_dy[2] = {INFINITY, 1.0f}, xs[2] = {-1.0f, 1.0f};
        mxp_relu_backward(y, inf_dy, xs, F32, 2);
        CHECK(isnan(y[0]) && y[1] == 1.0f, "relu_backward keeps an inf dy visible where x <= 0");
    }
}

/* y aliasing an input gives the same bits as a separate y. */
static void test_eltwise_inplace(void) {
    const size_t sz[] = {17, 1023, BIG};
    for (size_t s = 0; s < 3; s++) {
        const size_t n = sz[s];
        for (size_t d = 0; d < 3; d++) {
            const mxp_dtype dt = dtypes[d];
            float *af = malloc(n * sizeof(float)), *bf = malloc(n * sizeof(float));
            void *A = alloc_dt(dt, n), *B = alloc_dt(dt, n), *Y = alloc_dt(dt, n),
                 *W = alloc_dt(dt, n);
            for (int k = 0; k < nisa; k++) {
                if (!set_isa(isas[k])) continue;
                for (int op = 0; op < E_COUNT; op++) {
                    /* the threaded slices: one cheap op and one exp op are enough */
                    if (n == BIG && op != E_ADD && op != E_GELU_BWD) continue;
                    random_inputs((ew_op)op, af, bf, n);
                    for (size_t i = 0; i < n; i++) {
                        put(dt, A, i, af[i]);
                        put(dt, B, i, bf[i]);
                    }
                    const size_t bytes = n * esize(dt);
                    ew_call((ew_op)op, Y, A, B, dt, n); /* out of place */
                    memcpy(W, A, bytes);                /* y == a */
                    ew_call((ew_op)op, W, W, B, dt, n);
                    CHECK(memcmp(W, Y, bytes) == 0, "%s %s n=%zu y == a differs on %s", ew_name[op],
                          mxp_dtype_name(dt), n, mxp_isa_name(isas[k]));
                    if (op == E_SCALE || op == E_RELU || op == E_GELU) continue;
                    memcpy(W, B, bytes); /* y == b */
                    ew_call((ew_op)op, W, A, W, dt, n);
                    CHECK(memcmp(W, Y, bytes) == 0, "%s %s n=%zu y == b differs on %s", ew_name[op],
                          mxp_dtype_name(dt), n, mxp_isa_name(isas[k]));
                    ew_call((ew_op)op, Y, A, A, dt, n); /* y == a == b */
                    memcpy(W, A, bytes);
                    ew_call((ew_op)op, W, W, W, dt, n);
                    CHECK(memcmp(W, Y, bytes) == 0, "%s %s n=%zu y == a == b differs on %s",
                          ew_name[op], mxp_dtype_name(dt), n, mxp_isa_name(isas[k]));
                }
            }
            free(af);
            free(bf);
            free(A);
            free(B);
            free(Y);
            free(W);
        }
    }
}

/* ---- exp ----------------------------------------------------------------- */

/* error of got against the exact exp(x), in ulps of fp32 at the exact value */
static double exp_ulps(float got, float x) {
    const double want = exp((double)x);
    if (want > FLT_MAX)
        return isinf(got) ? 0.0 : (FLT_MAX - got) / mxp_format_ulp(&mxp_format_fp32, FLT_MAX) + 1;
    return fabs((double)got - want) / mxp_format_ulp(&mxp_format_fp32, want);
}

static void test_exp(void) {
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    float *y0 = malloc(N * sizeof(float));
    /* a sweep of the whole range where exp is neither 0 nor inf, and a little past it */
    for (size_t i = 0; i < N; i++) x[i] = -105.0f + 195.0f * (float)i / (float)N;
    for (int k = 0; k < nisa; k++) {
        const mxp_ew_table *t = mxp_ew_table_for(isas[k]);
        t->exp_f32(y, x, N);
        double worst = 0;
        float at = 0;
        for (size_t i = 0; i < N; i++) {
            const double u = exp_ulps(y[i], x[i]);
            if (!(u <= worst)) {
                worst = u;
                at = x[i];
            }
        }
        printf("exp_f32 on %s: worst error %.3f ulp (at x = %.9g)\n", mxp_isa_name(isas[k]), worst,
               at);
        CHECK(worst <= 2.0, "exp on %s: %.3f ulp at x=%.9g", mxp_isa_name(isas[k]), worst, at);

        const float sx[] = {-INFINITY, INFINITY, NAN,   0.0f,   -0.0f,  88.72f, 88.73f,
                            -103.9f,   -104.0f,  1e30f, -1e30f, -87.5f, 1e-30f, -1e-45f};
        float sy[sizeof sx / sizeof sx[0]];
        const size_t m = sizeof sx / sizeof sx[0];
        t->exp_f32(sy, sx, m);
        CHECK(sy[0] == 0.0f && !signbit(sy[0]), "exp(-inf) = %g on %s", sy[0],
              mxp_isa_name(isas[k]));
        CHECK(sy[1] == INFINITY && isnan(sy[2]), "exp(inf) = %g, exp(nan) = %g", sy[1], sy[2]);
        CHECK(sy[3] == 1.0f && sy[4] == 1.0f, "exp(+-0) = %g %g", sy[3], sy[4]);
        CHECK(isfinite(sy[5]) && sy[5] > 3e38f && isinf(sy[6]), "exp near overflow: %g %g", sy[5],
              sy[6]);
        CHECK(sy[7] > 0.0f && sy[7] < FLT_MIN && sy[8] == 0.0f, "exp near underflow: %g %g", sy[7],
              sy[8]);
        CHECK(isinf(sy[9]) && sy[10] == 0.0f, "exp(+-1e30) = %g %g", sy[9], sy[10]);
        CHECK(sy[11] < FLT_MIN && exp_ulps(sy[11], sx[11]) <= 2.0, "exp(-87.5) = %g (subnormal)",
              sy[11]);
        CHECK(sy[12] == 1.0f && sy[13] == 1.0f, "exp(tiny) = %g %g", sy[12], sy[13]);

        /* the AVX2 and AVX-512 versions do the same operations: the same bits */
        if (isas[k] == MXP_ISA_AVX2) memcpy(y0, y, N * sizeof(float));
        if (isas[k] >= MXP_ISA_AVX512 && mxp_cpu_supports(MXP_ISA_AVX2))
            CHECK(memcmp(y0, y, N * sizeof(float)) == 0, "exp bits differ between avx2 and %s",
                  mxp_isa_name(isas[k]));
    }
    free(x);
    free(y);
    free(y0);
}

/* ---- unscale + inf check ---------------------------------------------------- */

static void test_unscale(void) {
    const float invs[] = {1.0f / 1024.0f, 0.37f};
    for (size_t sd = 0; sd < 3; sd++) {
        for (size_t dd = 0; dd < 3; dd++) {
            const mxp_dtype st = dtypes[sd], dt = dtypes[dd];
            for (size_t s = 0; s < NSIZES; s++) {
                const size_t n = sizes[s];
                void *S = alloc_dt(st, n), *D = alloc_dt(dt, n);
                for (size_t i = 0; i < n; i++) put(st, S, i, rnd_range(-1000, 1000));
                for (int k = 0; k < nisa; k++) {
                    if (!set_isa(isas[k])) continue;
                    const char *isa = mxp_isa_name(isas[k]);
                    for (size_t v = 0; v < 2; v++) {
                        int found = 0;
                        CHECK(mxp_unscale_check(D, dt, S, st, n, invs[v], &found) == MXP_OK, "%s",
                              mxp_last_error());
                        size_t bad = 0;
                        for (size_t i = 0; i < n; i++)
                            bad += !same(get(dt, D, i), rnd(dt, get(st, S, i) * invs[v]));
                        CHECK(bad == 0 && found == 0,
                              "unscale %s->%s n=%zu on %s: %zu wrong, found=%d", mxp_dtype_name(st),
                              mxp_dtype_name(dt), n, isa, bad, found);
                        found = 1; /* never cleared */
                        mxp_unscale_check(D, dt, S, st, n, invs[v], &found);
                        CHECK(found == 1, "unscale cleared found_inf");
                    }
                    if (n == 0 || n == BIG) continue; /* BIG: the threaded pass above */
                    /* one inf or NaN at the first, middle, last and first-of-the-tail place */
                    const size_t pos[] = {0, n / 2, n - 1, n / 16 * 16 < n ? n / 16 * 16 : 0};
                    const float specials[] = {INFINITY, -INFINITY, NAN};
                    for (size_t p = 0; p < 4; p++) {
                        for (size_t q = 0; q < 3; q++) {
                            const float keep = get(st, S, pos[p]);
                            put(st, S, pos[p], specials[q]);
                            int found = 0;
                            mxp_unscale_check(D, dt, S, st, n, 0.5f, &found);
                            CHECK(found == 1, "unscale %s->%s n=%zu on %s: %g at %zu not found",
                                  mxp_dtype_name(st), mxp_dtype_name(dt), n, isa, specials[q],
                                  pos[p]);
                            put(st, S, pos[p], keep);
                        }
                    }
                    /* An overflow made by unscaling: a finite source, times inv_scale or
                     * rounded into a 16-bit dst, stored as inf. 60000 fp16 * 4 = 240000
                     * stays finite in f32 and bf16 dsts: found must stay 0 there. */
                    const float big = st == F16 ? 60000.0f : st == F32 && dt == F16 ? 1e5f : 3e38f;
                    const float inv = dt == F16 && st != F16 ? 1.0f : 4.0f;
                    const int want_inf = !(st == F16 && dt != F16);
                    for (size_t p = 0; p < 4; p++) {
                        const float keep = get(st, S, pos[p]);
                        put(st, S, pos[p], big);
                        int found = 0;
                        mxp_unscale_check(D, dt, S, st, n, inv, &found);
                        const float stored = get(dt, D, pos[p]);
                        CHECK((isinf(stored) != 0) == want_inf && found == want_inf,
                              "unscale overflow %s->%s n=%zu at %zu on %s: stored %g found %d",
                              mxp_dtype_name(st), mxp_dtype_name(dt), n, pos[p], isa, stored,
                              found);
                        put(st, S, pos[p], keep);
                    }
                }
                free(S);
                free(D);
            }
        }
    }

    /* 60000 * 4 overflows fp16 but not fp32: into F16 found, into F32 not */
    for (int k = 0; k < nisa; k++) {
        if (!set_isa(isas[k])) continue;
        uint16_t h[19];
        float f[19];
        for (int i = 0; i < 19; i++) h[i] = mxp_fp32_to_fp16(i == 18 ? 60000.0f : 1.0f);
        int found = 0;
        mxp_unscale_check(f, F32, h, F16, 19, 4.0f, &found);
        CHECK(found == 0 && f[18] == 240000.0f, "fp16 -> fp32 unscale: found %d, %g", found, f[18]);
        mxp_unscale_check(h, F16, h, F16, 19, 4.0f, &found); /* in place */
        CHECK(found == 1 && mxp_fp16_to_fp32(h[18]) == INFINITY && mxp_fp16_to_fp32(h[0]) == 4.0f,
              "fp16 in-place unscale overflow: found %d", found);
        /* the flag sees only real elements: huge scale, tiny data, no false alarm in the tail */
        float t[21];
        for (int i = 0; i < 21; i++) t[i] = 1e-35f;
        found = 0;
        mxp_unscale_check(t, F32, t, F32, 21, 1e30f, &found);
        CHECK(found == 0 && t[20] == 1e-35f * 1e30f, "tail lanes raised found_inf");
    }

    /* in place equals out of place */
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        const size_t n = 4097;
        void *S = alloc_dt(dt, n), *D = alloc_dt(dt, n);
        for (int k = 0; k < nisa; k++) {
            if (!set_isa(isas[k])) continue;
            for (size_t i = 0; i < n; i++) put(dt, S, i, rnd_range(-70000, 70000));
            int f1 = 0, f2 = 0;
            mxp_unscale_check(D, dt, S, dt, n, 0.77f, &f1);
            mxp_unscale_check(S, dt, S, dt, n, 0.77f, &f2);
            CHECK(memcmp(S, D, n * esize(dt)) == 0 && f1 == f2, "unscale in place %s on %s",
                  mxp_dtype_name(dt), mxp_isa_name(isas[k]));
        }
        free(S);
        free(D);
    }
}

/* ---- reductions ----------------------------------------------------------- */

static const char *const red_name[] = {"sum", "mean", "max", "sumsq"};

/* The exact value (double) and a bound on the fp32 error: each element passes through at
 * most `depth` roundings on its way into the result, each of relative size u = 2^-24, so
 * |err| <= depth * u * sum |term|. depth: the leaf (sequential in the reference, 32 lanes
 * deep at most in SIMD, plus the horizontal tree), then two levels per doubling of the
 * leaves and tasks (the pairwise tree, plus the unwinding of the pending partials). */
static void red_exact(mxp_reduce_op op, const float *x, size_t n, double *want, double *mag) {
    double s = 0, a = 0, m = -INFINITY;
    int nan = 0;
    for (size_t i = 0; i < n; i++) {
        const double v = x[i];
        if (isnan(v)) nan = 1;
        if (v > m) m = v;
        s += op == MXP_REDUCE_SUMSQ ? v * v : v;
        a += op == MXP_REDUCE_SUMSQ ? v * v : fabs(v);
    }
    switch (op) {
    case MXP_REDUCE_MAX: *want = nan ? NAN : m; break;
    case MXP_REDUCE_MEAN: *want = n ? s / (double)n : NAN; break;
    default: *want = s; break;
    }
    *mag = op == MXP_REDUCE_MEAN && n ? a / (double)n : a;
}

static double red_tol(int ref, size_t n, double mag) {
    const double depth =
        (ref ? MXP_REDUCE_LEAF : MXP_REDUCE_LEAF / 32 + 8) + 2 * log2((double)n + 1) + 16;
    return depth * 0x1p-24 * mag + 1e-30;
}

static int red_ok(mxp_reduce_op op, float got, double want, double tol) {
    if (op == MXP_REDUCE_MAX) return isnan(want) ? isnan(got) : (double)got == want; /* exact */
    if (isnan(want)) return isnan(got);
    return fabs((double)got - want) <= tol;
}

static void test_reduce(void) {
    float *x = malloc(BIG * sizeof(float));
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        void *X = alloc_dt(dt, BIG);
        for (size_t s = 0; s < NSIZES; s++) {
            const size_t n = sizes[s];
            for (size_t i = 0; i < n; i++) {
                x[i] = rnd(dt, rnd_range(-1, 1) + 0.25f); /* a nonzero mean */
                put(dt, X, i, x[i]);
            }
            for (int op = 0; op < 4; op++) {
                double want, mag;
                red_exact((mxp_reduce_op)op, x, n, &want, &mag);
                float ref = 0;
                set_isa(MXP_ISA_REF);
                mxp_reduce((mxp_reduce_op)op, &ref, n ? X : NULL, dt, n);
                for (int k = 0; k < nisa; k++) {
                    if (!set_isa(isas[k])) continue;
                    float got = -1;
                    const mxp_status st = mxp_reduce((mxp_reduce_op)op, &got, n ? X : NULL, dt, n);
                    const double tol = red_tol(isas[k] == MXP_ISA_REF, n, mag);
                    CHECK(st == MXP_OK && red_ok((mxp_reduce_op)op, got, want, tol),
                          "reduce %s %s n=%zu on %s: got %.9g want %.9g (tol %.3g)", red_name[op],
                          mxp_dtype_name(dt), n, mxp_isa_name(isas[k]), got, want, tol);
                    CHECK(red_ok((mxp_reduce_op)op, got, ref, tol + red_tol(1, n, mag)),
                          "reduce %s %s n=%zu: %s %.9g vs ref %.9g", red_name[op],
                          mxp_dtype_name(dt), n, mxp_isa_name(isas[k]), got, ref);
                }
            }
        }

        /* NaN, inf and the empty reduction */
        for (int k = 0; k < nisa; k++) {
            if (!set_isa(isas[k])) continue;
            const size_t n = 4097;
            for (size_t i = 0; i < n; i++) put(dt, X, i, rnd_range(-1, 1));
            const size_t pos[] = {0, n / 2, n - 1, n - 5};
            for (size_t p = 0; p < 4; p++) {
                const float keep = get(dt, X, pos[p]);
                float r;
                put(dt, X, pos[p], NAN);
                mxp_reduce(MXP_REDUCE_MAX, &r, X, dt, n);
                CHECK(isnan(r), "max with NaN at %zu = %g on %s", pos[p], r, mxp_isa_name(isas[k]));
                mxp_reduce(MXP_REDUCE_SUM, &r, X, dt, n);
                CHECK(isnan(r), "sum with NaN at %zu = %g", pos[p], r);
                put(dt, X, pos[p], INFINITY);
                mxp_reduce(MXP_REDUCE_SUM, &r, X, dt, n);
                CHECK(r == INFINITY, "sum with inf = %g", r);
                mxp_reduce(MXP_REDUCE_MAX, &r, X, dt, n);
                CHECK(r == INFINITY, "max with inf = %g", r);
                put(dt, X, n - 1 - pos[p] / 2, -INFINITY);
                mxp_reduce(MXP_REDUCE_SUM, &r, X, dt, n);
                CHECK(isnan(r), "inf + -inf = %g", r);
                put(dt, X, pos[p], keep);
                put(dt, X, n - 1 - pos[p] / 2, 0.5f);
            }
            float r[4];
            for (int op = 0; op < 4; op++) mxp_reduce((mxp_reduce_op)op, &r[op], NULL, dt, 0);
            CHECK(r[0] == 0.0f && isnan(r[1]) && r[2] == -INFINITY && r[3] == 0.0f,
                  "empty reductions: %g %g %g %g", r[0], r[1], r[2], r[3]);
        }
        free(X);
    }
    free(x);
}

static void test_reduce_rows_cols(void) {
    static const size_t shapes[][2] = {{1, 1},      {3, 7},      {5, 17},   {4, 33},
                                       {7, 1023},   {3, 4097},   {129, 65}, {257, 31},
                                       {200, 1025}, {1, 200001}, {1000, 1}};
    const size_t nshapes = sizeof shapes / sizeof shapes[0];
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        for (size_t s = 0; s < nshapes; s++) {
            const size_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
            float *x = malloc(n * sizeof(float)), *col = malloc(rows * sizeof(float));
            float *out = malloc(MXP_MAX(rows, cols) * sizeof(float));
            float *out1 = malloc(MXP_MAX(rows, cols) * sizeof(float));
            void *X = alloc_dt(dt, n);
            for (size_t i = 0; i < n; i++) {
                x[i] = rnd(dt, rnd_range(-1, 1) + 0.25f);
                put(dt, X, i, x[i]);
            }
            for (int k = 0; k < nisa; k++) {
                if (!set_isa(isas[k])) continue;
                const int ref = isas[k] == MXP_ISA_REF;
                for (int op = 0; op < 4; op++) {
                    /* rows: each is exactly mxp_reduce of that row */
                    size_t bad = 0;
                    CHECK(mxp_reduce_rows((mxp_reduce_op)op, out, X, dt, rows, cols) == MXP_OK,
                          "%s", mxp_last_error());
                    for (size_t i = 0; i < rows; i++) {
                        double want, mag;
                        float one;
                        red_exact((mxp_reduce_op)op, x + i * cols, cols, &want, &mag);
                        mxp_reduce((mxp_reduce_op)op, &one, (const char *)X + i * cols * esize(dt),
                                   dt, cols);
                        bad += !red_ok((mxp_reduce_op)op, out[i], want, red_tol(ref, cols, mag)) ||
                               !same(out[i], one);
                    }
                    CHECK(bad == 0, "reduce_rows %s %s %zux%zu on %s: %zu rows wrong", red_name[op],
                          mxp_dtype_name(dt), rows, cols, mxp_isa_name(isas[k]), bad);

                    /* cols: blocks of rows in order, then the block sums in order */
                    CHECK(mxp_reduce_cols((mxp_reduce_op)op, out, X, dt, rows, cols) == MXP_OK,
                          "%s", mxp_last_error());
                    bad = 0;
                    for (size_t j = 0; j < cols; j++) {
                        double want, mag;
                        for (size_t i = 0; i < rows; i++) col[i] = x[i * cols + j];
                        red_exact((mxp_reduce_op)op, col, rows, &want, &mag);
                        const double depth =
                            cols == 1 ? 0 : MXP_REDUCE_ROW_BLOCK + rows / MXP_REDUCE_ROW_BLOCK + 4;
                        const double tol =
                            cols == 1 ? red_tol(ref, rows, mag) : depth * 0x1p-24 * mag + 1e-30;
                        bad += !red_ok((mxp_reduce_op)op, out[j], want, tol);
                    }
                    CHECK(bad == 0, "reduce_cols %s %s %zux%zu on %s: %zu columns wrong",
                          red_name[op], mxp_dtype_name(dt), rows, cols, mxp_isa_name(isas[k]), bad);

                    /* the same bits on 1 thread */
                    if (n >= 2 * MXP_EW_GRAIN) {
                        mxp_set_num_threads(1);
                        mxp_reduce_cols((mxp_reduce_op)op, out1, X, dt, rows, cols);
                        CHECK(memcmp(out, out1, cols * sizeof(float)) == 0,
                              "reduce_cols %s %zux%zu differs on 1 and 2 threads", red_name[op],
                              rows, cols);
                        mxp_reduce_rows((mxp_reduce_op)op, out1, X, dt, rows, cols);
                        mxp_set_num_threads(2);
                        mxp_reduce_rows((mxp_reduce_op)op, out, X, dt, rows, cols);
                        CHECK(memcmp(out, out1, rows * sizeof(float)) == 0,
                              "reduce_rows %s %zux%zu differs on 1 and 2 threads", red_name[op],
                              rows, cols);
                    }
                }
                /* NaN in one column and one row */
                if (rows >= 3 && cols >= 3) {
                    const size_t ri = rows / 2, cj = cols - 1;
                    const float keep = get(dt, X, ri * cols + cj);
                    put(dt, X, ri * cols + cj, NAN);
                    mxp_reduce_cols(MXP_REDUCE_MAX, out, X, dt, rows, cols);
                    CHECK(isnan(out[cj]) && !isnan(out[0]), "reduce_cols max misses NaN");
                    mxp_reduce_rows(MXP_REDUCE_MAX, out, X, dt, rows, cols);
                    CHECK(isnan(out[ri]) && !isnan(out[0]), "reduce_rows max misses NaN");
                    put(dt, X, ri * cols + cj, keep);
                }
            }
            free(x);
            free(col);
            free(out);
            free(out1);
            free(X);
        }
    }
    /* empty sides: identities (out of the other side untouched) */
    float out[3] = {7, 7, 7};
    mxp_reduce_rows(MXP_REDUCE_MAX, out, NULL, F32, 3, 0);
    CHECK(out[0] == -INFINITY && out[2] == -INFINITY, "reduce_rows with 0 columns");
    mxp_reduce_cols(MXP_REDUCE_MEAN, out, NULL, F32, 0, 3);
    CHECK(isnan(out[0]) && isnan(out[2]), "reduce_cols with 0 rows");
}

/* The order of additions depends on n and the ISA only: 1, 2 and 3 threads agree. */
static void test_reduce_threads(void) {
    const size_t n = (1 << 20) + 13;
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = rnd_range(-1, 1);
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        void *X = alloc_dt(dt, n);
        for (size_t i = 0; i < n; i++) put(dt, X, i, x[i]);
        for (int k = 0; k < nisa; k++) {
            if (!set_isa(isas[k])) continue;
            for (int op = 0; op < 4; op++) {
                float r[3];
                for (int t = 0; t < 3; t++) {
                    mxp_set_num_threads(t + 1);
                    mxp_reduce((mxp_reduce_op)op, &r[t], X, dt, n);
                }
                CHECK(bits(r[0]) == bits(r[1]) && bits(r[0]) == bits(r[2]),
                      "reduce %s %s on %s: %.9g %.9g %.9g on 1, 2, 3 threads", red_name[op],
                      mxp_dtype_name(dt), mxp_isa_name(isas[k]), r[0], r[1], r[2]);
            }
        }
        free(X);
    }
    mxp_set_num_threads(2);
    free(x);
}

/* ---- softmax -------------------------------------------------------------- */

/* softmax in fp32: exp ~1 ulp of a difference x - m that carries |x - m| ulps, a sum with
 * O(cols / lanes) roundings, one multiply: ~40 ulps for these shapes. log-softmax: the
 * same as an absolute error. */
static const double SM_RTOL = 1e-5, SM_ATOL = 1e-12, LSM_ATOL = 1e-5;

static void softmax_exact(const float *x, size_t cols, int log_sm, double *y) {
    double m = -INFINITY, s = 0;
    int nan = 0;
    for (size_t j = 0; j < cols; j++) {
        if (isnan(x[j])) nan = 1;
        if (x[j] > m) m = x[j];
    }
    if (m == -INFINITY && !nan) {
        for (size_t j = 0; j < cols; j++) y[j] = log_sm ? -INFINITY : 0.0;
        return;
    }
    if (nan || m == INFINITY) {
        for (size_t j = 0; j < cols; j++) y[j] = NAN;
        return;
    }
    for (size_t j = 0; j < cols; j++) s += exp((double)x[j] - m);
    for (size_t j = 0; j < cols; j++)
        y[j] = log_sm ? ((double)x[j] - m) - log(s) : exp((double)x[j] - m) / s;
}

static void test_softmax(void) {
    static const size_t shapes[][2] = {{1, 1},  {3, 7},    {2, 15},   {2, 16},    {2, 17},
                                       {4, 33}, {3, 1023}, {2, 4097}, {64, 1025}, {1, 50257}};
    const size_t nshapes = sizeof shapes / sizeof shapes[0];
    for (size_t s = 0; s < nshapes; s++) {
        const size_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
        float *x = malloc(n * sizeof(float));
        double *want = malloc(n * sizeof(double));
        for (size_t xd = 0; xd < 3; xd++) {
            const mxp_dtype xt = dtypes[xd];
            for (size_t i = 0; i < n; i++) x[i] = rnd(xt, rnd_range(-10, 10));
            if (rows >= 3) { /* row 1 partly masked, row 2 fully masked */
                for (size_t j = 0; j < cols; j += 3) x[cols + j] = -INFINITY;
                for (size_t j = 0; j < cols; j++) x[2 * cols + j] = -INFINITY;
            }
            void *X = alloc_dt(xt, n);
            for (size_t i = 0; i < n; i++) put(xt, X, i, x[i]);
            for (size_t yd = 0; yd < 3; yd++) {
                const mxp_dtype yt = dtypes[yd];
                void *Y = alloc_dt(yt, n), *R = alloc_dt(yt, n);
                for (int log_sm = 0; log_sm < 2; log_sm++) {
                    mxp_status (*fn)(void *, mxp_dtype, const void *, mxp_dtype, size_t, size_t) =
                        log_sm ? mxp_log_softmax : mxp_softmax;
                    const char *name = log_sm ? "log_softmax" : "softmax";
                    const double atol = log_sm ? LSM_ATOL : SM_ATOL, rtol = log_sm ? 1e-6 : SM_RTOL;
                    for (size_t i = 0; i < rows; i++)
                        softmax_exact(x + i * cols, cols, log_sm, want + i * cols);
                    set_isa(MXP_ISA_REF);
                    fn(R, yt, X, xt, rows, cols);
                    for (int k = 0; k < nisa; k++) {
                        if (!set_isa(isas[k])) continue;
                        CHECK(fn(Y, yt, X, xt, rows, cols) == MXP_OK, "%s", mxp_last_error());
                        size_t bad = 0, first = 0;
                        for (size_t i = 0; i < n; i++) {
                            const float got = get(yt, Y, i);
                            int ok = close_out(yt, got, want[i], atol, rtol) &&
                                     close_out(yt, got, get(yt, R, i), atol, 2 * rtol);
                            if (isinf(want[i]) || want[i] == 0.0)
                                ok = ok && same(got, (float)want[i]);
                            if (!ok && bad++ == 0) first = i;
                        }
                        CHECK(bad == 0,
                              "%s %s->%s %zux%zu on %s: %zu bad, first [%zu]: got %.9g want %.9g",
                              name, mxp_dtype_name(xt), mxp_dtype_name(yt), rows, cols,
                              mxp_isa_name(isas[k]), bad, first, get(yt, Y, first), want[first]);
                        if (yt == F32 && !log_sm) { /* rows that are not fully masked sum to 1 */
                            for (size_t i = 0; i < rows; i++) {
                                if (rows >= 3 && i == 2) continue;
                                double sum = 0;
                                for (size_t j = 0; j < cols; j++) sum += get(yt, Y, i * cols + j);
                                CHECK(fabs(sum - 1.0) <= 1e-5, "softmax row %zu sums to %.9g", i,
                                      sum);
                            }
                        }
                    }
                }
                free(Y);
                free(R);
            }
            free(X);
        }
        free(x);
        free(want);
    }

    /* special rows: a NaN row, a row with +inf, huge values (the shift by the max matters),
     * and in place */
    for (int k = 0; k < nisa; k++) {
        if (!set_isa(isas[k])) continue;
        float r[4][19];
        for (int j = 0; j < 19; j++) {
            r[0][j] = (float)j;
            r[1][j] = (float)j;
            r[2][j] = j == 3 || j == 17 ? 1e30f : -1e30f;
            r[3][j] = j < 18 ? -INFINITY : 5.0f;
        }
        r[0][18] = NAN;
        r[1][5] = INFINITY;
        float y[4][19];
        mxp_softmax(y, F32, r, F32, 4, 19);
        int ok = 1;
        for (int j = 0; j < 19; j++) {
            ok &= isnan(y[0][j]) && isnan(y[1][j]);
            ok &= y[2][j] == (j == 3 || j == 17 ? 0.5f : 0.0f);
            ok &= y[3][j] == (j == 18 ? 1.0f : 0.0f);
        }
        CHECK(ok, "softmax special rows on %s", mxp_isa_name(isas[k]));
        mxp_log_softmax(y, F32, r, F32, 4, 19);
        CHECK(fabsf(y[2][3] + logf(2.0f)) < 1e-6f && y[2][0] < -1e29f && y[3][0] == -INFINITY &&
                  y[3][18] == 0.0f && isnan(y[0][0]),
              "log_softmax special rows on %s", mxp_isa_name(isas[k]));

        const size_t rows = 5, cols = 1023, n = rows * cols;
        for (size_t d = 0; d < 3; d++) {
            const mxp_dtype dt = dtypes[d];
            void *A = alloc_dt(dt, n), *B = alloc_dt(dt, n);
            for (int log_sm = 0; log_sm < 2; log_sm++) {
                for (size_t i = 0; i < n; i++) put(dt, A, i, rnd_range(-5, 5));
                if (log_sm)
                    mxp_log_softmax(B, dt, A, dt, rows, cols);
                else
                    mxp_softmax(B, dt, A, dt, rows, cols);
                CHECK((log_sm ? mxp_log_softmax : mxp_softmax)(A, dt, A, dt, rows, cols) == MXP_OK,
                      "in place: %s", mxp_last_error());
                CHECK(memcmp(A, B, n * esize(dt)) == 0, "%s in place differs (%s, %s)",
                      log_sm ? "log_softmax" : "softmax", mxp_dtype_name(dt),
                      mxp_isa_name(isas[k]));
            }
            free(A);
            free(B);
        }
    }
}

/* ---- errors --------------------------------------------------------------- */

#define EXPECT_ERR(call, code)                                                                     \
    do {                                                                                           \
        mxp_clear_error();                                                                         \
        const mxp_status st_ = (call);                                                             \
        CHECK(st_ == (code) && mxp_last_error()[0] != '\0', "%s gave %d (%s)", #call, (int)st_,    \
              mxp_last_error());                                                                   \
    } while (0)

static void test_errors(void) {
    float a[16] = {0}, b[16] = {0}, y[16];
    int found = 0;
    const mxp_dtype bad = (mxp_dtype)7;
    EXPECT_ERR(mxp_add(NULL, a, b, F32, 4), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_add(y, NULL, b, F32, 4), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_add(y, a, NULL, F32, 4), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_add(y, a, b, bad, 4), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_add(a + 1, a, b, F32, 4), MXP_ERR_INVALID_ARG); /* overlap, not aliasing */
    EXPECT_ERR(mxp_mul(y, a, b, F16, SIZE_MAX / 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_scale(NULL, a, 2.0f, BF16, 1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_relu(y, a, bad, 1), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_gelu_tanh(y, NULL, F32, 3), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_relu_backward(y, a, NULL, F32, 3), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_gelu_tanh_backward(y, a, b, (mxp_dtype)-1, 3), MXP_ERR_DTYPE);
    CHECK(strstr(mxp_last_error(), "mxp_gelu_tanh_backward") != NULL, "message names the call: %s",
          mxp_last_error());
    CHECK(mxp_add(NULL, NULL, NULL, F32, 0) == MXP_OK, "n = 0 with NULL is fine");
    CHECK(mxp_add(y, y, y, F32, 16) == MXP_OK, "exact aliasing is fine");

    float r;
    EXPECT_ERR(mxp_reduce((mxp_reduce_op)9, &r, a, F32, 4), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_reduce(MXP_REDUCE_SUM, NULL, a, F32, 4), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_reduce(MXP_REDUCE_SUM, &r, NULL, F32, 4), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_reduce(MXP_REDUCE_SUM, &r, a, bad, 4), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_reduce(MXP_REDUCE_SUM, NULL, NULL, F32, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_reduce_rows(MXP_REDUCE_MAX, NULL, a, F32, 2, 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_reduce_cols(MXP_REDUCE_MAX, y, NULL, F32, 2, 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_reduce_cols(MXP_REDUCE_MAX, y, a, F32, SIZE_MAX / 2, 4), MXP_ERR_INVALID_ARG);

    EXPECT_ERR(mxp_softmax(y, F32, NULL, F32, 2, 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_softmax(y, bad, a, F32, 2, 2), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_log_softmax(a, BF16, a, F32, 2, 2),
               MXP_ERR_INVALID_ARG); /* y == x, dtypes differ */
    EXPECT_ERR(mxp_softmax(a + 1, F32, a, F32, 2, 2), MXP_ERR_INVALID_ARG);

    EXPECT_ERR(mxp_unscale_check(y, F32, a, F32, 4, 1.0f, NULL), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_unscale_check(NULL, F32, a, F32, 4, 1.0f, &found), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_unscale_check(y, bad, a, F32, 4, 1.0f, &found), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_unscale_check(y, F32, a, bad, 4, 1.0f, &found), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_unscale_check(a, F32, a, F16, 4, 1.0f, &found), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_unscale_check(a + 1, F32, a, F32, 4, 1.0f, &found), MXP_ERR_INVALID_ARG);
    CHECK(found == 0, "a failed call left found_inf alone");
}

int main(void) {
    const mxp_isa saved = mxp_isa_active();
    for (int i = 0; i < MXP_ISA_COUNT; i++)
        if (mxp_cpu_supports((mxp_isa)i)) isas[nisa++] = (mxp_isa)i;
    printf("ISA families tested:");
    for (int i = 0; i < nisa; i++) printf(" %s", mxp_isa_name(isas[i]));
    printf("; threads: %d (OpenMP %s)\n", 2, mxp_have_openmp() ? "on" : "off");
    mxp_set_num_threads(2); /* the large sizes take the threaded path even on one core */

    static const test_part parts[] = {{"exp", test_exp},
                                      {"eltwise random", test_eltwise_random},
                                      {"eltwise special", test_eltwise_special},
                                      {"eltwise in place", test_eltwise_inplace},
                                      {"unscale", test_unscale},
                                      {"reduce", test_reduce},
                                      {"reduce rows/cols", test_reduce_rows_cols},
                                      {"reduce threads", test_reduce_threads},
                                      {"softmax", test_softmax},
                                      {"errors", test_errors}};
    run_parts(parts, sizeof parts / sizeof parts[0]);

    mxp_isa_set(saved);
    return check_exit("test_kernels");
}
