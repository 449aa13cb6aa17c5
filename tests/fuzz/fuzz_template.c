/*
 * fuzz_template.c - libFuzzer target for the chat-template interpreter
 * (src/tok/template.h): the input is a template source; it is parsed and,
 * when it parses, rendered with a small fixed context (messages with a tool
 * call, tools, bos/eos). Any crash, sanitizer report, leak or hang is a bug:
 * bad templates must end in a clean error within the sandbox limits.
 * Seeds: tests/fuzz/corpus/template/. Run: scripts/fuzz.sh 60 template
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tok/template.h"

static const char ctx_json[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"Hi <b>&amp;</b> \\u00e9\\n\"},"
    " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call00001\", "
    "\"type\": \"function\","
    "   \"function\": {\"name\": \"get\", \"arguments\": {\"q\": [1, 2.5, true, null]}}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"ok\\\": 1}\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get\", \"description\": "
    "\"d\","
    "   \"parameters\": {\"type\": \"object\", \"properties\": {\"q\": {\"type\": \"string\"}}}}}],"
    " \"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": "
    "\"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *ctx;
    if (!ctx) ctx = json_loads(ctx_json, 0, NULL);
    chat_template *t = NULL;
    char err[256];
    if (chat_template_parse((const char *)data, size, &t, err, sizeof err) == 0) {
        buf out = BUF_INIT;
        (void)chat_template_render_at(t, ctx, 1768478400, &out, err, sizeof err);
        buf_free(&out);
    }
    chat_template_free(t);
    return 0;
}
