/*
 * gemm_k_avx2.c - AVX2 gemm kernels for the K-quants Q2_K..Q6_K against
 * ggml's Q8_K activations (the reference's format), for CPUs without
 * AVX-512 (compiled with the AVX2 flags; registered by gemm_avx2.c).
 *
 * Per super-block (256 quants) the weight quants are unpacked to unsigned
 * bytes (Q2_K 0..3, Q3_K q+4 in 0..7, Q4_K 0..15, Q5_K 0..31, Q6_K q+32 in
 * 0..63) and multiplied with the int8 activations by VPMADDUBSW; VPMADDWD by
 * the sub-block scales sums the int16 pairs into int32. Each sum is exact,
 * so the integer block sums equal the reference's (quant_kdot.c); the
 * minimums (Q2_K, Q4_K, Q5_K) come from the activation bsums, and so do the
 * Q3_K and Q6_K offsets. The float part (block scales, super-block sums)
 * follows the reference's order, so the results are bit-identical to
 * mm_gemm_ref.
 *
 * Up to AR activation rows (decode) read one weight row at a time, in
 * order, as a single stream; more rows go through tiles where four weight
 * rows share each activation load, AR activation rows each unpacked weight
 * vector, and the float part runs four columns wide.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_int.h"

/* The float part must round like the reference's separate multiplies and
 * adds: no fused multiply-adds (GCC's ISO C mode contracts nothing; clang
 * contracts within an expression unless told). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define WR 4 /* weight rows per tile */
#define AR 4 /* activation rows per tile (the switches in KIND_ENTRIES go to 4) */

/* An empty asm that may change the running sum v: keeps GCC from
 * reassociating a super-block's integer adds into one tree over all its
 * products, which holds them all at once and spills most of them (14%
 * fewer instructions on a 64-row GEMM, callgrind). */
#define KEEP_SUM(v) __asm__("" : "+x"(v))

/* Byte offsets in a Q8_K activation block (292 bytes). */
#define Q8K_SIZE 292
#define Q8K_QS 4
#define Q8K_BSUMS 260

/* The per-type tile: y[r*ldy + k] = dot(row wr[k], activation row r) for
 * r < nr, k < nw (wr[k] for k >= nw repeat a valid row; their sums are
 * dropped). */
typedef void (*tile_fn)(int nr, const uint8_t *const wr[WR], int nw, const uint8_t *act,
                        size_t stride, int64_t nsb, float *y, int64_t ldy);
/* The same for one weight row: y[r*ldy] for r < nr. */
typedef void (*row_fn)(int nr, const uint8_t *row, const uint8_t *act, size_t stride, int64_t nsb,
                       float *y, int64_t ldy);

/* The sum of 8 int32 / of 4 int32. */
static inline int hsum_128(__m128i v) {
    v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
    return _mm_cvtsi128_si32(v);
}
static inline int hsum_256(__m256i v) {
    return hsum_128(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

/* The fp16 at p as a float; the d of the Q8_K activation block at a. */
static inline float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
static inline float act_d(const uint8_t *a) {
    float d;
    memcpy(&d, a, 4);
    return d;
}

/* y[r*ldy + k] = lane k of sumf[r], for r < nr, k < nw. */
static inline void store_cols(int nr, const __m128 *sumf, int nw, float *y, int64_t ldy) {
    for (int r = 0; r < nr; r++) {
        float out[WR];
        _mm_storeu_ps(out, sumf[r]);
        for (int k = 0; k < nw; k++) y[r * ldy + k] = out[k];
    }
}

/* [sum a0, sum a1, sum a2, sum a3] of four vectors of 8 int32. */
static inline __m128i hsum4_256(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
    __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

/* [sum a0, sum a1, sum a2, sum a3] of four vectors of 4 int32. */
static inline __m128i hsum4_128(__m128i a0, __m128i a1, __m128i a2, __m128i a3) {
    return _mm_hadd_epi32(_mm_hadd_epi32(a0, a1), _mm_hadd_epi32(a2, a3));
}

/* Four 4-byte values (2-byte aligned or not) as one vector; built from
 * registers, since a vector load of separately stored words would wait for
 * the stores to drain. */
static inline __m128i load4x32(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2,
                               const uint8_t *p3) {
    uint32_t u0, u1, u2, u3;
    memcpy(&u0, p0, 4);
    memcpy(&u1, p1, 4);
    memcpy(&u2, p2, 4);
    memcpy(&u3, p3, 4);
    return _mm_setr_epi32((int)u0, (int)u1, (int)u2, (int)u3);
}

/* Unsigned quants times int8 activations, pairs summed (exact: at most
 * 2 * 63 * 128 in magnitude), then times the int16 scales s and paired into
 * int32 (exact). */
static inline __m256i dot_scaled(__m256i q, const uint8_t *a, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)a)), s);
}

/* The 8 six-bit scales (as int16, both 128-bit lanes alike) and 8 six-bit
 * minimums (int16) of a Q4_K/Q5_K super-block from its 12 packed bytes s
 * at p, as ggml's get_scale_min_k4 reads them: for j < 4 scale j is
 * s[j] & 63 and minimum j s[j+4] & 63; for j >= 4 scale j is the low nibble
 * of s[j+4] with the top two bits of s[j-4] above it, minimum j the high
 * nibble of s[j+4] with the top two bits of s[j]. Reads 16 bytes at p (the
 * block goes on past its scales). */
static inline void scales_k4(const uint8_t *p, __m256i *sc, __m128i *mn) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    /* bytes 0-7 the scales, 8-15 the minimums: the byte with the low bits
     * (a) and, for j >= 4, the byte with the top two (t) */
    const __m128i a =
        _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i t =
        _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i lo =
        _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
    const __m128i hi = _mm_and_si128(
        _mm_srli_epi16(a, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15));
    const __m128i top = _mm_and_si128(_mm_srli_epi16(t, 2), _mm_set1_epi8(0x30));
    const __m128i b = _mm_or_si128(_mm_or_si128(lo, hi), top);
    *sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(b));
    *mn = _mm_cvtepu8_epi16(_mm_srli_si128(b, 8));
}

/* Scale j (0..7) of scales_k4's vector in every int16 lane. */
static inline __m256i scale_k4(__m256i sc, int j) {
    return _mm256_shuffle_epi8(sc, _mm256_set1_epi16((short)(0x0100 + 0x0202 * j)));
}

/* Q4_K / Q5_K (has_qh): block d, dmin (fp16), scales[12], [qh[32],]
 * qs[128]; quants 64j..64j+31 are the low nibbles of qs[32j..32j+31] (with
 * bit 2j of qh[0..31] as 16), 64j+32.. the high nibbles (bit 2j+1).
 * Reference per super-block: isum = sum_j sc_j * sum(q * a) over sub-block
 * j, summs = sum_j m_j * (bsums[2j] + bsums[2j+1]); sumf += d_a * d_w *
 * isum - d_a * dmin_w * summs.
 * The integer part of the super-block at b against the activation blocks at
 * a + r * stride (r < nr): sum[r] is 8 lanes adding up to isum, *mins the
 * 8 minimums. */
static inline __attribute__((always_inline)) void sb_k4(const int nr, const int has_qh,
                                                        const uint8_t *b, const uint8_t *a,
                                                        size_t stride, __m256i sum[AR],
                                                        __m128i *mins) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m16 = _mm256_set1_epi8(0x10);
    const uint8_t *qs = b + (has_qh ? 48 : 16);
    __m256i sc,
        hm = has_qh ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
    scales_k4(b + 4, &sc, mins);
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) sum[r] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
        __m256i lo = _mm256_and_si256(raw, m4),
                hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        if (has_qh) {
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hm, 4), m16));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hm, 3), m16));
            hm = _mm256_srli_epi16(hm, 2);
        }
        __m256i slo = scale_k4(sc, 2 * j), shi = scale_k4(sc, 2 * j + 1);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *q8 = a + r * stride + Q8K_QS + 64 * j;
            sum[r] = _mm256_add_epi32(
                sum[r], _mm256_add_epi32(dot_scaled(lo, q8, slo), dot_scaled(hi, q8 + 32, shi)));
            KEEP_SUM(sum[r]);
        }
    }
}

/* The 8 sums bsums[2j] + bsums[2j+1] of the activation block at a. */
static inline __m128i bsums_k4(const uint8_t *a) {
    return _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)(a + Q8K_BSUMS)),
                          _mm_loadu_si128((const __m128i *)(a + Q8K_BSUMS + 16)));
}

/* The types with 16 scales of 16 quants (Q2_K, Q3_K, Q6_K) lay the scales
 * out alike: in half h (128 quants), 32-quant chunk k, the scale of quant l
 * is scales[8h + 2k + (l >= 16)]. From their 16 scales as int16, the vector
 * for chunk k of half h: scale 2k in the low 128-bit lane (quants 0..15),
 * 2k+1 in the high one. */
static inline __m256i scale_16(__m256i sc16, int h, int k) {
    __m256i sch = h ? _mm256_permute4x64_epi64(sc16, 0xee) : _mm256_permute4x64_epi64(sc16, 0x44);
    return _mm256_shuffle_epi8(sch, _mm256_set_m128i(_mm_set1_epi16((short)(0x0302 + 0x0404 * k)),
                                                     _mm_set1_epi16((short)(0x0100 + 0x0404 * k))));
}

/* sum[r] = -(off * sum_j sc_j * bsums[j]) for the activation rows: the
 * correction for quants stored as q + off. */
static inline __attribute__((always_inline)) void offset_init(const int nr, __m256i sc16, int shift,
                                                              const uint8_t *a, size_t stride,
                                                              __m256i sum[AR]) {
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        __m256i corr = _mm256_madd_epi16(
            sc16, _mm256_loadu_si256((const __m256i *)(a + r * stride + Q8K_BSUMS)));
        sum[r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, shift));
    }
}

/* sum[r] += chunk k of half h (unsigned quants q) against its activations. */
static inline __attribute__((always_inline)) void chunk_16(const int nr, __m256i q, __m256i sc16,
                                                           int h, int k, const uint8_t *a,
                                                           size_t stride, __m256i sum[AR]) {
    const __m256i s = scale_16(sc16, h, k);
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        sum[r] =
            _mm256_add_epi32(sum[r], dot_scaled(q, a + r * stride + Q8K_QS + 128 * h + 32 * k, s));
        KEEP_SUM(sum[r]);
    }
}

/* Q6_K: block ql[128], qh[64], scales[16] (int8), d (fp16). In half h: the
 * low nibbles of ql[64h..64h+31] with bits 0-1 of qh[32h..32h+31] are
 * chunk 0, the low nibbles of ql[64h+32..] with bits 2-3 chunk 1, the high
 * nibbles of the first 32 with bits 4-5 chunk 2, of the next 32 with bits
 * 6-7 chunk 3; q - 32 is the value. Reference: isum = sum sc * (q - 32) * a;
 * sumf += d_w * d_a * isum. Here the unsigned q goes through VPMADDUBSW and
 * 32 * sum_j sc_j * bsums[j] is taken off. The integer part of the
 * super-block at b against the activation blocks at a + r * stride (r < nr):
 * sum[r] is 8 lanes adding up to isum. */
static inline __attribute__((always_inline)) void
sb_q6(const int nr, const uint8_t *b, const uint8_t *a, size_t stride, __m256i sum[AR]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
    offset_init(nr, sc16, 5, a, stride, sum);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
        const __m256i vh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
        chunk_16(nr,
                 _mm256_or_si256(_mm256_and_si256(l0, m4),
                                 _mm256_and_si256(_mm256_slli_epi16(vh, 4), m30)),
                 sc16, h, 0, a, stride, sum);
        chunk_16(nr,
                 _mm256_or_si256(_mm256_and_si256(l1, m4),
                                 _mm256_and_si256(_mm256_slli_epi16(vh, 2), m30)),
                 sc16, h, 1, a, stride, sum);
        chunk_16(nr,
                 _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                 _mm256_and_si256(vh, m30)),
                 sc16, h, 2, a, stride, sum);
        chunk_16(nr,
                 _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                 _mm256_and_si256(_mm256_srli_epi16(vh, 2), m30)),
                 sc16, h, 3, a, stride, sum);
    }
}

/* Q3_K: block hmask[32], qs[64], scales[12] (16 six-bit scales, stored
 * minus 32), d (fp16). Chunk k of half h: bits 2k..2k+1 of qs[32h..32h+31]
 * with bit 4h+k of hmask[0..31] as 4; q - 4 is the value. Reference as
 * Q6_K's, so here 4 * sum_j sc_j * bsums[j] is taken off. */
static inline __attribute__((always_inline)) void
sb_q3(const int nr, const uint8_t *b, const uint8_t *a, size_t stride, __m256i sum[AR]) {
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    uint32_t u0, u1, u2;
    memcpy(&u0, b + 96, 4);
    memcpy(&u1, b + 100, 4);
    memcpy(&u2, b + 104, 4);
    const __m128i s8 =
        _mm_sub_epi8(_mm_setr_epi32((int)((u0 & kmask2) | ((u2 & kmask1) << 4)),
                                    (int)((u1 & kmask2) | (((u2 >> 2) & kmask1) << 4)),
                                    (int)(((u0 >> 4) & kmask2) | (((u2 >> 4) & kmask1) << 4)),
                                    (int)(((u1 >> 4) & kmask2) | (((u2 >> 6) & kmask1) << 4))),
                     _mm_set1_epi8(32));
    const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
    offset_init(nr, sc16, 2, a, stride, sum);
    __m256i hm = _mm256_loadu_si256((const __m256i *)b);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256i qv = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * h));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m256i q = _mm256_or_si256(_mm256_and_si256(qv, m3),
                                        _mm256_and_si256(_mm256_slli_epi16(hm, 2), m4));
            chunk_16(nr, q, sc16, h, k, a, stride, sum);
            qv = _mm256_srli_epi16(qv, 2);
            hm = _mm256_srli_epi16(hm, 1);
        }
    }
}

/* Q2_K: block scales[16] (low nibble the scale, high nibble the minimum),
 * qs[64], d, dmin (fp16). Chunk k of half h: bits 2k..2k+1 of
 * qs[32h..32h+31]. Reference: isum = sum sc * q * a, summs = sum_j m_j *
 * bsums[j]; sumf += d_a * d_w * isum - d_a * dmin_w * summs. *mins: the 16
 * minimums as int16. */
static inline __attribute__((always_inline)) void sb_q2(const int nr, const uint8_t *b,
                                                        const uint8_t *a, size_t stride,
                                                        __m256i sum[AR], __m256i *mins) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)b), n4 = _mm_set1_epi8(0x0f);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, n4)), m3 = _mm256_set1_epi8(3);
    *mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), n4));
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) sum[r] = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256i qv = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * h));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            chunk_16(nr, _mm256_and_si256(qv, m3), sc16, h, k, a, stride, sum);
            qv = _mm256_srli_epi16(qv, 2);
        }
    }
}

/* Weight formats by kind: block bytes, whether the reference subtracts
 * dmin * summs, and where d (and dmin after it) are. */
enum kind { K_Q2, K_Q3, K_Q4, K_Q5, K_Q6 };

static inline size_t kind_bytes(const int kind) {
    return kind == K_Q2 ? 84 : kind == K_Q3 ? 110 : kind == K_Q4 ? 144 : kind == K_Q5 ? 176 : 210;
}
static inline int kind_mins(const int kind) {
    return kind == K_Q2 || kind == K_Q4 || kind == K_Q5;
}
static inline size_t kind_d(const int kind) {
    return kind == K_Q2 ? 80 : kind == K_Q3 ? 108 : kind == K_Q6 ? 208 : 0;
}

/* The integer part of one super-block of any kind (sb_k4's contract; *mins
 * in the form min_term reads). */
static inline __attribute__((always_inline)) void sb_dot(const int kind, const int nr,
                                                         const uint8_t *b, const uint8_t *a,
                                                         size_t stride, __m256i sum[AR],
                                                         __m256i *mins) {
    __m128i m4;
    switch (kind) {
    case K_Q2:
        sb_q2(nr, b, a, stride, sum, mins);
        break;
    case K_Q3:
        sb_q3(nr, b, a, stride, sum);
        break;
    case K_Q4:
    case K_Q5:
        sb_k4(nr, kind == K_Q5, b, a, stride, sum, &m4);
        *mins = _mm256_castsi128_si256(m4);
        break;
    default:
        sb_q6(nr, b, a, stride, sum);
        break;
    }
}

/* 4 int32 adding up to summs for the activation block at a. */
static inline __m128i min_term(const int kind, __m256i mins, const uint8_t *a) {
    if (kind == K_Q2) {
        __m256i p = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)(a + Q8K_BSUMS)));
        return _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
    }
    return _mm_madd_epi16(_mm256_castsi256_si128(mins), bsums_k4(a));
}

/* WR weight rows by nr activation rows: the float part four columns wide. */
static inline __attribute__((always_inline)) void tile_k(const int kind, const int nr,
                                                         const uint8_t *const wr[WR], int nw,
                                                         const uint8_t *act, size_t stride,
                                                         int64_t nsb, float *y, int64_t ldy) {
    const size_t bsz = kind_bytes(kind);
    __m128 sumf[AR];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) sumf[r] = _mm_setzero_ps();
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *a = act + (size_t)sb * Q8K_SIZE;
        __m256i acc[WR][AR], mins[WR];
#pragma GCC unroll 1
        for (int w = 0; w < WR; w++) {
            __m256i sum[AR];
            sb_dot(kind, nr, wr[w] + (size_t)sb * bsz, a, stride, sum, &mins[w]);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) acc[w][r] = sum[r];
        }
        __m128 wd, wmin = _mm_setzero_ps();
        if (kind_mins(kind)) {
            /* d and dmin of the four rows: fp16 pairs, deinterleaved */
            const size_t bo = (size_t)sb * bsz + kind_d(kind);
            __m256 f = _mm256_permutevar8x32_ps(
                _mm256_cvtph_ps(load4x32(wr[0] + bo, wr[1] + bo, wr[2] + bo, wr[3] + bo)),
                _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
            wd = _mm256_castps256_ps128(f);
            wmin = _mm256_extractf128_ps(f, 1);
        } else {
            /* d ends the block: the high halves of its last 4 bytes */
            const size_t bo = (size_t)sb * bsz + bsz - 4;
            wd = _mm_cvtph_ps(_mm_shuffle_epi8(
                load4x32(wr[0] + bo, wr[1] + bo, wr[2] + bo, wr[3] + bo),
                _mm_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1)));
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *ar = a + r * stride;
            const __m128 vad = _mm_set1_ps(act_d(ar));
            const __m128 isum =
                _mm_cvtepi32_ps(hsum4_256(acc[0][r], acc[1][r], acc[2][r], acc[3][r]));
            if (kind_mins(kind)) {
                __m128i summs = hsum4_128(min_term(kind, mins[0], ar), min_term(kind, mins[1], ar),
                                          min_term(kind, mins[2], ar), min_term(kind, mins[3], ar));
                sumf[r] = _mm_add_ps(
                    sumf[r], _mm_sub_ps(_mm_mul_ps(_mm_mul_ps(vad, wd), isum),
                                        _mm_mul_ps(_mm_mul_ps(vad, wmin), _mm_cvtepi32_ps(summs))));
            } else {
                sumf[r] = _mm_add_ps(sumf[r], _mm_mul_ps(_mm_mul_ps(wd, vad), isum));
            }
        }
    }
    store_cols(nr, sumf, nw, y, ldy);
}

/* One weight row (a sequential read: decode streams weights from memory)
 * by nr activation rows; the float part in scalars. */
static inline __attribute__((always_inline)) void row_k(const int kind, const int nr,
                                                        const uint8_t *row, const uint8_t *act,
                                                        size_t stride, int64_t nsb, float *y,
                                                        int64_t ldy) {
    const size_t bsz = kind_bytes(kind);
    float sumf[AR];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) sumf[r] = 0.f;
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *b = row + (size_t)sb * bsz, *a = act + (size_t)sb * Q8K_SIZE;
        __m256i sum[AR], mins;
        sb_dot(kind, nr, b, a, stride, sum, &mins);
        const float wd = half_at(b + kind_d(kind));
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *ar = a + r * stride;
            const float ad = act_d(ar);
            const int isum = hsum_256(sum[r]);
            if (kind_mins(kind)) {
                const int summs = hsum_128(min_term(kind, mins, ar));
                const float d = ad * wd, dmin = ad * half_at(b + kind_d(kind) + 2);
                sumf[r] += d * (float)isum - dmin * (float)summs;
            } else {
                sumf[r] += (wd * ad) * (float)isum;
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) y[r * ldy] = sumf[r];
}

/* The entry points the gemm loop calls, kind and nr (1..AR) fixed per copy. */
#define KIND_ENTRIES(name, kind)                                                                   \
    static void tiles_##name(int nr, const uint8_t *const wr[WR], int nw, const uint8_t *act,      \
                             size_t stride, int64_t nsb, float *y, int64_t ldy) {                  \
        switch (nr) {                                                                              \
        case 1:                                                                                    \
            tile_k(kind, 1, wr, nw, act, stride, nsb, y, ldy);                                     \
            break;                                                                                 \
        case 2:                                                                                    \
            tile_k(kind, 2, wr, nw, act, stride, nsb, y, ldy);                                     \
            break;                                                                                 \
        case 3:                                                                                    \
            tile_k(kind, 3, wr, nw, act, stride, nsb, y, ldy);                                     \
            break;                                                                                 \
        default:                                                                                   \
            tile_k(kind, 4, wr, nw, act, stride, nsb, y, ldy);                                     \
            break;                                                                                 \
        }                                                                                          \
    }                                                                                              \
    static void rows_##name(int nr, const uint8_t *row, const uint8_t *act, size_t stride,         \
                            int64_t nsb, float *y, int64_t ldy) {                                  \
        switch (nr) {                                                                              \
        case 1:                                                                                    \
            row_k(kind, 1, row, act, stride, nsb, y, ldy);                                         \
            break;                                                                                 \
        case 2:                                                                                    \
            row_k(kind, 2, row, act, stride, nsb, y, ldy);                                         \
            break;                                                                                 \
        case 3:                                                                                    \
            row_k(kind, 3, row, act, stride, nsb, y, ldy);                                         \
            break;                                                                                 \
        default:                                                                                   \
            row_k(kind, 4, row, act, stride, nsb, y, ldy);                                         \
            break;                                                                                 \
        }                                                                                          \
    }
KIND_ENTRIES(q2_K, K_Q2)
KIND_ENTRIES(q3_K, K_Q3)
KIND_ENTRIES(q4_K, K_Q4)
KIND_ENTRIES(q5_K, K_Q5)
KIND_ENTRIES(q6_K, K_Q6)

/* The gemm entry for every K type here. Up to AR activation rows (decode)
 * read each weight row once, in order; more rows go through tiles of WR
 * columns by AR rows. Weights in another layout than the file's go to the
 * reference. */
static void gemm_k(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y,
                   int64_t ldy, int64_t o0, int64_t o1) {
    tile_fn tile;
    row_fn row;
    switch (w->type) {
    case DTYPE_Q2_K:
        tile = tiles_q2_K, row = rows_q2_K;
        break;
    case DTYPE_Q3_K:
        tile = tiles_q3_K, row = rows_q3_K;
        break;
    case DTYPE_Q4_K:
        tile = tiles_q4_K, row = rows_q4_K;
        break;
    case DTYPE_Q5_K:
        tile = tiles_q5_K, row = rows_q5_K;
        break;
    case DTYPE_Q6_K:
        tile = tiles_q6_K, row = rows_q6_K;
        break;
    default:
        tile = NULL, row = NULL;
        break;
    }
    if (!tile || w->layout != MM_LAYOUT_PLAIN) {
        mm_gemm_ref(w, xq, stride, n_rows, y, ldy, o0, o1);
        return;
    }
    const int64_t nsb = w->n_in / 256;
    const uint8_t *x = xq;
    if (n_rows <= AR) {
        for (int64_t o = o0; o < o1; o++)
            row((int)n_rows, (const uint8_t *)w->data + (size_t)o * w->row_bytes, x, stride, nsb,
                y + o, ldy);
        return;
    }
    for (int64_t o = o0; o < o1; o += WR) {
        int nw = o1 - o < WR ? (int)(o1 - o) : WR;
        const uint8_t *wr[WR];
        for (int k = 0; k < WR; k++)
            wr[k] = (const uint8_t *)w->data + (size_t)(o + (k < nw ? k : 0)) * w->row_bytes;
        for (int64_t r = 0; r < n_rows; r += AR) {
            int nr = n_rows - r < AR ? (int)(n_rows - r) : AR;
            tile(nr, wr, nw, x + (size_t)r * stride, stride, nsb, y + r * ldy + o, ldy);
        }
    }
}

/* Fills the K-quant gemm entries of the AVX2 table (called by
 * mm_kernels_fill_avx2); activations stay the reference's Q8_K. */
void mm_kernels_fill_k_avx2(mm_kernels *k) {
    k->gemm[DTYPE_Q2_K] = gemm_k;
    k->gemm[DTYPE_Q3_K] = gemm_k;
    k->gemm[DTYPE_Q4_K] = gemm_k;
    k->gemm[DTYPE_Q5_K] = gemm_k;
    k->gemm[DTYPE_Q6_K] = gemm_k;
}
