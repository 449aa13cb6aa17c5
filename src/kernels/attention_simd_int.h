/*
 * attention_simd_int.h - private to the x86 attention files built with AVX2
 * (attention_avx2.c, attention_tile_avx2.c, attention_tile_avx512.c): the
 * 8-lane pieces whose bits the single-token AVX2 item and the query tiles
 * must share (horizontal sum and max, the vector exp, the transposing sum
 * of 8 scores, the per-chunk softmax update of a tile's rows), the tile
 * scratch, and the walk of a block table. Include only from a file built
 * with -mavx2 -mfma -mf16c (or the AVX-512 flags, which imply them).
 */
#ifndef KERNELS_ATTENTION_SIMD_INT_H
#define KERNELS_ATTENTION_SIMD_INT_H

#include <immintrin.h>
#include <math.h>

#include "kernels/attention_int.h"

/* A tile's query and the single-token item must round alike: no fused
 * multiply-adds beyond the intrinsics (GCC's ISO C mode contracts nothing;
 * clang contracts within an expression unless told). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* Key positions per chunk: the single-token AVX2 item's, so every query of
 * a tile sees the same chunks (aligned to position 0). */
enum { CHUNK = 8 };

static inline float hsum(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

static inline float hmax(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* e^x for 8 lanes; x <= 0 here (scores minus their max). Lanes below -87
 * give e^-87 (the caller masks the lanes past the chunk's end). */
static inline __m256 exp_ps(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* The sum of the 8 lanes of each of 8 vectors, in one vector: a
 * transposing tree that adds exactly as hsum does (lane i with i + 4, then
 * lanes 0 and 2 and lanes 1 and 3, then those two), so a score has the
 * same bits whether it came through hsum (the single-token item) or here
 * (the tiles). d holds the vectors of keys 0, 4, 1, 5, 2, 6, 3, 7 in that
 * order; lane k of the result is key k's sum. */
static inline __m256 reduce8(const __m256 *d) {
    __m256 e[4], f[2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        e[i] = _mm256_add_ps(_mm256_permute2f128_ps(d[2 * i], d[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(d[2 * i], d[2 * i + 1], 0x31));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        f[i] = _mm256_add_ps(_mm256_unpacklo_ps(e[2 * i], e[2 * i + 1]),
                             _mm256_unpackhi_ps(e[2 * i], e[2 * i + 1]));
    return _mm256_add_ps(_mm256_shuffle_ps(f[0], f[1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm256_shuffle_ps(f[0], f[1], _MM_SHUFFLE(3, 2, 3, 2)));
}

/* Asks for the K and V bytes of heads h0..h1-1 at pool row `row` (head 0):
 * one run of (h1 - h0) * head_bytes, into L2. */
static inline void prefetch_row(const attn_args *a, size_t row, uint32_t h0, uint32_t h1,
                                size_t head_bytes) {
    const size_t lo = (row + h0) * head_bytes, hi = (row + h1) * head_bytes;
    const char *k = a->k, *v = a->v;
    for (size_t b = lo & ~(size_t)63; b < hi; b += 64) {
        _mm_prefetch(k + b, _MM_HINT_T1);
        _mm_prefetch(v + b, _MM_HINT_T1);
    }
}

/* Scratch of one tile call, on the caller's stack (about 86 KiB). */
typedef struct tile_scratch {
    float acc[ATTN_TILE_FLOATS] __attribute__((aligned(64)));
    float q[ATTN_TILE_FLOATS] __attribute__((aligned(64))); /* the rows' queries, contiguous */
    float buf[CHUNK * ATTN_MAX_HEAD_DIM] __attribute__((aligned(64))); /* f16 rows as f32 */
    float pw[ATTN_TILE_ROWS][CHUNK] __attribute__((aligned(32)));      /* chunk weights */
    float m[ATTN_TILE_ROWS], l[ATTN_TILE_ROWS];
    float c[ATTN_TILE_ROWS]; /* the chunk's rescale of each row's accumulators */
} tile_scratch;

/* Pool rows (head 0) of the positions from j (at most CHUNK, none from
 * n_pos on) into rows, as chunk_rows but walking the block table from
 * (*blk, *slot), the block and slot of position j, which it advances;
 * returns how many. */
static inline uint32_t tile_rows(const attn_args *a, const uint32_t *table, uint32_t n_pos,
                                 uint32_t j, uint32_t *blk, uint32_t *slot, size_t *rows) {
    const uint32_t n = j >= n_pos ? 0 : n_pos - j < CHUNK ? n_pos - j : CHUNK;
    for (uint32_t jj = 0; jj < n; jj++) {
        rows[jj] = ((size_t)table[*blk] * a->block_size + *slot) * a->n_head_kv;
        if (++*slot == a->block_size) {
            *slot = 0;
            ++*blk;
        }
    }
    return n;
}

/* Lanes 0..nq-1 set. */
static inline __m256 live_mask(uint32_t nq) {
    return _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nq), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

/* The softmax update of a tile's rows r0..nr-1 (row r is token r / group of
 * the tile, whose position is p0 + r / group) for the chunk at j0 of n
 * positions, heads()'s per query head: sc->pw[r] holds the row's scaled
 * scores (lanes past its positions -inf) and becomes its weights; m and l
 * are updated and c set to the factor the row's accumulators take before
 * this chunk's V rows:
 *   mnew = max(m, hmax(s));  p = e^(s - mnew);  c = e^(m - mnew) (1 if m = mnew)
 *   l = l * c + hsum(p);  m = mnew
 * In a loop of its own so that the rows' dependency chains (max, exp, sum)
 * overlap. (Taking eight rows' maxima and sums together with transposing
 * trees cost more instructions than it saved.) */
static inline void tile_softmax(tile_scratch *sc, uint32_t r0, uint32_t nr, uint32_t group,
                                uint32_t p0, uint32_t j0, uint32_t n) {
    for (uint32_t r = r0, qi = r0 / group, g = r0 % group; r < nr; r++) {
        const uint32_t nq = p0 + qi + 1 - j0 < n ? p0 + qi + 1 - j0 : n;
        if (++g == group) {
            g = 0;
            qi++;
        }
        const __m256 sv = _mm256_load_ps(sc->pw[r]);
        const float cmax = hmax(sv);
        const float m = sc->m[r];
        const float mnew = cmax > m ? cmax : m;
        const __m256 p =
            _mm256_and_ps(live_mask(nq), exp_ps(_mm256_sub_ps(sv, _mm256_set1_ps(mnew))));
        _mm256_store_ps(sc->pw[r], p);
        const float c = mnew > m ? expf(m - mnew) : 1.0f; /* 0 on the first chunk */
        sc->l[r] = sc->l[r] * c + hsum(p);
        sc->m[r] = mnew;
        sc->c[r] = c;
    }
}

/* The 8 scaled scores of a row from its 8 dot-product vectors (in
 * reduce8's order), lanes at or past nq set to -inf before the scale, as
 * heads() does. */
static inline __m256 tile_scores(const __m256 *d, uint32_t nq, float scale) {
    const __m256 s = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), reduce8(d), live_mask(nq));
    return _mm256_mul_ps(s, _mm256_set1_ps(scale));
}

/* out = acc / l for each of the tile's rows on KV head kvh, as heads()
 * finishes (a multiply by 1 / l). */
static inline void tile_finish(const attn_args *a, const tile_scratch *sc, uint32_t t0, uint32_t nt,
                               uint32_t kvh, uint32_t hd) {
    const uint32_t group = a->n_head / a->n_head_kv;
    for (uint32_t qi = 0; qi < nt; qi++) {
        float *out = a->out + (size_t)(t0 + qi) * a->out_stride + (size_t)kvh * group * hd;
        for (uint32_t g = 0; g < group; g++) {
            const uint32_t r = qi * group + g;
            const __m256 inv = _mm256_set1_ps(1.0f / sc->l[r]);
            for (uint32_t i = 0; i < hd / 8; i++)
                _mm256_storeu_ps(
                    out + (size_t)g * hd + 8 * i,
                    _mm256_mul_ps(_mm256_load_ps(sc->acc + (size_t)r * hd + 8 * i), inv));
        }
    }
}

#endif
