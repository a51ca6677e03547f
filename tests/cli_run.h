/*
 * cli_run.h - what the tests of the `mixprec` command share: run the built
 * binary with arguments and extra environment, capture its exit status,
 * stdout and stderr (killing it if it hangs), and expect a one-line usage error.
 */
#ifndef MIXPREC_TEST_CLI_RUN_H
#define MIXPREC_TEST_CLI_RUN_H

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

extern char **environ;

static const char *binary = MIXPREC_BINARY_DIR "/mixprec";

/* ---- running the binary ------------------------------------------------ */

typedef struct result {
    int status; /* exit status; 128 + signal if killed; -1 if it could not run */
    char *out, *err;
} result;

static char *slurp(int fd) {
    off_t size = lseek(fd, 0, SEEK_END);
    lseek(fd, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    size_t got = 0;
    while (buf && got < (size_t)size) {
        ssize_t r = read(fd, buf + got, (size_t)size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (buf) buf[got] = '\0';
    return buf;
}

static void result_free(result *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Run the binary with argv (NULL-terminated, without argv[0]). env: "K=V" to
 * set and "K" to remove, NULL-terminated or NULL. MIXPREC_ISA,
 * MIXPREC_NUM_THREADS and OMP_NUM_THREADS are always removed first, so the
 * caller's shell cannot change what the tests see. */
static result run_env(const char *const *env, const char *const *args) {
    result r = {-1, NULL, NULL};
    char *argv[512];
    int argc = 0;
    argv[argc++] = (char *)binary;
    for (int i = 0; args[i] && argc < 510; i++) argv[argc++] = (char *)args[i];
    argv[argc] = NULL;

    size_t nenv = 0;
    while (environ[nenv]) nenv++;
    char **envp = calloc(nenv + 32, sizeof *envp);
    size_t ne = 0;
    for (size_t i = 0; i < nenv; i++) {
        const char *e = environ[i];
        if (strncmp(e, "MIXPREC_ISA=", 12) == 0 || strncmp(e, "MIXPREC_NUM_THREADS=", 20) == 0 ||
            strncmp(e, "OMP_NUM_THREADS=", 16) == 0)
            continue;
        envp[ne++] = environ[i];
    }
    for (int i = 0; env && env[i] && ne < nenv + 30; i++)
        if (strchr(env[i], '=')) envp[ne++] = (char *)env[i];
    envp[ne] = NULL;

    char out_path[] = "/tmp/mixprec_test_out_XXXXXX", err_path[] = "/tmp/mixprec_test_err_XXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    if (fo < 0 || fe < 0) {
        fprintf(stderr, "cannot make temporary files\n");
        exit(1);
    }
    unlink(out_path);
    unlink(err_path);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fo, 1);
    posix_spawn_file_actions_adddup2(&fa, fe, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, binary, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    if (rc == 0) {
        /* a hung command fails the test instead of stalling ctest */
        int st = 0;
        struct timespec nap = {0, 2000000};
        for (long waited = 0;; waited++) {
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid) break;
            if (waited > 150000) { /* ~300 s */
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                break;
            }
            nanosleep(&nap, NULL);
        }
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    r.out = slurp(fo);
    r.err = slurp(fe);
    close(fo);
    close(fe);
    return r;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define RUN(...) run_env(NULL, ARGS(__VA_ARGS__))

static int count_char(const char *s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

static int count_lines(const char *s) { return count_char(s, '\n'); }

/* Expect a usage error: status 2, nothing on stdout, one line on stderr that
 * starts with "mixprec: ". */
static void expect_usage_env(const char *what, const char *const *env, const char *const *args,
                             int status) {
    result r = run_env(env, args);
    CHECK(r.status == status, "%s: exit %d, want %d (stderr: %s)", what, r.status, status, r.err);
    CHECK(r.out && r.out[0] == '\0', "%s: printed to stdout: %.200s", what, r.out);
    CHECK(r.err && count_lines(r.err) == 1 && r.err[strlen(r.err) - 1] == '\n',
          "%s: want exactly one line on stderr, got: %.300s", what, r.err);
    CHECK(r.err && strncmp(r.err, "mixprec: ", 9) == 0, "%s: stderr: %.200s", what, r.err);
    CHECK(r.err && strlen(r.err) < 400, "%s: stderr line is %zu bytes", what, strlen(r.err));
    result_free(&r);
}

#define EXPECT_USAGE(...) expect_usage_env(#__VA_ARGS__, NULL, ARGS(__VA_ARGS__), 2)

#endif
