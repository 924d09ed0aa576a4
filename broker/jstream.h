/* The broker's link to a NATS JetStream cluster (--cluster): the shard's replicated journal
 * stream and its leader lease. NATS does the replication (a stream of 3 replicas), the fence
 * (a publish carries Nats-Expected-Last-Sequence; a stale one is refused) and the lease (a KV
 * entry written by compare-and-set; its revision is the epoch). sluice runs no consensus of
 * its own.
 *
 * The stream SLJ_<shard> (subject sluice.j.<shard>, file storage) holds the leader's journal
 * bytes in order: each message is a run of the journal's framed records (as in the segment
 * files, jfile.h) from one segment, with headers Sl-Seg (that segment's number), Sl-Lsn (the
 * journal position of its first byte) and Sl-Epoch. A record may continue in the next message.
 * The lease is the key <shard> of the KV bucket sluice_lease.
 *
 * Thread use: appends from one thread (the journal writer), the tail from one thread (the
 * standby's), the lease and info calls from any; they may run at the same time. */
#ifndef SLUICE_JSTREAM_H
#define SLUICE_JSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jstream;

struct jstream_cfg {
    const char *urls;     /* comma-separated nats:// URLs of the cluster's servers */
    const char *shard;    /* 1-32 of [A-Za-z0-9_-] */
    unsigned replicas;    /* the stream's replicas when it is created (1-5) */
    uint64_t timeout_ms;  /* bound of each JetStream call and of waiting for acks */
};

/* Connects (failing within cfg->timeout_ms, with why naming the URLs, when no server
 * answers), then creates the stream and the lease bucket if they do not exist (an existing
 * stream must have the subject and storage above, else SL_EBADREQ with why). The connection
 * reconnects on its own afterwards. Returns 0, or with why filled: SL_EBADREQ (bad cfg, a
 * foreign stream), SL_EUNREACHABLE (no server could be reached), SL_ETIMEDOUT (a server was
 * reached but JetStream did not serve the stream or the bucket: not ready yet, no quorum),
 * SL_ENOMEM. */
int jstream_open(struct jstream **sp, const struct jstream_cfg *cfg, char *why, size_t cap);
/* Bounds each later call by timeout_ms instead (a broker stopping waits less). */
void jstream_set_timeout(struct jstream *s, uint64_t timeout_ms);
/* Whether the connection is up now (not reconnecting). */
bool jstream_connected(struct jstream *s);
/* Closes the connection. jstream_close(NULL) does nothing. */
/* Closes the connection at once, from any thread: calls waiting on it (and later ones) fail
 * as unreachable. jstream_close still frees s. */
void jstream_abort(struct jstream *s);
void jstream_close(struct jstream *s);

/* A run of journal bytes; seq is the stream sequence (set by append and by the tail). */
struct jstream_msg {
    const uint8_t *p;
    size_t n;
    uint64_t seg;
    uint64_t lsn;
    uint64_t epoch;
    uint64_t seq;
};

/* Publishes the n messages in order, pipelined: the i-th with Nats-Expected-Last-Sequence
 * expect + i and Nats-Msg-Id "<epoch>.<lsn>", and waits for every ack. On success m[i].seq are
 * set and *last is the last one's sequence. Returns 0; SL_ECONFLICT when the stream's last
 * sequence was not what a message expected (another leader appended: this one is fenced);
 * SL_ETIMEDOUT when an ack did not come in time (the message may or may not be stored);
 * SL_EUNREACHABLE (not connected); SL_EIO otherwise. After a failure *last is the last
 * sequence acknowledged (expect if none). A message must not exceed jstream_max_msg. */
int jstream_append(struct jstream *s, struct jstream_msg *m, size_t n, uint64_t expect,
                   uint64_t *last);
/* jstream_append in two halves, so that the caller does other work (the local write and
 * fsync) while the stream stores: start publishes (0, or why it stopped publishing), wait
 * waits for the acks and returns as jstream_append. Always call wait after start, with the
 * same m, n and expect, before anything else is appended. */
int jstream_append_start(struct jstream *s, struct jstream_msg *m, size_t n, uint64_t expect);
int jstream_append_wait(struct jstream *s, struct jstream_msg *m, size_t n, uint64_t expect,
                        uint64_t *last);
/* The largest run of bytes one message may carry. */
size_t jstream_max_msg(const struct jstream *s);

/* Deletes the message at seq (compaction: see journal_compact.c for why not a purge). 0;
 * SL_ENOTFOUND when no message has that sequence (deleted already); an error as above. */
int jstream_delete(struct jstream *s, uint64_t seq);

/* What the message at seq is, read from the stream's leader: its headers in m (m->p NULL)
 * and the type of its first record in *first_type. 0; SL_ENOTFOUND when no message has that
 * sequence; SL_EBADREQ when it is not one of a journal's; an error as above. */
int jstream_get(struct jstream *s, uint64_t seq, struct jstream_msg *m, uint8_t *first_type);

struct jstream_info {
    uint64_t first_seq, last_seq; /* last_seq 0: empty */
    uint64_t msgs, bytes;
    char leader[64];              /* the NATS server leading the stream ("" unknown) */
    unsigned replicas;            /* configured */
    unsigned current;             /* replicas current with the leader (itself included) */
};
int jstream_info(struct jstream *s, struct jstream_info *out);

/* Starts reading the stream in order from sequence from (at least 1; below the first
 * sequence: from the first). */
int jstream_tail_start(struct jstream *s, uint64_t from);
/* The next message, waiting up to timeout_ms: 0 with *m filled (its bytes valid until the
 * next call or tail_stop); SL_ETIMEDOUT when none came (caught up); SL_EBADREQ for a message
 * without valid headers (m->seq set: the caller decides); SL_EUNREACHABLE or SL_EIO. */
int jstream_tail_next(struct jstream *s, struct jstream_msg *m, uint64_t timeout_ms);
void jstream_tail_stop(struct jstream *s);

/* The leader lease. holder: the broker's name (unique per process start); url: where clients
 * reach it. An empty holder is a lease released on purpose. */
struct jstream_lease {
    uint64_t rev; /* the KV revision: the epoch of its holder */
    char holder[64];
    char url[256];
};
/* 0 with *l; SL_ENOTFOUND when nobody ever held it. */
int jstream_lease_get(struct jstream *s, struct jstream_lease *l);
/* Writes holder/url if the entry's revision is still expect_rev (0: only if it does not
 * exist); 0 with *rev the new revision, SL_ECONFLICT when it changed meanwhile. */
int jstream_lease_put(struct jstream *s, uint64_t expect_rev, const char *holder,
                      const char *url, uint64_t *rev);

/* Where a standby that starts from nothing begins: the sequence of the oldest live segment's
 * first message, kept in the lease bucket (key "<shard>.start") and only ever raised. Below
 * it the stream may hold anything (a compaction under way, or messages a NATS node that
 * restarted brought back), never what a standby needs. get: 0 with *seq (0: never set);
 * raise: sets it to seq unless it is already as high. 0 or an error as above. */
int jstream_start_get(struct jstream *s, uint64_t *seq);
int jstream_start_raise(struct jstream *s, uint64_t seq);

#endif
