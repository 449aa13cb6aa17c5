/*
 * test_attention_levels.c - the SIMD attention items (AVX2, AVX-512) against
 * the plain-C reference at model-like shapes: head_dim 64 and 128 (the
 * unrolled AVX-512 copies) and 48 (the generic one), GQA groups of 1, 4, 8
 * and 64 (the largest), more query heads than one AVX-512 pass holds,
 * contexts of up to 150 positions (many 16-position chunks, a partial last
 * one), keys that grow with position (the running max moves in later
 * chunks), f32 and f16 pools, and uneven thread splits. A level this CPU
 * lacks is skipped with a printed reason.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/attention.h"
#include "kernels/cpu.h"
#include "kernels/quant.h"

/* Largest |SIMD - reference| allowed on outputs of magnitude <= 1: the
 * summation order of q.k and the exp differ, nothing else. */
#define ATTN_SIMD_TOL 2e-5
/* Largest |reference - naive double| allowed. */
#define ATTN_REF_TOL 2e-5

enum { BS = 16, N_SEQS = 3, MAX_CTX = 150, N_TOK = 9 };

typedef struct pool {
    uint32_t n_head, n_kv, hd, n_blocks, per_seq;
    float *kf, *vf;     /* f32 values (already f16-rounded for an f16 pool) */
    uint16_t *kh, *vh;
    uint32_t *tables;   /* (N_SEQS, per_seq) */
    const uint32_t *tp[N_TOK];
    int32_t pos[N_TOK];
    int seq[N_TOK];
    float *q;
} pool;

static void pool_make(pool *p, uint32_t n_head, uint32_t n_kv, uint32_t hd) {
    uint64_t st = 7 + hd + n_head;
    p->n_head = n_head;
    p->n_kv = n_kv;
    p->hd = hd;
    p->per_seq = (MAX_CTX + BS) / BS;
    p->n_blocks = p->per_seq * N_SEQS;
    const size_t n = (size_t)p->n_blocks * BS * n_kv * hd;
    p->kf = malloc(n * sizeof(float));
    p->vf = malloc(n * sizeof(float));
    p->kh = malloc(n * sizeof(uint16_t));
    p->vh = malloc(n * sizeof(uint16_t));
    p->tables = malloc((size_t)N_SEQS * p->per_seq * sizeof(uint32_t));
    p->q = malloc((size_t)N_TOK * n_head * hd * sizeof(float));
    cr_assert(p->kf && p->vf && p->kh && p->vh && p->tables && p->q);
    /* Blocks shuffled over the sequences. */
    for (uint32_t i = 0; i < p->n_blocks; i++) p->tables[i] = i;
    for (uint32_t i = p->n_blocks - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(splitmix64(&st) % (i + 1)), t = p->tables[i];
        p->tables[i] = p->tables[j];
        p->tables[j] = t;
    }
    /* K grows with the slot (position within a block set): scores spread
     * further as positions go on, so the max moves in later chunks. */
    for (size_t i = 0; i < n; i++) {
        const size_t slot = i / ((size_t)n_kv * hd) % BS, blk = i / ((size_t)BS * n_kv * hd);
        const float grow = 1.0f + 0.05f * (float)((blk % p->per_seq) * BS + slot) / 4.0f;
        p->kh[i] = f32_to_fp16((float)(rng_uniform(&st) * 2 - 1) * grow);
        p->vh[i] = f32_to_fp16((float)(rng_uniform(&st) * 2 - 1));
        p->kf[i] = fp16_to_f32(p->kh[i]);
        p->vf[i] = fp16_to_f32(p->vh[i]);
    }
    /* Decodes at long contexts, a prefill run of seq 0, exact chunk edges. */
    const int32_t pos[N_TOK] = {MAX_CTX, 15, 16, 31, 32, 33, 0, 1, 100};
    const int seq[N_TOK] = {1, 0, 0, 0, 0, 0, 2, 2, 2};
    memcpy(p->pos, pos, sizeof pos);
    memcpy(p->seq, seq, sizeof seq);
    for (int t = 0; t < N_TOK; t++) p->tp[t] = p->tables + (size_t)seq[t] * p->per_seq;
    for (size_t i = 0; i < (size_t)N_TOK * n_head * hd; i++)
        p->q[i] = (float)(rng_uniform(&st) * 2 - 1) * 1.5f;
}

static void pool_free(pool *p) {
    free(p->kf);
    free(p->vf);
    free(p->kh);
    free(p->vh);
    free(p->tables);
    free(p->q);
}

static attn_args pool_args(const pool *p, float *out, int f16) {
    return (attn_args){.n_tokens = N_TOK, .n_head = p->n_head, .n_head_kv = p->n_kv,
                       .head_dim = p->hd, .q = p->q, .q_stride = (size_t)p->n_head * p->hd,
                       .out = out, .out_stride = (size_t)p->n_head * p->hd,
                       .k = f16 ? (const void *)p->kh : (const void *)p->kf,
                       .v = f16 ? (const void *)p->vh : (const void *)p->vf,
                       .kv_type = f16 ? DTYPE_F16 : DTYPE_F32, .block_size = BS, .pos = p->pos,
                       .tables = p->tp, .scale = 1.0f / sqrtf((float)p->hd)};
}

static const float *pool_row(const pool *p, const float *base, int t, int j, uint32_t kvh) {
    const uint32_t blk = p->tp[t][j / BS];
    return base + (((size_t)blk * BS + j % BS) * p->n_kv + kvh) * p->hd;
}

/* Output element i of token t, head h, in double. */
static void naive(const pool *p, int t, uint32_t h, double *out) {
    const uint32_t kvh = h / (p->n_head / p->n_kv);
    const float *q = p->q + ((size_t)t * p->n_head + h) * p->hd;
    double sc[MAX_CTX + 1], mx = -1e300, sum = 0;
    for (int j = 0; j <= p->pos[t]; j++) {
        const float *k = pool_row(p, p->kf, t, j, kvh);
        double d = 0;
        for (uint32_t i = 0; i < p->hd; i++) d += (double)q[i] * k[i];
        sc[j] = d / sqrt((double)p->hd);
        mx = fmax(mx, sc[j]);
    }
    for (int j = 0; j <= p->pos[t]; j++) sum += (sc[j] = exp(sc[j] - mx));
    for (uint32_t i = 0; i < p->hd; i++) out[i] = 0;
    for (int j = 0; j <= p->pos[t]; j++) {
        const float *v = pool_row(p, p->vf, t, j, kvh);
        for (uint32_t i = 0; i < p->hd; i++) out[i] += sc[j] / sum * v[i];
    }
}

static void run_level(const pool *p, int f16, enum cpu_level level, uint32_t nth, float *out) {
    cr_assert_eq(cpu_set_level(level), 0);
    attn_args a = pool_args(p, out, f16);
    for (uint32_t ith = 0; ith < nth; ith++) attn_forward_range(&a, ith, nth);
}

static void check_shape(uint32_t n_head, uint32_t n_kv, uint32_t hd) {
    static pool p;
    pool_make(&p, n_head, n_kv, hd);
    const size_t n_out = (size_t)N_TOK * n_head * hd;
    float *ref = malloc(n_out * sizeof(float)), *got = malloc(n_out * sizeof(float));
    float *split = malloc(n_out * sizeof(float));
    double *nv = malloc(hd * sizeof(double));
    cr_assert(ref && got && split && nv);
    const enum cpu_level best = cpu_best_level();
    for (int f16 = 0; f16 <= 1; f16++) {
        run_level(&p, f16, CPU_SCALAR, 1, ref);
        for (int t = 0; t < N_TOK; t++) {
            for (uint32_t h = 0; h < n_head; h++) {
                naive(&p, t, h, nv);
                const float *r = ref + ((size_t)t * n_head + h) * hd;
                for (uint32_t i = 0; i < hd; i++)
                    cr_assert(fabs(r[i] - nv[i]) <= ATTN_REF_TOL,
                              "hd %u f16 %d token %d head %u [%u]: reference %g vs naive %g",
                              hd, f16, t, h, i, r[i], nv[i]);
            }
        }
        for (int l = CPU_AVX2; l < CPU_LEVEL_COUNT; l++) {
            if (l > (int)best) {
                printf("attention levels: skipping %s (hd %u): this CPU lacks it\n",
                       cpu_level_name((enum cpu_level)l), hd);
                continue;
            }
            run_level(&p, f16, (enum cpu_level)l, 1, got);
            for (size_t i = 0; i < n_out; i++)
                cr_assert(fabs(got[i] - ref[i]) <= ATTN_SIMD_TOL,
                          "%s hd %u group %u f16 %d element %zu: %g vs reference %g",
                          cpu_level_name((enum cpu_level)l), hd, n_head / n_kv, f16, i, got[i],
                          ref[i]);
            /* Uneven splits, more threads than items included: same bits. */
            const uint32_t nths[] = {2, 3, 7, 64};
            for (size_t k = 0; k < sizeof nths / sizeof nths[0]; k++) {
                memset(split, 0xff, n_out * sizeof(float));
                run_level(&p, f16, (enum cpu_level)l, nths[k], split);
                cr_assert_eq(memcmp(split, got, n_out * sizeof(float)), 0, "%s nth %u",
                             cpu_level_name((enum cpu_level)l), nths[k]);
            }
        }
    }
    cpu_set_level(best);
    free(ref);
    free(got);
    free(split);
    free(nv);
    pool_free(&p);
}

Test(attention_levels, head_dim_64_no_gqa) { check_shape(4, 4, 64); }
Test(attention_levels, head_dim_64_group_4) { check_shape(8, 2, 64); }
Test(attention_levels, head_dim_128_group_8) { check_shape(8, 1, 128); }
Test(attention_levels, head_dim_48_group_2) { check_shape(4, 2, 48); }
/* The largest GQA group (ATTN_MAX_GROUP query heads on one KV head), and
 * more query heads than one pass of the AVX-512 item keeps (it goes in
 * passes of ATTN_MAX_GROUP). */
Test(attention_levels, largest_group) { check_shape(ATTN_MAX_GROUP, 1, 64); }
Test(attention_levels, heads_beyond_one_pass) { check_shape(ATTN_MAX_GROUP + 16, ATTN_MAX_GROUP + 16, 64); }
