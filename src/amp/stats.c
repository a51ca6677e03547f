/*
 * stats.c - numerics statistics: the histogram of log2|x| of a tensor's
 * values over fp32's whole exponent range, what storing them in fp16 and
 * bf16 would do (overflow, subnormal, flush to zero), and the advisor that
 * turns a run's statistics into a loss-scale range and a verdict on fp16 and
 * bf16. Everything is counted from the fp32 value of each element, so it is
 * exact; nothing here runs unless --numerics-stats asked for it.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base_impl.h"
#include "mixprec/amp.h"

void mxp_numerics_clear(mxp_numerics *s) { memset(s, 0, sizeof *s); }

static void range_add(mxp_range_stats *a, const mxp_range_stats *b) {
    a->n += b->n;
    a->zero += b->zero;
    a->nonfinite += b->nonfinite;
    a->overflow += b->overflow;
    a->flush += b->flush;
    a->subnormal += b->subnormal;
    a->normal += b->normal;
    if (b->max_abs > a->max_abs) a->max_abs = b->max_abs;
    if (b->min_abs > 0.0 && (a->min_abs == 0.0 || b->min_abs < a->min_abs)) a->min_abs = b->min_abs;
}

/* The histogram bin of fp32 bits u (sign cleared), finite and nonzero: floor(log2|x|) -
 * MXP_LOG2_MIN, from the exponent field (normals) or the top set bit (subnormals). */
static int bin_of(uint32_t u) {
    const uint32_t e = u >> 23;
    if (e) return (int)e + 22; /* (e - 127) - (-149) */
    return 31 - __builtin_clz(u & 0x7fffffu);
}

/* Where fp32 values land when rounded to nearest even into an IEEE format f (fp16, bf16),
 * as three fp32 thresholds on |x|, exact for both: |x| <= flush rounds to 0 (a tie at half the
 * smallest subnormal goes to the even 0); below sub, to a subnormal (a tie at the top goes to
 * the even smallest normal); at or above over, to inf (a tie past the largest finite value
 * goes to the even inf). The same answers as mxp_range_stats_f32's encoder, which
 * test_numerics checks, at a compare per value instead of an encode. */
typedef struct thresholds {
    float flush, sub, over;
} thresholds;

static thresholds thresholds_of(const mxp_format *f) {
    const double tiny = mxp_format_min_subnormal(f), max = mxp_format_max(f);
    const thresholds t = {(float)(tiny / 2), (float)(mxp_format_min_normal(f) - tiny / 2),
                          (float)(max + mxp_format_ulp(f, max) / 2)};
    return t;
}

/* Add the classes of the n fp32 values in x stored in a format with thresholds t: counted
 * without branches (random data would mispredict every one), so the compiler vectorises it. */
static void classify(mxp_range_stats *r, const thresholds *t, const float *x, size_t n) {
    uint32_t zero = 0, nonfinite = 0, flush = 0, sub = 0, over = 0;
    float mx = 0.0f, mn = INFINITY;
    for (size_t i = 0; i < n; i++) {
        const float a = fabsf(x[i]);
        const int nz = a != 0.0f, fin = a <= FLT_MAX; /* NaN: nonzero and not finite */
        zero += !nz;
        nonfinite += !fin;
        flush += nz & (a <= t->flush);
        sub += (a > t->flush) & (a < t->sub);
        over += fin & (a >= t->over);
        const float hi = fin ? a : 0.0f, lo = nz & fin ? a : INFINITY;
        mx = hi > mx ? hi : mx; /* not fmaxf: a libm call that stops vectorisation */
        mn = lo < mn ? lo : mn;
    }
    r->zero += zero;
    r->nonfinite += nonfinite;
    r->flush += flush;
    r->subnormal += sub;
    r->overflow += over;
    r->normal += n - zero - nonfinite - flush - sub - over;
    if (mx > r->max_abs) r->max_abs = mx;
    if (mn < INFINITY && (r->min_abs == 0.0 || mn < r->min_abs)) r->min_abs = mn;
    r->n += n;
}

mxp_status mxp_numerics_add(mxp_numerics *s, const void *x, mxp_dtype dt, size_t n, float mul) {
    if (!s || (!x && n)) return MXP_FAIL(MXP_ERR_INVALID_ARG, "numerics: NULL argument");
    if (dt != MXP_DTYPE_F32 && dt != MXP_DTYPE_BF16 && dt != MXP_DTYPE_F16)
        return MXP_FAIL(MXP_ERR_DTYPE, "numerics: dtype %d is not f32, bf16 or f16", (int)dt);
    enum { CHUNK = 4096 };
    float buf[CHUNK];
    const thresholds t16 = thresholds_of(&mxp_format_fp16), tbf = thresholds_of(&mxp_format_bf16);
    const size_t es = mxp_dtype_size(dt);
    for (size_t i = 0; i < n; i += CHUNK) {
        const size_t k = n - i < CHUNK ? n - i : CHUNK;
        MXP_TRY(mxp_convert(buf, MXP_DTYPE_F32, (const char *)x + i * es, dt, k));
        if (mul != 1.0f)
            for (size_t j = 0; j < k; j++) buf[j] *= mul;
        for (size_t j = 0; j < k; j++) {
            uint32_t u;
            memcpy(&u, &buf[j], sizeof u);
            u &= 0x7fffffffu;
            if (u == 0)
                s->zero++;
            else if ((u >> 23) == 0xffu)
                s->nonfinite++;
            else
                s->log2[bin_of(u)]++;
        }
        classify(&s->fp16, &t16, buf, k);
        classify(&s->bf16, &tbf, buf, k);
    }
    s->n += n;
    s->max_abs = s->fp16.max_abs;
    s->min_abs = s->fp16.min_abs;
    return MXP_OK;
}

void mxp_numerics_merge(mxp_numerics *a, const mxp_numerics *b) {
    a->n += b->n;
    a->zero += b->zero;
    a->nonfinite += b->nonfinite;
    for (int i = 0; i < MXP_LOG2_BINS; i++) a->log2[i] += b->log2[i];
    range_add(&a->fp16, &b->fp16);
    range_add(&a->bf16, &b->bf16);
    if (b->max_abs > a->max_abs) a->max_abs = b->max_abs;
    if (b->min_abs > 0.0 && (a->min_abs == 0.0 || b->min_abs < a->min_abs)) a->min_abs = b->min_abs;
}

double mxp_numerics_quantile_low(const mxp_numerics *s, double share) {
    uint64_t total = 0;
    for (int i = 0; i < MXP_LOG2_BINS; i++) total += s->log2[i];
    if (!total) return 0.0;
    const double allowed = share * (double)total; /* values that may lie below the answer */
    uint64_t below = 0;
    for (int i = 0; i < MXP_LOG2_BINS; i++) {
        if ((double)(below + s->log2[i]) > allowed) return ldexp(1.0, MXP_LOG2_MIN + i);
        below += s->log2[i];
    }
    return ldexp(1.0, MXP_LOG2_MIN + MXP_LOG2_BINS - 1);
}

void mxp_numerics_advise(const mxp_numerics *grads, const mxp_numerics *acts, double lost_fp16,
                         double lost_bf16, mxp_numerics_advice *out) {
    memset(out, 0, sizeof *out);
    const double nz = (double)(grads->n - grads->zero - grads->nonfinite);
    out->grad_flush_fp16 = nz > 0 ? (double)grads->fp16.flush / nz : 0.0;
    out->grad_subnormal_fp16 = nz > 0 ? (double)grads->fp16.subnormal / nz : 0.0;
    out->grad_max = grads->max_abs;
    out->grad_low = mxp_numerics_quantile_low(grads, 1e-3);
    out->act_max = acts ? acts->max_abs : 0.0;
    const double fmax = mxp_format_max(&mxp_format_fp16),
                 tiny = mxp_format_min_subnormal(&mxp_format_fp16);
    /* the largest power of two that keeps the largest gradient finite, and the smallest that
     * lifts the 0.1% quantile to fp16's smallest subnormal */
    out->scale_max = out->grad_max > 0 ? ldexp(1.0, (int)floor(log2(fmax / out->grad_max))) : 0;
    out->scale_min = out->grad_low > 0 ? ldexp(1.0, (int)ceil(log2(tiny / out->grad_low))) : 1.0;
    if (out->scale_min < 1.0) out->scale_min = 1.0;
    if (out->grad_max == 0) out->scale_max = ldexp(1.0, 24);
    out->fp16_ok = out->act_max <= fmax && out->scale_min <= out->scale_max;
    out->lost_fp16 = lost_fp16;
    out->lost_bf16 = lost_bf16;
}

/* "2^k" for a power of two, else %g */
static void pow2(char *b, size_t n, double v) {
    int e;
    if (v > 0 && frexp(v, &e) == 0.5)
        snprintf(b, n, "2^%d", e - 1);
    else
        snprintf(b, n, "%g", v);
}

void mxp_numerics_advice_text(const mxp_numerics_advice *a, char *buf, size_t size) {
    char lo[32], hi[32], gl[32], gm[32];
    pow2(lo, sizeof lo, a->scale_min);
    pow2(hi, sizeof hi, a->scale_max);
    snprintf(gl, sizeof gl, "%.3g", a->grad_low);
    snprintf(gm, sizeof gm, "%.3g", a->grad_max);
    size_t at = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (at < size) {                                                                           \
            const int k_ = snprintf(buf + at, size - at, __VA_ARGS__);                             \
            if (k_ > 0) at += (size_t)k_;                                                          \
        }                                                                                          \
    } while (0)
    if (size) buf[0] = '\0';
    PUT("gradients: %.2f%% of the nonzero values would flush to zero in fp16 without loss "
        "scaling and %.2f%% would be fp16 subnormals; 99.9%% lie above %s, the largest is %s\n",
        100.0 * a->grad_flush_fp16, 100.0 * a->grad_subnormal_fp16, gl, gm);
    if (a->scale_min <= a->scale_max)
        PUT("fp16 loss scale: from %s (99.9%% of the gradients representable) to %s (the "
            "largest gradient below 65504); dynamic scaling starts at 2^16%s\n",
            lo, hi,
            a->scale_max < 65536.0   ? " and will back off into it"
            : a->scale_min > 65536.0 ? " and must grow into it (or set --init-loss-scale)"
                                     : ", inside it");
    else
        PUT("fp16 loss scale: none works: keeping 99.9%% of the gradients needs at least %s, "
            "keeping the largest below 65504 at most %s\n",
            lo, hi);
    PUT("activations: the largest is %.3g (%s fp16's 65504)\n", a->act_max,
        a->act_max <= 65504.0 ? "within" : "beyond");
    if (a->lost_bf16 >= 0)
        PUT("weight updates without fp32 master weights: %.2f%% lost in bf16, %.2f%% in fp16\n",
            100.0 * a->lost_bf16, 100.0 * a->lost_fp16);
    if (a->fp16_ok)
        PUT("verdict: fp16 suits this model with loss scaling in [%s, %s]; bf16 suits it without "
            "any (its range is fp32's)%s\n",
            lo, hi, a->lost_bf16 >= 0 ? "; both need the fp32 master weights" : "");
    else
        PUT("verdict: bf16, not fp16: %s\n",
            a->act_max > 65504.0 ? "the activations overflow fp16"
                                 : "no single loss scale fits the gradients into fp16's range");
#undef PUT
}
