/*
 * test_stochastic_rounding.c - stochastic rounding of 16-bit weights kept without fp32
 * masters (mxp_update_io.stochastic, mxp_optim_config.stochastic_rounding): the random words
 * against mxp_philox4x32; every stored bit against a scalar reference built from
 * mxp_format_encode_sr, on every ISA family this CPU runs, 1 and 2 threads, odd sizes, split
 * buffers and special values; unbiasedness where rounding to nearest loses every update;
 * seeds and steps; the optimizer's keys and offsets; the refusals. Not speed (bench/sr_effect.c).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "kernels/cpu/eltwise_impl.h"
#include "kernels/cpu/optim_impl.h"
#include "mixprec.h"
#include "isa_conf.h"
#include "test_util.h"

#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

static const mxp_dtype dtypes[] = {F32, BF16, F16};

static uint64_t rng = 0xbb67ae8584caa73bull;

static uint64_t rnd_u64(void) { return splitmix64(&rng); }

static float rnd_range(float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(rnd_u64() >> 11) * 0x1p-53);
}

static void *dup_bytes(const void *p, size_t bytes) {
    void *q = xmalloc(bytes);
    memcpy(q, p, bytes);
    return q;
}

#define EXPECT_ERR(call, want)                                                                     \
    do {                                                                                           \
        mxp_clear_error();                                                                         \
        const mxp_status st_ = (call);                                                             \
        CHECK(st_ == (want), "%s returned %d (%s), want %d", #call, (int)st_, mxp_last_error(),    \
              (int)(want));                                                                        \
    } while (0)

/* word w of the stream keyed by seed, as kernels.h defines it */
static uint32_t word(uint64_t seed, uint64_t w) {
    uint32_t r[4];
    mxp_philox4x32(seed, w / 4, r);
    return r[w % 4];
}

/* the 16-bit pattern b of dt widened */
static float widen(mxp_dtype dt, uint16_t b) {
    return dt == F16 ? mxp_fp16_to_fp32(b) : mxp_bf16_to_fp32(b);
}

/* v rounded stochastically to dt with word r: the public encoder */
static uint16_t sr_ref(mxp_dtype dt, float v, uint32_t r) {
    return (uint16_t)mxp_format_encode_sr(mxp_format_of(dt), v, r);
}

/* ---- the random words -------------------------------------------------------------------- */

/* mxp_sr_words against mxp_philox4x32 at every alignment, across the 2^32 block boundary
 * (the counter's high word) and at lengths around the 16-block batch. (The AVX-512 kernels
 * draw their words with their own Philox; test_kernel_bits checks those through the
 * stored weights.) */
static void test_words(void) {
    static const uint64_t starts[] = {0,
                                      1,
                                      2,
                                      3,
                                      5,
                                      63,
                                      64,
                                      4 * 0xfffffff0ull + 1,
                                      4 * 0xffffffffull - 2,
                                      (1ull << 42) + 7,
                                      UINT64_MAX - 300};
    static const size_t lens[] = {1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 66, 255, 256};
    static const uint64_t seeds[] = {0, 1, 0x123456789abcdef0ull};
    uint32_t out[260];
    for (size_t si = 0; si < 3; si++)
        for (size_t a = 0; a < sizeof starts / sizeof starts[0]; a++)
            for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++) {
                const size_t n = lens[b];
                out[n] = 0xdeadbeef; /* nothing past the end is written */
                mxp_sr_words(seeds[si], starts[a], n, out);
                size_t bad = 0;
                for (size_t j = 0; j < n; j++) bad += out[j] != word(seeds[si], starts[a] + j);
                CHECK(bad == 0 && out[n] == 0xdeadbeef,
                      "mxp_sr_words(seed %llu, w0 %llu, n %zu): %zu words differ",
                      (unsigned long long)seeds[si], (unsigned long long)starts[a], n, bad);
            }
}

/* ---- the kernels bit for bit -------------------------------------------------------------- */

typedef struct opt_case {
    int adamw;
    mxp_sgd_hparams sgd;
    mxp_adamw_hparams adam;
} opt_case;

static const opt_case cases[] = {
    {.sgd = {.lr = 1e-3f}},
    {.sgd = {.lr = 0.05f, .momentum = 0.9f, .dampening = 0.1f, .weight_decay = 0.01f}},
    {.sgd = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = 1}},
    {.adamw = 1,
     .adam = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f}},
    {.adamw = 1, .adam = {.lr = 1e-4f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f}},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* One update's buffers: n elements, 16-bit work wt without master (or, for the reference,
 * with the fp32 master = the work widened), gradients gt, state s0, s1. */
typedef struct st {
    size_t n;
    mxp_dtype wt, gt;
    uint16_t *work;
    float *master; /* NULL, or (n) */
    void *grad;
    float *s0, *s1;
} st;

static st st_copy(const st *a, int with_master) {
    st s = *a;
    s.work = dup_bytes(a->work, a->n * 2);
    s.master = NULL;
    if (with_master) {
        s.master = xmalloc(a->n * 4);
        for (size_t i = 0; i < a->n; i++) s.master[i] = widen(a->wt, a->work[i]);
    }
    s.grad = dup_bytes(a->grad, a->n * esize(a->gt));
    s.s0 = dup_bytes(a->s0, a->n * 4);
    s.s1 = dup_bytes(a->s1, a->n * 4);
    return s;
}

static void st_free(st *s) {
    free(s->work);
    free(s->master);
    free(s->grad);
    free(s->s0);
    free(s->s1);
}

/* elements [lo, hi) of s, one update: stochastic with (seed, offset + lo) when sr */
static mxp_status st_step(st *s, const opt_case *oc, int step, int sr, uint64_t seed,
                          uint64_t offset, size_t lo, size_t hi, uint64_t *nu, uint64_t *nl) {
    const mxp_update_io io = {.master = s->master ? s->master + lo : NULL,
                              .work = s->work + lo,
                              .work_dtype = s->wt,
                              .grad = (const char *)s->grad + lo * esize(s->gt),
                              .grad_dtype = s->gt,
                              .grad_mul = 0.75f,
                              .n = hi - lo,
                              .n_updated = nu,
                              .n_lost = nl,
                              .stochastic = sr,
                              .sr_seed = seed,
                              .sr_offset = offset + lo};
    if (oc->adamw) {
        mxp_adamw_hparams h = oc->adam;
        h.step = step;
        return mxp_adamw_update(&io, s->s0 + lo, s->s1 + lo, &h);
    }
    return mxp_sgd_update(&io, s->s0 + lo, &oc->sgd, step == 1);
}

/* Random data with the awkward values: weights at 1.0 (updates below half an ulp), zeros,
 * subnormals of the work dtype, the largest finite values (a step up may overflow to inf),
 * tiny and huge gradients, inf and NaN gradients. */
static st st_random(size_t n, mxp_dtype wt, mxp_dtype gt) {
    st s = {
        n, wt, gt, xmalloc(n * 2), NULL, xmalloc(n * esize(gt)), xmalloc(n * 4), xmalloc(n * 4)};
    const float big = wt == BF16 ? 3.3895314e38f : 65504.0f;
    const float sub = wt == BF16 ? 1e-39f : 3e-6f;
    for (size_t i = 0; i < n; i++) {
        const uint64_t r = rnd_u64();
        float wv = (r & 1 ? -1 : 1) * rnd_range(0.25f, 4.0f);
        if (r % 7 == 0) wv = 1.0f;
        if (r % 11 == 0) wv = 0.0f;
        if (r % 19 == 0) wv = (r & 2 ? -1 : 1) * sub * rnd_range(0.1f, 1.0f);
        if (r % 23 == 0) wv = (r & 2 ? -big : big);
        if (r % 29 == 0) wv = 0.0f; /* with the tiny gradients below: far below fp16's quantum */
        float gv = ldexpf(rnd_range(-1, 1), -(int)((r >> 8) % 24));
        if (r % 13 == 0) gv = 0.0f;
        if (r % 23 == 0) gv = (r & 4 ? -1 : 1) * (gt == F16 ? 60000.0f : 1e30f);
        if (r % 29 == 0 && gt == F32) gv = ldexpf(rnd_range(-1, 1), -(int)((r >> 16) % 40));
        if (r % 101 == 0) gv = INFINITY;
        if (r % 103 == 0) gv = NAN;
        put(wt, s.work, i, wv);
        put(gt, s.grad, i, gv);
        s.s0[i] = rnd_range(-0.1f, 0.1f);
        s.s1[i] = rnd_range(0.0f, 0.01f);
    }
    return s;
}

/* Two steps of s0 (left as it is) with case oc on every configuration against the reference:
 * the same update with an fp32 master equal to the widened weights and rounding to nearest
 * (the master then holds the exact fp32 result w_new, moments identical), and the stored
 * weight mxp_format_encode_sr(w_new, word(seed + step, offset + i)). Counters: updated where
 * w_new differs from the old weight, lost where the stored bits did not change. Every other
 * step and configuration splits the buffer in three calls with their own offsets: the same
 * bits. Returns the number of elements stochastic rounding moved up or down from the nearest
 * even result (how much of the rule the data exercised). */
static size_t kernel_vs_ref(const st *s0, const opt_case *oc, const char *what, uint64_t seed,
                            uint64_t offset) {
    const size_t n = s0->n;
    const mxp_dtype wt = s0->wt, gt = s0->gt;
    st ref = st_copy(s0, 1);
    uint16_t *want[2];
    uint64_t wnu[2] = {0, 0}, wnl[2] = {0, 0};
    size_t not_rne = 0;
    mxp_isa_set(MXP_ISA_REF);
    mxp_set_num_threads(1);
    for (int step = 1; step <= 2; step++) {
        const uint64_t sd = seed + (uint64_t)step;
        st_step(&ref, oc, step, 0, 0, 0, 0, n, NULL, NULL);
        want[step - 1] = xmalloc(n * 2);
        for (size_t i = 0; i < n; i++) {
            const uint16_t old = step == 1 ? s0->work[i] : want[0][i];
            const float w_old = widen(wt, old);
            const uint16_t b = sr_ref(wt, ref.master[i], word(sd, offset + i));
            want[step - 1][i] = b;
            not_rne += b != (uint16_t)mxp_format_encode(mxp_format_of(wt), ref.master[i]);
            if (ref.master[i] - w_old != 0.0f || isnan(ref.master[i])) {
                wnu[step - 1]++;
                wnl[step - 1] += b == old;
            }
            ref.master[i] = widen(wt, b); /* the next step starts from the rounded weight */
        }
    }
    for (int c = 0; c < nconf(); c++) {
        set_conf(c);
        st t = st_copy(s0, 0);
        for (int step = 1; step <= 2; step++) {
            uint64_t nu = 0, nl = 0;
            /* one call, or (every other step and configuration) three */
            const int split = (c + step) % 2;
            const size_t cut[4] = {0, split ? n / 3 : n, split ? MXP_MIN(n, 2 * n / 3 + 1) : n, n};
            for (int part = 0; part < 3; part++)
                if (cut[part] < cut[part + 1])
                    CHECK(st_step(&t, oc, step, 1, seed + (uint64_t)step, offset, cut[part],
                                  cut[part + 1], &nu, &nl) == MXP_OK,
                          "update: %s", mxp_last_error());
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < n; i++)
                if (t.work[i] != want[step - 1][i] && !bad++) first = i;
            const int mom = oc->adamw || oc->sgd.momentum != 0;
            const int same_state = (!mom || memcmp(t.s0, ref.s0, n * 4) == 0) &&
                                   (!oc->adamw || memcmp(t.s1, ref.s1, n * 4) == 0);
            CHECK(bad == 0 && nu == wnu[step - 1] && nl == wnl[step - 1] &&
                      (step == 1 || same_state),
                  "%s n=%zu work %s grad %s step %d on %s: %zu weights differ (first [%zu] "
                  "0x%04x want 0x%04x), counts %llu/%llu want %llu/%llu",
                  what, n, mxp_dtype_name(wt), mxp_dtype_name(gt), step, conf_name(c), bad, first,
                  t.work[first], want[step - 1][first], (unsigned long long)nu,
                  (unsigned long long)nl, (unsigned long long)wnu[step - 1],
                  (unsigned long long)wnl[step - 1]);
        }
        st_free(&t);
    }
    free(want[0]);
    free(want[1]);
    st_free(&ref);
    return not_rne;
}

/* Every case, work dtype and gradient dtype on random data with the awkward values, odd sizes
 * and the threaded size. */
static void test_kernel_bits(void) {
    static const size_t sizes[] = {1, 13, 16, 33, 300, 2 * MXP_EW_GRAIN + 77};
    /* the last one crosses block 2^32 (the high counter word) within the big size */
    static const uint64_t offsets[] = {0, 3, 4 * (0xffffffffull - 100) + 1};
    for (size_t zi = 0; zi < sizeof sizes / sizeof sizes[0]; zi++) {
        const size_t n = sizes[zi];
        for (size_t ci = 0; ci < NCASES; ci++)
            for (int wi = 1; wi < 3; wi++)
                for (int gi = 0; gi < 3; gi++) {
                    const mxp_dtype wt = dtypes[wi], gt = dtypes[gi];
                    if (n > 1000 && gi != wi && ci != 0 && ci != 3) continue; /* enough */
                    char what[32];
                    snprintf(what, sizeof what, "%s case %zu", cases[ci].adamw ? "adamw" : "sgd",
                             ci);
                    st s0 = st_random(n, wt, gt);
                    kernel_vs_ref(&s0, &cases[ci], what, rnd_u64(), offsets[(zi + ci) % 3]);
                    st_free(&s0);
                }
    }
}

/* fp16's small end, where the quantum stops shrinking: weights 0 or a few subnormals, moved by
 * updates from 2^-13 down to 2^-45 (SGD, lr 1): the subnormal shifts 14 .. 31 and, below
 * 2^-32, the encoder's far branch (the smallest subnormal with probability |w| / 2^-24). */
static void test_fp16_small(void) {
    const size_t n = 1 << 16;
    st s = {n, F16, F32, xmalloc(n * 2), NULL, xmalloc(n * 4), xmalloc(n * 4), xmalloc(n * 4)};
    for (size_t i = 0; i < n; i++) {
        const uint64_t r = rnd_u64();
        s.work[i] = (uint16_t)((r & 1 ? 0x8000 : 0) | (r % 3 == 0 ? (r >> 8) % 8 : 0));
        ((float *)s.grad)[i] = ldexpf(rnd_range(-1, 1), -(int)(13 + (r >> 16) % 33));
        s.s0[i] = s.s1[i] = 0;
    }
    const opt_case plain = {.sgd = {.lr = 1.0f}};
    const size_t moved = kernel_vs_ref(&s, &plain, "fp16 small", rnd_u64(), 5);
    CHECK(moved > 1000, "fp16 small: only %zu roundings differ from nearest even", moved);
    /* the far branch itself: |w_new| < 2^-32 rounds up to the smallest subnormal sometimes */
    for (size_t i = 0; i < n; i++) {
        s.work[i] = 0;
        ((float *)s.grad)[i] = -ldexpf(rnd_range(0.5f, 1), -33);
    }
    kernel_vs_ref(&s, &plain, "fp16 far", rnd_u64(), 0);
    st t = st_copy(&s, 0);
    uint64_t nu = 0, nl = 0;
    st_step(&t, &plain, 1, 1, 1, 0, 0, n, &nu, &nl);
    CHECK(nu == n && nl < n && nl > n - n / 100,
          "fp16 far: %llu of %llu updates lost, want all but about 1 in 1000",
          (unsigned long long)nl, (unsigned long long)nu);
    st_free(&t);
    st_free(&s);
}

/* ---- unbiasedness -------------------------------------------------------------------------- */

/* n weights at 1.0 moved by a constant update d of an eighth of the ulp above 1 for T steps
 * (SGD, lr 1, gradient -d): rounding to nearest never moves them and loses every update;
 * stochastic rounding moves each one ulp with probability 1/8 per step, so the mean movement
 * is T d within a few standard errors (u sqrt(T p (1 - p) / n), p = 1/8), and it loses about
 * 7/8 of the updates. bf16 and fp16, on every ISA. */
static void test_unbiased_sgd(void) {
    const size_t n = 4096;
    const int T = 64;
    for (int k = 0; k < nisa; k++)
        for (int wi = 1; wi < 3; wi++) {
            mxp_isa_set(isas[k]);
            const mxp_dtype wt = dtypes[wi];
            const double u = wt == BF16 ? 0x1p-7 : 0x1p-10, d = u / 8;
            for (int sr = 0; sr < 2; sr++) {
                uint16_t *w = xmalloc(n * 2), *g = xmalloc(n * 2);
                for (size_t i = 0; i < n; i++) {
                    put(wt, w, i, 1.0f);
                    put(wt, g, i, (float)-d);
                }
                const mxp_sgd_hparams h = {.lr = 1.0f};
                uint64_t nu = 0, nl = 0;
                for (int t = 0; t < T; t++) {
                    const mxp_update_io io = {.work = w,
                                              .work_dtype = wt,
                                              .grad = g,
                                              .grad_dtype = wt,
                                              .grad_mul = 1.0f,
                                              .n = n,
                                              .n_updated = &nu,
                                              .n_lost = &nl,
                                              .stochastic = sr,
                                              .sr_seed = mxp_optim_sr_key(42, t)};
                    CHECK(mxp_sgd_update(&io, NULL, &h, t == 0) == MXP_OK, "%s", mxp_last_error());
                }
                double sum = 0;
                for (size_t i = 0; i < n; i++) sum += (double)get(wt, w, i) - 1.0;
                const double mean = sum / (double)n, want = T * d;
                const double se = u * sqrt(T * (1.0 / 8) * (7.0 / 8) / (double)n);
                if (!sr) {
                    CHECK(mean == 0 && nl == nu && nu == (uint64_t)T * n,
                          "%s nearest: mean movement %g (want 0), lost %llu of %llu",
                          mxp_dtype_name(wt), mean, (unsigned long long)nl, (unsigned long long)nu);
                } else {
                    CHECK(fabs(mean - want) <= 5 * se,
                          "%s stochastic on %s: mean movement %.6g, want %.6g +- %.3g (5 s.e.)",
                          mxp_dtype_name(wt), mxp_isa_name(isas[k]), mean, want, 5 * se);
                    const double lost = (double)nl / (double)nu;
                    CHECK(nu == (uint64_t)T * n && fabs(lost - 7.0 / 8) < 0.01,
                          "%s stochastic: lost fraction %.4f of %llu, want about 0.875",
                          mxp_dtype_name(wt), lost, (unsigned long long)nu);
                    if (k == nisa - 1)
                        printf("  %s: %d steps of ulp/8: mean movement %.6g (exact %.6g, s.e. "
                               "%.2g), %.1f%% of updates kept\n",
                               mxp_dtype_name(wt), T, mean, want, se, 100 * (1 - lost));
                }
                free(w);
                free(g);
            }
        }
}

/* AdamW with a constant gradient on bf16 weights at 1.0, lr 2^-10 and no weight decay: each
 * step moves by about lr, an eighth of the ulp. The fp32-master run gives the exact sum of
 * the fp32 updates (they do not depend on the weight); the stochastic run's mean movement
 * matches it within a few standard errors (measured from the sample), the nearest-even run
 * without master stays at 1.0. */
static void test_unbiased_adamw(void) {
    const size_t n = 4096;
    const int T = 64;
    float *master = xmalloc(n * 4), *m = xmalloc(n * 4), *v = xmalloc(n * 4);
    uint16_t *w = xmalloc(n * 2), *g = xmalloc(n * 2);
    double move[3]; /* master, nearest, stochastic */
    double se = 0;
    mxp_isa_set(isas[nisa - 1]);
    for (int mode = 0; mode < 3; mode++) {
        for (size_t i = 0; i < n; i++) {
            master[i] = 1.0f;
            put(BF16, w, i, 1.0f);
            put(BF16, g, i, -0.5f);
            m[i] = v[i] = 0;
        }
        for (int t = 1; t <= T; t++) {
            const mxp_update_io io = {.master = mode == 0 ? master : NULL,
                                      .work = w,
                                      .work_dtype = BF16,
                                      .grad = g,
                                      .grad_dtype = BF16,
                                      .grad_mul = 1.0f,
                                      .n = n,
                                      .stochastic = mode == 2,
                                      .sr_seed = mxp_optim_sr_key(7, t - 1)};
            const mxp_adamw_hparams h = {
                .lr = 0x1p-10f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = t};
            CHECK(mxp_adamw_update(&io, m, v, &h) == MXP_OK, "%s", mxp_last_error());
        }
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) {
            const double x = (mode == 0 ? (double)master[i] : (double)get(BF16, w, i)) - 1.0;
            s += x;
            s2 += x * x;
        }
        move[mode] = s / (double)n;
        if (mode == 2) se = sqrt((s2 / (double)n - move[2] * move[2]) / (double)(n - 1));
    }
    CHECK(move[0] > 0.9 * T * 0x1p-10 && move[0] < 1.1 * T * 0x1p-10,
          "adamw fp32 master: moved %g, want about %g", move[0], T * 0x1p-10);
    CHECK(move[1] == 0, "adamw bf16 nearest without master: moved %g, want 0", move[1]);
    CHECK(se > 0 && fabs(move[2] - move[0]) <= 5 * se,
          "adamw bf16 stochastic: moved %.6g, the fp32 sum is %.6g (s.e. %.2g)", move[2], move[0],
          se);
    printf("  adamw bf16: fp32 master %.6g, nearest %.6g, stochastic %.6g (s.e. %.2g)\n", move[0],
           move[1], move[2], se);
    free(master);
    free(m);
    free(v);
    free(w);
    free(g);
}

/* ---- seeds, steps, the optimizer ---------------------------------------------------------- */

/* mlp-like model: 784 -> 96 -> 10 (75,274 weights + biases; the first weight is past the
 * threading grain), bf16 or fp16, master weights on or off, from seed 3. */
static mxp_model_t *small_model(mxp_dtype work, int master) {
    mxp_model_t *m = NULL;
    CHECK(mxp_model_sequential(&m, "sr", 28, 28, 1, 10) == MXP_OK, "%s", mxp_last_error());
    mxp_model_add_flatten(m);
    mxp_model_add_linear(m, 784, 96);
    mxp_model_add_relu(m);
    mxp_model_add_linear(m, 96, 10);
    CHECK(mxp_model_init(m, 3) == MXP_OK, "%s", mxp_last_error());
    CHECK(mxp_model_set_precision(m, work, master) == MXP_OK, "%s", mxp_last_error());
    return m;
}

/* gradients of step t: small values (most updates far below half an ulp), the same for
 * every model of the same shape; the last parameter (a bias) gets none when skip_last */
static void set_grads(mxp_model_t *m, int t, int skip_last) {
    uint64_t s = 0x9e37u + (uint64_t)t;
    for (int i = 0; i < m->n_params; i++) {
        mxp_param *p = m->params[i];
        const size_t n = (size_t)mxp_tensor_numel(p->grad);
        for (size_t j = 0; j < n; j++)
            put(p->grad->dtype, p->grad->data, j,
                (float)((double)(splitmix64(&s) >> 11) * 0x1p-53 - 0.5) * 1e-2f);
        p->var.has_grad = !(skip_last && i == m->n_params - 1);
    }
}

static mxp_optimizer_t *make_opt(mxp_optim_kind kind, int sr, uint64_t seed, float lr) {
    mxp_optim_config oc;
    mxp_optim_config_default(&oc, kind);
    oc.lr = lr;
    oc.stochastic_rounding = sr;
    oc.sr_seed = seed;
    mxp_optimizer_t *o = NULL;
    CHECK(mxp_optimizer_create(&o, &oc) == MXP_OK, "%s", mxp_last_error());
    return o;
}

/* every work byte of two models of the same shape equal */
static int same_weights(const mxp_model_t *a, const mxp_model_t *b) {
    for (int i = 0; i < a->n_params; i++)
        if (memcmp(a->params[i]->work->data, b->params[i]->work->data,
                   mxp_tensor_nbytes(a->params[i]->work)) != 0)
            return 0;
    return 1;
}

/* the fraction of weights of two 16-bit models that differ */
static double diff_frac(const mxp_model_t *a, const mxp_model_t *b) {
    size_t d = 0, n = 0;
    for (int i = 0; i < a->n_params; i++) {
        const uint16_t *x = a->params[i]->work->data, *y = b->params[i]->work->data;
        const size_t k = (size_t)mxp_tensor_numel(a->params[i]->work);
        for (size_t j = 0; j < k; j++) d += x[j] != y[j];
        n += k;
    }
    return (double)d / (double)n;
}

/* Train `steps` steps (starting at optimizer step `start`) with fixed gradients. */
static void run(mxp_model_t *m, mxp_optimizer_t *o, int start, int steps, int skip_last,
                mxp_update_stats *us) {
    CHECK(mxp_optimizer_set_steps(o, start) == MXP_OK, "%s", mxp_last_error());
    for (int t = start; t < start + steps; t++) {
        set_grads(m, t, skip_last);
        CHECK(mxp_optimizer_step(o, mxp_optimizer_config(o)->lr, 1.0f, us) == MXP_OK, "step: %s",
              mxp_last_error());
    }
}

/* Through the optimizer, SGD and AdamW: the same seed gives the same bits on every ISA and
 * thread count; another seed, or the same gradients at another step, other bits; the
 * stochastic run keeps updates the nearest-even run loses. */
static void test_optimizer_seeds(void) {
    for (int kind = 0; kind < 2; kind++) {
        const mxp_optim_kind k = kind ? MXP_OPTIM_ADAMW : MXP_OPTIM_SGD;
        const float lr = kind ? 1e-5f : 1e-2f; /* most updates below half an ulp */
        mxp_isa_set(MXP_ISA_REF);
        mxp_set_num_threads(1);
        mxp_model_t *ref = small_model(BF16, 0);
        mxp_optimizer_t *oref = make_opt(k, 1, 1234, lr);
        CHECK(mxp_optimizer_bind(oref, ref) == MXP_OK, "bind: %s", mxp_last_error());
        mxp_update_stats sr_stats = {0, 0};
        run(ref, oref, 0, 3, 1, &sr_stats);
        for (int c = 0; c < nconf(); c++) {
            set_conf(c);
            mxp_model_t *m = small_model(BF16, 0);
            mxp_optimizer_t *o = make_opt(k, 1, 1234, lr);
            mxp_optimizer_bind(o, m);
            run(m, o, 0, 3, 1, NULL);
            CHECK(same_weights(m, ref), "%s on %s: the same seed gave other weights",
                  mxp_optim_name(k), conf_name(c));
            mxp_optimizer_free(o);
            mxp_model_free(m);
        }
        mxp_isa_set(isas[nisa - 1]);
        mxp_set_num_threads(2);
        /* another seed */
        mxp_model_t *m2 = small_model(BF16, 0);
        mxp_optimizer_t *o2 = make_opt(k, 1, 1235, lr);
        mxp_optimizer_bind(o2, m2);
        run(m2, o2, 0, 3, 1, NULL);
        const double df = diff_frac(m2, ref);
        CHECK(df > 0.05, "%s: seeds 1234 and 1235 differ in only %.4f of the weights",
              mxp_optim_name(k), df);
        /* nearest even loses more */
        mxp_model_t *m3 = small_model(BF16, 0);
        mxp_optimizer_t *o3 = make_opt(k, 0, 1234, lr);
        mxp_optimizer_bind(o3, m3);
        mxp_update_stats rne_stats = {0, 0};
        run(m3, o3, 0, 3, 1, &rne_stats);
        const double l_sr = (double)sr_stats.lost / (double)sr_stats.updated;
        const double l_rne = (double)rne_stats.lost / (double)rne_stats.updated;
        CHECK(sr_stats.updated > 0 && rne_stats.updated > 0 && l_sr < l_rne && l_rne > 0.5,
              "%s: lost fractions stochastic %.4f nearest %.4f (updated %llu, %llu)",
              mxp_optim_name(k), l_sr, l_rne, (unsigned long long)sr_stats.updated,
              (unsigned long long)rne_stats.updated);
        printf("  %s bf16, 3 steps: lost updates %.1f%% nearest, %.1f%% stochastic\n",
               mxp_optim_name(k), 100 * l_rne, 100 * l_sr);
        /* the last bias had no gradient: untouched by both */
        const mxp_param *lb = ref->params[ref->n_params - 1], *lb3 = m3->params[m3->n_params - 1];
        CHECK(memcmp(lb->work->data, lb3->work->data, mxp_tensor_nbytes(lb->work)) == 0,
              "a parameter without gradient moved");
        mxp_optimizer_free(o2);
        mxp_model_free(m2);
        mxp_optimizer_free(o3);
        mxp_model_free(m3);
        mxp_optimizer_free(oref);
        mxp_model_free(ref);
    }
    /* the same gradients one step at step 0 and at step 5 (SGD without momentum: the update
     * does not depend on the step count), so only the words differ */
    mxp_model_t *a = small_model(BF16, 0), *b = small_model(BF16, 0);
    mxp_optimizer_t *oa = make_opt(MXP_OPTIM_SGD, 1, 99, 1e-2f);
    mxp_optimizer_t *ob = make_opt(MXP_OPTIM_SGD, 1, 99, 1e-2f);
    const mxp_optim_config *ca = mxp_optimizer_config(oa);
    CHECK(ca->stochastic_rounding == 1 && ca->sr_seed == 99, "config copied");
    mxp_optimizer_bind(oa, a);
    mxp_optimizer_bind(ob, b);
    set_grads(a, 0, 0);
    set_grads(b, 0, 0);
    mxp_optimizer_step(oa, 1e-2f, 1.0f, NULL);
    mxp_optimizer_set_steps(ob, 5);
    mxp_optimizer_step(ob, 1e-2f, 1.0f, NULL);
    CHECK(diff_frac(a, b) > 0.05, "steps 0 and 5 drew the same words: %.4f differ",
          diff_frac(a, b));
    CHECK(mxp_optim_sr_key(99, 0) != mxp_optim_sr_key(99, 1) &&
              mxp_optim_sr_key(99, 0) != mxp_optim_sr_key(98, 0) &&
              mxp_optim_sr_key(0, 0) != mxp_optim_sr_key(0, 1),
          "sr keys collide");
    mxp_optimizer_free(oa);
    mxp_optimizer_free(ob);
    mxp_model_free(a);
    mxp_model_free(b);
}

/* The optimizer's words exactly: a pure bf16 (and fp16) model with stochastic rounding
 * against a twin with fp32 masters set to its widened weights, rounding to nearest (its
 * master receives the exact fp32 result): parameter p's element j must be
 * mxp_format_encode_sr(master, word(mxp_optim_sr_key(seed, t), offset(p) + j)), offset(p) the
 * elements of the parameters before p. A sample of every parameter, at step 2 (t = 2). */
static void test_optimizer_reference(void) {
    for (int wi = 1; wi < 3; wi++)
        for (int kind = 0; kind < 2; kind++) {
            const mxp_dtype wt = dtypes[wi];
            const mxp_optim_kind k = kind ? MXP_OPTIM_ADAMW : MXP_OPTIM_SGD;
            const float lr = kind ? 1e-3f : 1e-2f;
            mxp_model_t *pure = small_model(wt, 0), *twin = small_model(wt, 1);
            mxp_optimizer_t *op = make_opt(k, 1, 555, lr), *ot = make_opt(k, 0, 0, lr);
            mxp_optimizer_bind(op, pure);
            mxp_optimizer_bind(ot, twin);
            run(pure, op, 0, 2, 0, NULL); /* some history in the moments */
            for (int i = 0; i < pure->n_params; i++) {
                mxp_param *p = pure->params[i], *q = twin->params[i];
                const size_t n = (size_t)mxp_tensor_numel(p->work);
                memcpy(q->work->data, p->work->data, n * 2);
                for (size_t j = 0; j < n; j++)
                    ((float *)q->master->data)[j] = widen(wt, ((const uint16_t *)p->work->data)[j]);
                float *pm1, *pm2, *qm1, *qm2;
                mxp_optimizer_moments(op, i, &pm1, &pm2, NULL, NULL);
                mxp_optimizer_moments(ot, i, &qm1, &qm2, NULL, NULL);
                if (pm1) memcpy(qm1, pm1, n * 4);
                if (pm2) memcpy(qm2, pm2, n * 4);
            }
            mxp_optimizer_set_steps(ot, 2);
            run(pure, op, 2, 1, 0, NULL);
            run(twin, ot, 2, 1, 0, NULL);
            const uint64_t key = mxp_optim_sr_key(555, 2);
            uint64_t offset = 0;
            size_t bad = 0, checked = 0, moved = 0;
            for (int i = 0; i < pure->n_params; i++) {
                const mxp_param *p = pure->params[i], *q = twin->params[i];
                const size_t n = (size_t)mxp_tensor_numel(p->work);
                for (size_t j = 0; j < n; j += 1 + j % 5) {
                    const uint16_t want =
                        sr_ref(wt, ((const float *)q->master->data)[j], word(key, offset + j));
                    const uint16_t got = ((const uint16_t *)p->work->data)[j];
                    if (got != want && bad++ < 3)
                        fprintf(stderr, "  %s %s %s[%zu]: 0x%04x want 0x%04x\n", mxp_dtype_name(wt),
                                mxp_optim_name(k), p->name, j, got, want);
                    moved += got != ((const uint16_t *)q->work->data)[j];
                    checked++;
                }
                offset += n;
            }
            CHECK(bad == 0 && checked > 20000, "%s %s: %zu of %zu sampled weights differ",
                  mxp_dtype_name(wt), mxp_optim_name(k), bad, checked);
            CHECK(moved > 0, "%s %s: stochastic and nearest never differ", mxp_dtype_name(wt),
                  mxp_optim_name(k));
            mxp_optimizer_free(op);
            mxp_optimizer_free(ot);
            mxp_model_free(pure);
            mxp_model_free(twin);
        }
}

/* ---- refusals, and the nearest-even path untouched ---------------------------------------- */

static void test_errors(void) {
    /* the optimizer: only 16-bit weights without masters */
    static const struct {
        mxp_dtype work;
        int master, ok;
    } models[] = {{BF16, 0, 1}, {F16, 0, 1}, {BF16, 1, 0}, {F16, 1, 0}, {F32, 1, 0}};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        mxp_model_t *m = small_model(models[i].work, models[i].master);
        mxp_optimizer_t *o = make_opt(MXP_OPTIM_ADAMW, 1, 1, 1e-3f);
        mxp_clear_error();
        const mxp_status st = mxp_optimizer_bind(o, m);
        if (models[i].ok) {
            CHECK(st == MXP_OK, "bind %s without master: %s", mxp_dtype_name(models[i].work),
                  mxp_last_error());
        } else {
            CHECK(st == MXP_ERR_INVALID_ARG &&
                      strstr(mxp_last_error(), "stochastic rounding applies to 16-bit weights "
                                               "kept without fp32 masters (--master-weights off, "
                                               "bf16 or fp16)") &&
                      !strchr(mxp_last_error(), '\n'),
                  "bind %s master %d: %d (%s)", mxp_dtype_name(models[i].work), models[i].master,
                  (int)st, mxp_last_error());
            if (i == 2 || i == 4) printf("  refusal: %s\n", mxp_last_error());
            /* the same model binds with rounding to nearest */
            mxp_optimizer_t *o2 = make_opt(MXP_OPTIM_ADAMW, 0, 1, 1e-3f);
            CHECK(mxp_optimizer_bind(o2, m) == MXP_OK, "%s", mxp_last_error());
            mxp_optimizer_free(o2);
        }
        mxp_optimizer_free(o);
        mxp_model_free(m);
    }
    mxp_optim_config oc;
    mxp_optim_config_default(&oc, MXP_OPTIM_SGD);
    CHECK(oc.stochastic_rounding == 0 && oc.sr_seed == 0, "stochastic rounding is off by default");

    /* the kernels: stochastic needs master == NULL and 16-bit work, checked even for n == 0 */
    float master[8] = {0}, m[8] = {0}, v[8] = {0}, w32[8] = {0};
    uint16_t work[8] = {0}, grad[8] = {0};
    mxp_update_io io = {.work = work,
                        .work_dtype = BF16,
                        .grad = grad,
                        .grad_dtype = BF16,
                        .grad_mul = 1.0f,
                        .n = 8,
                        .stochastic = 1};
    const mxp_sgd_hparams sh = {.lr = 0.1f};
    const mxp_adamw_hparams ah = {
        .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 1};
    EXPECT_ERR(mxp_sgd_update(&io, NULL, &sh, 1), MXP_OK);
    EXPECT_ERR(mxp_adamw_update(&io, m, v, &ah), MXP_OK);
    mxp_update_io b = io;
    b.master = master;
    EXPECT_ERR(mxp_sgd_update(&b, NULL, &sh, 1), MXP_ERR_INVALID_ARG);
    EXPECT_ERR(mxp_adamw_update(&b, m, v, &ah), MXP_ERR_INVALID_ARG);
    b.n = 0;
    EXPECT_ERR(mxp_sgd_update(&b, NULL, &sh, 1), MXP_ERR_INVALID_ARG);
    b = io;
    b.work = w32;
    b.work_dtype = F32;
    EXPECT_ERR(mxp_sgd_update(&b, NULL, &sh, 1), MXP_ERR_INVALID_ARG);
    b.master = w32; /* f32 with master == work: still no stochastic rounding */
    EXPECT_ERR(mxp_adamw_update(&b, m, v, &ah), MXP_ERR_INVALID_ARG);
    b.stochastic = 0;
    EXPECT_ERR(mxp_adamw_update(&b, m, v, &ah), MXP_OK);
}

/* stochastic == 0 ignores sr_seed and sr_offset: the nearest-even bits. */
static void test_rne_unchanged(void) {
    const size_t n = 1000;
    for (int c = 0; c < nconf(); c++) {
        set_conf(c);
        st a = st_random(n, BF16, BF16);
        st b = st_copy(&a, 0);
        uint64_t nua = 0, nla = 0, nub = 0, nlb = 0;
        CHECK(st_step(&a, &cases[3], 1, 0, 0, 0, 0, n, &nua, &nla) == MXP_OK, "update");
        CHECK(st_step(&b, &cases[3], 1, 0, 0xfeedull, 12345, 0, n, &nub, &nlb) == MXP_OK, "update");
        CHECK(memcmp(a.work, b.work, n * 2) == 0 && nua == nub && nla == nlb,
              "on %s: sr_seed/sr_offset changed a nearest-even update", conf_name(c));
        st_free(&a);
        st_free(&b);
    }
}

int main(void) {
    const mxp_isa saved = mxp_isa_active();
    const int saved_threads = mxp_num_threads();
    isa_conf_init();

    static const test_part parts[] = {{"words", test_words},
                                      {"kernel bits", test_kernel_bits},
                                      {"fp16 small", test_fp16_small},
                                      {"unbiased sgd", test_unbiased_sgd},
                                      {"unbiased adamw", test_unbiased_adamw},
                                      {"seeds and steps", test_optimizer_seeds},
                                      {"optimizer ref", test_optimizer_reference},
                                      {"errors", test_errors},
                                      {"nearest unchanged", test_rne_unchanged}};
    run_parts(parts, sizeof parts / sizeof parts[0]);

    mxp_isa_set(saved);
    mxp_set_num_threads(saved_threads);
    return check_exit("test_stochastic_rounding");
}
