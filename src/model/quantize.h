/*
 * quantize.h - `inferd quantize`: rewrite a GGUF model with its weights in
 * another type, choosing per tensor as llama-quantize does (llama.cpp
 * c392e509, llama_tensor_get_type): the file types ("ftypes") below, the
 * K-quant mixes (Q3_K_M, Q4_K_M, Q5_K_M, ...) that give attn_v, ffn_down,
 * attn_output, output and token_embd more bits, and the fallbacks for rows
 * that are not a multiple of a type's block. The bytes come from
 * quantize_rows (src/kernels/quant.h), so they match llama-quantize's.
 *
 * Output: the input's metadata in order, then general.quantization_version
 * = 2 and general.file_type = the ftype (moved to the end, as llama-quantize
 * does); tensors ordered by layer, then by name (llama.cpp's loader order).
 */
#ifndef MODEL_QUANTIZE_H
#define MODEL_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"

/* llama_ftype values (written as general.file_type). */
enum quant_ftype {
    QUANT_FTYPE_ALL_F32 = 0,
    QUANT_FTYPE_F16 = 1,
    QUANT_FTYPE_Q4_0 = 2,
    QUANT_FTYPE_Q4_1 = 3,
    QUANT_FTYPE_Q8_0 = 7,
    QUANT_FTYPE_Q5_0 = 8,
    QUANT_FTYPE_Q5_1 = 9,
    QUANT_FTYPE_Q2_K = 10,
    QUANT_FTYPE_Q3_K_S = 11,
    QUANT_FTYPE_Q3_K_M = 12,
    QUANT_FTYPE_Q3_K_L = 13,
    QUANT_FTYPE_Q4_K_S = 14,
    QUANT_FTYPE_Q4_K_M = 15,
    QUANT_FTYPE_Q5_K_S = 16,
    QUANT_FTYPE_Q5_K_M = 17,
    QUANT_FTYPE_Q6_K = 18,
    QUANT_FTYPE_IQ4_NL = 25,
    QUANT_FTYPE_IQ4_XS = 30,
    QUANT_FTYPE_BF16 = 32,
};

typedef struct quantize_params {
    enum quant_ftype ftype;
    int pure;      /* 1: every quantizable tensor gets the ftype's base type */
    int n_threads; /* <= 0: the machine's physical cores */
    int verbose;   /* 1: one line per tensor on stderr */
} quantize_params;

/* Q4_K_M, 4 threads, not pure, quiet. */
quantize_params quantize_default_params(void);

/* Parses a type name as llama-quantize spells it ("Q4_K_M", "q4_k_m", "F16",
 * "BF16", "Q3_K_S", ...). Returns 0, or INFERD_ENOTFOUND. */
int quantize_ftype_from_name(const char *name, enum quant_ftype *out);
/* "Q4_K_M" etc.; "?" for an unknown value. */
const char *quantize_ftype_name(enum quant_ftype ftype);
/* The tensor type an ftype starts from (Q4_K for Q4_K_S/M, ...). */
enum dtype quantize_ftype_base_type(enum quant_ftype ftype);

/* Reads in_path, writes out_path (via a temporary file and rename). Returns
 * 0, or INFERD_EIO / INFERD_EFORMAT (unreadable input), INFERD_EUNSUPPORTED
 * (a tensor in a type we cannot convert from), INFERD_ENOMEM, INFERD_EINVAL,
 * with a message in err naming the file or tensor. */
int quantize_file(const char *in_path, const char *out_path, const quantize_params *params,
                  char *err, size_t err_size);

/* ---- the per-tensor decision, exposed for tests ---- */

typedef struct quantize_model_info {
    int n_layer;        /* <arch>.block_count */
    int n_gqa;          /* head_count / head_count_kv (1 when unknown) */
    int n_expert;       /* <arch>.expert_count (0 when absent) */
    int is_falcon;      /* arch == "falcon" */
    int is_70b;         /* llama with 80 layers (llama.cpp's LLM_TYPE_70B) */
    int has_output;     /* the file has output.weight (else token_embd is tied) */
    int n_attention_wv; /* tensors named *attn_v.weight or *attn_qkv.weight */
} quantize_model_info;

/* Counters advanced in tensor order, as llama-quantize's. Zero-initialise. */
typedef struct quantize_state {
    int i_attention_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
    int n_fallback;
} quantize_state;

/* 1 if llama-quantize would convert this tensor at all (2-D+ "...weight",
 * not a norm, not a position / token-type embedding, ...). */
int quantize_tensor_allowed(const char *name, uint32_t n_dims);

/* The type tensor `name` (row length ne0) gets under params, given the file
 * and the counters (advanced here). Only for allowed tensors. */
enum dtype quantize_tensor_type(const quantize_params *params, const quantize_model_info *mi,
                                quantize_state *st, const char *name, uint64_t ne0);

#endif
