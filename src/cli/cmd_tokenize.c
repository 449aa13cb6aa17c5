/*
 * cmd_tokenize.c - `inferd tokenize`: all of stdin as one text -> token ids
 * on one line, separated by single spaces. With --bench R it tokenizes the
 * text R times on one thread and reports the median throughput on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "gguf/gguf.h"
#include "inferd.h"
#include "tok/tokenizer.h"

#define MAX_INPUT_BYTES (1u << 30)

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd tokenize --model FILE [--no-bos] [--parse-special] [--bench R]\n"
            "  Reads all of stdin as one text and prints its token ids on one line.\n"
            "  --model FILE      GGUF file with a tokenizer (env INFERD_MODEL)\n"
            "  --no-bos          add no BOS/EOS tokens\n"
            "  --parse-special   match control-token texts (e.g. <s>) in the input\n"
            "  --bench R         tokenize R times (one thread); print the median MB/s to stderr\n");
}

/* Reads all of f into a malloc'd buffer. Returns 0 or -1. */
static int read_all(FILE *f, char **out, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    if (!b) return -1;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_INPUT_BYTES) {
                free(b);
                return -1;
            }
            char *p = realloc(b, cap *= 2);
            if (!p) {
                free(b);
                return -1;
            }
            b = p;
        }
        size_t r = fread(b + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        free(b);
        return -1;
    }
    *out = b;
    *n = len;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Loads the tokenizer of a GGUF file; shared with cmd_detokenize.c. */
int cli_load_tokenizer(const char *path, tokenizer **out) {
    char err[512];
    gguf_file *f = NULL;
    int rc = gguf_open(path, &f, err, sizeof err);
    if (rc) {
        fprintf(stderr, "inferd: cannot open '%s': %s (%s)\n", path, err, inferd_strerror(rc));
        return rc;
    }
    rc = tok_load(f, out, err, sizeof err);
    gguf_close(f);
    if (rc) fprintf(stderr, "inferd: %s: %s\n", path, err);
    return rc;
}

/* `inferd tokenize`: exit 0 ok, 1 bad file or input, 2 usage. */
int cmd_tokenize(int argc, char **argv) {
    const char *model = getenv("INFERD_MODEL");
    int no_bos = 0, parse_special = 0;
    long bench = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--no-bos")) {
            no_bos = 1;
        } else if (!strcmp(argv[i], "--parse-special")) {
            parse_special = 1;
        } else if (!strcmp(argv[i], "--bench") && i + 1 < argc) {
            char *end;
            bench = strtol(argv[++i], &end, 10);
            if (*end || bench < 1 || bench > 1000) {
                fprintf(stderr, "inferd tokenize: --bench wants 1..1000 runs, not '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "inferd tokenize: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "inferd tokenize: --model FILE is required\n");
        usage(stderr);
        return 2;
    }
    char *text;
    size_t len;
    if (read_all(stdin, &text, &len)) {
        fprintf(stderr, "inferd tokenize: cannot read stdin (or it is over %u bytes)\n",
                MAX_INPUT_BYTES);
        return 1;
    }
    tokenizer *t;
    if (cli_load_tokenizer(model, &t)) {
        free(text);
        return 1;
    }
    int ret = 0;
    char err[256];
    int32_t *ids = NULL;
    size_t n = 0;
    if (bench) {
        double *mbs = malloc((size_t)bench * sizeof *mbs);
        long done = 0;
        for (; mbs && done < bench; done++) {
            free(ids);
            ids = NULL;
            double t0 = time_now_s();
            if (tok_encode(t, text, len, !no_bos, parse_special, &ids, &n, err, sizeof err)) break;
            double dt = time_now_s() - t0;
            mbs[done] = dt > 0 ? (double)len / 1e6 / dt : 0;
        }
        if (done == bench) {
            qsort(mbs, (size_t)bench, sizeof *mbs, cmp_double);
            fprintf(stderr, "tokenize: %zu bytes, %zu tokens, median %.2f MB/s over %ld runs\n",
                    len, n, mbs[bench / 2], bench);
        } else {
            fprintf(stderr, "inferd tokenize: --bench failed: %s\n", mbs ? err : "out of memory");
            ret = 1;
        }
        free(mbs);
    } else {
        int rc = tok_encode(t, text, len, !no_bos, parse_special, &ids, &n, err, sizeof err);
        if (rc) {
            fprintf(stderr, "inferd tokenize: %s\n", err);
            ret = 1;
        } else {
            for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            printf("\n");
            if (fflush(stdout) || ferror(stdout)) {
                fprintf(stderr, "inferd tokenize: cannot write the ids: %s\n", strerror(errno));
                ret = 1;
            }
        }
    }
    free(ids);
    tok_free(t);
    free(text);
    return ret;
}
