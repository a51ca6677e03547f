/*
 * numerics_impl.h - the one encoder and decoder every format goes through,
 * inline so that calls with a constant descriptor (mxp_fp32_to_fp16) fold into
 * straight-line bit arithmetic; and the per-ISA table of bulk conversions.
 * Never installed.
 */
#ifndef MIXPREC_NUMERICS_IMPL_H
#define MIXPREC_NUMERICS_IMPL_H

#include <string.h>

#include "../base/base_impl.h"
#include "mixprec/numerics.h"

static inline uint32_t mxp_f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float mxp_bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Encode x in f. sr == 0: round to nearest, ties to even. sr != 0: stochastic,
 * rounding up with probability rem / 2^shift judged against rnd.
 *
 * The value is sig * 2^se with sig < 2^24. The target quantum is 2^qe, where
 * qe = max(floor(log2|x|), emin) - man_bits; q = round(sig * 2^(se - qe)) is
 * the integer significand in that quantum, and the encoding is
 * ((max(e, emin) + bias - 1) << man_bits) + q: for subnormals the exponent
 * term is 0 and q is the mantissa field; for normals q carries the implicit
 * bit, and a q that rounds up to 2^(man_bits+1) carries into the exponent,
 * which is exactly the next binade's encoding. */
static inline uint32_t mxp_encode_impl(const mxp_format *f, float x, int sr, uint32_t rnd) {
    const uint32_t u = mxp_f32_bits(x);
    const int M = f->man_bits;
    const uint32_t sign = (u >> 31) << (f->bits - 1);
    const uint32_t a = u & 0x7fffffffu;
    const uint32_t exp_ones = (1u << f->exp_bits) - 1;
    const uint32_t all_ones = (exp_ones << M) | ((1u << M) - 1);

    if (a >= 0x7f800000u) {
        if (f->special == MXP_SPECIAL_FN) return sign | all_ones;
        if (a == 0x7f800000u) return sign | (exp_ones << M);
        /* quiet NaN, same sign, top payload bits kept */
        return sign | (exp_ones << M) | (1u << (M - 1)) | ((a & 0x7fffffu) >> (23 - M));
    }
    if (a == 0) return sign;

    uint32_t sig;
    int e, se;
    if (a >> 23) {
        sig = (a & 0x7fffffu) | 0x800000u;
        e = (int)(a >> 23) - 127;
        se = e - 23;
    } else {
        sig = a;
        se = -149;
        e = (31 - __builtin_clz(sig)) + se;
    }
    const int emin = 1 - f->bias;
    const int ee = e < emin ? emin : e;
    const int shift = (ee - M) - se;

    uint32_t q;
    if (shift <= 0) {
        q = sig << -shift; /* exact: the target has at least as many bits */
    } else if (!sr) {
        if (shift >= 25) return sign; /* sig < 2^24 <= half: rounds to zero */
        const uint32_t half = 1u << (shift - 1);
        const uint32_t rem = sig & ((half << 1) - 1);
        q = sig >> shift;
        if (rem > half || (rem == half && (q & 1))) q++;
    } else {
        uint64_t rem, thr;
        if (shift < 32) {
            q = sig >> shift;
            rem = sig & ((1u << shift) - 1);
            thr = rem << (32 - shift);
        } else {
            q = 0;
            rem = sig;
            thr = shift - 32 >= 32 ? 0 : rem >> (shift - 32);
        }
        if ((uint64_t)rnd < thr) q++;
    }

    const uint32_t enc = ((uint32_t)(ee + f->bias - 1) << M) + q;
    if (f->special == MXP_SPECIAL_IEEE) {
        if (enc >= (exp_ones << M)) return sign | (exp_ones << M); /* overflow: inf */
    } else if (enc >= all_ones) {
        return sign | all_ones; /* FN: past the largest finite value is NaN */
    }
    return sign | enc;
}

/* Decode bits of f to fp32: exact for every pattern, NaN sign and payload
 * kept (a signalling NaN stays signalling, as numpy and PyTorch do). */
static inline float mxp_decode_impl(const mxp_format *f, uint32_t bits) {
    const int M = f->man_bits;
    if (M == 23) return mxp_bits_f32(bits); /* fp32 itself */
    const uint32_t exp_ones = (1u << f->exp_bits) - 1;
    const uint32_t sign = ((bits >> (f->bits - 1)) & 1u) << 31;
    const uint32_t E = (bits >> M) & exp_ones;
    const uint32_t m = bits & ((1u << M) - 1);
    if (E == exp_ones) {
        if (f->special == MXP_SPECIAL_IEEE)
            return mxp_bits_f32(sign | 0x7f800000u | (m << (23 - M)));
        if (m == (1u << M) - 1) return mxp_bits_f32(sign | 0x7fc00000u);
    }
    if (E == 0) {
        if (m == 0) return mxp_bits_f32(sign);
        /* value m * 2^(1 - bias - M): a normal fp32 when its exponent fits
         * (fp16, fp8), else an fp32 subnormal (bf16 shares fp32's range) */
        const int p = 31 - __builtin_clz(m); /* m = 1.xxx * 2^p */
        const int fe = p - M + 1 - f->bias + 127;
        if (fe < 1) return mxp_bits_f32(sign | (m << (150 - f->bias - M)));
        return mxp_bits_f32(sign | ((uint32_t)fe << 23) | ((m << (23 - p)) & 0x7fffffu));
    }
    return mxp_bits_f32(sign | ((E - (uint32_t)f->bias + 127u) << 23) | (m << (23 - M)));
}

/* The fp16 and bf16 rows of format.c's table, for code that needs the
 * compiler to see the constants (an extern const object in another file
 * cannot be folded, and the generic encoder then runs ~4x slower). */
#define MXP_FORMAT_ROW_FP16                                                                        \
    { "fp16", 16, 5, 10, 15, MXP_SPECIAL_IEEE }
#define MXP_FORMAT_ROW_BF16                                                                        \
    { "bf16", 16, 8, 7, 127, MXP_SPECIAL_IEEE }

/* The four scalar conversions, inline: the bits of mxp_fp32_to_fp16 etc. */
static inline uint16_t mxp_f32_to_f16_inl(float x) {
    static const mxp_format f = MXP_FORMAT_ROW_FP16;
    return (uint16_t)mxp_encode_impl(&f, x, 0, 0);
}

static inline uint16_t mxp_f32_to_bf16_inl(float x) {
    static const mxp_format f = MXP_FORMAT_ROW_BF16;
    return (uint16_t)mxp_encode_impl(&f, x, 0, 0);
}

static inline float mxp_f16_to_f32_inl(uint16_t h) {
    static const mxp_format f = MXP_FORMAT_ROW_FP16;
    return mxp_decode_impl(&f, h);
}

static inline float mxp_bf16_to_f32_inl(uint16_t h) {
    static const mxp_format f = MXP_FORMAT_ROW_BF16;
    return mxp_decode_impl(&f, h);
}

/* Element i of a buffer of dtype dt, widened exactly to fp32; and v rounded
 * to nearest even into element i. Through memcpy, so a strided view at any
 * address is fine; the compiler turns it into one load or store. */
static inline float mxp_load_f32(mxp_dtype dt, const void *p, size_t i) {
    if (dt == MXP_DTYPE_F32) {
        float x;
        memcpy(&x, (const char *)p + 4 * i, 4);
        return x;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return dt == MXP_DTYPE_F16 ? mxp_f16_to_f32_inl(h) : mxp_bf16_to_f32_inl(h);
}

static inline void mxp_store_f32(mxp_dtype dt, void *p, size_t i, float v) {
    if (dt == MXP_DTYPE_F32) {
        memcpy((char *)p + 4 * i, &v, 4);
        return;
    }
    const uint16_t h = dt == MXP_DTYPE_F16 ? mxp_f32_to_f16_inl(v) : mxp_f32_to_bf16_inl(v);
    memcpy((char *)p + 2 * i, &h, 2);
}

/* Bulk conversion kernels of one ISA: n elements, no overlap, any n. */
typedef void (*mxp_cvt_fn)(void *dst, const void *src, size_t n);

typedef struct mxp_cvt_table {
    mxp_cvt_fn f32_to_f16;
    mxp_cvt_fn f32_to_bf16;
    mxp_cvt_fn f16_to_f32;
    mxp_cvt_fn bf16_to_f32;
} mxp_cvt_table;

/* Each ISA file fills the slots it implements (the rest stay as they are). */
void mxp_cvt_register_ref(mxp_cvt_table *t);
void mxp_cvt_register_avx2(mxp_cvt_table *t);
void mxp_cvt_register_avx512(mxp_cvt_table *t);

/* The table for an ISA family (ref slots under any the family lacks).
 * The kernels layer uses it for packing and element-wise loads and stores. */
const mxp_cvt_table *mxp_cvt_table_for(mxp_isa isa);

#endif
