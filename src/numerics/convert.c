/*
 * convert.c - bulk conversion between F32, F16 and BF16: argument checks,
 * the choice of ISA table, threading over chunks, and the scalar reference
 * kernels. The SIMD kernels live in convert_avx2.c / convert_avx512.c and must
 * give the same bits as the reference for every input.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "numerics_impl.h"

/* ---- scalar reference -------------------------------------------------- */

static void f32_to_f16_ref(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    for (size_t i = 0; i < n; i++) d[i] = mxp_f32_to_f16_inl(s[i]);
}

static void f32_to_bf16_ref(void *dst, const void *src, size_t n) {
    uint16_t *d = dst;
    const float *s = src;
    for (size_t i = 0; i < n; i++) d[i] = mxp_f32_to_bf16_inl(s[i]);
}

static void f16_to_f32_ref(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    for (size_t i = 0; i < n; i++) d[i] = mxp_f16_to_f32_inl(s[i]);
}

static void bf16_to_f32_ref(void *dst, const void *src, size_t n) {
    float *d = dst;
    const uint16_t *s = src;
    for (size_t i = 0; i < n; i++) d[i] = mxp_bf16_to_f32_inl(s[i]);
}

void mxp_cvt_register_ref(mxp_cvt_table *t) {
    t->f32_to_f16 = f32_to_f16_ref;
    t->f32_to_bf16 = f32_to_bf16_ref;
    t->f16_to_f32 = f16_to_f32_ref;
    t->bf16_to_f32 = bf16_to_f32_ref;
}

/* ---- dispatch ---------------------------------------------------------- */

static mxp_cvt_table tables[MXP_ISA_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (int i = 0; i < MXP_ISA_COUNT; i++) {
        mxp_cvt_register_ref(&tables[i]);
#ifdef MIXPREC_X86_KERNELS
        if (i >= MXP_ISA_AVX2) mxp_cvt_register_avx2(&tables[i]);
        if (i >= MXP_ISA_AVX512) mxp_cvt_register_avx512(&tables[i]);
#endif
    }
}

const mxp_cvt_table *mxp_cvt_table_for(mxp_isa isa) {
    pthread_once(&tables_once, build_tables);
    if ((int)isa < 0 || isa >= MXP_ISA_COUNT) isa = MXP_ISA_REF;
    return &tables[isa];
}

/* Below this many elements one thread is faster than waking the others. */
enum { PARALLEL_MIN = 1 << 18, CHUNK_ALIGN = 64, STAGE = 2048 };

/* 16-bit to 16-bit: widen exactly to fp32 in a stack buffer, then round once. */
static void convert_via_f32(mxp_cvt_fn widen, mxp_cvt_fn narrow, void *dst, const void *src,
                            size_t n) {
    float buf[STAGE];
    for (size_t i = 0; i < n; i += STAGE) {
        size_t m = MXP_MIN((size_t)STAGE, n - i);
        widen(buf, (const uint16_t *)src + i, m);
        narrow((uint16_t *)dst + i, buf, m);
    }
}

static void convert_range(const mxp_cvt_table *t, void *dst, mxp_dtype dt, const void *src,
                          mxp_dtype st, size_t begin, size_t end) {
    const size_t ds = mxp_dtype_size(dt), ss = mxp_dtype_size(st);
    char *d = (char *)dst + begin * ds;
    const char *s = (const char *)src + begin * ss;
    const size_t n = end - begin;
    if (dt == st) {
        memcpy(d, s, n * ds);
        return;
    }
    mxp_cvt_fn widen = st == MXP_DTYPE_F16 ? t->f16_to_f32 : t->bf16_to_f32;
    mxp_cvt_fn narrow = dt == MXP_DTYPE_F16 ? t->f32_to_f16 : t->f32_to_bf16;
    if (st == MXP_DTYPE_F32)
        narrow(d, s, n);
    else if (dt == MXP_DTYPE_F32)
        widen(d, s, n);
    else
        convert_via_f32(widen, narrow, d, s, n);
}

mxp_status mxp_convert(void *dst, mxp_dtype dst_type, const void *src, mxp_dtype src_type,
                       size_t n) {
    const size_t ds = mxp_dtype_size(dst_type), ss = mxp_dtype_size(src_type);
    if (!ds || !ss)
        return MXP_FAIL(MXP_ERR_DTYPE, "mxp_convert: unknown dtype (%d -> %d)", (int)src_type,
                        (int)dst_type);
    if (n == 0) return MXP_OK;
    if (!dst || !src)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_convert: NULL buffer with n=%zu", n);
    if (n > SIZE_MAX / 4) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_convert: n=%zu too large", n);
    if (dst == src && dst_type == src_type) return MXP_OK;
    if (mxp_overlaps(dst, n * ds, src, n * ss))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_convert: dst and src overlap");

    const mxp_cvt_table *t = mxp_cvt_table_for(mxp_isa_active());
    const int nt = n >= PARALLEL_MIN ? mxp_num_threads() : 1;
    if (nt <= 1) {
        convert_range(t, dst, dst_type, src, src_type, 0, n);
        return MXP_OK;
    }
    /* one contiguous, cache-line aligned slice per thread */
    size_t per = (n + (size_t)nt - 1) / (size_t)nt;
    per = (per + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static))
    for (int i = 0; i < nt; i++) {
        size_t b = (size_t)i * per, e = MXP_MIN(n, b + per);
        if (b < e) convert_range(t, dst, dst_type, src, src_type, b, e);
    }
    return MXP_OK;
}

/* ---- stochastic rounding ----------------------------------------------- */

/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC'11), the generator of cuRAND and PyTorch: 10 rounds of a
 * multiply-xor bijection on a 128-bit counter under a 64-bit key. */
void mxp_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

mxp_status mxp_convert_sr(void *dst, mxp_dtype dst_type, const float *src, size_t n, uint64_t seed,
                          uint64_t offset) {
    if (dst_type != MXP_DTYPE_F16 && dst_type != MXP_DTYPE_BF16)
        return MXP_FAIL(MXP_ERR_DTYPE, "mxp_convert_sr: destination must be f16 or bf16, got %s",
                        mxp_dtype_name(dst_type));
    if (n == 0) return MXP_OK;
    if (!dst || !src) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_convert_sr: NULL buffer");
    if (n > SIZE_MAX / 4) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_convert_sr: n too large");
    if (mxp_overlaps(dst, n * 2, src, n * 4))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_convert_sr: dst and src overlap");
    const mxp_format *f = mxp_format_of(dst_type);
    uint16_t *d = dst;
    const int nt = n >= PARALLEL_MIN ? mxp_num_threads() : 1;
    const size_t per = (n + (size_t)nt - 1) / (size_t)nt;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static))
    for (int t = 0; t < nt; t++) {
        const size_t b = (size_t)t * per, e = MXP_MIN(n, b + per);
        uint32_t r[4];
        for (size_t i = b; i < e; i++) {
            const uint64_t w = offset + i; /* this element's word of the stream */
            if (i == b || w % 4 == 0) mxp_philox4x32(seed, w / 4, r);
            d[i] = (uint16_t)mxp_encode_impl(f, src[i], 1, r[w % 4]);
        }
    }
    return MXP_OK;
}
