/*
 * quant_int.h - private to the kernels module: the ggml block structs (byte
 * layouts of ggml-common.h, all packed without padding), the per-family
 * entry points behind quant.h's dispatch, and the rounding helper every
 * quantizer shares. Other kernels files (matmul) may use the block structs.
 */
#ifndef KERNELS_QUANT_INT_H
#define KERNELS_QUANT_INT_H

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "kernels/quant.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK4_NL 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct block_q4_0 {
    uint16_t d;            /* fp16 scale */
    uint8_t qs[QK4_0 / 2]; /* elem j: low nibble of qs[j]; elem j+16: high nibble */
} block_q4_0;

typedef struct block_q4_1 {
    uint16_t d, m; /* fp16 scale and min */
    uint8_t qs[QK4_1 / 2];
} block_q4_1;

typedef struct block_q5_0 {
    uint16_t d;
    uint8_t qh[4]; /* uint32 LE: bit j is the 5th bit of elem j */
    uint8_t qs[QK5_0 / 2];
} block_q5_0;

typedef struct block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;

typedef struct block_q8_0 {
    uint16_t d;
    int8_t qs[QK8_0];
} block_q8_0;

typedef struct block_q8_1 {
    uint16_t d, s; /* s = d * sum(qs), fp16 */
    int8_t qs[QK8_1];
} block_q8_1;

typedef struct block_q2_K {
    uint8_t scales[QK_K / 16]; /* low nibble scale, high nibble min */
    uint8_t qs[QK_K / 4];
    uint16_t d, dmin;
} block_q2_K;

typedef struct block_q3_K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12]; /* 16 scales of 6 bits */
    uint16_t d;
} block_q3_K;

typedef struct block_q4_K {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 scales + 8 mins of 6 bits */
    uint8_t qs[QK_K / 2];
} block_q4_K;

typedef struct block_q5_K {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

typedef struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} block_q6_K;

typedef struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sum of each 16 quants */
} block_q8_K;

typedef struct block_iq4_nl {
    uint16_t d;
    uint8_t qs[QK4_NL / 2];
} block_iq4_nl;

typedef struct block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} block_iq4_xs;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 block");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K block");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K block");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K block");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K block");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K block");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K block");
_Static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl block");
_Static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs block");

/* The 16 IQ4_NL / IQ4_XS levels. */
extern const int8_t quant_kvalues_iq4nl[16];

/* Round to nearest, ties to even, via the float magic number trick ggml uses
 * (exact for |f| <= 4194303; beyond that, and for inf, it returns ggml's
 * wrapped value, which the Q8_K quantizers reproduce). */
static inline int quant_nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

/* Per type: n elements (whole blocks). Dequantizers write n floats; reference
 * quantizers write n / block_size blocks; vec_dot takes a weight row and an
 * activation row in the type's vec_dot_type. */
#define QUANT_FAMILY(X)                                                                            \
    X(q4_0)                                                                                        \
    X(q4_1) X(q5_0) X(q5_1) X(q8_0) X(q8_1) X(q2_K) X(q3_K) X(q4_K) X(q5_K) X(q6_K) X(q8_K)        \
        X(iq4_nl) X(iq4_xs)
#define QUANT_DECLARE(t)                                                                           \
    void dequantize_row_##t(const void *src, float *dst, int64_t n);                               \
    void quantize_row_##t##_ref(const float *src, void *dst, int64_t n);
QUANT_FAMILY(QUANT_DECLARE)
#undef QUANT_DECLARE

float vec_dot_q4_0_q8_0(int64_t n, const void *w, const void *a);
float vec_dot_q4_1_q8_1(int64_t n, const void *w, const void *a);
float vec_dot_q5_0_q8_0(int64_t n, const void *w, const void *a);
float vec_dot_q5_1_q8_1(int64_t n, const void *w, const void *a);
float vec_dot_q8_0_q8_0(int64_t n, const void *w, const void *a);
float vec_dot_q2_K_q8_K(int64_t n, const void *w, const void *a);
float vec_dot_q3_K_q8_K(int64_t n, const void *w, const void *a);
float vec_dot_q4_K_q8_K(int64_t n, const void *w, const void *a);
float vec_dot_q5_K_q8_K(int64_t n, const void *w, const void *a);
float vec_dot_q6_K_q8_K(int64_t n, const void *w, const void *a);
float vec_dot_iq4_nl_q8_0(int64_t n, const void *w, const void *a);
float vec_dot_iq4_xs_q8_K(int64_t n, const void *w, const void *a);

/* IQ4_NL as llama-quantize writes it (scale search, ntry = 7), one row. */
void quantize_row_iq4_nl_search(const float *src, void *dst, int64_t n);
/* ggml-cpu's x86 activation quantizers: amax / 127 scale, ties to even. */
void quantize_row_q8_0_act(const float *src, void *dst, int64_t n);
void quantize_row_q8_1_act(const float *src, void *dst, int64_t n);
/* The same, vectorised (quant_act_avx2.c / quant_act_avx512.c); byte-identical
 * to the scalar versions (and Q8_K to quantize_row_q8_K_ref). Only call them
 * when cpu_level() allows. */
void quantize_row_q8_0_act_avx2(const float *src, void *dst, int64_t n);
void quantize_row_q8_1_act_avx2(const float *src, void *dst, int64_t n);
void quantize_row_q8_K_avx2(const float *src, void *dst, int64_t n);
void quantize_row_q8_0_act_avx512(const float *src, void *dst, int64_t n);
void quantize_row_q8_1_act_avx512(const float *src, void *dst, int64_t n);
void quantize_row_q8_K_avx512(const float *src, void *dst, int64_t n);

#endif
