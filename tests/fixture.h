/*
 * fixture.h - header-only reader for the tests' named-tensor fixtures (tests/reference/
 * ops_ref.bin, written by tests/reference/gen_ops.py). Plain C11, malloc/free only.
 *
 * File format, all little-endian:
 *   char magic[8] = "MXPFIX01"; uint32 nrecords; then per record:
 *   uint16 name_len; char name[name_len] (ASCII, no NUL); uint8 kind (0 float32, 1 int32);
 *   uint8 ndim (0..6); int64 shape[ndim]; numel elements of 4 bytes (numel = product of the
 *   shape, 1 for ndim 0).
 *
 * fixture_load reads the whole file and validates every size against the bytes that are there
 * (bad magic, truncation, trailing bytes, kind > 1, ndim > 6, negative or overflowing shapes,
 * empty, NUL-containing or duplicate names all give -1). Elements are decoded byte by byte into
 * aligned storage, so the returned pointers are valid float / int32_t arrays on any host.
 * On failure *fx is left empty; fixture_free is safe on it either way.
 *
 *   fixture fx;
 *   if (fixture_load(&fx, path) != 0) ...;
 *   int64_t n;
 *   const float *y = fixture_f32(&fx, "linear.y", &n);     // NULL if absent or not float32
 *   int64_t shape[6]; int nd = fixture_shape(&fx, "linear.y", shape);
 *   fixture_free(&fx);
 */
#ifndef MIXPREC_TEST_FIXTURE_H
#define MIXPREC_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4 && sizeof(int32_t) == 4, "fixture.h needs a 4-byte float");

#define FIXTURE_MAX_DIMS 6
#define FIXTURE_F32 0
#define FIXTURE_I32 1

typedef struct fixture_record {
    const char *name; /* NUL-terminated copy */
    int kind;         /* FIXTURE_F32 or FIXTURE_I32 */
    int ndim;
    int64_t shape[FIXTURE_MAX_DIMS];
    int64_t numel;
    void *data; /* numel float or int32_t elements (stored as that type) */
} fixture_record;

typedef struct fixture {
    int64_t count;
    fixture_record *records;
    char *names;    /* all names, NUL-terminated, back to back */
    void *data;     /* all elements, 4 bytes each */
} fixture;

static inline void fixture_free(fixture *fx) {
    if (!fx) return;
    free(fx->records);
    free(fx->names);
    free(fx->data);
    fx->count = 0;
    fx->records = NULL;
    fx->names = NULL;
    fx->data = NULL;
}

/* little-endian readers on an in-memory buffer; the caller has checked the bounds */
static inline uint64_t fixture__le(const unsigned char *p, int nbytes) {
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* reads the whole file; NULL on any error */
static inline unsigned char *fixture__read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
        if (len == cap) {
            unsigned char *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = len;
    return buf;
}

/*
 * Walks the records of buf[0..size). With fx == NULL it only validates and counts: the number
 * of records, the bytes of names (NUL included) and the number of elements. With fx it fills
 * the records, names and elements (allocated from those counts). 0 ok, -1 malformed.
 */
static inline int fixture__walk(const unsigned char *buf, size_t size, fixture *fx,
                                int64_t *nrec, size_t *name_bytes, size_t *nelem) {
    static const char magic[8] = {'M', 'X', 'P', 'F', 'I', 'X', '0', '1'};
    if (size < 12 || memcmp(buf, magic, 8) != 0) return -1;
    uint64_t count = fixture__le(buf + 8, 4);
    size_t pos = 12, names = 0, elems = 0;
    /* every record needs at least 2 + 1 + 1 + 1 bytes (a name of at least one byte) */
    if (count > (size - pos) / 5) return -1;
    for (uint64_t r = 0; r < count; r++) {
        if (size - pos < 2) return -1;
        size_t nlen = (size_t)fixture__le(buf + pos, 2);
        pos += 2;
        if (nlen == 0 || size - pos < nlen) return -1;
        const unsigned char *name = buf + pos;
        if (memchr(name, 0, nlen)) return -1;
        pos += nlen;
        if (size - pos < 2) return -1;
        int kind = buf[pos], ndim = buf[pos + 1];
        pos += 2;
        if (kind > FIXTURE_I32 || ndim > FIXTURE_MAX_DIMS) return -1;
        if ((size - pos) / 8 < (size_t)ndim) return -1;
        int64_t shape[FIXTURE_MAX_DIMS] = {0};
        uint64_t numel = 1;
        uint64_t avail = (uint64_t)(size - pos - 8 * (size_t)ndim) / 4; /* elements that fit */
        int has_zero = 0;
        for (int d = 0; d < ndim; d++) {
            uint64_t s = fixture__le(buf + pos + 8 * (size_t)d, 8);
            if (s > (uint64_t)INT64_MAX) return -1; /* negative */
            shape[d] = (int64_t)s;
            has_zero |= s == 0;
        }
        if (has_zero)
            numel = 0;
        else
            for (int d = 0; d < ndim; d++) { /* numel <= avail, checked without overflow */
                if (numel > avail / (uint64_t)shape[d]) return -1;
                numel *= (uint64_t)shape[d];
            }
        pos += 8 * (size_t)ndim;
        if (numel > avail) return -1;
        if (fx) {
            fixture_record *rec = &fx->records[r];
            char *dst = fx->names + names;
            memcpy(dst, name, nlen);
            dst[nlen] = '\0';
            for (uint64_t q = 0; q < r; q++) /* duplicates would make lookups ambiguous */
                if (strcmp(fx->records[q].name, dst) == 0) return -1;
            rec->name = dst;
            rec->kind = kind;
            rec->ndim = ndim;
            for (int d = 0; d < FIXTURE_MAX_DIMS; d++) rec->shape[d] = d < ndim ? shape[d] : 0;
            rec->numel = (int64_t)numel;
            /* store through float / int32_t lvalues so that the arena's effective type is
               what fixture_f32 / fixture_i32 read it as */
            rec->data = (unsigned char *)fx->data + 4 * elems;
            for (uint64_t i = 0; i < numel; i++) {
                uint32_t bits = (uint32_t)fixture__le(buf + pos + 4 * i, 4);
                if (kind == FIXTURE_F32) {
                    float v;
                    memcpy(&v, &bits, sizeof v);
                    ((float *)rec->data)[i] = v;
                } else {
                    int32_t v;
                    memcpy(&v, &bits, sizeof v);
                    ((int32_t *)rec->data)[i] = v;
                }
            }
        }
        names += nlen + 1;
        elems += (size_t)numel;
        pos += 4 * (size_t)numel;
    }
    if (pos != size) return -1; /* trailing bytes */
    *nrec = (int64_t)count;
    *name_bytes = names;
    *nelem = elems;
    return 0;
}

/* 0 ok, -1 on any error (unreadable file, malformed contents, out of memory) */
static inline int fixture_load(fixture *fx, const char *path) {
    if (!fx) return -1;
    memset(fx, 0, sizeof *fx);
    if (!path) return -1;
    size_t size = 0;
    unsigned char *buf = fixture__read_file(path, &size);
    if (!buf) return -1;
    int64_t nrec;
    size_t name_bytes, nelem;
    int rc = fixture__walk(buf, size, NULL, &nrec, &name_bytes, &nelem);
    if (rc == 0) {
        /* +1: malloc(0) may return NULL */
        fx->records = calloc((size_t)nrec + 1, sizeof *fx->records);
        fx->names = malloc(name_bytes + 1);
        fx->data = nelem < SIZE_MAX / 4 ? malloc((nelem + 1) * 4) : NULL;
        if (!fx->records || !fx->names || !fx->data) rc = -1;
    }
    if (rc == 0) rc = fixture__walk(buf, size, fx, &nrec, &name_bytes, &nelem);
    free(buf);
    if (rc != 0) {
        fixture_free(fx);
        return -1;
    }
    fx->count = nrec;
    return 0;
}

static inline const fixture_record *fixture_find(const fixture *fx, const char *name) {
    if (!fx || !name) return NULL;
    for (int64_t i = 0; i < fx->count; i++)
        if (strcmp(fx->records[i].name, name) == 0) return &fx->records[i];
    return NULL;
}

/* the float32 record `name`, its element count in *numel (if numel is not NULL); NULL if
   absent or not float32 */
static inline const float *fixture_f32(const fixture *fx, const char *name, int64_t *numel) {
    const fixture_record *r = fixture_find(fx, name);
    if (!r || r->kind != FIXTURE_F32) return NULL;
    if (numel) *numel = r->numel;
    return (const float *)r->data;
}

/* the int32 record `name`; NULL if absent or not int32 */
static inline const int32_t *fixture_i32(const fixture *fx, const char *name, int64_t *numel) {
    const fixture_record *r = fixture_find(fx, name);
    if (!r || r->kind != FIXTURE_I32) return NULL;
    if (numel) *numel = r->numel;
    return (const int32_t *)r->data;
}

/* ndim of `name` (0 for a scalar) with its dims in shape[0..ndim), or -1 if absent */
static inline int fixture_shape(const fixture *fx, const char *name,
                                int64_t shape[FIXTURE_MAX_DIMS]) {
    const fixture_record *r = fixture_find(fx, name);
    if (!r) return -1;
    if (shape)
        for (int d = 0; d < FIXTURE_MAX_DIMS; d++) shape[d] = d < r->ndim ? r->shape[d] : 0;
    return r->ndim;
}

#endif
