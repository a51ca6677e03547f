/*
 * idx.c - reads one IDX file (the (Fashion-)MNIST container), plain or gzipped, into one
 * buffer, with the header, the sizes and the exact byte count checked before and after.
 * It does not interpret the data (images vs labels is dataset.c's business) and reads only
 * element type 0x08 (unsigned byte).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/base_impl.h"
#include "mixprec/data.h"

enum {
    IDX_TYPE_U8 = 0x08,
    IDX_MAX_DIMS = 4,
    CHUNK = 1 << 30,     /* gzread and read take at most an int / ssize_t per call */
    GZ_BUFFER = 1 << 17, /* zlib's input buffer: 128 KiB instead of 8 KiB, fewer syscalls */
    GZ_FIRST = 1 << 20,  /* the first data buffer of a gzip stream, doubled as it fills */
};
#define IDX_MAX_BYTES ((uint64_t)1 << 31) /* the header's memory limit (data.h) */

/* A byte source: a plain file descriptor, or zlib on top of one. */
typedef struct reader {
    int fd;         /* owned unless gz is set (then gz owns it) */
    gzFile gz;      /* NULL for a plain file */
    uint32_t isize; /* gzip: the trailer's uncompressed size mod 2^32 (a hint, unchecked) */
    uint64_t bytes; /* the file's size */
} reader;

/* Read up to n bytes; the count read (< n only at the end of the data), or -1 on an error
 * (errno set for a plain file; gzerror tells for a gzip one). */
static int64_t reader_read(reader *r, void *buf, uint64_t n) {
    uint64_t got = 0;
    while (got < n) {
        const unsigned want = (unsigned)MXP_MIN(n - got, (uint64_t)CHUNK);
        if (r->gz) {
            const int k = gzread(r->gz, (char *)buf + got, want);
            if (k < 0) return -1;
            if (k == 0) {
                /* zlib reports a stream cut short (even in the CRC trailer) as the end of
                 * the data with Z_BUF_ERROR set, not as -1: ask */
                int zerr = Z_OK;
                gzerror(r->gz, &zerr);
                if (zerr != Z_OK) return -1;
                break;
            }
            got += (uint64_t)k;
        } else {
            const ssize_t k = read(r->fd, (char *)buf + got, want);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) return -1;
            if (k == 0) break;
            got += (uint64_t)k;
        }
    }
    return (int64_t)got;
}

static void reader_close(reader *r) {
    if (r->gz)
        gzclose(r->gz);
    else if (r->fd >= 0)
        close(r->fd);
    r->gz = NULL;
    r->fd = -1;
}

/* The failure behind a -1 from reader_read while reading `what`, as MXP_ERR_FORMAT (damaged
 * gzip data) or MXP_ERR_IO (the read itself failed). */
static mxp_status read_failure(reader *r, const char *path, const char *what) {
    if (r->gz) {
        int zerr = Z_OK;
        const char *msg = gzerror(r->gz, &zerr);
        if (zerr == Z_ERRNO)
            return MXP_FAIL(MXP_ERR_IO, "%s: read failed in %s: %s", path, what, strerror(errno));
        if (zerr == Z_MEM_ERROR) return MXP_FAIL(MXP_ERR_NOMEM, "%s: zlib is out of memory", path);
        /* zlib prefixes its message with the name it was given, "<fd:3>: " after gzdopen */
        const char *sep = msg && strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ": ") : NULL;
        if (sep) msg = sep + 2;
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: truncated or corrupt gzip data in %s (zlib: %s)", path,
                        what, msg && msg[0] ? msg : "error");
    }
    return MXP_FAIL(MXP_ERR_IO, "%s: read failed in %s: %s", path, what, strerror(errno));
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* "60000 x 28 x 28" into buf (for messages) */
static const char *shape_str(char *buf, size_t cap, const uint32_t *dims, int ndim) {
    size_t off = 0;
    buf[0] = '\0';
    for (int d = 0; d < ndim && off < cap; d++) {
        int k = snprintf(buf + off, cap - off, "%s%" PRIu32, d ? " x " : "", dims[d]);
        if (k < 0) break;
        off += (size_t)k;
    }
    return buf;
}

/* Open path and decide plain or gzip from its first two bytes (1f 8b). */
static mxp_status reader_open(reader *r, const char *path, struct stat *st) {
    r->fd = -1;
    r->gz = NULL;
    r->isize = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return MXP_FAIL(MXP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        const int e = errno;
        close(fd);
        return MXP_FAIL(MXP_ERR_IO, "cannot stat %s: %s", path, strerror(e));
    }
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        return MXP_FAIL(MXP_ERR_IO, "%s is a directory, not an IDX file", path);
    }
    unsigned char magic[2] = {0, 0};
    ssize_t k;
    do {
        k = pread(fd, magic, 2, 0);
    } while (k < 0 && errno == EINTR);
    if (k < 0) {
        const int e = errno;
        close(fd);
        return MXP_FAIL(MXP_ERR_IO, "%s: read failed: %s", path, strerror(e));
    }
    if (k == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
        /* pread left the offset at 0, where gzdopen starts */
        r->gz = gzdopen(fd, "rb");
        if (!r->gz) {
            close(fd);
            return MXP_FAIL(MXP_ERR_NOMEM, "%s: zlib cannot allocate its state", path);
        }
        gzbuffer(r->gz, GZ_BUFFER);
        unsigned char t[4] = {0, 0, 0, 0};
        if (st->st_size >= 18 && pread(fd, t, 4, st->st_size - 4) == 4)
            r->isize =
                (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    }
    r->bytes = (uint64_t)st->st_size;
    r->fd = fd;
    return MXP_OK;
}

/* Read the numel data bytes into a new buffer *data; *got is what reader_read returned (-1
 * on a read error, < numel when the data ends early). A plain file's size was checked against
 * the header, so its buffer is allocated whole. A gzip stream's size is known only by reading
 * it, and a 30-byte file can claim 2^31 elements (found by fuzz/fuzz_idx.c): its buffer starts
 * at 1 MiB and doubles as the data arrives, so memory follows the bytes actually present. */
static mxp_status read_data(reader *r, uint64_t hbytes, uint64_t numel, uint8_t **data,
                            int64_t *got, const char *path) {
    uint64_t cap = r->gz ? MXP_MIN(numel, (uint64_t)GZ_FIRST) : numel;
    /* A gzip trailer that agrees with the header, for a file that could hold that much
     * (deflate expands at most ~1032:1), sizes the buffer at once: no copies, and a peak of
     * one buffer (Fashion-MNIST's 47 MB) instead of two while it doubles. */
    if (r->gz && r->isize == (uint32_t)(hbytes + numel) && numel / 1032 <= r->bytes) cap = numel;
    uint8_t *buf = mxp_alloc((size_t)cap);
    if (!buf)
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %" PRIu64 " bytes for the data", path,
                        cap);
    uint64_t have = 0;
    for (;;) {
        const int64_t k = reader_read(r, buf + have, cap - have);
        if (k < 0) {
            *got = -1;
            break;
        }
        have += (uint64_t)k;
        *got = (int64_t)have;
        if (have < cap || cap == numel) break; /* the end of the data, or all of it */
        const uint64_t ncap = MXP_MIN(numel, 2 * cap);
        uint8_t *nb = mxp_alloc((size_t)ncap);
        if (!nb) {
            mxp_free(buf);
            return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %" PRIu64 " bytes for the data",
                            path, ncap);
        }
        memcpy(nb, buf, (size_t)have);
        mxp_free(buf);
        buf = nb;
        cap = ncap;
    }
    *data = buf;
    return MXP_OK;
}

/* The body of mxp_idx_read; r is open, out is zeroed. */
static mxp_status read_idx(mxp_idx *out, reader *r, const struct stat *st, const char *path) {
    unsigned char head[4 + 4 * IDX_MAX_DIMS];
    int64_t k = reader_read(r, head, 4);
    if (k < 0) return read_failure(r, path, "the IDX header");
    if (k < 4)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: truncated IDX header (%" PRId64 " of 4 magic bytes)",
                        path, k);
    if (head[0] != 0 || head[1] != 0)
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: not an IDX file (magic %02x %02x %02x %02x, expected 00 00 08 NDIM)",
                        path, head[0], head[1], head[2], head[3]);
    if (head[2] != IDX_TYPE_U8)
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: IDX element type 0x%02x is not supported (only 0x08, unsigned byte)",
                        path, head[2]);
    const int ndim = head[3];
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: IDX ndim %d is out of range [1, %d]", path, ndim,
                        IDX_MAX_DIMS);
    const int hbytes = 4 + 4 * ndim;
    k = reader_read(r, head + 4, (uint64_t)(4 * ndim));
    if (k < 0) return read_failure(r, path, "the IDX header");
    if (k < 4 * ndim)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: truncated IDX header (%" PRId64 " of %d bytes)", path,
                        4 + k, hbytes);

    /* sizes: each > 0, the product <= 2^31 bytes, checked before anything is allocated
     * (each size is < 2^32 and the running product stays <= 2^31, so uint64 cannot wrap) */
    uint32_t dims[IDX_MAX_DIMS];
    char shape[96];
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        dims[d] = be32(head + 4 + 4 * d);
        if (dims[d] == 0)
            return MXP_FAIL(MXP_ERR_FORMAT, "%s: IDX dimension %d has size 0 (shape %s)", path, d,
                            shape_str(shape, sizeof shape, dims, d + 1));
    }
    for (int d = 0; d < ndim; d++) {
        numel *= dims[d];
        if (numel > IDX_MAX_BYTES)
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: IDX shape %s is more than 2^31 bytes (the limit); a damaged "
                            "header?",
                            path, shape_str(shape, sizeof shape, dims, ndim));
    }
    const uint64_t want = (uint64_t)hbytes + numel;

    /* a plain regular file tells its size up front: refuse a wrong one before allocating */
    if (!r->gz && S_ISREG(st->st_mode) && (uint64_t)st->st_size != want)
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: %s %" PRIu64 " bytes, expected exactly %" PRIu64
                        " (a %d-byte header and %" PRIu64 " elements of shape %s)",
                        path, (uint64_t)st->st_size < want ? "truncated:" : "trailing data:",
                        (uint64_t)st->st_size, want, hbytes, numel,
                        shape_str(shape, sizeof shape, dims, ndim));

    char what[160];
    snprintf(what, sizeof what, "the %" PRIu64 " data bytes of shape %s", numel,
             shape_str(shape, sizeof shape, dims, ndim));
    uint8_t *data = NULL;
    MXP_TRY(read_data(r, (uint64_t)hbytes, numel, &data, &k, path));
    if (k < 0 || (uint64_t)k < numel) {
        mxp_free(data);
        if (k < 0) return read_failure(r, path, what);
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: truncated: %" PRId64 " of %" PRIu64 " data bytes (shape %s)", path, k,
                        numel, shape_str(shape, sizeof shape, dims, ndim));
    }
    /* exactly numel bytes: one more must be the end (this also makes zlib check the CRC) */
    unsigned char extra;
    k = reader_read(r, &extra, 1);
    if (k != 0) {
        mxp_free(data);
        if (k < 0) return read_failure(r, path, "the end of the data");
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: trailing data after the %" PRIu64 " elements of %s",
                        path, numel, shape_str(shape, sizeof shape, dims, ndim));
    }
    out->ndim = ndim;
    for (int d = 0; d < ndim; d++) out->shape[d] = dims[d];
    out->data = data;
    return MXP_OK;
}

mxp_status mxp_idx_read(mxp_idx *out, const char *path) {
    if (!out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_idx_read: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_idx_read: path is NULL");
    reader r;
    struct stat st;
    MXP_TRY(reader_open(&r, path, &st));
    const mxp_status s = read_idx(out, &r, &st, path);
    reader_close(&r);
    return s;
}

void mxp_idx_free(mxp_idx *idx) {
    if (!idx) return;
    mxp_free(idx->data);
    memset(idx, 0, sizeof *idx);
}
