/*
 * test_engine.c - the engine end to end on stories260K through the public
 * API: greedy outputs of every reference row submitted at once, in random
 * arrival order, and with a KV pool so small that preemption happens, all
 * equal the single-sequence llama.cpp references; abort frees every block;
 * submit errors. After every test, free blocks == total blocks.
 */
#include "engine_testutil.h"

#include "base/util.h"
#include "model/model.h"

static void check_refs(const et_refs *refs, et_req *out) {
    for (size_t i = 0; i < refs->n; i++) {
        et_choice *c = &out[i].ch[0];
        cr_assert(c->finished);
        cr_assert_eq(c->reason, INFERD_FINISH_LENGTH, "row %zu", i);
        cr_assert_eq(c->n_ids, refs->n_ids[i], "row %zu (%s): %zu ids", i, refs->label[i],
                     c->n_ids);
        for (size_t k = 0; k < c->n_ids; k++)
            cr_assert_eq(c->ids[k], refs->ids[i][k], "row %zu (%s): id %zu is %d, want %d", i,
                         refs->label[i], k, c->ids[k], refs->ids[i][k]);
        cr_assert_str_eq(c->text.data ? c->text.data : "", refs->text[i], "row %zu text", i);
        cr_assert_not(c->bad_utf8, "row %zu: a delta split a UTF-8 character", i);
        cr_assert_eq(c->prompt_tokens, refs->n_prompt[i]);
        cr_assert_eq(c->completion_tokens, refs->n_ids[i]);
    }
}

static void run_refs(inferd_engine *e, const et_refs *refs, const size_t *order, int staggered) {
    et_req *out = calloc(refs->n, sizeof *out);
    size_t done = 0;
    for (size_t k = 0; k < refs->n; k++) {
        size_t i = order ? order[k] : k;
        inferd_sampling_params sp = et_greedy((uint32_t)refs->n_ids[i]);
        et_submit(e, &out[i], refs->prompt[i], refs->n_prompt[i], &sp);
        /* Staggered arrivals: let some finish while others arrive. */
        if (staggered && k % 7 == 6) done += et_drain(e, 1);
    }
    et_drain(e, refs->n - done);
    check_refs(refs, out);
    for (size_t i = 0; i < refs->n; i++) et_req_free(&out[i]);
    free(out);
}

Test(engine, greedy_references_all_at_once) {
    et_refs refs;
    et_refs_load(&refs);
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    run_refs(e, &refs, NULL, 0);
    inferd_engine_stats st;
    inferd_engine_get_stats(e, &st);
    cr_assert_lt(st.steps_total, 48 * refs.n / 4, "batched: %llu steps",
                 (unsigned long long)st.steps_total);
    et_assert_all_free(e);
    inferd_engine_free(e);
    et_refs_free(&refs);
}

Test(engine, greedy_references_random_arrival) {
    et_refs refs;
    et_refs_load(&refs);
    size_t order[64];
    uint64_t rng = 7;
    for (size_t i = 0; i < refs.n; i++) order[i] = i;
    for (size_t i = refs.n - 1; i > 0; i--) {
        size_t j = splitmix64(&rng) % (i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    inferd_engine_params p = et_params();
    p.max_num_batched_tokens = 64; /* long prompts prefill in chunks beside decodes */
    p.max_num_seqs = 16;
    inferd_engine *e = et_start(&p);
    run_refs(e, &refs, order, 1);
    et_assert_all_free(e);
    inferd_engine_free(e);
    et_refs_free(&refs);
}

Test(engine, greedy_references_with_preemption) {
    et_refs refs;
    et_refs_load(&refs);
    /* 16 blocks of 16 tokens: the longest row (122 + 48) needs 11. */
    model *m = NULL;
    char err[256];
    cr_assert_eq(model_load(ET_MODEL, NULL, &m, err, sizeof err), 0, "%s", err);
    size_t per = kv_pool_bytes_per_block(m, 16, DTYPE_F32);
    model_free(m);
    inferd_engine_params p = et_params();
    p.kv_cache_bytes = 16 * per;
    inferd_engine *e = et_start(&p);
    inferd_engine_stats st;
    inferd_engine_get_stats(e, &st);
    cr_assert_eq(st.kv_blocks_total, 16);
    run_refs(e, &refs, NULL, 0);
    inferd_engine_get_stats(e, &st);
    cr_assert_gt(st.preemptions_total, 0, "the pool was meant to run out");
    et_assert_all_free(e);
    inferd_engine_free(e);
    et_refs_free(&refs);
}

Test(engine, abort_frees_blocks_within_a_step) {
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    int32_t prompt[] = {1, 403, 407, 261, 378};
    inferd_sampling_params sp = et_greedy(400);
    sp.ignore_eos = 1;
    et_req r = {0}, r2 = {0};
    et_submit(e, &r, prompt, 5, &sp);
    sp.n = 3;
    sp.temperature = 0.9f;
    et_submit(e, &r2, prompt, 5, &sp);
    /* Wait for a few tokens of each, then abort both. */
    inferd_event ev[64];
    size_t seen = 0;
    while (seen < 12) {
        size_t n = inferd_engine_poll(e, ev, 64);
        for (size_t i = 0; i < n; i++) {
            et_event(&ev[i]);
            inferd_event_release(&ev[i]);
        }
        seen += n;
        if (!n) usleep(1000);
    }
    inferd_engine_stats before;
    inferd_engine_get_stats(e, &before);
    cr_assert_lt(before.kv_blocks_free, before.kv_blocks_total);
    cr_assert_eq(inferd_engine_abort(e, r.id), 0);
    cr_assert_eq(inferd_engine_abort(e, r2.id), 0);
    cr_assert_eq(inferd_engine_abort(e, 987654321), 0, "unknown ids are ignored");
    et_drain(e, 4);
    cr_assert_eq(r.ch[0].reason, INFERD_FINISH_ABORT);
    for (int c = 0; c < 3; c++) cr_assert_eq(r2.ch[c].reason, INFERD_FINISH_ABORT);
    /* The FINISH events are flushed after the stats of the step that
     * aborted: the blocks are free by now. */
    inferd_engine_stats st;
    inferd_engine_get_stats(e, &st);
    cr_assert_eq(st.kv_blocks_free, st.kv_blocks_total);
    cr_assert_leq(st.steps_total, before.steps_total + 2);
    et_assert_all_free(e);
    et_req_free(&r);
    et_req_free(&r2);
    inferd_engine_free(e);
}

Test(engine, submit_errors_are_clear) {
    inferd_engine_params p = et_params();
    p.max_model_len = 64;
    p.max_waiting = 0;
    inferd_engine *e = et_start(&p);
    char err[256];
    inferd_request_id id;
    int32_t prompt[60];
    for (int i = 0; i < 60; i++) prompt[i] = 300 + i;
    inferd_request q = {.prompt_ids = prompt, .n_prompt = 60,
                        .sampling = et_greedy(10)};
    cr_assert_eq(inferd_engine_submit(e, &q, &id, err, sizeof err), INFERD_ETOOLONG);
    cr_assert(strstr(err, "max_model_len 64"), "%s", err);
    q.n_prompt = 0;
    cr_assert_eq(inferd_engine_submit(e, &q, &id, err, sizeof err), INFERD_EINVAL);
    q.n_prompt = 2;
    prompt[1] = 512;
    cr_assert_eq(inferd_engine_submit(e, &q, &id, err, sizeof err), INFERD_EINVAL);
    cr_assert(strstr(err, "512"), "%s", err);
    prompt[1] = 5;
    q.sampling.top_p = 2;
    cr_assert_eq(inferd_engine_submit(e, &q, &id, err, sizeof err), INFERD_EINVAL);
    q.sampling = et_greedy(10);
    q.sampling.n = 0;
    cr_assert_eq(inferd_engine_submit(e, &q, &id, err, sizeof err), INFERD_EINVAL);
    inferd_engine_stats st;
    inferd_engine_get_stats(e, &st);
    cr_assert_eq(st.max_model_len, 64);
    cr_assert_eq(st.n_vocab, 512);
    et_assert_all_free(e);
    inferd_engine_free(e);
}

Test(engine, max_waiting_rejects_with_full) {
    inferd_engine_params p = et_params();
    p.max_waiting = 2;
    p.max_num_seqs = 1;
    inferd_engine *e = et_start(&p);
    int32_t prompt[] = {1, 403, 407};
    inferd_sampling_params sp = et_greedy(200);
    sp.ignore_eos = 1;
    et_req r[8] = {0};
    int n_ok = 0, n_full = 0;
    for (int i = 0; i < 8; i++) {
        inferd_request q = {.prompt_ids = prompt, .n_prompt = 3, .sampling = sp, .user = &r[i]};
        r[i].n = 1;
        char err[256];
        int rc = inferd_engine_submit(e, &q, &r[i].id, err, sizeof err);
        if (rc == 0) n_ok++;
        else {
            cr_assert_eq(rc, INFERD_EFULL, "%s", err);
            n_full++;
        }
    }
    cr_assert_gt(n_full, 0);
    for (int i = 0; i < 8; i++)
        if (r[i].id) inferd_engine_abort(e, r[i].id);
    et_drain(e, (size_t)n_ok);
    et_assert_all_free(e);
    for (int i = 0; i < 8; i++) et_req_free(&r[i]);
    inferd_engine_free(e);
}

Test(engine, tokenize_detokenize_and_accessors) {
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    int32_t *ids = NULL;
    size_t n = 0;
    cr_assert_eq(inferd_tokenize(e, "Once upon a time", 16, 1, 0, &ids, &n), 0);
    int32_t want[] = {1, 403, 407, 261, 378};
    cr_assert_eq(n, 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(ids[i], want[i]);
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(inferd_detokenize(e, ids + 1, 4, &text, &len), 0);
    cr_assert_str_eq(text, "Once upon a time");
    cr_assert_eq(len, 16);
    free(text);
    free(ids);
    et_assert_all_free(e);
    inferd_engine_free(e);
}

static void on_wake(void *arg) { __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST); }

Test(engine, wake_callback_and_event_fd) {
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    int wakes = 0;
    inferd_engine_set_wake(e, on_wake, &wakes);
    int fd = inferd_engine_event_fd(e);
    cr_assert_geq(fd, 0);
    struct pollfd pfd = {fd, POLLIN, 0};
    cr_assert_eq(poll(&pfd, 1, 0), 0, "nothing pending yet");
    int32_t prompt[] = {1, 403, 407};
    inferd_sampling_params sp = et_greedy(4);
    et_req r = {0};
    et_submit(e, &r, prompt, 3, &sp);
    cr_assert_eq(poll(&pfd, 1, 10000), 1, "the fd becomes readable");
    et_drain(e, 1);
    cr_assert_gt(__atomic_load_n(&wakes, __ATOMIC_SEQ_CST), 0);
    cr_assert_eq(r.ch[0].n_ids, 4);
    /* Drained: the fd is clear again. */
    cr_assert_eq(poll(&pfd, 1, 0), 0);
    et_assert_all_free(e);
    et_req_free(&r);
    inferd_engine_free(e);
}

Test(engine, free_with_requests_in_flight) {
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    int32_t prompt[] = {1, 403, 407, 261, 378};
    inferd_sampling_params sp = et_greedy(300);
    sp.ignore_eos = 1;
    sp.n = 2;
    et_req r[4] = {0};
    for (int i = 0; i < 4; i++) et_submit(e, &r[i], prompt, 5, &sp);
    /* No draining: free stops the thread, aborts and frees everything
     * (pending events included; ASan checks for leaks). */
    inferd_engine_free(e);
    for (int i = 0; i < 4; i++) et_req_free(&r[i]);
    inferd_engine_free(NULL);
}

Test(engine, events_released_after_free) {
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    int32_t prompt[] = {1, 403, 407, 261, 378};
    inferd_sampling_params sp = et_greedy(8);
    sp.logprobs = 20; /* alternatives too: the pooled block holds them */
    et_req r = {0};
    et_submit(e, &r, prompt, 5, &sp);
    inferd_event kept[64];
    size_t n = 0;
    int finished = 0;
    while (!finished && n < 64) {
        size_t got = inferd_engine_poll(e, kept + n, 64 - n);
        for (size_t i = 0; i < got; i++) finished |= kept[n + i].type == INFERD_EVENT_FINISH;
        n += got;
        if (!got) usleep(1000);
    }
    cr_assert(finished);
    cr_assert_geq(n, 9);
    cr_assert_eq(kept[0].n_top, 20);
    /* The engine goes first; the events stay valid until released. */
    inferd_engine_free(e);
    for (size_t i = 0; i < n; i++) {
        if (kept[i].type == INFERD_EVENT_TOKEN && kept[i].token >= 0) {
            cr_assert_eq(kept[i].top[0].token, kept[i].token);
            cr_assert(utf8_valid(kept[i].text, kept[i].text_len));
        }
        inferd_event_release(&kept[i]);
    }
    et_req_free(&r);
}
