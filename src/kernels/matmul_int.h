/*
 * matmul_int.h - private to kernels/: the matmul dispatch table. A gemm
 * kernel computes, for every activation row r in [0, n_rows) and output
 * column o in [o0, o1), y[r*ldy + o] = dot(W row o, xq row r), where xq holds
 * the activations already converted to w->act_type, xq_stride bytes apart.
 * One table per cpu level; entries a level lacks fall back to the level below
 * (scalar last, which covers every supported type).
 */
#ifndef KERNELS_MATMUL_INT_H
#define KERNELS_MATMUL_INT_H

#include "base/dtype.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"

typedef void (*mm_gemm_fn)(const mm_weight *w, const void *xq, size_t xq_stride, int64_t n_rows,
                           float *y, int64_t ldy, int64_t o0, int64_t o1);

/* Converts one activation row of n_in floats into the format the level's
 * gemm for weight type `type` reads (the reference: quant_vec_dot_type). */
typedef void (*mm_act_fn)(enum dtype type, const float *x, void *dst, int64_t n_in);
/* Converts rows [r0, r1) of the n_rows rows at x into xq in a layout of the
 * level's own that may interleave rows (all n_rows rows fit in n_rows x
 * stride bytes; no two rows write the same byte, so threads may convert
 * different rows at once). Used instead of mm_act_fn when set. */
typedef void (*mm_act_rows_fn)(enum dtype type, const float *x, int64_t n_in, uint8_t *xq, size_t stride,
                               int64_t n_rows, int64_t r0, int64_t r1);
/* Bytes of one converted row (0: the type is not handled). */
typedef size_t (*mm_act_bytes_fn)(enum dtype type, int64_t n_in);

typedef struct mm_kernels {
    mm_gemm_fn gemm[DTYPE_COUNT];
    mm_act_fn act[DTYPE_COUNT];
    mm_act_rows_fn act_rows[DTYPE_COUNT]; /* NULL: act, row by row */
    mm_act_bytes_fn act_bytes[DTYPE_COUNT];
    /* Output columns per work chunk a kernel prefers (0: the default). */
    int64_t chunk[DTYPE_COUNT];
    /* 1: the level's gemm reads this type in the X16 layout natively
     * (mm_weights_repack permutes only these; on other levels an X16
     * weight would go to the plain-C reference). */
    uint8_t x16[DTYPE_COUNT];
    /* A faster mm_x16_pack for whole groups of 16 rows (NULL: plain C). */
    void (*x16_pack[DTYPE_COUNT])(const mm_weight *w, int64_t o, int64_t b0, int64_t n_blocks, uint8_t *dst);
} mm_kernels;

/* The reference gemm (gemm_scalar.c): any supported type, any layout, with
 * activations in the reference formats (quant_vec_dot_type). */
void mm_gemm_ref(const mm_weight *w, const void *xq, size_t xq_stride, int64_t n_rows, float *y, int64_t ldy,
                 int64_t o0, int64_t o1);

/* Fill in the entries each level provides (defined in gemm_<level>.c). */
void mm_kernels_fill_scalar(mm_kernels *k);
void mm_kernels_fill_avx2(mm_kernels *k);
void mm_kernels_fill_avx512(mm_kernels *k);
void mm_kernels_fill_k_avx512(mm_kernels *k); /* Q4_K, Q6_K (gemm_k_avx512.c) */
void mm_kernels_fill_k_avx2(mm_kernels *k);   /* Q2_K..Q6_K (gemm_k_avx2.c) */
void mm_kernels_fill_f16_avx512(mm_kernels *k); /* F16 (gemm_f16_avx512.c) */
void mm_kernels_fill_bf16_avx512(mm_kernels *k); /* BF16 with AVX512_BF16 (gemm_bf16_avx512.c) */
/* The AVX2 level's F16 gemm on X16 weights (gemm_f16_avx2.c; activations
 * in fp16 as the reference takes them). */
void mm_gemm_f16_x16_avx2(const mm_weight *w, const void *xq, size_t xq_stride, int64_t n_rows, float *y,
                          int64_t ldy, int64_t o0, int64_t o1);

/* Copies the plain (GGUF-layout) bytes of elements [k0, k0+n) of row o into
 * dst, whatever w's layout; k0 and n are multiples of the block size. */
void mm_weight_get_bytes(const mm_weight *w, int64_t o, int64_t k0, int64_t n, void *dst);

/* 1 if w's type and shape have the X16 layout (Q4_0, Q8_0, F16; n_out % 16 == 0). */
int mm_x16_supported(const mm_weight *w);
/* Packs blocks [b0, b0+n_blocks) of rows [o, o+16) of a PLAIN weight into
 * n_blocks X16 records at dst (rows at or past n_out read as zero). */
void mm_x16_pack(const mm_weight *w, int64_t o, int64_t b0, int64_t n_blocks, uint8_t *dst);

/* The table for a level (built once). */
const mm_kernels *mm_kernels_get(enum cpu_level level);

#endif
