/*
 * spm.c - SentencePiece-style BPE ("llama" vocabularies), as llama.cpp's
 * llm_tokenizer_spm_session: the text (spaces escaped to U+2581, a leading
 * one added before the first fragment) is cut into UTF-8 units; the adjacent
 * pair whose concatenation is the best-scoring token merges first (ties: the
 * leftmost), until no pair forms a token; leftover units become byte tokens.
 *
 * Speed: a boundary between two units that no vocabulary token contains
 * side by side can never be merged across, so the text is cut there into
 * independent segments (usually words). Each segment runs the same priority
 * queue merge, and repeated segments come from a per-call cache. The result is
 * identical to one global merge: the merge order inside a segment is the same.
 */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tok/tok_int.h"

#define SPACE_ESC "\xe2\x96\x81" /* U+2581 */
#define SMALL_ESC 128            /* unit index of U+2581 among the small units */

typedef struct bigram {
    float score;
    int32_t left, right;
    int32_t result;
    uint32_t size;
} bigram;

typedef struct sym {
    int32_t sid;
    uint32_t off, n;
    int32_t prev, next;
} sym;

typedef struct spm_scratch {
    sym *syms;
    size_t syms_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
} spm_scratch;

/* Byte length of the UTF-8 unit starting with lead byte c, as llama.cpp's
 * unicode_len_utf8 (continuation and invalid bytes count as 1). */
static inline size_t unit_len(unsigned char c) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

/* Index among the small units (ASCII bytes, U+2581) or -1. */
static inline int small_index(const char *s, size_t n) {
    if (n == 1 && (unsigned char)s[0] < 128) return (unsigned char)s[0];
    if (n == 3 && !memcmp(s, SPACE_ESC, 3)) return SMALL_ESC;
    return -1;
}

static inline int32_t unit_sid(const tokenizer *t, const char *s, size_t n, int *small) {
    int k = small_index(s, n);
    *small = k;
    if (k >= 0) return t->unit_sid[k];
    return tok_sid_find(t, s, n);
}

static int adj_insert(tokenizer *t, size_t *adj_count, int k1, int32_t s1, int k2, int32_t s2) {
    if (k1 >= 0 && k2 >= 0) {
        size_t bit = (size_t)k1 * 129 + (size_t)k2;
        t->adj_small[bit >> 3] |= (uint8_t)(1u << (bit & 7));
        return 0;
    }
    return tok_pair_insert(&t->adj, &t->adj_mask, adj_count, (uint32_t)s1, (uint32_t)s2, 0, 0);
}

static inline int adjacent(const tokenizer *t, int k1, int32_t s1, int k2, int32_t s2) {
    if (s1 < 0 || s2 < 0) return 0;
    if (k1 >= 0 && k2 >= 0) {
        size_t bit = (size_t)k1 * 129 + (size_t)k2;
        return (t->adj_small[bit >> 3] >> (bit & 7)) & 1;
    }
    return tok_pair_find(t->adj, t->adj_mask, (uint32_t)s1, (uint32_t)s2) != NULL;
}

/* Builds byte-fallback ids, unit sids, the (left, right) -> token map and the
 * unit adjacency sets. Returns 0 or INFERD_ENOMEM. */
int tok_spm_build(tokenizer *t, char *err, size_t err_size) {
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        int32_t id = tok_find(t, name, 6);
        if (id < 0) {
            char c = (char)b;
            id = tok_find(t, &c, 1);
        }
        t->byte_tok[b] = id;
    }
    uint32_t n_vocab = t->n_vocab;
    /* units of all tokens get sids */
    for (uint32_t id = 0; id < n_vocab; id++) {
        uint32_t len = t->str[id].len;
        for (uint32_t o = 0; o < len;) {
            const char *s = tok_str_data(t, id) + o; /* re-read: text may move */
            size_t n = unit_len((unsigned char)*s);
            if (n > len - o) n = len - o;
            if (tok_sid_intern(t, s, n) < 0) goto oom;
            o += (uint32_t)n;
        }
    }
    for (int k = 0; k < 128; k++) {
        char c = (char)k;
        t->unit_sid[k] = tok_sid_find(t, &c, 1);
    }
    t->unit_sid[SMALL_ESC] = tok_sid_find(t, SPACE_ESC, 3);

    size_t pair_count = 0, adj_count = 0;
    for (uint32_t id = 0; id < n_vocab; id++) {
        const char *s = tok_str_data(t, id);
        uint32_t len = t->str[id].len;
        int32_t canon = tok_sid_find(t, s, len);
        int prev_k = -1;
        int32_t prev_sid = -1;
        for (uint32_t o = 0; o < len;) {
            size_t n = unit_len((unsigned char)s[o]);
            if (n > len - o) n = len - o;
            int k;
            int32_t sid = unit_sid(t, s + o, n, &k);
            if (o > 0) {
                if (adj_insert(t, &adj_count, prev_k, prev_sid, k, sid)) goto oom;
                int32_t a = tok_sid_find(t, s, o), b = tok_sid_find(t, s + o, len - o);
                if (a >= 0 && b >= 0 &&
                    tok_pair_insert(&t->pairs, &t->pair_mask, &pair_count, (uint32_t)a, (uint32_t)b,
                                    0, canon))
                    goto oom;
            }
            prev_k = k;
            prev_sid = sid;
            o += (uint32_t)n;
        }
    }
    return 0;
oom:
    return err_set(err, err_size, INFERD_ENOMEM, "tokenizer: out of memory building SPM tables");
}

/* Heap of bigrams: best score first, then the leftmost. */
static inline int better(const bigram *x, const bigram *y) {
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static int heap_push(spm_scratch *s, bigram b) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        bigram *p = realloc(s->heap, cap * sizeof *p);
        if (!p) return INFERD_ENOMEM;
        s->heap = p;
        s->heap_cap = cap;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(&b, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = b;
    return 0;
}

static bigram heap_pop(spm_scratch *s) {
    bigram top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(&s->heap[c + 1], &s->heap[c])) c++;
        if (!better(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

static int try_add(const tokenizer *t, spm_scratch *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return 0;
    const sym *a = &s->syms[l], *b = &s->syms[r];
    if (a->sid < 0 || b->sid < 0) return 0;
    const tok_pair *p = tok_pair_find(t->pairs, t->pair_mask, (uint32_t)a->sid, (uint32_t)b->sid);
    if (!p) return 0;
    bigram g = {t->score[p->result], l, r, p->result, a->n + b->n};
    return heap_push(s, g);
}

static int push_bytes(const tokenizer *t, const char *p, size_t n, tok_ids *out) {
    for (size_t j = 0; j < n; j++) {
        int32_t id = t->byte_tok[(unsigned char)p[j]];
        if (id < 0) id = t->unk; /* llama.cpp throws here; unk (or nothing) is kinder */
        if (id >= 0 && tok_ids_push(out, id)) return INFERD_ENOMEM;
    }
    return 0;
}

/* Merges one segment (units with no mergeable boundary to the outside). */
static int encode_segment(const tokenizer *t, spm_scratch *s, const char *text, size_t len,
                          tok_ids *out) {
    size_t m = 0;
    for (size_t o = 0; o < len; m++) {
        size_t n = unit_len((unsigned char)text[o]);
        o += n < len - o ? n : len - o;
    }
    if (m > s->syms_cap) {
        sym *p = realloc(s->syms, m * sizeof *p);
        if (!p) return INFERD_ENOMEM;
        s->syms = p;
        s->syms_cap = m;
    }
    size_t i = 0;
    for (size_t o = 0; o < len; i++) {
        size_t n = unit_len((unsigned char)text[o]);
        if (n > len - o) n = len - o;
        int k;
        s->syms[i] = (sym){unit_sid(t, text + o, n, &k), (uint32_t)o, (uint32_t)n, (int32_t)i - 1,
                           o + n == len ? -1 : (int32_t)i + 1};
        o += n;
    }
    s->heap_n = 0;
    for (size_t j = 1; j < m; j++)
        if (try_add(t, s, (int32_t)j - 1, (int32_t)j)) return INFERD_ENOMEM;
    while (s->heap_n) {
        bigram g = heap_pop(s);
        sym *a = &s->syms[g.left], *b = &s->syms[g.right];
        if (a->n == 0 || b->n == 0 || a->n + b->n != g.size) continue;
        a->n += b->n;
        b->n = 0;
        a->sid = g.result;
        a->next = b->next;
        if (b->next >= 0) s->syms[b->next].prev = g.left;
        if (try_add(t, s, a->prev, g.left) || try_add(t, s, g.left, a->next)) return INFERD_ENOMEM;
    }
    for (int32_t j = 0; j != -1 && m; j = s->syms[j].next) {
        const sym *y = &s->syms[j];
        if (y->sid >= 0 && (uint32_t)y->sid < t->n_vocab) {
            if (tok_ids_push(out, y->sid)) return INFERD_ENOMEM;
        } else if (push_bytes(t, text + y->off, y->n, out)) {
            return INFERD_ENOMEM;
        }
    }
    return 0;
}

static int flush_segment(const tokenizer *t, spm_scratch *s, const char *seg, size_t n,
                         tok_ids *out, tok_wcache *cache) {
    const int32_t *ids;
    size_t k;
    if (cache && tok_wcache_get(cache, seg, n, &ids, &k)) return tok_ids_append(out, ids, k);
    size_t before = out->n;
    if (encode_segment(t, s, seg, n, out)) return INFERD_ENOMEM;
    if (cache) tok_wcache_put(cache, seg, n, out->v + before, out->n - before);
    return 0;
}

/* Tokenizes one raw-text fragment: escapes spaces (and prefixes one when
 * prefix_space), then merges segment by segment. Returns 0 or INFERD_ENOMEM. */
int tok_spm_encode(const tokenizer *t, const char *raw, size_t raw_len, int prefix_space,
                   tok_ids *out, tok_wcache *cache) {
    size_t n_sp = 0;
    for (size_t i = 0; i < raw_len; i++) n_sp += raw[i] == ' ';
    size_t len = raw_len + 2 * n_sp + (prefix_space ? 3 : 0);
    char *text = malloc(len ? len : 1);
    if (!text) return INFERD_ENOMEM;
    size_t o = 0;
    if (prefix_space) memcpy(text + o, SPACE_ESC, 3), o += 3;
    for (size_t i = 0; i < raw_len; i++) {
        if (raw[i] == ' ')
            memcpy(text + o, SPACE_ESC, 3), o += 3;
        else
            text[o++] = raw[i];
    }
    spm_scratch s = {0};
    int rc = 0;
    size_t seg = 0;
    int prev_k = -1;
    int32_t prev_sid = -1;
    for (o = 0; o < len;) {
        size_t n = unit_len((unsigned char)text[o]);
        if (n > len - o) n = len - o;
        int k;
        int32_t sid = unit_sid(t, text + o, n, &k);
        if (o > seg && !adjacent(t, prev_k, prev_sid, k, sid)) {
            if ((rc = flush_segment(t, &s, text + seg, o - seg, out, cache))) goto done;
            seg = o;
        }
        prev_k = k;
        prev_sid = sid;
        o += n;
    }
    if (len > seg) rc = flush_segment(t, &s, text + seg, len - seg, out, cache);
done:
    free(s.syms);
    free(s.heap);
    free(text);
    return rc;
}
