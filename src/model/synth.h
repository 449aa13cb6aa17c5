/*
 * synth.h - random-weight models for benchmarks: a llama-shaped GGUF with
 * the tokenizer metadata of a real vocabulary file, weights drawn from
 * N(0, 0.02) (a seeded, per-row stream, so files are reproducible and rows
 * can be made in parallel), norm weights 1.0, an untied output matrix.
 * Used by `inferd synth` and `make bench`; llama.cpp loads the files too.
 */
#ifndef MODEL_SYNTH_H
#define MODEL_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

typedef struct synth_params {
    const char *vocab_path; /* GGUF whose tokenizer.* metadata is copied */
    const char *out_path;
    const char *arch;       /* "llama" */
    uint32_t n_embd, n_ff, n_layer, n_head, n_head_kv, n_ctx;
    enum dtype type;        /* type of every matrix (norms stay f32) */
    uint64_t seed;
    int n_threads;          /* 0: physical cores */
} synth_params;

/* arch "llama", type F16, seed 1, n_threads 0; shape fields 0 (must be set). */
synth_params synth_default_params(void);

/* Writes the model described by p to p->out_path (through a temporary file
 * renamed at the end). Returns 0; INFERD_EINVAL for a bad shape or type (the
 * message names the field and value); INFERD_EIO / INFERD_EFORMAT when the
 * vocabulary cannot be read or has no tokenizer.ggml.tokens; INFERD_ENOMEM. */
int synth_model(const synth_params *p, char *err, size_t err_size);

#endif
