/*
 * test_scheduler.c - the scheduling policy (src/engine/scheduler.c) as pure
 * logic, with fake sequences and no model: decodes first, token budget and
 * chunked prefill, the sequence cap, FIFO admission, preemption of the most
 * recently admitted sequence when blocks run out (and its recompute), and
 * prefix reuse on admission.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/scheduler.h"

#define BS 4

typedef struct fake {
    request req;
    seq q;
} fake;

static fake *mk(uint32_t n_prompt, uint32_t max_len, int32_t first_tok) {
    fake *f = calloc(1, sizeof *f);
    f->req.n_prompt = n_prompt;
    f->req.max_len = max_len;
    f->q.req = &f->req;
    f->q.tokens = calloc(max_len, sizeof(int32_t));
    for (uint32_t i = 0; i < n_prompt; i++) f->q.tokens[i] = first_tok + (int32_t)i;
    f->q.n_tokens = n_prompt;
    f->q.cap_blocks = (max_len + BS - 1) / BS;
    f->q.blocks = calloc(f->q.cap_blocks, sizeof(uint32_t));
    f->q.chain = KV_HASH_ROOT;
    return f;
}

static void rm(fake *f) {
    free(f->q.tokens);
    free(f->q.blocks);
    free(f);
}

static int in_plan(const sched *s, const seq *q) {
    for (uint32_t i = 0; i < s->n_plan; i++)
        if (s->plan[i] == q) return 1;
    return 0;
}

/* One engine step without a model: plan, commit, then every sequence whose
 * last token was computed gets a new token (its length, as a fake id);
 * sequences at max_len are dropped. */
static void sample_planned(sched *s) {
    for (uint32_t i = 0; i < s->n_plan; i++) {
        seq *q = s->plan[i];
        if (q->n_computed != q->n_tokens) continue;
        if (q->n_tokens == q->req->max_len) {
            sched_drop(s, q);
            continue;
        }
        q->tokens[q->n_tokens] = 1000 + (int32_t)q->n_tokens;
        q->n_tokens++;
    }
}

static uint32_t step(sched *s) {
    uint32_t n = sched_step(s);
    sched_commit(s);
    sample_planned(s);
    return n;
}

static void check_kv(const kv_cache *kv) {
    char err[200];
    cr_assert_eq(kv_cache_check(kv, err, sizeof err), 0, "%s", err);
}

Test(scheduler, decodes_first_then_chunked_prefill_within_budget) {
    kv_cache *kv;
    cr_assert_eq(kv_cache_new(64, BS, 1, &kv), 0);
    sched s;
    sched_params p = {4, 8, 1};
    cr_assert_eq(sched_init(&s, &p, kv), 0);
    fake *a = mk(3, 20, 0), *b = mk(20, 30, 100);
    sched_enqueue(&s, &a->q);
    sched_enqueue(&s, &b->q);
    /* Step 1: a's 3 prompt tokens, then b's first chunk of 5. */
    cr_assert_eq(step(&s), 8);
    cr_assert_eq(a->q.n_computed, 3);
    cr_assert_eq(b->q.n_computed, 5);
    cr_assert_eq(a->q.n_tokens, 4, "a was sampled");
    cr_assert_eq(b->q.n_tokens, 20, "b not yet");
    /* Step 2: a decodes first (1), b continues with 7. */
    cr_assert_eq(sched_step(&s), 8);
    cr_assert_eq(s.plan[0], &a->q);
    cr_assert_eq(a->q.chunk, 1);
    cr_assert_eq(b->q.chunk, 7);
    sched_commit(&s);
    sample_planned(&s);
    while (s.running.n || s.waiting.n) step(&s);
    cr_assert_eq(kv_cache_n_free(kv), 64);
    check_kv(kv);
    sched_free(&s);
    rm(a), rm(b);
    kv_cache_free(kv);
}

Test(scheduler, sequence_cap_and_fifo) {
    kv_cache *kv;
    cr_assert_eq(kv_cache_new(64, BS, 1, &kv), 0);
    sched s;
    sched_params p = {2, 100, 1};
    cr_assert_eq(sched_init(&s, &p, kv), 0);
    fake *f[3];
    for (int i = 0; i < 3; i++) {
        f[i] = mk(2, 6, 10 * i);
        sched_enqueue(&s, &f[i]->q);
    }
    step(&s);
    cr_assert_eq(s.running.n, 2);
    cr_assert_eq(f[2]->q.state, SEQ_WAITING);
    cr_assert_eq(s.waiting.head, &f[2]->q);
    int guard = 0;
    while ((s.running.n || s.waiting.n) && guard++ < 100) {
        step(&s);
        cr_assert_leq(s.running.n, 2);
    }
    cr_assert_eq(f[2]->q.state, SEQ_FINISHED);
    cr_assert_eq(kv_cache_n_free(kv), 64);
    sched_free(&s);
    for (int i = 0; i < 3; i++) rm(f[i]);
    kv_cache_free(kv);
}

Test(scheduler, preempts_most_recent_and_recomputes) {
    /* 6 blocks of 4 = 24 token slots; three sequences that grow to 12 each
     * cannot all stay. */
    kv_cache *kv;
    cr_assert_eq(kv_cache_new(6, BS, 1, &kv), 0);
    sched s;
    sched_params p = {8, 64, 1};
    cr_assert_eq(sched_init(&s, &p, kv), 0);
    fake *f[3];
    for (int i = 0; i < 3; i++) {
        f[i] = mk(4, 12, 10 * i);
        sched_enqueue(&s, &f[i]->q);
    }
    step(&s);
    cr_assert_eq(s.running.n, 3);
    int guard = 0, saw_preempt_of_last = 0;
    while ((s.running.n || s.waiting.n) && guard++ < 200) {
        uint64_t before = s.preemptions;
        step(&s);
        if (s.preemptions > before && f[2]->q.state == SEQ_WAITING) saw_preempt_of_last = 1;
        /* The oldest sequence is never the victim while others run. */
        if (s.running.n > 1) cr_assert_eq(f[0]->q.state, SEQ_RUNNING);
        check_kv(kv);
    }
    cr_assert_lt(guard, 200, "no livelock");
    cr_assert_gt(s.preemptions, 0);
    cr_assert(saw_preempt_of_last, "the most recently admitted goes first");
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(f[i]->q.state, SEQ_FINISHED);
        cr_assert_eq(f[i]->q.n_tokens, 12);
        for (uint32_t j = 4; j < 12; j++) cr_assert_eq(f[i]->q.tokens[j], 1000 + (int32_t)j);
    }
    cr_assert_eq(kv_cache_n_free(kv), 6);
    sched_free(&s);
    for (int i = 0; i < 3; i++) rm(f[i]);
    kv_cache_free(kv);
}

Test(scheduler, prefix_reuse_on_admission) {
    kv_cache *kv;
    cr_assert_eq(kv_cache_new(32, BS, 1, &kv), 0);
    sched s;
    sched_params p = {4, 64, 1};
    cr_assert_eq(sched_init(&s, &p, kv), 0);
    fake *a = mk(14, 16, 0);
    sched_enqueue(&s, &a->q);
    while (s.running.n || s.waiting.n) step(&s);
    /* Same first 12 tokens (3 blocks), different tail. */
    fake *b = mk(14, 16, 0);
    b->q.tokens[12] = 777;
    sched_enqueue(&s, &b->q);
    uint64_t hit0 = s.prefix_hit_tokens;
    cr_assert_eq(sched_step(&s), 2, "only the 2 tokens after the shared 3 blocks");
    cr_assert_eq(s.prefix_hit_tokens - hit0, 12);
    cr_assert_eq(b->q.cached_tokens, 12);
    sched_commit(&s);
    sched_drop(&s, &b->q);
    /* A whole-prompt hit still computes the last token. */
    fake *c = mk(12, 16, 0);
    sched_enqueue(&s, &c->q);
    cr_assert_eq(sched_step(&s), 4, "last block recomputed for its logits");
    cr_assert(in_plan(&s, &c->q));
    sched_commit(&s);
    sched_drop(&s, &c->q);
    cr_assert_eq(kv_cache_n_free(kv), 32);
    check_kv(kv);
    sched_free(&s);
    rm(a), rm(b), rm(c);
    kv_cache_free(kv);
}

Test(scheduler, drop_running_and_waiting_frees_blocks) {
    kv_cache *kv;
    cr_assert_eq(kv_cache_new(8, BS, 0, &kv), 0);
    sched s;
    sched_params p = {1, 64, 0};
    cr_assert_eq(sched_init(&s, &p, kv), 0);
    fake *a = mk(9, 20, 0), *b = mk(3, 20, 50);
    sched_enqueue(&s, &a->q);
    sched_enqueue(&s, &b->q);
    step(&s);
    cr_assert_eq(kv_cache_n_free(kv), 8 - 3);
    sched_drop(&s, &a->q);
    sched_drop(&s, &b->q);
    cr_assert_eq(kv_cache_n_free(kv), 8);
    cr_assert_eq(s.running.n + s.waiting.n, 0);
    check_kv(kv);
    sched_free(&s);
    rm(a), rm(b);
    kv_cache_free(kv);
}
