/*
 * jinja_filters.c - jinja2's built-in filters with their Python semantics,
 * plus transformers' tojson (json.dumps with ensure_ascii=False, indent,
 * separators, sort_keys). Filters that return generators in jinja2 (map,
 * select, reject, selectattr, rejectattr, unique, items, batch, reverse)
 * return single-use generator values here too, so `x|map(...)|tojson` fails
 * exactly where jinja2 fails. Arguments bind by position or keyword.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/utf8.h"
#include "tok/jinja_int.h"

static int oom(jx_vm *vm) {
    return jx_fail(vm, "MemoryError: the render used more than %u MiB", JX_MAX_MEMORY_BYTES >> 20);
}

static int ret_list(jlist *l, jv *out) {
    out->type = JV_LIST, out->u.l = l;
    return 0;
}

static int as_str(jx_vm *vm, jv v, jv *out) {
    return jx_stringify(vm, v, out);
}

static int opt_bool(fargs *a, int i, int def) {
    return a->has[i] ? jx_truthy(a->v[i]) : def;
}

/* ---- filters ---- */

static int f_abs(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    if (in.type == JV_UNDEF) return jx_undef_fail(vm, in);
    if (in.type == JV_INT) {
        if (in.u.i == INT64_MIN) return jx_fail(vm, "OverflowError: abs of the smallest integer");
        *out = jv_int(in.u.i < 0 ? -in.u.i : in.u.i);
    } else if (in.type == JV_BOOL)
        *out = jv_int(in.u.b);
    else if (in.type == JV_FLOAT)
        *out = jv_float(fabs(in.u.f));
    else
        return jx_fail(vm, "TypeError: bad operand type for abs(): '%s'", jx_type_name(in));
    return 0;
}

static int f_attr(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    if (!a->has[0] || a->v[0].type != JV_STR)
        return jx_fail(vm, "TypeError: attr() needs a name string");
    return jx_getattr(vm, in, a->v[0].u.s->s, a->v[0].u.s->len, out);
}

static int f_case(jx_vm *vm, jv in, int mode, jv *out) {
    jv s;
    if (as_str(vm, in, &s)) return -1;
    return jx_case(vm, s, mode, out);
}
static int f_upper(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    return f_case(vm, in, 'u', out);
}
static int f_lower(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    return f_case(vm, in, 'l', out);
}
static int f_capitalize(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    return f_case(vm, in, 'c', out);
}

/* jinja2's title: words start after whitespace, '-', '(', '{', '[' or '<'. */
static int f_title(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    jv s;
    if (as_str(vm, in, &s)) return -1;
    buf b = BUF_INIT;
    int at_start = 1;
    for (size_t i = 0; i < s.u.s->len;) {
        uint32_t cp;
        size_t k = utf8_decode(s.u.s->s + i, s.u.s->len - i, &cp);
        if (!k) cp = (unsigned char)s.u.s->s[i], k = 1;
        int sep = jx_is_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        uint32_t r = sep ? cp
                         : (uint32_t)(at_start ? utf8proc_toupper((utf8proc_int32_t)cp)
                                               : utf8proc_tolower((utf8proc_int32_t)cp));
        char tmp[4];
        buf_append(&b, tmp, utf8_encode(r, tmp));
        at_start = sep;
        i += k;
    }
    int rc = b.oom ? oom(vm) : jx_str(vm, b.data ? b.data : "", b.len, out);
    buf_free(&b);
    return rc;
}

static int f_center(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jv s;
    if (as_str(vm, in, &s)) return -1;
    int64_t width = a->has[0] && a->v[0].type == JV_INT ? a->v[0].u.i : 80;
    int64_t len = (int64_t)jx_utf8_count(s.u.s->s, s.u.s->len);
    if (width > JX_MAX_OUTPUT_BYTES)
        return jx_fail(vm, "ValueError: center width %lld is too large", (long long)width);
    if (width <= len) {
        *out = s;
        return 0;
    }
    int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
    buf b = BUF_INIT;
    for (int64_t i = 0; i < left; i++) buf_putc(&b, ' ');
    buf_append(&b, s.u.s->s, s.u.s->len);
    for (int64_t i = 0; i < marg - left; i++) buf_putc(&b, ' ');
    int rc = b.oom ? oom(vm) : jx_str(vm, b.data, b.len, out);
    buf_free(&b);
    return rc;
}

static int f_length(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    int64_t n;
    if (jx_len(vm, in, &n)) return -1;
    *out = jv_int(n);
    return 0;
}

static int f_default(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)vm, (void)kn, (void)kv, (void)nk;
    jv def = a->has[0] ? a->v[0] : (jv){JV_STR, {.s = NULL}};
    if (!a->has[0] && jx_str(vm, "", 0, &def)) return -1;
    *out = in.type == JV_UNDEF || (opt_bool(a, 1, 0) && !jx_truthy(in)) ? def : in;
    return 0;
}

/* HTML-escapes str(in) into a Markup string (& < > " '); Markup input is
 * returned unchanged. 0 or JX_ERR. */
int jx_html_escape(jx_vm *vm, jv in, jv *out) {
    jv s;
    if (in.type == JV_STR && in.u.s->markup) {
        *out = in;
        return 0;
    }
    if (as_str(vm, in, &s)) return -1;
    buf b = BUF_INIT;
    for (size_t i = 0; i < s.u.s->len; i++) {
        char c = s.u.s->s[i];
        if (c == '&')
            buf_puts(&b, "&amp;");
        else if (c == '<')
            buf_puts(&b, "&lt;");
        else if (c == '>')
            buf_puts(&b, "&gt;");
        else if (c == '"')
            buf_puts(&b, "&#34;");
        else if (c == '\'')
            buf_puts(&b, "&#39;");
        else
            buf_putc(&b, c);
    }
    int rc = b.oom ? oom(vm) : jx_str(vm, b.data ? b.data : "", b.len, out);
    buf_free(&b);
    if (!rc) out->u.s->markup = 1;
    return rc;
}

static int f_escape(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    return jx_html_escape(vm, in, out);
}

static int f_first(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    jlist *items;
    if (jx_iterate(vm, in, &items)) return -1;
    *out = items->n ? items->v[0] : jv_undef("No first item, sequence was empty.");
    return 0;
}

static int f_last(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    jlist *items;
    if (in.type == JV_LIST && in.u.l->kind == JL_GEN)
        return jx_fail(vm, "TypeError: 'generator' object is not reversible");
    if (jx_iterate(vm, in, &items)) return -1;
    *out = items->n ? items->v[items->n - 1] : jv_undef("No last item, sequence was empty.");
    return 0;
}

/* Python float(str): optional spaces, sign, digits, inf/nan; 0 on success. */
static int parse_float(const char *s, double *out) {
    char *end;
    while (*s && jx_is_space((unsigned char)*s)) s++;
    if (!*s) return -1;
    *out = strtod(s, &end);
    while (*end && jx_is_space((unsigned char)*end)) end++;
    return *end ? -1 : 0;
}

static int f_float(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jv def = a->has[0] ? a->v[0] : jv_float(0.0);
    double d;
    switch (in.type) {
    case JV_UNDEF:
        return jx_undef_fail(vm, in);
    case JV_INT:
        *out = jv_float((double)in.u.i);
        return 0;
    case JV_BOOL:
        *out = jv_float(in.u.b);
        return 0;
    case JV_FLOAT:
        *out = in;
        return 0;
    case JV_STR:
        *out = parse_float(in.u.s->s, &d) ? def : jv_float(d);
        return 0;
    default:
        *out = def;
        return 0;
    }
}

static int f_int(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jv def = a->has[0] ? a->v[0] : jv_int(0);
    int base = a->has[1] && a->v[1].type == JV_INT ? (int)a->v[1].u.i : 10;
    switch (in.type) {
    case JV_UNDEF:
        return jx_undef_fail(vm, in);
    case JV_INT:
        *out = in;
        return 0;
    case JV_BOOL:
        *out = jv_int(in.u.b);
        return 0;
    case JV_FLOAT:
        if (!isfinite(in.u.f) || fabs(in.u.f) >= 9.2e18)
            *out = def;
        else
            *out = jv_int((int64_t)in.u.f);
        return 0;
    case JV_STR: {
        char tmp[80];
        size_t w = 0;
        const char *s = in.u.s->s;
        while (*s && jx_is_space((unsigned char)*s)) s++;
        for (; *s && w + 1 < sizeof tmp; s++)
            if (*s != '_') tmp[w++] = *s;
        while (w && jx_is_space((unsigned char)tmp[w - 1])) w--;
        tmp[w] = 0;
        char *end;
        if (w && base >= 2 && base <= 36) {
            long long v = strtoll(tmp, &end, base);
            if (!*end && end != tmp) {
                *out = jv_int(v);
                return 0;
            }
        }
        double d;
        if (!parse_float(in.u.s->s, &d) && isfinite(d) && fabs(d) < 9.2e18)
            *out = jv_int((int64_t)d);
        else
            *out = def;
        return 0;
    }
    default:
        *out = def;
        return 0;
    }
}

static int f_indent(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jv s;
    if (in.type == JV_UNDEF) return jx_undef_fail(vm, in);
    if (in.type != JV_STR) /* jinja2 appends "\n" to the value first */
        return jx_fail(vm, "TypeError: indent needs a string, got %s", jx_type_name(in));
    if (as_str(vm, in, &s)) return -1;
    buf ind = BUF_INIT, b = BUF_INIT;
    if (a->has[0] && a->v[0].type == JV_STR)
        buf_append(&ind, a->v[0].u.s->s, a->v[0].u.s->len);
    else {
        int64_t w = a->has[0] && a->v[0].type == JV_INT ? a->v[0].u.i : 4;
        if (w > 1000)
            return jx_fail(vm, "ValueError: indent width %lld is too large", (long long)w);
        for (int64_t i = 0; i < w; i++) buf_putc(&ind, ' ');
    }
    int first = opt_bool(a, 1, 0), blank = opt_bool(a, 2, 0);
    const char *p = s.u.s->s, *end = p + s.u.s->len;
    if (first) buf_append(&b, ind.data ? ind.data : "", ind.len);
    /* lines split like str.splitlines() on "\n", "\r\n" and "\r"; rejoined with "\n" */
    int line_no = 0;
    while (p < end) {
        const char *e = p;
        while (e < end && *e != '\n' && *e != '\r') e++;
        if (line_no > 0) {
            buf_putc(&b, '\n');
            if (blank || e > p) buf_append(&b, ind.data ? ind.data : "", ind.len);
        }
        buf_append(&b, p, (size_t)(e - p));
        line_no++;
        if (e < end && *e == '\r' && e + 1 < end && e[1] == '\n') e++;
        p = e < end ? e + 1 : e;
        if (p == end && e < end) { /* trailing newline: keeps the newline, no indent */
            buf_putc(&b, '\n');
            if (blank) buf_append(&b, ind.data ? ind.data : "", ind.len);
        }
    }
    int rc = b.oom || ind.oom ? oom(vm) : jx_str(vm, b.data ? b.data : "", b.len, out);
    buf_free(&b);
    buf_free(&ind);
    return rc;
}

static int f_items(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    jlist *l = jx_list_new(&vm->arena, JL_GEN, 0);
    if (!l) return oom(vm);
    if (in.type == JV_UNDEF) return ret_list(l, out);
    if (in.type != JV_DICT || in.u.d->kind != JD_DICT)
        return jx_fail(vm, "TypeError: Can only get item pairs from a mapping.");
    for (size_t i = 0; i < in.u.d->n; i++) {
        jlist *t = jx_list_new(&vm->arena, JL_TUPLE, 2);
        if (!t) return oom(vm);
        t->v[0] = in.u.d->k[i], t->v[1] = in.u.d->v[i], t->n = 2;
        jv tv = {JV_LIST, {.l = t}};
        if (jx_list_push(&vm->arena, l, tv)) return oom(vm);
    }
    return ret_list(l, out);
}

static int f_join(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jlist *items;
    if (jx_iterate(vm, in, &items)) return -1;
    jv sep;
    if (a->has[0]) {
        if (as_str(vm, a->v[0], &sep)) return -1;
    } else if (jx_str(vm, "", 0, &sep)) {
        return -1;
    }
    buf b = BUF_INIT;
    for (size_t i = 0; i < items->n; i++) {
        jv v = items->v[i];
        if (a->has[1] && a->v[1].type != JV_NONE && jx_get_path(vm, v, a->v[1], &v)) goto fail;
        if (i) buf_append(&b, sep.u.s->s, sep.u.s->len);
        if (jx_to_str(vm, v, &b)) goto fail;
    }
    int rc = b.oom ? oom(vm) : jx_str(vm, b.data ? b.data : "", b.len, out);
    buf_free(&b);
    return rc;
fail:
    buf_free(&b);
    return -1;
}

static int f_list(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    jlist *items;
    if (jx_iterate(vm, in, &items)) return -1;
    jlist *l = jx_list_new(&vm->arena, JL_LIST, items->n);
    if (!l) return oom(vm);
    if (items->n) memcpy(l->v, items->v, items->n * sizeof(jv));
    l->n = items->n;
    return ret_list(l, out);
}

static int f_map(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    jlist *items, *res;
    if (!jx_truthy(in)) in = jv_undef(NULL); /* jinja2: `if value:` before iterating */
    if (jx_iterate(vm, in, &items) || !(res = jx_list_new(&vm->arena, JL_GEN, items->n))) return -1;
    jv attr = jv_none(), def = jv_undef(NULL);
    int has_def = 0;
    for (size_t k = 0; k < nk; k++) {
        if (!strcmp(kn[k]->s, "attribute"))
            attr = kv[k];
        else if (!strcmp(kn[k]->s, "default"))
            def = kv[k], has_def = 1;
    }
    if (attr.type == JV_NONE && !a->n_rest)
        return jx_fail(vm, "FilterArgumentError: map requires a filter argument");
    for (size_t i = 0; i < items->n; i++) {
        jv r;
        if (attr.type != JV_NONE) {
            if (jx_get_path(vm, items->v[i], attr, &r)) return -1;
            if (r.type == JV_UNDEF && has_def) r = def;
        } else {
            jv name = a->rest[0];
            if (name.type != JV_STR)
                return jx_fail(vm, "TypeError: map filter name must be a string");
            if (jx_filter(vm, name.u.s->s, items->v[i], a->rest + 1, a->n_rest - 1, kn, kv, nk, &r))
                return -1;
        }
        res->v[res->n++] = r;
    }
    return ret_list(res, out);
}

/* select/reject/selectattr/rejectattr share one body. */
static int do_select(jx_vm *vm, jv in, fargs *a, int by_attr, int want, jv *out) {
    jlist *items, *res;
    if (!jx_truthy(in)) in = jv_undef(NULL); /* jinja2: `if value:` before iterating */
    if (jx_iterate(vm, in, &items) || !(res = jx_list_new(&vm->arena, JL_GEN, items->n))) return -1;
    size_t pos = 0;
    jv attr = jv_none();
    if (by_attr) {
        if (!a->n_rest)
            return jx_fail(vm, "TypeError: selectattr/rejectattr need an attribute name");
        attr = a->rest[pos++];
    }
    const char *test = NULL;
    if (pos < a->n_rest) {
        if (a->rest[pos].type != JV_STR)
            return jx_fail(vm, "TypeError: test name must be a string");
        test = a->rest[pos++].u.s->s;
        if (!jx_has_test(test))
            return jx_fail(vm, "TemplateRuntimeError: No test named '%s'.", test);
    }
    for (size_t i = 0; i < items->n; i++) {
        jv v = items->v[i];
        int r;
        if (by_attr && jx_get_path(vm, v, attr, &v)) return -1;
        if (test) {
            if (jx_test(vm, test, v, a->rest + pos, a->n_rest - pos, &r)) return -1;
        } else {
            r = jx_truthy(v);
        }
        if (r == want) res->v[res->n++] = items->v[i];
    }
    return ret_list(res, out);
}
static int f_select(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    return do_select(vm, in, a, 0, 1, out);
}
static int f_reject(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    return do_select(vm, in, a, 0, 0, out);
}
static int f_selectattr(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    return do_select(vm, in, a, 1, 1, out);
}
static int f_rejectattr(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    return do_select(vm, in, a, 1, 0, out);
}

int jx_replace(jx_vm *vm, jv self, jv old, jv new_, int64_t count, jv *out);

static int f_replace(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jv s, o, n;
    if (!a->has[0] || !a->has[1])
        return jx_fail(vm, "TypeError: replace() needs old and new strings");
    if (as_str(vm, in, &s) || as_str(vm, a->v[0], &o) || as_str(vm, a->v[1], &n)) return -1;
    int64_t count = a->has[2] && a->v[2].type == JV_INT ? a->v[2].u.i : -1;
    return jx_replace(vm, s, o, n, count, out);
}

static int f_reverse(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    jlist *items;
    if (in.type == JV_STR) {
        jstr *s = in.u.s, *r = jx_str_new(&vm->arena, NULL, s->len);
        if (!r) return oom(vm);
        for (size_t i = 0; i < s->len;) {
            size_t k = utf8_valid_prefix_len(s->s + i, s->len - i);
            if (!k) k = 1;
            memcpy(r->s + s->len - i - k, s->s + i, k);
            i += k;
        }
        out->type = JV_STR, out->u.s = r;
        return 0;
    }
    if (jx_iterate(vm, in, &items)) return -1;
    jlist *l = jx_list_new(&vm->arena, JL_GEN, items->n);
    if (!l) return oom(vm);
    for (size_t i = items->n; i-- > 0;) l->v[l->n++] = items->v[i];
    return ret_list(l, out);
}

static int f_round(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    int64_t prec = a->has[0] && a->v[0].type == JV_INT ? a->v[0].u.i : 0;
    const char *method = a->has[1] && a->v[1].type == JV_STR ? a->v[1].u.s->s : "common";
    if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor"))
        return jx_fail(vm, "FilterArgumentError: method must be common, ceil or floor");
    if (in.type == JV_UNDEF) return jx_undef_fail(vm, in);
    if ((in.type == JV_INT || in.type == JV_BOOL) && !strcmp(method, "common") && prec >= 0) {
        *out = in.type == JV_BOOL ? jv_int(in.u.b) : in;
        return 0;
    }
    if (in.type != JV_INT && in.type != JV_BOOL && in.type != JV_FLOAT)
        return jx_fail(vm, "TypeError: type %s doesn't define __round__ method", jx_type_name(in));
    double x = in.type == JV_FLOAT ? in.u.f : in.type == JV_INT ? (double)in.u.i : in.u.b;
    if (prec > 300) prec = 300;
    if (prec < -300) prec = -300;
    double m = pow(10.0, (double)prec), r;
    if (!strcmp(method, "ceil"))
        r = ceil(x * m) / m;
    else if (!strcmp(method, "floor"))
        r = floor(x * m) / m;
    else if (prec >= 0 && isfinite(x)) {
        char tmp[400];
        snprintf(tmp, sizeof tmp, "%.*f", (int)prec, x); /* correctly rounded, half-even */
        r = strtod(tmp, NULL);
    } else {
        r = nearbyint(x * m) / m;
    }
    *out = jv_float(r);
    return 0;
}

static int f_safe(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    jv s;
    if (in.type == JV_STR && in.u.s->markup) {
        *out = in;
        return 0;
    }
    if (as_str(vm, in, &s) || jx_str(vm, s.u.s->s, s.u.s->len, out)) return -1;
    out->u.s->markup = 1;
    return 0;
}

static int f_string(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    return as_str(vm, in, out);
}

static int f_pprint(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    buf b = BUF_INIT;
    int rc = jx_to_repr(vm, in, &b);
    if (!rc) rc = jx_str(vm, b.data ? b.data : "", b.len, out);
    buf_free(&b);
    return rc;
}

static int f_tojson(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    int ensure_ascii = opt_bool(a, 0, 0), indent_set = 0, sort_keys = opt_bool(a, 3, 0);
    buf ind = BUF_INIT, b = BUF_INIT;
    const char *item_sep = ", ", *key_sep = ": ";
    if (a->has[1] && a->v[1].type != JV_NONE) {
        jv w = a->v[1];
        indent_set = 1;
        item_sep = ",";
        if (w.type == JV_STR)
            buf_append(&ind, w.u.s->s, w.u.s->len);
        else if (w.type == JV_INT || w.type == JV_BOOL) {
            int64_t k = w.type == JV_INT ? w.u.i : w.u.b;
            if (k > 1000)
                return jx_fail(vm, "ValueError: tojson indent %lld is too large", (long long)k);
            for (int64_t i = 0; i < k; i++) buf_putc(&ind, ' ');
        } else {
            return jx_fail(vm, "TypeError: tojson indent must be an int or a string");
        }
    }
    jv seps[2];
    if (a->has[2] && a->v[2].type != JV_NONE) {
        jv s = a->v[2];
        if (s.type != JV_LIST || s.u.l->n != 2 || s.u.l->v[0].type != JV_STR ||
            s.u.l->v[1].type != JV_STR) {
            buf_free(&ind);
            return jx_fail(vm, "TypeError: tojson separators must be a pair of strings");
        }
        seps[0] = s.u.l->v[0], seps[1] = s.u.l->v[1];
        item_sep = seps[0].u.s->s, key_sep = seps[1].u.s->s;
    }
    int rc = jx_tojson(vm, in, ind.data ? ind.data : "", indent_set, item_sep, key_sep, sort_keys,
                       ensure_ascii, &b);
    if (!rc) rc = jx_str(vm, b.data ? b.data : "", b.len, out);
    buf_free(&b);
    buf_free(&ind);
    return rc;
}

static int f_trim(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jv s, c = a->has[0] ? a->v[0] : jv_none();
    if (as_str(vm, in, &s)) return -1;
    if (c.type != JV_NONE && c.type != JV_STR)
        return jx_fail(vm, "TypeError: strip arg must be None or str");
    return jx_strip(vm, s, c.type == JV_STR ? c.u.s : NULL, 1, 1, out);
}

static int f_truncate(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jv s;
    int64_t dummy;
    if (in.type != JV_STR) { /* jinja2 takes len() of the value as it is */
        int64_t lim = (a->has[0] && a->v[0].type == JV_INT ? a->v[0].u.i : 255) +
                      (a->has[3] && a->v[3].type == JV_INT ? a->v[3].u.i : 5);
        if (jx_len(vm, in, &dummy)) return -1;
        if (dummy <= lim) return *out = in, 0;
        return jx_fail(vm, "AttributeError: '%s' object has no attribute 'rsplit'",
                       jx_type_name(in));
    }
    if (as_str(vm, in, &s)) return -1;
    int64_t length = a->has[0] && a->v[0].type == JV_INT ? a->v[0].u.i : 255;
    int killwords = opt_bool(a, 1, 0);
    const char *end = a->has[2] && a->v[2].type == JV_STR ? a->v[2].u.s->s : "...";
    int64_t leeway = a->has[3] && a->v[3].type == JV_INT ? a->v[3].u.i : 5;
    int64_t n = (int64_t)jx_utf8_count(s.u.s->s, s.u.s->len),
            el = (int64_t)jx_utf8_count(end, strlen(end));
    if (length < el)
        return jx_fail(vm, "AssertionError: expected length >= %lld, got %lld", (long long)el,
                       (long long)length);
    if (n <= length + leeway) {
        *out = s;
        return 0;
    }
    size_t cut = 0;
    for (int64_t c = 0; c < length - el && cut < s.u.s->len; c++) {
        cut++;
        while (cut < s.u.s->len && ((unsigned char)s.u.s->s[cut] & 0xC0) == 0x80) cut++;
    }
    if (!killwords) {
        size_t sp = cut;
        while (sp > 0 && s.u.s->s[sp - 1] != ' ') sp--;
        if (sp > 0) cut = sp - 1;
    }
    buf b = BUF_INIT;
    buf_append(&b, s.u.s->s, cut);
    buf_puts(&b, end);
    int rc = b.oom ? oom(vm) : jx_str(vm, b.data, b.len, out);
    buf_free(&b);
    return rc;
}

static int f_wordcount(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)a, (void)kn, (void)kv, (void)nk;
    jv s;
    if (as_str(vm, in, &s)) return -1;
    int64_t words = 0;
    int in_word = 0;
    for (size_t i = 0; i < s.u.s->len;) {
        uint32_t cp;
        size_t k = utf8_decode(s.u.s->s + i, s.u.s->len - i, &cp);
        if (!k) cp = 0, k = 1;
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        int w = cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
                (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) ||
                (c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME);
        if (w && !in_word) words++;
        in_word = w;
        i += k;
    }
    *out = jv_int(words);
    return 0;
}

static int f_format(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jv s;
    if (as_str(vm, in, &s)) return -1;
    jlist *t = jx_list_new(&vm->arena, JL_TUPLE, a->n_rest);
    if (!t) return oom(vm);
    for (size_t i = 0; i < a->n_rest; i++) t->v[t->n++] = a->rest[i];
    jv tv = {JV_LIST, {.l = t}};
    return jx_str_percent(vm, s, tv, out);
}

static const filter_def filters[] = {
    {"abs", f_abs, {NULL}},
    {"attr", f_attr, {"name", NULL}},
    {"batch", jx_f_batch, {"linecount", "fill_with", NULL}},
    {"capitalize", f_capitalize, {NULL}},
    {"center", f_center, {"width", NULL}},
    {"count", f_length, {NULL}},
    {"d", f_default, {"default_value", "boolean", NULL}},
    {"default", f_default, {"default_value", "boolean", NULL}},
    {"dictsort", jx_f_dictsort, {"case_sensitive", "by", "reverse", NULL}},
    {"e", f_escape, {NULL}},
    {"escape", f_escape, {NULL}},
    {"first", f_first, {NULL}},
    {"float", f_float, {"default", NULL}},
    {"forceescape", f_escape, {NULL}},
    {"format", f_format, {"*", NULL}},
    {"groupby", jx_f_groupby, {"attribute", "default", "case_sensitive", NULL}},
    {"indent", f_indent, {"width", "first", "blank", NULL}},
    {"int", f_int, {"default", "base", NULL}},
    {"items", f_items, {NULL}},
    {"join", f_join, {"d", "attribute", NULL}},
    {"last", f_last, {NULL}},
    {"length", f_length, {NULL}},
    {"list", f_list, {NULL}},
    {"lower", f_lower, {NULL}},
    {"map", f_map, {"*", NULL}},
    {"max", jx_f_max, {"case_sensitive", "attribute", NULL}},
    {"min", jx_f_min, {"case_sensitive", "attribute", NULL}},
    {"pprint", f_pprint, {NULL}},
    {"reject", f_reject, {"*", NULL}},
    {"rejectattr", f_rejectattr, {"*", NULL}},
    {"replace", f_replace, {"old", "new", "count", NULL}},
    {"reverse", f_reverse, {NULL}},
    {"round", f_round, {"precision", "method", NULL}},
    {"safe", f_safe, {NULL}},
    {"select", f_select, {"*", NULL}},
    {"selectattr", f_selectattr, {"*", NULL}},
    {"sort", jx_f_sort, {"reverse", "case_sensitive", "attribute", NULL}},
    {"string", f_string, {NULL}},
    {"sum", jx_f_sum, {"attribute", "start", NULL}},
    {"title", f_title, {NULL}},
    {"tojson", f_tojson, {"ensure_ascii", "indent", "separators", "sort_keys", NULL}},
    {"trim", f_trim, {"chars", NULL}},
    {"truncate", f_truncate, {"length", "killwords", "end", "leeway", NULL}},
    {"unique", jx_f_unique, {"case_sensitive", "attribute", NULL}},
    {"upper", f_upper, {NULL}},
    {"wordcount", f_wordcount, {NULL}},
};

/* See jinja_int.h: 1 if jinja2 has a filter of that name. */
int jx_filter_known(const char *name) {
    /* jinja2 built-ins this interpreter does not implement: they fail when run */
    static const char *const others[] = {"filesizeformat", "random",    "slice",
                                         "striptags",      "urlencode", "urlize",
                                         "wordwrap",       "xmlattr",   NULL};
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (!strcmp(filters[i].name, name)) return 1;
    for (size_t i = 0; others[i]; i++)
        if (!strcmp(others[i], name)) return 1;
    return 0;
}

/* Runs filter name on in: binds args by position or keyword to the filter's
 * parameters, then calls it. 0 or JX_ERR (unknown filter, bad arguments, or
 * the filter's own Python-style error). */
int jx_filter(jx_vm *vm, const char *name, jv in, jv *args, size_t n_args, jstr **kwnames,
              jv *kwvals, size_t n_kw, jv *out) {
    const filter_def *f = NULL;
    for (size_t i = 0; i < sizeof filters / sizeof filters[0] && !f; i++)
        if (!strcmp(filters[i].name, name)) f = &filters[i];
    if (!f) return jx_fail(vm, "TemplateRuntimeError: No filter named '%s' found.", name);
    fargs a;
    memset(&a, 0, sizeof a);
    size_t np = 0;
    while (np < MAXP && f->params[np]) np++;
    if (np && !strcmp(f->params[0], "*")) {
        a.rest = args, a.n_rest = n_args;
    } else {
        if (n_args > np)
            return jx_fail(vm, "TypeError: filter '%s' takes at most %zu argument(s), %zu given",
                           name, np, n_args);
        for (size_t i = 0; i < n_args; i++) a.v[i] = args[i], a.has[i] = 1;
        for (size_t k = 0; k < n_kw; k++) {
            size_t i = 0;
            while (i < np && strcmp(f->params[i], kwnames[k]->s)) i++;
            if (i == np)
                return jx_fail(vm, "TypeError: filter '%s' got an unexpected keyword argument '%s'",
                               name, kwnames[k]->s);
            a.v[i] = kwvals[k], a.has[i] = 1;
        }
    }
    return f->fn(vm, in, &a, kwnames, kwvals, n_kw, out);
}
