/*
 * test_numerics_exhaustive.c - every fp32 bit pattern (2^32) through fp32 -> fp16 and fp32 -> bf16
 * on every ISA family this CPU supports, and every 16-bit pattern back to fp32, compared bit for
 * bit (NaNs included) with the scalar functions mxp_fp32_to_fp16 & co. Chunks of 2^20 patterns
 * are spread over OpenMP threads. It does not compare with numpy/torch (check_exhaustive.py does).
 * Each ISA's kernels come from mxp_cvt_table_for, side by side: mxp_isa_set is process-wide and
 * not safe while kernels run, so it cannot vary inside the threaded sweep; test_numerics checks
 * that mxp_isa_set + mxp_convert dispatch to these tables.
 *
 * Every build, the sanitizer build (-O1) included, sweeps all 2^32 (about 30 s, and 50 s under
 * ASan+UBSan, on 2 cores). MIXPREC_EXHAUSTIVE=subset checks a structured subset instead for a
 * quick local run: every sign/exponent/top-7-mantissa-bit prefix with 64 low halves that hold
 * every combination of the rounding bits, plus every 29th pattern.
 */
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "check.h"
#include "mixprec/numerics.h"
#include "numerics/numerics_impl.h" /* mxp_cvt_table_for: each ISA's kernels, side by side */
#include "test_util.h"

enum { CHUNK = 1 << 20, NCHUNK = (int)(((uint64_t)1 << 32) / CHUNK), MAX_REPORTS = 20 };

static int n_isa; /* families 0..n_isa-1 are supported here */
static uint64_t mismatches[MXP_ISA_COUNT][2];
static int reports;

static void report(const char *what, mxp_isa isa, uint32_t x, uint32_t got, uint32_t want) {
    int r;
#ifdef _OPENMP
#pragma omp atomic capture
#endif
    r = reports++;
    if (r < MAX_REPORTS)
        fprintf(stderr, "%s isa=%s: input 0x%08x gives 0x%04x, scalar reference 0x%04x\n", what,
                mxp_isa_name(isa), x, got, want);
}

/* The subset for sanitizer builds: chunk k's patterns. Low halves: bits 12..15 (fp16's round and
 * lsb bits, bf16's round bit) in all 16 combinations times sticky bits {0, 1, 0x800, 0xfff}. */
static size_t subset_chunk(int k, uint32_t *src) {
    static const uint32_t sticky[4] = {0, 1, 0x800, 0xfff};
    size_t n = 0;
    for (uint32_t hi = (uint32_t)k * 16; hi < (uint32_t)k * 16 + 16; hi++)
        for (uint32_t lo = 0; lo < 64; lo++) src[n++] = hi << 16 | (lo >> 2) << 12 | sticky[lo & 3];
    /* 4096 chunks * 1024 = every prefix; then every 29th pattern of this chunk's range */
    for (uint64_t u = (uint64_t)k * CHUNK; u < (uint64_t)(k + 1) * CHUNK; u += 29)
        src[n++] = (uint32_t)u;
    return n;
}

static void check_chunk(const uint32_t *src, size_t n, uint16_t *want, uint16_t *got) {
    const float *x = (const float *)src;
    for (int f = 0; f < 2; f++) {
        for (size_t i = 0; i < n; i++)
            want[i] = f == 0 ? mxp_fp32_to_fp16(x[i]) : mxp_fp32_to_bf16(x[i]);
        for (int isa = 0; isa < n_isa; isa++) {
            const mxp_cvt_table *t = mxp_cvt_table_for((mxp_isa)isa);
            memset(got, 0, n * sizeof *got);
            (f == 0 ? t->f32_to_f16 : t->f32_to_bf16)(got, src, n);
            if (memcmp(got, want, n * sizeof *got) == 0) continue;
            uint64_t bad = 0;
            for (size_t i = 0; i < n; i++) {
                if (got[i] == want[i]) continue;
                if (bad++ < 3)
                    report(f ? "fp32->bf16" : "fp32->fp16", (mxp_isa)isa, src[i], got[i], want[i]);
            }
#ifdef _OPENMP
#pragma omp atomic
#endif
            mismatches[isa][f] += bad;
        }
    }
}

static void check_decode(void) {
    static uint16_t h[1 << 16];
    static float got[1 << 16];
    for (uint32_t i = 0; i < 1u << 16; i++) h[i] = (uint16_t)i;
    for (int f = 0; f < 2; f++)
        for (int isa = 0; isa < n_isa; isa++) {
            const mxp_cvt_table *t = mxp_cvt_table_for((mxp_isa)isa);
            /* all patterns in one call, then from an odd offset so tails are exercised too */
            for (int off = 0; off < 4; off += 3) {
                memset(got, 0, sizeof got);
                (f == 0 ? t->f16_to_f32 : t->bf16_to_f32)(got + off, h + off, (1u << 16) - off);
                size_t bad = 0;
                for (uint32_t i = off; i < 1u << 16; i++) {
                    uint32_t want =
                        mxp_f32_bits(f == 0 ? mxp_fp16_to_fp32(h[i]) : mxp_bf16_to_fp32(h[i]));
                    if (mxp_f32_bits(got[i]) != want && bad++ < 3)
                        fprintf(stderr, "%s isa=%s: 0x%04x gives 0x%08x, scalar 0x%08x\n",
                                f ? "bf16->fp32" : "fp16->fp32", mxp_isa_name((mxp_isa)isa), i,
                                mxp_f32_bits(got[i]), want);
                }
                CHECK(bad == 0, "%s on %s: %zu of 65536 patterns differ from the scalar reference",
                      f ? "bf16->fp32" : "fp16->fp32", mxp_isa_name((mxp_isa)isa), bad);
            }
        }
}

int main(void) {
    const char *mode = getenv("MIXPREC_EXHAUSTIVE");
    const int subset = mode && strcmp(mode, "subset") == 0;
    n_isa = (int)mxp_isa_detect() + 1; /* families are supersets of the ones before */
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    const double t0 = seconds();
    check_decode();
    uint64_t total = 0;
#ifdef _OPENMP
#pragma omp parallel reduction(+ : total)
#endif
    {
        uint32_t *src = malloc((size_t)2 * CHUNK * sizeof *src);
        uint16_t *want = malloc((size_t)2 * CHUNK * sizeof *want);
        uint16_t *got = malloc((size_t)2 * CHUNK * sizeof *got);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int k = 0; k < NCHUNK; k++) {
            size_t n = CHUNK;
            if (subset) {
                n = subset_chunk(k, src);
            } else {
                for (size_t i = 0; i < n; i++) src[i] = (uint32_t)k * CHUNK + (uint32_t)i;
            }
            check_chunk(src, n, want, got);
            total += n;
        }
        free(src);
        free(want);
        free(got);
    }
    const double t1 = seconds();
    for (int isa = 0; isa < n_isa; isa++)
        for (int f = 0; f < 2; f++)
            CHECK(mismatches[isa][f] == 0,
                  "fp32->%s on %s: %llu patterns differ from the scalar "
                  "reference",
                  f ? "bf16" : "fp16", mxp_isa_name((mxp_isa)isa),
                  (unsigned long long)mismatches[isa][f]);
    CHECK(subset || total == (uint64_t)1 << 32, "covered %llu patterns", (unsigned long long)total);
    /* the float view of the patterns above is only for the kernels; keep float_of honest */
    CHECK(mxp_f32_bits(mxp_bits_f32(0x7fa00001u)) == 0x7fa00001u, "float/bits round trip");
    printf("exhaustive (%s): %llu fp32 patterns x 2 formats on %d ISA families (ref..%s), "
           "65536 x 2 decodes; %d threads, %.1f s\n",
           subset ? "subset" : "all 2^32", (unsigned long long)total, n_isa,
           mxp_isa_name((mxp_isa)(n_isa - 1)), threads, t1 - t0);
    return check_exit("test_numerics_exhaustive");
}
