/*
 * test_vecdot.c - vec_dot_ref (src/kernels/quant*.c) against ggml-cpu's
 * vec_dot results in tests/data/quant/vecdot.jsonl: every weight type, every
 * row, with the activation ggml used (act.<vec_dot_type>.q).
 *
 * Tolerance: our integer block sums are exact and each block's float scale
 * is formed as ggml forms it, so the two results differ only in the order
 * the per-block float terms are added (ggml adds them in SIMD lanes, with
 * FMA). Let S = 2 * sum_i |w_i * a_i| over the dequantized weight and
 * activation (an upper bound of the sum of |block term|, the factor 2 covers
 * Q4_1/Q5_1's min term). Worst-case float summation error over nb blocks is
 * nb * 2^-24 * S (1.9e-6 * S for nb = 32); rounding errors of random sign
 * grow like sqrt(nb) * 2^-24 * S = 3.4e-7 * S. We allow 1e-7 * S: measured
 * worst is 2.1e-8 * S (Q5_1), the rest 3e-9..1.5e-8 (cr_log_info prints it).
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
#define VECDOT_REL_TOL 1e-7

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

/* The "vec_dot" of (type, row) from vecdot.jsonl; fails the test if absent. */
static double oracle(const char *type, int row) {
    FILE *f = fopen(QDIR "vecdot.jsonl", "r");
    cr_assert_not_null(f);
    char line[1024], key[128];
    snprintf(key, sizeof key, "{\"type\":\"%s\",", type);
    char rowkey[32];
    snprintf(rowkey, sizeof rowkey, "\"row\":%d,", row);
    double v = NAN;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, strlen(key)) != 0 || !strstr(line, rowkey)) continue;
        const char *p = strstr(line, "\"vec_dot\":");
        cr_assert_not_null(p);
        v = strtod(p + strlen("\"vec_dot\":"), NULL);
        break;
    }
    fclose(f);
    cr_assert(!isnan(v), "vecdot.jsonl has no row %d for %s", row, type);
    return v;
}

static void check_type(enum dtype t) {
    const char *name = dtype_get(t)->name;
    const enum dtype vdt = quant_vec_dot_type(t);
    uint64_t rb = 0, ab = 0;
    cr_assert_eq(dtype_row_bytes(t, COLS, &rb), 0);
    cr_assert_eq(dtype_row_bytes(vdt, COLS, &ab), 0);
    char file[64];
    snprintf(file, sizeof file, "%s.q", name);
    uint8_t *w = load(file, ROWS * rb);
    snprintf(file, sizeof file, "act.%s.q", dtype_get(vdt)->name);
    uint8_t *act = load(file, ab);
    float *wf = malloc(COLS * sizeof(float)), *af = malloc(COLS * sizeof(float));
    dequantize_row(vdt, act, af, COLS);
    double worst = 0, worst_abs = 0, worst_rel = 0;
    for (int r = 0; r < ROWS; r++) {
        const double want = oracle(name, r);
        const double got = vec_dot_ref(t, COLS, w + r * rb, act);
        dequantize_row(t, w + r * rb, wf, COLS);
        double s = 0;
        for (int i = 0; i < COLS; i++) s += fabs((double)wf[i] * af[i]);
        /* Q4_1 / Q5_1 add the min term d_m * s(act) per block; bound it too. */
        s *= 2;
        const double tol = VECDOT_REL_TOL * s + 1e-30;
        const double err = fabs(got - want);
        if (s > 0 && err / s > worst) worst = err / s;
        if (err > worst_abs) worst_abs = err;
        if (want != 0 && err / fabs(want) > worst_rel) worst_rel = err / fabs(want);
        cr_expect(err <= tol, "%s row %d: ours %.9g, ggml %.9g, |diff| %.3g > tol %.3g", name, r,
                  got, want, err, tol);
    }
    cr_log_info("%s: worst |diff| / S = %.3g, |diff| = %.3g, |diff| / |ggml| = %.3g", name, worst,
                worst_abs, worst_rel);
    free(w);
    free(act);
    free(wf);
    free(af);
}

Test(vecdot, f16) {
    check_type(DTYPE_F16);
}
Test(vecdot, bf16) {
    check_type(DTYPE_BF16);
}
Test(vecdot, q4_0) {
    check_type(DTYPE_Q4_0);
}
Test(vecdot, q4_1) {
    check_type(DTYPE_Q4_1);
}
Test(vecdot, q5_0) {
    check_type(DTYPE_Q5_0);
}
Test(vecdot, q5_1) {
    check_type(DTYPE_Q5_1);
}
Test(vecdot, q8_0) {
    check_type(DTYPE_Q8_0);
}
Test(vecdot, q2_K) {
    check_type(DTYPE_Q2_K);
}
Test(vecdot, q3_K) {
    check_type(DTYPE_Q3_K);
}
Test(vecdot, q4_K) {
    check_type(DTYPE_Q4_K);
}
Test(vecdot, q5_K) {
    check_type(DTYPE_Q5_K);
}
Test(vecdot, q6_K) {
    check_type(DTYPE_Q6_K);
}
Test(vecdot, iq4_nl) {
    check_type(DTYPE_IQ4_NL);
}
Test(vecdot, iq4_xs) {
    check_type(DTYPE_IQ4_XS);
}
