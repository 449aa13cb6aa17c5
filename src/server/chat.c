/*
 * chat.c - chat messages -> prompt text with the model's chat template
 * (GGUF tokenizer.chat_template, or --chat-template FILE, or ChatML when the
 * model has none), rendered by the Jinja interpreter of tok/template.h with
 * the variables Hugging Face passes: messages, tools, add_generation_prompt,
 * bos_token, eos_token, plus chat_template_kwargs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "base/util.h"
#include "engine/engine.h"
#include "server/server_int.h"
#include "tok/template.h"
#include "tok/tokenizer.h"

#define CHAT_TEMPLATE_MAX_BYTES (1u << 20)
/* Renders run on the loop thread: a template that takes longer than this is
 * refused (400) rather than stalling every other client. */
#define CHAT_RENDER_BUDGET_MS 1000u

static char *token_text(const tokenizer *t, int32_t id) {
    size_t len = 0;
    const char *s = id >= 0 ? tok_text(t, id, &len) : NULL;
    return s ? strndup(s, len) : strdup("");
}

int chat_setup(server *s, char *err, size_t err_size) {
    char *file = NULL;
    size_t len = 0;
    const char *src = NULL, *origin = "default (ChatML)";
    if (s->p.chat_template_path) {
        char ferr[300] = "";
        int rc = file_read_all(s->p.chat_template_path, CHAT_TEMPLATE_MAX_BYTES, &file, &len, ferr, sizeof ferr);
        if (rc) return err_set(err, err_size, rc, "--chat-template: %s", ferr);
        src = file;
        origin = s->p.chat_template_path;
    } else if ((src = engine_chat_template(s->engine)) != NULL) {
        len = strlen(src);
        origin = "the model (tokenizer.chat_template)";
    } else {
        src = chat_template_default_source();
        len = strlen(src);
    }
    char terr[400] = "";
    int rc = chat_template_parse(src, len, &s->tmpl, terr, sizeof terr);
    free(file);
    if (rc && s->p.chat_template_path)
        return err_set(err, err_size, rc, "chat template from %s: %s", origin, terr);
    if (rc) {
        /* The model's own template uses something the interpreter does not
         * know: serve with the documented default rather than not at all. */
        log_warn("chat template from %s cannot be used (%s); using the default (ChatML)", origin, terr);
        origin = "default (ChatML)";
        src = chat_template_default_source();
        rc = chat_template_parse(src, strlen(src), &s->tmpl, terr, sizeof terr);
        if (rc) return err_set(err, err_size, rc, "default chat template: %s", terr);
    }
    s->bos_token = token_text(s->tok, tok_bos(s->tok));
    s->eos_token = token_text(s->tok, tok_eos(s->tok));
    if (!s->bos_token || !s->eos_token) return err_set(err, err_size, INFERD_ENOMEM, "chat: out of memory");
    log_info("chat template: %s", origin);
    return 0;
}

void chat_teardown(server *s) {
    chat_template_free(s->tmpl);
    s->tmpl = NULL;
    free(s->bos_token);
    free(s->eos_token);
    s->bos_token = s->eos_token = NULL;
}

int chat_render(server *s, json_t *messages, json_t *tools, json_t *kwargs, int add_generation_prompt,
                buf *out, char *err, size_t err_size) {
    json_t *ctx = kwargs ? json_copy(kwargs) : json_object();
    if (!ctx) return err_set(err, err_size, INFERD_ENOMEM, "chat: out of memory");
    json_object_set(ctx, "messages", messages);
    json_object_set_new(ctx, "tools", tools ? json_incref(tools) : json_null());
    /* transformers passes documents=None when the caller gives none
     * (Command-R templates test it). */
    if (!json_object_get(ctx, "documents")) json_object_set_new(ctx, "documents", json_null());
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_generation_prompt));
    json_object_set_new(ctx, "bos_token", json_string(s->bos_token ? s->bos_token : ""));
    json_object_set_new(ctx, "eos_token", json_string(s->eos_token ? s->eos_token : ""));
    char terr[400] = "";
    int rc = chat_template_render_budget(s->tmpl, ctx, CHAT_RENDER_BUDGET_MS, out, terr, sizeof terr);
    json_decref(ctx);
    if (rc) return err_set(err, err_size, INFERD_EINVAL, "the chat template failed: %s", terr);
    return 0;
}

int chat_tokenize(server *s, json_t *messages, json_t *tools, json_t *kwargs, int add_generation_prompt,
                  int32_t **ids, size_t *n_ids, char *err, size_t err_size) {
    *ids = NULL;
    *n_ids = 0;
    buf text = BUF_INIT;
    int rc = chat_render(s, messages, tools, kwargs, add_generation_prompt, &text, err, err_size);
    if (rc) {
        buf_free(&text);
        return rc;
    }
    /* Templates usually write BOS themselves; add it only when missing. */
    const char *t = text.data ? text.data : "";
    size_t bl = s->bos_token ? strlen(s->bos_token) : 0;
    int add = !(bl && text.len >= bl && !memcmp(t, s->bos_token, bl));
    rc = inferd_tokenize(s->engine, t, text.len, add, 1, ids, n_ids);
    buf_free(&text);
    if (rc) return err_set(err, err_size, INFERD_EINTERNAL, "tokenization of the rendered chat failed");
    return 0;
}
