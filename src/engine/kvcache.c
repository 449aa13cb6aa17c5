/*
 * kvcache.c - the block manager of kvcache.h: a free stack, an LRU list of
 * cached blocks (intrusive, doubly linked by block id) and a chained hash
 * index from block hash to block. Everything is sized at creation; no call
 * allocates.
 */
#include "engine/kvcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"

typedef struct kv_block {
    uint32_t ref;
    uint8_t hashed;
    uint8_t on_lru;
    uint64_t hash, parent;
    uint32_t lru_prev, lru_next; /* KV_NO_BLOCK ends */
    uint32_t hnext;              /* next block in the same hash bucket */
} kv_block;

struct kv_cache {
    uint32_t n_blocks, block_size;
    int prefix_caching;
    kv_block *blocks;   /* (n_blocks) */
    int32_t *tokens;    /* (n_blocks, block_size) tokens of hashed blocks */
    uint32_t *free_stk; /* (n_blocks) FREE block ids */
    uint32_t n_free_stk;
    uint32_t lru_head, lru_tail, n_lru; /* head = least recently used */
    uint32_t *buckets;  /* (n_buckets) first block of each chain */
    uint32_t bucket_mask;
};

static void lru_unlink(kv_cache *c, uint32_t b);
static void lru_push_tail(kv_cache *c, uint32_t b);
static void unhash(kv_cache *c, uint32_t b);

int kv_cache_new(uint32_t n_blocks, uint32_t block_size, int prefix_caching, kv_cache **out) {
    *out = NULL;
    if (n_blocks == 0 || block_size == 0 || n_blocks >= KV_NO_BLOCK) return INFERD_EINVAL;
    kv_cache *c = calloc(1, sizeof *c);
    if (!c) return INFERD_ENOMEM;
    c->n_blocks = n_blocks;
    c->block_size = block_size;
    c->prefix_caching = prefix_caching;
    uint32_t nb = 1;
    while (nb < n_blocks && nb < (1u << 30)) nb <<= 1;
    c->bucket_mask = nb - 1;
    c->blocks = calloc(n_blocks, sizeof *c->blocks);
    c->tokens = calloc((size_t)n_blocks * block_size, sizeof *c->tokens);
    c->free_stk = malloc((size_t)n_blocks * sizeof *c->free_stk);
    c->buckets = malloc((size_t)nb * sizeof *c->buckets);
    if (!c->blocks || !c->tokens || !c->free_stk || !c->buckets) {
        kv_cache_free(c);
        return INFERD_ENOMEM;
    }
    for (uint32_t i = 0; i < nb; i++) c->buckets[i] = KV_NO_BLOCK;
    /* Stack order: block 0 is handed out first. */
    for (uint32_t i = 0; i < n_blocks; i++) {
        c->free_stk[i] = n_blocks - 1 - i;
        c->blocks[i].lru_prev = c->blocks[i].lru_next = c->blocks[i].hnext = KV_NO_BLOCK;
    }
    c->n_free_stk = n_blocks;
    c->lru_head = c->lru_tail = KV_NO_BLOCK;
    *out = c;
    return 0;
}

void kv_cache_free(kv_cache *c) {
    if (!c) return;
    free(c->blocks);
    free(c->tokens);
    free(c->free_stk);
    free(c->buckets);
    free(c);
}

uint32_t kv_cache_n_blocks(const kv_cache *c) { return c->n_blocks; }
uint32_t kv_cache_block_size(const kv_cache *c) { return c->block_size; }
uint32_t kv_cache_n_free(const kv_cache *c) { return c->n_free_stk + c->n_lru; }
uint32_t kv_cache_n_cached(const kv_cache *c) { return c->n_lru; }
uint32_t kv_block_ref(const kv_cache *c, uint32_t b) {
    return b < c->n_blocks ? c->blocks[b].ref : 0;
}

uint32_t kv_block_alloc(kv_cache *c) {
    uint32_t b;
    if (c->n_free_stk > 0) {
        b = c->free_stk[--c->n_free_stk];
    } else if (c->lru_head != KV_NO_BLOCK) {
        b = c->lru_head;
        lru_unlink(c, b);
        unhash(c, b);
    } else {
        return KV_NO_BLOCK;
    }
    c->blocks[b].ref = 1;
    return b;
}

void kv_block_release(kv_cache *c, uint32_t b) {
    if (b >= c->n_blocks || c->blocks[b].ref == 0) return;
    if (--c->blocks[b].ref > 0) return;
    if (c->blocks[b].hashed && c->prefix_caching) {
        lru_push_tail(c, b);
        return;
    }
    if (c->blocks[b].hashed) unhash(c, b);
    c->free_stk[c->n_free_stk++] = b;
}

uint64_t kv_hash_block(uint64_t parent, const int32_t *tokens, uint32_t n_tokens) {
    return hash_combine(parent, hash_bytes(tokens, (size_t)n_tokens * sizeof *tokens, HASH_SEED));
}

uint32_t kv_block_lookup(kv_cache *c, uint64_t hash, uint64_t parent, const int32_t *tokens) {
    for (uint32_t b = c->buckets[hash & c->bucket_mask]; b != KV_NO_BLOCK; b = c->blocks[b].hnext) {
        kv_block *k = &c->blocks[b];
        if (k->hash != hash || k->parent != parent) continue;
        if (memcmp(c->tokens + (size_t)b * c->block_size, tokens,
                   (size_t)c->block_size * sizeof *tokens))
            continue;
        if (k->ref == 0) lru_unlink(c, b);
        k->ref++;
        return b;
    }
    return KV_NO_BLOCK;
}

int kv_block_publish(kv_cache *c, uint32_t b, uint64_t hash, uint64_t parent,
                     const int32_t *tokens) {
    if (b >= c->n_blocks || c->blocks[b].ref == 0 || c->blocks[b].hashed) return 0;
    uint32_t *head = &c->buckets[hash & c->bucket_mask];
    for (uint32_t o = *head; o != KV_NO_BLOCK; o = c->blocks[o].hnext)
        if (c->blocks[o].hash == hash) return 0;
    kv_block *k = &c->blocks[b];
    k->hashed = 1;
    k->hash = hash;
    k->parent = parent;
    memcpy(c->tokens + (size_t)b * c->block_size, tokens, (size_t)c->block_size * sizeof *tokens);
    k->hnext = *head;
    *head = b;
    return 1;
}

int kv_cache_check(const kv_cache *c, char *err, size_t err_size) {
    uint32_t n_hashed = 0, n_ref0_unhashed = 0, n_lru_seen = 0, n_indexed = 0;
    for (uint32_t b = 0; b < c->n_blocks; b++) {
        const kv_block *k = &c->blocks[b];
        if (k->hashed) n_hashed++;
        if (k->ref == 0 && !k->hashed) n_ref0_unhashed++;
        if (k->on_lru != (k->ref == 0 && k->hashed))
            return err_set(err, err_size, INFERD_EINTERNAL,
                           "kvcache: block %u has ref %u, hashed %d, on_lru %d", b, k->ref,
                           k->hashed, k->on_lru);
    }
    for (uint32_t b = c->lru_head; b != KV_NO_BLOCK; b = c->blocks[b].lru_next) {
        if (++n_lru_seen > c->n_blocks) break;
    }
    if (n_lru_seen != c->n_lru)
        return err_set(err, err_size, INFERD_EINTERNAL, "kvcache: LRU list has %u blocks, count %u",
                       n_lru_seen, c->n_lru);
    if (n_ref0_unhashed != c->n_free_stk)
        return err_set(err, err_size, INFERD_EINTERNAL,
                       "kvcache: %u unreferenced unhashed blocks but %u on the free stack",
                       n_ref0_unhashed, c->n_free_stk);
    for (uint32_t i = 0; i <= c->bucket_mask; i++)
        for (uint32_t b = c->buckets[i]; b != KV_NO_BLOCK; b = c->blocks[b].hnext) {
            if (++n_indexed > c->n_blocks) break;
            if ((c->blocks[b].hash & c->bucket_mask) != i || !c->blocks[b].hashed)
                return err_set(err, err_size, INFERD_EINTERNAL,
                               "kvcache: block %u indexed in bucket %u wrongly", b, i);
        }
    if (n_indexed != n_hashed)
        return err_set(err, err_size, INFERD_EINTERNAL,
                       "kvcache: %u hashed blocks but %u in the index", n_hashed, n_indexed);
    return 0;
}

/* ---- helpers ---- */

static void lru_unlink(kv_cache *c, uint32_t b) {
    kv_block *k = &c->blocks[b];
    if (!k->on_lru) return;
    if (k->lru_prev != KV_NO_BLOCK) c->blocks[k->lru_prev].lru_next = k->lru_next;
    else c->lru_head = k->lru_next;
    if (k->lru_next != KV_NO_BLOCK) c->blocks[k->lru_next].lru_prev = k->lru_prev;
    else c->lru_tail = k->lru_prev;
    k->lru_prev = k->lru_next = KV_NO_BLOCK;
    k->on_lru = 0;
    c->n_lru--;
}

static void lru_push_tail(kv_cache *c, uint32_t b) {
    kv_block *k = &c->blocks[b];
    k->lru_prev = c->lru_tail;
    k->lru_next = KV_NO_BLOCK;
    if (c->lru_tail != KV_NO_BLOCK) c->blocks[c->lru_tail].lru_next = b;
    else c->lru_head = b;
    c->lru_tail = b;
    k->on_lru = 1;
    c->n_lru++;
}

static void unhash(kv_cache *c, uint32_t b) {
    kv_block *k = &c->blocks[b];
    if (!k->hashed) return;
    uint32_t *pp = &c->buckets[k->hash & c->bucket_mask];
    while (*pp != KV_NO_BLOCK && *pp != b) pp = &c->blocks[*pp].hnext;
    if (*pp == b) *pp = k->hnext;
    k->hnext = KV_NO_BLOCK;
    k->hashed = 0;
}
