/*
 * jinja_parse.c - the Jinja parser: tokens (jinja_lex.c) -> AST (jinja_int.h).
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

#include "tok/jinja_int.h"

typedef struct parser {
    const jtok *t;
    size_t n, pos;
    jx_arena *a;
    char *err;
    size_t err_size;
    int depth;
    jnode *macro; /* innermost macro being parsed */
    /* jinja2 rejects unknown filters/tests at compile time except directly in
     * an if-branch or a conditional expression ("soft" frames). */
    int soft;
    const jtok *unknown; /* first unknown filter/test outside a soft frame */
    int unknown_is_test;
} parser;

typedef struct nvec { jnode **v; jstr **names; size_t n, cap; } nvec;

static jnode *parse_expr(parser *p);
static jnode *parse_or(parser *p);
static jnode *parse_unary(parser *p, int with_filter);
static jnode *parse_primary(parser *p);
static jnode *parse_postfix(parser *p, jnode *n);
static jnode *parse_body(parser *p, const char *const *stops, const char **stopped);

static int fail(parser *p, const char *fmt, const char *arg) {
    if (p->err[0]) return -1;
    char msg[200];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    int line = p->pos < p->n ? p->t[p->pos].line : 0;
    snprintf(p->err, p->err_size, "TemplateSyntaxError: %s (line %d)", msg, line);
    return -1;
}

static const jtok *cur(parser *p) { return &p->t[p->pos < p->n ? p->pos : p->n - 1]; }
static const jtok *peek(parser *p, size_t k) {
    return &p->t[p->pos + k < p->n ? p->pos + k : p->n - 1];
}
static int is_op(const jtok *t, int op) { return t->type == JT_OP && t->op == op; }
static int is_name(const jtok *t, const char *s) {
    return t->type == JT_NAME && !strcmp(t->str->s, s);
}
static void next(parser *p) {
    if (p->pos < p->n - 1) p->pos++;
}
static int skip_op(parser *p, int op) {
    if (!is_op(cur(p), op)) return 0;
    next(p);
    return 1;
}
static int skip_name(parser *p, const char *s) {
    if (!is_name(cur(p), s)) return 0;
    next(p);
    return 1;
}

/* Describes a token for messages; buf must hold 64 bytes (no shared state,
 * so templates can be parsed on several threads). */
#define tok_desc(t) tok_desc_r((t), (char[64]){0})
static const char *tok_desc_r(const jtok *t, char *buf) {
    switch (t->type) {
    case JT_EOF: return "end of template";
    case JT_TEXT: return "template text";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "'%}'";
    case JT_NAME: snprintf(buf, 64, "'%.40s'", t->str->s); return buf;
    case JT_STRING: return "string";
    case JT_INT: return "integer";
    case JT_FLOAT: return "float";
    default:
        if (t->op < 256) snprintf(buf, 64, "'%c'", t->op);
        else snprintf(buf, 64, "operator");
        return buf;
    }
}

static int expect_op(parser *p, int op) {
    if (skip_op(p, op)) return 0;
    char want[8];
    snprintf(want, sizeof want, "'%c'", op);
    char msg[120];
    snprintf(msg, sizeof msg, "expected %s, got %s", want, tok_desc(cur(p)));
    return fail(p, "%s", msg);
}

static int expect(parser *p, int type, const char *what) {
    if (cur(p)->type == type) {
        next(p);
        return 0;
    }
    char msg[120];
    snprintf(msg, sizeof msg, "expected %s, got %s", what, tok_desc(cur(p)));
    return fail(p, "%s", msg);
}

static jnode *nn(parser *p, int kind) {
    jnode *n = jx_alloc(p->a, sizeof *n);
    if (!n) {
        fail(p, "template too large (out of memory)", NULL);
        return NULL;
    }
    n->kind = kind;
    n->line = cur(p)->line;
    return n;
}

static int vpush(parser *p, nvec *v, jnode *n, jstr *name) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        jnode **nv = jx_alloc(p->a, cap * sizeof *nv);
        jstr **nm = jx_alloc(p->a, cap * sizeof *nm);
        if (!nv || !nm) return fail(p, "template too large (out of memory)", NULL);
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv), memcpy(nm, v->names, v->n * sizeof *nm);
        v->v = nv, v->names = nm, v->cap = cap;
    }
    v->v[v->n] = n;
    v->names[v->n++] = name;
    return 0;
}

static int enter(parser *p) {
    if (++p->depth > JX_MAX_PARSE_DEPTH) return fail(p, "template nesting deeper than %s", "200");
    return 0;
}

/* '(' args ')' into n->args / n->kwnames+kwvals. The '(' is current. */
static int parse_call_args(parser *p, jnode *n) {
    nvec pos = {0}, kw = {0};
    if (expect_op(p, '(')) return -1;
    while (!is_op(cur(p), ')')) {
        if (pos.n + kw.n && expect_op(p, ',')) return -1;
        if (is_op(cur(p), ')')) break;
        if (is_op(cur(p), '*') || (cur(p)->type == JT_OP && cur(p)->op == JTO_POW))
            return fail(p, "*args and **kwargs in calls are not supported", NULL);
        if (cur(p)->type == JT_NAME && is_op(peek(p, 1), '=')) {
            jstr *name = cur(p)->str;
            next(p), next(p);
            jnode *v = parse_expr(p);
            if (!v || vpush(p, &kw, v, name)) return -1;
        } else {
            if (kw.n) return fail(p, "positional argument follows keyword argument", NULL);
            jnode *v = parse_expr(p);
            if (!v || vpush(p, &pos, v, NULL)) return -1;
        }
    }
    next(p);
    n->args = pos.v, n->n_args = pos.n;
    n->kwvals = kw.v, n->kwnames = kw.names, n->n_kw = kw.n;
    return 0;
}

/* Tuple or single expression, ending at '}}', '%}', ')' or a name in ends. */
static jnode *parse_tuple(parser *p, int with_cond, int explicit_parens, const char *const *ends) {
    nvec items = {0};
    int is_tuple = 0;
    int line = cur(p)->line;
    for (;;) {
        if (items.n && expect_op(p, ',')) return NULL;
        const jtok *t = cur(p);
        int at_end = t->type == JT_VAR_END || t->type == JT_BLOCK_END || is_op(t, ')');
        for (size_t i = 0; ends && ends[i] && !at_end; i++) at_end = is_name(t, ends[i]);
        if (at_end) break;
        jnode *e = with_cond ? parse_expr(p) : parse_or(p);
        if (!e || vpush(p, &items, e, NULL)) return NULL;
        if (is_op(cur(p), ',')) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (items.n) return items.v[0];
        if (!explicit_parens) {
            fail(p, "expected an expression, got %s", tok_desc(cur(p)));
            return NULL;
        }
    }
    jnode *n = nn(p, JN_TUPLE);
    if (!n) return NULL;
    n->line = line;
    n->args = items.v, n->n_args = items.n;
    return n;
}

static jnode *parse_expr(parser *p) {
    if (enter(p)) return NULL;
    const jtok *unknown = p->unknown;
    int soft = p->soft;
    jnode *e = parse_or(p);
    while (e && is_name(cur(p), "if")) {
        p->unknown = unknown; /* the whole conditional expression is soft */
        p->soft = 1;
        next(p);
        jnode *c = nn(p, JN_COND);
        if (!c) return NULL;
        c->a = e;
        if (!(c->b = parse_or(p))) return NULL;
        if (skip_name(p, "else") && !(c->c = parse_expr(p))) return NULL;
        e = c;
    }
    p->soft = soft;
    p->depth--;
    return e;
}

static jnode *bin(parser *p, int kind, int op, jnode *a, jnode *b) {
    if (!a || !b) return NULL;
    jnode *n = nn(p, kind);
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
            op = t->op == JTO_EQ ? JOP_EQ : t->op == JTO_NE ? JOP_NE : t->op == '<' ? JOP_LT
               : t->op == JTO_LE ? JOP_LE : t->op == '>' ? JOP_GT : t->op == JTO_GE ? JOP_GE : 0;
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
        if (enter(p)) return NULL;
        jnode *n = nn(p, JN_NOT);
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
        int op = o == '*' ? JOP_MUL : o == '/' ? JOP_DIV : o == JTO_FLOORDIV ? JOP_FLOORDIV
               : o == '%' ? JOP_MOD : 0;
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
static jnode *parse_filter(parser *p, jnode *input) {
    next(p); /* '|' */
    if (cur(p)->type != JT_NAME) {
        fail(p, "expected a filter name, got %s", tok_desc(cur(p)));
        return NULL;
    }
    jnode *f = nn(p, JN_FILTER);
    if (!f) return NULL;
    f->a = input;
    f->name = cur(p)->str;
    if (!p->soft && !p->unknown && !jx_filter_known(f->name->s)) p->unknown = cur(p), p->unknown_is_test = 0;
    next(p);
    while (is_op(cur(p), '.') && peek(p, 1)->type == JT_NAME) {
        fail(p, "dotted filter names are not supported", NULL);
        return NULL;
    }
    if (is_op(cur(p), '(') && parse_call_args(p, f)) return NULL;
    return f;
}

static jnode *parse_test(parser *p, jnode *input) {
    next(p); /* is */
    jnode *t = nn(p, JN_TEST);
    if (!t) return NULL;
    t->a = input;
    if (skip_name(p, "not")) t->op = 1;
    const jtok *c = cur(p);
    if (c->type != JT_NAME && !(c->type == JT_OP && (c->op == JTO_EQ || c->op == JTO_NE))) {
        fail(p, "expected a test name, got %s", tok_desc(c));
        return NULL;
    }
    t->name = c->type == JT_NAME ? c->str : jx_str_new(p->a, c->op == JTO_EQ ? "==" : "!=", 2);
    if (!p->soft && !p->unknown && !jx_has_test(t->name->s)) p->unknown = c, p->unknown_is_test = 1;
    next(p);
    c = cur(p);
    if (is_op(c, '(')) {
        if (parse_call_args(p, t)) return NULL;
    } else if ((c->type == JT_NAME || c->type == JT_STRING || c->type == JT_INT || c->type == JT_FLOAT ||
                is_op(c, '[') || is_op(c, '{')) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) {
            fail(p, "you cannot chain multiple tests with is", NULL);
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
        if (is_op(t, '|')) n = parse_filter(p, n);
        else if (is_name(t, "is")) n = parse_test(p, n);
        else if (is_op(t, '(')) {
            jnode *c = nn(p, JN_CALL);
            if (!c) return NULL;
            c->a = n;
            if (parse_call_args(p, c)) return NULL;
            n = c;
        } else break;
    }
    return n;
}

static jnode *parse_unary(parser *p, int with_filter) {
    if (enter(p)) return NULL;
    jnode *n;
    if (is_op(cur(p), '-') || is_op(cur(p), '+')) {
        int neg = cur(p)->op == '-';
        next(p);
        n = nn(p, neg ? JN_NEG : JN_POS);
        if (!n || !(n->a = parse_unary(p, 0))) return NULL;
    } else {
        n = parse_postfix(p, parse_primary(p));
    }
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static jnode *lit(parser *p, jv v) {
    jnode *n = nn(p, JN_LIT);
    if (n) n->lit = v;
    return n;
}

static jnode *parse_primary(parser *p) {
    const jtok *t = cur(p);
    if (enter(p)) return NULL;
    jnode *n = NULL;
    if (t->type == JT_NAME) {
        const char *s = t->str->s;
        if (!strcmp(s, "true") || !strcmp(s, "True")) n = lit(p, jv_bool(1));
        else if (!strcmp(s, "false") || !strcmp(s, "False")) n = lit(p, jv_bool(0));
        else if (!strcmp(s, "none") || !strcmp(s, "None")) n = lit(p, jv_none());
        else {
            n = nn(p, JN_NAME);
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
        n = parse_tuple(p, 1, 1, NULL);
        if (n && expect_op(p, ')')) return NULL;
    } else if (is_op(t, '[')) {
        next(p);
        nvec items = {0};
        while (!is_op(cur(p), ']')) {
            if (items.n && expect_op(p, ',')) return NULL;
            if (is_op(cur(p), ']')) break;
            jnode *e = parse_expr(p);
            if (!e || vpush(p, &items, e, NULL)) return NULL;
        }
        next(p);
        if ((n = nn(p, JN_LIST))) n->args = items.v, n->n_args = items.n, n->line = t->line;
    } else if (is_op(t, '{')) {
        next(p);
        nvec keys = {0}, vals = {0};
        while (!is_op(cur(p), '}')) {
            if (keys.n && expect_op(p, ',')) return NULL;
            if (is_op(cur(p), '}')) break;
            jnode *k = parse_expr(p);
            if (!k || expect_op(p, ':')) return NULL;
            jnode *v = parse_expr(p);
            if (!v || vpush(p, &keys, k, NULL) || vpush(p, &vals, v, NULL)) return NULL;
        }
        next(p);
        if ((n = nn(p, JN_DICT)))
            n->args = keys.v, n->kwvals = vals.v, n->n_args = keys.n, n->line = t->line;
    } else {
        fail(p, "unexpected %s", tok_desc(t));
        return NULL;
    }
    p->depth--;
    return n;
}

static jnode *parse_subscript(parser *p, jnode *obj) {
    next(p); /* '[' */
    jnode *idx[3] = {NULL, NULL, NULL};
    int is_slice = 0;
    if (!is_op(cur(p), ':')) {
        if (!(idx[0] = parse_expr(p))) return NULL;
    }
    if (skip_op(p, ':')) {
        is_slice = 1;
        if (!is_op(cur(p), ']') && !is_op(cur(p), ':') && !(idx[1] = parse_expr(p))) return NULL;
        if (skip_op(p, ':') && !is_op(cur(p), ']') && !(idx[2] = parse_expr(p))) return NULL;
    }
    if (expect_op(p, ']')) return NULL;
    jnode *n = nn(p, is_slice ? JN_SLICE : JN_ITEM);
    if (!n) return NULL;
    n->a = obj;
    if (is_slice) n->b = idx[0], n->c = idx[1], n->d = idx[2];
    else n->b = idx[0];
    return n;
}

static jnode *parse_postfix(parser *p, jnode *n) {
    while (n) {
        const jtok *t = cur(p);
        if (is_op(t, '.')) {
            next(p);
            const jtok *a = cur(p);
            if (a->type == JT_NAME) {
                jnode *g = nn(p, JN_ATTR);
                if (!g) return NULL;
                g->a = n, g->name = a->str;
                n = g;
            } else if (a->type == JT_INT) {
                jnode *g = nn(p, JN_ITEM);
                if (!g || !(g->b = lit(p, jv_int(a->i)))) return NULL;
                g->a = n;
                n = g;
            } else {
                fail(p, "expected an attribute name after '.', got %s", tok_desc(a));
                return NULL;
            }
            next(p);
        } else if (is_op(t, '[')) {
            n = parse_subscript(p, n);
        } else if (is_op(t, '(')) {
            jnode *c = nn(p, JN_CALL);
            if (!c) return NULL;
            c->a = n;
            if (parse_call_args(p, c)) return NULL;
            n = c;
        } else break;
    }
    return n;
}

/* Assignment target: name, ns.attr, or a tuple of names (optionally in parens). */
static jnode *parse_target(parser *p, int allow_ns) {
    nvec names = {0};
    int parens = skip_op(p, '(');
    for (;;) {
        if (cur(p)->type != JT_NAME) {
            fail(p, "expected a name to assign to, got %s", tok_desc(cur(p)));
            return NULL;
        }
        jnode *n = nn(p, JN_NAME);
        if (!n) return NULL;
        n->name = cur(p)->str;
        next(p);
        if (allow_ns && !names.n && !parens && is_op(cur(p), '.')) {
            next(p);
            if (cur(p)->type != JT_NAME) {
                fail(p, "expected an attribute name, got %s", tok_desc(cur(p)));
                return NULL;
            }
            jnode *r = nn(p, JN_NSREF);
            if (!r) return NULL;
            r->a = n, r->name = cur(p)->str;
            next(p);
            return r;
        }
        if (vpush(p, &names, n, NULL)) return NULL;
        if (!skip_op(p, ',')) break;
        if (parens && is_op(cur(p), ')')) break;
    }
    if (parens && expect_op(p, ')')) return NULL;
    if (names.n == 1 && !parens) return names.v[0];
    jnode *t = nn(p, JN_TUPLE);
    if (t) t->args = names.v, t->n_args = names.n;
    return t;
}

static int end_block(parser *p) { return expect(p, JT_BLOCK_END, "'%}'"); }

/* Parses a body up to {% stop %}; consumes the stop name (not the '%}'). */
static jnode *body_until(parser *p, const char *const *stops, const char **stopped) {
    jnode *b = parse_body(p, stops, stopped);
    if (b) next(p);
    return b;
}

static jnode *parse_if(parser *p) {
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    jnode *n = nn(p, JN_IF);
    if (!n || !(n->a = parse_tuple(p, 1, 0, NULL)) || end_block(p)) return NULL;
    const char *st;
    int soft = p->soft;
    p->soft = 1;
    n->b = body_until(p, stops, &st);
    p->soft = soft;
    if (!n->b) return NULL;
    if (!strcmp(st, "elif")) {
        jnode *body = nn(p, JN_BODY);
        if (!body || !(n->c = body)) return NULL;
        jnode *inner = parse_if(p); /* the elif test is soft too */
        if (!inner) return NULL;
        body->args = jx_alloc(p->a, sizeof(jnode *));
        if (!body->args) return NULL;
        body->args[0] = inner, body->n_args = 1;
        return n; /* the nested if consumed the endif */
    }
    if (!strcmp(st, "else")) {
        static const char *const end[] = {"endif", NULL};
        if (end_block(p)) return NULL;
        p->soft = 1;
        n->c = body_until(p, end, &st);
        p->soft = soft;
        if (!n->c) return NULL;
    }
    return end_block(p) ? NULL : n;
}

static jnode *parse_for(parser *p) {
    static const char *const stops[] = {"else", "endfor", NULL};
    static const char *const iter_ends[] = {"recursive", NULL};
    jnode *n = nn(p, JN_FOR);
    if (!n || !(n->a = parse_target(p, 0))) return NULL;
    if (!skip_name(p, "in")) {
        fail(p, "expected 'in' in a for loop, got %s", tok_desc(cur(p)));
        return NULL;
    }
    if (!(n->b = parse_tuple(p, 0, 0, iter_ends))) return NULL;
    if (skip_name(p, "if") && !(n->d = parse_expr(p))) return NULL;
    if (skip_name(p, "recursive")) n->op = 1;
    if (end_block(p)) return NULL;
    const char *st;
    int soft = p->soft;
    p->soft = 0;
    jnode *body = body_until(p, stops, &st);
    if (!body) return NULL;
    n->args = jx_alloc(p->a, sizeof(jnode *));
    if (!n->args) return NULL;
    n->args[0] = body, n->n_args = 1;
    if (!strcmp(st, "else")) {
        static const char *const end[] = {"endfor", NULL};
        if (end_block(p) || !(n->c = body_until(p, end, &st))) return NULL;
    }
    p->soft = soft;
    return end_block(p) ? NULL : n;
}

/* Filter chain with a NULL innermost input (filter blocks, set blocks). */
static jnode *parse_filter_chain(parser *p) {
    jnode *f = NULL;
    do {
        if (!is_op(cur(p), '|')) {
            fail(p, "expected '|', got %s", tok_desc(cur(p)));
            return NULL;
        }
        f = parse_filter(p, f);
    } while (f && is_op(cur(p), '|'));
    return f;
}

static jnode *parse_set(parser *p) {
    jnode *target = parse_target(p, 1);
    if (!target) return NULL;
    if (skip_op(p, '=')) {
        jnode *n = nn(p, JN_SET);
        if (!n) return NULL;
        n->a = target;
        if (!(n->b = parse_tuple(p, 1, 0, NULL)) || end_block(p)) return NULL;
        return n;
    }
    jnode *n = nn(p, JN_SETBLOCK);
    if (!n) return NULL;
    n->a = target;
    if (is_op(cur(p), '|') && !(n->b = parse_filter_chain(p))) return NULL;
    static const char *const end[] = {"endset", NULL};
    const char *st;
    if (end_block(p) || !(n->c = body_until(p, end, &st)) || end_block(p)) return NULL;
    return n;
}

/* Macro or call-block parameters: '(' name [= default], ... ')'. */
static int parse_params(parser *p, jnode *n) {
    nvec params = {0};
    if (expect_op(p, '(')) return -1;
    while (!is_op(cur(p), ')')) {
        if (params.n && expect_op(p, ',')) return -1;
        if (cur(p)->type != JT_NAME) return fail(p, "expected a parameter name, got %s", tok_desc(cur(p)));
        jstr *name = cur(p)->str;
        next(p);
        jnode *def = NULL;
        if (skip_op(p, '=') && !(def = parse_expr(p))) return -1;
        if (!def && params.n && params.v[params.n - 1])
            return fail(p, "non-default parameter follows a default parameter", NULL);
        if (vpush(p, &params, def, name)) return -1;
    }
    next(p);
    n->kwnames = params.names, n->kwvals = params.v, n->n_kw = params.n;
    return 0;
}

static jnode *parse_macro(parser *p) {
    jnode *n = nn(p, JN_MACRO);
    if (!n) return NULL;
    if (cur(p)->type != JT_NAME) {
        fail(p, "expected a macro name, got %s", tok_desc(cur(p)));
        return NULL;
    }
    n->name = cur(p)->str;
    next(p);
    if (parse_params(p, n) || end_block(p)) return NULL;
    jnode *outer = p->macro;
    int soft = p->soft;
    p->macro = n;
    p->soft = 0;
    static const char *const end[] = {"endmacro", NULL};
    const char *st;
    n->a = body_until(p, end, &st);
    p->macro = outer;
    p->soft = soft;
    if (!n->a) return NULL;
    if (cur(p)->type == JT_NAME) next(p); /* {% endmacro name %} */
    return end_block(p) ? NULL : n;
}

static jnode *parse_call_block(parser *p) {
    jnode *n = nn(p, JN_CALLBLOCK);
    if (!n) return NULL;
    if (is_op(cur(p), '(') && parse_params(p, n)) return NULL;
    if (!(n->a = parse_expr(p))) return NULL;
    if (n->a->kind != JN_CALL) {
        fail(p, "expected a call after {%% call %%}", NULL);
        return NULL;
    }
    jnode *outer = p->macro;
    p->macro = n;
    static const char *const end[] = {"endcall", NULL};
    const char *st;
    if (end_block(p)) return NULL;
    n->b = body_until(p, end, &st);
    p->macro = outer;
    return n->b && !end_block(p) ? n : NULL;
}

static jnode *parse_statement(parser *p) {
    const jtok *t = cur(p);
    if (t->type != JT_NAME) {
        fail(p, "expected a statement name, got %s", tok_desc(t));
        return NULL;
    }
    const char *s = t->str->s;
    next(p);
    if (enter(p)) return NULL;
    jnode *n = NULL;
    const char *st;
    if (!strcmp(s, "if")) n = parse_if(p);
    else if (!strcmp(s, "for")) n = parse_for(p);
    else if (!strcmp(s, "set")) n = parse_set(p);
    else if (!strcmp(s, "macro")) n = parse_macro(p);
    else if (!strcmp(s, "call")) n = parse_call_block(p);
    else if (!strcmp(s, "break") || !strcmp(s, "continue")) {
        n = nn(p, s[0] == 'b' ? JN_BREAK : JN_CONTINUE);
        if (n && end_block(p)) return NULL;
    } else if (!strcmp(s, "filter")) {
        static const char *const end[] = {"endfilter", NULL};
        jnode *f = NULL;
        if (cur(p)->type != JT_NAME) {
            fail(p, "expected a filter name, got %s", tok_desc(cur(p)));
            return NULL;
        }
        if (!(f = nn(p, JN_FILTER))) return NULL;
        f->name = cur(p)->str;
        next(p);
        if (is_op(cur(p), '(') && parse_call_args(p, f)) return NULL;
        while (f && is_op(cur(p), '|')) f = parse_filter(p, f);
        if (!f) return NULL;
        n = nn(p, JN_FILTERBLOCK);
        if (!n) return NULL;
        n->b = f;
        if (end_block(p) || !(n->a = body_until(p, end, &st)) || end_block(p)) return NULL;
    } else if (!strcmp(s, "with")) {
        static const char *const end[] = {"endwith", NULL};
        n = nn(p, JN_WITH);
        nvec sets = {0};
        if (!n) return NULL;
        while (cur(p)->type != JT_BLOCK_END) {
            if (sets.n && expect_op(p, ',')) return NULL;
            jnode *s2 = nn(p, JN_SET);
            if (!s2 || !(s2->a = parse_target(p, 0)) || expect_op(p, '=') || !(s2->b = parse_expr(p)))
                return NULL;
            if (vpush(p, &sets, s2, NULL)) return NULL;
        }
        n->args = sets.v, n->n_args = sets.n;
        if (end_block(p) || !(n->a = body_until(p, end, &st)) || end_block(p)) return NULL;
    } else if (!strcmp(s, "generation")) {
        static const char *const end[] = {"endgeneration", NULL};
        if (end_block(p) || !(n = body_until(p, end, &st)) || end_block(p)) return NULL;
    } else {
        p->pos--;
        fail(p, "Encountered unknown tag '%s'.", s);
        return NULL;
    }
    p->depth--;
    return n;
}

static jnode *parse_body(parser *p, const char *const *stops, const char **stopped) {
    nvec items = {0};
    jnode *body = nn(p, JN_BODY);
    if (!body) return NULL;
    for (;;) {
        const jtok *t = cur(p);
        if (t->type == JT_EOF) {
            if (stops) {
                size_t k = 0;
                while (stops[k + 1]) k++;
                fail(p, "unexpected end of template, expected '%s'", stops[k]);
                return NULL;
            }
            break;
        }
        jnode *n = NULL;
        if (t->type == JT_TEXT) {
            n = nn(p, JN_TEXT);
            if (!n) return NULL;
            n->lit.type = JV_STR, n->lit.u.s = t->str;
            next(p);
        } else if (t->type == JT_VAR_BEGIN) {
            next(p);
            n = nn(p, JN_OUTPUT);
            if (!n || !(n->a = parse_tuple(p, 1, 0, NULL)) || expect(p, JT_VAR_END, "'}}'")) return NULL;
        } else if (t->type == JT_BLOCK_BEGIN) {
            const jtok *name = peek(p, 1);
            for (size_t i = 0; stops && stops[i] && name->type == JT_NAME; i++)
                if (!strcmp(name->str->s, stops[i])) {
                    next(p);
                    *stopped = stops[i];
                    body->args = items.v, body->n_args = items.n;
                    return body;
                }
            next(p);
            if (name->type == JT_NAME && !strncmp(name->str->s, "end", 3)) {
                fail(p, "Encountered unknown tag '%s'.", name->str->s);
                return NULL;
            }
            if (!(n = parse_statement(p))) return NULL;
        } else {
            fail(p, "unexpected %s", tok_desc(t));
            return NULL;
        }
        if (vpush(p, &items, n, NULL)) return NULL;
    }
    body->args = items.v, body->n_args = items.n;
    return body;
}

int jx_parse(const jtok *toks, size_t n_toks, jx_arena *a, jnode **root, char *err,
             size_t err_size) {
    parser p = {toks, n_toks, 0, a, err, err_size, 0, NULL, 0, NULL, 0};
    if (err_size) err[0] = 0;
    *root = parse_body(&p, NULL, NULL);
    if (*root && p.unknown) {
        snprintf(err, err_size, "TemplateAssertionError: No %s named '%s'. (line %d)", p.unknown_is_test ? "test" : "filter",
                 p.unknown->type == JT_NAME ? p.unknown->str->s : "?", p.unknown->line);
        *root = NULL;
    }
    if (!*root && !err[0]) fail(&p, "template too large (out of memory)", NULL);
    return *root ? 0 : -1;
}
