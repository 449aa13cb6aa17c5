/*
 * jinja_lex.c - the Jinja lexer: template source -> tokens (jinja_int.h).
 *
 * Follows jinja2's lexer with the environment chat templates are rendered in
 * (transformers): trim_blocks (one newline after a block or comment tag is
 * dropped), lstrip_blocks (spaces/tabs before a block or comment tag at the
 * start of a line are dropped), '-' / '+' whitespace control on every tag,
 * {% raw %}, newline normalization of text to "\n", keep_trailing_newline off.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "tok/jinja_int.h"

typedef struct lexer {
    const char *s;
    size_t n, pos;
    int line;
    jx_arena *a;
    jtok *toks;
    size_t n_toks, cap;
    char *err;
    size_t err_size;
} lexer;

static int lex_fail(lexer *lx, const char *msg) {
    snprintf(lx->err, lx->err_size, "TemplateSyntaxError: %s (line %d)", msg, lx->line);
    return -1;
}

static jtok *push(lexer *lx, int type) {
    if (lx->n_toks == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        jtok *t = jx_alloc(lx->a, cap * sizeof *t);
        if (!t) return NULL;
        if (lx->n_toks) memcpy(t, lx->toks, lx->n_toks * sizeof *t);
        lx->toks = t;
        lx->cap = cap;
    }
    jtok *t = &lx->toks[lx->n_toks++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->line = lx->line;
    return t;
}

static int count_lines(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

/* Length of the Python-whitespace character at s (0 if none). */
static size_t space_at(const char *s, size_t n) {
    if (!n) return 0;
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) return jx_is_space(c) ? 1 : 0;
    uint32_t cp;
    size_t k = utf8_decode(s, n, &cp);
    return k && jx_is_space(cp) ? k : 0;
}

static size_t skip_space(const char *s, size_t pos, size_t n) {
    size_t k;
    while (pos < n && (k = space_at(s + pos, n - pos))) pos += k;
    return pos;
}

/* Length of text after Python's str.rstrip(). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t st = end - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80 && end - st < 4) st--;
        if (space_at(s + st, end - st) != end - st) break;
        end = st;
    }
    return end;
}

/* Emits text with \r\n and \r normalized to \n. */
static int emit_text(lexer *lx, const char *s, size_t n, int line) {
    if (!n) return 0;
    jtok *t = push(lx, JT_TEXT);
    if (!t) return -1;
    t->line = line;
    t->str = jx_str_new(lx->a, s, n);
    if (!t->str) return -1;
    size_t w = 0;
    char *d = t->str->s;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            d[w++] = '\n';
            if (i + 1 < n && s[i + 1] == '\n') i++;
        } else {
            d[w++] = s[i];
        }
    }
    d[w] = 0;
    t->str->len = w;
    return 0;
}

/* Applies '-' and lstrip_blocks to the text before a tag; returns its kept length. */
static size_t strip_before(lexer *lx, const char *text, size_t n, char sign, int is_var,
                           int line_starting) {
    (void)lx;
    if (sign == '-') return rstrip_len(text, n);
    if (sign == '+' || is_var) return n;
    size_t l_pos = n;
    while (l_pos > 0 && text[l_pos - 1] != '\n') l_pos--;
    if (l_pos == 0 && !line_starting) return n;
    for (size_t i = l_pos; i < n; i++)
        if (text[i] != ' ' && text[i] != '\t') return n;
    return l_pos;
}

/* Python string literal escapes (as jinja2 decodes them). */
static int unescape(lexer *lx, const char *s, size_t n, jstr **out) {
    jstr *r = jx_str_new(lx->a, NULL, n);
    if (!r) return -1;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\r') {
            r->s[w++] = '\n';
            if (i + 1 < n && s[i + 1] == '\n') i++;
            continue;
        }
        if (c != '\\' || i + 1 >= n) {
            r->s[w++] = c;
            continue;
        }
        char e = s[++i];
        uint32_t cp = 0;
        int digits = 0;
        switch (e) {
        case 'n':
            r->s[w++] = '\n';
            break;
        case 't':
            r->s[w++] = '\t';
            break;
        case 'r':
            r->s[w++] = '\r';
            break;
        case '\\':
            r->s[w++] = '\\';
            break;
        case '\'':
            r->s[w++] = '\'';
            break;
        case '"':
            r->s[w++] = '"';
            break;
        case 'a':
            r->s[w++] = '\a';
            break;
        case 'b':
            r->s[w++] = '\b';
            break;
        case 'f':
            r->s[w++] = '\f';
            break;
        case 'v':
            r->s[w++] = '\v';
            break;
        case '\n':
            break;
        case 'x':
            digits = 2;
            break;
        case 'u':
            digits = 4;
            break;
        case 'U':
            digits = 8;
            break;
        default:
            if (e >= '0' && e <= '7') {
                int k = 0;
                while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7')
                    cp = cp * 8 + (uint32_t)(s[i++] - '0'), k++;
                i--;
                char tmp[4];
                size_t m = utf8_encode(cp, tmp);
                memcpy(r->s + w, tmp, m);
                w += m;
            } else {
                r->s[w++] = '\\';
                r->s[w++] = e;
            }
        }
        if (digits) {
            if (i + (size_t)digits >= n)
                return lex_fail(lx, "truncated \\x/\\u escape in a string literal");
            for (int k = 1; k <= digits; k++) {
                char h = s[i + (size_t)k];
                int v = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (v < 0) return lex_fail(lx, "bad hex digit in a string literal escape");
                cp = cp * 16 + (uint32_t)v;
            }
            i += (size_t)digits;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return lex_fail(lx, "escape outside the Unicode range in a string literal");
            char tmp[4];
            size_t m = utf8_encode(cp, tmp);
            memcpy(r->s + w, tmp, m);
            w += m;
        }
    }
    r->s[w] = 0;
    r->len = w;
    *out = r;
    return 0;
}

static int is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Scans digits with '_' separators into buf; returns chars consumed. */
static size_t scan_digits(const char *s, size_t n, char *out, size_t *w, size_t cap) {
    size_t i = 0;
    while (i < n && (is_digit(s[i]) || (s[i] == '_' && i > 0 && i + 1 < n && is_digit(s[i + 1])))) {
        if (s[i] != '_' && *w + 1 < cap) out[(*w)++] = s[i];
        i++;
    }
    return i;
}

static int lex_number(lexer *lx) {
    const char *s = lx->s;
    size_t p = lx->pos, n = lx->n;
    char num[128];
    size_t w = 0;
    p += scan_digits(s + p, n - p, num, &w, sizeof num);
    int is_float = 0;
    if (p + 1 < n && s[p] == '.' && is_digit(s[p + 1])) {
        is_float = 1;
        num[w++] = '.';
        p++;
        p += scan_digits(s + p, n - p, num, &w, sizeof num);
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        size_t q = p + 1;
        if (q < n && (s[q] == '+' || s[q] == '-')) q++;
        if (q < n && is_digit(s[q])) {
            is_float = 1;
            if (w + 2 < sizeof num) num[w++] = 'e';
            if (s[p + 1] == '-' && w + 1 < sizeof num) num[w++] = '-';
            p = q + scan_digits(s + q, n - q, num, &w, sizeof num);
        }
    }
    num[w] = 0;
    jtok *t = push(lx, is_float ? JT_FLOAT : JT_INT);
    if (!t) return -1;
    if (is_float) {
        t->f = strtod(num, NULL);
    } else {
        errno = 0;
        unsigned long long v = strtoull(num, NULL, 10);
        if (errno || v > (unsigned long long)INT64_MAX || w >= sizeof num - 1)
            return lex_fail(lx, "integer literal too large");
        t->i = (int64_t)v;
    }
    lx->pos = p;
    return 0;
}

static int lex_op(lexer *lx) {
    const char *s = lx->s + lx->pos;
    size_t left = lx->n - lx->pos;
    static const struct {
        const char *t;
        int code;
    } two[] = {{"==", JTO_EQ}, {"!=", JTO_NE},       {"<=", JTO_LE},
               {">=", JTO_GE}, {"//", JTO_FLOORDIV}, {"**", JTO_POW}};
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
        if (left >= 2 && s[0] == two[i].t[0] && s[1] == two[i].t[1]) {
            jtok *t = push(lx, JT_OP);
            if (!t) return -1;
            t->op = two[i].code;
            lx->pos += 2;
            return 0;
        }
    if (strchr("+-/*%~[](){}<>=.:|,;", s[0]) && s[0]) {
        jtok *t = push(lx, JT_OP);
        if (!t) return -1;
        t->op = s[0];
        lx->pos++;
        return 0;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "unexpected char '%c' in a tag", s[0]);
    return lex_fail(lx, msg);
}

/* Lexes the inside of {{ }} or {% %} up to and including its end delimiter. */
static int lex_tag(lexer *lx, int is_block, int *line_starting) {
    const char *s = lx->s;
    size_t n = lx->n;
    char close = is_block ? '%' : '}';
    int depth = 0;
    for (;;) {
        size_t p = skip_space(s, lx->pos, n);
        lx->line += count_lines(s + lx->pos, p - lx->pos);
        lx->pos = p;
        if (p >= n)
            return lex_fail(lx, is_block ? "unexpected end of template, expected '%}'"
                                         : "unexpected end of template, expected '}}'");
        if (depth == 0) {
            size_t e = 0;
            char sign = 0;
            if (s[p] == '-' || (s[p] == '+' && is_block)) {
                if (p + 2 < n && s[p + 1] == close && s[p + 2] == '}') sign = s[p], e = p + 3;
            } else if (p + 1 < n && s[p] == close && s[p + 1] == '}') {
                e = p + 2;
            }
            if (e) {
                if (!push(lx, is_block ? JT_BLOCK_END : JT_VAR_END)) return -1;
                if (sign == '-') {
                    size_t q = skip_space(s, e, n);
                    lx->line += count_lines(s + e, q - e);
                    e = q;
                } else if (!sign && is_block && e < n && s[e] == '\n') {
                    e++;
                    lx->line++;
                }
                *line_starting = e > 0 && s[e - 1] == '\n';
                lx->pos = e;
                return 0;
            }
        }
        char c = s[p];
        if (is_name_start(c)) {
            size_t q = p;
            while (q < n && (is_name_start(s[q]) || is_digit(s[q]))) q++;
            jtok *t = push(lx, JT_NAME);
            if (!t || !(t->str = jx_str_new(lx->a, s + p, q - p))) return -1;
            lx->pos = q;
        } else if (is_digit(c)) {
            if (lex_number(lx)) return -1;
        } else if (c == '\'' || c == '"') {
            size_t q = p + 1;
            while (q < n && s[q] != c) q += s[q] == '\\' ? 2 : 1;
            if (q >= n) return lex_fail(lx, "unterminated string literal");
            jtok *t = push(lx, JT_STRING);
            if (!t || unescape(lx, s + p + 1, q - p - 1, &t->str)) return -1;
            lx->line += count_lines(s + p, q - p);
            lx->pos = q + 1;
        } else {
            if (lex_op(lx)) return -1;
            int op = lx->toks[lx->n_toks - 1].op;
            if (op == '(' || op == '[' || op == '{') depth++;
            if (op == ')' || op == ']' || op == '}') {
                if (depth == 0) return lex_fail(lx, "unexpected closing bracket in a tag");
                depth--;
            }
        }
    }
}

/* Finds "{%[-+]? endraw [-+]?%}" from pos; fills the content end, tag end and signs. */
static int find_endraw(lexer *lx, size_t pos, size_t *content_end, size_t *tag_end, char *sign) {
    const char *s = lx->s;
    size_t n = lx->n;
    for (size_t p = pos; p + 1 < n; p++) {
        if (s[p] != '{' || s[p + 1] != '%') continue;
        size_t q = p + 2;
        char sg = 0;
        if (q < n && (s[q] == '-' || s[q] == '+')) sg = s[q++];
        q = skip_space(s, q, n);
        if (n - q < 6 || memcmp(s + q, "endraw", 6)) continue;
        q = skip_space(s, q + 6, n);
        if (q + 1 < n && s[q] == '%' && s[q + 1] == '}') {
            q += 2;
            if (q < n && s[q] == '\n') q++;
        } else if (q + 2 < n && s[q] == '-' && s[q + 1] == '%' && s[q + 2] == '}') {
            q = skip_space(s, q + 3, n);
        } else if (q + 2 < n && s[q] == '+' && s[q + 1] == '%' && s[q + 2] == '}') {
            q += 3;
        } else {
            continue;
        }
        *content_end = p;
        *tag_end = q;
        *sign = sg;
        return 0;
    }
    return lex_fail(lx, "missing end of raw directive");
}

/* 1 if "{%[-+]? raw [-]?%}" starts at p; sets the end of the tag. */
static int raw_begin_at(lexer *lx, size_t p, size_t *end) {
    const char *s = lx->s;
    size_t n = lx->n, q = p + 2;
    if (q < n && (s[q] == '-' || s[q] == '+')) q++;
    q = skip_space(s, q, n);
    if (n - q < 3 || memcmp(s + q, "raw", 3)) return 0;
    q = skip_space(s, q + 3, n);
    if (q + 1 < n && s[q] == '%' && s[q + 1] == '}') {
        *end = q + 2;
        return 1;
    }
    if (q + 2 < n && s[q] == '-' && s[q + 1] == '%' && s[q + 2] == '}') {
        *end = skip_space(s, q + 3, n);
        return 1;
    }
    return 0;
}

/* See jinja_int.h. The source is copied (newline-normalized) into a; tokens
 * point into a and live as long as it. */
int jx_lex(const char *src, size_t len, jx_arena *a, jtok **toks, size_t *n_toks, char *err,
           size_t err_size) {
    /* Like jinja2, newlines are normalized to "\n" first (\r\n and \r). */
    char *norm = jx_alloc(a, len + 1);
    if (!norm) {
        snprintf(err, err_size, "MemoryError: template too large to tokenize");
        return -1;
    }
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[w++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            norm[w++] = src[i];
        }
    }
    lexer lx = {norm, w, 0, 1, a, NULL, 0, 0, err, err_size};
    /* keep_trailing_newline=False: one trailing newline is not part of the template. */
    if (lx.n && lx.s[lx.n - 1] == '\n') lx.n--;
    int line_starting = 1;
    const char *s = lx.s;
    while (lx.pos < lx.n) {
        size_t p = lx.pos, start = 0;
        int kind = 0;
        for (; p + 1 < lx.n; p++)
            if (s[p] == '{' && (s[p + 1] == '{' || s[p + 1] == '%' || s[p + 1] == '#')) {
                kind = s[p + 1];
                start = p;
                break;
            }
        if (!kind) {
            if (emit_text(&lx, s + lx.pos, lx.n - lx.pos, lx.line)) goto oom;
            break;
        }
        char sign =
            start + 2 < lx.n && (s[start + 2] == '-' || s[start + 2] == '+') ? s[start + 2] : 0;
        size_t raw_end = 0;
        int is_raw = kind == '%' && raw_begin_at(&lx, start, &raw_end);
        size_t keep =
            strip_before(&lx, s + lx.pos, start - lx.pos, sign, kind == '{', line_starting);
        if (emit_text(&lx, s + lx.pos, keep, lx.line)) goto oom;
        lx.line += count_lines(s + lx.pos, start - lx.pos);
        size_t body = start + 2 + (sign ? 1 : 0);
        if (is_raw) {
            size_t cend, tend;
            char esign;
            lx.line += count_lines(s + start, raw_end - start);
            if (find_endraw(&lx, raw_end, &cend, &tend, &esign)) return -1;
            size_t k = strip_before(&lx, s + raw_end, cend - raw_end, esign, 0,
                                    raw_end > 0 && s[raw_end - 1] == '\n');
            if (emit_text(&lx, s + raw_end, k, lx.line)) goto oom;
            lx.line += count_lines(s + raw_end, tend - raw_end);
            line_starting = tend > 0 && s[tend - 1] == '\n';
            lx.pos = tend;
        } else if (kind == '#') {
            size_t q = body, e = 0;
            for (; q + 1 < lx.n; q++)
                if (s[q] == '#' && s[q + 1] == '}') break;
            if (q + 1 >= lx.n) return lex_fail(&lx, "missing end of comment tag");
            e = q + 2;
            if (q > body && s[q - 1] == '-')
                e = skip_space(s, e, lx.n);
            else if (!(q > body && s[q - 1] == '+') && e < lx.n && s[e] == '\n')
                e++;
            lx.line += count_lines(s + start, e - start);
            line_starting = s[e - 1] == '\n';
            lx.pos = e;
        } else {
            jtok *t = push(&lx, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN);
            if (!t) goto oom;
            lx.pos = body;
            if (lex_tag(&lx, kind == '%', &line_starting)) return -1;
        }
    }
    if (!push(&lx, JT_EOF)) goto oom;
    *toks = lx.toks;
    *n_toks = lx.n_toks;
    return 0;
oom:
    snprintf(err, err_size, "MemoryError: template too large to tokenize");
    return -1;
}
