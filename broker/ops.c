#include "ops.h"

#include "dbsync.h"
#include "err.h"
#include "flow.h"
#include "journal.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WHY_MAX 256

/* What a handler gets besides the request: where to write an error's text, the connection
 * it came on, and the waiter to fill if it parks. */
struct op_ctx {
    char *why;
    uint32_t pipe;
    struct waiter *wt;
    nng_msg *rep;     /* the message pk appends to, to reserve room in advance */
    uint32_t pushed;  /* jobs a push stored (not a duplicate), for flowc.no_worker */
    uint64_t wait_lsn; /* journal position the reply waits for although the op appended
                          nothing: a duplicate's original must be durable first */
};

typedef int op_fn(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                  struct op_ctx *c);

static op_fn op_ping, op_push, op_queue_create, op_queue_update, op_queue_destroy, op_queue_pause,
    op_queue_resume, op_queue_list, op_route_set, op_route_unset, op_route_list, op_stats, op_flush,
    op_purge, op_hello, op_heartbeat, op_reserve, op_ack, op_nack, op_release, op_touch,
    op_dead_list, op_dead_retry, op_dead_purge, op_not_here, op_lease_acquire, op_lease_renew,
    op_lease_release, op_group_weight;

#define OP_WAKES 1u  /* may make jobs available: parked reserves are served after it */
#define OP_CHANGE 2u /* changes queues or routes: refused when it carries a stale lease */

/* One row per op of wire_ops, by index. */
static const struct op {
    op_fn *fn;
    unsigned flags;
} ops[WOP_COUNT] = {
    [WOP_PING] = { op_ping, 0 },
    [WOP_PUSH] = { op_push, OP_WAKES },
    [WOP_QUEUE_CREATE] = { op_queue_create, OP_CHANGE },
    [WOP_QUEUE_UPDATE] = { op_queue_update, OP_WAKES | OP_CHANGE },
    [WOP_QUEUE_DESTROY] = { op_queue_destroy, OP_WAKES | OP_CHANGE },
    [WOP_QUEUE_PAUSE] = { op_queue_pause, OP_CHANGE },
    [WOP_QUEUE_RESUME] = { op_queue_resume, OP_WAKES | OP_CHANGE },
    [WOP_QUEUE_LIST] = { op_queue_list, 0 },
    [WOP_ROUTE_SET] = { op_route_set, OP_WAKES | OP_CHANGE },
    [WOP_ROUTE_UNSET] = { op_route_unset, OP_WAKES | OP_CHANGE },
    [WOP_ROUTE_LIST] = { op_route_list, 0 },
    [WOP_STATS] = { op_stats, 0 },
    [WOP_FLUSH] = { op_flush, OP_WAKES | OP_CHANGE },
    [WOP_PURGE] = { op_purge, OP_CHANGE },
    [WOP_HELLO] = { op_hello, 0 },
    [WOP_HEARTBEAT] = { op_heartbeat, 0 },
    [WOP_RESERVE] = { op_reserve, OP_WAKES },
    [WOP_ACK] = { op_ack, OP_WAKES },
    [WOP_NACK] = { op_nack, OP_WAKES },
    [WOP_RELEASE] = { op_release, OP_WAKES },
    [WOP_TOUCH] = { op_touch, 0 },
    [WOP_DEAD_LIST] = { op_dead_list, 0 },
    [WOP_DEAD_RETRY] = { op_dead_retry, OP_WAKES | OP_CHANGE },
    [WOP_DEAD_PURGE] = { op_dead_purge, OP_CHANGE },
    [WOP_POOL_STATUS] = { op_not_here, 0 },
    [WOP_POOL_SCALE] = { op_not_here, 0 },
    [WOP_GROUP_WEIGHT] = { op_group_weight, OP_WAKES | OP_CHANGE },
    [WOP_LEASE_ACQUIRE] = { op_lease_acquire, 0 },
    [WOP_LEASE_RENEW] = { op_lease_renew, 0 },
    [WOP_LEASE_RELEASE] = { op_lease_release, 0 },
};

static void
kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    /* strlen here, not in wire.c: inlined with a literal key, it costs nothing per job. */
    wire_pack_str(pk, k, strlen(k));
    msgpack_pack_uint64(pk, v);
}

static void
kv_str(msgpack_packer *pk, const char *k, const char *v, size_t n)
{
    wire_pack_str(pk, k, strlen(k));
    wire_pack_str(pk, v, n);
}

static void
kv_bool(msgpack_packer *pk, const char *k, bool v)
{
    wire_pack_str(pk, k, strlen(k));
    v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

static void
key_u64(msgpack_packer *pk, enum wire_key k, uint64_t v)
{
    wire_pack_key(pk, k);
    msgpack_pack_uint64(pk, v);
}

int
ops_handle(struct broker *b, const void *req, size_t len, uint32_t pipe, nng_msg *rep,
           struct waiter *wt)
{
    struct wire_msg m;
    msgpack_packer pk;
    char why[WHY_MAX] = "";
    struct op_ctx c = { why, pipe, wt, rep, 0, 0 };
    struct waiter *out = NULL;
    int rv, op = -1;

    wire_msg_init(&m);
    msgpack_packer_init(&pk, rep, wire_pack_into_msg);
    /* Decode outside the lock: the only costly part of most requests. */
    rv = wire_decode(&m, req, len, why, sizeof(why));
    /* Before anything else is looked at: a request without the token learns nothing more. */
    if (rv == 0 && !token_check(&b->token, WIRE_HAS(&m, WK_TOKEN) ? m.v[WK_TOKEN].s.p : NULL,
                                WIRE_HAS(&m, WK_TOKEN) ? m.v[WK_TOKEN].s.n : 0)) {
        rv = SL_EUNAUTH;
        snprintf(why, sizeof(why), "%s", WIRE_HAS(&m, WK_TOKEN)
                                             ? "wrong token"
                                             : "this broker requires a token (--token-file)");
    }
    if (rv == 0 && !WIRE_HAS(&m, WK_OP)) {
        rv = SL_EBADREQ;
        snprintf(why, sizeof(why), "missing required field 'op'");
    }
    if (rv == 0 && (op = wire_op_find(m.v[WK_OP].s)) < 0) {
        char q[160];
        rv = SL_EUNKNOWNOP;
        snprintf(why, sizeof(why), "unknown op %s",
                 log_quote(q, sizeof(q), m.v[WK_OP].s.p, m.v[WK_OP].s.n));
    }
    if (rv == 0) {
        rv = wire_check_required(&m, (enum wire_op)op, why, sizeof(why));
    }
    if (wt != NULL) {
        wt->parked = false;
        wt->took_rep = false;
        wt->commit_lsn = 0;
        wt->jr = NULL;
    }
    bool parked = false;
    uint64_t commit = 0;
    struct journal *jr = NULL;
    pthread_mutex_lock(&b->lock);
    if (rv == 0) {
        jr = b->jr;
        uint64_t before = jr != NULL ? journal_confirm_lsn(jr) : 0;
        b->opc.calls[op]++;
        if ((ops[op].flags & OP_CHANGE) && WIRE_HAS(&m, WK_LEASE) &&
            !lease_valid(&b->lease, m.v[WK_LEASE].u, broker_mono_ns(b))) {
            snprintf(why, sizeof(why), "lease %llu is not the current router lease",
                     (unsigned long long)m.v[WK_LEASE].u);
            rv = SL_ENOTLEADER;
        } else {
            rv = ops[op].fn(b, &m, &pk, &c);
        }
        /* Read under the lock: once it is released another thread may answer the waiter. */
        parked = rv == 0 && wt != NULL && wt->parked;
        uint64_t dispatched = b->flowc.dispatched;
        if (rv != 0) {
            b->opc.errors[op]++;
        } else if ((ops[op].flags & OP_WAKES) && b->nwaiters > 0) {
            park_serve(b, &out);
        }
        if (c.pushed > 0) {
            /* Parked reserves take the new jobs (they had found nothing else ready); the
             * rest wait for a worker to come back. */
            uint64_t taken = b->flowc.dispatched - dispatched;
            b->flowc.no_worker += c.pushed > taken ? c.pushed - taken : 0;
        }
        if (jr != NULL) {
            journal_op_end(b);
            if (journal_confirm_lsn(jr) != before) {
                commit = journal_confirm_lsn(jr);
            }
            if (c.wait_lsn > commit) {
                commit = c.wait_lsn;
            }
            if (parked && commit != 0) {
                /* A parked reserve whose acks must be durable before it is answered. */
                wt->commit_lsn = commit;
                wt->jr = jr;
            }
        }
    } else if (rv == SL_EUNAUTH) {
        b->opc.unauthorized++;
    } else {
        b->opc.bad_requests++;
    }
    pthread_mutex_unlock(&b->lock);
    park_send_all(out);
    if (parked) {
        wire_msg_fini(&m);
        return OPS_PARKED;
    }
    if (commit != 0) {
        /* The reply (success or error alike: a failed op may have changed nothing, but an
         * op that changed something is answered only once that is on disk) waits. */
        if (wt != NULL) {
            if (rv != 0) {
                nng_msg_clear(rep);
                wire_pack_err(&pk, rv, why[0] != '\0' ? why : NULL);
            }
            wt->rep = rep;
            wt->took_rep = true;
            wt->jr = jr;
            if (journal_hold(jr, wt, commit)) {
                wire_msg_fini(&m);
                return OPS_PARKED;
            }
            wt->took_rep = false;
            wt->rep = NULL;
            wt->jr = NULL;
        } else {
            journal_wait(jr, commit);
        }
    }
    if (rv != 0) {
        /* A handler packs only after it has succeeded, but clear in case it did not. */
        nng_msg_clear(rep);
        wire_pack_err(&pk, rv, why[0] != '\0' ? why : NULL);
        LOG(LOG_DEBUG, "request.error", "op=%s err=%s msg=\"%s\"",
            op >= 0 ? wire_ops[op].name : "?", sl_err_code(rv), why);
    }
    wire_msg_fini(&m);
    return rv;
}

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

/* Ops of worker-pool's control socket, sent to the broker by mistake. */
static int
op_not_here(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    (void)b;
    (void)pk;
    snprintf(c->why, WHY_MAX, "%.*s is answered by worker-pool, not by the broker",
             (int)req->v[WK_OP].s.n, req->v[WK_OP].s.p);
    return SL_EUNKNOWNOP;
}

static int
op_ping(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    (void)req;
    (void)why;
    wire_pack_ok(pk, 4);
    key_u64(pk, WK_PID, (uint64_t)getpid());
    wire_pack_key(pk, WK_VERSION);
    wire_pack_cstr(pk, SLUICE_VERSION);
    key_u64(pk, WK_UPTIME_MS, (uint64_t)(broker_mono_ns(b) - b->started_ns) / 1000000);
    key_u64(pk, WK_MAX_MESSAGE, b->cfg.max_message);
    return 0;
}

static int
op_push(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    struct push_req pr = { 0 };
    struct push_res res;
    int rv;

    pr.group = req->v[WK_GROUP].s;
    pr.queue = WIRE_HAS(req, WK_QUEUE) ? &req->v[WK_QUEUE].s : NULL;
    pr.payloads = &req->v[WK_PAYLOADS].l;
    if (WIRE_HAS(req, WK_CLIENT) != WIRE_HAS(req, WK_SEQ)) {
        snprintf(why, WHY_MAX, "push: 'client' and 'seq' go together");
        return SL_EBADREQ;
    }
    if (WIRE_HAS(req, WK_DELAY_MS)) {
        snprintf(why, WHY_MAX, "push: 'delay_ms' is not supported yet");
        return SL_EBADREQ;
    }
    if (b->jr != NULL && journal_broken(b->jr, why, WHY_MAX)) {
        return SL_EIO;
    }
    if (pr.payloads->n == 0 || pr.payloads->n > BROKER_PUSH_MAX) {
        snprintf(why, WHY_MAX, "push: 'payloads' must hold 1 to %u payloads", BROKER_PUSH_MAX);
        return SL_EBADREQ;
    }
    if (WIRE_HAS(req, WK_TTR_MS)) {
        uint64_t t = req->v[WK_TTR_MS].u;
        if (t < 1 || t > BROKER_TTR_MAX_MS) {
            snprintf(why, WHY_MAX, "push: 'ttr_ms' must be 1 to %u", BROKER_TTR_MAX_MS);
            return SL_EBADREQ;
        }
        pr.ttr_ms = (uint32_t)t;
    }
    if (WIRE_HAS(req, WK_MAX_ATTEMPTS)) {
        uint64_t a = req->v[WK_MAX_ATTEMPTS].u;
        if (a < 1 || a > UINT16_MAX) {
            snprintf(why, WHY_MAX, "push: 'max_attempts' must be 1 to 65535");
            return SL_EBADREQ;
        }
        pr.max_attempts = (uint16_t)a;
    }
    if (WIRE_HAS(req, WK_CLIENT)) {
        pr.keyed = true;
        pr.client = req->v[WK_CLIENT].s;
        pr.seq = req->v[WK_SEQ].u;
    }
    if ((rv = broker_push(b, &pr, &res)) != 0) {
        switch (rv) {
        case SL_ENOTFOUND:
            snprintf(why, WHY_MAX, "queue '%.*s' does not exist", (int)pr.queue->n, pr.queue->p);
            break;
        case SL_ETOOLARGE:
            snprintf(why, WHY_MAX, "a payload exceeds the limit of %u bytes", b->cfg.max_payload);
            break;
        case SL_EQUEUEFULL:
            snprintf(why, WHY_MAX,
                     "the broker holds %llu jobs, %llu bytes; limits %llu jobs, %llu bytes",
                     (unsigned long long)b->jobs, (unsigned long long)b->bytes,
                     (unsigned long long)b->cfg.max_jobs, (unsigned long long)b->cfg.max_bytes);
            break;
        default:
            break;
        }
        return rv;
    }
    if (res.stale) {
        /* Stored long ago; how many jobs and their ids are no longer known. */
        wire_pack_ok(pk, 2);
        wire_pack_key(pk, WK_DUP);
        msgpack_pack_true(pk);
        wire_pack_key(pk, WK_STALE);
        msgpack_pack_true(pk);
    } else {
        wire_pack_ok(pk, 3 + (res.queue != NULL));
        key_u64(pk, WK_N, res.n);
        key_u64(pk, WK_FIRST_ID, res.first_id);
        if (res.queue != NULL) {
            wire_pack_key(pk, WK_QUEUE);
            wire_pack_str(pk, res.queue->name, res.queue->name_len);
        }
        wire_pack_key(pk, WK_DUP);
        res.dup ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    }
    /* "Stored" is said of a repeat only once the original's records are durable. */
    c->wait_lsn = res.dup ? res.lsn : 0;
    c->pushed = res.dup ? 0 : res.n;
    return 0;
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

static int
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

static int
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

static int
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

static int
op_queue_pause(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    return pause_resume(b, req, pk, why, true);
}

static int
op_queue_resume(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    return pause_resume(b, req, pk, why, false);
}

static void
pack_queue(msgpack_packer *pk, const struct queue *q)
{
    msgpack_pack_map(pk, 18);
    kv_str(pk, "name", q->name, q->name_len);
    kv_str(pk, "order", queue_order_names[q->order], strlen(queue_order_names[q->order]));
    kv_u64(pk, "groups_ready", q->nactive);
    kv_u64(pk, "priority", q->priority);
    kv_u64(pk, "weight", q->weight);
    kv_u64(pk, "max_inflight", q->max_inflight);
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

static int
op_queue_list(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    (void)req;
    (void)why;
    wire_pack_ok(pk, 1);
    pack_queues(b, pk);
    return 0;
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

static int
op_route_set(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    return route(b, req, pk, why, &req->v[WK_QUEUE].s);
}

static int
op_route_unset(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    return route(b, req, pk, why, NULL);
}

static int
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
    int rv = broker_group_weight(b, group, milli);
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
    emit_change(b, "group.weight", req, false, 0);
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

static int
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
dead_total(const struct broker *b)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < b->nqueues; i++) {
        n += queue_n(b->qorder[i], JOB_DEAD);
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

static int
op_stats(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    char *why = c->why;
    uint32_t ngroups = 0;
    (void)req;
    (void)why;
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        ngroups++;
    }
    wire_pack_ok(pk, 6);
    pack_leader(b, pk);

    struct journal_stats js = { "off", 0, 0, 0, 0, false };
    if (b->jr != NULL) {
        journal_stats(b->jr, &js);
    }
    wire_pack_key(pk, WK_BROKER);
    msgpack_pack_map(pk, 30);
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
    kv_u64(pk, "waiters", b->nwaiters);
    kv_u64(pk, "reserved", b->byid.n - dead_total(b));
    const char *db = dbsync_state(b->db);
    kv_str(pk, "db", db, strlen(db));
    kv_u64(pk, "db_owed", dbsync_owed(b->db));
    kv_bool(pk, "auth", b->token.n > 0);
    kv_u64(pk, "unauthorized", b->opc.unauthorized);
    kv_u64(pk, "reserves", b->flowc.reserves);
    kv_u64(pk, "reserves_empty", b->flowc.reserves_empty);
    kv_u64(pk, "dispatched", b->flowc.dispatched);
    kv_u64(pk, "no_worker", b->flowc.no_worker);
    kv_u64(pk, "conns", b->connc.open);
    kv_u64(pk, "conns_dropped", b->connc.dropped);
    kv_u64(pk, "conns_refused", b->connc.refused);
    wire_pack_cstr(pk, "wait_bounds_ms");
    msgpack_pack_array(pk, WAIT_NBOUNDS);
    for (uint32_t i = 0; i < WAIT_NBOUNDS; i++) {
        msgpack_pack_uint64(pk, wait_bounds_ms[i]);
    }

    pack_queues(b, pk);

    int64_t now = broker_mono_ns(b);
    wire_pack_key(pk, WK_GROUPS);
    msgpack_pack_array(pk, ngroups);
    uint64_t all = wait_window_count(&b->dispatch_win, now);
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        msgpack_pack_map(pk, 19);
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
    }

    wire_pack_key(pk, WK_WORKERS);
    msgpack_pack_array(pk, b->nworkers);
    for (const struct worker *w = b->workers_head; w != NULL; w = w->next) {
        msgpack_pack_map(pk, 9);
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
    pack_decisions(b, pk);
    return 0;
}

int
ops_stats(struct broker *b, nng_msg *rep)
{
    msgpack_packer pk;
    char why[WHY_MAX] = "";
    struct op_ctx c = { why, 0, NULL, rep, 0, 0 };
    msgpack_packer_init(&pk, rep, wire_pack_into_msg);
    pthread_mutex_lock(&b->lock);
    int rv = op_stats(b, NULL, &pk, &c);
    pthread_mutex_unlock(&b->lock);
    return rv;
}

static int
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

static int
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

/* --- workers and the flow of jobs --- */

/* The worker a request names, registered on the request's connection. NULL without memory,
 * or when that connection has already closed (the reply will not arrive). */
static struct worker *
worker_of(struct broker *b, const struct wire_msg *req, struct op_ctx *c)
{
    if (flow_pipe_is_closed(b, c->pipe)) {
        snprintf(c->why, WHY_MAX, "the request's connection has closed");
        return NULL;
    }
    struct worker *w = flow_worker(b, req->v[WK_WORKER].s, c->pipe);
    if (w == NULL) {
        snprintf(c->why, WHY_MAX, "no memory to register the worker");
    }
    return w;
}

static void
report(struct worker *w, const struct wire_msg *req)
{
    if (WIRE_HAS(req, WK_PID)) {
        w->pid = req->v[WK_PID].u;
    }
    if (WIRE_HAS(req, WK_STATE)) {
        worker_set_state(w, req->v[WK_STATE].s);
    }
    if (WIRE_HAS(req, WK_RSS_BYTES)) {
        w->rss_bytes = req->v[WK_RSS_BYTES].u;
    }
    if (WIRE_HAS(req, WK_CURRENT)) {
        w->current = req->v[WK_CURRENT].u;
    }
}

static int
op_hello(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    struct worker *w = worker_of(b, req, c);
    if (w == NULL) {
        return flow_pipe_is_closed(b, c->pipe) ? SL_EUNREACHABLE : SL_ENOMEM;
    }
    report(w, req);
    wire_pack_ok(pk, 3);
    key_u64(pk, WK_PID, (uint64_t)getpid());
    wire_pack_key(pk, WK_VERSION);
    wire_pack_cstr(pk, SLUICE_VERSION);
    key_u64(pk, WK_TTR_MS, b->cfg.ttr_ms);
    return 0;
}

static int
op_heartbeat(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    struct worker *w = worker_of(b, req, c);
    if (w == NULL) {
        return flow_pipe_is_closed(b, c->pipe) ? SL_EUNREACHABLE : SL_ENOMEM;
    }
    report(w, req);
    wire_pack_ok(pk, 0);
    return 0;
}

static void
pack_job(msgpack_packer *pk, const struct job *j)
{
    msgpack_pack_map(pk, 8);
    kv_u64(pk, "id", j->id);
    kv_str(pk, "group", j->group->name, j->group->name_len);
    kv_str(pk, "queue", j->queue->name, j->queue->name_len);
    wire_pack_str(pk, "payload", 7);
    msgpack_pack_bin(pk, j->len);
    msgpack_pack_bin_body(pk, job_payload(j), j->len);
    kv_u64(pk, "attempts", j->attempts);
    kv_u64(pk, "max_attempts", j->max_attempts);
    kv_u64(pk, "ttr_ms", j->ttr_ms);
    kv_u64(pk, "enq_ms", (uint64_t)(j->enq_ns / 1000000));
}

static void
pack_reserve(msgpack_packer *pk, nng_msg *rep, struct job **jobs, uint32_t n, uint64_t acked)
{
    size_t need = 32;
    for (uint32_t i = 0; i < n; i++) {
        need += 160 + jobs[i]->len;
    }
    /* One allocation for the reply rather than one per growth step; a failure here only
     * means the appends below grow it. */
    nng_msg_reserve(rep, nng_msg_len(rep) + need);
    wire_pack_ok(pk, 2);
    wire_pack_key(pk, WK_JOBS);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        pack_job(pk, jobs[i]);
    }
    key_u64(pk, WK_ACKED, acked);
}

void
ops_pack_reserve(struct broker *b, nng_msg *rep, struct job **jobs, uint32_t n, uint64_t acked)
{
    msgpack_packer pk;
    b->flowc.reserves++;
    b->flowc.reserves_empty += n == 0;
    msgpack_packer_init(&pk, rep, wire_pack_into_msg);
    pack_reserve(&pk, rep, jobs, n, acked);
}

static int
op_reserve(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    uint64_t max = WIRE_HAS(req, WK_MAX) ? req->v[WK_MAX].u : 1;
    uint64_t wait = WIRE_HAS(req, WK_WAIT_MS) ? req->v[WK_WAIT_MS].u : 0;
    const struct wire_list *from = WIRE_HAS(req, WK_FROM) ? &req->v[WK_FROM].l : NULL;
    uint64_t acked = 0, missing = 0;
    uint32_t n = 0;

    if (max < 1 || max > BROKER_RESERVE_MAX) {
        snprintf(c->why, WHY_MAX, "reserve: 'max' must be 1 to %u", BROKER_RESERVE_MAX);
        return SL_EBADREQ;
    }
    if (wait > BROKER_WAIT_MAX_MS) {
        snprintf(c->why, WHY_MAX, "reserve: 'wait_ms' must be at most %u", BROKER_WAIT_MAX_MS);
        return SL_EBADREQ;
    }
    if (from != NULL && from->n > WIRE_FROM_MAX) {
        snprintf(c->why, WHY_MAX, "reserve: 'from' names at most %u queues", WIRE_FROM_MAX);
        return SL_EBADREQ;
    }
    struct worker *w = worker_of(b, req, c);
    if (w == NULL) {
        return flow_pipe_is_closed(b, c->pipe) ? SL_EUNREACHABLE : SL_ENOMEM;
    }
    report(w, req);
    /* Acks carried by the reserve settle first: they may free a capped queue. */
    if (WIRE_HAS(req, WK_ACK)) {
        flow_settle(b, FLOW_ACK, w, &req->v[WK_ACK].l, 0, &acked, &missing);
    }
    uint64_t rtok = WIRE_HAS(req, WK_RTOK) ? req->v[WK_RTOK].u : 0;
    if (!flow_reserve_begin(b, w, rtok, WIRE_HAS(req, WK_RTOK_GOT) ? req->v[WK_RTOK_GOT].u : 0)) {
        wait = 0; /* overtaken by a newer reserve: answered empty, its reply goes nowhere */
        max = 0;
    }
    if (max > 0 && flow_reserve(b, w, (uint32_t)max, from, b->scratch, &n) != 0) {
        snprintf(c->why, WHY_MAX, "no memory to reserve");
        return SL_ENOMEM;
    }
    flow_reserve_sent(w, rtok, b->scratch, n);
    if (n == 0 && wait > 0 && c->wt != NULL) {
        struct waiter *wt = c->wt;
        wt->w = w;
        wt->pipe = c->pipe;
        wt->max = (uint32_t)max;
        wt->rtok = rtok;
        wt->acked = acked;
        wt->deadline_ns = broker_mono_ns(b) + (int64_t)wait * 1000000;
        wt->from = (struct wire_list){ 0, NULL, wt->from_s, NULL };
        for (uint32_t i = 0; from != NULL && i < from->n; i++) {
            struct sl_str s = wire_list_str(from, i);
            memcpy(wt->from_buf[i], s.p, s.n);
            wt->from_s[i] = (struct sl_str){ wt->from_buf[i], s.n };
            wt->from.n++;
        }
        park_add(b, wt);
        return 0;
    }
    b->flowc.reserves++;
    b->flowc.reserves_empty += n == 0;
    pack_reserve(pk, c->rep, b->scratch, n, acked);
    return 0;
}

static int
settle(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c,
       enum flow_settle how, enum wire_key ms_key, uint64_t ms_max)
{
    struct worker *w = NULL;
    uint64_t ms = WIRE_HAS(req, ms_key) ? req->v[ms_key].u : 0;
    uint64_t done, missing;

    if (ms > ms_max) {
        snprintf(c->why, WHY_MAX, "'%s' must be at most %llu", wire_key_name(ms_key),
                 (unsigned long long)ms_max);
        return SL_EBADREQ;
    }
    if (WIRE_HAS(req, WK_WORKER) && (w = worker_of(b, req, c)) == NULL) {
        return flow_pipe_is_closed(b, c->pipe) ? SL_EUNREACHABLE : SL_ENOMEM;
    }
    if (w != NULL) {
        report(w, req); /* `current`: what it runs once these are settled */
    }
    flow_settle(b, how, w, &req->v[WK_IDS].l, ms, &done, &missing);
    wire_pack_ok(pk, 2);
    key_u64(pk, WK_N, done);
    key_u64(pk, WK_MISSING, missing);
    return 0;
}

static int
op_ack(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return settle(b, req, pk, c, FLOW_ACK, WK_DELAY_MS, 0);
}

static int
op_nack(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return settle(b, req, pk, c, FLOW_NACK, WK_DELAY_MS, BROKER_TTR_MAX_MS);
}

static int
op_release(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return settle(b, req, pk, c, FLOW_RELEASE, WK_DELAY_MS, 0);
}

static int
op_touch(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return settle(b, req, pk, c, FLOW_TOUCH, WK_TTR_MS, BROKER_TTR_MAX_MS);
}

static void
pack_dead(void *pk, const struct job *j)
{
    pack_job(pk, j);
}

static int
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

static int
op_dead_retry(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return dead_act(b, req, pk, c, false);
}

static int
op_dead_purge(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return dead_act(b, req, pk, c, true);
}

void
ops_pipe_closed(struct broker *b, uint32_t pipe)
{
    struct waiter *out = NULL;

    pthread_mutex_lock(&b->lock);
    park_expire(b, INT64_MIN, pipe, &out);
    flow_pipe_closed(b, pipe);
    if (b->nwaiters > 0) {
        park_serve_later(b); /* not at once: see park.h */
    }
    journal_op_end(b);
    pthread_mutex_unlock(&b->lock);
    park_send_all(out);
}

/* --- the router's lease --- */

static int
lease_refused(struct broker *b, struct op_ctx *c)
{
    snprintf(c->why, WHY_MAX, "the lease is held by %s for %lld ms more", b->lease.holder,
             (long long)((b->lease.expires_ns - broker_mono_ns(b)) / 1000000));
    return SL_ENOTLEADER;
}

static int
check_ttl(const struct wire_msg *req, struct op_ctx *c)
{
    uint64_t ttl = req->v[WK_TTL_MS].u;
    if (ttl < LEASE_TTL_MIN_MS || ttl > LEASE_TTL_MAX_MS) {
        snprintf(c->why, WHY_MAX, "'ttl_ms' must be %u to %u", LEASE_TTL_MIN_MS, LEASE_TTL_MAX_MS);
        return SL_EBADREQ;
    }
    return 0;
}

static void
emit_lease(struct broker *b, const char *event, const struct wire_msg *req, uint64_t number)
{
    struct wire_msg ev;
    if (b->events == NULL) {
        return;
    }
    wire_msg_init(&ev);
    ev.v[WK_NAME] = req->v[WK_NAME];
    wire_keyset_add(&ev.has, WK_NAME);
    wire_set_u64(&ev, WK_LEASE, number);
    events_emit(b->events, event, &ev, (uint64_t)(broker_wall_ns(b) / 1000000));
}

static int
op_lease_acquire(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                 struct op_ctx *c)
{
    uint64_t number, before = b->lease.number;
    bool was_held = lease_held(&b->lease, broker_mono_ns(b));
    int rv = check_ttl(req, c);

    if (rv != 0) {
        return rv;
    }
    rv = lease_acquire(&b->lease, req->v[WK_NAME].s, req->v[WK_TTL_MS].u, broker_mono_ns(b),
                       (uint64_t)(broker_wall_ns(b) / 1000000), &number);
    if (rv == SL_ENOTLEADER) {
        return lease_refused(b, c);
    }
    if (rv != 0) {
        return rv;
    }
    if (WIRE_HAS(req, WK_HIGH)) {
        b->lease.high = req->v[WK_HIGH].u;
    }
    if (!was_held || number != before) {
        LOG(LOG_INFO, "lease.acquire", "holder=%s lease=%llu ttl_ms=%llu", b->lease.holder,
            (unsigned long long)number, (unsigned long long)req->v[WK_TTL_MS].u);
        emit_lease(b, "lease.acquire", req, number);
    }
    wire_pack_ok(pk, 2);
    key_u64(pk, WK_LEASE, number);
    key_u64(pk, WK_TTL_MS, req->v[WK_TTL_MS].u);
    return 0;
}

static int
op_lease_renew(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    int rv = check_ttl(req, c);
    if (rv != 0) {
        return rv;
    }
    if (lease_renew(&b->lease, req->v[WK_NAME].s, req->v[WK_LEASE].u, req->v[WK_TTL_MS].u,
                    broker_mono_ns(b)) != 0) {
        if (lease_held(&b->lease, broker_mono_ns(b))) {
            return lease_refused(b, c);
        }
        snprintf(c->why, WHY_MAX, "lease %llu has lapsed", (unsigned long long)req->v[WK_LEASE].u);
        return SL_ENOTLEADER;
    }
    if (WIRE_HAS(req, WK_HIGH)) {
        b->lease.high = req->v[WK_HIGH].u;
    }
    wire_pack_ok(pk, 1);
    key_u64(pk, WK_LEASE, req->v[WK_LEASE].u);
    return 0;
}

static int
op_lease_release(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                 struct op_ctx *c)
{
    if (lease_release(&b->lease, req->v[WK_NAME].s, req->v[WK_LEASE].u) != 0) {
        snprintf(c->why, WHY_MAX, "lease %llu is not held by that name",
                 (unsigned long long)req->v[WK_LEASE].u);
        return SL_ENOTLEADER;
    }
    LOG(LOG_INFO, "lease.release", "holder=%.*s lease=%llu", (int)req->v[WK_NAME].s.n,
        req->v[WK_NAME].s.p, (unsigned long long)req->v[WK_LEASE].u);
    emit_lease(b, "lease.release", req, req->v[WK_LEASE].u);
    wire_pack_ok(pk, 0);
    return 0;
}
