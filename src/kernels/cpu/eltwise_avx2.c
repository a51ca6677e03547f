/*
 * eltwise_avx2.c - element-wise ops, activations and unscale + inf check with AVX2, FMA
 * and F16C: 8 fp32 lanes, 16-bit dtypes widened and rounded in registers (the bits of
 * mxp_convert); the last n % 8 elements go through a stack buffer and the same vector
 * code, not a scalar loop. No threading and no argument checks here: eltwise.c does both.
 */
#include "vec_avx2.h"

/* a = 2K (x + C x^3) and t = exp(-|a|), shared by GELU and its derivative */
MXP_INLINE __m256 gelu_arg8(__m256 x, __m256 x2, __m256 *t) {
    const __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(MXP_GELU_C), x2), x, x);
    const __m256 a = _mm256_mul_ps(_mm256_set1_ps(2.0f * MXP_GELU_K), inner);
    *t = mxp_exp8(_mm256_or_ps(a, _mm256_set1_ps(-0.0f))); /* exp(-|a|) */
    return a;
}

/* x sigmoid(a) as gelu_tanh_f32 in eltwise.c (which explains the form) */
MXP_INLINE __m256 gelu8(__m256 x) {
    __m256 t;
    const __m256 a = gelu_arg8(x, _mm256_mul_ps(x, x), &t);
    const __m256 neg = _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 num = _mm256_blendv_ps(x, _mm256_mul_ps(x, t), neg);
    const __m256 y = _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), t));
    const __m256 ninf = _mm256_cmp_ps(x, _mm256_set1_ps(-__builtin_inff()), _CMP_EQ_OQ);
    return _mm256_blendv_ps(y, _mm256_set1_ps(-0.0f), ninf); /* the limit, not -inf * 0 */
}

/* gelu'(x) as gelu_tanh_grad_f32 in eltwise.c (which explains the form and the limits) */
MXP_INLINE __m256 gelu_grad8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 t;
    const __m256 a = gelu_arg8(x, x2, &t);
    const __m256 q = _mm256_div_ps(one, _mm256_add_ps(one, t));
    const __m256 s =
        _mm256_blendv_ps(q, _mm256_mul_ps(t, q), _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_LT_OQ));
    const __m256 da = _mm256_mul_ps(_mm256_set1_ps(2.0f * MXP_GELU_K),
                                    _mm256_fmadd_ps(_mm256_set1_ps(3.0f * MXP_GELU_C), x2, one));
    const __m256 g =
        _mm256_fmadd_ps(_mm256_mul_ps(da, x), _mm256_mul_ps(_mm256_mul_ps(t, q), q), s);
    return _mm256_blendv_ps(g, s, _mm256_cmp_ps(t, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

MXP_INLINE __m256 apply2(int op, __m256 a, __m256 b) {
    switch (op) {
    case OP_ADD: return _mm256_add_ps(a, b);
    case OP_MUL: return _mm256_mul_ps(a, b);
    case OP_RELU_BWD: /* a * (b > 0 ? 1 : 0), literally, as the reference */
        return _mm256_mul_ps(a, _mm256_and_ps(_mm256_cmp_ps(b, _mm256_setzero_ps(), _CMP_GT_OQ),
                                              _mm256_set1_ps(1.0f)));
    default: return _mm256_mul_ps(a, gelu_grad8(b));
    }
}

MXP_INLINE __m256 apply1(int op, __m256 x, __m256 s) {
    switch (op) {
    case OP_SCALE: return _mm256_mul_ps(s, x);
    case OP_RELU: /* x where x > 0 or NaN, else +0 */
        return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ), x);
    default: return gelu8(x);
    }
}

/* Two vectors a step, then one, then the partial tail. In place is safe: every store goes
 * where its own inputs were read. */
MXP_INLINE void binary(int op, mxp_dtype dt, void *y, const void *a, const void *b, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 r0 = apply2(op, mxp_ld8(dt, a, i), mxp_ld8(dt, b, i));
        const __m256 r1 = apply2(op, mxp_ld8(dt, a, i + 8), mxp_ld8(dt, b, i + 8));
        mxp_st8(dt, y, i, r0);
        mxp_st8(dt, y, i + 8, r1);
    }
    for (; i + 8 <= n; i += 8) mxp_st8(dt, y, i, apply2(op, mxp_ld8(dt, a, i), mxp_ld8(dt, b, i)));
    if (i < n) {
        const size_t k = n - i;
        const __m256 r = apply2(op, mxp_ld8_part(dt, a, i, k), mxp_ld8_part(dt, b, i, k));
        mxp_st8_part(dt, y, i, k, r);
    }
}

MXP_INLINE void unary(int op, mxp_dtype dt, void *y, const void *x, float s, size_t n) {
    const __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 r0 = apply1(op, mxp_ld8(dt, x, i), vs);
        const __m256 r1 = apply1(op, mxp_ld8(dt, x, i + 8), vs);
        mxp_st8(dt, y, i, r0);
        mxp_st8(dt, y, i + 8, r1);
    }
    for (; i + 8 <= n; i += 8) mxp_st8(dt, y, i, apply1(op, mxp_ld8(dt, x, i), vs));
    if (i < n) mxp_st8_part(dt, y, i, n - i, apply1(op, mxp_ld8_part(dt, x, i, n - i), vs));
}

/* One pass: scale, round, store, and keep the lane-wise maximum of the stored exponent
 * fields; the field reaches all ones (inf or NaN) in some element exactly when that
 * maximum does. The padding lanes of the tail are zeroed before rounding, so they never
 * count (0 * inf would be NaN). */
MXP_INLINE int unscale(mxp_dtype st, mxp_dtype dt, void *dst, const void *src, float inv,
                       size_t n) {
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256i exp32 = _mm256_set1_epi32(0x7f800000);
    const __m128i exp16 = _mm_set1_epi16(dt == MXP_DTYPE_F16 ? 0x7c00 : 0x7f80);
    __m256i worst32 = _mm256_setzero_si256();
    __m128i worst16 = _mm_setzero_si128();
    for (size_t i = 0; i < n; i += 8) {
        const size_t k = MXP_MIN((size_t)8, n - i);
        __m256 v;
        if (k == 8) {
            v = _mm256_mul_ps(mxp_ld8(st, src, i), vinv);
        } else {
            v = _mm256_and_ps(_mm256_mul_ps(mxp_ld8_part(st, src, i, k), vinv), mxp_lanes8(k));
        }
        if (dt == MXP_DTYPE_F32) {
            worst32 = _mm256_max_epu32(worst32, _mm256_and_si256(_mm256_castps_si256(v), exp32));
            if (k == 8)
                _mm256_storeu_ps((float *)dst + i, v);
            else
                mxp_st8_part(dt, dst, i, k, v);
        } else {
            const __m128i h = mxp_round8(dt, v);
            worst16 = _mm_max_epu16(worst16, _mm_and_si128(h, exp16));
            if (k == 8) {
                _mm_storeu_si128((__m128i *)((uint16_t *)dst + i), h);
            } else {
                uint16_t buf[8];
                _mm_storeu_si128((__m128i *)buf, h);
                memcpy((uint16_t *)dst + i, buf, k * 2);
            }
        }
    }
    if (dt == MXP_DTYPE_F32) return _mm256_movemask_epi8(_mm256_cmpeq_epi32(worst32, exp32)) != 0;
    return _mm_movemask_epi8(_mm_cmpeq_epi16(worst16, exp16)) != 0;
}

static void exp_f32_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, mxp_exp8(_mm256_loadu_ps(x + i)));
    if (i < n)
        mxp_st8_part(MXP_DTYPE_F32, y, i, n - i,
                     mxp_exp8(mxp_ld8_part(MXP_DTYPE_F32, x, i, n - i)));
}

/* One instance per op and dtype; the names are spelled out in full so they can be found. */
#define BINARY(name, op, dt)                                                                       \
    static void name(void *y, const void *a, const void *b, size_t n) {                            \
        binary(op, dt, y, a, b, n);                                                                \
    }
#define UNARY(name, op, dt)                                                                        \
    static void name(void *y, const void *x, float s, size_t n) { unary(op, dt, y, x, s, n); }
#define UNSCALE(name, st, dt)                                                                      \
    static int name(void *d, const void *s, float v, size_t n) {                                   \
        return unscale(st, dt, d, s, v, n);                                                        \
    }
#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

BINARY(add_f32_avx2, OP_ADD, F32)
BINARY(add_f16_avx2, OP_ADD, F16)
BINARY(add_bf16_avx2, OP_ADD, BF16)
BINARY(mul_f32_avx2, OP_MUL, F32)
BINARY(mul_f16_avx2, OP_MUL, F16)
BINARY(mul_bf16_avx2, OP_MUL, BF16)
BINARY(relu_bwd_f32_avx2, OP_RELU_BWD, F32)
BINARY(relu_bwd_f16_avx2, OP_RELU_BWD, F16)
BINARY(relu_bwd_bf16_avx2, OP_RELU_BWD, BF16)
BINARY(gelu_bwd_f32_avx2, OP_GELU_BWD, F32)
BINARY(gelu_bwd_f16_avx2, OP_GELU_BWD, F16)
BINARY(gelu_bwd_bf16_avx2, OP_GELU_BWD, BF16)
UNARY(scale_f32_avx2, OP_SCALE, F32)
UNARY(scale_f16_avx2, OP_SCALE, F16)
UNARY(scale_bf16_avx2, OP_SCALE, BF16)
UNARY(relu_f32_avx2, OP_RELU, F32)
UNARY(relu_f16_avx2, OP_RELU, F16)
UNARY(relu_bf16_avx2, OP_RELU, BF16)
UNARY(gelu_f32_avx2, OP_GELU, F32)
UNARY(gelu_f16_avx2, OP_GELU, F16)
UNARY(gelu_bf16_avx2, OP_GELU, BF16)
UNSCALE(unscale_f32_to_f32_avx2, F32, F32)
UNSCALE(unscale_f32_to_f16_avx2, F32, F16)
UNSCALE(unscale_f32_to_bf16_avx2, F32, BF16)
UNSCALE(unscale_f16_to_f32_avx2, F16, F32)
UNSCALE(unscale_f16_to_f16_avx2, F16, F16)
UNSCALE(unscale_f16_to_bf16_avx2, F16, BF16)
UNSCALE(unscale_bf16_to_f32_avx2, BF16, F32)
UNSCALE(unscale_bf16_to_f16_avx2, BF16, F16)
UNSCALE(unscale_bf16_to_bf16_avx2, BF16, BF16)

void mxp_ew_register_avx2(mxp_ew_table *t) {
    static const mxp_ew_set set = {
        .add = {add_f32_avx2, add_f16_avx2, add_bf16_avx2},
        .mul = {mul_f32_avx2, mul_f16_avx2, mul_bf16_avx2},
        .relu_backward = {relu_bwd_f32_avx2, relu_bwd_f16_avx2, relu_bwd_bf16_avx2},
        .gelu_tanh_backward = {gelu_bwd_f32_avx2, gelu_bwd_f16_avx2, gelu_bwd_bf16_avx2},
        .scale = {scale_f32_avx2, scale_f16_avx2, scale_bf16_avx2},
        .relu = {relu_f32_avx2, relu_f16_avx2, relu_bf16_avx2},
        .gelu_tanh = {gelu_f32_avx2, gelu_f16_avx2, gelu_bf16_avx2},
        .unscale = {{unscale_f32_to_f32_avx2, unscale_f32_to_f16_avx2, unscale_f32_to_bf16_avx2},
                    {unscale_f16_to_f32_avx2, unscale_f16_to_f16_avx2, unscale_f16_to_bf16_avx2},
                    {unscale_bf16_to_f32_avx2, unscale_bf16_to_f16_avx2,
                     unscale_bf16_to_bf16_avx2}},
        .exp_f32 = exp_f32_avx2};
    mxp_ew_install(t, &set);
}
