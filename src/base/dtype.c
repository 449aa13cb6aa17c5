/*
 * dtype.c - the tensor type table; see dtype.h.
 */
#include "base/dtype.h"

#include <strings.h>

#include "base/util.h"
#include "inferd.h"

static const dtype_info table[DTYPE_COUNT] = {
    [DTYPE_F32] = {"f32", 1, 4},         [DTYPE_F16] = {"f16", 1, 2},
    [DTYPE_Q4_0] = {"q4_0", 32, 18},     [DTYPE_Q4_1] = {"q4_1", 32, 20},
    [DTYPE_Q5_0] = {"q5_0", 32, 22},     [DTYPE_Q5_1] = {"q5_1", 32, 24},
    [DTYPE_Q8_0] = {"q8_0", 32, 34},     [DTYPE_Q8_1] = {"q8_1", 32, 36},
    [DTYPE_Q2_K] = {"q2_K", 256, 84},    [DTYPE_Q3_K] = {"q3_K", 256, 110},
    [DTYPE_Q4_K] = {"q4_K", 256, 144},   [DTYPE_Q5_K] = {"q5_K", 256, 176},
    [DTYPE_Q6_K] = {"q6_K", 256, 210},   [DTYPE_Q8_K] = {"q8_K", 256, 292},
    [DTYPE_IQ2_XXS] = {"iq2_xxs", 256, 66}, [DTYPE_IQ2_XS] = {"iq2_xs", 256, 74},
    [DTYPE_IQ3_XXS] = {"iq3_xxs", 256, 98}, [DTYPE_IQ1_S] = {"iq1_s", 256, 50},
    [DTYPE_IQ4_NL] = {"iq4_nl", 32, 18}, [DTYPE_IQ3_S] = {"iq3_s", 256, 110},
    [DTYPE_IQ2_S] = {"iq2_s", 256, 82},  [DTYPE_IQ4_XS] = {"iq4_xs", 256, 136},
    [DTYPE_I8] = {"i8", 1, 1},           [DTYPE_I16] = {"i16", 1, 2},
    [DTYPE_I32] = {"i32", 1, 4},         [DTYPE_I64] = {"i64", 1, 8},
    [DTYPE_F64] = {"f64", 1, 8},         [DTYPE_IQ1_M] = {"iq1_m", 256, 56},
    [DTYPE_BF16] = {"bf16", 1, 2},       [DTYPE_TQ1_0] = {"tq1_0", 256, 54},
    [DTYPE_TQ2_0] = {"tq2_0", 256, 66},
};

const dtype_info *dtype_get(uint32_t type) {
    if (type >= DTYPE_COUNT || !table[type].name) return NULL;
    return &table[type];
}

int dtype_from_name(const char *name, enum dtype *out) {
    for (int i = 0; i < DTYPE_COUNT; i++) {
        if (table[i].name && !strcasecmp(table[i].name, name)) {
            *out = (enum dtype)i;
            return 0;
        }
    }
    return INFERD_ENOTFOUND;
}

int dtype_row_bytes(uint32_t type, uint64_t n, uint64_t *out) {
    const dtype_info *t = dtype_get(type);
    if (!t || n % t->block_size) return INFERD_EINVAL;
    if (mul_overflow_u64(n / t->block_size, t->type_size, out)) return INFERD_ERANGE;
    return 0;
}
