/*
 * jinja_seqfilters.c - jinja2's filters over sequences that sort, group or
 * aggregate: sort, dictsort, groupby, unique, min, max, sum, batch, with
 * jinja2's attribute paths ("a.b.0") and case-insensitive keys by default.
 * Sorting is a stable merge sort whose comparisons may fail with Python's
 * TypeError ('<' not supported between ...).
 */
#include <stdlib.h>
#include <string.h>

#include "tok/jinja_int.h"

static int oom(jx_vm *vm) {
    return jx_fail(vm, "MemoryError: the render used more than %u MiB", JX_MAX_MEMORY_BYTES >> 20);
}

static int ret_list(jlist *l, jv *out) {
    out->type = JV_LIST, out->u.l = l;
    return 0;
}

static int opt_bool(fargs *a, int i, int def) {
    return a->has[i] ? jx_truthy(a->v[i]) : def;
}

/* environment.getitem over "a.b.0" paths, as jinja2's make_attrgetter. */
int jx_get_path(jx_vm *vm, jv item, jv attr, jv *out) {
    if (attr.type != JV_STR) return jx_getitem(vm, item, attr, out);
    const char *s = attr.u.s->s, *end = s + attr.u.s->len;
    *out = item;
    while (s <= end) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        if (!dot) dot = end;
        jv key;
        int digits = dot > s;
        for (const char *p = s; p < dot; p++) digits &= *p >= '0' && *p <= '9';
        if (digits && dot - s < 18)
            key = jv_int(strtoll(s, NULL, 10));
        else if (jx_str(vm, s, (size_t)(dot - s), &key))
            return -1;
        if (jx_getitem(vm, *out, key, out)) return -1;
        s = dot + 1;
    }
    return 0;
}

static int lower_key(jx_vm *vm, jv v, int case_sensitive, jv *out) {
    if (!case_sensitive && v.type == JV_STR) return jx_case(vm, v, 'l', out);
    *out = v;
    return 0;
}

/* ---- sorting (stable merge sort whose comparison may fail) ---- */
typedef struct sort_ctx {
    jx_vm *vm;
    int failed;
} sort_ctx;

static int less(sort_ctx *c, jv a, jv b) {
    int r = 0;
    if (!c->failed && jx_compare(c->vm, a, b, JOP_LT, &r)) c->failed = 1;
    return r;
}

static void merge_sort(sort_ctx *c, jv *keys, jv *vals, jv *tk, jv *tv, size_t n) {
    if (n < 2 || c->failed) return;
    size_t h = n / 2;
    merge_sort(c, keys, vals, tk, tv, h);
    merge_sort(c, keys + h, vals + h, tk, tv, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (less(c, keys[j], keys[i]))
            tk[k] = keys[j], tv[k++] = vals[j++];
        else
            tk[k] = keys[i], tv[k++] = vals[i++];
    }
    while (i < h) tk[k] = keys[i], tv[k++] = vals[i++];
    while (j < n) tk[k] = keys[j], tv[k++] = vals[j++];
    memcpy(keys, tk, n * sizeof *keys);
    memcpy(vals, tv, n * sizeof *vals);
}

/* Sorts vals by keys in place; reverse keeps stability like Python's sort(reverse=True). */
static int sort_by(jx_vm *vm, jv *keys, jv *vals, size_t n, int reverse) {
    jv *tk = jx_alloc(&vm->arena, (n + 1) * sizeof *tk),
       *tv = jx_alloc(&vm->arena, (n + 1) * sizeof *tv);
    if (!tk || !tv) return oom(vm);
    sort_ctx c = {vm, 0};
    if (jx_tick(vm, n * 20)) return -1;
    if (reverse) /* Python reverses, sorts stably, reverses again */
        for (size_t i = 0; i < n / 2; i++) {
            jv t = keys[i];
            keys[i] = keys[n - 1 - i];
            keys[n - 1 - i] = t;
            t = vals[i];
            vals[i] = vals[n - 1 - i];
            vals[n - 1 - i] = t;
        }
    merge_sort(&c, keys, vals, tk, tv, n);
    if (c.failed) return -1;
    if (reverse)
        for (size_t i = 0; i < n / 2; i++) {
            jv t = vals[i];
            vals[i] = vals[n - 1 - i];
            vals[n - 1 - i] = t;
        }
    return 0;
}

/* batch(linecount, fill_with): a generator of lists of linecount items. */
int jx_f_batch(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jlist *items, *res = jx_list_new(&vm->arena, JL_GEN, 0), *cur = NULL;
    if (!a->has[0] || a->v[0].type != JV_INT || a->v[0].u.i <= 0)
        return jx_fail(vm, "TypeError: batch() needs a positive line count");
    if (!res || jx_iterate(vm, in, &items)) return res ? -1 : oom(vm);
    size_t per = (size_t)a->v[0].u.i;
    for (size_t i = 0; i < items->n; i++) {
        if (!cur) {
            if (!(cur = jx_list_new(&vm->arena, JL_LIST, 0))) return oom(vm);
            jv lv = {JV_LIST, {.l = cur}};
            if (jx_list_push(&vm->arena, res, lv)) return oom(vm);
        }
        if (jx_list_push(&vm->arena, cur, items->v[i])) return oom(vm);
        if (cur->n == per) cur = NULL;
    }
    if (cur && a->has[1])
        while (cur->n < per)
            if (jx_list_push(&vm->arena, cur, a->v[1])) return oom(vm);
    return ret_list(res, out);
}

/* dictsort(case_sensitive, by, reverse): (key, value) pairs sorted by key or value. */
int jx_f_dictsort(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    if (in.type != JV_DICT || in.u.d->kind != JD_DICT)
        return jx_fail(vm, "TypeError: dictsort needs a mapping, got %s", jx_type_name(in));
    int by_value = 0;
    if (a->has[1]) {
        if (a->v[1].type == JV_STR && !strcmp(a->v[1].u.s->s, "value"))
            by_value = 1;
        else if (!(a->v[1].type == JV_STR && !strcmp(a->v[1].u.s->s, "key")))
            return jx_fail(vm,
                           "FilterArgumentError: You can only sort by either \"key\" or \"value\"");
    }
    jdict *d = in.u.d;
    jv *keys = jx_alloc(&vm->arena, (d->n + 1) * sizeof *keys),
       *vals = jx_alloc(&vm->arena, (d->n + 1) * sizeof *vals);
    jlist *l = jx_list_new(&vm->arena, JL_LIST, d->n);
    if (!keys || !vals || !l) return oom(vm);
    for (size_t i = 0; i < d->n; i++) {
        jlist *t = jx_list_new(&vm->arena, JL_TUPLE, 2);
        if (!t) return oom(vm);
        t->v[0] = d->k[i], t->v[1] = d->v[i], t->n = 2;
        vals[i].type = JV_LIST, vals[i].u.l = t;
        if (lower_key(vm, by_value ? d->v[i] : d->k[i], opt_bool(a, 0, 0), &keys[i])) return -1;
    }
    if (sort_by(vm, keys, vals, d->n, opt_bool(a, 2, 0))) return -1;
    memcpy(l->v, vals, d->n * sizeof *vals);
    l->n = d->n;
    return ret_list(l, out);
}

static int f_minmax(jx_vm *vm, jv in, fargs *a, int want_max, jv *out) {
    jlist *items;
    if (jx_iterate(vm, in, &items)) return -1;
    if (!items->n) {
        *out = jv_undef("No aggregated item, sequence was empty.");
        return 0;
    }
    size_t best = 0;
    jv bk = jv_none();
    for (size_t i = 0; i < items->n; i++) {
        jv k = items->v[i];
        if (a->has[1] && a->v[1].type != JV_NONE && jx_get_path(vm, k, a->v[1], &k)) return -1;
        if (lower_key(vm, k, opt_bool(a, 0, 0), &k)) return -1;
        int r = 0;
        if (i && jx_compare(vm, k, bk, want_max ? JOP_GT : JOP_LT, &r)) return -1;
        if (!i || r) best = i, bk = k;
    }
    *out = items->v[best];
    return 0;
}
/* max(case_sensitive, attribute): the largest item; Undefined when empty. */
int jx_f_max(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    return f_minmax(vm, in, a, 1, out);
}
/* min(case_sensitive, attribute): the smallest item; Undefined when empty. */
int jx_f_min(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    return f_minmax(vm, in, a, 0, out);
}

/* sort(reverse, case_sensitive, attribute): a new sorted list (stable). */
int jx_f_sort(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jlist *items;
    if (jx_iterate(vm, in, &items)) return -1;
    size_t n = items->n;
    jlist *l = jx_list_new(&vm->arena, JL_LIST, n);
    jv *keys = jx_alloc(&vm->arena, (n + 1) * sizeof *keys);
    if (!l || !keys) return oom(vm);
    for (size_t i = 0; i < n; i++) {
        jv k = items->v[i];
        if (a->has[2] && a->v[2].type != JV_NONE && jx_get_path(vm, k, a->v[2], &k)) return -1;
        if (lower_key(vm, k, opt_bool(a, 1, 0), &keys[i])) return -1;
        l->v[i] = items->v[i];
    }
    l->n = n;
    if (sort_by(vm, keys, l->v, n, opt_bool(a, 0, 0))) return -1;
    return ret_list(l, out);
}

/* sum(attribute, start): start + every item (or its attribute). */
int jx_f_sum(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jlist *items;
    if (jx_iterate(vm, in, &items)) return -1;
    jv acc = a->has[1] ? a->v[1] : jv_int(0);
    for (size_t i = 0; i < items->n; i++) {
        jv v = items->v[i];
        if (a->has[0] && a->v[0].type != JV_NONE && jx_get_path(vm, v, a->v[0], &v)) return -1;
        if (jx_binop(vm, JOP_ADD, acc, v, &acc)) return -1;
    }
    *out = acc;
    return 0;
}

/* unique(case_sensitive, attribute): a generator of first occurrences. */
int jx_f_unique(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jlist *items, *res, *seen;
    if (jx_iterate(vm, in, &items)) return -1;
    if (!(res = jx_list_new(&vm->arena, JL_GEN, items->n)) ||
        !(seen = jx_list_new(&vm->arena, JL_LIST, items->n)))
        return oom(vm);
    for (size_t i = 0; i < items->n; i++) {
        jv k = items->v[i];
        if (a->has[1] && a->v[1].type != JV_NONE && jx_get_path(vm, k, a->v[1], &k)) return -1;
        if (lower_key(vm, k, opt_bool(a, 0, 0), &k)) return -1;
        if (k.type == JV_LIST && k.u.l->kind != JL_TUPLE)
            return jx_fail(vm, "TypeError: unhashable type: 'list'");
        if (k.type == JV_DICT) return jx_fail(vm, "TypeError: unhashable type: 'dict'");
        int dup = 0;
        if (jx_tick(vm, seen->n)) return -1;
        for (size_t j = 0; j < seen->n && !dup; j++) dup = jx_equal(seen->v[j], k);
        if (dup) continue;
        seen->v[seen->n++] = k;
        res->v[res->n++] = items->v[i];
    }
    return ret_list(res, out);
}

/* groupby(attribute, default, case_sensitive): (grouper, list) named tuples
 * sorted by the grouper. */
int jx_f_groupby(jx_vm *vm, jv in, fargs *a, jstr **kn, jv *kv, size_t nk, jv *out) {
    (void)kn, (void)kv, (void)nk;
    jlist *items;
    if (!a->has[0]) return jx_fail(vm, "TypeError: groupby() needs an attribute");
    if (jx_iterate(vm, in, &items)) return -1;
    size_t n = items->n;
    jv *keys = jx_alloc(&vm->arena, (n + 1) * sizeof *keys),
       *vals = jx_alloc(&vm->arena, (n + 1) * sizeof *vals);
    jv *raw = jx_alloc(&vm->arena, (n + 1) * sizeof *raw);
    jlist *res = jx_list_new(&vm->arena, JL_LIST, 0);
    if (!keys || !vals || !raw || !res) return oom(vm);
    for (size_t i = 0; i < n; i++) {
        jv k;
        if (jx_get_path(vm, items->v[i], a->v[0], &k)) return -1;
        if (k.type == JV_UNDEF && a->has[1]) k = a->v[1];
        if (lower_key(vm, k, opt_bool(a, 2, 0), &keys[i])) return -1;
        jlist *pair = jx_list_new(&vm->arena, JL_TUPLE, 2);
        if (!pair) return oom(vm);
        pair->v[0] = k, pair->v[1] = items->v[i], pair->n = 2;
        vals[i].type = JV_LIST, vals[i].u.l = pair;
    }
    if (sort_by(vm, keys, vals, n, 0)) return -1;
    for (size_t i = 0; i < n;) {
        jlist *group = jx_list_new(&vm->arena, JL_LIST, 0),
              *t = jx_list_new(&vm->arena, JL_TUPLE, 2);
        if (!group || !t) return oom(vm);
        size_t j = i;
        while (j < n && jx_equal(keys[j], keys[i])) {
            if (jx_list_push(&vm->arena, group, vals[j].u.l->v[1])) return oom(vm);
            j++;
        }
        t->v[0] = vals[i].u.l->v[0];
        t->v[1].type = JV_LIST, t->v[1].u.l = group;
        t->n = 2;
        t->group = 1;
        jv tv = {JV_LIST, {.l = t}};
        if (jx_list_push(&vm->arena, res, tv)) return oom(vm);
        i = j;
    }
    return ret_list(res, out);
}
