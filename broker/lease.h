/* The router's lease: only one router acts at a time. A router acquires the lease for a
 * time-to-live and renews it; every change it asks for carries the lease's number, and the
 * broker refuses changes carrying any number but the current holder's. The number grows with
 * every new holder and starts from the wall clock in milliseconds, so it also grows across
 * broker restarts and a router from before a restart can never match a new holder's number. */
#ifndef SLUICE_LEASE_H
#define SLUICE_LEASE_H

#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

#define LEASE_TTL_MIN_MS 100u
#define LEASE_TTL_MAX_MS 600000u

struct lease {
    char holder[WIRE_NAME_MAX + 1]; /* "" when never held */
    uint64_t number;                /* the current (or last) holder's number; 0: never held */
    int64_t expires_ns;             /* monotonic; the lease lapses then unless renewed */
    bool held;                      /* false after release */
    uint64_t high;                  /* the holder's threshold to watch (0: none) */
};

/* Grants the lease to holder for ttl_ms if it is free, lapsed, or already holder's (then it
 * is renewed and keeps its number). A new holder gets a number above every earlier one
 * (at least wall_ms). Returns 0 with *number set, or SL_ENOTLEADER while another holds it. */
int lease_acquire(struct lease *l, struct sl_str holder, uint64_t ttl_ms, int64_t now_ns,
                  uint64_t wall_ms, uint64_t *number);

/* Extends the lease by ttl_ms from now if holder holds it under number. 0 or SL_ENOTLEADER. */
int lease_renew(struct lease *l, struct sl_str holder, uint64_t number, uint64_t ttl_ms,
                int64_t now_ns);

/* Gives the lease up if holder holds it under number. 0 or SL_ENOTLEADER. */
int lease_release(struct lease *l, struct sl_str holder, uint64_t number);

/* Whether number is the lease of a holder that holds it now. */
bool lease_valid(const struct lease *l, uint64_t number, int64_t now_ns);

/* Whether anybody holds the lease now. */
bool lease_held(const struct lease *l, int64_t now_ns);

#endif
