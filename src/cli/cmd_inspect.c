/*
 * cmd_inspect.c - `inferd inspect FILE [--json] [--full]`: prints a GGUF
 * file's header, every metadata entry (arrays past 16 elements and strings
 * past 256 bytes abbreviated unless --full), the tensor table and totals
 * (tensors, parameters, bytes by type). --json prints the same as one JSON
 * object. Reads the file with the validating reader (src/gguf), so a damaged
 * file gives the reader's message on stderr and exit status 1.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/dtype.h"
#include "base/utf8.h"
#include "cli/cli.h"
#include "gguf/gguf.h"

#define ABBREV_ELEMS 16
#define ABBREV_STR_BYTES 256

typedef struct opts {
    int json, full;
} opts;

typedef struct totals {
    uint64_t n_params, n_bytes;
    uint64_t by_type_n[DTYPE_COUNT], by_type_params[DTYPE_COUNT], by_type_bytes[DTYPE_COUNT];
} totals;

static void usage(FILE *f);
static void put_text_str(buf *b, const char *s, uint64_t n, uint64_t limit);
static void put_value(buf *b, const gguf_value *v, const opts *o);
static void put_scalar(buf *b, const gguf_value *v, int json);
static void put_shape(buf *b, const gguf_tensor *t);
static void put_float(buf *b, double d, int is_f32);
static void put_human_bytes(buf *b, uint64_t n);
static void count(const gguf_file *f, totals *t);
static void print_text(buf *b, const char *path, const gguf_file *f, const opts *o);
static void print_json(buf *b, const char *path, const gguf_file *f, const opts *o);

/* Entry point (cli.h). Exit 0 printed, 1 the file cannot be read, 2 usage. */
int cmd_inspect(int argc, char **argv) {
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"full", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts o = {0, 0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o.json = 1;
            break;
        case 'f':
            o.full = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "inferd inspect: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "inferd inspect: expected one FILE, got %d\n", argc - optind);
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    gguf_file *f = NULL;
    char err[1024];
    if (gguf_open(path, &f, err, sizeof err) != 0) {
        fprintf(stderr, "inferd inspect: %s\n", err);
        return 1;
    }
    buf b = BUF_INIT;
    if (o.json)
        print_json(&b, path, f, &o);
    else
        print_text(&b, path, f, &o);
    gguf_close(f);
    int rc = 0;
    if (b.oom) {
        fprintf(stderr, "inferd inspect: out of memory formatting '%s'\n", path);
        rc = 1;
    } else if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
        fprintf(stderr, "inferd inspect: cannot write the output\n");
        rc = 1;
    }
    buf_free(&b);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd inspect FILE [--json] [--full]\n"
            "\n"
            "Prints a GGUF file's header, metadata, tensor table and totals.\n"
            "\n"
            "  --json   one JSON object instead of text\n"
            "  --full   print every array element and whole strings (default: arrays\n"
            "           past %d elements and strings past %d bytes are abbreviated)\n"
            "  --help   this text\n"
            "\n"
            "Exit status: 0 printed, 1 the file is unreadable or malformed (message on\n"
            "stderr), 2 usage error.\n",
            ABBREV_ELEMS, ABBREV_STR_BYTES);
}

/* ---- text ---- */

static void print_text(buf *b, const char *path, const gguf_file *f, const opts *o) {
    totals t;
    count(f, &t);
    buf_printf(b, "file:         %s\n", path);
    buf_printf(b, "version:      %" PRIu32 "\n", gguf_version(f));
    buf_printf(b, "size:         %" PRIu64 " bytes (", gguf_file_size(f));
    put_human_bytes(b, gguf_file_size(f));
    buf_printf(b, ")\nalignment:    %" PRIu64 "\n", gguf_alignment(f));
    buf_printf(b, "data offset:  %" PRIu64 "\n", gguf_data_offset(f));
    buf_printf(b, "metadata:     %" PRIu64 " keys\n", gguf_n_kv(f));
    buf_printf(b, "tensors:      %" PRIu64 "\n", gguf_n_tensors(f));

    size_t w = 10;
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_str k = gguf_kv_key(f, i);
        if (k.len > w && k.len <= 48) w = (size_t)k.len;
    }
    buf_printf(b, "\nmetadata:\n");
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_value v;
        gguf_str k = gguf_kv_key(f, i);
        gguf_kv_value(f, i, &v);
        size_t before = b->len;
        buf_puts(b, "  ");
        put_text_str(b, k.data, k.len, o->full ? UINT64_MAX : ABBREV_STR_BYTES);
        size_t shown = b->len - before - 2;
        for (size_t p = shown; p < w; p++) buf_putc(b, ' ');
        if (v.type == GGUF_TYPE_ARRAY)
            buf_printf(b, "  %s[%" PRIu64 "]  ", gguf_type_name(v.elem_type), v.n);
        else
            buf_printf(b, "  %s  ", gguf_type_name(v.type));
        put_value(b, &v, o);
        buf_putc(b, '\n');
    }

    size_t nw = 4;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        if (x->name.len > nw) nw = (size_t)x->name.len;
    }
    if (gguf_n_tensors(f) == 0)
        buf_puts(b, "\ntensors: none\n");
    else
        buf_printf(b, "\ntensors:\n  %5s  %-*s  %-7s  %-24s  %12s  %12s\n", "#", (int)nw, "name",
                   "type", "shape", "bytes", "offset");
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        buf_printf(b, "  %5" PRIu64 "  ", i);
        size_t before = b->len;
        put_text_str(b, x->name.data, x->name.len, UINT64_MAX);
        for (size_t p = b->len - before; p < nw; p++) buf_putc(b, ' ');
        buf_printf(b, "  %-7s  ", dtype_get(x->type)->name);
        before = b->len;
        put_shape(b, x);
        for (size_t p = b->len - before; p < 24; p++) buf_putc(b, ' ');
        buf_printf(b, "  %12" PRIu64 "  %12" PRIu64 "\n", x->size_bytes, x->offset);
    }

    buf_printf(b, "\ntotals:\n  tensors:     %" PRIu64 "\n  parameters:  %" PRIu64 "\n",
               gguf_n_tensors(f), t.n_params);
    buf_printf(b, "  bytes:       %" PRIu64 " (", t.n_bytes);
    put_human_bytes(b, t.n_bytes);
    buf_puts(b, ")\n");
    if (gguf_n_tensors(f)) buf_puts(b, "  by type:\n");
    for (int ty = 0; ty < DTYPE_COUNT; ty++) {
        if (!t.by_type_n[ty]) continue;
        buf_printf(b,
                   "    %-7s %6" PRIu64 " tensors  %14" PRIu64 " parameters  %14" PRIu64 " bytes\n",
                   dtype_get((uint32_t)ty)->name, t.by_type_n[ty], t.by_type_params[ty],
                   t.by_type_bytes[ty]);
    }
}

/* Writes s quoted-free for text: printable ASCII and valid UTF-8 as is;
 * control bytes, backslash, double quote and invalid bytes escaped; at most
 * limit bytes, then "...(N bytes)". */
static void put_text_str(buf *b, const char *s, uint64_t n, uint64_t limit) {
    uint64_t shown = n > limit ? limit : n;
    uint64_t i = 0;
    while (i < shown) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            buf_putc(b, (char)c);
            i++;
        } else if (c == '\n') {
            buf_puts(b, "\\n"), i++;
        } else if (c == '\t') {
            buf_puts(b, "\\t"), i++;
        } else if (c == '\r') {
            buf_puts(b, "\\r"), i++;
        } else if (c == '\\' || c == '"') {
            buf_putc(b, '\\'), buf_putc(b, (char)c), i++;
        } else {
            size_t len = c >= 0x80 ? utf8_valid_prefix_len(s + i, (size_t)(shown - i)) : 0;
            if (len) {
                buf_append(b, s + i, len);
                i += len;
            } else {
                buf_printf(b, "\\x%02x", c);
                i++;
            }
        }
    }
    if (shown < n) buf_printf(b, "...(%" PRIu64 " bytes)", n);
}

/* One value, text or JSON, recursing into arrays (abbreviated unless full). */
static void put_value(buf *b, const gguf_value *v, const opts *o) {
    if (v->type == GGUF_TYPE_STRING) {
        if (o->json) {
            buf_json_str(b, v->str.data, (size_t)v->str.len);
        } else {
            buf_putc(b, '"');
            put_text_str(b, v->str.data, v->str.len, o->full ? UINT64_MAX : ABBREV_STR_BYTES);
            buf_putc(b, '"');
        }
        return;
    }
    if (v->type != GGUF_TYPE_ARRAY) {
        put_scalar(b, v, o->json);
        return;
    }
    gguf_value_iter it;
    gguf_value e;
    gguf_value_iter_init(v, &it);
    buf_putc(b, '[');
    uint64_t i = 0;
    while (gguf_value_iter_next(&it, &e)) {
        if (!o->full && i == ABBREV_ELEMS) break;
        if (i) buf_puts(b, ", ");
        put_value(b, &e, o);
        i++;
    }
    if (i < v->n && !o->json) buf_printf(b, ", ... %" PRIu64 " more", v->n - i);
    buf_putc(b, ']');
}

static void put_scalar(buf *b, const gguf_value *v, int json) {
    int64_t s;
    uint64_t u;
    double d;
    if (v->type == GGUF_TYPE_BOOL) {
        buf_puts(b, v->data[0] ? "true" : "false");
    } else if (v->type == GGUF_TYPE_FLOAT32 || v->type == GGUF_TYPE_FLOAT64) {
        gguf_value_f64(v, &d);
        if (!isfinite(d))
            buf_puts(b, json ? "null" : (isnan(d) ? "nan" : d > 0 ? "inf" : "-inf"));
        else
            put_float(b, d, v->type == GGUF_TYPE_FLOAT32);
    } else if (v->type == GGUF_TYPE_UINT64) {
        gguf_value_u64(v, &u);
        buf_printf(b, "%" PRIu64, u);
    } else if (gguf_value_i64(v, &s) == 0) {
        buf_printf(b, "%" PRId64, s);
    } else {
        buf_puts(b, "null");
    }
}

/* The shortest %g form that reads back as the same float (or double). */
static void put_float(buf *b, double d, int is_f32) {
    char tmp[40];
    for (int prec = is_f32 ? 6 : 15; prec <= (is_f32 ? 9 : 17); prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (is_f32 ? strtof(tmp, NULL) == (float)d : strtod(tmp, NULL) == d) break;
    }
    buf_puts(b, tmp);
}

static void put_shape(buf *b, const gguf_tensor *t) {
    buf_putc(b, '[');
    for (uint32_t d = 0; d < t->n_dims; d++) buf_printf(b, "%s%" PRIu64, d ? ", " : "", t->ne[d]);
    buf_putc(b, ']');
}

static void put_human_bytes(buf *b, uint64_t n) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double x = (double)n;
    int u = 0;
    while (x >= 1024 && u < 6) x /= 1024, u++;
    if (u == 0)
        buf_printf(b, "%" PRIu64 " B", n);
    else
        buf_printf(b, "%.2f %s", x, units[u]);
}

static void count(const gguf_file *f, totals *t) {
    memset(t, 0, sizeof *t);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        /* The reader bounds each tensor's element count by 2^63-1 and its
         * bytes by the file size; sums saturate rather than wrap. */
        uint64_t n = x->ne[0] * x->ne[1] * x->ne[2] * x->ne[3];
        t->n_params = t->n_params + n < t->n_params ? UINT64_MAX : t->n_params + n;
        t->n_bytes += x->size_bytes;
        t->by_type_n[x->type]++;
        t->by_type_params[x->type] =
            t->by_type_params[x->type] + n < n ? UINT64_MAX : t->by_type_params[x->type] + n;
        t->by_type_bytes[x->type] += x->size_bytes;
    }
}

/* ---- JSON ---- */

static void print_json(buf *b, const char *path, const gguf_file *f, const opts *o) {
    totals t;
    count(f, &t);
    buf_puts(b, "{\"file\": ");
    buf_json_str(b, path, strlen(path));
    buf_printf(b,
               ", \"version\": %" PRIu32 ", \"size_bytes\": %" PRIu64 ", \"alignment\": %" PRIu64
               ", \"data_offset\": %" PRIu64 ", \"n_kv\": %" PRIu64 ", \"n_tensors\": %" PRIu64
               ",\n",
               gguf_version(f), gguf_file_size(f), gguf_alignment(f), gguf_data_offset(f),
               gguf_n_kv(f), gguf_n_tensors(f));
    buf_puts(b, " \"metadata\": {");
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_value v;
        gguf_str k = gguf_kv_key(f, i);
        gguf_kv_value(f, i, &v);
        buf_puts(b, i ? ",\n  " : "\n  ");
        buf_json_str(b, k.data, (size_t)k.len);
        buf_printf(b, ": {\"type\": \"%s\"", gguf_type_name(v.type));
        if (v.type == GGUF_TYPE_ARRAY)
            buf_printf(b, ", \"elem_type\": \"%s\", \"n\": %" PRIu64 ", \"abbreviated\": %s",
                       gguf_type_name(v.elem_type), v.n,
                       !o->full && v.n > ABBREV_ELEMS ? "true" : "false");
        buf_puts(b, ", \"value\": ");
        put_value(b, &v, o);
        buf_putc(b, '}');
    }
    buf_puts(b, "},\n \"tensors\": [");
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        buf_puts(b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
        buf_json_str(b, x->name.data, (size_t)x->name.len);
        buf_printf(b, ", \"type\": \"%s\", \"shape\": ", dtype_get(x->type)->name);
        put_shape(b, x);
        buf_printf(b, ", \"size_bytes\": %" PRIu64 ", \"offset\": %" PRIu64 "}", x->size_bytes,
                   x->offset);
    }
    buf_printf(b,
               "],\n \"totals\": {\"n_tensors\": %" PRIu64 ", \"n_params\": %" PRIu64
               ", \"size_bytes\": %" PRIu64 ", \"by_type\": {",
               gguf_n_tensors(f), t.n_params, t.n_bytes);
    int first = 1;
    for (int ty = 0; ty < DTYPE_COUNT; ty++) {
        if (!t.by_type_n[ty]) continue;
        buf_printf(b,
                   "%s\"%s\": {\"n_tensors\": %" PRIu64 ", \"n_params\": %" PRIu64
                   ", \"size_bytes\": %" PRIu64 "}",
                   first ? "" : ", ", dtype_get((uint32_t)ty)->name, t.by_type_n[ty],
                   t.by_type_params[ty], t.by_type_bytes[ty]);
        first = 0;
    }
    buf_puts(b, "}}}\n");
}
