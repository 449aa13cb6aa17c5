/*
 * attention_tile_avx512.c - query tiles with 16-lane vectors (see
 * attention_tile_avx2.c, whose loop this is): the same chunks of 8 positions,
 * softmax update and exp (attention_simd_int.h), with half the instructions
 * for the dot products and the weighted V sums. Bit-identical to
 * attn_item_avx2, the single-token item on AVX-512 CPUs too: a 16-lane
 * product vector holds the item's two 8-lane accumulators side by side
 * (even 8-float blocks of head_dim in the low half, odd ones in the high
 * half, low half started from -0 so that its first FMA is the item's
 * multiply), and the halves are added as the item adds them before hsum's
 * tree; the V sums are the same FMAs lane by lane. Built with the AVX-512
 * flags; head_dim a multiple of 16.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attention_int.h"
#include "kernels/attention_simd_int.h"

/* The chunk's n rows of KV head kvh into buf, as chunk_load in
 * attention_tile_avx2.c. */
static inline __attribute__((always_inline)) void chunk_load(const void *base, const size_t *rows,
                                                             uint32_t n, uint32_t kvh, uint32_t hd,
                                                             int f16, float *buf) {
    for (uint32_t jj = 0; jj < n; jj++) {
        const size_t idx = (rows[jj] + kvh) * hd;
        float *d = buf + (size_t)jj * hd;
        if (f16) {
            const uint16_t *s = (const uint16_t *)base + idx;
#pragma GCC unroll 16
            for (uint32_t i = 0; i < hd / 16; i++)
                _mm512_store_ps(d + 16 * i,
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + 16 * i))));
        } else {
            memcpy(d, (const float *)base + idx, (size_t)hd * sizeof(float));
        }
    }
    for (uint32_t jj = n; jj < CHUNK; jj++)
        memcpy(buf + (size_t)jj * hd, buf, (size_t)hd * sizeof(float));
}

/* q.k over nw vectors of 16 (q in registers): lanes 0-7 are the item's
 * sum0 (8-float blocks 0, 2, 4, ...), lanes 8-15 its sum1 (blocks 1, 3,
 * ...), accumulated in the item's order. */
static inline __attribute__((always_inline)) __m512 dot16(const __m512 *q, const float *k,
                                                          uint32_t nw) {
    const __m512 init = _mm512_castsi512_ps(_mm512_set_epi32(
        0, 0, 0, 0, 0, 0, 0, 0, (int)0x80000000, (int)0x80000000, (int)0x80000000, (int)0x80000000,
        (int)0x80000000, (int)0x80000000, (int)0x80000000, (int)0x80000000));
    __m512 z = _mm512_fmadd_ps(q[0], _mm512_loadu_ps(k), init);
#pragma GCC unroll 16
    for (uint32_t i = 1; i < nw; i++) z = _mm512_fmadd_ps(q[i], _mm512_loadu_ps(k + 16 * i), z);
    return z;
}

/* sum0 + sum1 of keys a and b: [a's 8 | b's 8]. */
static inline __m512 halves(__m512 za, __m512 zb) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(za, zb, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(za, zb, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* acc[i] += w * v[16i..16i+15] for i < ni (ni <= 8). */
static inline __attribute__((always_inline)) void add_weighted(__m512 *acc, uint32_t ni, float w,
                                                               const float *v) {
    const __m512 wv = _mm512_set1_ps(w);
#pragma GCC unroll 8
    for (uint32_t i = 0; i < 8; i++)
        if (i < ni) acc[i] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(v + 16 * i), acc[i]);
}

/* As tile_head in attention_tile_avx2.c, 16 lanes wide. */
static inline __attribute__((always_inline)) void tile_head(const attn_args *a, uint32_t t0,
                                                            uint32_t nt, uint32_t kvh, uint32_t hd,
                                                            int f16, tile_scratch *sc) {
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t nw = hd / 16;
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
                __m512 qz[ATTN_MAX_HEAD_DIM / 16];
                qz[0] = _mm512_setzero_ps(); /* nw >= 1; the compiler cannot tell */
#pragma GCC unroll 16
                for (uint32_t i = 0; i < nw; i++) qz[i] = _mm512_loadu_ps(qg + 16 * i);
                /* Keys (0, 4), (1, 5), (2, 6), (3, 7) pairwise: d comes out
                 * in reduce8's order (0, 4, 1, 5, 2, 6, 3, 7). */
                __m256 d[CHUNK];
#pragma GCC unroll 4
                for (uint32_t jj = 0; jj < 4; jj++) {
                    const __m512 h = halves(dot16(qz, kb + (size_t)jj * hd, nw),
                                            dot16(qz, kb + (size_t)(jj + 4) * hd, nw));
                    d[2 * jj] = _mm512_castps512_ps256(h);
                    d[2 * jj + 1] = _mm512_extractf32x8_ps(h, 1);
                }
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
                for (uint32_t i0 = 0; i0 < nw; i0 += 8) {
                    const uint32_t ni = nw - i0 < 8 ? nw - i0 : 8;
                    __m512 acc[8];
#pragma GCC unroll 8
                    for (uint32_t i = 0; i < 8; i++)
                        acc[i] = i < ni ? _mm512_load_ps(ag + 16 * (i0 + i)) : _mm512_setzero_ps();
                    if (c != 1.0f) {
#pragma GCC unroll 8
                        for (uint32_t i = 0; i < 8; i++)
                            acc[i] = _mm512_mul_ps(acc[i], _mm512_set1_ps(c));
                    }
                    if (nq == CHUNK) {
#pragma GCC unroll 8
                        for (uint32_t jj = 0; jj < CHUNK; jj++)
                            add_weighted(acc, ni, sc->pw[r][jj], vb + (size_t)jj * hd + 16 * i0);
                    } else {
                        for (uint32_t jj = 0; jj < nq; jj++)
                            add_weighted(acc, ni, sc->pw[r][jj], vb + (size_t)jj * hd + 16 * i0);
                    }
#pragma GCC unroll 8
                    for (uint32_t i = 0; i < 8; i++)
                        if (i < ni) _mm512_store_ps(ag + 16 * (i0 + i), acc[i]);
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

void attn_tile_avx512(const attn_args *a, uint32_t t0, uint32_t nt, uint32_t h0, uint32_t h1) {
    tile_scratch sc;
    const int f16 = a->kv_type == DTYPE_F16;
    for (uint32_t kvh = h0; kvh < h1; kvh++) {
        if (f16) tile_head_hd(a, t0, nt, kvh, a->head_dim, 1, &sc);
        else tile_head_hd(a, t0, nt, kvh, a->head_dim, 0, &sc);
    }
}
