#include "change.h"

#include "dbsync.h"
#include "journal.h"

#include <string.h>

/* What a consumer does with one kind of change. */
typedef void change_fn(struct broker *b, const struct change *c);

/* --- events ------------------------------------------------------------------------------- */

/* The kinds published, and those whose event says how many jobs the change moved (or
 * deleted). Jobs are not published: the stream tells of queues and routes (events.h). */
static const struct {
    bool emits, moves;
} event_kinds[CH_KINDS] = {
    [CH_QUEUE] = { true, false },
    [CH_QUEUE_GONE] = { true, true },
    [CH_ROUTE] = { true, true },
    [CH_GROUP_WEIGHT] = { true, false },
    [CH_FLUSH] = { true, false },
    [CH_PURGE] = { true, true },
    [CH_GROUP_LIMIT] = { true, false },
};

/* Publishes the change under its request's op name: the request's group/queue/name, reason
 * and lease travel with it. */
static void
feed_events(struct broker *b, const struct change *c)
{
    static const enum wire_key carried[] = { WK_GROUP, WK_QUEUE, WK_NAME, WK_REASON, WK_LEASE,
                                             WK_PRIORITY, WK_WEIGHT, WK_MAX_INFLIGHT,
                                             WK_ORDER, WK_RATE, WK_BURST };
    const struct wire_msg *req = c->origin;
    struct sl_str op = req->v[WK_OP].s;
    char event[WIRE_NAME_MAX + 1];
    struct wire_msg ev;

    if (!event_kinds[c->kind].emits || op.n >= sizeof(event)) {
        return;
    }
    memcpy(event, op.p, op.n);
    event[op.n] = '\0';
    wire_msg_init(&ev);
    for (size_t i = 0; i < sizeof(carried) / sizeof(carried[0]); i++) {
        enum wire_key k = carried[i];
        if (WIRE_HAS(req, k)) {
            ev.v[k] = req->v[k];
            wire_keyset_add(&ev.has, k);
        }
    }
    if (event_kinds[c->kind].moves) {
        wire_set_u64(&ev, WK_MOVED, c->moved);
    }
    events_emit(b->events, event, &ev, (uint64_t)(broker_wall_ns(b) / 1000000));
}

/* --- the database's route log --------------------------------------------------------------- */

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
    struct sl_str why = WIRE_HAS(req, WK_REASON) ? req->v[WK_REASON].s : req->v[WK_OP].s;
    uint64_t lease = WIRE_HAS(req, WK_LEASE) ? req->v[WK_LEASE].u : 0;
    dbsync_route_changed(b->db, broker_wall_ns(b) / 1000000, g, from, to, why, lease);
}

static void
db_route(struct broker *b, const struct change *c)
{
    const struct group *g = c->group;
    if (g != NULL && c->from != c->queue) {
        db_route_log(b, c->origin, g, qname(c->from), qname(c->queue));
    }
}

static void
db_queue_destroyed(struct broker *b, const struct change *c)
{
    struct sl_str name = qname(c->queue);
    for (uint32_t i = 0; i < c->nresets; i++) {
        db_route_log(b, c->origin, c->resets[i].group, name, qname(NULL));
    }
}

static void
db_flush(struct broker *b, const struct change *c)
{
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        if (g->route != NULL) {
            db_route_log(b, c->origin, g, qname(g->route), qname(NULL));
        }
    }
}

static change_fn *const db_fns[CH_KINDS] = {
    [CH_ROUTE] = db_route,
    [CH_QUEUE_GONE] = db_queue_destroyed,
    [CH_FLUSH] = db_flush,
};

/* --- decisions ---------------------------------------------------------------------------- */

/* Records a route change of g for stats' decisions: to queue to (NULL: unset), with the
 * request's reason (else dflt_reason, which may be NULL) and lease. */
static void
note_decision(struct broker *b, const struct wire_msg *req, const struct group *g,
              const struct queue *to, uint64_t moved, const char *dflt_reason)
{
    struct sl_str dr = { dflt_reason, dflt_reason != NULL ? (uint32_t)strlen(dflt_reason) : 0 };
    const struct sl_str *reason = WIRE_HAS(req, WK_REASON) ? &req->v[WK_REASON].s
                                  : dflt_reason != NULL     ? &dr
                                                            : NULL;
    const uint64_t *lease = WIRE_HAS(req, WK_LEASE) ? &req->v[WK_LEASE].u : NULL;
    struct sl_str queue = qname(to);
    decisions_add(&b->decisions, broker_wall_ns(b) / 1000000,
                  (struct sl_str){ g->name, g->name_len }, to != NULL ? &queue : NULL, moved,
                  reason, lease);
}

/* Only the newest DECISIONS_MAX of the routes a flush resets would be kept: those are noted,
 * oldest first, each moving its ready jobs in its route's queue. */
static void
decide_flush(struct broker *b, const struct change *c)
{
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
        note_decision(b, c->origin, g, NULL, queue_group_ready(g->route, g), "flush");
    }
}

static void
decide_route(struct broker *b, const struct change *c)
{
    if (c->group != NULL && c->from != c->queue) {
        note_decision(b, c->origin, c->group, c->queue, c->moved, NULL);
    }
}

/* The groups whose route the destruction reset, the newest DECISIONS_MAX (those kept). */
static void
decide_queue_destroyed(struct broker *b, const struct change *c)
{
    uint32_t n = c->nresets;
    for (uint32_t i = n > DECISIONS_MAX ? n - DECISIONS_MAX : 0; i < n; i++) {
        const struct change_reset *r = &c->resets[i];
        note_decision(b, c->origin, r->group, NULL, r->moved, "queue.destroy");
    }
}

static change_fn *const decide_fns[CH_KINDS] = {
    [CH_ROUTE] = decide_route,
    [CH_QUEUE_GONE] = decide_queue_destroyed,
    [CH_FLUSH] = decide_flush,
};

/* --- the table ------------------------------------------------------------------------------ */

static uint64_t
events_take(struct broker *b, const struct change *c)
{
    feed_events(b, c);
    return 0;
}

static uint64_t
dbsync_take(struct broker *b, const struct change *c)
{
    if (db_fns[c->kind] != NULL) {
        db_fns[c->kind](b, c);
    }
    return 0;
}

static uint64_t
decisions_take(struct broker *b, const struct change *c)
{
    if (decide_fns[c->kind] != NULL) {
        decide_fns[c->kind](b, c);
    }
    return 0;
}

static uint64_t
hook_take(struct broker *b, const struct change *c)
{
    b->change_hook(c, b->change_arg);
    return 0;
}

static bool
events_on(const struct broker *b)
{
    return b->events != NULL && !b->replaying;
}

static bool
dbsync_on(const struct broker *b)
{
    return b->db != NULL && !b->replaying;
}

static bool
decisions_on(const struct broker *b)
{
    return !b->replaying;
}

static bool
hook_on(const struct broker *b)
{
    return b->change_hook != NULL && !b->replaying;
}

/* The consumers, in the order they are fed. */
static const struct consumer {
    bool (*on)(const struct broker *b);
    uint64_t (*take)(struct broker *b, const struct change *c);
    bool requests;  /* takes only the changes a request made (c->origin set) */
} consumers[] = {
    { journal_attached, journal_change, false },
    { events_on, events_take, true },
    { dbsync_on, dbsync_take, true },
    { decisions_on, decisions_take, true },
    { hook_on, hook_take, false },
};

uint64_t
change_made(struct broker *b, const struct change *c)
{
    uint64_t lsn = 0;
    for (size_t i = 0; i < sizeof(consumers) / sizeof(consumers[0]); i++) {
        const struct consumer *k = &consumers[i];
        if ((!k->requests || c->origin != NULL) && k->on(b)) {
            uint64_t l = k->take(b, c);
            lsn = l > lsn ? l : lsn;
        }
    }
    return lsn;
}
