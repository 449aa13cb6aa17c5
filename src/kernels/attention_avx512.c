/*
 * attention_avx512.c - the AVX-512 version of one attention work item (see
 * attention.c for the algorithm). Keys are taken 16 positions at a time: the
 * chunk's K and V rows are gathered through the block table once (f16 rows
 * converted with vcvtph2ps into a small f32 buffer, f32 rows used in place),
 * then each query head of the GQA group scores the 16 rows, updates its
 * running max once per chunk with a vector exp, and adds the 16 weighted V
 * rows to its accumulator held in registers. head_dim 64 and 128 get
 * unrolled copies. Same online softmax as the reference; the summation
 * order and exp (a degree-6 polynomial, ~2 ulp) differ. Called only when
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

/* Pointers to the K and V rows of positions j0..j0+n-1 as f32: in place for
 * an f32 pool, else converted into kbuf / vbuf (CHUNK * head_dim floats). */
static inline void gather(const attn_args *a, const uint32_t *table, uint32_t j0, uint32_t n,
                          uint32_t kvh, float *kbuf, float *vbuf, const float **kp,
                          const float **vp) {
    const uint32_t hd = a->head_dim;
    for (uint32_t jj = 0; jj < n; jj++) {
        const uint32_t j = j0 + jj;
        const size_t row = ((size_t)table[j / a->block_size] * a->block_size + j % a->block_size) *
                               a->n_head_kv + kvh;
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

/* One query head against one chunk: scores, softmax update of m / l, and
 * acc (nv vectors of 16) += p . V. nv is a constant in the unrolled copies. */
static inline __attribute__((always_inline)) void head_chunk(
    const float *q, float scale, const float *const *kp, const float *const *vp, uint32_t n,
    uint32_t nv, float *m, float *l, float *acc) {
    __m512 qv[ATTN_MAX_HEAD_DIM / 16], av[ATTN_MAX_HEAD_DIM / 16];
    float s[CHUNK];
    for (uint32_t i = 0; i < nv; i++) qv[i] = _mm512_loadu_ps(q + 16 * i);
    for (uint32_t jj = 0; jj < n; jj++) {
        const float *k = kp[jj];
        __m512 sum0 = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
        __m512 sum1 = _mm512_setzero_ps();
        uint32_t i = 1;
        for (; i + 1 < nv; i += 2) {
            sum1 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), sum1);
            sum0 = _mm512_fmadd_ps(qv[i + 1], _mm512_loadu_ps(k + 16 * (i + 1)), sum0);
        }
        if (i < nv) sum1 = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), sum1);
        s[jj] = _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
    }
    const __mmask16 live = (__mmask16)((1u << n) - 1u);
    const __m512 sv = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, s), _mm512_set1_ps(scale));
    const float cmax = _mm512_mask_reduce_max_ps(live, sv);
    const float mnew = cmax > *m ? cmax : *m;
    const __m512 p = _mm512_maskz_mov_ps(live, exp_ps(_mm512_sub_ps(sv, _mm512_set1_ps(mnew))));
    float pw[CHUNK];
    _mm512_storeu_ps(pw, p);
    const float c = mnew > *m ? expf(*m - mnew) : 1.0f; /* 0 on the first chunk */
    *l = *l * c + _mm512_reduce_add_ps(p);
    *m = mnew;
    const __m512 cv = _mm512_set1_ps(c);
    for (uint32_t i = 0; i < nv; i++) av[i] = _mm512_mul_ps(_mm512_loadu_ps(acc + 16 * i), cv);
    for (uint32_t jj = 0; jj < n; jj++) {
        const __m512 pj = _mm512_set1_ps(pw[jj]);
        const float *v = vp[jj];
        for (uint32_t i = 0; i < nv; i++)
            av[i] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(v + 16 * i), av[i]);
    }
    for (uint32_t i = 0; i < nv; i++) _mm512_storeu_ps(acc + 16 * i, av[i]);
}

/* Scratch of one work item, on the caller's stack (about 100 KiB). */
typedef struct scratch {
    float acc[ATTN_MAX_GROUP_DIM] __attribute__((aligned(64)));
    float kbuf[CHUNK * ATTN_MAX_HEAD_DIM] __attribute__((aligned(64)));
    float vbuf[CHUNK * ATTN_MAX_HEAD_DIM] __attribute__((aligned(64)));
} scratch;

static inline __attribute__((always_inline)) void item(const attn_args *a, uint32_t t,
                                                       uint32_t kvh, uint32_t hd, scratch *sc) {
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t nv = hd / 16;
    const uint32_t *table = a->tables[t];
    const uint32_t n_pos = (uint32_t)a->pos[t] + 1;
    const float *q = a->q + (size_t)t * a->q_stride + (size_t)kvh * group * hd;
    float *out = a->out + (size_t)t * a->out_stride + (size_t)kvh * group * hd;
    float *acc = sc->acc;
    const float *kp[CHUNK], *vp[CHUNK];
    float m[ATTN_MAX_GROUP], l[ATTN_MAX_GROUP];

    for (uint32_t g = 0; g < group; g++) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
    }
    memset(acc, 0, (size_t)group * hd * sizeof(float));
    for (uint32_t j0 = 0; j0 < n_pos; j0 += CHUNK) {
        const uint32_t n = n_pos - j0 < CHUNK ? n_pos - j0 : CHUNK;
        gather(a, table, j0, n, kvh, sc->kbuf, sc->vbuf, kp, vp);
        for (uint32_t g = 0; g < group; g++)
            head_chunk(q + (size_t)g * hd, a->scale, kp, vp, n, nv, &m[g], &l[g],
                       acc + (size_t)g * hd);
    }
    for (uint32_t g = 0; g < group; g++) {
        const __m512 inv = _mm512_set1_ps(1.0f / l[g]);
        for (uint32_t i = 0; i < nv; i++)
            _mm512_storeu_ps(out + (size_t)g * hd + 16 * i,
                             _mm512_mul_ps(_mm512_loadu_ps(acc + (size_t)g * hd + 16 * i), inv));
    }
}

void attn_item_avx512(const attn_args *a, uint32_t t, uint32_t kvh) {
    scratch sc;
    switch (a->head_dim) {
    case 64: item(a, t, kvh, 64, &sc); break;
    case 128: item(a, t, kvh, 128, &sc); break;
    default: item(a, t, kvh, a->head_dim, &sc); break;
    }
}
