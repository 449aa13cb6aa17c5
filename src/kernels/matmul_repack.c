/*
 * matmul_repack.c - the X16 weight layout (see mm_layout in matmul.h): the
 * in-place repack, done by building the permuted pages in a fresh anonymous
 * mapping and moving it over the old ones with mremap (one atomic switch, no
 * second copy left behind), and the way back to plain bytes for the reference
 * kernels and for row lookups.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <unistd.h>

#include "base/error.h"
#include "kernels/matmul_int.h"
#include "kernels/quant.h"

static void x16_record_from_plain(enum dtype t, uint8_t *rec, const uint8_t *const *rows, int n_valid);
static void f16_group_from_plain(uint16_t *dst, const uint8_t *rows, size_t row_bytes, int64_t n_in);

/* Quant dwords per X16 record after the 16 fp16 leading values (F16's
 * record is just the 16 rows' element). */
static int x16_n_dw(enum dtype t) { return t == DTYPE_Q4_0 ? 4 : t == DTYPE_Q8_0 ? 8 : 0; }

/* Huge pages: 2 MiB stretches of the weights on one TLB entry each, and no
 * 4 KiB page boundaries to stop the hardware prefetcher while streaming. */
#define HUGE_PAGE ((size_t)2 << 20)

/* A fresh anonymous read-write mapping of len bytes whose address is
 * congruent to `at` modulo HUGE_PAGE, marked for transparent huge pages
 * before its first touch, so that the 2 MiB-aligned stretches fault in as
 * huge pages and mremap can move them to `at` whole. NULL when out of
 * memory. */
static uint8_t *map_congruent(uintptr_t at, size_t len) {
    uint8_t *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    size_t lead = (at - (uintptr_t)raw) & (HUGE_PAGE - 1);
    if (lead) munmap(raw, lead);
    if (HUGE_PAGE - lead) munmap(raw + lead + len, HUGE_PAGE - lead);
    madvise(raw + lead, len, MADV_HUGEPAGE);
    return raw + lead;
}

int mm_x16_supported(const mm_weight *w) {
    return (w->type == DTYPE_Q4_0 || w->type == DTYPE_Q8_0 || w->type == DTYPE_F16) && w->n_out % 16 == 0;
}

/* Weights whose pages lie at most this far apart share one fresh mapping
 * (the bytes between, norm vectors and the like, are copied along); a wider
 * gap (a token embedding table read a row at a time) starts a new one. */
#define RUN_GAP ((size_t)1 << 20)

typedef struct span {
    uintptr_t start, end; /* the weight's bytes */
    mm_weight *w;
} span;

static int span_cmp(const void *a, const void *b) {
    uintptr_t x = ((const span *)a)->start, y = ((const span *)b)->start;
    return x < y ? -1 : x > y;
}

/* Bytes built and moved into place per mremap: bounds the second copy that
 * exists while a run is repacked (a multiple of HUGE_PAGE). */
#define CHUNK ((size_t)4 << 20)

/* Writes the X16 permutation of row group g (rows 16g .. 16g+15) of w's
 * plain bytes to dst (16 * row_bytes bytes, as the group occupies). */
static void x16_permute_group(const mm_weight *w, int64_t g, uint8_t *dst) {
    const uint8_t *src = (const uint8_t *)w->data + (size_t)g * 16 * w->row_bytes;
    if (w->type == DTYPE_F16) {
        f16_group_from_plain((uint16_t *)dst, src, w->row_bytes, w->n_in);
        return;
    }
    const dtype_info *ti = dtype_get((uint32_t)w->type);
    int64_t nb = w->n_in / ti->block_size;
    size_t rec_bytes = 16 * (size_t)ti->type_size;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk[16];
        for (int l = 0; l < 16; l++) blk[l] = src + (size_t)l * w->row_bytes + (size_t)b * ti->type_size;
        x16_record_from_plain(w->type, dst + (size_t)b * rec_bytes, blk, 16);
    }
}

/* Repacks the n weights of s (sorted, disjoint) over their pages [p0, p1):
 * fresh mappings for the whole range are reserved first (so running out of
 * memory changes nothing), then filled and moved into place CHUNK bytes at a
 * time at 2 MiB boundaries (huge pages stay whole; the old pages of a chunk
 * are released as it moves). A row group that straddles a chunk boundary is
 * permuted once into tmp, while all its plain bytes are still in place. */
static int repack_run(const span *s, int n, size_t page, char *err, size_t err_size) {
    uintptr_t p0 = s[0].start & ~(uintptr_t)(page - 1), p1 = (s[n - 1].end + page - 1) & ~(uintptr_t)(page - 1);
    size_t n_chunks = 0, max_gb = 0;
    for (uintptr_t c = p0; c < p1; n_chunks++) c = (c + CHUNK) & ~(uintptr_t)(HUGE_PAGE - 1);
    for (int i = 0; i < n; i++)
        if (16 * s[i].w->row_bytes > max_gb) max_gb = 16 * s[i].w->row_bytes;
    uint8_t **fresh = calloc(n_chunks, sizeof *fresh), *tmp = malloc(max_gb);
    int rc = 0;
    if (!fresh || !tmp) {
        rc = err_set(err, err_size, INFERD_ENOMEM, "matmul: out of memory repacking %d weight(s)", n);
        goto done;
    }
    uintptr_t c0 = p0;
    for (size_t k = 0; k < n_chunks; k++) {
        uintptr_t c1 = (c0 + CHUNK) & ~(uintptr_t)(HUGE_PAGE - 1);
        if (c1 > p1) c1 = p1;
        if (!(fresh[k] = map_congruent(c0, c1 - c0))) {
            rc = err_set(err, err_size, INFERD_ENOMEM, "matmul: cannot map %zu bytes to repack %d weight(s)",
                         (size_t)(p1 - p0), n);
            goto done;
        }
        c0 = c1;
    }
    uintptr_t tmp_at = 0; /* start of the group tmp holds (0: none) */
    int i = 0;
    c0 = p0;
    for (size_t k = 0; k < n_chunks; k++) {
        uintptr_t c1 = (c0 + CHUNK) & ~(uintptr_t)(HUGE_PAGE - 1), at = c0;
        if (c1 > p1) c1 = p1;
        uint8_t *f = fresh[k];
        while (at < c1) {
            while (i < n && s[i].end <= at) i++;
            if (i == n || s[i].start >= c1) { /* bytes outside the weights */
                memcpy(f + (at - c0), (const void *)at, c1 - at);
                break;
            }
            if (s[i].start > at) {
                memcpy(f + (at - c0), (const void *)at, s[i].start - at);
                at = s[i].start;
            }
            size_t gb = 16 * s[i].w->row_bytes;
            int64_t g = (int64_t)((at - s[i].start) / gb);
            uintptr_t gs = s[i].start + (size_t)g * gb, ge = gs + gb;
            if (gs >= c0 && ge <= c1) {
                x16_permute_group(s[i].w, g, f + (gs - c0));
                at = ge;
                continue;
            }
            if (tmp_at != gs) {
                x16_permute_group(s[i].w, g, tmp);
                tmp_at = gs;
            }
            uintptr_t e = ge < c1 ? ge : c1;
            memcpy(f + (at - c0), tmp + (at - gs), e - at);
            at = e;
        }
        if (mremap(f, c1 - c0, c1 - c0, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)c0) == MAP_FAILED) {
            rc = err_set(err, err_size, INFERD_EIO, "matmul: cannot move %zu repacked bytes into place",
                         (size_t)(c1 - c0));
            goto done;
        }
        fresh[k] = NULL;
        c0 = c1;
    }
    for (int j = 0; j < n; j++) s[j].w->layout = MM_LAYOUT_X16;
done:
    if (fresh) {
        c0 = p0;
        for (size_t k = 0; k < n_chunks; k++) {
            uintptr_t c1 = (c0 + CHUNK) & ~(uintptr_t)(HUGE_PAGE - 1);
            if (c1 > p1) c1 = p1;
            if (fresh[k]) munmap(fresh[k], c1 - c0);
            c0 = c1;
        }
    }
    free(fresh);
    free(tmp);
    return rc;
}

int mm_weights_repack(mm_weight *const *ws, int n_w, char *err, size_t err_size) {
    if (n_w <= 0) return 0;
    span *s = malloc(sizeof *s * (size_t)n_w);
    if (!s) return err_set(err, err_size, INFERD_ENOMEM, "matmul: out of memory repacking %d weights", n_w);
    int n = 0, rc = 0;
    for (int i = 0; i < n_w; i++) {
        mm_weight *w = ws[i];
        if (w->layout != MM_LAYOUT_PLAIN || !mm_x16_supported(w)) continue;
        s[n].start = (uintptr_t)w->data;
        s[n].end = s[n].start + (size_t)w->n_out * w->row_bytes;
        s[n++].w = w;
    }
    qsort(s, (size_t)n, sizeof *s, span_cmp);
    for (int i = 1; i < n; i++)
        if (s[i].start < s[i - 1].end) {
            free(s);
            return err_set(err, err_size, INFERD_EINVAL, "matmul: two weights to repack share bytes");
        }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (int i0 = 0, i = 1; i0 < n && !rc; i++) {
        if (i < n && (s[i].start & ~(uintptr_t)(page - 1)) <= s[i - 1].end + page + RUN_GAP) continue;
        rc = repack_run(s + i0, i - i0, page, err, err_size);
        i0 = i;
    }
    free(s);
    return rc;
}

int mm_weight_repack(mm_weight *w, char *err, size_t err_size) { return mm_weights_repack(&w, 1, err, err_size); }

void mm_x16_pack(const mm_weight *w, int64_t o, int64_t b0, int64_t n_blocks, uint8_t *dst) {
    const dtype_info *ti = dtype_get((uint32_t)w->type);
    size_t rec_bytes = 16 * (size_t)ti->type_size;
    int n_valid = w->n_out - o < 16 ? (int)(w->n_out - o) : 16;
    const uint8_t *blk[16];
    for (int64_t b = 0; b < n_blocks; b++) {
        for (int l = 0; l < n_valid; l++)
            blk[l] = (const uint8_t *)w->data + (size_t)(o + l) * w->row_bytes + (size_t)(b0 + b) * ti->type_size;
        x16_record_from_plain(w->type, dst + (size_t)b * rec_bytes, blk, n_valid);
    }
}

void mm_weight_get_bytes(const mm_weight *w, int64_t o, int64_t k0, int64_t n, void *dst) {
    const dtype_info *ti = dtype_get((uint32_t)w->type);
    int64_t b0 = k0 / ti->block_size, nb = n / ti->block_size;
    if (w->layout == MM_LAYOUT_PLAIN) {
        memcpy(dst, (const uint8_t *)w->data + (size_t)o * w->row_bytes + (size_t)b0 * ti->type_size,
               (size_t)nb * ti->type_size);
        return;
    }
    size_t rec_bytes = 16 * (size_t)ti->type_size;
    int l = (int)(o % 16);
    const uint8_t *grp = (const uint8_t *)w->data + (size_t)(o / 16) * 16 * w->row_bytes;
    int n_dw = x16_n_dw(w->type);
    uint32_t flip = w->type == DTYPE_Q8_0 ? 0x80808080u : 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *rec = grp + (size_t)(b0 + b) * rec_bytes;
        uint8_t *out = (uint8_t *)dst + (size_t)b * ti->type_size;
        memcpy(out, rec + 2 * l, 2);
        for (int m = 0; m < n_dw; m++) {
            uint32_t v;
            memcpy(&v, rec + 32 + 64 * m + 4 * l, 4);
            v ^= flip;
            memcpy(out + 2 + 4 * m, &v, 4);
        }
    }
}

void mm_weight_get_row(const mm_weight *w, int64_t o, float *out) {
    const dtype_info *ti = dtype_get((uint32_t)w->type);
    uint8_t buf[4096];
    int64_t per = (int64_t)(sizeof buf / ti->type_size) * ti->block_size;
    for (int64_t k = 0; k < w->n_in; k += per) {
        int64_t n = w->n_in - k < per ? w->n_in - k : per;
        mm_weight_get_bytes(w, o, k, n, buf);
        dequantize_row(w->type, buf, out + k, n);
    }
}

/* One X16 record from the same block of n_valid rows (rows past n_valid get
 * scale 0, so they contribute nothing). */
static void x16_record_from_plain(enum dtype t, uint8_t *rec, const uint8_t *const *blk, int n_valid) {
    int n_dw = x16_n_dw(t);
    uint32_t flip = t == DTYPE_Q8_0 ? 0x80808080u : 0;
    for (int l = 0; l < 16; l++) {
        if (l >= n_valid) {
            memset(rec + 2 * l, 0, 2);
            for (int m = 0; m < n_dw; m++) memset(rec + 32 + 64 * m + 4 * l, 0, 4);
            continue;
        }
        memcpy(rec + 2 * l, blk[l], 2);
        for (int m = 0; m < n_dw; m++) {
            uint32_t v;
            memcpy(&v, blk[l] + 2 + 4 * m, 4);
            v ^= flip;
            memcpy(rec + 32 + 64 * m + 4 * l, &v, 4);
        }
    }
}

/* F16 rows [16g, 16g+16) (plain, row_bytes apart from rows) as X16: element
 * k of the 16 rows at dst[16k .. 16k+15]. SSE2 (x86-64's baseline) moves 8
 * elements of 8 rows at a time as an 8 x 8 transpose. */
static void f16_group_from_plain(uint16_t *dst, const uint8_t *rows, size_t row_bytes, int64_t n_in) {
    int64_t k = 0;
#ifdef __SSE2__
    for (; k + 8 <= n_in; k += 8) {
        for (int h = 0; h < 2; h++) {
            __m128i a[8], t[8], u[8];
            for (int l = 0; l < 8; l++)
                a[l] = _mm_loadu_si128((const __m128i *)(rows + (size_t)(8 * h + l) * row_bytes + 2 * (size_t)k));
            for (int l = 0; l < 4; l++) {
                t[2 * l] = _mm_unpacklo_epi16(a[2 * l], a[2 * l + 1]);
                t[2 * l + 1] = _mm_unpackhi_epi16(a[2 * l], a[2 * l + 1]);
            }
            for (int q = 0; q < 2; q++) { /* rows 0-3 (q 0) and 4-7 (q 1) */
                u[4 * q] = _mm_unpacklo_epi32(t[4 * q], t[4 * q + 2]);
                u[4 * q + 1] = _mm_unpackhi_epi32(t[4 * q], t[4 * q + 2]);
                u[4 * q + 2] = _mm_unpacklo_epi32(t[4 * q + 1], t[4 * q + 3]);
                u[4 * q + 3] = _mm_unpackhi_epi32(t[4 * q + 1], t[4 * q + 3]);
            }
            for (int m = 0; m < 4; m++) { /* u[m] holds elements 2m, 2m+1 of rows 0-3 */
                __m128i *out = (__m128i *)(dst + 16 * (k + 2 * m) + 8 * h);
                _mm_storeu_si128(out, _mm_unpacklo_epi64(u[m], u[4 + m]));
                _mm_storeu_si128(out + 2, _mm_unpackhi_epi64(u[m], u[4 + m]));
            }
        }
    }
#endif
    for (; k < n_in; k++)
        for (int l = 0; l < 16; l++) memcpy(&dst[16 * k + l], rows + (size_t)l * row_bytes + 2 * (size_t)k, 2);
}
