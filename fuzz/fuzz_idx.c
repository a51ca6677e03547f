/*
 * fuzz_idx.c - mxp_idx_read on arbitrary bytes, as a plain file and again gzip-compressed:
 * both must agree (accepted or refused alike, the same shape and elements), and what is
 * accepted must be exactly the input's header and bytes. Inputs that start with the gzip
 * magic are read once, as the gzip stream they are. It does not exercise dataset loading.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "mixprec/data.h"

static fuzz_file plain_file, gz_file;

/* data[0..size) as one gzip member (deflate level 1) in a malloc'd buffer; NULL on failure. */
static uint8_t *gzip_bytes(const uint8_t *data, size_t size, size_t *out_size) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    const size_t cap = deflateBound(&z, (uLong)size) + 32;
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    const int rc = deflate(&z, Z_FINISH);
    *out_size = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* Where the sum of the elements goes, so that computing it (touching every element under
 * AddressSanitizer) is not optimised away. */
static volatile uint64_t element_sum;

/* What an accepted file must look like; every element is read. */
static void check_accepted(const mxp_idx *idx, const char *what) {
    FUZZ_CHECK(idx->ndim >= 1 && idx->ndim <= 4, "%s: ndim %d", what, idx->ndim);
    uint64_t numel = 1;
    for (int d = 0; d < idx->ndim; d++) {
        FUZZ_CHECK(idx->shape[d] >= 1 && idx->shape[d] <= (int64_t)UINT32_MAX,
                   "%s: size %" PRId64 " of dim %d", what, idx->shape[d], d);
        numel *= (uint64_t)idx->shape[d];
        FUZZ_CHECK(numel <= (uint64_t)1 << 31, "%s: more than 2^31 elements", what);
    }
    FUZZ_CHECK(idx->data != NULL, "%s: no data", what);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < numel; i++) sum += idx->data[i];
    element_sum = sum;
}

int mixprec_fuzz_idx(const uint8_t *data, size_t size) {
    const char *path = fuzz_file_put(&plain_file, "idx", "", data, size);
    if (!path) return 1;
    mxp_idx a;
    memset(&a, 0xa5, sizeof a);
    const mxp_status sa = mxp_idx_read(&a, path);
    if (sa != MXP_OK) FUZZ_CHECK(a.data == NULL && a.ndim == 0, "a refused file left data");

    const int is_gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (sa == MXP_OK) {
        check_accepted(&a, "plain");
        if (!is_gzip) {
            /* a plain file is its header and exactly its elements */
            const size_t hbytes = 4 + 4 * (size_t)a.ndim;
            uint64_t numel = 1;
            for (int d = 0; d < a.ndim; d++) numel *= (uint64_t)a.shape[d];
            FUZZ_CHECK(size == hbytes + numel, "accepted %zu bytes for %" PRIu64 " elements", size,
                       numel);
            FUZZ_CHECK(data[0] == 0 && data[1] == 0 && data[2] == 8 && data[3] == a.ndim,
                       "accepted magic %02x %02x %02x %02x", data[0], data[1], data[2], data[3]);
            for (int d = 0; d < a.ndim; d++) {
                const uint8_t *p = data + 4 + 4 * d;
                const uint32_t n =
                    (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
                FUZZ_CHECK(a.shape[d] == n, "dim %d: %" PRId64 ", the header says %" PRIu32, d,
                           a.shape[d], n);
            }
            FUZZ_CHECK(memcmp(a.data, data + hbytes, (size_t)numel) == 0,
                       "the elements differ from the file's bytes");
        }
    }

    if (!is_gzip) {
        size_t gz_size = 0;
        uint8_t *gz = gzip_bytes(data, size, &gz_size);
        FUZZ_CHECK(gz != NULL, "zlib could not compress %zu bytes", size);
        const char *gz_path = fuzz_file_put(&gz_file, "idx", ".gz", gz, gz_size);
        free(gz);
        if (!gz_path) {
            mxp_idx_free(&a);
            return 1;
        }
        mxp_idx b;
        const mxp_status sb = mxp_idx_read(&b, gz_path);
        FUZZ_CHECK((sa == MXP_OK) == (sb == MXP_OK), "plain: %s, gzip: %s", mxp_status_str(sa),
                   mxp_status_str(sb));
        if (sb == MXP_OK) {
            check_accepted(&b, "gzip");
            FUZZ_CHECK(a.ndim == b.ndim && memcmp(a.shape, b.shape, sizeof a.shape) == 0,
                       "plain and gzip shapes differ");
            const size_t numel = size - 4 - 4 * (size_t)a.ndim;
            FUZZ_CHECK(memcmp(a.data, b.data, numel) == 0, "plain and gzip elements differ");
        } else {
            FUZZ_CHECK(b.data == NULL && b.ndim == 0, "a refused gzip file left data");
        }
        mxp_idx_free(&b);
    }
    mxp_idx_free(&a);
    FUZZ_CHECK(a.data == NULL, "mxp_idx_free left data");
    return 0;
}

FUZZ_ENTRY(mixprec_fuzz_idx)
