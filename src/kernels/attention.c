/*
 * attention.c - paged causal attention with an online softmax (see
 * attention.h): the plain-C reference item, the dispatch by cpu_level() to
 * the SIMD items (attention_avx2.c; attention_avx512.c is not chosen, see
 * below) and tiles (attention_tile_avx2.c, attention_tile_avx512.c), the
 * split of the work items over threads, balanced by context length, and the
 * row store into the pool (attn_store_row). One work item is a (tile, KV
 * head) pair, a tile being up to ATTN_TILE consecutive tokens of one
 * sequence (a prefill chunk; a decode token is a tile of one) that share the
 * K/V loads at the SIMD levels. For each token, the group of query heads
 * sharing that KV head walks the token's positions once, keeping a running
 * max m, denominator l and weighted sum acc per query head:
 *   s = scale * q.k_j;  if s > m: acc *= e^(m-s), l *= e^(m-s), m = s
 *   p = e^(s-m);  l += p;  acc += p * v_j;      out = acc / l
 */
#include "kernels/attention.h"

#include <math.h>
#include <string.h>

#include "kernels/attention_int.h"
#include "kernels/cpu.h"
#include "kernels/quant.h"

void attn_load_row(const attn_args *a, const void *base, const uint32_t *table, uint32_t j,
                   uint32_t kvh, float *dst) {
    const size_t row =
        ((size_t)table[j / a->block_size] * a->block_size + j % a->block_size) * a->n_head_kv + kvh;
    if (a->kv_type == DTYPE_F16) {
        const uint16_t *src = (const uint16_t *)base + row * a->head_dim;
        for (uint32_t d = 0; d < a->head_dim; d++) dst[d] = fp16_to_f32(src[d]);
    } else {
        memcpy(dst, (const float *)base + row * a->head_dim, a->head_dim * sizeof(float));
    }
}

static void item_scalar(const attn_args *a, uint32_t t, uint32_t kvh) {
    const uint32_t hd = a->head_dim;
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t *table = a->tables[t];
    const uint32_t n_pos = (uint32_t)a->pos[t] + 1;
    const float *q = a->q + (size_t)t * a->q_stride + (size_t)kvh * group * hd;
    float *out = a->out + (size_t)t * a->out_stride + (size_t)kvh * group * hd;
    float acc[ATTN_MAX_GROUP_DIM];
    float m[ATTN_MAX_GROUP], l[ATTN_MAX_GROUP], p[ATTN_MAX_GROUP];
    float krow[ATTN_MAX_HEAD_DIM], vrow[ATTN_MAX_HEAD_DIM];

    for (uint32_t g = 0; g < group; g++) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
    }
    memset(acc, 0, (size_t)group * hd * sizeof(float));
    for (uint32_t j = 0; j < n_pos; j++) {
        attn_load_row(a, a->k, table, j, kvh, krow);
        for (uint32_t g = 0; g < group; g++) {
            const float *qg = q + (size_t)g * hd;
            float s = 0.0f;
            for (uint32_t d = 0; d < hd; d++) s += qg[d] * krow[d];
            s *= a->scale;
            float *ag = acc + (size_t)g * hd;
            if (s > m[g]) {
                const float c = expf(m[g] - s); /* 0 on the first position */
                l[g] *= c;
                for (uint32_t d = 0; d < hd; d++) ag[d] *= c;
                m[g] = s;
            }
            p[g] = expf(s - m[g]);
            l[g] += p[g];
        }
        attn_load_row(a, a->v, table, j, kvh, vrow);
        for (uint32_t g = 0; g < group; g++) {
            float *ag = acc + (size_t)g * hd;
            for (uint32_t d = 0; d < hd; d++) ag[d] += p[g] * vrow[d];
        }
    }
    for (uint32_t g = 0; g < group; g++) {
        const float inv = 1.0f / l[g];
        for (uint32_t d = 0; d < hd; d++) out[(size_t)g * hd + d] = acc[(size_t)g * hd + d] * inv;
    }
}

void attn_item_scalar(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1) {
    for (uint32_t kvh = h0; kvh < h1; kvh++) item_scalar(a, t, kvh);
}

void attn_store_row(enum dtype kv_type, void *dst, const float *src, uint32_t n) {
    if (kv_type != DTYPE_F16) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    const enum cpu_level level = cpu_level();
    if (level >= CPU_AVX512)
        attn_f16_row_avx512(dst, src, n);
    else if (level >= CPU_AVX2)
        attn_f16_row_avx2(dst, src, n);
    else
        for (uint32_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_fp16(src[i]);
}

/* Fixed cost of a token of a work item, in key positions (setup, the
 * output rows). */
enum { ITEM_OVERHEAD = 8 };

/* Length of the tile that starts at token t: the tokens after it with the
 * same block table and the next positions, at most max in all. */
static uint32_t tile_len(const attn_args *a, uint32_t t, uint32_t max) {
    uint32_t n = 1;
    while (n < max && t + n < a->n_tokens && a->tables[t + n] == a->tables[t] &&
           a->pos[t + n] == a->pos[t] + (int32_t)n)
        n++;
    return n;
}

/* Cost of one KV head of the tile t..t+nt-1: its tokens' context lengths
 * plus a fixed overhead per token. */
static uint64_t tile_cost(const attn_args *a, uint32_t t, uint32_t nt) {
    uint64_t cost = 0;
    for (uint32_t i = 0; i < nt; i++) cost += (uint64_t)a->pos[t + i] + 1 + ITEM_OVERHEAD;
    return cost;
}

void attn_forward_range(const attn_args *a, uint32_t ith, uint32_t nth) {
    attn_item_fn item = attn_item_scalar;
    attn_tile_fn tile = NULL;
    /* The AVX2 item also on AVX-512 CPUs: on the Zen 4 we measure on (512-bit
     * operations run as two 256-bit halves) it decodes 25-30% faster than the
     * AVX-512 item from memory (12 or 32 heads, head_dim 64), whose 16-position
     * chunks overflow L1. attn_item_avx512 is kept, tested, for CPUs with
     * full-width units; docs/performance.md (Engine) has the numbers. */
    if (cpu_level() >= CPU_AVX2 && a->head_dim % 8 == 0) {
        item = attn_item_avx2;
        tile = attn_tile_avx2;
        /* The tiles compute a query as attn_item_avx2 does, bit for bit, at
         * either width. On the Zen 4 we measure on, 16 lanes pay from
         * head_dim 128 (a 512-token prefill layer, 1 thread: 32 heads on 8
         * KV heads 40 ms against 46, on 32 KV heads 39-45 against 50-52);
         * at head_dim 64 the 8-lane tile is as fast (GQA 8) or 6% faster
         * (12 KV heads). docs/performance.md (Prefill attention). */
        if (cpu_level() >= CPU_AVX512 && a->head_dim % 16 == 0 && a->head_dim >= 128)
            tile = attn_tile_avx512;
    }
    /* Tiles of up to tile_max tokens where the scratch of a tile call holds
     * them; a tile gives each token the bits of the token alone, so how the
     * batch is cut into tiles never shows in the result. */
    const uint32_t group = a->n_head / a->n_head_kv;
    uint32_t tile_max = ATTN_TILE;
    if (tile_max > ATTN_TILE_ROWS / group) tile_max = ATTN_TILE_ROWS / group;
    if (tile_max > ATTN_TILE_FLOATS / (group * a->head_dim))
        tile_max = ATTN_TILE_FLOATS / (group * a->head_dim);
    if (!tile || tile_max < 2) tile_max = 1;
    /* Items (tile, KV head) in order, each costing its tokens' context
     * lengths plus a fixed overhead per token; item i goes to thread
     * floor(start_i * nth / total), so every thread gets a contiguous run of
     * about total / nth. */
    uint64_t total = 0;
    for (uint32_t t = 0; t < a->n_tokens; t++)
        total += ((uint64_t)a->pos[t] + 1 + ITEM_OVERHEAD) * a->n_head_kv;
    /* Tiles head by head, so that a thread's tiles read one KV head's rows
     * (which stay in L2) before the next head's; item (tile, kvh) starts at
     * the tile's start plus kvh times its cost. */
    if (tile_max > 1) {
        for (uint32_t kvh = 0; kvh < a->n_head_kv; kvh++) {
            uint64_t start = 0;
            for (uint32_t t = 0; t < a->n_tokens;) {
                const uint32_t nt = tile_len(a, t, tile_max);
                const uint64_t cost = tile_cost(a, t, nt);
                if (nt > 1 && (start + kvh * cost) * nth / total == ith)
                    tile(a, t, nt, kvh, kvh + 1);
                start += cost * a->n_head_kv;
                t += nt;
            }
        }
    }
    /* Single tokens: consecutive heads of one token go to the item function
     * together. */
    uint64_t start = 0;
    for (uint32_t t = 0; t < a->n_tokens;) {
        const uint32_t nt = tile_len(a, t, tile_max);
        const uint64_t cost = tile_cost(a, t, nt);
        if (nt > 1) {
            start += cost * a->n_head_kv;
            t += nt;
            continue;
        }
        uint32_t h0 = a->n_head_kv, h1 = 0;
        for (uint32_t kvh = 0; kvh < a->n_head_kv; kvh++, start += cost) {
            const uint64_t owner = start * nth / total;
            if (owner != ith) continue;
            if (h0 > kvh) h0 = kvh;
            h1 = kvh + 1;
        }
        if (h0 < h1) item(a, t, h0, h1);
        if (start * nth / total > ith) return;
        t += nt;
    }
}
