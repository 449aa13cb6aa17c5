/*
 * engine_testutil.h - shared helpers of the engine tests: start an engine on
 * stories260K, submit requests, drain events into per-choice results
 * (ids, text, finish reason, usage), and check that every KV block is free
 * again. Header-only (static functions).
 */
#ifndef TESTS_ENGINE_TESTUTIL_H
#define TESTS_ENGINE_TESTUTIL_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/utf8.h"
#include "inferd.h"

#define ET_MODEL "models/stories260K.gguf"
#define ET_GREEDY "tests/data/greedy/stories260K_greedy.jsonl"
#define ET_MAX_CHOICES 8
#define ET_MAX_IDS 1024

typedef struct et_choice {
    int32_t ids[ET_MAX_IDS];
    size_t n_ids;
    buf text;
    int finished;
    enum inferd_finish_reason reason;
    uint32_t prompt_tokens, completion_tokens, cached_tokens;
    int bad_utf8;     /* some delta was not valid UTF-8 on its own */
    float logprob[ET_MAX_IDS];
    uint32_t n_top[ET_MAX_IDS];
    int32_t top0[ET_MAX_IDS];
} et_choice;

typedef struct et_req {
    inferd_request_id id;
    uint32_t n;
    et_choice ch[ET_MAX_CHOICES];
} et_req;

static inline inferd_engine *et_start(inferd_engine_params *p) {
    p->model_path = ET_MODEL;
    if (!p->n_threads) p->n_threads = 1;
    char err[512] = "";
    inferd_engine *e = NULL;
    int rc = inferd_engine_new(p, &e, err, sizeof err);
    cr_assert_eq(rc, 0, "engine: %s", err);
    return e;
}

static inline inferd_engine_params et_params(void) {
    inferd_engine_params p = inferd_engine_default_params();
    p.kv_f32 = 1; /* the references were made with an f32 KV cache */
    p.kv_cache_bytes = 64ull << 20;
    return p;
}

/* Handles one event. Returns 1 for a FINISH. */
static inline int et_event(const inferd_event *ev) {
    et_req *r = ev->user;
    cr_assert(r, "event without user pointer");
    cr_assert_eq(ev->id, r->id);
    cr_assert_lt(ev->choice, r->n);
    et_choice *c = &r->ch[ev->choice];
    cr_assert_not(c->finished, "event after FINISH");
    if (ev->text_len && !utf8_valid(ev->text, ev->text_len)) c->bad_utf8 = 1;
    buf_append(&c->text, ev->text, ev->text_len);
    if (ev->type == INFERD_EVENT_TOKEN) {
        if (ev->token >= 0) {
            cr_assert_lt(c->n_ids, ET_MAX_IDS);
            c->logprob[c->n_ids] = ev->logprob;
            c->n_top[c->n_ids] = ev->n_top;
            c->top0[c->n_ids] = ev->n_top ? ev->top[0].token : -1;
            c->ids[c->n_ids++] = ev->token;
        }
        return 0;
    }
    c->finished = 1;
    c->reason = ev->finish_reason;
    c->prompt_tokens = ev->prompt_tokens;
    c->completion_tokens = ev->completion_tokens;
    c->cached_tokens = ev->cached_tokens;
    return 1;
}

/* Drains events until at least `want` FINISH events arrived (timeout:
 * fails). Returns how many arrived. */
static inline size_t et_drain(inferd_engine *e, size_t want) {
    size_t got = 0;
    inferd_event evs[64];
    int idle_ms = 0;
    while (got < want) {
        size_t n = inferd_engine_poll(e, evs, 64);
        for (size_t i = 0; i < n; i++) {
            got += (size_t)et_event(&evs[i]);
            inferd_event_release(&evs[i]);
        }
        if (n) {
            idle_ms = 0;
            continue;
        }
        struct pollfd pfd = {inferd_engine_event_fd(e), POLLIN, 0};
        poll(&pfd, 1, 100);
        idle_ms += 100;
        cr_assert_lt(idle_ms, 60000, "no events for 60 s (%zu of %zu finished)", got, want);
    }
    return got;
}

/* Submits one request; r must stay alive until it finished. */
static inline void et_submit(inferd_engine *e, et_req *r, const int32_t *ids, size_t n,
                             const inferd_sampling_params *sp) {
    inferd_request q = {.prompt_ids = ids, .n_prompt = n, .sampling = *sp, .user = r};
    r->n = sp->n;
    char err[256] = "";
    int rc = inferd_engine_submit(e, &q, &r->id, err, sizeof err);
    cr_assert_eq(rc, 0, "submit: %s", err);
}

static inline void et_req_free(et_req *r) {
    for (int i = 0; i < ET_MAX_CHOICES; i++) buf_free(&r->ch[i].text);
}

/* Waits until nothing runs or waits, then asserts free == total blocks. */
static inline void et_assert_all_free(inferd_engine *e) {
    inferd_engine_stats st;
    for (int i = 0; i < 500; i++) {
        inferd_engine_get_stats(e, &st);
        if (st.running == 0 && st.waiting == 0) break;
        usleep(10000);
    }
    cr_assert_eq(st.running + st.waiting, 0);
    cr_assert_eq(st.kv_blocks_free, st.kv_blocks_total, "free blocks %u of %u",
                 st.kv_blocks_free, st.kv_blocks_total);
}

/* The greedy reference rows. */
typedef struct et_refs {
    size_t n;
    int32_t *prompt[64];
    size_t n_prompt[64];
    int32_t *ids[64];
    size_t n_ids[64];
    char *text[64];
    char *label[64];
} et_refs;

static inline int32_t *et_json_ids(json_t *a, size_t *n) {
    *n = json_array_size(a);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return ids;
}

static inline void et_refs_load(et_refs *r) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(ET_GREEDY, "r");
    cr_assert(f, "cannot open %s", ET_GREEDY);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 1 && r->n < 64) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        cr_assert(j, "bad reference line: %s", je.text);
        size_t i = r->n++;
        r->prompt[i] = et_json_ids(json_object_get(j, "prompt_ids"), &r->n_prompt[i]);
        r->ids[i] = et_json_ids(json_object_get(j, "ids"), &r->n_ids[i]);
        r->text[i] = strdup(json_string_value(json_object_get(j, "text")));
        r->label[i] = strdup(json_string_value(json_object_get(j, "prompt")));
        cr_assert(!json_is_true(json_object_get(j, "stopped_at_eos")));
        json_decref(j);
    }
    free(line);
    fclose(f);
    cr_assert_geq(r->n, 30);
}

static inline void et_refs_free(et_refs *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->prompt[i]);
        free(r->ids[i]);
        free(r->text[i]);
        free(r->label[i]);
    }
}

static inline inferd_sampling_params et_greedy(uint32_t max_tokens) {
    inferd_sampling_params sp = inferd_sampling_default_params();
    sp.temperature = 0;
    sp.max_tokens = max_tokens;
    return sp;
}

#endif
