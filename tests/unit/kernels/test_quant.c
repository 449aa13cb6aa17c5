/*
 * test_quant.c - src/kernels/quant*.c against ggml's oracles in
 * tests/data/quant (see its README): per weight type, dequantization of
 * ggml's bytes is bit-exact, our reference quantizer reproduces ggml's bytes,
 * IQ4_NL's llama-quantize path reproduces iq4_nl.chunk.q, and activation
 * quantization reproduces act.<type>.q. Also fp16/bf16 edge cases.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dtype.h"
#include "kernels/quant.h"

#define QDIR "tests/data/quant/"
#define ROWS 8
#define COLS 1024

static void *load(const char *name, size_t want) {
    char path[256];
    snprintf(path, sizeof path, QDIR "%s", name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    void *buf = malloc(want + 1);
    cr_assert_not_null(buf);
    const size_t got = fread(buf, 1, want + 1, f);
    fclose(f);
    cr_assert_eq(got, want, "%s: %zu bytes, expected %zu", path, got, want);
    return buf;
}

static size_t row_bytes(enum dtype t) {
    uint64_t rb = 0;
    cr_assert_eq(dtype_row_bytes(t, COLS, &rb), 0);
    return (size_t)rb;
}

/* First differing byte index, or -1. */
static long first_diff(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) return (long)i;
    return -1;
}

static void check_dequant(enum dtype t, const char *q_file, const char *out_file) {
    const size_t rb = row_bytes(t);
    uint8_t *q = load(q_file, ROWS * rb);
    float *want = load(out_file, ROWS * COLS * sizeof(float));
    float *got = malloc(COLS * sizeof(float));
    for (int r = 0; r < ROWS; r++) {
        dequantize_row(t, q + r * rb, got, COLS);
        const long d = first_diff(got, want + r * COLS, COLS * sizeof(float));
        cr_expect_eq(d, -1, "%s dequant row %d: element %ld is %.9g, ggml %.9g", dtype_get(t)->name,
                     r, d / 4, d >= 0 ? got[d / 4] : 0.0, d >= 0 ? want[r * COLS + d / 4] : 0.0);
    }
    free(q);
    free(want);
    free(got);
}

static void check_quant(enum dtype t, const char *q_file, int chunk_path) {
    const size_t rb = row_bytes(t);
    char in_name[64];
    snprintf(in_name, sizeof in_name, "%s.in.f32", dtype_get(t)->name);
    float *in = load(in_name, ROWS * COLS * sizeof(float));
    uint8_t *want = load(q_file, ROWS * rb);
    uint8_t *got = malloc(ROWS * rb);
    if (chunk_path) {
        cr_assert_eq(quantize_rows(t, in, got, ROWS, COLS), ROWS * rb);
    } else {
        for (int r = 0; r < ROWS; r++)
            cr_assert_eq(quantize_row_ref(t, in + r * COLS, got + r * rb, COLS), 0);
    }
    for (int r = 0; r < ROWS; r++) {
        /* README caveat: ggml's IQ4_NL reference leaves the nibbles of
         * all-zero blocks (row 3) uninitialised; only its scales are defined. */
        if (t == DTYPE_IQ4_NL && !chunk_path && r == 3) {
            for (size_t b = 0; b < rb; b += 18)
                cr_expect_eq(memcmp(got + r * rb + b, want + r * rb + b, 2), 0);
            continue;
        }
        const long d = first_diff(got + r * rb, want + r * rb, rb);
        cr_expect_eq(d, -1, "%s %s row %d: byte %ld is 0x%02x, ggml 0x%02x", dtype_get(t)->name,
                     chunk_path ? "quantize_rows" : "quantize_row_ref", r, d,
                     d >= 0 ? got[r * rb + d] : 0, d >= 0 ? want[r * rb + d] : 0);
    }
    free(in);
    free(want);
    free(got);
}

#define TYPE_TESTS(tname, T)                                                                       \
    Test(dequant, tname) {                                                                         \
        check_dequant(T, #tname ".q", #tname ".out.f32");                                          \
    }                                                                                              \
    Test(quant_ref, tname) {                                                                       \
        check_quant(T, #tname ".q", 0);                                                            \
    }

TYPE_TESTS(f16, DTYPE_F16)
TYPE_TESTS(bf16, DTYPE_BF16)
TYPE_TESTS(q4_0, DTYPE_Q4_0)
TYPE_TESTS(q4_1, DTYPE_Q4_1)
TYPE_TESTS(q5_0, DTYPE_Q5_0)
TYPE_TESTS(q5_1, DTYPE_Q5_1)
TYPE_TESTS(q8_0, DTYPE_Q8_0)
TYPE_TESTS(q2_K, DTYPE_Q2_K)
TYPE_TESTS(q3_K, DTYPE_Q3_K)
TYPE_TESTS(q4_K, DTYPE_Q4_K)
TYPE_TESTS(q5_K, DTYPE_Q5_K)
TYPE_TESTS(q6_K, DTYPE_Q6_K)
TYPE_TESTS(q8_K, DTYPE_Q8_K)
TYPE_TESTS(iq4_nl, DTYPE_IQ4_NL)
TYPE_TESTS(iq4_xs, DTYPE_IQ4_XS)

/* llama-quantize's path equals the reference for every type but IQ4_NL
 * (chunkcheck.txt); check that ours does too, and IQ4_NL's own oracle. */
Test(quant_rows, iq4_nl_chunk) {
    check_quant(DTYPE_IQ4_NL, "iq4_nl.chunk.q", 1);
    check_dequant(DTYPE_IQ4_NL, "iq4_nl.chunk.q", "iq4_nl.chunk.out.f32");
}

Test(quant_rows, equals_ref_for_other_types) {
    static const enum dtype types[] = {DTYPE_F16,  DTYPE_BF16, DTYPE_Q4_0,  DTYPE_Q4_1, DTYPE_Q5_0,
                                       DTYPE_Q5_1, DTYPE_Q8_0, DTYPE_Q2_K,  DTYPE_Q3_K, DTYPE_Q4_K,
                                       DTYPE_Q5_K, DTYPE_Q6_K, DTYPE_IQ4_XS};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char q_file[64];
        snprintf(q_file, sizeof q_file, "%s.q", dtype_get(types[i])->name);
        check_quant(types[i], q_file, 1);
    }
}

static void check_act(enum dtype vdt, const char *file) {
    const size_t rb = row_bytes(vdt);
    float *in = load("act.in.f32", COLS * sizeof(float));
    uint8_t *want = load(file, rb);
    uint8_t *got = malloc(rb);
    quantize_row_act(vdt, in, got, COLS);
    const long d = first_diff(got, want, rb);
    cr_expect_eq(d, -1, "act %s: byte %ld is 0x%02x, ggml 0x%02x", file, d, d >= 0 ? got[d] : 0,
                 d >= 0 ? want[d] : 0);
    free(in);
    free(want);
    free(got);
}

Test(act_quant, q8_0) {
    check_act(DTYPE_Q8_0, "act.q8_0.q");
}
Test(act_quant, q8_1) {
    check_act(DTYPE_Q8_1, "act.q8_1.q");
}
Test(act_quant, q8_K) {
    check_act(DTYPE_Q8_K, "act.q8_K.q");
}
Test(act_quant, f16) {
    check_act(DTYPE_F16, "act.f16.q");
}
Test(act_quant, bf16) {
    check_act(DTYPE_BF16, "act.bf16.q");
}

/* The reference quantizers of the activation types match ggml's too. */
Test(act_quant, ref_quantizers) {
    static const enum dtype types[] = {DTYPE_Q8_0, DTYPE_Q8_1, DTYPE_Q8_K};
    float *in = load("act.in.f32", COLS * sizeof(float));
    for (size_t i = 0; i < 3; i++) {
        const size_t rb = row_bytes(types[i]);
        char name[64];
        snprintf(name, sizeof name, "act.%s.ref.q", dtype_get(types[i])->name);
        uint8_t *want = load(name, rb);
        uint8_t *got = malloc(rb);
        cr_assert_eq(quantize_row_ref(types[i], in, got, COLS), 0);
        cr_expect_eq(first_diff(got, want, rb), -1, "%s", name);
        free(want);
        free(got);
    }
    free(in);
}

Test(act_quant, vec_dot_types) {
    cr_expect_eq(quant_vec_dot_type(DTYPE_Q4_0), DTYPE_Q8_0);
    cr_expect_eq(quant_vec_dot_type(DTYPE_IQ4_NL), DTYPE_Q8_0);
    cr_expect_eq(quant_vec_dot_type(DTYPE_Q5_1), DTYPE_Q8_1);
    cr_expect_eq(quant_vec_dot_type(DTYPE_Q3_K), DTYPE_Q8_K);
    cr_expect_eq(quant_vec_dot_type(DTYPE_IQ4_XS), DTYPE_Q8_K);
    cr_expect_eq(quant_vec_dot_type(DTYPE_F16), DTYPE_F16);
    cr_expect_eq(quant_vec_dot_type(DTYPE_BF16), DTYPE_BF16);
    cr_expect_eq(quant_vec_dot_type(DTYPE_F32), DTYPE_F32);
}

Test(fp16, conversions_round_trip_and_round_to_even) {
    /* every finite half survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN payloads */
        cr_assert_eq(f32_to_fp16(fp16_to_f32((uint16_t)h)), h, "half 0x%04x", h);
    }
    cr_expect_eq(f32_to_fp16(1.0f), 0x3c00);
    cr_expect_eq(f32_to_fp16(65504.0f), 0x7bff);
    cr_expect_eq(f32_to_fp16(65520.0f), 0x7c00);        /* rounds up to inf */
    cr_expect_eq(f32_to_fp16(1.0f + 0x1p-11f), 0x3c00); /* tie -> even */
    cr_expect_eq(f32_to_fp16(1.0f + 0x3p-11f), 0x3c02); /* tie -> even */
    cr_expect_eq(f32_to_fp16(0x1p-24f), 0x0001);        /* smallest subnormal */
    cr_expect_eq(f32_to_fp16(0x1p-25f), 0x0000);        /* tie -> even (0) */
    cr_expect_eq(f32_to_fp16(-0.0f), 0x8000);
    cr_expect_eq(f32_to_fp16(NAN) & 0x7e00, 0x7e00);
    cr_expect_eq(fp16_to_f32(0x0001), 0x1p-24f);
}

Test(bf16, conversions) {
    cr_expect_eq(f32_to_bf16(1.0f), 0x3f80);
    cr_expect_eq(bf16_to_f32(0x3f80), 1.0f);
    cr_expect_eq(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80); /* tie -> even */
    cr_expect_eq(f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
    cr_expect_eq(f32_to_bf16(NAN) & 0x0040, 0x0040); /* quiet */
}

Test(quant_api, rejects_bad_arguments) {
    float x[32] = {0};
    uint8_t y[64];
    cr_expect_eq(quant_supported(DTYPE_IQ2_XXS), 0);
    cr_expect_eq(quant_supported(DTYPE_COUNT), 0);
    cr_expect_eq(quant_supported(DTYPE_Q4_K), 1);
    cr_expect_neq(quantize_row_ref(DTYPE_IQ2_XXS, x, y, 32), 0);
    cr_expect_neq(quantize_row_ref(DTYPE_Q4_0, x, y, 31), 0);
    cr_expect_eq(quantize_rows(DTYPE_Q4_K, x, y, 1, 32), 0);
}
