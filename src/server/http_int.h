/*
 * http_int.h - private to the HTTP layer (http.c, http_parse.c): the
 * connection and request structs and the parser's entry points. The state
 * machine is described in http.h.
 */
#ifndef SERVER_HTTP_INT_H
#define SERVER_HTTP_INT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdint.h>

#include "base/buf.h"
#include "server/http.h"

enum conn_state { CONN_IDLE, CONN_READING, CONN_BUSY, CONN_FLUSH, CONN_LINGER };
enum read_phase {
    PH_LINE,
    PH_HEADERS,
    PH_BODY_LEN,
    PH_CHUNK_SIZE,
    PH_CHUNK_DATA,
    PH_CHUNK_CRLF,
    PH_TRAILERS
};
enum parse_result { PARSE_MORE, PARSE_DONE, PARSE_ERROR };

#define LINGER_S 2.0
#define CHUNK_LINE_MAX 1024

typedef struct http_conn http_conn;

struct http_request {
    http_conn *conn;
    char method[16];
    char *target;          /* owned: the request target as sent */
    const char *path;      /* into path_buf */
    const char *query;
    char *path_buf;        /* owned */
    int minor;             /* HTTP/1.minor */
    char **names, **values; /* owned, n_headers each */
    uint32_t n_headers, cap_headers;
    buf body;
    size_t head_bytes;
    uint64_t content_length;
    uint64_t chunk_left;
    int has_body, chunked, keep_alive, head_only;
    buf resp_headers;      /* extra response header lines */
    int streaming, status, finished, closed;
    uint64_t bytes_out;
    http_close_fn on_close;
    void *close_arg;
    double t_start;
    char id[40];
};

struct http_conn {
    http_server *srv;
    struct bufferevent *bev; /* NULL once the socket is closed */
    struct event *timer;
    enum conn_state state;
    enum read_phase phase;
    http_request *req;       /* the request being read or served */
    uint64_t id;
    uint32_t n_req;
    int in_process, reject;
    char peer[64];
    http_conn *prev, *next;
};

struct http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *accept_retry_ev; /* re-enables the listener after EMFILE */
    uint64_t accept_failures;      /* accept() errors since the last warning */
    http_params p;
    char *host, *origins;
    http_handler_fn handler;
    void *handler_arg;
    http_conn *conns;        /* every live connection, rejects included */
    uint32_t n_conns, n_busy, n_rejecting;
    uint64_t next_conn_id;
    int port, draining;
};

/* http_parse.c: parses what the input buffer holds of c->req. Returns
 * PARSE_MORE (wait for bytes), PARSE_DONE (the request is complete) or
 * PARSE_ERROR (an error reply was sent with http_fail_request). */
enum parse_result http_parse_step(http_conn *c);
/* 1 if ch may appear in an HTTP token (RFC 9110 tchar). */
int http_is_tchar(unsigned char ch);
/* 1 if the comma-separated list holds token (case-insensitive). */
int http_has_token(const char *list, const char *token);

/* http.c: answers a request that failed to parse (or timed out) with status
 * and an OpenAI-shaped error, then closes the connection. */
void http_fail_request(http_conn *c, int status, const char *code, const char *msg);

#endif
