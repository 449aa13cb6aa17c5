/*
 * generate_batch.h - `inferd generate --batch IN.jsonl`: offline batch
 * generation through the engine (vLLM's LLM.generate), and the engine
 * options `generate` shares between its single-prompt and batch modes.
 */
#ifndef CLI_GENERATE_BATCH_H
#define CLI_GENERATE_BATCH_H

#include <stdint.h>

#include "inferd.h"

/* Defaults for every batch line (from generate's flags). */
typedef struct batch_defaults {
    uint32_t max_tokens;
    float temperature;
    uint64_t seed;
    int has_seed;
    int ignore_eos;
} batch_defaults;

/* Runs every line of in_path through an engine made from ep, writing one
 * OpenAI completion object per line to out_path (NULL or "-" = stdout) in
 * input order; a progress bar on stderr when it is a terminal, then a
 * summary. Returns the exit status: 0, 1 (bad file or line: the message
 * names the line; runtime error) or 2. */
int generate_batch_run(const inferd_engine_params *ep, const char *in_path, const char *out_path,
                       const batch_defaults *def);

#endif
