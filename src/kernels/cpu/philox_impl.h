/*
 * philox_impl.h - Philox4x32-10 blocks for many counters side by side, for the kernels that
 * draw random words in bulk (dropout masks in loss.c, stochastic rounding in the optimizer
 * updates). The rounds are mxp_philox4x32's (numerics/convert.c); the tests compare the
 * words with it. Never installed.
 */
#ifndef MIXPREC_PHILOX_IMPL_H
#define MIXPREC_PHILOX_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* Philox blocks b0 .. b0 + nb - 1 into out (4 nb words): the rounds of mxp_philox4x32
 * (convert.c), for MXP_PHILOX_LANES counters side by side so the compiler can interleave and
 * vectorise the lanes with the ISA flags of the including file (a call per block is ~20%
 * slower). Word w of block b is out[4 (b - b0) + w]. */
enum { MXP_PHILOX_LANES = 8 };
static inline void mxp_philox_blocks(uint64_t seed, uint64_t b0, size_t nb, uint32_t *out) {
    for (size_t j0 = 0; j0 < nb; j0 += MXP_PHILOX_LANES) {
        uint32_t c0[MXP_PHILOX_LANES], c1[MXP_PHILOX_LANES], c2[MXP_PHILOX_LANES],
            c3[MXP_PHILOX_LANES];
        for (int j = 0; j < MXP_PHILOX_LANES; j++) {
            const uint64_t c = b0 + j0 + (size_t)j;
            c0[j] = (uint32_t)c;
            c1[j] = (uint32_t)(c >> 32);
            c2[j] = c3[j] = 0;
        }
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int r = 0; r < 10; r++) {
            for (int j = 0; j < MXP_PHILOX_LANES; j++) {
                const uint64_t p0 = (uint64_t)0xD2511F53u * c0[j];
                const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2[j];
                const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;
                const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
                c1[j] = (uint32_t)p1;
                c3[j] = (uint32_t)p0;
                c0[j] = n0;
                c2[j] = n2;
            }
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        for (size_t j = 0; j < MXP_PHILOX_LANES && j0 + j < nb; j++) {
            out[4 * (j0 + j)] = c0[j];
            out[4 * (j0 + j) + 1] = c1[j];
            out[4 * (j0 + j) + 2] = c2[j];
            out[4 * (j0 + j) + 3] = c3[j];
        }
    }
}

#endif
