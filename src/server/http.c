/*
 * http.c - HTTP/1.1 on libevent bufferevents: accept, connection states and
 * timeouts, dispatch to one handler, replies (fixed-length or chunked),
 * keep-alive, pipelining, CORS, graceful close. Parsing is http_parse.c; the
 * connection state machine is described in http.h.
 *
 * Built directly on bufferevents rather than evhttp: evhttp 2.1 stops reading
 * while a reply is pending (so it cannot see a client disconnect until the
 * reply is written), has no connection cap or header deadline, and sends HTML
 * error pages.
 */
#include "server/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/util.h"

static void conn_process(http_conn *c);
static void conn_free(http_conn *c);
static void conn_close_socket(http_conn *c);
static void arm_timer(http_conn *c, double seconds);
static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void request_free(http_request *r);
static void finish_request(http_request *r);

/* ===================================================================== */

http_params http_default_params(void) {
    http_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 8000;
    p.max_header_bytes = 16384;
    p.max_headers = 100;
    p.max_body_bytes = 1u << 20;
    p.max_connections = 1024;
    p.header_timeout_s = 10;
    p.idle_timeout_s = 60;
    p.allowed_origins = NULL;
    p.access_log = 1;
    return p;
}

const char *http_status_text(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                      void *arg) {
    (void)l;
    http_server *s = arg;
    s->accept_failures = 0;
    int reject = s->n_conns >= s->p.max_connections;
    if (reject && s->n_rejecting >= 64) { /* do not spend memory on a flood */
        close(fd);
        return;
    }
    http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    c->id = ++s->next_conn_id;
    c->reject = reject;
    char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
    getnameinfo(sa, (socklen_t)socklen, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(c->peer, sizeof c->peer, "%s:%s", host, port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(s->base, on_timer, c);
    if (!c->bev || !c->timer) {
        if (c->bev) bufferevent_free(c->bev);
        else close(fd);
        if (c->timer) event_free(c->timer);
        free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    struct timeval wtv;
    wtv.tv_sec = (time_t)s->p.idle_timeout_s;
    wtv.tv_usec = (suseconds_t)((s->p.idle_timeout_s - (double)wtv.tv_sec) * 1e6);
    bufferevent_set_timeouts(c->bev, NULL, &wtv); /* a client that stops reading */
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (reject) {
        s->n_rejecting++;
        c->state = CONN_READING;
        c->req = calloc(1, sizeof *c->req);
        if (!c->req) {
            conn_free(c);
            return;
        }
        c->req->conn = c;
        c->req->t_start = time_now_s();
        c->req->minor = 1;
        snprintf(c->req->id, sizeof c->req->id, "%llu-1", (unsigned long long)c->id);
        http_fail_request(c, 503, "too_many_connections", "server is at --max-connections; retry later");
        return;
    }
    s->n_conns++;
    c->state = CONN_IDLE;
    arm_timer(c, s->p.idle_timeout_s);
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    http_server *s = arg;
    if (s->listener) evconnlistener_enable(s->listener);
}

static void on_listener_error(struct evconnlistener *l, void *arg) {
    http_server *s = arg;
    int e = errno;
    /* EMFILE and friends: the pending connection stays in the backlog, so
     * the listener would be woken again at once and spin. Pause accepting
     * for 100 ms (connections close meanwhile) and warn once per episode. */
    if (s->accept_failures++ == 0)
        log_warn("http: accept failed: %s (%u connections open); pausing accepts", strerror(e),
                 s->n_conns);
    evconnlistener_disable(l);
    struct timeval tv = {0, 100 * 1000};
    if (s->accept_retry_ev) evtimer_add(s->accept_retry_ev, &tv);
}

/* Raises the soft open-file limit so that --max-connections sockets fit
 * next to the model, log and engine files (a soft limit of 1024 is common);
 * warns when the hard limit is lower. */
static void raise_fd_limit(uint32_t max_conns) {
    struct rlimit rl;
    rlim_t want = (rlim_t)max_conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want) return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < want)
        log_warn("http: the open-file limit (%llu) is below --max-connections %u + 64; accepts will pause "
                 "when it is reached",
                 (unsigned long long)rl.rlim_cur, max_conns);
}

int http_server_new(struct event_base *base, const http_params *params, http_handler_fn handler,
                    void *arg, http_server **out, char *err, size_t err_size) {
    *out = NULL;
    http_server *s = calloc(1, sizeof *s);
    if (!s) return err_set(err, err_size, INFERD_ENOMEM, "http: out of memory");
    s->base = base;
    s->p = *params;
    s->host = strdup(params->host ? params->host : "127.0.0.1");
    s->origins = params->allowed_origins && *params->allowed_origins ? strdup(params->allowed_origins)
                                                                      : NULL;
    s->p.host = s->host;
    s->p.allowed_origins = s->origins;
    s->handler = handler;
    s->handler_arg = arg;
    if (!s->host) goto nomem;

    raise_fd_limit(s->p.max_connections);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", params->port);
    int gai = getaddrinfo(s->host, port, &hints, &ai);
    if (gai != 0) {
        int rc = err_set(err, err_size, INFERD_EIO, "http: cannot resolve host '%s': %s", s->host,
                         gai_strerror(gai));
        http_server_free(s);
        return rc;
    }
    s->listener = evconnlistener_new_bind(base, on_accept, s,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                          ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (!s->listener) {
        int rc = err_set(err, err_size, INFERD_EIO, "http: cannot listen on %s:%d: %s", s->host,
                         params->port, strerror(errno));
        http_server_free(s);
        return rc;
    }
    evconnlistener_set_error_cb(s->listener, on_listener_error);
    s->accept_retry_ev = evtimer_new(base, on_accept_retry, s);
    if (!s->accept_retry_ev) goto nomem;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6) s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    *out = s;
    return 0;
nomem:
    http_server_free(s);
    return err_set(err, err_size, INFERD_ENOMEM, "http: out of memory");
}

void http_server_free(http_server *s) {
    if (!s) return;
    if (s->accept_retry_ev) event_free(s->accept_retry_ev);
    if (s->listener) evconnlistener_free(s->listener);
    while (s->conns) {
        http_conn *c = s->conns;
        if (c->req) {
            request_free(c->req);
            c->req = NULL;
        }
        conn_free(c);
    }
    free(s->host);
    free(s->origins);
    free(s);
}

int http_server_port(const http_server *s) { return s->port; }

int http_server_flushed(const http_server *s) {
    for (const http_conn *c = s->conns; c; c = c->next)
        if (c->bev && (c->state == CONN_BUSY || c->state == CONN_FLUSH) &&
            evbuffer_get_length(bufferevent_get_output(c->bev)))
            return 0;
    return 1;
}
uint32_t http_server_busy(const http_server *s) { return s->n_busy; }
uint32_t http_server_connections(const http_server *s) { return s->n_conns; }

void http_server_drain(http_server *s) {
    s->draining = 1;
    http_conn *c = s->conns;
    while (c) {
        http_conn *next = c->next;
        if (c->state == CONN_IDLE) conn_free(c);
        c = next;
    }
}

/* ===================================================================== */
/* Connections                                                           */

static void arm_timer(http_conn *c, double seconds) {
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    evtimer_add(c->timer, &tv);
}

/* Closes the socket but keeps the struct (a request may still be busy). */
static void conn_close_socket(http_conn *c) {
    if (!c->bev) return;
    bufferevent_free(c->bev);
    c->bev = NULL;
    if (c->reject) c->srv->n_rejecting--;
    else c->srv->n_conns--;
    evtimer_del(c->timer);
}

/* Frees the connection and its unfinished (not busy) request. */
static void conn_free(http_conn *c) {
    http_server *s = c->srv;
    conn_close_socket(c);
    if (c->req && c->state != CONN_BUSY) {
        request_free(c->req);
        c->req = NULL;
    }
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    event_free(c->timer);
    free(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    http_conn *c = arg;
    switch (c->state) {
    case CONN_IDLE: conn_free(c); break;
    case CONN_READING:
        http_fail_request(c, 408, "request_timeout", "the request did not arrive within --header-timeout");
        break;
    case CONN_BUSY: break;
    case CONN_FLUSH:
    case CONN_LINGER: conn_free(c); break;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    http_conn *c = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) return;
    if (c->state == CONN_BUSY && c->req && !c->req->finished) {
        http_request *r = c->req;
        conn_close_socket(c);
        r->closed = 1;
        if (r->on_close) r->on_close(r, r->close_arg);
        return; /* freed when the handler finishes the request */
    }
    conn_free(c);
}

static void on_write(struct bufferevent *bev, void *arg) {
    http_conn *c = arg;
    if (c->state != CONN_FLUSH) return;
    /* The reply is out: shut our side, then drain the peer's bytes until it
     * closes, so that unread input does not turn into a reset that could
     * destroy the reply in flight. */
    shutdown(bufferevent_getfd(bev), SHUT_WR);
    c->state = CONN_LINGER;
    arm_timer(c, LINGER_S);
}

static void on_read(struct bufferevent *bev, void *arg) {
    http_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    switch (c->state) {
    case CONN_IDLE:
    case CONN_READING: conn_process(c); break;
    case CONN_BUSY:
        /* Pipelined bytes wait; a client that sends far more than one
         * request's worth is not read further until the reply is done. */
        if (evbuffer_get_length(in) > c->srv->p.max_header_bytes + c->srv->p.max_body_bytes)
            bufferevent_disable(bev, EV_READ);
        break;
    case CONN_FLUSH:
    case CONN_LINGER: evbuffer_drain(in, evbuffer_get_length(in)); break;
    }
}

static void request_start(http_conn *c) {
    http_request *r = calloc(1, sizeof *r);
    c->req = r;
    if (!r) return;
    r->conn = c;
    r->minor = 1;
    r->t_start = time_now_s();
    snprintf(r->id, sizeof r->id, "%llu-%u", (unsigned long long)c->id, ++c->n_req);
    c->phase = PH_LINE;
    c->state = CONN_READING;
    arm_timer(c, c->srv->p.header_timeout_s);
}

static int origin_allowed(const http_server *s, const char *origin) {
    if (!s->origins || !origin) return 0;
    if (!strcmp(s->origins, "*")) return 1;
    return http_has_token(s->origins, origin);
}

static void dispatch(http_conn *c) {
    http_server *s = c->srv;
    http_request *r = c->req;
    evtimer_del(c->timer);
    c->state = CONN_BUSY;
    s->n_busy++;
    if (!strcmp(r->method, "OPTIONS")) {
        /* CORS preflight (and any OPTIONS): answered here, before auth. */
        const char *origin = http_request_header(r, "origin");
        if (origin_allowed(s, origin)) {
            const char *rh = http_request_header(r, "access-control-request-headers");
            int ok = rh && strlen(rh) < 512;
            for (const char *q = rh; ok && *q; q++)
                if (!http_is_tchar((unsigned char)*q) && *q != ',' && *q != ' ') ok = 0;
            http_add_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            http_add_header(r, "Access-Control-Allow-Headers", ok ? rh : "Authorization, Content-Type");
            http_add_header(r, "Access-Control-Max-Age", "86400");
        }
        http_add_header(r, "Allow", "GET, POST, OPTIONS");
        http_respond(r, 204, NULL, NULL, 0);
        return;
    }
    s->handler(r, s->handler_arg);
}

static void conn_process(http_conn *c) {
    if (c->in_process) return;
    c->in_process = 1;
    while (c->bev && (c->state == CONN_IDLE || c->state == CONN_READING)) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (c->state == CONN_IDLE) {
            if (evbuffer_get_length(in) == 0) break;
            request_start(c);
            if (!c->req) {
                c->in_process = 0;
                conn_free(c);
                return;
            }
        }
        enum parse_result pr = http_parse_step(c);
        if (pr != PARSE_DONE) break;
        dispatch(c);
    }
    c->in_process = 0;
}

/* An error found by the parser (or a timeout): reply and close. */
void http_fail_request(http_conn *c, int status, const char *code, const char *msg) {
    http_server *s = c->srv;
    http_request *r = c->req;
    evtimer_del(c->timer);
    c->state = CONN_BUSY;
    s->n_busy++;
    r->keep_alive = 0;
    const char *type = status >= 500 && status != 503 && status != 505 ? "server_error"
                                                                        : "invalid_request_error";
    http_respond_error(r, status, type, NULL, code, msg ? msg : http_status_text(status));
}

/* ===================================================================== */
/* Requests                                                              */

static void request_free(http_request *r) {
    if (!r) return;
    for (uint32_t i = 0; i < r->n_headers; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    free(r->target);
    free(r->path_buf);
    buf_free(&r->body);
    buf_free(&r->resp_headers);
    free(r);
}

const char *http_request_method(const http_request *r) { return r->method[0] ? r->method : "-"; }
const char *http_request_path(const http_request *r) { return r->path ? r->path : "-"; }
const char *http_request_query(const http_request *r) { return r->query ? r->query : ""; }
const char *http_request_id(const http_request *r) { return r->id; }
int http_request_closed(const http_request *r) { return r->closed; }
double http_request_age_s(const http_request *r) { return time_now_s() - r->t_start; }

const char *http_request_header(const http_request *r, const char *name) {
    for (uint32_t i = 0; i < r->n_headers; i++)
        if (!strcasecmp(r->names[i], name)) return r->values[i];
    return NULL;
}

const char *http_request_body(const http_request *r, size_t *len) {
    *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

void http_request_on_close(http_request *r, http_close_fn fn, void *arg) {
    r->on_close = fn;
    r->close_arg = arg;
}

size_t http_request_pending_output(const http_request *r) {
    if (r->closed || !r->conn->bev) return 0;
    return evbuffer_get_length(bufferevent_get_output(r->conn->bev));
}

void http_add_header(http_request *r, const char *name, const char *value) {
    buf_printf(&r->resp_headers, "%s: %s\r\n", name, value);
}

static void write_head(http_request *r, int status, const char *content_type, long long length) {
    http_conn *c = r->conn;
    http_server *s = c->srv;
    if (s->draining) r->keep_alive = 0;
    r->status = status;
    buf h = BUF_INIT;
    buf_printf(&h, "HTTP/1.%d %d %s\r\nServer: inferd\r\nX-Request-Id: %s\r\n", r->minor, status,
               http_status_text(status), r->id);
    if (content_type) buf_printf(&h, "Content-Type: %s\r\n", content_type);
    if (status == 204) /* no body, and no framing fields (RFC 9110 8.6) */
        ;
    else if (length >= 0) buf_printf(&h, "Content-Length: %lld\r\n", length);
    else if (r->minor == 1) buf_puts(&h, "Transfer-Encoding: chunked\r\n");
    if (r->keep_alive)
        buf_printf(&h, "Connection: keep-alive\r\nKeep-Alive: timeout=%d\r\n", (int)s->p.idle_timeout_s);
    else buf_puts(&h, "Connection: close\r\n");
    const char *origin = http_request_header(r, "origin");
    if (origin_allowed(s, origin)) {
        buf_printf(&h, "Access-Control-Allow-Origin: %s\r\n", strcmp(s->origins, "*") ? origin : "*");
        buf_puts(&h, "Access-Control-Expose-Headers: X-Request-Id, Retry-After\r\nVary: Origin\r\n");
    }
    if (r->resp_headers.len) buf_append(&h, r->resp_headers.data, r->resp_headers.len);
    buf_puts(&h, "\r\n");
    if (!h.oom && c->bev) bufferevent_write(c->bev, h.data, h.len);
    r->bytes_out += h.len;
    buf_free(&h);
}

void http_respond(http_request *r, int status, const char *content_type, const char *body,
                  size_t len) {
    if (r->finished) return;
    if (!r->closed) {
        write_head(r, status, content_type, (long long)len);
        if (len && !r->head_only && r->conn->bev) bufferevent_write(r->conn->bev, body, len);
        r->bytes_out += len;
    }
    finish_request(r);
}

void http_respond_error(http_request *r, int status, const char *type, const char *param,
                        const char *code, const char *msg) {
    buf b = BUF_INIT;
    buf_puts(&b, "{\"error\":{\"message\":");
    buf_json_str(&b, msg, strlen(msg));
    buf_puts(&b, ",\"type\":");
    buf_json_str(&b, type, strlen(type));
    buf_puts(&b, ",\"param\":");
    if (param) buf_json_str(&b, param, strlen(param));
    else buf_puts(&b, "null");
    buf_puts(&b, ",\"code\":");
    if (code) buf_json_str(&b, code, strlen(code));
    else buf_printf(&b, "%d", status);
    buf_puts(&b, "}}\n");
    if (b.oom) http_respond(r, 500, "text/plain", "out of memory\n", 14);
    else http_respond(r, status, "application/json", b.data, b.len);
    buf_free(&b);
}

void http_stream_begin(http_request *r, int status, const char *content_type) {
    if (r->finished || r->streaming) return;
    r->streaming = 1;
    if (r->minor == 0) r->keep_alive = 0; /* no chunked encoding: the close ends the body */
    if (!r->closed) write_head(r, status, content_type, -1);
}

int http_stream_write(http_request *r, const char *data, size_t len) {
    if (r->finished || r->closed || !r->conn->bev) return -1;
    if (!len) return 0;
    if (r->minor == 1) {
        char hdr[24];
        int n = snprintf(hdr, sizeof hdr, "%zx\r\n", len);
        bufferevent_write(r->conn->bev, hdr, (size_t)n);
        bufferevent_write(r->conn->bev, data, len);
        bufferevent_write(r->conn->bev, "\r\n", 2);
    } else {
        bufferevent_write(r->conn->bev, data, len);
    }
    r->bytes_out += len;
    return 0;
}

void http_stream_end(http_request *r) {
    if (r->finished) return;
    if (!r->closed && r->conn->bev && r->minor == 1) bufferevent_write(r->conn->bev, "0\r\n\r\n", 5);
    finish_request(r);
}

static void access_log(http_request *r) {
    buf f = BUF_INIT;
    buf_puts(&f, "\"req_id\":");
    buf_json_str(&f, r->id, strlen(r->id));
    buf_puts(&f, ",\"method\":");
    const char *m = http_request_method(r), *p = http_request_path(r);
    buf_json_str(&f, m, strlen(m));
    buf_puts(&f, ",\"path\":");
    buf_json_str(&f, p, strlen(p));
    buf_printf(&f, ",\"status\":%d,\"bytes\":%llu,\"ms\":%.1f,\"client_closed\":%s,\"peer\":", r->status,
               (unsigned long long)r->bytes_out, http_request_age_s(r) * 1e3,
               r->closed ? "true" : "false");
    buf_json_str(&f, r->conn->peer, strlen(r->conn->peer));
    if (!f.oom) log_fields(LOG_INFO, "request", f.data);
    buf_free(&f);
}

static void finish_request(http_request *r) {
    http_conn *c = r->conn;
    http_server *s = c->srv;
    r->finished = 1;
    if (s->p.access_log) access_log(r);
    if (s->n_busy) s->n_busy--;
    int keep = r->keep_alive && !r->closed && !s->draining && !c->reject;
    c->req = NULL;
    request_free(r);
    if (!c->bev) { /* the client went away while we were busy */
        conn_free(c);
        return;
    }
    if (!keep) {
        c->state = CONN_FLUSH;
        bufferevent_enable(c->bev, EV_READ); /* read and drop until the peer closes */
        arm_timer(c, s->p.idle_timeout_s);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) on_write(c->bev, c);
        return;
    }
    c->state = CONN_IDLE;
    arm_timer(c, s->p.idle_timeout_s);
    bufferevent_enable(c->bev, EV_READ);
    if (!c->in_process && evbuffer_get_length(bufferevent_get_input(c->bev))) conn_process(c);
}
