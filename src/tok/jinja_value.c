/*
 * jinja_value.c - values of the Jinja interpreter (jinja_int.h) with Python's
 * semantics: the render arena, strings/lists/dicts, truthiness, equality and
 * ordering, str() and repr() (Python's float repr and string quoting), and
 * HF-style tojson (json.dumps with ensure_ascii=False, insertion order).
 * Every value lives in the render's arena and is freed when the render ends.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/utf8.h"
#include "base/util.h"
#include "tok/jinja_int.h"

struct jx_chunk {
    jx_chunk *next;
    size_t size, used;
    _Alignas(16) char data[];
};

#define CHUNK_BYTES (64u * 1024)

/* n zeroed, 16-byte-aligned bytes from the arena; NULL (and a->over set)
 * past the arena's limit or when malloc fails. */
void *jx_alloc(jx_arena *a, size_t n) {
    if (n > ((size_t)1 << 40)) { /* also keeps the rounding below from wrapping */
        a->over = 1;
        return NULL;
    }
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->over) return NULL;
    if (a->limit_bytes && (n > a->limit_bytes || a->used_bytes + n > a->limit_bytes)) {
        a->over = 1;
        return NULL;
    }
    jx_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > CHUNK_BYTES / 4 ? n : CHUNK_BYTES;
        c = malloc(sizeof *c + size);
        if (!c) {
            a->over = 1;
            return NULL;
        }
        c->size = size;
        c->used = 0;
        if (size == n && a->head) { /* big block: keep filling the current chunk */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used_bytes += n;
    memset(p, 0, n);
    return p;
}

/* Frees every allocation of the arena; it can be reused afterwards. */
void jx_arena_free(jx_arena *a) {
    jx_chunk *c = a->head;
    while (c) {
        jx_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
    a->over = 0;
}

jv jv_undef(const char *hint) {
    jv v = {JV_UNDEF, {.hint = hint}};
    return v;
}
jv jv_none(void) {
    jv v = {JV_NONE, {0}};
    return v;
}
jv jv_bool(int b) {
    jv v = {JV_BOOL, {.b = !!b}};
    return v;
}
jv jv_int(int64_t i) {
    jv v = {JV_INT, {.i = i}};
    return v;
}
jv jv_float(double f) {
    jv v = {JV_FLOAT, {.f = f}};
    return v;
}
jv jv_func(jfunc *fn) {
    jv v = {JV_FUNC, {.fn = fn}};
    return v;
}

/* A new string of n bytes copied from s (s may be NULL: zeroed), NUL-terminated. */
jstr *jx_str_new(jx_arena *a, const char *s, size_t n) {
    if (n > JX_MAX_MEMORY_BYTES) {
        a->over = 1;
        return NULL;
    }
    jstr *r = jx_alloc(a, sizeof *r + n + 1);
    if (!r) return NULL;
    r->len = n;
    if (s && n) memcpy(r->s, s, n);
    r->s[n] = 0;
    return r;
}

/* Makes a string value of s[0..n) in *out. 0 or JX_ERR (MemoryError). */
int jx_str(jx_vm *vm, const char *s, size_t n, jv *out) {
    jstr *r = jx_str_new(&vm->arena, s, n);
    if (!r)
        return jx_fail(vm, "MemoryError: the render used more than %u MiB",
                       JX_MAX_MEMORY_BYTES >> 20);
    out->type = JV_STR;
    out->u.s = r;
    return 0;
}

/* A new list of the given kind with room for cap items (n = 0); NULL on memory. */
jlist *jx_list_new(jx_arena *a, int kind, size_t cap) {
    jlist *l = jx_alloc(a, sizeof *l);
    if (!l) return NULL;
    l->kind = kind;
    if (cap) {
        if (cap > JX_MAX_MEMORY_BYTES / sizeof(jv) || !(l->v = jx_alloc(a, cap * sizeof(jv))))
            return NULL;
        l->cap = cap;
    }
    return l;
}

/* Appends v, growing the list. 0 or -1 on memory. */
int jx_list_push(jx_arena *a, jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        if (cap > JX_MAX_MEMORY_BYTES / sizeof(jv)) return -1;
        jv *nv = jx_alloc(a, cap * sizeof *nv);
        if (!nv) return -1;
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

/* A new empty dict of the given kind (JD_*); NULL on memory. */
jdict *jx_dict_new(jx_arena *a, int kind) {
    jdict *d = jx_alloc(a, sizeof *d);
    if (d) d->kind = kind;
    return d;
}

/* The value slot for key k (Python equality), or NULL. */
jv *jx_dict_get(const jdict *d, jv k) {
    if (k.type == JV_STR) return jx_dict_get_str(d, k.u.s->s, k.u.s->len);
    for (size_t i = 0; i < d->n; i++)
        if (jx_equal(d->k[i], k)) return &d->v[i];
    return NULL;
}

/* The value slot for the string key k[0..n), or NULL. */
jv *jx_dict_get_str(const jdict *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].type == JV_STR && d->k[i].u.s->len == n && !memcmp(d->k[i].u.s->s, k, n))
            return &d->v[i];
    return NULL;
}

static int dict_append(jx_arena *a, jdict *d, jv k, jv v) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        if (cap > JX_MAX_MEMORY_BYTES / sizeof(jv)) return -1;
        jv *nk = jx_alloc(a, cap * sizeof *nk), *nv = jx_alloc(a, cap * sizeof *nv);
        if (!nk || !nv) return -1;
        if (d->n) memcpy(nk, d->k, d->n * sizeof *nk), memcpy(nv, d->v, d->n * sizeof *nv);
        d->k = nk, d->v = nv, d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
    return 0;
}

/* Sets d[k] = v, keeping insertion order for new keys. 0 or -1 on memory. */
int jx_dict_set(jx_arena *a, jdict *d, jv k, jv v) {
    jv *slot = jx_dict_get(d, k);
    if (slot) {
        *slot = v;
        return 0;
    }
    return dict_append(a, d, k, v);
}

/* Sets d[k] = v for a C-string key (copied). 0 or -1 on memory. */
int jx_dict_set_str(jx_arena *a, jdict *d, const char *k, jv v) {
    jv *slot = jx_dict_get_str(d, k, strlen(k));
    if (slot) {
        *slot = v;
        return 0;
    }
    jstr *s = jx_str_new(a, k, strlen(k));
    if (!s) return -1;
    jv kv = {JV_STR, {.s = s}};
    return dict_append(a, d, kv, v);
}

/* Python's type name of v, for error messages. */
const char *jx_type_name(jv v) {
    switch (v.type) {
    case JV_UNDEF:
        return "Undefined";
    case JV_NONE:
        return "NoneType";
    case JV_BOOL:
        return "bool";
    case JV_INT:
        return "int";
    case JV_FLOAT:
        return "float";
    case JV_STR:
        return "str";
    case JV_LIST:
        return v.u.l->kind == JL_TUPLE ? "tuple" : v.u.l->kind == JL_GEN ? "generator" : "list";
    case JV_DICT:
        return v.u.d->kind == JD_NAMESPACE ? "Namespace"
               : v.u.d->kind == JD_LOOP    ? "LoopContext"
                                           : "dict";
    default:
        return v.u.fn->kind == JF_MACRO ? "Macro" : "builtin_function_or_method";
    }
}

/* Python truthiness (Undefined and generators included, as jinja2). */
int jx_truthy(jv v) {
    switch (v.type) {
    case JV_UNDEF:
    case JV_NONE:
        return 0;
    case JV_BOOL:
        return v.u.b;
    case JV_INT:
        return v.u.i != 0;
    case JV_FLOAT:
        return v.u.f != 0.0;
    case JV_STR:
        return v.u.s->len != 0;
    case JV_LIST:
        return v.u.l->kind == JL_GEN || v.u.l->n != 0;
    case JV_DICT:
        return v.u.d->kind != JD_DICT || v.u.d->n != 0;
    default:
        return 1;
    }
}

static int is_num(jv v) {
    return v.type == JV_BOOL || v.type == JV_INT || v.type == JV_FLOAT;
}
static double num_f(jv v) {
    return v.type == JV_FLOAT ? v.u.f : v.type == JV_INT ? (double)v.u.i : (double)v.u.b;
}
static int64_t num_i(jv v) {
    return v.type == JV_INT ? v.u.i : v.u.b;
}

/* Python ==: numbers across int/float/bool, deep lists and dicts. */
int jx_equal(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.type == JV_FLOAT || b.type == JV_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a.type != b.type) return 0;
    switch (a.type) {
    case JV_UNDEF:
    case JV_NONE:
        return 1;
    case JV_STR:
        return a.u.s->len == b.u.s->len && !memcmp(a.u.s->s, b.u.s->s, a.u.s->len);
    case JV_LIST:
        if (a.u.l == b.u.l) return 1;
        if ((a.u.l->kind == JL_TUPLE) != (b.u.l->kind == JL_TUPLE) || a.u.l->kind == JL_GEN ||
            b.u.l->kind == JL_GEN || a.u.l->n != b.u.l->n)
            return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jx_equal(a.u.l->v[i], b.u.l->v[i])) return 0;
        return 1;
    case JV_DICT:
        if (a.u.d == b.u.d) return 1;
        if (a.u.d->kind != JD_DICT || b.u.d->kind != JD_DICT || a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jx_dict_get(b.u.d, a.u.d->k[i]);
            if (!o || !jx_equal(a.u.d->v[i], *o)) return 0;
        }
        return 1;
    default:
        return a.u.fn == b.u.fn;
    }
}

static const char *op_sym(int op) {
    return op == JOP_LT ? "<" : op == JOP_LE ? "<=" : op == JOP_GT ? ">" : ">=";
}

static int cmp3(jx_vm *vm, jv a, jv b, int op, int *c) {
    if (is_num(a) && is_num(b)) {
        if (a.type == JV_FLOAT || b.type == JV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            if (isnan(x) || isnan(y)) {
                *c = 2;
                return 0;
            } /* every ordering is false */
            *c = x < y ? -1 : x > y;
        } else {
            *c = num_i(a) < num_i(b) ? -1 : num_i(a) > num_i(b);
        }
        return 0;
    }
    if (a.type == JV_STR && b.type == JV_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int r = memcmp(a.u.s->s, b.u.s->s, n);
        *c = r ? (r < 0 ? -1 : 1) : a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len;
        return 0;
    }
    if (a.type == JV_LIST && b.type == JV_LIST && a.u.l->kind == b.u.l->kind &&
        a.u.l->kind != JL_GEN) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (jx_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return cmp3(vm, a.u.l->v[i], b.u.l->v[i], op, c);
        }
        *c = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return 0;
    }
    if (a.type == JV_UNDEF) return jx_undef_fail(vm, a);
    if (b.type == JV_UNDEF) return jx_undef_fail(vm, b);
    return jx_fail(vm, "TypeError: '%s' not supported between instances of '%s' and '%s'",
                   op_sym(op), jx_type_name(a), jx_type_name(b));
}

/* Python ordering (<, <=, >, >=) into *res; TypeError between
 * unorderable types. 0 or JX_ERR. */
int jx_compare(jx_vm *vm, jv a, jv b, int op, int *res) {
    int c;
    if (cmp3(vm, a, b, op, &c)) return -1;
    if (c == 2)
        *res = 0;
    else if (op == JOP_LT)
        *res = c < 0;
    else if (op == JOP_LE)
        *res = c <= 0;
    else if (op == JOP_GT)
        *res = c > 0;
    else
        *res = c >= 0;
    return 0;
}

/* Python's repr(float): the shortest digits that round-trip, scientific
 * notation when the exponent is < -4 or >= 16. */
void jx_format_float(double f, char *out, size_t size) {
    if (isnan(f)) {
        snprintf(out, size, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, size, f < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp = [-]d.ddde[+-]XX */
    char digits[24];
    int nd = 0, neg = tmp[0] == '-';
    const char *p = tmp + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char *o = out;
    size_t left = size;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(o, left, __VA_ARGS__);                                                   \
        if (k_ < 0 || (size_t)k_ >= left) return;                                                  \
        o += k_;                                                                                   \
        left -= (size_t)k_;                                                                        \
    } while (0)
    if (neg) PUT("-");
    if (exp < -4 || exp >= 16) {
        PUT("%c", digits[0]);
        if (nd > 1) PUT(".%s", digits + 1);
        PUT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        PUT("0.");
        for (int i = 0; i < -exp - 1; i++) PUT("0");
        PUT("%s", digits);
    } else {
        for (int i = 0; i <= exp; i++) PUT("%c", i < nd ? digits[i] : '0');
        PUT(".");
        if (nd > exp + 1)
            PUT("%s", digits + exp + 1);
        else
            PUT("0");
    }
#undef PUT
}

static int deep(jx_vm *vm, int depth) {
    if (depth > JX_MAX_VALUE_DEPTH)
        return jx_fail(vm, "RecursionError: value nested deeper than %d levels",
                       JX_MAX_VALUE_DEPTH);
    return 0;
}

static int is_printable(uint32_t cp) {
    if (cp < 0x20 || cp == 0x7f) return 0;
    if (cp < 0x7f) return 1;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    switch (c) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
        return 0;
    default:
        return 1;
    }
}

static void repr_str(buf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    buf_putc(b, q);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_decode(s + i, n - i, &cp);
        if (!k) {
            cp = (unsigned char)s[i];
            k = 1;
        }
        if (cp == (uint32_t)q || cp == '\\')
            buf_putc(b, '\\'), buf_putc(b, (char)cp);
        else if (cp == '\n')
            buf_puts(b, "\\n");
        else if (cp == '\r')
            buf_puts(b, "\\r");
        else if (cp == '\t')
            buf_puts(b, "\\t");
        else if (is_printable(cp))
            buf_append(b, s + i, k);
        else if (cp < 0x100)
            buf_printf(b, "\\x%02x", cp);
        else if (cp < 0x10000)
            buf_printf(b, "\\u%04x", cp);
        else
            buf_printf(b, "\\U%08x", cp);
        i += k;
    }
    buf_putc(b, q);
}

static int repr_rec(jx_vm *vm, jv v, buf *b, int depth);

static int str_rec(jx_vm *vm, jv v, buf *b, int depth) {
    char tmp[64];
    switch (v.type) {
    case JV_UNDEF:
        return 0;
    case JV_NONE:
        buf_puts(b, "None");
        return 0;
    case JV_BOOL:
        buf_puts(b, v.u.b ? "True" : "False");
        return 0;
    case JV_INT:
        buf_printf(b, "%lld", (long long)v.u.i);
        return 0;
    case JV_FLOAT:
        jx_format_float(v.u.f, tmp, sizeof tmp);
        buf_puts(b, tmp);
        return 0;
    case JV_STR:
        buf_append(b, v.u.s->s, v.u.s->len);
        return 0;
    default:
        return repr_rec(vm, v, b, depth);
    }
}

static int repr_rec(jx_vm *vm, jv v, buf *b, int depth) {
    if (deep(vm, depth)) return -1;
    switch (v.type) {
    case JV_UNDEF:
        buf_puts(b, "Undefined");
        return 0;
    case JV_STR:
        repr_str(b, v.u.s->s, v.u.s->len);
        return 0;
    case JV_LIST: {
        jlist *l = v.u.l;
        if (l->kind == JL_GEN) {
            buf_puts(b, "<generator object>");
            return 0;
        }
        buf_putc(b, l->kind == JL_TUPLE ? '(' : '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) buf_puts(b, ", ");
            if (repr_rec(vm, l->v[i], b, depth + 1)) return -1;
        }
        if (l->kind == JL_TUPLE && l->n == 1) buf_putc(b, ',');
        buf_putc(b, l->kind == JL_TUPLE ? ')' : ']');
        return 0;
    }
    case JV_DICT: {
        jdict *d = v.u.d;
        if (d->kind == JD_LOOP) {
            buf_puts(b, "<LoopContext>");
            return 0;
        }
        if (d->kind == JD_NAMESPACE) buf_puts(b, "<Namespace ");
        buf_putc(b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) buf_puts(b, ", ");
            if (repr_rec(vm, d->k[i], b, depth + 1)) return -1;
            buf_puts(b, ": ");
            if (repr_rec(vm, d->v[i], b, depth + 1)) return -1;
        }
        buf_putc(b, '}');
        if (d->kind == JD_NAMESPACE) buf_putc(b, '>');
        return 0;
    }
    case JV_FUNC:
        if (v.u.fn->kind == JF_MACRO)
            buf_printf(b, "<Macro '%s'>", v.u.fn->name);
        else
            buf_printf(b, "<built-in method %s>", v.u.fn->name);
        return 0;
    default:
        return str_rec(vm, v, b, depth);
    }
}

static int check_buf(jx_vm *vm, buf *b) {
    if (b->oom) return jx_fail(vm, "MemoryError: out of memory while formatting a value");
    if (b->len > JX_MAX_OUTPUT_BYTES)
        return jx_fail(vm, "OutputError: a value's text is longer than %u MiB",
                       JX_MAX_OUTPUT_BYTES >> 20);
    return 0;
}

/* Appends Python str(v) to b (Undefined prints nothing). 0 or JX_ERR. */
int jx_to_str(jx_vm *vm, jv v, buf *b) {
    if (str_rec(vm, v, b, 0)) return -1;
    return check_buf(vm, b);
}

/* Appends Python repr(v) to b. 0 or JX_ERR. */
int jx_to_repr(jx_vm *vm, jv v, buf *b) {
    if (repr_rec(vm, v, b, 0)) return -1;
    return check_buf(vm, b);
}

/* str(v) as a string value (v itself when it is one). 0 or JX_ERR. */
int jx_stringify(jx_vm *vm, jv v, jv *out) {
    if (v.type == JV_STR) {
        *out = v;
        return 0;
    }
    buf b = BUF_INIT;
    int rc = jx_to_str(vm, v, &b);
    if (!rc) rc = jx_str(vm, b.data ? b.data : "", b.len, out);
    buf_free(&b);
    return rc;
}

static void json_str(buf *b, const char *s, size_t n, int ensure_ascii) {
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            buf_puts(b, "\\\"");
            break;
        case '\\':
            buf_puts(b, "\\\\");
            break;
        case '\n':
            buf_puts(b, "\\n");
            break;
        case '\r':
            buf_puts(b, "\\r");
            break;
        case '\t':
            buf_puts(b, "\\t");
            break;
        case '\b':
            buf_puts(b, "\\b");
            break;
        case '\f':
            buf_puts(b, "\\f");
            break;
        default:
            if (c < 0x20) {
                buf_printf(b, "\\u%04x", c);
            } else if (c >= 0x80 && ensure_ascii) {
                uint32_t cp;
                size_t k = utf8_decode(s + i, n - i, &cp);
                if (!k) cp = 0xFFFD, k = 1;
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
                } else {
                    buf_printf(b, "\\u%04x", cp);
                }
                i += k - 1;
            } else {
                buf_putc(b, (char)c);
            }
        }
    }
    buf_putc(b, '"');
}

typedef struct json_opts {
    const char *indent;
    int indent_set;
    const char *item_sep, *key_sep;
    int sort_keys, ensure_ascii;
} json_opts;

static void json_newline(buf *b, const json_opts *o, int level) {
    buf_putc(b, '\n');
    for (int i = 0; i < level; i++) buf_puts(b, o->indent);
}

static int json_scalar(jx_vm *vm, jv v, buf *b, const json_opts *o) {
    char tmp[64];
    switch (v.type) {
    case JV_NONE:
        buf_puts(b, "null");
        return 0;
    case JV_BOOL:
        buf_puts(b, v.u.b ? "true" : "false");
        return 0;
    case JV_INT:
        buf_printf(b, "%lld", (long long)v.u.i);
        return 0;
    case JV_FLOAT:
        if (isnan(v.u.f))
            buf_puts(b, "NaN");
        else if (isinf(v.u.f))
            buf_puts(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else
            jx_format_float(v.u.f, tmp, sizeof tmp), buf_puts(b, tmp);
        return 0;
    case JV_STR:
        json_str(b, v.u.s->s, v.u.s->len, o->ensure_ascii);
        return 0;
    default:
        return jx_fail(vm, "TypeError: Object of type %s is not JSON serializable",
                       jx_type_name(v));
    }
}

static int json_key_cmp(const void *x, const void *y) {
    const jv *a = *(const jv *const *)x, *b = *(const jv *const *)y;
    size_t n = a->u.s->len < b->u.s->len ? a->u.s->len : b->u.s->len;
    int r = memcmp(a->u.s->s, b->u.s->s, n);
    return r ? r : (a->u.s->len > b->u.s->len) - (a->u.s->len < b->u.s->len);
}

static int json_rec(jx_vm *vm, jv v, buf *b, const json_opts *o, int level) {
    if (deep(vm, level)) return -1;
    if (v.type == JV_LIST && v.u.l->kind != JL_GEN) {
        jlist *l = v.u.l;
        if (!l->n) {
            buf_puts(b, "[]");
            return 0;
        }
        buf_putc(b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) buf_puts(b, o->item_sep);
            if (o->indent_set) json_newline(b, o, level + 1);
            if (json_rec(vm, l->v[i], b, o, level + 1)) return -1;
        }
        if (o->indent_set) json_newline(b, o, level);
        buf_putc(b, ']');
        return 0;
    }
    if (v.type == JV_DICT && v.u.d->kind == JD_DICT) {
        jdict *d = v.u.d;
        if (!d->n) {
            buf_puts(b, "{}");
            return 0;
        }
        /* keys become strings first (json.dumps converts int/float/bool/None keys) */
        jv *keys = jx_alloc(&vm->arena, d->n * sizeof *keys);
        size_t *order = jx_alloc(&vm->arena, d->n * sizeof *order);
        if (!keys || !order) return jx_fail(vm, "MemoryError: out of memory in tojson");
        for (size_t i = 0; i < d->n; i++) {
            jv k = d->k[i];
            order[i] = i;
            if (k.type == JV_STR) {
                keys[i] = k;
                continue;
            }
            buf kb = BUF_INIT;
            if (k.type == JV_NONE)
                buf_puts(&kb, "null");
            else if (k.type == JV_BOOL)
                buf_puts(&kb, k.u.b ? "true" : "false");
            else if (k.type == JV_INT || k.type == JV_FLOAT)
                json_scalar(vm, k, &kb, o);
            else {
                buf_free(&kb);
                return jx_fail(vm, "TypeError: keys must be str, int, float, bool or None, not %s",
                               jx_type_name(k));
            }
            int rc = jx_str(vm, kb.data ? kb.data : "", kb.len, &keys[i]);
            buf_free(&kb);
            if (rc) return -1;
        }
        if (o->sort_keys) {
            const jv **ptrs = jx_alloc(&vm->arena, d->n * sizeof *ptrs);
            if (!ptrs) return jx_fail(vm, "MemoryError: out of memory in tojson");
            for (size_t i = 0; i < d->n; i++) ptrs[i] = &keys[i];
            qsort(ptrs, d->n, sizeof *ptrs, json_key_cmp);
            for (size_t i = 0; i < d->n; i++) order[i] = (size_t)(ptrs[i] - keys);
        }
        buf_putc(b, '{');
        for (size_t j = 0; j < d->n; j++) {
            size_t i = order[j];
            if (j) buf_puts(b, o->item_sep);
            if (o->indent_set) json_newline(b, o, level + 1);
            json_str(b, keys[i].u.s->s, keys[i].u.s->len, o->ensure_ascii);
            buf_puts(b, o->key_sep);
            if (json_rec(vm, d->v[i], b, o, level + 1)) return -1;
        }
        if (o->indent_set) json_newline(b, o, level);
        buf_putc(b, '}');
        return 0;
    }
    return json_scalar(vm, v, b, o);
}

/* Appends json.dumps(v) to b with the given indent (indent_set: pretty
 * printing with that string per level), separators, sort_keys and
 * ensure_ascii. TypeError for values JSON cannot hold. 0 or JX_ERR. */
int jx_tojson(jx_vm *vm, jv v, const char *indent, int indent_set, const char *item_sep,
              const char *key_sep, int sort_keys, int ensure_ascii, buf *b) {
    json_opts o = {indent, indent_set, item_sep, key_sep, sort_keys, ensure_ascii};
    if (json_rec(vm, v, b, &o, 0)) return -1;
    return check_buf(vm, b);
}

/* Number of code points in s[0..n) (continuation bytes not counted). */
size_t jx_utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Python str.isspace() for one code point. */
int jx_is_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* The items of an iterable (list, tuple, dict keys, string characters,
 * Undefined as empty; a generator once). TypeError otherwise. 0 or JX_ERR. */
int jx_iterate(jx_vm *vm, jv v, jlist **items) {
    if (jx_tick(vm, 1 + (v.type == JV_LIST   ? v.u.l->n
                         : v.type == JV_DICT ? v.u.d->n
                         : v.type == JV_STR  ? v.u.s->len
                                             : 0)))
        return -1;
    switch (v.type) {
    case JV_UNDEF:
        *items = jx_list_new(&vm->arena, JL_LIST, 0);
        break;
    case JV_LIST:
        if (v.u.l->kind == JL_GEN) {
            /* generators are single-use, like Python's */
            if (v.u.l->consumed)
                *items = jx_list_new(&vm->arena, JL_LIST, 0);
            else
                *items = v.u.l, v.u.l->consumed = 1;
        } else {
            *items = v.u.l;
        }
        break;
    case JV_DICT:
        if (v.u.d->kind != JD_DICT) goto not_iterable;
        *items = jx_list_new(&vm->arena, JL_LIST, v.u.d->n);
        if (*items) {
            memcpy((*items)->v, v.u.d->k, v.u.d->n * sizeof(jv));
            (*items)->n = v.u.d->n;
        }
        break;
    case JV_STR: {
        jstr *s = v.u.s;
        *items = jx_list_new(&vm->arena, JL_LIST, jx_utf8_count(s->s, s->len));
        if (!*items) break;
        for (size_t i = 0; i < s->len;) {
            size_t k = utf8_valid_prefix_len(s->s + i, s->len - i);
            if (!k) k = 1;
            jv c;
            if (jx_str(vm, s->s + i, k, &c)) return -1;
            (*items)->v[(*items)->n++] = c;
            i += k;
        }
        break;
    }
    default:
    not_iterable:
        return jx_fail(vm, "TypeError: '%s' object is not iterable", jx_type_name(v));
    }
    if (!*items)
        return jx_fail(vm, "MemoryError: the render used more than %u MiB",
                       JX_MAX_MEMORY_BYTES >> 20);
    return 0;
}

/* Python len(v) into *n (Undefined has length 0). 0 or JX_ERR. */
int jx_len(jx_vm *vm, jv v, int64_t *n) {
    switch (v.type) {
    case JV_UNDEF:
        *n = 0;
        return 0;
    case JV_STR:
        *n = (int64_t)jx_utf8_count(v.u.s->s, v.u.s->len);
        return 0;
    case JV_LIST:
        if (v.u.l->kind == JL_GEN) break;
        *n = (int64_t)v.u.l->n;
        return 0;
    case JV_DICT:
        if (v.u.d->kind != JD_DICT) break;
        *n = (int64_t)v.u.d->n;
        return 0;
    default:
        break;
    }
    return jx_fail(vm, "TypeError: object of type '%s' has no len()", jx_type_name(v));
}

/* See jinja_int.h: counts work and enforces the render's time budget. */
int jx_tick(jx_vm *vm, size_t work) {
    vm->work += work;
    if (vm->work < vm->next_check) return 0;
    vm->next_check = vm->work + (1u << 16);
    if (vm->deadline_s > 0 && time_now_s() > vm->deadline_s)
        return jx_fail(vm, "TimeoutError: the render took longer than %u ms", vm->budget_ms);
    return 0;
}

/* Appends n bytes to the current output within JX_MAX_OUTPUT_BYTES. 0 or JX_ERR. */
int jx_emit(jx_vm *vm, const char *s, size_t n) {
    vm->out_bytes += n;
    if (vm->out_bytes > JX_MAX_OUTPUT_BYTES)
        return jx_fail(vm, "OutputError: the rendering is longer than %u MiB",
                       JX_MAX_OUTPUT_BYTES >> 20);
    if (buf_append(vm->out, s, n))
        return jx_fail(vm, "MemoryError: out of memory writing the output");
    return 0;
}
