/*
 * server.h - the OpenAI-compatible HTTP server (`inferd serve`): one loop
 * thread owns the sockets, the HTTP layer, JSON and the replies; the engine
 * runs on its own thread and wakes the loop when events are ready
 * (DESIGN.md, "One request, end to end").
 *
 * Life cycle of server_run(): bind and listen (the port answers /health at
 * once, /ready is 503 while loading) -> load the model on a helper thread ->
 * serve -> on SIGTERM/SIGINT stop accepting work (new generation requests
 * get 503 with Retry-After, /ready turns 503, every reply closes its
 * connection), in-flight requests finish (up to drain_timeout_s, then they
 * are aborted) -> return.
 */
#ifndef SERVER_SERVER_H
#define SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "inferd.h"
#include "server/http.h"

typedef struct server_params {
    http_params http;             /* host, port, limits, timeouts, CORS */
    inferd_engine_params engine;  /* model path, KV cache, batching */
    const char *served_model_name; /* NULL = model file name without ".gguf" */
    const char *api_key;          /* NULL = no authentication */
    const char *chat_template_path; /* NULL = the model's template, else ChatML */
    double drain_timeout_s;       /* default 30 */
    /* Called once on the loop thread when the server listens (port is the
     * bound one) and once when the model is loaded; may be NULL. */
    void (*on_listening)(int port, void *arg);
    void (*on_loaded)(void *arg);
    void *cb_arg;
} server_params;

server_params server_default_params(void);

/* Runs the server until a signal and the drain that follows. Returns 0 after
 * a clean drain, or a negative status with a message in err (bind failed,
 * model failed to load, bad chat template). */
int server_run(const server_params *params, char *err, size_t err_size);

#endif
