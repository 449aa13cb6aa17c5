/*
 * test_http.c - the HTTP/1.1 layer (src/server/http.c) in process: a loop
 * thread serves test handlers on a free port while the test speaks raw
 * HTTP over sockets. Keep-alive, pipelining with late replies, chunked
 * requests and replies, limits, disconnect detection of a pending request,
 * --max-connections.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "server/http.h"

static struct event_base *base;
static http_server *srv;
static pthread_t loop_thread;
static struct event *stop_ev;
static atomic_int closed_seen;
static int port;

typedef struct later {
    http_request *req;
    struct event *ev;
} later;

static void on_later(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    later *l = arg;
    http_respond(l->req, 200, "text/plain", "late", 4);
    event_free(l->ev);
    free(l);
}

static void on_hang_close(http_request *req, void *arg) {
    (void)arg;
    atomic_fetch_add(&closed_seen, 1);
    cr_assert(http_request_closed(req));
    http_respond(req, 200, "text/plain", "x", 1); /* a no-op write; frees the request */
}

static void handler(http_request *req, void *arg) {
    (void)arg;
    const char *path = http_request_path(req);
    if (!strcmp(path, "/echo")) {
        size_t len;
        const char *body = http_request_body(req, &len);
        http_respond(req, 200, "text/plain", body, len);
    } else if (!strcmp(path, "/stream")) {
        http_stream_begin(req, 200, "text/event-stream");
        http_stream_write(req, "data: 1\n\n", 9);
        http_stream_write(req, "data: 2\n\n", 9);
        http_stream_end(req);
    } else if (!strcmp(path, "/later")) {
        later *l = calloc(1, sizeof *l);
        l->req = req;
        l->ev = evtimer_new(base, on_later, l);
        struct timeval tv = {0, 50000};
        evtimer_add(l->ev, &tv);
    } else if (!strcmp(path, "/hang")) {
        http_request_on_close(req, on_hang_close, NULL);
    } else {
        http_respond_error(req, 404, "invalid_request_error", NULL, NULL, "no such route");
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopbreak(base);
}

static void *loop_main(void *arg) {
    (void)arg;
    event_base_dispatch(base);
    return NULL;
}

static void setup(void) {
    log_set_level(LOG_ERROR);
    evthread_use_pthreads();
    base = event_base_new();
    http_params p = http_default_params();
    p.port = 0;
    p.max_body_bytes = 1000;
    p.max_header_bytes = 2000;
    p.max_connections = 4;
    p.access_log = 0;
    char err[256];
    cr_assert_eq(http_server_new(base, &p, handler, NULL, &srv, err, sizeof err), 0, "%s", err);
    port = http_server_port(srv);
    stop_ev = event_new(base, -1, 0, on_stop, NULL);
    atomic_store(&closed_seen, 0);
    pthread_create(&loop_thread, NULL, loop_main, NULL);
}

static void teardown(void) {
    event_active(stop_ev, EV_READ, 0);
    pthread_join(loop_thread, NULL);
    event_free(stop_ev);
    http_server_free(srv);
    event_base_free(base);
}

static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Reads until the peer closes, the timeout, or `until` appears. */
static size_t read_all(int fd, char *out, size_t cap, const char *until) {
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t k = recv(fd, out + n, cap - 1 - n, 0);
        if (k <= 0) break;
        n += (size_t)k;
        out[n] = 0;
        if (until && strstr(out, until)) break;
    }
    out[n] = 0;
    return n;
}

static void send_str(int fd, const char *s) { cr_assert_eq(send(fd, s, strlen(s), 0), (ssize_t)strlen(s)); }

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 20);

Test(http, keep_alive_and_404_shape) {
    int fd = dial();
    char buf[4096];
    send_str(fd, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    read_all(fd, buf, sizeof buf, "}}\n");
    cr_assert(strncmp(buf, "HTTP/1.1 404 ", 13) == 0, "%s", buf);
    cr_assert(strstr(buf, "Connection: keep-alive"), "%s", buf);
    cr_assert(strstr(buf, "{\"error\":{\"message\":\"no such route\",\"type\":\"invalid_request_error\","
                          "\"param\":null,\"code\":404}}"),
              "%s", buf);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    read_all(fd, buf, sizeof buf, "hello");
    cr_assert(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%s", buf);
    cr_assert(strstr(buf, "Content-Length: 5\r\n"), "%s", buf);
    close(fd);
}

Test(http, preflight_204_has_no_framing_headers) {
    int fd = dial();
    char buf[4096];
    send_str(fd, "OPTIONS /x HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    read_all(fd, buf, sizeof buf, "}}\n");
    cr_assert(strncmp(buf, "HTTP/1.1 204 ", 13) == 0, "%s", buf);
    const char *second = strstr(buf + 1, "HTTP/1.1 404 ");
    cr_assert_not_null(second, "the next reply follows the 204 directly: %s", buf);
    char head[2048];
    size_t n = (size_t)(second - buf) < sizeof head - 1 ? (size_t)(second - buf) : sizeof head - 1;
    memcpy(head, buf, n);
    head[n] = 0;
    cr_assert_null(strstr(head, "Content-Length"), "%s", head);
    cr_assert_null(strstr(head, "Transfer-Encoding"), "%s", head);
    close(fd);
}

Test(http, pipelined_requests_answer_in_order_with_late_replies) {
    int fd = dial();
    char buf[8192];
    send_str(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    size_t n = read_all(fd, buf, sizeof buf, NULL);
    cr_assert(n > 0);
    cr_assert_eq(count(buf, "HTTP/1.1 200 "), 3, "%s", buf);
    const char *a = strstr(buf, "late"), *b = strstr(buf, "abc"), *c = a ? strstr(a + 4, "late") : NULL;
    cr_assert(a && b && c && a < b && b < c, "order: %s", buf);
    cr_assert(strstr(buf, "Connection: close"), "%s", buf);
    close(fd);
}

Test(http, chunked_request_and_streamed_reply) {
    int fd = dial();
    char buf[4096];
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n");
    read_all(fd, buf, sizeof buf, "abcdefg");
    cr_assert(strstr(buf, "Content-Length: 7\r\n"), "%s", buf);
    cr_assert(strstr(buf, "\r\n\r\nabcdefg"), "%s", buf);
    send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    read_all(fd, buf, sizeof buf, "0\r\n\r\n");
    cr_assert(strstr(buf, "Transfer-Encoding: chunked\r\n"), "%s", buf);
    cr_assert(strstr(buf, "\r\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"), "%s", buf);
    close(fd);
}

Test(http, limits_and_malformed_requests) {
    static const struct {
        const char *req, *status;
    } cases[] = {
        {"POST /echo HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", "413"},
        {"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", "413"},
        {"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"},
        {"GET / HTTP/1.1\r\nX: 1\r\n X: folded\r\n\r\n", "400"},
        {"GET /\x01 HTTP/1.1\r\n\r\n", "400"},
        {"GET / HTTP/3.0\r\n\r\n", "505"},
        {"GET / HTTP/1.1\r\nExpect: magic\r\n\r\n", "417"},
        {"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"},
        {"GET relative HTTP/1.1\r\n\r\n", "400"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = dial();
        char buf[4096], want[32];
        send_str(fd, cases[i].req);
        read_all(fd, buf, sizeof buf, NULL); /* the server closes after an error */
        snprintf(want, sizeof want, "HTTP/1.1 %s ", cases[i].status);
        cr_assert(strncmp(buf, want, strlen(want)) == 0, "case %zu: %s", i, buf);
        cr_assert(strstr(buf, "Connection: close"), "case %zu: %s", i, buf);
        close(fd);
    }
    /* A head over max_header_bytes. */
    int fd = dial();
    char big[3000], buf[4096];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    send(fd, big, sizeof big, 0);
    read_all(fd, buf, sizeof buf, NULL);
    cr_assert(strncmp(buf, "HTTP/1.1 431 ", 13) == 0, "%s", buf);
    close(fd);
}

Test(http, disconnect_of_a_pending_request_is_seen_at_once) {
    int fd = dial();
    send_str(fd, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(100000);
    cr_assert_eq(atomic_load(&closed_seen), 0);
    close(fd);
    for (int i = 0; i < 200 && atomic_load(&closed_seen) == 0; i++) usleep(5000);
    cr_assert_eq(atomic_load(&closed_seen), 1);
}

Test(http, connections_over_the_cap_get_503) {
    int fds[4];
    for (int i = 0; i < 4; i++) fds[i] = dial();
    usleep(100000);
    int extra = dial();
    char buf[4096];
    read_all(extra, buf, sizeof buf, NULL);
    cr_assert(strncmp(buf, "HTTP/1.1 503 ", 13) == 0, "%s", buf);
    close(extra);
    close(fds[0]);
    usleep(100000);
    int again = dial();
    send_str(again, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    read_all(again, buf, sizeof buf, "}}\n");
    cr_assert(strncmp(buf, "HTTP/1.1 404 ", 13) == 0, "%s", buf);
    close(again);
    for (int i = 1; i < 4; i++) close(fds[i]);
}
