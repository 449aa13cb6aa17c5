/*
 * cmd_quantize.c - `inferd quantize IN.gguf OUT.gguf TYPE [--pure]`: writes
 * a copy of a GGUF model with its weights in another type, tensor for
 * tensor as llama-quantize chooses and encodes them (src/model/quantize.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "model/quantize.h"

static void usage(FILE *f) {
    fprintf(f, "usage: inferd quantize IN.gguf OUT.gguf TYPE [--pure] [--threads N] [--quiet]\n"
               "\n"
               "Rewrites IN with its weights in TYPE; metadata is copied, with\n"
               "general.file_type and general.quantization_version = 2 set.\n"
               "\n"
               "TYPE: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L\n"
               "      Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS (case-insensitive;\n"
               "      Q3_K, Q4_K, Q5_K mean the _M mixes)\n"
               "  --pure         every 2-D weight gets TYPE's base type (no mix rules);\n"
               "                 1-D tensors (norms) stay as they are\n"
               "  --threads N    worker threads (default: physical cores; env INFERD_THREADS)\n"
               "  --quiet        no per-tensor lines on stderr\n"
               "\n"
               "Exit status: 0 written, 1 bad input or write error, 2 usage error.\n");
}

int cmd_quantize(int argc, char **argv) {
    quantize_params p = quantize_default_params();
    p.verbose = 1;
    const char *pos[3] = {NULL, NULL, NULL};
    int n_pos = 0;
    const char *env = getenv("INFERD_THREADS");
    if (env && *env) p.n_threads = atoi(env);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--pure")) {
            p.pure = 1;
        } else if (!strcmp(a, "--quiet")) {
            p.verbose = 0;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "inferd quantize: %s needs a value\n", a);
                return 2;
            }
            char *end = NULL;
            const long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 1 || v > 1024) {
                fprintf(stderr, "inferd quantize: --threads '%s' is not a count in 1..1024\n",
                        argv[i]);
                return 2;
            }
            p.n_threads = (int)v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "inferd quantize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "inferd quantize: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    if (quantize_ftype_from_name(pos[2], &p.ftype) != 0) {
        fprintf(stderr, "inferd quantize: unknown type '%s' (see --help)\n", pos[2]);
        return 2;
    }
    const double t0 = time_now_s();
    char err[512] = "";
    const int rc = quantize_file(pos[0], pos[1], &p, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "inferd quantize: %s\n", err[0] ? err : "failed");
        return 1;
    }
    if (p.verbose)
        fprintf(stderr, "inferd quantize: wrote %s (%s%s) in %.2f s\n", pos[1],
                quantize_ftype_name(p.ftype), p.pure ? ", pure" : "", time_now_s() - t0);
    return 0;
}
