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
#include "kernels/attention_simd_int.h"
#include "kernels/quant.h"

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
