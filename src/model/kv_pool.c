/*
 * kv_pool.c - the KV block pool: one zeroed allocation holding, per layer,
 * K then V, each (n_blocks, block_size, n_head_kv, head_dim) of f32 or f16.
 * The engine owns which block belongs to which sequence; this file only
 * sizes and allocates (see model.h for the layout).
 */
#include <stdlib.h>

#include "base/error.h"
#include "base/util.h"
#include "model/model_int.h"

static int layer_bytes(const model *m, uint64_t n_blocks, uint32_t block_size, enum dtype t,
                       uint64_t *out) {
    const uint64_t elem = t == DTYPE_F32 ? 4 : t == DTYPE_F16 ? 2 : 0;
    if (elem == 0) return INFERD_EINVAL;
    const model_hparams *hp = model_get_hparams(m);
    uint64_t x;
    if (mul_overflow_u64(n_blocks, block_size, &x) || mul_overflow_u64(x, hp->n_head_kv, &x) ||
        mul_overflow_u64(x, hp->head_dim, &x) || mul_overflow_u64(x, elem, &x))
        return INFERD_ERANGE;
    *out = x;
    return 0;
}

size_t kv_pool_bytes_per_block(const model *m, uint32_t block_size, enum dtype kv_type) {
    uint64_t lb = 0, total = 0;
    if (layer_bytes(m, 1, block_size, kv_type, &lb) != 0) return 0;
    if (mul_overflow_u64(lb, 2ull * model_get_hparams(m)->n_layer, &total) || total > SIZE_MAX)
        return 0;
    return (size_t)total;
}

int kv_pool_new(const model *m, uint32_t n_blocks, uint32_t block_size, enum dtype kv_type,
                kv_pool **out, char *err, size_t err_size) {
    *out = NULL;
    if (n_blocks == 0 || block_size == 0)
        return err_set(err, err_size, INFERD_EINVAL, "kv pool: %u blocks of %u positions",
                       n_blocks, block_size);
    if (kv_type != DTYPE_F32 && kv_type != DTYPE_F16)
        return err_set(err, err_size, INFERD_EINVAL,
                       "kv pool: cache type %u is not supported (f32 or f16)", (unsigned)kv_type);
    uint64_t lb = 0, total = 0;
    int rc = layer_bytes(m, n_blocks, block_size, kv_type, &lb);
    if (rc || mul_overflow_u64(lb, 2ull * model_get_hparams(m)->n_layer, &total) ||
        total > SIZE_MAX)
        return err_set(err, err_size, INFERD_ERANGE,
                       "kv pool: %u blocks of %u positions overflow the address space", n_blocks,
                       block_size);
    kv_pool *kv = calloc(1, sizeof(*kv));
    if (!kv) return err_set(err, err_size, INFERD_ENOMEM, "kv pool: out of memory");
    kv->data = aligned_zalloc((size_t)total, 64);
    if (!kv->data) {
        free(kv);
        return err_set(err, err_size, INFERD_ENOMEM, "kv pool: cannot allocate %llu bytes",
                       (unsigned long long)total);
    }
    const model_hparams *hp = model_get_hparams(m);
    kv->n_blocks = n_blocks;
    kv->block_size = block_size;
    kv->n_layer = hp->n_layer;
    kv->n_head_kv = hp->n_head_kv;
    kv->head_dim = hp->head_dim;
    kv->type = kv_type;
    kv->layer_bytes = (size_t)lb;
    *out = kv;
    return 0;
}

void kv_pool_free(kv_pool *kv) {
    if (!kv) return;
    aligned_free(kv->data);
    free(kv);
}

uint32_t kv_pool_n_blocks(const kv_pool *kv) {
    return kv->n_blocks;
}

uint32_t kv_pool_block_size(const kv_pool *kv) {
    return kv->block_size;
}

enum dtype kv_pool_type(const kv_pool *kv) {
    return kv->type;
}
