/*
 * gguf_int.h - private to src/gguf: the parsed form of a GGUF file shared by
 * the parser (gguf.c) and the accessors (gguf_get.c). Everything here was
 * validated at open, so accessors index it without re-checking the file.
 */
#ifndef GGUF_GGUF_INT_H
#define GGUF_GGUF_INT_H

#include <stdint.h>

#include "gguf/gguf.h"

/* Hard limits (the file size bounds most counts further). */
#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_KEY_LEN 65535u
#define GGUF_MAX_NAME_LEN 64u
#define GGUF_MAX_NESTING 8
#define GGUF_MAX_ALIGNMENT (1u << 30)

typedef struct gguf_kv {
    gguf_str key;
    gguf_value value;
    uint64_t *str_offs; /* owned: for string arrays, offset of each element's length in the file */
} gguf_kv;

struct gguf_file {
    const uint8_t *base; /* the mapping or the caller's memory */
    uint64_t size;
    int mapped; /* 1 when base must be munmap'd */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    gguf_kv *kv; /* owned, n_kv */
    uint64_t n_tensors;
    gguf_tensor *tensors; /* owned, n_tensors */
    uint32_t *kv_hash;    /* owned open-addressing table of kv index + 1 (0 = empty) */
    uint32_t *tensor_hash;
    uint64_t kv_hash_mask, tensor_hash_mask;
};

/* Slot lookup in one of the hash tables: index of the entry whose name equals
 * (s, n), or -1. */
int64_t gguf_hash_find(const uint32_t *table, uint64_t mask, const gguf_file *f, int tensors,
                       const char *s, uint64_t n);

#endif
