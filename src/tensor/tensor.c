/*
 * tensor.c - tensors as strided views of typed memory: create, wrap, the view
 * operations (reshape, slice, transpose, permute, select), copy with dtype
 * conversion, fill and describe. Views never copy; only CPU memory is touched
 * here, and the only arithmetic on elements is rounding (kernels do the rest).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor_impl.h"

/* ---- layout ------------------------------------------------------------ */

static const char *device_name(mxp_device dev) {
    switch (dev) {
    case MXP_DEVICE_CPU: return "cpu";
    case MXP_DEVICE_CUDA: return "cuda";
    }
    return "?";
}

/* Row-major strides for shape. A size-0 dim counts as 1 (as in PyTorch), so
 * an empty tensor keeps strides that describe a real layout. 0 when that
 * layout would span more than PTRDIFF_MAX bytes, so that every element offset
 * times the element size stays representable. */
static int contiguous_strides(int ndim, const int64_t *shape, size_t es, int64_t *stride) {
    int64_t span = 1, bytes;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = span;
        if (__builtin_mul_overflow(span, shape[d] > 1 ? shape[d] : 1, &span)) return 0;
    }
    for (int d = ndim; d < MXP_MAX_DIMS; d++) stride[d] = 1;
    return !__builtin_mul_overflow(span, (int64_t)es, &bytes);
}

static mxp_status check_shape(const char *fn, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > MXP_MAX_DIMS)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: ndim=%d is outside 0..%d", fn, ndim,
                        MXP_MAX_DIMS);
    if (ndim > 0 && !shape) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: shape is NULL", fn);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: size %lld of dim %d is negative", fn,
                            (long long)shape[d], d);
    return MXP_OK;
}

mxp_status mxp_tensor_plan(const char *fn, mxp_dtype dtype, int ndim, const int64_t *shape,
                           int64_t *stride, size_t *nbytes) {
    const size_t es = mxp_dtype_size(dtype);
    if (!es) return MXP_FAIL(MXP_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dtype);
    MXP_TRY(check_shape(fn, ndim, shape));
    if (!contiguous_strides(ndim, shape, es, stride))
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: %s tensor too large to address", fn,
                        mxp_dtype_name(dtype));
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d]; /* <= the checked span */
    *nbytes = numel * es;
    return MXP_OK;
}

void mxp_tensor_init(mxp_tensor *t, void *data, mxp_dtype dtype, int ndim, const int64_t *shape,
                     const int64_t *stride) {
    t->dtype = dtype;
    t->device = MXP_DEVICE_CPU;
    t->ndim = ndim;
    for (int d = 0; d < MXP_MAX_DIMS; d++) {
        t->shape[d] = d < ndim ? shape[d] : 1;
        t->stride[d] = d < ndim ? stride[d] : 1;
    }
    t->data = data;
    t->owned = NULL;
}

/* Everything the rest of this file relies on: a known dtype and device,
 * sizes >= 0, and a layout whose element offsets, times the element size,
 * cannot overflow (so views and loops below never check again). The struct is
 * public and writable, so it is checked at every entry, not only at wrap. */
static mxp_status check_tensor(const char *fn, const char *what, const mxp_tensor *t) {
    if (!t) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s is NULL", fn, what);
    const size_t es = mxp_dtype_size(t->dtype);
    if (!es) return MXP_FAIL(MXP_ERR_DTYPE, "%s: %s has unknown dtype %d", fn, what, (int)t->dtype);
    if (t->device != MXP_DEVICE_CPU && t->device != MXP_DEVICE_CUDA)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s has unknown device %d", fn, what,
                        (int)t->device);
    if (t->ndim < 0 || t->ndim > MXP_MAX_DIMS)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s has ndim=%d, outside 0..%d", fn, what, t->ndim,
                        MXP_MAX_DIMS);
    const uint64_t max_elems = (uint64_t)PTRDIFF_MAX / es;
    uint64_t numel = 1, reach = 0; /* reach: sum of |stride| * (size - 1), in elements */
    for (int d = 0; d < t->ndim; d++) {
        const int64_t n = t->shape[d], s = t->stride[d];
        if (n < 0)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s has negative size %lld in dim %d", fn,
                            what, (long long)n, d);
        if (numel && (uint64_t)n > max_elems / numel)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s has more elements than memory can hold",
                            fn, what);
        numel *= (uint64_t)n;
        if (n > 1) {
            const uint64_t mag = s < 0 ? 0 - (uint64_t)s : (uint64_t)s;
            if (mag && (uint64_t)(n - 1) > (max_elems - 1 - reach) / mag)
                return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s spans over PTRDIFF_MAX bytes", fn,
                                what);
            reach += mag * (uint64_t)(n - 1);
        }
    }
    if (numel && !t->data)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s has NULL data and %llu elements", fn, what,
                        (unsigned long long)numel);
    return MXP_OK;
}

/* ---- create, wrap, free ------------------------------------------------ */

mxp_status mxp_tensor_create(mxp_tensor **out, mxp_dtype dtype, int ndim, const int64_t *shape) {
    static const char fn[] = "mxp_tensor_create";
    if (!out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: out is NULL", fn);
    int64_t stride[MXP_MAX_DIMS];
    size_t nbytes;
    MXP_TRY(mxp_tensor_plan(fn, dtype, ndim, shape, stride, &nbytes));
    mxp_tensor *t = mxp_alloc(sizeof *t);
    /* an empty tensor still gets storage, so data is always a unique,
     * non-NULL pointer and every created tensor owns what it points at */
    void *data = t ? mxp_alloc(nbytes ? nbytes : 1) : NULL;
    if (!data) {
        mxp_free(t);
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot allocate %zu bytes", fn, nbytes);
    }
    mxp_tensor_init(t, data, dtype, ndim, shape, stride);
    t->owned = data;
    *out = t;
    return MXP_OK;
}

void mxp_tensor_free(mxp_tensor *t) {
    if (!t) return;
    mxp_free(t->owned);
    mxp_free(t);
}

mxp_status mxp_tensor_wrap(mxp_tensor *t, void *data, mxp_dtype dtype, int ndim,
                           const int64_t *shape, const int64_t *strides) {
    static const char fn[] = "mxp_tensor_wrap";
    if (!t) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: t is NULL", fn);
    int64_t stride[MXP_MAX_DIMS];
    size_t nbytes;
    mxp_status st = mxp_tensor_plan(fn, dtype, ndim, shape, stride, &nbytes);
    if (st == MXP_ERR_NOMEM) /* nothing is allocated here: a too-large shape is a bad argument */
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: shape spans more than PTRDIFF_MAX bytes", fn);
    MXP_TRY(st);
    mxp_tensor w;
    mxp_tensor_init(&w, data, dtype, ndim, shape, strides ? strides : stride);
    MXP_TRY(check_tensor(fn, "the wrapped tensor", &w));
    *t = w;
    return MXP_OK;
}

/* ---- queries ----------------------------------------------------------- */

int64_t mxp_tensor_numel(const mxp_tensor *t) {
    if (!t || t->ndim < 0 || t->ndim > MXP_MAX_DIMS) return 0;
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] <= 0) return 0;
        /* only a hand-made struct can overflow; saturate rather than wrap */
        if (__builtin_mul_overflow(n, t->shape[d], &n)) n = INT64_MAX;
    }
    return n;
}

size_t mxp_tensor_nbytes(const mxp_tensor *t) {
    const size_t es = t ? mxp_dtype_size(t->dtype) : 0;
    const uint64_t n = (uint64_t)mxp_tensor_numel(t);
    return es && n > SIZE_MAX / es ? SIZE_MAX : (size_t)n * es;
}

int mxp_tensor_is_contiguous(const mxp_tensor *t) {
    if (!t || t->ndim < 0 || t->ndim > MXP_MAX_DIMS) return 0;
    if (mxp_tensor_numel(t) == 0) return 1; /* no elements, nothing to lay out */
    int64_t want = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] == 1) continue;
        if (t->stride[d] != want) return 0;
        if (__builtin_mul_overflow(want, t->shape[d], &want)) return 0;
    }
    return 1;
}

/* Address of the element `offset` elements from data; t has been checked. */
static char *elem_at(const mxp_tensor *t, int64_t offset) {
    return (char *)t->data + offset * (int64_t)mxp_dtype_size(t->dtype);
}

void *mxp_tensor_ptr(const mxp_tensor *t, const int64_t *idx) {
    if (!t || t->ndim < 0 || t->ndim > MXP_MAX_DIMS || !t->data) return NULL;
    const int64_t es = (int64_t)mxp_dtype_size(t->dtype);
    if (!es || (t->ndim > 0 && !idx)) return NULL;
    /* not run through check_tensor (this is called per element), so the
     * arithmetic is checked instead: a hand-made struct gives NULL, not a wrap */
    int64_t off = 0, term;
    for (int d = 0; d < t->ndim; d++) {
        if (idx[d] < 0 || idx[d] >= t->shape[d]) return NULL;
        if (__builtin_mul_overflow(idx[d], t->stride[d], &term) ||
            __builtin_add_overflow(off, term, &off))
            return NULL;
    }
    if (__builtin_mul_overflow(off, es, &off)) return NULL;
    return (char *)t->data + off;
}

/* ---- views ------------------------------------------------------------- */

/* Checks shared by every view op. A view written over an owning tensor would
 * drop the only pointer to its storage, so that aliasing is refused; over a
 * borrowed struct (a wrap or another view) it is allowed. */
static mxp_status view_begin(const char *fn, mxp_tensor *view, const mxp_tensor *src,
                             mxp_tensor *v) {
    if (!view) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: view is NULL", fn);
    MXP_TRY(check_tensor(fn, "src", src));
    if (view == src && src->owned)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: view would overwrite the owning tensor", fn);
    *v = *src;
    v->owned = NULL;
    return MXP_OK;
}

static mxp_status check_dim(const char *fn, const mxp_tensor *src, int dim) {
    if (dim < 0 || dim >= src->ndim)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: dim %d is outside 0..%d", fn, dim, src->ndim - 1);
    return MXP_OK;
}

/* Remove dim d, keeping the entries past ndim at size 1, stride 1. */
static void drop_dim(mxp_tensor *v, int d) {
    for (int i = d; i < MXP_MAX_DIMS - 1; i++) {
        v->shape[i] = v->shape[i + 1];
        v->stride[i] = v->stride[i + 1];
    }
    v->shape[MXP_MAX_DIMS - 1] = 1;
    v->stride[MXP_MAX_DIMS - 1] = 1;
    v->ndim--;
}

mxp_status mxp_tensor_reshape(mxp_tensor *view, const mxp_tensor *src, int ndim,
                              const int64_t *shape) {
    static const char fn[] = "mxp_tensor_reshape";
    mxp_tensor v;
    MXP_TRY(view_begin(fn, view, src, &v));
    if (ndim < 0 || ndim > MXP_MAX_DIMS)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: ndim=%d is outside 0..%d", fn, ndim,
                        MXP_MAX_DIMS);
    if (ndim > 0 && !shape) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: shape is NULL", fn);
    int infer = -1, zero = 0, overflow = 0;
    int64_t known = 1, sizes[MXP_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        sizes[d] = shape[d];
        if (shape[d] == -1) {
            if (infer >= 0)
                return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: dims %d and %d are both -1", fn, infer,
                                d);
            infer = d;
        } else if (shape[d] < 0) {
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: size %lld of dim %d is negative", fn,
                            (long long)shape[d], d);
        } else if (shape[d] == 0) {
            zero = 1;
        } else if (!overflow && __builtin_mul_overflow(known, shape[d], &known)) {
            overflow = 1; /* more than any tensor can hold: cannot match below */
        }
    }
    char buf[128];
    const int64_t numel = mxp_tensor_numel(src);
    if (!mxp_tensor_is_contiguous(src))
        return MXP_FAIL(MXP_ERR_SHAPE, "%s: src %s is not contiguous (copy it first)", fn,
                        mxp_tensor_describe(src, buf, sizeof buf));
    if (zero) known = 0;
    if (infer >= 0) {
        if (known == 0)
            return MXP_FAIL(MXP_ERR_SHAPE, "%s: -1 cannot be inferred next to a size of 0", fn);
        if (overflow || numel % known != 0)
            return MXP_FAIL(MXP_ERR_SHAPE, "%s: %lld elements do not divide into the shape", fn,
                            (long long)numel);
        sizes[infer] = numel / known;
    } else if (overflow || known != numel) {
        return MXP_FAIL(MXP_ERR_SHAPE, "%s: src %s has %lld elements, the new shape %s%lld", fn,
                        mxp_tensor_describe(src, buf, sizeof buf), (long long)numel,
                        overflow ? "more than " : "", (long long)known);
    }
    int64_t stride[MXP_MAX_DIMS];
    if (!contiguous_strides(ndim, sizes, mxp_dtype_size(src->dtype), stride))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: the new shape spans more than PTRDIFF_MAX bytes",
                        fn);
    v.ndim = ndim;
    for (int d = 0; d < MXP_MAX_DIMS; d++) {
        v.shape[d] = d < ndim ? sizes[d] : 1;
        v.stride[d] = stride[d];
    }
    *view = v;
    return MXP_OK;
}

mxp_status mxp_tensor_slice(mxp_tensor *view, const mxp_tensor *src, int dim, int64_t start,
                            int64_t len, int64_t step) {
    static const char fn[] = "mxp_tensor_slice";
    mxp_tensor v;
    MXP_TRY(view_begin(fn, view, src, &v));
    MXP_TRY(check_dim(fn, src, dim));
    const int64_t n = src->shape[dim];
    if (step < 1)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: step=%lld is not >= 1", fn, (long long)step);
    /* (len - 1) * step <= n - 1 - start, written so that nothing can overflow */
    int fits = start >= 0 && len >= 0 && start <= n;
    if (fits && len > 0) fits = start < n && len - 1 <= (n - 1 - start) / step;
    if (!fits)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: start=%lld len=%lld step=%lld exceed dim %d (%lld)", fn,
                        (long long)start, (long long)len, (long long)step, dim, (long long)n);
    v.shape[dim] = len;
    if (len > 0) v.data = elem_at(src, start * src->stride[dim]);
    /* with fewer than two elements the step never applies; leaving the stride
     * alone also keeps stride * step from overflowing for huge steps */
    if (len > 1) v.stride[dim] = src->stride[dim] * step;
    *view = v;
    return MXP_OK;
}

mxp_status mxp_tensor_transpose(mxp_tensor *view, const mxp_tensor *src, int d0, int d1) {
    static const char fn[] = "mxp_tensor_transpose";
    mxp_tensor v;
    MXP_TRY(view_begin(fn, view, src, &v));
    MXP_TRY(check_dim(fn, src, d0));
    MXP_TRY(check_dim(fn, src, d1));
    v.shape[d0] = src->shape[d1];
    v.stride[d0] = src->stride[d1];
    v.shape[d1] = src->shape[d0];
    v.stride[d1] = src->stride[d0];
    *view = v;
    return MXP_OK;
}

mxp_status mxp_tensor_permute(mxp_tensor *view, const mxp_tensor *src, const int *perm) {
    static const char fn[] = "mxp_tensor_permute";
    mxp_tensor v;
    MXP_TRY(view_begin(fn, view, src, &v));
    if (src->ndim > 0 && !perm) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: perm is NULL", fn);
    unsigned seen = 0;
    for (int i = 0; i < src->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= src->ndim || (seen >> perm[i]) & 1u)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: perm[%d]=%d: not a permutation of 0..%d", fn,
                            i, perm[i], src->ndim - 1);
        seen |= 1u << perm[i];
        v.shape[i] = src->shape[perm[i]];
        v.stride[i] = src->stride[perm[i]];
    }
    *view = v;
    return MXP_OK;
}

mxp_status mxp_tensor_select(mxp_tensor *view, const mxp_tensor *src, int dim, int64_t index) {
    static const char fn[] = "mxp_tensor_select";
    mxp_tensor v;
    MXP_TRY(view_begin(fn, view, src, &v));
    MXP_TRY(check_dim(fn, src, dim));
    if (index < 0 || index >= src->shape[dim])
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: index %lld is outside 0..%lld of dim %d", fn,
                        (long long)index, (long long)src->shape[dim] - 1, dim);
    v.data = elem_at(src, index * src->stride[dim]);
    drop_dim(&v, dim);
    *view = v;
    return MXP_OK;
}

/* ---- strided loops ------------------------------------------------------ */

/* One or two tensors of the same shape walked in step: size-1 dims dropped,
 * neighbouring dims merged where every tensor's layout allows, so a
 * contiguous run becomes one long inner row. Strides here are in bytes. */
typedef struct strided {
    int n;
    int64_t shape[MXP_MAX_DIMS];
    ptrdiff_t step[2][MXP_MAX_DIMS];
} strided;

/* Called once per inner row of n elements; b is NULL for one tensor. */
typedef mxp_status (*row_fn)(void *ctx, char *a, ptrdiff_t astep, char *b, ptrdiff_t bstep,
                             int64_t n);

static void strided_plan(strided *L, const mxp_tensor *a, const mxp_tensor *b) {
    const mxp_tensor *t[2] = {a, b};
    const int nt = b ? 2 : 1;
    L->n = 0;
    for (int d = 0; d < a->ndim; d++) {
        const int64_t n = a->shape[d];
        if (n == 1) continue;
        ptrdiff_t s[2] = {0, 0};
        for (int k = 0; k < nt; k++)
            s[k] = t[k]->stride[d] * (ptrdiff_t)mxp_dtype_size(t[k]->dtype);
        int merge = L->n > 0;
        for (int k = 0; k < nt && merge; k++) {
            ptrdiff_t outer;
            merge = !__builtin_mul_overflow(s[k], n, &outer) && L->step[k][L->n - 1] == outer;
        }
        if (merge) {
            L->shape[L->n - 1] *= n; /* <= numel, which fits */
            for (int k = 0; k < nt; k++) L->step[k][L->n - 1] = s[k];
        } else {
            L->shape[L->n] = n;
            L->step[0][L->n] = s[0];
            L->step[1][L->n] = s[1];
            L->n++;
        }
    }
}

static mxp_status strided_walk(const strided *L, char *a, char *b, row_fn row, void *ctx) {
    if (L->n == 0) return row(ctx, a, 0, b, 0, 1);
    const int inner = L->n - 1;
    int64_t idx[MXP_MAX_DIMS] = {0};
    for (;;) {
        MXP_TRY(row(ctx, a, L->step[0][inner], b, L->step[1][inner], L->shape[inner]));
        int d = inner - 1;
        for (; d >= 0; d--) {
            if (++idx[d] < L->shape[d]) {
                a += L->step[0][d];
                if (b) b += L->step[1][d];
                break;
            }
            /* back to index 0 of this dim: only ever at element addresses */
            idx[d] = 0;
            a -= L->step[0][d] * (L->shape[d] - 1);
            if (b) b -= L->step[1][d] * (L->shape[d] - 1);
        }
        if (d < 0) return MXP_OK;
    }
}

/* ---- copy and fill ------------------------------------------------------ */

typedef struct copy_ctx {
    mxp_dtype dt, st;
} copy_ctx;

static mxp_status copy_row(void *ctx, char *d, ptrdiff_t dstep, char *s, ptrdiff_t sstep,
                           int64_t n) {
    const copy_ctx *c = ctx;
    const ptrdiff_t des = (ptrdiff_t)mxp_dtype_size(c->dt), ses = (ptrdiff_t)mxp_dtype_size(c->st);
    if (dstep == des && sstep == ses) return mxp_convert(d, c->dt, s, c->st, (size_t)n);
    if (c->dt != c->st) {
        /* widen exactly to fp32, then round once to nearest even: the same
         * bits as mxp_convert, whose reference kernels do just this */
        for (int64_t i = 0; i < n; i++, d += dstep, s += sstep)
            mxp_store_f32(c->dt, d, 0, mxp_load_f32(c->st, s, 0));
    } else if (des == 4) {
        /* the same dtype copies bits: a NaN keeps its payload as under memcpy */
        for (int64_t i = 0; i < n; i++, d += dstep, s += sstep) memcpy(d, s, 4);
    } else {
        for (int64_t i = 0; i < n; i++, d += dstep, s += sstep) memcpy(d, s, 2);
    }
    return MXP_OK;
}

/* Lowest and one-past-highest byte addresses the elements of t occupy. */
static void byte_range(const mxp_tensor *t, uintptr_t *lo, uintptr_t *hi) {
    const int64_t es = (int64_t)mxp_dtype_size(t->dtype);
    int64_t min = 0, max = 0;
    for (int d = 0; d < t->ndim; d++) {
        const int64_t e = (t->shape[d] - 1) * t->stride[d];
        if (e < 0)
            min += e;
        else
            max += e;
    }
    *lo = (uintptr_t)t->data + (uintptr_t)(min * es);
    *hi = (uintptr_t)t->data + (uintptr_t)(max * es + es);
}

/* Whether two distinct indices of t can name the same element. The dims with
 * size > 1, taken by increasing |stride|, must each step past everything the
 * dims inside them reach: |stride| >= 1 + sum over inner dims of
 * (size - 1) * |stride|. Then every index has its own offset (mixed radix);
 * stride 0 and repeated or overlapping strides fail. The test is sufficient,
 * not exact: a rare interleaving such as shape (3, 2) strides (2, 3) never
 * collides but is refused too. Returns the outer dim that fails and sets
 * *need to the |stride| it would need, or returns -1; t has been checked,
 * so the sums stay below PTRDIFF_MAX. */
static int self_overlap_dim(const mxp_tensor *t, int64_t *need) {
    int dims[MXP_MAX_DIMS], n = 0;
    uint64_t mag[MXP_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] <= 1) continue;
        const int64_t s = t->stride[d];
        const uint64_t m = s < 0 ? 0 - (uint64_t)s : (uint64_t)s;
        int i = n++;
        for (; i > 0 && mag[i - 1] > m; i--) { /* insertion sort: at most 8 dims */
            mag[i] = mag[i - 1];
            dims[i] = dims[i - 1];
        }
        mag[i] = m;
        dims[i] = d;
    }
    uint64_t reach = 0; /* furthest offset, in elements, of the dims inside */
    for (int i = 0; i < n; i++) {
        if (mag[i] <= reach) {
            *need = (int64_t)reach + 1;
            return dims[i];
        }
        reach += mag[i] * (uint64_t)(t->shape[dims[i]] - 1);
    }
    return -1;
}

static int same_view(const mxp_tensor *a, const mxp_tensor *b) {
    if (a->data != b->data || a->dtype != b->dtype) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] > 1 && a->stride[d] != b->stride[d]) return 0;
    return 1;
}

mxp_status mxp_tensor_copy(mxp_tensor *dst, const mxp_tensor *src) {
    static const char fn[] = "mxp_tensor_copy";
    MXP_TRY(check_tensor(fn, "dst", dst));
    MXP_TRY(check_tensor(fn, "src", src));
    char db[128], sb[128];
    if (dst->device != MXP_DEVICE_CPU || src->device != MXP_DEVICE_CPU)
        return MXP_FAIL(MXP_ERR_BACKEND, "%s: %s -> %s: only CPU tensors (no CUDA backend yet)", fn,
                        device_name(src->device), device_name(dst->device));
    int same_shape = dst->ndim == src->ndim;
    for (int d = 0; same_shape && d < dst->ndim; d++) same_shape = dst->shape[d] == src->shape[d];
    if (!same_shape)
        return MXP_FAIL(MXP_ERR_SHAPE, "%s: dst %s and src %s differ in shape", fn,
                        mxp_tensor_describe(dst, db, sizeof db),
                        mxp_tensor_describe(src, sb, sizeof sb));
    const int64_t numel = mxp_tensor_numel(dst);
    if (numel == 0) return MXP_OK;
    /* a dst that names one element twice would keep whichever write the loop
     * order makes last; stride 0 (a broadcast dst) is the plainest case */
    int64_t need;
    const int bad = self_overlap_dim(dst, &need);
    if (bad >= 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%s: dst %s overlaps itself: dim %d has stride %lld, but other dims "
                        "with |stride| <= %lld span %lld elements, so writes may collide",
                        fn, mxp_tensor_describe(dst, db, sizeof db), bad,
                        (long long)dst->stride[bad], llabs((long long)dst->stride[bad]),
                        (long long)need);
    if (same_view(dst, src)) return MXP_OK;
    /* judged on the byte ranges the two span: conservative for interleaved
     * views, but a partial overlap would make the result depend on the order
     * of the loop, which no caller wants */
    uintptr_t dlo, dhi, slo, shi;
    byte_range(dst, &dlo, &dhi);
    byte_range(src, &slo, &shi);
    if (dlo < shi && slo < dhi)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: dst %s and src %s overlap in memory", fn,
                        mxp_tensor_describe(dst, db, sizeof db),
                        mxp_tensor_describe(src, sb, sizeof sb));
    if (mxp_tensor_is_contiguous(dst) && mxp_tensor_is_contiguous(src))
        return mxp_convert(dst->data, dst->dtype, src->data, src->dtype, (size_t)numel);
    strided L;
    strided_plan(&L, dst, src);
    copy_ctx c = {dst->dtype, src->dtype};
    return strided_walk(&L, dst->data, src->data, copy_row, &c);
}

typedef struct fill_ctx {
    uint32_t bits;
    size_t es;
} fill_ctx;

static mxp_status fill_row(void *ctx, char *p, ptrdiff_t step, char *unused, ptrdiff_t ustep,
                           int64_t n) {
    (void)unused;
    (void)ustep;
    const fill_ctx *c = ctx;
    if (c->es == 4) {
        for (int64_t i = 0; i < n; i++, p += step) memcpy(p, &c->bits, 4);
    } else {
        const uint16_t h = (uint16_t)c->bits;
        for (int64_t i = 0; i < n; i++, p += step) memcpy(p, &h, 2);
    }
    return MXP_OK;
}

mxp_status mxp_tensor_fill(mxp_tensor *t, float value) {
    static const char fn[] = "mxp_tensor_fill";
    MXP_TRY(check_tensor(fn, "t", t));
    if (t->device != MXP_DEVICE_CPU)
        return MXP_FAIL(MXP_ERR_BACKEND, "%s: tensor on %s: only CPU tensors (no CUDA backend yet)",
                        fn, device_name(t->device));
    if (mxp_tensor_numel(t) == 0) return MXP_OK;
    fill_ctx c = {0, mxp_dtype_size(t->dtype)};
    switch (t->dtype) {
    case MXP_DTYPE_F32: memcpy(&c.bits, &value, sizeof value); break;
    case MXP_DTYPE_F16: c.bits = mxp_fp32_to_fp16(value); break;
    default: c.bits = mxp_fp32_to_bf16(value); break;
    }
    /* stride 0 dims are fine here: every write stores the same value */
    strided L;
    strided_plan(&L, t, NULL);
    return strided_walk(&L, t->data, NULL, fill_row, &c);
}

/* ---- describe ----------------------------------------------------------- */

MXP_PRINTF(4, 5)
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
    if (*len + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0) *len = MXP_MIN(*len + (size_t)n, size - 1);
}

const char *mxp_tensor_describe(const mxp_tensor *t, char *buf, size_t size) {
    if (!buf || size == 0) return buf;
    buf[0] = '\0';
    size_t len = 0;
    if (!t) {
        append(buf, size, &len, "(null)");
        return buf;
    }
    if (t->ndim < 0 || t->ndim > MXP_MAX_DIMS) {
        append(buf, size, &len, "%s (invalid ndim %d)", mxp_dtype_name(t->dtype), t->ndim);
        return buf;
    }
    append(buf, size, &len, "%s (", mxp_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
        append(buf, size, &len, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    append(buf, size, &len, ")");
    /* strides only where they say something the shape does not */
    if (!mxp_tensor_is_contiguous(t)) {
        append(buf, size, &len, " strides (");
        for (int d = 0; d < t->ndim; d++)
            append(buf, size, &len, "%s%lld", d ? ", " : "", (long long)t->stride[d]);
        append(buf, size, &len, ")");
    }
    if (t->device != MXP_DEVICE_CPU) append(buf, size, &len, " %s", device_name(t->device));
    return buf;
}
