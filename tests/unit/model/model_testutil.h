/*
 * model_testutil.h - shared helpers of the model tests: JSON-lines reference
 * files (tests/data/greedy), and a one-sequence runner that feeds a prompt in
 * one forward call and then one token per call, as llama.cpp's reference
 * generator did. Header-only (static functions), included by each test file.
 */
#ifndef TESTS_MODEL_TESTUTIL_H
#define TESTS_MODEL_TESTUTIL_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inferd.h"
#include "model/model.h"

#define STORIES_PATH "models/stories260K.gguf"
#define GREEDY_DIR "tests/data/greedy/"
#define TU_BLOCK 16

/* Reads every line of a JSON-lines file; *n rows, each owned (json_decref). */
static inline json_t **tu_read_jsonl(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    json_t **rows = NULL;
    size_t cap = 0;
    *n = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (len <= 1) continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cr_assert(j, "%s: bad JSON line %zu: %s", path, *n + 1, je.text);
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            rows = realloc(rows, cap * sizeof(*rows));
        }
        rows[(*n)++] = j;
    }
    free(line);
    fclose(f);
    return rows;
}

static inline void tu_free_rows(json_t **rows, size_t n) {
    for (size_t i = 0; i < n; i++) json_decref(rows[i]);
    free(rows);
}

/* A JSON array of integers as a new int32 array. */
static inline int32_t *tu_ids(json_t *a, size_t *n) {
    *n = json_array_size(a);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof(int32_t));
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return ids;
}

/* Max |ref - got| over n floats of a JSON array. */
static inline double tu_max_diff(json_t *ref, const float *got, size_t n) {
    cr_assert_eq(json_array_size(ref), n, "reference has %zu values, model %zu",
                 json_array_size(ref), n);
    double mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(json_number_value(json_array_get(ref, i)) - (double)got[i]);
        if (!(d <= mx)) mx = d; /* NaN propagates */
    }
    return mx;
}

/* Lowest index of the largest value. */
static inline int32_t tu_argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

/* One sequence over its own KV pool: blocks 0..n_blocks-1 in order. */
typedef struct tu_seq {
    model *m;
    kv_pool *kv;
    uint32_t *blocks;
    uint32_t n_blocks;
    int32_t n_past;
    float *logits; /* (n_vocab) of the last fed token */
} tu_seq;

static inline void tu_seq_init(tu_seq *s, model *m, uint32_t n_ctx, enum dtype kv_type) {
    char err[256] = "";
    memset(s, 0, sizeof(*s));
    s->m = m;
    s->n_blocks = (n_ctx + TU_BLOCK - 1) / TU_BLOCK;
    cr_assert_eq(kv_pool_new(m, s->n_blocks, TU_BLOCK, kv_type, &s->kv, err, sizeof err), 0,
                 "%s", err);
    s->blocks = malloc(s->n_blocks * sizeof(uint32_t));
    for (uint32_t i = 0; i < s->n_blocks; i++) s->blocks[i] = i;
    s->logits = malloc(model_get_hparams(m)->n_vocab * sizeof(float));
}

static inline void tu_seq_free(tu_seq *s) {
    kv_pool_free(s->kv);
    free(s->blocks);
    free(s->logits);
}

/* Feeds n tokens in one forward call; s->logits gets the last one's logits. */
static inline void tu_seq_feed(tu_seq *s, const int32_t *ids, size_t n) {
    int32_t *pos = malloc(n * sizeof(int32_t)), *seq = calloc(n, sizeof(int32_t));
    for (size_t i = 0; i < n; i++) pos[i] = s->n_past + (int32_t)i;
    model_seq sq = {s->blocks, s->n_blocks};
    model_batch b = {.n_tokens = (uint32_t)n, .tokens = ids, .pos = pos, .seq = seq,
                     .want_logits = NULL, .n_seqs = 1, .seqs = &sq};
    char err[256] = "";
    cr_assert_eq(model_forward(s->m, s->kv, &b, s->logits, err, sizeof err), 0, "%s", err);
    s->n_past += (int32_t)n;
    free(pos);
    free(seq);
}

/* The synth-tiny model of weight type `type` (e.g. "Q8_0"), made by
 * scripts/make_synth_tiny.sh into $BUILD/testdata (`make unit` runs it),
 * next to this binary's $BUILD/tests/unit/model/. Returns 1 with its path in
 * out, or 0 (said so, with what, on stdout) when it is missing. */
static inline int tu_synth_tiny_path(const char *what, const char *type, char *out, size_t n) {
    char exe[PATH_MAX / 2];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert(len > 0);
    exe[len] = '\0';
    char *cut = strstr(exe, "/tests/unit/model/");
    cr_assert(cut);
    *cut = '\0';
    snprintf(out, n, "%s/testdata/synth-tiny-%s.gguf", exe, type);
    if (access(out, R_OK) == 0) return 1;
    printf("SKIP %s %s: %s not found (made by scripts/make_synth_tiny.sh)\n", what, type, out);
    return 0;
}

static inline model *tu_load(const char *path, int n_threads) {
    char err[256] = "";
    model_params p = model_default_params();
    p.n_threads = n_threads;
    model *m = NULL;
    int rc = model_load(path, &p, &m, err, sizeof err);
    cr_assert_eq(rc, 0, "model_load(%s): %s", path, err);
    return m;
}

#endif
