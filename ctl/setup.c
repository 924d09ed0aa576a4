/* ctl's set-up commands. migrate brings the MySQL schema to this sluice's version. configure
 * checks, one line each, what a running sluice needs: the runtime directory, the broker, and,
 * when a database is configured, that it is reachable, that its schema is this sluice's, and
 * that the user may read and write sluice's tables. Neither command writes a row of sluice's
 * tables (migrate writes sluice_schema's).
 *
 * The database comes from --db (opt_parse has put SLUICE_DB there when --db is absent), else
 * the DB_* variables: db_cfg_resolve. Messages name it by its display URL, never with the
 * password. */
#include "ctl.h"

#include "db.h"
#include "err.h"
#include "json.h"

#include <inttypes.h>
#include <mysqld_error.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define WHY_MAX 1024
#define DB_TIMEOUT_S_MAX 3600
/* migrate's limit on each statement when --timeout is not given: a migration that rebuilds a
 * large table takes longer than a request to the broker, and stopping to wait for it would
 * not stop the server from finishing it. */
#define MIGRATE_TIMEOUT_S_DEFAULT 60

/* The database configuration into cfg (*found false: none configured). Returns 0, or
 * CTL_EXIT_USAGE (printed) for a bad URL or DB_* variable. */
static int
resolve(const struct ctl *ctl, const struct opt_vals *ov, struct db_cfg *cfg, bool *found)
{
    const char *url = ov->v[CTL_OPT_DB];
    char why[WHY_MAX];
    int rv = db_cfg_resolve(cfg, url, why, sizeof(why));

    if (rv < 0) {
        /* why never holds the password: db_cfg_resolve's contract. */
        const char *src = url == NULL || url[0] == '\0' ? ""
                          : ov->from_env[CTL_OPT_DB]    ? "SLUICE_DB: "
                                                        : "--db: ";
        return ctl_usage(ctl, "%s%s", src, why);
    }
    *found = rv == 1;
    return 0;
}

/* The password leaves memory as soon as the connection no longer needs it. */
static void
forget(struct db_cfg *cfg)
{
    explicit_bzero(cfg->pass, sizeof(cfg->pass));
}

/* --timeout in whole seconds for the database client (which counts in seconds), at least 1. */
static unsigned
db_timeout_s(const struct ctl *ctl)
{
    uint64_t s = (ctl->timeout_ms + 999) / 1000;
    return s < 1 ? 1 : s > DB_TIMEOUT_S_MAX ? DB_TIMEOUT_S_MAX : (unsigned)s;
}

/* A refusal for lack of privileges: the error of a statement the user may not run. */
static bool
denied(unsigned err)
{
    return err == ER_TABLEACCESS_DENIED_ERROR || err == ER_DBACCESS_DENIED_ERROR ||
           err == ER_ACCESS_DENIED_ERROR || err == ER_COLUMNACCESS_DENIED_ERROR;
}

/* --- migrate ------------------------------------------------------------------------------- */

int
cmd_migrate(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct db_cfg cfg;
    char why[WHY_MAX];
    bool found = false;
    int rv, from = 0, to = 0;

    (void)argc;
    (void)argv;
    if ((rv = resolve(ctl, ov, &cfg, &found)) != 0) {
        return rv;
    }
    if (!found) {
        return ctl_usage(ctl, "no database configured: give --db "
                              "mysql://USER:PASSWORD@HOST/DBNAME, or set SLUICE_DB (or DB_HOST, "
                              "DB_NAME, DB_USER, DB_PASSWORD)");
    }
    unsigned timeout_s =
        ov->v[CTL_OPT_TIMEOUT] != NULL ? db_timeout_s(ctl) : MIGRATE_TIMEOUT_S_DEFAULT;
    MYSQL *m = db_connect(&cfg, timeout_s, why, sizeof(why));
    forget(&cfg);
    if (m == NULL) {
        fprintf(stderr, "ctl migrate: cannot connect to %s\n", why);
        return CTL_EXIT_UNREACHABLE;
    }
    if (db_migrate(m, &from, &to, why, sizeof(why)) != 0) {
        fprintf(stderr, "ctl migrate: %s: %s\n", cfg.display, why);
        if (denied(mysql_errno(m))) {
            fprintf(stderr, "ctl migrate: migrating needs CREATE, ALTER, INDEX, SELECT and INSERT "
                            "on %s.* (README, MySQL)\n", cfg.name);
        }
        if (to != from) {
            fprintf(stderr, "ctl migrate: the schema is at version %d now\n", to);
        }
        rv = CTL_EXIT_FAILED;
    } else if (from == to) {
        printf("schema: already at version %d\n", to);
    } else {
        printf("schema: version %d -> %d\n", from, to);
    }
    mysql_close(m);
    return rv;
}

/* --- configure ----------------------------------------------------------------------------- */

struct checks {
    int run;
    int failed;
};

static void __attribute__((format(printf, 3, 4)))
check_ok(struct checks *ck, const char *what, const char *fmt, ...)
{
    va_list ap;

    ck->run++;
    printf("%s: ok (", what);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(")\n");
}

static void __attribute__((format(printf, 3, 4)))
check_fail(struct checks *ck, const char *what, const char *fmt, ...)
{
    va_list ap;

    ck->run++;
    ck->failed++;
    printf("%s: FAIL ", what);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

/* The runtime directory holds the sockets (0600, in a 0700 directory: nng creates a socket
 * before it can restrict it) and by default the journal: it must be this user's alone, by the
 * rule every program applies (rundir_check). Returns whether it passed. */
static bool
check_rundir(struct checks *ck)
{
    static const char what[] = "runtime directory";
    static const char prefix[] = "runtime directory ";
    char dir[RUNDIR_MAX], why[RUNDIR_MAX * 2 + 256];

    if (rundir_default(dir, sizeof(dir)) != 0) {
        check_fail(ck, what, "its path is too long: set a shorter SLUICE_DIR");
        return false;
    }
    switch (rundir_check(dir, why, sizeof(why))) {
    case 0:
        check_ok(ck, what, "%s, mode 0700, yours", dir);
        return true;
    case SL_ENOTFOUND:
        check_fail(ck, what, "%s does not exist: start the broker, which creates it, or "
                             "mkdir -m 700 %s", dir, dir);
        return false;
    default:
        /* The line names the check already. */
        check_fail(ck, what, "%s", strncmp(why, prefix, strlen(prefix)) == 0
                                       ? why + strlen(prefix) : why);
        return false;
    }
}

/* Returns CTL_EXIT_USAGE when the broker's address is not a valid one, else 0. */
static int
check_broker(struct checks *ck, struct ctl *ctl)
{
    static const char what[] = "broker";
    struct wire_msg req;
    uint64_t pid;

    wire_msg_init(&req);
    /* ctl_call prints the details of a failure to stderr: after the lines before it. */
    fflush(stdout);
    int rv = ctl_call(ctl, "ping", &req);
    switch (rv) {
    case 0:
        break;
    case CTL_EXIT_USAGE:
        check_fail(ck, what, "'%s' is not a broker address: fix --url (or SLUICE_URL)",
                   ctl->url);
        return rv;
    case CTL_EXIT_UNREACHABLE:
        check_fail(ck, what, "no answer at %s within %" PRIu64 " ms: start the broker, or point "
                             "--url (or SLUICE_URL) at it", ctl->url, ctl->timeout_ms);
        return 0;
    default:
        check_fail(ck, what, "%s did not answer ping as a broker does (see above)", ctl->url);
        return 0;
    }
    if (!WIRE_HAS(&ctl->rep, WK_PID) || !WIRE_HAS(&ctl->rep, WK_VERSION)) {
        check_fail(ck, what, "%s answered ping without its pid and version: is it a sluice "
                             "broker?", ctl->url);
        return 0;
    }
    pid = ctl->rep.v[WK_PID].u;
    struct sl_str version = ctl->rep.v[WK_VERSION].s;
    /* The version is the broker's text: printed through json_write_text, terminal-safe. */
    ck->run++;
    printf("%s: ok (%s, pid %" PRIu64 ", version ", what, ctl->url, pid);
    json_write_text(stdout, version.p, version.n);
    printf(")\n");
    return 0;
}

/* What the broker reads and writes in each table: its columns, one value per column for an
 * INSERT that inserts nothing, and an assignment for an UPDATE that changes nothing. The
 * columns are common/db.c's for DB_SCHEMA_VERSION. */
static const struct table_use {
    const char *table;
    const char *cols;
    const char *values;
    const char *set;
} table_uses[] = {
    { "channels", "id, route, count, done, failed, weight, rate_limit, rate_burst, updated_at",
      "'', NULL, 0, 0, 0, 1, NULL, NULL, NOW(3)", "count = count" },
    { "usage_minute", "group_id, minute, broker, pushed, done, failed, run_ms",
      "'', NOW(), 0, 0, 0, 0, 0", "pushed = pushed" },
    { "route_log", "id, at, group_id, old_queue, new_queue, reason, count, lease",
      "0, NOW(3), '', '', '', '', 0, 0", "count = count" },
};

/* Whether the user may SELECT, INSERT and UPDATE each table, without writing a row: the
 * server checks the privileges of a statement before it finds that the statement matches no
 * row. Inside a transaction rolled back, so that not even an empty change is logged. */
static void
check_tables(struct checks *ck, MYSQL *m, const struct db_cfg *cfg)
{
    static const char *const verbs[] = { "SELECT", "INSERT", "UPDATE" };
    char why[WHY_MAX], sql[512], what[64];

    if (db_exec(m, "START TRANSACTION", why, sizeof(why)) != 0) {
        check_fail(ck, "tables", "cannot start a transaction: %s", why);
        return;
    }
    for (size_t i = 0; i < sizeof(table_uses) / sizeof(table_uses[0]); i++) {
        const struct table_use *t = &table_uses[i];
        snprintf(what, sizeof(what), "table %s", t->table);
        size_t v;
        for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
            switch (v) {
            case 0:
                snprintf(sql, sizeof(sql), "SELECT %s FROM %s LIMIT 0", t->cols, t->table);
                break;
            case 1:
                snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) SELECT %s FROM DUAL WHERE 1 = 0",
                         t->table, t->cols, t->values);
                break;
            default:
                snprintf(sql, sizeof(sql), "UPDATE %s SET %s WHERE 1 = 0", t->table, t->set);
                break;
            }
            if (db_exec(m, sql, why, sizeof(why)) != 0) {
                break;
            }
        }
        if (v == sizeof(verbs) / sizeof(verbs[0])) {
            check_ok(ck, what, "SELECT, INSERT, UPDATE");
        } else if (denied(mysql_errno(m))) {
            check_fail(ck, what, "%s refused: %s: the broker's user needs SELECT, INSERT and "
                                 "UPDATE on %s.* (README, MySQL)", verbs[v], why, cfg->name);
        } else {
            check_fail(ck, what, "%s failed: %s", verbs[v], why);
        }
    }
    /* A failed rollback has nothing to undo: every statement above matched no row. */
    (void)db_exec(m, "ROLLBACK", why, sizeof(why));
}

static void
check_database(struct checks *ck, struct ctl *ctl, struct db_cfg *cfg)
{
    char why[WHY_MAX];

    MYSQL *m = db_connect(cfg, db_timeout_s(ctl), why, sizeof(why));
    forget(cfg);
    if (m == NULL) {
        check_fail(ck, "database", "%s: check the URL (--db, SLUICE_DB or DB_*), that the "
                                   "server runs, the user's password and its grants", why);
        return;
    }
    check_ok(ck, "database", "%s, server %s", cfg->display, mysql_get_server_info(m));
    if (db_check_schema(m, why, sizeof(why)) != 0) {
        check_fail(ck, "schema", "%s", why);
    } else {
        check_ok(ck, "schema", "version %d", DB_SCHEMA_VERSION);
        check_tables(ck, m, cfg);
    }
    mysql_close(m);
}

int
cmd_configure(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct checks ck = { 0, 0 };
    struct db_cfg cfg;
    bool found = false, skip_broker = false;
    int rv;

    (void)argc;
    (void)argv;
    /* A bad database configuration is a usage error, found before anything is checked. */
    if ((rv = resolve(ctl, ov, &cfg, &found)) != 0) {
        return rv;
    }
    /* The runtime directory matters when the broker is reached through it. */
    const char *url = ov->v[OPT_URL];
    if (url != NULL && strncmp(url, "ipc://", 6) != 0) {
        printf("runtime directory: skipped (the broker is at %s)\n", url);
    } else if (!check_rundir(&ck) && url == NULL) {
        /* The broker's socket would be in a directory just found wanting: not asked. */
        check_fail(&ck, "broker", "not asked: its socket is in the runtime directory above");
        skip_broker = true;
    }
    int usage = skip_broker ? 0 : check_broker(&ck, ctl);
    if (found) {
        check_database(&ck, ctl, &cfg);
    } else {
        printf("database: not configured (optional)\n");
    }
    if (ck.failed == 0) {
        printf("configure: all %d check%s passed\n", ck.run, ck.run == 1 ? "" : "s");
    } else {
        printf("configure: %d of %d check%s failed\n", ck.failed, ck.run, ck.run == 1 ? "" : "s");
    }
    return usage != 0 ? usage : ck.failed != 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}
