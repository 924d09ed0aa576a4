#include "dbload.h"

#include "grate.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A channels row whose route or weight the broker takes (load_routes). */
struct load_row {
    char group[WIRE_NAME_MAX + 1], queue[WIRE_NAME_MAX + 1];
    uint32_t group_len, queue_len;  /* queue_len 0: no route */
    uint32_t weight;                /* thousandths; GROUP_WEIGHT_ONE: none to set */
    uint64_t rate_milli;            /* its start rate, thousandths per second; 0: none */
    uint32_t burst;                 /* 0: the default */
};

/* Routes the group of r, unless it was routed since start, creating a missing queue.
 * Returns whether it did. b->lock held. */
static bool
apply_route(struct broker *b, const struct load_row *r)
{
    struct sl_str g = { r->group, r->group_len }, q = { r->queue, r->queue_len };
    const struct group *have = broker_group_find(b, g);
    uint64_t moved;

    if (have != NULL && have->route != NULL) {
        return false; /* routed since start: the broker's choice stands */
    }
    if (broker_queue_find(b, q) == NULL) {
        struct queue_settings s = { 0 };
        if (broker_queue_create(b, q, &s) != 0) {
            LOG(LOG_WARN, "db.route_skipped", "group=%s queue=%s reason=\"no memory\"",
                r->group, r->queue);
            return false;
        }
        LOG(LOG_INFO, "db.queue_created", "queue=%s group=%s reason=\"a route in channels "
            "names it\"", r->queue, r->group);
    }
    if (broker_route_set(b, g, &q, &moved) != 0) {
        LOG(LOG_WARN, "db.route_skipped", "group=%s queue=%s reason=\"no memory\"", r->group,
            r->queue);
        return false;
    }
    return true;
}

/* Sets the weight of r's group, unless it was set since start. Returns whether it did. b->lock
 * held. */
static bool
apply_weight(struct broker *b, const struct load_row *r)
{
    struct sl_str g = { r->group, r->group_len };
    const struct group *have = broker_group_find(b, g);

    if (have != NULL && have->weight != GROUP_WEIGHT_ONE) {
        return false; /* weighted since start: the broker's choice stands */
    }
    if (broker_group_weight(b, g, r->weight) != 0) {
        LOG(LOG_WARN, "db.weight_skipped", "group=%s reason=\"no memory\"", r->group);
        return false;
    }
    return true;
}

/* Limits the start rate of r's group, unless it got one since start. Returns whether it did.
 * b->lock held. */
static bool
apply_limit(struct broker *b, const struct load_row *r)
{
    struct sl_str g = { r->group, r->group_len };
    const struct group *have = broker_group_find(b, g);

    if (have != NULL && have->rate != NULL) {
        return false; /* limited since start: the broker's choice stands */
    }
    if (grate_set(b, g, r->rate_milli, r->burst) != 0) {
        LOG(LOG_WARN, "db.limit_skipped", "group=%s reason=\"no memory\"", r->group);
        return false;
    }
    return true;
}

/* Routes, weights and limits the groups of rows[0..n) that have none of their own. b->lock
 * held. */
static void
apply_rows(struct broker *b, const struct load_row *rows, uint32_t n)
{
    uint32_t routes = 0, weights = 0, limits = 0;

    for (uint32_t i = 0; i < n; i++) {
        const struct load_row *r = &rows[i];
        if (!wire_name_ok(r->group, r->group_len) ||
            (r->queue_len > 0 && !wire_name_ok(r->queue, r->queue_len))) {
            char qg[300], qq[300];
            LOG(LOG_WARN, "db.route_skipped", "group=%s queue=%s reason=\"not a valid name\"",
                log_quote(qg, sizeof(qg), r->group, r->group_len),
                log_quote(qq, sizeof(qq), r->queue, r->queue_len));
            continue;
        }
        routes += r->queue_len > 0 && apply_route(b, r);
        weights += r->weight != GROUP_WEIGHT_ONE && apply_weight(b, r);
        limits += r->rate_milli != 0 && apply_limit(b, r);
    }
    LOG(LOG_INFO, "db.routes_loaded", "routes=%u weights=%u limits=%u", routes, weights, limits);
}

/* One row of channels as read, into buffers bound to the statement's results. */
struct chan_read {
    char id[WIRE_NAME_MAX + 1], route[WIRE_NAME_MAX + 1];
    unsigned long id_len, route_len;
    my_bool route_null, id_err, route_err, weight_null, rate_null, burst_null;
    uint64_t count, done, failed;
    int64_t weight;                 /* thousandths, as the database holds them */
    int64_t rate, burst;            /* rate_limit in thousandths, rate_burst */
    MYSQL_BIND res[8];
};

static void
bind_chan_read(struct chan_read *r)
{
    memset(r, 0, sizeof(*r));
    r->res[0].buffer_type = MYSQL_TYPE_STRING;
    r->res[0].buffer = r->id;
    r->res[0].buffer_length = sizeof(r->id);
    r->res[0].length = &r->id_len;
    r->res[0].error = &r->id_err;
    r->res[1].buffer_type = MYSQL_TYPE_STRING;
    r->res[1].buffer = r->route;
    r->res[1].buffer_length = sizeof(r->route);
    r->res[1].length = &r->route_len;
    r->res[1].is_null = &r->route_null;
    r->res[1].error = &r->route_err;
    r->res[2].buffer = &r->count;
    r->res[3].buffer = &r->done;
    r->res[4].buffer = &r->failed;
    for (int i = 2; i < 5; i++) {
        r->res[i].buffer_type = MYSQL_TYPE_LONGLONG;
        r->res[i].is_unsigned = 1;
    }
    r->res[5].buffer_type = MYSQL_TYPE_LONGLONG;
    r->res[5].buffer = &r->weight;
    r->res[5].is_null = &r->weight_null;
    r->res[6].buffer_type = MYSQL_TYPE_LONGLONG;
    r->res[6].buffer = &r->rate;
    r->res[6].is_null = &r->rate_null;
    r->res[7].buffer_type = MYSQL_TYPE_LONGLONG;
    r->res[7].buffer = &r->burst;
    r->res[7].is_null = &r->burst_null;
}

/* The start rate of row r into *milli and *burst (0: none; burst 0: the default); a limit out
 * of range is logged and taken as none. */
static void
read_limit(const struct chan_read *r, uint64_t *milli, uint32_t *burst)
{
    *milli = 0;
    *burst = 0;
    if (r->rate_null) {
        return;
    }
    bool rate_ok = r->rate >= (int64_t)RATE_MILLI_MIN && r->rate <= (int64_t)RATE_MILLI_MAX;
    bool burst_ok = r->burst_null || (r->burst >= 1 && r->burst <= (int64_t)RATE_BURST_MAX);
    if (rate_ok && burst_ok) {
        *milli = (uint64_t)r->rate;
        *burst = r->burst_null ? 0 : (uint32_t)r->burst;
        return;
    }
    char qg[300];
    LOG(LOG_WARN, "db.limit_skipped", "group=%s rate_limit=%.3f rate_burst=%lld reason=\"%s\"",
        log_quote(qg, sizeof(qg), r->id, (unsigned)r->id_len), (double)r->rate / 1000.0,
        r->burst_null ? -1LL : (long long)r->burst,
        rate_ok ? "rate_burst not 1 to 1000000" : "rate_limit not 0.001 to 1000000");
}

/* The weight of row r in thousandths; 0, logged, when no group can have it. */
static uint32_t
read_weight(const struct chan_read *r)
{
    if (!r->weight_null && r->weight >= GROUP_WEIGHT_MIN && r->weight <= GROUP_WEIGHT_MAX) {
        return (uint32_t)r->weight;
    }
    char qg[300];
    LOG(LOG_WARN, "db.weight_skipped", "group=%s weight=%.3f reason=\"not 0.01 to 1000\"",
        log_quote(qg, sizeof(qg), r->id, (unsigned)r->id_len),
        r->weight_null ? 0.0 : (double)r->weight / GROUP_WEIGHT_ONE);
    return 0;
}

/* Keeps what the broker may take of row r (its route, its weight w, its limit) in *rows. 0 or
 * -1 (no memory). */
static int
keep_row(struct load_row **rows, uint32_t *n, uint32_t *cap, const struct chan_read *r,
         uint32_t w)
{
    uint32_t rl = r->route_null ? 0 : (uint32_t)r->route_len;
    uint64_t milli;
    uint32_t burst;

    read_limit(r, &milli, &burst);
    if (rl == 0 && (w == GROUP_WEIGHT_ONE || w == 0) && milli == 0) {
        return 0;
    }
    if (*n == *cap) {
        uint32_t c = *cap != 0 ? *cap * 2 : 64;
        struct load_row *p = realloc(*rows, c * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        *rows = p;
        *cap = c;
    }
    struct load_row *k = &(*rows)[(*n)++];
    memcpy(k->group, r->id, r->id_len);
    k->group[r->id_len] = '\0';
    k->group_len = (uint32_t)r->id_len;
    memcpy(k->queue, r->route, rl);
    k->queue[rl] = '\0';
    k->queue_len = rl;
    k->weight = w != 0 ? w : GROUP_WEIGHT_ONE;
    k->rate_milli = milli;
    k->burst = burst;
    return 0;
}

int
dbload_channels(MYSQL *m, struct broker *b, struct dbowed *owed, bool load_routes, char *why,
                size_t cap)
{
    /* Weights and rates as thousandths, exactly: the columns are DECIMAL(n,3). */
    static const char sql[] = "SELECT id, route, count, done, failed,"
                              " CAST(ROUND(weight * 1000) AS SIGNED),"
                              " CAST(ROUND(rate_limit * 1000) AS SIGNED), rate_burst"
                              " FROM channels";
    struct chan_read r;
    struct load_row *keep = NULL;
    uint32_t nkeep = 0, capkeep = 0;
    uint64_t rows = 0, skipped = 0;
    int rv = -1;

    MYSQL_STMT *st = mysql_stmt_init(m);
    if (st == NULL) {
        snprintf(why, cap, "out of memory for a statement");
        return -1;
    }
    bind_chan_read(&r);
    if (mysql_stmt_prepare(st, sql, sizeof(sql) - 1) != 0 || mysql_stmt_execute(st) != 0 ||
        mysql_stmt_bind_result(st, r.res) != 0) {
        snprintf(why, cap, "reading channels: %s", mysql_stmt_error(st));
        goto out;
    }
    for (int f; (f = mysql_stmt_fetch(st)) != MYSQL_NO_DATA;) {
        if (f == 1) {
            snprintf(why, cap, "reading channels: %s", mysql_stmt_error(st));
            goto out;
        }
        if (f == MYSQL_DATA_TRUNCATED || r.id_len > WIRE_NAME_MAX ||
            (!r.route_null && r.route_len > WIRE_NAME_MAX)) {
            skipped++;
            continue;
        }
        uint32_t w = read_weight(&r);
        struct sl_str sid = { r.id, (uint32_t)r.id_len };
        struct sl_str sroute = { r.route, r.route_null ? 0 : (uint32_t)r.route_len };
        if (dbowed_load_chan(owed, sid, sroute, r.count, r.done, r.failed, w) != 0) {
            skipped++;
            continue;
        }
        rows++;
        if (load_routes && keep_row(&keep, &nkeep, &capkeep, &r, w) != 0) {
            snprintf(why, cap, "out of memory reading channels");
            goto out;
        }
    }
    if (skipped > 0) {
        LOG(LOG_WARN, "db.channels_skipped", "rows=%llu reason=\"not a group name, or no "
            "memory\"", (unsigned long long)skipped);
    }
    if (load_routes) {
        pthread_mutex_lock(&b->lock);
        apply_rows(b, keep, nkeep);
        pthread_mutex_unlock(&b->lock);
    }
    LOG(LOG_DEBUG, "db.channels_read", "rows=%llu", (unsigned long long)rows);
    rv = 0;
out:
    free(keep);
    mysql_stmt_close(st);
    return rv;
}
