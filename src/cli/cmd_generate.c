/*
 * cmd_generate.c - `inferd generate`: one prompt through the model, greedy
 * or temperature sampling, printing only the continuation (or its ids).
 * Flow: flags -> model_load -> tokenize (BOS as the model says) -> prefill in
 * chunks -> one token per forward until -n tokens, an end-of-generation token
 * (unless --ignore-eos) or the context is full. The loop is generate_run();
 * a batched engine path can replace it without touching the flag handling.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "inferd.h"
#include "model/model.h"
#include "tok/tokenizer.h"

#define GEN_BLOCK 16
#define GEN_PREFILL_CHUNK 512

typedef struct gen_opts {
    const char *model_path;
    const char *prompt;
    long n_predict;
    double temp;
    uint64_t seed;
    int seed_set;
    int ids;
    int ignore_eos;
    int n_threads;
    enum dtype kv_type;
} gen_opts;

typedef struct gen_stats {
    size_t n_prompt, n_gen;
    double prefill_s, decode_s;
    int hit_context;
} gen_stats;

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd generate --model FILE --prompt TEXT [options]\n"
            "\n"
            "Runs one prompt through the model and prints the continuation.\n"
            "\n"
            "options (each has an environment twin):\n"
            "  --model FILE        GGUF model (INFERD_MODEL)\n"
            "  --prompt TEXT       prompt text; BOS is added when the model asks for it\n"
            "                      (INFERD_PROMPT)\n"
            "  -n, --n-predict N   tokens to generate, default 128 (INFERD_N_PREDICT)\n"
            "  --temp T            sampling temperature, default 0.8; 0 = greedy argmax,\n"
            "                      lowest id on ties (INFERD_TEMP)\n"
            "  --seed S            sampling seed, default from the clock (INFERD_SEED)\n"
            "  --ids               print the generated token ids on one line instead of text\n"
            "                      (INFERD_IDS=1)\n"
            "  --kv-type TYPE      KV cache type: f32 or f16, default f16 (INFERD_KV_TYPE)\n"
            "  --threads N         worker threads, default: physical cores (INFERD_THREADS)\n"
            "  --ignore-eos        keep going past end-of-generation tokens\n"
            "                      (INFERD_IGNORE_EOS=1)\n"
            "  -h, --help          this text\n"
            "\n"
            "A summary (prompt and generated tokens, prefill and decode speed) goes to stderr.\n"
            "Exit status: 0 done, 1 runtime error (bad model file, prompt too long), 2 usage.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, gen_opts *o) {
    memset(o, 0, sizeof(*o));
    o->n_predict = 128;
    o->temp = 0.8;
    o->kv_type = DTYPE_F16;
    const char *env_kv = getenv("INFERD_KV_TYPE"), *env;
    const char *kv = env_kv;
    const char *n_s = getenv("INFERD_N_PREDICT"), *temp_s = getenv("INFERD_TEMP");
    const char *seed_s = getenv("INFERD_SEED"), *thr_s = getenv("INFERD_THREADS");
    o->model_path = getenv("INFERD_MODEL");
    o->prompt = getenv("INFERD_PROMPT");
    o->ids = (env = getenv("INFERD_IDS")) && strcmp(env, "1") == 0;
    o->ignore_eos = (env = getenv("INFERD_IGNORE_EOS")) && strcmp(env, "1") == 0;
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
        } else if (!has) {
            fprintf(stderr, "generate: option '%s' needs a value (or is unknown)\n", a);
            return -1;
        } else if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
            o->model_path = argv[++i];
        } else if (!strcmp(a, "--prompt") || !strcmp(a, "-p")) {
            o->prompt = argv[++i];
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
        if (errno || end == seed_s || *end) {
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
    if (kv) {
        if (!strcmp(kv, "f32")) o->kv_type = DTYPE_F32;
        else if (!strcmp(kv, "f16")) o->kv_type = DTYPE_F16;
        else {
            fprintf(stderr, "generate: --kv-type '%s' is not f32 or f16\n", kv);
            return -1;
        }
    }
    if (!o->model_path || !o->prompt) {
        fprintf(stderr, "generate: --model and --prompt are required\n");
        return -1;
    }
    if (!o->seed_set) o->seed = time_now_ns();
    return 0;
}

/* Greedy argmax (lowest id on ties) at temp 0, else a draw from
 * softmax(logits / temp) with the seeded stream. */
static int32_t sample(float *logits, uint32_t n_vocab, double temp, uint64_t *rng) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n_vocab; i++)
        if (logits[i] > logits[best]) best = i;
    if (temp <= 0) return (int32_t)best;
    double sum = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        double p = exp((logits[i] - logits[best]) / temp);
        logits[i] = (float)p;
        sum += p;
    }
    double u = rng_uniform(rng) * sum, acc = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        acc += logits[i];
        if (u < acc) return (int32_t)i;
    }
    return (int32_t)best;
}

static void emit(const gen_opts *o, const tokenizer *tok, int32_t id, size_t k) {
    if (o->ids) {
        printf(k ? " %d" : "%d", id);
    } else {
        const char *piece;
        size_t len;
        if (tok_piece(tok, id, 0, &piece, &len) == 0) fwrite(piece, 1, len, stdout);
    }
    fflush(stdout);
}

/* Prefills prompt[0..n_prompt) and generates; prints as it goes. Returns 0,
 * or 1 with a message on stderr. */
static int generate_run(model *m, const gen_opts *o, const int32_t *prompt, size_t n_prompt,
                        gen_stats *st) {
    const model_hparams *hp = model_get_hparams(m);
    const tokenizer *tok = model_get_tokenizer(m);
    char err[512] = "";
    int rc = 1;
    const uint64_t n_ctx = hp->n_ctx_train;
    uint64_t want = n_prompt + (uint64_t)o->n_predict;
    if (want > n_ctx) want = n_ctx;
    const uint32_t n_blocks = (uint32_t)((want + GEN_BLOCK - 1) / GEN_BLOCK);
    kv_pool *kv = NULL;
    uint32_t *blocks = malloc(n_blocks * sizeof(uint32_t));
    float *logits = malloc((size_t)hp->n_vocab * sizeof(float));
    int32_t *pos = malloc(GEN_PREFILL_CHUNK * sizeof(int32_t));
    int32_t *seq = calloc(GEN_PREFILL_CHUNK, sizeof(int32_t));
    if (!blocks || !logits || !pos || !seq) {
        fprintf(stderr, "generate: out of memory\n");
        goto done;
    }
    if (kv_pool_new(m, n_blocks, GEN_BLOCK, o->kv_type, &kv, err, sizeof err)) {
        fprintf(stderr, "generate: %s\n", err);
        goto done;
    }
    for (uint32_t i = 0; i < n_blocks; i++) blocks[i] = i;
    model_seq sq = {blocks, n_blocks};
    model_batch b = {.seq = seq, .pos = pos, .n_seqs = 1, .seqs = &sq};
    uint64_t rng = o->seed;

    double t0 = time_now_s();
    for (size_t i = 0; i < n_prompt; i += GEN_PREFILL_CHUNK) {
        size_t n = n_prompt - i < GEN_PREFILL_CHUNK ? n_prompt - i : GEN_PREFILL_CHUNK;
        for (size_t j = 0; j < n; j++) pos[j] = (int32_t)(i + j);
        b.n_tokens = (uint32_t)n;
        b.tokens = prompt + i;
        if (model_forward(m, kv, &b, logits, err, sizeof err)) {
            fprintf(stderr, "generate: %s\n", err);
            goto done;
        }
    }
    st->prefill_s = time_now_s() - t0;
    t0 = time_now_s();
    size_t n_past = n_prompt;
    for (long k = 0; k < o->n_predict; k++) {
        int32_t id = sample(logits, hp->n_vocab, o->temp, &rng);
        emit(o, tok, id, (size_t)k);
        st->n_gen++;
        if (!o->ignore_eos && tok_is_eog(tok, id)) break;
        if (k + 1 == o->n_predict) break;
        if (n_past >= n_ctx) {
            st->hit_context = 1;
            break;
        }
        pos[0] = (int32_t)n_past;
        b.n_tokens = 1;
        b.tokens = &id;
        if (model_forward(m, kv, &b, logits, err, sizeof err)) {
            fprintf(stderr, "\ngenerate: %s\n", err);
            goto done;
        }
        n_past++;
    }
    st->decode_s = time_now_s() - t0;
    rc = 0;
done:
    /* Text mode prints the continuation's bytes only; a newline ends the
     * ids line, and the terminal's line when stdout is one. */
    if (o->ids || (st->n_gen && isatty(STDOUT_FILENO))) printf("\n");
    fflush(stdout);
    kv_pool_free(kv);
    free(blocks);
    free(logits);
    free(pos);
    free(seq);
    return rc;
}

/* The `generate` subcommand (cli.h): 0 done, 1 runtime error, 2 usage. */
int cmd_generate(int argc, char **argv) {
    gen_opts o;
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr, "run 'inferd generate --help' for the options\n");
        return 2;
    }
    char err[512] = "";
    model_params mp = model_default_params();
    mp.n_threads = o.n_threads;
    model *m = NULL;
    if (model_load(o.model_path, &mp, &m, err, sizeof err)) {
        fprintf(stderr, "generate: cannot load '%s': %s\n", o.model_path, err);
        return 1;
    }
    const model_hparams *hp = model_get_hparams(m);
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int rc = 1;
    if (tok_encode(model_get_tokenizer(m), o.prompt, strlen(o.prompt), 1, 0, &prompt, &n_prompt,
                   err, sizeof err)) {
        fprintf(stderr, "generate: cannot tokenize the prompt: %s\n", err);
        goto done;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "generate: the prompt is empty and the model adds no BOS token\n");
        goto done;
    }
    if (n_prompt >= hp->n_ctx_train) {
        fprintf(stderr,
                "generate: the prompt is %zu tokens, the model's context is %u tokens "
                "(room is needed for at least one more)\n",
                n_prompt, hp->n_ctx_train);
        goto done;
    }
    gen_stats st = {.n_prompt = n_prompt};
    rc = generate_run(m, &o, prompt, n_prompt, &st);
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
    model_free(m);
    return rc;
}
