/*
 * gemm_scalar.c - the plain-C reference gemm: for every (row, column) a dot
 * product in element order against the converted activation row. The SIMD
 * tables (gemm_avx2.c, gemm_avx512.c) override the types they speed up and
 * are tested against this one.
 */
#include <string.h>

#include "kernels/matmul_int.h"

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) u = sign | 0x7f800000 | (man << 13);
    else if (exp) u = sign | ((exp + 112) << 23) | (man << 13);
    else if (!man) u = sign;
    else {
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t float_to_half(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, a = u & 0x7fffffff;
    if (a >= 0x7f800000) return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000 ? 0x200 | ((a >> 13) & 0x3ff) : 0));
    if (a >= 0x477ff000) return (uint16_t)(sign | 0x7c00); /* rounds past 65504 */
    if (a < 0x38800000) { /* subnormal half or zero */
        if (a < 0x33000000) return (uint16_t)sign;
        uint32_t m = (a & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(a >> 23);
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t q = ((a >> 13) - (112u << 10)), rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

void mm_f32_to_f16_row(const float *x, void *dst, int64_t n) {
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = float_to_half(x[i]);
}

static void gemm_f32(const mm_weight *w, const void *xq, size_t xq_stride, int64_t n_rows, float *y,
                     int64_t ldy, int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; o++) {
        const float *wr = (const float *)((const uint8_t *)w->data + (size_t)o * w->row_bytes);
        for (int64_t r = 0; r < n_rows; r++) {
            const float *a = (const float *)((const uint8_t *)xq + (size_t)r * xq_stride);
            double s = 0;
            for (int64_t i = 0; i < w->n_in; i++) s += (double)wr[i] * a[i];
            y[r * ldy + o] = (float)s;
        }
    }
}

static void gemm_f16(const mm_weight *w, const void *xq, size_t xq_stride, int64_t n_rows, float *y,
                     int64_t ldy, int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; o++) {
        const uint16_t *wr = (const uint16_t *)((const uint8_t *)w->data + (size_t)o * w->row_bytes);
        for (int64_t r = 0; r < n_rows; r++) {
            const uint16_t *a = (const uint16_t *)((const uint8_t *)xq + (size_t)r * xq_stride);
            double s = 0;
            for (int64_t i = 0; i < w->n_in; i++) s += (double)half_to_float(wr[i]) * half_to_float(a[i]);
            y[r * ldy + o] = (float)s;
        }
    }
}

void mm_kernels_fill_scalar(mm_kernels *k) {
    k->gemm[DTYPE_F32] = gemm_f32;
    k->gemm[DTYPE_F16] = gemm_f16;
}
