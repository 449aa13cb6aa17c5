/*
 * gemm_f16_avx512.c - AVX-512 gemm kernels for F16 weights (compiled with the
 * AVX-512 flags; only called when cpu_level() is CPU_AVX512): fp16 weights
 * widened with VCVTPH2PS, f32 activations, fp32 FMA.
 *
 * X16 layout (mm_weight_repack): element k of 16 consecutive weight rows is
 * one 32-byte record, so one widened vector holds 16 rows' element k and is
 * multiplied by the broadcast activation element: each lane accumulates one
 * output column, with no horizontal sums. The GEMM microkernel keeps 16
 * columns x up to MR activation rows in registers, each FMA taking its
 * activation as an embedded broadcast, over blocks of KC elements; the GEMV
 * streams each chunk's records in address order (one stream, 4 accumulators).
 * The plain layout (n_out not a multiple of 16) keeps row dot products.
 * docs/performance.md ("F16 kernels") has the measurements behind the shape.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_int.h"

#define MR 12   /* activation rows per microkernel call (12 row pointers fit the GPRs) */
#define KC 2048 /* elements per block of the GEMM (bounds the L2 footprint of long rows) */

/* f32 rows plus one cache line, so that rows of a power-of-two length do
 * not all fall into the same L1 sets (the GEMM reads MR rows side by side). */
static size_t act_bytes_f32(enum dtype t, int64_t n) {
    (void)t;
    return (size_t)n * 4 + 64;
}

static void act_f32(enum dtype t, const float *x, void *dst, int64_t n) {
    (void)t;
    memcpy(dst, x, (size_t)n * 4);
}

/* ---- X16 layout ---- */

/* y[r*ldy + j] (+)= sum over k < kn of W[j][k] * a[r*astride + k] for the
 * 16 weight rows whose records start at wp and r < nr activation rows; each
 * FMA takes its activation as an embedded broadcast (a separate broadcast
 * costs an FP slot on Zen 4). accumulate: add to y instead of overwriting. */
static inline __attribute__((always_inline)) void mk_x16(const int nr, const uint16_t *wp, const float *a,
                                                         size_t astride, int64_t kn, float *y, int64_t ldy,
                                                         int accumulate) {
    __m512 acc[MR];
#pragma GCC unroll 12
    for (int r = 0; r < nr; r++) acc[r] = accumulate ? _mm512_loadu_ps(y + r * ldy) : _mm512_setzero_ps();
    for (int64_t k = 0; k < kn; k++) {
        __m512 wv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wp + 16 * k)));
#pragma GCC unroll 12
        for (int r = 0; r < nr; r++) acc[r] = _mm512_fmadd_ps(wv, _mm512_set1_ps(a[r * astride + k]), acc[r]);
    }
#pragma GCC unroll 12
    for (int r = 0; r < nr; r++) _mm512_storeu_ps(y + r * ldy, acc[r]);
}

#define MK(NR)                                                                                     \
    case NR: mk_x16(NR, wp, a, astride, kn, y, ldy, accumulate); break;

static void mk_x16_any(int nr, const uint16_t *wp, const float *a, size_t astride, int64_t kn, float *y,
                       int64_t ldy, int accumulate) {
    switch (nr) {
        MK(1) MK(2) MK(3) MK(4) MK(5) MK(6) MK(7) MK(8) MK(9) MK(10) MK(11) MK(12)
    default: break;
    }
}

/* One activation row: each 16-row group's records are one contiguous run,
 * and the chunk's groups follow each other, so the loop reads one stream;
 * four accumulators (elements k mod 4) hide the FMA latency. */
static void gemv_x16(const mm_weight *w, const float *a, float *y, int64_t o0, int64_t o1) {
    const int64_t n = w->n_in, n4 = n & ~(int64_t)3;
    for (int64_t o = o0; o < o1; o += 16) {
        const uint16_t *g = (const uint16_t *)w->data + (size_t)o * (size_t)n;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        int64_t k = 0;
        for (; k < n4; k += 4) {
            const uint16_t *p = g + 16 * k;
            s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)), _mm512_set1_ps(a[k]), s0);
            s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 16))),
                                 _mm512_set1_ps(a[k + 1]), s1);
            s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32))),
                                 _mm512_set1_ps(a[k + 2]), s2);
            s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 48))),
                                 _mm512_set1_ps(a[k + 3]), s3);
        }
        for (; k < n; k++)
            s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + 16 * k))),
                                 _mm512_set1_ps(a[k]), s0);
        _mm512_storeu_ps(y + o, _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    }
}

/* Several activation rows: per block of KC elements, per block of at most
 * MR rows, per 16 columns. o0, o1 and n_out are multiples of 16. Row blocks
 * are of equal size (13 rows: 7 + 6, not 12 + 1: a block of one row has one
 * FMA chain and runs at a quarter of the rate). */
static void gemm_x16(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                     int64_t o0, int64_t o1) {
    const size_t astride = stride / sizeof(float);
    const int64_t n = w->n_in;
    const uint16_t *wd = w->data;
    if (n_rows == 1) {
        gemv_x16(w, xq, y, o0, o1);
        return;
    }
    const int64_t n_blk = (n_rows + MR - 1) / MR, base = n_rows / n_blk, extra = n_rows % n_blk;
    for (int64_t k0 = 0; k0 < n; k0 += KC) {
        int64_t kn = n - k0 < KC ? n - k0 : KC;
        int64_t r = 0;
        for (int64_t b = 0; b < n_blk; b++) {
            int nr = (int)(base + (b < extra));
            const float *a = (const float *)xq + (size_t)r * astride + k0;
            for (int64_t o = o0; o < o1; o += 16)
                mk_x16_any(nr, wd + (size_t)o * (size_t)n + 16 * (size_t)k0, a, astride, kn, y + r * ldy + o, ldy,
                           k0 > 0);
            r += nr;
        }
    }
}

/* ---- plain layout ---- */

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
    if (w->layout == MM_LAYOUT_X16) {
        gemm_x16(w, xq, stride, n_rows, y, ldy, o0, o1);
        return;
    }
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
    k->chunk[DTYPE_F16] = 32; /* two X16 panels */
    k->x16[DTYPE_F16] = 1;
}
