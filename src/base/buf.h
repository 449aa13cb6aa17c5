/*
 * buf.h - a growable byte buffer (always NUL-terminated), the one string
 * builder of the project: JSON output, tokenizer pieces, rendered templates.
 *
 * Allocation failure is recorded (b->oom) instead of aborting; appends after a
 * failure are no-ops, so callers check once at the end.
 */
#ifndef BASE_BUF_H
#define BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;  /* owned; NUL-terminated when len > 0 or after any append */
    size_t len;  /* bytes used, excluding the terminator */
    size_t cap;  /* bytes allocated */
    int oom;     /* 1 after an allocation failed */
} buf;

#define BUF_INIT {0, 0, 0, 0}

/* Ensures room for extra more bytes (plus terminator); returns 0 or INFERD_ENOMEM. */
int buf_reserve(buf *b, size_t extra);
/* Appends n bytes. Returns 0 or INFERD_ENOMEM. */
int buf_append(buf *b, const void *data, size_t n);
/* Appends a NUL-terminated string. */
int buf_puts(buf *b, const char *s);
/* Appends one byte. */
int buf_putc(buf *b, char c);
/* Appends printf-formatted text. */
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal (with quotes), escaping per RFC 8259;
 * invalid UTF-8 bytes become U+FFFD. */
int buf_json_str(buf *b, const char *s, size_t n);
/* Empties the buffer, keeping its memory. */
void buf_clear(buf *b);
/* Frees the memory; the buffer is BUF_INIT again. */
void buf_free(buf *b);
/* Hands the data over to the caller (who frees it) and resets b. Never NULL
 * unless b->oom: an empty buffer yields "". */
char *buf_take(buf *b);

#endif
