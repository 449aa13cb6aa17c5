/*
 * test_base.c - unit tests for src/base: buf, utf8, arena, dtype, util, error.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/dtype.h"
#include "base/error.h"
#include "base/utf8.h"
#include "base/util.h"

Test(buf, append_and_printf) {
    buf b = BUF_INIT;
    for (int i = 0; i < 1000; i++) buf_printf(&b, "%d,", i);
    cr_assert_eq(b.oom, 0);
    cr_assert(strncmp(b.data, "0,1,2,", 6) == 0);
    cr_assert_eq(b.data[b.len], 0);
    char *s = buf_take(&b);
    cr_assert_eq(strlen(s), 3890);
    cr_assert_null(b.data);
    free(s);
}

Test(buf, take_empty_gives_empty_string) {
    buf b = BUF_INIT;
    char *s = buf_take(&b);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(buf, json_escapes_controls_and_replaces_invalid_utf8) {
    buf b = BUF_INIT;
    const char in[] = "a\"b\\c\n\x01\xC3\xA9\xFF\xE6\x97";
    buf_json_str(&b, in, sizeof in - 1);
    cr_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\u0001\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    buf_free(&b);
}

Test(utf8, decode_rejects_overlong_surrogates_and_truncation) {
    uint32_t cp;
    cr_assert_eq(utf8_decode("\xC0\x80", 2, &cp), 0);         /* overlong NUL */
    cr_assert_eq(utf8_decode("\xED\xA0\x80", 3, &cp), 0);     /* surrogate */
    cr_assert_eq(utf8_decode("\xF4\x90\x80\x80", 4, &cp), 0); /* > U+10FFFF */
    cr_assert_eq(utf8_decode("\xE6\x97", 2, &cp), 0);         /* truncated */
    cr_assert_eq(utf8_decode("\xF0\x9F\x98\x80", 4, &cp), 4);
    cr_assert_eq(cp, 0x1F600);
}

Test(utf8, encode_round_trips) {
    char out[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp += 97) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        size_t n = utf8_encode(cp, out);
        uint32_t back;
        cr_assert_eq(utf8_decode(out, n, &back), n);
        cr_assert_eq(back, cp);
    }
    cr_assert_eq(utf8_encode(0xD800, out), 0);
}

Test(utf8, incomplete_tail) {
    cr_assert_eq(utf8_incomplete_tail("ab", 2), 0);
    cr_assert_eq(utf8_incomplete_tail("a\xE6", 2), 1);
    cr_assert_eq(utf8_incomplete_tail("a\xE6\x97", 3), 2);
    cr_assert_eq(utf8_incomplete_tail("a\xE6\x97\xA5", 4), 0);
    cr_assert_eq(utf8_incomplete_tail("\xF0\x9F\x98", 3), 3);
    cr_assert_eq(utf8_incomplete_tail("\x80", 1), 0);
}

Test(arena, alignment_and_exhaustion) {
    arena a;
    cr_assert_eq(arena_init(&a, 1024), 0);
    char *p = arena_alloc(&a, 10);
    char *q = arena_alloc(&a, 10);
    cr_assert_eq((uintptr_t)p % 64, 0);
    cr_assert_eq((uintptr_t)q % 64, 0);
    cr_assert_null(arena_alloc(&a, 2000));
    arena_reset(&a);
    cr_assert_eq(arena_alloc(&a, 1024), (void *)a.base);
    cr_assert_null(arena_alloc(&a, 1));
    arena_free(&a);
}

Test(dtype, table_and_row_bytes) {
    uint64_t n;
    cr_assert_eq(dtype_row_bytes(DTYPE_Q4_K, 1024, &n), 0);
    cr_assert_eq(n, 576);
    cr_assert_eq(dtype_row_bytes(DTYPE_Q8_0, 1024, &n), 0);
    cr_assert_eq(n, 1088);
    cr_assert_eq(dtype_row_bytes(DTYPE_Q4_0, 33, &n), INFERD_EINVAL);
    cr_assert_eq(dtype_row_bytes(4, 32, &n), INFERD_EINVAL); /* removed id */
    cr_assert_eq(dtype_row_bytes(DTYPE_F32, UINT64_MAX / 2, &n), INFERD_ERANGE);
    enum dtype t;
    cr_assert_eq(dtype_from_name("Q6_K", &t), 0);
    cr_assert_eq(t, DTYPE_Q6_K);
    cr_assert_eq(dtype_from_name("q9_9", &t), INFERD_ENOTFOUND);
    cr_assert_null(dtype_get(99));
}

Test(util, splitmix_matches_reference_stream) {
    /* First value of splitmix64 from state 0 (published test vector). */
    uint64_t s = 0;
    cr_assert_eq(splitmix64(&s), 0xE220A8397B1DCDAFULL);
}

Test(error, strerror_and_err_set) {
    char err[64];
    cr_assert_str_eq(inferd_strerror(INFERD_ENOMEM), "out of memory");
    cr_assert_str_eq(inferd_strerror(12345), "unknown error");
    cr_assert_eq(err_set(err, sizeof err, INFERD_EINVAL, "bad %s=%d", "x", 3), INFERD_EINVAL);
    cr_assert_str_eq(err, "bad x=3");
}

Test(util, file_read_all_limits) {
    char *data;
    size_t len;
    char err[256];
    cr_assert_eq(file_read_all("models/README.md", 1 << 20, &data, &len, err, sizeof err), 0);
    cr_assert(len > 100);
    cr_assert_eq(data[len], 0);
    free(data);
    cr_assert_eq(file_read_all("models/README.md", 10, &data, &len, err, sizeof err), INFERD_ETOOLONG);
    cr_assert_null(data);
    cr_assert_eq(file_read_all("no/such/file", 10, &data, &len, err, sizeof err), INFERD_EIO);
    cr_assert(strstr(err, "no/such/file") != NULL);
}
