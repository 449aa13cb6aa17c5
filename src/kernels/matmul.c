/*
 * matmul.c - y = x W^T over the thread pool (see matmul.h). A call has two
 * phases: convert the activations once into scratch (split by rows), then
 * split the output columns into chunks that the workers take from a shared
 * counter (a core slowed by another process simply takes fewer chunks) and
 * run the level's gemm kernel (matmul_int.h) on each chunk for all rows.
 */
#include "kernels/matmul.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/error.h"
#include "kernels/matmul_int.h"
#include "kernels/quant.h"

#define SCRATCH_ALIGN 64
#define DEFAULT_CHUNK 16

typedef struct mm_call {
    const mm_weight *w;
    const mm_kernels *k;
    const float *x;
    int64_t n_rows;
    float *y;
    uint8_t *xq;
    size_t xq_stride;
    int64_t chunk, n_chunks;
    _Atomic int64_t next;
} mm_call;

static void convert_rows(void *arg, int ith, int nth);
static void compute_chunks(void *arg, int ith, int nth);

static mm_kernels tables[CPU_LEVEL_COUNT];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (int l = 0; l < CPU_LEVEL_COUNT; l++) {
        memset(&tables[l], 0, sizeof tables[l]);
        mm_kernels_fill_scalar(&tables[l]);
        if (l >= CPU_AVX2) mm_kernels_fill_avx2(&tables[l]);
        if (l >= CPU_AVX512) mm_kernels_fill_avx512(&tables[l]);
    }
}

const mm_kernels *mm_kernels_get(enum cpu_level level) {
    pthread_once(&tables_once, build_tables);
    if (level < CPU_SCALAR || level >= CPU_LEVEL_COUNT) level = CPU_SCALAR;
    return &tables[level];
}

int mm_weight_init(mm_weight *w, enum dtype type, int64_t n_in, int64_t n_out, const void *data,
                   char *err, size_t err_size) {
    memset(w, 0, sizeof *w);
    const dtype_info *info = dtype_get((uint32_t)type);
    if (!info) return err_set(err, err_size, INFERD_EUNSUPPORTED, "matmul: unknown weight type %d", (int)type);
    if (!mm_kernels_get(CPU_SCALAR)->gemm[type])
        return err_set(err, err_size, INFERD_EUNSUPPORTED, "matmul: no kernel for weight type %s", info->name);
    if (n_in <= 0 || n_out <= 0)
        return err_set(err, err_size, INFERD_EINVAL, "matmul: bad weight shape (%lld in, %lld out)",
                       (long long)n_in, (long long)n_out);
    if (n_in % info->block_size)
        return err_set(err, err_size, INFERD_EINVAL,
                       "matmul: n_in %lld is not a multiple of the %s block size %u", (long long)n_in,
                       info->name, info->block_size);
    if (!data) return err_set(err, err_size, INFERD_EINVAL, "matmul: weight data is NULL");
    uint64_t rb;
    if (dtype_row_bytes((uint32_t)type, (uint64_t)n_in, &rb))
        return err_set(err, err_size, INFERD_EINVAL, "matmul: row of %lld %s elements has no size",
                       (long long)n_in, info->name);
    size_t ab = 0;
    for (int l = 0; l < CPU_LEVEL_COUNT; l++) {
        const mm_kernels *k = mm_kernels_get((enum cpu_level)l);
        size_t b = k->act_bytes[type](type, n_in);
        if (b > ab) ab = b;
    }
    enum dtype at = quant_vec_dot_type(type);
    w->type = type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->data = data;
    w->row_bytes = (size_t)rb;
    w->act_type = at;
    w->act_row_bytes = (size_t)ab;
    w->layout = MM_LAYOUT_PLAIN;
    return 0;
}

void mm_weight_release(mm_weight *w) {
    if (!w) return;
    memset(w, 0, sizeof *w);
}

size_t mm_scratch_bytes(const mm_weight *w, int64_t n_rows) {
    if (n_rows < 1) n_rows = 1;
    size_t stride = (w->act_row_bytes + SCRATCH_ALIGN - 1) & ~(size_t)(SCRATCH_ALIGN - 1);
    return stride * (size_t)n_rows + SCRATCH_ALIGN;
}

void mm_forward(threadpool *tp, const mm_weight *w, const float *x, int64_t n_rows, float *y,
                void *scratch) {
    if (n_rows <= 0) return;
    mm_call c;
    memset(&c, 0, sizeof c);
    c.w = w;
    c.k = mm_kernels_get(cpu_level());
    c.x = x;
    c.n_rows = n_rows;
    c.y = y;
    c.xq = (uint8_t *)(((uintptr_t)scratch + SCRATCH_ALIGN - 1) & ~(uintptr_t)(SCRATCH_ALIGN - 1));
    c.xq_stride = (w->act_row_bytes + SCRATCH_ALIGN - 1) & ~(size_t)(SCRATCH_ALIGN - 1);
    int nth = threadpool_n_threads(tp);
    if (c.k->chunk[w->type] > 0) {
        /* A multiple of the kernel's tile width. One row (decode) streams
         * memory: longer runs per claim keep each core's prefetch streams
         * going, while 4 claims per worker still balance the load. */
        int64_t t = c.k->chunk[w->type];
        c.chunk = t;
        if (n_rows == 1)
            while (c.chunk < 256 && (w->n_out + 2 * c.chunk - 1) / (2 * c.chunk) >= 4 * nth) c.chunk *= 2;
    }
    else {
        /* Keep a few chunks per worker so the counter can balance load. */
        c.chunk = DEFAULT_CHUNK;
        while (c.chunk > 4 && (w->n_out + c.chunk - 1) / c.chunk < 4 * nth) c.chunk /= 2;
    }
    c.n_chunks = (w->n_out + c.chunk - 1) / c.chunk;
    atomic_store(&c.next, 0);

    if (n_rows < 4 || nth == 1) convert_rows(&c, 0, 1);
    else threadpool_run(tp, convert_rows, &c);
    threadpool_run_dynamic(tp, compute_chunks, &c);
}

static void convert_rows(void *arg, int ith, int nth) {
    mm_call *c = arg;
    int64_t per = (c->n_rows + nth - 1) / nth;
    int64_t r0 = per * ith, r1 = r0 + per < c->n_rows ? r0 + per : c->n_rows;
    mm_act_fn act = c->k->act[c->w->type];
    for (int64_t r = r0; r < r1; r++)
        act(c->w->type, c->x + r * c->w->n_in, c->xq + (size_t)r * c->xq_stride, c->w->n_in);
}

static void compute_chunks(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    mm_call *c = arg;
    mm_gemm_fn fn = c->k->gemm[c->w->type];
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (i >= c->n_chunks) break;
        int64_t o0 = i * c->chunk, o1 = o0 + c->chunk < c->w->n_out ? o0 + c->chunk : c->w->n_out;
        fn(c->w, c->xq, c->xq_stride, c->n_rows, c->y, c->w->n_out, o0, o1);
    }
}
