/*
 * model_load.c - binds a GGUF file to the llama-family architecture: reads
 * the hyper-parameters (<arch>.* keys, llama.cpp's defaults), checks every
 * tensor's presence, shape and type, converts the small vectors (norms,
 * biases, rope frequency factors) to f32, describes each weight matrix for
 * the matmul kernels, loads the tokenizer and starts the thread pool.
 * Everything here is untrusted input: each failure names the key or tensor.
 */
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/util.h"
#include "kernels/attention.h"
#include "kernels/quant.h"
#include "model/model_int.h"
#include "tok/tokenizer.h"

#define MAX_LAYERS 1024
#define MAX_DIM (1u << 20)

static int read_hparams(model *m, char *err, size_t err_size);
static int bind_tensors(model *m, char *err, size_t err_size);
static void open_embd_reader(model *m, const char *path);
static void release_load_memory(const model *m);

model_params model_default_params(void) {
    model_params p = {.n_threads = 0, .max_batch = 512, .max_ubatch = MODEL_UBATCH};
    return p;
}

int model_load(const char *path, const model_params *p, model **out, char *err,
               size_t err_size) {
    int rc;
    *out = NULL;
    model *m = calloc(1, sizeof(*m));
    if (!m) return err_set(err, err_size, INFERD_ENOMEM, "model: out of memory");
    m->embd_fd = -1;
    m->params = p ? *p : model_default_params();
    if (m->params.max_batch == 0) m->params.max_batch = 512;
    if (m->params.max_ubatch == 0) m->params.max_ubatch = MODEL_UBATCH;
    if (m->params.max_ubatch < MODEL_UBATCH_MIN) m->params.max_ubatch = MODEL_UBATCH_MIN;
    const char *lanes = getenv("INFERD_LANES");
    if (lanes && !strcmp(lanes, "0")) m->params.no_lanes = 1;

    rc = gguf_open(path, &m->gguf, err, err_size);
    if (rc) goto fail;
    rc = read_hparams(m, err, err_size);
    if (rc) goto fail;
    rc = bind_tensors(m, err, err_size);
    if (rc) goto fail;
    rc = tok_load(m->gguf, &m->tok, err, err_size);
    if (rc) goto fail;
    m->chat_template = gguf_get_str_dup(m->gguf, "tokenizer.chat_template");
    m->tp = threadpool_new(m->params.n_threads);
    if (!m->tp) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "model: cannot start %d worker threads",
                     m->params.n_threads);
        goto fail;
    }
    rc = model_reserve(m, m->params.max_batch);
    if (rc) {
        err_set(err, err_size, rc, "model: cannot reserve scratch for %u tokens",
                m->params.max_batch);
        goto fail;
    }
    open_embd_reader(m, path);
    release_load_memory(m);
    *out = m;
    return 0;
fail:
    model_free(m);
    return rc;
}

static void free_layer(model_layer *l) {
    free(l->attn_norm);
    free(l->ffn_norm);
    free(l->bq);
    free(l->bk);
    free(l->bv);
    free(l->bo);
    mm_weight_release(&l->wq);
    mm_weight_release(&l->wk);
    mm_weight_release(&l->wv);
    mm_weight_release(&l->wo);
    mm_weight_release(&l->w_gate);
    mm_weight_release(&l->w_up);
    mm_weight_release(&l->w_down);
}

void model_free(model *m) {
    if (!m) return;
    if (m->layers) {
        for (uint32_t i = 0; i < m->hp.n_layer; i++) free_layer(&m->layers[i]);
        free(m->layers);
    }
    mm_weight_release(&m->output);
    free(m->output_norm);
    free(m->rope_freqs);
    model_scratch_free(&m->s);
    for (uint32_t i = 0; i < m->n_lanes; i++) model_scratch_free(&m->lanes[i]);
    free(m->lanes);
    threadpool_free(m->tp);
    tok_free(m->tok);
    free(m->chat_template);
    gguf_close(m->gguf);
    if (m->embd_fd >= 0) close(m->embd_fd);
    free(m);
}

/* The embedding lookup reads its rows with pread() instead of through the
 * mapping: a lookup touches one row, but a page fault maps the pages around
 * it too (the kernel's fault-around, 64 KiB), so a prompt of random ids
 * would make nearly all of token_embd resident. A tied token_embd is read
 * whole as the output matrix anyway and keeps using the mapping, as does
 * every model when the file cannot be reopened (embd_fd -1). */
static void open_embd_reader(model *m, const char *path) {
    if (m->hp.tied_output) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != gguf_file_size(m->gguf)) {
        close(fd);
        return;
    }
    m->embd_fd = fd;
    m->embd_off = gguf_data_offset(m->gguf) + m->tok_embd->offset;
}

/* Hands back what only the load needed: the pages of the file's metadata
 * (parsed into the tokenizer and the hyper-parameters; they come back from
 * the file if read again) and the heap the tokenizer's construction freed. */
static void release_load_memory(const model *m) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t meta = (size_t)gguf_data_offset(m->gguf) & ~(page - 1);
    if (meta > 0) madvise((void *)gguf_base(m->gguf), meta, MADV_DONTNEED);
    malloc_trim(0);
}

const model_hparams *model_get_hparams(const model *m) {
    return &m->hp;
}

const tokenizer *model_get_tokenizer(const model *m) {
    return m->tok;
}

const char *model_chat_template(const model *m) {
    return m->chat_template;
}

/* ---- hyper-parameters ---- */

/* Reads <arch>.<name> as u32 into *out. Missing: keeps *out when !required. */
static int key_u32(model *m, const char *name, int required, uint32_t *out, char *err,
                   size_t err_size) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->hp.arch, name);
    int rc = gguf_get_u32(m->gguf, key, out);
    if (rc == INFERD_ENOTFOUND && !required) return 0;
    if (rc == INFERD_ENOTFOUND)
        return err_set(err, err_size, INFERD_EFORMAT, "model: required key '%s' is missing", key);
    if (rc)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "model: key '%s' is not a single unsigned 32-bit integer", key);
    return 0;
}

static int key_f32(model *m, const char *name, float *out, int *found, char *err,
                   size_t err_size) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", m->hp.arch, name);
    int rc = gguf_get_f32(m->gguf, key, out);
    if (found) *found = rc == 0;
    if (rc == INFERD_ENOTFOUND) return 0;
    if (rc || !isfinite(*out))
        return err_set(err, err_size, INFERD_EFORMAT, "model: key '%s' is not a finite float",
                       key);
    return 0;
}

static int read_hparams(model *m, char *err, size_t err_size) {
    model_hparams *hp = &m->hp;
    gguf_str arch;
    int rc = gguf_get_str(m->gguf, "general.architecture", &arch);
    if (rc) return err_set(err, err_size, INFERD_EFORMAT,
                           "model: key 'general.architecture' is missing or not a string");
    if (arch.len >= sizeof hp->arch || !(gguf_str_eq(arch, "llama") || gguf_str_eq(arch, "qwen2")))
        return err_set(err, err_size, INFERD_EUNSUPPORTED,
                       "model: architecture '%.*s' is not supported (supported: llama, qwen2)",
                       (int)(arch.len > 64 ? 64 : arch.len), arch.data);
    memcpy(hp->arch, arch.data, arch.len);
    hp->arch[arch.len] = '\0';
    const int qwen2 = strcmp(hp->arch, "qwen2") == 0;

    if ((rc = key_u32(m, "context_length", 1, &hp->n_ctx_train, err, err_size)) ||
        (rc = key_u32(m, "embedding_length", 1, &hp->n_embd, err, err_size)) ||
        (rc = key_u32(m, "feed_forward_length", 1, &hp->n_ff, err, err_size)) ||
        (rc = key_u32(m, "block_count", 1, &hp->n_layer, err, err_size)) ||
        (rc = key_u32(m, "attention.head_count", 1, &hp->n_head, err, err_size)))
        return rc;
    hp->n_head_kv = hp->n_head;
    if ((rc = key_u32(m, "attention.head_count_kv", 0, &hp->n_head_kv, err, err_size))) return rc;
    uint32_t expert_count = 0;
    if ((rc = key_u32(m, "expert_count", 0, &expert_count, err, err_size))) return rc;
    if (expert_count > 0)
        return err_set(err, err_size, INFERD_EUNSUPPORTED,
                       "model: mixture-of-experts models (%s.expert_count = %u) are not supported",
                       hp->arch, expert_count);

    if (hp->n_embd == 0 || hp->n_embd > MAX_DIM || hp->n_ff == 0 || hp->n_ff > 4 * MAX_DIM ||
        hp->n_layer == 0 || hp->n_layer > MAX_LAYERS || hp->n_head == 0 ||
        hp->n_head > hp->n_embd || hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0 ||
        hp->n_ctx_train == 0)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "model: bad shape: n_embd %u, n_ff %u, n_layer %u, n_head %u, n_head_kv %u, "
                       "context_length %u",
                       hp->n_embd, hp->n_ff, hp->n_layer, hp->n_head, hp->n_head_kv,
                       hp->n_ctx_train);
    hp->head_dim = hp->n_embd / hp->n_head;
    uint32_t k_len = hp->head_dim, v_len = hp->head_dim;
    if ((rc = key_u32(m, "attention.key_length", 0, &k_len, err, err_size)) ||
        (rc = key_u32(m, "attention.value_length", 0, &v_len, err, err_size)))
        return rc;
    if (k_len != v_len || k_len == 0 || k_len > ATTN_MAX_HEAD_DIM || k_len % 2 != 0)
        return err_set(err, err_size, INFERD_EUNSUPPORTED,
                       "model: head sizes key_length %u / value_length %u are not supported "
                       "(equal, even, at most %d)",
                       k_len, v_len, ATTN_MAX_HEAD_DIM);
    hp->head_dim = k_len;
    const uint32_t group = hp->n_head / hp->n_head_kv;
    if (group > ATTN_MAX_GROUP || (uint64_t)group * hp->head_dim > ATTN_MAX_GROUP_DIM)
        return err_set(err, err_size, INFERD_EUNSUPPORTED,
                       "model: %u query heads per KV head of size %u is beyond the attention "
                       "kernel's limits",
                       group, hp->head_dim);
    hp->n_rot = hp->head_dim;
    if ((rc = key_u32(m, "rope.dimension_count", 0, &hp->n_rot, err, err_size))) return rc;
    if (hp->n_rot == 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "model: %s.rope.dimension_count %u must be even and within the head size %u",
                       hp->arch, hp->n_rot, hp->head_dim);

    hp->rms_eps = 1e-5f;
    int found = 0;
    if ((rc = key_f32(m, "attention.layer_norm_rms_epsilon", &hp->rms_eps, &found, err,
                      err_size)))
        return rc;
    if (!found)
        return err_set(err, err_size, INFERD_EFORMAT,
                       "model: required key '%s.attention.layer_norm_rms_epsilon' is missing",
                       hp->arch);
    if (!(hp->rms_eps >= 0.0f))
        return err_set(err, err_size, INFERD_EFORMAT, "model: rms epsilon %g is negative",
                       hp->rms_eps);
    hp->rope_freq_base = 10000.0f;
    if ((rc = key_f32(m, "rope.freq_base", &hp->rope_freq_base, NULL, err, err_size))) return rc;
    if (!(hp->rope_freq_base > 0.0f))
        return err_set(err, err_size, INFERD_EFORMAT, "model: %s.rope.freq_base %g is not positive",
                       hp->arch, hp->rope_freq_base);

    /* Rope scaling, as llama.cpp: the type defaults to linear (factor 1 is no
     * scaling); the factor comes from rope.scaling.factor or the older
     * rope.scale_linear. */
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", hp->arch);
    gguf_str st = {0};
    hp->rope_scaling = MODEL_ROPE_SCALING_LINEAR;
    if (gguf_get_str(m->gguf, key, &st) == 0) {
        if (gguf_str_eq(st, "none")) hp->rope_scaling = MODEL_ROPE_SCALING_NONE;
        else if (gguf_str_eq(st, "linear")) hp->rope_scaling = MODEL_ROPE_SCALING_LINEAR;
        else if (gguf_str_eq(st, "yarn")) hp->rope_scaling = MODEL_ROPE_SCALING_YARN;
        else
            return err_set(err, err_size, INFERD_EUNSUPPORTED,
                           "model: rope scaling type '%.*s' is not supported (none, linear, yarn)",
                           (int)(st.len > 32 ? 32 : st.len), st.data);
    }
    float factor = 0.0f;
    if ((rc = key_f32(m, "rope.scaling.factor", &factor, NULL, err, err_size))) return rc;
    if (factor == 0.0f &&
        (rc = key_f32(m, "rope.scale_linear", &factor, NULL, err, err_size)))
        return rc;
    if (factor < 0.0f)
        return err_set(err, err_size, INFERD_EFORMAT, "model: rope scaling factor %g is negative",
                       factor);
    hp->rope_freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    if (hp->rope_scaling == MODEL_ROPE_SCALING_NONE) hp->rope_freq_scale = 1.0f;
    hp->n_ctx_orig = hp->n_ctx_train;
    if ((rc = key_u32(m, "rope.scaling.original_context_length", 0, &hp->n_ctx_orig, err,
                      err_size)))
        return rc;
    hp->yarn_ext_factor = hp->rope_scaling == MODEL_ROPE_SCALING_YARN ? 1.0f : 0.0f;
    /* <arch>.rope.scaling.attn_factor scales cos and sin for every scaling
     * type (llama.cpp multiplies it into yarn_attn_factor). */
    hp->yarn_attn_factor = 1.0f;
    if ((rc = key_f32(m, "rope.scaling.attn_factor", &hp->yarn_attn_factor, NULL, err, err_size)))
        return rc;
    if (!(hp->yarn_attn_factor > 0.0f))
        return err_set(err, err_size, INFERD_EFORMAT,
                       "model: %s.rope.scaling.attn_factor %g is not positive", hp->arch,
                       hp->yarn_attn_factor);
    hp->yarn_beta_fast = 32.0f;
    hp->yarn_beta_slow = 1.0f;
    hp->rope_type = qwen2 ? MODEL_ROPE_NEOX : MODEL_ROPE_NORM;
    return 0;
}

/* ---- tensors ---- */

static int weight_type_ok(enum dtype t) {
    switch (t) {
    case DTYPE_F32: case DTYPE_F16: case DTYPE_BF16: case DTYPE_Q4_0: case DTYPE_Q4_1:
    case DTYPE_Q5_0: case DTYPE_Q5_1: case DTYPE_Q8_0: case DTYPE_Q2_K: case DTYPE_Q3_K:
    case DTYPE_Q4_K: case DTYPE_Q5_K: case DTYPE_Q6_K: case DTYPE_IQ4_NL: case DTYPE_IQ4_XS:
        return 1;
    default:
        return 0;
    }
}

static const char *type_name(enum dtype t) {
    const dtype_info *i = dtype_get(t);
    return i ? i->name : "?";
}

/* Finds name and checks it is (ne0, ne1) (ne1 = 0: a vector of ne0) of a
 * supported type. Returns NULL with err set (*rc) when missing and required,
 * or ill-shaped; NULL with *rc 0 when missing and optional. */
static const gguf_tensor *get_tensor(model *m, const char *name, uint64_t ne0, uint64_t ne1,
                                     int required, int *rc, char *err, size_t err_size) {
    *rc = 0;
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (required)
            *rc = err_set(err, err_size, INFERD_EFORMAT, "model: tensor '%s' is missing", name);
        return NULL;
    }
    const uint32_t want_dims = ne1 ? 2 : 1;
    int ok = t->ne[0] == ne0 && t->ne[1] == (ne1 ? ne1 : 1) && t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok) {
        *rc = err_set(err, err_size, INFERD_EFORMAT,
                      "model: tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%llu, %llu] "
                      "(%u-D)",
                      name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                      (unsigned long long)t->ne[2], (unsigned long long)t->ne[3],
                      (unsigned long long)ne0, (unsigned long long)(ne1 ? ne1 : 1), want_dims);
        return NULL;
    }
    if (!weight_type_ok(t->type)) {
        *rc = err_set(err, err_size, INFERD_EUNSUPPORTED,
                      "model: tensor '%s' has type %s, which is not supported", name,
                      type_name(t->type));
        return NULL;
    }
    uint64_t bytes = 0;
    if (dtype_row_bytes(t->type, ne0, &bytes) != 0 ||
        bytes * (ne1 ? ne1 : 1) != t->size_bytes) {
        *rc = err_set(err, err_size, INFERD_EFORMAT,
                      "model: tensor '%s' (%s) rows of %llu elements do not fit its %llu bytes",
                      name, type_name(t->type), (unsigned long long)ne0,
                      (unsigned long long)t->size_bytes);
        return NULL;
    }
    return t;
}

/* A vector tensor converted to a new f32 array (*out NULL when optional and
 * missing). */
static int load_vec(model *m, const char *name, uint64_t n, int required, float **out, char *err,
                    size_t err_size) {
    int rc;
    *out = NULL;
    const gguf_tensor *t = get_tensor(m, name, n, 0, required, &rc, err, err_size);
    if (!t) return rc;
    *out = malloc(n * sizeof(float));
    if (!*out) return err_set(err, err_size, INFERD_ENOMEM, "model: out of memory for '%s'", name);
    dequantize_row(t->type, t->data, *out, (int64_t)n);
    for (uint64_t i = 0; i < n; i++) {
        if (!isfinite((*out)[i]))
            return err_set(err, err_size, INFERD_EFORMAT,
                           "model: tensor '%s' holds a non-finite value at %llu", name,
                           (unsigned long long)i);
    }
    return 0;
}

static int load_mat(model *m, const char *name, uint64_t n_in, uint64_t n_out, mm_weight *w,
                    char *err, size_t err_size) {
    int rc;
    const gguf_tensor *t = get_tensor(m, name, n_in, n_out, 1, &rc, err, err_size);
    if (!t) return rc;
    rc = mm_weight_init(w, t->type, (int64_t)n_in, (int64_t)n_out, t->data, err, err_size);
    if (rc) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s", err ? err : "");
        return err_set(err, err_size, rc, "model: tensor '%s': %s", name, inner);
    }
    return 0;
}

static int bind_tensors(model *m, char *err, size_t err_size) {
    model_hparams *hp = &m->hp;
    const int qwen2 = strcmp(hp->arch, "qwen2") == 0;
    int rc;
    const gguf_tensor *te = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te) return err_set(err, err_size, INFERD_EFORMAT, "model: tensor 'token_embd.weight' is missing");
    if (te->ne[1] == 0 || te->ne[1] > (1u << 24))
        return err_set(err, err_size, INFERD_EFORMAT,
                       "model: tensor 'token_embd.weight' has %llu rows (vocabulary size)",
                       (unsigned long long)te->ne[1]);
    hp->n_vocab = (uint32_t)te->ne[1];
    m->tok_embd = get_tensor(m, "token_embd.weight", hp->n_embd, hp->n_vocab, 1, &rc, err, err_size);
    if (!m->tok_embd) return rc;

    if ((rc = load_vec(m, "output_norm.weight", hp->n_embd, 1, &m->output_norm, err, err_size)))
        return rc;
    const gguf_tensor *out = gguf_find_tensor(m->gguf, "output.weight");
    hp->tied_output = out == NULL;
    if (out) {
        if ((rc = load_mat(m, "output.weight", hp->n_embd, hp->n_vocab, &m->output, err, err_size)))
            return rc;
    } else if ((rc = load_mat(m, "token_embd.weight", hp->n_embd, hp->n_vocab, &m->output, err,
                              err_size))) {
        return rc;
    }
    if ((rc = load_vec(m, "rope_freqs.weight", hp->n_rot / 2, 0, &m->rope_freqs, err, err_size)))
        return rc;
    hp->has_rope_freqs = m->rope_freqs != NULL;

    m->layers = calloc(hp->n_layer, sizeof(model_layer));
    if (!m->layers) return err_set(err, err_size, INFERD_ENOMEM, "model: out of memory");
    const uint64_t n_q = (uint64_t)hp->n_head * hp->head_dim;
    const uint64_t n_kv = (uint64_t)hp->n_head_kv * hp->head_dim;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        model_layer *l = &m->layers[il];
        char name[96];
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%u.%s", il, suffix), name)
        if ((rc = load_vec(m, NAME("attn_norm.weight"), hp->n_embd, 1, &l->attn_norm, err, err_size)) ||
            (rc = load_vec(m, NAME("ffn_norm.weight"), hp->n_embd, 1, &l->ffn_norm, err, err_size)) ||
            (rc = load_mat(m, NAME("attn_q.weight"), hp->n_embd, n_q, &l->wq, err, err_size)) ||
            (rc = load_mat(m, NAME("attn_k.weight"), hp->n_embd, n_kv, &l->wk, err, err_size)) ||
            (rc = load_mat(m, NAME("attn_v.weight"), hp->n_embd, n_kv, &l->wv, err, err_size)) ||
            (rc = load_mat(m, NAME("attn_output.weight"), n_q, hp->n_embd, &l->wo, err, err_size)) ||
            (rc = load_mat(m, NAME("ffn_gate.weight"), hp->n_embd, hp->n_ff, &l->w_gate, err, err_size)) ||
            (rc = load_mat(m, NAME("ffn_up.weight"), hp->n_embd, hp->n_ff, &l->w_up, err, err_size)) ||
            (rc = load_mat(m, NAME("ffn_down.weight"), hp->n_ff, hp->n_embd, &l->w_down, err, err_size)) ||
            (rc = load_vec(m, NAME("attn_q.bias"), n_q, qwen2, &l->bq, err, err_size)) ||
            (rc = load_vec(m, NAME("attn_k.bias"), n_kv, qwen2, &l->bk, err, err_size)) ||
            (rc = load_vec(m, NAME("attn_v.bias"), n_kv, qwen2, &l->bv, err, err_size)) ||
            (rc = load_vec(m, NAME("attn_output.bias"), hp->n_embd, 0, &l->bo, err, err_size)))
            return rc;
#undef NAME
    }
    /* Permute the matrices in place into the matmul kernels' SIMD layout
     * (mm_weight_repack: same bytes, same memory). A tied token_embd keeps
     * the file layout: the embedding lookup reads its rows directly. */
    {
        mm_weight **ws = malloc(sizeof *ws * ((size_t)hp->n_layer * 7 + 1));
        if (!ws) return err_set(err, err_size, INFERD_ENOMEM, "model: out of memory");
        int n = 0;
        for (uint32_t i = 0; i < hp->n_layer; i++) {
            model_layer *l = &m->layers[i];
            mm_weight *lw[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
            for (size_t k = 0; k < sizeof lw / sizeof lw[0]; k++) ws[n++] = lw[k];
        }
        if (!hp->tied_output) ws[n++] = &m->output;
        rc = mm_weights_repack(ws, n, err, err_size);
        free(ws);
        if (rc) return rc;
    }
    hp->weight_type = m->layers[0].wq.type;

    op_rope_params *r = &m->rope;
    r->n_rot = hp->n_rot;
    r->mode = hp->rope_type == MODEL_ROPE_NEOX ? OP_ROPE_NEOX : OP_ROPE_NORM;
    r->freq_base = hp->rope_freq_base;
    r->freq_scale = hp->rope_freq_scale;
    r->ext_factor = hp->yarn_ext_factor;
    r->attn_factor = hp->yarn_attn_factor;
    r->freq_factors = m->rope_freqs;
    op_rope_yarn_corr_dims(hp->n_rot, hp->n_ctx_orig, hp->rope_freq_base, hp->yarn_beta_fast,
                           hp->yarn_beta_slow, r->corr_dims);
    return 0;
}
