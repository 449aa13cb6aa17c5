/*
 * test_vectors.c - llama.cpp's tokenizer test vectors (tests/data/vocab:
 * ggml-vocab-NAME.gguf + .inp/.out, Hugging Face ground truth): every case of
 * every set, encoded with no BOS/EOS and parse_special = 0, must give exactly
 * the expected ids. Sets whose GGUF is absent are skipped with the reason.
 * Also detokenize(tokenize(x)) == x wherever the tokenizer is lossless
 * (not WordPiece: it lowercases, strips accents and drops whitespace; with
 * clean_up_tokenization_spaces the expected text is cleaned the same way).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>

#include "tok_test_util.h"

typedef struct vset {
    char name[96];
} vset;

ParameterizedTestParameters(vectors, set) {
    size_t n = 0;
    vset *v = cr_malloc(256 * sizeof *v);
    DIR *d = opendir(VOCAB_DIR);
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        const char *pre = "ggml-vocab-", *suf = ".gguf.inp";
        if (l <= strlen(pre) + strlen(suf) || strncmp(e->d_name, pre, strlen(pre)) ||
            strcmp(e->d_name + l - strlen(suf), suf))
            continue;
        size_t nl = l - strlen(pre) - strlen(suf);
        if (nl >= sizeof v[n].name) continue;
        memcpy(v[n].name, e->d_name + strlen(pre), nl);
        v[n].name[nl] = 0;
        n++;
    }
    if (d) closedir(d);
    return cr_make_param_array(vset, v, n);
}

/* llama.cpp's clean_spaces passes, applied to the expected text. */
static size_t clean(char *text, size_t n) {
    size_t total1 = n, total = n ? 1 : 0;
    for (size_t i = 1; i < total1; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        text[total++] = x;
    }
    size_t total2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total2; i++) {
        char x = text[i];
        if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }
    size_t total3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < total3; i++) {
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm')
                total--;
            else if (x1 != 't' && x1 != 'd' && i + 2 < total3 &&
                     ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e')))
                total--;
        }
        text[total++] = x;
    }
    return total;
}

ParameterizedTest(vset *v, vectors, set, .timeout = 120) {
    char path[512], err[512];
    snprintf(path, sizeof path, VOCAB_DIR "/ggml-vocab-%s.gguf", v->name);
    if (!tt_exists(path))
        cr_skip_test(
            "vocab '%s': no %s (upstream blob missing from the vendored snapshot; see FORMAT.md)",
            v->name, path);
    tt_case *cases;
    size_t n_out;
    int n = tt_read_cases(v->name, &cases, &n_out);
    cr_assert(n >= 0, "vocab '%s': cannot read .inp/.out", v->name);
    cr_assert(n > 0, "vocab '%s': no cases in .inp", v->name);
    cr_assert_eq((size_t)n, n_out, "vocab '%s': %d cases in .inp but %zu lines in .out", v->name, n,
                 n_out);
    tokenizer *t = tt_load(v->name, err, sizeof err);
    cr_assert(t, "vocab '%s': tok_load failed: %s", v->name, err);
    int lossless = strcmp(tok_model_name(t), "bert") != 0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int32_t *ids;
        size_t k;
        char a[1024], b[1024], txt[512];
        int rc = tok_encode(t, cases[i].text, cases[i].len, 0, 0, &ids, &k, err, sizeof err);
        cr_expect_eq(rc, 0, "vocab '%s' case %d: tok_encode failed: %s", v->name, i, err);
        if (rc) continue;
        int same = k == cases[i].n_ids && (k == 0 || !memcmp(ids, cases[i].ids, k * sizeof *ids));
        cr_expect(same, "vocab '%s' case %d \"%s\": expected [%s ] got [%s ]", v->name, i,
                  tt_fmt_text(txt, sizeof txt, cases[i].text, cases[i].len),
                  tt_fmt_ids(a, sizeof a, cases[i].ids, cases[i].n_ids),
                  tt_fmt_ids(b, sizeof b, ids, k));
        failed += !same;
        if (lossless) {
            buf out = BUF_INIT;
            cr_expect_eq(tok_decode(t, ids, k, 0, &out), 0, "vocab '%s' case %d: tok_decode failed",
                         v->name, i);
            char *want = malloc(cases[i].len + 1);
            memcpy(want, cases[i].text, cases[i].len + 1);
            size_t wl = cases[i].len;
            /* clean_up_tokenization_spaces is part of decoding for these models */
            if (!strcmp(tok_model_name(t), "gpt2")) {
                int32_t probe[2];
                buf pb = BUF_INIT;
                probe[0] = tok_find(t, "\xc4\xa0", 2); /* "Ġ" = a space */
                probe[1] = tok_find(t, ".", 1);
                if (probe[0] >= 0 && probe[1] >= 0) {
                    tok_decode(t, probe, 2, 0, &pb);
                    if (pb.len == 1) wl = clean(want, wl); /* " ." became "." */
                }
                buf_free(&pb);
            }
            int rt = out.len == wl && (wl == 0 || !memcmp(out.data, want, wl));
            cr_expect(rt, "vocab '%s' case %d \"%s\": detokenize(tokenize(x)) gave \"%s\"", v->name,
                      i, tt_fmt_text(txt, sizeof txt, cases[i].text, cases[i].len),
                      tt_fmt_text(a, sizeof a, out.data ? out.data : "", out.len));
            free(want);
            buf_free(&out);
        }
        free(ids);
    }
    if (failed) cr_log_error("vocab '%s': %d of %d cases differ", v->name, failed, n);
    tok_free(t);
    tt_free_cases(cases, n);
}
