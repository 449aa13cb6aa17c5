/*
 * dtype.h - the tensor element types of GGUF/ggml (ids as in ggml.h), with
 * their block geometry. One table, used by the GGUF reader (size checks),
 * the kernels (dispatch) and the tools (names).
 *
 *   id  name     block  bytes/block     id  name     block  bytes/block
 *    0  f32          1    4             15  q8_K       256  292
 *    1  f16          1    2             16  iq2_xxs    256   66
 *    2  q4_0        32   18             17  iq2_xs     256   74
 *    3  q4_1        32   20             18  iq3_xxs    256   98
 *    6  q5_0        32   22             19  iq1_s      256   50
 *    7  q5_1        32   24             20  iq4_nl      32   18
 *    8  q8_0        32   34             21  iq3_s      256  110
 *    9  q8_1        32   36             22  iq2_s      256   82
 *   10  q2_K       256   84             23  iq4_xs     256  136
 *   11  q3_K       256  110             24-28 i8 i16 i32 i64 f64 (1 each)
 *   12  q4_K       256  144             29  iq1_m      256   56
 *   13  q5_K       256  176             30  bf16         1    2
 *   14  q6_K       256  210             34  tq1_0      256   54
 *                                       35  tq2_0      256   66
 * Ids 4, 5 and 31-33 were removed from ggml and are rejected.
 */
#ifndef BASE_DTYPE_H
#define BASE_DTYPE_H

#include <stdint.h>

enum dtype {
    DTYPE_F32 = 0,
    DTYPE_F16 = 1,
    DTYPE_Q4_0 = 2,
    DTYPE_Q4_1 = 3,
    DTYPE_Q5_0 = 6,
    DTYPE_Q5_1 = 7,
    DTYPE_Q8_0 = 8,
    DTYPE_Q8_1 = 9,
    DTYPE_Q2_K = 10,
    DTYPE_Q3_K = 11,
    DTYPE_Q4_K = 12,
    DTYPE_Q5_K = 13,
    DTYPE_Q6_K = 14,
    DTYPE_Q8_K = 15,
    DTYPE_IQ2_XXS = 16,
    DTYPE_IQ2_XS = 17,
    DTYPE_IQ3_XXS = 18,
    DTYPE_IQ1_S = 19,
    DTYPE_IQ4_NL = 20,
    DTYPE_IQ3_S = 21,
    DTYPE_IQ2_S = 22,
    DTYPE_IQ4_XS = 23,
    DTYPE_I8 = 24,
    DTYPE_I16 = 25,
    DTYPE_I32 = 26,
    DTYPE_I64 = 27,
    DTYPE_F64 = 28,
    DTYPE_IQ1_M = 29,
    DTYPE_BF16 = 30,
    DTYPE_TQ1_0 = 34,
    DTYPE_TQ2_0 = 35,
    DTYPE_COUNT = 36 /* one past the largest id */
};

typedef struct dtype_info {
    const char *name;    /* ggml_type_name(): "f32", "q4_K", ... */
    uint32_t block_size; /* elements per block */
    uint32_t type_size;  /* bytes per block */
} dtype_info;

/* Returns the type's info, or NULL for an id that is not a known type. */
const dtype_info *dtype_get(uint32_t type);
/* Looks a type up by name, case-insensitively ("Q4_K", "q4_k", "bf16").
 * Returns 0 or INFERD_ENOTFOUND. */
int dtype_from_name(const char *name, enum dtype *out);
/* Bytes of a row of n elements. Returns 0, INFERD_EINVAL when the type is
 * unknown or n is not a multiple of its block size, INFERD_ERANGE on overflow. */
int dtype_row_bytes(uint32_t type, uint64_t n, uint64_t *out);

#endif
