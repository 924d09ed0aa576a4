/* The ops that change queues and routes: queue.*, route.set/unset, group.weight, flush,
 * purge and dead.*; each handler runs under b->lock, called by ops_handle. */
#include "err.h"
#include "flow.h"
#include "log.h"
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* A queue's name; "" (default) for none. */
static struct sl_str
qname(const struct queue *q)
{
    return q != NULL ? (struct sl_str){ q->name, q->name_len } : (struct sl_str){ "", 0 };
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
    if (WIRE_HAS(req, WK_RETRY_BASE_MS)) {
        if (req->v[WK_RETRY_BASE_MS].u > QUEUE_RETRY_BASE_MAX) {
            snprintf(why, WHY_MAX, "'retry_base_ms' must be 0 to %u (24 h)", QUEUE_RETRY_BASE_MAX);
            return SL_EBADREQ;
        }
        s->has_retry_base = true;
        s->retry.base_ms = (uint32_t)req->v[WK_RETRY_BASE_MS].u;
    }
    if (WIRE_HAS(req, WK_RETRY_MAX_MS)) {
        uint64_t m = req->v[WK_RETRY_MAX_MS].u;
        if (m < 1 || m > QUEUE_RETRY_MAX_MAX) {
            snprintf(why, WHY_MAX, "'retry_max_ms' must be 1 to %u (7 days)", QUEUE_RETRY_MAX_MAX);
            return SL_EBADREQ;
        }
        s->has_retry_max = true;
        s->retry.max_ms = (uint32_t)m;
    }
    if (WIRE_HAS(req, WK_RETRY_JITTER)) {
        if (req->v[WK_RETRY_JITTER].u > 100) {
            snprintf(why, WHY_MAX, "'retry_jitter' must be 0 to 100 (percent)");
            return SL_EBADREQ;
        }
        s->has_retry_jitter = true;
        s->retry.jitter = (uint8_t)req->v[WK_RETRY_JITTER].u;
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

    if (rv == 0) {
        b->origin = req;
        rv = broker_queue_create(b, name, &s);
        b->origin = NULL;
    }
    if (rv == SL_EEXISTS) {
        snprintf(why, WHY_MAX, "queue '%.*s' exists", (int)name.n, name.p);
    }
    if (rv == 0) {
        wire_pack_ok(pk, 0);
        LOG(LOG_INFO, "queue.create", "queue=%.*s", (int)name.n, name.p);
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

    if (rv == 0) {
        b->origin = req;
        rv = broker_queue_update(b, name, &s);
        b->origin = NULL;
    }
    if (rv == SL_ENOTFOUND) {
        return not_found(why, "queue", name);
    }
    if (rv == 0) {
        wire_pack_ok(pk, 0);
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
    b->origin = req;
    int rv = broker_queue_destroy(b, name, force, &moved, &reset);
    b->origin = NULL;
    switch (rv) {
    case 0:
        wire_pack_ok(pk, 2);
        key_u64(pk, WK_MOVED, moved);
        key_u64(pk, WK_ROUTES_RESET, reset);
        LOG(LOG_INFO, "queue.destroy", "queue=%.*s moved=%llu routes_reset=%llu", (int)name.n,
            name.p, (unsigned long long)moved, (unsigned long long)reset);
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
    b->origin = req;
    int rv = broker_queue_pause(b, name, paused);
    b->origin = NULL;
    if (rv != 0) {
        return not_found(why, "queue", name);
    }
    wire_pack_ok(pk, 0);
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
    int rv = route_expected(b, req, why);
    if (rv != 0) {
        return rv;
    }
    b->origin = req;
    rv = broker_route_set(b, group, queue, &moved);
    b->origin = NULL;
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
    if (rv != 0) {
        return rv;
    }
    b->origin = req;
    rv = broker_group_weight(b, group, milli);
    b->origin = NULL;
    if (rv != 0) {
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
    return 0;
}


int
op_flush(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    uint64_t routes_reset, reset;
    (void)why;
    b->origin = req;
    broker_flush(b, &routes_reset, &reset);
    b->origin = NULL;
    wire_pack_ok(pk, 2);
    key_u64(pk, WK_ROUTES_RESET, routes_reset);
    key_u64(pk, WK_RESET, reset);
    LOG(LOG_INFO, "flush", "routes_reset=%llu groups_reset=%llu",
        (unsigned long long)routes_reset, (unsigned long long)reset);
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
    b->origin = req;
    rv = broker_purge(b, q, g, &purged);
    b->origin = NULL;
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
    }
    return rv;
}

struct dead_pack {
    const struct broker *b;
    msgpack_packer *pk;
};

static void
pack_dead(void *arg, const struct job *j)
{
    struct dead_pack *dp = arg;
    pack_job_dead(dp->b, dp->pk, j);
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
    struct dead_pack dp = { b, pk };
    if (flow_dead_list(b, q, g, 0, pack_dead, &dp, &total) != 0) {
        return not_found(c->why, q != NULL && broker_queue_find(b, *q) == NULL ? "queue" : "group",
                         q != NULL && broker_queue_find(b, *q) == NULL ? *q : *g);
    }
    uint64_t listed = total < max ? total : max;
    wire_pack_ok(pk, 3);
    wire_pack_key(pk, WK_JOBS);
    msgpack_pack_array(pk, (uint32_t)listed);
    flow_dead_list(b, q, g, (uint32_t)listed, pack_dead, &dp, &total);
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
