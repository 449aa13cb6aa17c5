/*
 * test_greedy.c - stories260K greedy decoding against llama.cpp's ids
 * (tests/data/greedy/stories260K_greedy.jsonl: 30 prompts x 48 tokens;
 * stories260K_greedy_long.jsonl: 3 prompts x 400 tokens), token for token.
 * Prompt in one forward, then one token per forward, argmax with the lowest
 * index on ties. On a mismatch the message gives our top-1 minus top-2 logit
 * margin at that step, so a true near-tie shows as such.
 */
#include "model_testutil.h"

/* Top-1 minus top-2 logit. */
static float margin(const float *x, size_t n) {
    float a = -INFINITY, b = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (x[i] > a) {
            b = a;
            a = x[i];
        } else if (x[i] > b) {
            b = x[i];
        }
    }
    return a - b;
}

static void check_file(const char *path, size_t want_rows) {
    size_t n_rows = 0;
    json_t **rows = tu_read_jsonl(path, &n_rows);
    cr_assert_eq(n_rows, want_rows, "%s: %zu rows", path, n_rows);
    model *m = tu_load(STORIES_PATH, 1);
    const uint32_t n_vocab = model_get_hparams(m)->n_vocab;
    size_t n_ok = 0, n_tokens = 0;
    for (size_t r = 0; r < n_rows; r++) {
        size_t n_prompt, n_ref;
        int32_t *prompt = tu_ids(json_object_get(rows[r], "prompt_ids"), &n_prompt);
        int32_t *ref = tu_ids(json_object_get(rows[r], "ids"), &n_ref);
        tu_seq s;
        tu_seq_init(&s, m, (uint32_t)(n_prompt + n_ref + 1), DTYPE_F32);
        tu_seq_feed(&s, prompt, n_prompt);
        size_t k = 0;
        for (; k < n_ref; k++) {
            int32_t id = tu_argmax(s.logits, n_vocab);
            if (id != ref[k]) {
                cr_expect_eq(id, ref[k],
                             "%s row %zu (%s) step %zu: got %d, llama.cpp %d; our top-2 margin %.3g",
                             path, r, json_string_value(json_object_get(rows[r], "prompt")), k, id,
                             ref[k], margin(s.logits, n_vocab));
                break;
            }
            if (k + 1 < n_ref) tu_seq_feed(&s, &id, 1);
        }
        n_tokens += k;
        if (k == n_ref) n_ok++;
        tu_seq_free(&s);
        free(prompt);
        free(ref);
    }
    printf("%s: %zu/%zu rows identical (%zu tokens)\n", path, n_ok, n_rows, n_tokens);
    model_free(m);
    tu_free_rows(rows, n_rows);
}

Test(greedy, stories260K_48_tokens_all_rows) {
    check_file(GREEDY_DIR "stories260K_greedy.jsonl", 30);
}

Test(greedy, stories260K_400_tokens_long_rows) {
    check_file(GREEDY_DIR "stories260K_greedy_long.jsonl", 3);
}
