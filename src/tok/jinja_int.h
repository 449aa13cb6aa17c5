/*
 * jinja_int.h - private header of the sandboxed Jinja interpreter behind
 * template.h: values, the AST, the lexer/parser entry points and the render
 * state. Flow: jinja_lex.c (source -> tokens) -> jinja_parse.c (tokens ->
 * AST) -> jinja_eval.c / jinja_exec.c (AST + context -> text), with values in
 * jinja_value.c, filters and tests in jinja_filters.c, methods and globals in
 * jinja_methods.c. Only files named jinja_* and template.c include this.
 */
#ifndef TOK_JINJA_INT_H
#define TOK_JINJA_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Hard limits of the sandbox (docs/chat-templates.md lists them). */
#define JX_MAX_SOURCE_BYTES (1u << 20)   /* template source */
#define JX_MAX_PARSE_DEPTH 200           /* nesting of expressions/blocks */
#define JX_MAX_LOOP_ITERS 1000000u       /* loop iterations per render */
#define JX_MAX_CALL_DEPTH 64             /* nested macro calls */
#define JX_MAX_EVAL_DEPTH 400            /* nested evaluation (C stack guard) */
#define JX_MAX_OUTPUT_BYTES (16u << 20)  /* rendered text, captures included */
#define JX_MAX_MEMORY_BYTES (256u << 20) /* values allocated during one render */
#define JX_MAX_RANGE 100000              /* like jinja2's sandbox MAX_RANGE */
#define JX_MAX_VALUE_DEPTH 256           /* nesting when printing/serializing */
#define JX_MAX_RENDER_MS 10000           /* wall-clock budget of one render */

/* ---- arena: every render value lives until the render ends ---- */
typedef struct jx_chunk jx_chunk;
typedef struct jx_arena {
    jx_chunk *head;
    size_t used_bytes;  /* total handed out */
    size_t limit_bytes; /* 0 = unlimited */
    int over;           /* 1 once an allocation failed or passed the limit */
} jx_arena;

void *jx_alloc(jx_arena *a, size_t n); /* zeroed; NULL on failure (a->over set) */
void jx_arena_free(jx_arena *a);

/* ---- values ---- */
typedef enum {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,
    JV_DICT,
    JV_FUNC
} jv_type;

/* NUL-terminated UTF-8; markup = 1 for jinja2 Markup strings (|safe, |escape):
 * `+` with a plain string HTML-escapes the plain side, as Markup.__add__ does. */
typedef struct jstr {
    size_t len;
    int markup;
    char s[];
} jstr;
enum { JL_LIST, JL_TUPLE, JL_GEN }; /* list kinds */
/* group = 1 for groupby's (grouper, list) named tuples */
typedef struct jlist {
    size_t n, cap;
    struct jv *v;
    int kind;
    int consumed;
    int group;
} jlist;
enum { JD_DICT, JD_NAMESPACE, JD_LOOP }; /* dict kinds */
typedef struct jdict {
    size_t n, cap;
    struct jv *k, *v;
    int kind;
    void *loop;
} jdict;
struct jnode;
struct jx_frame;
enum { JF_MACRO, JF_BUILTIN, JF_METHOD, JF_CALLER, JF_LOOP };
typedef struct jfunc {
    int kind;
    int id;                   /* builtin or method id */
    const char *name;         /* for messages */
    const struct jnode *node; /* macro or call-block body */
    struct jx_frame *frame;   /* frame the macro/caller closes over */
    struct jv *self;          /* bound method receiver */
    void *loop;               /* JF_LOOP: the recursive loop state */
} jfunc;

typedef struct jv {
    int type;
    union {
        int b;
        int64_t i;
        double f;
        jstr *s;
        jlist *l;
        jdict *d;
        jfunc *fn;
        const char *hint; /* JV_UNDEF: message used when the value is misused */
    } u;
} jv;

/* ---- AST ---- */
typedef enum {
    /* statements */
    JN_BODY,
    JN_TEXT,
    JN_OUTPUT,
    JN_IF,
    JN_FOR,
    JN_SET,
    JN_SETBLOCK,
    JN_MACRO,
    JN_CALLBLOCK,
    JN_FILTERBLOCK,
    JN_BREAK,
    JN_CONTINUE,
    JN_WITH,
    /* expressions */
    JN_LIT,
    JN_NAME,
    JN_LIST,
    JN_TUPLE,
    JN_DICT,
    JN_ATTR,
    JN_ITEM,
    JN_SLICE,
    JN_CALL,
    JN_FILTER,
    JN_TEST,
    JN_BINOP,
    JN_NEG,
    JN_POS,
    JN_NOT,
    JN_AND,
    JN_OR,
    JN_COMPARE,
    JN_COND,
    JN_NSREF /* ns.attr as a set target */
} jnode_kind;

enum {
    JOP_ADD = 1,
    JOP_SUB,
    JOP_MUL,
    JOP_DIV,
    JOP_FLOORDIV,
    JOP_MOD,
    JOP_POW,
    JOP_CONCAT,
    JOP_EQ,
    JOP_NE,
    JOP_LT,
    JOP_LE,
    JOP_GT,
    JOP_GE,
    JOP_IN,
    JOP_NOTIN
};

typedef struct jnode {
    int kind;
    int op; /* JOP_* for BINOP; negated for TEST; recursive for FOR; const object for SLICE */
    int line;
    int flags; /* macro: 1 uses varargs, 2 uses kwargs, 4 uses caller */
    struct jnode *a, *b, *c, *d;
    struct jnode **args; /* children: statements, items, positional args, params */
    size_t n_args;
    struct jnode **kwvals; /* keyword arg values, dict values, param defaults */
    jstr **kwnames;        /* keyword arg names, param names */
    size_t n_kw;
    jstr *name; /* NAME, ATTR, FILTER, TEST, MACRO, NSREF attribute */
    jv lit;     /* LIT and TEXT */
} jnode;

/* ---- lexer ---- */
typedef enum {
    JT_EOF,
    JT_TEXT,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP
} jtok_type;

typedef struct jtok {
    int type;
    int line;
    int op;    /* JT_OP: the operator's first char, or a 2-char code below */
    jstr *str; /* TEXT, NAME, STRING */
    int64_t i;
    double f;
} jtok;

/* Two-character operator codes (single-char operators use the char). */
enum { JTO_EQ = 256, JTO_NE, JTO_LE, JTO_GE, JTO_FLOORDIV, JTO_POW };

/* Tokenizes src with trim_blocks and lstrip_blocks on, dropping one trailing
 * newline. Tokens and their strings live in arena a. Returns 0, or -1 with a
 * message in err. */
int jx_lex(const char *src, size_t len, jx_arena *a, jtok **toks, size_t *n_toks, char *err,
           size_t err_size);

/* Parses tokens into a JN_BODY root allocated in a. Returns 0 or -1 + err. */
int jx_parse(const jtok *toks, size_t n_toks, jx_arena *a, jnode **root, char *err,
             size_t err_size);

/* ---- render state ---- */
typedef struct jx_frame {
    struct jx_frame *parent;
    jdict *vars;
} jx_frame;

typedef struct jx_vm {
    jx_arena arena;
    buf *out;       /* current output (captures swap it) */
    jdict *globals; /* the caller's context */
    jx_frame *root;
    char *err;
    size_t err_size;
    int line; /* line of the node being run */
    size_t loop_iters;
    int call_depth, eval_depth;
    size_t out_bytes;          /* bytes written, captures included */
    int64_t now_s;             /* strftime_now's clock (UTC seconds) */
    uint64_t work, next_check; /* work units done; when to look at the clock next */
    double deadline_s;         /* monotonic time the render must end by */
    unsigned budget_ms;        /* the budget deadline_s came from (messages) */
} jx_vm;

/* Status of statement execution beyond errors. */
enum { JX_OK = 0, JX_BREAK = 1, JX_CONTINUE = 2, JX_ERR = -1 };

/* Records "<message> (line N)" as the render error; returns JX_ERR. */
int jx_fail(jx_vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* values (jinja_value.c) */
jv jv_undef(const char *hint);
jv jv_none(void);
jv jv_bool(int b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_func(jfunc *fn);
jstr *jx_str_new(jx_arena *a, const char *s, size_t n);
int jx_str(jx_vm *vm, const char *s, size_t n, jv *out); /* string value; -1 on memory */
jlist *jx_list_new(jx_arena *a, int kind, size_t cap);
int jx_list_push(jx_arena *a, jlist *l, jv v);
jdict *jx_dict_new(jx_arena *a, int kind);
int jx_dict_set(jx_arena *a, jdict *d, jv k, jv v);
int jx_dict_set_str(jx_arena *a, jdict *d, const char *k, jv v);
jv *jx_dict_get(const jdict *d, jv k);
jv *jx_dict_get_str(const jdict *d, const char *k, size_t n);
const char *jx_type_name(jv v); /* Python's type name: 'NoneType', 'str', 'dict' ... */
int jx_truthy(jv v);
int jx_equal(jv a, jv b);
int jx_compare(jx_vm *vm, jv a, jv b, int op, int *res); /* <, <=, >, >= ; -1 on TypeError */
int jx_to_str(jx_vm *vm, jv v, buf *b);                  /* Python str() */
int jx_to_repr(jx_vm *vm, jv v, buf *b);                 /* Python repr() */
int jx_stringify(jx_vm *vm, jv v, jv *out);              /* str() as a string value */
int jx_tojson(jx_vm *vm, jv v, const char *indent, int indent_set, const char *item_sep,
              const char *key_sep, int sort_keys, int ensure_ascii, buf *b);
void jx_format_float(double f, char *out, size_t size); /* Python float repr */
int jx_iterate(jx_vm *vm, jv v, jlist **items);         /* items of an iterable, or TypeError */
int jx_len(jx_vm *vm, jv v, int64_t *n);
size_t jx_utf8_count(const char *s, size_t n);
int jx_is_space(uint32_t cp);                    /* Python str.isspace for one code point */
int jx_emit(jx_vm *vm, const char *s, size_t n); /* append to output within the limit */
/* Counts work units (items visited, bytes compared); past the render's time
 * budget it fails with TimeoutError. Returns 0 or JX_ERR. */
int jx_tick(jx_vm *vm, size_t work);

/* evaluation (jinja_eval.c) and execution (jinja_exec.c) */
int jx_eval(jx_vm *vm, const jnode *n, jx_frame *f, jv *out);
int jx_exec(jx_vm *vm, const jnode *n, jx_frame *f);
int jx_lookup(jx_vm *vm, jx_frame *f, const jstr *name, jv *out);
int jx_frame_set(jx_vm *vm, jx_frame *f, const jstr *name, jv v);
jx_frame *jx_frame_new(jx_vm *vm, jx_frame *parent);
int jx_getattr(jx_vm *vm, jv obj, const char *name, size_t len, jv *out);
int jx_getitem(jx_vm *vm, jv obj, jv key, jv *out);
int jx_call(jx_vm *vm, jv fn, jv *args, size_t n_args, jstr **kwnames, jv *kwvals, size_t n_kw,
            jv *out);
int jx_binop(jx_vm *vm, int op, jv a, jv b, jv *out);
int jx_undef_fail(jx_vm *vm, jv u);
int jx_call_macro(jx_vm *vm, const jfunc *fn, jv *args, size_t n_args, jstr **kwnames, jv *kwvals,
                  size_t n_kw, jv *out);
int jx_call_loop(jx_vm *vm, void *state, jv items, jv *out);

/* filters and tests (jinja_filters.c): run the named one; -1 when unknown. */
int jx_filter(jx_vm *vm, const char *name, jv in, jv *args, size_t n_args, jstr **kwnames,
              jv *kwvals, size_t n_kw, jv *out);
int jx_test(jx_vm *vm, const char *name, jv in, jv *args, size_t n_args, int *res);
int jx_has_test(const char *name);
/* 1 for the filters jinja2 knows (a template naming another one outside an
 * if-branch fails to compile, as in jinja2). */
int jx_filter_known(const char *name);

/* filter plumbing shared by jinja_filters.c and jinja_seqfilters.c */
#define MAXP 6

typedef struct fargs {
    jv v[MAXP];
    int has[MAXP];
    jv *rest; /* positional args past the named ones (map/select) */
    size_t n_rest;
} fargs;

/* A filter: input, bound arguments (by position or keyword), raw keywords. */
typedef int (*filter_fn)(jx_vm *vm, jv in, fargs *a, jstr **kwnames, jv *kwvals, size_t n_kw,
                         jv *out);

typedef struct filter_def {
    const char *name;
    filter_fn fn;
    const char *params[MAXP]; /* names, NULL-terminated; "*" collects the rest */
} filter_def;

int jx_get_path(jx_vm *vm, jv item, jv attr, jv *out); /* jinja2 attrgetter "a.b.0" */
#define JX_SEQ_FILTERS(X) X(batch) X(dictsort) X(groupby) X(max) X(min) X(sort) X(sum) X(unique)
#define JX_DECLARE_FILTER(n)                                                                       \
    int jx_f_##n(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out);
JX_SEQ_FILTERS(JX_DECLARE_FILTER)
#undef JX_DECLARE_FILTER

/* methods and globals (jinja_methods.c) */
int jx_method_lookup(jx_vm *vm, jv self, const char *name, size_t len, jv *out); /* 1 found */
int jx_method_call(jx_vm *vm, const jfunc *fn, jv *args, size_t n_args, jstr **kwnames, jv *kwvals,
                   size_t n_kw, jv *out);
int jx_builtin_lookup(const char *name, jv *out, jx_arena *a); /* 1 found */
int jx_builtin_call(jx_vm *vm, const jfunc *fn, jv *args, size_t n_args, jstr **kwnames, jv *kwvals,
                    size_t n_kw, jv *out);
int jx_str_percent(jx_vm *vm, jv fmt, jv args, jv *out); /* "%s" % x */
int jx_case(jx_vm *vm, jv s, int mode, jv *out);         /* 'u','l','t' (Python title),'c','s' */
int jx_strip(jx_vm *vm, jv s, const jstr *chars, int left, int right, jv *out);
int jx_html_escape(jx_vm *vm, jv s, jv *out); /* a Markup string; markup input kept as is */

#endif
