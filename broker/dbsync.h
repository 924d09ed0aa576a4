/* Keeping MySQL in step with the broker (--db): the channels table (one row per group), the
 * per-minute usage of each group (usage_minute) and the log of route changes (route_log),
 * written by a thread of its own once a second. MySQL is never on a request's path: the
 * change path (broker/change.h) only notes route changes in memory (broker/dbowed.h), and the
 * thread holds b->lock only to read the broker. When the database is down, the thread logs it
 * once (event=db.down), keeps counting, retries with backoff (1 s doubling to 30 s), and
 * writes everything owed when it is back (event=db.up owed=N).
 *
 * Times in the database are UTC (db_connect sets the session's time zone), NOW(3) included.
 * Every statement is a prepared statement; rows go in batches of DBSYNC_BATCH. */
#ifndef SLUICE_DBSYNC_H
#define SLUICE_DBSYNC_H

#include "broker.h"
#include "db.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DBSYNC_BATCH 500u              /* rows per statement */
#define DBSYNC_PERIOD_MS 1000          /* between two snapshots */
#define DBSYNC_RETRY_MIN_MS 1000       /* first retry after a failure; doubles */
#define DBSYNC_RETRY_MAX_MS 30000
#define DBSYNC_TIMEOUT_S 5             /* connect, read and write timeouts */

struct dbsync;

/* Attaches a database to b (b->db), which must not serve requests yet. Connects: when the
 * database cannot be reached, logs event=db.down once and returns 0 (the thread will retry).
 * Once connected, checks the schema (a schema other than this sluice's: -1, why says what to
 * do), reads channels, and with load_routes (no journal: channels holds the routes and
 * weights) routes and weights each group of channels that has them (broker/dbload.h). Other
 * errors: -1 with why. b->lock not held. */
int dbsync_new(struct dbsync **dp, struct broker *b, const struct db_cfg *cfg, bool load_routes,
               char *why, size_t cap);

/* Starts the thread. Returns 0 or SL_ENOMEM. */
int dbsync_start(struct dbsync *d);

/* Stops the thread after one last write (if the database is up; a write that hangs is cut by
 * DBSYNC_TIMEOUT_S). Blocks. b->lock not held. Does nothing if the thread is not running. */
void dbsync_stop(struct dbsync *d);

/* Detaches from b and frees, closing the connection. dbsync_free(NULL) does nothing. The
 * thread must be stopped. b->lock not held. */
void dbsync_free(struct dbsync *d);

/* --- for the broker (change.c, broker.c): b->lock held; d may be NULL (no database) ----- */

/* A route change of group g (see dbowed_route_changed), with g's count now: from queue
 * old_q to new_q ("": default), why (the request's reason, or the op's name), lease (0:
 * none). */
void dbsync_route_changed(struct dbsync *d, int64_t at_ms, const struct group *g,
                          struct sl_str old_q, struct sl_str new_q, struct sl_str why,
                          uint64_t lease);

/* The broker forgets g. */
void dbsync_group_gone(struct dbsync *d, const struct group *g);

/* The ledger of what is owed (for tests: the thread must not be running). */
struct dbowed *dbsync_ledger(struct dbsync *d);

/* "off" (d NULL), "up" or "down". */
const char *dbsync_state(const struct dbsync *d);

/* Rows waiting to be written (0 for NULL). */
uint64_t dbsync_owed(const struct dbsync *d);

#endif
