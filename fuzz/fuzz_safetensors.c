/*
 * fuzz_safetensors.c - mxp_safetensors_open on arbitrary bytes; when it accepts them, every
 * declared tensor must be readable, in its own dtype (bytes identical to the file's) and as
 * F32 (identical to the scalar reference conversion), and the declared ranges must tile the
 * data section. It does not exercise the writer (the round trips in test_safetensors do).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "mixprec/io.h"
#include "mixprec/numerics.h"
#include "mixprec/tensor.h"

static fuzz_file file;

/* The element i of raw little-endian data of dtype dt, widened by the scalar reference. */
static uint32_t ref_f32_bits(mxp_dtype dt, const uint8_t *raw, size_t i) {
    float x;
    if (dt == MXP_DTYPE_F32) {
        memcpy(&x, raw + 4 * i, 4);
    } else {
        const uint16_t h = (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8);
        x = dt == MXP_DTYPE_F16 ? mxp_fp16_to_fp32(h) : mxp_bf16_to_fp32(h);
    }
    uint32_t bits;
    memcpy(&bits, &x, 4);
    return bits;
}

static int cmp_begin(const void *a, const void *b) {
    const mxp_st_info *x = *(const mxp_st_info *const *)a, *y = *(const mxp_st_info *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The ranges of the n tensors are inside the data section, do not overlap and leave no
 * byte of it unindexed. */
static void check_tiling(const mxp_safetensors_t *f, int n, uint64_t data_size) {
    const mxp_st_info **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    FUZZ_CHECK(order != NULL, "malloc of %d pointers", n);
    for (int i = 0; i < n; i++) order[i] = mxp_safetensors_info(f, i);
    qsort((void *)order, (size_t)n, sizeof *order, cmp_begin);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(order[i]->begin == pos,
                   "'%s' begins at %" PRIu64 ", the previous ends at %" PRIu64, order[i]->name,
                   order[i]->begin, pos);
        pos = order[i]->end;
    }
    FUZZ_CHECK(pos == data_size, "the ranges end at %" PRIu64 ", the data section at %" PRIu64, pos,
               data_size);
    free((void *)order);
}

/* Read tensor t (declared at raw[0..end-begin) of the input) in its own dtype and as F32. */
static void check_read(mxp_safetensors_t *f, const mxp_st_info *t, const uint8_t *raw) {
    const size_t es = mxp_dtype_size(t->dtype);
    uint64_t numel = 1; /* no overflow: the caller checked numel * es */
    for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];

    mxp_tensor *own = NULL;
    mxp_status st = mxp_tensor_create(&own, t->dtype, t->ndim, t->shape);
    if (st != MXP_OK) {
        /* only an empty tensor may be unaddressable (e.g. shape (0, 2^40, 2^40)): a tensor
         * with elements has its bytes in the file, so it fits in memory */
        FUZZ_CHECK(t->end == t->begin, "cannot create '%s' (%" PRIu64 " bytes in the file)",
                   t->name, t->end - t->begin);
        return;
    }
    FUZZ_CHECK(mxp_tensor_numel(own) == (int64_t)numel &&
                   mxp_tensor_nbytes(own) == (size_t)(t->end - t->begin),
               "'%s': numel %" PRId64 " * %zu != end - begin = %" PRIu64, t->name,
               mxp_tensor_numel(own), es, t->end - t->begin);
    st = mxp_safetensors_read(f, t->name, own);
    FUZZ_CHECK(st == MXP_OK, "'%s' was declared but cannot be read", t->name);
    FUZZ_CHECK(memcmp(own->data, raw, (size_t)(t->end - t->begin)) == 0,
               "'%s' read back other bytes than the file holds", t->name);

    /* an empty F16 tensor may be addressable in its dtype but not in F32 (shape (0, 1099511,
     * 27776, 109957776): crash-harness-empty-f16-unaddressable-as-f32); one with elements fits */
    mxp_tensor *wide = NULL;
    st = mxp_tensor_create(&wide, MXP_DTYPE_F32, t->ndim, t->shape);
    FUZZ_CHECK(st == MXP_OK || numel == 0, "cannot create an F32 tensor for '%s'", t->name);
    if (st == MXP_OK) {
        st = mxp_safetensors_read(f, t->name, wide);
        FUZZ_CHECK(st == MXP_OK, "'%s' cannot be read as F32", t->name);
    }
    for (size_t i = 0; i < numel; i++) {
        uint32_t got;
        memcpy(&got, (const uint8_t *)wide->data + 4 * i, 4);
        FUZZ_CHECK(got == ref_f32_bits(t->dtype, raw, i),
                   "'%s' element %zu as F32: %08" PRIx32 ", the reference gives %08" PRIx32,
                   t->name, i, got, ref_f32_bits(t->dtype, raw, i));
    }

    /* the same elements under another shape must be refused, not read */
    if (t->ndim < MXP_MAX_DIMS) {
        int64_t shape[MXP_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        shape[t->ndim] = 1;
        mxp_tensor other;
        st = mxp_tensor_wrap(&other, own->data, t->dtype, t->ndim + 1, shape, NULL);
        FUZZ_CHECK(st == MXP_OK, "cannot wrap '%s' with one more dimension", t->name);
        st = mxp_safetensors_read(f, t->name, &other);
        FUZZ_CHECK(st == MXP_ERR_FORMAT, "'%s' was read into a tensor of another shape (%s)",
                   t->name, mxp_status_str(st));
    }
    mxp_tensor_free(wide);
    mxp_tensor_free(own);
}

int mixprec_fuzz_safetensors(const uint8_t *data, size_t size) {
    const char *path = fuzz_file_put(&file, "safetensors", ".safetensors", data, size);
    if (!path) return 1;
    static char unset;
    mxp_safetensors_t *f = (mxp_safetensors_t *)(void *)&unset; /* open must reset it */
    if (mxp_safetensors_open(&f, path) != MXP_OK) {
        FUZZ_CHECK(f == NULL, "a failed open left *out set");
        return 0;
    }
    /* accepted: the 8-byte length and the header lie inside the input */
    FUZZ_CHECK(size >= 8, "a %zu-byte file was accepted", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    FUZZ_CHECK(hlen > 0 && hlen <= size - 8, "header length %" PRIu64 " in a %zu-byte file", hlen,
               size);
    const uint8_t *section = data + 8 + hlen;
    const uint64_t section_size = size - 8 - hlen;

    const int n = mxp_safetensors_count(f);
    FUZZ_CHECK(n >= 0, "count %d", n);
    FUZZ_CHECK(!mxp_safetensors_info(f, n) && !mxp_safetensors_info(f, -1), "info out of range");
    for (int i = 0; i < n; i++) {
        const mxp_st_info *t = mxp_safetensors_info(f, i);
        FUZZ_CHECK(t && t->name, "tensor %d has no info", i);
        FUZZ_CHECK(mxp_safetensors_find(f, t->name) == t, "find('%s') is not tensor %d", t->name,
                   i);
        FUZZ_CHECK(mxp_dtype_size(t->dtype) > 0, "'%s' has dtype %d", t->name, (int)t->dtype);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= MXP_MAX_DIMS, "'%s' has ndim %d", t->name, t->ndim);
        uint64_t bytes = mxp_dtype_size(t->dtype);
        int overflow = 0;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_CHECK(t->shape[d] >= 0, "'%s' size %" PRId64, t->name, t->shape[d]);
            overflow |= __builtin_mul_overflow(bytes, (uint64_t)t->shape[d], &bytes);
        }
        FUZZ_CHECK(!overflow && t->begin <= t->end && t->end - t->begin == bytes,
                   "'%s': numel * size != end - begin = %" PRIu64, t->name, t->end - t->begin);
        FUZZ_CHECK(t->end <= section_size,
                   "'%s' ends at %" PRIu64 " past the %" PRIu64 "-byte data", t->name, t->end,
                   section_size);
    }
    check_tiling(f, n, section_size);
    for (int i = 0; i < n; i++) {
        const mxp_st_info *t = mxp_safetensors_info(f, i);
        check_read(f, t, section + t->begin);
    }

    /* a name the file does not hold is refused */
    static const char missing[] = "\x7f no such tensor \x7f";
    if (!mxp_safetensors_find(f, missing)) {
        float x;
        mxp_tensor one;
        FUZZ_CHECK(mxp_tensor_wrap(&one, &x, MXP_DTYPE_F32, 0, NULL, NULL) == MXP_OK, "wrap");
        FUZZ_CHECK(mxp_safetensors_read(f, missing, &one) == MXP_ERR_FORMAT,
                   "a missing tensor was read");
    }
    /* the metadata: string pairs with unique keys, each found by its key */
    const int nmeta = mxp_safetensors_meta_count(f);
    FUZZ_CHECK(nmeta >= 0, "meta_count %d", nmeta);
    for (int i = 0; i < nmeta; i++) {
        const char *value = NULL, *key = mxp_safetensors_meta_at(f, i, &value);
        FUZZ_CHECK(key && value, "metadata pair %d is missing", i);
        FUZZ_CHECK(strlen(key) < size && strlen(value) < size, "metadata %d exceeds the file", i);
        FUZZ_CHECK(mxp_safetensors_meta(f, key) == value, "metadata '%s' is not pair %d", key, i);
    }
    const char *past = "set";
    FUZZ_CHECK(!mxp_safetensors_meta_at(f, nmeta, &past) && !past, "metadata past the end");
    mxp_safetensors_close(f);
    return 0;
}

FUZZ_ENTRY(mixprec_fuzz_safetensors)
