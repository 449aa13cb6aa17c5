/*
 * buf.c - growable byte buffer; see buf.h.
 */
#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "inferd.h"

int buf_reserve(buf *b, size_t extra) {
    if (b->oom) return INFERD_ENOMEM;
    if (extra > ((size_t)-1) / 2 - b->len) {
        b->oom = 1;
        return INFERD_ENOMEM;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return INFERD_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(buf *b, const void *data, size_t n) {
    if (buf_reserve(b, n)) return INFERD_ENOMEM;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int buf_puts(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_putc(buf *b, char c) { return buf_append(b, &c, 1); }

int buf_vprintf(buf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return INFERD_EINVAL;
    if (buf_reserve(b, (size_t)n)) return INFERD_ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int buf_json_str(buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            switch (c) {
            case '"': buf_append(b, "\\\"", 2); break;
            case '\\': buf_append(b, "\\\\", 2); break;
            case '\n': buf_append(b, "\\n", 2); break;
            case '\r': buf_append(b, "\\r", 2); break;
            case '\t': buf_append(b, "\\t", 2); break;
            case '\b': buf_append(b, "\\b", 2); break;
            case '\f': buf_append(b, "\\f", 2); break;
            default:
                if (c < 0x20) {
                    char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                    buf_append(b, u, 6);
                } else {
                    buf_putc(b, (char)c);
                }
            }
            i++;
            continue;
        }
        size_t len = utf8_valid_prefix_len(s + i, n - i);
        if (len == 0) {
            buf_append(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
            i++;
        } else {
            buf_append(b, s + i, len);
            i += len;
        }
    }
    return buf_putc(b, '"');
}

void buf_clear(buf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

void buf_free(buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

char *buf_take(buf *b) {
    if (b->oom) {
        buf_free(b);
        return NULL;
    }
    if (!b->data && buf_reserve(b, 0)) return NULL;
    b->data[b->len] = 0;
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
