/*
 * test_threadpool.c - the kernel worker pool: every worker runs each job once
 * with its index, runs are ordered (a run's writes are seen by the next), the
 * sleep path wakes up, a one-thread or NULL pool runs on the caller, and
 * dynamic runs finish all claimed work.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels/threadpool.h"

typedef struct job {
    _Atomic int calls[8];
    _Atomic int nth_seen;
    int64_t data[64];
    int round;
} job;

static void mark(void *arg, int ith, int nth) {
    job *j = arg;
    atomic_fetch_add(&j->calls[ith], 1);
    atomic_store(&j->nth_seen, nth);
}

/* Each worker adds its round to its share of data: the caller checks that
 * every element saw every round, i.e. runs never overlap. */
static void add_round(void *arg, int ith, int nth) {
    job *j = arg;
    for (int i = ith; i < 64; i += nth) j->data[i] += j->round;
}

Test(threadpool, every_worker_runs_once_per_run) {
    for (int n = 1; n <= 4; n++) {
        threadpool *tp = threadpool_new(n);
        cr_assert_not_null(tp);
        cr_assert_eq(threadpool_n_threads(tp), n);
        job j = {0};
        for (int r = 0; r < 100; r++) threadpool_run(tp, mark, &j);
        for (int i = 0; i < n; i++) cr_assert_eq(atomic_load(&j.calls[i]), 100, "worker %d of %d", i, n);
        for (int i = n; i < 8; i++) cr_assert_eq(atomic_load(&j.calls[i]), 0);
        cr_assert_eq(atomic_load(&j.nth_seen), n);
        threadpool_free(tp);
    }
}

Test(threadpool, runs_are_ordered) {
    threadpool *tp = threadpool_new(3);
    cr_assert_not_null(tp);
    job *j = calloc(1, sizeof *j);
    int64_t want = 0;
    for (int r = 1; r <= 2000; r++) {
        j->round = r;
        threadpool_run(tp, add_round, j);
        want += r;
    }
    for (int i = 0; i < 64; i++) cr_assert_eq(j->data[i], want, "element %d", i);
    free(j);
    threadpool_free(tp);
}

Test(threadpool, wakes_after_sleeping) {
    setenv("INFERD_SPIN_US", "0", 1); /* sleep at once */
    threadpool *tp = threadpool_new(2);
    cr_assert_not_null(tp);
    job j = {0};
    for (int r = 0; r < 20; r++) {
        usleep(2000); /* the worker is asleep on the futex by now */
        threadpool_run(tp, mark, &j);
    }
    cr_assert_eq(atomic_load(&j.calls[0]), 20);
    cr_assert_eq(atomic_load(&j.calls[1]), 20);
    threadpool_free(tp);
    unsetenv("INFERD_SPIN_US");
}

Test(threadpool, null_pool_runs_on_caller) {
    job j = {0};
    threadpool_run(NULL, mark, &j);
    cr_assert_eq(atomic_load(&j.calls[0]), 1);
    cr_assert_eq(atomic_load(&j.nth_seen), 1);
    cr_assert_eq(threadpool_n_threads(NULL), 1);
    threadpool_free(NULL);
}

Test(threadpool, physical_cores_positive) {
    int n = cpu_physical_cores();
    cr_assert_geq(n, 1);
    cr_assert_leq(n, sysconf(_SC_NPROCESSORS_ONLN));
    threadpool *tp = threadpool_new(0);
    cr_assert_not_null(tp);
    cr_assert_eq(threadpool_n_threads(tp), n);
    threadpool_free(tp);
}

typedef struct dyn_job {
    _Atomic int next;
    _Atomic int hits[256];
} dyn_job;

static void claim_items(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    dyn_job *j = arg;
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < 256;) atomic_fetch_add(&j->hits[i], 1);
}

/* Dynamic runs: every item claimed exactly once per run, all done on return,
 * whichever workers took part (some may skip a run). */
Test(threadpool, dynamic_run_finishes_all_work) {
    threadpool *tp = threadpool_new(3);
    cr_assert_not_null(tp);
    dyn_job *j = calloc(1, sizeof *j);
    for (int r = 1; r <= 500; r++) {
        atomic_store(&j->next, 0);
        threadpool_run_dynamic(tp, claim_items, j);
        for (int i = 0; i < 256; i++) cr_assert_eq(atomic_load(&j->hits[i]), r, "run %d item %d", r, i);
        if (r % 100 == 0) {
            job k = {0};
            threadpool_run(tp, mark, &k); /* static runs still reach every worker */
            for (int w = 0; w < 3; w++) cr_assert_eq(atomic_load(&k.calls[w]), 1);
        }
    }
    free(j);
    threadpool_free(tp);
    dyn_job *s = calloc(1, sizeof *s);
    threadpool_run_dynamic(NULL, claim_items, s);
    cr_assert_eq(atomic_load(&s->hits[255]), 1);
    free(s);
}
