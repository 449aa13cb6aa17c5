/*
 * test_synth_tiny.c - the random-weight synth-tiny model in every weight type
 * against llama.cpp (tests/data/greedy/synth_tiny_refs.jsonl: logits after
 * each of 3 prompts; synth_tiny_forced.jsonl: logits at each of 17
 * teacher-forced steps). The f32 file is vendored (tests/data/models); the
 * others are made at test time by scripts/make_synth_tiny.sh into
 * $BUILD/testdata (INFERD_SYNTH_TINY_DIR overrides the folder); a missing one
 * is skipped with a printed reason.
 *
 * Tolerances (max |logit diff| vs llama.cpp; the logits have std ~0.33):
 * our kernels quantize activations to the weight type's vec_dot_type (Q8_0,
 * Q8_1, Q8_K, F16, BF16) as llama.cpp does, so most steps agree to ~1e-7.
 * What remains is float summation order, which now and then moves an
 * activation across a Q8 rounding boundary; one such flip shifts the logits
 * by up to ~6e-3 and persists through the KV cache (summing RMSNorm's
 * squares in float instead of double moves Q4_0's logits by 2-4e-3 and f32's
 * by 1e-7). So each quantized type's tolerance is 1e-2 (8e-3 for Q8_0 and
 * Q6_K, whose own error is smallest), below that type's own error (the
 * README's max |diff| of the type vs f32: 1.3e-2 for Q8_0 up to 0.55 for
 * Q2_K), so a kernel that got the type wrong fails. BF16 activations have 8
 * significant bits like Q8, so the same flips apply (3e-3, own error
 * 4.5e-3); F16 has 11 bits and flips 8x smaller (4e-4; llama.cpp's own F16
 * prefill and decode paths differ by 1.4e-4, README caveat 4).
 */
#include <limits.h>
#include <unistd.h>

#include "model_testutil.h"

typedef struct type_tol {
    const char *model;
    double tol;
} type_tol;

static const type_tol TOLS[] = {
    {"synth-tiny-f32.gguf", 1e-4},    {"synth-tiny-F16.gguf", 4e-4},
    {"synth-tiny-BF16.gguf", 3e-3},   {"synth-tiny-Q8_0.gguf", 8e-3},
    {"synth-tiny-Q6_K.gguf", 8e-3},   {"synth-tiny-Q5_1.gguf", 1e-2},
    {"synth-tiny-Q5_0.gguf", 1e-2},   {"synth-tiny-Q5_K_S.gguf", 1e-2},
    {"synth-tiny-Q4_1.gguf", 1e-2},   {"synth-tiny-Q4_0.gguf", 1e-2},
    {"synth-tiny-Q4_K_S.gguf", 1e-2}, {"synth-tiny-IQ4_NL.gguf", 1e-2},
    {"synth-tiny-IQ4_XS.gguf", 1e-2}, {"synth-tiny-Q3_K_S.gguf", 1e-2},
    {"synth-tiny-Q2_K.gguf", 1e-2},
};

static double tol_of(const char *name) {
    for (size_t i = 0; i < sizeof TOLS / sizeof TOLS[0]; i++)
        if (strcmp(TOLS[i].model, name) == 0) return TOLS[i].tol;
    cr_assert_fail("no tolerance for %s", name);
    return 0;
}

/* Path of a synth-tiny model, or 0 when it is not there (reason printed). */
static int model_path(const char *name, char *out, size_t n) {
    if (strcmp(name, "synth-tiny-f32.gguf") == 0) {
        snprintf(out, n, "tests/data/models/%s", name);
        return 1;
    }
    const char *dir = getenv("INFERD_SYNTH_TINY_DIR");
    char build[PATH_MAX / 2] = "build";
    if (!dir) {
        /* The binary is $BUILD/tests/unit/model/test_synth_tiny. */
        char exe[PATH_MAX / 2];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (len > 0) {
            exe[len] = '\0';
            char *cut = strstr(exe, "/tests/unit/model/");
            if (cut) {
                *cut = '\0';
                snprintf(build, sizeof build, "%s", exe);
            }
        }
        snprintf(out, n, "%s/testdata/%s", build, name);
    } else {
        snprintf(out, n, "%s/%s", dir, name);
    }
    if (access(out, R_OK) != 0) {
        printf("SKIP %s: %s not found (made by scripts/make_synth_tiny.sh)\n", name, out);
        return 0;
    }
    return 1;
}

typedef struct result {
    char model[64];
    double refs, forced;
} result;

Test(synth_tiny, every_type_after_prompt_and_teacher_forced) {
    size_t n_refs = 0, n_forced = 0;
    json_t **refs = tu_read_jsonl(GREEDY_DIR "synth_tiny_refs.jsonl", &n_refs);
    json_t **forced = tu_read_jsonl(GREEDY_DIR "synth_tiny_forced.jsonl", &n_forced);
    cr_assert_eq(n_refs, n_forced);
    result res[32];
    size_t n_res = 0, n_skipped = 0;
    model *m = NULL;
    char cur[64] = "";
    for (size_t r = 0; r < n_forced; r++) {
        const char *name = json_string_value(json_object_get(forced[r], "model"));
        cr_assert_str_eq(name, json_string_value(json_object_get(refs[r], "model")));
        char path[PATH_MAX];
        if (strcmp(name, cur) != 0) {
            model_free(m);
            m = NULL;
            snprintf(cur, sizeof cur, "%s", name);
            if (!model_path(name, path, sizeof path)) {
                n_skipped++;
                continue;
            }
            m = tu_load(path, 1);
            cr_assert(n_res < 32);
            snprintf(res[n_res].model, sizeof res[n_res].model, "%s", name);
            res[n_res].refs = res[n_res].forced = 0;
            n_res++;
        }
        if (!m) continue;
        result *rs = &res[n_res - 1];
        const double tol = tol_of(name);
        const uint32_t V = model_get_hparams(m)->n_vocab;
        size_t n_prompt, n_ids;
        int32_t *prompt = tu_ids(json_object_get(forced[r], "prompt_ids"), &n_prompt);
        int32_t *ids = tu_ids(json_object_get(forced[r], "forced_ids"), &n_ids);
        json_t *steps = json_object_get(forced[r], "steps");
        cr_assert_eq(json_array_size(steps), n_ids + 1);
        tu_seq s;
        tu_seq_init(&s, m, 64, DTYPE_F32);
        tu_seq_feed(&s, prompt, n_prompt);
        double d = tu_max_diff(json_object_get(refs[r], "logits"), s.logits, V);
        if (d > rs->refs) rs->refs = d;
        cr_expect(d <= tol, "%s prompt row %zu after prompt: max |diff| %.3g > %g", name, r, d, tol);
        for (size_t k = 0; k <= n_ids; k++) {
            d = tu_max_diff(json_object_get(json_array_get(steps, k), "logits"), s.logits, V);
            if (d > rs->forced) rs->forced = d;
            cr_expect(d <= tol, "%s row %zu forced step %zu: max |diff| %.3g > %g", name, r, k, d,
                      tol);
            if (k < n_ids) tu_seq_feed(&s, &ids[k], 1);
        }
        tu_seq_free(&s);
        free(prompt);
        free(ids);
    }
    model_free(m);
    for (size_t i = 0; i < n_res; i++)
        printf("%-24s max |diff| after prompt %.2e, teacher-forced %.2e (tolerance %g)\n",
               res[i].model, res[i].refs, res[i].forced, tol_of(res[i].model));
    printf("synth-tiny: %zu models checked, %zu skipped\n", n_res, n_skipped);
    tu_free_rows(refs, n_refs);
    tu_free_rows(forced, n_forced);
}
