/*
 * simple.c - the smallest program on inferd's C API (docs/api-c.md): load a
 * model, submit prompts, wait on the event fd, print each choice as it
 * streams. Build: `make e2e` builds it as build/examples/simple, or
 *   cc -Iinclude examples/simple.c build/libinferd.a $(LIBS) -o simple
 *
 * usage: simple MODEL.gguf PROMPT [MAX_TOKENS [TEMPERATURE [N_CHOICES]]]
 * Greedy by default (temperature 0). Prints each choice's text, then a
 * line "[choice C: finish REASON, P prompt + G generated tokens]".
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd.h"

static const char *reason_name(enum inferd_finish_reason r) {
    switch (r) {
    case INFERD_FINISH_STOP: return "stop";
    case INFERD_FINISH_LENGTH: return "length";
    case INFERD_FINISH_ABORT: return "abort";
    case INFERD_FINISH_ERROR: return "error";
    default: return "none";
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [MAX_TOKENS [TEMPERATURE [N]]]\n", argv[0]);
        return 2;
    }
    char err[512];
    int rc = 1;
    inferd_engine *e = NULL;
    int32_t *ids = NULL;
    char **texts = NULL;
    size_t *lens = NULL;

    /* 1. An engine: the defaults suit most uses; a small KV pool here. */
    inferd_engine_params ep = inferd_engine_default_params();
    ep.model_path = argv[1];
    ep.kv_cache_bytes = 64u << 20;
    ep.kv_f32 = 1;
    if (inferd_engine_new(&ep, &e, err, sizeof err)) {
        fprintf(stderr, "engine: %s\n", err);
        return 1;
    }

    /* 2. Tokenize the prompt (BOS as the model wants it). */
    size_t n_ids = 0;
    if (inferd_tokenize(e, argv[2], strlen(argv[2]), 1, 0, &ids, &n_ids)) {
        fprintf(stderr, "cannot tokenize the prompt\n");
        goto done;
    }

    /* 3. Submit one request; its events carry `user` back. */
    inferd_request req = {.prompt_ids = ids, .n_prompt = n_ids};
    req.sampling = inferd_sampling_default_params();
    req.sampling.max_tokens = argc > 3 ? (uint32_t)atoi(argv[3]) : 48;
    req.sampling.temperature = argc > 4 ? (float)atof(argv[4]) : 0.0f;
    req.sampling.n = argc > 5 ? (uint32_t)atoi(argv[5]) : 1;
    inferd_request_id id;
    if (inferd_engine_submit(e, &req, &id, err, sizeof err)) {
        fprintf(stderr, "submit: %s\n", err);
        goto done;
    }
    uint32_t n = req.sampling.n;
    texts = calloc(n, sizeof *texts);
    lens = calloc(n, sizeof *lens);
    if (!texts || !lens) goto done;

    /* 4. Wait on the event fd; poll events; collect text per choice. */
    uint32_t finished = 0;
    while (finished < n) {
        struct pollfd pfd = {inferd_engine_event_fd(e), POLLIN, 0};
        poll(&pfd, 1, 1000);
        inferd_event ev[32];
        size_t got = inferd_engine_poll(e, ev, 32);
        for (size_t i = 0; i < got; i++) {
            uint32_t c = ev[i].choice;
            if (ev[i].text_len) {
                char *p = realloc(texts[c], lens[c] + ev[i].text_len + 1);
                if (p) {
                    memcpy(p + lens[c], ev[i].text, ev[i].text_len);
                    lens[c] += ev[i].text_len;
                    p[lens[c]] = 0;
                    texts[c] = p;
                }
                if (n == 1) fwrite(ev[i].text, 1, ev[i].text_len, stdout);
            }
            if (ev[i].type == INFERD_EVENT_FINISH) {
                if (n > 1) printf("%s", texts[c] ? texts[c] : "");
                printf("\n[choice %u: finish %s, %u prompt + %u generated tokens]\n", c,
                       reason_name(ev[i].finish_reason), ev[i].prompt_tokens,
                       ev[i].completion_tokens);
                finished++;
            }
            inferd_event_release(&ev[i]);
        }
        fflush(stdout);
    }
    rc = 0;
done:
    if (texts)
        for (uint32_t c = 0; c < req.sampling.n; c++) free(texts[c]);
    free(texts);
    free(lens);
    free(ids);
    inferd_engine_free(e);
    return rc;
}
