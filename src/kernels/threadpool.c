/*
 * threadpool.c - the kernel worker pool (see threadpool.h). Start and finish
 * are two futex words: `gen` counts runs (workers wait for it to change) and
 * `n_done` counts workers finished with the current run (the caller waits for
 * it to reach n_threads-1). Each side spins briefly before sleeping; the
 * sleeper announces itself in a counter that the other side checks after its
 * own store, both sequentially consistent, so a wake-up is never lost.
 * Past a short pure spin the waiter yields its core while spinning on.
 * A worker joins a run through the `join` word before touching the job; a
 * dynamic run is closed by the caller once its own share is done, so a worker
 * still descheduled then (the machine has more runnable threads than cores)
 * skips the run instead of holding the caller up.
 */
#include "kernels/threadpool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"

/* How long a waiter spins past its first 256 pauses (a few microseconds)
 * before sleeping on the futex. Kernel runs of a forward pass follow each
 * other within microseconds, so the pure spin catches them; a longer spin
 * only pays when the cores are otherwise idle and costs the most when they
 * are not: with one competing busy process on 2 cores, bench-110m Q4_0
 * decode on 2 threads ran at 155-171 t/s with a 200 us spin and 237-277 t/s
 * with none (docs/performance.md). INFERD_SPIN_US overrides it. */
#define DEFAULT_SPIN_NS 0
#define YIELD_AFTER_NS 20000
#define JOIN_CLOSED 0x80000000u

struct worker {
    threadpool *tp;
    int ith;
};

struct threadpool {
    int n_threads;
    uint64_t spin_ns;
    pthread_t *threads; /* (n_threads - 1) */
    struct worker *workers;
    int n_started;
    threadpool_fn fn;              /* written before gen is bumped */
    void *arg;
    _Atomic uint32_t gen;          /* futex word: bumped once per run */
    _Atomic uint32_t n_done;       /* futex word: workers done with this run */
    _Atomic uint32_t n_sleeping;   /* workers asleep on gen */
    _Atomic uint64_t join;         /* (run gen << 32) | JOIN_CLOSED | workers joined */
    _Atomic uint32_t caller_sleeping;
    _Atomic int stop;
};

static void *worker_main(void *p);
static void futex_wait(_Atomic uint32_t *addr, uint32_t val);
static void futex_wake(_Atomic uint32_t *addr, int n);
static void cpu_relax(void);
static int spin_step(const threadpool *tp, uint32_t i, uint64_t *t0);

threadpool *threadpool_new(int n_threads) {
    if (n_threads <= 0) n_threads = cpu_physical_cores();
    threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n_threads = n_threads;
    tp->spin_ns = DEFAULT_SPIN_NS;
    const char *s = getenv("INFERD_SPIN_US");
    if (s && *s) tp->spin_ns = (uint64_t)strtoull(s, NULL, 10) * 1000;
    if (n_threads > 1) {
        tp->threads = calloc((size_t)n_threads - 1, sizeof *tp->threads);
        tp->workers = calloc((size_t)n_threads - 1, sizeof *tp->workers);
        if (!tp->threads || !tp->workers) goto fail;
        for (int i = 0; i < n_threads - 1; i++) {
            tp->workers[i].tp = tp;
            tp->workers[i].ith = i + 1;
            if (pthread_create(&tp->threads[i], NULL, worker_main, &tp->workers[i])) goto fail;
            tp->n_started++;
        }
    }
    return tp;
fail:
    threadpool_free(tp);
    return NULL;
}

void threadpool_free(threadpool *tp) {
    if (!tp) return;
    atomic_store(&tp->stop, 1);
    atomic_fetch_add(&tp->gen, 1);
    futex_wake(&tp->gen, INT_MAX);
    for (int i = 0; i < tp->n_started; i++) pthread_join(tp->threads[i], NULL);
    free(tp->threads);
    free(tp->workers);
    free(tp);
}

int threadpool_n_threads(const threadpool *tp) { return tp ? tp->n_threads : 1; }

static void run(threadpool *tp, threadpool_fn fn, void *arg, int dynamic) {
    if (!tp || tp->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    atomic_store_explicit(&tp->n_done, 0, memory_order_relaxed);
    tp->fn = fn;
    tp->arg = arg;
    uint32_t g = atomic_load_explicit(&tp->gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&tp->join, (uint64_t)g << 32, memory_order_relaxed);
    atomic_fetch_add(&tp->gen, 1); /* seq_cst: publishes fn/arg, n_done and join */
    if (atomic_load(&tp->n_sleeping)) futex_wake(&tp->gen, INT_MAX);

    fn(arg, 0, tp->n_threads);

    /* Dynamic runs wait only for the workers that joined before closing. */
    uint32_t want = (uint32_t)tp->n_threads - 1;
    if (dynamic) want = (uint32_t)(atomic_fetch_or(&tp->join, JOIN_CLOSED) & (JOIN_CLOSED - 1));
    uint64_t t0 = 0;
    for (uint32_t i = 0; atomic_load_explicit(&tp->n_done, memory_order_acquire) != want; i++) {
        if (spin_step(tp, i, &t0)) continue;
        atomic_store(&tp->caller_sleeping, 1);
        uint32_t d;
        while ((d = atomic_load(&tp->n_done)) != want) futex_wait(&tp->n_done, d);
        atomic_store(&tp->caller_sleeping, 0);
        break;
    }
    atomic_thread_fence(memory_order_acquire);
}

void threadpool_run(threadpool *tp, threadpool_fn fn, void *arg) { run(tp, fn, arg, 0); }

void threadpool_run_dynamic(threadpool *tp, threadpool_fn fn, void *arg) { run(tp, fn, arg, 1); }

int cpu_physical_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set)) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int)n : 1;
    }
    /* Count distinct (package, core) pairs among the CPUs we may run on. */
    int n_cpus = CPU_COUNT(&set), n_cores = 0;
    long *seen = calloc((size_t)CPU_SETSIZE, sizeof *seen);
    if (!seen) return n_cpus > 0 ? n_cpus : 1;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set)) continue;
        long pkg = 0, core = c;
        char path[128];
        FILE *f;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", c);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%ld", &core) != 1) core = c;
            fclose(f);
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", c);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%ld", &pkg) != 1) pkg = 0;
            fclose(f);
        }
        long key = pkg * 65536 + core;
        int dup = 0;
        for (int i = 0; i < n_cores; i++) dup |= seen[i] == key;
        if (!dup) seen[n_cores++] = key;
    }
    free(seen);
    if (n_cores < 1) n_cores = n_cpus > 0 ? n_cpus : 1;
    return n_cores;
}

static void *worker_main(void *p) {
    struct worker *w = p;
    threadpool *tp = w->tp;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        uint64_t t0 = 0;
        for (uint32_t i = 0; (g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen; i++) {
            if (spin_step(tp, i, &t0)) continue;
            atomic_fetch_add(&tp->n_sleeping, 1);
            while ((g = atomic_load(&tp->gen)) == seen) futex_wait(&tp->gen, seen);
            atomic_fetch_sub(&tp->n_sleeping, 1);
            break;
        }
        seen = g;
        if (atomic_load(&tp->stop)) break;
        /* Join run g unless the caller already closed it (dynamic runs). */
        uint64_t v = atomic_load(&tp->join);
        int joined = 0;
        while ((uint32_t)(v >> 32) == g && !(v & JOIN_CLOSED))
            if (atomic_compare_exchange_weak(&tp->join, &v, v + 1)) {
                joined = 1;
                break;
            }
        if (!joined) continue;
        tp->fn(tp->arg, w->ith, tp->n_threads);
        atomic_fetch_add(&tp->n_done, 1); /* seq_cst, then check for a sleeper */
        if (atomic_load(&tp->caller_sleeping)) futex_wake(&tp->n_done, 1);
    }
    return NULL;
}

/* One step of a wait: pause; every 256 steps check the clock, and past
 * YIELD_AFTER_NS yield the core (when the machine has more runnable threads
 * than cores, the thread we wait for may need ours). Returns 1 to keep
 * spinning, 0 when spin_ns is over and the caller should sleep. */
static int spin_step(const threadpool *tp, uint32_t i, uint64_t *t0) {
    cpu_relax();
    if ((i & 255) != 255) return 1;
    uint64_t now = time_now_ns();
    if (!*t0) *t0 = now;
    if (now - *t0 >= tp->spin_ns) return 0;
    if (now - *t0 >= YIELD_AFTER_NS) sched_yield();
    return 1;
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr, int n) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
