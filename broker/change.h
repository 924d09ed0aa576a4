/* One change path. Every mutation of the broker's state is made once, in one place (broker.c,
 * flow.c; queue.c walks the lists), and then described once, by a struct change given to
 * change_made, which feeds every consumer from that one description: the journal (and, from
 * the journal's bytes, a cluster's replication stream). Replay and a cluster standby apply
 * journal records through the same broker functions with no journal attached, so what they
 * rebuild feeds no consumer: it is history, not new change.
 *
 * Request context (who asked, the reason, a router lease) is not part of a change; the ops
 * that publish events, log decisions and note route changes for MySQL do so from the
 * request, after the change. */
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
    CH_QUEUE,         /* queue created, or its settings or paused state changed */
    CH_QUEUE_GONE,    /* the queue named name destroyed */
    CH_ROUTE,         /* group name routed to queue (NULL: default) */
    CH_GROUP_WEIGHT,  /* group's weight changed */
    CH_FLUSH,         /* routes and statistics reset */
    CH_KINDS
};

struct change {
    enum change_kind kind;
    const struct job *job;
    bool head;
    const struct queue *queue;
    const struct group *group;
    struct sl_str name;
    const struct push_req *push;
    uint64_t first_id;
    uint32_t n;
    int64_t wall_ns;
};

/* Feeds c to every consumer that is on, b->lock held. Returns the journal position up to
 * which the journal must be durable for c to be confirmed (what a repeat of a push's
 * idempotency key waits for); 0 without a journal. */
uint64_t change_made(struct broker *b, const struct change *c);

#endif
