/*
 * openai.c - POST /v1/completions and POST /v1/chat/completions: validate
 * (openai_req.c), build prompts (chat.c for messages), submit to the engine,
 * then turn the engine's events into OpenAI responses, whole or streamed as
 * server-sent events. One `gen` per HTTP request; one engine request per
 * prompt (a `sub`), each with n choices. A gen lives until every choice of
 * every sub has its FINISH event, even when the client left (its sequences
 * are aborted) or an error was already sent.
 */
#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "server/openai_req.h"
#include "server/server_int.h"
#include "tok/tokenizer.h"

/* Where one logprobs entry starts in a choice's lp_* buffers, and where its
 * token's piece starts in the generated text. */
typedef struct lp_mark {
    size_t tokens, values, top, offsets;
    size_t raw;
} lp_mark;

typedef struct gen_choice {
    buf text;                 /* whole replies: the text so far (after the echo) */
    buf lp_tokens, lp_values, lp_top, lp_offsets; /* whole replies: logprobs parts */
    uint32_t n_lp;
    lp_mark *marks;           /* whole replies: where each logprobs entry starts */
    size_t raw_bytes;         /* bytes of the tokens' pieces so far (stop trimming) */
    size_t text_bytes;        /* bytes of text produced (offsets) */
    enum inferd_finish_reason reason;
    uint32_t completion_tokens;
    int finished, started;
    int queued;               /* counted in server.n_unstarted */
    double t_first, t_last;
} gen_choice;

typedef struct gen_sub {
    struct gen *g;
    inferd_request_id id;
    uint32_t prompt_index;
    uint32_t prompt_tokens, cached_tokens;
    uint32_t n_finished;
    int submitted;
    char *echo;               /* owned: the prompt text, when echo */
    size_t echo_len;
} gen_sub;

struct gen {
    server *s;
    http_request *req;        /* NULL once the reply is finished */
    gen *prev, *next;
    int chat, stream, include_usage, logprobs;
    uint32_t n;               /* choices per prompt */
    gen_sub *subs;
    size_t n_subs;
    gen_choice *choices;      /* n_subs * n */
    char id[48];
    int64_t created;
    double t0;
    int status;               /* HTTP status of the reply (metrics) */
    int client_closed;
    int counted;              /* already in llm_requests_total */
};

static const char *finish_text(enum inferd_finish_reason r) {
    switch (r) {
    case INFERD_FINISH_STOP: return "stop";
    case INFERD_FINISH_LENGTH: return "length";
    case INFERD_FINISH_ABORT: return "abort";
    case INFERD_FINISH_ERROR: return "error";
    default: return "stop";
    }
}

static void put_logprob(buf *b, float lp) {
    if (isfinite(lp)) buf_printf(b, "%.7g", (double)lp);
    else buf_puts(b, "-9999.0"); /* JSON has no -inf; OpenAI's convention */
}

static void token_piece(server *s, int32_t id, const char **data, size_t *len) {
    if (!s->tok || tok_piece(s->tok, id, 1, data, len)) {
        *data = "";
        *len = 0;
    }
}

static void put_bytes(buf *b, const char *d, size_t n) {
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) buf_printf(b, "%s%u", i ? "," : "", (unsigned char)d[i]);
    buf_putc(b, ']');
}

/* Chat logprobs entry of one token: {"token","logprob","bytes","top_logprobs"}. */
static void chat_lp_entry(server *s, buf *b, const inferd_event *ev) {
    const char *d;
    size_t n;
    token_piece(s, ev->token, &d, &n);
    buf_puts(b, "{\"token\":");
    buf_json_str(b, d, n);
    buf_puts(b, ",\"logprob\":");
    put_logprob(b, ev->logprob);
    buf_puts(b, ",\"bytes\":");
    put_bytes(b, d, n);
    buf_puts(b, ",\"top_logprobs\":[");
    for (uint32_t i = 0; i < ev->n_top; i++) {
        token_piece(s, ev->top[i].token, &d, &n);
        buf_puts(b, i ? ",{\"token\":" : "{\"token\":");
        buf_json_str(b, d, n);
        buf_puts(b, ",\"logprob\":");
        put_logprob(b, ev->top[i].logprob);
        buf_puts(b, ",\"bytes\":");
        put_bytes(b, d, n);
        buf_putc(b, '}');
    }
    buf_puts(b, "]}");
}

/* Completions logprobs parts of one token, appended to the four lists. */
static void cmpl_lp_parts(server *s, gen_choice *c, const inferd_event *ev, size_t offset, buf *tokens,
                          buf *values, buf *top, buf *offsets) {
    const char *d;
    size_t n;
    const char *sep = c->n_lp ? "," : "";
    token_piece(s, ev->token, &d, &n);
    buf_puts(tokens, sep);
    buf_json_str(tokens, d, n);
    buf_puts(values, sep);
    put_logprob(values, ev->logprob);
    buf_puts(top, sep);
    buf_putc(top, '{');
    /* As vLLM: the sampled token always has its entry (first when it is not
     * among the top ones), so logprobs=0 gives {token: logprob}, not {}. */
    int has_sampled = 0;
    for (uint32_t i = 0; i < ev->n_top; i++) has_sampled |= ev->top[i].token == ev->token;
    if (!has_sampled) {
        buf_json_str(top, d, n);
        buf_putc(top, ':');
        put_logprob(top, ev->logprob);
    }
    for (uint32_t i = 0; i < ev->n_top; i++) {
        token_piece(s, ev->top[i].token, &d, &n);
        if (i || !has_sampled) buf_putc(top, ',');
        buf_json_str(top, d, n);
        buf_putc(top, ':');
        put_logprob(top, ev->top[i].logprob);
    }
    buf_putc(top, '}');
    buf_printf(offsets, "%s%zu", sep, offset);
}

static void chunk_head(gen *g, buf *b) {
    server *s = g->s;
    buf_printf(b, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", g->id,
               g->chat ? "chat.completion.chunk" : "text_completion", (long long)g->created);
    buf_json_str(b, s->model_name, strlen(s->model_name));
    buf_puts(b, ",\"choices\":[");
}

static void chunk_tail(gen *g, buf *b) {
    buf_puts(b, "]");
    if (g->include_usage) buf_puts(b, ",\"usage\":null");
    buf_puts(b, "}\n\n");
}

static void send_chunk(gen *g, buf *b) {
    if (!g->req || b->oom) return;
    http_stream_write(g->req, b->data, b->len);
}

/* Streams one delta of a choice (text and/or logprobs, or the finish). */
static void stream_delta(gen *g, uint32_t index, gen_choice *c, const inferd_event *ev) {
    server *s = g->s;
    buf b = BUF_INIT;
    int is_finish = ev->type == INFERD_EVENT_FINISH;
    int has_lp = g->logprobs >= 0 && ev->token >= 0 && !is_finish;
    if (g->chat && !c->started) { /* the first chunk of a chat choice carries the role */
        chunk_head(g, &b);
        buf_printf(&b, "{\"index\":%u,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                       "\"logprobs\":null,\"finish_reason\":null}",
                   index);
        chunk_tail(g, &b);
    }
    c->started = 1;
    if (!is_finish && ev->text_len == 0 && !has_lp) goto send;
    chunk_head(g, &b);
    buf_printf(&b, "{\"index\":%u,", index);
    if (g->chat) {
        if (is_finish || (ev->text_len == 0 && !has_lp)) buf_puts(&b, "\"delta\":{}");
        else {
            buf_puts(&b, "\"delta\":{\"content\":");
            buf_json_str(&b, ev->text ? ev->text : "", ev->text_len);
            buf_putc(&b, '}');
        }
        buf_puts(&b, ",\"logprobs\":");
        if (has_lp) {
            buf_puts(&b, "{\"content\":[");
            chat_lp_entry(s, &b, ev);
            buf_puts(&b, "]}");
        } else buf_puts(&b, "null");
    } else {
        buf_puts(&b, "\"text\":");
        buf_json_str(&b, ev->text ? ev->text : "", is_finish ? 0 : ev->text_len);
        buf_puts(&b, ",\"logprobs\":");
        if (has_lp) {
            buf t = BUF_INIT, v = BUF_INIT, top = BUF_INIT, off = BUF_INIT;
            uint32_t saved = c->n_lp;
            c->n_lp = 0;
            cmpl_lp_parts(s, c, ev, c->text_bytes, &t, &v, &top, &off);
            c->n_lp = saved;
            buf_printf(&b, "{\"tokens\":[%s],\"token_logprobs\":[%s],\"top_logprobs\":[%s],\"text_offset\":[%s]}",
                       t.data ? t.data : "", v.data ? v.data : "", top.data ? top.data : "",
                       off.data ? off.data : "");
            buf_free(&t);
            buf_free(&v);
            buf_free(&top);
            buf_free(&off);
        } else buf_puts(&b, "null");
    }
    if (is_finish) buf_printf(&b, ",\"finish_reason\":\"%s\"}", finish_text(ev->finish_reason));
    else buf_puts(&b, ",\"finish_reason\":null}");
    chunk_tail(g, &b);
send:
    send_chunk(g, &b);
    buf_free(&b);
}

static void usage_json(gen *g, buf *b) {
    uint64_t prompt = 0, completion = 0, cached = 0;
    for (size_t i = 0; i < g->n_subs; i++) {
        prompt += g->subs[i].prompt_tokens;
        cached += g->subs[i].cached_tokens;
    }
    for (size_t i = 0; i < g->n_subs * g->n; i++) completion += g->choices[i].completion_tokens;
    buf_printf(b,
               "{\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"total_tokens\":%llu,"
               "\"prompt_tokens_details\":{\"cached_tokens\":%llu}}",
               (unsigned long long)prompt, (unsigned long long)completion,
               (unsigned long long)(prompt + completion), (unsigned long long)cached);
}

static void respond_whole(gen *g) {
    server *s = g->s;
    buf b = BUF_INIT;
    buf_printf(&b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", g->id,
               g->chat ? "chat.completion" : "text_completion", (long long)g->created);
    buf_json_str(&b, s->model_name, strlen(s->model_name));
    buf_puts(&b, ",\"choices\":[");
    for (size_t i = 0; i < g->n_subs * g->n; i++) {
        gen_choice *c = &g->choices[i];
        gen_sub *sub = &g->subs[i / g->n];
        if (i) buf_putc(&b, ',');
        buf_printf(&b, "{\"index\":%zu,", i);
        if (g->chat) {
            buf_puts(&b, "\"message\":{\"role\":\"assistant\",\"content\":");
            buf_json_str(&b, c->text.data ? c->text.data : "", c->text.len);
            buf_puts(&b, "},\"logprobs\":");
            if (g->logprobs >= 0) buf_printf(&b, "{\"content\":[%s]}", c->lp_tokens.data ? c->lp_tokens.data : "");
            else buf_puts(&b, "null");
        } else {
            buf_puts(&b, "\"text\":");
            if (sub->echo_len) {
                buf whole = BUF_INIT;
                buf_append(&whole, sub->echo, sub->echo_len);
                buf_append(&whole, c->text.data ? c->text.data : "", c->text.len);
                buf_json_str(&b, whole.data ? whole.data : "", whole.len);
                buf_free(&whole);
            } else buf_json_str(&b, c->text.data ? c->text.data : "", c->text.len);
            buf_puts(&b, ",\"logprobs\":");
            if (g->logprobs >= 0)
                buf_printf(&b, "{\"tokens\":[%s],\"token_logprobs\":[%s],\"top_logprobs\":[%s],\"text_offset\":[%s]}",
                           c->lp_tokens.data ? c->lp_tokens.data : "", c->lp_values.data ? c->lp_values.data : "",
                           c->lp_top.data ? c->lp_top.data : "", c->lp_offsets.data ? c->lp_offsets.data : "");
            else buf_puts(&b, "null");
        }
        buf_printf(&b, ",\"finish_reason\":\"%s\"}", finish_text(c->reason));
    }
    buf_puts(&b, "],\"usage\":");
    usage_json(g, &b);
    buf_puts(&b, "}\n");
    if (b.oom) {
        g->status = 500;
        server_error(g->req, 500, NULL, NULL, "out of memory");
    } else {
        g->status = 200;
        http_respond(g->req, 200, "application/json", b.data, b.len);
    }
    buf_free(&b);
}

static void gen_free(gen *g) {
    for (size_t i = 0; i < g->n_subs; i++) free(g->subs[i].echo);
    for (size_t i = 0; i < g->n_subs * g->n && g->choices; i++) {
        gen_choice *c = &g->choices[i];
        if (c->queued) g->s->n_unstarted--;
        buf_free(&c->text);
        buf_free(&c->lp_tokens);
        buf_free(&c->lp_values);
        buf_free(&c->lp_top);
        buf_free(&c->lp_offsets);
        free(c->marks);
    }
    free(g->subs);
    free(g->choices);
    free(g);
}

static void gen_unlink(gen *g) {
    server *s = g->s;
    if (g->prev) g->prev->next = g->next;
    else if (s->gens == g) s->gens = g->next;
    if (g->next) g->next->prev = g->prev;
    g->prev = g->next = NULL;
    s->n_gens--;
}

/* Every choice finished: reply (if nobody did), count, free. */
static void gen_complete(gen *g) {
    server *s = g->s;
    int error = 0;
    for (size_t i = 0; i < g->n_subs * g->n; i++) error |= g->choices[i].reason == INFERD_FINISH_ERROR;
    if (g->req) {
        http_request_on_close(g->req, NULL, NULL);
        if (g->stream) {
            buf b = BUF_INIT;
            if (error)
                buf_puts(&b, "data: {\"error\":{\"message\":\"generation failed\",\"type\":\"server_error\","
                             "\"param\":null,\"code\":500}}\n\n");
            if (g->include_usage) {
                chunk_head(g, &b);
                buf_puts(&b, "],\"usage\":");
                usage_json(g, &b);
                buf_puts(&b, "}\n\n");
            }
            buf_puts(&b, "data: [DONE]\n\n");
            send_chunk(g, &b);
            buf_free(&b);
            http_stream_end(g->req);
        } else if (error) {
            g->status = 500;
            server_error(g->req, 500, NULL, NULL, "generation failed");
        } else {
            respond_whole(g);
        }
        g->req = NULL;
    }
    /* A client that left before the end is counted as 499 (nginx's "client
     * closed request"). */
    if (!g->counted)
        metrics_count_request(&s->m, g->chat ? "/v1/chat/completions" : "/v1/completions",
                              g->client_closed ? 499 : g->status);
    double now = time_now_s();
    gen_choice *c0 = &g->choices[0];
    if (c0->t_first > 0) {
        metrics_observe(&s->m.ttft, c0->t_first - g->t0);
        if (c0->completion_tokens > 1)
            metrics_observe(&s->m.tpot, (c0->t_last - c0->t_first) / (c0->completion_tokens - 1));
    }
    metrics_observe(&s->m.e2e, now - g->t0);
    for (size_t i = 0; i < g->n_subs; i++) s->m.prompt_tokens += g->subs[i].prompt_tokens;
    for (size_t i = 0; i < g->n_subs * g->n; i++) s->m.generation_tokens += g->choices[i].completion_tokens;
    gen_unlink(g);
    gen_free(g);
    server_check_drained(s);
}

/* Bytes the engine's detokenizer gets for token id (specials give none). */
static size_t raw_piece_len(server *s, int32_t id) {
    const char *d;
    size_t n;
    if (!s->tok || tok_piece(s->tok, id, 0, &d, &n)) return 0;
    return n;
}

/* A stop string cut the text: drop the logprobs entries of tokens whose
 * pieces start at or after the cut, so the entries match the text returned.
 * Tokens that give no text (end of generation) are kept, as before. */
static void trim_after_stop(gen_choice *c) {
    for (uint32_t i = 0; i < c->n_lp && c->marks; i++) {
        size_t end = i + 1 < c->n_lp ? c->marks[i + 1].raw : c->raw_bytes;
        if (c->marks[i].raw < c->text_bytes || end == c->marks[i].raw) continue;
        c->lp_tokens.len = c->marks[i].tokens;
        c->lp_values.len = c->marks[i].values;
        c->lp_top.len = c->marks[i].top;
        c->lp_offsets.len = c->marks[i].offsets;
        buf *bs[4] = {&c->lp_tokens, &c->lp_values, &c->lp_top, &c->lp_offsets};
        for (int k = 0; k < 4; k++)
            if (bs[k]->data) bs[k]->data[bs[k]->len] = '\0';
        c->n_lp = i;
        return;
    }
}

static void handle_event(server *s, const inferd_event *ev) {
    gen_sub *sub = ev->user;
    if (!sub) return;
    gen *g = sub->g;
    if (ev->choice >= g->n) return;
    uint32_t index = sub->prompt_index * g->n + ev->choice;
    gen_choice *c = &g->choices[index];
    if (c->finished) return;
    if (c->queued) { /* it left the queue: it runs, or it ended */
        c->queued = 0;
        s->n_unstarted--;
    }
    double now = time_now_s();
    if (ev->type == INFERD_EVENT_TOKEN) {
        if (ev->token >= 0) {
            if (c->t_first == 0) c->t_first = now;
            c->t_last = now;
        }
        if (g->req && g->stream) {
            stream_delta(g, index, c, ev);
        } else if (g->req) {
            if (g->logprobs >= 0 && ev->token >= 0) {
                lp_mark *m = realloc(c->marks, (c->n_lp + 1) * sizeof *m);
                if (m) {
                    c->marks = m;
                    m[c->n_lp] = (lp_mark){c->lp_tokens.len, c->lp_values.len, c->lp_top.len,
                                           c->lp_offsets.len, c->raw_bytes};
                } else {
                    c->lp_tokens.oom = 1; /* the reply becomes a 500 */
                }
                if (g->chat) {
                    if (c->n_lp) buf_putc(&c->lp_tokens, ',');
                    chat_lp_entry(s, &c->lp_tokens, ev);
                } else {
                    cmpl_lp_parts(s, c, ev, sub->echo_len + c->text_bytes, &c->lp_tokens, &c->lp_values,
                                  &c->lp_top, &c->lp_offsets);
                }
                c->n_lp++;
            }
            buf_append(&c->text, ev->text, ev->text_len);
        }
        c->text_bytes += ev->text_len;
        if (ev->token >= 0) c->raw_bytes += raw_piece_len(s, ev->token);
        return;
    }
    /* FINISH: its text (if any) is the last delta. */
    if (ev->text_len) {
        inferd_event tail = *ev;
        tail.type = INFERD_EVENT_TOKEN;
        tail.token = -1;
        if (g->req && g->stream) stream_delta(g, index, c, &tail);
        else if (g->req) buf_append(&c->text, ev->text, ev->text_len);
        c->text_bytes += ev->text_len;
    }
    if (g->req && !g->stream && ev->finish_reason == INFERD_FINISH_STOP) trim_after_stop(c);
    c->finished = 1;
    c->reason = ev->finish_reason;
    c->completion_tokens = ev->completion_tokens;
    sub->prompt_tokens = ev->prompt_tokens;
    if (ev->cached_tokens > sub->cached_tokens) sub->cached_tokens = ev->cached_tokens;
    if (g->req && g->stream && ev->finish_reason != INFERD_FINISH_ERROR) stream_delta(g, index, c, ev);
    sub->n_finished++;
    for (size_t i = 0; i < g->n_subs; i++)
        if (g->subs[i].submitted && g->subs[i].n_finished < g->n) return;
    gen_complete(g);
}

void openai_on_engine_events(server *s) {
    if (!s->engine) return;
    inferd_event evs[64];
    size_t n;
    while ((n = inferd_engine_poll(s->engine, evs, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            handle_event(s, &evs[i]);
            inferd_event_release(&evs[i]);
        }
    }
}

static void gen_abort(gen *g) {
    for (size_t i = 0; i < g->n_subs; i++)
        if (g->subs[i].submitted && g->subs[i].n_finished < g->n) inferd_engine_abort(g->s->engine, g->subs[i].id);
}

static void on_client_close(http_request *req, void *arg) {
    (void)req;
    gen *g = arg;
    g->client_closed = 1;
    g->s->m.client_aborts++;
    gen_abort(g);
}

void openai_abort_all(server *s) {
    for (gen *g = s->gens; g; g = g->next) gen_abort(g);
}

void openai_free_all(server *s) {
    while (s->gens) {
        gen *g = s->gens;
        if (g->req) {
            http_request_on_close(g->req, NULL, NULL);
            if (g->stream) http_stream_end(g->req);
            else server_error(g->req, 503, NULL, "shutting_down", "the server shut down before the reply was ready");
            g->req = NULL;
        }
        gen_unlink(g);
        gen_free(g);
    }
}

/* ===================================================================== */
/* Submission                                                            */

/* Token ids of prompt i, malloc'd into *ids. Returns 0, or responds 400 and
 * returns -1. */
static int prompt_ids(server *s, http_request *req, oai_request *r, size_t i, gen_sub *sub, int32_t **ids,
                      size_t *n) {
    *ids = NULL;
    *n = 0;
    char err[512];
    if (r->chat) {
        int rc = chat_tokenize(s, r->messages, r->tools, r->template_kwargs, r->add_generation_prompt, ids, n,
                               err, sizeof err);
        if (rc == INFERD_EINVAL) {
            server_error(req, 400, "messages", "chat_template_error", "%s", err);
            return -1;
        } else if (rc) {
            server_error(req, 500, NULL, NULL, "%s", err);
            return -1;
        }
    } else if (r->prompts[i].text) {
        oai_prompt *p = &r->prompts[i];
        if (inferd_tokenize(s->engine, p->text, p->text_len, 1, 0, ids, n)) {
            server_error(req, 500, NULL, NULL, "tokenization of the prompt failed");
            return -1;
        }
        if (r->echo) {
            sub->echo = malloc(p->text_len + 1);
            if (sub->echo) {
                memcpy(sub->echo, p->text, p->text_len + 1);
                sub->echo_len = p->text_len;
            }
        }
    } else {
        oai_prompt *p = &r->prompts[i];
        for (size_t k = 0; k < p->n_ids; k++)
            if ((uint32_t)p->ids[k] >= s->n_vocab) {
                server_error(req, 400, "prompt", NULL, "'prompt' token id %d is not below the vocabulary size %u",
                             p->ids[k], s->n_vocab);
                return -1;
            }
        *ids = malloc(p->n_ids * sizeof **ids);
        if (!*ids) {
            server_error(req, 500, NULL, NULL, "out of memory");
            return -1;
        }
        memcpy(*ids, p->ids, p->n_ids * sizeof **ids);
        *n = p->n_ids;
        if (r->echo && inferd_detokenize(s->engine, p->ids, p->n_ids, &sub->echo, &sub->echo_len)) {
            sub->echo = NULL; /* no echo rather than a failed request */
            sub->echo_len = 0;
        }
    }
    if (*n == 0) {
        server_error(req, 400, r->chat ? "messages" : "prompt", NULL, "the prompt is empty after tokenization");
        return -1;
    }
    if (*n >= s->max_model_len) {
        server_error(req, 400, r->chat ? "messages" : "prompt", "context_length_exceeded",
                     "This model's maximum context length is %u tokens; the prompt has %zu tokens.",
                     s->max_model_len, *n);
        return -1;
    }
    return 0;
}

static void make_id(gen *g, server *s) {
    uint64_t st = time_now_ns() ^ (++s->next_gen_id * 0x9e3779b97f4a7c15ULL);
    snprintf(g->id, sizeof g->id, "%s-%016llx", g->chat ? "chatcmpl" : "cmpl", (unsigned long long)splitmix64(&st));
}

/* --max-queue counts sequences: a request of n_subs prompts with n choices
 * each needs n_subs * n places in the waiting queue, all at once (the engine
 * checks one prompt at a time). More than --max-queue ever: 400 naming n (or
 * prompt when n is 1). More than the room left now: 429 with Retry-After.
 * Returns 0, or responds and returns -1 with the status in *status. */
static int queue_room(server *s, http_request *req, const oai_request *r, size_t n_subs, int *status) {
    uint32_t max = s->p.engine.max_waiting;
    if (!max) return 0;
    uint64_t need = (uint64_t)n_subs * r->sp.n;
    if (need > max) {
        *status = 400;
        server_error(req, 400, r->sp.n > 1 ? "n" : "prompt", NULL,
                     "this request needs %llu sequences (%zu prompts x n=%u) but the waiting queue holds "
                     "at most %u (--max-queue)",
                     (unsigned long long)need, n_subs, r->sp.n, max);
        return -1;
    }
    inferd_engine_stats st;
    memset(&st, 0, sizeof st);
    inferd_engine_get_stats(s->engine, &st);
    /* The engine's count lags what it has not taken in yet; the server's
     * own count of sequences with no event yet covers that (it also counts
     * prompts being prefilled, so it errs toward refusing). */
    uint64_t waiting = st.waiting > s->n_unstarted ? st.waiting : s->n_unstarted;
    if (waiting + need > max) {
        *status = 429;
        s->m.queue_rejects++;
        http_add_header(req, "Retry-After", "1");
        server_error(req, 429, NULL, "queue_full",
                     "the waiting queue has room for %u of the %llu sequences this request needs "
                     "(--max-queue %u); retry later",
                     (unsigned)(waiting < max ? max - waiting : 0), (unsigned long long)need, max);
        return -1;
    }
    return 0;
}

void openai_completions(server *s, http_request *req, int chat) {
    const char *endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
    if (server_check_loaded(s, req)) {
        metrics_count_request(&s->m, endpoint, 503);
        return;
    }
    size_t len;
    const char *body = http_request_body(req, &len);
    oai_request r;
    oai_error e;
    if (oai_request_parse(body, len, chat, &r, &e)) {
        metrics_count_request(&s->m, endpoint, e.status);
        server_error(req, e.status, e.param, NULL, "%s", e.msg);
        return;
    }
    gen *g = NULL;
    int status = 400;
    if (server_check_model(s, req, r.model)) {
        status = 404;
        goto fail_responded;
    }
    for (size_t i = 0; i < r.n_bias; i++)
        if ((uint32_t)r.bias_ids[i] >= s->n_vocab) {
            server_error(req, 400, "logit_bias", NULL, "'logit_bias' token id %d is not below the vocabulary size %u",
                         r.bias_ids[i], s->n_vocab);
            goto fail_responded;
        }
    size_t n_subs = chat ? 1 : r.n_prompts;
    if (queue_room(s, req, &r, n_subs, &status)) goto fail_responded;
    g = calloc(1, sizeof *g);
    if (!g || !(g->subs = calloc(n_subs, sizeof *g->subs)) ||
        !(g->choices = calloc(n_subs * r.sp.n, sizeof *g->choices))) {
        status = 500;
        server_error(req, 500, NULL, NULL, "out of memory");
        goto fail_responded;
    }
    g->s = s;
    g->req = req;
    g->chat = chat;
    g->stream = r.stream;
    g->include_usage = r.include_usage;
    g->logprobs = r.logprobs;
    g->n = r.sp.n;
    g->n_subs = n_subs;
    g->created = time_unix_s();
    g->t0 = time_now_s() - http_request_age_s(req);
    make_id(g, s);
    for (size_t i = 0; i < n_subs; i++) {
        gen_sub *sub = &g->subs[i];
        sub->g = g;
        sub->prompt_index = (uint32_t)i;
        int32_t *ids;
        size_t n_ids;
        if (prompt_ids(s, req, &r, i, sub, &ids, &n_ids)) goto fail_submitted;
        inferd_request er;
        memset(&er, 0, sizeof er);
        er.prompt_ids = ids;
        er.n_prompt = n_ids;
        er.sampling = r.sp;
        er.user = sub;
        char err[512] = "";
        int rc = inferd_engine_submit(s->engine, &er, &sub->id, err, sizeof err);
        free(ids);
        if (rc == INFERD_EFULL) {
            status = 429;
            s->m.queue_rejects++;
            http_add_header(req, "Retry-After", "1");
            server_error(req, 429, NULL, "queue_full", "the waiting queue is full (--max-queue); retry later");
            goto fail_submitted;
        } else if (rc == INFERD_ETOOLONG) {
            server_error(req, 400, chat ? "messages" : "prompt", "context_length_exceeded", "%s", err);
            goto fail_submitted;
        } else if (rc) {
            server_error(req, 400, NULL, NULL, "%s", err[0] ? err : inferd_strerror(rc));
            goto fail_submitted;
        }
        sub->submitted = 1;
        sub->prompt_tokens = (uint32_t)n_ids;
        for (uint32_t k = 0; k < g->n; k++) g->choices[i * g->n + k].queued = 1;
        s->n_unstarted += g->n;
    }
    oai_request_free(&r);
    g->next = s->gens;
    if (s->gens) s->gens->prev = g;
    s->gens = g;
    s->n_gens++;
    http_request_on_close(req, on_client_close, g);
    if (g->stream) {
        http_add_header(req, "Cache-Control", "no-cache");
        http_add_header(req, "X-Accel-Buffering", "no");
        http_stream_begin(req, 200, "text/event-stream");
        g->status = 200;
        if (!chat) /* the echo goes first, as its own chunk per choice */
            for (size_t i = 0; i < n_subs * g->n; i++) {
                gen_sub *sub = &g->subs[i / g->n];
                if (!sub->echo_len) continue;
                inferd_event ev;
                memset(&ev, 0, sizeof ev);
                ev.text = sub->echo;
                ev.text_len = sub->echo_len;
                ev.token = -1;
                stream_delta(g, (uint32_t)i, &g->choices[i], &ev);
            }
    }
    return;

fail_submitted:
    /* Some prompts may already be in the engine: abort them and keep the gen
     * until their FINISH events arrive; the error reply is already sent. */
    g->req = NULL;
    g->status = status;
    metrics_count_request(&s->m, endpoint, status);
    oai_request_free(&r);
    int any = 0;
    for (size_t i = 0; i < g->n_subs; i++) any |= g->subs[i].submitted;
    if (!any) {
        gen_free(g);
        return;
    }
    g->counted = 1;
    g->next = s->gens;
    if (s->gens) s->gens->prev = g;
    s->gens = g;
    s->n_gens++;
    gen_abort(g);
    return;
fail_responded:
    metrics_count_request(&s->m, endpoint, status);
    oai_request_free(&r);
    if (g) gen_free(g);
}
