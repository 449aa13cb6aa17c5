/*
 * arena.h - a bump allocator for per-step scratch (STYLE rule 13: no malloc
 * on the per-token path). Memory is one block reserved up front; allocations
 * are 64-byte aligned; arena_reset() frees everything at once.
 */
#ifndef BASE_ARENA_H
#define BASE_ARENA_H

#include <stddef.h>

typedef struct arena {
    char *base;       /* owned, 64-byte aligned */
    size_t size;      /* bytes reserved */
    size_t used;      /* bytes handed out */
    size_t high;      /* high-water mark of used */
} arena;

/* Reserves size bytes. Returns 0 or INFERD_ENOMEM. */
int arena_init(arena *a, size_t size);
/* Returns 64-byte-aligned memory of n bytes (uninitialized), or NULL when the
 * arena is full. */
void *arena_alloc(arena *a, size_t n);
/* Frees every allocation; keeps the reservation. */
void arena_reset(arena *a);
/* Releases the reservation. Accepts a zeroed arena. */
void arena_free(arena *a);

#endif
