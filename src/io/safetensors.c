/*
 * safetensors.c - huggingface/safetensors files: open validates the whole header (jansson) before
 * any data is read; read converts one tensor with pread on the kept descriptor; write is atomic.
 * It does not mmap, handles only F32/F16/BF16, and assumes a little-endian host.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base_impl.h"
#include "io/io_impl.h"
#include "mixprec/io.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c copies tensor bytes as they are: it needs a little-endian host"
#endif

/* The header may be at most this long (what the reference implementation accepts too). */
#define MAX_HEADER 100000000ull
/* Conversions on read and write go through a buffer of at most this many bytes. */
#define CHUNK ((size_t)1 << 20)

struct mxp_safetensors {
    int fd;                      /* kept open until close; pread only, so reads may be parallel */
    int n, nmeta;                /* tensors, metadata pairs */
    uint64_t data_start;         /* 8 + header length: where offset 0 of the data section is */
    uint64_t data_size;          /* bytes from data_start to the end of the file */
    mxp_st_info *info;           /* (n) in header order */
    const mxp_st_info **by_name; /* (n) sorted by name, for find */
    const char **meta;           /* (2 * nmeta) key, value, key, value, ... */
    const char *path;            /* for messages */
    /* the arrays and the strings follow in the same allocation */
};

/* ---- dtypes as the format spells them ---------------------------------------------------- */

static const char *const st_dtype_names[MXP_DTYPE_COUNT] = {"F32", "F16", "BF16"};

static int st_dtype_parse(const char *s, mxp_dtype *out) {
    for (int d = 0; d < MXP_DTYPE_COUNT; d++)
        if (strcmp(s, st_dtype_names[d]) == 0) {
            *out = (mxp_dtype)d;
            return 1;
        }
    return 0;
}

/* "(10, 20)" or "()" into buf. */
static const char *shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t len = 0;
    buf[0] = '\0';
    len += (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < ndim && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (len < size) snprintf(buf + len, size - len, ")");
    return buf;
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Read exactly n bytes at off. what names the bytes for the message. */
static mxp_status pread_full(int fd, void *dst, size_t n, uint64_t off, const char *path,
                             const char *what) {
    unsigned char *p = dst;
    while (n > 0) {
        const ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return MXP_FAIL(MXP_ERR_IO, "%s: reading %s failed: %s", path, what, strerror(errno));
        }
        if (r == 0)
            return MXP_FAIL(MXP_ERR_IO,
                            "%s: short read of %s: the file ends at byte %" PRIu64
                            ", %zu bytes early (truncated?)",
                            path, what, off, n);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return MXP_OK;
}

/* A non-negative JSON integer, or -1. */
static int64_t json_nonneg(const json_t *v) {
    if (!json_is_integer(v)) return -1;
    const json_int_t x = json_integer_value(v);
    return x < 0 ? -1 : (int64_t)x;
}

/* Validate one tensor entry {"dtype", "shape", "data_offsets"} and fill *out (but its name).
 * Other keys are ignored, as the reference reader does. */
static mxp_status parse_entry(const char *path, const char *name, const json_t *v,
                              mxp_st_info *out) {
    if (!json_is_object(v))
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: entry '%s' is not an object {\"dtype\", \"shape\", \"data_offsets\"}",
                        path, name);
    const json_t *dtype = json_object_get(v, "dtype");
    const json_t *shape = json_object_get(v, "shape");
    const json_t *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dtype))
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: tensor '%s' has no \"dtype\" string", path, name);
    if (!st_dtype_parse(json_string_value(dtype), &out->dtype))
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: dtype '%s' of '%s' is not supported (F32, F16, BF16)",
                        path, json_string_value(dtype), name);
    if (!json_is_array(shape))
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: tensor '%s' has no \"shape\" array", path, name);
    const size_t nd = json_array_size(shape);
    if (nd > MXP_MAX_DIMS)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions, more than %d", path,
                        name, nd, MXP_MAX_DIMS);
    out->ndim = (int)nd;
    /* numel * element size, in bytes; must fit in int64 (and so in off_t) */
    uint64_t bytes = mxp_dtype_size(out->dtype);
    int overflow = 0;
    for (int i = 0; i < MXP_MAX_DIMS; i++) out->shape[i] = 1;
    for (size_t i = 0; i < nd; i++) {
        const json_t *e = json_array_get(shape, i);
        if (!json_is_integer(e))
            return MXP_FAIL(MXP_ERR_FORMAT, "%s: tensor '%s' shape entry %zu is not an integer",
                            path, name, i);
        const int64_t s = json_nonneg(e);
        if (s < 0)
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: tensor '%s' shape entry %zu is negative (%" PRId64 ")", path, name,
                            i, (int64_t)json_integer_value(e));
        out->shape[i] = s;
        if (!overflow && __builtin_mul_overflow(bytes, (uint64_t)s, &bytes)) overflow = 1;
    }
    if (overflow || bytes > (uint64_t)INT64_MAX) {
        char sb[160];
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: tensor '%s' shape %s has too many elements to address",
                        path, name, shape_str(sb, sizeof sb, out->ndim, out->shape));
    }
    int64_t b = -1, e = -1;
    if (json_is_array(offs) && json_array_size(offs) == 2) {
        b = json_nonneg(json_array_get(offs, 0));
        e = json_nonneg(json_array_get(offs, 1));
    }
    if (b < 0 || e < 0)
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: tensor '%s' needs \"data_offsets\": [begin, end], two non-negative "
                        "integers",
                        path, name);
    out->begin = (uint64_t)b;
    out->end = (uint64_t)e;
    if (out->end < out->begin || out->end - out->begin != bytes) {
        char sb[160];
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                        "] but %s %s needs %" PRIu64 " bytes",
                        path, name, out->begin, out->end, st_dtype_names[out->dtype],
                        shape_str(sb, sizeof sb, out->ndim, out->shape), bytes);
    }
    return MXP_OK;
}

static int cmp_offsets(const void *a, const void *b) {
    const mxp_st_info *x = *(const mxp_st_info *const *)a, *y = *(const mxp_st_info *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_names(const void *a, const void *b) {
    const mxp_st_info *x = *(const mxp_st_info *const *)a, *y = *(const mxp_st_info *const *)b;
    return strcmp(x->name, y->name);
}

/* Every range inside the data section, and sorted they tile it from 0 to its end: no overlap,
 * no gap, no trailing bytes (the format requires the buffer to be entirely indexed). Sorts
 * f->by_name by offsets (the caller re-sorts it by name). */
static mxp_status check_ranges(mxp_safetensors_t *f) {
    for (int i = 0; i < f->n; i++) {
        const mxp_st_info *t = &f->info[i];
        if (t->end > f->data_size)
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64
                            "] lie past the end of the %" PRIu64 "-byte data section",
                            f->path, t->name, t->begin, t->end, f->data_size);
    }
    if (f->n > 1) qsort((void *)f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_offsets);
    uint64_t pos = 0;
    const mxp_st_info *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        const mxp_st_info *t = f->by_name[i];
        if (t->begin < pos)
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 "] and '%s' [%" PRIu64
                            ", %" PRIu64 "] overlap",
                            f->path, prev->name, prev->begin, prev->end, t->name, t->begin, t->end);
        if (t->begin > pos) {
            if (prev)
                return MXP_FAIL(MXP_ERR_FORMAT,
                                "%s: no tensor covers data bytes [%" PRIu64 ", %" PRIu64
                                ") between '%s' and '%s'",
                                f->path, pos, t->begin, prev->name, t->name);
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: no tensor covers data bytes [0, %" PRIu64 ") before '%s'", f->path,
                            t->begin, t->name);
        }
        pos = t->end;
        prev = t;
    }
    if (pos != f->data_size)
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: no tensor covers data bytes [%" PRIu64 ", %" PRIu64
                        ") at the end of the file",
                        f->path, pos, f->data_size);
    return MXP_OK;
}

/* Size the handle (counts and string bytes) and check __metadata__, before allocating. */
static mxp_status size_header(const char *path, json_t *root, int *n, int *nmeta,
                              size_t *strbytes) {
    const char *key;
    json_t *v;
    *n = *nmeta = 0;
    *strbytes = 0;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") != 0) {
            if (*n == INT32_MAX) return MXP_FAIL(MXP_ERR_FORMAT, "%s: too many tensors", path);
            (*n)++;
            *strbytes += strlen(key) + 1;
            continue;
        }
        if (!json_is_object(v))
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: __metadata__ must map strings to strings; it is not an object",
                            path);
        const char *mk;
        json_t *mv;
        json_object_foreach(v, mk, mv) {
            if (!json_is_string(mv))
                return MXP_FAIL(MXP_ERR_FORMAT,
                                "%s: __metadata__ must map strings to strings; '%s' is not a "
                                "string",
                                path, mk);
            (*nmeta)++;
            *strbytes += strlen(mk) + 1 + strlen(json_string_value(mv)) + 1;
        }
    }
    return MXP_OK;
}

static char *put_str(char **pool, const char *s) {
    const size_t n = strlen(s) + 1;
    char *p = *pool;
    memcpy(p, s, n);
    *pool += n;
    return p;
}

/* Build the handle from a parsed header: one allocation for the struct, the arrays and the
 * strings. */
static mxp_status build(mxp_safetensors_t **out, const char *path, json_t *root, int fd,
                        uint64_t data_start, uint64_t data_size) {
    int n, nmeta;
    size_t strbytes;
    MXP_TRY(size_header(path, root, &n, &nmeta, &strbytes));
    /* every part's size is a multiple of 8 but the strings at the end */
    const size_t total = sizeof(mxp_safetensors_t) + (size_t)n * sizeof(mxp_st_info) +
                         (size_t)n * sizeof(mxp_st_info *) + (size_t)nmeta * 2 * sizeof(char *) +
                         strlen(path) + 1 + strbytes;
    unsigned char *mem = mxp_alloc(total);
    if (!mem)
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %zu bytes for %d tensor entries", path,
                        total, n);
    mxp_safetensors_t *f = (mxp_safetensors_t *)mem;
    f->fd = fd;
    f->n = n;
    f->nmeta = nmeta;
    f->data_start = data_start;
    f->data_size = data_size;
    f->info = (mxp_st_info *)(mem + sizeof *f);
    f->by_name = (const mxp_st_info **)(f->info + n);
    f->meta = (const char **)(f->by_name + n);
    char *pool = (char *)(f->meta + 2 * nmeta);
    f->path = put_str(&pool, path);

    const char *key;
    json_t *v;
    int i = 0, m = 0;
    mxp_status st = MXP_OK;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) {
                f->meta[2 * m] = put_str(&pool, mk);
                f->meta[2 * m + 1] = put_str(&pool, json_string_value(mv));
                m++;
            }
            continue;
        }
        mxp_st_info *t = &f->info[i];
        t->name = put_str(&pool, key);
        f->by_name[i] = t;
        i++;
        st = parse_entry(path, key, v, t);
        if (st != MXP_OK) break;
    }
    if (st == MXP_OK) st = check_ranges(f);
    if (st != MXP_OK) {
        mxp_free(mem);
        return st;
    }
    if (n > 1) qsort((void *)f->by_name, (size_t)n, sizeof *f->by_name, cmp_names);
    *out = f;
    return MXP_OK;
}

mxp_status mxp_safetensors_open(mxp_safetensors_t **out, const char *path) {
    if (!out || !path) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_safetensors_open: NULL argument");
    *out = NULL;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return MXP_FAIL(MXP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    mxp_status st = MXP_OK;
    unsigned char *hdr = NULL;
    json_t *root = NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = MXP_FAIL(MXP_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = MXP_FAIL(MXP_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    const uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        st = MXP_FAIL(MXP_ERR_FORMAT,
                      "%s: %" PRIu64 " bytes, too short for the 8-byte header length", path, size);
        goto done;
    }
    unsigned char len8[8];
    st = pread_full(fd, len8, 8, 0, path, "the header length");
    if (st != MXP_OK) goto done;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (hlen > size - 8) {
        st =
            MXP_FAIL(MXP_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the file size %" PRIu64,
                     path, hlen, size);
        goto done;
    }
    if (hlen > MAX_HEADER) {
        st = MXP_FAIL(MXP_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the limit of %llu",
                      path, hlen, MAX_HEADER);
        goto done;
    }
    if (hlen == 0) {
        st = MXP_FAIL(MXP_ERR_FORMAT, "%s: header length 0: no JSON header", path);
        goto done;
    }
    hdr = mxp_alloc((size_t)hlen);
    if (!hdr) {
        st = MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %" PRIu64 " bytes for the header", path,
                      hlen);
        goto done;
    }
    st = pread_full(fd, hdr, (size_t)hlen, 8, path, "the header");
    if (st != MXP_OK) goto done;
    /* Trailing spaces (the padding writers add) are whitespace after the value, which jansson
     * accepts; anything else after the object is an error. jansson allocates the tree with
     * malloc, not through the hook; it is freed before open returns. */
    json_error_t jerr;
    root = json_loadb((const char *)hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st = MXP_FAIL(MXP_ERR_FORMAT, "%s: the header is not valid JSON: %s (header byte %d)", path,
                      jerr.text, jerr.position);
        goto done;
    }
    if (!json_is_object(root)) {
        st = MXP_FAIL(MXP_ERR_FORMAT, "%s: the header is not a JSON object", path);
        goto done;
    }
    st = build(out, path, root, fd, 8 + hlen, size - 8 - hlen);
done:
    json_decref(root);
    mxp_free(hdr);
    if (st != MXP_OK) close(fd);
    return st;
}

void mxp_safetensors_close(mxp_safetensors_t *f) {
    if (!f) return;
    close(f->fd);
    mxp_free(f);
}

int mxp_safetensors_count(const mxp_safetensors_t *f) { return f ? f->n : 0; }

const mxp_st_info *mxp_safetensors_info(const mxp_safetensors_t *f, int i) {
    if (!f || i < 0 || i >= f->n) return NULL;
    return &f->info[i];
}

const mxp_st_info *mxp_safetensors_find(const mxp_safetensors_t *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        const int mid = lo + (hi - lo) / 2;
        const int c = strcmp(name, f->by_name[mid]->name);
        if (c == 0) return f->by_name[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *mxp_safetensors_meta(const mxp_safetensors_t *f, const char *key) {
    if (!f || !key) return NULL;
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

int mxp_safetensors_meta_count(const mxp_safetensors_t *f) { return f ? f->nmeta : 0; }

const char *mxp_safetensors_meta_at(const mxp_safetensors_t *f, int i, const char **value) {
    const int ok = f && i >= 0 && i < f->nmeta;
    if (value) *value = ok ? f->meta[2 * i + 1] : NULL;
    return ok ? f->meta[2 * i] : NULL;
}

mxp_status mxp_safetensors_read(mxp_safetensors_t *f, const char *name, mxp_tensor *dst) {
    if (!f || !name || !dst)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_safetensors_read: NULL argument");
    if (dst->device != MXP_DEVICE_CPU)
        return MXP_FAIL(MXP_ERR_BACKEND, "mxp_safetensors_read: the destination is not on the CPU");
    const size_t dsize = mxp_dtype_size(dst->dtype);
    if (dsize == 0)
        return MXP_FAIL(MXP_ERR_DTYPE, "mxp_safetensors_read: unknown destination dtype %d",
                        (int)dst->dtype);
    if (dst->ndim < 0 || dst->ndim > MXP_MAX_DIMS || !mxp_tensor_is_contiguous(dst))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_safetensors_read: the destination for '%s' is not contiguous", name);
    const mxp_st_info *t = mxp_safetensors_find(f, name);
    if (!t) return MXP_FAIL(MXP_ERR_FORMAT, "%s: no tensor '%s'", f->path, name);
    int same = dst->ndim == t->ndim;
    for (int i = 0; same && i < t->ndim; i++) same = dst->shape[i] == t->shape[i];
    if (!same) {
        char a[160], b[160];
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: tensor '%s' is %s %s, the destination is %s %s",
                        f->path, name, st_dtype_names[t->dtype],
                        shape_str(a, sizeof a, t->ndim, t->shape), mxp_dtype_name(dst->dtype),
                        shape_str(b, sizeof b, dst->ndim, dst->shape));
    }
    const size_t nbytes = (size_t)(t->end - t->begin);
    if (nbytes == 0) return MXP_OK;
    if (!dst->data)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_safetensors_read: '%s': destination data is NULL",
                        name);
    char what[96];
    snprintf(what, sizeof what, "tensor '%.80s'", name);
    if (t->dtype == dst->dtype)
        return pread_full(f->fd, dst->data, nbytes, f->data_start + t->begin, f->path, what);

    const size_t ssize = mxp_dtype_size(t->dtype);
    const size_t chunk = MXP_MIN(nbytes, CHUNK); /* a multiple of ssize (2 or 4) */
    unsigned char *buf = mxp_alloc(chunk);
    if (!buf)
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %zu bytes to convert '%s'", f->path,
                        chunk, name);
    mxp_status st = MXP_OK;
    unsigned char *d = dst->data;
    for (size_t done = 0; done < nbytes && st == MXP_OK;) {
        const size_t k = MXP_MIN(chunk, nbytes - done);
        st = pread_full(f->fd, buf, k, f->data_start + t->begin + done, f->path, what);
        if (st == MXP_OK) st = mxp_convert(d, dst->dtype, buf, t->dtype, k / ssize);
        d += k / ssize * dsize;
        done += k;
    }
    mxp_free(buf);
    return st;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* A growing text buffer from the hook; a failure is remembered and later calls do nothing. */
typedef struct text {
    char *p;
    size_t len, cap;
    int nomem;
} text;

static void put(text *b, const char *s, size_t n) {
    if (b->nomem) return;
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->len + n) ncap *= 2;
        char *np = mxp_alloc(ncap);
        if (!np) {
            b->nomem = 1;
            return;
        }
        if (b->len) memcpy(np, b->p, b->len);
        mxp_free(b->p);
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_raw(text *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string: quotes, backslashes and control characters escaped, other bytes as they are
 * (the caller has checked they are UTF-8). */
static void put_json_str(text *b, const char *s) {
    put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            put(b, esc, 6);
        } else {
            put(b, (const char *)p, 1);
        }
    }
    put(b, "\"", 1);
}

static void put_u64(text *b, uint64_t x) {
    char s[24];
    put(b, s, (size_t)snprintf(s, sizeof s, "%" PRIu64, x));
}

/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF): what a JSON reader such as jansson accepts. */
static int utf8_ok(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        const unsigned c = *s;
        int extra;
        unsigned cp, min;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        for (int i = 1; i <= extra; i++) {
            if ((s[i] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        s += extra + 1;
    }
    return 1;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The entries and the metadata are usable: checked at the entry, before any work. */
static mxp_status check_write_args(const char *path, const mxp_st_entry *entries, int n,
                                   mxp_dtype dtype, const char *const *meta) {
    if (!path || !path[0] || n < 0 || (n > 0 && !entries))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_safetensors_write: needs a path and n >= 0 entries");
    if ((int)dtype < 0 || dtype > MXP_DTYPE_COUNT)
        return MXP_FAIL(MXP_ERR_DTYPE,
                        "mxp_safetensors_write: dtype %d is not F32, F16, BF16 or "
                        "MXP_DTYPE_COUNT (keep)",
                        (int)dtype);
    for (int i = 0; i < n; i++) {
        const char *name = entries[i].name;
        const mxp_tensor *t = entries[i].t;
        if (!name || !name[0])
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: entry %d has an empty name", path, i);
        if (strcmp(name, "__metadata__") == 0)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "%s: '__metadata__' is reserved and cannot name a tensor", path);
        if (!utf8_ok(name))
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: name of entry %d is not valid UTF-8", path,
                            i);
        if (!t) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: tensor '%s' is NULL", path, name);
        if (t->device != MXP_DEVICE_CPU)
            return MXP_FAIL(MXP_ERR_BACKEND, "%s: tensor '%s' is not on the CPU", path, name);
        if (mxp_dtype_size(t->dtype) == 0)
            return MXP_FAIL(MXP_ERR_DTYPE, "%s: tensor '%s' has unknown dtype %d", path, name,
                            (int)t->dtype);
        if (t->ndim < 0 || t->ndim > MXP_MAX_DIMS)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: tensor '%s' has ndim %d", path, name,
                            t->ndim);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0)
                return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: tensor '%s' has a negative size", path,
                                name);
        if (!mxp_tensor_is_contiguous(t))
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: tensor '%s' is not contiguous", path, name);
        if (mxp_tensor_numel(t) > 0 && !t->data)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: tensor '%s' has no data", path, name);
    }
    for (int i = 0; meta && meta[2 * i]; i++) {
        const char *k = meta[2 * i], *v = meta[2 * i + 1];
        if (!v) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: metadata key '%s' has no value", path, k);
        if (!utf8_ok(k) || !utf8_ok(v))
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: metadata '%s' is not valid UTF-8", path, k);
        for (int j = 0; j < i; j++)
            if (strcmp(meta[2 * j], k) == 0)
                return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: duplicate metadata key '%s'", path, k);
    }
    if (n < 2) return MXP_OK;
    const char **names = mxp_alloc_array((size_t)n, sizeof *names);
    if (!names) return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %d names to check", path, n);
    for (int i = 0; i < n; i++) names[i] = entries[i].name;
    qsort((void *)names, (size_t)n, sizeof *names, cmp_str_ptr);
    mxp_status st = MXP_OK;
    for (int i = 1; i < n && st == MXP_OK; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            st = MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: duplicate tensor name '%s'", path, names[i]);
    mxp_free((void *)names);
    return st;
}

static mxp_dtype out_dtype(const mxp_tensor *t, mxp_dtype dtype) {
    return dtype == MXP_DTYPE_COUNT ? t->dtype : dtype;
}

/* The 8-byte length and the header, padded with spaces so the data starts 8-byte aligned. */
static mxp_status build_header(text *b, const char *path, const mxp_st_entry *entries, int n,
                               mxp_dtype dtype, const char *const *meta) {
    put(b, "01234567", 8); /* the length, filled in below */
    put(b, "{", 1);
    int fields = 0;
    if (meta && meta[0]) {
        puts_raw(b, "\"__metadata__\":{");
        for (int i = 0; meta[2 * i]; i++) {
            if (i) put(b, ",", 1);
            put_json_str(b, meta[2 * i]);
            put(b, ":", 1);
            put_json_str(b, meta[2 * i + 1]);
        }
        put(b, "}", 1);
        fields++;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const mxp_tensor *t = entries[i].t;
        const mxp_dtype dt = out_dtype(t, dtype);
        uint64_t bytes;
        if (__builtin_mul_overflow((uint64_t)mxp_tensor_numel(t), mxp_dtype_size(dt), &bytes) ||
            off + bytes < off)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: the tensors' bytes overflow 64 bits", path);
        if (fields++) put(b, ",", 1);
        put_json_str(b, entries[i].name);
        puts_raw(b, ":{\"dtype\":\"");
        puts_raw(b, st_dtype_names[dt]);
        puts_raw(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) put(b, ",", 1);
            put_u64(b, (uint64_t)t->shape[d]);
        }
        puts_raw(b, "],\"data_offsets\":[");
        put_u64(b, off);
        put(b, ",", 1);
        put_u64(b, off + bytes);
        puts_raw(b, "]}");
        off += bytes;
    }
    put(b, "}", 1);
    while (!b->nomem && b->len % 8 != 0) put(b, " ", 1);
    if (b->nomem)
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate the header for %d tensors", path, n);
    uint64_t hlen = b->len - 8;
    for (int i = 0; i < 8; i++, hlen >>= 8) b->p[i] = (char)(hlen & 0xff);
    return MXP_OK;
}

/* Write exactly n bytes; 0 or -1 with errno set. */
static int write_full(int fd, const void *src, size_t n) {
    const unsigned char *p = src;
    while (n > 0) {
        const ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The data of every tensor in order, converted through buf (chunk bytes) where the dtype
 * changes. 0 or -1 with errno set; *st is set when a conversion fails. */
static int write_data(int fd, const mxp_st_entry *entries, int n, mxp_dtype dtype,
                      unsigned char *buf, size_t chunk, mxp_status *st) {
    for (int i = 0; i < n; i++) {
        const mxp_tensor *t = entries[i].t;
        const mxp_dtype dt = out_dtype(t, dtype);
        const size_t numel = (size_t)mxp_tensor_numel(t);
        if (numel == 0) continue;
        if (dt == t->dtype) {
            if (write_full(fd, t->data, numel * mxp_dtype_size(dt)) != 0) return -1;
            continue;
        }
        const size_t per = chunk / mxp_dtype_size(dt); /* elements per chunk */
        const unsigned char *src = t->data;
        for (size_t done = 0; done < numel;) {
            const size_t k = MXP_MIN(per, numel - done);
            *st = mxp_convert(buf, dt, src + done * mxp_dtype_size(t->dtype), t->dtype, k);
            if (*st != MXP_OK) return -1;
            if (write_full(fd, buf, k * mxp_dtype_size(dt)) != 0) return -1;
            done += k;
        }
    }
    return 0;
}

int mxp_sync_dir(const char *dir) {
    const int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return -1;
    int rc = fsync(dfd);
    if (rc != 0 && errno == EINVAL) rc = 0;
    const int saved = errno;
    close(dfd);
    errno = saved;
    return rc;
}

/* fsync the directory holding path (its name goes to dir), so the rename itself survives a
 * crash. 0 or -1 with errno set. */
static int sync_dir(char *dir, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    return mxp_sync_dir(dir);
}

mxp_status mxp_safetensors_write(const char *path, const mxp_st_entry *entries, int n,
                                 mxp_dtype dtype, const char *const *meta) {
    MXP_TRY(check_write_args(path, entries, n, dtype, meta));
    /* Everything is allocated before the temporary exists: the header, the conversion buffer
     * (only when a dtype changes; at most CHUNK), the temporary's and the directory's names. */
    text hdr = {0};
    mxp_status st = build_header(&hdr, path, entries, n, dtype, meta);
    if (st != MXP_OK) {
        mxp_free(hdr.p);
        return st;
    }
    size_t chunk = 0;
    for (int i = 0; i < n; i++) {
        const mxp_tensor *t = entries[i].t;
        const mxp_dtype dt = out_dtype(t, dtype);
        if (dt != t->dtype)
            chunk =
                MXP_MAX(chunk, MXP_MIN(CHUNK, (size_t)mxp_tensor_numel(t) * mxp_dtype_size(dt)));
    }
    const size_t plen = strlen(path);
    char *names = mxp_alloc(2 * (plen + 32));
    unsigned char *buf = chunk ? mxp_alloc(chunk) : NULL;
    if (!names || (chunk && !buf)) {
        mxp_free(names);
        mxp_free(buf);
        mxp_free(hdr.p);
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %zu bytes to write it", path,
                        chunk + 2 * (plen + 32));
    }
    char *tmp = names, *dir = names + plen + 32;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());

    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = MXP_FAIL(MXP_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    const char *step = "write";
    int rc = write_full(fd, hdr.p, hdr.len);
    if (rc == 0) rc = write_data(fd, entries, n, dtype, buf, chunk, &st);
    if (rc == 0) {
        step = "fsync";
        rc = fsync(fd);
    }
    int err = errno; /* of the step that failed, if one did */
    if (close(fd) != 0 && rc == 0) {
        step = "close";
        rc = -1;
        err = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        step = "rename";
        rc = -1;
        err = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        if (st == MXP_OK)
            st = MXP_FAIL(MXP_ERR_IO, "%s: %s failed: %s (the temporary was removed)", path, step,
                          strerror(err));
        goto done;
    }
    if (sync_dir(dir, path) != 0)
        st = MXP_FAIL(MXP_ERR_IO, "%s: written, but syncing directory %s failed: %s", path, dir,
                      strerror(errno));
done:
    mxp_free(names);
    mxp_free(buf);
    mxp_free(hdr.p);
    return st;
}

mxp_status mxp_file_write_atomic(const char *path, const void *data, size_t n) {
    if (!path || !*path || (!data && n)) return MXP_FAIL(MXP_ERR_INVALID_ARG, "bad arguments");
    const size_t plen = strlen(path);
    char *names = mxp_alloc(2 * (plen + 32));
    if (!names) return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate its name", path);
    char *tmp = names, *dir = names + plen + 32;
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    mxp_status st = MXP_OK;
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = MXP_FAIL(MXP_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    } else {
        int rc = write_full(fd, data, n);
        if (rc == 0) rc = fsync(fd);
        int err = errno;
        if (close(fd) != 0 && rc == 0) rc = -1, err = errno;
        if (rc == 0 && rename(tmp, path) != 0) rc = -1, err = errno;
        if (rc != 0) {
            unlink(tmp);
            st = MXP_FAIL(MXP_ERR_IO, "%s: writing failed: %s (the temporary was removed)", path,
                          strerror(err));
        } else if (sync_dir(dir, path) != 0) {
            st = MXP_FAIL(MXP_ERR_IO, "%s: written, but syncing directory %s failed: %s", path, dir,
                          strerror(errno));
        }
    }
    mxp_free(names);
    return st;
}
