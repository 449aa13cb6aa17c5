/*
 * test_quantize.c - src/model/quantize_rules.c: the per-tensor types of the
 * K-quant mixes on a 32-layer llama (the layers llama.cpp's Q4_K_M is known
 * to give Q6_K: 0-3, 6, 9, ..., 27, 28-31), fallbacks for rows that are not
 * a multiple of 256, --pure, and the ftype names. The file-level behaviour
 * (bytes identical to llama-quantize) is tests/e2e/test_quantize.sh.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "model/quantize.h"

static const quantize_model_info llama32 = {
    .n_layer = 32, .n_gqa = 1, .n_expert = 0, .has_output = 1, .n_attention_wv = 32};

/* Walks a 32-layer model in llama.cpp's order (per layer: attn_k, attn_output,
 * attn_q, attn_v, ffn_down, ffn_gate, ffn_up) and records each type. */
typedef struct walk {
    enum dtype attn_v[32], ffn_down[32], attn_output[32], attn_q[32], ffn_up[32];
    enum dtype output, token_embd;
} walk;

static walk run(enum quant_ftype ft, int pure, const quantize_model_info *mi) {
    quantize_params p = quantize_default_params();
    p.ftype = ft;
    p.pure = pure;
    quantize_state st = {0};
    walk w;
    w.output = quantize_tensor_type(&p, mi, &st, "output.weight", 4096);
    w.token_embd = quantize_tensor_type(&p, mi, &st, "token_embd.weight", 4096);
    for (int l = 0; l < 32; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%d.attn_k.weight", l);
        quantize_tensor_type(&p, mi, &st, n, 4096);
        snprintf(n, sizeof n, "blk.%d.attn_output.weight", l);
        w.attn_output[l] = quantize_tensor_type(&p, mi, &st, n, 4096);
        snprintf(n, sizeof n, "blk.%d.attn_q.weight", l);
        w.attn_q[l] = quantize_tensor_type(&p, mi, &st, n, 4096);
        snprintf(n, sizeof n, "blk.%d.attn_v.weight", l);
        w.attn_v[l] = quantize_tensor_type(&p, mi, &st, n, 4096);
        snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l);
        w.ffn_down[l] = quantize_tensor_type(&p, mi, &st, n, 11008);
        snprintf(n, sizeof n, "blk.%d.ffn_gate.weight", l);
        quantize_tensor_type(&p, mi, &st, n, 4096);
        snprintf(n, sizeof n, "blk.%d.ffn_up.weight", l);
        w.ffn_up[l] = quantize_tensor_type(&p, mi, &st, n, 4096);
    }
    return w;
}

static int more_bits_32(int l) {
    return l < 4 || l >= 28 || (l - 4) % 3 == 2;
}

Test(quantize_rules, q4_k_m) {
    const walk w = run(QUANT_FTYPE_Q4_K_M, 0, &llama32);
    cr_expect_eq(w.output, DTYPE_Q6_K);
    cr_expect_eq(w.token_embd, DTYPE_Q4_K);
    for (int l = 0; l < 32; l++) {
        const enum dtype more = more_bits_32(l) ? DTYPE_Q6_K : DTYPE_Q4_K;
        cr_expect_eq(w.attn_v[l], more, "attn_v layer %d", l);
        cr_expect_eq(w.ffn_down[l], more, "ffn_down layer %d", l);
        cr_expect_eq(w.attn_output[l], DTYPE_Q4_K);
        cr_expect_eq(w.attn_q[l], DTYPE_Q4_K);
        cr_expect_eq(w.ffn_up[l], DTYPE_Q4_K);
    }
    /* 16 of 32 layers get Q6_K: 0-3, 6, 9, 12, 15, 18, 21, 24, 27, 28-31 */
    int n6 = 0;
    for (int l = 0; l < 32; l++) n6 += w.attn_v[l] == DTYPE_Q6_K;
    cr_expect_eq(n6, 16);
}

Test(quantize_rules, q5_k_m) {
    const walk w = run(QUANT_FTYPE_Q5_K_M, 0, &llama32);
    cr_expect_eq(w.output, DTYPE_Q6_K);
    for (int l = 0; l < 32; l++) {
        const enum dtype more = more_bits_32(l) ? DTYPE_Q6_K : DTYPE_Q5_K;
        cr_expect_eq(w.attn_v[l], more, "attn_v layer %d", l);
        cr_expect_eq(w.ffn_down[l], more, "ffn_down layer %d", l);
        cr_expect_eq(w.attn_q[l], DTYPE_Q5_K);
    }
}

Test(quantize_rules, q3_k_m) {
    const walk w = run(QUANT_FTYPE_Q3_K_M, 0, &llama32);
    cr_expect_eq(w.output, DTYPE_Q6_K);
    cr_expect_eq(w.token_embd, DTYPE_Q3_K);
    for (int l = 0; l < 32; l++) {
        cr_expect_eq(w.attn_v[l], l < 2 ? DTYPE_Q5_K : DTYPE_Q4_K, "attn_v layer %d", l);
        cr_expect_eq(w.ffn_down[l], l < 2 ? DTYPE_Q5_K : DTYPE_Q4_K, "ffn_down layer %d", l);
        cr_expect_eq(w.attn_output[l], DTYPE_Q4_K);
        cr_expect_eq(w.attn_q[l], DTYPE_Q3_K);
    }
}

Test(quantize_rules, q4_k_s_and_q2_k) {
    walk w = run(QUANT_FTYPE_Q4_K_S, 0, &llama32);
    for (int l = 0; l < 32; l++) {
        cr_expect_eq(w.attn_v[l], l < 4 ? DTYPE_Q5_K : DTYPE_Q4_K);
        cr_expect_eq(w.ffn_down[l], l < 4 ? DTYPE_Q5_K : DTYPE_Q4_K);
    }
    w = run(QUANT_FTYPE_Q2_K, 0, &llama32);
    cr_expect_eq(w.attn_v[5], DTYPE_Q3_K);
    cr_expect_eq(w.ffn_down[5], DTYPE_Q3_K);
    cr_expect_eq(w.attn_output[5], DTYPE_Q3_K);
    cr_expect_eq(w.attn_q[5], DTYPE_Q2_K);
    quantize_model_info gqa = llama32;
    gqa.n_gqa = 4;
    w = run(QUANT_FTYPE_Q2_K, 0, &gqa);
    cr_expect_eq(w.attn_v[5], DTYPE_Q4_K);
}

Test(quantize_rules, tied_embeddings_get_the_output_type) {
    quantize_model_info tied = llama32;
    tied.has_output = 0;
    const walk w = run(QUANT_FTYPE_Q4_K_M, 0, &tied);
    cr_expect_eq(w.token_embd, DTYPE_Q6_K);
}

Test(quantize_rules, pure_gives_one_type) {
    const walk w = run(QUANT_FTYPE_Q4_K_M, 1, &llama32);
    cr_expect_eq(w.output, DTYPE_Q4_K);
    cr_expect_eq(w.token_embd, DTYPE_Q4_K);
    for (int l = 0; l < 32; l++) {
        cr_expect_eq(w.attn_v[l], DTYPE_Q4_K);
        cr_expect_eq(w.ffn_down[l], DTYPE_Q4_K);
    }
}

Test(quantize_rules, fallbacks_for_rows_not_a_multiple_of_256) {
    quantize_params p = quantize_default_params();
    quantize_state st = {0};
    p.pure = 1;
    static const struct {
        enum quant_ftype ft;
        uint64_t ne0;
        enum dtype want;
    } cases[] = {
        {QUANT_FTYPE_Q4_K_S, 288, DTYPE_Q5_0}, {QUANT_FTYPE_Q5_K_S, 288, DTYPE_Q5_1},
        {QUANT_FTYPE_Q6_K, 288, DTYPE_Q8_0},   {QUANT_FTYPE_Q3_K_S, 288, DTYPE_IQ4_NL},
        {QUANT_FTYPE_Q2_K, 288, DTYPE_IQ4_NL}, {QUANT_FTYPE_IQ4_XS, 288, DTYPE_IQ4_NL},
        {QUANT_FTYPE_Q4_K_S, 100, DTYPE_F16},  {QUANT_FTYPE_Q4_0, 100, DTYPE_F16},
        {QUANT_FTYPE_Q4_K_S, 512, DTYPE_Q4_K}, {QUANT_FTYPE_F16, 100, DTYPE_F16},
        {QUANT_FTYPE_BF16, 7, DTYPE_BF16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p.ftype = cases[i].ft;
        cr_expect_eq(quantize_tensor_type(&p, &llama32, &st, "blk.0.attn_q.weight", cases[i].ne0),
                     cases[i].want, "case %zu", i);
    }
    /* Mixed: output with ne0 % 256 != 0 gets Q8_0 (llama.cpp's rule). */
    p.pure = 0;
    p.ftype = QUANT_FTYPE_Q4_K_M;
    cr_expect_eq(quantize_tensor_type(&p, &llama32, &st, "output.weight", 288), DTYPE_Q8_0);
}

Test(quantize_rules, allowed_tensors) {
    cr_expect(quantize_tensor_allowed("blk.0.attn_q.weight", 2));
    cr_expect(quantize_tensor_allowed("token_embd.weight", 2));
    cr_expect(!quantize_tensor_allowed("blk.0.attn_norm.weight", 1));
    cr_expect(!quantize_tensor_allowed("blk.0.attn_norm.weight", 2));
    cr_expect(!quantize_tensor_allowed("blk.0.attn_q.bias", 2));
    cr_expect(!quantize_tensor_allowed("blk.0.ffn_gate_inp.weight", 2));
    cr_expect(!quantize_tensor_allowed("rope_freqs.weight", 1));
}

Test(quantize_rules, ftype_names) {
    enum quant_ftype ft;
    cr_expect_eq(quantize_ftype_from_name("q4_k_m", &ft), 0);
    cr_expect_eq(ft, QUANT_FTYPE_Q4_K_M);
    cr_expect_eq(quantize_ftype_from_name("Q4_K", &ft), 0);
    cr_expect_eq(ft, QUANT_FTYPE_Q4_K_M);
    cr_expect_eq(quantize_ftype_from_name("IQ4_NL", &ft), 0);
    cr_expect_eq(ft, 25);
    cr_expect_eq(quantize_ftype_from_name("bf16", &ft), 0);
    cr_expect_eq(ft, 32);
    cr_expect_neq(quantize_ftype_from_name("Q4_K_X", &ft), 0);
    cr_expect_str_eq(quantize_ftype_name(QUANT_FTYPE_Q3_K_S), "Q3_K_S");
    cr_expect_eq(quantize_ftype_base_type(QUANT_FTYPE_Q5_K_M), DTYPE_Q5_K);
}
