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
#define WC_MIN_SLOTS (1u << 10)
#define WC_MAX_KEY 128
#define WC_MAX_BLOB (16u << 20)

typedef struct wc_entry {
    uint64_t hash;
    uint32_t key_off, key_len;
    uint32_t ids_off, n_ids; /* ids_off counts int32 slots in ids */
} wc_entry;

struct tok_wcache {
    uint32_t *slot; /* entry index + 1, 0 = empty; kept at most half full */
    uint32_t slot_mask;
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
    c->slot = calloc(WC_MIN_SLOTS, sizeof *c->slot);
    if (!c->slot) {
        free(c);
        return NULL;
    }
    c->slot_mask = WC_MIN_SLOTS - 1;
    return c;
}

/* Frees the cache. Accepts NULL. */
void tok_wcache_free(tok_wcache *c) {
    if (!c) return;
    free(c->slot);
    free(c->e);
    free(c->keys);
    free(c->ids);
    free(c);
}

/* 1 and the borrowed ids (valid until the next put) on a hit, else 0. */
int tok_wcache_get(tok_wcache *c, const char *key, size_t len, const int32_t **ids, size_t *n) {
    if (len > WC_MAX_KEY) return 0;
    uint64_t h = tok_hash_bytes(key, len);
    for (uint32_t i = (uint32_t)h & c->slot_mask;; i = (i + 1) & c->slot_mask) {
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

/* Stores a copy of ids under key; skipped silently when the key is too long,
 * the cache is full or memory runs out (the cache is only an optimization). */
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
    if ((c->n_e + 1) * 2 > c->slot_mask + 1) { /* grow the slot table */
        uint32_t cap = (c->slot_mask + 1) * 2;
        uint32_t *ns = calloc(cap, sizeof *ns);
        if (!ns) return;
        for (uint32_t k = 0; k < c->n_e; k++) {
            uint32_t j = (uint32_t)c->e[k].hash & (cap - 1);
            while (ns[j]) j = (j + 1) & (cap - 1);
            ns[j] = k + 1;
        }
        free(c->slot);
        c->slot = ns;
        c->slot_mask = cap - 1;
    }
    uint64_t h = tok_hash_bytes(key, len);
    uint32_t i = (uint32_t)h & c->slot_mask;
    while (c->slot[i]) i = (i + 1) & c->slot_mask;
    wc_entry *e = &c->e[c->n_e];
    *e = (wc_entry){h, (uint32_t)c->keys_len, (uint32_t)len, (uint32_t)c->ids_len, (uint32_t)n};
    memcpy(c->keys + c->keys_len, key, len);
    c->keys_len += len;
    if (n) memcpy(c->ids + c->ids_len, ids, n * sizeof *ids);
    c->ids_len += n;
    c->slot[i] = ++c->n_e;
}
