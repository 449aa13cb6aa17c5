/*
 * scheduler.h - picks each step's work (DESIGN.md, "Engine policy"):
 *   1. running decodes, one token each, in admission order;
 *   2. running prefills continue, in chunks, with what is left of the budget;
 *   3. waiting sequences are admitted (FIFO) while the token budget, the
 *      sequence cap and free blocks allow; a new one first takes the longest
 *      cached prefix of its tokens (full blocks found by hash chain).
 * When a decode (or a prefill that cannot move at all) needs a block and
 * none is free, the most recently admitted running sequence not yet picked
 * this step is preempted: its blocks are released (their hashes keep them
 * findable) and it goes back to the front of the waiting queue, to be
 * recomputed later.
 *
 * Pure bookkeeping over seq.h and kvcache.h: the engine runs the forward for
 * the plan, then calls sched_commit. Engine thread only.
 */
#ifndef ENGINE_SCHEDULER_H
#define ENGINE_SCHEDULER_H

#include <stdint.h>

#include "engine/kvcache.h"
#include "engine/seq.h"

typedef struct sched_params {
    uint32_t max_num_seqs;           /* running sequences at most */
    uint32_t max_num_batched_tokens; /* tokens per step at most */
    int prefix_caching;              /* look up cached prefixes for new sequences */
} sched_params;

typedef struct sched {
    sched_params p;
    kv_cache *kv;       /* borrowed */
    seq_list waiting, running;
    uint64_t admit_counter;
    seq **plan;         /* owned (max_num_seqs): this step's sequences, seq->chunk tokens each */
    uint32_t n_plan, plan_tokens;
    uint64_t preemptions, prefix_query_tokens, prefix_hit_tokens;
} sched;

/* Prepares s over kv (borrowed). Returns 0, INFERD_EINVAL (zero caps) or
 * INFERD_ENOMEM. */
int sched_init(sched *s, const sched_params *p, kv_cache *kv);
/* Frees the plan array (sequences belong to their requests). */
void sched_free(sched *s);

/* Queues a WAITING sequence (no blocks) at the back, or at the front. */
void sched_enqueue(sched *s, seq *q);
void sched_enqueue_front(sched *s, seq *q);
/* Takes q out of its queue, releases its blocks and marks it FINISHED. */
void sched_drop(sched *s, seq *q);

/* Plans one step: fills s->plan (each with q->chunk > 0; tokens
 * q->tokens[q->n_computed .. + q->chunk) at positions from n_computed) and
 * allocates their blocks; may preempt. Returns the step's token count (0:
 * nothing to run). */
uint32_t sched_step(sched *s);
/* After the forward ran the plan: advances n_computed and publishes the
 * blocks that became full. */
void sched_commit(sched *s);

#endif
