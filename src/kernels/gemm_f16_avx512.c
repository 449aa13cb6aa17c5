/*
 * gemm_f16_avx512.c - AVX-512 gemm kernels for F16 weights (compiled with the
 * AVX-512 flags; only called when cpu_level() is CPU_AVX512): fp16 weights
 * widened with VCVTPH2PS, f32 activations, fp32 FMA.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_int.h"

static size_t act_bytes_f32(enum dtype t, int64_t n) {
    (void)t;
    return (size_t)n * 4;
}

static void act_f32(enum dtype t, const float *x, void *dst, int64_t n) {
    (void)t;
    memcpy(dst, x, (size_t)n * 4);
}

/* F16 tile: y[r][w] for w < nw weight rows, r < nr activation rows (f32),
 * 16 elements per step: nw widened weight vectors and nr activation vectors
 * feed nw*nr FMAs; lane sums at the end. n16 = n_in rounded down to 16. */
static inline __attribute__((always_inline)) void f16_tile(const int nw, const int nr, const uint16_t *const *wr,
                                                           const float *a, size_t astride, int64_t n,
                                                           float *y, int64_t ldy) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int w = 0; w < nw; w++)
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) acc[w][r] = _mm512_setzero_ps();
    const int64_t n16 = n & ~(int64_t)15;
    for (int64_t i = 0; i < n16; i += 16) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int w = 0; w < nw; w++) wv[w] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wr[w] + i)));
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            __m512 av = _mm512_loadu_ps(a + r * astride + i);
#pragma GCC unroll 4
            for (int w = 0; w < nw; w++) acc[w][r] = _mm512_fmadd_ps(wv[w], av, acc[w][r]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < nw; w++)
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            float t = _mm512_reduce_add_ps(acc[w][r]);
            for (int64_t i = n16; i < n; i++) t += _cvtsh_ss(wr[w][i]) * a[r * astride + i];
            y[r * ldy + w] = t;
        }
}

#define F16_NR(NW)                                                                                     \
    switch (nr) {                                                                                      \
    case 1: f16_tile(NW, 1, wr, a, astride, n, y, ldy); break;                                         \
    case 2: f16_tile(NW, 2, wr, a, astride, n, y, ldy); break;                                         \
    case 3: f16_tile(NW, 3, wr, a, astride, n, y, ldy); break;                                         \
    default: f16_tile(NW, 4, wr, a, astride, n, y, ldy); break;                                        \
    }

static void f16_tile_any(int nw, int nr, const uint16_t *const *wr, const float *a, size_t astride, int64_t n,
                         float *y, int64_t ldy) {
    switch (nw) {
    case 1: F16_NR(1) break;
    case 2: F16_NR(2) break;
    case 3: F16_NR(3) break;
    default: F16_NR(4) break;
    }
}

/* Tiles of 4 weight rows x 4 activation rows: each weight vector is widened
 * once per 4 rows and each activation vector loaded once per 4 weight rows. */
static void gemm_f16(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y,
                     int64_t ldy, int64_t o0, int64_t o1) {
    const size_t astride = stride / sizeof(float);
    if (n_rows == 1) {
        /* GEMV: one weight row at a time, a single sequential stream for the
         * prefetchers, four independent accumulators. */
        const float *a = xq;
        const int64_t n = w->n_in, n64 = n & ~(int64_t)63;
        for (int64_t o = o0; o < o1; o++) {
            const uint16_t *wr = (const uint16_t *)((const uint8_t *)w->data + (size_t)o * w->row_bytes);
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            int64_t i = 0;
            for (; i < n64; i += 64) {
                s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wr + i))), _mm512_loadu_ps(a + i), s0);
                s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wr + i + 16))), _mm512_loadu_ps(a + i + 16), s1);
                s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wr + i + 32))), _mm512_loadu_ps(a + i + 32), s2);
                s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wr + i + 48))), _mm512_loadu_ps(a + i + 48), s3);
            }
            float t = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
            for (; i < n; i++) t += _cvtsh_ss(wr[i]) * a[i];
            y[o] = t;
        }
        return;
    }
    for (int64_t o = o0; o < o1; o += 4) {
        int nw = o1 - o < 4 ? (int)(o1 - o) : 4;
        const uint16_t *wr[4];
        for (int k = 0; k < 4; k++)
            wr[k] = (const uint16_t *)((const uint8_t *)w->data + (size_t)(o + (k < nw ? k : 0)) * w->row_bytes);
        for (int64_t r = 0; r < n_rows; r += 4) {
            int nr = n_rows - r < 4 ? (int)(n_rows - r) : 4;
            f16_tile_any(nw, nr, wr, (const float *)((const uint8_t *)xq + (size_t)r * stride), astride, w->n_in,
                         y + r * ldy + o, ldy);
        }
    }
}

void mm_kernels_fill_f16_avx512(mm_kernels *k) {
    k->gemm[DTYPE_F16] = gemm_f16;
    k->act[DTYPE_F16] = act_f32;
    k->act_bytes[DTYPE_F16] = act_bytes_f32;
}
