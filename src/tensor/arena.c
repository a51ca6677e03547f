/*
 * arena.c - the per-step bump allocator: 64-byte aligned pieces carved out
 * of a few large blocks, consolidated on reset into one block of the peak
 * size, and tensors that live wholly inside it. It never frees a single
 * piece, and it is not thread-safe: one arena per step per thread.
 */
#include <string.h>

#include "tensor_impl.h"

enum {
    ALIGN = 64,      /* every piece starts on a cache line (and a zmm) */
    MIN_GROW = 4096, /* the smallest block added on demand */
    MAX_BLOCKS = 64  /* a new block is normally as large as all the others
                        together, so a step never comes near 64 of them */
};

struct mxp_arena {
    char *block[MAX_BLOCKS]; /* each from mxp_alloc, so 64-byte aligned */
    size_t size[MAX_BLOCKS]; /* bytes in block[i], a multiple of ALIGN */
    int nblocks;
    int cur;         /* the block being carved (the last one); 0 when there is none */
    size_t off;      /* bytes carved from block[cur] */
    size_t used;     /* bytes handed out since the last reset (pieces rounded to ALIGN) */
    size_t peak;     /* the most `used` has ever been */
    size_t capacity; /* sum of size[] */
};

/* size rounded up to ALIGN, or 0 if that overflows */
static size_t round_up(size_t size) {
    return size > SIZE_MAX - (ALIGN - 1) ? 0 : (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

/* Add a block of `size` bytes; 0 on allocation failure (message set). */
static int add_block(mxp_arena_t *a, size_t size) {
    char *b = mxp_alloc(size);
    if (!b) return 0;
    a->block[a->nblocks] = b;
    a->size[a->nblocks] = size;
    a->nblocks++;
    a->capacity += size;
    return 1;
}

static void free_blocks(mxp_arena_t *a) {
    for (int i = 0; i < a->nblocks; i++) mxp_free(a->block[i]);
    a->nblocks = 0;
    a->capacity = 0;
}

mxp_status mxp_arena_create(mxp_arena_t **out, size_t capacity) {
    if (!out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_arena_create: out is NULL");
    const size_t first = round_up(capacity);
    if (capacity && !first)
        return MXP_FAIL(MXP_ERR_NOMEM, "mxp_arena_create: capacity %zu is too large", capacity);
    mxp_arena_t *a = mxp_alloc(sizeof *a);
    if (!a) return MXP_FAIL(MXP_ERR_NOMEM, "mxp_arena_create: cannot allocate the arena");
    memset(a, 0, sizeof *a);
    if (first && !add_block(a, first)) {
        mxp_free(a);
        return MXP_FAIL(MXP_ERR_NOMEM, "mxp_arena_create: cannot allocate %zu bytes", first);
    }
    *out = a;
    return MXP_OK;
}

void mxp_arena_free(mxp_arena_t *a) {
    if (!a) return;
    free_blocks(a);
    mxp_free(a);
}

void *mxp_arena_alloc(mxp_arena_t *a, size_t size) {
    if (!a) {
        MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_arena_alloc: arena is NULL");
        return NULL;
    }
    /* size 0 still takes a piece, so its pointer is unique */
    const size_t need = size ? round_up(size) : ALIGN;
    if (!need) {
        MXP_FAIL(MXP_ERR_NOMEM, "mxp_arena_alloc: %zu bytes is too large", size);
        return NULL;
    }
    /* a piece that does not fit goes to a new block; the tail of the current
     * one stays unused until the reset, which is what consolidation repairs */
    int cur = a->cur;
    size_t off = a->off;
    if (cur >= a->nblocks || a->size[cur] - off < need) {
        if (a->nblocks == MAX_BLOCKS) {
            MXP_FAIL(MXP_ERR_NOMEM, "mxp_arena_alloc: the arena has %d blocks; reset it",
                     MAX_BLOCKS);
            return NULL;
        }
        /* at least double what is held, so a growing step adds few blocks;
         * if that much is not available, try for exactly what is needed */
        const size_t want = MXP_MAX(need, MXP_MAX(a->capacity, (size_t)MIN_GROW));
        if (!add_block(a, want) && (want == need || !add_block(a, need))) {
            MXP_FAIL(MXP_ERR_NOMEM, "mxp_arena_alloc: cannot grow the arena by %zu bytes", need);
            return NULL;
        }
        cur = a->nblocks - 1;
        off = 0;
    }
    char *p = a->block[cur] + off;
    a->cur = cur;
    a->off = off + need;
    a->used += need;
    a->peak = MXP_MAX(a->peak, a->used);
    return p;
}

void mxp_arena_reset(mxp_arena_t *a) {
    if (!a) return;
    if (a->nblocks > 1) {
        /* Pieces are multiples of ALIGN carved in order, so one block of the
         * peak size holds any step that fitted before. The old blocks go
         * first, so the memory is never held twice; if the new block cannot
         * be had, the arena is left empty and grows again on demand. */
        free_blocks(a);
        add_block(a, a->peak);
    }
    a->cur = 0;
    a->off = 0;
    a->used = 0;
}

size_t mxp_arena_used(const mxp_arena_t *a) { return a ? a->used : 0; }
size_t mxp_arena_peak(const mxp_arena_t *a) { return a ? a->peak : 0; }
size_t mxp_arena_capacity(const mxp_arena_t *a) { return a ? a->capacity : 0; }

mxp_status mxp_tensor_arena(mxp_arena_t *a, mxp_tensor **out, mxp_dtype dtype, int ndim,
                            const int64_t *shape) {
    static const char fn[] = "mxp_tensor_arena";
    if (!a || !out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "%s: %s is NULL", fn, a ? "out" : "a");
    int64_t stride[MXP_MAX_DIMS];
    size_t nbytes;
    MXP_TRY(mxp_tensor_plan(fn, dtype, ndim, shape, stride, &nbytes));
    /* one piece: the struct, then the data on the next 64-byte boundary; at
     * least one data byte so that even an empty tensor has its own address */
    const size_t head = round_up(sizeof(mxp_tensor));
    const size_t body = nbytes ? nbytes : 1;
    if (body > SIZE_MAX - head)
        return MXP_FAIL(MXP_ERR_NOMEM, "%s: %zu bytes is too large", fn, nbytes);
    char *p = mxp_arena_alloc(a, head + body);
    if (!p) return MXP_FAIL(MXP_ERR_NOMEM, "%s: cannot take %zu bytes from the arena", fn, nbytes);
    mxp_tensor *t = (mxp_tensor *)(void *)p;
    mxp_tensor_init(t, p + head, dtype, ndim, shape, stride);
    *out = t;
    return MXP_OK;
}
