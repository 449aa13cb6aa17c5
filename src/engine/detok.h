/*
 * detok.h - incremental detokenization of one choice: token pieces (bytes)
 * go in, text that is safe to show comes out.
 *
 * Text is held back while it
 *   1. ends in an incomplete UTF-8 character (never emit half a character), or
 *   2. ends in a proper prefix of a stop string (it may become one).
 * When a stop string appears, the text before it is emitted and the stop
 * string itself (and anything after it) never is. Bytes that can never be
 * valid UTF-8 (the model may sample any byte token) are shown as U+FFFD, so
 * every piece of text detok returns is valid UTF-8 on its own.
 * The engine decides about
 * stop token ids, EOS and max_tokens; detok only sees the pieces it is fed.
 *
 * One detok per sequence, used by the engine thread. The held-back buffer
 * is allocated once (detok_init) and grows only for an unusually long piece.
 */
#ifndef ENGINE_DETOK_H
#define ENGINE_DETOK_H

#include <stddef.h>

typedef struct detok {
    char *held;     /* owned: text not yet emitted, emitted prefix first */
    size_t n_held;  /* bytes in held */
    size_t n_out;   /* bytes of held emitted by the last call (dropped on the next) */
    size_t cap;
    char *clean;    /* owned: scratch for text with invalid bytes replaced */
    size_t clean_cap;
    const char *const *stops; /* borrowed (the request owns them) */
    const size_t *stop_lens;  /* borrowed */
    size_t n_stop;
    int stopped;    /* 1 after a stop string matched */
} detok;

/* Prepares d for the given stop strings (borrowed for d's life). Returns 0
 * or INFERD_ENOMEM. */
int detok_init(detok *d, const char *const *stops, const size_t *stop_lens, size_t n_stop);
/* Frees the buffer. Accepts a zeroed detok. */
void detok_free(detok *d);

/* Feeds the bytes of one token. Sets *text and *len to what can be shown now
 * (valid until the next call on d). Returns 1 when a stop string matched
 * (text is what precedes it; d accepts no more input), 0 otherwise, or
 * INFERD_ENOMEM. */
int detok_push(detok *d, const char *piece, size_t n, const char **text, size_t *len);
/* At the end of a choice (not by stop string): releases what was held back;
 * an incomplete UTF-8 tail becomes U+FFFD. */
int detok_flush(detok *d, const char **text, size_t *len);

#endif
