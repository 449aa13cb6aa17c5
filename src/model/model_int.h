/*
 * model_int.h - private to src/model/: the model handle (weights bound to the
 * GGUF mapping, scratch), the KV pool and the forward pass's helpers.
 */
#ifndef MODEL_MODEL_INT_H
#define MODEL_MODEL_INT_H

#include "gguf/gguf.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/threadpool.h"
#include "model/model.h"

typedef struct model_layer {
    float *attn_norm;  /* (n_embd), owned (converted to f32 at load) */
    float *ffn_norm;   /* (n_embd), owned */
    float *bq, *bk, *bv, *bo; /* (n_head*head_dim), (n_kv), (n_kv), (n_embd) or NULL; owned */
    mm_weight wq;      /* (n_embd -> n_head * head_dim) */
    mm_weight wk;      /* (n_embd -> n_head_kv * head_dim) */
    mm_weight wv;      /* (n_embd -> n_head_kv * head_dim) */
    mm_weight wo;      /* (n_head * head_dim -> n_embd) */
    mm_weight w_gate;  /* (n_embd -> n_ff) */
    mm_weight w_up;    /* (n_embd -> n_ff) */
    mm_weight w_down;  /* (n_ff -> n_embd) */
} model_layer;

/* Per-pass scratch, carved from one allocation sized for n_tok tokens: a
 * forward runs its batch through the layers in passes of at most n_tok
 * tokens (micro-batches), so the scratch does not grow with the batch. q, k,
 * v and att (live from the Q/K/V product to the output projection) share
 * their bytes with gate and up (live from the gate/up product to the down
 * projection). */
typedef struct model_scratch {
    uint32_t max_batch; /* batch size reserved for (model_max_batch) */
    uint32_t n_tok;     /* tokens one pass holds */
    size_t bytes;       /* size of the allocation */
    void *base;         /* owned, the single allocation */
    float *x;           /* (n_tok, n_embd) residual stream */
    float *xn;          /* (n_tok, n_embd) normed input of a sub-layer */
    float *rope;        /* (n_tok, n_rot) cos/sin per token */
    float *q;           /* (n_tok, n_head * head_dim)     } shared region */
    float *k;           /* (n_tok, n_head_kv * head_dim)  } */
    float *v;           /* (n_tok, n_head_kv * head_dim)  } */
    float *att;         /* (n_tok, n_head * head_dim)     } attention output */
    float *gate;        /* (n_tok, n_ff)                  } same bytes as q.. */
    float *up;          /* (n_tok, n_ff)                  } */
    uint32_t *rows;     /* (n_tok) pass indices of the rows kept for logits */
    const uint32_t **tables; /* (n_tok) block table of each token's sequence */
    void *mm;           /* matmul scratch (largest mm_scratch_bytes) */
    int32_t *last_pos;  /* (n_last_pos) per sequence, to check a batch can be split; owned */
    uint32_t n_last_pos;
    float *tail;        /* (n_tail, n_head * head_dim + n_embd): att and x rows of a split
                         * batch's logit rows, waiting for their last layer; owned */
    uint32_t n_tail;
} model_scratch;

struct model {
    model_hparams hp;
    model_params params;
    gguf_file *gguf;           /* owned: weights point into its mapping */
    tokenizer *tok;            /* owned */
    char *chat_template;       /* owned, or NULL */
    threadpool *tp;            /* owned */
    const gguf_tensor *tok_embd; /* (n_vocab, n_embd) rows, any supported type */
    int embd_fd;               /* owned, or -1: the file, to pread embedding rows from */
    uint64_t embd_off;         /* file offset of token_embd (with embd_fd) */
    float *output_norm;        /* (n_embd), owned */
    float *rope_freqs;         /* (n_rot / 2), owned, or NULL */
    mm_weight output;          /* (n_embd -> n_vocab): output.weight or token_embd */
    model_layer *layers;       /* (n_layer), owned */
    op_rope_params rope;
    model_scratch s;
    model_scratch *lanes;      /* (n_lanes) owned: scratch of lanes 1.. (model_forward) */
    uint32_t n_lanes;
    uint64_t n_lane_forwards;  /* forwards that ran as lanes (tests read it) */
};

struct kv_pool {
    uint32_t n_blocks, block_size;
    uint32_t n_layer, n_head_kv, head_dim;
    enum dtype type;
    size_t layer_bytes;        /* bytes of one layer's K (or V) */
    void *data;                /* owned: for layer l, K at 2*l*layer_bytes, V after it */
};

/* Most lanes (pool threads) a batch is cut into, and fewest tokens a lane
 * takes (model_forward.c, model.h). */
#define MODEL_MAX_LANES 64
#define MODEL_LANE_MIN_TOKENS 16

/* Frees the scratch (its allocations) and zeroes it. */
void model_scratch_free(model_scratch *s);

#endif
