#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- configuration ------------------------------------------------------------------------- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Copies s[0..n) into out (cap bytes with the NUL), decoding %XX. -1 if it does not fit, an
 * escape is malformed, or it decodes to a NUL. */
static int
unescape(char *out, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0) {
                return -1;
            }
            c = (char)(hi * 16 + lo);
            if (c == '\0') {
                return -1;
            }
            i += 2;
        }
        if (k + 1 >= cap) {
            return -1;
        }
        out[k++] = c;
    }
    out[k] = '\0';
    return 0;
}

static void
set_display(struct db_cfg *cfg)
{
    const char *pw = cfg->pass[0] != '\0' ? ":***" : "";
    if (cfg->socket[0] != '\0') {
        snprintf(cfg->display, sizeof(cfg->display), "mysql://%s%s@localhost/%s?socket=%s",
                 cfg->user, pw, cfg->name, cfg->socket);
    } else if (cfg->port != 0) {
        snprintf(cfg->display, sizeof(cfg->display), "mysql://%s%s@%s:%u/%s", cfg->user, pw,
                 cfg->host, cfg->port, cfg->name);
    } else {
        snprintf(cfg->display, sizeof(cfg->display), "mysql://%s%s@%s/%s", cfg->user, pw,
                 cfg->host, cfg->name);
    }
}

static int
parse_port(const char *s, size_t n, unsigned *port)
{
    unsigned v = 0;
    if (n == 0 || n > 5) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535) {
        return -1;
    }
    *port = v;
    return 0;
}

static int
parse_url(struct db_cfg *cfg, const char *url, char *why, size_t cap)
{
    static const char scheme[] = "mysql://";
    memset(cfg, 0, sizeof(*cfg));
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(why, cap, "a database URL starts with mysql://");
        return -1;
    }
    const char *p = url + sizeof(scheme) - 1;
    /* The credentials end at the last '@' before the path: a password may hold '@' only
     * escaped (%40), but be lenient with a raw one. */
    const char *slash = strchr(p, '/');
    if (slash == NULL) {
        snprintf(why, cap, "the database URL names no database (mysql://USER:PASS@HOST/DBNAME)");
        return -1;
    }
    const char *at = NULL;
    for (const char *q = p; q < slash; q++) {
        if (*q == '@') {
            at = q;
        }
    }
    if (at == NULL) {
        snprintf(why, cap, "the database URL names no user (mysql://USER:PASS@HOST/DBNAME)");
        return -1;
    }
    const char *colon = memchr(p, ':', (size_t)(at - p));
    size_t ulen = (size_t)((colon != NULL ? colon : at) - p);
    if (ulen == 0 || unescape(cfg->user, sizeof(cfg->user), p, ulen) != 0) {
        snprintf(why, cap, "the database URL's user is empty, too long or badly escaped");
        return -1;
    }
    if (colon != NULL &&
        unescape(cfg->pass, sizeof(cfg->pass), colon + 1, (size_t)(at - colon - 1)) != 0) {
        snprintf(why, cap, "the database URL's password is too long or badly escaped");
        return -1;
    }
    const char *h = at + 1;
    const char *hcolon = memchr(h, ':', (size_t)(slash - h));
    size_t hlen = (size_t)((hcolon != NULL ? hcolon : slash) - h);
    if (hlen >= sizeof(cfg->host)) {
        snprintf(why, cap, "the database URL's host is too long");
        return -1;
    }
    memcpy(cfg->host, h, hlen);
    cfg->host[hlen] = '\0';
    if (hcolon != NULL && parse_port(hcolon + 1, (size_t)(slash - hcolon - 1), &cfg->port) != 0) {
        snprintf(why, cap, "the database URL's port must be 1 to 65535");
        return -1;
    }
    const char *d = slash + 1;
    const char *qm = strchr(d, '?');
    size_t dlen = qm != NULL ? (size_t)(qm - d) : strlen(d);
    if (dlen == 0 || unescape(cfg->name, sizeof(cfg->name), d, dlen) != 0) {
        snprintf(why, cap, "the database URL's database name is empty, too long or badly escaped");
        return -1;
    }
    if (qm != NULL) {
        static const char sock[] = "socket=";
        const char *o = qm + 1;
        if (strncmp(o, sock, sizeof(sock) - 1) != 0 ||
            unescape(cfg->socket, sizeof(cfg->socket), o + sizeof(sock) - 1,
                     strlen(o + sizeof(sock) - 1)) != 0 ||
            cfg->socket[0] == '\0') {
            snprintf(why, cap, "the database URL's only option is ?socket=/path (not too long)");
            return -1;
        }
    }
    if (cfg->socket[0] == '\0' && cfg->host[0] == '\0') {
        snprintf(why, cap, "the database URL names no host (or ?socket=)");
        return -1;
    }
    set_display(cfg);
    return 0;
}

int
db_cfg_parse(struct db_cfg *cfg, const char *url, char *why, size_t cap)
{
    /* A URL refused after its credentials were read must not leave the password behind. */
    if (parse_url(cfg, url, why, cap) != 0) {
        memset(cfg, 0, sizeof(*cfg));
        return -1;
    }
    return 0;
}

static int
copy_env(char *out, size_t cap, const char *var, char *why, size_t whycap)
{
    const char *v = getenv(var);
    if (v == NULL) {
        v = "";
    }
    if (strlen(v) >= cap) {
        snprintf(why, whycap, "%s is too long", var);
        return -1;
    }
    strcpy(out, v);
    return 0;
}

int
db_cfg_resolve(struct db_cfg *cfg, const char *url, char *why, size_t cap)
{
    memset(cfg, 0, sizeof(*cfg));
    if (url == NULL || url[0] == '\0') {
        url = getenv("SLUICE_DB");
    }
    if (url != NULL && url[0] != '\0') {
        return db_cfg_parse(cfg, url, why, cap) == 0 ? 1 : -1;
    }
    const char *host = getenv("DB_HOST");
    if (host == NULL || host[0] == '\0') {
        return 0;
    }
    if (copy_env(cfg->host, sizeof(cfg->host), "DB_HOST", why, cap) != 0 ||
        copy_env(cfg->name, sizeof(cfg->name), "DB_NAME", why, cap) != 0 ||
        copy_env(cfg->user, sizeof(cfg->user), "DB_USER", why, cap) != 0 ||
        copy_env(cfg->pass, sizeof(cfg->pass), "DB_PASSWORD", why, cap) != 0) {
        memset(cfg, 0, sizeof(*cfg));
        return -1;
    }
    /* DB_HOST may be host:port, or a socket path. */
    char *c = strrchr(cfg->host, ':');
    if (cfg->host[0] == '/') {
        memmove(cfg->socket, cfg->host, strlen(cfg->host) + 1);
        cfg->host[0] = '\0';
    } else if (c != NULL) {
        if (parse_port(c + 1, strlen(c + 1), &cfg->port) != 0) {
            snprintf(why, cap, "DB_HOST's port must be 1 to 65535");
            memset(cfg, 0, sizeof(*cfg));
            return -1;
        }
        *c = '\0';
    }
    const char *port = getenv("DB_PORT");
    if (port != NULL && port[0] != '\0' && parse_port(port, strlen(port), &cfg->port) != 0) {
        snprintf(why, cap, "DB_PORT must be 1 to 65535");
        memset(cfg, 0, sizeof(*cfg));
        return -1;
    }
    if (cfg->name[0] == '\0' || cfg->user[0] == '\0') {
        snprintf(why, cap, "DB_HOST is set but DB_NAME or DB_USER is not");
        memset(cfg, 0, sizeof(*cfg));
        return -1;
    }
    set_display(cfg);
    return 1;
}

/* --- connecting and running statements ----------------------------------------------------- */

MYSQL *
db_connect(const struct db_cfg *cfg, unsigned timeout_s, char *why, size_t cap)
{
    MYSQL *m = mysql_init(NULL);
    if (m == NULL) {
        snprintf(why, cap, "out of memory for a database connection");
        return NULL;
    }
    unsigned t = timeout_s;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &t);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &t);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* No option files: the configuration is exactly what sluice was given. */
    if (mysql_real_connect(m, cfg->socket[0] != '\0' ? "localhost" : cfg->host, cfg->user,
                           cfg->pass, cfg->name, cfg->port,
                           cfg->socket[0] != '\0' ? cfg->socket : NULL, 0) == NULL) {
        snprintf(why, cap, "%s: %s", cfg->display, mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    /* Every time sluice writes or reads is UTC, whatever the server's zone. */
    if (mysql_query(m, "SET time_zone = '+00:00'") != 0) {
        snprintf(why, cap, "%s: %s", cfg->display, mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

int
db_exec(MYSQL *m, const char *sql, char *why, size_t cap)
{
    if (mysql_query(m, sql) != 0) {
        snprintf(why, cap, "%s", mysql_error(m));
        return -1;
    }
    /* A statement that returned rows anyway: drain them. */
    MYSQL_RES *r = mysql_store_result(m);
    if (r != NULL) {
        mysql_free_result(r);
    }
    return 0;
}

/* --- the schema ---------------------------------------------------------------------------- */

#define NAME_COL "VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin"

/* migrations[k] brings the schema from version k to k + 1. Each statement can run again, so
 * a migration cut short (a lost connection) completes when `ctl migrate` is run again. */
static const char *const migration_1[] = {
    "CREATE TABLE IF NOT EXISTS channels ("
    " id " NAME_COL " NOT NULL PRIMARY KEY,"
    " route " NAME_COL " NULL,"
    " count BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " done BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " failed BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " updated_at DATETIME(3) NOT NULL"
    ") ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS usage_minute ("
    " group_id " NAME_COL " NOT NULL,"
    " minute DATETIME NOT NULL,"
    " broker BIGINT UNSIGNED NOT NULL,"
    " pushed BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " done BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " failed BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " run_ms BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " PRIMARY KEY (group_id, minute, broker),"
    " KEY by_minute (minute)"
    ") ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS route_log ("
    " id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " at DATETIME(3) NOT NULL,"
    " group_id " NAME_COL " NOT NULL,"
    " old_queue " NAME_COL " NOT NULL,"
    " new_queue " NAME_COL " NOT NULL,"
    " reason VARCHAR(256) CHARACTER SET utf8mb4 NOT NULL,"
    " count BIGINT UNSIGNED NOT NULL,"
    " lease BIGINT UNSIGNED NOT NULL,"
    " KEY by_group (group_id, at)"
    ") ENGINE=InnoDB",
    NULL,
};

/* A group's weight: what the broker's group.weight sets, to the thousandth it keeps. */
static const char *const migration_2[] = {
    "ALTER TABLE channels ADD COLUMN IF NOT EXISTS"
    " weight DECIMAL(7,3) NOT NULL DEFAULT 1.000 AFTER failed",
    NULL,
};

/* A group's start rate (group.limit), set by whoever keeps plans: jobs per second to the
 * thousandth, and the burst; NULL: no limit (the burst: the broker's default). The broker
 * reads them at start and never writes them. */
static const char *const migration_3[] = {
    "ALTER TABLE channels ADD COLUMN IF NOT EXISTS"
    " rate_limit DECIMAL(13,3) NULL DEFAULT NULL AFTER weight",
    "ALTER TABLE channels ADD COLUMN IF NOT EXISTS"
    " rate_burst INT UNSIGNED NULL DEFAULT NULL AFTER rate_limit",
    NULL,
};

static const char *const *const migrations[DB_SCHEMA_VERSION] = { migration_1, migration_2,
                                                                   migration_3 };

int
db_schema_version(MYSQL *m, int *version, char *why, size_t cap)
{
    *version = 0;
    if (mysql_query(m, "SELECT COUNT(*) FROM information_schema.tables WHERE "
                       "table_schema = DATABASE() AND table_name = 'sluice_schema'") != 0) {
        snprintf(why, cap, "%s", mysql_error(m));
        return -1;
    }
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row = r != NULL ? mysql_fetch_row(r) : NULL;
    bool exists = row != NULL && row[0] != NULL && strcmp(row[0], "0") != 0;
    mysql_free_result(r);
    if (!exists) {
        return 0;
    }
    if (mysql_query(m, "SELECT COALESCE(MAX(version), 0) FROM sluice_schema") != 0) {
        snprintf(why, cap, "%s", mysql_error(m));
        return -1;
    }
    r = mysql_store_result(m);
    row = r != NULL ? mysql_fetch_row(r) : NULL;
    if (row == NULL || row[0] == NULL) {
        mysql_free_result(r);
        snprintf(why, cap, "cannot read sluice_schema");
        return -1;
    }
    *version = atoi(row[0]);
    mysql_free_result(r);
    return 0;
}

int
db_migrate(MYSQL *m, int *from, int *to, char *why, size_t cap)
{
    int v;
    if (db_schema_version(m, &v, why, cap) != 0) {
        return -1;
    }
    *from = *to = v;
    if (v < 0) {
        snprintf(why, cap, "sluice_schema holds version %d, which no sluice writes", v);
        return -1;
    }
    if (v > DB_SCHEMA_VERSION) {
        snprintf(why, cap,
                 "the database has schema version %d, newer than this sluice's %d: upgrade "
                 "sluice",
                 v, DB_SCHEMA_VERSION);
        return -1;
    }
    if (v == 0 && db_exec(m,
                          "CREATE TABLE IF NOT EXISTS sluice_schema ("
                          " version INT NOT NULL PRIMARY KEY,"
                          " applied_at DATETIME(3) NOT NULL"
                          ") ENGINE=InnoDB",
                          why, cap) != 0) {
        return -1;
    }
    for (int k = v; k < DB_SCHEMA_VERSION; k++) {
        /* migrations[k] brings version k to k + 1 */
        for (const char *const *stmt = migrations[k]; *stmt != NULL; stmt++) {
            if (db_exec(m, *stmt, why, cap) != 0) {
                return -1;
            }
        }
        char sql[128];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO sluice_schema (version, applied_at) VALUES (%d, NOW(3))", k + 1);
        if (db_exec(m, sql, why, cap) != 0) {
            return -1;
        }
        *to = k + 1;
    }
    return 0;
}

int
db_check_schema(MYSQL *m, char *why, size_t cap)
{
    int v;
    if (db_schema_version(m, &v, why, cap) != 0) {
        return -1;
    }
    if (v < DB_SCHEMA_VERSION) {
        snprintf(why, cap, "the database has schema version %d, this sluice needs %d: run "
                 "`ctl migrate`", v, DB_SCHEMA_VERSION);
        return -1;
    }
    if (v > DB_SCHEMA_VERSION) {
        snprintf(why, cap, "the database has schema version %d, newer than this sluice's %d: "
                 "upgrade sluice", v, DB_SCHEMA_VERSION);
        return -1;
    }
    return 0;
}
