/*
 * gemm_impl.h - the pieces of the BLIS-style GEMM that differ per ISA: the
 * microkernel, its register block (MR x NR), how its operands are packed,
 * and the cache blocking around it. gemm.c holds the loops and the packing;
 * each gemm_<isa>.c fills one table. Never installed.
 *
 * Packed layouts (one micro-panel each; rows/columns past the edge are zero):
 *   PACK_F32:   A panel [kc][MR] fp32, B panel [kc][NR] fp32.
 *   PACK_BF16:  A panel [kc/2][MR][2] bf16, B panel [kc/2][NR][2] bf16: each
 *               32-bit word holds the pair (k, k+1), the operand of vdpbf16ps.
 */
#ifndef MIXPREC_GEMM_IMPL_H
#define MIXPREC_GEMM_IMPL_H

#include "../../base/base_impl.h"
#include "mixprec/kernels.h"

typedef enum pack_kind { PACK_F32 = 0, PACK_BF16 = 1 } pack_kind;

/* C (m, n) row-major with leading dimension ldc, fp32:
 *     C = alpha * Apanel Bpanel + beta * C      (beta == 0: C is not read)
 * kp is the number of packed k steps (k for PACK_F32, pairs for PACK_BF16);
 * m <= MR, n <= NR. */
typedef void (*gemm_ukr_fn)(size_t kp, const void *a, const void *b, float *c, size_t ldc, size_t m,
                            size_t n, float alpha, float beta);

/* Pack rows [0, m) x k-range [0, kc) of a strided source into micro-panels
 * of `rows` (MR for A, NR for B); source element (r, k) is at
 * src[r * rs + k * cs] in dtype st. Optional per ISA; NULL uses portable C. */
typedef void (*gemm_pack_fn)(void *dst, const void *src, mxp_dtype st, size_t rs, size_t cs,
                             size_t m, size_t kc, int rows);

typedef struct gemm_kernel {
    const char *name;  /* "gemm_f32_avx512" */
    pack_kind pack;    /* what the microkernel reads */
    int mr, nr;        /* register block */
    size_t mc, kc, nc; /* cache blocks: A block mc x kc (L3), B block kc x nc (L2) */
    gemm_ukr_fn ukr;
    gemm_pack_fn pack_rows; /* packs MR/NR-row panels; NULL: portable C */
} gemm_kernel;

/* The two kernels of an ISA family: f32 (fp32 and fp16 inputs, and bf16
 * where there is no bf16 dot product) and bf16 (both inputs bf16). */
typedef struct gemm_table {
    gemm_kernel f32;
    gemm_kernel bf16;
} gemm_table;

void mxp_gemm_register_ref(gemm_table *t);
void mxp_gemm_register_avx2(gemm_table *t);
void mxp_gemm_register_avx512(gemm_table *t);
void mxp_gemm_register_avx512bf16(gemm_table *t);

/* Portable packer (also the fallback of the SIMD ones for odd cases).
 * PACK_F32 widens any source dtype; PACK_BF16 copies bf16 bits and must only
 * be given a bf16 source. */
void mxp_gemm_pack_ref(pack_kind kind, void *dst, const void *src, mxp_dtype st, size_t rs,
                       size_t cs, size_t m, size_t kc, int rows);

#endif
