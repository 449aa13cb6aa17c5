/*
 * cmd_synth.c - `inferd synth`: writes a random-weight llama model with the
 * tokenizer of a real vocabulary file (src/model/synth.h), for benchmarks:
 *   inferd synth --vocab FILE.gguf --out OUT.gguf [--arch llama] --n-embd N
 *     --n-ff N --n-layer N --n-head N --n-head-kv N --ctx N [--type T] [--seed S]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dtype.h"
#include "cli/cli.h"
#include "model/synth.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd synth --vocab FILE.gguf --out OUT.gguf [--arch llama] --n-embd N --n-ff N\n"
            "                    --n-layer N --n-head N [--n-head-kv N] --ctx N [--type T] [--seed S]\n"
            "                    [--threads N]\n\n"
            "A llama model with random weights N(0, 0.02), norms 1.0, an untied output\n"
            "matrix and the tokenizer metadata of FILE.gguf (for benchmarks).\n"
            "  --type T       type of every weight matrix: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1\n"
            "                 q8_0 q2_K q3_K q4_K q5_K q6_K iq4_nl iq4_xs (default f16;\n"
            "                 for mixes like Q4_K_M, synth f16 and run `inferd quantize`)\n"
            "  --n-head-kv N  key/value heads (default: n-head)\n"
            "  --seed S       random stream (default 1); same seed, same bytes\n"
            "  --threads N    worker threads (default: physical cores; env INFERD_THREADS)\n");
}

static int parse_u32(const char *s, const char *flag, uint32_t *out) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v == 0 || v > (1u << 24)) {
        fprintf(stderr, "inferd synth: %s wants a positive integer up to %u, got '%s'\n", flag, 1u << 24, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Entry point (cli.h). Exit 0 written, 1 runtime error, 2 usage. */
int cmd_synth(int argc, char **argv) {
    static const struct option longopts[] = {
        {"vocab", required_argument, NULL, 'v'},   {"out", required_argument, NULL, 'o'},
        {"arch", required_argument, NULL, 'a'},    {"n-embd", required_argument, NULL, 'e'},
        {"n-ff", required_argument, NULL, 'f'},    {"n-layer", required_argument, NULL, 'l'},
        {"n-head", required_argument, NULL, 'H'},  {"n-head-kv", required_argument, NULL, 'K'},
        {"ctx", required_argument, NULL, 'c'},     {"type", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},    {"threads", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    synth_params p = synth_default_params();
    uint32_t u;
    const char *env = getenv("INFERD_THREADS");
    if (env && *env && parse_u32(env, "INFERD_THREADS", &u) == 0) p.n_threads = (int)u;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'v': p.vocab_path = optarg; break;
        case 'o': p.out_path = optarg; break;
        case 'a': p.arch = optarg; break;
        case 'e': if (parse_u32(optarg, "--n-embd", &p.n_embd)) return 2; break;
        case 'f': if (parse_u32(optarg, "--n-ff", &p.n_ff)) return 2; break;
        case 'l': if (parse_u32(optarg, "--n-layer", &p.n_layer)) return 2; break;
        case 'H': if (parse_u32(optarg, "--n-head", &p.n_head)) return 2; break;
        case 'K': if (parse_u32(optarg, "--n-head-kv", &p.n_head_kv)) return 2; break;
        case 'c': if (parse_u32(optarg, "--ctx", &p.n_ctx)) return 2; break;
        case 'T': if (parse_u32(optarg, "--threads", &u)) return 2; p.n_threads = (int)u; break;
        case 's': {
            char *end;
            p.seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end) {
                fprintf(stderr, "inferd synth: --seed wants an unsigned integer, got '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 't':
            if (dtype_from_name(optarg, &p.type)) {
                fprintf(stderr, "inferd synth: unknown --type '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "inferd synth: unknown option or missing value '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !p.vocab_path || !p.out_path || !p.n_embd || !p.n_ff || !p.n_layer || !p.n_head ||
        !p.n_ctx) {
        fprintf(stderr, "inferd synth: --vocab, --out, --n-embd, --n-ff, --n-layer, --n-head and --ctx are required\n");
        usage(stderr);
        return 2;
    }
    if (!p.n_head_kv) p.n_head_kv = p.n_head;
    char err[1024];
    int rc = synth_model(&p, err, sizeof err);
    if (rc) {
        fprintf(stderr, "inferd synth: %s\n", err);
        return rc == -2 ? 2 : 1;
    }
    return 0;
}
