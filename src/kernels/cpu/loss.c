/*
 * loss.c - softmax cross-entropy (forward with the mean loss and the probabilities, and its
 * backward) and dropout with a counter-based Philox mask. fp32 inside; the vector exp and
 * sums come from the ISA's element-wise table, 16-bit data is widened and rounded by the
 * bulk conversions. No label smoothing, no class weights, no reduction other than the mean;
 * nothing allocates.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "eltwise_impl.h"
#include "philox_impl.h"

#define F32 MXP_DTYPE_F32

/* elements staged per block on the stack (a reduction leaf, so one SUM call per block) */
enum { BLK = MXP_REDUCE_LEAF };

static void widen(const mxp_cvt_table *cvt, mxp_dtype dt, float *dst, const void *src, size_t n) {
    switch (dt) {
    case MXP_DTYPE_F16: cvt->f16_to_f32(dst, src, n); break;
    case MXP_DTYPE_BF16: cvt->bf16_to_f32(dst, src, n); break;
    default: memcpy(dst, src, n * sizeof(float)); break;
    }
}

static void narrow(const mxp_cvt_table *cvt, mxp_dtype dt, void *dst, const float *src, size_t n) {
    switch (dt) {
    case MXP_DTYPE_F16: cvt->f32_to_f16(dst, src, n); break;
    case MXP_DTYPE_BF16: cvt->f32_to_bf16(dst, src, n); break;
    default: memcpy(dst, src, n * sizeof(float)); break;
    }
}

static mxp_status check_dtype(const char *fn, mxp_dtype dt) {
    if (!mxp_dtype_size(dt))
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown dtype %d (use f32, f16 or bf16)", fn, (int)dt);
    return MXP_OK;
}

/* ---- softmax cross-entropy ------------------------------------------------------ */

enum {
    /* rows are summed in tasks of about this many logits; the number of tasks depends on
     * B and V alone, so the loss has the same bits on any thread count */
    CE_TASK_MIN = 1 << 13,
    CE_TASKS = 64
};

/* Sizes, pointers and labels, in that order, before any work. */
static mxp_status check_ce(const char *fn, mxp_dtype dt, const void *a, const void *b,
                           const int32_t *labels, int64_t B, int64_t V) {
    MXP_TRY(check_dtype(fn, dt));
    if (B < 1 || V < 1 || V > INT32_MAX || B > (int64_t)(SIZE_MAX / 4) / V)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: B=%lld, V=%lld (need B, V >= 1)", fn,
                        (long long)B, (long long)V);
    if (!a || !b || !labels) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer", fn);
    for (int64_t i = 0; i < B; i++)
        if (labels[i] < 0 || labels[i] >= V)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: labels[%lld] = %d is outside [0, %lld)", fn,
                            (long long)i, (int)labels[i], (long long)V);
    return MXP_OK;
}

/* One row x (V) in dt: returns log(s) - (x[label] - m) with m = max x and s = sum exp(x - m),
 * the exps summed per block of BLK by the ISA's SUM leaf and the block sums added in order.
 * p (V) fp32, if not NULL, receives exp(x - m) * (1 / s), as mxp_softmax. A NaN or +inf
 * logit, or a row of only -inf, makes the loss NaN; a label at -inf makes it +inf. */
static float ce_row(const mxp_ew_table *t, const mxp_cvt_table *cvt, mxp_dtype dt, const void *x,
                    size_t V, int32_t label, float *p) {
    const size_t es = mxp_dtype_size(dt);
    const mxp_reduce_leaf_fn max_leaf = t->reduce_leaf[MXP_REDUCE_MAX][dt];
    const mxp_reduce_leaf_fn sum_leaf = t->reduce_leaf[MXP_REDUCE_SUM][F32];
    float m = -INFINITY;
    for (size_t b = 0; b < V; b += BLK)
        m = mxp_ew_max(m, max_leaf((const char *)x + b * es, MXP_MIN((size_t)BLK, V - b)));
    float buf[BLK];
    float s = 0.0f;
    for (size_t b = 0; b < V; b += BLK) {
        const size_t n = MXP_MIN((size_t)BLK, V - b);
        float *e = p ? p + b : buf;
        widen(cvt, dt, e, (const char *)x + b * es, n);
        for (size_t i = 0; i < n; i++) e[i] -= m;
        t->exp_f32(e, e, n);
        s += sum_leaf(e, n);
    }
    if (p) {
        const float inv = 1.0f / s;
        for (size_t i = 0; i < V; i++) p[i] *= inv;
    }
    return logf(s) - (mxp_load_f32(dt, x, (size_t)label) - m);
}

mxp_status mxp_cross_entropy_forward(float *loss, float *probs, const void *logits, mxp_dtype dt,
                                     const int32_t *labels, int64_t B, int64_t V) {
    static const char fn[] = "mxp_cross_entropy_forward";
    MXP_TRY(check_ce(fn, dt, loss, logits, labels, B, V));
    const size_t n = (size_t)(B * V), es = mxp_dtype_size(dt);
    if (mxp_overlaps(probs, probs ? n * 4 : 0, logits, n * es) ||
        mxp_overlaps(probs, probs ? n * 4 : 0, labels, (size_t)B * 4) ||
        mxp_overlaps(probs, probs ? n * 4 : 0, loss, 4) || mxp_overlaps(loss, 4, logits, n * es))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: loss, probs, logits and labels must not overlap",
                        fn);

    const mxp_ew_table *t = mxp_ew_table_for(mxp_isa_active());
    const mxp_cvt_table *cvt = mxp_cvt_table_for(mxp_isa_active());
    /* tasks of whole rows, from B and V alone */
    size_t ntask = MXP_MIN((size_t)CE_TASKS, MXP_MAX((size_t)1, n / CE_TASK_MIN));
    ntask = MXP_MIN(ntask, (size_t)B);
    const size_t per = ((size_t)B + ntask - 1) / ntask;
    ntask = ((size_t)B + per - 1) / per;
    float part[CE_TASKS];
    const int nt = (int)MXP_MIN((size_t)mxp_ew_threads(n, MXP_EW_GRAIN_EXP), ntask);
    (void)nt; /* only MXP_OMP reads it */
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int k = 0; k < (int)ntask; k++) {
        const size_t r0 = (size_t)k * per, r1 = MXP_MIN((size_t)B, r0 + per);
        float s = 0.0f;
        for (size_t r = r0; r < r1; r++)
            s += ce_row(t, cvt, dt, (const char *)logits + r * (size_t)V * es, (size_t)V, labels[r],
                        probs ? probs + r * (size_t)V : NULL);
        part[k] = s;
    }
    for (size_t m = ntask; m > 1; m = (m + 1) / 2) { /* pairwise, in a fixed order */
        for (size_t i = 0; i < m / 2; i++) part[i] = part[2 * i] + part[2 * i + 1];
        if (m & 1) part[m / 2] = part[m - 1];
    }
    *loss = (float)((double)part[0] / (double)B); /* the mean, rounded once */
    return MXP_OK;
}

mxp_status mxp_cross_entropy_backward(void *dlogits, mxp_dtype dt, const float *probs,
                                      const int32_t *labels, int64_t B, int64_t V, float scale) {
    static const char fn[] = "mxp_cross_entropy_backward";
    MXP_TRY(check_ce(fn, dt, dlogits, probs, labels, B, V));
    const size_t n = (size_t)(B * V), es = mxp_dtype_size(dt);
    /* in place over probs is fine for F32: each element is read before it is written */
    if (!(dt == F32 && dlogits == (const void *)probs) &&
        mxp_overlaps(dlogits, n * es, probs, n * 4))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: dlogits overlaps probs", fn);
    if (mxp_overlaps(dlogits, n * es, labels, (size_t)B * 4))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: dlogits overlaps labels", fn);

    const mxp_cvt_table *cvt = mxp_cvt_table_for(mxp_isa_active());
    const float c = scale / (float)B; /* fp32, as the contract's (scale / B) */
    const int nt = (int)MXP_MIN((int64_t)mxp_ew_threads(n, MXP_EW_GRAIN), B);
    (void)nt;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t r = 0; r < B; r++) {
        const float *p = probs + (size_t)r * (size_t)V; /* (V) */
        char *out = (char *)dlogits + (size_t)r * (size_t)V * es;
        const size_t l = (size_t)labels[r];
        const float pl = p[l]; /* read before an in-place pass overwrites it */
        float tmp[BLK];
        for (size_t b = 0; b < (size_t)V; b += BLK) {
            const size_t m = MXP_MIN((size_t)BLK, (size_t)V - b);
            float *d = dt == F32 ? (float *)(void *)out + b : tmp;
            for (size_t j = 0; j < m; j++) d[j] = c * p[b + j];
            if (l >= b && l < b + m) d[l - b] = c * (pl - 1.0f);
            if (dt != F32) narrow(cvt, dt, out + b * es, tmp, m);
        }
    }
    return MXP_OK;
}

/* ---- dropout -------------------------------------------------------------------- */

/* Element i keeps when (word >> 8) >= thr, word = Philox word offset + i of the stream for
 * seed (word w is element w % 4 of block w / 4, as mxp_convert_sr), i.e. when the uniform
 * (word >> 8) * 2^-24 in [0, 1) is >= p: thr = ceil(p * 2^24), exact. */
static uint32_t keep_threshold(float p) { return (uint32_t)ceil((double)p * 16777216.0); }

/* mask[0..n) (n <= BLK) for the words w0 .. w0 + n - 1 of the stream */
static void philox_mask(uint8_t *mask, size_t n, uint64_t seed, uint64_t w0, uint32_t thr) {
    uint32_t words[BLK + 4 * MXP_PHILOX_LANES];
    const uint64_t b0 = w0 >> 2; /* the block holding word w0 */
    const size_t skip = (size_t)(w0 & 3), nb = (skip + n + 3) / 4;
    mxp_philox_blocks(seed, b0, nb, words);
    for (size_t i = 0; i < n; i++) mask[i] = (uint8_t)((words[skip + i] >> 8) >= thr);
}

/* y[i] = x[i] * (mask[i] ? scale : 0) in fp32, rounded to dt; y may be x */
static void apply_mask(const mxp_cvt_table *cvt, mxp_dtype dt, void *y, const void *x,
                       const uint8_t *mask, float scale, size_t n) {
    const size_t es = mxp_dtype_size(dt);
    float tmp[BLK];
    for (size_t b = 0; b < n; b += BLK) {
        const size_t m = MXP_MIN((size_t)BLK, n - b);
        widen(cvt, dt, tmp, (const char *)x + b * es, m);
        /* literally x * keep * scale: an inf or NaN dropped gives NaN, as in PyTorch */
        for (size_t i = 0; i < m; i++) tmp[i] *= mask[b + i] ? scale : 0.0f;
        narrow(cvt, dt, (char *)y + b * es, tmp, m);
    }
}

static size_t slice_len(size_t n, int nt) {
    const size_t per = (n + (size_t)nt - 1) / (size_t)nt;
    return (per + MXP_EW_ALIGN - 1) / MXP_EW_ALIGN * MXP_EW_ALIGN;
}

static mxp_status check_dropout(const char *fn, const void *y, const uint8_t *mask, const void *x,
                                mxp_dtype dt, size_t n, float p) {
    MXP_TRY(check_dtype(fn, dt));
    if (!(p >= 0.0f && p < 1.0f))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: p = %g is outside [0, 1)", fn, (double)p);
    if (n == 0) return MXP_OK;
    if (!y || !x || !mask)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer with n=%zu", fn, n);
    if (n > SIZE_MAX / 4) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: n=%zu too large", fn, n);
    const size_t bytes = n * mxp_dtype_size(dt);
    if ((y != x && mxp_overlaps(y, bytes, x, bytes)) || mxp_overlaps(mask, n, x, bytes) ||
        mxp_overlaps(mask, n, y, bytes))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: buffers overlap (only the output may be the input exactly)", fn);
    return MXP_OK;
}

mxp_status mxp_dropout_forward(void *y, uint8_t *mask, const void *x, mxp_dtype dt, size_t n,
                               float p, uint64_t seed, uint64_t offset) {
    MXP_TRY(check_dropout("mxp_dropout_forward", y, mask, x, dt, n, p));
    if (n == 0) return MXP_OK;
    if (p == 0.0f) { /* a copy of the bits, every element kept */
        if (y != x) memcpy(y, x, n * mxp_dtype_size(dt));
        memset(mask, 1, n);
        return MXP_OK;
    }
    const mxp_cvt_table *cvt = mxp_cvt_table_for(mxp_isa_active());
    const uint32_t thr = keep_threshold(p);
    const float scale = 1.0f / (1.0f - p);
    const size_t es = mxp_dtype_size(dt);
    const int nt = mxp_ew_threads(n, MXP_EW_GRAIN_EXP);
    const size_t per = slice_len(n, nt);
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int k = 0; k < nt; k++) {
        const size_t lo = (size_t)k * per, hi = MXP_MIN(n, lo + per);
        for (size_t b = lo; b < hi; b += BLK) { /* the mask block stays in L1 for its use */
            const size_t m = MXP_MIN((size_t)BLK, hi - b);
            philox_mask(mask + b, m, seed, offset + b, thr);
            apply_mask(cvt, dt, (char *)y + b * es, (const char *)x + b * es, mask + b, scale, m);
        }
    }
    return MXP_OK;
}

mxp_status mxp_dropout_backward(void *dx, const void *dy, const uint8_t *mask, mxp_dtype dt,
                                size_t n, float p) {
    MXP_TRY(check_dropout("mxp_dropout_backward", dx, mask, dy, dt, n, p));
    if (n == 0) return MXP_OK;
    const mxp_cvt_table *cvt = mxp_cvt_table_for(mxp_isa_active());
    const float scale = 1.0f / (1.0f - p);
    const size_t es = mxp_dtype_size(dt);
    const int nt = mxp_ew_threads(n, MXP_EW_GRAIN);
    const size_t per = slice_len(n, nt);
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int k = 0; k < nt; k++) {
        const size_t lo = (size_t)k * per, hi = MXP_MIN(n, lo + per);
        if (lo < hi)
            apply_mask(cvt, dt, (char *)dx + lo * es, (const char *)dy + lo * es, mask + lo, scale,
                       hi - lo);
    }
    return MXP_OK;
}
