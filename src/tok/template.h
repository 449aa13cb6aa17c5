/*
 * template.h - chat templates: a sandboxed Jinja interpreter for the subset
 * real chat templates use, with the semantics of HF transformers' renderer
 * (jinja2 ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
 * loopcontrols, tojson = json.dumps(ensure_ascii=False), raise_exception,
 * strftime_now). docs/chat-templates.md lists the syntax, filters, tests,
 * methods and limits.
 *
 * A parsed template is immutable: several threads may render it at once.
 */
#ifndef TOK_TEMPLATE_H
#define TOK_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct chat_template chat_template;

/* Parses src (len bytes, any content) into *out (owned by the caller, freed
 * with chat_template_free). Returns 0, or a negative INFERD_E* code with a
 * message in err ("TemplateSyntaxError: ... (line N)"); *out is then NULL. */
int chat_template_parse(const char *src, size_t len, chat_template **out, char *err,
                        size_t err_size);

/* Frees a template; accepts NULL. */
void chat_template_free(chat_template *t);

/* ctx: a jansson object of the template's variables (messages, tools,
 * documents, add_generation_prompt, bos_token, eos_token, ...), borrowed.
 * Appends the rendering to out. On raise_exception or a runtime error returns
 * a negative INFERD_E* code with the message in err ("TemplateError: ...",
 * "TypeError: ...", "UndefinedError: ...") and out unchanged.
 * On success out->data is non-NULL (NUL-terminated) even when the rendering
 * is empty. strftime_now() reads the current UTC time. */
int chat_template_render(const chat_template *t, const json_t *ctx, buf *out, char *err,
                         size_t err_size);

/* chat_template_render with strftime_now() fixed at now_s (UTC seconds since
 * the epoch), for reproducible renderings. */
int chat_template_render_at(const chat_template *t, const json_t *ctx, int64_t now_s, buf *out,
                            char *err, size_t err_size);

/* chat_template_render with a wall-clock budget of budget_ms (0 or more
 * than the default 10 s: the default); past it the render fails with
 * "TimeoutError: the render took longer than N ms" (INFERD_EINVAL). For
 * callers that must not be held long, such as the server's loop thread. */
int chat_template_render_budget(const chat_template *t, const json_t *ctx, unsigned budget_ms,
                                buf *out, char *err, size_t err_size);

/* The documented default for models without a template: ChatML. */
const char *chat_template_default_source(void);

#endif
