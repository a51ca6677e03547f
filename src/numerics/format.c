/*
 * format.c - the format table, the scalar conversions, classification,
 * format facts and range statistics. Every format goes through the one
 * encoder/decoder in numerics_impl.h; nothing here is format-specific code.
 */
#include <math.h>
#include <string.h>

#include "numerics_impl.h"

const mxp_format mxp_format_fp32 = {"fp32", 32, 8, 23, 127, MXP_SPECIAL_IEEE};
const mxp_format mxp_format_fp16 = MXP_FORMAT_ROW_FP16;
const mxp_format mxp_format_bf16 = MXP_FORMAT_ROW_BF16;
const mxp_format mxp_format_e4m3 = {"e4m3", 8, 4, 3, 7, MXP_SPECIAL_FN};
const mxp_format mxp_format_e5m2 = {"e5m2", 8, 5, 2, 15, MXP_SPECIAL_IEEE};

size_t mxp_dtype_size(mxp_dtype dt) {
    switch (dt) {
    case MXP_DTYPE_F32: return 4;
    case MXP_DTYPE_F16:
    case MXP_DTYPE_BF16: return 2;
    default: return 0;
    }
}

const char *mxp_dtype_name(mxp_dtype dt) {
    switch (dt) {
    case MXP_DTYPE_F32: return "f32";
    case MXP_DTYPE_F16: return "f16";
    case MXP_DTYPE_BF16: return "bf16";
    default: return "?";
    }
}

static const struct {
    const char *name;
    mxp_dtype dt;
} dtype_names[] = {
    {"f32", MXP_DTYPE_F32},  {"fp32", MXP_DTYPE_F32},  {"float32", MXP_DTYPE_F32},
    {"f16", MXP_DTYPE_F16},  {"fp16", MXP_DTYPE_F16},  {"float16", MXP_DTYPE_F16},
    {"half", MXP_DTYPE_F16}, {"bf16", MXP_DTYPE_BF16}, {"bfloat16", MXP_DTYPE_BF16},
};

/* The dtype spelled `name`, or -1; never touches the last error. */
static int dtype_lookup(const char *name) {
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcmp(name, dtype_names[i].name) == 0) return (int)dtype_names[i].dt;
    return -1;
}

mxp_status mxp_dtype_parse(const char *name, mxp_dtype *out) {
    if (!name || !out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "null argument");
    const int dt = dtype_lookup(name);
    if (dt < 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown dtype '%s' (use fp32, fp16 or bf16)", name);
    *out = (mxp_dtype)dt;
    return MXP_OK;
}

const mxp_format *mxp_format_of(mxp_dtype dt) {
    switch (dt) {
    case MXP_DTYPE_F32: return &mxp_format_fp32;
    case MXP_DTYPE_F16: return &mxp_format_fp16;
    case MXP_DTYPE_BF16: return &mxp_format_bf16;
    default: return NULL;
    }
}

const mxp_format *mxp_format_find(const char *name) {
    if (!name) return NULL;
    const int dt = dtype_lookup(name);
    if (dt >= 0) return mxp_format_of((mxp_dtype)dt);
    if (strcmp(name, "e4m3") == 0 || strcmp(name, "fp8_e4m3") == 0) return &mxp_format_e4m3;
    if (strcmp(name, "e5m2") == 0 || strcmp(name, "fp8_e5m2") == 0) return &mxp_format_e5m2;
    return NULL;
}

uint32_t mxp_format_encode(const mxp_format *f, float x) { return mxp_encode_impl(f, x, 0, 0); }

uint32_t mxp_format_encode_sr(const mxp_format *f, float x, uint32_t rnd) {
    return mxp_encode_impl(f, x, 1, rnd);
}

float mxp_format_decode(const mxp_format *f, uint32_t bits) { return mxp_decode_impl(f, bits); }

uint16_t mxp_fp32_to_fp16(float x) { return mxp_f32_to_f16_inl(x); }
float mxp_fp16_to_fp32(uint16_t h) { return mxp_f16_to_f32_inl(h); }
uint16_t mxp_fp32_to_bf16(float x) { return mxp_f32_to_bf16_inl(x); }
float mxp_bf16_to_fp32(uint16_t h) { return mxp_bf16_to_f32_inl(h); }

/* ---- classification and facts ------------------------------------------ */

mxp_class mxp_format_classify(const mxp_format *f, uint32_t bits) {
    const int M = f->man_bits;
    const uint32_t exp_ones = (1u << f->exp_bits) - 1;
    const uint32_t E = (bits >> M) & exp_ones;
    const uint32_t m = bits & ((1u << M) - 1);
    if (E == exp_ones) {
        if (f->special == MXP_SPECIAL_IEEE) return m ? MXP_CLASS_NAN : MXP_CLASS_INF;
        if (m == (1u << M) - 1) return MXP_CLASS_NAN;
    }
    if (E == 0) return m ? MXP_CLASS_SUBNORMAL : MXP_CLASS_ZERO;
    return MXP_CLASS_NORMAL;
}

const char *mxp_class_name(mxp_class c) {
    static const char *const names[] = {"zero", "subnormal", "normal", "inf", "nan"};
    return (unsigned)c < 5 ? names[c] : "?";
}

static int emax_finite(const mxp_format *f) {
    /* the largest exponent code holding finite values, unbiased */
    int top = (1 << f->exp_bits) - 1;
    return (f->special == MXP_SPECIAL_IEEE ? top - 1 : top) - f->bias;
}

double mxp_format_max(const mxp_format *f) {
    const int M = f->man_bits;
    /* FN: the all-ones mantissa in the top binade is NaN, so one step less */
    double frac_max = f->special == MXP_SPECIAL_IEEE ? 2.0 - ldexp(1.0, -M) : 2.0 - ldexp(2.0, -M);
    return ldexp(frac_max, emax_finite(f));
}

double mxp_format_min_normal(const mxp_format *f) { return ldexp(1.0, 1 - f->bias); }

double mxp_format_min_subnormal(const mxp_format *f) {
    return ldexp(1.0, 1 - f->bias - f->man_bits);
}

double mxp_format_epsilon(const mxp_format *f) { return ldexp(1.0, -f->man_bits); }

double mxp_format_decimal_digits(const mxp_format *f) { return (f->man_bits + 1) * log10(2.0); }

double mxp_format_ulp(const mxp_format *f, double x) {
    if (isnan(x) || isinf(x)) return NAN;
    double ax = fabs(x);
    const double mx = mxp_format_max(f);
    if (ax > mx) ax = mx;
    if (ax == 0) return mxp_format_min_subnormal(f);
    int e;
    frexp(ax, &e); /* ax = m * 2^e with m in [0.5, 1): floor(log2 ax) = e - 1 */
    int fl = e - 1;
    if (fl < 1 - f->bias) fl = 1 - f->bias;
    return ldexp(1.0, fl - f->man_bits);
}

mxp_status mxp_range_stats_f32(const mxp_format *f, const float *x, size_t n,
                               mxp_range_stats *out) {
    if (!f || !out || (n && !x)) return MXP_FAIL(MXP_ERR_INVALID_ARG, "null argument");
    mxp_range_stats s;
    memset(&s, 0, sizeof s);
    s.n = n;
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        if (isnan(v) || isinf(v)) {
            s.nonfinite++;
            continue;
        }
        if (v == 0.0f) {
            s.zero++;
            continue;
        }
        const double av = fabs((double)v);
        if (av > s.max_abs) s.max_abs = av;
        if (s.min_abs == 0 || av < s.min_abs) s.min_abs = av;
        switch (mxp_format_classify(f, mxp_encode_impl(f, v, 0, 0))) {
        case MXP_CLASS_ZERO: s.flush++; break;
        case MXP_CLASS_SUBNORMAL: s.subnormal++; break;
        case MXP_CLASS_NORMAL: s.normal++; break;
        default: s.overflow++; break;
        }
    }
    *out = s;
    return MXP_OK;
}
