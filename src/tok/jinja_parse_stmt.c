/*
 * jinja_parse_stmt.c - the statement half of the Jinja parser: template
 * bodies (text, {{ }}, {% %}), if/elif/else, for, set (both forms), macro,
 * call, filter, with, generation, break/continue, and jx_parse, the entry
 * point. Expressions come from jinja_parse.c (jinja_parse_int.h).
 */
#include <stdio.h>
#include <string.h>

#include "tok/jinja_parse_int.h"

static jnode *parse_body(parser *p, const char *const *stops, const char **stopped);

/* Assignment target: name, ns.attr, or a tuple of names (optionally in parens). */
static jnode *parse_target(parser *p, int allow_ns) {
    nvec names = {0};
    int parens = skip_op(p, '(');
    for (;;) {
        if (cur(p)->type != JT_NAME) {
            jxp_fail(p, "expected a name to assign to, got %s", tok_desc(cur(p)));
            return NULL;
        }
        jnode *n = jxp_nn(p, JN_NAME);
        if (!n) return NULL;
        n->name = cur(p)->str;
        next(p);
        if (allow_ns && !names.n && !parens && is_op(cur(p), '.')) {
            next(p);
            if (cur(p)->type != JT_NAME) {
                jxp_fail(p, "expected an attribute name, got %s", tok_desc(cur(p)));
                return NULL;
            }
            jnode *r = jxp_nn(p, JN_NSREF);
            if (!r) return NULL;
            r->a = n, r->name = cur(p)->str;
            next(p);
            return r;
        }
        if (jxp_vpush(p, &names, n, NULL)) return NULL;
        if (!skip_op(p, ',')) break;
        if (parens && is_op(cur(p), ')')) break;
    }
    if (parens && jxp_expect_op(p, ')')) return NULL;
    if (names.n == 1 && !parens) return names.v[0];
    jnode *t = jxp_nn(p, JN_TUPLE);
    if (t) t->args = names.v, t->n_args = names.n;
    return t;
}

static int end_block(parser *p) {
    return jxp_expect(p, JT_BLOCK_END, "'%}'");
}

/* Parses a body up to {% stop %}; consumes the stop name (not the '%}'). */
static jnode *body_until(parser *p, const char *const *stops, const char **stopped) {
    jnode *b = parse_body(p, stops, stopped);
    if (b) next(p);
    return b;
}

static jnode *parse_if(parser *p) {
    static const char *const stops[] = {"elif", "else", "endif", NULL};
    jnode *n = jxp_nn(p, JN_IF);
    if (!n || !(n->a = jxp_parse_tuple(p, 1, 0, NULL)) || end_block(p)) return NULL;
    const char *st;
    int soft = p->soft;
    p->soft = 1;
    n->b = body_until(p, stops, &st);
    p->soft = soft;
    if (!n->b) return NULL;
    if (!strcmp(st, "elif")) {
        jnode *body = jxp_nn(p, JN_BODY);
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
    jnode *n = jxp_nn(p, JN_FOR);
    if (!n || !(n->a = parse_target(p, 0))) return NULL;
    if (!skip_name(p, "in")) {
        jxp_fail(p, "expected 'in' in a for loop, got %s", tok_desc(cur(p)));
        return NULL;
    }
    if (!(n->b = jxp_parse_tuple(p, 0, 0, iter_ends))) return NULL;
    if (skip_name(p, "if") && !(n->d = jxp_parse_expr(p))) return NULL;
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
            jxp_fail(p, "expected '|', got %s", tok_desc(cur(p)));
            return NULL;
        }
        f = jxp_parse_filter(p, f);
    } while (f && is_op(cur(p), '|'));
    return f;
}

static jnode *parse_set(parser *p) {
    jnode *target = parse_target(p, 1);
    if (!target) return NULL;
    if (skip_op(p, '=')) {
        jnode *n = jxp_nn(p, JN_SET);
        if (!n) return NULL;
        n->a = target;
        if (!(n->b = jxp_parse_tuple(p, 1, 0, NULL)) || end_block(p)) return NULL;
        return n;
    }
    jnode *n = jxp_nn(p, JN_SETBLOCK);
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
    if (jxp_expect_op(p, '(')) return -1;
    while (!is_op(cur(p), ')')) {
        if (params.n && jxp_expect_op(p, ',')) return -1;
        if (cur(p)->type != JT_NAME)
            return jxp_fail(p, "expected a parameter name, got %s", tok_desc(cur(p)));
        jstr *name = cur(p)->str;
        next(p);
        jnode *def = NULL;
        if (skip_op(p, '=') && !(def = jxp_parse_expr(p))) return -1;
        if (!def && params.n && params.v[params.n - 1])
            return jxp_fail(p, "non-default parameter follows a default parameter", NULL);
        if (jxp_vpush(p, &params, def, name)) return -1;
    }
    next(p);
    n->kwnames = params.names, n->kwvals = params.v, n->n_kw = params.n;
    return 0;
}

static jnode *parse_macro(parser *p) {
    jnode *n = jxp_nn(p, JN_MACRO);
    if (!n) return NULL;
    if (cur(p)->type != JT_NAME) {
        jxp_fail(p, "expected a macro name, got %s", tok_desc(cur(p)));
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
    jnode *n = jxp_nn(p, JN_CALLBLOCK);
    if (!n) return NULL;
    if (is_op(cur(p), '(') && parse_params(p, n)) return NULL;
    if (!(n->a = jxp_parse_expr(p))) return NULL;
    if (n->a->kind != JN_CALL) {
        jxp_fail(p, "expected a call after {%% call %%}", NULL);
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
        jxp_fail(p, "expected a statement name, got %s", tok_desc(t));
        return NULL;
    }
    const char *s = t->str->s;
    next(p);
    if (jxp_enter(p)) return NULL;
    jnode *n = NULL;
    const char *st;
    if (!strcmp(s, "if"))
        n = parse_if(p);
    else if (!strcmp(s, "for"))
        n = parse_for(p);
    else if (!strcmp(s, "set"))
        n = parse_set(p);
    else if (!strcmp(s, "macro"))
        n = parse_macro(p);
    else if (!strcmp(s, "call"))
        n = parse_call_block(p);
    else if (!strcmp(s, "break") || !strcmp(s, "continue")) {
        n = jxp_nn(p, s[0] == 'b' ? JN_BREAK : JN_CONTINUE);
        if (n && end_block(p)) return NULL;
    } else if (!strcmp(s, "filter")) {
        static const char *const end[] = {"endfilter", NULL};
        jnode *f = NULL;
        if (cur(p)->type != JT_NAME) {
            jxp_fail(p, "expected a filter name, got %s", tok_desc(cur(p)));
            return NULL;
        }
        if (!(f = jxp_nn(p, JN_FILTER))) return NULL;
        f->name = cur(p)->str;
        next(p);
        if (is_op(cur(p), '(') && jxp_parse_call_args(p, f)) return NULL;
        while (f && is_op(cur(p), '|')) f = jxp_parse_filter(p, f);
        if (!f) return NULL;
        n = jxp_nn(p, JN_FILTERBLOCK);
        if (!n) return NULL;
        n->b = f;
        if (end_block(p) || !(n->a = body_until(p, end, &st)) || end_block(p)) return NULL;
    } else if (!strcmp(s, "with")) {
        static const char *const end[] = {"endwith", NULL};
        n = jxp_nn(p, JN_WITH);
        nvec sets = {0};
        if (!n) return NULL;
        while (cur(p)->type != JT_BLOCK_END) {
            if (sets.n && jxp_expect_op(p, ',')) return NULL;
            jnode *s2 = jxp_nn(p, JN_SET);
            if (!s2 || !(s2->a = parse_target(p, 0)) || jxp_expect_op(p, '=') ||
                !(s2->b = jxp_parse_expr(p)))
                return NULL;
            if (jxp_vpush(p, &sets, s2, NULL)) return NULL;
        }
        n->args = sets.v, n->n_args = sets.n;
        if (end_block(p) || !(n->a = body_until(p, end, &st)) || end_block(p)) return NULL;
    } else if (!strcmp(s, "generation")) {
        static const char *const end[] = {"endgeneration", NULL};
        if (end_block(p) || !(n = body_until(p, end, &st)) || end_block(p)) return NULL;
    } else {
        p->pos--;
        jxp_fail(p, "Encountered unknown tag '%s'.", s);
        return NULL;
    }
    p->depth--;
    return n;
}

static jnode *parse_body(parser *p, const char *const *stops, const char **stopped) {
    nvec items = {0};
    jnode *body = jxp_nn(p, JN_BODY);
    if (!body) return NULL;
    for (;;) {
        const jtok *t = cur(p);
        if (t->type == JT_EOF) {
            if (stops) {
                size_t k = 0;
                while (stops[k + 1]) k++;
                jxp_fail(p, "unexpected end of template, expected '%s'", stops[k]);
                return NULL;
            }
            break;
        }
        jnode *n = NULL;
        if (t->type == JT_TEXT) {
            n = jxp_nn(p, JN_TEXT);
            if (!n) return NULL;
            n->lit.type = JV_STR, n->lit.u.s = t->str;
            next(p);
        } else if (t->type == JT_VAR_BEGIN) {
            next(p);
            n = jxp_nn(p, JN_OUTPUT);
            if (!n || !(n->a = jxp_parse_tuple(p, 1, 0, NULL)) || jxp_expect(p, JT_VAR_END, "'}}'"))
                return NULL;
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
                jxp_fail(p, "Encountered unknown tag '%s'.", name->str->s);
                return NULL;
            }
            if (!(n = parse_statement(p))) return NULL;
        } else {
            jxp_fail(p, "unexpected %s", tok_desc(t));
            return NULL;
        }
        if (jxp_vpush(p, &items, n, NULL)) return NULL;
    }
    body->args = items.v, body->n_args = items.n;
    return body;
}

/* See jinja_int.h. Also rejects unknown filter/test names outside soft
 * (if-branch) frames with TemplateAssertionError, as jinja2 compiles. */
int jx_parse(const jtok *toks, size_t n_toks, jx_arena *a, jnode **root, char *err,
             size_t err_size) {
    parser p = {toks, n_toks, 0, a, err, err_size, 0, NULL, 0, NULL, 0};
    if (err_size) err[0] = 0;
    *root = parse_body(&p, NULL, NULL);
    if (*root && p.unknown) {
        snprintf(err, err_size, "TemplateAssertionError: No %s named '%s'. (line %d)",
                 p.unknown_is_test ? "test" : "filter",
                 p.unknown->type == JT_NAME ? p.unknown->str->s : "?", p.unknown->line);
        *root = NULL;
    }
    if (!*root && !err[0]) jxp_fail(&p, "template too large (out of memory)", NULL);
    return *root ? 0 : -1;
}
