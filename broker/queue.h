/* Queues: settings, one list of jobs per state, and exact counters. Only this module links
 * and unlinks jobs and changes the per-state counters (of the queue and, through
 * group_adjust, of the job's group). FIFO: jobs enter a list at its tail and leave the ready
 * list at its head. */
#ifndef SLUICE_QUEUE_H
#define SLUICE_QUEUE_H

#include "group.h"
#include "job.h"
#include "wait.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

#define QUEUE_PRIORITY_MAX 1000000u
#define QUEUE_WEIGHT_MAX 1000u
#define QUEUE_INFLIGHT_MAX 1000000u

struct joblist {
    struct job *head, *tail;
    uint64_t n;
};

struct queue {
    char name[WIRE_NAME_MAX + 1];  /* NUL-terminated; the queue map's key */
    uint32_t name_len;
    uint32_t priority;             /* lower is served first; 0..QUEUE_PRIORITY_MAX */
    uint32_t weight;               /* share among equal priorities; 1..QUEUE_WEIGHT_MAX */
    uint32_t max_inflight;         /* cap on reserved jobs; 0 = none */
    bool paused;                   /* no delivery; pushes still accepted */
    struct joblist lists[JOB_STATES]; /* lists[JOB_NONE] is unused */
    uint64_t done, failed, pushed; /* since start or the last flush */
    uint64_t dispatched;           /* jobs handed out by reserve since start; never reset */
    struct wait_hist wait;         /* their waits since start; never reset */
    uint32_t routes;               /* groups whose route is this queue */
    uint64_t pass;                 /* stride scheduling among equal priorities (scheduler.c) */
};

/* A new queue with the given settings (validated by the caller), holding no jobs. NULL on
 * ENOMEM. */
struct queue *queue_new(struct sl_str name, uint32_t priority, uint32_t weight,
                        uint32_t max_inflight);

/* Frees q, which must hold no jobs. */
void queue_free(struct queue *q);

/* Moves j into state st of queue q: unlinks it from wherever it is, appends it to the tail
 * of q's list for st (JOB_NONE: linked nowhere, ready to be freed) and updates both queues'
 * and the group's counters. */
void queue_job_set(struct queue *q, struct job *j, enum job_state st);

/* Like queue_job_set, but puts j at the head of the list: a job handed back because its
 * worker went away or its reservation ended goes first again. */
void queue_job_set_head(struct queue *q, struct job *j, enum job_state st);

/* Moves j just before `before` in the list they are both in (same queue, same state); does
 * nothing otherwise. Counters do not change. */
void queue_job_move_before(struct job *j, struct job *before);

/* The oldest ready job of q, or NULL. */
struct job *queue_ready_head(const struct queue *q);

/* Moves the ready jobs of group g (every group if g is NULL) from `from` to the tail of
 * `to`, in order. Returns how many moved. O(ready jobs in from). */
uint64_t queue_move_ready(struct queue *from, struct queue *to, const struct group *g);

/* Moves every job of `from`, in every state, to `to`: ready jobs to the tail of to's ready
 * list in order; other states keep their state. Returns how many moved. */
uint64_t queue_move_all(struct queue *from, struct queue *to);

/* Jobs in q in state st / in every state. */
uint64_t queue_n(const struct queue *q, enum job_state st);
uint64_t queue_jobs(const struct queue *q);

#endif
