/*
 * gemm_scalar.c - the plain-C reference gemm: for every (row, column) the
 * type's reference dot product (vec_dot_ref, quant.h) against the activation
 * row converted to quant_vec_dot_type (quantize_row_act). Covers every type
 * quant.h supports, in any layout (a repacked row is first restored with
 * mm_weight_get_row). The SIMD tables (gemm_avx2.c, gemm_avx512.c) override
 * the types they speed up and are tested against this one.
 */
#include <string.h>

#include "kernels/matmul_int.h"
#include "kernels/quant.h"

#define MAX_ROW_BYTES (1 << 16) /* restored rows above this go through chunks */

static void act_ref(enum dtype type, const float *x, void *dst, int64_t n) {
    enum dtype vdt = quant_vec_dot_type(type);
    if (vdt == DTYPE_F32) memcpy(dst, x, (size_t)n * sizeof *x);
    else quantize_row_act(vdt, x, dst, n);
}

static size_t act_bytes_ref(enum dtype type, int64_t n_in) {
    uint64_t b = 0;
    if (dtype_row_bytes((uint32_t)quant_vec_dot_type(type), (uint64_t)n_in, &b)) return 0;
    return (size_t)b;
}

void mm_gemm_ref(const mm_weight *w, const void *xq, size_t xq_stride, int64_t n_rows, float *y, int64_t ldy,
                 int64_t o0, int64_t o1) {
    const uint8_t *wd = w->data;
    uint8_t buf[4096];
    for (int64_t o = o0; o < o1; o++) {
        const uint8_t *wr = wd + (size_t)o * w->row_bytes;
        if (w->layout != MM_LAYOUT_PLAIN) {
            /* Restore the plain row; rows longer than buf are dotted in
             * pieces of whole blocks (vec_dot_ref sums block by block). */
            const dtype_info *ti = dtype_get((uint32_t)w->type), *ai = dtype_get((uint32_t)w->act_type);
            int64_t per = (int64_t)(sizeof buf / ti->type_size) * ti->block_size;
            for (int64_t r = 0; r < n_rows; r++) y[r * ldy + o] = 0;
            for (int64_t k = 0; k < w->n_in; k += per) {
                int64_t n = w->n_in - k < per ? w->n_in - k : per;
                mm_weight_get_bytes(w, o, k, n, buf);
                size_t aoff = (size_t)(k / ai->block_size) * ai->type_size;
                for (int64_t r = 0; r < n_rows; r++)
                    y[r * ldy + o] += vec_dot_ref(w->type, n, buf, (const uint8_t *)xq + (size_t)r * xq_stride + aoff);
            }
            continue;
        }
        for (int64_t r = 0; r < n_rows; r++)
            y[r * ldy + o] = vec_dot_ref(w->type, w->n_in, wr, (const uint8_t *)xq + (size_t)r * xq_stride);
    }
}

void mm_kernels_fill_scalar(mm_kernels *k) {
    for (int t = 0; t < DTYPE_COUNT; t++) {
        if (t == DTYPE_Q8_1 || t == DTYPE_Q8_K || !quant_supported((enum dtype)t)) continue;
        k->gemm[t] = mm_gemm_ref;
        k->act[t] = act_ref;
        k->act_bytes[t] = act_bytes_ref;
    }
}
