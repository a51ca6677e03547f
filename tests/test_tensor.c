/*
 * test_tensor.c - the tensor layer: create/wrap/free, layout rules, every
 * view op read back element by element against index arithmetic, copy over
 * strided views for all 9 dtype pairs bit-compared with the scalar
 * conversions, fill, describe, the arena, and allocation-failure injection
 * through a counting allocator hook (every failure clean, nothing leaked).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixprec/tensor.h"
#include "test_util.h"

/* ---- a counting allocator that can fail on demand ----------------------- */

static struct {
    long nth;       /* allocation requests since the last arm() */
    long fail_at;   /* fail request number fail_at (0: never) */
    long fail_from; /* fail every request from this number on (0: never) */
    long allocs, frees, live, failed;
} ca;

/* Requests above this are refused, as a real allocator would refuse them;
 * it keeps the huge-shape tests from reaching malloc (ASan aborts there). */
enum { CA_MAX = 1 << 30 };

static void *ca_alloc(size_t size, size_t align, void *user) {
    (void)user;
    ca.nth++;
    if ((ca.fail_at && ca.nth == ca.fail_at) || (ca.fail_from && ca.nth >= ca.fail_from) ||
        size > CA_MAX) {
        ca.failed++;
        return NULL;
    }
    void *p = aligned_alloc(align, (size + align - 1) & ~(align - 1));
    if (p) {
        ca.allocs++;
        ca.live++;
    }
    return p;
}

static void ca_free(void *p, void *user) {
    (void)user;
    if (!p) return;
    ca.frees++;
    ca.live--;
    free(p);
}

static void arm(long fail_at, long fail_from) {
    ca.nth = 0;
    ca.fail_at = fail_at;
    ca.fail_from = fail_from;
}

static void disarm(void) { arm(0, 0); }

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) { return splitmix64(&rng_state); }

static uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* The element's bits, whatever its width. */
static uint32_t get_bits(const mxp_tensor *t, const int64_t *idx) {
    const void *p = mxp_tensor_ptr(t, idx);
    if (!p) return 0xdeadbeefu;
    if (t->dtype == MXP_DTYPE_F32) {
        uint32_t u;
        memcpy(&u, p, 4);
        return u;
    }
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

static void set_bits(mxp_tensor *t, const int64_t *idx, uint32_t bits) {
    void *p = mxp_tensor_ptr(t, idx);
    if (t->dtype == MXP_DTYPE_F32) {
        memcpy(p, &bits, 4);
    } else {
        const uint16_t h = (uint16_t)bits;
        memcpy(p, &h, 2);
    }
}

static float get_f32(const mxp_tensor *t, const int64_t *idx) { return bits_f32(get_bits(t, idx)); }

/* Field by field: a struct copy need not copy padding, so no memcmp. */
static int same_tensor(const mxp_tensor *a, const mxp_tensor *b) {
    int same = a->dtype == b->dtype && a->device == b->device && a->ndim == b->ndim &&
               a->data == b->data && a->owned == b->owned;
    for (int d = 0; d < MXP_MAX_DIMS; d++)
        same = same && a->shape[d] == b->shape[d] && a->stride[d] == b->stride[d];
    return same;
}

/* Odometer over shape; returns 0 after the last index. A shape with a 0
 * has no index at all: callers test numel first. */
static int next_index(int ndim, const int64_t *shape, int64_t *idx) {
    for (int d = ndim - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) return 1;
        idx[d] = 0;
    }
    return 0;
}

/* The reference: what one element of dtype st becomes in dtype dt, through
 * the public scalar functions (a 16-bit to 16-bit conversion widens exactly,
 * then rounds once; the same dtype keeps its bits). */
static uint32_t ref_convert(mxp_dtype dt, mxp_dtype st, uint32_t bits) {
    if (dt == st) return bits;
    const float x = st == MXP_DTYPE_F32   ? bits_f32(bits)
                    : st == MXP_DTYPE_F16 ? mxp_fp16_to_fp32((uint16_t)bits)
                                          : mxp_bf16_to_fp32((uint16_t)bits);
    return dt == MXP_DTYPE_F32   ? f32_bits(x)
           : dt == MXP_DTYPE_F16 ? mxp_fp32_to_fp16(x)
                                 : mxp_fp32_to_bf16(x);
}

/* fp32 values that exercise rounding: ties in fp16 and bf16, overflow,
 * fp16 subnormals and underflow, fp32 subnormals, inf, NaNs with payloads
 * (one signalling), and random bit patterns. */
static uint32_t interesting_f32(void) {
    static const float fixed[] = {0.0f,
                                  -0.0f,
                                  1.0f,
                                  -1.0f,
                                  0.1f,
                                  1.0f + 0x1p-11f,
                                  1.0f + 3 * 0x1p-11f,
                                  1.0f + 0x1p-8f,
                                  1.0f + 3 * 0x1p-8f,
                                  65504.0f,
                                  65519.0f,
                                  65520.0f,
                                  -65520.0f,
                                  0x1p-24f,
                                  0x1p-25f,
                                  3 * 0x1p-26f,
                                  0x1p-14f,
                                  0x1p-149f,
                                  0x1p-127f,
                                  3.4e38f,
                                  1e-8f,
                                  70000.0f};
    static const uint32_t fixed_bits[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc12345u,
                                          0x7f800001u, 0x7fbfffffu, 0x7f7fffffu, 0x00000001u};
    const uint64_t r = rng();
    const unsigned nf = sizeof fixed / sizeof fixed[0],
                   nb = sizeof fixed_bits / sizeof fixed_bits[0];
    switch (r % 4) {
    case 0: return f32_bits(fixed[(r >> 8) % nf]);
    case 1: return fixed_bits[(r >> 8) % nb];
    case 2: return (uint32_t)(r >> 32); /* any pattern */
    default: {
        /* a value near the 16-bit formats' range, on either side */
        const float m = 1.0f + (float)((r >> 8) & 0xffffff) * 0x1p-24f;
        const int e = (int)((r >> 40) % 60) - 40;
        return f32_bits(((r >> 50) & 1 ? -m : m) * ldexpf(1.0f, e));
    }
    }
}

static uint32_t random_bits(mxp_dtype dt) {
    return dt == MXP_DTYPE_F32 ? interesting_f32() : (uint32_t)(rng() & 0xffffu);
}

static const mxp_dtype dtypes[3] = {MXP_DTYPE_F32, MXP_DTYPE_F16, MXP_DTYPE_BF16};

/* ---- create, wrap, free ---------------------------------------------------- */

static void test_create(void) {
    mxp_tensor *t = NULL;
    long a0 = ca.allocs, live0 = ca.live;
    CHECK(mxp_tensor_create(&t, MXP_DTYPE_F32, 3, (int64_t[]){2, 3, 4}) == MXP_OK, "%s",
          mxp_last_error());
    CHECK(ca.allocs - a0 == 2, "create made %ld allocations, expected 2 (struct, storage)",
          ca.allocs - a0);
    CHECK(t && t->ndim == 3 && t->dtype == MXP_DTYPE_F32 && t->device == MXP_DEVICE_CPU, "fields");
    CHECK(t->shape[0] == 2 && t->shape[1] == 3 && t->shape[2] == 4, "shape");
    CHECK(t->stride[0] == 12 && t->stride[1] == 4 && t->stride[2] == 1, "strides %lld %lld %lld",
          (long long)t->stride[0], (long long)t->stride[1], (long long)t->stride[2]);
    for (int d = 3; d < MXP_MAX_DIMS; d++) CHECK(t->shape[d] == 1, "shape[%d] past ndim", d);
    CHECK(t->data && t->owned == t->data, "owns its data");
    CHECK((uintptr_t)t->data % 64 == 0, "data aligned to 64");
    CHECK(mxp_tensor_numel(t) == 24 && mxp_tensor_nbytes(t) == 96, "numel %lld nbytes %zu",
          (long long)mxp_tensor_numel(t), mxp_tensor_nbytes(t));
    CHECK(mxp_tensor_is_contiguous(t), "created tensors are contiguous");
    memset(t->data, 0xab, mxp_tensor_nbytes(t)); /* the whole storage is writable (ASan) */
    mxp_tensor_free(t);
    CHECK(ca.live == live0, "free released everything (%ld live)", ca.live - live0);
    mxp_tensor_free(NULL);

    /* a 0-d scalar: one element, and the empty index reaches it */
    CHECK(mxp_tensor_create(&t, MXP_DTYPE_BF16, 0, NULL) == MXP_OK, "%s", mxp_last_error());
    CHECK(t->ndim == 0 && mxp_tensor_numel(t) == 1 && mxp_tensor_nbytes(t) == 2, "scalar sizes");
    CHECK(mxp_tensor_is_contiguous(t) && mxp_tensor_ptr(t, NULL) == t->data, "scalar ptr");
    mxp_tensor_free(t);

    /* an empty tensor: no elements, but a unique owned pointer and
     * PyTorch-style strides (a size-0 dim counts as 1) */
    CHECK(mxp_tensor_create(&t, MXP_DTYPE_F16, 3, (int64_t[]){3, 0, 2}) == MXP_OK, "%s",
          mxp_last_error());
    CHECK(mxp_tensor_numel(t) == 0 && mxp_tensor_nbytes(t) == 0, "empty sizes");
    CHECK(t->data != NULL && t->owned == t->data, "empty tensor still has a data pointer");
    CHECK(t->stride[0] == 2 && t->stride[1] == 2 && t->stride[2] == 1, "empty strides");
    CHECK(mxp_tensor_is_contiguous(t), "empty is contiguous");
    CHECK(mxp_tensor_ptr(t, (int64_t[]){0, 0, 0}) == NULL, "no element to point at");
    mxp_tensor_free(t);

    /* argument errors: nothing allocated, *out untouched, a message left */
    mxp_tensor *const sentinel = (mxp_tensor *)(uintptr_t)0x1000;
    struct {
        mxp_dtype dt;
        int ndim;
        const int64_t *shape;
        mxp_status want;
    } bad[] = {
        {MXP_DTYPE_F32, -1, (int64_t[]){1}, MXP_ERR_INVALID_ARG},
        {MXP_DTYPE_F32, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}, MXP_ERR_INVALID_ARG},
        {MXP_DTYPE_F32, 2, NULL, MXP_ERR_INVALID_ARG},
        {MXP_DTYPE_F32, 2, (int64_t[]){3, -1}, MXP_ERR_INVALID_ARG},
        {(mxp_dtype)99, 1, (int64_t[]){3}, MXP_ERR_DTYPE},
        {MXP_DTYPE_COUNT, 1, (int64_t[]){3}, MXP_ERR_DTYPE},
        {MXP_DTYPE_F32, 2, (int64_t[]){1LL << 40, 1LL << 40}, MXP_ERR_NOMEM},
        {MXP_DTYPE_F32, 2, (int64_t[]){INT64_MAX, 2}, MXP_ERR_NOMEM},
        {MXP_DTYPE_F32, 1, (int64_t[]){1LL << 61}, MXP_ERR_NOMEM},  /* 2^63 bytes */
        {MXP_DTYPE_BF16, 1, (int64_t[]){INT64_MAX}, MXP_ERR_NOMEM}, /* bytes wrap size_t */
        {MXP_DTYPE_F32, 3, (int64_t[]){0, 1LL << 62, 1LL << 62}, MXP_ERR_NOMEM},
        {MXP_DTYPE_F16, 1, (int64_t[]){1LL << 40}, MXP_ERR_NOMEM}, /* the hook refuses it */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = sentinel;
        mxp_clear_error();
        const long live = ca.live;
        mxp_status st = mxp_tensor_create(&t, bad[i].dt, bad[i].ndim, bad[i].shape);
        CHECK(st == bad[i].want, "bad[%zu]: got %s, want %s", i, mxp_status_str(st),
              mxp_status_str(bad[i].want));
        CHECK(t == sentinel, "bad[%zu]: *out changed on failure", i);
        CHECK(ca.live == live, "bad[%zu]: leaked", i);
        CHECK(mxp_last_error()[0] != '\0', "bad[%zu]: no message", i);
    }
    CHECK(mxp_tensor_create(NULL, MXP_DTYPE_F32, 1, (int64_t[]){3}) == MXP_ERR_INVALID_ARG,
          "NULL out");
}

static void test_wrap(void) {
    float buf[24];
    for (int i = 0; i < 24; i++) buf[i] = (float)i;
    mxp_tensor t;
    CHECK(mxp_tensor_wrap(&t, buf, MXP_DTYPE_F32, 2, (int64_t[]){4, 6}, NULL) == MXP_OK, "%s",
          mxp_last_error());
    CHECK(t.owned == NULL && t.data == buf && t.stride[0] == 6 && t.stride[1] == 1, "wrap fields");
    CHECK(t.shape[2] == 1 && t.stride[2] == 1, "entries past ndim are 1");
    CHECK(get_f32(&t, (int64_t[]){2, 5}) == 17.0f, "wrap element");

    /* explicit strides: a column-major (6, 4) view of the same buffer */
    CHECK(mxp_tensor_wrap(&t, buf, MXP_DTYPE_F32, 2, (int64_t[]){6, 4}, (int64_t[]){1, 6}) ==
              MXP_OK,
          "%s", mxp_last_error());
    CHECK(!mxp_tensor_is_contiguous(&t), "column-major is not row-major");
    CHECK(get_f32(&t, (int64_t[]){5, 2}) == 17.0f, "strided wrap element");

    /* negative strides walk backwards from data */
    CHECK(mxp_tensor_wrap(&t, buf + 23, MXP_DTYPE_F32, 1, (int64_t[]){24}, (int64_t[]){-1}) ==
              MXP_OK,
          "%s", mxp_last_error());
    CHECK(get_f32(&t, (int64_t[]){0}) == 23.0f && get_f32(&t, (int64_t[]){23}) == 0.0f,
          "negative stride");

    /* broadcast: stride 0 */
    CHECK(mxp_tensor_wrap(&t, buf + 3, MXP_DTYPE_F32, 2, (int64_t[]){5, 7}, (int64_t[]){0, 0}) ==
              MXP_OK,
          "%s", mxp_last_error());
    CHECK(get_f32(&t, (int64_t[]){4, 6}) == 3.0f && mxp_tensor_numel(&t) == 35, "broadcast");

    /* an empty tensor needs no memory; a non-empty one does */
    CHECK(mxp_tensor_wrap(&t, NULL, MXP_DTYPE_F16, 2, (int64_t[]){0, 5}, NULL) == MXP_OK, "%s",
          mxp_last_error());
    /* a size-1 dim may have any stride, even one no offset could use */
    CHECK(mxp_tensor_wrap(&t, buf, MXP_DTYPE_F32, 2, (int64_t[]){1, 3},
                          (int64_t[]){INT64_MIN, 1}) == MXP_OK,
          "%s", mxp_last_error());

    mxp_tensor keep;
    CHECK(mxp_tensor_wrap(&keep, buf, MXP_DTYPE_F32, 1, (int64_t[]){3}, NULL) == MXP_OK, "keep");
    const mxp_tensor before = keep;
    struct {
        void *data;
        mxp_dtype dt;
        int ndim;
        const int64_t *shape, *strides;
        mxp_status want;
    } bad[] = {
        {NULL, MXP_DTYPE_F32, 1, (int64_t[]){3}, NULL, MXP_ERR_INVALID_ARG},
        {buf, (mxp_dtype)-1, 1, (int64_t[]){3}, NULL, MXP_ERR_DTYPE},
        {buf, MXP_DTYPE_F32, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}, NULL, MXP_ERR_INVALID_ARG},
        {buf, MXP_DTYPE_F32, 1, (int64_t[]){-3}, NULL, MXP_ERR_INVALID_ARG},
        {buf, MXP_DTYPE_F32, 2, (int64_t[]){1LL << 40, 1LL << 40}, NULL, MXP_ERR_INVALID_ARG},
        {buf, MXP_DTYPE_F32, 1, (int64_t[]){3}, (int64_t[]){INT64_MAX / 2}, MXP_ERR_INVALID_ARG},
        {buf, MXP_DTYPE_F32, 1, (int64_t[]){2}, (int64_t[]){INT64_MIN}, MXP_ERR_INVALID_ARG},
        {buf, MXP_DTYPE_F16, 2, (int64_t[]){1LL << 31, 1LL << 31}, (int64_t[]){1LL << 31, 1},
         MXP_ERR_INVALID_ARG},
        /* broadcast strides, but more elements than any tensor may count */
        {buf, MXP_DTYPE_F32, 2, (int64_t[]){1LL << 32, 1LL << 32}, (int64_t[]){0, 0},
         MXP_ERR_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mxp_status st = mxp_tensor_wrap(&keep, bad[i].data, bad[i].dt, bad[i].ndim, bad[i].shape,
                                        bad[i].strides);
        CHECK(st == bad[i].want, "wrap bad[%zu]: got %s, want %s", i, mxp_status_str(st),
              mxp_status_str(bad[i].want));
        CHECK(same_tensor(&keep, &before), "wrap bad[%zu] changed *t", i);
    }
    CHECK(mxp_tensor_wrap(NULL, buf, MXP_DTYPE_F32, 1, (int64_t[]){3}, NULL) == MXP_ERR_INVALID_ARG,
          "NULL t");
}

/* ---- layout rules ---------------------------------------------------------- */

static void test_layout(void) {
    float buf[64] = {0};
    mxp_tensor t;
    struct {
        int ndim;
        int64_t shape[3], stride[3];
        int contiguous;
        int64_t numel;
    } cases[] = {
        {2, {2, 3}, {3, 1}, 1, 6},
        {2, {2, 3}, {1, 2}, 0, 6},   /* column-major */
        {2, {1, 3}, {999, 1}, 1, 3}, /* size-1 dim: any stride */
        {3, {2, 1, 3}, {3, -7, 1}, 1, 6},
        {1, {1}, {0}, 1, 1},
        {1, {3}, {0}, 0, 3},       /* broadcast */
        {1, {3}, {2}, 0, 3},       /* every other element */
        {2, {2, 3}, {4, 1}, 0, 6}, /* padded rows */
        {2, {0, 3}, {5, 9}, 1, 0}, /* no elements: contiguous by definition */
        {3, {4, 0, 2}, {0, 0, 0}, 1, 0},
        {0, {0}, {0}, 1, 1}, /* a scalar */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(mxp_tensor_wrap(&t, buf, MXP_DTYPE_F16, cases[i].ndim, cases[i].shape,
                              cases[i].stride) == MXP_OK,
              "layout[%zu]: %s", i, mxp_last_error());
        CHECK(mxp_tensor_is_contiguous(&t) == cases[i].contiguous, "layout[%zu]: contiguous %d", i,
              mxp_tensor_is_contiguous(&t));
        CHECK(mxp_tensor_numel(&t) == cases[i].numel, "layout[%zu]: numel %lld", i,
              (long long)mxp_tensor_numel(&t));
        CHECK(mxp_tensor_nbytes(&t) == (size_t)cases[i].numel * 2, "layout[%zu]: nbytes", i);
    }
    CHECK(mxp_tensor_numel(NULL) == 0 && mxp_tensor_nbytes(NULL) == 0, "NULL sizes");
    CHECK(!mxp_tensor_is_contiguous(NULL), "NULL is not contiguous");

    /* mxp_tensor_ptr: exact addresses inside, NULL outside */
    CHECK(mxp_tensor_wrap(&t, buf, MXP_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, (int64_t[]){1, 2, 6}) ==
              MXP_OK,
          "%s", mxp_last_error());
    int64_t idx[3] = {0, 0, 0};
    do {
        const float *want = buf + idx[0] * 1 + idx[1] * 2 + idx[2] * 6;
        CHECK(mxp_tensor_ptr(&t, idx) == want, "ptr(%lld,%lld,%lld)", (long long)idx[0],
              (long long)idx[1], (long long)idx[2]);
    } while (next_index(3, t.shape, idx));
    const int64_t outside[][3] = {{2, 0, 0},  {0, 3, 0},         {0, 0, 4},        {-1, 0, 0},
                                  {0, -1, 0}, {0, 0, INT64_MIN}, {INT64_MAX, 0, 0}};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
        CHECK(mxp_tensor_ptr(&t, outside[i]) == NULL, "ptr outside[%zu]", i);
    CHECK(mxp_tensor_ptr(&t, NULL) == NULL && mxp_tensor_ptr(NULL, idx) == NULL, "ptr NULLs");
}

/* ---- views --------------------------------------------------------------- */

/* x (2, 3, 4, 5) f32 holding its own row-major linear index */
enum { X0 = 2, X1 = 3, X2 = 4, X3 = 5 };
static int64_t lin(int64_t a, int64_t b, int64_t c, int64_t d) {
    return ((a * X1 + b) * X2 + c) * X3 + d;
}

static mxp_tensor *make_x(void) {
    mxp_tensor *x = NULL;
    CHECK(mxp_tensor_create(&x, MXP_DTYPE_F32, 4, (int64_t[]){X0, X1, X2, X3}) == MXP_OK, "x");
    for (int64_t i = 0; i < mxp_tensor_numel(x); i++) ((float *)x->data)[i] = (float)i;
    return x;
}

/* Every element of view v must equal expect(index). */
typedef int64_t (*expect_fn)(const int64_t *idx);
static int check_view(const char *what, const mxp_tensor *v, int ndim, const int64_t *shape,
                      expect_fn expect) {
    int ok = v->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = v->shape[d] == shape[d];
    for (int d = ndim; ok && d < MXP_MAX_DIMS; d++) ok = v->shape[d] == 1;
    CHECK(ok, "%s: ndim/shape wrong", what);
    if (!ok || mxp_tensor_numel(v) == 0) return ok;
    CHECK(v->owned == NULL, "%s: a view owns nothing", what);
    int64_t idx[MXP_MAX_DIMS] = {0};
    int bad = 0;
    do {
        const float got = get_f32(v, idx);
        if (got != (float)expect(idx) && bad++ < 3)
            CHECK(0, "%s: element %lld, want %lld", what, (long long)got, (long long)expect(idx));
    } while (next_index(ndim, shape, idx));
    return !bad;
}

static int64_t e_reshape_6_20(const int64_t *i) { return i[0] * 20 + i[1]; }
static int64_t e_reshape_4_6_5(const int64_t *i) { return (i[0] * 6 + i[1]) * 5 + i[2]; }
static int64_t e_slice3(const int64_t *i) { return lin(i[0], i[1], i[2], 1 + 2 * i[3]); }
static int64_t e_slice1(const int64_t *i) { return lin(i[0], 1 + i[1], i[2], i[3]); }
static int64_t e_transpose13(const int64_t *i) { return lin(i[0], i[3], i[2], i[1]); }
static int64_t e_permute(const int64_t *i) {
    /* perm {2, 0, 3, 1}: view dim k is x dim perm[k] */
    int64_t s[4];
    s[2] = i[0], s[0] = i[1], s[3] = i[2], s[1] = i[3];
    return lin(s[0], s[1], s[2], s[3]);
}
static int64_t e_select2(const int64_t *i) { return lin(i[0], i[1], 3, i[2]); }
static int64_t e_scalar(const int64_t *i) {
    (void)i;
    return lin(1, 2, 3, 4);
}

static void test_views(void) {
    mxp_tensor *x = make_x();
    const mxp_tensor x_before = *x;
    mxp_tensor v, w;
    const long allocs = ca.allocs;

    /* reshape, including -1 */
    CHECK(mxp_tensor_reshape(&v, x, 2, (int64_t[]){6, 20}) == MXP_OK, "%s", mxp_last_error());
    check_view("reshape (6, 20)", &v, 2, (int64_t[]){6, 20}, e_reshape_6_20);
    CHECK(v.stride[0] == 20 && v.stride[1] == 1 && v.data == x->data, "reshape layout");
    CHECK(mxp_tensor_reshape(&v, x, 3, (int64_t[]){4, -1, 5}) == MXP_OK, "%s", mxp_last_error());
    check_view("reshape (4, -1, 5)", &v, 3, (int64_t[]){4, 6, 5}, e_reshape_4_6_5);
    CHECK(mxp_tensor_reshape(&v, x, 1, (int64_t[]){-1}) == MXP_OK && v.shape[0] == 120,
          "reshape -1");
    /* a select of dim 0 is contiguous, so it reshapes */
    CHECK(mxp_tensor_select(&w, x, 0, 1) == MXP_OK, "select");
    CHECK(mxp_tensor_reshape(&v, &w, 2, (int64_t[]){-1, 10}) == MXP_OK, "%s", mxp_last_error());
    CHECK(v.shape[0] == 6 && get_f32(&v, (int64_t[]){5, 9}) == 119.0f, "reshape of a select");
    /* contiguous up to a size-1 dim with an odd stride */
    CHECK(mxp_tensor_slice(&w, x, 0, 1, 1, 1) == MXP_OK, "slice");
    w.stride[0] = 12345;
    CHECK(mxp_tensor_reshape(&v, &w, 1, (int64_t[]){60}) == MXP_OK, "%s", mxp_last_error());
    CHECK(get_f32(&v, (int64_t[]){0}) == 60.0f, "reshape through a size-1 dim");
    /* to and from a 0-d scalar */
    CHECK(mxp_tensor_select(&w, x, 0, 1) == MXP_OK && mxp_tensor_select(&w, &w, 0, 2) == MXP_OK &&
              mxp_tensor_select(&w, &w, 0, 3) == MXP_OK &&
              mxp_tensor_select(&w, &w, 0, 4) == MXP_OK,
          "select to a scalar");
    check_view("scalar", &w, 0, NULL, e_scalar);
    CHECK(mxp_tensor_reshape(&v, &w, 3, (int64_t[]){1, -1, 1}) == MXP_OK && v.shape[1] == 1 &&
              get_f32(&v, (int64_t[]){0, 0, 0}) == (float)lin(1, 2, 3, 4),
          "scalar to (1, 1, 1)");
    CHECK(mxp_tensor_reshape(&w, &v, 0, NULL) == MXP_OK && w.ndim == 0 &&
              get_f32(&w, NULL) == (float)lin(1, 2, 3, 4),
          "(1, 1, 1) to scalar");
    /* reshape errors */
    struct {
        int ndim;
        int64_t shape[7];
        mxp_status want;
    } bad[] = {
        {2, {-1, -1}, MXP_ERR_INVALID_ARG},
        {2, {-2, 60}, MXP_ERR_INVALID_ARG},
        {7, {120, 1, 1, 1, 1, 1, 1}, MXP_ERR_INVALID_ARG},
        {-1, {0}, MXP_ERR_INVALID_ARG},
        {2, {7, -1}, MXP_ERR_SHAPE},
        {2, {5, 5}, MXP_ERR_SHAPE},
        {2, {121, 1}, MXP_ERR_SHAPE},
        {2, {0, -1}, MXP_ERR_SHAPE},
        {2, {0, 120}, MXP_ERR_SHAPE},
        {3, {1LL << 62, 1LL << 62, 8}, MXP_ERR_SHAPE},
        {2, {INT64_MAX, -1}, MXP_ERR_SHAPE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mxp_status st = mxp_tensor_reshape(&v, x, bad[i].ndim, bad[i].shape);
        CHECK(st == bad[i].want, "reshape bad[%zu]: got %s, want %s", i, mxp_status_str(st),
              mxp_status_str(bad[i].want));
    }
    CHECK(mxp_tensor_transpose(&w, x, 0, 1) == MXP_OK, "transpose");
    CHECK(mxp_tensor_reshape(&v, &w, 1, (int64_t[]){120}) == MXP_ERR_SHAPE, "non-contiguous");
    /* an empty tensor reshapes wherever the count is 0 */
    mxp_tensor e;
    CHECK(mxp_tensor_wrap(&e, NULL, MXP_DTYPE_F32, 2, (int64_t[]){3, 0}, NULL) == MXP_OK, "e");
    CHECK(mxp_tensor_reshape(&v, &e, 3, (int64_t[]){0, 5, 7}) == MXP_OK && v.shape[2] == 7,
          "reshape empty");
    CHECK(mxp_tensor_reshape(&v, &e, 2, (int64_t[]){5, -1}) == MXP_OK && v.shape[1] == 0,
          "reshape empty with -1");
    CHECK(mxp_tensor_reshape(&v, &e, 2, (int64_t[]){5, 1}) == MXP_ERR_SHAPE, "empty to 5");

    /* slice */
    CHECK(mxp_tensor_slice(&v, x, 3, 1, 2, 2) == MXP_OK, "%s", mxp_last_error());
    check_view("slice dim 3 [1::2]", &v, 4, (int64_t[]){2, 3, 4, 2}, e_slice3);
    CHECK(!mxp_tensor_is_contiguous(&v), "a stepped slice is not contiguous");
    CHECK(mxp_tensor_slice(&v, x, 1, 1, 2, 1) == MXP_OK, "%s", mxp_last_error());
    check_view("slice dim 1 [1:3]", &v, 4, (int64_t[]){2, 2, 4, 5}, e_slice1);
    CHECK(mxp_tensor_slice(&v, x, 3, 5, 0, 1) == MXP_OK && mxp_tensor_numel(&v) == 0,
          "empty slice at the end");
    CHECK(mxp_tensor_slice(&v, x, 3, 4, 1, INT64_MAX) == MXP_OK && v.stride[3] == 1 &&
              get_f32(&v, (int64_t[]){1, 2, 3, 0}) == (float)lin(1, 2, 3, 4),
          "one element, huge step");
    CHECK(mxp_tensor_slice(&v, x, 3, 0, 3, 2) == MXP_OK && v.shape[3] == 3, "last fits");
    const int64_t sbad[][4] = {
        /* dim, start, len, step */
        {3, 0, 3, 3},
        {3, 0, 6, 1},
        {3, 5, 1, 1},
        {3, 6, 0, 1},
        {3, -1, 1, 1},
        {3, 0, -1, 1},
        {3, 0, 1, 0},
        {3, 0, 1, -1},
        {4, 0, 1, 1},
        {-1, 0, 1, 1},
        {3, 1, INT64_MAX, INT64_MAX},
        {3, INT64_MAX, 1, 1},
    };
    for (size_t i = 0; i < sizeof sbad / sizeof sbad[0]; i++)
        CHECK(mxp_tensor_slice(&v, x, (int)sbad[i][0], sbad[i][1], sbad[i][2], sbad[i][3]) ==
                  MXP_ERR_INVALID_ARG,
              "slice bad[%zu]", i);

    /* transpose and permute */
    CHECK(mxp_tensor_transpose(&v, x, 1, 3) == MXP_OK, "%s", mxp_last_error());
    check_view("transpose(1, 3)", &v, 4, (int64_t[]){2, 5, 4, 3}, e_transpose13);
    CHECK(mxp_tensor_transpose(&v, x, 2, 2) == MXP_OK &&
              memcmp(&v.shape, &x->shape, sizeof v.shape) == 0,
          "transpose(d, d) is the identity");
    CHECK(mxp_tensor_transpose(&v, x, 0, 4) == MXP_ERR_INVALID_ARG, "transpose dim 4");
    CHECK(mxp_tensor_transpose(&v, x, -1, 0) == MXP_ERR_INVALID_ARG, "transpose dim -1");
    CHECK(mxp_tensor_permute(&v, x, (int[]){2, 0, 3, 1}) == MXP_OK, "%s", mxp_last_error());
    check_view("permute(2, 0, 3, 1)", &v, 4, (int64_t[]){4, 2, 5, 3}, e_permute);
    const int pbad[][4] = {{0, 0, 1, 2}, {0, 1, 2, 4}, {-1, 0, 1, 2}, {3, 2, 1, 1}};
    for (size_t i = 0; i < sizeof pbad / sizeof pbad[0]; i++)
        CHECK(mxp_tensor_permute(&v, x, pbad[i]) == MXP_ERR_INVALID_ARG, "permute bad[%zu]", i);
    CHECK(mxp_tensor_permute(&v, x, NULL) == MXP_ERR_INVALID_ARG, "permute NULL");

    /* select */
    CHECK(mxp_tensor_select(&v, x, 2, 3) == MXP_OK, "%s", mxp_last_error());
    check_view("select(2, 3)", &v, 3, (int64_t[]){2, 3, 5}, e_select2);
    CHECK(v.stride[3] == 1, "dropped dims leave stride 1 behind");
    CHECK(mxp_tensor_select(&v, x, 2, 4) == MXP_ERR_INVALID_ARG, "select past the end");
    CHECK(mxp_tensor_select(&v, x, 2, -1) == MXP_ERR_INVALID_ARG, "select -1");
    CHECK(mxp_tensor_select(&v, x, 4, 0) == MXP_ERR_INVALID_ARG, "select dim 4");
    CHECK(mxp_tensor_select(&v, &w, 0, 0) == MXP_OK && v.ndim == 3 && v.stride[0] == 60,
          "select on a transposed view");

    /* views of views, in place on a borrowed struct */
    CHECK(mxp_tensor_transpose(&v, x, 0, 3) == MXP_OK, "t");            /* (5, 3, 4, 2) */
    CHECK(mxp_tensor_select(&v, &v, 1, 2) == MXP_OK, "s");              /* (5, 4, 2) */
    CHECK(mxp_tensor_permute(&v, &v, (int[]){1, 2, 0}) == MXP_OK, "p"); /* (4, 2, 5) */
    CHECK(mxp_tensor_slice(&v, &v, 2, 0, 3, 2) == MXP_OK, "sl");        /* (4, 2, 3): d=0,2,4 */
    /* so view (c, a, k) is x(a, 2, c, 2k) */
    {
        int64_t idx[3] = {0, 0, 0};
        int bad = 0;
        do {
            const float want = (float)lin(idx[1], 2, idx[0], 2 * idx[2]);
            bad += get_f32(&v, idx) != want;
        } while (next_index(3, v.shape, idx));
        CHECK(v.ndim == 3 && v.shape[0] == 4 && v.shape[1] == 2 && v.shape[2] == 3 && !bad,
              "composed view: %d wrong", bad);
    }

    /* errors common to every view op */
    CHECK(mxp_tensor_transpose(x, x, 0, 1) == MXP_ERR_INVALID_ARG, "view over the owner");
    CHECK(mxp_tensor_transpose(NULL, x, 0, 1) == MXP_ERR_INVALID_ARG, "NULL view");
    CHECK(mxp_tensor_transpose(&v, NULL, 0, 1) == MXP_ERR_INVALID_ARG, "NULL src");
    w = *x;
    w.owned = NULL;
    w.dtype = (mxp_dtype)7;
    CHECK(mxp_tensor_select(&v, &w, 0, 0) == MXP_ERR_DTYPE, "bad dtype in src");
    w.dtype = MXP_DTYPE_F32;
    w.stride[1] = INT64_MAX / 2;
    CHECK(mxp_tensor_select(&v, &w, 0, 0) == MXP_ERR_INVALID_ARG, "overflowing strides in src");

    CHECK(same_tensor(x, &x_before), "views changed src");
    CHECK(ca.allocs == allocs, "views allocated memory");
    mxp_tensor_free(x);
}

/* ---- copy and fill --------------------------------------------------------- */

/* Marks in `in` (one byte per element of full) the elements view v covers. */
static void mark_view(const mxp_tensor *full, const mxp_tensor *v, unsigned char *in) {
    const size_t es = mxp_dtype_size(v->dtype);
    int64_t idx[MXP_MAX_DIMS] = {0};
    if (mxp_tensor_numel(v) == 0) return;
    do {
        in[((char *)mxp_tensor_ptr(v, idx) - (char *)full->data) / (ptrdiff_t)es] = 1;
    } while (next_index(v->ndim, v->shape, idx));
}

/* Copy src (a view) into dst (a view of dst_full) and check every element
 * bit for bit against ref_convert, and that nothing outside dst changed. */
static void copy_and_check(const char *what, mxp_tensor *dst_full, mxp_tensor *dst,
                           const mxp_tensor *src) {
    const int64_t n = mxp_tensor_numel(dst_full);
    const uint32_t sentinel = dst_full->dtype == MXP_DTYPE_F32 ? 0x5a5a5a5au : 0x5a5au;
    int64_t idx[MXP_MAX_DIMS] = {0};
    do set_bits(dst_full, idx, sentinel);
    while (next_index(dst_full->ndim, dst_full->shape, idx));

    mxp_status st = mxp_tensor_copy(dst, src);
    CHECK(st == MXP_OK, "%s %s<-%s: %s", what, mxp_dtype_name(dst->dtype),
          mxp_dtype_name(src->dtype), mxp_last_error());
    int bad = 0;
    memset(idx, 0, sizeof idx);
    do {
        const uint32_t s = get_bits(src, idx), got = get_bits(dst, idx);
        const uint32_t want = ref_convert(dst->dtype, src->dtype, s);
        if (got != want && bad++ < 3)
            CHECK(0, "%s %s<-%s: src 0x%x gave 0x%x, want 0x%x", what, mxp_dtype_name(dst->dtype),
                  mxp_dtype_name(src->dtype), s, got, want);
    } while (next_index(dst->ndim, dst->shape, idx));
    unsigned char *in = calloc((size_t)n, 1);
    mark_view(dst_full, dst, in);
    int touched = 0;
    memset(idx, 0, sizeof idx);
    int64_t k = 0;
    do touched += !in[k++] && get_bits(dst_full, idx) != sentinel;
    while (next_index(dst_full->ndim, dst_full->shape, idx));
    CHECK(!touched, "%s: %d elements outside dst changed", what, touched);
    free(in);
}

static void fill_random(mxp_tensor *t) {
    int64_t idx[MXP_MAX_DIMS] = {0};
    if (mxp_tensor_numel(t) == 0) return;
    do set_bits(t, idx, random_bits(t->dtype));
    while (next_index(t->ndim, t->shape, idx));
}

/* A dst in which two indices name one element, copied from a src in another
 * buffer: refused before anything is written, whatever the layout. */
static void expect_self_overlap(const char *what, int ndim, const int64_t *shape,
                                const int64_t *strides, int64_t origin) {
    float dbuf[64], sbuf[64];
    for (int i = 0; i < 64; i++) dbuf[i] = -1.0f, sbuf[i] = (float)i;
    mxp_tensor d, s;
    CHECK(mxp_tensor_wrap(&d, dbuf + origin, MXP_DTYPE_F32, ndim, shape, strides) == MXP_OK,
          "%s: wrap dst: %s", what, mxp_last_error());
    CHECK(mxp_tensor_wrap(&s, sbuf, MXP_DTYPE_F32, ndim, shape, NULL) == MXP_OK, "%s: wrap src",
          what);
    CHECK(mxp_tensor_copy(&d, &s) == MXP_ERR_INVALID_ARG, "%s: self-overlapping dst accepted",
          what);
    CHECK(strstr(mxp_last_error(), "overlaps itself") != NULL, "%s: message: %s", what,
          mxp_last_error());
    int written = 0;
    for (int i = 0; i < 64; i++) written += dbuf[i] != -1.0f;
    CHECK(!written, "%s: a refused copy wrote %d elements", what, written);
}

/* A dst layout with no shared elements, checked as copy_and_check does:
 * every element lands, nothing outside dst moves. */
static void expect_copy_ok(const char *what, int ndim, const int64_t *shape, const int64_t *strides,
                           int64_t origin) {
    mxp_tensor *full, *src;
    mxp_tensor d;
    CHECK(mxp_tensor_create(&full, MXP_DTYPE_F32, 1, (int64_t[]){64}) == MXP_OK, "full");
    CHECK(mxp_tensor_create(&src, MXP_DTYPE_BF16, ndim, shape) == MXP_OK, "src");
    fill_random(src);
    CHECK(mxp_tensor_wrap(&d, (float *)full->data + origin, MXP_DTYPE_F32, ndim, shape, strides) ==
              MXP_OK,
          "%s: wrap dst: %s", what, mxp_last_error());
    copy_and_check(what, full, &d, src);
    mxp_tensor_free(full);
    mxp_tensor_free(src);
}

static void test_copy_self_overlap(void) {
    expect_self_overlap("(2, 2) strides (1, 1)", 2, (int64_t[]){2, 2}, (int64_t[]){1, 1}, 0);
    expect_self_overlap("(3, 4) strides (2, 1)", 2, (int64_t[]){3, 4}, (int64_t[]){2, 1}, 0);
    expect_self_overlap("(4, 3) strides (1, 2)", 2, (int64_t[]){4, 3}, (int64_t[]){1, 2}, 0);
    expect_self_overlap("(2, 2) strides (-1, 1)", 2, (int64_t[]){2, 2}, (int64_t[]){-1, 1}, 8);
    expect_self_overlap("(2, 2) strides (3, -3)", 2, (int64_t[]){2, 2}, (int64_t[]){3, -3}, 8);
    expect_self_overlap("(2, 3, 2) strides (4, 0, 1)", 3, (int64_t[]){2, 3, 2},
                        (int64_t[]){4, 0, 1}, 0);
    expect_self_overlap("(2, 2, 2) strides (4, 1, 4)", 3, (int64_t[]){2, 2, 2},
                        (int64_t[]){4, 1, 4}, 0);
    expect_self_overlap("(3, 3, 3) strides (9, 2, 4)", 3, (int64_t[]){3, 3, 3},
                        (int64_t[]){9, 2, 4}, 0);
    expect_self_overlap("(1, 4) strides (5, 0)", 2, (int64_t[]){1, 4}, (int64_t[]){5, 0}, 0);

    /* distinct elements: transposed, sliced, stepped, reversed, gapped,
     * and size-1 dims with strides that would clash if they counted */
    expect_copy_ok("transposed (4, 3) strides (1, 4)", 2, (int64_t[]){4, 3}, (int64_t[]){1, 4}, 0);
    expect_copy_ok("sliced (3, 4) strides (8, 1)", 2, (int64_t[]){3, 4}, (int64_t[]){8, 1}, 2);
    expect_copy_ok("stepped (3, 4) strides (1, 3)", 2, (int64_t[]){3, 4}, (int64_t[]){1, 3}, 0);
    expect_copy_ok("reversed (3, 4) strides (-4, -1)", 2, (int64_t[]){3, 4}, (int64_t[]){-4, -1},
                   11);
    expect_copy_ok("mixed signs (2, 3, 2) strides (-1, 6, -2)", 3, (int64_t[]){2, 3, 2},
                   (int64_t[]){-1, 6, -2}, 3);
    expect_copy_ok("permuted (2, 2, 3) strides (1, 12, 3)", 3, (int64_t[]){2, 2, 3},
                   (int64_t[]){1, 12, 3}, 0);
    expect_copy_ok("size-1 dims (4, 1, 3) strides (3, 0, 1)", 3, (int64_t[]){4, 1, 3},
                   (int64_t[]){3, 0, 1}, 0);
    expect_copy_ok("size-1 dims (1, 1, 5) strides (1, 1, 1)", 3, (int64_t[]){1, 1, 5},
                   (int64_t[]){1, 1, 1}, 0);

    /* a view made by the API itself: a stepped slice, transposed */
    mxp_tensor *full, *src;
    mxp_tensor v;
    CHECK(mxp_tensor_create(&full, MXP_DTYPE_F16, 2, (int64_t[]){6, 7}) == MXP_OK, "full");
    CHECK(mxp_tensor_create(&src, MXP_DTYPE_F32, 2, (int64_t[]){5, 3}) == MXP_OK, "src");
    fill_random(src);
    CHECK(mxp_tensor_slice(&v, full, 1, 1, 5, 1) == MXP_OK &&
              mxp_tensor_slice(&v, &v, 0, 0, 3, 2) == MXP_OK &&
              mxp_tensor_transpose(&v, &v, 0, 1) == MXP_OK,
          "slice, step, transpose");
    copy_and_check("API view (5, 3) strides (1, 14)", full, &v, src);
    mxp_tensor_free(full);
    mxp_tensor_free(src);
}

static void test_copy(void) {
    const long allocs0 = ca.allocs;
    long allocs_in_copy = 0;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            const mxp_dtype dt = dtypes[i], st = dtypes[j];
            mxp_tensor *sfull, *dfull, *scont, *dcont;
            mxp_tensor sv, dv;
            CHECK(mxp_tensor_create(&sfull, st, 3, (int64_t[]){3, 4, 10}) == MXP_OK, "sfull");
            CHECK(mxp_tensor_create(&dfull, dt, 3, (int64_t[]){5, 3, 9}) == MXP_OK, "dfull");
            CHECK(mxp_tensor_create(&scont, st, 3, (int64_t[]){4, 5, 3}) == MXP_OK, "scont");
            CHECK(mxp_tensor_create(&dcont, dt, 3, (int64_t[]){4, 5, 3}) == MXP_OK, "dcont");
            fill_random(sfull);
            fill_random(scont);
            /* src view (4, 5, 3): every other column of the last dim, permuted */
            CHECK(mxp_tensor_slice(&sv, sfull, 2, 1, 5, 2) == MXP_OK, "sv slice");
            CHECK(mxp_tensor_permute(&sv, &sv, (int[]){1, 2, 0}) == MXP_OK, "sv permute");
            /* dst view (4, 5, 3): a stepped slice of dfull, permuted differently */
            CHECK(mxp_tensor_slice(&dv, dfull, 2, 2, 4, 2) == MXP_OK, "dv slice");
            CHECK(mxp_tensor_permute(&dv, &dv, (int[]){2, 0, 1}) == MXP_OK, "dv permute");
            const long a = ca.allocs;
            copy_and_check("strided<-strided", dfull, &dv, &sv);
            copy_and_check("strided<-contiguous", dfull, &dv, scont);
            copy_and_check("contiguous<-strided", dcont, dcont, &sv);
            copy_and_check("contiguous<-contiguous", dcont, dcont, scont);
            allocs_in_copy += ca.allocs - a;

            /* long rows: contiguous inner rows on both sides go through
             * mxp_convert (SIMD) row by row; the whole-buffer case in one call */
            mxp_tensor *big, *bd, *bc;
            mxp_tensor bv, bdv;
            CHECK(mxp_tensor_create(&big, st, 2, (int64_t[]){6, 333}) == MXP_OK, "big");
            CHECK(mxp_tensor_create(&bd, dt, 2, (int64_t[]){3, 340}) == MXP_OK, "bd");
            CHECK(mxp_tensor_create(&bc, dt, 2, (int64_t[]){6, 333}) == MXP_OK, "bc");
            fill_random(big);
            CHECK(mxp_tensor_slice(&bv, big, 0, 1, 3, 2) == MXP_OK, "bv");
            CHECK(mxp_tensor_slice(&bdv, bd, 1, 7, 333, 1) == MXP_OK, "bdv");
            copy_and_check("rows<-rows", bd, &bdv, &bv);
            copy_and_check("whole", bc, bc, big);
            mxp_tensor_free(big);
            mxp_tensor_free(bd);
            mxp_tensor_free(bc);

            /* a 0-d scalar */
            mxp_tensor s0, d0;
            CHECK(mxp_tensor_select(&s0, scont, 0, 3) == MXP_OK &&
                      mxp_tensor_select(&s0, &s0, 0, 4) == MXP_OK &&
                      mxp_tensor_select(&s0, &s0, 0, 2) == MXP_OK,
                  "s0");
            CHECK(mxp_tensor_reshape(&d0, dcont, 3, (int64_t[]){60, 1, 1}) == MXP_OK &&
                      mxp_tensor_select(&d0, &d0, 0, 59) == MXP_OK &&
                      mxp_tensor_select(&d0, &d0, 0, 0) == MXP_OK &&
                      mxp_tensor_select(&d0, &d0, 0, 0) == MXP_OK,
                  "d0");
            copy_and_check("scalar", dcont, &d0, &s0);

            mxp_tensor_free(sfull);
            mxp_tensor_free(dfull);
            mxp_tensor_free(scont);
            mxp_tensor_free(dcont);
        }
    }
    CHECK(allocs_in_copy == 0, "copy allocated %ld times", allocs_in_copy);
    CHECK(ca.allocs - allocs0 == 9 * 7 * 2, "create count");

    /* errors */
    float buf[128];
    for (int i = 0; i < 128; i++) buf[i] = (float)i;
    mxp_tensor a, b, c;
    CHECK(mxp_tensor_wrap(&a, buf, MXP_DTYPE_F32, 2, (int64_t[]){4, 8}, NULL) == MXP_OK, "a");
    CHECK(mxp_tensor_wrap(&b, buf + 32, MXP_DTYPE_F32, 2, (int64_t[]){4, 8}, NULL) == MXP_OK, "b");
    CHECK(mxp_tensor_copy(&b, &a) == MXP_OK && buf[32 + 31] == 31.0f, "adjacent halves");
    CHECK(mxp_tensor_copy(&a, &a) == MXP_OK && buf[5] == 5.0f, "copy onto itself is a no-op");
    CHECK(mxp_tensor_wrap(&b, buf + 7, MXP_DTYPE_F32, 2, (int64_t[]){4, 8}, NULL) == MXP_OK, "b");
    CHECK(mxp_tensor_copy(&b, &a) == MXP_ERR_INVALID_ARG, "overlap");
    CHECK(mxp_tensor_copy(&a, &b) == MXP_ERR_INVALID_ARG, "overlap, other way");
    CHECK(buf[7] == 7.0f && buf[38] == 6.0f, "a rejected copy writes nothing");
    CHECK(mxp_tensor_transpose(&b, &a, 0, 1) == MXP_OK, "bt");
    CHECK(mxp_tensor_wrap(&c, buf, MXP_DTYPE_F32, 2, (int64_t[]){8, 4}, NULL) == MXP_OK, "c");
    CHECK(mxp_tensor_copy(&c, &b) == MXP_ERR_INVALID_ARG, "same storage, other layout");
    CHECK(mxp_tensor_copy(&a, &b) == MXP_ERR_SHAPE, "(4, 8) <- (8, 4)");
    CHECK(mxp_tensor_wrap(&c, buf + 64, MXP_DTYPE_F32, 3, (int64_t[]){1, 4, 8}, NULL) == MXP_OK,
          "c");
    CHECK(mxp_tensor_copy(&c, &a) == MXP_ERR_SHAPE, "(1, 4, 8) <- (4, 8): ndim differs");
    CHECK(mxp_tensor_wrap(&c, buf + 64, MXP_DTYPE_F32, 2, (int64_t[]){4, 8}, (int64_t[]){1, 0}) ==
              MXP_OK,
          "c");
    CHECK(mxp_tensor_copy(&c, &a) == MXP_ERR_INVALID_ARG, "dst broadcasts");
    CHECK(buf[64] == 64.0f, "nothing written");
    test_copy_self_overlap();
    CHECK(mxp_tensor_wrap(&b, buf + 96, MXP_DTYPE_F32, 2, (int64_t[]){4, 8}, NULL) == MXP_OK, "b");
    CHECK(mxp_tensor_copy(&b, &c) == MXP_OK && buf[96 + 8 + 7] == 65.0f && buf[96 + 24] == 67.0f,
          "broadcast src");
    mxp_tensor gpu = a;
    gpu.device = MXP_DEVICE_CUDA;
    CHECK(mxp_tensor_copy(&gpu, &b) == MXP_ERR_BACKEND, "copy to cuda");
    CHECK(strstr(mxp_last_error(), "cuda") != NULL, "message names the device: %s",
          mxp_last_error());
    CHECK(mxp_tensor_copy(&b, &gpu) == MXP_ERR_BACKEND, "copy from cuda");
    gpu.device = (mxp_device)5;
    CHECK(mxp_tensor_copy(&b, &gpu) == MXP_ERR_INVALID_ARG, "unknown device");
    CHECK(mxp_tensor_copy(NULL, &a) == MXP_ERR_INVALID_ARG, "NULL dst");
    CHECK(mxp_tensor_copy(&a, NULL) == MXP_ERR_INVALID_ARG, "NULL src");
    CHECK(mxp_tensor_wrap(&b, NULL, MXP_DTYPE_BF16, 2, (int64_t[]){0, 8}, NULL) == MXP_OK &&
              mxp_tensor_wrap(&c, buf, MXP_DTYPE_F32, 2, (int64_t[]){0, 8}, NULL) == MXP_OK &&
              mxp_tensor_copy(&b, &c) == MXP_OK,
          "empty copy");
}

static void test_fill(void) {
    uint16_t h[40];
    const float values[] = {0.1f, -65520.0f, 1e-40f, 1.0f + 0x1p-8f, 0x1p-25f};
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
        for (int k = 1; k < 3; k++) {
            const mxp_dtype dt = dtypes[k];
            memset(h, 0x77, sizeof h);
            mxp_tensor full, t;
            CHECK(mxp_tensor_wrap(&full, h, dt, 2, (int64_t[]){5, 8}, NULL) == MXP_OK, "full");
            CHECK(mxp_tensor_slice(&t, &full, 1, 1, 3, 3) == MXP_OK, "t"); /* cols 1, 4, 7 */
            CHECK(mxp_tensor_fill(&t, values[v]) == MXP_OK, "%s", mxp_last_error());
            const uint16_t want =
                dt == MXP_DTYPE_F16 ? mxp_fp32_to_fp16(values[v]) : mxp_fp32_to_bf16(values[v]);
            int bad = 0;
            for (int i = 0; i < 40; i++) bad += h[i] != ((i % 8) % 3 == 1 ? want : 0x7777);
            CHECK(!bad, "fill %s %g: %d elements wrong", mxp_dtype_name(dt), values[v], bad);
        }
    }
    float f[6] = {0};
    mxp_tensor t;
    const float nan = bits_f32(0x7fc01234u);
    CHECK(mxp_tensor_wrap(&t, f, MXP_DTYPE_F32, 2, (int64_t[]){3, 2}, NULL) == MXP_OK, "t");
    CHECK(mxp_tensor_fill(&t, nan) == MXP_OK && f32_bits(f[5]) == 0x7fc01234u,
          "f32 fill keeps bits");
    CHECK(mxp_tensor_wrap(&t, f, MXP_DTYPE_F32, 2, (int64_t[]){3, 4}, (int64_t[]){0, 0}) ==
                  MXP_OK &&
              mxp_tensor_fill(&t, 2.5f) == MXP_OK && f[0] == 2.5f && f[1] != 2.5f,
          "fill through a broadcast view");
    CHECK(mxp_tensor_wrap(&t, f, MXP_DTYPE_F32, 0, NULL, NULL) == MXP_OK &&
              mxp_tensor_fill(&t, -3.0f) == MXP_OK && f[0] == -3.0f,
          "fill a scalar");
    CHECK(mxp_tensor_wrap(&t, NULL, MXP_DTYPE_F32, 1, (int64_t[]){0}, NULL) == MXP_OK &&
              mxp_tensor_fill(&t, 1.0f) == MXP_OK,
          "fill nothing");
    memset(f, 0, sizeof f);
    CHECK(mxp_tensor_wrap(&t, f, MXP_DTYPE_F32, 1, (int64_t[]){6}, NULL) == MXP_OK, "t");
    t.device = MXP_DEVICE_CUDA;
    CHECK(mxp_tensor_fill(&t, 1.0f) == MXP_ERR_BACKEND && f[1] == 0.0f, "fill on cuda");
    CHECK(mxp_tensor_fill(NULL, 1.0f) == MXP_ERR_INVALID_ARG, "fill NULL");
}

static void test_describe(void) {
    char buf[96];
    mxp_tensor *x;
    CHECK(mxp_tensor_create(&x, MXP_DTYPE_BF16, 4, (int64_t[]){8, 3, 28, 28}) == MXP_OK, "x");
    CHECK(strcmp(mxp_tensor_describe(x, buf, sizeof buf), "bf16 (8, 3, 28, 28)") == 0, "%s", buf);
    mxp_tensor v;
    CHECK(mxp_tensor_transpose(&v, x, 2, 3) == MXP_OK, "v");
    CHECK(strcmp(mxp_tensor_describe(&v, buf, sizeof buf),
                 "bf16 (8, 3, 28, 28) strides (2352, 784, 1, 28)") == 0,
          "%s", buf);
    CHECK(mxp_tensor_select(&v, x, 0, 0) == MXP_OK && mxp_tensor_select(&v, &v, 0, 0) == MXP_OK &&
              mxp_tensor_select(&v, &v, 0, 0) == MXP_OK,
          "v");
    CHECK(strcmp(mxp_tensor_describe(&v, buf, sizeof buf), "bf16 (28)") == 0, "%s", buf);
    CHECK(mxp_tensor_select(&v, &v, 0, 0) == MXP_OK, "v");
    CHECK(strcmp(mxp_tensor_describe(&v, buf, sizeof buf), "bf16 ()") == 0, "%s", buf);
    v.device = MXP_DEVICE_CUDA;
    CHECK(strcmp(mxp_tensor_describe(&v, buf, sizeof buf), "bf16 () cuda") == 0, "%s", buf);
    char small[8];
    memset(small, 'z', sizeof small);
    CHECK(mxp_tensor_describe(x, small, sizeof small) == small && strcmp(small, "bf16 (8") == 0,
          "truncated: %s", small);
    CHECK(strcmp(mxp_tensor_describe(NULL, buf, sizeof buf), "(null)") == 0, "NULL");
    small[0] = 'q';
    CHECK(mxp_tensor_describe(x, small, 0) == small && small[0] == 'q', "size 0 writes nothing");
    mxp_tensor_free(x);
}

/* ---- arena -------------------------------------------------------------- */

/* One "step": pieces of these sizes, each written over in full. */
static void step(mxp_arena_t *a, const size_t *sizes, int n, void **out) {
    for (int i = 0; i < n; i++) {
        unsigned char *p = mxp_arena_alloc(a, sizes[i]);
        CHECK(p != NULL, "step piece %d (%zu bytes): %s", i, sizes[i], mxp_last_error());
        CHECK((uintptr_t)p % 64 == 0, "piece %d not aligned to 64", i);
        if (p) memset(p, i + 1, sizes[i]);
        if (out) out[i] = p;
    }
}

static size_t up64(size_t n) { return n ? (n + 63) / 64 * 64 : 64; }

static void test_arena(void) {
    mxp_arena_t *a = NULL;
    long a0 = ca.allocs;
    CHECK(mxp_arena_create(&a, 1000) == MXP_OK, "%s", mxp_last_error());
    CHECK(ca.allocs - a0 == 2, "arena + first block");
    CHECK(mxp_arena_capacity(a) == 1024 && mxp_arena_used(a) == 0 && mxp_arena_peak(a) == 0,
          "fresh arena: capacity %zu", mxp_arena_capacity(a));

    /* alignment, uniqueness, no overlap: random sizes, each piece stamped
     * with its number and checked after all are handed out */
    enum { NP = 200 };
    void *pieces[NP];
    size_t sizes[NP], total = 0;
    for (int i = 0; i < NP; i++) {
        sizes[i] = i % 10 == 0 ? 0 : (size_t)(rng() % 300);
        total += up64(sizes[i]);
    }
    step(a, sizes, NP, pieces);
    int bad = 0;
    for (int i = 0; i < NP; i++) {
        for (size_t k = 0; k < sizes[i]; k++) bad += ((unsigned char *)pieces[i])[k] != i + 1;
        for (int j = 0; j < i; j++) bad += pieces[i] == pieces[j];
    }
    CHECK(!bad, "pieces overlap or repeat (%d)", bad);
    CHECK(mxp_arena_used(a) == total && mxp_arena_peak(a) == total, "used %zu, want %zu",
          mxp_arena_used(a), total);
    CHECK(mxp_arena_capacity(a) >= total, "capacity");
    mxp_arena_free(a);
    mxp_arena_free(NULL);

    /* growth and consolidation, counted through the hook */
    const size_t s1[] = {100, 5000, 64, 20000, 0, 3000, 1};
    const int n1 = sizeof s1 / sizeof s1[0];
    size_t want_peak = 0;
    for (int i = 0; i < n1; i++) want_peak += up64(s1[i]);
    CHECK(mxp_arena_create(&a, 0) == MXP_OK && mxp_arena_capacity(a) == 0, "empty arena");
    long b = ca.allocs;
    step(a, s1, n1, NULL);
    const long grew = ca.allocs - b;
    CHECK(grew >= 2, "the first step grew the arena %ld times", grew);
    CHECK(mxp_arena_used(a) == want_peak && mxp_arena_peak(a) == want_peak, "used %zu peak %zu",
          mxp_arena_used(a), mxp_arena_peak(a));
    CHECK(mxp_arena_capacity(a) > want_peak, "grown blocks have slack");
    b = ca.allocs;
    long f = ca.frees;
    mxp_arena_reset(a);
    CHECK(ca.allocs - b == 1 && ca.frees - f == grew, "reset: %ld allocs, %ld frees", ca.allocs - b,
          ca.frees - f);
    CHECK(mxp_arena_capacity(a) == want_peak && mxp_arena_used(a) == 0 &&
              mxp_arena_peak(a) == want_peak,
          "consolidated to the peak: capacity %zu", mxp_arena_capacity(a));
    for (int s = 0; s < 3; s++) {
        b = ca.allocs;
        f = ca.frees;
        step(a, s1, n1, NULL);
        mxp_arena_reset(a);
        CHECK(ca.allocs == b && ca.frees == f, "step %d allocated %ld, freed %ld", s + 2,
              ca.allocs - b, ca.frees - f);
    }
    CHECK(mxp_arena_capacity(a) == want_peak, "capacity stays at the peak");
    /* a smaller step fits too, and the peak is kept */
    step(a, s1, 3, NULL);
    CHECK(mxp_arena_used(a) == up64(100) + up64(5000) + up64(64) && mxp_arena_peak(a) == want_peak,
          "smaller step");
    mxp_arena_reset(a);
    /* a bigger step grows again and consolidates to the new peak */
    const size_t s2[] = {20000, 20000, 20000};
    step(a, s2, 3, NULL);
    mxp_arena_reset(a);
    CHECK(mxp_arena_peak(a) == 3 * up64(20000) && mxp_arena_capacity(a) == 3 * up64(20000),
          "new peak %zu capacity %zu", mxp_arena_peak(a), mxp_arena_capacity(a));

    /* tensors in the arena: struct and data, no hook allocation */
    b = ca.allocs;
    mxp_tensor *t = NULL;
    CHECK(mxp_tensor_arena(a, &t, MXP_DTYPE_F16, 2, (int64_t[]){3, 7}) == MXP_OK, "%s",
          mxp_last_error());
    CHECK(ca.allocs == b, "an arena tensor that fits allocates nothing");
    CHECK(t && t->owned == NULL && t->ndim == 2 && t->shape[1] == 7 && t->stride[0] == 7 &&
              t->device == MXP_DEVICE_CPU && mxp_tensor_is_contiguous(t),
          "arena tensor fields");
    CHECK((uintptr_t)t % 64 == 0 && (uintptr_t)t->data % 64 == 0, "arena tensor alignment");
    CHECK((char *)t->data - (char *)t == 128, "data right after the struct");
    CHECK(mxp_arena_used(a) == 128 + up64(42), "used %zu", mxp_arena_used(a));
    CHECK(mxp_tensor_fill(t, 1.5f) == MXP_OK && ((uint16_t *)t->data)[20] == 0x3e00,
          "fill arena tensor");
    mxp_tensor *e = NULL;
    CHECK(mxp_tensor_arena(a, &e, MXP_DTYPE_F32, 2, (int64_t[]){0, 3}) == MXP_OK && e->data &&
              e->data != t->data,
          "empty arena tensor has its own address");
    mxp_tensor *const sentinel = (mxp_tensor *)(uintptr_t)0x1000;
    t = sentinel;
    CHECK(mxp_tensor_arena(a, &t, MXP_DTYPE_F16, 1, (int64_t[]){-1}) == MXP_ERR_INVALID_ARG,
          "negative");
    CHECK(mxp_tensor_arena(a, &t, (mxp_dtype)9, 1, (int64_t[]){1}) == MXP_ERR_DTYPE, "dtype");
    CHECK(mxp_tensor_arena(a, &t, MXP_DTYPE_F32, 2, (int64_t[]){1LL << 40, 1LL << 40}) ==
              MXP_ERR_NOMEM,
          "huge");
    CHECK(mxp_tensor_arena(a, &t, MXP_DTYPE_F32, 1, (int64_t[]){1LL << 60}) == MXP_ERR_NOMEM,
          "hook refuses");
    CHECK(mxp_tensor_arena(NULL, &t, MXP_DTYPE_F32, 1, (int64_t[]){1}) == MXP_ERR_INVALID_ARG,
          "NULL arena");
    CHECK(mxp_tensor_arena(a, NULL, MXP_DTYPE_F32, 1, (int64_t[]){1}) == MXP_ERR_INVALID_ARG,
          "NULL out");
    CHECK(t == sentinel, "*out untouched on failure");

    /* pieces too large to describe never reach the allocator */
    b = ca.nth;
    CHECK(mxp_arena_alloc(a, SIZE_MAX) == NULL && mxp_arena_alloc(a, SIZE_MAX - 62) == NULL,
          "huge pieces");
    CHECK(ca.nth == b, "a size that overflows is refused before the hook");
    CHECK(mxp_arena_alloc(NULL, 8) == NULL, "NULL arena");
    mxp_arena_free(a);
    CHECK(mxp_arena_create(NULL, 8) == MXP_ERR_INVALID_ARG, "NULL out");
    a = NULL;
    CHECK(mxp_arena_create(&a, SIZE_MAX - 3) == MXP_ERR_NOMEM && a == NULL, "huge capacity");
    CHECK(mxp_arena_used(NULL) == 0 && mxp_arena_peak(NULL) == 0 && mxp_arena_capacity(NULL) == 0,
          "NULL queries");
    mxp_arena_reset(NULL);
}

/* ---- allocation failure injection ------------------------------------- */

/* Run op with allocation n failing (mode 0: only the n-th; mode 1: every one
 * from the n-th on), n = 1, 2, ... until it succeeds. Each failure must be
 * MXP_ERR_NOMEM with a message, leave the outputs and the live count as they
 * were, and the success must come within a few tries. */
typedef mxp_status (*op_fn)(void *ctx);

static int inject(const char *what, op_fn op, void (*undo)(void *), void (*unchanged)(void *),
                  void *ctx) {
    int failures = 0;
    for (int mode = 0; mode < 2; mode++) {
        for (long n = 1; n < 20; n++) {
            const long live = ca.live;
            arm(mode ? 0 : n, mode ? n : 0);
            mxp_clear_error();
            const mxp_status st = op(ctx);
            const long requests = ca.nth;
            disarm();
            if (st == MXP_OK) {
                undo(ctx);
                CHECK(ca.live == live, "%s: success then undo leaked", what);
                break;
            }
            failures++;
            CHECK(st == MXP_ERR_NOMEM, "%s: failure %ld gave %s", what, n, mxp_status_str(st));
            CHECK(mxp_last_error()[0] != '\0', "%s: no message", what);
            CHECK(ca.live == live, "%s: failing at %ld leaked %ld blocks", what, n, ca.live - live);
            CHECK(requests >= n, "%s: failed before reaching allocation %ld", what, n);
            if (unchanged) unchanged(ctx);
        }
    }
    return failures;
}

static mxp_tensor *inj_t;
static mxp_tensor *const inj_sentinel = (mxp_tensor *)(uintptr_t)0x2000;
static mxp_arena_t *inj_a;

static mxp_status op_create(void *ctx) {
    (void)ctx;
    inj_t = inj_sentinel;
    return mxp_tensor_create(&inj_t, MXP_DTYPE_BF16, 3, (int64_t[]){4, 5, 6});
}
static void undo_create(void *ctx) {
    (void)ctx;
    CHECK(inj_t && inj_t != inj_sentinel && mxp_tensor_numel(inj_t) == 120, "created");
    mxp_tensor_free(inj_t);
}
static void out_unchanged(void *ctx) {
    (void)ctx;
    CHECK(inj_t == inj_sentinel, "*out changed on failure");
}

static mxp_status op_arena_create(void *ctx) {
    inj_a = (mxp_arena_t *)inj_sentinel;
    return mxp_arena_create(&inj_a, *(size_t *)ctx);
}
static void undo_arena(void *ctx) {
    CHECK(mxp_arena_capacity(inj_a) == up64(*(size_t *)ctx) || *(size_t *)ctx == 0, "capacity");
    mxp_arena_free(inj_a);
}
static void arena_unchanged(void *ctx) {
    (void)ctx;
    CHECK(inj_a == (mxp_arena_t *)inj_sentinel, "*out changed on failure");
}

/* a tensor in an arena (inj_a, 256 bytes) that must grow to hold it */
static mxp_status op_tensor_arena(void *ctx) {
    (void)ctx;
    inj_t = inj_sentinel;
    return mxp_tensor_arena(inj_a, &inj_t, MXP_DTYPE_F32, 2, (int64_t[]){100, 100});
}
static void undo_tensor_arena(void *ctx) {
    (void)ctx;
    CHECK(inj_t != inj_sentinel && mxp_arena_used(inj_a) == 40000 + 128, "arena tensor: used %zu",
          mxp_arena_used(inj_a));
    mxp_arena_free(inj_a);
    CHECK(mxp_arena_create(&inj_a, 256) == MXP_OK, "a fresh arena for the next try");
}
static void tensor_arena_unchanged(void *ctx) {
    out_unchanged(ctx);
    CHECK(mxp_arena_used(inj_a) == 0 && mxp_arena_capacity(inj_a) == 256, "arena changed");
}

static void test_failures(void) {
    CHECK(inject("create", op_create, undo_create, out_unchanged, NULL) == 2 * 2,
          "create has two allocations");
    size_t cap = 1000;
    CHECK(inject("arena_create(1000)", op_arena_create, undo_arena, arena_unchanged, &cap) == 4,
          "arena with a block: two allocations");
    cap = 0;
    CHECK(inject("arena_create(0)", op_arena_create, undo_arena, arena_unchanged, &cap) == 2,
          "arena without a block: one allocation");

    /* growth: each failing mode leaves the arena as it was */
    CHECK(mxp_arena_create(&inj_a, 256) == MXP_OK, "arena");
    {
        mxp_arena_t *a = inj_a;
        CHECK(mxp_arena_alloc(a, 200) != NULL, "first piece");
        const size_t used = mxp_arena_used(a), capy = mxp_arena_capacity(a);
        const long live = ca.live;
        arm(0, 1);
        mxp_tensor *t = inj_sentinel;
        CHECK(mxp_tensor_arena(a, &t, MXP_DTYPE_F32, 2, (int64_t[]){100, 100}) == MXP_ERR_NOMEM,
              "no growth possible");
        CHECK(mxp_arena_alloc(a, 1000) == NULL, "alloc without growth");
        disarm();
        CHECK(t == inj_sentinel && mxp_arena_used(a) == used && mxp_arena_capacity(a) == capy &&
                  ca.live == live,
              "failed growth changed the arena");
        /* only the doubling allocation fails: the exact size is tried next */
        arm(1, 0);
        void *p = mxp_arena_alloc(a, 3000);
        disarm();
        CHECK(p != NULL && mxp_arena_capacity(a) == capy + up64(3000),
              "fallback to the exact size: capacity %zu", mxp_arena_capacity(a));
        CHECK(mxp_arena_alloc(a, 10) != NULL, "the arena works after a failure");

        /* consolidation that fails leaves an empty arena that still works */
        const size_t peak = mxp_arena_peak(a);
        arm(1, 0);
        mxp_arena_reset(a);
        disarm();
        CHECK(mxp_arena_capacity(a) == 0 && mxp_arena_used(a) == 0 && ca.live == live - 1,
              "failed consolidation: capacity %zu", mxp_arena_capacity(a));
        CHECK(mxp_arena_peak(a) == peak, "peak kept");
        CHECK(mxp_arena_alloc(a, 100) != NULL && mxp_arena_capacity(a) > 0, "grows again");
        mxp_arena_free(a);
        CHECK(ca.live == live - 2, "arena free released everything");
    }
    /* the growth is exactly the piece here (40128 > 4096), so there is no
     * fallback: one allocation, failing once in each mode */
    CHECK(mxp_arena_create(&inj_a, 256) == MXP_OK, "arena");
    CHECK(inject("tensor_arena", op_tensor_arena, undo_tensor_arena, tensor_arena_unchanged,
                 NULL) == 2,
          "tensor_arena failures");
    mxp_arena_free(inj_a);
}

int main(void) {
    const mxp_allocator hook = {ca_alloc, ca_free, NULL};
    mxp_set_allocator(&hook);
    test_create();
    test_wrap();
    test_layout();
    test_views();
    test_copy();
    test_fill();
    test_describe();
    test_arena();
    test_failures();
    CHECK(ca.live == 0, "%ld allocations never freed", ca.live);
    CHECK(ca.allocs == ca.frees, "allocs %ld frees %ld", ca.allocs, ca.frees);
    mxp_set_allocator(NULL);
    return check_exit("test_tensor");
}
