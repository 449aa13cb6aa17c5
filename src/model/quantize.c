/*
 * quantize.c - the file side of `inferd quantize` (see quantize.h): open the
 * input GGUF, order its tensors as llama.cpp's loader does, decide each
 * tensor's type (quantize_rules.c), and stream the output through the GGUF
 * writer one tensor at a time: dequantize the source to f32 when it is not
 * f32 already, then quantize_rows split over a thread pool.
 */
#include "model/quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "kernels/quant.h"
#include "kernels/threadpool.h"

#define NAME_MAX_BYTES 64 /* GGML_MAX_NAME */

typedef struct qtensor {
    const gguf_tensor *src;
    char name[NAME_MAX_BYTES + 1];
    int layer; /* blk.N., or -1 */
    enum dtype type;
    uint64_t n_rows, row_bytes, size_bytes;
} qtensor;

typedef struct quant_job {
    enum dtype type;
    const float *src; /* (n_rows, ne0) */
    uint8_t *dst;     /* (n_rows, row_bytes) */
    uint64_t n_rows, ne0, row_bytes;
} quant_job;

static int tensor_cmp(const void *a, const void *b);
static void quant_worker(void *arg, int ith, int nth);
static int read_model_info(const gguf_file *f, const qtensor *ts, uint64_t n,
                           quantize_model_info *mi);
static int convert_tensor(const qtensor *t, threadpool *tp, float **f32_buf, uint64_t *f32_cap,
                          uint8_t *out, char *err, size_t err_size);

int quantize_file(const char *in_path, const char *out_path, const quantize_params *params,
                  char *err, size_t err_size) {
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    threadpool *tp = NULL;
    qtensor *ts = NULL;
    float *f32_buf = NULL;
    uint64_t f32_cap = 0;
    uint8_t *out_buf = NULL;
    uint64_t out_cap = 0;
    int rc = gguf_open(in_path, &f, err, err_size);
    if (rc != 0) goto fail;

    const uint64_t n = gguf_n_tensors(f);
    ts = calloc(n ? n : 1, sizeof *ts);
    if (!ts) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "quantize: out of memory for %llu tensors",
                     (unsigned long long)n);
        goto fail;
    }
    for (uint64_t i = 0; i < n; i++) {
        ts[i].src = gguf_tensor_at(f, i);
        const gguf_str nm = ts[i].src->name;
        if (nm.len > NAME_MAX_BYTES) {
            rc = err_set(err, err_size, INFERD_EFORMAT,
                         "quantize: %s: tensor %llu has a name of %llu bytes (at most %d)", in_path,
                         (unsigned long long)i, (unsigned long long)nm.len, NAME_MAX_BYTES);
            goto fail;
        }
        memcpy(ts[i].name, nm.data, nm.len);
        ts[i].name[nm.len] = '\0';
        ts[i].layer = -1;
        sscanf(ts[i].name, "blk.%d.", &ts[i].layer);
    }
    qsort(ts, n, sizeof *ts, tensor_cmp);

    quantize_model_info mi;
    rc = read_model_info(f, ts, n, &mi);
    if (rc != 0) {
        err_set(err, err_size, rc, "quantize: %s: general.architecture is missing", in_path);
        goto fail;
    }

    /* Decide every type first (the counters run in tensor order). */
    quantize_state st = {0};
    for (uint64_t i = 0; i < n; i++) {
        qtensor *t = &ts[i];
        const gguf_tensor *s = t->src;
        t->type = s->type;
        if (quantize_tensor_allowed(t->name, s->n_dims))
            t->type = quantize_tensor_type(params, &mi, &st, t->name, s->ne[0]);
        const uint64_t ne0 = s->ne[0] ? s->ne[0] : 1;
        t->n_rows = s->ne[1] * s->ne[2] * s->ne[3];
        if (s->ne[0] == 0) t->n_rows = 0;
        if (dtype_row_bytes(t->type, ne0, &t->row_bytes) != 0 ||
            mul_overflow_u64(t->row_bytes, t->n_rows, &t->size_bytes)) {
            rc = err_set(err, err_size, INFERD_EINVAL,
                         "quantize: tensor '%s' (row of %llu) cannot be stored as %s", t->name,
                         (unsigned long long)s->ne[0], dtype_get(t->type)->name);
            goto fail;
        }
        if (t->type != s->type && !quant_supported(s->type)) {
            rc = err_set(err, err_size, INFERD_EUNSUPPORTED,
                         "quantize: tensor '%s' is %s, which we cannot convert from", t->name,
                         dtype_get(s->type) ? dtype_get(s->type)->name : "?");
            goto fail;
        }
    }

    if (params->verbose && st.n_fallback > 0)
        fprintf(stderr,
                "quantize: %d tensor(s) take a fallback type: their rows are not a multiple "
                "of the chosen type's block\n",
                st.n_fallback);

    w = gguf_writer_new();
    tp = threadpool_new(params->n_threads);
    if (!w || !tp) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "quantize: out of memory (writer, threads)");
        goto fail;
    }
    if ((rc = gguf_writer_copy_all_kv(w, f)) != 0) goto writer_fail;
    gguf_writer_remove(w, "general.quantization_version");
    gguf_writer_remove(w, "general.file_type");
    if ((rc = gguf_writer_set_u32(w, "general.quantization_version", 2)) != 0 ||
        (rc = gguf_writer_set_u32(w, "general.file_type", (uint32_t)params->ftype)) != 0)
        goto writer_fail;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *s = ts[i].src;
        rc = gguf_writer_add_tensor(w, ts[i].name, ts[i].type, s->n_dims, s->ne, NULL,
                                    ts[i].size_bytes);
        if (rc != 0) goto writer_fail;
    }
    if ((rc = gguf_writer_begin(w, out_path, err, err_size)) != 0) goto fail;

    for (uint64_t i = 0; i < n; i++) {
        const qtensor *t = &ts[i];
        const void *data = t->src->data;
        if (t->type != t->src->type) {
            if (t->size_bytes > out_cap) {
                uint8_t *p = realloc(out_buf, t->size_bytes);
                if (!p) {
                    rc = err_set(err, err_size, INFERD_ENOMEM,
                                 "quantize: out of memory for tensor '%s' (%llu bytes)", t->name,
                                 (unsigned long long)t->size_bytes);
                    goto fail;
                }
                out_buf = p;
                out_cap = t->size_bytes;
            }
            rc = convert_tensor(t, tp, &f32_buf, &f32_cap, out_buf, err, err_size);
            if (rc != 0) goto fail;
            data = out_buf;
        }
        if (params->verbose)
            fprintf(stderr, "[%3llu/%3llu] %-32s %-6s -> %-6s [%llu x %llu]\n",
                    (unsigned long long)i + 1, (unsigned long long)n, t->name,
                    dtype_get(t->src->type)->name, dtype_get(t->type)->name,
                    (unsigned long long)t->src->ne[0], (unsigned long long)t->n_rows);
        rc = gguf_writer_write_tensor_data(w, data, t->size_bytes, err, err_size);
        if (rc != 0) goto fail;
    }
    rc = gguf_writer_finish(w, err, err_size);
    goto cleanup;

writer_fail:
    err_set(err, err_size, rc, "quantize: %s", gguf_writer_error(w));
fail:
cleanup:
    free(out_buf);
    free(f32_buf);
    free(ts);
    threadpool_free(tp);
    gguf_writer_free(w);
    gguf_close(f);
    return rc;
}

/* llama.cpp's weight_name_comparer: by layer (non-layer tensors first), then
 * by name. */
static int tensor_cmp(const void *a, const void *b) {
    const qtensor *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Reads "<arch>.key" as u32, taking element 0 of a per-layer array. */
static uint32_t arch_u32(const gguf_file *f, const char *arch, const char *key) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    uint32_t v = 0;
    if (gguf_get_u32(f, full, &v) == 0) return v;
    enum gguf_value_type et;
    uint64_t n = 0;
    if (gguf_get_arr(f, full, &et, &n) == 0 && n > 0 &&
        (et == GGUF_TYPE_UINT32 || et == GGUF_TYPE_INT32)) {
        const void *p = gguf_get_arr_data(f, full);
        if (p) memcpy(&v, p, sizeof v);
    }
    return v;
}

static int read_model_info(const gguf_file *f, const qtensor *ts, uint64_t n,
                           quantize_model_info *mi) {
    memset(mi, 0, sizeof *mi);
    char *arch = gguf_get_str_dup(f, "general.architecture");
    if (!arch) return INFERD_EFORMAT;
    mi->n_layer = (int)arch_u32(f, arch, "block_count");
    const uint32_t n_head = arch_u32(f, arch, "attention.head_count");
    const uint32_t n_head_kv = arch_u32(f, arch, "attention.head_count_kv");
    mi->n_gqa = n_head_kv ? (int)(n_head / n_head_kv) : 1;
    mi->n_expert = (int)arch_u32(f, arch, "expert_count");
    mi->is_falcon = strcmp(arch, "falcon") == 0;
    mi->is_70b = strcmp(arch, "llama") == 0 && mi->n_layer == 80;
    free(arch);
    for (uint64_t i = 0; i < n; i++) {
        if (strstr(ts[i].name, "attn_v.weight") || strstr(ts[i].name, "attn_qkv.weight"))
            mi->n_attention_wv++;
        if (strcmp(ts[i].name, "output.weight") == 0) mi->has_output = 1;
    }
    return 0;
}

/* Rows [r0, r1) of the tensor go to worker ith. */
static void quant_worker(void *arg, int ith, int nth) {
    const quant_job *j = arg;
    const uint64_t r0 = j->n_rows * (uint64_t)ith / (uint64_t)nth;
    const uint64_t r1 = j->n_rows * (uint64_t)(ith + 1) / (uint64_t)nth;
    if (r1 <= r0) return;
    quantize_rows(j->type, j->src + r0 * j->ne0, j->dst + r0 * j->row_bytes, (int64_t)(r1 - r0),
                  (int64_t)j->ne0);
}

/* Writes t's data in t->type into out (t->size_bytes). */
static int convert_tensor(const qtensor *t, threadpool *tp, float **f32_buf, uint64_t *f32_cap,
                          uint8_t *out, char *err, size_t err_size) {
    const gguf_tensor *s = t->src;
    const uint64_t ne0 = s->ne[0], n_el = ne0 * t->n_rows;
    const float *src = s->data;
    if (s->type != DTYPE_F32) {
        if (n_el > *f32_cap) {
            float *p = realloc(*f32_buf, n_el * sizeof(float));
            if (!p)
                return err_set(err, err_size, INFERD_ENOMEM,
                               "quantize: out of memory converting tensor '%s' (%llu floats)",
                               t->name, (unsigned long long)n_el);
            *f32_buf = p;
            *f32_cap = n_el;
        }
        uint64_t src_row_bytes = 0;
        dtype_row_bytes(s->type, ne0, &src_row_bytes);
        for (uint64_t r = 0; r < t->n_rows; r++)
            dequantize_row(s->type, (const uint8_t *)s->data + r * src_row_bytes,
                           *f32_buf + r * ne0, (int64_t)ne0);
        src = *f32_buf;
    }
    quant_job job = {t->type, src, out, t->n_rows, ne0, t->row_bytes};
    threadpool_run(tp, quant_worker, &job);
    return 0;
}
