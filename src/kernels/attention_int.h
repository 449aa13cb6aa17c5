/*
 * attention_int.h - private to src/kernels/attention*.c: the per-level
 * implementations of the attention work items (token t, KV heads h0..h1-1),
 * chosen by attn_forward_range from cpu_level(). Each (token, KV head) result
 * is computed the same way however the heads are grouped into calls. A
 * tile is a run of tokens t0..t0+nt-1 of one sequence (the same block
 * table, positions p, p+1, ...: a prefill chunk) whose queries share each
 * K/V load; a tile function gives every token the bits its level's item
 * gives the token alone. Also the SIMD f32-to-f16 row conversion behind
 * attn_store_row.
 */
#ifndef KERNELS_ATTENTION_INT_H
#define KERNELS_ATTENTION_INT_H

#include "kernels/attention.h"

/* Most tokens in one tile, and most query rows (tokens x GQA group) and
 * accumulator floats (rows x head_dim) one tile call keeps. */
#define ATTN_TILE 32
#define ATTN_TILE_ROWS 128
#define ATTN_TILE_FLOATS 8192

typedef void (*attn_item_fn)(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1);
typedef void (*attn_tile_fn)(const attn_args *a, uint32_t t0, uint32_t nt, uint32_t h0,
                             uint32_t h1);

/* Plain C (attention.c). */
void attn_item_scalar(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1);
/* AVX2 + FMA + F16C (attention_avx2.c); needs head_dim % 8 == 0. */
void attn_item_avx2(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1);
/* Tokens t0..t0+nt-1 (a tile: nt * group <= ATTN_TILE_ROWS, nt * group *
 * head_dim <= ATTN_TILE_FLOATS), KV heads h0..h1-1, each output bit-identical
 * to attn_item_avx2's for the token alone (attention_avx2.c); needs
 * head_dim % 8 == 0. */
void attn_tile_avx2(const attn_args *a, uint32_t t0, uint32_t nt, uint32_t h0, uint32_t h1);
/* The same with 16-lane vectors, the same bits (attention_tile_avx512.c);
 * needs AVX-512 F and head_dim % 16 == 0. */
void attn_tile_avx512(const attn_args *a, uint32_t t0, uint32_t nt, uint32_t h0, uint32_t h1);
/* AVX-512 F + F16C (attention_avx512.c); needs head_dim % 16 == 0. Not
 * chosen by attn_forward_range (slower than the AVX2 item on Zen 4); tested
 * directly. */
void attn_item_avx512(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1);

/* f32 to f16 of n values, bit-identical to f32_to_fp16 (NaN included). */
void attn_f16_row_avx2(uint16_t *dst, const float *src, uint32_t n);
void attn_f16_row_avx512(uint16_t *dst, const float *src, uint32_t n);

#endif
