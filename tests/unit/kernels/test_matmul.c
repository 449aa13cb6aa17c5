/*
 * test_matmul.c - mm_forward against a double-precision reference computed
 * here from the weights, for every dispatch level this CPU has (levels it
 * lacks are skipped with a printed reason), single and batched rows, with
 * and without the thread pool; plus mm_weight_init's argument checks.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "inferd.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"

/* Relative tolerance (of the row's sum of |w x|) for types whose weights are
 * exact in the reference: F32 sums in a different order, F16 also rounds the
 * activations to half precision (2^-11 relative). */
#define TOL_F32 1e-5
#define TOL_F16 2e-3

static uint16_t to_half(float f) {
    /* Exact for the values the tests generate (round to nearest even). */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, a = u & 0x7fffffff;
    if (a < 0x38800000) return (uint16_t)sign; /* tests keep weights normal or zero */
    uint32_t q = (a >> 13) - (112u << 10), rem = a & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

static float from_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t u = exp ? sign | ((exp + 112) << 23) | (man << 13) : sign;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float normal(uint64_t *s) {
    double u1 = rng_uniform(s), u2 = rng_uniform(s);
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

typedef struct problem {
    enum dtype type;
    int64_t n_in, n_out, n_rows;
    void *wdata;
    float *wf;  /* weights as float (what the reference multiplies) */
    float *x, *want, *scale;
} problem;

static void problem_make(problem *p, enum dtype type, int64_t n_in, int64_t n_out, int64_t n_rows,
                         uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->type = type;
    p->n_in = n_in;
    p->n_out = n_out;
    p->n_rows = n_rows;
    p->wf = malloc(sizeof(float) * n_in * n_out);
    p->x = malloc(sizeof(float) * n_in * n_rows);
    p->want = malloc(sizeof(float) * n_out * n_rows);
    p->scale = malloc(sizeof(float) * n_out * n_rows);
    size_t esz = type == DTYPE_F16 ? 2 : 4;
    p->wdata = malloc(esz * n_in * n_out);
    for (int64_t i = 0; i < n_in * n_out; i++) {
        float v = 0.5f * normal(&seed);
        if (type == DTYPE_F16) {
            uint16_t h = to_half(v);
            ((uint16_t *)p->wdata)[i] = h;
            p->wf[i] = from_half(h);
        } else {
            ((float *)p->wdata)[i] = v;
            p->wf[i] = v;
        }
    }
    for (int64_t i = 0; i < n_in * n_rows; i++) p->x[i] = normal(&seed);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double s = 0, a = 0;
            for (int64_t i = 0; i < n_in; i++) {
                double t = (double)p->wf[o * n_in + i] * p->x[r * n_in + i];
                s += t;
                a += fabs(t);
            }
            p->want[r * n_out + o] = (float)s;
            p->scale[r * n_out + o] = (float)a;
        }
}

static void problem_free(problem *p) {
    free(p->wdata);
    free(p->wf);
    free(p->x);
    free(p->want);
    free(p->scale);
}

static void check(const problem *p, threadpool *tp, double tol, const char *what) {
    mm_weight w;
    char err[256];
    cr_assert_eq(mm_weight_init(&w, p->type, p->n_in, p->n_out, p->wdata, err, sizeof err), 0, "%s", err);
    void *scratch = malloc(mm_scratch_bytes(&w, p->n_rows));
    float *y = malloc(sizeof(float) * p->n_out * p->n_rows);
    for (int64_t i = 0; i < p->n_out * p->n_rows; i++) y[i] = NAN;
    mm_forward(tp, &w, p->x, p->n_rows, y, scratch);
    for (int64_t i = 0; i < p->n_out * p->n_rows; i++) {
        double e = fabs((double)y[i] - p->want[i]);
        cr_assert(e <= tol * p->scale[i] + 1e-30, "%s: %s row %lld col %lld: got %g want %g (tol %g)",
                  what, dtype_get(p->type)->name, (long long)(i / p->n_out), (long long)(i % p->n_out),
                  y[i], p->want[i], tol * p->scale[i]);
    }
    free(y);
    free(scratch);
    mm_weight_release(&w);
}

static void run_level(enum cpu_level level) {
    if (cpu_set_level(level)) {
        printf("skip: this CPU lacks the %s kernels (best is %s)\n", cpu_level_name(level),
               cpu_level_name(cpu_best_level()));
        return;
    }
    threadpool *tp = threadpool_new(2);
    cr_assert_not_null(tp);
    const enum dtype types[] = {DTYPE_F32, DTYPE_F16};
    const double tols[] = {TOL_F32, TOL_F16};
    /* Shapes: odd column counts (partial chunks, partial tiles), 1 row
     * (GEMV), a few rows and more rows than a tile. */
    const int64_t shapes[][3] = {{64, 37, 1}, {256, 100, 1}, {512, 64, 3}, {128, 70, 17}, {96, 33, 70}};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            problem p;
            problem_make(&p, types[t], shapes[s][0], shapes[s][1], shapes[s][2], 1000 + s);
            char what[96];
            snprintf(what, sizeof what, "%s %lldx%lld rows %lld", cpu_level_name(level),
                     (long long)shapes[s][1], (long long)shapes[s][0], (long long)shapes[s][2]);
            check(&p, NULL, tols[t], what);
            check(&p, tp, tols[t], what);
            problem_free(&p);
        }
    threadpool_free(tp);
}

Test(matmul, scalar_matches_reference) { run_level(CPU_SCALAR); }
Test(matmul, avx2_matches_reference) { run_level(CPU_AVX2); }
Test(matmul, avx512_matches_reference) { run_level(CPU_AVX512); }

Test(matmul, init_rejects_bad_shapes) {
    mm_weight w;
    char err[256];
    float data[64] = {0};
    cr_assert_eq(mm_weight_init(&w, DTYPE_F32, 0, 4, data, err, sizeof err), INFERD_EINVAL);
    cr_assert_eq(mm_weight_init(&w, DTYPE_F32, 4, -1, data, err, sizeof err), INFERD_EINVAL);
    cr_assert_eq(mm_weight_init(&w, DTYPE_F32, 4, 4, NULL, err, sizeof err), INFERD_EINVAL);
    cr_assert_eq(mm_weight_init(&w, DTYPE_I32, 4, 4, data, err, sizeof err), INFERD_EUNSUPPORTED);
    cr_assert_eq(mm_weight_init(&w, (enum dtype)4, 4, 4, data, err, sizeof err), INFERD_EUNSUPPORTED);
    cr_assert(strstr(err, "type"), "%s", err);
    mm_weight_release(&w);
    mm_weight_release(NULL);
}

Test(matmul, forced_level_is_reported) {
    cr_assert_eq(cpu_set_level(CPU_SCALAR), 0);
    cr_assert_eq(cpu_level(), CPU_SCALAR);
    cr_assert_neq(cpu_set_level(CPU_LEVEL_COUNT), 0);
    const cpu_features *f = cpu_get_features();
    if (cpu_best_level() == CPU_AVX512) cr_assert(f->avx512f && f->avx512vnni && f->avx2);
}
