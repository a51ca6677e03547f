/*
 * test_safetensors.c - safetensors files: round trips with conversion on write and on read,
 * metadata, scalars, empty tensors; a file made byte by byte; our header parsed back with
 * jansson; each malformed file refused with its message; misuse; failed atomic writes; NOMEM.
 * `test_safetensors --python PYTHON SCRIPT` checks interop with the official implementation
 * through tests/reference/check_safetensors.py (exit 77 when python lacks it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "mixprec.h"
#include "mixprec/io.h"
#include "test_util.h"

extern char **environ;

static void die(const char *what) {
    fprintf(stderr, "test_safetensors: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(bytes, 1, n, f) != n) || fclose(f) != 0) die(path);
}

/* The whole file into a malloc'd buffer (NUL-terminated); *n its size. */
static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)size + 1);
    if (!p || fread(p, 1, (size_t)size, f) != (size_t)size) die(path);
    p[size] = '\0';
    fclose(f);
    *n = (size_t)size;
    return p;
}

/* A safetensors file by hand: length (len_field, or the header's own length when
 * UINT64_MAX), the header, spaces up to a multiple of 8 when pad, then ndata data bytes. */
static const char *make_file(const char *name, uint64_t len_field, const char *header, int pad,
                             const void *data, size_t ndata) {
    size_t hl = strlen(header), padded = pad ? (hl + 7) / 8 * 8 : hl;
    unsigned char *buf = calloc(1, 8 + padded + ndata + 1);
    if (!buf) die("calloc");
    const uint64_t len = len_field == UINT64_MAX ? padded : len_field;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    if (ndata) {
        if (data)
            memcpy(buf + 8 + padded, data, ndata);
        else
            memset(buf + 8 + padded, 0x5a, ndata);
    }
    const char *path = tpath(name);
    write_bytes(path, buf, 8 + padded + ndata);
    free(buf);
    return path;
}

/* Whether tmpdir holds a name containing ".tmp." (a temporary left behind). */
static int temporaries_left(void) {
    DIR *d = opendir(tmpdir);
    if (!d) die(tmpdir);
    int found = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

/* f(i) = float32(i - 37) * float32(0.1), as check_safetensors.py computes it */
static float value(int64_t i) { return (float)(i - 37) * 0.1f; }

/* A tensor of dtype dt holding f(0..numel-1) rounded to dt (the caller frees it). */
static mxp_tensor *make_tensor(mxp_dtype dt, int ndim, const int64_t *shape) {
    mxp_tensor *t;
    if (mxp_tensor_create(&t, dt, ndim, shape) != MXP_OK) die(mxp_last_error());
    const int64_t n = mxp_tensor_numel(t);
    float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
    if (!f) die("malloc");
    for (int64_t i = 0; i < n; i++) f[i] = value(i);
    if (mxp_convert(t->data, dt, f, MXP_DTYPE_F32, (size_t)n) != MXP_OK) die(mxp_last_error());
    free(f);
    return t;
}

/* Whether a and b have the same dtype, shape and bits. */
static int same_tensor(const mxp_tensor *a, const mxp_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return mxp_tensor_nbytes(a) == 0 || memcmp(a->data, b->data, mxp_tensor_nbytes(a)) == 0;
}

/* t converted to dt with mxp_convert (the reference for conversions on read and write). */
static mxp_tensor *converted(const mxp_tensor *t, mxp_dtype dt) {
    mxp_tensor *c;
    if (mxp_tensor_create(&c, dt, t->ndim, t->shape) != MXP_OK) die(mxp_last_error());
    if (mxp_convert(c->data, dt, t->data, t->dtype, (size_t)mxp_tensor_numel(t)) != MXP_OK)
        die(mxp_last_error());
    return c;
}

/* ---- the tensors of the round trips (and of check_safetensors.py) -------------------------- */

enum { NT = 7 };
static const char *const names[NT] = {"f32", "f16", "bf16", "odd", "after_odd", "scalar", "empty"};
static const mxp_dtype dtypes[NT] = {MXP_DTYPE_F32, MXP_DTYPE_F16, MXP_DTYPE_BF16, MXP_DTYPE_F16,
                                     MXP_DTYPE_F32, MXP_DTYPE_F32, MXP_DTYPE_F32};
static const int ndims[NT] = {2, 1, 3, 1, 2, 0, 2};
static const int64_t shapes[NT][3] = {{3, 5}, {7}, {2, 3, 2}, {3}, {2, 2}, {0}, {0, 4}};
static const char *const meta[] = {"format", "pt", "note",
                                   "quote \" backslash \\ newline \n tab \t caf\xc3\xa9", NULL};

typedef struct set {
    mxp_tensor *own[NT]; /* in dtypes[i] */
    mxp_tensor *f32[NT]; /* the same values in F32 (before rounding to dtypes[i]) */
    mxp_st_entry own_e[NT], f32_e[NT];
} set;

static void set_make(set *s) {
    for (int i = 0; i < NT; i++) {
        s->own[i] = make_tensor(dtypes[i], ndims[i], shapes[i]);
        s->f32[i] = make_tensor(MXP_DTYPE_F32, ndims[i], shapes[i]);
        s->own_e[i] = (mxp_st_entry){names[i], s->own[i]};
        s->f32_e[i] = (mxp_st_entry){names[i], s->f32[i]};
    }
}

static void set_free(set *s) {
    for (int i = 0; i < NT; i++) mxp_tensor_free(s->own[i]), mxp_tensor_free(s->f32[i]);
}

/* ---- round trips ------------------------------------------------------------------------ */

/* Open path and check that it holds `src` (in file order) converted to file_dt (or each in its
 * own dtype when MXP_DTYPE_COUNT), read back in every dtype. */
static void check_file(const char *path, mxp_tensor *const *src, mxp_dtype file_dt,
                       const char *const *want_meta) {
    mxp_safetensors_t *f = NULL;
    mxp_status st = mxp_safetensors_open(&f, path);
    CHECK(st == MXP_OK, "open %s: %s", path, mxp_last_error());
    if (st != MXP_OK) return;
    CHECK(mxp_safetensors_count(f) == NT, "%d tensors", mxp_safetensors_count(f));
    uint64_t off = 0;
    for (int i = 0; i < NT && i < mxp_safetensors_count(f); i++) {
        const mxp_st_info *in = mxp_safetensors_info(f, i);
        const mxp_dtype fdt = file_dt == MXP_DTYPE_COUNT ? src[i]->dtype : file_dt;
        CHECK(strcmp(in->name, names[i]) == 0, "tensor %d is '%s', want '%s'", i, in->name,
              names[i]);
        CHECK(mxp_safetensors_find(f, names[i]) == in, "find '%s'", names[i]);
        CHECK(in->dtype == fdt, "'%s' dtype %d, want %d", names[i], in->dtype, fdt);
        CHECK(in->ndim == ndims[i], "'%s' ndim %d", names[i], in->ndim);
        for (int d = 0; d < ndims[i]; d++)
            CHECK(in->shape[d] == shapes[i][d], "'%s' shape[%d] %" PRId64, names[i], d,
                  in->shape[d]);
        const uint64_t bytes = (uint64_t)mxp_tensor_numel(src[i]) * mxp_dtype_size(fdt);
        CHECK(in->begin == off && in->end == off + bytes, "'%s' at [%" PRIu64 ", %" PRIu64 "]",
              names[i], in->begin, in->end);
        off += bytes;
        /* read into each dtype: the bits of src -> file dtype -> that dtype */
        mxp_tensor *in_file = converted(src[i], fdt);
        for (int dd = 0; dd < MXP_DTYPE_COUNT; dd++) {
            mxp_tensor *want = converted(in_file, (mxp_dtype)dd);
            mxp_tensor *got;
            if (mxp_tensor_create(&got, (mxp_dtype)dd, ndims[i], shapes[i]) != MXP_OK)
                die(mxp_last_error());
            if (mxp_tensor_nbytes(got)) memset(got->data, 0xee, mxp_tensor_nbytes(got));
            st = mxp_safetensors_read(f, names[i], got);
            CHECK(st == MXP_OK, "read '%s' as %s: %s", names[i], mxp_dtype_name((mxp_dtype)dd),
                  mxp_last_error());
            CHECK(same_tensor(got, want), "'%s' read as %s differs", names[i],
                  mxp_dtype_name((mxp_dtype)dd));
            mxp_tensor_free(want);
            mxp_tensor_free(got);
        }
        mxp_tensor_free(in_file);
    }
    CHECK(mxp_safetensors_info(f, -1) == NULL && mxp_safetensors_info(f, NT) == NULL,
          "info out of range");
    CHECK(mxp_safetensors_find(f, "nope") == NULL && mxp_safetensors_find(f, "") == NULL,
          "find of an absent name");
    for (int i = 0; want_meta && want_meta[2 * i]; i++) {
        const char *v = mxp_safetensors_meta(f, want_meta[2 * i]);
        CHECK(v && strcmp(v, want_meta[2 * i + 1]) == 0, "meta '%s' = '%s'", want_meta[2 * i],
              v ? v : "(null)");
    }
    CHECK(mxp_safetensors_meta(f, "absent") == NULL, "absent meta key");
    CHECK(mxp_safetensors_meta(f, "f32") == NULL, "a tensor name is not a meta key");
    /* the pairs in the order written, and nothing past the end */
    int nmeta = 0;
    while (want_meta && want_meta[2 * nmeta]) nmeta++;
    CHECK(mxp_safetensors_meta_count(f) == nmeta, "%d metadata pairs, want %d",
          mxp_safetensors_meta_count(f), nmeta);
    for (int i = 0; i < nmeta; i++) {
        const char *v = NULL, *k = mxp_safetensors_meta_at(f, i, &v);
        CHECK(k && v && strcmp(k, want_meta[2 * i]) == 0 && strcmp(v, want_meta[2 * i + 1]) == 0,
              "meta pair %d is '%s'", i, k ? k : "(null)");
    }
    const char *past = "x";
    CHECK(mxp_safetensors_meta_at(f, nmeta, &past) == NULL && past == NULL &&
              mxp_safetensors_meta_at(f, -1, NULL) == NULL && mxp_safetensors_meta_count(NULL) == 0,
          "meta_at out of range");
    mxp_safetensors_close(f);
    /* the file is exactly 8 + padded header + the data */
    size_t n;
    unsigned char *raw = read_all(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | raw[i];
    CHECK(hlen % 8 == 0, "header length %" PRIu64 " is not padded to 8", hlen);
    CHECK(n == 8 + hlen + off, "file of %zu bytes, want 8 + %" PRIu64 " + %" PRIu64, n, hlen, off);
    free(raw);
}

static void test_roundtrip(void) {
    set s;
    set_make(&s);
    const char *path = tpath("rt.safetensors");
    /* each tensor in its own dtype, then everything converted on write to each dtype */
    mxp_status st = mxp_safetensors_write(path, s.own_e, NT, MXP_DTYPE_COUNT, meta);
    CHECK(st == MXP_OK, "write keep: %s", mxp_last_error());
    check_file(path, s.own, MXP_DTYPE_COUNT, meta);
    for (int dt = 0; dt < MXP_DTYPE_COUNT; dt++) {
        st = mxp_safetensors_write(path, s.own_e, NT, (mxp_dtype)dt, NULL);
        CHECK(st == MXP_OK, "write as %s: %s", mxp_dtype_name((mxp_dtype)dt), mxp_last_error());
        check_file(path, s.own, (mxp_dtype)dt, NULL);
        st = mxp_safetensors_write(path, s.f32_e, NT, (mxp_dtype)dt, meta);
        CHECK(st == MXP_OK, "write f32 as %s: %s", mxp_dtype_name((mxp_dtype)dt), mxp_last_error());
        check_file(path, s.f32, (mxp_dtype)dt, meta);
    }
    CHECK(!temporaries_left(), "a temporary was left behind");
    set_free(&s);

    /* no tensors at all, no metadata: "{}" padded, and an empty data section */
    path = tpath("empty.safetensors");
    st = mxp_safetensors_write(path, NULL, 0, MXP_DTYPE_COUNT, NULL);
    CHECK(st == MXP_OK, "write of nothing: %s", mxp_last_error());
    size_t n;
    unsigned char *raw = read_all(path, &n);
    CHECK(n == 16 && memcmp(raw, "\x08\0\0\0\0\0\0\0{}      ", 16) == 0, "empty file of %zu bytes",
          n);
    free(raw);
    mxp_safetensors_t *f = NULL;
    st = mxp_safetensors_open(&f, path);
    CHECK(st == MXP_OK && mxp_safetensors_count(f) == 0, "open empty: %s", mxp_last_error());
    mxp_safetensors_close(f);
    mxp_safetensors_close(NULL);
}

/* Several chunks of conversion on write and on read (the buffer is 1 MiB). */
static void test_large(void) {
    const int64_t shape[2] = {700001, 3}; /* 8.4 MB in F32, not a multiple of the chunk */
    mxp_tensor *a = make_tensor(MXP_DTYPE_F32, 2, shape);
    float *p = a->data;
    for (int64_t i = 0; i < mxp_tensor_numel(a); i++) p[i] = (float)i * 1.0001f - 1e6f;
    const mxp_st_entry e[2] = {{"big", a}, {"big2", a}};
    const char *path = tpath("large.safetensors");
    for (int dt = 0; dt < MXP_DTYPE_COUNT; dt++) {
        mxp_status st = mxp_safetensors_write(path, e, 2, (mxp_dtype)dt, NULL);
        CHECK(st == MXP_OK, "large write as %s: %s", mxp_dtype_name((mxp_dtype)dt),
              mxp_last_error());
        mxp_safetensors_t *f = NULL;
        st = mxp_safetensors_open(&f, path);
        CHECK(st == MXP_OK, "large open: %s", mxp_last_error());
        if (st != MXP_OK) continue;
        mxp_tensor *in_file = converted(a, (mxp_dtype)dt);
        for (int rd = 0; rd < MXP_DTYPE_COUNT; rd++) {
            mxp_tensor *want = converted(in_file, (mxp_dtype)rd), *got;
            if (mxp_tensor_create(&got, (mxp_dtype)rd, 2, shape) != MXP_OK) die(mxp_last_error());
            st = mxp_safetensors_read(f, "big2", got);
            CHECK(st == MXP_OK && same_tensor(got, want), "large %s -> %s: %s",
                  mxp_dtype_name((mxp_dtype)dt), mxp_dtype_name((mxp_dtype)rd), mxp_last_error());
            mxp_tensor_free(want);
            mxp_tensor_free(got);
        }
        mxp_tensor_free(in_file);
        mxp_safetensors_close(f);
    }
    mxp_tensor_free(a);
}

/* ---- our header is valid JSON with the right keys ------------------------------------------ */

static void test_header_json(void) {
    set s;
    set_make(&s);
    const char *path = tpath("hdr.safetensors");
    CHECK(mxp_safetensors_write(path, s.own_e, NT, MXP_DTYPE_COUNT, meta) == MXP_OK, "write: %s",
          mxp_last_error());
    size_t n;
    unsigned char *raw = read_all(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | raw[i];
    CHECK(n >= 8 && hlen <= n - 8, "header length %" PRIu64 " of %zu bytes", hlen, n);
    if (n < 8 || hlen > n - 8) goto out;
    const char *h = (const char *)raw + 8;
    CHECK(h[0] == '{', "header starts with '%c'", h[0]);
    size_t end = hlen;
    while (end > 0 && h[end - 1] == ' ') end--;
    CHECK(end > 0 && h[end - 1] == '}' && hlen - end < 8, "header ends with %zu spaces after '%c'",
          hlen - end, end ? h[end - 1] : '?');
    json_error_t jerr;
    json_t *root = json_loadb(h, end, JSON_REJECT_DUPLICATES, &jerr);
    CHECK(root && json_is_object(root), "our header does not parse: %s", jerr.text);
    if (!root) goto out;
    CHECK(json_object_size(root) == NT + 1, "%zu keys", json_object_size(root));
    /* the tensors in the given order (jansson keeps insertion order), after __metadata__ */
    const char *key;
    json_t *v;
    int i = -1;
    uint64_t off = 0;
    static const char *const stname[] = {"F32", "F16", "BF16"};
    json_object_foreach(root, key, v) {
        if (i < 0) {
            CHECK(strcmp(key, "__metadata__") == 0, "first key '%s'", key);
            CHECK(json_is_object(v) && json_object_size(v) == 2, "__metadata__ is not {2 keys}");
            for (int m = 0; m < 2; m++) {
                const json_t *mv = json_object_get(v, meta[2 * m]);
                CHECK(json_is_string(mv) && strcmp(json_string_value(mv), meta[2 * m + 1]) == 0,
                      "metadata '%s'", meta[2 * m]);
            }
            i++;
            continue;
        }
        if (i >= NT) break;
        CHECK(strcmp(key, names[i]) == 0, "key %d is '%s', want '%s'", i, key, names[i]);
        CHECK(json_object_size(v) == 3, "'%s' has %zu keys", key, json_object_size(v));
        const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
                     *of = json_object_get(v, "data_offsets");
        CHECK(json_is_string(dt) && strcmp(json_string_value(dt), stname[dtypes[i]]) == 0,
              "'%s' dtype", key);
        CHECK(json_is_array(sh) && json_array_size(sh) == (size_t)ndims[i], "'%s' shape", key);
        for (int d = 0; d < ndims[i] && json_is_array(sh); d++)
            CHECK(json_integer_value(json_array_get(sh, (size_t)d)) == shapes[i][d],
                  "'%s' shape[%d]", key, d);
        const uint64_t bytes = (uint64_t)mxp_tensor_numel(s.own[i]) * mxp_dtype_size(dtypes[i]);
        CHECK(json_is_array(of) && json_array_size(of) == 2 &&
                  (uint64_t)json_integer_value(json_array_get(of, 0)) == off &&
                  (uint64_t)json_integer_value(json_array_get(of, 1)) == off + bytes,
              "'%s' data_offsets", key);
        off += bytes;
        i++;
    }
    CHECK(n == 8 + hlen + off, "data section of %zu bytes, want %" PRIu64, n - 8 - (size_t)hlen,
          off);
    json_decref(root);
out:
    free(raw);
    set_free(&s);
}

/* ---- a file written by hand: the public format, not just what we write -------------------- */

static void test_handmade(void) {
    /* w F16 (2,) = [1, -2]; b BF16 () = 0.5; x F32 (1, 2) = [3, 1.5]; z F16 (0,) */
    static const unsigned char data[] = {0x00, 0x3c, 0x00, 0xc0,             /* w */
                                         0x00, 0x3f,                         /* b */
                                         0x00, 0x00, 0x40, 0x40, 0x00, 0x00, /* x */
                                         0xc0, 0x3f};
    /* in an order other than the data's, __metadata__ in the middle, spaces, an extra key */
    static const char header[] =
        "{\"x\": {\"dtype\": \"F32\", \"shape\": [1, 2], \"data_offsets\": [6, 14]},\n"
        " \"__metadata__\": {\"format\": \"pt\", \"caf\\u00e9\": \"\\\"q\\\"\"},\n"
        " \"w\": {\"shape\": [2], \"data_offsets\": [0, 4], \"dtype\": \"F16\", \"x\": 1},\n"
        " \"z\": {\"dtype\": \"F16\", \"shape\": [0], \"data_offsets\": [14, 14]},\n"
        " \"b\": {\"dtype\": \"BF16\", \"shape\": [], \"data_offsets\": [4, 6]}}";
    for (int pad = 0; pad < 2; pad++) {
        const char *path =
            make_file("hand.safetensors", UINT64_MAX, header, pad, data, sizeof data);
        mxp_safetensors_t *f = NULL;
        mxp_status st = mxp_safetensors_open(&f, path);
        CHECK(st == MXP_OK, "hand-made file (pad %d): %s", pad, mxp_last_error());
        if (st != MXP_OK) continue;
        CHECK(mxp_safetensors_count(f) == 4, "%d tensors", mxp_safetensors_count(f));
        static const char *const order[] = {"x", "w", "z", "b"};
        for (int i = 0; i < 4 && i < mxp_safetensors_count(f); i++)
            CHECK(strcmp(mxp_safetensors_info(f, i)->name, order[i]) == 0, "tensor %d: '%s'", i,
                  mxp_safetensors_info(f, i)->name);
        const char *m = mxp_safetensors_meta(f, "caf\xc3\xa9");
        CHECK(m && strcmp(m, "\"q\"") == 0, "meta café = %s", m ? m : "(null)");
        const mxp_st_info *b = mxp_safetensors_find(f, "b");
        CHECK(b && b->dtype == MXP_DTYPE_BF16 && b->ndim == 0 && b->begin == 4 && b->end == 6,
              "info of b");
        float w[2] = {0}, bb = 0, x[2] = {0};
        mxp_tensor tw, tb, tx, tz;
        mxp_tensor_wrap(&tw, w, MXP_DTYPE_F32, 1, (int64_t[]){2}, NULL);
        mxp_tensor_wrap(&tb, &bb, MXP_DTYPE_F32, 0, NULL, NULL);
        mxp_tensor_wrap(&tx, x, MXP_DTYPE_F32, 2, (int64_t[]){1, 2}, NULL);
        mxp_tensor_wrap(&tz, NULL, MXP_DTYPE_BF16, 1, (int64_t[]){0}, NULL);
        CHECK(mxp_safetensors_read(f, "w", &tw) == MXP_OK && w[0] == 1.0f && w[1] == -2.0f,
              "w = [%g, %g]: %s", w[0], w[1], mxp_last_error());
        CHECK(mxp_safetensors_read(f, "b", &tb) == MXP_OK && bb == 0.5f, "b = %g: %s", bb,
              mxp_last_error());
        CHECK(mxp_safetensors_read(f, "x", &tx) == MXP_OK && x[0] == 3.0f && x[1] == 1.5f,
              "x = [%g, %g]: %s", x[0], x[1], mxp_last_error());
        CHECK(mxp_safetensors_read(f, "z", &tz) == MXP_OK, "z: %s", mxp_last_error());
        mxp_safetensors_close(f);
    }
}

/* ---- malformed files ---------------------------------------------------------------------- */

typedef struct bad_case {
    const char *what;
    uint64_t len_field; /* UINT64_MAX: the header's length */
    const char *header;
    size_t ndata;
    mxp_status st;
    const char *msg; /* a substring of the message */
} bad_case;

#define T(name, shape, offs)                                                                       \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" offs "}"
#define U64 UINT64_MAX

static const bad_case bad_cases[] = {
    {"length past EOF", 123456789, "", 4096 - 8, MXP_ERR_FORMAT,
     "header length 123456789 exceeds the file size 4096"},
    {"length 0", 0, "", 8, MXP_ERR_FORMAT, "header length 0"},
    {"length one past EOF", 3, "{}", 0, MXP_ERR_FORMAT, "header length 3 exceeds the file size 10"},
    {"bad JSON", U64, "{\"a\": {", 0, MXP_ERR_FORMAT, "not valid JSON"},
    {"trailing garbage", U64, "{} x", 0, MXP_ERR_FORMAT, "not valid JSON"},
    {"not an object", U64, "[1, 2]", 0, MXP_ERR_FORMAT, "not a JSON object"},
    {"duplicate key", U64, "{" T("a", "[1]", "[0,4]") "," T("a", "[1]", "[0,4]") "}", 4,
     MXP_ERR_FORMAT, "duplicate"},
    {"entry not an object", U64, "{\"a\": 5}", 0, MXP_ERR_FORMAT, "'a' is not an object"},
    {"no dtype", U64, "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, MXP_ERR_FORMAT,
     "'a' has no \"dtype\""},
    {"wrong dtype", U64, "{\"x\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
     MXP_ERR_FORMAT, "dtype 'I64' of 'x' is not supported (F32, F16, BF16)"},
    {"lowercase dtype", U64, "{\"x\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     MXP_ERR_FORMAT, "dtype 'f32' of 'x' is not supported"},
    {"no shape", U64, "{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4,
     MXP_ERR_FORMAT, "'a' has no \"shape\" array"},
    {"negative shape", U64, "{" T("a", "[-1,2]", "[0,8]") "}", 8, MXP_ERR_FORMAT,
     "shape entry 0 is negative (-1)"},
    {"real shape", U64, "{" T("a", "[2,2.0]", "[0,16]") "}", 16, MXP_ERR_FORMAT,
     "shape entry 1 is not an integer"},
    {"string shape", U64, "{" T("a", "[\"2\"]", "[0,8]") "}", 8, MXP_ERR_FORMAT,
     "shape entry 0 is not an integer"},
    {"7 dims", U64, "{" T("a", "[1,1,1,1,1,1,1]", "[0,4]") "}", 4, MXP_ERR_FORMAT,
     "'a' has 7 dimensions, more than 6"},
    {"product overflow", U64, "{" T("a", "[4294967296,4294967296]", "[0,0]") "}", 0, MXP_ERR_FORMAT,
     "shape (4294967296, 4294967296) has too many elements"},
    {"bytes overflow", U64, "{" T("a", "[4611686018427387904]", "[0,0]") "}", 0, MXP_ERR_FORMAT,
     "too many elements"},
    {"bytes past int64", U64, "{" T("a", "[2305843009213693952]", "[0,0]") "}", 0, MXP_ERR_FORMAT,
     "too many elements"},
    {"offsets mismatch", U64, "{" T("fc1.weight", "[10,20]", "[0,100]") "}", 100, MXP_ERR_FORMAT,
     "tensor 'fc1.weight' data_offsets [0, 100] but F32 (10, 20) needs 800 bytes"},
    {"offsets reversed", U64, "{" T("a", "[1]", "[8,4]") "}", 8, MXP_ERR_FORMAT,
     "data_offsets [8, 4] but F32 (1) needs 4 bytes"},
    {"one offset", U64, "{" T("a", "[1]", "[4]") "}", 4, MXP_ERR_FORMAT,
     "'a' needs \"data_offsets\": [begin, end]"},
    {"negative offset", U64, "{" T("a", "[1]", "[-4,0]") "}", 4, MXP_ERR_FORMAT,
     "two non-negative integers"},
    {"string offset", U64, "{" T("a", "[1]", "[0,\"4\"]") "}", 4, MXP_ERR_FORMAT,
     "two non-negative integers"},
    {"out of bounds", U64, "{" T("a", "[2]", "[0,8]") "}", 4, MXP_ERR_FORMAT,
     "'a' data_offsets [0, 8] lie past the end of the 4-byte data section"},
    {"overlap", U64, "{" T("a", "[2]", "[0,8]") "," T("b", "[2]", "[4,12]") "}", 12, MXP_ERR_FORMAT,
     "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
    {"same range twice", U64, "{" T("a", "[2]", "[0,8]") "," T("b", "[2]", "[0,8]") "}", 8,
     MXP_ERR_FORMAT, "overlap"},
    {"empty inside another", U64, "{" T("a", "[2]", "[0,8]") "," T("b", "[0]", "[4,4]") "}", 8,
     MXP_ERR_FORMAT, "tensors 'a' [0, 8] and 'b' [4, 4] overlap"},
    {"gap", U64, "{" T("b", "[1]", "[8,12]") "," T("a", "[1]", "[0,4]") "}", 12, MXP_ERR_FORMAT,
     "no tensor covers data bytes [4, 8) between 'a' and 'b'"},
    {"gap at the start", U64, "{" T("a", "[1]", "[4,8]") "}", 8, MXP_ERR_FORMAT,
     "no tensor covers data bytes [0, 4) before 'a'"},
    {"trailing bytes", U64, "{" T("a", "[1]", "[0,4]") "}", 9, MXP_ERR_FORMAT,
     "no tensor covers data bytes [4, 9) at the end of the file"},
    {"data but no tensors", U64, "{}", 1, MXP_ERR_FORMAT, "no tensor covers data bytes [0, 1)"},
    {"metadata not an object", U64, "{\"__metadata__\": [\"a\", \"b\"]}", 0, MXP_ERR_FORMAT,
     "__metadata__ must map strings to strings; it is not an object"},
    {"metadata number", U64, "{\"__metadata__\": {\"ok\": \"1\", \"k\": 1}}", 0, MXP_ERR_FORMAT,
     "__metadata__ must map strings to strings; 'k' is not a string"},
    {"metadata nested", U64, "{\"__metadata__\": {\"k\": {\"a\": \"b\"}}}", 0, MXP_ERR_FORMAT,
     "'k' is not a string"},
    {"metadata null", U64, "{\"__metadata__\": {\"k\": null}}", 0, MXP_ERR_FORMAT,
     "'k' is not a string"},
    {"NUL in a name", U64, "{\"a\\u0000b\": {}}", 0, MXP_ERR_FORMAT, "not valid JSON"},
    {"not UTF-8", U64, "{\"\xff\": {}}", 0, MXP_ERR_FORMAT, "not valid JSON"},
};

static void test_malformed(void) {
    for (size_t c = 0; c < sizeof bad_cases / sizeof bad_cases[0]; c++) {
        const bad_case *b = &bad_cases[c];
        const char *path = make_file("bad.safetensors", b->len_field, b->header, 0, NULL, b->ndata);
        static int dummy;
        mxp_safetensors_t *f = (mxp_safetensors_t *)&dummy;
        const mxp_status st = mxp_safetensors_open(&f, path);
        const char *msg = mxp_last_error();
        CHECK(st == b->st, "%s: status %d, want %d (%s)", b->what, st, b->st, msg);
        CHECK(f == NULL, "%s: *out not NULL on failure", b->what);
        CHECK(strstr(msg, "bad.safetensors") != NULL, "%s: the message does not name the file: %s",
              b->what, msg);
        CHECK(strstr(msg, b->msg) != NULL, "%s: message '%s' lacks '%s'", b->what, msg, b->msg);
        if (st == MXP_OK) mxp_safetensors_close(f);
    }

    /* padding other than spaces: "{}" and a NUL inside the header's 8 bytes */
    static const unsigned char nul_pad[] = {8,   0,   0,   0,   0,   0,   0,   0,
                                            '{', '}', ' ', ' ', ' ', ' ', ' ', 0};
    const char *path = tpath("nulpad.safetensors");
    write_bytes(path, nul_pad, sizeof nul_pad);
    mxp_safetensors_t *f = NULL;
    mxp_status st = mxp_safetensors_open(&f, path);
    CHECK(st == MXP_ERR_FORMAT && strstr(mxp_last_error(), "not valid JSON"), "NUL padding: %d %s",
          st, mxp_last_error());

    /* short files: no room for the length */
    for (size_t n = 0; n < 8; n++) {
        const char *path = tpath("short.safetensors");
        write_bytes(path, "\x02\0\0\0\0\0\0\0", n);
        mxp_safetensors_t *f = NULL;
        const mxp_status st = mxp_safetensors_open(&f, path);
        CHECK(st == MXP_ERR_FORMAT && strstr(mxp_last_error(), "too short") &&
                  strstr(mxp_last_error(), "short.safetensors"),
              "%zu-byte file: %d %s", n, st, mxp_last_error());
    }

    /* a header length over the 100 MB cap in a (sparse) file that is large enough for it */
    path = tpath("huge.safetensors");
    const uint64_t huge = 100000001;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(huge >> (8 * i));
    write_bytes(path, len8, 8);
    if (truncate(path, 200000000) != 0) die(path);
    st = mxp_safetensors_open(&f, path);
    CHECK(st == MXP_ERR_FORMAT && strstr(mxp_last_error(), "header length 100000001 exceeds the "
                                                           "limit of 100000000"),
          "huge header: %d %s", st, mxp_last_error());
    remove(path);

    /* not there, not a file */
    st = mxp_safetensors_open(&f, tpath("absent.safetensors"));
    CHECK(st == MXP_ERR_IO && strstr(mxp_last_error(), "absent.safetensors") &&
              strstr(mxp_last_error(), "No such file"),
          "absent file: %d %s", st, mxp_last_error());
    st = mxp_safetensors_open(&f, tmpdir);
    CHECK(st == MXP_ERR_IO && strstr(mxp_last_error(), "not a regular file"), "directory: %d %s",
          st, mxp_last_error());
    CHECK(mxp_safetensors_open(NULL, path) == MXP_ERR_INVALID_ARG, "NULL out");
    CHECK(mxp_safetensors_open(&f, NULL) == MXP_ERR_INVALID_ARG, "NULL path");
}

/* ---- reading misuse and a file truncated after open --------------------------------------- */

static void test_read_errors(void) {
    set s;
    set_make(&s);
    const char *path = tpath("rd.safetensors");
    CHECK(mxp_safetensors_write(path, s.own_e, NT, MXP_DTYPE_COUNT, NULL) == MXP_OK, "write: %s",
          mxp_last_error());
    mxp_safetensors_t *f = NULL;
    if (mxp_safetensors_open(&f, path) != MXP_OK) {
        CHECK(0, "open: %s", mxp_last_error());
        set_free(&s);
        return;
    }
    mxp_tensor *t53, *t15, *t35;
    mxp_tensor_create(&t53, MXP_DTYPE_BF16, 2, (int64_t[]){5, 3});
    mxp_tensor_create(&t15, MXP_DTYPE_F32, 1, (int64_t[]){15});
    mxp_tensor_create(&t35, MXP_DTYPE_F32, 2, (int64_t[]){3, 5});
    mxp_status st = mxp_safetensors_read(f, "f32", t53);
    CHECK(st == MXP_ERR_FORMAT && strstr(mxp_last_error(), "rd.safetensors") &&
              strstr(mxp_last_error(), "'f32' is F32 (3, 5), the destination is bf16 (5, 3)"),
          "wrong shape: %d %s", st, mxp_last_error());
    st = mxp_safetensors_read(f, "f32", t15);
    CHECK(st == MXP_ERR_FORMAT && strstr(mxp_last_error(), "(3, 5)") &&
              strstr(mxp_last_error(), "(15)"),
          "wrong ndim: %d %s", st, mxp_last_error());
    st = mxp_safetensors_read(f, "scalar", t15);
    CHECK(st == MXP_ERR_FORMAT && strstr(mxp_last_error(), "F32 (), the destination is f32 (15)"),
          "scalar into a vector: %d %s", st, mxp_last_error());
    st = mxp_safetensors_read(f, "nope", t35);
    CHECK(st == MXP_ERR_FORMAT && strstr(mxp_last_error(), "no tensor 'nope'"), "missing: %d %s",
          st, mxp_last_error());
    mxp_tensor view;
    mxp_tensor_transpose(&view, t53, 0, 1); /* (3, 5), not contiguous */
    CHECK(mxp_safetensors_read(f, "f32", &view) == MXP_ERR_INVALID_ARG, "non-contiguous dst");
    CHECK(mxp_safetensors_read(NULL, "f32", t35) == MXP_ERR_INVALID_ARG, "NULL file");
    CHECK(mxp_safetensors_read(f, NULL, t35) == MXP_ERR_INVALID_ARG, "NULL name");
    CHECK(mxp_safetensors_read(f, "f32", NULL) == MXP_ERR_INVALID_ARG, "NULL dst");
    mxp_tensor bad = *t35;
    bad.dtype = (mxp_dtype)9;
    CHECK(mxp_safetensors_read(f, "f32", &bad) == MXP_ERR_DTYPE, "unknown dtype");
    bad = *t35;
    bad.device = MXP_DEVICE_CUDA;
    CHECK(mxp_safetensors_read(f, "f32", &bad) == MXP_ERR_BACKEND, "CUDA dst");
    CHECK(mxp_safetensors_read(f, "f32", t35) == MXP_OK, "good read: %s", mxp_last_error());

    /* the file shrinks under an open handle: a short read, not garbage */
    if (truncate(path, 8 + 16) != 0) die(path);
    st = mxp_safetensors_read(f, "f32", t35);
    CHECK(st == MXP_ERR_IO && strstr(mxp_last_error(), "short read of tensor 'f32'") &&
              strstr(mxp_last_error(), "rd.safetensors"),
          "truncated: %d %s", st, mxp_last_error());
    mxp_tensor_free(t53);
    mxp_tensor_free(t15);
    mxp_tensor_free(t35);
    mxp_safetensors_close(f);
    set_free(&s);
}

/* ---- writing misuse and failures ---------------------------------------------------------- */

static void test_write_errors(void) {
    set s;
    set_make(&s);
    const char *path = tpath("wr.safetensors");

    /* no such directory: MXP_ERR_IO with the system's reason, nothing created */
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/m.safetensors", tmpdir);
    mxp_status st = mxp_safetensors_write(nodir, s.own_e, NT, MXP_DTYPE_COUNT, meta);
    CHECK(st == MXP_ERR_IO && strstr(mxp_last_error(), "m.safetensors") &&
              strstr(mxp_last_error(), "No such file or directory"),
          "no directory: %d %s", st, mxp_last_error());
    CHECK(!temporaries_left(), "a temporary was left behind");

    /* misuse: refused before any file is made */
    mxp_st_entry e[3] = {s.own_e[0], s.own_e[1], s.own_e[2]};
    e[2].name = "f32";
    st = mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL);
    CHECK(st == MXP_ERR_INVALID_ARG && strstr(mxp_last_error(), "duplicate tensor name 'f32'"),
          "duplicate: %d %s", st, mxp_last_error());
    e[2].name = "";
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG,
          "empty name");
    e[2].name = NULL;
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG,
          "NULL name");
    e[2].name = "__metadata__";
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG,
          "reserved name");
    e[2].name = "caf\xe9"; /* Latin-1, not UTF-8 */
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG,
          "non-UTF-8 name");
    e[2].name = "\xed\xa0\x80"; /* a surrogate */
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG,
          "surrogate in a name");
    e[2].name = "c";
    e[2].t = NULL;
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG,
          "NULL tensor");
    mxp_tensor view;
    mxp_tensor_transpose(&view, s.own[0], 0, 1);
    e[2].t = &view;
    st = mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL);
    CHECK(st == MXP_ERR_INVALID_ARG && strstr(mxp_last_error(), "'c' is not contiguous"),
          "non-contiguous: %d %s", st, mxp_last_error());
    mxp_tensor cuda = *s.own[0];
    cuda.device = MXP_DEVICE_CUDA;
    e[2].t = &cuda;
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, NULL) == MXP_ERR_BACKEND,
          "CUDA tensor");
    e[2].t = s.own[2];
    CHECK(mxp_safetensors_write(path, e, 3, (mxp_dtype)7, NULL) == MXP_ERR_DTYPE, "dtype 7");
    CHECK(mxp_safetensors_write(path, e, 3, (mxp_dtype)-1, NULL) == MXP_ERR_DTYPE, "dtype -1");
    CHECK(mxp_safetensors_write(path, e, -1, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG, "n<0");
    CHECK(mxp_safetensors_write(path, NULL, 1, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG,
          "NULL entries");
    CHECK(mxp_safetensors_write(NULL, e, 3, MXP_DTYPE_COUNT, NULL) == MXP_ERR_INVALID_ARG,
          "NULL path");
    const char *odd_meta[] = {"k", NULL, NULL};
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, odd_meta) == MXP_ERR_INVALID_ARG,
          "meta key without a value");
    const char *dup_meta[] = {"k", "1", "j", "2", "k", "3", NULL};
    st = mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, dup_meta);
    CHECK(st == MXP_ERR_INVALID_ARG && strstr(mxp_last_error(), "duplicate metadata key 'k'"),
          "duplicate meta: %d %s", st, mxp_last_error());
    const char *bad_meta[] = {"k", "\xc0\x80", NULL}; /* overlong NUL */
    CHECK(mxp_safetensors_write(path, e, 3, MXP_DTYPE_COUNT, bad_meta) == MXP_ERR_INVALID_ARG,
          "non-UTF-8 meta");
    CHECK(access(path, F_OK) != 0, "a refused write created %s", path);

    /* a write that fails half way (the file size limit: EFBIG, as a full disk gives ENOSPC)
     * leaves the old file as it was and no temporary */
    CHECK(mxp_safetensors_write(path, s.own_e, NT, MXP_DTYPE_COUNT, meta) == MXP_OK,
          "first write: %s", mxp_last_error());
    size_t n_old;
    unsigned char *old = read_all(path, &n_old);
    const int64_t bshape[1] = {100000};
    mxp_tensor *big = make_tensor(MXP_DTYPE_F32, 1, bshape);
    struct rlimit saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    struct rlimit lim = saved;
    lim.rlim_cur = 65536;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) die("setrlimit");
    /* 400 kB in F32, 200 kB in 16 bits: written as they are and through the buffer */
    for (int dt = 0; dt <= MXP_DTYPE_COUNT; dt++) {
        const mxp_st_entry be[2] = {{"a", s.own[0]}, {"big", big}};
        st = mxp_safetensors_write(path, be, 2, (mxp_dtype)dt, NULL);
        CHECK(st == MXP_ERR_IO && strstr(mxp_last_error(), "wr.safetensors") &&
                  strstr(mxp_last_error(), "File too large"),
              "file size limit (dtype %d): %d %s", dt, st, mxp_last_error());
        CHECK(!temporaries_left(), "a temporary was left behind (dtype %d)", dt);
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, prev);
    size_t n_now;
    unsigned char *now = read_all(path, &n_now);
    CHECK(n_now == n_old && memcmp(now, old, n_old) == 0, "a failed write changed the old file");
    free(old);
    free(now);
    mxp_tensor_free(big);
    check_file(path, s.own, MXP_DTYPE_COUNT, meta);
    set_free(&s);
}

/* ---- allocation failures ------------------------------------------------------------------ */

static void test_nomem(void) {
    set s;
    set_make(&s);
    const char *path = tpath("nomem.safetensors");
    /* write, with conversion (so the chunk buffer is needed too) */
    long budget;
    mxp_status st = MXP_ERR_NOMEM;
    for (budget = 0; budget < 100 && st == MXP_ERR_NOMEM; budget++) {
        remove(path);
        hook_on(budget);
        st = mxp_safetensors_write(path, s.own_e, NT, MXP_DTYPE_BF16, meta);
        hook_off();
        CHECK(hk.allocs == hk.frees, "write, budget %ld: %ld allocations, %ld frees", budget,
              hk.allocs, hk.frees);
        if (st == MXP_ERR_NOMEM) {
            CHECK(access(path, F_OK) != 0 && !temporaries_left(),
                  "write, budget %ld: a file was made", budget);
        }
    }
    CHECK(st == MXP_OK, "write never succeeded: %s", mxp_last_error());
    CHECK(budget >= 3, "write needed only %ld allocations", budget);

    /* open */
    mxp_safetensors_t *f = NULL;
    st = MXP_ERR_NOMEM;
    for (budget = 0; budget < 100 && st == MXP_ERR_NOMEM; budget++) {
        hook_on(budget);
        st = mxp_safetensors_open(&f, path);
        if (st == MXP_OK) mxp_safetensors_close(f);
        hook_off();
        CHECK(hk.allocs == hk.frees, "open, budget %ld: leaked %ld", budget, hk.allocs - hk.frees);
        CHECK(st == MXP_OK || st == MXP_ERR_NOMEM, "open, budget %ld: %s", budget,
              mxp_last_error());
    }
    CHECK(st == MXP_OK, "open never succeeded: %s", mxp_last_error());
    CHECK(budget >= 2, "open needed only %ld allocations", budget);

    /* read with conversion: BF16 in the file into F32 */
    if (mxp_safetensors_open(&f, path) == MXP_OK) {
        hook_on(0);
        st = mxp_safetensors_read(f, "f32", s.f32[0]);
        hook_off();
        CHECK(st == MXP_ERR_NOMEM && hk.allocs == 0, "read with no memory: %d", st);
        hook_on(1);
        st = mxp_safetensors_read(f, "f32", s.f32[0]);
        hook_off();
        CHECK(st == MXP_OK && hk.allocs == hk.frees, "read with one allocation: %s",
              mxp_last_error());
        mxp_safetensors_close(f);
    }
    set_free(&s);
}

/* ---- interop with the official implementation (python) ------------------------------------- */

static int run_python(const char *python, const char *script) {
    set s;
    set_make(&s);
    const char *keep = tpath("ours_keep.safetensors"), *bf16 = tpath("ours_bf16.safetensors"),
               *theirs = tpath("theirs.safetensors");
    CHECK(mxp_safetensors_write(keep, s.own_e, NT, MXP_DTYPE_COUNT, meta) == MXP_OK, "write: %s",
          mxp_last_error());
    CHECK(mxp_safetensors_write(bf16, s.f32_e, NT, MXP_DTYPE_BF16, meta) == MXP_OK, "write: %s",
          mxp_last_error());
    char *argv[] = {(char *)python, (char *)script, (char *)keep,
                    (char *)bf16,   (char *)theirs, NULL};
    pid_t pid;
    int status = 0;
    if (posix_spawn(&pid, python, NULL, NULL, argv, environ) != 0) die(python);
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        set_free(&s);
        return 77;
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "%s disagrees with the official reader (status %d)", script, status);
    /* what the official writer wrote: the same tensors, in the order it chose */
    mxp_safetensors_t *f = NULL;
    mxp_status st = mxp_safetensors_open(&f, theirs);
    CHECK(st == MXP_OK, "open the official file: %s", mxp_last_error());
    if (st == MXP_OK) {
        CHECK(mxp_safetensors_count(f) == NT, "%d tensors", mxp_safetensors_count(f));
        for (int i = 0; i < NT; i++) {
            const mxp_st_info *in = mxp_safetensors_find(f, names[i]);
            CHECK(in && in->dtype == dtypes[i], "official '%s' dtype", names[i]);
            for (int dd = 0; dd < MXP_DTYPE_COUNT; dd++) {
                mxp_tensor *want = converted(s.own[i], (mxp_dtype)dd), *got;
                if (mxp_tensor_create(&got, (mxp_dtype)dd, ndims[i], shapes[i]) != MXP_OK)
                    die(mxp_last_error());
                st = mxp_safetensors_read(f, names[i], got);
                CHECK(st == MXP_OK && same_tensor(got, want), "official '%s' as %s: %s", names[i],
                      mxp_dtype_name((mxp_dtype)dd), mxp_last_error());
                mxp_tensor_free(want);
                mxp_tensor_free(got);
            }
        }
        for (int m = 0; meta[2 * m]; m++) {
            const char *v = mxp_safetensors_meta(f, meta[2 * m]);
            CHECK(v && strcmp(v, meta[2 * m + 1]) == 0, "official meta '%s'", meta[2 * m]);
        }
        mxp_safetensors_close(f);
    }
    set_free(&s);
    return 0;
}

int main(int argc, char **argv) {
    if (tmpdir_make("st") != 0) die("mkdtemp");
    int rc = 0;
    if (argc == 4 && strcmp(argv[1], "--python") == 0) {
        rc = run_python(argv[2], argv[3]);
    } else {
        test_roundtrip();
        test_large();
        test_header_json();
        test_handmade();
        test_malformed();
        test_read_errors();
        test_write_errors();
        test_nomem();
    }
    tmpdir_remove();
    if (rc == 77) SKIP("python lacks torch or safetensors (pip install --no-deps safetensors)");
    return check_exit(argc == 4 ? "test_safetensors --python" : "test_safetensors");
}
