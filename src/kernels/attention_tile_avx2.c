/*
 * attention_tile_avx2.c - query tiles at the AVX2 level (see attention_int.h):
 * a prefill chunk's consecutive tokens walk the keys together, one KV head
 * at a time, so each chunk of 8 positions is read and converted from f16
 * once per tile instead of once per token. Every query keeps the arithmetic
 * of attn_item_avx2 (attention_avx2.c) exactly, so its output has the same
 * bits alone or in any tile: per chunk the row's 8 scores (two accumulators
 * per dot product, summed by hsum's tree), one softmax update with the same
 * exp, then the weighted V rows in position order. Built with -mavx2 -mfma
 * -mf16c; head_dim a multiple of 8.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attention_int.h"
#include "kernels/attention_simd_int.h"

/* The chunk's n rows of KV head kvh into buf (CHUNK rows of hd floats),
 * converted from f16 or copied; the rows from n on repeat row 0, so every
 * slot holds numbers (their scores are masked). Rows at fixed offsets keep
 * the loops over them free of pointer loads. */
static inline __attribute__((always_inline)) void chunk_load(const void *base, const size_t *rows,
                                                             uint32_t n, uint32_t kvh, uint32_t hd,
                                                             int f16, float *buf) {
    for (uint32_t jj = 0; jj < n; jj++) {
        const size_t idx = (rows[jj] + kvh) * hd;
        float *d = buf + (size_t)jj * hd;
        if (f16) {
            const uint16_t *s = (const uint16_t *)base + idx;
#pragma GCC unroll 16
            for (uint32_t i = 0; i < hd / 8; i++)
                _mm256_store_ps(d + 8 * i,
                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 8 * i))));
        } else {
            memcpy(d, (const float *)base + idx, (size_t)hd * sizeof(float));
        }
    }
    for (uint32_t jj = n; jj < CHUNK; jj++)
        memcpy(buf + (size_t)jj * hd, buf, (size_t)hd * sizeof(float));
}

/* q.k over nv vectors of 8 (q already in registers), before the
 * horizontal sum: the two accumulators of heads(), filled in its order. */
static inline __attribute__((always_inline)) __m256 dot(const __m256 *q, const float *k,
                                                        uint32_t nv) {
    __m256 sum0 = _mm256_mul_ps(q[0], _mm256_loadu_ps(k));
    __m256 sum1 = _mm256_setzero_ps();
    uint32_t i = 1;
#pragma GCC unroll 16
    for (; i + 1 < nv; i += 2) {
        sum1 = _mm256_fmadd_ps(q[i], _mm256_loadu_ps(k + 8 * i), sum1);
        sum0 = _mm256_fmadd_ps(q[i + 1], _mm256_loadu_ps(k + 8 * (i + 1)), sum0);
    }
    if (i < nv) sum1 = _mm256_fmadd_ps(q[i], _mm256_loadu_ps(k + 8 * i), sum1);
    return _mm256_add_ps(sum0, sum1);
}

/* acc[i] += w * v[8i..8i+7] for i < ni (ni <= 8), as heads() adds one V row. */
static inline __attribute__((always_inline)) void add_weighted(__m256 *acc, uint32_t ni, float w,
                                                               const float *v) {
    const __m256 wv = _mm256_set1_ps(w);
#pragma GCC unroll 8
    for (uint32_t i = 0; i < 8; i++)
        if (i < ni) acc[i] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + 8 * i), acc[i]);
}

/* The tile's tokens t0..t0+nt-1 (one sequence, positions p0..p0+nt-1) on
 * KV head kvh: nt * group query rows walk the keys chunk by chunk, each
 * chunk's K and V rows loaded (and converted) once for all of them. Row r =
 * (token r / group, query head kvh * group + r % group). The arithmetic of
 * each row is heads()'s: the same chunks (aligned to position 0), the same
 * dot products (two accumulators, hsum's tree in reduce8), the same softmax
 * update and exp, the V rows added in position order, so every output has
 * the bits attn_item_avx2 gives the token alone; only the loops are
 * reordered (a row's accumulators stay in registers over a chunk). */
static inline __attribute__((always_inline)) void tile_head(const attn_args *a, uint32_t t0,
                                                            uint32_t nt, uint32_t kvh, uint32_t hd,
                                                            int f16, tile_scratch *sc) {
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t nv = hd / 8;
    const uint32_t *table = a->tables[t0];
    const uint32_t p0 = (uint32_t)a->pos[t0];
    const uint32_t n_pos = p0 + nt; /* the last token's context */
    const uint32_t nr = nt * group;
    const size_t head_bytes = (size_t)hd * (f16 ? 2 : 4);
    size_t rows[CHUNK], next[CHUNK];
    const float *kb = sc->buf, *vb = sc->buf; /* the chunk's K, then V rows */

    for (uint32_t r = 0; r < nr; r++) {
        sc->m[r] = -INFINITY;
        sc->l[r] = 0.0f;
    }
    memset(sc->acc, 0, (size_t)nr * hd * sizeof(float));
    /* The rows' queries side by side (token rows are q_stride apart). */
    for (uint32_t qi = 0; qi < nt; qi++)
        memcpy(sc->q + (size_t)qi * group * hd,
               a->q + (size_t)(t0 + qi) * a->q_stride + (size_t)kvh * group * hd,
               (size_t)group * hd * sizeof(float));
    uint32_t blk = 0, slot = 0; /* of the next position to list */
    uint32_t n = tile_rows(a, table, n_pos, 0, &blk, &slot, rows);
    for (uint32_t j0 = 0; j0 < n_pos; j0 += CHUNK) {
        const uint32_t n_next = tile_rows(a, table, n_pos, j0 + CHUNK, &blk, &slot, next);
        for (uint32_t jj = 0; jj < n_next; jj++)
            prefetch_row(a, next[jj], kvh, kvh + 1, head_bytes);
        /* Tokens before qi0 have no position in this chunk: done. */
        const uint32_t qi0 = j0 > p0 ? j0 - p0 : 0;
        chunk_load(a->k, rows, n, kvh, hd, f16, sc->buf);
        for (uint32_t qi = qi0; qi < nt; qi++) {
            const uint32_t nq = p0 + qi + 1 - j0 < n ? p0 + qi + 1 - j0 : n;
            for (uint32_t g = 0; g < group; g++) {
                const uint32_t r = qi * group + g;
                const float *qg = sc->q + (size_t)r * hd;
                /* d in reduce8's order: slot 2 * (jj % 4) + jj / 4 holds key
                 * jj. Keys past the row's last position give lanes that
                 * tile_scores masks. */
                __m256 qv[ATTN_MAX_HEAD_DIM / 8], d[CHUNK];
#pragma GCC unroll 16
                for (uint32_t i = 0; i < nv; i++) qv[i] = _mm256_loadu_ps(qg + 8 * i);
#pragma GCC unroll 8
                for (uint32_t jj = 0; jj < CHUNK; jj++)
                    d[2 * (jj % 4) + jj / 4] = dot(qv, kb + (size_t)jj * hd, nv);
                _mm256_store_ps(sc->pw[r], tile_scores(d, nq, a->scale));
            }
        }
        tile_softmax(sc, qi0 * group, nr, group, p0, j0, n);
        chunk_load(a->v, rows, n, kvh, hd, f16, sc->buf);
        /* Weighted V rows, in position order, 8 vectors of a row at a time
         * held in registers over the chunk. */
        for (uint32_t qi = qi0; qi < nt; qi++) {
            const uint32_t nq = p0 + qi + 1 - j0 < n ? p0 + qi + 1 - j0 : n;
            for (uint32_t g = 0; g < group; g++) {
                const uint32_t r = qi * group + g;
                float *ag = sc->acc + (size_t)r * hd;
                const float c = sc->c[r];
                for (uint32_t i0 = 0; i0 < nv; i0 += 8) {
                    const uint32_t ni = nv - i0 < 8 ? nv - i0 : 8;
                    __m256 acc[8];
#pragma GCC unroll 8
                    for (uint32_t i = 0; i < 8; i++)
                        acc[i] = i < ni ? _mm256_load_ps(ag + 8 * (i0 + i)) : _mm256_setzero_ps();
                    /* heads() rescales in place before adding the chunk. */
                    if (c != 1.0f) {
#pragma GCC unroll 8
                        for (uint32_t i = 0; i < 8; i++)
                            acc[i] = _mm256_mul_ps(acc[i], _mm256_set1_ps(c));
                    }
                    if (nq == CHUNK) {
#pragma GCC unroll 8
                        for (uint32_t jj = 0; jj < CHUNK; jj++)
                            add_weighted(acc, ni, sc->pw[r][jj], vb + (size_t)jj * hd + 8 * i0);
                    } else {
                        for (uint32_t jj = 0; jj < nq; jj++)
                            add_weighted(acc, ni, sc->pw[r][jj], vb + (size_t)jj * hd + 8 * i0);
                    }
#pragma GCC unroll 8
                    for (uint32_t i = 0; i < 8; i++)
                        if (i < ni) _mm256_store_ps(ag + 8 * (i0 + i), acc[i]);
                }
            }
        }
        memcpy(rows, next, n_next * sizeof *rows);
        n = n_next;
    }
    tile_finish(a, sc, t0, nt, kvh, hd);
}

/* tile_head with head_dim 64 and 128 as constants (unrolled loops), other
 * sizes generic; f16 is a constant at each call. */
static inline __attribute__((always_inline)) void tile_head_hd(const attn_args *a, uint32_t t0, uint32_t nt,
                                                               uint32_t kvh, uint32_t hd, const int f16,
                                                               tile_scratch *sc) {
    switch (hd) {
    case 64: tile_head(a, t0, nt, kvh, 64, f16, sc); break;
    case 128: tile_head(a, t0, nt, kvh, 128, f16, sc); break;
    default: tile_head(a, t0, nt, kvh, hd, f16, sc); break;
    }
}

void attn_tile_avx2(const attn_args *a, uint32_t t0, uint32_t nt, uint32_t h0, uint32_t h1) {
    tile_scratch sc;
    const int f16 = a->kv_type == DTYPE_F16;
    for (uint32_t kvh = h0; kvh < h1; kvh++) {
        if (f16) tile_head_hd(a, t0, nt, kvh, a->head_dim, 1, &sc);
        else tile_head_hd(a, t0, nt, kvh, a->head_dim, 0, &sc);
    }
}
