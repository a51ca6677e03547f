/*
 * optim_impl.h - the interface between optim.c (argument checks, threading,
 * the scalar reference) and optim_avx512.c (the AVX-512 updates). Never installed.
 */
#ifndef MIXPREC_OPTIM_IMPL_H
#define MIXPREC_OPTIM_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mixprec/kernels.h"
#include "philox_impl.h"

/* The hyperparameters as the fp32 constants of the formulas, each computed in double from
 * the fp32 hyperparameters and rounded once (as PyTorch turns its Python-float expressions
 * into the fp32 scalars of its kernels). */
typedef struct mxp_optim_k {
    float neg_lr, momentum, damp, wd; /* SGD: -lr, momentum, 1 - dampening, weight decay */
    float decay, b1, c1, b2, c2;      /* AdamW: 1 - lr wd, beta1, 1 - beta1, beta2, 1 - beta2 */
    float step_size, bc2_sqrt, eps;   /* lr / (1 - beta1^t), sqrt(1 - beta2^t), eps */
    int has_wd, has_momentum, nesterov, first;
} mxp_optim_k;

/* Stochastic rounding draws its random words in blocks of this many elements (a stack buffer
 * that stays in L1), a multiple of 16. */
enum { MXP_SR_CHUNK = 256 };

/* out[j] = random word (w0 + j) of the Philox stream keyed by seed, j < n <= MXP_SR_CHUNK:
 * word w is element w % 4 of block w / 4, the words of mxp_convert_sr (mxp_philox_blocks,
 * vectorised with the ISA flags of the including file); the tests compare the words with
 * mxp_philox4x32 itself. */
static inline void mxp_sr_words(uint64_t seed, uint64_t w0, size_t n, uint32_t *out) {
    uint32_t blk[MXP_SR_CHUNK + 4 * MXP_PHILOX_LANES + 4];
    const size_t skip = (size_t)(w0 & 3), nb = (skip + n + 3) / 4;
    mxp_philox_blocks(seed, w0 >> 2, nb, blk);
    memcpy(out, blk + skip, n * sizeof *out);
}

/* Elements [lo, hi) of io; s0, s1 the optimizer state (SGD: momentum buffer or NULL, NULL;
 * AdamW: m, v); cnt[0] += updated, cnt[1] += lost (counted only when io asks for them).
 * io->stochastic selects the stochastic rounding of the work copy (optim.c checked that it
 * comes with master == NULL and a 16-bit work dtype). */
typedef void (*mxp_update_slice_fn)(const mxp_update_io *io, float *s0, float *s1,
                                    const mxp_optim_k *k, size_t lo, size_t hi, uint64_t cnt[2]);

void mxp_sgd_slice_avx512(const mxp_update_io *io, float *s0, float *s1, const mxp_optim_k *k,
                          size_t lo, size_t hi, uint64_t cnt[2]);
void mxp_adamw_slice_avx512(const mxp_update_io *io, float *s0, float *s1, const mxp_optim_k *k,
                            size_t lo, size_t hi, uint64_t cnt[2]);

#endif
