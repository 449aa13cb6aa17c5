/*
 * gemm_avx2.c - AVX2 (+FMA, F16C) gemm kernels, for CPUs without AVX-512
 * (compiled with the AVX2 flags; only called when cpu_level() is CPU_AVX2 or
 * above and the AVX-512 table has no entry). Row by row dot products against
 * ggml's activation formats (the reference's quantize_row_act output):
 *   Q8_0 . Q8_0 and Q4_0 . Q8_0: |w| * sign(a, w) with VPMADDUBSW, pairs to
 *     int32 with VPMADDWD, one float FMA per block;
 *   F16: F16C widening and FMA against F16 activations;
 *   BF16: widening by a shift (exact) and FMA against BF16 activations.
 * Four weight rows share each activation load. The K-quants are in
 * gemm_k_avx2.c.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_int.h"
#include "kernels/quant.h"

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static inline float half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Sum over the 32 int8 pairs of w (signed) and a (signed), as 8 int32. */
static inline __m256i dot_i8(__m256i w, __m256i a) {
    __m256i aw = _mm256_sign_epi8(w, w), sa = _mm256_sign_epi8(a, w);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), _mm256_set1_epi16(1));
}

/* The 32 quants of a Q4_0 block as int8 (-8..7): low nibbles then high. */
static inline __m256i q4_0_quants(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m256i b = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_sub_epi8(_mm256_and_si256(b, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
}

static void gemm_q_0(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                     int64_t o0, int64_t o1) {
    if (w->layout != MM_LAYOUT_PLAIN) { /* repacked for AVX-512: rare here */
        mm_gemm_ref(w, xq, stride, n_rows, y, ldy, o0, o1);
        return;
    }
    const int is_q4 = w->type == DTYPE_Q4_0;
    const size_t tsz = is_q4 ? 18 : 34;
    const int64_t nb = w->n_in / 32;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *a = (const uint8_t *)xq + (size_t)r * stride; /* block_q8_0 x nb */
        int64_t o = o0;
        for (; o < o1; o += 4) {
            int nw = o1 - o < 4 ? (int)(o1 - o) : 4;
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            const uint8_t *wr[4];
            for (int k = 0; k < 4; k++) wr[k] = (const uint8_t *)w->data + (size_t)(o + (k < nw ? k : 0)) * w->row_bytes;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *ab = a + (size_t)b * 34;
                __m256i av = _mm256_loadu_si256((const __m256i *)(ab + 2));
                float da = half(ab);
                for (int k = 0; k < 4; k++) {
                    const uint8_t *wb = wr[k] + (size_t)b * tsz;
                    __m256i wv = is_q4 ? q4_0_quants(wb + 2) : _mm256_loadu_si256((const __m256i *)(wb + 2));
                    acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(wv, av)), _mm256_set1_ps(half(wb) * da), acc[k]);
                }
            }
            for (int k = 0; k < nw; k++) y[r * ldy + o + k] = hsum8(acc[k]);
        }
    }
}

/* 8 bf16 at p as 8 f32 (exact: bf16 is the upper half of an f32). */
static inline __m256 widen_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

/* F16 (bf16 = 0) or BF16 (bf16 = 1) weights in the plain layout against
 * activations of the same 16-bit type (the reference's formats), widened
 * to f32: 4 weight rows per activation load, the tail in plain C. */
static inline __attribute__((always_inline)) void gemm_16bit(const mm_weight *w, const void *xq, size_t stride,
                                                             int64_t n_rows, float *y, int64_t ldy, int64_t o0,
                                                             int64_t o1, const int bf16) {
    const int64_t n = w->n_in, n8 = n & ~(int64_t)7;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint16_t *a = (const uint16_t *)((const uint8_t *)xq + (size_t)r * stride);
        for (int64_t o = o0; o < o1; o += 4) {
            int nw = o1 - o < 4 ? (int)(o1 - o) : 4;
            const uint16_t *wr[4];
            for (int k = 0; k < 4; k++)
                wr[k] = (const uint16_t *)((const uint8_t *)w->data + (size_t)(o + (k < nw ? k : 0)) * w->row_bytes);
            __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (int64_t i = 0; i < n8; i += 8) {
                __m256 av = bf16 ? widen_bf16(a + i) : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i)));
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    __m256 wv = bf16 ? widen_bf16(wr[k] + i)
                                     : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wr[k] + i)));
                    acc[k] = _mm256_fmadd_ps(wv, av, acc[k]);
                }
            }
            for (int k = 0; k < nw; k++) {
                float s = hsum8(acc[k]);
                for (int64_t i = n8; i < n; i++)
                    s += bf16 ? bf16_to_f32(wr[k][i]) * bf16_to_f32(a[i]) : _cvtsh_ss(wr[k][i]) * _cvtsh_ss(a[i]);
                y[r * ldy + o + k] = s;
            }
        }
    }
}

static void gemm_f16(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                     int64_t o0, int64_t o1) {
    if (w->layout == MM_LAYOUT_X16) mm_gemm_f16_x16_avx2(w, xq, stride, n_rows, y, ldy, o0, o1);
    else gemm_16bit(w, xq, stride, n_rows, y, ldy, o0, o1, 0);
}

static void gemm_bf16(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                      int64_t o0, int64_t o1) {
    if (w->layout != MM_LAYOUT_PLAIN) mm_gemm_ref(w, xq, stride, n_rows, y, ldy, o0, o1); /* none exists */
    else gemm_16bit(w, xq, stride, n_rows, y, ldy, o0, o1, 1);
}

void mm_kernels_fill_avx2(mm_kernels *k) {
    /* Activations stay in the reference formats (act entries from scalar). */
    k->gemm[DTYPE_Q4_0] = gemm_q_0;
    k->gemm[DTYPE_Q8_0] = gemm_q_0;
    k->gemm[DTYPE_F16] = gemm_f16;
    k->chunk[DTYPE_F16] = 16; /* whole X16 groups for mm_gemm_f16_x16_avx2 */
    k->x16[DTYPE_F16] = 1;
    /* Q4_0/Q8_0 are read row by row here: X16 ones would go to the reference. */
    k->x16[DTYPE_Q4_0] = k->x16[DTYPE_Q8_0] = 0;
    k->gemm[DTYPE_BF16] = gemm_bf16;
    mm_kernels_fill_k_avx2(k);
}
