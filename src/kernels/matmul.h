/*
 * matmul.h - matrix products of activations with weight matrices: y = x W^T.
 * W is stored as ggml stores it: n_out rows of n_in elements in its type.
 * x (n_rows, n_in) is first converted once per call to the format the type's
 * dot product takes (quant_vec_dot_type: Q8_0, Q8_K, F16, ...), then each
 * worker computes a share of the output columns for every row: one row is a
 * GEMV (decode; bandwidth-bound, each weight byte read once), many rows a
 * tiled GEMM (prefill, batched decode; compute-bound, each weight block reused
 * across rows). Kernels come from a table chosen by cpu_level() (cpu.h).
 *
 * Used by: model/ (linear layers), engine (batched steps), inferd bench.
 */
#ifndef KERNELS_MATMUL_H
#define KERNELS_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "kernels/threadpool.h"

/* How the weight bytes are laid out. PLAIN is the GGUF layout. X16 (Q4_0,
 * Q8_0, F16; made by mm_weight_repack) is a permutation of the same bytes:
 * rows in groups of 16, and per group and block position one record of the
 * 16 rows' fp16 scales followed by their quants interleaved 4 bytes at a time
 * (Q8_0 quants stored offset by 128, as unsigned), so that one 64-byte vector
 * holds the same 4 elements of 16 rows; F16's block is one element, so its
 * record is that element of the 16 rows:
 *   Q4_0 record (288 B): d[16] fp16 | 4 x (16 rows x qs dword m)       m = 0..3
 *   Q8_0 record (544 B): d[16] fp16 | 8 x (16 rows x (qs dword m ^ 0x80808080))
 *   F16 record (32 B):   w[16] fp16 (element k of rows 16g .. 16g+15)
 * Row group g starts at byte 16*g*row_bytes; n_out must be a multiple of 16. */
enum mm_layout { MM_LAYOUT_PLAIN = 0, MM_LAYOUT_X16 = 1 };

typedef struct mm_weight {
    enum dtype type;
    int64_t n_in, n_out;
    const void *data;        /* (n_out, row_bytes) in type; borrowed, outlives the weight */
    size_t row_bytes;        /* bytes of one row of n_in elements */
    enum dtype act_type;     /* format x is converted to (quant_vec_dot_type(type)) */
    size_t act_row_bytes;    /* bytes of one converted activation row (largest over levels) */
    enum mm_layout layout;   /* layout of data */
} mm_weight;

/* Describes a weight matrix of n_out rows of n_in elements of type at data
 * (borrowed: it must stay valid and unchanged until mm_weight_release).
 * Returns 0, INFERD_EUNSUPPORTED for a type without kernels, or INFERD_EINVAL
 * when a size is not positive or n_in is not a multiple of the block size;
 * err says which. May later repack data for SIMD (see mm_layout). */
int mm_weight_init(mm_weight *w, enum dtype type, int64_t n_in, int64_t n_out, const void *data,
                   char *err, size_t err_size);

/* Permutes w's bytes in place into the type's SIMD layout (see mm_layout),
 * for faster mm_forward. The pages under w->data are replaced by private
 * anonymous ones holding the permuted bytes (same size: resident memory does
 * not grow; bytes of the same pages outside the tensor are copied unchanged),
 * so data may be a read-only file mapping. Afterwards nothing but mm_forward
 * and mm_weight_get_row may read the data: do not repack a tensor that is
 * also read directly (a tied token_embd). Returns 0 (also when the type or
 * shape has no repacked layout: then nothing changes), or INFERD_ENOMEM /
 * INFERD_EIO when the pages cannot be replaced (data unchanged). Call before
 * any mm_forward on w, from one thread. */
int mm_weight_repack(mm_weight *w, char *err, size_t err_size);

/* 1 if the running level's kernels (cpu_level()) read w in the X16 layout
 * natively, so that mm_weight_repack makes mm_forward faster; 0 when its
 * type or shape has no X16 layout or the level reads it row by row (an X16
 * weight would then go to the plain-C reference: correct but slow). */
int mm_weight_x16_native(const mm_weight *w);

/* mm_weight_repack for each of ws[0..n) (NULL entries skipped) for which
 * mm_weight_x16_native holds (the others keep their layout), and more:
 * weights whose pages lie close together (the layers of a GGUF file) get one
 * new mapping, bytes between them copied along, so that the mapping can use
 * transparent huge pages (2 MiB) although each tensor is smaller; weights
 * without a repacked layout in ws are moved there unchanged (same bytes,
 * same addresses). The old pages are paged out as the copy passes them, so
 * resident memory does not grow. Same rules and errors as mm_weight_repack;
 * afterwards only mm_forward and mm_weight_get_row read the repacked
 * weights (other data on the moved pages reads as before). */
int mm_weights_repack(mm_weight *const *ws, int n, char *err, size_t err_size);

/* Writes row o (n_in elements) of the weight, dequantized, to out; works in
 * every layout. */
void mm_weight_get_row(const mm_weight *w, int64_t o, float *out);

/* Releases what mm_weight_init made (nothing yet for PLAIN). Accepts NULL and
 * a zeroed weight; the weight reads as zeroed afterwards. */
void mm_weight_release(mm_weight *w);

/* Bytes of scratch mm_forward needs for n_rows activation rows (the converted
 * activations, 64-byte aligned inside). Allocate once for the largest batch. */
size_t mm_scratch_bytes(const mm_weight *w, int64_t n_rows);

/* y (n_rows, n_out) = x (n_rows, n_in) W^T, in float. scratch holds at least
 * mm_scratch_bytes(w, n_rows) bytes (caller-owned; any alignment). x and y
 * must not overlap. Runs on tp's workers (tp NULL: on the caller). */
void mm_forward(threadpool *tp, const mm_weight *w, const float *x, int64_t n_rows, float *y,
                void *scratch);

/* The most weights one mm_forward_group call takes. */
#define MM_MAX_GROUP 4

/* 1 when ws[0..n_w) can share one mm_forward_group run (1 <= n_w <=
 * MM_MAX_GROUP, same type and n_in, hence one activation conversion), else 0. */
int mm_group_ok(const mm_weight *const *ws, int n_w);

/* ys[i] (n_rows, ws[i]->n_out) = x (n_rows, n_in) ws[i]^T for every i < n_w,
 * in one pass over the pool: x is converted once, then the workers take
 * output chunks of all the weights from one counter (one synchronisation for
 * the group instead of one per weight). Results equal n_w mm_forward calls
 * bit for bit; weights that fail mm_group_ok simply get those calls. scratch
 * holds the largest mm_scratch_bytes(ws[i], n_rows); x must overlap no ys[i].
 * Products too small to repay waking the pool (here and in mm_forward) run
 * on the caller. */
void mm_forward_group(threadpool *tp, const mm_weight *const *ws, int n_w, const float *x,
                      int64_t n_rows, float *const *ys, void *scratch);

#endif
