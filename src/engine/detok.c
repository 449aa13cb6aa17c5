/*
 * detok.c - incremental, UTF-8 safe detokenization with stop strings (see
 * detok.h). The buffer only ever holds text not yet shown plus the last
 * shown part, so each call scans at most (longest stop string + piece)
 * bytes.
 */
#include "engine/detok.h"

#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "inferd.h"

static int grow(detok *d, size_t need);
static int sanitize(detok *d, const char **text, size_t *len);

int detok_init(detok *d, const char *const *stops, const size_t *stop_lens, size_t n_stop) {
    memset(d, 0, sizeof *d);
    d->stops = stops;
    d->stop_lens = stop_lens;
    d->n_stop = n_stop;
    size_t max_stop = 0;
    for (size_t i = 0; i < n_stop; i++)
        if (stop_lens[i] > max_stop) max_stop = stop_lens[i];
    return grow(d, max_stop + 256);
}

void detok_free(detok *d) {
    free(d->held);
    free(d->clean);
    d->clean = NULL;
    d->clean_cap = 0;
    d->held = NULL;
    d->n_held = d->cap = d->n_out = 0;
}

int detok_push(detok *d, const char *piece, size_t n, const char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    if (d->stopped) return 1;
    /* Drop what the previous call showed. */
    if (d->n_out) {
        memmove(d->held, d->held + d->n_out, d->n_held - d->n_out);
        d->n_held -= d->n_out;
        d->n_out = 0;
    }
    if (d->n_held + n > d->cap && grow(d, d->n_held + n) != 0) return INFERD_ENOMEM;
    if (n) memcpy(d->held + d->n_held, piece, n);
    d->n_held += n;
    *text = d->held;

    /* The earliest stop string occurrence wins. */
    size_t best = (size_t)-1;
    for (size_t i = 0; i < d->n_stop; i++) {
        size_t sl = d->stop_lens[i];
        if (sl == 0 || sl > d->n_held) continue;
        const char *hit = memmem(d->held, d->n_held, d->stops[i], sl);
        if (hit && (size_t)(hit - d->held) < best) best = (size_t)(hit - d->held);
    }
    if (best != (size_t)-1) {
        d->stopped = 1;
        *len = best;
        d->n_out = d->n_held; /* nothing after the stop string is ever shown */
        return sanitize(d, text, len) ? INFERD_ENOMEM : 1;
    }

    /* Hold back the longest tail that is a proper prefix of a stop string. */
    size_t keep = 0;
    for (size_t i = 0; i < d->n_stop; i++) {
        size_t sl = d->stop_lens[i];
        size_t m = sl - 1 < d->n_held ? sl - 1 : d->n_held;
        for (; m > keep; m--)
            if (!memcmp(d->held + d->n_held - m, d->stops[i], m)) {
                keep = m;
                break;
            }
    }
    size_t tail = utf8_incomplete_tail(d->held, d->n_held);
    if (tail > keep) keep = tail;
    *len = d->n_held - keep;
    d->n_out = *len;
    return sanitize(d, text, len);
}

int detok_flush(detok *d, const char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    if (d->stopped) return 0;
    if (d->n_out) {
        memmove(d->held, d->held + d->n_out, d->n_held - d->n_out);
        d->n_held -= d->n_out;
        d->n_out = 0;
    }
    size_t tail = utf8_incomplete_tail(d->held, d->n_held);
    if (tail) {
        d->n_held -= tail;
        if (d->n_held + 3 > d->cap && grow(d, d->n_held + 3) != 0) return INFERD_ENOMEM;
        memcpy(d->held + d->n_held, "\xEF\xBF\xBD", 3);
        d->n_held += 3;
    }
    *text = d->held;
    *len = d->n_held;
    d->n_out = d->n_held;
    return sanitize(d, text, len);
}

/* Replaces each byte that starts no valid character in text[0..len) by
 * U+FFFD (into d->clean) when there is one; the common all-valid case
 * copies nothing. Returns 0 or INFERD_ENOMEM. */
static int sanitize(detok *d, const char **text, size_t *len) {
    if (utf8_valid(*text, *len)) return 0;
    size_t need = *len * 3;
    if (need > d->clean_cap) {
        char *p = realloc(d->clean, need);
        if (!p) return INFERD_ENOMEM;
        d->clean = p;
        d->clean_cap = need;
    }
    const char *s = *text;
    size_t n = *len, w = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_valid_prefix_len(s + i, n - i);
        if (k) {
            memcpy(d->clean + w, s + i, k);
            w += k;
            i += k;
        } else {
            memcpy(d->clean + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i++;
        }
    }
    *text = d->clean;
    *len = w;
    return 0;
}

static int grow(detok *d, size_t need) {
    if (need <= d->cap) return 0;
    size_t cap = d->cap ? d->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(d->held, cap);
    if (!p) return INFERD_ENOMEM;
    d->held = p;
    d->cap = cap;
    return 0;
}
