/* Idempotency keys of pushes: (client, seq). REQ resends a request whose connection dropped,
 * and a producer reruns a push that got no answer, so the broker remembers which keys of each
 * client were stored and answers a repeated key instead of storing the jobs again.
 *
 * Per client it keeps two things: the first answers (first id, count) of its last DEDUP_RING
 * keys, and every seq it stored, as up to DEDUP_RANGES runs of consecutive seqs (a producer
 * that numbers its pushes 1, 2, 3... needs one run however many it sends). A key in the ring
 * is SEEN, with its answer; a key only in a run is STALE: stored, its answer forgotten. When a
 * client's gaps need more runs than that, the lowest run (but the one just extended) is
 * forgotten, with the answers the ring held for its keys: those keys would be stored again.
 * Whether a key is remembered thus depends on the runs alone, which dedup_foreach's calls
 * rebuild exactly: the journal's snapshot brings back the same keys, none more.
 * A client is forgotten window_ns after its last push, or when more than max_clients are
 * remembered (least recently used first).
 *
 * Each key carries the journal position its first answer waited for: an answer that says
 * "stored" waits for it too, so no repeat is confirmed before the original is durable.
 * Not thread-safe: the broker's lock covers it. */
#ifndef SLUICE_DEDUP_H
#define SLUICE_DEDUP_H

#include "wire.h"

#include <stdint.h>

#define DEDUP_RING 64    /* answers remembered per client */
#define DEDUP_RANGES 16  /* runs of stored seqs remembered per client */

struct dedup;

enum dedup_verdict {
    DEDUP_NEW,    /* not stored: store, then dedup_record */
    DEDUP_SEEN,   /* stored: *first_id and *n are the first answer */
    DEDUP_STALE,  /* stored, but its first answer is forgotten (*first_id, *n are 0) */
};

/* NULL on ENOMEM. */
struct dedup *dedup_new(int64_t window_ns, uint32_t max_clients);
void dedup_free(struct dedup *d);

/* Looks up (client, seq) at time now_ns; forgets idle clients first. For SEEN and STALE,
 * *lsn is the journal position a repeat must wait for before it is answered (0: none; a
 * STALE key gets one covering every key its client's ring has let go). */
enum dedup_verdict dedup_check(struct dedup *d, struct sl_str client, uint64_t seq,
                               int64_t now_ns, uint64_t *first_id, uint32_t *n, uint64_t *lsn);

/* Remembers that (client, seq) was stored, with its answer and the journal position that
 * answer waits for (0: none). Returns 0 or SL_ENOMEM (then the key is not remembered; the
 * push itself stands). */
int dedup_record(struct dedup *d, struct sl_str client, uint64_t seq, uint64_t first_id,
                 uint32_t n, uint64_t lsn, int64_t now_ns);

/* Remembers that the keys lo..hi (lo <= hi) of client were stored, their answers unknown:
 * what the journal kept of keys older than the ring. Returns 0 or SL_ENOMEM. */
int dedup_record_stored(struct dedup *d, struct sl_str client, uint64_t lo, uint64_t hi,
                        int64_t now_ns);

/* Calls, client by client (least recently used first, with the client's last push time),
 * range for each run of stored seqs (lowest first), then key for each remembered answer
 * (oldest first): what dedup_record_stored and dedup_record calls in that order would
 * remember again (the journal writes them at the start of each segment). */
typedef void dedup_fn(void *arg, struct sl_str client, uint64_t seq, uint64_t first_id,
                      uint32_t n, int64_t last_ns);
typedef void dedup_range_fn(void *arg, struct sl_str client, uint64_t lo, uint64_t hi,
                            int64_t last_ns);
void dedup_foreach(const struct dedup *d, dedup_range_fn *range, dedup_fn *key, void *arg);

/* Clients remembered now. */
uint32_t dedup_clients(const struct dedup *d);

#endif
