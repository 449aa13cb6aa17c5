/*
 * engine.h - the engine's internal accessors for the layers above (server,
 * cli). The engine itself is the public inferd_engine_* API of
 * include/inferd.h, implemented in engine.c:
 *
 *   caller threads ── submit/abort ──▶ inbox (mutex + condvar)
 *   engine thread:  loop { take inbox ▸ aborts ▸ sched_step ▸ model_forward
 *                          ▸ sample ▸ detok ▸ stage events ▸ stats ▸ flush }
 *   outbox ── eventfd + wake callback ──▶ caller polls events
 *
 * Everything returned here is read-only and lives as long as the engine.
 */
#ifndef ENGINE_ENGINE_H
#define ENGINE_ENGINE_H

#include "inferd.h"

typedef struct tokenizer tokenizer; /* tok/tokenizer.h */

/* The model's tokenizer (thread-safe for encoding and pieces). */
const tokenizer *engine_tokenizer(inferd_engine *e);
/* tokenizer.chat_template of the model file, or NULL when it has none. */
const char *engine_chat_template(inferd_engine *e);
/* The model file's name without directories and without ".gguf". */
const char *engine_model_name(inferd_engine *e);

#endif
