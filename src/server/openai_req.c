/*
 * openai_req.c - turns an OpenAI request body into an oai_request (see
 * openai_req.h): JSON parse, then one checker per field. Every failure names
 * the field and the value that was wrong, so that clients can fix the call.
 */
#include "server/openai_req.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int fail(oai_error *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(oai_error *e, const char *param, const char *fmt, ...) {
    e->status = 400;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return INFERD_EINVAL;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

json_t *oai_parse_object(const char *body, size_t len, oai_error *e) {
    json_error_t je;
    memset(e, 0, sizeof *e);
    if (len == 0) {
        fail(e, NULL, "the request body is empty; expected a JSON object");
        return NULL;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        fail(e, NULL, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        fail(e, NULL, "the request body must be a JSON object, not %s", type_name(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Field getters: absent or null leaves *out unchanged and returns 0. */
static int get_bool(json_t *o, const char *k, int *out, oai_error *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return fail(e, k, "'%s' must be a boolean, not %s", k, type_name(v));
    *out = json_is_true(v);
    return 0;
}

static int get_num(json_t *o, const char *k, double lo, double hi, float *out, oai_error *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return fail(e, k, "'%s' must be a number, not %s", k, type_name(v));
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return fail(e, k, "'%s' is %g; it must be between %g and %g", k, d, lo, hi);
    *out = (float)d;
    return 0;
}

static int get_int(json_t *o, const char *k, long long lo, long long hi, long long *out,
                   int *given, oai_error *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    long long x;
    if (json_is_integer(v)) x = json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v) &&
             fabs(json_real_value(v)) < 9e15)
        x = (long long)json_real_value(v);
    else return fail(e, k, "'%s' must be an integer, not %s", k, type_name(v));
    if (x < lo || x > hi) return fail(e, k, "'%s' is %lld; it must be between %lld and %lld", k, x, lo, hi);
    *out = x;
    if (given) *given = 1;
    return 0;
}

static int get_string(json_t *o, const char *k, char **out, oai_error *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return fail(e, k, "'%s' must be a string, not %s", k, type_name(v));
    *out = strdup(json_string_value(v));
    if (!*out) return fail(e, k, "out of memory");
    return 0;
}

static int token_id(json_t *v, int32_t *out) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > INT32_MAX) return -1;
    *out = (int32_t)x;
    return 0;
}

static int parse_ids(json_t *arr, const char *param, oai_prompt *p, oai_error *e) {
    size_t n = json_array_size(arr);
    if (n == 0) return fail(e, param, "'%s' has an empty list of token ids", param);
    p->ids = malloc(n * sizeof *p->ids);
    if (!p->ids) return fail(e, param, "out of memory");
    p->n_ids = n;
    for (size_t i = 0; i < n; i++)
        if (token_id(json_array_get(arr, i), &p->ids[i]))
            return fail(e, param, "'%s' item %zu is not a token id (a non-negative integer)", param, i);
    return 0;
}

static int parse_prompt(json_t *o, oai_request *r, oai_error *e) {
    json_t *v = json_object_get(o, "prompt");
    if (!v || json_is_null(v)) return fail(e, "prompt", "'prompt' is required");
    if (json_is_string(v)) {
        r->prompts = calloc(1, sizeof *r->prompts);
        if (!r->prompts) return fail(e, "prompt", "out of memory");
        r->n_prompts = 1;
        r->prompts[0].text_len = json_string_length(v);
        r->prompts[0].text = malloc(r->prompts[0].text_len + 1);
        if (!r->prompts[0].text) return fail(e, "prompt", "out of memory");
        memcpy(r->prompts[0].text, json_string_value(v), r->prompts[0].text_len + 1);
        return 0;
    }
    if (!json_is_array(v))
        return fail(e, "prompt", "'prompt' must be a string, a list of strings or token ids, not %s",
                    type_name(v));
    size_t n = json_array_size(v);
    if (n == 0) return fail(e, "prompt", "'prompt' is an empty list");
    json_t *first = json_array_get(v, 0);
    if (json_is_integer(first)) { /* one prompt of token ids */
        r->prompts = calloc(1, sizeof *r->prompts);
        if (!r->prompts) return fail(e, "prompt", "out of memory");
        r->n_prompts = 1;
        return parse_ids(v, "prompt", &r->prompts[0], e);
    }
    if (n > OAI_MAX_PROMPTS)
        return fail(e, "prompt", "'prompt' has %zu prompts; at most %d are accepted", n, OAI_MAX_PROMPTS);
    r->prompts = calloc(n, sizeof *r->prompts);
    if (!r->prompts) return fail(e, "prompt", "out of memory");
    r->n_prompts = n;
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(v, i);
        oai_prompt *p = &r->prompts[i];
        if (json_is_string(it)) {
            p->text_len = json_string_length(it);
            p->text = malloc(p->text_len + 1);
            if (!p->text) return fail(e, "prompt", "out of memory");
            memcpy(p->text, json_string_value(it), p->text_len + 1);
        } else if (json_is_array(it)) {
            if (parse_ids(it, "prompt", p, e)) return INFERD_EINVAL;
        } else {
            return fail(e, "prompt", "'prompt' item %zu must be a string or a list of token ids, not %s",
                        i, type_name(it));
        }
    }
    return 0;
}

/* Chat content: a string, null, or a list of {"type":"text","text":...}
 * parts (joined with "\n"). Returns a new string value or json null. */
static json_t *normalize_content(json_t *c, size_t idx, oai_error *e) {
    if (!c || json_is_null(c)) return json_null();
    if (json_is_string(c)) return json_incref(c);
    if (!json_is_array(c)) {
        fail(e, "messages", "'messages' item %zu: 'content' must be a string or a list of parts, not %s",
             idx, type_name(c));
        return NULL;
    }
    size_t n = json_array_size(c), total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *part = json_array_get(c, i);
        json_t *type = json_object_get(part, "type");
        json_t *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") ||
            !json_is_string(text)) {
            fail(e, "messages",
                 "'messages' item %zu: content part %zu must be {\"type\":\"text\",\"text\":...}; "
                 "only text content is supported",
                 idx, i);
            return NULL;
        }
        total += json_string_length(text) + 1;
    }
    char *s = malloc(total + 1), *p = s;
    if (!s) {
        fail(e, "messages", "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *text = json_object_get(json_array_get(c, i), "text");
        if (i) *p++ = '\n';
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    json_t *out = json_stringn_nocheck(s, (size_t)(p - s));
    free(s);
    if (!out) fail(e, "messages", "out of memory");
    return out;
}

static int parse_messages(json_t *o, oai_request *r, oai_error *e) {
    json_t *v = json_object_get(o, "messages");
    if (!v || json_is_null(v)) return fail(e, "messages", "'messages' is required");
    if (!json_is_array(v)) return fail(e, "messages", "'messages' must be a list, not %s", type_name(v));
    size_t n = json_array_size(v);
    if (n == 0) return fail(e, "messages", "'messages' is an empty list");
    r->messages = json_array();
    if (!r->messages) return fail(e, "messages", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i);
        if (!json_is_object(m))
            return fail(e, "messages", "'messages' item %zu must be an object, not %s", i, type_name(m));
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role) || json_string_length(role) == 0)
            return fail(e, "messages", "'messages' item %zu needs a 'role' string", i);
        json_t *copy = json_copy(m);
        json_t *content = normalize_content(json_object_get(m, "content"), i, e);
        if (!copy || !content) {
            json_decref(copy);
            json_decref(content);
            return content ? fail(e, "messages", "out of memory") : INFERD_EINVAL;
        }
        json_object_set_new(copy, "content", content);
        json_array_append_new(r->messages, copy);
    }
    return 0;
}

static int parse_stop(json_t *o, oai_request *r, oai_error *e) {
    json_t *v = json_object_get(o, "stop");
    if (!v || json_is_null(v)) return 0;
    size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_string(v) && !json_is_array(v))
        return fail(e, "stop", "'stop' must be a string or a list of strings, not %s", type_name(v));
    if (n > OAI_MAX_STOP)
        return fail(e, "stop", "'stop' has %zu strings; at most %d are accepted", n, OAI_MAX_STOP);
    r->stop = calloc(n ? n : 1, sizeof *r->stop);
    if (!r->stop) return fail(e, "stop", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_string(v) ? v : json_array_get(v, i);
        if (!json_is_string(s))
            return fail(e, "stop", "'stop' item %zu must be a string, not %s", i, type_name(s));
        size_t len = json_string_length(s);
        if (len == 0) return fail(e, "stop", "'stop' item %zu is an empty string", i);
        if (len > OAI_MAX_STOP_BYTES)
            return fail(e, "stop", "'stop' item %zu is %zu bytes; at most %d are accepted", i, len,
                        OAI_MAX_STOP_BYTES);
        if (memchr(json_string_value(s), 0, len))
            return fail(e, "stop", "'stop' item %zu contains a NUL character", i);
        r->stop[i] = strdup(json_string_value(s));
        if (!r->stop[i]) return fail(e, "stop", "out of memory");
        r->n_stop++;
    }
    return 0;
}

static int parse_logit_bias(json_t *o, oai_request *r, oai_error *e) {
    json_t *v = json_object_get(o, "logit_bias");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v))
        return fail(e, "logit_bias", "'logit_bias' must be an object of token id -> bias, not %s",
                    type_name(v));
    size_t n = json_object_size(v);
    if (n > OAI_MAX_LOGIT_BIAS)
        return fail(e, "logit_bias", "'logit_bias' has %zu entries; at most %d are accepted", n,
                    OAI_MAX_LOGIT_BIAS);
    r->bias_ids = malloc((n ? n : 1) * sizeof *r->bias_ids);
    r->bias_values = malloc((n ? n : 1) * sizeof *r->bias_values);
    if (!r->bias_ids || !r->bias_values) return fail(e, "logit_bias", "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        char *end;
        long long id = strtoll(key, &end, 10);
        if (!*key || *end || id < 0 || id > INT32_MAX || key[0] == '+' || key[0] == ' ')
            return fail(e, "logit_bias", "'logit_bias' key '%.40s' is not a token id", key);
        if (!json_is_number(val))
            return fail(e, "logit_bias", "'logit_bias' value of token %lld must be a number, not %s", id,
                        type_name(val));
        double b = json_number_value(val);
        if (!(b >= -100 && b <= 100))
            return fail(e, "logit_bias", "'logit_bias' value of token %lld is %g; it must be between -100 and 100",
                        id, b);
        r->bias_ids[r->n_bias] = (int32_t)id;
        r->bias_values[r->n_bias] = (float)b;
        r->n_bias++;
    }
    return 0;
}

static int parse_logprobs(json_t *o, oai_request *r, oai_error *e) {
    long long k = -1;
    if (!r->chat) {
        json_t *v = json_object_get(o, "logprobs");
        if (v && json_is_boolean(v))
            return fail(e, "logprobs", "'logprobs' must be an integer (0-%d) for completions, not a boolean",
                        OAI_MAX_LOGPROBS);
        if (get_int(o, "logprobs", 0, OAI_MAX_LOGPROBS, &k, NULL, e)) return INFERD_EINVAL;
        r->logprobs = (int)k;
        return 0;
    }
    int want = 0, given = 0;
    if (get_bool(o, "logprobs", &want, e)) return INFERD_EINVAL;
    if (get_int(o, "top_logprobs", 0, OAI_MAX_LOGPROBS, &k, &given, e)) return INFERD_EINVAL;
    if (given && !want)
        return fail(e, "top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    r->logprobs = want ? (given ? (int)k : 0) : -1;
    return 0;
}

int oai_request_parse(const char *body, size_t len, int chat, oai_request *r, oai_error *e) {
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    r->chat = chat;
    r->logprobs = -1;
    r->add_generation_prompt = 1;
    r->sp = inferd_sampling_default_params();
    r->sp.max_tokens = chat ? 0 : 16;
    json_t *o = oai_parse_object(body, len, e);
    if (!o) return INFERD_EINVAL;
    long long x;
    int given = 0;
    if (get_string(o, "model", &r->model, e)) goto fail;
    if (chat) {
        if (parse_messages(o, r, e)) goto fail;
        json_t *tools = json_object_get(o, "tools");
        if (tools && !json_is_null(tools)) {
            if (!json_is_array(tools)) {
                fail(e, "tools", "'tools' must be a list, not %s", type_name(tools));
                goto fail;
            }
            r->tools = json_incref(tools);
        }
        json_t *kw = json_object_get(o, "chat_template_kwargs");
        if (kw && !json_is_null(kw)) {
            if (!json_is_object(kw)) {
                fail(e, "chat_template_kwargs", "'chat_template_kwargs' must be an object, not %s",
                     type_name(kw));
                goto fail;
            }
            r->template_kwargs = json_incref(kw);
        }
        if (get_bool(o, "add_generation_prompt", &r->add_generation_prompt, e)) goto fail;
    } else {
        if (parse_prompt(o, r, e)) goto fail;
        if (get_bool(o, "echo", &r->echo, e)) goto fail;
    }
    if (get_bool(o, "stream", &r->stream, e)) goto fail;
    json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            fail(e, "stream_options", "'stream_options' must be an object, not %s", type_name(so));
            goto fail;
        }
        if (!r->stream) {
            fail(e, "stream_options", "'stream_options' is only allowed when 'stream' is true");
            goto fail;
        }
        json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_null(iu) && !json_is_boolean(iu)) {
            fail(e, "stream_options", "'stream_options.include_usage' must be a boolean, not %s",
                 type_name(iu));
            goto fail;
        }
        r->include_usage = json_is_true(iu);
    }
    if (get_int(o, "max_tokens", 1, 1 << 24, &x, &given, e)) goto fail;
    if (given) r->sp.max_tokens = (uint32_t)x;
    if (chat) {
        int g2 = 0;
        if (get_int(o, "max_completion_tokens", 1, 1 << 24, &x, &g2, e)) goto fail;
        if (g2) r->sp.max_tokens = (uint32_t)x;
        given |= g2;
    }
    r->max_tokens_given = given;
    given = 0;
    if (get_int(o, "n", 1, OAI_MAX_N, &x, &given, e)) goto fail;
    if (given) r->sp.n = (uint32_t)x;
    given = 0;
    if (get_int(o, "seed", INT64_MIN, INT64_MAX, &x, &given, e)) goto fail;
    if (given) {
        r->sp.seed = (uint64_t)x;
        r->sp.has_seed = 1;
    }
    if (get_num(o, "temperature", 0, 100, &r->sp.temperature, e)) goto fail;
    if (get_num(o, "top_p", 0, 1, &r->sp.top_p, e)) goto fail;
    if (r->sp.top_p <= 0) {
        fail(e, "top_p", "'top_p' is 0; it must be greater than 0 and at most 1");
        goto fail;
    }
    given = 0;
    if (get_int(o, "top_k", -1, 1 << 30, &x, &given, e)) goto fail;
    if (given) r->sp.top_k = x == 0 ? -1 : (int32_t)x;
    if (get_num(o, "min_p", 0, 1, &r->sp.min_p, e)) goto fail;
    if (get_num(o, "presence_penalty", -2, 2, &r->sp.presence_penalty, e)) goto fail;
    if (get_num(o, "frequency_penalty", -2, 2, &r->sp.frequency_penalty, e)) goto fail;
    if (get_num(o, "repetition_penalty", 0, 100, &r->sp.repetition_penalty, e)) goto fail;
    if (r->sp.repetition_penalty <= 0) {
        fail(e, "repetition_penalty", "'repetition_penalty' is 0; it must be greater than 0");
        goto fail;
    }
    if (get_bool(o, "ignore_eos", &r->sp.ignore_eos, e)) goto fail;
    if (get_string(o, "user", &r->user, e)) goto fail;
    if (parse_stop(o, r, e)) goto fail;
    if (parse_logit_bias(o, r, e)) goto fail;
    if (parse_logprobs(o, r, e)) goto fail;
    if (r->echo && r->logprobs >= 0) {
        fail(e, "echo", "'echo' together with 'logprobs' is not supported (no prompt logprobs)");
        goto fail;
    }
    r->sp.logprobs = r->logprobs;
    r->sp.stop = (const char *const *)r->stop;
    r->sp.n_stop = r->n_stop;
    r->sp.logit_bias_ids = r->bias_ids;
    r->sp.logit_bias_values = r->bias_values;
    r->sp.n_logit_bias = r->n_bias;
    json_decref(o);
    return 0;
fail:
    json_decref(o);
    oai_request_free(r);
    r->chat = chat;
    return INFERD_EINVAL;
}

void oai_request_free(oai_request *r) {
    free(r->model);
    for (size_t i = 0; i < r->n_prompts; i++) {
        free(r->prompts[i].text);
        free(r->prompts[i].ids);
    }
    free(r->prompts);
    json_decref(r->messages);
    json_decref(r->tools);
    json_decref(r->template_kwargs);
    for (size_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    free(r->bias_ids);
    free(r->bias_values);
    free(r->user);
    memset(r, 0, sizeof *r);
}
