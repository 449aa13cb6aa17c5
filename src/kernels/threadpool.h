/*
 * threadpool.h - the kernel worker pool. The thread that calls threadpool_run
 * is worker 0 and n_threads-1 pthreads are the others; every worker runs the
 * same function with its index and splits the work itself (rows of a matrix
 * product, heads of attention). Between runs the workers spin briefly on a
 * generation counter, then sleep on a futex, so back-to-back kernels of one
 * forward pass cost no syscalls while an idle engine costs no CPU.
 */
#ifndef KERNELS_THREADPOOL_H
#define KERNELS_THREADPOOL_H

typedef struct threadpool threadpool;

/* A unit of parallel work: called once per worker with ith in [0, nth). */
typedef void (*threadpool_fn)(void *arg, int ith, int nth);

/* Starts a pool of n_threads workers (the caller counts as one, so n_threads-1
 * threads are created; n_threads <= 0 means cpu_physical_cores()). Returns
 * NULL when a thread or the memory cannot be had. Free with threadpool_free. */
threadpool *threadpool_new(int n_threads);

/* Stops and joins the workers and frees the pool. Accepts NULL. Must not be
 * called while a run is in progress. */
void threadpool_free(threadpool *tp);

/* The number of workers, caller included (>= 1). */
int threadpool_n_threads(const threadpool *tp);

/* Runs fn(arg, ith, nth) on every worker (ith 0 on the calling thread) and
 * returns when all have returned. One caller at a time: the pool belongs to
 * the thread that drives the forward pass; fn must not call threadpool_run.
 * tp may be NULL: then fn(arg, 0, 1) runs on the caller. */
void threadpool_run(threadpool *tp, threadpool_fn fn, void *arg);

/* Like threadpool_run, for work that workers claim dynamically (chunks from
 * a shared atomic counter): returns once the caller's fn has returned and
 * every worker that started fn has returned; a worker that had not started
 * by the time the caller's fn returned skips this run. fn must therefore
 * finish all the work by itself when it runs alone, and leave nothing for a
 * given ith. Saves waiting for a descheduled worker on a busy machine. */
void threadpool_run_dynamic(threadpool *tp, threadpool_fn fn, void *arg);

/* The number of physical cores the process may run on (SMT siblings counted
 * once, the affinity mask respected); at least 1. */
int cpu_physical_cores(void);

#endif
