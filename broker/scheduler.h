/* Scheduling: which queue the next reservation takes a job from.
 *
 * - Only active queues with ready jobs of a group not held back by its start rate (grate.h),
 *   below their in-flight cap and named by the worker's filter (if any) are eligible.
 * - The lowest priority number with an eligible queue wins ("the top level").
 * - Minimum share: every lower priority level with an eligible queue gains min_share_ppm
 *   of credit per reservation it is passed over for; at one whole reservation of credit it
 *   is served instead of the top level. So while higher levels are busy, each lower level
 *   still gets min_share of the reservations, and no job waits forever.
 * - Within a level, queues share by weight with stride scheduling (the smooth form of
 *   weighted round robin, deficit round robin with a quantum of one job): each queue has a
 *   pass value that grows by STRIDE/weight per job; the eligible queue with the lowest pass
 *   is served. A queue that was idle restarts at the level's current pass, so it cannot bank
 *   credit while it had nothing to do.
 * - FIFO within a queue. */
#ifndef SLUICE_SCHEDULER_H
#define SLUICE_SCHEDULER_H

#include "queue.h"
#include "wire.h"

#include <stdint.h>

struct broker;

struct sched_level {
    uint32_t priority;
    uint32_t first, count;   /* range in the broker's qorder */
    uint64_t credit_ppm;     /* min-share credit, in millionths of a reservation */
    uint64_t vtime;          /* pass of the queue served last */
};

/* Recomputes the levels from b->qorder (sorted), keeping each priority's credit and pass.
 * b->levels and b->levels_spare must each have room for b->nqueues levels. */
void sched_rebuild(struct broker *b);

/* Chooses the queue for one reservation by the rules above and charges it (pass, credit).
 * from: the worker's filter (NULL or empty: every queue). NULL when no queue is eligible. */
struct queue *sched_pick(struct broker *b, const struct wire_list *from);

#endif
