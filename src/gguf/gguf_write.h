/*
 * gguf_write.h - builds a GGUF file: metadata of every type (set, replace,
 * remove, or copy from an open file) and tensors with alignment padding,
 * written to a temporary file in the target's directory and renamed over the
 * target, so a reader never sees a half-written file.
 *
 * Layout written (see gguf.h): header; the metadata entries in insertion
 * order (replacing a key keeps its place); the tensor infos in insertion
 * order with offsets packed in that order, each a multiple of the alignment;
 * zero padding to the alignment; each tensor's data followed by zero padding
 * to the alignment. A file without tensors ends right after the metadata.
 * Copying every key and tensor of a file written this way (llama.cpp and
 * gguf-py write this way) reproduces it byte for byte.
 *
 * Errors: functions return 0 or a negative INFERD_E* code; the message of the
 * last failure is in gguf_writer_error().
 */
#ifndef GGUF_GGUF_WRITE_H
#define GGUF_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "gguf/gguf.h"

typedef struct gguf_writer gguf_writer;

/* A new empty writer (version 3, alignment 32 until general.alignment is
 * set); NULL when out of memory. Free with gguf_writer_free (accepts NULL;
 * removes the temporary file of an unfinished streaming write). */
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
/* The message of the last failure ("" when none). Borrowed from w. */
const char *gguf_writer_error(const gguf_writer *w);
/* Version written in the header: 2 or 3 (else INFERD_EINVAL). */
int gguf_writer_set_version(gguf_writer *w, uint32_t version);

/* ---- metadata ----
 * Each setter replaces the key's value in place when the key exists, else
 * appends it. Keys are copied. Returns 0, INFERD_EINVAL (bad key/value) or
 * INFERD_ENOMEM. */
int gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v);
int gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v);
int gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v);
int gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_f64(gguf_writer *w, const char *key, double v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, int v);
/* A NUL-terminated string, or len bytes (may contain NULs). Copied. */
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *s);
int gguf_writer_set_strn(gguf_writer *w, const char *key, const char *s, uint64_t len);
/* An array of n elements of a fixed-size type (not string/array), read from
 * data as n little-endian values. Copied. */
int gguf_writer_set_arr(gguf_writer *w, const char *key, enum gguf_value_type elem_type,
                        const void *data, uint64_t n);
/* An array of n strings: strs[i] with lens[i] bytes, or strlen(strs[i]) when
 * lens is NULL. Copied. */
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                            const uint64_t *lens, uint64_t n);
/* Any value (nested arrays included) as seen by the reader (gguf_kv_value or
 * the array iterator); its encoding is copied verbatim. */
int gguf_writer_set_value(gguf_writer *w, const char *key, const gguf_value *v);
/* Copies metadata entry i of f (key and value), replacing or appending. */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, uint64_t i);
/* Copies every metadata entry of f, in order. */
int gguf_writer_copy_all_kv(gguf_writer *w, const gguf_file *f);
/* Removes key: 0, or INFERD_ENOTFOUND. */
int gguf_writer_remove(gguf_writer *w, const char *key);
uint64_t gguf_writer_n_kv(const gguf_writer *w);

/* ---- tensors ----
 * Adds a tensor (name copied; at most 64 bytes; unique). ne has n_dims
 * (0..4) entries in ggml order. size must be the exact byte size of the
 * shape in type. data is BORROWED until gguf_writer_write returns; it may be
 * NULL when the data is streamed with gguf_writer_write_tensor_data. Returns
 * 0, INFERD_EINVAL (message names the tensor and the value) or INFERD_ENOMEM. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, enum dtype type, uint32_t n_dims,
                           const uint64_t *ne, const void *data, uint64_t size);
/* Adds tensor t of f (its data borrowed from f's mapping). */
int gguf_writer_copy_tensor(gguf_writer *w, const gguf_tensor *t);
uint64_t gguf_writer_n_tensors(const gguf_writer *w);

/* ---- output ----
 * Writes everything to path (via a temporary file and rename). Every tensor
 * needs its data. Returns 0, INFERD_EINVAL (bad alignment, missing data) or
 * INFERD_EIO, with the message in err (and gguf_writer_error). */
int gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t err_size);

/* Streaming, for outputs too big to hold: begin writes the header, metadata
 * and tensor infos to a temporary file; then each tensor's data, in the order
 * added, with write_tensor_data (size must match); finish pads, syncs and
 * renames over path. After a failure the temporary file is removed. */
int gguf_writer_begin(gguf_writer *w, const char *path, char *err, size_t err_size);
int gguf_writer_write_tensor_data(gguf_writer *w, const void *data, uint64_t size, char *err,
                                  size_t err_size);
int gguf_writer_finish(gguf_writer *w, char *err, size_t err_size);

#endif
