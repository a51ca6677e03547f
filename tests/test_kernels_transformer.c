/*
 * test_kernels_transformer.c - the GPT kernels (layernorm, causal attention, embedding) in
 * F32, BF16 and F16 against plain double-precision loops written here, on every ISA family
 * this CPU runs and on 1 and 2 threads (bit-identical across thread counts); causal masking;
 * their error paths; and the autograd ops built on them (embedding, layernorm, attention,
 * linear / linear_kn on 3-D inputs, cross-entropy on (B, T, V) logits, a tied LM head)
 * against central finite differences. Not speed (bench/attention_step.c).
 *
 * Tolerances, as a fraction of the largest reference magnitude of each output: fp32 results
 * differ from the double loops by fp32 rounding of sums of at most T (or cols) terms and the
 * vector exp (~1 ulp): measured <= 4e-7, allowed 2e-6 (4e-6 for gradients). 16-bit results
 * round the output once (2^-9 for bf16, 2^-12 for fp16, relative) and attention also rounds P
 * (and dS in backward) to dt before the second product, about one more such unit of the
 * largest term: measured <= 4.5e-3 (bf16) and 4.5e-4 (fp16), allowed 4 units, 8e-3 and 1e-3
 * (1.2e-2 and 1.5e-3 for gradients, whose inputs went through two roundings).
 * MIXPREC_TEST_VERBOSE=1 prints every measured error.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/base_impl.h"
#include "check.h"
#include "mixprec.h"
#include "test_util.h"

#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

static const mxp_dtype dtypes[] = {F32, BF16, F16};

static mxp_isa isas[MXP_ISA_COUNT];
static int nisa;

static uint64_t rng = 0x3c6ef372fe94f82bull;

static float rnd_range(float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(splitmix64(&rng) >> 11) * 0x1p-53);
}

/* n random values in [lo, hi) rounded to dt */
static void *rnd_buf(mxp_dtype dt, size_t n, float lo, float hi) {
    void *p = xmalloc(n * esize(dt));
    for (size_t i = 0; i < n; i++) put(dt, p, i, rnd_range(lo, hi));
    return p;
}

/* the n values of p (dtype dt) in double */
static double *to_d(mxp_dtype dt, const void *p, size_t n) {
    double *d = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = get(dt, p, i);
    return d;
}

static double tol_fwd(mxp_dtype dt) { return dt == F32 ? 2e-6 : dt == BF16 ? 8e-3 : 1e-3; }
static double tol_bwd(mxp_dtype dt) { return dt == F32 ? 4e-6 : dt == BF16 ? 1.2e-2 : 1.5e-3; }

/* max |got - ref| <= tol * max(1, max |ref|) over n values (got in dt) */
static void expect_close(const char *what, const char *conf, mxp_dtype dt, const void *got,
                         size_t gld, const double *ref, size_t n, double tol) {
    double scale = 1.0, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        const double g = gld ? get(dt, got, i) : ((const float *)got)[i];
        const double e = fabs(g - ref[i]);
        if (!(e <= worst)) {
            worst = isnan(e) ? INFINITY : e;
            at = i;
        }
    }
    if (getenv("MIXPREC_TEST_VERBOSE"))
        printf("%-40s %-5s %-14s error %.3g of scale %.3g (tolerance %.3g)\n", what,
               mxp_dtype_name(dt), conf, worst / scale, scale, tol);
    CHECK(worst <= tol * scale, "%s [%s %s]: max error %g at %zu (ref %g) > %g", what,
          mxp_dtype_name(dt), conf, worst, at, ref[at], tol * scale);
}

#define EXPECT_ERR(call, want)                                                                     \
    do {                                                                                           \
        const mxp_status st_ = (call);                                                             \
        CHECK(st_ == (want), "%s returned %d (%s), want %d", #call, (int)st_, mxp_status_str(st_), \
              (int)(want));                                                                        \
    } while (0)

/* ---- double references --------------------------------------------------------------- */

/* attention forward: out (B, T, C), P (B, NH, T, T) from qkv (B, T, 3C) */
static void attn_ref(double *out, double *P, const double *qkv, int64_t B, int64_t T, int64_t C,
                     int64_t NH) {
    const int64_t hd = C / NH;
    const double sc = 1.0 / sqrt((double)hd);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++)
            for (int64_t i = 0; i < T; i++) {
                const double *q = qkv + (b * T + i) * 3 * C + h * hd;
                double *p = P + ((b * NH + h) * T + i) * T, m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    const double *k = qkv + (b * T + j) * 3 * C + C + h * hd;
                    double s = 0;
                    for (int64_t d = 0; d < hd; d++) s += q[d] * k[d];
                    p[j] = j <= i ? s * sc : -INFINITY;
                    m = fmax(m, p[j]);
                }
                for (int64_t j = 0; j < T; j++) sum += p[j] = j <= i ? exp(p[j] - m) : 0.0;
                for (int64_t j = 0; j < T; j++) p[j] /= sum;
                for (int64_t d = 0; d < hd; d++) {
                    double o = 0;
                    for (int64_t j = 0; j <= i; j++)
                        o += p[j] * qkv[(b * T + j) * 3 * C + 2 * C + h * hd + d];
                    out[(b * T + i) * C + h * hd + d] = o;
                }
            }
}

/* attention backward: dqkv (B, T, 3C) from dout (B, T, C), qkv and the reference P */
static void attn_bwd_ref(double *dqkv, const double *dout, const double *qkv, const double *P,
                         int64_t B, int64_t T, int64_t C, int64_t NH) {
    const int64_t hd = C / NH;
    const double sc = 1.0 / sqrt((double)hd);
    memset(dqkv, 0, (size_t)(B * T * 3 * C) * sizeof(double));
    double *dp = xmalloc((size_t)T * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++)
            for (int64_t i = 0; i < T; i++) {
                const double *p = P + ((b * NH + h) * T + i) * T;
                const double *go = dout + (b * T + i) * C + h * hd;
                double dot = 0;
                for (int64_t j = 0; j <= i; j++) {
                    const double *v = qkv + (b * T + j) * 3 * C + 2 * C + h * hd;
                    double s = 0;
                    for (int64_t d = 0; d < hd; d++) s += go[d] * v[d];
                    dp[j] = s;
                    dot += s * p[j];
                }
                for (int64_t j = 0; j <= i; j++) {
                    const double ds = p[j] * (dp[j] - dot) * sc;
                    const double *q = qkv + (b * T + i) * 3 * C + h * hd;
                    const double *k = qkv + (b * T + j) * 3 * C + C + h * hd;
                    double *dq = dqkv + (b * T + i) * 3 * C + h * hd;
                    double *dk = dqkv + (b * T + j) * 3 * C + C + h * hd;
                    double *dv = dqkv + (b * T + j) * 3 * C + 2 * C + h * hd;
                    for (int64_t d = 0; d < hd; d++) {
                        dq[d] += ds * k[d];
                        dk[d] += ds * q[d];
                        dv[d] += p[j] * go[d];
                    }
                }
            }
    free(dp);
}

/* ---- configurations ------------------------------------------------------------------- */

static void set_conf(int isa, int nt, char *name, size_t size) {
    CHECK(mxp_isa_set(isas[isa]) == MXP_OK, "mxp_isa_set: %s", mxp_last_error());
    mxp_set_num_threads(nt);
    snprintf(name, size, "%s/%dt", mxp_isa_name(isas[isa]), nt);
}

/* ---- attention ------------------------------------------------------------------------ */

static void test_attention_shape(int64_t B, int64_t T, int64_t C, int64_t NH) {
    const size_t nq = (size_t)(B * T * 3 * C), no = (size_t)(B * T * C);
    const size_t np = (size_t)(B * NH * T * T);
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        const size_t es = esize(dt);
        void *qkv = rnd_buf(dt, nq, -1.5f, 1.5f), *dout = rnd_buf(dt, no, -1, 1);
        double *qd = to_d(dt, qkv, nq), *dod = to_d(dt, dout, no);
        double *oref = xmalloc(no * sizeof(double)), *pref = xmalloc(np * sizeof(double));
        double *dref = xmalloc(nq * sizeof(double));
        attn_ref(oref, pref, qd, B, T, C, NH);
        attn_bwd_ref(dref, dod, qd, pref, B, T, C, NH);
        void *out = xmalloc(no * es), *att = xmalloc(np * es), *dq = xmalloc(nq * es);
        void *out1 = xmalloc(no * es), *att1 = xmalloc(np * es), *dq1 = xmalloc(nq * es);
        void *oev = xmalloc(no * es);
        for (int i = 0; i < nisa; i++)
            for (int nt = 1; nt <= 2; nt++) {
                char conf[64], what[96];
                set_conf(i, nt, conf, sizeof conf);
                snprintf(what, sizeof what, "attention B%lld T%lld C%lld NH%lld", (long long)B,
                         (long long)T, (long long)C, (long long)NH);
                CHECK(mxp_attention_forward(out, att, qkv, dt, B, T, C, NH) == MXP_OK, "%s",
                      mxp_last_error());
                CHECK(mxp_attention_backward(dq, dout, qkv, att, dt, B, T, C, NH) == MXP_OK, "%s",
                      mxp_last_error());
                CHECK(mxp_attention_forward(oev, NULL, qkv, dt, B, T, C, NH) == MXP_OK, "%s",
                      mxp_last_error());
                expect_close(what, conf, dt, out, 1, oref, no, tol_fwd(dt));
                expect_close("attention P", conf, dt, att, 1, pref, np, tol_fwd(dt));
                expect_close("attention dqkv", conf, dt, dq, 1, dref, nq, tol_bwd(dt));
                CHECK(memcmp(out, oev, no * es) == 0, "attention [%s %s]: att = NULL differs",
                      mxp_dtype_name(dt), conf);
                size_t above = 0; /* P is exactly 0 above the diagonal */
                for (size_t r = 0; r < (size_t)(B * NH * T); r++)
                    for (size_t j = r % (size_t)T + 1; j < (size_t)T; j++)
                        above += get(dt, att, r * (size_t)T + j) != 0.0f;
                CHECK(above == 0, "attention [%s %s]: %zu nonzero P above the diagonal",
                      mxp_dtype_name(dt), conf, above);
                if (nt == 1) {
                    memcpy(out1, out, no * es), memcpy(att1, att, np * es);
                    memcpy(dq1, dq, nq * es);
                } else {
                    CHECK(memcmp(out, out1, no * es) == 0 && memcmp(att, att1, np * es) == 0 &&
                              memcmp(dq, dq1, nq * es) == 0,
                          "attention [%s %s]: 1 and 2 threads differ", mxp_dtype_name(dt), conf);
                }
            }
        /* causal: changing the last token's q, k, v changes no earlier output */
        for (int64_t b = 0; b < B; b++)
            for (int64_t c = 0; c < 3 * C; c++)
                put(dt, qkv, (size_t)((b * T + T - 1) * 3 * C + c), rnd_range(-3, 3));
        CHECK(mxp_attention_forward(out1, NULL, qkv, dt, B, T, C, NH) == MXP_OK, "%s",
              mxp_last_error());
        int same = 1;
        for (int64_t b = 0; b < B; b++)
            same &=
                memcmp((char *)out + (size_t)(b * T * C) * es,
                       (char *)out1 + (size_t)(b * T * C) * es, (size_t)((T - 1) * C) * es) == 0;
        CHECK(same, "attention [%s]: a future token changed an earlier output", mxp_dtype_name(dt));
        free(qkv), free(dout), free(qd), free(dod), free(oref), free(pref), free(dref);
        free(out), free(att), free(dq), free(out1), free(att1), free(dq1), free(oev);
    }
}

static void test_attention(void) {
    test_attention_shape(2, 37, 24, 3);  /* hd 8, T not a multiple of any register block */
    test_attention_shape(1, 70, 128, 2); /* hd 64 as in GPT-2 */
    test_attention_shape(3, 1, 4, 4);    /* T = 1, hd = 1 */

    /* error paths */
    char buf[64];
    float q[3 * 6] = {0}, o[6], a[4], dq[18];
    set_conf(nisa - 1, 2, buf, sizeof buf);
    EXPECT_ERR(mxp_attention_forward(o, a, q, F32, 1, 1, 6, 4), MXP_ERR_INVALID_ARG); /* C%NH */
    EXPECT_ERR(mxp_attention_forward(o, a, q, F32, 0, 1, 6, 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_attention_forward(NULL, a, q, F32, 1, 1, 6, 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_attention_forward(o, a, q, (mxp_dtype)7, 1, 1, 6, 2), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_attention_backward(dq, o, q, NULL, F32, 1, 1, 6, 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_attention_backward(dq, o, q, a, F32, 1, 1, 6, 5), MXP_ERR_INVALID_ARG);
}

/* ---- layernorm ------------------------------------------------------------------------ */

static void test_layernorm_shape(size_t rows, size_t cols) {
    const size_t n = rows * cols;
    const float eps = 1e-5f;
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        const size_t es = esize(dt);
        void *x = rnd_buf(dt, n, -2, 3), *w = rnd_buf(dt, cols, 0.5f, 1.5f);
        void *b = rnd_buf(dt, cols, -0.5f, 0.5f), *dy = rnd_buf(dt, n, -1, 1);
        double *xd = to_d(dt, x, n), *wd = to_d(dt, w, cols), *bd = to_d(dt, b, cols);
        double *dyd = to_d(dt, dy, n);
        double *yr = xmalloc(n * sizeof(double)), *dxr = xmalloc(n * sizeof(double));
        double *mr = xmalloc(rows * sizeof(double)), *rr = xmalloc(rows * sizeof(double));
        double *dwr = xmalloc(cols * sizeof(double)), *dbr = xmalloc(cols * sizeof(double));
        for (size_t j = 0; j < cols; j++) dwr[j] = 0.25, dbr[j] = -0.5; /* the += base */
        for (size_t r = 0; r < rows; r++) {
            const double *xr = xd + r * cols, *g = dyd + r * cols;
            double m = 0, v = 0, a = 0, c = 0;
            for (size_t j = 0; j < cols; j++) m += xr[j];
            m /= (double)cols;
            for (size_t j = 0; j < cols; j++) v += (xr[j] - m) * (xr[j] - m);
            const double rs = 1.0 / sqrt(v / (double)cols + eps);
            mr[r] = m, rr[r] = rs;
            for (size_t j = 0; j < cols; j++) {
                const double xh = (xr[j] - m) * rs;
                yr[r * cols + j] = xh * wd[j] + bd[j];
                a += g[j] * wd[j];
                c += g[j] * wd[j] * xh;
                dwr[j] += g[j] * xh;
                dbr[j] += g[j];
            }
            a /= (double)cols, c /= (double)cols;
            for (size_t j = 0; j < cols; j++)
                dxr[r * cols + j] = rs * (g[j] * wd[j] - a - (xr[j] - m) * rs * c);
        }
        void *y = xmalloc(n * es), *dx = xmalloc(n * es), *y1 = xmalloc(n * es);
        void *dx1 = xmalloc(n * es);
        float *mean = xmalloc(rows * 4), *rstd = xmalloc(rows * 4);
        float *dw = xmalloc(cols * 4), *db = xmalloc(cols * 4);
        float *dw1 = xmalloc(cols * 4), *db1 = xmalloc(cols * 4);
        for (int i = 0; i < nisa; i++)
            for (int nt = 1; nt <= 2; nt++) {
                char conf[64];
                set_conf(i, nt, conf, sizeof conf);
                for (size_t j = 0; j < cols; j++) dw[j] = 0.25f, db[j] = -0.5f;
                CHECK(mxp_layernorm_forward(y, mean, rstd, x, w, b, dt, rows, cols, eps) == MXP_OK,
                      "%s", mxp_last_error());
                CHECK(mxp_layernorm_backward(dx, dw, db, dy, x, mean, rstd, w, dt, rows, cols) ==
                          MXP_OK,
                      "%s", mxp_last_error());
                expect_close("layernorm y", conf, dt, y, 1, yr, n, tol_fwd(dt));
                expect_close("layernorm mean", conf, F32, mean, 0, mr, rows, 1e-6);
                expect_close("layernorm rstd", conf, F32, rstd, 0, rr, rows, 1e-6);
                expect_close("layernorm dx", conf, dt, dx, 1, dxr, n, tol_bwd(dt));
                /* dw, db: fp32 sums of rows products of dt inputs */
                expect_close("layernorm dw", conf, F32, dw, 0, dwr, cols, 2e-7 * (double)rows);
                expect_close("layernorm db", conf, F32, db, 0, dbr, cols, 2e-7 * (double)rows);
                if (nt == 1) {
                    memcpy(y1, y, n * es), memcpy(dx1, dx, n * es);
                    memcpy(dw1, dw, cols * 4), memcpy(db1, db, cols * 4);
                } else {
                    CHECK(memcmp(y, y1, n * es) == 0 && memcmp(dx, dx1, n * es) == 0 &&
                              memcmp(dw, dw1, cols * 4) == 0 && memcmp(db, db1, cols * 4) == 0,
                          "layernorm [%s %s]: 1 and 2 threads differ", mxp_dtype_name(dt), conf);
                }
            }
        /* dw, db may be NULL; mean, rstd may be NULL in forward */
        CHECK(mxp_layernorm_forward(y1, NULL, NULL, x, w, b, dt, rows, cols, eps) == MXP_OK &&
                  memcmp(y, y1, n * es) == 0,
              "layernorm without statistics");
        CHECK(mxp_layernorm_backward(dx1, NULL, NULL, dy, x, mean, rstd, w, dt, rows, cols) ==
                      MXP_OK &&
                  memcmp(dx, dx1, n * es) == 0,
              "layernorm backward without dw, db");
        free(x), free(w), free(b), free(dy), free(xd), free(wd), free(bd), free(dyd), free(yr);
        free(dxr), free(mr), free(rr), free(dwr), free(dbr), free(y), free(dx), free(y1);
        free(dx1), free(mean), free(rstd), free(dw), free(db), free(dw1), free(db1);
    }
}

static void test_layernorm(void) {
    test_layernorm_shape(37, 50);   /* odd width: masked tails */
    test_layernorm_shape(1000, 96); /* enough rows for two threads and many chunks */
    float x[8] = {0}, y[8], m[2], r[2], w[4] = {1, 1, 1, 1}, b[4] = {0};
    EXPECT_ERR(mxp_layernorm_forward(y, m, r, x, w, b, F32, 2, 4, 0.0f), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_layernorm_forward(y, m, r, x, NULL, b, F32, 2, 4, 1e-5f), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_layernorm_forward(x, m, r, x, w, b, F32, 2, 4, 1e-5f), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_layernorm_forward(y, m, r, x, w, b, (mxp_dtype)9, 2, 4, 1e-5f), MXP_ERR_DTYPE);
    /* a constant row: var 0, y = b exactly */
    CHECK(mxp_layernorm_forward(y, m, r, x, w, b, F32, 2, 4, 1e-5f) == MXP_OK && y[3] == 0.0f,
          "constant row");
}

/* ---- embedding ------------------------------------------------------------------------ */

static void test_embedding(void) {
    const int64_t B = 4, T = 64, C = 520, V = 50;
    const size_t rows = (size_t)(B * T), n = rows * (size_t)C;
    int32_t *tok = xmalloc(rows * sizeof(int32_t));
    for (size_t r = 0; r < rows; r++) tok[r] = (int32_t)(splitmix64(&rng) % (uint64_t)V);
    tok[5] = (int32_t)V - 1;
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        const size_t es = esize(dt);
        void *wte = rnd_buf(dt, (size_t)(V * C), -1, 1), *wpe = rnd_buf(dt, (size_t)(T * C), -1, 1);
        void *dx = rnd_buf(dt, n, -1, 1), *x = xmalloc(n * es), *xr = xmalloc(n * es);
        for (size_t r = 0; r < rows; r++) /* one fp32 add, one rounding */
            for (size_t c = 0; c < (size_t)C; c++)
                put(dt, xr, r * (size_t)C + c,
                    get(dt, wte, (size_t)tok[r] * (size_t)C + c) +
                        get(dt, wpe, (r % (size_t)T) * (size_t)C + c));
        double *dter = xmalloc((size_t)(V * C) * sizeof(double));
        double *dper = xmalloc((size_t)(T * C) * sizeof(double));
        for (size_t i = 0; i < (size_t)(V * C); i++) dter[i] = 1.0;
        for (size_t i = 0; i < (size_t)(T * C); i++) dper[i] = -1.0;
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < (size_t)C; c++) {
                const double g = get(dt, dx, r * (size_t)C + c);
                dter[(size_t)tok[r] * (size_t)C + c] += g;
                dper[(r % (size_t)T) * (size_t)C + c] += g;
            }
        float *dte = xmalloc((size_t)(V * C) * 4), *dpe = xmalloc((size_t)(T * C) * 4);
        float *dte1 = xmalloc((size_t)(V * C) * 4), *dpe1 = xmalloc((size_t)(T * C) * 4);
        for (int i = 0; i < nisa; i++)
            for (int nt = 1; nt <= 2; nt++) {
                char conf[64];
                set_conf(i, nt, conf, sizeof conf);
                for (size_t j = 0; j < (size_t)(V * C); j++) dte[j] = 1.0f;
                for (size_t j = 0; j < (size_t)(T * C); j++) dpe[j] = -1.0f;
                CHECK(mxp_embedding_forward(x, tok, wte, wpe, dt, B, T, C, V) == MXP_OK, "%s",
                      mxp_last_error());
                CHECK(memcmp(x, xr, n * es) == 0, "embedding [%s %s]: x", mxp_dtype_name(dt), conf);
                CHECK(mxp_embedding_backward(dte, dpe, dx, tok, dt, B, T, C, V) == MXP_OK, "%s",
                      mxp_last_error());
                /* sums of up to B T terms of magnitude <= 1 in fp32 */
                expect_close("embedding dwte", conf, F32, dte, 0, dter, (size_t)(V * C), 1e-6 * T);
                expect_close("embedding dwpe", conf, F32, dpe, 0, dper, (size_t)(T * C), 1e-6 * B);
                if (nt == 1) {
                    memcpy(dte1, dte, (size_t)(V * C) * 4), memcpy(dpe1, dpe, (size_t)(T * C) * 4);
                } else {
                    CHECK(memcmp(dte, dte1, (size_t)(V * C) * 4) == 0 &&
                              memcmp(dpe, dpe1, (size_t)(T * C) * 4) == 0,
                          "embedding [%s %s]: 1 and 2 threads differ", mxp_dtype_name(dt), conf);
                }
            }
        tok[77] = (int32_t)V; /* out of range: an error before any work */
        put(dt, x, 0, 123.0f);
        EXPECT_ERR(mxp_embedding_forward(x, tok, wte, wpe, dt, B, T, C, V), MXP_ERR_INVALID_ARG);
        CHECK(get(dt, x, 0) == 123.0f, "embedding: work done before the token check");
        tok[77] = -1;
        EXPECT_ERR(mxp_embedding_forward(x, tok, wte, wpe, dt, B, T, C, V), MXP_ERR_INVALID_ARG);
        tok[77] = 0;
        free(wte), free(wpe), free(dx), free(x), free(xr), free(dter), free(dper), free(dte);
        free(dpe), free(dte1), free(dpe1);
    }
    EXPECT_ERR(mxp_embedding_forward(NULL, tok, tok, tok, F32, 1, 1, 1, 1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_embedding_backward(NULL, NULL, tok, tok, (mxp_dtype)5, 1, 1, 1, 1),
               MXP_ERR_DTYPE);
    free(tok);
}

/* ---- the ops: a tiny GPT block against finite differences ----------------------------- */

enum { GB = 2, GT = 5, GC = 8, GNH = 2, GV = 11, GBLOCK = 7 };

/* a parameter: a persistent fp32 tensor with a gradient, as a module owns it */
typedef struct param {
    mxp_tensor *t, *g;
    mxp_var v;
} param;

static void param_init(param *p, mxp_dtype dt, int nd, const int64_t *shape, float lo, float hi) {
    mxp_tensor_create(&p->t, dt, nd, shape);
    mxp_tensor_create(&p->g, dt, nd, shape);
    for (int64_t i = 0; i < mxp_tensor_numel(p->t); i++)
        put(dt, p->t->data, (size_t)i, rnd_range(lo, hi));
    p->v = (mxp_var){.value = p->t, .grad = p->g, .requires_grad = 1, .name = "param"};
}

enum { P_WTE, P_WPE, P_LNW, P_LNB, P_WATT, P_BATT, P_WPROJ, P_LN2W, P_LN2B, P_COUNT };

static const int32_t g_tok[GB * GT] = {1, 4, 4, 10, 0, 3, 3, 7, 1, 9};
static const int32_t g_lab[GB * GT] = {4, 4, 10, 0, 2, 3, 7, 1, 9, 6};

/* loss of the block: x = emb(tok); h = ln(x); a = attn(linear_kn(h, Watt, batt));
 * r = x + linear(a, Wproj); logits = linear(ln2(r), wte) (tied); CE(logits, labels) */
static mxp_status block_loss(mxp_graph_t *g, param *p, mxp_var **loss) {
    mxp_var *x, *h, *qkv, *a, *pr, *r, *h2, *logits;
    MXP_TRY(mxp_op_embedding(g, &x, g_tok, GB, GT, &p[P_WTE].v, &p[P_WPE].v));
    MXP_TRY(mxp_op_layernorm(g, &h, x, &p[P_LNW].v, &p[P_LNB].v, 1e-5f));
    MXP_TRY(mxp_op_linear_kn(g, &qkv, h, &p[P_WATT].v, &p[P_BATT].v, MXP_ACT_NONE));
    MXP_TRY(mxp_op_attention(g, &a, qkv, GNH));
    MXP_TRY(mxp_op_linear(g, &pr, a, &p[P_WPROJ].v, NULL, MXP_ACT_NONE));
    MXP_TRY(mxp_op_add(g, &r, x, pr));
    MXP_TRY(mxp_op_layernorm(g, &h2, r, &p[P_LN2W].v, &p[P_LN2B].v, 1e-5f));
    MXP_TRY(mxp_op_linear(g, &logits, h2, &p[P_WTE].v, NULL, MXP_ACT_NONE));
    return mxp_op_cross_entropy(g, loss, logits, g_lab);
}

static double eval_loss(mxp_graph_t *g, param *p) {
    mxp_var *loss;
    mxp_graph_reset(g);
    mxp_graph_set_training(g, 0);
    CHECK(block_loss(g, p, &loss) == MXP_OK, "eval: %s", mxp_last_error());
    const double l = *(const float *)loss->value->data;
    mxp_graph_set_training(g, 1);
    return l;
}

static int prof_seen;
static void prof_fn(const char *op, double f, double b, int64_t calls, void *user) {
    (void)f, (void)b, (void)calls, (void)user;
    static const char *want[] = {"embedding", "layernorm", "linear",
                                 "attention", "add",       "cross_entropy"};
    for (int i = 0; i < 6; i++)
        if (strcmp(op, want[i]) == 0) prof_seen |= 1 << i;
}

static void test_ops(void) {
    char conf[64];
    set_conf(nisa - 1, 2, conf, sizeof conf);
    param p[P_COUNT];
    param_init(&p[P_WTE], F32, 2, (int64_t[]){GV, GC}, -1, 1);
    param_init(&p[P_WPE], F32, 2, (int64_t[]){GBLOCK, GC}, -0.5f, 0.5f);
    param_init(&p[P_LNW], F32, 1, (int64_t[]){GC}, 0.5f, 1.5f);
    param_init(&p[P_LNB], F32, 1, (int64_t[]){GC}, -0.3f, 0.3f);
    param_init(&p[P_WATT], F32, 2, (int64_t[]){GC, 3 * GC}, -0.6f, 0.6f);
    param_init(&p[P_BATT], F32, 1, (int64_t[]){3 * GC}, -0.3f, 0.3f);
    param_init(&p[P_WPROJ], F32, 2, (int64_t[]){GC, GC}, -0.5f, 0.5f);
    param_init(&p[P_LN2W], F32, 1, (int64_t[]){GC}, 0.5f, 1.5f);
    param_init(&p[P_LN2B], F32, 1, (int64_t[]){GC}, -0.3f, 0.3f);
    mxp_graph_t *g;
    CHECK(mxp_graph_create(&g, F32) == MXP_OK, "graph");
    mxp_graph_set_profiling(g, 1);
    mxp_var *loss;
    CHECK(block_loss(g, p, &loss) == MXP_OK, "block: %s", mxp_last_error());
    for (int i = 0; i < P_COUNT; i++) p[i].v.has_grad = 0;
    CHECK(mxp_graph_backward(g, loss, 1.0f) == MXP_OK, "backward: %s", mxp_last_error());
    mxp_graph_profile(g, prof_fn, NULL);
    CHECK(prof_seen == 63, "profiler op names: mask %#x", prof_seen);
    /* central differences in double on 12 elements spread over each parameter (every row of
     * the tied wte is among them: the rows the batch used and some it did not); the forward
     * is fp32, so h is large enough that its rounding (~1e-7 |loss| / h) stays small */
    const double h = 1e-2;
    mxp_set_num_threads(1);
    for (int i = 0; i < P_COUNT; i++) {
        float *w = p[i].t->data;
        const float *gr = p[i].g->data;
        double worst = 0, at = 0;
        const int64_t numel = mxp_tensor_numel(p[i].t), step = numel > 12 ? numel / 12 : 1;
        for (int64_t j = i == P_WTE ? 3 : 0; j < numel; j += i == P_WTE ? GC + 1 : step) {
            const float w0 = w[j];
            w[j] = (float)(w0 + h);
            const double lp = eval_loss(g, p);
            w[j] = (float)(w0 - h);
            const double lm = eval_loss(g, p);
            w[j] = w0;
            const double fd = (lp - lm) / (((double)(float)(w0 + h)) - (double)(float)(w0 - h));
            const double e = fabs(fd - gr[j]) / fmax(1e-2, fabs(fd));
            if (e > worst) worst = e, at = (double)j;
        }
        CHECK(worst < 1e-2, "op gradient of parameter %d: worst relative error %g at %g", i, worst,
              at);
    }
    mxp_set_num_threads(2);
    /* wpe rows past T got zeros (the gradient held nothing before) */
    const float *gpe = p[P_WPE].g->data;
    int zeros = 1;
    for (int64_t j = GT * GC; j < GBLOCK * GC; j++) zeros &= gpe[j] == 0.0f;
    CHECK(zeros, "wpe rows past T must have zero gradient");

    /* the same block in bf16 and fp16: close to fp32 */
    size_t peak[3] = {0};
    float loss32 = 0;
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        param q[P_COUNT];
        for (int i = 0; i < P_COUNT; i++) {
            mxp_tensor_create(&q[i].t, dt, p[i].t->ndim, p[i].t->shape);
            mxp_tensor_create(&q[i].g, dt, p[i].t->ndim, p[i].t->shape);
            mxp_convert(q[i].t->data, dt, p[i].t->data, F32, (size_t)mxp_tensor_numel(p[i].t));
            q[i].v = (mxp_var){.value = q[i].t, .grad = q[i].g, .requires_grad = 1};
        }
        mxp_graph_t *g2;
        CHECK(mxp_graph_create(&g2, dt) == MXP_OK, "graph");
        mxp_var *l2;
        CHECK(block_loss(g2, q, &l2) == MXP_OK, "block %s: %s", mxp_dtype_name(dt),
              mxp_last_error());
        CHECK(mxp_graph_backward(g2, l2, 1.0f) == MXP_OK, "backward %s", mxp_dtype_name(dt));
        const float lv = *(const float *)l2->value->data;
        if (d == 0) loss32 = lv;
        CHECK(fabs(lv - loss32) <= 0.05 * fabs(loss32), "loss %s %g vs fp32 %g", mxp_dtype_name(dt),
              (double)lv, (double)loss32);
        peak[d] = mxp_arena_peak(mxp_graph_arena(g2));
        mxp_graph_free(g2);
        for (int i = 0; i < P_COUNT; i++) mxp_tensor_free(q[i].t), mxp_tensor_free(q[i].g);
    }
    printf("block arena peak: fp32 %zu, bf16 %zu, fp16 %zu bytes\n", peak[0], peak[1], peak[2]);

    /* attention alone at a real width: what it keeps in the arena (values, P, gradients) is
     * all in the working dtype, so bf16 needs at most 0.55 of fp32's activation memory */
    for (size_t d = 0; d < 2; d++) {
        mxp_graph_t *g2;
        mxp_var *qkv, *att;
        CHECK(mxp_graph_create(&g2, dtypes[d]) == MXP_OK, "graph");
        CHECK(mxp_graph_var(g2, &qkv, dtypes[d], 3, (int64_t[]){2, 48, 3 * 64}) == MXP_OK, "var");
        memset(qkv->value->data, 0, (size_t)mxp_tensor_numel(qkv->value) * esize(dtypes[d]));
        qkv->requires_grad = 1;
        CHECK(mxp_op_attention(g2, &att, qkv, 4) == MXP_OK, "%s", mxp_last_error());
        mxp_tensor *dy;
        CHECK(mxp_tensor_arena(mxp_graph_arena(g2), &dy, dtypes[d], 3, att->value->shape) == MXP_OK,
              "dy");
        memset(dy->data, 0, (size_t)mxp_tensor_numel(dy) * esize(dtypes[d]));
        CHECK(mxp_graph_backward_from(g2, att, dy) == MXP_OK, "%s", mxp_last_error());
        peak[d] = mxp_arena_peak(mxp_graph_arena(g2));
        mxp_graph_free(g2);
    }
    CHECK(peak[1] <= 0.55 * (double)peak[0], "attention arena: bf16 %zu > 0.55 x fp32 %zu", peak[1],
          peak[0]);

    /* error paths */
    mxp_graph_reset(g);
    mxp_var *x, *y;
    int32_t bad[GB * GT];
    memcpy(bad, g_tok, sizeof bad);
    bad[3] = GV;
    EXPECT_ERR(mxp_op_embedding(g, &x, bad, GB, GT, &p[P_WTE].v, &p[P_WPE].v), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_op_embedding(g, &x, g_tok, GB, GBLOCK + 1, &p[P_WTE].v, &p[P_WPE].v),
               MXP_ERR_SHAPE);
    CHECK(mxp_graph_var(g, &x, F32, 3, (int64_t[]){GB, GT, 3 * GC}) == MXP_OK, "var");
    EXPECT_ERR(mxp_op_attention(g, &y, x, 3), MXP_ERR_INVALID_ARG); /* C = 8, 3 heads */
    EXPECT_ERR(mxp_op_layernorm(g, &y, x, &p[P_LNW].v, &p[P_LNB].v, 1e-5f), MXP_ERR_SHAPE);
    EXPECT_ERR(mxp_op_linear_kn(g, &y, x, &p[P_WATT].v, NULL, MXP_ACT_NONE), MXP_ERR_SHAPE);
    mxp_graph_free(g);
    for (int i = 0; i < P_COUNT; i++) mxp_tensor_free(p[i].t), mxp_tensor_free(p[i].g);
}

int main(void) {
    const mxp_isa saved = mxp_isa_active();
    const int saved_threads = mxp_num_threads();
    for (int i = 0; i < MXP_ISA_COUNT; i++)
        if (i <= (int)mxp_isa_detect() && mxp_cpu_supports((mxp_isa)i)) isas[nisa++] = (mxp_isa)i;
    const test_part parts[] = {{"attention", test_attention},
                               {"layernorm", test_layernorm},
                               {"embedding", test_embedding},
                               {"ops", test_ops}};
    run_parts(parts, sizeof parts / sizeof parts[0]);
    mxp_isa_set(saved);
    mxp_set_num_threads(saved_threads);
    mxp_gemm_release_workspace();
    return check_exit("test_kernels_transformer");
}
