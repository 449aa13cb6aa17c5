/*
 * test_qwen2.c - the qwen2 architecture without a qwen2 reference model:
 * stories260K rewritten as "qwen2" (keys renamed, zero q/k/v biases added,
 * and the rows of every attn_q / attn_k permuted within each head so that
 * NEOX rope on the new layout is the normal rope of the old one, the inverse
 * of the permutation llama.cpp's converter applies to llama checkpoints)
 * must compute the same function: its greedy ids equal llama.cpp's for the
 * llama file. A nonzero bias must change the logits (it is applied).
 */
#include <limits.h>
#include <unistd.h>

#include "gguf/gguf_write.h"
#include "model_testutil.h"

static void tmp_path(char *out, size_t n, const char *name) {
    char exe[PATH_MAX - 64];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(len > 0);
    exe[len] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(out, n, "%s/%s.%d.gguf", exe, name, (int)getpid());
}

/* Row r = h*hd + d of a normal-rope layout goes to h*hd + (d even ? d/2 :
 * hd/2 + d/2) in the NEOX layout. */
static float *neox_rows(const gguf_tensor *t, uint32_t hd) {
    const uint64_t n_in = t->ne[0], n_out = t->ne[1];
    float *out = malloc(t->size_bytes);
    const float *in = t->data;
    for (uint64_t r = 0; r < n_out; r++) {
        const uint64_t h = r / hd, d = r % hd;
        const uint64_t nr = h * hd + (d % 2 == 0 ? d / 2 : hd / 2 + d / 2);
        memcpy(out + nr * n_in, in + r * n_in, n_in * sizeof(float));
    }
    return out;
}

/* Writes the qwen2 twin of stories260K; bias_value fills blk.0.attn_q.bias. */
static void write_qwen2(const char *path, float bias_value) {
    char err[256] = "";
    gguf_file *f = NULL;
    cr_assert_eq(gguf_open(STORIES_PATH, &f, err, sizeof err), 0, "%s", err);
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_str key = gguf_kv_key(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)key.len, key.data);
        gguf_value v;
        cr_assert_eq(gguf_kv_value(f, i, &v), 0);
        if (strncmp(name, "llama.", 6) == 0) {
            char renamed[256];
            snprintf(renamed, sizeof renamed, "qwen2.%s", name + 6);
            cr_assert_eq(gguf_writer_set_value(w, renamed, &v), 0);
        } else if (strcmp(name, "general.architecture") == 0) {
            cr_assert_eq(gguf_writer_set_str(w, name, "qwen2"), 0);
        } else {
            cr_assert_eq(gguf_writer_set_value(w, name, &v), 0);
        }
    }
    const uint32_t hd = 8, n_layer = 5;
    float *owned[16] = {0};
    size_t n_owned = 0;
    static float zeros_q[64], zeros_kv[32], bias_q[64];
    for (int i = 0; i < 64; i++) bias_q[i] = bias_value;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        if (strstr(name, "attn_q.weight") || strstr(name, "attn_k.weight")) {
            cr_assert_eq(t->type, DTYPE_F32);
            float *p = neox_rows(t, hd);
            owned[n_owned++] = p;
            cr_assert_eq(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, p, t->size_bytes), 0);
        } else {
            cr_assert_eq(gguf_writer_copy_tensor(w, t), 0);
        }
    }
    for (uint32_t il = 0; il < n_layer; il++) {
        char name[64];
        const uint64_t nq[1] = {64}, nkv[1] = {32};
        snprintf(name, sizeof name, "blk.%u.attn_q.bias", il);
        cr_assert_eq(gguf_writer_add_tensor(w, name, DTYPE_F32, 1, nq, il == 0 ? bias_q : zeros_q,
                                            sizeof zeros_q), 0);
        snprintf(name, sizeof name, "blk.%u.attn_k.bias", il);
        cr_assert_eq(gguf_writer_add_tensor(w, name, DTYPE_F32, 1, nkv, zeros_kv, sizeof zeros_kv), 0);
        snprintf(name, sizeof name, "blk.%u.attn_v.bias", il);
        cr_assert_eq(gguf_writer_add_tensor(w, name, DTYPE_F32, 1, nkv, zeros_kv, sizeof zeros_kv), 0);
    }
    cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    gguf_close(f);
}

Test(qwen2, neox_twin_of_stories260K_gives_llama_cpp_greedy_ids) {
    char path[PATH_MAX];
    tmp_path(path, sizeof path, "qwen2-twin");
    write_qwen2(path, 0.0f);
    model *m = tu_load(path, 1);
    unlink(path);
    const model_hparams *hp = model_get_hparams(m);
    cr_assert_str_eq(hp->arch, "qwen2");
    cr_assert_eq(hp->rope_type, MODEL_ROPE_NEOX);
    size_t n_rows;
    json_t **rows = tu_read_jsonl(GREEDY_DIR "stories260K_greedy.jsonl", &n_rows);
    for (size_t r = 0; r < 6; r++) {
        size_t n_prompt, n_ref;
        int32_t *prompt = tu_ids(json_object_get(rows[r], "prompt_ids"), &n_prompt);
        int32_t *ref = tu_ids(json_object_get(rows[r], "ids"), &n_ref);
        tu_seq s;
        tu_seq_init(&s, m, (uint32_t)(n_prompt + n_ref), DTYPE_F32);
        tu_seq_feed(&s, prompt, n_prompt);
        for (size_t k = 0; k < n_ref; k++) {
            int32_t id = tu_argmax(s.logits, hp->n_vocab);
            cr_assert_eq(id, ref[k], "row %zu step %zu", r, k);
            if (k + 1 < n_ref) tu_seq_feed(&s, &id, 1);
        }
        tu_seq_free(&s);
        free(prompt);
        free(ref);
    }
    tu_free_rows(rows, n_rows);
    model_free(m);
}

Test(qwen2, biases_are_applied) {
    char p0[PATH_MAX], p1[PATH_MAX];
    tmp_path(p0, sizeof p0, "qwen2-b0");
    tmp_path(p1, sizeof p1, "qwen2-b1");
    write_qwen2(p0, 0.0f);
    write_qwen2(p1, 0.5f);
    model *m0 = tu_load(p0, 1), *m1 = tu_load(p1, 1);
    unlink(p0);
    unlink(p1);
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    tu_seq a, b;
    tu_seq_init(&a, m0, 16, DTYPE_F32);
    tu_seq_init(&b, m1, 16, DTYPE_F32);
    tu_seq_feed(&a, prompt, 5);
    tu_seq_feed(&b, prompt, 5);
    double d = 0;
    for (int i = 0; i < 512; i++) d = fmax(d, fabs(a.logits[i] - b.logits[i]));
    cr_assert(d > 1e-3, "a 0.5 q bias changed the logits by only %g", d);
    tu_seq_free(&a);
    tu_seq_free(&b);
    model_free(m0);
    model_free(m1);
}
