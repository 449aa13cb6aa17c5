/*
 * quant_iq.c - the non-linear 4-bit types IQ4_NL (blocks of 32, one fp16
 * scale) and IQ4_XS (super-blocks of 256 with 6-bit sub-block scales): the
 * table of 16 levels, ggml's quantizer (quantize_row_iq4_nl_impl: a weighted
 * scale search, done in float in ggml's order), dequantizers and plain-C
 * dot products against Q8_0 / Q8_K.
 */
#include <math.h>

#include "kernels/quant_int.h"

#define GROUP_MAX_EPS 1e-15f
#define MAX_I(a, b) ((a) > (b) ? (a) : (b))
#define MIN_I(a, b) ((a) < (b) ? (a) : (b))

const int8_t quant_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};

static inline float h2f(uint16_t h) {
    return fp16_to_f32(h);
}

/* The levels as floats (exact), for the comparisons of best_index. */
static const float kvalues_f[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

/* Index of the level nearest x (ties go up), exactly as ggml's binary
 * search best_index_int8 decides it: that search ends with val[mu-1] <= x <
 * val[mu], and mu is the count of levels 0..14 not above x, which is
 * counted here without branches (the search mispredicts on random data).
 * NaN compares false everywhere and gets 15, as in ggml. */
static inline int best_index(float x) {
    const float *val = kvalues_f;
    if (x <= val[0]) return 0;
    if (x >= val[15]) return 15;
    int mu = 0;
    for (int i = 0; i < 15; i++) mu += val[i] <= x;
    if (mu == 0) return 15;
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

/* One super-block of super_size elements in sub-blocks of 32 (no importance
 * matrix: weights x^2). ntry > 0 searches 2*ntry+1 scales around the
 * extreme; ntry = -1 (the reference quantizer) takes max / values[0] and the
 * least-squares refit only. With one sub-block (IQ4_NL) the scale goes to
 * *dh directly; with several (IQ4_XS) they are quantized to 6 bits. */
static void iq4_impl(int super_size, const float *x, uint16_t *dh, uint8_t *q4, uint16_t *scales_h,
                     uint8_t *scales_l, int ntry) {
    const int8_t *values = quant_kvalues_iq4nl;
    const int block_size = 32;
    float scales[QK_K / 32], weight[32];
    uint8_t L[QK_K];

    dh[0] = f32_to_fp16(0.f);
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < super_size / block_size; ib++) {
        const float *xb = x + ib * block_size;
        uint8_t *Lb = L + ib * block_size;
        for (int j = 0; j < block_size; j++) weight[j] = xb[j] * xb[j];
        float amax = 0, max = 0;
        for (int j = 0; j < block_size; j++) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            /* ggml leaves Lb unwritten here; the level nearest 0 is what its
             * search path ends up writing, so both paths write that. */
            scales[ib] = 0;
            memset(Lb, 8, (size_t)block_size);
            continue;
        }
        float d = ntry > 0 ? -max / values[0] : max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < block_size; j++) {
            const float al = id * xb[j];
            const int l = best_index(al);
            Lb[j] = (uint8_t)l;
            const float q = values[l];
            const float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        for (int itry = -ntry; itry <= ntry; itry++) {
            id = ((float)itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < block_size; j++) {
                const float al = id * xb[j];
                const int l = best_index(al);
                const float q = values[l];
                const float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        const float abs_d = fabsf(d);
        if (abs_d > amax_scale) {
            amax_scale = abs_d;
            max_scale = d;
        }
    }

    if (super_size / block_size > 1) {
        const int nb = super_size / block_size;
        memset(scales_h, 0, (size_t)((nb + 7) / 8) * sizeof(uint16_t));
        const float d = -max_scale / 32;
        dh[0] = f32_to_fp16(d);
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < nb; ib++) {
            int l = quant_nearest_int(id * scales[ib]);
            l = MAX_I(-32, MIN_I(31, l));
            const float dl = d * (float)l;
            const float idl = dl ? 1 / dl : 0.f;
            uint8_t *Lb = L + ib * block_size;
            const float *xb = x + ib * block_size;
            for (int j = 0; j < block_size; j++) Lb[j] = (uint8_t)best_index(idl * xb[j]);
            l += 32;
            const uint8_t l_l = (uint8_t)(l & 0xf), l_h = (uint8_t)(l >> 4);
            if (ib % 2 == 0)
                scales_l[ib / 2] = l_l;
            else
                scales_l[ib / 2] |= (uint8_t)(l_l << 4);
            scales_h[ib / 8] |= (uint16_t)(l_h << 2 * (ib % 8));
        }
    } else {
        dh[0] = f32_to_fp16(scales[0]);
        if (ntry > 0) {
            const float id = scales[0] ? 1 / scales[0] : 0;
            for (int j = 0; j < super_size; j++) L[j] = (uint8_t)best_index(id * x[j]);
        }
    }
    for (int i = 0; i < super_size / 32; i++)
        for (int j = 0; j < 16; j++)
            q4[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

void quantize_row_iq4_nl_ref(const float *x, void *dst, int64_t n) {
    block_iq4_nl *y = dst;
    uint16_t unused_h;
    for (int64_t i = 0; i < n / QK4_NL; i++)
        iq4_impl(QK4_NL, x + QK4_NL * i, &y[i].d, y[i].qs, &unused_h, NULL, -1);
}

void quantize_row_iq4_nl_search(const float *x, void *dst, int64_t n) {
    block_iq4_nl *y = dst;
    uint16_t unused_h;
    for (int64_t i = 0; i < n / QK4_NL; i++)
        iq4_impl(QK4_NL, x + QK4_NL * i, &y[i].d, y[i].qs, &unused_h, NULL, 7);
}

/* ggml's reference and llama-quantize agree for IQ4_XS (both ntry = 7). */
void quantize_row_iq4_xs_ref(const float *x, void *dst, int64_t n) {
    block_iq4_xs *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++) {
        iq4_impl(QK_K, x + QK_K * i, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l, 7);
    }
}

void dequantize_row_iq4_nl(const void *src, float *y, int64_t n) {
    const block_iq4_nl *x = src;
    for (int64_t i = 0; i < n / QK4_NL; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j] = d * (float)quant_kvalues_iq4nl[x[i].qs[j] & 0xf];
            y[j + QK4_NL / 2] = d * (float)quant_kvalues_iq4nl[x[i].qs[j] >> 4];
        }
        y += QK4_NL;
    }
}

void dequantize_row_iq4_xs(const void *src, float *y, int64_t n) {
    const block_iq4_xs *x = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *qs = x[i].qs;
        const float d = h2f(x[i].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j + 0] = dl * (float)quant_kvalues_iq4nl[qs[j] & 0xf];
                y[j + 16] = dl * (float)quant_kvalues_iq4nl[qs[j] >> 4];
            }
            y += 32;
            qs += 16;
        }
    }
}

float vec_dot_iq4_nl_q8_0(int64_t n, const void *w, const void *a) {
    const block_iq4_nl *x = w;
    const block_q8_0 *y = a;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK4_NL; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_NL / 2; j++) {
            sumi += y[i].qs[j] * quant_kvalues_iq4nl[x[i].qs[j] & 0xf];
            sumi += y[i].qs[j + QK4_NL / 2] * quant_kvalues_iq4nl[x[i].qs[j] >> 4];
        }
        sumf += (h2f(x[i].d) * h2f(y[i].d)) * (float)sumi;
    }
    return sumf;
}

float vec_dot_iq4_xs_q8_K(int64_t n, const void *w, const void *a) {
    const block_iq4_xs *x = w;
    const block_q8_K *y = a;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *qs = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (((x[i].scales_h >> 2 * ib) & 3) << 4);
            int s = 0;
            for (int j = 0; j < 16; j++) {
                s += q8[j] * quant_kvalues_iq4nl[qs[j] & 0xf];
                s += q8[j + 16] * quant_kvalues_iq4nl[qs[j] >> 4];
            }
            isum += (ls - 32) * s;
            qs += 16;
            q8 += 32;
        }
        sumf += (h2f(x[i].d) * y[i].d) * (float)isum;
    }
    return sumf;
}
