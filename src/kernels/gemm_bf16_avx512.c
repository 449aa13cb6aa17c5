/*
 * gemm_bf16_avx512.c - AVX-512 gemm kernel for BF16 weights (compiled with
 * the AVX-512 flags; registered for the AVX-512 level only on CPUs that also
 * have AVX512_BF16, else that level keeps the AVX2 kernel). Activations stay
 * in the reference format (bf16, rounded as f32_to_bf16 does), so the
 * products are the reference's and only the summation order differs:
 * VDPBF16PS multiplies 32 bf16 pairs exactly and adds them into 16 f32
 * lanes, two products per lane. A tile of up to 4 activation rows x 4 weight
 * rows keeps 16 accumulators in registers, each weight and activation vector
 * loaded once per 32 elements; a row tail of fewer than 32 elements is read
 * with a masked load (the zeros add nothing). The 4 accumulators of one
 * activation row are reduced together (one vector of 4 sums). One
 * activation row (decode) reads the weight rows one after the other.
 */
#include <immintrin.h>

#include "kernels/cpu.h"
#include "kernels/matmul_int.h"

#define TA 4 /* activation rows per tile */
#define TW 4 /* weight rows per tile */

/* The 16 lanes of each of a, b, c, d summed: {sum a, sum b, sum c, sum d}. */
static inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    /* Quarters (128 bits) q of x written xq: t0 = {a0+a2, a1+a3, b0+b2, b1+b3}. */
    const __m512 t0 = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
    const __m512 t1 = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x88), _mm512_shuffle_f32x4(c, d, 0xDD));
    /* u = {a0+a2+a1+a3, b.., c.., d..}: quarter q holds 4 partial sums of one vector. */
    const __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(t0, t1, 0x88), _mm512_shuffle_f32x4(t0, t1, 0xDD));
    const __m512 x = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4E));
    const __m512 s = _mm512_add_ps(x, _mm512_permute_ps(x, 0xB1)); /* each lane: its quarter's total */
    return _mm512_castps512_ps128(_mm512_maskz_compress_ps(0x1111, s));
}

/* y[i*ldy + j] = dot(weight row wr[j], activation row ar[i]) over n
 * elements, for i < na, j < nw (rows past nw/na repeat the last valid
 * pointer; their sums are not stored). */
static inline __attribute__((always_inline)) void tile(const int na, const int nw, const uint16_t *const *ar,
                                                       const uint16_t *const *wr, int64_t n, float *y,
                                                       int64_t ldy) {
    __m512 acc[TA][TW];
#pragma GCC unroll 4
    for (int i = 0; i < na; i++)
#pragma GCC unroll 4
        for (int j = 0; j < TW; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        __m512i wv[TW];
#pragma GCC unroll 4
        for (int j = 0; j < TW; j++) wv[j] = _mm512_loadu_si512(wr[j] + k);
#pragma GCC unroll 4
        for (int i = 0; i < na; i++) {
            const __m512i av = _mm512_loadu_si512(ar[i] + k);
#pragma GCC unroll 4
            for (int j = 0; j < TW; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)av, (__m512bh)wv[j]);
        }
    }
    if (k < n) {
        const __mmask32 m = (__mmask32)((1ull << (n - k)) - 1);
        __m512i wv[TW];
#pragma GCC unroll 4
        for (int j = 0; j < TW; j++) wv[j] = _mm512_maskz_loadu_epi16(m, wr[j] + k);
#pragma GCC unroll 4
        for (int i = 0; i < na; i++) {
            const __m512i av = _mm512_maskz_loadu_epi16(m, ar[i] + k);
#pragma GCC unroll 4
            for (int j = 0; j < TW; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)av, (__m512bh)wv[j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < na; i++) {
        const __m128 s = reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        _mm_mask_storeu_ps(y + i * ldy, (__mmask8)((1u << nw) - 1), s);
    }
}

/* One activation row (decode): the weight rows are read one after the
 * other, so the loads form a single forward stream (4 rows side by side
 * halve the bandwidth the prefetchers reach); two accumulators per row. */
static void gemv(const mm_weight *w, const uint16_t *a, float *y, int64_t o0, int64_t o1) {
    const int64_t n = w->n_in, n64 = n & ~(int64_t)63;
    const __mmask32 m_lo = (__mmask32)((n - n64) >= 32 ? 0xffffffffu : (1ull << (n - n64)) - 1);
    const __mmask32 m_hi = (__mmask32)((n - n64) > 32 ? (1ull << (n - n64 - 32)) - 1 : 0);
    for (int64_t o = o0; o < o1; o += 4) {
        const int nw = o1 - o < 4 ? (int)(o1 - o) : 4;
        __m512 acc[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            acc[j] = _mm512_setzero_ps();
            if (j >= nw) continue;
            const uint16_t *wr = (const uint16_t *)((const uint8_t *)w->data + (size_t)(o + j) * w->row_bytes);
            __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
            int64_t k = 0;
            for (; k < n64; k += 64) {
                s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + k), (__m512bh)_mm512_loadu_si512(wr + k));
                s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_loadu_si512(a + k + 32),
                                      (__m512bh)_mm512_loadu_si512(wr + k + 32));
            }
            if (k < n) {
                s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_maskz_loadu_epi16(m_lo, a + k),
                                      (__m512bh)_mm512_maskz_loadu_epi16(m_lo, wr + k));
                s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_maskz_loadu_epi16(m_hi, a + k + 32),
                                      (__m512bh)_mm512_maskz_loadu_epi16(m_hi, wr + k + 32));
            }
            acc[j] = _mm512_add_ps(s0, s1);
        }
        _mm_mask_storeu_ps(y + o, (__mmask8)((1u << nw) - 1), reduce4(acc[0], acc[1], acc[2], acc[3]));
    }
}

#define TILE(NA)                                                                                   \
    case NA: tile(NA, nw, ar, wr, n, y, ldy); break;

static void tile_any(int na, int nw, const uint16_t *const *ar, const uint16_t *const *wr, int64_t n, float *y,
                     int64_t ldy) {
    switch (na) {
        TILE(1) TILE(2) TILE(3) TILE(4)
    default: break;
    }
}

static void gemm_bf16(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                      int64_t o0, int64_t o1) {
    if (w->layout != MM_LAYOUT_PLAIN) { /* no repacked BF16 layout exists */
        mm_gemm_ref(w, xq, stride, n_rows, y, ldy, o0, o1);
        return;
    }
    const int64_t n = w->n_in;
    if (n_rows == 1) {
        gemv(w, xq, y, o0, o1);
        return;
    }
    for (int64_t r = 0; r < n_rows; r += TA) {
        const int na = n_rows - r < TA ? (int)(n_rows - r) : TA;
        const uint16_t *ar[TA];
        for (int i = 0; i < TA; i++)
            ar[i] = (const uint16_t *)((const uint8_t *)xq + (size_t)(r + (i < na ? i : 0)) * stride);
        for (int64_t o = o0; o < o1; o += TW) {
            const int nw = o1 - o < TW ? (int)(o1 - o) : TW;
            const uint16_t *wr[TW];
            for (int j = 0; j < TW; j++)
                wr[j] = (const uint16_t *)((const uint8_t *)w->data + (size_t)(o + (j < nw ? j : 0)) * w->row_bytes);
            tile_any(na, nw, ar, wr, n, y + r * ldy + o, ldy);
        }
    }
}

void mm_kernels_fill_bf16_avx512(mm_kernels *k) {
    if (!cpu_get_features()->avx512bf16) return;
    k->gemm[DTYPE_BF16] = gemm_bf16;
    k->chunk[DTYPE_BF16] = 32; /* 8 tiles of weight rows per claim; decode doubles it */
}
