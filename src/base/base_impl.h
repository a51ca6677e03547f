/*
 * base_impl.h - internals shared by every layer of libmixprec: how a failure
 * is recorded, and small helpers. Never installed.
 */
#ifndef MIXPREC_BASE_IMPL_H
#define MIXPREC_BASE_IMPL_H

#include <stdint.h>

#include "mixprec/base.h"

#if defined(__GNUC__)
#define MXP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MXP_PRINTF(a, b)
#endif

/* Record "file:line: message" as this thread's last error and return st. */
mxp_status mxp_error_set(mxp_status st, const char *file, int line, const char *fmt, ...)
    MXP_PRINTF(4, 5);

/* The last error's message without its "file.c:123: " prefix, for a caller
 * that wraps it in a message of its own (copy it first: the next MXP_FAIL
 * overwrites the buffer). */
const char *mxp_last_error_text(void);

/* return MXP_FAIL(MXP_ERR_SHAPE, "m=%zu does not match", m); */
#define MXP_FAIL(st, ...) mxp_error_set((st), __FILE__, __LINE__, __VA_ARGS__)

/* Propagate a failure from a callee whose message is already set. */
#define MXP_TRY(expr)                                                                              \
    do {                                                                                           \
        mxp_status mxp_try_st_ = (expr);                                                           \
        if (mxp_try_st_ != MXP_OK) return mxp_try_st_;                                             \
    } while (0)

/* mxp_alloc with the size computed as a*b, failing cleanly on overflow. */
void *mxp_alloc_array(size_t count, size_t elem);

/* The allocator hook in effect now (a copy). A cache that outlives one call
 * keeps it, so its memory goes back to the hook that made it. */
mxp_allocator mxp_allocator_current(void);

/* Whether the running CPU supports an ISA family (cached cpuid). */
int mxp_cpu_supports(mxp_isa isa);

/* An OpenMP pragma that disappears when the library is built without OpenMP, so that
 * -Wall -Werror does not stop at an unknown pragma: MXP_OMP(omp parallel for ...). */
#ifdef _OPENMP
#define MXP_OMP(directive) _Pragma(#directive)
#else
#define MXP_OMP(directive)
#endif

/* Whether byte ranges [a, a+an) and [b, b+bn) share a byte (empty ranges never do). */
static inline int mxp_overlaps(const void *a, size_t an, const void *b, size_t bn) {
    const uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return an && bn && pa < pb + bn && pb < pa + an;
}

#define MXP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MXP_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
