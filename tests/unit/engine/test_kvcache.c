/*
 * test_kvcache.c - the block manager (src/engine/kvcache.c): allocation and
 * release, reference counts, hash-chain lookups with token verification,
 * LRU eviction order, and prefix caching off.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "engine/kvcache.h"
#include "inferd.h"

#define BS 4

static void check(const kv_cache *c) {
    char err[200];
    cr_assert_eq(kv_cache_check(c, err, sizeof err), 0, "%s", err);
}

Test(kvcache, alloc_release_all) {
    kv_cache *c;
    cr_assert_eq(kv_cache_new(8, BS, 1, &c), 0);
    uint32_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = kv_block_alloc(c);
        cr_assert_neq(b[i], KV_NO_BLOCK);
        cr_assert_eq(kv_block_ref(c, b[i]), 1);
    }
    cr_assert_eq(kv_cache_n_free(c), 0);
    cr_assert_eq(kv_block_alloc(c), KV_NO_BLOCK);
    check(c);
    for (int i = 0; i < 8; i++) kv_block_release(c, b[i]);
    cr_assert_eq(kv_cache_n_free(c), 8);
    check(c);
    kv_cache_free(c);
    cr_assert_eq(kv_cache_new(0, BS, 1, &c), INFERD_EINVAL);
}

Test(kvcache, hash_chain_depends_on_parent_and_tokens) {
    int32_t t1[BS] = {1, 2, 3, 4}, t2[BS] = {1, 2, 3, 5};
    uint64_t h1 = kv_hash_block(KV_HASH_ROOT, t1, BS);
    cr_assert_eq(h1, kv_hash_block(KV_HASH_ROOT, t1, BS));
    cr_assert_neq(h1, kv_hash_block(KV_HASH_ROOT, t2, BS));
    cr_assert_neq(kv_hash_block(h1, t1, BS), kv_hash_block(KV_HASH_ROOT, t1, BS));
}

Test(kvcache, publish_lookup_share_and_cache) {
    kv_cache *c;
    cr_assert_eq(kv_cache_new(4, BS, 1, &c), 0);
    int32_t t[BS] = {7, 8, 9, 10}, other[BS] = {7, 8, 9, 11};
    uint64_t h = kv_hash_block(KV_HASH_ROOT, t, BS);
    uint32_t b = kv_block_alloc(c);
    cr_assert_eq(kv_block_publish(c, b, h, KV_HASH_ROOT, t), 1);
    /* A live lookup shares the block. */
    cr_assert_eq(kv_block_lookup(c, h, KV_HASH_ROOT, t), b);
    cr_assert_eq(kv_block_ref(c, b), 2);
    /* Same hash but other tokens or parent: a miss (collision safety). */
    cr_assert_eq(kv_block_lookup(c, h, KV_HASH_ROOT, other), KV_NO_BLOCK);
    cr_assert_eq(kv_block_lookup(c, h, 12345, t), KV_NO_BLOCK);
    /* A duplicate is not registered. */
    uint32_t d = kv_block_alloc(c);
    cr_assert_eq(kv_block_publish(c, d, h, KV_HASH_ROOT, t), 0);
    kv_block_release(c, d);
    kv_block_release(c, b);
    kv_block_release(c, b);
    cr_assert_eq(kv_cache_n_cached(c), 1);
    cr_assert_eq(kv_cache_n_free(c), 4);
    check(c);
    /* Cached, it is still found and leaves the LRU. */
    cr_assert_eq(kv_block_lookup(c, h, KV_HASH_ROOT, t), b);
    cr_assert_eq(kv_cache_n_cached(c), 0);
    cr_assert_eq(kv_cache_n_free(c), 3);
    kv_block_release(c, b);
    check(c);
    kv_cache_free(c);
}

Test(kvcache, lru_evicts_least_recent_and_free_first) {
    kv_cache *c;
    cr_assert_eq(kv_cache_new(3, BS, 1, &c), 0);
    int32_t t[3][BS] = {{1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}};
    uint64_t h[3];
    uint32_t b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = kv_block_alloc(c);
        h[i] = kv_hash_block(KV_HASH_ROOT, t[i], BS);
        kv_block_publish(c, b[i], h[i], KV_HASH_ROOT, t[i]);
    }
    /* Release order 1, 0, 2: LRU order is 1, 0, 2. */
    kv_block_release(c, b[1]);
    kv_block_release(c, b[0]);
    kv_block_release(c, b[2]);
    cr_assert_eq(kv_cache_n_cached(c), 3);
    /* Touch 1 (lookup + release): order becomes 0, 2, 1. */
    cr_assert_eq(kv_block_lookup(c, h[1], KV_HASH_ROOT, t[1]), b[1]);
    kv_block_release(c, b[1]);
    uint32_t e = kv_block_alloc(c);
    cr_assert_eq(e, b[0], "the least recently used block goes first");
    cr_assert_eq(kv_block_lookup(c, h[0], KV_HASH_ROOT, t[0]), KV_NO_BLOCK, "evicted: unhashed");
    cr_assert_eq(kv_block_alloc(c), b[2]);
    cr_assert_eq(kv_block_lookup(c, h[1], KV_HASH_ROOT, t[1]), b[1]);
    check(c);
    kv_block_release(c, b[1]);
    kv_block_release(c, b[2]);
    kv_block_release(c, e);
    /* A FREE block is preferred over evicting a CACHED one. */
    uint32_t f = kv_block_alloc(c);
    cr_assert_neq(f, b[1]);
    cr_assert_eq(kv_cache_n_cached(c), 1);
    kv_block_release(c, f);
    cr_assert_eq(kv_cache_n_free(c), 3);
    check(c);
    kv_cache_free(c);
}

Test(kvcache, prefix_caching_off_frees_at_zero) {
    kv_cache *c;
    cr_assert_eq(kv_cache_new(2, BS, 0, &c), 0);
    int32_t t[BS] = {1, 2, 3, 4};
    uint64_t h = kv_hash_block(KV_HASH_ROOT, t, BS);
    uint32_t b = kv_block_alloc(c);
    kv_block_publish(c, b, h, KV_HASH_ROOT, t);
    cr_assert_eq(kv_block_lookup(c, h, KV_HASH_ROOT, t), b, "live sharing still works");
    kv_block_release(c, b);
    kv_block_release(c, b);
    cr_assert_eq(kv_cache_n_cached(c), 0);
    cr_assert_eq(kv_block_lookup(c, h, KV_HASH_ROOT, t), KV_NO_BLOCK);
    cr_assert_eq(kv_cache_n_free(c), 2);
    check(c);
    kv_cache_free(c);
}
