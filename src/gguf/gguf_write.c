/*
 * gguf_write.c - the GGUF writer (gguf_write.h). Metadata entries are held
 * as a copied key plus the value's encoded bytes, so copying a value from an
 * open file is a verbatim byte copy; tensors are held as infos plus a
 * borrowed data pointer, and their offsets are packed at write time. Output
 * goes to a temporary file beside the target, then rename().
 */
#include "gguf/gguf_write.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/util.h"

#define MKSTEMP_SLOTS "XX" "XX" "XX"

#define MAX_NAME_LEN 64u
#define MAX_KEY_LEN 65535u

typedef struct wkv {
    char *key; /* owned, NUL-terminated */
    uint64_t key_len;
    uint32_t type;
    uint8_t *raw; /* owned: the value's encoding after the type tag */
    uint64_t raw_size;
} wkv;

typedef struct wtensor {
    char name[MAX_NAME_LEN + 1];
    uint64_t name_len;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    enum dtype type;
    const void *data; /* borrowed */
    uint64_t size;
    uint64_t offset; /* assigned at begin */
} wtensor;

struct gguf_writer {
    uint32_t version;
    wkv *kv;
    uint64_t n_kv, cap_kv;
    wtensor *t;
    uint64_t n_t, cap_t;
    uint32_t *kv_index, *t_index; /* owned hash tables of index + 1 (0 = empty) */
    uint64_t kv_index_cap, t_index_cap;
    char err[512];
    /* streaming state */
    FILE *out;
    char *path, *tmp_path;
    uint64_t alignment, next_tensor, pos;
};

static int fail(gguf_writer *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_raw(gguf_writer *w, const char *key, uint32_t type, const void *raw, uint64_t n);
static int set_scalar(gguf_writer *w, const char *key, uint32_t type, const void *v, size_t n);
static int64_t find_kv(const gguf_writer *w, const char *key, uint64_t len);
static int64_t find_name(const gguf_writer *w, int tensors, const char *s, uint64_t n);
static int index_add(gguf_writer *w, int tensors, uint64_t i);
static int index_rebuild(gguf_writer *w, int tensors, uint64_t cap);
static int write_bytes(gguf_writer *w, const void *p, uint64_t n);
static int write_zeros(gguf_writer *w, uint64_t n);
static int resolve_alignment(gguf_writer *w);
static void abort_stream(gguf_writer *w);
static int copy_err(gguf_writer *w, int rc, char *err, size_t err_size);

/* ---- lifecycle ---- */

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->version = 3;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    abort_stream(w);
    for (uint64_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].raw);
    }
    free(w->kv);
    free(w->t);
    free(w->kv_index);
    free(w->t_index);
    free(w);
}

const char *gguf_writer_error(const gguf_writer *w) {
    return w->err;
}

int gguf_writer_set_version(gguf_writer *w, uint32_t version) {
    if (version != 2 && version != 3)
        return fail(w, INFERD_EINVAL, "gguf: cannot write version %u (only 2 and 3)", version);
    w->version = version;
    return 0;
}

/* ---- metadata ---- */

int gguf_writer_set_u8(gguf_writer *w, const char *k, uint8_t v) {
    return set_scalar(w, k, GGUF_TYPE_UINT8, &v, 1);
}
int gguf_writer_set_i8(gguf_writer *w, const char *k, int8_t v) {
    return set_scalar(w, k, GGUF_TYPE_INT8, &v, 1);
}
int gguf_writer_set_u16(gguf_writer *w, const char *k, uint16_t v) {
    return set_scalar(w, k, GGUF_TYPE_UINT16, &v, 2);
}
int gguf_writer_set_i16(gguf_writer *w, const char *k, int16_t v) {
    return set_scalar(w, k, GGUF_TYPE_INT16, &v, 2);
}
int gguf_writer_set_u32(gguf_writer *w, const char *k, uint32_t v) {
    return set_scalar(w, k, GGUF_TYPE_UINT32, &v, 4);
}
int gguf_writer_set_i32(gguf_writer *w, const char *k, int32_t v) {
    return set_scalar(w, k, GGUF_TYPE_INT32, &v, 4);
}
int gguf_writer_set_u64(gguf_writer *w, const char *k, uint64_t v) {
    return set_scalar(w, k, GGUF_TYPE_UINT64, &v, 8);
}
int gguf_writer_set_i64(gguf_writer *w, const char *k, int64_t v) {
    return set_scalar(w, k, GGUF_TYPE_INT64, &v, 8);
}
int gguf_writer_set_f32(gguf_writer *w, const char *k, float v) {
    return set_scalar(w, k, GGUF_TYPE_FLOAT32, &v, 4);
}
int gguf_writer_set_f64(gguf_writer *w, const char *k, double v) {
    return set_scalar(w, k, GGUF_TYPE_FLOAT64, &v, 8);
}

int gguf_writer_set_bool(gguf_writer *w, const char *k, int v) {
    uint8_t b = v != 0;
    return set_scalar(w, k, GGUF_TYPE_BOOL, &b, 1);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *s) {
    return gguf_writer_set_strn(w, key, s, strlen(s));
}

int gguf_writer_set_strn(gguf_writer *w, const char *key, const char *s, uint64_t len) {
    if (len > SIZE_MAX - 8) return fail(w, INFERD_EINVAL, "gguf: key '%s': string too long", key);
    uint8_t *raw = malloc((size_t)len + 8);
    if (!raw) return fail(w, INFERD_ENOMEM, "gguf: key '%s': out of memory", key);
    memcpy(raw, &len, 8);
    if (len) memcpy(raw + 8, s, (size_t)len);
    int rc = set_raw(w, key, GGUF_TYPE_STRING, raw, len + 8);
    free(raw);
    return rc;
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, enum gguf_value_type elem_type,
                        const void *data, uint64_t n) {
    size_t esz = gguf_type_size(elem_type);
    uint64_t bytes;
    if (!esz)
        return fail(w, INFERD_EINVAL,
                    "gguf: key '%s': gguf_writer_set_arr needs a fixed-size element type, not %s",
                    key, gguf_type_name(elem_type));
    if (mul_overflow_u64(n, esz, &bytes) || bytes > SIZE_MAX - 12)
        return fail(w, INFERD_EINVAL, "gguf: key '%s': array of %llu elements is too big", key,
                    (unsigned long long)n);
    uint8_t *raw = malloc((size_t)bytes + 12);
    if (!raw) return fail(w, INFERD_ENOMEM, "gguf: key '%s': out of memory", key);
    uint32_t et = elem_type;
    memcpy(raw, &et, 4);
    memcpy(raw + 4, &n, 8);
    if (bytes) memcpy(raw + 12, data, (size_t)bytes);
    int rc = set_raw(w, key, GGUF_TYPE_ARRAY, raw, bytes + 12);
    free(raw);
    return rc;
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                            const uint64_t *lens, uint64_t n) {
    uint64_t total = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : strlen(strs[i]);
        if (add_overflow_u64(total, 8, &total) || add_overflow_u64(total, len, &total) ||
            total > SIZE_MAX)
            return fail(w, INFERD_EINVAL, "gguf: key '%s': string array too big", key);
    }
    uint8_t *raw = malloc((size_t)total);
    if (!raw) return fail(w, INFERD_ENOMEM, "gguf: key '%s': out of memory", key);
    uint32_t et = GGUF_TYPE_STRING;
    memcpy(raw, &et, 4);
    memcpy(raw + 4, &n, 8);
    uint8_t *p = raw + 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : strlen(strs[i]);
        memcpy(p, &len, 8);
        if (len) memcpy(p + 8, strs[i], (size_t)len);
        p += 8 + len;
    }
    int rc = set_raw(w, key, GGUF_TYPE_ARRAY, raw, total);
    free(raw);
    return rc;
}

int gguf_writer_set_value(gguf_writer *w, const char *key, const gguf_value *v) {
    if ((unsigned)v->type >= GGUF_TYPE_COUNT || !v->raw)
        return fail(w, INFERD_EINVAL, "gguf: key '%s': invalid value (type %d)", key, (int)v->type);
    size_t sz = gguf_type_size(v->type);
    uint64_t len = 0;
    if (sz && v->raw_size != sz)
        return fail(w, INFERD_EINVAL, "gguf: key '%s': %s value of %llu bytes", key,
                    gguf_type_name(v->type), (unsigned long long)v->raw_size);
    if (v->type == GGUF_TYPE_STRING) {
        if (v->raw_size >= 8) memcpy(&len, v->raw, 8);
        if (v->raw_size < 8 || len != v->raw_size - 8)
            return fail(w, INFERD_EINVAL, "gguf: key '%s': malformed string value", key);
    }
    if (v->type == GGUF_TYPE_ARRAY) {
        /* Re-walk the encoding so a hand-made value cannot make us copy a
         * malformed array. */
        gguf_value_iter it;
        gguf_value e;
        gguf_value_iter_init(v, &it);
        const uint8_t *end = v->data;
        uint64_t k = 0;
        while (gguf_value_iter_next(&it, &e)) {
            end = e.raw + e.raw_size;
            k++;
        }
        if (k != v->n || v->data != v->raw + 12 || end != v->raw + v->raw_size)
            return fail(w, INFERD_EINVAL, "gguf: key '%s': malformed array value", key);
    }
    return set_raw(w, key, v->type, v->raw, v->raw_size);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, uint64_t i) {
    gguf_value v;
    if (gguf_kv_value(f, i, &v) != 0)
        return fail(w, INFERD_EINVAL, "gguf: no metadata entry %llu to copy",
                    (unsigned long long)i);
    gguf_str k = gguf_kv_key(f, i);
    char *key = malloc((size_t)k.len + 1);
    if (!key) return fail(w, INFERD_ENOMEM, "gguf: out of memory");
    if (k.len) memcpy(key, k.data, (size_t)k.len);
    key[k.len] = 0;
    int rc;
    if (memchr(key, 0, (size_t)k.len))
        rc = fail(w, INFERD_EINVAL, "gguf: metadata entry %llu has a NUL byte in its key",
                  (unsigned long long)i);
    else
        rc = set_raw(w, key, v.type, v.raw, v.raw_size);
    free(key);
    return rc;
}

int gguf_writer_copy_all_kv(gguf_writer *w, const gguf_file *f) {
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        int rc = gguf_writer_copy_kv(w, f, i);
        if (rc) return rc;
    }
    return 0;
}

int gguf_writer_remove(gguf_writer *w, const char *key) {
    int64_t i = find_kv(w, key, strlen(key));
    if (i < 0) return fail(w, INFERD_ENOTFOUND, "gguf: no key '%s' to remove", key);
    free(w->kv[i].key);
    free(w->kv[i].raw);
    memmove(&w->kv[i], &w->kv[i + 1], (size_t)(w->n_kv - (uint64_t)i - 1) * sizeof *w->kv);
    w->n_kv--;
    if (index_rebuild(w, 0, w->kv_index_cap)) return fail(w, INFERD_ENOMEM, "gguf: out of memory");
    return 0;
}

uint64_t gguf_writer_n_kv(const gguf_writer *w) {
    return w->n_kv;
}

/* ---- tensors ---- */

int gguf_writer_add_tensor(gguf_writer *w, const char *name, enum dtype type, uint32_t n_dims,
                           const uint64_t *ne, const void *data, uint64_t size) {
    size_t len = strlen(name);
    if (len > MAX_NAME_LEN)
        return fail(w, INFERD_EINVAL, "gguf: tensor name '%.80s' is %zu bytes, more than %u", name,
                    len, MAX_NAME_LEN);
    if (n_dims > GGUF_MAX_DIMS)
        return fail(w, INFERD_EINVAL, "gguf: tensor '%s': n_dims is %u, more than %d", name, n_dims,
                    GGUF_MAX_DIMS);
    const dtype_info *di = dtype_get(type);
    if (!di) return fail(w, INFERD_EINVAL, "gguf: tensor '%s': unknown type %d", name, (int)type);
    if (find_name(w, 1, name, len) >= 0)
        return fail(w, INFERD_EINVAL, "gguf: duplicate tensor '%s'", name);
    wtensor t = {.name_len = len, .n_dims = n_dims, .type = type, .data = data, .size = size};
    memcpy(t.name, name, len + 1);
    uint64_t n_el = 1, bytes = 0;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] > (uint64_t)INT64_MAX || mul_overflow_u64(n_el, t.ne[d], &n_el) ||
            n_el > (uint64_t)INT64_MAX)
            return fail(w, INFERD_EINVAL, "gguf: tensor '%s': dimension %u (%llu) is too big", name,
                        d, (unsigned long long)t.ne[d]);
    }
    if (t.ne[0] % di->block_size)
        return fail(w, INFERD_EINVAL,
                    "gguf: tensor '%s': row length %llu is not a multiple of %s's block size %u",
                    name, (unsigned long long)t.ne[0], di->name, di->block_size);
    if (dtype_row_bytes(type, t.ne[0], &bytes) || mul_overflow_u64(bytes, t.ne[1], &bytes) ||
        mul_overflow_u64(bytes, t.ne[2], &bytes) || mul_overflow_u64(bytes, t.ne[3], &bytes))
        return fail(w, INFERD_EINVAL, "gguf: tensor '%s': size in bytes overflows", name);
    if (bytes != size)
        return fail(w, INFERD_EINVAL,
                    "gguf: tensor '%s': %llu bytes given, but shape [%llu, %llu, %llu, %llu] of %s "
                    "needs %llu",
                    name, (unsigned long long)size, (unsigned long long)t.ne[0],
                    (unsigned long long)t.ne[1], (unsigned long long)t.ne[2],
                    (unsigned long long)t.ne[3], di->name, (unsigned long long)bytes);
    if (w->n_t == w->cap_t) {
        uint64_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return fail(w, INFERD_ENOMEM, "gguf: out of memory");
        w->t = nt;
        w->cap_t = cap;
    }
    w->t[w->n_t] = t;
    if (index_add(w, 1, w->n_t)) return fail(w, INFERD_ENOMEM, "gguf: out of memory");
    w->n_t++;
    return 0;
}

int gguf_writer_copy_tensor(gguf_writer *w, const gguf_tensor *t) {
    char name[MAX_NAME_LEN + 1];
    if (t->name.len > MAX_NAME_LEN || memchr(t->name.data, 0, (size_t)t->name.len))
        return fail(w, INFERD_EINVAL,
                    "gguf: cannot copy a tensor whose name is %llu bytes or has a NUL",
                    (unsigned long long)t->name.len);
    memcpy(name, t->name.data, (size_t)t->name.len);
    name[t->name.len] = 0;
    return gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->size_bytes);
}

uint64_t gguf_writer_n_tensors(const gguf_writer *w) {
    return w->n_t;
}

/* ---- output ---- */

int gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t err_size) {
    for (uint64_t i = 0; i < w->n_t; i++)
        if (!w->t[i].data && w->t[i].size)
            return copy_err(w,
                            fail(w, INFERD_EINVAL, "gguf: tensor '%s' has no data", w->t[i].name),
                            err, err_size);
    int rc = gguf_writer_begin(w, path, err, err_size);
    for (uint64_t i = 0; rc == 0 && i < w->n_t; i++)
        rc = gguf_writer_write_tensor_data(w, w->t[i].data, w->t[i].size, err, err_size);
    if (rc == 0) rc = gguf_writer_finish(w, err, err_size);
    return rc;
}

int gguf_writer_begin(gguf_writer *w, const char *path, char *err, size_t err_size) {
    int rc;
    if (w->out)
        return copy_err(
            w, fail(w, INFERD_EINVAL, "gguf: a write to '%s' is already in progress", w->path), err,
            err_size);
    if ((rc = resolve_alignment(w))) return copy_err(w, rc, err, err_size);
    /* Pack the offsets in insertion order. */
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        uint64_t pad = (w->alignment - w->t[i].size % w->alignment) % w->alignment;
        if (add_overflow_u64(off, w->t[i].size, &off) || add_overflow_u64(off, pad, &off))
            return copy_err(w, fail(w, INFERD_EINVAL, "gguf: total tensor size overflows"), err,
                            err_size);
    }
    size_t plen = strlen(path);
    w->path = strdup(path);
    w->tmp_path = malloc(plen + 16);
    if (!w->path || !w->tmp_path) {
        abort_stream(w);
        return copy_err(w, fail(w, INFERD_ENOMEM, "gguf: out of memory"), err, err_size);
    }
    /* mkstemp() replaces the template's last six characters (MKSTEMP_SLOTS). */
    snprintf(w->tmp_path, plen + 16, "%s.tmp.%s", path, MKSTEMP_SLOTS);
    int fd = mkstemp(w->tmp_path);
    if (fd < 0) {
        rc = fail(w, INFERD_EIO, "gguf: cannot create a temporary file beside '%s': %s", path,
                  strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        abort_stream(w);
        return copy_err(w, rc, err, err_size);
    }
    (void)fchmod(fd, 0644);
    w->out = fdopen(fd, "wb");
    if (!w->out) {
        close(fd);
        rc = fail(w, INFERD_EIO, "gguf: cannot write '%s': %s", w->tmp_path, strerror(errno));
        abort_stream(w);
        return copy_err(w, rc, err, err_size);
    }
    setvbuf(w->out, NULL, _IOFBF, 1 << 20);
    w->pos = 0;
    w->next_tensor = 0;
    rc = write_bytes(w, "GGUF", 4);
    if (!rc) rc = write_bytes(w, &w->version, 4);
    if (!rc) rc = write_bytes(w, &w->n_t, 8);
    if (!rc) rc = write_bytes(w, &w->n_kv, 8);
    for (uint64_t i = 0; !rc && i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        rc = write_bytes(w, &kv->key_len, 8);
        if (!rc) rc = write_bytes(w, kv->key, kv->key_len);
        if (!rc) rc = write_bytes(w, &kv->type, 4);
        if (!rc) rc = write_bytes(w, kv->raw, kv->raw_size);
    }
    for (uint64_t i = 0; !rc && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint32_t type = (uint32_t)t->type;
        rc = write_bytes(w, &t->name_len, 8);
        if (!rc) rc = write_bytes(w, t->name, t->name_len);
        if (!rc) rc = write_bytes(w, &t->n_dims, 4);
        if (!rc) rc = write_bytes(w, t->ne, 8ull * t->n_dims);
        if (!rc) rc = write_bytes(w, &type, 4);
        if (!rc) rc = write_bytes(w, &t->offset, 8);
    }
    if (!rc && w->n_t) rc = write_zeros(w, (w->alignment - w->pos % w->alignment) % w->alignment);
    if (rc) {
        abort_stream(w);
        return copy_err(w, rc, err, err_size);
    }
    return 0;
}

int gguf_writer_write_tensor_data(gguf_writer *w, const void *data, uint64_t size, char *err,
                                  size_t err_size) {
    if (!w->out)
        return copy_err(
            w, fail(w, INFERD_EINVAL, "gguf: tensor data written before gguf_writer_begin"), err,
            err_size);
    if (w->next_tensor >= w->n_t) {
        int rc = fail(w, INFERD_EINVAL, "gguf: more tensor data than the %llu tensors added",
                      (unsigned long long)w->n_t);
        abort_stream(w);
        return copy_err(w, rc, err, err_size);
    }
    const wtensor *t = &w->t[w->next_tensor];
    int rc = 0;
    if (size != t->size || (!data && size))
        rc = fail(w, INFERD_EINVAL, "gguf: tensor '%s': %llu bytes of data given, expected %llu",
                  t->name, (unsigned long long)size, (unsigned long long)t->size);
    if (!rc) rc = write_bytes(w, data, size);
    if (!rc) rc = write_zeros(w, (w->alignment - size % w->alignment) % w->alignment);
    if (rc) {
        abort_stream(w);
        return copy_err(w, rc, err, err_size);
    }
    w->next_tensor++;
    return 0;
}

int gguf_writer_finish(gguf_writer *w, char *err, size_t err_size) {
    int rc = 0;
    if (!w->out)
        return copy_err(
            w, fail(w, INFERD_EINVAL, "gguf: gguf_writer_finish without gguf_writer_begin"), err,
            err_size);
    if (w->next_tensor != w->n_t)
        rc = fail(w, INFERD_EINVAL, "gguf: only %llu of %llu tensors were written",
                  (unsigned long long)w->next_tensor, (unsigned long long)w->n_t);
    if (!rc && (fflush(w->out) != 0 || fsync(fileno(w->out)) != 0))
        rc = fail(w, INFERD_EIO, "gguf: cannot write '%s': %s", w->tmp_path, strerror(errno));
    if (!rc) {
        FILE *out = w->out;
        w->out = NULL;
        if (fclose(out) != 0)
            rc = fail(w, INFERD_EIO, "gguf: cannot write '%s': %s", w->tmp_path, strerror(errno));
    }
    if (!rc && rename(w->tmp_path, w->path) != 0)
        rc = fail(w, INFERD_EIO, "gguf: cannot rename the temporary file to '%s': %s", w->path,
                  strerror(errno));
    if (rc) {
        abort_stream(w);
        return copy_err(w, rc, err, err_size);
    }
    free(w->path);
    free(w->tmp_path);
    w->path = w->tmp_path = NULL;
    return 0;
}

/* ---- helpers ---- */

static int fail(gguf_writer *w, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    return code;
}

static int copy_err(gguf_writer *w, int rc, char *err, size_t err_size) {
    return err_set(err, err_size, rc, "%s", w->err);
}

static int64_t find_kv(const gguf_writer *w, const char *key, uint64_t len) {
    return find_name(w, 0, key, len);
}

/* Name lookups go through hash tables so that copying a file with many keys
 * or tensors stays linear. */
static uint64_t name_hash(const char *s, uint64_t n) {
    return hash_combine(hash_bytes(s, (size_t)n, HASH_SEED), n);
}

static int name_at(const gguf_writer *w, int tensors, uint64_t i, const char *s, uint64_t n) {
    if (tensors) return w->t[i].name_len == n && !memcmp(w->t[i].name, s, (size_t)n);
    return w->kv[i].key_len == n && !memcmp(w->kv[i].key, s, (size_t)n);
}

static int64_t find_name(const gguf_writer *w, int tensors, const char *s, uint64_t n) {
    const uint32_t *slots = tensors ? w->t_index : w->kv_index;
    uint64_t cap = tensors ? w->t_index_cap : w->kv_index_cap;
    if (!slots) return -1;
    for (uint64_t h = name_hash(s, n) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (!slots[h]) return -1;
        if (name_at(w, tensors, slots[h] - 1, s, n)) return (int64_t)slots[h] - 1;
    }
}

/* Rebuilds a table with cap slots (a power of two > 2 * entries). */
static int index_rebuild(gguf_writer *w, int tensors, uint64_t cap) {
    uint64_t count = tensors ? w->n_t : w->n_kv;
    if (cap < 64) cap = 64;
    while (cap < 2 * (count + 1)) cap <<= 1;
    uint32_t *slots = calloc((size_t)cap, sizeof *slots);
    if (!slots) return INFERD_ENOMEM;
    for (uint64_t i = 0; i < count; i++) {
        const char *s = tensors ? w->t[i].name : w->kv[i].key;
        uint64_t n = tensors ? w->t[i].name_len : w->kv[i].key_len;
        uint64_t h = name_hash(s, n) & (cap - 1);
        while (slots[h]) h = (h + 1) & (cap - 1);
        slots[h] = (uint32_t)(i + 1);
    }
    if (tensors) {
        free(w->t_index);
        w->t_index = slots;
        w->t_index_cap = cap;
    } else {
        free(w->kv_index);
        w->kv_index = slots;
        w->kv_index_cap = cap;
    }
    return 0;
}

/* Adds entry i (already stored, not yet counted) to its table. */
static int index_add(gguf_writer *w, int tensors, uint64_t i) {
    uint64_t cap = tensors ? w->t_index_cap : w->kv_index_cap;
    if (2 * (i + 2) > cap) {
        if (tensors)
            w->n_t = i + 1;
        else
            w->n_kv = i + 1;
        int rc = index_rebuild(w, tensors, cap * 2);
        if (tensors)
            w->n_t = i;
        else
            w->n_kv = i;
        return rc;
    }
    uint32_t *slots = tensors ? w->t_index : w->kv_index;
    const char *s = tensors ? w->t[i].name : w->kv[i].key;
    uint64_t n = tensors ? w->t[i].name_len : w->kv[i].key_len;
    uint64_t h = name_hash(s, n) & (cap - 1);
    while (slots[h]) h = (h + 1) & (cap - 1);
    slots[h] = (uint32_t)(i + 1);
    return 0;
}

static int set_scalar(gguf_writer *w, const char *key, uint32_t type, const void *v, size_t n) {
    return set_raw(w, key, type, v, n);
}

/* Stores a copy of key and of the n-byte encoding raw, replacing the value of
 * an existing key in place. */
static int set_raw(gguf_writer *w, const char *key, uint32_t type, const void *raw, uint64_t n) {
    size_t klen = strlen(key);
    if (klen > MAX_KEY_LEN)
        return fail(w, INFERD_EINVAL, "gguf: key '%.80s...' is %zu bytes, more than %u", key, klen,
                    MAX_KEY_LEN);
    if (n > SIZE_MAX) return fail(w, INFERD_EINVAL, "gguf: key '%s': value too big", key);
    uint8_t *copy = malloc(n ? (size_t)n : 1);
    if (!copy) return fail(w, INFERD_ENOMEM, "gguf: key '%s': out of memory", key);
    if (n) memcpy(copy, raw, (size_t)n);
    int64_t i = find_kv(w, key, klen);
    if (i >= 0) {
        free(w->kv[i].raw);
        w->kv[i].raw = copy;
        w->kv[i].raw_size = n;
        w->kv[i].type = type;
        return 0;
    }
    if (w->n_kv == w->cap_kv) {
        uint64_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *nk = realloc(w->kv, (size_t)cap * sizeof *nk);
        if (!nk) {
            free(copy);
            return fail(w, INFERD_ENOMEM, "gguf: out of memory");
        }
        w->kv = nk;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(copy);
        return fail(w, INFERD_ENOMEM, "gguf: out of memory");
    }
    w->kv[w->n_kv] = (wkv){k, klen, type, copy, n};
    if (index_add(w, 0, w->n_kv)) {
        free(k);
        free(copy);
        return fail(w, INFERD_ENOMEM, "gguf: out of memory");
    }
    w->n_kv++;
    return 0;
}

/* The alignment from general.alignment (any integer type), else 32. */
static int resolve_alignment(gguf_writer *w) {
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = find_kv(w, "general.alignment", strlen("general.alignment"));
    if (i < 0) return 0;
    const wkv *kv = &w->kv[i];
    gguf_value v = {.type = (enum gguf_value_type)kv->type,
                    .raw = kv->raw,
                    .raw_size = kv->raw_size,
                    .data = kv->raw};
    uint64_t a = 0;
    if (kv->type == GGUF_TYPE_BOOL || !gguf_type_size(kv->type) || kv->type == GGUF_TYPE_FLOAT32 ||
        kv->type == GGUF_TYPE_FLOAT64 || gguf_value_u64(&v, &a) != 0 || a == 0 || (a & (a - 1)) ||
        a > (1u << 30))
        return fail(
            w, INFERD_EINVAL,
            "gguf: key 'general.alignment' (type %s, value %llu) must be a nonzero power of two",
            gguf_type_name(kv->type), (unsigned long long)a);
    w->alignment = a;
    return 0;
}

static int write_bytes(gguf_writer *w, const void *p, uint64_t n) {
    if (n && fwrite(p, 1, (size_t)n, w->out) != n)
        return fail(w, INFERD_EIO, "gguf: cannot write '%s': %s", w->tmp_path, strerror(errno));
    w->pos += n;
    return 0;
}

static int write_zeros(gguf_writer *w, uint64_t n) {
    static const uint8_t zeros[64];
    while (n) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        int rc = write_bytes(w, zeros, k);
        if (rc) return rc;
        n -= k;
    }
    return 0;
}

/* Closes and removes the temporary file of an unfinished write. */
static void abort_stream(gguf_writer *w) {
    if (w->out) {
        fclose(w->out);
        w->out = NULL;
    }
    if (w->tmp_path) unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->path);
    w->tmp_path = w->path = NULL;
}
