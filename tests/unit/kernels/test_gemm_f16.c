/*
 * test_gemm_f16.c - the F16 kernels (gemm_f16_avx512.c) in both layouts:
 * plain and X16 (mm_weight_repack), GEMV and GEMM, shapes with odd n_in
 * (not a multiple of 16, 32 or 64), n_out not a multiple of 16 (plain only),
 * 1..13, 24, 25 and 70 activation rows, with and without the thread pool.
 * Each result is checked against a double-precision product of the fp16
 * weights and the f32 activations (the F16 contract: f32 activations, fp32
 * accumulation) and against the reference level (mm_gemm_ref, which rounds
 * activations to fp16). Also: the in-place repack (neighbouring bytes kept,
 * rows read back exactly, every level gives the plain layout's products:
 * this covers the AVX2 level's X16 kernel, gemm_f16_avx2.c),
 * and mm_weights_repack over several weights of one mapping.
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
#include "kernels/quant.h"

/* Bounds relative to sum_i |w_i x_i| of the output element.
 * TOL_EXACT: fp32 accumulation of n_in <= 1024 products in a few lanes
 * (worst case about (n_in / 4) * 2^-24 = 1.5e-5, random signs far less).
 * TOL_REF: the reference rounds each activation to fp16 (2^-11 relative).
 * TOL_LEVELS: one level on the X16 layout against itself on the plain one. */
#define TOL_EXACT 1e-5
#define TOL_REF 1e-3
#define TOL_LEVELS 1e-5

typedef struct f16_problem {
    int64_t n_in, n_out, n_rows;
    uint16_t *w; /* (n_out, n_in) fp16 */
    float *x;    /* (n_rows, n_in) */
    double *exact, *scale;
} f16_problem;

static void make(f16_problem *p, int64_t n_in, int64_t n_out, int64_t n_rows, uint64_t seed) {
    p->n_in = n_in;
    p->n_out = n_out;
    p->n_rows = n_rows;
    p->w = malloc(sizeof(uint16_t) * n_in * n_out);
    p->x = malloc(sizeof(float) * n_in * n_rows);
    p->exact = malloc(sizeof(double) * n_out * n_rows);
    p->scale = malloc(sizeof(double) * n_out * n_rows);
    cr_assert(p->w && p->x && p->exact && p->scale);
    for (int64_t i = 0; i < n_in * n_out; i++) p->w[i] = f32_to_fp16((float)(rng_uniform(&seed) - 0.5));
    for (int64_t i = 0; i < n_in * n_rows; i++) p->x[i] = (float)(4 * rng_uniform(&seed) - 2);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double s = 0, a = 0;
            for (int64_t i = 0; i < n_in; i++) {
                double t = (double)fp16_to_f32(p->w[o * n_in + i]) * p->x[r * n_in + i];
                s += t;
                a += fabs(t);
            }
            p->exact[r * n_out + o] = s;
            p->scale[r * n_out + o] = a;
        }
}

static void unmake(f16_problem *p) {
    free(p->w);
    free(p->x);
    free(p->exact);
    free(p->scale);
}

/* A private mapping holding the weights at a non-page-aligned offset, the
 * rest of its bytes a known pattern (repack must keep them). */
typedef struct mapped {
    uint8_t *map, *data;
    size_t len, off, bytes;
} mapped;

static void map_weights(mapped *m, const f16_problem *p) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    m->bytes = sizeof(uint16_t) * p->n_in * p->n_out;
    m->off = page + 96;
    m->len = (m->off + m->bytes + page + page - 1) / page * page;
    m->map = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m->map, MAP_FAILED);
    for (size_t i = 0; i < m->len; i++) m->map[i] = (uint8_t)(i * 13);
    m->data = m->map + m->off;
    memcpy(m->data, p->w, m->bytes);
    cr_assert_eq(mprotect(m->map, m->len, PROT_READ), 0); /* like a read-only file mapping */
}

static void check_pattern(const mapped *m) {
    for (size_t i = 0; i < m->off; i++) cr_assert_eq(m->map[i], (uint8_t)(i * 13), "byte %zu before", i);
    for (size_t i = m->off + m->bytes; i < m->len; i++)
        cr_assert_eq(m->map[i], (uint8_t)(i * 13), "byte %zu after", i);
}

static float *forward(const mm_weight *w, const f16_problem *p, threadpool *tp) {
    void *scratch = malloc(mm_scratch_bytes(w, p->n_rows));
    float *y = malloc(sizeof(float) * p->n_out * p->n_rows);
    cr_assert(scratch && y);
    for (int64_t i = 0; i < p->n_out * p->n_rows; i++) y[i] = NAN;
    mm_forward(tp, w, p->x, p->n_rows, y, scratch);
    free(scratch);
    return y;
}

static void compare(const f16_problem *p, const float *got, const double *want, double tol, const char *what) {
    for (int64_t i = 0; i < p->n_out * p->n_rows; i++) {
        double e = fabs((double)got[i] - want[i]);
        cr_assert(e <= tol * p->scale[i] + 1e-30,
                  "%s: %lld out x %lld in, %lld rows: row %lld col %lld: got %.9g want %.9g (tol %g)", what,
                  (long long)p->n_out, (long long)p->n_in, (long long)p->n_rows, (long long)(i / p->n_out),
                  (long long)(i % p->n_out), got[i], want[i], tol * p->scale[i]);
    }
}

static void compare_f(const f16_problem *p, const float *got, const float *want, double tol, const char *what) {
    double *w = malloc(sizeof(double) * p->n_out * p->n_rows);
    for (int64_t i = 0; i < p->n_out * p->n_rows; i++) w[i] = want[i];
    compare(p, got, w, tol, what);
    free(w);
}

/* The bound for the current level against the exact product: the levels
 * below AVX-512 round activations to fp16 as the reference does. */
static double tol_now(void) { return cpu_level() >= CPU_AVX512 ? TOL_EXACT : TOL_REF; }

static int have_avx512(void) {
    if (cpu_best_level() >= CPU_AVX512) return 1;
    printf("skip: this CPU lacks the avx512 kernels (best is %s)\n", cpu_level_name(cpu_best_level()));
    return 0;
}

/* One shape through the AVX-512 kernels, plain and (when n_out allows)
 * repacked, alone and on the pool, against exact and reference results. */
static void run_shape(int64_t n_in, int64_t n_out, int64_t n_rows, threadpool *tp) {
    f16_problem p;
    make(&p, n_in, n_out, n_rows, (uint64_t)(n_in * 1000003 + n_out * 1009 + n_rows));
    mm_weight w;
    char err[256];
    cr_assert_eq(cpu_set_level(CPU_SCALAR), 0);
    cr_assert_eq(mm_weight_init(&w, DTYPE_F16, n_in, n_out, p.w, err, sizeof err), 0, "%s", err);
    float *ref = forward(&w, &p, NULL);
    cr_assert_eq(cpu_set_level(CPU_AVX512), 0);
    for (int pool = 0; pool < 2; pool++) {
        float *y = forward(&w, &p, pool ? tp : NULL);
        compare(&p, y, p.exact, TOL_EXACT, "plain vs exact");
        compare_f(&p, y, ref, TOL_REF, "plain vs reference");
        free(y);
    }
    mm_weight_release(&w);
    mapped m;
    map_weights(&m, &p);
    cr_assert_eq(mm_weight_init(&w, DTYPE_F16, n_in, n_out, m.data, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mm_weight_repack(&w, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.layout, n_out % 16 ? MM_LAYOUT_PLAIN : MM_LAYOUT_X16, "layout for n_out %lld", (long long)n_out);
    for (int pool = 0; pool < 2; pool++) {
        float *y = forward(&w, &p, pool ? tp : NULL);
        compare(&p, y, p.exact, TOL_EXACT, "x16 vs exact");
        compare_f(&p, y, ref, TOL_REF, "x16 vs reference");
        free(y);
    }
    mm_weight_release(&w);
    munmap(m.map, m.len);
    free(ref);
    unmake(&p);
}

Test(gemm_f16, gemv_shapes) {
    if (!have_avx512()) return;
    threadpool *tp = threadpool_new(2);
    cr_assert_not_null(tp);
    /* n_in: multiple of 64, of 32 not 64, of 16 not 32, odd; n_out: one
     * group, partial chunks, many chunks (the pool splits them). */
    const int64_t n_ins[] = {64, 96, 48, 7, 33, 100, 768};
    const int64_t n_outs[] = {16, 48, 80, 512, 37, 70};
    for (size_t i = 0; i < sizeof n_ins / sizeof n_ins[0]; i++)
        for (size_t o = 0; o < sizeof n_outs / sizeof n_outs[0]; o++) run_shape(n_ins[i], n_outs[o], 1, tp);
    threadpool_free(tp);
    cpu_set_level(cpu_best_level());
}

Test(gemm_f16, gemm_rows) {
    if (!have_avx512()) return;
    threadpool *tp = threadpool_new(2);
    cr_assert_not_null(tp);
    for (int64_t rows = 2; rows <= 13; rows++) run_shape(96, 48, rows, tp);
    const int64_t big_rows[] = {24, 25, 70};
    for (size_t i = 0; i < 3; i++) {
        run_shape(160, 96, big_rows[i], tp);
        run_shape(33, 37, big_rows[i], tp);
    }
    run_shape(1024, 64, 30, tp);
    threadpool_free(tp);
    cpu_set_level(cpu_best_level());
}

/* Repack in place: X16 for n_out % 16 == 0 (plain otherwise), neighbouring
 * bytes kept, every row read back bit for bit, and every level this CPU has
 * gives the same products as on the plain layout. */
Test(gemm_f16, repack_in_place_and_rows) {
    const int64_t shapes[][3] = {{96, 48, 5}, {33, 32, 3}, {2560, 16, 2}, {64, 40, 2}, {300, 64, 13}, {33, 48, 1}, {2560, 32, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        f16_problem p;
        make(&p, shapes[s][0], shapes[s][1], shapes[s][2], 7 + s);
        mapped m;
        map_weights(&m, &p);
        mm_weight plain, w;
        char err[256];
        cr_assert_eq(mm_weight_init(&plain, DTYPE_F16, p.n_in, p.n_out, p.w, err, sizeof err), 0, "%s", err);
        cr_assert_eq(mm_weight_init(&w, DTYPE_F16, p.n_in, p.n_out, m.data, err, sizeof err), 0, "%s", err);
        cr_assert_eq(mm_weight_repack(&w, err, sizeof err), 0, "%s", err);
        int x16 = p.n_out % 16 == 0;
        cr_assert_eq(w.layout, x16 ? MM_LAYOUT_X16 : MM_LAYOUT_PLAIN);
        if (x16) cr_assert_neq(memcmp(m.data, p.w, m.bytes), 0, "the bytes were permuted");
        else cr_assert_eq(memcmp(m.data, p.w, m.bytes), 0, "a plain weight is left alone");
        check_pattern(&m);
        float *row = malloc(sizeof(float) * p.n_in), *want = malloc(sizeof(float) * p.n_in);
        for (int64_t o = 0; o < p.n_out; o++) {
            mm_weight_get_row(&w, o, row);
            for (int64_t i = 0; i < p.n_in; i++) want[i] = fp16_to_f32(p.w[o * p.n_in + i]);
            cr_assert_eq(memcmp(row, want, sizeof(float) * p.n_in), 0, "row %lld of %lld x %lld", (long long)o,
                         (long long)p.n_out, (long long)p.n_in);
        }
        for (int l = 0; l <= (int)cpu_best_level(); l++) {
            cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
            float *y0 = forward(&plain, &p, NULL), *y1 = forward(&w, &p, NULL);
            compare_f(&p, y1, y0, TOL_LEVELS, cpu_level_name((enum cpu_level)l));
            free(y0);
            free(y1);
        }
        free(row);
        free(want);
        mm_weight_release(&plain);
        mm_weight_release(&w);
        munmap(m.map, m.len);
        unmake(&p);
    }
    cpu_set_level(cpu_best_level());
}

/* A group of F16 weights (Q/K/V-like, one repacked, one not) equals
 * separate calls bit for bit. */
Test(gemm_f16, group_equals_separate_calls) {
    if (!have_avx512()) return;
    cr_assert_eq(cpu_set_level(CPU_AVX512), 0);
    threadpool *tp = threadpool_new(2);
    cr_assert_not_null(tp);
    const int64_t n_outs[3] = {256, 64, 72}, n_in = 256;
    for (int64_t rows = 1; rows <= 9; rows += 8) {
        f16_problem p[3];
        mapped m[3];
        mm_weight w[3];
        const mm_weight *ws[3];
        float *want[3], *got[3];
        char err[256];
        size_t sb = 0;
        for (int i = 0; i < 3; i++) {
            make(&p[i], n_in, n_outs[i], rows, 50 + (uint64_t)i);
            map_weights(&m[i], &p[i]);
            cr_assert_eq(mm_weight_init(&w[i], DTYPE_F16, n_in, n_outs[i], m[i].data, err, sizeof err), 0, "%s", err);
            cr_assert_eq(mm_weight_repack(&w[i], err, sizeof err), 0, "%s", err);
            ws[i] = &w[i];
            if (mm_scratch_bytes(&w[i], rows) > sb) sb = mm_scratch_bytes(&w[i], rows);
        }
        cr_assert(mm_group_ok(ws, 3));
        void *scratch = malloc(sb);
        for (int i = 0; i < 3; i++) {
            want[i] = malloc(sizeof(float) * n_outs[i] * rows);
            got[i] = malloc(sizeof(float) * n_outs[i] * rows);
            mm_forward(tp, ws[i], p[0].x, rows, want[i], scratch);
        }
        mm_forward_group(tp, ws, 3, p[0].x, rows, got, scratch);
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(memcmp(got[i], want[i], sizeof(float) * n_outs[i] * rows), 0, "rows %lld weight %d",
                         (long long)rows, i);
            free(want[i]);
            free(got[i]);
            mm_weight_release(&w[i]);
            munmap(m[i].map, m[i].len);
            unmake(&p[i]);
        }
        free(scratch);
    }
    threadpool_free(tp);
    cpu_set_level(cpu_best_level());
}

/* mm_weights_repack: F16 weights close together on one mapping (one run,
 * with a weight that has no X16 layout between them) and one far away (its
 * own run): every byte outside the repacked weights keeps its value, the
 * weights read back and compute as before. */
Test(gemm_f16, repack_many) {
    const int64_t n_in = 96, n_outs[4] = {32, 40, 48, 16};
    const size_t offs[4] = {100, 100 + 6144 + 3000, 100 + 6144 + 3000 + 7680 + 64, (size_t)3 << 20};
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = (offs[3] + n_in * n_outs[3] * 2 + page) / page * page;
    uint8_t *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    for (size_t i = 0; i < len; i++) map[i] = (uint8_t)(i * 13);
    f16_problem p[4];
    mm_weight w[4], *ws[4];
    uint8_t *owned = calloc(len, 1); /* 1 where a repackable weight's byte lies */
    char err[256];
    for (int i = 0; i < 4; i++) {
        make(&p[i], n_in, n_outs[i], 3, 900 + (uint64_t)i);
        memcpy(map + offs[i], p[i].w, sizeof(uint16_t) * n_in * n_outs[i]);
        if (n_outs[i] % 16 == 0) memset(owned + offs[i], 1, sizeof(uint16_t) * n_in * n_outs[i]);
        cr_assert_eq(mm_weight_init(&w[i], DTYPE_F16, n_in, n_outs[i], map + offs[i], err, sizeof err), 0, "%s", err);
        ws[i] = &w[i];
    }
    cr_assert_eq(mprotect(map, len, PROT_READ), 0);
    uint8_t *before = malloc(len);
    memcpy(before, map, len);
    cr_assert_eq(mm_weights_repack(ws, 4, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(w[i].layout, n_outs[i] % 16 ? MM_LAYOUT_PLAIN : MM_LAYOUT_X16, "weight %d", i);
    for (size_t i = 0; i < len; i++)
        if (!owned[i]) cr_assert_eq(map[i], before[i], "byte %zu outside the weights changed", i);
    cr_assert_eq(cpu_set_level(cpu_best_level()), 0);
    float row[96];
    for (int i = 0; i < 4; i++) {
        for (int64_t o = 0; o < n_outs[i]; o++) {
            mm_weight_get_row(&w[i], o, row);
            for (int64_t k = 0; k < n_in; k++)
                cr_assert_eq(row[k], fp16_to_f32(p[i].w[o * n_in + k]), "weight %d row %lld", i, (long long)o);
        }
        float *y = forward(&w[i], &p[i], NULL);
        compare(&p[i], y, p[i].exact, tol_now(), "repacked together vs exact");
        free(y);
        mm_weight_release(&w[i]);
        unmake(&p[i]);
    }
    free(before);
    free(owned);
    munmap(map, len);
}

/* A 5.8 MiB weight over several 2 MiB huge pages, its 16-row groups (128 KiB
 * + 48 B) straddling the page boundaries: every row reads back exactly and
 * the products match the exact ones. */
Test(gemm_f16, repack_large) {
    f16_problem p;
    make(&p, 4104, 16 * 44, 2, 4242);
    mapped m;
    map_weights(&m, &p);
    mm_weight w;
    char err[256];
    cr_assert_eq(mm_weight_init(&w, DTYPE_F16, p.n_in, p.n_out, m.data, err, sizeof err), 0, "%s", err);
    cr_assert_eq(mm_weight_repack(&w, err, sizeof err), 0, "%s", err);
    cr_assert_eq(w.layout, MM_LAYOUT_X16);
    check_pattern(&m);
    float *row = malloc(sizeof(float) * p.n_in);
    for (int64_t o = 0; o < p.n_out; o++) {
        mm_weight_get_row(&w, o, row);
        for (int64_t k = 0; k < p.n_in; k++)
            cr_assert_eq(row[k], fp16_to_f32(p.w[o * p.n_in + k]), "row %lld element %lld", (long long)o,
                         (long long)k);
    }
    cr_assert_eq(cpu_set_level(cpu_best_level()), 0);
    float *y = forward(&w, &p, NULL);
    compare(&p, y, p.exact, 2 * tol_now(), "large repack vs exact"); /* n_in 4104: twice the sum length */
    free(y);
    free(row);
    mm_weight_release(&w);
    munmap(m.map, m.len);
    unmake(&p);
}
