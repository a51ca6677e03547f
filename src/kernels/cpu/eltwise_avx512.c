/*
 * eltwise_avx512.c - element-wise ops, activations and unscale + inf check with AVX-512:
 * 16 fp32 lanes, 16-bit dtypes widened and rounded in registers (the bits of mxp_convert),
 * tails by masked loads and stores, so every element of every n takes the same vector
 * path. No threading and no argument checks here: eltwise.c does both.
 */
#include "vec_avx512.h"

/* a = 2K (x + C x^3) and t = exp(-|a|), shared by GELU and its derivative */
MXP_INLINE __m512 gelu_arg16(__m512 x, __m512 x2, __m512 *t) {
    const __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(MXP_GELU_C), x2), x, x);
    const __m512 a = _mm512_mul_ps(_mm512_set1_ps(2.0f * MXP_GELU_K), inner);
    *t = mxp_exp16(_mm512_or_ps(a, _mm512_set1_ps(-0.0f))); /* exp(-|a|) */
    return a;
}

/* x sigmoid(a) as gelu_tanh_f32 in eltwise.c (which explains the form) */
MXP_INLINE __m512 gelu16(__m512 x) {
    __m512 t;
    const __m512 a = gelu_arg16(x, _mm512_mul_ps(x, x), &t);
    const __mmask16 neg = _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 num = _mm512_mask_mul_ps(x, neg, x, t);
    const __m512 y = _mm512_div_ps(num, _mm512_add_ps(_mm512_set1_ps(1.0f), t));
    const __mmask16 ninf = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-__builtin_inff()), _CMP_EQ_OQ);
    return _mm512_mask_mov_ps(y, ninf, _mm512_set1_ps(-0.0f)); /* the limit, not -inf * 0 */
}

/* gelu'(x) as gelu_tanh_grad_f32 in eltwise.c (which explains the form and the limits) */
MXP_INLINE __m512 gelu_grad16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 x2 = _mm512_mul_ps(x, x);
    __m512 t;
    const __m512 a = gelu_arg16(x, x2, &t);
    const __m512 q = _mm512_div_ps(one, _mm512_add_ps(one, t));
    const __mmask16 neg = _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 s = _mm512_mask_mul_ps(q, neg, t, q);
    const __m512 da = _mm512_mul_ps(_mm512_set1_ps(2.0f * MXP_GELU_K),
                                    _mm512_fmadd_ps(_mm512_set1_ps(3.0f * MXP_GELU_C), x2, one));
    const __m512 g =
        _mm512_fmadd_ps(_mm512_mul_ps(da, x), _mm512_mul_ps(_mm512_mul_ps(t, q), q), s);
    return _mm512_mask_mov_ps(g, _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_EQ_OQ), s);
}

MXP_INLINE __m512 apply2(int op, __m512 a, __m512 b) {
    switch (op) {
    case OP_ADD: return _mm512_add_ps(a, b);
    case OP_MUL: return _mm512_mul_ps(a, b);
    case OP_RELU_BWD: /* a * (b > 0 ? 1 : 0), literally, as the reference */
        return _mm512_mul_ps(
            a, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(b, _mm512_setzero_ps(), _CMP_GT_OQ),
                                   _mm512_set1_ps(1.0f)));
    default: return _mm512_mul_ps(a, gelu_grad16(b));
    }
}

MXP_INLINE __m512 apply1(int op, __m512 x, __m512 s) {
    switch (op) {
    case OP_SCALE: return _mm512_mul_ps(s, x);
    case OP_RELU: /* x where x > 0 or NaN, else +0 */
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLE_UQ), x);
    default: return gelu16(x);
    }
}

/* Two vectors a step (enough to keep the loads in flight), then masked tails. In place
 * is safe: every store goes where its own inputs were read. */
MXP_INLINE void binary(int op, mxp_dtype dt, void *y, const void *a, const void *b, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 r0 = apply2(op, mxp_ld16(dt, a, i), mxp_ld16(dt, b, i));
        const __m512 r1 = apply2(op, mxp_ld16(dt, a, i + 16), mxp_ld16(dt, b, i + 16));
        mxp_st16(dt, y, i, r0);
        mxp_st16(dt, y, i + 16, r1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = mxp_mask16(n - i);
        const __m512 r = apply2(op, mxp_ld16_mask(dt, a, i, m), mxp_ld16_mask(dt, b, i, m));
        mxp_st16_mask(dt, y, i, m, r);
    }
}

MXP_INLINE void unary(int op, mxp_dtype dt, void *y, const void *x, float s, size_t n) {
    const __m512 vs = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 r0 = apply1(op, mxp_ld16(dt, x, i), vs);
        const __m512 r1 = apply1(op, mxp_ld16(dt, x, i + 16), vs);
        mxp_st16(dt, y, i, r0);
        mxp_st16(dt, y, i + 16, r1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = mxp_mask16(n - i);
        mxp_st16_mask(dt, y, i, m, apply1(op, mxp_ld16_mask(dt, x, i, m), vs));
    }
}

/* One pass: scale, round, store, and keep the lane-wise maximum of the stored exponent
 * fields; the field reaches all ones (inf or NaN) in some element exactly when that
 * maximum does. Masked-off tail lanes never enter the maximum (0 * inf would be NaN). */
MXP_INLINE int unscale(mxp_dtype st, mxp_dtype dt, void *dst, const void *src, float inv,
                       size_t n) {
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i exp32 = _mm512_set1_epi32(0x7f800000);
    const __m256i exp16 = _mm256_set1_epi16(dt == MXP_DTYPE_F16 ? 0x7c00 : 0x7f80);
    __m512i worst32 = _mm512_setzero_si512();
    __m256i worst16 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i < n; i += 16) {
        const __mmask16 m = mxp_mask16(n - i);
        const __m512 v =
            _mm512_mul_ps(m == 0xffff ? mxp_ld16(st, src, i) : mxp_ld16_mask(st, src, i, m), vinv);
        if (dt == MXP_DTYPE_F32) {
            const __m512i e = _mm512_and_si512(_mm512_castps_si512(v), exp32);
            worst32 = _mm512_mask_max_epu32(worst32, m, worst32, e);
            if (m == 0xffff)
                _mm512_storeu_ps((float *)dst + i, v);
            else
                _mm512_mask_storeu_ps((float *)dst + i, m, v);
        } else {
            const __m256i h = mxp_round16(dt, v);
            worst16 = _mm256_mask_max_epu16(worst16, m, worst16, _mm256_and_si256(h, exp16));
            if (m == 0xffff)
                _mm256_storeu_si256((__m256i *)((uint16_t *)dst + i), h);
            else
                _mm256_mask_storeu_epi16((uint16_t *)dst + i, m, h);
        }
    }
    if (dt == MXP_DTYPE_F32) return _mm512_cmpeq_epi32_mask(worst32, exp32) != 0;
    return _mm256_cmpeq_epi16_mask(worst16, exp16) != 0;
}

static void exp_f32_avx512(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = mxp_mask16(n - i);
        _mm512_mask_storeu_ps(y + i, m, mxp_exp16(_mm512_maskz_loadu_ps(m, x + i)));
    }
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

BINARY(add_f32_avx512, OP_ADD, F32)
BINARY(add_f16_avx512, OP_ADD, F16)
BINARY(add_bf16_avx512, OP_ADD, BF16)
BINARY(mul_f32_avx512, OP_MUL, F32)
BINARY(mul_f16_avx512, OP_MUL, F16)
BINARY(mul_bf16_avx512, OP_MUL, BF16)
BINARY(relu_bwd_f32_avx512, OP_RELU_BWD, F32)
BINARY(relu_bwd_f16_avx512, OP_RELU_BWD, F16)
BINARY(relu_bwd_bf16_avx512, OP_RELU_BWD, BF16)
BINARY(gelu_bwd_f32_avx512, OP_GELU_BWD, F32)
BINARY(gelu_bwd_f16_avx512, OP_GELU_BWD, F16)
BINARY(gelu_bwd_bf16_avx512, OP_GELU_BWD, BF16)
UNARY(scale_f32_avx512, OP_SCALE, F32)
UNARY(scale_f16_avx512, OP_SCALE, F16)
UNARY(scale_bf16_avx512, OP_SCALE, BF16)
UNARY(relu_f32_avx512, OP_RELU, F32)
UNARY(relu_f16_avx512, OP_RELU, F16)
UNARY(relu_bf16_avx512, OP_RELU, BF16)
UNARY(gelu_f32_avx512, OP_GELU, F32)
UNARY(gelu_f16_avx512, OP_GELU, F16)
UNARY(gelu_bf16_avx512, OP_GELU, BF16)
UNSCALE(unscale_f32_to_f32_avx512, F32, F32)
UNSCALE(unscale_f32_to_f16_avx512, F32, F16)
UNSCALE(unscale_f32_to_bf16_avx512, F32, BF16)
UNSCALE(unscale_f16_to_f32_avx512, F16, F32)
UNSCALE(unscale_f16_to_f16_avx512, F16, F16)
UNSCALE(unscale_f16_to_bf16_avx512, F16, BF16)
UNSCALE(unscale_bf16_to_f32_avx512, BF16, F32)
UNSCALE(unscale_bf16_to_f16_avx512, BF16, F16)
UNSCALE(unscale_bf16_to_bf16_avx512, BF16, BF16)

void mxp_ew_register_avx512(mxp_ew_table *t) {
    static const mxp_ew_set set = {
        .add = {add_f32_avx512, add_f16_avx512, add_bf16_avx512},
        .mul = {mul_f32_avx512, mul_f16_avx512, mul_bf16_avx512},
        .relu_backward = {relu_bwd_f32_avx512, relu_bwd_f16_avx512, relu_bwd_bf16_avx512},
        .gelu_tanh_backward = {gelu_bwd_f32_avx512, gelu_bwd_f16_avx512, gelu_bwd_bf16_avx512},
        .scale = {scale_f32_avx512, scale_f16_avx512, scale_bf16_avx512},
        .relu = {relu_f32_avx512, relu_f16_avx512, relu_bf16_avx512},
        .gelu_tanh = {gelu_f32_avx512, gelu_f16_avx512, gelu_bf16_avx512},
        .unscale =
            {{unscale_f32_to_f32_avx512, unscale_f32_to_f16_avx512, unscale_f32_to_bf16_avx512},
             {unscale_f16_to_f32_avx512, unscale_f16_to_f16_avx512, unscale_f16_to_bf16_avx512},
             {unscale_bf16_to_f32_avx512, unscale_bf16_to_f16_avx512, unscale_bf16_to_bf16_avx512}},
        .exp_f32 = exp_f32_avx512};
    mxp_ew_install(t, &set);
}
