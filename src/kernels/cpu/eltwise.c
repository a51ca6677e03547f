/*
 * eltwise.c - element-wise kernels (add, mul, scale, ReLU, GELU-tanh and their backward
 * passes) and the fused unscale + inf check: the public entry points (argument checks,
 * ISA dispatch, OpenMP slices for large n), the scalar reference kernels, and the building
 * of the per-ISA table that reduce.c and softmax.c share. The SIMD kernels live in
 * eltwise_avx2.c / eltwise_avx512.c; nothing here allocates.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "eltwise_impl.h"

/* ---- scalar math shared by the reference kernels --------------------------- */

/* GELU-tanh as x sigmoid(a), a = 2u = 2K (x + C x^3) (see eltwise_impl.h), with one exp
 * that never overflows: t = exp(-|a|) in [0, 1], sigmoid(a) = 1 / (1 + t) for a >= 0 and
 * t / (1 + t) for a < 0. So the negative side keeps its relative accuracy down to the
 * subnormals (x t / (1 + t)) instead of flushing where exp(-a) would overflow (x < -10.2).
 * The limit at -inf is -0 (the formula gives -inf * 0 there). libm's expf. */
static float gelu_tanh_f32(float x) {
    const float a = (2.0f * MXP_GELU_K) * ((MXP_GELU_C * (x * x)) * x + x);
    const float t = expf(-fabsf(a));
    if (x == -INFINITY) return -0.0f;
    return (a >= 0.0f ? x : x * t) / (1.0f + t);
}

/* gelu'(x) = s + x s (1 - s) da/dx with s = sigmoid(a), da/dx = 2K (1 + 3C x^2), and
 * s (1 - s) = t / (1 + t)^2 = t q^2 for both signs of a (q = 1 / (1 + t)). Where t is 0
 * (|a| > ~104) the second term is 0 in the limit but x da/dx may have overflowed, so the
 * result is s itself: exactly 1 or 0, also the limits at +-inf. */
static float gelu_tanh_grad_f32(float x) {
    const float x2 = x * x;
    const float a = (2.0f * MXP_GELU_K) * ((MXP_GELU_C * x2) * x + x);
    const float t = expf(-fabsf(a));
    const float q = 1.0f / (1.0f + t);
    const float s = a >= 0.0f ? q : t * q;
    if (t == 0.0f) return s;
    const float da = (2.0f * MXP_GELU_K) * ((3.0f * MXP_GELU_C) * x2 + 1.0f);
    return (da * x) * ((t * q) * q) + s;
}

/* ---- scalar reference kernels -------------------------------------------- */

MXP_INLINE void binary_ref(int op, mxp_dtype dt, void *y, const void *a, const void *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float u = mxp_load_f32(dt, a, i), v = mxp_load_f32(dt, b, i);
        float r;
        switch (op) {
        case OP_ADD: r = u + v; break;
        case OP_MUL: r = u * v; break;
        /* literally dy * (x > 0): an inf or NaN dy stays NaN where x <= 0, so the loss
         * scaler still sees it */
        case OP_RELU_BWD: r = u * (v > 0.0f ? 1.0f : 0.0f); break;
        default: r = u * gelu_tanh_grad_f32(v); break;
        }
        mxp_store_f32(dt, y, i, r);
    }
}

MXP_INLINE void unary_ref(int op, mxp_dtype dt, void *y, const void *x, float s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float u = mxp_load_f32(dt, x, i);
        float r;
        switch (op) {
        case OP_SCALE: r = s * u; break;
        /* x where x > 0 or NaN (NaN propagates), else +0 (so relu(-0) = +0) */
        case OP_RELU: r = (u > 0.0f || u != u) ? u : 0.0f; break;
        default: r = gelu_tanh_f32(u); break;
        }
        mxp_store_f32(dt, y, i, r);
    }
}

/* whether the stored element i of dtype dt has the all-ones exponent (inf or NaN) */
static int stored_nonfinite(mxp_dtype dt, const void *p, size_t i) {
    switch (dt) {
    case MXP_DTYPE_F16: return (((const uint16_t *)p)[i] & 0x7c00u) == 0x7c00u;
    case MXP_DTYPE_BF16: return (((const uint16_t *)p)[i] & 0x7f80u) == 0x7f80u;
    default: return (mxp_f32_bits(((const float *)p)[i]) & 0x7f800000u) == 0x7f800000u;
    }
}

MXP_INLINE int unscale_ref(mxp_dtype st, mxp_dtype dt, void *dst, const void *src, float inv,
                           size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        mxp_store_f32(dt, dst, i, mxp_load_f32(st, src, i) * inv);
        bad |= stored_nonfinite(dt, dst, i);
    }
    return bad;
}

/* One instance per op and dtype; the names are spelled out in full so they can be found. */
#define BINARY_REF(name, op, dt)                                                                   \
    static void name(void *y, const void *a, const void *b, size_t n) {                            \
        binary_ref(op, dt, y, a, b, n);                                                            \
    }
#define UNARY_REF(name, op, dt)                                                                    \
    static void name(void *y, const void *x, float s, size_t n) { unary_ref(op, dt, y, x, s, n); }
#define UNSCALE_REF(name, st, dt)                                                                  \
    static int name(void *d, const void *s, float v, size_t n) {                                   \
        return unscale_ref(st, dt, d, s, v, n);                                                    \
    }
#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

BINARY_REF(add_f32_ref, OP_ADD, F32)
BINARY_REF(add_f16_ref, OP_ADD, F16)
BINARY_REF(add_bf16_ref, OP_ADD, BF16)
BINARY_REF(mul_f32_ref, OP_MUL, F32)
BINARY_REF(mul_f16_ref, OP_MUL, F16)
BINARY_REF(mul_bf16_ref, OP_MUL, BF16)
BINARY_REF(relu_bwd_f32_ref, OP_RELU_BWD, F32)
BINARY_REF(relu_bwd_f16_ref, OP_RELU_BWD, F16)
BINARY_REF(relu_bwd_bf16_ref, OP_RELU_BWD, BF16)
BINARY_REF(gelu_bwd_f32_ref, OP_GELU_BWD, F32)
BINARY_REF(gelu_bwd_f16_ref, OP_GELU_BWD, F16)
BINARY_REF(gelu_bwd_bf16_ref, OP_GELU_BWD, BF16)
UNARY_REF(scale_f32_ref, OP_SCALE, F32)
UNARY_REF(scale_f16_ref, OP_SCALE, F16)
UNARY_REF(scale_bf16_ref, OP_SCALE, BF16)
UNARY_REF(relu_f32_ref, OP_RELU, F32)
UNARY_REF(relu_f16_ref, OP_RELU, F16)
UNARY_REF(relu_bf16_ref, OP_RELU, BF16)
UNARY_REF(gelu_f32_ref, OP_GELU, F32)
UNARY_REF(gelu_f16_ref, OP_GELU, F16)
UNARY_REF(gelu_bf16_ref, OP_GELU, BF16)
UNSCALE_REF(unscale_f32_to_f32_ref, F32, F32)
UNSCALE_REF(unscale_f32_to_f16_ref, F32, F16)
UNSCALE_REF(unscale_f32_to_bf16_ref, F32, BF16)
UNSCALE_REF(unscale_f16_to_f32_ref, F16, F32)
UNSCALE_REF(unscale_f16_to_f16_ref, F16, F16)
UNSCALE_REF(unscale_f16_to_bf16_ref, F16, BF16)
UNSCALE_REF(unscale_bf16_to_f32_ref, BF16, F32)
UNSCALE_REF(unscale_bf16_to_f16_ref, BF16, F16)
UNSCALE_REF(unscale_bf16_to_bf16_ref, BF16, BF16)

static void exp_f32_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

void mxp_ew_register_ref(mxp_ew_table *t) {
    static const mxp_ew_set set = {
        .add = {add_f32_ref, add_f16_ref, add_bf16_ref},
        .mul = {mul_f32_ref, mul_f16_ref, mul_bf16_ref},
        .relu_backward = {relu_bwd_f32_ref, relu_bwd_f16_ref, relu_bwd_bf16_ref},
        .gelu_tanh_backward = {gelu_bwd_f32_ref, gelu_bwd_f16_ref, gelu_bwd_bf16_ref},
        .scale = {scale_f32_ref, scale_f16_ref, scale_bf16_ref},
        .relu = {relu_f32_ref, relu_f16_ref, relu_bf16_ref},
        .gelu_tanh = {gelu_f32_ref, gelu_f16_ref, gelu_bf16_ref},
        .unscale = {{unscale_f32_to_f32_ref, unscale_f32_to_f16_ref, unscale_f32_to_bf16_ref},
                    {unscale_f16_to_f32_ref, unscale_f16_to_f16_ref, unscale_f16_to_bf16_ref},
                    {unscale_bf16_to_f32_ref, unscale_bf16_to_f16_ref, unscale_bf16_to_bf16_ref}},
        .exp_f32 = exp_f32_ref};
    mxp_ew_install(t, &set);
}

/* ---- the per-ISA tables -------------------------------------------------- */

static mxp_ew_table tables[MXP_ISA_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (int i = 0; i < MXP_ISA_COUNT; i++) {
        mxp_ew_table *t = &tables[i];
        mxp_ew_register_ref(t);
        mxp_reduce_register_ref(t);
        mxp_softmax_register_ref(t);
#ifdef MIXPREC_X86_KERNELS
        if (i >= MXP_ISA_AVX2) {
            mxp_ew_register_avx2(t);
            mxp_reduce_register_avx2(t);
            mxp_softmax_register_avx2(t);
        }
        /* AVX512-BF16 adds nothing here: vcvtneps2bf16 flushes fp32 subnormals, so the
         * rounding stays the integer one of simd_avx512.h */
        if (i >= MXP_ISA_AVX512) {
            mxp_ew_register_avx512(t);
            mxp_reduce_register_avx512(t);
            mxp_softmax_register_avx512(t);
            mxp_pool_register_avx512(t);
        }
#endif
    }
}

const mxp_ew_table *mxp_ew_table_for(mxp_isa isa) {
    pthread_once(&tables_once, build_tables);
    if ((int)isa < 0 || isa >= MXP_ISA_COUNT) isa = MXP_ISA_REF;
    return &tables[isa];
}

/* ---- drivers: contiguous slices, one per thread --------------------------- */

/* elements per thread slice, a multiple of MXP_EW_ALIGN */
static size_t slice_len(size_t n, int nt) {
    const size_t per = (n + (size_t)nt - 1) / (size_t)nt;
    return (per + MXP_EW_ALIGN - 1) / MXP_EW_ALIGN * MXP_EW_ALIGN;
}

static void run_binary(mxp_ew_binary_fn f, void *y, const void *a, const void *b, size_t es,
                       size_t n, size_t grain) {
    const int nt = mxp_ew_threads(n, grain);
    if (nt <= 1) {
        f(y, a, b, n);
        return;
    }
    const size_t per = slice_len(n, nt);
    MXP_OMP(omp parallel for num_threads(nt) schedule(static))
    for (int t = 0; t < nt; t++) {
        const size_t lo = (size_t)t * per, hi = MXP_MIN(n, lo + per);
        if (lo < hi)
            f((char *)y + lo * es, (const char *)a + lo * es, (const char *)b + lo * es, hi - lo);
    }
}

static void run_unary(mxp_ew_unary_fn f, void *y, const void *x, float s, size_t es, size_t n,
                      size_t grain) {
    const int nt = mxp_ew_threads(n, grain);
    if (nt <= 1) {
        f(y, x, s, n);
        return;
    }
    const size_t per = slice_len(n, nt);
    MXP_OMP(omp parallel for num_threads(nt) schedule(static))
    for (int t = 0; t < nt; t++) {
        const size_t lo = (size_t)t * per, hi = MXP_MIN(n, lo + per);
        if (lo < hi) f((char *)y + lo * es, (const char *)x + lo * es, s, hi - lo);
    }
}

/* ---- argument checks ------------------------------------------------------ */

static mxp_status check_dtype(const char *fn, const char *what, mxp_dtype dt) {
    if (!mxp_dtype_size(dt))
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown %sdtype %d (use f32, f16 or bf16)", fn, what,
                        (int)dt);
    return MXP_OK;
}

/* y = f(a, b) over n elements of size es: no NULL when n > 0; y may be a or b exactly
 * (b NULL for unary ops), no other overlap. */
static mxp_status check_ew(const char *fn, const void *y, const void *a, const void *b,
                           mxp_dtype dt, size_t n, int binary) {
    MXP_TRY(check_dtype(fn, "", dt));
    if (n == 0) return MXP_OK;
    if (!y || !a || (binary && !b))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer with n=%zu", fn, n);
    if (n > SIZE_MAX / 4) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: n=%zu too large", fn, n);
    const size_t bytes = n * mxp_dtype_size(dt);
    if (y != a && mxp_overlaps(y, bytes, a, bytes))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: output overlaps the first input", fn);
    if (binary && y != b && mxp_overlaps(y, bytes, b, bytes))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: output overlaps the second input", fn);
    return MXP_OK;
}

static const mxp_ew_table *active(void) { return mxp_ew_table_for(mxp_isa_active()); }

/* ---- public entry points ------------------------------------------------- */

mxp_status mxp_add(void *y, const void *a, const void *b, mxp_dtype dt, size_t n) {
    MXP_TRY(check_ew("mxp_add", y, a, b, dt, n, 1));
    if (n) run_binary(active()->add[dt], y, a, b, mxp_dtype_size(dt), n, MXP_EW_GRAIN);
    return MXP_OK;
}

mxp_status mxp_mul(void *y, const void *a, const void *b, mxp_dtype dt, size_t n) {
    MXP_TRY(check_ew("mxp_mul", y, a, b, dt, n, 1));
    if (n) run_binary(active()->mul[dt], y, a, b, mxp_dtype_size(dt), n, MXP_EW_GRAIN);
    return MXP_OK;
}

mxp_status mxp_scale(void *y, const void *x, float s, mxp_dtype dt, size_t n) {
    MXP_TRY(check_ew("mxp_scale", y, x, NULL, dt, n, 0));
    if (n) run_unary(active()->scale[dt], y, x, s, mxp_dtype_size(dt), n, MXP_EW_GRAIN);
    return MXP_OK;
}

mxp_status mxp_relu(void *y, const void *x, mxp_dtype dt, size_t n) {
    MXP_TRY(check_ew("mxp_relu", y, x, NULL, dt, n, 0));
    if (n) run_unary(active()->relu[dt], y, x, 0.0f, mxp_dtype_size(dt), n, MXP_EW_GRAIN);
    return MXP_OK;
}

mxp_status mxp_gelu_tanh(void *y, const void *x, mxp_dtype dt, size_t n) {
    MXP_TRY(check_ew("mxp_gelu_tanh", y, x, NULL, dt, n, 0));
    if (n) run_unary(active()->gelu_tanh[dt], y, x, 0.0f, mxp_dtype_size(dt), n, MXP_EW_GRAIN_EXP);
    return MXP_OK;
}

mxp_status mxp_relu_backward(void *dx, const void *dy, const void *x, mxp_dtype dt, size_t n) {
    MXP_TRY(check_ew("mxp_relu_backward", dx, dy, x, dt, n, 1));
    if (n) run_binary(active()->relu_backward[dt], dx, dy, x, mxp_dtype_size(dt), n, MXP_EW_GRAIN);
    return MXP_OK;
}

mxp_status mxp_gelu_tanh_backward(void *dx, const void *dy, const void *x, mxp_dtype dt, size_t n) {
    MXP_TRY(check_ew("mxp_gelu_tanh_backward", dx, dy, x, dt, n, 1));
    if (n)
        run_binary(active()->gelu_tanh_backward[dt], dx, dy, x, mxp_dtype_size(dt), n,
                   MXP_EW_GRAIN_EXP);
    return MXP_OK;
}

mxp_status mxp_unscale_check(void *dst, mxp_dtype dst_type, const void *src, mxp_dtype src_type,
                             size_t n, float inv_scale, int *found_inf) {
    static const char fn[] = "mxp_unscale_check";
    MXP_TRY(check_dtype(fn, "destination ", dst_type));
    MXP_TRY(check_dtype(fn, "source ", src_type));
    if (!found_inf) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: found_inf is NULL", fn);
    if (n == 0) return MXP_OK;
    if (!dst || !src) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer with n=%zu", fn, n);
    if (n > SIZE_MAX / 4) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: n=%zu too large", fn, n);
    const size_t ds = mxp_dtype_size(dst_type), ss = mxp_dtype_size(src_type);
    if (!(dst == src && dst_type == src_type) && mxp_overlaps(dst, n * ds, src, n * ss))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: dst and src overlap (only dst == src with equal dtypes is allowed)",
                        fn);

    const mxp_ew_unscale_fn f = active()->unscale[src_type][dst_type];
    const int nt = mxp_ew_threads(n, MXP_EW_GRAIN);
    int bad = 0;
    if (nt <= 1) {
        bad = f(dst, src, inv_scale, n);
    } else {
        const size_t per = slice_len(n, nt);
        MXP_OMP(omp parallel for num_threads(nt) schedule(static) reduction(| : bad))
        for (int t = 0; t < nt; t++) {
            const size_t lo = (size_t)t * per, hi = MXP_MIN(n, lo + per);
            if (lo < hi)
                bad |= f((char *)dst + lo * ds, (const char *)src + lo * ss, inv_scale, hi - lo);
        }
    }
    if (bad) *found_inf |= 1; /* only ever set, so one flag collects over many tensors */
    return MXP_OK;
}
