/*
 * matmul.c - y = x W^T over the thread pool (see matmul.h). A call has two
 * phases: convert the activations once into scratch, then split the output
 * columns into chunks and run the level's gemm kernel (matmul_int.h) on each
 * chunk for all rows. In both phases the workers take their share (rows,
 * then chunks) from a shared counter, so a core slowed by another process
 * simply takes less, and a worker not running yet is not waited for.
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
/* Products of fewer multiply-adds (rows x n_in x n_out, summed over a group)
 * run on the calling thread: waking the pool costs more than they do. */
#define SMALL_WORK ((int64_t)1 << 17)
/* Activation rows per claim of the conversion phase: a multiple of the 12
 * rows of the AVX-512 grouped layouts (act_rows_x8 in gemm_avx512.c), which
 * interleave a group's rows dword by dword, so that two threads never write
 * the same group's cache lines (with 16, the false sharing took half the
 * conversion time of a 32-sequence decode: 4.0% -> 1.9% of the samples of
 * `inferd generate --batch`, bench-110m Q8_0, 32 x (128 + 64) tokens). */
#define CONVERT_ROWS 24

/* One call over up to MM_MAX_GROUP weights that share their input: the
 * chunks of weight i are numbers first[i] .. first[i+1]-1 of one counter. */
typedef struct mm_call {
    const mm_kernels *k;
    const float *x;
    int64_t n_rows;
    uint8_t *xq;
    size_t xq_stride;
    int n_w;
    const mm_weight *w[MM_MAX_GROUP];
    float *y[MM_MAX_GROUP];
    int64_t chunk[MM_MAX_GROUP];
    int64_t first[MM_MAX_GROUP + 1];
    _Atomic int64_t next;     /* next output chunk to compute */
    _Atomic int64_t next_row; /* next activation row to convert */
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

/* The chunk width for w: a multiple of the kernel's tile width. */
static int64_t pick_chunk(const mm_kernels *k, const mm_weight *w, int64_t n_rows, int nth) {
    int64_t chunk;
    if (k->chunk[w->type] > 0) {
        /* One row (decode) streams memory: longer runs per claim keep each
         * core's prefetch streams going, while 4 claims per worker still
         * balance the load. */
        chunk = k->chunk[w->type];
        if (n_rows == 1)
            while (chunk < 256 && (w->n_out + 2 * chunk - 1) / (2 * chunk) >= 4 * nth) chunk *= 2;
    }
    else {
        /* Keep a few chunks per worker so the counter can balance load. */
        chunk = DEFAULT_CHUNK;
        while (chunk > 4 && (w->n_out + chunk - 1) / chunk < 4 * nth) chunk /= 2;
    }
    return chunk;
}

/* Converts x once, then computes every weight's output chunks. */
static void run_call(threadpool *tp, mm_call *c, void *scratch) {
    const mm_weight *w0 = c->w[0];
    c->k = mm_kernels_get(cpu_level());
    c->xq = (uint8_t *)(((uintptr_t)scratch + SCRATCH_ALIGN - 1) & ~(uintptr_t)(SCRATCH_ALIGN - 1));
    c->xq_stride = (w0->act_row_bytes + SCRATCH_ALIGN - 1) & ~(size_t)(SCRATCH_ALIGN - 1);
    int64_t work = 0;
    for (int i = 0; i < c->n_w; i++) work += c->n_rows * c->w[i]->n_in * c->w[i]->n_out;
    if (work < SMALL_WORK) tp = NULL;
    int nth = threadpool_n_threads(tp);
    c->first[0] = 0;
    for (int i = 0; i < c->n_w; i++) {
        c->chunk[i] = pick_chunk(c->k, c->w[i], c->n_rows, nth);
        c->first[i + 1] = c->first[i] + (c->w[i]->n_out + c->chunk[i] - 1) / c->chunk[i];
    }
    atomic_store(&c->next, 0);
    atomic_store(&c->next_row, 0);
    if (c->n_rows < 4 || nth == 1) convert_rows(c, 0, 1);
    else threadpool_run_dynamic(tp, convert_rows, c);
    if (nth == 1) compute_chunks(c, 0, 1);
    else threadpool_run_dynamic(tp, compute_chunks, c);
}

void mm_forward(threadpool *tp, const mm_weight *w, const float *x, int64_t n_rows, float *y,
                void *scratch) {
    if (n_rows <= 0) return;
    mm_call c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.n_rows = n_rows;
    c.n_w = 1;
    c.w[0] = w;
    c.y[0] = y;
    run_call(tp, &c, scratch);
}

int mm_group_ok(const mm_weight *const *ws, int n_w) {
    if (n_w < 1 || n_w > MM_MAX_GROUP) return 0;
    for (int i = 1; i < n_w; i++) {
        if (ws[i]->type != ws[0]->type || ws[i]->n_in != ws[0]->n_in ||
            ws[i]->act_row_bytes != ws[0]->act_row_bytes)
            return 0;
    }
    return 1;
}

void mm_forward_group(threadpool *tp, const mm_weight *const *ws, int n_w, const float *x,
                      int64_t n_rows, float *const *ys, void *scratch) {
    if (n_rows <= 0 || n_w < 1) return;
    if (!mm_group_ok(ws, n_w)) {
        for (int i = 0; i < n_w; i++) mm_forward(tp, ws[i], x, n_rows, ys[i], scratch);
        return;
    }
    mm_call c;
    memset(&c, 0, sizeof c);
    c.x = x;
    c.n_rows = n_rows;
    c.n_w = n_w;
    for (int i = 0; i < n_w; i++) {
        c.w[i] = ws[i];
        c.y[i] = ys[i];
    }
    run_call(tp, &c, scratch);
}

/* Converts rows claimed CONVERT_ROWS at a time from a shared counter (a
 * dynamic run: whoever is running takes the rows, nobody waits for a
 * descheduled worker). */
static void convert_rows(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    mm_call *c = arg;
    const mm_weight *w = c->w[0];
    mm_act_rows_fn act_rows = c->k->act_rows[w->type];
    mm_act_fn act = c->k->act[w->type];
    for (;;) {
        int64_t r0 = atomic_fetch_add_explicit(&c->next_row, CONVERT_ROWS, memory_order_relaxed);
        if (r0 >= c->n_rows) break;
        int64_t r1 = r0 + CONVERT_ROWS < c->n_rows ? r0 + CONVERT_ROWS : c->n_rows;
        if (act_rows) {
            act_rows(w->type, c->x, w->n_in, c->xq, c->xq_stride, c->n_rows, r0, r1);
            continue;
        }
        for (int64_t r = r0; r < r1; r++)
            act(w->type, c->x + r * w->n_in, c->xq + (size_t)r * c->xq_stride, w->n_in);
    }
}

static void compute_chunks(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    mm_call *c = arg;
    mm_gemm_fn fn = c->k->gemm[c->w[0]->type];
    const int64_t n_chunks = c->first[c->n_w];
    int j = 0;
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (i >= n_chunks) break;
        while (i >= c->first[j + 1]) j++; /* claims only grow */
        const mm_weight *w = c->w[j];
        int64_t o0 = (i - c->first[j]) * c->chunk[j];
        int64_t o1 = o0 + c->chunk[j] < w->n_out ? o0 + c->chunk[j] : w->n_out;
        fn(w, c->xq, c->xq_stride, c->n_rows, c->y[j], w->n_out, o0, o1);
    }
}
