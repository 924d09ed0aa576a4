/* The last DECISIONS_MAX route changes (route.set, route.unset, and the routes flush and
 * queue.destroy reset), for `stats`: what the router (or a person) decided, and why. A ring:
 * recording never allocates, and the oldest entry makes room for the newest. */
#ifndef SLUICE_DECISIONS_H
#define SLUICE_DECISIONS_H

#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

#define DECISIONS_MAX 16u
#define DECISION_REASON_MAX 256u   /* longer reasons are cut to this many bytes */

struct decision {
    int64_t ts_ms;                          /* wall clock, ms since the epoch */
    char group[WIRE_NAME_MAX + 1];
    char queue[WIRE_NAME_MAX + 1];          /* "" when the route was unset */
    char reason[DECISION_REASON_MAX + 1];
    uint64_t moved;                         /* the group's jobs the change moved */
    uint64_t lease;                         /* the router lease it carried */
    bool has_queue, has_reason, has_lease;
};

struct decisions {
    struct decision ring[DECISIONS_MAX];
    uint32_t next;                          /* where the next one goes */
    uint32_t n;                             /* held: 0..DECISIONS_MAX */
};

/* Records one change. queue, reason: NULL for none; lease: NULL for none. Names longer
 * than WIRE_NAME_MAX are cut (the wire never sends one). */
void decisions_add(struct decisions *d, int64_t ts_ms, struct sl_str group,
                   const struct sl_str *queue, uint64_t moved, const struct sl_str *reason,
                   const uint64_t *lease);

/* The i-th newest change (0: the newest), or NULL when i >= d->n. */
const struct decision *decisions_get(const struct decisions *d, uint32_t i);

#endif
