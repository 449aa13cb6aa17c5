/*
 * request.c - turns a caller's inferd_request into an owned request with
 * its sequences (seq.h), after checking every field: this runs on the
 * caller's thread inside inferd_engine_submit, so the engine thread never
 * allocates for a new request.
 */
#include "engine/request.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "engine/kvcache.h"
#include "engine/sampler.h"

static int seq_alloc(seq *q, request *r, uint32_t choice, uint32_t block_size);

int request_new(const inferd_request *in, const request_limits *lim, request **out, char *err,
                size_t err_size) {
    *out = NULL;
    if (!in) return err_set(err, err_size, INFERD_EINVAL, "request is NULL");
    const inferd_sampling_params *sp = &in->sampling;
    if (in->n_prompt == 0 || !in->prompt_ids)
        return err_set(err, err_size, INFERD_EINVAL, "prompt is empty (0 tokens)");
    for (size_t i = 0; i < in->n_prompt; i++)
        if (in->prompt_ids[i] < 0 || (uint32_t)in->prompt_ids[i] >= lim->n_vocab)
            return err_set(err, err_size, INFERD_EINVAL,
                           "prompt token %zu is id %d, outside the vocabulary (%u tokens)", i,
                           (int)in->prompt_ids[i], lim->n_vocab);
    int rc = sampler_check_params(sp, lim->n_vocab, err, err_size);
    if (rc) return rc;
    if (sp->n < 1 || sp->n > REQUEST_MAX_N)
        return err_set(err, err_size, INFERD_EINVAL, "n %u must be in 1..%d", sp->n,
                       REQUEST_MAX_N);
    if (sp->n_stop > REQUEST_MAX_STOPS || (sp->n_stop && !sp->stop))
        return err_set(err, err_size, INFERD_EINVAL, "stop: %zu strings (at most %d)",
                       sp->n_stop, REQUEST_MAX_STOPS);
    for (size_t i = 0; i < sp->n_stop; i++) {
        size_t sl = sp->stop[i] ? strlen(sp->stop[i]) : 0;
        if (sl == 0 || sl > REQUEST_MAX_STOP_LEN)
            return err_set(err, err_size, INFERD_EINVAL,
                           "stop string %zu has %zu bytes (1..%d allowed)", i, sl,
                           REQUEST_MAX_STOP_LEN);
    }
    uint64_t n_prompt = in->n_prompt;
    if (n_prompt >= lim->max_model_len)
        return err_set(err, err_size, INFERD_ETOOLONG,
                       "prompt has %llu tokens; max_model_len is %u (room is needed for at "
                       "least one generated token)",
                       (unsigned long long)n_prompt, lim->max_model_len);
    if (n_prompt + sp->max_tokens > lim->max_model_len)
        return err_set(err, err_size, INFERD_ETOOLONG,
                       "prompt (%llu tokens) + max_tokens (%u) = %llu exceeds max_model_len %u",
                       (unsigned long long)n_prompt, sp->max_tokens,
                       (unsigned long long)(n_prompt + sp->max_tokens), lim->max_model_len);

    request *r = calloc(1, sizeof *r);
    if (!r) return err_set(err, err_size, INFERD_ENOMEM, "out of memory for a request");
    r->user = in->user;
    r->sp = *sp;
    r->n_prompt = (uint32_t)n_prompt;
    r->max_len = sp->max_tokens ? (uint32_t)(n_prompt + sp->max_tokens) : lim->max_model_len;
    r->prompt = malloc(n_prompt * sizeof *r->prompt);
    r->seqs = calloc(sp->n, sizeof *r->seqs);
    if (!r->prompt || !r->seqs) goto nomem;
    memcpy(r->prompt, in->prompt_ids, n_prompt * sizeof *r->prompt);
    if (sp->n_stop) {
        r->stops = calloc(sp->n_stop, sizeof *r->stops);
        r->stop_lens = calloc(sp->n_stop, sizeof *r->stop_lens);
        if (!r->stops || !r->stop_lens) goto nomem;
        for (size_t i = 0; i < sp->n_stop; i++) {
            r->stop_lens[i] = strlen(sp->stop[i]);
            if (!(r->stops[i] = strdup(sp->stop[i]))) goto nomem;
        }
    }
    r->sp.stop = (const char *const *)r->stops;
    if (sp->n_stop_token_ids) {
        r->stop_ids = malloc(sp->n_stop_token_ids * sizeof *r->stop_ids);
        if (!r->stop_ids) goto nomem;
        memcpy(r->stop_ids, sp->stop_token_ids, sp->n_stop_token_ids * sizeof *r->stop_ids);
    }
    r->sp.stop_token_ids = r->stop_ids;
    if (sp->n_logit_bias) {
        r->bias_ids = malloc(sp->n_logit_bias * sizeof *r->bias_ids);
        r->bias_vals = malloc(sp->n_logit_bias * sizeof *r->bias_vals);
        if (!r->bias_ids || !r->bias_vals) goto nomem;
        memcpy(r->bias_ids, sp->logit_bias_ids, sp->n_logit_bias * sizeof *r->bias_ids);
        memcpy(r->bias_vals, sp->logit_bias_values, sp->n_logit_bias * sizeof *r->bias_vals);
    }
    r->sp.logit_bias_ids = r->bias_ids;
    r->sp.logit_bias_values = r->bias_vals;
    for (uint32_t c = 0; c < sp->n; c++) {
        if (!(r->seqs[c] = calloc(1, sizeof(seq)))) goto nomem;
        if (seq_alloc(r->seqs[c], r, c, lim->block_size)) goto nomem;
    }
    r->n_live = sp->n;
    r->n_seqs = 1;
    seq *q0 = r->seqs[0];
    memcpy(q0->tokens, r->prompt, n_prompt * sizeof *r->prompt);
    q0->n_tokens = (uint32_t)n_prompt;
    q0->fork_pending = sp->n > 1;
    *out = r;
    return 0;
nomem:
    request_free(r);
    return err_set(err, err_size, INFERD_ENOMEM, "out of memory for a request of %llu tokens",
                   (unsigned long long)n_prompt);
}

void request_free(request *r) {
    if (!r) return;
    if (r->seqs)
        for (uint32_t c = 0; c < r->sp.n; c++) {
            seq *q = r->seqs[c];
            if (!q) continue;
            free(q->tokens);
            free(q->blocks);
            detok_free(&q->dt);
            free(q);
        }
    free(r->seqs);
    if (r->stops)
        for (size_t i = 0; i < r->sp.n_stop; i++) free(r->stops[i]);
    free(r->stops);
    free(r->stop_lens);
    free(r->stop_ids);
    free(r->bias_ids);
    free(r->bias_vals);
    free(r->prompt);
    free(r);
}

static int seq_alloc(seq *q, request *r, uint32_t choice, uint32_t block_size) {
    q->req = r;
    q->choice = choice;
    q->state = SEQ_FINISHED; /* in no queue until enqueued */
    q->chain = KV_HASH_ROOT;
    q->logits_row = -1;
    q->tokens = malloc((size_t)r->max_len * sizeof *q->tokens);
    q->cap_blocks = (r->max_len + block_size - 1) / block_size;
    q->blocks = malloc((size_t)q->cap_blocks * sizeof *q->blocks);
    if (!q->tokens || !q->blocks) return INFERD_ENOMEM;
    return detok_init(&q->dt, (const char *const *)r->stops, r->stop_lens, r->sp.n_stop);
}
