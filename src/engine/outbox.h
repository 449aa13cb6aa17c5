/*
 * outbox.h - events from the engine thread to whoever polls them.
 *
 * The engine thread stages events during a step (no lock) and flushes them
 * at the end of the step in one locked move; a flush makes the eventfd
 * readable. Pollers (any thread) take events under the lock and clear the
 * eventfd when they leave the queue empty. Each event's text and top
 * alternatives live in one block owned by the event until
 * inferd_event_release gives it back: blocks of up to OUTBOX_SLAB_BYTES come
 * from a recycling pool preallocated at start (so steady-state streaming
 * allocates nothing per token); larger ones are malloc'd on their own.
 */
#ifndef ENGINE_OUTBOX_H
#define ENGINE_OUTBOX_H

#include <pthread.h>
#include <stddef.h>

#include "inferd.h"

#define OUTBOX_SLAB_BYTES 480 /* text + alternatives that fit a pooled block */
#define OUTBOX_PREALLOC 256   /* pooled blocks made at start */

typedef struct ev_pool ev_pool;

typedef struct outbox {
    ev_pool *pool;       /* shared with released events; outlives o if events do */
    pthread_mutex_t mu;
    inferd_event *q; /* ring (cap), guarded by mu */
    size_t head, n, cap;
    inferd_event *stage; /* engine thread only */
    size_t n_stage, cap_stage;
    int efd;             /* eventfd, readable while events are pending */
} outbox;

/* Returns 0, or INFERD_EIO (no eventfd) / INFERD_ENOMEM. */
int outbox_init(outbox *o);
/* Releases pending events and closes the fd. */
void outbox_free(outbox *o);

/* Stages ev (engine thread), copying text[0..len) and top[0..n_top) into a
 * block the event owns. Returns 0 or INFERD_ENOMEM (the event is dropped). */
int outbox_stage(outbox *o, const inferd_event *ev, const char *text, size_t len,
                 const inferd_top_logprob *top, uint32_t n_top);
/* Moves the staged events to the queue (engine thread). Returns how many. */
size_t outbox_flush(outbox *o);
/* Takes up to max events (any thread). */
size_t outbox_poll(outbox *o, inferd_event *out, size_t max);

#endif
