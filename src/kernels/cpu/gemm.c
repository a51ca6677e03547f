/*
 * gemm.c - C = act(alpha op(A) op(B) + beta C + bias), the BLIS way: cache
 * blocking and packing in portable C around one small microkernel per ISA
 * (gemm_<isa>.c). Accumulation is always fp32; a 16-bit C is rounded once,
 * after the last k block. It does not pick tile sizes at run time beyond the
 * per-ISA table, and has no special path for tiny matrices.
 *
 * Loops (row-major; A is the broadcast operand, B the vector operand):
 *   ic (MC rows of A, block shared by all threads, L3)
 *    pc (KC of k)          pack A block; barrier
 *     jc (NC cols of B, this thread's columns)   pack B block (L2, private)
 *      ir (MR rows)          the A micro-panel stays in L1
 *       jr (NR cols)         B micro-panels stream from L2 -> microkernel
 *      last pc: epilogue on the MR x NC strip while it is in cache
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../numerics/numerics_impl.h"
#include "eltwise_impl.h"
#include "gemm_impl.h"

/* ---- portable reference microkernel ------------------------------------ */

enum { REF_MR = 4, REF_NR = 16 };

static void ukr_f32_ref(size_t kp, const void *a, const void *b, float *c, size_t ldc, size_t m,
                        size_t n, float alpha, float beta) {
    const float *ap = a, *bp = b;
    float acc[REF_MR][REF_NR] = {{0}};
    for (size_t k = 0; k < kp; k++)
        for (int i = 0; i < REF_MR; i++)
            for (int j = 0; j < REF_NR; j++) acc[i][j] += ap[k * REF_MR + i] * bp[k * REF_NR + j];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float v = alpha * acc[i][j];
            c[i * ldc + j] = beta == 0.0f ? v : v + beta * c[i * ldc + j];
        }
}

void mxp_gemm_register_ref(gemm_table *t) {
    const gemm_kernel k = {"gemm_f32_ref", PACK_F32, REF_MR, REF_NR, 256, 256, 256,
                           ukr_f32_ref,    NULL};
    t->f32 = k;
    t->bf16 = k;
}

/* ---- portable packing -------------------------------------------------- */

void mxp_gemm_pack_ref(pack_kind kind, void *dst, const void *src, mxp_dtype st, size_t rs,
                       size_t cs, size_t m, size_t kc, int rows) {
    const size_t R = (size_t)rows;
    for (size_t p0 = 0; p0 < m; p0 += R) {
        const size_t rr = MXP_MIN(R, m - p0);
        if (kind == PACK_F32) {
            float *d = (float *)dst + p0 * kc; /* panel p0/R starts at p0/R * R * kc */
            for (size_t k = 0; k < kc; k++)
                for (size_t r = 0; r < R; r++)
                    d[k * R + r] = r < rr ? mxp_load_f32(st, src, (p0 + r) * rs + k * cs) : 0.0f;
        } else {
            const size_t kcp = (kc + 1) / 2;
            const uint16_t *s = src;
            uint16_t *d = (uint16_t *)dst + p0 * kcp * 2;
            for (size_t kq = 0; kq < kcp; kq++)
                for (size_t r = 0; r < R; r++) {
                    const size_t k = 2 * kq;
                    const int in = r < rr;
                    d[(kq * R + r) * 2 + 0] = in ? s[(p0 + r) * rs + k * cs] : 0;
                    d[(kq * R + r) * 2 + 1] =
                        in && k + 1 < kc ? s[(p0 + r) * rs + (k + 1) * cs] : 0;
                }
        }
    }
}

static void pack(const gemm_kernel *kr, void *dst, const void *src, mxp_dtype st, size_t rs,
                 size_t cs, size_t m, size_t kc, int rows) {
    if (kr->pack_rows)
        kr->pack_rows(dst, src, st, rs, cs, m, kc, rows);
    else
        mxp_gemm_pack_ref(kr->pack, dst, src, st, rs, cs, m, kc, rows);
}

/* bytes of a packed block of m rows (rounded up to whole panels) by kc */
static size_t packed_bytes(const gemm_kernel *kr, size_t m, size_t kc, int rows) {
    const size_t mp = (m + (size_t)rows - 1) / (size_t)rows * (size_t)rows;
    return kr->pack == PACK_F32 ? mp * kc * 4 : mp * ((kc + 1) / 2) * 4;
}

/* ---- dispatch ---------------------------------------------------------- */

static gemm_table tables[MXP_ISA_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (int i = 0; i < MXP_ISA_COUNT; i++) {
        mxp_gemm_register_ref(&tables[i]);
#ifdef MIXPREC_X86_KERNELS
        if (i >= MXP_ISA_AVX2) mxp_gemm_register_avx2(&tables[i]);
        if (i >= MXP_ISA_AVX512) mxp_gemm_register_avx512(&tables[i]);
        if (i >= MXP_ISA_AVX512BF16) mxp_gemm_register_avx512bf16(&tables[i]);
#endif
    }
}

static const gemm_kernel *pick_kernel(mxp_dtype at, mxp_dtype bt) {
    pthread_once(&tables_once, build_tables);
    const gemm_table *t = &tables[mxp_isa_active()];
    return at == MXP_DTYPE_BF16 && bt == MXP_DTYPE_BF16 ? &t->bf16 : &t->f32;
}

const char *mxp_gemm_kernel_name(mxp_dtype a_type, mxp_dtype b_type) {
    static _Thread_local char buf[96];
    const gemm_kernel *k = pick_kernel(a_type, b_type);
    snprintf(buf, sizeof buf, "%s %dx%d%s", k->name, k->mr, k->nr,
             (a_type != MXP_DTYPE_F32 || b_type != MXP_DTYPE_F32) && k->pack == PACK_F32
                 ? " (inputs widened to fp32 while packing)"
                 : "");
    return buf;
}

/* ---- workspace kept between calls --------------------------------------- */

/* Packing buffers are reused across calls: a fresh multi-megabyte block per
 * call would cost page faults comparable to a small GEMM. A few cached
 * blocks, one per concurrent caller (the conv op runs one GEMM per thread
 * inside its own parallel loop); a caller that finds every slot busy
 * allocates its own. */
enum { WS_SLOTS = 16 };
static pthread_mutex_t ws_lock = PTHREAD_MUTEX_INITIALIZER;
typedef struct ws_slot {
    void *block;
    size_t size;
    int busy;
    /* the hook that made block: the user may install another one between
     * calls, and the block must go back to the one it came from */
    mxp_allocator allocator;
} ws_slot;
static ws_slot ws_slots[WS_SLOTS];

static void ws_drop(ws_slot *s) {
    if (s->block) s->allocator.free(s->block, s->allocator.user);
    s->block = NULL;
    s->size = 0;
}

/* a block of `size` bytes; *slot is its cache slot, or -1 when it is the
 * caller's own */
static void *ws_get(size_t size, int *slot) {
    pthread_mutex_lock(&ws_lock);
    int pick = -1;
    for (int i = 0; i < WS_SLOTS; i++) { /* a free slot already big enough, else any free one */
        if (ws_slots[i].busy) continue;
        if (ws_slots[i].size >= size) {
            pick = i;
            break;
        }
        if (pick < 0) pick = i;
    }
    if (pick >= 0) {
        ws_slot *s = &ws_slots[pick];
        if (s->size < size) {
            ws_drop(s);
            s->block = mxp_alloc(size);
            s->allocator = mxp_allocator_current();
            s->size = s->block ? size : 0;
        }
        if (s->block) {
            s->busy = 1;
            *slot = pick;
            pthread_mutex_unlock(&ws_lock);
            return s->block;
        }
    }
    pthread_mutex_unlock(&ws_lock);
    *slot = -1;
    return mxp_alloc(size);
}

static void ws_put(void *p, int slot) {
    if (slot < 0) {
        mxp_free(p);
        return;
    }
    pthread_mutex_lock(&ws_lock);
    ws_slots[slot].busy = 0;
    pthread_mutex_unlock(&ws_lock);
}

void mxp_gemm_release_workspace(void) {
    pthread_mutex_lock(&ws_lock);
    for (int i = 0; i < WS_SLOTS; i++)
        if (!ws_slots[i].busy) ws_drop(&ws_slots[i]);
    pthread_mutex_unlock(&ws_lock);
}

/* ---- epilogue ---------------------------------------------------------- */

typedef struct epi_ctx {
    void *c;
    mxp_dtype ct;
    size_t ldc;
    float beta;          /* applied here only for a 16-bit C */
    const float *bias32; /* bias widened to fp32, or NULL */
    mxp_bias_mode bias_mode;
    mxp_act act;
    void *pre;
    size_t ld_pre;
    const mxp_cvt_table *cvt;
    const mxp_ew_table *ew; /* the activations, fp32 in place */
} epi_ctx;

enum { EPI_STAGE = 1024 };

static void narrow_row(const mxp_cvt_table *cvt, mxp_dtype dt, void *dst, const float *src,
                       size_t n) {
    if (dt == MXP_DTYPE_F32)
        memcpy(dst, src, n * sizeof(float));
    else
        (dt == MXP_DTYPE_BF16 ? cvt->f32_to_bf16 : cvt->f32_to_f16)(dst, src, n);
}

/* z = acc rows [i0, i0+m) x cols [j0, j0+n) (fp32, already alpha AB, plus
 * beta C when C is fp32): add beta C (16-bit C), bias; keep pre_act; apply
 * act; store to C in its dtype. acc may be C itself when C is fp32. */
static void epilogue(const epi_ctx *e, float *acc, size_t ldacc, size_t i0, size_t m, size_t j0,
                     size_t n) {
    const size_t cs = mxp_dtype_size(e->ct);
    float tmp[EPI_STAGE];
    for (size_t i = 0; i < m; i++) {
        float *z = acc + i * ldacc;
        char *crow = (char *)e->c + ((i0 + i) * e->ldc + j0) * cs;
        for (size_t j0b = 0; j0b < n; j0b += EPI_STAGE) {
            const size_t nb = MXP_MIN((size_t)EPI_STAGE, n - j0b);
            float *zb = z + j0b;
            if (e->ct != MXP_DTYPE_F32 && e->beta != 0.0f) {
                (e->ct == MXP_DTYPE_BF16 ? e->cvt->bf16_to_f32
                                         : e->cvt->f16_to_f32)(tmp, crow + j0b * cs, nb);
                for (size_t j = 0; j < nb; j++) zb[j] += e->beta * tmp[j];
            }
            if (e->bias_mode == MXP_BIAS_COL) {
                const float *b = e->bias32 + j0 + j0b;
                for (size_t j = 0; j < nb; j++) zb[j] += b[j];
            } else if (e->bias_mode == MXP_BIAS_ROW) {
                const float b = e->bias32[i0 + i];
                for (size_t j = 0; j < nb; j++) zb[j] += b;
            }
            if (e->pre)
                narrow_row(e->cvt, e->ct, (char *)e->pre + ((i0 + i) * e->ld_pre + j0 + j0b) * cs,
                           zb, nb);
            if (e->act == MXP_ACT_RELU)
                e->ew->relu[MXP_DTYPE_F32](zb, zb, 0.0f, nb);
            else if (e->act == MXP_ACT_GELU_TANH)
                e->ew->gelu_tanh[MXP_DTYPE_F32](zb, zb, 0.0f, nb);
            if (e->ct != MXP_DTYPE_F32) narrow_row(e->cvt, e->ct, crow + j0b * cs, zb, nb);
        }
    }
}

/* ---- the driver -------------------------------------------------------- */

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

typedef struct gemm_plan {
    const gemm_kernel *kr;
    size_t M, N, K;
    float alpha, beta;
    const void *A, *B;
    mxp_dtype at, bt;
    size_t rsa, csa, rsb,
        csb;     /* op(A)(i,k) = A[i*rsa + k*csa]; B^T as rows: op(B)(k,j) = B[j*rsb + k*csb] */
    int c16;     /* C is 16-bit: accumulate in the fp32 workspace */
    float *cacc; /* (mc, N) fp32 accumulator when c16 */
    void *apack; /* shared A block */
    char *bpack; /* one B block per thread */
    size_t bpack_stride;
    size_t mc, kc, nc;
    float *c32; /* C when fp32 */
    size_t ldc;
    int need_epi;
    epi_ctx epi;
} gemm_plan;

/* Split nt threads into a grid: tn along N when each gets two or more NR
 * panels, the rest (tm) along M panels; tm * tn <= nt, and threads past the
 * grid only help pack A. A function of the shape and nt alone, so every
 * thread of a team computes the same grid. */
static void thread_grid(size_t M, size_t N, size_t MR, size_t NR, int nt, int *tm, int *tn) {
    *tn = 1;
    for (int d = nt; d >= 1; d--)
        if (nt % d == 0 && N >= (size_t)d * NR * 2) {
            *tn = d;
            break;
        }
    const size_t mpan = (M + MR - 1) / MR;
    *tm = nt / *tn;
    if ((size_t)*tm > mpan) *tm = (int)mpan;
}

static void run_thread(const gemm_plan *p, int tid, int nt) {
    const gemm_kernel *kr = p->kr;
    const size_t MR = (size_t)kr->mr, NR = (size_t)kr->nr;
    int tm, tn;
    thread_grid(p->M, p->N, MR, NR, nt, &tm, &tn);
    const int ti = tid / tn, tj = tid % tn;
    const int computes = tid < tm * tn;
    /* this thread's columns: NR-aligned contiguous share */
    const size_t npan = (p->N + NR - 1) / NR;
    const size_t j_beg = computes ? MXP_MIN(p->N, (npan * (size_t)tj / (size_t)tn) * NR) : 0;
    const size_t j_end = computes ? MXP_MIN(p->N, (npan * (size_t)(tj + 1) / (size_t)tn) * NR) : 0;
    void *bp = p->bpack + (size_t)tid * p->bpack_stride;
    /* even column blocks: 700 columns as 352 + 348, not 512 + 188 */
    const size_t ncols = j_end - j_beg, nblk = (ncols + p->nc - 1) / p->nc;
    const size_t ncb = nblk ? round_up((ncols + nblk - 1) / nblk, NR) : p->nc;

    for (size_t ic = 0; ic < p->M; ic += p->mc) {
        const size_t mc = MXP_MIN(p->mc, p->M - ic);
        const size_t mpan = (mc + MR - 1) / MR;
        /* this thread's A panels within the block: contiguous share */
        const size_t ir_beg = computes ? mpan * (size_t)ti / (size_t)tm * MR : 0;
        const size_t ir_end = computes ? mpan * (size_t)(ti + 1) / (size_t)tm * MR : 0;
        for (size_t pc = 0; pc < p->K; pc += p->kc) {
            const size_t kc = MXP_MIN(p->kc, p->K - pc);
            const size_t kp = kr->pack == PACK_F32 ? kc : (kc + 1) / 2;
            const int first = pc == 0, last = pc + kc >= p->K;
            /* everyone packs an equal share of the A block's panels */
            {
                const size_t a0 = mpan * (size_t)tid / (size_t)nt * MR;
                const size_t a1 = MXP_MIN(mc, mpan * (size_t)(tid + 1) / (size_t)nt * MR);
                if (a0 < a1)
                    pack(kr, (char *)p->apack + packed_bytes(kr, a0, kc, kr->mr),
                         (const char *)p->A +
                             ((ic + a0) * p->rsa + pc * p->csa) * mxp_dtype_size(p->at),
                         p->at, p->rsa, p->csa, a1 - a0, kc, kr->mr);
            }
            /* only inside our own team: an orphaned barrier on the one-thread path
             * would bind to the caller's parallel region and wait for its threads */
            if (nt > 1) {
                MXP_OMP(omp barrier)
            }
            for (size_t jc = j_beg; jc < j_end; jc += ncb) {
                const size_t nc = MXP_MIN(ncb, j_end - jc);
                pack(kr, bp,
                     (const char *)p->B + (jc * p->rsb + pc * p->csb) * mxp_dtype_size(p->bt),
                     p->bt, p->rsb, p->csb, nc, kc, kr->nr);
                for (size_t ir = ir_beg; ir < ir_end && ir < mc; ir += MR) {
                    const size_t mr = MXP_MIN(MR, mc - ir);
                    const char *ap = (const char *)p->apack + packed_bytes(kr, ir, kc, kr->mr);
                    float *cbase;
                    size_t ldcb;
                    float beta;
                    if (p->c16) {
                        cbase = p->cacc + ir * p->N + jc;
                        ldcb = p->N;
                        beta = first ? 0.0f : 1.0f;
                    } else {
                        cbase = p->c32 + (ic + ir) * p->ldc + jc;
                        ldcb = p->ldc;
                        beta = first ? p->beta : 1.0f;
                    }
                    for (size_t jr = 0; jr < nc; jr += NR) {
                        const size_t nr = MXP_MIN(NR, nc - jr);
                        kr->ukr(kp, ap, (const char *)bp + packed_bytes(kr, jr, kc, kr->nr),
                                cbase + jr, ldcb, mr, nr, p->alpha, beta);
                    }
                    if (last && p->need_epi) epilogue(&p->epi, cbase, ldcb, ic + ir, mr, jc, nc);
                }
            }
            if (nt > 1) {
                MXP_OMP(omp barrier)
            }
        }
    }
}

/* K == 0: C = act(beta C + bias), row by row through the same epilogue. */
static mxp_status gemm_k0(const gemm_plan *p) {
    float *row = mxp_alloc_array(p->N, sizeof(float));
    if (!row) return MXP_ERR_NOMEM;
    epi_ctx e = p->epi;
    e.beta = 0.0f; /* folded into row below */
    const size_t cs = mxp_dtype_size(e.ct);
    for (size_t i = 0; i < p->M; i++) {
        char *crow = (char *)e.c + i * e.ldc * cs;
        for (size_t j = 0; j < p->N; j++)
            row[j] = p->beta == 0.0f ? 0.0f : p->beta * mxp_load_f32(e.ct, crow, j);
        epilogue(&e, row, p->N, i, 1, 0, p->N); /* stores a 16-bit C itself */
        if (e.ct == MXP_DTYPE_F32) memcpy(crow, row, p->N * sizeof(float));
    }
    mxp_free(row);
    return MXP_OK;
}

/* Most of one fp32 accumulator block for a 16-bit C (mc x N floats). */
enum { CACC_BUDGET = 16 << 20 };
/* Below this many flops one thread beats waking the others. */
#define PARALLEL_FLOPS 4.0e6

mxp_status mxp_gemm(mxp_trans ta, mxp_trans tb, size_t M, size_t N, size_t K, float alpha,
                    const void *A, mxp_dtype a_type, size_t lda, const void *B, mxp_dtype b_type,
                    size_t ldb, float beta, void *C, mxp_dtype c_type, size_t ldc,
                    const mxp_gemm_epilogue *epi) {
    static const mxp_gemm_epilogue none = {0};
    if (!epi) epi = &none;
    if ((ta != MXP_NO_TRANS && ta != MXP_TRANS) || (tb != MXP_NO_TRANS && tb != MXP_TRANS))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_gemm: transpose flags must be MXP_NO_TRANS or MXP_TRANS");
    if (!mxp_dtype_size(a_type) || !mxp_dtype_size(b_type) || !mxp_dtype_size(c_type))
        return MXP_FAIL(MXP_ERR_DTYPE, "mxp_gemm: unknown dtype (A %d, B %d, C %d)", (int)a_type,
                        (int)b_type, (int)c_type);
    if ((unsigned)epi->act > MXP_ACT_GELU_TANH || (unsigned)epi->bias_mode > MXP_BIAS_ROW)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_gemm: unknown epilogue act %d or bias mode %d",
                        (int)epi->act, (int)epi->bias_mode);
    if (epi->bias_mode != MXP_BIAS_NONE && (!epi->bias || !mxp_dtype_size(epi->bias_dtype)))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_gemm: bias mode set but no bias or bad bias dtype");
    if (M == 0 || N == 0) return MXP_OK;
    if (!C) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_gemm: C is NULL");
    if (ldc < N) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_gemm: ldc=%zu < N=%zu", ldc, N);
    if (epi->pre_act && epi->ld_pre < N)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_gemm: ld_pre=%zu < N=%zu", epi->ld_pre, N);
    if (K > 0) {
        if (!A || !B) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_gemm: A or B is NULL");
        const size_t arow = ta == MXP_NO_TRANS ? K : M, brow = tb == MXP_NO_TRANS ? N : K;
        if (lda < arow)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_gemm: lda=%zu < %zu (op(A) is %zux%zu)", lda,
                            arow, M, K);
        if (ldb < brow)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_gemm: ldb=%zu < %zu (op(B) is %zux%zu)", ldb,
                            brow, K, N);
    }
    if (M > ((size_t)1 << 40) || N > ((size_t)1 << 40) || K > ((size_t)1 << 40))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_gemm: dimension too large (%zu, %zu, %zu)", M, N,
                        K);

    gemm_plan p;
    memset(&p, 0, sizeof p);
    p.kr = pick_kernel(a_type, b_type);
    const gemm_kernel *kr = p.kr;
    const size_t MR = (size_t)kr->mr, NR = (size_t)kr->nr;
    p.M = M, p.N = N, p.K = K, p.alpha = alpha, p.beta = beta;
    p.A = A, p.B = B, p.at = a_type, p.bt = b_type;
    p.rsa = ta == MXP_NO_TRANS ? lda : 1;
    p.csa = ta == MXP_NO_TRANS ? 1 : lda;
    p.rsb = tb == MXP_NO_TRANS ? 1 : ldb;
    p.csb = tb == MXP_NO_TRANS ? ldb : 1;
    p.c16 = c_type != MXP_DTYPE_F32;
    p.c32 = c_type == MXP_DTYPE_F32 ? C : NULL;
    p.ldc = ldc;
    p.epi.c = C;
    p.epi.ct = c_type;
    p.epi.ldc = ldc;
    p.epi.beta = p.c16 ? beta : 0.0f;
    p.epi.bias_mode = epi->bias_mode;
    p.epi.act = epi->act;
    p.epi.pre = epi->pre_act;
    p.epi.ld_pre = epi->ld_pre;
    p.epi.cvt = mxp_cvt_table_for(mxp_isa_active());
    p.epi.ew = mxp_ew_table_for(mxp_isa_active());
    p.need_epi =
        p.c16 || epi->bias_mode != MXP_BIAS_NONE || epi->act != MXP_ACT_NONE || epi->pre_act;

    /* even k blocks (768 as 384 + 384, not 512 + 256), whole bf16 pairs */
    const size_t kblk = K ? (K + kr->kc - 1) / kr->kc : 1;
    p.kc = K ? (K + kblk - 1) / kblk : 1;
    if (kr->pack == PACK_BF16) p.kc = round_up(p.kc, 2);
    p.nc = MXP_MIN(kr->nc, round_up(N, NR));
    size_t mc_max = kr->mc;
    if (p.c16) mc_max = MXP_MIN(mc_max, MXP_MAX(MR, CACC_BUDGET / sizeof(float) / N / MR * MR));
    /* even row blocks, so no block is a thin remainder that repacks all of B */
    const size_t mblk = (M + mc_max - 1) / mc_max;
    p.mc = round_up((M + mblk - 1) / mblk, MR);

    int nt = mxp_num_threads();
    if (2.0 * (double)M * (double)N * (double)K < PARALLEL_FLOPS) nt = 1;
#ifdef _OPENMP
    if (omp_in_parallel()) nt = 1; /* one GEMM per thread of the caller's loop */
#endif
    int tm, tn;
    thread_grid(M, N, MR, NR, nt, &tm, &tn);
    nt = tm * tn; /* no thread that would only pack */

    /* workspace: A block | B block per thread | fp32 C block | fp32 bias;
     * K == 0 needs only the bias */
    const size_t a_bytes = K ? round_up(packed_bytes(kr, p.mc, p.kc, kr->mr), 64) : 0;
    p.bpack_stride = K ? round_up(packed_bytes(kr, p.nc, p.kc, kr->nr), 64) : 0;
    const size_t cacc_bytes = p.c16 && K ? round_up(p.mc * N * sizeof(float), 64) : 0;
    const size_t bias_len = epi->bias_mode == MXP_BIAS_COL   ? N
                            : epi->bias_mode == MXP_BIAS_ROW ? M
                                                             : 0;
    const size_t bias_bytes = round_up(bias_len * sizeof(float), 64);
    const size_t total = a_bytes + p.bpack_stride * (size_t)nt + cacc_bytes + bias_bytes;
    int cached = -1;
    char *ws = total ? ws_get(total, &cached) : NULL;
    if (total && !ws) return MXP_ERR_NOMEM;
    p.apack = ws;
    p.bpack = ws + a_bytes;
    p.cacc = (float *)(ws + a_bytes + p.bpack_stride * (size_t)nt);
    if (bias_len) {
        float *b32 = (float *)(ws + a_bytes + p.bpack_stride * (size_t)nt + cacc_bytes);
        mxp_status st = mxp_convert(b32, MXP_DTYPE_F32, epi->bias, epi->bias_dtype, bias_len);
        if (st != MXP_OK) {
            ws_put(ws, cached);
            return st;
        }
        p.epi.bias32 = b32;
    }

    mxp_status st = MXP_OK;
    if (K == 0) {
        st = gemm_k0(&p);
    } else if (nt == 1) {
        run_thread(&p, 0, 1);
    } else {
        /* OpenMP may grant fewer threads than asked (nested regions, thread
         * limits): the grid is made from the team it actually gives */
        MXP_OMP(omp parallel num_threads(nt)) {
#ifdef _OPENMP
            run_thread(&p, omp_get_thread_num(), omp_get_num_threads());
#else
            run_thread(&p, 0, 1);
#endif
        }
    }
    if (ws) ws_put(ws, cached);
    return st;
}
