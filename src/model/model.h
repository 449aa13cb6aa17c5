/*
 * model.h - a llama-family transformer bound to the tensors of a GGUF file,
 * and its forward pass over one flat batch of tokens from many sequences.
 *
 * Architectures: "llama" (llama 1/2/3, mistral, GQA, rope scaling none/linear/
 * yarn, tied output embeddings) and "qwen2" (llama + q/k/v biases, NEOX rope).
 * Weights stay in the mmap'd file (any type of src/kernels/quant.h); the
 * engine owns the KV block allocation and passes block tables per sequence.
 *
 * KV pool layout (one allocation; per layer l, K then V):
 *   k[l], v[l]: (n_blocks, block_size, n_head_kv, head_dim), f32 or f16.
 *   Position j of a sequence lives in block seq.blocks[j / block_size], slot
 *   j % block_size. A block belongs to whichever sequences' tables name it
 *   (prefix sharing is the engine's business; the forward only writes the
 *   slots of the batch's own positions).
 *
 * Threads: a model handle is used by one thread at a time (the engine
 * thread); model_forward spreads its work over the model's thread pool.
 */
#ifndef MODEL_MODEL_H
#define MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

typedef struct model model;
typedef struct tokenizer tokenizer; /* src/tok/tokenizer.h */
typedef struct kv_pool kv_pool;

enum model_rope_type {
    MODEL_ROPE_NORM = 0, /* ggml "normal": rotate adjacent pairs (x[2i], x[2i+1]) (llama) */
    MODEL_ROPE_NEOX = 2, /* ggml NEOX: rotate halves (x[i], x[i + n_rot/2]) (qwen2) */
};

enum model_rope_scaling {
    MODEL_ROPE_SCALING_NONE = 0,
    MODEL_ROPE_SCALING_LINEAR = 1,
    MODEL_ROPE_SCALING_YARN = 2,
};

typedef struct model_hparams {
    char arch[32];          /* general.architecture: "llama" or "qwen2" */
    uint32_t n_vocab;       /* rows of token_embd */
    uint32_t n_ctx_train;   /* <arch>.context_length */
    uint32_t n_embd;        /* <arch>.embedding_length */
    uint32_t n_ff;          /* <arch>.feed_forward_length */
    uint32_t n_layer;       /* <arch>.block_count */
    uint32_t n_head;        /* <arch>.attention.head_count */
    uint32_t n_head_kv;     /* <arch>.attention.head_count_kv (default n_head) */
    uint32_t head_dim;      /* n_embd / n_head (or <arch>.attention.key_length) */
    uint32_t n_rot;         /* <arch>.rope.dimension_count (default head_dim) */
    float rms_eps;          /* <arch>.attention.layer_norm_rms_epsilon */
    float rope_freq_base;   /* <arch>.rope.freq_base (default 10000) */
    float rope_freq_scale;  /* 1 / <arch>.rope.scaling.factor (1 when none) */
    int rope_type;          /* enum model_rope_type */
    int rope_scaling;       /* enum model_rope_scaling */
    /* YaRN (only used when rope_scaling is YARN), as llama.cpp's defaults. */
    uint32_t n_ctx_orig;    /* <arch>.rope.scaling.original_context_length (default n_ctx_train) */
    float yarn_ext_factor;  /* 1 for yarn, else 0 */
    float yarn_attn_factor; /* <arch>.rope.scaling.attn_factor (default 1; any scaling type) */
    float yarn_beta_fast;   /* 32 */
    float yarn_beta_slow;   /* 1 */
    int has_rope_freqs;     /* rope_freqs.weight present (llama 3.1 frequency factors) */
    int tied_output;        /* output.weight absent: logits use token_embd */
    enum dtype weight_type; /* type of blk.0.attn_q.weight (for display) */
} model_hparams;

typedef struct model_params {
    int n_threads;          /* kernel worker threads; 0 = number of online CPUs */
    uint32_t max_batch;     /* tokens per forward to reserve scratch for (0 = 512) */
    uint32_t max_ubatch;    /* tokens per pass through the layers (0 = MODEL_UBATCH): a
                             * larger batch runs in passes of this many, so the scratch
                             * holds min(max_batch, max_ubatch) tokens */
    int no_lanes;           /* 1: never cut a batch into lanes (see model_forward); the
                             * environment's INFERD_LANES=0 sets it too */
} model_params;

/* Default tokens per pass (model_params.max_ubatch), and the fewest a
 * model takes (a smaller max_ubatch is raised to it): see model_forward. */
#define MODEL_UBATCH 128
#define MODEL_UBATCH_MIN 6

/* Defaults: n_threads 0 (all cores), max_batch 512, max_ubatch MODEL_UBATCH. */
model_params model_default_params(void);

/* Opens the GGUF at path, checks the architecture, hyper-parameters and every
 * tensor's presence, shape and type, loads the tokenizer from the same file
 * and reserves scratch for p->max_batch tokens. p may be NULL (defaults).
 * Returns 0 and *out (owned by the caller; free with model_free), or
 * INFERD_EIO / INFERD_EFORMAT / INFERD_EUNSUPPORTED / INFERD_ENOMEM with a
 * message naming the key or tensor and the value; *out is NULL then. */
int model_load(const char *path, const model_params *p, model **out, char *err,
               size_t err_size);
/* Frees everything the model owns (mapping, tokenizer, threads, scratch).
 * Accepts NULL. */
void model_free(model *m);

/* Borrowed views, valid until model_free. */
const model_hparams *model_get_hparams(const model *m);
const tokenizer *model_get_tokenizer(const model *m);
/* tokenizer.chat_template (NUL-terminated), or NULL when the file has none. */
const char *model_chat_template(const model *m);

/* Reserves scratch for forwards of up to max_tokens tokens (one allocation
 * holding min(max_tokens, max_ubatch) tokens; model_forward never allocates
 * for batches within it). Returns 0, INFERD_EINVAL for 0, or INFERD_ENOMEM
 * (the old reservation is kept). */
int model_reserve(model *m, uint32_t max_tokens);
/* Tokens per forward currently reserved. */
uint32_t model_max_batch(const model *m);

/* Bytes of the forward pass's scratch allocation (activations of one pass). */
size_t model_scratch_bytes(const model *m);

/* ---- KV storage ---- */

/* Bytes one block takes over all layers (K and V). 0 for a kv_type other
 * than DTYPE_F32 / DTYPE_F16. */
size_t kv_pool_bytes_per_block(const model *m, uint32_t block_size, enum dtype kv_type);
/* Allocates n_blocks blocks of block_size positions (zeroed) for m's shape.
 * kv_type is DTYPE_F32 or DTYPE_F16. Returns 0 and *out (free with
 * kv_pool_free), INFERD_EINVAL (zero sizes, other type), INFERD_ERANGE
 * (size overflow) or INFERD_ENOMEM. */
int kv_pool_new(const model *m, uint32_t n_blocks, uint32_t block_size, enum dtype kv_type,
                kv_pool **out, char *err, size_t err_size);
/* Accepts NULL. */
void kv_pool_free(kv_pool *kv);
uint32_t kv_pool_n_blocks(const kv_pool *kv);
uint32_t kv_pool_block_size(const kv_pool *kv);
enum dtype kv_pool_type(const kv_pool *kv);

/* ---- forward ---- */

/* One sequence's block table (borrowed): position j lives in
 * blocks[j / block_size], slot j % block_size. */
typedef struct model_seq {
    const uint32_t *blocks;
    uint32_t n_blocks;
} model_seq;

/* A flat batch: any mix of prefill chunks and decode tokens of several
 * sequences. All arrays are borrowed for the call. */
typedef struct model_batch {
    uint32_t n_tokens;
    const int32_t *tokens;      /* (n_tokens) token ids, < n_vocab */
    const int32_t *pos;         /* (n_tokens) position within its sequence */
    const int32_t *seq;         /* (n_tokens) index into seqs */
    const uint8_t *want_logits; /* (n_tokens) 1 = return this row's logits; NULL = last token only */
    uint32_t n_seqs;
    const model_seq *seqs;      /* (n_seqs) */
} model_batch;

/* Runs the model over b: writes each token's K/V at (its sequence's block
 * table, its pos), then each token attends causally to positions 0..pos of
 * its own sequence (earlier positions must already be in the pool, written by
 * an earlier forward or earlier in this batch). Within one sequence a batch
 * may hold any set of positions as long as every position a token attends to
 * is written by then.
 * logits: (number of rows with want_logits, n_vocab) in batch order; with
 * want_logits NULL, one row for the batch's last token.
 * Returns 0; INFERD_EINVAL (token id, position, seq index or block out of
 * range, n_tokens 0) or INFERD_ENOMEM (batch above the reservation and growing
 * failed) with a message; the pool may then hold partial writes for this
 * batch's positions only. Batches above model_max_batch grow the reservation
 * once (model_reserve). A batch above max_ubatch tokens runs through the
 * layers in consecutive passes of max_ubatch tokens (each pass's K/V is in the
 * pool before the next pass attends; the rows that want logits finish the
 * last layer together, up to max_ubatch at a time); every row's arithmetic
 * is independent of the other rows of a product of 3 or more, so logits and
 * K/V equal a single pass bit for bit. A
 * batch in which some sequence's positions do not increase in batch order
 * cannot be cut that way and runs in one pass (growing the scratch to it).
 * Lanes: with 2 or more threads, a batch that cuts at sequence boundaries
 * into one part per thread, each of at least 16 tokens and 3 logit rows
 * (decode steps of 32 or more sequences, prefill
 * steps of many prompts), runs as one independent forward per thread, each
 * single-threaded over its own sequences (no synchronisation inside); every
 * row's bits are the same as on the whole pool (p->no_lanes turns it off). */
int model_forward(model *m, kv_pool *kv, const model_batch *b, float *logits, char *err,
                  size_t err_size);

#endif
