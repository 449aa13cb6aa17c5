/*
 * test_logits.c - stories260K (F32 weights, F32 KV) against llama.cpp's
 * per-step logits (tests/data/greedy/stories260K_logits.jsonl): the prompt in
 * one forward, then the reference's greedy ids one per forward; every logit
 * at every step within 1e-4 absolute, and each argmax equal to the
 * reference's greedy id.
 */
#include "model_testutil.h"

#define LOGIT_TOL 1e-4

Test(logits, stories260K_every_step_within_1e4) {
    size_t n_rows = 0;
    json_t **rows = tu_read_jsonl(GREEDY_DIR "stories260K_logits.jsonl", &n_rows);
    cr_assert_eq(n_rows, 5);
    model *m = tu_load(STORIES_PATH, 1);
    const uint32_t n_vocab = model_get_hparams(m)->n_vocab;
    double worst = 0;
    for (size_t r = 0; r < n_rows; r++) {
        size_t n_prompt, n_greedy;
        int32_t *prompt = tu_ids(json_object_get(rows[r], "prompt_ids"), &n_prompt);
        int32_t *greedy = tu_ids(json_object_get(rows[r], "greedy_ids"), &n_greedy);
        json_t *steps = json_object_get(rows[r], "steps");
        cr_assert_eq(json_array_size(steps), n_greedy + 1);
        tu_seq s;
        tu_seq_init(&s, m, 256, DTYPE_F32);
        tu_seq_feed(&s, prompt, n_prompt);
        for (size_t k = 0; k <= n_greedy; k++) {
            json_t *ref = json_object_get(json_array_get(steps, k), "logits");
            double d = tu_max_diff(ref, s.logits, n_vocab);
            cr_expect(d <= LOGIT_TOL, "prompt %zu step %zu: max |logit diff| %.3g > %g", r, k, d,
                      LOGIT_TOL);
            if (d > worst) worst = d;
            if (k == n_greedy) break;
            cr_expect_eq(tu_argmax(s.logits, n_vocab), greedy[k], "prompt %zu step %zu", r, k);
            tu_seq_feed(&s, &greedy[k], 1);
        }
        tu_seq_free(&s);
        free(prompt);
        free(greedy);
    }
    printf("stories260K logits: max |diff| vs llama.cpp over 5 prompts x 9 steps = %.2e\n", worst);
    model_free(m);
    tu_free_rows(rows, n_rows);
}
