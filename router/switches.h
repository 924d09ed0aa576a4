/* The switch history of groups: for each group, where the router last saw its route (its own
 * queue, default, or another queue) and since when. It is learnt only from snapshots, so it
 * holds nothing the broker does not show; --min-dwell reads it. policy.c keeps a second one
 * for the groups' weights, classed as routes are (weight 1 as default, lowered as own, raised
 * as other). Not thread-safe; no I/O. */
#ifndef SLUICE_ROUTER_SWITCHES_H
#define SLUICE_ROUTER_SWITCHES_H

#include "hmap.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

enum sw_route {
    SW_DEFAULT = 0, /* no route */
    SW_OWN = 1,     /* its own queue, group.<name> */
    SW_OTHER = 2,   /* a queue a person chose */
};

struct sw_entry {
    char name[WIRE_NAME_MAX];   /* the group's name; not NUL-terminated (len bytes) */
    uint32_t len;
    enum sw_route route;        /* as last seen */
    bool since_known;           /* false: the route was as it is when first seen */
    uint64_t since_ms;          /* when the route was seen to change (since_known) */
    uint64_t seen;              /* the sweep epoch in which it was last seen */
};

struct switches {
    struct hmap map;            /* name -> struct sw_entry * (owned) */
    uint64_t epoch;
};

void switches_init(struct switches *sw);
/* Frees every entry. */
void switches_fini(struct switches *sw);
/* Forgets every group. */
void switches_clear(struct switches *sw);

/* Records that group was seen with route at now_ms. A group seen for the first time in its
 * own queue counts as having switched at now_ms (a restarted router holds it there for the
 * dwell); first seen elsewhere it has no switch time. Returns the entry (valid until the next
 * sweep or clear), or NULL when out of memory (nothing recorded). */
const struct sw_entry *switches_observe(struct switches *sw, struct sl_str group,
                                        enum sw_route route, uint64_t now_ms);

/* Records that group's route was changed to route at now_ms (by the router itself): the
 * switch time is now_ms whatever was known before. Returns the entry or NULL (out of memory). */
const struct sw_entry *switches_set(struct switches *sw, struct sl_str group,
                                    enum sw_route route, uint64_t now_ms);

/* The entry of group, or NULL if never seen (or swept). */
const struct sw_entry *switches_get(const struct switches *sw, struct sl_str group);

/* Forgets the groups not observed since the previous sweep (the broker forgot them too), and
 * starts a new epoch. */
void switches_sweep(struct switches *sw);

/* Milliseconds until a group may switch again, given min_dwell_ms: 0 when it may now (never
 * seen, no known switch, or the dwell has passed). */
uint64_t switches_dwell_left(const struct sw_entry *e, uint64_t min_dwell_ms, uint64_t now_ms);

#endif
