/*
 * special.c - tok_encode: special-token partitioning, then the model's
 * tokenizer on each raw fragment, with BOS/EOS as the model asks.
 *
 * Partitioning is llama.cpp's tokenizer_st_partition: for each special token
 * (CONTROL, USER_DEFINED, UNKNOWN; longest text first), every raw fragment is
 * split at each occurrence of its text. CONTROL and UNKNOWN tokens take part
 * only with parse_special; USER_DEFINED tokens always do. LSTRIP/RSTRIP
 * attributes eat ASCII whitespace next to the token.
 */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tok/tok_int.h"

/* Inputs at least this long get a word cache (short ones gain nothing). */
#define CACHE_MIN_BYTES 1024

typedef struct frag {
    int32_t token; /* -1: raw text [off, off + len) */
    size_t off, len;
} frag;

typedef struct frags {
    frag *v;
    size_t n, cap;
} frags;

static int frags_push(frags *f, frag x) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *p = realloc(f->v, cap * sizeof *p);
        if (!p) return INFERD_ENOMEM;
        f->v = p;
        f->cap = cap;
    }
    f->v[f->n++] = x;
    return 0;
}

static inline int is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Splits the raw fragments of *in at every occurrence of special token id. */
static int split_on(const tokenizer *t, const char *text, int32_t id, frags *in, frags *out) {
    const char *tt = tok_str_data(t, (uint32_t)id);
    size_t tl = t->str[id].len;
    uint32_t attr = t->attr[id];
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->v[i];
        if (f.token >= 0 || f.len < tl) {
            if (frags_push(out, f)) return INFERD_ENOMEM;
            continue;
        }
        size_t pos = f.off, end = f.off + f.len;
        for (;;) {
            const char *m = memmem(text + pos, end - pos, tt, tl);
            if (!m) break;
            size_t at = (size_t)(m - text);
            size_t left_len = at - pos;
            if (attr & TOK_ATTR_LSTRIP)
                while (left_len > 0 && is_ascii_space(text[pos + left_len - 1])) left_len--;
            if (left_len > 0 && frags_push(out, (frag){-1, pos, left_len})) return INFERD_ENOMEM;
            if (frags_push(out, (frag){id, 0, 0})) return INFERD_ENOMEM;
            pos = at + tl;
            if (attr & TOK_ATTR_RSTRIP)
                while (pos < end && is_ascii_space(text[pos])) pos++;
        }
        if (pos < end && frags_push(out, (frag){-1, pos, end - pos})) return INFERD_ENOMEM;
    }
    return 0;
}

static int partition(const tokenizer *t, const char *text, size_t len, int parse_special,
                     frags *res) {
    frags a = {0}, b = {0};
    int rc = 0;
    if (len && (rc = frags_push(&a, (frag){-1, 0, len}))) goto done;
    for (size_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
        if ((rc = split_on(t, text, id, &a, &b))) goto done;
        frags tmp = a;
        a = b;
        b = tmp;
    }
done:
    free(b.v);
    if (rc) {
        free(a.v);
        a = (frags){0};
    }
    *res = a;
    return rc;
}

int tok_encode(const tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
               int32_t **ids, size_t *n_ids, char *err, size_t err_size) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len)
        return err_set(err, err_size, INFERD_EINVAL, "tok_encode: text is NULL with length %zu",
                       len);
    frags fr = {0};
    tok_ids out = {0};
    tok_wcache *cache = len >= CACHE_MIN_BYTES ? tok_wcache_new() : NULL;
    int rc = partition(t, text, len, parse_special, &fr);
    if (rc) goto done;

    int bos_first = add_special && (t->type == TOK_TYPE_WPM ? 1 : t->add_bos);
    if (bos_first && t->bos >= 0) rc = tok_ids_push(&out, t->bos);
    int prev_special = 1; /* SPM: a leading space goes before the first fragment */
    for (size_t i = 0; i < fr.n && !rc; i++) {
        const frag *f = &fr.v[i];
        if (f->token >= 0) {
            rc = tok_ids_push(&out, f->token);
            prev_special = 1;
            continue;
        }
        switch (t->type) {
        case TOK_TYPE_SPM:
            rc = tok_spm_encode(t, text + f->off, f->len, t->add_space_prefix && prev_special, &out,
                                cache);
            break;
        case TOK_TYPE_BPE:
            rc = tok_pre_encode(t, text + f->off, f->len, &out, cache);
            break;
        case TOK_TYPE_WPM:
            rc = tok_wpm_encode(t, text + f->off, f->len, &out);
            break;
        }
        prev_special = 0;
    }
    if (!rc && add_special) {
        if (t->type == TOK_TYPE_WPM) {
            if (t->sep >= 0) rc = tok_ids_push(&out, t->sep);
        } else if (t->add_eos && t->eos >= 0) {
            rc = tok_ids_push(&out, t->eos);
        }
    }
done:
    free(fr.v);
    tok_wcache_free(cache);
    if (!rc && !out.v && !(out.v = malloc(sizeof *out.v)))
        rc = INFERD_ENOMEM; /* never NULL on success */
    if (rc || out.oom) {
        free(out.v);
        return err_set(err, err_size, rc ? rc : INFERD_ENOMEM,
                       "tok_encode: out of memory (input of %zu bytes)", len);
    }
    *ids = out.v;
    *n_ids = out.n;
    return 0;
}
