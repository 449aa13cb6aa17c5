/*
 * cpu.h - CPU feature detection and the kernel dispatch level. The level is
 * chosen once, at the first call, from CPUID (and the OS's saved-state mask),
 * or forced with INFERD_CPU=scalar|avx2|avx512 (tests, comparisons). Kernel
 * tables (matmul's mm_kernels) are indexed by this level, so each SIMD
 * variant is picked once, never per call.
 *
 *   level        needs
 *   CPU_SCALAR   x86-64 baseline (plain C reference kernels)
 *   CPU_AVX2     AVX2, FMA, F16C
 *   CPU_AVX512   the above and AVX-512 F, BW, VL, DQ, VNNI (BF16 optional)
 */
#ifndef KERNELS_CPU_H
#define KERNELS_CPU_H

#include <stddef.h>

#include "kernels/threadpool.h"

typedef struct cpu_features {
    int avx2, fma, f16c;
    int avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16;
} cpu_features;

enum cpu_level { CPU_SCALAR = 0, CPU_AVX2 = 1, CPU_AVX512 = 2, CPU_LEVEL_COUNT = 3 };

/* The features of this CPU, usable by this OS (detected once; never NULL). */
const cpu_features *cpu_get_features(void);

/* The best level this CPU supports. */
enum cpu_level cpu_best_level(void);

/* The level kernels dispatch on: INFERD_CPU if set and supported (a forced
 * level above the CPU's best is lowered to the best, with a note on stderr),
 * else cpu_best_level(). Decided at the first call. */
enum cpu_level cpu_level(void);

/* Forces the dispatch level (tests). Returns 0, or INFERD_EUNSUPPORTED when
 * this CPU lacks the level. Not thread-safe: call while no kernel runs. */
int cpu_set_level(enum cpu_level level);

/* Measures the memory read bandwidth: each of tp's workers reads its share
 * of a fresh buffer of `bytes` (zero-filled first, so pages are resident),
 * repeated `reps` times; returns the median in bytes per second, or 0 when
 * the buffer cannot be had. Takes about reps * bytes / bandwidth seconds. */
double cpu_read_bandwidth(threadpool *tp, size_t bytes, int reps);

/* "scalar", "avx2" or "avx512". */
const char *cpu_level_name(enum cpu_level level);

#endif
