/*
 * attention_avx2.c - the AVX2/FMA/F16C version of one attention work item
 * (see attention.c for the algorithm): each K and V row is converted to f32
 * once (F16C for an f16 pool), q.k and the weighted V sums run 8 lanes wide.
 * Same online softmax as the reference; only the float summation order of
 * q.k differs. Built with -mavx2 -mfma -mf16c; called only when cpu_level()
 * says the CPU has them and head_dim is a multiple of 8.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attention_int.h"

static inline float hsum(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* Row j of the pool (through the token's table) as f32 in dst, or a direct
 * pointer when the pool is f32. */
static inline const float *load_row(const attn_args *a, const void *base, const uint32_t *table,
                                    uint32_t j, uint32_t kvh, float *dst) {
    const size_t row = ((size_t)table[j / a->block_size] * a->block_size + j % a->block_size) *
                           a->n_head_kv + kvh;
    if (a->kv_type != DTYPE_F16) return (const float *)base + row * a->head_dim;
    const uint16_t *src = (const uint16_t *)base + row * a->head_dim;
    for (uint32_t d = 0; d < a->head_dim; d += 8)
        _mm256_storeu_ps(dst + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + d))));
    return dst;
}

static void item_avx2(const attn_args *a, uint32_t t, uint32_t kvh) {
    const uint32_t hd = a->head_dim;
    const uint32_t group = a->n_head / a->n_head_kv;
    const uint32_t *table = a->tables[t];
    const uint32_t n_pos = (uint32_t)a->pos[t] + 1;
    const float *q = a->q + (size_t)t * a->q_stride + (size_t)kvh * group * hd;
    float *out = a->out + (size_t)t * a->out_stride + (size_t)kvh * group * hd;
    float acc[ATTN_MAX_GROUP_DIM];
    float m[ATTN_MAX_GROUP], l[ATTN_MAX_GROUP], p[ATTN_MAX_GROUP];
    float kbuf[ATTN_MAX_HEAD_DIM], vbuf[ATTN_MAX_HEAD_DIM];

    for (uint32_t g = 0; g < group; g++) {
        m[g] = -INFINITY;
        l[g] = 0.0f;
    }
    memset(acc, 0, (size_t)group * hd * sizeof(float));
    for (uint32_t j = 0; j < n_pos; j++) {
        const float *k = load_row(a, a->k, table, j, kvh, kbuf);
        for (uint32_t g = 0; g < group; g++) {
            const float *qg = q + (size_t)g * hd;
            __m256 sum = _mm256_setzero_ps();
            for (uint32_t d = 0; d < hd; d += 8)
                sum = _mm256_fmadd_ps(_mm256_loadu_ps(qg + d), _mm256_loadu_ps(k + d), sum);
            const float s = hsum(sum) * a->scale;
            if (s > m[g]) {
                const float c = expf(m[g] - s);
                l[g] *= c;
                const __m256 cv = _mm256_set1_ps(c);
                float *ag = acc + (size_t)g * hd;
                for (uint32_t d = 0; d < hd; d += 8)
                    _mm256_storeu_ps(ag + d, _mm256_mul_ps(_mm256_loadu_ps(ag + d), cv));
                m[g] = s;
            }
            p[g] = expf(s - m[g]);
            l[g] += p[g];
        }
        const float *v = load_row(a, a->v, table, j, kvh, vbuf);
        for (uint32_t g = 0; g < group; g++) {
            float *ag = acc + (size_t)g * hd;
            const __m256 pv = _mm256_set1_ps(p[g]);
            for (uint32_t d = 0; d < hd; d += 8)
                _mm256_storeu_ps(ag + d, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + d),
                                                         _mm256_loadu_ps(ag + d)));
        }
    }
    for (uint32_t g = 0; g < group; g++) {
        const __m256 inv = _mm256_set1_ps(1.0f / l[g]);
        for (uint32_t d = 0; d < hd; d += 8)
            _mm256_storeu_ps(out + (size_t)g * hd + d,
                             _mm256_mul_ps(_mm256_loadu_ps(acc + (size_t)g * hd + d), inv));
    }
}

void attn_item_avx2(const attn_args *a, uint32_t t, uint32_t h0, uint32_t h1) {
    for (uint32_t kvh = h0; kvh < h1; kvh++) item_avx2(a, t, kvh);
}
