/*
 * presplit.c - hand-written splitters for the three pre-tokenizer regexes
 * that most byte-level BPE vocabularies use (GPT-2, Llama 3, Qwen2), as
 * llama.cpp's unicode_regex_split_custom_* fast paths do. pretok.c calls
 * them instead of PCRE2 for those regexes; the result is the same split:
 * the character classes (\p{L}, \p{N}, \s) are read out of PCRE2 itself once
 * per process, and tests/unit/tok/test_tok.c compares both on random text.
 *
 *   GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
 *   Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *            ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   Qwen2:   the same with \p{N} instead of \p{N}{1,3}
 *
 * Input must be valid UTF-8 (pretok.c sanitizes first). Pieces are reported
 * in order; text no alternative matches (a "gap") is reported as one piece.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "tok/tok_int.h"

enum { CL_L = 1, CL_N = 2, CL_S = 4 };

typedef struct cl_range {
    uint32_t lo, hi;
    uint8_t cls;
} cl_range;

static uint8_t g_ascii[128];
static cl_range *g_ranges;
static size_t g_n_ranges;
static int g_ready; /* 1 once the tables are built, -1 when building failed */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int cmp_range(const void *a, const void *b) {
    const cl_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Appends the code point ranges that pattern (one class, "+") matches in
 * all[0..n) (every code point in order) to g_ranges. */
static int collect(const char *pattern, uint8_t cls, const char *all, size_t n, size_t *cap) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    if (!re) return -1;
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = md ? 0 : -1;
    size_t pos = 0;
    while (!rc && pos < n &&
           pcre2_match(re, (PCRE2_SPTR)all, n, pos, PCRE2_NO_UTF_CHECK, md, NULL) > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t lo, hi;
        utf8_decode(all + ov[0], n - ov[0], &lo);
        size_t last = ov[1] - 1;
        while ((all[last] & 0xC0) == 0x80) last--;
        utf8_decode(all + last, n - last, &hi);
        if (g_n_ranges == *cap) {
            size_t c2 = *cap ? *cap * 2 : 1024;
            cl_range *p = realloc(g_ranges, c2 * sizeof *p);
            if (!p) {
                rc = -1;
                break;
            }
            g_ranges = p;
            *cap = c2;
        }
        g_ranges[g_n_ranges++] = (cl_range){lo, hi, cls};
        pos = ov[1];
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc;
}

static void build_tables(void) {
    /* every code point but the surrogates, UTF-8 encoded in order */
    size_t cap_bytes = 4u * 0x110000, n = 0, cap = 0;
    char *all = malloc(cap_bytes);
    if (!all) {
        g_ready = -1;
        return;
    }
    for (uint32_t cp = 0; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        n += utf8_encode(cp, all + n);
    }
    if (collect("\\p{L}+", CL_L, all, n, &cap) || collect("\\p{N}+", CL_N, all, n, &cap) ||
        collect("\\s+", CL_S, all, n, &cap)) {
        free(all);
        g_ready = -1;
        return;
    }
    free(all);
    qsort(g_ranges, g_n_ranges, sizeof *g_ranges, cmp_range);
    for (size_t i = 0; i < g_n_ranges && g_ranges[i].lo < 128; i++)
        for (uint32_t c = g_ranges[i].lo; c <= g_ranges[i].hi && c < 128; c++)
            g_ascii[c] |= g_ranges[i].cls;
    g_ready = 1;
}

/* Builds the class tables once per process. Returns 0, or INFERD_ENOMEM
 * (then the caller keeps using PCRE2). */
int tok_presplit_init(void) {
    pthread_once(&g_once, build_tables);
    return g_ready == 1 ? 0 : INFERD_ENOMEM;
}

static inline uint8_t cls_of(uint32_t cp) {
    if (cp < 128) return g_ascii[cp];
    size_t lo = 0, hi = g_n_ranges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g_ranges[mid].hi < cp)
            lo = mid + 1;
        else if (g_ranges[mid].lo > cp)
            hi = mid;
        else
            return g_ranges[mid].cls;
    }
    return 0;
}

/* Decodes the (valid) character at s[i]; sets *next to the byte after it. */
static inline uint32_t cp_at(const char *s, size_t n, size_t i, size_t *next) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
        *next = i + 1;
        return c;
    }
    uint32_t cp;
    size_t k = utf8_decode(s + i, n - i, &cp);
    *next = i + (k ? k : 1);
    return cp;
}

/* End of the run of characters whose class has none of the bits of `not`
 * (and, when need != 0, has one of need) starting at i. */
static inline size_t run(const char *s, size_t n, size_t i, uint8_t need, uint8_t not ) {
    while (i < n) {
        size_t nx;
        uint8_t k = cls_of(cp_at(s, n, i, &nx));
        if ((k & not ) || (need && !(k & need))) break;
        i = nx;
    }
    return i;
}

static inline int lower_is(uint32_t c, char want) {
    return c == (uint32_t)want || c == (uint32_t)(want - 32) ||
           (want == 's' && c == 0x17F); /* ſ folds to s */
}

/* Length of a contraction ('s 't 're 've 'm 'll 'd) at i, or 0. */
static size_t contraction(const char *s, size_t n, size_t i, int caseless) {
    size_t p2, p3;
    if (s[i] != '\'' || i + 1 >= n) return 0;
    uint32_t c1 = cp_at(s, n, i + 1, &p2);
    if (!caseless) {
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return p2;
        if (p2 >= n) return 0;
        uint32_t c2 = cp_at(s, n, p2, &p3);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
            return p3;
        return 0;
    }
    if (lower_is(c1, 's') || lower_is(c1, 't') || lower_is(c1, 'm') || lower_is(c1, 'd')) return p2;
    if (p2 >= n) return 0;
    uint32_t c2 = cp_at(s, n, p2, &p3);
    if ((lower_is(c1, 'r') && lower_is(c2, 'e')) || (lower_is(c1, 'v') && lower_is(c2, 'e')) ||
        (lower_is(c1, 'l') && lower_is(c2, 'l')))
        return p3;
    return 0;
}

/* The end of the GPT-2 regex's match at i, or 0 when none starts there. */
static size_t match_gpt2(const char *s, size_t n, size_t i) {
    size_t e = contraction(s, n, i, 0);
    if (e) return e;
    size_t p1;
    uint32_t c = cp_at(s, n, i, &p1);
    uint8_t k = cls_of(c);
    size_t q = i;
    uint8_t kq = k;
    if (c == ' ' && p1 < n) { /* " ?" takes the space when the rest can match */
        size_t p2;
        uint8_t k1 = cls_of(cp_at(s, n, p1, &p2));
        if (!(k1 & CL_S)) q = p1, kq = k1;
    }
    if (kq & CL_L) return run(s, n, q, CL_L, 0);
    if (kq & CL_N) return run(s, n, q, CL_N, 0);
    if (!(kq & CL_S)) return run(s, n, q, 0, CL_S | CL_L | CL_N);
    /* \s+(?!\S) */
    size_t last = i, end = i;
    size_t cnt = 0;
    while (end < n) {
        size_t nx;
        if (!(cls_of(cp_at(s, n, end, &nx)) & CL_S)) break;
        last = end;
        end = nx;
        cnt++;
    }
    if (end == n) return end;
    return cnt > 1 ? last : 0;
}

/* The end of the Llama 3 (max_digits 3) / Qwen2 (1) regex's match at i. */
static size_t match_llama3(const char *s, size_t n, size_t i, int max_digits) {
    size_t e = contraction(s, n, i, 1);
    if (e) return e;
    size_t p1;
    uint32_t c = cp_at(s, n, i, &p1);
    uint8_t k = cls_of(c);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (k & CL_L) return run(s, n, i, CL_L, 0);
    if (c != '\r' && c != '\n' && !(k & CL_N) && p1 < n) {
        size_t p2;
        if (cls_of(cp_at(s, n, p1, &p2)) & CL_L) return run(s, n, p1, CL_L, 0);
    }
    /* \p{N}{1,max_digits} */
    if (k & CL_N) {
        size_t end = p1;
        for (int d = 1; d < max_digits && end < n; d++) {
            size_t nx;
            if (!(cls_of(cp_at(s, n, end, &nx)) & CL_N)) break;
            end = nx;
        }
        return end;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t q = (c == ' ') ? p1 : i;
    if (q < n) {
        size_t p2;
        if (!(cls_of(cp_at(s, n, q, &p2)) & (CL_S | CL_L | CL_N))) {
            size_t end = run(s, n, q, 0, CL_S | CL_L | CL_N);
            while (end < n && (s[end] == '\r' || s[end] == '\n')) end++;
            return end;
        }
    }
    if (!(k & CL_S)) return 0;
    /* \s*[\r\n]+ | \s+(?!\S) | \s+ over the whitespace run at i */
    size_t end = i, last = i, last_rn = 0, cnt = 0;
    while (end < n) {
        size_t nx;
        uint32_t w = cp_at(s, n, end, &nx);
        if (!(cls_of(w) & CL_S)) break;
        if (w == '\r' || w == '\n') last_rn = nx;
        last = end;
        end = nx;
        cnt++;
    }
    if (last_rn) return last_rn;
    if (end == n || cnt == 1) return end;
    return last;
}

/* Splits s[0..n) with the regex of kind and calls fn on each match and gap,
 * in order. Returns 0 or the first non-zero value fn returned. */
int tok_presplit(int kind, const char *s, size_t n, tok_piece_fn fn, void *ctx) {
    size_t i = 0, gap = SIZE_MAX;
    while (i < n) {
        size_t e = kind == TOK_SPLIT_GPT2 ? match_gpt2(s, n, i)
                                          : match_llama3(s, n, i, kind == TOK_SPLIT_LLAMA3 ? 3 : 1);
        if (e <= i) { /* no match here: the character joins the gap */
            if (gap == SIZE_MAX) gap = i;
            size_t nx;
            cp_at(s, n, i, &nx);
            i = nx;
            continue;
        }
        int rc;
        if (gap != SIZE_MAX && (rc = fn(ctx, s + gap, i - gap))) return rc;
        gap = SIZE_MAX;
        if ((rc = fn(ctx, s + i, e - i))) return rc;
        i = e;
    }
    return gap != SIZE_MAX ? fn(ctx, s + gap, n - gap) : 0;
}
