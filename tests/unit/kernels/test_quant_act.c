/*
 * test_quant_act.c - the AVX2 and AVX-512 activation quantizers
 * (src/kernels/quant_act_*.c) against the scalar references, byte for byte
 * (tolerance: none), on seeded random rows and edge cases: all-zero blocks,
 * exact .5 ties, a negative extreme, equal extremes of opposite sign,
 * subnormals, huge values. Levels the CPU lacks are skipped with a message.
 * Also quantize_row_act at every level against ggml's act.<type>.q.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/cpu.h"
#include "kernels/quant.h"
#include "kernels/quant_int.h"

#define N 4096 /* 128 Q8_0 blocks, 16 Q8_K blocks */

typedef void (*act_fn)(const float *, void *, int64_t);

static void fill(float *x, uint64_t seed) {
    uint64_t s = seed;
    for (int i = 0; i < N; i++) {
        const double u = rng_uniform(&s) * 2 - 1;
        const int blk = i / 256;
        x[i] = (float)(u * ldexp(1.0, (blk % 8) - 4));
    }
    /* edge cases, each in its own 32-block (and so its own 256-block group) */
    memset(x, 0, 256 * sizeof(float)); /* all-zero Q8_0 and Q8_K blocks */
    for (int j = 0; j < 32; j++) x[256 + j] = (float)(j - 16) + 0.5f; /* exact .5 ties */
    x[256 + 5] = -127.0f; /* amax 127: id = 1, ties stay ties */
    for (int j = 0; j < 32; j++) x[288 + j] = (float)j * 0.25f;
    x[288 + 31] = -40.0f;          /* negative extreme */
    x[320] = 3.0f, x[321] = -3.0f; /* opposite extremes, positive first */
    x[512] = -7.0f, x[513] = 7.0f; /* opposite extremes, negative first */
    for (int j = 0; j < 256; j++) x[768 + j] = 1e-40f * (float)(j % 37 - 18); /* subnormals */
    for (int j = 0; j < 32; j++) x[1024 + j] = 1e30f * (float)(j - 7);
}

static void compare(const char *what, act_fn ref, act_fn simd, size_t bytes) {
    float *x = malloc(N * sizeof(float));
    uint8_t *a = malloc(bytes), *b = malloc(bytes);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        fill(x, seed);
        memset(a, 0xAA, bytes);
        memset(b, 0x55, bytes);
        ref(x, a, N);
        simd(x, b, N);
        for (size_t i = 0; i < bytes; i++)
            cr_assert_eq(a[i], b[i], "%s seed %llu: byte %zu is 0x%02x, reference 0x%02x", what,
                         (unsigned long long)seed, i, b[i], a[i]);
    }
    free(x);
    free(a);
    free(b);
}

static int have(enum cpu_level lv) {
    if (cpu_best_level() >= lv) return 1;
    cr_log_warn("skipped: this CPU has no %s", cpu_level_name(lv));
    return 0;
}

#define BYTES(t) ((size_t)(N / dtype_get(t)->block_size) * dtype_get(t)->type_size)

Test(quant_act_avx2, equals_scalar) {
    if (!have(CPU_AVX2)) cr_skip_test("no AVX2");
    compare("q8_0 avx2", quantize_row_q8_0_act, quantize_row_q8_0_act_avx2, BYTES(DTYPE_Q8_0));
    compare("q8_1 avx2", quantize_row_q8_1_act, quantize_row_q8_1_act_avx2, BYTES(DTYPE_Q8_1));
    compare("q8_K avx2", quantize_row_q8_K_ref, quantize_row_q8_K_avx2, BYTES(DTYPE_Q8_K));
}

Test(quant_act_avx512, equals_scalar) {
    if (!have(CPU_AVX512)) cr_skip_test("no AVX-512");
    compare("q8_0 avx512", quantize_row_q8_0_act, quantize_row_q8_0_act_avx512, BYTES(DTYPE_Q8_0));
    compare("q8_1 avx512", quantize_row_q8_1_act, quantize_row_q8_1_act_avx512, BYTES(DTYPE_Q8_1));
    compare("q8_K avx512", quantize_row_q8_K_ref, quantize_row_q8_K_avx512, BYTES(DTYPE_Q8_K));
}

/* Every dispatch level reproduces ggml's activation bytes. */
Test(quant_act, every_level_matches_ggml) {
    static const struct {
        enum dtype t;
        const char *file;
    } acts[] = {{DTYPE_Q8_0, "act.q8_0.q"}, {DTYPE_Q8_1, "act.q8_1.q"}, {DTYPE_Q8_K, "act.q8_K.q"}};
    float x[1024];
    FILE *f = fopen("tests/data/quant/act.in.f32", "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(x, sizeof(float), 1024, f), 1024);
    fclose(f);
    const enum cpu_level saved = cpu_level();
    for (int lv = CPU_SCALAR; lv <= (int)cpu_best_level(); lv++) {
        cr_assert_eq(cpu_set_level((enum cpu_level)lv), 0);
        for (size_t k = 0; k < 3; k++) {
            uint8_t want[1200], got[1200];
            const size_t bytes =
                (size_t)(1024 / dtype_get(acts[k].t)->block_size) * dtype_get(acts[k].t)->type_size;
            char path[128];
            snprintf(path, sizeof path, "tests/data/quant/%s", acts[k].file);
            f = fopen(path, "rb");
            cr_assert_not_null(f);
            cr_assert_eq(fread(want, 1, bytes, f), bytes);
            fclose(f);
            quantize_row_act(acts[k].t, x, got, 1024);
            cr_expect_eq(memcmp(want, got, bytes), 0, "%s at level %s", acts[k].file,
                         cpu_level_name((enum cpu_level)lv));
        }
    }
    cpu_set_level(saved);
}
