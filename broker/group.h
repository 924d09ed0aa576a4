/* Groups (tenants): name, route and exact counters. Counters change only through
 * group_adjust, which queue.c calls on every job state change, so a group's count is never
 * recomputed by scanning. */
#ifndef SLUICE_GROUP_H
#define SLUICE_GROUP_H

#include "job.h"
#include "wait.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

struct queue;
struct lane;
struct group_rate;

/* A group's weight, in thousandths: its share of the turns in a queue (queue.h) against other
 * groups there. 1000 (weight 1) unless set; 10 (0.01) to 1,000,000 (1000). */
#define GROUP_WEIGHT_ONE 1000u
#define GROUP_WEIGHT_MIN 10u
#define GROUP_WEIGHT_MAX 1000000u

struct group {
    /* What a push, a dispatch and an ack change come first, in two cache lines: with many
     * groups taking turns each dispatch reaches a group no recent one touched. */
    uint64_t jobs[JOB_STATES];     /* jobs of this group in each state, all queues */
    uint32_t weight;               /* thousandths (GROUP_WEIGHT_*) */
    uint32_t name_len;
    bool held;                     /* its start rate is spent: its lanes are out of every
                                      queue's turn and heap (queue_group_hold) */
    struct group_rate *rate;       /* its start rate limit (grate.h); NULL: none */
    uint64_t dispatched;           /* jobs handed out by reserve since start; never reset */
    uint64_t run_ns;               /* summed time from reservation to ack or nack */
    uint64_t done, failed, pushed; /* since start or the last flush */
    /* Since start, never reset (flush leaves them): what a group used, for the database's
     * usage table, which takes differences between readings. Changed where the counters
     * above are. */
    uint64_t pushed_all, done_all, failed_all;
    struct queue *route;           /* NULL: no route (pushes go to default) */
    struct lane *lanes;            /* one per queue holding its jobs (queue.c) */
    struct wait_window wait;       /* waits of the jobs dispatched in the last 30-60 s */
    struct group *next, *prev;     /* the broker's list of groups, in first-seen order */
    char name[WIRE_NAME_MAX + 1];  /* NUL-terminated copy; the group map's key */
};

/* A new group named name (valid name), with no route, weight 1 and zero counters. NULL on
 * ENOMEM. */
struct group *group_new(struct sl_str name);
void group_free(struct group *g);

/* One job of g moved from state `from` to state `to` (JOB_NONE: created or freed). */
void group_adjust(struct group *g, enum job_state from, enum job_state to);

/* The backlog the router reads: ready + reserved + delayed. */
uint64_t group_count(const struct group *g);

/* Jobs of g in any state (including dead). */
uint64_t group_jobs(const struct group *g);

#endif
