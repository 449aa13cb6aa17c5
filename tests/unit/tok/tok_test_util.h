/*
 * tok_test_util.h - helpers shared by the tokenizer tests: load a vocab GGUF
 * from tests/data/vocab, read .inp/.out vector files (format in
 * tests/data/vocab/FORMAT.md), format id lists for failure messages.
 */
#ifndef TESTS_UNIT_TOK_TEST_UTIL_H
#define TESTS_UNIT_TOK_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "gguf/gguf.h"
#include "tok/tokenizer.h"

#define VOCAB_DIR "tests/data/vocab"
#define VEC_SEP "\n__ggml_vocab_test__\n"

/* Loads tests/data/vocab/ggml-vocab-NAME.gguf; NULL (with err) on failure. */
static inline tokenizer *tt_load(const char *name, char *err, size_t err_size) {
    char path[512];
    snprintf(path, sizeof path, VOCAB_DIR "/ggml-vocab-%s.gguf", name);
    gguf_file *f = NULL;
    if (gguf_open(path, &f, err, err_size)) return NULL;
    tokenizer *t = NULL;
    tok_load(f, &t, err, err_size);
    gguf_close(f);
    return t;
}

static inline int tt_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}

typedef struct tt_case {
    char *text;
    size_t len;
    int32_t *ids;
    size_t n_ids;
} tt_case;

/* Reads NAME's .inp (split like test-tokenizer-0.cpp) and .out. Returns the
 * number of cases (>= 0) or -1 when a file is missing/unreadable; *n_out
 * is the number of .out lines. */
static inline int tt_read_cases(const char *name, tt_case **cases, size_t *n_out) {
    char path[512], err[256];
    char *inp = NULL, *outs = NULL;
    size_t inp_len, out_len;
    snprintf(path, sizeof path, VOCAB_DIR "/ggml-vocab-%s.gguf.inp", name);
    if (file_read_all(path, 1 << 26, &inp, &inp_len, err, sizeof err)) return -1;
    snprintf(path, sizeof path, VOCAB_DIR "/ggml-vocab-%s.gguf.out", name);
    if (file_read_all(path, 1 << 26, &outs, &out_len, err, sizeof err)) {
        free(inp);
        return -1;
    }
    size_t n = 0, cap = 64;
    tt_case *c = calloc(cap, sizeof *c);
    size_t pos = 0, sl = strlen(VEC_SEP);
    while (pos < inp_len) {
        char *m = memmem(inp + pos, inp_len - pos, VEC_SEP, sl);
        if (!m) break;
        if (n == cap) c = realloc(c, (cap *= 2) * sizeof *c);
        size_t len = (size_t)(m - (inp + pos));
        c[n].text = malloc(len + 1);
        memcpy(c[n].text, inp + pos, len);
        c[n].text[len] = 0;
        c[n].len = len;
        c[n].ids = NULL;
        c[n].n_ids = 0;
        n++;
        pos = (size_t)(m - inp) + sl;
    }
    size_t line = 0;
    char *p = outs, *end = outs + out_len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        if (line < n) {
            size_t k = 0, kcap = 16;
            int32_t *ids = malloc(kcap * sizeof *ids);
            char *q = p;
            while (q < nl) {
                while (q < nl && *q == ' ') q++;
                if (q >= nl) break;
                if (k == kcap) ids = realloc(ids, (kcap *= 2) * sizeof *ids);
                ids[k++] = (int32_t)strtol(q, &q, 10);
            }
            c[line].ids = ids;
            c[line].n_ids = k;
        }
        line++;
        p = nl + 1;
    }
    *n_out = line;
    *cases = c;
    free(inp);
    free(outs);
    return (int)n;
}

static inline void tt_free_cases(tt_case *c, int n) {
    for (int i = 0; i < n; i++) {
        free(c[i].text);
        free(c[i].ids);
    }
    free(c);
}

/* Formats up to 40 ids into s. */
static inline const char *tt_fmt_ids(char *s, size_t size, const int32_t *ids, size_t n) {
    size_t o = 0;
    s[0] = 0;
    for (size_t i = 0; i < n && o + 16 < size; i++) {
        if (i == 40) {
            snprintf(s + o, size - o, " ...(%zu)", n);
            break;
        }
        o += (size_t)snprintf(s + o, size - o, " %d", ids[i]);
    }
    return s;
}

/* Escapes text for a message (first 60 bytes). */
static inline const char *tt_fmt_text(char *s, size_t size, const char *t, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n && i < 60 && o + 8 < size; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n')
            o += (size_t)snprintf(s + o, size - o, "\\n");
        else if (c == '\t')
            o += (size_t)snprintf(s + o, size - o, "\\t");
        else if (c < 32)
            o += (size_t)snprintf(s + o, size - o, "\\x%02x", c);
        else
            s[o++] = (char)c;
    }
    if (n > 60 && o + 4 < size) o += (size_t)snprintf(s + o, size - o, "...");
    s[o] = 0;
    return s;
}

#endif
