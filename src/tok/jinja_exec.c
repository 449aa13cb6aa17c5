/*
 * jinja_exec.c - statement execution for the Jinja interpreter: output,
 * if, for (loop variables, else, filtered and recursive loops, break and
 * continue), set (names, tuples, namespace attributes, block form), macros
 * and call blocks, filter blocks and with. Scoping follows jinja2: a for
 * body, a macro and a with block get a new frame; if does not. Loop
 * iterations, macro nesting and output size are bounded (jinja_int.h).
 */
#include <stdio.h>
#include <string.h>

#include "tok/jinja_int.h"

typedef struct loop_state {
    const jnode *node; /* the JN_FOR */
    jx_frame *frame;   /* frame the loop runs in */
    int depth;         /* 1 for the outermost */
} loop_state;

static int oom(jx_vm *vm) {
    return jx_fail(vm, "MemoryError: the render used more than %u MiB", JX_MAX_MEMORY_BYTES >> 20);
}

/* Runs body with output captured into a new string value. */
static int capture(jx_vm *vm, const jnode *body, jx_frame *f, jv *out) {
    buf tmp = BUF_INIT, *saved = vm->out;
    vm->out = &tmp;
    int rc = jx_exec(vm, body, f);
    vm->out = saved;
    if (rc == JX_ERR) {
        buf_free(&tmp);
        return JX_ERR;
    }
    rc = jx_str(vm, tmp.data ? tmp.data : "", tmp.len, out);
    buf_free(&tmp);
    return rc;
}

/* Applies a filter chain whose innermost input is NULL to v. */
static int apply_chain(jx_vm *vm, const jnode *chain, jx_frame *f, jv v, jv *out) {
    if (!chain) {
        *out = v;
        return 0;
    }
    jv in;
    if (apply_chain(vm, chain->a, f, v, &in)) return -1;
    jv *args = chain->n_args ? jx_alloc(&vm->arena, chain->n_args * sizeof *args) : NULL;
    jv *kw = chain->n_kw ? jx_alloc(&vm->arena, chain->n_kw * sizeof *kw) : NULL;
    if ((chain->n_args && !args) || (chain->n_kw && !kw)) return oom(vm);
    for (size_t i = 0; i < chain->n_args; i++)
        if (jx_eval(vm, chain->args[i], f, &args[i])) return -1;
    for (size_t i = 0; i < chain->n_kw; i++)
        if (jx_eval(vm, chain->kwvals[i], f, &kw[i])) return -1;
    return jx_filter(vm, chain->name->s, in, args, chain->n_args, chain->kwnames, kw, chain->n_kw,
                     out);
}

/* Binds v to a for/set target (a name or a tuple of names). */
static int assign(jx_vm *vm, const jnode *target, jx_frame *f, jv v) {
    if (target->kind == JN_NAME) return jx_frame_set(vm, f, target->name, v);
    jlist *items;
    if (v.type == JV_UNDEF) return jx_undef_fail(vm, v);
    if (v.type != JV_STR && v.type != JV_LIST && v.type != JV_DICT)
        return jx_fail(vm, "TypeError: cannot unpack non-iterable %s object", jx_type_name(v));
    if (jx_iterate(vm, v, &items)) return -1;
    if (items->n != target->n_args) {
        if (items->n < target->n_args)
            return jx_fail(vm, "ValueError: not enough values to unpack (expected %zu, got %zu)",
                           target->n_args, items->n);
        return jx_fail(vm, "ValueError: too many values to unpack (expected %zu)", target->n_args);
    }
    for (size_t i = 0; i < items->n; i++)
        if (assign(vm, target->args[i], f, items->v[i])) return -1;
    return 0;
}

static int set_loop_vars(jx_vm *vm, jdict *lp, jlist *items, size_t i, int depth) {
    int64_t n = (int64_t)items->n, k = (int64_t)i;
    jv vals[11] = {jv_int(k + 1),
                   jv_int(k),
                   jv_int(n - k),
                   jv_int(n - k - 1),
                   jv_bool(k == 0),
                   jv_bool(k == n - 1),
                   jv_int(n),
                   jv_int(depth),
                   jv_int(depth - 1),
                   i > 0 ? items->v[i - 1] : jv_undef("there is no previous item"),
                   k + 1 < n ? items->v[i + 1] : jv_undef("there is no next item")};
    static const char *names[11] = {"index",  "index0", "revindex", "revindex0", "first",   "last",
                                    "length", "depth",  "depth0",   "previtem",  "nextitem"};
    if (lp->n == 0) {
        for (int j = 0; j < 11; j++)
            if (jx_dict_set_str(&vm->arena, lp, names[j], vals[j])) return oom(vm);
        return 0;
    }
    for (int j = 0; j < 11; j++) lp->v[j] = vals[j];
    return 0;
}

/* Runs a for loop over iter (the items) at the given recursion depth. */
static int run_for(jx_vm *vm, const jnode *n, jx_frame *f, jv iter, int depth) {
    jlist *all, *items;
    if (iter.type == JV_UNDEF) {
        all = jx_list_new(&vm->arena, JL_LIST, 0);
        if (!all) return oom(vm);
    } else if (jx_iterate(vm, iter, &all)) {
        return JX_ERR;
    }
    jx_frame *body_frame = jx_frame_new(vm, f);
    if (!body_frame) return oom(vm);
    items = all;
    if (n->d) { /* for x in xs if cond: filter first, so loop.length counts kept items */
        items = jx_list_new(&vm->arena, JL_LIST, all->n);
        if (!items) return oom(vm);
        for (size_t i = 0; i < all->n; i++) {
            jv c;
            body_frame->vars->n = 0;
            if (++vm->loop_iters > JX_MAX_LOOP_ITERS) goto too_many;
            if (assign(vm, n->a, body_frame, all->v[i]) || jx_eval(vm, n->d, body_frame, &c))
                return JX_ERR;
            if (jx_truthy(c)) items->v[items->n++] = all->v[i];
        }
    }
    if (items->n == 0) {
        if (n->c) return jx_exec(vm, n->c, f);
        return JX_OK;
    }
    jdict *lp = jx_dict_new(&vm->arena, JD_LOOP);
    loop_state *ls = jx_alloc(&vm->arena, sizeof *ls);
    if (!lp || !ls) return oom(vm);
    ls->node = n, ls->frame = f, ls->depth = depth;
    if (n->op) lp->loop = ls;
    jstr *lname = jx_str_new(&vm->arena, "loop", 4);
    if (!lname) return oom(vm);
    for (size_t i = 0; i < items->n; i++) {
        if (++vm->loop_iters > JX_MAX_LOOP_ITERS) goto too_many;
        if (jx_tick(vm, 1)) return JX_ERR;
        body_frame->vars->n = 0; /* a fresh scope per iteration */
        if (set_loop_vars(vm, lp, items, i, depth)) return JX_ERR;
        jv lv = {JV_DICT, {.d = lp}};
        if (jx_frame_set(vm, body_frame, lname, lv)) return JX_ERR;
        if (assign(vm, n->a, body_frame, items->v[i])) return JX_ERR;
        int rc = jx_exec(vm, n->args[0], body_frame);
        if (rc == JX_ERR) return JX_ERR;
        if (rc == JX_BREAK) break;
    }
    return JX_OK;
too_many:
    return jx_fail(vm, "SecurityError: more than %u loop iterations in one render",
                   JX_MAX_LOOP_ITERS);
}

/* loop(items) inside a recursive for: renders the body for items one level deeper. */
int jx_call_loop(jx_vm *vm, void *state, jv items, jv *out) {
    loop_state *ls = state;
    if (++vm->call_depth > JX_MAX_CALL_DEPTH) {
        vm->call_depth--;
        return jx_fail(vm, "RecursionError: recursive loop nested deeper than %d levels",
                       JX_MAX_CALL_DEPTH);
    }
    buf tmp = BUF_INIT, *saved = vm->out;
    vm->out = &tmp;
    int rc = run_for(vm, ls->node, ls->frame, items, ls->depth + 1);
    vm->out = saved;
    vm->call_depth--;
    if (rc != JX_ERR) rc = jx_str(vm, tmp.data ? tmp.data : "", tmp.len, out);
    buf_free(&tmp);
    return rc;
}

/* Calls a macro (or a call block's caller) with bound arguments. */
int jx_call_macro(jx_vm *vm, const jfunc *fn, jv *args, size_t n_args, jstr **kwnames, jv *kwvals,
                  size_t n_kw, jv *out) {
    const jnode *m = fn->node; /* JN_MACRO, or JN_CALLBLOCK for caller() */
    const jnode *body = m->kind == JN_MACRO ? m->a : m->b;
    if (vm->call_depth + 1 > JX_MAX_CALL_DEPTH)
        return jx_fail(vm, "RecursionError: macro calls nested deeper than %d levels",
                       JX_MAX_CALL_DEPTH);
    jx_frame *f = jx_frame_new(vm, fn->frame);
    if (!f) return oom(vm);
    size_t np = m->n_kw;
    jlist *varargs = jx_list_new(&vm->arena, JL_TUPLE, 0);
    jdict *kwargs = jx_dict_new(&vm->arena, JD_DICT);
    char *bound = jx_alloc(&vm->arena, np + 1);
    if (!varargs || !kwargs || !bound) return oom(vm);
    for (size_t i = 0; i < n_args; i++) {
        if (i < np) {
            if (jx_frame_set(vm, f, m->kwnames[i], args[i])) return JX_ERR;
            bound[i] = 1;
        } else if (m->flags & 1) {
            if (jx_list_push(&vm->arena, varargs, args[i])) return oom(vm);
        } else {
            return jx_fail(vm, "TypeError: macro '%s' takes not more than %zu argument(s)",
                           fn->name, np);
        }
    }
    for (size_t k = 0; k < n_kw; k++) {
        size_t i = 0;
        while (i < np && strcmp(m->kwnames[i]->s, kwnames[k]->s)) i++;
        if (i < np) {
            if (bound[i])
                return jx_fail(vm, "TypeError: macro '%s' got multiple values for argument '%s'",
                               fn->name, kwnames[k]->s);
            if (jx_frame_set(vm, f, m->kwnames[i], kwvals[k])) return JX_ERR;
            bound[i] = 1;
        } else if (!strcmp(kwnames[k]->s, "caller") && m->kind == JN_MACRO) {
            if (jx_frame_set(vm, f, kwnames[k], kwvals[k])) return JX_ERR;
        } else if (m->flags & 2) {
            jv key = {JV_STR, {.s = kwnames[k]}};
            if (jx_dict_set(&vm->arena, kwargs, key, kwvals[k])) return oom(vm);
        } else {
            return jx_fail(vm, "TypeError: macro '%s' takes no keyword argument '%s'", fn->name,
                           kwnames[k]->s);
        }
    }
    for (size_t i = 0; i < np; i++) {
        if (bound[i]) continue;
        jv v;
        if (m->kwvals[i]) {
            if (jx_eval(vm, m->kwvals[i], f, &v)) return JX_ERR;
        } else {
            char hint[160];
            snprintf(hint, sizeof hint, "parameter '%.100s' was not provided", m->kwnames[i]->s);
            jstr *h = jx_str_new(&vm->arena, hint, strlen(hint));
            v = jv_undef(h ? h->s : NULL);
        }
        if (jx_frame_set(vm, f, m->kwnames[i], v)) return JX_ERR;
    }
    jstr *vn = jx_str_new(&vm->arena, "varargs", 7), *kn = jx_str_new(&vm->arena, "kwargs", 6);
    if (!vn || !kn) return oom(vm);
    jv va = {JV_LIST, {.l = varargs}}, ka = {JV_DICT, {.d = kwargs}};
    if (jx_frame_set(vm, f, vn, va) || jx_frame_set(vm, f, kn, ka)) return JX_ERR;
    vm->call_depth++;
    int rc = capture(vm, body, f, out);
    vm->call_depth--;
    return rc == JX_ERR ? JX_ERR : 0;
}

static int exec_set(jx_vm *vm, const jnode *target, jx_frame *f, jv v) {
    if (target->kind != JN_NSREF) return assign(vm, target, f, v);
    jv ns;
    if (jx_lookup(vm, f, target->a->name, &ns)) return JX_ERR;
    if (ns.type != JV_DICT || ns.u.d->kind != JD_NAMESPACE)
        return jx_fail(vm, "TemplateRuntimeError: cannot assign attribute on non-namespace object");
    jv key = {JV_STR, {.s = target->name}};
    if (jx_dict_set(&vm->arena, ns.u.d, key, v)) return oom(vm);
    return JX_OK;
}

static int exec_inner(jx_vm *vm, const jnode *n, jx_frame *f) {
    jv v;
    switch (n->kind) {
    case JN_BODY:
        for (size_t i = 0; i < n->n_args; i++) {
            int rc = jx_exec(vm, n->args[i], f);
            if (rc != JX_OK) return rc;
        }
        return JX_OK;
    case JN_TEXT:
        return jx_emit(vm, n->lit.u.s->s, n->lit.u.s->len);
    case JN_OUTPUT: {
        if (jx_eval(vm, n->a, f, &v)) return JX_ERR;
        if (v.type == JV_STR) return jx_emit(vm, v.u.s->s, v.u.s->len);
        buf b = BUF_INIT;
        int rc = jx_to_str(vm, v, &b);
        if (!rc) rc = jx_emit(vm, b.data ? b.data : "", b.len);
        buf_free(&b);
        return rc;
    }
    case JN_IF:
        if (jx_eval(vm, n->a, f, &v)) return JX_ERR;
        if (jx_truthy(v)) return jx_exec(vm, n->b, f);
        return n->c ? jx_exec(vm, n->c, f) : JX_OK;
    case JN_FOR:
        if (jx_eval(vm, n->b, f, &v)) return JX_ERR;
        return run_for(vm, n, f, v, 1);
    case JN_SET:
        if (jx_eval(vm, n->b, f, &v)) return JX_ERR;
        return exec_set(vm, n->a, f, v);
    case JN_SETBLOCK: {
        jv s;
        if (capture(vm, n->c, f, &s) || apply_chain(vm, n->b, f, s, &v)) return JX_ERR;
        return exec_set(vm, n->a, f, v);
    }
    case JN_MACRO: {
        jfunc *fn = jx_alloc(&vm->arena, sizeof *fn);
        if (!fn) return oom(vm);
        fn->kind = JF_MACRO, fn->name = n->name->s, fn->node = n, fn->frame = f;
        return jx_frame_set(vm, f, n->name, jv_func(fn));
    }
    case JN_CALLBLOCK: {
        const jnode *call = n->a;
        jfunc *caller = jx_alloc(&vm->arena, sizeof *caller);
        jv callee, *args, *kw;
        jstr **names;
        if (!caller) return oom(vm);
        caller->kind = JF_CALLER, caller->name = "caller", caller->node = n, caller->frame = f;
        if (jx_eval(vm, call->a, f, &callee)) return JX_ERR;
        args = jx_alloc(&vm->arena, (call->n_args + 1) * sizeof *args);
        kw = jx_alloc(&vm->arena, (call->n_kw + 1) * sizeof *kw);
        names = jx_alloc(&vm->arena, (call->n_kw + 1) * sizeof *names);
        if (!args || !kw || !names) return oom(vm);
        for (size_t i = 0; i < call->n_args; i++)
            if (jx_eval(vm, call->args[i], f, &args[i])) return JX_ERR;
        for (size_t i = 0; i < call->n_kw; i++) {
            if (jx_eval(vm, call->kwvals[i], f, &kw[i])) return JX_ERR;
            names[i] = call->kwnames[i];
        }
        names[call->n_kw] = jx_str_new(&vm->arena, "caller", 6);
        if (!names[call->n_kw]) return oom(vm);
        kw[call->n_kw] = jv_func(caller);
        if (jx_call(vm, callee, args, call->n_args, names, kw, call->n_kw + 1, &v)) return JX_ERR;
        buf b = BUF_INIT;
        int rc = jx_to_str(vm, v, &b);
        if (!rc) rc = jx_emit(vm, b.data ? b.data : "", b.len);
        buf_free(&b);
        return rc;
    }
    case JN_FILTERBLOCK: {
        jv s;
        if (capture(vm, n->a, f, &s) || apply_chain(vm, n->b, f, s, &v)) return JX_ERR;
        buf b = BUF_INIT;
        int rc = jx_to_str(vm, v, &b);
        if (!rc) rc = jx_emit(vm, b.data ? b.data : "", b.len);
        buf_free(&b);
        return rc;
    }
    case JN_WITH: {
        jx_frame *wf = jx_frame_new(vm, f);
        if (!wf) return oom(vm);
        for (size_t i = 0; i < n->n_args; i++) {
            if (jx_eval(vm, n->args[i]->b, f, &v) || assign(vm, n->args[i]->a, wf, v))
                return JX_ERR;
        }
        return jx_exec(vm, n->a, wf);
    }
    case JN_BREAK:
        return JX_BREAK;
    case JN_CONTINUE:
        return JX_CONTINUE;
    default:
        return jx_fail(vm, "TemplateRuntimeError: unexpected node %d", n->kind);
    }
}

/* Runs statement n in frame f, writing to vm->out; returns JX_OK,
 * JX_BREAK, JX_CONTINUE or JX_ERR. */
int jx_exec(jx_vm *vm, const jnode *n, jx_frame *f) {
    if (++vm->eval_depth > JX_MAX_EVAL_DEPTH) {
        vm->eval_depth--;
        return jx_fail(vm, "RecursionError: template nested deeper than %d levels",
                       JX_MAX_EVAL_DEPTH);
    }
    int saved = vm->line;
    vm->line = n->line;
    int rc = exec_inner(vm, n, f);
    vm->line = saved;
    vm->eval_depth--;
    return rc;
}
