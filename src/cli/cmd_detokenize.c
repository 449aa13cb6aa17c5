/*
 * cmd_detokenize.c - `inferd detokenize`: token ids (whitespace-separated)
 * on stdin -> their text on stdout, as llama_detokenize (special tokens are
 * rendered; no newline is added). A leading BOS and a trailing EOS that the
 * model itself adds are dropped (unless --keep-bos), so that text ->
 * tokenize -> detokenize gives the text back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd.h"
#include "tok/tokenizer.h"

int cli_load_tokenizer(const char *path, tokenizer **out);

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd detokenize --model FILE [--no-special] [--keep-bos]\n"
            "  Reads whitespace-separated token ids on stdin and writes their text to stdout.\n"
            "  --model FILE      GGUF file with a tokenizer (env INFERD_MODEL)\n"
            "  --no-special      render control tokens (e.g. <s>) as nothing\n"
            "  --keep-bos        keep a leading BOS / trailing EOS that the model adds itself\n");
}

/* `inferd detokenize`: exit 0 ok, 1 bad file or id, 2 usage. */
int cmd_detokenize(int argc, char **argv) {
    const char *model = getenv("INFERD_MODEL");
    int special = 1, keep_bos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--no-special")) {
            special = 0;
        } else if (!strcmp(argv[i], "--keep-bos")) {
            keep_bos = 1;
        } else {
            fprintf(stderr, "inferd detokenize: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "inferd detokenize: --model FILE is required\n");
        usage(stderr);
        return 2;
    }
    tokenizer *t;
    if (cli_load_tokenizer(model, &t)) return 1;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    int ret = 0;
    char word[32];
    while (scanf("%31s", word) == 1) {
        char *end;
        errno = 0;
        long v = strtol(word, &end, 10);
        if (*end || errno || v < 0 || v >= (long)tok_n_vocab(t)) {
            fprintf(stderr, "inferd detokenize: '%s' is not a token id (0..%u)\n", word,
                    tok_n_vocab(t) - 1);
            ret = 1;
            goto done;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            int32_t *p = realloc(ids, cap * sizeof *p);
            if (!p) {
                fprintf(stderr, "inferd detokenize: out of memory\n");
                ret = 1;
                goto done;
            }
            ids = p;
        }
        ids[n++] = (int32_t)v;
    }
    buf out = BUF_INIT;
    int32_t *first = ids;
    if (!keep_bos && n && tok_add_bos(t) && ids[0] == tok_bos(t)) first++, n--;
    if (!keep_bos && n && tok_add_eos(t) && first[n - 1] == tok_eos(t)) n--;
    if (tok_decode(t, first, n, special, &out)) {
        fprintf(stderr, "inferd detokenize: cannot decode %zu ids\n", n);
        ret = 1;
    } else if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        ret = 1;
    }
    buf_free(&out);
done:
    free(ids);
    tok_free(t);
    return ret;
}
