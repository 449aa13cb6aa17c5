/*
 * outbox.c - the engine's event queue (outbox.h): a staging array owned by
 * the engine thread, a locked ring for pollers, an eventfd for wake-ups.
 */
#include "engine/outbox.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The header in front of every event's text. */
typedef struct ev_block {
    alignas(16) ev_pool *pool; /* NULL: malloc'd on its own (too big for a slab) */
    struct ev_block *next;     /* free-list link while pooled */
} ev_block;

/* Recycled slabs. Released events may come back after the outbox is gone
 * (a caller releasing late): the pool then lives until its last block. */
struct ev_pool {
    pthread_mutex_t mu;
    ev_block *free_list;
    size_t n_out; /* blocks handed out and not yet back */
    int dead;     /* the outbox was freed */
};

static ev_block *pool_get(ev_pool *p);
static void pool_put(ev_pool *p, ev_block *b);
static void pool_destroy(ev_pool *p);

int outbox_init(outbox *o) {
    memset(o, 0, sizeof *o);
    o->efd = -1;
    ev_pool *p = calloc(1, sizeof *p);
    if (!p) return INFERD_ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return INFERD_ENOMEM;
    }
    for (int i = 0; i < OUTBOX_PREALLOC; i++) {
        ev_block *b = malloc(sizeof *b + OUTBOX_SLAB_BYTES);
        if (!b) {
            pool_destroy(p);
            return INFERD_ENOMEM;
        }
        b->pool = p;
        b->next = p->free_list;
        p->free_list = b;
    }
    o->pool = p;
    o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (o->efd < 0) {
        pool_destroy(p);
        o->pool = NULL;
        return INFERD_EIO;
    }
    if (pthread_mutex_init(&o->mu, NULL)) {
        close(o->efd);
        o->efd = -1;
        pool_destroy(p);
        o->pool = NULL;
        return INFERD_ENOMEM;
    }
    return 0;
}

void outbox_free(outbox *o) {
    if (o->efd < 0 && !o->q && !o->stage && !o->pool) return;
    for (size_t i = 0; i < o->n; i++) inferd_event_release(&o->q[(o->head + i) % o->cap]);
    for (size_t i = 0; i < o->n_stage; i++) inferd_event_release(&o->stage[i]);
    free(o->q);
    free(o->stage);
    if (o->efd >= 0) {
        close(o->efd);
        pthread_mutex_destroy(&o->mu);
    }
    if (o->pool) {
        ev_pool *p = o->pool;
        pthread_mutex_lock(&p->mu);
        p->dead = 1;
        int last = p->n_out == 0;
        pthread_mutex_unlock(&p->mu);
        if (last) pool_destroy(p);
    }
    memset(o, 0, sizeof *o);
    o->efd = -1;
}

int outbox_stage(outbox *o, const inferd_event *ev, const char *text, size_t len,
                 const inferd_top_logprob *top, uint32_t n_top) {
    if (o->n_stage == o->cap_stage) {
        size_t cap = o->cap_stage ? o->cap_stage * 2 : 256;
        inferd_event *p = realloc(o->stage, cap * sizeof *p);
        if (!p) return INFERD_ENOMEM;
        o->stage = p;
        o->cap_stage = cap;
    }
    /* One block: header, text, padding to alignment, then the alternatives. */
    size_t text_room = (len + 1 + 7) & ~(size_t)7;
    size_t need = text_room + (size_t)n_top * sizeof *top;
    ev_block *b;
    if (need <= OUTBOX_SLAB_BYTES && o->pool) {
        b = pool_get(o->pool);
    } else {
        b = malloc(sizeof *b + need);
        if (b) b->pool = NULL;
    }
    if (!b) return INFERD_ENOMEM;
    char *blk = (char *)(b + 1);
    if (len) memcpy(blk, text, len);
    blk[len] = 0;
    inferd_event *e = &o->stage[o->n_stage++];
    *e = *ev;
    e->text = blk;
    e->text_len = len;
    e->top = NULL;
    e->n_top = n_top;
    if (n_top) {
        inferd_top_logprob *t = (inferd_top_logprob *)(blk + text_room);
        memcpy(t, top, (size_t)n_top * sizeof *top);
        e->top = t;
    }
    return 0;
}

size_t outbox_flush(outbox *o) {
    size_t n = o->n_stage;
    if (n == 0) return 0;
    pthread_mutex_lock(&o->mu);
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + n) cap *= 2;
        inferd_event *p = malloc(cap * sizeof *p);
        if (!p) {
            /* Keep them staged; the next flush tries again. */
            pthread_mutex_unlock(&o->mu);
            return 0;
        }
        for (size_t i = 0; i < o->n; i++) p[i] = o->q[(o->head + i) % o->cap];
        free(o->q);
        o->q = p;
        o->cap = cap;
        o->head = 0;
    }
    for (size_t i = 0; i < n; i++) o->q[(o->head + o->n + i) % o->cap] = o->stage[i];
    o->n += n;
    o->n_stage = 0;
    uint64_t one = 1;
    ssize_t w = write(o->efd, &one, sizeof one);
    (void)w; /* EAGAIN only when the counter is already huge: still readable */
    pthread_mutex_unlock(&o->mu);
    return n;
}

size_t outbox_poll(outbox *o, inferd_event *out, size_t max) {
    pthread_mutex_lock(&o->mu);
    size_t k = 0;
    while (k < max && o->n > 0) {
        out[k++] = o->q[o->head];
        o->head = (o->head + 1) % o->cap;
        o->n--;
    }
    if (o->n == 0) {
        uint64_t v;
        ssize_t r = read(o->efd, &v, sizeof v);
        (void)r; /* EAGAIN when already clear */
    }
    pthread_mutex_unlock(&o->mu);
    return k;
}

void inferd_event_release(inferd_event *ev) {
    if (!ev) return;
    if (ev->text) {
        ev_block *b = (ev_block *)(void *)ev->text - 1;
        if (b->pool) pool_put(b->pool, b);
        else free(b);
    }
    ev->text = NULL;
    ev->top = NULL;
    ev->text_len = 0;
    ev->n_top = 0;
}

/* ---- the block pool ---- */

/* A pooled block (a new one when the free list is empty: the pool grows to
 * the peak number of unreleased events, then stops allocating). */
static ev_block *pool_get(ev_pool *p) {
    pthread_mutex_lock(&p->mu);
    ev_block *b = p->free_list;
    if (b) p->free_list = b->next;
    p->n_out++;
    pthread_mutex_unlock(&p->mu);
    if (!b) {
        b = malloc(sizeof *b + OUTBOX_SLAB_BYTES);
        if (!b) {
            pthread_mutex_lock(&p->mu);
            p->n_out--;
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        b->pool = p;
    }
    return b;
}

static void pool_put(ev_pool *p, ev_block *b) {
    pthread_mutex_lock(&p->mu);
    b->next = p->free_list;
    p->free_list = b;
    p->n_out--;
    int last = p->dead && p->n_out == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) pool_destroy(p);
}

static void pool_destroy(ev_pool *p) {
    while (p->free_list) {
        ev_block *b = p->free_list;
        p->free_list = b->next;
        free(b);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}
