#include "change.h"

#include "broker.h"
#include "dbsync.h"
#include "journal.h"

#include <string.h>

#define KIND(k) (1u << (k))

/* --- events ------------------------------------------------------------------------------- */

/* The kinds whose event says how many jobs the change moved (or deleted). */
static const bool event_moves[CHANGE_KINDS] = {
    [CHANGE_QUEUE_DESTROYED] = true,
    [CHANGE_ROUTE] = true,
    [CHANGE_PURGE] = true,
};

/* Publishes the change under its request's op name: the request's group/queue/name, reason
 * and lease travel with it. */
static void
feed_events(struct broker *b, const struct change *c)
{
    static const enum wire_key carried[] = { WK_GROUP, WK_QUEUE, WK_NAME, WK_REASON, WK_LEASE,
                                             WK_PRIORITY, WK_WEIGHT, WK_MAX_INFLIGHT,
                                             WK_ORDER };
    const struct wire_msg *req = c->origin;
    struct sl_str op = req->v[WK_OP].s;
    char event[WIRE_NAME_MAX + 1];
    struct wire_msg ev;

    if (b->events == NULL || op.n >= sizeof(event)) {
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
    if (event_moves[c->kind]) {
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
    const struct group *g = c->u.route.group;
    if (g != NULL && c->u.route.from != c->u.route.to) {
        db_route_log(b, c->origin, g, qname(c->u.route.from), qname(c->u.route.to));
    }
}

static void
db_queue_destroyed(struct broker *b, const struct change *c)
{
    struct sl_str name = qname(c->u.queue_destroyed.queue);
    for (uint32_t i = 0; i < c->u.queue_destroyed.nresets; i++) {
        db_route_log(b, c->origin, c->u.queue_destroyed.resets[i].group, name, qname(NULL));
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

static change_fn *const db_fns[CHANGE_KINDS] = {
    [CHANGE_ROUTE] = db_route,
    [CHANGE_QUEUE_DESTROYED] = db_queue_destroyed,
    [CHANGE_FLUSH] = db_flush,
};

static void
feed_dbsync(struct broker *b, const struct change *c)
{
    if (b->db != NULL && db_fns[c->kind] != NULL) {
        db_fns[c->kind](b, c);
    }
}

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
    if (c->u.route.group != NULL && c->u.route.from != c->u.route.to) {
        note_decision(b, c->origin, c->u.route.group, c->u.route.to, c->moved, NULL);
    }
}

/* The groups whose route the destruction reset, the newest DECISIONS_MAX (those kept). */
static void
decide_queue_destroyed(struct broker *b, const struct change *c)
{
    uint32_t n = c->u.queue_destroyed.nresets;
    for (uint32_t i = n > DECISIONS_MAX ? n - DECISIONS_MAX : 0; i < n; i++) {
        const struct change_reset *r = &c->u.queue_destroyed.resets[i];
        note_decision(b, c->origin, r->group, NULL, r->moved, "queue.destroy");
    }
}

static change_fn *const decide_fns[CHANGE_KINDS] = {
    [CHANGE_ROUTE] = decide_route,
    [CHANGE_QUEUE_DESTROYED] = decide_queue_destroyed,
    [CHANGE_FLUSH] = decide_flush,
};

static void
feed_decisions(struct broker *b, const struct change *c)
{
    if (decide_fns[c->kind] != NULL) {
        decide_fns[c->kind](b, c);
    }
}

/* --- the table ------------------------------------------------------------------------------ */

static void
feed_journal(struct broker *b, const struct change *c)
{
    if (b->jr != NULL) {
        journal_change(b, c);
    }
}

static const struct consumer {
    change_fn *fn;
    uint32_t kinds;  /* KIND() of each kind it takes */
    bool requests;   /* takes only changes a request made (c->origin set) */
} consumers[] = {
    { feed_journal, KIND(CHANGE_KINDS) - 1, false },
    { feed_events, KIND(CHANGE_QUEUE_SET) | KIND(CHANGE_QUEUE_DESTROYED) | KIND(CHANGE_ROUTE) |
                       KIND(CHANGE_GROUP_WEIGHT) | KIND(CHANGE_FLUSH) | KIND(CHANGE_PURGE),
      true },
    { feed_dbsync, KIND(CHANGE_ROUTE) | KIND(CHANGE_QUEUE_DESTROYED) | KIND(CHANGE_FLUSH), true },
    { feed_decisions, KIND(CHANGE_ROUTE) | KIND(CHANGE_QUEUE_DESTROYED) | KIND(CHANGE_FLUSH),
      true },
};

void
change_made(struct broker *b, const struct change *c)
{
    if (b->replaying) {
        return;
    }
    for (size_t i = 0; i < sizeof(consumers) / sizeof(consumers[0]); i++) {
        const struct consumer *k = &consumers[i];
        if ((k->kinds & KIND(c->kind)) != 0 && (!k->requests || c->origin != NULL)) {
            k->fn(b, c);
        }
    }
    if (b->tap != NULL) {
        b->tap(b->tap_arg, b, c);
    }
}
