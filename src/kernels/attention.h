/*
 * attention.h - causal multi-head attention for a flat batch of tokens over
 * a paged KV pool (GQA, f32 or f16 K/V), with a fused online softmax: one
 * pass over the keys, no score matrix.
 *
 * Pool layout for one layer (K and V alike):
 *   (n_blocks, block_size, n_head_kv, head_dim), row-major, of kv_type.
 *   Position j of token t's sequence is block tables[t][j / block_size],
 *   slot j % block_size (tables[t] is the block table of t's sequence).
 * Token t (position pos[t]) attends to positions 0..pos[t] of its sequence;
 * query head h reads KV head h / (n_head / n_head_kv).
 *
 * Plain C; the caller (src/model/) validated every index and runs
 * attn_forward_range on its thread pool.
 */
#ifndef KERNELS_ATTENTION_H
#define KERNELS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

/* Largest (n_head / n_head_kv) * head_dim one work item holds on the stack. */
#define ATTN_MAX_GROUP_DIM 8192
#define ATTN_MAX_HEAD_DIM 512
#define ATTN_MAX_GROUP 64 /* n_head / n_head_kv */

typedef struct attn_args {
    uint32_t n_tokens;
    uint32_t n_head, n_head_kv, head_dim;
    const float *q;   /* (n_tokens, n_head, head_dim); token rows q_stride floats apart */
    size_t q_stride;
    float *out;       /* (n_tokens, n_head, head_dim); token rows out_stride floats apart */
    size_t out_stride;
    const void *k;    /* (n_blocks, block_size, n_head_kv, head_dim) of kv_type */
    const void *v;    /* same */
    enum dtype kv_type; /* DTYPE_F32 or DTYPE_F16 */
    uint32_t block_size;
    const int32_t *pos;             /* (n_tokens) */
    const uint32_t *const *tables;  /* (n_tokens) block table of each token's sequence */
    float scale;      /* applied to q.k, usually 1/sqrt(head_dim) */
} attn_args;

/* Computes thread ith's share of the work items (tile, KV head): for each
 * token of the tile and query head of the group, softmax(scale *
 * q.K[0..pos]) . V[0..pos] into out. A tile is a run of consecutive tokens
 * with the same block table and consecutive positions (a prefill chunk; up
 * to 32 tokens, fewer with large GQA groups), whose queries share the K/V
 * loads; any other token is a tile of one. The items, in token-major order,
 * are cut into nth contiguous runs of about equal total context length (pos
 * + 1 plus a fixed cost per token). Safe to run concurrently for different
 * ith (disjoint outputs); a token's output has the same bits whatever the
 * batch around it (alone, or at any place in any tile) and nth. */
void attn_forward_range(const attn_args *a, uint32_t ith, uint32_t nth);

/* Reads the K (or V) vector of head kvh at position j of table into dst
 * (head_dim floats), converting from kv_type. */
void attn_load_row(const attn_args *a, const void *base, const uint32_t *table, uint32_t j,
                   uint32_t kvh, float *dst);

/* Writes n floats as one pool row of kv_type (DTYPE_F32: copied; DTYPE_F16:
 * converted exactly as f32_to_fp16 does, with F16C when the CPU has it). */
void attn_store_row(enum dtype kv_type, void *dst, const float *src, uint32_t n);

#endif
