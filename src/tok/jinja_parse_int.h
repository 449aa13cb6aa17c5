/*
 * jinja_parse_int.h - private to the two halves of the Jinja parser:
 * jinja_parse.c (expressions) and jinja_parse_stmt.c (statements, bodies,
 * the jx_parse entry point). Holds the parser state and shared helpers.
 */
#ifndef TOK_JINJA_PARSE_INT_H
#define TOK_JINJA_PARSE_INT_H

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

typedef struct nvec {
    jnode **v;
    jstr **names;
    size_t n, cap;
} nvec;

static inline const jtok *cur(parser *p) {
    return &p->t[p->pos < p->n ? p->pos : p->n - 1];
}
static inline const jtok *peek(parser *p, size_t k) {
    return &p->t[p->pos + k < p->n ? p->pos + k : p->n - 1];
}
static inline int is_op(const jtok *t, int op) {
    return t->type == JT_OP && t->op == op;
}
static inline int is_name(const jtok *t, const char *s) {
    return t->type == JT_NAME && !strcmp(t->str->s, s);
}
static inline void next(parser *p) {
    if (p->pos < p->n - 1) p->pos++;
}
static inline int skip_op(parser *p, int op) {
    if (!is_op(cur(p), op)) return 0;
    next(p);
    return 1;
}
static inline int skip_name(parser *p, const char *s) {
    if (!is_name(cur(p), s)) return 0;
    next(p);
    return 1;
}

/* Records "TemplateSyntaxError: <fmt % arg> (line N)" once; returns -1. */
int jxp_fail(parser *p, const char *fmt, const char *arg);
/* Describes a token for messages into buf (64 bytes). */
const char *jxp_tok_desc_r(const jtok *t, char *buf);
#define tok_desc(t) jxp_tok_desc_r((t), (char[64]){0})
/* Consume the expected operator / token type or fail naming what was found. */
int jxp_expect_op(parser *p, int op);
int jxp_expect(parser *p, int type, const char *what);
/* A new zeroed node at the current line (NULL + error when out of memory). */
jnode *jxp_nn(parser *p, int kind);
/* Appends a node (and optional name) to a growable vector. 0 or -1. */
int jxp_vpush(parser *p, nvec *v, jnode *n, jstr *name);
/* Counts one level of nesting against JX_MAX_PARSE_DEPTH. 0 or -1. */
int jxp_enter(parser *p);
/* '(' args ')' into n's args and keyword args. 0 or -1. */
int jxp_parse_call_args(parser *p, jnode *n);
/* A tuple or a single expression ending at '}}', '%}', ')' or a name in ends. */
jnode *jxp_parse_tuple(parser *p, int with_cond, int explicit_parens, const char *const *ends);
/* A full expression, conditional expressions included. */
jnode *jxp_parse_expr(parser *p);
/* One '| name(args)' applied to input (NULL in filter/set blocks). */
jnode *jxp_parse_filter(parser *p, jnode *input);

#endif
