/*
 * http.h - the HTTP/1.1 server of inferd: connections, request parsing,
 * limits, keep-alive, pipelining, chunked (SSE) replies and CORS, on libevent
 * bufferevents driven by the one loop thread (DESIGN.md). Everything here runs
 * on that thread; nothing blocks.
 *
 * Connection states (one request at a time; pipelined bytes wait in the input
 * buffer and are parsed when the current reply is finished):
 *
 *   IDLE     no byte of the next request yet    timer: idle_timeout
 *   READING  head or body arriving              timer: header_timeout, counted
 *                                               from the request's first byte
 *   BUSY     handler owns the request           no read timer; reads go on so
 *                                               that a disconnect is seen at once
 *   LINGER   reply sent with Connection: close; write side shut, input
 *            discarded until EOF or 2 s, then freed
 *
 * Limits: max_header_bytes (431), max_headers (431), max_body_bytes (413),
 * max_connections (a connection over the cap gets 503 and is closed).
 * Malformed requests get 400 (505 for an unknown HTTP version, 501 for an
 * unknown Transfer-Encoding) and the connection is closed. Error bodies use
 * OpenAI's JSON error shape.
 */
#ifndef SERVER_HTTP_H
#define SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct http_server http_server;
typedef struct http_request http_request;

/* Called on the loop thread with a complete request. The handler owns the
 * request until it finishes it with http_respond() or http_stream_end(); it
 * may do so at once or later (after engine events). */
typedef void (*http_handler_fn)(http_request *req, void *arg);
/* Called once, on the loop thread, when the client goes away before the
 * request is finished. The request stays valid (writes become no-ops) until
 * the handler finishes it, which frees it. */
typedef void (*http_close_fn)(http_request *req, void *arg);

typedef struct http_params {
    const char *host;          /* address to bind (default "127.0.0.1") */
    int port;                  /* 0 = any free port (see http_server_port) */
    size_t max_header_bytes;   /* request line + headers (default 16384) */
    uint32_t max_headers;      /* header lines (default 100) */
    size_t max_body_bytes;     /* default 1 MiB */
    uint32_t max_connections;  /* open client connections (default 1024) */
    double header_timeout_s;   /* a request must arrive within this of its first byte (10) */
    double idle_timeout_s;     /* idle keep-alive connections and stalled writes (60) */
    const char *allowed_origins; /* CORS: comma-separated origins or "*"; NULL = off */
    int access_log;            /* 1 = one JSON log line per request (default 1) */
} http_params;

http_params http_default_params(void);

/* Binds host:port and starts accepting on base. handler(req, arg) gets every
 * request except CORS preflights (answered here). Returns 0 and *out, or
 * INFERD_EIO (bind/listen failed: err says why) / INFERD_ENOMEM. Strings in
 * params are copied. */
int http_server_new(struct event_base *base, const http_params *params, http_handler_fn handler,
                    void *arg, http_server **out, char *err, size_t err_size);
/* Closes every connection and frees the server. Requests still owned by a
 * handler must have been finished. Accepts NULL. */
void http_server_free(http_server *s);
/* The port actually bound (useful with port 0). */
int http_server_port(const http_server *s);
/* Drain mode: closes idle keep-alive connections and makes every later reply
 * close its connection. The socket keeps listening, so that probes and late
 * clients get an answer (the server layer answers 503 to new work) rather
 * than a refused connection; requests in flight go on. */
void http_server_drain(http_server *s);
/* Requests now owned by the handler (dispatched, not yet finished). */
uint32_t http_server_busy(const http_server *s);
/* 1 when no connection has reply bytes still waiting to be written. */
int http_server_flushed(const http_server *s);
/* Open client connections. */
uint32_t http_server_connections(const http_server *s);

/* ---- request accessors (valid until the request is finished) ---- */
const char *http_request_method(const http_request *r);   /* "GET", "POST", ... */
const char *http_request_path(const http_request *r);     /* without the query */
const char *http_request_query(const http_request *r);    /* after '?', or "" */
/* Value of the first header named name (case-insensitive), or NULL. */
const char *http_request_header(const http_request *r, const char *name);
/* The body (NUL-terminated; len may be 0). */
const char *http_request_body(const http_request *r, size_t *len);
/* Short id of the request ("<conn>-<n>"), also sent as X-Request-Id. */
const char *http_request_id(const http_request *r);
/* 1 once the client has gone away. */
int http_request_closed(const http_request *r);
/* Sets (or clears, with fn NULL) the disconnect callback. */
void http_request_on_close(http_request *r, http_close_fn fn, void *arg);
/* Seconds since the request's first byte arrived. */
double http_request_age_s(const http_request *r);

/* ---- replies ---- */
/* Adds a response header (copied); call before http_respond/http_stream_begin. */
void http_add_header(http_request *r, const char *name, const char *value);
/* Sends a complete reply and finishes (frees) the request. */
void http_respond(http_request *r, int status, const char *content_type, const char *body,
                  size_t len);
/* Sends an error reply in OpenAI's shape:
 * {"error":{"message":msg,"type":type,"param":param|null,"code":code|null}}
 * and finishes the request. */
void http_respond_error(http_request *r, int status, const char *type, const char *param,
                        const char *code, const char *msg);
/* Starts a chunked reply (status, content type); http_stream_write sends one
 * chunk each; http_stream_end sends the last chunk and finishes the request.
 * http_stream_write returns 0, or -1 when the client is gone (nothing sent). */
void http_stream_begin(http_request *r, int status, const char *content_type);
int http_stream_write(http_request *r, const char *data, size_t len);
void http_stream_end(http_request *r);
/* Bytes queued for the client and not yet written (for back-pressure). */
size_t http_request_pending_output(const http_request *r);

/* The reason phrase of a status code ("Not Found"). */
const char *http_status_text(int status);

#endif
