/*
 * test_ubatch.c - model_forward's passes (micro-batches) on stories260K: a
 * long batch of interleaved sequences run in passes of a few tokens gives
 * the same logits and the same KV pool, bit for bit, as one pass, with f32
 * and f16 caches, and the scratch stays sized for the pass; the same for
 * synth-tiny in the types with their own GEMM kernels (Q4_0, Q8_0, F16 in
 * the repacked X16 layout, Q4_K); a batch whose positions go backwards
 * within a sequence runs in one pass (same bits again); embedding rows read
 * from the file past its end fail cleanly.
 */
#include <limits.h>
#include <unistd.h>

#include "base/util.h"
#include "gguf/gguf.h"
#include "model/model_int.h"
#include "model_testutil.h"

#define N_SEQ 3
#define PROMPT 50
#define N_BLOCKS_SEQ ((PROMPT + 8 + TU_BLOCK - 1) / TU_BLOCK)

static model *load_path(const char *path, uint32_t max_ubatch) {
    char err[256] = "";
    model_params p = model_default_params();
    p.n_threads = 2;
    p.max_batch = 8;
    p.max_ubatch = max_ubatch;
    model *m = NULL;
    cr_assert_eq(model_load(path, &p, &m, err, sizeof err), 0, "%s: %s", path, err);
    return m;
}

static model *load_ubatch(uint32_t max_ubatch) {
    return load_path(STORIES_PATH, max_ubatch);
}

/* One test batch: N_SEQ prompts of PROMPT tokens interleaved token by token
 * (so every pass cuts across sequences), logits wanted from every 5th row
 * and from each sequence's last token. */
typedef struct tbatch {
    int32_t tok[N_SEQ * PROMPT], pos[N_SEQ * PROMPT], seq[N_SEQ * PROMPT];
    uint8_t want[N_SEQ * PROMPT];
    uint32_t n, n_want;
    uint32_t tables[N_SEQ][N_BLOCKS_SEQ];
    model_seq seqs[N_SEQ];
} tbatch;

static void tbatch_init(tbatch *b, int reverse_seq0, int want_all) {
    memset(b, 0, sizeof(*b));
    uint64_t rs = 99;
    for (int i = 0; i < PROMPT; i++) {
        for (int s = 0; s < N_SEQ; s++) {
            const uint32_t t = b->n++;
            b->tok[t] = i == 0 ? 1 : (int32_t)(2 + splitmix64(&rs) % 500);
            b->pos[t] = reverse_seq0 && s == 0 ? PROMPT - 1 - i : i;
            b->seq[t] = s;
            b->want[t] = want_all || t % 5 == 0 || i == PROMPT - 1;
            b->n_want += b->want[t];
        }
    }
    for (int s = 0; s < N_SEQ; s++) {
        for (int i = 0; i < N_BLOCKS_SEQ; i++) b->tables[s][i] = (uint32_t)(i * N_SEQ + s);
        b->seqs[s].blocks = b->tables[s];
        b->seqs[s].n_blocks = N_BLOCKS_SEQ;
    }
}

/* Runs b through m on a fresh pool; returns the logits, leaves the pool. */
static float *run(model *m, const tbatch *tb, enum dtype kv_type, kv_pool **kv) {
    char err[256] = "";
    cr_assert_eq(kv_pool_new(m, N_SEQ * N_BLOCKS_SEQ, TU_BLOCK, kv_type, kv, err, sizeof err), 0,
                 "%s", err);
    const uint32_t V = model_get_hparams(m)->n_vocab;
    float *logits = malloc((size_t)tb->n_want * V * sizeof(float));
    model_batch b = {.n_tokens = tb->n, .tokens = tb->tok, .pos = tb->pos, .seq = tb->seq,
                     .want_logits = tb->want, .n_seqs = N_SEQ, .seqs = tb->seqs};
    cr_assert_eq(model_forward(m, *kv, &b, logits, err, sizeof err), 0, "%s", err);
    return logits;
}

static void expect_same(model *one, model *split, const tbatch *tb, enum dtype kv_type) {
    kv_pool *kv1 = NULL, *kv2 = NULL;
    float *l1 = run(one, tb, kv_type, &kv1), *l2 = run(split, tb, kv_type, &kv2);
    const uint32_t V = model_get_hparams(one)->n_vocab;
    for (size_t i = 0; i < (size_t)tb->n_want * V; i++)
        cr_assert_eq(memcmp(&l1[i], &l2[i], sizeof(float)), 0, "logit %zu (row %zu): %.9g vs %.9g",
                     i, i / V, l1[i], l2[i]);
    const size_t bytes = 2 * (size_t)kv1->n_layer * kv1->layer_bytes;
    cr_assert_eq(kv1->layer_bytes, kv2->layer_bytes);
    cr_assert_eq(memcmp(kv1->data, kv2->data, bytes), 0, "KV pools differ");
    /* The rows are not trivially equal: some logit rows differ from others. */
    cr_assert_neq(memcmp(l1, l1 + (size_t)(tb->n_want - 1) * V, V * sizeof(float)), 0);
    free(l1);
    free(l2);
    kv_pool_free(kv1);
    kv_pool_free(kv2);
}

Test(ubatch, passes_equal_one_pass_bit_for_bit) {
    model *one = load_ubatch(1u << 20), *split = load_ubatch(7);
    static tbatch tb;
    tbatch_init(&tb, 0, 0);
    expect_same(one, split, &tb, DTYPE_F32);
    expect_same(one, split, &tb, DTYPE_F16);
    /* 150 tokens grew the one-pass scratch; the split one holds 7 tokens. */
    cr_expect_eq(model_max_batch(split), N_SEQ * PROMPT);
    cr_expect_eq(split->s.n_tok, 7);
    cr_expect_eq(one->s.n_tok, N_SEQ * PROMPT);
    cr_expect_lt(model_scratch_bytes(split) * 8, model_scratch_bytes(one));
    model_free(one);
    model_free(split);
}

/* A missing synth-tiny file is skipped, said so (tu_synth_tiny_path). */
Test(ubatch, quantized_types_passes_equal_one_pass) {
    static const char *types[] = {"Q4_0", "Q8_0", "F16", "Q4_K_S"};
    char path[PATH_MAX];
    /* Passes of 7, and of 148 and 149 (which would leave a last pass of 2
     * and 1 tokens, taken by the kernels' one-row paths for F16 and
     * K-quants); logits from every row, and from scattered rows (1-2 per
     * pass, finished together across passes). */
    static tbatch tb, sparse;
    tbatch_init(&tb, 0, 1);
    tbatch_init(&sparse, 0, 0);
    static const uint32_t sizes[] = {7, 148, 149};
    int n_run = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (!tu_synth_tiny_path("ubatch", types[i], path, sizeof path)) continue;
        model *one = load_path(path, 1u << 20);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            model *split = load_path(path, sizes[k]);
            expect_same(one, split, &tb, DTYPE_F16);
            expect_same(one, split, &sparse, DTYPE_F16);
            model_free(split);
        }
        model_free(one);
        n_run++;
    }
    printf("ubatch: %d synth-tiny types bit-identical in passes of 7, 148, 149\n", n_run);
}

Test(ubatch, default_pass_size_equals_one_pass) {
    model *one = load_ubatch(1u << 20), *def = load_ubatch(0);
    cr_assert_eq(def->params.max_ubatch, MODEL_UBATCH);
    static tbatch tb;
    tbatch_init(&tb, 0, 0);
    cr_assert_gt(tb.n, MODEL_UBATCH);
    expect_same(one, def, &tb, DTYPE_F16);
    cr_expect_eq(def->s.n_tok, MODEL_UBATCH);
    model_free(one);
    model_free(def);
}

Test(ubatch, positions_going_back_run_in_one_pass) {
    model *one = load_ubatch(1u << 20), *split = load_ubatch(4);
    cr_assert_eq(split->params.max_ubatch, MODEL_UBATCH_MIN);
    static tbatch tb;
    tbatch_init(&tb, 1, 0);
    expect_same(one, split, &tb, DTYPE_F32);
    cr_expect_eq(split->s.n_tok, N_SEQ * PROMPT, "the batch could not be split");
    model_free(one);
    model_free(split);
}

/* Embedding rows come from the file by pread (model_load.c): a row past the
 * end of a file truncated after the load is an INFERD_EIO, not a crash. */
Test(ubatch, embedding_row_past_a_truncated_file_is_an_error) {
    char exe[PATH_MAX - 64], path[PATH_MAX], err[256] = "";
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(len > 0);
    exe[len] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(path, sizeof path, "%s/ubatch-trunc.%d.gguf", exe, (int)getpid());
    char *data = NULL;
    size_t size = 0;
    cr_assert_eq(file_read_all(STORIES_PATH, 1 << 24, &data, &size, err, sizeof err), 0, "%s", err);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(data, 1, size, f), size);
    fclose(f);
    free(data);
    model_params p = model_default_params();
    p.n_threads = 1;
    model *m = NULL;
    cr_assert_eq(model_load(path, &p, &m, err, sizeof err), 0, "%s", err);
    cr_assert_geq(m->embd_fd, 0, "an untied model reads embeddings from the file");
    /* Keep token_embd's first 10 rows (it is the first tensor). */
    const uint64_t row = m->tok_embd->size_bytes / model_get_hparams(m)->n_vocab;
    cr_assert_eq(truncate(path, (off_t)(m->embd_off + 10 * row)), 0);
    kv_pool *kv = NULL;
    cr_assert_eq(kv_pool_new(m, 1, TU_BLOCK, DTYPE_F32, &kv, err, sizeof err), 0, "%s", err);
    uint32_t blocks[1] = {0};
    model_seq sq = {blocks, 1};
    int32_t tok[2] = {1, 400}, pos[2] = {0, 1}, seq[2] = {0, 0};
    model_batch b = {.n_tokens = 2, .tokens = tok, .pos = pos, .seq = seq, .n_seqs = 1, .seqs = &sq};
    float *logits = malloc(model_get_hparams(m)->n_vocab * sizeof(float));
    cr_expect_eq(model_forward(m, kv, &b, logits, err, sizeof err), INFERD_EIO);
    cr_expect(strstr(err, "token_embd") != NULL, "%s", err);
    free(logits);
    kv_pool_free(kv);
    model_free(m);
    unlink(path);
}
