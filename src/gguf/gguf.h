/*
 * gguf.h - GGUF files: read (mmap'd, untrusted input) and write.
 *
 * Layout (little-endian; versions 2 and 3; strings are u64 length + bytes):
 *   1. magic "GGUF" (4 bytes), version u32, n_tensors u64, n_kv u64
 *   2. n_kv times: key string, value type u32, value
 *        (array value: element type u32, count u64, elements; arrays nest)
 *   3. n_tensors times: name string, n_dims u32 (<= 4), ne[n_dims] u64,
 *        type u32 (enum dtype), offset u64 (relative to the data section,
 *        a multiple of the alignment)
 *   4. padding to general.alignment (default 32), then the data section.
 *
 * The reader checks every count, length, offset and size against the file
 * size and hard limits (overflow-checked) and fails with a message naming the
 * key or tensor and the value; it never reads outside the mapping.
 *
 * Strings handed out (gguf_str) point into the mapping: they are borrowed,
 * valid until gguf_close(), and NOT NUL-terminated.
 */
#ifndef GGUF_GGUF_H
#define GGUF_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

enum gguf_value_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

typedef struct gguf_file gguf_file;

typedef struct gguf_str {
    const char *data; /* borrowed from the mapping; not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ggml order: ne[0] is the contiguous row length; unused dims are 1 */
    enum dtype type;
    uint64_t offset;     /* from the start of the data section */
    uint64_t size_bytes; /* bytes of the tensor's data */
    const void *data;    /* borrowed: points into the mapping */
} gguf_tensor;

/* Opens and validates path, mapping it read-only. On success *out owns the
 * mapping (free with gguf_close). On failure returns INFERD_EIO (cannot
 * open/map), INFERD_EFORMAT (malformed; err names what and where) or
 * INFERD_ENOMEM, and *out is NULL. */
int gguf_open(const char *path, gguf_file **out, char *err, size_t err_size);
/* The same over caller-owned memory (borrowed; must outlive the handle).
 * Used by fuzzers and tests. */
int gguf_open_memory(const void *data, size_t size, gguf_file **out, char *err, size_t err_size);
/* Unmaps and frees. Accepts NULL. */
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_alignment(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); /* start of the data section in the file */
const void *gguf_base(const gguf_file *f);     /* the whole mapping (read-only) */

/* ---- metadata ---- */
uint64_t gguf_n_kv(const gguf_file *f);
gguf_str gguf_kv_key(const gguf_file *f, uint64_t i);
enum gguf_value_type gguf_kv_type(const gguf_file *f, uint64_t i);
/* Index of key, or -1 when absent. */
int64_t gguf_find_key(const gguf_file *f, const char *key);

/* Typed getters by key. Each returns 0, INFERD_ENOTFOUND when the key is
 * absent, or INFERD_EFORMAT when its type does not fit (message in err may be
 * NULL). Integers accept any integer type whose value fits the target;
 * gguf_get_f32 accepts float32 and float64; gguf_get_bool accepts bool. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
int gguf_get_f32(const gguf_file *f, const char *key, float *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* Copies a string value into a new NUL-terminated string (caller frees);
 * NULL when absent, of another type, or out of memory. */
char *gguf_get_str_dup(const gguf_file *f, const char *key);

/* Arrays by key: element type and count. Returns 0, INFERD_ENOTFOUND, or
 * INFERD_EFORMAT when the key is not an array. */
int gguf_get_arr(const gguf_file *f, const char *key, enum gguf_value_type *elem_type, uint64_t *n);
/* Raw elements of an array of a fixed-size type (not string/array): a borrowed
 * pointer to n little-endian elements in the mapping, possibly unaligned
 * (read with memcpy). NULL for string/array element types or a missing key. */
const void *gguf_get_arr_data(const gguf_file *f, const char *key);
/* Element i of an array of strings (O(1)); {NULL,0} when out of range or the
 * key is not a string array. */
gguf_str gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i);

/* ---- tensors ---- */
uint64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
/* The tensor named name, or NULL. */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* ---- generic values (inspect, copying metadata, nested arrays) ----
 *
 * A gguf_value is a borrowed view of one encoded value in the mapping (or in
 * caller memory for the writer). Scalars: data points at the little-endian
 * value (possibly unaligned). Strings: str is set. Arrays: elem_type and n
 * are set and data points at the first element's encoding. raw/raw_size span
 * the whole encoding after the type tag (what the writer copies verbatim).
 */
typedef struct gguf_value {
    enum gguf_value_type type;
    const uint8_t *raw;             /* borrowed: the value's encoding after its type tag */
    uint64_t raw_size;              /* bytes of that encoding */
    gguf_str str;                   /* GGUF_TYPE_STRING */
    enum gguf_value_type elem_type; /* GGUF_TYPE_ARRAY: element type */
    uint64_t n;                     /* GGUF_TYPE_ARRAY: element count */
    const uint8_t *data;            /* scalars: the value; arrays: the first element */
} gguf_value;

/* Iterates the elements of an array value in order (each O(1)). */
typedef struct gguf_value_iter {
    const uint8_t *p, *end;
    enum gguf_value_type elem_type;
    uint64_t left;
} gguf_value_iter;

/* The value of metadata entry i. Returns 0 or INFERD_ERANGE (i >= n_kv). */
int gguf_kv_value(const gguf_file *f, uint64_t i, gguf_value *out);
/* Starts iterating array value v (which must be GGUF_TYPE_ARRAY, else the
 * iteration is empty). */
void gguf_value_iter_init(const gguf_value *v, gguf_value_iter *it);
/* Next element into *out: returns 1, or 0 at the end (or on a malformed
 * encoding, which an opened file never has). */
int gguf_value_iter_next(gguf_value_iter *it, gguf_value *out);
/* Scalar conversions. _i64/_u64 accept every integer type and bool whose
 * value fits; _f64 accepts every numeric type. Return 0 or INFERD_EFORMAT. */
int gguf_value_i64(const gguf_value *v, int64_t *out);
int gguf_value_u64(const gguf_value *v, uint64_t *out);
int gguf_value_f64(const gguf_value *v, double *out);
/* Bytes of one element of a fixed-size type; 0 for string, array, unknown. */
size_t gguf_type_size(enum gguf_value_type t);
/* "uint8", "string", "array", ...; "unknown" for others. */
const char *gguf_type_name(enum gguf_value_type t);

/* 1 if s equals the NUL-terminated string z. */
int gguf_str_eq(gguf_str s, const char *z);

#endif
