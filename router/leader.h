/* The router's side of the broker's lease (PROTOCOL.md, "The router's lease"): acquire it,
 * renew it every ttl/3, give it up on exit; as a standby, try to acquire it every ttl/8, so a
 * standby takes over at most ttl + ttl/8 after the leader's last renewal (and at once after a
 * release it hears of, see router.c). Leadership changes are logged here (event=leader.*).
 *
 * The lease is believed held until the broker says otherwise (not_leader) or until ttl has
 * passed since the last granted request was sent, whichever comes first: past that point the
 * broker may have given it to another router. Single-threaded; the calls block on the broker. */
#ifndef SLUICE_ROUTER_LEADER_H
#define SLUICE_ROUTER_LEADER_H

#include "client.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

struct leader {
    char name[WIRE_NAME_MAX + 1]; /* the router's name, sent with every lease op */
    uint64_t ttl_ms;
    uint64_t high;               /* sent with acquire and renew, so the broker reports crossings */
    uint64_t call_ms;            /* timeout of one lease request */
    bool leading;
    uint64_t lease;              /* the lease number while leading */
    uint64_t valid_until_ms;     /* monotonic: the lease lapses then unless renewed */
    uint64_t next_ms;            /* monotonic: the next renew (leading) or acquire (standby) */
    bool said_standby;           /* standby: already logged, with who holds the lease */
    bool said_unauthorized;      /* the broker refused our token: already logged */
};

enum leader_change {
    LEADER_SAME = 0,
    LEADER_GAINED,
    LEADER_LOST,
};

/* name: at most WIRE_NAME_MAX bytes of a valid name. The first step acquires at once. */
void leader_init(struct leader *l, const char *name, uint64_t ttl_ms, uint64_t high,
                 uint64_t call_ms);

/* Does what is due at now_ms (nothing before l->next_ms): renews when leading, tries to
 * acquire when standby. Returns the change in leadership it caused. Blocks up to call_ms. */
enum leader_change leader_step(struct leader *l, struct client *c, uint64_t now_ms);

/* A change was refused with not_leader: the lease is lost now. why is logged. */
void leader_lost(struct leader *l, const char *why, uint64_t now_ms);

/* Gives the lease up if leading (on exit), so a standby takes over at once. Blocks up to
 * call_ms, and never more than a second: a lease not given up lapses by its TTL. */
void leader_release(struct leader *l, struct client *c);

/* Whether the lease may be used at now_ms. */
bool leader_leading(const struct leader *l, uint64_t now_ms);

#endif
