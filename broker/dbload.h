/* Reading the channels table at the broker's first connection to its database (--db): every
 * row into the ledger of what is owed (broker/dbowed.h), so that only differences are written
 * back; and, when the broker has no journal (channels is then the only record of them), each
 * group's route, weight and start rate (rate_limit, rate_burst: never written by the broker),
 * unless the broker already set them since it started: a route to a missing queue creates it
 * (default settings, logged); a name that is not valid, a weight outside 0.01 to 1000, or a
 * rate_limit outside 0.001 to 1000000 or rate_burst outside 1 to 1000000, is skipped with a
 * warning (event=db.route_skipped, db.weight_skipped, db.limit_skipped). */
#ifndef SLUICE_DBLOAD_H
#define SLUICE_DBLOAD_H

#include "broker.h"
#include "dbowed.h"

#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>

/* Reads channels through m into owed and, with load_routes, routes, weights and limits b's groups
 * (taking b->lock for that, so it must not be held). Blocks on the database. Returns 0, or
 * -1 with why (the database's error, or no memory); b may have taken some rows then. */
int dbload_channels(MYSQL *m, struct broker *b, struct dbowed *owed, bool load_routes,
                    char *why, size_t cap);

#endif
