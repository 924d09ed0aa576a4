/* Workers as the broker sees them: a name the worker chose, the connection (nng pipe) it
 * speaks on, what it last reported, and how many jobs it holds. A worker is registered by
 * `hello` or by its first `reserve`, and forgotten when its connection closes (its jobs go
 * back to their queues then, see flow.h), or, without a connection (HTTP), once idle with no
 * job for 15 minutes. */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include "wire.h"

#include <stdint.h>

#define WORKER_STATE_MAX 16

struct worker {
    char name[WIRE_NAME_MAX + 1];  /* the registry's key */
    uint32_t name_len;
    uint32_t pipe;                 /* nng pipe id of its connection; 0: unknown */
    uint64_t pid;                  /* as reported; 0: unknown */
    char state[WORKER_STATE_MAX];  /* as reported: idle, busy, draining */
    uint64_t done;                 /* jobs it acked here */
    uint64_t rss_bytes;            /* as reported */
    uint64_t current;              /* job id it runs as far as the broker knows: the one it
                                      reported last, or the job of a one-job reserve (0: none).
                                      The only job charged a crash if the worker dies */
    uint32_t reserved;             /* jobs it holds now */
    int64_t started_ns, seen_ns;   /* monotonic: registration, last request */
    /* Reserve tokens (rtok, PROTOCOL.md): the newest token of a reserve seen, and the
     * reserve answered last with jobs whose receipt the worker has not confirmed yet: its
     * token (0: none) and the ids it handed out. */
    uint64_t rtok_seen, rtok_sent;
    uint64_t *sent_ids;
    uint32_t sent_n, sent_cap;
    struct worker *next, *prev;    /* registration order */
};

/* A new worker (valid name). NULL on ENOMEM. */
struct worker *worker_new(struct sl_str name, uint32_t pipe, int64_t now_ns);
void worker_free(struct worker *w);

/* Records a report: state (a name, cut to WORKER_STATE_MAX - 1 bytes), pid, rss, current. */
void worker_set_state(struct worker *w, struct sl_str state);

#endif
