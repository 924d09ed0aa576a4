/* A policy snapshot read from the broker's stats reply (PROTOCOL.md, stats): the groups with
 * their route, count and weight, the queues with their settings and counters. Not
 * thread-safe; no I/O. */
#ifndef SLUICE_ROUTER_SNAPSHOT_H
#define SLUICE_ROUTER_SNAPSHOT_H

#include "policy.h"
#include "wire.h"

#include <stddef.h>

/* The arrays behind a struct snapshot, reused from one stats reply to the next. */
struct snapshot_buf {
    struct snap_group *groups;
    size_t capg;
    struct snap_queue *queues;
    size_t capq;
    struct snapshot s;          /* points into the arrays and into the decoded reply */
};

void snapshot_buf_init(struct snapshot_buf *b);
void snapshot_buf_fini(struct snapshot_buf *b);

/* Fills b->s from rep, a decoded successful stats reply, stamped now_ms. The snapshot's strings
 * are views into rep: valid until rep is finalised or reused. Returns 0; SL_EBADREQ when the
 * reply lacks "groups" or "queues" or an entry has a missing or wrong-typed field (a reason in
 * why; a group's "weight" may be missing: 1); SL_ENOMEM. On failure b->s is empty. */
int snapshot_decode(struct snapshot_buf *b, const struct wire_msg *rep, uint64_t now_ms,
                    char *why, size_t whycap);

#endif
