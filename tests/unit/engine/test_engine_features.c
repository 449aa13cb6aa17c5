/*
 * test_engine_features.c - engine features on stories260K through the
 * public API: prefix caching (a shared 3-block prefix is not recomputed and
 * the output is unchanged), seeded sampling reproducible alone and in a
 * batch of 16, n > 1 choices sharing the prompt, stop strings split across
 * tokens, stop token ids, UTF-8 characters split across byte tokens, and
 * logprobs. After every test, free blocks == total blocks.
 */
#include "engine_testutil.h"

#include <math.h>

#include "engine/engine.h"
#include "tok/tokenizer.h"

/* Runs one request alone on e and returns its result (caller frees). */
static et_req *run_one(inferd_engine *e, const int32_t *ids, size_t n,
                       const inferd_sampling_params *sp) {
    et_req *r = calloc(1, sizeof *r);
    et_submit(e, r, ids, n, sp);
    et_drain(e, sp->n);
    return r;
}

static void same_ids(const et_choice *a, const et_choice *b, const char *what) {
    cr_assert_eq(a->n_ids, b->n_ids, "%s: %zu vs %zu ids", what, a->n_ids, b->n_ids);
    for (size_t k = 0; k < a->n_ids; k++)
        cr_assert_eq(a->ids[k], b->ids[k], "%s: id %zu differs (%d vs %d)", what, k, a->ids[k],
                     b->ids[k]);
}

Test(engine_features, prefix_cache_skips_shared_blocks) {
    et_refs refs;
    et_refs_load(&refs);
    size_t row = 0;
    for (size_t i = 0; i < refs.n; i++)
        if (refs.n_prompt[i] > row && refs.n_prompt[i] >= 60) row = i;
    cr_assert_geq(refs.n_prompt[row], 60);
    const int32_t *cat = refs.prompt[row];
    int32_t a[50], b[53];
    memcpy(a, cat, sizeof a);
    memcpy(b, cat, 48 * sizeof *b);
    int32_t tail[5] = {403, 407, 261, 378, 432};
    memcpy(b + 48, tail, sizeof tail);
    inferd_sampling_params sp = et_greedy(16);

    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    et_req *ra = run_one(e, a, 50, &sp);
    inferd_engine_stats s0, s1;
    inferd_engine_get_stats(e, &s0);
    et_req *rb = run_one(e, b, 53, &sp);
    inferd_engine_get_stats(e, &s1);
    cr_assert_eq(s1.prefix_hit_tokens - s0.prefix_hit_tokens, 48, "hit %llu tokens",
                 (unsigned long long)(s1.prefix_hit_tokens - s0.prefix_hit_tokens));
    cr_assert_eq(s1.prefix_query_tokens - s0.prefix_query_tokens, 53);
    cr_assert_eq(rb->ch[0].cached_tokens, 48);
    cr_assert_eq(ra->ch[0].cached_tokens, 0);
    et_assert_all_free(e);
    inferd_engine_free(e);

    /* The same request on an engine without prefix caching: same output. */
    p = et_params();
    p.enable_prefix_caching = 0;
    e = et_start(&p);
    et_req *ra2 = run_one(e, a, 50, &sp);
    et_req *rb2 = run_one(e, b, 53, &sp);
    inferd_engine_stats s2;
    inferd_engine_get_stats(e, &s2);
    cr_assert_eq(s2.prefix_hit_tokens, 0);
    cr_assert_eq(rb2->ch[0].cached_tokens, 0);
    same_ids(&rb->ch[0], &rb2->ch[0], "prefix-cached vs computed");
    same_ids(&ra->ch[0], &ra2->ch[0], "first request");
    cr_assert_str_eq(rb->ch[0].text.data, rb2->ch[0].text.data);
    et_assert_all_free(e);
    inferd_engine_free(e);
    et_req *all[] = {ra, rb, ra2, rb2};
    for (int i = 0; i < 4; i++) {
        et_req_free(all[i]);
        free(all[i]);
    }
    et_refs_free(&refs);
}

static inferd_sampling_params seeded(uint64_t seed) {
    inferd_sampling_params sp = inferd_sampling_default_params();
    sp.temperature = 0.9f;
    sp.top_p = 0.95f;
    sp.top_k = 40;
    sp.max_tokens = 40;
    sp.ignore_eos = 1;
    sp.seed = seed;
    sp.has_seed = 1;
    return sp;
}

Test(engine_features, seeded_sampling_alone_and_in_batch_of_16) {
    et_refs refs;
    et_refs_load(&refs);
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    inferd_sampling_params sp = seeded(42);
    et_req *alone = run_one(e, refs.prompt[0], refs.n_prompt[0], &sp);
    cr_assert_eq(alone->ch[0].n_ids, 40);

    et_req batch[16] = {0};
    for (int i = 0; i < 16; i++) {
        /* Request 5 and 11 repeat the lone one; the rest differ. */
        int same = i == 5 || i == 11;
        inferd_sampling_params bp = seeded(same ? 42 : 1000 + (uint64_t)i);
        size_t row = same ? 0 : (size_t)i % refs.n;
        et_submit(e, &batch[i], refs.prompt[row], refs.n_prompt[row], &bp);
    }
    et_drain(e, 16);
    same_ids(&alone->ch[0], &batch[5].ch[0], "alone vs batch slot 5");
    same_ids(&alone->ch[0], &batch[11].ch[0], "alone vs batch slot 11");
    cr_assert_str_eq(alone->ch[0].text.data, batch[5].ch[0].text.data);
    /* Another seed on the same prompt gives another continuation. */
    inferd_sampling_params other = seeded(43);
    et_req *r43 = run_one(e, refs.prompt[0], refs.n_prompt[0], &other);
    int differ = r43->ch[0].n_ids != alone->ch[0].n_ids ||
                 memcmp(r43->ch[0].ids, alone->ch[0].ids, alone->ch[0].n_ids * sizeof(int32_t));
    cr_assert(differ, "seeds 42 and 43 gave the same 40 tokens");
    et_assert_all_free(e);
    inferd_engine_free(e);
    for (int i = 0; i < 16; i++) et_req_free(&batch[i]);
    et_req_free(alone);
    et_req_free(r43);
    free(alone);
    free(r43);
    et_refs_free(&refs);
}

Test(engine_features, n_choices_share_the_prompt) {
    et_refs refs;
    et_refs_load(&refs);
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    /* Greedy n = 3: each choice is the reference (the forked choices
     * recompute the prompt's partial last block). Row 1 has 16 prompt ids
     * (one full block), row 0 has 5 (partial only). */
    for (size_t row = 0; row < 2; row++) {
        inferd_sampling_params sp = et_greedy((uint32_t)refs.n_ids[row]);
        sp.n = 3;
        et_req *r = run_one(e, refs.prompt[row], refs.n_prompt[row], &sp);
        for (int c = 0; c < 3; c++) {
            cr_assert_eq(r->ch[c].n_ids, refs.n_ids[row]);
            for (size_t k = 0; k < refs.n_ids[row]; k++)
                cr_assert_eq(r->ch[c].ids[k], refs.ids[row][k], "row %zu choice %d id %zu", row,
                             c, k);
            cr_assert_eq(r->ch[c].reason, INFERD_FINISH_LENGTH);
        }
        et_req_free(r);
        free(r);
    }
    /* Seeded n = 4: the choices differ from each other, and a rerun gives
     * the same four. */
    inferd_sampling_params sp = seeded(7);
    sp.n = 4;
    et_req *r1 = run_one(e, refs.prompt[1], refs.n_prompt[1], &sp);
    et_req *r2 = run_one(e, refs.prompt[1], refs.n_prompt[1], &sp);
    int n_distinct = 0;
    for (int c = 0; c < 4; c++) {
        same_ids(&r1->ch[c], &r2->ch[c], "seeded n=4 rerun");
        if (c && memcmp(r1->ch[c].ids, r1->ch[0].ids, 40 * sizeof(int32_t))) n_distinct++;
    }
    cr_assert_gt(n_distinct, 0, "the choices should not all be equal");
    et_assert_all_free(e);
    inferd_engine_free(e);
    et_req_free(r1);
    et_req_free(r2);
    free(r1);
    free(r2);
    et_refs_free(&refs);
}

Test(engine_features, stop_strings_and_stop_tokens) {
    et_refs refs;
    et_refs_load(&refs);
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    /* Row 0 continues ", there was a little girl named Lily. She loved". */
    cr_assert(!strncmp(refs.text[0], ", there was a little girl named Lily.", 37));
    const char *stops[] = {"zzz", "girl n"}; /* " girl" + " named": split over tokens */
    inferd_sampling_params sp = et_greedy(48);
    sp.stop = stops;
    sp.n_stop = 2;
    et_req *r = run_one(e, refs.prompt[0], refs.n_prompt[0], &sp);
    cr_assert_eq(r->ch[0].reason, INFERD_FINISH_STOP);
    cr_assert_str_eq(r->ch[0].text.data, ", there was a little ");
    /* It stops at the token that completes "girl n", which starts in an
     * earlier token. */
    const tokenizer *tok = engine_tokenizer(e);
    buf acc = BUF_INIT;
    size_t k_done = 0, k_start = 0;
    for (size_t k = 0; k < refs.n_ids[0] && !k_done; k++) {
        const char *pc;
        size_t pl;
        cr_assert_eq(tok_piece(tok, refs.ids[0][k], 0, &pc, &pl), 0);
        buf_append(&acc, pc, pl);
        if (!k_start && strstr(acc.data, "girl")) k_start = k + 1;
        if (strstr(acc.data, "girl n")) k_done = k + 1;
    }
    buf_free(&acc);
    cr_assert_lt(k_start, k_done, "the stop string should span tokens");
    cr_assert_eq(r->ch[0].completion_tokens, k_done);
    et_req_free(r);
    free(r);
    /* A stop token id: its text is not emitted. Id 426 is '.'. */
    int32_t stop_id = refs.ids[0][10];
    sp = et_greedy(48);
    sp.stop_token_ids = &stop_id;
    sp.n_stop_token_ids = 1;
    r = run_one(e, refs.prompt[0], refs.n_prompt[0], &sp);
    cr_assert_eq(r->ch[0].reason, INFERD_FINISH_STOP);
    cr_assert_str_eq(r->ch[0].text.data, ", there was a little girl named Lily");
    cr_assert_eq(r->ch[0].completion_tokens, 11);
    et_req_free(r);
    free(r);
    et_assert_all_free(e);
    inferd_engine_free(e);
    et_refs_free(&refs);
}

Test(engine_features, utf8_split_over_byte_tokens) {
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    const tokenizer *tok = engine_tokenizer(e);
    cr_assert(tok);
    /* Only the byte tokens of "é" (C3 A9) may be sampled: every character
     * is split over two tokens, and stray bytes happen too. */
    const char *names[] = {"<0xC3>", "<0xA9>"};
    int32_t allowed[2];
    for (int i = 0; i < 2; i++) {
        allowed[i] = tok_find(tok, names[i], strlen(names[i]));
        cr_assert_geq(allowed[i], 0, "no byte token %s", names[i]);
    }
    uint32_t nv = tok_n_vocab(tok);
    int32_t *bias_ids = malloc(nv * sizeof *bias_ids);
    float *bias_vals = malloc(nv * sizeof *bias_vals);
    size_t nb = 0;
    for (uint32_t t = 0; t < nv; t++) {
        int ok = 0;
        for (int i = 0; i < 2; i++) ok |= allowed[i] == (int32_t)t;
        bias_ids[nb] = (int32_t)t;
        bias_vals[nb++] = ok ? 0.0f : -INFINITY;
    }
    inferd_sampling_params sp = seeded(3);
    sp.temperature = 3.0f;
    sp.top_p = 1.0f;
    sp.top_k = -1;
    sp.max_tokens = 64;
    sp.logit_bias_ids = bias_ids;
    sp.logit_bias_values = bias_vals;
    sp.n_logit_bias = nb;
    int32_t prompt[] = {1, 403, 407, 261, 378};
    et_req *r = run_one(e, prompt, 5, &sp);
    et_choice *c = &r->ch[0];
    cr_assert_eq(c->n_ids, 64);
    cr_assert_not(c->bad_utf8, "a delta was not valid UTF-8 on its own");
    /* The text is the ids' bytes with each never-valid byte as U+FFFD. */
    buf raw = BUF_INIT, want = BUF_INIT;
    for (size_t k = 0; k < c->n_ids; k++) {
        const char *pc;
        size_t pl;
        cr_assert_eq(tok_piece(tok, c->ids[k], 0, &pc, &pl), 0);
        buf_append(&raw, pc, pl);
    }
    size_t tail = utf8_incomplete_tail(raw.data, raw.len);
    for (size_t i = 0; i < raw.len - tail;) {
        size_t k = utf8_valid_prefix_len(raw.data + i, raw.len - tail - i);
        buf_append(&want, k ? raw.data + i : "\xEF\xBF\xBD", k ? k : 3);
        i += k ? k : 1;
    }
    if (tail) buf_append(&want, "\xEF\xBF\xBD", 3);
    cr_assert_eq(c->text.len, want.len);
    cr_assert_eq(memcmp(c->text.data, want.data, want.len), 0);
    cr_assert(strstr(c->text.data, "\xC3\xA9"), "expected at least one whole é in %s",
              c->text.data);
    buf_free(&raw);
    buf_free(&want);
    et_req_free(r);
    free(r);
    free(bias_ids);
    free(bias_vals);
    et_assert_all_free(e);
    inferd_engine_free(e);
}

Test(engine_features, logprobs_of_raw_logits) {
    et_refs refs;
    et_refs_load(&refs);
    inferd_engine_params p = et_params();
    inferd_engine *e = et_start(&p);
    inferd_sampling_params sp = et_greedy(8);
    sp.logprobs = 3;
    et_req *r = run_one(e, refs.prompt[0], refs.n_prompt[0], &sp);
    et_choice *c = &r->ch[0];
    cr_assert_eq(c->n_ids, 8);
    for (size_t k = 0; k < 8; k++) {
        cr_assert_eq(c->ids[k], refs.ids[0][k]);
        cr_assert_eq(c->n_top[k], 3);
        cr_assert_eq(c->top0[k], c->ids[k], "greedy picks the top alternative");
        cr_assert(c->logprob[k] <= 0 && c->logprob[k] > -20);
    }
    et_req_free(r);
    free(r);
    et_assert_all_free(e);
    inferd_engine_free(e);
    et_refs_free(&refs);
}
