/*
 * scheduler.c - the step planner of scheduler.h: decodes, chunked prefills,
 * admissions with prefix-cache lookup, preemption by recompute; and the
 * sequence queue helpers of seq.h.
 */
#include "engine/scheduler.h"

#include <stdlib.h>

#include "inferd.h"

static void release_blocks(sched *s, seq *q);
static void preempt(sched *s, seq *q);
static int ensure_one(sched *s, seq *q);
static uint32_t grow_for(sched *s, seq *q, uint32_t want);
static void prefix_match(sched *s, seq *q);
static void plan_add(sched *s, seq *q, uint32_t chunk);

/* ---- queues ---- */

void seq_list_push_back(seq_list *l, seq *s) {
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail) l->tail->next = s;
    else l->head = s;
    l->tail = s;
    l->n++;
}

void seq_list_push_front(seq_list *l, seq *s) {
    s->prev = NULL;
    s->next = l->head;
    if (l->head) l->head->prev = s;
    else l->tail = s;
    l->head = s;
    l->n++;
}

void seq_list_remove(seq_list *l, seq *s) {
    if (s->prev) s->prev->next = s->next;
    else l->head = s->next;
    if (s->next) s->next->prev = s->prev;
    else l->tail = s->prev;
    s->prev = s->next = NULL;
    l->n--;
}

/* ---- public ---- */

int sched_init(sched *s, const sched_params *p, kv_cache *kv) {
    *s = (sched){0};
    if (!p->max_num_seqs || !p->max_num_batched_tokens) return INFERD_EINVAL;
    s->p = *p;
    s->kv = kv;
    s->plan = calloc(p->max_num_seqs, sizeof *s->plan);
    return s->plan ? 0 : INFERD_ENOMEM;
}

void sched_free(sched *s) {
    free(s->plan);
    s->plan = NULL;
}

void sched_enqueue(sched *s, seq *q) {
    q->state = SEQ_WAITING;
    seq_list_push_back(&s->waiting, q);
}

void sched_enqueue_front(sched *s, seq *q) {
    q->state = SEQ_WAITING;
    seq_list_push_front(&s->waiting, q);
}

void sched_drop(sched *s, seq *q) {
    if (q->state == SEQ_RUNNING) seq_list_remove(&s->running, q);
    else if (q->state == SEQ_WAITING) seq_list_remove(&s->waiting, q);
    release_blocks(s, q);
    q->state = SEQ_FINISHED;
    q->chunk = 0;
}

uint32_t sched_step(sched *s) {
    uint32_t budget = s->p.max_num_batched_tokens;
    s->n_plan = 0;
    s->plan_tokens = 0;
    for (seq *q = s->running.head; q; q = q->next) q->chunk = 0;

    /* 1. Decodes. A preempted q is the tail-most unplanned one, so nothing
     * after it is left to visit. */
    for (seq *q = s->running.head; q && budget > 0;) {
        if (q->n_tokens - q->n_computed != 1) {
            q = q->next;
            continue;
        }
        if (!ensure_one(s, q)) break;
        plan_add(s, q, 1);
        budget--;
        q = q->next;
    }
    /* 2. Prefills of running sequences, in chunks. */
    for (seq *q = s->running.head; q && budget > 0;) {
        uint32_t todo = q->n_tokens - q->n_computed;
        if (q->chunk || todo <= 1) {
            q = q->next;
            continue;
        }
        uint32_t chunk = grow_for(s, q, todo < budget ? todo : budget);
        if (chunk == 0) {
            if (!ensure_one(s, q)) break;
            chunk = grow_for(s, q, todo < budget ? todo : budget);
        }
        plan_add(s, q, chunk);
        budget -= chunk;
        q = q->next;
    }
    /* 3. Admissions, first come first served. */
    while (s->waiting.head && budget > 0 && s->running.n < s->p.max_num_seqs) {
        seq *q = s->waiting.head;
        if (q->n_blocks == 0) prefix_match(s, q);
        uint32_t todo = q->n_tokens - q->n_computed;
        uint32_t chunk = grow_for(s, q, todo < budget ? todo : budget);
        if (chunk == 0) {
            release_blocks(s, q); /* give the prefix back: it stays cached */
            break;
        }
        seq_list_remove(&s->waiting, q);
        seq_list_push_back(&s->running, q);
        q->state = SEQ_RUNNING;
        q->admit_no = ++s->admit_counter;
        if (s->p.prefix_caching) {
            s->prefix_query_tokens += q->n_tokens;
            s->prefix_hit_tokens += q->n_computed;
        }
        if (!q->admitted_once) {
            q->admitted_once = 1;
            uint32_t np = q->req ? q->req->n_prompt : q->n_tokens;
            q->cached_tokens = q->n_computed < np ? q->n_computed : np;
        }
        plan_add(s, q, chunk);
        budget -= chunk;
    }
    return s->plan_tokens;
}

void sched_commit(sched *s) {
    uint32_t bs = kv_cache_block_size(s->kv);
    for (uint32_t i = 0; i < s->n_plan; i++) {
        seq *q = s->plan[i];
        q->n_computed += q->chunk;
        while ((q->n_hashed + 1) * bs <= q->n_computed) {
            const int32_t *t = q->tokens + (size_t)q->n_hashed * bs;
            uint64_t h = kv_hash_block(q->chain, t, bs);
            kv_block_publish(s->kv, q->blocks[q->n_hashed], h, q->chain, t);
            q->chain = h;
            q->n_hashed++;
        }
    }
}

/* ---- helpers ---- */

static void plan_add(sched *s, seq *q, uint32_t chunk) {
    q->chunk = chunk;
    s->plan[s->n_plan++] = q;
    s->plan_tokens += chunk;
}

/* Releases q's blocks, last first, so the LRU evicts a prefix's tail before
 * its head. */
static void release_blocks(sched *s, seq *q) {
    while (q->n_blocks > 0) kv_block_release(s->kv, q->blocks[--q->n_blocks]);
    q->n_computed = 0;
    q->n_hashed = 0;
    q->chain = KV_HASH_ROOT;
}

static void preempt(sched *s, seq *q) {
    seq_list_remove(&s->running, q);
    release_blocks(s, q);
    q->chunk = 0;
    sched_enqueue_front(s, q);
    s->preemptions++;
}

/* Grows q's block table so that up to want more tokens fit, without
 * preempting. Returns how many fit (0..want). */
static uint32_t grow_for(sched *s, seq *q, uint32_t want) {
    uint32_t bs = kv_cache_block_size(s->kv);
    uint64_t room = (uint64_t)q->n_blocks * bs - q->n_computed;
    while (room < want && q->n_blocks < q->cap_blocks) {
        uint32_t b = kv_block_alloc(s->kv);
        if (b == KV_NO_BLOCK) break;
        q->blocks[q->n_blocks++] = b;
        room += bs;
    }
    return room < want ? (uint32_t)room : want;
}

/* Makes room for one more token of running q, preempting the most recently
 * admitted unplanned sequences as needed. Returns 1, or 0 when q itself was
 * preempted. */
static int ensure_one(sched *s, seq *q) {
    while (grow_for(s, q, 1) == 0) {
        seq *v = s->running.tail;
        while (v && v->chunk) v = v->prev;
        if (!v || v == q) {
            preempt(s, q);
            return 0;
        }
        preempt(s, v);
    }
    return 1;
}

/* Takes the longest run of cached full blocks that prefixes q's tokens,
 * leaving at least one token to compute (its logits are needed). */
static void prefix_match(sched *s, seq *q) {
    uint32_t bs = kv_cache_block_size(s->kv);
    int lookup = s->p.prefix_caching || q->share_lookup;
    if (!lookup || q->n_tokens == 0) return;
    uint32_t max_blocks = (q->n_tokens - 1) / bs;
    uint64_t chain = KV_HASH_ROOT;
    while (q->n_blocks < max_blocks && q->n_blocks < q->cap_blocks) {
        const int32_t *t = q->tokens + (size_t)q->n_blocks * bs;
        uint64_t h = kv_hash_block(chain, t, bs);
        uint32_t b = kv_block_lookup(s->kv, h, chain, t);
        if (b == KV_NO_BLOCK) break;
        q->blocks[q->n_blocks++] = b;
        chain = h;
    }
    q->n_computed = q->n_blocks * bs;
    q->n_hashed = q->n_blocks;
    q->chain = chain;
}
