/*
 * jinja_parse.c - the expression half of the Jinja parser: tokens (jinja_lex.c)
 * -> AST (jinja_int.h); statements are in jinja_parse_stmt.c.
 *
 * Recursive descent with jinja2's grammar and precedence: condexpr < or < and
 * < not < compare (==, !=, <, <=, >, >=, in, not in) < + - < ~ < * / // % < **
 * < unary - + < primary with postfix (.attr, [item], [a:b:c], (call)) and
 * filter/test chains (| f, is t). Statements: if/elif/else, for (else, if
 * filter, recursive), set (= and block form), macro, call, filter, with,
 * break, continue, generation. Nesting is bounded by JX_MAX_PARSE_DEPTH.
 */
#include <stdio.h>
#include <string.h>

#include "tok/jinja_parse_int.h"

jnode *jxp_parse_expr(parser *p);
static jnode *parse_or(parser *p);
static jnode *parse_unary(parser *p, int with_filter);
static jnode *parse_primary(parser *p);
static jnode *parse_postfix(parser *p, jnode *n);

int jxp_fail(parser *p, const char *fmt, const char *arg) {
    if (p->err[0]) return -1;
    char msg[200];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    int line = p->pos < p->n ? p->t[p->pos].line : 0;
    snprintf(p->err, p->err_size, "TemplateSyntaxError: %s (line %d)", msg, line);
    return -1;
}

/* Describes a token for messages; buf must hold 64 bytes (no shared state,
 * so templates can be parsed on several threads). */

const char *jxp_tok_desc_r(const jtok *t, char *buf) {
    switch (t->type) {
    case JT_EOF:
        return "end of template";
    case JT_TEXT:
        return "template text";
    case JT_VAR_BEGIN:
        return "'{{'";
    case JT_VAR_END:
        return "'}}'";
    case JT_BLOCK_BEGIN:
        return "'{%'";
    case JT_BLOCK_END:
        return "'%}'";
    case JT_NAME:
        snprintf(buf, 64, "'%.40s'", t->str->s);
        return buf;
    case JT_STRING:
        return "string";
    case JT_INT:
        return "integer";
    case JT_FLOAT:
        return "float";
    default:
        if (t->op < 256)
            snprintf(buf, 64, "'%c'", t->op);
        else
            snprintf(buf, 64, "operator");
        return buf;
    }
}

int jxp_expect_op(parser *p, int op) {
    if (skip_op(p, op)) return 0;
    char want[8];
    snprintf(want, sizeof want, "'%c'", op);
    char msg[120];
    snprintf(msg, sizeof msg, "expected %s, got %s", want, tok_desc(cur(p)));
    return jxp_fail(p, "%s", msg);
}

int jxp_expect(parser *p, int type, const char *what) {
    if (cur(p)->type == type) {
        next(p);
        return 0;
    }
    char msg[120];
    snprintf(msg, sizeof msg, "expected %s, got %s", what, tok_desc(cur(p)));
    return jxp_fail(p, "%s", msg);
}

jnode *jxp_nn(parser *p, int kind) {
    jnode *n = jx_alloc(p->a, sizeof *n);
    if (!n) {
        jxp_fail(p, "template too large (out of memory)", NULL);
        return NULL;
    }
    n->kind = kind;
    n->line = cur(p)->line;
    return n;
}

int jxp_vpush(parser *p, nvec *v, jnode *n, jstr *name) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        jnode **nv = jx_alloc(p->a, cap * sizeof *nv);
        jstr **nm = jx_alloc(p->a, cap * sizeof *nm);
        if (!nv || !nm) return jxp_fail(p, "template too large (out of memory)", NULL);
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv), memcpy(nm, v->names, v->n * sizeof *nm);
        v->v = nv, v->names = nm, v->cap = cap;
    }
    v->v[v->n] = n;
    v->names[v->n++] = name;
    return 0;
}

int jxp_enter(parser *p) {
    if (++p->depth > JX_MAX_PARSE_DEPTH)
        return jxp_fail(p, "template nesting deeper than %s", "200");
    return 0;
}

/* '(' args ')' into n->args / n->kwnames+kwvals. The '(' is current. */
int jxp_parse_call_args(parser *p, jnode *n) {
    nvec pos = {0}, kw = {0};
    if (jxp_expect_op(p, '(')) return -1;
    while (!is_op(cur(p), ')')) {
        if (pos.n + kw.n && jxp_expect_op(p, ',')) return -1;
        if (is_op(cur(p), ')')) break;
        if (is_op(cur(p), '*') || (cur(p)->type == JT_OP && cur(p)->op == JTO_POW))
            return jxp_fail(p, "*args and **kwargs in calls are not supported", NULL);
        if (cur(p)->type == JT_NAME && is_op(peek(p, 1), '=')) {
            jstr *name = cur(p)->str;
            next(p), next(p);
            jnode *v = jxp_parse_expr(p);
            if (!v || jxp_vpush(p, &kw, v, name)) return -1;
        } else {
            if (kw.n) return jxp_fail(p, "positional argument follows keyword argument", NULL);
            jnode *v = jxp_parse_expr(p);
            if (!v || jxp_vpush(p, &pos, v, NULL)) return -1;
        }
    }
    next(p);
    n->args = pos.v, n->n_args = pos.n;
    n->kwvals = kw.v, n->kwnames = kw.names, n->n_kw = kw.n;
    return 0;
}

/* Tuple or single expression, ending at '}}', '%}', ')' or a name in ends. */
jnode *jxp_parse_tuple(parser *p, int with_cond, int explicit_parens, const char *const *ends) {
    nvec items = {0};
    int is_tuple = 0;
    int line = cur(p)->line;
    for (;;) {
        if (items.n && jxp_expect_op(p, ',')) return NULL;
        const jtok *t = cur(p);
        int at_end = t->type == JT_VAR_END || t->type == JT_BLOCK_END || is_op(t, ')');
        for (size_t i = 0; ends && ends[i] && !at_end; i++) at_end = is_name(t, ends[i]);
        if (at_end) break;
        jnode *e = with_cond ? jxp_parse_expr(p) : parse_or(p);
        if (!e || jxp_vpush(p, &items, e, NULL)) return NULL;
        if (is_op(cur(p), ','))
            is_tuple = 1;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n) return items.v[0];
        if (!explicit_parens) {
            jxp_fail(p, "expected an expression, got %s", tok_desc(cur(p)));
            return NULL;
        }
    }
    jnode *n = jxp_nn(p, JN_TUPLE);
    if (!n) return NULL;
    n->line = line;
    n->args = items.v, n->n_args = items.n;
    return n;
}

jnode *jxp_parse_expr(parser *p) {
    if (jxp_enter(p)) return NULL;
    const jtok *unknown = p->unknown;
    int soft = p->soft;
    jnode *e = parse_or(p);
    while (e && is_name(cur(p), "if")) {
        p->unknown = unknown; /* the whole conditional expression is soft */
        p->soft = 1;
        next(p);
        jnode *c = jxp_nn(p, JN_COND);
        if (!c) return NULL;
        c->a = e;
        if (!(c->b = parse_or(p))) return NULL;
        if (skip_name(p, "else") && !(c->c = jxp_parse_expr(p))) return NULL;
        e = c;
    }
    p->soft = soft;
    p->depth--;
    return e;
}

static jnode *bin(parser *p, int kind, int op, jnode *a, jnode *b) {
    if (!a || !b) return NULL;
    jnode *n = jxp_nn(p, kind);
    if (!n) return NULL;
    n->op = op, n->a = a, n->b = b, n->line = a->line;
    return n;
}

static jnode *parse_not(parser *p);
static jnode *parse_and(parser *p) {
    jnode *e = parse_not(p);
    while (e && skip_name(p, "and")) e = bin(p, JN_AND, 0, e, parse_not(p));
    return e;
}
static jnode *parse_or(parser *p) {
    jnode *e = parse_and(p);
    while (e && skip_name(p, "or")) e = bin(p, JN_OR, 0, e, parse_and(p));
    return e;
}

static jnode *parse_math1(parser *p);
static jnode *parse_compare(parser *p) {
    jnode *e = parse_math1(p), *chain = NULL;
    while (e) {
        const jtok *t = cur(p);
        int op = 0;
        if (t->type == JT_OP) {
            op = t->op == JTO_EQ   ? JOP_EQ
                 : t->op == JTO_NE ? JOP_NE
                 : t->op == '<'    ? JOP_LT
                 : t->op == JTO_LE ? JOP_LE
                 : t->op == '>'    ? JOP_GT
                 : t->op == JTO_GE ? JOP_GE
                                   : 0;
            if (op) next(p);
        } else if (is_name(t, "in")) {
            op = JOP_IN, next(p);
        } else if (is_name(t, "not") && is_name(peek(p, 1), "in")) {
            op = JOP_NOTIN, next(p), next(p);
        }
        if (!op) break;
        jnode *rhs = parse_math1(p);
        jnode *c = bin(p, JN_BINOP, op, e, rhs);
        if (!c) return NULL;
        /* a < b < c is (a < b) and (b < c) */
        chain = chain ? bin(p, JN_AND, 0, chain, c) : c;
        e = rhs;
    }
    return chain ? chain : e;
}

static jnode *parse_not(parser *p) {
    if (is_name(cur(p), "not") && !is_name(peek(p, 1), "in")) {
        next(p);
        if (jxp_enter(p)) return NULL;
        jnode *n = jxp_nn(p, JN_NOT);
        if (!n || !(n->a = parse_not(p))) return NULL;
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_pow(parser *p) {
    jnode *e = parse_unary(p, 1);
    while (e && cur(p)->type == JT_OP && cur(p)->op == JTO_POW) {
        next(p);
        e = bin(p, JN_BINOP, JOP_POW, e, parse_unary(p, 1));
    }
    return e;
}
static jnode *parse_math2(parser *p) {
    jnode *e = parse_pow(p);
    while (e && cur(p)->type == JT_OP) {
        int o = cur(p)->op;
        int op = o == '*'            ? JOP_MUL
                 : o == '/'          ? JOP_DIV
                 : o == JTO_FLOORDIV ? JOP_FLOORDIV
                 : o == '%'          ? JOP_MOD
                                     : 0;
        if (!op) break;
        next(p);
        e = bin(p, JN_BINOP, op, e, parse_pow(p));
    }
    return e;
}
static jnode *parse_concat(parser *p) {
    jnode *e = parse_math2(p);
    while (e && skip_op(p, '~')) e = bin(p, JN_BINOP, JOP_CONCAT, e, parse_math2(p));
    return e;
}
static jnode *parse_math1(parser *p) {
    jnode *e = parse_concat(p);
    while (e && (is_op(cur(p), '+') || is_op(cur(p), '-'))) {
        int op = cur(p)->op == '+' ? JOP_ADD : JOP_SUB;
        next(p);
        e = bin(p, JN_BINOP, op, e, parse_concat(p));
    }
    return e;
}

/* | name(args) -- input may be NULL for filter blocks. */
jnode *jxp_parse_filter(parser *p, jnode *input) {
    next(p); /* '|' */
    if (cur(p)->type != JT_NAME) {
        jxp_fail(p, "expected a filter name, got %s", tok_desc(cur(p)));
        return NULL;
    }
    jnode *f = jxp_nn(p, JN_FILTER);
    if (!f) return NULL;
    f->a = input;
    f->name = cur(p)->str;
    if (!p->soft && !p->unknown && !jx_filter_known(f->name->s))
        p->unknown = cur(p), p->unknown_is_test = 0;
    next(p);
    while (is_op(cur(p), '.') && peek(p, 1)->type == JT_NAME) {
        jxp_fail(p, "dotted filter names are not supported", NULL);
        return NULL;
    }
    if (is_op(cur(p), '(') && jxp_parse_call_args(p, f)) return NULL;
    return f;
}

static jnode *parse_test(parser *p, jnode *input) {
    next(p); /* is */
    jnode *t = jxp_nn(p, JN_TEST);
    if (!t) return NULL;
    t->a = input;
    if (skip_name(p, "not")) t->op = 1;
    const jtok *c = cur(p);
    if (c->type != JT_NAME && !(c->type == JT_OP && (c->op == JTO_EQ || c->op == JTO_NE))) {
        jxp_fail(p, "expected a test name, got %s", tok_desc(c));
        return NULL;
    }
    t->name = c->type == JT_NAME ? c->str : jx_str_new(p->a, c->op == JTO_EQ ? "==" : "!=", 2);
    if (!p->soft && !p->unknown && !jx_has_test(t->name->s)) p->unknown = c, p->unknown_is_test = 1;
    next(p);
    c = cur(p);
    if (is_op(c, '(')) {
        if (jxp_parse_call_args(p, t)) return NULL;
    } else if ((c->type == JT_NAME || c->type == JT_STRING || c->type == JT_INT ||
                c->type == JT_FLOAT || is_op(c, '[') || is_op(c, '{')) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) {
            jxp_fail(p, "you cannot chain multiple tests with is", NULL);
            return NULL;
        }
        jnode *arg = parse_postfix(p, parse_primary(p));
        if (!arg) return NULL;
        t->args = jx_alloc(p->a, sizeof *t->args);
        if (!t->args) return NULL;
        t->args[0] = arg;
        t->n_args = 1;
    }
    return t;
}

static jnode *parse_filter_expr(parser *p, jnode *n) {
    while (n) {
        const jtok *t = cur(p);
        if (is_op(t, '|'))
            n = jxp_parse_filter(p, n);
        else if (is_name(t, "is"))
            n = parse_test(p, n);
        else if (is_op(t, '(')) {
            jnode *c = jxp_nn(p, JN_CALL);
            if (!c) return NULL;
            c->a = n;
            if (jxp_parse_call_args(p, c)) return NULL;
            n = c;
        } else
            break;
    }
    return n;
}

static jnode *parse_unary(parser *p, int with_filter) {
    if (jxp_enter(p)) return NULL;
    jnode *n;
    if (is_op(cur(p), '-') || is_op(cur(p), '+')) {
        int neg = cur(p)->op == '-';
        next(p);
        n = jxp_nn(p, neg ? JN_NEG : JN_POS);
        if (!n || !(n->a = parse_unary(p, 0))) return NULL;
    } else {
        n = parse_postfix(p, parse_primary(p));
    }
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static jnode *lit(parser *p, jv v) {
    jnode *n = jxp_nn(p, JN_LIT);
    if (n) n->lit = v;
    return n;
}

static jnode *parse_primary(parser *p) {
    const jtok *t = cur(p);
    if (jxp_enter(p)) return NULL;
    jnode *n = NULL;
    if (t->type == JT_NAME) {
        const char *s = t->str->s;
        if (!strcmp(s, "true") || !strcmp(s, "True"))
            n = lit(p, jv_bool(1));
        else if (!strcmp(s, "false") || !strcmp(s, "False"))
            n = lit(p, jv_bool(0));
        else if (!strcmp(s, "none") || !strcmp(s, "None"))
            n = lit(p, jv_none());
        else {
            n = jxp_nn(p, JN_NAME);
            if (n) n->name = t->str;
            if (p->macro) {
                if (!strcmp(s, "varargs")) p->macro->flags |= 1;
                if (!strcmp(s, "kwargs")) p->macro->flags |= 2;
                if (!strcmp(s, "caller")) p->macro->flags |= 4;
            }
        }
        next(p);
    } else if (t->type == JT_STRING) {
        jstr *s = t->str;
        next(p);
        while (cur(p)->type == JT_STRING) { /* adjacent literals concatenate */
            jstr *b = cur(p)->str, *c = jx_str_new(p->a, NULL, s->len + b->len);
            if (!c) return NULL;
            memcpy(c->s, s->s, s->len);
            memcpy(c->s + s->len, b->s, b->len);
            s = c;
            next(p);
        }
        jv v = {JV_STR, {.s = s}};
        n = lit(p, v);
    } else if (t->type == JT_INT) {
        n = lit(p, jv_int(t->i));
        next(p);
    } else if (t->type == JT_FLOAT) {
        n = lit(p, jv_float(t->f));
        next(p);
    } else if (is_op(t, '(')) {
        next(p);
        n = jxp_parse_tuple(p, 1, 1, NULL);
        if (n && jxp_expect_op(p, ')')) return NULL;
    } else if (is_op(t, '[')) {
        next(p);
        nvec items = {0};
        while (!is_op(cur(p), ']')) {
            if (items.n && jxp_expect_op(p, ',')) return NULL;
            if (is_op(cur(p), ']')) break;
            jnode *e = jxp_parse_expr(p);
            if (!e || jxp_vpush(p, &items, e, NULL)) return NULL;
        }
        next(p);
        if ((n = jxp_nn(p, JN_LIST))) n->args = items.v, n->n_args = items.n, n->line = t->line;
    } else if (is_op(t, '{')) {
        next(p);
        nvec keys = {0}, vals = {0};
        while (!is_op(cur(p), '}')) {
            if (keys.n && jxp_expect_op(p, ',')) return NULL;
            if (is_op(cur(p), '}')) break;
            jnode *k = jxp_parse_expr(p);
            if (!k || jxp_expect_op(p, ':')) return NULL;
            jnode *v = jxp_parse_expr(p);
            if (!v || jxp_vpush(p, &keys, k, NULL) || jxp_vpush(p, &vals, v, NULL)) return NULL;
        }
        next(p);
        if ((n = jxp_nn(p, JN_DICT)))
            n->args = keys.v, n->kwvals = vals.v, n->n_args = keys.n, n->line = t->line;
    } else {
        jxp_fail(p, "unexpected %s", tok_desc(t));
        return NULL;
    }
    p->depth--;
    return n;
}

/* 1 if jinja2's optimizer would fold n to a constant (literals and pure
 * operations on them). A slice of such a value goes through getitem, so a
 * failing slice is Undefined there instead of a TypeError. */
static int is_const(const jnode *n) {
    if (!n) return 1;
    switch (n->kind) {
    case JN_LIT:
        return 1;
    case JN_LIST:
    case JN_TUPLE:
    case JN_DICT:
        for (size_t i = 0; i < n->n_args; i++)
            if (!is_const(n->args[i]) || (n->kind == JN_DICT && !is_const(n->kwvals[i]))) return 0;
        return 1;
    case JN_FILTER: {
        static const char *const ctx_filters[] = {"map",        "select", "reject", "selectattr",
                                                  "rejectattr", "random", NULL};
        for (size_t i = 0; ctx_filters[i]; i++)
            if (!strcmp(n->name->s, ctx_filters[i])) return 0;
    } /* fall through */
    case JN_TEST:
        for (size_t i = 0; i < n->n_args; i++)
            if (!is_const(n->args[i])) return 0;
        for (size_t i = 0; i < n->n_kw; i++)
            if (!is_const(n->kwvals[i])) return 0;
        return n->a != NULL && is_const(n->a);
    case JN_BINOP:
    case JN_AND:
    case JN_OR:
    case JN_NOT:
    case JN_NEG:
    case JN_POS:
    case JN_COND:
    case JN_ATTR:
    case JN_ITEM:
    case JN_SLICE:
        return is_const(n->a) && is_const(n->b) && is_const(n->c) && is_const(n->d);
    default:
        return 0;
    }
}

static jnode *parse_subscript(parser *p, jnode *obj) {
    next(p); /* '[' */
    jnode *idx[3] = {NULL, NULL, NULL};
    int is_slice = 0;
    if (!is_op(cur(p), ':')) {
        if (!(idx[0] = jxp_parse_expr(p))) return NULL;
    }
    if (skip_op(p, ':')) {
        is_slice = 1;
        if (!is_op(cur(p), ']') && !is_op(cur(p), ':') && !(idx[1] = jxp_parse_expr(p)))
            return NULL;
        if (skip_op(p, ':') && !is_op(cur(p), ']') && !(idx[2] = jxp_parse_expr(p))) return NULL;
    }
    if (jxp_expect_op(p, ']')) return NULL;
    jnode *n = jxp_nn(p, is_slice ? JN_SLICE : JN_ITEM);
    if (!n) return NULL;
    n->a = obj;
    if (is_slice)
        n->b = idx[0], n->c = idx[1], n->d = idx[2], n->op = is_const(obj);
    else
        n->b = idx[0];
    return n;
}

static jnode *parse_postfix(parser *p, jnode *n) {
    while (n) {
        const jtok *t = cur(p);
        if (is_op(t, '.')) {
            next(p);
            const jtok *a = cur(p);
            if (a->type == JT_NAME) {
                jnode *g = jxp_nn(p, JN_ATTR);
                if (!g) return NULL;
                g->a = n, g->name = a->str;
                n = g;
            } else if (a->type == JT_INT) {
                jnode *g = jxp_nn(p, JN_ITEM);
                if (!g || !(g->b = lit(p, jv_int(a->i)))) return NULL;
                g->a = n;
                n = g;
            } else {
                jxp_fail(p, "expected an attribute name after '.', got %s", tok_desc(a));
                return NULL;
            }
            next(p);
        } else if (is_op(t, '[')) {
            n = parse_subscript(p, n);
        } else if (is_op(t, '(')) {
            jnode *c = jxp_nn(p, JN_CALL);
            if (!c) return NULL;
            c->a = n;
            if (jxp_parse_call_args(p, c)) return NULL;
            n = c;
        } else
            break;
    }
    return n;
}
