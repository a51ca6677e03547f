/*
 * mixprec/base.h - what every layer of libmixprec stands on.
 *
 * Status codes and the last-error message, the allocator hook, the version,
 * the CPU instruction-set dispatch (which kernel family runs) and the thread
 * count. Nothing here knows about number formats or tensors.
 *
 * Errors. Every fallible call returns an mxp_status (MXP_OK == 0, failures
 * negative) and leaves a one-line message, owned by the library and kept per
 * thread, that mxp_last_error() returns:
 *
 *     mxp_status st = mxp_convert(dst, MXP_DTYPE_BF16, src, MXP_DTYPE_F32, n);
 *     if (st != MXP_OK) fprintf(stderr, "%s: %s\n", mxp_status_str(st), mxp_last_error());
 *
 * Instruction sets. The best kernel family the CPU supports is chosen at run
 * time from cpuid; MIXPREC_ISA=ref|avx2|avx512|avx512bf16 (or mxp_isa_set)
 * forces one. "ref" is the portable scalar reference that every SIMD kernel
 * is tested against.
 */
#ifndef MIXPREC_BASE_H
#define MIXPREC_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's public symbols: it is built with hidden visibility,
 * so only what the headers declare is exported from libmixprec.so. */
#if defined(__GNUC__)
#define MXP_API __attribute__((visibility("default")))
#else
#define MXP_API
#endif

#define MXP_VERSION_MAJOR 0
#define MXP_VERSION_MINOR 1
#define MXP_VERSION_PATCH 0
#define MXP_VERSION_STRING "0.1.0"

/* The library's version as "MAJOR.MINOR.PATCH" (static storage). */
MXP_API const char *mxp_version(void);

/* ---- status codes ------------------------------------------------------ */

/* Values are append-only: they may be stored in logs and exit paths. */
typedef enum mxp_status {
    MXP_OK = 0,
    MXP_ERR_INVALID_ARG = -1, /* a null pointer, a size out of range, an unknown enum */
    MXP_ERR_SHAPE = -2,       /* shapes or strides that do not fit together */
    MXP_ERR_DTYPE = -3,       /* a dtype the operation does not support */
    MXP_ERR_NOMEM = -4,       /* the allocator returned NULL */
    MXP_ERR_IO = -5,          /* a read, write or open failed */
    MXP_ERR_FORMAT = -6,      /* a file or string that does not parse */
    MXP_ERR_BACKEND = -7,     /* an ISA or device that this machine lacks */
    MXP_ERR_DIST = -8,        /* a distributed (MPI) failure */
    MXP_ERR_NONFINITE = -9    /* a loss or gradient that is inf or NaN where it may not be */
} mxp_status;

/* A short fixed name for a status ("invalid argument"); never NULL. */
MXP_API const char *mxp_status_str(mxp_status st);

/* The message of the last failure on this thread ("convert.c:42: n is ..."),
 * or "" if none. Owned by the library; valid until the next failing call on
 * the same thread. */
MXP_API const char *mxp_last_error(void);

/* Forget the last error on this thread. */
MXP_API void mxp_clear_error(void);

/* ---- allocator hook ---------------------------------------------------- */

/* All host memory the library allocates goes through this hook, so a test
 * can count allocations or make the n-th one fail. alloc must return memory
 * aligned to at least `align` bytes (a power of two, <= 4096) or NULL;
 * free(NULL) must be harmless. */
typedef struct mxp_allocator {
    void *(*alloc)(size_t size, size_t align, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} mxp_allocator;

/* Install `a` (copied), or the default (aligned_alloc/free) when a is NULL.
 * Not thread-safe: call it while no other thread uses the library. Memory
 * the caller got from mxp_alloc must be released with the same hook; memory
 * the library caches between calls (the GEMM workspace) is returned to the
 * hook that made it. */
MXP_API void mxp_set_allocator(const mxp_allocator *a);

/* Allocate `size` bytes aligned to 64 through the hook. size 0 gives NULL.
 * Returns NULL (and sets the last error) when the hook fails. */
MXP_API void *mxp_alloc(size_t size);

/* Release memory from mxp_alloc. mxp_free(NULL) does nothing. */
MXP_API void mxp_free(void *ptr);

/* ---- instruction sets -------------------------------------------------- */

/* Kernel families, each a superset of the one before it. Append-only. */
typedef enum mxp_isa {
    MXP_ISA_REF = 0,        /* portable C, the scalar reference */
    MXP_ISA_AVX2 = 1,       /* AVX2 + FMA + F16C */
    MXP_ISA_AVX512 = 2,     /* AVX-512 F/BW/DQ/VL + F16C */
    MXP_ISA_AVX512BF16 = 3, /* AVX-512 plus AVX512_BF16 (vdpbf16ps, vcvtneps2bf16) */
    MXP_ISA_COUNT
} mxp_isa;

/* The best family this CPU and OS support (cpuid + xgetbv), whatever
 * MIXPREC_ISA says. */
MXP_API mxp_isa mxp_isa_detect(void);

/* The family in use: the one forced by mxp_isa_set, else MIXPREC_ISA from
 * the environment (read once), else mxp_isa_detect(). An unknown MIXPREC_ISA,
 * or one this CPU cannot run, is ignored here (never a crash on a missing
 * instruction); the mixprec command reports it as an error. */
MXP_API mxp_isa mxp_isa_active(void);

/* Force a family for all later calls. Fails with MXP_ERR_BACKEND (and changes
 * nothing) when the CPU does not support it. Not thread-safe with running
 * kernels. */
MXP_API mxp_status mxp_isa_set(mxp_isa isa);

/* "ref", "avx2", "avx512", "avx512bf16"; "?" for anything else. */
MXP_API const char *mxp_isa_name(mxp_isa isa);

/* Parse a family name as mxp_isa_name writes it. MXP_ERR_INVALID_ARG if the
 * name is unknown. */
MXP_API mxp_status mxp_isa_parse(const char *name, mxp_isa *out);

/* CPU features as a space-separated list of the ones libmixprec can use
 * ("avx2 fma f16c avx512f ... avx512bf16"). Static storage. */
MXP_API const char *mxp_cpu_features(void);

/* ---- threads ----------------------------------------------------------- */

/* Threads the kernels may use: set by mxp_set_num_threads, else
 * MIXPREC_NUM_THREADS (read once; an invalid value is ignored), else OpenMP's
 * default (OMP_NUM_THREADS, else the number of online CPUs). Always >= 1; 1
 * when the library was built without OpenMP. A kernel uses fewer when its
 * work is small or OpenMP grants fewer. */
MXP_API int mxp_num_threads(void);

/* Set the thread count for later calls (n >= 1, capped at 1024).
 * MXP_ERR_INVALID_ARG for n < 1. */
MXP_API mxp_status mxp_set_num_threads(int n);

/* Whether the library was built with OpenMP (1) or not (0). */
MXP_API int mxp_have_openmp(void);

#ifdef __cplusplus
}
#endif
#endif
