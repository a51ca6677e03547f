/*
 * optim_avx512.c - the SGD and AdamW updates of optim.c with AVX-512, 16 elements a step:
 * fp32, bf16 and fp16 gradients and working copies are widened and rounded in registers
 * (simd_avx512.h: bf16 in integer arithmetic, fp16 by F16C, the bits of mxp_convert), and
 * every fp32 operation is the scalar reference's, in its order and without FMA, so the
 * results are bit-identical to it. Stochastic rounding: Philox 16 blocks to a vector, the
 * encoder's integer steps in registers. Tails by masked loads and stores. No threading and
 * no argument checks: optim.c does both.
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

/* ---- the random words of stochastic rounding ----------------------------------------------- */

/* hi and lo 32 bits of the 16 products a * m (unsigned 32 x 32 -> 64), by two vpmuludq: the
 * even lanes' products in place, the odd lanes' after a shift down */
MXP_INLINE void mul_hilo(__m512i a, __m512i m, __m512i *hi, __m512i *lo) {
    const __m512i ev = _mm512_mul_epu32(a, m);
    const __m512i od = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *hi = _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(ev, 32), od);
    *lo = _mm512_mask_blend_epi32(0xaaaa, ev, _mm512_slli_epi64(od, 32));
}

/* Philox4x32-10 blocks b0 .. b0 + 15 (mxp_philox4x32's rounds, one block per lane), written
 * in stream order: out[4 j + k] = word k of block b0 + j. The four result vectors hold word k
 * of every block; two unpack levels gather each block's four words in a 128-bit lane, two
 * 128-bit shuffles put the blocks in order. */
MXP_INLINE void philox16(uint64_t seed, uint64_t b0, uint32_t *out) {
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    /* counters b0 + j: low words with the carry into the high words */
    const __m512i lo0 = _mm512_set1_epi32((int)(uint32_t)b0);
    __m512i c0 = _mm512_add_epi32(lo0, lane);
    const __mmask16 carry = _mm512_cmplt_epu32_mask(c0, lo0);
    __m512i c1 =
        _mm512_mask_add_epi32(_mm512_set1_epi32((int)(uint32_t)(b0 >> 32)), carry,
                              _mm512_set1_epi32((int)(uint32_t)(b0 >> 32)), _mm512_set1_epi32(1));
    __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u),
                  m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m512i h0, l0, h1, l1;
        mul_hilo(c0, m0, &h0, &l0);
        mul_hilo(c2, m1, &h1, &l1);
        c0 = _mm512_xor_si512(_mm512_xor_si512(h1, c1), _mm512_set1_epi32((int)k0));
        c2 = _mm512_xor_si512(_mm512_xor_si512(h0, c3), _mm512_set1_epi32((int)k1));
        c1 = l1;
        c3 = l0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    const __m512i a = _mm512_unpacklo_epi32(c0, c1), b = _mm512_unpackhi_epi32(c0, c1);
    const __m512i c = _mm512_unpacklo_epi32(c2, c3), d = _mm512_unpackhi_epi32(c2, c3);
    const __m512i w0 = _mm512_unpacklo_epi64(a, c);                    /* blocks 0, 4, 8, 12 */
    const __m512i w1 = _mm512_unpackhi_epi64(a, c);                    /* 1, 5, 9, 13 */
    const __m512i w2 = _mm512_unpacklo_epi64(b, d);                    /* 2, 6, 10, 14 */
    const __m512i w3 = _mm512_unpackhi_epi64(b, d);                    /* 3, 7, 11, 15 */
    const __m512i t0 = _mm512_shuffle_i32x4(w0, w1, 0x44);             /* 0, 4, 1, 5 */
    const __m512i t1 = _mm512_shuffle_i32x4(w2, w3, 0x44);             /* 2, 6, 3, 7 */
    const __m512i t2 = _mm512_shuffle_i32x4(w0, w1, 0xee);             /* 8, 12, 9, 13 */
    const __m512i t3 = _mm512_shuffle_i32x4(w2, w3, 0xee);             /* 10, 14, 11, 15 */
    _mm512_storeu_si512(out, _mm512_shuffle_i32x4(t0, t1, 0x88));      /* 0, 1, 2, 3 */
    _mm512_storeu_si512(out + 16, _mm512_shuffle_i32x4(t0, t1, 0xdd)); /* 4, 5, 6, 7 */
    _mm512_storeu_si512(out + 32, _mm512_shuffle_i32x4(t2, t3, 0x88)); /* 8 .. 11 */
    _mm512_storeu_si512(out + 48, _mm512_shuffle_i32x4(t2, t3, 0xdd)); /* 12 .. 15 */
}

/* The words w0 .. w0 + n - 1 (n <= MXP_SR_CHUNK) of the stream keyed by seed, as
 * mxp_sr_words: into buf (MXP_SR_CHUNK + 64 words), returning where word w0 sits. */
static const uint32_t *sr_words16(uint64_t seed, uint64_t w0, size_t n, uint32_t *buf) {
    const uint64_t b0 = w0 >> 2;
    const size_t skip = (size_t)(w0 & 3), nb = (skip + n + 3) / 4;
    for (size_t j = 0; j < nb; j += 16) philox16(seed, b0 + j, buf + 4 * j);
    return buf + skip;
}

/* v rounded to dt (F16 or BF16) stochastically with the random words rw[0..15] (lanes outside
 * m read nothing), as stored bits: mxp_format_encode_sr per lane, the encoder's integer steps
 * (numerics_impl.h) in vector form. The magnitude's significand sig (24 bits) loses `shift`
 * bits to the target quantum; rounding up when the dropped bits rem exceed rnd >> (32 - shift)
 * (the encoder's rnd < rem << (32 - shift)) is adding mask - (rnd >> (32 - shift)),
 * mask = 2^shift - 1, and shifting down: the carry walks into the exponent as the encoder's
 * does, and past the largest finite value gives inf.
 *   bf16: shift is 16 for every finite input (bf16 has fp32's exponent range), so the sum
 *         acts on the fp32 pattern itself.
 *   fp16: shift = 13 from fp16's smallest normal 2^-14 up; below, the quantum stays 2^-24
 *         and shift = -1 - e (e the unbiased exponent). From shift 32 on (|v| < 2^-32) the
 *         encoder compares rnd with sig >> (shift - 32) for a result of 0 or the smallest
 *         subnormal; fp32 subnormals and zero come out as zero.
 * inf and NaN lanes take the nearest-even result: the encoder's inf and quiet NaN. */
MXP_INLINE __m512i sr_raw(mxp_dtype dt, __m512 v, const uint32_t *rw, __mmask16 m, int full) {
    const __m512i r = full ? _mm512_loadu_si512(rw) : _mm512_maskz_loadu_epi32(m, rw);
    const __mmask16 special = /* inf or NaN: |bits| at least the all-ones exponent */
        _mm512_cmpge_epu32_mask(
            _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)),
            _mm512_set1_epi32(0x7f800000)); /* inf or NaN */
    __m512i bits;
    if (dt == BF16) {
        const __m512i add = _mm512_xor_si512(_mm512_srli_epi32(r, 16), _mm512_set1_epi32(0xffff));
        bits = _mm512_srli_epi32(_mm512_add_epi32(_mm512_castps_si512(v), add), 16);
    } else {
        const __m512i u = _mm512_castps_si512(v);
        const __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
        const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000));
        const __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(a, 23), _mm512_set1_epi32(127));
        const __m512i sig = _mm512_or_si512(_mm512_and_si512(a, _mm512_set1_epi32(0x7fffff)),
                                            _mm512_set1_epi32(0x800000));
        const __m512i shift =
            _mm512_max_epi32(_mm512_set1_epi32(13), _mm512_sub_epi32(_mm512_set1_epi32(-1), e));
        const __m512i one = _mm512_set1_epi32(1);
        const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, shift), one);
        const __m512i rs = _mm512_srlv_epi32(r, _mm512_sub_epi32(_mm512_set1_epi32(32), shift));
        __m512i q = _mm512_srlv_epi32(_mm512_add_epi32(sig, _mm512_sub_epi32(mask, rs)), shift);
        /* shift >= 32: 1 when rnd < sig >> (shift - 32) (0 past 31 more), else 0 */
        const __mmask16 far = _mm512_cmpge_epi32_mask(shift, _mm512_set1_epi32(32));
        const __m512i thr = _mm512_srlv_epi32(sig, _mm512_sub_epi32(shift, _mm512_set1_epi32(32)));
        const __m512i tiny = _mm512_maskz_mov_epi32(_mm512_cmplt_epu32_mask(r, thr), one);
        q = _mm512_mask_mov_epi32(q, far, tiny);
        /* exponent field max(e, -14) + 14 above q (q carries the implicit bit), inf at most */
        const __m512i ef =
            _mm512_add_epi32(_mm512_max_epi32(e, _mm512_set1_epi32(-14)), _mm512_set1_epi32(14));
        const __m512i enc = _mm512_min_epu32(_mm512_add_epi32(_mm512_slli_epi32(ef, 10), q),
                                             _mm512_set1_epi32(0x7c00));
        bits = _mm512_or_si512(sign, enc);
    }
    return _mm512_castsi256_si512(
        _mm256_mask_blend_epi16(special, _mm512_cvtepi32_epi16(bits), mxp_round16(dt, v)));
}

/* finish_ref of optim.c for 16 lanes: store master and the work copy (rounded to nearest even,
 * or with sr stochastically by the words rw), count updated (wn - w != 0, NaN included) and
 * lost elements among the lanes of m. */
MXP_INLINE void finish16(mxp_dtype wt, int sr, int master, int count, const bufs *p, size_t i,
                         __mmask16 m, int full, __m512 w, __m512 wn, __m512i old,
                         const uint32_t *rw, uint64_t *nu, uint64_t *nl) {
    const __m512i nb = sr ? sr_raw(wt, wn, rw, m, full) : round_raw(wt, wn);
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

MXP_INLINE void sgd16(mxp_dtype wt, mxp_dtype gt, int sr, int master, int count, int full,
                      const bufs *p, float *buf, const sgd_v *c, size_t i, __mmask16 m,
                      const uint32_t *rw, uint64_t *nu, uint64_t *nl) {
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
    finish16(wt, sr, master, count, p, i, m, full, w, wn, old, rw, nu, nl);
}

MXP_INLINE void sgd_loop(mxp_dtype wt, mxp_dtype gt, int sr, int master, int count,
                         const mxp_update_io *io, float *buf, const mxp_optim_k *k, size_t lo,
                         size_t hi, uint64_t cnt[2]) {
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
    if (!sr) {
        size_t i = lo;
        for (; i + 16 <= hi; i += 16)
            sgd16(wt, gt, 0, master, count, 1, &p, buf, &c, i, 0xffff, NULL, &nu, &nl);
        if (i < hi)
            sgd16(wt, gt, 0, master, count, 0, &p, buf, &c, i, mxp_mask16(hi - i), NULL, &nu, &nl);
    } else { /* chunks of MXP_SR_CHUNK, each with its random words drawn first */
        uint32_t words[MXP_SR_CHUNK + 64];
        for (size_t b = lo; b < hi; b += MXP_SR_CHUNK) {
            const size_t e = MXP_MIN(hi, b + MXP_SR_CHUNK);
            const uint32_t *rw = sr_words16(io->sr_seed, io->sr_offset + b, e - b, words);
            size_t i = b;
            for (; i + 16 <= e; i += 16)
                sgd16(wt, gt, 1, 0, count, 1, &p, buf, &c, i, 0xffff, rw + (i - b), &nu, &nl);
            if (i < e)
                sgd16(wt, gt, 1, 0, count, 0, &p, buf, &c, i, mxp_mask16(e - i), rw + (i - b), &nu,
                      &nl);
        }
    }
    cnt[0] += nu;
    cnt[1] += nl;
}

/* ---- AdamW -------------------------------------------------------------------------------- */

typedef struct adamw_v {
    __m512 gm, decay, b1, c1, b2, c2, step_size, bc2_sqrt, eps;
    int has_wd;
} adamw_v;

MXP_INLINE void adamw16(mxp_dtype wt, mxp_dtype gt, int sr, int master, int count, int full,
                        const bufs *p, float *mv, float *vv, const adamw_v *c, size_t i,
                        __mmask16 m, const uint32_t *rw, uint64_t *nu, uint64_t *nl) {
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
    finish16(wt, sr, master, count, p, i, m, full, w, wn, old, rw, nu, nl);
}

MXP_INLINE void adamw_loop(mxp_dtype wt, mxp_dtype gt, int sr, int master, int count,
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
    if (!sr) {
        size_t i = lo;
        for (; i + 16 <= hi; i += 16)
            adamw16(wt, gt, 0, master, count, 1, &p, mv, vv, &c, i, 0xffff, NULL, &nu, &nl);
        if (i < hi)
            adamw16(wt, gt, 0, master, count, 0, &p, mv, vv, &c, i, mxp_mask16(hi - i), NULL, &nu,
                    &nl);
    } else { /* chunks of MXP_SR_CHUNK, each with its random words drawn first */
        uint32_t words[MXP_SR_CHUNK + 64];
        for (size_t b = lo; b < hi; b += MXP_SR_CHUNK) {
            const size_t e = MXP_MIN(hi, b + MXP_SR_CHUNK);
            const uint32_t *rw = sr_words16(io->sr_seed, io->sr_offset + b, e - b, words);
            size_t i = b;
            for (; i + 16 <= e; i += 16)
                adamw16(wt, gt, 1, 0, count, 1, &p, mv, vv, &c, i, 0xffff, rw + (i - b), &nu, &nl);
            if (i < e)
                adamw16(wt, gt, 1, 0, count, 0, &p, mv, vv, &c, i, mxp_mask16(e - i), rw + (i - b),
                        &nu, &nl);
        }
    }
    cnt[0] += nu;
    cnt[1] += nl;
}

/* ---- one instance per (work dtype, grad dtype, master on/off, counting on/off) ----------- */
/* and per (16-bit work dtype, grad dtype, counting on/off) with stochastic rounding, which
 * comes without master weights */

#define KEY(w, g, ms, ct) ((((int)(w)*MXP_DTYPE_COUNT + (int)(g)) * 2 + (ms)) * 2 + (ct))
#define FOUR(X, w, g) X(w, g, 0, 0) X(w, g, 0, 1) X(w, g, 1, 0) X(w, g, 1, 1)
#define TWELVE(X, w) FOUR(X, w, F32) FOUR(X, w, F16) FOUR(X, w, BF16)
#define ALL_CASES(X) TWELVE(X, F32) TWELVE(X, F16) TWELVE(X, BF16)
#define SR_TWO(X, w, g) X(w, g, 0, 0) X(w, g, 0, 1)
#define SR_SIX(X, w) SR_TWO(X, w, F32) SR_TWO(X, w, F16) SR_TWO(X, w, BF16)
#define SR_CASES(X) SR_SIX(X, F16) SR_SIX(X, BF16)

static int key_of(const mxp_update_io *io) {
    const int count = io->n_updated || io->n_lost;
    return KEY(io->work_dtype, io->grad_dtype, io->master != NULL, count);
}

void mxp_sgd_slice_avx512(const mxp_update_io *io, float *s0, float *s1, const mxp_optim_k *k,
                          size_t lo, size_t hi, uint64_t cnt[2]) {
    (void)s1;
#define SGD_CASE(w, g, ms, ct)                                                                     \
    case KEY(w, g, ms, ct):                                                                        \
        sgd_loop(w, g, 0, ms, ct, io, s0, k, lo, hi, cnt);                                         \
        break;
#define SGD_SR_CASE(w, g, ms, ct)                                                                  \
    case KEY(w, g, ms, ct): sgd_loop(w, g, 1, ms, ct, io, s0, k, lo, hi, cnt); break;
    if (io->stochastic) {
        switch (key_of(io)) { SR_CASES(SGD_SR_CASE) }
    } else {
        switch (key_of(io)) { ALL_CASES(SGD_CASE) }
    }
#undef SGD_SR_CASE
#undef SGD_CASE
}

void mxp_adamw_slice_avx512(const mxp_update_io *io, float *s0, float *s1, const mxp_optim_k *k,
                            size_t lo, size_t hi, uint64_t cnt[2]) {
#define ADAMW_CASE(w, g, ms, ct)                                                                   \
    case KEY(w, g, ms, ct):                                                                        \
        adamw_loop(w, g, 0, ms, ct, io, s0, s1, k, lo, hi, cnt);                                   \
        break;
#define ADAMW_SR_CASE(w, g, ms, ct)                                                                \
    case KEY(w, g, ms, ct): adamw_loop(w, g, 1, ms, ct, io, s0, s1, k, lo, hi, cnt); break;
    if (io->stochastic) {
        switch (key_of(io)) { SR_CASES(ADAMW_SR_CASE) }
    } else {
        switch (key_of(io)) { ALL_CASES(ADAMW_CASE) }
    }
#undef ADAMW_SR_CASE
#undef ADAMW_CASE
}
