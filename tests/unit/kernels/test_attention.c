/*
 * test_attention.c - paged causal attention (src/kernels/attention.c)
 * against a naive computation: gather each sequence's K/V through its block
 * table, scores in double, softmax, weighted sum. Covers GQA head mapping,
 * per-token causal limits within one batch, shuffled block tables, f32 and
 * f16 pools, splitting the work over threads, and every dispatch level this
 * CPU has (plain C, AVX2, AVX-512).
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

enum { N_HEAD = 8, N_KV = 2, HD = 16, BS = 4, N_BLOCKS = 24, N_SEQS = 3, MAX_POS = 20 };

typedef struct setup {
    float kf[N_BLOCKS * BS * N_KV * HD], vf[N_BLOCKS * BS * N_KV * HD]; /* f32 values */
    uint16_t kh[N_BLOCKS * BS * N_KV * HD], vh[N_BLOCKS * BS * N_KV * HD];
    uint32_t tables[N_SEQS][N_BLOCKS / N_SEQS];
    const uint32_t *tp[16]; /* per token */
    int32_t pos[16], seq[16];
    float q[16 * N_HEAD * HD];
    uint32_t n_tokens;
} setup;

static void make(setup *s, int f16) {
    uint64_t st = 42;
    for (size_t i = 0; i < sizeof s->kf / sizeof s->kf[0]; i++) {
        s->kf[i] = (float)(rng_uniform(&st) * 2 - 1);
        s->vf[i] = (float)(rng_uniform(&st) * 2 - 1);
        s->kh[i] = f32_to_fp16(s->kf[i]);
        s->vh[i] = f32_to_fp16(s->vf[i]);
        if (f16) {
            s->kf[i] = fp16_to_f32(s->kh[i]);
            s->vf[i] = fp16_to_f32(s->vh[i]);
        }
    }
    /* Shuffled block ids split over the sequences. */
    uint32_t perm[N_BLOCKS];
    for (uint32_t i = 0; i < N_BLOCKS; i++) perm[i] = i;
    for (uint32_t i = N_BLOCKS - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(splitmix64(&st) % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int sq = 0; sq < N_SEQS; sq++) {
        for (int b = 0; b < N_BLOCKS / N_SEQS; b++) s->tables[sq][b] = perm[sq * (N_BLOCKS / N_SEQS) + b];
    }
    /* A mixed batch: a prefill run of seq 0, decodes of seqs 1 and 2. */
    const int32_t pos[] = {0, 1, 2, 3, 4, 5, 17, MAX_POS, 9, 10, 11};
    const int32_t seq[] = {0, 0, 0, 0, 0, 0, 1, 2, 0, 1, 2};
    s->n_tokens = sizeof pos / sizeof pos[0];
    memcpy(s->pos, pos, sizeof pos);
    memcpy(s->seq, seq, sizeof seq);
    for (uint32_t t = 0; t < s->n_tokens; t++) s->tp[t] = s->tables[seq[t]];
    for (size_t i = 0; i < s->n_tokens * N_HEAD * HD; i++) s->q[i] = (float)(rng_uniform(&st) * 2 - 1);
}

static attn_args args(setup *s, float *out, int f16) {
    attn_args a = {.n_tokens = s->n_tokens, .n_head = N_HEAD, .n_head_kv = N_KV, .head_dim = HD,
                   .q = s->q, .q_stride = N_HEAD * HD, .out = out, .out_stride = N_HEAD * HD,
                   .k = f16 ? (const void *)s->kh : (const void *)s->kf,
                   .v = f16 ? (const void *)s->vh : (const void *)s->vf,
                   .kv_type = f16 ? DTYPE_F16 : DTYPE_F32, .block_size = BS, .pos = s->pos,
                   .tables = s->tp, .scale = 1.0f / sqrtf(HD)};
    return a;
}

static const float *row(const setup *s, const float *base, int sq, int j, int kvh) {
    const uint32_t blk = s->tables[sq][j / BS];
    return base + (((size_t)blk * BS + j % BS) * N_KV + kvh) * HD;
}

static void naive(const setup *s, float *out) {
    for (uint32_t t = 0; t < s->n_tokens; t++) {
        for (int h = 0; h < N_HEAD; h++) {
            const int kvh = h / (N_HEAD / N_KV);
            const float *q = s->q + ((size_t)t * N_HEAD + h) * HD;
            double sc[MAX_POS + 1], mx = -1e300, sum = 0;
            for (int j = 0; j <= s->pos[t]; j++) {
                const float *k = row(s, s->kf, s->seq[t], j, kvh);
                double d = 0;
                for (int i = 0; i < HD; i++) d += (double)q[i] * k[i];
                sc[j] = d / sqrt(HD);
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j <= s->pos[t]; j++) sum += (sc[j] = exp(sc[j] - mx));
            for (int i = 0; i < HD; i++) {
                double acc = 0;
                for (int j = 0; j <= s->pos[t]; j++) acc += sc[j] / sum * row(s, s->vf, s->seq[t], j, kvh)[i];
                out[((size_t)t * N_HEAD + h) * HD + i] = (float)acc;
            }
        }
    }
}

static void check(int f16) {
    static setup s;
    make(&s, f16);
    float ref[16 * N_HEAD * HD], got[16 * N_HEAD * HD];
    naive(&s, ref);
    attn_args a = args(&s, got, f16);
    attn_forward_range(&a, 0, 1);
    for (size_t i = 0; i < s.n_tokens * N_HEAD * HD; i++)
        cr_assert(fabs(got[i] - ref[i]) <= 1e-5, "f16 %d element %zu: %g vs %g", f16, i, got[i], ref[i]);
    /* Position 0 attends to itself only: the output is V row 0. */
    for (int h = 0; h < N_HEAD; h++)
        for (int i = 0; i < HD; i++)
            cr_assert(fabs(got[h * HD + i] - row(&s, s.vf, 0, 0, h / (N_HEAD / N_KV))[i]) <= 1e-6);
    /* Any split over threads gives the same bits. */
    float split[16 * N_HEAD * HD];
    for (uint32_t nth = 2; nth <= 5; nth++) {
        memset(split, 0, sizeof split);
        a.out = split;
        for (uint32_t ith = 0; ith < nth; ith++) attn_forward_range(&a, ith, nth);
        cr_assert_eq(memcmp(split, got, s.n_tokens * N_HEAD * HD * sizeof(float)), 0, "nth %u", nth);
    }
}

/* Runs check() at each level the CPU supports, then restores the default. */
static void check_levels(int f16) {
    const enum cpu_level best = cpu_best_level();
    int n = 0;
    for (int l = CPU_SCALAR; l <= (int)best; l++) {
        cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
        check(f16);
        n++;
    }
    cpu_set_level(best);
    printf("attention (f16 %d): checked at %d dispatch levels\n", f16, n);
}

Test(attention, f32_pool_matches_naive) { check_levels(0); }
Test(attention, f16_pool_matches_naive) { check_levels(1); }

Test(attention, odd_head_dim_uses_the_reference) {
    /* head_dim 6 is not a multiple of 8: every level runs the plain C item. */
    float q[6] = {1, 0, 0, 0, 0, 0}, k[2 * 6] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    float v[2 * 6] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6}, out[6];
    uint32_t table[1] = {0};
    const uint32_t *tp[1] = {table};
    int32_t pos[1] = {1};
    attn_args a = {.n_tokens = 1, .n_head = 1, .n_head_kv = 1, .head_dim = 6, .q = q, .q_stride = 6,
                   .out = out, .out_stride = 6, .k = k, .v = v, .kv_type = DTYPE_F32,
                   .block_size = 2, .pos = pos, .tables = tp, .scale = 1.0f};
    attn_forward_range(&a, 0, 1);
    const double w0 = exp(1.0) / (exp(1.0) + 1.0), w1 = 1 - w0;
    for (int i = 0; i < 6; i++) cr_assert(fabs(out[i] - (w0 * v[i] + w1 * v[6 + i])) < 1e-6);
}

Test(attention, load_row_reads_through_the_block_table) {
    static setup s;
    make(&s, 0);
    float out[16 * N_HEAD * HD], r[HD];
    attn_args a = args(&s, out, 0);
    attn_load_row(&a, s.kf, s.tables[1], 13, 1, r);
    cr_assert_eq(memcmp(r, row(&s, s.kf, 1, 13, 1), sizeof r), 0);
    a = args(&s, out, 1);
    attn_load_row(&a, s.kh, s.tables[2], 6, 0, r);
    for (int i = 0; i < HD; i++) cr_assert_eq(r[i], fp16_to_f32(s.kh[(((size_t)s.tables[2][1] * BS + 2) * N_KV) * HD + i]));
}

/* attn_store_row at every level this CPU has: f16 rows bit-identical to
 * f32_to_fp16 over the whole float range (normals of every exponent,
 * values halfway between two halves, overflow to infinity, f16 subnormals,
 * f32 subnormals, zeros, infinities, NaNs with payloads, in vectors with
 * and without a NaN), lengths with SIMD tails; f32 rows copied. */
Test(attention, store_row_matches_f32_to_fp16) {
    enum { N = 4099 };
    static float src[N];
    static uint16_t got[N];
    uint64_t st = 5;
    for (int i = 0; i < N; i++) {
        uint32_t bits = (uint32_t)splitmix64(&st);
        switch (i % 7) {
        case 1: bits = (bits & 0x80000000u) | (0x38000000u + (bits & 0x07ffffffu)); break; /* near f16 range */
        case 2: bits = (bits & 0x8fffe000u) | 0x00001000u | 0x38000000u; break;          /* halfway */
        case 3: bits = (bits & 0x807fffffu) | 0x33000000u; break;                        /* f16 subnormal */
        default: break;
        }
        memcpy(&src[i], &bits, sizeof bits);
    }
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, 65504.0f, 65520.0f, 65519.99f,
                             -65520.0f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 1e-40f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) src[100 + i] = special[i];
    const uint32_t nan_bits[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7fbfffffu};
    for (size_t i = 0; i < 4; i++) memcpy(&src[200 + 17 * i], &nan_bits[i], 4);
    const enum cpu_level best = cpu_best_level();
    const uint32_t lens[] = {N, 1, 7, 8, 15, 16, 17, 33};
    for (int l = 0; l <= (int)best; l++) {
        cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            memset(got, 0xa5, sizeof got);
            attn_store_row(DTYPE_F16, got, src, lens[k]);
            for (uint32_t i = 0; i < lens[k]; i++)
                cr_assert_eq(got[i], f32_to_fp16(src[i]), "%s n %u [%u] %a: %04x vs %04x",
                             cpu_level_name((enum cpu_level)l), lens[k], i, (double)src[i],
                             got[i], f32_to_fp16(src[i]));
            if (lens[k] < N) cr_assert_eq(got[lens[k]], 0xa5a5, "wrote past n");
        }
    }
    cpu_set_level(best);
    static float f32[N];
    attn_store_row(DTYPE_F32, f32, src, N);
    cr_assert_eq(memcmp(f32, src, sizeof f32), 0);
}
