/*
 * test_tok.c - tokenizer behaviour beyond the HF vectors: special-token
 * parsing (CONTROL only with parse_special, USER_DEFINED always, lstrip/
 * rstrip), BOS/EOS adding per model, end-of-generation ids, invalid UTF-8,
 * invalid ids, every pre-tokenizer name of llama.cpp, load errors, and
 * concurrent use of one tokenizer.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <unistd.h>

#include "base/utf8.h"

#include "gguf/gguf_write.h"
#include "inferd.h"
#include "tok/tok_int.h" /* tok_pre_split_ends: this module's own tests */
#include "tok_test_util.h"

/* A mkstemp template in $TMPDIR (or the system's temporary directory). */
static void tmp_template(char *s, size_t size) {
    const char *dir = getenv("TMPDIR");
    snprintf(s, size, "%s/inferd-tok-XXXXXX", dir && *dir ? dir : P_tmpdir);
}

static tokenizer *load(const char *name) {
    char err[512];
    tokenizer *t = tt_load(name, err, sizeof err);
    cr_assert(t, "cannot load vocab '%s': %s", name, err);
    return t;
}

static size_t enc(const tokenizer *t, const char *s, int add_special, int parse_special,
                  int32_t **ids) {
    size_t n;
    char err[256];
    int rc = tok_encode(t, s, strlen(s), add_special, parse_special, ids, &n, err, sizeof err);
    cr_assert_eq(rc, 0, "tok_encode(\"%s\") failed: %s", s, err);
    return n;
}

static void expect_ids(const tokenizer *t, const char *s, int add_special, int parse_special,
                       const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n = enc(t, s, add_special, parse_special, &ids);
    char a[512], b[512];
    cr_expect(n == n_want && !memcmp(ids, want, n * sizeof *ids),
              "\"%s\" (add_special=%d parse_special=%d): expected [%s ] got [%s ]", s, add_special,
              parse_special, tt_fmt_ids(a, sizeof a, want, n_want),
              tt_fmt_ids(b, sizeof b, ids, n));
    free(ids);
}

static int contains(const int32_t *ids, size_t n, int32_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

Test(tok, stories260k_prompt) {
    char err[256];
    gguf_file *f;
    cr_assert_eq(gguf_open("models/stories260K.gguf", &f, err, sizeof err), 0, "%s", err);
    tokenizer *t;
    cr_assert_eq(tok_load(f, &t, err, sizeof err), 0, "%s", err);
    gguf_close(f); /* the tokenizer must not borrow from the file */
    const int32_t want[] = {1, 403, 407, 261, 378};
    expect_ids(t, "Once upon a time", 1, 0, want, 5);
    expect_ids(t, "Once upon a time", 0, 0, want + 1, 4);
    buf out = BUF_INIT;
    cr_assert_eq(tok_decode(t, want + 1, 4, 0, &out), 0);
    cr_expect_str_eq(out.data, "Once upon a time");
    buf_free(&out);
    tok_free(t);
}

Test(tok, spm_special_tokens_and_bos) {
    tokenizer *t = load("llama-spm");
    cr_expect_eq(tok_bos(t), 1);
    cr_expect_eq(tok_eos(t), 2);
    cr_expect(tok_add_bos(t));
    cr_expect(!tok_add_eos(t));
    int32_t *ids;
    size_t n = enc(t, "<s>hi</s>", 0, 1, &ids);
    cr_expect(n >= 3 && ids[0] == 1 && ids[n - 1] == 2, "parse_special=1 must match <s> and </s>");
    free(ids);
    n = enc(t, "<s>hi</s>", 0, 0, &ids);
    cr_expect(!contains(ids, n, 1) && !contains(ids, n, 2),
              "parse_special=0 must not match control tokens");
    free(ids);
    /* add_special: BOS first; an empty text is just BOS (llama.cpp's "OG" rule) */
    n = enc(t, "", 1, 0, &ids);
    cr_expect(n == 1 && ids[0] == 1);
    free(ids);
    n = enc(t, "", 0, 0, &ids);
    cr_expect_eq(n, 0);
    cr_expect_not_null(ids, "ids is a valid allocation even when empty");
    free(ids);
    /* a space prefix goes before the first fragment and after each special token */
    const int32_t hello[] = {1, 15043, 2, 15043};
    expect_ids(t, "<s>Hello</s>Hello", 0, 1, hello, 4);
    tok_free(t);
}

Test(tok, phi3_rstrip) {
    tokenizer *t = load("phi-3");
    int32_t end = tok_find(t, "<|end|>", 7), user = tok_find(t, "<|user|>", 8);
    cr_assert(end >= 0 && user >= 0);
    cr_expect(tok_is_eog(t, end), "<|end|> ends generation");
    int32_t *a, *b;
    size_t na = enc(t, "<|user|>\nHi<|end|>", 0, 1, &a);
    size_t nb = enc(t, "<|user|>Hi<|end|>", 0, 1, &b);
    /* phi-3 special tokens carry RSTRIP: the newline after <|user|> is eaten */
    cr_expect(na == nb && !memcmp(a, b, na * sizeof *a),
              "RSTRIP must drop whitespace after <|user|>");
    cr_expect(a[0] == user && a[na - 1] == end);
    free(a);
    free(b);
    tok_free(t);
}

Test(tok, bpe_user_defined_and_control) {
    tokenizer *t = load("qwen2");
    /* USER_DEFINED tokens match even without parse_special (FORMAT.md) */
    const int32_t think[] = {151667, 6023, 151668};
    expect_ids(t, "<think>hi</think>", 0, 0, think, 3);
    int32_t *ids;
    size_t n = enc(t, "<|im_start|>user", 0, 0, &ids);
    cr_expect(!contains(ids, n, 151644),
              "CONTROL <|im_start|> must not match with parse_special=0");
    free(ids);
    n = enc(t, "<|im_start|>user", 0, 1, &ids);
    cr_expect(n >= 2 && ids[0] == 151644, "CONTROL <|im_start|> must match with parse_special=1");
    free(ids);
    cr_expect(tok_is_eog(t, 151645), "<|im_end|> ends generation");
    cr_expect(tok_is_eog(t, 151643), "<|endoftext|> ends generation");
    cr_expect(!tok_is_eog(t, 6023));
    cr_expect(tok_is_control(t, 151644));
    cr_expect(!tok_add_bos(t), "qwen2 adds no BOS (add_bos_token false)");
    n = enc(t, "hi", 1, 0, &ids);
    cr_expect(n == 1 && ids[0] == 6023);
    free(ids);
    /* control pieces: text only when special */
    const char *p;
    size_t pl;
    cr_expect_eq(tok_piece(t, 151644, 0, &p, &pl), 0);
    cr_expect_eq(pl, 0);
    cr_expect_eq(tok_piece(t, 151644, 1, &p, &pl), 0);
    cr_expect(pl == 12 && !memcmp(p, "<|im_start|>", 12));
    tok_free(t);
}

Test(tok, bos_eos_per_model) {
    int32_t *ids;
    size_t n;
    tokenizer *t = load("llama-bpe");
    cr_expect(tok_add_bos(t), "llama-bpe adds BOS by default");
    n = enc(t, "Hello", 1, 0, &ids);
    cr_expect(n == 2 && ids[0] == 128000);
    free(ids);
    cr_expect(tok_is_eog(t, tok_find(t, "<|eot_id|>", 10)));
    cr_expect(tok_is_eog(t, tok_eos(t)));
    tok_free(t);

    t = load("gpt-2");
    cr_expect(!tok_add_bos(t));
    n = enc(t, "Hello", 1, 0, &ids);
    cr_expect(n == 1 && ids[0] == 15496);
    free(ids);
    tok_free(t);

    t = load("bert-bge");
    n = enc(t, "Hello world", 1, 0, &ids);
    cr_expect(n == 4 && ids[0] == 101 && ids[3] == 102, "WPM add_special wraps in [CLS] ... [SEP]");
    free(ids);
    tok_free(t);

    t = load("deepseek-coder");
    n = enc(t, "x", 1, 0, &ids);
    cr_expect(n >= 2 && ids[0] == 32013, "add_bos_token=true in the file");
    free(ids);
    tok_free(t);
}

Test(tok, invalid_utf8) {
    static const char *names[] = {"llama-spm", "gpt-2",        "llama-bpe", "qwen2",
                                  "bert-bge",  "deepseek-llm", "falcon"};
    uint64_t seed = 42;
    for (size_t v = 0; v < sizeof names / sizeof names[0]; v++) {
        tokenizer *t = load(names[v]);
        for (int r = 0; r < 200; r++) {
            char s[64];
            size_t len = splitmix64(&seed) % sizeof s;
            for (size_t i = 0; i < len; i++) s[i] = (char)splitmix64(&seed);
            int32_t *ids;
            size_t n;
            char err[256];
            cr_assert_eq(tok_encode(t, s, len, 1, r & 1, &ids, &n, err, sizeof err), 0, "%s: %s",
                         names[v], err);
            for (size_t i = 0; i < n; i++)
                cr_assert(ids[i] >= 0 && (uint32_t)ids[i] < tok_n_vocab(t));
            buf out = BUF_INIT;
            cr_assert_eq(tok_decode(t, ids, n, 1, &out), 0);
            /* byte fallback makes SPM lossless even on invalid UTF-8, as long
             * as no space (escaped to U+2581 before the split into units, as
             * in llama.cpp) lands inside a broken multi-byte unit */
            if (!strcmp(names[v], "llama-spm") && !memchr(s, ' ', len)) {
                int32_t *ids2;
                size_t n2;
                buf rt = BUF_INIT;
                cr_assert_eq(tok_encode(t, s, len, 0, 0, &ids2, &n2, err, sizeof err), 0);
                cr_assert_eq(tok_decode(t, ids2, n2, 0, &rt), 0);
                cr_expect(rt.len == len && !memcmp(rt.data ? rt.data : "", s, len),
                          "SPM round trip of %zu random bytes", len);
                buf_free(&rt);
                free(ids2);
            }
            buf_free(&out);
            free(ids);
        }
        /* a lone invalid byte becomes U+FFFD before BPE, as in llama.cpp */
        if (!strcmp(names[v], "gpt-2")) {
            int32_t *a, *b;
            size_t na = enc(t, "\xff", 0, 0, &a), nb = enc(t, "\xef\xbf\xbd", 0, 0, &b);
            cr_expect(na == nb && !memcmp(a, b, na * sizeof *a));
            free(a);
            free(b);
        }
        tok_free(t);
    }
}

Test(tok, invalid_ids) {
    tokenizer *t = load("llama-spm");
    const char *p;
    size_t n;
    cr_expect_eq(tok_piece(t, -1, 1, &p, &n), INFERD_EINVAL);
    cr_expect(p && n == 0);
    cr_expect_eq(tok_piece(t, (int32_t)tok_n_vocab(t), 1, &p, &n), INFERD_EINVAL);
    cr_expect_eq(tok_piece(t, INT32_MAX, 0, &p, &n), INFERD_EINVAL);
    buf out = BUF_INIT;
    buf_puts(&out, "keep");
    const int32_t bad[] = {15043, 32000};
    cr_expect_eq(tok_decode(t, bad, 2, 0, &out), INFERD_EINVAL);
    cr_expect_str_eq(out.data, "keep", "out is unchanged on error");
    const int32_t neg[] = {-7};
    cr_expect_eq(tok_decode(t, neg, 1, 0, &out), INFERD_EINVAL);
    cr_expect(!tok_is_eog(t, -1) && !tok_is_eog(t, 1 << 30));
    cr_expect(!tok_is_control(t, -1) && !tok_is_control(t, 1 << 30));
    cr_expect(tok_is_control(t, 1));
    cr_expect_null(tok_text(t, -1, &n));
    cr_expect_eq(tok_find(t, "\xe2\x96\x81Hello", 8), 15043);
    buf_free(&out);
    tok_free(t);
}

Test(tok, pieces) {
    tokenizer *t = load("llama-spm");
    const char *p;
    size_t n;
    cr_assert_eq(tok_piece(t, 15043, 0, &p, &n), 0);
    cr_expect(n == 6 && !memcmp(p, " Hello", 6), "SPM '\xe2\x96\x81' becomes a space");
    cr_assert_eq(tok_piece(t, 13, 0, &p, &n), 0); /* <0x0A> */
    cr_expect(n == 1 && p[0] == '\n', "byte token gives its byte");
    tok_free(t);
    t = load("gpt-2");
    cr_assert_eq(tok_piece(t, 18435, 0, &p, &n), 0); /* "ĠHello" */
    cr_expect(n == 6 && !memcmp(p, " Hello", 6), "byte-level text is unmapped");
    tok_free(t);
}

/* Writes a copy of vocab NAME with tokenizer.ggml.pre = pre (NULL: removed). */
static tokenizer *load_with_pre(const char *name, const char *pre, int *rc, char *err,
                                size_t err_size) {
    char path[512], tmp[512];
    tmp_template(tmp, sizeof tmp);
    snprintf(path, sizeof path, VOCAB_DIR "/ggml-vocab-%s.gguf", name);
    gguf_file *f;
    cr_assert_eq(gguf_open(path, &f, err, err_size), 0, "%s", err);
    gguf_writer *w = gguf_writer_new();
    cr_assert(w);
    cr_assert_eq(gguf_writer_copy_all_kv(w, f), 0);
    gguf_close(f);
    if (pre)
        cr_assert_eq(gguf_writer_set_str(w, "tokenizer.ggml.pre", pre), 0);
    else
        gguf_writer_remove(w, "tokenizer.ggml.pre");
    int fd = mkstemp(tmp);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(gguf_writer_write(w, tmp, err, err_size), 0, "%s", err);
    gguf_writer_free(w);
    cr_assert_eq(gguf_open(tmp, &f, err, err_size), 0, "%s", err);
    tokenizer *t = NULL;
    *rc = tok_load(f, &t, err, err_size);
    gguf_close(f);
    unlink(tmp);
    return t;
}

Test(tok, every_pre_tokenizer_name, .timeout = 120) {
    /* llama.cpp c392e509 names (plus gpt-4o, falcon-h1, pixtral and the
     * deepseek3-llm spelling); each must load, compile its regexes and
     * tokenize a mixed text without losing a byte. */
    static const char *names[] = {"default",       "llama3",         "llama-v3",
                                  "llama-bpe",     "falcon3",        "falcon-h1",
                                  "deepseek-llm",  "deepseek-coder", "deepseek-v3",
                                  "deepseek3-llm", "falcon",         "mpt",
                                  "starcoder",     "gpt-2",          "phi-2",
                                  "jina-es",       "jina-de",        "gigachat",
                                  "jina-v1-en",    "jina-v2-es",     "jina-v2-de",
                                  "jina-v2-code",  "roberta-bpe",    "refact",
                                  "command-r",     "qwen2",          "deepseek-r1-qwen",
                                  "stablelm2",     "olmo",           "dbrx",
                                  "smaug-bpe",     "poro-chat",      "chatglm-bpe",
                                  "viking",        "jais",           "tekken",
                                  "pixtral",       "smollm",         "codeshell",
                                  "bloom",         "gpt3-finnish",   "exaone",
                                  "chameleon",     "minerva-7b",     "megrez",
                                  "gpt-4o"};
    const char *text = "Hello World! It's 12345 caf\xc3\xa9s, \xe6\x88\x91\xe6\x83\xb3 "
                       "\xf0\x9f\xa6\x99\n\n\t  end ";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char err[512];
        int rc;
        tokenizer *t = load_with_pre("gpt-2", names[i], &rc, err, sizeof err);
        cr_assert_eq(rc, 0, "pre '%s': %s", names[i], err);
        cr_expect_str_eq(tok_pre_name(t), names[i]);
        int32_t *ids;
        size_t n = enc(t, text, 0, 0, &ids);
        buf out = BUF_INIT;
        cr_assert_eq(tok_decode(t, ids, n, 0, &out), 0);
        /* gpt-2's vocab has every byte, so pieces give the text back */
        buf raw = BUF_INIT;
        for (size_t k = 0; k < n; k++) {
            const char *p;
            size_t pl;
            tok_piece(t, ids[k], 0, &p, &pl);
            buf_append(&raw, p, pl);
        }
        cr_expect(raw.len == strlen(text) && !memcmp(raw.data, text, raw.len),
                  "pre '%s': pieces lose bytes", names[i]);
        buf_free(&raw);
        buf_free(&out);
        free(ids);
        tok_free(t);
    }
    char err[512];
    int rc;
    tokenizer *t = load_with_pre("gpt-2", "no-such-pre", &rc, err, sizeof err);
    cr_expect_null(t);
    cr_expect_eq(rc, INFERD_EFORMAT);
    cr_expect(strstr(err, "no-such-pre"), "error names the pre-tokenizer: %s", err);
    /* absent pre -> "default", as llama.cpp */
    t = load_with_pre("gpt-2", NULL, &rc, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_str_eq(tok_pre_name(t), "default");
    tok_free(t);
}

Test(tok, pre_tokenizer_splits) {
    char err[512];
    int rc;
    /* digits: llama3 groups three, qwen2 one by one, starcoder one by one */
    tokenizer *t = load_with_pre("llama-bpe", "llama-bpe", &rc, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    int32_t *ids;
    size_t n = enc(t, "1234567", 0, 0, &ids);
    cr_expect_eq(n, 3, "llama3 splits 1234567 as 123|456|7");
    free(ids);
    tok_free(t);
    t = load_with_pre("llama-bpe", "qwen2", &rc, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    n = enc(t, "1234567", 0, 0, &ids);
    cr_expect_eq(n, 7, "qwen2 splits digits one by one");
    free(ids);
    tok_free(t);
    /* Qwen2's HF normalizer is NFC: decomposed text gives the composed ids */
    t = load("qwen2");
    int32_t *a, *b;
    size_t na = enc(t, "caf\xc3\xa9 \xce\x87", 0, 0, &a);  /* "café ·" (U+0387) */
    size_t nb = enc(t, "cafe\xcc\x81 \xc2\xb7", 0, 0, &b); /* e + U+0301, U+00B7 */
    int32_t *c;
    size_t nc = enc(t, "caf\xc3\xa9 \xc2\xb7", 0, 0, &c);
    cr_expect(na == nc && !memcmp(a, c, na * sizeof *a), "U+0387 is U+00B7 after NFC");
    cr_expect(nb == nc && !memcmp(b, c, nb * sizeof *b), "e + U+0301 is U+00E9 after NFC");
    free(a);
    free(b);
    free(c);
    tok_free(t);
    t = load("gpt-2"); /* no normalizer: decomposed text stays decomposed */
    na = enc(t, "caf\xc3\xa9", 0, 0, &a);
    nb = enc(t, "cafe\xcc\x81", 0, 0, &b);
    cr_expect(na != nb || memcmp(a, b, na * sizeof *a), "gpt-2 must not normalize");
    free(a);
    free(b);
    tok_free(t);
}

/* The hand-written GPT-2 / Llama 3 / Qwen2 splitters (presplit.c) must cut
 * exactly where PCRE2 does, on text full of the characters where the
 * regexes are subtle (whitespace kinds, contractions and case folding,
 * digits of every kind, marks, unassigned code points). */
Test(tok, fast_split_equals_pcre2, .timeout = 120) {
    static const uint32_t pool[] = {
        ' ',     ' ',    ' ',    '\t',     '\n',   '\r',   '\v',   '\f',   0x85,   0xA0,   0x1680,
        0x180E,  0x2000, 0x200A, 0x200B,   0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF, '\'',
        '\'',    '\'',   's',    'S',      't',    'T',    'm',    'M',    'd',    'D',    'r',
        'R',     'e',    'E',    'v',      'V',    'l',    'L',    'x',    0x17F,  0x212A, '0',
        '7',     0x660,  0xFF10, 0xB2,     0x216B, 0xBD,   0xE9,   0x3B1,  0x4E00, 0xAC00, 0xE01,
        0x301,   0x93F,  0x915,  '.',      ',',    '!',    '-',    '$',    '+',    '<',    '/',
        0x1F600, 0x378,  0xE000, 0x10FFFF, 0x0,    0x2581, 0xFF1F, 0x3002};
    static const char *names[] = {"gpt-2", "llama-bpe", "qwen2", "starcoder"};
    uint64_t seed = 7;
    size_t *a = malloc(4096 * sizeof *a), *b = malloc(4096 * sizeof *b);
    for (size_t v = 0; v < 4; v++) {
        char err[512];
        int rc;
        tokenizer *t = load_with_pre("gpt-2", names[v], &rc, err, sizeof err);
        cr_assert_eq(rc, 0, "%s", err);
        for (int r = 0; r < 3000; r++) {
            char s[512];
            size_t len = 0, n_chars = 1 + splitmix64(&seed) % 40;
            for (size_t k = 0; k < n_chars; k++)
                len +=
                    utf8_encode(pool[splitmix64(&seed) % (sizeof pool / sizeof pool[0])], s + len);
            long na = tok_pre_split_ends(t, 1, s, len, a, 4096);
            long nb = tok_pre_split_ends(t, 0, s, len, b, 4096);
            char txt[512];
            cr_assert(na == nb && !memcmp(a, b, (size_t)na * sizeof *a),
                      "pre '%s': fast split (%ld pieces) differs from PCRE2 (%ld) on \"%s\"",
                      names[v], na, nb, tt_fmt_text(txt, sizeof txt, s, len));
        }
        tok_free(t);
    }
    free(a);
    free(b);
}

typedef struct thr_arg {
    const tokenizer *t;
    const char *text;
    size_t len;
    const int32_t *want;
    size_t n_want;
    int ok;
} thr_arg;

static void *thr_main(void *p) {
    thr_arg *a = p;
    a->ok = 1;
    for (int r = 0; r < 3; r++) {
        int32_t *ids;
        size_t n;
        char err[128];
        if (tok_encode(a->t, a->text, a->len, 1, 0, &ids, &n, err, sizeof err)) {
            a->ok = 0;
            return NULL;
        }
        if (n != a->n_want || memcmp(ids, a->want, n * sizeof *ids)) a->ok = 0;
        free(ids);
    }
    return NULL;
}

Test(tok, shared_between_threads) {
    char *text;
    size_t len;
    char err[256];
    cr_assert_eq(
        file_read_all("tests/data/bench/tokenizer-text.txt", 1 << 24, &text, &len, err, sizeof err),
        0);
    if (len > 200000) len = 200000; /* keep it fast; long enough for the word cache */
    static const char *names[] = {"llama-spm", "gpt-2"};
    for (size_t v = 0; v < 2; v++) {
        tokenizer *t = load(names[v]);
        int32_t *want;
        size_t n_want;
        cr_assert_eq(tok_encode(t, text, len, 1, 0, &want, &n_want, err, sizeof err), 0);
        pthread_t th[4];
        thr_arg a[4];
        for (int i = 0; i < 4; i++) {
            a[i] = (thr_arg){t, text, len, want, n_want, 0};
            pthread_create(&th[i], NULL, thr_main, &a[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            cr_expect(a[i].ok, "%s: thread %d got other ids", names[v], i);
        }
        /* cached and uncached paths agree: a short text alone vs. inside a long one */
        int32_t *ids;
        size_t n;
        cr_assert_eq(tok_encode(t, text, 1000, 1, 0, &ids, &n, err, sizeof err), 0);
        cr_expect(n <= n_want);
        free(ids);
        free(want);
        tok_free(t);
    }
    free(text);
}

Test(tok, load_errors) {
    char err[512];
    gguf_writer *w = gguf_writer_new();
    char tmp[512];
    tmp_template(tmp, sizeof tmp);
    int fd = mkstemp(tmp);
    cr_assert(fd >= 0);
    close(fd);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    cr_assert_eq(gguf_writer_write(w, tmp, err, sizeof err), 0, "%s", err);
    gguf_file *f;
    cr_assert_eq(gguf_open(tmp, &f, err, sizeof err), 0, "%s", err);
    tokenizer *t = NULL;
    cr_expect_eq(tok_load(f, &t, err, sizeof err), INFERD_EFORMAT);
    cr_expect(strstr(err, "tokenizer.ggml.tokens"), "names the missing key: %s", err);
    cr_expect_null(t);
    gguf_close(f);

    gguf_writer_set_str(w, "tokenizer.ggml.model", "t5");
    const char *toks[] = {"a", "b"};
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 2);
    cr_assert_eq(gguf_writer_write(w, tmp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gguf_open(tmp, &f, err, sizeof err), 0, "%s", err);
    cr_expect_eq(tok_load(f, &t, err, sizeof err), INFERD_EUNSUPPORTED);
    gguf_close(f);

    /* gpt2 without merges; scores of the wrong length */
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    cr_assert_eq(gguf_writer_write(w, tmp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gguf_open(tmp, &f, err, sizeof err), 0, "%s", err);
    cr_expect_eq(tok_load(f, &t, err, sizeof err), INFERD_EFORMAT);
    cr_expect(strstr(err, "merges"), "%s", err);
    gguf_close(f);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    float sc[1] = {0};
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, sc, 1);
    cr_assert_eq(gguf_writer_write(w, tmp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gguf_open(tmp, &f, err, sizeof err), 0, "%s", err);
    cr_expect_eq(tok_load(f, &t, err, sizeof err), INFERD_EFORMAT);
    cr_expect(strstr(err, "scores"), "%s", err);
    gguf_close(f);

    /* a tiny SPM vocab without byte tokens: defaults past the vocab are no token */
    gguf_writer_remove(w, "tokenizer.ggml.scores");
    cr_assert_eq(gguf_writer_write(w, tmp, err, sizeof err), 0, "%s", err);
    cr_assert_eq(gguf_open(tmp, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(tok_load(f, &t, err, sizeof err), 0, "%s", err);
    gguf_close(f);
    cr_expect_eq(tok_bos(t), 1);
    cr_expect_eq(tok_eos(t), -1, "default eos 2 does not exist in a 2-token vocab");
    int32_t *ids;
    size_t n;
    cr_expect_eq(tok_encode(t, "ab\xff", 3, 1, 1, &ids, &n, err, sizeof err), 0);
    free(ids);
    tok_free(t);
    gguf_writer_free(w);
    unlink(tmp);
}
