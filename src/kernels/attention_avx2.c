/*
 * attention_avx2.c - the AVX2/FMA/F16C version of the attention work items
 * (see attention.c for the algorithm), the same loop as attention_avx512.c 8
 * lanes wide: keys 8 positions at a time, for each such chunk every KV head
 * of the call in turn (the pool read in address order); per head the chunk's
 * K and V rows are gathered once (f16 converted with vcvtph2ps, f32 used in
 * place), then each query head of the GQA group scores the 8 rows, updates
 * its running max once per chunk with a vector exp, and adds the weighted V
 * rows to its accumulator. Same online softmax as the reference; the
 * summation order and the exp (degree-6 polynomial, ~2 ulp) differ. Built
 * with -mavx2 -mfma -mf16c; called only when cpu_level() says the CPU has
 * them and head_dim is a multiple of 8.
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
        for (uint32_t d = 0; d < hd; d += 8) {
            _mm256_storeu_ps(kd + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ks + d))));
            _mm256_storeu_ps(vd + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vs + d))));
        }
        kp[jj] = kd;
        vp[jj] = vd;
    }
}

/* One query head against one chunk: scores, softmax update of m / l, and
 * acc (nv vectors of 8) += p . V. nv is a constant in the unrolled copies. */
static inline __attribute__((always_inline)) void head_chunk(
    const float *q, float scale, const float *const *kp, const float *const *vp, uint32_t n,
    uint32_t nv, float *m, float *l, float *acc) {
    __m256 av[ATTN_MAX_HEAD_DIM / 8];
    float s[CHUNK];
    for (uint32_t jj = 0; jj < n; jj++) {
        const float *k = kp[jj];
        __m256 sum0 = _mm256_mul_ps(_mm256_loadu_ps(q), _mm256_loadu_ps(k));
        __m256 sum1 = _mm256_setzero_ps();
        uint32_t i = 1;
        for (; i + 1 < nv; i += 2) {
            sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * i), _mm256_loadu_ps(k + 8 * i), sum1);
            sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * (i + 1)),
                                   _mm256_loadu_ps(k + 8 * (i + 1)), sum0);
        }
        if (i < nv) sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * i), _mm256_loadu_ps(k + 8 * i), sum1);
        s[jj] = hsum(_mm256_add_ps(sum0, sum1));
    }
    for (uint32_t jj = n; jj < CHUNK; jj++) s[jj] = -INFINITY;
    const __m256 live = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    const __m256 sv = _mm256_mul_ps(_mm256_loadu_ps(s), _mm256_set1_ps(scale));
    const float cmax = hmax(sv);
    const float mnew = cmax > *m ? cmax : *m;
    const __m256 p = _mm256_and_ps(live, exp_ps(_mm256_sub_ps(sv, _mm256_set1_ps(mnew))));
    float pw[CHUNK];
    _mm256_storeu_ps(pw, p);
    const float c = mnew > *m ? expf(*m - mnew) : 1.0f; /* 0 on the first chunk */
    *l = *l * c + hsum(p);
    *m = mnew;
    const __m256 cv = _mm256_set1_ps(c);
#pragma GCC unroll 16
    for (uint32_t i = 0; i < nv; i++) av[i] = _mm256_mul_ps(_mm256_loadu_ps(acc + 8 * i), cv);
    for (uint32_t jj = 0; jj < n; jj++) {
        const __m256 pj = _mm256_set1_ps(pw[jj]);
        const float *v = vp[jj];
#pragma GCC unroll 16
        for (uint32_t i = 0; i < nv; i++)
            av[i] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8 * i), av[i]);
    }
#pragma GCC unroll 16
    for (uint32_t i = 0; i < nv; i++) _mm256_storeu_ps(acc + 8 * i, av[i]);
}

/* Scratch of one call, on the caller's stack (about 70 KiB). */
typedef struct scratch {
    float acc[ATTN_MAX_GROUP_DIM] __attribute__((aligned(32)));
    float kbuf[CHUNK * ATTN_MAX_HEAD_DIM] __attribute__((aligned(32)));
    float vbuf[CHUNK * ATTN_MAX_HEAD_DIM] __attribute__((aligned(32)));
    float m[ATTN_MAX_GROUP_DIM / 8], l[ATTN_MAX_GROUP_DIM / 8];
} scratch;

/* KV heads h0..h1-1 of token t, at most ATTN_MAX_GROUP_DIM floats of
 * accumulators, chunk by chunk across the heads. */
static inline __attribute__((always_inline)) void heads(const attn_args *a, uint32_t t,
                                                        uint32_t h0, uint32_t h1, uint32_t hd,
                                                        scratch *sc) {
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t nv = hd / 8;
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
        const __m256 inv = _mm256_set1_ps(1.0f / sc->l[g]);
        for (uint32_t i = 0; i < nv; i++)
            _mm256_storeu_ps(out + (size_t)g * hd + 8 * i,
                             _mm256_mul_ps(_mm256_loadu_ps(sc->acc + (size_t)g * hd + 8 * i), inv));
    }
}

void attn_item_avx2(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1) {
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
