/*
 * test_sampler.c - the sampler chain (src/engine/sampler.c): each stage's
 * effect on its own, greedy ties, seeded reproducibility, the draw's
 * distribution, and raw-logit logprobs.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "engine/sampler.h"

#define NV 8

static const sampler_stage *stage(const char *name) {
    size_t n;
    const sampler_stage *st = sampler_stages(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(st[i].name, name)) return &st[i];
    cr_assert_fail("no stage %s", name);
    return NULL;
}

static int has_id(const sampler_cands *c, int32_t id) {
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].id == id) return 1;
    return 0;
}

static float logit_of(const sampler_cands *c, int32_t id) {
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].id == id) return c->data[i].logit;
    return NAN;
}

static const float L[NV] = {1.0f, 3.0f, 2.0f, 0.5f, 3.0f, -1.0f, 0.0f, 2.5f};

Test(sampler, stage_table_order) {
    size_t n;
    const sampler_stage *st = sampler_stages(&n);
    const char *want[] = {"logit_bias", "penalties", "temperature", "top_k", "top_p", "min_p"};
    cr_assert_eq(n, 6);
    for (size_t i = 0; i < n; i++) cr_assert_str_eq(st[i].name, want[i]);
}

Test(sampler, logit_bias_adds) {
    sampler *s;
    cr_assert_eq(sampler_new(NV, &s), 0);
    inferd_sampling_params p = inferd_sampling_default_params();
    int32_t ids[] = {5, 1};
    float vals[] = {10.0f, -INFINITY};
    p.logit_bias_ids = ids, p.logit_bias_values = vals, p.n_logit_bias = 2;
    cr_assert(stage("logit_bias")->active(&p));
    sampler_cands c = sampler_load(s, L);
    stage("logit_bias")->apply(s, &c, &p, NULL);
    cr_assert_float_eq(logit_of(&c, 5), 9.0f, 1e-6);
    cr_assert(isinf(logit_of(&c, 1)));
    cr_assert_float_eq(logit_of(&c, 2), 2.0f, 1e-6);
    /* Greedy then picks the biased token. */
    p.temperature = 0;
    cr_assert_eq(sampler_sample(s, &p, L, NULL, NULL, NULL), 5);
    sampler_free(s);
}

Test(sampler, penalties) {
    sampler *s;
    cr_assert_eq(sampler_new(NV, &s), 0);
    inferd_sampling_params p = inferd_sampling_default_params();
    /* prompt: 1, 5; output: 2, 2, 6 */
    int32_t toks[] = {1, 5, 2, 2, 6};
    sampler_history h = {toks, 2, 5};
    cr_assert_not(stage("penalties")->active(&p));
    p.repetition_penalty = 2.0f;
    sampler_cands c = sampler_load(s, L);
    stage("penalties")->apply(s, &c, &p, &h);
    cr_assert_float_eq(logit_of(&c, 1), 1.5f, 1e-6);  /* 3 / 2 (prompt) */
    cr_assert_float_eq(logit_of(&c, 5), -2.0f, 1e-6); /* -1 * 2 */
    cr_assert_float_eq(logit_of(&c, 2), 1.0f, 1e-6);  /* 2 / 2 */
    cr_assert_float_eq(logit_of(&c, 6), 0.0f, 1e-6);
    cr_assert_float_eq(logit_of(&c, 4), 3.0f, 1e-6); /* untouched */
    p.repetition_penalty = 1.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    c = sampler_load(s, L);
    stage("penalties")->apply(s, &c, &p, &h);
    cr_assert_float_eq(logit_of(&c, 2), 2.0f - 1.0f - 0.25f, 1e-6);
    cr_assert_float_eq(logit_of(&c, 6), 0.0f - 0.5f - 0.25f, 1e-6);
    cr_assert_float_eq(logit_of(&c, 1), 3.0f, 1e-6); /* prompt only: no freq/presence */
    /* The scratch is left clean: a second run gives the same. */
    c = sampler_load(s, L);
    stage("penalties")->apply(s, &c, &p, &h);
    cr_assert_float_eq(logit_of(&c, 2), 0.75f, 1e-6);
    sampler_free(s);
}

Test(sampler, temperature_scales) {
    sampler *s;
    cr_assert_eq(sampler_new(NV, &s), 0);
    inferd_sampling_params p = inferd_sampling_default_params();
    cr_assert_not(stage("temperature")->active(&p));
    p.temperature = 0.5f;
    sampler_cands c = sampler_load(s, L);
    stage("temperature")->apply(s, &c, &p, NULL);
    cr_assert_float_eq(logit_of(&c, 1), 6.0f, 1e-6);
    cr_assert_float_eq(logit_of(&c, 5), -2.0f, 1e-6);
    sampler_free(s);
}

Test(sampler, top_k_keeps_k_largest) {
    sampler *s;
    cr_assert_eq(sampler_new(NV, &s), 0);
    inferd_sampling_params p = inferd_sampling_default_params();
    p.top_k = 3;
    sampler_cands c = sampler_load(s, L);
    stage("top_k")->apply(s, &c, &p, NULL);
    cr_assert_eq(c.n, 3);
    /* sorted, ties by lower id */
    cr_assert_eq(c.data[0].id, 1);
    cr_assert_eq(c.data[1].id, 4);
    cr_assert_eq(c.data[2].id, 7);
    /* A bigger vocabulary with random logits: top-k equals a full sort's head. */
    enum { N = 1000 };
    sampler *s2;
    cr_assert_eq(sampler_new(N, &s2), 0);
    float big[N];
    uint64_t st = 42;
    for (int i = 0; i < N; i++) big[i] = (float)(int)(rng_uniform(&st) * 50); /* many ties */
    for (int k = 1; k < N; k += 97) {
        p.top_k = k;
        c = sampler_load(s2, big);
        stage("top_k")->apply(s2, &c, &p, NULL);
        cr_assert_eq(c.n, (size_t)k);
        for (int i = 0; i + 1 < k; i++) {
            cr_assert(c.data[i].logit > c.data[i + 1].logit ||
                      (c.data[i].logit == c.data[i + 1].logit && c.data[i].id < c.data[i + 1].id));
        }
        /* nothing left out is better than the last kept */
        int better = 0;
        for (int i = 0; i < N; i++)
            if (big[i] > c.data[k - 1].logit) better++;
        cr_assert_leq(better, k - 1);
    }
    sampler_free(s2);
    sampler_free(s);
}

Test(sampler, top_p_smallest_prefix) {
    sampler *s;
    cr_assert_eq(sampler_new(4, &s), 0);
    float l[4] = {logf(0.1f), logf(0.5f), logf(0.3f), logf(0.1f)};
    inferd_sampling_params p = inferd_sampling_default_params();
    p.top_p = 0.7f;
    sampler_cands c = sampler_load(s, l);
    stage("top_p")->apply(s, &c, &p, NULL);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.data[0].id, 1);
    cr_assert_eq(c.data[1].id, 2);
    p.top_p = 0.4f;
    c = sampler_load(s, l);
    stage("top_p")->apply(s, &c, &p, NULL);
    cr_assert_eq(c.n, 1);
    sampler_free(s);
}

Test(sampler, min_p_relative_floor) {
    sampler *s;
    cr_assert_eq(sampler_new(4, &s), 0);
    float l[4] = {logf(0.1f), logf(0.5f), logf(0.3f), logf(0.1f)};
    inferd_sampling_params p = inferd_sampling_default_params();
    p.min_p = 0.5f; /* keep p >= 0.25 */
    sampler_cands c = sampler_load(s, l);
    stage("min_p")->apply(s, &c, &p, NULL);
    cr_assert_eq(c.n, 2);
    cr_assert(has_id(&c, 1) && has_id(&c, 2));
    sampler_free(s);
}

Test(sampler, greedy_ties_lowest_id) {
    sampler *s;
    cr_assert_eq(sampler_new(NV, &s), 0);
    inferd_sampling_params p = inferd_sampling_default_params();
    p.temperature = 0;
    sampler_result r;
    cr_assert_eq(sampler_sample(s, &p, L, NULL, NULL, &r), 1);
    cr_assert_eq(r.token, 1);
    sampler_free(s);
}

/* The index of `best = 0; for i: if (x[i] > x[best]) best = i`. */
static uint32_t argmax_loop(const float *x, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Greedy without a candidate list picks exactly what the plain loop picks:
 * the first of tied maxima, the maximum in the tail past a multiple of 8,
 * NaNs never (0 when the first logit is NaN), -0 and +0 as equals, all
 * -inf. Vocabulary sizes around the 8-wide unroll and a real one. */
Test(sampler, greedy_argmax_matches_the_plain_loop) {
    const uint32_t sizes[] = {1, 7, 8, 9, 15, 16, 17, 31, 32000, 32003};
    uint64_t st = 99;
    float *x = malloc(32003 * sizeof(float));
    cr_assert(x);
    inferd_sampling_params p = inferd_sampling_default_params();
    p.temperature = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const uint32_t n = sizes[si];
        sampler *s;
        cr_assert_eq(sampler_new(n, &s), 0);
        for (int trial = 0; trial < 40; trial++) {
            /* Few distinct values, so ties are common. */
            for (uint32_t i = 0; i < n; i++) x[i] = (float)(splitmix64(&st) % 5) - 2.0f;
            const uint32_t at = (uint32_t)(splitmix64(&st) % n), at2 = (uint32_t)(splitmix64(&st) % n);
            switch (trial % 8) {
            case 1: x[at] = 7.0f; x[at2] = 7.0f; break;          /* two tied maxima */
            case 2: x[n - 1] = 9.0f; break;                       /* max in the tail */
            case 3: x[at] = NAN; x[at2] = 5.0f; break;            /* NaN elsewhere */
            case 4: x[0] = NAN; x[at2] = 5.0f; break;             /* NaN first */
            case 5: for (uint32_t i = 0; i < n; i++) x[i] = (i & 1) ? 0.0f : -0.0f; break;
            case 6: for (uint32_t i = 0; i < n; i++) x[i] = -INFINITY; break;
            case 7: x[at] = INFINITY; x[at2] = -INFINITY; break;
            default: break;
            }
            const int32_t got = sampler_sample(s, &p, x, NULL, NULL, NULL);
            cr_assert_eq(got, (int32_t)argmax_loop(x, n), "n %u trial %d: %d vs %u", n, trial,
                         got, argmax_loop(x, n));
        }
        sampler_free(s);
    }
    free(x);
}

Test(sampler, seeded_draws_reproducible_and_distributed) {
    sampler *s;
    cr_assert_eq(sampler_new(4, &s), 0);
    float l[4] = {logf(0.1f), logf(0.5f), logf(0.3f), logf(0.1f)};
    inferd_sampling_params p = inferd_sampling_default_params();
    p.seed = 1234, p.has_seed = 1;
    uint64_t a = sampler_rng_init(&p, 0, 1), b = sampler_rng_init(&p, 0, 999);
    cr_assert_eq(a, b, "the seed, not the entropy, decides");
    cr_assert_neq(sampler_rng_init(&p, 1, 1), a, "choices differ");
    int counts[4] = {0};
    enum { N = 20000 };
    uint64_t r1 = a, r2 = b;
    for (int i = 0; i < N; i++) {
        int32_t t1 = sampler_sample(s, &p, l, NULL, &r1, NULL);
        int32_t t2 = sampler_sample(s, &p, l, NULL, &r2, NULL);
        cr_assert_eq(t1, t2);
        counts[t1]++;
    }
    double want[4] = {0.1, 0.5, 0.3, 0.1};
    for (int i = 0; i < 4; i++) cr_assert(fabs(counts[i] / (double)N - want[i]) < 0.02);
    sampler_free(s);
}

Test(sampler, logprobs_raw_log_softmax) {
    sampler *s;
    cr_assert_eq(sampler_new(NV, &s), 0);
    inferd_sampling_params p = inferd_sampling_default_params();
    p.temperature = 0;
    sampler_result r;
    cr_assert_eq(sampler_sample(s, &p, L, NULL, NULL, &r), 1);
    cr_assert_eq(r.n_top, 0, "no logprobs unless asked");
    p.logprobs = 3;
    p.repetition_penalty = 5.0f; /* processed logits change; reported ones do not */
    int32_t toks[] = {1};
    sampler_history h = {toks, 1, 1};
    int32_t t = sampler_sample(s, &p, L, &h, NULL, &r);
    cr_assert_eq(t, 4);
    double sum = 0;
    for (int i = 0; i < NV; i++) sum += exp(L[i]);
    double lse = log(sum);
    cr_assert_float_eq(r.logprob, 3.0 - lse, 1e-5);
    cr_assert_eq(r.n_top, 3);
    cr_assert_eq(r.top[0].token, 1);
    cr_assert_eq(r.top[1].token, 4);
    cr_assert_eq(r.top[2].token, 7);
    cr_assert_float_eq(r.top[2].logprob, 2.5 - lse, 1e-5);
    sampler_free(s);
}

Test(sampler, check_params_rejects) {
    inferd_sampling_params p = inferd_sampling_default_params();
    char err[200];
    cr_assert_eq(sampler_check_params(&p, NV, err, sizeof err), 0);
    p.top_p = 0;
    cr_assert_eq(sampler_check_params(&p, NV, err, sizeof err), INFERD_EINVAL);
    cr_assert(strstr(err, "top_p"));
    p = inferd_sampling_default_params();
    p.temperature = -1;
    cr_assert_eq(sampler_check_params(&p, NV, err, sizeof err), INFERD_EINVAL);
    p = inferd_sampling_default_params();
    int32_t ids[] = {NV};
    float v[] = {1};
    p.logit_bias_ids = ids, p.logit_bias_values = v, p.n_logit_bias = 1;
    cr_assert_eq(sampler_check_params(&p, NV, err, sizeof err), INFERD_EINVAL);
    cr_assert(strstr(err, "8"));
    p = inferd_sampling_default_params();
    p.logprobs = 21;
    cr_assert_eq(sampler_check_params(&p, NV, err, sizeof err), INFERD_EINVAL);
}
