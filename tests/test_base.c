/*
 * test_base.c - the base layer: status names, the per-thread last-error message, ISA names,
 * parsing, forcing and detection, the thread count, the allocator hook (alignment, size 0,
 * overflow, failure, restoring the default) and the version. Detection is checked against the
 * feature list of this CPU only; families it lacks are checked only to be refused.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_impl.h" /* mxp_alloc_array, the overflow-checked allocation */
#include "check.h"
#include "mixprec.h"

/* Whether msg starts "<file>.c:<line>: <detail>" as MXP_FAIL writes it. */
static int has_file_line(const char *msg) {
    const char *p = strstr(msg, ".c:");
    if (!p || p == msg) return 0;
    p += 3;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    return p[0] == ':' && p[1] == ' ' && p[2] != '\0';
}

/* ---- status names ------------------------------------------------------ */

static void test_status_str(void) {
    static const mxp_status all[] = {
        MXP_OK,     MXP_ERR_INVALID_ARG, MXP_ERR_SHAPE,   MXP_ERR_DTYPE, MXP_ERR_NOMEM,
        MXP_ERR_IO, MXP_ERR_FORMAT,      MXP_ERR_BACKEND, MXP_ERR_DIST,  MXP_ERR_NONFINITE};
    enum { NS = sizeof all / sizeof all[0] };
    for (int i = 0; i < NS; i++) {
        const char *s = mxp_status_str(all[i]);
        CHECK(s != NULL && s[0] != '\0', "status %d has no name", (int)all[i]);
        for (int j = 0; j < i; j++)
            CHECK(s && strcmp(s, mxp_status_str(all[j])) != 0, "statuses %d and %d share '%s'",
                  (int)all[i], (int)all[j], s ? s : "(null)");
    }
    /* values outside the enum still get a name, and not a known status's name */
    static const int unknown[] = {1, -10, 12345, -12345};
    for (int u = 0; u < 4; u++) {
        const char *s = mxp_status_str((mxp_status)unknown[u]);
        CHECK(s != NULL && s[0] != '\0', "unknown status %d has no name", unknown[u]);
        for (int j = 0; j < NS && s; j++)
            CHECK(strcmp(s, mxp_status_str(all[j])) != 0, "unknown status %d reads as '%s'",
                  unknown[u], s);
    }
}

/* ---- last error -------------------------------------------------------- */

/* A failure on another thread: its own message is set, the caller's untouched. */
typedef struct thread_msg {
    char before[512]; /* the thread's message before it failed */
    char after[512];  /* and after */
    mxp_status st;
} thread_msg;

static void *fail_on_thread(void *arg) {
    thread_msg *t = arg;
    snprintf(t->before, sizeof t->before, "%s", mxp_last_error());
    t->st = mxp_set_num_threads(0);
    snprintf(t->after, sizeof t->after, "%s", mxp_last_error());
    return NULL;
}

static void test_last_error(void) {
    mxp_clear_error();
    CHECK(strcmp(mxp_last_error(), "") == 0, "no error yet: '%s'", mxp_last_error());
    mxp_isa isa;
    CHECK(mxp_isa_parse("no-such-isa", &isa) == MXP_ERR_INVALID_ARG, "unknown ISA name");
    char mine[512];
    snprintf(mine, sizeof mine, "%s", mxp_last_error());
    CHECK(has_file_line(mine), "message without file:line: '%s'", mine);
    CHECK(strstr(mine, "no-such-isa") != NULL, "message does not name the input: '%s'", mine);
    /* a successful call leaves the message alone */
    CHECK(mxp_isa_parse("ref", &isa) == MXP_OK, "parse ref");
    CHECK(strcmp(mxp_last_error(), mine) == 0, "success changed the message to '%s'",
          mxp_last_error());
    mxp_clear_error();
    CHECK(strcmp(mxp_last_error(), "") == 0, "clear left '%s'", mxp_last_error());

    /* per thread: with and without a message of our own */
    for (int round = 0; round < 2; round++) {
        if (round == 1) mxp_isa_parse("no-such-isa", &isa);
        snprintf(mine, sizeof mine, "%s", mxp_last_error());
        thread_msg t;
        memset(&t, 0, sizeof t);
        pthread_t th;
        CHECK(pthread_create(&th, NULL, fail_on_thread, &t) == 0, "pthread_create");
        pthread_join(th, NULL);
        CHECK(t.st == MXP_ERR_INVALID_ARG, "mxp_set_num_threads(0) on a thread gave %d", t.st);
        CHECK(strcmp(t.before, "") == 0, "a new thread starts with '%s'", t.before);
        CHECK(has_file_line(t.after), "thread's message: '%s'", t.after);
        CHECK(strcmp(t.after, mine) != 0, "thread's message equals ours: '%s'", t.after);
        CHECK(strcmp(mxp_last_error(), mine) == 0,
              "a failure on another thread changed this thread's message from '%s' to '%s'", mine,
              mxp_last_error());
    }
    mxp_clear_error();
}

/* ---- instruction sets -------------------------------------------------- */

/* Whether the space-separated list has `word` as a whole word. */
static int has_word(const char *list, const char *word) {
    const size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

static void test_isa(void) {
    static const char *const names[MXP_ISA_COUNT] = {"ref", "avx2", "avx512", "avx512bf16"};
    for (int i = 0; i < MXP_ISA_COUNT; i++) {
        mxp_isa got = (mxp_isa)-1;
        CHECK(mxp_isa_parse(names[i], &got) == MXP_OK && got == (mxp_isa)i, "parse %s", names[i]);
        CHECK(strcmp(mxp_isa_name((mxp_isa)i), names[i]) == 0, "name of %d: '%s'", i,
              mxp_isa_name((mxp_isa)i));
        got = (mxp_isa)-1;
        CHECK(mxp_isa_parse(mxp_isa_name((mxp_isa)i), &got) == MXP_OK && got == (mxp_isa)i,
              "round trip %d", i);
    }
    static const char *const bad[] = {"", "avx", "avx512bf", "AVX2x", "avx2 ", "neon"};
    for (int i = 0; i < 6; i++) {
        mxp_isa got;
        mxp_clear_error();
        CHECK(mxp_isa_parse(bad[i], &got) == MXP_ERR_INVALID_ARG, "'%s' parsed", bad[i]);
        CHECK(has_file_line(mxp_last_error()), "no message for '%s': '%s'", bad[i],
              mxp_last_error());
    }
    mxp_isa got;
    CHECK(mxp_isa_parse(NULL, &got) == MXP_ERR_INVALID_ARG, "NULL name");
    CHECK(mxp_isa_parse("ref", NULL) == MXP_ERR_INVALID_ARG, "NULL out");
    static const int out_of_range[] = {-1, MXP_ISA_COUNT, 99};
    for (int i = 0; i < 3; i++)
        CHECK(strcmp(mxp_isa_name((mxp_isa)out_of_range[i]), "?") == 0, "name of %d: '%s'",
              out_of_range[i], mxp_isa_name((mxp_isa)out_of_range[i]));

    /* forcing a family: out of range fails and changes nothing; each family
     * the CPU has becomes active; one it lacks is refused (MXP_ERR_BACKEND) */
    const mxp_isa start = mxp_isa_active(), best = mxp_isa_detect();
    for (int i = 0; i < 3; i++) {
        mxp_clear_error();
        CHECK(mxp_isa_set((mxp_isa)out_of_range[i]) == MXP_ERR_INVALID_ARG, "set %d",
              out_of_range[i]);
        CHECK(has_file_line(mxp_last_error()), "set %d: message '%s'", out_of_range[i],
              mxp_last_error());
        CHECK(mxp_isa_active() == start, "a failed set changed the active ISA");
    }
    for (int i = 0; i < MXP_ISA_COUNT; i++) {
        const mxp_isa before = mxp_isa_active();
        const mxp_status st = mxp_isa_set((mxp_isa)i);
        if (i <= (int)best) { /* each family is a superset of the one before */
            CHECK(st == MXP_OK, "set %s (best %s): %d", names[i], names[best], st);
            CHECK(mxp_isa_active() == (mxp_isa)i, "active %s after set %s",
                  mxp_isa_name(mxp_isa_active()), names[i]);
        } else {
            CHECK(st == MXP_ERR_BACKEND, "set %s beyond best %s: %d", names[i], names[best], st);
            CHECK(mxp_isa_active() == before, "a refused set changed the active ISA");
        }
        CHECK(mxp_isa_detect() == best, "detect changed after set");
    }
    CHECK(mxp_isa_set(start) == MXP_OK && mxp_isa_active() == start, "restore");

    /* detection agrees with the feature list, both ways */
    const char *f = mxp_cpu_features();
    CHECK(f != NULL, "features");
    const int f_avx2 = has_word(f, "avx2") && has_word(f, "fma") && has_word(f, "f16c");
    const int f_avx512 = f_avx2 && has_word(f, "avx512f") && has_word(f, "avx512bw") &&
                         has_word(f, "avx512dq") && has_word(f, "avx512vl");
    const int f_bf16 = f_avx512 && has_word(f, "avx512bf16");
    const mxp_isa from_features = f_bf16     ? MXP_ISA_AVX512BF16
                                  : f_avx512 ? MXP_ISA_AVX512
                                  : f_avx2   ? MXP_ISA_AVX2
                                             : MXP_ISA_REF;
    CHECK(best == from_features, "detect says %s, the features '%s' say %s", mxp_isa_name(best), f,
          mxp_isa_name(from_features));
    printf("test_base: detected %s, features '%s'\n", mxp_isa_name(best), f);
}

/* ---- threads ----------------------------------------------------------- */

static void test_threads(void) {
    const int start = mxp_num_threads();
    CHECK(start >= 1, "num_threads %d", start);
    if (!mxp_have_openmp()) CHECK(start == 1, "no OpenMP but %d threads", start);
    CHECK(mxp_set_num_threads(0) == MXP_ERR_INVALID_ARG, "0 threads accepted");
    CHECK(mxp_set_num_threads(-1) == MXP_ERR_INVALID_ARG, "-1 threads accepted");
    CHECK(mxp_num_threads() == start, "a refused count changed it to %d", mxp_num_threads());
    CHECK(mxp_set_num_threads(3) == MXP_OK, "set 3");
    CHECK(mxp_num_threads() == (mxp_have_openmp() ? 3 : 1), "3 threads asked, %d given (openmp %d)",
          mxp_num_threads(), mxp_have_openmp());
    CHECK(mxp_set_num_threads(5000) == MXP_OK, "set 5000");
    CHECK(mxp_num_threads() == (mxp_have_openmp() ? 1024 : 1), "5000 threads asked, %d given",
          mxp_num_threads());
    CHECK(mxp_set_num_threads(1) == MXP_OK && mxp_num_threads() == 1, "set 1");
    mxp_set_num_threads(start);
    CHECK(mxp_num_threads() == start, "restore %d", start);
}

/* ---- allocator hook ---------------------------------------------------- */

static struct {
    long allocs, frees, failed;
    size_t last_size, last_align;
    int fail; /* refuse every request */
} hk;

static void *hk_alloc(size_t size, size_t align, void *user) {
    CHECK(user == &hk, "user pointer not passed through");
    hk.last_size = size;
    hk.last_align = align;
    if (hk.fail) {
        hk.failed++;
        return NULL;
    }
    hk.allocs++;
    return aligned_alloc(align, (size + align - 1) / align * align);
}

static void hk_free(void *p, void *user) {
    CHECK(user == &hk, "user pointer not passed through");
    CHECK(p != NULL, "the hook's free got NULL");
    hk.frees++;
    free(p);
}

static void test_alloc(void) {
    /* default allocator */
    mxp_clear_error();
    CHECK(mxp_alloc(0) == NULL, "alloc(0) gave memory");
    CHECK(strcmp(mxp_last_error(), "") == 0, "alloc(0) set an error: '%s'", mxp_last_error());
    static const size_t sizes[] = {1, 3, 63, 64, 65, 1000, 4097, 1 << 20};
    for (int i = 0; i < 8; i++) {
        unsigned char *p = mxp_alloc(sizes[i]);
        CHECK(p != NULL, "alloc(%zu)", sizes[i]);
        CHECK((uintptr_t)p % 64 == 0, "alloc(%zu) = %p is not 64-byte aligned", sizes[i],
              (void *)p);
        if (p) memset(p, 0xa5, sizes[i]); /* the whole size is ours (ASan checks) */
        mxp_free(p);
    }
    mxp_free(NULL);
    mxp_clear_error();
    CHECK(mxp_alloc(SIZE_MAX) == NULL, "alloc(SIZE_MAX) gave memory");
    CHECK(has_file_line(mxp_last_error()), "alloc(SIZE_MAX) message '%s'", mxp_last_error());

    /* a counting hook */
    mxp_allocator a = {hk_alloc, hk_free, &hk};
    mxp_set_allocator(&a);
    memset(&hk, 0, sizeof hk);
    void *p = mxp_alloc(100);
    CHECK(p != NULL && hk.allocs == 1, "hook not used: %ld allocs", hk.allocs);
    CHECK(hk.last_size >= 100, "hook asked for %zu bytes, want >= 100", hk.last_size);
    CHECK(hk.last_align >= 64 && (hk.last_align & (hk.last_align - 1)) == 0,
          "hook asked for alignment %zu", hk.last_align);
    CHECK((uintptr_t)p % 64 == 0, "hook memory %p not aligned", p);
    mxp_free(p);
    CHECK(hk.frees == 1, "free through the hook: %ld", hk.frees);
    mxp_free(NULL);
    CHECK(hk.frees == 1, "mxp_free(NULL) reached the hook");
    mxp_clear_error();
    CHECK(mxp_alloc(0) == NULL && hk.allocs == 1, "alloc(0) reached the hook");
    CHECK(strcmp(mxp_last_error(), "") == 0, "alloc(0) set '%s'", mxp_last_error());

    /* count * size overflowing size_t: NULL, a message, and the hook never asked */
    mxp_clear_error();
    CHECK(mxp_alloc_array(SIZE_MAX / 2, 3) == NULL, "overflowing array allocated");
    CHECK(has_file_line(mxp_last_error()), "overflow message '%s'", mxp_last_error());
    CHECK(hk.allocs == 1 && hk.failed == 0, "the hook saw an overflowing request (%zu bytes)",
          hk.last_size);
    mxp_clear_error();
    CHECK(mxp_alloc_array(SIZE_MAX, SIZE_MAX) == NULL && has_file_line(mxp_last_error()),
          "SIZE_MAX^2");
    CHECK(hk.allocs == 1 && hk.failed == 0, "the hook saw SIZE_MAX^2");
    p = mxp_alloc_array(5, 12);
    CHECK(p != NULL && hk.allocs == 2 && hk.last_size >= 60, "array 5 x 12: %zu bytes",
          hk.last_size);
    mxp_free(p);

    /* a failing hook: NULL and a message */
    hk.fail = 1;
    mxp_clear_error();
    CHECK(mxp_alloc(256) == NULL, "a failing hook gave memory");
    CHECK(hk.failed == 1, "failing hook called %ld times", hk.failed);
    CHECK(has_file_line(mxp_last_error()), "failure message '%s'", mxp_last_error());
    hk.fail = 0;

    /* back to the default: the hook is never called again */
    mxp_set_allocator(NULL);
    const long allocs = hk.allocs, frees = hk.frees, failed = hk.failed;
    p = mxp_alloc(4096);
    CHECK(p != NULL && (uintptr_t)p % 64 == 0, "default allocator after restore");
    mxp_free(p);
    CHECK(hk.allocs == allocs && hk.frees == frees && hk.failed == failed,
          "the hook was called after mxp_set_allocator(NULL)");
    CHECK(hk.allocs == hk.frees, "hook allocations %ld, frees %ld", hk.allocs, hk.frees);
}

static void test_version(void) {
    const char *v = mxp_version();
    CHECK(v != NULL && strcmp(v, MXP_VERSION_STRING) == 0, "version '%s', header says '%s'",
          v ? v : "(null)", MXP_VERSION_STRING);
    char parts[32];
    snprintf(parts, sizeof parts, "%d.%d.%d", MXP_VERSION_MAJOR, MXP_VERSION_MINOR,
             MXP_VERSION_PATCH);
    CHECK(strcmp(parts, MXP_VERSION_STRING) == 0, "MAJOR.MINOR.PATCH %s vs %s", parts,
          MXP_VERSION_STRING);
}

int main(void) {
    test_status_str();
    test_last_error();
    test_isa();
    test_threads();
    test_alloc();
    test_version();
    return check_exit("test_base");
}
