/*
 * util.h - small shared helpers: hashing, time, whole-file reads, checked
 * arithmetic, and an aligned allocator. One concept each; look here before
 * writing another.
 */
#ifndef BASE_UTIL_H
#define BASE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a over n bytes, continuing from seed (use HASH_SEED to start). */
#define HASH_SEED 0xcbf29ce484222325ULL
uint64_t hash_bytes(const void *data, size_t n, uint64_t seed);
/* A well-mixed 64-bit hash of two 64-bit values (for hash chains). */
uint64_t hash_combine(uint64_t a, uint64_t b);

/* Monotonic clock. */
uint64_t time_now_ns(void);
double time_now_s(void);
/* Wall clock, Unix seconds. */
int64_t time_unix_s(void);

/* Reads a whole file into a new NUL-terminated buffer (caller frees).
 * Returns 0, or INFERD_EIO / INFERD_ENOMEM / INFERD_ETOOLONG (over max_bytes)
 * with a message in err. */
int file_read_all(const char *path, size_t max_bytes, char **out, size_t *out_len,
                  char *err, size_t err_size);

/* Checked arithmetic: return 1 on overflow, else store the result. */
static inline int mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline int add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out);
}

/* Allocation aligned to align bytes (a power of two >= sizeof(void*)),
 * zero-filled; free with aligned_free. NULL on failure. */
void *aligned_zalloc(size_t size, size_t align);
void aligned_free(void *p);

/* splitmix64 step: advances *state and returns the next value. Used wherever a
 * seeded, reproducible stream is needed (tests, synth weights, samplers). */
uint64_t splitmix64(uint64_t *state);
/* Uniform double in (0, 1) from the next splitmix64 value. */
double rng_uniform(uint64_t *state);

#endif
