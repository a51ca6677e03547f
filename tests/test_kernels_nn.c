/*
 * test_kernels_nn.c - the network-layer kernels: the conv geometry, im2col and col2im, max
 * pooling, softmax cross-entropy, dropout, the fused SGD and AdamW updates and the value
 * census, in F32, BF16 and F16, on every ISA family this CPU runs and on 1 and 2 threads.
 * References are plain double-precision loops written here (torch.optim's formulas for the
 * optimizers); where the contract fixes the bits (copies, pooling, the updates, dropout's
 * mask) results must match exactly, and on every ISA and thread count. Not speed (bench/),
 * not the autograd ops built on these kernels.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/eltwise_impl.h"
#include "isa_conf.h"
#include "test_util.h"

#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

static const mxp_dtype dtypes[] = {F32, BF16, F16};

/* ---- helpers --------------------------------------------------------------------------- */

static uint64_t rng = 0x6a09e667f3bcc908ull;

static uint64_t rnd_u64(void) { return splitmix64(&rng); }

static float rnd_range(float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(rnd_u64() >> 11) * 0x1p-53);
}

static void *dup_bytes(const void *p, size_t bytes) {
    void *q = xmalloc(bytes);
    memcpy(q, p, bytes);
    return q;
}

/* n random values in [lo, hi), rounded to dt */
static void *rnd_buf(mxp_dtype dt, size_t n, float lo, float hi) {
    void *p = xmalloc(n * esize(dt));
    for (size_t i = 0; i < n; i++) put(dt, p, i, rnd_range(lo, hi));
    return p;
}

/* unit roundoff of dt */
static double unit(mxp_dtype dt) { return dt == F32 ? 0x1p-24 : dt == BF16 ? 0x1p-8 : 0x1p-11; }

/* got: cnt values (magnitudes summing to mag) added in fp32, rounded once to dt; ref: the
 * exact sum. fp32 error <= cnt ulps of mag, then one rounding to dt (a subnormal quantum
 * for fp16). */
static int sum_ok(mxp_dtype dt, float got, double ref, double mag, int cnt) {
    const double e32 = (cnt + 1) * 0x1p-24 * mag;
    const double tol = e32 + unit(dt) * (fabs(ref) + e32) + (dt == F16 ? 0x1p-24 : 1e-38);
    return fabs((double)got - ref) <= tol;
}

#define EXPECT_ERR(call, want)                                                                     \
    do {                                                                                           \
        const mxp_status st_ = (call);                                                             \
        CHECK(st_ == (want), "%s returned %d (%s), want %d", #call, (int)st_, mxp_status_str(st_), \
              (int)(want));                                                                        \
    } while (0)

/* ---- convolution by im2col --------------------------------------------------------------- */

typedef struct conv_shape {
    int64_t B, H, W, C, KH, KW, s, p;
} conv_shape;

/* The (B, H, W, C) index of x that im2col entry o copies, or -1 where it is padding; the
 * entries run over (b, oh, ow, kh, kw, c), c fastest. */
static int64_t im2col_src(const mxp_conv2d_geom *g, size_t o) {
    int64_t r = (int64_t)o;
    const int64_t c = r % g->C;
    const int64_t kw = (r /= g->C) % g->KW;
    const int64_t kh = (r /= g->KW) % g->KH;
    const int64_t ow = (r /= g->KH) % g->OW;
    const int64_t oh = (r /= g->OW) % g->OH;
    const int64_t b = r / g->OH;
    const int64_t ih = oh * g->stride - g->pad + kh;
    const int64_t iw = ow * g->stride - g->pad + kw;
    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) return -1;
    return ((b * g->H + ih) * g->W + iw) * g->C + c;
}

/* the number of im2col entries */
static size_t ncols(const mxp_conv2d_geom *g) {
    return (size_t)(g->B * g->OH * g->OW * g->KH * g->KW * g->C);
}

static void im2col_naive(char *cols, const char *x, size_t es, const mxp_conv2d_geom *g) {
    for (size_t o = 0, nc = ncols(g); o < nc; o++) {
        const int64_t i = im2col_src(g, o);
        if (i < 0)
            memset(cols + o * es, 0, es);
        else
            memcpy(cols + o * es, x + (size_t)i * es, es);
    }
}

/* dx (B, H, W, C) in double: every dcols entry added where im2col copied it from; mag the
 * sum of |terms| and cnt their number per element */
static void col2im_naive(double *dx, double *mag, int *cnt, const void *dcols, mxp_dtype dt,
                         const mxp_conv2d_geom *g) {
    const size_t nx = (size_t)(g->B * g->H * g->W * g->C);
    memset(dx, 0, nx * sizeof *dx);
    memset(mag, 0, nx * sizeof *mag);
    memset(cnt, 0, nx * sizeof *cnt);
    for (size_t o = 0, nc = ncols(g); o < nc; o++) {
        const int64_t i = im2col_src(g, o);
        if (i < 0) continue;
        const double v = get(dt, dcols, o);
        dx[i] += v;
        mag[i] += fabs(v);
        cnt[i]++;
    }
}

static const conv_shape conv_shapes[] = {
    {3, 7, 5, 3, 3, 3, 1, 0},     {3, 7, 5, 3, 3, 3, 1, 1},    {3, 7, 5, 3, 3, 3, 1, 2},
    {3, 7, 5, 3, 3, 3, 2, 0},     {3, 7, 5, 3, 3, 3, 2, 1},    {3, 7, 5, 3, 3, 3, 2, 2},
    {2, 6, 9, 5, 2, 3, 2, 0},     {1, 5, 5, 1, 5, 5, 1, 0},    {2, 4, 4, 2, 1, 1, 3, 2},
    {1, 3, 4, 2, 4, 5, 3, 1},     {4, 33, 31, 16, 3, 3, 1, 1}, /* threaded */
    {2, 20, 20, 300, 3, 3, 2, 1},                              /* C above the 256-channel block */
};

static void test_conv(void) {
    for (size_t si = 0; si < sizeof conv_shapes / sizeof conv_shapes[0]; si++) {
        const conv_shape *sh = &conv_shapes[si];
        mxp_conv2d_geom g;
        CHECK(mxp_conv2d_geom_init(&g, sh->B, sh->H, sh->W, sh->C, sh->KH, sh->KW, sh->s, sh->p) ==
                  MXP_OK,
              "geom_init: %s", mxp_last_error());
        CHECK(g.OH == (sh->H + 2 * sh->p - sh->KH) / sh->s + 1 &&
                  g.OW == (sh->W + 2 * sh->p - sh->KW) / sh->s + 1 && g.C == sh->C &&
                  g.stride == sh->s && g.pad == sh->p,
              "geom_init shape %zu: OH=%lld OW=%lld", si, (long long)g.OH, (long long)g.OW);
        const size_t nx = (size_t)(g.B * g.H * g.W * g.C);
        const size_t nc = ncols(&g);
        double *dx_ref = xmalloc(nx * sizeof(double)), *mag = xmalloc(nx * sizeof(double));
        int *cnt = xmalloc(nx * sizeof(int));
        for (size_t d = 0; d < 3; d++) {
            const mxp_dtype dt = dtypes[d];
            const size_t es = esize(dt);
            void *x = rnd_buf(dt, nx, -2, 2), *dcols = rnd_buf(dt, nc, -1, 1);
            char *cols_ref = xmalloc(nc * es);
            im2col_naive(cols_ref, x, es, &g);
            col2im_naive(dx_ref, mag, cnt, dcols, dt, &g);
            void *cols = xmalloc(nc * es), *dx = xmalloc(nx * es), *dx0 = xmalloc(nx * es);
            for (int c = 0; c < nconf(); c++) {
                set_conf(c);
                memset(cols, 0xa5, nc * es);
                CHECK(mxp_im2col(cols, x, dt, &g) == MXP_OK, "im2col: %s", mxp_last_error());
                CHECK(memcmp(cols, cols_ref, nc * es) == 0, "im2col shape %zu %s on %s differs", si,
                      mxp_dtype_name(dt), conf_name(c));
                memset(dx, 0xa5, nx * es);
                CHECK(mxp_col2im(dx, dcols, dt, &g) == MXP_OK, "col2im: %s", mxp_last_error());
                size_t bad = 0, first = 0;
                for (size_t i = 0; i < nx; i++)
                    if (!sum_ok(dt, get(dt, dx, i), dx_ref[i], mag[i], cnt[i]) && !bad++) first = i;
                CHECK(bad == 0, "col2im shape %zu %s on %s: %zu wrong, first [%zu] %.9g want %.9g",
                      si, mxp_dtype_name(dt), conf_name(c), bad, first, get(dt, dx, first),
                      dx_ref[first]);
                if (c == 0)
                    memcpy(dx0, dx, nx * es);
                else
                    CHECK(memcmp(dx, dx0, nx * es) == 0, "col2im shape %zu %s: %s differs from %s",
                          si, mxp_dtype_name(dt), conf_name(c), conf_name(0));
            }
            free(x);
            free(dcols);
            free(cols_ref);
            free(cols);
            free(dx);
            free(dx0);
        }
        /* the adjoint: <im2col(x), c> == <x, col2im(c)> */
        {
            float *x = rnd_buf(F32, nx, -1, 1), *c = rnd_buf(F32, nc, -1, 1);
            float *cols = xmalloc(nc * 4), *dx = xmalloc(nx * 4);
            mxp_isa_set(isas[nisa - 1]);
            mxp_set_num_threads(2);
            CHECK(mxp_im2col(cols, x, F32, &g) == MXP_OK && mxp_col2im(dx, c, F32, &g) == MXP_OK,
                  "adjoint: %s", mxp_last_error());
            double lhs = 0, rhs = 0, m = 0;
            for (size_t i = 0; i < nc; i++) {
                lhs += (double)cols[i] * c[i];
                m += fabs((double)cols[i] * c[i]);
            }
            for (size_t i = 0; i < nx; i++) rhs += (double)x[i] * dx[i];
            CHECK(fabs(lhs - rhs) <= 1e-6 * m + 1e-12, "adjoint shape %zu: %.12g vs %.12g", si, lhs,
                  rhs);
            free(x);
            free(c);
            free(cols);
            free(dx);
        }
        free(dx_ref);
        free(mag);
        free(cnt);
    }
}

/* ---- max pooling ----------------------------------------------------------------------- */

typedef struct pool_shape {
    int64_t B, H, W, C, K, s;
} pool_shape;

static const pool_shape pool_shapes[] = {
    {3, 7, 5, 3, 3, 1},     {3, 7, 5, 3, 3, 2}, {3, 7, 5, 3, 2, 2},    {3, 7, 5, 3, 3, 3},
    {2, 6, 6, 4, 2, 3},     {1, 5, 5, 1, 5, 1}, {4, 64, 64, 40, 3, 2}, /* threaded */
    {2, 16, 16, 300, 2, 2}, {2, 9, 9, 5, 3, 1}};

/* first maximum in row-major window order; the first NaN wins */
static void pool_naive(int32_t *arg, const void *x, mxp_dtype dt, const pool_shape *p, int64_t OH,
                       int64_t OW) {
    size_t o = 0;
    for (int64_t b = 0; b < p->B; b++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++)
                for (int64_t c = 0; c < p->C; c++, o++) {
                    double best = 0;
                    int32_t bi = -1;
                    for (int64_t kh = 0; kh < p->K; kh++)
                        for (int64_t kw = 0; kw < p->K; kw++) {
                            const int64_t ih = oh * p->s + kh, iw = ow * p->s + kw;
                            const double v =
                                get(dt, x, (size_t)(((b * p->H + ih) * p->W + iw) * p->C + c));
                            if (bi < 0 || (isnan(v) && !isnan(best)) || v > best) {
                                best = v;
                                bi = (int32_t)(ih * p->W + iw);
                            }
                        }
                    arg[o] = bi;
                }
}

static void test_pool(void) {
    for (size_t si = 0; si < sizeof pool_shapes / sizeof pool_shapes[0]; si++) {
        const pool_shape *p = &pool_shapes[si];
        const int64_t OH = (p->H - p->K) / p->s + 1, OW = (p->W - p->K) / p->s + 1;
        const size_t nx = (size_t)(p->B * p->H * p->W * p->C), ny = (size_t)(p->B * OH * OW * p->C);
        int32_t *arg_ref = xmalloc(ny * 4), *arg = xmalloc(ny * 4);
        double *dx_ref = xmalloc(nx * sizeof(double)), *mag = xmalloc(nx * sizeof(double));
        int *cnt = xmalloc(nx * sizeof(int));
        int most = 0;
        for (size_t d = 0; d < 3; d++) {
            const mxp_dtype dt = dtypes[d];
            const size_t es = esize(dt);
            /* few distinct values, so windows tie often; and a few NaNs */
            void *x = xmalloc(nx * es);
            for (size_t i = 0; i < nx; i++) put(dt, x, i, 0.5f * (float)((int)(rnd_u64() % 7) - 3));
            for (int k = 0; k < 3; k++) put(dt, x, rnd_u64() % nx, NAN);
            pool_naive(arg_ref, x, dt, p, OH, OW);
            void *dy = rnd_buf(dt, ny, -1, 1);
            memset(dx_ref, 0, nx * sizeof(double));
            memset(mag, 0, nx * sizeof(double));
            memset(cnt, 0, nx * sizeof(int));
            for (size_t o = 0; o < ny; o++) {
                const size_t b = o / (size_t)(OH * OW * p->C), c = o % (size_t)p->C;
                const size_t i =
                    (b * (size_t)(p->H * p->W) + (size_t)arg_ref[o]) * (size_t)p->C + c;
                dx_ref[i] += get(dt, dy, o);
                mag[i] += fabs(get(dt, dy, o));
                cnt[i]++;
                most = cnt[i] > most ? cnt[i] : most;
            }
            void *y = xmalloc(ny * es), *y2 = xmalloc(ny * es), *dx = xmalloc(nx * es),
                 *dx0 = xmalloc(nx * es);
            for (int c = 0; c < nconf(); c++) {
                set_conf(c);
                memset(y, 0xa5, ny * es);
                CHECK(mxp_maxpool2d_forward(y, arg, x, dt, p->B, p->H, p->W, p->C, p->K, p->s) ==
                          MXP_OK,
                      "maxpool: %s", mxp_last_error());
                size_t bad = 0;
                for (size_t o = 0; o < ny; o++) {
                    const size_t b = o / (size_t)(OH * OW * p->C), ch = o % (size_t)p->C;
                    const size_t i =
                        (b * (size_t)(p->H * p->W) + (size_t)arg_ref[o]) * (size_t)p->C + ch;
                    bad += arg[o] != arg_ref[o] ||
                           memcmp((char *)y + o * es, (char *)x + i * es, es) != 0;
                }
                CHECK(bad == 0, "maxpool shape %zu %s on %s: %zu outputs wrong", si,
                      mxp_dtype_name(dt), conf_name(c), bad);
                CHECK(mxp_maxpool2d_forward(y2, NULL, x, dt, p->B, p->H, p->W, p->C, p->K, p->s) ==
                              MXP_OK &&
                          memcmp(y, y2, ny * es) == 0,
                      "maxpool without argmax differs");
                memset(dx, 0xa5, nx * es);
                CHECK(mxp_maxpool2d_backward(dx, dy, arg, dt, p->B, p->H, p->W, p->C, p->K, p->s) ==
                          MXP_OK,
                      "maxpool backward: %s", mxp_last_error());
                bad = 0;
                for (size_t i = 0; i < nx; i++)
                    bad += !sum_ok(dt, get(dt, dx, i), dx_ref[i], mag[i], cnt[i]);
                CHECK(bad == 0, "maxpool backward shape %zu %s on %s: %zu wrong", si,
                      mxp_dtype_name(dt), conf_name(c), bad);
                if (c == 0)
                    memcpy(dx0, dx, nx * es);
                else
                    CHECK(memcmp(dx, dx0, nx * es) == 0, "maxpool backward %s differs from %s",
                          conf_name(c), conf_name(0));
            }
            free(x);
            free(dy);
            free(y);
            free(y2);
            free(dx);
            free(dx0);
        }
        if (p->s < p->K && (OH > 1 || OW > 1))
            CHECK(most >= 2, "shape %zu: no element was the maximum of two windows", si);
        free(arg_ref);
        free(arg);
        free(dx_ref);
        free(mag);
        free(cnt);
    }
    /* NaN wins and propagates; the first of equal maxima is chosen */
    float x[9] = {1, 5, 5, 2, NAN, 5, NAN, 0, 9}, y[4];
    int32_t a[4];
    mxp_isa_set(isas[0]);
    CHECK(mxp_maxpool2d_forward(y, a, x, F32, 1, 3, 3, 1, 3, 1) == MXP_OK && isnan(y[0]) &&
              a[0] == 4,
          "NaN must win: y=%g argmax=%d", y[0], a[0]);
    x[4] = 0;
    x[6] = 0; /* windows of 2: {1 5 2 0} {5 5 0 5} {2 0 0 0} {0 5 0 9} */
    CHECK(mxp_maxpool2d_forward(y, a, x, F32, 1, 3, 3, 1, 2, 1) == MXP_OK && y[0] == 5 &&
              a[0] == 1 && y[1] == 5 && a[1] == 1 && y[2] == 2 && a[2] == 3 && a[3] == 8,
          "first maximum: argmax %d %d %d %d", a[0], a[1], a[2], a[3]);
}

/* ---- softmax cross-entropy ---------------------------------------------------------------- */

static void ce_naive(const void *x, mxp_dtype dt, const int32_t *labels, int64_t B, int64_t V,
                     double *loss, double *probs) {
    double total = 0;
    for (int64_t i = 0; i < B; i++) {
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < V; j++) m = fmax(m, get(dt, x, (size_t)(i * V + j)));
        for (int64_t j = 0; j < V; j++) s += exp(get(dt, x, (size_t)(i * V + j)) - m);
        for (int64_t j = 0; j < V; j++)
            probs[i * V + j] = exp(get(dt, x, (size_t)(i * V + j)) - m) / s;
        total += log(s) + m - get(dt, x, (size_t)(i * V + labels[i]));
    }
    *loss = total / (double)B;
}

static void test_cross_entropy(void) {
    static const int64_t shapes[][2] = {{3, 10}, {5, 37}, {4, 1500}, {1, 1}, {300, 1000}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t B = shapes[si][0], V = shapes[si][1];
        const size_t n = (size_t)(B * V);
        int32_t *labels = xmalloc((size_t)B * 4);
        for (int64_t i = 0; i < B; i++) labels[i] = (int32_t)(rnd_u64() % (uint64_t)V);
        double *probs_ref = xmalloc(n * sizeof(double));
        float *probs = xmalloc(n * 4), *probs0 = xmalloc(n * 4);
        for (size_t d = 0; d < 3; d++) {
            const mxp_dtype dt = dtypes[d];
            const size_t es = esize(dt);
            void *x = rnd_buf(dt, n, -8, 8);
            double loss_ref;
            ce_naive(x, dt, labels, B, V, &loss_ref, probs_ref);
            void *dl = xmalloc(n * es);
            float loss, loss0 = 0;
            for (int c = 0; c < nconf(); c++) {
                set_conf(c);
                CHECK(mxp_cross_entropy_forward(&loss, probs, x, dt, labels, B, V) == MXP_OK,
                      "ce forward: %s", mxp_last_error());
                CHECK(check_close(loss, loss_ref, 1e-6, 1e-5),
                      "ce loss %lldx%lld %s on %s: %.9g want %.9g", (long long)B, (long long)V,
                      mxp_dtype_name(dt), conf_name(c), loss, loss_ref);
                size_t bad = 0;
                for (size_t i = 0; i < n; i++)
                    bad += !check_close(probs[i], probs_ref[i], 1e-9, 1e-5);
                CHECK(bad == 0, "ce probs %lldx%lld %s on %s: %zu wrong", (long long)B,
                      (long long)V, mxp_dtype_name(dt), conf_name(c), bad);
                float l2;
                CHECK(mxp_cross_entropy_forward(&l2, NULL, x, dt, labels, B, V) == MXP_OK &&
                          memcmp(&l2, &loss, 4) == 0,
                      "ce loss without probs differs: %.9g vs %.9g", l2, loss);
                /* the same bits on 1 and 2 threads (the ISA's exp may differ in the last bit) */
                if (c % 2 == 0) {
                    loss0 = loss;
                    memcpy(probs0, probs, n * 4);
                } else {
                    CHECK(memcmp(&loss, &loss0, 4) == 0 && memcmp(probs, probs0, n * 4) == 0,
                          "ce %lldx%lld on %s: 1 and 2 threads differ", (long long)B, (long long)V,
                          conf_name(c));
                }
                /* backward: (scale / B) (probs - onehot) from the probabilities just made */
                const float scale = 1024.0f;
                CHECK(mxp_cross_entropy_backward(dl, dt, probs, labels, B, V, scale) == MXP_OK,
                      "ce backward: %s", mxp_last_error());
                bad = 0;
                for (size_t i = 0; i < n; i++) {
                    const double oh = labels[i / (size_t)V] == (int32_t)(i % (size_t)V) ? 1 : 0;
                    const double want = (double)scale / (double)B * ((double)probs[i] - oh);
                    bad += !check_close(get(dt, dl, i), want, dt == F16 ? 0x1p-24 : 1e-30,
                                        dt == F32 ? 4e-7 : 1.01 * unit(dt) + 4e-7);
                }
                CHECK(bad == 0, "ce backward %lldx%lld %s on %s: %zu wrong", (long long)B,
                      (long long)V, mxp_dtype_name(dt), conf_name(c), bad);
                if (dt == F32) { /* in place over probs: the same bits */
                    float *q = dup_bytes(probs, n * 4);
                    CHECK(mxp_cross_entropy_backward(q, F32, q, labels, B, V, scale) == MXP_OK &&
                              memcmp(q, dl, n * 4) == 0,
                          "ce backward in place over probs differs");
                    free(q);
                }
            }
            free(x);
            free(dl);
        }
        free(labels);
        free(probs_ref);
        free(probs);
        free(probs0);
    }

    /* non-finite logits are data: NaN and +inf give NaN, a label at -inf gives +inf */
    mxp_isa_set(isas[nisa - 1]);
    float x[4] = {1, 2, 3, 4}, loss;
    const int32_t lab[2] = {0, 1};
    x[1] = NAN;
    CHECK(mxp_cross_entropy_forward(&loss, NULL, x, F32, lab, 2, 2) == MXP_OK && isnan(loss),
          "NaN logit: loss %g", loss);
    x[1] = INFINITY;
    CHECK(mxp_cross_entropy_forward(&loss, NULL, x, F32, lab, 2, 2) == MXP_OK && isnan(loss),
          "+inf logit: loss %g", loss);
    x[1] = 2;
    x[0] = -INFINITY;
    CHECK(mxp_cross_entropy_forward(&loss, NULL, x, F32, lab, 2, 2) == MXP_OK && loss == INFINITY,
          "label at -inf: loss %g", loss);

    /* a bad label is refused before any work, naming the row and the value */
    float probs[6] = {7, 7, 7, 7, 7, 7}, l0 = 7;
    const float xs[6] = {0};
    const int32_t bad1[2] = {1, 3}, bad2[2] = {-1, 0}, ok[2] = {0, 2};
    EXPECT_ERR(mxp_cross_entropy_forward(&l0, probs, xs, F32, bad1, 2, 3), MXP_ERR_INVALID_ARG);
    CHECK(strstr(mxp_last_error(), "labels[1] = 3") != NULL, "message: %s", mxp_last_error());
    CHECK(l0 == 7 && probs[0] == 7 && probs[5] == 7, "a refused call wrote its outputs");
    EXPECT_ERR(mxp_cross_entropy_forward(&l0, probs, xs, F32, bad2, 2, 3), MXP_ERR_INVALID_ARG);
    CHECK(strstr(mxp_last_error(), "labels[0] = -1") != NULL, "message: %s", mxp_last_error());
    float dl[6] = {7, 7, 7, 7, 7, 7};
    EXPECT_ERR(mxp_cross_entropy_backward(dl, F32, probs, bad1, 2, 3, 1.0f), MXP_ERR_INVALID_ARG);
    CHECK(strstr(mxp_last_error(), "labels[1] = 3") != NULL, "message: %s", mxp_last_error());
    CHECK(dl[0] == 7 && dl[5] == 7, "a refused backward wrote dlogits");
    EXPECT_ERR(mxp_cross_entropy_forward(&l0, probs, xs, F32, ok, 2, 3), MXP_OK);
    EXPECT_ERR(mxp_cross_entropy_forward(NULL, probs, xs, F32, ok, 2, 3), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_cross_entropy_forward(&l0, probs, NULL, F32, ok, 2, 3), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_cross_entropy_forward(&l0, probs, xs, F32, NULL, 2, 3), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_cross_entropy_forward(&l0, probs, xs, F32, ok, 0, 3), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_cross_entropy_forward(&l0, probs, xs, (mxp_dtype)7, ok, 2, 3), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_cross_entropy_forward(&l0, (float *)(void *)xs, xs, F32, ok, 2, 3),
               MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_cross_entropy_backward(dl, (mxp_dtype)7, probs, ok, 2, 3, 1.0f), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_cross_entropy_backward(dl, F32, NULL, ok, 2, 3, 1.0f), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_cross_entropy_backward(dl, F32, dl + 1, ok, 1, 3, 1.0f), MXP_ERR_INVALID_ARG);
    CHECK(mxp_cross_entropy_backward(probs, F32, probs, ok, 2, 3, 1.0f) == MXP_OK,
          "backward in place over probs (f32): %s", mxp_last_error());
}

/* ---- dropout ------------------------------------------------------------------------------ */

static void test_dropout(void) {
    const size_t n = (1u << 20) + 37;
    const float p = 0.3f;
    const uint64_t seed = 0x1234567890abcdefull, off = 1000003;
    float *x32 = rnd_buf(F32, n, -2, 2);
    uint8_t *ref = xmalloc(n), *mask = xmalloc(n), *mask2 = xmalloc(n);
    /* the documented stream: element i keeps when word (off + i) >> 8, times 2^-24, is >= p */
    for (size_t i = 0; i < n; i++) {
        uint32_t r[4];
        const uint64_t w = off + i;
        mxp_philox4x32(seed, w / 4, r);
        ref[i] = (double)(r[w % 4] >> 8) * 0x1p-24 >= (double)p;
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) kept += ref[i];
    const double mean = (double)kept / (double)n, sigma = sqrt(p * (1 - p) / (double)n);
    CHECK(fabs(mean - (1 - p)) < 5 * sigma, "mask mean %.6f, want %.6f +- %.6f", mean, 1 - p,
          5 * sigma);

    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        const size_t es = esize(dt);
        void *x = xmalloc(n * es), *y = xmalloc(n * es), *y0 = xmalloc(n * es);
        void *dx = xmalloc(n * es);
        for (size_t i = 0; i < n; i++) put(dt, x, i, x32[i]);
        for (int c = 0; c < nconf(); c++) {
            set_conf(c);
            memset(mask, 9, n);
            CHECK(mxp_dropout_forward(y, mask, x, dt, n, p, seed, off) == MXP_OK, "dropout: %s",
                  mxp_last_error());
            CHECK(memcmp(mask, ref, n) == 0, "dropout mask %s on %s differs from the stream",
                  mxp_dtype_name(dt), conf_name(c));
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) {
                const double want = ref[i] ? (double)get(dt, x, i) / (1.0 - (double)p) : 0.0;
                const float got = get(dt, y, i);
                bad += !check_close(got, want, dt == F16 ? 0x1p-24 : 0,
                                    dt == F32 ? 3e-7 : 1.01 * unit(dt) + 3e-7);
            }
            CHECK(bad == 0, "dropout y %s on %s: %zu wrong", mxp_dtype_name(dt), conf_name(c), bad);
            if (c == 0)
                memcpy(y0, y, n * es);
            else
                CHECK(memcmp(y, y0, n * es) == 0, "dropout y %s: %s differs from %s",
                      mxp_dtype_name(dt), conf_name(c), conf_name(0));
            /* backward: dy = x */
            CHECK(mxp_dropout_backward(dx, x, mask, dt, n, p) == MXP_OK, "dropout backward: %s",
                  mxp_last_error());
            CHECK(memcmp(dx, y0, n * es) == 0, "dropout backward differs from forward (dy = x)");
        }
        /* split into two calls with the offset advanced: the same mask; in place */
        const size_t n1 = 777;
        memcpy(y, x, n * es);
        CHECK(mxp_dropout_forward(y, mask2, y, dt, n1, p, seed, off) == MXP_OK &&
                  mxp_dropout_forward((char *)y + n1 * es, mask2 + n1, (char *)y + n1 * es, dt,
                                      n - n1, p, seed, off + n1) == MXP_OK,
              "dropout split: %s", mxp_last_error());
        CHECK(memcmp(mask2, ref, n) == 0 && memcmp(y, y0, n * es) == 0,
              "dropout split in two calls, in place, differs");
        /* another seed, another mask; p == 0 copies */
        CHECK(mxp_dropout_forward(y, mask2, x, dt, n, p, seed + 1, off) == MXP_OK &&
                  memcmp(mask2, ref, n) != 0,
              "another seed gave the same mask");
        CHECK(mxp_dropout_forward(y, mask2, x, dt, n, 0.0f, seed, off) == MXP_OK &&
                  memcmp(y, x, n * es) == 0,
              "p = 0 must copy");
        size_t ones = 0;
        for (size_t i = 0; i < n; i++) ones += mask2[i] == 1;
        CHECK(ones == n, "p = 0 must keep everything");
        free(x);
        free(y);
        free(y0);
        free(dx);
    }
    /* the boundary: p exactly an element's uniform keeps it (u >= p), the next float drops it */
    float a[4] = {1, 2, 3, 4}, b[4];
    uint8_t m[4];
    for (uint64_t w = 5; w < 45; w += 7) {
        uint32_t r[4];
        mxp_philox4x32(seed, w / 4, r);
        const float pu = (float)(r[w % 4] >> 8) * 0x1p-24f; /* exact: 24 bits */
        if (pu == 0.0f) continue;
        CHECK(mxp_dropout_forward(b, m, a, F32, 1, pu, seed, w) == MXP_OK && m[0] == 1 &&
                  b[0] == 1.0f / (1.0f - pu),
              "p == u must keep (word %llu, p %.9g): mask %d", (unsigned long long)w, pu, m[0]);
        CHECK(mxp_dropout_forward(b, m, a, F32, 1, nextafterf(pu, 1.0f), seed, w) == MXP_OK &&
                  m[0] == 0 && b[0] == 0.0f,
              "p just above u must drop (word %llu)", (unsigned long long)w);
    }
    EXPECT_ERR(mxp_dropout_forward(b, m, a, F32, 4, 1.0f, 1, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_dropout_forward(b, m, a, F32, 4, -0.1f, 1, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_dropout_forward(b, m, a, F32, 4, NAN, 1, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_dropout_forward(b, NULL, a, F32, 4, 0.5f, 1, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_dropout_forward(b, m, a, (mxp_dtype)5, 4, 0.5f, 1, 0), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_dropout_forward(a + 1, m, a, F32, 3, 0.5f, 1, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_dropout_backward(b, a, NULL, F32, 4, 0.5f), MXP_ERR_INVALID_ARG);
    free(x32);
    free(ref);
    free(mask);
    free(mask2);
}

/* ---- optimizer updates ------------------------------------------------------------------- */

typedef struct opt_case {
    int adamw;
    mxp_sgd_hparams sgd;
    mxp_adamw_hparams adam;
} opt_case;

static const opt_case opt_cases[] = {
    {.sgd = {.lr = 0.1f}},
    {.sgd = {.lr = 0.05f, .momentum = 0.9f}},
    {.sgd = {.lr = 0.05f, .momentum = 0.9f, .dampening = 0.1f, .weight_decay = 0.01f}},
    {.sgd = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = 1}},
    {.sgd = {.lr = 0.1f, .weight_decay = 0.05f}},
    {.adamw = 1,
     .adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f}},
    {.adamw = 1, .adam = {.lr = 1e-2f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f}},
};
#define NCASES (sizeof opt_cases / sizeof opt_cases[0])

/* Where the weights live: work only; fp32 master plus the work copy; master == work (f32). */
enum { M_NONE, M_SEPARATE, M_ALIAS };

/* One optimizer's buffers, n elements. */
typedef struct opt_state {
    size_t n;
    mxp_dtype wt, gt;
    int mode;
    float *master;  /* (n) or NULL */
    void *work;     /* (n) wt; == master for M_ALIAS */
    void *grad;     /* (n) gt */
    float *s0, *s1; /* momentum buffer, or m and v */
} opt_state;

static opt_state st_make(size_t n, mxp_dtype wt, mxp_dtype gt, int mode) {
    opt_state s = {n, wt, gt, mode, NULL, NULL, NULL, NULL, NULL};
    s.work = xmalloc(n * esize(wt));
    if (mode == M_SEPARATE) s.master = xmalloc(n * 4);
    if (mode == M_ALIAS) s.master = s.work;
    s.grad = xmalloc(n * esize(gt));
    s.s0 = xmalloc(n * 4);
    s.s1 = xmalloc(n * 4);
    return s;
}

static opt_state st_copy(const opt_state *a) {
    opt_state s = *a;
    s.work = dup_bytes(a->work, a->n * esize(a->wt));
    s.master = a->mode == M_SEPARATE ? dup_bytes(a->master, a->n * 4)
               : a->mode == M_ALIAS  ? (float *)s.work
                                     : NULL;
    s.grad = dup_bytes(a->grad, a->n * esize(a->gt));
    s.s0 = dup_bytes(a->s0, a->n * 4);
    s.s1 = dup_bytes(a->s1, a->n * 4);
    return s;
}

static void st_free(opt_state *s) {
    if (s->mode == M_SEPARATE) free(s->master);
    free(s->work);
    free(s->grad);
    free(s->s0);
    free(s->s1);
}

/* every byte of the two states equal */
static int st_same(const opt_state *a, const opt_state *b) {
    const size_t n = a->n;
    return memcmp(a->work, b->work, n * esize(a->wt)) == 0 &&
           (a->mode != M_SEPARATE || memcmp(a->master, b->master, n * 4) == 0) &&
           memcmp(a->s0, b->s0, n * 4) == 0 && memcmp(a->s1, b->s1, n * 4) == 0;
}

/* weights w (either sign, magnitudes in [0.5, 1.5)) into the state; moments zero */
static void st_init_weights(opt_state *s, const double *w) {
    for (size_t i = 0; i < s->n; i++) {
        if (s->master) s->master[i] = (float)w[i];
        if (s->mode != M_ALIAS) put(s->wt, s->work, i, s->master ? s->master[i] : (float)w[i]);
        s->s0[i] = 0;
        s->s1[i] = 0;
    }
}

static mxp_status st_step(opt_state *s, const opt_case *oc, int step, float grad_mul, uint64_t *nu,
                          uint64_t *nl) {
    const mxp_update_io io = {.master = s->master,
                              .work = s->work,
                              .work_dtype = s->wt,
                              .grad = s->grad,
                              .grad_dtype = s->gt,
                              .grad_mul = grad_mul,
                              .n = s->n,
                              .n_updated = nu,
                              .n_lost = nl};
    if (oc->adamw) {
        mxp_adamw_hparams h = oc->adam;
        h.step = step;
        return mxp_adamw_update(&io, s->s0, s->s1, &h);
    }
    return mxp_sgd_update(&io, s->s0, &oc->sgd, step == 1);
}

/* One step of torch.optim in double, from the fp32 hyperparameters. g is grad * grad_mul. */
static void torch_step(const opt_case *oc, int step, double *w, double *s0, double *s1, double g) {
    if (oc->adamw) {
        const mxp_adamw_hparams *h = &oc->adam;
        const double lr = h->lr, b1 = h->beta1, b2 = h->beta2;
        *w *= 1 - lr * h->weight_decay;
        *s0 = b1 * *s0 + (1 - b1) * g;
        *s1 = b2 * *s1 + (1 - b2) * g * g;
        const double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
        *w -= lr / bc1 * *s0 / (sqrt(*s1) / sqrt(bc2) + h->eps);
        return;
    }
    const mxp_sgd_hparams *h = &oc->sgd;
    g += (double)h->weight_decay * *w;
    if (h->momentum != 0) {
        *s0 = step == 1 ? g : h->momentum * *s0 + (1 - (double)h->dampening) * g;
        g = h->nesterov ? g + h->momentum * *s0 : *s0;
    }
    *w -= h->lr * g;
}

/* Three steps against torch's formulas in double, every configuration, every dtype pair and
 * master mode. fp32 master weights (or fp32 work weights) within 1e-6 relative; a 16-bit
 * work copy exactly the master rounded to nearest even. */
static void test_update_vs_torch(void) {
    const size_t n = 1037;
    const float grad_mul = 1.0f / 3.0f;
    double *w0 = xmalloc(n * sizeof(double)), *w = xmalloc(n * sizeof(double));
    double *r0 = xmalloc(n * sizeof(double)), *r1 = xmalloc(n * sizeof(double));
    double *gmax = xmalloc(n * sizeof(double));
    float *gsteps = xmalloc(3 * n * sizeof(float));
    for (size_t i = 0; i < n; i++) w0[i] = (rnd_u64() & 1 ? -1 : 1) * rnd_range(0.5f, 1.5f);
    for (size_t i = 0; i < 3 * n; i++)
        gsteps[i] = ldexpf(rnd_range(-1, 1), -(int)(rnd_u64() % 5)); /* 1/16 .. 1 */
    for (size_t ci = 0; ci < NCASES; ci++) {
        const opt_case *oc = &opt_cases[ci];
        for (int wi = 0; wi < 3; wi++)
            for (int gi = 0; gi < 3; gi++)
                for (int mode = M_NONE; mode <= M_ALIAS; mode++) {
                    const mxp_dtype wt = dtypes[wi], gt = dtypes[gi];
                    /* without master weights only f32 work follows torch's fp32 arithmetic */
                    if ((mode == M_NONE || mode == M_ALIAS) && wt != F32) continue;
                    for (int c = 0; c < nconf(); c++) {
                        set_conf(c);
                        opt_state s = st_make(n, wt, gt, mode);
                        st_init_weights(&s, w0);
                        for (size_t i = 0; i < n; i++) {
                            w[i] = s.master ? s.master[i] : get(wt, s.work, i);
                            r0[i] = r1[i] = gmax[i] = 0;
                        }
                        for (int step = 1; step <= 3; step++) {
                            for (size_t i = 0; i < n; i++) {
                                put(gt, s.grad, i, gsteps[(size_t)(step - 1) * n + i]);
                                const double g = (double)get(gt, s.grad, i) * (double)grad_mul;
                                gmax[i] = fmax(gmax[i], fabs(g));
                                torch_step(oc, step, &w[i], &r0[i], &r1[i], g);
                            }
                            CHECK(st_step(&s, oc, step, grad_mul, NULL, NULL) == MXP_OK,
                                  "update: %s", mxp_last_error());
                        }
                        size_t bad_w = 0, bad_s = 0, bad_cast = 0, first = 0;
                        for (size_t i = 0; i < n; i++) {
                            const float got = s.master ? s.master[i] : get(wt, s.work, i);
                            if (!check_close(got, w[i], 0, 1e-6) && !bad_w++) first = i;
                            const int mom = oc->adamw || oc->sgd.momentum != 0;
                            if (mom && !check_close(s.s0[i], r0[i], 1e-6 * gmax[i], 1e-6)) bad_s++;
                            if (oc->adamw && !check_close(s.s1[i], r1[i], 1e-12, 1e-6)) bad_s++;
                            if (s.master) {
                                float tmp;
                                uint16_t h[2];
                                put(wt, wt == F32 ? (void *)&tmp : (void *)h, 0, s.master[i]);
                                bad_cast += wt == F32 ? memcmp(&tmp, (float *)s.work + i, 4) != 0
                                                      : memcmp(h, (uint16_t *)s.work + i, 2) != 0;
                            }
                        }
                        CHECK(bad_w == 0,
                              "%s case %zu work %s grad %s mode %d on %s: %zu weights wrong, "
                              "first [%zu] %.9g want %.9g",
                              oc->adamw ? "adamw" : "sgd", ci, mxp_dtype_name(wt),
                              mxp_dtype_name(gt), mode, conf_name(c), bad_w, first,
                              s.master ? s.master[first] : get(wt, s.work, first), w[first]);
                        CHECK(bad_s == 0, "%s case %zu %s/%s mode %d on %s: %zu states wrong",
                              oc->adamw ? "adamw" : "sgd", ci, mxp_dtype_name(wt),
                              mxp_dtype_name(gt), mode, conf_name(c), bad_s);
                        CHECK(bad_cast == 0, "case %zu %s/%s on %s: %zu work != round(master)", ci,
                              mxp_dtype_name(wt), mxp_dtype_name(gt), conf_name(c), bad_cast);
                        st_free(&s);
                    }
                }
    }
    free(w0);
    free(w);
    free(r0);
    free(r1);
    free(gmax);
    free(gsteps);
}

/* The SIMD kernels against the scalar reference: the same bits in every buffer and the same
 * counts, for every dtype pair, master mode, with and without counters, odd sizes and the
 * threaded size. Data mixes magnitudes, zeros, fp32 subnormal gradients, inf and NaN
 * gradients, and weights that lose their updates. */
static void test_update_bits(void) {
    static const size_t sizes[] = {1, 13, 16, 33, 2 * MXP_EW_GRAIN + 77};
    for (size_t zi = 0; zi < sizeof sizes / sizeof sizes[0]; zi++) {
        const size_t n = sizes[zi];
        for (size_t ci = 0; ci < NCASES; ci++) {
            const opt_case *oc = &opt_cases[ci];
            for (int wi = 0; wi < 3; wi++)
                for (int gi = 0; gi < 3; gi++)
                    for (int mode = M_NONE; mode <= M_ALIAS; mode++)
                        for (int counting = 0; counting < 2; counting++) {
                            const mxp_dtype wt = dtypes[wi], gt = dtypes[gi];
                            if (mode == M_ALIAS && wt != F32) continue;
                            if (n > 100 && (gi != wi || counting == 0) && ci != 1 && ci != 5)
                                continue; /* the big size: enough combinations, not all */
                            opt_state s = st_make(n, wt, gt, mode);
                            for (size_t i = 0; i < n; i++) {
                                const uint64_t r = rnd_u64();
                                float wv = (r & 1 ? -1 : 1) * rnd_range(0.25f, 4.0f);
                                if (r % 7 == 0) wv = 1.0f; /* updates below half an ulp of bf16 */
                                if (r % 11 == 0) wv = 0.0f;
                                float gv = ldexpf(rnd_range(-1, 1), -(int)((r >> 8) % 20));
                                if (r % 13 == 0) gv = 0.0f;
                                if (r % 17 == 0 && gt == F32) gv = 1e-40f; /* subnormal */
                                if (r % 101 == 0) gv = INFINITY; /* NaN updates are counted */
                                if (r % 103 == 0) gv = NAN;
                                if (s.master) s.master[i] = wv;
                                if (mode != M_ALIAS) put(wt, s.work, i, wv);
                                put(gt, s.grad, i, gv);
                                s.s0[i] = rnd_range(-0.1f, 0.1f);
                                s.s1[i] = rnd_range(0.0f, 0.01f);
                            }
                            opt_state ref = st_copy(&s);
                            uint64_t rnu = 0, rnl = 0;
                            mxp_isa_set(MXP_ISA_REF);
                            mxp_set_num_threads(1);
                            for (int step = 1; step <= 2; step++)
                                st_step(&ref, oc, step, 0.75f, counting ? &rnu : NULL,
                                        counting ? &rnl : NULL);
                            for (int c = 0; c < nconf(); c++) {
                                set_conf(c);
                                opt_state t = st_copy(&s);
                                uint64_t nu = 0, nl = 0;
                                for (int step = 1; step <= 2; step++)
                                    CHECK(st_step(&t, oc, step, 0.75f, counting ? &nu : NULL,
                                                  counting ? &nl : NULL) == MXP_OK,
                                          "update: %s", mxp_last_error());
                                CHECK(st_same(&t, &ref) && nu == rnu && nl == rnl,
                                      "%s case %zu n=%zu work %s grad %s mode %d count %d: %s "
                                      "differs from ref (counts %llu/%llu vs %llu/%llu)",
                                      oc->adamw ? "adamw" : "sgd", ci, n, mxp_dtype_name(wt),
                                      mxp_dtype_name(gt), mode, counting, conf_name(c),
                                      (unsigned long long)nu, (unsigned long long)nl,
                                      (unsigned long long)rnu, (unsigned long long)rnl);
                                st_free(&t);
                            }
                            if (counting && n > 100 && wt == BF16 && mode == M_SEPARATE &&
                                oc->adamw)
                                CHECK(rnl > 0 && rnl < rnu,
                                      "bf16 data should lose some updates, not all: %llu of %llu",
                                      (unsigned long long)rnl, (unsigned long long)rnu);
                            st_free(&ref);
                            st_free(&s);
                        }
        }
    }
}

/* The source document's picture: a bf16 weight 1.0 with an update of 1e-4 is lost without
 * master weights; with them the master moves and the work copy follows once the change
 * passes half an ulp. */
static void test_update_counters(void) {
    const opt_case plain = {.sgd = {.lr = 1e-4f}};
    for (int k = 0; k < nisa; k++) {
        mxp_isa_set(isas[k]);
        for (int mode = M_NONE; mode <= M_SEPARATE; mode++) {
            opt_state s = st_make(1, BF16, BF16, mode);
            if (s.master) s.master[0] = 1.0f;
            put(BF16, s.work, 0, 1.0f);
            put(BF16, s.grad, 0, 1.0f);
            uint64_t nu = 5, nl = 7; /* counters add */
            CHECK(st_step(&s, &plain, 2, 1.0f, &nu, &nl) == MXP_OK, "%s", mxp_last_error());
            CHECK(nu == 6 && nl == 8, "mode %d on %s: updated %llu lost %llu, want 1 and 1", mode,
                  mxp_isa_name(isas[k]), (unsigned long long)nu - 5, (unsigned long long)nl - 7);
            CHECK(((uint16_t *)s.work)[0] == 0x3f80, "work moved: 0x%04x", ((uint16_t *)s.work)[0]);
            if (s.master)
                CHECK(s.master[0] == 1.0f - 1e-4f, "master %.9g, want %.9g", s.master[0],
                      1.0f - 1e-4f);
            /* 29 more steps: the master reaches 0.997, the work copy follows at step 20 */
            for (int step = 2; step <= 30; step++) st_step(&s, &plain, 2, 1.0f, &nu, &nl);
            CHECK(nu == 5 + 30 && nl == 7 + 30, "30 steps: updated %llu lost %llu",
                  (unsigned long long)nu - 5, (unsigned long long)nl - 7);
            const float want = mode == M_NONE ? 1.0f : 0.99609375f;
            CHECK(get(BF16, s.work, 0) == want, "mode %d after 30 steps: work %.9g want %.9g", mode,
                  get(BF16, s.work, 0), want);
            /* a large step is not lost; a zero gradient is no update; one counter alone */
            const opt_case big = {.sgd = {.lr = 0.1f}};
            nu = nl = 0;
            st_step(&s, &big, 2, 1.0f, &nu, &nl);
            CHECK(nu == 1 && nl == 0, "a large update: updated %llu lost %llu",
                  (unsigned long long)nu, (unsigned long long)nl);
            put(BF16, s.grad, 0, 0.0f);
            nu = 0;
            st_step(&s, &big, 2, 1.0f, &nu, NULL);
            CHECK(nu == 0, "a zero gradient counted as an update");
            st_free(&s);
        }
        /* f32 work without master: 1 - 1e-4 is representable, nothing lost */
        opt_state s = st_make(1, F32, F32, M_NONE);
        ((float *)s.work)[0] = 1.0f;
        ((float *)s.grad)[0] = 1.0f;
        uint64_t nu = 0, nl = 0;
        st_step(&s, &plain, 2, 1.0f, &nu, &nl);
        CHECK(nu == 1 && nl == 0, "f32: updated %llu lost %llu", (unsigned long long)nu,
              (unsigned long long)nl);
        st_free(&s);
    }
}

static void test_update_errors(void) {
    float master[8] = {0}, buf[8] = {0}, m[8] = {0}, v[8] = {0};
    uint16_t work[8] = {0}, grad[8] = {0};
    mxp_update_io io = {.master = master,
                        .work = work,
                        .work_dtype = BF16,
                        .grad = grad,
                        .grad_dtype = BF16,
                        .grad_mul = 1.0f,
                        .n = 8};
    const mxp_sgd_hparams sh = {.lr = 0.1f, .momentum = 0.9f};
    const mxp_sgd_hparams sh0 = {.lr = 0.1f};
    mxp_adamw_hparams ah = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 1};
    EXPECT_ERR(mxp_sgd_update(&io, buf, &sh, 1), MXP_OK);
    EXPECT_ERR(mxp_sgd_update(NULL, buf, &sh, 1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_sgd_update(&io, buf, NULL, 1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_sgd_update(&io, NULL, &sh, 1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_sgd_update(&io, NULL, &sh0, 1), MXP_OK); /* no momentum, no buffer */
    EXPECT_ERR(mxp_adamw_update(&io, m, v, &ah), MXP_OK);
    EXPECT_ERR(mxp_adamw_update(&io, NULL, v, &ah), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_adamw_update(&io, m, m, &ah), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_adamw_update(&io, m, v, NULL), MXP_ERR_INVALID_ARG);
    ah.step = 0;
    EXPECT_ERR(mxp_adamw_update(&io, m, v, &ah), MXP_ERR_INVALID_ARG);
    ah.step = 1;
    mxp_update_io b = io;
    b.work_dtype = (mxp_dtype)9;
    EXPECT_ERR(mxp_sgd_update(&b, buf, &sh, 1), MXP_ERR_DTYPE);
    b = io;
    b.grad_dtype = (mxp_dtype)-1;
    EXPECT_ERR(mxp_adamw_update(&b, m, v, &ah), MXP_ERR_DTYPE);
    b = io;
    b.work = NULL;
    EXPECT_ERR(mxp_sgd_update(&b, buf, &sh, 1), MXP_ERR_INVALID_ARG);
    b = io;
    b.grad = NULL;
    EXPECT_ERR(mxp_adamw_update(&b, m, v, &ah), MXP_ERR_INVALID_ARG);
    b = io;
    b.grad = (char *)master + 4; /* overlaps master */
    EXPECT_ERR(mxp_sgd_update(&b, buf, &sh, 1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_sgd_update(&io, master + 2, &sh, 1), MXP_ERR_INVALID_ARG);
    b = io;
    b.work = master; /* master == work needs f32 work */
    EXPECT_ERR(mxp_sgd_update(&b, buf, &sh, 1), MXP_ERR_INVALID_ARG);
    b.work_dtype = F32;
    EXPECT_ERR(mxp_sgd_update(&b, buf, &sh, 1), MXP_OK);
    b.work = master + 1; /* but not a shifted alias */
    b.n = 7;
    EXPECT_ERR(mxp_sgd_update(&b, buf, &sh, 1), MXP_ERR_INVALID_ARG);
    b = io;
    b.n = 0;
    b.work = NULL;
    b.grad = NULL;
    EXPECT_ERR(mxp_sgd_update(&b, NULL, &sh, 1), MXP_OK);
}

/* ---- value census -------------------------------------------------------------------------- */

static void test_census(void) {
    static const uint32_t f32[] = {0x00000000, 0x80000000, 0x00000001, 0x807fffff,
                                   0x00800000, 0x3f800000, 0xff7fffff, 0x7f800000,
                                   0xff800000, 0x7fc00000, 0x7f800001};
    static const uint16_t f16[] = {0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x3c00,
                                   0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01};
    static const uint16_t bf16[] = {0x0000, 0x8000, 0x0001, 0x807f, 0x0080, 0x3f80,
                                    0xff7f, 0x7f80, 0xff80, 0x7fc0, 0x7f81};
    const void *pat[3] = {f32, bf16, f16};
    for (int k = 0; k < nisa; k++) {
        mxp_isa_set(isas[k]);
        for (size_t d = 0; d < 3; d++) {
            uint64_t c[4] = {1, 1, 1, 1};
            CHECK(mxp_count_classes(c, pat[d], dtypes[d], 11) == MXP_OK, "%s", mxp_last_error());
            CHECK(c[0] == 3 && c[1] == 3 && c[2] == 4 && c[3] == 5,
                  "census %s: %llu %llu %llu %llu, want 3 3 4 5 (2 2 3 4 added)",
                  mxp_dtype_name(dtypes[d]), (unsigned long long)c[0], (unsigned long long)c[1],
                  (unsigned long long)c[2], (unsigned long long)c[3]);
        }
    }
    /* random patterns, threaded, against mxp_format_classify */
    const size_t n = 3 * MXP_EW_GRAIN + 5;
    uint32_t *u = xmalloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        const uint64_t r = rnd_u64();
        /* bias toward the rare exponents */
        u[i] = (uint32_t)r;
        if (r >> 62 == 0) u[i] &= 0x807fffffu;
        if (r >> 62 == 1) u[i] |= 0x7f800000u;
    }
    for (size_t d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        uint64_t want[4] = {0};
        const uint16_t *h = (const uint16_t *)u;
        for (size_t i = 0; i < n; i++) {
            const uint32_t b = dt == F32 ? u[i] : (dt == F16 ? h[i] : (uint16_t)(u[i] >> 16));
            const mxp_class cl = mxp_format_classify(mxp_format_of(dt), b);
            want[cl == MXP_CLASS_NAN ? 3 : (int)cl]++;
        }
        void *x = xmalloc(n * esize(dt));
        for (size_t i = 0; i < n; i++) {
            if (dt == F32)
                ((uint32_t *)x)[i] = u[i];
            else if (dt == F16)
                ((uint16_t *)x)[i] = h[i];
            else
                ((uint16_t *)x)[i] = (uint16_t)(u[i] >> 16);
        }
        for (int c = 0; c < nconf(); c++) {
            set_conf(c);
            uint64_t got[4] = {0};
            CHECK(mxp_count_classes(got, x, dt, n) == MXP_OK, "%s", mxp_last_error());
            CHECK(memcmp(got, want, sizeof got) == 0,
                  "census %s on %s: %llu %llu %llu %llu, want %llu %llu %llu %llu",
                  mxp_dtype_name(dt), conf_name(c), (unsigned long long)got[0],
                  (unsigned long long)got[1], (unsigned long long)got[2],
                  (unsigned long long)got[3], (unsigned long long)want[0],
                  (unsigned long long)want[1], (unsigned long long)want[2],
                  (unsigned long long)want[3]);
        }
        free(x);
    }
    free(u);
    uint64_t c[4];
    EXPECT_ERR(mxp_count_classes(NULL, f32, F32, 3), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_count_classes(c, NULL, F32, 3), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_count_classes(c, f32, (mxp_dtype)3, 3), MXP_ERR_DTYPE);
}

/* ---- argument errors of the conv and pooling kernels ------------------------------------- */

static void test_conv_errors(void) {
    mxp_conv2d_geom g;
    EXPECT_ERR(mxp_conv2d_geom_init(&g, 0, 7, 5, 3, 3, 3, 1, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_conv2d_geom_init(&g, 1, 7, 5, 3, 3, 3, 0, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_conv2d_geom_init(&g, 1, 7, 5, 3, 3, 3, 1, -1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_conv2d_geom_init(&g, 1, 7, 5, 3, 3, 0, 1, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_conv2d_geom_init(&g, 1, 7, 2, 3, 3, 5, 1, 1), MXP_ERR_SHAPE);
    EXPECT_ERR(mxp_conv2d_geom_init(NULL, 1, 7, 5, 3, 3, 3, 1, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_conv2d_geom_init(&g, 1, 7, 2, 3, 3, 5, 1, 2), MXP_OK); /* fits padded */
    CHECK(g.OH == 9 && g.OW == 2, "OH %lld OW %lld", (long long)g.OH, (long long)g.OW);
    float x[1 * 7 * 2 * 3] = {0}, cols[9 * 2 * 45];
    EXPECT_ERR(mxp_im2col(cols, x, F32, &g), MXP_OK);
    EXPECT_ERR(mxp_im2col(NULL, x, F32, &g), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_im2col(cols, x, (mxp_dtype)4, &g), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_im2col(cols, x, F32, NULL), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_col2im(x, NULL, F32, &g), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_col2im(x, cols, (mxp_dtype)4, &g), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_col2im(cols, cols + 1, F32, &g), MXP_ERR_INVALID_ARG);
    mxp_conv2d_geom bad = g;
    bad.OH = 8; /* not what geom_init computes */
    EXPECT_ERR(mxp_im2col(cols, x, F32, &bad), MXP_ERR_INVALID_ARG);

    float y[16];
    int32_t a[16];
    EXPECT_ERR(mxp_maxpool2d_forward(y, a, x, F32, 1, 7, 2, 3, 3, 1),
               MXP_ERR_INVALID_ARG); /* K > W */
    EXPECT_ERR(mxp_maxpool2d_forward(y, a, x, F32, 1, 7, 2, 3, 2, 0), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_maxpool2d_forward(y, a, x, F32, 1, 7, 2, 3, 0, 1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_maxpool2d_forward(y, a, x, (mxp_dtype)3, 1, 7, 2, 3, 2, 2), MXP_ERR_DTYPE);
    EXPECT_ERR(mxp_maxpool2d_forward(y, a, NULL, F32, 1, 7, 2, 3, 2, 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_maxpool2d_forward(y, a, x, F32, 1, 7, 2, 3, 2, 2), MXP_OK);
    EXPECT_ERR(mxp_maxpool2d_backward(x, y, NULL, F32, 1, 7, 2, 3, 2, 2), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_maxpool2d_backward(x, y, a, F32, 1, 7, 2, 3, 2, 2), MXP_OK);
}

int main(void) {
    const mxp_isa saved = mxp_isa_active();
    const int saved_threads = mxp_num_threads();
    isa_conf_init();

    static const test_part parts[] = {{"im2col/col2im", test_conv},
                                      {"conv errors", test_conv_errors},
                                      {"maxpool", test_pool},
                                      {"cross-entropy", test_cross_entropy},
                                      {"dropout", test_dropout},
                                      {"update vs torch", test_update_vs_torch},
                                      {"update bits", test_update_bits},
                                      {"update counters", test_update_counters},
                                      {"update errors", test_update_errors},
                                      {"census", test_census}};
    run_parts(parts, sizeof parts / sizeof parts[0]);

    mxp_isa_set(saved);
    mxp_set_num_threads(saved_threads);
    return check_exit("test_kernels_nn");
}
