/*
 * ops.h - the element-wise and per-row operations of a llama forward pass:
 * RMSNorm, rotary position embedding (normal / NEOX, linear and YaRN scaling,
 * frequency factors), SiLU-gated product, softmax and add. Plain C, written
 * to follow ggml-cpu's arithmetic (same formulas, same accumulation types) so
 * that F32 logits stay within ~1e-5 of llama.cpp's.
 *
 * Used by src/model/ (forward) and src/kernels/attention.c (softmax).
 */
#ifndef KERNELS_OPS_H
#define KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

/* y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], i < n (w may be NULL: no
 * weight). As ggml: squares summed in double, the scale in float, then the
 * weight multiplied separately. y may equal x. */
void op_rmsnorm(float *y, const float *x, const float *w, uint32_t n, float eps);

enum op_rope_mode {
    OP_ROPE_NORM = 0, /* rotate (x[2i], x[2i+1]) */
    OP_ROPE_NEOX = 2, /* rotate (x[i], x[i + n_rot/2]) */
};

/* Rotary embedding parameters as ggml_rope_ext takes them. */
typedef struct op_rope_params {
    uint32_t n_rot;            /* rotated dimensions (even, <= head_dim) */
    int mode;                  /* enum op_rope_mode */
    float freq_base;           /* theta base, e.g. 10000 */
    float freq_scale;          /* 1 / scaling factor (linear, yarn); 1 = none */
    float ext_factor;          /* YaRN extrapolation mix; 0 = off */
    float attn_factor;         /* magnitude scale of cos/sin (YaRN mscale), 1 */
    float corr_dims[2];        /* from op_rope_yarn_corr_dims (used when ext_factor != 0) */
    const float *freq_factors; /* (n_rot / 2) divisors of theta, or NULL */
} op_rope_params;

/* ggml_rope_yarn_corr_dims: the dimension range [dims[0], dims[1]] over which
 * YaRN blends interpolation and extrapolation. */
void op_rope_yarn_corr_dims(uint32_t n_rot, uint32_t n_ctx_orig, float freq_base,
                            float beta_fast, float beta_slow, float dims[2]);

/* Fills cache (n_rot floats: cos, sin per rotated pair) for position pos, as
 * ggml_rope_cache_init (theta advanced by repeated multiplication). */
void op_rope_cache(const op_rope_params *p, int32_t pos, float *cache);

/* Rotates n_head vectors of head_dim floats at x (contiguous) in place, using
 * a cache from op_rope_cache; dimensions at and above n_rot are untouched. */
void op_rope_apply(float *x, uint32_t n_head, uint32_t head_dim, uint32_t n_rot, int mode,
                   const float *cache);

/* ggml's SiLU: x / (1 + exp(-x)). */
float op_silu(float x);

/* y[i] = silu(g[i]) * u[i], i < n. y may equal g or u. */
void op_silu_mul(float *y, const float *g, const float *u, uint32_t n);

/* In-place softmax of x[0..n) after multiplying by scale: exponentials in
 * float, their sum in double, as ggml_soft_max. n >= 1. */
void op_softmax(float *x, uint32_t n, float scale);

/* y[i] = a[i] + b[i], i < n. y may equal a or b. */
void op_add(float *y, const float *a, const float *b, uint32_t n);

#endif
