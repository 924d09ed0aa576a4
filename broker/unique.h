/* Unique keys: a push may carry a key, and while the key is held another push with it stores
 * nothing and answers with the job that holds it. A key is held
 *   - hold "active" (the default): while its job is ready, delayed or reserved (not once it is
 *     done, deleted or dead), and, with a TTL, no longer than the TTL;
 *   - hold "ttl": until its TTL ends, whatever becomes of its job.
 * Whether a key is held is decided when it is looked at, from the job index, so nothing needs
 * to tell this module that a job ended; keys no longer held are dropped when they are looked
 * at, and a few at a time by a sweep on each keyed push. Not thread-safe (the broker's lock). */
#ifndef SLUICE_UNIQUE_H
#define SLUICE_UNIQUE_H

#include "hmap.h"
#include "jobidx.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

#define UNIQUE_KEY_MAX 256u

enum unique_hold {
    UNIQUE_ACTIVE,
    UNIQUE_TTL,
    UNIQUE_HOLDS
};

/* "active", "ttl". */
extern const char *const unique_hold_names[UNIQUE_HOLDS];

/* The hold named s; -1 when none. */
int unique_hold_parse(struct sl_str s);

struct ukey {
    uint64_t job_id;
    uint64_t lsn;             /* the journal position of its push (0: durable) */
    int64_t expire_ns;        /* monotonic; INT64_MAX: no TTL */
    uint8_t hold;             /* enum unique_hold */
    uint16_t klen;
    char key[];
};

struct unique {
    struct hmap map;          /* key -> struct ukey */
    size_t sweep;             /* where the next sweep looks */
};

void unique_init(struct unique *u);
void unique_fini(struct unique *u);

/* The key, when it is held at now (monotonic), else NULL. A key found but no longer held is
 * dropped. */
const struct ukey *unique_held(struct unique *u, struct jobidx *ids, struct sl_str key,
                               int64_t now);

/* Gives key to job_id until expire_ns (INT64_MAX: no TTL) under hold, replacing any key of
 * that name. 0, SL_EBADREQ (key empty or over UNIQUE_KEY_MAX) or SL_ENOMEM. */
int unique_put(struct unique *u, struct sl_str key, uint64_t job_id, int64_t expire_ns,
               enum unique_hold hold);

/* unique_put in two steps, so that a push can make sure of the memory before it stores:
 * unique_prepare allocates (0, SL_EBADREQ or SL_ENOMEM); then unique_commit (cannot fail) or
 * free(*k). */
int unique_prepare(struct unique *u, struct sl_str key, struct ukey **k);
void unique_commit(struct unique *u, struct ukey *k, uint64_t job_id, int64_t expire_ns,
                   enum unique_hold hold, uint64_t lsn);

/* Looks at up to n keys after the last sweep's and drops those no longer held. */
void unique_sweep(struct unique *u, struct jobidx *ids, int64_t now, unsigned n);

/* Calls fn on every key held at now (for a snapshot); drops the others. */
void unique_foreach(struct unique *u, struct jobidx *ids, int64_t now,
                    void (*fn)(void *arg, const struct ukey *k), void *arg);

/* Keys remembered (held, or not yet dropped). */
size_t unique_count(const struct unique *u);

#endif
