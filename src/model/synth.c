/*
 * synth.c - random-weight llama models (see synth.h). Tensors are streamed
 * to the writer one at a time; each tensor's rows are drawn and converted to
 * the target type in parallel on a thread pool. Row r of tensor t draws from
 * its own splitmix64 stream seeded by (seed, t, r), so the bytes do not
 * depend on the thread count.
 */
#include "model/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "kernels/quant.h"
#include "kernels/threadpool.h"

#define WEIGHT_STD 0.02
#define MAX_TENSORS (3 + 9 * 4096)

typedef struct tensor_spec {
    char name[64];
    uint64_t ne[2];
    uint32_t n_dims;
    enum dtype type;
    int is_norm;
} tensor_spec;

typedef struct fill_job {
    const tensor_spec *t;
    uint64_t seed, index;
    uint8_t *dst;
    size_t row_bytes;
    float *rows; /* (nth, ne[0]) */
} fill_job;

static int file_type_of(enum dtype t);
static void fill_rows(void *arg, int ith, int nth);
static int add_metadata(gguf_writer *w, const gguf_file *vocab, const synth_params *p, uint64_t n_vocab,
                        char *err, size_t err_size);

synth_params synth_default_params(void) {
    synth_params p;
    memset(&p, 0, sizeof p);
    p.arch = "llama";
    p.type = DTYPE_F16;
    p.seed = 1;
    return p;
}

int synth_model(const synth_params *p, char *err, size_t err_size) {
    if (!p->arch || strcmp(p->arch, "llama"))
        return err_set(err, err_size, INFERD_EINVAL, "synth: architecture '%s' is not supported (llama)",
                       p->arch ? p->arch : "(null)");
    if (!p->n_embd || !p->n_ff || !p->n_layer || !p->n_head || !p->n_head_kv || !p->n_ctx)
        return err_set(err, err_size, INFERD_EINVAL,
                       "synth: n_embd %u, n_ff %u, n_layer %u, n_head %u, n_head_kv %u, ctx %u must all be set",
                       p->n_embd, p->n_ff, p->n_layer, p->n_head, p->n_head_kv, p->n_ctx);
    if (p->n_embd % p->n_head || p->n_head % p->n_head_kv || (p->n_embd / p->n_head) % 2)
        return err_set(err, err_size, INFERD_EINVAL,
                       "synth: n_embd %u must split into n_head %u even-sized heads, a multiple of n_head_kv %u",
                       p->n_embd, p->n_head, p->n_head_kv);
    if (p->n_layer > 4096)
        return err_set(err, err_size, INFERD_EINVAL, "synth: n_layer %u is above 4096", p->n_layer);
    const dtype_info *ti = dtype_get((uint32_t)p->type);
    if (!ti || !quant_supported(p->type) || p->type == DTYPE_Q8_1 || p->type == DTYPE_Q8_K)
        return err_set(err, err_size, INFERD_EINVAL, "synth: weight type %s cannot be written",
                       ti ? ti->name : "?");
    if (p->n_embd % ti->block_size || p->n_ff % ti->block_size)
        return err_set(err, err_size, INFERD_EINVAL,
                       "synth: n_embd %u and n_ff %u must be multiples of the %s block size %u", p->n_embd,
                       p->n_ff, ti->name, ti->block_size);

    int rc;
    gguf_file *vocab = NULL;
    gguf_writer *w = NULL;
    threadpool *tp = NULL;
    tensor_spec *ts = NULL;
    uint8_t *buf = NULL;
    float *rows = NULL;
    if ((rc = gguf_open(p->vocab_path, &vocab, err, err_size))) goto fail;
    enum gguf_value_type et;
    uint64_t n_vocab = 0;
    if (gguf_get_arr(vocab, "tokenizer.ggml.tokens", &et, &n_vocab) || et != GGUF_TYPE_STRING || !n_vocab) {
        rc = err_set(err, err_size, INFERD_EFORMAT, "synth: '%s' has no tokenizer.ggml.tokens string array",
                     p->vocab_path);
        goto fail;
    }
    uint32_t head_dim = p->n_embd / p->n_head, n_kv = head_dim * p->n_head_kv;
    size_t n_t = 0;
    ts = calloc(MAX_TENSORS, sizeof *ts);
    if (!ts) goto nomem;
#define ADD(nm_fmt, layer, n_in, n_out, norm)                                                              \
    do {                                                                                                   \
        tensor_spec *t = &ts[n_t++];                                                                       \
        snprintf(t->name, sizeof t->name, nm_fmt, layer);                                                  \
        t->ne[0] = (n_in);                                                                                 \
        t->ne[1] = (n_out);                                                                                \
        t->n_dims = (norm) ? 1 : 2;                                                                        \
        t->type = (norm) ? DTYPE_F32 : p->type;                                                            \
        t->is_norm = (norm);                                                                               \
    } while (0)
    ADD("token_embd.weight%.0d", 0, p->n_embd, n_vocab, 0);
    ADD("output_norm.weight%.0d", 0, p->n_embd, 1, 1);
    ADD("output.weight%.0d", 0, p->n_embd, n_vocab, 0);
    for (uint32_t l = 0; l < p->n_layer; l++) {
        ADD("blk.%u.attn_norm.weight", l, p->n_embd, 1, 1);
        ADD("blk.%u.attn_q.weight", l, p->n_embd, p->n_embd, 0);
        ADD("blk.%u.attn_k.weight", l, p->n_embd, n_kv, 0);
        ADD("blk.%u.attn_v.weight", l, p->n_embd, n_kv, 0);
        ADD("blk.%u.attn_output.weight", l, p->n_embd, p->n_embd, 0);
        ADD("blk.%u.ffn_norm.weight", l, p->n_embd, 1, 1);
        ADD("blk.%u.ffn_gate.weight", l, p->n_embd, p->n_ff, 0);
        ADD("blk.%u.ffn_up.weight", l, p->n_embd, p->n_ff, 0);
        ADD("blk.%u.ffn_down.weight", l, p->n_ff, p->n_embd, 0);
    }
#undef ADD
    if (!(w = gguf_writer_new())) goto nomem;
    if ((rc = add_metadata(w, vocab, p, n_vocab, err, err_size))) goto fail;
    size_t max_bytes = 0;
    for (size_t i = 0; i < n_t; i++) {
        uint64_t rb;
        if (dtype_row_bytes(ts[i].type, ts[i].ne[0], &rb)) {
            rc = err_set(err, err_size, INFERD_EINVAL, "synth: tensor '%s' has no row size", ts[i].name);
            goto fail;
        }
        size_t bytes = (size_t)rb * ts[i].ne[1];
        if (bytes > max_bytes) max_bytes = bytes;
        if ((rc = gguf_writer_add_tensor(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, NULL, bytes))) {
            rc = err_set(err, err_size, rc, "synth: %s", gguf_writer_error(w));
            goto fail;
        }
    }
    if (!(tp = threadpool_new(p->n_threads))) goto nomem;
    int nth = threadpool_n_threads(tp);
    uint32_t widest = p->n_ff > p->n_embd ? p->n_ff : p->n_embd;
    if (!(buf = malloc(max_bytes)) || !(rows = malloc(sizeof(float) * widest * (size_t)nth))) goto nomem;
    if ((rc = gguf_writer_begin(w, p->out_path, err, err_size))) goto fail;
    for (size_t i = 0; i < n_t; i++) {
        uint64_t rb;
        dtype_row_bytes(ts[i].type, ts[i].ne[0], &rb);
        fill_job j = {&ts[i], p->seed, i, buf, (size_t)rb, rows};
        threadpool_run(tp, fill_rows, &j);
        if ((rc = gguf_writer_write_tensor_data(w, buf, rb * ts[i].ne[1], err, err_size))) goto fail;
    }
    rc = gguf_writer_finish(w, err, err_size);
    goto done;
nomem:
    rc = err_set(err, err_size, INFERD_ENOMEM, "synth: out of memory");
fail:
done:
    free(rows);
    free(buf);
    threadpool_free(tp);
    gguf_writer_free(w);
    free(ts);
    gguf_close(vocab);
    return rc;
}

/* Worker: rows ith, ith+nth, ... of the job's tensor. */
static void fill_rows(void *arg, int ith, int nth) {
    fill_job *j = arg;
    const tensor_spec *t = j->t;
    float *row = j->rows + (size_t)ith * t->ne[0];
    for (uint64_t r = (uint64_t)ith; r < t->ne[1]; r += (uint64_t)nth) {
        if (t->is_norm) {
            for (uint64_t i = 0; i < t->ne[0]; i++) row[i] = 1.0f;
        } else {
            uint64_t s = hash_combine(hash_combine(j->seed, j->index), r);
            for (uint64_t i = 0; i < t->ne[0]; i += 2) {
                /* Box-Muller: two normals from two uniforms. */
                double u1 = rng_uniform(&s), u2 = rng_uniform(&s);
                double m = WEIGHT_STD * sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
                row[i] = (float)(m * cos(a));
                if (i + 1 < t->ne[0]) row[i + 1] = (float)(m * sin(a));
            }
        }
        quantize_rows(t->type, row, j->dst + r * j->row_bytes, 1, (int64_t)t->ne[0]);
    }
}

static int add_metadata(gguf_writer *w, const gguf_file *vocab, const synth_params *p, uint64_t n_vocab,
                        char *err, size_t err_size) {
    char name[128];
    snprintf(name, sizeof name, "synth-llama-%ue-%ul-%s", p->n_embd, p->n_layer, dtype_get(p->type)->name);
    int rc = 0;
    rc |= gguf_writer_set_str(w, "general.architecture", "llama");
    rc |= gguf_writer_set_str(w, "general.name", name);
    rc |= gguf_writer_set_u32(w, "general.file_type", (uint32_t)file_type_of(p->type));
    if (p->type != DTYPE_F32 && p->type != DTYPE_F16 && p->type != DTYPE_BF16)
        rc |= gguf_writer_set_u32(w, "general.quantization_version", 2);
    rc |= gguf_writer_set_u32(w, "llama.context_length", p->n_ctx);
    rc |= gguf_writer_set_u32(w, "llama.embedding_length", p->n_embd);
    rc |= gguf_writer_set_u32(w, "llama.feed_forward_length", p->n_ff);
    rc |= gguf_writer_set_u32(w, "llama.block_count", p->n_layer);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count", p->n_head);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count_kv", p->n_head_kv);
    rc |= gguf_writer_set_u32(w, "llama.rope.dimension_count", p->n_embd / p->n_head);
    rc |= gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    rc |= gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    rc |= gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)n_vocab);
    for (uint64_t i = 0; i < gguf_n_kv(vocab); i++) {
        gguf_str k = gguf_kv_key(vocab, i);
        if (k.len > 10 && !memcmp(k.data, "tokenizer.", 10)) rc |= gguf_writer_copy_kv(w, vocab, i);
    }
    if (rc) return err_set(err, err_size, INFERD_ENOMEM, "synth: metadata: %s", gguf_writer_error(w));
    return 0;
}

/* llama.cpp's LLAMA_FTYPE for a model whose matrices are all of type t. */
static int file_type_of(enum dtype t) {
    switch (t) {
    case DTYPE_F32: return 0;
    case DTYPE_F16: return 1;
    case DTYPE_Q4_0: return 2;
    case DTYPE_Q4_1: return 3;
    case DTYPE_Q8_0: return 7;
    case DTYPE_Q5_0: return 8;
    case DTYPE_Q5_1: return 9;
    case DTYPE_Q2_K: return 10;
    case DTYPE_Q3_K: return 11;
    case DTYPE_Q4_K: return 14;
    case DTYPE_Q5_K: return 16;
    case DTYPE_Q6_K: return 18;
    case DTYPE_IQ4_NL: return 25;
    case DTYPE_IQ4_XS: return 30;
    case DTYPE_BF16: return 32;
    default: return 0;
    }
}
