/*
 * jinja_eval.c - expression evaluation for the Jinja interpreter: name
 * lookup through frames -> context -> globals, attribute and item access
 * (data only: dict keys, list/str items, and the whitelisted methods of
 * jinja_methods.c, as jinja2's ImmutableSandboxedEnvironment allows),
 * slicing, calls, Python arithmetic and comparisons, and jinja2's default
 * Undefined: printing it gives "", using it (attribute, call, arithmetic)
 * raises UndefinedError with the message jinja2 would give.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"
#include "tok/jinja_int.h"

/* Records the first render error (Python-style "Type: message"); returns JX_ERR. */
int jx_fail(jx_vm *vm, const char *fmt, ...) {
    if (vm->err && vm->err_size && !vm->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vm->err, vm->err_size, fmt, ap);
        va_end(ap);
    }
    return JX_ERR;
}

/* Fails with UndefinedError and the undefined value's hint; returns JX_ERR. */
int jx_undef_fail(jx_vm *vm, jv u) {
    return jx_fail(vm, "UndefinedError: %s", u.u.hint ? u.u.hint : "value is undefined");
}

static int oom(jx_vm *vm) {
    return jx_fail(vm, "MemoryError: the render used more than %u MiB", JX_MAX_MEMORY_BYTES >> 20);
}

/* A formatted hint string in the arena (NULL when out of memory: the hint is optional). */
static const char *hintf(jx_vm *vm, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    jstr *s = jx_str_new(&vm->arena, tmp, strlen(tmp));
    return s ? s->s : NULL;
}

static const char *obj_type_repr(jv v) {
    switch (v.type) {
    case JV_NONE:
        return "None";
    case JV_BOOL:
        return "bool object";
    case JV_INT:
        return "int object";
    case JV_FLOAT:
        return "float object";
    case JV_STR:
        return "str object";
    case JV_LIST:
        return v.u.l->kind == JL_TUPLE ? "tuple object"
               : v.u.l->kind == JL_GEN ? "generator object"
                                       : "list object";
    case JV_DICT:
        return v.u.d->kind == JD_NAMESPACE ? "jinja2.utils.Namespace object"
               : v.u.d->kind == JD_LOOP    ? "jinja2.runtime.LoopContext object"
                                           : "dict object";
    default:
        return "function object";
    }
}

static jv missing_attr(jx_vm *vm, jv obj, const char *name, size_t len) {
    return jv_undef(hintf(vm, "'%s' has no attribute '%.*s'", obj_type_repr(obj),
                          (int)(len > 80 ? 80 : len), name));
}

/* A new, empty scope under parent (arena-owned); NULL when out of memory. */
jx_frame *jx_frame_new(jx_vm *vm, jx_frame *parent) {
    jx_frame *f = jx_alloc(&vm->arena, sizeof *f);
    if (!f) return NULL;
    f->parent = parent;
    f->vars = jx_dict_new(&vm->arena, JD_DICT);
    return f->vars ? f : NULL;
}

/* Binds name to v in frame f (name is borrowed, must outlive the render). 0 or JX_ERR. */
int jx_frame_set(jx_vm *vm, jx_frame *f, const jstr *name, jv v) {
    jv *slot = jx_dict_get_str(f->vars, name->s, name->len);
    if (slot) {
        *slot = v;
        return 0;
    }
    jv k = {JV_STR, {.s = (jstr *)name}};
    if (jx_dict_set(&vm->arena, f->vars, k, v)) return oom(vm);
    return 0;
}

/* Resolves a name through the frames, the context, then the globals; a
 * missing name gives an Undefined value (not an error). 0 or JX_ERR. */
int jx_lookup(jx_vm *vm, jx_frame *f, const jstr *name, jv *out) {
    for (; f; f = f->parent) {
        jv *v = jx_dict_get_str(f->vars, name->s, name->len);
        if (v) {
            *out = *v;
            return 0;
        }
    }
    jv *g = jx_dict_get_str(vm->globals, name->s, name->len);
    if (g) {
        *out = *g;
        return 0;
    }
    if (jx_builtin_lookup(name->s, out, &vm->arena)) return 0;
    *out = jv_undef(hintf(vm, "'%.80s' is undefined", name->s));
    return 0;
}

/* obj.name with the sandbox's rules: namespace/loop fields, whitelisted
 * methods, then dict keys; anything else is Undefined. Fails only on an
 * Undefined obj (UndefinedError) or out of memory. */
int jx_getattr(jx_vm *vm, jv obj, const char *name, size_t len, jv *out) {
    if (obj.type == JV_UNDEF) return jx_undef_fail(vm, obj);
    if (obj.type == JV_DICT && obj.u.d->kind != JD_DICT) {
        jv *v = jx_dict_get_str(obj.u.d, name, len);
        if (v) {
            *out = *v;
            return 0;
        }
    }
    if (obj.type == JV_LIST && obj.u.l->group && obj.u.l->n == 2) {
        if (len == 7 && !memcmp(name, "grouper", 7)) return *out = obj.u.l->v[0], 0;
        if (len == 4 && !memcmp(name, "list", 4)) return *out = obj.u.l->v[1], 0;
    }
    int found = jx_method_lookup(vm, obj, name, len, out);
    if (found < 0) return -1;
    if (found) return 0;
    if (obj.type == JV_DICT && obj.u.d->kind == JD_DICT) {
        jv *v = jx_dict_get_str(obj.u.d, name, len);
        if (v) {
            *out = *v;
            return 0;
        }
    }
    *out = missing_attr(vm, obj, name, len);
    return 0;
}

/* Python index normalization; 0 when out of range. */
static int norm_index(int64_t i, size_t n, size_t *out) {
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return 0;
    *out = (size_t)i;
    return 1;
}

/* Byte offset of code point index ci in s (ci <= count). */
static size_t cp_offset(const jstr *s, size_t ci) {
    size_t i = 0;
    while (ci && i < s->len) {
        i++;
        while (i < s->len && ((unsigned char)s->s[i] & 0xC0) == 0x80) i++;
        ci--;
    }
    return i;
}

/* obj[key] like jinja2's getitem: dict key, list/str index (negative ok),
 * then attribute lookup for string keys; a miss is Undefined. 0 or JX_ERR. */
int jx_getitem(jx_vm *vm, jv obj, jv key, jv *out) {
    if (obj.type == JV_UNDEF) return jx_undef_fail(vm, obj);
    int is_int = key.type == JV_INT || key.type == JV_BOOL;
    int64_t ki = key.type == JV_INT ? key.u.i : key.type == JV_BOOL ? key.u.b : 0;
    if (obj.type == JV_DICT && obj.u.d->kind == JD_DICT) {
        jv *v = jx_dict_get(obj.u.d, key);
        if (v) {
            *out = *v;
            return 0;
        }
    } else if (obj.type == JV_LIST && obj.u.l->kind != JL_GEN && is_int) {
        size_t i;
        if (norm_index(ki, obj.u.l->n, &i)) {
            *out = obj.u.l->v[i];
            return 0;
        }
    } else if (obj.type == JV_STR && is_int) {
        size_t i, n = jx_utf8_count(obj.u.s->s, obj.u.s->len);
        if (norm_index(ki, n, &i)) {
            size_t a = cp_offset(obj.u.s, i), b = cp_offset(obj.u.s, i + 1);
            return jx_str(vm, obj.u.s->s + a, b - a, out);
        }
    }
    if (key.type == JV_STR) return jx_getattr(vm, obj, key.u.s->s, key.u.s->len, out);
    buf kb = BUF_INIT;
    if (jx_to_repr(vm, key, &kb)) {
        buf_free(&kb);
        return -1;
    }
    *out =
        jv_undef(hintf(vm, "%s has no element %.80s", obj_type_repr(obj), kb.data ? kb.data : ""));
    buf_free(&kb);
    return 0;
}

static int slice_index(jx_vm *vm, jv v, int has, int64_t *out) {
    if (!has || v.type == JV_NONE) return 0;
    if (v.type == JV_INT)
        *out = v.u.i;
    else if (v.type == JV_BOOL)
        *out = v.u.b;
    else if (v.type == JV_UNDEF)
        return jx_undef_fail(vm, v);
    else
        return jx_fail(
            vm, "TypeError: slice indices must be integers or None or have an __index__ method");
    return 1;
}

/* Python slice semantics for sequences of length n; fills the picked indices. */
static int do_slice(jx_vm *vm, jv lo, int has_lo, jv hi, int has_hi, jv st, int has_st, size_t n,
                    size_t **idx, size_t *count) {
    int64_t start, stop, step = 1, len = (int64_t)n;
    int r = slice_index(vm, st, has_st, &step);
    if (r < 0) return -1;
    if (step == 0) return jx_fail(vm, "ValueError: slice step cannot be zero");
    int64_t s0, s1;
    int rs = slice_index(vm, lo, has_lo, &s0), re = slice_index(vm, hi, has_hi, &s1);
    if (rs < 0 || re < 0) return -1;
    if (step > 0) {
        start = rs ? (s0 < 0 ? (s0 + len < 0 ? 0 : s0 + len) : (s0 > len ? len : s0)) : 0;
        stop = re ? (s1 < 0 ? (s1 + len < 0 ? 0 : s1 + len) : (s1 > len ? len : s1)) : len;
    } else {
        start =
            rs ? (s0 < 0 ? (s0 + len < 0 ? -1 : s0 + len) : (s0 >= len ? len - 1 : s0)) : len - 1;
        stop = re ? (s1 < 0 ? (s1 + len < 0 ? -1 : s1 + len) : (s1 >= len ? len - 1 : s1)) : -1;
    }
    *count = 0;
    *idx = jx_alloc(&vm->arena, (n ? n : 1) * sizeof **idx);
    if (!*idx) return oom(vm);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
        (*idx)[(*count)++] = (size_t)i;
    return 0;
}

static int eval_slice(jx_vm *vm, const jnode *n, jx_frame *f, jv *out) {
    jv obj, v[3] = {jv_none(), jv_none(), jv_none()};
    const jnode *parts[3] = {n->b, n->c, n->d};
    if (jx_eval(vm, n->a, f, &obj)) return -1;
    for (int i = 0; i < 3; i++)
        if (parts[i] && jx_eval(vm, parts[i], f, &v[i])) return -1;
    if (obj.type == JV_UNDEF) return jx_undef_fail(vm, obj);
    size_t *idx, cnt;
    if (obj.type == JV_LIST && obj.u.l->kind != JL_GEN) {
        if (do_slice(vm, v[0], !!parts[0], v[1], !!parts[1], v[2], !!parts[2], obj.u.l->n, &idx,
                     &cnt))
            return -1;
        jlist *l = jx_list_new(&vm->arena, obj.u.l->kind, cnt);
        if (!l) return oom(vm);
        for (size_t i = 0; i < cnt; i++) l->v[l->n++] = obj.u.l->v[idx[i]];
        out->type = JV_LIST, out->u.l = l;
        return 0;
    }
    if (obj.type == JV_STR) {
        jstr *s = obj.u.s;
        size_t ncp = jx_utf8_count(s->s, s->len);
        size_t *offs = jx_alloc(&vm->arena, (ncp + 1) * sizeof *offs);
        if (!offs) return oom(vm);
        for (size_t i = 0, c = 0; i <= s->len; i++)
            if (i == s->len || ((unsigned char)s->s[i] & 0xC0) != 0x80) offs[c++] = i;
        if (do_slice(vm, v[0], !!parts[0], v[1], !!parts[1], v[2], !!parts[2], ncp, &idx, &cnt))
            return -1;
        buf b = BUF_INIT;
        for (size_t i = 0; i < cnt; i++)
            buf_append(&b, s->s + offs[idx[i]], offs[idx[i] + 1] - offs[idx[i]]);
        int rc = b.oom ? oom(vm) : jx_str(vm, b.data ? b.data : "", b.len, out);
        buf_free(&b);
        return rc;
    }
    /* jinja2 slices with Python's [] directly (no getitem fallback), except
     * where its optimizer folded a constant through getitem */
    if (n->op) {
        *out = jv_undef(hintf(vm, "%s has no element slice", obj_type_repr(obj)));
        return 0;
    }
    return jx_fail(vm, "TypeError: '%s' object is not subscriptable", jx_type_name(obj));
}

static int add_ovf(int64_t a, int64_t b, int64_t *r) {
    return __builtin_add_overflow(a, b, r);
}
static int sub_ovf(int64_t a, int64_t b, int64_t *r) {
    return __builtin_sub_overflow(a, b, r);
}
static int mul_ovf(int64_t a, int64_t b, int64_t *r) {
    return __builtin_mul_overflow(a, b, r);
}

static int is_intlike(jv v) {
    return v.type == JV_INT || v.type == JV_BOOL;
}
static int64_t ival(jv v) {
    return v.type == JV_INT ? v.u.i : v.u.b;
}
static int is_num(jv v) {
    return is_intlike(v) || v.type == JV_FLOAT;
}
static double fval(jv v) {
    return v.type == JV_FLOAT ? v.u.f : (double)ival(v);
}

static const char *op_name(int op) {
    static const char *names[] = {"", "+", "-", "*", "/", "//", "%", "**", "~"};
    return op >= JOP_ADD && op <= JOP_CONCAT ? names[op] : "?";
}

static int unsupported(jx_vm *vm, int op, jv a, jv b) {
    return jx_fail(vm, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'", op_name(op),
                   jx_type_name(a), jx_type_name(b));
}

static int repeat(jx_vm *vm, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.type == JV_STR) {
        size_t n = seq.u.s->len;
        if (n && (uint64_t)times > JX_MAX_MEMORY_BYTES / n) return oom(vm);
        jstr *s = jx_str_new(&vm->arena, NULL, n * (size_t)times);
        if (!s) return oom(vm);
        for (int64_t i = 0; i < times; i++) memcpy(s->s + (size_t)i * n, seq.u.s->s, n);
        out->type = JV_STR, out->u.s = s;
        return 0;
    }
    size_t n = seq.u.l->n;
    if (n && (uint64_t)times > JX_MAX_MEMORY_BYTES / sizeof(jv) / n) return oom(vm);
    jlist *l = jx_list_new(&vm->arena, seq.u.l->kind, n * (size_t)times);
    if (!l) return oom(vm);
    for (int64_t i = 0; i < times; i++)
        for (size_t j = 0; j < n; j++) l->v[l->n++] = seq.u.l->v[j];
    out->type = JV_LIST, out->u.l = l;
    return 0;
}

static int contains(jx_vm *vm, jv item, jv seq, int *res) {
    switch (seq.type) {
    case JV_UNDEF:
        *res = 0;
        return 0;
    case JV_STR:
        if (item.type == JV_UNDEF) return jx_undef_fail(vm, item);
        if (item.type != JV_STR)
            return jx_fail(vm, "TypeError: 'in <string>' requires string as left operand, not %s",
                           jx_type_name(item));
        *res = item.u.s->len == 0 ||
               memmem(seq.u.s->s, seq.u.s->len, item.u.s->s, item.u.s->len) != NULL;
        return 0;
    case JV_LIST:
        *res = 0;
        for (size_t i = 0; i < seq.u.l->n && !*res; i++) *res = jx_equal(seq.u.l->v[i], item);
        if (seq.u.l->kind == JL_GEN) seq.u.l->consumed = 1;
        return 0;
    case JV_DICT:
        if (seq.u.d->kind == JD_DICT) {
            if (item.type == JV_DICT || (item.type == JV_LIST && item.u.l->kind != JL_TUPLE))
                return jx_fail(vm, "TypeError: unhashable type: '%s'", jx_type_name(item));
            *res = jx_dict_get(seq.u.d, item) != NULL;
            return 0;
        }
        break;
    default:
        break;
    }
    return jx_fail(vm, "TypeError: argument of type '%s' is not iterable", jx_type_name(seq));
}

static size_t weight(jv v) {
    return v.type == JV_STR    ? v.u.s->len / 16
           : v.type == JV_LIST ? v.u.l->n
           : v.type == JV_DICT ? v.u.d->n
                               : 0;
}

/* Applies a binary operator (JOP_*) with Python semantics; TypeError,
 * ZeroDivisionError, OverflowError or UndefinedError on misuse. 0 or JX_ERR. */
int jx_binop(jx_vm *vm, int op, jv a, jv b, jv *out) {
    if (jx_tick(vm, 1 + weight(a) + weight(b))) return -1;
    switch (op) {
    case JOP_EQ:
        *out = jv_bool(jx_equal(a, b));
        return 0;
    case JOP_NE:
        *out = jv_bool(!jx_equal(a, b));
        return 0;
    case JOP_LT:
    case JOP_LE:
    case JOP_GT:
    case JOP_GE: {
        int r;
        if (jx_compare(vm, a, b, op, &r)) return -1;
        *out = jv_bool(r);
        return 0;
    }
    case JOP_IN:
    case JOP_NOTIN: {
        int r = 0;
        if (contains(vm, a, b, &r)) return -1;
        *out = jv_bool(op == JOP_IN ? r : !r);
        return 0;
    }
    case JOP_CONCAT: {
        buf s = BUF_INIT;
        int rc = jx_to_str(vm, a, &s);
        if (!rc) rc = jx_to_str(vm, b, &s);
        if (!rc) rc = jx_str(vm, s.data ? s.data : "", s.len, out);
        buf_free(&s);
        return rc;
    }
    default:
        break;
    }
    if (op == JOP_MOD && a.type == JV_STR) return jx_str_percent(vm, a, b, out);
    if (a.type == JV_UNDEF) return jx_undef_fail(vm, a);
    if (b.type == JV_UNDEF) return jx_undef_fail(vm, b);
    if (is_intlike(a) && is_intlike(b)) {
        int64_t x = ival(a), y = ival(b), r = 0;
        switch (op) {
        case JOP_ADD:
            if (add_ovf(x, y, &r)) goto overflow;
            break;
        case JOP_SUB:
            if (sub_ovf(x, y, &r)) goto overflow;
            break;
        case JOP_MUL:
            if (mul_ovf(x, y, &r)) goto overflow;
            break;
        case JOP_DIV:
            if (!y) return jx_fail(vm, "ZeroDivisionError: division by zero");
            *out = jv_float((double)x / (double)y);
            return 0;
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (!y)
                return jx_fail(vm, op == JOP_MOD
                                       ? "ZeroDivisionError: integer modulo by zero"
                                       : "ZeroDivisionError: integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) goto overflow;
            {
                int64_t q = x / y, m = x % y;
                if (m && ((m < 0) != (y < 0))) q--, m += y;
                r = op == JOP_MOD ? m : q;
            }
            break;
        case JOP_POW:
            if (y < 0) {
                *out = jv_float(pow((double)x, (double)y));
                return 0;
            }
            {
                int64_t base = x, e = y;
                r = 1;
                while (e) {
                    if ((e & 1) && mul_ovf(r, base, &r)) goto overflow;
                    e >>= 1;
                    if (e && mul_ovf(base, base, &base)) goto overflow;
                }
            }
            break;
        }
        *out = jv_int(r);
        return 0;
    overflow:
        return jx_fail(vm, "OverflowError: integer result of %s does not fit in 64 bits",
                       op_name(op));
    }
    if (is_num(a) && is_num(b)) {
        double x = fval(a), y = fval(b), r;
        switch (op) {
        case JOP_ADD:
            r = x + y;
            break;
        case JOP_SUB:
            r = x - y;
            break;
        case JOP_MUL:
            r = x * y;
            break;
        case JOP_DIV:
            if (y == 0) return jx_fail(vm, "ZeroDivisionError: float division by zero");
            r = x / y;
            break;
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (y == 0) return jx_fail(vm, "ZeroDivisionError: float modulo");
            if (op == JOP_MOD) {
                r = fmod(x, y);
                if (r && ((r < 0) != (y < 0))) r += y;
            } else {
                r = floor(x / y);
            }
            break;
        default:
            r = pow(x, y);
            break;
        }
        *out = jv_float(r);
        return 0;
    }
    if (op == JOP_ADD) {
        if (a.type == JV_STR && b.type == JV_STR && (a.u.s->markup || b.u.s->markup)) {
            /* Markup + str escapes the plain side and stays Markup */
            if (jx_html_escape(vm, a, &a) || jx_html_escape(vm, b, &b)) return -1;
            jstr *s = jx_str_new(&vm->arena, NULL, a.u.s->len + b.u.s->len);
            if (!s) return oom(vm);
            memcpy(s->s, a.u.s->s, a.u.s->len);
            memcpy(s->s + a.u.s->len, b.u.s->s, b.u.s->len);
            s->markup = 1;
            out->type = JV_STR, out->u.s = s;
            return 0;
        }
        if (a.type == JV_STR && b.type == JV_STR) {
            jstr *s = jx_str_new(&vm->arena, NULL, a.u.s->len + b.u.s->len);
            if (!s) return oom(vm);
            memcpy(s->s, a.u.s->s, a.u.s->len);
            memcpy(s->s + a.u.s->len, b.u.s->s, b.u.s->len);
            out->type = JV_STR, out->u.s = s;
            return 0;
        }
        if (a.type == JV_LIST && b.type == JV_LIST && a.u.l->kind != JL_GEN &&
            (a.u.l->kind == JL_TUPLE) == (b.u.l->kind == JL_TUPLE) && b.u.l->kind != JL_GEN) {
            jlist *l = jx_list_new(&vm->arena, a.u.l->kind, a.u.l->n + b.u.l->n);
            if (!l) return oom(vm);
            for (size_t i = 0; i < a.u.l->n; i++) l->v[l->n++] = a.u.l->v[i];
            for (size_t i = 0; i < b.u.l->n; i++) l->v[l->n++] = b.u.l->v[i];
            out->type = JV_LIST, out->u.l = l;
            return 0;
        }
        if (a.type == JV_STR || (a.type == JV_LIST && a.u.l->kind != JL_GEN))
            return jx_fail(vm, "TypeError: can only concatenate %s (not \"%s\") to %s",
                           jx_type_name(a), jx_type_name(b), jx_type_name(a));
    }
    if (op == JOP_MUL) {
        if ((a.type == JV_STR || (a.type == JV_LIST && a.u.l->kind != JL_GEN)) && is_intlike(b))
            return repeat(vm, a, ival(b), out);
        if ((b.type == JV_STR || (b.type == JV_LIST && b.u.l->kind != JL_GEN)) && is_intlike(a))
            return repeat(vm, b, ival(a), out);
    }
    if (op == JOP_MOD && a.type == JV_STR) return jx_str_percent(vm, a, b, out);
    return unsupported(vm, op, a, b);
}

/* Calls fn (macro, builtin, bound method, caller or recursive loop) with
 * positional and keyword arguments (all borrowed). 0 or JX_ERR; calling a
 * non-callable is a TypeError, calling Undefined an UndefinedError. */
int jx_call(jx_vm *vm, jv fn, jv *args, size_t n_args, jstr **kwnames, jv *kwvals, size_t n_kw,
            jv *out) {
    if (fn.type == JV_UNDEF) return jx_undef_fail(vm, fn);
    if (fn.type == JV_DICT && fn.u.d->kind == JD_LOOP && fn.u.d->loop) {
        jfunc lf = {.kind = JF_LOOP, .loop = fn.u.d->loop, .name = "loop"};
        return jx_builtin_call(vm, &lf, args, n_args, kwnames, kwvals, n_kw, out);
    }
    if (fn.type != JV_FUNC)
        return jx_fail(vm, "TypeError: '%s' object is not callable", jx_type_name(fn));
    const jfunc *f = fn.u.fn;
    if (f->kind == JF_METHOD)
        return jx_method_call(vm, f, args, n_args, kwnames, kwvals, n_kw, out);
    return jx_builtin_call(vm, f, args, n_args, kwnames, kwvals, n_kw, out);
}

/* Evaluates call arguments into arena arrays. */
static int eval_args(jx_vm *vm, const jnode *n, jx_frame *f, jv **args, jv **kw) {
    *args = *kw = NULL;
    if (n->n_args && !(*args = jx_alloc(&vm->arena, n->n_args * sizeof **args))) return oom(vm);
    if (n->n_kw && !(*kw = jx_alloc(&vm->arena, n->n_kw * sizeof **kw))) return oom(vm);
    for (size_t i = 0; i < n->n_args; i++)
        if (jx_eval(vm, n->args[i], f, &(*args)[i])) return -1;
    for (size_t i = 0; i < n->n_kw; i++)
        if (jx_eval(vm, n->kwvals[i], f, &(*kw)[i])) return -1;
    return 0;
}

static int eval_inner(jx_vm *vm, const jnode *n, jx_frame *f, jv *out) {
    jv a, b;
    switch (n->kind) {
    case JN_LIT:
        *out = n->lit;
        return 0;
    case JN_NAME:
        return jx_lookup(vm, f, n->name, out);
    case JN_LIST:
    case JN_TUPLE: {
        jlist *l = jx_list_new(&vm->arena, n->kind == JN_TUPLE ? JL_TUPLE : JL_LIST, n->n_args);
        if (!l) return oom(vm);
        for (size_t i = 0; i < n->n_args; i++)
            if (jx_eval(vm, n->args[i], f, &l->v[l->n++])) return -1;
        out->type = JV_LIST, out->u.l = l;
        return 0;
    }
    case JN_DICT: {
        jdict *d = jx_dict_new(&vm->arena, JD_DICT);
        if (!d) return oom(vm);
        for (size_t i = 0; i < n->n_args; i++) {
            if (jx_eval(vm, n->args[i], f, &a) || jx_eval(vm, n->kwvals[i], f, &b)) return -1;
            if (a.type == JV_LIST && a.u.l->kind != JL_TUPLE)
                return jx_fail(vm, "TypeError: unhashable type: '%s'", jx_type_name(a));
            if (a.type == JV_DICT) return jx_fail(vm, "TypeError: unhashable type: 'dict'");
            if (jx_dict_set(&vm->arena, d, a, b)) return oom(vm);
        }
        out->type = JV_DICT, out->u.d = d;
        return 0;
    }
    case JN_ATTR:
        if (jx_eval(vm, n->a, f, &a)) return -1;
        return jx_getattr(vm, a, n->name->s, n->name->len, out);
    case JN_ITEM:
        if (jx_eval(vm, n->a, f, &a) || jx_eval(vm, n->b, f, &b)) return -1;
        return jx_getitem(vm, a, b, out);
    case JN_SLICE:
        return eval_slice(vm, n, f, out);
    case JN_CALL: {
        jv *args, *kw;
        if (jx_eval(vm, n->a, f, &a) || eval_args(vm, n, f, &args, &kw)) return -1;
        return jx_call(vm, a, args, n->n_args, n->kwnames, kw, n->n_kw, out);
    }
    case JN_FILTER: {
        jv *args, *kw;
        if (jx_eval(vm, n->a, f, &a) || eval_args(vm, n, f, &args, &kw)) return -1;
        return jx_filter(vm, n->name->s, a, args, n->n_args, n->kwnames, kw, n->n_kw, out);
    }
    case JN_TEST: {
        jv *args, *kw;
        int r;
        if (!jx_has_test(n->name->s))
            return jx_fail(vm, "TemplateRuntimeError: No test named '%s'.", n->name->s);
        if (jx_eval(vm, n->a, f, &a) || eval_args(vm, n, f, &args, &kw)) return -1;
        if (jx_test(vm, n->name->s, a, args, n->n_args, &r)) return -1;
        *out = jv_bool(n->op ? !r : r);
        return 0;
    }
    case JN_BINOP:
        if (jx_eval(vm, n->a, f, &a) || jx_eval(vm, n->b, f, &b)) return -1;
        return jx_binop(vm, n->op, a, b, out);
    case JN_NEG:
    case JN_POS:
        if (jx_eval(vm, n->a, f, &a)) return -1;
        if (a.type == JV_UNDEF) return jx_undef_fail(vm, a);
        if (a.type == JV_FLOAT)
            *out = jv_float(n->kind == JN_NEG ? -a.u.f : a.u.f);
        else if (is_intlike(a)) {
            if (n->kind == JN_NEG && ival(a) == INT64_MIN)
                return jx_fail(vm, "OverflowError: integer negation");
            *out = jv_int(n->kind == JN_NEG ? -ival(a) : ival(a));
        } else {
            return jx_fail(vm, "TypeError: bad operand type for unary %c: '%s'",
                           n->kind == JN_NEG ? '-' : '+', jx_type_name(a));
        }
        return 0;
    case JN_NOT:
        if (jx_eval(vm, n->a, f, &a)) return -1;
        *out = jv_bool(!jx_truthy(a));
        return 0;
    case JN_AND:
    case JN_OR:
        if (jx_eval(vm, n->a, f, &a)) return -1;
        if (jx_truthy(a) == (n->kind == JN_OR)) {
            *out = a;
            return 0;
        }
        return jx_eval(vm, n->b, f, out);
    case JN_COND:
        if (jx_eval(vm, n->b, f, &b)) return -1;
        if (jx_truthy(b)) return jx_eval(vm, n->a, f, out);
        if (n->c) return jx_eval(vm, n->c, f, out);
        *out = jv_undef(hintf(vm,
                              "the inline if-expression on line %d evaluated to false and no else "
                              "section was defined.",
                              n->line));
        return 0;
    default:
        return jx_fail(vm, "TemplateRuntimeError: cannot evaluate a statement as an expression");
    }
}

/* Evaluates expression n in frame f into *out (arena-owned), bounded by
 * JX_MAX_EVAL_DEPTH. 0 or JX_ERR. */
int jx_eval(jx_vm *vm, const jnode *n, jx_frame *f, jv *out) {
    if (++vm->eval_depth > JX_MAX_EVAL_DEPTH) {
        vm->eval_depth--;
        return jx_fail(vm, "RecursionError: evaluation nested deeper than %d levels",
                       JX_MAX_EVAL_DEPTH);
    }
    int saved = vm->line;
    vm->line = n->line;
    int rc = eval_inner(vm, n, f, out);
    vm->line = saved;
    vm->eval_depth--;
    return rc;
}
