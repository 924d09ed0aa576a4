/* Idempotency keys of pushes: (client, seq). REQ resends a request whose connection dropped,
 * so the broker remembers the last DEDUP_RING keys of each client and answers a repeated key
 * with the first answer instead of storing the jobs again. A client is forgotten window_ns
 * after its last push, or when more than max_clients are remembered (least recently used
 * first).
 *
 * Each key carries the journal position its first answer waited for: an answer that says
 * "stored" waits for it too, so no repeat is confirmed before the original is durable.
 * Not thread-safe: the broker's lock covers it. */
#ifndef SLUICE_DEDUP_H
#define SLUICE_DEDUP_H

#include "wire.h"

#include <stdint.h>

#define DEDUP_RING 64

struct dedup;

enum dedup_verdict {
    DEDUP_NEW,    /* not seen: store, then dedup_record */
    DEDUP_SEEN,   /* seen: *first_id and *n are the first answer */
    DEDUP_STALE,  /* older than the remembered window of this client: treat as seen */
};

/* NULL on ENOMEM. */
struct dedup *dedup_new(int64_t window_ns, uint32_t max_clients);
void dedup_free(struct dedup *d);

/* Looks up (client, seq) at time now_ns; forgets idle clients first. For SEEN and STALE,
 * *lsn is the journal position a repeat must wait for before it is answered (0: none; a
 * STALE key gets one covering every key its client's ring has let go). */
enum dedup_verdict dedup_check(struct dedup *d, struct sl_str client, uint64_t seq,
                               int64_t now_ns, uint64_t *first_id, uint32_t *n, uint64_t *lsn);

/* Remembers the answer to (client, seq) and the journal position that answer waits for (0:
 * none). Returns 0 or SL_ENOMEM (then the key is not remembered; the push itself stands). */
int dedup_record(struct dedup *d, struct sl_str client, uint64_t seq, uint64_t first_id,
                 uint32_t n, uint64_t lsn, int64_t now_ns);

/* Calls fn for every remembered key, least recently used client first and each client's
 * keys oldest first, with the client's last push time: what dedup_record calls in that order
 * would remember again (the journal writes them at the start of each segment). */
typedef void dedup_fn(void *arg, struct sl_str client, uint64_t seq, uint64_t first_id,
                      uint32_t n, int64_t last_ns);
void dedup_foreach(const struct dedup *d, dedup_fn *fn, void *arg);

/* Clients remembered now. */
uint32_t dedup_clients(const struct dedup *d);

#endif
