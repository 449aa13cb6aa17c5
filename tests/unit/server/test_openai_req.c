/*
 * test_openai_req.c - validation of OpenAI request bodies
 * (src/server/openai_req.c): defaults, every accepted shape of prompt, stop,
 * logprobs and logit_bias, and errors that name the offending field.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "server/openai_req.h"

static oai_request req;
static oai_error err;

static int parse(const char *body, int chat) { return oai_request_parse(body, strlen(body), chat, &req, &err); }

static void expect_error(const char *body, int chat, const char *param) {
    int rc = parse(body, chat);
    cr_assert_eq(rc, INFERD_EINVAL, "accepted %s", body);
    cr_assert_eq(err.status, 400);
    cr_assert_str_eq(err.param, param, "body %s: param '%s' (%s)", body, err.param, err.msg);
    cr_assert(strlen(err.msg) > 0);
    cr_assert_null(req.prompts);
    cr_assert_null(req.messages);
}

Test(openai_req, completions_defaults) {
    cr_assert_eq(parse("{\"prompt\":\"hi\"}", 0), 0, "%s", err.msg);
    cr_assert_eq(req.n_prompts, 1);
    cr_assert_str_eq(req.prompts[0].text, "hi");
    cr_assert_eq(req.sp.max_tokens, 16);
    cr_assert_float_eq(req.sp.temperature, 1.0f, 1e-6);
    cr_assert_eq(req.sp.n, 1);
    cr_assert_eq(req.logprobs, -1);
    cr_assert_eq(req.stream, 0);
    cr_assert_null(req.model);
    oai_request_free(&req);
}

Test(openai_req, chat_defaults_and_content_parts) {
    const char *b = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                    "{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":null}]}";
    cr_assert_eq(parse(b, 1), 0, "%s", err.msg);
    cr_assert_str_eq(req.model, "m");
    cr_assert_eq(req.sp.max_tokens, 0, "chat defaults to the rest of the context");
    cr_assert_eq(req.add_generation_prompt, 1);
    cr_assert_eq(json_array_size(req.messages), 2);
    json_t *c0 = json_object_get(json_array_get(req.messages, 0), "content");
    cr_assert_str_eq(json_string_value(c0), "a\nb");
    cr_assert(json_is_null(json_object_get(json_array_get(req.messages, 1), "content")));
    oai_request_free(&req);
}

Test(openai_req, prompt_shapes) {
    cr_assert_eq(parse("{\"prompt\":[1,2,3]}", 0), 0);
    cr_assert_eq(req.n_prompts, 1);
    cr_assert_eq(req.prompts[0].n_ids, 3);
    cr_assert_eq(req.prompts[0].ids[2], 3);
    oai_request_free(&req);
    cr_assert_eq(parse("{\"prompt\":[\"a\",[5,6],\"b\"]}", 0), 0);
    cr_assert_eq(req.n_prompts, 3);
    cr_assert_str_eq(req.prompts[0].text, "a");
    cr_assert_eq(req.prompts[1].n_ids, 2);
    cr_assert_str_eq(req.prompts[2].text, "b");
    oai_request_free(&req);
    /* JSON strings with NUL characters are refused by the parser (400). */
    expect_error("{\"prompt\":\"a\\u0000b\"}", 0, "");
}

Test(openai_req, sampling_fields) {
    const char *b = "{\"prompt\":\"x\",\"max_tokens\":7,\"temperature\":0,\"top_p\":0.5,\"top_k\":40,\"min_p\":0.1,"
                    "\"presence_penalty\":1,\"frequency_penalty\":-1,\"repetition_penalty\":1.2,\"seed\":-3,"
                    "\"n\":3,\"ignore_eos\":true,\"user\":\"u\",\"stop\":[\"a\",\"bc\"],\"logprobs\":2,"
                    "\"logit_bias\":{\"5\":-100,\"9\":2.5},\"stream\":true,"
                    "\"stream_options\":{\"include_usage\":true},\"unknown\":{\"x\":[1]}}";
    cr_assert_eq(parse(b, 0), 0, "%s", err.msg);
    cr_assert_eq(req.sp.max_tokens, 7);
    cr_assert_float_eq(req.sp.temperature, 0.0f, 1e-6);
    cr_assert_float_eq(req.sp.top_p, 0.5f, 1e-6);
    cr_assert_eq(req.sp.top_k, 40);
    cr_assert_float_eq(req.sp.min_p, 0.1f, 1e-6);
    cr_assert_float_eq(req.sp.repetition_penalty, 1.2f, 1e-6);
    cr_assert_eq(req.sp.has_seed, 1);
    cr_assert_eq(req.sp.seed, (uint64_t)-3);
    cr_assert_eq(req.sp.n, 3);
    cr_assert_eq(req.sp.ignore_eos, 1);
    cr_assert_str_eq(req.user, "u");
    cr_assert_eq(req.sp.n_stop, 2);
    cr_assert_str_eq(req.sp.stop[1], "bc");
    cr_assert_eq(req.sp.logprobs, 2);
    cr_assert_eq(req.sp.n_logit_bias, 2);
    cr_assert_eq(req.stream, 1);
    cr_assert_eq(req.include_usage, 1);
    oai_request_free(&req);
    cr_assert_eq(parse("{\"prompt\":\"x\",\"stop\":\"end\",\"top_k\":0}", 0), 0);
    cr_assert_eq(req.sp.n_stop, 1);
    cr_assert_str_eq(req.sp.stop[0], "end");
    cr_assert_eq(req.sp.top_k, -1, "top_k 0 means off");
    oai_request_free(&req);
}

Test(openai_req, chat_logprobs_and_max_completion_tokens) {
    const char *b = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":4,"
                    "\"max_tokens\":3,\"max_completion_tokens\":9}";
    cr_assert_eq(parse(b, 1), 0, "%s", err.msg);
    cr_assert_eq(req.logprobs, 4);
    cr_assert_eq(req.sp.max_tokens, 9, "max_completion_tokens wins");
    oai_request_free(&req);
    cr_assert_eq(parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}", 1), 0);
    cr_assert_eq(req.logprobs, 0);
    oai_request_free(&req);
}

Test(openai_req, body_errors) {
    expect_error("", 0, "");
    expect_error("{", 0, "");
    expect_error("[]", 0, "");
    expect_error("\"x\"", 1, "");
    expect_error("{\"prompt\":\"a\",\"prompt\":\"b\"}", 0, "");
}

Test(openai_req, field_errors_name_the_field) {
    expect_error("{}", 0, "prompt");
    expect_error("{\"prompt\":null}", 0, "prompt");
    expect_error("{\"prompt\":{}}", 0, "prompt");
    expect_error("{\"prompt\":[]}", 0, "prompt");
    expect_error("{\"prompt\":[[]]}", 0, "prompt");
    expect_error("{\"prompt\":[1,\"a\"]}", 0, "prompt");
    expect_error("{\"prompt\":[-1]}", 0, "prompt");
    expect_error("{\"prompt\":[true]}", 0, "prompt");
    expect_error("{\"prompt\":\"x\",\"model\":3}", 0, "model");
    expect_error("{\"prompt\":\"x\",\"max_tokens\":0}", 0, "max_tokens");
    expect_error("{\"prompt\":\"x\",\"max_tokens\":1.5}", 0, "max_tokens");
    expect_error("{\"prompt\":\"x\",\"max_tokens\":\"5\"}", 0, "max_tokens");
    expect_error("{\"prompt\":\"x\",\"temperature\":-0.1}", 0, "temperature");
    expect_error("{\"prompt\":\"x\",\"top_p\":0}", 0, "top_p");
    expect_error("{\"prompt\":\"x\",\"top_p\":1.01}", 0, "top_p");
    expect_error("{\"prompt\":\"x\",\"top_k\":-2}", 0, "top_k");
    expect_error("{\"prompt\":\"x\",\"min_p\":2}", 0, "min_p");
    expect_error("{\"prompt\":\"x\",\"presence_penalty\":2.5}", 0, "presence_penalty");
    expect_error("{\"prompt\":\"x\",\"frequency_penalty\":\"1\"}", 0, "frequency_penalty");
    expect_error("{\"prompt\":\"x\",\"repetition_penalty\":0}", 0, "repetition_penalty");
    expect_error("{\"prompt\":\"x\",\"n\":0}", 0, "n");
    expect_error("{\"prompt\":\"x\",\"n\":1000}", 0, "n");
    expect_error("{\"prompt\":\"x\",\"seed\":1.5}", 0, "seed");
    expect_error("{\"prompt\":\"x\",\"stream\":1}", 0, "stream");
    expect_error("{\"prompt\":\"x\",\"stream_options\":{}}", 0, "stream_options");
    expect_error("{\"prompt\":\"x\",\"stream\":true,\"stream_options\":[]}", 0, "stream_options");
    expect_error("{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":1}}", 0, "stream_options");
    expect_error("{\"prompt\":\"x\",\"stop\":5}", 0, "stop");
    expect_error("{\"prompt\":\"x\",\"stop\":[\"\"]}", 0, "stop");
    expect_error("{\"prompt\":\"x\",\"stop\":[\"a\",null]}", 0, "stop");
    expect_error("{\"prompt\":\"x\",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\","
                 "\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}",
                 0, "stop");
    expect_error("{\"prompt\":\"x\",\"logprobs\":true}", 0, "logprobs");
    expect_error("{\"prompt\":\"x\",\"logprobs\":21}", 0, "logprobs");
    expect_error("{\"prompt\":\"x\",\"logit_bias\":[]}", 0, "logit_bias");
    expect_error("{\"prompt\":\"x\",\"logit_bias\":{\"a\":1}}", 0, "logit_bias");
    expect_error("{\"prompt\":\"x\",\"logit_bias\":{\"-1\":1}}", 0, "logit_bias");
    expect_error("{\"prompt\":\"x\",\"logit_bias\":{\"1\":101}}", 0, "logit_bias");
    expect_error("{\"prompt\":\"x\",\"logit_bias\":{\"1\":\"a\"}}", 0, "logit_bias");
    expect_error("{\"prompt\":\"x\",\"echo\":\"yes\"}", 0, "echo");
    expect_error("{\"prompt\":\"x\",\"echo\":true,\"logprobs\":1}", 0, "echo");
    expect_error("{\"prompt\":\"x\",\"ignore_eos\":0}", 0, "ignore_eos");
    expect_error("{\"prompt\":\"x\",\"user\":[]}", 0, "user");
    expect_error("{\"messages\":[]}", 1, "messages");
    expect_error("{\"messages\":{}}", 1, "messages");
    expect_error("{}", 1, "messages");
    expect_error("{\"messages\":[1]}", 1, "messages");
    expect_error("{\"messages\":[{\"content\":\"x\"}]}", 1, "messages");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 1, "messages");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 1, "messages");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":3}", 1, "logprobs");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":3}", 1, "top_logprobs");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":30}", 1,
                 "top_logprobs");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":{}}", 1, "tools");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"chat_template_kwargs\":1}", 1,
                 "chat_template_kwargs");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":0}", 1,
                 "max_completion_tokens");
}

Test(openai_req, parse_object) {
    oai_error e;
    json_t *o = oai_parse_object("{\"a\":1}", 7, &e);
    cr_assert_not_null(o);
    json_decref(o);
    cr_assert_null(oai_parse_object("[1]", 3, &e));
    cr_assert_eq(e.status, 400);
    cr_assert_null(oai_parse_object("{\"a\":", 5, &e));
    cr_assert(strstr(e.msg, "line 1") != NULL, "%s", e.msg);
}
