/* The ops that describe the broker: queue.list, route.list and stats, and their packing. */
#include "dbsync.h"
#include "journal.h"
#include "err.h"
#include "grate.h"
#include "ops_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
kv_bool(msgpack_packer *pk, const char *k, bool v)
{
    wire_pack_str(pk, k, strlen(k));
    v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

static void
pack_queue(msgpack_packer *pk, const struct queue *q)
{
    msgpack_pack_map(pk, 21);
    kv_str(pk, "name", q->name, q->name_len);
    kv_str(pk, "order", queue_order_names[q->order], strlen(queue_order_names[q->order]));
    kv_u64(pk, "groups_ready", q->nactive);
    kv_u64(pk, "priority", q->priority);
    kv_u64(pk, "weight", q->weight);
    kv_u64(pk, "max_inflight", q->max_inflight);
    kv_u64(pk, "retry_base_ms", q->retry.base_ms);
    kv_u64(pk, "retry_max_ms", q->retry.max_ms);
    kv_u64(pk, "retry_jitter", q->retry.jitter);
    kv_bool(pk, "paused", q->paused);
    kv_u64(pk, "ready", queue_n(q, JOB_READY));
    kv_u64(pk, "reserved", queue_n(q, JOB_RESERVED));
    kv_u64(pk, "delayed", queue_n(q, JOB_DELAYED));
    kv_u64(pk, "done", q->done);
    kv_u64(pk, "failed", q->failed);
    kv_u64(pk, "dead", queue_n(q, JOB_DEAD));
    kv_u64(pk, "pushed", q->pushed);
    kv_u64(pk, "dispatched", q->dispatched);
    wire_pack_cstr(pk, "wait_buckets");
    msgpack_pack_array(pk, WAIT_NBUCKETS);
    for (uint32_t i = 0; i < WAIT_NBUCKETS; i++) {
        msgpack_pack_uint64(pk, q->wait.buckets[i]);
    }
    kv_u64(pk, "wait_sum_us", q->wait.sum_us);
    kv_u64(pk, "wait_count", q->wait.count);
}

static void
pack_queues(struct broker *b, msgpack_packer *pk)
{
    wire_pack_key(pk, WK_QUEUES);
    msgpack_pack_array(pk, b->nqueues);
    for (uint32_t i = 0; i < b->nqueues; i++) {
        pack_queue(pk, b->qorder[i]);
    }
}

int
op_queue_list(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    if (WIRE_HAS(req, WK_NAME)) {
        const struct queue *q = broker_queue_find(b, req->v[WK_NAME].s);
        if (q == NULL) {
            snprintf(c->why, WHY_MAX, "no queue %.*s", (int)req->v[WK_NAME].s.n,
                     req->v[WK_NAME].s.p);
            return SL_ENOTFOUND;
        }
        wire_pack_ok(pk, 1);
        wire_pack_key(pk, WK_QUEUES);
        msgpack_pack_array(pk, 1);
        pack_queue(pk, q);
        return 0;
    }
    wire_pack_ok(pk, 1);
    pack_queues(b, pk);
    return 0;
}


/* "leader": {"name", "lease", "expires_ms"} of the router holding the lease, or nil. */
static void
pack_leader(struct broker *b, msgpack_packer *pk)
{
    int64_t now = broker_mono_ns(b);
    wire_pack_key(pk, WK_LEADER);
    if (!lease_held(&b->lease, now)) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 4);
    kv_str(pk, "name", b->lease.holder, strlen(b->lease.holder));
    kv_u64(pk, "lease", b->lease.number);
    kv_u64(pk, "expires_ms", (uint64_t)(b->lease.expires_ns - now) / 1000000);
    kv_u64(pk, "high", b->lease.high);
}

int
op_route_list(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    uint32_t n = 0;
    (void)req;
    (void)why;
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        n += g->route != NULL;
    }
    wire_pack_ok(pk, 2);
    pack_leader(b, pk);
    wire_pack_key(pk, WK_ROUTES);
    msgpack_pack_array(pk, n);
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        if (g->route != NULL) {
            msgpack_pack_map(pk, 2);
            kv_str(pk, "group", g->name, g->name_len);
            kv_str(pk, "queue", g->route->name, g->route->name_len);
        }
    }
    return 0;
}

static uint64_t
state_total(const struct broker *b, enum job_state st)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < b->nqueues; i++) {
        n += queue_n(b->qorder[i], st);
    }
    return n;
}

/* k: the q-quantile of a group's recent waits in ms, or nil when it dispatched nothing in
 * the last 30-60 s. */
static void
kv_wait(msgpack_packer *pk, const char *k, const struct wait_window *w, int64_t now, double q)
{
    double ms;
    wire_pack_str(pk, k, strlen(k));
    if (wait_window_quantile(w, now, q, &ms)) {
        msgpack_pack_double(pk, ms);
    } else {
        msgpack_pack_nil(pk);
    }
}

static void
kv_opt_str(msgpack_packer *pk, const char *k, bool has, const char *v)
{
    wire_pack_str(pk, k, strlen(k));
    if (has) {
        wire_pack_str(pk, v, strlen(v));
    } else {
        msgpack_pack_nil(pk);
    }
}

/* "decisions": the last route changes, newest first. */
static void
pack_decisions(struct broker *b, msgpack_packer *pk)
{
    wire_pack_cstr(pk, "decisions");
    msgpack_pack_array(pk, b->decisions.n);
    for (uint32_t i = 0; i < b->decisions.n; i++) {
        const struct decision *d = decisions_get(&b->decisions, i);
        msgpack_pack_map(pk, 6);
        kv_u64(pk, "ts_ms", (uint64_t)d->ts_ms);
        kv_str(pk, "group", d->group, strlen(d->group));
        kv_opt_str(pk, "queue", d->has_queue, d->queue);
        kv_u64(pk, "moved", d->moved);
        kv_opt_str(pk, "reason", d->has_reason, d->reason);
        wire_pack_cstr(pk, "lease");
        if (d->has_lease) {
            msgpack_pack_uint64(pk, d->lease);
        } else {
            msgpack_pack_nil(pk);
        }
    }
}

/* "broker": the broker's own figures. */
static void
pack_broker(struct broker *b, msgpack_packer *pk)
{
    struct journal_stats js = { "off", 0, 0, 0, 0, false };
    if (b->jr != NULL) {
        journal_stats(b->jr, &js);
    }
    wire_pack_key(pk, WK_BROKER);
    msgpack_pack_map(pk, 39);
    kv_u64(pk, "pid", (uint64_t)getpid());
    kv_u64(pk, "uptime_s", (uint64_t)(broker_mono_ns(b) - b->started_ns) / 1000000000);
    kv_str(pk, "version", SLUICE_VERSION, strlen(SLUICE_VERSION));
    kv_u64(pk, "jobs", b->jobs);
    kv_u64(pk, "bytes", b->bytes);
    kv_u64(pk, "mem_bytes", b->mem_bytes);
    kv_u64(pk, "max_jobs", b->cfg.max_jobs);
    kv_u64(pk, "max_bytes", b->cfg.max_bytes);
    kv_u64(pk, "max_payload", b->cfg.max_payload);
    kv_u64(pk, "next_id", b->next_id);
    kv_str(pk, "journal", js.mode, strlen(js.mode));
    kv_u64(pk, "journal_bytes", js.bytes);
    kv_u64(pk, "journal_segments", js.segments);
    kv_u64(pk, "journal_fsyncs", js.fsyncs);
    kv_bool(pk, "journal_ok", !js.broken);
    kv_u64(pk, "dedup_clients", dedup_clients(b->dedup));
    kv_u64(pk, "unique_keys", unique_count(&b->uniq));
    kv_u64(pk, "cron", b->cron.n);
    kv_u64(pk, "cron_fired", b->cron.fired);
    kv_u64(pk, "cron_refused", b->cron.refused);
    kv_u64(pk, "waiters", b->nwaiters);
    kv_u64(pk, "reserved", state_total(b, JOB_RESERVED));
    msgpack_pack_str_with_body(pk, "errors", 6);
    msgpack_pack_map(pk, JERR_CLASSES);
    for (int i = 0; i < JERR_CLASSES; i++) {
        kv_u64(pk, joberr_class_names[i], b->flowc.errors[i]);
    }
    const char *db = dbsync_state(b->db);
    kv_str(pk, "db", db, strlen(db));
    kv_u64(pk, "db_owed", dbsync_owed(b->db));
    kv_bool(pk, "auth", b->token.n > 0);
    msgpack_pack_str_with_body(pk, "listen", 6);
    msgpack_pack_array(pk, b->cfg.nlisten);
    for (unsigned i = 0; i < b->cfg.nlisten; i++) {
        msgpack_pack_str_with_body(pk, b->cfg.listen[i], strlen(b->cfg.listen[i]));
    }
    kv_u64(pk, "unauthorized", b->opc.unauthorized);
    kv_u64(pk, "reserves", b->flowc.reserves);
    kv_u64(pk, "reserves_empty", b->flowc.reserves_empty);
    kv_u64(pk, "dispatched", b->flowc.dispatched);
    kv_u64(pk, "pushed", b->flowc.pushed);
    kv_u64(pk, "done", b->flowc.done);
    kv_u64(pk, "failed", b->flowc.failed);
    kv_u64(pk, "no_worker", b->flowc.no_worker);
    kv_u64(pk, "conns", b->connc.open);
    kv_u64(pk, "conns_dropped", b->connc.dropped);
    kv_u64(pk, "conns_refused", b->connc.refused);
    wire_pack_cstr(pk, "wait_bounds_ms");
    msgpack_pack_array(pk, WAIT_NBOUNDS);
    for (uint32_t i = 0; i < WAIT_NBOUNDS; i++) {
        msgpack_pack_uint64(pk, wait_bounds_ms[i]);
    }
}

/* A group's start rate (grate.h): rate, burst and tokens (nil without a limit), held, holds. */
static void
pack_limit(msgpack_packer *pk, const struct group *g, int64_t now)
{
    struct group_rate *r = g->rate;
    wire_pack_cstr(pk, "rate");
    r != NULL ? msgpack_pack_double(pk, r->bucket.rate_milli / 1000.0) : msgpack_pack_nil(pk);
    wire_pack_cstr(pk, "burst");
    r != NULL ? msgpack_pack_uint32(pk, r->bucket.burst) : msgpack_pack_nil(pk);
    wire_pack_cstr(pk, "tokens");
    r != NULL ? msgpack_pack_uint32(pk, rate_bucket_tokens(&r->bucket, now))
              : msgpack_pack_nil(pk);
    kv_bool(pk, "held", g->held);
    kv_u64(pk, "holds", r != NULL ? r->holds : 0);
}

/* One entry of "groups"; all: the jobs the broker dispatched in the window (share's base). */
void
ops_pack_group(msgpack_packer *pk, const struct group *g, int64_t now, uint64_t all)
{
    msgpack_pack_map(pk, 24);
    kv_str(pk, "name", g->name, g->name_len);
    wire_pack_cstr(pk, "weight");
    msgpack_pack_double(pk, g->weight / (double)GROUP_WEIGHT_ONE);
    wire_pack_cstr(pk, "share");
    if (all > 0) {
        msgpack_pack_double(pk, (double)wait_window_count(&g->wait, now) / (double)all);
    } else {
        msgpack_pack_nil(pk);
    }
    int64_t since = queue_group_ready_since(g);
    wire_pack_cstr(pk, "oldest_ready_ms");
    if (since != INT64_MAX) {
        msgpack_pack_uint64(pk, now > since ? (uint64_t)(now - since) / 1000000u : 0);
    } else {
        msgpack_pack_nil(pk);
    }
    wire_pack_cstr(pk, "route");
    if (g->route != NULL) {
        wire_pack_str(pk, g->route->name, g->route->name_len);
    } else {
        msgpack_pack_nil(pk);
    }
    kv_u64(pk, "count", group_count(g));
    kv_u64(pk, "ready", g->jobs[JOB_READY]);
    kv_u64(pk, "reserved", g->jobs[JOB_RESERVED]);
    kv_u64(pk, "delayed", g->jobs[JOB_DELAYED]);
    kv_u64(pk, "done", g->done);
    kv_u64(pk, "failed", g->failed);
    kv_u64(pk, "dead", g->jobs[JOB_DEAD]);
    kv_u64(pk, "pushed", g->pushed);
    kv_u64(pk, "pushed_all", g->pushed_all);
    kv_u64(pk, "done_all", g->done_all);
    kv_u64(pk, "failed_all", g->failed_all);
    kv_u64(pk, "dispatched", g->dispatched);
    kv_wait(pk, "wait_p50_ms", &g->wait, now, 0.50);
    kv_wait(pk, "wait_p99_ms", &g->wait, now, 0.99);
    pack_limit(pk, g, now);
}

/* "current_ms", "current_group": how long the worker's current job has run and its group
 * (nil when it runs none the broker holds as reserved). */
static void
pack_current(struct broker *b, msgpack_packer *pk, const struct worker *w, int64_t now)
{
    const struct job *j = w->current != 0 ? jobidx_get(&b->ids, w->current) : NULL;
    bool on = j != NULL && j->state == JOB_RESERVED;
    wire_pack_cstr(pk, "current_ms");
    if (on) {
        msgpack_pack_uint64(pk, now > j->rsv_ns ? (uint64_t)(now - j->rsv_ns) / 1000000u : 0);
    } else {
        msgpack_pack_nil(pk);
    }
    wire_pack_cstr(pk, "current_group");
    if (on) {
        wire_pack_str(pk, j->group->name, j->group->name_len);
    } else {
        msgpack_pack_nil(pk);
    }
}

static void
pack_workers(struct broker *b, msgpack_packer *pk, int64_t now)
{
    wire_pack_key(pk, WK_WORKERS);
    msgpack_pack_array(pk, b->nworkers);
    for (const struct worker *w = b->workers_head; w != NULL; w = w->next) {
        msgpack_pack_map(pk, 11);
        pack_current(b, pk, w, now);
        kv_str(pk, "id", w->name, w->name_len);
        kv_u64(pk, "pid", w->pid);
        kv_str(pk, "state", w->state, strlen(w->state));
        kv_u64(pk, "jobs", w->done);
        kv_u64(pk, "rss_bytes", w->rss_bytes);
        wire_pack_cstr(pk, "current");
        if (w->current != 0) {
            msgpack_pack_uint64(pk, w->current);
        } else {
            msgpack_pack_nil(pk);
        }
        kv_u64(pk, "reserved", w->reserved);
        kv_u64(pk, "uptime_s", (uint64_t)(now - w->started_ns) / 1000000000);
        kv_u64(pk, "idle_ms", (uint64_t)(now - w->seen_ns) / 1000000);
    }
}

int
op_stats(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    uint32_t ngroups = 0;
    /* max: the first max groups only (0: none), for a view that pages them (group.list). */
    uint64_t cap = req != NULL && WIRE_HAS(req, WK_MAX) ? req->v[WK_MAX].u : UINT64_MAX;
    (void)c;
    for (const struct group *g = b->groups_head; g != NULL && ngroups < cap; g = g->next) {
        ngroups++;
    }
    wire_pack_ok(pk, 6);
    pack_leader(b, pk);
    pack_broker(b, pk);
    pack_queues(b, pk);
    int64_t now = broker_mono_ns(b);
    wire_pack_key(pk, WK_GROUPS);
    msgpack_pack_array(pk, ngroups);
    uint64_t all = wait_window_count(&b->dispatch_win, now);
    uint32_t i = 0;
    for (const struct group *g = b->groups_head; g != NULL && i < ngroups; g = g->next, i++) {
        ops_pack_group(pk, g, now, all);
    }
    pack_workers(b, pk, now);
    pack_decisions(b, pk);
    return 0;
}

int
ops_stats(struct broker *b, nng_msg *rep)
{
    msgpack_packer pk;
    char why[WHY_MAX] = "";
    struct op_ctx c = { why, 0, NULL, rep, 0, 0, false };
    msgpack_packer_init(&pk, rep, wire_pack_into_msg);
    pthread_mutex_lock(&b->lock);
    int rv = op_stats(b, NULL, &pk, &c);
    pthread_mutex_unlock(&b->lock);
    return rv;
}
