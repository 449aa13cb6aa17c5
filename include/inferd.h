/*
 * inferd.h - the public C API of inferd.
 *
 * Status codes: every function that can fail returns an int, 0 on success or
 * a negative INFERD_E* code from the table below; inferd_strerror() gives the
 * code's message. Functions that can say more write a detail message into a
 * caller-owned buffer (char *err, size_t err_size).
 *
 * The engine API (inferd_engine_*) is added by the engine layer; see
 * docs/api-c.md.
 */
#ifndef INFERD_H
#define INFERD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message): the one table of status codes. */
#define INFERD_ERRNO_MAP(X)                                                    \
    X(OK, 0, "success")                                                        \
    X(NOMEM, -1, "out of memory")                                              \
    X(INVAL, -2, "invalid argument")                                           \
    X(IO, -3, "input/output error")                                            \
    X(FORMAT, -4, "malformed file or data")                                    \
    X(UNSUPPORTED, -5, "unsupported feature or type")                          \
    X(RANGE, -6, "value out of range")                                         \
    X(NOTFOUND, -7, "not found")                                               \
    X(FULL, -8, "capacity exhausted")                                          \
    X(TOOLONG, -9, "input too long")                                           \
    X(AGAIN, -10, "try again later")                                           \
    X(CANCELED, -11, "operation canceled")                                     \
    X(INTERNAL, -12, "internal error")

enum inferd_status {
#define INFERD_X_ENUM(name, value, msg) INFERD_E##name = (value),
    INFERD_ERRNO_MAP(INFERD_X_ENUM)
#undef INFERD_X_ENUM
};

/* Returns the static message of a status code ("unknown error" for others). */
const char *inferd_strerror(int status);

#define INFERD_VERSION "0.1.0"

/* Returns INFERD_VERSION. */
const char *inferd_version(void);

/* ======================================================================
 * Engine: continuous batching over a paged KV cache (docs/api-c.md).
 *
 * One engine thread owns every sequence. inferd_engine_submit() and
 * inferd_engine_abort() may be called from any thread; results come back
 * as events, which the caller drains with inferd_engine_poll() after being
 * woken (the wake callback, or the event fd becoming readable).
 * ====================================================================== */

typedef struct inferd_engine inferd_engine;
typedef uint64_t inferd_request_id;

typedef struct inferd_engine_params {
    const char *model_path;          /* GGUF file (borrowed during _new) */
    int n_threads;                   /* kernel threads; 0 = physical cores */
    uint64_t kv_cache_bytes;         /* KV pool size; 0 = use kv_cache_fraction */
    double kv_cache_fraction;        /* of physical RAM when kv_cache_bytes is 0 (default 0.10) */
    uint32_t block_size;             /* tokens per KV block (default 16) */
    int kv_f32;                      /* 1 = f32 KV cache, 0 = f16, -1 = auto (default): f32 for
                                        F32 models (as their references), f16 otherwise */
    uint32_t max_num_seqs;           /* sequences per step (default 64) */
    uint32_t max_num_batched_tokens; /* tokens per step (default 2048) */
    uint32_t max_model_len;          /* 0 = the model's context length */
    int enable_prefix_caching;       /* default 1 */
    uint32_t max_waiting;            /* waiting-queue cap; submit fails with INFERD_EFULL (0 = no cap) */
} inferd_engine_params;

typedef struct inferd_sampling_params {
    uint32_t max_tokens;        /* default 16; 0 = up to the context */
    float temperature;          /* default 1.0; 0 = greedy */
    float top_p;                /* default 1.0 */
    int32_t top_k;              /* default -1 (off) */
    float min_p;                /* default 0 (off) */
    float presence_penalty;     /* default 0 */
    float frequency_penalty;    /* default 0 */
    float repetition_penalty;   /* default 1.0 (off) */
    uint64_t seed;              /* used when has_seed */
    int has_seed;
    uint32_t n;                 /* choices sharing the prompt (default 1) */
    int32_t logprobs;           /* -1 = none; k >= 0: chosen token's logprob and top-k alternatives */
    int ignore_eos;
    const char *const *stop;    /* stop strings (borrowed during submit) */
    size_t n_stop;
    const int32_t *stop_token_ids;
    size_t n_stop_token_ids;
    const int32_t *logit_bias_ids;   /* with logit_bias_values: n_logit_bias pairs */
    const float *logit_bias_values;
    size_t n_logit_bias;
} inferd_sampling_params;

typedef struct inferd_request {
    const int32_t *prompt_ids;  /* borrowed during submit */
    size_t n_prompt;
    inferd_sampling_params sampling;
    void *user;                 /* returned in every event of this request */
} inferd_request;

enum inferd_event_type {
    INFERD_EVENT_TOKEN = 0,  /* a delta: new text of one choice (may be empty while text is held back) */
    INFERD_EVENT_FINISH = 1  /* one choice finished (finish_reason, usage) */
};

enum inferd_finish_reason {
    INFERD_FINISH_NONE = 0,
    INFERD_FINISH_STOP = 1,   /* EOS, a stop string or a stop token */
    INFERD_FINISH_LENGTH = 2, /* max_tokens or the context */
    INFERD_FINISH_ABORT = 3,  /* aborted by the caller */
    INFERD_FINISH_ERROR = 4
};

typedef struct inferd_top_logprob {
    int32_t token;
    float logprob;
} inferd_top_logprob;

typedef struct inferd_event {
    enum inferd_event_type type;
    inferd_request_id id;
    void *user;
    uint32_t choice;            /* 0..n-1 */
    const char *text;           /* delta text, owned by the event; not NUL-terminated */
    size_t text_len;
    int32_t token;              /* the token of this delta (-1 when none) */
    float logprob;              /* its log-probability, when logprobs >= 0 */
    const inferd_top_logprob *top; /* n_top alternatives, when logprobs > 0 */
    uint32_t n_top;
    enum inferd_finish_reason finish_reason; /* FINISH events */
    uint32_t prompt_tokens;     /* FINISH events: usage */
    uint32_t completion_tokens;
    uint32_t cached_tokens;     /* prompt tokens served from the prefix cache */
} inferd_event;

typedef struct inferd_engine_stats {
    uint32_t running, waiting;            /* sequences now */
    uint32_t kv_blocks_total, kv_blocks_free;
    uint64_t prefix_query_tokens, prefix_hit_tokens;
    uint64_t prompt_tokens_total, generated_tokens_total;
    uint64_t preemptions_total, steps_total;
    uint32_t max_model_len, n_vocab;
} inferd_engine_stats;

typedef void (*inferd_wake_fn)(void *arg);

inferd_engine_params inferd_engine_default_params(void);
inferd_sampling_params inferd_sampling_default_params(void);

/* Loads the model and starts the engine thread. Returns 0 and *out, or a
 * status with a message in err. */
int inferd_engine_new(const inferd_engine_params *params, inferd_engine **out, char *err,
                      size_t err_size);
/* Stops the engine thread (aborting what runs) and frees everything. Accepts NULL. */
void inferd_engine_free(inferd_engine *e);

/* Queues a request (thread-safe). Returns 0 and *id; INFERD_ETOOLONG when the
 * prompt plus max_tokens can never fit max_model_len; INFERD_EINVAL for bad
 * parameters; INFERD_EFULL when the waiting queue is full. err says why. */
int inferd_engine_submit(inferd_engine *e, const inferd_request *req, inferd_request_id *id,
                         char *err, size_t err_size);
/* Aborts a request (thread-safe); its blocks are free within one step and a
 * FINISH event with INFERD_FINISH_ABORT follows. Unknown ids are ignored. */
int inferd_engine_abort(inferd_engine *e, inferd_request_id id);

/* Wake-up: fn(arg) is called on the engine thread whenever events are
 * pending (keep it short: e.g. event_active). Set it before submitting. */
void inferd_engine_set_wake(inferd_engine *e, inferd_wake_fn fn, void *arg);
/* An fd that is readable while events are pending (an eventfd). */
int inferd_engine_event_fd(inferd_engine *e);
/* Moves up to max pending events into out; returns how many. Each must be
 * released with inferd_event_release(). Thread-safe. */
size_t inferd_engine_poll(inferd_engine *e, inferd_event *out, size_t max);
void inferd_event_release(inferd_event *ev);

/* A consistent snapshot of the engine's counters (thread-safe). */
void inferd_engine_get_stats(inferd_engine *e, inferd_engine_stats *out);

/* Tokenizer of the engine's model (thread-safe, read-only). tokenize returns
 * a malloc'd array in *ids (caller frees). */
int inferd_tokenize(inferd_engine *e, const char *text, size_t len, int add_special,
                    int parse_special, int32_t **ids, size_t *n_ids);
/* Appends the text of ids to a malloc'd NUL-terminated string (caller frees). */
int inferd_detokenize(inferd_engine *e, const int32_t *ids, size_t n_ids, char **text,
                      size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* INFERD_H */
