/*
 * server_int.h - private to src/server: the server state shared by the loop
 * (server.c), the router (routes.c), the OpenAI endpoints (openai.c), chat
 * rendering (chat.c) and metrics (metrics.c). Every field is owned by the
 * loop thread except where noted.
 */
#ifndef SERVER_SERVER_INT_H
#define SERVER_SERVER_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "base/buf.h"
#include "inferd.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/server.h"

struct event_base;
struct event;
typedef struct gen gen;
typedef struct chat_template chat_template;
typedef struct tokenizer tokenizer;

typedef struct server {
    server_params p;
    struct event_base *base;
    http_server *http;
    inferd_engine *engine;        /* NULL until loaded; set by the loader thread before loaded_ev */
    const tokenizer *tok;         /* the engine's tokenizer (borrowed) */
    chat_template *tmpl;          /* parsed chat template (owned) */
    char *bos_token, *eos_token;  /* texts of BOS / EOS for templates ("" when none) */
    char model_name[256];
    int64_t created;              /* Unix time the model was loaded */
    uint32_t n_vocab, max_model_len;

    struct event *wake_ev;        /* activated from the engine thread */
    struct event *loaded_ev;      /* activated by the loader thread */
    struct event *sigterm_ev, *sigint_ev, *drain_ev, *flush_ev;
    int flush_tries;              /* drain: 20 ms checks for unsent replies */
    pthread_t loader;
    int loader_started;
    int load_status;              /* written by the loader before loaded_ev */
    char load_err[512];

    int ready;                    /* model loaded and the server accepts work */
    int draining;
    int drain_deadline_passed;
    int exit_status;
    char exit_err[512];

    gen *gens;                    /* in-flight generations (list) */
    uint32_t n_gens;
    uint64_t n_unstarted;     /* submitted sequences with no event yet (queue room) */
    uint64_t next_gen_id;
    metrics m;
} server;

/* routes.c: the one HTTP handler (auth, routing, the small endpoints). */
void server_route(http_request *req, void *arg);
/* Sends an OpenAI-shaped error (type from the status). */
void server_error(http_request *req, int status, const char *param, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Responds 404 (model_not_found) and returns -1 when model is given and is
 * not the served name; else returns 0. */
int server_check_model(server *s, http_request *req, const char *model);
/* Responds 503 (loading or draining, with Retry-After) and returns -1 when
 * the server does not take work now; else returns 0. */
int server_check_loaded(server *s, http_request *req);

/* openai.c: the generation endpoints and engine events. */
void openai_completions(server *s, http_request *req, int chat);
/* Drains the engine's events and routes them to their generations. */
void openai_on_engine_events(server *s);
/* Aborts every generation in flight (drain timeout). */
void openai_abort_all(server *s);
/* After the engine is freed: ends every generation left (503 or the end of
 * its stream) and frees it. */
void openai_free_all(server *s);

/* chat.c: renders req's messages with the chat template into out.
 * Returns 0, or INFERD_EINVAL with a message in err (the template raised). */
int chat_render(server *s, json_t *messages, json_t *tools, json_t *kwargs,
                int add_generation_prompt, buf *out, char *err, size_t err_size);
/* Renders and tokenizes (special tokens parsed; BOS added unless the
 * rendering starts with it) into *ids (malloc'd, caller frees). Returns 0,
 * INFERD_EINVAL (the template failed: a client error) or another status. */
int chat_tokenize(server *s, json_t *messages, json_t *tools, json_t *kwargs, int add_generation_prompt,
                  int32_t **ids, size_t *n_ids, char *err, size_t err_size);
/* Sets up s->tmpl, bos/eos (loader thread). Returns 0 or a status with err. */
int chat_setup(server *s, char *err, size_t err_size);
void chat_teardown(server *s);

/* server.c: called when a generation ends, to finish a drain. */
void server_check_drained(server *s);

#endif
