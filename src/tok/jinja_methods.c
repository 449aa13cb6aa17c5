/*
 * jinja_methods.c - the methods a template may call on data and the global
 * functions. str: strip/lstrip/rstrip, split/rsplit, splitlines, startswith,
 * endswith, upper, lower, title, capitalize, swapcase, replace, find, rfind,
 * count, join, format, is* predicates; list: index, count; dict: items, keys,
 * values, get, copy; loop.cycle. Mutating methods (list.append, dict.update,
 * ...) fail with SecurityError, as in jinja2's ImmutableSandboxedEnvironment.
 * Globals: range (bounded by JX_MAX_RANGE), dict, namespace, raise_exception,
 * strftime_now (transformers' helpers).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "base/utf8.h"
#include "tok/jinja_int.h"

enum {
    M_UNSAFE,
    M_STRIP,
    M_LSTRIP,
    M_RSTRIP,
    M_SPLIT,
    M_RSPLIT,
    M_SPLITLINES,
    M_STARTSWITH,
    M_ENDSWITH,
    M_UPPER,
    M_LOWER,
    M_TITLE,
    M_CAPITALIZE,
    M_SWAPCASE,
    M_REPLACE,
    M_FIND,
    M_RFIND,
    M_COUNT,
    M_JOIN,
    M_FORMAT,
    M_ISDIGIT,
    M_ISALPHA,
    M_ISALNUM,
    M_ISSPACE,
    M_ISLOWER,
    M_ISUPPER,
    M_INDEX,
    M_ITEMS,
    M_KEYS,
    M_VALUES,
    M_GET,
    M_COPY,
    M_CYCLE
};

typedef struct method_def {
    const char *name;
    int id;
} method_def;

static const method_def str_methods[] = {
    {"strip", M_STRIP},           {"lstrip", M_LSTRIP},     {"rstrip", M_RSTRIP},
    {"split", M_SPLIT},           {"rsplit", M_RSPLIT},     {"splitlines", M_SPLITLINES},
    {"startswith", M_STARTSWITH}, {"endswith", M_ENDSWITH}, {"upper", M_UPPER},
    {"lower", M_LOWER},           {"title", M_TITLE},       {"capitalize", M_CAPITALIZE},
    {"swapcase", M_SWAPCASE},     {"replace", M_REPLACE},   {"find", M_FIND},
    {"rfind", M_RFIND},           {"count", M_COUNT},       {"join", M_JOIN},
    {"format", M_FORMAT},         {"isdigit", M_ISDIGIT},   {"isalpha", M_ISALPHA},
    {"isalnum", M_ISALNUM},       {"isspace", M_ISSPACE},   {"islower", M_ISLOWER},
    {"isupper", M_ISUPPER},       {"index", M_INDEX},       {NULL, 0}};
static const method_def list_methods[] = {{"index", M_INDEX},
                                          {"count", M_COUNT},
                                          {"append", M_UNSAFE},
                                          {"extend", M_UNSAFE},
                                          {"insert", M_UNSAFE},
                                          {"pop", M_UNSAFE},
                                          {"remove", M_UNSAFE},
                                          {"reverse", M_UNSAFE},
                                          {"sort", M_UNSAFE},
                                          {"clear", M_UNSAFE},
                                          {NULL, 0}};
static const method_def dict_methods[] = {{"items", M_ITEMS},
                                          {"keys", M_KEYS},
                                          {"values", M_VALUES},
                                          {"get", M_GET},
                                          {"copy", M_COPY},
                                          {"clear", M_UNSAFE},
                                          {"pop", M_UNSAFE},
                                          {"popitem", M_UNSAFE},
                                          {"setdefault", M_UNSAFE},
                                          {"update", M_UNSAFE},
                                          {NULL, 0}};
static const method_def loop_methods[] = {{"cycle", M_CYCLE}, {NULL, 0}};

enum { B_RANGE = 1, B_DICT, B_NAMESPACE, B_RAISE, B_STRFTIME };
static jfunc builtins[] = {
    {JF_BUILTIN, B_RANGE, "range", NULL, NULL, NULL, NULL},
    {JF_BUILTIN, B_DICT, "dict", NULL, NULL, NULL, NULL},
    {JF_BUILTIN, B_NAMESPACE, "namespace", NULL, NULL, NULL, NULL},
    {JF_BUILTIN, B_RAISE, "raise_exception", NULL, NULL, NULL, NULL},
    {JF_BUILTIN, B_STRFTIME, "strftime_now", NULL, NULL, NULL, NULL},
};

static int oom(jx_vm *vm) {
    return jx_fail(vm, "MemoryError: the render used more than %u MiB", JX_MAX_MEMORY_BYTES >> 20);
}

/* Binds a whitelisted method of self (str, list, dict, loop) to *out;
 * returns 1 when found, 0 when self has no such method, JX_ERR on memory. */
int jx_method_lookup(jx_vm *vm, jv self, const char *name, size_t len, jv *out) {
    const method_def *tab = NULL;
    if (self.type == JV_STR)
        tab = str_methods;
    else if (self.type == JV_LIST && self.u.l->kind != JL_GEN)
        tab = list_methods;
    else if (self.type == JV_DICT && self.u.d->kind == JD_DICT)
        tab = dict_methods;
    else if (self.type == JV_DICT && self.u.d->kind == JD_LOOP)
        tab = loop_methods;
    if (!tab) return 0;
    for (; tab->name; tab++) {
        if (strlen(tab->name) != len || memcmp(tab->name, name, len)) continue;
        jfunc *fn = jx_alloc(&vm->arena, sizeof *fn);
        jv *s = jx_alloc(&vm->arena, sizeof *s);
        if (!fn || !s) return oom(vm);
        *s = self;
        fn->kind = JF_METHOD, fn->id = tab->id, fn->name = tab->name, fn->self = s;
        *out = jv_func(fn);
        return 1;
    }
    return 0;
}

/* Global functions (range, dict, namespace, raise_exception, strftime_now);
 * returns 1 and a static function value when name is one. */
int jx_builtin_lookup(const char *name, jv *out, jx_arena *a) {
    (void)a;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (!strcmp(builtins[i].name, name)) {
            *out = jv_func(&builtins[i]);
            return 1;
        }
    return 0;
}

/* ---- string helpers ---- */

static uint32_t cp_at(const char *s, size_t n, size_t *k) {
    uint32_t cp;
    *k = utf8_decode(s, n, &cp);
    if (!*k) {
        *k = 1;
        return (unsigned char)s[0];
    }
    return cp;
}

static void put_cp(buf *b, uint32_t cp) {
    char tmp[4];
    size_t k = utf8_encode(cp, tmp);
    buf_append(b, tmp, k);
}

static int from_buf(jx_vm *vm, buf *b, jv *out) {
    int rc = b->oom ? oom(vm) : jx_str(vm, b->data ? b->data : "", b->len, out);
    buf_free(b);
    return rc;
}

static int is_cased(uint32_t cp) {
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

/* mode: 'u' upper, 'l' lower, 't' Python title, 'c' capitalize, 's' swapcase. */
int jx_case(jx_vm *vm, jv s, int mode, jv *out) {
    buf b = BUF_INIT;
    int prev_cased = 0, first = 1;
    for (size_t i = 0, k; i < s.u.s->len; i += k) {
        uint32_t cp = cp_at(s.u.s->s + i, s.u.s->len - i, &k), r = cp;
        int cased = is_cased(cp);
        switch (mode) {
        case 'u':
            r = (uint32_t)utf8proc_toupper((utf8proc_int32_t)cp);
            break;
        case 'l':
            r = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
            break;
        case 't':
            r = (uint32_t)(prev_cased ? utf8proc_tolower((utf8proc_int32_t)cp)
                                      : utf8proc_totitle((utf8proc_int32_t)cp));
            break;
        case 'c':
            r = (uint32_t)(first ? utf8proc_totitle((utf8proc_int32_t)cp)
                                 : utf8proc_tolower((utf8proc_int32_t)cp));
            break;
        default: {
            utf8proc_int32_t u = utf8proc_toupper((utf8proc_int32_t)cp);
            r = (uint32_t)(u != (utf8proc_int32_t)cp ? u : utf8proc_tolower((utf8proc_int32_t)cp));
        }
        }
        prev_cased = cased;
        first = 0;
        put_cp(&b, r);
    }
    return from_buf(vm, &b, out);
}

static int in_chars(uint32_t cp, const jstr *chars) {
    if (!chars) return jx_is_space(cp);
    for (size_t i = 0, k; i < chars->len; i += k)
        if (cp_at(chars->s + i, chars->len - i, &k) == cp) return 1;
    return 0;
}

/* Python str.strip/lstrip/rstrip: removes chars (NULL: Unicode whitespace)
 * from the chosen ends of string s. 0 or JX_ERR. */
int jx_strip(jx_vm *vm, jv s, const jstr *chars, int left, int right, jv *out) {
    const char *p = s.u.s->s;
    size_t a = 0, b = s.u.s->len, k;
    while (left && a < b) {
        uint32_t cp = cp_at(p + a, b - a, &k);
        if (!in_chars(cp, chars)) break;
        a += k;
    }
    while (right && b > a) {
        size_t st = b - 1;
        while (st > a && ((unsigned char)p[st] & 0xC0) == 0x80 && b - st < 4) st--;
        uint32_t cp = cp_at(p + st, b - st, &k);
        if (!in_chars(cp, chars)) break;
        b = st;
    }
    return jx_str(vm, p + a, b - a, out);
}

static int push_str(jx_vm *vm, jlist *l, const char *s, size_t n) {
    jv v;
    if (jx_str(vm, s, n, &v)) return -1;
    if (jx_list_push(&vm->arena, l, v)) return oom(vm);
    return 0;
}

static int str_split(jx_vm *vm, jv self, jv sep, int64_t maxsplit, int from_right, jv *out) {
    jlist *l = jx_list_new(&vm->arena, JL_LIST, 0);
    if (!l) return oom(vm);
    const char *s = self.u.s->s;
    size_t n = self.u.s->len;
    out->type = JV_LIST, out->u.l = l;
    if (sep.type == JV_STR) {
        const char *d = sep.u.s->s;
        size_t dn = sep.u.s->len;
        if (!dn) return jx_fail(vm, "ValueError: empty separator");
        if (from_right && maxsplit >= 0) {
            /* rsplit: collect from the right, then reverse */
            size_t end = n;
            int64_t done = 0;
            jlist *tmp = jx_list_new(&vm->arena, JL_LIST, 0);
            if (!tmp) return oom(vm);
            while (done < maxsplit) {
                size_t i = end;
                int found = 0;
                while (i >= dn) {
                    if (!memcmp(s + i - dn, d, dn)) {
                        found = 1;
                        break;
                    }
                    i--;
                }
                if (!found) break;
                if (push_str(vm, tmp, s + i, end - i)) return -1;
                end = i - dn;
                done++;
            }
            if (push_str(vm, tmp, s, end)) return -1;
            for (size_t i = tmp->n; i-- > 0;)
                if (jx_list_push(&vm->arena, l, tmp->v[i])) return oom(vm);
            return 0;
        }
        size_t start = 0;
        int64_t done = 0;
        for (;;) {
            const char *hit =
                maxsplit < 0 || done < maxsplit ? memmem(s + start, n - start, d, dn) : NULL;
            if (!hit) break;
            if (push_str(vm, l, s + start, (size_t)(hit - s) - start)) return -1;
            start = (size_t)(hit - s) + dn;
            done++;
        }
        return push_str(vm, l, s + start, n - start);
    }
    /* whitespace split: runs of whitespace, no empty strings */
    size_t i = 0, k;
    int64_t done = 0;
    if (from_right && maxsplit >= 0) {
        jv stripped;
        if (jx_strip(vm, self, NULL, 0, 1, &stripped)) return -1;
        s = stripped.u.s->s, n = stripped.u.s->len;
        size_t end = n;
        jlist *tmp = jx_list_new(&vm->arena, JL_LIST, 0);
        if (!tmp) return oom(vm);
        while (end > 0) {
            size_t st = end;
            while (st > 0 && !jx_is_space((unsigned char)s[st - 1])) st--;
            if (st == 0 || done == maxsplit) {
                if (push_str(vm, tmp, s, end)) return -1;
                end = 0;
                break;
            }
            if (push_str(vm, tmp, s + st, end - st)) return -1;
            done++;
            end = st;
            while (end > 0 && jx_is_space((unsigned char)s[end - 1])) end--;
        }
        for (size_t j = tmp->n; j-- > 0;)
            if (jx_list_push(&vm->arena, l, tmp->v[j])) return oom(vm);
        return 0;
    }
    for (;;) {
        while (i < n && jx_is_space(cp_at(s + i, n - i, &k))) i += k;
        if (i >= n) break;
        if (maxsplit >= 0 && done == maxsplit) {
            jv rest = {JV_STR, {.s = NULL}}, r;
            if (jx_str(vm, s + i, n - i, &rest) || jx_strip(vm, rest, NULL, 0, 1, &r)) return -1;
            if (jx_list_push(&vm->arena, l, r)) return oom(vm);
            break;
        }
        size_t st = i;
        while (i < n && !jx_is_space(cp_at(s + i, n - i, &k))) i += k;
        if (push_str(vm, l, s + st, i - st)) return -1;
        done++;
    }
    return 0;
}

static int affix(jx_vm *vm, jv self, jv arg, int end, jv *out) {
    jlist one = {1, 1, &arg, JL_TUPLE, 0, 0}, *opts = &one;
    if (arg.type == JV_LIST && arg.u.l->kind == JL_TUPLE) opts = arg.u.l;
    for (size_t i = 0; i < opts->n; i++) {
        jv p = opts->v[i];
        if (p.type != JV_STR)
            return jx_fail(vm, "TypeError: %s first arg must be str or a tuple of str, not %s",
                           end ? "endswith" : "startswith", jx_type_name(p));
        size_t n = self.u.s->len, m = p.u.s->len;
        if (m <= n && !memcmp(self.u.s->s + (end ? n - m : 0), p.u.s->s, m)) {
            *out = jv_bool(1);
            return 0;
        }
    }
    *out = jv_bool(0);
    return 0;
}

/* replace()'s result, or an error when it outgrew the output bound (the
 * loops stop early there, so the text is cut and must not be returned). */
static int replace_result(jx_vm *vm, buf *b, jv *out) {
    if (b->len > JX_MAX_OUTPUT_BYTES) {
        buf_free(b);
        return jx_fail(vm, "OutputError: replace() gives more than %u MiB", JX_MAX_OUTPUT_BYTES >> 20);
    }
    return from_buf(vm, b, out);
}

static int str_replace(jx_vm *vm, jv self, jv old, jv new_, int64_t count, jv *out) {
    buf b = BUF_INIT;
    const char *s = self.u.s->s;
    size_t n = self.u.s->len, on = old.u.s->len, pos = 0;
    int64_t done = 0;
    if (!on) { /* Python inserts new between every character */
        for (size_t i = 0, k; i <= n; i += k) {
            if (count < 0 || done < count) buf_append(&b, new_.u.s->s, new_.u.s->len), done++;
            if (i == n || b.len > JX_MAX_OUTPUT_BYTES) break;
            cp_at(s + i, n - i, &k);
            buf_append(&b, s + i, k);
        }
        return replace_result(vm, &b, out);
    }
    while (count < 0 || done < count) {
        const char *hit = memmem(s + pos, n - pos, old.u.s->s, on);
        if (!hit) break;
        buf_append(&b, s + pos, (size_t)(hit - s) - pos);
        buf_append(&b, new_.u.s->s, new_.u.s->len);
        pos = (size_t)(hit - s) + on;
        done++;
        if (b.len > JX_MAX_OUTPUT_BYTES) break;
    }
    buf_append(&b, s + pos, n - pos);
    return replace_result(vm, &b, out);
}

/* Exposed for the replace filter. */
int jx_replace(jx_vm *vm, jv self, jv old, jv new_, int64_t count, jv *out) {
    return str_replace(vm, self, old, new_, count, out);
}

static int str_find(jx_vm *vm, jv self, jv sub, int rev, jv *out) {
    if (sub.type != JV_STR) return jx_fail(vm, "TypeError: must be str, not %s", jx_type_name(sub));
    const char *s = self.u.s->s, *hit = NULL;
    size_t n = self.u.s->len, m = sub.u.s->len;
    if (!rev)
        hit = memmem(s, n, sub.u.s->s, m);
    else
        for (size_t i = n + 1; i-- > 0 && !hit;)
            if (i + m <= n && !memcmp(s + i, sub.u.s->s, m)) hit = s + i;
    *out = jv_int(hit ? (int64_t)jx_utf8_count(s, (size_t)(hit - s)) : -1);
    return 0;
}

static int str_count(jx_vm *vm, jv self, jv sub, jv *out) {
    if (sub.type != JV_STR) return jx_fail(vm, "TypeError: must be str, not %s", jx_type_name(sub));
    size_t n = self.u.s->len, m = sub.u.s->len, pos = 0;
    int64_t c = 0;
    if (!m) {
        *out = jv_int((int64_t)jx_utf8_count(self.u.s->s, n) + 1);
        return 0;
    }
    const char *hit;
    while ((hit = memmem(self.u.s->s + pos, n - pos, sub.u.s->s, m)))
        c++, pos = (size_t)(hit - self.u.s->s) + m;
    *out = jv_int(c);
    return 0;
}

static int str_pred(jv self, int id) {
    size_t n = self.u.s->len, k;
    if (!n) return 0;
    int any_cased = 0;
    for (size_t i = 0; i < n; i += k) {
        uint32_t cp = cp_at(self.u.s->s + i, n - i, &k);
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        int alpha = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
        int digit = c == UTF8PROC_CATEGORY_ND;
        switch (id) {
        case M_ISDIGIT:
            if (!digit) return 0;
            break;
        case M_ISALPHA:
            if (!alpha) return 0;
            break;
        case M_ISALNUM:
            if (!alpha && !digit) return 0;
            break;
        case M_ISSPACE:
            if (!jx_is_space(cp)) return 0;
            break;
        case M_ISLOWER:
            if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) return 0;
            any_cased |= c == UTF8PROC_CATEGORY_LL;
            break;
        default:
            if (c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT) return 0;
            any_cased |= c == UTF8PROC_CATEGORY_LU;
            break;
        }
    }
    return id == M_ISLOWER || id == M_ISUPPER ? any_cased : 1;
}

/* "{} {0} {name}" formatting; format specs are not supported. */
static int str_format(jx_vm *vm, jv self, jv *args, size_t n_args, jstr **kwnames, jv *kwvals,
                      size_t n_kw, jv *out) {
    buf b = BUF_INIT;
    const char *s = self.u.s->s;
    size_t n = self.u.s->len, auto_i = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '{' && i + 1 < n && s[i + 1] == '{') {
            buf_putc(&b, '{');
            i++;
            continue;
        }
        if (s[i] == '}' && i + 1 < n && s[i + 1] == '}') {
            buf_putc(&b, '}');
            i++;
            continue;
        }
        if (s[i] != '{') {
            buf_putc(&b, s[i]);
            continue;
        }
        size_t e = i + 1;
        while (e < n && s[e] != '}') e++;
        if (e >= n) {
            buf_free(&b);
            return jx_fail(vm, "ValueError: Single '{' encountered in format string");
        }
        const char *f = s + i + 1;
        size_t fl = e - i - 1;
        jv v;
        int found = 0;
        if (memchr(f, ':', fl) || memchr(f, '!', fl)) {
            buf_free(&b);
            return jx_fail(vm, "ValueError: format specs in str.format are not supported");
        }
        if (fl == 0) {
            if (auto_i < n_args) v = args[auto_i++], found = 1;
        } else if (f[0] >= '0' && f[0] <= '9') {
            size_t idx = 0;
            for (size_t j = 0; j < fl && f[j] >= '0' && f[j] <= '9'; j++)
                idx = idx * 10 + (size_t)(f[j] - '0');
            if (idx < n_args) v = args[idx], found = 1;
        } else {
            for (size_t j = 0; j < n_kw; j++)
                if (kwnames[j]->len == fl && !memcmp(kwnames[j]->s, f, fl))
                    v = kwvals[j], found = 1;
        }
        if (!found) {
            buf_free(&b);
            return jx_fail(vm, "IndexError: Replacement index %.*s out of range", (int)fl, f);
        }
        if (jx_to_str(vm, v, &b)) {
            buf_free(&b);
            return -1;
        }
        i = e;
    }
    return from_buf(vm, &b, out);
}

static jv arg_or(jv *args, size_t n_args, size_t i, jstr **kwnames, jv *kwvals, size_t n_kw,
                 const char *name, jv def) {
    if (i < n_args) return args[i];
    for (size_t k = 0; k < n_kw; k++)
        if (!strcmp(kwnames[k]->s, name)) return kwvals[k];
    return def;
}

/* Runs a bound method (fn->self is the receiver) with Python's semantics;
 * mutating methods fail with SecurityError. 0 or JX_ERR. */
int jx_method_call(jx_vm *vm, const jfunc *fn, jv *args, size_t n_args, jstr **kwnames, jv *kwvals,
                   size_t n_kw, jv *out) {
    jv self = *fn->self;
#define ARG(i, name, def) arg_or(args, n_args, i, kwnames, kwvals, n_kw, name, def)
    jv none = jv_none();
    switch (fn->id) {
    case M_UNSAFE:
        return jx_fail(vm, "SecurityError: access to attribute '%s' of '%s' object is unsafe.",
                       fn->name, jx_type_name(self));
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP: {
        jv c = ARG(0, "chars", none);
        if (c.type != JV_NONE && c.type != JV_STR)
            return jx_fail(vm, "TypeError: %s arg must be None or str", fn->name);
        return jx_strip(vm, self, c.type == JV_STR ? c.u.s : NULL, fn->id != M_RSTRIP,
                        fn->id != M_LSTRIP, out);
    }
    case M_SPLIT:
    case M_RSPLIT: {
        jv sep = ARG(0, "sep", none), mx = ARG(1, "maxsplit", jv_int(-1));
        if (sep.type != JV_NONE && sep.type != JV_STR)
            return jx_fail(vm, "TypeError: must be str or None, not %s", jx_type_name(sep));
        if (mx.type != JV_INT) return jx_fail(vm, "TypeError: maxsplit must be an integer");
        return str_split(vm, self, sep, mx.u.i, fn->id == M_RSPLIT, out);
    }
    case M_SPLITLINES: {
        jlist *l = jx_list_new(&vm->arena, JL_LIST, 0);
        if (!l) return oom(vm);
        const char *s = self.u.s->s;
        size_t n = self.u.s->len, st = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] != '\n' && s[i] != '\r') continue;
            if (push_str(vm, l, s + st, i - st)) return -1;
            if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') i++;
            st = i + 1;
        }
        if (st < n && push_str(vm, l, s + st, n - st)) return -1;
        out->type = JV_LIST, out->u.l = l;
        return 0;
    }
    case M_STARTSWITH:
    case M_ENDSWITH:
        if (!n_args)
            return jx_fail(vm, "TypeError: %s() takes at least 1 argument (0 given)", fn->name);
        return affix(vm, self, args[0], fn->id == M_ENDSWITH, out);
    case M_UPPER:
        return jx_case(vm, self, 'u', out);
    case M_LOWER:
        return jx_case(vm, self, 'l', out);
    case M_TITLE:
        return jx_case(vm, self, 't', out);
    case M_CAPITALIZE:
        return jx_case(vm, self, 'c', out);
    case M_SWAPCASE:
        return jx_case(vm, self, 's', out);
    case M_REPLACE: {
        jv o = ARG(0, "old", none), w = ARG(1, "new", none), c = ARG(2, "count", jv_int(-1));
        if (o.type != JV_STR || w.type != JV_STR || c.type != JV_INT)
            return jx_fail(vm, "TypeError: replace() arguments must be (str, str[, int])");
        return str_replace(vm, self, o, w, c.u.i, out);
    }
    case M_FIND:
    case M_RFIND:
        if (!n_args)
            return jx_fail(vm, "TypeError: %s() takes at least 1 argument (0 given)", fn->name);
        return str_find(vm, self, args[0], fn->id == M_RFIND, out);
    case M_INDEX:
    case M_COUNT:
        if (!n_args)
            return jx_fail(vm, "TypeError: %s() takes exactly one argument (0 given)", fn->name);
        if (self.type == JV_STR) {
            if (fn->id == M_COUNT) return str_count(vm, self, args[0], out);
            if (str_find(vm, self, args[0], 0, out)) return -1;
            if (out->u.i < 0) return jx_fail(vm, "ValueError: substring not found");
            return 0;
        } else {
            int64_t c = 0, first = -1;
            for (size_t i = 0; i < self.u.l->n; i++)
                if (jx_equal(self.u.l->v[i], args[0])) {
                    if (first < 0) first = (int64_t)i;
                    c++;
                }
            if (fn->id == M_COUNT)
                *out = jv_int(c);
            else if (first < 0)
                return jx_fail(vm, "ValueError: value is not in list");
            else
                *out = jv_int(first);
            return 0;
        }
    case M_JOIN: {
        jlist *items;
        if (!n_args) return jx_fail(vm, "TypeError: join() takes exactly one argument (0 given)");
        if (jx_iterate(vm, args[0], &items)) return -1;
        buf b = BUF_INIT;
        for (size_t i = 0; i < items->n; i++) {
            if (items->v[i].type != JV_STR) {
                buf_free(&b);
                return jx_fail(vm, "TypeError: sequence item %zu: expected str instance, %s found",
                               i, jx_type_name(items->v[i]));
            }
            if (i) buf_append(&b, self.u.s->s, self.u.s->len);
            buf_append(&b, items->v[i].u.s->s, items->v[i].u.s->len);
        }
        return from_buf(vm, &b, out);
    }
    case M_FORMAT:
        return str_format(vm, self, args, n_args, kwnames, kwvals, n_kw, out);
    case M_ISDIGIT:
    case M_ISALPHA:
    case M_ISALNUM:
    case M_ISSPACE:
    case M_ISLOWER:
    case M_ISUPPER:
        *out = jv_bool(str_pred(self, fn->id));
        return 0;
    case M_ITEMS:
    case M_KEYS:
    case M_VALUES: {
        jdict *d = self.u.d;
        jlist *l = jx_list_new(&vm->arena, JL_LIST, d->n);
        if (!l) return oom(vm);
        for (size_t i = 0; i < d->n; i++) {
            if (fn->id == M_KEYS)
                l->v[l->n++] = d->k[i];
            else if (fn->id == M_VALUES)
                l->v[l->n++] = d->v[i];
            else {
                jlist *t = jx_list_new(&vm->arena, JL_TUPLE, 2);
                if (!t) return oom(vm);
                t->v[0] = d->k[i], t->v[1] = d->v[i], t->n = 2;
                l->v[l->n].type = JV_LIST, l->v[l->n++].u.l = t;
            }
        }
        out->type = JV_LIST, out->u.l = l;
        return 0;
    }
    case M_GET: {
        if (!n_args) return jx_fail(vm, "TypeError: get expected at least 1 argument, got 0");
        jv *v = jx_dict_get(self.u.d, args[0]);
        *out = v ? *v : n_args > 1 ? args[1] : jv_none();
        return 0;
    }
    case M_COPY: {
        jdict *d = jx_dict_new(&vm->arena, JD_DICT);
        if (!d) return oom(vm);
        for (size_t i = 0; i < self.u.d->n; i++)
            if (jx_dict_set(&vm->arena, d, self.u.d->k[i], self.u.d->v[i])) return oom(vm);
        out->type = JV_DICT, out->u.d = d;
        return 0;
    }
    case M_CYCLE: {
        if (!n_args) return jx_fail(vm, "TypeError: no items for cycling given");
        jv *idx = jx_dict_get_str(self.u.d, "index0", 6);
        *out = args[idx && idx->type == JV_INT ? (size_t)(idx->u.i % (int64_t)n_args) : 0];
        return 0;
    }
    default:
        return jx_fail(vm, "TypeError: '%s' is not callable", fn->name);
    }
#undef ARG
}

static int b_range(jx_vm *vm, jv *args, size_t n_args, jv *out) {
    int64_t a[3] = {0, 0, 1};
    if (n_args < 1 || n_args > 3)
        return jx_fail(vm, "TypeError: range expected 1 to 3 arguments, got %zu", n_args);
    for (size_t i = 0; i < n_args; i++) {
        if (args[i].type == JV_UNDEF) return jx_undef_fail(vm, args[i]);
        if (args[i].type != JV_INT && args[i].type != JV_BOOL)
            return jx_fail(vm, "TypeError: '%s' object cannot be interpreted as an integer",
                           jx_type_name(args[i]));
        a[n_args == 1 ? 1 : i] = args[i].type == JV_INT ? args[i].u.i : args[i].u.b;
    }
    if (a[2] == 0) return jx_fail(vm, "ValueError: range() arg 3 must not be zero");
    int64_t count = 0;
    if (a[2] > 0 && a[1] > a[0]) count = (int64_t)(((__int128)a[1] - a[0] + a[2] - 1) / a[2]);
    if (a[2] < 0 && a[1] < a[0])
        count = (int64_t)(((__int128)a[0] - a[1] - a[2] - 1) / -(__int128)a[2]);
    if (count > JX_MAX_RANGE)
        return jx_fail(
            vm,
            "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).",
            JX_MAX_RANGE);
    jlist *l = jx_list_new(&vm->arena, JL_LIST, (size_t)count);
    if (!l && count) return oom(vm);
    if (!l && !(l = jx_list_new(&vm->arena, JL_LIST, 0))) return oom(vm);
    for (int64_t i = 0; i < count; i++) l->v[l->n++] = jv_int(a[0] + i * a[2]);
    out->type = JV_LIST, out->u.l = l;
    return 0;
}

/* Runs a global function, macro, caller or recursive loop call. 0 or
 * JX_ERR; raise_exception always returns JX_ERR with "TemplateError: msg". */
int jx_builtin_call(jx_vm *vm, const jfunc *fn, jv *args, size_t n_args, jstr **kwnames, jv *kwvals,
                    size_t n_kw, jv *out) {
    switch (fn->kind) {
    case JF_MACRO:
    case JF_CALLER:
        return jx_call_macro(vm, fn, args, n_args, kwnames, kwvals, n_kw, out);
    case JF_LOOP:
        if (n_args != 1) return jx_fail(vm, "TypeError: loop() takes exactly one argument");
        return jx_call_loop(vm, fn->loop, args[0], out);
    default:
        break;
    }
    switch (fn->id) {
    case B_RANGE:
        return b_range(vm, args, n_args, out);
    case B_DICT:
    case B_NAMESPACE: {
        jdict *d = jx_dict_new(&vm->arena, fn->id == B_DICT ? JD_DICT : JD_NAMESPACE);
        if (!d) return oom(vm);
        if (n_args > 1)
            return jx_fail(vm, "TypeError: %s expected at most 1 argument, got %zu", fn->name,
                           n_args);
        if (n_args == 1) {
            jv src = args[0];
            if (src.type == JV_DICT && src.u.d->kind != JD_LOOP) {
                for (size_t i = 0; i < src.u.d->n; i++)
                    if (jx_dict_set(&vm->arena, d, src.u.d->k[i], src.u.d->v[i])) return oom(vm);
            } else {
                jlist *items;
                if (jx_iterate(vm, src, &items)) return -1;
                for (size_t i = 0; i < items->n; i++) {
                    if (jx_tick(vm, d->n)) return -1;
                    jlist *pair;
                    if (items->v[i].type != JV_LIST || jx_iterate(vm, items->v[i], &pair) ||
                        pair->n != 2)
                        return jx_fail(vm,
                                       "ValueError: dictionary update sequence element #%zu has "
                                       "the wrong length",
                                       i);
                    if (jx_dict_set(&vm->arena, d, pair->v[0], pair->v[1])) return oom(vm);
                }
            }
        }
        for (size_t i = 0; i < n_kw; i++) {
            jv k = {JV_STR, {.s = kwnames[i]}};
            if (jx_dict_set(&vm->arena, d, k, kwvals[i])) return oom(vm);
        }
        out->type = JV_DICT, out->u.d = d;
        return 0;
    }
    case B_RAISE: {
        buf b = BUF_INIT;
        if (n_args && jx_to_str(vm, args[0], &b)) {
            buf_free(&b);
            return -1;
        }
        jx_fail(vm, "TemplateError: %s", b.data ? b.data : "");
        buf_free(&b);
        return -1;
    }
    case B_STRFTIME: {
        if (n_args < 1 || args[0].type != JV_STR)
            return jx_fail(vm, "TypeError: strftime_now() argument 1 must be str");
        if (args[0].u.s->len > 1024)
            return jx_fail(vm, "ValueError: strftime_now format longer than 1024 bytes");
        time_t t = (time_t)vm->now_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        char tmp[8192];
        size_t k = args[0].u.s->len ? strftime(tmp, sizeof tmp, args[0].u.s->s, &tm) : 0;
        return jx_str(vm, tmp, k, out);
    }
    default:
        return jx_fail(vm, "TypeError: '%s' is not callable", fn->name);
    }
}
