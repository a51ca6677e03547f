/*
 * cpu.c - which kernel family runs, and on how many threads.
 * Detection reads cpuid and xgetbv (the OS must save the zmm state for the
 * AVX-512 families). It does not pick kernels itself: each layer keeps its
 * own table per family and asks mxp_isa_active() which to use.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define HAVE_X86 1
#endif

#include "base_impl.h"

static struct { int avx2, fma, f16c, avx512f, avx512bw, avx512dq, avx512vl, avx512bf16; } feat;

static mxp_isa best = MXP_ISA_REF;
static mxp_isa chosen = MXP_ISA_REF;
static int threads = 1;
static char feature_list[160];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#ifdef HAVE_X86
static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static void detect(void) {
#ifdef HAVE_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1;
    int avx = (c >> 28) & 1;
    feat.fma = (c >> 12) & 1;
    feat.f16c = (c >> 29) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_ok = avx && (xcr0 & 0x6) == 0x6;
    int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        feat.avx2 = ymm_ok && ((b >> 5) & 1);
        feat.avx512f = zmm_ok && ((b >> 16) & 1);
        feat.avx512dq = zmm_ok && ((b >> 17) & 1);
        feat.avx512bw = zmm_ok && ((b >> 30) & 1);
        feat.avx512vl = zmm_ok && ((b >> 31) & 1);
        __cpuid_count(7, 1, a, b, c, d);
        feat.avx512bf16 = zmm_ok && ((a >> 5) & 1);
    }
    feat.fma &= ymm_ok;
    feat.f16c &= ymm_ok;
#endif
}

/* From the features detect() found; init() uses it before `once` is done. */
static int supports(mxp_isa isa) {
    switch (isa) {
    case MXP_ISA_REF: return 1;
    case MXP_ISA_AVX2: return feat.avx2 && feat.fma && feat.f16c;
    case MXP_ISA_AVX512:
        return supports(MXP_ISA_AVX2) && feat.avx512f && feat.avx512bw && feat.avx512dq &&
               feat.avx512vl;
    case MXP_ISA_AVX512BF16: return supports(MXP_ISA_AVX512) && feat.avx512bf16;
    default: return 0;
    }
}

static void init(void) {
    detect();
    for (int i = MXP_ISA_COUNT - 1; i >= 0; i--) {
        if (supports((mxp_isa)i)) {
            best = (mxp_isa)i;
            break;
        }
    }
    chosen = best;
    /* An unknown or unsupported MIXPREC_ISA falls back to the best family
     * rather than running instructions the CPU lacks; the CLI checks the
     * variable itself and reports it (see mixprec env). */
    const char *env = getenv("MIXPREC_ISA");
    for (int i = 0; env && i < MXP_ISA_COUNT; i++) /* silently: no last error here */
        if (strcmp(env, mxp_isa_name((mxp_isa)i)) == 0 && supports((mxp_isa)i)) chosen = (mxp_isa)i;

    struct {
        const char *name;
        int on;
    } names[] = {{"avx2", feat.avx2},         {"fma", feat.fma},
                 {"f16c", feat.f16c},         {"avx512f", feat.avx512f},
                 {"avx512bw", feat.avx512bw}, {"avx512dq", feat.avx512dq},
                 {"avx512vl", feat.avx512vl}, {"avx512bf16", feat.avx512bf16}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!names[i].on) continue;
        if (feature_list[0]) strcat(feature_list, " ");
        strcat(feature_list, names[i].name);
    }

#ifdef _OPENMP
    threads = omp_get_max_threads();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? (int)n : 1;
#endif
    const char *tenv = getenv("MIXPREC_NUM_THREADS");
    if (tenv && *tenv) {
        char *end;
        long n = strtol(tenv, &end, 10);
        if (*end == '\0' && n >= 1 && n <= 1024) threads = (int)n;
    }
#ifndef _OPENMP
    threads = 1;
#endif
    if (threads < 1) threads = 1;
}

static void ensure_init(void) { pthread_once(&once, init); }

int mxp_cpu_supports(mxp_isa isa) {
    ensure_init();
    return supports(isa);
}

mxp_isa mxp_isa_detect(void) {
    ensure_init();
    return best;
}

mxp_isa mxp_isa_active(void) {
    ensure_init();
    return chosen;
}

mxp_status mxp_isa_set(mxp_isa isa) {
    ensure_init();
    if ((int)isa < 0 || isa >= MXP_ISA_COUNT)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown ISA %d", (int)isa);
    if (!mxp_cpu_supports(isa))
        return MXP_FAIL(MXP_ERR_BACKEND, "this CPU does not support %s (best: %s)",
                        mxp_isa_name(isa), mxp_isa_name(best));
    chosen = isa;
    return MXP_OK;
}

static const char *const isa_names[MXP_ISA_COUNT] = {"ref", "avx2", "avx512", "avx512bf16"};

const char *mxp_isa_name(mxp_isa isa) {
    if ((int)isa < 0 || isa >= MXP_ISA_COUNT) return "?";
    return isa_names[isa];
}

mxp_status mxp_isa_parse(const char *name, mxp_isa *out) {
    if (!name || !out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "null argument");
    for (int i = 0; i < MXP_ISA_COUNT; i++) {
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (mxp_isa)i;
            return MXP_OK;
        }
    }
    return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown ISA '%s' (use ref, avx2, avx512 or avx512bf16)",
                    name);
}

const char *mxp_cpu_features(void) {
    ensure_init();
    return feature_list;
}

int mxp_num_threads(void) {
    ensure_init();
    return threads;
}

mxp_status mxp_set_num_threads(int n) {
    ensure_init();
    if (n < 1) return MXP_FAIL(MXP_ERR_INVALID_ARG, "thread count must be >= 1, got %d", n);
#ifdef _OPENMP
    threads = n > 1024 ? 1024 : n;
#endif
    return MXP_OK;
}

int mxp_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
