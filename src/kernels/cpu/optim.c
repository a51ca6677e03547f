/*
 * optim.c - the fused optimizer updates (SGD with momentum, Nesterov and weight decay; AdamW)
 * on fp32 master weights with the cast of the working copy, or on 16-bit weights alone
 * rounded to nearest even or stochastically, and the value census: entry points (checks, ISA
 * dispatch, threads over contiguous slices), the scalar reference kernels, the
 * hyperparameters turned into fp32 constants. optim_avx512.c has the AVX-512 kernels, with
 * the same bits. The caller owns weights, moments and counters; nothing here allocates, and
 * nothing clips or unscales beyond the one grad_mul factor.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "eltwise_impl.h"
#include "optim_impl.h"

#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

/* ---- scalar reference ------------------------------------------------------------------ */

/* The stored bits of element i (16 or 32 of them) */
static inline uint32_t raw_bits(mxp_dtype dt, const void *p, size_t i) {
    return dt == F32 ? ((const uint32_t *)p)[i] : ((const uint16_t *)p)[i];
}

/* v rounded to dt (nearest even), as stored bits */
static inline uint32_t round_bits(mxp_dtype dt, float v) {
    switch (dt) {
    case F16: return mxp_f32_to_f16_inl(v);
    case BF16: return mxp_f32_to_bf16_inl(v);
    default: return mxp_f32_bits(v);
    }
}

/* v rounded to dt (F16 or BF16) stochastically with the random word rnd: the encoder of
 * mxp_format_encode_sr, with the format's constants visible so that it folds. */
static inline uint32_t sr_bits(mxp_dtype dt, float v, uint32_t rnd) {
    static const mxp_format f16 = MXP_FORMAT_ROW_FP16, bf16 = MXP_FORMAT_ROW_BF16;
    return mxp_encode_impl(dt == F16 ? &f16 : &bf16, v, 1, rnd);
}

/* The end of every update, shared by SGD and AdamW: w is the old weight (master, or work
 * widened), wn the new one in fp32. Writes master (if any) and the cast work copy, rounded to
 * nearest even, or with sr (no master, 16-bit work) stochastically with the random word rnd;
 * counts:
 *   update = wn - w (fp32), updated when update != 0 (NaN included);
 *   lost when updated and, with master weights, round(work_old + update) == work_old, and
 *   without them round(wn) == work_old (the stored value did not move).
 * The old work bits are read before anything is written (work may be master). */
MXP_INLINE void finish_ref(mxp_dtype wt, int sr, float *master, void *work, size_t i, float w,
                           float wn, uint32_t rnd, int count, uint64_t *nu, uint64_t *nl) {
    const uint32_t nb = sr ? sr_bits(wt, wn, rnd) : round_bits(wt, wn);
    if (count) {
        const float upd = wn - w;
        if (upd != 0.0f) {
            const uint32_t old = raw_bits(wt, work, i);
            const uint32_t cand = master ? round_bits(wt, mxp_load_f32(wt, work, i) + upd) : nb;
            *nu += 1;
            *nl += cand == old;
        }
    }
    if (master) master[i] = wn;
    if (wt == F32)
        ((uint32_t *)work)[i] = nb;
    else
        ((uint16_t *)work)[i] = (uint16_t)nb;
}

/* torch.optim.SGD, one element at a time:
 *   g = grad * grad_mul; g = g + wd * w; b = first ? g : b * momentum + (1 - damp) * g;
 *   g = nesterov ? g + momentum * b : b; w = w + (-lr) * g
 * each operation one fp32 rounding, no FMA (the AVX-512 kernel does the same operations).
 * With sr the elements go in chunks of MXP_SR_CHUNK, each with its random words drawn first.
 * io and k are copied to locals: under -fno-strict-aliasing every store could change them. */
MXP_INLINE void sgd_ref(mxp_dtype wt, mxp_dtype gt, int sr, const mxp_update_io *io, float *buf,
                        const mxp_optim_k *kp, size_t lo, size_t hi, uint64_t cnt[2]) {
    const mxp_optim_k k = *kp;
    float *const master = io->master;
    void *const work = io->work;
    const void *const grad = io->grad;
    const float gm = io->grad_mul;
    const int count = io->n_updated || io->n_lost;
    uint64_t nu = 0, nl = 0;
    uint32_t rw[MXP_SR_CHUNK]; /* with sr: the words of elements c .. e - 1 */
    for (size_t c = lo; c < hi; c += MXP_SR_CHUNK) {
        const size_t e = MXP_MIN(hi, c + MXP_SR_CHUNK);
        if (sr) mxp_sr_words(io->sr_seed, io->sr_offset + c, e - c, rw);
        for (size_t i = c; i < e; i++) {
            float g = mxp_load_f32(gt, grad, i) * gm;
            const float w = master ? master[i] : mxp_load_f32(wt, work, i);
            if (k.has_wd) g = g + k.wd * w;
            if (k.has_momentum) {
                const float b = k.first ? g : buf[i] * k.momentum + k.damp * g;
                buf[i] = b;
                g = k.nesterov ? g + k.momentum * b : b;
            }
            finish_ref(wt, sr, master, work, i, w, w + k.neg_lr * g, sr ? rw[i - c] : 0, count, &nu,
                       &nl);
        }
    }
    cnt[0] += nu;
    cnt[1] += nl;
}

/* torch.optim.AdamW as kernels.h writes it, one element at a time:
 *   g = grad * grad_mul; w = w * decay; m = m * b1 + c1 * g; v = v * b2 + (c2 * g) * g;
 *   w = w - (step_size * m) / (sqrt(v) / bc2_sqrt + eps)
 * each operation one fp32 rounding (sqrt and / correctly rounded), no FMA. */
MXP_INLINE void adamw_ref(mxp_dtype wt, mxp_dtype gt, int sr, const mxp_update_io *io, float *m,
                          float *v, const mxp_optim_k *kp, size_t lo, size_t hi, uint64_t cnt[2]) {
    const mxp_optim_k k = *kp;
    float *const master = io->master;
    void *const work = io->work;
    const void *const grad = io->grad;
    const float gm = io->grad_mul;
    const int count = io->n_updated || io->n_lost;
    uint64_t nu = 0, nl = 0;
    uint32_t rw[MXP_SR_CHUNK]; /* with sr: the words of elements c .. e - 1 */
    for (size_t c = lo; c < hi; c += MXP_SR_CHUNK) {
        const size_t e = MXP_MIN(hi, c + MXP_SR_CHUNK);
        if (sr) mxp_sr_words(io->sr_seed, io->sr_offset + c, e - c, rw);
        for (size_t i = c; i < e; i++) {
            const float g = mxp_load_f32(gt, grad, i) * gm;
            const float w = master ? master[i] : mxp_load_f32(wt, work, i);
            const float wd = k.has_wd ? w * k.decay : w;
            const float mi = m[i] * k.b1 + k.c1 * g;
            const float vi = v[i] * k.b2 + (k.c2 * g) * g;
            m[i] = mi;
            v[i] = vi;
            const float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
            finish_ref(wt, sr, master, work, i, w, wd - (k.step_size * mi) / denom,
                       sr ? rw[i - c] : 0, count, &nu, &nl);
        }
    }
    cnt[0] += nu;
    cnt[1] += nl;
}

/* One instance per (work, grad) dtype pair and rounding, chosen by a switch the compiler
 * folds; stochastic rounding only for the 16-bit work dtypes. */
#define PAIR(w, g) ((int)(w)*MXP_DTYPE_COUNT + (int)(g))
#define GRADS(X, w) X(w, F32) X(w, F16) X(w, BF16)
#define ALL_PAIRS(X) GRADS(X, F32) GRADS(X, F16) GRADS(X, BF16)
#define SR_PAIRS(X) GRADS(X, F16) GRADS(X, BF16)

static void sgd_slice_ref(const mxp_update_io *io, float *s0, float *s1, const mxp_optim_k *k,
                          size_t lo, size_t hi, uint64_t cnt[2]) {
    (void)s1;
#define SGD_CASE(w, g)                                                                             \
    case PAIR(w, g):                                                                               \
        sgd_ref(w, g, 0, io, s0, k, lo, hi, cnt);                                                  \
        break;
#define SGD_SR_CASE(w, g)                                                                          \
    case PAIR(w, g): sgd_ref(w, g, 1, io, s0, k, lo, hi, cnt); break;
    if (io->stochastic) {
        switch (PAIR(io->work_dtype, io->grad_dtype)) { SR_PAIRS(SGD_SR_CASE) }
    } else {
        switch (PAIR(io->work_dtype, io->grad_dtype)) { ALL_PAIRS(SGD_CASE) }
    }
#undef SGD_SR_CASE
#undef SGD_CASE
}

static void adamw_slice_ref(const mxp_update_io *io, float *s0, float *s1, const mxp_optim_k *k,
                            size_t lo, size_t hi, uint64_t cnt[2]) {
#define ADAMW_CASE(w, g)                                                                           \
    case PAIR(w, g):                                                                               \
        adamw_ref(w, g, 0, io, s0, s1, k, lo, hi, cnt);                                            \
        break;
#define ADAMW_SR_CASE(w, g)                                                                        \
    case PAIR(w, g): adamw_ref(w, g, 1, io, s0, s1, k, lo, hi, cnt); break;
    if (io->stochastic) {
        switch (PAIR(io->work_dtype, io->grad_dtype)) { SR_PAIRS(ADAMW_SR_CASE) }
    } else {
        switch (PAIR(io->work_dtype, io->grad_dtype)) { ALL_PAIRS(ADAMW_CASE) }
    }
#undef ADAMW_SR_CASE
#undef ADAMW_CASE
}

/* ---- driver ------------------------------------------------------------------------------ */

/* elements per thread slice, a multiple of MXP_EW_ALIGN (no cache line shared) */
static size_t slice_len(size_t n, int nt) {
    const size_t per = (n + (size_t)nt - 1) / (size_t)nt;
    return (per + MXP_EW_ALIGN - 1) / MXP_EW_ALIGN * MXP_EW_ALIGN;
}

/* Elements are independent, so the bits never depend on the slices; the counts are integer
 * sums. */
static void run_update(mxp_update_slice_fn f, const mxp_update_io *io, float *s0, float *s1,
                       const mxp_optim_k *k) {
    const size_t n = io->n;
    const int nt = mxp_ew_threads(n, MXP_EW_GRAIN);
    uint64_t nu = 0, nl = 0;
    if (nt <= 1) {
        uint64_t c[2] = {0, 0};
        f(io, s0, s1, k, 0, n, c);
        nu = c[0];
        nl = c[1];
    } else {
        const size_t per = slice_len(n, nt);
        MXP_OMP(omp parallel for num_threads(nt) schedule(static) reduction(+ : nu, nl))
        for (int t = 0; t < nt; t++) {
            const size_t lo = (size_t)t * per, hi = MXP_MIN(n, lo + per);
            uint64_t c[2] = {0, 0};
            if (lo < hi) f(io, s0, s1, k, lo, hi, c);
            nu += c[0];
            nl += c[1];
        }
    }
    if (io->n_updated) *io->n_updated += nu;
    if (io->n_lost) *io->n_lost += nl;
}

/* ---- argument checks --------------------------------------------------------------------- */

typedef struct span {
    const void *p;
    size_t bytes;
    const char *name;
} span;

/* The io struct and the state buffers: dtypes, stochastic rounding only on 16-bit work
 * without master, NULLs, and no two buffers sharing a byte, except master == work exactly
 * when work is F32. */
static mxp_status check_update(const char *fn, const mxp_update_io *io, float *s0, const char *n0,
                               float *s1, const char *n1) {
    if (!io) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: io is NULL", fn);
    if (!mxp_dtype_size(io->work_dtype) || !mxp_dtype_size(io->grad_dtype))
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown dtype (work %d, grad %d; use f32, f16, bf16)",
                        fn, (int)io->work_dtype, (int)io->grad_dtype);
    if (io->stochastic && (io->master || (io->work_dtype != F16 && io->work_dtype != BF16)))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: stochastic rounding applies to f16 or bf16 work without master "
                        "weights (got %s work, master %s)",
                        fn, mxp_dtype_name(io->work_dtype), io->master ? "set" : "NULL");
    const size_t n = io->n;
    if (n == 0) return MXP_OK;
    if (n > SIZE_MAX / 4) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: n=%zu too large", fn, n);
    if (!io->work || !io->grad)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: io->%s is NULL with n=%zu", fn,
                        io->work ? "grad" : "work", n);
    if ((n0 && !s0) || (n1 && !s1))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s is NULL with n=%zu", fn, n0 && !s0 ? n0 : n1,
                        n);
    if (io->master == io->work && io->work_dtype != F32)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: master may be work only when work is f32", fn);
    const span b[5] = {{io->master, io->master ? n * 4 : 0, "master"},
                       {io->work, n * mxp_dtype_size(io->work_dtype), "work"},
                       {io->grad, n * mxp_dtype_size(io->grad_dtype), "grad"},
                       {s0, n0 ? n * 4 : 0, n0},
                       {s1, n1 ? n * 4 : 0, n1}};
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++) {
            if (i == 0 && j == 1 && io->master == io->work) continue; /* f32, checked above */
            if (mxp_overlaps(b[i].p, b[i].bytes, b[j].p, b[j].bytes))
                return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s overlaps %s", fn, b[i].name,
                                b[j].name);
        }
    return MXP_OK;
}

/* ---- entry points ---------------------------------------------------------------------- */

mxp_status mxp_sgd_update(const mxp_update_io *io, float *momentum_buf, const mxp_sgd_hparams *h,
                          int first_step) {
    static const char fn[] = "mxp_sgd_update";
    if (!h) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: hparams is NULL", fn);
    const int mom = h->momentum != 0.0f;
    MXP_TRY(check_update(fn, io, momentum_buf, mom ? "momentum_buf" : NULL, NULL, NULL));
    if (io->n == 0) return MXP_OK;
    const mxp_optim_k k = {.neg_lr = -h->lr,
                           .momentum = h->momentum,
                           .damp = (float)(1.0 - (double)h->dampening),
                           .wd = h->weight_decay,
                           .has_wd = h->weight_decay != 0.0f,
                           .has_momentum = mom,
                           .nesterov = h->nesterov != 0,
                           .first = first_step != 0};
    mxp_update_slice_fn f = sgd_slice_ref;
#ifdef MIXPREC_X86_KERNELS
    if (mxp_isa_active() >= MXP_ISA_AVX512) f = mxp_sgd_slice_avx512;
#endif
    run_update(f, io, mom ? momentum_buf : NULL, NULL, &k);
    return MXP_OK;
}

mxp_status mxp_adamw_update(const mxp_update_io *io, float *m, float *v,
                            const mxp_adamw_hparams *h) {
    static const char fn[] = "mxp_adamw_update";
    if (!h) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: hparams is NULL", fn);
    if (h->step < 1)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: step=%lld (the first step is 1)", fn,
                        (long long)h->step);
    MXP_TRY(check_update(fn, io, m, "m", v, "v"));
    if (io->n == 0) return MXP_OK;
    const double t = (double)h->step;
    const mxp_optim_k k = {
        .decay = (float)(1.0 - (double)h->lr * (double)h->weight_decay),
        .b1 = h->beta1,
        .c1 = (float)(1.0 - (double)h->beta1),
        .b2 = h->beta2,
        .c2 = (float)(1.0 - (double)h->beta2),
        .step_size = (float)((double)h->lr / (1.0 - pow((double)h->beta1, t))),
        .bc2_sqrt = (float)sqrt(1.0 - pow((double)h->beta2, t)),
        .eps = h->eps,
        .has_wd = h->weight_decay != 0.0f,
    };
    mxp_update_slice_fn f = adamw_slice_ref;
#ifdef MIXPREC_X86_KERNELS
    if (mxp_isa_active() >= MXP_ISA_AVX512) f = mxp_adamw_slice_avx512;
#endif
    run_update(f, io, m, v, &k);
    return MXP_OK;
}

/* ---- value census ------------------------------------------------------------------------ */

/* Classes from |bits|: zero == 0, subnormal < min_normal, inf/NaN >= exp_ones, normal the
 * rest. Counting the three thresholds is branch-free and vectorises. */
MXP_INLINE void census(mxp_dtype dt, const void *x, size_t lo, size_t hi, uint64_t c[4]) {
    uint64_t zero = 0, small = 0, big = 0;
    if (dt == F32) {
        const uint32_t *u = x;
        for (size_t i = lo; i < hi; i++) {
            const uint32_t a = u[i] & 0x7fffffffu;
            zero += a == 0;
            small += a < 0x00800000u;
            big += a >= 0x7f800000u;
        }
    } else {
        const uint16_t *u = x;
        const uint16_t min_normal = dt == F16 ? 0x0400 : 0x0080;
        const uint16_t ones = dt == F16 ? 0x7c00 : 0x7f80;
        for (size_t i = lo; i < hi; i++) {
            const uint16_t a = u[i] & 0x7fff;
            zero += a == 0;
            small += a < min_normal;
            big += a >= ones;
        }
    }
    c[0] += zero;
    c[1] += small - zero;
    c[2] += (hi - lo) - small - big;
    c[3] += big;
}

static void census_any(mxp_dtype dt, const void *x, size_t lo, size_t hi, uint64_t c[4]) {
    switch (dt) {
    case F16: census(F16, x, lo, hi, c); break;
    case BF16: census(BF16, x, lo, hi, c); break;
    default: census(F32, x, lo, hi, c); break;
    }
}

mxp_status mxp_count_classes(uint64_t counts[4], const void *x, mxp_dtype dt, size_t n) {
    static const char fn[] = "mxp_count_classes";
    if (!mxp_dtype_size(dt))
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown dtype %d (use f32, f16 or bf16)", fn, (int)dt);
    if (!counts) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: counts is NULL", fn);
    if (n == 0) return MXP_OK;
    if (!x) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: x is NULL with n=%zu", fn, n);
    const int nt = mxp_ew_threads(n, MXP_EW_GRAIN);
    uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    const size_t per = slice_len(n, nt);
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1)
                reduction(+ : c0, c1, c2, c3))
    for (int t = 0; t < nt; t++) {
        const size_t lo = (size_t)t * per, hi = MXP_MIN(n, lo + per);
        uint64_t c[4] = {0, 0, 0, 0};
        if (lo < hi) census_any(dt, x, lo, hi, c);
        c0 += c[0];
        c1 += c[1];
        c2 += c[2];
        c3 += c[3];
    }
    counts[0] += c0;
    counts[1] += c1;
    counts[2] += c2;
    counts[3] += c3;
    return MXP_OK;
}
