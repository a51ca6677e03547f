/*
 * jsonl.c - JSON objects built field by field into one growing buffer, and a file of them,
 * one per line, flushed after every line. It writes only what a metrics log needs (strings,
 * integers, doubles, booleans, null, nested objects; no arrays) and never parses JSON.
 * Strings are copied byte for byte apart from the escapes, so they must be UTF-8.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base_impl.h"
#include "mixprec/io.h"

/* depth == CLOSED: mxp_json_end has run; fields may no longer be added */
enum { CLOSED = -1 };

/* Record a failure once; the first one wins (it is what went wrong first). */
static void json_fail(mxp_json *o, mxp_status st) {
    if (o->err == MXP_OK) o->err = st;
}

/* Room for n more bytes plus the NUL. 0 (and o->err set) on failure. */
static int reserve(mxp_json *o, size_t n) {
    if (o->err != MXP_OK) return 0;
    if (n > SIZE_MAX / 2 - o->len) {
        json_fail(o, MXP_FAIL(MXP_ERR_NOMEM, "mxp_json: the text would exceed size_t"));
        return 0;
    }
    if (o->len + n + 1 <= o->cap) return 1;
    size_t ncap = o->cap ? o->cap : 256;
    while (ncap < o->len + n + 1) ncap *= 2;
    char *nb = mxp_alloc(ncap);
    if (!nb) {
        json_fail(o, MXP_FAIL(MXP_ERR_NOMEM, "mxp_json: cannot grow the text to %zu bytes", ncap));
        return 0;
    }
    if (o->len) memcpy(nb, o->buf, o->len);
    nb[o->len] = '\0';
    mxp_free(o->buf);
    o->buf = nb;
    o->cap = ncap;
    return 1;
}

static void put(mxp_json *o, const char *s, size_t n) {
    if (!reserve(o, n)) return;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(mxp_json *o, const char *s) { put(o, s, strlen(s)); }

/* s as a JSON string: '"' and '\\' escaped, control characters as \u00XX */
static void put_string(mxp_json *o, const char *s) {
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    const char *run = s; /* the start of bytes not yet copied */
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        const unsigned char c = *p;
        if (c != '\0' && c != '"' && c != '\\' && c >= 0x20) continue;
        put(o, run, (size_t)((const char *)p - run));
        if (c == '\0') break;
        if (c == '"' || c == '\\') {
            const char esc[2] = {'\\', (char)c};
            put(o, esc, 2);
        } else {
            const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, esc, 6);
        }
        run = (const char *)p + 1;
    }
    put(o, "\"", 1);
}

/* The comma (unless the innermost object is still empty) and "key":; 0 if o is unusable. */
static int field(mxp_json *o, const char *key) {
    if (o->err != MXP_OK) return 0;
    if (!o->buf || o->depth == CLOSED) {
        json_fail(o, MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_json: a field added %s",
                              o->buf ? "after mxp_json_end" : "before mxp_json_begin"));
        return 0;
    }
    if (!key) {
        json_fail(o, MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_json: a NULL key"));
        return 0;
    }
    if (o->buf[o->len - 1] != '{') put(o, ",", 1);
    put_string(o, key);
    put(o, ":", 1);
    o->fields++;
    return o->err == MXP_OK;
}

void mxp_json_begin(mxp_json *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    put(o, "{", 1);
}

void mxp_json_str(mxp_json *o, const char *key, const char *value) {
    if (!o || !field(o, key)) return;
    if (value)
        put_string(o, value);
    else
        puts_(o, "null");
}

void mxp_json_int(mxp_json *o, const char *key, int64_t value) {
    if (!o || !field(o, key)) return;
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, value);
    puts_(o, num);
}

void mxp_json_uint_array(mxp_json *o, const char *key, const uint64_t *v, size_t n) {
    if (!o || !field(o, key)) return;
    puts_(o, "[");
    char num[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof num, "%s%" PRIu64, i ? "," : "", v[i]);
        puts_(o, num);
    }
    puts_(o, "]");
}

void mxp_json_num(mxp_json *o, const char *key, double value) {
    if (!o || !field(o, key)) return;
    if (!isfinite(value)) {
        puts_(o, "null"); /* JSON has no NaN or inf */
        return;
    }
    char num[40];
    snprintf(num, sizeof num, "%.9g", value); /* 9 significant digits: any fp32 reads back */
    /* a locale with a decimal comma would break the JSON; the number itself has no ',' */
    for (char *c = num; *c; c++)
        if (*c == ',') *c = '.';
    puts_(o, num);
}

void mxp_json_bool(mxp_json *o, const char *key, int value) {
    if (!o || !field(o, key)) return;
    puts_(o, value ? "true" : "false");
}

void mxp_json_null(mxp_json *o, const char *key) {
    if (!o || !field(o, key)) return;
    puts_(o, "null");
}

void mxp_json_object_begin(mxp_json *o, const char *key) {
    if (!o || !field(o, key)) return;
    put(o, "{", 1);
    if (o->err == MXP_OK) o->depth++;
}

void mxp_json_object_end(mxp_json *o) {
    if (!o || o->err != MXP_OK) return;
    if (o->depth <= 0) {
        json_fail(o,
                  MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_json_object_end: no nested object is open"));
        return;
    }
    put(o, "}", 1);
    if (o->err == MXP_OK) o->depth--;
}

const char *mxp_json_end(mxp_json *o) {
    if (!o) return NULL;
    if (o->err == MXP_OK && !o->buf)
        json_fail(o, MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_json_end: before mxp_json_begin"));
    if (o->err != MXP_OK) return NULL;
    if (o->depth == CLOSED) return o->buf;
    while (o->depth > 0 && o->err == MXP_OK) {
        put(o, "}", 1);
        o->depth--;
    }
    put(o, "}", 1);
    if (o->err != MXP_OK) return NULL;
    o->depth = CLOSED;
    return o->buf;
}

void mxp_json_free(mxp_json *o) {
    if (!o) return;
    mxp_free(o->buf);
    memset(o, 0, sizeof *o);
}

/* ---- JSON lines ------------------------------------------------------------------------------ */

struct mxp_jsonl {
    FILE *f;
    char *path; /* for messages */
};

mxp_status mxp_jsonl_open(mxp_jsonl_t **out, const char *path, int append) {
    if (!out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_jsonl_open: out is NULL");
    *out = NULL;
    if (!path) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_jsonl_open: path is NULL");
    mxp_jsonl_t *j = mxp_alloc(sizeof *j);
    const size_t n = strlen(path);
    char *copy = mxp_alloc(n + 1);
    if (!j || !copy) {
        mxp_free(j);
        mxp_free(copy);
        return MXP_FAIL(MXP_ERR_NOMEM, "mxp_jsonl_open: cannot allocate the writer for %s", path);
    }
    memcpy(copy, path, n + 1);
    j->path = copy;
    j->f = fopen(path, append ? "a" : "w");
    if (!j->f) {
        const int e = errno;
        mxp_free(copy);
        mxp_free(j);
        return MXP_FAIL(MXP_ERR_IO, "cannot open %s for writing: %s", path, strerror(e));
    }
    *out = j;
    return MXP_OK;
}

mxp_status mxp_jsonl_write(mxp_jsonl_t *j, mxp_json *o) {
    if (!j || !o)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_jsonl_write: %s is NULL", j ? "o" : "j");
    const char *text = mxp_json_end(o);
    if (!text) {
        /* the failure was recorded when it happened; say it again, now, for this call */
        if (o->err == MXP_ERR_NOMEM)
            return MXP_FAIL(MXP_ERR_NOMEM,
                            "%s: the line was not written: out of memory while "
                            "building it",
                            j->path);
        return MXP_FAIL(o->err, "%s: the line was not written: the object was built wrongly",
                        j->path);
    }
    errno = 0;
    if (fwrite(text, 1, o->len, j->f) != o->len || fputc('\n', j->f) == EOF || fflush(j->f) != 0) {
        const int e = errno;
        clearerr(j->f);
        return MXP_FAIL(MXP_ERR_IO, "cannot write to %s: %s", j->path,
                        e ? strerror(e) : "write failed");
    }
    return MXP_OK;
}

mxp_status mxp_jsonl_close(mxp_jsonl_t *j) {
    if (!j) return MXP_OK;
    errno = 0;
    const int bad = fflush(j->f) != 0;
    const int e = errno;
    const int closed_bad = fclose(j->f) != 0;
    mxp_status st = MXP_OK;
    if (bad || closed_bad)
        st =
            MXP_FAIL(MXP_ERR_IO, "cannot close %s: %s", j->path, e ? strerror(e) : strerror(errno));
    mxp_free(j->path);
    mxp_free(j);
    return st;
}
