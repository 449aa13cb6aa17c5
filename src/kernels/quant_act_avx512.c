/*
 * quant_act_avx512.c - AVX-512 activation quantizers (Q8_0, Q8_1 and Q8_K),
 * sixteen lanes at a time with saturating down-conversion; byte-identical to
 * the scalar references (tests/unit/kernels/test_quant_act.c). Chosen by
 * quantize_row_act when cpu_level() is CPU_AVX512.
 */
#include <immintrin.h>
#include <math.h>

#include "kernels/quant_int.h"

#define RND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

static inline float q8_block(const float *x, uint16_t *d_out, int8_t *qs, int *sum) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127.f;
    *d_out = f32_to_fp16(d);
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
    const __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, id), RND);
    const __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, id), RND);
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtsepi32_epi8(i1));
    return d;
}

void quantize_row_q8_0_act_avx512(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sum;
        q8_block(x + i * QK8_0, &y[i].d, y[i].qs, &sum);
    }
}

void quantize_row_q8_1_act_avx512(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sum;
        const float d = q8_block(x + i * QK8_1, &y[i].d, y[i].qs, &sum);
        y[i].s = f32_to_fp16(d * (float)sum);
    }
}

void quantize_row_q8_K_avx512(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16)
            m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        const float amax = _mm512_reduce_max_ps(m);
        if (!amax) {
            y[i].d = 0;
            memset(y[i].qs, 0, QK_K);
            memset(y[i].bsums, 0, sizeof(y[i].bsums));
            continue;
        }
        float max = 0;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        }
        const float iscale = -127.f / max;
        /* nearest_int as ggml (see quant_act_avx2.c), min 127, int8 truncation */
        const __m512 vs = _mm512_set1_ps(iscale), magic = _mm512_set1_ps(12582912.f);
        const __m512i mant = _mm512_set1_epi32(0x007fffff), half = _mm512_set1_epi32(0x00400000);
        for (int j = 0; j < QK_K; j += 16) {
            const __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs), magic);
            __m512i l = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(v), mant), half);
            l = _mm512_min_epi32(l, _mm512_set1_epi32(127));
            l = _mm512_srai_epi32(_mm512_slli_epi32(l, 24), 24);
            _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtepi32_epi8(l));
            y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(l);
        }
        y[i].d = 1 / iscale;
    }
}
