/*
 * arena.c - bump allocator; see arena.h.
 */
#include "base/arena.h"

#include "base/util.h"
#include "inferd.h"

int arena_init(arena *a, size_t size) {
    a->base = aligned_zalloc(size, 64);
    a->size = a->base ? size : 0;
    a->used = a->high = 0;
    return a->base ? 0 : INFERD_ENOMEM;
}

void *arena_alloc(arena *a, size_t n) {
    size_t off = (a->used + 63) & ~(size_t)63;
    if (off > a->size || n > a->size - off) return NULL;
    a->used = off + n;
    if (a->used > a->high) a->high = a->used;
    return a->base + off;
}

void arena_reset(arena *a) { a->used = 0; }

void arena_free(arena *a) {
    aligned_free(a->base);
    a->base = NULL;
    a->size = a->used = a->high = 0;
}
