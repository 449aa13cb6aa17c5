/*
 * vocab.c - loads a tokenizer from GGUF metadata (tokenizer.ggml.*), as
 * llama.cpp's llama_vocab::impl::load does: model type and its defaults, the
 * pre-tokenizer, token texts/scores/types, special ids, the end-of-generation
 * set, the special-token list used for partitioning, per-model attributes.
 * Also the string table (text <-> sid hash) and the pair map used by merges.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tok/tok_int.h"

#define MAX_TOKENS (1u << 24)
#define MAX_TEXT_BYTES (1u << 30)

static int hash_grow(tokenizer *t, size_t want);
static int load_tokens(tokenizer *t, const gguf_file *f, char *err, size_t err_size);
static void load_special_ids(tokenizer *t, const gguf_file *f);
static void detect_special_by_text(tokenizer *t);
static int build_special_cache(tokenizer *t);
static void apply_model_attrs(tokenizer *t, const gguf_file *f);
static int get_bool_opt(const gguf_file *f, const char *key, int *v);

/* A fast 64-bit hash of short strings (multiply-xorshift over 8-byte words). */
uint64_t tok_hash_bytes(const char *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n) memcpy(&w, s, n); /* s may be NULL when n is 0 */
    h = (h ^ w) * 0x94d049bb133111ebULL;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}

/* Looks up the string id of s[0..n): -1 when absent. */
int32_t tok_sid_find(const tokenizer *t, const char *s, size_t n) {
    size_t i = tok_hash_bytes(s, n) & t->hash_mask;
    for (;;) {
        uint32_t v = t->hash[i];
        if (!v) return -1;
        const tok_str *e = &t->str[v - 1];
        if (e->len == n && !memcmp(t->text + e->off, s, n)) return (int32_t)(v - 1);
        i = (i + 1) & t->hash_mask;
    }
}

/* Appends a string to the table without hashing it; returns its sid or -1. */
static int32_t str_add(tokenizer *t, const char *s, size_t n) {
    if (t->n_str == t->cap_str) {
        uint32_t cap = t->cap_str ? t->cap_str * 2 : 1024;
        tok_str *p = realloc(t->str, cap * sizeof *p);
        if (!p) return -1;
        t->str = p;
        t->cap_str = cap;
    }
    if (t->text_len + n + 1 > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap * 2 : 65536;
        while (cap < t->text_len + n + 1) cap *= 2;
        char *p = realloc(t->text, cap);
        if (!p) return -1;
        t->text = p;
        t->text_cap = cap;
    }
    memcpy(t->text + t->text_len, s, n);
    t->text[t->text_len + n] = 0; /* each string is NUL-terminated for convenience */
    t->str[t->n_str].off = (uint32_t)t->text_len;
    t->str[t->n_str].len = (uint32_t)n;
    t->text_len += n + 1;
    return (int32_t)t->n_str++;
}

/* Points the hash entry of sid's text at sid (replacing a previous owner). */
static int hash_put(tokenizer *t, uint32_t sid) {
    if (hash_grow(t, t->n_str)) return INFERD_ENOMEM;
    const char *s = tok_str_data(t, sid);
    size_t n = t->str[sid].len;
    size_t i = tok_hash_bytes(s, n) & t->hash_mask;
    for (;;) {
        uint32_t v = t->hash[i];
        if (!v) {
            t->hash[i] = sid + 1;
            return 0;
        }
        const tok_str *e = &t->str[v - 1];
        if (e->len == n && !memcmp(t->text + e->off, s, n)) {
            t->hash[i] = sid + 1; /* a later duplicate wins, as in llama.cpp's map */
            return 0;
        }
        i = (i + 1) & t->hash_mask;
    }
}

/* Returns the sid of s[0..n), adding it as an extra string when absent. */
int32_t tok_sid_intern(tokenizer *t, const char *s, size_t n) {
    int32_t sid = tok_sid_find(t, s, n);
    if (sid >= 0) return sid;
    sid = str_add(t, s, n);
    if (sid < 0 || hash_put(t, (uint32_t)sid)) return -1;
    return sid;
}

static int hash_grow(tokenizer *t, size_t want) {
    if (t->hash && want * 2 <= t->hash_mask + 1) return 0;
    size_t cap = 1024;
    while (cap < want * 3) cap *= 2;
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h) return INFERD_ENOMEM;
    if (t->hash) {
        for (size_t i = 0; i <= t->hash_mask; i++) {
            uint32_t v = t->hash[i];
            if (!v) continue;
            const tok_str *e = &t->str[v - 1];
            size_t j = tok_hash_bytes(t->text + e->off, e->len) & (cap - 1);
            while (h[j]) j = (j + 1) & (cap - 1);
            h[j] = v;
        }
        free(t->hash);
    }
    t->hash = h;
    t->hash_mask = cap - 1;
    return 0;
}

static inline size_t pair_slot(uint32_t a, uint32_t b, size_t mask) {
    uint64_t h =
        ((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ULL; /* splitmix64's finalizer mixes all bits */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(h ^ (h >> 31)) & mask;
}

/* Inserts (a, b) -> (rank, result) unless (a, b) is present (the first, lowest
 * rank, entry wins, like std::map::emplace). Grows the table at half full.
 * Returns 0 or INFERD_ENOMEM. */
int tok_pair_insert(tok_pair **tab, size_t *mask, size_t *count, uint32_t a, uint32_t b,
                    int32_t rank, int32_t result) {
    if (!*tab || (*count + 1) * 2 > *mask + 1) {
        size_t cap = *tab ? (*mask + 1) * 2 : 4096;
        tok_pair *n = malloc(cap * sizeof *n);
        if (!n) return INFERD_ENOMEM;
        for (size_t i = 0; i < cap; i++) n[i].a = UINT32_MAX;
        if (*tab) {
            for (size_t i = 0; i <= *mask; i++) {
                if ((*tab)[i].a == UINT32_MAX) continue;
                size_t j = pair_slot((*tab)[i].a, (*tab)[i].b, cap - 1);
                while (n[j].a != UINT32_MAX) j = (j + 1) & (cap - 1);
                n[j] = (*tab)[i];
            }
            free(*tab);
        }
        *tab = n;
        *mask = cap - 1;
    }
    size_t i = pair_slot(a, b, *mask);
    while ((*tab)[i].a != UINT32_MAX) {
        if ((*tab)[i].a == a && (*tab)[i].b == b) return 0;
        i = (i + 1) & *mask;
    }
    (*tab)[i] = (tok_pair){a, b, rank, result};
    (*count)++;
    return 0;
}

/* The entry for (a, b), or NULL. */
const tok_pair *tok_pair_find(const tok_pair *tab, size_t mask, uint32_t a, uint32_t b) {
    if (!tab) return NULL;
    size_t i = pair_slot(a, b, mask);
    for (;;) {
        const tok_pair *p = &tab[i];
        if (p->a == a && p->b == b) return p;
        if (p->a == UINT32_MAX) return NULL;
        i = (i + 1) & mask;
    }
}

/* Appends id (growing the list). Returns 0, or INFERD_ENOMEM with ids->oom set. */
int tok_ids_push(tok_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *p = realloc(ids->v, cap * sizeof *p);
        if (!p) {
            ids->oom = 1;
            return INFERD_ENOMEM;
        }
        ids->v = p;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

/* Appends v[0..n). Returns 0 or INFERD_ENOMEM. */
int tok_ids_append(tok_ids *ids, const int32_t *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (tok_ids_push(ids, v[i])) return INFERD_ENOMEM;
    return 0;
}

/* See tokenizer.h. Steps in llama.cpp's order: model type and defaults,
 * pre-tokenizer, tokens, merges/SPM tables, special ids, add_bos/add_eos,
 * detection by text, special-token list, pieces, per-model attributes,
 * regexes. On failure frees everything and leaves *out NULL. */
int tok_load(const gguf_file *f, tokenizer **out, char *err, size_t err_size) {
    *out = NULL;
    int rc;
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, err_size, INFERD_ENOMEM, "tokenizer: out of memory");
    t->pre = 0;
    t->eot = t->eom = t->sep = t->pad = t->mask = -1;
    t->fim_pre = t->fim_suf = t->fim_mid = t->fim_pad = t->fim_rep = t->fim_sep = -1;
    for (int i = 0; i < 256; i++) t->byte_sid[i] = t->byte_tok[i] = -1;
    for (int i = 0; i < 129; i++) t->unit_sid[i] = -1;

    gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model)) {
        rc = err_set(err, err_size, INFERD_EFORMAT,
                     "tokenizer: key 'tokenizer.ggml.model' is missing or not a string");
        goto fail;
    }
    if (gguf_str_eq(model, "llama")) {
        t->type = TOK_TYPE_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_space_prefix = 1, t->add_bos = 1;
    } else if (gguf_str_eq(model, "gpt2")) {
        t->type = TOK_TYPE_BPE;
        t->bos = 11, t->eos = 11, t->unk = -1;
        t->clean_spaces = 1;
    } else if (gguf_str_eq(model, "bert")) {
        t->type = TOK_TYPE_WPM;
        t->bos = 101, t->eos = -1, t->unk = 100, t->sep = 102, t->pad = 0, t->mask = 103;
        t->clean_spaces = 1, t->add_bos = 1;
    } else if (gguf_str_eq(model, "t5") || gguf_str_eq(model, "rwkv") ||
               gguf_str_eq(model, "no_vocab") || gguf_str_eq(model, "none")) {
        rc = err_set(err, err_size, INFERD_EUNSUPPORTED,
                     "tokenizer: tokenizer.ggml.model '%.*s' is not supported",
                     (int)(model.len > 64 ? 64 : model.len), model.data);
        goto fail;
    } else {
        rc =
            err_set(err, err_size, INFERD_EFORMAT, "tokenizer: unknown tokenizer.ggml.model '%.*s'",
                    (int)(model.len > 64 ? 64 : model.len), model.data);
        goto fail;
    }
    snprintf(t->model_name, sizeof t->model_name, "%.*s", (int)model.len, model.data);

    t->pre_name = gguf_get_str_dup(f, "tokenizer.ggml.pre");
    if (t->type == TOK_TYPE_BPE) {
        if ((rc = tok_pre_select(t, t->pre_name, err, err_size))) goto fail;
    }
    if (!t->pre_name && !(t->pre_name = strdup("default"))) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "tokenizer: out of memory");
        goto fail;
    }
    get_bool_opt(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);
    get_bool_opt(f, "tokenizer.ggml.remove_extra_whitespaces", &t->remove_extra_ws);

    if ((rc = load_tokens(t, f, err, err_size))) goto fail;

    if (t->type == TOK_TYPE_BPE) {
        if ((rc = tok_bpe_build(t, f, err, err_size))) goto fail;
    } else if (t->type == TOK_TYPE_SPM) {
        if ((rc = tok_spm_build(t, err, err_size))) goto fail;
    }

    load_special_ids(t, f);
    get_bool_opt(f, "tokenizer.ggml.add_bos_token", &t->add_bos);
    get_bool_opt(f, "tokenizer.ggml.add_eos_token", &t->add_eos);
    detect_special_by_text(t);

    if (build_special_cache(t) || tok_pieces_build(t)) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "tokenizer: out of memory");
        goto fail;
    }
    apply_model_attrs(t, f);
    if (t->type == TOK_TYPE_BPE && (rc = tok_pre_compile(t, err, err_size))) goto fail;
    *out = t;
    return 0;
fail:
    tok_free(t);
    return rc;
}

/* Frees t and everything it owns. Accepts NULL. */
void tok_free(tokenizer *t) {
    if (!t) return;
    tok_pre_free(t);
    free(t->pre_name);
    free(t->text);
    free(t->str);
    free(t->score);
    free(t->attr);
    free(t->eog);
    free(t->hash);
    free(t->piece);
    free(t->piece_at);
    free(t->special);
    free(t->pairs);
    free(t->adj);
    free(t);
}

/* tokens, scores and token types: one entry per id. */
static int load_tokens(tokenizer *t, const gguf_file *f, char *err, size_t err_size) {
    enum gguf_value_type et;
    uint64_t n;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n) || et != GGUF_TYPE_STRING)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "tokenizer: key 'tokenizer.ggml.tokens' is missing or not a string array");
    if (n == 0 || n > MAX_TOKENS)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "tokenizer: tokenizer.ggml.tokens has %llu entries (1..%u allowed)",
                       (unsigned long long)n, MAX_TOKENS);
    t->n_vocab = (uint32_t)n;
    const unsigned char *scores = NULL, *types = NULL;
    uint64_t n2;
    if (!gguf_get_arr(f, "tokenizer.ggml.scores", &et, &n2)) {
        if (et != GGUF_TYPE_FLOAT32 || n2 != n)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "tokenizer: tokenizer.ggml.scores must be %llu float32 values (has %llu "
                           "of type %d)",
                           (unsigned long long)n, (unsigned long long)n2, (int)et);
        scores = gguf_get_arr_data(f, "tokenizer.ggml.scores");
    }
    if (!gguf_get_arr(f, "tokenizer.ggml.token_type", &et, &n2)) {
        if ((et != GGUF_TYPE_INT32 && et != GGUF_TYPE_UINT32) || n2 != n)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "tokenizer: tokenizer.ggml.token_type must be %llu int32 values (has "
                           "%llu of type %d)",
                           (unsigned long long)n, (unsigned long long)n2, (int)et);
        types = gguf_get_arr_data(f, "tokenizer.ggml.token_type");
    }
    t->score = calloc(n, sizeof *t->score);
    t->attr = calloc(n, sizeof *t->attr);
    t->eog = calloc(n, 1);
    if (!t->score || !t->attr || !t->eog || hash_grow(t, n + n / 2))
        return err_set(err, err_size, INFERD_ENOMEM, "tokenizer: out of memory for %llu tokens",
                       (unsigned long long)n);
    for (uint32_t i = 0; i < n; i++) {
        gguf_str s = gguf_get_arr_str(f, "tokenizer.ggml.tokens", i);
        char tmp[32];
        const char *p = s.data;
        size_t len = s.len;
        if (len == 0) { /* llama.cpp renames empty tokens */
            len = (size_t)snprintf(tmp, sizeof tmp, "[EMPTY_%u]", i);
            p = tmp;
        }
        if (t->text_len + len > MAX_TEXT_BYTES)
            return err_set(err, err_size, INFERD_EFORMAT, "tokenizer: token texts exceed %u bytes",
                           MAX_TEXT_BYTES);
        if (str_add(t, p, len) < 0 || hash_put(t, i))
            return err_set(err, err_size, INFERD_ENOMEM, "tokenizer: out of memory");
        if (len > t->max_token_len) t->max_token_len = (uint32_t)len;
        if (scores) memcpy(&t->score[i], scores + 4 * (size_t)i, 4);
        uint32_t a = TOK_ATTR_NORMAL;
        if (types) {
            int32_t ty;
            memcpy(&ty, types + 4 * (size_t)i, 4);
            switch (ty) {
            case 1:
                a = TOK_ATTR_NORMAL;
                break;
            case 2:
                a = TOK_ATTR_UNKNOWN;
                break;
            case 3:
                a = TOK_ATTR_CONTROL;
                break;
            case 4:
                a = TOK_ATTR_USER_DEFINED;
                break;
            case 5:
                a = TOK_ATTR_UNUSED;
                break;
            case 6:
                a = TOK_ATTR_BYTE;
                break;
            default:
                a = TOK_ATTR_UNDEFINED;
                break;
            }
        }
        t->attr[i] = a;
    }
    return 0;
}

static int get_bool_opt(const gguf_file *f, const char *key, int *v) {
    int b;
    if (gguf_get_bool(f, key, &b)) return -1;
    *v = b;
    return 0;
}

/* Special ids from their keys; out-of-range values keep the default, as in
 * llama.cpp ("bad special token ... using default id"). */
static void load_special_ids(tokenizer *t, const gguf_file *f) {
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(tokenizer, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(tokenizer, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(tokenizer, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(tokenizer, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(tokenizer, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(tokenizer, sep)},
        {"tokenizer.ggml.padding_token_id", offsetof(tokenizer, pad)},
        {"tokenizer.ggml.mask_token_id", offsetof(tokenizer, mask)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(tokenizer, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(tokenizer, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(tokenizer, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(tokenizer, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(tokenizer, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(tokenizer, fim_sep)},
        {"tokenizer.ggml.prefix_token_id", offsetof(tokenizer, fim_pre)},
        {"tokenizer.ggml.suffix_token_id", offsetof(tokenizer, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(tokenizer, fim_mid)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint32_t v;
        if (gguf_get_u32(f, keys[i].key, &v) || v >= t->n_vocab) continue;
        *(int32_t *)((char *)t + keys[i].off) = (int32_t)v;
    }
    /* Defaults that do not exist in a small vocabulary are no token at all. */
    int32_t *all[] = {&t->bos, &t->eos, &t->unk, &t->sep, &t->pad, &t->mask};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (*all[i] >= (int32_t)t->n_vocab) *all[i] = -1;
}

static int text_is(const tokenizer *t, uint32_t id, const char *z) {
    size_t n = strlen(z);
    return t->str[id].len == n && !memcmp(tok_str_data(t, id), z, n);
}

static int text_in(const tokenizer *t, uint32_t id, const char *const *list) {
    for (; *list; list++)
        if (text_is(t, id, *list)) return 1;
    return 0;
}

/* EOT/EOM/FIM detection by text and the end-of-generation set (llama.cpp's
 * "auto-detect special tokens by text"). Detected tokens become CONTROL. */
static void detect_special_by_text(tokenizer *t) {
    static const char *const eot[] = {"<|eot_id|>",
                                      "<|im_end|>",
                                      "<|end|>",
                                      "<end_of_turn>",
                                      "<|endoftext|>",
                                      "<EOT>",
                                      "<\xef\xbd\x9c"
                                      "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                      NULL};
    static const char *const eom[] = {"<|eom_id|>", NULL};
    static const char *const fpre[] = {"<|fim_prefix|>", "<fim-prefix>",
                                       "<\xef\xbd\x9c"
                                       "fim\xe2\x96\x81"
                                       "begin\xef\xbd\x9c>",
                                       "<PRE>", NULL};
    static const char *const fsuf[] = {"<|fim_suffix|>", "<fim-suffix>",
                                       "<\xef\xbd\x9c"
                                       "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                                       "<SUF>", NULL};
    static const char *const fmid[] = {"<|fim_middle|>", "<fim-middle>",
                                       "<\xef\xbd\x9c"
                                       "fim\xe2\x96\x81"
                                       "end\xef\xbd\x9c>",
                                       "<MID>", NULL};
    static const char *const fpad[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>", NULL};
    static const char *const frep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                       NULL};
    static const char *const fsep[] = {"<|file_sep|>", NULL};
    static const char *const eogs[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                       "<|endoftext|>", "<|eom_id|>", "<EOT>",   NULL};
    struct {
        int32_t *id;
        const char *const *list;
    } det[] = {{&t->eot, eot},      {&t->eom, eom},      {&t->fim_pre, fpre}, {&t->fim_suf, fsuf},
               {&t->fim_mid, fmid}, {&t->fim_pad, fpad}, {&t->fim_rep, frep}, {&t->fim_sep, fsep}};
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        for (size_t k = 0; k < sizeof det / sizeof det[0]; k++) {
            if (*det[k].id != -1 || !text_in(t, id, det[k].list)) continue;
            *det[k].id = (int32_t)id;
            if (!(t->attr[id] & TOK_ATTR_CONTROL)) t->attr[id] = TOK_ATTR_CONTROL;
        }
    }
    int32_t fims[] = {t->fim_pad, t->fim_rep, t->fim_sep};
    for (size_t k = 0; k < 3; k++)
        if (fims[k] >= 0) t->eog[fims[k]] = 1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        if (!text_in(t, id, eogs)) continue;
        t->eog[id] = 1;
        if (!(t->attr[id] & TOK_ATTR_CONTROL)) t->attr[id] = TOK_ATTR_CONTROL;
    }
    int32_t more[] = {t->eos, t->eot, t->eom};
    for (size_t k = 0; k < 3; k++)
        if (more[k] >= 0) t->eog[more[k]] = 1;
}

/* The tokens matched in the input before anything else (longest first). */
static int build_special_cache(tokenizer *t) {
    size_t n = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) n++;
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!t->special) return INFERD_ENOMEM;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            t->special[t->n_special++] = (int32_t)id;
    /* stable merge sort (longer text first, then lower id): llama.cpp uses
     * std::sort by length, whose order among equal lengths is unspecified. */
    size_t m = t->n_special;
    int32_t *tmp = malloc((m ? m : 1) * sizeof *tmp);
    if (!tmp) return INFERD_ENOMEM;
    for (size_t w = 1; w < m; w *= 2) {
        for (size_t lo = 0; lo < m; lo += 2 * w) {
            size_t mid = lo + w < m ? lo + w : m, hi = lo + 2 * w < m ? lo + 2 * w : m;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int32_t x = t->special[i], y = t->special[j];
                /* stable: longer text first, then lower id */
                if (t->str[y].len > t->str[x].len)
                    tmp[k++] = t->special[j++];
                else
                    tmp[k++] = t->special[i++];
            }
            while (i < mid) tmp[k++] = t->special[i++];
            while (j < hi) tmp[k++] = t->special[j++];
        }
        memcpy(t->special, tmp, m * sizeof *tmp);
    }
    free(tmp);
    return 0;
}

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == needle[i]) i++;
        if (i == n) return 1;
    }
    return 0;
}

/* Per-model token attributes that GGUF does not carry (llama.cpp sets them by
 * model or pre-tokenizer name). */
static void apply_model_attrs(tokenizer *t, const gguf_file *f) {
    char *name = gguf_get_str_dup(f, "general.name");
    const char *pre = t->pre_name ? t->pre_name : "";
    if (strstr(pre, "jina-v2-de") || strstr(pre, "jina-v2-es") || strstr(pre, "jina-v2-code")) {
        int32_t id = tok_sid_find(t, "<mask>", 6);
        if (id >= 0 && id < (int32_t)t->n_vocab) t->attr[id] |= TOK_ATTR_LSTRIP;
    } else if (name && (contains_ci(name, "phi-3") || contains_ci(name, "phi3"))) {
        for (size_t i = 0; i < t->n_special; i++) t->attr[t->special[i]] |= TOK_ATTR_RSTRIP;
        static const char *const on[] = {"</s>", NULL}, *const off[] = {"<unk>", "<s>",
                                                                        "<|endoftext|>", NULL};
        for (const char *const *p = on; *p; p++) {
            int32_t id = tok_sid_find(t, *p, strlen(*p));
            if (id >= 0 && id < (int32_t)t->n_vocab) t->attr[id] |= TOK_ATTR_RSTRIP;
        }
        for (const char *const *p = off; *p; p++) {
            int32_t id = tok_sid_find(t, *p, strlen(*p));
            if (id >= 0 && id < (int32_t)t->n_vocab) t->attr[id] &= ~(uint32_t)TOK_ATTR_RSTRIP;
        }
    }
    free(name);
}

uint32_t tok_n_vocab(const tokenizer *t) {
    return t->n_vocab;
}
int32_t tok_bos(const tokenizer *t) {
    return t->bos;
}
int32_t tok_eos(const tokenizer *t) {
    return t->eos;
}
int tok_add_bos(const tokenizer *t) {
    return t->add_bos;
}
int tok_add_eos(const tokenizer *t) {
    return t->add_eos;
}
const char *tok_model_name(const tokenizer *t) {
    return t->model_name;
}
const char *tok_pre_name(const tokenizer *t) {
    return t->pre_name;
}

/* See tokenizer.h: 0 for ids out of range. */
int tok_is_eog(const tokenizer *t, int32_t id) {
    return id >= 0 && (uint32_t)id < t->n_vocab && t->eog[id];
}

/* See tokenizer.h: 0 for ids out of range. */
int tok_is_control(const tokenizer *t, int32_t id) {
    return id >= 0 && (uint32_t)id < t->n_vocab && (t->attr[id] & TOK_ATTR_CONTROL) != 0;
}

/* Borrowed vocabulary text of id (NUL-terminated), NULL and *len 0 when out of range. */
const char *tok_text(const tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (uint32_t)id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->str[id].len;
    return tok_str_data(t, (uint32_t)id);
}

/* Token id of an exact vocabulary text; extra (non-token) strings give -1. */
int32_t tok_find(const tokenizer *t, const char *text, size_t len) {
    int32_t sid = tok_sid_find(t, text, len);
    return sid >= 0 && (uint32_t)sid < t->n_vocab ? sid : -1;
}
