/*
 * bench_util.h - what the benchmark programs share: a monotonic clock and the comparator
 * their medians sort with.
 */
#ifndef MIXPREC_BENCH_UTIL_H
#define MIXPREC_BENCH_UTIL_H

#include <time.h>

/* Seconds on CLOCK_MONOTONIC. */
static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* qsort order of doubles. */
static inline int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
