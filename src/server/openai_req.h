/*
 * openai_req.h - validation of OpenAI request bodies (/v1/completions,
 * /v1/chat/completions) into one plain struct. Pure: no engine, no I/O, so
 * the fuzz target (tests/fuzz/fuzz_request.c) drives it directly.
 *
 * Rules: unknown fields are ignored; a known field of the wrong type or out
 * of range is an error naming the field (param) with status 400; a body that
 * is not a JSON object is 400 with the parser's position. Limits that need
 * the model (vocabulary size, context length) are checked by the caller.
 */
#ifndef SERVER_OPENAI_REQ_H
#define SERVER_OPENAI_REQ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "inferd.h"

#define OAI_MAX_N 128           /* choices per prompt */
#define OAI_MAX_PROMPTS 64      /* prompts in one completions request */
#define OAI_MAX_STOP 16         /* stop strings */
#define OAI_MAX_STOP_BYTES 256  /* bytes per stop string */
#define OAI_MAX_LOGPROBS 20     /* top alternatives per token */
#define OAI_MAX_LOGIT_BIAS 1024 /* entries of logit_bias */

typedef struct oai_error {
    int status;        /* HTTP status (400) */
    char param[64];    /* the offending field ("" when none) */
    char msg[384];
} oai_error;

/* One prompt of a completions request: text, or token ids. */
typedef struct oai_prompt {
    char *text;        /* owned, NUL-terminated; NULL when ids are given */
    size_t text_len;
    int32_t *ids;      /* owned; NULL when text is given */
    size_t n_ids;
} oai_prompt;

typedef struct oai_request {
    int chat;                    /* 1 = chat completions */
    char *model;                 /* owned; NULL when absent */
    oai_prompt *prompts;         /* completions: owned, n_prompts >= 1 */
    size_t n_prompts;
    json_t *messages;            /* chat: owned reference, content normalized to strings */
    json_t *tools;               /* chat: owned reference or NULL */
    json_t *template_kwargs;     /* chat: chat_template_kwargs object or NULL */
    int add_generation_prompt;   /* chat: default 1 */
    int stream, include_usage, echo;
    int logprobs;                /* -1 none; else top alternatives (0..OAI_MAX_LOGPROBS) */
    int max_tokens_given;        /* 1 when max_tokens / max_completion_tokens was set */
    inferd_sampling_params sp;   /* stop / logit_bias point into the arrays below */
    char **stop;                 /* owned, n_stop strings */
    size_t n_stop;
    int32_t *bias_ids;           /* owned, n_bias each */
    float *bias_values;
    size_t n_bias;
    char *user;                  /* owned or NULL */
} oai_request;

/* Parses and validates body[0..len) as a completions (chat = 0) or chat
 * completions (chat = 1) request. Returns 0 and fills *out (free with
 * oai_request_free), or INFERD_EINVAL with *e filled (out is left empty). */
int oai_request_parse(const char *body, size_t len, int chat, oai_request *out, oai_error *e);
/* Frees what oai_request_parse allocated. Accepts a zeroed struct. */
void oai_request_free(oai_request *r);

/* Parses a JSON body for the smaller endpoints: returns the object (caller
 * decrefs) or NULL with *e filled (400). */
json_t *oai_parse_object(const char *body, size_t len, oai_error *e);

#endif
