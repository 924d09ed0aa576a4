/* One change path. Every mutation of the broker's state is made once, in one place, and the
 * journal, replication, MySQL sync, events and decisions are fed from there.
 *
 * The broker function that makes a change (broker.c, flow.c; replay_hand_back) describes it
 * in a struct change and calls change_made, which hands it to each consumer in turn: the
 * journal (journal.h: its records), the event stream (events.h), the database's route log
 * (dbsync.h) and the route decisions kept for stats (decisions.h), then the broker's tap (a
 * test, or a replication stream). No other code feeds them a state change; op handlers only
 * say which request is making changes (b->origin), so that what a consumer reports carries
 * the request's reason, lease and op.
 *
 * A consumer that is off is skipped: the journal without b->jr, the others for a change no
 * request made (timers, closed connections, loading at start) or without their socket or
 * database. While the journal is replayed (b->replaying) no consumer is fed: the journal is
 * the history being rebuilt, and what it holds was reported when it happened. */
#ifndef SLUICE_CHANGE_H
#define SLUICE_CHANGE_H

#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

struct broker;
struct group;
struct job;
struct push_req;
struct queue;

enum change_kind {
    CHANGE_PUSH,            /* push: a request's jobs were stored */
    CHANGE_JOB_STATE,       /* job: its new state, at the head (else the tail) of its list */
    CHANGE_JOB_FIELDS,      /* job: its attempts and crashes changed; it stays where it is */
    CHANGE_JOB_DELETED,     /* job: acked, purged; about to be freed */
    CHANGE_QUEUE_SET,       /* queue: created, its settings or paused state changed */
    CHANGE_QUEUE_DESTROYED, /* queue_destroyed: its jobs moved to default, routes reset */
    CHANGE_ROUTE,           /* route: a group's route was set (or unset) */
    CHANGE_GROUP_WEIGHT,    /* group: its weight was set */
    CHANGE_FLUSH,           /* flush: made just before the routes are reset and groups
                               forgotten, so that consumers see what it resets */
    CHANGE_PURGE,           /* (moved) ready jobs deleted, each one a CHANGE_JOB_DELETED */
    CHANGE_KINDS
};

/* A group whose route a queue's destruction reset, with its jobs that moved to default. */
struct change_reset {
    const struct group *group;
    uint64_t moved;
};

/* A change, borrowed by the consumers for the call: pointers are the broker's objects as
 * they are now (b->lock held). */
struct change {
    enum change_kind kind;
    const struct wire_msg *origin; /* the request that made it; NULL: none */
    uint64_t moved;                /* QUEUE_DESTROYED: its jobs that went to default; ROUTE:
                                      the group's ready jobs that moved; PURGE: jobs deleted */
    union {
        struct {
            const struct push_req *req;
            const struct queue *queue;
            uint64_t first_id;
            uint32_t n;
            int64_t wall_ns;        /* the jobs' enqueue time */
        } push;
        struct {
            const struct job *job;
            bool head;              /* CHANGE_JOB_STATE: put at the head of its list */
        } job;
        const struct queue *queue;  /* CHANGE_QUEUE_SET */
        struct {
            const struct queue *queue; /* still held; its name is the one destroyed */
            const struct change_reset *resets; /* first-seen order */
            uint32_t nresets;
        } queue_destroyed;
        struct {
            struct sl_str name;        /* the group's */
            const struct group *group; /* NULL: unknown and left unrouted (nothing changed) */
            const struct queue *from;  /* the route before (NULL: none) */
            const struct queue *to;    /* the route now (NULL: none) */
        } route;
        const struct group *group;  /* CHANGE_GROUP_WEIGHT */
    } u;
};

/* A consumer: fed every change of the kinds it takes (change.c's table), b->lock held. */
typedef void change_fn(struct broker *b, const struct change *c);

/* An extra consumer (b->tap), after the others: a test recording changes, a replication
 * stream. arg: b->tap_arg. */
typedef void change_tap_fn(void *arg, struct broker *b, const struct change *c);

/* Feeds c to every consumer that is on; b->lock held. Never fails: a consumer that cannot
 * take a change says so its own way (the journal breaks, a database write is retried). */
void change_made(struct broker *b, const struct change *c);

#endif
