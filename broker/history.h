/* The broker's recent history for the dashboard's charts: per second of the last
 * HISTORY_SECONDS, how many jobs were pushed, done, failed and dispatched, system-wide.
 *
 * The ring keeps the broker's since-start totals (flowc, never reset) as they were at the end
 * of each second, not counts of its own: the counters change in one place (push.c, flow.c) and
 * the ring is fed by sampling them, from ops_handle after every request (under b->lock). A
 * second without a request changed nothing that is counted but a reservation's TTR expiry;
 * what changed then is charged to the next second sampled. */
#ifndef SLUICE_HISTORY_H
#define SLUICE_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#define HISTORY_SECONDS 600

enum history_series { HIST_PUSHED, HIST_DONE, HIST_FAILED, HIST_DISPATCHED, HIST_NSERIES };

/* Lives in struct broker, zeroed: empty. */
struct history {
    int64_t last_s;                               /* the second of slot head */
    bool sampled;                                 /* false: empty */
    uint32_t head;                                /* slot of last_s */
    uint64_t tot[HISTORY_SECONDS][HIST_NSERIES];  /* totals at the end of each second */
};

/* The series' names on the wire and in JSON ("pushed", ...); index by enum history_series. */
extern const char *const history_series_names[HIST_NSERIES];

/* Records the totals tot (since start, never decreasing) as of second now_s (any clock that
 * only goes forward; an earlier second than the last is taken as the last). Never fails. */
void history_sample(struct history *h, int64_t now_s, const uint64_t tot[HIST_NSERIES]);

/* The count of series s in the n-th second before now_s (0: now_s itself, which is still
 * going on), from 0 to HISTORY_SECONDS - 2; 0 for seconds before the first sample or n out of
 * range. Does not change h. */
uint64_t history_delta(const struct history *h, int64_t now_s, uint32_t n,
                       enum history_series s);

#endif
