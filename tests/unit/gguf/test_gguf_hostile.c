/*
 * test_gguf_hostile.c - the reader against damaged and hostile files:
 * every truncation of real files, seeded random byte flips, absurd counts,
 * lengths, shapes, offsets and types. Each must fail with a message that
 * names the problem (never crash, never read outside the buffer: run under
 * ASan with make SAN=1).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "inferd.h"

static char *read_file(const char *path, size_t *n) {
    char *data = NULL;
    char err[256];
    int rc = file_read_all(path, 64u << 20, &data, n, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    return data;
}

/* Opens a private copy of exactly n bytes so that ASan sees any overread. */
static int open_copy(const void *src, size_t n, char *err, size_t err_size) {
    void *copy = malloc(n ? n : 1);
    cr_assert_not_null(copy);
    if (n) memcpy(copy, src, n);
    gguf_file *f = NULL;
    int rc = gguf_open_memory(copy, n, &f, err, err_size);
    if (rc == 0) {
        /* Walk everything the way a consumer would. */
        for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
            gguf_value v, e;
            gguf_kv_value(f, i, &v);
            gguf_value_iter it;
            gguf_value_iter_init(&v, &it);
            while (gguf_value_iter_next(&it, &e)) {
            }
        }
        for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            if (t->size_bytes) {
                volatile uint8_t x = ((const uint8_t *)t->data)[t->size_bytes - 1];
                (void)x;
            }
        }
        gguf_close(f);
    } else {
        cr_assert_null(f);
    }
    free(copy);
    return rc;
}

Test(gguf_hostile, truncations_of_stories) {
    size_t n;
    char *data = read_file("models/stories260K.gguf", &n);
    char err[512];
    /* Every prefix through the header, metadata and tensor infos (14176
     * bytes), then a spread through the data. */
    for (size_t len = 0; len < n; len += len < 14300 ? 1 : 4099) {
        err[0] = 0;
        int rc = open_copy(data, len, err, sizeof err);
        cr_assert_eq(rc, INFERD_EFORMAT, "length %zu: rc %d", len, rc);
        cr_assert(strncmp(err, "gguf: ", 6) == 0, "length %zu: '%s'", len, err);
    }
    cr_assert_eq(open_copy(data, n, err, sizeof err), 0, "%s", err);
    free(data);
}

/* ---- a small file with every value type, nested arrays and tensors ---- */

static const uint8_t nested_raw[] = {
    9, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,                                   /* array of 2 arrays */
    5, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,           /* [1, 2] */
    8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', /* ["ab"] */
};

/* Writes a file with one key of every type (copying the tokenizer arrays of
 * the default model) and three tensors, and returns its bytes. */
static char *small_file(size_t *n) {
    gguf_file *src = NULL;
    char err[512];
    cr_assert_eq(gguf_open("models/stories260K.gguf", &src, err, sizeof err), 0, "%s", err);
    gguf_writer *w = gguf_writer_new();
    cr_assert_not_null(w);
    cr_assert_eq(gguf_writer_copy_kv(w, src, 0), 0); /* tokenizer.ggml.tokens (512 strings) */
    gguf_writer_set_u8(w, "t.u8", 1);
    gguf_writer_set_i8(w, "t.i8", -1);
    gguf_writer_set_u16(w, "t.u16", 2);
    gguf_writer_set_i16(w, "t.i16", -2);
    gguf_writer_set_u32(w, "t.u32", 3);
    gguf_writer_set_i32(w, "t.i32", -3);
    gguf_writer_set_f32(w, "t.f32", 0.5f);
    gguf_writer_set_bool(w, "t.bool", 1);
    gguf_writer_set_str(w, "t.str", "string");
    gguf_writer_set_u64(w, "t.u64", 4);
    gguf_writer_set_i64(w, "t.i64", -4);
    gguf_writer_set_f64(w, "t.f64", 0.25);
    float fl[4] = {1, 2, 3, 4};
    gguf_writer_set_arr(w, "t.arr", GGUF_TYPE_FLOAT32, fl, 4);
    gguf_value v = {.type = GGUF_TYPE_ARRAY,
                    .raw = nested_raw,
                    .raw_size = sizeof nested_raw,
                    .elem_type = GGUF_TYPE_ARRAY,
                    .n = 2,
                    .data = nested_raw + 12};
    cr_assert_eq(gguf_writer_set_value(w, "t.nested", &v), 0, "%s", gguf_writer_error(w));
    cr_assert_eq(gguf_writer_set_u32(w, "general.alignment", 32), 0);
    static float a[64];
    static uint8_t q[2 * 34];
    uint64_t ne_a[2] = {16, 4}, ne_q[1] = {64};
    cr_assert_eq(gguf_writer_add_tensor(w, "w.a", DTYPE_F32, 2, ne_a, a, sizeof a), 0);
    cr_assert_eq(gguf_writer_add_tensor(w, "w.q", DTYPE_Q8_0, 1, ne_q, q, sizeof q), 0);
    cr_assert_eq(gguf_writer_add_tensor(w, "w.empty", DTYPE_F16, 2, (uint64_t[]){0, 3}, NULL, 0),
                 0);
    char path[600];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/inferd-gguf-small-XXXXXX", base && *base ? base : P_tmpdir);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(gguf_writer_write(w, path, err, sizeof err), 0, "%s", err);
    gguf_writer_free(w);
    gguf_close(src);
    char *data = read_file(path, n);
    unlink(path);
    return data;
}

Test(gguf_hostile, truncations_of_every_value_type) {
    size_t n;
    char *data = small_file(&n);
    char err[512];
    cr_assert_eq(open_copy(data, n, err, sizeof err), 0, "%s", err);
    for (size_t len = 0; len < n; len++) {
        err[0] = 0;
        int rc = open_copy(data, len, err, sizeof err);
        cr_assert_eq(rc, INFERD_EFORMAT, "length %zu: rc %d", len, rc);
        cr_assert(strncmp(err, "gguf: ", 6) == 0, "length %zu: '%s'", len, err);
    }
    free(data);
}

/* Seeded random damage: 1 to 4 bytes changed, mostly in the header, metadata
 * and tensor infos. Any outcome but a crash or overread is allowed; errors
 * must be EFORMAT (or ENOMEM) with a gguf: message. */
static void flip_run(char *data, size_t n, uint64_t seed, int rounds, size_t hot) {
    char *copy = malloc(n);
    char err[512];
    int ok = 0, bad = 0;
    for (int r = 0; r < rounds; r++) {
        memcpy(copy, data, n);
        int k = 1 + (int)(splitmix64(&seed) % 4);
        for (int j = 0; j < k; j++) {
            uint64_t x = splitmix64(&seed);
            size_t at = (x & 3) ? (size_t)((x >> 8) % hot) : (size_t)((x >> 8) % n);
            uint64_t how = splitmix64(&seed) % 4;
            if (how == 0)
                copy[at] ^= (char)(1u << (x >> 3 & 7));
            else if (how == 1)
                copy[at] = (char)0xff;
            else if (how == 2)
                copy[at] = 0;
            else
                copy[at] = (char)(splitmix64(&seed));
        }
        err[0] = 0;
        int rc = open_copy(copy, n, err, sizeof err);
        if (rc == 0) {
            ok++;
            continue;
        }
        bad++;
        cr_assert(rc == INFERD_EFORMAT || rc == INFERD_ENOMEM, "round %d: rc %d (%s)", r, rc, err);
        cr_assert(strncmp(err, "gguf: ", 6) == 0, "round %d: '%s'", r, err);
    }
    cr_log_info("flips: %d opened, %d refused", ok, bad);
    cr_expect_gt(bad, 0);
    free(copy);
}

Test(gguf_hostile, random_byte_flips_small) {
    size_t n;
    char *data = small_file(&n);
    gguf_file *f = NULL;
    char err[256];
    cr_assert_eq(gguf_open_memory(data, n, &f, err, sizeof err), 0);
    size_t hot = (size_t)gguf_data_offset(f);
    gguf_close(f);
    flip_run(data, n, 0x5eed, 10000, hot);
    free(data);
}

Test(gguf_hostile, random_byte_flips_stories) {
    size_t n;
    char *data = read_file("models/stories260K.gguf", &n);
    flip_run(data, n, 42, 300, 14176);
    free(data);
}

/* ---- hand-made hostile files ---- */

typedef struct fb {
    buf b;
} fb;

static void put_u32(fb *f, uint32_t v) {
    buf_append(&f->b, &v, 4);
}
static void put_u64(fb *f, uint64_t v) {
    buf_append(&f->b, &v, 8);
}
static void put_str(fb *f, const char *s) {
    put_u64(f, strlen(s));
    buf_append(&f->b, s, strlen(s));
}
static void header(fb *f, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    buf_append(&f->b, "GGUF", 4);
    put_u32(f, version);
    put_u64(f, n_tensors);
    put_u64(f, n_kv);
}
static void kv_u32(fb *f, const char *key, uint32_t v) {
    put_str(f, key);
    put_u32(f, GGUF_TYPE_UINT32);
    put_u32(f, v);
}
/* A tensor info; ne has n_dims entries. */
static void tinfo(fb *f, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                  uint64_t offset) {
    put_str(f, name);
    put_u32(f, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) put_u64(f, ne[i]);
    put_u32(f, type);
    put_u64(f, offset);
}
static void pad_to(fb *f, size_t align) {
    while (f->b.len % align) buf_putc(&f->b, 0);
}
static void zeros(fb *f, size_t n) {
    for (size_t i = 0; i < n; i++) buf_putc(&f->b, 0);
}

/* Opens f's bytes, expects EFORMAT and every needle in the message. */
#define EXPECT_ERR(fbp, ...)                                                                       \
    do {                                                                                           \
        char err_[512] = "";                                                                       \
        cr_assert(!(fbp)->b.oom);                                                                  \
        int rc_ = open_copy((fbp)->b.data, (fbp)->b.len, err_, sizeof err_);                       \
        cr_expect_eq(rc_, INFERD_EFORMAT, "rc %d: %s", rc_, err_);                                 \
        const char *needles_[] = {__VA_ARGS__};                                                    \
        for (size_t i_ = 0; i_ < sizeof needles_ / sizeof needles_[0]; i_++)                       \
            cr_expect(strstr(err_, needles_[i_]) != NULL, "'%s' not in '%s'", needles_[i_], err_); \
        buf_free(&(fbp)->b);                                                                       \
    } while (0)

Test(gguf_hostile, header_errors) {
    fb f = {BUF_INIT};
    EXPECT_ERR(&f, "file is 0 bytes, too small for the GGUF header (24 bytes)");
    buf_append(&f.b, "GGML", 4);
    zeros(&f, 20);
    EXPECT_ERR(&f, "bad magic 47 47 4d 4c");
    header(&f, 1, 0, 0);
    EXPECT_ERR(&f, "version 1 is not supported");
    header(&f, 4, 0, 0);
    EXPECT_ERR(&f, "version 4 is not supported");
    header(&f, 3u << 24, 0, 0);
    EXPECT_ERR(&f, "version 50331648", "big-endian");
    header(&f, 3, 0, 1ull << 63);
    EXPECT_ERR(&f, "metadata count 9223372036854775808 is over the limit (1048576)");
    header(&f, 3, 0, 1000);
    EXPECT_ERR(&f, "metadata count 1000 cannot fit in a file of 24 bytes");
    header(&f, 3, 1ull << 63, 0);
    EXPECT_ERR(&f, "tensor count 9223372036854775808 is over the limit");
    header(&f, 3, 100, 0);
    zeros(&f, 100);
    EXPECT_ERR(&f, "tensor count 100 cannot fit");
    /* Version 2 files read like version 3. */
    header(&f, 2, 0, 1);
    kv_u32(&f, "a", 1);
    char err[256];
    cr_expect_eq(open_copy(f.b.data, f.b.len, err, sizeof err), 0, "%s", err);
    buf_free(&f.b);
}

Test(gguf_hostile, metadata_errors) {
    fb f = {BUF_INIT};
    header(&f, 3, 0, 1);
    put_u64(&f, 1ull << 62);
    zeros(&f, 8);
    EXPECT_ERR(&f, "key length 4611686018427387904 at byte 24 is over the limit (65535)");
    header(&f, 3, 0, 1);
    put_u64(&f, 60000);
    zeros(&f, 8);
    EXPECT_ERR(&f, "key length 60000 at byte 24 runs past the end of the file");
    header(&f, 3, 0, 1);
    put_str(&f, "k.str");
    put_u32(&f, GGUF_TYPE_STRING);
    put_u64(&f, 1ull << 62);
    EXPECT_ERR(&f, "key 'k.str'", "string length 4611686018427387904", "past the end of the file");
    header(&f, 3, 0, 1);
    put_str(&f, "k.type");
    put_u32(&f, 13);
    zeros(&f, 8);
    EXPECT_ERR(&f, "key 'k.type': unknown value type 13");
    header(&f, 3, 0, 1);
    put_str(&f, "k.arr");
    put_u32(&f, GGUF_TYPE_ARRAY);
    put_u32(&f, GGUF_TYPE_UINT32);
    put_u64(&f, 1ull << 62);
    zeros(&f, 16);
    EXPECT_ERR(&f, "key 'k.arr'", "array of 4611686018427387904 uint32 elements");
    header(&f, 3, 0, 1);
    put_str(&f, "k.strs");
    put_u32(&f, GGUF_TYPE_ARRAY);
    put_u32(&f, GGUF_TYPE_STRING);
    put_u64(&f, 2);
    put_str(&f, "ok");
    put_u64(&f, 1ull << 62);
    EXPECT_ERR(&f, "key 'k.strs'", "string 1 of 2 has length 4611686018427387904");
    header(&f, 3, 0, 1);
    put_str(&f, "k.elem");
    put_u32(&f, GGUF_TYPE_ARRAY);
    put_u32(&f, 77);
    put_u64(&f, 0);
    EXPECT_ERR(&f, "key 'k.elem'", "unknown array element type 77");
    /* Nine levels of arrays, one more than allowed. */
    header(&f, 3, 0, 1);
    put_str(&f, "k.deep");
    put_u32(&f, GGUF_TYPE_ARRAY);
    for (int i = 0; i < 9; i++) {
        put_u32(&f, GGUF_TYPE_ARRAY);
        put_u64(&f, 1);
    }
    zeros(&f, 12);
    EXPECT_ERR(&f, "key 'k.deep'", "nested deeper than 8 levels");
    header(&f, 3, 0, 1);
    put_str(&f, "k.u64");
    put_u32(&f, GGUF_TYPE_UINT64);
    put_u32(&f, 0);
    EXPECT_ERR(&f, "key 'k.u64'", "uint64 value at byte", "runs past the end");
    header(&f, 3, 0, 2);
    kv_u32(&f, "dup", 1);
    kv_u32(&f, "dup", 2);
    EXPECT_ERR(&f, "duplicate key 'dup' (entries 0 and 1)");
    /* Odd bytes in names are escaped in messages. */
    header(&f, 3, 0, 1);
    put_str(&f, "bad\n\xff");
    put_u32(&f, 99);
    zeros(&f, 8);
    EXPECT_ERR(&f, "key 'bad\\x0a\\xff': unknown value type 99");
}

Test(gguf_hostile, alignment_errors) {
    fb f = {BUF_INIT};
    uint32_t bad[] = {0, 48, 3, 1u << 31};
    for (size_t i = 0; i < 4; i++) {
        header(&f, 3, 0, 1);
        kv_u32(&f, "general.alignment", bad[i]);
        char want[96];
        snprintf(want, sizeof want, "'general.alignment' is %u, must be a nonzero power of two",
                 bad[i]);
        EXPECT_ERR(&f, want);
    }
    header(&f, 3, 0, 1);
    put_str(&f, "general.alignment");
    put_u32(&f, GGUF_TYPE_STRING);
    put_str(&f, "32");
    EXPECT_ERR(&f, "'general.alignment' has type string");
    header(&f, 3, 0, 1);
    put_str(&f, "general.alignment");
    put_u32(&f, GGUF_TYPE_INT32);
    put_u32(&f, (uint32_t)-32);
    EXPECT_ERR(&f, "'general.alignment' is -32");
    /* A valid non-default alignment moves the data section. */
    header(&f, 3, 1, 1);
    kv_u32(&f, "general.alignment", 128);
    tinfo(&f, "w", 1, (uint64_t[]){4}, DTYPE_F32, 0);
    pad_to(&f, 128);
    zeros(&f, 16);
    gguf_file *g = NULL;
    char err[256];
    cr_assert_eq(gguf_open_memory(f.b.data, f.b.len, &g, err, sizeof err), 0, "%s", err);
    cr_expect_eq(gguf_alignment(g), 128);
    cr_expect_eq(gguf_data_offset(g), 128);
    gguf_close(g);
    buf_free(&f.b);
}

/* One tensor info after a valid header; data section of data_bytes. */
static void one_tensor(fb *f, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data_bytes) {
    header(f, 3, 1, 0);
    tinfo(f, name, n_dims, ne, type, offset);
    pad_to(f, 32);
    zeros(f, data_bytes);
}

Test(gguf_hostile, tensor_errors) {
    fb f = {BUF_INIT};
    uint64_t ne[5] = {4, 4, 1, 1, 1};
    one_tensor(&f, "t5", 5, ne, DTYPE_F32, 0, 64);
    EXPECT_ERR(&f, "tensor 't5': n_dims is 5, more than 4");
    one_tensor(&f, "tbig", 2, (uint64_t[]){1ull << 32, 1ull << 32}, DTYPE_F32, 0, 64);
    EXPECT_ERR(&f, "tensor 'tbig': shape [4294967296, 4294967296", "more than 2^63-1 elements");
    one_tensor(&f, "tneg", 1, (uint64_t[]){1ull << 63}, DTYPE_F32, 0, 64);
    EXPECT_ERR(&f, "tensor 'tneg': dimension 0 is 9223372036854775808");
    one_tensor(&f, "tbytes", 2, (uint64_t[]){1ull << 31, 1ull << 31}, DTYPE_F64, 0, 64);
    EXPECT_ERR(&f, "tensor 'tbytes': size in bytes overflows");
    one_tensor(&f, "ttype", 2, ne, 4, 0, 64);
    EXPECT_ERR(&f, "tensor 'ttype': unknown tensor type 4");
    one_tensor(&f, "ttype", 2, ne, 1000, 0, 64);
    EXPECT_ERR(&f, "tensor 'ttype': unknown tensor type 1000");
    one_tensor(&f, "tblk", 1, (uint64_t[]){33}, DTYPE_Q4_0, 0, 64);
    EXPECT_ERR(&f, "tensor 'tblk': row length 33 is not a multiple of q4_0's block size 32");
    one_tensor(&f, "tmis", 2, ne, DTYPE_F32, 16, 128);
    EXPECT_ERR(&f, "tensor 'tmis': offset 16 is not a multiple of the alignment (32)");
    one_tensor(&f, "tpast", 2, ne, DTYPE_F32, 32, 64);
    EXPECT_ERR(&f, "tensor 'tpast' ends at byte 192, past the end of the file (160 bytes)");
    one_tensor(&f, "tover", 2, ne, DTYPE_F32, UINT64_MAX - 31, 64);
    EXPECT_ERR(&f, "tensor 'tover': offset 18446744073709551584 + size 64 overflows");
    one_tensor(&f, "tshort", 2, ne, DTYPE_F32, 0, 63);
    EXPECT_ERR(&f, "tensor 'tshort' ends at byte 160, past the end of the file (159 bytes)");
    /* Name limits and truncated infos. */
    char longname[66];
    memset(longname, 'x', 65);
    longname[65] = 0;
    one_tensor(&f, longname, 2, ne, DTYPE_F32, 0, 64);
    EXPECT_ERR(&f, "tensor 0: name length 65 at byte 24 is over the limit (64)");
    header(&f, 3, 2, 0);
    tinfo(&f, "w", 2, ne, DTYPE_F32, 0);
    tinfo(&f, "w", 2, ne, DTYPE_F32, 64);
    pad_to(&f, 32);
    zeros(&f, 128);
    EXPECT_ERR(&f, "duplicate tensor 'w' (entries 0 and 1)");
    header(&f, 3, 2, 0);
    tinfo(&f, "a", 2, ne, DTYPE_F32, 0);
    tinfo(&f, "b", 2, ne, DTYPE_F32, 32);
    pad_to(&f, 32);
    zeros(&f, 128);
    EXPECT_ERR(&f, "tensor 'a' (data bytes 0..64) overlaps tensor 'b' (from data byte 32)");
    /* Empty tensors may share an offset; the data pointer stays inside. */
    header(&f, 3, 3, 0);
    tinfo(&f, "e1", 2, (uint64_t[]){0, 4}, DTYPE_F32, 0);
    tinfo(&f, "e2", 0, NULL, DTYPE_F32, 0);
    tinfo(&f, "e3", 1, (uint64_t[]){0}, DTYPE_Q4_K, 0);
    pad_to(&f, 32);
    zeros(&f, 4);
    gguf_file *g = NULL;
    char err[256];
    cr_assert_eq(gguf_open_memory(f.b.data, f.b.len, &g, err, sizeof err), 0, "%s", err);
    cr_expect_eq(gguf_tensor_at(g, 0)->size_bytes, 0);
    cr_expect_eq(gguf_tensor_at(g, 1)->size_bytes, 4, "0 dims: one element");
    gguf_close(g);
    buf_free(&f.b);
}
