/*
 * test_lanes.c - model_forward's lanes: a batch of many sequences cut into
 * one independent forward per pool thread gives the same logits and the
 * same KV pool, bit for bit, as the batch on the whole pool (lanes off), for
 * prefill chunks and for decode steps, on stories260K and the synth-tiny
 * types with their own GEMM kernels; batches too small, or whose sequences
 * cannot be cut apart, do not take lanes.
 */
#include "base/util.h"
#include "model/model_int.h"
#include "model_testutil.h"

#define N_SEQ 40
#define PROMPT 6
#define N_BLOCKS_SEQ 1

static model *load(const char *path, int no_lanes) {
    char err[256] = "";
    model_params p = model_default_params();
    p.n_threads = 2;
    p.no_lanes = no_lanes;
    model *m = NULL;
    cr_assert_eq(model_load(path, &p, &m, err, sizeof err), 0, "%s: %s", path, err);
    return m;
}

typedef struct run {
    kv_pool *kv;
    float *prefill, *decode, *mixed; /* logits of the three batches */
} run;

/* Three forwards on a fresh pool: every sequence's prompt (PROMPT tokens,
 * its last row wants logits), one decode token each, then a mixed batch:
 * the first half of the sequences decode, the others' next 3 tokens. */
static void run_all(model *m, enum dtype kv_type, int interleave, run *r) {
    char err[256] = "";
    static uint32_t tables[N_SEQ][N_BLOCKS_SEQ];
    static model_seq seqs[N_SEQ];
    static int32_t tok[N_SEQ * PROMPT], pos[N_SEQ * PROMPT], seq[N_SEQ * PROMPT];
    static uint8_t want[N_SEQ * PROMPT];
    for (int s = 0; s < N_SEQ; s++) {
        tables[s][0] = (uint32_t)s;
        seqs[s].blocks = tables[s];
        seqs[s].n_blocks = N_BLOCKS_SEQ;
    }
    cr_assert_eq(kv_pool_new(m, N_SEQ * N_BLOCKS_SEQ, TU_BLOCK, kv_type, &r->kv, err, sizeof err), 0,
                 "%s", err);
    const uint32_t V = model_get_hparams(m)->n_vocab;
    uint64_t rs = 7;
    uint32_t n = 0;
    for (int i = 0; i < PROMPT; i++) {
        for (int s = 0; s < N_SEQ; s++) {
            /* Sequence-major (each prompt one run of tokens) or interleaved. */
            const uint32_t t = interleave ? (uint32_t)(i * N_SEQ + s) : (uint32_t)(s * PROMPT + i);
            tok[t] = i == 0 ? 1 : (int32_t)(2 + splitmix64(&rs) % 500);
            pos[t] = i;
            seq[t] = s;
            want[t] = i == PROMPT - 1;
            n++;
        }
    }
    model_batch b = {.n_tokens = n, .tokens = tok, .pos = pos, .seq = seq, .want_logits = want,
                     .n_seqs = N_SEQ, .seqs = seqs};
    r->prefill = malloc((size_t)N_SEQ * V * sizeof(float));
    cr_assert_eq(model_forward(m, r->kv, &b, r->prefill, err, sizeof err), 0, "%s", err);
    for (int s = 0; s < N_SEQ; s++) {
        tok[s] = (int32_t)(2 + splitmix64(&rs) % 500);
        pos[s] = PROMPT;
        seq[s] = s;
        want[s] = 1;
    }
    b.n_tokens = N_SEQ;
    r->decode = malloc((size_t)N_SEQ * V * sizeof(float));
    cr_assert_eq(model_forward(m, r->kv, &b, r->decode, err, sizeof err), 0, "%s", err);
    n = 0;
    uint32_t n_want = 0;
    for (int s = 0; s < N_SEQ; s++) {
        const int k = s < N_SEQ / 2 ? 1 : 3;
        for (int i = 0; i < k; i++, n++) {
            tok[n] = (int32_t)(2 + splitmix64(&rs) % 500);
            pos[n] = PROMPT + 1 + i;
            seq[n] = s;
            want[n] = i == k - 1;
            n_want += want[n];
        }
    }
    b.n_tokens = n;
    r->mixed = malloc((size_t)n_want * V * sizeof(float));
    cr_assert_eq(model_forward(m, r->kv, &b, r->mixed, err, sizeof err), 0, "%s", err);
}

static void run_free(run *r) {
    kv_pool_free(r->kv);
    free(r->prefill);
    free(r->decode);
    free(r->mixed);
}

static void expect_same(const char *path, enum dtype kv_type) {
    model *lanes = load(path, 0), *whole = load(path, 1);
    run a, b;
    run_all(lanes, kv_type, 0, &a);
    run_all(whole, kv_type, 0, &b);
    /* All three batches ran as lanes (2 threads, 40 sequences). */
    cr_expect_eq(lanes->n_lane_forwards, 3, "%s: %llu lane forwards", path,
                 (unsigned long long)lanes->n_lane_forwards);
    cr_expect_eq(whole->n_lane_forwards, 0);
    const uint32_t V = model_get_hparams(lanes)->n_vocab;
    const float *la[] = {a.prefill, a.decode, a.mixed}, *lb[] = {b.prefill, b.decode, b.mixed};
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < (size_t)N_SEQ * V; i++)
            cr_assert_eq(memcmp(&la[k][i], &lb[k][i], sizeof(float)), 0,
                         "%s batch %d logit %zu (row %zu): %.9g vs %.9g", path, k, i, i / V,
                         la[k][i], lb[k][i]);
        /* Rows differ from each other: the comparison is not trivial. */
        cr_assert_neq(memcmp(la[k], la[k] + (size_t)(N_SEQ - 1) * V, V * sizeof(float)), 0);
    }
    cr_assert_eq(memcmp(a.kv->data, b.kv->data, 2 * (size_t)a.kv->n_layer * a.kv->layer_bytes), 0,
                 "%s: KV pools differ", path);
    run_free(&a);
    run_free(&b);
    model_free(lanes);
    model_free(whole);
}

Test(lanes, stories_lanes_equal_whole_pool_bit_for_bit) {
    expect_same(STORIES_PATH, DTYPE_F16);
    expect_same(STORIES_PATH, DTYPE_F32);
}

Test(lanes, interleaved_sequences_and_small_batches_take_no_lanes) {
    model *m = load(STORIES_PATH, 0);
    run r;
    /* Interleaved prompts cannot be cut at a sequence boundary; the decode
     * and mixed batches can. */
    run_all(m, DTYPE_F16, 1, &r);
    cr_expect_eq(m->n_lane_forwards, 2);
    run_free(&r);
    /* One sequence alone never takes lanes. */
    tu_seq s;
    tu_seq_init(&s, m, 64, DTYPE_F16);
    int32_t ids[40];
    for (int i = 0; i < 40; i++) ids[i] = 1 + i;
    tu_seq_feed(&s, ids, 40);
    cr_expect_eq(m->n_lane_forwards, 2);
    tu_seq_free(&s);
    model_free(m);
}

/* A missing synth-tiny file is skipped, said so (tu_synth_tiny_path). */
Test(lanes, quantized_types_lanes_equal_whole_pool) {
    static const char *types[] = {"Q4_0", "Q8_0", "F16", "Q4_K_S"};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (tu_synth_tiny_path("lanes", types[i], path, sizeof path)) expect_same(path, DTYPE_F16);
    }
}
