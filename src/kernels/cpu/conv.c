/*
 * conv.c - convolution by im2col on NHWC activations (the geometry, im2col and its adjoint
 * col2im) and 2-D max pooling with its backward pass. Portable C: copies are memcpy runs,
 * fp32 sums widen and round through the ISA's bulk conversions (mxp_convert's bits).
 * No GEMM here (the caller multiplies cols by the weights), no padding for pooling, and
 * nothing allocates: scratch lives on the stack in blocks of CB channels.
 */
#include <stdint.h>
#include <string.h>

#include "eltwise_impl.h"

/* channels handled per block in the fp32 accumulators (stack arrays) */
enum { CB = 256 };

/* ---- fp32 staging of 16-bit data ------------------------------------------ */

/* x[0..n) (n <= CB) of dtype dt as fp32, exactly: x itself for F32, else widened into
 * tmp (bf16 is its top half; fp16 through the ISA's bulk conversion). */
static const float *as_f32(const mxp_cvt_table *cvt, mxp_dtype dt, const void *x, size_t n,
                           float *tmp) {
    if (dt == MXP_DTYPE_F32) return x;
    const uint16_t *h = x;
    if (dt == MXP_DTYPE_BF16)
        for (size_t i = 0; i < n; i++) tmp[i] = mxp_bits_f32((uint32_t)h[i] << 16);
    else if (n >= 8)
        cvt->f16_to_f32(tmp, x, n);
    else
        for (size_t i = 0; i < n; i++) tmp[i] = mxp_f16_to_f32_inl(h[i]);
    return tmp;
}

/* dst[0..n) = v rounded once to dt, to nearest even (the bits of mxp_convert) */
static void store_from_f32(const mxp_cvt_table *cvt, mxp_dtype dt, void *dst, const float *v,
                           size_t n) {
    switch (dt) {
    case MXP_DTYPE_F16: cvt->f32_to_f16(dst, v, n); break;
    case MXP_DTYPE_BF16: cvt->f32_to_bf16(dst, v, n); break;
    default: memcpy(dst, v, n * sizeof(float)); break;
    }
}

/* a * b * ..., or 0 when the product of the n factors (each >= 0) does not fit in
 * SIZE_MAX / 4 elements (so that byte counts of any dtype fit too) */
static size_t checked_numel(const int64_t *f, int n) {
    size_t p = 1;
    for (int i = 0; i < n; i++) {
        if (f[i] < 0 || __builtin_mul_overflow(p, (size_t)f[i], &p) || p > SIZE_MAX / 4) return 0;
    }
    return p;
}

/* ---- geometry ----------------------------------------------------------------- */

mxp_status mxp_conv2d_geom_init(mxp_conv2d_geom *g, int64_t B, int64_t H, int64_t W, int64_t C,
                                int64_t KH, int64_t KW, int64_t stride, int64_t pad) {
    static const char fn[] = "mxp_conv2d_geom_init";
    if (!g) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: g is NULL", fn);
    if (B < 1 || H < 1 || W < 1 || C < 1 || KH < 1 || KW < 1)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: sizes must be >= 1 (B=%lld H=%lld W=%lld C=%lld KH=%lld KW=%lld)", fn,
                        (long long)B, (long long)H, (long long)W, (long long)C, (long long)KH,
                        (long long)KW);
    if (stride < 1 || pad < 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: stride=%lld must be >= 1 and pad=%lld >= 0", fn,
                        (long long)stride, (long long)pad);
    /* keeps H + 2 pad and every product of sizes below in range */
    if (pad > (int64_t)1 << 30 || H > (int64_t)1 << 30 || W > (int64_t)1 << 30)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: H=%lld W=%lld pad=%lld too large", fn,
                        (long long)H, (long long)W, (long long)pad);
    if (H + 2 * pad < KH || W + 2 * pad < KW)
        return MXP_FAIL(MXP_ERR_SHAPE,
                        "%s: a %lldx%lld kernel does not fit the padded %lldx%lld input (pad %lld)",
                        fn, (long long)KH, (long long)KW, (long long)H, (long long)W,
                        (long long)pad);
    mxp_conv2d_geom t = {
        .B = B, .H = H, .W = W, .C = C, .KH = KH, .KW = KW, .stride = stride, .pad = pad};
    t.OH = (H + 2 * pad - KH) / stride + 1;
    t.OW = (W + 2 * pad - KW) / stride + 1;
    const int64_t xs[4] = {B, H, W, C}, cs[6] = {B, t.OH, t.OW, KH, KW, C};
    if (!checked_numel(xs, 4) || !checked_numel(cs, 6))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: the input or its im2col matrix is too large", fn);
    *g = t;
    return MXP_OK;
}

/* A geometry the caller may have filled by hand: the same rules as geom_init, and OH, OW
 * as it computes them. */
static mxp_status check_geom(const char *fn, const mxp_conv2d_geom *g, mxp_dtype dt) {
    if (!mxp_dtype_size(dt))
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown dtype %d (use f32, f16 or bf16)", fn, (int)dt);
    if (!g) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: geometry is NULL", fn);
    mxp_conv2d_geom t;
    if (mxp_conv2d_geom_init(&t, g->B, g->H, g->W, g->C, g->KH, g->KW, g->stride, g->pad) !=
            MXP_OK ||
        t.OH != g->OH || t.OW != g->OW)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: inconsistent geometry (use mxp_conv2d_geom_init): B=%lld H=%lld "
                        "W=%lld C=%lld K=%lldx%lld stride=%lld pad=%lld OH=%lld OW=%lld",
                        fn, (long long)g->B, (long long)g->H, (long long)g->W, (long long)g->C,
                        (long long)g->KH, (long long)g->KW, (long long)g->stride, (long long)g->pad,
                        (long long)g->OH, (long long)g->OW);
    return MXP_OK;
}

/* ---- im2col --------------------------------------------------------------------- */

/* cols rows of output rows r in [r0, r1), r = b * OH + oh: OW rows of KH*KW*C each. For one
 * (ow, kh) the valid kw form one interval [kw0, kw1), and their pixels are adjacent in x,
 * so the row is a zero prefix, one memcpy of (kw1 - kw0) * C elements, a zero suffix. */
static void im2col_rows(char *cols, const char *x, size_t es, const mxp_conv2d_geom *g, int64_t r0,
                        int64_t r1) {
    const int64_t H = g->H, W = g->W, C = g->C, KH = g->KH, KW = g->KW, s = g->stride;
    const size_t run = (size_t)(KW * C) * es; /* bytes of one kh slice of a cols row */
    const size_t row = (size_t)KH * run;      /* bytes of one cols row */
    const size_t pix = (size_t)C * es;        /* bytes of one pixel */
    for (int64_t r = r0; r < r1; r++) {
        const int64_t b = r / g->OH, oh = r % g->OH;
        const char *img = x + (size_t)(b * H) * (size_t)W * pix; /* (H, W, C) */
        char *dst = cols + (size_t)r * (size_t)g->OW * row;
        for (int64_t ow = 0; ow < g->OW; ow++, dst += row) {
            const int64_t iw0 = ow * s - g->pad;
            const int64_t kw0 = iw0 < 0 ? -iw0 : 0, kw1 = MXP_MIN(KW, W - iw0);
            for (int64_t kh = 0; kh < KH; kh++) {
                char *d = dst + (size_t)kh * run;
                const int64_t ih = oh * s - g->pad + kh;
                if (ih < 0 || ih >= H || kw1 <= kw0) {
                    memset(d, 0, run);
                    continue;
                }
                if (kw0) memset(d, 0, (size_t)kw0 * pix);
                memcpy(d + (size_t)kw0 * pix, img + (size_t)(ih * W + iw0 + kw0) * pix,
                       (size_t)(kw1 - kw0) * pix);
                if (kw1 < KW) memset(d + (size_t)kw1 * pix, 0, (size_t)(KW - kw1) * pix);
            }
        }
    }
}

mxp_status mxp_im2col(void *cols, const void *x, mxp_dtype dt, const mxp_conv2d_geom *g) {
    static const char fn[] = "mxp_im2col";
    MXP_TRY(check_geom(fn, g, dt));
    if (!cols || !x) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer", fn);
    const size_t es = mxp_dtype_size(dt);
    const size_t nx = (size_t)(g->B * g->H * g->W * g->C);
    const size_t nc = (size_t)(g->B * g->OH * g->OW) * (size_t)(g->KH * g->KW * g->C);
    if (mxp_overlaps(cols, nc * es, x, nx * es))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: cols overlaps x", fn);

    const int64_t R = g->B * g->OH; /* (b, oh) rows, each OW cols rows */
    const int nt = (int)MXP_MIN((int64_t)mxp_ew_threads(nc, MXP_EW_GRAIN), R);
    (void)nt; /* only MXP_OMP reads it */
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t r = 0; r < R; r++) im2col_rows(cols, x, es, g, r, r + 1);
    return MXP_OK;
}

/* ---- col2im --------------------------------------------------------------------- */

/* The outputs o (>= 0, < n_out) whose window of k taps at stride s, starting at
 * o * s - pad, covers input position i: o in [*lo, *hi). */
static void covering(int64_t i, int64_t pad, int64_t k, int64_t s, int64_t n_out, int64_t *lo,
                     int64_t *hi) {
    const int64_t t = i + pad; /* o * s <= t < o * s + k */
    const int64_t first = t - k + 1 <= 0 ? 0 : (t - k + 1 + s - 1) / s;
    *lo = first;
    *hi = MXP_MIN(t / s + 1, n_out);
}

/* acc[0..n) += v[0..n) of dtype dt, widened exactly (bf16 inline, fp16 by the bulk
 * conversion into tmp) */
MXP_INLINE void add_f32(mxp_dtype dt, float *acc, const void *v, size_t n, float *tmp,
                        const mxp_cvt_table *cvt) {
    if (dt == MXP_DTYPE_F32) {
        const float *f = v;
        for (size_t c = 0; c < n; c++) acc[c] += f[c];
    } else if (dt == MXP_DTYPE_BF16) {
        const uint16_t *h = v;
        for (size_t c = 0; c < n; c++) acc[c] += mxp_bits_f32((uint32_t)h[c] << 16);
    } else {
        const float *f = as_f32(cvt, dt, v, n, tmp);
        for (size_t c = 0; c < n; c++) acc[c] += f[c];
    }
}

/* dx rows (b, ih) for r in [r0, r1): every pixel gathers, for each block of channels, the
 * dcols entries that copied it, in the order oh, ow ascending (kh, kw descending). */
MXP_INLINE void col2im_rows(mxp_dtype dt, void *dx, const void *dcols, const mxp_conv2d_geom *g,
                            const mxp_cvt_table *cvt, int64_t r0, int64_t r1) {
    const size_t es = mxp_dtype_size(dt);
    const int64_t H = g->H, W = g->W, C = g->C, KH = g->KH, KW = g->KW, s = g->stride, pad = g->pad,
                  OH = g->OH, OW = g->OW;
    const size_t row = (size_t)(KH * KW * C); /* elements of one dcols row */
    float acc[CB], tmp[CB];
    for (int64_t r = r0; r < r1; r++) {
        const int64_t b = r / H, ih = r % H;
        int64_t oh0, oh1;
        covering(ih, pad, KH, s, OH, &oh0, &oh1);
        for (int64_t iw = 0; iw < W; iw++) {
            int64_t ow0, ow1;
            covering(iw, pad, KW, s, OW, &ow0, &ow1);
            char *out = (char *)dx + (size_t)((r * W + iw) * C) * es;
            for (int64_t c0 = 0; c0 < C; c0 += CB) {
                const size_t nc = (size_t)MXP_MIN((int64_t)CB, C - c0);
                for (size_t c = 0; c < nc; c++) acc[c] = 0.0f;
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    const int64_t kh = ih + pad - oh * s;
                    const char *src =
                        (const char *)dcols + ((size_t)((b * OH + oh) * OW) * row +
                                               (size_t)((kh * KW + iw + pad) * C + c0)) *
                                                  es;
                    /* row ow, tap kw = iw + pad - ow s: ow + 1 is row elements on and
                     * s C elements back */
                    const ptrdiff_t step = (ptrdiff_t)(row - (size_t)(s * C)) * (ptrdiff_t)es;
                    src += (ptrdiff_t)ow0 * step;
                    for (int64_t ow = ow0; ow < ow1; ow++, src += step)
                        add_f32(dt, acc, src, nc, tmp, cvt);
                }
                store_from_f32(cvt, dt, out + (size_t)c0 * es, acc, nc);
            }
        }
    }
}

static void col2im_rows_f32(void *dx, const void *dcols, const mxp_conv2d_geom *g,
                            const mxp_cvt_table *cvt, int64_t r0, int64_t r1) {
    col2im_rows(MXP_DTYPE_F32, dx, dcols, g, cvt, r0, r1);
}
static void col2im_rows_bf16(void *dx, const void *dcols, const mxp_conv2d_geom *g,
                             const mxp_cvt_table *cvt, int64_t r0, int64_t r1) {
    col2im_rows(MXP_DTYPE_BF16, dx, dcols, g, cvt, r0, r1);
}
static void col2im_rows_f16(void *dx, const void *dcols, const mxp_conv2d_geom *g,
                            const mxp_cvt_table *cvt, int64_t r0, int64_t r1) {
    col2im_rows(MXP_DTYPE_F16, dx, dcols, g, cvt, r0, r1);
}

mxp_status mxp_col2im(void *dx, const void *dcols, mxp_dtype dt, const mxp_conv2d_geom *g) {
    static const char fn[] = "mxp_col2im";
    MXP_TRY(check_geom(fn, g, dt));
    if (!dx || !dcols) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer", fn);
    const size_t es = mxp_dtype_size(dt);
    const size_t nx = (size_t)(g->B * g->H * g->W * g->C);
    const size_t nc = (size_t)(g->B * g->OH * g->OW) * (size_t)(g->KH * g->KW * g->C);
    if (mxp_overlaps(dx, nx * es, dcols, nc * es))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: dx overlaps dcols", fn);

    const mxp_cvt_table *cvt = mxp_cvt_table_for(mxp_isa_active());
    void (*rows)(void *, const void *, const mxp_conv2d_geom *, const mxp_cvt_table *, int64_t,
                 int64_t) = dt == MXP_DTYPE_F32    ? col2im_rows_f32
                            : dt == MXP_DTYPE_BF16 ? col2im_rows_bf16
                                                   : col2im_rows_f16;
    const int64_t R = g->B * g->H; /* (b, ih) rows of dx */
    const int nt = (int)MXP_MIN((int64_t)mxp_ew_threads(MXP_MAX(nc, nx), MXP_EW_GRAIN), R);
    (void)nt;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t r = 0; r < R; r++) rows(dx, dcols, g, cvt, r, r + 1);
    return MXP_OK;
}

/* ---- max pooling ---------------------------------------------------------------- */

static mxp_status check_pool(const char *fn, const void *y, const void *x, mxp_dtype dt, int64_t B,
                             int64_t H, int64_t W, int64_t C, int64_t K, int64_t stride) {
    if (!mxp_dtype_size(dt))
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown dtype %d (use f32, f16 or bf16)", fn, (int)dt);
    if (B < 1 || H < 1 || W < 1 || C < 1 || K < 1 || stride < 1 || K > H || K > W)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: need sizes >= 1 and K <= H, W (B=%lld H=%lld W=%lld C=%lld K=%lld "
                        "stride=%lld)",
                        fn, (long long)B, (long long)H, (long long)W, (long long)C, (long long)K,
                        (long long)stride);
    const int64_t f[4] = {B, H, W, C};
    if (!checked_numel(f, 4) || H * W > INT32_MAX)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: input (%lld, %lld, %lld, %lld) too large", fn,
                        (long long)B, (long long)H, (long long)W, (long long)C);
    if (!y || !x) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer", fn);
    return MXP_OK;
}

/* y rows (b, oh) for r in [r0, r1). Per channel the running maximum is kept in fp32 with its
 * flat index; an element replaces it when greater, or when it is NaN and the maximum is not
 * (so the first NaN wins). y then copies the bits of the chosen element. */
static void pool_rows(void *y, int32_t *argmax, const void *x, mxp_dtype dt, int64_t H, int64_t W,
                      int64_t C, int64_t K, int64_t s, int64_t OH, int64_t OW,
                      const mxp_cvt_table *cvt, int64_t r0, int64_t r1) {
    const size_t es = mxp_dtype_size(dt);
    float best[CB], tmp[CB];
    int32_t arg[CB];
    for (int64_t r = r0; r < r1; r++) {
        const int64_t b = r / OH, oh = r % OH;
        const char *img = (const char *)x + (size_t)(b * H * W * C) * es; /* (H, W, C) */
        for (int64_t ow = 0; ow < OW; ow++) {
            const size_t o = (size_t)((r * OW + ow) * C); /* element of y (B, OH, OW, C) */
            for (int64_t c0 = 0; c0 < C; c0 += CB) {
                const size_t nc = (size_t)MXP_MIN((int64_t)CB, C - c0);
                for (int64_t kh = 0; kh < K; kh++) {
                    for (int64_t kw = 0; kw < K; kw++) {
                        const int32_t idx = (int32_t)((oh * s + kh) * W + ow * s + kw);
                        const float *v =
                            as_f32(cvt, dt, img + (size_t)((int64_t)idx * C + c0) * es, nc, tmp);
                        if (kh == 0 && kw == 0) {
                            for (size_t c = 0; c < nc; c++) {
                                best[c] = v[c];
                                arg[c] = idx;
                            }
                            continue;
                        }
                        for (size_t c = 0; c < nc; c++) {
                            const float u = v[c], m = best[c];
                            const int take = (u > m) | ((u != u) & (m == m));
                            best[c] = take ? u : m;
                            arg[c] = take ? idx : arg[c];
                        }
                    }
                }
                /* the stored bits of the winner: exact, NaN payloads included (fp32 and bf16
                 * widen by copying or shifting bits, so the winner's bits come back as they
                 * were; fp16 reads them from x) */
                if (dt == MXP_DTYPE_F32) {
                    memcpy((uint32_t *)y + o + (size_t)c0, best, nc * sizeof(float));
                } else if (dt == MXP_DTYPE_BF16) {
                    uint16_t *dst = (uint16_t *)y + o + (size_t)c0;
                    for (size_t c = 0; c < nc; c++)
                        dst[c] = (uint16_t)(mxp_f32_bits(best[c]) >> 16);
                } else {
                    const uint16_t *src = (const uint16_t *)(const void *)img;
                    uint16_t *dst = (uint16_t *)y + o + (size_t)c0;
                    for (size_t c = 0; c < nc; c++)
                        dst[c] = src[(size_t)arg[c] * (size_t)C + (size_t)c0 + c];
                }
                if (argmax) memcpy(argmax + o + (size_t)c0, arg, nc * sizeof(int32_t));
            }
        }
    }
}

mxp_status mxp_maxpool2d_forward(void *y, int32_t *argmax, const void *x, mxp_dtype dt, int64_t B,
                                 int64_t H, int64_t W, int64_t C, int64_t K, int64_t stride) {
    static const char fn[] = "mxp_maxpool2d_forward";
    MXP_TRY(check_pool(fn, y, x, dt, B, H, W, C, K, stride));
    const int64_t OH = (H - K) / stride + 1, OW = (W - K) / stride + 1;
    const size_t es = mxp_dtype_size(dt), nx = (size_t)(B * H * W * C),
                 ny = (size_t)(B * OH * OW * C);
    if (mxp_overlaps(y, ny * es, x, nx * es) ||
        mxp_overlaps(argmax, argmax ? ny * 4 : 0, x, nx * es) ||
        mxp_overlaps(argmax, argmax ? ny * 4 : 0, y, ny * es))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: y, argmax and x must not overlap", fn);

    const mxp_cvt_table *cvt = mxp_cvt_table_for(mxp_isa_active());
    const mxp_pool_row_fn fast =
        K == stride && argmax ? mxp_ew_table_for(mxp_isa_active())->pool_row[dt] : NULL;
    const int64_t R = B * OH;
    const int nt = (int)MXP_MIN((int64_t)mxp_ew_threads(MXP_MAX(nx, ny), MXP_EW_GRAIN), R);
    (void)nt;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t r = 0; r < R; r++) {
        if (fast) {
            const size_t o = (size_t)(r * OW * C);
            fast((char *)y + o * es, argmax + o,
                 (const char *)x + (size_t)((r / OH) * H * W * C) * es, W, C, K, OW, r % OH);
        } else {
            pool_rows(y, argmax, x, dt, H, W, C, K, stride, OH, OW, cvt, r, r + 1);
        }
    }
    return MXP_OK;
}

/* dx rows (b, ih) for r in [r0, r1): each pixel adds, in fp32 and in the order oh, ow
 * ascending, the dy of every window that covers it and chose it. */
static void pool_bwd_rows(void *dx, const void *dy, const int32_t *argmax, mxp_dtype dt, int64_t H,
                          int64_t W, int64_t C, int64_t K, int64_t s, int64_t OH, int64_t OW,
                          const mxp_cvt_table *cvt, int64_t r0, int64_t r1) {
    const size_t es = mxp_dtype_size(dt);
    float acc[CB], tmp[CB];
    for (int64_t r = r0; r < r1; r++) {
        const int64_t b = r / H, ih = r % H;
        int64_t oh0, oh1;
        covering(ih, 0, K, s, OH, &oh0, &oh1);
        for (int64_t iw = 0; iw < W; iw++) {
            int64_t ow0, ow1;
            covering(iw, 0, K, s, OW, &ow0, &ow1);
            const int32_t idx = (int32_t)(ih * W + iw);
            char *out = (char *)dx + (size_t)((r * W + iw) * C) * es;
            for (int64_t c0 = 0; c0 < C; c0 += CB) {
                const size_t nc = (size_t)MXP_MIN((int64_t)CB, C - c0);
                for (size_t c = 0; c < nc; c++) acc[c] = 0.0f;
                for (int64_t oh = oh0; oh < oh1; oh++) {
                    for (int64_t ow = ow0; ow < ow1; ow++) {
                        const size_t o = (size_t)(((b * OH + oh) * OW + ow) * C + c0);
                        const int32_t *am = argmax + o;
                        const float *v = as_f32(cvt, dt, (const char *)dy + o * es, nc, tmp);
                        /* adding +0 leaves acc alone: it starts at +0 and never becomes -0 */
                        for (size_t c = 0; c < nc; c++) acc[c] += am[c] == idx ? v[c] : 0.0f;
                    }
                }
                store_from_f32(cvt, dt, out + (size_t)c0 * es, acc, nc);
            }
        }
    }
}

mxp_status mxp_maxpool2d_backward(void *dx, const void *dy, const int32_t *argmax, mxp_dtype dt,
                                  int64_t B, int64_t H, int64_t W, int64_t C, int64_t K,
                                  int64_t stride) {
    static const char fn[] = "mxp_maxpool2d_backward";
    MXP_TRY(check_pool(fn, dx, dy, dt, B, H, W, C, K, stride));
    if (!argmax) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: argmax is NULL", fn);
    const int64_t OH = (H - K) / stride + 1, OW = (W - K) / stride + 1;
    const size_t es = mxp_dtype_size(dt), nx = (size_t)(B * H * W * C),
                 ny = (size_t)(B * OH * OW * C);
    if (mxp_overlaps(dx, nx * es, dy, ny * es) || mxp_overlaps(dx, nx * es, argmax, ny * 4))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: dx overlaps dy or argmax", fn);

    if (K <= stride) {
        /* windows do not overlap: each input element receives at most one dy, so dx is
         * zeros plus a scatter of dy's bits (exact in every dtype, no arithmetic) */
        const int nt = (int)MXP_MIN((int64_t)mxp_ew_threads(nx, MXP_EW_GRAIN), B);
        (void)nt;
        MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
        for (int64_t b = 0; b < B; b++) {
            char *dxb = (char *)dx + (size_t)(b * H * W * C) * es;
            memset(dxb, 0, (size_t)(H * W * C) * es);
            const size_t o0 = (size_t)(b * OH * OW * C), o1 = o0 + (size_t)(OH * OW * C);
            for (size_t o = o0; o < o1; o += (size_t)C) {
                const int32_t *am = argmax + o;
                if (es == 2) {
                    const uint16_t *src = (const uint16_t *)dy + o;
                    uint16_t *dst = (uint16_t *)dxb;
                    for (int64_t c = 0; c < C; c++)
                        dst[(size_t)am[c] * (size_t)C + (size_t)c] = src[c];
                } else {
                    const uint32_t *src = (const uint32_t *)dy + o;
                    uint32_t *dst = (uint32_t *)dxb;
                    for (int64_t c = 0; c < C; c++)
                        dst[(size_t)am[c] * (size_t)C + (size_t)c] = src[c];
                }
            }
        }
        return MXP_OK;
    }
    const mxp_cvt_table *cvt = mxp_cvt_table_for(mxp_isa_active());
    const int64_t R = B * H;
    const int nt = (int)MXP_MIN((int64_t)mxp_ew_threads(MXP_MAX(nx, ny), MXP_EW_GRAIN), R);
    (void)nt;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t r = 0; r < R; r++)
        pool_bwd_rows(dx, dy, argmax, dt, H, W, C, K, stride, OH, OW, cvt, r, r + 1);
    return MXP_OK;
}
