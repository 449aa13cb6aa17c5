/*
 * test_gguf_hostile.c - the reader against damaged and hostile files:
 * every truncation of real files, seeded random byte flips, absurd counts,
 * lengths, shapes, offsets and types. Each must fail with a message that
 * names the problem (never crash, never read outside the buffer: run under
 * ASan with make SAN=1).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "gguf/gguf.h"
#include "inferd.h"

static char *read_file(const char *path, size_t *n) {
    char *data = NULL;
    char err[256];
    int rc = file_read_all(path, 64u << 20, &data, n, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    return data;
}

/* Opens a private copy of exactly n bytes so that ASan sees any overread. */
static int open_copy(const void *src, size_t n, char *err, size_t err_size) {
    void *copy = malloc(n ? n : 1);
    cr_assert_not_null(copy);
    memcpy(copy, src, n);
    gguf_file *f = NULL;
    int rc = gguf_open_memory(copy, n, &f, err, err_size);
    if (rc == 0) {
        /* Walk everything the way a consumer would. */
        for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
            gguf_value v, e;
            gguf_kv_value(f, i, &v);
            gguf_value_iter it;
            gguf_value_iter_init(&v, &it);
            while (gguf_value_iter_next(&it, &e)) {}
        }
        for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            if (t->size_bytes) {
                volatile uint8_t x = ((const uint8_t *)t->data)[t->size_bytes - 1];
                (void)x;
            }
        }
        gguf_close(f);
    } else {
        cr_assert_null(f);
    }
    free(copy);
    return rc;
}

Test(gguf_hostile, truncations_of_stories) {
    size_t n;
    char *data = read_file("models/stories260K.gguf", &n);
    char err[512];
    /* Every prefix through the header, metadata and tensor infos (14176
     * bytes), then a spread through the data. */
    for (size_t len = 0; len < n; len += len < 14300 ? 1 : 4099) {
        err[0] = 0;
        int rc = open_copy(data, len, err, sizeof err);
        cr_assert_eq(rc, INFERD_EFORMAT, "length %zu: rc %d", len, rc);
        cr_assert(strncmp(err, "gguf: ", 6) == 0, "length %zu: '%s'", len, err);
    }
    cr_assert_eq(open_copy(data, n, err, sizeof err), 0, "%s", err);
    free(data);
}
