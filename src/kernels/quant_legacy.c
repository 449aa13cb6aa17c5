/*
 * quant_legacy.c - the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
 * and Q8_1: ggml's reference quantizers, dequantizers and plain-C dot
 * products against Q8_0 / Q8_1 activations, plus the x86 activation
 * quantizers of ggml-cpu. Float operations follow ggml-quants.c in order
 * (see quant.h: the outputs are bit-exact).
 */
#include <math.h>

#include "kernels/quant_int.h"

#define MIN_I(a, b) ((a) < (b) ? (a) : (b))

static inline float h2f(uint16_t h) {
    return fp16_to_f32(h);
}

/* ---- reference quantizers ---------------------------------------------- */

/* The signed extreme maps to -8, so x = d * (q - 8) with q in 0..15. */
void quantize_row_q4_0_ref(const float *x, void *dst, int64_t n) {
    block_q4_0 *y = dst;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const float x0 = xb[j] * id;
            const float x1 = xb[QK4_0 / 2 + j] * id;
            const uint8_t q0 = (uint8_t)MIN_I(15, (int8_t)(x0 + 8.5f));
            const uint8_t q1 = (uint8_t)MIN_I(15, (int8_t)(x1 + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* x = d * q + m with m the block minimum, q in 0..15. */
void quantize_row_q4_1_ref(const float *x, void *dst, int64_t n) {
    block_q4_1 *y = dst;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK4_1;
        float min = 3.402823466e+38f, max = -3.402823466e+38f;
        for (int j = 0; j < QK4_1; j++) {
            if (xb[j] < min) min = xb[j];
            if (xb[j] > max) max = xb[j];
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        y[i].m = f32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const float x0 = (xb[j] - min) * id;
            const float x1 = (xb[QK4_1 / 2 + j] - min) * id;
            const uint8_t q0 = (uint8_t)MIN_I(15, (int8_t)(x0 + 0.5f));
            const uint8_t q1 = (uint8_t)MIN_I(15, (int8_t)(x1 + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* As Q4_0 with 5 bits: x = d * (q - 16), the 5th bits packed in qh. */
void quantize_row_q5_0_ref(const float *x, void *dst, int64_t n) {
    block_q5_0 *y = dst;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK5_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK5_0; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            const float x0 = xb[j] * id;
            const float x1 = xb[QK5_0 / 2 + j] * id;
            const uint8_t q0 = (uint8_t)MIN_I(31, (int8_t)(x0 + 16.5f));
            const uint8_t q1 = (uint8_t)MIN_I(31, (int8_t)(x1 + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

/* As Q4_1 with 5 bits (no clamp: ggml truncates after +0.5). */
void quantize_row_q5_1_ref(const float *x, void *dst, int64_t n) {
    block_q5_1 *y = dst;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK5_1;
        float min = 3.402823466e+38f, max = -3.402823466e+38f;
        for (int j = 0; j < QK5_1; j++) {
            if (xb[j] < min) min = xb[j];
            if (xb[j] > max) max = xb[j];
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        y[i].m = f32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            const float x0 = (xb[j] - min) * id;
            const float x1 = (xb[QK5_1 / 2 + j] - min) * id;
            const uint8_t q0 = (uint8_t)(x0 + 0.5f);
            const uint8_t q1 = (uint8_t)(x1 + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

/* x = d * q, d = amax / 127, q = roundf(x / d) (ties away from zero). */
void quantize_row_q8_0_ref(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

/* Q8_0 plus s = d * sum(q) in fp16. */
void quantize_row_q8_1_ref(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const float *xb = x + i * QK8_1;
        float amax = 0.0f;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            y[i].qs[j] = (int8_t)roundf(xb[j] * id);
            y[i].qs[QK8_1 / 2 + j] = (int8_t)roundf(xb[QK8_1 / 2 + j] * id);
            sum += y[i].qs[j];
            sum += y[i].qs[QK8_1 / 2 + j];
        }
        y[i].s = f32_to_fp16((float)sum * d);
    }
}

/* ggml-cpu x86 quantize_row_q8_0/q8_1 (AVX): id = 127 / amax (not 1 / d) and
 * rounding to nearest even; equal to the reference on most inputs but not
 * all, and what ggml's matmul really feeds its dot products. cvtps2dq turns
 * values outside int32 (an infinite id when amax is tiny) into INT32_MIN,
 * and the saturating packs then give -128; the int32 sum wraps. Mirrored
 * here so the SIMD versions agree byte for byte. Returns the unrounded
 * block scale d and the sum of the int32 lanes. */
static float q8_act_block(const float *xb, uint16_t *d_out, int8_t *qs, int *sum_out) {
    float amax = 0.0f;
    for (int j = 0; j < QK8_0; j++) {
        const float a = fabsf(xb[j]);
        amax = a > amax ? a : amax;
    }
    const float d = amax / 127.f;
    *d_out = f32_to_fp16(d);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    uint32_t sum = 0;
    for (int j = 0; j < QK8_0; j++) {
        const float v = nearbyintf(xb[j] * id);
        const int32_t c = (v >= -2147483648.0f && v < 2147483648.0f) ? (int32_t)v : INT32_MIN;
        sum += (uint32_t)c;
        qs[j] = (int8_t)(c > 127 ? 127 : c < -128 ? -128 : c);
    }
    *sum_out = (int)sum;
    return d;
}

/* Activation rows for Q4_0, Q5_0, Q8_0 and IQ4_NL weights. */
void quantize_row_q8_0_act(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        int sum;
        q8_act_block(x + i * QK8_0, &y[i].d, y[i].qs, &sum);
    }
}

/* Activation rows for Q4_1 and Q5_1 weights (s = d * sum, d unrounded). */
void quantize_row_q8_1_act(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        int sum;
        const float d = q8_act_block(x + i * QK8_1, &y[i].d, y[i].qs, &sum);
        y[i].s = f32_to_fp16(d * (float)sum);
    }
}

/* ---- dequantizers ------------------------------------------------------- */

void dequantize_row_q4_0(const void *src, float *y, int64_t n) {
    const block_q4_0 *x = src;
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int x0 = (x[i].qs[j] & 0x0F) - 8;
            const int x1 = (x[i].qs[j] >> 4) - 8;
            y[i * QK4_0 + j] = (float)x0 * d;
            y[i * QK4_0 + j + QK4_0 / 2] = (float)x1 * d;
        }
    }
}

void dequantize_row_q4_1(const void *src, float *y, int64_t n) {
    const block_q4_1 *x = src;
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int x0 = x[i].qs[j] & 0x0F;
            const int x1 = x[i].qs[j] >> 4;
            y[i * QK4_1 + j] = (float)x0 * d + m;
            y[i * QK4_1 + j + QK4_1 / 2] = (float)x1 * d + m;
        }
    }
}

void dequantize_row_q5_0(const void *src, float *y, int64_t n) {
    const block_q5_0 *x = src;
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < QK5_0 / 2; j++) {
            const uint8_t xh0 = (uint8_t)(((qh >> j) << 4) & 0x10);
            const uint8_t xh1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh0) - 16;
            const int32_t x1 = ((x[i].qs[j] >> 4) | xh1) - 16;
            y[i * QK5_0 + j] = (float)x0 * d;
            y[i * QK5_0 + j + QK5_0 / 2] = (float)x1 * d;
        }
    }
}

void dequantize_row_q5_1(const void *src, float *y, int64_t n) {
    const block_q5_1 *x = src;
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(x[i].d), m = h2f(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < QK5_1 / 2; j++) {
            const uint8_t xh0 = (uint8_t)(((qh >> j) << 4) & 0x10);
            const uint8_t xh1 = (uint8_t)((qh >> (j + 12)) & 0x10);
            const int x0 = (x[i].qs[j] & 0x0F) | xh0;
            const int x1 = (x[i].qs[j] >> 4) | xh1;
            y[i * QK5_1 + j] = (float)x0 * d + m;
            y[i * QK5_1 + j + QK5_1 / 2] = (float)x1 * d + m;
        }
    }
}

void dequantize_row_q8_0(const void *src, float *y, int64_t n) {
    const block_q8_0 *x = src;
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_0; j++) y[i * QK8_0 + j] = (float)x[i].qs[j] * d;
    }
}

/* ggml has no Q8_1 to_float; this is the obvious x = d * q. */
void dequantize_row_q8_1(const void *src, float *y, int64_t n) {
    const block_q8_1 *x = src;
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK8_1; j++) y[i * QK8_1 + j] = (float)x[i].qs[j] * d;
    }
}

/* ---- dot products: exact integer block sums, one float scale per block,
 * blocks accumulated in float in order ---------------------------------- */

float vec_dot_q4_0_q8_0(int64_t n, const void *w, const void *a) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            sumi += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK8_0 / 2];
        }
        sumf += (float)sumi * (h2f(x[i].d) * h2f(y[i].d));
    }
    return sumf;
}

float vec_dot_q4_1_q8_1(int64_t n, const void *w, const void *a) {
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    const int64_t nb = n / QK8_1;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            sumi += (x[i].qs[j] & 0x0F) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + QK8_1 / 2];
        }
        sumf += (h2f(x[i].d) * h2f(y[i].d)) * (float)sumi + h2f(x[i].m) * h2f(y[i].s);
    }
    return sumf;
}

float vec_dot_q5_0_q8_0(int64_t n, const void *w, const void *a) {
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        int sumi = 0;
        for (int j = 0; j < QK8_0 / 2; j++) {
            const int xh0 = ((qh >> j) << 4) & 0x10;
            const int xh1 = (qh >> (j + 12)) & 0x10;
            sumi += (((x[i].qs[j] & 0x0F) | xh0) - 16) * y[i].qs[j];
            sumi += (((x[i].qs[j] >> 4) | xh1) - 16) * y[i].qs[j + QK8_0 / 2];
        }
        sumf += (float)sumi * (h2f(x[i].d) * h2f(y[i].d));
    }
    return sumf;
}

float vec_dot_q5_1_q8_1(int64_t n, const void *w, const void *a) {
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    const int64_t nb = n / QK8_1;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        int sumi = 0;
        for (int j = 0; j < QK8_1 / 2; j++) {
            const int xh0 = ((qh >> j) << 4) & 0x10;
            const int xh1 = (qh >> (j + 12)) & 0x10;
            sumi += ((x[i].qs[j] & 0x0F) | xh0) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) | xh1) * y[i].qs[j + QK8_1 / 2];
        }
        sumf += (h2f(x[i].d) * h2f(y[i].d)) * (float)sumi + h2f(x[i].m) * h2f(y[i].s);
    }
    return sumf;
}

float vec_dot_q8_0_q8_0(int64_t n, const void *w, const void *a) {
    const block_q8_0 *x = w;
    const block_q8_0 *y = a;
    const int64_t nb = n / QK8_0;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sumf += (float)sumi * (h2f(x[i].d) * h2f(y[i].d));
    }
    return sumf;
}
