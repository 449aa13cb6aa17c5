/*
 * outbox.c - the engine's event queue (outbox.h): a staging array owned by
 * the engine thread, a locked ring for pollers, an eventfd for wake-ups.
 */
#include "engine/outbox.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int outbox_init(outbox *o) {
    memset(o, 0, sizeof *o);
    o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (o->efd < 0) return INFERD_EIO;
    if (pthread_mutex_init(&o->mu, NULL)) {
        close(o->efd);
        o->efd = -1;
        return INFERD_ENOMEM;
    }
    return 0;
}

void outbox_free(outbox *o) {
    if (o->efd < 0 && !o->q && !o->stage) return;
    for (size_t i = 0; i < o->n; i++) inferd_event_release(&o->q[(o->head + i) % o->cap]);
    for (size_t i = 0; i < o->n_stage; i++) inferd_event_release(&o->stage[i]);
    free(o->q);
    free(o->stage);
    if (o->efd >= 0) close(o->efd);
    pthread_mutex_destroy(&o->mu);
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
    /* One block: text, padding to alignment, then the alternatives. */
    size_t text_room = (len + 1 + 7) & ~(size_t)7;
    char *blk = malloc(text_room + (size_t)n_top * sizeof *top);
    if (!blk) return INFERD_ENOMEM;
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
    free((void *)ev->text);
    ev->text = NULL;
    ev->top = NULL;
    ev->text_len = 0;
    ev->n_top = 0;
}
