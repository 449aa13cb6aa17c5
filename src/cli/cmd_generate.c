/*
 * cmd_generate.c - `inferd generate`: one prompt through the engine, greedy
 * or sampled, printing only the continuation (or its ids) as it streams; or,
 * with --batch, a JSON-lines file of requests (generate_batch.c).
 * Flow: flags -> inferd_engine_new -> tokenize (BOS as the model says) ->
 * submit -> events until -n tokens, an end-of-generation token (unless
 * --ignore-eos) or the context is full.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/generate_batch.h"
#include "inferd.h"

typedef struct gen_opts {
    const char *model_path;
    const char *prompt;
    const char *batch_path;
    const char *out_path;
    long n_predict;
    double temp;
    uint64_t seed;
    int seed_set;
    int ids;
    int ignore_eos;
    int n_threads;
    int kv_f32;
    long max_num_seqs, max_num_batched_tokens, max_model_len;
    uint64_t kv_cache_bytes;
    int no_prefix_caching;
} gen_opts;

typedef struct gen_stats {
    size_t n_prompt, n_gen;
    double prefill_s, decode_s;
    int hit_context;
} gen_stats;

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd generate --model FILE --prompt TEXT [options]\n"
            "       inferd generate --model FILE --batch IN.jsonl [--out OUT.jsonl] [options]\n"
            "\n"
            "Runs one prompt through the engine and prints the continuation; or, with\n"
            "--batch, every line of a JSON-lines file ({\"prompt\": ..., \"max_tokens\", \"temperature\",\n"
            "\"top_p\", \"top_k\", \"min_p\", \"n\", \"seed\", \"stop\", \"ignore_eos\", penalties}), all\n"
            "batched together, writing one OpenAI completion object per line in input order.\n"
            "\n"
            "options (each has an environment twin):\n"
            "  --model FILE        GGUF model (INFERD_MODEL)\n"
            "  --prompt TEXT       prompt text; BOS is added when the model asks for it\n"
            "                      (INFERD_PROMPT)\n"
            "  --batch FILE        JSON-lines requests, '-' = stdin (INFERD_BATCH)\n"
            "  --out FILE          batch output, default stdout (INFERD_OUT)\n"
            "  -n, --n-predict N   tokens to generate, default 128; the default max_tokens\n"
            "                      of batch lines (INFERD_N_PREDICT)\n"
            "  --temp T            sampling temperature, default 0.8; 0 = greedy argmax,\n"
            "                      lowest id on ties (INFERD_TEMP)\n"
            "  --seed S            sampling seed, default from the clock (INFERD_SEED)\n"
            "  --ids               print the generated token ids on one line instead of text\n"
            "                      (INFERD_IDS=1)\n"
            "  --kv-type TYPE      KV cache type: auto, f32 or f16; auto (default) is f32\n"
            "                      for F32 models, f16 otherwise (INFERD_KV_TYPE)\n"
            "  --threads N         worker threads, default: physical cores (INFERD_THREADS)\n"
            "  --ignore-eos        keep going past end-of-generation tokens\n"
            "                      (INFERD_IGNORE_EOS=1)\n"
            "  --max-num-seqs N    sequences per engine step, batch default 64\n"
            "                      (INFERD_MAX_NUM_SEQS)\n"
            "  --max-num-batched-tokens N  tokens per engine step, default 2048\n"
            "                      (INFERD_MAX_NUM_BATCHED_TOKENS)\n"
            "  --max-model-len N   tokens per sequence, default the model's context\n"
            "                      (INFERD_MAX_MODEL_LEN)\n"
            "  --kv-cache-memory BYTES  KV pool size (suffix K, M, G), default: what the\n"
            "                      sequences can use, at most 10%% of RAM (INFERD_KV_CACHE_MEMORY)\n"
            "  --no-prefix-caching turn automatic prefix caching off (INFERD_NO_PREFIX_CACHING=1)\n"
            "  -h, --help          this text\n"
            "\n"
            "A summary goes to stderr: for one prompt, prompt and generated tokens, prefill and\n"
            "decode speed; for a batch, requests, tokens, wall time and aggregate generated\n"
            "tokens/s (with a progress bar when stderr is a terminal).\n"
            "Exit status: 0 done, 1 runtime error (bad model file, prompt too long, bad batch\n"
            "line), 2 usage.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* "123", "64K", "512M", "2G" -> bytes. */
static int parse_bytes(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-') return -1;
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm') mul = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g') mul = 1ull << 30, end++;
    if (*end || v == 0 || mul_overflow_u64(v, mul, out)) return -1;
    return 0;
}

static int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

static int parse_opts(int argc, char **argv, gen_opts *o) {
    memset(o, 0, sizeof(*o));
    o->kv_f32 = -1;
    o->n_predict = 128;
    o->temp = 0.8;
    const char *kv = getenv("INFERD_KV_TYPE");
    const char *n_s = getenv("INFERD_N_PREDICT"), *temp_s = getenv("INFERD_TEMP");
    const char *seed_s = getenv("INFERD_SEED"), *thr_s = getenv("INFERD_THREADS");
    const char *mns_s = getenv("INFERD_MAX_NUM_SEQS");
    const char *mnbt_s = getenv("INFERD_MAX_NUM_BATCHED_TOKENS");
    const char *mml_s = getenv("INFERD_MAX_MODEL_LEN");
    const char *kvm_s = getenv("INFERD_KV_CACHE_MEMORY");
    o->model_path = getenv("INFERD_MODEL");
    o->prompt = getenv("INFERD_PROMPT");
    o->batch_path = getenv("INFERD_BATCH");
    o->out_path = getenv("INFERD_OUT");
    o->ids = env_flag("INFERD_IDS");
    o->ignore_eos = env_flag("INFERD_IGNORE_EOS");
    o->no_prefix_caching = env_flag("INFERD_NO_PREFIX_CACHING");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--ids")) {
            o->ids = 1;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = 1;
        } else if (!strcmp(a, "--no-prefix-caching")) {
            o->no_prefix_caching = 1;
        } else if (!has) {
            fprintf(stderr, "generate: option '%s' needs a value (or is unknown)\n", a);
            return -1;
        } else if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
            o->model_path = argv[++i];
        } else if (!strcmp(a, "--prompt") || !strcmp(a, "-p")) {
            o->prompt = argv[++i];
        } else if (!strcmp(a, "--batch")) {
            o->batch_path = argv[++i];
        } else if (!strcmp(a, "--out")) {
            o->out_path = argv[++i];
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            n_s = argv[++i];
        } else if (!strcmp(a, "--temp")) {
            temp_s = argv[++i];
        } else if (!strcmp(a, "--seed")) {
            seed_s = argv[++i];
        } else if (!strcmp(a, "--kv-type")) {
            kv = argv[++i];
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            thr_s = argv[++i];
        } else if (!strcmp(a, "--max-num-seqs")) {
            mns_s = argv[++i];
        } else if (!strcmp(a, "--max-num-batched-tokens")) {
            mnbt_s = argv[++i];
        } else if (!strcmp(a, "--max-model-len")) {
            mml_s = argv[++i];
        } else if (!strcmp(a, "--kv-cache-memory")) {
            kvm_s = argv[++i];
        } else {
            fprintf(stderr, "generate: unknown option '%s'\n", a);
            return -1;
        }
    }
    long v;
    if (n_s && parse_long(n_s, 0, 1 << 24, &o->n_predict)) {
        fprintf(stderr, "generate: -n '%s' is not a count in 0..%d\n", n_s, 1 << 24);
        return -1;
    }
    if (temp_s) {
        char *end;
        o->temp = strtod(temp_s, &end);
        if (end == temp_s || *end || !(o->temp >= 0) || !isfinite(o->temp)) {
            fprintf(stderr, "generate: --temp '%s' is not a number >= 0\n", temp_s);
            return -1;
        }
    }
    if (seed_s) {
        char *end;
        errno = 0;
        o->seed = strtoull(seed_s, &end, 10);
        if (errno || end == seed_s || *end || strchr(seed_s, '-')) {
            fprintf(stderr, "generate: --seed '%s' is not an unsigned integer\n", seed_s);
            return -1;
        }
        o->seed_set = 1;
    }
    if (thr_s) {
        if (parse_long(thr_s, 1, 1024, &v)) {
            fprintf(stderr, "generate: --threads '%s' is not in 1..1024\n", thr_s);
            return -1;
        }
        o->n_threads = (int)v;
    }
    if (mns_s && parse_long(mns_s, 1, 4096, &o->max_num_seqs)) {
        fprintf(stderr, "generate: --max-num-seqs '%s' is not in 1..4096\n", mns_s);
        return -1;
    }
    if (mnbt_s && parse_long(mnbt_s, 1, 1 << 20, &o->max_num_batched_tokens)) {
        fprintf(stderr, "generate: --max-num-batched-tokens '%s' is not in 1..%d\n", mnbt_s,
                1 << 20);
        return -1;
    }
    if (mml_s && parse_long(mml_s, 2, 1 << 24, &o->max_model_len)) {
        fprintf(stderr, "generate: --max-model-len '%s' is not in 2..%d\n", mml_s, 1 << 24);
        return -1;
    }
    if (kvm_s && parse_bytes(kvm_s, &o->kv_cache_bytes)) {
        fprintf(stderr, "generate: --kv-cache-memory '%s' is not a size (e.g. 512M)\n", kvm_s);
        return -1;
    }
    if (kv) {
        if (!strcmp(kv, "auto")) o->kv_f32 = -1;
        else if (!strcmp(kv, "f32")) o->kv_f32 = 1;
        else if (!strcmp(kv, "f16")) o->kv_f32 = 0;
        else {
            fprintf(stderr, "generate: --kv-type '%s' is not auto, f32 or f16\n", kv);
            return -1;
        }
    }
    if (!o->model_path || (!o->prompt && !o->batch_path)) {
        fprintf(stderr, "generate: --model and --prompt (or --batch) are required\n");
        return -1;
    }
    if (o->prompt && o->batch_path) {
        fprintf(stderr, "generate: --prompt and --batch exclude each other\n");
        return -1;
    }
    if (!o->seed_set) o->seed = time_now_ns();
    return 0;
}

static inferd_engine_params engine_params(const gen_opts *o, uint32_t default_seqs) {
    inferd_engine_params ep = inferd_engine_default_params();
    ep.model_path = o->model_path;
    ep.n_threads = o->n_threads;
    ep.kv_f32 = o->kv_f32;
    ep.kv_cache_bytes = o->kv_cache_bytes;
    ep.max_num_seqs = o->max_num_seqs ? (uint32_t)o->max_num_seqs : default_seqs;
    if (o->max_num_batched_tokens) ep.max_num_batched_tokens = (uint32_t)o->max_num_batched_tokens;
    if (ep.max_num_batched_tokens < ep.max_num_seqs) ep.max_num_batched_tokens = ep.max_num_seqs;
    ep.max_model_len = (uint32_t)o->max_model_len;
    ep.enable_prefix_caching = !o->no_prefix_caching;
    return ep;
}

/* Streams one request's events to stdout until it finishes. Returns 0, or
 * 1 with a message on stderr. */
static int generate_run(inferd_engine *e, const gen_opts *o, const int32_t *prompt,
                        size_t n_prompt, uint32_t max_tokens, gen_stats *st) {
    char err[512] = "";
    inferd_request req = {.prompt_ids = prompt, .n_prompt = n_prompt};
    req.sampling = inferd_sampling_default_params();
    req.sampling.max_tokens = max_tokens;
    req.sampling.temperature = (float)o->temp;
    req.sampling.seed = o->seed;
    req.sampling.has_seed = 1;
    req.sampling.ignore_eos = o->ignore_eos;
    inferd_request_id id;
    double t0 = time_now_s(), t_first = 0;
    if (inferd_engine_submit(e, &req, &id, err, sizeof err)) {
        fprintf(stderr, "generate: %s\n", err);
        return 1;
    }
    int done = 0, rc = 0;
    inferd_event ev[64];
    while (!done) {
        size_t n = inferd_engine_poll(e, ev, 64);
        for (size_t i = 0; i < n; i++) {
            if (ev[i].type == INFERD_EVENT_TOKEN) {
                if (ev[i].token >= 0) {
                    if (st->n_gen == 0) t_first = time_now_s();
                    if (o->ids) printf(st->n_gen ? " %d" : "%d", ev[i].token);
                    st->n_gen++;
                }
                if (!o->ids) fwrite(ev[i].text, 1, ev[i].text_len, stdout);
            } else {
                done = 1;
                if (ev[i].finish_reason == INFERD_FINISH_ERROR) {
                    fprintf(stderr, "generate: the forward pass failed\n");
                    rc = 1;
                }
            }
            inferd_event_release(&ev[i]);
        }
        fflush(stdout);
        if (!n && !done) {
            struct pollfd pfd = {inferd_engine_event_fd(e), POLLIN, 0};
            poll(&pfd, 1, 200);
        }
    }
    double t1 = time_now_s();
    if (st->n_gen) {
        st->prefill_s = t_first - t0;
        st->decode_s = t1 - t_first;
    }
    /* Text mode prints the continuation's bytes only; a newline ends the
     * ids line, and the terminal's line when stdout is one. */
    if (o->ids || (st->n_gen && isatty(STDOUT_FILENO))) printf("\n");
    errno = 0;
    if ((fflush(stdout) || ferror(stdout)) && rc == 0) {
        fprintf(stderr, "generate: cannot write the output: %s\n",
                errno ? strerror(errno) : "write error");
        rc = 1;
    }
    return rc;
}

/* The `generate` subcommand (cli.h): 0 done, 1 runtime error, 2 usage. */
int cmd_generate(int argc, char **argv) {
    gen_opts o;
    /* stderr carries the summary; the engine's info logs would drown it. */
    log_set_level(LOG_WARN);
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr, "run 'inferd generate --help' for the options\n");
        return 2;
    }
    if (o.batch_path) {
        inferd_engine_params ep = engine_params(&o, 64);
        batch_defaults def = {(uint32_t)o.n_predict, (float)o.temp, o.seed, o.seed_set,
                              o.ignore_eos};
        return generate_batch_run(&ep, o.batch_path, o.out_path, &def);
    }
    char err[512] = "";
    inferd_engine_params ep = engine_params(&o, 1);
    inferd_engine *e = NULL;
    if (inferd_engine_new(&ep, &e, err, sizeof err)) {
        fprintf(stderr, "generate: cannot load '%s': %s\n", o.model_path, err);
        return 1;
    }
    inferd_engine_stats es;
    inferd_engine_get_stats(e, &es);
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int rc = 1;
    if (inferd_tokenize(e, o.prompt, strlen(o.prompt), 1, 0, &prompt, &n_prompt)) {
        fprintf(stderr, "generate: cannot tokenize the prompt\n");
        goto done;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "generate: the prompt is empty and the model adds no BOS token\n");
        goto done;
    }
    if (n_prompt >= es.max_model_len) {
        fprintf(stderr,
                "generate: the prompt is %zu tokens, the model's context is %u tokens "
                "(room is needed for at least one more)\n",
                n_prompt, es.max_model_len);
        goto done;
    }
    gen_stats st = {.n_prompt = n_prompt};
    uint64_t room = es.max_model_len - n_prompt;
    uint32_t max_tokens = (uint32_t)((uint64_t)o.n_predict < room ? (uint64_t)o.n_predict : room);
    st.hit_context = (uint64_t)o.n_predict > room;
    if (max_tokens == 0) {
        if (o.ids) printf("\n");
        rc = 0;
    } else {
        rc = generate_run(e, &o, prompt, n_prompt, max_tokens, &st);
    }
    st.hit_context = st.hit_context && st.n_gen == max_tokens;
    if (rc == 0) {
        fprintf(stderr,
                "generate: prompt %zu tokens, generated %zu tokens; prefill %.1f tokens/s, "
                "decode %.1f tokens/s%s\n",
                st.n_prompt, st.n_gen, st.prefill_s > 0 ? st.n_prompt / st.prefill_s : 0.0,
                st.decode_s > 0 && st.n_gen > 1 ? (st.n_gen - 1) / st.decode_s : 0.0,
                st.hit_context ? " (stopped: context full)" : "");
        if (o.temp > 0)
            fprintf(stderr, "generate: temperature %g, seed %llu\n", o.temp,
                    (unsigned long long)o.seed);
    }
done:
    free(prompt);
    inferd_engine_free(e);
    return rc;
}
