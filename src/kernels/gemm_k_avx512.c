/*
 * gemm_k_avx512.c - AVX-512 gemm kernels for the K-quants Q4_K and Q6_K
 * (compiled with the AVX-512 flags; used when cpu_level() is CPU_AVX512).
 *
 * A weight row is expanded, a slice of super-blocks at a time, into int16
 * products q * sub-block scale (Q4_K: q 0..15, scale 0..63; Q6_K: q -32..31,
 * scale -128..127: all fit int16) in an L1-resident buffer, with the per
 * super-block fp16 scale as float and, for Q4_K, the sub-block minimums
 * dmin * m. Activations are ggml's Q8_K quants (the same integers and d,
 * computed here with AVX-512) widened to int16, with d and d * (sum of each
 * 32 quants). Each super-block is then 8 VPDPWSSD per
 * activation row into an int32 accumulator, scaled once by d_w * d_a; the
 * expanded weight row is reused by every activation row (GEMM), and the
 * expansion is cheap enough to keep a single row (GEMV) at memory speed.
 *
 * Activation format "k16" (per row): int16 q[n] | float d[n/256] |
 * float bsd[n/256 * 8] (d * sum of quants 32j..32j+31 of the super-block) |
 * int8 q8[n] (the same quants, for the GEMVs, which read the weights in
 * place with VPDPBUSD instead of expanding them; for Q4_K its sub-blocks are
 * in q8_slot order, for Q6_K in element order).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_int.h"

#define WR 4       /* weight rows per tile */
#define AR 3       /* activation rows per tile */
#define SLICE_SB 8 /* super-blocks per expanded slice: WR slices of 4 KiB stay in L1 */

typedef struct wslice {
    _Alignas(64) int16_t q[SLICE_SB * 256];
    float d[SLICE_SB];
    float m[SLICE_SB * 8]; /* dmin * m_j (Q4_K); unused for Q6_K */
} wslice;

static size_t act_bytes_k16(enum dtype t, int64_t n) {
    (void)t;
    return (size_t)n * 3 + (size_t)(n / 256) * 36;
}

/* Slot of sub-block j (32 quants) in the int8 copy: 0 2 1 3 4 6 5 7, the
 * order in which a 64-byte load of Q4_K quants yields them (low nibbles of
 * qs[0..63] are sub-blocks 0 and 2, high nibbles 1 and 3, and so on). */
static inline int q8_slot(int j) { return (j & 4) | ((j & 1) << 1) | ((j >> 1) & 1); }

/* Quantizes as ggml's quantize_row_q8_K_ref (same integers, same d): per
 * 256 values, max = the first value of largest magnitude, iscale = -127/max,
 * q = min(127, round-half-even(iscale * x)), d = 1/iscale. */
static void act_k16(enum dtype t, const float *x, void *dst, int64_t n) {
    const int natural = t != DTYPE_Q4_K; /* Q6_K's GEMV reads quants in element order */
    int64_t nsb = n / 256;
    int16_t *q = dst;
    float *d = (float *)(q + n), *bsd = d + nsb;
    int8_t *q8 = (int8_t *)(bsd + 8 * nsb);
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t b = 0; b < nsb; b++) {
        const float *xb = x + 256 * b;
        __m512 am = _mm512_setzero_ps();
        for (int k = 0; k < 16; k++) am = _mm512_max_ps(am, _mm512_and_ps(_mm512_loadu_ps(xb + 16 * k), absmask));
        float amax = _mm512_reduce_max_ps(am);
        if (amax == 0.f) {
            memset(q + 256 * b, 0, 512);
            d[b] = 0.f;
            memset(bsd + 8 * b, 0, 32);
            memset(q8 + 256 * b, 0, 256);
            continue;
        }
        float max = 0.f;
        for (int k = 0; k < 16; k++) {
            __mmask16 hit = _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_loadu_ps(xb + 16 * k), absmask),
                                               _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (hit) {
                max = xb[16 * k + __builtin_ctz(hit)];
                break;
            }
        }
        float iscale = -127.f / max;
        __m512 vs = _mm512_set1_ps(iscale);
        const __m512i k127 = _mm512_set1_epi32(127);
        for (int j = 0; j < 8; j++) {
            __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 32 * j), vs),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 32 * j + 16), vs),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            i0 = _mm512_min_epi32(i0, k127);
            i1 = _mm512_min_epi32(i1, k127);
            _mm256_storeu_si256((__m256i *)(q + 256 * b + 32 * j), _mm512_cvtepi32_epi16(i0));
            _mm256_storeu_si256((__m256i *)(q + 256 * b + 32 * j + 16), _mm512_cvtepi32_epi16(i1));
            int slot = natural ? j : q8_slot(j);
            _mm_storeu_si128((__m128i *)(q8 + 256 * b + 32 * slot), _mm512_cvtepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(q8 + 256 * b + 32 * slot + 16), _mm512_cvtepi32_epi8(i1));
            bsd[8 * b + j] = (float)_mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        }
        d[b] = 1.f / iscale;
        for (int j = 0; j < 8; j++) bsd[8 * b + j] *= d[b];
    }
}

/* Expands super-blocks [sb0, sb0+n) of a Q4_K row. Block: d, dmin (fp16),
 * scales[12] (8 six-bit scales and 8 six-bit minimums, packed as ggml's
 * get_scale_min_k4 reads them), qs[128]; quants 64k..64k+31 are the low
 * nibbles of qs[32k..32k+31], 64k+32.. the high nibbles. */
static void expand_q4_K(const uint8_t *row, int64_t sb0, int64_t n, wslice *s) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *b = row + (size_t)(sb0 + i) * 144;
        uint16_t hd, hm;
        memcpy(&hd, b, 2);
        memcpy(&hm, b + 2, 2);
        s->d[i] = _cvtsh_ss(hd);
        /* Unpack to 8 scale bytes then 8 minimum bytes (ggml's utmp trick). */
        uint32_t u[4];
        memcpy(u, b + 4, 12);
        u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
        uint32_t aux = u[1] & kmask1;
        u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
        u[2] = aux;
        u[0] &= kmask1;
        const uint8_t *sc = (const uint8_t *)u, *mn = sc + 8;
        __m128i mb = _mm_loadl_epi64((const __m128i *)mn);
        _mm256_storeu_ps(s->m + 8 * i,
                         _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mb)), _mm256_set1_ps(_cvtsh_ss(hm))));
        int16_t *out = s->q + 256 * i;
        for (int k = 0; k < 4; k++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * k));
            __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            _mm512_store_si512(out + 64 * k,
                               _mm512_mullo_epi16(_mm512_cvtepu8_epi16(lo), _mm512_set1_epi16(sc[2 * k])));
            _mm512_store_si512(out + 64 * k + 32,
                               _mm512_mullo_epi16(_mm512_cvtepu8_epi16(hi), _mm512_set1_epi16(sc[2 * k + 1])));
        }
    }
}

/* Expands super-blocks of a Q6_K row. Block: ql[128], qh[64], scales[16]
 * (int8), d (fp16). Per half h (128 elements; ql += 64h, qh += 32h, scales
 * += 8h), l = 0..31: q1 = ql[l]&15 | (qh[l]&3)<<4 -> element l (scale l/16),
 * q2 = ql[l+32]&15 | (qh[l]>>2&3)<<4 -> l+32 (scale 2+l/16), q3 = ql[l]>>4 |
 * (qh[l]>>4&3)<<4 -> l+64 (scale 4+l/16), q4 = ql[l+32]>>4 | (qh[l]>>6)<<4 ->
 * l+96 (scale 6+l/16); each minus 32. */
static void expand_q6_K(const uint8_t *row, int64_t sb0, int64_t n, wslice *s) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m512i k32 = _mm512_set1_epi16(32);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *b = row + (size_t)(sb0 + i) * 210;
        uint16_t hd;
        memcpy(&hd, b + 208, 2);
        s->d[i] = _cvtsh_ss(hd);
        const int8_t *sc = (const int8_t *)(b + 192);
        int16_t *out = s->q + 256 * i;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const int8_t *s8 = sc + 8 * h;
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i vh = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(vh, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(vh, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(vh, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(vh, 2), m30));
            for (int k = 0; k < 4; k++) {
                __m512i scv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(s8[2 * k])),
                                                 _mm256_set1_epi16(s8[2 * k + 1]), 1);
                __m512i w = _mm512_sub_epi16(_mm512_cvtepu8_epi16(q[k]), k32);
                _mm512_storeu_si512(out + 128 * h + 32 * k, _mm512_mullo_epi16(w, scv));
            }
        }
    }
}

/* y[r*ldy + w] (+)= expanded slices sl[w] (w < nw weight rows; n super-
 * blocks from sb0) . activation rows r < nr. Each activation vector load
 * feeds nw VPDPWSSD and each weight vector nr; the Q4_K minimum terms are a
 * short separate dot product (8 floats per super-block). */
static inline __attribute__((always_inline)) void dot_tile(const int nw, const int nr, const int mins,
                                                           const wslice *sl, int64_t n, int64_t sb0,
                                                           const uint8_t *act, size_t stride, size_t d_off,
                                                           size_t bsd_off, float *y, int64_t ldy, int accumulate) {
    __m512 accf[WR][AR];
#pragma GCC unroll 4
    for (int w = 0; w < nw; w++)
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) accf[w][r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i++) {
        int64_t sb = sb0 + i;
        __m512i acc[WR][AR];
#pragma GCC unroll 4
        for (int w = 0; w < nw; w++)
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) acc[w][r] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            __m512i wv[WR];
#pragma GCC unroll 4
            for (int w = 0; w < nw; w++) wv[w] = _mm512_load_si512(sl[w].q + 256 * i + 32 * k);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                __m512i a = _mm512_loadu_si512((const int16_t *)(act + r * stride) + 256 * sb + 32 * k);
#pragma GCC unroll 4
                for (int w = 0; w < nw; w++) acc[w][r] = _mm512_dpwssd_epi32(acc[w][r], wv[w], a);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            float da = ((const float *)(act + r * stride + d_off))[sb];
#pragma GCC unroll 4
            for (int w = 0; w < nw; w++)
                accf[w][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[w][r]), _mm512_set1_ps(sl[w].d[i] * da), accf[w][r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        const float *bsd = (const float *)(act + r * stride + bsd_off) + 8 * sb0;
#pragma GCC unroll 4
        for (int w = 0; w < nw; w++) {
            float v = _mm512_reduce_add_ps(accf[w][r]);
            if (mins) {
                __m256 m = _mm256_setzero_ps();
                for (int64_t i = 0; i < n; i++)
                    m = _mm256_fmadd_ps(_mm256_loadu_ps(sl[w].m + 8 * i), _mm256_loadu_ps(bsd + 8 * i), m);
                __m128 h = _mm_add_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
                h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                h = _mm_add_ss(h, _mm_movehdup_ps(h));
                v -= _mm_cvtss_f32(h);
            }
            float *out = y + r * ldy + w;
            *out = accumulate ? *out + v : v;
        }
    }
}

#define DOT_ARGS sl, n, sb0, act, stride, d_off, bsd_off, y, ldy, acc
#define DOT_NR(NW, MINS)                                                                               \
    switch (nr) {                                                                                      \
    case 1: dot_tile(NW, 1, MINS, DOT_ARGS); break;                                                    \
    case 2: dot_tile(NW, 2, MINS, DOT_ARGS); break;                                                    \
    default: dot_tile(NW, 3, MINS, DOT_ARGS); break;                                                   \
    }
#define DOT_NW(MINS)                                                                                   \
    switch (nw) {                                                                                      \
    case 1: DOT_NR(1, MINS) break;                                                                     \
    case 2: DOT_NR(2, MINS) break;                                                                     \
    case 3: DOT_NR(3, MINS) break;                                                                     \
    default: DOT_NR(4, MINS) break;                                                                    \
    }

static void dot_mins(int nw, int nr, const wslice *sl, int64_t n, int64_t sb0, const uint8_t *act, size_t stride,
                     size_t d_off, size_t bsd_off, float *y, int64_t ldy, int acc) {
    DOT_NW(1)
}

static void dot_plain(int nw, int nr, const wslice *sl, int64_t n, int64_t sb0, const uint8_t *act,
                      size_t stride, size_t d_off, size_t bsd_off, float *y, int64_t ldy, int acc) {
    DOT_NW(0)
}

/* Q4_K against one or two activation rows (decode), straight from the file
 * layout: VPDPBUSD of the nibbles with the int8 copy of the activations
 * (sub-blocks in q8_slot order), lanes scaled by their sub-block's scale
 * (VPMULLD), one float FMA per super-block; the minimum terms in float. */
static void gemv_q4_K(const mm_weight *w, const uint8_t *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                      int64_t o0, int64_t o1) {
    const int64_t nsb = w->n_in / 256;
    const size_t d_off = (size_t)w->n_in * 2, bsd_off = d_off + (size_t)nsb * 4, q8_off = bsd_off + (size_t)nsb * 32;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i i02 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i i13 = _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m512i i46 = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6);
    const __m512i i57 = _mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7);
    const uint32_t kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *act = xq + (size_t)r * stride;
        const float *da = (const float *)(act + d_off), *bsd = (const float *)(act + bsd_off);
        const int8_t *q8 = (const int8_t *)(act + q8_off);
        for (int64_t o = o0; o < o1; o++) {
            const uint8_t *b = (const uint8_t *)w->data + (size_t)o * w->row_bytes;
            __m512 accf = _mm512_setzero_ps();
            __m256 accm = _mm256_setzero_ps();
            for (int64_t sb = 0; sb < nsb; sb++, b += 144) {
                uint16_t hd, hm;
                memcpy(&hd, b, 2);
                memcpy(&hm, b + 2, 2);
                uint32_t u[4];
                memcpy(u, b + 4, 12);
                u[3] = ((u[2] >> 4) & kmask2) | (((u[1] >> 6) & kmask3) << 4);
                uint32_t aux = u[1] & kmask1;
                u[1] = (u[2] & kmask2) | (((u[0] >> 6) & kmask3) << 4);
                u[2] = aux;
                u[0] &= kmask1;
                __m512i sc = _mm512_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)u));
                __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(u + 2))));
                __m512i l0 = _mm512_loadu_si512(b + 16), l1 = _mm512_loadu_si512(b + 80);
                const int8_t *a = q8 + 256 * sb;
                __m512i z = _mm512_setzero_si512();
                __m512i t = _mm512_mullo_epi32(
                    _mm512_dpbusd_epi32(z, _mm512_and_si512(l0, m4), _mm512_loadu_si512(a)),
                    _mm512_permutexvar_epi32(i02, sc));
                t = _mm512_add_epi32(t, _mm512_mullo_epi32(_mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(l0, 4), m4),
                                                                               _mm512_loadu_si512(a + 64)),
                                                           _mm512_permutexvar_epi32(i13, sc)));
                t = _mm512_add_epi32(t, _mm512_mullo_epi32(_mm512_dpbusd_epi32(z, _mm512_and_si512(l1, m4),
                                                                               _mm512_loadu_si512(a + 128)),
                                                           _mm512_permutexvar_epi32(i46, sc)));
                t = _mm512_add_epi32(t, _mm512_mullo_epi32(_mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(l1, 4), m4),
                                                                               _mm512_loadu_si512(a + 192)),
                                                           _mm512_permutexvar_epi32(i57, sc)));
                accf = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_set1_ps(_cvtsh_ss(hd) * da[sb]), accf);
                accm = _mm256_fmadd_ps(_mm256_mul_ps(mn, _mm256_set1_ps(_cvtsh_ss(hm))), _mm256_loadu_ps(bsd + 8 * sb), accm);
            }
            __m128 h = _mm_add_ps(_mm256_castps256_ps128(accm), _mm256_extractf128_ps(accm, 1));
            h = _mm_add_ps(h, _mm_movehl_ps(h, h));
            h = _mm_add_ss(h, _mm_movehdup_ps(h));
            y[r * ldy + o] = _mm512_reduce_add_ps(accf) - _mm_cvtss_f32(h);
        }
    }
}

/* Q6_K against one or two activation rows, from the file layout. Per half
 * (128 quants): the low nibbles of ql[0..63] with qh's bits 0-1 (first 32
 * bytes) or 2-3 (last 32) are quants 0..63 in order, the high nibbles with
 * bits 4-5 / 6-7 quants 64..127, as unsigned q+32. VPDPBUSD against the int8
 * activations minus VPDPBUSD of 32 against them gives each lane (4 quants of
 * one 16-quant sub-block) its signed sum, scaled lane-wise by the sub-block's
 * int8 scale. */
static void gemv_q6_K(const mm_weight *w, const uint8_t *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                      int64_t o0, int64_t o1) {
    const int64_t nsb = w->n_in / 256;
    const size_t d_off = (size_t)w->n_in * 2, q8_off = d_off + (size_t)nsb * 36;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30), k32 = _mm512_set1_epi8(32);
    const __m512i sh_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i sh_hi = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    __m512i idx[4];
    for (int k = 0; k < 4; k++)
        idx[k] = _mm512_add_epi32(_mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2),
                                  _mm512_set1_epi32(4 * k));
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *act = xq + (size_t)r * stride;
        const float *da = (const float *)(act + d_off);
        const int8_t *q8 = (const int8_t *)(act + q8_off);
        for (int64_t o = o0; o < o1; o++) {
            const uint8_t *b = (const uint8_t *)w->data + (size_t)o * w->row_bytes;
            __m512 accf = _mm512_setzero_ps();
            for (int64_t sb = 0; sb < nsb; sb++, b += 210) {
                __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192)));
                uint16_t hd;
                memcpy(&hd, b + 208, 2);
                const int8_t *a = q8 + 256 * sb;
                __m512i t = _mm512_setzero_si512(), z = _mm512_setzero_si512();
                for (int h = 0; h < 2; h++) {
                    __m512i ql = _mm512_loadu_si512(b + 64 * h);
                    __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h)));
                    __m512i ulo = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, sh_lo), m30));
                    __m512i uhi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                                  _mm512_and_si512(_mm512_srlv_epi16(qh, sh_hi), m30));
                    __m512i alo = _mm512_loadu_si512(a + 128 * h), ahi = _mm512_loadu_si512(a + 128 * h + 64);
                    __m512i dlo = _mm512_sub_epi32(_mm512_dpbusd_epi32(z, ulo, alo), _mm512_dpbusd_epi32(z, k32, alo));
                    __m512i dhi = _mm512_sub_epi32(_mm512_dpbusd_epi32(z, uhi, ahi), _mm512_dpbusd_epi32(z, k32, ahi));
                    t = _mm512_add_epi32(t, _mm512_mullo_epi32(dlo, _mm512_permutexvar_epi32(idx[2 * h], sc)));
                    t = _mm512_add_epi32(t, _mm512_mullo_epi32(dhi, _mm512_permutexvar_epi32(idx[2 * h + 1], sc)));
                }
                accf = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_set1_ps(_cvtsh_ss(hd) * da[sb]), accf);
            }
            y[r * ldy + o] = _mm512_reduce_add_ps(accf);
        }
    }
}

static void gemm_k(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y, int64_t ldy,
                   int64_t o0, int64_t o1) {
    const int is_q4 = w->type == DTYPE_Q4_K;
    if (n_rows <= 2) {
        (is_q4 ? gemv_q4_K : gemv_q6_K)(w, xq, stride, n_rows, y, ldy, o0, o1);
        return;
    }
    const int64_t nsb = w->n_in / 256;
    const size_t d_off = (size_t)w->n_in * 2, bsd_off = d_off + (size_t)nsb * 4;
    wslice sl[WR];
    for (int64_t o = o0; o < o1; o += WR) {
        int nw = o1 - o < WR ? (int)(o1 - o) : WR;
        for (int64_t sb0 = 0; sb0 < nsb; sb0 += SLICE_SB) {
            int64_t n = nsb - sb0 < SLICE_SB ? nsb - sb0 : SLICE_SB;
            for (int k = 0; k < nw; k++) {
                const uint8_t *row = (const uint8_t *)w->data + (size_t)(o + k) * w->row_bytes;
                if (is_q4) expand_q4_K(row, sb0, n, &sl[k]);
                else expand_q6_K(row, sb0, n, &sl[k]);
            }
            {
                /* The next slice's bytes (the same rows further on, or the
                 * next rows), into L2 while this one computes: Q6_K 2048 x
                 * 32000 at 16 rows, 1 thread, 95-100 -> 117 GOP/s. */
                const size_t sbb = is_q4 ? 144 : 210;
                for (int k = 0; k < WR; k++) {
                    const int64_t ro = sb0 + n < nsb ? o + k : o + WR + k;
                    const int64_t s1 = sb0 + n < nsb ? sb0 + n : 0;
                    if (ro >= w->n_out) break;
                    const char *p = (const char *)w->data + (size_t)ro * w->row_bytes + (size_t)s1 * sbb;
                    const int64_t m = nsb - s1 < SLICE_SB ? nsb - s1 : SLICE_SB;
                    for (size_t l = 0; l < (size_t)m * sbb; l += 64) _mm_prefetch(p + l, _MM_HINT_T1);
                }
            }
            for (int64_t r = 0; r < n_rows; r += AR) {
                int nr = n_rows - r < AR ? (int)(n_rows - r) : AR;
                const uint8_t *act = (const uint8_t *)xq + (size_t)r * stride;
                (is_q4 ? dot_mins : dot_plain)(nw, nr, sl, n, sb0, act, stride, d_off, bsd_off, y + r * ldy + o,
                                               ldy, sb0 > 0);
            }
        }
    }
}

/* Fills the K-quant entries of the AVX-512 table (called by gemm_avx512.c). */
void mm_kernels_fill_k_avx512(mm_kernels *k) {
    const enum dtype ts[] = {DTYPE_Q4_K, DTYPE_Q6_K};
    for (int i = 0; i < 2; i++) {
        k->gemm[ts[i]] = gemm_k;
        k->act[ts[i]] = act_k16;
        k->act_bytes[ts[i]] = act_bytes_k16;
        k->chunk[ts[i]] = 16;
    }
}
