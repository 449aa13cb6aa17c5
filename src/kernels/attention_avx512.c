/*
 * attention_avx512.c - the AVX-512 version of the attention work items (see
 * attention.c for the algorithm). Keys are taken 16 positions at a time, and
 * for each such chunk every KV head of the call in turn, so the pool is read
 * in address order: per head, the chunk's K and V rows are gathered once
 * (f16 rows converted with vcvtph2ps into a small f32 buffer, f32 rows used
 * in place), then each query head of the GQA group scores the 16 rows,
 * updates its running max once per chunk with a vector exp, and adds the 16
 * weighted V rows to its accumulator, held in registers. head_dim 64 and 128
 * get unrolled copies. Same online softmax as the reference; the summation
 * order and the exp (a degree-6 polynomial, ~2 ulp) differ. Called only when
 * cpu_level() is CPU_AVX512 and head_dim is a multiple of 16.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attention_int.h"

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

/* Pointers to the K and V rows of KV head kvh at the chunk's n positions
 * (rows[jj] is the pool row of position j0 + jj, head 0) as f32: in place
 * for an f32 pool, else converted into kbuf / vbuf (CHUNK * head_dim). */
static inline void gather(const attn_args *a, const size_t *rows, uint32_t n, uint32_t kvh,
                          float *kbuf, float *vbuf, const float **kp, const float **vp) {
    const uint32_t hd = a->head_dim;
    for (uint32_t jj = 0; jj < n; jj++) {
        const size_t row = rows[jj] + kvh;
        if (a->kv_type != DTYPE_F16) {
            kp[jj] = (const float *)a->k + row * hd;
            vp[jj] = (const float *)a->v + row * hd;
            continue;
        }
        const uint16_t *ks = (const uint16_t *)a->k + row * hd;
        const uint16_t *vs = (const uint16_t *)a->v + row * hd;
        float *kd = kbuf + (size_t)jj * hd, *vd = vbuf + (size_t)jj * hd;
        for (uint32_t d = 0; d < hd; d += 16) {
            _mm512_storeu_ps(kd + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ks + d))));
            _mm512_storeu_ps(vd + d, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vs + d))));
        }
        kp[jj] = kd;
        vp[jj] = vd;
    }
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

/* One query head against one chunk: scores, softmax update of m / l, and
 * acc (nv vectors of 16) += p . V. nv is a constant in the unrolled copies. */
static inline __attribute__((always_inline)) void head_chunk(
    const float *q, float scale, const float *const *kp, const float *const *vp, uint32_t n,
    uint32_t nv, float *m, float *l, float *acc) {
    __m512 qv[ATTN_MAX_HEAD_DIM / 16], av[ATTN_MAX_HEAD_DIM / 16];
#pragma GCC unroll 8
    for (uint32_t i = 0; i < nv; i++) qv[i] = _mm512_loadu_ps(q + 16 * i);
    __m512 d[CHUNK];
#pragma GCC unroll 16
    for (uint32_t jj = 0; jj < CHUNK; jj++) {
        if (jj >= n) {
            d[jj] = _mm512_setzero_ps();
            continue;
        }
        const float *k = kp[jj];
        __m512 sum0 = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
        __m512 sum1 = _mm512_setzero_ps();
        uint32_t i = 1;
        for (; i + 1 < nv; i += 2) {
            sum1 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), sum1);
            sum0 = _mm512_fmadd_ps(qv[i + 1], _mm512_loadu_ps(k + 16 * (i + 1)), sum0);
        }
        if (i < nv) sum1 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), sum1);
        d[jj] = _mm512_add_ps(sum0, sum1);
    }
    const __m512 raw = reduce16(d);
    const __mmask16 live = (__mmask16)((1u << n) - 1u);
    const __m512 sv = _mm512_maskz_mul_ps(live, raw, _mm512_set1_ps(scale));
    const float cmax = _mm512_mask_reduce_max_ps(live, sv);
    const float mnew = cmax > *m ? cmax : *m;
    const __m512 p = _mm512_maskz_mov_ps(live, exp_ps(_mm512_sub_ps(sv, _mm512_set1_ps(mnew))));
    float pw[CHUNK];
    _mm512_storeu_ps(pw, p);
    const float c = mnew > *m ? expf(*m - mnew) : 1.0f; /* 0 on the first chunk */
    *l = *l * c + _mm512_reduce_add_ps(p);
    *m = mnew;
    const __m512 cv = _mm512_set1_ps(c);
#pragma GCC unroll 8
    for (uint32_t i = 0; i < nv; i++) av[i] = _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * i), cv);
    for (uint32_t jj = 0; jj < n; jj++) {
        const __m512 pj = _mm512_set1_ps(pw[jj]);
        const float *v = vp[jj];
#pragma GCC unroll 8
        for (uint32_t i = 0; i < nv; i++)
            av[i] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(v + 16 * i), av[i]);
    }
#pragma GCC unroll 8
    for (uint32_t i = 0; i < nv; i++) _mm512_storeu_ps(acc + 16 * i, av[i]);
}

/* Scratch of one call, on the caller's stack (about 100 KiB). */
typedef struct scratch {
    float acc[ATTN_MAX_GROUP_DIM] __attribute__((aligned(64)));
    float kbuf[CHUNK * ATTN_MAX_HEAD_DIM] __attribute__((aligned(64)));
    float vbuf[CHUNK * ATTN_MAX_HEAD_DIM] __attribute__((aligned(64)));
    float m[ATTN_MAX_GROUP_DIM / 16], l[ATTN_MAX_GROUP_DIM / 16];
} scratch;

/* KV heads h0..h1-1 of token t, at most ATTN_MAX_GROUP_DIM floats of
 * accumulators: chunk by chunk, every head of the range, so the pool is
 * read in address order (a chunk's rows of all heads lie together). */
static inline __attribute__((always_inline)) void heads(const attn_args *a, uint32_t t,
                                                        uint32_t h0, uint32_t h1, uint32_t hd,
                                                        scratch *sc) {
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t nv = hd / 16;
    const uint32_t *table = a->tables[t];
    const uint32_t n_pos = (uint32_t)a->pos[t] + 1;
    const uint32_t nq = (h1 - h0) * group;
    const float *q = a->q + (size_t)t * a->q_stride + (size_t)h0 * group * hd;
    float *out = a->out + (size_t)t * a->out_stride + (size_t)h0 * group * hd;
    const float *kp[CHUNK], *vp[CHUNK];
    size_t rows[CHUNK];

    for (uint32_t g = 0; g < nq; g++) {
        sc->m[g] = -INFINITY;
        sc->l[g] = 0.0f;
    }
    memset(sc->acc, 0, (size_t)nq * hd * sizeof(float));
    for (uint32_t j0 = 0; j0 < n_pos; j0 += CHUNK) {
        const uint32_t n = n_pos - j0 < CHUNK ? n_pos - j0 : CHUNK;
        for (uint32_t jj = 0; jj < n; jj++) {
            const uint32_t j = j0 + jj;
            rows[jj] = ((size_t)table[j / a->block_size] * a->block_size + j % a->block_size) *
                       a->n_head_kv;
        }
        for (uint32_t kvh = h0; kvh < h1; kvh++) {
            gather(a, rows, n, kvh, sc->kbuf, sc->vbuf, kp, vp);
            for (uint32_t g = 0; g < group; g++) {
                const size_t qh = (size_t)(kvh - h0) * group + g;
                head_chunk(q + qh * hd, a->scale, kp, vp, n, nv, &sc->m[qh], &sc->l[qh],
                           sc->acc + qh * hd);
            }
        }
    }
    for (uint32_t g = 0; g < nq; g++) {
        const __m512 inv = _mm512_set1_ps(1.0f / sc->l[g]);
        for (uint32_t i = 0; i < nv; i++)
            _mm512_storeu_ps(out + (size_t)g * hd + 16 * i,
                             _mm512_mul_ps(_mm512_loadu_ps(sc->acc + (size_t)g * hd + 16 * i), inv));
    }
}

void attn_item_avx512(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1) {
    scratch sc;
    const uint32_t hd = a->head_dim, group = a->n_head / a->n_head_kv;
    const uint32_t per = ATTN_MAX_GROUP_DIM / (group * hd); /* >= 1: checked by the model */
    for (uint32_t s0 = h0; s0 < h1; s0 += per) {
        const uint32_t s1 = h1 - s0 < per ? h1 : s0 + per;
        switch (hd) {
        case 64: heads(a, t, s0, s1, 64, &sc); break;
        case 128: heads(a, t, s0, s1, 128, &sc); break;
        default: heads(a, t, s0, s1, hd, &sc); break;
        }
    }
}
