/*
 * tok_int.h - the tokenizer's private state, shared by the files of src/tok/
 * (vocab.c loads it, special.c/spm.c/bpe.c/pretok.c/wpm.c encode with it,
 * decode.c turns ids back into text). No other module includes this.
 *
 * Strings: every vocabulary text has a "string id" (sid) equal to its token
 * id. Texts that take part in merges without being tokens (a BPE merge whose
 * parts or result are not in the vocabulary, a character inside an SPM token
 * that is not itself a token) get extra sids >= n_vocab, so that every merge
 * is a lookup of a (left sid, right sid) pair.
 */
#ifndef TOK_TOK_INT_H
#define TOK_TOK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "inferd.h"
#include "tok/tokenizer.h"

enum tok_type { TOK_TYPE_SPM, TOK_TYPE_BPE, TOK_TYPE_WPM };

/* Token attributes: llama.cpp's llama_token_attr bits. */
enum {
    TOK_ATTR_UNDEFINED = 0,
    TOK_ATTR_UNKNOWN = 1 << 0,
    TOK_ATTR_UNUSED = 1 << 1,
    TOK_ATTR_NORMAL = 1 << 2,
    TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_NORMALIZED = 1 << 6,
    TOK_ATTR_LSTRIP = 1 << 7,
    TOK_ATTR_RSTRIP = 1 << 8,
    TOK_ATTR_SINGLE_WORD = 1 << 9,
};

/* Maximum number of chained pre-tokenizer regexes of one pre-tokenizer. */
#define TOK_MAX_REGEX 8

typedef struct tok_str {
    uint32_t off; /* into tokenizer.text */
    uint32_t len;
} tok_str;

/* One (left sid, right sid) -> merge entry; a == UINT32_MAX marks a free slot. */
typedef struct tok_pair {
    uint32_t a, b;
    int32_t rank;   /* BPE merge rank (lower merges first); SPM: unused */
    int32_t result; /* sid of the concatenation */
} tok_pair;

/* A growable list of token ids (per call; never shared). */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
    int oom;
} tok_ids;

typedef struct tok_wcache tok_wcache;

struct tokenizer {
    enum tok_type type;
    int pre; /* enum tok_pre (pretok.c) */
    char model_name[16];
    char *pre_name; /* owned */

    uint32_t n_vocab;
    uint32_t n_str; /* n_vocab + extra strings */
    uint32_t cap_str;
    char *text; /* all string bytes, owned */
    size_t text_len, text_cap;
    tok_str *str;   /* [n_str] */
    float *score;   /* [n_vocab] */
    uint32_t *attr; /* [n_vocab] */
    uint8_t *eog;   /* [n_vocab]: 1 if end of generation */
    uint32_t *hash; /* open addressing: sid + 1, 0 = empty */
    size_t hash_mask;
    uint32_t max_token_len;

    /* pieces (special = 1 form), precomputed */
    char *piece;
    tok_str *piece_at; /* [n_vocab] */

    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    int add_bos, add_eos, add_space_prefix, ignore_merges, clean_spaces, remove_extra_ws;
    int nfc; /* BPE: NFC-normalize fragments first (Qwen2's HF normalizer) */

    int32_t *special; /* CONTROL | USER_DEFINED | UNKNOWN ids, longest text first */
    size_t n_special;

    /* merges: (left sid, right sid) -> result (BPE ranks, SPM token splits) */
    tok_pair *pairs;
    size_t pair_mask;

    /* BPE: sid of the byte-level character of each byte (-1 when none) */
    int32_t byte_sid[256];
    /* SPM: byte-fallback token of each byte (<0xXX>, else the byte itself; -1) */
    int32_t byte_tok[256];
    /* SPM: sid of single-byte units 0..127 and of U+2581 (index 128), -1 none */
    int32_t unit_sid[129];
    /* SPM: adjacency of units inside tokens. small: bitmap over the 129 units
     * above; other pairs in the adj set (a/b sids, result unused). */
    uint8_t adj_small[129 * 129 / 8 + 1];
    tok_pair *adj;
    size_t adj_mask;

    /* pre-tokenizer: compiled pcre2 codes (pcre2_code_8 *); re_kind says
     * when presplit.c has a hand-written splitter for that regex */
    void *re[TOK_MAX_REGEX];
    int re_kind[TOK_MAX_REGEX];
    int n_re;
};

/* ---- vocab.c ---- */
uint64_t tok_hash_bytes(const char *s, size_t n);
/* sid of s[0..n), or -1. */
int32_t tok_sid_find(const tokenizer *t, const char *s, size_t n);
static inline const char *tok_str_data(const tokenizer *t, uint32_t sid) {
    return t->text + t->str[sid].off;
}
/* Adds a string (extra sid) if absent; returns its sid, or -1 out of memory. */
int32_t tok_sid_intern(tokenizer *t, const char *s, size_t n);
/* Pair map: insert (keeps an existing entry) and lookup (NULL when absent). */
int tok_pair_insert(tok_pair **tab, size_t *mask, size_t *count, uint32_t a, uint32_t b,
                    int32_t rank, int32_t result);
const tok_pair *tok_pair_find(const tok_pair *tab, size_t mask, uint32_t a, uint32_t b);

/* ---- ids ---- */
int tok_ids_push(tok_ids *ids, int32_t id);
int tok_ids_append(tok_ids *ids, const int32_t *v, size_t n);

/* ---- word cache (special.c): per call, keyed by bytes ---- */
tok_wcache *tok_wcache_new(void);
void tok_wcache_free(tok_wcache *c);
/* Looks key up; on a hit returns 1 with the borrowed ids. */
int tok_wcache_get(tok_wcache *c, const char *key, size_t len, const int32_t **ids, size_t *n);
/* Stores a copy (silently skipped when full or too long). */
void tok_wcache_put(tok_wcache *c, const char *key, size_t len, const int32_t *ids, size_t n);

/* ---- spm.c ---- */
int tok_spm_build(tokenizer *t, char *err, size_t err_size);
/* Tokenizes one raw fragment (escapes spaces to U+2581; prefix_space adds one first). */
int tok_spm_encode(const tokenizer *t, const char *raw, size_t raw_len, int prefix_space,
                   tok_ids *out, tok_wcache *cache);

/* ---- bpe.c ---- */
/* Per-call scratch of the BPE merge (symbols, heap, encoded word). */
typedef struct tok_bpe_scratch {
    void *syms;
    size_t syms_cap;
    void *heap;
    size_t heap_n, heap_cap;
    char *enc;
    size_t enc_cap;
} tok_bpe_scratch;
int tok_bpe_build(tokenizer *t, const gguf_file *f, char *err, size_t err_size);
/* Encodes one pre-tokenized word (raw bytes). Returns 0 or INFERD_ENOMEM. */
int tok_bpe_word(const tokenizer *t, tok_bpe_scratch *s, const char *word, size_t len, tok_ids *out,
                 tok_wcache *cache);
void tok_bpe_scratch_free(tok_bpe_scratch *s);
/* Byte-level (GPT-2) mapping: byte -> code point, and back (-1 when cp maps no byte). */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp);

/* ---- pretok.c ---- */
/* Looks up a tokenizer.ggml.pre name: sets t->pre and flags as llama.cpp
 * does. Returns 0 or INFERD_EFORMAT (unknown name). */
int tok_pre_select(tokenizer *t, const char *name, char *err, size_t err_size);
int tok_pre_compile(tokenizer *t, char *err, size_t err_size);
void tok_pre_free(tokenizer *t);
/* Splits text into words with the chained regexes and BPE-encodes each. */
int tok_pre_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out,
                   tok_wcache *cache);

/* Splits text with the chained regexes (fast = 0: PCRE2 only, even where
 * presplit.c has a splitter) and stores the end offset of each final piece
 * in ends[0..max). Returns the number of pieces (may exceed max), or a
 * negative INFERD_E* code. For tests comparing the two paths. */
long tok_pre_split_ends(const tokenizer *t, int fast, const char *text, size_t len, size_t *ends,
                        size_t max);

/* ---- presplit.c ---- */
enum { TOK_SPLIT_PCRE = 0, TOK_SPLIT_GPT2, TOK_SPLIT_LLAMA3, TOK_SPLIT_QWEN2 };
typedef int (*tok_piece_fn)(void *ctx, const char *s, size_t n);
int tok_presplit_init(void);
int tok_presplit(int kind, const char *s, size_t n, tok_piece_fn fn, void *ctx);

/* ---- wpm.c ---- */
int tok_wpm_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out);

/* ---- decode.c ---- */
int tok_pieces_build(tokenizer *t);

#endif
