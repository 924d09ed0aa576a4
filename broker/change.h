/* One change path. Every mutation is made once, in one place, and the journal, replication,
 * MySQL sync, events and decisions are fed from there.
 *
 * The broker function that makes a change (broker.c, flow.c; queue.c walks the lists)
 * describes it once, by a struct change given to change_made, which feeds every consumer from
 * that one description, in turn: the journal (and, from the journal's bytes, a cluster's
 * replication stream), the event stream (events.h), the database's route log (dbsync.h), the
 * route decisions kept for stats (decisions.h), and b->change_hook (embedding, tests). No
 * other code feeds them a state change: an op handler only says which request is making
 * changes (b->origin, borrowed for the call), so that what a consumer reports carries the
 * request's op, reason and lease.
 *
 * A consumer that is off is skipped: the journal without one attached, the events, MySQL
 * and decisions for a change no request made (timers, closed connections, loading at start)
 * or without their socket or database. Replay and a cluster standby apply journal records
 * through the same broker functions with b->replaying set and no journal attached, so what
 * they rebuild feeds no consumer: it is history, fed when it happened. */
#ifndef SLUICE_CHANGE_H
#define SLUICE_CHANGE_H

#include "broker.h"

#include <stdbool.h>
#include <stdint.h>

enum change_kind {
    CH_PUSH,          /* n jobs from first_id stored by push into queue, at wall_ns */
    CH_JOB,           /* job's state changed; head: it went to the head of its list */
    CH_JOB_FIELDS,    /* job's attempts or crashes changed; it stays where it is */
    CH_JOB_GONE,      /* job deleted (acked, purged) */
    CH_JOB_ERR,       /* job's last error (job->err) set */
    CH_QUEUE,         /* queue created, or its settings or paused state changed */
    CH_QUEUE_GONE,    /* the queue named name destroyed (queue: still held), its moved jobs
                         gone to default, the routes in resets reset */
    CH_ROUTE,         /* group name routed to queue (NULL: default) from from, moved ready
                         jobs with it; group NULL: unknown and left unrouted (no change) */
    CH_GROUP_WEIGHT,  /* group's weight changed */
    CH_FLUSH,         /* routes and statistics reset: made just before, so that consumers see
                         the routes it resets */
    CH_PURGE,         /* moved ready jobs deleted by purge, each one a CH_JOB_GONE before */
    CH_CRON,          /* cron entry added, replaced, paused or resumed */
    CH_CRON_GONE,     /* the cron entry named name removed */
    CH_CRON_FIRE,     /* cron's instant last_ms fired with its push refused (a fire whose job
                         was stored is the CH_PUSH whose push carries the instant) */
    CH_GROUP_LIMIT,   /* group's start rate limit set or removed (group->rate NULL) */
    CH_KINDS
};

/* A group whose route a queue's destruction reset, with its jobs that moved to default. */
struct change_reset {
    const struct group *group;
    uint64_t moved;
};

/* A change, borrowed by the consumers for the call: pointers are the broker's objects as they
 * are now (b->lock held). */
struct change {
    enum change_kind kind;
    const struct wire_msg *origin; /* the request that made it; NULL: none */
    const struct job *job;
    bool head;
    const struct queue *queue;
    const struct queue *from;      /* CH_ROUTE: the route before (NULL: default) */
    const struct group *group;
    struct sl_str name;
    const struct push_req *push;
    uint64_t first_id;
    uint32_t n;
    int64_t wall_ns;
    int64_t due_wall_ms;           /* CH_PUSH: when the jobs become ready (0: they are) */
    uint64_t moved;                /* CH_QUEUE_GONE, CH_ROUTE: jobs moved; CH_PURGE: deleted */
    const struct change_reset *resets; /* CH_QUEUE_GONE: first-seen order */
    uint32_t nresets;
    const struct cron_entry *cron; /* CH_CRON, CH_CRON_FIRE */
};

/* Feeds c to every consumer that is on, b->lock held. Returns the journal position up to
 * which the journal must be durable for c to be confirmed (what a repeat of a push's
 * idempotency key waits for); 0 without a journal. */
uint64_t change_made(struct broker *b, const struct change *c);

#endif
