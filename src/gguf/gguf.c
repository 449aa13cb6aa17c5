/*
 * gguf.c - opens a GGUF file (mmap'd, or caller memory) and validates all of
 * it before handing anything out: header, metadata (every value type, nested
 * arrays), general.alignment, tensor infos, the data section. Input is
 * untrusted: every count, length and offset is checked against the bytes that
 * remain and against hard limits (gguf_int.h), with overflow checks, and a
 * failure names the key or tensor and the value. Accessors are in gguf_get.c.
 * Assumes a little-endian host (x86-64), like the files.
 */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/util.h"
#include "gguf/gguf_int.h"

#define HEADER_BYTES 24u
#define MIN_KV_BYTES 13u     /* key length (8), type (4), a 1-byte value */
#define MIN_TENSOR_BYTES 24u /* name length (8), n_dims (4), type (4), offset (8) */

/* A read cursor over the file; invariant pos <= size. */
typedef struct cur {
    const uint8_t *b;
    uint64_t size, pos;
} cur;

/* What an error is about: "key 'general.name'" or "tensor 'output.weight'". */
typedef struct ctx {
    char what[160];
} ctx;

static int parse(gguf_file *f, char *err, size_t err_size);
static int parse_kvs(gguf_file *f, cur *c, char *err, size_t err_size);
static int parse_value(cur *c, uint32_t type, int depth, gguf_value *out, uint64_t **str_offs,
                       const ctx *x, char *err, size_t err_size);
static int parse_tensors(gguf_file *f, cur *c, char *err, size_t err_size);
static int check_tensor_layout(gguf_file *f, char *err, size_t err_size);
static int read_alignment(gguf_file *f, char *err, size_t err_size);
static int build_hash(gguf_file *f, int tensors, char *err, size_t err_size);
static void name_ctx(ctx *x, const char *kind, const char *s, uint64_t n);
static int read_name(cur *c, const char *kind, const char *field, uint64_t i, uint64_t n,
                     uint64_t max_len, gguf_str *out, char *err, size_t err_size);
static uint64_t str_hash(const char *s, uint64_t n);

static inline int have(const cur *c, uint64_t n) {
    return n <= c->size - c->pos;
}

static inline uint32_t rd_u32(cur *c) {
    uint32_t v;
    memcpy(&v, c->b + c->pos, 4);
    c->pos += 4;
    return v;
}

static inline uint64_t rd_u64(cur *c) {
    uint64_t v;
    memcpy(&v, c->b + c->pos, 8);
    c->pos += 8;
    return v;
}

/* ---- public ---- */

int gguf_open(const char *path, gguf_file **out, char *err, size_t err_size) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, err_size, INFERD_EIO, "gguf: cannot open '%s': %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set(err, err_size, INFERD_EIO, "gguf: cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, err_size, INFERD_EIO, "gguf: '%s' is not a regular file", path);
    }
    if ((uint64_t)st.st_size < HEADER_BYTES) {
        close(fd);
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: '%s' is %lld bytes, too small for the GGUF header (%u bytes)", path,
                       (long long)st.st_size, HEADER_BYTES);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return err_set(err, err_size, INFERD_EIO, "gguf: cannot map '%s' (%lld bytes): %s", path,
                       (long long)st.st_size, strerror(e));
    gguf_file *f = NULL;
    char detail[512];
    int rc = gguf_open_memory(map, (size_t)st.st_size, &f, detail, sizeof detail);
    if (rc != 0) {
        munmap(map, (size_t)st.st_size);
        return err_set(err, err_size, rc, "%s (in '%s')", detail, path);
    }
    f->mapped = 1;
    *out = f;
    return 0;
}

int gguf_open_memory(const void *data, size_t size, gguf_file **out, char *err, size_t err_size) {
    *out = NULL;
    if (!data && size)
        return err_set(err, err_size, INFERD_EINVAL, "gguf: NULL data of %zu bytes", size);
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return err_set(err, err_size, INFERD_ENOMEM, "gguf: out of memory");
    f->base = data;
    f->size = size;
    int rc = parse(f, err, err_size);
    if (rc != 0) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) free(f->kv[i].str_offs);
    free(f->kv);
    free(f->tensors);
    free(f->kv_hash);
    free(f->tensor_hash);
    if (f->mapped) munmap((void *)f->base, (size_t)f->size);
    free(f);
}

int64_t gguf_hash_find(const uint32_t *table, uint64_t mask, const gguf_file *f, int tensors,
                       const char *s, uint64_t n) {
    if (!table) return -1;
    for (uint64_t h = str_hash(s, n) & mask;; h = (h + 1) & mask) {
        uint32_t slot = table[h];
        if (!slot) return -1;
        const gguf_str *name = tensors ? &f->tensors[slot - 1].name : &f->kv[slot - 1].key;
        if (name->len == n && (n == 0 || !memcmp(name->data, s, n))) return slot - 1;
    }
}

/* ---- parsing ---- */

static int parse(gguf_file *f, char *err, size_t err_size) {
    cur c = {f->base, f->size, 0};
    if (!have(&c, HEADER_BYTES))
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: file is %llu bytes, too small for the GGUF header (%u bytes)",
                       (unsigned long long)f->size, HEADER_BYTES);
    if (memcmp(c.b, "GGUF", 4) != 0)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: bad magic %02x %02x %02x %02x (expected 'GGUF')", c.b[0], c.b[1],
                       c.b[2], c.b[3]);
    c.pos = 4;
    f->version = rd_u32(&c);
    if (f->version != 2 && f->version != 3) {
        if (f->version == 1)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: version 1 is not supported (only versions 2 and 3)");
        if ((f->version & 0xffff) == 0)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: version %u is not supported (a big-endian file?)", f->version);
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: version %u is not supported (only versions 2 and 3)", f->version);
    }
    uint64_t n_tensors = rd_u64(&c);
    uint64_t n_kv = rd_u64(&c);
    if (n_tensors > GGUF_MAX_TENSORS)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: tensor count %llu is over the limit (%u)",
                       (unsigned long long)n_tensors, GGUF_MAX_TENSORS);
    if (n_kv > GGUF_MAX_KV)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: metadata count %llu is over the limit (%u)", (unsigned long long)n_kv,
                       GGUF_MAX_KV);
    if (n_kv > (c.size - c.pos) / MIN_KV_BYTES)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: metadata count %llu cannot fit in a file of %llu bytes",
                       (unsigned long long)n_kv, (unsigned long long)f->size);
    f->n_kv = n_kv;
    f->n_tensors = n_tensors;
    int rc = parse_kvs(f, &c, err, err_size);
    if (rc) return rc;
    if ((rc = read_alignment(f, err, err_size))) return rc;
    if ((rc = parse_tensors(f, &c, err, err_size))) return rc;
    /* The data section starts at the next multiple of the alignment; a file
     * without tensors may end before it. */
    uint64_t pad = (f->alignment - c.pos % f->alignment) % f->alignment;
    if (add_overflow_u64(c.pos, pad, &f->data_offset))
        return err_set(err, err_size, INFERD_EFORMAT, "gguf: data offset overflows");
    return check_tensor_layout(f, err, err_size);
}

static int parse_kvs(gguf_file *f, cur *c, char *err, size_t err_size) {
    if (f->n_kv == 0) return 0;
    f->kv = calloc(f->n_kv, sizeof *f->kv);
    if (!f->kv)
        return err_set(err, err_size, INFERD_ENOMEM,
                       "gguf: out of memory for %llu metadata entries",
                       (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        int name_rc = read_name(c, "metadata entry", "key", i, f->n_kv, GGUF_MAX_KEY_LEN, &kv->key,
                                err, err_size);
        if (name_rc) return name_rc;
        uint64_t len = kv->key.len;
        ctx x;
        name_ctx(&x, "key", kv->key.data, len);
        if (!have(c, 4))
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: value type runs past the end of the file (%llu bytes)",
                           x.what, (unsigned long long)c->size);
        uint32_t type = rd_u32(c);
        if (type >= GGUF_TYPE_COUNT)
            return err_set(err, err_size, INFERD_EFORMAT, "gguf: %s: unknown value type %u", x.what,
                           type);
        int rc = parse_value(c, type, 0, &kv->value, &kv->str_offs, &x, err, err_size);
        if (rc) return rc;
    }
    return build_hash(f, 0, err, err_size);
}

/* Parses one value of type at the cursor into *out. For a top-level array of
 * strings, *str_offs (when str_offs is non-NULL) receives a new table of the
 * file offset of each element (owned by the caller). Recursion is bounded by
 * GGUF_MAX_NESTING. */
static int parse_value(cur *c, uint32_t type, int depth, gguf_value *out, uint64_t **str_offs,
                       const ctx *x, char *err, size_t err_size) {
    uint64_t start = c->pos;
    memset(out, 0, sizeof *out);
    out->type = (enum gguf_value_type)type;
    out->raw = c->b + start;
    size_t sz = gguf_type_size(type);
    if (sz) {
        if (!have(c, sz))
            return err_set(
                err, err_size, INFERD_EFORMAT,
                "gguf: %s: %s value at byte %llu runs past the end of the file (%llu bytes)",
                x->what, gguf_type_name(type), (unsigned long long)start,
                (unsigned long long)c->size);
        out->data = c->b + c->pos;
        c->pos += sz;
    } else if (type == GGUF_TYPE_STRING) {
        if (!have(c, 8))
            return err_set(
                err, err_size, INFERD_EFORMAT,
                "gguf: %s: string length at byte %llu runs past the end of the file (%llu bytes)",
                x->what, (unsigned long long)start, (unsigned long long)c->size);
        uint64_t len = rd_u64(c);
        if (!have(c, len))
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: string length %llu at byte %llu runs past the end of the "
                           "file (%llu bytes)",
                           x->what, (unsigned long long)len, (unsigned long long)start,
                           (unsigned long long)c->size);
        out->str.data = (const char *)c->b + c->pos;
        out->str.len = len;
        out->data = c->b + c->pos;
        c->pos += len;
    } else if (type == GGUF_TYPE_ARRAY) {
        if (depth >= GGUF_MAX_NESTING)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: arrays nested deeper than %d levels at byte %llu", x->what,
                           GGUF_MAX_NESTING, (unsigned long long)start);
        if (!have(c, 12))
            return err_set(
                err, err_size, INFERD_EFORMAT,
                "gguf: %s: array header at byte %llu runs past the end of the file (%llu bytes)",
                x->what, (unsigned long long)start, (unsigned long long)c->size);
        uint32_t et = rd_u32(c);
        uint64_t n = rd_u64(c);
        if (et >= GGUF_TYPE_COUNT)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: unknown array element type %u at byte %llu", x->what, et,
                           (unsigned long long)start);
        out->elem_type = (enum gguf_value_type)et;
        out->n = n;
        out->data = c->b + c->pos;
        size_t esz = gguf_type_size(et);
        uint64_t min = esz ? esz : (et == GGUF_TYPE_STRING ? 8 : 12);
        if (n > (c->size - c->pos) / min)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: array of %llu %s elements at byte %llu runs past the end of "
                           "the file (%llu bytes)",
                           x->what, (unsigned long long)n, gguf_type_name(et),
                           (unsigned long long)start, (unsigned long long)c->size);
        if (esz) {
            c->pos += n * esz; /* no overflow: n * esz <= bytes left */
        } else if (et == GGUF_TYPE_STRING) {
            uint64_t *offs = NULL;
            if (str_offs && n) {
                offs = malloc(n * sizeof *offs);
                if (!offs)
                    return err_set(err, err_size, INFERD_ENOMEM,
                                   "gguf: %s: out of memory for %llu strings", x->what,
                                   (unsigned long long)n);
                *str_offs = offs;
            }
            for (uint64_t i = 0; i < n; i++) {
                uint64_t at = c->pos;
                if (!have(c, 8))
                    return err_set(err, err_size, INFERD_EFORMAT,
                                   "gguf: %s: string %llu of %llu at byte %llu runs past the end "
                                   "of the file (%llu bytes)",
                                   x->what, (unsigned long long)i, (unsigned long long)n,
                                   (unsigned long long)at, (unsigned long long)c->size);
                uint64_t len = rd_u64(c);
                if (!have(c, len))
                    return err_set(err, err_size, INFERD_EFORMAT,
                                   "gguf: %s: string %llu of %llu has length %llu at byte %llu, "
                                   "past the end of the file (%llu bytes)",
                                   x->what, (unsigned long long)i, (unsigned long long)n,
                                   (unsigned long long)len, (unsigned long long)at,
                                   (unsigned long long)c->size);
                c->pos += len;
                if (offs) offs[i] = at;
            }
        } else {
            for (uint64_t i = 0; i < n; i++) {
                gguf_value sub;
                int rc = parse_value(c, et, depth + 1, &sub, NULL, x, err, err_size);
                if (rc) return rc;
            }
        }
    }
    out->raw_size = c->pos - start;
    return 0;
}

/* Reads the length-prefixed string that names item i of n (a metadata key or
 * a tensor name) into *out (borrowed from the mapping), checking it against
 * max_len and the end of the file. Returns 0 or INFERD_EFORMAT with a message
 * naming the item, the length and its byte offset. */
static int read_name(cur *c, const char *kind, const char *field, uint64_t i, uint64_t n,
                     uint64_t max_len, gguf_str *out, char *err, size_t err_size) {
    uint64_t at = c->pos;
    if (!have(c, 8))
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: %s %llu of %llu: %s at byte %llu runs past the end of the file "
                       "(%llu bytes)",
                       kind, (unsigned long long)i, (unsigned long long)n, field,
                       (unsigned long long)at, (unsigned long long)c->size);
    uint64_t len = rd_u64(c);
    if (len > max_len)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: %s %llu: %s length %llu at byte %llu is over the limit (%llu)", kind,
                       (unsigned long long)i, field, (unsigned long long)len,
                       (unsigned long long)at, (unsigned long long)max_len);
    if (!have(c, len))
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: %s %llu: %s length %llu at byte %llu runs past the end of the file "
                       "(%llu bytes)",
                       kind, (unsigned long long)i, field, (unsigned long long)len,
                       (unsigned long long)at, (unsigned long long)c->size);
    out->data = (const char *)c->b + c->pos;
    out->len = len;
    c->pos += len;
    return 0;
}

static int read_alignment(gguf_file *f, char *err, size_t err_size) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t i = gguf_find_key(f, "general.alignment");
    if (i < 0) return 0;
    const gguf_value *v = &f->kv[i].value;
    uint64_t a = 0;
    int64_t s = 0;
    int is_int =
        v->type <= GGUF_TYPE_INT32 || v->type == GGUF_TYPE_UINT64 || v->type == GGUF_TYPE_INT64;
    if (!is_int)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: key 'general.alignment' has type %s, expected an integer (uint32)",
                       gguf_type_name(v->type));
    if (gguf_value_u64(v, &a) != 0 && gguf_value_i64(v, &s) == 0)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: key 'general.alignment' is %lld, must be a nonzero power of two",
                       (long long)s);
    if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT)
        return err_set(
            err, err_size, INFERD_EFORMAT,
            "gguf: key 'general.alignment' is %llu, must be a nonzero power of two up to %u",
            (unsigned long long)a, GGUF_MAX_ALIGNMENT);
    f->alignment = a;
    return 0;
}

static int parse_tensors(gguf_file *f, cur *c, char *err, size_t err_size) {
    if (f->n_tensors == 0) return 0;
    if (f->n_tensors > (c->size - c->pos) / MIN_TENSOR_BYTES)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "gguf: tensor count %llu cannot fit in the %llu bytes after the metadata",
                       (unsigned long long)f->n_tensors, (unsigned long long)(c->size - c->pos));
    f->tensors = calloc(f->n_tensors, sizeof *f->tensors);
    if (!f->tensors)
        return err_set(err, err_size, INFERD_ENOMEM, "gguf: out of memory for %llu tensors",
                       (unsigned long long)f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        int name_rc = read_name(c, "tensor", "name", i, f->n_tensors, GGUF_MAX_NAME_LEN, &t->name,
                                err, err_size);
        if (name_rc) return name_rc;
        uint64_t len = t->name.len;
        ctx x;
        name_ctx(&x, "tensor", t->name.data, len);
        if (!have(c, 4))
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: info runs past the end of the file (%llu bytes)", x.what,
                           (unsigned long long)c->size);
        t->n_dims = rd_u32(c);
        if (t->n_dims > GGUF_MAX_DIMS)
            return err_set(err, err_size, INFERD_EFORMAT, "gguf: %s: n_dims is %u, more than %d",
                           x.what, t->n_dims, GGUF_MAX_DIMS);
        if (!have(c, 8ull * t->n_dims + 12))
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: info runs past the end of the file (%llu bytes)", x.what,
                           (unsigned long long)c->size);
        uint64_t n_el = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            t->ne[d] = d < (int)t->n_dims ? rd_u64(c) : 1;
            if (t->ne[d] > (uint64_t)INT64_MAX)
                return err_set(err, err_size, INFERD_EFORMAT,
                               "gguf: %s: dimension %d is %llu (negative as int64)", x.what, d,
                               (unsigned long long)t->ne[d]);
            if (mul_overflow_u64(n_el, t->ne[d], &n_el) || n_el > (uint64_t)INT64_MAX)
                return err_set(
                    err, err_size, INFERD_EFORMAT,
                    "gguf: %s: shape [%llu, %llu, %llu, %llu] has more than 2^63-1 elements",
                    x.what, (unsigned long long)t->ne[0],
                    (unsigned long long)(d >= 1 ? t->ne[1] : 1),
                    (unsigned long long)(d >= 2 ? t->ne[2] : 1),
                    (unsigned long long)(d >= 3 ? t->ne[3] : 1));
        }
        uint32_t type = rd_u32(c);
        t->offset = rd_u64(c);
        const dtype_info *di = dtype_get(type);
        if (!di)
            return err_set(err, err_size, INFERD_EFORMAT, "gguf: %s: unknown tensor type %u",
                           x.what, type);
        t->type = (enum dtype)type;
        uint64_t row = 0;
        if (t->ne[0] % di->block_size)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: row length %llu is not a multiple of %s's block size %u",
                           x.what, (unsigned long long)t->ne[0], di->name, di->block_size);
        if (dtype_row_bytes(type, t->ne[0], &row) ||
            mul_overflow_u64(row, t->ne[1], &t->size_bytes) ||
            mul_overflow_u64(t->size_bytes, t->ne[2], &t->size_bytes) ||
            mul_overflow_u64(t->size_bytes, t->ne[3], &t->size_bytes))
            return err_set(err, err_size, INFERD_EFORMAT, "gguf: %s: size in bytes overflows",
                           x.what);
    }
    return build_hash(f, 1, err, err_size);
}

static int cmp_by_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->size_bytes < y->size_bytes ? -1 : x->size_bytes > y->size_bytes;
}

/* Offsets aligned, data inside the file, no two tensors sharing bytes. */
static int check_tensor_layout(gguf_file *f, char *err, size_t err_size) {
    if (f->n_tensors == 0) return 0;
    uint64_t data_bytes = f->data_offset <= f->size ? f->size - f->data_offset : 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        ctx x;
        name_ctx(&x, "tensor", t->name.data, t->name.len);
        if (t->offset % f->alignment)
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s: offset %llu is not a multiple of the alignment (%llu)",
                           x.what, (unsigned long long)t->offset, (unsigned long long)f->alignment);
        uint64_t end;
        if (f->data_offset > f->size || add_overflow_u64(t->offset, t->size_bytes, &end) ||
            end > data_bytes) {
            uint64_t abs_end;
            if (add_overflow_u64(f->data_offset, t->offset, &abs_end) ||
                add_overflow_u64(abs_end, t->size_bytes, &abs_end))
                return err_set(err, err_size, INFERD_EFORMAT,
                               "gguf: %s: offset %llu + size %llu overflows", x.what,
                               (unsigned long long)t->offset, (unsigned long long)t->size_bytes);
            return err_set(err, err_size, INFERD_EFORMAT,
                           "gguf: %s ends at byte %llu, past the end of the file (%llu bytes)",
                           x.what, (unsigned long long)abs_end, (unsigned long long)f->size);
        }
        t->data = f->base + f->data_offset + t->offset;
    }
    const gguf_tensor **order = malloc(f->n_tensors * sizeof *order);
    if (!order) return err_set(err, err_size, INFERD_ENOMEM, "gguf: out of memory");
    for (uint64_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, cmp_by_offset);
    int rc = 0;
    const gguf_tensor *prev = NULL;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = order[i];
        if (t->size_bytes == 0) continue;
        if (prev && prev->offset + prev->size_bytes > t->offset) {
            ctx a, b;
            name_ctx(&a, "tensor", prev->name.data, prev->name.len);
            name_ctx(&b, "tensor", t->name.data, t->name.len);
            rc = err_set(err, err_size, INFERD_EFORMAT,
                         "gguf: %s (data bytes %llu..%llu) overlaps %s (from data byte %llu)",
                         a.what, (unsigned long long)prev->offset,
                         (unsigned long long)(prev->offset + prev->size_bytes), b.what,
                         (unsigned long long)t->offset);
            break;
        }
        prev = t;
    }
    free(order);
    return rc;
}

/* Builds the name -> index table of the keys (tensors == 0) or tensor names,
 * failing on a duplicate. */
static int build_hash(gguf_file *f, int tensors, char *err, size_t err_size) {
    uint64_t n = tensors ? f->n_tensors : f->n_kv;
    uint64_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    uint32_t *table = calloc(cap, sizeof *table);
    if (!table) return err_set(err, err_size, INFERD_ENOMEM, "gguf: out of memory");
    if (tensors) {
        f->tensor_hash = table;
        f->tensor_hash_mask = cap - 1;
    } else {
        f->kv_hash = table;
        f->kv_hash_mask = cap - 1;
    }
    for (uint64_t i = 0; i < n; i++) {
        const gguf_str *s = tensors ? &f->tensors[i].name : &f->kv[i].key;
        uint64_t h = str_hash(s->data, s->len) & (cap - 1);
        for (;; h = (h + 1) & (cap - 1)) {
            uint32_t slot = table[h];
            if (!slot) break;
            const gguf_str *o = tensors ? &f->tensors[slot - 1].name : &f->kv[slot - 1].key;
            if (o->len == s->len && (s->len == 0 || !memcmp(o->data, s->data, s->len))) {
                ctx x;
                name_ctx(&x, tensors ? "tensor" : "key", s->data, s->len);
                return err_set(err, err_size, INFERD_EFORMAT,
                               "gguf: duplicate %s (entries %u and %llu)", x.what, slot - 1,
                               (unsigned long long)i);
            }
        }
        table[h] = (uint32_t)(i + 1);
    }
    return 0;
}

/* Formats "kind 'name'" for messages: at most 100 bytes of the name, with
 * bytes outside printable ASCII written as \xHH. */
static void name_ctx(ctx *x, const char *kind, const char *s, uint64_t n) {
    size_t o = (size_t)snprintf(x->what, sizeof x->what, "%s '", kind);
    uint64_t shown = n > 100 ? 100 : n;
    for (uint64_t i = 0; i < shown && o + 8 < sizeof x->what; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\')
            x->what[o++] = (char)ch;
        else
            o += (size_t)snprintf(x->what + o, sizeof x->what - o, "\\x%02x", ch);
    }
    snprintf(x->what + o, sizeof x->what - o, "%s'", n > shown ? "..." : "");
}

static uint64_t str_hash(const char *s, uint64_t n) {
    return hash_combine(hash_bytes(s, (size_t)n, HASH_SEED), n);
}
