/*
 * test_attention.c - paged causal attention (src/kernels/attention.c)
 * against a naive computation: gather each sequence's K/V through its block
 * table, scores in double, softmax, weighted sum. Covers GQA head mapping,
 * per-token causal limits within one batch, shuffled block tables, f32 and
 * f16 pools, splitting the work over threads, and every dispatch level this
 * CPU has (plain C, AVX2, AVX-512). The query tiles of a prefill chunk
 * (attn_tile_avx2) give every token the bits of the token computed alone,
 * at any tile size and offset.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "kernels/attention.h"
#include "kernels/attention_int.h"
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
        for (int b = 0; b < N_BLOCKS / N_SEQS; b++)
            s->tables[sq][b] = perm[sq * (N_BLOCKS / N_SEQS) + b];
    }
    /* A mixed batch: a prefill run of seq 0, decodes of seqs 1 and 2. */
    const int32_t pos[] = {0, 1, 2, 3, 4, 5, 17, MAX_POS, 9, 10, 11};
    const int32_t seq[] = {0, 0, 0, 0, 0, 0, 1, 2, 0, 1, 2};
    s->n_tokens = sizeof pos / sizeof pos[0];
    memcpy(s->pos, pos, sizeof pos);
    memcpy(s->seq, seq, sizeof seq);
    for (uint32_t t = 0; t < s->n_tokens; t++) s->tp[t] = s->tables[seq[t]];
    for (size_t i = 0; i < s->n_tokens * N_HEAD * HD; i++)
        s->q[i] = (float)(rng_uniform(&st) * 2 - 1);
}

static attn_args args(setup *s, float *out, int f16) {
    attn_args a = {.n_tokens = s->n_tokens,
                   .n_head = N_HEAD,
                   .n_head_kv = N_KV,
                   .head_dim = HD,
                   .q = s->q,
                   .q_stride = N_HEAD * HD,
                   .out = out,
                   .out_stride = N_HEAD * HD,
                   .k = f16 ? (const void *)s->kh : (const void *)s->kf,
                   .v = f16 ? (const void *)s->vh : (const void *)s->vf,
                   .kv_type = f16 ? DTYPE_F16 : DTYPE_F32,
                   .block_size = BS,
                   .pos = s->pos,
                   .tables = s->tp,
                   .scale = 1.0f / sqrtf(HD)};
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
                for (int j = 0; j <= s->pos[t]; j++)
                    acc += sc[j] / sum * row(s, s->vf, s->seq[t], j, kvh)[i];
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
        cr_assert(fabs(got[i] - ref[i]) <= 1e-5, "f16 %d element %zu: %g vs %g", f16, i, got[i],
                  ref[i]);
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
        cr_assert_eq(memcmp(split, got, s.n_tokens * N_HEAD * HD * sizeof(float)), 0, "nth %u",
                     nth);
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

Test(attention, f32_pool_matches_naive) {
    check_levels(0);
}
Test(attention, f16_pool_matches_naive) {
    check_levels(1);
}

Test(attention, odd_head_dim_uses_the_reference) {
    /* head_dim 6 is not a multiple of 8: every level runs the plain C item. */
    float q[6] = {1, 0, 0, 0, 0, 0}, k[2 * 6] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    float v[2 * 6] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6}, out[6];
    uint32_t table[1] = {0};
    const uint32_t *tp[1] = {table};
    int32_t pos[1] = {1};
    attn_args a = {.n_tokens = 1,
                   .n_head = 1,
                   .n_head_kv = 1,
                   .head_dim = 6,
                   .q = q,
                   .q_stride = 6,
                   .out = out,
                   .out_stride = 6,
                   .k = k,
                   .v = v,
                   .kv_type = DTYPE_F32,
                   .block_size = 2,
                   .pos = pos,
                   .tables = tp,
                   .scale = 1.0f};
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
    for (int i = 0; i < HD; i++)
        cr_assert_eq(r[i], fp16_to_f32(s.kh[(((size_t)s.tables[2][1] * BS + 2) * N_KV) * HD + i]));
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
        case 1:
            bits = (bits & 0x80000000u) | (0x38000000u + (bits & 0x07ffffffu));
            break; /* near f16 range */
        case 2:
            bits = (bits & 0x8fffe000u) | 0x00001000u | 0x38000000u;
            break; /* halfway */
        case 3:
            bits = (bits & 0x807fffffu) | 0x33000000u;
            break; /* f16 subnormal */
        default:
            break;
        }
        memcpy(&src[i], &bits, sizeof bits);
    }
    const float special[] = {0.0f,          -0.0f,         INFINITY,      -INFINITY,
                             65504.0f,      65520.0f,      65519.99f,     -65520.0f,
                             5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 1e-40f};
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
                             cpu_level_name((enum cpu_level)l), lens[k], i, (double)src[i], got[i],
                             f32_to_fp16(src[i]));
            if (lens[k] < N) cr_assert_eq(got[lens[k]], 0xa5a5, "wrote past n");
        }
    }
    cpu_set_level(best);
    static float f32[N];
    attn_store_row(DTYPE_F32, f32, src, N);
    cr_assert_eq(memcmp(f32, src, sizeof f32), 0);
}

/* ---- Query tiles: a prefill chunk's tokens share each K/V load. ---- */

enum { TBS = 16, T_SEQS = 3, T_PER_SEQ = 6, T_MAX_TOK = 96 };

typedef struct tpool {
    uint32_t n_head, n_kv, hd;
    float *kf, *vf; /* f32 values (f16-rounded for an f16 pool) */
    uint16_t *kh, *vh;
    uint32_t tables[T_SEQS][T_PER_SEQ];
    const uint32_t *tp[T_MAX_TOK];
    int32_t pos[T_MAX_TOK];
    float *q;
    uint32_t n_tokens;
} tpool;

/* Random K/V/Q (keys grow with position so the running max moves in later
 * chunks) and shuffled block tables; no batch yet. */
static void tpool_make(tpool *p, uint32_t n_head, uint32_t n_kv, uint32_t hd, uint64_t seed) {
    const size_t n_blocks = (size_t)T_SEQS * T_PER_SEQ, n = n_blocks * TBS * n_kv * hd;
    p->n_head = n_head;
    p->n_kv = n_kv;
    p->hd = hd;
    p->kf = malloc(n * sizeof(float));
    p->vf = malloc(n * sizeof(float));
    p->kh = malloc(n * sizeof(uint16_t));
    p->vh = malloc(n * sizeof(uint16_t));
    p->q = malloc((size_t)T_MAX_TOK * n_head * hd * sizeof(float));
    cr_assert(p->kf && p->vf && p->kh && p->vh && p->q);
    uint64_t st = seed;
    for (size_t i = 0; i < n; i++) {
        const double slot = (double)((i / ((size_t)n_kv * hd)) % TBS) / TBS;
        p->kf[i] = (float)((rng_uniform(&st) * 2 - 1) * (1 + slot));
        p->vf[i] = (float)(rng_uniform(&st) * 2 - 1);
        p->kh[i] = f32_to_fp16(p->kf[i]);
        p->vh[i] = f32_to_fp16(p->vf[i]);
    }
    uint32_t perm[T_SEQS * T_PER_SEQ];
    for (uint32_t i = 0; i < n_blocks; i++) perm[i] = i;
    for (uint32_t i = (uint32_t)n_blocks - 1; i > 0; i--) {
        const uint32_t j = (uint32_t)(splitmix64(&st) % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int sq = 0; sq < T_SEQS; sq++)
        for (int b = 0; b < T_PER_SEQ; b++) p->tables[sq][b] = perm[sq * T_PER_SEQ + b];
    for (size_t i = 0; i < (size_t)T_MAX_TOK * n_head * hd; i++)
        p->q[i] = (float)(rng_uniform(&st) * 2 - 1) * 1.5f;
}

static void tpool_free(tpool *p) {
    free(p->kf);
    free(p->vf);
    free(p->kh);
    free(p->vh);
    free(p->q);
}

/* Appends the run of positions p0..p0+len-1 of sequence sq to the batch. */
static void tpool_run(tpool *p, int sq, int32_t p0, uint32_t len) {
    for (uint32_t i = 0; i < len; i++) {
        cr_assert(p->n_tokens < T_MAX_TOK);
        p->tp[p->n_tokens] = p->tables[sq];
        p->pos[p->n_tokens++] = p0 + (int32_t)i;
    }
}

static attn_args tpool_args(const tpool *p, float *out, int f16) {
    return (attn_args){.n_tokens = p->n_tokens,
                       .n_head = p->n_head,
                       .n_head_kv = p->n_kv,
                       .head_dim = p->hd,
                       .q = p->q,
                       .q_stride = (size_t)p->n_head * p->hd,
                       .out = out,
                       .out_stride = (size_t)p->n_head * p->hd,
                       .k = f16 ? (const void *)p->kh : (const void *)p->kf,
                       .v = f16 ? (const void *)p->vh : (const void *)p->vf,
                       .kv_type = f16 ? DTYPE_F16 : DTYPE_F32,
                       .block_size = TBS,
                       .pos = p->pos,
                       .tables = p->tp,
                       .scale = 1.0f / sqrtf((float)p->hd)};
}

/* Every token of the batch computed alone: a batch of one, as a decode
 * step or a one-token prefill runs it. */
static void one_by_one(const tpool *p, int f16, float *out) {
    const size_t row = (size_t)p->n_head * p->hd;
    for (uint32_t t = 0; t < p->n_tokens; t++) {
        attn_args a = tpool_args(p, out, f16);
        a.n_tokens = 1;
        a.q = p->q + t * row;
        a.out = out + t * row;
        a.pos = p->pos + t;
        a.tables = p->tp + t;
        attn_forward_range(&a, 0, 1);
    }
}

/* tile called directly on every sub-run of 2 or more tokens of each chunk
 * (every tile size up to ATTN_TILE and offset; odd sizes with all KV heads
 * in one call, even ones head by head) must give the bits of single (the
 * tokens one by one at the AVX2 level). Returns how many calls it made. */
static uint32_t check_tile_fn(const tpool *p, int f16, attn_tile_fn tile, const char *name,
                              const float *single, float *got) {
    const size_t n_out = (size_t)p->n_tokens * p->n_head * p->hd, row = (size_t)p->n_head * p->hd;
    const uint32_t group = p->n_head / p->n_kv;
    const uint32_t max_nt = ATTN_TILE_ROWS / group < ATTN_TILE ? ATTN_TILE_ROWS / group : ATTN_TILE;
    attn_args a = tpool_args(p, got, f16);
    uint32_t n_calls = 0;
    for (uint32_t t0 = 0; t0 < p->n_tokens; t0++) {
        for (uint32_t nt = 2; nt <= max_nt && t0 + nt <= p->n_tokens; nt++) {
            const uint32_t last = t0 + nt - 1;
            if (p->tp[last] != p->tp[t0] || p->pos[last] != p->pos[t0] + (int32_t)(nt - 1)) break;
            if ((size_t)nt * group * p->hd > ATTN_TILE_FLOATS) break;
            memset(got, 0xff, n_out * sizeof(float));
            if (nt % 2)
                tile(&a, t0, nt, 0, p->n_kv);
            else
                for (uint32_t h = 0; h < p->n_kv; h++) tile(&a, t0, nt, h, h + 1);
            cr_assert(memcmp(got + t0 * row, single + t0 * row, nt * row * sizeof(float)) == 0,
                      "%s f16 %d group %u hd %u tokens %u..%u differ from alone", name, f16, group,
                      p->hd, t0, last);
            n_calls++;
        }
    }
    return n_calls;
}

/* The batch through attn_forward_range (tiles where the level has them)
 * must equal the tokens one by one bit for bit, for any thread split, and
 * the plain-C reference within the SIMD tolerance; attn_tile_avx2 and
 * attn_tile_avx512 (where the CPU has them) called directly on every
 * sub-run of each chunk give the same bits too (check_tile_fn). has_tiles:
 * whether the batch has a run of two or more tokens to tile. */
static void check_tiles(tpool *p, int has_tiles) {
    const size_t n_out = (size_t)p->n_tokens * p->n_head * p->hd;
    float *single = malloc(n_out * sizeof(float)), *got = malloc(n_out * sizeof(float));
    float *ref = malloc(n_out * sizeof(float));
    cr_assert(single && got && ref);
    const enum cpu_level best = cpu_best_level();
    const uint32_t group = p->n_head / p->n_kv;
    for (int f16 = 0; f16 <= 1; f16++) {
        cr_assert_eq(cpu_set_level(CPU_SCALAR), 0);
        attn_args a = tpool_args(p, ref, f16);
        attn_forward_range(&a, 0, 1);
        for (int l = CPU_SCALAR; l <= (int)best; l++) {
            cr_assert_eq(cpu_set_level((enum cpu_level)l), 0);
            const char *lname = cpu_level_name((enum cpu_level)l);
            one_by_one(p, f16, single);
            const uint32_t nths[] = {1, 2, 3, 7};
            for (size_t k = 0; k < sizeof nths / sizeof nths[0]; k++) {
                memset(got, 0xff, n_out * sizeof(float));
                a = tpool_args(p, got, f16);
                for (uint32_t ith = 0; ith < nths[k]; ith++) attn_forward_range(&a, ith, nths[k]);
                for (size_t i = 0; i < n_out; i++)
                    cr_assert(memcmp(&got[i], &single[i], sizeof(float)) == 0,
                              "%s f16 %d group %u hd %u nth %u element %zu (token %zu): batch %a "
                              "vs alone %a",
                              lname, f16, group, p->hd, nths[k], i, i / ((size_t)p->n_head * p->hd),
                              (double)got[i], (double)single[i]);
            }
            for (size_t i = 0; i < n_out; i++)
                cr_assert(fabs(got[i] - ref[i]) <= 2e-5,
                          "%s f16 %d element %zu: %g vs reference %g", lname, f16, i, got[i],
                          ref[i]);
        }
        if (best < CPU_AVX2 || p->hd % 8 != 0) {
            printf("attention tiles: attn_tile_avx2 not called directly: %s\n",
                   best < CPU_AVX2 ? "this CPU lacks AVX2" : "head_dim not a multiple of 8");
            continue;
        }
        cr_assert_eq(cpu_set_level(CPU_AVX2), 0);
        one_by_one(p, f16, single);
        const uint32_t n_calls =
            check_tile_fn(p, f16, attn_tile_avx2, "attn_tile_avx2", single, got);
        cr_assert_eq(n_calls > 0, has_tiles, "%u direct tile calls", n_calls);
        if (best >= CPU_AVX512 && p->hd % 16 == 0)
            check_tile_fn(p, f16, attn_tile_avx512, "attn_tile_avx512", single, got);
        else
            printf("attention tiles: attn_tile_avx512 not called (hd %u): %s\n", p->hd,
                   best < CPU_AVX512 ? "this CPU lacks AVX-512" : "head_dim not a multiple of 16");
    }
    cpu_set_level(best);
    free(single);
    free(got);
    free(ref);
}

/* A mixed batch: a prefill chunk of seq 0 from position 0 (several full
 * tiles, crossing block boundaries), two chunks of seq 1 not starting at 0
 * and not a multiple of the tile long, interleaved with decodes of seq 2
 * and a lone seq 1 token that continues no run. */
static void mixed_batch(tpool *p) {
    p->n_tokens = 0;
    tpool_run(p, 0, 0, 35);
    tpool_run(p, 1, 13, 11);
    tpool_run(p, 2, 70, 1);
    tpool_run(p, 1, 24, 21);
    tpool_run(p, 2, 71, 1);
    tpool_run(p, 1, 50, 1);
    tpool_run(p, 0, 35, 3);
}

static void check_tile_shape(uint32_t n_head, uint32_t n_kv, uint32_t hd) {
    static tpool p;
    tpool_make(&p, n_head, n_kv, hd, 1000 + n_head * 7 + hd);
    mixed_batch(&p);
    check_tiles(&p, 1);
    /* Two sequences interleaved token by token: no tiles form. */
    p.n_tokens = 0;
    for (int32_t i = 0; i < 10; i++) {
        tpool_run(&p, 0, 20 + i, 1);
        tpool_run(&p, 1, 3 + i, 1);
    }
    check_tiles(&p, 0);
    tpool_free(&p);
}

Test(attention, tiles_equal_single_tokens_mha) {
    check_tile_shape(8, 8, 64);
}
Test(attention, tiles_equal_single_tokens_gqa_32_4) {
    check_tile_shape(32, 4, 64);
}
Test(attention, tiles_equal_single_tokens_head_dim_128) {
    check_tile_shape(8, 2, 128);
}
Test(attention, tiles_equal_single_tokens_head_dim_40) {
    check_tile_shape(4, 2, 40);
}
/* head_dim 192: the generic (not unrolled) loops of both tile functions,
 * more 8-float vectors per row than one pass of accumulators holds. */
Test(attention, tiles_equal_single_tokens_head_dim_192) {
    check_tile_shape(4, 2, 192);
}
