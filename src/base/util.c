/*
 * util.c - hashing, clocks, file reads, aligned allocation, splitmix64.
 */
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"

uint64_t hash_bytes(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t hash_combine(uint64_t a, uint64_t b) {
    uint64_t x = a ^ (b + 0x9E3779B97F4A7C15ULL + (a << 6) + (a >> 2));
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

uint64_t time_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

double time_now_s(void) { return (double)time_now_ns() / 1e9; }

int64_t time_unix_s(void) { return (int64_t)time(NULL); }

int file_read_all(const char *path, size_t max_bytes, char **out, size_t *out_len,
                  char *err, size_t err_size) {
    *out = NULL;
    if (out_len) *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, err_size, INFERD_EIO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    int rc = 0;
    if (!data) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    for (;;) {
        if (cap - len < 2) {
            if (cap >= max_bytes + 2) {
                rc = err_set(err, err_size, INFERD_ETOOLONG, "'%s' is larger than %zu bytes", path,
                             max_bytes);
                goto done;
            }
            size_t ncap = cap * 2 > max_bytes + 2 ? max_bytes + 2 : cap * 2;
            char *p = realloc(data, ncap);
            if (!p) {
                rc = err_set(err, err_size, INFERD_ENOMEM, "out of memory reading '%s'", path);
                goto done;
            }
            data = p;
            cap = ncap;
        }
        size_t n = fread(data + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        rc = err_set(err, err_size, INFERD_EIO, "error reading '%s'", path);
        goto done;
    }
    if (len > max_bytes) {
        rc = err_set(err, err_size, INFERD_ETOOLONG, "'%s' is larger than %zu bytes", path, max_bytes);
        goto done;
    }
    data[len] = 0;
    *out = data;
    data = NULL;
    if (out_len) *out_len = len;
done:
    free(data);
    fclose(f);
    return rc;
}

void *aligned_zalloc(size_t size, size_t align) {
    void *p = NULL;
    if (size == 0) size = align;
    if (posix_memalign(&p, align, size)) return NULL;
    memset(p, 0, size);
    return p;
}

void aligned_free(void *p) { free(p); }

uint64_t splitmix64(uint64_t *s) {
    *s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double rng_uniform(uint64_t *s) {
    return ((double)(splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
}
