/*
 * cpu.c - CPUID feature detection and the dispatch level (see cpu.h). AVX
 * state must also be enabled by the OS (XGETBV: XMM|YMM for AVX2, plus the
 * opmask and ZMM state for AVX-512), else the instructions fault.
 */
#include "kernels/cpu.h"

#include <cpuid.h>
#include <emmintrin.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "inferd.h"

static cpu_features features;
static _Atomic int features_done;
static _Atomic int level_now = -1;

typedef struct bw_job {
    const uint8_t *buf;
    size_t bytes;
    uint64_t sink[64];
} bw_job;

static void detect(cpu_features *f);
static void read_share(void *arg, int ith, int nth);
static int cmp_double(const void *a, const void *b);
static uint64_t xgetbv0(void);

const cpu_features *cpu_get_features(void) {
    if (!atomic_load_explicit(&features_done, memory_order_acquire)) {
        cpu_features f;
        detect(&f);
        features = f; /* every racing thread writes the same values */
        atomic_store_explicit(&features_done, 1, memory_order_release);
    }
    return &features;
}

enum cpu_level cpu_best_level(void) {
    const cpu_features *f = cpu_get_features();
    int avx2 = f->avx2 && f->fma && f->f16c;
    if (avx2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512vnni)
        return CPU_AVX512;
    return avx2 ? CPU_AVX2 : CPU_SCALAR;
}

enum cpu_level cpu_level(void) {
    int l = atomic_load_explicit(&level_now, memory_order_acquire);
    if (l >= 0) return (enum cpu_level)l;
    enum cpu_level best = cpu_best_level(), want = best;
    const char *s = getenv("INFERD_CPU");
    if (s && *s) {
        if (!strcmp(s, "scalar")) want = CPU_SCALAR;
        else if (!strcmp(s, "avx2")) want = CPU_AVX2;
        else if (!strcmp(s, "avx512")) want = CPU_AVX512;
        else fprintf(stderr, "inferd: INFERD_CPU='%s' is not scalar, avx2 or avx512; using %s\n", s,
                     cpu_level_name(best));
        if (want > best) {
            fprintf(stderr, "inferd: INFERD_CPU=%s but this CPU supports at most %s\n", s,
                    cpu_level_name(best));
            want = best;
        }
    }
    atomic_store_explicit(&level_now, (int)want, memory_order_release);
    return want;
}

int cpu_set_level(enum cpu_level level) {
    if (level < CPU_SCALAR || level >= CPU_LEVEL_COUNT || level > cpu_best_level())
        return INFERD_EUNSUPPORTED;
    atomic_store(&level_now, (int)level);
    return 0;
}

const char *cpu_level_name(enum cpu_level level) {
    switch (level) {
    case CPU_SCALAR: return "scalar";
    case CPU_AVX2: return "avx2";
    case CPU_AVX512: return "avx512";
    default: return "?";
    }
}

double cpu_read_bandwidth(threadpool *tp, size_t bytes, int reps) {
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    bytes &= ~(size_t)4095;
    bw_job j = {0};
    uint8_t *buf = aligned_zalloc(bytes, 4096);
    if (!buf || !bytes) return 0;
    j.buf = buf;
    j.bytes = bytes;
    double t[64];
    for (int r = 0; r < reps; r++) {
        double t0 = time_now_s();
        threadpool_run(tp, read_share, &j);
        t[r] = time_now_s() - t0;
    }
    aligned_free(buf);
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return (double)bytes / t[reps / 2];
}

static void read_share(void *arg, int ith, int nth) {
    bw_job *j = arg;
    size_t per = (j->bytes / (size_t)nth) & ~(size_t)255;
    const uint8_t *p = j->buf + per * (size_t)ith, *end = ith == nth - 1 ? j->buf + j->bytes : p + per;
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (; p + 256 <= end; p += 256) {
        for (int k = 0; k < 256; k += 64) {
            a0 = _mm_xor_si128(a0, _mm_load_si128((const __m128i *)(p + k)));
            a1 = _mm_xor_si128(a1, _mm_load_si128((const __m128i *)(p + k + 16)));
            a2 = _mm_xor_si128(a2, _mm_load_si128((const __m128i *)(p + k + 32)));
            a3 = _mm_xor_si128(a3, _mm_load_si128((const __m128i *)(p + k + 48)));
        }
    }
    __m128i a = _mm_xor_si128(_mm_xor_si128(a0, a1), _mm_xor_si128(a2, a3));
    j->sink[ith & 63] = (uint64_t)_mm_cvtsi128_si64(a); /* keeps the loads */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void detect(cpu_features *f) {
    memset(f, 0, sizeof *f);
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return; /* XMM and YMM state */
    int zmm_ok = (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    f->fma = fma;
    f->f16c = f16c;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = (b >> 5) & 1;
    if (zmm_ok) {
        f->avx512f = (b >> 16) & 1;
        f->avx512dq = (b >> 17) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        f->avx512vnni = (c >> 11) & 1;
        __cpuid_count(7, 1, a, b, c, d);
        f->avx512bf16 = (a >> 5) & 1;
    }
}

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
