/*
 * wcache.c - the per-call word cache of tok_encode: pre-tokenized words (BPE)
 * and merge segments (SPM) repeat a lot in real text, so their ids are kept
 * for the rest of the call. One cache per tok_encode call, so a tokenizer
 * shared between threads needs no lock. Bounded in entries and bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "tok/tok_int.h"

#define WC_MAX_ENTRIES (1u << 16)
#define WC_SLOTS (1u << 17)
#define WC_MAX_KEY 128
#define WC_MAX_BLOB (16u << 20)

typedef struct wc_entry {
    uint64_t hash;
    uint32_t key_off, key_len;
    uint32_t ids_off, n_ids; /* ids_off counts int32 slots in ids */
} wc_entry;

struct tok_wcache {
    uint32_t *slot;   /* entry index + 1, 0 = empty */
    wc_entry *e;
    uint32_t n_e;
    char *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
};

/* A new empty cache, or NULL out of memory (callers then run without one). */
tok_wcache *tok_wcache_new(void) {
    tok_wcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->slot = calloc(WC_SLOTS, sizeof *c->slot);
    if (!c->slot) {
        free(c);
        return NULL;
    }
    return c;
}

void tok_wcache_free(tok_wcache *c) {
    if (!c) return;
    free(c->slot);
    free(c->e);
    free(c->keys);
    free(c->ids);
    free(c);
}

int tok_wcache_get(tok_wcache *c, const char *key, size_t len, const int32_t **ids, size_t *n) {
    if (len > WC_MAX_KEY) return 0;
    uint64_t h = tok_hash_bytes(key, len);
    for (uint32_t i = (uint32_t)h & (WC_SLOTS - 1);; i = (i + 1) & (WC_SLOTS - 1)) {
        uint32_t v = c->slot[i];
        if (!v) return 0;
        const wc_entry *e = &c->e[v - 1];
        if (e->hash == h && e->key_len == len && !memcmp(c->keys + e->key_off, key, len)) {
            *ids = c->ids + e->ids_off;
            *n = e->n_ids;
            return 1;
        }
    }
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 4096;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * elem);
    if (!q) return -1;
    *p = q;
    *cap = cap2;
    return 0;
}

void tok_wcache_put(tok_wcache *c, const char *key, size_t len, const int32_t *ids, size_t n) {
    if (len > WC_MAX_KEY || c->n_e >= WC_MAX_ENTRIES || c->keys_len + len > WC_MAX_BLOB ||
        (c->ids_len + n) * sizeof(int32_t) > WC_MAX_BLOB)
        return;
    if (c->n_e % 1024 == 0) {
        wc_entry *e = realloc(c->e, (c->n_e + 1024) * sizeof *e);
        if (!e) return;
        c->e = e;
    }
    if (grow((void **)&c->keys, &c->keys_cap, c->keys_len + len + 1, 1) ||
        grow((void **)&c->ids, &c->ids_cap, c->ids_len + n + 1, sizeof(int32_t)))
        return;
    uint64_t h = tok_hash_bytes(key, len);
    uint32_t i = (uint32_t)h & (WC_SLOTS - 1);
    while (c->slot[i]) i = (i + 1) & (WC_SLOTS - 1);
    wc_entry *e = &c->e[c->n_e];
    *e = (wc_entry){h, (uint32_t)c->keys_len, (uint32_t)len, (uint32_t)c->ids_len, (uint32_t)n};
    memcpy(c->keys + c->keys_len, key, len);
    c->keys_len += len;
    if (n) memcpy(c->ids + c->ids_len, ids, n * sizeof *ids);
    c->ids_len += n;
    c->slot[i] = ++c->n_e;
}
