/*
 * quant.c - the weight-type dispatch of quant.h, plus the element types
 * (f32, f16, bf16): half/bfloat conversions written bit for bit as ggml's,
 * row conversions and their dot products. The block types live in
 * quant_legacy.c (Q4_0..Q8_1), quant_k.c (K-quants) and quant_iq.c (IQ4).
 */
#include "kernels/quant.h"

#include <math.h>
#include <string.h>

#include "inferd.h"
#include "kernels/cpu.h"
#include "kernels/quant_int.h"

typedef void (*to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*from_float_fn)(const float *src, void *dst, int64_t n);
typedef float (*vec_dot_fn)(int64_t n, const void *w, const void *a);

typedef struct quant_traits {
    to_float_fn to_float;
    from_float_fn from_float_ref;
    vec_dot_fn vec_dot;
    enum dtype vec_dot_type;
} quant_traits;

static void f32_to_float(const void *src, float *dst, int64_t n);
static void f32_from_float(const float *src, void *dst, int64_t n);
static void f16_to_float(const void *src, float *dst, int64_t n);
static void f16_from_float(const float *src, void *dst, int64_t n);
static void bf16_to_float(const void *src, float *dst, int64_t n);
static void bf16_from_float(const float *src, void *dst, int64_t n);
static float vec_dot_f32(int64_t n, const void *w, const void *a);
static float vec_dot_f16(int64_t n, const void *w, const void *a);
static float vec_dot_bf16(int64_t n, const void *w, const void *a);

static const quant_traits traits[DTYPE_COUNT] = {
    [DTYPE_F32] = {f32_to_float, f32_from_float, vec_dot_f32, DTYPE_F32},
    [DTYPE_F16] = {f16_to_float, f16_from_float, vec_dot_f16, DTYPE_F16},
    [DTYPE_BF16] = {bf16_to_float, bf16_from_float, vec_dot_bf16, DTYPE_BF16},
    [DTYPE_Q4_0] = {dequantize_row_q4_0, quantize_row_q4_0_ref, vec_dot_q4_0_q8_0, DTYPE_Q8_0},
    [DTYPE_Q4_1] = {dequantize_row_q4_1, quantize_row_q4_1_ref, vec_dot_q4_1_q8_1, DTYPE_Q8_1},
    [DTYPE_Q5_0] = {dequantize_row_q5_0, quantize_row_q5_0_ref, vec_dot_q5_0_q8_0, DTYPE_Q8_0},
    [DTYPE_Q5_1] = {dequantize_row_q5_1, quantize_row_q5_1_ref, vec_dot_q5_1_q8_1, DTYPE_Q8_1},
    [DTYPE_Q8_0] = {dequantize_row_q8_0, quantize_row_q8_0_ref, vec_dot_q8_0_q8_0, DTYPE_Q8_0},
    [DTYPE_Q8_1] = {dequantize_row_q8_1, quantize_row_q8_1_ref, NULL, DTYPE_Q8_1},
    [DTYPE_Q2_K] = {dequantize_row_q2_K, quantize_row_q2_K_ref, vec_dot_q2_K_q8_K, DTYPE_Q8_K},
    [DTYPE_Q3_K] = {dequantize_row_q3_K, quantize_row_q3_K_ref, vec_dot_q3_K_q8_K, DTYPE_Q8_K},
    [DTYPE_Q4_K] = {dequantize_row_q4_K, quantize_row_q4_K_ref, vec_dot_q4_K_q8_K, DTYPE_Q8_K},
    [DTYPE_Q5_K] = {dequantize_row_q5_K, quantize_row_q5_K_ref, vec_dot_q5_K_q8_K, DTYPE_Q8_K},
    [DTYPE_Q6_K] = {dequantize_row_q6_K, quantize_row_q6_K_ref, vec_dot_q6_K_q8_K, DTYPE_Q8_K},
    [DTYPE_Q8_K] = {dequantize_row_q8_K, quantize_row_q8_K_ref, NULL, DTYPE_Q8_K},
    [DTYPE_IQ4_NL] = {dequantize_row_iq4_nl, quantize_row_iq4_nl_ref, vec_dot_iq4_nl_q8_0,
                      DTYPE_Q8_0},
    [DTYPE_IQ4_XS] = {dequantize_row_iq4_xs, quantize_row_iq4_xs_ref, vec_dot_iq4_xs_q8_K,
                      DTYPE_Q8_K},
};

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* ggml_compute_fp16_to_fp32: exact, so any correct method agrees; this one
 * rebuilds normals by exponent shift and subnormals by a magic subtraction. */
float fp16_to_f32(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const uint32_t exp_offset = 0xE0u << 23;
    const float exp_scale = f32_from_bits(0x07800000u); /* 2^-112 */
    const float normalized = f32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
    const uint32_t magic_mask = 126u << 23;
    const float denormalized = f32_from_bits((two_w >> 17) | magic_mask) - 0.5f;
    const uint32_t denormalized_cutoff = 1u << 27;
    return f32_from_bits(
        sign | (two_w < denormalized_cutoff ? f32_bits(denormalized) : f32_bits(normalized)));
}

/* ggml_compute_fp32_to_fp16: round to nearest even through float arithmetic
 * (the scale_to_inf / scale_to_zero trick); NaN becomes 0x7E00 | sign. */
uint16_t f32_to_fp16(float f) {
    const float scale_to_inf = f32_from_bits(0x77800000u);
    const float scale_to_zero = f32_from_bits(0x08800000u);
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    const uint32_t w = f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

/* bf16 is the upper half of an f32. */
float bf16_to_f32(uint16_t h) {
    return f32_from_bits((uint32_t)h << 16);
}

/* Round to nearest even; NaN is kept and forced quiet (ggml_compute_fp32_to_bf16). */
uint16_t f32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

/* Returns 1 when the traits table has an entry for t. */
int quant_supported(enum dtype t) {
    return (unsigned)t < DTYPE_COUNT && traits[t].to_float != NULL;
}

/* Dispatches to the type's dequantizer; unsupported types leave dst alone. */
void dequantize_row(enum dtype t, const void *src, float *dst, int64_t n) {
    if (!quant_supported(t)) return;
    traits[t].to_float(src, dst, n);
}

/* Dispatches to the type's reference quantizer after checking t and n. */
int quantize_row_ref(enum dtype t, const float *src, void *dst, int64_t n) {
    if (!quant_supported(t) || n < 0) return INFERD_EINVAL;
    const dtype_info *info = dtype_get(t);
    if (n % info->block_size != 0) return INFERD_EINVAL;
    traits[t].from_float_ref(src, dst, n);
    return 0;
}

/* ggml_quantize_chunk without an imatrix: row by row, the reference
 * quantizer for every type except IQ4_NL, which searches scales. */
size_t quantize_rows(enum dtype t, const float *src, void *dst, int64_t n_rows, int64_t n_per_row) {
    if (!quant_supported(t) || n_rows < 0 || n_per_row < 0) return 0;
    const dtype_info *info = dtype_get(t);
    if (n_per_row % info->block_size != 0) return 0;
    const size_t row_bytes = (size_t)(n_per_row / info->block_size) * info->type_size;
    uint8_t *out = dst;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *row = src + r * n_per_row;
        if (t == DTYPE_IQ4_NL)
            quantize_row_iq4_nl_search(row, out, n_per_row);
        else
            traits[t].from_float_ref(row, out, n_per_row);
        out += row_bytes;
    }
    return (size_t)n_rows * row_bytes;
}

/* The activation format of t's dot product; F32 for anything unknown. */
enum dtype quant_vec_dot_type(enum dtype t) {
    if (!quant_supported(t)) return DTYPE_F32;
    return traits[t].vec_dot_type;
}

/* The activation quantizers per dispatch level (cpu.h); every entry writes
 * the same bytes. */
static const from_float_fn act_q8_0[CPU_LEVEL_COUNT] = {
    quantize_row_q8_0_act, quantize_row_q8_0_act_avx2, quantize_row_q8_0_act_avx512};
static const from_float_fn act_q8_1[CPU_LEVEL_COUNT] = {
    quantize_row_q8_1_act, quantize_row_q8_1_act_avx2, quantize_row_q8_1_act_avx512};
static const from_float_fn act_q8_K[CPU_LEVEL_COUNT] = {
    quantize_row_q8_K_ref, quantize_row_q8_K_avx2, quantize_row_q8_K_avx512};

/* ggml-cpu's from_float per activation format: Q8_0 and Q8_1 take the x86
 * SIMD algorithm (scalar C at CPU_SCALAR), Q8_K the reference; the SIMD
 * level is cpu_level()'s. */
void quantize_row_act(enum dtype vdt, const float *x, void *y, int64_t n) {
    const enum cpu_level lv = cpu_level();
    switch (vdt) {
    case DTYPE_Q8_0:
        act_q8_0[lv](x, y, n);
        break;
    case DTYPE_Q8_1:
        act_q8_1[lv](x, y, n);
        break;
    case DTYPE_Q8_K:
        act_q8_K[lv](x, y, n);
        break;
    case DTYPE_F16:
        f16_from_float(x, y, n);
        break;
    case DTYPE_BF16:
        bf16_from_float(x, y, n);
        break;
    case DTYPE_F32:
        f32_from_float(x, y, n);
        break;
    default:
        break;
    }
}

/* Dispatches to the type's plain-C dot product; 0 for unsupported types. */
float vec_dot_ref(enum dtype t, int64_t n, const void *w_row, const void *act_row) {
    if (!quant_supported(t) || traits[t].vec_dot == NULL) return 0.0f;
    return traits[t].vec_dot(n, w_row, act_row);
}

static void f32_to_float(const void *src, float *dst, int64_t n) {
    memmove(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_float(const float *src, void *dst, int64_t n) {
    memmove(dst, src, (size_t)n * sizeof(float));
}

static void f16_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_f32(h);
    }
}

static void f16_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = f32_to_fp16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
    }
}

static void bf16_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

/* The element-type dots accumulate exact products in double (as ggml's
 * generic ggml_vec_dot_f16 does), so they are within one float rounding of
 * the true dot of the stored values. */
static float vec_dot_f32(int64_t n, const void *w, const void *a) {
    const float *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * (double)y[i];
    return (float)sum;
}

static float vec_dot_f16(int64_t n, const void *w, const void *a) {
    const uint8_t *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t hx, hy;
        memcpy(&hx, x + 2 * i, 2);
        memcpy(&hy, y + 2 * i, 2);
        sum += (double)fp16_to_f32(hx) * (double)fp16_to_f32(hy);
    }
    return (float)sum;
}

static float vec_dot_bf16(int64_t n, const void *w, const void *a) {
    const uint8_t *x = w, *y = a;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t hx, hy;
        memcpy(&hx, x + 2 * i, 2);
        memcpy(&hy, y + 2 * i, 2);
        sum += (double)bf16_to_f32(hx) * (double)bf16_to_f32(hy);
    }
    return (float)sum;
}
