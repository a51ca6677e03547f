/*
 * error.c - status names, the per-thread last-error message, the version.
 * The message buffer is thread-local so concurrent callers never see each
 * other's errors; it is never allocated, so reporting an out-of-memory
 * failure cannot itself fail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base_impl.h"

static _Thread_local char last_error[512];

const char *mxp_version(void) { return MXP_VERSION_STRING; }

const char *mxp_status_str(mxp_status st) {
    switch (st) {
    case MXP_OK: return "ok";
    case MXP_ERR_INVALID_ARG: return "invalid argument";
    case MXP_ERR_SHAPE: return "shape mismatch";
    case MXP_ERR_DTYPE: return "unsupported dtype";
    case MXP_ERR_NOMEM: return "out of memory";
    case MXP_ERR_IO: return "i/o error";
    case MXP_ERR_FORMAT: return "bad format";
    case MXP_ERR_BACKEND: return "backend unavailable";
    case MXP_ERR_DIST: return "distributed error";
    case MXP_ERR_NONFINITE: return "non-finite value";
    }
    return "unknown status";
}

const char *mxp_last_error(void) { return last_error; }

void mxp_clear_error(void) { last_error[0] = '\0'; }

mxp_status mxp_error_set(mxp_status st, const char *file, int line, const char *fmt, ...) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(last_error, sizeof last_error, "%s:%d: ", base, line);
    if (n < 0 || (size_t)n >= sizeof last_error) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
    va_end(ap);
    return st;
}

const char *mxp_last_error_text(void) {
    const char *p = last_error;
    while (*p && *p != ':' && *p != ' ') p++; /* the file name */
    if (*p != ':' || p[1] < '0' || p[1] > '9') return last_error;
    p++;
    while (*p >= '0' && *p <= '9') p++; /* the line */
    return p[0] == ':' && p[1] == ' ' ? p + 2 : last_error;
}
