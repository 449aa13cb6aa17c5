/*
 * jinja_tests.c - jinja2's tests (`x is defined`, `x is divisibleby 3`, ...)
 * and Python's printf-style string formatting (`"%s-%02d" % (a, b)` and the
 * format filter), both with Python's semantics for the value types of
 * jinja_int.h.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tok/jinja_int.h"

static const char *const test_names[] = {
    "defined",     "undefined", "none",     "boolean", "false",    "true",     "integer",
    "float",       "number",    "string",   "mapping", "iterable", "sequence", "callable",
    "sameas",      "escaped",   "in",       "eq",      "equalto",  "==",       "ne",
    "!=",          "lt",        "lessthan", "<",       "le",       "<=",       "gt",
    "greaterthan", ">",         "ge",       ">=",      "odd",      "even",     "divisibleby",
    "lower",       "upper",     "filter",   "test",    NULL};

/* 1 if name is a test this interpreter (and jinja2) knows. */
int jx_has_test(const char *name) {
    for (size_t i = 0; test_names[i]; i++)
        if (!strcmp(test_names[i], name)) return 1;
    return 0;
}

static int need_arg(jx_vm *vm, const char *name, size_t n_args) {
    if (n_args < 1) return jx_fail(vm, "TypeError: test '%s' needs an argument", name);
    return 0;
}

static int same(jv a, jv b) {
    if (a.type != b.type) return 0;
    switch (a.type) {
    case JV_UNDEF:
    case JV_NONE:
        return 1;
    case JV_BOOL:
        return a.u.b == b.u.b;
    case JV_INT:
        return a.u.i == b.u.i;
    case JV_FLOAT:
        return a.u.f == b.u.f;
    case JV_STR:
        return a.u.s == b.u.s;
    case JV_LIST:
        return a.u.l == b.u.l;
    case JV_DICT:
        return a.u.d == b.u.d;
    default:
        return a.u.fn == b.u.fn;
    }
}

static int str_cased(jx_vm *vm, jv v, int want_lower, int *res) {
    jv s, c;
    if (jx_stringify(vm, v, &s) || jx_case(vm, s, want_lower ? 'l' : 'u', &c)) return -1;
    /* Python islower/isupper: no chars of the other case and at least one cased char */
    jv other;
    if (jx_case(vm, s, want_lower ? 'u' : 'l', &other)) return -1;
    *res = jx_equal(s, c) && !jx_equal(s, other);
    return 0;
}

/* Runs test name on in with args into *res (0/1). 0 or JX_ERR. */
int jx_test(jx_vm *vm, const char *name, jv in, jv *args, size_t n_args, int *res) {
    int t = in.type;
    const char *n = name;
    if (!strcmp(n, "defined"))
        *res = t != JV_UNDEF;
    else if (!strcmp(n, "undefined"))
        *res = t == JV_UNDEF;
    else if (!strcmp(n, "none"))
        *res = t == JV_NONE;
    else if (!strcmp(n, "boolean"))
        *res = t == JV_BOOL;
    else if (!strcmp(n, "false"))
        *res = t == JV_BOOL && !in.u.b;
    else if (!strcmp(n, "true"))
        *res = t == JV_BOOL && in.u.b;
    else if (!strcmp(n, "integer"))
        *res = t == JV_INT;
    else if (!strcmp(n, "float"))
        *res = t == JV_FLOAT;
    else if (!strcmp(n, "number"))
        *res = t == JV_INT || t == JV_FLOAT || t == JV_BOOL;
    else if (!strcmp(n, "string"))
        *res = t == JV_STR;
    else if (!strcmp(n, "mapping"))
        *res = t == JV_DICT && in.u.d->kind == JD_DICT;
    else if (!strcmp(n, "iterable"))
        *res = t == JV_UNDEF || t == JV_STR || t == JV_LIST ||
               (t == JV_DICT && in.u.d->kind == JD_DICT);
    else if (!strcmp(n, "sequence"))
        *res = t == JV_UNDEF || t == JV_STR || (t == JV_LIST && in.u.l->kind != JL_GEN) ||
               (t == JV_DICT && in.u.d->kind == JD_DICT);
    else if (!strcmp(n, "callable"))
        *res = t == JV_FUNC || t == JV_UNDEF ||
               (t == JV_DICT && in.u.d->kind == JD_LOOP && in.u.d->loop);
    else if (!strcmp(n, "escaped"))
        *res = 0;
    else if (!strcmp(n, "sameas")) {
        if (need_arg(vm, n, n_args)) return -1;
        *res = same(in, args[0]);
    } else if (!strcmp(n, "in")) {
        jv r;
        if (need_arg(vm, n, n_args) || jx_binop(vm, JOP_IN, in, args[0], &r)) return -1;
        *res = r.u.b;
    } else if (!strcmp(n, "eq") || !strcmp(n, "equalto") || !strcmp(n, "==")) {
        if (need_arg(vm, n, n_args)) return -1;
        *res = jx_equal(in, args[0]);
    } else if (!strcmp(n, "ne") || !strcmp(n, "!=")) {
        if (need_arg(vm, n, n_args)) return -1;
        *res = !jx_equal(in, args[0]);
    } else if (!strcmp(n, "lt") || !strcmp(n, "lessthan") || !strcmp(n, "<") || !strcmp(n, "le") ||
               !strcmp(n, "<=") || !strcmp(n, "gt") || !strcmp(n, "greaterthan") ||
               !strcmp(n, ">") || !strcmp(n, "ge") || !strcmp(n, ">=")) {
        int op = n[0] == 'l' || n[0] == '<' ? (n[1] == 'e' || n[1] == '=' ? JOP_LE : JOP_LT)
                                            : (n[1] == 'e' || n[1] == '=' ? JOP_GE : JOP_GT);
        if (need_arg(vm, n, n_args)) return -1;
        return jx_compare(vm, in, args[0], op, res);
    } else if (!strcmp(n, "odd") || !strcmp(n, "even")) {
        jv m;
        if (jx_binop(vm, JOP_MOD, in, jv_int(2), &m)) return -1; /* value % 2, floats too */
        *res = n[0] == 'o' ? jx_equal(m, jv_int(1)) : jx_equal(m, jv_int(0));
    } else if (!strcmp(n, "divisibleby")) {
        jv m;
        if (need_arg(vm, n, n_args)) return -1;
        if (in.type == JV_INT && args[0].type == JV_INT && args[0].u.i == -1) {
            *res = 1;
            return 0;
        }
        if (jx_binop(vm, JOP_MOD, in, args[0], &m)) return -1;
        *res = jx_equal(m, jv_int(0));
    } else if (!strcmp(n, "lower") || !strcmp(n, "upper")) {
        return str_cased(vm, in, n[0] == 'l', res);
    } else if (!strcmp(n, "filter") || !strcmp(n, "test")) {
        if (need_arg(vm, n, n_args)) return -1;
        if (in.type != JV_STR) {
            *res = 0;
            return 0;
        }
        if (n[0] == 't')
            *res = jx_has_test(in.u.s->s);
        else {
            static const char *const known[] = {
                "abs",     "attr",        "batch",     "capitalize", "center",     "count",
                "d",       "default",     "dictsort",  "e",          "escape",     "first",
                "float",   "forceescape", "format",    "indent",     "int",        "items",
                "join",    "last",        "length",    "list",       "lower",      "map",
                "max",     "min",         "pprint",    "reject",     "rejectattr", "replace",
                "reverse", "round",       "safe",      "select",     "selectattr", "sort",
                "string",  "sum",         "title",     "tojson",     "trim",       "truncate",
                "unique",  "upper",       "wordcount", NULL};
            *res = 0;
            for (size_t i = 0; known[i]; i++) *res |= !strcmp(known[i], in.u.s->s);
        }
    } else {
        return jx_fail(vm, "TemplateRuntimeError: No test named '%s'.", name);
    }
    return 0;
}

/* ---- printf-style formatting ---- */

static int pct_one(jx_vm *vm, buf *b, const char *flags, int width, int prec, char conv, jv v) {
    char spec[32], tmp[512];
    int left = strchr(flags, '-') != NULL;
    buf body = BUF_INIT;
    int rc = 0;
    switch (conv) {
    case 's':
    case 'r':
    case 'a':
        rc = conv == 's' ? jx_to_str(vm, v, &body) : jx_to_repr(vm, v, &body);
        if (!rc && prec >= 0 && (size_t)prec < body.len)
            body.len = (size_t)prec; /* bytes; ASCII-exact */
        break;
    case 'd':
    case 'i':
    case 'u':
    case 'x':
    case 'X':
    case 'o':
    case 'c': {
        int64_t i;
        if (v.type == JV_FLOAT && conv != 'c')
            i = (int64_t)v.u.f;
        else if (v.type == JV_INT)
            i = v.u.i;
        else if (v.type == JV_BOOL)
            i = v.u.b;
        else {
            rc = jx_fail(vm, "TypeError: %%%c format: a real number is required, not %s", conv,
                         jx_type_name(v));
            break;
        }
        if (conv == 'c') {
            buf_putc(&body, (char)i);
            break;
        }
        snprintf(spec, sizeof spec, "%%%s%s%s%s%s%s", strchr(flags, '+') ? "+" : "",
                 strchr(flags, ' ') ? " " : "", strchr(flags, '#') ? "#" : "", prec >= 0 ? "." : "",
                 "", "");
        if (prec >= 0) snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%d", prec);
        snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "ll%c",
                 conv == 'i' || conv == 'u' ? 'd' : conv);
        snprintf(tmp, sizeof tmp, spec, (long long)i);
        buf_puts(&body, tmp);
        break;
    }
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G': {
        double d;
        if (v.type == JV_FLOAT)
            d = v.u.f;
        else if (v.type == JV_INT)
            d = (double)v.u.i;
        else if (v.type == JV_BOOL)
            d = v.u.b;
        else {
            rc = jx_fail(vm, "TypeError: must be real number, not %s", jx_type_name(v));
            break;
        }
        snprintf(spec, sizeof spec, "%%%s%s%s.%d%c", strchr(flags, '+') ? "+" : "",
                 strchr(flags, ' ') ? " " : "", strchr(flags, '#') ? "#" : "",
                 prec >= 0 ? (prec > 100 ? 100 : prec) : 6, conv);
        snprintf(tmp, sizeof tmp, spec, d);
        buf_puts(&body, tmp);
        break;
    }
    default:
        rc = jx_fail(vm, "ValueError: unsupported format character '%c'", conv);
    }
    if (!rc) {
        size_t len = jx_utf8_count(body.data ? body.data : "", body.len);
        int zero = strchr(flags, '0') && !left && conv != 's' && conv != 'r';
        size_t pad = width > 0 && (size_t)width > len ? (size_t)width - len : 0;
        if (!left && !zero)
            for (size_t i = 0; i < pad; i++) buf_putc(b, ' ');
        if (zero && pad) {
            size_t sign =
                body.len && (body.data[0] == '-' || body.data[0] == '+' || body.data[0] == ' ');
            buf_append(b, body.data, sign);
            for (size_t i = 0; i < pad; i++) buf_putc(b, '0');
            buf_append(b, body.data + sign, body.len - sign);
        } else {
            buf_append(b, body.data ? body.data : "", body.len);
        }
        if (left)
            for (size_t i = 0; i < pad; i++) buf_putc(b, ' ');
    }
    buf_free(&body);
    return rc;
}

/* Python printf-style formatting fmt % args (a tuple, a mapping for
 * %(name)s, or one value). 0 or JX_ERR with Python's TypeError/ValueError. */
int jx_str_percent(jx_vm *vm, jv fmt, jv args, jv *out) {
    jlist one = {1, 1, &args, JL_TUPLE, 0, 0}, *list = &one;
    jdict *map = NULL;
    if (args.type == JV_LIST && args.u.l->kind == JL_TUPLE) list = args.u.l;
    if (args.type == JV_DICT && args.u.d->kind == JD_DICT) map = args.u.d;
    const char *s = fmt.u.s->s;
    size_t n = fmt.u.s->len, next = 0;
    buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            buf_putc(&b, s[i]);
            continue;
        }
        if (++i >= n) goto incomplete;
        if (s[i] == '%') {
            buf_putc(&b, '%');
            continue;
        }
        jv v;
        int have = 0;
        if (s[i] == '(') {
            size_t e = i + 1;
            while (e < n && s[e] != ')') e++;
            if (e >= n || !map) goto incomplete;
            jv *p = jx_dict_get_str(map, s + i + 1, e - i - 1);
            if (!p) {
                buf_free(&b);
                return jx_fail(vm, "KeyError: '%.*s'", (int)(e - i - 1), s + i + 1);
            }
            v = *p, have = 1;
            i = e + 1;
        }
        char flags[8] = {0};
        size_t nf = 0;
        while (i < n && strchr("-+ #0", s[i]) && nf < 7) flags[nf++] = s[i++];
        int width = 0, prec = -1;
        while (i < n && s[i] >= '0' && s[i] <= '9' && width < 10000)
            width = width * 10 + (s[i++] - '0');
        if (i < n && s[i] == '.') {
            prec = 0;
            i++;
            while (i < n && s[i] >= '0' && s[i] <= '9' && prec < 10000)
                prec = prec * 10 + (s[i++] - '0');
        }
        if (i >= n) goto incomplete;
        if (!have) {
            if (map && list == &one)
                v = args;
            else if (next < list->n)
                v = list->v[next++];
            else {
                buf_free(&b);
                return jx_fail(vm, "TypeError: not enough arguments for format string");
            }
        }
        if (pct_one(vm, &b, flags, width, prec, s[i], v)) {
            buf_free(&b);
            return -1;
        }
    }
    if ((list != &one && next < list->n) || (list == &one && next == 0 && args.type != JV_UNDEF &&
                                             args.type != JV_LIST && args.type != JV_DICT)) {
        buf_free(&b);
        return jx_fail(vm, "TypeError: not all arguments converted during string formatting");
    }
    {
        int rc = b.oom ? jx_fail(vm, "MemoryError: out of memory formatting a string")
                       : jx_str(vm, b.data ? b.data : "", b.len, out);
        buf_free(&b);
        return rc;
    }
incomplete:
    buf_free(&b);
    return jx_fail(vm, "ValueError: incomplete format");
}
