/*
 * test_numerics_stats.c - the numerics statistics of `mixprec train --numerics-stats`
 * (issue 7): the log2 histogram and the fp16/bf16 classes of mxp_numerics against
 * independent references (frexp; the format encoder of mxp_range_stats_f32), the quantile
 * and the advisor on constructed statistics, and a training run: what the log holds with the
 * option on (every kind of tensor, consistent counts, the loss-scaled gradients a shift of
 * the unscaled ones by exactly log2(scale) bins, the overflowing step measured, the advice)
 * and that nothing is measured with it off.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixprec.h"
#include "test_util.h"
#include "tiny_idx.h"

/* ---- mxp_numerics against references ----------------------------------------------------- */

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_measure(void) {
    enum { N = 200000 };
    float *x = xmalloc(N * sizeof *x);
    uint64_t st = 7;
    int k = 0;
    /* the boundaries where rounding decides the class, and their neighbours */
    const float edges[] = {
        0x1p-25f,  0x1p-24f,  0x1p-14f - 0x1p-25f,   0x1p-14f,  65504.0f,    65520.0f,
        0x1p-134f, 0x1p-133f, 0x1p-126f - 0x1p-134f, 0x1p-126f, 0x1.fep127f, 0x1.ffp127f,
        1.0f,      0.0f};
    for (size_t e = 0; e < sizeof edges / sizeof *edges; e++)
        for (int d = -2; d <= 2; d++) {
            uint32_t u;
            memcpy(&u, &edges[e], sizeof u);
            x[k++] = from_bits(u + (uint32_t)d);
            x[k++] = -from_bits(u + (uint32_t)d);
        }
    x[k++] = INFINITY;
    x[k++] = NAN;
    x[k++] = -0.0f;
    while (k < N) x[k++] = from_bits((uint32_t)splitmix64(&st)); /* every class of fp32 */

    mxp_numerics s;
    mxp_numerics_clear(&s);
    /* in two calls: the counts add up */
    CHECK(mxp_numerics_add(&s, x, MXP_DTYPE_F32, N / 2, 1.0f) == MXP_OK &&
              mxp_numerics_add(&s, x + N / 2, MXP_DTYPE_F32, N - N / 2, 1.0f) == MXP_OK,
          "add: %s", mxp_last_error());
    const mxp_format *fmts[2] = {&mxp_format_fp16, &mxp_format_bf16};
    const mxp_range_stats *got[2] = {&s.fp16, &s.bf16};
    for (int f = 0; f < 2; f++) {
        mxp_range_stats ref;
        mxp_range_stats_f32(fmts[f], x, N, &ref);
        CHECK(got[f]->n == ref.n && got[f]->zero == ref.zero &&
                  got[f]->nonfinite == ref.nonfinite && got[f]->overflow == ref.overflow &&
                  got[f]->flush == ref.flush && got[f]->subnormal == ref.subnormal &&
                  got[f]->normal == ref.normal && got[f]->max_abs == ref.max_abs &&
                  got[f]->min_abs == ref.min_abs,
              "%s classes: zero %zu/%zu nonfinite %zu/%zu overflow %zu/%zu flush %zu/%zu "
              "subnormal %zu/%zu normal %zu/%zu",
              f ? "bf16" : "fp16", got[f]->zero, ref.zero, got[f]->nonfinite, ref.nonfinite,
              got[f]->overflow, ref.overflow, got[f]->flush, ref.flush, got[f]->subnormal,
              ref.subnormal, got[f]->normal, ref.normal);
    }
    /* the histogram: floor(log2|x|) from frexp */
    static uint64_t hist[MXP_LOG2_BINS];
    uint64_t zero = 0, nonfinite = 0;
    for (int i = 0; i < N; i++) {
        if (x[i] == 0.0f) {
            zero++;
            continue;
        }
        if (!isfinite(x[i])) {
            nonfinite++;
            continue;
        }
        int e;
        frexp((double)x[i], &e);
        hist[e - 1 - MXP_LOG2_MIN]++;
    }
    int bad = 0;
    for (int i = 0; i < MXP_LOG2_BINS; i++) bad += hist[i] != s.log2[i];
    CHECK(bad == 0 && s.zero == zero && s.nonfinite == nonfinite && s.n == N,
          "histogram: %d bins differ; zero %llu/%llu nonfinite %llu/%llu", bad,
          (unsigned long long)s.zero, (unsigned long long)zero, (unsigned long long)s.nonfinite,
          (unsigned long long)nonfinite);

    /* bf16 input with mul 2^-16: every value lands exactly 16 bins lower */
    uint16_t *h = xmalloc(1000 * sizeof *h);
    for (int i = 0; i < 1000; i++) h[i] = mxp_fp32_to_bf16(ldexpf(1.0f + (float)i / 1000, i % 20));
    mxp_numerics a, b;
    mxp_numerics_clear(&a);
    mxp_numerics_clear(&b);
    mxp_numerics_add(&a, h, MXP_DTYPE_BF16, 1000, 1.0f);
    mxp_numerics_add(&b, h, MXP_DTYPE_BF16, 1000, 0x1p-16f);
    bad = 0;
    for (int i = 16; i < MXP_LOG2_BINS; i++) bad += a.log2[i] != b.log2[i - 16];
    CHECK(bad == 0 && a.max_abs == 65536.0 * b.max_abs, "mul shifts the histogram: %d bins", bad);
    /* merge = adding both */
    mxp_numerics m = a;
    mxp_numerics_merge(&m, &b);
    CHECK(m.n == 2000 && m.log2[-MXP_LOG2_MIN] == a.log2[-MXP_LOG2_MIN] + b.log2[-MXP_LOG2_MIN],
          "merge");
    CHECK(mxp_numerics_add(&a, h, MXP_DTYPE_COUNT, 4, 1.0f) == MXP_ERR_DTYPE,
          "unknown dtype refused");
    free(h);
    free(x);
}

static void test_quantile_and_advice(void) {
    mxp_numerics g, act;
    mxp_numerics_clear(&g);
    mxp_numerics_clear(&act);
    /* 10000 gradients: 20 at 2^-40, the rest between 2^-20 and 2^-2 */
    g.log2[-40 - MXP_LOG2_MIN] = 20;
    for (int e = -20; e <= -2; e++) g.log2[e - MXP_LOG2_MIN] = e == -2 ? 9980 - 18 * 555 : 555;
    g.n = 10000;
    g.max_abs = 0.3;
    g.fp16.flush = 20;
    /* 0.1% may lie below: 10 values, so the 20 at 2^-40 set it; 1% allows them all */
    CHECK(mxp_numerics_quantile_low(&g, 1e-3) == 0x1p-40 &&
              mxp_numerics_quantile_low(&g, 1e-2) == 0x1p-20,
          "quantiles %g %g", mxp_numerics_quantile_low(&g, 1e-3),
          mxp_numerics_quantile_low(&g, 1e-2));
    act.max_abs = 100;
    mxp_numerics_advice v;
    mxp_numerics_advise(&g, &act, 0.2, 0.5, &v);
    /* 2^-24 / 2^-40 = 2^16 lifts the 0.1% quantile; 65504 / 0.3 allows 2^17 */
    CHECK(v.scale_min == 0x1p16 && v.scale_max == 0x1p17 && v.fp16_ok &&
              fabs(v.grad_flush_fp16 - 2e-3) < 1e-12,
          "advice: scale [%g, %g] ok %d flush %g", v.scale_min, v.scale_max, v.fp16_ok,
          v.grad_flush_fp16);
    char text[1024];
    mxp_numerics_advice_text(&v, text, sizeof text);
    CHECK(strstr(text, "from 2^16") && strstr(text, "to 2^17") && strstr(text, "verdict: fp16"),
          "text: %s", text);
    /* activations past 65504: bf16 */
    act.max_abs = 1e5;
    mxp_numerics_advise(&g, &act, -1, -1, &v);
    mxp_numerics_advice_text(&v, text, sizeof text);
    CHECK(!v.fp16_ok && strstr(text, "verdict: bf16") && strstr(text, "overflow"), "text: %s",
          text);
    /* gradients spanning more than fp16's range: no scale works */
    act.max_abs = 1;
    g.max_abs = 1e4;
    mxp_numerics_advise(&g, &act, -1, -1, &v);
    mxp_numerics_advice_text(&v, text, sizeof text);
    CHECK(!v.fp16_ok && v.scale_min > v.scale_max && strstr(text, "none works"), "text: %s", text);
    char small[16];
    mxp_numerics_advice_text(&v, small, sizeof small);
    CHECK(strlen(small) == sizeof small - 1, "truncated text stays terminated");
}

/* ---- a training run ------------------------------------------------------------------------- */

typedef struct seen {
    int weight, grad, grad_scaled, activation, activation_grad, advice, bad_counts, summary_cost;
    int64_t first_numerics_step, overflow_nonfinite;
    int shift_checked, shift_bad;
} seen;

static long long num_after(const char *line, const char *key) {
    const char *p = strstr(line, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* Read the numerics lines of a log; for fp16 runs compare grad and grad_scaled of fc1.weight
 * at step 1 (a shift by log2 of the scale). */
static void scan(const char *path, seen *s, int shift) {
    memset(s, 0, sizeof *s);
    s->first_numerics_step = -1;
    FILE *f = fopen(path, "r");
    if (!f) return;
    static char line[1 << 16], grad1[1 << 16];
    grad1[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "\"event\":\"advice\"")) s->advice++;
        if (strstr(line, "\"event\":\"summary\"") && strstr(line, "\"numerics_s\":"))
            s->summary_cost++;
        if (!strstr(line, "\"event\":\"numerics\"")) continue;
        const long long step = num_after(line, "\"step\":");
        if (s->first_numerics_step < 0) s->first_numerics_step = step;
        s->weight += strstr(line, "\"kind\":\"weight\"") != NULL;
        s->grad += strstr(line, "\"kind\":\"grad\"") != NULL;
        s->grad_scaled += strstr(line, "\"kind\":\"grad_scaled\"") != NULL;
        s->activation += strstr(line, "\"kind\":\"activation\"") != NULL;
        s->activation_grad += strstr(line, "\"kind\":\"activation_grad\"") != NULL;
        if (strstr(line, "\"nonfinite\":") && num_after(line, "\"nonfinite\":") > 0)
            s->overflow_nonfinite++;
        /* n = zero + nonfinite + the histogram */
        long long sum = num_after(line, "\"zero\":") + num_after(line, "\"nonfinite\":");
        const char *c = strstr(line, "\"log2_counts\":[");
        for (c = c ? c + 15 : NULL; c && *c && *c != ']';) {
            char *end;
            sum += strtoll(c, &end, 10);
            c = *end == ',' ? end + 1 : end;
        }
        s->bad_counts += sum != num_after(line, "\"n\":");
        if (shift && step == 1 && strstr(line, "\"name\":\"fc1.weight\"")) {
            const char *lo = strstr(line, "\"log2_lo\":"), *cs = strstr(line, "\"log2_counts\"");
            if (strstr(line, "\"kind\":\"grad\"")) {
                snprintf(grad1, sizeof grad1, "%lld %s", lo ? strtoll(lo + 10, NULL, 10) : 0,
                         cs ? cs : "");
            } else if (strstr(line, "\"kind\":\"grad_scaled\"") && grad1[0]) {
                char mine[1 << 16];
                snprintf(mine, sizeof mine, "%lld %s",
                         (lo ? strtoll(lo + 10, NULL, 10) : 0) - shift, cs ? cs : "");
                /* compare "lo counts" up to the end of the array */
                const size_t la = strcspn(grad1, "]"), lb = strcspn(mine, "]");
                s->shift_checked = 1;
                s->shift_bad = la != lb || strncmp(grad1, mine, la) != 0;
            }
        }
    }
    fclose(f);
}

static void test_training_run(void) {
    const char *data = make_set(tmpdir, "idx", 512, 512, 128, 0, -1);
    mxp_trainer_args a;
    mxp_trainer_args_default(&a);
    snprintf(a.model, sizeof a.model, "mlp");
    snprintf(a.data, sizeof a.data, "%s", data);
    a.hidden = 32;
    a.batch_size = 64;
    a.max_steps = 12;
    a.stats_every = 5;
    a.numerics_stats = 1;
    snprintf(a.mixed_precision, sizeof a.mixed_precision, "fp16");
    snprintf(a.log, sizeof a.log, "%s", tpath("on.jsonl"));
    mxp_train_summary sum;
    CHECK(mxp_trainer_run(&a, NULL, NULL, &sum) == MXP_OK, "run: %s", mxp_last_error());
    seen s;
    scan(tpath("on.jsonl"), &s, 16); /* fp16's dynamic scale starts at 2^16 */
    /* steps 1, 6, 11: 6 parameters' weights and gradients each */
    CHECK(s.weight == 18 && s.grad == 18 && s.grad_scaled == 18, "weight %d grad %d scaled %d",
          s.weight, s.grad, s.grad_scaled);
    /* the mlp's three linear layers (ReLU fused), one group each: linear.1 .. linear.3 */
    CHECK(s.activation == 3 * 3 && s.activation_grad == 3 * 3, "activation %d grad %d",
          s.activation, s.activation_grad);
    CHECK(s.bad_counts == 0, "%d lines whose histogram, zeros and nonfinite do not add up to n",
          s.bad_counts);
    CHECK(s.shift_checked && !s.shift_bad, "grad_scaled is not grad shifted by 16 bins");
    CHECK(s.advice == 1 && s.summary_cost == 1 && sum.have_advice && sum.numerics_s > 0 &&
              strstr(sum.advice_text, "verdict"),
          "advice %d cost %d: %s", s.advice, s.summary_cost, sum.advice_text);

    /* a step that overflows is measured even off the stats cycle: fp16 starting at 2^40 */
    snprintf(a.log, sizeof a.log, "%s", tpath("overflow.jsonl"));
    a.init_scale = 0x1p40f;
    a.max_steps = 3;
    a.stats_every = 1000;
    CHECK(mxp_trainer_run(&a, NULL, NULL, &sum) == MXP_OK, "overflow run: %s", mxp_last_error());
    scan(tpath("overflow.jsonl"), &s, 0);
    CHECK(sum.skipped_steps > 0 && s.overflow_nonfinite > 0,
          "skipped %lld, numerics lines with non-finite values %lld", (long long)sum.skipped_steps,
          (long long)s.overflow_nonfinite);

    /* off: nothing measured, no events, no cost */
    a.numerics_stats = 0;
    a.init_scale = 0;
    a.stats_every = 5;
    a.max_steps = 6;
    snprintf(a.log, sizeof a.log, "%s", tpath("off.jsonl"));
    CHECK(mxp_trainer_run(&a, NULL, NULL, &sum) == MXP_OK, "off run: %s", mxp_last_error());
    scan(tpath("off.jsonl"), &s, 0);
    CHECK(s.weight + s.grad + s.activation + s.advice + s.summary_cost == 0 && !sum.have_advice &&
              sum.numerics_s == 0,
          "with the option off: %d numerics lines, advice %d", s.weight + s.grad + s.activation,
          s.advice);
}

int main(void) {
    if (tmpdir_make("numstats") != 0) {
        perror("mkdtemp");
        return 1;
    }
    test_measure();
    test_quantile_and_advice();
    test_training_run();
    tmpdir_remove();
    return check_exit("test_numerics_stats");
}
