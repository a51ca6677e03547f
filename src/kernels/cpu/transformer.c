/*
 * transformer.c - the kernels of a GPT block that are not a plain GEMM or element-wise op:
 * layernorm forward and backward, causal multi-head self-attention forward and backward, and
 * the token + position embedding. Entry points (checks, ISA dispatch, threads), the scalar
 * reference rows and the attention driver live here; transformer_avx512.c has the SIMD rows.
 * There is no fused flash-attention kernel (the probabilities are materialised, as the
 * backward reads them) and no dropout on the probabilities.
 *
 * Attention runs per (b, h) pair on one thread (pairs are split over the threads, so the
 * bits do not depend on the thread count), its products on the GEMM microkernels (see the
 * attention section). Forward goes a panel of MR query rows at a time: scores, softmax,
 * then the panel's output rows. Backward: dP, dS and dq a panel at a time, then dk and dv
 * from the pair's whole dS. Every output is accumulated in fp32 and rounded once.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../numerics/numerics_impl.h"
#include "eltwise_impl.h"
#include "gemm_impl.h"
#include "transformer_impl.h"

#define F32 MXP_DTYPE_F32
#define F16 MXP_DTYPE_F16
#define BF16 MXP_DTYPE_BF16

enum {
    /* layernorm: a thread gets at least this many elements */
    LN_GRAIN = 1 << 14,
    /* layernorm backward: rows in at most LN_CHUNKS chunks of at least LN_CHUNK_MIN rows,
     * one fp32 partial of dw and db per chunk (a function of rows alone) */
    LN_CHUNKS = 64,
    LN_CHUNK_MIN = 16
};

/* ---- scalar reference rows ------------------------------------------------------------ */

MXP_INLINE void ln_fwd_ref(mxp_dtype dt, void *y, float *mean, float *rstd, const void *x,
                           const void *w, const void *b, size_t n, float eps) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += mxp_load_f32(dt, x, i);
    const float m = s / (float)n;
    float v = 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float d = mxp_load_f32(dt, x, i) - m;
        v += d * d;
    }
    const float r = 1.0f / sqrtf(v / (float)n + eps);
    for (size_t i = 0; i < n; i++)
        mxp_store_f32(dt, y, i,
                      (mxp_load_f32(dt, x, i) - m) * r * mxp_load_f32(dt, w, i) +
                          mxp_load_f32(dt, b, i));
    *mean = m;
    *rstd = r;
}

MXP_INLINE void ln_bwd_ref(mxp_dtype dt, void *dx, float *dw_acc, float *db_acc, const void *dy,
                           const void *x, const void *w, float mean, float rstd, size_t n) {
    float sg = 0.0f, sgx = 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float g = mxp_load_f32(dt, dy, i) * mxp_load_f32(dt, w, i);
        sg += g;
        sgx += g * ((mxp_load_f32(dt, x, i) - mean) * rstd);
    }
    const float a = sg / (float)n, c = sgx / (float)n;
    for (size_t i = 0; i < n; i++) {
        const float d = mxp_load_f32(dt, dy, i);
        const float xh = (mxp_load_f32(dt, x, i) - mean) * rstd;
        mxp_store_f32(dt, dx, i, rstd * (d * mxp_load_f32(dt, w, i) - a - xh * c));
        if (dw_acc) {
            dw_acc[i] += d * xh;
            db_acc[i] += d;
        }
    }
}

MXP_INLINE void dsoftmax_ref(mxp_dtype dt, void *ds, const float *dp, const void *p, size_t n,
                             size_t ntot, float scale) {
    float d = 0.0f;
    for (size_t j = 0; j < n; j++) d += dp[j] * mxp_load_f32(dt, p, j);
    for (size_t j = 0; j < n; j++) {
        const float pj = mxp_load_f32(dt, p, j);
        mxp_store_f32(dt, ds, j, pj * (dp[j] - d) * scale);
    }
    memset((char *)ds + n * mxp_dtype_size(dt), 0, (ntot - n) * mxp_dtype_size(dt));
}

/* One instance per dtype; the names are spelled out in full so they can be found. */
#define LN_FWD_REF(name, dt)                                                                       \
    static void name(void *y, float *m, float *r, const void *x, const void *w, const void *b,     \
                     size_t n, float eps) {                                                        \
        ln_fwd_ref(dt, y, m, r, x, w, b, n, eps);                                                  \
    }
#define LN_BWD_REF(name, dt)                                                                       \
    static void name(void *dx, float *dw, float *db, const void *dy, const void *x, const void *w, \
                     float m, float r, size_t n) {                                                 \
        ln_bwd_ref(dt, dx, dw, db, dy, x, w, m, r, n);                                             \
    }
#define DSOFTMAX_REF(name, dt)                                                                     \
    static void name(void *ds, const float *dp, const void *p, size_t n, size_t ntot, float s) {   \
        dsoftmax_ref(dt, ds, dp, p, n, ntot, s);                                                   \
    }

LN_FWD_REF(layernorm_fwd_f32_ref, F32)
LN_FWD_REF(layernorm_fwd_f16_ref, F16)
LN_FWD_REF(layernorm_fwd_bf16_ref, BF16)
LN_BWD_REF(layernorm_bwd_f32_ref, F32)
LN_BWD_REF(layernorm_bwd_f16_ref, F16)
LN_BWD_REF(layernorm_bwd_bf16_ref, BF16)
DSOFTMAX_REF(dsoftmax_f32_ref, F32)
DSOFTMAX_REF(dsoftmax_f16_ref, F16)
DSOFTMAX_REF(dsoftmax_bf16_ref, BF16)

/* ---- dispatch ------------------------------------------------------------------------- */

static mxp_tf_table tf_ref, tf_avx512;
static pthread_once_t tf_once = PTHREAD_ONCE_INIT;

static void tf_build(void) {
    const mxp_tf_table r = {{layernorm_fwd_f32_ref, layernorm_fwd_f16_ref, layernorm_fwd_bf16_ref},
                            {layernorm_bwd_f32_ref, layernorm_bwd_f16_ref, layernorm_bwd_bf16_ref},
                            {dsoftmax_f32_ref, dsoftmax_f16_ref, dsoftmax_bf16_ref}};
    tf_ref = r;
    tf_avx512 = r;
#ifdef MIXPREC_X86_KERNELS
    mxp_tf_register_avx512(&tf_avx512);
#endif
}

static const mxp_tf_table *tf_table(void) {
    pthread_once(&tf_once, tf_build);
    return mxp_isa_active() >= MXP_ISA_AVX512 ? &tf_avx512 : &tf_ref;
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static mxp_status check_dtype(const char *fn, mxp_dtype dt) {
    if (dt != F32 && dt != BF16 && dt != F16)
        return MXP_FAIL(MXP_ERR_DTYPE, "%s: dtype %d is not f32, bf16 or f16", fn, (int)dt);
    return MXP_OK;
}

/* ---- layernorm ------------------------------------------------------------------------ */

static mxp_status ln_check(const char *fn, mxp_dtype dt, size_t rows, size_t cols) {
    MXP_TRY(check_dtype(fn, dt));
    if (cols && rows > SIZE_MAX / 4 / cols)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %zu x %zu elements is too many", fn, rows, cols);
    return MXP_OK;
}

mxp_status mxp_layernorm_forward(void *y, float *mean, float *rstd, const void *x, const void *w,
                                 const void *b, mxp_dtype dt, size_t rows, size_t cols, float eps) {
    static const char fn[] = "mxp_layernorm_forward";
    MXP_TRY(ln_check(fn, dt, rows, cols));
    if (!(eps > 0.0f)) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: eps = %g <= 0", fn, (double)eps);
    const size_t n = rows * cols, es = mxp_dtype_size(dt);
    if (n == 0) return MXP_OK;
    if (!y || !x || !w || !b)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer with %zu x %zu elements", fn, rows,
                        cols);
    if (mxp_overlaps(y, n * es, x, n * es))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: y overlaps x", fn);
    const mxp_ln_fwd_row_fn f = tf_table()->ln_fwd[dt];
    const int nt = (int)MXP_MIN((size_t)mxp_ew_threads(n, LN_GRAIN), rows);
    (void)nt;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t i = 0; i < (int64_t)rows; i++) {
        float m, r;
        f((char *)y + (size_t)i * cols * es, &m, &r, (const char *)x + (size_t)i * cols * es, w, b,
          cols, eps);
        if (mean) mean[i] = m;
        if (rstd) rstd[i] = r;
    }
    return MXP_OK;
}

mxp_status mxp_layernorm_backward(void *dx, float *dw, float *db, const void *dy, const void *x,
                                  const float *mean, const float *rstd, const void *w, mxp_dtype dt,
                                  size_t rows, size_t cols) {
    static const char fn[] = "mxp_layernorm_backward";
    MXP_TRY(ln_check(fn, dt, rows, cols));
    const size_t n = rows * cols, es = mxp_dtype_size(dt);
    if (n == 0) return MXP_OK;
    if (!dx || !dy || !x || !mean || !rstd || !w)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer with %zu x %zu elements", fn, rows,
                        cols);
    const mxp_ln_bwd_row_fn f = tf_table()->ln_bwd[dt];
    /* chunks of rows, fixed by rows alone; chunk c's fp32 partials (dw, db) at part + 2 c cols */
    size_t nchunk = MXP_MIN((size_t)LN_CHUNKS, (rows + LN_CHUNK_MIN - 1) / LN_CHUNK_MIN);
    const size_t crow = (rows + nchunk - 1) / nchunk;
    nchunk = (rows + crow - 1) / crow;
    const int want = dw || db;
    float *part = want ? mxp_alloc_array(nchunk * 2 * cols, sizeof(float)) : NULL;
    if (want && !part) return MXP_FAIL(MXP_ERR_NOMEM, "%s: %zu partial sums", fn, nchunk * 2);
    const int nt = (int)MXP_MIN((size_t)mxp_ew_threads(n, LN_GRAIN), nchunk);
    (void)nt;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t c = 0; c < (int64_t)nchunk; c++) {
        float *pw = want ? part + (size_t)c * 2 * cols : NULL, *pb = want ? pw + cols : NULL;
        if (want) memset(pw, 0, 2 * cols * sizeof(float));
        const size_t r1 = MXP_MIN(rows, ((size_t)c + 1) * crow);
        for (size_t r = (size_t)c * crow; r < r1; r++)
            f((char *)dx + r * cols * es, pw, pb, (const char *)dy + r * cols * es,
              (const char *)x + r * cols * es, w, mean[r], rstd[r], cols);
    }
    if (want) {
        for (size_t c = 1; c < nchunk; c++) /* in chunk order */
            for (size_t j = 0; j < 2 * cols; j++) part[j] += part[c * 2 * cols + j];
        for (size_t j = 0; j < cols; j++) {
            if (dw) dw[j] += part[j];
            if (db) db[j] += part[cols + j];
        }
        mxp_free(part);
    }
    return MXP_OK;
}

/* ---- attention ------------------------------------------------------------------------ */
/* The six products of a (b, h) pair run on the GEMM microkernels of gemm_impl.h directly
 * (mxp_gemm would repack the shared operand for every row block and cannot skip tiles): each
 * B operand is packed once per pair, each A micro-panel (MR rows) once per product, and a
 * product touches only what the causal mask lets through:
 *   CAUSAL_TILES  S = q k^T, dP = dout v^T (k over hd): tiles wholly above the diagonal
 *                 are skipped (keys past the panel's last query);
 *   K_HEAD        out = P v, dq = dS k (k over keys): panel rows i0 .. i1 sum keys [0, i1);
 *   K_TAIL        dk = dS^T q, dv = P^T dout (k over queries): key rows j0 .. j1 sum
 *                 queries [j0, T) (from an even j0, for the bf16 pairs; P and dS are 0 above
 *                 the diagonal, so the extra terms add zeros).
 * The k range of a tile never depends on the thread count; tile results are fp32 and rounded
 * once to dt. */

typedef enum att_mode { CAUSAL_TILES, K_HEAD, K_TAIL } att_mode;

static gemm_table att_tables[MXP_ISA_COUNT];
static pthread_once_t att_tables_once = PTHREAD_ONCE_INIT;

static void att_tables_build(void) {
    for (int i = 0; i < MXP_ISA_COUNT; i++) {
        mxp_gemm_register_ref(&att_tables[i]);
#ifdef MIXPREC_X86_KERNELS
        if (i >= MXP_ISA_AVX2) mxp_gemm_register_avx2(&att_tables[i]);
        if (i >= MXP_ISA_AVX512) mxp_gemm_register_avx512(&att_tables[i]);
        if (i >= MXP_ISA_AVX512BF16) mxp_gemm_register_avx512bf16(&att_tables[i]);
#endif
    }
}

enum { TILE_MAX = 64 * 64 }; /* fp32 elements of the largest MR x NR register block */

typedef struct attn_geom {
    mxp_dtype dt;
    size_t es;
    size_t B, T, C, NH, hd;
    float scale; /* 1 / sqrt(hd) */
    const gemm_kernel *kr;
    const mxp_cvt_table *cvt;
    mxp_softmax_row_fn softmax; /* fp32 -> fp32 row of the element-wise table */
    mxp_dsoftmax_row_fn dsoftmax;
} attn_geom;

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* bytes of m rows (whole panels of `rows`) by k, packed for kr */
static size_t packed_bytes(const gemm_kernel *kr, size_t m, size_t k, int rows) {
    const size_t mp = round_up(m, (size_t)rows);
    return kr->pack == PACK_F32 ? mp * k * 4 : mp * ((k + 1) / 2) * 4;
}

/* pack m rows by k of a strided source (element (r, k) at src[r rs + k cs], dtype dt) */
static void att_pack(const attn_geom *a, void *dst, const void *src, size_t rs, size_t cs, size_t m,
                     size_t k, int rows) {
    if (a->kr->pack_rows)
        a->kr->pack_rows(dst, src, a->dt, rs, cs, m, k, rows);
    else
        mxp_gemm_pack_ref(a->kr->pack, dst, src, a->dt, rs, cs, m, k, rows);
}

/* fp32 rows (m, n) of tile (ld NR) rounded once into dst (ld ldd elements) of dtype dt */
static void att_store(const attn_geom *a, char *dst, size_t ldd, const float *tile, size_t ld,
                      size_t m, size_t n) {
    for (size_t i = 0; i < m; i++) {
        char *d = dst + i * ldd * a->es;
        const float *t = tile + i * ld;
        if (a->dt == F32)
            memcpy(d, t, n * sizeof(float));
        else
            (a->dt == BF16 ? a->cvt->f32_to_bf16 : a->cvt->f32_to_f16)(d, t, n);
    }
}

/* One product of a pair: C (M, N) = alpha op(A) (M, K) op(B) (K, N) under `mode`, B already
 * packed (bp: all of K by N in NR panels). op(A)(i, k) = A[i ars + k acs] in dt; apack has
 * room for one MR x K panel. C is fp32 (c32, ld ldc) or, when c32 is NULL, dt (cdt, ld ldc).
 * For CAUSAL_TILES only rows [i0, i1) are computed (the caller's panel). */
static void att_product(const attn_geom *a, att_mode mode, size_t i0, size_t i1, size_t N, size_t K,
                        float alpha, const char *A, size_t ars, size_t acs, const char *bp,
                        void *apack, float *c32, char *cdt, size_t ldc) {
    const gemm_kernel *kr = a->kr;
    const size_t MR = (size_t)kr->mr, NR = (size_t)kr->nr, es = a->es;
    const int pairs = kr->pack == PACK_BF16;
    float tile[TILE_MAX];
    for (size_t p0 = i0; p0 < i1; p0 += MR) {
        const size_t m = MXP_MIN(MR, i1 - p0);
        size_t k0 = 0, k1 = K;
        if (mode == K_HEAD) k1 = MXP_MIN(K, p0 + m);
        if (mode == K_TAIL) k0 = p0 & ~(size_t)1;
        att_pack(a, apack, A + (p0 * ars + k0 * acs) * es, ars, acs, m, k1 - k0, kr->mr);
        const size_t kp = pairs ? (k1 - k0 + 1) / 2 : k1 - k0;
        const size_t koff = pairs ? k0 / 2 * NR * 4 : k0 * NR * 4; /* bytes into a B panel */
        for (size_t j0 = 0; j0 < N; j0 += NR) {
            if (mode == CAUSAL_TILES && j0 >= p0 + m) break; /* keys past the last query */
            const size_t n = MXP_MIN(NR, N - j0);
            const char *b = bp + packed_bytes(kr, j0, K, kr->nr) + koff;
            if (c32 || a->dt == F32) { /* an fp32 C takes the tile straight */
                float *c = c32 ? c32 + p0 * ldc + j0 : (float *)cdt + p0 * ldc + j0;
                kr->ukr(kp, apack, b, c, ldc, m, n, alpha, 0.0f);
            } else {
                kr->ukr(kp, apack, b, tile, NR, m, n, alpha, 0.0f);
                att_store(a, cdt + (p0 * ldc + j0) * es, ldc, tile, NR, m, n);
            }
        }
    }
}

static mxp_status attn_check(const char *fn, attn_geom *a, mxp_dtype dt, int64_t B, int64_t T,
                             int64_t C, int64_t NH, int ok_ptrs) {
    MXP_TRY(check_dtype(fn, dt));
    const int64_t big = (int64_t)1 << 31;
    if (B < 1 || T < 1 || C < 1 || NH < 1 || B > big || T > big || C > big || NH > big)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: sizes B=%lld T=%lld C=%lld NH=%lld must be >= 1",
                        fn, (long long)B, (long long)T, (long long)C, (long long)NH);
    if (C % NH != 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: C=%lld is not a multiple of NH=%lld", fn,
                        (long long)C, (long long)NH);
    if ((double)B * (double)NH * (double)T * (double)T > 0x1p46 ||
        (double)B * (double)T * (double)C * 3.0 > 0x1p46)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: B=%lld T=%lld C=%lld is too large", fn,
                        (long long)B, (long long)T, (long long)C);
    if (!ok_ptrs) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer", fn);
    pthread_once(&att_tables_once, att_tables_build);
    const mxp_isa isa = mxp_isa_active();
    const gemm_table *gt = &att_tables[isa];
    a->dt = dt;
    a->es = mxp_dtype_size(dt);
    a->B = (size_t)B, a->T = (size_t)T, a->C = (size_t)C, a->NH = (size_t)NH;
    a->hd = (size_t)(C / NH);
    a->scale = (float)(1.0 / sqrt((double)a->hd));
    a->kr = dt == BF16 ? &gt->bf16 : &gt->f32;
    a->cvt = mxp_cvt_table_for(isa);
    a->softmax = mxp_ew_table_for(isa)->softmax_row[F32][F32];
    a->dsoftmax = tf_table()->dsoftmax[dt];
    if (a->kr->mr * a->kr->nr > TILE_MAX)
        return MXP_FAIL(MXP_ERR_BACKEND, "%s: GEMM register block %dx%d too large", fn, a->kr->mr,
                        a->kr->nr);
    return MXP_OK;
}

/* Scratch of one thread, carved from one block: each piece 64-byte aligned. */
static char *carve(char **p, size_t bytes) {
    char *r = *p;
    *p += round_up(bytes, 64);
    return r;
}

/* bytes of a B operand of K by N packed in NR panels */
static size_t bpack_bytes(const attn_geom *a, size_t N, size_t K) {
    return round_up(packed_bytes(a->kr, N, K, a->kr->nr), 64);
}

/* forward scratch per thread: kT | v packed, an A panel, S rows (MR, T) fp32, P rows (MR, T) */
static size_t fwd_scratch(const attn_geom *a) {
    const size_t T = a->T, MR = (size_t)a->kr->mr, kmax = MXP_MAX(T, a->hd);
    return bpack_bytes(a, T, a->hd) + bpack_bytes(a, a->hd, T) +
           round_up(packed_bytes(a->kr, MR, kmax, a->kr->mr), 64) + round_up(MR * T * 4, 64) +
           round_up(MR * T * a->es, 64);
}

static void attn_fwd_pair(const attn_geom *a, void *out, void *att, const void *qkv, size_t pair,
                          char *scr) {
    const mxp_dtype dt = a->dt;
    const size_t es = a->es, T = a->T, C = a->C, hd = a->hd, ld3 = 3 * C;
    const size_t MR = (size_t)a->kr->mr;
    const size_t b = pair / a->NH, h = pair % a->NH;
    const char *q = (const char *)qkv + (b * T * ld3 + h * hd) * es;
    const char *k = q + C * es, *v = q + 2 * C * es;
    char *o = (char *)out + (b * T * C + h * hd) * es;
    char *kt = carve(&scr, bpack_bytes(a, T, hd)); /* k^T: (hd, T) in NR panels of keys */
    char *vp = carve(&scr, bpack_bytes(a, hd, T)); /* v: (T, hd) */
    char *ap = carve(&scr, packed_bytes(a->kr, MR, MXP_MAX(T, hd), a->kr->mr));
    float *s = (float *)carve(&scr, MR * T * 4); /* (MR, T) scores of one panel */
    char *pscr = carve(&scr, MR * T * es);       /* (MR, T) probabilities when att is NULL */
    att_pack(a, kt, k, ld3, 1, T, hd, a->kr->nr);
    att_pack(a, vp, v, 1, ld3, hd, T, a->kr->nr);
    for (size_t p0 = 0; p0 < T; p0 += MR) {
        const size_t m = MXP_MIN(MR, T - p0);
        /* S rows p0 .. p0 + m = scale q k^T (s holds them at row offset 0: c32 - p0 T) */
        att_product(a, CAUSAL_TILES, p0, p0 + m, T, hd, a->scale, q, ld3, 1, kt, ap, s - p0 * T,
                    NULL, T);
        char *P = att ? (char *)att + (pair * T + p0) * T * es : pscr;
        for (size_t i = 0; i < m; i++) { /* row p0 + i sees keys 0 .. p0 + i */
            const size_t nv = p0 + i + 1;
            char *prow = P + i * T * es;
            /* fp32 softmax in place, then one rounding to dt: the bits of the fp32 -> dt row
             * kernel, which would evaluate every exp twice to avoid a double rounding */
            float *srow = s + i * T;
            a->softmax(srow, srow, nv, 0);
            att_store(a, prow, T, srow, T, 1, nv);
            memset(prow + nv * es, 0, (T - nv) * es);
        }
        /* out rows = P v over keys [0, p0 + m) */
        att_product(a, K_HEAD, p0, p0 + m, hd, T, 1.0f, P - p0 * T * es, T, 1, vp, ap, NULL, o, C);
    }
    (void)dt;
}

/* backward scratch per thread: v^T, k, q, dout packed, an A panel, dP rows (MR, T) fp32,
 * dS (T, T) in dt */
static size_t bwd_scratch(const attn_geom *a) {
    const size_t T = a->T, MR = (size_t)a->kr->mr, kmax = MXP_MAX(T, a->hd);
    return bpack_bytes(a, T, a->hd) + 3 * bpack_bytes(a, a->hd, T) +
           round_up(packed_bytes(a->kr, MR, kmax, a->kr->mr), 64) + round_up(MR * T * 4, 64) +
           round_up(T * T * a->es, 64);
}

static void attn_bwd_pair(const attn_geom *a, void *dqkv, const void *dout, const void *qkv,
                          const void *att, size_t pair, char *scr) {
    const size_t es = a->es, T = a->T, C = a->C, hd = a->hd, ld3 = 3 * C;
    const size_t MR = (size_t)a->kr->mr;
    const size_t b = pair / a->NH, h = pair % a->NH;
    const char *q = (const char *)qkv + (b * T * ld3 + h * hd) * es;
    const char *k = q + C * es, *v = q + 2 * C * es;
    char *dq = (char *)dqkv + (b * T * ld3 + h * hd) * es;
    char *dk = dq + C * es, *dv = dq + 2 * C * es;
    const char *dO = (const char *)dout + (b * T * C + h * hd) * es;
    const char *P = (const char *)att + pair * T * T * es;
    char *vt = carve(&scr, bpack_bytes(a, T, hd)); /* v^T: (hd, T) */
    char *kp = carve(&scr, bpack_bytes(a, hd, T)); /* k: (T, hd) */
    char *qp = carve(&scr, bpack_bytes(a, hd, T)); /* q: (T, hd) */
    char *op = carve(&scr, bpack_bytes(a, hd, T)); /* dout: (T, hd) */
    char *ap = carve(&scr, packed_bytes(a->kr, MR, MXP_MAX(T, hd), a->kr->mr));
    float *dp = (float *)carve(&scr, MR * T * 4); /* (MR, T) dP of one panel */
    char *ds = carve(&scr, T * T * es);           /* (T, T) dS, 0 above the diagonal */
    att_pack(a, vt, v, ld3, 1, T, hd, a->kr->nr);
    att_pack(a, kp, k, 1, ld3, hd, T, a->kr->nr);
    att_pack(a, qp, q, 1, ld3, hd, T, a->kr->nr);
    att_pack(a, op, dO, 1, C, hd, T, a->kr->nr);
    for (size_t p0 = 0; p0 < T; p0 += MR) {
        const size_t m = MXP_MIN(MR, T - p0);
        /* dP rows = dout v^T */
        att_product(a, CAUSAL_TILES, p0, p0 + m, T, hd, 1.0f, dO, C, 1, vt, ap, dp - p0 * T, NULL,
                    T);
        for (size_t i = 0; i < m; i++)
            a->dsoftmax(ds + (p0 + i) * T * es, dp + i * T, P + (p0 + i) * T * es, p0 + i + 1, T,
                        a->scale);
        /* dq rows = dS k over keys [0, p0 + m) */
        att_product(a, K_HEAD, p0, p0 + m, hd, T, 1.0f, ds, T, 1, kp, ap, NULL, dq, ld3);
    }
    /* dk = dS^T q and dv = P^T dout, key rows j0 .. j0 + MR over queries [j0, T) */
    att_product(a, K_TAIL, 0, T, hd, T, 1.0f, ds, 1, T, qp, ap, NULL, dk, ld3);
    att_product(a, K_TAIL, 0, T, hd, T, 1.0f, P, 1, T, op, ap, NULL, dv, ld3);
}

/* One call's buffers: forward writes dst = out (B, T, C) and att_out = P (or NULL);
 * backward writes dst = dqkv (B, T, 3C) from dout and the forward's att. */
typedef struct attn_io {
    void *dst, *att_out;
    const void *qkv, *dout, *att;
} attn_io;

/* Every (b, h) pair on one thread with its own `per` bytes of one scratch block, in a static
 * schedule: which thread runs a pair changes nothing in its bits. */
static mxp_status run_pairs(const char *fn, const attn_geom *a, size_t per, int backward,
                            const attn_io *io) {
    const size_t pairs = a->B * a->NH;
    const int nt = (int)MXP_MIN((size_t)mxp_num_threads(), pairs);
    char *block = mxp_alloc_array((size_t)nt * per + 64, 1);
    if (!block) return MXP_FAIL(MXP_ERR_NOMEM, "%s: %d x %zu bytes of scratch", fn, nt, per);
    char *scr = (char *)round_up((size_t)(uintptr_t)block, 64);
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t p = 0; p < (int64_t)pairs; p++) {
        char *mine = scr + (size_t)thread_id() * per;
        if (backward)
            attn_bwd_pair(a, io->dst, io->dout, io->qkv, io->att, (size_t)p, mine);
        else
            attn_fwd_pair(a, io->dst, io->att_out, io->qkv, (size_t)p, mine);
    }
    mxp_free(block);
    return MXP_OK;
}

mxp_status mxp_attention_forward(void *out, void *att, const void *qkv, mxp_dtype dt, int64_t B,
                                 int64_t T, int64_t C, int64_t NH) {
    static const char fn[] = "mxp_attention_forward";
    attn_geom a;
    MXP_TRY(attn_check(fn, &a, dt, B, T, C, NH, out && qkv));
    const attn_io io = {.dst = out, .att_out = att, .qkv = qkv};
    return run_pairs(fn, &a, fwd_scratch(&a), 0, &io);
}

mxp_status mxp_attention_backward(void *dqkv, const void *dout, const void *qkv, const void *att,
                                  mxp_dtype dt, int64_t B, int64_t T, int64_t C, int64_t NH) {
    static const char fn[] = "mxp_attention_backward";
    attn_geom a;
    MXP_TRY(attn_check(fn, &a, dt, B, T, C, NH, dqkv && dout && qkv && att));
    const attn_io io = {.dst = dqkv, .qkv = qkv, .dout = dout, .att = att};
    return run_pairs(fn, &a, bwd_scratch(&a), 1, &io);
}

/* ---- embedding ------------------------------------------------------------------------ */

static mxp_status emb_check(const char *fn, mxp_dtype dt, int64_t B, int64_t T, int64_t C,
                            int64_t V) {
    MXP_TRY(check_dtype(fn, dt));
    const int64_t big = (int64_t)1 << 40;
    if (B < 0 || T < 0 || C < 0 || V < 1 || B > big || T > big || C > big || V > big ||
        (double)B * (double)T * (double)C > 0x1p46 || (double)V * (double)C > 0x1p46)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: bad sizes B=%lld T=%lld C=%lld V=%lld", fn,
                        (long long)B, (long long)T, (long long)C, (long long)V);
    return MXP_OK;
}

mxp_status mxp_embedding_forward(void *x, const int32_t *tokens, const void *wte, const void *wpe,
                                 mxp_dtype dt, int64_t B, int64_t T, int64_t C, int64_t V) {
    static const char fn[] = "mxp_embedding_forward";
    MXP_TRY(emb_check(fn, dt, B, T, C, V));
    const size_t rows = (size_t)(B * T), cols = (size_t)C, es = mxp_dtype_size(dt);
    if (rows == 0 || cols == 0) return MXP_OK;
    if (!x || !tokens || !wte || !wpe) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer", fn);
    for (size_t r = 0; r < rows; r++)
        if (tokens[r] < 0 || tokens[r] >= V)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: token %ld at (b=%zu, t=%zu) is outside [0, %lld)", fn,
                            (long)tokens[r], r / (size_t)T, r % (size_t)T, (long long)V);
    const mxp_ew_binary_fn add = mxp_ew_table_for(mxp_isa_active())->add[dt];
    const int nt = (int)MXP_MIN((size_t)mxp_ew_threads(rows * cols, MXP_EW_GRAIN), rows);
    (void)nt;
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t r = 0; r < (int64_t)rows; r++)
        add((char *)x + (size_t)r * cols * es, (const char *)wte + (size_t)tokens[r] * cols * es,
            (const char *)wpe + (size_t)(r % T) * cols * es, cols);
    return MXP_OK;
}

/* dst (n) fp32 += src (n) in dt */
MXP_INLINE void acc_row(mxp_dtype dt, float *dst, const void *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] += mxp_load_f32(dt, src, i);
}

static void acc_row_dt(mxp_dtype dt, float *dst, const void *src, size_t n) {
    switch (dt) {
    case F16: acc_row(F16, dst, src, n); break;
    case BF16: acc_row(BF16, dst, src, n); break;
    default: acc_row(F32, dst, src, n); break;
    }
}

mxp_status mxp_embedding_backward(float *dwte, float *dwpe, const void *dx, const int32_t *tokens,
                                  mxp_dtype dt, int64_t B, int64_t T, int64_t C, int64_t V) {
    static const char fn[] = "mxp_embedding_backward";
    MXP_TRY(emb_check(fn, dt, B, T, C, V));
    const size_t rows = (size_t)(B * T), cols = (size_t)C, es = mxp_dtype_size(dt);
    if (rows == 0 || cols == 0 || (!dwte && !dwpe)) return MXP_OK;
    if (!dx || (dwte && !tokens)) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: NULL buffer", fn);
    /* threads own column slices (whole cache lines) and walk every row in order, so each
     * sum runs in row order whatever the thread count */
    const size_t nslice = (cols + 15) / 16;
    const int nt = (int)MXP_MIN((size_t)mxp_ew_threads(rows * cols, MXP_EW_GRAIN), nslice);
    (void)nt;
    MXP_OMP(omp parallel num_threads(nt) if (nt > 1)) {
#ifdef _OPENMP
        const size_t tid = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
#else
        const size_t tid = 0, nth = 1;
#endif
        const size_t c0 = MXP_MIN(cols, nslice * tid / nth * 16);
        const size_t c1 = MXP_MIN(cols, nslice * (tid + 1) / nth * 16);
        if (c0 < c1) {
            for (size_t r = 0; dwte && r < rows; r++)
                acc_row_dt(dt, dwte + (size_t)tokens[r] * cols + c0,
                           (const char *)dx + (r * cols + c0) * es, c1 - c0);
            for (size_t t = 0; dwpe && t < (size_t)T; t++)
                for (size_t b = 0; b < (size_t)B; b++)
                    acc_row_dt(dt, dwpe + t * cols + c0,
                               (const char *)dx + ((b * (size_t)T + t) * cols + c0) * es, c1 - c0);
        }
    }
    return MXP_OK;
}
