#include "dbsync.h"

#include "clock.h"
#include "dbload.h"
#include "dbowed.h"
#include "err.h"
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The three tables written, each as one multi-row statement: head, rows of placeholders,
 * tail. Rows hold totals (usage) or the current state (channels), so that a statement sent
 * again after a failure whose outcome is unknown changes nothing. */
enum { T_CHANNELS, T_USAGE, T_LOG, T_COUNT };

#define COLS_MAX 7

static const struct table {
    const char *head, *row, *tail;
    unsigned cols;
} tables[T_COUNT] = {
    /* weight: thousandths bound as an integer, divided exactly into the DECIMAL(7,3). */
    [T_CHANNELS] = { "INSERT INTO channels (id, route, count, done, failed, weight, updated_at) "
                     "VALUES ",
                     "(?, ?, ?, ?, ?, ? / 1000, NOW(3))",
                     " ON DUPLICATE KEY UPDATE route = VALUES(route), count = VALUES(count),"
                     " done = VALUES(done), failed = VALUES(failed), weight = VALUES(weight),"
                     " updated_at = VALUES(updated_at)",
                     6 },
    [T_USAGE] = { "INSERT INTO usage_minute (group_id, minute, broker, pushed, done, failed, "
                  "run_ms) VALUES ",
                  "(?, ?, ?, ?, ?, ?, ?)",
                  " ON DUPLICATE KEY UPDATE pushed = VALUES(pushed), done = VALUES(done),"
                  " failed = VALUES(failed), run_ms = VALUES(run_ms)",
                  7 },
    [T_LOG] = { "INSERT INTO route_log (at, group_id, old_queue, new_queue, reason, count, lease)"
                " VALUES ",
                "(?, ?, ?, ?, ?, ?, ?)", "", 7 },
};

struct stmt {
    MYSQL_STMT *st;
    uint32_t rows;
};

struct dbsync {
    struct broker *b;
    struct db_cfg cfg;
    bool load_routes;              /* routes come from channels (no journal) */
    struct dbowed *owed;           /* inbox: b->lock; the rest: the thread */
    uint64_t broker_ms;            /* usage_minute.broker: this run's start, ms since epoch */

    /* The thread's (dbsync_new's before it starts). */
    MYSQL *m;                      /* NULL: not connected */
    struct stmt st[T_COUNT][2];    /* [0]: DBSYNC_BATCH rows; [1]: the last shorter batch */
    bool loaded;                   /* channels read once */
    bool down_logged;              /* this outage has been logged */
    int64_t retry_at_ns;           /* monotonic: next connection attempt */
    int64_t backoff_ms;
    MYSQL_BIND bind[DBSYNC_BATCH * COLS_MAX];
    unsigned long len[DBSYNC_BATCH * COLS_MAX];
    MYSQL_TIME tm[DBSYNC_BATCH];
    struct dbowed_log *logs[DBSYNC_BATCH];

    /* Read by `stats` on other threads. */
    atomic_bool up;
    atomic_uint_fast64_t owed_n;   /* after the last cycle */

    pthread_t thread;
    bool running;
    pthread_mutex_t mu;            /* guards stop; cv wakes the thread to stop */
    pthread_cond_t cv;
    bool stop;
};

/* --- statements and binding --------------------------------------------------------------- */

static void
close_stmts(struct dbsync *d)
{
    for (int t = 0; t < T_COUNT; t++) {
        for (int k = 0; k < 2; k++) {
            if (d->st[t][k].st != NULL) {
                mysql_stmt_close(d->st[t][k].st);
            }
            d->st[t][k] = (struct stmt){ NULL, 0 };
        }
    }
}

/* The prepared statement inserting rows rows into table t. NULL with why on failure. */
static MYSQL_STMT *
prepare(struct dbsync *d, int t, uint32_t rows, char *why, size_t cap)
{
    struct stmt *s = &d->st[t][rows == DBSYNC_BATCH ? 0 : 1];
    if (s->st != NULL && s->rows == rows) {
        return s->st;
    }
    if (s->st != NULL) {
        mysql_stmt_close(s->st);
        *s = (struct stmt){ NULL, 0 };
    }
    const struct table *tb = &tables[t];
    size_t rl = strlen(tb->row);
    size_t n = strlen(tb->head) + rows * (rl + 1) + strlen(tb->tail) + 1;
    char *sql = malloc(n);
    if (sql == NULL) {
        snprintf(why, cap, "out of memory for a statement");
        return NULL;
    }
    char *p = sql;
    p += sprintf(p, "%s", tb->head);
    for (uint32_t i = 0; i < rows; i++) {
        if (i > 0) {
            *p++ = ',';
        }
        memcpy(p, tb->row, rl);
        p += rl;
    }
    p += sprintf(p, "%s", tb->tail);
    MYSQL_STMT *st = mysql_stmt_init(d->m);
    if (st == NULL) {
        free(sql);
        snprintf(why, cap, "out of memory for a statement");
        return NULL;
    }
    if (mysql_stmt_prepare(st, sql, (unsigned long)(p - sql)) != 0) {
        snprintf(why, cap, "%s", mysql_stmt_error(st));
        mysql_stmt_close(st);
        free(sql);
        return NULL;
    }
    free(sql);
    *s = (struct stmt){ st, rows };
    return st;
}

static void
bind_str(struct dbsync *d, unsigned k, const char *p, uint32_t n)
{
    MYSQL_BIND *bd = &d->bind[k];
    memset(bd, 0, sizeof(*bd));
    d->len[k] = n;
    bd->buffer_type = MYSQL_TYPE_STRING;
    bd->buffer = (void *)(uintptr_t)p;
    bd->buffer_length = n;
    bd->length = &d->len[k];
}

static void
bind_null(struct dbsync *d, unsigned k)
{
    memset(&d->bind[k], 0, sizeof(d->bind[k]));
    d->bind[k].buffer_type = MYSQL_TYPE_NULL;
}

static void
bind_u64(struct dbsync *d, unsigned k, const uint64_t *v)
{
    MYSQL_BIND *bd = &d->bind[k];
    memset(bd, 0, sizeof(*bd));
    bd->buffer_type = MYSQL_TYPE_LONGLONG;
    bd->buffer = (void *)(uintptr_t)v;
    bd->is_unsigned = 1;
}

static void
bind_u32(struct dbsync *d, unsigned k, const uint32_t *v)
{
    MYSQL_BIND *bd = &d->bind[k];
    memset(bd, 0, sizeof(*bd));
    bd->buffer_type = MYSQL_TYPE_LONG;
    bd->buffer = (void *)(uintptr_t)v;
    bd->is_unsigned = 1;
}

/* Binds the UTC date and time of ms (since the epoch) kept in d->tm[row]. */
static void
bind_time(struct dbsync *d, unsigned k, uint32_t row, int64_t ms)
{
    MYSQL_TIME *t = &d->tm[row];
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    memset(t, 0, sizeof(*t));
    t->year = (unsigned)tm.tm_year + 1900;
    t->month = (unsigned)tm.tm_mon + 1;
    t->day = (unsigned)tm.tm_mday;
    t->hour = (unsigned)tm.tm_hour;
    t->minute = (unsigned)tm.tm_min;
    t->second = (unsigned)tm.tm_sec;
    t->second_part = (unsigned long)(ms % 1000) * 1000;
    t->time_type = MYSQL_TIMESTAMP_DATETIME;
    MYSQL_BIND *bd = &d->bind[k];
    memset(bd, 0, sizeof(*bd));
    bd->buffer_type = MYSQL_TYPE_DATETIME;
    bd->buffer = t;
    bd->buffer_length = sizeof(*t);
}

/* Runs table t's statement for rows rows, bound in d->bind. 0 or -1 with why. */
static int
execute(struct dbsync *d, int t, uint32_t rows, char *why, size_t cap)
{
    MYSQL_STMT *st = prepare(d, t, rows, why, cap);
    if (st == NULL) {
        return -1;
    }
    if (mysql_stmt_bind_param(st, d->bind) != 0 || mysql_stmt_execute(st) != 0) {
        snprintf(why, cap, "%s", mysql_stmt_error(st));
        return -1;
    }
    return 0;
}

/* --- writing what is owed ------------------------------------------------------------------ */

/* Rows in the next statement when left are still to go. */
static uint32_t
batch(uint32_t left)
{
    return left < DBSYNC_BATCH ? left : DBSYNC_BATCH;
}

static int
write_chans(struct dbsync *d, uint32_t *written, char *why, size_t cap)
{
    struct dbowed_chan **rows;
    uint32_t n = dbowed_dirty_chans(d->owed, &rows);
    for (uint32_t i = 0, k; i < n; i += k) {
        k = batch(n - i);
        for (uint32_t r = 0; r < k; r++) {
            struct dbowed_chan *c = rows[i + r];
            unsigned col = r * tables[T_CHANNELS].cols;
            bind_str(d, col, c->id, c->id_len);
            if (c->route_len > 0) {
                bind_str(d, col + 1, c->route, c->route_len);
            } else {
                bind_null(d, col + 1);
            }
            bind_u64(d, col + 2, &c->count);
            bind_u64(d, col + 3, &c->done);
            bind_u64(d, col + 4, &c->failed);
            bind_u32(d, col + 5, &c->weight);
        }
        if (execute(d, T_CHANNELS, k, why, cap) != 0) {
            return -1;
        }
        dbowed_chans_written(d->owed, rows + i, k);
        *written += k;
    }
    return 0;
}

static int
write_usage(struct dbsync *d, uint32_t *written, char *why, size_t cap)
{
    struct dbowed_usage **rows;
    uint32_t n = dbowed_dirty_usage(d->owed, &rows);
    for (uint32_t i = 0, k; i < n; i += k) {
        k = batch(n - i);
        for (uint32_t r = 0; r < k; r++) {
            struct dbowed_usage *u = rows[i + r];
            unsigned col = r * tables[T_USAGE].cols;
            bind_str(d, col, u->key, u->group_len);
            bind_time(d, col + 1, r, u->minute_s * 1000);
            bind_u64(d, col + 2, &d->broker_ms);
            bind_u64(d, col + 3, &u->pushed);
            bind_u64(d, col + 4, &u->done);
            bind_u64(d, col + 5, &u->failed);
            bind_u64(d, col + 6, &u->run_ms);
        }
        if (execute(d, T_USAGE, k, why, cap) != 0) {
            return -1;
        }
        dbowed_usage_written(d->owed, rows + i, k);
        *written += k;
    }
    return 0;
}

static int
write_log(struct dbsync *d, uint32_t *written, char *why, size_t cap)
{
    uint32_t k;
    while ((k = dbowed_log_peek(d->owed, d->logs, DBSYNC_BATCH)) > 0) {
        for (uint32_t r = 0; r < k; r++) {
            struct dbowed_log *l = d->logs[r];
            unsigned col = r * tables[T_LOG].cols;
            bind_time(d, col, r, l->at_ms);
            bind_str(d, col + 1, l->group, l->group_len);
            bind_str(d, col + 2, l->old_queue, l->old_len);
            bind_str(d, col + 3, l->new_queue, l->new_len);
            bind_str(d, col + 4, l->reason, l->reason_len);
            bind_u64(d, col + 5, &l->count);
            bind_u64(d, col + 6, &l->lease);
        }
        if (execute(d, T_LOG, k, why, cap) != 0) {
            return -1;
        }
        dbowed_log_written(d->owed, k);
        *written += k;
    }
    return 0;
}

/* --- connecting ---------------------------------------------------------------------------- */

static void
disconnect(struct dbsync *d)
{
    close_stmts(d);
    if (d->m != NULL) {
        mysql_close(d->m);
        d->m = NULL;
    }
}

/* The database failed (why): disconnect, log the outage once, retry after the backoff. */
static void
fail(struct dbsync *d, const char *why)
{
    disconnect(d);
    atomic_store(&d->up, false);
    if (!d->down_logged) {
        char q[600];
        d->down_logged = true;
        LOG(LOG_WARN, "db.down", "url=\"%s\" reason=%s retry_ms=%lld", d->cfg.display,
            log_quote(q, sizeof(q), why, (unsigned)strlen(why)), (long long)d->backoff_ms);
    }
    d->retry_at_ns = clock_mono_ns() + d->backoff_ms * 1000000;
    d->backoff_ms = d->backoff_ms * 2 < DBSYNC_RETRY_MAX_MS ? d->backoff_ms * 2
                                                            : DBSYNC_RETRY_MAX_MS;
}

/* Reads channels once, at the first connection (dbload.h). */
static int
load_channels(struct dbsync *d, char *why, size_t cap)
{
    if (dbload_channels(d->m, d->b, d->owed, d->load_routes, why, cap) != 0) {
        return -1;
    }
    d->loaded = true;
    return 0;
}

/* Connects, sets the session up and checks the schema. Returns 0 (d->m set), -1 (why) when
 * the database could not be reached or failed, -2 (why) when its schema is not this
 * sluice's. */
static int
connect_db(struct dbsync *d, char *why, size_t cap)
{
    MYSQL *m = db_connect(&d->cfg, DBSYNC_TIMEOUT_S, why, cap);
    if (m == NULL) {
        return -1;
    }
    if (db_check_schema(m, why, cap) != 0) {
        int rv = mysql_errno(m) != 0 ? -1 : -2;
        mysql_close(m);
        return rv;
    }
    d->m = m;
    return 0;
}

/* A connection attempt; on success everything owed is written at once by the caller. */
static void
reconnect(struct dbsync *d)
{
    char why[768];
    if (connect_db(d, why, sizeof(why)) != 0 || (!d->loaded && load_channels(d, why,
                                                                              sizeof(why)) != 0)) {
        fail(d, why);
        return;
    }
    atomic_store(&d->up, true);
    d->backoff_ms = DBSYNC_RETRY_MIN_MS;
    if (d->down_logged) {
        d->down_logged = false;
        LOG(LOG_INFO, "db.up", "url=\"%s\" owed=%llu", d->cfg.display,
            (unsigned long long)dbowed_owed(d->owed));
    }
}

/* --- the thread --------------------------------------------------------------------------- */

/* One round: snapshot, then (re)connect and write if possible. final: the last round before
 * stopping, which does not try to connect. */
static void
cycle(struct dbsync *d, bool final)
{
    struct broker *b = d->b;
    int64_t now_ms = broker_wall_ns(b) / 1000000;

    pthread_mutex_lock(&b->lock);
    int rv = dbowed_snapshot(d->owed, b, now_ms);
    pthread_mutex_unlock(&b->lock);
    if (rv != 0) {
        LOG(LOG_WARN, "db.snapshot_nomem", "note=\"changes not taken are taken next time\"");
    }
    if (d->m == NULL && !final && clock_mono_ns() >= d->retry_at_ns) {
        reconnect(d);
    }
    if (d->m != NULL) {
        char why[512];
        uint32_t written = 0;
        if (write_chans(d, &written, why, sizeof(why)) != 0 ||
            write_usage(d, &written, why, sizeof(why)) != 0 ||
            write_log(d, &written, why, sizeof(why)) != 0) {
            fail(d, why);
        } else if (written == 0 && !final && mysql_ping(d->m) != 0) {
            /* Nothing to write: still notice an outage, so that stats tell it. */
            snprintf(why, sizeof(why), "%s", mysql_error(d->m));
            fail(d, why);
        }
    }
    atomic_store(&d->owed_n, dbowed_owed(d->owed));
}

static void *
sync_main(void *arg)
{
    struct dbsync *d = arg;
    mysql_thread_init();
    int64_t next = clock_mono_ns();
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        pthread_mutex_unlock(&d->mu);
        cycle(d, false);
        /* Once a second from the last start, not from the last end: a slow write does not
         * push later rounds back. */
        next += (int64_t)DBSYNC_PERIOD_MS * 1000000;
        int64_t now = clock_mono_ns();
        if (next < now) {
            next = now;
        }
        struct timespec ts = { (time_t)(next / 1000000000LL), (long)(next % 1000000000LL) };
        pthread_mutex_lock(&d->mu);
        while (!d->stop && clock_mono_ns() < next) {
            pthread_cond_timedwait(&d->cv, &d->mu, &ts);
        }
    }
    pthread_mutex_unlock(&d->mu);
    cycle(d, true);
    mysql_thread_end();
    return NULL;
}

/* --- the interface ------------------------------------------------------------------------ */

int
dbsync_new(struct dbsync **dp, struct broker *b, const struct db_cfg *cfg, bool load_routes,
           char *why, size_t cap)
{
    struct dbsync *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    d->b = b;
    d->cfg = *cfg;
    d->load_routes = load_routes;
    d->broker_ms = (uint64_t)(broker_wall_ns(b) / 1000000);
    d->backoff_ms = DBSYNC_RETRY_MIN_MS;
    atomic_init(&d->up, false);
    atomic_init(&d->owed_n, 0);
    if ((d->owed = dbowed_new(DBOWED_LOG_CAP, DBOWED_USAGE_CAP)) == NULL) {
        snprintf(why, cap, "out of memory");
        goto fail_owed;
    }
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        snprintf(why, cap, "cannot make a mutex");
        goto fail_mu;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&d->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        snprintf(why, cap, "cannot make a condition variable");
        goto fail_cv;
    }
    pthread_condattr_destroy(&ca);

    char err[768];
    int rv = connect_db(d, err, sizeof(err));
    if (rv == -2) {
        snprintf(why, cap, "%s: %s", d->cfg.display, err);
        goto fail_schema;
    }
    if (rv == 0 && load_channels(d, err, sizeof(err)) != 0) {
        rv = -1;
    }
    if (rv == 0) {
        atomic_store(&d->up, true);
        LOG(LOG_INFO, "db.up", "url=\"%s\" owed=0", d->cfg.display);
    } else {
        fail(d, err);
    }
    b->db = d;
    *dp = d;
    return 0;
fail_schema:
    pthread_cond_destroy(&d->cv);
fail_cv:
    pthread_mutex_destroy(&d->mu);
fail_mu:
    dbowed_free(d->owed);
fail_owed:
    free(d);
    return -1;
}

int
dbsync_start(struct dbsync *d)
{
    d->stop = false;
    if (pthread_create(&d->thread, NULL, sync_main, d) != 0) {
        return SL_ENOMEM;
    }
    d->running = true;
    return 0;
}

void
dbsync_stop(struct dbsync *d)
{
    if (d == NULL || !d->running) {
        return;
    }
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    d->running = false;
}

void
dbsync_free(struct dbsync *d)
{
    if (d == NULL) {
        return;
    }
    if (d->b->db == d) {
        d->b->db = NULL;
    }
    disconnect(d);
    dbowed_free(d->owed);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void
dbsync_route_changed(struct dbsync *d, int64_t at_ms, const struct group *g, struct sl_str old_q,
                     struct sl_str new_q, struct sl_str why, uint64_t lease)
{
    if (d != NULL) {
        dbowed_route_changed(d->owed, at_ms, (struct sl_str){ g->name, g->name_len }, old_q,
                             new_q, why, group_count(g), lease);
    }
}

void
dbsync_group_gone(struct dbsync *d, const struct group *g)
{
    if (d != NULL) {
        dbowed_group_gone(d->owed, g);
    }
}

struct dbowed *
dbsync_ledger(struct dbsync *d)
{
    return d->owed;
}

const char *
dbsync_state(const struct dbsync *d)
{
    if (d == NULL) {
        return "off";
    }
    return atomic_load(&d->up) ? "up" : "down";
}

uint64_t
dbsync_owed(const struct dbsync *d)
{
    if (d == NULL) {
        return 0;
    }
    return atomic_load(&d->owed_n) + dbowed_inbox_n(d->owed);
}
