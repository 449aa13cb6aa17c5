/*
 * sampler.h - turns one row of logits into the next token of one sequence.
 *
 * The chain is a table of stages (STYLE rule 10), applied in this order to a
 * candidate list built from the raw logits; a stage whose parameters are
 * neutral is skipped:
 *   1. logit_bias     logit[id] += bias                  (n_logit_bias > 0)
 *   2. penalties      repetition (prompt + output: l>0 ? l/r : l*r), then
 *                     frequency (-f * count in output), presence (-p if seen)
 *   3. temperature    l /= T                              (T != 1, T > 0)
 *   4. top_k          keep the k largest                  (k > 0)
 *   5. top_p          keep the smallest prefix of mass >= p (p < 1)
 *   6. min_p          keep p_i >= min_p * p_max           (min_p > 0)
 * then a draw from the softmax of what is left, with the sequence's own RNG
 * (one splitmix64 state per sequence: reproducible whatever the batch).
 * Temperature 0 is greedy: argmax after stages 1-2, lowest id on ties.
 * Logprobs (when requested) are the log-softmax of the RAW logits, as
 * OpenAI and vLLM report them, with up to SAMPLER_MAX_LOGPROBS alternatives.
 *
 * A sampler holds scratch sized for the vocabulary; it is used by one thread
 * (the engine thread) and carries no per-sequence state: callers keep the
 * RNG state and the token history.
 */
#ifndef ENGINE_SAMPLER_H
#define ENGINE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "inferd.h"

#define SAMPLER_MAX_LOGPROBS 20

typedef struct sampler sampler;

/* One candidate token during the chain. */
typedef struct sampler_cand {
    int32_t id;
    float logit;
} sampler_cand;

/* The working set the stages narrow down. */
typedef struct sampler_cands {
    sampler_cand *data; /* (n) borrowed from the sampler's scratch */
    size_t n;
    int sorted;         /* 1 when data is in descending logit order */
} sampler_cands;

/* A sequence's tokens so far: tokens[0..n_prompt) is the prompt,
 * tokens[n_prompt..n_tokens) the generated ones. Borrowed for the call. */
typedef struct sampler_history {
    const int32_t *tokens;
    size_t n_prompt;
    size_t n_tokens;
} sampler_history;

/* One stage of the chain: active() says whether p asks for it; apply()
 * rewrites or narrows c (never to zero candidates). */
typedef struct sampler_stage {
    const char *name;
    int (*active)(const inferd_sampling_params *p);
    void (*apply)(sampler *s, sampler_cands *c, const inferd_sampling_params *p,
                  const sampler_history *h);
} sampler_stage;

typedef struct sampler_result {
    int32_t token;
    float logprob;  /* log-softmax of the raw logits at token (when p->logprobs >= 0, else 0) */
    uint32_t n_top; /* min(p->logprobs, SAMPLER_MAX_LOGPROBS) when logprobs > 0 */
    inferd_top_logprob top[SAMPLER_MAX_LOGPROBS]; /* descending, lowest id first on ties */
} sampler_result;

/* Allocates scratch for a vocabulary of n_vocab tokens. Returns 0 and *out
 * (free with sampler_free), INFERD_EINVAL for n_vocab 0, or INFERD_ENOMEM. */
int sampler_new(uint32_t n_vocab, sampler **out);
/* Accepts NULL. */
void sampler_free(sampler *s);

/* Checks p against the vocabulary: temperature >= 0, top_p in (0, 1],
 * min_p in [0, 1], repetition_penalty > 0, top_k >= -1 (0 means off as
 * -1 does), logprobs <= SAMPLER_MAX_LOGPROBS, every logit_bias and stop
 * token id < n_vocab, finite values. Returns 0 or INFERD_EINVAL with a
 * message naming the field and value. */
int sampler_check_params(const inferd_sampling_params *p, uint32_t n_vocab, char *err,
                         size_t err_size);

/* The initial RNG state of choice `choice` of a request: derived from
 * p->seed when p->has_seed (so the same seed gives the same tokens alone or
 * in any batch), else from `entropy` (any per-request unique value). */
uint64_t sampler_rng_init(const inferd_sampling_params *p, uint32_t choice, uint64_t entropy);

/* Samples the next token from logits (n_vocab floats, not modified) for a
 * sequence with history h and RNG state *rng (advanced by exactly one draw
 * unless greedy). Fills *out when non-NULL (logprob and top alternatives
 * only when p->logprobs >= 0) and returns the token id. */
int32_t sampler_sample(sampler *s, const inferd_sampling_params *p, const float *logits,
                       const sampler_history *h, uint64_t *rng, sampler_result *out);

/* The stage table (for tests and docs): *n receives its length. */
const sampler_stage *sampler_stages(size_t *n);
/* Loads logits into the sampler's candidate scratch (all ids, unsorted) and
 * returns the working set; used by sampler_sample and by tests that run one
 * stage at a time. */
sampler_cands sampler_load(sampler *s, const float *logits);

#endif
