/*
 * sampler.c - the sampling chain of sampler.h: a table of stages over a
 * candidate list, then a seeded draw (or argmax at temperature 0), and the
 * raw-logit log-softmax for logprobs. All scratch is allocated once in
 * sampler_new; sampling never allocates.
 */
#include "engine/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"

struct sampler {
    uint32_t n_vocab;
    sampler_cand *cands; /* (n_vocab) */
    uint32_t *counts;    /* (n_vocab) occurrences in the output; zero between calls */
    uint8_t *in_prompt;  /* (n_vocab) 1 = seen in prompt or output; zero between calls */
    float *probs;        /* (n_vocab) scratch for softmax over candidates */
};

static int cmp_cand_desc(const void *a, const void *b);
static uint32_t argmax_first(const float *x, uint32_t n);
static void sort_cands(sampler_cands *c);
static float softmax_cands(const sampler_cands *c, float *probs);

/* ---- stages ---- */

static int bias_active(const inferd_sampling_params *p) { return p->n_logit_bias > 0; }

static void bias_apply(sampler *s, sampler_cands *c, const inferd_sampling_params *p,
                       const sampler_history *h) {
    (void)h;
    /* Candidates are still indexed by id here (the stage runs first). */
    for (size_t i = 0; i < p->n_logit_bias; i++) {
        int32_t id = p->logit_bias_ids[i];
        if (id < 0 || (uint32_t)id >= s->n_vocab || (size_t)id >= c->n) continue;
        c->data[id].logit += p->logit_bias_values[i];
    }
}

static int pen_active(const inferd_sampling_params *p) {
    return p->repetition_penalty != 1.0f || p->presence_penalty != 0.0f ||
           p->frequency_penalty != 0.0f;
}

static void pen_apply(sampler *s, sampler_cands *c, const inferd_sampling_params *p,
                      const sampler_history *h) {
    if (!h || !h->tokens || h->n_tokens == 0) return;
    for (size_t i = 0; i < h->n_tokens; i++) {
        int32_t t = h->tokens[i];
        if (t < 0 || (uint32_t)t >= s->n_vocab) continue;
        s->in_prompt[t] = 1;
        if (i >= h->n_prompt) s->counts[t]++;
    }
    /* Candidates are indexed by id (stage 2 runs before any narrowing). */
    for (size_t i = 0; i < h->n_tokens; i++) {
        int32_t t = h->tokens[i];
        if (t < 0 || (uint32_t)t >= s->n_vocab || !s->in_prompt[t]) continue;
        float l = c->data[t].logit;
        if (p->repetition_penalty != 1.0f)
            l = l > 0 ? l / p->repetition_penalty : l * p->repetition_penalty;
        uint32_t n = s->counts[t];
        l -= p->frequency_penalty * (float)n;
        if (n > 0) l -= p->presence_penalty;
        c->data[t].logit = l;
        s->in_prompt[t] = 0; /* each id once; also leaves the scratch zeroed */
        s->counts[t] = 0;
    }
}

static int temp_active(const inferd_sampling_params *p) {
    return p->temperature > 0.0f && p->temperature != 1.0f;
}

static void temp_apply(sampler *s, sampler_cands *c, const inferd_sampling_params *p,
                       const sampler_history *h) {
    (void)s, (void)h;
    float inv = 1.0f / p->temperature;
    for (size_t i = 0; i < c->n; i++) c->data[i].logit *= inv;
}

static int topk_active(const inferd_sampling_params *p) { return p->top_k > 0; }

/* Moves the k first candidates in cmp_cand_desc order to a[0..k) (any
 * order), by quickselect (Lomuto partition, middle pivot). 0 < k < n. */
static void select_top(sampler_cand *a, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the k-th element lies in a[lo..hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        sampler_cand t = a[mid];
        a[mid] = a[hi - 1];
        a[hi - 1] = t;
        size_t store = lo;
        for (size_t i = lo; i < hi - 1; i++) {
            if (cmp_cand_desc(&a[i], &a[hi - 1]) < 0) {
                t = a[i];
                a[i] = a[store];
                a[store] = t;
                store++;
            }
        }
        t = a[store];
        a[store] = a[hi - 1];
        a[hi - 1] = t;
        if (store == k) return;
        if (store < k) lo = store + 1;
        else hi = store;
    }
}

static void topk_apply(sampler *s, sampler_cands *c, const inferd_sampling_params *p,
                       const sampler_history *h) {
    (void)s, (void)h;
    size_t k = (size_t)p->top_k;
    if (k >= c->n) return;
    if (!c->sorted) select_top(c->data, c->n, k);
    c->n = k;
    if (!c->sorted) sort_cands(c);
}

static int topp_active(const inferd_sampling_params *p) { return p->top_p < 1.0f; }

static void topp_apply(sampler *s, sampler_cands *c, const inferd_sampling_params *p,
                       const sampler_history *h) {
    (void)h;
    sort_cands(c);
    float sum = softmax_cands(c, s->probs);
    double cum = 0;
    size_t keep = c->n;
    for (size_t i = 0; i < c->n; i++) {
        cum += s->probs[i] / sum;
        if (cum >= p->top_p) {
            keep = i + 1;
            break;
        }
    }
    c->n = keep;
}

static int minp_active(const inferd_sampling_params *p) { return p->min_p > 0.0f; }

static void minp_apply(sampler *s, sampler_cands *c, const inferd_sampling_params *p,
                       const sampler_history *h) {
    (void)s, (void)h;
    /* p_i >= min_p * p_max  <=>  l_i >= l_max + log(min_p). */
    float lmax = -INFINITY;
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].logit > lmax) lmax = c->data[i].logit;
    float floor_l = lmax + logf(p->min_p);
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].logit >= floor_l) c->data[w++] = c->data[i];
    c->n = w; /* the maximum always survives, so w >= 1 */
}

static const sampler_stage STAGES[] = {
    {"logit_bias", bias_active, bias_apply},
    {"penalties", pen_active, pen_apply},
    {"temperature", temp_active, temp_apply},
    {"top_k", topk_active, topk_apply},
    {"top_p", topp_active, topp_apply},
    {"min_p", minp_active, minp_apply},
};
#define N_STAGES (sizeof STAGES / sizeof STAGES[0])
/* Stages that run before greedy's argmax. */
#define N_GREEDY_STAGES 2

/* ---- public ---- */

inferd_sampling_params inferd_sampling_default_params(void) {
    inferd_sampling_params p;
    memset(&p, 0, sizeof p);
    p.max_tokens = 16;
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.top_k = -1;
    p.repetition_penalty = 1.0f;
    p.n = 1;
    p.logprobs = -1;
    return p;
}

int sampler_new(uint32_t n_vocab, sampler **out) {
    *out = NULL;
    if (n_vocab == 0) return INFERD_EINVAL;
    sampler *s = calloc(1, sizeof *s);
    if (!s) return INFERD_ENOMEM;
    s->n_vocab = n_vocab;
    s->cands = malloc(n_vocab * sizeof *s->cands);
    s->counts = calloc(n_vocab, sizeof *s->counts);
    s->in_prompt = calloc(n_vocab, 1);
    s->probs = malloc(n_vocab * sizeof *s->probs);
    if (!s->cands || !s->counts || !s->in_prompt || !s->probs) {
        sampler_free(s);
        return INFERD_ENOMEM;
    }
    *out = s;
    return 0;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->cands);
    free(s->counts);
    free(s->in_prompt);
    free(s->probs);
    free(s);
}

int sampler_check_params(const inferd_sampling_params *p, uint32_t n_vocab, char *err,
                         size_t err_size) {
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
        return err_set(err, err_size, INFERD_EINVAL, "temperature %g must be >= 0",
                       (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return err_set(err, err_size, INFERD_EINVAL, "top_p %g must be in (0, 1]",
                       (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return err_set(err, err_size, INFERD_EINVAL, "min_p %g must be in [0, 1]",
                       (double)p->min_p);
    if (!(p->repetition_penalty > 0.0f) || !isfinite(p->repetition_penalty))
        return err_set(err, err_size, INFERD_EINVAL, "repetition_penalty %g must be > 0",
                       (double)p->repetition_penalty);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return err_set(err, err_size, INFERD_EINVAL,
                       "presence_penalty %g / frequency_penalty %g must be finite",
                       (double)p->presence_penalty, (double)p->frequency_penalty);
    if (p->top_k < -1)
        return err_set(err, err_size, INFERD_EINVAL, "top_k %d must be -1 (off) or >= 0",
                       (int)p->top_k);
    if (p->logprobs > SAMPLER_MAX_LOGPROBS)
        return err_set(err, err_size, INFERD_EINVAL, "logprobs %d is above the maximum %d",
                       (int)p->logprobs, SAMPLER_MAX_LOGPROBS);
    if (p->n_logit_bias && (!p->logit_bias_ids || !p->logit_bias_values))
        return err_set(err, err_size, INFERD_EINVAL, "logit_bias: %zu entries without arrays",
                       p->n_logit_bias);
    for (size_t i = 0; i < p->n_logit_bias; i++) {
        int32_t id = p->logit_bias_ids[i];
        if (id < 0 || (uint32_t)id >= n_vocab)
            return err_set(err, err_size, INFERD_EINVAL,
                           "logit_bias token id %d is outside the vocabulary (%u tokens)",
                           (int)id, n_vocab);
        if (!isfinite(p->logit_bias_values[i]) && !(p->logit_bias_values[i] < 0))
            return err_set(err, err_size, INFERD_EINVAL, "logit_bias value for token %d is %g",
                           (int)id, (double)p->logit_bias_values[i]);
    }
    if (p->n_stop_token_ids && !p->stop_token_ids)
        return err_set(err, err_size, INFERD_EINVAL, "stop_token_ids: %zu entries without array",
                       p->n_stop_token_ids);
    for (size_t i = 0; i < p->n_stop_token_ids; i++) {
        int32_t id = p->stop_token_ids[i];
        if (id < 0 || (uint32_t)id >= n_vocab)
            return err_set(err, err_size, INFERD_EINVAL,
                           "stop token id %d is outside the vocabulary (%u tokens)", (int)id,
                           n_vocab);
    }
    return 0;
}

uint64_t sampler_rng_init(const inferd_sampling_params *p, uint32_t choice, uint64_t entropy) {
    uint64_t base = p->has_seed ? p->seed : entropy;
    uint64_t st = hash_combine(base, 0x5eedULL + choice);
    splitmix64(&st);
    return st;
}

sampler_cands sampler_load(sampler *s, const float *logits) {
    for (uint32_t i = 0; i < s->n_vocab; i++) {
        s->cands[i].id = (int32_t)i;
        s->cands[i].logit = logits[i];
    }
    sampler_cands c = {s->cands, s->n_vocab, 0};
    return c;
}

const sampler_stage *sampler_stages(size_t *n) {
    *n = N_STAGES;
    return STAGES;
}

/* Fills out->logprob and out->top from the raw logits. */
static void raw_logprobs(const sampler *s, const float *logits, int32_t token, int32_t k,
                         sampler_result *out) {
    float mx = -INFINITY;
    for (uint32_t i = 0; i < s->n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (uint32_t i = 0; i < s->n_vocab; i++) sum += exp((double)logits[i] - mx);
    float lse = mx + (float)log(sum);
    out->logprob = logits[token] - lse;
    out->n_top = 0;
    if (k <= 0) return;
    uint32_t want = (uint32_t)k < s->n_vocab ? (uint32_t)k : s->n_vocab;
    /* Insertion into a small sorted array: strictly greater moves up, so the
     * lower id stays first on ties. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_vocab; i++) {
        float l = logits[i];
        if (n == want && !(l > out->top[n - 1].logprob)) continue;
        uint32_t j = n < want ? n++ : n - 1;
        while (j > 0 && l > out->top[j - 1].logprob) {
            out->top[j] = out->top[j - 1];
            j--;
        }
        out->top[j].token = (int32_t)i;
        out->top[j].logprob = l;
    }
    for (uint32_t i = 0; i < n; i++) out->top[i].logprob -= lse;
    out->n_top = n;
}

int32_t sampler_sample(sampler *s, const inferd_sampling_params *p, const float *logits,
                       const sampler_history *h, uint64_t *rng, sampler_result *out) {
    int greedy = p->temperature <= 0.0f;
    int32_t tok;
    if (greedy && !STAGES[0].active(p) && !STAGES[1].active(p)) {
        /* Plain argmax: no candidate list needed. */
        tok = (int32_t)argmax_first(logits, s->n_vocab);
    } else {
        sampler_cands c = sampler_load(s, logits);
        size_t n_stages = greedy ? N_GREEDY_STAGES : N_STAGES;
        for (size_t i = 0; i < n_stages; i++)
            if (STAGES[i].active(p)) STAGES[i].apply(s, &c, p, h);
        if (greedy) {
            size_t best = 0;
            for (size_t i = 1; i < c.n; i++) /* ids ascend here: strict > keeps the lowest */
                if (c.data[i].logit > c.data[best].logit) best = i;
            tok = c.data[best].id;
        } else {
            float sum = softmax_cands(&c, s->probs);
            double u = rng_uniform(rng) * sum;
            double cum = 0;
            size_t pick = c.n - 1;
            for (size_t i = 0; i < c.n; i++) {
                cum += s->probs[i];
                if (u < cum) {
                    pick = i;
                    break;
                }
            }
            tok = c.data[pick].id;
        }
    }
    if (out) {
        out->token = tok;
        out->logprob = 0;
        out->n_top = 0;
        if (p->logprobs >= 0) raw_logprobs(s, logits, tok, p->logprobs, out);
    }
    return tok;
}

/* ---- helpers ---- */

/* The index that `best = 0; for i: if (x[i] > x[best]) best = i` gives:
 * the first index of the largest value, NaNs never winning (0 when x[0]
 * is NaN). That loop waits on its own load of x[best] at every element;
 * here the maximum comes from 8 independent running maxima, then one pass
 * finds its first occurrence. n >= 1. */
static uint32_t argmax_first(const float *x, uint32_t n) {
    if (isnan(x[0])) return 0;
#define ARGMAX_LANE(m, v) ((v) > (m) ? (v) : (m))
    float m0 = x[0], m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        m0 = ARGMAX_LANE(m0, x[i]);
        m1 = ARGMAX_LANE(m1, x[i + 1]);
        m2 = ARGMAX_LANE(m2, x[i + 2]);
        m3 = ARGMAX_LANE(m3, x[i + 3]);
        m4 = ARGMAX_LANE(m4, x[i + 4]);
        m5 = ARGMAX_LANE(m5, x[i + 5]);
        m6 = ARGMAX_LANE(m6, x[i + 6]);
        m7 = ARGMAX_LANE(m7, x[i + 7]);
    }
    for (; i < n; i++) m0 = ARGMAX_LANE(m0, x[i]);
    m0 = ARGMAX_LANE(m0, m1);
    m2 = ARGMAX_LANE(m2, m3);
    m4 = ARGMAX_LANE(m4, m5);
    m6 = ARGMAX_LANE(m6, m7);
    m0 = ARGMAX_LANE(m0, m2);
    m4 = ARGMAX_LANE(m4, m6);
    const float mx = ARGMAX_LANE(m0, m4);
#undef ARGMAX_LANE
    for (i = 0; i < n; i++)
        if (x[i] == mx) break;
    return i; /* mx is some x[i], not NaN: always found */
}

/* Descending logit, then ascending id (a total order, so results do not
 * depend on the sort algorithm). */
static int cmp_cand_desc(const void *a, const void *b) {
    const sampler_cand *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void sort_cands(sampler_cands *c) {
    if (c->sorted) return;
    qsort(c->data, c->n, sizeof *c->data, cmp_cand_desc);
    c->sorted = 1;
}

/* probs[i] = exp(l_i - l_max) for the candidates; returns their sum. */
static float softmax_cands(const sampler_cands *c, float *probs) {
    float mx = -INFINITY;
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].logit > mx) mx = c->data[i].logit;
    double sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        probs[i] = isinf(mx) ? 1.0f : expf(c->data[i].logit - mx);
        sum += probs[i];
    }
    return (float)sum;
}
