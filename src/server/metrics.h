/*
 * metrics.h - the server's counters and latency histograms, owned by the loop
 * thread (no locks), rendered as Prometheus text at GET /metrics together
 * with a snapshot of the engine's counters (inferd_engine_get_stats).
 */
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include <stdint.h>

#include "base/buf.h"
#include "inferd.h"

#define METRICS_BUCKETS 14
#define METRICS_MAX_SERIES 64

typedef struct metrics_hist {
    uint64_t counts[METRICS_BUCKETS + 1]; /* per bucket; the last is +Inf */
    double sum;
    uint64_t count;
} metrics_hist;

typedef struct metrics_series {
    char endpoint[32];
    int status;
    uint64_t count;
} metrics_series;

typedef struct metrics {
    metrics_series requests[METRICS_MAX_SERIES]; /* llm_requests_total{endpoint,status} */
    uint32_t n_requests;
    uint64_t prompt_tokens, generation_tokens;
    uint64_t client_aborts, queue_rejects;
    metrics_hist ttft, tpot, e2e;                /* seconds */
} metrics;

/* Counts one finished request of endpoint with its HTTP status. */
void metrics_count_request(metrics *m, const char *endpoint, int status);
/* Adds one observation (seconds) to a histogram. */
void metrics_observe(metrics_hist *h, double seconds);
/* Appends the Prometheus text exposition of m, the engine stats (when st is
 * non-NULL) and the gauges given. */
void metrics_render(const metrics *m, const inferd_engine_stats *st, uint32_t active_requests,
                    uint32_t connections, int ready, buf *out);

#endif
