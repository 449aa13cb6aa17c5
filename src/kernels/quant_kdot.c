/*
 * quant_kdot.c - plain-C dot products of K-quant weight rows (Q2_K..Q6_K)
 * with Q8_K activation rows. Each super-block's quants are multiplied and
 * summed exactly in integers with their 4/6/8-bit sub-block scales (as
 * ggml's SIMD kernels do), then scaled once by d(weight) * d(activation);
 * super-blocks are accumulated in float in order. The reference the matmul
 * kernels are tested against.
 */
#include "kernels/quant_int.h"

static inline float h2f(uint16_t h) {
    return fp16_to_f32(h);
}

float vec_dot_q2_K_q8_K(int64_t n, const void *w, const void *a) {
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q2 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        const uint8_t *sc = x[i].scales;
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (sc[j] >> 4);
        const float dall = y[i].d * h2f(x[i].d);
        const float dmin = y[i].d * h2f(x[i].dmin);
        int isum = 0, is = 0;
        for (int k = 0; k < QK_K / 128; k++) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                int d = sc[is++] & 0xF, isuml = 0;
                for (int l = 0; l < 16; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                d = sc[is++] & 0xF;
                isuml = 0;
                for (int l = 16; l < 32; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                shift += 2;
                q8 += 32;
            }
            q2 += 32;
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

float vec_dot_q3_K_q8_K(int64_t n, const void *w, const void *a) {
    const block_q3_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q3 = x[i].qs, *hm = x[i].hmask;
        const int8_t *q8 = y[i].qs;
        int isum = 0, is = 0;
        uint8_t m = 1;
        for (int k = 0; k < QK_K / 128; k++) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                for (int half = 0; half < 2; half++) {
                    /* the 6-bit scale, as in dequantize_row_q3_K */
                    const uint8_t *s = x[i].scales;
                    int sc = is < 8 ? s[is] & 0xF : s[is - 8] >> 4;
                    sc = (sc | (((s[8 + is % 4] >> (2 * (is / 4))) & 3) << 4)) - 32;
                    is++;
                    int isuml = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        const int q = ((q3[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        isuml += q8[l] * q;
                    }
                    isum += sc * isuml;
                }
                shift += 2;
                m = (uint8_t)(m << 1);
                q8 += 32;
            }
            q3 += 32;
        }
        sumf += (h2f(x[i].d) * y[i].d) * (float)isum;
    }
    return sumf;
}

/* Q4_K and Q5_K share the 6-bit scale/min packing. */
static inline void scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

float vec_dot_q4_K_q8_K(int64_t n, const void *w, const void *a) {
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0, summs = 0;
        for (int j = 0; j < QK_K / 64; j++) {
            int sc0, m0, sc1, m1;
            scale_min_k4(2 * j, x[i].scales, &sc0, &m0);
            scale_min_k4(2 * j + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q4[l] & 0xF) * q8[l];
                s1 += (q4[l] >> 4) * q8[l + 32];
            }
            isum += sc0 * s0 + sc1 * s1;
            summs += m0 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]);
            summs += m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
            q4 += 32;
            q8 += 64;
        }
        const float d = y[i].d * h2f(x[i].d);
        const float dmin = y[i].d * h2f(x[i].dmin);
        sumf += d * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

float vec_dot_q5_K_q8_K(int64_t n, const void *w, const void *a) {
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int isum = 0, summs = 0;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK_K / 64; j++) {
            int sc0, m0, sc1, m1;
            scale_min_k4(2 * j, x[i].scales, &sc0, &m0);
            scale_min_k4(2 * j + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) * q8[l];
                s1 += ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) * q8[l + 32];
            }
            isum += sc0 * s0 + sc1 * s1;
            summs += m0 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]);
            summs += m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
            ql += 32;
            q8 += 64;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
        const float d = y[i].d * h2f(x[i].d);
        const float dmin = y[i].d * h2f(x[i].dmin);
        sumf += d * (float)isum - dmin * (float)summs;
    }
    return sumf;
}

float vec_dot_q6_K_q8_K(int64_t n, const void *w, const void *a) {
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const int64_t nb = n / QK_K;
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales, *q8 = y[i].qs;
        int isum = 0;
        for (int k = 0; k < QK_K; k += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                isum += sc[is + 0] * q1 * q8[l + 0];
                isum += sc[is + 2] * q2 * q8[l + 32];
                isum += sc[is + 4] * q3 * q8[l + 64];
                isum += sc[is + 6] * q4 * q8[l + 96];
            }
            ql += 64;
            qh += 32;
            sc += 8;
            q8 += 128;
        }
        sumf += (h2f(x[i].d) * y[i].d) * (float)isum;
    }
    return sumf;
}
