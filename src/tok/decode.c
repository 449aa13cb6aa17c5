/*
 * decode.c - ids back to text: the per-token pieces (precomputed at load,
 * as llama.cpp's cache_token_to_piece) and tok_decode, which is
 * llama_detokenize(remove_special = false): pieces, one leading space
 * dropped when the model adds a space prefix, then the
 * clean_up_tokenization_spaces passes when the model asks for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/utf8.h"
#include "tok/tok_int.h"

/* Appends the special = 1 piece of id to b. */
static int piece_of(const tokenizer *t, uint32_t id, buf *b) {
    const char *s = tok_str_data(t, id);
    size_t n = t->str[id].len;
    uint32_t a = t->attr[id];
    if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED))
        return buf_append(b, s, n);
    if (t->type == TOK_TYPE_BPE) {
        if (!(a & TOK_ATTR_NORMAL)) return 0;
        /* llama_decode_text: each code point back to its byte */
        for (size_t o = 0; o < n;) {
            uint32_t cp;
            size_t k = utf8_decode(s + o, n - o, &cp);
            if (k == 0) k = 1;
            int byte = tok_cp_to_byte(cp);
            if (byte >= 0) {
                buf_putc(b, (char)byte);
            } else {
                char u[4];
                size_t ul = utf8_encode(cp, u);
                buf_puts(b, "[UNK_BYTE_0x");
                for (size_t j = 0; j < ul; j++) buf_printf(b, "%02x", (unsigned char)u[j]);
                buf_append(b, s, n);
                buf_putc(b, ']');
            }
            o += k;
        }
        return b->oom ? INFERD_ENOMEM : 0;
    }
    if (a & TOK_ATTR_NORMAL) {
        for (size_t o = 0; o < n;) {
            if (n - o >= 3 && !memcmp(s + o, "\xe2\x96\x81", 3)) {
                buf_putc(b, ' ');
                o += 3;
            } else {
                buf_putc(b, s[o++]);
            }
        }
        return b->oom ? INFERD_ENOMEM : 0;
    }
    if ((a & TOK_ATTR_BYTE) && n >= 5) {
        char hex[3] = {s[3], s[4], 0};
        return buf_putc(b, (char)strtol(hex, NULL, 16));
    }
    return 0;
}

/* Precomputes every token's piece. Returns 0 or INFERD_ENOMEM. */
int tok_pieces_build(tokenizer *t) {
    buf b = BUF_INIT;
    t->piece_at = malloc(t->n_vocab * sizeof *t->piece_at);
    if (!t->piece_at) return INFERD_ENOMEM;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        size_t before = b.len;
        if (piece_of(t, id, &b) || b.oom) {
            buf_free(&b);
            return INFERD_ENOMEM;
        }
        t->piece_at[id].off = (uint32_t)before;
        t->piece_at[id].len = (uint32_t)(b.len - before);
    }
    buf_putc(&b, 0);
    if (b.oom) return INFERD_ENOMEM;
    t->piece = buf_take(&b);
    return t->piece ? 0 : INFERD_ENOMEM;
}

/* See tokenizer.h: the precomputed piece, "" for CONTROL/UNKNOWN unless special. */
int tok_piece(const tokenizer *t, int32_t id, int special, const char **data, size_t *len) {
    *data = "";
    *len = 0;
    if (id < 0 || (uint32_t)id >= t->n_vocab) return INFERD_EINVAL;
    if (!special && (t->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) return 0;
    *data = t->piece + t->piece_at[id].off;
    *len = t->piece_at[id].len;
    return 0;
}

/* llama.cpp's clean_spaces passes over s[0..n); returns the new length. */
static size_t clean_spaces(char *text, size_t n) {
    /* first pass: " ?", " !", " .", " ," lose the space */
    size_t total1 = n, total = n ? 1 : 0;
    for (size_t i = 1; i < total1; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        text[total++] = x;
    }
    /* second pass: a single apostrophe between spaces loses both spaces */
    size_t total2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total2; i++) {
        char x = text[i];
        if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }
    /* third pass: " 's", " 'm", " 're", " 've" lose the space */
    size_t total3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total3; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm') {
                total--;
            } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                char x2 = text[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) total--;
            }
        }
        text[total++] = x;
    }
    return total;
}

/* See tokenizer.h. All ids are checked before anything is appended. */
int tok_decode(const tokenizer *t, const int32_t *ids, size_t n, int special, buf *out) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= t->n_vocab) return INFERD_EINVAL;
    buf b = BUF_INIT;
    int remove_space = t->add_space_prefix;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t len;
        tok_piece(t, ids[i], special, &p, &len);
        if (remove_space && len && *p == ' ') p++, len--;
        remove_space = 0;
        buf_append(&b, p, len);
    }
    int rc = 0;
    if (b.oom) {
        rc = INFERD_ENOMEM;
    } else if (b.len) {
        size_t len = t->clean_spaces ? clean_spaces(b.data, b.len) : b.len;
        rc = buf_append(out, b.data, len);
    }
    buf_free(&b);
    return rc;
}
