/*
 * optim_avx512.c - the SGD and AdamW updates of optim.c with AVX-512, 16 elements a step:
 * fp32, bf16 and fp16 gradients and working copies are widened and rounded in registers
 * (simd_avx512.h: bf16 in integer arithmetic, fp16 by F16C, the bits of mxp_convert), and
 * every fp32 operation is the scalar reference's, in its order and without FMA, so the
 * results are bit-identical to it. Tails by masked loads and stores. No threading and no
 * argument checks: optim.c does both.
 */
#include "optim_impl.h"
#include "vec_avx512.h"

#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

/* ---- 16 lanes of any dtype ------------------------------------------------------------ */

/* The pointers of io, copied so the compiler need not reload them after every store. */
typedef struct bufs {
    float *master; /* (n) or NULL */
    void *work;    /* (n) in the work dtype */
    const void *grad;
} bufs;

MXP_INLINE __m512 ld(mxp_dtype dt, const void *p, size_t i, __mmask16 m, int full) {
    return full ? mxp_ld16(dt, p, i) : mxp_ld16_mask(dt, p, i, m);
}

MXP_INLINE __m512 ldf(const float *p, size_t i, __mmask16 m, int full) {
    return full ? _mm512_loadu_ps(p + i) : _mm512_maskz_loadu_ps(m, p + i);
}

MXP_INLINE void stf(float *p, size_t i, __mmask16 m, int full, __m512 v) {
    if (full)
        _mm512_storeu_ps(p + i, v);
    else
        _mm512_mask_storeu_ps(p + i, m, v);
}

/* Stored bits of 16 work elements: 32-bit lanes for F32, the low 256 bits for 16-bit
 * dtypes (the upper half is then meaningless). */
MXP_INLINE __m512i ld_raw(mxp_dtype dt, const void *p, size_t i, __mmask16 m, int full) {
    if (dt == F32)
        return full ? _mm512_loadu_si512((const float *)p + i)
                    : _mm512_maskz_loadu_epi32(m, (const float *)p + i);
    const uint16_t *h = (const uint16_t *)p + i;
    return _mm512_castsi256_si512(full ? _mm256_loadu_si256((const __m256i *)h)
                                       : _mm256_maskz_loadu_epi16(m, h));
}

MXP_INLINE __m512 widen_raw(mxp_dtype dt, __m512i r) {
    switch (dt) {
    case F16: return mxp_f16_widen16(_mm512_castsi512_si256(r));
    case BF16: return mxp_bf16_widen16(_mm512_castsi512_si256(r));
    default: return _mm512_castsi512_ps(r);
    }
}

/* v rounded to dt, nearest even, as stored bits */
MXP_INLINE __m512i round_raw(mxp_dtype dt, __m512 v) {
    return dt == F32 ? _mm512_castps_si512(v) : _mm512_castsi256_si512(mxp_round16(dt, v));
}

MXP_INLINE void st_raw(mxp_dtype dt, void *p, size_t i, __mmask16 m, int full, __m512i r) {
    if (dt == F32) {
        if (full)
            _mm512_storeu_si512((float *)p + i, r);
        else
            _mm512_mask_storeu_epi32((float *)p + i, m, r);
        return;
    }
    uint16_t *h = (uint16_t *)p + i;
    if (full)
        _mm256_storeu_si256((__m256i *)h, _mm512_castsi512_si256(r));
    else
        _mm256_mask_storeu_epi16(h, m, _mm512_castsi512_si256(r));
}

MXP_INLINE __mmask16 eq_raw(mxp_dtype dt, __m512i a, __m512i b) {
    if (dt == F32) return _mm512_cmpeq_epi32_mask(a, b);
    return _mm256_cmpeq_epi16_mask(_mm512_castsi512_si256(a), _mm512_castsi512_si256(b));
}

/* The old weights: master, or the work copy widened. *old receives the raw work bits when
 * they are needed (no master, or counting). */
MXP_INLINE __m512 ld_w(mxp_dtype wt, int master, int count, const bufs *p, size_t i, __mmask16 m,
                       int full, __m512i *old) {
    if (master) {
        if (count) *old = ld_raw(wt, p->work, i, m, full);
        return ldf(p->master, i, m, full);
    }
    *old = ld_raw(wt, p->work, i, m, full);
    return widen_raw(wt, *old);
}

/* finish_ref of optim.c for 16 lanes: store master and the rounded work copy, count
 * updated (wn - w != 0, NaN included) and lost elements among the lanes of m. */
MXP_INLINE void finish16(mxp_dtype wt, int master, int count, const bufs *p, size_t i, __mmask16 m,
                         int full, __m512 w, __m512 wn, __m512i old, uint64_t *nu, uint64_t *nl) {
    const __m512i nb = round_raw(wt, wn);
    if (count) {
        const __m512 upd = _mm512_sub_ps(wn, w);
        const __mmask16 nz = _mm512_mask_cmp_ps_mask(m, upd, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        const __m512i cand = master ? round_raw(wt, _mm512_add_ps(widen_raw(wt, old), upd)) : nb;
        *nu += (uint64_t)__builtin_popcount(nz);
        *nl += (uint64_t)__builtin_popcount(nz & eq_raw(wt, cand, old));
    }
    if (master) stf(p->master, i, m, full, wn);
    st_raw(wt, p->work, i, m, full, nb);
}

/* ---- SGD ---------------------------------------------------------------------------------- */

typedef struct sgd_v {
    __m512 gm, neg_lr, momentum, damp, wd;
    int has_wd, has_momentum, nesterov, first;
} sgd_v;

MXP_INLINE void sgd16(mxp_dtype wt, mxp_dtype gt, int master, int count, int full, const bufs *p,
                      float *buf, const sgd_v *c, size_t i, __mmask16 m, uint64_t *nu,
                      uint64_t *nl) {
    __m512 g = _mm512_mul_ps(ld(gt, p->grad, i, m, full), c->gm);
    __m512i old = _mm512_setzero_si512();
    const __m512 w = ld_w(wt, master, count, p, i, m, full, &old);
    if (c->has_wd) g = _mm512_add_ps(g, _mm512_mul_ps(c->wd, w));
    if (c->has_momentum) {
        const __m512 b = c->first ? g
                                  : _mm512_add_ps(_mm512_mul_ps(ldf(buf, i, m, full), c->momentum),
                                                  _mm512_mul_ps(c->damp, g));
        stf(buf, i, m, full, b);
        g = c->nesterov ? _mm512_add_ps(g, _mm512_mul_ps(c->momentum, b)) : b;
    }
    const __m512 wn = _mm512_add_ps(w, _mm512_mul_ps(c->neg_lr, g));
    finish16(wt, master, count, p, i, m, full, w, wn, old, nu, nl);
}

MXP_INLINE void sgd_loop(mxp_dtype wt, mxp_dtype gt, int master, int count, const mxp_update_io *io,
                         float *buf, const mxp_optim_k *k, size_t lo, size_t hi, uint64_t cnt[2]) {
    const bufs p = {io->master, io->work, io->grad};
    const sgd_v c = {.gm = _mm512_set1_ps(io->grad_mul),
                     .neg_lr = _mm512_set1_ps(k->neg_lr),
                     .momentum = _mm512_set1_ps(k->momentum),
                     .damp = _mm512_set1_ps(k->damp),
                     .wd = _mm512_set1_ps(k->wd),
                     .has_wd = k->has_wd,
                     .has_momentum = k->has_momentum,
                     .nesterov = k->nesterov,
                     .first = k->first};
    uint64_t nu = 0, nl = 0;
    size_t i = lo;
    for (; i + 16 <= hi; i += 16) sgd16(wt, gt, master, count, 1, &p, buf, &c, i, 0xffff, &nu, &nl);
    if (i < hi) sgd16(wt, gt, master, count, 0, &p, buf, &c, i, mxp_mask16(hi - i), &nu, &nl);
    cnt[0] += nu;
    cnt[1] += nl;
}

/* ---- AdamW -------------------------------------------------------------------------------- */

typedef struct adamw_v {
    __m512 gm, decay, b1, c1, b2, c2, step_size, bc2_sqrt, eps;
    int has_wd;
} adamw_v;

MXP_INLINE void adamw16(mxp_dtype wt, mxp_dtype gt, int master, int count, int full, const bufs *p,
                        float *mv, float *vv, const adamw_v *c, size_t i, __mmask16 m, uint64_t *nu,
                        uint64_t *nl) {
    const __m512 g = _mm512_mul_ps(ld(gt, p->grad, i, m, full), c->gm);
    __m512i old = _mm512_setzero_si512();
    const __m512 w = ld_w(wt, master, count, p, i, m, full, &old);
    const __m512 wd = c->has_wd ? _mm512_mul_ps(w, c->decay) : w;
    const __m512 mi =
        _mm512_add_ps(_mm512_mul_ps(ldf(mv, i, m, full), c->b1), _mm512_mul_ps(c->c1, g));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(ldf(vv, i, m, full), c->b2),
                                    _mm512_mul_ps(_mm512_mul_ps(c->c2, g), g));
    stf(mv, i, m, full, mi);
    stf(vv, i, m, full, vi);
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), c->bc2_sqrt), c->eps);
    const __m512 wn = _mm512_sub_ps(wd, _mm512_div_ps(_mm512_mul_ps(c->step_size, mi), denom));
    finish16(wt, master, count, p, i, m, full, w, wn, old, nu, nl);
}

MXP_INLINE void adamw_loop(mxp_dtype wt, mxp_dtype gt, int master, int count,
                           const mxp_update_io *io, float *mv, float *vv, const mxp_optim_k *k,
                           size_t lo, size_t hi, uint64_t cnt[2]) {
    const bufs p = {io->master, io->work, io->grad};
    const adamw_v c = {.gm = _mm512_set1_ps(io->grad_mul),
                       .decay = _mm512_set1_ps(k->decay),
                       .b1 = _mm512_set1_ps(k->b1),
                       .c1 = _mm512_set1_ps(k->c1),
                       .b2 = _mm512_set1_ps(k->b2),
                       .c2 = _mm512_set1_ps(k->c2),
                       .step_size = _mm512_set1_ps(k->step_size),
                       .bc2_sqrt = _mm512_set1_ps(k->bc2_sqrt),
                       .eps = _mm512_set1_ps(k->eps),
                       .has_wd = k->has_wd};
    uint64_t nu = 0, nl = 0;
    size_t i = lo;
    for (; i + 16 <= hi; i += 16)
        adamw16(wt, gt, master, count, 1, &p, mv, vv, &c, i, 0xffff, &nu, &nl);
    if (i < hi) adamw16(wt, gt, master, count, 0, &p, mv, vv, &c, i, mxp_mask16(hi - i), &nu, &nl);
    cnt[0] += nu;
    cnt[1] += nl;
}

/* ---- one instance per (work dtype, grad dtype, master on/off, counting on/off) ----------- */

#define KEY(w, g, ms, ct) ((((int)(w)*MXP_DTYPE_COUNT + (int)(g)) * 2 + (ms)) * 2 + (ct))
#define FOUR(X, w, g) X(w, g, 0, 0) X(w, g, 0, 1) X(w, g, 1, 0) X(w, g, 1, 1)
#define TWELVE(X, w) FOUR(X, w, F32) FOUR(X, w, F16) FOUR(X, w, BF16)
#define ALL_CASES(X) TWELVE(X, F32) TWELVE(X, F16) TWELVE(X, BF16)

static int key_of(const mxp_update_io *io) {
    const int count = io->n_updated || io->n_lost;
    return KEY(io->work_dtype, io->grad_dtype, io->master != NULL, count);
}

void mxp_sgd_slice_avx512(const mxp_update_io *io, float *s0, float *s1, const mxp_optim_k *k,
                          size_t lo, size_t hi, uint64_t cnt[2]) {
    (void)s1;
#define SGD_CASE(w, g, ms, ct)                                                                     \
    case KEY(w, g, ms, ct): sgd_loop(w, g, ms, ct, io, s0, k, lo, hi, cnt); break;
    switch (key_of(io)) { ALL_CASES(SGD_CASE) }
#undef SGD_CASE
}

void mxp_adamw_slice_avx512(const mxp_update_io *io, float *s0, float *s1, const mxp_optim_k *k,
                            size_t lo, size_t hi, uint64_t cnt[2]) {
#define ADAMW_CASE(w, g, ms, ct)                                                                   \
    case KEY(w, g, ms, ct): adamw_loop(w, g, ms, ct, io, s0, s1, k, lo, hi, cnt); break;
    switch (key_of(io)) { ALL_CASES(ADAMW_CASE) }
#undef ADAMW_CASE
}
