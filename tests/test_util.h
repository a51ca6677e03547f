/*
 * test_util.h - helpers several test programs share, so each is written once:
 *   splitmix64        the next value of a splitmix64 sequence (each test keeps its own state)
 *   seconds           the monotonic clock in seconds
 *   run_parts         runs the parts of a test program in order, printing each one's time
 *   xmalloc           malloc of exactly the bytes asked (so AddressSanitizer sees any access
 *                     past the end) that exits 2 when memory runs out
 *   esize, get, put   the size of an F32/F16/BF16 element; one element read or stored as float
 *                     (stored with the library's round-to-nearest-even conversion)
 *   file_bytes        a whole file into a malloc'd buffer, NUL-terminated; NULL if unreadable
 *   tmpdir_make, tpath, tmpdir_remove
 *                     a fresh directory /tmp/mxp-test-NAME.XXXXXX, paths of files in it, and
 *                     its removal with everything in it
 *   hook_on, hook_off, hk
 *                     a counting allocator hook (mxp_set_allocator) that refuses every request
 *                     after `budget` allocations (never when budget < 0): hk counts the
 *                     allocations and frees and keeps the largest size asked, refused or not
 * Each test program is one translation unit, so the state here (tmpdir, hk) is its own.
 */
#ifndef MIXPREC_TEST_UTIL_H
#define MIXPREC_TEST_UTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mixprec/base.h"
#include "mixprec/numerics.h"

/* ---- random numbers and timing ------------------------------------------------------------- */

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* a named part of a test program; run_parts runs each in order and prints its time */
typedef struct test_part {
    const char *name;
    void (*fn)(void);
} test_part;

static inline void run_parts(const test_part *parts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const double t0 = seconds();
        parts[i].fn();
        printf("%-18s %6.2f s\n", parts[i].name, seconds() - t0);
    }
}

/* ---- memory and F32/F16/BF16 buffers ------------------------------------------------------- */

static inline void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static inline size_t esize(mxp_dtype dt) { return dt == MXP_DTYPE_F32 ? 4 : 2; }

static inline float get(mxp_dtype dt, const void *p, size_t i) {
    if (dt == MXP_DTYPE_F16) return mxp_fp16_to_fp32(((const uint16_t *)p)[i]);
    if (dt == MXP_DTYPE_BF16) return mxp_bf16_to_fp32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

static inline void put(mxp_dtype dt, void *p, size_t i, float v) {
    if (dt == MXP_DTYPE_F16)
        ((uint16_t *)p)[i] = mxp_fp32_to_fp16(v);
    else if (dt == MXP_DTYPE_BF16)
        ((uint16_t *)p)[i] = mxp_fp32_to_bf16(v);
    else
        ((float *)p)[i] = v;
}

/* ---- a temporary directory ----------------------------------------------------------------- */

static inline unsigned char *file_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = len >= 0 ? malloc((size_t)len + 1) : NULL;
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    if (b) b[*n] = '\0';
    fclose(f);
    return b;
}

static char tmpdir[64]; /* made by tmpdir_make, removed by tmpdir_remove */

/* mkdtemp of /tmp/mxp-test-NAME.XXXXXX into tmpdir: 0, or -1 with errno set */
static inline int tmpdir_make(const char *name) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mxp-test-%s.XXXXXX", name);
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* tmpdir/name in a static buffer; the last 8 results stay valid */
static inline const char *tpath(const char *name) {
    static char buf[8][256];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

/* tmpdir/name holding text (the test stops with status 2 if it cannot be written); its path */
static inline const char *tmp_text(const char *name, const char *text) {
    const char *path = tpath(name);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    return path;
}

static inline int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void tmpdir_remove(void) { nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS); }

/* ---- a counting allocator that can refuse after a budget ----------------------------------- */

static struct {
    long allocs, frees, budget; /* budget < 0: never refuse */
    size_t biggest;
} hk;

static inline void *hk_alloc(size_t size, size_t align, void *user) {
    (void)user;
    if (size > hk.biggest) hk.biggest = size;
    if (hk.budget >= 0 && hk.allocs >= hk.budget) return NULL;
    hk.allocs++;
    return aligned_alloc(align, (size + align - 1) / align * align);
}

static inline void hk_free(void *p, void *user) {
    (void)user;
    if (p) hk.frees++;
    free(p);
}

/* counters to 0, then every allocation goes through hk_alloc and hk_free */
static inline void hook_on(long budget) {
    memset(&hk, 0, sizeof hk);
    hk.budget = budget;
    mxp_allocator a = {hk_alloc, hk_free, NULL};
    mxp_set_allocator(&a);
}

static inline void hook_off(void) { mxp_set_allocator(NULL); }

#endif
