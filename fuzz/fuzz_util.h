/*
 * fuzz_util.h - what the four harnesses in fuzz/ share: the parsers take paths, so the
 * fuzzer's bytes go into a per-process file (one per harness, reused across calls), and
 * FUZZ_CHECK stops the process on a broken invariant. Errors of the parser are expected
 * results here, never a reason to stop.
 *
 * The file lives in $TMPDIR when set (scripts/fuzz.sh points it at a scratch directory),
 * else in /dev/shm (no disk traffic per execution), else in /tmp; its name carries the
 * harness's tag and the pid, so parallel fuzzer processes never share one. It is removed
 * at exit; a crashed process leaves it behind in that directory.
 *
 * Each harness is one translation unit and this header keeps its state static, so each
 * harness has its own file.
 */
#ifndef MIXPREC_FUZZ_UTIL_H
#define MIXPREC_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mixprec/base.h"

/* The harnesses: each feeds data[0..size) to one parser and checks what it returns. 0 when
 * the input was tried (accepted or refused alike), non-zero when the harness could not run
 * (no scratch file); a broken invariant aborts. */
int mixprec_fuzz_safetensors(const uint8_t *data, size_t size);
int mixprec_fuzz_idx(const uint8_t *data, size_t size);
int mixprec_fuzz_yaml_args(const uint8_t *data, size_t size);
int mixprec_fuzz_config(const uint8_t *data, size_t size);
int mixprec_fuzz_launch(const uint8_t *data, size_t size);

/* A broken invariant: print what and the library's last error, then abort (libFuzzer saves
 * the input as a crash; the corpus test dies with it). */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, " (last error: %s)\n", mxp_last_error());                              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The directory for scratch files: $TMPDIR, /dev/shm or /tmp, the first one writable. */
static inline const char *fuzz_scratch_dir(void) {
    const char *env = getenv("TMPDIR");
    if (env && env[0] && access(env, W_OK | X_OK) == 0) return env;
    if (access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
    return "/tmp";
}

/* Write n bytes to fd from offset 0 and cut the file there. 0, or -1 with errno set. */
static inline int fuzz_write_all(int fd, const void *data, size_t n) {
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) return -1;
    const unsigned char *p = data;
    while (n > 0) {
        const ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A per-process scratch file for one harness. */
typedef struct fuzz_file {
    char path[512];
    int fd;    /* kept open for rewriting */
    int ready; /* 0 before the first use (a static fuzz_file starts zeroed) */
} fuzz_file;

/* The files of this translation unit, removed at exit. */
typedef struct fuzz_registry {
    fuzz_file *made[4];
    int n;
} fuzz_registry;

static inline fuzz_registry *fuzz_files(void) {
    static fuzz_registry r;
    return &r;
}

static inline void fuzz_files_remove(void) {
    fuzz_registry *r = fuzz_files();
    for (int i = 0; i < r->n; i++) {
        unlink(r->made[i]->path);
        close(r->made[i]->fd);
    }
}

/* Put data[0..size) into f (created on first use as <dir>/mixprec-fuzz-<tag>-<pid>
 * with `suffix`) and return its path, or NULL (with a message) if the file cannot be
 * written: the environment is broken, not the parser. */
static inline const char *fuzz_file_put(fuzz_file *f, const char *tag, const char *suffix,
                                        const uint8_t *data, size_t size) {
    fuzz_registry *r = fuzz_files();
    if (!f->ready) {
        if (r->n == (int)(sizeof r->made / sizeof *r->made)) {
            fprintf(stderr, "fuzz_util.h: more than %d scratch files in one harness\n", r->n);
            return NULL;
        }
        snprintf(f->path, sizeof f->path, "%s/mixprec-fuzz-%s-%ld%s", fuzz_scratch_dir(), tag,
                 (long)getpid(), suffix ? suffix : "");
        f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (f->fd < 0) {
            fprintf(stderr, "fuzz_util.h: cannot create %s: %s\n", f->path, strerror(errno));
            return NULL;
        }
        f->ready = 1;
        if (r->n == 0) atexit(fuzz_files_remove);
        r->made[r->n++] = f;
    }
    if (fuzz_write_all(f->fd, data, size) != 0) {
        fprintf(stderr, "fuzz_util.h: cannot write %zu bytes to %s: %s\n", size, f->path,
                strerror(errno));
        return NULL;
    }
    return f->path;
}

#ifdef MIXPREC_LIBFUZZER
/* libFuzzer's entry point for the harness fn: its inputs are 0 (carry on); a harness that
 * could not run (no scratch file) stops the fuzzer rather than pass silently. */
#define FUZZ_ENTRY(fn)                                                                             \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                  \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                                 \
        if (fn(data, size) != 0) {                                                                 \
            fprintf(stderr, "%s: the harness could not run\n", #fn);                               \
            abort();                                                                               \
        }                                                                                          \
        return 0;                                                                                  \
    }
#else
#define FUZZ_ENTRY(fn)
#endif

#endif
