/*
 * engine.c - the engine thread and the public inferd_engine_* API
 * (include/inferd.h, docs/api-c.md). One thread owns the scheduler, the KV
 * cache and every sequence; callers talk to it through the inbox (submit,
 * abort) and the outbox (events). Each loop iteration is one step: take
 * commands, plan (scheduler.c), run one flat forward over every scheduled
 * token, sample and detokenize the sequences that reached their last token,
 * publish stats, flush events.
 */
#include "engine/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "engine/kvcache.h"
#include "engine/outbox.h"
#include "engine/request.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "model/model.h"
#include "tok/tokenizer.h"

struct inferd_engine {
    inferd_engine_params p;
    model *m;
    const tokenizer *tok;
    kv_pool *pool;
    kv_cache *kv;
    sched sch;
    sampler *smp;
    request_limits lim;
    uint32_t n_vocab;
    char model_name[256];

    /* Step buffers, sized at start (no allocation per step). */
    int32_t *b_tokens, *b_pos, *b_seq; /* (max_num_batched_tokens) */
    uint8_t *b_want;                   /* (max_num_batched_tokens) */
    model_seq *b_seqs;                 /* (max_num_seqs) */
    float *logits;                     /* (max_num_seqs, n_vocab) */

    /* Inbox: guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    request *inbox_head, *inbox_tail;
    uint32_t n_inbox;
    inferd_request_id *aborts;
    size_t n_aborts, cap_aborts;
    int stop;
    pthread_t thread;
    int thread_started;
    atomic_uint_fast64_t next_id;

    /* Engine thread only. */
    request *active; /* requests with live choices */
    uint64_t prompt_total, generated_total, steps;

    outbox out;
    inferd_wake_fn wake;
    void *wake_arg;

    pthread_mutex_t st_mu;
    inferd_engine_stats stats; /* guarded by st_mu */
};

static void *engine_main(void *arg);
static void engine_step(inferd_engine *e);
static void take_request(inferd_engine *e, request *r);
static void abort_request(inferd_engine *e, inferd_request_id id);
static void finish_request(inferd_engine *e, request *r, enum inferd_finish_reason why);
static void finish_seq(inferd_engine *e, seq *q, enum inferd_finish_reason why);
static void sample_seq(inferd_engine *e, seq *q, const float *logits);
static void publish_stats(inferd_engine *e);
static int size_pool(inferd_engine *e, uint32_t *n_blocks, char *err, size_t err_size);

/* ---- parameters ---- */

inferd_engine_params inferd_engine_default_params(void) {
    inferd_engine_params p;
    memset(&p, 0, sizeof p);
    p.kv_cache_fraction = 0.10;
    p.block_size = 16;
    p.max_num_seqs = 64;
    p.max_num_batched_tokens = 2048;
    p.enable_prefix_caching = 1;
    p.kv_f32 = -1;
    return p;
}

/* ---- life cycle ---- */

int inferd_engine_new(const inferd_engine_params *params, inferd_engine **out, char *err,
                      size_t err_size) {
    *out = NULL;
    if (!params || !params->model_path)
        return err_set(err, err_size, INFERD_EINVAL, "engine: model_path is not set");
    inferd_engine_params p = *params;
    if (p.block_size == 0) p.block_size = 16;
    if (p.max_num_seqs == 0) p.max_num_seqs = 64;
    if (p.max_num_batched_tokens == 0) p.max_num_batched_tokens = 2048;
    if (p.block_size > 1024)
        return err_set(err, err_size, INFERD_EINVAL, "engine: block_size %u is above 1024",
                       p.block_size);
    if (p.max_num_seqs > 4096)
        return err_set(err, err_size, INFERD_EINVAL, "engine: max_num_seqs %u is above 4096",
                       p.max_num_seqs);
    if (p.max_num_batched_tokens < p.max_num_seqs)
        return err_set(err, err_size, INFERD_EINVAL,
                       "engine: max_num_batched_tokens %u is below max_num_seqs %u",
                       p.max_num_batched_tokens, p.max_num_seqs);

    inferd_engine *e = calloc(1, sizeof *e);
    if (!e) return err_set(err, err_size, INFERD_ENOMEM, "engine: out of memory");
    e->p = p;
    e->p.model_path = NULL; /* borrowed only during _new */
    e->out.efd = -1;
    int rc;
    int mu_ok = 0, st_ok = 0, cv_ok = 0;

    const char *base = strrchr(params->model_path, '/');
    snprintf(e->model_name, sizeof e->model_name, "%s", base ? base + 1 : params->model_path);
    size_t nl = strlen(e->model_name);
    if (nl > 5 && !strcmp(e->model_name + nl - 5, ".gguf")) e->model_name[nl - 5] = 0;

    model_params mp = model_default_params();
    mp.n_threads = p.n_threads;
    mp.max_batch = p.max_num_batched_tokens;
    if ((rc = model_load(params->model_path, &mp, &e->m, err, err_size))) goto fail;
    const model_hparams *hp = model_get_hparams(e->m);
    e->tok = model_get_tokenizer(e->m);
    e->n_vocab = hp->n_vocab;
    uint32_t max_len = hp->n_ctx_train;
    if (p.max_model_len) {
        if (p.max_model_len > hp->n_ctx_train) {
            rc = err_set(err, err_size, INFERD_EINVAL,
                         "engine: max_model_len %u is above the model's context length %u",
                         p.max_model_len, hp->n_ctx_train);
            goto fail;
        }
        max_len = p.max_model_len;
    }
    e->p.max_model_len = max_len;
    /* auto KV type: the model's own precision when it is F32 (vLLM's "auto"
     * follows the weights' dtype), f16 for every other weight type. */
    if (p.kv_f32 < 0) p.kv_f32 = e->p.kv_f32 = hp->weight_type == DTYPE_F32;
    uint32_t n_blocks = 0;
    if ((rc = size_pool(e, &n_blocks, err, err_size))) goto fail;
    /* A sequence can never outgrow the pool: it is the context limit too. */
    if ((uint64_t)n_blocks * p.block_size < max_len) e->p.max_model_len = n_blocks * p.block_size;
    enum dtype kvt = p.kv_f32 ? DTYPE_F32 : DTYPE_F16;
    if ((rc = kv_pool_new(e->m, n_blocks, p.block_size, kvt, &e->pool, err, err_size))) goto fail;
    rc = INFERD_ENOMEM;
    if (kv_cache_new(n_blocks, p.block_size, p.enable_prefix_caching, &e->kv)) goto nomem;
    sched_params sp = {p.max_num_seqs, p.max_num_batched_tokens, p.enable_prefix_caching};
    if (sched_init(&e->sch, &sp, e->kv)) goto nomem;
    if (sampler_new(e->n_vocab, &e->smp)) goto nomem;
    size_t nt = p.max_num_batched_tokens;
    e->b_tokens = malloc(nt * sizeof *e->b_tokens);
    e->b_pos = malloc(nt * sizeof *e->b_pos);
    e->b_seq = malloc(nt * sizeof *e->b_seq);
    e->b_want = malloc(nt);
    e->b_seqs = malloc(p.max_num_seqs * sizeof *e->b_seqs);
    e->logits = malloc((size_t)p.max_num_seqs * e->n_vocab * sizeof *e->logits);
    if (!e->b_tokens || !e->b_pos || !e->b_seq || !e->b_want || !e->b_seqs || !e->logits)
        goto nomem;
    e->lim = (request_limits){e->n_vocab, e->p.max_model_len, p.block_size};
    if ((rc = outbox_init(&e->out))) {
        rc = err_set(err, err_size, rc, "engine: cannot create the event fd");
        goto fail;
    }
    if (pthread_mutex_init(&e->mu, NULL)) goto nomem;
    mu_ok = 1;
    if (pthread_mutex_init(&e->st_mu, NULL)) goto nomem;
    st_ok = 1;
    if (pthread_cond_init(&e->cv, NULL)) goto nomem;
    cv_ok = 1;
    atomic_init(&e->next_id, 1);
    publish_stats(e);
    if (pthread_create(&e->thread, NULL, engine_main, e)) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "engine: cannot start the engine thread");
        goto fail;
    }
    e->thread_started = 1;
    log_info("engine: model %s, %u KV blocks of %u tokens (%s), max_model_len %u, "
             "max_num_seqs %u, max_num_batched_tokens %u, prefix caching %s",
             e->model_name, n_blocks, p.block_size, p.kv_f32 ? "f32" : "f16", e->p.max_model_len,
             p.max_num_seqs, p.max_num_batched_tokens, p.enable_prefix_caching ? "on" : "off");
    *out = e;
    return 0;
nomem:
    rc = err_set(err, err_size, INFERD_ENOMEM, "engine: out of memory for its buffers");
fail:
    if (!cv_ok) e->cv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    if (!mu_ok) e->mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    if (!st_ok) e->st_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    inferd_engine_free(e);
    return rc;
}

void inferd_engine_free(inferd_engine *e) {
    if (!e) return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->stop = 1;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    while (e->inbox_head) {
        request *r = e->inbox_head;
        e->inbox_head = r->next;
        request_free(r);
    }
    while (e->active) {
        request *r = e->active;
        e->active = r->next;
        for (uint32_t c = 0; c < r->sp.n; c++)
            if (r->seqs[c]->state != SEQ_FINISHED) sched_drop(&e->sch, r->seqs[c]);
        request_free(r);
    }
    outbox_free(&e->out);
    free(e->aborts);
    free(e->b_tokens);
    free(e->b_pos);
    free(e->b_seq);
    free(e->b_want);
    free(e->b_seqs);
    free(e->logits);
    sampler_free(e->smp);
    sched_free(&e->sch);
    kv_cache_free(e->kv);
    kv_pool_free(e->pool);
    model_free(e->m);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->st_mu);
    free(e);
}

/* ---- commands (any thread) ---- */

int inferd_engine_submit(inferd_engine *e, const inferd_request *req, inferd_request_id *id,
                         char *err, size_t err_size) {
    if (id) *id = 0;
    if (!e) return err_set(err, err_size, INFERD_EINVAL, "engine is NULL");
    request *r;
    int rc = request_new(req, &e->lim, &r, err, err_size);
    if (rc) return rc;
    pthread_mutex_lock(&e->mu);
    if (e->p.max_waiting) {
        pthread_mutex_lock(&e->st_mu);
        uint32_t waiting = e->stats.waiting;
        pthread_mutex_unlock(&e->st_mu);
        if (e->n_inbox + waiting >= e->p.max_waiting) {
            pthread_mutex_unlock(&e->mu);
            request_free(r);
            return err_set(err, err_size, INFERD_EFULL,
                           "engine: %u requests are waiting (max_waiting %u)",
                           e->n_inbox + waiting, e->p.max_waiting);
        }
    }
    r->id = atomic_fetch_add(&e->next_id, 1);
    if (id) *id = r->id;
    r->next = NULL;
    if (e->inbox_tail) e->inbox_tail->next = r;
    else e->inbox_head = r;
    e->inbox_tail = r;
    e->n_inbox++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

int inferd_engine_abort(inferd_engine *e, inferd_request_id id) {
    if (!e) return INFERD_EINVAL;
    pthread_mutex_lock(&e->mu);
    if (e->n_aborts == e->cap_aborts) {
        size_t cap = e->cap_aborts ? e->cap_aborts * 2 : 64;
        inferd_request_id *p = realloc(e->aborts, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&e->mu);
            return INFERD_ENOMEM;
        }
        e->aborts = p;
        e->cap_aborts = cap;
    }
    e->aborts[e->n_aborts++] = id;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

void inferd_engine_set_wake(inferd_engine *e, inferd_wake_fn fn, void *arg) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->wake = fn;
    e->wake_arg = arg;
    pthread_mutex_unlock(&e->mu);
}

int inferd_engine_event_fd(inferd_engine *e) { return e ? e->out.efd : -1; }

size_t inferd_engine_poll(inferd_engine *e, inferd_event *out, size_t max) {
    if (!e || !out) return 0;
    return outbox_poll(&e->out, out, max);
}

void inferd_engine_get_stats(inferd_engine *e, inferd_engine_stats *out) {
    if (!e || !out) return;
    pthread_mutex_lock(&e->st_mu);
    *out = e->stats;
    pthread_mutex_unlock(&e->st_mu);
}

int inferd_tokenize(inferd_engine *e, const char *text, size_t len, int add_special,
                    int parse_special, int32_t **ids, size_t *n_ids) {
    if (!e || !ids || !n_ids || (!text && len)) return INFERD_EINVAL;
    return tok_encode(e->tok, text ? text : "", len, add_special, parse_special, ids, n_ids, NULL,
                      0);
}

int inferd_detokenize(inferd_engine *e, const int32_t *ids, size_t n_ids, char **text,
                      size_t *len) {
    if (!e || !text || (!ids && n_ids)) return INFERD_EINVAL;
    *text = NULL;
    buf b = BUF_INIT;
    int rc = tok_decode(e->tok, ids, n_ids, 0, &b);
    if (!rc && buf_reserve(&b, 0)) rc = INFERD_ENOMEM;
    if (rc || b.oom) {
        buf_free(&b);
        return rc ? rc : INFERD_ENOMEM;
    }
    if (len) *len = b.len;
    *text = buf_take(&b);
    return 0;
}

const tokenizer *engine_tokenizer(inferd_engine *e) { return e ? e->tok : NULL; }
const char *engine_chat_template(inferd_engine *e) { return e ? model_chat_template(e->m) : NULL; }
const char *engine_model_name(inferd_engine *e) { return e ? e->model_name : NULL; }

/* ---- the engine thread ---- */

static void *engine_main(void *arg) {
    inferd_engine *e = arg;
    inferd_request_id *aborts = NULL;
    size_t cap_local = 0;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && !e->inbox_head && !e->n_aborts && !e->sch.running.n &&
               !e->sch.waiting.n)
            pthread_cond_wait(&e->cv, &e->mu);
        request *in = e->inbox_head;
        e->inbox_head = e->inbox_tail = NULL;
        e->n_inbox = 0;
        /* Swap the abort list out so callers never wait on a step. */
        inferd_request_id *ab = e->aborts;
        size_t n_ab = e->n_aborts, cap_ab = e->cap_aborts;
        e->aborts = aborts;
        e->cap_aborts = cap_local;
        e->n_aborts = 0;
        aborts = ab;
        cap_local = cap_ab;
        int stop = e->stop;
        inferd_wake_fn wake = e->wake;
        void *wake_arg = e->wake_arg;
        pthread_mutex_unlock(&e->mu);

        while (in) {
            request *r = in;
            in = r->next;
            take_request(e, r);
        }
        for (size_t i = 0; i < n_ab; i++) abort_request(e, aborts[i]);
        if (stop) {
            while (e->active) finish_request(e, e->active, INFERD_FINISH_ABORT);
        } else if (e->sch.running.n || e->sch.waiting.n) {
            engine_step(e);
        }
        publish_stats(e);
        if (outbox_flush(&e->out) && wake) wake(wake_arg);
        if (stop) break;
    }
    free(aborts);
    return NULL;
}

static void take_request(inferd_engine *e, request *r) {
    r->next = e->active;
    e->active = r;
    seq *q = r->seqs[0];
    q->rng = sampler_rng_init(&r->sp, 0, r->id ^ time_now_ns());
    e->prompt_total += r->n_prompt;
    sched_enqueue(&e->sch, q);
}

static void abort_request(inferd_engine *e, inferd_request_id id) {
    for (request *r = e->active; r; r = r->next)
        if (r->id == id) {
            finish_request(e, r, INFERD_FINISH_ABORT);
            return;
        }
}

/* Finishes every live choice of r (and those not forked yet) with why; r
 * is freed. */
static void finish_request(inferd_engine *e, request *r, enum inferd_finish_reason why) {
    /* Choices not yet forked get their FINISH without a sequence. */
    for (uint32_t c = r->n_seqs; c < r->sp.n; c++) {
        inferd_event ev = {.type = INFERD_EVENT_FINISH, .id = r->id, .user = r->user,
                           .choice = c, .token = -1, .finish_reason = why,
                           .prompt_tokens = r->n_prompt};
        outbox_stage(&e->out, &ev, NULL, 0, NULL, 0);
        r->n_live--;
    }
    r->n_seqs = r->sp.n; /* every choice is accounted for now */
    /* The last finish_seq frees r: count down locally, never touch r after. */
    uint32_t n = r->sp.n, live = r->n_live;
    seq **seqs = r->seqs;
    for (uint32_t c = 0; c < n && live > 0; c++) {
        seq *q = seqs[c];
        if (q->state == SEQ_FINISHED) continue;
        live--;
        finish_seq(e, q, why);
    }
}

/* Ends q: releases its blocks, stages the last text (held-back text on a
 * LENGTH or STOP-by-token finish) and the FINISH event; frees the request
 * when this was its last live choice. */
static void finish_seq(inferd_engine *e, seq *q, enum inferd_finish_reason why) {
    request *r = q->req;
    sched_drop(&e->sch, q);
    inferd_event ev = {.id = r->id, .user = r->user, .choice = q->choice, .token = -1};
    if (why == INFERD_FINISH_LENGTH || why == INFERD_FINISH_STOP) {
        const char *t;
        size_t len;
        if (detok_flush(&q->dt, &t, &len) == 0 && len) {
            ev.type = INFERD_EVENT_TOKEN;
            outbox_stage(&e->out, &ev, t, len, NULL, 0);
        }
    }
    ev.type = INFERD_EVENT_FINISH;
    ev.finish_reason = why;
    ev.prompt_tokens = r->n_prompt;
    ev.completion_tokens = q->n_tokens > r->n_prompt ? q->n_tokens - r->n_prompt : 0;
    ev.cached_tokens = q->cached_tokens;
    outbox_stage(&e->out, &ev, NULL, 0, NULL, 0);
    if (--r->n_live == 0) {
        request **pp = &e->active;
        while (*pp && *pp != r) pp = &(*pp)->next;
        if (*pp) *pp = r->next;
        request_free(r);
    }
}

/* One step: plan, one forward over every scheduled token, sample. */
static void engine_step(inferd_engine *e) {
    sched *s = &e->sch;
    if (sched_step(s) == 0) return;
    uint32_t k = 0, rows = 0;
    for (uint32_t i = 0; i < s->n_plan; i++) {
        seq *q = s->plan[i];
        e->b_seqs[i].blocks = q->blocks;
        e->b_seqs[i].n_blocks = q->n_blocks;
        int last = q->n_computed + q->chunk == q->n_tokens;
        for (uint32_t j = 0; j < q->chunk; j++, k++) {
            e->b_tokens[k] = q->tokens[q->n_computed + j];
            e->b_pos[k] = (int32_t)(q->n_computed + j);
            e->b_seq[k] = (int32_t)i;
            e->b_want[k] = last && j + 1 == q->chunk;
        }
        q->logits_row = last ? (int32_t)rows++ : -1;
    }
    model_batch b = {.n_tokens = k, .tokens = e->b_tokens, .pos = e->b_pos, .seq = e->b_seq,
                     .want_logits = e->b_want, .n_seqs = s->n_plan, .seqs = e->b_seqs};
    char err[256] = "";
    if (model_forward(e->m, e->pool, &b, e->logits, err, sizeof err)) {
        log_error("engine: forward of %u tokens failed: %s", k, err);
        /* Mark first: finishing frees requests the plan still points into. */
        for (uint32_t i = 0; i < s->n_plan; i++) s->plan[i]->req->failed = 1;
        s->n_plan = 0;
        for (request *r = e->active, *nx; r; r = nx) {
            nx = r->next;
            if (r->failed) finish_request(e, r, INFERD_FINISH_ERROR);
        }
        return;
    }
    sched_commit(s);
    e->steps++;
    for (uint32_t i = 0; i < s->n_plan; i++) {
        seq *q = s->plan[i];
        if (q->logits_row >= 0 && q->state == SEQ_RUNNING)
            sample_seq(e, q, e->logits + (size_t)q->logits_row * e->n_vocab);
    }
}

/* Appends token tok to q, stages its delta, and finishes q when a stop
 * condition holds. Returns 1 when q finished. */
static int emit_token(inferd_engine *e, seq *q, int32_t tok, const sampler_result *res) {
    request *r = q->req;
    const inferd_sampling_params *sp = &r->sp;
    q->tokens[q->n_tokens++] = tok;
    e->generated_total++;
    enum inferd_finish_reason why = INFERD_FINISH_NONE;
    int stop_tok = !sp->ignore_eos && tok_is_eog(e->tok, tok);
    for (size_t i = 0; i < sp->n_stop_token_ids && !stop_tok; i++)
        if (sp->stop_token_ids[i] == tok) stop_tok = 1;
    const char *text = NULL;
    size_t len = 0;
    if (stop_tok) {
        why = INFERD_FINISH_STOP;
    } else {
        const char *piece;
        size_t plen;
        if (tok_piece(e->tok, tok, 0, &piece, &plen)) plen = 0;
        int rc = detok_push(&q->dt, piece, plen, &text, &len);
        if (rc == 1) why = INFERD_FINISH_STOP;
    }
    uint32_t n_gen = q->n_tokens - r->n_prompt;
    if (why == INFERD_FINISH_NONE &&
        ((sp->max_tokens && n_gen >= sp->max_tokens) || q->n_tokens >= r->max_len))
        why = INFERD_FINISH_LENGTH;
    inferd_event ev = {.type = INFERD_EVENT_TOKEN, .id = r->id, .user = r->user,
                       .choice = q->choice, .token = tok};
    if (sp->logprobs >= 0 && res) ev.logprob = res->logprob;
    outbox_stage(&e->out, &ev, text, len, res ? res->top : NULL, res ? res->n_top : 0);
    if (why != INFERD_FINISH_NONE) {
        /* A stop string's detok accepts nothing more; flush gives "". */
        finish_seq(e, q, why);
        return 1;
    }
    return 0;
}

static void sample_seq(inferd_engine *e, seq *q, const float *logits) {
    request *r = q->req;
    sampler_result res;
    sampler_history h = {q->tokens, r->n_prompt, q->n_tokens};
    int32_t tok = sampler_sample(e->smp, &r->sp, logits, &h, &q->rng, &res);
    if (q->fork_pending) {
        /* n > 1: the other choices share the prompt. Each samples its first
         * token from these logits with its own RNG, then waits at the front
         * of the queue; admission finds the prompt's full blocks by hash
         * (the partial last block is recomputed with the first token). */
        q->fork_pending = 0;
        for (uint32_t c = 1; c < r->sp.n; c++) {
            seq *k = r->seqs[c];
            memcpy(k->tokens, r->prompt, r->n_prompt * sizeof *r->prompt);
            k->n_tokens = r->n_prompt;
            k->rng = sampler_rng_init(&r->sp, c, r->id ^ time_now_ns());
            k->share_lookup = 1;
            r->n_seqs = c + 1;
            sampler_result kr;
            sampler_history kh = {k->tokens, r->n_prompt, k->n_tokens};
            int32_t kt = sampler_sample(e->smp, &r->sp, logits, &kh, &k->rng, &kr);
            /* Queue before emitting: a finish drops it from the queue. */
            sched_enqueue_front(&e->sch, k);
            emit_token(e, k, kt, &kr);
        }
    }
    emit_token(e, q, tok, &res);
}

static void publish_stats(inferd_engine *e) {
    inferd_engine_stats st = {0};
    st.running = e->sch.running.n;
    st.waiting = e->sch.waiting.n;
    st.kv_blocks_total = e->kv ? kv_cache_n_blocks(e->kv) : 0;
    st.kv_blocks_free = e->kv ? kv_cache_n_free(e->kv) : 0;
    st.prefix_query_tokens = e->sch.prefix_query_tokens;
    st.prefix_hit_tokens = e->sch.prefix_hit_tokens;
    st.prompt_tokens_total = e->prompt_total;
    st.generated_tokens_total = e->generated_total;
    st.preemptions_total = e->sch.preemptions;
    st.steps_total = e->steps;
    st.max_model_len = e->p.max_model_len;
    st.n_vocab = e->n_vocab;
    pthread_mutex_lock(&e->st_mu);
    e->stats = st;
    pthread_mutex_unlock(&e->st_mu);
}

/* Blocks for kv_cache_bytes (or kv_cache_fraction of RAM), capped at twice
 * what max_num_seqs sequences of max_model_len need (more is never used but
 * as prefix cache). */
static int size_pool(inferd_engine *e, uint32_t *n_blocks, char *err, size_t err_size) {
    enum dtype kvt = e->p.kv_f32 ? DTYPE_F32 : DTYPE_F16;
    size_t per = kv_pool_bytes_per_block(e->m, e->p.block_size, kvt);
    if (per == 0) return err_set(err, err_size, INFERD_EINVAL, "engine: KV block size is 0 bytes");
    uint64_t bytes = e->p.kv_cache_bytes;
    if (!bytes) {
        double frac = e->p.kv_cache_fraction > 0 ? e->p.kv_cache_fraction : 0.10;
        if (frac > 0.95)
            return err_set(err, err_size, INFERD_EINVAL,
                           "engine: kv_cache_fraction %g is above 0.95", frac);
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        double ram = pages > 0 && psz > 0 ? (double)pages * (double)psz : 4e9;
        bytes = (uint64_t)(ram * frac);
    }
    uint64_t n = bytes / per;
    uint64_t per_seq = (e->p.max_model_len + e->p.block_size - 1) / e->p.block_size;
    uint64_t cap = 2 * per_seq * e->p.max_num_seqs;
    if (n > cap) n = cap;
    if (n > UINT32_MAX / 2) n = UINT32_MAX / 2;
    if (n == 0)
        return err_set(err, err_size, INFERD_EINVAL,
                       "engine: KV cache of %llu bytes holds no block (%zu bytes each)",
                       (unsigned long long)bytes, per);
    *n_blocks = (uint32_t)n;
    return 0;
}
