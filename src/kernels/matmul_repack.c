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

int mm_weight_x16_native(const mm_weight *w) {
    return mm_x16_supported(w) && mm_kernels_get(cpu_level())->x16[w->type];
}

/* Writes w's bytes (plain, at w->data) permuted into the X16 layout at dst. */
static void permute_x16(const mm_weight *w, uint8_t *dst) {
    const dtype_info *ti = dtype_get((uint32_t)w->type);
    int64_t nb = w->n_in / ti->block_size;
    size_t rec_bytes = 16 * (size_t)ti->type_size;
    void (*fast)(const mm_weight *, int64_t, int64_t, int64_t, uint8_t *) = mm_kernels_get(cpu_level())->x16_pack[w->type];
    for (int64_t g = 0; g < w->n_out / 16; g++) {
        if (w->type == DTYPE_F16) {
            f16_group_from_plain((uint16_t *)(dst + (size_t)g * 16 * w->row_bytes),
                                 (const uint8_t *)w->data + (size_t)g * 16 * w->row_bytes, w->row_bytes, w->n_in);
            continue;
        }
        const uint8_t *rows[16];
        for (int l = 0; l < 16; l++) rows[l] = (const uint8_t *)w->data + (size_t)(16 * g + l) * w->row_bytes;
        uint8_t *gdst = dst + (size_t)g * 16 * w->row_bytes;
        if (fast) {
            fast(w, 16 * g, 0, nb, gdst);
            continue;
        }
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk[16];
            for (int l = 0; l < 16; l++) blk[l] = rows[l] + (size_t)b * ti->type_size;
            x16_record_from_plain(w->type, gdst + (size_t)b * rec_bytes, blk, 16);
        }
    }
}

/* Weights whose pages lie at most this far apart share one new mapping (the
 * bytes between them, e.g. norm vectors, are copied along). */
#define SPAN_GAP ((uintptr_t)64 << 10)

static int by_address(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)(*(mm_weight *const *)a)->data, y = (uintptr_t)(*(mm_weight *const *)b)->data;
    return x < y ? -1 : x > y;
}

/* Replaces the pages [p0, p1) that hold ws[0..n) (ascending, inside the
 * range) by fresh anonymous ones with the same bytes, except that the weights
 * with an X16 layout are permuted into it (with only_native, just those
 * the running level reads natively). The old pages are paged out as
 * the copy passes them (MADV_PAGEOUT: clean file pages leave memory, nothing
 * is lost; MADV_DONTNEED for those another process maps too), so resident
 * memory stays about flat. */
static int repack_span(mm_weight *const *ws, int n, uintptr_t p0, uintptr_t p1, size_t page, int only_native,
                       char *err, size_t err_size) {
    size_t len = p1 - p0;
    uint8_t *fresh = map_congruent(p0, len);
    if (!fresh)
        return err_set(err, err_size, INFERD_ENOMEM, "matmul: cannot map %zu bytes to repack %s weights", len,
                       dtype_get((uint32_t)ws[0]->type)->name);
    uintptr_t copied = p0; /* the bytes below this are in fresh */
    uint64_t permuted = 0;  /* bit i: ws[i] was permuted (n <= 64 per span) */
    for (int i = 0; i < n; i++) {
        const mm_weight *w = ws[i];
        uintptr_t start = (uintptr_t)w->data, end = start + (size_t)w->n_out * w->row_bytes;
        if (start >= copied && w->layout == MM_LAYOUT_PLAIN && mm_x16_supported(w) &&
            (!only_native || mm_weight_x16_native(w))) {
            memcpy(fresh + (copied - p0), (const void *)copied, start - copied);
            permute_x16(w, fresh + (start - p0));
            permuted |= (uint64_t)1 << i;
            copied = end;
        } else if (end > copied) { /* moved as it is (or overlapping: copy the rest) */
            memcpy(fresh + (copied - p0), (const void *)copied, end - copied);
            copied = end;
        }
        /* Every later weight starts at or past `copied` (ascending order):
         * the whole old pages below it are not read again. */
        uintptr_t drop = copied & ~(uintptr_t)(page - 1);
        if (drop > p0 && (i + 1 == n || (i & 7) == 7)) {
            madvise((void *)p0, drop - p0, MADV_PAGEOUT);
            /* Pages another process also maps are not paged out: unmap
             * them from this process at least (the file still has them). */
            madvise((void *)p0, drop - p0, MADV_DONTNEED);
        }
    }
    if (p1 > copied) memcpy(fresh + (copied - p0), (const void *)copied, p1 - copied);
    if (mremap(fresh, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)p0) == MAP_FAILED) {
        munmap(fresh, len);
        return err_set(err, err_size, INFERD_EIO, "matmul: cannot move repacked %s weight pages into place",
                       dtype_get((uint32_t)ws[0]->type)->name);
    }
    for (int i = 0; i < n; i++)
        if (permuted >> i & 1) ws[i]->layout = MM_LAYOUT_X16;
    return 0;
}

int mm_weight_repack(mm_weight *w, char *err, size_t err_size) {
    if (w->layout != MM_LAYOUT_PLAIN || !mm_x16_supported(w)) return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)w->data, end = start + (size_t)w->n_out * w->row_bytes;
    uintptr_t p0 = start & ~(uintptr_t)(page - 1), p1 = (end + page - 1) & ~(uintptr_t)(page - 1);
    return repack_span(&w, 1, p0, p1, page, 0, err, err_size);
}

int mm_weights_repack(mm_weight *const *ws, int n, char *err, size_t err_size) {
    if (n <= 0) return 0;
    mm_weight **sorted = malloc(sizeof *sorted * (size_t)n);
    if (!sorted) return err_set(err, err_size, INFERD_ENOMEM, "matmul: out of memory sorting %d weights", n);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (ws[i] && ws[i]->data && ws[i]->layout == MM_LAYOUT_PLAIN) sorted[m++] = ws[i];
    qsort(sorted, (size_t)m, sizeof *sorted, by_address);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    int rc = 0;
    for (int i = 0; i < m && !rc;) {
        uintptr_t p0 = (uintptr_t)sorted[i]->data & ~(uintptr_t)(page - 1), p1 = p0;
        int j = i;
        for (; j < m; j++) {
            uintptr_t s = (uintptr_t)sorted[j]->data, e = s + (size_t)sorted[j]->n_out * sorted[j]->row_bytes;
            if (j > i && ((s & ~(uintptr_t)(page - 1)) > p1 + SPAN_GAP || j - i == 64)) break;
            e = (e + page - 1) & ~(uintptr_t)(page - 1);
            if (e > p1) p1 = e;
        }
        rc = repack_span(sorted + i, j - i, p0, p1, page, 1, err, err_size);
        i = j;
    }
    free(sorted);
    return rc;
}

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
