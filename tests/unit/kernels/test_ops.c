/*
 * test_ops.c - src/kernels/ops.c against naive double-precision formulas:
 * RMSNorm, rope (normal and NEOX pairs, partial rotation, linear and YaRN
 * scaling, frequency factors), SiLU, softmax, add; and the SIMD versions of
 * RMSNorm, SiLU and add against the plain-C ones (each level this CPU has).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "kernels/cpu.h"
#include "kernels/ops.h"

static void fill(float *x, size_t n, uint64_t seed, double scale) {
    uint64_t st = seed;
    for (size_t i = 0; i < n; i++) x[i] = (float)((rng_uniform(&st) * 2 - 1) * scale);
}

Test(ops, rmsnorm_matches_naive) {
    float x[257], w[257], y[257];
    fill(x, 257, 1, 3.0);
    fill(w, 257, 2, 1.0);
    op_rmsnorm(y, x, w, 257, 1e-5f);
    double ss = 0;
    for (int i = 0; i < 257; i++) ss += (double)x[i] * x[i];
    const double scale = 1.0 / sqrt(ss / 257 + 1e-5);
    for (int i = 0; i < 257; i++)
        cr_assert(fabs(y[i] - x[i] * scale * w[i]) <= 1e-6 * (1 + fabs(x[i] * scale * w[i])), "i %d", i);
    /* In place and without a weight. */
    memcpy(y, x, sizeof x);
    op_rmsnorm(y, y, NULL, 257, 1e-5f);
    for (int i = 0; i < 257; i++) cr_assert(fabs(y[i] - x[i] * scale) <= 1e-6 * (1 + fabs(y[i])));
}

/* Naive rope of one head in double: pair (a, b) of dimension index i rotated
 * by pos * base^(-2i/n_rot) * freq_scale. */
static void naive_rope(double *out, const float *x, uint32_t hd, uint32_t n_rot, int mode,
                       int32_t pos, double base, double freq_scale, const float *ff) {
    for (uint32_t d = 0; d < hd; d++) out[d] = x[d];
    for (uint32_t i = 0; i < n_rot / 2; i++) {
        double theta = pos * pow(base, -2.0 * i / n_rot) * freq_scale / (ff ? ff[i] : 1.0);
        uint32_t a = mode == OP_ROPE_NEOX ? i : 2 * i, b = mode == OP_ROPE_NEOX ? i + n_rot / 2 : 2 * i + 1;
        out[a] = x[a] * cos(theta) - x[b] * sin(theta);
        out[b] = x[a] * sin(theta) + x[b] * cos(theta);
    }
}

static void check_rope(int mode, uint32_t n_rot, double freq_scale, const float *ff) {
    enum { HD = 64, NH = 3 };
    op_rope_params p = {.n_rot = n_rot, .mode = mode, .freq_base = 10000.0f,
                        .freq_scale = (float)freq_scale, .ext_factor = 0.0f, .attn_factor = 1.0f,
                        .freq_factors = ff};
    const int32_t positions[] = {0, 1, 7, 100, 511};
    for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
        float x[NH * HD], y[NH * HD], cache[HD];
        fill(x, NH * HD, 10 + k, 1.0);
        memcpy(y, x, sizeof x);
        op_rope_cache(&p, positions[k], cache);
        op_rope_apply(y, NH, HD, n_rot, mode, cache);
        for (int h = 0; h < NH; h++) {
            double ref[HD];
            naive_rope(ref, x + h * HD, HD, n_rot, mode, positions[k], 10000.0, freq_scale, ff);
            for (int d = 0; d < HD; d++) {
                cr_assert(fabs(y[h * HD + d] - ref[d]) <= 2e-4, "mode %d pos %d head %d dim %d: %g vs %g",
                          mode, positions[k], h, d, y[h * HD + d], ref[d]);
                if ((uint32_t)d >= n_rot) cr_assert_eq(y[h * HD + d], x[h * HD + d]);
            }
        }
    }
}

Test(ops, rope_normal_pairs) { check_rope(OP_ROPE_NORM, 64, 1.0, NULL); }
Test(ops, rope_neox_halves) { check_rope(OP_ROPE_NEOX, 64, 1.0, NULL); }
Test(ops, rope_partial_rotation_leaves_the_rest) {
    check_rope(OP_ROPE_NORM, 32, 1.0, NULL);
    check_rope(OP_ROPE_NEOX, 16, 1.0, NULL);
}
Test(ops, rope_linear_scaling) { check_rope(OP_ROPE_NORM, 64, 0.25, NULL); }
Test(ops, rope_frequency_factors) {
    float ff[32];
    for (int i = 0; i < 32; i++) ff[i] = 1.0f + (float)i / 4;
    check_rope(OP_ROPE_NEOX, 64, 1.0, ff);
}

Test(ops, rope_normal_and_neox_differ) {
    op_rope_params p = {.n_rot = 8, .mode = OP_ROPE_NORM, .freq_base = 10000.0f, .freq_scale = 1.0f,
                        .attn_factor = 1.0f};
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8], cache[8];
    memcpy(b, a, sizeof a);
    op_rope_cache(&p, 3, cache);
    op_rope_apply(a, 1, 8, 8, OP_ROPE_NORM, cache);
    op_rope_apply(b, 1, 8, 8, OP_ROPE_NEOX, cache);
    cr_assert(fabs(a[1] - b[1]) > 1e-3);
}

Test(ops, yarn_corr_dims_as_ggml) {
    /* n_dims * ln(n_ctx_orig / (beta * 2 pi)) / (2 ln base), floored / ceiled, clamped. */
    float dims[2];
    op_rope_yarn_corr_dims(128, 4096, 10000.0f, 32.0f, 1.0f, dims);
    const double lo = floor(128 * log(4096 / (32 * 2 * M_PI)) / (2 * log(10000.0)));
    const double hi = ceil(128 * log(4096 / (1 * 2 * M_PI)) / (2 * log(10000.0)));
    cr_assert_eq(dims[0], (float)fmax(0, lo));
    cr_assert_eq(dims[1], (float)fmin(127, hi));
    cr_assert_eq(dims[0], 20.0f);
    cr_assert_eq(dims[1], 46.0f);
}

Test(ops, yarn_blends_interpolation_and_extrapolation) {
    /* Below corr_dims[0] a pair is extrapolated (theta unscaled), above
     * corr_dims[1] interpolated (theta * freq_scale); cos/sin are scaled by
     * 1 + 0.1 ln(1 / freq_scale). */
    op_rope_params p = {.n_rot = 128, .mode = OP_ROPE_NORM, .freq_base = 10000.0f,
                        .freq_scale = 0.25f, .ext_factor = 1.0f, .attn_factor = 1.0f};
    op_rope_yarn_corr_dims(128, 4096, 10000.0f, 32.0f, 1.0f, p.corr_dims);
    float cache[128];
    const int32_t pos = 37;
    op_rope_cache(&p, pos, cache);
    const double mscale = 1.0 + 0.1 * log(4.0);
    for (int i = 0; i < 64; i++) {
        double theta = pos * pow(10000.0, -2.0 * i / 128);
        double ramp = 1 - fmin(1, fmax(0, (i - p.corr_dims[0]) / fmax(0.001, p.corr_dims[1] - p.corr_dims[0])));
        double th = theta * 0.25 * (1 - ramp) + theta * ramp;
        cr_assert(fabs(cache[2 * i] - cos(th) * mscale) < 2e-4, "pair %d", i);
        cr_assert(fabs(cache[2 * i + 1] - sin(th) * mscale) < 2e-4, "pair %d", i);
    }
}

Test(ops, silu_mul_softmax_add) {
    float g[100], u[100], y[100];
    fill(g, 100, 5, 6.0);
    fill(u, 100, 6, 2.0);
    op_silu_mul(y, g, u, 100);
    for (int i = 0; i < 100; i++) {
        double s = g[i] / (1 + exp(-(double)g[i])) * u[i];
        cr_assert(fabs(y[i] - s) <= 1e-6 * (1 + fabs(s)));
    }
    cr_assert_eq(op_silu(0.0f), 0.0f);
    float x[100], ref[100];
    fill(x, 100, 7, 10.0);
    double mx = -1e30, sum = 0;
    for (int i = 0; i < 100; i++) mx = fmax(mx, 0.5 * x[i]);
    for (int i = 0; i < 100; i++) sum += exp(0.5 * x[i] - mx);
    for (int i = 0; i < 100; i++) ref[i] = (float)(exp(0.5 * x[i] - mx) / sum);
    op_softmax(x, 100, 0.5f);
    double total = 0;
    for (int i = 0; i < 100; i++) {
        cr_assert(fabs(x[i] - ref[i]) <= 1e-6, "i %d", i);
        total += x[i];
    }
    cr_assert(fabs(total - 1) < 1e-5);
    op_add(y, g, u, 100);
    for (int i = 0; i < 100; i++) cr_assert_eq(y[i], g[i] + u[i]);
}

/* RMSNorm, SiLU and add at each level this CPU has against the scalar
 * level: lengths with vector tails, SiLU at extreme inputs (overflowing and
 * underflowing exponentials). Tolerance: 1e-6 relative (RMSNorm sums in
 * another order; SiLU's vector exp is within a few ulp); add is exact. */
Test(ops, simd_levels_match_scalar) {
    static const uint32_t lens[] = {1, 7, 16, 17, 100, 768, 2051};
    enum { N = 2051 };
    static float x[N], w[N], u[N], ref[N], got[N];
    for (int l = CPU_AVX2; l < CPU_LEVEL_COUNT; l++) {
        if ((enum cpu_level)l > cpu_best_level()) {
            printf("skip: this CPU lacks the %s level\n", cpu_level_name((enum cpu_level)l));
            continue;
        }
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const uint32_t n = lens[li];
            fill(x, n, 10 + li, 4.0);
            fill(w, n, 20 + li, 1.0);
            fill(u, n, 30 + li, 2.0);
            if (n > 8) { /* extremes for the exponential */
                x[0] = -200.0f;
                x[1] = 200.0f;
                x[2] = -88.9f;
                x[3] = 88.9f;
                x[4] = -87.0f;
                x[5] = 0.0f;
                x[6] = -1e-30f;
            }
            for (int op = 0; op < 4; op++) {
                for (int pass = 0; pass < 2; pass++) {
                    cr_assert_eq(cpu_set_level(pass ? (enum cpu_level)l : CPU_SCALAR), 0);
                    float *y = pass ? got : ref;
                    y[n - 1] = 0;
                    switch (op) {
                    case 0: op_rmsnorm(y, x, w, n, 1e-5f); break;
                    case 1: op_rmsnorm(y, x, NULL, n, 1e-6f); break;
                    case 2: op_silu_mul(y, x, u, n); break;
                    default: op_add(y, x, u, n); break;
                    }
                }
                for (uint32_t i = 0; i < n; i++) {
                    const double tol = op == 3 ? 0 : 1e-6 * fabs(ref[i]) + 1e-37;
                    cr_assert(fabs((double)got[i] - ref[i]) <= tol && signbit(got[i]) == signbit(ref[i]),
                              "%s op %d n %u i %u: got %.9g want %.9g", cpu_level_name((enum cpu_level)l), op, n,
                              i, got[i], ref[i]);
                }
            }
        }
    }
    cpu_set_level(cpu_best_level());
}
