/* Queues: settings, the jobs of each state, and exact counters. Only this module links and
 * unlinks jobs and changes the per-state counters (of the queue and, through group_adjust, of
 * the job's group).
 *
 * Ready jobs are kept per group: a queue has one lane per group holding jobs in it, and a
 * lane's ready jobs are FIFO (they enter at its tail and leave at its head; a job handed back
 * enters at its head). Which lane serves next is the queue's order:
 *
 * - QUEUE_ORDER_GROUPS, the fair turn: the lanes with ready jobs take turns, deficit round
 *   robin with the group's weight as quantum. A lane whose turn comes gains its weight in
 *   credit; each job it hands out costs 1; it keeps the turn while it has a whole job of
 *   credit and a ready job. A lane that gets its first ready job joins the end of the turn,
 *   and one that runs out of ready jobs leaves it and forgets its credit (it cannot bank
 *   turns while idle). So a group's job waits at most about one turn of the groups that have
 *   ready jobs, whatever any of them holds, and picking a job is O(1).
 * - QUEUE_ORDER_FIFO: arrival order across groups, as one list would give: the lane whose
 *   head arrived first serves (a binary heap of lanes keyed by their head's arrival number;
 *   O(log lanes) per job).
 *
 * A group held back by its start rate (queue_group_hold) has its lanes out of the turn and
 * the heap, whatever ready jobs they hold, until it is let back in.
 *
 * Reserved, delayed and dead jobs are one list per state and queue, in the order they entered
 * it. */
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
#define QUEUE_RETRY_BASE_MAX 86400000u   /* 24 h */
#define QUEUE_RETRY_MAX_MAX 604800000u   /* 7 days */

/* How long a failed job waits before its next attempt: base_ms, doubled for each attempt
 * before, at most max_ms, less up to jitter percent of it at random. base_ms 0: at once. */
struct queue_retry {
    uint32_t base_ms;              /* 0..QUEUE_RETRY_BASE_MAX */
    uint32_t max_ms;               /* 1..QUEUE_RETRY_MAX_MAX */
    uint8_t jitter;                /* 0..100 */
};

enum queue_order {
    QUEUE_ORDER_GROUPS,
    QUEUE_ORDER_FIFO,
    QUEUE_ORDERS
};

/* "groups", "fifo". */
extern const char *const queue_order_names[QUEUE_ORDERS];

/* The order named s; -1 when s names none. */
int queue_order_parse(struct sl_str s);

struct joblist {
    struct job *head, *tail;
    uint64_t n;
};

/* The jobs of one group in one queue. Exists while the group holds a job there, in any
 * state; only its ready jobs are linked in it. */
struct lane {
    /* What a turn reads, first, in one cache line. */
    struct lane *rnext, *rprev;    /* groups order: the turn, while it has ready jobs */
    struct group *g;
    struct joblist ready;
    uint64_t credit;               /* groups order: thousandths of a job */
    bool active;                   /* in the turn or the heap: ready jobs, group not held */
    uint32_t heap_idx;             /* fifo order: place in q->heap, or UINT32_MAX */
    struct queue *q;
    uint64_t jobs;                 /* the group's jobs in q, every state */
    struct lane *gnext;            /* the group's lanes (group.lanes) */
    struct lane *qnext, *qprev;    /* the queue's lanes */
};

struct queue {
    char name[WIRE_NAME_MAX + 1];  /* NUL-terminated; the queue map's key */
    uint32_t name_len;
    uint32_t priority;             /* lower is served first; 0..QUEUE_PRIORITY_MAX */
    uint32_t weight;               /* share among equal priorities; 1..QUEUE_WEIGHT_MAX */
    uint32_t max_inflight;         /* cap on reserved jobs; 0 = none */
    struct queue_retry retry;      /* the wait before a failed job's next attempt */
    bool paused;                   /* no delivery; pushes still accepted */
    enum queue_order order;
    /* lists[JOB_READY] only counts (its jobs are in the lanes); the others hold their jobs. */
    struct joblist lists[JOB_STATES]; /* lists[JOB_NONE] is unused */
    uint64_t done, failed, pushed; /* since start or the last flush */
    uint64_t dispatched;           /* jobs handed out by reserve since start; never reset */
    struct wait_hist wait;         /* their waits since start; never reset */
    uint32_t routes;               /* groups whose route is this queue */
    uint64_t pass;                 /* stride scheduling among equal priorities (scheduler.c) */
    struct lane *lanes;            /* every lane */
    uint32_t nlanes;
    uint32_t nactive;              /* lanes with ready jobs, of groups not held */
    struct lane *cur;              /* groups order: the lane whose turn it is */
    struct lane **heap;            /* fifo order: the lanes with ready jobs */
    uint32_t heap_cap;
    uint64_t seq_tail, seq_head;   /* arrival numbers given at the tail, at the head */
};

/* A new queue with the given settings (validated by the caller), holding no jobs, in order
 * QUEUE_ORDER_GROUPS. NULL on ENOMEM. */
struct queue *queue_new(struct sl_str name, uint32_t priority, uint32_t weight,
                        uint32_t max_inflight);

/* Frees q, which must hold no jobs. */
void queue_free(struct queue *q);

/* Sets q's order; the ready jobs keep their order within each group. 0 or SL_ENOMEM
 * (nothing changed). */
int queue_set_order(struct queue *q, enum queue_order order);

/* Makes sure q has a lane for g, so that g's jobs can be put into q (queue_job_set) without
 * allocating. 0 or SL_ENOMEM. A lane that receives no job is dropped by queue_lane_trim. */
int queue_lane_make(struct queue *q, struct group *g);

/* Drops g's lanes that hold no job (after queue_lane_make for a push that failed). */
void queue_lane_trim(struct group *g);

/* Moves j into state st of queue q: unlinks it from wherever it is, appends it to the tail
 * of its lane (ready) or of q's list for st (JOB_NONE: linked nowhere, ready to be freed) and
 * updates the counters. A ready job leaving for JOB_RESERVED is charged to its lane's turn.
 * When j changes queue, q must have a lane for j's group (queue_lane_make). */
void queue_job_set(struct queue *q, struct job *j, enum job_state st);

/* Like queue_job_set, but puts j at the head of its list: a job handed back because its
 * worker went away or its reservation ended goes first again (first of its group). */
void queue_job_set_head(struct queue *q, struct job *j, enum job_state st);

/* Moves j just before `before` in the list they are both in (same queue, same state, and for
 * ready jobs the same group); does nothing otherwise. Counters do not change. */
void queue_job_move_before(struct job *j, struct job *before);

/* Holds g's lanes out of every queue's turn and heap (held), or lets them back in at the
 * end of the turn (or their place in the heap): a group whose start rate is spent waits
 * without being passed over by every reserve. Its jobs stay ready and counted; a lane made
 * or filled while g is held stays out. */
void queue_group_hold(struct group *g, bool held);

/* The ready job q would hand out next by its order, or NULL. Advances the turn past lanes
 * whose credit is spent, which hands out nothing. */
struct job *queue_ready_head(struct queue *q);

/* Walking the ready jobs, lane by lane, each lane in its order (first/next) or backwards
 * (last/prev). The next one may be taken before the current one leaves the queue. */
struct job *queue_ready_first(const struct queue *q);
struct job *queue_ready_next(const struct job *j);
struct job *queue_ready_last(const struct queue *q);
struct job *queue_ready_prev(const struct job *j);

/* g's jobs in q, in every state. */
uint64_t queue_group_jobs(const struct queue *q, const struct group *g);

/* g's ready jobs in q, and its first and last ready job there (NULL: none). */
uint64_t queue_group_ready(const struct queue *q, const struct group *g);
struct job *queue_group_first(const struct queue *q, const struct group *g);
struct job *queue_group_last(const struct queue *q, const struct group *g);

/* The monotonic time since which the next ready job of g (first of its lane, in each queue)
 * has been ready, the earliest of those; INT64_MAX when g has no ready job. */
int64_t queue_group_ready_since(const struct group *g);

/* Moves the ready jobs of group g from `from` to the tail of g's lane in `to`, in order.
 * *moved: how many. 0, or SL_ENOMEM with nothing moved. */
int queue_move_ready(struct queue *from, struct queue *to, struct group *g, uint64_t *moved);

/* Moves every job of `from`, in every state, to `to`: ready jobs to the tails of their lanes
 * in the order they arrived in `from` (those of groups held by their start rate after the
 * others, each group's in order); other states keep their state. `from` is left in fifo
 * order (it is to be freed). *moved: how many. 0, or SL_ENOMEM with nothing moved. */
int queue_move_all(struct queue *from, struct queue *to, uint64_t *moved);

/* Checks q's invariants (counts, lanes, the turn, the heap) by walking everything: for
 * tests. NULL when they hold, else what is wrong. */
const char *queue_check(const struct queue *q);

/* Jobs in q in state st / in every state. */
uint64_t queue_n(const struct queue *q, enum job_state st);
uint64_t queue_jobs(const struct queue *q);

#endif
