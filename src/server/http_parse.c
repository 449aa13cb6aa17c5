/*
 * http_parse.c - the HTTP/1.1 request parser of http.c: request line,
 * header lines, framing (Content-Length, chunked, Expect: 100-continue),
 * each checked against the limits in http_params. It reads from the
 * connection's input buffer and fills c->req; errors answer through
 * http_fail_request with 400, 413, 417, 431, 501 or 505.
 */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/http_int.h"

int http_is_tchar(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int header_add(http_request *r, const char *name, size_t nlen, const char *value,
                      size_t vlen) {
    if (r->n_headers == r->cap_headers) {
        uint32_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
        char **n = realloc(r->names, cap * sizeof *n);
        if (!n) return -1;
        r->names = n;
        char **v = realloc(r->values, cap * sizeof *v);
        if (!v) return -1;
        r->values = v;
        r->cap_headers = cap;
    }
    r->names[r->n_headers] = strndup(name, nlen);
    r->values[r->n_headers] = strndup(value, vlen);
    if (!r->names[r->n_headers] || !r->values[r->n_headers]) {
        free(r->names[r->n_headers]);
        free(r->values[r->n_headers]);
        return -1;
    }
    r->n_headers++;
    return 0;
}

/* "GET /path?q HTTP/1.1". Returns 0, or an HTTP status for the error. */
static int parse_request_line(http_request *r, const char *line, size_t len, const char **why) {
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1 || sp1 == line || (size_t)(sp1 - line) >= sizeof r->method) {
        *why = "malformed request line";
        return 400;
    }
    for (const char *p = line; p < sp1; p++)
        if (!http_is_tchar((unsigned char)*p)) {
            *why = "malformed method in the request line";
            return 400;
        }
    memcpy(r->method, line, (size_t)(sp1 - line));
    r->method[sp1 - line] = 0;
    const char *t = sp1 + 1;
    const char *end = line + len;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    if (!sp2 || sp2 == t) {
        *why = "malformed request line";
        return 400;
    }
    for (const char *p = t; p < sp2; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) {
            *why = "control character in the request target";
            return 400;
        }
    const char *ver = sp2 + 1;
    size_t vlen = (size_t)(end - ver);
    if (vlen == 8 && !memcmp(ver, "HTTP/1.1", 8)) r->minor = 1;
    else if (vlen == 8 && !memcmp(ver, "HTTP/1.0", 8)) r->minor = 0;
    else if (vlen == 8 && !memcmp(ver, "HTTP/", 5) && ver[5] >= '0' && ver[5] <= '9' &&
             ver[6] == '.' && ver[7] >= '0' && ver[7] <= '9') {
        r->minor = 1;
        *why = "only HTTP/1.0 and HTTP/1.1 are supported";
        return 505;
    } else {
        *why = "malformed HTTP version in the request line";
        return 400;
    }
    r->target = strndup(t, (size_t)(sp2 - t));
    if (!r->target) {
        *why = "out of memory";
        return 500;
    }
    /* origin-form "/p?q", asterisk-form "*", absolute-form "http://h/p?q" */
    const char *p = r->target;
    if (!strncasecmp(p, "http://", 7) || !strncasecmp(p, "https://", 8)) {
        p = strchr(p + 8 - (p[4] == ':'), '/');
        if (!p) p = "/";
    } else if (*p != '/' && strcmp(p, "*")) {
        *why = "the request target must start with '/'";
        return 400;
    }
    r->path_buf = strdup(p);
    if (!r->path_buf) {
        *why = "out of memory";
        return 500;
    }
    char *q = strchr(r->path_buf, '?');
    if (q) *q++ = 0;
    char *frag = strchr(q ? q : r->path_buf, '#');
    if (frag) *frag = 0;
    r->path = r->path_buf;
    r->query = q ? q : "";
    return 0;
}

static int parse_header_line(http_request *r, const char *line, size_t len, const char **why) {
    if (line[0] == ' ' || line[0] == '\t') {
        *why = "folded header lines are not allowed";
        return 400;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) {
        *why = "malformed header line (no name or no ':')";
        return 400;
    }
    for (const char *p = line; p < colon; p++)
        if (!http_is_tchar((unsigned char)*p)) {
            *why = "malformed header name";
            return 400;
        }
    const char *v = colon + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
    for (const char *p = v; p < e; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            *why = "control character in a header value";
            return 400;
        }
    }
    if (r->n_headers >= r->conn->srv->p.max_headers) {
        *why = "too many header lines";
        return 431;
    }
    if (header_add(r, line, (size_t)(colon - line), v, (size_t)(e - v))) {
        *why = "out of memory";
        return 500;
    }
    return 0;
}

int http_has_token(const char *list, const char *token) {
    size_t tl = strlen(token);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *s = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - s) == tl && !strncasecmp(s, token, tl)) return 1;
    }
    return 0;
}

/* After the blank line: framing and connection semantics. */
static int finish_head(http_conn *c, http_request *r, const char **why) {
    const http_params *p = &c->srv->p;
    const char *conn = NULL, *te = NULL, *cl = NULL, *expect = NULL;
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const char *n = r->names[i], *v = r->values[i];
        if (!strcasecmp(n, "connection")) conn = v;
        else if (!strcasecmp(n, "transfer-encoding")) {
            if (te) {
                *why = "more than one Transfer-Encoding header";
                return 400;
            }
            te = v;
        } else if (!strcasecmp(n, "content-length")) {
            if (cl && strcmp(cl, v)) {
                *why = "conflicting Content-Length headers";
                return 400;
            }
            cl = v;
        } else if (!strcasecmp(n, "expect")) expect = v;
    }
    if (r->minor == 1) r->keep_alive = !(conn && http_has_token(conn, "close"));
    else r->keep_alive = conn && http_has_token(conn, "keep-alive");
    r->head_only = !strcmp(r->method, "HEAD");
    if (te) {
        if (cl) {
            *why = "both Transfer-Encoding and Content-Length";
            return 400;
        }
        if (r->minor == 0) {
            *why = "Transfer-Encoding in an HTTP/1.0 request";
            return 400;
        }
        if (strcasecmp(te, "chunked")) {
            *why = "only Transfer-Encoding: chunked is supported";
            return 501;
        }
        r->chunked = 1;
        r->has_body = 1;
    } else if (cl) {
        uint64_t n = 0;
        if (!*cl || strlen(cl) > 18) {
            *why = "malformed Content-Length";
            return 400;
        }
        for (const char *q = cl; *q; q++) {
            if (*q < '0' || *q > '9') {
                *why = "malformed Content-Length";
                return 400;
            }
            n = n * 10 + (uint64_t)(*q - '0');
        }
        if (n > p->max_body_bytes) {
            *why = "body larger than --max-body-bytes";
            return 413;
        }
        r->content_length = n;
        r->has_body = n > 0;
    }
    if (expect) {
        if (strcasecmp(expect, "100-continue")) {
            *why = "unsupported Expect header";
            return 417;
        }
        if (r->has_body && r->minor == 1 && c->bev)
            bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

/* Reads one line of the head; NULL when more bytes are needed (or *status
 * set on error). */
static char *read_line(http_conn *c, size_t budget, size_t *n, int *status, const char **why) {
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char *line = evbuffer_readln(in, n, EVBUFFER_EOL_CRLF);
    if (!line) {
        if (evbuffer_get_length(in) > budget) {
            *status = 431;
            *why = "request line or headers larger than the limit";
        }
        return NULL;
    }
    if (*n > budget) {
        free(line);
        *status = 431;
        *why = "request line or headers larger than the limit";
        return NULL;
    }
    if (strlen(line) != *n) {
        free(line);
        *status = 400;
        *why = "NUL byte in the request head";
        return NULL;
    }
    return line;
}

enum parse_result http_parse_step(http_conn *c) {
    http_request *r = c->req;
    const http_params *p = &c->srv->p;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int status = 0;
    const char *why = NULL;
    for (;;) {
        size_t n = 0;
        char *line;
        size_t budget = p->max_header_bytes > r->head_bytes ? p->max_header_bytes - r->head_bytes : 0;
        switch (c->phase) {
        case PH_LINE:
            line = read_line(c, budget, &n, &status, &why);
            if (!line) goto more_or_fail;
            r->head_bytes += n + 2;
            if (n == 0) { /* empty lines before a request are ignored (RFC 9112 2.2) */
                r->head_bytes = 0;
                free(line);
                continue;
            }
            status = parse_request_line(r, line, n, &why);
            free(line);
            if (status) goto fail;
            c->phase = PH_HEADERS;
            continue;
        case PH_HEADERS:
        case PH_TRAILERS:
            line = read_line(c, budget, &n, &status, &why);
            if (!line) goto more_or_fail;
            r->head_bytes += n + 2;
            if (n == 0) {
                free(line);
                if (c->phase == PH_TRAILERS) return PARSE_DONE;
                status = finish_head(c, r, &why);
                if (status) goto fail;
                if (!r->has_body) return PARSE_DONE;
                c->phase = r->chunked ? PH_CHUNK_SIZE : PH_BODY_LEN;
                if (!r->chunked && buf_reserve(&r->body, (size_t)r->content_length)) {
                    status = 500;
                    why = "out of memory";
                    goto fail;
                }
                continue;
            }
            if (c->phase == PH_TRAILERS) { /* trailers are read and dropped */
                free(line);
                continue;
            }
            status = parse_header_line(r, line, n, &why);
            free(line);
            if (status) goto fail;
            continue;
        case PH_BODY_LEN: {
            size_t want = (size_t)r->content_length - r->body.len;
            size_t have = evbuffer_get_length(in);
            size_t take = have < want ? have : want;
            if (take) {
                buf_reserve(&r->body, take);
                if (r->body.oom) {
                    status = 500;
                    why = "out of memory";
                    goto fail;
                }
                evbuffer_remove(in, r->body.data + r->body.len, take);
                r->body.len += take;
                r->body.data[r->body.len] = 0;
            }
            if (r->body.len == r->content_length) return PARSE_DONE;
            return PARSE_MORE;
        }
        case PH_CHUNK_SIZE: {
            line = read_line(c, CHUNK_LINE_MAX, &n, &status, &why);
            if (!line) {
                if (status) {
                    status = 400;
                    why = "malformed chunk size line";
                }
                goto more_or_fail;
            }
            uint64_t size = 0;
            size_t i = 0;
            for (; i < n; i++) {
                char ch = line[i];
                int d = ch >= '0' && ch <= '9'   ? ch - '0'
                        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                 : -1;
                if (d < 0) break;
                if (size > (UINT64_MAX >> 4)) break;
                size = size * 16 + (uint64_t)d;
            }
            int ok = i > 0 && (i == n || line[i] == ';' || line[i] == ' ' || line[i] == '\t');
            free(line);
            if (!ok) {
                status = 400;
                why = "malformed chunk size line";
                goto fail;
            }
            if (size > p->max_body_bytes || r->body.len + size > p->max_body_bytes) {
                status = 413;
                why = "body larger than --max-body-bytes";
                goto fail;
            }
            if (size == 0) {
                c->phase = PH_TRAILERS;
                continue;
            }
            r->chunk_left = size;
            c->phase = PH_CHUNK_DATA;
            continue;
        }
        case PH_CHUNK_DATA: {
            size_t have = evbuffer_get_length(in);
            size_t take = have < r->chunk_left ? have : (size_t)r->chunk_left;
            if (!take) return PARSE_MORE;
            buf_reserve(&r->body, take);
            if (r->body.oom) {
                status = 500;
                why = "out of memory";
                goto fail;
            }
            evbuffer_remove(in, r->body.data + r->body.len, take);
            r->body.len += take;
            r->body.data[r->body.len] = 0;
            r->chunk_left -= take;
            if (r->chunk_left) return PARSE_MORE;
            c->phase = PH_CHUNK_CRLF;
            continue;
        }
        case PH_CHUNK_CRLF:
            line = read_line(c, 2, &n, &status, &why);
            if (!line) {
                if (status) {
                    status = 400;
                    why = "chunk data not followed by CRLF";
                }
                goto more_or_fail;
            }
            free(line);
            if (n) {
                status = 400;
                why = "chunk data not followed by CRLF";
                goto fail;
            }
            c->phase = PH_CHUNK_SIZE;
            continue;
        }
    }
more_or_fail:
    if (!status) return PARSE_MORE;
fail:
    http_fail_request(c, status, NULL, why);
    return PARSE_ERROR;
}
