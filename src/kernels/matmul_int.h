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

typedef struct mm_kernels {
    mm_gemm_fn gemm[DTYPE_COUNT];
    /* Output columns per work chunk a kernel prefers (0: the default). */
    int64_t chunk[DTYPE_COUNT];
} mm_kernels;

/* Fill in the entries each level provides (defined in gemm_<level>.c). */
void mm_kernels_fill_scalar(mm_kernels *k);
void mm_kernels_fill_avx2(mm_kernels *k);
void mm_kernels_fill_avx512(mm_kernels *k);

/* f32 -> IEEE half, round to nearest even (activations of F16 weights). */
void mm_f32_to_f16_row(const float *x, void *dst, int64_t n);

/* The table for a level (built once). */
const mm_kernels *mm_kernels_get(enum cpu_level level);

#endif
