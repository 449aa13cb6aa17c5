/*
 * test_gguf.c - the GGUF reader on the real files the repository vendors:
 * header fields, typed getters, string arrays, generic values, tensors.
 * Hostile input is in test_gguf_hostile.c; the writer in test_gguf_write.c.
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <string.h>

#include "gguf/gguf.h"
#include "inferd.h"

#define STORIES "models/stories260K.gguf"
#define SPM "tests/data/vocab/ggml-vocab-llama-spm.gguf"

static gguf_file *open_ok(const char *path) {
    gguf_file *f = NULL;
    char err[512] = "";
    int rc = gguf_open(path, &f, err, sizeof err);
    cr_assert_eq(rc, 0, "gguf_open(%s) = %d: %s", path, rc, err);
    cr_assert_not_null(f);
    return f;
}

Test(gguf, stories_header) {
    gguf_file *f = open_ok(STORIES);
    cr_expect_eq(gguf_version(f), 3);
    cr_expect_eq(gguf_alignment(f), 32);
    cr_expect_eq(gguf_file_size(f), 1185376);
    cr_expect_eq(gguf_n_kv(f), 19);
    cr_expect_eq(gguf_n_tensors(f), 48);
    cr_expect_eq(gguf_data_offset(f) % 32, 0);
    cr_expect_eq(gguf_data_offset(f), 14176);
    cr_expect_not_null(gguf_base(f));
    gguf_close(f);
}

Test(gguf, stories_metadata) {
    gguf_file *f = open_ok(STORIES);
    uint32_t u = 0;
    cr_expect_eq(gguf_get_u32(f, "llama.embedding_length", &u), 0);
    cr_expect_eq(u, 64);
    cr_expect_eq(gguf_get_u32(f, "llama.block_count", &u), 0);
    cr_expect_eq(u, 5);
    uint64_t u64 = 0;
    int64_t i64 = 0;
    cr_expect_eq(gguf_get_u64(f, "llama.attention.head_count", &u64), 0);
    cr_expect_eq(u64, 8);
    cr_expect_eq(gguf_get_i64(f, "llama.attention.head_count_kv", &i64), 0);
    cr_expect_eq(i64, 4);
    float eps = 0;
    cr_expect_eq(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps), 0);
    cr_expect_float_eq(eps, 1e-5f, 1e-9f);
    gguf_str s;
    cr_expect_eq(gguf_get_str(f, "general.architecture", &s), 0);
    cr_expect(gguf_str_eq(s, "llama"));
    char *arch = gguf_get_str_dup(f, "general.architecture");
    cr_expect_str_eq(arch, "llama");
    free(arch);
    /* Absent keys and type mismatches. */
    cr_expect_eq(gguf_get_u32(f, "no.such.key", &u), INFERD_ENOTFOUND);
    cr_expect_eq(gguf_find_key(f, "no.such.key"), -1);
    cr_expect_eq(gguf_get_u32(f, "general.architecture", &u), INFERD_EFORMAT);
    cr_expect_eq(gguf_get_str(f, "llama.block_count", &s), INFERD_EFORMAT);
    cr_expect_eq(gguf_get_f32(f, "llama.block_count", &eps), INFERD_EFORMAT);
    int b;
    cr_expect_eq(gguf_get_bool(f, "llama.block_count", &b), INFERD_EFORMAT);
    cr_expect_null(gguf_get_str_dup(f, "llama.block_count"));
    int64_t k = gguf_find_key(f, "general.name");
    cr_assert_geq(k, 0);
    cr_expect(gguf_str_eq(gguf_kv_key(f, (uint64_t)k), "general.name"));
    cr_expect_eq(gguf_kv_type(f, (uint64_t)k), GGUF_TYPE_STRING);
    gguf_close(f);
}

Test(gguf, stories_arrays) {
    gguf_file *f = open_ok(STORIES);
    enum gguf_value_type et;
    uint64_t n = 0;
    cr_assert_eq(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n), 0);
    cr_expect_eq(et, GGUF_TYPE_STRING);
    cr_expect_eq(n, 512);
    cr_expect(gguf_str_eq(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 0), "<unk>"));
    cr_expect(gguf_str_eq(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 1), "<s>"));
    cr_expect(gguf_str_eq(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 2), "</s>"));
    cr_expect_null(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 512).data);
    cr_expect_null(gguf_get_arr_str(f, "tokenizer.ggml.scores", 0).data);
    cr_expect_null(gguf_get_arr_data(f, "tokenizer.ggml.tokens"));
    cr_assert_eq(gguf_get_arr(f, "tokenizer.ggml.scores", &et, &n), 0);
    cr_expect_eq(et, GGUF_TYPE_FLOAT32);
    const void *scores = gguf_get_arr_data(f, "tokenizer.ggml.scores");
    cr_assert_not_null(scores);
    float s3;
    memcpy(&s3, (const char *)scores + 3 * 4, 4);
    cr_expect_float_eq(s3, 0.0f, 1e-6f); /* <0x00> byte token */
    cr_expect_eq(gguf_get_arr(f, "general.name", &et, &n), INFERD_EFORMAT);
    cr_expect_eq(gguf_get_arr(f, "absent", &et, &n), INFERD_ENOTFOUND);

    /* The iterator sees the same strings as the O(1) accessor. */
    int64_t k = gguf_find_key(f, "tokenizer.ggml.tokens");
    gguf_value v, e;
    cr_assert_eq(gguf_kv_value(f, (uint64_t)k, &v), 0);
    cr_expect_eq(v.type, GGUF_TYPE_ARRAY);
    gguf_value_iter it;
    gguf_value_iter_init(&v, &it);
    uint64_t i = 0;
    while (gguf_value_iter_next(&it, &e)) {
        gguf_str s = gguf_get_arr_str(f, "tokenizer.ggml.tokens", i);
        cr_assert_eq(e.type, GGUF_TYPE_STRING);
        cr_assert_eq(e.str.len, s.len);
        cr_assert_eq(e.str.data, s.data);
        i++;
    }
    cr_expect_eq(i, 512);
    cr_expect_eq(gguf_kv_value(f, 19, &v), INFERD_ERANGE);
    gguf_close(f);
}

Test(gguf, stories_tensors) {
    gguf_file *f = open_ok(STORIES);
    const gguf_tensor *t = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    cr_assert_not_null(t);
    cr_expect(gguf_str_eq(t->name, "blk.0.ffn_down.weight"));
    cr_expect_eq(t->n_dims, 2);
    cr_expect_eq(t->ne[0], 172);
    cr_expect_eq(t->ne[1], 64);
    cr_expect_eq(t->ne[2], 1);
    cr_expect_eq(t->type, DTYPE_F32);
    cr_expect_eq(t->size_bytes, 172 * 64 * 4);
    cr_expect_eq((const char *)t->data,
                 (const char *)gguf_base(f) + gguf_data_offset(f) + t->offset);
    cr_expect_null(gguf_find_tensor(f, "blk.9.ffn_down.weight"));
    cr_expect_null(gguf_tensor_at(f, 48));
    uint64_t total = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        cr_assert_eq(gguf_find_tensor(f, "token_embd.weight"), gguf_tensor_at(f, 0));
        cr_assert_eq(x->offset % 32, 0);
        total += x->size_bytes;
    }
    cr_expect_eq(total, 1171200); /* 292800 f32 parameters */
    gguf_close(f);
}

Test(gguf, spm_vocab) {
    gguf_file *f = open_ok(SPM);
    uint64_t n = 0;
    enum gguf_value_type et;
    cr_assert_eq(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n), 0);
    cr_expect_eq(n, 32000);
    cr_expect(gguf_str_eq(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 31999), "\xe7\xbb\x99"),
              "last token of llama-spm");
    cr_expect_eq(gguf_n_tensors(f), 0);
    gguf_close(f);
}

/* Every vendored GGUF opens and every value of it can be walked. */
Test(gguf, all_vendored_files_open) {
    glob_t g;
    cr_assert_eq(glob("tests/data/vocab/*.gguf", 0, NULL, &g), 0);
    cr_assert_eq(glob("tests/data/models/*.gguf", GLOB_APPEND, NULL, &g), 0);
    cr_assert_eq(glob("models/*.gguf", GLOB_APPEND, NULL, &g), 0);
    cr_expect_geq(g.gl_pathc, 16);
    for (size_t p = 0; p < g.gl_pathc; p++) {
        gguf_file *f = open_ok(g.gl_pathv[p]);
        for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
            gguf_value v, e;
            cr_assert_eq(gguf_kv_value(f, i, &v), 0);
            if (v.type != GGUF_TYPE_ARRAY) continue;
            gguf_value_iter it;
            gguf_value_iter_init(&v, &it);
            uint64_t n = 0;
            const uint8_t *end = v.data;
            while (gguf_value_iter_next(&it, &e)) {
                n++;
                end = e.raw + e.raw_size;
            }
            cr_assert_eq(n, v.n, "%s: key %llu", g.gl_pathv[p], (unsigned long long)i);
            cr_assert_eq(end, v.raw + v.raw_size);
        }
        gguf_close(f);
    }
    globfree(&g);
}

Test(gguf, open_errors) {
    gguf_file *f = (gguf_file *)1;
    char err[512] = "";
    cr_expect_eq(gguf_open("tests/data/no-such-file.gguf", &f, err, sizeof err), INFERD_EIO);
    cr_expect_null(f);
    cr_expect(strstr(err, "no-such-file.gguf"), "%s", err);
    cr_expect_eq(gguf_open("tests/data", &f, err, sizeof err), INFERD_EIO);
    cr_expect(strstr(err, "not a regular file"), "%s", err);
    cr_expect_eq(gguf_open("tests/data/PROVENANCE.md", &f, err, sizeof err), INFERD_EFORMAT);
    cr_expect(strstr(err, "bad magic"), "%s", err);
    cr_expect(strstr(err, "PROVENANCE.md"), "%s", err);
    gguf_close(NULL);
}
