/*
 * pretok.c - the pre-tokenizers of byte-level BPE vocabularies, chosen by
 * tokenizer.ggml.pre exactly as llama.cpp (c392e509) names them, with the
 * regexes of its llm_tokenizer_bpe constructor. Where llama.cpp rewrote a
 * Hugging Face regex for std::regex (case-insensitive groups, \p{Lu}...), the
 * original tokenizer.json regex is used: PCRE2 (UTF, UCP, JIT) runs it as is.
 *
 * Splitting is unicode_regex_split: the regexes run in order; each one cuts
 * every piece left by the previous ones into its matches and the gaps between
 * them (both kept). Invalid UTF-8 bytes become U+FFFD first, as llama.cpp's
 * unicode_cpts_from_utf8 does.
 *
 * Qwen2 (qwen2, deepseek-r1-qwen) and Command-R tokenizers have an NFC
 * normalizer in their tokenizer.json; the text is NFC-normalized first
 * (utf8proc) so that the ids equal Hugging Face's (llama.cpp skips this; it
 * only matters for text that is not already NFC).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/utf8.h"
#include "tok/tok_int.h"

enum tok_pre {
    PRE_DEFAULT,
    PRE_LLAMA3,
    PRE_DEEPSEEK_LLM,
    PRE_DEEPSEEK_CODER,
    PRE_DEEPSEEK3_LLM,
    PRE_FALCON,
    PRE_MPT,
    PRE_STARCODER,
    PRE_GPT2,
    PRE_REFACT,
    PRE_COMMAND_R,
    PRE_QWEN2,
    PRE_STABLELM2,
    PRE_OLMO,
    PRE_DBRX,
    PRE_SMAUG,
    PRE_PORO,
    PRE_CHATGLM4,
    PRE_VIKING,
    PRE_JAIS,
    PRE_TEKKEN,
    PRE_SMOLLM,
    PRE_CODESHELL,
    PRE_BLOOM,
    PRE_GPT3_FINNISH,
    PRE_EXAONE,
    PRE_CHAMELEON,
    PRE_MINERVA,
    PRE_GPT4O,
    PRE_COUNT
};

/* flags a name sets on top of the gpt2 defaults (clean_spaces = 1) */
enum { F_NOCLEAN = 1, F_IGNORE_MERGES = 2, F_ADD_BOS = 4, F_NO_BOS_ID = 8, F_NFC = 16 };

static const struct {
    const char *name;
    int pre;
    int flags;
} k_names[] = {
    {"default", PRE_DEFAULT, 0},
    {"llama3", PRE_LLAMA3, F_IGNORE_MERGES | F_ADD_BOS},
    {"llama-v3", PRE_LLAMA3, F_IGNORE_MERGES | F_ADD_BOS},
    {"llama-bpe", PRE_LLAMA3, F_IGNORE_MERGES | F_ADD_BOS},
    {"falcon3", PRE_LLAMA3, F_IGNORE_MERGES | F_ADD_BOS},
    {"falcon-h1", PRE_LLAMA3, F_IGNORE_MERGES | F_ADD_BOS},
    {"deepseek-llm", PRE_DEEPSEEK_LLM, F_NOCLEAN},
    {"deepseek-coder", PRE_DEEPSEEK_CODER, F_NOCLEAN},
    {"deepseek-v3", PRE_DEEPSEEK3_LLM, F_NOCLEAN},
    {"deepseek3-llm", PRE_DEEPSEEK3_LLM, F_NOCLEAN},
    {"falcon", PRE_FALCON, 0},
    {"mpt", PRE_MPT, 0},
    {"starcoder", PRE_STARCODER, 0},
    {"gpt-2", PRE_GPT2, 0},
    {"phi-2", PRE_GPT2, 0},
    {"jina-es", PRE_GPT2, 0},
    {"jina-de", PRE_GPT2, 0},
    {"gigachat", PRE_GPT2, 0},
    {"jina-v1-en", PRE_GPT2, 0},
    {"jina-v2-es", PRE_GPT2, 0},
    {"jina-v2-de", PRE_GPT2, 0},
    {"jina-v2-code", PRE_GPT2, 0},
    {"roberta-bpe", PRE_GPT2, 0},
    {"refact", PRE_REFACT, 0},
    {"command-r", PRE_COMMAND_R, F_NOCLEAN | F_NFC},
    {"qwen2", PRE_QWEN2, F_NOCLEAN | F_NFC},
    {"deepseek-r1-qwen", PRE_QWEN2, F_NOCLEAN | F_NFC},
    {"stablelm2", PRE_STABLELM2, 0},
    {"olmo", PRE_OLMO, 0},
    {"dbrx", PRE_DBRX, 0},
    {"smaug-bpe", PRE_SMAUG, 0},
    {"poro-chat", PRE_PORO, F_NOCLEAN},
    {"chatglm-bpe", PRE_CHATGLM4, F_NO_BOS_ID},
    {"viking", PRE_VIKING, F_NOCLEAN},
    {"jais", PRE_JAIS, 0},
    {"tekken", PRE_TEKKEN, F_NOCLEAN | F_IGNORE_MERGES | F_ADD_BOS},
    {"pixtral", PRE_TEKKEN, F_NOCLEAN | F_IGNORE_MERGES | F_ADD_BOS},
    {"smollm", PRE_SMOLLM, F_NOCLEAN},
    {"codeshell", PRE_CODESHELL, 0},
    {"bloom", PRE_BLOOM, 0},
    {"gpt3-finnish", PRE_GPT3_FINNISH, 0},
    {"exaone", PRE_EXAONE, 0},
    {"chameleon", PRE_CHAMELEON, F_NOCLEAN | F_ADD_BOS},
    {"minerva-7b", PRE_MINERVA, 0},
    {"megrez", PRE_QWEN2, 0},
    {"gpt-4o", PRE_GPT4O, F_NOCLEAN},
};

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3                                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "                     \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"                                                               \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                          \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"                                                               \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_BLOOM                                                                                   \
    " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94\xd8\x8c)]+"
#define RE_UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
#define RE_CONTR "(?i:'s|'t|'re|'ve|'m|'ll|'d)"

/* The deepseek-llm letter class, copied from llama.cpp (UTF-8 literals). */
#define RE_DS_LETTERS                                                                              \
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-"              \
    "\xc6\xbf\xc7\x84-\xca\x93"                                                                    \
    "\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86\xce\x88-" \
    "\xce\x8a"                                                                                     \
    "\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-"        \
    "\xd5\x96"                                                                                     \
    "\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd\xe1\xb2\x90-"     \
    "\xe1\xb2\xba"                                                                                 \
    "\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-"     \
    "\xe1\xb6\x9a"                                                                                 \
    "\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-"     \
    "\xe1\xbd\x8d"                                                                                 \
    "\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-"                   \
    "\xe1\xbd\xbd\xe1\xbe\x80-"                                                                    \
    "\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-"      \
    "\xe1\xbf\x8c"                                                                                 \
    "\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-"     \
    "\xe1\xbf\xb4"                                                                                 \
    "\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-"                               \
    "\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-"                                                        \
    "\xe2\x84\x9d\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-"       \
    "\xe2\x84\xb4"                                                                                 \
    "\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-"                                           \
    "\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84"                                             \
    "\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-"                              \
    "\xe2\xb3\xae\xe2\xb3\xb2\xe2\xb3\xb3"                                                         \
    "\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-"     \
    "\xea\x9e\x87"                                                                                 \
    "\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-"     \
    "\xef\xac\x97"                                                                                 \
    "\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-"                          \
    "\xf0\x90\x91\x8f\xf0\x90\x92\xb0-"                                                            \
    "\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90\xb2\x80-"                           \
    "\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-"                                                            \
    "\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+"
#define RE_CJK_DS "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"

static const char *const k_regex[PRE_COUNT][TOK_MAX_REGEX] = {
    [PRE_DEFAULT] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"},
    [PRE_LLAMA3] = {RE_LLAMA3},
    [PRE_DBRX] = {RE_LLAMA3},
    [PRE_SMAUG] = {RE_LLAMA3},
    [PRE_CHATGLM4] = {RE_LLAMA3},
    [PRE_DEEPSEEK_LLM] =
        {"[\r\n]", RE_DS_LETTERS,
         "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f"
         "\xe3\x80\x80-\xe3\x80\x82]+",
         "\\s+$", RE_CJK_DS, "\\p{N}+"},
    [PRE_DEEPSEEK3_LLM] =
        {"\\p{N}{1,3}",
         "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+",
         "[!\"#$%&'()*+,\\-./"
         ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
         " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
    [PRE_DEEPSEEK_CODER] = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK_DS, "\\p{N}"},
    [PRE_FALCON] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"},
    [PRE_STARCODER] = {"\\p{N}", RE_GPT2},
    [PRE_REFACT] = {"\\p{N}", RE_GPT2},
    [PRE_COMMAND_R] = {"\\p{N}", RE_GPT2},
    [PRE_SMOLLM] = {"\\p{N}", RE_GPT2},
    [PRE_CODESHELL] = {"\\p{N}", RE_GPT2},
    [PRE_EXAONE] = {"\\p{N}", RE_GPT2},
    [PRE_MINERVA] = {"\\p{N}", RE_GPT2},
    [PRE_GPT2] = {RE_GPT2},
    [PRE_MPT] = {RE_GPT2},
    [PRE_OLMO] = {RE_GPT2},
    [PRE_JAIS] = {RE_GPT2},
    [PRE_STABLELM2] = {RE_QWEN2},
    [PRE_QWEN2] = {RE_QWEN2},
    [PRE_PORO] = {RE_BLOOM},
    [PRE_BLOOM] = {RE_BLOOM},
    [PRE_GPT3_FINNISH] = {RE_BLOOM},
    [PRE_VIKING] = {RE_BLOOM, "\\p{N}"},
    [PRE_TEKKEN] = {"[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER
                    "+|[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+" RE_LOWER
                    "*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    [PRE_CHAMELEON] = {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                       "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2},
    [PRE_GPT4O] = {"[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "*" RE_LOWER "+" RE_CONTR
                   "?|[^\\r\\n\\p{L}\\p{N}]?" RE_UPPER "+" RE_LOWER "*" RE_CONTR
                   "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

/* Selects the pre-tokenizer named name (NULL: absent, which llama.cpp treats
 * as "default" with a warning) and applies its flags. */
int tok_pre_select(tokenizer *t, const char *name, char *err, size_t err_size) {
    if (!name) {
        t->pre = PRE_DEFAULT;
        return 0;
    }
    for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++) {
        if (strcmp(name, k_names[i].name)) continue;
        t->pre = k_names[i].pre;
        int f = k_names[i].flags;
        if (f & F_NOCLEAN) t->clean_spaces = 0;
        if (f & F_IGNORE_MERGES) t->ignore_merges = 1;
        if (f & F_ADD_BOS) t->add_bos = 1;
        if (f & F_NO_BOS_ID) t->bos = -1;
        if (f & F_NFC) t->nfc = 1;
        return 0;
    }
    return err_set(err, err_size, INFERD_EFORMAT,
                   "tokenizer: unknown pre-tokenizer type '%.64s' (tokenizer.ggml.pre)", name);
}

/* Compiles (with JIT when available) the regexes of t->pre. */
int tok_pre_compile(tokenizer *t, char *err, size_t err_size) {
    const char *const *list = k_regex[t->pre];
    for (int i = 0; i < TOK_MAX_REGEX && list[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)list[i], PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        if (!re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof msg);
            return err_set(err, err_size, INFERD_EINTERNAL,
                           "tokenizer: regex %d of pre-tokenizer '%s' does not compile at %zu: %s",
                           i, t->pre_name ? t->pre_name : "default", (size_t)eo, (const char *)msg);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter on failure */
        int kind = !strcmp(list[i], RE_GPT2)     ? TOK_SPLIT_GPT2
                   : !strcmp(list[i], RE_LLAMA3) ? TOK_SPLIT_LLAMA3
                   : !strcmp(list[i], RE_QWEN2)  ? TOK_SPLIT_QWEN2
                                                 : TOK_SPLIT_PCRE;
        if (kind != TOK_SPLIT_PCRE && tok_presplit_init()) kind = TOK_SPLIT_PCRE;
        t->re_kind[t->n_re] = kind;
        t->re[t->n_re++] = re;
    }
    return 0;
}

/* Frees the compiled regexes. */
void tok_pre_free(tokenizer *t) {
    for (int i = 0; i < t->n_re; i++) pcre2_code_free((pcre2_code *)t->re[i]);
    t->n_re = 0;
}

typedef struct split_ctx {
    const tokenizer *t;
    int fast;     /* use presplit.c where it has the regex */
    size_t *ends; /* tok_pre_split_ends: piece ends instead of BPE */
    size_t n_ends, max_ends;
    const char *base;
    pcre2_match_data *md[TOK_MAX_REGEX];
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    tok_bpe_scratch bpe;
    tok_ids *out;
    tok_wcache *cache;
} split_ctx;

static int split(split_ctx *c, int level, const char *s, size_t n);

typedef struct piece_ctx {
    split_ctx *c;
    int level;
} piece_ctx;

static int on_piece(void *ctx, const char *s, size_t n) {
    piece_ctx *p = ctx;
    return split(p->c, p->level, s, n);
}

/* Runs regex `level` over s[0..n) and recurses into every match and gap. */
static int split(split_ctx *c, int level, const char *s, size_t n) {
    if (n == 0) return 0;
    if (level == c->t->n_re) {
        if (!c->ends) return tok_bpe_word(c->t, &c->bpe, s, n, c->out, c->cache);
        if (c->n_ends < c->max_ends) c->ends[c->n_ends] = (size_t)(s - c->base) + n;
        c->n_ends++;
        return 0;
    }
    if (c->fast && c->t->re_kind[level] != TOK_SPLIT_PCRE) {
        piece_ctx p = {c, level + 1};
        return tok_presplit(c->t->re_kind[level], s, n, on_piece, &p);
    }
    const pcre2_code *re = c->t->re[level];
    size_t pos = 0;
    while (pos < n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NOTEMPTY | PCRE2_NO_UTF_CHECK,
                             c->md[level], c->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !c->jstack) {
            c->jstack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
            c->mctx = pcre2_match_context_create(NULL);
            if (!c->jstack || !c->mctx) return INFERD_ENOMEM;
            pcre2_jit_stack_assign(c->mctx, NULL, c->jstack);
            continue;
        }
        if (rc < 0) break; /* no match (or a resource limit): the rest is one gap */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md[level]);
        size_t ms = ov[0], me = ov[1];
        if (ms > pos && split(c, level + 1, s + pos, ms - pos)) return INFERD_ENOMEM;
        if (split(c, level + 1, s + ms, me - ms)) return INFERD_ENOMEM;
        pos = me;
    }
    if (pos < n) return split(c, level + 1, s + pos, n - pos);
    return 0;
}

/* 1 if code point cp may change under NFC or make a neighbour change: a
 * combining mark, a character with a canonical decomposition, or one that
 * takes part in a canonical composition (a superset is fine: it only costs
 * a call to utf8proc). */
static int nfc_suspect(uint32_t cp) {
    if (cp < 0x300)
        return cp >= 0xC0; /* Latin-1 letters decompose; below U+0300 nothing else does */
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    return p->combining_class != 0 || p->decomp_seqindex != UINT16_MAX ||
           p->comb_index != UINT16_MAX || (cp >= 0x1100 && cp <= 0x11FF);
}

/* NFC of s[0..n) (valid UTF-8) into a new buffer, or NULL when nothing can
 * change (*out_n untouched) or out of memory (*oom set). Work is limited to
 * the non-ASCII runs (with the ASCII character before each, which may
 * compose with a following mark): a boundary before an ASCII character is
 * stable under NFC. */
static char *nfc_text(const char *s, size_t n, size_t *out_n, int *oom) {
    buf b = BUF_INIT;
    size_t copied = 0; /* s[0..copied) is in b (only once b is in use) */
    int used = 0;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t start = i > 0 ? i - 1 : 0, end = i;
        int suspect = 0;
        while (end < n && (unsigned char)s[end] >= 0x80) {
            uint32_t cp;
            size_t k = utf8_decode(s + end, n - end, &cp);
            if (k == 0) k = 1;
            suspect |= nfc_suspect(cp);
            end += k;
        }
        if (suspect) {
            utf8proc_uint8_t *m = NULL;
            utf8proc_ssize_t k =
                utf8proc_map((const utf8proc_uint8_t *)s + start, (utf8proc_ssize_t)(end - start),
                             &m, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (k >= 0) {
                used = 1;
                buf_append(&b, s + copied, start - copied);
                buf_append(&b, m, (size_t)k);
                copied = end;
            } else if (k == UTF8PROC_ERROR_NOMEM) {
                *oom = 1;
            }
            free(m);
        }
        i = end;
    }
    if (!used || *oom) {
        buf_free(&b);
        return NULL;
    }
    buf_append(&b, s + copied, n - copied);
    if (b.oom) {
        *oom = 1;
        buf_free(&b);
        return NULL;
    }
    *out_n = b.len;
    return buf_take(&b);
}

/* Copies s with every invalid UTF-8 byte replaced by U+FFFD. */
static char *sanitize(const char *s, size_t n, size_t *out_n) {
    char *o = malloc(3 * n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_decode(s + i, n - i, &cp);
        if (l == 0) {
            memcpy(o + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        } else {
            memcpy(o + k, s + i, l);
            k += l;
            i += l;
        }
    }
    *out_n = k;
    return o;
}

/* Sanitizes and normalizes text as the model needs, then splits it with c. */
static int run_split(split_ctx *c, const char *text, size_t len) {
    const tokenizer *t = c->t;
    char *clean = NULL;
    int rc = INFERD_ENOMEM;
    if (!utf8_valid(text, len)) {
        if (!(clean = sanitize(text, len, &len))) return INFERD_ENOMEM;
        text = clean;
    }
    if (t->nfc) {
        int oom = 0;
        char *nfc = nfc_text(text, len, &len, &oom);
        if (oom) goto done;
        if (nfc) {
            free(clean);
            clean = nfc;
            text = clean;
        }
    }
    for (int i = 0; i < t->n_re; i++)
        if (!(c->md[i] = pcre2_match_data_create_from_pattern((const pcre2_code *)t->re[i], NULL)))
            goto done;
    c->base = text;
    rc = split(c, 0, text, len);
done:
    for (int i = 0; i < t->n_re; i++) pcre2_match_data_free(c->md[i]);
    pcre2_match_context_free(c->mctx);
    pcre2_jit_stack_free(c->jstack);
    tok_bpe_scratch_free(&c->bpe);
    free(clean);
    return rc;
}

/* Pre-tokenizes one raw fragment and appends the BPE ids of every word to
 * out (cache may be NULL). Returns 0 or INFERD_ENOMEM. */
int tok_pre_encode(const tokenizer *t, const char *text, size_t len, tok_ids *out,
                   tok_wcache *cache) {
    split_ctx c = {.t = t, .fast = 1, .out = out, .cache = cache};
    return run_split(&c, text, len);
}

/* See tok_int.h. */
long tok_pre_split_ends(const tokenizer *t, int fast, const char *text, size_t len, size_t *ends,
                        size_t max) {
    split_ctx c = {.t = t, .fast = fast, .ends = ends, .max_ends = max};
    int rc = run_split(&c, text, len);
    return rc ? rc : (long)c.n_ends;
}
