/*
 * quant_act_avx2.c - AVX2 activation quantizers (Q8_0, Q8_1 and Q8_K):
 * the same arithmetic as the scalar quantize_row_q8_0_act / _q8_1_act /
 * quantize_row_q8_K_ref (quant_legacy.c, quant_k.c), eight lanes at a time,
 * so the bytes are identical (tests/unit/kernels/test_quant_act.c). Chosen by
 * quantize_row_act when cpu_level() is CPU_AVX2.
 */
#include <immintrin.h>
#include <math.h>

#include "kernels/quant_int.h"

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 rounded int32 lanes (four vectors) -> 32 saturated int8 in order. */
static inline void pack32(__m256i i0, __m256i i1, __m256i i2, __m256i i3, int8_t *out) {
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)out, i0);
}

/* One block of 32: returns d (unrounded) and the sum of the quants. */
static inline float q8_block(const float *x, uint16_t *d_out, int8_t *qs, int *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    __m256 m = _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1));
    m = _mm256_max_ps(m, _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    const float amax = hmax8(m);
    const float d = amax / 127.f;
    *d_out = f32_to_fp16(d);
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.f / amax : 0.0f);
#define Q8_ROUND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) /* clang needs a literal */
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), Q8_ROUND));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), Q8_ROUND));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), Q8_ROUND));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), Q8_ROUND));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *sum = _mm_cvtsi128_si32(s4);
    pack32(i0, i1, i2, i3, qs);
    return d;
}

void quantize_row_q8_0_act_avx2(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sum;
        q8_block(x + i * QK8_0, &y[i].d, y[i].qs, &sum);
    }
}

void quantize_row_q8_1_act_avx2(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sum;
        const float d = q8_block(x + i * QK8_1, &y[i].d, y[i].qs, &sum);
        y[i].s = f32_to_fp16(d * (float)sum);
    }
}

/* Q8_K: the signed extreme of the first largest |x| sets iscale = -127/max;
 * the vector max finds |max|, a scalar scan finds its first occurrence. */
void quantize_row_q8_K_avx2(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8)
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        const float amax = hmax8(m);
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
        /* nearest_int as ggml: bits of (v + 1.5 * 2^23), low 23 bits minus
         * 2^22; then min 127 and truncation to int8 (sign-extend the low byte). */
        const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.f);
        const __m256i mant = _mm256_set1_epi32(0x007fffff), half = _mm256_set1_epi32(0x00400000);
        const __m256i c127 = _mm256_set1_epi32(127);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                const __m256 v =
                    _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vs), magic);
                __m256i l = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), mant), half);
                l = _mm256_min_epi32(l, c127);
                q[k] = _mm256_srai_epi32(_mm256_slli_epi32(l, 24), 24);
            }
            pack32(q[0], q[1], q[2], q[3], y[i].qs + j);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            const __m128i b = _mm_loadu_si128((const __m128i *)(y[i].qs + 16 * j));
            const __m256i s = _mm256_madd_epi16(_mm256_cvtepi8_epi16(b), _mm256_set1_epi16(1));
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
            y[i].bsums[j] = (int16_t)_mm_cvtsi128_si32(s4);
        }
        y[i].d = 1 / iscale;
    }
}
