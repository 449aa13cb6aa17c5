/*
 * gemm_avx512.c - AVX-512 gemm kernels (compiled with the AVX-512 flags; only
 * called when cpu_level() is CPU_AVX512).
 *
 * Q4_0, Q8_0: int8 dot products (VPDPBUSD) on the X16 layout: one 64-byte
 * vector holds 4 quants of 16 weight rows, the activation's 4 matching int8
 * quants are broadcast, so each int32 lane sums one row's block and the block
 * scales apply lane-wise (no horizontal sums). VPDPBUSD multiplies unsigned
 * by signed bytes: the weights go in unsigned (Q4_0 nibbles 0..15, Q8_0 +128)
 * and the offset comes back through the accumulator's start value
 * -off*sum(activation quants) of the block. Weights not repacked are packed
 * into X16 records on the stack (vector transposes), a slice of blocks at a
 * time. The microkernel keeps up to MR activation rows in registers, so each
 * weight vector is loaded and unpacked once per MR rows (GEMM), or once (GEMV).
 *
 * Activation format "x8", grouped: rows in groups of MR (the last group holds
 * the g = n_rows % MR left over), a group starting at its first row's offset
 * (g rows x stride bytes). Per block of 32 elements a group stores 40*g
 * bytes: the rows' int8 quants interleaved a dword at a time (dword m of row
 * l at 4*(m*g + l)), then float d[g], then int32 c[g]; qs and d as ggml's
 * Q8_0 (fp16-rounded scale), c = -off * sum(qs). So the microkernel reads
 * one sequential stream from one pointer, every broadcast at a constant
 * offset, and VPDPBUSD takes the broadcast from memory.
 *
 * F16 is in gemm_f16_avx512.c, Q4_K/Q6_K in gemm_k_avx512.c.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/matmul_int.h"

#define MR 12           /* activation rows per microkernel call */
#define SLICE_BLOCKS 32 /* blocks per on-the-fly packed slice */

/* ---- activations ---- */

static size_t act_bytes_x8(enum dtype t, int64_t n) {
    (void)t;
    return (size_t)n + (size_t)(n / 32) * 8;
}

/* Rows r0..r1 of n_rows into the grouped x8 layout (see the file comment). */
static void act_rows_x8(enum dtype t, const float *x, int64_t n, uint8_t *xq, size_t stride, int64_t n_rows,
                        int64_t r0, int64_t r1) {
    const int off = t == DTYPE_Q4_0 ? 8 : 128;
    const int64_t nb = n / 32;
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t r = r0; r < r1; r++) {
        const int64_t g0 = r / MR * MR;
        const int g = n_rows - g0 < MR ? (int)(n_rows - g0) : MR, l = (int)(r - g0);
        uint8_t *base = xq + (size_t)g0 * stride;
        const float *xr = x + r * n;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *a = base + (size_t)b * (size_t)g * 40;
            __m512 v0 = _mm512_loadu_ps(xr + 32 * b), v1 = _mm512_loadu_ps(xr + 32 * b + 16);
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, sign), _mm512_and_ps(v1, sign)));
            float dd = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
            float d = _cvtsh_ss(_cvtss_sh(dd, 0));
            __m512 vid = _mm512_set1_ps(id);
            __m512i i0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m512i i1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            int32_t c = -off * _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            _Alignas(16) int32_t q[8]; /* dword m of the row's quants goes to a + 4*(m*g + l) */
            _mm_store_si128((__m128i *)q, _mm512_cvtsepi32_epi8(i0));
            _mm_store_si128((__m128i *)(q + 4), _mm512_cvtsepi32_epi8(i1));
            for (int m = 0; m < 8; m++) memcpy(a + 4 * (m * g + l), &q[m], 4);
            memcpy(a + 32 * g + 4 * l, &d, 4);
            memcpy(a + 36 * g + 4 * l, &c, 4);
        }
    }
}

/* ---- Q4_0 / Q8_0 on X16 records ---- */

/* acc += w (unsigned bytes) . the int8 dword at p broadcast to every lane:
 * the broadcast rides on the load (GCC otherwise issues it separately). */
static inline __attribute__((always_inline)) __m512i dp_bcast(__m512i acc, __m512i w, const uint8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)p));
    return acc;
}

/* y[r*ldy + 0..15] (+)= records rec (16 weight rows, blocks [b0, b0+nb) of
 * the row) . the nr activation rows of one group at a (block b0 first).
 * accumulate: add to y instead of overwriting; mask: the valid columns.
 * pf: records to prefetch (into L2), one block's worth per block computed,
 * or NULL. With few activation rows (decode of many sequences) the records
 * come from memory once and are used by one or two row groups, and without
 * it the loads stalled: bench-1b's 2048 x 5632 Q4_0 at 16 rows, 1 thread,
 * went from 269-304 to 341-344 GOP/s. Into L1 (T0) they pushed a Q8_0
 * group's own records out (two groups and the activations overflow it):
 * Q8_0 2048 x 5632 at 16 rows made 281 GOP/s with T0, 346-350 with T1
 * (docs/performance.md). */
static inline __attribute__((always_inline)) void mk_x16(const int nr, const int is_q4, const uint8_t *rec,
                                                         int64_t nb, const uint8_t *a, float *y, int64_t ldy,
                                                         int accumulate, __mmask16 mask, const uint8_t *pf) {
    __m512 accf[MR];
    const size_t rec_bytes = is_q4 ? 288 : 544;
#pragma GCC unroll 12
    for (int r = 0; r < nr; r++)
        accf[r] = accumulate ? _mm512_maskz_loadu_ps(mask, y + r * ldy) : _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t b = 0; b < nb; b++, rec += rec_bytes, a += 40 * nr) {
        if (pf) {
            const uint8_t *pb = pf + b * (int64_t)rec_bytes;
            for (int l = 0; l < (int)rec_bytes; l += 64) _mm_prefetch((const char *)pb + l, _MM_HINT_T1);
        }
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)rec));
        __m512i acc[MR];
#pragma GCC unroll 12
        for (int r = 0; r < nr; r++) acc[r] = _mm512_set1_epi32(*(const int32_t *)(a + 36 * nr + 4 * r));
        /* Few rows: two accumulators per row halve the VPDPBUSD dependency
         * chain (integer sums: the same result). */
        const int split = nr <= 3;
        __m512i acc2[MR];
#pragma GCC unroll 12
        for (int r = 0; r < nr; r++) acc2[r] = _mm512_setzero_si512();
        if (is_q4) {
#pragma GCC unroll 4
            for (int m = 0; m < 4; m++) {
                __m512i p = _mm512_loadu_si512(rec + 32 + 64 * m);
                __m512i lo = _mm512_and_si512(p, m4), hi = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
#pragma GCC unroll 12
                for (int r = 0; r < nr; r++) {
                    acc[r] = dp_bcast(acc[r], lo, a + 4 * (m * nr + r));
                    if (split) acc2[r] = dp_bcast(acc2[r], hi, a + 4 * ((m + 4) * nr + r));
                    else acc[r] = dp_bcast(acc[r], hi, a + 4 * ((m + 4) * nr + r));
                }
            }
        } else {
#pragma GCC unroll 8
            for (int m = 0; m < 8; m++) {
                __m512i p = _mm512_loadu_si512(rec + 32 + 64 * m);
#pragma GCC unroll 12
                for (int r = 0; r < nr; r++) {
                    if (split && (m & 1)) acc2[r] = dp_bcast(acc2[r], p, a + 4 * (m * nr + r));
                    else acc[r] = dp_bcast(acc[r], p, a + 4 * (m * nr + r));
                }
            }
        }
        if (split) {
#pragma GCC unroll 12
            for (int r = 0; r < nr; r++) acc[r] = _mm512_add_epi32(acc[r], acc2[r]);
        }
#pragma GCC unroll 12
        for (int r = 0; r < nr; r++) {
            float da = *(const float *)(a + 32 * nr + 4 * r);
            accf[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r]), _mm512_mul_ps(dw, _mm512_set1_ps(da)), accf[r]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < nr; r++) _mm512_mask_storeu_ps(y + r * ldy, mask, accf[r]);
}

#define MK_CASES(Q4)                                                                           \
    switch (nr) {                                                                              \
    case 1: mk_x16(1, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 2: mk_x16(2, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 3: mk_x16(3, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 4: mk_x16(4, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 5: mk_x16(5, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 6: mk_x16(6, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 7: mk_x16(7, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 8: mk_x16(8, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 9: mk_x16(9, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                           \
    case 10: mk_x16(10, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                         \
    case 11: mk_x16(11, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                         \
    default: mk_x16(12, Q4, rec, nb, a, y, ldy, acc, mask, pf); break;                         \
    }

static void mk_q4_0(int nr, const uint8_t *rec, int64_t nb, const uint8_t *a, float *y, int64_t ldy, int acc,
                    __mmask16 mask, const uint8_t *pf) {
    MK_CASES(1)
}

static void mk_q8_0(int nr, const uint8_t *rec, int64_t nb, const uint8_t *a, float *y, int64_t ldy, int acc,
                    __mmask16 mask, const uint8_t *pf) {
    MK_CASES(0)
}

/* Transposes 16 rows x 4 dwords (row l's dwords at rows[l] + off) into 4
 * vectors, vector m holding dword m of rows 0..15, stored at out + 64*m. */
static inline void transpose16x4(const uint8_t *const *rows, size_t off, uint8_t *out, __m512i flip) {
    __m512i z[4];
    for (int k = 0; k < 4; k++) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rows[4 * k] + off)));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[4 * k + 1] + off)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[4 * k + 2] + off)), 2);
        z[k] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[4 * k + 3] + off)), 3);
    }
    /* t01a: dword 0 of rows 0-7 then dword 1 of rows 0-7; t01b: dwords 2, 3. */
    const __m512i ia = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i ib = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    __m512i t01a = _mm512_permutex2var_epi32(z[0], ia, z[1]), t01b = _mm512_permutex2var_epi32(z[0], ib, z[1]);
    __m512i t23a = _mm512_permutex2var_epi32(z[2], ia, z[3]), t23b = _mm512_permutex2var_epi32(z[2], ib, z[3]);
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    _mm512_storeu_si512(out, _mm512_xor_si512(_mm512_permutex2var_epi32(t01a, lo, t23a), flip));
    _mm512_storeu_si512(out + 64, _mm512_xor_si512(_mm512_permutex2var_epi32(t01a, hi, t23a), flip));
    _mm512_storeu_si512(out + 128, _mm512_xor_si512(_mm512_permutex2var_epi32(t01b, lo, t23b), flip));
    _mm512_storeu_si512(out + 192, _mm512_xor_si512(_mm512_permutex2var_epi32(t01b, hi, t23b), flip));
}

/* mm_x16_pack with vector transposes (16 full rows; a partial group of rows
 * at the end of the matrix takes the plain-C packer). */
static void pack_x16(const mm_weight *w, int64_t o, int64_t b0, int64_t n_blocks, uint8_t *dst, int is_q4) {
    if (w->n_out - o < 16) {
        mm_x16_pack(w, o, b0, n_blocks, dst);
        return;
    }
    const size_t tsz = is_q4 ? 18 : 34, rec_bytes = 16 * tsz;
    const __m512i flip = _mm512_set1_epi32(is_q4 ? 0 : (int)0x80808080u);
    const uint8_t *rows[16];
    for (int l = 0; l < 16; l++)
        rows[l] = (const uint8_t *)w->data + (size_t)(o + l) * w->row_bytes + (size_t)b0 * tsz;
    for (int64_t b = 0; b < n_blocks; b++, dst += rec_bytes) {
        uint16_t *d = (uint16_t *)dst;
        for (int l = 0; l < 16; l++) memcpy(&d[l], rows[l], 2);
        transpose16x4(rows, 2, dst + 32, flip);
        if (!is_q4) transpose16x4(rows, 18, dst + 32 + 256, flip);
        for (int l = 0; l < 16; l++) rows[l] += tsz;
    }
}

static void pack_x16_any(const mm_weight *w, int64_t o, int64_t b0, int64_t n_blocks, uint8_t *dst) {
    pack_x16(w, o, b0, n_blocks, dst, w->type == DTYPE_Q4_0);
}

static void gemm_x16(const mm_weight *w, const void *xq, size_t stride, int64_t n_rows, float *y,
                     int64_t ldy, int64_t o0, int64_t o1) {
    const int is_q4 = w->type == DTYPE_Q4_0;
    const int64_t nb_all = w->n_in / 32;
    _Alignas(64) uint8_t slice[SLICE_BLOCKS * 544];
    for (int64_t o = o0; o < o1; o += 16) {
        int valid = o1 - o < 16 ? (int)(o1 - o) : 16;
        __mmask16 mask = (__mmask16)((1u << valid) - 1);
        for (int64_t b0 = 0; b0 < nb_all;) {
            const uint8_t *rec;
            int64_t nb;
            if (w->layout == MM_LAYOUT_X16) {
                rec = (const uint8_t *)w->data + (size_t)(o / 16) * 16 * w->row_bytes;
                nb = nb_all;
            } else {
                nb = nb_all - b0 < SLICE_BLOCKS ? nb_all - b0 : SLICE_BLOCKS;
                pack_x16(w, o, b0, nb, slice, is_q4);
                rec = slice;
            }
            for (int64_t r = 0; r < n_rows; r += MR) {
                int nr = n_rows - r < MR ? (int)(n_rows - r) : MR;
                const uint8_t *a = (const uint8_t *)xq + (size_t)r * stride + (size_t)b0 * 40 * (size_t)nr;
                /* The first row group asks for the next 16 rows' records
                 * (the next group this thread, or the other, computes). */
                const uint8_t *pf = NULL;
                if (r == 0 && n_rows > 1 && w->layout == MM_LAYOUT_X16 && o + 16 < w->n_out)
                    pf = rec + 16 * w->row_bytes;
                (is_q4 ? mk_q4_0 : mk_q8_0)(nr, rec, nb, a, y + r * ldy + o, ldy, b0 > 0, mask, pf);
            }
            b0 += nb;
        }
    }
}

void mm_kernels_fill_avx512(mm_kernels *k) {
    k->gemm[DTYPE_Q4_0] = gemm_x16;
    k->gemm[DTYPE_Q8_0] = gemm_x16;
    k->act_rows[DTYPE_Q4_0] = act_rows_x8;
    k->act_rows[DTYPE_Q8_0] = act_rows_x8;
    k->act_bytes[DTYPE_Q4_0] = act_bytes_x8;
    k->act_bytes[DTYPE_Q8_0] = act_bytes_x8;
    k->chunk[DTYPE_Q4_0] = 16;
    k->chunk[DTYPE_Q8_0] = 16;
    k->x16[DTYPE_Q4_0] = k->x16[DTYPE_Q8_0] = 1;
    k->x16_pack[DTYPE_Q4_0] = pack_x16_any;
    k->x16_pack[DTYPE_Q8_0] = pack_x16_any;
    mm_kernels_fill_f16_avx512(k);
    mm_kernels_fill_bf16_avx512(k);
    mm_kernels_fill_k_avx512(k);
}
