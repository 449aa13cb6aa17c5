/*
 * test_detok.c - incremental detokenization (src/engine/detok.c): UTF-8
 * characters split over pieces are never emitted half, stop strings split
 * over pieces are found and never emitted (not even in part), held text is
 * released when it turns out not to be a stop string, and flush.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "base/buf.h"
#include "base/utf8.h"
#include "engine/detok.h"

/* Feeds pieces; returns the shown text in out and whether a stop matched. */
static int feed(detok *d, const char *const *pieces, size_t n, buf *out, int flush) {
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t len;
        int r = detok_push(d, pieces[i], strlen(pieces[i]), &t, &len);
        cr_assert_geq(r, 0);
        cr_assert(utf8_valid(t, len), "piece %zu: emitted invalid UTF-8", i);
        buf_append(out, t, len);
        if (r == 1) return 1;
    }
    if (flush) {
        const char *t;
        size_t len;
        cr_assert_eq(detok_flush(d, &t, &len), 0);
        buf_append(out, t, len);
    }
    return 0;
}

Test(detok, utf8_split_never_half) {
    detok d;
    cr_assert_eq(detok_init(&d, NULL, NULL, 0), 0);
    /* "café 日本 😀" byte by byte, as byte-fallback tokens produce it. */
    const char *s = "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80!";
    buf out = BUF_INIT;
    size_t shown_before = 0;
    for (size_t i = 0; s[i]; i++) {
        const char *t;
        size_t len;
        cr_assert_eq(detok_push(&d, s + i, 1, &t, &len), 0);
        cr_assert(utf8_valid(t, len));
        buf_append(&out, t, len);
        /* Inside a multi-byte character nothing is shown. */
        if ((unsigned char)s[i] >= 0x80 && utf8_incomplete_tail(s, i + 1))
            cr_assert_eq(out.len, shown_before);
        shown_before = out.len;
    }
    cr_assert_str_eq(out.data, s);
    buf_free(&out);
    detok_free(&d);
}

Test(detok, flush_replaces_incomplete_tail) {
    detok d;
    cr_assert_eq(detok_init(&d, NULL, NULL, 0), 0);
    const char *p[] = {"ab", "\xE6\x97"};
    buf out = BUF_INIT;
    feed(&d, p, 2, &out, 1);
    cr_assert_str_eq(out.data, "ab\xEF\xBF\xBD");
    buf_free(&out);
    detok_free(&d);
}

Test(detok, stop_string_split_across_pieces) {
    const char *stops[] = {"The end", "\n\n"};
    size_t lens[] = {7, 2};
    detok d;
    cr_assert_eq(detok_init(&d, stops, lens, 2), 0);
    const char *p[] = {"happy. Th", "e", " en", "d. More"};
    buf out = BUF_INIT;
    cr_assert_eq(feed(&d, p, 4, &out, 0), 1);
    cr_assert_str_eq(out.data, "happy. ");
    /* After a stop, nothing more. */
    const char *t;
    size_t len;
    cr_assert_eq(detok_push(&d, "x", 1, &t, &len), 1);
    cr_assert_eq(len, 0);
    buf_free(&out);
    detok_free(&d);
}

Test(detok, partial_stop_never_shown_then_released) {
    const char *stops[] = {"STOP"};
    size_t lens[] = {4};
    detok d;
    cr_assert_eq(detok_init(&d, stops, lens, 1), 0);
    const char *t;
    size_t len;
    cr_assert_eq(detok_push(&d, "go ST", 5, &t, &len), 0);
    cr_assert_eq(len, 3); /* "go " ; "ST" held */
    cr_assert_eq(memcmp(t, "go ", 3), 0);
    cr_assert_eq(detok_push(&d, "O", 1, &t, &len), 0);
    cr_assert_eq(len, 0);
    cr_assert_eq(detok_push(&d, "RM", 2, &t, &len), 0); /* "STORM": not a stop */
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(t, "STORM", 5), 0);
    /* Text held at the end of the choice is released by flush. */
    cr_assert_eq(detok_push(&d, " S", 2, &t, &len), 0);
    cr_assert_eq(len, 1);
    cr_assert_eq(detok_flush(&d, &t, &len), 0);
    cr_assert_eq(len, 1);
    cr_assert_eq(t[0], 'S');
    detok_free(&d);
}

Test(detok, earliest_stop_wins_and_stop_in_one_piece) {
    const char *stops[] = {"cd", "b"};
    size_t lens[] = {2, 1};
    detok d;
    cr_assert_eq(detok_init(&d, stops, lens, 2), 0);
    const char *p[] = {"abcd"};
    buf out = BUF_INIT;
    cr_assert_eq(feed(&d, p, 1, &out, 0), 1);
    cr_assert_str_eq(out.data, "a");
    buf_free(&out);
    detok_free(&d);
}

Test(detok, long_piece_grows) {
    detok d;
    cr_assert_eq(detok_init(&d, NULL, NULL, 0), 0);
    char big[5000];
    memset(big, 'x', sizeof big);
    const char *t;
    size_t len;
    cr_assert_eq(detok_push(&d, big, sizeof big, &t, &len), 0);
    cr_assert_eq(len, sizeof big);
    detok_free(&d);
}

Test(detok, invalid_bytes_become_replacement_chars) {
    detok d;
    cr_assert_eq(detok_init(&d, NULL, NULL, 0), 0);
    /* C3 C3 A9 A9: a lead byte without its continuation, then é, then a
     * stray continuation byte. */
    const char *p[] = {"\xC3", "\xC3", "\xA9", "\xA9", "x"};
    buf out = BUF_INIT;
    feed(&d, p, 5, &out, 1);
    cr_assert_str_eq(out.data, "\xEF\xBF\xBD\xC3\xA9\xEF\xBF\xBDx");
    buf_free(&out);
    detok_free(&d);
}
