/* The router: every tick it reads one stats snapshot, runs the policy and applies the actions
 * it returns (queue.create/update/destroy, route.set/unset, group.weight, each carrying the
 * lease and, for the log and the event stream, the reason), logging each decision. Besides
 * the tick it listens to the broker's events and, when a group crosses --high and the policy
 * would move it, acts at once. Only while it holds the lease (leader.h); otherwise it is a
 * standby that changes nothing. With dry_run it takes no lease, decides and logs, and changes
 * nothing.
 *
 * Single-threaded: router_run owns the thread until told to stop. */
#ifndef SLUICE_ROUTER_ROUTER_H
#define SLUICE_ROUTER_ROUTER_H

#include "policy.h"
#include "token.h"

#include <stdbool.h>
#include <stdint.h>

struct router_cfg {
    const char *url;         /* the broker's request socket */
    const char *events_url;  /* the broker's event socket */
    const char *policy;      /* a policy's name (policy.h) */
    const char *name;        /* the lease holder's name */
    struct policy_cfg pcfg;
    uint64_t tick_ms;
    uint64_t ttl_ms;         /* the lease's time to live */
    bool dry_run;            /* decide and log, change nothing, take no lease */
    bool once;               /* one tick, then return */
    const struct token *token; /* carried by every request; NULL: none. Borrowed: lives as
                                  long as the router */
};

struct router;

/* Creates a router: the policy, the client and the event subscription. Connects nothing yet
 * (the broker may start later). Returns 0, SL_ENOTFOUND (unknown policy), SL_EBADREQ (bad
 * policy settings or URL), SL_ENOMEM or SL_EIO (logged). */
int router_new(struct router **rp, const struct router_cfg *cfg);

/* Releases the lease if held, closes the connection to the broker; the events socket is left
 * to the end of the process (evsub_leave): call it only as the program ends. router_free(NULL)
 * does nothing. */
void router_free(struct router *r);

/* Runs until stop_fd (a self-pipe written by the signal handlers) is readable, or after one
 * tick with cfg.once. Returns the exit status: 0; with once, 1 when the tick could not run
 * (broker unreachable, another router holds the lease). Blocks. */
int router_run(struct router *r, int stop_fd);

#endif
