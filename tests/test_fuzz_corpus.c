/*
 * test_fuzz_corpus.c - the fuzz corpus as regression tests: every file of
 * fuzz/corpus/<target>/ (hand-made seeds, and crash-* inputs that once found a bug) goes
 * through its harness from fuzz/, built here without libFuzzer. A harness aborts on a broken
 * invariant, and the sanitizer build catches what the fuzzer would; a missing or empty
 * corpus directory is a failure, never a silent pass. It does not fuzz (scripts/fuzz.sh does).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "fuzz_util.h"

#ifndef MIXPREC_SOURCE_DIR
#error "MIXPREC_SOURCE_DIR (the source tree, where fuzz/corpus is) must be defined"
#endif

typedef struct target {
    const char *name; /* fuzz/corpus/<name>/ */
    int (*fn)(const uint8_t *data, size_t size);
} target;

static const target targets[] = {
    {"safetensors", mixprec_fuzz_safetensors}, {"idx", mixprec_fuzz_idx},
    {"yaml_args", mixprec_fuzz_yaml_args},     {"config", mixprec_fuzz_config},
    {"launch", mixprec_fuzz_launch},
};

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The whole file in a malloc'd buffer of exactly its size (so ASan sees a read past it). */
static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t n = 0;
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && sb.st_size >= 0) {
        n = (size_t)sb.st_size;
        buf = malloc(n ? n : 1);
        if (buf && fread(buf, 1, n, f) != n) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    *size = n;
    return buf;
}

/* Run every file of the target's corpus directory (in name order) through its harness. */
static void run_target(const target *t) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", MIXPREC_SOURCE_DIR, t->name);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "%s: cannot open the corpus directory: %s", dir, strerror(errno));
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) exit(2);
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) exit(2);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    CHECK(n > 0, "%s: the corpus is empty", dir);

    size_t crashes = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t size;
        uint8_t *data = read_file(path, &size);
        CHECK(data != NULL, "%s: cannot read: %s", path, strerror(errno));
        if (data) {
            /* a broken invariant or a sanitizer stops the process inside the harness: name
             * the input first (stderr is unbuffered) */
            fprintf(stderr, "%s\n", path);
            const int rc = t->fn(data, size);
            CHECK(rc == 0, "%s: harness %s returned %d (it could not run)", path, t->name, rc);
            bytes += size;
            crashes += strncmp(names[i], "crash-", 6) == 0;
        }
        free(data);
        free(names[i]);
    }
    free(names);
    printf("%-12s %4zu inputs (%zu crash-*), %zu bytes\n", t->name, n, crashes, bytes);
}

int main(void) {
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) run_target(&targets[i]);
    return check_exit("test_fuzz_corpus");
}
