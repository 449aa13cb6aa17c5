/*
 * template.c - the public chat-template API (template.h) over the Jinja
 * interpreter (jinja_*.c): parse = lex + parse into an immutable AST owned
 * by the template; render = convert the jansson context into values, run
 * the AST with a fresh arena and limits, append the text on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/util.h"
#include "tok/jinja_int.h"
#include "tok/template.h"

struct chat_template {
    jx_arena arena; /* tokens and AST */
    jnode *root;
};

/* ChatML, the default for models without a template. Content may be a
 * string or a list of OpenAI content parts (their text parts are joined). */
static const char chatml_source[] =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
    "{%- if message['content'] is string -%}\n"
    "{{- message['content'] -}}\n"
    "{%- elif message['content'] is iterable -%}\n"
    "{%- for part in message['content'] -%}\n"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";

/* See template.h. */
const char *chat_template_default_source(void) {
    return chatml_source;
}

/* See template.h. */
int chat_template_parse(const char *src, size_t len, chat_template **out, char *err,
                        size_t err_size) {
    if (!out) return err_set(err, err_size, INFERD_EINVAL, "chat template: NULL output handle");
    *out = NULL;
    if (err && err_size) err[0] = 0;
    if (!src && len) return err_set(err, err_size, INFERD_EINVAL, "chat template: NULL source");
    if (len > JX_MAX_SOURCE_BYTES)
        return err_set(err, err_size, INFERD_ETOOLONG,
                       "TemplateSyntaxError: template is %zu bytes, over the %u-byte limit", len,
                       JX_MAX_SOURCE_BYTES);
    chat_template *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, err_size, INFERD_ENOMEM, "chat template: out of memory");
    t->arena.limit_bytes = JX_MAX_MEMORY_BYTES;
    jtok *toks;
    size_t n_toks;
    char tmp[512] = "";
    if (jx_lex(src ? src : "", len, &t->arena, &toks, &n_toks, tmp, sizeof tmp) ||
        jx_parse(toks, n_toks, &t->arena, &t->root, tmp, sizeof tmp)) {
        int code = t->arena.over && !tmp[0] ? INFERD_ENOMEM : INFERD_EFORMAT;
        err_set(err, err_size, code, "%s",
                tmp[0] ? tmp : "TemplateSyntaxError: template too large (out of memory)");
        chat_template_free(t);
        return code;
    }
    *out = t;
    return 0;
}

/* See template.h. */
void chat_template_free(chat_template *t) {
    if (!t) return;
    jx_arena_free(&t->arena);
    free(t);
}

/* Deep-copies a JSON value into the render arena. */
static int from_json(jx_vm *vm, const json_t *j, jv *out, int depth) {
    if (depth > JX_MAX_VALUE_DEPTH)
        return jx_fail(vm, "ValueError: context nested deeper than %d levels", JX_MAX_VALUE_DEPTH);
    switch (json_typeof(j)) {
    case JSON_NULL:
        *out = jv_none();
        return 0;
    case JSON_TRUE:
        *out = jv_bool(1);
        return 0;
    case JSON_FALSE:
        *out = jv_bool(0);
        return 0;
    case JSON_INTEGER:
        *out = jv_int((int64_t)json_integer_value(j));
        return 0;
    case JSON_REAL:
        *out = jv_float(json_real_value(j));
        return 0;
    case JSON_STRING:
        return jx_str(vm, json_string_value(j), json_string_length(j), out);
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jlist *l = jx_list_new(&vm->arena, JL_LIST, n);
        if (!l) return jx_fail(vm, "MemoryError: context too large");
        for (size_t i = 0; i < n; i++)
            if (from_json(vm, json_array_get(j, i), &l->v[l->n++], depth + 1)) return -1;
        out->type = JV_LIST, out->u.l = l;
        return 0;
    }
    case JSON_OBJECT: {
        jdict *d = jx_dict_new(&vm->arena, JD_DICT);
        const char *key;
        json_t *val;
        if (!d) return jx_fail(vm, "MemoryError: context too large");
        json_object_foreach((json_t *)j, key, val) {
            jv k, v;
            if (jx_str(vm, key, strlen(key), &k) || from_json(vm, val, &v, depth + 1)) return -1;
            if (jx_dict_set(&vm->arena, d, k, v))
                return jx_fail(vm, "MemoryError: context too large");
        }
        out->type = JV_DICT, out->u.d = d;
        return 0;
    }
    default:
        *out = jv_none();
        return 0;
    }
}

/* The renders of template.h: strftime_now() at now_s, budget_ms of wall
 * clock (0: JX_MAX_RENDER_MS, and never more than that). */
static int render(const chat_template *t, const json_t *ctx, int64_t now_s, unsigned budget_ms,
                  buf *out, char *err, size_t err_size) {
    char tmp[1024] = "";
    buf text = BUF_INIT;
    jx_vm vm;
    memset(&vm, 0, sizeof vm);
    vm.arena.limit_bytes = JX_MAX_MEMORY_BYTES;
    vm.err = tmp;
    vm.err_size = sizeof tmp;
    vm.out = &text;
    vm.now_s = now_s;
    if (budget_ms == 0 || budget_ms > JX_MAX_RENDER_MS) budget_ms = JX_MAX_RENDER_MS;
    vm.budget_ms = budget_ms;
    vm.deadline_s = time_now_s() + budget_ms / 1000.0;
    int rc = -1;
    if (!out) {
        jx_fail(&vm, "ValueError: no output buffer");
        goto done;
    }
    if (!t || !t->root) {
        jx_fail(&vm, "ValueError: no template");
        goto done;
    }
    if (ctx && !json_is_object(ctx)) {
        jx_fail(&vm, "TypeError: the template context must be a JSON object");
        goto done;
    }
    jv g;
    if (ctx) {
        if (from_json(&vm, ctx, &g, 0)) goto done;
    } else if (!(g.u.d = jx_dict_new(&vm.arena, JD_DICT))) {
        jx_fail(&vm, "MemoryError: out of memory");
        goto done;
    }
    vm.globals = g.u.d;
    vm.root = jx_frame_new(&vm, NULL);
    if (!vm.root) {
        jx_fail(&vm, "MemoryError: out of memory");
        goto done;
    }
    rc = jx_exec(&vm, t->root, vm.root) == JX_ERR ? -1 : 0;
    if (!rc && text.oom) rc = -1, jx_fail(&vm, "MemoryError: out of memory writing the output");
done:
    if (rc) {
        if (!tmp[0])
            snprintf(tmp, sizeof tmp, "MemoryError: the render used more than %u MiB",
                     JX_MAX_MEMORY_BYTES >> 20);
        int code = strncmp(tmp, "MemoryError", 11) ? INFERD_EINVAL : INFERD_ENOMEM;
        err_set(err, err_size, code, "%s", tmp);
        rc = code;
    } else if (buf_append(out, text.data ? text.data : "", text.len)) {
        /* always appends, so out->data is a string even for an empty rendering */
        rc = err_set(err, err_size, INFERD_ENOMEM,
                     "MemoryError: out of memory appending the output");
    }
    buf_free(&text);
    jx_arena_free(&vm.arena);
    return rc;
}

/* See template.h. */
int chat_template_render_at(const chat_template *t, const json_t *ctx, int64_t now_s, buf *out,
                            char *err, size_t err_size) {
    return render(t, ctx, now_s, 0, out, err, err_size);
}

/* See template.h. */
int chat_template_render(const chat_template *t, const json_t *ctx, buf *out, char *err,
                         size_t err_size) {
    return render(t, ctx, (int64_t)time(NULL), 0, out, err, err_size);
}

/* See template.h. */
int chat_template_render_budget(const chat_template *t, const json_t *ctx, unsigned budget_ms,
                                buf *out, char *err, size_t err_size) {
    return render(t, ctx, (int64_t)time(NULL), budget_ms, out, err, err_size);
}
