/*
 * ops_int.h - private to src/kernels/ops*.c: the AVX-512 versions of the
 * element-wise operations, chosen by ops.c when cpu_level() is CPU_AVX512.
 * Each computes the same formula as the plain-C function of ops.h; they
 * differ only where the plain version calls libm's expf (a polynomial exp of
 * about 2 ulp here) or sums in another order.
 */
#ifndef KERNELS_OPS_INT_H
#define KERNELS_OPS_INT_H

#include <stdint.h>

/* op_rmsnorm: squares summed in double, 16 lanes at a time. */
void op_rmsnorm_avx512(float *y, const float *x, const float *w, uint32_t n, float eps);
/* op_silu_mul with a vector exp. */
void op_silu_mul_avx512(float *y, const float *g, const float *u, uint32_t n);
/* op_add. */
void op_add_avx512(float *y, const float *a, const float *b, uint32_t n);

#endif
