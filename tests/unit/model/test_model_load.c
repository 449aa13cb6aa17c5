/*
 * test_model_load.c - model_load on hostile files (stories260K rewritten with
 * one thing wrong: a missing tensor, a wrong shape, an unsupported type, an
 * unknown architecture, a missing or contradictory key), the hyper-parameters
 * of the good file, the KV pool sizes, and model_forward's checks of a batch
 * (token, position, sequence and block indices out of range). Files go next
 * to the test binary and are removed.
 */
#include <limits.h>
#include <unistd.h>

#include "base/util.h"
#include "gguf/gguf_write.h"
#include "model_testutil.h"

/* A path next to this binary ($BUILD/tests/unit/model/). */
static void tmp_path(char *out, size_t n, const char *name) {
    char exe[PATH_MAX - 64];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(len > 0);
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    snprintf(out, n, "%s/%s.%d.gguf", exe, name, (int)getpid());
}

typedef struct edit {
    const char *drop_tensor;   /* tensor left out */
    const char *retype_tensor; /* tensor written with type DTYPE_I32 (same bytes) */
    const char *rename_from;   /* tensor written a second time under rename_to... */
    const char *rename_to;     /* ...replacing the one of that name */
    const char *drop_key;
    const char *str_key, *str_val; /* string key set */
    const char *u32_key;
    uint32_t u32_val;
    const char *f32_key;
    float f32_val;
} edit;

/* Writes stories260K with e applied to path. */
static void rewrite(const char *path, const edit *e) {
    char err[256] = "";
    gguf_file *f = NULL;
    cr_assert_eq(gguf_open(STORIES_PATH, &f, err, sizeof err), 0, "%s", err);
    gguf_writer *w = gguf_writer_new();
    cr_assert_eq(gguf_writer_copy_all_kv(w, f), 0);
    if (e->drop_key) cr_assert_eq(gguf_writer_remove(w, e->drop_key), 0);
    if (e->str_key) cr_assert_eq(gguf_writer_set_str(w, e->str_key, e->str_val), 0);
    if (e->u32_key) cr_assert_eq(gguf_writer_set_u32(w, e->u32_key, e->u32_val), 0);
    if (e->f32_key) cr_assert_eq(gguf_writer_set_f32(w, e->f32_key, e->f32_val), 0);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (e->drop_tensor && gguf_str_eq(t->name, e->drop_tensor)) continue;
        if (e->rename_to && gguf_str_eq(t->name, e->rename_to)) {
            t = gguf_find_tensor(f, e->rename_from);
            cr_assert_eq(gguf_writer_add_tensor(w, e->rename_to, t->type, t->n_dims, t->ne, t->data,
                                                t->size_bytes), 0, "%s", gguf_writer_error(w));
            continue;
        }
        if (e->retype_tensor && gguf_str_eq(t->name, e->retype_tensor)) {
            cr_assert_eq(t->type, DTYPE_F32);
            cr_assert_eq(gguf_writer_add_tensor(w, e->retype_tensor, DTYPE_I32, t->n_dims, t->ne,
                                                t->data, t->size_bytes), 0);
            continue;
        }
        cr_assert_eq(gguf_writer_copy_tensor(w, t), 0, "%s", gguf_writer_error(w));
    }
    cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    gguf_close(f);
}

/* model_load of the edited file fails with code and a message containing want. */
static void expect_fail(const char *name, const edit *e, int code, const char *want) {
    char path[PATH_MAX], err[512] = "";
    tmp_path(path, sizeof path, name);
    rewrite(path, e);
    model *m = (model *)1;
    int rc = model_load(path, NULL, &m, err, sizeof err);
    unlink(path);
    cr_expect_eq(rc, code, "%s: rc %d (%s), want %d", name, rc, err, code);
    cr_expect_null(m, "%s: *out must be NULL on failure", name);
    cr_expect(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", name, err, want);
    if (rc == 0) model_free(m);
}

Test(model_load, good_file_hparams) {
    model *m = tu_load(STORIES_PATH, 1);
    const model_hparams *hp = model_get_hparams(m);
    cr_assert_str_eq(hp->arch, "llama");
    cr_assert_eq(hp->n_vocab, 512);
    cr_assert_eq(hp->n_embd, 64);
    cr_assert_eq(hp->n_layer, 5);
    cr_assert_eq(hp->n_head, 8);
    cr_assert_eq(hp->n_head_kv, 4);
    cr_assert_eq(hp->head_dim, 8);
    cr_assert_eq(hp->n_rot, 8);
    cr_assert_eq(hp->rope_type, MODEL_ROPE_NORM);
    cr_assert_eq(hp->rope_freq_base, 10000.0f);
    cr_assert_eq(hp->rope_freq_scale, 1.0f);
    cr_assert_eq(hp->rms_eps, 1e-5f);
    cr_assert_eq(hp->tied_output, 0);
    cr_assert_not_null(model_get_tokenizer(m));
    cr_assert_null(model_chat_template(m));
    /* K and V, 5 layers, 4 KV heads of 8, f32: 2*5*16*4*8*4 bytes per block of 16. */
    cr_assert_eq(kv_pool_bytes_per_block(m, 16, DTYPE_F32), (size_t)2 * 5 * 16 * 4 * 8 * 4);
    cr_assert_eq(kv_pool_bytes_per_block(m, 16, DTYPE_F16), (size_t)2 * 5 * 16 * 4 * 8 * 2);
    cr_assert_eq(kv_pool_bytes_per_block(m, 16, DTYPE_Q8_0), 0);
    char err[256];
    kv_pool *kv = NULL;
    cr_assert_eq(kv_pool_new(m, 0, 16, DTYPE_F32, &kv, err, sizeof err), INFERD_EINVAL);
    cr_assert_eq(kv_pool_new(m, 4, 16, DTYPE_BF16, &kv, err, sizeof err), INFERD_EINVAL);
    cr_assert_null(kv);
    model_free(m);
    model_free(NULL);
    kv_pool_free(NULL);
}

Test(model_load, missing_file_and_not_gguf) {
    char err[256] = "";
    model *m = NULL;
    cr_assert_neq(model_load("tests/data/greedy/no-such-model.gguf", NULL, &m, err, sizeof err), 0);
    cr_assert_null(m);
    cr_assert(strlen(err) > 0);
    cr_assert_eq(model_load("tests/data/greedy/README.md", NULL, &m, err, sizeof err),
                 INFERD_EFORMAT, "%s", err);
    cr_assert_null(m);
}

Test(model_load, missing_tensor) {
    edit e = {.drop_tensor = "blk.3.ffn_up.weight"};
    expect_fail("missing-tensor", &e, INFERD_EFORMAT, "'blk.3.ffn_up.weight' is missing");
}

Test(model_load, absent_output_weight_ties_to_token_embd) {
    char path[PATH_MAX], err[256] = "";
    tmp_path(path, sizeof path, "tied");
    edit e = {.drop_tensor = "output.weight"};
    rewrite(path, &e);
    model *m = NULL;
    int rc = model_load(path, NULL, &m, err, sizeof err);
    unlink(path);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(model_get_hparams(m)->tied_output, 1);
    model_free(m);
}

Test(model_load, missing_norm) {
    edit e = {.drop_tensor = "output_norm.weight"};
    expect_fail("missing-norm", &e, INFERD_EFORMAT, "'output_norm.weight' is missing");
}

Test(model_load, wrong_shape) {
    /* attn_q is [64, 64]; attn_k must be [64, 32] (4 KV heads of 8). */
    edit e = {.rename_from = "blk.0.attn_q.weight", .rename_to = "blk.0.attn_k.weight"};
    expect_fail("wrong-shape", &e, INFERD_EFORMAT, "'blk.0.attn_k.weight' has shape [64, 64");
}

Test(model_load, unsupported_tensor_type) {
    edit e = {.retype_tensor = "blk.1.attn_output.weight"};
    expect_fail("bad-type", &e, INFERD_EUNSUPPORTED, "'blk.1.attn_output.weight' has type i32");
}

Test(model_load, unknown_architecture) {
    edit e = {.str_key = "general.architecture", .str_val = "gpt2"};
    expect_fail("unknown-arch", &e, INFERD_EUNSUPPORTED, "architecture 'gpt2' is not supported");
}

Test(model_load, missing_key) {
    edit e = {.drop_key = "llama.block_count"};
    expect_fail("missing-key", &e, INFERD_EFORMAT, "'llama.block_count' is missing");
}

Test(model_load, heads_that_do_not_divide) {
    edit e = {.u32_key = "llama.attention.head_count_kv", .u32_val = 3};
    expect_fail("bad-heads", &e, INFERD_EFORMAT, "n_head_kv 3");
}

Test(model_load, more_layers_than_tensors) {
    edit e = {.u32_key = "llama.block_count", .u32_val = 6};
    expect_fail("more-layers", &e, INFERD_EFORMAT, "'blk.5.attn_norm.weight' is missing");
}

Test(model_load, unsupported_rope_scaling) {
    edit e = {.str_key = "llama.rope.scaling.type", .str_val = "longrope"};
    expect_fail("rope-scaling", &e, INFERD_EUNSUPPORTED, "rope scaling type 'longrope'");
}

/* Logits after "Once upon a time" (stories260K ids) for the file at path. */
static void prompt_logits(const char *path, float *out, uint32_t n_vocab) {
    static const int32_t ids[] = {1, 403, 407, 261, 378};
    model *m = tu_load(path, 1);
    cr_assert_eq(model_get_hparams(m)->n_vocab, n_vocab);
    tu_seq s;
    tu_seq_init(&s, m, 32, DTYPE_F32);
    tu_seq_feed(&s, ids, sizeof ids / sizeof ids[0]);
    memcpy(out, s.logits, n_vocab * sizeof(float));
    tu_seq_free(&s);
    model_free(m);
}

/* <arch>.rope.scaling.attn_factor is read (llama.cpp multiplies it into the
 * rope's attn_factor for every scaling type): 1 changes nothing, 2 scales the
 * rotated q and k, so the logits move; 0 is rejected. */
Test(model_load, rope_attn_factor) {
    enum { N = 512 };
    static float base[N], one[N], two[N];
    char path[PATH_MAX];
    prompt_logits(STORIES_PATH, base, N);

    edit e1 = {.f32_key = "llama.rope.scaling.attn_factor", .f32_val = 1.0f};
    tmp_path(path, sizeof path, "attn-factor-1");
    rewrite(path, &e1);
    prompt_logits(path, one, N);
    unlink(path);
    cr_expect(memcmp(base, one, sizeof base) == 0, "attn_factor 1 changed the logits");

    edit e2 = {.f32_key = "llama.rope.scaling.attn_factor", .f32_val = 2.0f};
    tmp_path(path, sizeof path, "attn-factor-2");
    rewrite(path, &e2);
    model *m = tu_load(path, 1);
    cr_expect_eq(model_get_hparams(m)->yarn_attn_factor, 2.0f);
    model_free(m);
    prompt_logits(path, two, N);
    unlink(path);
    double mx = 0;
    for (int i = 0; i < N; i++) mx = fmax(mx, fabs((double)two[i] - base[i]));
    cr_expect(mx > 1e-3, "attn_factor 2 left the logits unchanged (max diff %g)", mx);

    edit e0 = {.f32_key = "llama.rope.scaling.attn_factor", .f32_val = 0.0f};
    expect_fail("attn-factor-0", &e0, INFERD_EFORMAT, "attn_factor 0 is not positive");
}

Test(model_forward, rejects_out_of_range_batches) {
    model *m = tu_load(STORIES_PATH, 1);
    char err[256];
    kv_pool *kv = NULL;
    cr_assert_eq(kv_pool_new(m, 4, 16, DTYPE_F32, &kv, err, sizeof err), 0);
    uint32_t blocks[2] = {0, 3}, bad_blocks[2] = {0, 4};
    model_seq seqs[1] = {{blocks, 2}};
    int32_t tok[2] = {1, 403}, pos[2] = {0, 1}, seq[2] = {0, 0};
    float logits[512];
    model_batch b = {.n_tokens = 2, .tokens = tok, .pos = pos, .seq = seq, .n_seqs = 1, .seqs = seqs};
    cr_assert_eq(model_forward(m, kv, &b, logits, err, sizeof err), 0, "%s", err);
    tok[1] = 512;
    cr_assert_eq(model_forward(m, kv, &b, logits, err, sizeof err), INFERD_EINVAL);
    cr_assert(strstr(err, "id 512"), "%s", err);
    tok[1] = -1;
    cr_assert_eq(model_forward(m, kv, &b, logits, err, sizeof err), INFERD_EINVAL);
    tok[1] = 403;
    pos[1] = 32; /* block index 2 of a 2-block table */
    cr_assert_eq(model_forward(m, kv, &b, logits, err, sizeof err), INFERD_EINVAL);
    cr_assert(strstr(err, "position 32"), "%s", err);
    pos[1] = -3;
    cr_assert_eq(model_forward(m, kv, &b, logits, err, sizeof err), INFERD_EINVAL);
    pos[1] = 1;
    seq[1] = 1;
    cr_assert_eq(model_forward(m, kv, &b, logits, err, sizeof err), INFERD_EINVAL);
    seq[1] = 0;
    seqs[0].blocks = bad_blocks;
    cr_assert_eq(model_forward(m, kv, &b, logits, err, sizeof err), INFERD_EINVAL);
    cr_assert(strstr(err, "the pool has 4 blocks"), "%s", err);
    seqs[0].blocks = blocks;
    b.n_tokens = 0;
    cr_assert_eq(model_forward(m, kv, &b, logits, err, sizeof err), INFERD_EINVAL);
    kv_pool_free(kv);
    model_free(m);
}

Test(model_forward, batches_above_the_reservation_grow_it) {
    model_params p = model_default_params();
    p.n_threads = 1;
    p.max_batch = 2;
    model *m = NULL;
    char err[256];
    cr_assert_eq(model_load(STORIES_PATH, &p, &m, err, sizeof err), 0, "%s", err);
    cr_assert_eq(model_max_batch(m), 2);
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    tu_seq s;
    tu_seq_init(&s, m, 32, DTYPE_F32);
    tu_seq_feed(&s, prompt, 5);
    cr_assert_eq(model_max_batch(m), 5);
    cr_assert_eq(tu_argmax(s.logits, 512), 432); /* ", " as llama.cpp */
    tu_seq_free(&s);
    model_free(m);
}

/* Seeded byte flips in the metadata and tensor-info region (the first 24 KiB
 * of stories260K): every load either succeeds or fails with a message, and a
 * model that loads runs one forward without crashing (ASan build). */
Test(model_load, byte_flips_never_crash) {
    char *data = NULL, err[512];
    size_t len = 0;
    cr_assert_eq(file_read_all(STORIES_PATH, 1 << 24, &data, &len, err, sizeof err), 0, "%s", err);
    char path[PATH_MAX];
    tmp_path(path, sizeof path, "flip");
    uint64_t st = 12345;
    int n_ok = 0, n_err = 0;
    for (int i = 0; i < 40; i++) {
        const size_t off = (size_t)(splitmix64(&st) % 24576);
        const char saved = data[off];
        data[off] = (char)(data[off] ^ (char)(1u << (splitmix64(&st) % 8)));
        FILE *f = fopen(path, "wb");
        cr_assert(f);
        cr_assert_eq(fwrite(data, 1, len, f), len);
        fclose(f);
        model *m = NULL;
        err[0] = '\0';
        model_params p = model_default_params();
        p.n_threads = 1;
        if (model_load(path, &p, &m, err, sizeof err) == 0) {
            n_ok++;
            kv_pool *kv = NULL;
            if (kv_pool_new(m, 2, 16, DTYPE_F32, &kv, err, sizeof err) == 0) {
                uint32_t blocks[2] = {0, 1};
                model_seq sq = {blocks, 2};
                int32_t tok[1] = {1}, pos[1] = {0}, seq[1] = {0};
                model_batch b = {.n_tokens = 1, .tokens = tok, .pos = pos, .seq = seq, .n_seqs = 1,
                                 .seqs = &sq};
                float *logits = malloc(model_get_hparams(m)->n_vocab * sizeof(float));
                model_forward(m, kv, &b, logits, err, sizeof err);
                free(logits);
                kv_pool_free(kv);
            }
            model_free(m);
        } else {
            n_err++;
            cr_expect(strlen(err) > 0, "flip at %zu: an error without a message", off);
            cr_expect_null(m);
        }
        data[off] = saved;
    }
    unlink(path);
    free(data);
    printf("byte flips: %d loaded, %d refused with a message\n", n_ok, n_err);
}
