/*
 * mixprec/numerics.h - number formats: fp32, fp16, bf16 (and fp8 e4m3/e5m2).
 *
 * A format is data (mxp_format: exponent bits, mantissa bits, bias, how inf
 * and NaN are encoded); one encoder and one decoder serve every format, so a
 * new format is a new table row, not a new code path.
 *
 * The contract (DESIGN.md "Numerics contract"):
 *  - fp32 -> 16-bit rounds to nearest, ties to even; fp16 keeps subnormals;
 *    a finite value that rounds past the largest finite number becomes +-inf;
 *    a NaN becomes a quiet NaN of the same sign whose payload is the top
 *    mantissa bits of the input (what x86's vcvtps2ph and vcvtneps2bf16 do).
 *  - Bit-identical to numpy's float16 and PyTorch's bfloat16 conversions for
 *    every non-NaN fp32 input (the tests check all 2^32 patterns).
 *  - mxp_convert's SIMD paths give the same bits as the scalar functions for
 *    every input, NaNs included.
 *
 * Example, the source document's rounding-error picture:
 *
 *     float w = 1.0f, update = 1e-4f;
 *     uint16_t h = mxp_fp32_to_fp16(w + update);   // 0x3c00: the update is lost
 *     double gap = mxp_format_ulp(&mxp_format_fp16, 1.0);   // 2^-10
 */
#ifndef MIXPREC_NUMERICS_H
#define MIXPREC_NUMERICS_H

#include <stdint.h>

#include "mixprec/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dtypes ------------------------------------------------------------ */

/* Element types of buffers and tensors. Append-only. */
typedef enum mxp_dtype {
    MXP_DTYPE_F32 = 0,  /* IEEE binary32 */
    MXP_DTYPE_F16 = 1,  /* IEEE binary16 (1-5-10) */
    MXP_DTYPE_BF16 = 2, /* bfloat16 (1-8-7) */
    MXP_DTYPE_COUNT
} mxp_dtype;

/* Bytes per element (4, 2, 2); 0 for an unknown dtype. */
MXP_API size_t mxp_dtype_size(mxp_dtype dt);

/* "f32", "f16", "bf16"; "?" for an unknown dtype. */
MXP_API const char *mxp_dtype_name(mxp_dtype dt);

/* Parse "f32|fp32|float32", "f16|fp16|float16|half", "bf16|bfloat16".
 * MXP_ERR_INVALID_ARG (with the accepted names in the message) otherwise. */
MXP_API mxp_status mxp_dtype_parse(const char *name, mxp_dtype *out);

/* ---- formats as data --------------------------------------------------- */

/* How the top exponent code is used. */
typedef enum mxp_special {
    MXP_SPECIAL_IEEE = 0, /* all-ones exponent: mantissa 0 is inf, else NaN */
    MXP_SPECIAL_FN = 1    /* no inf; only all-ones exponent and mantissa is NaN
                             (OCP fp8 E4M3FN); overflow gives NaN */
} mxp_special;

/* A binary floating-point format with subnormals:
 * value = (-1)^s * 2^(e - bias) * 1.m for 0 < e, and 2^(1 - bias) * 0.m for e == 0.
 * The encoder and decoder handle formats no wider than fp32 in either field:
 * bits == 1 + exp_bits + man_bits, 1 <= man_bits <= 23, 2 <= exp_bits <= 8,
 * and an exponent range inside fp32's (1 - bias >= -126, top exponent
 * <= 127); fp32, fp16, bf16 and both fp8 formats are. Other descriptors are
 * undefined behaviour. */
typedef struct mxp_format {
    const char *name;    /* "fp16" */
    int bits;            /* storage width: 1 + exp_bits + man_bits */
    int exp_bits;        /* width of the exponent field */
    int man_bits;        /* width of the stored mantissa (fraction) field */
    int bias;            /* exponent bias */
    mxp_special special; /* inf/NaN rule */
} mxp_format;

extern MXP_API const mxp_format mxp_format_fp32; /* 1-8-23, bias 127 */
extern MXP_API const mxp_format mxp_format_fp16; /* 1-5-10, bias 15 */
extern MXP_API const mxp_format mxp_format_bf16; /* 1-8-7, bias 127 */
extern MXP_API const mxp_format mxp_format_e4m3; /* 1-4-3, bias 7, FN (max 448) */
extern MXP_API const mxp_format mxp_format_e5m2; /* 1-5-2, bias 15, IEEE (max 57344) */

/* The format of a dtype; NULL for an unknown dtype. */
MXP_API const mxp_format *mxp_format_of(mxp_dtype dt);

/* Look a format up by name ("fp32", "fp16", "bf16", "e4m3", "e5m2", and the
 * dtype spellings mxp_dtype_parse accepts). NULL if unknown. */
MXP_API const mxp_format *mxp_format_find(const char *name);

/* Encode an fp32 value in format f, rounding to nearest even, with the
 * overflow and NaN rules of the format (see the contract above). The result
 * is in the low f->bits bits. Exact for fp32 itself (except that a
 * signalling NaN comes back quiet). */
MXP_API uint32_t mxp_format_encode(const mxp_format *f, float x);

/* Stochastic rounding: round |x| up to the next representable magnitude with
 * probability (distance to the lower one) / (gap), using the 32 random bits
 * in rnd. With rnd uniform the result is unbiased: E[decode(encode_sr(x))] = x
 * for x inside the finite range (the probability is resolved to 2^-32 of a
 * gap, so values below 2^-32 of the smallest subnormal always go to zero).
 * NaN as in mxp_format_encode; a value past the largest finite one may round
 * to inf (IEEE) or NaN (FN). */
MXP_API uint32_t mxp_format_encode_sr(const mxp_format *f, float x, uint32_t rnd);

/* Decode bits (low f->bits bits) of format f to fp32; exact for every format
 * here. An IEEE-style NaN keeps its sign and payload (shifted to the top,
 * signalling stays signalling); the one NaN of an FN format decodes to a
 * quiet NaN of its sign. */
MXP_API float mxp_format_decode(const mxp_format *f, uint32_t bits);

/* ---- the four conversions everyone needs ------------------------------- */

MXP_API uint16_t mxp_fp32_to_fp16(float x); /* RNE, subnormals kept, overflow -> inf */
MXP_API float mxp_fp16_to_fp32(uint16_t h); /* exact */
MXP_API uint16_t mxp_fp32_to_bf16(float x); /* RNE, overflow -> inf */
MXP_API float mxp_bf16_to_fp32(uint16_t h); /* exact */

/* Convert n elements between any two of F32, F16, BF16 with the rules above
 * (16-bit to 16-bit goes through fp32 exactly, so it rounds once; equal
 * dtypes are a plain copy of the bits). SIMD for
 * the active ISA, threaded for large n; the same bits as the scalar functions.
 * dst and src must not overlap unless dst == src and the dtypes are equal.
 * Errors: MXP_ERR_INVALID_ARG (NULL with n > 0, overlap), MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_convert(void *dst, mxp_dtype dst_type, const void *src, mxp_dtype src_type,
                               size_t n);

/* ---- stochastic rounding ----------------------------------------------- */

/* The counter-based random source: Philox4x32-10 keyed by seed. Block c
 * yields 4 uint32 out[0..3]; the same (seed, c) always gives the same bits,
 * on any thread count and ISA. */
MXP_API void mxp_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]);

/* Round n fp32 values to F16 or BF16 stochastically. Element i uses random
 * word (offset + i) of the stream for `seed` (word w is element w % 4 of
 * Philox block w / 4), so results do not depend on threads, ISA or how a
 * buffer is split into calls. dst and src must not overlap.
 * Errors: MXP_ERR_INVALID_ARG, MXP_ERR_DTYPE (dst_type not F16/BF16). */
MXP_API mxp_status mxp_convert_sr(void *dst, mxp_dtype dst_type, const float *src, size_t n,
                                  uint64_t seed, uint64_t offset);

/* ---- classification and facts ------------------------------------------ */

typedef enum mxp_class {
    MXP_CLASS_ZERO = 0,
    MXP_CLASS_SUBNORMAL = 1,
    MXP_CLASS_NORMAL = 2,
    MXP_CLASS_INF = 3,
    MXP_CLASS_NAN = 4
} mxp_class;

/* Class of the bit pattern `bits` in format f. */
MXP_API mxp_class mxp_format_classify(const mxp_format *f, uint32_t bits);

/* "zero", "subnormal", "normal", "inf", "nan". */
MXP_API const char *mxp_class_name(mxp_class c);

/* Format facts, exact as doubles. */
MXP_API double mxp_format_max(const mxp_format *f);            /* largest finite value */
MXP_API double mxp_format_min_normal(const mxp_format *f);     /* 2^(1 - bias) */
MXP_API double mxp_format_min_subnormal(const mxp_format *f);  /* 2^(1 - bias - man_bits) */
MXP_API double mxp_format_epsilon(const mxp_format *f);        /* 2^-man_bits: gap above 1.0 */
MXP_API double mxp_format_decimal_digits(const mxp_format *f); /* (man_bits + 1) * log10(2) */

/* The gap between x (as a real number) and the next representable magnitude
 * above it: 2^(max(floor(log2|x|), 1 - bias) - man_bits). For x == 0 the
 * smallest subnormal; for |x| past the largest finite value, the gap below
 * the largest finite value; NaN for NaN or inf. */
MXP_API double mxp_format_ulp(const mxp_format *f, double x);

/* What happens to fp32 values when they are stored in a format. Counts are
 * over the n inputs, each input in exactly one of the first six bins. */
typedef struct mxp_range_stats {
    size_t n;         /* inputs examined */
    size_t zero;      /* input exactly +-0 */
    size_t nonfinite; /* input inf or NaN */
    size_t overflow;  /* finite input that becomes inf (or NaN for FN formats) */
    size_t flush;     /* nonzero finite input that rounds to zero (underflow) */
    size_t subnormal; /* nonzero input that lands on a subnormal */
    size_t normal;    /* input that lands on a normal value */
    double max_abs;   /* largest finite |input| (0 if none) */
    double min_abs;   /* smallest nonzero finite |input| (0 if none) */
} mxp_range_stats;

/* Fill *out for the n fp32 values in x stored in format f.
 * Errors: MXP_ERR_INVALID_ARG (NULL pointers with n > 0). */
MXP_API mxp_status mxp_range_stats_f32(const mxp_format *f, const float *x, size_t n,
                                       mxp_range_stats *out);

#ifdef __cplusplus
}
#endif
#endif
