/* The ops that change queues and routes: queue.*, route.set/unset, group.weight, flush,
 * purge and dead.*; each handler runs under b->lock, called by ops_handle. */
#include "dbsync.h"
#include "err.h"
#include "flow.h"
#include "log.h"
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Publishes a change: the request's group/queue/name, reason and lease travel with it. */
static void
emit_change(struct broker *b, const char *event, const struct wire_msg *req, bool moves,
            uint64_t moved)
{
    static const enum wire_key carried[] = { WK_GROUP, WK_QUEUE, WK_NAME, WK_REASON, WK_LEASE,
                                             WK_PRIORITY, WK_WEIGHT, WK_MAX_INFLIGHT,
                                             WK_ORDER };
    struct wire_msg ev;

    if (b->events == NULL) {
        return;
    }
    wire_msg_init(&ev);
    for (size_t i = 0; i < sizeof(carried) / sizeof(carried[0]); i++) {
        enum wire_key k = carried[i];
        if (WIRE_HAS(req, k)) {
            ev.v[k] = req->v[k];
            wire_keyset_add(&ev.has, k);
        }
    }
    if (moves) {
        wire_set_u64(&ev, WK_MOVED, moved);
    }
    events_emit(b->events, event, &ev, (uint64_t)(broker_wall_ns(b) / 1000000));
}

/* A queue's name; "" (default) for none. */
static struct sl_str
qname(const struct queue *q)
{
    return q != NULL ? (struct sl_str){ q->name, q->name_len } : (struct sl_str){ "", 0 };
}

/* Notes a route change of g for the database: the request's reason, else its op's name, and
 * the request's lease (0: none). from, to: queue names, "" for default. */
static void
db_route_log(struct broker *b, const struct wire_msg *req, const struct group *g,
             struct sl_str from, struct sl_str to)
{
    if (b->db == NULL) {
        return;
    }
    struct sl_str why = WIRE_HAS(req, WK_REASON) ? req->v[WK_REASON].s : req->v[WK_OP].s;
    uint64_t lease = WIRE_HAS(req, WK_LEASE) ? req->v[WK_LEASE].u : 0;
    dbsync_route_changed(b->db, broker_wall_ns(b) / 1000000, g, from, to, why, lease);
}

/* Records a route change of group for stats' decisions: to queue (NULL: unset), with the
 * request's reason (else dflt_reason, which may be NULL) and lease. */
static void
note_decision(struct broker *b, const struct wire_msg *req, struct sl_str group,
              const struct sl_str *queue, uint64_t moved, const char *dflt_reason)
{
    struct sl_str dr = { dflt_reason, dflt_reason != NULL ? (uint32_t)strlen(dflt_reason) : 0 };
    const struct sl_str *reason = WIRE_HAS(req, WK_REASON) ? &req->v[WK_REASON].s
                                  : dflt_reason != NULL     ? &dr
                                                            : NULL;
    const uint64_t *lease = WIRE_HAS(req, WK_LEASE) ? &req->v[WK_LEASE].u : NULL;
    if (queue != NULL && sl_str_eq(*queue, BROKER_DEFAULT_QUEUE)) {
        queue = NULL; /* routing to default is unsetting */
    }
    decisions_add(&b->decisions, broker_wall_ns(b) / 1000000, group, queue, moved, reason,
                  lease);
}


static int
settings(const struct wire_msg *req, struct queue_settings *s, char *why)
{
    memset(s, 0, sizeof(*s));
    if (WIRE_HAS(req, WK_PRIORITY)) {
        if (req->v[WK_PRIORITY].u > QUEUE_PRIORITY_MAX) {
            snprintf(why, WHY_MAX, "'priority' must be 0 to %u", QUEUE_PRIORITY_MAX);
            return SL_EBADREQ;
        }
        s->has_priority = true;
        s->priority = (uint32_t)req->v[WK_PRIORITY].u;
    }
    if (WIRE_HAS(req, WK_WEIGHT)) {
        double w = req->v[WK_WEIGHT].d;
        if (w < 1 || w > QUEUE_WEIGHT_MAX || w != (double)(uint32_t)w) {
            snprintf(why, WHY_MAX, "'weight' must be a whole number from 1 to %u",
                     QUEUE_WEIGHT_MAX);
            return SL_EBADREQ;
        }
        s->has_weight = true;
        s->weight = (uint32_t)w;
    }
    if (WIRE_HAS(req, WK_MAX_INFLIGHT)) {
        if (req->v[WK_MAX_INFLIGHT].u > QUEUE_INFLIGHT_MAX) {
            snprintf(why, WHY_MAX, "'max_inflight' must be 0 to %u", QUEUE_INFLIGHT_MAX);
            return SL_EBADREQ;
        }
        s->has_max_inflight = true;
        s->max_inflight = (uint32_t)req->v[WK_MAX_INFLIGHT].u;
    }
    if (WIRE_HAS(req, WK_ORDER)) {
        int order = queue_order_parse(req->v[WK_ORDER].s);
        if (order < 0) {
            snprintf(why, WHY_MAX, "'order' must be groups or fifo");
            return SL_EBADREQ;
        }
        s->has_order = true;
        s->order = (enum queue_order)order;
    }
    return 0;
}

static int
not_found(char *why, const char *what, struct sl_str name)
{
    snprintf(why, WHY_MAX, "%s '%.*s' does not exist", what, (int)name.n, name.p);
    return SL_ENOTFOUND;
}

int
op_queue_create(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    struct queue_settings s;
    struct sl_str name = req->v[WK_NAME].s;
    int rv = settings(req, &s, why);

    if (rv == 0 && (rv = broker_queue_create(b, name, &s)) == SL_EEXISTS) {
        snprintf(why, WHY_MAX, "queue '%.*s' exists", (int)name.n, name.p);
    }
    if (rv == 0) {
        wire_pack_ok(pk, 0);
        LOG(LOG_INFO, "queue.create", "queue=%.*s", (int)name.n, name.p);
        emit_change(b, "queue.create", req, false, 0);
    }
    return rv;
}

int
op_queue_update(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    struct queue_settings s;
    struct sl_str name = req->v[WK_NAME].s;
    int rv = settings(req, &s, why);

    if (rv == 0 && (rv = broker_queue_update(b, name, &s)) == SL_ENOTFOUND) {
        return not_found(why, "queue", name);
    }
    if (rv == 0) {
        wire_pack_ok(pk, 0);
        emit_change(b, "queue.update", req, false, 0);
    }
    return rv;
}

int
op_queue_destroy(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    struct sl_str name = req->v[WK_NAME].s;
    bool force = WIRE_HAS(req, WK_FORCE) && req->v[WK_FORCE].b;
    uint64_t moved = 0, reset = 0;
    /* The groups whose route the destroy resets, for the database's route log. */
    const struct queue *q = broker_queue_find(b, name);
    const struct group **routed = NULL;
    uint32_t nrouted = 0;
    if (b->db != NULL && q != NULL && q->routes > 0 &&
        (routed = malloc(q->routes * sizeof(*routed))) != NULL) {
        for (const struct group *g = b->groups_head; g != NULL && nrouted < q->routes;
             g = g->next) {
            if (g->route == q) {
                routed[nrouted++] = g;
            }
        }
    }
    /* The groups whose route it resets (the newest DECISIONS_MAX are kept) and how many of
     * their jobs move with the queue's, counted before they move. */
    const struct group *last[DECISIONS_MAX];
    uint64_t last_moved[DECISIONS_MAX] = { 0 };
    uint32_t nlast = 0;
    bool will_go = q != NULL && q != b->dflt && (force || queue_jobs(q) == 0);
    for (const struct group *g = b->groups_tail; will_go && q->routes > 0 && g != NULL &&
                                                 nlast < DECISIONS_MAX;
         g = g->prev) {
        if (g->route == q) {
            last[nlast++] = g;
        }
    }
    for (uint32_t i = 0; i < nlast; i++) {
        last_moved[i] = queue_group_jobs(q, last[i]);
    }
    int rv = broker_queue_destroy(b, name, force, &moved, &reset);
    for (uint32_t i = 0; rv == 0 && i < nrouted; i++) {
        db_route_log(b, req, routed[i], name, qname(NULL));
    }
    free(routed);
    while (rv == 0 && nlast > 0) {
        nlast--;
        note_decision(b, req, (struct sl_str){ last[nlast]->name, last[nlast]->name_len }, NULL,
                      last_moved[nlast], "queue.destroy");
    }

    switch (rv) {
    case 0:
        wire_pack_ok(pk, 2);
        key_u64(pk, WK_MOVED, moved);
        key_u64(pk, WK_ROUTES_RESET, reset);
        LOG(LOG_INFO, "queue.destroy", "queue=%.*s moved=%llu routes_reset=%llu", (int)name.n,
            name.p, (unsigned long long)moved, (unsigned long long)reset);
        emit_change(b, "queue.destroy", req, true, moved);
        return 0;
    case SL_ENOTFOUND:
        return not_found(why, "queue", name);
    case SL_EFORBIDDEN:
        snprintf(why, WHY_MAX, "the default queue cannot be destroyed");
        return rv;
    case SL_ENOTEMPTY:
        snprintf(why, WHY_MAX, "queue '%.*s' holds jobs; use force to move them to default",
                 (int)name.n, name.p);
        return rv;
    default:
        return rv;
    }
}

static int
pause_resume(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, char *why,
             bool paused)
{
    struct sl_str name = req->v[WK_NAME].s;
    if (broker_queue_pause(b, name, paused) != 0) {
        return not_found(why, "queue", name);
    }
    wire_pack_ok(pk, 0);
    emit_change(b, paused ? "queue.pause" : "queue.resume", req, false, 0);
    return 0;
}

int
op_queue_pause(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    return pause_resume(b, req, pk, why, true);
}

int
op_queue_resume(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    return pause_resume(b, req, pk, why, false);
}


/* route.set's and route.unset's `expect`: the change is made only while the group is still
 * routed where the caller saw it (a router deciding on a snapshot must not undo a route a
 * person set since). Returns 0 when there is none or it holds. */
static int
route_expected(struct broker *b, const struct wire_msg *req, char *why)
{
    if (!WIRE_HAS(req, WK_EXPECT)) {
        return 0;
    }
    struct sl_str group = req->v[WK_GROUP].s, expect = req->v[WK_EXPECT].s;
    if (expect.n > 0 && !wire_name_ok(expect.p, expect.n)) {
        char q[160];
        snprintf(why, WHY_MAX, "expect %s is not a queue name (\"\" for none)",
                 log_quote(q, sizeof(q), expect.p, expect.n));
        return SL_EBADREQ;
    }
    if (broker_route_expect(b, group, expect) != 0) {
        const struct group *g = broker_group_find(b, group);
        struct sl_str now = qname(g != NULL ? g->route : NULL);
        snprintf(why, WHY_MAX, "group %.*s is routed to %.*s, not to %.*s: changed meanwhile",
                 (int)group.n, group.p, now.n > 0 ? (int)now.n : 7, now.n > 0 ? now.p : "default",
                 expect.n > 0 ? (int)expect.n : 7, expect.n > 0 ? expect.p : "default");
        return SL_ECONFLICT;
    }
    return 0;
}

static int
route(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, char *why,
      const struct sl_str *queue)
{
    struct sl_str group = req->v[WK_GROUP].s;
    uint64_t moved = 0;
    const struct group *g = broker_group_find(b, group);
    const struct queue *from = g != NULL ? g->route : NULL;
    int rv = route_expected(b, req, why);
    if (rv != 0) {
        return rv;
    }
    rv = broker_route_set(b, group, queue, &moved);
    if (rv == 0 && b->db != NULL && (g = broker_group_find(b, group)) != NULL &&
        g->route != from) {
        db_route_log(b, req, g, qname(from), qname(g->route));
    }

    if (rv == 0 && (g = broker_group_find(b, group)) != NULL && g->route != from) {
        note_decision(b, req, group, queue, moved, NULL);
    }

    if (rv == SL_ENOTFOUND) {
        return not_found(why, "queue", *queue);
    }
    if (rv == 0) {
        char reason[160] = "\"\"";
        if (WIRE_HAS(req, WK_REASON)) {
            log_quote(reason, sizeof(reason), req->v[WK_REASON].s.p, req->v[WK_REASON].s.n);
        }
        wire_pack_ok(pk, 1);
        key_u64(pk, WK_MOVED, moved);
        LOG(LOG_INFO, "route.set", "group=%.*s queue=%.*s moved=%llu lease=%llu reason=%s",
            (int)group.n, group.p, queue != NULL ? (int)queue->n : 7,
            queue != NULL ? queue->p : "default", (unsigned long long)moved,
            WIRE_HAS(req, WK_LEASE) ? (unsigned long long)req->v[WK_LEASE].u : 0ULL, reason);
        emit_change(b, queue != NULL ? "route.set" : "route.unset", req, true, moved);
    }
    return rv;
}

int
op_route_set(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    return route(b, req, pk, why, &req->v[WK_QUEUE].s);
}

int
op_route_unset(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    return route(b, req, pk, why, NULL);
}

/* group.weight's `expect`: the weight the caller saw ("0.25"; "1" for a group the broker
 * does not know), so that a router deciding on a snapshot never undoes a weight a person set
 * since. Returns 0 when there is none or it holds. */
static int
weight_expected(struct broker *b, const struct wire_msg *req, char *why)
{
    if (!WIRE_HAS(req, WK_EXPECT)) {
        return 0;
    }
    struct sl_str group = req->v[WK_GROUP].s, expect = req->v[WK_EXPECT].s;
    char text[32] = "", *end = text;
    double seen = 0;
    if (expect.n > 0 && expect.n < sizeof(text)) {
        memcpy(text, expect.p, expect.n);
        text[expect.n] = '\0';
        seen = strtod(text, &end) * GROUP_WEIGHT_ONE;
    }
    if (expect.n == 0 || expect.n >= sizeof(text) || *end != '\0' || text[0] == ' ' ||
        !(seen >= GROUP_WEIGHT_MIN - 0.5 && seen < GROUP_WEIGHT_MAX + 0.5)) {
        snprintf(why, WHY_MAX, "expect must be a weight from 0.01 to 1000");
        return SL_EBADREQ;
    }
    const struct group *g = broker_group_find(b, group);
    uint32_t now = g != NULL ? g->weight : GROUP_WEIGHT_ONE;
    if (now != (uint32_t)(seen + 0.5)) {
        snprintf(why, WHY_MAX, "group %.*s has weight %.3f, not %s: changed meanwhile",
                 (int)group.n, group.p, now / (double)GROUP_WEIGHT_ONE, text);
        return SL_ECONFLICT;
    }
    return 0;
}

int
op_group_weight(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                struct op_ctx *c)
{
    struct sl_str group = req->v[WK_GROUP].s;
    double w = req->v[WK_WEIGHT].d * GROUP_WEIGHT_ONE;
    if (!(w >= GROUP_WEIGHT_MIN - 0.5 && w < GROUP_WEIGHT_MAX + 0.5)) {
        snprintf(c->why, WHY_MAX, "'weight' must be %.2f to %u", GROUP_WEIGHT_MIN /
                 (double)GROUP_WEIGHT_ONE, GROUP_WEIGHT_MAX / GROUP_WEIGHT_ONE);
        return SL_EBADREQ;
    }
    uint32_t milli = (uint32_t)(w + 0.5);
    int rv = weight_expected(b, req, c->why);
    if (rv != 0 || (rv = broker_group_weight(b, group, milli)) != 0) {
        return rv;
    }
    char reason[160] = "\"\"";
    if (WIRE_HAS(req, WK_REASON)) {
        log_quote(reason, sizeof(reason), req->v[WK_REASON].s.p, req->v[WK_REASON].s.n);
    }
    wire_pack_ok(pk, 0);
    LOG(LOG_INFO, "group.weight", "group=%.*s weight=%.3f lease=%llu reason=%s", (int)group.n,
        group.p, milli / (double)GROUP_WEIGHT_ONE,
        WIRE_HAS(req, WK_LEASE) ? (unsigned long long)req->v[WK_LEASE].u : 0ULL, reason);
    emit_change(b, "group.weight", req, false, 0);
    return 0;
}


int
op_flush(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    uint64_t routes_reset, reset;
    (void)req;
    (void)why;
    for (const struct group *g = b->groups_head; g != NULL && b->db != NULL; g = g->next) {
        if (g->route != NULL) {
            db_route_log(b, req, g, qname(g->route), qname(NULL));
        }
    }
    /* Only the newest DECISIONS_MAX would be kept: note those, oldest first, before the
     * flush forgets groups. Each moves its ready jobs in its route's queue. */
    const struct group *last[DECISIONS_MAX];
    uint32_t nlast = 0;
    for (const struct group *g = b->groups_tail; g != NULL && nlast < DECISIONS_MAX;
         g = g->prev) {
        if (g->route != NULL) {
            last[nlast++] = g;
        }
    }
    while (nlast > 0) {
        const struct group *g = last[--nlast];
        uint64_t moved = queue_group_ready(g->route, g);
        note_decision(b, req, (struct sl_str){ g->name, g->name_len }, NULL, moved, "flush");
    }
    broker_flush(b, &routes_reset, &reset);
    wire_pack_ok(pk, 2);
    key_u64(pk, WK_ROUTES_RESET, routes_reset);
    key_u64(pk, WK_RESET, reset);
    LOG(LOG_INFO, "flush", "routes_reset=%llu groups_reset=%llu",
        (unsigned long long)routes_reset, (unsigned long long)reset);
    emit_change(b, "flush", req, false, 0);
    return 0;
}

int
op_purge(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    const struct sl_str *q = WIRE_HAS(req, WK_QUEUE) ? &req->v[WK_QUEUE].s : NULL;
    const struct sl_str *g = WIRE_HAS(req, WK_GROUP) ? &req->v[WK_GROUP].s : NULL;
    uint64_t purged = 0;
    int rv;

    if (q == NULL && g == NULL) {
        snprintf(why, WHY_MAX, "purge: give 'queue', 'group' or both");
        return SL_EBADREQ;
    }
    rv = broker_purge(b, q, g, &purged);
    if (rv == SL_ENOTFOUND) {
        if (q != NULL && broker_queue_find(b, *q) == NULL) {
            return not_found(why, "queue", *q);
        }
        return not_found(why, "group", *g);
    }
    if (rv == 0) {
        wire_pack_ok(pk, 1);
        key_u64(pk, WK_PURGED, purged);
        LOG(LOG_INFO, "purge", "purged=%llu", (unsigned long long)purged);
        emit_change(b, "purge", req, true, purged);
    }
    return rv;
}

static void
pack_dead(void *pk, const struct job *j)
{
    pack_job(pk, j);
}

int
op_dead_list(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    const struct sl_str *q = WIRE_HAS(req, WK_QUEUE) ? &req->v[WK_QUEUE].s : NULL;
    const struct sl_str *g = WIRE_HAS(req, WK_GROUP) ? &req->v[WK_GROUP].s : NULL;
    uint64_t max = WIRE_HAS(req, WK_MAX) ? req->v[WK_MAX].u : 100;
    uint64_t total = 0;

    if (max > BROKER_RESERVE_MAX) {
        snprintf(c->why, WHY_MAX, "dead.list: 'max' must be at most %u", BROKER_RESERVE_MAX);
        return SL_EBADREQ;
    }
    /* Count first: the array header needs the number listed. */
    if (flow_dead_list(b, q, g, 0, pack_dead, pk, &total) != 0) {
        return not_found(c->why, q != NULL && broker_queue_find(b, *q) == NULL ? "queue" : "group",
                         q != NULL && broker_queue_find(b, *q) == NULL ? *q : *g);
    }
    uint64_t listed = total < max ? total : max;
    wire_pack_ok(pk, 3);
    wire_pack_key(pk, WK_JOBS);
    msgpack_pack_array(pk, (uint32_t)listed);
    flow_dead_list(b, q, g, (uint32_t)listed, pack_dead, pk, &total);
    key_u64(pk, WK_TOTAL, total);
    wire_pack_key(pk, WK_MORE);
    total > listed ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    return 0;
}

static int
dead_act(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c,
         bool purge)
{
    const struct wire_list *ids = WIRE_HAS(req, WK_IDS) ? &req->v[WK_IDS].l : NULL;
    const struct sl_str *q = WIRE_HAS(req, WK_QUEUE) ? &req->v[WK_QUEUE].s : NULL;
    const struct sl_str *g = WIRE_HAS(req, WK_GROUP) ? &req->v[WK_GROUP].s : NULL;
    uint64_t n = 0;
    int rv = flow_dead_retry(b, ids, q, g, purge, &n);

    if (rv == SL_EBADREQ) {
        snprintf(c->why, WHY_MAX, "give 'ids', or 'queue' and/or 'group'");
        return rv;
    }
    if (rv == SL_ENOTFOUND) {
        bool qmissing = q != NULL && broker_queue_find(b, *q) == NULL;
        return not_found(c->why, qmissing ? "queue" : "group", qmissing ? *q : *g);
    }
    wire_pack_ok(pk, 1);
    key_u64(pk, purge ? WK_PURGED : WK_N, n);
    return 0;
}

int
op_dead_retry(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return dead_act(b, req, pk, c, false);
}

int
op_dead_purge(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return dead_act(b, req, pk, c, true);
}
