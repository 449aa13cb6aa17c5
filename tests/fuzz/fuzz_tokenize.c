/*
 * fuzz_tokenize.c - libFuzzer target for the tokenizers: any bytes through
 * tok_encode (SPM, byte-level BPE with two pre-tokenizers, WordPiece), then
 * tok_decode of the result; every id must be in range. The first input byte
 * picks the vocabulary and the add_special / parse_special flags.
 * Vocabularies load once from the repository (run from its root, or set
 * INFERD_REPO to it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"
#include "gguf/gguf.h"
#include "tok/tokenizer.h"

static const char *const k_vocabs[] = {
    "models/stories260K.gguf",
    "tests/data/vocab/ggml-vocab-llama-spm.gguf",
    "tests/data/vocab/ggml-vocab-gpt-2.gguf",
    "tests/data/vocab/ggml-vocab-qwen2.gguf",
    "tests/data/vocab/ggml-vocab-bert-bge.gguf",
    "tests/data/vocab/ggml-vocab-deepseek-llm.gguf",
};
#define N_VOCABS (sizeof k_vocabs / sizeof k_vocabs[0])

static tokenizer *g_tok[N_VOCABS];

static void load_all(void) {
    const char *repo = getenv("INFERD_REPO");
    for (size_t i = 0; i < N_VOCABS; i++) {
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s%s%s", repo ? repo : "", repo ? "/" : "", k_vocabs[i]);
        gguf_file *f;
        if (gguf_open(path, &f, err, sizeof err)) {
            fprintf(stderr,
                    "fuzz_tokenize: cannot open %s: %s (run from the repository root or set "
                    "INFERD_REPO)\n",
                    path, err);
            abort();
        }
        if (tok_load(f, &g_tok[i], err, sizeof err)) {
            fprintf(stderr, "fuzz_tokenize: %s: %s\n", path, err);
            abort();
        }
        gguf_close(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok[0]) load_all();
    if (size == 0) return 0;
    uint8_t sel = data[0];
    const tokenizer *t = g_tok[(sel & 0x0f) % N_VOCABS];
    int add_special = (sel >> 4) & 1, parse_special = (sel >> 5) & 1;
    int32_t *ids = NULL;
    size_t n = 0;
    char err[256];
    if (tok_encode(t, (const char *)data + 1, size - 1, add_special, parse_special, &ids, &n, err,
                   sizeof err))
        abort(); /* only out of memory may fail */
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= tok_n_vocab(t)) abort();
    buf out = BUF_INIT;
    if (tok_decode(t, ids, n, (sel >> 6) & 1, &out)) abort();
    buf_free(&out);
    free(ids);
    return 0;
}
