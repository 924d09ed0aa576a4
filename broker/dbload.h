/* Reading the channels table at the broker's first connection to its database (--db): every
 * row into the ledger of what is owed (broker/dbowed.h), so that only differences are written
 * back; and, when the broker has no journal (channels is then the only record of them), each
 * group's route and weight, unless the broker already set them since it started: a route to
 * a missing queue creates it (default settings, logged); a name that is not valid, or a
 * weight outside 0.01 to 1000, is skipped with a warning (event=db.route_skipped,
 * db.weight_skipped). */
#ifndef SLUICE_DBLOAD_H
#define SLUICE_DBLOAD_H

#include "broker.h"
#include "dbowed.h"

#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>

/* Reads channels through m into owed and, with load_routes, routes and weights b's groups
 * (taking b->lock for that, so it must not be held). Blocks on the database. Returns 0, or
 * -1 with why (the database's error, or no memory); b may have taken some rows then. */
int dbload_channels(MYSQL *m, struct broker *b, struct dbowed *owed, bool load_routes,
                    char *why, size_t cap);

#endif
