/*
 * test_matmul.c - mm_forward for every weight type and dispatch level.
 * The scalar level is checked against a double-precision product of the
 * dequantized weights with the f32 activations (tolerance by activation
 * format, which is where it rounds); each SIMD level this CPU has is checked
 * against the scalar level (levels it lacks are skipped with a printed
 * reason). Shapes cover GEMV (1 row), partial tiles and partial chunks, with
 * and without the thread pool. Also: the X16 repack in place, row lookups,
 * mm_weight_init's argument checks, and mm_forward_group against separate
 * calls. The AVX2 K-quant kernels are also checked bit for bit against the
 * reference on random block bytes, column range by column range.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/util.h"
#include "inferd.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"
#include "kernels/matmul_int.h"
#include "kernels/quant.h"

/* Error bounds, relative to sum_i |w_i x_i| of the output element:
 * TOL_SIMD: a SIMD level against the scalar one (same integer block sums,
 * float sums in another order; F16 SIMD keeps activations in f32, where the
 * reference rounds them to half: 2^-11). The TOL_ACT_* bound the scalar
 * level against exact arithmetic: int8 activations round each element by up
 * to half a step of amax/127 (so up to 1/254 of the largest element). */
#define TOL_SIMD 1e-5
#define TOL_SIMD_F16 1e-3
#define TOL_ACT_F32 1e-5
#define TOL_ACT_F16 1e-3
#define TOL_ACT_BF16 8e-3
#define TOL_ACT_Q8 2.5e-2

static float normal(uint64_t *s) {
    double u1 = rng_uniform(s), u2 = rng_uniform(s);
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

typedef struct problem {
    enum dtype type;
    int64_t n_in, n_out, n_rows;
    size_t wbytes;
    void *wdata;
    float *x, *exact, *scale;
} problem;

static void problem_make(problem *p, enum dtype type, int64_t n_in, int64_t n_out, int64_t n_rows,
                         uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->type = type;
    p->n_in = n_in;
    p->n_out = n_out;
    p->n_rows = n_rows;
    uint64_t rb;
    cr_assert_eq(dtype_row_bytes(type, n_in, &rb), 0);
    p->wbytes = rb * n_out;
    p->wdata = malloc(p->wbytes);
    float *wf = malloc(sizeof(float) * n_in * n_out);
    for (int64_t i = 0; i < n_in * n_out; i++) wf[i] = 0.5f * normal(&seed);
    cr_assert_eq(quantize_rows(type, wf, p->wdata, n_out, n_in), p->wbytes);
    for (int64_t o = 0; o < n_out; o++) dequantize_row(type, (uint8_t *)p->wdata + o * rb, wf + o * n_in, n_in);
    p->x = malloc(sizeof(float) * n_in * n_rows);
    p->exact = malloc(sizeof(float) * n_out * n_rows);
    p->scale = malloc(sizeof(float) * n_out * n_rows);
    for (int64_t i = 0; i < n_in * n_rows; i++) p->x[i] = normal(&seed);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double s = 0, a = 0;
            for (int64_t i = 0; i < n_in; i++) {
                double t = (double)wf[o * n_in + i] * p->x[r * n_in + i];
                s += t;
                a += fabs(t);
            }
            p->exact[r * n_out + o] = (float)s;
            p->scale[r * n_out + o] = (float)a;
        }
    free(wf);
}

static void problem_free(problem *p) {
    free(p->wdata);
    free(p->x);
    free(p->exact);
    free(p->scale);
}

static float *run_forward(const problem *p, const void *wdata, threadpool *tp, int repack) {
    mm_weight w;
    char err[256];
    cr_assert_eq(mm_weight_init(&w, p->type, p->n_in, p->n_out, wdata, err, sizeof err), 0, "%s", err);
    if (repack) cr_assert_eq(mm_weight_repack(&w, err, sizeof err), 0, "%s", err);
    void *scratch = malloc(mm_scratch_bytes(&w, p->n_rows));
    float *y = malloc(sizeof(float) * p->n_out * p->n_rows);
    for (int64_t i = 0; i < p->n_out * p->n_rows; i++) y[i] = NAN;
    mm_forward(tp, &w, p->x, p->n_rows, y, scratch);
    free(scratch);
    mm_weight_release(&w);
    return y;
}

static void compare(const problem *p, const float *got, const float *want, double tol, const char *what) {
    for (int64_t i = 0; i < p->n_out * p->n_rows; i++) {
        double e = fabs((double)got[i] - want[i]);
        cr_assert(e <= tol * p->scale[i] + 1e-30, "%s: %s %lldx%lld row %lld col %lld: got %.9g want %.9g (tol %g)",
                  what, dtype_get(p->type)->name, (long long)p->n_out, (long long)p->n_in,
                  (long long)(i / p->n_out), (long long)(i % p->n_out), got[i], want[i], tol * p->scale[i]);
    }
}

static double act_tol(enum dtype t) {
    switch (quant_vec_dot_type(t)) {
    case DTYPE_F32: return TOL_ACT_F32;
    case DTYPE_F16: return TOL_ACT_F16;
    case DTYPE_BF16: return TOL_ACT_BF16;
    default: return TOL_ACT_Q8;
    }
}

static const enum dtype all_types[] = {DTYPE_F32,  DTYPE_F16,  DTYPE_BF16, DTYPE_Q4_0, DTYPE_Q4_1,
                                       DTYPE_Q5_0, DTYPE_Q5_1, DTYPE_Q8_0, DTYPE_Q2_K, DTYPE_Q3_K,
                                       DTYPE_Q4_K, DTYPE_Q5_K, DTYPE_Q6_K, DTYPE_IQ4_NL, DTYPE_IQ4_XS};
/* {n_in, n_out, n_rows}: GEMV, partial 16-row tiles, more rows than a tile,
 * row tails of every microkernel width, longer rows with 2, 3 and 13
 * activation rows and column counts not a multiple of 4. */
static const int64_t shapes[][3] = {{256, 37, 1}, {512, 64, 3},  {256, 70, 17},  {768, 48, 1},
                                    {256, 33, 70}, {1280, 22, 2}, {2048, 13, 3}, {1024, 19, 13}};

static void run_level(enum cpu_level level) {
    if (cpu_set_level(CPU_SCALAR)) cr_assert_fail("scalar level must exist");
    if (level > cpu_best_level()) {
        printf("skip: this CPU lacks the %s kernels (best is %s)\n", cpu_level_name(level),
               cpu_level_name(cpu_best_level()));
        return;
    }
    threadpool *tp = threadpool_new(2);
    cr_assert_not_null(tp);
    for (size_t t = 0; t < sizeof all_types / sizeof all_types[0]; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            problem p;
            problem_make(&p, all_types[t], shapes[s][0], shapes[s][1], shapes[s][2], 1000 + s);
            cpu_set_level(CPU_SCALAR);
            float *ref = run_forward(&p, p.wdata, NULL, 0);
            if (level == CPU_SCALAR) {
                compare(&p, ref, p.exact, act_tol(p.type), "scalar vs exact");
            } else {
                cr_assert_eq(cpu_set_level(level), 0);
                double tol = p.type == DTYPE_F16 ? TOL_SIMD_F16 : TOL_SIMD;
                float *y1 = run_forward(&p, p.wdata, NULL, 0);
                float *y2 = run_forward(&p, p.wdata, tp, 0);
                compare(&p, y1, ref, tol, cpu_level_name(level));
                compare(&p, y2, ref, tol, cpu_level_name(level));
                free(y1);
                free(y2);
            }
            free(ref);
            problem_free(&p);
        }
    threadpool_free(tp);
}

/* F16 and BF16 rows of any length (block size 1): tails shorter than a
 * vector, between one and two vectors, and a long row with a tail, for one
 * row (GEMV paths) and several, at every level. */
Test(matmul, float_types_any_row_length) {
    const enum dtype types[] = {DTYPE_F16, DTYPE_BF16};
    const int64_t shapes_odd[][3] = {{40, 9, 1}, {100, 7, 1}, {77, 10, 5}, {2080, 6, 1}, {2111, 13, 3}, {31, 5, 2}};
    for (size_t t = 0; t < 2; t++)
        for (size_t s = 0; s < sizeof shapes_odd / sizeof shapes_odd[0]; s++) {
            problem p;
            problem_make(&p, types[t], shapes_odd[s][0], shapes_odd[s][1], shapes_odd[s][2], 70 + s);
            cpu_set_level(CPU_SCALAR);
            float *ref = run_forward(&p, p.wdata, NULL, 0);
            compare(&p, ref, p.exact, act_tol(p.type), "scalar vs exact");
            for (int l = CPU_AVX2; l <= (int)cpu_best_level(); l++) {
                cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
                float *y = run_forward(&p, p.wdata, NULL, 0);
                compare(&p, y, ref, types[t] == DTYPE_F16 ? TOL_SIMD_F16 : TOL_SIMD, cpu_level_name((enum cpu_level)l));
                free(y);
            }
            free(ref);
            problem_free(&p);
        }
}

Test(matmul, scalar_matches_exact) { run_level(CPU_SCALAR); }
Test(matmul, avx2_matches_scalar) { run_level(CPU_AVX2); }
Test(matmul, avx512_matches_scalar) { run_level(CPU_AVX512); }

/* Repack in place: the bytes around the tensor on its pages stay, rows read
 * back as before, and every level computes the same products as from the
 * plain layout. */
Test(matmul, repack_in_place) {
    const enum dtype types[] = {DTYPE_Q4_0, DTYPE_Q8_0};
    for (size_t t = 0; t < 2; t++) {
        problem p;
        problem_make(&p, types[t], 512, 48, 5, 77);
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t len = (p.wbytes + 2 * page + 100 + page - 1) / page * page;
        uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(map, MAP_FAILED);
        for (size_t i = 0; i < len; i++) map[i] = (uint8_t)(i * 7);
        uint8_t *data = map + page + 100; /* not page-aligned */
        memcpy(data, p.wdata, p.wbytes);
        cr_assert_eq(mprotect(map, len, PROT_READ), 0); /* like a read-only file mapping */

        cpu_set_level(CPU_SCALAR);
        float *ref = run_forward(&p, p.wdata, NULL, 0);
        mm_weight w;
        char err[256];
        cr_assert_eq(mm_weight_init(&w, p.type, p.n_in, p.n_out, data, err, sizeof err), 0);
        cr_assert_eq(mm_weight_repack(&w, err, sizeof err), 0, "%s", err);
        cr_assert_eq(w.layout, MM_LAYOUT_X16);
        cr_assert_neq(memcmp(data, p.wdata, p.wbytes), 0, "the bytes were permuted");
        for (size_t i = 0; i < page + 100; i++) cr_assert_eq(map[i], (uint8_t)(i * 7), "byte %zu before", i);
        for (size_t i = page + 100 + p.wbytes; i < len; i++) cr_assert_eq(map[i], (uint8_t)(i * 7), "byte %zu after", i);
        float row[512], want[512];
        for (int64_t o = 0; o < p.n_out; o += 7) {
            mm_weight_get_row(&w, o, row);
            dequantize_row(p.type, (uint8_t *)p.wdata + o * (p.wbytes / p.n_out), want, 512);
            cr_assert_eq(memcmp(row, want, sizeof row), 0, "row %lld", (long long)o);
        }
        void *scratch = malloc(mm_scratch_bytes(&w, p.n_rows));
        float *y = malloc(sizeof(float) * p.n_out * p.n_rows);
        for (int l = 0; l <= (int)cpu_best_level(); l++) {
            cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
            mm_forward(NULL, &w, p.x, p.n_rows, y, scratch);
            compare(&p, y, ref, TOL_SIMD, cpu_level_name((enum cpu_level)l));
        }
        free(y);
        free(scratch);
        mm_weight_release(&w);
        free(ref);
        munmap(map, len);
        problem_free(&p);
    }
}

/* A repack large enough for huge pages (several 2 MiB stretches, the tensor
 * not aligned to one): the neighbouring bytes stay, the rows read back. */
Test(matmul, repack_in_place_large) {
    const int64_t n_in = 4096, n_out = 1024; /* Q8_0: 4.25 MiB */
    uint64_t rb;
    cr_assert_eq(dtype_row_bytes(DTYPE_Q8_0, n_in, &rb), 0);
    size_t wbytes = rb * n_out, page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = (wbytes + 3 * page + page - 1) / page * page;
    uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    for (size_t i = 0; i < len; i++) map[i] = (uint8_t)(i * 13 + 1);
    uint8_t *data = map + page + 36;
    uint64_t seed = 9;
    float *row = malloc(sizeof(float) * n_in), *got = malloc(sizeof(float) * n_in);
    for (int64_t o = 0; o < n_out; o++) {
        for (int64_t i = 0; i < n_in; i++) row[i] = normal(&seed);
        quantize_rows(DTYPE_Q8_0, row, data + o * rb, 1, n_in);
    }
    uint8_t *copy = malloc(wbytes);
    memcpy(copy, data, wbytes);
    cr_assert_eq(mprotect(map, len, PROT_READ), 0);
    mm_weight w;
    char err[256];
    cr_assert_eq(mm_weight_init(&w, DTYPE_Q8_0, n_in, n_out, data, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mm_weight_repack(&w, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.layout, MM_LAYOUT_X16);
    for (size_t i = 0; i < page + 36; i++) cr_assert_eq(map[i], (uint8_t)(i * 13 + 1), "byte %zu before", i);
    for (size_t i = page + 36 + wbytes; i < len; i++) cr_assert_eq(map[i], (uint8_t)(i * 13 + 1), "byte %zu after", i);
    for (int64_t o = 0; o < n_out; o += 97) {
        mm_weight_get_row(&w, o, got);
        dequantize_row(DTYPE_Q8_0, copy + o * rb, row, n_in);
        cr_assert_eq(memcmp(got, row, sizeof(float) * n_in), 0, "row %lld", (long long)o);
    }
    mm_weight_release(&w);
    munmap(map, len);
    free(copy);
    free(row);
    free(got);
}

/* mm_weights_repack over weights laid out like a GGUF file's layers on one
 * read-only mapping: small gaps with other bytes between them (norms), a type
 * without a repacked layout among them, one weight far away (its own span),
 * a NULL entry. The bytes outside the weights stay, the repackable weights
 * turn X16 and the others stay plain, every row reads back, and the products
 * equal the scalar level's on the original bytes. */
Test(matmul, repack_many_in_place) {
    const enum dtype types[] = {DTYPE_Q4_0, DTYPE_Q8_0, DTYPE_Q6_K, DTYPE_Q4_0, DTYPE_F32};
    const int64_t n_in = 512, n_outs[] = {48, 160, 32, 64, 16};
    const size_t gaps[] = {100, 3072, 0, 5000, 300 << 10}; /* bytes before each weight */
    enum { NW = 5 };
    size_t page = (size_t)sysconf(_SC_PAGESIZE), off[NW], total = 0;
    problem p[NW];
    for (int i = 0; i < NW; i++) {
        problem_make(&p[i], types[i], n_in, n_outs[i], 3, 300 + (uint64_t)i);
        total += gaps[i];
        off[i] = total;
        total += p[i].wbytes;
    }
    size_t len = (total + 2 * page + page - 1) / page * page;
    uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    for (size_t i = 0; i < len; i++) map[i] = (uint8_t)(i * 5 + 3);
    for (int i = 0; i < NW; i++) memcpy(map + off[i], p[i].wdata, p[i].wbytes);
    uint8_t *copy = malloc(len);
    memcpy(copy, map, len);
    cr_assert_eq(mprotect(map, len, PROT_READ), 0);

    mm_weight w[NW];
    mm_weight *ws[NW + 1];
    char err[256];
    for (int i = 0; i < NW; i++) {
        cr_assert_eq(mm_weight_init(&w[i], types[i], n_in, n_outs[i], map + off[i], err, sizeof err), 0, "%s", err);
        ws[i] = &w[NW - 1 - i]; /* any order */
    }
    ws[NW] = NULL;
    cr_assert_eq(mm_weights_repack(ws, NW + 1, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < NW; i++) {
        /* The AVX-512 level reads Q4_0/Q8_0 in X16; the AVX2 one row by row. */
        int x16 = (types[i] == DTYPE_Q4_0 || types[i] == DTYPE_Q8_0) && cpu_level() >= CPU_AVX512;
        cr_assert_eq(w[i].layout, x16 ? MM_LAYOUT_X16 : MM_LAYOUT_PLAIN, "weight %d", i);
        cr_assert_eq(w[i].data, map + off[i]);
        if (!x16) cr_assert_eq(memcmp(map + off[i], p[i].wdata, p[i].wbytes), 0, "weight %d moved unchanged", i);
    }
    for (size_t b = 0, i = 0; b < len; b++) { /* bytes outside the weights */
        while (i < NW && b >= off[i] + p[i].wbytes) i++;
        if (i < NW && b >= off[i]) continue;
        cr_assert_eq(map[b], copy[b], "byte %zu outside the weights", b);
    }
    float row[512], want[512];
    size_t sb = 0;
    for (int i = 0; i < NW; i++)
        if (mm_scratch_bytes(&w[i], 3) > sb) sb = mm_scratch_bytes(&w[i], 3);
    void *scratch = malloc(sb);
    for (int i = 0; i < NW; i++) {
        for (int64_t o = 0; o < n_outs[i]; o += 5) {
            mm_weight_get_row(&w[i], o, row);
            dequantize_row(types[i], (uint8_t *)p[i].wdata + o * (p[i].wbytes / n_outs[i]), want, n_in);
            cr_assert_eq(memcmp(row, want, sizeof row), 0, "weight %d row %lld", i, (long long)o);
        }
        cpu_set_level(CPU_SCALAR);
        float *ref = run_forward(&p[i], p[i].wdata, NULL, 0);
        cpu_set_level(cpu_best_level());
        float *y = malloc(sizeof(float) * n_outs[i] * 3);
        mm_forward(NULL, &w[i], p[i].x, 3, y, scratch);
        compare(&p[i], y, ref, TOL_SIMD, "after mm_weights_repack");
        free(y);
        free(ref);
        mm_weight_release(&w[i]);
        problem_free(&p[i]);
    }
    cr_assert_eq(mm_weights_repack(ws, 0, err, sizeof err), 0);
    free(scratch);
    free(copy);
    munmap(map, len);
}

/* mm_weights_repack permutes only what the running level reads natively:
 * nothing at the scalar level, F16 alone at AVX2 (its Q4_0/Q8_0 kernels read
 * rows), all three at AVX-512; the products equal the scalar level's. */
Test(matmul, repack_only_native_layouts) {
    const enum dtype types[] = {DTYPE_Q4_0, DTYPE_Q8_0, DTYPE_F16};
    enum { NW = 3 };
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (int l = 0; l <= (int)cpu_best_level(); l++) {
        problem p[NW];
        mm_weight w[NW];
        mm_weight *ws[NW];
        uint8_t *map[NW];
        size_t len[NW];
        char err[256];
        cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
        for (int i = 0; i < NW; i++) {
            problem_make(&p[i], types[i], 256, 32, 2, 500 + (uint64_t)i);
            len[i] = (p[i].wbytes + page - 1) / page * page;
            map[i] = mmap(NULL, len[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            cr_assert_neq(map[i], MAP_FAILED);
            memcpy(map[i], p[i].wdata, p[i].wbytes);
            cr_assert_eq(mm_weight_init(&w[i], types[i], 256, 32, map[i], err, sizeof err), 0, "%s", err);
            ws[i] = &w[i];
        }
        cr_assert_eq(mm_weights_repack(ws, NW, err, sizeof err), 0, "%s", err);
        for (int i = 0; i < NW; i++) {
            int want = l == CPU_AVX512 || (l == CPU_AVX2 && types[i] == DTYPE_F16);
            const char *name = dtype_get(types[i])->name, *lname = cpu_level_name((enum cpu_level)l);
            cr_assert_eq(mm_weight_x16_native(&w[i]), want, "%s at %s", name, lname);
            cr_assert_eq(w[i].layout, want ? MM_LAYOUT_X16 : MM_LAYOUT_PLAIN, "%s at %s", name, lname);
            cpu_set_level(CPU_SCALAR);
            float *ref = run_forward(&p[i], p[i].wdata, NULL, 0);
            cpu_set_level((enum cpu_level)l);
            void *scratch = malloc(mm_scratch_bytes(&w[i], 2));
            float *y = malloc(sizeof(float) * 32 * 2);
            mm_forward(NULL, &w[i], p[i].x, 2, y, scratch);
            compare(&p[i], y, ref, types[i] == DTYPE_F16 ? TOL_SIMD_F16 : TOL_SIMD, lname);
            free(y);
            free(scratch);
            free(ref);
            mm_weight_release(&w[i]);
            munmap(map[i], len[i]);
            problem_free(&p[i]);
        }
    }
}

/* The repack's permutation is the same bytes whichever level does it (the
 * AVX-512 level packs with vector transposes, the others in plain C). */
Test(matmul, repack_same_bytes_at_every_level) {
    const enum dtype types[] = {DTYPE_Q4_0, DTYPE_Q8_0};
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t t = 0; t < 2; t++) {
        problem p;
        problem_make(&p, types[t], 768, 64, 1, 41);
        size_t len = (p.wbytes + page - 1) / page * page;
        uint8_t *ref = NULL;
        for (int l = 0; l <= (int)cpu_best_level(); l++) {
            uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            cr_assert_neq(map, MAP_FAILED);
            memcpy(map, p.wdata, p.wbytes);
            cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
            mm_weight w;
            char err[256];
            cr_assert_eq(mm_weight_init(&w, p.type, p.n_in, p.n_out, map, err, sizeof err), 0, "%s", err);
            cr_assert_eq(mm_weight_repack(&w, err, sizeof err), 0, "%s", err);
            cr_assert_eq(w.layout, MM_LAYOUT_X16);
            if (!ref) ref = map;
            else {
                cr_assert_eq(memcmp(map, ref, p.wbytes), 0, "%s level %d", dtype_get(p.type)->name, l);
                munmap(map, len);
            }
            mm_weight_release(&w);
        }
        munmap(ref, len);
        problem_free(&p);
    }
    cpu_set_level(cpu_best_level());
}

Test(matmul, repack_skips_other_shapes) {
    static float data[64 * 17];
    mm_weight w;
    char err[256];
    cr_assert_eq(mm_weight_init(&w, DTYPE_F32, 64, 17, data, err, sizeof err), 0);
    cr_assert_eq(mm_weight_repack(&w, err, sizeof err), 0);
    cr_assert_eq(w.layout, MM_LAYOUT_PLAIN);
}

Test(matmul, init_rejects_bad_shapes) {
    mm_weight w;
    char err[256];
    float data[64] = {0};
    cr_assert_eq(mm_weight_init(&w, DTYPE_F32, 0, 4, data, err, sizeof err), INFERD_EINVAL);
    cr_assert_eq(mm_weight_init(&w, DTYPE_F32, 4, -1, data, err, sizeof err), INFERD_EINVAL);
    cr_assert_eq(mm_weight_init(&w, DTYPE_F32, 4, 4, NULL, err, sizeof err), INFERD_EINVAL);
    cr_assert_eq(mm_weight_init(&w, DTYPE_Q4_0, 48, 4, data, err, sizeof err), INFERD_EINVAL);
    cr_assert(strstr(err, "48"), "%s", err);
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

/* mm_forward_group: one conversion, one counter over three weights of one
 * input; every output equals a separate mm_forward bit for bit, on the pool
 * (work above the on-caller threshold) and alone, at every level this CPU
 * has; a group of mixed types falls back to separate calls. */
Test(matmul, group_equals_separate_calls) {
    const enum dtype types[] = {DTYPE_F32, DTYPE_Q4_0, DTYPE_Q8_0, DTYPE_Q4_K};
    const int64_t n_outs[3] = {96, 160, 48}, rows[] = {1, 5};
    threadpool *tp = threadpool_new(2);
    cr_assert_not_null(tp);
    char err[256];
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t ri = 0; ri < 2; ri++) {
            problem p[3];
            mm_weight w[3];
            const mm_weight *ws[3];
            float *want[3], *got[3];
            void *maps[3];
            size_t map_len[3];
            size_t sb = 0;
            for (int i = 0; i < 3; i++) {
                problem_make(&p[i], types[t], 512, n_outs[i], rows[ri], 100 + (uint64_t)i);
                /* repack replaces whole pages: give it a mapping of its own */
                size_t page = (size_t)sysconf(_SC_PAGESIZE);
                map_len[i] = (p[i].wbytes + page - 1) / page * page;
                maps[i] = mmap(NULL, map_len[i], PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                cr_assert_neq(maps[i], MAP_FAILED);
                memcpy(maps[i], p[i].wdata, p[i].wbytes);
                cr_assert_eq(mm_weight_init(&w[i], p[i].type, 512, n_outs[i], maps[i], err, sizeof err), 0, "%s", err);
                cr_assert_eq(mm_weight_repack(&w[i], err, sizeof err), 0, "%s", err);
                ws[i] = &w[i];
                want[i] = malloc(sizeof(float) * n_outs[i] * rows[ri]);
                got[i] = malloc(sizeof(float) * n_outs[i] * rows[ri]);
                if (mm_scratch_bytes(&w[i], rows[ri]) > sb) sb = mm_scratch_bytes(&w[i], rows[ri]);
            }
            cr_assert(mm_group_ok(ws, 3));
            cr_assert(!mm_group_ok(ws, 0));
            void *scratch = malloc(sb);
            for (int l = 0; l <= (int)cpu_best_level(); l++) {
                cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
                for (int pool = 0; pool < 2; pool++) {
                    threadpool *use = pool ? tp : NULL;
                    for (int i = 0; i < 3; i++) {
                        mm_forward(use, ws[i], p[0].x, rows[ri], want[i], scratch);
                        for (int64_t j = 0; j < n_outs[i] * rows[ri]; j++) got[i][j] = NAN;
                    }
                    mm_forward_group(use, ws, 3, p[0].x, rows[ri], got, scratch);
                    for (int i = 0; i < 3; i++)
                        cr_assert_eq(memcmp(got[i], want[i], sizeof(float) * n_outs[i] * rows[ri]), 0,
                                     "%s level %d pool %d rows %lld: weight %d differs",
                                     dtype_get(types[t])->name, l, pool, (long long)rows[ri], i);
                }
            }
            free(scratch);
            for (int i = 0; i < 3; i++) {
                mm_weight_release(&w[i]);
                munmap(maps[i], map_len[i]);
                free(want[i]);
                free(got[i]);
                problem_free(&p[i]);
            }
        }
    cpu_set_level(cpu_best_level());
    threadpool_free(tp);
}

/* Weights of different types cannot share a conversion: mm_group_ok says
 * so and mm_forward_group gives the separate calls' results. */
Test(matmul, group_of_mixed_types_falls_back) {
    problem a, b;
    problem_make(&a, DTYPE_Q4_0, 256, 64, 2, 5);
    problem_make(&b, DTYPE_Q8_0, 256, 32, 2, 6);
    memcpy(b.x, a.x, sizeof(float) * 256 * 2);
    mm_weight w[2];
    char err[256];
    cr_assert_eq(mm_weight_init(&w[0], a.type, 256, 64, a.wdata, err, sizeof err), 0);
    cr_assert_eq(mm_weight_init(&w[1], b.type, 256, 32, b.wdata, err, sizeof err), 0);
    const mm_weight *ws[] = {&w[0], &w[1]};
    cr_assert(!mm_group_ok(ws, 2));
    size_t sb = mm_scratch_bytes(&w[0], 2) > mm_scratch_bytes(&w[1], 2) ? mm_scratch_bytes(&w[0], 2)
                                                                        : mm_scratch_bytes(&w[1], 2);
    void *scratch = malloc(sb);
    float ya[128], yb[64], ga[128], gb[64];
    mm_forward(NULL, &w[0], a.x, 2, ya, scratch);
    mm_forward(NULL, &w[1], a.x, 2, yb, scratch);
    float *const ys[] = {ga, gb};
    mm_forward_group(NULL, ws, 2, a.x, 2, ys, scratch);
    cr_assert_eq(memcmp(ga, ya, sizeof ya), 0);
    cr_assert_eq(memcmp(gb, yb, sizeof yb), 0);
    free(scratch);
    problem_free(&a);
    problem_free(&b);
}

/* Random block bytes (every quant, scale, minimum and high-bit pattern) with
 * finite fp16 super-block scales in [-2, 2]. */
static void random_k_blocks(enum dtype t, uint8_t *dst, size_t n_bytes, uint64_t *seed) {
    const dtype_info *ti = dtype_get(t);
    for (size_t i = 0; i < n_bytes; i++) dst[i] = (uint8_t)(splitmix64(seed) >> 56);
    /* offsets of the fp16 fields in each block */
    size_t off[2] = {0, 2};
    int n_off = 2;
    switch (t) {
    case DTYPE_Q2_K: off[0] = 80, off[1] = 82; break;
    case DTYPE_Q3_K: off[0] = 108, n_off = 1; break;
    case DTYPE_Q6_K: off[0] = 208, n_off = 1; break;
    default: break;
    }
    for (size_t b = 0; b < n_bytes; b += ti->type_size)
        for (int k = 0; k < n_off; k++) {
            uint16_t h = f32_to_fp16((float)(4 * rng_uniform(seed) - 2));
            memcpy(dst + b + off[k], &h, 2);
        }
}

/* The AVX2 K-quant gemm entries (gemm_k_avx2.c) equal mm_gemm_ref bit for
 * bit: the integer block sums are exact and the float sums in the
 * reference's order. Straight on the level's table, with activation rows 1
 * to 4 (the one-weight-row path), 6, 7 and 13 (tiles of 4 rows and every
 * tail), n_in of 1, 3, 8, 10 and 17 super-blocks, column ranges [o0, o1)
 * not aligned to 4; columns outside the range stay untouched. Then through
 * mm_forward, with and without the pool, at every level whose table uses
 * the same entry. */
Test(matmul, k_quants_avx2_bit_identical) {
    if (cpu_best_level() < CPU_AVX2) {
        printf("skip: this CPU lacks AVX2 (best is %s)\n", cpu_level_name(cpu_best_level()));
        return;
    }
    const enum dtype types[] = {DTYPE_Q2_K, DTYPE_Q3_K, DTYPE_Q4_K, DTYPE_Q5_K, DTYPE_Q6_K};
    const int64_t n_ins[] = {256, 768, 2048, 2560, 4352}, rows[] = {1, 2, 3, 4, 6, 7, 13}, n_out = 23;
    const int64_t ranges[][2] = {{0, 23}, {1, 22}, {3, 18}, {5, 6}, {20, 23}};
    const mm_kernels *k = mm_kernels_get(CPU_AVX2);
    threadpool *tp = threadpool_new(2);
    cr_assert_not_null(tp);
    uint64_t seed = 77;
    char err[256];
    cr_assert_eq(cpu_set_level(CPU_AVX2), 0);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const enum dtype type = types[t];
        cr_assert(k->gemm[type] && k->gemm[type] != mm_gemm_ref, "%s has no AVX2 kernel", dtype_get(type)->name);
        for (size_t i = 0; i < sizeof n_ins / sizeof n_ins[0]; i++) {
            const int64_t n_in = n_ins[i], n_rows = rows[sizeof rows / sizeof rows[0] - 1];
            uint64_t rb;
            cr_assert_eq(dtype_row_bytes(type, n_in, &rb), 0);
            uint8_t *wd = malloc(rb * n_out);
            random_k_blocks(type, wd, rb * n_out, &seed);
            float *x = malloc(sizeof(float) * n_in * n_rows);
            for (int64_t j = 0; j < n_in * n_rows; j++) x[j] = 3 * normal(&seed);
            mm_weight w;
            cr_assert_eq(mm_weight_init(&w, type, n_in, n_out, wd, err, sizeof err), 0, "%s", err);
            const size_t stride = k->act_bytes[type](type, n_in) + 8; /* not a multiple of 64 */
            uint8_t *xq = malloc(stride * n_rows);
            for (int64_t r = 0; r < n_rows; r++) k->act[type](type, x + r * n_in, xq + r * stride, n_in);
            float *want = malloc(sizeof(float) * n_out * n_rows), *got = malloc(sizeof(float) * n_out * n_rows);
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                for (size_t c = 0; c < sizeof ranges / sizeof ranges[0]; c++) {
                    const int64_t o0 = ranges[c][0], o1 = ranges[c][1], nr = rows[ri];
                    for (int64_t j = 0; j < n_out * nr; j++) want[j] = got[j] = NAN;
                    mm_gemm_ref(&w, xq, stride, nr, want, n_out, o0, o1);
                    k->gemm[type](&w, xq, stride, nr, got, n_out, o0, o1);
                    for (int64_t r = 0; r < nr; r++)
                        for (int64_t o = 0; o < n_out; o++) {
                            float g = got[r * n_out + o], e = want[r * n_out + o];
                            if (o < o0 || o >= o1) {
                                cr_assert(isnan(g), "%s: column %lld outside [%lld, %lld) written",
                                          dtype_get(type)->name, (long long)o, (long long)o0, (long long)o1);
                                continue;
                            }
                            cr_assert(memcmp(&g, &e, sizeof g) == 0,
                                      "%s n_in %lld, %lld rows, columns [%lld, %lld): row %lld col %lld got %.9g "
                                      "want %.9g",
                                      dtype_get(type)->name, (long long)n_in, (long long)nr, (long long)o0,
                                      (long long)o1, (long long)r, (long long)o, g, e);
                        }
                }
            /* mm_forward: AVX2 (and a higher level using the same entry)
             * against the scalar level, bit for bit. */
            void *scratch = malloc(mm_scratch_bytes(&w, n_rows));
            float *ref = malloc(sizeof(float) * n_out * n_rows);
            cr_assert_eq(cpu_set_level(CPU_SCALAR), 0);
            mm_forward(NULL, &w, x, n_rows, ref, scratch);
            for (int l = CPU_AVX2; l <= (int)cpu_best_level(); l++) {
                if (mm_kernels_get((enum cpu_level)l)->gemm[type] != k->gemm[type]) continue;
                cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
                for (int pool = 0; pool < 2; pool++) {
                    for (int64_t j = 0; j < n_out * n_rows; j++) got[j] = NAN;
                    mm_forward(pool ? tp : NULL, &w, x, n_rows, got, scratch);
                    cr_assert_eq(memcmp(got, ref, sizeof(float) * n_out * n_rows), 0,
                                 "%s n_in %lld: mm_forward at %s (pool %d) differs from scalar",
                                 dtype_get(type)->name, (long long)n_in, cpu_level_name((enum cpu_level)l), pool);
                }
            }
            cr_assert_eq(cpu_set_level(CPU_AVX2), 0);
            free(scratch);
            free(ref);
            free(want);
            free(got);
            free(xq);
            free(x);
            free(wd);
            mm_weight_release(&w);
        }
    }
    cpu_set_level(cpu_best_level());
    threadpool_free(tp);
}
