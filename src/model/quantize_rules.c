/*
 * quantize_rules.c - which type each tensor gets under `inferd quantize`:
 * the ftype table and llama.cpp's per-tensor rules (llama_tensor_get_type at
 * c392e509), restricted to the ftypes we write. The mixes give more bits to
 * the tensors quantization hurts most: output (and a tied token_embd),
 * attn_v, ffn_down in the first and last eighth of the layers and every
 * third layer between (use_more_bits), attn_output for the 3-bit mixes.
 * Then a row length that is not a multiple of the type's block falls back
 * to a 32-block type, or F16.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "inferd.h"
#include "model/quantize.h"

typedef struct ftype_entry {
    const char *name;
    enum quant_ftype ftype;
    enum dtype base;
} ftype_entry;

static const ftype_entry ftypes[] = {
    {"F32", QUANT_FTYPE_ALL_F32, DTYPE_F32},      {"F16", QUANT_FTYPE_F16, DTYPE_F16},
    {"BF16", QUANT_FTYPE_BF16, DTYPE_BF16},       {"Q4_0", QUANT_FTYPE_Q4_0, DTYPE_Q4_0},
    {"Q4_1", QUANT_FTYPE_Q4_1, DTYPE_Q4_1},       {"Q5_0", QUANT_FTYPE_Q5_0, DTYPE_Q5_0},
    {"Q5_1", QUANT_FTYPE_Q5_1, DTYPE_Q5_1},       {"Q8_0", QUANT_FTYPE_Q8_0, DTYPE_Q8_0},
    {"Q2_K", QUANT_FTYPE_Q2_K, DTYPE_Q2_K},       {"Q3_K_S", QUANT_FTYPE_Q3_K_S, DTYPE_Q3_K},
    {"Q3_K_M", QUANT_FTYPE_Q3_K_M, DTYPE_Q3_K},   {"Q3_K_L", QUANT_FTYPE_Q3_K_L, DTYPE_Q3_K},
    {"Q4_K_S", QUANT_FTYPE_Q4_K_S, DTYPE_Q4_K},   {"Q4_K_M", QUANT_FTYPE_Q4_K_M, DTYPE_Q4_K},
    {"Q5_K_S", QUANT_FTYPE_Q5_K_S, DTYPE_Q5_K},   {"Q5_K_M", QUANT_FTYPE_Q5_K_M, DTYPE_Q5_K},
    {"Q6_K", QUANT_FTYPE_Q6_K, DTYPE_Q6_K},       {"IQ4_NL", QUANT_FTYPE_IQ4_NL, DTYPE_IQ4_NL},
    {"IQ4_XS", QUANT_FTYPE_IQ4_XS, DTYPE_IQ4_XS},
};
#define N_FTYPES (sizeof ftypes / sizeof ftypes[0])

/* llama-quantize's short aliases. */
static const struct {
    const char *alias;
    enum quant_ftype ftype;
} aliases[] = {
    {"Q3_K", QUANT_FTYPE_Q3_K_M},
    {"Q4_K", QUANT_FTYPE_Q4_K_M},
    {"Q5_K", QUANT_FTYPE_Q5_K_M},
};

static const ftype_entry *ftype_find(enum quant_ftype ftype) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ftype == ftype) return &ftypes[i];
    return NULL;
}

quantize_params quantize_default_params(void) {
    quantize_params p = {.ftype = QUANT_FTYPE_Q4_K_M, .pure = 0, .n_threads = 0, .verbose = 0};
    return p;
}

int quantize_ftype_from_name(const char *name, enum quant_ftype *out) {
    for (size_t i = 0; i < N_FTYPES; i++) {
        if (strcasecmp(name, ftypes[i].name) == 0) {
            *out = ftypes[i].ftype;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcasecmp(name, aliases[i].alias) == 0) {
            *out = aliases[i].ftype;
            return 0;
        }
    }
    return INFERD_ENOTFOUND;
}

const char *quantize_ftype_name(enum quant_ftype ftype) {
    const ftype_entry *e = ftype_find(ftype);
    return e ? e->name : "?";
}

enum dtype quantize_ftype_base_type(enum quant_ftype ftype) {
    const ftype_entry *e = ftype_find(ftype);
    return e ? e->base : DTYPE_F32;
}

static int ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* tensor_allows_quantization of llama-quant.cpp, minus its only_copy and
 * quantize_output_tensor options (always off / on here). */
int quantize_tensor_allowed(const char *name, uint32_t n_dims) {
    static const char *const never[] = {
        "_norm.weight",
        "ffn_gate_inp.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d.weight",
        "shortconv.conv.weight",
        "time_mix_first.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
    };
    if (n_dims < 2 || !ends_with(name, "weight")) return 0;
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (strstr(name, never[i])) return 0;
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0)
        return 0;
    return 1;
}

static int is_quantized(enum dtype t) {
    return t != DTYPE_F32 && t != DTYPE_F16 && t != DTYPE_BF16;
}

static int use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

/* The layer of a ffn tensor: its position among its kind, or (MoE) the
 * number in its name, as llama.cpp's layer_info. */
static int layer_of(int counter, int n_expert, const char *name) {
    int il = counter;
    if (n_expert > 1 && sscanf(name, "blk.%d.", &il) != 1) il = counter;
    return il;
}

/* llama_tensor_get_type's mix rules for our ftypes. */
static enum dtype mix_rules(enum quant_ftype ft, const quantize_model_info *mi, quantize_state *st,
                            const char *name, uint64_t ne0, enum dtype t) {
    const int tied_embd = !mi->has_output && strcmp(name, "token_embd.weight") == 0;
    if (strcmp(name, "output.weight") == 0 || tied_embd) {
        const uint64_t qk = dtype_get(t)->block_size;
        if (mi->is_falcon || ne0 % qk != 0)
            t = DTYPE_Q8_0;
        else if (t != DTYPE_Q8_0)
            t = DTYPE_Q6_K;
    } else if (strcmp(name, "token_embd.weight") == 0 ||
               strcmp(name, "per_layer_token_embd.weight") == 0) {
        /* kept at the base type for every ftype we write */
    } else if (strstr(name, "attn_v.weight")) {
        if (ft == QUANT_FTYPE_Q2_K)
            t = mi->n_gqa >= 4 ? DTYPE_Q4_K : DTYPE_Q3_K;
        else if (ft == QUANT_FTYPE_Q3_K_M)
            t = st->i_attention_wv < 2 ? DTYPE_Q5_K : DTYPE_Q4_K;
        else if (ft == QUANT_FTYPE_Q3_K_L)
            t = DTYPE_Q5_K;
        else if ((ft == QUANT_FTYPE_IQ4_NL || ft == QUANT_FTYPE_IQ4_XS) && mi->n_gqa >= 4)
            t = DTYPE_Q5_K;
        else if ((ft == QUANT_FTYPE_Q4_K_M || ft == QUANT_FTYPE_Q5_K_M) &&
                 use_more_bits(st->i_attention_wv, mi->n_attention_wv))
            t = DTYPE_Q6_K;
        else if (ft == QUANT_FTYPE_Q4_K_S && st->i_attention_wv < 4)
            t = DTYPE_Q5_K;
        if (mi->is_70b && (t == DTYPE_Q3_K || t == DTYPE_Q4_K)) t = DTYPE_Q5_K;
        if (mi->n_expert == 8) t = DTYPE_Q8_0;
        st->i_attention_wv++;
    } else if (strstr(name, "attn_k.weight")) {
        if (mi->n_expert == 8) t = DTYPE_Q8_0;
    } else if (strstr(name, "attn_q.weight")) {
        /* only the IQ2/IQ3 ftypes change attn_q */
    } else if (strstr(name, "ffn_down")) {
        const int il = layer_of(st->i_ffn_down, mi->n_expert, name), nl = mi->n_layer;
        if (ft == QUANT_FTYPE_Q2_K)
            t = DTYPE_Q3_K;
        else if (ft == QUANT_FTYPE_Q3_K_M)
            t = il < nl / 16                                ? DTYPE_Q5_K
                : (!mi->is_falcon || use_more_bits(il, nl)) ? DTYPE_Q4_K
                                                            : DTYPE_Q3_K;
        else if (ft == QUANT_FTYPE_Q3_K_L)
            t = mi->is_falcon ? DTYPE_Q4_K : DTYPE_Q5_K;
        else if (ft == QUANT_FTYPE_Q4_K_M) {
            if (mi->is_falcon)
                t = il < nl / 16 ? DTYPE_Q6_K : use_more_bits(il, nl) ? DTYPE_Q5_K : DTYPE_Q4_K;
            else if (use_more_bits(il, nl))
                t = DTYPE_Q6_K;
        } else if (il < nl / 8 && (ft == QUANT_FTYPE_IQ4_NL || ft == QUANT_FTYPE_IQ4_XS))
            t = DTYPE_Q5_K;
        else if (ft == QUANT_FTYPE_Q5_K_M && use_more_bits(il, nl))
            t = DTYPE_Q6_K;
        else if (ft == QUANT_FTYPE_Q4_K_S && !mi->is_falcon && il < nl / 8)
            t = DTYPE_Q5_K;
        st->i_ffn_down++;
    } else if (strstr(name, "attn_output.weight")) {
        if (!mi->is_falcon) {
            if (mi->n_expert == 8) {
                if (ft == QUANT_FTYPE_Q2_K || ft == QUANT_FTYPE_Q3_K_S ||
                    ft == QUANT_FTYPE_Q3_K_M || ft == QUANT_FTYPE_IQ4_NL ||
                    ft == QUANT_FTYPE_Q4_K_S || ft == QUANT_FTYPE_Q4_K_M ||
                    ft == QUANT_FTYPE_IQ4_XS)
                    t = DTYPE_Q5_K;
            } else {
                if (ft == QUANT_FTYPE_Q2_K)
                    t = DTYPE_Q3_K;
                else if (ft == QUANT_FTYPE_Q3_K_M)
                    t = DTYPE_Q4_K;
                else if (ft == QUANT_FTYPE_Q3_K_L)
                    t = DTYPE_Q5_K;
            }
        } else if (ft == QUANT_FTYPE_Q3_K_L) {
            t = DTYPE_Q4_K;
        }
    } else if (strstr(name, "attn_qkv.weight")) {
        if (ft == QUANT_FTYPE_Q3_K_M || ft == QUANT_FTYPE_Q3_K_L)
            t = DTYPE_Q4_K;
        else if (ft == QUANT_FTYPE_Q4_K_M)
            t = DTYPE_Q5_K;
        else if (ft == QUANT_FTYPE_Q5_K_M)
            t = DTYPE_Q6_K;
    } else if (strstr(name, "ffn_gate")) {
        st->i_ffn_gate++;
    } else if (strstr(name, "ffn_up")) {
        st->i_ffn_up++;
    }
    return t;
}

enum dtype quantize_tensor_type(const quantize_params *params, const quantize_model_info *mi,
                                quantize_state *st, const char *name, uint64_t ne0) {
    enum dtype t = quantize_ftype_base_type(params->ftype);
    if (!is_quantized(t)) return t;
    if (!params->pure) t = mix_rules(params->ftype, mi, st, name, ne0, t);
    /* Rows that do not split into whole blocks: llama.cpp's fallbacks.
     * (llama-quantize --pure skips this step and then fails on such a
     * tensor; we fall back in both modes.) */
    if (ne0 % dtype_get(t)->block_size != 0) {
        switch (t) {
        case DTYPE_Q2_K:
        case DTYPE_Q3_K:
        case DTYPE_IQ4_XS:
            t = DTYPE_IQ4_NL;
            break;
        case DTYPE_Q4_K:
            t = DTYPE_Q5_0;
            break;
        case DTYPE_Q5_K:
            t = DTYPE_Q5_1;
            break;
        case DTYPE_Q6_K:
            t = DTYPE_Q8_0;
            break;
        default:
            break;
        }
        if (ne0 % dtype_get(t)->block_size != 0) t = DTYPE_F16;
        st->n_fallback++;
    }
    return t;
}
