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
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "base/buf.h"
#include "base/dtype.h"
#include "base/util.h"
#include "cli/cli.h"
#include "inferd.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels/threadpool.h"
#include "gguf/gguf.h"
#include "model/model.h"

#define MAX_REPS 100
#define BW_BYTES ((size_t)1 << 30)
#define BW_REPS 5

typedef struct opts {
    const char *model, *matmul;
    int n_prompt, n_gen, reps, n_threads, json, repack, ubatch;
    int64_t n_in, n_out;
} opts;

typedef struct stats {
    double median, min, max;
} stats;

static void usage(FILE *f);
static int parse_int(const char *s, const char *flag, long lo, long hi, long *out);
static stats stats_of(const double *v, int n);
static int cmp_double(const void *a, const void *b);
static double cpu_seconds(void);
static int bench_matmul(const opts *o);
static int bench_model(const opts *o);
static double peak_rss_bytes(void);
static double measure_bandwidth(int n_threads);
static int n_type_fallback(const char *type) { return type[0] == '?'; }

/* Entry point (cli.h). Exit 0 measured, 1 runtime error, 2 usage. */
int cmd_bench(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},   {"matmul", required_argument, NULL, 'M'},
        {"threads", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"n-in", required_argument, NULL, 'I'},    {"n-out", required_argument, NULL, 'O'},
        {"no-repack", no_argument, NULL, 'R'},     {"ubatch", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.n_prompt = 512, .n_gen = 128, .reps = 5, .repack = 1, .n_in = 2048, .n_out = 2048};
    const char *env = getenv("INFERD_THREADS");
    long v;
    if (env && *env && parse_int(env, "INFERD_THREADS", 1, 1024, &v) == 0) o.n_threads = (int)v;
    env = getenv("INFERD_UBATCH");
    if (env && *env && parse_int(env, "INFERD_UBATCH", 1, 1 << 20, &v) == 0) o.ubatch = (int)v;
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
        case 'u': if (parse_int(optarg, "--ubatch", 1, 1 << 20, &v)) return 2; o.ubatch = (int)v; break;
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
    return bench_model(&o);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd bench --model FILE [-p 512] [-n 128] [-r 5] [--threads N] [--ubatch N]\n"
            "                    [--json]\n"
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
            "  --ubatch N       tokens per pass through the layers (default 128; env\n"
            "                   INFERD_UBATCH): a longer prompt runs in passes of N\n"
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

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    size_t wbytes = (mat_bytes * (size_t)n_mats + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    uint8_t *wbuf = mmap(NULL, wbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (wbuf == MAP_FAILED) wbuf = NULL;
    else if (getenv("INFERD_BENCH_HUGE")) madvise(wbuf, wbytes, MADV_HUGEPAGE);
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
    /* Wall-clock rates, and with one thread also rates per CPU second
     * (steadier on a machine shared with other work). */
    double gemv[MAX_REPS], gemm[MAX_REPS], gemv_cpu[MAX_REPS], gemm_cpu[MAX_REPS];
    for (int r = 0; r < o->reps; r++) {
        int calls = 4 * n_mats;
        double t0 = time_now_s(), c0 = cpu_seconds();
        for (int k = 0; k < calls; k++) mm_forward(tp, &w[k % n_mats], x, 1, y, scratch);
        gemv[r] = (double)mat_bytes * calls / (time_now_s() - t0) / 1e9;
        gemv_cpu[r] = (double)mat_bytes * calls / (cpu_seconds() - c0) / 1e9;
        t0 = time_now_s();
        c0 = cpu_seconds();
        mm_forward(tp, &w[r % n_mats], x, p, y, scratch);
        gemm[r] = 2.0 * (double)o->n_in * (double)o->n_out * (double)p / (time_now_s() - t0) / 1e9;
        gemm_cpu[r] = 2.0 * (double)o->n_in * (double)o->n_out * (double)p / (cpu_seconds() - c0) / 1e9;
    }
    stats sv = stats_of(gemv, o->reps), sm = stats_of(gemm, o->reps);
    stats svc = stats_of(gemv_cpu, o->reps), smc = stats_of(gemm_cpu, o->reps);
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
    if (!o->json && o->n_threads == 1)
        printf("  per CPU second: GEMV %.2f GB/s, GEMM %.1f GOP/s\n", svc.median, smc.median);
    rc = 0;
done:
    if (w)
        for (int m = 0; m < n_mats; m++) mm_weight_release(&w[m]);
    free(w);
    free(scratch);
    free(x);
    free(y);
    free(row);
    if (wbuf) munmap(wbuf, wbytes);
    threadpool_free(tp);
    return rc;
}

/* ---- --model ---- */

typedef struct run_result {
    double pp[MAX_REPS], tg[MAX_REPS];
    double pp_cpu[MAX_REPS], tg_cpu[MAX_REPS]; /* tokens per CPU second of the process */
} run_result;

/* Runs n tokens of sequence 0 starting at position pos0 through the model,
 * as one batch (prefill) or one token per forward (decode). */
static int run_tokens(model *m, kv_pool *kv, const uint32_t *blocks, uint32_t n_blocks, int32_t *tok,
                      int32_t *pos, int32_t *seq, uint32_t n, int32_t pos0, int one_by_one, float *logits,
                      char *err, size_t err_size) {
    model_seq sq = {blocks, n_blocks};
    for (uint32_t i = 0; i < n; i++) {
        pos[i] = pos0 + (int32_t)i;
        seq[i] = 0;
    }
    if (!one_by_one) {
        model_batch b = {n, tok, pos, seq, NULL, 1, &sq};
        return model_forward(m, kv, &b, logits, err, err_size);
    }
    for (uint32_t i = 0; i < n; i++) {
        model_batch b = {1, tok + i, pos + i, seq + i, NULL, 1, &sq};
        int rc = model_forward(m, kv, &b, logits, err, err_size);
        if (rc) return rc;
    }
    return 0;
}

static double peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = strtod(line + 6, NULL);
    if (f) fclose(f);
    if (kb == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = (double)ru.ru_maxrss;
    }
    return kb * 1024.0;
}

static double measure_bandwidth(int n_threads) {
    threadpool *tp = threadpool_new(n_threads);
    if (!tp) return 0;
    double bw = cpu_read_bandwidth(tp, BW_BYTES, BW_REPS);
    threadpool_free(tp);
    return bw;
}

static const char *file_type_name(uint32_t ft) {
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 25: return "IQ4_NL";
    case 30: return "IQ4_XS";
    case 32: return "BF16";
    default: return NULL;
    }
}

static int bench_model(const opts *o) {
    char err[1024];
    int rc = 1;
    model *m = NULL;
    kv_pool *kv = NULL;
    uint32_t *blocks = NULL;
    int32_t *tok = NULL, *pos = NULL, *seq = NULL;
    float *logits = NULL;
    run_result res;
    struct stat st;
    if (stat(o->model, &st)) {
        fprintf(stderr, "inferd bench: cannot stat '%s'\n", o->model);
        return 1;
    }
    /* The type as llama-bench names it, from general.file_type. */
    char type[32] = "?";
    uint64_t weight_bytes = (uint64_t)st.st_size;
    {
        gguf_file *f = NULL;
        if (gguf_open(o->model, &f, err, sizeof err)) {
            fprintf(stderr, "inferd bench: %s\n", err);
            return 1;
        }
        uint32_t ft;
        const char *nm = gguf_get_u32(f, "general.file_type", &ft) == 0 ? file_type_name(ft) : NULL;
        if (nm) snprintf(type, sizeof type, "%s", nm);
        weight_bytes = gguf_file_size(f) - gguf_data_offset(f);
        gguf_close(f);
    }
    uint32_t n_p = (uint32_t)o->n_prompt, n_g = (uint32_t)o->n_gen, n_ctx = n_p > n_g ? n_p : n_g;
    model_params mp = model_default_params();
    mp.n_threads = o->n_threads;
    mp.max_batch = n_p > 0 ? n_p : 1;
    mp.max_ubatch = (uint32_t)o->ubatch;
    double t_load = time_now_s();
    if (model_load(o->model, &mp, &m, err, sizeof err)) {
        fprintf(stderr, "inferd bench: %s\n", err);
        return 1;
    }
    t_load = time_now_s() - t_load;
    const model_hparams *hp = model_get_hparams(m);
    if (n_type_fallback(type)) snprintf(type, sizeof type, "%s", dtype_get(hp->weight_type)->name);
    const uint32_t block_size = 16;
    uint32_t n_blocks = (n_ctx + block_size - 1) / block_size + 1;
    if (kv_pool_new(m, n_blocks, block_size, DTYPE_F16, &kv, err, sizeof err)) {
        fprintf(stderr, "inferd bench: %s\n", err);
        goto done;
    }
    size_t kv_bytes = kv_pool_bytes_per_block(m, block_size, DTYPE_F16) * n_blocks;
    uint32_t n_buf = n_ctx > 0 ? n_ctx : 1;
    blocks = malloc(sizeof *blocks * n_blocks);
    tok = malloc(sizeof *tok * n_buf);
    pos = malloc(sizeof *pos * n_buf);
    seq = malloc(sizeof *seq * n_buf);
    logits = malloc(sizeof *logits * hp->n_vocab);
    if (!blocks || !tok || !pos || !seq || !logits) {
        fprintf(stderr, "inferd bench: out of memory\n");
        goto done;
    }
    for (uint32_t i = 0; i < n_blocks; i++) blocks[i] = i;
    uint64_t rs = 1234;
    for (uint32_t i = 0; i < n_buf; i++) tok[i] = (int32_t)(splitmix64(&rs) % hp->n_vocab);
    /* Warm-up (pages in the weights, first-touch of scratch), as llama-bench. */
    if (run_tokens(m, kv, blocks, n_blocks, tok, pos, seq, n_p ? (n_p < 32 ? n_p : 32) : 1, 0, 0, logits, err,
                   sizeof err) ||
        run_tokens(m, kv, blocks, n_blocks, tok, pos, seq, 2, 0, 1, logits, err, sizeof err)) {
        fprintf(stderr, "inferd bench: %s\n", err);
        goto done;
    }
    for (int r = 0; r < o->reps; r++) {
        double t0 = time_now_s(), c0 = cpu_seconds();
        if (n_p && run_tokens(m, kv, blocks, n_blocks, tok, pos, seq, n_p, 0, 0, logits, err, sizeof err)) {
            fprintf(stderr, "inferd bench: %s\n", err);
            goto done;
        }
        res.pp[r] = n_p ? n_p / (time_now_s() - t0) : 0;
        res.pp_cpu[r] = n_p ? n_p / (cpu_seconds() - c0) : 0;
        t0 = time_now_s();
        c0 = cpu_seconds();
        if (n_g && run_tokens(m, kv, blocks, n_blocks, tok, pos, seq, n_g, 0, 1, logits, err, sizeof err)) {
            fprintf(stderr, "inferd bench: %s\n", err);
            goto done;
        }
        res.tg[r] = n_g ? n_g / (time_now_s() - t0) : 0;
        res.tg_cpu[r] = n_g ? n_g / (cpu_seconds() - c0) : 0;
    }
    stats sp = stats_of(res.pp, o->reps), sg = stats_of(res.tg, o->reps);
    stats spc = stats_of(res.pp_cpu, o->reps), sgc = stats_of(res.tg_cpu, o->reps);
    const size_t scratch_bytes = model_scratch_bytes(m);
    /* Peak RSS before the bandwidth probe's buffer; the probe runs with the
     * model freed, on as many threads. */
    double rss = peak_rss_bytes();
    kv_pool_free(kv);
    kv = NULL;
    model_free(m);
    m = NULL;
    double bw = measure_bandwidth(o->n_threads);
    double bw_frac = bw > 0 ? sg.median * (double)weight_bytes / bw : 0;
    const char *base = strrchr(o->model, '/') ? strrchr(o->model, '/') + 1 : o->model;
    buf b = BUF_INIT;
    if (o->json) {
        buf_printf(&b, "{\"model\":");
        buf_json_str(&b, base, strlen(base));
        buf_printf(&b,
                   ",\"type\":\"%s\",\"size_bytes\":%lld,\"weight_bytes\":%llu,\"threads\":%d,\"level\":\"%s\","
                   "\"n_prompt\":%u,\"n_gen\":%u,\"reps\":%d,\"pp_tokens_per_s\":%.3f,\"tg_tokens_per_s\":%.3f,"
                   "\"pp_min\":%.3f,\"pp_max\":%.3f,\"tg_min\":%.3f,\"tg_max\":%.3f,"
                   "\"read_bandwidth_bytes_per_s\":%.0f,\"tg_bandwidth_fraction\":%.4f,"
                   "\"pp_cpu_tokens_per_s\":%.3f,\"tg_cpu_tokens_per_s\":%.3f,"
                   "\"max_rss_bytes\":%.0f,\"kv_bytes\":%zu,\"scratch_bytes\":%zu,\"load_s\":%.3f,"
                   "\"pp_runs\":[",
                   type, (long long)st.st_size, (unsigned long long)weight_bytes, o->n_threads,
                   cpu_level_name(cpu_level()), n_p, n_g, o->reps, sp.median, sg.median, sp.min, sp.max, sg.min,
                   sg.max, bw, bw_frac, spc.median, sgc.median, rss, kv_bytes, scratch_bytes, t_load);
        for (int r = 0; r < o->reps; r++) buf_printf(&b, "%s%.3f", r ? "," : "", res.pp[r]);
        buf_printf(&b, "],\"tg_runs\":[");
        for (int r = 0; r < o->reps; r++) buf_printf(&b, "%s%.3f", r ? "," : "", res.tg[r]);
        buf_printf(&b, "]}\n");
    } else {
        buf_printf(&b, "model %s (%s, %.1f MiB), %d threads, %s kernels\n", base, type,
                   (double)st.st_size / (1 << 20), o->n_threads, cpu_level_name(cpu_level()));
        if (n_p)
            buf_printf(&b, "  pp%-5u %9.2f t/s  (min %.2f, max %.2f, %d runs)\n", n_p, sp.median, sp.min, sp.max,
                       o->reps);
        if (n_g)
            buf_printf(&b, "  tg%-5u %9.2f t/s  (min %.2f, max %.2f, %d runs)\n", n_g, sg.median, sg.min, sg.max,
                       o->reps);
        if (o->n_threads == 1)
            buf_printf(&b, "  per CPU second: pp %.2f t/s, tg %.2f t/s\n", spc.median, sgc.median);
        buf_printf(&b, "  read bandwidth %.1f GB/s (%d threads); decode moves %.1f GB/s = %.0f%%\n", bw / 1e9,
                   o->n_threads,
                   sg.median * (double)weight_bytes / 1e9, 100 * bw_frac);
        buf_printf(&b, "  peak RSS %.1f MiB (file %.1f MiB + KV %.1f MiB = %.3fx; weights %.1f MiB, scratch "
                   "%.1f MiB)\n", rss / (1 << 20), (double)st.st_size / (1 << 20), (double)kv_bytes / (1 << 20),
                   rss / ((double)st.st_size + (double)kv_bytes), (double)weight_bytes / (1 << 20),
                   (double)scratch_bytes / (1 << 20));
    }
    fputs(b.data ? b.data : "", stdout);
    buf_free(&b);
    rc = 0;
done:
    free(blocks);
    free(tok);
    free(pos);
    free(seq);
    free(logits);
    kv_pool_free(kv);
    model_free(m);
    return rc;
}
