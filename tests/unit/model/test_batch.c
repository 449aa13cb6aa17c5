/*
 * test_batch.c - batch invariance of model_forward on stories260K: several
 * sequences in one flat batch (non-contiguous, interleaved block tables) give
 * the same greedy ids as one-by-one runs and as llama.cpp
 * (stories260K_batch_check.json, stories260K_greedy.jsonl); prefill chunks
 * mixed with other sequences' decode tokens give the same ids; the thread
 * count does not change the logits.
 */
#include "model_testutil.h"
#include "tok/tokenizer.h"

#define N_SEQ 8
#define N_GEN 48
#define MAX_PROMPT 160
#define BLOCKS_PER_SEQ ((MAX_PROMPT + N_GEN + TU_BLOCK - 1) / TU_BLOCK)

typedef struct prompts {
    json_t **rows;
    size_t n_rows;
    int32_t *ids[N_SEQ];
    size_t n[N_SEQ];
    int32_t *ref[N_SEQ]; /* llama.cpp greedy ids (N_GEN) */
} prompts;

static void prompts_load(prompts *p) {
    p->rows = tu_read_jsonl(GREEDY_DIR "stories260K_greedy.jsonl", &p->n_rows);
    cr_assert_geq(p->n_rows, N_SEQ);
    for (int s = 0; s < N_SEQ; s++) {
        size_t n_ref;
        p->ids[s] = tu_ids(json_object_get(p->rows[s], "prompt_ids"), &p->n[s]);
        p->ref[s] = tu_ids(json_object_get(p->rows[s], "ids"), &n_ref);
        cr_assert(p->n[s] <= MAX_PROMPT && n_ref == N_GEN);
    }
}

static void prompts_free(prompts *p) {
    for (int s = 0; s < N_SEQ; s++) {
        free(p->ids[s]);
        free(p->ref[s]);
    }
    if (p->rows) tu_free_rows(p->rows, p->n_rows);
}

/* Block tables interleaved over one pool: sequence s owns blocks s, s+N, ... */
static void make_tables(uint32_t tables[N_SEQ][BLOCKS_PER_SEQ], model_seq seqs[N_SEQ]) {
    for (int s = 0; s < N_SEQ; s++) {
        for (int i = 0; i < BLOCKS_PER_SEQ; i++) tables[s][i] = (uint32_t)(i * N_SEQ + s);
        seqs[s].blocks = tables[s];
        seqs[s].n_blocks = BLOCKS_PER_SEQ;
    }
}

/* The flat batch under construction. */
typedef struct batch {
    int32_t tok[N_SEQ * MAX_PROMPT], pos[N_SEQ * MAX_PROMPT], seq[N_SEQ * MAX_PROMPT];
    uint8_t want[N_SEQ * MAX_PROMPT];
    uint32_t n;
} batch;

static void batch_add(batch *b, int32_t tok, int32_t pos, int32_t seq, int want) {
    b->tok[b->n] = tok;
    b->pos[b->n] = pos;
    b->seq[b->n] = seq;
    b->want[b->n] = (uint8_t)want;
    b->n++;
}

static void batch_run(model *m, kv_pool *kv, batch *b, model_seq *seqs, float *logits) {
    model_batch mb = {.n_tokens = b->n, .tokens = b->tok, .pos = b->pos, .seq = b->seq,
                      .want_logits = b->want, .n_seqs = N_SEQ, .seqs = seqs};
    char err[256] = "";
    cr_assert_eq(model_forward(m, kv, &mb, logits, err, sizeof err), 0, "%s", err);
    b->n = 0;
}

/* The batch check's prompts (hex) through the model's tokenizer, with its
 * batched ids as the reference. */
static void prompts_from_check(prompts *p, json_t *cseqs, const model *m) {
    memset(p, 0, sizeof(*p));
    cr_assert_eq(json_array_size(cseqs), N_SEQ);
    for (int s = 0; s < N_SEQ; s++) {
        json_t *cs = json_array_get(cseqs, (size_t)s);
        const char *hex = json_string_value(json_object_get(cs, "prompt_hex"));
        char text[MAX_PROMPT * 4];
        size_t len = strlen(hex) / 2;
        cr_assert(len < sizeof text);
        for (size_t i = 0; i < len; i++) {
            unsigned v;
            sscanf(hex + 2 * i, "%2x", &v);
            text[i] = (char)v;
        }
        char err[256] = "";
        cr_assert_eq(tok_encode(model_get_tokenizer(m), text, len, 1, 0, &p->ids[s], &p->n[s],
                                err, sizeof err), 0, "%s", err);
        cr_assert(p->n[s] <= MAX_PROMPT);
        size_t n_ref;
        p->ref[s] = tu_ids(json_object_get(cs, "batched_ids"), &n_ref);
        cr_assert_eq(n_ref, N_GEN);
    }
}

Test(batch, eight_prompts_in_one_forward_match_single_runs_and_llama_cpp) {
    json_t *check = json_load_file(GREEDY_DIR "stories260K_batch_check.json", 0, NULL);
    cr_assert(check);
    model *m = tu_load(STORIES_PATH, 1);
    prompts p;
    prompts_from_check(&p, json_object_get(check, "seqs"), m);
    const uint32_t V = model_get_hparams(m)->n_vocab;
    char err[256] = "";
    kv_pool *kv = NULL;
    cr_assert_eq(kv_pool_new(m, N_SEQ * BLOCKS_PER_SEQ, TU_BLOCK, DTYPE_F32, &kv, err, sizeof err), 0);
    uint32_t tables[N_SEQ][BLOCKS_PER_SEQ];
    model_seq seqs[N_SEQ];
    make_tables(tables, seqs);
    static batch b;
    float *logits = malloc((size_t)N_SEQ * V * sizeof(float));
    float *single = malloc((size_t)N_SEQ * N_GEN * V * sizeof(float));
    int32_t ids[N_SEQ][N_GEN];

    /* One-by-one runs first (their own pools), keeping every step's logits. */
    for (int s = 0; s < N_SEQ; s++) {
        tu_seq one;
        tu_seq_init(&one, m, MAX_PROMPT + N_GEN, DTYPE_F32);
        tu_seq_feed(&one, p.ids[s], p.n[s]);
        for (int k = 0; k < N_GEN; k++) {
            memcpy(single + ((size_t)s * N_GEN + k) * V, one.logits, V * sizeof(float));
            int32_t id = tu_argmax(one.logits, V);
            cr_expect_eq(id, p.ref[s][k], "single seq %d step %d vs llama.cpp", s, k);
            tu_seq_feed(&one, &id, 1);
        }
        tu_seq_free(&one);
    }
    /* All prompts in one forward, then one token per sequence per forward. */
    for (int s = 0; s < N_SEQ; s++) {
        for (size_t i = 0; i < p.n[s]; i++)
            batch_add(&b, p.ids[s][i], (int32_t)i, s, i + 1 == p.n[s]);
    }
    double worst = 0;
    for (int k = 0; k < N_GEN; k++) {
        batch_run(m, kv, &b, seqs, logits);
        for (int s = 0; s < N_SEQ; s++) {
            const float *row = logits + (size_t)s * V;
            ids[s][k] = tu_argmax(row, V);
            const float *ref = single + ((size_t)s * N_GEN + k) * V;
            for (uint32_t i = 0; i < V; i++) {
                double d = fabs((double)row[i] - ref[i]);
                if (d > worst) worst = d;
            }
            batch_add(&b, ids[s][k], (int32_t)(p.n[s] + (size_t)k), s, 1);
        }
    }
    for (int s = 0; s < N_SEQ; s++) {
        for (int k = 0; k < N_GEN; k++)
            cr_expect_eq(ids[s][k], p.ref[s][k], "batched seq %d step %d vs llama.cpp batch", s, k);
    }
    printf("batch of 8: max |logit diff| batched vs single = %.2e (llama.cpp: %.2e)\n", worst,
           json_number_value(json_object_get(check, "max_abs_logit_diff_batched_vs_single")));
    cr_expect(worst <= 1e-4, "batched vs single logits differ by %.3g", worst);
    free(logits);
    free(single);
    kv_pool_free(kv);
    model_free(m);
    json_decref(check);
    prompts_free(&p);
}

/* Sequence s starts at step 2*s, its prompt fed in chunks of 3 tokens, while
 * earlier sequences decode in the same batches (what the engine does). */
Test(batch, chunked_prefill_mixed_with_decodes) {
    prompts p;
    prompts_load(&p);
    model *m = tu_load(STORIES_PATH, 1);
    const uint32_t V = model_get_hparams(m)->n_vocab;
    char err[256] = "";
    kv_pool *kv = NULL;
    cr_assert_eq(kv_pool_new(m, N_SEQ * BLOCKS_PER_SEQ, TU_BLOCK, DTYPE_F16, &kv, err, sizeof err), 0);
    kv_pool_free(kv);
    cr_assert_eq(kv_pool_new(m, N_SEQ * BLOCKS_PER_SEQ, TU_BLOCK, DTYPE_F32, &kv, err, sizeof err), 0);
    uint32_t tables[N_SEQ][BLOCKS_PER_SEQ];
    model_seq seqs[N_SEQ];
    make_tables(tables, seqs);
    static batch b;
    float *logits = malloc((size_t)N_SEQ * V * sizeof(float));
    size_t fed[N_SEQ] = {0};
    int n_gen[N_SEQ] = {0};
    int32_t last[N_SEQ];
    for (int step = 0; step < 200; step++) {
        int owner[N_SEQ], n_want = 0, any = 0;
        for (int s = 0; s < N_SEQ; s++) {
            if (step < 2 * s || n_gen[s] == N_GEN) continue;
            any = 1;
            if (fed[s] < p.n[s]) {
                size_t end = fed[s] + 3 < p.n[s] ? fed[s] + 3 : p.n[s];
                for (size_t i = fed[s]; i < end; i++)
                    batch_add(&b, p.ids[s][i], (int32_t)i, s, i + 1 == p.n[s]);
                if (end == p.n[s]) owner[n_want++] = s;
                fed[s] = end;
            } else {
                batch_add(&b, last[s], (int32_t)(p.n[s] + (size_t)n_gen[s] - 1), s, 1);
                owner[n_want++] = s;
            }
        }
        if (!any) break;
        batch_run(m, kv, &b, seqs, logits);
        for (int i = 0; i < n_want; i++) {
            const int s = owner[i];
            last[s] = tu_argmax(logits + (size_t)i * V, V);
            cr_expect_eq(last[s], p.ref[s][n_gen[s]], "seq %d token %d", s, n_gen[s]);
            n_gen[s]++;
        }
    }
    for (int s = 0; s < N_SEQ; s++) cr_expect_eq(n_gen[s], N_GEN, "seq %d generated %d", s, n_gen[s]);
    free(logits);
    kv_pool_free(kv);
    model_free(m);
    prompts_free(&p);
}

Test(batch, thread_count_does_not_change_logits) {
    model *m1 = tu_load(STORIES_PATH, 1), *m2 = tu_load(STORIES_PATH, 2);
    const uint32_t V = model_get_hparams(m1)->n_vocab;
    const int32_t prompt[] = {1, 403, 407, 261, 378, 432, 383, 286, 261};
    tu_seq a, c;
    tu_seq_init(&a, m1, 64, DTYPE_F32);
    tu_seq_init(&c, m2, 64, DTYPE_F32);
    tu_seq_feed(&a, prompt, 9);
    tu_seq_feed(&c, prompt, 9);
    for (uint32_t i = 0; i < V; i++) cr_assert_eq(a.logits[i], c.logits[i], "logit %u", i);
    tu_seq_free(&a);
    tu_seq_free(&c);
    model_free(m1);
    model_free(m2);
}
