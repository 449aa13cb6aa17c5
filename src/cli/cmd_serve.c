/*
 * cmd_serve.c - `inferd serve --model FILE`: the OpenAI-compatible server.
 * Flags follow vLLM's names where one exists; each has an INFERD_* twin in
 * the environment (INFERD_PORT for --port); a flag on the command line wins
 * over the environment. All of them are listed by --help (one table below).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "cli/cli.h"
#include "server/server.h"

enum flag_type { F_STR, F_INT, F_U32, F_SIZE, F_DOUBLE, F_BOOL, F_NOBOOL };

struct flag {
    const char *name; /* without "--" */
    enum flag_type type;
    const char *metavar;
    const char *help;
};

/* The table: --help prints it; parse() fills struct serve_opts by name. */
static const struct flag flags[] = {
    {"model", F_STR, "FILE", "GGUF model to serve (required)"},
    {"host", F_STR, "ADDR", "address to listen on (default 127.0.0.1)"},
    {"port", F_INT, "N", "port to listen on; 0 picks a free one (default 8000)"},
    {"served-model-name", F_STR, "NAME", "model name in the API (default: file name without .gguf)"},
    {"api-key", F_STR, "KEY", "require 'Authorization: Bearer KEY' on /v1/*, /tokenize, /detokenize"},
    {"chat-template", F_STR, "FILE", "Jinja chat template (default: the model's, else ChatML)"},
    {"max-model-len", F_U32, "N", "context length per sequence (default: the model's)"},
    {"max-num-seqs", F_U32, "N", "sequences per engine step (default 64)"},
    {"max-num-batched-tokens", F_U32, "N", "tokens per engine step (default 2048)"},
    {"kv-cache-memory", F_SIZE, "BYTES", "KV cache size, e.g. 512M or 2G (default: 10% of RAM)"},
    {"kv-cache-dtype", F_STR, "auto|f16|f32", "KV cache element type; auto (default): f32 for F32 models, else f16"},
    {"block-size", F_U32, "N", "tokens per KV block (default 16)"},
    {"no-enable-prefix-caching", F_BOOL, NULL, "do not reuse KV blocks of shared prompt prefixes"},
    {"threads", F_INT, "N", "kernel threads (default: physical cores)"},
    {"max-queue", F_U32, "N", "waiting sequences before 429 (default 1024; 0 = no cap)"},
    {"max-body-bytes", F_SIZE, "BYTES", "largest request body, else 413 (default 4M)"},
    {"max-header-bytes", F_SIZE, "BYTES", "largest request head, else 431 (default 16K)"},
    {"max-connections", F_U32, "N", "open connections, else 503 (default 1024)"},
    {"allowed-origins", F_STR, "LIST", "CORS: comma-separated origins or '*' (default: CORS off)"},
    {"header-timeout", F_DOUBLE, "SEC", "a request must arrive within SEC of its first byte (default 10)"},
    {"idle-timeout", F_DOUBLE, "SEC", "close idle keep-alive connections and stalled writes (default 60)"},
    {"drain-timeout", F_DOUBLE, "SEC", "on SIGTERM, wait SEC for requests in flight (default 30)"},
    {"log-level", F_STR, "LEVEL", "debug, info, warn or error (default info)"},
    {"log-format", F_STR, "json|text", "log line format (default json)"},
    {"no-access-log", F_BOOL, NULL, "do not log one line per request"},
};
#define N_FLAGS (sizeof flags / sizeof flags[0])

static void usage(FILE *f) {
    fprintf(f, "usage: inferd serve --model FILE [options]\n\n"
               "Serves the OpenAI-compatible API (/v1/completions, /v1/chat/completions,\n"
               "/v1/models) plus /health, /ready, /metrics, /tokenize, /detokenize, /version.\n\n"
               "options (each also read from the environment variable shown):\n");
    for (size_t i = 0; i < N_FLAGS; i++) {
        char left[64], env[64];
        snprintf(left, sizeof left, "--%s%s%s", flags[i].name, flags[i].metavar ? " " : "",
                 flags[i].metavar ? flags[i].metavar : "");
        size_t k = snprintf(env, sizeof env, "INFERD_");
        for (const char *p = flags[i].name; *p && k + 1 < sizeof env; p++)
            env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[k] = 0;
        fprintf(f, "  %-34s %s\n  %-34s [%s]\n", left, flags[i].help, "", env);
    }
    fprintf(f, "  %-34s %s\n", "-h, --help", "show this help");
}

static int parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return -1;
    while (*end == ' ') end++;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1024.0 * 1024; end++; break;
    case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: return -1;
    }
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
    v *= mul;
    if (v > 1.8e19) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Applies one flag's value to params. Returns 0 or -1 (message printed). */
static int apply(server_params *p, const struct flag *f, const char *v, const char *from) {
    char *end;
    long long ll = 0;
    double d = 0;
    uint64_t sz = 0;
    switch (f->type) {
    case F_INT:
    case F_U32:
        errno = 0;
        ll = strtoll(v, &end, 10);
        if (end == v || *end || errno || ll < (f->type == F_U32 ? 0 : -1) || ll > 0x7fffffff) goto bad;
        break;
    case F_SIZE:
        if (parse_size(v, &sz)) goto bad;
        break;
    case F_DOUBLE:
        errno = 0;
        d = strtod(v, &end);
        if (end == v || *end || errno || d < 0 || d > 1e6) goto bad;
        break;
    case F_BOOL:
    case F_NOBOOL:
        if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) ll = 1;
        else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) ll = 0;
        else goto bad;
        break;
    case F_STR: break;
    }
    const char *n = f->name;
    if (!strcmp(n, "model")) p->engine.model_path = v;
    else if (!strcmp(n, "host")) p->http.host = v;
    else if (!strcmp(n, "port")) {
        if (ll < 0 || ll > 65535) goto bad;
        p->http.port = (int)ll;
    } else if (!strcmp(n, "served-model-name")) p->served_model_name = v;
    else if (!strcmp(n, "api-key")) p->api_key = v;
    else if (!strcmp(n, "chat-template")) p->chat_template_path = v;
    else if (!strcmp(n, "max-model-len")) p->engine.max_model_len = (uint32_t)ll;
    else if (!strcmp(n, "max-num-seqs")) p->engine.max_num_seqs = (uint32_t)ll;
    else if (!strcmp(n, "max-num-batched-tokens")) p->engine.max_num_batched_tokens = (uint32_t)ll;
    else if (!strcmp(n, "kv-cache-memory")) p->engine.kv_cache_bytes = sz;
    else if (!strcmp(n, "kv-cache-dtype")) {
        if (!strcasecmp(v, "auto")) p->engine.kv_f32 = -1;
        else if (!strcasecmp(v, "f16")) p->engine.kv_f32 = 0;
        else if (!strcasecmp(v, "f32")) p->engine.kv_f32 = 1;
        else goto bad;
    } else if (!strcmp(n, "block-size")) p->engine.block_size = (uint32_t)ll;
    else if (!strcmp(n, "no-enable-prefix-caching")) p->engine.enable_prefix_caching = !ll;
    else if (!strcmp(n, "threads")) p->engine.n_threads = (int)ll;
    else if (!strcmp(n, "max-queue")) p->engine.max_waiting = (uint32_t)ll;
    else if (!strcmp(n, "max-body-bytes")) p->http.max_body_bytes = (size_t)sz;
    else if (!strcmp(n, "max-header-bytes")) {
        if (sz < 256) goto bad;
        p->http.max_header_bytes = (size_t)sz;
    } else if (!strcmp(n, "max-connections")) {
        if (ll < 1) goto bad;
        p->http.max_connections = (uint32_t)ll;
    } else if (!strcmp(n, "allowed-origins")) p->http.allowed_origins = v;
    else if (!strcmp(n, "header-timeout")) {
        if (d <= 0) goto bad;
        p->http.header_timeout_s = d;
    } else if (!strcmp(n, "idle-timeout")) {
        if (d <= 0) goto bad;
        p->http.idle_timeout_s = d;
    } else if (!strcmp(n, "drain-timeout")) p->drain_timeout_s = d;
    else if (!strcmp(n, "log-level")) {
        enum log_level lv;
        if (log_parse_level(v, &lv)) goto bad;
        log_set_level(lv);
    } else if (!strcmp(n, "log-format")) {
        if (!strcmp(v, "json")) log_set_json(1);
        else if (!strcmp(v, "text")) log_set_json(0);
        else goto bad;
    } else if (!strcmp(n, "no-access-log")) p->http.access_log = !ll;
    return 0;
bad:
    fprintf(stderr, "inferd serve: invalid value '%s' for --%s (from %s)\n", v, f->name, from);
    return -1;
}

static void on_listening(int port, void *arg) {
    const server_params *p = arg;
    const char *host = p->http.host;
    int v6 = strchr(host, ':') != NULL;
    printf("inferd: listening on http://%s%s%s:%d (OpenAI API under /v1; loading %s)\n", v6 ? "[" : "", host,
           v6 ? "]" : "", port, p->engine.model_path);
    fflush(stdout);
}

static void on_loaded(void *arg) {
    (void)arg;
    printf("inferd: ready\n");
    fflush(stdout);
}

int cmd_serve(int argc, char **argv) {
    server_params p = server_default_params();
    p.engine.max_waiting = 1024;
    p.http.max_body_bytes = 4u << 20;
    /* Environment first, then the command line. */
    for (size_t i = 0; i < N_FLAGS; i++) {
        char env[64];
        size_t k = snprintf(env, sizeof env, "INFERD_");
        for (const char *q = flags[i].name; *q && k + 1 < sizeof env; q++)
            env[k++] = *q == '-' ? '_' : (char)toupper((unsigned char)*q);
        env[k] = 0;
        const char *v = getenv(env);
        if (v && *v && apply(&p, &flags[i], v, env)) return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "inferd serve: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = NULL;
        for (size_t k = 0; k < N_FLAGS; k++)
            if (strlen(flags[k].name) == nl && !strncmp(flags[k].name, name, nl)) f = &flags[k];
        if (!f) {
            fprintf(stderr, "inferd serve: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        const char *v;
        if (f->type == F_BOOL) v = eq ? eq + 1 : "1";
        else if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else {
            fprintf(stderr, "inferd serve: --%s needs a value\n", f->name);
            return 2;
        }
        if (apply(&p, f, v, "the command line")) return 2;
    }
    if (!p.engine.model_path) {
        fprintf(stderr, "inferd serve: --model FILE is required (or INFERD_MODEL)\n\n");
        usage(stderr);
        return 2;
    }
    p.on_listening = on_listening;
    p.on_loaded = on_loaded;
    p.cb_arg = &p;
    char err[512] = "";
    int rc = server_run(&p, err, sizeof err);
    if (rc) {
        fprintf(stderr, "inferd serve: %s\n", err[0] ? err : inferd_strerror(rc));
        return 1;
    }
    return 0;
}
