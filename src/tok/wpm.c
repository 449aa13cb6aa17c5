/*
 * wpm.c - WordPiece ("bert" vocabularies), as llama.cpp's
 * llm_tokenizer_wpm_session with Hugging Face's BertNormalizer and
 * BertPreTokenizer rules: drop control characters (not \t \n \r), NUL and
 * U+FFFD; split on whitespace; decompose (NFD, utf8proc) and drop non-spacing marks (accent
 * stripping); lowercase; punctuation (ASCII punctuation and symbols, Unicode
 * P*) and CJK ideographs become one-character words. Each word is matched
 * greedily, longest piece first, against the vocabulary, whose word-initial
 * pieces carry a U+2581 prefix (the converter's "phantom space") and whose
 * continuation pieces have lost their "##". A word that cannot be covered,
 * or is longer than 100 characters (HF's max_input_chars_per_word), is UNK.
 */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/utf8.h"
#include "inferd.h"
#include "tok/tok_int.h"

#define MAX_WORD_CHARS 100

static int is_ws(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static int is_control(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CN ||
           k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CS;
}

static int is_punct(uint32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
        (c >= 123 && c <= 126))
        return 1;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

static int is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

typedef struct word {
    char *s; /* starts with U+2581 */
    size_t n, cap;
    size_t n_chars;
} word;

static int word_add(word *w, uint32_t cp) {
    if (w->n + 4 > w->cap) {
        size_t cap = w->cap * 2 + 64;
        char *p = realloc(w->s, cap);
        if (!p) return INFERD_ENOMEM;
        w->s = p;
        w->cap = cap;
    }
    w->n += utf8_encode(cp, w->s + w->n);
    w->n_chars++;
    return 0;
}

/* Greedy longest-match of one word (w->s = U+2581 + word). */
static int emit_word(const tokenizer *t, word *w, tok_ids *out) {
    if (w->n_chars == 0) return 0;
    size_t start = out->n;
    int ok = w->n_chars <= MAX_WORD_CHARS;
    for (size_t i = 0; ok && i < w->n;) {
        size_t j = i + t->max_token_len + 1 < w->n ? i + t->max_token_len + 1 : w->n;
        int32_t id = -1;
        for (; j > i; j--)
            if ((id = tok_find(t, w->s + i, j - i)) >= 0) break;
        if (id < 0) {
            ok = 0;
            break;
        }
        if (tok_ids_push(out, id)) return INFERD_ENOMEM;
        i = j;
    }
    if (!ok) out->n = start;
    if (out->n == start && t->unk >= 0 && tok_ids_push(out, t->unk)) return INFERD_ENOMEM;
    w->n = 3; /* keep the U+2581 prefix */
    w->n_chars = 0;
    return 0;
}

/* WordPiece-encodes one raw fragment, appending to out. Returns 0 or INFERD_ENOMEM. */
int tok_wpm_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out) {
    word w = {0};
    int rc = INFERD_ENOMEM;
    w.s = malloc(64);
    if (!w.s) return rc;
    w.cap = 64;
    memcpy(w.s, "\xe2\x96\x81", 3);
    w.n = 3;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = utf8_decode(text + i, len - i, &cp);
        i += l ? l : 1;
        /* HF's clean_text: control characters (but \t \n \r) go first, so
         * \v, \f and U+0085 vanish instead of separating words */
        if (cp == 0 || cp == 0xFFFD || (cp != '\t' && cp != '\n' && cp != '\r' && is_control(cp)))
            continue;
        if (is_ws(cp)) {
            if (emit_word(t, &w, out)) goto done;
            continue;
        }
        utf8proc_int32_t dec[32];
        utf8proc_ssize_t nd =
            utf8proc_decompose_char((utf8proc_int32_t)cp, dec, 32, UTF8PROC_DECOMPOSE, NULL);
        if (nd <= 0 || nd > 32) {
            dec[0] = (utf8proc_int32_t)cp;
            nd = 1;
        }
        for (utf8proc_ssize_t k = 0; k < nd; k++) {
            uint32_t d = (uint32_t)dec[k];
            if (utf8proc_category(dec[k]) == UTF8PROC_CATEGORY_MN) continue;
            uint32_t lower = (uint32_t)utf8proc_tolower(dec[k]);
            if (is_punct(d) || is_chinese(d)) {
                if (emit_word(t, &w, out) || word_add(&w, lower) || emit_word(t, &w, out))
                    goto done;
            } else if (word_add(&w, lower)) {
                goto done;
            }
        }
    }
    rc = emit_word(t, &w, out);
done:
    free(w.s);
    return rc;
}
