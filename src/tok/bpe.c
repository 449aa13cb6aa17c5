/*
 * bpe.c - byte-level BPE ("gpt2" vocabularies), as llama.cpp's
 * llm_tokenizer_bpe_session: each pre-tokenized word is mapped byte by byte
 * to GPT-2's printable code points; adjacent symbols merge by merge rank
 * (lowest first, ties: the leftmost) until no ranked pair is left.
 *
 * Merges are looked up as (left sid, right sid) pairs (see tok_int.h), built
 * from tokenizer.ggml.merges ("left right" strings, rank = index).
 */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/utf8.h"
#include "tok/tok_int.h"

#define MAX_MERGES (1u << 24)

typedef struct bsym {
    int32_t sid;
    uint32_t off, n; /* raw bytes of the word */
    int32_t prev, next;
} bsym;

typedef struct bbigram {
    int32_t rank;
    int32_t left, right;
    int32_t result;
    uint32_t size;
} bbigram;

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
 * other 68 bytes to U+0100.. in byte order. */
uint32_t tok_byte_to_cp(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    uint32_t n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) n++;
    return 256 + n;
}

/* Inverse of tok_byte_to_cp: the byte a GPT-2 code point stands for, or -1. */
int tok_cp_to_byte(uint32_t cp) {
    static int16_t table[256 + 68];
    static int ready; /* benign race: every thread computes the same table */
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        for (int b = 0; b < 256; b++) table[tok_byte_to_cp((uint8_t)b)] = (int16_t)b;
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    if (cp < 256) {
        uint8_t b = (uint8_t)cp;
        return tok_byte_to_cp(b) == cp ? (int)cp : -1;
    }
    return cp < 256 + 68 ? table[cp] : -1;
}

/* Reads the merges into the pair map; sets byte_sid. */
int tok_bpe_build(tokenizer *t, const gguf_file *f, char *err, size_t err_size) {
    enum gguf_value_type et;
    uint64_t n;
    if (gguf_get_arr(f, "tokenizer.ggml.merges", &et, &n) || et != GGUF_TYPE_STRING)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "tokenizer: key 'tokenizer.ggml.merges' is missing or not a string array "
                       "(needed by gpt2 models)");
    if (n > MAX_MERGES)
        return err_set(err, err_size, INFERD_EFORMAT, "tokenizer: %llu merges (at most %u)",
                       (unsigned long long)n, MAX_MERGES);
    size_t count = 0;
    char *tmp = NULL;
    size_t tmp_cap = 0;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = gguf_get_arr_str(f, "tokenizer.ggml.merges", i);
        /* llama.cpp: word.find(' ', 1); no space -> an ("", "") pair */
        const char *sp = s.len > 1 ? memchr(s.data + 1, ' ', s.len - 1) : NULL;
        size_t la = sp ? (size_t)(sp - s.data) : 0;
        size_t lb = sp ? s.len - la - 1 : 0;
        if (la + lb > tmp_cap) {
            tmp_cap = (la + lb) * 2 + 64;
            char *p = realloc(tmp, tmp_cap);
            if (!p) goto oom;
            tmp = p;
        }
        if (la + lb) memcpy(tmp, s.data, la), memcpy(tmp + la, s.data + la + 1, lb);
        int32_t a = tok_sid_intern(t, tmp, la);
        int32_t b = tok_sid_intern(t, tmp + la, lb);
        int32_t r = tok_sid_intern(t, tmp, la + lb);
        if (a < 0 || b < 0 || r < 0) goto oom;
        if (tok_pair_insert(&t->pairs, &t->pair_mask, &count, (uint32_t)a, (uint32_t)b, (int32_t)i,
                            r))
            goto oom;
    }
    free(tmp);
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t k = utf8_encode(tok_byte_to_cp((uint8_t)b), u);
        t->byte_sid[b] = tok_sid_find(t, u, k);
    }
    return 0;
oom:
    free(tmp);
    return err_set(err, err_size, INFERD_ENOMEM, "tokenizer: out of memory reading %llu merges",
                   (unsigned long long)n);
}

static inline int before(const bbigram *x, const bbigram *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static int heap_push(tok_bpe_scratch *s, bbigram g) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        bbigram *p = realloc(s->heap, cap * sizeof *p);
        if (!p) return INFERD_ENOMEM;
        s->heap = p;
        s->heap_cap = cap;
    }
    bbigram *h = s->heap;
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&g, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = g;
    return 0;
}

static bbigram heap_pop(tok_bpe_scratch *s) {
    bbigram *h = s->heap;
    bbigram top = h[0], last = h[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&h[c + 1], &h[c])) c++;
        if (!before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

static int add_bigram(const tokenizer *t, tok_bpe_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return 0;
    const bsym *y = s->syms;
    if (y[l].sid < 0 || y[r].sid < 0) return 0;
    const tok_pair *p =
        tok_pair_find(t->pairs, t->pair_mask, (uint32_t)y[l].sid, (uint32_t)y[r].sid);
    if (!p) return 0;
    return heap_push(s, (bbigram){p->rank, l, r, p->result, y[l].n + y[r].n});
}

/* A symbol that is no token: llama.cpp looks up each byte of its (mapped)
 * text as a one-byte token and keeps those that exist. */
static int push_fallback(const tokenizer *t, const char *raw, size_t n, tok_ids *out) {
    for (size_t i = 0; i < n; i++) {
        char u[4];
        size_t k = utf8_encode(tok_byte_to_cp((uint8_t)raw[i]), u);
        for (size_t j = 0; j < k; j++) {
            int32_t id = tok_find(t, &u[j], 1);
            if (id >= 0 && tok_ids_push(out, id)) return INFERD_ENOMEM;
        }
    }
    return 0;
}

static int merge_word(const tokenizer *t, tok_bpe_scratch *s, const char *w, size_t len,
                      tok_ids *out) {
    if (t->ignore_merges) {
        if (s->enc_cap < 2 * len + 1) {
            char *p = realloc(s->enc, 2 * len + 64);
            if (!p) return INFERD_ENOMEM;
            s->enc = p;
            s->enc_cap = 2 * len + 64;
        }
        size_t o = 0;
        for (size_t i = 0; i < len; i++)
            o += utf8_encode(tok_byte_to_cp((uint8_t)w[i]), s->enc + o);
        int32_t id = tok_find(t, s->enc, o);
        if (id >= 0) return tok_ids_push(out, id);
    }
    if (len > s->syms_cap) {
        bsym *p = realloc(s->syms, len * sizeof *p);
        if (!p) return INFERD_ENOMEM;
        s->syms = p;
        s->syms_cap = len;
    }
    bsym *y = s->syms;
    for (size_t i = 0; i < len; i++)
        y[i] = (bsym){t->byte_sid[(uint8_t)w[i]], (uint32_t)i, 1, (int32_t)i - 1,
                      i + 1 == len ? -1 : (int32_t)i + 1};
    s->heap_n = 0;
    for (size_t i = 1; i < len; i++)
        if (add_bigram(t, s, (int32_t)i - 1, (int32_t)i)) return INFERD_ENOMEM;
    while (s->heap_n) {
        bbigram g = heap_pop(s);
        bsym *a = &y[g.left], *b = &y[g.right];
        if (a->n == 0 || b->n == 0 || a->n + b->n != g.size) continue;
        a->n += b->n;
        b->n = 0;
        a->sid = g.result;
        a->next = b->next;
        if (b->next >= 0) y[b->next].prev = g.left;
        if (add_bigram(t, s, a->prev, g.left) || add_bigram(t, s, g.left, a->next))
            return INFERD_ENOMEM;
    }
    for (int32_t i = len ? 0 : -1; i != -1; i = y[i].next) {
        if (y[i].sid >= 0 && (uint32_t)y[i].sid < t->n_vocab) {
            if (tok_ids_push(out, y[i].sid)) return INFERD_ENOMEM;
        } else if (push_fallback(t, w + y[i].off, y[i].n, out)) {
            return INFERD_ENOMEM;
        }
    }
    return 0;
}

int tok_bpe_word(const tokenizer *t, tok_bpe_scratch *s, const char *word, size_t len, tok_ids *out,
                 tok_wcache *cache) {
    const int32_t *ids;
    size_t k;
    if (cache && tok_wcache_get(cache, word, len, &ids, &k)) return tok_ids_append(out, ids, k);
    size_t before_n = out->n;
    if (merge_word(t, s, word, len, out)) return INFERD_ENOMEM;
    if (cache) tok_wcache_put(cache, word, len, out->v + before_n, out->n - before_n);
    return 0;
}

/* Frees the scratch buffers and zeroes s (it can be used again). */
void tok_bpe_scratch_free(tok_bpe_scratch *s) {
    free(s->syms);
    free(s->heap);
    free(s->enc);
    *s = (tok_bpe_scratch){0};
}
