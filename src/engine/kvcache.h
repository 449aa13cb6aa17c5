/*
 * kvcache.h - bookkeeping of the paged KV cache: which blocks of the model's
 * kv_pool are free, who references them, and which hold a reusable prefix.
 * The KV data itself lives in the model's kv_pool (model/model.h); this file
 * never touches it. Used by the engine thread only.
 *
 * Block states (every block is in exactly one):
 *   FREE     ref 0, no hash          on the free stack
 *   CACHED   ref 0, hashed           on the LRU list, findable by hash; evicted
 *                                    (LRU first) when a FREE block is wanted
 *   USED     ref >= 1                in some sequences' block tables; when
 *                                    hashed also findable (shared prefixes)
 * A full block's hash chains over (parent block's hash, its tokens), so equal
 * hashes mean equal prefixes; lookups also compare the stored tokens and
 * parent hash, so a 64-bit collision can never hand out the wrong KV.
 */
#ifndef ENGINE_KVCACHE_H
#define ENGINE_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#define KV_NO_BLOCK UINT32_MAX
#define KV_HASH_ROOT 0x6b76726f6f74ULL /* parent hash of a sequence's first block */

typedef struct kv_cache kv_cache;

/* Makes the bookkeeping for n_blocks blocks of block_size tokens, all FREE.
 * With prefix_caching 0, a block whose last reference goes is unhashed and
 * FREE at once (nothing is kept for later requests; sharing among live
 * sequences still works). Returns 0 and *out, INFERD_EINVAL (zero sizes) or
 * INFERD_ENOMEM. */
int kv_cache_new(uint32_t n_blocks, uint32_t block_size, int prefix_caching, kv_cache **out);
/* Accepts NULL. */
void kv_cache_free(kv_cache *c);

uint32_t kv_cache_n_blocks(const kv_cache *c);
uint32_t kv_cache_block_size(const kv_cache *c);
/* Blocks an allocation can get now: FREE + CACHED. */
uint32_t kv_cache_n_free(const kv_cache *c);
/* CACHED blocks (ref 0, kept for reuse). */
uint32_t kv_cache_n_cached(const kv_cache *c);
/* The reference count of block b (tests and invariants). */
uint32_t kv_block_ref(const kv_cache *c, uint32_t b);

/* Takes a FREE block (evicting the least recently used CACHED one when no
 * FREE block is left) with ref 1 and no hash. Returns its id, or
 * KV_NO_BLOCK when every block is USED. */
uint32_t kv_block_alloc(kv_cache *c);
/* Drops one reference to b. At 0 a hashed block becomes CACHED (most
 * recently used) when prefix caching is on; otherwise it becomes FREE. */
void kv_block_release(kv_cache *c, uint32_t b);

/* The chain hash of a full block: over parent and its block_size tokens. */
uint64_t kv_hash_block(uint64_t parent, const int32_t *tokens, uint32_t n_tokens);
/* Finds the block with this hash, parent hash and tokens (block_size of
 * them); on a hit takes a reference (a CACHED block leaves the LRU) and
 * returns it, else KV_NO_BLOCK. */
uint32_t kv_block_lookup(kv_cache *c, uint64_t hash, uint64_t parent, const int32_t *tokens);
/* Registers USED block b, now full and computed, under hash (its tokens and
 * parent copied for verification). When another block already holds this
 * hash, b stays unhashed (it is a duplicate). Returns 1 if registered. */
int kv_block_publish(kv_cache *c, uint32_t b, uint64_t hash, uint64_t parent,
                     const int32_t *tokens);

/* Checks the invariants (states, list lengths, hash index). Returns 0, or
 * INFERD_EINTERNAL with the first violation in err. */
int kv_cache_check(const kv_cache *c, char *err, size_t err_size);

#endif
