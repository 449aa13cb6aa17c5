/*
 * cmd_bench.c - `inferd bench`: speed figures like llama-bench.
 *   --model FILE: prefill (pp, -p tokens in one batch) and decode (tg, -n
 *     tokens one at a time) tokens/s over -r repetitions (median, min, max),
 *     the file size, and the share of the memory read bandwidth (measured in
 *     the same run) that decode reaches: tg * weight bytes / bandwidth.
 *   --matmul TYPE: one weight matrix (--n-in x --n-out, random) through
 *     mm_forward: GEMV GB/s and GEMM (-p rows) GOP/s; for kernel work.
 * --json prints one object instead of the table.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/dtype.h"
#include "base/util.h"
#include "cli/cli.h"
#include "inferd.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels/threadpool.h"

#define MAX_REPS 100
#define BW_BYTES ((size_t)1 << 30)
#define BW_REPS 5

typedef struct opts {
    const char *model, *matmul;
    int n_prompt, n_gen, reps, n_threads, json, repack;
    int64_t n_in, n_out;
} opts;

typedef struct stats {
    double median, min, max;
} stats;

static void usage(FILE *f);
static int parse_int(const char *s, const char *flag, long lo, long hi, long *out);
static stats stats_of(const double *v, int n);
static int cmp_double(const void *a, const void *b);
static int bench_matmul(const opts *o);
int bench_model(const opts *o, double bw);

/* Entry point (cli.h). Exit 0 measured, 1 runtime error, 2 usage. */
int cmd_bench(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},   {"matmul", required_argument, NULL, 'M'},
        {"threads", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"n-in", required_argument, NULL, 'I'},    {"n-out", required_argument, NULL, 'O'},
        {"no-repack", no_argument, NULL, 'R'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.n_prompt = 512, .n_gen = 128, .reps = 5, .repack = 1, .n_in = 2048, .n_out = 2048};
    const char *env = getenv("INFERD_THREADS");
    long v;
    if (env && *env && parse_int(env, "INFERD_THREADS", 1, 1024, &v) == 0) o.n_threads = (int)v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:p:n:r:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'M': o.matmul = optarg; break;
        case 'p': if (parse_int(optarg, "-p", 0, 1 << 20, &v)) return 2; o.n_prompt = (int)v; break;
        case 'n': if (parse_int(optarg, "-n", 0, 1 << 20, &v)) return 2; o.n_gen = (int)v; break;
        case 'r': if (parse_int(optarg, "-r", 1, MAX_REPS, &v)) return 2; o.reps = (int)v; break;
        case 't': if (parse_int(optarg, "--threads", 1, 1024, &v)) return 2; o.n_threads = (int)v; break;
        case 'I': if (parse_int(optarg, "--n-in", 1, 1 << 20, &v)) return 2; o.n_in = v; break;
        case 'O': if (parse_int(optarg, "--n-out", 1, 1 << 20, &v)) return 2; o.n_out = v; break;
        case 'R': o.repack = 0; break;
        case 'j': o.json = 1; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "inferd bench: unknown option or missing value '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || (!o.model == !o.matmul)) {
        fprintf(stderr, "inferd bench: give exactly one of --model FILE or --matmul TYPE\n");
        usage(stderr);
        return 2;
    }
    if (o.n_threads <= 0) o.n_threads = cpu_physical_cores();
    if (o.matmul) return bench_matmul(&o);
    threadpool *tp = threadpool_new(o.n_threads);
    if (!tp) {
        fprintf(stderr, "inferd bench: cannot start %d threads\n", o.n_threads);
        return 1;
    }
    double bw = cpu_read_bandwidth(tp, BW_BYTES, BW_REPS);
    threadpool_free(tp);
    return bench_model(&o, bw);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd bench --model FILE [-p 512] [-n 128] [-r 5] [--threads N] [--json]\n"
            "       inferd bench --matmul TYPE [--n-in 2048] [--n-out 2048] [-p 512] [-r 5]\n"
            "                    [--threads N] [--no-repack] [--json]\n\n"
            "  --model FILE     prefill -p tokens (pp) and decode -n tokens (tg), -r times;\n"
            "                   prints medians, spread, file size and the share of the\n"
            "                   measured memory read bandwidth that decode reaches\n"
            "  --matmul TYPE    one random TYPE matrix through mm_forward: GEMV GB/s,\n"
            "                   GEMM (-p rows) GOP/s\n"
            "  -p N             prompt tokens / GEMM rows (default 512)\n"
            "  -n N             generated tokens (default 128)\n"
            "  -r N             repetitions (default 5)\n"
            "  --threads N      kernel threads (default: physical cores; env INFERD_THREADS)\n"
            "  --no-repack      keep matmul weights in the file layout\n"
            "  --json           one JSON object on stdout\n"
            "Kernel level: env INFERD_CPU=scalar|avx2|avx512.\n");
}

static int parse_int(const char *s, const char *flag, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "inferd bench: %s wants an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static stats stats_of(const double *v, int n) {
    double s[MAX_REPS];
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof s[0], cmp_double);
    stats r = {n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]), s[0], s[n - 1]};
    return r;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- --matmul ---- */

static int bench_matmul(const opts *o) {
    enum dtype t;
    if (dtype_from_name(o->matmul, &t) || !quant_supported(t)) {
        fprintf(stderr, "inferd bench: --matmul '%s' is not a supported weight type\n", o->matmul);
        return 2;
    }
    uint64_t rb;
    if (dtype_row_bytes(t, (uint64_t)o->n_in, &rb)) {
        fprintf(stderr, "inferd bench: --n-in %lld is not a multiple of the %s block size\n",
                (long long)o->n_in, o->matmul);
        return 2;
    }
    size_t mat_bytes = (size_t)rb * (size_t)o->n_out;
    /* Enough matrices to overflow the caches, as a model's layers do. */
    int n_mats = (int)((256u << 20) / mat_bytes) + 1;
    if (n_mats > 64) n_mats = 64;
    int rc = 1;
    threadpool *tp = threadpool_new(o->n_threads);
    uint8_t *wbuf = aligned_zalloc(mat_bytes * (size_t)n_mats, 4096);
    float *row = malloc(sizeof(float) * (size_t)o->n_in);
    mm_weight *w = calloc((size_t)n_mats, sizeof *w);
    int64_t p = o->n_prompt > 0 ? o->n_prompt : 1;
    float *x = malloc(sizeof(float) * (size_t)(o->n_in * p));
    float *y = malloc(sizeof(float) * (size_t)(o->n_out * p));
    void *scratch = NULL;
    char err[256];
    if (!tp || !wbuf || !row || !w || !x || !y) {
        fprintf(stderr, "inferd bench: out of memory for %d matrices of %zu bytes\n", n_mats, mat_bytes);
        goto done;
    }
    uint64_t seed = 42;
    for (int64_t i = 0; i < o->n_in; i++) row[i] = (float)(0.02 * (rng_uniform(&seed) * 2 - 1));
    for (int64_t r = 0; r < o->n_out; r++) quantize_rows(t, row, wbuf + (size_t)r * rb, 1, o->n_in);
    for (int m = 1; m < n_mats; m++) memcpy(wbuf + (size_t)m * mat_bytes, wbuf, mat_bytes);
    for (int64_t i = 0; i < o->n_in * p; i++) x[i] = (float)(rng_uniform(&seed) * 2 - 1);
    for (int m = 0; m < n_mats; m++) {
        if (mm_weight_init(&w[m], t, o->n_in, o->n_out, wbuf + (size_t)m * mat_bytes, err, sizeof err) ||
            (o->repack && mm_weight_repack(&w[m], err, sizeof err))) {
            fprintf(stderr, "inferd bench: %s\n", err);
            goto done;
        }
    }
    scratch = malloc(mm_scratch_bytes(&w[0], p));
    if (!scratch) goto done;
    double gemv[MAX_REPS], gemm[MAX_REPS];
    for (int r = 0; r < o->reps; r++) {
        int calls = 4 * n_mats;
        double t0 = time_now_s();
        for (int k = 0; k < calls; k++) mm_forward(tp, &w[k % n_mats], x, 1, y, scratch);
        gemv[r] = (double)mat_bytes * calls / (time_now_s() - t0) / 1e9;
        t0 = time_now_s();
        mm_forward(tp, &w[r % n_mats], x, p, y, scratch);
        gemm[r] = 2.0 * (double)o->n_in * (double)o->n_out * (double)p / (time_now_s() - t0) / 1e9;
    }
    stats sv = stats_of(gemv, o->reps), sm = stats_of(gemm, o->reps);
    if (o->json)
        printf("{\"type\":\"%s\",\"n_in\":%lld,\"n_out\":%lld,\"rows\":%lld,\"threads\":%d,\"level\":\"%s\","
               "\"layout\":\"%s\",\"gemv_gb_per_s\":%.2f,\"gemm_gop_per_s\":%.2f}\n",
               dtype_get(t)->name, (long long)o->n_in, (long long)o->n_out, (long long)p, o->n_threads,
               cpu_level_name(cpu_level()), w[0].layout == MM_LAYOUT_X16 ? "x16" : "plain", sv.median, sm.median);
    else
        printf("%s %lldx%lld, %d threads, %s, %s layout: GEMV %.2f GB/s (%.2f-%.2f), GEMM %lld rows %.1f GOP/s "
               "(%.1f-%.1f)\n",
               dtype_get(t)->name, (long long)o->n_out, (long long)o->n_in, o->n_threads,
               cpu_level_name(cpu_level()), w[0].layout == MM_LAYOUT_X16 ? "x16" : "plain", sv.median, sv.min,
               sv.max, (long long)p, sm.median, sm.min, sm.max);
    rc = 0;
done:
    if (w)
        for (int m = 0; m < n_mats; m++) mm_weight_release(&w[m]);
    free(w);
    free(scratch);
    free(x);
    free(y);
    free(row);
    aligned_free(wbuf);
    threadpool_free(tp);
    return rc;
}

int bench_model(const opts *o, double bw) {
    (void)o;
    (void)bw;
    fprintf(stderr, "inferd bench: --model needs the forward pass\n");
    return 1;
}
