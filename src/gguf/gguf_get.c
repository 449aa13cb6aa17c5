/*
 * gguf_get.c - read access to an opened GGUF file: header fields, metadata by
 * index or key (typed getters, arrays, string arrays in O(1)), generic values
 * with an array iterator, and tensors by index or name. Everything was
 * validated by gguf.c at open; these functions only index the parsed form.
 */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "gguf/gguf.h"
#include "gguf/gguf_int.h"

static const gguf_value *find_value(const gguf_file *f, const char *key);
static int is_int_type(enum gguf_value_type t);
static int iter_next(gguf_value_iter *it, gguf_value *out, int depth);

/* ---- header ---- */

uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}
uint64_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}
uint64_t gguf_file_size(const gguf_file *f) {
    return f->size;
}
uint64_t gguf_data_offset(const gguf_file *f) {
    return f->data_offset;
}
const void *gguf_base(const gguf_file *f) {
    return f->base;
}

/* ---- metadata ---- */

uint64_t gguf_n_kv(const gguf_file *f) {
    return f->n_kv;
}

gguf_str gguf_kv_key(const gguf_file *f, uint64_t i) {
    gguf_str none = {NULL, 0};
    return i < f->n_kv ? f->kv[i].key : none;
}

enum gguf_value_type gguf_kv_type(const gguf_file *f, uint64_t i) {
    return i < f->n_kv ? f->kv[i].value.type : GGUF_TYPE_COUNT;
}

int64_t gguf_find_key(const gguf_file *f, const char *key) {
    return gguf_hash_find(f->kv_hash, f->kv_hash_mask, f, 0, key, strlen(key));
}

int gguf_kv_value(const gguf_file *f, uint64_t i, gguf_value *out) {
    if (i >= f->n_kv) return INFERD_ERANGE;
    *out = f->kv[i].value;
    return 0;
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    const gguf_value *v = find_value(f, key);
    uint64_t x;
    if (!v) return INFERD_ENOTFOUND;
    if (!is_int_type(v->type) || gguf_value_u64(v, &x) || x > UINT32_MAX) return INFERD_EFORMAT;
    *out = (uint32_t)x;
    return 0;
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_value *v = find_value(f, key);
    if (!v) return INFERD_ENOTFOUND;
    if (!is_int_type(v->type)) return INFERD_EFORMAT;
    return gguf_value_i64(v, out);
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    const gguf_value *v = find_value(f, key);
    if (!v) return INFERD_ENOTFOUND;
    if (!is_int_type(v->type)) return INFERD_EFORMAT;
    return gguf_value_u64(v, out);
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_value *v = find_value(f, key);
    if (!v) return INFERD_ENOTFOUND;
    if (v->type == GGUF_TYPE_FLOAT32) {
        memcpy(out, v->data, 4);
        return 0;
    }
    if (v->type == GGUF_TYPE_FLOAT64) {
        double d;
        memcpy(&d, v->data, 8);
        *out = (float)d;
        return 0;
    }
    return INFERD_EFORMAT;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out) {
    const gguf_value *v = find_value(f, key);
    if (!v) return INFERD_ENOTFOUND;
    if (v->type != GGUF_TYPE_BOOL) return INFERD_EFORMAT;
    *out = v->data[0] != 0;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_value *v = find_value(f, key);
    if (!v) return INFERD_ENOTFOUND;
    if (v->type != GGUF_TYPE_STRING) return INFERD_EFORMAT;
    *out = v->str;
    return 0;
}

char *gguf_get_str_dup(const gguf_file *f, const char *key) {
    gguf_str s;
    if (gguf_get_str(f, key, &s) != 0 || s.len >= SIZE_MAX) return NULL;
    char *z = malloc((size_t)s.len + 1);
    if (!z) return NULL;
    if (s.len) memcpy(z, s.data, (size_t)s.len);
    z[s.len] = '\0';
    return z;
}

int gguf_get_arr(const gguf_file *f, const char *key, enum gguf_value_type *elem_type,
                 uint64_t *n) {
    const gguf_value *v = find_value(f, key);
    if (!v) return INFERD_ENOTFOUND;
    if (v->type != GGUF_TYPE_ARRAY) return INFERD_EFORMAT;
    if (elem_type) *elem_type = v->elem_type;
    if (n) *n = v->n;
    return 0;
}

const void *gguf_get_arr_data(const gguf_file *f, const char *key) {
    const gguf_value *v = find_value(f, key);
    if (!v || v->type != GGUF_TYPE_ARRAY || !gguf_type_size(v->elem_type)) return NULL;
    return v->data;
}

gguf_str gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i) {
    gguf_str none = {NULL, 0};
    int64_t k = gguf_find_key(f, key);
    if (k < 0) return none;
    const gguf_kv *kv = &f->kv[k];
    if (kv->value.type != GGUF_TYPE_ARRAY || kv->value.elem_type != GGUF_TYPE_STRING ||
        i >= kv->value.n || !kv->str_offs)
        return none;
    gguf_str s;
    uint64_t at = kv->str_offs[i];
    memcpy(&s.len, f->base + at, 8);
    s.data = (const char *)f->base + at + 8;
    return s;
}

/* ---- generic values ---- */

void gguf_value_iter_init(const gguf_value *v, gguf_value_iter *it) {
    memset(it, 0, sizeof *it);
    if (v->type != GGUF_TYPE_ARRAY) return;
    it->p = v->data;
    it->end = v->raw + v->raw_size;
    it->elem_type = v->elem_type;
    it->left = v->n;
}

int gguf_value_iter_next(gguf_value_iter *it, gguf_value *out) {
    return iter_next(it, out, 0);
}

/* One step of an iteration at nesting depth (bounded like the parser's). */
static int iter_next(gguf_value_iter *it, gguf_value *out, int depth) {
    if (!it->left || !it->p || depth > GGUF_MAX_NESTING) return 0;
    /* Re-checked so that a hand-made value can never walk past its bytes. */
    uint64_t avail = (uint64_t)(it->end - it->p);
    memset(out, 0, sizeof *out);
    out->type = it->elem_type;
    out->raw = it->p;
    size_t sz = gguf_type_size(it->elem_type);
    if (sz) {
        if (avail < sz) goto bad;
        out->data = it->p;
        out->raw_size = sz;
    } else if (it->elem_type == GGUF_TYPE_STRING) {
        uint64_t len;
        if (avail < 8) goto bad;
        memcpy(&len, it->p, 8);
        if (len > avail - 8) goto bad;
        out->str.data = (const char *)it->p + 8;
        out->str.len = len;
        out->data = it->p + 8;
        out->raw_size = 8 + len;
    } else if (it->elem_type == GGUF_TYPE_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (avail < 12) goto bad;
        memcpy(&et, it->p, 4);
        memcpy(&n, it->p + 4, 8);
        if (et >= GGUF_TYPE_COUNT) goto bad;
        out->elem_type = (enum gguf_value_type)et;
        out->n = n;
        out->data = it->p + 12;
        /* Find the end of the nested array by walking it. */
        gguf_value_iter sub = {it->p + 12, it->end, out->elem_type, n};
        gguf_value e;
        const uint8_t *q = sub.p;
        while (sub.left) {
            if (!iter_next(&sub, &e, depth + 1)) goto bad;
            q = e.raw + e.raw_size;
        }
        out->raw_size = (uint64_t)(q - it->p);
    } else {
        goto bad;
    }
    it->p += out->raw_size;
    it->left--;
    return 1;
bad:
    it->left = 0;
    return 0;
}

int gguf_value_i64(const gguf_value *v, int64_t *out) {
    uint64_t u;
    switch (v->type) {
    case GGUF_TYPE_UINT8:
        *out = v->data[0];
        return 0;
    case GGUF_TYPE_BOOL:
        *out = v->data[0] != 0;
        return 0;
    case GGUF_TYPE_INT8:
        *out = (int8_t)v->data[0];
        return 0;
    case GGUF_TYPE_UINT16: {
        uint16_t x;
        memcpy(&x, v->data, 2);
        *out = x;
        return 0;
    }
    case GGUF_TYPE_INT16: {
        int16_t x;
        memcpy(&x, v->data, 2);
        *out = x;
        return 0;
    }
    case GGUF_TYPE_UINT32: {
        uint32_t x;
        memcpy(&x, v->data, 4);
        *out = x;
        return 0;
    }
    case GGUF_TYPE_INT32: {
        int32_t x;
        memcpy(&x, v->data, 4);
        *out = x;
        return 0;
    }
    case GGUF_TYPE_INT64:
        memcpy(out, v->data, 8);
        return 0;
    case GGUF_TYPE_UINT64:
        memcpy(&u, v->data, 8);
        if (u > (uint64_t)INT64_MAX) return INFERD_EFORMAT;
        *out = (int64_t)u;
        return 0;
    default:
        return INFERD_EFORMAT;
    }
}

int gguf_value_u64(const gguf_value *v, uint64_t *out) {
    if (v->type == GGUF_TYPE_UINT64) {
        memcpy(out, v->data, 8);
        return 0;
    }
    int64_t s;
    if (gguf_value_i64(v, &s) != 0 || s < 0) return INFERD_EFORMAT;
    *out = (uint64_t)s;
    return 0;
}

int gguf_value_f64(const gguf_value *v, double *out) {
    int64_t s;
    uint64_t u;
    if (v->type == GGUF_TYPE_FLOAT32) {
        float x;
        memcpy(&x, v->data, 4);
        *out = x;
    } else if (v->type == GGUF_TYPE_FLOAT64) {
        memcpy(out, v->data, 8);
    } else if (v->type == GGUF_TYPE_UINT64) {
        memcpy(&u, v->data, 8);
        *out = (double)u;
    } else if (gguf_value_i64(v, &s) == 0) {
        *out = (double)s;
    } else {
        return INFERD_EFORMAT;
    }
    return 0;
}

size_t gguf_type_size(enum gguf_value_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

const char *gguf_type_name(enum gguf_value_type t) {
    static const char *const names[GGUF_TYPE_COUNT] = {
        "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
        "bool",  "string", "array",  "uint64", "int64",  "float64"};
    return (unsigned)t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

/* ---- tensors ---- */

uint64_t gguf_n_tensors(const gguf_file *f) {
    return f->n_tensors;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t i = gguf_hash_find(f->tensor_hash, f->tensor_hash_mask, f, 1, name, strlen(name));
    return i < 0 ? NULL : &f->tensors[i];
}

int gguf_str_eq(gguf_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && (n == 0 || !memcmp(s.data, z, n));
}

/* ---- helpers ---- */

static const gguf_value *find_value(const gguf_file *f, const char *key) {
    int64_t i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->kv[i].value;
}

static int is_int_type(enum gguf_value_type t) {
    return t <= GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}
