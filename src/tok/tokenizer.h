/*
 * tokenizer.h - text <-> token ids for the vocabularies llama.cpp knows:
 * SentencePiece-style BPE with scores and byte fallback ("llama"), byte-level
 * BPE with a regex pre-tokenizer ("gpt2", chosen by tokenizer.ggml.pre) and
 * WordPiece ("bert"). Loaded from a GGUF file's tokenizer.ggml.* keys; the
 * results follow llama.cpp's src/llama-vocab.cpp (commit c392e509), whose
 * test vectors are Hugging Face ground truth.
 *
 * Flow of tok_encode: special-token partitioning (special.c) -> per raw
 * fragment: SPM (spm.c) | pre-tokenizer regexes (pretok.c) + BPE (bpe.c) |
 * WordPiece (wpm.c). tok_decode (decode.c) is llama_detokenize.
 */
#ifndef TOK_TOKENIZER_H
#define TOK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "gguf/gguf.h"

typedef struct tokenizer tokenizer;

/* Builds a tokenizer from f's tokenizer.ggml.* metadata. Copies everything it
 * needs, so f may be closed afterwards. Returns 0 and *out (free with
 * tok_free), or INFERD_EFORMAT (missing/malformed keys, unknown model or
 * pre-tokenizer: err names it), INFERD_EUNSUPPORTED or INFERD_ENOMEM. */
int tok_load(const gguf_file *f, tokenizer **out, char *err, size_t err_size);
/* Frees t. Accepts NULL. */
void tok_free(tokenizer *t);

/* Number of tokens in the vocabulary. */
uint32_t tok_n_vocab(const tokenizer *t);
/* Begin/end-of-sequence ids; -1 when the vocabulary has none. */
int32_t tok_bos(const tokenizer *t);
int32_t tok_eos(const tokenizer *t);
/* 1 if id ends generation (eos, eot, eom, <|im_end|>, ... as llama.cpp
 * decides from ids and token texts), else 0 (also for invalid ids). */
int tok_is_eog(const tokenizer *t, int32_t id);
/* 1 if id is a CONTROL token, else 0 (also for invalid ids). */
int tok_is_control(const tokenizer *t, int32_t id);
/* Whether tok_encode(add_special=1) adds BOS / EOS for this model. */
int tok_add_bos(const tokenizer *t);
int tok_add_eos(const tokenizer *t);
/* The model family: "llama" (SPM), "gpt2" (BPE) or "bert" (WPM), and the
 * pre-tokenizer name as given in the file ("default" when absent). Borrowed. */
const char *tok_model_name(const tokenizer *t);
const char *tok_pre_name(const tokenizer *t);
/* Raw vocabulary text of id (as stored in the GGUF; SPM spaces are '▁'),
 * borrowed; NULL for an invalid id. */
const char *tok_text(const tokenizer *t, int32_t id, size_t *len);
/* The id whose vocabulary text is exactly text[0..len), or -1. */
int32_t tok_find(const tokenizer *t, const char *text, size_t len);

/* Tokenizes text[0..len) (any bytes; invalid UTF-8 is handled like
 * llama.cpp, never a crash). add_special adds BOS/EOS as the model says;
 * parse_special makes CONTROL tokens' texts in the input match as those tokens
 * (USER_DEFINED tokens always match). Thread-safe on a shared tokenizer.
 * On success returns 0, *ids (malloc'd, never NULL, caller frees) and
 * *n_ids; else INFERD_ENOMEM / INFERD_EINVAL and *ids NULL. */
int tok_encode(const tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
               int32_t **ids, size_t *n_ids, char *err, size_t err_size);

/* The bytes one token stands for in text: byte tokens give the byte, SPM '▁'
 * gives ' ', byte-level BPE text is unmapped to bytes. CONTROL and UNKNOWN
 * tokens give "" unless special. Borrowed (precomputed at load). Returns 0, or
 * INFERD_EINVAL for an invalid id (*data "" and *len 0). */
int tok_piece(const tokenizer *t, int32_t id, int special, const char **data, size_t *len);

/* Detokenizes ids[0..n) like llama.cpp's llama_detokenize(remove_special=0,
 * unparse_special=special): pieces, one leading space dropped for SPM-style
 * vocabs, clean_up_tokenization_spaces where the model asks for it. Appends
 * to out. Returns 0, INFERD_EINVAL (an invalid id; out unchanged) or
 * INFERD_ENOMEM. */
int tok_decode(const tokenizer *t, const int32_t *ids, size_t n, int special, buf *out);

#endif
