/* The broker's journal: every change to its state, appended to segment files (jfile.h) by a
 * writer thread, and replayed at start.
 *
 * Records are appended under the broker's lock, in the order the changes happen, to an
 * in-memory buffer; the writer thread takes the whole buffer at once, writes it and, with
 * --fsync always, fdatasync()s it before it lets the requests it covers be answered (group
 * commit: one fsync for every request that arrived meanwhile). With everysec and never the
 * requests are answered once the bytes are written (so a killed broker loses nothing
 * confirmed); everysec fdatasync()s once a second, never leaves it to the kernel.
 *
 * What is recorded (little-endian binary payloads, see journal_int.h): pushes (one record per
 * push request, payloads included), every job state change made by workers, timers and
 * operators (reserved, ready, delayed, dead; attempts and crashes), job deletions (ack,
 * purge), queues (settings, paused), queue destruction, routes, flush, cron entries and
 * their fired instants (each one with its job, in one record). Each segment begins with a
 * snapshot of everything that is not a job (next id, queues, routes, idempotency keys, cron
 * entries), so the oldest segments can be deleted once they hold no live job: a job lives in
 * the segment holding its latest full record. When the oldest segment is mostly empty its
 * remaining jobs are written again in full to the current segment, so one long-lived job
 * does not keep the history alive.
 *
 * A reserve file kept in the directory (journal_int.h) is deleted when a write runs out of
 * space, so that acks can still be written and let compaction delete segments; pushes are
 * refused until the space is back. Rolls and compaction wait while the journal cannot be
 * written, and their records never hold a request's reply.
 *
 * Replay rebuilds queues, routes, paused state, settings, ids, idempotency keys and every
 * job; jobs that were reserved become ready at the head of their queue with the attempt
 * counted. Counters (pushed, done, failed) start again from zero, as after any start. */
#ifndef SLUICE_JOURNAL_H
#define SLUICE_JOURNAL_H

#include "broker.h"
#include "park.h"

struct jstream;
struct change;

#include <stdbool.h>
#include <stdint.h>

enum journal_fsync { JOURNAL_ALWAYS, JOURNAL_EVERYSEC, JOURNAL_NEVER };

struct journal_cfg {
    const char *dir;            /* the segment directory (created 0700 if missing) */
    enum journal_fsync fsync;
    uint64_t segment_bytes;     /* a segment is closed once it grows past this */
    bool repair;                /* cut the journal at a corrupt record instead of stopping */
    /* A cluster leader's (js NULL: a single broker): every write also goes to the shard's
     * stream, and nothing is confirmed before the stream holds it (journal_repl.c). A
     * journal opened with js on an empty stream writes every job again in its new segment,
     * so that the stream holds all of the broker's state from its first message. */
    struct jstream *js;
    uint64_t epoch;                  /* this leader's */
    void (*on_fenced)(void *arg);    /* once, from the writer: another leader appended */
    void *fenced_arg;
};

struct journal;

/* Opens the journal in cfg->dir (locking it against a second broker), replays it into b
 * (which must be new: only the default queue), starts a new segment and the writer thread,
 * and sets b->jr. Returns 0; or SL_EIO (SL_ENOMEM when it cannot even allocate) with why
 * filled in (a corrupt record names the segment and offset) and b unusable. cfg->repair cuts
 * at damaged bytes (a checksum or framing failure); a well-framed record that cannot be
 * applied (of a type this version does not know) always stops the start. Logs what it
 * replayed and what it cut. */
int journal_open(struct broker *b, const struct journal_cfg *cfg, char *why, size_t cap);

/* Writes and syncs what is buffered, stops the writer thread, answers requests still
 * waiting (with an error if the journal cannot be written), clears b->jr and frees the
 * journal. Call without the broker's lock, after the server has stopped. */
void journal_close(struct broker *b);

/* --- called by the broker's state changes, b->lock held ----------------------------------- */

/* The journal as a consumer of the change path (change.h): whether b has one, and the
 * records of c appended; returns the position confirming c (a push's; 0 for the others). */
bool journal_attached(const struct broker *b);
uint64_t journal_change(struct broker *b, const struct change *c);
/* The segment new full job records go to. */
uint32_t journal_segment(const struct journal *jr);

/* The end of a change made under the lock (a request, a timer round, a closed connection):
 * closes the segment if it is full, compacts, and wakes the writer. */
void journal_op_end(struct broker *b);

/* The position up to which records must be on disk before the changes made so far may be
 * confirmed. A request that moved it waits for it. */
uint64_t journal_confirm_lsn(const struct journal *jr);

/* Whether pushes are refused: the journal could not be written, or its disk is full (the
 * reserve is in use: every other change is still written). why gets the reason. */
bool journal_broken(struct journal *jr, char *why, size_t cap);

/* --- answering after the sync, b->lock NOT held ------------------------------------------- */

/* Sends wt's reply (wt->rep) once everything up to lsn is on disk: now if it already is
 * (returns false: the caller sends it), else later from the writer thread (returns true).
 * If the write fails the reply becomes an io error. */
bool journal_hold(struct journal *jr, struct waiter *wt, uint64_t lsn);

/* The server is going away: drops every held reply (freeing each waiter's rep) and waits for
 * replies the writer is sending now. Returns the waiters it held, linked by next, for the
 * server to free; after it the journal touches no waiter it held. Call once nothing can hold
 * a new one (the server's threads are stopped). */
struct waiter *journal_release_waiters(struct journal *jr);

/* Blocks until everything up to lsn is durable or the journal fails. */
void journal_wait(struct journal *jr, uint64_t lsn);

/* For stats: mode name, bytes in segment files, segments, fsyncs done. Takes the journal's
 * own lock only. */
struct journal_stats {
    const char *mode;
    uint64_t bytes;
    uint64_t segments;
    uint64_t fsyncs;
    uint64_t live_jobs;
    bool broken;
};
void journal_stats(struct journal *jr, struct journal_stats *st);

#endif
