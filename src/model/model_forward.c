/*
 * model_forward.c - the llama forward pass over one flat batch (model.h).
 * Shapes, with T tokens in the batch, E = n_embd, H = n_head, Hkv = n_head_kv,
 * D = head_dim, F = n_ff, V = n_vocab:
 *   x = token_embd[tokens]                               (T, E)
 *   per layer:
 *     xn = rmsnorm(x) * attn_norm                        (T, E)
 *     q = xn Wq^T (+bq)  k = xn Wk^T (+bk)  v = xn Wv^T (+bv)
 *                                                        (T, H*D) (T, Hkv*D) (T, Hkv*D)
 *     q, k = rope(q, k, pos); K/V pool[seq, pos] = k, v
 *     att = softmax(q K^T / sqrt(D), causal) V           (T, H*D)
 *     (last layer: keep only the rows that want logits: T -> R)
 *     x += att Wo^T (+bo)                                (T, E)
 *     xn = rmsnorm(x) * ffn_norm                         (T, E)
 *     x += (silu(xn Wgate^T) * (xn Wup^T)) Wdown^T       (T, F) -> (T, E)
 *   logits = (rmsnorm(x) * output_norm) Wout^T           (R, V)
 * Matrix products run on the thread pool through kernels/matmul, Q/K/V and
 * gate/up each as one group (one activation conversion, one synchronisation);
 * per-token steps (norms, rope, cache writes, attention) are split over the
 * same pool, or run on the calling thread when they are too small to repay
 * waking it (decode of one token). A batch of many sequences may instead run
 * as lanes: one independent single-threaded forward per pool thread, each
 * over its own sequences (forward_lanes).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/util.h"
#include "kernels/attention.h"
#include "kernels/quant.h"
#include "model/model_int.h"

enum stage {
    STAGE_EMBED,     /* x = embeddings, rope cache per token */
    STAGE_ATTN_NORM, /* xn = rmsnorm(x) * attn_norm */
    STAGE_QKV,       /* biases, rope, K/V into the pool */
    STAGE_ATTN,      /* att = attention */
    STAGE_FFN_NORM,  /* x += xn (+bo); xn = rmsnorm(x) * ffn_norm */
    STAGE_SILU,      /* gate = silu(gate) * up */
    STAGE_RESID,     /* x += xn */
    STAGE_OUT_NORM,  /* xn = rmsnorm(x) * output_norm */
};

typedef struct fwd {
    model *m;
    model_scratch *s; /* the pass's scratch: the model's, or a lane's */
    threadpool *tp;   /* the pool the pass's steps run on; NULL: the calling thread */
    kv_pool *kv;
    const model_batch *b;
    uint32_t t0;      /* batch index of the pass's first token */
    uint32_t n_tok;   /* tokens in the pass */
    enum stage stage;
    uint32_t il;      /* current layer */
    uint32_t n_rows;  /* rows of the residual stream being processed */
    int io_error;     /* set (atomically) when an embedding row cannot be read */
    attn_args attn;
} fwd;

static void run_stage(void *arg, int ith, int nth);

/* Per-token stages below this many float operations (rows x width) run on the
 * calling thread: waking the pool costs more. */
#define SMALL_STAGE 32768u
/* Fewest tokens in a pass after a longer one (see model_forward). */
#define MIN_PASS (MODEL_UBATCH_MIN / 2u)
/* Attention below this many multiply-adds (rows x heads x context x D x 2). */
#define SMALL_ATTN ((uint64_t)1 << 17)

/* Runs the stage f->stage over the pool, or on the caller when it is small. */
static void stage(fwd *f, enum stage st) {
    const model_hparams *hp = &f->m->hp;
    f->stage = st;
    uint32_t rows = f->n_rows;
    if (st == STAGE_EMBED || st == STAGE_QKV || st == STAGE_ATTN) rows = f->n_tok;
    uint64_t work = (uint64_t)rows * (hp->n_embd + hp->n_ff);
    uint64_t limit = SMALL_STAGE;
    if (st == STAGE_ATTN) {
        work = 0;
        for (uint32_t t = 0; t < rows; t++) work += (uint64_t)f->b->pos[f->t0 + t] + 1;
        work *= (uint64_t)hp->n_head * hp->head_dim * 2;
        limit = SMALL_ATTN;
    }
    if (work < limit) run_stage(f, 0, 1);
    else threadpool_run(f->tp, run_stage, f);
}

static size_t align64(size_t n) {
    return (n + 63) & ~(size_t)63;
}

/* Replaces the scratch s with one holding n tokens per pass. */
static int scratch_alloc(const model *m, model_scratch *s, uint32_t n_tok) {
    const model_hparams *hp = &m->hp;
    const size_t n = n_tok;
    const size_t nq = (size_t)hp->n_head * hp->head_dim, nkv = (size_t)hp->n_head_kv * hp->head_dim;
    size_t mm = mm_scratch_bytes(&m->output, (int64_t)n);
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const mm_weight *ws[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) {
            size_t b = mm_scratch_bytes(ws[i], (int64_t)n);
            if (b > mm) mm = b;
        }
    }
    /* q, k, v, att and gate, up: one region, two uses (model_int.h). */
    const size_t attn_part[] = {n * nq * 4, n * nkv * 4, n * nkv * 4, n * nq * 4};
    const size_t ffn_part[] = {n * hp->n_ff * 4, n * hp->n_ff * 4};
    size_t attn_bytes = 0, ffn_bytes = 0;
    for (size_t i = 0; i < 4; i++) attn_bytes += align64(attn_part[i]);
    for (size_t i = 0; i < 2; i++) ffn_bytes += align64(ffn_part[i]);
    const size_t sizes[] = {
        n * hp->n_embd * 4, n * hp->n_embd * 4, n * hp->n_rot * 4,
        attn_bytes > ffn_bytes ? attn_bytes : ffn_bytes, n * 4, n * sizeof(uint32_t *), mm,
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += align64(sizes[i]);
    char *base = aligned_zalloc(total, 64);
    if (!base) return INFERD_ENOMEM;
    aligned_free(s->base);
    s->base = base;
    s->bytes = total;
    s->n_tok = n_tok;
    float *shared = NULL;
    void **slots[] = {
        (void **)&s->x, (void **)&s->xn, (void **)&s->rope, (void **)&shared,
        (void **)&s->rows, (void **)&s->tables, &s->mm,
    };
    size_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *slots[i] = base + off;
        off += align64(sizes[i]);
    }
    char *p = (char *)shared;
    s->q = (float *)p;
    s->k = (float *)(p += align64(attn_part[0]));
    s->v = (float *)(p += align64(attn_part[1]));
    s->att = (float *)(p + align64(attn_part[2]));
    s->gate = shared;
    s->up = (float *)((char *)shared + align64(ffn_part[0]));
    return 0;
}

int model_reserve(model *m, uint32_t max_tokens) {
    if (max_tokens == 0) return INFERD_EINVAL;
    const uint32_t ub = m->params.max_ubatch;
    const uint32_t n_tok = max_tokens < ub ? max_tokens : ub;
    if (n_tok != m->s.n_tok) {
        int rc = scratch_alloc(m, &m->s, n_tok);
        if (rc) return rc;
    }
    m->s.max_batch = max_tokens;
    return 0;
}

uint32_t model_max_batch(const model *m) {
    return m->s.max_batch;
}

size_t model_scratch_bytes(const model *m) {
    size_t n = m->s.bytes;
    for (uint32_t i = 0; i < m->n_lanes; i++) n += m->lanes[i].bytes;
    return n;
}

void model_scratch_free(model_scratch *s) {
    aligned_free(s->base);
    free(s->last_pos);
    free(s->tail);
    memset(s, 0, sizeof(*s));
}

/* Checks every index the batch carries against the model and the pool. */
static int check_batch(const model *m, const kv_pool *kv, const model_batch *b, char *err,
                       size_t err_size) {
    if (b->n_tokens == 0 || !b->tokens || !b->pos || !b->seq || !b->seqs || b->n_seqs == 0)
        return err_set(err, err_size, INFERD_EINVAL,
                       "model: empty batch (%u tokens, %u sequences)", b->n_tokens, b->n_seqs);
    if (kv->n_layer != m->hp.n_layer || kv->n_head_kv != m->hp.n_head_kv ||
        kv->head_dim != m->hp.head_dim)
        return err_set(err, err_size, INFERD_EINVAL, "model: the KV pool was made for another model");
    for (uint32_t t = 0; t < b->n_tokens; t++) {
        const int32_t id = b->tokens[t], pos = b->pos[t], s = b->seq[t];
        if (id < 0 || (uint32_t)id >= m->hp.n_vocab)
            return err_set(err, err_size, INFERD_EINVAL,
                           "model: token %u of the batch has id %d, outside the vocabulary (%u)",
                           t, id, m->hp.n_vocab);
        if (s < 0 || (uint32_t)s >= b->n_seqs)
            return err_set(err, err_size, INFERD_EINVAL,
                           "model: token %u names sequence %d of %u", t, s, b->n_seqs);
        const model_seq *sq = &b->seqs[s];
        if (pos < 0 || (uint32_t)pos / kv->block_size >= sq->n_blocks || !sq->blocks)
            return err_set(err, err_size, INFERD_EINVAL,
                           "model: token %u has position %d, beyond its sequence's %u blocks of %u",
                           t, pos, sq->n_blocks, kv->block_size);
    }
    for (uint32_t s = 0; s < b->n_seqs; s++) {
        const model_seq *sq = &b->seqs[s];
        for (uint32_t i = 0; i < sq->n_blocks; i++) {
            if (sq->blocks[i] >= kv->n_blocks)
                return err_set(err, err_size, INFERD_EINVAL,
                               "model: sequence %u block %u is %u, the pool has %u blocks", s, i,
                               sq->blocks[i], kv->n_blocks);
        }
    }
    return 0;
}

/* 1 when every sequence's positions increase strictly in batch order: then
 * any cut into consecutive passes leaves each position a token attends to
 * written by its own or an earlier pass. 0 otherwise; -1 out of memory. */
static int splittable(model_scratch *s, const model_batch *b) {
    if (b->n_seqs > s->n_last_pos) {
        int32_t *p = realloc(s->last_pos, (size_t)b->n_seqs * sizeof *p);
        if (!p) return -1;
        s->last_pos = p;
        s->n_last_pos = b->n_seqs;
    }
    for (uint32_t i = 0; i < b->n_seqs; i++) s->last_pos[i] = -1;
    for (uint32_t t = 0; t < b->n_tokens; t++) {
        int32_t *last = &s->last_pos[b->seq[t]];
        if (b->pos[t] <= *last) return 0;
        *last = b->pos[t];
    }
    return 1;
}

/* The rows that want logits, gathered over the passes of a split batch:
 * their last layer from the output projection on runs once per up to
 * n_tok of them (see model_forward), not per pass. */
typedef struct tail {
    uint32_t n;     /* rows held in model_scratch.tail */
    uint32_t left;  /* logit rows of the batch not yet computed (held ones included) */
    float *logits;  /* where the next computed row goes */
} tail;

/* The last layer from the output projection on, and the logits, for the k
 * rows in s->att and s->x (f->il is the last layer). */
static void finish_rows(fwd *f, uint32_t k, float *logits) {
    model *m = f->m;
    model_scratch *s = f->s;
    threadpool *tp = f->tp;
    const model_layer *l = &m->layers[f->il];
    f->n_rows = k;
    mm_forward(tp, &l->wo, s->att, k, s->xn, s->mm); /* (R, H*D) -> (R, E) */
    stage(f, STAGE_FFN_NORM);
    /* (R, E) -> (R, F) twice */
    const mm_weight *gate_up[] = {&l->w_gate, &l->w_up};
    float *const gate_up_out[] = {s->gate, s->up};
    mm_forward_group(tp, gate_up, 2, s->xn, k, gate_up_out, s->mm);
    stage(f, STAGE_SILU);
    mm_forward(tp, &l->w_down, s->gate, k, s->xn, s->mm); /* (R, F) -> (R, E) */
    stage(f, STAGE_RESID);
    stage(f, STAGE_OUT_NORM);
    mm_forward(tp, &m->output, s->xn, k, logits, s->mm); /* (R, E) -> (R, V) */
}

/* Computes the first k held rows (through s->att and s->x) and drops them. */
static void tail_flush(fwd *f, tail *tl, uint32_t k) {
    const model_hparams *hp = &f->m->hp;
    model_scratch *s = f->s;
    const size_t nq = (size_t)hp->n_head * hp->head_dim, w = nq + hp->n_embd;
    for (uint32_t i = 0; i < k; i++) {
        memcpy(s->att + i * nq, s->tail + i * w, nq * sizeof(float));
        memcpy(s->x + (size_t)i * hp->n_embd, s->tail + i * w + nq, hp->n_embd * sizeof(float));
    }
    finish_rows(f, k, tl->logits);
    tl->logits += (size_t)k * hp->n_vocab;
    memmove(s->tail, s->tail + k * w, (size_t)(tl->n - k) * w * sizeof(float));
    tl->n -= k;
    tl->left -= k;
}

/* One pass over tokens [t0, t0 + n) of b: K/V into the pool, then the logits
 * of the pass's rows that want them: into logits (in batch order; *n_out
 * gets their number) when tl is NULL (the batch is this one pass), else
 * into the tail, computed when n_tok of them are held (see model_forward).
 * Returns 0, or INFERD_EIO when an embedding row cannot be read from the
 * file (nothing written then). */
static int forward_pass(model *m, model_scratch *s, threadpool *tp, kv_pool *kv,
                        const model_batch *b, uint32_t t0, uint32_t n, float *logits,
                        uint32_t *n_out, tail *tl, char *err, size_t err_size) {
    const model_hparams *hp = &m->hp;
    const size_t nq = (size_t)hp->n_head * hp->head_dim;
    const uint32_t T = b->n_tokens;

    /* Rows kept for logits, in batch order (indices within the pass). */
    uint32_t r = 0;
    for (uint32_t t = 0; t < n; t++) {
        if (b->want_logits ? b->want_logits[t0 + t] : t0 + t == T - 1) s->rows[r++] = t;
    }
    for (uint32_t t = 0; t < n; t++) s->tables[t] = b->seqs[b->seq[t0 + t]].blocks;

    fwd f = {.m = m, .s = s, .tp = tp, .kv = kv, .b = b, .t0 = t0, .n_tok = n, .n_rows = n};
    f.attn = (attn_args){
        .n_tokens = n, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
        .head_dim = hp->head_dim, .q = s->q, .q_stride = nq, .out = s->att, .out_stride = nq,
        .kv_type = kv->type, .block_size = kv->block_size, .pos = b->pos + t0,
        .tables = s->tables, .scale = 1.0f / sqrtf((float)hp->head_dim),
    };

    *n_out = 0;
    stage(&f, STAGE_EMBED);
    if (__atomic_load_n(&f.io_error, __ATOMIC_RELAXED))
        return err_set(err, err_size, INFERD_EIO,
                       "model: cannot read token_embd rows from the model file");
    for (uint32_t il = 0;; il++) {
        const model_layer *l = &m->layers[il];
        f.il = il;
        stage(&f, STAGE_ATTN_NORM);
        /* (T, E) -> (T, H*D), (T, Hkv*D), (T, Hkv*D) */
        const mm_weight *qkv[] = {&l->wq, &l->wk, &l->wv};
        float *const qkv_out[] = {s->q, s->k, s->v};
        mm_forward_group(tp, qkv, 3, s->xn, n, qkv_out, s->mm);
        stage(&f, STAGE_QKV);
        const char *pool = kv->data;
        f.attn.k = pool + (size_t)2 * il * kv->layer_bytes;
        f.attn.v = pool + ((size_t)2 * il + 1) * kv->layer_bytes;
        stage(&f, STAGE_ATTN);
        if (il == hp->n_layer - 1) break;
        mm_forward(tp, &l->wo, s->att, n, s->xn, s->mm); /* (T, H*D) -> (T, E) */
        stage(&f, STAGE_FFN_NORM);
        /* (T, E) -> (T, F) twice */
        const mm_weight *gate_up[] = {&l->w_gate, &l->w_up};
        float *const gate_up_out[] = {s->gate, s->up};
        mm_forward_group(tp, gate_up, 2, s->xn, n, gate_up_out, s->mm);
        stage(&f, STAGE_SILU);
        mm_forward(tp, &l->w_down, s->gate, n, s->xn, s->mm); /* (T, F) -> (T, E) */
        stage(&f, STAGE_RESID);
    }
    /* Last layer: only the rows that give logits go on. */
    if (!tl) {
        /* s->rows is ascending, so moving row rows[i] down to i never
         * overwrites a row still needed. */
        for (uint32_t i = 0; i < r; i++) {
            const uint32_t src = s->rows[i];
            if (src == i) continue;
            memcpy(s->att + (size_t)i * nq, s->att + (size_t)src * nq, nq * sizeof(float));
            memcpy(s->x + (size_t)i * hp->n_embd, s->x + (size_t)src * hp->n_embd,
                   hp->n_embd * sizeof(float));
        }
        if (r > 0) finish_rows(&f, r, logits);
        *n_out = r;
        return 0;
    }
    const size_t w = nq + hp->n_embd;
    for (uint32_t i = 0; i < r; i++) {
        const uint32_t src = s->rows[i];
        memcpy(s->tail + (size_t)tl->n * w, s->att + (size_t)src * nq, nq * sizeof(float));
        memcpy(s->tail + (size_t)tl->n * w + nq, s->x + (size_t)src * hp->n_embd,
               hp->n_embd * sizeof(float));
        tl->n++;
    }
    while (tl->n >= s->n_tok) {
        /* Leave at least MIN_PASS rows for the last computation (few-row
         * products take another kernel path, see model_forward). */
        uint32_t k = s->n_tok;
        if (tl->left > k && tl->left - k < MIN_PASS && tl->left >= 2 * MIN_PASS)
            k = tl->left - MIN_PASS;
        tail_flush(&f, tl, k);
    }
    if (t0 + n == T && tl->n > 0) tail_flush(&f, tl, tl->n);
    return 0;
}

/* The batch b (checked) through scratch s on pool tp (NULL: the calling
 * thread): one pass, or passes of s->n_tok tokens whose logit rows finish
 * together (see model_forward). */
static int forward_batch(model *m, model_scratch *s, threadpool *tp, kv_pool *kv,
                         const model_batch *b, float *logits, char *err, size_t err_size) {
    const uint32_t T = b->n_tokens;
    int rc;
    uint32_t per = s->n_tok;
    if (T > per) {
        int ok = splittable(s, b);
        if (ok < 0)
            return err_set(err, err_size, INFERD_ENOMEM, "model: out of memory for %u sequences",
                           b->n_seqs);
        if (!ok) {
            if ((rc = scratch_alloc(m, s, T)) != 0)
                return err_set(err, err_size, rc,
                               "model: cannot grow scratch to %u tokens (a sequence's positions "
                               "do not increase in batch order, so the batch runs in one pass)", T);
            per = T;
        }
    }
    if (per >= T) {
        uint32_t r = 0;
        return forward_pass(m, s, tp, kv, b, 0, T, logits, &r, NULL, err, err_size);
    }
    /* Split: the rows that want logits finish their last layer together, up
     * to n_tok at a time, as they would in one pass (a product's rows are
     * computed alike whatever its other rows, except that products of fewer
     * than MIN_PASS rows take the kernels' one-row paths). */
    uint32_t R = 0;
    for (uint32_t t = 0; t < T; t++) R += b->want_logits ? b->want_logits[t] != 0 : t == T - 1;
    const uint32_t cap = R < 2 * per ? R : 2 * per;
    if (cap > s->n_tail) {
        const size_t w = (size_t)m->hp.n_head * m->hp.head_dim + m->hp.n_embd;
        float *p = realloc(s->tail, (size_t)cap * w * sizeof(float));
        if (!p)
            return err_set(err, err_size, INFERD_ENOMEM, "model: out of memory for %u logit rows", cap);
        s->tail = p;
        s->n_tail = cap;
    }
    tail tl = {.n = 0, .left = R, .logits = logits};
    for (uint32_t t0 = 0, n; t0 < T; t0 += n) {
        n = T - t0 < per ? T - t0 : per;
        /* No short last pass after a longer one: the kernels compute
         * products of fewer than MIN_PASS rows one row at a time, in
         * another summation order than their tiles for some types (F16: 1
         * row, K-quants: 1-2 rows), so those rows would not match the single
         * pass bit for bit. */
        if (T - t0 > per && T - t0 < per + MIN_PASS && per >= 2 * MIN_PASS) n = T - t0 - MIN_PASS;
        uint32_t r = 0;
        if ((rc = forward_pass(m, s, tp, kv, b, t0, n, logits, &r, &tl, err, err_size)) != 0)
            return rc;
    }
    return 0;
}

/* Lanes: a batch of many sequences runs as one independent forward per
 * pool thread, each over its own sequences, on the calling thread's kernels
 * (no synchronisation inside), instead of every step split over the pool.
 * Each lane streams the weights itself, so this pays only when every lane
 * has rows enough for its products to be compute-bound: two lanes of 16
 * sequences ran 2048 decoded tokens of bench-110m Q8_0 in 2.54 s where one
 * 32-sequence forward on 2 threads took 2.8 s (docs/performance.md). */
typedef struct lane_job {
    model *m;
    kv_pool *kv;
    model_batch sub[MODEL_MAX_LANES];
    float *logits[MODEL_MAX_LANES];
    int rc[MODEL_MAX_LANES];
    char err[MODEL_MAX_LANES][160];
} lane_job;

static void run_lane(void *arg, int ith, int nth) {
    (void)nth;
    lane_job *j = arg;
    model_scratch *s = ith == 0 ? &j->m->s : &j->m->lanes[ith - 1];
    j->rc[ith] = forward_batch(j->m, s, NULL, j->kv, &j->sub[ith], j->logits[ith], j->err[ith],
                               sizeof j->err[ith]);
}

/* Cuts b into nth lanes at sequence boundaries (no sequence in two lanes),
 * balanced on an estimate of each token's work: its share of the products
 * (W per layer, plus the output projection for a logit row) and of the
 * attention, whose pool reads cost about 14 multiply-adds a byte here.
 * cut[0..nth] are the lanes' first tokens (cut[nth] = T). Returns 1 when
 * every lane has at least MODEL_LANE_MIN_TOKENS tokens and MIN_PASS logit
 * rows (fewer would take the kernels' few-row paths), else 0. */
static int plan_lanes(const model *m, const kv_pool *kv, const model_batch *b, uint32_t nth,
                      uint32_t *cut, uint32_t *last_of_seq) {
    const model_hparams *hp = &m->hp;
    const uint32_t T = b->n_tokens;
    if (!b->want_logits || T < nth * MODEL_LANE_MIN_TOKENS) return 0;
    const double W = (double)hp->n_embd * (2.0 * hp->n_head * hp->head_dim +
                                           2.0 * hp->n_head_kv * hp->head_dim + 3.0 * hp->n_ff);
    const double A = 14.0 * 2 * hp->n_head_kv * hp->head_dim * (kv->type == DTYPE_F16 ? 2 : 4);
    const double O = (double)hp->n_embd * hp->n_vocab / hp->n_layer;
    for (uint32_t i = 0; i < b->n_seqs; i++) last_of_seq[i] = 0;
    double total = 0;
    for (uint32_t t = 0; t < T; t++) {
        last_of_seq[b->seq[t]] = t;
        total += W + A * (b->pos[t] + 1) + (b->want_logits[t] ? O : 0);
    }
    /* A cut before token t is valid when every sequence seen so far ends
     * before t. */
    double acc = 0;
    uint32_t reach = 0, k = 1;
    cut[0] = 0;
    for (uint32_t t = 0; t < T && k < nth; t++) {
        if (t > 0 && reach < t && acc >= total * k / nth) cut[k++] = t;
        if (last_of_seq[b->seq[t]] > reach) reach = last_of_seq[b->seq[t]];
        acc += W + A * (b->pos[t] + 1) + (b->want_logits[t] ? O : 0);
    }
    if (k < nth) return 0;
    cut[nth] = T;
    for (uint32_t i = 0; i < nth; i++) {
        uint32_t rows = 0;
        for (uint32_t t = cut[i]; t < cut[i + 1]; t++) rows += b->want_logits[t] != 0;
        if (cut[i + 1] - cut[i] < MODEL_LANE_MIN_TOKENS || rows < MIN_PASS) return 0;
    }
    return 1;
}

/* Runs b as lanes when plan_lanes takes it: returns -1 when it does not
 * (nothing done), else forward's status. */
static int forward_lanes(model *m, kv_pool *kv, const model_batch *b, float *logits, char *err,
                         size_t err_size) {
    const uint32_t nth = (uint32_t)threadpool_n_threads(m->tp);
    if (nth < 2 || nth > MODEL_MAX_LANES || m->params.no_lanes) return -1;
    uint32_t cut[MODEL_MAX_LANES + 1];
    uint32_t *last = malloc((size_t)b->n_seqs * sizeof *last);
    if (!last) return -1;
    int ok = plan_lanes(m, kv, b, nth, cut, last);
    free(last);
    if (!ok) return -1;
    if (m->n_lanes < nth - 1) {
        model_scratch *p = realloc(m->lanes, (size_t)(nth - 1) * sizeof *p);
        if (!p) return -1;
        m->lanes = p;
        for (uint32_t i = m->n_lanes; i < nth - 1; i++) memset(&m->lanes[i], 0, sizeof m->lanes[i]);
        m->n_lanes = nth - 1;
    }
    for (uint32_t i = 0; i + 1 < nth; i++) {
        model_scratch *s = &m->lanes[i];
        if (s->n_tok != m->s.n_tok && scratch_alloc(m, s, m->s.n_tok)) return -1;
    }
    lane_job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    j->m = m;
    j->kv = kv;
    size_t row = 0;
    for (uint32_t i = 0; i < nth; i++) {
        model_batch *sb = &j->sub[i];
        *sb = *b;
        sb->n_tokens = cut[i + 1] - cut[i];
        sb->tokens = b->tokens + cut[i];
        sb->pos = b->pos + cut[i];
        sb->seq = b->seq + cut[i];
        sb->want_logits = b->want_logits + cut[i];
        j->logits[i] = logits + row * m->hp.n_vocab;
        for (uint32_t t = cut[i]; t < cut[i + 1]; t++) row += b->want_logits[t] != 0;
    }
    threadpool_run(m->tp, run_lane, j);
    m->n_lane_forwards++;
    int rc = 0;
    for (uint32_t i = 0; i < nth && !rc; i++) {
        if ((rc = j->rc[i]) != 0) err_set(err, err_size, rc, "%s", j->err[i]);
    }
    free(j);
    return rc;
}

int model_forward(model *m, kv_pool *kv, const model_batch *b, float *logits, char *err,
                  size_t err_size) {
    int rc = check_batch(m, kv, b, err, err_size);
    if (rc) return rc;
    const uint32_t T = b->n_tokens;
    if (T > m->s.max_batch && (rc = model_reserve(m, T)) != 0)
        return err_set(err, err_size, rc, "model: cannot grow scratch to %u tokens", T);
    if ((rc = forward_lanes(m, kv, b, logits, err, err_size)) >= 0) return rc;
    return forward_batch(m, &m->s, m->tp, kv, b, logits, err, err_size);
}

/* Writes one token's K and V rows (after rope) into the pool for layer il. */
static void store_kv(const fwd *f, uint32_t t, const float *k, const float *v) {
    const kv_pool *kv = f->kv;
    const model_batch *b = f->b;
    const uint32_t pos = (uint32_t)b->pos[f->t0 + t];
    const uint32_t block = b->seqs[b->seq[f->t0 + t]].blocks[pos / kv->block_size];
    const size_t n = (size_t)kv->n_head_kv * kv->head_dim;
    const size_t row = ((size_t)block * kv->block_size + pos % kv->block_size) * n;
    char *kl = (char *)kv->data + (size_t)2 * f->il * kv->layer_bytes;
    char *vl = kl + kv->layer_bytes;
    const size_t elem = kv->type == DTYPE_F16 ? 2 : 4;
    attn_store_row(kv->type, kl + row * elem, k, (uint32_t)n);
    attn_store_row(kv->type, vl + row * elem, v, (uint32_t)n);
}

/* Reads n bytes at off; 0, or -1 on an error or end of file. */
static int pread_full(int fd, void *dst, size_t n, uint64_t off) {
    char *p = dst;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

static void add_bias(float *x, const float *bias, size_t n) {
    if (bias) op_add(x, x, bias, (uint32_t)n);
}

static void run_stage(void *arg, int ith, int nth) {
    fwd *f = arg;
    const model *m = f->m;
    const model_hparams *hp = &m->hp;
    const model_scratch *s = f->s;
    const model_layer *l = f->stage == STAGE_EMBED || f->stage == STAGE_OUT_NORM
                               ? NULL : &m->layers[f->il];
    const uint32_t E = hp->n_embd;
    const size_t nq = (size_t)hp->n_head * hp->head_dim;
    const size_t nkv = (size_t)hp->n_head_kv * hp->head_dim;

    if (f->stage == STAGE_ATTN) {
        attn_forward_range(&f->attn, (uint32_t)ith, (uint32_t)nth);
        return;
    }
    uint32_t n_rows = f->n_rows;
    if (f->stage == STAGE_EMBED || f->stage == STAGE_QKV) n_rows = f->n_tok;
    const uint32_t per = (n_rows + (uint32_t)nth - 1) / (uint32_t)nth;
    const uint32_t t0 = per * (uint32_t)ith;
    const uint32_t t1 = t0 + per < n_rows ? t0 + per : n_rows;

    for (uint32_t t = t0; t < t1; t++) {
        float *x = s->x + (size_t)t * E, *xn = s->xn + (size_t)t * E;
        switch (f->stage) {
        case STAGE_EMBED: {
            const gguf_tensor *te = m->tok_embd;
            const size_t row_bytes = te->size_bytes / hp->n_vocab;
            const size_t id = (size_t)f->b->tokens[f->t0 + t];
            const void *row = (const char *)te->data + id * row_bytes;
            if (m->embd_fd >= 0) {
                /* From the file, not the mapping (model_int.h); the raw row
                 * lands in xn (row_bytes <= 4 E), free until the norm. */
                if (pread_full(m->embd_fd, xn, row_bytes, m->embd_off + id * row_bytes)) {
                    __atomic_store_n(&f->io_error, 1, __ATOMIC_RELAXED);
                    break;
                }
                row = xn;
            }
            dequantize_row(te->type, row, x, E);
            op_rope_cache(&m->rope, f->b->pos[f->t0 + t], s->rope + (size_t)t * hp->n_rot);
            break;
        }
        case STAGE_ATTN_NORM:
            op_rmsnorm(xn, x, l->attn_norm, E, hp->rms_eps);
            break;
        case STAGE_QKV: {
            float *q = s->q + t * nq, *k = s->k + t * nkv, *v = s->v + t * nkv;
            add_bias(q, l->bq, nq);
            add_bias(k, l->bk, nkv);
            add_bias(v, l->bv, nkv);
            const float *cache = s->rope + (size_t)t * hp->n_rot;
            op_rope_apply(q, hp->n_head, hp->head_dim, hp->n_rot, m->rope.mode, cache);
            op_rope_apply(k, hp->n_head_kv, hp->head_dim, hp->n_rot, m->rope.mode, cache);
            store_kv(f, t, k, v);
            break;
        }
        case STAGE_FFN_NORM:
            add_bias(xn, l->bo, E);
            op_add(x, x, xn, E);
            op_rmsnorm(xn, x, l->ffn_norm, E, hp->rms_eps);
            break;
        case STAGE_SILU:
            op_silu_mul(s->gate + (size_t)t * hp->n_ff, s->gate + (size_t)t * hp->n_ff,
                        s->up + (size_t)t * hp->n_ff, hp->n_ff);
            break;
        case STAGE_RESID:
            op_add(x, x, xn, E);
            break;
        case STAGE_OUT_NORM: /* the last layer left exactly the logit rows, in order */
            op_rmsnorm(xn, x, m->output_norm, E, hp->rms_eps);
            break;
        default:
            break;
        }
    }
}
