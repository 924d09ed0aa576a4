/* Wait-time statistics: how long a job waited from when it last became ready (push, retry,
 * delay due, hand-back) to its dispatch by reserve.
 *
 * Two shapes, both fixed-size so that recording a dispatch never allocates:
 * - struct wait_hist: since start, never reset; buckets with the fixed upper bounds
 *   wait_bounds_ms (a queue's histogram, exported as Prometheus buckets).
 * - struct wait_window: the last 30 to 60 s, for percentiles per group: two log-scale
 *   histograms of WAIT_WINDOW_NS each, the older dropped when a third window starts. Buckets
 *   are half octaves of microseconds ([2^k, 1.5*2^k) and [1.5*2^k, 2^(k+1))), so a
 *   percentile is known within its bucket: at most 25% off the bucket's middle. */
#ifndef SLUICE_WAIT_H
#define SLUICE_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#define WAIT_NBOUNDS 10u                   /* finite bucket bounds of wait_hist */
#define WAIT_NBUCKETS (WAIT_NBOUNDS + 1u)  /* and the +Inf bucket */
#define WAIT_WINDOW_NS 30000000000LL       /* one window: 30 s */
#define WAIT_WINDOW_BUCKETS 48u            /* < 128 us, then half octaves up to ~18 min */

/* The upper bounds (inclusive, ms) of wait_hist's buckets: 1, 5, 10, 50, 100, 500, 1000,
 * 5000, 10000, 60000. */
extern const uint32_t wait_bounds_ms[WAIT_NBOUNDS];

struct wait_hist {
    uint64_t buckets[WAIT_NBUCKETS]; /* non-cumulative; the last is +Inf */
    uint64_t sum_us, count;
};

struct wait_window {
    int64_t epoch;                      /* which window n[cur] is: monotonic ns / WAIT_WINDOW_NS */
    uint8_t cur;
    uint32_t n[2][WAIT_WINDOW_BUCKETS]; /* n[cur]: this window, n[!cur]: the one before */
};

/* Counts one wait of wait_us. */
void wait_hist_add(struct wait_hist *h, uint64_t wait_us);

/* Which of wait_hist's buckets a wait falls in: 0..WAIT_NBOUNDS. */
uint32_t wait_hist_bucket(uint64_t wait_us);

/* Counts one wait of wait_us dispatched at now_ns (monotonic, never decreasing between
 * calls on the same window). */
void wait_window_add(struct wait_window *w, int64_t now_ns, uint64_t wait_us);

/* The q-quantile (0 < q <= 1) in ms of the waits counted in the current and previous window
 * as of now_ns: the middle of the bucket holding it. False when there is none (nothing
 * dispatched in the last 30-60 s). Changes nothing. */
bool wait_window_quantile(const struct wait_window *w, int64_t now_ns, double q, double *ms);

/* The waits counted in the current and previous window as of now_ns. */
uint64_t wait_window_count(const struct wait_window *w, int64_t now_ns);

/* Bucket i of wait_window covers [lo, hi) microseconds (hi is UINT64_MAX for the last). */
void wait_window_range(uint32_t i, uint64_t *lo_us, uint64_t *hi_us);

#endif
