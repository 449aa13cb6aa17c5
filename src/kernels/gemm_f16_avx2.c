/*
 * gemm_f16_avx2.c - AVX2 (+FMA, F16C) kernel for F16 weights in the X16
 * layout (mm_weight_repack), so that a repacked model keeps a SIMD path on
 * CPUs without AVX-512 (compiled with the AVX2 flags; called by the AVX2
 * table's F16 gemm in gemm_avx2.c). Activations come in the AVX2 level's
 * format, fp16 rows as the reference takes them; a block of MR rows x KC
 * elements is widened to f32 once and reused across the chunk's columns.
 * Per element, two widened 8-lane halves of a 16-row record times each row's
 * broadcast activation: no horizontal sums.
 */
#include <immintrin.h>

#include "kernels/matmul_int.h"

#define MR 6   /* activation rows per block: 12 accumulators + 3 of the 16 ymm registers */
#define KC 256 /* elements per block (MR x KC floats on the stack) */

/* y[r*ldy + 0..15] (+)= sum over k < kn of records wp[16k ..] . a[r][k]. */
static inline __attribute__((always_inline)) void mk_avx2(const int nr, const uint16_t *wp, const float (*a)[KC],
                                                          int64_t kn, float *y, int64_t ldy, int accumulate) {
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
            acc[r][h] = accumulate ? _mm256_loadu_ps(y + r * ldy + 8 * h) : _mm256_setzero_ps();
    for (int64_t k = 0; k < kn; k++) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wp + 16 * k)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wp + 16 * k + 8)));
#pragma GCC unroll 6
        for (int r = 0; r < nr; r++) {
            __m256 b = _mm256_broadcast_ss(&a[r][k]);
            acc[r][0] = _mm256_fmadd_ps(w0, b, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w1, b, acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) _mm256_storeu_ps(y + r * ldy + 8 * h, acc[r][h]);
}

/* One activation row: the chunk's records in address order, elements k and
 * k+1 into separate accumulators (4 FMA chains). */
static void gemv_avx2(const mm_weight *w, const uint16_t *x, float *y, int64_t o0, int64_t o1) {
    const int64_t n = w->n_in;
    for (int64_t o = o0; o < o1; o += 16) {
        const uint16_t *g = (const uint16_t *)w->data + (size_t)o * (size_t)n;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        int64_t k = 0;
        for (; k + 2 <= n; k += 2) {
            __m256 b0 = _mm256_set1_ps(_cvtsh_ss(x[k])), b1 = _mm256_set1_ps(_cvtsh_ss(x[k + 1]));
            const uint16_t *p = g + 16 * k;
            s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)), b0, s0);
            s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8))), b0, s1);
            s2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16))), b1, s2);
            s3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 24))), b1, s3);
        }
        if (k < n) {
            __m256 b0 = _mm256_set1_ps(_cvtsh_ss(x[k]));
            s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16 * k))), b0, s0);
            s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + 16 * k + 8))), b0, s1);
        }
        _mm256_storeu_ps(y + o, _mm256_add_ps(s0, s2));
        _mm256_storeu_ps(y + o + 8, _mm256_add_ps(s1, s3));
    }
}

void mm_gemm_f16_x16_avx2(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y,
                          int64_t ldy, int64_t o0, int64_t o1) {
    const int64_t n = w->n_in;
    const uint16_t *wd = w->data;
    if (n_rows == 1) {
        gemv_avx2(w, xq, y, o0, o1);
        return;
    }
    _Alignas(32) float a[MR][KC];
    for (int64_t r0 = 0; r0 < n_rows; r0 += MR) {
        int nr = n_rows - r0 < MR ? (int)(n_rows - r0) : MR;
        for (int64_t k0 = 0; k0 < n; k0 += KC) {
            int64_t kn = n - k0 < KC ? n - k0 : KC, k8 = kn & ~(int64_t)7;
            for (int r = 0; r < nr; r++) {
                const uint16_t *src = (const uint16_t *)((const uint8_t *)xq + (size_t)(r0 + r) * stride) + k0;
                for (int64_t k = 0; k < k8; k += 8)
                    _mm256_store_ps(&a[r][k], _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + k))));
                for (int64_t k = k8; k < kn; k++) a[r][k] = _cvtsh_ss(src[k]);
            }
            for (int64_t o = o0; o < o1; o += 16) {
                const uint16_t *wp = wd + (size_t)o * (size_t)n + 16 * (size_t)k0;
                float *yo = y + r0 * ldy + o;
                switch (nr) {
                case 1: mk_avx2(1, wp, a, kn, yo, ldy, k0 > 0); break;
                case 2: mk_avx2(2, wp, a, kn, yo, ldy, k0 > 0); break;
                case 3: mk_avx2(3, wp, a, kn, yo, ldy, k0 > 0); break;
                case 4: mk_avx2(4, wp, a, kn, yo, ldy, k0 > 0); break;
                case 5: mk_avx2(5, wp, a, kn, yo, ldy, k0 > 0); break;
                default: mk_avx2(6, wp, a, kn, yo, ldy, k0 > 0); break;
                }
            }
        }
    }
}
