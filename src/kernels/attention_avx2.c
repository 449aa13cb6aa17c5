/*
 * attention_avx2.c - the AVX2/FMA/F16C version of the attention work items
 * (see attention.c for the algorithm), the loop of attention_avx512.c 8 lanes
 * wide: keys 8 positions at a time; per chunk the pool is read position by
 * position, every KV head of the call together (f16 converted in registers
 * with vcvtph2ps), each query head's 8 scores then update its running max
 * once per chunk with a vector exp, and the weighted V rows are added
 * position by position; the next chunk is prefetched while one computes.
 * Same online softmax as the reference; the summation order and the exp
 * (degree-6 polynomial, ~2 ulp) differ. Built with -mavx2 -mfma -mf16c;
 * called only when cpu_level() says the CPU has them and head_dim is a
 * multiple of 8. Also the f32-to-f16 row store of attn_store_row.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attention_int.h"
#include "kernels/quant.h"

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
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
                                                         _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* Pool rows (head 0) of the chunk's positions j0.. (at most CHUNK, none
 * past n_pos) into rows; returns how many. */
static inline uint32_t chunk_rows(const attn_args *a, const uint32_t *table, uint32_t j0,
                                  uint32_t n_pos, size_t *rows) {
    const uint32_t n = j0 >= n_pos ? 0 : n_pos - j0 < CHUNK ? n_pos - j0 : CHUNK;
    for (uint32_t jj = 0; jj < n; jj++) {
        const uint32_t j = j0 + jj;
        rows[jj] = ((size_t)table[j / a->block_size] * a->block_size + j % a->block_size) *
                   a->n_head_kv;
    }
    return n;
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

/* nv vectors of 8 floats of one K or V head row, converted from f16 when
 * the pool is f16. */
static inline __attribute__((always_inline)) void load_row(const void *base, size_t idx, int f16,
                                                           uint32_t nv, __m256 *dst) {
    if (f16) {
        const uint16_t *s = (const uint16_t *)base + idx;
#pragma GCC unroll 16
        for (uint32_t i = 0; i < nv; i++)
            dst[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 8 * i)));
    } else {
        const float *s = (const float *)base + idx;
#pragma GCC unroll 16
        for (uint32_t i = 0; i < nv; i++) dst[i] = _mm256_loadu_ps(s + 8 * i);
    }
}

/* Most query heads one pass keeps state for: at least one GQA group. */
#define PASS_HEADS ATTN_MAX_GROUP

/* Scratch of one call, on the caller's stack (about 40 KiB). */
typedef struct scratch {
    float acc[ATTN_MAX_GROUP_DIM] __attribute__((aligned(32)));
    float s[PASS_HEADS][CHUNK] __attribute__((aligned(32)));  /* q.k of the chunk */
    float pw[PASS_HEADS][CHUNK] __attribute__((aligned(32))); /* chunk weights */
    float m[PASS_HEADS], l[PASS_HEADS];
} scratch;

/* KV heads h0..h1-1 of token t, (h1 - h0) * group <= PASS_HEADS query heads
 * and at most ATTN_MAX_GROUP_DIM floats of accumulators, chunk by chunk; per
 * chunk the pool is read position by position, every KV head of the call
 * together (as in attention_avx512.c). next_row is the first pool row of
 * the token that comes next (to prefetch), or SIZE_MAX. */
static inline __attribute__((always_inline)) void heads(const attn_args *a, uint32_t t,
                                                        uint32_t h0, uint32_t h1, uint32_t hd,
                                                        int f16, size_t next_row, scratch *sc) {
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t nv = hd / 8;
    const uint32_t *table = a->tables[t];
    const uint32_t n_pos = (uint32_t)a->pos[t] + 1;
    const uint32_t nq = (h1 - h0) * group;
    const float *q = a->q + (size_t)t * a->q_stride + (size_t)h0 * group * hd;
    float *out = a->out + (size_t)t * a->out_stride + (size_t)h0 * group * hd;
    const size_t head_bytes = (size_t)hd * (f16 ? 2 : 4);
    size_t rows[CHUNK], next[CHUNK];

    for (uint32_t g = 0; g < nq; g++) {
        sc->m[g] = -INFINITY;
        sc->l[g] = 0.0f;
    }
    memset(sc->acc, 0, (size_t)nq * hd * sizeof(float));
    uint32_t n = chunk_rows(a, table, 0, n_pos, rows);
    for (uint32_t j0 = 0; j0 < n_pos; j0 += CHUNK) {
        const uint32_t n_next = chunk_rows(a, table, j0 + CHUNK, n_pos, next);
        if (n_next == 0 && next_row != SIZE_MAX) prefetch_row(a, next_row, h0, h1, head_bytes);
        /* Scores, position by position across the heads. */
        for (uint32_t jj = 0; jj < n; jj++) {
            if (jj < n_next) prefetch_row(a, next[jj], h0, h1, head_bytes);
            for (uint32_t kvh = h0; kvh < h1; kvh++) {
                __m256 kv[ATTN_MAX_HEAD_DIM / 8];
                load_row(a->k, (rows[jj] + kvh) * hd, f16, nv, kv);
                for (uint32_t g = 0; g < group; g++) {
                    const uint32_t qh = (kvh - h0) * group + g;
                    const float *qg = q + (size_t)qh * hd;
                    __m256 sum0 = _mm256_mul_ps(_mm256_loadu_ps(qg), kv[0]);
                    __m256 sum1 = _mm256_setzero_ps();
                    uint32_t i = 1;
                    for (; i + 1 < nv; i += 2) {
                        sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(qg + 8 * i), kv[i], sum1);
                        sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(qg + 8 * (i + 1)), kv[i + 1], sum0);
                    }
                    if (i < nv) sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(qg + 8 * i), kv[i], sum1);
                    sc->s[qh][jj] = hsum(_mm256_add_ps(sum0, sum1));
                }
            }
        }
        /* Softmax update per query head; the accumulators are rescaled. */
        const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
            _mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
        for (uint32_t qh = 0; qh < nq; qh++) {
            for (uint32_t jj = n; jj < CHUNK; jj++) sc->s[qh][jj] = -INFINITY;
            const __m256 sv = _mm256_mul_ps(_mm256_load_ps(sc->s[qh]), _mm256_set1_ps(a->scale));
            const float cmax = hmax(sv);
            const float m = sc->m[qh];
            const float mnew = cmax > m ? cmax : m;
            const __m256 p = _mm256_and_ps(live, exp_ps(_mm256_sub_ps(sv, _mm256_set1_ps(mnew))));
            _mm256_store_ps(sc->pw[qh], p);
            const float c = mnew > m ? expf(m - mnew) : 1.0f; /* 0 on the first chunk */
            sc->l[qh] = sc->l[qh] * c + hsum(p);
            sc->m[qh] = mnew;
            if (c != 1.0f) {
                const __m256 cv = _mm256_set1_ps(c);
                float *ag = sc->acc + (size_t)qh * hd;
                for (uint32_t i = 0; i < nv; i++)
                    _mm256_store_ps(ag + 8 * i, _mm256_mul_ps(_mm256_load_ps(ag + 8 * i), cv));
            }
        }
        /* Weighted V rows into the accumulators, position by position. */
        for (uint32_t jj = 0; jj < n; jj++) {
            for (uint32_t kvh = h0; kvh < h1; kvh++) {
                __m256 vv[ATTN_MAX_HEAD_DIM / 8];
                load_row(a->v, (rows[jj] + kvh) * hd, f16, nv, vv);
                for (uint32_t g = 0; g < group; g++) {
                    const uint32_t qh = (kvh - h0) * group + g;
                    const __m256 pj = _mm256_set1_ps(sc->pw[qh][jj]);
                    float *ag = sc->acc + (size_t)qh * hd;
#pragma GCC unroll 16
                    for (uint32_t i = 0; i < nv; i++)
                        _mm256_store_ps(ag + 8 * i,
                                        _mm256_fmadd_ps(pj, vv[i], _mm256_load_ps(ag + 8 * i)));
                }
            }
        }
        memcpy(rows, next, n_next * sizeof *rows);
        n = n_next;
    }
    for (uint32_t g = 0; g < nq; g++) {
        const __m256 inv = _mm256_set1_ps(1.0f / sc->l[g]);
        for (uint32_t i = 0; i < nv; i++)
            _mm256_storeu_ps(out + (size_t)g * hd + 8 * i,
                             _mm256_mul_ps(_mm256_load_ps(sc->acc + (size_t)g * hd + 8 * i), inv));
    }
}

void attn_item_avx2(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1) {
    scratch sc;
    const uint32_t hd = a->head_dim, group = a->n_head / a->n_head_kv;
    const int f16 = a->kv_type == DTYPE_F16;
    uint32_t per = ATTN_MAX_GROUP_DIM / (group * hd); /* >= 1: checked by the model */
    if (per > PASS_HEADS / group) per = PASS_HEADS / group; /* >= 1: group <= ATTN_MAX_GROUP */
    size_t next_row = SIZE_MAX;
    if (t + 1 < a->n_tokens)
        next_row = (size_t)a->tables[t + 1][0] * a->block_size * a->n_head_kv;
    for (uint32_t s0 = h0; s0 < h1; s0 += per) {
        const uint32_t s1 = h1 - s0 < per ? h1 : s0 + per;
        const size_t nr = s1 == h1 ? next_row : SIZE_MAX;
        if (f16) {
            switch (hd) {
            case 64: heads(a, t, s0, s1, 64, 1, nr, &sc); break;
            case 128: heads(a, t, s0, s1, 128, 1, nr, &sc); break;
            default: heads(a, t, s0, s1, hd, 1, nr, &sc); break;
            }
        } else {
            switch (hd) {
            case 64: heads(a, t, s0, s1, 64, 0, nr, &sc); break;
            case 128: heads(a, t, s0, s1, 128, 0, nr, &sc); break;
            default: heads(a, t, s0, s1, hd, 0, nr, &sc); break;
            }
        }
    }
}

/* Lane i of the result = the sum of the 8 lanes of d[order[i]], where
 * d holds the sums of keys (0, 4, 1, 5, 2, 6, 3, 7) of a chunk in that
 * order: a transposing tree that adds exactly as hsum does (lane i with
 * i + 4, then lanes 0 and 2, 1 and 3, then the two halves), so a score
 * has the same bits whether it came through hsum (the single-token items)
 * or through here (the tiles). */
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

/* Scratch of one tile call, on the caller's stack (about 53 KiB). */
typedef struct tile_scratch {
    float acc[ATTN_TILE_FLOATS] __attribute__((aligned(32)));
    float buf[CHUNK * ATTN_MAX_HEAD_DIM] __attribute__((aligned(32))); /* f16 rows as f32 */
    float pw[ATTN_TILE_ROWS][CHUNK] __attribute__((aligned(32)));     /* chunk weights */
    float m[ATTN_TILE_ROWS], l[ATTN_TILE_ROWS];
    float c[ATTN_TILE_ROWS]; /* the chunk's rescale of each row's accumulators */
} tile_scratch;

/* The chunk's n rows of KV head kvh as f32 row pointers: f16 rows are
 * converted into buf, f32 rows are read in the pool. */
static inline __attribute__((always_inline)) void chunk_ptrs(const void *base, const size_t *rows,
                                                             uint32_t n, uint32_t kvh, uint32_t hd,
                                                             int f16, float *buf,
                                                             const float **ptr) {
    for (uint32_t jj = 0; jj < n; jj++) {
        const size_t idx = (rows[jj] + kvh) * hd;
        if (f16) {
            const uint16_t *s = (const uint16_t *)base + idx;
            float *d = buf + (size_t)jj * hd;
#pragma GCC unroll 16
            for (uint32_t i = 0; i < hd / 8; i++)
                _mm256_store_ps(d + 8 * i,
                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 8 * i))));
            ptr[jj] = d;
        } else {
            ptr[jj] = (const float *)base + idx;
        }
    }
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
                                                            uint32_t nt, uint32_t kvh,
                                                            uint32_t hd, int f16,
                                                            tile_scratch *sc) {
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t nv = hd / 8;
    const uint32_t *table = a->tables[t0];
    const uint32_t p0 = (uint32_t)a->pos[t0];
    const uint32_t n_pos = p0 + nt; /* the last token's context */
    const uint32_t nr = nt * group;
    const size_t head_bytes = (size_t)hd * (f16 ? 2 : 4);
    size_t rows[CHUNK], next[CHUNK];
    const float *kp[CHUNK], *vp[CHUNK];

    for (uint32_t r = 0; r < nr; r++) {
        sc->m[r] = -INFINITY;
        sc->l[r] = 0.0f;
    }
    memset(sc->acc, 0, (size_t)nr * hd * sizeof(float));
    uint32_t n = chunk_rows(a, table, 0, n_pos, rows);
    for (uint32_t j0 = 0; j0 < n_pos; j0 += CHUNK) {
        const uint32_t n_next = chunk_rows(a, table, j0 + CHUNK, n_pos, next);
        for (uint32_t jj = 0; jj < n_next; jj++) prefetch_row(a, next[jj], kvh, kvh + 1, head_bytes);
        /* Tokens before qi0 have no position in this chunk: done. */
        const uint32_t qi0 = j0 > p0 ? j0 - p0 : 0;
        chunk_ptrs(a->k, rows, n, kvh, hd, f16, sc->buf, kp);
        for (uint32_t jj = n; jj < CHUNK; jj++) kp[jj] = kp[0]; /* read, then masked */
        for (uint32_t qi = qi0; qi < nt; qi++) {
            const uint32_t nq = p0 + qi + 1 - j0 < n ? p0 + qi + 1 - j0 : n;
            const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                _mm256_set1_epi32((int)nq), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
            for (uint32_t g = 0; g < group; g++) {
                const uint32_t r = qi * group + g;
                const float *qg = a->q + (size_t)(t0 + qi) * a->q_stride +
                                  ((size_t)kvh * group + g) * hd;
                /* d in reduce8's order: slot 2 * (jj % 4) + jj / 4 holds key
                 * jj. Keys past the row's last position give lanes that
                 * the mask below replaces. */
                __m256 qv[ATTN_MAX_HEAD_DIM / 8], d[CHUNK];
#pragma GCC unroll 16
                for (uint32_t i = 0; i < nv; i++) qv[i] = _mm256_loadu_ps(qg + 8 * i);
#pragma GCC unroll 8
                for (uint32_t jj = 0; jj < CHUNK; jj++) d[2 * (jj % 4) + jj / 4] = dot(qv, kp[jj], nv);
                /* As heads(): lanes past the row's positions are -inf before
                 * the scale. */
                const __m256 s = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), reduce8(d), live);
                _mm256_store_ps(sc->pw[r], _mm256_mul_ps(s, _mm256_set1_ps(a->scale)));
            }
        }
        /* Softmax update of every row, in a loop of its own so that the
         * rows' dependency chains (max, exp, sum) overlap. */
        for (uint32_t r = qi0 * group; r < nr; r++) {
            const uint32_t qi = r / group;
            const uint32_t nq = p0 + qi + 1 - j0 < n ? p0 + qi + 1 - j0 : n;
            const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                _mm256_set1_epi32((int)nq), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
            const __m256 sv = _mm256_load_ps(sc->pw[r]);
            const float cmax = hmax(sv);
            const float m = sc->m[r];
            const float mnew = cmax > m ? cmax : m;
            const __m256 p = _mm256_and_ps(live, exp_ps(_mm256_sub_ps(sv, _mm256_set1_ps(mnew))));
            _mm256_store_ps(sc->pw[r], p);
            const float c = mnew > m ? expf(m - mnew) : 1.0f;
            sc->l[r] = sc->l[r] * c + hsum(p);
            sc->m[r] = mnew;
            sc->c[r] = c;
        }
        chunk_ptrs(a->v, rows, n, kvh, hd, f16, sc->buf, vp);
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
                    for (uint32_t jj = 0; jj < nq; jj++) {
                        const __m256 pj = _mm256_set1_ps(sc->pw[r][jj]);
                        const float *v = vp[jj] + 8 * i0;
#pragma GCC unroll 8
                        for (uint32_t i = 0; i < 8; i++)
                            if (i < ni) acc[i] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8 * i), acc[i]);
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
    for (uint32_t qi = 0; qi < nt; qi++) {
        float *out = a->out + (size_t)(t0 + qi) * a->out_stride + (size_t)kvh * group * hd;
        for (uint32_t g = 0; g < group; g++) {
            const uint32_t r = qi * group + g;
            const __m256 inv = _mm256_set1_ps(1.0f / sc->l[r]);
            for (uint32_t i = 0; i < nv; i++)
                _mm256_storeu_ps(out + (size_t)g * hd + 8 * i,
                                 _mm256_mul_ps(_mm256_load_ps(sc->acc + (size_t)r * hd + 8 * i),
                                               inv));
        }
    }
}

void attn_tile_avx2(const attn_args *a, uint32_t t0, uint32_t nt, uint32_t h0, uint32_t h1) {
    tile_scratch sc;
    const uint32_t hd = a->head_dim;
    const int f16 = a->kv_type == DTYPE_F16;
    for (uint32_t kvh = h0; kvh < h1; kvh++) {
        if (f16) {
            switch (hd) {
            case 64: tile_head(a, t0, nt, kvh, 64, 1, &sc); break;
            case 128: tile_head(a, t0, nt, kvh, 128, 1, &sc); break;
            default: tile_head(a, t0, nt, kvh, hd, 1, &sc); break;
            }
        } else {
            switch (hd) {
            case 64: tile_head(a, t0, nt, kvh, 64, 0, &sc); break;
            case 128: tile_head(a, t0, nt, kvh, 128, 0, &sc); break;
            default: tile_head(a, t0, nt, kvh, hd, 0, &sc); break;
            }
        }
    }
}

void attn_f16_row_avx2(uint16_t *dst, const float *src, uint32_t n) {
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(src + i);
        /* As attn_f16_row_avx512: NaNs take the scalar way. */
        if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q))) {
            for (uint32_t j = i; j < i + 8; j++) dst[j] = f32_to_fp16(src[j]);
            continue;
        }
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}
