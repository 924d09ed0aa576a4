/* The internals of the request dispatcher, shared by its modules and by nothing else: ops.c
 * (decoding, the op table, the lease check, the reply), ops_admin.c (queues, routes, dead
 * jobs), ops_stats.c (queue.list, route.list, stats), ops_flow.c (push and the workers' ops),
 * ops_lease.c (the router's lease) and ops_cron.c (recurring jobs). Every handler runs under
 * b->lock. */
#ifndef SLUICE_OPS_INT_H
#define SLUICE_OPS_INT_H

#include "ops.h"

#include <string.h>

/* Size of a handler's error text buffer (op_ctx.why). */
#define WHY_MAX 256

/* What a handler gets besides the request: where to write an error's text, the connection
 * it came on, and the waiter to fill if it parks. */
struct op_ctx {
    char *why;
    uint32_t pipe;
    struct waiter *wt;
    nng_msg *rep;     /* the message pk appends to, to reserve room in advance */
    uint32_t pushed;  /* jobs a push stored (not a duplicate), for flowc.no_worker */
    uint64_t wait_lsn; /* journal position the reply waits for although the op appended
                          nothing: a duplicate's original must be durable first */
    bool standby;     /* refused as not_leader by a cluster broker that does not serve */
};

/* A handler: checks req, changes the broker, packs the reply into pk only once it has
 * succeeded; or returns an SL_E* code with its text in c->why and changes nothing. */
typedef int op_fn(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                  struct op_ctx *c);

/* The handlers of ops.c's table, one per op of wire_ops. */
op_fn op_push;          /* push: stores jobs in their group (ops_flow.c) */
op_fn op_queue_create;  /* queue.create (ops_admin.c) */
op_fn op_queue_update;  /* queue.update: changes a queue's settings (ops_admin.c) */
op_fn op_queue_destroy; /* queue.destroy: routes to it reset to default (ops_admin.c) */
op_fn op_queue_pause;   /* queue.pause (ops_admin.c) */
op_fn op_queue_resume;  /* queue.resume (ops_admin.c) */
op_fn op_queue_list;    /* queue.list (ops_stats.c) */
op_fn op_route_set;     /* route.set: moves a group to a queue (ops_admin.c) */
op_fn op_route_unset;   /* route.unset: moves a group back to default (ops_admin.c) */
op_fn op_route_list;    /* route.list: the routes and the lease's holder (ops_stats.c) */
op_fn op_stats;         /* stats; req may be NULL, as from ops_stats (ops_stats.c) */
op_fn op_flush;         /* flush: routes and statistics reset (ops_admin.c) */
op_fn op_purge;         /* purge: ready jobs deleted (ops_admin.c) */
op_fn op_hello;         /* hello: a worker registers (ops_flow.c) */
op_fn op_heartbeat;     /* heartbeat: a worker reports (ops_flow.c) */
op_fn op_reserve;       /* reserve: hands out jobs, or parks in c->wt (ops_flow.c) */
op_fn op_ack;           /* ack: reserved jobs done (ops_flow.c) */
op_fn op_nack;          /* nack: reserved jobs failed (ops_flow.c) */
op_fn op_release;       /* release: reserved jobs handed back (ops_flow.c) */
op_fn op_touch;         /* touch: reserved jobs get more time (ops_flow.c) */
op_fn op_dead_list;     /* dead.list (ops_admin.c) */
op_fn op_dead_retry;    /* dead.retry: dead jobs made ready again (ops_admin.c) */
op_fn op_dead_purge;    /* dead.purge: dead jobs deleted (ops_admin.c) */
op_fn op_group_weight;  /* group.weight (ops_admin.c) */
op_fn op_group_limit;   /* group.limit: a group's start rate (ops_grate.c) */
op_fn op_lease_acquire; /* lease.acquire (ops_lease.c) */
op_fn op_lease_renew;   /* lease.renew (ops_lease.c) */
op_fn op_lease_release; /* lease.release (ops_lease.c) */
op_fn op_job_info;      /* job.info: one job's details (ops_job.c) */
op_fn op_job_peek;      /* job.peek: the first jobs of a queue or group in a state (ops_job.c) */
op_fn op_job_delete;    /* job.delete: a ready or delayed job deleted (ops_job.c) */
op_fn op_cron_add;      /* cron.add: a recurring job added or replaced (ops_cron.c) */
op_fn op_cron_remove;   /* cron.remove (ops_cron.c) */
op_fn op_cron_list;     /* cron.list (ops_cron.c) */
op_fn op_cron_pause;    /* cron.pause (ops_cron.c) */
op_fn op_cron_resume;   /* cron.resume (ops_cron.c) */
op_fn op_group_list;    /* group.list: one sorted, filtered page of groups (ops_dash.c) */
op_fn op_history;       /* history: the last minutes' counts per second (ops_dash.c) */

/* Packs one entry of stats' "groups" (ops_stats.c); all: the jobs the broker dispatched in
 * the wait window (the base of the group's share). */
void ops_pack_group(msgpack_packer *pk, const struct group *g, int64_t now, uint64_t all);

/* Packs the pair k: v. */
static inline void
kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    /* strlen here, not in wire.c: inlined with a literal key, it costs nothing per job. */
    wire_pack_str(pk, k, strlen(k));
    msgpack_pack_uint64(pk, v);
}

/* Packs the pair k: the string v[0..n). */
static inline void
kv_str(msgpack_packer *pk, const char *k, const char *v, size_t n)
{
    wire_pack_str(pk, k, strlen(k));
    wire_pack_str(pk, v, n);
}

/* Packs the pair k: v with a key of the wire's table. */
static inline void
key_u64(msgpack_packer *pk, enum wire_key k, uint64_t v)
{
    wire_pack_key(pk, k);
    msgpack_pack_uint64(pk, v);
}

/* Packs job j as a map, as reserve answers it (ops_flow.c). */
void pack_job(msgpack_packer *pk, const struct job *j);

/* Packs job j's details as a map, as dead.list answers it: job.info's fields (PROTOCOL.md),
 * with the whole payload (ops_job.c). */
void pack_job_dead(const struct broker *b, msgpack_packer *pk, const struct job *j);

#endif
