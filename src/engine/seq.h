/*
 * seq.h - the engine's request and sequence types (engine-internal: only
 * src/engine and its tests use them). A request owns copies of everything
 * the caller passed; each of its n choices is one sequence.
 *
 * Sequence states:
 *   WAITING   in the scheduler's waiting queue, no blocks (new, forked or
 *             preempted: tokens kept, KV recomputed on admission)
 *   RUNNING   admitted: holds blocks for tokens[0..n_computed) and more
 *   FINISHED  out of every queue, blocks released; freed with its request
 *             (also the state of a choice not forked yet)
 * Invariant: n_computed <= n_tokens; tokens[n_computed..n_tokens) still need
 * a forward (1 for a decode, more while prefilling); a sequence is sampled
 * when a step computes its last token.
 */
#ifndef ENGINE_SEQ_H
#define ENGINE_SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "engine/detok.h"
#include "inferd.h"

enum seq_state { SEQ_WAITING = 0, SEQ_RUNNING = 1, SEQ_FINISHED = 2 };

typedef struct seq seq;

typedef struct request {
    inferd_request_id id;
    void *user;
    inferd_sampling_params sp; /* arrays point at the owned copies below */
    int32_t *prompt;           /* owned (n_prompt) */
    uint32_t n_prompt;
    char **stops;              /* owned (sp.n_stop) NUL-terminated */
    size_t *stop_lens;         /* owned */
    int32_t *stop_ids;         /* owned */
    int32_t *bias_ids;         /* owned */
    float *bias_vals;          /* owned */
    uint32_t max_len;          /* token cap of each sequence (prompt + generated) */
    uint32_t n_seqs;           /* sequences made so far (1, then n after the fork) */
    uint32_t n_live;           /* sequences not finished */
    seq **seqs;                /* owned array (sp.n) of owned sequences */
    int failed;                /* engine thread: to be finished with an error */
    struct request *next;      /* inbox / active list link */
} request;

struct seq {
    request *req;    /* borrowed from its request (which owns the seq) */
    uint32_t choice;
    enum seq_state state;
    int32_t *tokens; /* owned (req->max_len): prompt then generated */
    uint32_t n_tokens, n_computed;
    uint32_t *blocks; /* owned (cap_blocks) block table */
    uint32_t n_blocks, cap_blocks;
    uint32_t n_hashed;  /* blocks[0..n_hashed) are full, computed and chained */
    uint64_t chain;     /* hash of block n_hashed-1 (KV_HASH_ROOT when none) */
    uint64_t rng;       /* sampler state */
    uint64_t admit_no;  /* admission order (larger = more recent) */
    uint32_t cached_tokens; /* prompt tokens served by the prefix cache (first admission) */
    int admitted_once;
    int fork_pending;   /* choice 0 of an n > 1 request, before its first token */
    int share_lookup;   /* look up shared blocks even with prefix caching off (forks) */
    detok dt;
    seq *prev, *next;   /* scheduler queue links */
    /* Per step (scheduler): tokens scheduled now, and its logits row. */
    uint32_t chunk;
    int32_t logits_row; /* -1 when not sampled this step */
};

/* A doubly linked queue of sequences. */
typedef struct seq_list {
    seq *head, *tail;
    uint32_t n;
} seq_list;

/* Links s (in no list) at the back / front of l. */
void seq_list_push_back(seq_list *l, seq *s);
void seq_list_push_front(seq_list *l, seq *s);
/* Unlinks s, which must be in l. */
void seq_list_remove(seq_list *l, seq *s);

#endif
