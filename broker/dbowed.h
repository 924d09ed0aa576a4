/* What the broker owes its MySQL database: the rows of channels, usage_minute and route_log
 * (common/db.h) that differ from what was last written, kept in memory so that a database
 * that is down or slow never holds up a request. No I/O here: broker/dbsync.c reads the
 * broker into this once a second and writes what is owed.
 *
 * Two sides, two rules:
 * - The inbox (route changes, forgotten groups) is filled by request handlers: call
 *   dbowed_route_changed, dbowed_group_gone and dbowed_inbox_n with b->lock held.
 * - Everything else belongs to one thread (the syncing thread): dbowed_snapshot runs on it
 *   with b->lock held (it reads the broker and empties the inbox), the rest on it without
 *   the lock.
 *
 * Usage is counted from differences: each group carries counters that only grow (pushed_all,
 * done_all, failed_all, run_ns in group.h); a snapshot adds what they grew since the last one
 * to the group's row of the snapshot's minute. Rows hold totals, so writing one again (after
 * a failure whose outcome is unknown) never counts twice. */
#ifndef SLUICE_DBOWED_H
#define SLUICE_DBOWED_H

#include "broker.h"

#include <stdbool.h>
#include <stdint.h>

#define DBOWED_LOG_CAP 100000u     /* route changes held at most; beyond, the oldest go */
#define DBOWED_USAGE_CAP 200000u   /* usage rows held at most; beyond, the oldest go */
#define DBOWED_REASON_MAX 256u     /* characters of route_log.reason */

/* One row of channels: a group as the latest snapshot saw it. */
struct dbowed_chan {
    char id[WIRE_NAME_MAX + 1];      /* the group's name; the map key */
    uint32_t id_len;
    char route[WIRE_NAME_MAX + 1];
    uint32_t route_len;              /* 0: no route (NULL) */
    uint64_t count, done, failed;    /* as `stats` shows the group */
    uint32_t weight;                 /* thousandths, as struct group's; GROUP_WEIGHT_ONE when
                                        the group is gone; 0 for a value read from the
                                        database that no group can have */
    uint64_t pushed_all, done_all, failed_all, run_ns; /* the group's counters then */
    uint64_t seen;                   /* the snapshot that last found the group */
    bool dirty;                      /* differs from what the database was last sent */
    bool in_db;                      /* the database has a row for it (read or written) */
    bool gone;                       /* the broker has no such group any more: the row says
                                        count 0, route NULL, weight 1, and is forgotten once
                                        written */
};

/* One row of usage_minute (the broker column is dbsync's). */
struct dbowed_usage {
    char key[WIRE_NAME_MAX + 8];     /* the group's name, then minute_s: the map key */
    uint32_t group_len;              /* key[0..group_len) is the name */
    int64_t minute_s;                /* wall clock, seconds since the epoch, a multiple of 60 */
    uint64_t pushed, done, failed, run_ms;
    bool dirty;                      /* changed since last written */
    struct dbowed_usage *next, *prev; /* every row, oldest first */
};

/* One row of route_log. The strings live in the same allocation. */
struct dbowed_log {
    struct dbowed_log *next;
    int64_t at_ms;                   /* wall clock, ms since the epoch */
    uint64_t count, lease;
    const char *group, *old_queue, *new_queue, *reason; /* not NUL-terminated */
    uint32_t group_len, old_len, new_len, reason_len;
};

struct dbowed;

/* An empty ledger. log_cap, usage_cap: DBOWED_LOG_CAP and DBOWED_USAGE_CAP but in tests.
 * NULL without memory. */
struct dbowed *dbowed_new(uint32_t log_cap, uint32_t usage_cap);
/* Frees every row. dbowed_free(NULL) does nothing. */
void dbowed_free(struct dbowed *o);

/* --- the inbox: b->lock held ------------------------------------------------------------ */

/* Records a route change. old_q / new_q empty: "default". reason is cut to DBOWED_REASON_MAX
 * characters and made valid UTF-8 (a bad byte becomes '?'). When DBOWED_LOG_CAP changes are
 * waiting, the oldest is dropped (counted, and logged once until the log drains). Without
 * memory the change is dropped the same way. */
void dbowed_route_changed(struct dbowed *o, int64_t at_ms, struct sl_str group,
                          struct sl_str old_q, struct sl_str new_q, struct sl_str reason,
                          uint64_t count, uint64_t lease);

/* The broker forgets g (it is about to be freed): keeps what its counters grew since the
 * last snapshot, which would otherwise be lost. Without memory that growth is lost (logged). */
void dbowed_group_gone(struct dbowed *o, const struct group *g);

/* Route changes in the inbox (not yet taken by a snapshot). */
uint64_t dbowed_inbox_n(const struct dbowed *o);

/* --- the syncing thread ----------------------------------------------------------------- */

/* b->lock held. Reads every group of b and the inbox at wall clock now_ms: channels rows
 * that changed become dirty, growth of the counters is added to the usage rows of now_ms's
 * minute, forgotten groups' rows become gone, route changes move to the pending log.
 * Before that, rows written since the last snapshot that will not change again are freed:
 * gone channels, usage rows of past minutes. Returns 0, or SL_ENOMEM when a new row could
 * not be made (that group's change is taken at the next snapshot). */
int dbowed_snapshot(struct dbowed *o, const struct broker *b, int64_t now_ms);

/* A row the database already has (read at the first connection): route_len 0 for NULL;
 * weight in thousandths (0 for one out of GROUP_WEIGHT_MIN..GROUP_WEIGHT_MAX). The next
 * snapshot compares the broker with it, so only differences are written. Returns 0,
 * SL_EBADREQ (a name too long) or SL_ENOMEM. */
int dbowed_load_chan(struct dbowed *o, struct sl_str id, struct sl_str route, uint64_t count,
                     uint64_t done, uint64_t failed, uint32_t weight);

/* The dirty channels rows: sets *rows to an array owned by o (valid until the next call of
 * dbowed_snapshot or dbowed_dirty_*) and returns its length. */
uint32_t dbowed_dirty_chans(struct dbowed *o, struct dbowed_chan ***rows);
/* The dirty usage rows, likewise. */
uint32_t dbowed_dirty_usage(struct dbowed *o, struct dbowed_usage ***rows);
/* Those rows were written with the values they hold. */
void dbowed_chans_written(struct dbowed *o, struct dbowed_chan **rows, uint32_t n);
void dbowed_usage_written(struct dbowed *o, struct dbowed_usage **rows, uint32_t n);

/* The oldest pending route changes, up to max, into out (still pending). Returns how many. */
uint32_t dbowed_log_peek(const struct dbowed *o, struct dbowed_log **out, uint32_t max);
/* The n oldest pending route changes were written: they are freed. */
void dbowed_log_written(struct dbowed *o, uint32_t n);

/* Rows owed now, outside the inbox: dirty channels and usage rows, pending route changes. */
uint64_t dbowed_owed(const struct dbowed *o);

/* Rows lost so far to the caps or to a lack of memory: route changes, usage rows. */
uint64_t dbowed_log_dropped(const struct dbowed *o);
uint64_t dbowed_usage_dropped(const struct dbowed *o);

/* Usage rows held (for tests), and the one of group and minute_s, or NULL. */
uint32_t dbowed_usage_n(const struct dbowed *o);
const struct dbowed_usage *dbowed_usage_find(const struct dbowed *o, struct sl_str group,
                                             int64_t minute_s);
/* The channels row of id, or NULL. */
const struct dbowed_chan *dbowed_chan_find(const struct dbowed *o, struct sl_str id);

#endif
