/*
 * ops.c - RMSNorm, rope, SiLU, softmax, add (see ops.h). Each follows the
 * formula and accumulation types of ggml-cpu's scalar path; the model calls
 * them per token row from the forward pass's worker threads. RMSNorm, SiLU
 * and add go to their AVX-512 versions (ops_avx512.c) when cpu_level() is
 * CPU_AVX512.
 */
#include "kernels/ops.h"

#include <math.h>

#include "kernels/cpu.h"
#include "kernels/ops_int.h"

void op_rmsnorm(float *y, const float *x, const float *w, uint32_t n, float eps) {
    if (cpu_level() >= CPU_AVX512) {
        op_rmsnorm_avx512(y, x, w, n, eps);
        return;
    }
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) {
        for (uint32_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    } else {
        for (uint32_t i = 0; i < n; i++) y[i] = x[i] * scale;
    }
}

static float yarn_corr_dim(uint32_t n_dims, uint32_t n_ctx_orig, float n_rot, float base) {
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2 * (float)M_PI)) /
           (2 * logf(base));
}

void op_rope_yarn_corr_dims(uint32_t n_rot, uint32_t n_ctx_orig, float freq_base,
                            float beta_fast, float beta_slow, float dims[2]) {
    float start = floorf(yarn_corr_dim(n_rot, n_ctx_orig, beta_fast, freq_base));
    float end = ceilf(yarn_corr_dim(n_rot, n_ctx_orig, beta_slow, freq_base));
    dims[0] = start > 0 ? start : 0;
    dims[1] = end < (float)(n_rot - 1) ? end : (float)(n_rot - 1);
}

static float yarn_ramp(float low, float high, uint32_t i0) {
    const float y = ((float)(i0 / 2) - low) / fmaxf(0.001f, high - low);
    return 1 - fminf(1, fmaxf(0, y));
}

void op_rope_cache(const op_rope_params *p, int32_t pos, float *cache) {
    const float theta_scale = powf(p->freq_base, -2.0f / (float)p->n_rot);
    float theta = (float)pos;
    for (uint32_t i0 = 0; i0 < p->n_rot; i0 += 2) {
        const float ff = p->freq_factors ? p->freq_factors[i0 / 2] : 1.0f;
        const float theta_extrap = theta / ff;
        const float theta_interp = p->freq_scale * theta_extrap;
        float th = theta_interp;
        float mscale = p->attn_factor;
        if (p->ext_factor != 0.0f) {
            const float mix = yarn_ramp(p->corr_dims[0], p->corr_dims[1], i0) * p->ext_factor;
            th = theta_interp * (1 - mix) + theta_extrap * mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / p->freq_scale);
        }
        cache[i0 + 0] = cosf(th) * mscale;
        cache[i0 + 1] = sinf(th) * mscale;
        theta *= theta_scale;
    }
}

void op_rope_apply(float *x, uint32_t n_head, uint32_t head_dim, uint32_t n_rot, int mode,
                   const float *cache) {
    for (uint32_t h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * head_dim;
        if (mode == OP_ROPE_NEOX) {
            const uint32_t half = n_rot / 2;
            for (uint32_t i0 = 0; i0 < n_rot; i0 += 2) {
                const uint32_t ic = i0 / 2;
                const float c = cache[i0], s = cache[i0 + 1];
                const float x0 = v[ic], x1 = v[ic + half];
                v[ic] = x0 * c - x1 * s;
                v[ic + half] = x0 * s + x1 * c;
            }
        } else {
            for (uint32_t i0 = 0; i0 < n_rot; i0 += 2) {
                const float c = cache[i0], s = cache[i0 + 1];
                const float x0 = v[i0], x1 = v[i0 + 1];
                v[i0] = x0 * c - x1 * s;
                v[i0 + 1] = x0 * s + x1 * c;
            }
        }
    }
}

float op_silu(float x) {
    return x / (1.0f + expf(-x));
}

void op_silu_mul(float *y, const float *g, const float *u, uint32_t n) {
    if (cpu_level() >= CPU_AVX512) {
        op_silu_mul_avx512(y, g, u, n);
        return;
    }
    for (uint32_t i = 0; i < n; i++) y[i] = op_silu(g[i]) * u[i];
}

void op_softmax(float *x, uint32_t n, float scale) {
    float max = -INFINITY;
    for (uint32_t i = 0; i < n; i++) {
        x[i] *= scale;
        if (x[i] > max) max = x[i];
    }
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (uint32_t i = 0; i < n; i++) x[i] *= inv;
}

void op_add(float *y, const float *a, const float *b, uint32_t n) {
    if (cpu_level() >= CPU_AVX512) {
        op_add_avx512(y, a, b, n);
        return;
    }
    for (uint32_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}
