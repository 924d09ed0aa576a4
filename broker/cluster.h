/* A broker in a cluster (--cluster): the leader of its shard, or a hot standby.
 *
 * The leader's journal is replicated record for record through the shard's NATS JetStream
 * stream (jstream.h, journal_repl.c): nothing is confirmed before the stream holds it, and
 * an append that finds another leader's message refused (the fence) ends the leadership.
 * The lease is a NATS KV entry renewed by compare-and-set every lease/4; a leader whose last
 * renewal is older than lease/2 stops serving, and a standby that sees the entry unchanged
 * for a whole lease takes it (its revision is the new epoch), appends an epoch record (which
 * fences the old leader), and is promoted: its state, built by applying every message of the
 * stream through replay's code (journal_follow.h), becomes the leader's. A broker that stops
 * leading for any reason starts again as a standby (the process executes itself anew), so
 * no state of a deposed leader survives into the standby.
 *
 * While not serving, the broker answers every request that would change something or hand
 * out a job with not_leader and leader_url (PROTOCOL.md). */
#ifndef SLUICE_CLUSTER_H
#define SLUICE_CLUSTER_H

#include "broker.h"
#include "journal.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cluster_cfg {
    const char *urls;       /* the NATS servers: nats://h:p,... */
    const char *shard;      /* the stream is SLJ_<shard>, the lease key <shard> */
    const char *advertise;  /* the URL clients reach this broker at */
    unsigned replicas;      /* the stream's replicas when created */
    uint64_t lease_ms;
};

struct cluster;

/* Connects to NATS (failing clearly when it cannot be reached), then either seeds an empty
 * stream from the local journal and leads (when nobody holds the lease), or prepares to
 * follow it as a standby (b stays empty until cluster_start). b must be new; jc is the local
 * journal's configuration. 0, or an error with why: SL_EUNREACHABLE when no NATS server
 * could be reached, SL_ETIMEDOUT when one was but JetStream could not serve the shard yet
 * (both may pass: b is still new, and cluster_open may be called again), another when it
 * never will as configured. */
int cluster_open(struct cluster **cp, struct broker *b, const struct cluster_cfg *cfg,
                 const struct journal_cfg *jc, char *why, size_t cap);
/* Starts the thread that follows the stream, keeps the lease and takes it over. */
int cluster_start(struct cluster *c);
/* Stops the thread; a leader releases its lease so that a standby takes over at once. Call
 * before journal_close. NULL does nothing. */
void cluster_stop(struct cluster *c);
void cluster_free(struct cluster *c);

/* Whether this broker may change its state and hand out jobs now (a leader within its
 * lease). Lock-free. */
bool cluster_serving(const struct cluster *c);
/* The leader's advertised URL as last seen ("" unknown). */
void cluster_leader_url(struct cluster *c, char *out, size_t cap);
/* Whether the process should start again as a standby (it stopped leading). */
bool cluster_restart_wanted(const struct cluster *c);
/* How long to wait before starting again (after a failure: not in a tight loop). */
unsigned cluster_restart_delay_ms(const struct cluster *c);
/* Hands the lease over on purpose: SL_ENOTLEADER when not leading. */
int cluster_step_down(struct cluster *c);
/* Packs the cluster's state as map entries (role, epoch, leader, stream, lag): n pairs,
 * returned by cluster_status_pairs. */
unsigned cluster_status_pairs(void);
void cluster_status_pack(struct cluster *c, msgpack_packer *pk);

#endif
