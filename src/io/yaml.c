/*
 * yaml.c - a Trainer-style argument file: one YAML document whose top level maps scalar keys
 * to scalar values, parsed with libyaml's event API into a list of strings in file order.
 * It does not interpret values (booleans, numbers stay text for the caller) and refuses
 * everything a flat argument file has no use for: sequences, nested mappings, anchors,
 * aliases, tags, duplicate keys, more than one document.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "base/base_impl.h"
#include "mixprec/io.h"

enum { MAX_FILE = 64 << 20 }; /* an argument file is a few hundred bytes; refuse a disk image */

/* The whole file into a buffer from the hook; *len bytes (buf is NULL for an empty file). */
static mxp_status read_file(const char *path, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return MXP_FAIL(MXP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 0;
    mxp_status st = MXP_OK;
    for (;;) {
        if (*len == cap) {
            if (cap >= MAX_FILE) {
                st = MXP_FAIL(MXP_ERR_FORMAT, "%s: larger than %d MiB, not an argument file", path,
                              MAX_FILE >> 20);
                break;
            }
            const size_t ncap = cap ? cap * 2 : 4096;
            unsigned char *nb = mxp_alloc(ncap);
            if (!nb) {
                st =
                    MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, ncap);
                break;
            }
            if (*len) memcpy(nb, *buf, *len);
            mxp_free(*buf);
            *buf = nb;
            cap = ncap;
        }
        const size_t k = fread(*buf + *len, 1, cap - *len, f);
        *len += k;
        if (k == 0) {
            if (ferror(f)) st = MXP_FAIL(MXP_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st != MXP_OK) {
        mxp_free(*buf);
        *buf = NULL;
        *len = 0;
    }
    return st;
}

/* 1-based line of byte offset off (libyaml's reader errors give an offset, not a line). */
static int line_of(const unsigned char *buf, size_t len, size_t off) {
    int line = 1;
    for (size_t i = 0; i < off && i < len; i++) line += buf[i] == '\n';
    return line;
}

/* A copy of s[0..n) from the hook, NUL-terminated. */
static char *dup_n(const char *s, size_t n) {
    char *p = mxp_alloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Append (key, value) at line to out; cap is the items' capacity. */
static mxp_status push(mxp_kvlist *out, int *cap, const yaml_event_t *key, const yaml_event_t *val,
                       const char *path) {
    if (out->n == *cap) {
        const int ncap = *cap ? *cap * 2 : 16;
        mxp_kv *ni = mxp_alloc_array((size_t)ncap, sizeof *ni);
        if (!ni) return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %d entries", path, ncap);
        if (out->n) memcpy(ni, out->items, (size_t)out->n * sizeof *ni);
        mxp_free(out->items);
        out->items = ni;
        *cap = ncap;
    }
    mxp_kv *kv = &out->items[out->n];
    kv->key = dup_n((const char *)key->data.scalar.value, key->data.scalar.length);
    kv->value =
        kv->key ? dup_n((const char *)val->data.scalar.value, val->data.scalar.length) : NULL;
    kv->line = (int)key->start_mark.line + 1;
    if (!kv->value) {
        mxp_free(kv->key);
        kv->key = NULL;
        return MXP_FAIL(MXP_ERR_NOMEM, "%s:%d: cannot allocate the entry", path, kv->line);
    }
    out->n++;
    return MXP_OK;
}

/* What an event is, for messages. */
static const char *event_name(yaml_event_type_t t) {
    switch (t) {
    case YAML_SEQUENCE_START_EVENT: return "a sequence";
    case YAML_MAPPING_START_EVENT: return "a nested mapping";
    case YAML_ALIAS_EVENT: return "an alias";
    case YAML_SCALAR_EVENT: return "a scalar";
    case YAML_DOCUMENT_START_EVENT: return "a second document";
    default: return "an unexpected YAML construct";
    }
}

/* A scalar usable as a key or value: no anchor, no tag, no NUL inside. */
static mxp_status check_scalar(const yaml_event_t *e, const char *path, const char *what) {
    const int line = (int)e->start_mark.line + 1;
    if (e->data.scalar.anchor)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: anchors (&%s) are not supported in a flat file",
                        path, line, (const char *)e->data.scalar.anchor);
    if (e->data.scalar.tag)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: tags (%s) are not supported in a flat file", path,
                        line, (const char *)e->data.scalar.tag);
    if (strlen((const char *)e->data.scalar.value) != e->data.scalar.length)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: the %s contains a NUL character", path, line, what);
    return MXP_OK;
}

/* The state of the flat grammar: stream (document (mapping (key value)*)?)? */
enum stage { BEFORE_DOC, BEFORE_TOP, IN_MAP_KEY, IN_MAP_VALUE, AFTER_TOP, AFTER_DOC, DONE };

static mxp_status parse(mxp_kvlist *out, yaml_parser_t *p, const unsigned char *buf, size_t len,
                        const char *path) {
    enum stage stage = BEFORE_DOC;
    int cap = 0;
    yaml_event_t key, ev;
    int have_key = 0;
    mxp_status st = MXP_OK;
    while (st == MXP_OK && stage != DONE) {
        if (!yaml_parser_parse(p, &ev)) {
            if (p->error == YAML_MEMORY_ERROR)
                st = MXP_FAIL(MXP_ERR_NOMEM, "%s: libyaml is out of memory", path);
            else if (p->error == YAML_READER_ERROR)
                st = MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: not YAML text: %s (byte %zu)", path,
                              line_of(buf, len, p->problem_offset),
                              p->problem ? p->problem : "unreadable", p->problem_offset);
            else
                st = MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: YAML syntax error: %s%s%s", path,
                              (int)p->problem_mark.line + 1, p->problem ? p->problem : "unknown",
                              p->context ? " " : "", p->context ? p->context : "");
            break;
        }
        const int line = (int)ev.start_mark.line + 1;
        int keep = 0; /* the event becomes `key` and is deleted later */
        switch (ev.type) {
        case YAML_STREAM_START_EVENT: break;
        case YAML_STREAM_END_EVENT: stage = DONE; break;
        case YAML_DOCUMENT_START_EVENT:
            if (stage == BEFORE_DOC)
                stage = BEFORE_TOP;
            else
                st =
                    MXP_FAIL(MXP_ERR_FORMAT,
                             "%s:%d: a second YAML document; an argument file has one", path, line);
            break;
        case YAML_DOCUMENT_END_EVENT: stage = AFTER_DOC; break;
        case YAML_MAPPING_START_EVENT:
            if (stage != BEFORE_TOP) {
                st = MXP_FAIL(MXP_ERR_FORMAT,
                              "%s:%d: %s where a scalar was expected; only `key: value` lines "
                              "are supported",
                              path, line, event_name(ev.type));
            } else if (ev.data.mapping_start.anchor || ev.data.mapping_start.tag) {
                st = MXP_FAIL(MXP_ERR_FORMAT,
                              "%s:%d: an anchor or tag on the top-level mapping is not supported",
                              path, line);
            } else {
                stage = IN_MAP_KEY;
            }
            break;
        case YAML_MAPPING_END_EVENT: stage = AFTER_TOP; break;
        case YAML_SCALAR_EVENT:
            if (stage == BEFORE_TOP) {
                /* "---" alone (or "~"-less empty document) is an empty mapping; any other
                 * top-level scalar is not a mapping at all */
                if (ev.data.scalar.length == 0 && !ev.data.scalar.anchor && !ev.data.scalar.tag &&
                    ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                    stage = AFTER_TOP;
                } else {
                    st = MXP_FAIL(MXP_ERR_FORMAT,
                                  "%s:%d: the top level is a scalar, not a mapping of `key: "
                                  "value` lines",
                                  path, line);
                }
            } else if (stage == IN_MAP_KEY) {
                st = check_scalar(&ev, path, "key");
                if (st == MXP_OK && ev.data.scalar.length == 0)
                    st = MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: an empty key", path, line);
                for (int i = 0; st == MXP_OK && i < out->n; i++)
                    if (strcmp(out->items[i].key, (const char *)ev.data.scalar.value) == 0)
                        st =
                            MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: duplicate key '%s' (first at line %d)",
                                     path, line, out->items[i].key, out->items[i].line);
                if (st == MXP_OK) {
                    key = ev;
                    have_key = keep = 1;
                    stage = IN_MAP_VALUE;
                }
            } else if (stage == IN_MAP_VALUE) {
                st = check_scalar(&ev, path, "value");
                if (st == MXP_OK) st = push(out, &cap, &key, &ev, path);
                yaml_event_delete(&key);
                have_key = 0;
                stage = IN_MAP_KEY;
            } else {
                st = MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: unexpected scalar", path, line);
            }
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_ALIAS_EVENT:
        default:
            st = MXP_FAIL(MXP_ERR_FORMAT,
                          "%s:%d: %s is not supported; only `key: value` lines with scalar "
                          "values are",
                          path, line, event_name(ev.type));
            break;
        }
        if (!keep) yaml_event_delete(&ev);
    }
    if (have_key) yaml_event_delete(&key);
    return st;
}

mxp_status mxp_yaml_read_flat(mxp_kvlist *out, const char *path) {
    if (!out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_yaml_read_flat: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_yaml_read_flat: path is NULL");
    unsigned char *buf;
    size_t len;
    MXP_TRY(read_file(path, &buf, &len));
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        mxp_free(buf);
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: libyaml cannot allocate its parser", path);
    }
    static const unsigned char empty[1] = {0};
    yaml_parser_set_input_string(&p, buf ? buf : empty, len);
    const mxp_status st = parse(out, &p, buf ? buf : empty, len, path);
    yaml_parser_delete(&p);
    mxp_free(buf);
    if (st != MXP_OK) mxp_kvlist_free(out);
    return st;
}

const char *mxp_kvlist_get(const mxp_kvlist *kv, const char *key) {
    if (!kv || !key) return NULL;
    for (int i = 0; i < kv->n; i++)
        if (strcmp(kv->items[i].key, key) == 0) return kv->items[i].value;
    return NULL;
}

void mxp_kvlist_free(mxp_kvlist *kv) {
    if (!kv) return;
    for (int i = 0; i < kv->n; i++) {
        mxp_free(kv->items[i].key);
        mxp_free(kv->items[i].value);
    }
    mxp_free(kv->items);
    memset(kv, 0, sizeof *kv);
}
