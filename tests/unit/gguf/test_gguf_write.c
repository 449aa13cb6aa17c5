/*
 * test_gguf_write.c - the GGUF writer: byte-identical round trips of every
 * vendored GGUF, every metadata type read back, nested arrays, replacing and
 * removing keys, copying metadata with overrides, streaming, and the errors
 * of bad tensors and alignments.
 */
#include <criterion/criterion.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "inferd.h"

static char tmpdir[512];

static void make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/inferd-gguf-XXXXXX", base && *base ? base : P_tmpdir);
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
    glob_t g;
    char pat[600];
    snprintf(pat, sizeof pat, "%s/*", tmpdir);
    if (glob(pat, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) unlink(g.gl_pathv[i]);
        globfree(&g);
    }
    rmdir(tmpdir);
}

TestSuite(gguf_write, .init = make_tmpdir, .fini = remove_tmpdir);

static char *slurp(const char *path, size_t *n) {
    char *data = NULL;
    char err[256];
    int rc = file_read_all(path, 64u << 20, &data, n, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    return data;
}

static gguf_file *open_ok(const char *path) {
    gguf_file *f = NULL;
    char err[512] = "";
    cr_assert_eq(gguf_open(path, &f, err, sizeof err), 0, "%s: %s", path, err);
    return f;
}

/* Reading then writing every vendored GGUF gives the same bytes. */
Test(gguf_write, round_trip_is_byte_identical) {
    glob_t g;
    cr_assert_eq(glob("tests/data/vocab/*.gguf", 0, NULL, &g), 0);
    cr_assert_eq(glob("tests/data/models/*.gguf", GLOB_APPEND, NULL, &g), 0);
    cr_assert_eq(glob("models/*.gguf", GLOB_APPEND, NULL, &g), 0);
    cr_assert_geq(g.gl_pathc, 16);
    char out[600], err[512];
    snprintf(out, sizeof out, "%s/rt.gguf", tmpdir);
    for (size_t p = 0; p < g.gl_pathc; p++) {
        gguf_file *f = open_ok(g.gl_pathv[p]);
        gguf_writer *w = gguf_writer_new();
        cr_assert_not_null(w);
        cr_assert_eq(gguf_writer_set_version(w, gguf_version(f)), 0);
        cr_assert_eq(gguf_writer_copy_all_kv(w, f), 0, "%s", gguf_writer_error(w));
        for (uint64_t i = 0; i < gguf_n_tensors(f); i++)
            cr_assert_eq(gguf_writer_copy_tensor(w, gguf_tensor_at(f, i)), 0, "%s",
                         gguf_writer_error(w));
        cr_assert_eq(gguf_writer_write(w, out, err, sizeof err), 0, "%s", err);
        gguf_writer_free(w);
        gguf_close(f);
        size_t na, nb;
        char *a = slurp(g.gl_pathv[p], &na), *b = slurp(out, &nb);
        cr_assert_eq(na, nb, "%s: %zu bytes in, %zu out", g.gl_pathv[p], na, nb);
        cr_assert(memcmp(a, b, na) == 0, "%s: bytes differ", g.gl_pathv[p]);
        free(a);
        free(b);
    }
    globfree(&g);
}

Test(gguf_write, every_type_reads_back) {
    char out[600], err[512];
    snprintf(out, sizeof out, "%s/types.gguf", tmpdir);
    gguf_writer *w = gguf_writer_new();
    cr_assert_eq(gguf_writer_set_u8(w, "t.u8", 200), 0);
    cr_assert_eq(gguf_writer_set_i8(w, "t.i8", -100), 0);
    cr_assert_eq(gguf_writer_set_u16(w, "t.u16", 60000), 0);
    cr_assert_eq(gguf_writer_set_i16(w, "t.i16", -30000), 0);
    cr_assert_eq(gguf_writer_set_u32(w, "t.u32", 4000000000u), 0);
    cr_assert_eq(gguf_writer_set_i32(w, "t.i32", -2000000000), 0);
    cr_assert_eq(gguf_writer_set_u64(w, "t.u64", UINT64_MAX), 0);
    cr_assert_eq(gguf_writer_set_i64(w, "t.i64", INT64_MIN), 0);
    cr_assert_eq(gguf_writer_set_f32(w, "t.f32", 1.5f), 0);
    cr_assert_eq(gguf_writer_set_f64(w, "t.f64", -2.25), 0);
    cr_assert_eq(gguf_writer_set_bool(w, "t.bool", 7), 0);
    cr_assert_eq(gguf_writer_set_str(w, "t.str", "hello"), 0);
    cr_assert_eq(gguf_writer_set_strn(w, "t.strn", "a\0b", 3), 0);
    int32_t ints[3] = {1, -2, 3};
    cr_assert_eq(gguf_writer_set_arr(w, "t.arr", GGUF_TYPE_INT32, ints, 3), 0);
    const char *strs[3] = {"x", "", "zz"};
    cr_assert_eq(gguf_writer_set_arr_str(w, "t.strs", strs, NULL, 3), 0);
    cr_assert_eq(gguf_writer_set_arr(w, "t.empty", GGUF_TYPE_UINT8, NULL, 0), 0);
    cr_expect_eq(gguf_writer_set_arr(w, "t.bad", GGUF_TYPE_STRING, NULL, 0), INFERD_EINVAL);
    cr_expect(strstr(gguf_writer_error(w), "t.bad"));
    cr_assert_eq(gguf_writer_n_kv(w), 16);
    cr_assert_eq(gguf_writer_write(w, out, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);

    gguf_file *f = open_ok(out);
    cr_expect_eq(gguf_n_kv(f), 16);
    cr_expect_eq(gguf_n_tensors(f), 0);
    int64_t i64;
    uint64_t u64;
    uint32_t u32;
    float f32;
    int b;
    gguf_str s;
    cr_expect_eq(gguf_get_i64(f, "t.u8", &i64), 0);
    cr_expect_eq(i64, 200);
    cr_expect_eq(gguf_get_i64(f, "t.i8", &i64), 0);
    cr_expect_eq(i64, -100);
    cr_expect_eq(gguf_get_u32(f, "t.i8", &u32), INFERD_EFORMAT, "negative into u32");
    cr_expect_eq(gguf_get_i64(f, "t.u16", &i64), 0);
    cr_expect_eq(i64, 60000);
    cr_expect_eq(gguf_get_i64(f, "t.i16", &i64), 0);
    cr_expect_eq(i64, -30000);
    cr_expect_eq(gguf_get_u32(f, "t.u32", &u32), 0);
    cr_expect_eq(u32, 4000000000u);
    cr_expect_eq(gguf_get_i64(f, "t.i32", &i64), 0);
    cr_expect_eq(i64, -2000000000);
    cr_expect_eq(gguf_get_u64(f, "t.u64", &u64), 0);
    cr_expect_eq(u64, UINT64_MAX);
    cr_expect_eq(gguf_get_i64(f, "t.u64", &i64), INFERD_EFORMAT, "2^64-1 does not fit int64");
    cr_expect_eq(gguf_get_u32(f, "t.u64", &u32), INFERD_EFORMAT);
    cr_expect_eq(gguf_get_i64(f, "t.i64", &i64), 0);
    cr_expect_eq(i64, INT64_MIN);
    cr_expect_eq(gguf_get_f32(f, "t.f32", &f32), 0);
    cr_expect_eq(f32, 1.5f);
    cr_expect_eq(gguf_get_f32(f, "t.f64", &f32), 0);
    cr_expect_eq(f32, -2.25f);
    cr_expect_eq(gguf_get_bool(f, "t.bool", &b), 0);
    cr_expect_eq(b, 1);
    cr_expect_eq(gguf_get_str(f, "t.str", &s), 0);
    cr_expect(gguf_str_eq(s, "hello"));
    cr_expect_eq(gguf_get_str(f, "t.strn", &s), 0);
    cr_expect(s.len == 3 && !memcmp(s.data, "a\0b", 3));
    const int32_t *arr = gguf_get_arr_data(f, "t.arr");
    cr_assert_not_null(arr);
    int32_t x;
    memcpy(&x, (const char *)arr + 4, 4);
    cr_expect_eq(x, -2);
    cr_expect(gguf_str_eq(gguf_get_arr_str(f, "t.strs", 0), "x"));
    cr_expect(gguf_str_eq(gguf_get_arr_str(f, "t.strs", 1), ""));
    cr_expect(gguf_str_eq(gguf_get_arr_str(f, "t.strs", 2), "zz"));
    enum gguf_value_type et;
    uint64_t n = 9;
    cr_expect_eq(gguf_get_arr(f, "t.empty", &et, &n), 0);
    cr_expect_eq(n, 0);
    gguf_value v;
    double d;
    cr_assert_eq(gguf_kv_value(f, (uint64_t)gguf_find_key(f, "t.f64"), &v), 0);
    cr_expect_eq(gguf_value_f64(&v, &d), 0);
    cr_expect_eq(d, -2.25);
    gguf_close(f);
}

/* A nested array built by hand: [[1, 2], ["ab"], []] (arrays of int32, string, uint8). */
static const uint8_t nested_raw[] = {
    9, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,                                   /* array of 3 arrays */
    5, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,           /* [1, 2] */
    8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', /* ["ab"] */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                                   /* [] of uint8 */
};

Test(gguf_write, nested_arrays_copy_and_iterate) {
    char out[600], out2[600], err[512];
    snprintf(out, sizeof out, "%s/nested.gguf", tmpdir);
    snprintf(out2, sizeof out2, "%s/nested2.gguf", tmpdir);
    gguf_value v = {.type = GGUF_TYPE_ARRAY,
                    .raw = nested_raw,
                    .raw_size = sizeof nested_raw,
                    .elem_type = GGUF_TYPE_ARRAY,
                    .n = 3,
                    .data = nested_raw + 12};
    gguf_writer *w = gguf_writer_new();
    cr_assert_eq(gguf_writer_set_value(w, "nested", &v), 0, "%s", gguf_writer_error(w));
    gguf_value bad = v;
    bad.raw_size--;
    cr_expect_eq(gguf_writer_set_value(w, "bad", &bad), INFERD_EINVAL);
    cr_expect(strstr(gguf_writer_error(w), "malformed"), "%s", gguf_writer_error(w));
    cr_assert_eq(gguf_writer_write(w, out, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);

    gguf_file *f = open_ok(out);
    gguf_value a, e, g;
    cr_assert_eq(gguf_kv_value(f, 0, &a), 0);
    cr_expect_eq(a.elem_type, GGUF_TYPE_ARRAY);
    cr_expect_eq(a.n, 3);
    gguf_value_iter it, sub;
    gguf_value_iter_init(&a, &it);
    cr_assert(gguf_value_iter_next(&it, &e));
    cr_expect_eq(e.elem_type, GGUF_TYPE_INT32);
    gguf_value_iter_init(&e, &sub);
    int64_t x;
    cr_assert(gguf_value_iter_next(&sub, &g));
    cr_expect_eq(gguf_value_i64(&g, &x), 0);
    cr_expect_eq(x, 1);
    cr_assert(gguf_value_iter_next(&sub, &g));
    cr_expect_eq(gguf_value_i64(&g, &x), 0);
    cr_expect_eq(x, 2);
    cr_expect(!gguf_value_iter_next(&sub, &g));
    cr_assert(gguf_value_iter_next(&it, &e));
    gguf_value_iter_init(&e, &sub);
    cr_assert(gguf_value_iter_next(&sub, &g));
    cr_expect(gguf_str_eq(g.str, "ab"));
    cr_assert(gguf_value_iter_next(&it, &e));
    cr_expect_eq(e.n, 0);
    cr_expect(!gguf_value_iter_next(&it, &e));

    /* Copying the key from the open file gives the same bytes. */
    w = gguf_writer_new();
    cr_assert_eq(gguf_writer_copy_kv(w, f, 0), 0);
    cr_assert_eq(gguf_writer_write(w, out2, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    gguf_close(f);
    size_t na, nb;
    char *p = slurp(out, &na), *q = slurp(out2, &nb);
    cr_expect(na == nb && !memcmp(p, q, na));
    free(p);
    free(q);
}

/* Copy all metadata of the default model, override one key, drop one, add
 * one: order is kept and only those change. */
Test(gguf_write, copy_with_overrides) {
    char out[600], err[512];
    snprintf(out, sizeof out, "%s/over.gguf", tmpdir);
    gguf_file *src = open_ok("models/stories260K.gguf");
    gguf_writer *w = gguf_writer_new();
    cr_assert_eq(gguf_writer_copy_all_kv(w, src), 0);
    cr_assert_eq(gguf_writer_set_str(w, "general.name", "renamed"), 0);
    cr_assert_eq(gguf_writer_remove(w, "tokenizer.ggml.seperator_token_id"), 0);
    cr_expect_eq(gguf_writer_remove(w, "absent.key"), INFERD_ENOTFOUND);
    cr_assert_eq(gguf_writer_set_u32(w, "general.file_type", 0), 0);
    const gguf_tensor *t = gguf_find_tensor(src, "output_norm.weight");
    cr_assert_eq(gguf_writer_copy_tensor(w, t), 0);
    cr_assert_eq(gguf_writer_write(w, out, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);

    gguf_file *f = open_ok(out);
    cr_expect_eq(gguf_n_kv(f), 19);
    cr_expect(gguf_str_eq(gguf_kv_key(f, 5), "general.name"), "replaced in place");
    char *name = gguf_get_str_dup(f, "general.name");
    cr_expect_str_eq(name, "renamed");
    free(name);
    cr_expect_eq(gguf_find_key(f, "tokenizer.ggml.seperator_token_id"), -1);
    cr_expect(gguf_str_eq(gguf_kv_key(f, 18), "general.file_type"));
    cr_expect(gguf_str_eq(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 1), "<s>"));
    cr_assert_eq(gguf_n_tensors(f), 1);
    const gguf_tensor *u = gguf_tensor_at(f, 0);
    cr_expect_eq(u->size_bytes, 256);
    cr_expect(!memcmp(u->data, t->data, 256));
    gguf_close(f);
    gguf_close(src);
}

Test(gguf_write, streaming_and_alignment) {
    char out[600], err[512];
    snprintf(out, sizeof out, "%s/stream.gguf", tmpdir);
    gguf_writer *w = gguf_writer_new();
    cr_assert_eq(gguf_writer_set_u32(w, "general.alignment", 64), 0);
    uint64_t ne_a[2] = {3, 2}, ne_b[1] = {32};
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint8_t b[34];
    memset(b, 0x5a, sizeof b);
    cr_assert_eq(gguf_writer_add_tensor(w, "a", DTYPE_F32, 2, ne_a, NULL, sizeof a), 0);
    cr_assert_eq(gguf_writer_add_tensor(w, "b", DTYPE_Q8_0, 1, ne_b, NULL, sizeof b), 0);
    cr_expect_eq(gguf_writer_write(w, out, err, sizeof err), INFERD_EINVAL, "no data");
    cr_expect(strstr(err, "'a' has no data"), "%s", err);
    cr_assert_eq(gguf_writer_begin(w, out, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gguf_writer_write_tensor_data(w, a, sizeof a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gguf_writer_write_tensor_data(w, b, sizeof b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gguf_writer_finish(w, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    gguf_file *f = open_ok(out);
    cr_expect_eq(gguf_alignment(f), 64);
    cr_expect_eq(gguf_data_offset(f) % 64, 0);
    cr_expect_eq(gguf_file_size(f) % 64, 0);
    const gguf_tensor *tb = gguf_find_tensor(f, "b");
    cr_assert_not_null(tb);
    cr_expect_eq(tb->offset, 64);
    cr_expect_eq(tb->type, DTYPE_Q8_0);
    cr_expect(!memcmp(tb->data, b, sizeof b));
    gguf_close(f);

    /* Bad alignments are refused at write time. */
    w = gguf_writer_new();
    cr_assert_eq(gguf_writer_set_u32(w, "general.alignment", 48), 0);
    cr_expect_eq(gguf_writer_write(w, out, err, sizeof err), INFERD_EINVAL);
    cr_expect(strstr(err, "general.alignment") && strstr(err, "48"), "%s", err);
    cr_assert_eq(gguf_writer_set_u32(w, "general.alignment", 16), 0);
    cr_assert_eq(gguf_writer_add_tensor(w, "a", DTYPE_F32, 2, ne_a, a, sizeof a), 0);
    /* A short stream is refused and leaves the old file in place. */
    cr_assert_eq(gguf_writer_begin(w, out, err, sizeof err), 0);
    cr_expect_eq(gguf_writer_finish(w, err, sizeof err), INFERD_EINVAL);
    cr_expect(strstr(err, "only 0 of 1"), "%s", err);
    gguf_writer_free(w);
    f = open_ok(out);
    cr_expect_eq(gguf_alignment(f), 64);
    gguf_close(f);
}

Test(gguf_write, tensor_errors) {
    gguf_writer *w = gguf_writer_new();
    uint64_t ne[5] = {33, 1, 1, 1, 1};
    char data[64] = {0};
    cr_expect_eq(gguf_writer_add_tensor(w, "q", DTYPE_Q8_0, 1, ne, data, 34), INFERD_EINVAL);
    cr_expect(strstr(gguf_writer_error(w), "row length 33") &&
                  strstr(gguf_writer_error(w), "block size 32"),
              "%s", gguf_writer_error(w));
    cr_expect_eq(gguf_writer_add_tensor(w, "five", DTYPE_F32, 5, ne, data, 4), INFERD_EINVAL);
    cr_expect(strstr(gguf_writer_error(w), "n_dims is 5"), "%s", gguf_writer_error(w));
    cr_expect_eq(gguf_writer_add_tensor(w, "x", (enum dtype)4, 1, ne, data, 4), INFERD_EINVAL);
    cr_expect(strstr(gguf_writer_error(w), "unknown type 4"), "%s", gguf_writer_error(w));
    ne[0] = 8;
    cr_expect_eq(gguf_writer_add_tensor(w, "x", DTYPE_F32, 1, ne, data, 16), INFERD_EINVAL);
    cr_expect(strstr(gguf_writer_error(w), "16 bytes given") &&
                  strstr(gguf_writer_error(w), "needs 32"),
              "%s", gguf_writer_error(w));
    cr_expect_eq(gguf_writer_add_tensor(w, "x", DTYPE_F32, 1, ne, data, 32), 0);
    cr_expect_eq(gguf_writer_add_tensor(w, "x", DTYPE_F32, 1, ne, data, 32), INFERD_EINVAL);
    cr_expect(strstr(gguf_writer_error(w), "duplicate tensor 'x'"), "%s", gguf_writer_error(w));
    char longname[80];
    memset(longname, 'n', 65);
    longname[65] = 0;
    cr_expect_eq(gguf_writer_add_tensor(w, longname, DTYPE_F32, 1, ne, data, 32), INFERD_EINVAL);
    cr_expect(strstr(gguf_writer_error(w), "65 bytes"), "%s", gguf_writer_error(w));
    uint64_t huge[2] = {1ull << 40, 1ull << 40};
    cr_expect_eq(gguf_writer_add_tensor(w, "h", DTYPE_F32, 2, huge, data, 4), INFERD_EINVAL);
    cr_expect_eq(gguf_writer_n_tensors(w), 1);
    cr_expect_eq(gguf_writer_set_version(w, 1), INFERD_EINVAL);
    char err[512];
    cr_expect_eq(gguf_writer_write(w, "no-such-dir/x.gguf", err, sizeof err), INFERD_EIO);
    cr_expect(strstr(err, "no-such-dir/x.gguf"), "%s", err);
    gguf_writer_free(w);
    gguf_writer_free(NULL);
}

/* Many keys and tensors: lookups stay hashed (this would take minutes if
 * they were linear scans), replacing and removing keep the order. */
Test(gguf_write, many_keys_and_tensors) {
    enum { N = 100000 };
    char out[600], err[512], name[32];
    snprintf(out, sizeof out, "%s/many.gguf", tmpdir);
    gguf_writer *w = gguf_writer_new();
    for (uint32_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "k.%u", i);
        cr_assert_eq(gguf_writer_set_u32(w, name, i), 0);
    }
    for (uint32_t i = 0; i < N; i += 1000) {
        snprintf(name, sizeof name, "k.%u", i);
        cr_assert_eq(gguf_writer_set_u32(w, name, i + 1), 0);
    }
    cr_assert_eq(gguf_writer_remove(w, "k.5"), 0);
    cr_assert_eq(gguf_writer_set_u32(w, "k.6", 66), 0);
    cr_assert_eq(gguf_writer_n_kv(w), N - 1);
    uint64_t ne[1] = {0};
    for (uint32_t i = 0; i < N; i++) {
        snprintf(name, sizeof name, "t.%u", i);
        cr_assert_eq(gguf_writer_add_tensor(w, name, DTYPE_F32, 1, ne, NULL, 0), 0);
    }
    cr_expect_eq(gguf_writer_add_tensor(w, "t.77", DTYPE_F32, 1, ne, NULL, 0), INFERD_EINVAL);
    cr_assert_eq(gguf_writer_write(w, out, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    gguf_file *f = open_ok(out);
    cr_expect_eq(gguf_n_kv(f), N - 1);
    cr_expect_eq(gguf_n_tensors(f), N);
    uint32_t v = 0;
    cr_expect_eq(gguf_get_u32(f, "k.2000", &v), 0);
    cr_expect_eq(v, 2001);
    cr_expect_eq(gguf_get_u32(f, "k.6", &v), 0);
    cr_expect_eq(v, 66);
    cr_expect(gguf_str_eq(gguf_kv_key(f, 5), "k.6"), "k.5 removed, k.6 moved up in place");
    cr_expect_eq(gguf_find_key(f, "k.5"), -1);
    cr_expect_not_null(gguf_find_tensor(f, "t.99999"));
    gguf_close(f);
}
