/*
 * generate_batch.c - offline batch generation (`inferd generate --batch`):
 * read JSON lines, check them all, submit them all to one engine (which
 * batches them continuously), and write one OpenAI completion object per
 * input line, in input order, as each becomes complete.
 *
 * Input line: {"prompt": "..." or [token ids], "max_tokens": N, "temperature": T,
 * "top_p": P, "top_k": K, "min_p": M, "n": C, "seed": S, "stop": "..." or
 * [...], "ignore_eos": bool, "presence_penalty", "frequency_penalty",
 * "repetition_penalty"}; only prompt is required; unknown fields are errors.
 */
#include "cli/generate_batch.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "engine/engine.h"

#define BATCH_MAX_LINE_BYTES (16u << 20)
#define BATCH_MAX_N 128

typedef struct bline {
    size_t lineno;        /* 1-based line of the input file */
    char *prompt;         /* text, or NULL when the line gave token ids */
    int32_t *ids;
    size_t n_ids;
    inferd_sampling_params sp;
    char **stops;
    size_t n_stop;
    inferd_request_id id;
    buf *text;            /* (sp.n) */
    enum inferd_finish_reason *reason; /* (sp.n) */
    uint32_t *n_gen0;     /* (sp.n) tokens seen per choice */
    uint32_t completion_tokens, n_finished;
} bline;

typedef struct batch {
    bline *lines;
    size_t n, cap;
} batch;

static int parse_line(const char *text, size_t lineno, const batch_defaults *def, bline *out);
static void bline_free(bline *l);
static int write_line(FILE *f, const bline *l, size_t index, const char *model, int64_t created);
static void progress(size_t done, size_t total, uint64_t gen, double secs);

int generate_batch_run(const inferd_engine_params *ep, const char *in_path, const char *out_path,
                       const batch_defaults *def) {
    int rc = 1;
    batch b = {0};
    inferd_engine *e = NULL;
    FILE *in = NULL, *out = NULL;
    char *line = NULL;
    size_t lcap = 0;
    char err[512] = "";

    in = strcmp(in_path, "-") ? fopen(in_path, "r") : stdin;
    if (!in) {
        fprintf(stderr, "generate: cannot open '%s': %s\n", in_path, strerror(errno));
        return 1;
    }
    ssize_t len;
    size_t lineno = 0;
    while ((len = getline(&line, &lcap, in)) >= 0) {
        lineno++;
        if ((size_t)len > BATCH_MAX_LINE_BYTES) {
            fprintf(stderr, "generate: %s:%zu: line of %zd bytes is over the limit (%u)\n",
                    in_path, lineno, len, BATCH_MAX_LINE_BYTES);
            goto done;
        }
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' ||
                                   line[k] == '\n'))
            k++;
        if (k == (size_t)len) continue; /* blank */
        if (b.n == b.cap) {
            size_t cap = b.cap ? b.cap * 2 : 64;
            bline *p = realloc(b.lines, cap * sizeof *p);
            if (!p) goto oom;
            b.lines = p;
            b.cap = cap;
        }
        if (parse_line(line, lineno, def, &b.lines[b.n])) {
            fprintf(stderr, "generate: %s:%zu: %s\n", in_path, lineno,
                    b.lines[b.n].prompt ? b.lines[b.n].prompt : "bad line");
            bline_free(&b.lines[b.n]);
            goto done;
        }
        b.n++;
    }
    if (in != stdin) fclose(in);
    in = NULL;
    if (b.n == 0) {
        fprintf(stderr, "generate: '%s' has no requests\n", in_path);
        goto done;
    }
    out = (!out_path || !strcmp(out_path, "-")) ? stdout : fopen(out_path, "w");
    if (!out) {
        fprintf(stderr, "generate: cannot write '%s': %s\n", out_path, strerror(errno));
        goto done;
    }

    if (inferd_engine_new(ep, &e, err, sizeof err)) {
        fprintf(stderr, "generate: cannot start the engine on '%s': %s\n", ep->model_path, err);
        goto done;
    }
    double t0 = time_now_s();
    uint64_t prompt_tokens = 0, choices = 0;
    for (size_t i = 0; i < b.n; i++) {
        bline *l = &b.lines[i];
        if (!l->ids && inferd_tokenize(e, l->prompt, strlen(l->prompt), 1, 0, &l->ids, &l->n_ids)) {
            fprintf(stderr, "generate: %s:%zu: cannot tokenize the prompt\n", in_path, l->lineno);
            goto done;
        }
        inferd_request req = {.prompt_ids = l->ids, .n_prompt = l->n_ids, .sampling = l->sp,
                              .user = l};
        int src = inferd_engine_submit(e, &req, &l->id, err, sizeof err);
        if (src) {
            fprintf(stderr, "generate: %s:%zu: %s\n", in_path, l->lineno, err);
            goto done;
        }
        prompt_tokens += l->n_ids;
        choices += l->sp.n;
    }

    int tty = isatty(STDERR_FILENO);
    size_t next_out = 0, n_done = 0;
    uint64_t generated = 0;
    int64_t created = time_unix_s();
    const char *model = engine_model_name(e);
    double last_bar = 0;
    int failed = 0;
    /* The decode window: from the moment every choice has its first token
     * until the first choice finishes, all of them decode together. */
    uint64_t started = 0, gen_at_start = 0, gen_at_end = 0;
    double t_all_started = 0, t_first_finish = 0;
    inferd_event ev[64];
    while (next_out < b.n) {
        size_t got = inferd_engine_poll(e, ev, 64);
        for (size_t i = 0; i < got; i++) {
            bline *l = ev[i].user;
            uint32_t c = ev[i].choice;
            buf_append(&l->text[c], ev[i].text, ev[i].text_len);
            if (ev[i].type == INFERD_EVENT_TOKEN && ev[i].token >= 0) {
                generated++;
                if (l->n_gen0[c]++ == 0 && ++started == choices) {
                    t_all_started = time_now_s();
                    gen_at_start = generated;
                }
            }
            if (ev[i].type == INFERD_EVENT_FINISH) {
                if (t_first_finish == 0) {
                    t_first_finish = time_now_s();
                    gen_at_end = generated;
                }
                l->reason[c] = ev[i].finish_reason;
                l->completion_tokens += ev[i].completion_tokens;
                if (ev[i].finish_reason == INFERD_FINISH_ERROR) failed = 1;
                if (++l->n_finished == l->sp.n) n_done++;
            }
            inferd_event_release(&ev[i]);
        }
        while (next_out < b.n && b.lines[next_out].n_finished == b.lines[next_out].sp.n) {
            if (write_line(out, &b.lines[next_out], next_out, model, created)) {
                fprintf(stderr, "generate: writing the output failed: %s\n", strerror(errno));
                goto done;
            }
            next_out++;
        }
        double now = time_now_s();
        if (tty && (now - last_bar > 0.1 || next_out == b.n)) {
            progress(n_done, b.n, generated, now - t0);
            last_bar = now;
        }
        if (!got && next_out < b.n) {
            struct pollfd pfd = {inferd_engine_event_fd(e), POLLIN, 0};
            poll(&pfd, 1, 100);
        }
    }
    if (fflush(out)) {
        fprintf(stderr, "generate: writing the output failed: %s\n", strerror(errno));
        goto done;
    }
    double secs = time_now_s() - t0;
    if (tty) fputc('\n', stderr);
    fprintf(stderr,
            "generate: %zu requests (%llu choices), %llu prompt tokens, %llu generated tokens, "
            "%.2f s, %.1f generated tokens/s\n",
            b.n, (unsigned long long)choices, (unsigned long long)prompt_tokens,
            (unsigned long long)generated, secs, secs > 0 ? (double)generated / secs : 0.0);
    if (t_all_started > 0 && t_first_finish > t_all_started && gen_at_end > gen_at_start)
        fprintf(stderr,
                "generate: decode with all %llu choices running: %.1f generated tokens/s "
                "(%llu tokens in %.2f s)\n",
                (unsigned long long)choices,
                (double)(gen_at_end - gen_at_start) / (t_first_finish - t_all_started),
                (unsigned long long)(gen_at_end - gen_at_start), t_first_finish - t_all_started);
    if (failed) {
        fprintf(stderr, "generate: some requests failed (finish_reason \"error\")\n");
        goto done;
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "generate: out of memory\n");
done:
    if (in && in != stdin) fclose(in);
    if (out && out != stdout) {
        if (fclose(out) && rc == 0) {
            fprintf(stderr, "generate: writing '%s' failed: %s\n", out_path, strerror(errno));
            rc = 1;
        }
    }
    inferd_engine_free(e);
    for (size_t i = 0; i < b.n; i++) bline_free(&b.lines[i]);
    free(b.lines);
    free(line);
    return rc;
}

/* ---- helpers ---- */

/* On error returns -1 with the message in out->prompt (malloc'd). */
static int fail(bline *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(bline *out, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(out->prompt);
    out->prompt = strdup(msg);
    return -1;
}

static int get_num(json_t *v, const char *key, double lo, double hi, double *out, bline *l) {
    if (!json_is_number(v)) return fail(l, "\"%s\" must be a number", key);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return fail(l, "\"%s\" is %g, outside %g..%g", key, d, lo, hi);
    *out = d;
    return 0;
}

static int get_int(json_t *v, const char *key, double lo, double hi, double *out, bline *l) {
    if (!json_is_integer(v)) return fail(l, "\"%s\" must be an integer", key);
    return get_num(v, key, lo, hi, out, l);
}

static int parse_line(const char *text, size_t lineno, const batch_defaults *def, bline *out) {
    memset(out, 0, sizeof *out);
    out->lineno = lineno;
    inferd_sampling_params sp = inferd_sampling_default_params();
    sp.max_tokens = def->max_tokens;
    sp.temperature = def->temperature;
    sp.seed = def->seed;
    sp.has_seed = def->has_seed;
    sp.ignore_eos = def->ignore_eos;
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!j) return fail(out, "bad JSON at column %d: %s", je.column, je.text);
    int rc = -1;
    if (!json_is_object(j)) {
        fail(out, "a line must be a JSON object");
        goto done;
    }
    const char *key;
    json_t *v;
    double d;
    json_t *jp = json_object_get(j, "prompt");
    if (json_is_array(jp)) {
        /* Token ids, as OpenAI's completions API allows. */
        size_t n = json_array_size(jp);
        if (n == 0 || n > (1u << 24)) {
            fail(out, "\"prompt\" has %zu token ids (1..%u allowed)", n, 1u << 24);
            goto done;
        }
        if (!(out->ids = malloc(n * sizeof *out->ids))) {
            fail(out, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *t = json_array_get(jp, i);
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) > INT32_MAX) {
                fail(out, "\"prompt\"[%zu] is not a token id", i);
                goto done;
            }
            out->ids[i] = (int32_t)json_integer_value(t);
        }
        out->n_ids = n;
    } else if (!json_is_string(jp)) {
        fail(out, "\"prompt\" (a string or an array of token ids) is required");
        goto done;
    }
    json_object_foreach(j, key, v) {
        if (!strcmp(key, "prompt")) continue;
        if (!strcmp(key, "max_tokens")) {
            if (get_int(v, key, 0, 1 << 24, &d, out)) goto done;
            sp.max_tokens = (uint32_t)d;
        } else if (!strcmp(key, "temperature")) {
            if (get_num(v, key, 0, 100, &d, out)) goto done;
            sp.temperature = (float)d;
        } else if (!strcmp(key, "top_p")) {
            if (get_num(v, key, 1e-9, 1, &d, out)) goto done;
            sp.top_p = (float)d;
        } else if (!strcmp(key, "top_k")) {
            if (get_int(v, key, -1, 1 << 24, &d, out)) goto done;
            sp.top_k = (int32_t)d;
        } else if (!strcmp(key, "min_p")) {
            if (get_num(v, key, 0, 1, &d, out)) goto done;
            sp.min_p = (float)d;
        } else if (!strcmp(key, "presence_penalty") || !strcmp(key, "frequency_penalty")) {
            if (get_num(v, key, -2, 2, &d, out)) goto done;
            *(key[0] == 'p' ? &sp.presence_penalty : &sp.frequency_penalty) = (float)d;
        } else if (!strcmp(key, "repetition_penalty")) {
            if (get_num(v, key, 1e-3, 100, &d, out)) goto done;
            sp.repetition_penalty = (float)d;
        } else if (!strcmp(key, "n")) {
            if (get_int(v, key, 1, BATCH_MAX_N, &d, out)) goto done;
            sp.n = (uint32_t)d;
        } else if (!strcmp(key, "seed")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                fail(out, "\"seed\" must be an integer >= 0");
                goto done;
            }
            sp.seed = (uint64_t)json_integer_value(v);
            sp.has_seed = 1;
        } else if (!strcmp(key, "ignore_eos")) {
            if (!json_is_boolean(v)) {
                fail(out, "\"ignore_eos\" must be true or false");
                goto done;
            }
            sp.ignore_eos = json_is_true(v);
        } else if (!strcmp(key, "stop")) {
            size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
            if (!json_is_string(v) && !json_is_array(v)) {
                fail(out, "\"stop\" must be a string or an array of strings");
                goto done;
            }
            if (n > 16) {
                fail(out, "\"stop\" has %zu strings (at most 16)", n);
                goto done;
            }
            out->stops = calloc(n ? n : 1, sizeof *out->stops);
            if (!out->stops) {
                fail(out, "out of memory");
                goto done;
            }
            for (size_t i = 0; i < n; i++) {
                json_t *s = json_is_string(v) ? v : json_array_get(v, i);
                if (!json_is_string(s) || json_string_length(s) == 0) {
                    fail(out, "\"stop\"[%zu] must be a non-empty string", i);
                    goto done;
                }
                if (!(out->stops[out->n_stop++] = strdup(json_string_value(s)))) {
                    fail(out, "out of memory");
                    goto done;
                }
            }
        } else {
            fail(out, "unknown field \"%s\"", key);
            goto done;
        }
    }
    if (!out->ids && !(out->prompt = strdup(json_string_value(jp)))) {
        fail(out, "out of memory");
        goto done;
    }
    sp.stop = (const char *const *)out->stops;
    sp.n_stop = out->n_stop;
    out->sp = sp;
    out->text = calloc(sp.n, sizeof *out->text);
    out->reason = calloc(sp.n, sizeof *out->reason);
    out->n_gen0 = calloc(sp.n, sizeof *out->n_gen0);
    if (!out->text || !out->reason || !out->n_gen0) {
        fail(out, "out of memory");
        goto done;
    }
    rc = 0;
done:
    json_decref(j);
    return rc;
}

static void bline_free(bline *l) {
    free(l->prompt);
    free(l->ids);
    for (size_t i = 0; i < l->n_stop; i++) free(l->stops[i]);
    free(l->stops);
    if (l->text)
        for (uint32_t c = 0; c < l->sp.n; c++) buf_free(&l->text[c]);
    free(l->text);
    free(l->reason);
    free(l->n_gen0);
    memset(l, 0, sizeof *l);
}

static const char *reason_name(enum inferd_finish_reason r) {
    switch (r) {
    case INFERD_FINISH_STOP: return "stop";
    case INFERD_FINISH_LENGTH: return "length";
    case INFERD_FINISH_ABORT: return "abort";
    case INFERD_FINISH_ERROR: return "error";
    default: return "none";
    }
}

/* One OpenAI text_completion object on one line. Returns 0 or -1. */
static int write_line(FILE *f, const bline *l, size_t index, const char *model, int64_t created) {
    buf o = BUF_INIT;
    buf_printf(&o, "{\"id\":\"cmpl-batch-%zu\",\"object\":\"text_completion\",\"created\":%lld,"
                   "\"model\":",
               index, (long long)created);
    buf_json_str(&o, model, strlen(model));
    buf_puts(&o, ",\"choices\":[");
    for (uint32_t c = 0; c < l->sp.n; c++) {
        buf_printf(&o, "%s{\"index\":%u,\"text\":", c ? "," : "", c);
        buf_json_str(&o, l->text[c].data ? l->text[c].data : "", l->text[c].len);
        buf_printf(&o, ",\"logprobs\":null,\"finish_reason\":\"%s\"}", reason_name(l->reason[c]));
    }
    buf_printf(&o,
               "],\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%u,"
               "\"total_tokens\":%zu}}\n",
               l->n_ids, l->completion_tokens, l->n_ids + l->completion_tokens);
    int rc = o.oom || fwrite(o.data, 1, o.len, f) != o.len ? -1 : 0;
    buf_free(&o);
    return rc;
}

static void progress(size_t done, size_t total, uint64_t gen, double secs) {
    char bar[31];
    size_t fill = total ? done * 30 / total : 30;
    for (size_t i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r[%s] %zu/%zu requests, %llu tokens, %.1f tokens/s ", bar, done, total,
            (unsigned long long)gen, secs > 0 ? (double)gen / secs : 0.0);
}
