/*
 * attention_avx512.c - the AVX-512 version of the attention work items (see
 * attention.c for the algorithm). Keys are taken 16 positions at a time (a
 * chunk) and the pool is read position by position, every KV head of the
 * call together, so each position's row of heads is one run of memory: the
 * chunk's K rows give every query head 16 scores (f16 converted in
 * registers with vcvtph2ps, once per KV head for its GQA group), each query
 * head updates its running max once per chunk with a vector exp, then the
 * chunk's V rows are added, weighted, to the accumulators. While a chunk
 * computes, the next one (or the next token's first) is prefetched row by
 * row: in decode every sequence's whole context comes from memory once per
 * step, and strided or unannounced reads left the loads stalling. head_dim 64
 * and 128 get unrolled copies. Same online softmax as the reference; the
 * summation order and the exp (a degree-6 polynomial, ~2 ulp) differ. Called
 * only when cpu_level() is CPU_AVX512 and head_dim is a multiple of 16.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attention_int.h"
#include "kernels/quant.h"

enum { CHUNK = 16 };

/* e^x for 16 lanes; x <= 0 here (scores minus their max). Lanes below -103
 * give 0. */
static inline __m512 exp_ps(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-103.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* Lane i of the result = the sum of the 16 lanes of d[i]: a transposing
 * tree (pairs of rows, then quadruples, then 128-bit blocks). */
static inline __m512 reduce16(const __m512 *d) {
    __m512 c[8], e[4], f[2];
    for (int i = 0; i < 8; i++)
        c[i] = _mm512_add_ps(_mm512_unpacklo_ps(d[2 * i], d[2 * i + 1]),
                             _mm512_unpackhi_ps(d[2 * i], d[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        e[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 2; i++)
        f[i] = _mm512_add_ps(_mm512_shuffle_f32x4(e[2 * i], e[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(e[2 * i], e[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(f[0], f[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(f[0], f[1], _MM_SHUFFLE(3, 1, 3, 1)));
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
 * one run of (h1 - h0) * head_bytes. Into L2 (T1): a chunk of every head
 * can be more than L1 holds. */
static inline void prefetch_row(const attn_args *a, size_t row, uint32_t h0, uint32_t h1,
                                size_t head_bytes) {
    const size_t lo = (row + h0) * head_bytes, hi = (row + h1) * head_bytes;
    const char *k = a->k, *v = a->v;
    for (size_t b = lo & ~(size_t)63; b < hi; b += 64) {
        _mm_prefetch(k + b, _MM_HINT_T1);
        _mm_prefetch(v + b, _MM_HINT_T1);
    }
}

/* nv vectors of 16 floats of one K or V head row, converted from f16 when
 * the pool is f16. */
static inline __attribute__((always_inline)) void load_row(const void *base, size_t idx, int f16,
                                                           uint32_t nv, __m512 *dst) {
    if (f16) {
        const uint16_t *s = (const uint16_t *)base + idx;
#pragma GCC unroll 8
        for (uint32_t i = 0; i < nv; i++)
            dst[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + 16 * i)));
    } else {
        const float *s = (const float *)base + idx;
#pragma GCC unroll 8
        for (uint32_t i = 0; i < nv; i++) dst[i] = _mm512_loadu_ps(s + 16 * i);
    }
}

/* Most query heads one pass keeps state for (the partial scores of a chunk:
 * 1 KiB each); at least one GQA group. A call with more heads goes in
 * several passes. */
#define PASS_HEADS ATTN_MAX_GROUP

/* Scratch of one call, on the caller's stack (about 100 KiB). */
typedef struct scratch {
    float acc[ATTN_MAX_GROUP_DIM] __attribute__((aligned(64)));
    float dots[PASS_HEADS][CHUNK][CHUNK] __attribute__((aligned(64))); /* per-lane partial q.k */
    float pw[PASS_HEADS][CHUNK] __attribute__((aligned(64)));          /* chunk weights */
    float m[PASS_HEADS], l[PASS_HEADS];
} scratch;

/* KV heads h0..h1-1 of token t, (h1 - h0) * group <= PASS_HEADS query heads
 * and at most ATTN_MAX_GROUP_DIM floats of accumulators. next_row is the
 * first pool row of the token that comes next (to prefetch), or SIZE_MAX. */
static inline __attribute__((always_inline)) void heads(const attn_args *a, uint32_t t,
                                                        uint32_t h0, uint32_t h1, uint32_t hd,
                                                        int f16, size_t next_row, scratch *sc) {
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t nv = hd / 16;
    const uint32_t *table = a->tables[t];
    const uint32_t n_pos = (uint32_t)a->pos[t] + 1;
    const uint32_t nq = (h1 - h0) * group;
    const float *q = a->q + (size_t)t * a->q_stride + (size_t)h0 * group * hd;
    float *out = a->out + (size_t)t * a->out_stride + (size_t)h0 * group * hd;
    const size_t head_bytes = (size_t)hd * (f16 ? 2 : 4);
    const float scale = a->scale;
    size_t rows[CHUNK], next[CHUNK];

    for (uint32_t g = 0; g < nq; g++) {
        sc->m[g] = -INFINITY;
        sc->l[g] = 0.0f;
    }
    memset(sc->acc, 0, (size_t)nq * hd * sizeof(float));
    uint32_t n = chunk_rows(a, table, 0, n_pos, rows);
    for (uint32_t j0 = 0; j0 < n_pos; j0 += CHUNK) {
        const uint32_t n_next = chunk_rows(a, table, j0 + CHUNK, n_pos, next);
        if (n_next == 0 && next_row != SIZE_MAX) {
            next[0] = next_row;
            prefetch_row(a, next_row, h0, h1, head_bytes);
        }
        /* Scores: per position, the row of every KV head of the call; each
         * query head keeps 16 lanes of partial sums per position. */
        for (uint32_t jj = 0; jj < n; jj++) {
            if (jj < n_next) prefetch_row(a, next[jj], h0, h1, head_bytes);
            for (uint32_t kvh = h0; kvh < h1; kvh++) {
                __m512 kv[ATTN_MAX_HEAD_DIM / 16];
                load_row(a->k, (rows[jj] + kvh) * hd, f16, nv, kv);
                for (uint32_t g = 0; g < group; g++) {
                    const uint32_t qh = (kvh - h0) * group + g;
                    const float *qg = q + (size_t)qh * hd;
                    __m512 sum0 = _mm512_mul_ps(_mm512_loadu_ps(qg), kv[0]);
                    __m512 sum1 = _mm512_setzero_ps();
                    uint32_t i = 1;
                    for (; i + 1 < nv; i += 2) {
                        sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * i), kv[i], sum1);
                        sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * (i + 1)), kv[i + 1], sum0);
                    }
                    if (i < nv) sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(qg + 16 * i), kv[i], sum1);
                    _mm512_store_ps(sc->dots[qh][jj], _mm512_add_ps(sum0, sum1));
                }
            }
        }
        /* Softmax update per query head; the accumulators are rescaled. */
        const __mmask16 live = (__mmask16)((1u << n) - 1u);
        for (uint32_t qh = 0; qh < nq; qh++) {
            __m512 d[CHUNK];
#pragma GCC unroll 16
            for (uint32_t jj = 0; jj < CHUNK; jj++)
                d[jj] = jj < n ? _mm512_load_ps(sc->dots[qh][jj]) : _mm512_setzero_ps();
            const __m512 sv = _mm512_maskz_mul_ps(live, reduce16(d), _mm512_set1_ps(scale));
            const float cmax = _mm512_mask_reduce_max_ps(live, sv);
            const float m = sc->m[qh];
            const float mnew = cmax > m ? cmax : m;
            const __m512 p =
                _mm512_maskz_mov_ps(live, exp_ps(_mm512_sub_ps(sv, _mm512_set1_ps(mnew))));
            _mm512_store_ps(sc->pw[qh], p);
            const float c = mnew > m ? expf(m - mnew) : 1.0f; /* 0 on the first chunk */
            sc->l[qh] = sc->l[qh] * c + _mm512_reduce_add_ps(p);
            sc->m[qh] = mnew;
            if (c != 1.0f) {
                const __m512 cv = _mm512_set1_ps(c);
                float *ag = sc->acc + (size_t)qh * hd;
#pragma GCC unroll 8
                for (uint32_t i = 0; i < nv; i++)
                    _mm512_store_ps(ag + 16 * i, _mm512_mul_ps(_mm512_load_ps(ag + 16 * i), cv));
            }
        }
        /* Weighted V rows into the accumulators, position by position. */
        for (uint32_t jj = 0; jj < n; jj++) {
            for (uint32_t kvh = h0; kvh < h1; kvh++) {
                __m512 vv[ATTN_MAX_HEAD_DIM / 16];
                load_row(a->v, (rows[jj] + kvh) * hd, f16, nv, vv);
                for (uint32_t g = 0; g < group; g++) {
                    const uint32_t qh = (kvh - h0) * group + g;
                    const __m512 pj = _mm512_set1_ps(sc->pw[qh][jj]);
                    float *ag = sc->acc + (size_t)qh * hd;
#pragma GCC unroll 8
                    for (uint32_t i = 0; i < nv; i++)
                        _mm512_store_ps(ag + 16 * i,
                                        _mm512_fmadd_ps(pj, vv[i], _mm512_load_ps(ag + 16 * i)));
                }
            }
        }
        memcpy(rows, next, n_next * sizeof *rows);
        n = n_next;
    }
    for (uint32_t g = 0; g < nq; g++) {
        const __m512 inv = _mm512_set1_ps(1.0f / sc->l[g]);
        for (uint32_t i = 0; i < nv; i++)
            _mm512_storeu_ps(out + (size_t)g * hd + 16 * i,
                             _mm512_mul_ps(_mm512_load_ps(sc->acc + (size_t)g * hd + 16 * i), inv));
    }
}

void attn_item_avx512(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1) {
    scratch sc;
    const uint32_t hd = a->head_dim, group = a->n_head / a->n_head_kv;
    const int f16 = a->kv_type == DTYPE_F16;
    uint32_t per = ATTN_MAX_GROUP_DIM / (group * hd); /* >= 1: checked by the model */
    if (per > PASS_HEADS / group) per = PASS_HEADS / group; /* >= 1: group <= ATTN_MAX_GROUP */
    /* The next token's first position, prefetched during this one's last
     * chunk (the same heads: the next item usually is this thread's too). */
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

void attn_f16_row_avx512(uint16_t *dst, const float *src, uint32_t n) {
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(src + i);
        /* vcvtps2ph rounds to nearest even like f32_to_fp16; only NaNs
         * differ (payload bits), so a vector holding one goes the scalar way. */
        if (_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q)) {
            for (uint32_t j = i; j < i + 16; j++) dst[j] = f32_to_fp16(src[j]);
            continue;
        }
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}
