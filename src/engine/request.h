/*
 * request.h - validation and owned copies of submitted requests (see
 * seq.h for the types). Runs on the submitting thread; the engine thread
 * receives a request whose n sequences are already allocated (token arrays
 * of max_len, block tables, detokenizers), so it never allocates for them.
 */
#ifndef ENGINE_REQUEST_H
#define ENGINE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "engine/seq.h"
#include "inferd.h"

#define REQUEST_MAX_N 128         /* choices per request */
#define REQUEST_MAX_STOPS 16      /* stop strings per request */
#define REQUEST_MAX_STOP_LEN 1024 /* bytes per stop string */

/* What a request is checked against (fixed at engine start). */
typedef struct request_limits {
    uint32_t n_vocab;
    uint32_t max_model_len;
    uint32_t block_size;
} request_limits;

/* Checks in (prompt ids in the vocabulary, sampling parameters, n, stop
 * strings, prompt + max_tokens <= max_model_len) and copies it. Returns 0
 * and *out (owned by the caller: request_free), or INFERD_EINVAL /
 * INFERD_ETOOLONG / INFERD_ENOMEM with a message naming the field and value.
 * Only sequence 0 holds the prompt; the others are filled at the fork. */
int request_new(const inferd_request *in, const request_limits *lim, request **out, char *err,
                size_t err_size);
/* Frees r and its sequences (which must be out of every queue). Accepts NULL. */
void request_free(request *r);

#endif
