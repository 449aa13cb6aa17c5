/*
 * attention_int.h - private to src/kernels/attention*.c: the per-level
 * implementations of one attention work item (token t, KV head kvh), chosen
 * by attn_forward_range from cpu_level().
 */
#ifndef KERNELS_ATTENTION_INT_H
#define KERNELS_ATTENTION_INT_H

#include "kernels/attention.h"

typedef void (*attn_item_fn)(const attn_args *a, uint32_t t, uint32_t kvh);

/* Plain C (attention.c). */
void attn_item_scalar(const attn_args *a, uint32_t t, uint32_t kvh);
/* AVX2 + FMA + F16C (attention_avx2.c); needs head_dim % 8 == 0. */
void attn_item_avx2(const attn_args *a, uint32_t t, uint32_t kvh);
/* AVX-512 F + F16C (attention_avx512.c); needs head_dim % 16 == 0. */
void attn_item_avx512(const attn_args *a, uint32_t t, uint32_t kvh);

#endif
