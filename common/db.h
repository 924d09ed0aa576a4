/* MySQL (MariaDB Connector/C) for sluice: where the database is, connecting, and the schema.
 *
 * Configuration, first found wins: the --db URL, SLUICE_DB, or the variables DB_HOST, DB_NAME,
 * DB_USER, DB_PASSWORD (and DB_PORT) of the original demo. A URL is
 *     mysql://USER[:PASSWORD]@HOST[:PORT]/DBNAME[?socket=/path/to.sock]
 * with %XX escapes allowed in USER, PASSWORD and DBNAME. The password never appears in a log
 * line or message: db_cfg.display is the URL with it replaced by "***".
 *
 * The schema is versioned: table sluice_schema holds one row per migration applied. Version
 * DB_SCHEMA_VERSION (this binary's) has these tables:
 *     channels      (id, route, count, done, failed, weight, rate_limit, rate_burst,
 *                    updated_at)                                          one row per group
 *     usage_minute  (group_id, minute, broker, pushed, done, failed, run_ms)
 *     route_log     (id, at, group_id, old_queue, new_queue, reason, count, lease)
 * Names are ASCII (the wire's name rule), compared byte for byte. */
#ifndef SLUICE_DB_H
#define SLUICE_DB_H

#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1: the tables; 2: channels.weight, DECIMAL(7,3) (a group's weight, 0.01 to 1000, to the
 * thousandth the broker keeps); 3: channels.rate_limit DECIMAL(13,3) and rate_burst INT
 * UNSIGNED, both NULL by default (a group's start rate, read at start). To change the schema,
 * add a migration in db.c and bump this: a broker refuses a database of another version, ctl
 * migrate upgrades an older one. */
#define DB_SCHEMA_VERSION 3

struct db_cfg {
    char user[129];
    char pass[257];
    char host[256];      /* "" with a socket */
    unsigned port;       /* 0: the default (3306) */
    char socket[256];    /* "" unless ?socket= */
    char name[65];       /* the database */
    char display[700];   /* for logs and messages: no password */
};

/* Resolves the configuration from url (the --db option; NULL if not given), then the
 * environment. Returns 1 (cfg filled), 0 (no database configured: cfg zeroed), or -1: a bad
 * URL or variable, with why saying what is wrong (never the password). */
int db_cfg_resolve(struct db_cfg *cfg, const char *url, char *why, size_t cap);

/* Parses one URL into cfg. Returns 0 or -1 with why (cfg zeroed). */
int db_cfg_parse(struct db_cfg *cfg, const char *url, char *why, size_t cap);

/* Connects (connect, read and write timeouts of timeout_s seconds; utf8mb4; autocommit on;
 * the session's time zone UTC, so every DATETIME sluice writes or compares is UTC).
 * Returns a handle, or NULL with why: the server's error text and the display URL. */
MYSQL *db_connect(const struct db_cfg *cfg, unsigned timeout_s, char *why, size_t cap);

/* Runs one statement without results; 0 or -1 with why (the server's error). */
int db_exec(MYSQL *m, const char *sql, char *why, size_t cap);

/* The schema version in the database: 0 when it has no sluice_schema table (empty). Returns
 * 0 or -1 with why. */
int db_schema_version(MYSQL *m, int *version, char *why, size_t cap);

/* Brings the schema to DB_SCHEMA_VERSION, each migration in order, each recorded in
 * sluice_schema. *from and *to say what it found and left. A database newer than this binary
 * is refused (-1, why says both versions and to upgrade sluice). Running it again changes
 * nothing. Returns 0 or -1 with why. */
int db_migrate(MYSQL *m, int *from, int *to, char *why, size_t cap);

/* Checks that the schema is exactly DB_SCHEMA_VERSION: 0, or -1 with why (not migrated: run
 * `ctl migrate`; newer: upgrade sluice). */
int db_check_schema(MYSQL *m, char *why, size_t cap);

#endif
