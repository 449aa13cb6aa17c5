/*
 * gemm_bf16_avx2.c - AVX2 gemm kernel for BF16 weights (compiled with the
 * AVX2 flags; the AVX2 level, and the AVX-512 level on CPUs without
 * AVX512_BF16). Activations stay in the reference format (bf16, rounded as
 * f32_to_bf16 does); bf16 widens to f32 exactly (a 16-bit shift), so the
 * products are the reference's and only the summation order differs (f32
 * FMA chains, 8 lanes, instead of one double sum). One activation row
 * against 4 weight rows per pass: each activation vector is widened once for
 * 4 FMAs. The row tail of fewer than 8 elements is summed in plain C.
 */
#include <immintrin.h>

#include "kernels/matmul_int.h"
#include "kernels/quant.h"

/* 8 bf16 at p as 8 f32. */
static inline __m256 widen8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static void gemm_bf16(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                      int64_t o0, int64_t o1) {
    if (w->layout != MM_LAYOUT_PLAIN) { /* no repacked BF16 layout exists */
        mm_gemm_ref(w, xq, stride, n_rows, y, ldy, o0, o1);
        return;
    }
    const int64_t n = w->n_in, n8 = n & ~(int64_t)7;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint16_t *a = (const uint16_t *)((const uint8_t *)xq + (size_t)r * stride);
        for (int64_t o = o0; o < o1; o += 4) {
            const int nw = o1 - o < 4 ? (int)(o1 - o) : 4;
            const uint16_t *wr[4];
            for (int k = 0; k < 4; k++)
                wr[k] = (const uint16_t *)((const uint8_t *)w->data + (size_t)(o + (k < nw ? k : 0)) * w->row_bytes);
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int64_t i = 0; i < n8; i += 8) {
                const __m256 av = widen8(a + i);
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) acc[k] = _mm256_fmadd_ps(widen8(wr[k] + i), av, acc[k]);
            }
            for (int k = 0; k < nw; k++) {
                float s = hsum8(acc[k]);
                for (int64_t i = n8; i < n; i++) s += bf16_to_f32(wr[k][i]) * bf16_to_f32(a[i]);
                y[r * ldy + o + k] = s;
            }
        }
    }
}

void mm_kernels_fill_bf16_avx2(mm_kernels *k) {
    k->gemm[DTYPE_BF16] = gemm_bf16;
}
