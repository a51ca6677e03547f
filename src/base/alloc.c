/*
 * alloc.c - the one allocator hook all host memory goes through.
 * Default: aligned_alloc with 64-byte alignment (a cache line, one zmm).
 * No pooling here; the tensor layer's arena does that per step.
 */
#include <stdint.h>
#include <stdlib.h>

#include "base_impl.h"

enum { ALIGN = 64 };

static void *default_alloc(size_t size, size_t align, void *user) {
    (void)user;
    /* aligned_alloc wants size to be a multiple of the alignment */
    size_t rounded = (size + align - 1) & ~(align - 1);
    if (rounded < size) return NULL;
    return aligned_alloc(align, rounded);
}

static void default_free(void *ptr, void *user) {
    (void)user;
    free(ptr);
}

static mxp_allocator hook = {default_alloc, default_free, NULL};

void mxp_set_allocator(const mxp_allocator *a) {
    if (a && a->alloc && a->free) {
        hook = *a;
    } else {
        hook.alloc = default_alloc;
        hook.free = default_free;
        hook.user = NULL;
    }
}

mxp_allocator mxp_allocator_current(void) { return hook; }

void *mxp_alloc(size_t size) {
    if (size == 0) return NULL;
    void *p = hook.alloc(size, ALIGN, hook.user);
    if (!p) MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate %zu bytes", size);
    return p;
}

void *mxp_alloc_array(size_t count, size_t elem) {
    if (elem != 0 && count > SIZE_MAX / elem) {
        MXP_FAIL(MXP_ERR_NOMEM, "allocation of %zu x %zu bytes overflows size_t", count, elem);
        return NULL;
    }
    return mxp_alloc(count * elem);
}

void mxp_free(void *ptr) {
    if (ptr) hook.free(ptr, hook.user);
}
