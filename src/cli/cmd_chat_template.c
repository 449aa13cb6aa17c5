/*
 * cmd_chat_template.c - `inferd chat-template`: renders a chat template
 * (template.h) with a JSON context and prints the text to stdout, with no
 * added newline. Used to check the interpreter against reference renderings
 * (tests/e2e/test_chat_template.sh) and to debug a model's template.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/util.h"
#include "cli/cli.h"
#include "tok/template.h"

/* The reference renderings fix strftime_now() at this instant. */
#define DEFAULT_NOW "2026-01-15 12:00:00"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: inferd chat-template [--template FILE.jinja] --context CONTEXT.json [--now TIME]\n"
        "\n"
        "Renders a Jinja chat template with the variables of CONTEXT.json (an object:\n"
        "messages, tools, documents, add_generation_prompt, bos_token, eos_token, ...)\n"
        "and prints the text with no added newline. On a template error (including\n"
        "raise_exception) prints the message to stderr and exits 1.\n"
        "\n"
        "  --template FILE  the template (default: the built-in ChatML template)\n"
        "  --context FILE   the variables, a JSON object ('-' reads stdin)\n"
        "  --now TIME       strftime_now()'s clock: 'YYYY-MM-DD HH:MM:SS' (UTC) or 'now'\n"
        "                   (default " DEFAULT_NOW ", for reproducible output)\n"
        "  --print-default  print the built-in ChatML template and exit\n"
        "  --help           this help\n");
}

static int parse_now(const char *s, int64_t *out) {
    if (!strcmp(s, "now")) {
        *out = (int64_t)time(NULL);
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char *end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!end || *end) return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* The chat-template command: 0 ok, 1 template or input error, 2 usage. */
int cmd_chat_template(int argc, char **argv) {
    const char *tpath = NULL, *cpath = NULL, *now_s = DEFAULT_NOW;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--print-default")) {
            fputs(chat_template_default_source(), stdout);
            return 0;
        } else if (!strcmp(a, "--template") && i + 1 < argc) {
            tpath = argv[++i];
        } else if (!strcmp(a, "--context") && i + 1 < argc) {
            cpath = argv[++i];
        } else if (!strcmp(a, "--now") && i + 1 < argc) {
            now_s = argv[++i];
        } else {
            fprintf(stderr, "inferd chat-template: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!cpath) {
        fprintf(stderr, "inferd chat-template: --context is required\n\n");
        usage(stderr);
        return 2;
    }
    int64_t now;
    if (parse_now(now_s, &now)) {
        fprintf(stderr, "inferd chat-template: --now '%s' is not 'YYYY-MM-DD HH:MM:SS' or 'now'\n",
                now_s);
        return 2;
    }
    char err[1024];
    char *src = NULL;
    size_t src_len = 0;
    int rc = 1;
    json_t *ctx = NULL;
    chat_template *t = NULL;
    buf out = BUF_INIT;
    if (tpath) {
        if (file_read_all(tpath, 16u << 20, &src, &src_len, err, sizeof err)) {
            fprintf(stderr, "inferd chat-template: %s\n", err);
            goto done;
        }
    }
    json_error_t jerr;
    ctx = !strcmp(cpath, "-") ? json_loadf(stdin, JSON_ALLOW_NUL, &jerr)
                              : json_load_file(cpath, JSON_ALLOW_NUL, &jerr);
    if (!ctx) {
        fprintf(stderr, "inferd chat-template: context '%s': %s (line %d)\n", cpath, jerr.text,
                jerr.line);
        goto done;
    }
    if (!json_is_object(ctx)) {
        fprintf(stderr, "inferd chat-template: context '%s' is not a JSON object\n", cpath);
        goto done;
    }
    const char *text = tpath ? src : chat_template_default_source();
    size_t len = tpath ? src_len : strlen(text);
    if (chat_template_parse(text, len, &t, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    if (chat_template_render_at(t, ctx, now, &out, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        fprintf(stderr, "inferd chat-template: writing stdout failed\n");
        goto done;
    }
    rc = fflush(stdout) ? 1 : 0;
done:
    buf_free(&out);
    chat_template_free(t);
    json_decref(ctx);
    free(src);
    return rc;
}
