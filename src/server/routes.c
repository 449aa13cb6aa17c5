/*
 * routes.c - the server's one HTTP handler: API-key check, routing table,
 * and the small endpoints (/health, /ready, /version, /metrics, /v1/models,
 * /tokenize, /detokenize). The generation endpoints live in openai.c.
 */
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/error.h"
#include "server/openai_req.h"
#include "server/server_int.h"

typedef void (*route_fn)(server *s, http_request *req);

static void route_health(server *s, http_request *req);
static void route_ready(server *s, http_request *req);
static void route_version(server *s, http_request *req);
static void route_metrics(server *s, http_request *req);
static void route_models(server *s, http_request *req);
static void route_tokenize(server *s, http_request *req);
static void route_detokenize(server *s, http_request *req);
static void route_completions(server *s, http_request *req);
static void route_chat(server *s, http_request *req);

static const struct route {
    const char *method, *path;
    route_fn fn;
    int auth; /* needs the API key when one is set */
} routes[] = {
    {"GET", "/health", route_health, 0},
    {"GET", "/ready", route_ready, 0},
    {"GET", "/version", route_version, 0},
    {"GET", "/metrics", route_metrics, 0},
    {"GET", "/v1/models", route_models, 1},
    {"POST", "/v1/completions", route_completions, 1},
    {"POST", "/v1/chat/completions", route_chat, 1},
    {"POST", "/tokenize", route_tokenize, 1},
    {"POST", "/detokenize", route_detokenize, 1},
};

static const char *error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void server_error(http_request *req, int status, const char *param, const char *code,
                  const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_respond_error(req, status, error_type(status), param && *param ? param : NULL, code, msg);
}

int server_check_model(server *s, http_request *req, const char *model) {
    if (!model || !strcmp(model, s->model_name)) return 0;
    server_error(req, 404, "model", "model_not_found", "The model '%.200s' does not exist; this server serves '%s'.",
                 model, s->model_name);
    return -1;
}

int server_check_loaded(server *s, http_request *req) {
    if (s->draining) {
        http_add_header(req, "Retry-After", "5");
        server_error(req, 503, NULL, "draining", "the server is shutting down");
        return -1;
    }
    if (!s->ready) {
        http_add_header(req, "Retry-After", "5");
        server_error(req, 503, NULL, "model_loading", "the model is still loading");
        return -1;
    }
    return 0;
}

/* Constant-time comparison of the presented key with the configured one. */
static int key_ok(const char *given, const char *want) {
    size_t gl = strlen(given), wl = strlen(want);
    unsigned diff = (unsigned)(gl ^ wl);
    for (size_t i = 0; i < wl; i++) diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? given[i] : 0);
    return diff == 0;
}

static int check_auth(server *s, http_request *req) {
    if (!s->p.api_key || !*s->p.api_key) return 0;
    const char *h = http_request_header(req, "authorization");
    http_add_header(req, "WWW-Authenticate", "Bearer");
    if (!h) {
        server_error(req, 401, NULL, "invalid_api_key",
                     "Missing API key: send it as 'Authorization: Bearer <key>'.");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7) || !key_ok(h + 7, s->p.api_key)) {
        server_error(req, 401, NULL, "invalid_api_key", "Incorrect API key provided.");
        return -1;
    }
    return 0;
}

void server_route(http_request *req, void *arg) {
    server *s = arg;
    const char *method = http_request_method(req), *path = http_request_path(req);
    size_t plen = strlen(path);
    char norm[64];
    /* One trailing slash is tolerated ("/v1/models/"). */
    if (plen > 1 && plen < sizeof norm && path[plen - 1] == '/') {
        memcpy(norm, path, plen - 1);
        norm[plen - 1] = 0;
        path = norm;
    }
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, path)) continue;
        path_known = 1;
        if (strcmp(routes[i].method, method) && !(!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET")))
            continue;
        if (routes[i].auth && check_auth(s, req)) {
            metrics_count_request(&s->m, routes[i].path, 401);
            return;
        }
        routes[i].fn(s, req);
        return;
    }
    if (!strncmp(path, "/v1/models/", 11) && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
        if (check_auth(s, req)) return;
        route_models(s, req);
        return;
    }
    if (path_known) {
        http_add_header(req, "Allow", "GET, POST, OPTIONS");
        server_error(req, 405, NULL, "method_not_allowed", "Method %s is not allowed on %.200s.", method,
                     http_request_path(req));
        return;
    }
    metrics_count_request(&s->m, "other", 404);
    server_error(req, 404, NULL, "not_found", "Not found: %s %.200s", method, http_request_path(req));
}

static void respond_json(server *s, http_request *req, const char *endpoint, int status, buf *b) {
    metrics_count_request(&s->m, endpoint, status);
    if (b->oom) {
        server_error(req, 500, NULL, NULL, "out of memory");
        return;
    }
    http_respond(req, status, "application/json", b->data, b->len);
}

static void route_health(server *s, http_request *req) {
    buf b = BUF_INIT;
    buf_puts(&b, "{\"status\":\"ok\"}\n");
    respond_json(s, req, "/health", 200, &b);
    buf_free(&b);
}

static void route_version(server *s, http_request *req) {
    buf b = BUF_INIT;
    buf_printf(&b, "{\"version\":\"%s\"}\n", inferd_version());
    respond_json(s, req, "/version", 200, &b);
    buf_free(&b);
}

static void route_ready(server *s, http_request *req) {
    inferd_engine_stats st;
    memset(&st, 0, sizeof st);
    if (s->ready) inferd_engine_get_stats(s->engine, &st);
    uint32_t max_waiting = s->p.engine.max_waiting;
    const char *status = s->draining ? "draining"
                         : !s->ready ? "loading"
                         : (max_waiting && st.waiting >= max_waiting) ? "queue_full"
                                                                       : "ready";
    int code = strcmp(status, "ready") ? 503 : 200;
    buf b = BUF_INIT;
    buf_printf(&b,
               "{\"status\":\"%s\",\"model\":", status);
    buf_json_str(&b, s->model_name, strlen(s->model_name));
    buf_printf(&b,
               ",\"active_requests\":%u,\"running\":%u,\"waiting\":%u,\"max_queue\":%u,"
               "\"kv_blocks_total\":%u,\"kv_blocks_free\":%u,\"connections\":%u}\n",
               s->n_gens, st.running, st.waiting, max_waiting, st.kv_blocks_total, st.kv_blocks_free,
               http_server_connections(s->http));
    if (code == 503) http_add_header(req, "Retry-After", "5");
    respond_json(s, req, "/ready", code, &b);
    buf_free(&b);
}

static void route_metrics(server *s, http_request *req) {
    inferd_engine_stats st;
    if (s->ready) inferd_engine_get_stats(s->engine, &st);
    buf b = BUF_INIT;
    metrics_count_request(&s->m, "/metrics", 200);
    metrics_render(&s->m, s->ready ? &st : NULL, s->n_gens, http_server_connections(s->http), s->ready,
                   &b);
    if (b.oom) server_error(req, 500, NULL, NULL, "out of memory");
    else http_respond(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
}

static void model_object(server *s, buf *b) {
    buf_puts(b, "{\"id\":");
    buf_json_str(b, s->model_name, strlen(s->model_name));
    buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"inferd\",\"root\":",
               (long long)s->created);
    buf_json_str(b, s->model_name, strlen(s->model_name));
    buf_printf(b, ",\"parent\":null,\"max_model_len\":%u}", s->max_model_len);
}

static void route_models(server *s, http_request *req) {
    const char *path = http_request_path(req);
    buf b = BUF_INIT;
    if (!strncmp(path, "/v1/models/", 11) && path[11]) {
        if (server_check_model(s, req, path + 11)) {
            metrics_count_request(&s->m, "/v1/models", 404);
            return;
        }
        model_object(s, &b);
        buf_putc(&b, '\n');
    } else {
        buf_puts(&b, "{\"object\":\"list\",\"data\":[");
        model_object(s, &b);
        buf_puts(&b, "]}\n");
    }
    respond_json(s, req, "/v1/models", 200, &b);
    buf_free(&b);
}

static json_t *body_object(server *s, http_request *req, const char *endpoint) {
    size_t len;
    const char *body = http_request_body(req, &len);
    oai_error e;
    json_t *o = oai_parse_object(body, len, &e);
    if (!o) {
        metrics_count_request(&s->m, endpoint, 400);
        server_error(req, 400, e.param, NULL, "%s", e.msg);
        return NULL;
    }
    json_t *model = json_object_get(o, "model");
    if (model && !json_is_null(model)) {
        if (!json_is_string(model)) {
            metrics_count_request(&s->m, endpoint, 400);
            server_error(req, 400, "model", NULL, "'model' must be a string");
            json_decref(o);
            return NULL;
        }
        if (server_check_model(s, req, json_string_value(model))) {
            metrics_count_request(&s->m, endpoint, 404);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* vLLM's /tokenize: {"prompt": str, "add_special_tokens": true} or
 * {"messages": [...], "add_generation_prompt": true} ->
 * {"count", "max_model_len", "tokens"}. */
static void route_tokenize(server *s, http_request *req) {
    if (server_check_loaded(s, req)) return;
    json_t *o = body_object(s, req, "/tokenize");
    if (!o) return;
    int status = 400;
    char err[512] = "";
    const char *param = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    buf text = BUF_INIT, b = BUF_INIT;
    json_t *prompt = json_object_get(o, "prompt"), *messages = json_object_get(o, "messages");
    json_t *add_special = json_object_get(o, "add_special_tokens");
    if (add_special && !json_is_boolean(add_special)) {
        param = "add_special_tokens";
        snprintf(err, sizeof err, "'add_special_tokens' must be a boolean");
        goto fail;
    }
    int from_chat = 0;
    if (messages && !json_is_null(messages)) {
        oai_request r;
        oai_error e;
        /* Reuse the chat validator: wrap the body as a chat request. */
        char *dump = json_dumps(o, JSON_COMPACT);
        int rc = dump ? oai_request_parse(dump, strlen(dump), 1, &r, &e) : INFERD_ENOMEM;
        free(dump);
        if (rc) {
            param = "messages";
            snprintf(err, sizeof err, "%s", rc == INFERD_ENOMEM ? "out of memory" : e.msg);
            goto fail;
        }
        rc = chat_tokenize(s, r.messages, r.tools, r.template_kwargs, r.add_generation_prompt, &ids, &n_ids,
                           err, sizeof err);
        oai_request_free(&r);
        if (rc) {
            param = "messages";
            if (rc != INFERD_EINVAL) status = 500;
            goto fail;
        }
        from_chat = 1;
    } else if (json_is_string(prompt)) {
        buf_append(&text, json_string_value(prompt), json_string_length(prompt));
    } else {
        param = "prompt";
        snprintf(err, sizeof err, "'prompt' (a string) or 'messages' (a list) is required");
        goto fail;
    }
    if (!from_chat && inferd_tokenize(s->engine, text.data ? text.data : "", text.len,
                                      add_special ? json_is_true(add_special) : 1, 0, &ids, &n_ids)) {
        status = 500;
        snprintf(err, sizeof err, "tokenization failed");
        goto fail;
    }
    buf_printf(&b, "{\"count\":%zu,\"max_model_len\":%u,\"tokens\":[", n_ids, s->max_model_len);
    for (size_t i = 0; i < n_ids; i++) buf_printf(&b, "%s%d", i ? "," : "", ids[i]);
    buf_puts(&b, "]}\n");
    respond_json(s, req, "/tokenize", 200, &b);
    goto done;
fail:
    metrics_count_request(&s->m, "/tokenize", status);
    server_error(req, status, param, NULL, "%s", err);
done:
    free(ids);
    buf_free(&text);
    buf_free(&b);
    json_decref(o);
}

/* vLLM's /detokenize: {"tokens": [ids]} -> {"prompt": text}. */
static void route_detokenize(server *s, http_request *req) {
    if (server_check_loaded(s, req)) return;
    json_t *o = body_object(s, req, "/detokenize");
    if (!o) return;
    json_t *tokens = json_object_get(o, "tokens");
    int32_t *ids = NULL;
    char *text = NULL;
    size_t n = json_array_size(tokens), len = 0;
    if (!json_is_array(tokens)) {
        metrics_count_request(&s->m, "/detokenize", 400);
        server_error(req, 400, "tokens", NULL, "'tokens' (a list of token ids) is required");
        goto done;
    }
    ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        server_error(req, 500, NULL, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(tokens, i);
        json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
        if (x < 0 || (uint64_t)x >= s->n_vocab) {
            metrics_count_request(&s->m, "/detokenize", 400);
            server_error(req, 400, "tokens", NULL, "'tokens' item %zu is not a token id below %u", i,
                         s->n_vocab);
            goto done;
        }
        ids[i] = (int32_t)x;
    }
    if (inferd_detokenize(s->engine, ids, n, &text, &len)) {
        metrics_count_request(&s->m, "/detokenize", 400);
        server_error(req, 400, "tokens", NULL, "detokenization failed");
        goto done;
    }
    buf b = BUF_INIT;
    buf_puts(&b, "{\"prompt\":");
    buf_json_str(&b, text, len);
    buf_puts(&b, "}\n");
    respond_json(s, req, "/detokenize", 200, &b);
    buf_free(&b);
done:
    free(ids);
    free(text);
    json_decref(o);
}

static void route_completions(server *s, http_request *req) { openai_completions(s, req, 0); }
static void route_chat(server *s, http_request *req) { openai_completions(s, req, 1); }
