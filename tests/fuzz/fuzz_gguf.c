/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader: opens the input with
 * gguf_open_memory and, when it opens, walks every key (typed getters, every
 * array element, nested arrays, string-array lookups) and every tensor (its
 * first and last data byte, lookup by name). A failure must come with a
 * "gguf: " message. An opened file is also copied into a writer (every key,
 * every value re-validated by gguf_writer_set_value, every tensor) without
 * writing it out. Built and run by scripts/fuzz.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"

static uint64_t sink;

static void walk(const gguf_value *v, int depth) {
    int64_t s;
    uint64_t u;
    double d;
    if (gguf_value_i64(v, &s) == 0) sink += (uint64_t)s;
    if (gguf_value_u64(v, &u) == 0) sink += u;
    if (gguf_value_f64(v, &d) == 0) sink += (uint64_t)(d == d);
    if (v->type == GGUF_TYPE_STRING && v->str.len) sink += (uint8_t)v->str.data[v->str.len - 1];
    if (v->type != GGUF_TYPE_ARRAY) return;
    gguf_value_iter it;
    gguf_value e;
    uint64_t n = 0;
    gguf_value_iter_init(v, &it);
    while (gguf_value_iter_next(&it, &e)) {
        walk(&e, depth + 1);
        n++;
    }
    if (n != v->n) __builtin_trap(); /* an opened file's arrays are whole */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    char err[512];
    err[0] = 0;
    if (gguf_open_memory(data, size, &f, err, sizeof err) != 0) {
        if (f || strncmp(err, "gguf: ", 6) != 0) __builtin_trap();
        return 0;
    }
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_value v;
        if (gguf_kv_value(f, i, &v) != 0) __builtin_trap();
        walk(&v, 0);
        gguf_str k = gguf_kv_key(f, i);
        char *key = malloc((size_t)k.len + 1);
        if (!key) break;
        memcpy(key, k.data, (size_t)k.len);
        key[k.len] = 0;
        if (strlen(key) == k.len) {
            uint32_t u32;
            uint64_t u64;
            int64_t i64;
            float f32;
            int b;
            gguf_str s;
            enum gguf_value_type et;
            uint64_t n;
            if (gguf_find_key(f, key) != (int64_t)i) __builtin_trap();
            gguf_get_u32(f, key, &u32);
            gguf_get_u64(f, key, &u64);
            gguf_get_i64(f, key, &i64);
            gguf_get_f32(f, key, &f32);
            gguf_get_bool(f, key, &b);
            gguf_get_str(f, key, &s);
            free(gguf_get_str_dup(f, key));
            gguf_get_arr_data(f, key);
            if (gguf_get_arr(f, key, &et, &n) == 0 && et == GGUF_TYPE_STRING) {
                for (uint64_t j = 0; j < n; j++) {
                    gguf_str e = gguf_get_arr_str(f, key, j);
                    if (!e.data) __builtin_trap();
                    if (e.len) sink += (uint8_t)e.data[e.len - 1];
                }
                if (gguf_get_arr_str(f, key, n).data) __builtin_trap();
            }
        }
        free(key);
    }
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->size_bytes) {
            const uint8_t *p = t->data;
            sink += p[0] + p[t->size_bytes - 1];
        }
        char name[80];
        if (t->name.len < sizeof name) {
            memcpy(name, t->name.data, (size_t)t->name.len);
            name[t->name.len] = 0;
            if (strlen(name) == t->name.len && gguf_find_tensor(f, name) != t) __builtin_trap();
        }
    }
    gguf_writer *w = gguf_writer_new();
    if (w) {
        if (gguf_writer_copy_all_kv(w, f) != 0 && gguf_n_kv(f) && !gguf_writer_error(w)[0])
            __builtin_trap();
        for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
            gguf_value v;
            gguf_kv_value(f, i, &v);
            if (gguf_writer_set_value(w, "fuzz.copy", &v) != 0) __builtin_trap();
        }
        for (uint64_t i = 0; i < gguf_n_tensors(f); i++)
            gguf_writer_copy_tensor(w, gguf_tensor_at(f, i));
        gguf_writer_free(w);
    }
    gguf_close(f);
    return 0;
}
