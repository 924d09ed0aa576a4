#include "ops.h"

#include "cluster.h"
#include "err.h"
#include "journal.h"
#include "log.h"
#include "ops_int.h"

#include <stdio.h>
#include <unistd.h>

static op_fn op_ping, op_not_here, op_cluster_status, op_cluster_step_down;

#define OP_WAKES 1u  /* may make jobs available: parked reserves are served after it */
#define OP_CHANGE 2u /* changes queues or routes: refused when it carries a stale lease */
#define OP_READ 4u   /* changes nothing and hands nothing out: a cluster standby answers it */

/* One row per op of wire_ops, by index. */
static const struct op {
    op_fn *fn;
    unsigned flags;
} ops[WOP_COUNT] = {
    [WOP_PING] = { op_ping, OP_READ },
    [WOP_PUSH] = { op_push, OP_WAKES },
    [WOP_QUEUE_CREATE] = { op_queue_create, OP_CHANGE },
    [WOP_QUEUE_UPDATE] = { op_queue_update, OP_WAKES | OP_CHANGE },
    [WOP_QUEUE_DESTROY] = { op_queue_destroy, OP_WAKES | OP_CHANGE },
    [WOP_QUEUE_PAUSE] = { op_queue_pause, OP_CHANGE },
    [WOP_QUEUE_RESUME] = { op_queue_resume, OP_WAKES | OP_CHANGE },
    [WOP_QUEUE_LIST] = { op_queue_list, OP_READ },
    [WOP_ROUTE_SET] = { op_route_set, OP_WAKES | OP_CHANGE },
    [WOP_ROUTE_UNSET] = { op_route_unset, OP_WAKES | OP_CHANGE },
    [WOP_ROUTE_LIST] = { op_route_list, OP_READ },
    [WOP_STATS] = { op_stats, OP_READ },
    [WOP_FLUSH] = { op_flush, OP_WAKES | OP_CHANGE },
    [WOP_PURGE] = { op_purge, OP_CHANGE },
    [WOP_HELLO] = { op_hello, 0 },
    [WOP_HEARTBEAT] = { op_heartbeat, 0 },
    [WOP_RESERVE] = { op_reserve, OP_WAKES },
    [WOP_ACK] = { op_ack, OP_WAKES },
    [WOP_NACK] = { op_nack, OP_WAKES },
    [WOP_RELEASE] = { op_release, OP_WAKES },
    [WOP_TOUCH] = { op_touch, 0 },
    [WOP_DEAD_LIST] = { op_dead_list, OP_READ },
    [WOP_DEAD_RETRY] = { op_dead_retry, OP_WAKES | OP_CHANGE },
    [WOP_DEAD_PURGE] = { op_dead_purge, OP_CHANGE },
    [WOP_POOL_STATUS] = { op_not_here, OP_READ },
    [WOP_POOL_SCALE] = { op_not_here, OP_READ },
    [WOP_GROUP_WEIGHT] = { op_group_weight, OP_WAKES | OP_CHANGE },
    [WOP_LEASE_ACQUIRE] = { op_lease_acquire, 0 },
    [WOP_LEASE_RENEW] = { op_lease_renew, 0 },
    [WOP_LEASE_RELEASE] = { op_lease_release, 0 },
    [WOP_CLUSTER_STATUS] = { op_cluster_status, OP_READ },
    [WOP_CLUSTER_STEP_DOWN] = { op_cluster_step_down, OP_READ },
    [WOP_JOB_INFO] = { op_job_info, OP_READ },
    [WOP_JOB_PEEK] = { op_job_peek, OP_READ },
    [WOP_JOB_DELETE] = { op_job_delete, OP_CHANGE },
    [WOP_CRON_ADD] = { op_cron_add, OP_CHANGE },
    [WOP_CRON_REMOVE] = { op_cron_remove, OP_CHANGE },
    [WOP_CRON_LIST] = { op_cron_list, OP_READ },
    [WOP_CRON_PAUSE] = { op_cron_pause, OP_CHANGE },
    [WOP_CRON_RESUME] = { op_cron_resume, OP_CHANGE },
    [WOP_GROUP_LIMIT] = { op_group_limit, OP_WAKES | OP_CHANGE },
    [WOP_GROUP_LIST] = { op_group_list, OP_READ },
    [WOP_HISTORY] = { op_history, OP_READ },
};

/* Decodes a request and checks its token, op and required fields; outside the lock, as the
 * only costly part of most requests. *op: the op's index (-1 when unknown). */
static int
decode_request(struct broker *b, struct wire_msg *m, const void *req, size_t len, char *why,
               int *op)
{
    int rv = wire_decode(m, req, len, why, WHY_MAX);
    *op = -1;
    /* Before anything else is looked at: a request without the token learns nothing more. */
    if (rv == 0 && !token_check(&b->token, WIRE_HAS(m, WK_TOKEN) ? m->v[WK_TOKEN].s.p : NULL,
                                WIRE_HAS(m, WK_TOKEN) ? m->v[WK_TOKEN].s.n : 0)) {
        rv = SL_EUNAUTH;
        snprintf(why, WHY_MAX, "%s", WIRE_HAS(m, WK_TOKEN)
                                         ? "wrong token"
                                         : "this broker requires a token (--token-file)");
    }
    if (rv == 0 && !WIRE_HAS(m, WK_OP)) {
        rv = SL_EBADREQ;
        snprintf(why, WHY_MAX, "missing required field 'op'");
    }
    if (rv == 0 && (*op = wire_op_find(m->v[WK_OP].s)) < 0) {
        char q[160];
        rv = SL_EUNKNOWNOP;
        snprintf(why, WHY_MAX, "unknown op %s",
                 log_quote(q, sizeof(q), m->v[WK_OP].s.p, m->v[WK_OP].s.n));
    }
    if (rv == 0) {
        rv = wire_check_required(m, (enum wire_op)*op, why, WHY_MAX);
    }
    return rv;
}

/* What the locked part of a request leaves for its reply. */
struct outcome {
    bool parked;            /* a reserve parked: answered later */
    uint64_t commit;        /* the journal position the reply waits for (0: none) */
    struct journal *jr;
    struct waiter *out;     /* parked reserves the op served, to be answered */
};

/* Feeds the dashboard's history (history.h) with flowc's totals. b->lock held. */
static void
sample_history(struct broker *b)
{
    const uint64_t tot[HIST_NSERIES] = {
        [HIST_PUSHED] = b->flowc.pushed,
        [HIST_DONE] = b->flowc.done,
        [HIST_FAILED] = b->flowc.failed,
        [HIST_DISPATCHED] = b->flowc.dispatched,
    };
    history_sample(&b->hist, broker_mono_ns(b) / 1000000000, tot);
}

/* Runs op (decoded into m, rv its decoding's result) under the broker's lock. */
static int
run_locked(struct broker *b, const struct wire_msg *m, int op, int rv, msgpack_packer *pk,
           struct op_ctx *c, struct outcome *o)
{
    struct waiter *wt = c->wt;
    pthread_mutex_lock(&b->lock);
    if (rv == 0) {
        o->jr = b->jr;
        uint64_t before = o->jr != NULL ? journal_confirm_lsn(o->jr) : 0;
        b->opc.calls[op]++;
        if (!(ops[op].flags & OP_READ) && b->cluster != NULL && !cluster_serving(b->cluster)) {
            snprintf(c->why, WHY_MAX, "%s", b->standby
                     ? "this broker is a standby of its cluster: send to the leader"
                     : "this broker is not serving: its cluster lease is not current");
            c->standby = true;
            rv = SL_ENOTLEADER;
        } else if ((ops[op].flags & OP_CHANGE) && WIRE_HAS(m, WK_LEASE) &&
            !lease_valid(&b->lease, m->v[WK_LEASE].u, broker_mono_ns(b))) {
            snprintf(c->why, WHY_MAX, "lease %llu is not the current router lease",
                     (unsigned long long)m->v[WK_LEASE].u);
            rv = SL_ENOTLEADER;
        } else {
            rv = ops[op].fn(b, m, pk, c);
        }
        /* Read under the lock: once it is released another thread may answer the waiter. */
        o->parked = rv == 0 && wt != NULL && wt->parked;
        uint64_t dispatched = b->flowc.dispatched;
        if (rv != 0) {
            b->opc.errors[op]++;
        } else if ((ops[op].flags & OP_WAKES) && b->nwaiters > 0) {
            park_serve(b, &o->out);
        }
        if (c->pushed > 0) {
            /* Parked reserves take the new jobs (they had found nothing else ready); the
             * rest wait for a worker to come back. */
            uint64_t taken = b->flowc.dispatched - dispatched;
            b->flowc.no_worker += c->pushed > taken ? c->pushed - taken : 0;
        }
        sample_history(b);
        if (o->jr != NULL) {
            journal_op_end(b);
            if (journal_confirm_lsn(o->jr) != before) {
                o->commit = journal_confirm_lsn(o->jr);
            }
            if (c->wait_lsn > o->commit) {
                o->commit = c->wait_lsn;
            }
            if (o->parked && o->commit != 0) {
                /* A parked reserve whose acks must be durable before it is answered. */
                wt->commit_lsn = o->commit;
                wt->jr = o->jr;
            }
        }
    } else if (rv == SL_EUNAUTH) {
        b->opc.unauthorized++;
    } else {
        b->opc.bad_requests++;
    }
    pthread_mutex_unlock(&b->lock);
    return rv;
}

/* The reply (success or error alike: a failed op may have changed nothing, but an op that
 * changed something is answered only once that is on disk) waits for o->commit: handed to
 * the journal when the connection's waiter can carry it (true: parked), else waited for. */
static bool
hold_reply(const struct outcome *o, struct waiter *wt, struct wire_out *out, msgpack_packer *pk,
           int rv, const char *why)
{
    if (wt == NULL) {
        journal_wait(o->jr, o->commit);
        return false;
    }
    nng_msg *rep = out->msg;
    if (rv != 0) {
        nng_msg_clear(rep);
        wire_pack_err(pk, rv, why[0] != '\0' ? why : NULL);
        wire_out_flush(out);
    }
    wt->rep = rep;
    wt->took_rep = true;
    wt->jr = o->jr;
    if (journal_hold(o->jr, wt, o->commit)) {
        return true;
    }
    wt->took_rep = false;
    wt->rep = NULL;
    wt->jr = NULL;
    return false;
}

/* not_leader from a cluster broker that does not serve: where the leader is, so that the
 * client moves there (PROTOCOL.md). */
static void
pack_not_leader(struct broker *b, msgpack_packer *pk, const char *why)
{
    char url[256] = "";
    if (b->cluster != NULL) {
        cluster_leader_url(b->cluster, url, sizeof(url));
    }
    msgpack_pack_map(pk, 4);
    wire_pack_key(pk, WK_OK);
    msgpack_pack_false(pk);
    wire_pack_key(pk, WK_ERR);
    wire_pack_cstr(pk, sl_err_code(SL_ENOTLEADER));
    wire_pack_key(pk, WK_MSG);
    wire_pack_cstr(pk, why);
    wire_pack_key(pk, WK_LEADER_URL);
    wire_pack_cstr(pk, url);
}

int
ops_handle(struct broker *b, const void *req, size_t len, uint32_t pipe, nng_msg *rep,
           struct waiter *wt)
{
    /* A request is decoded into this thread's message, which wire_msg_fini leaves as
     * wire_msg_init would (all zero): a fresh one would cost zeroing all its values each time. */
    static _Thread_local struct wire_msg tls_msg;
    static _Thread_local bool tls_busy;
    struct wire_msg local, *m = tls_busy ? &local : &tls_msg;
    msgpack_packer pk;
    char why[WHY_MAX] = "";
    struct op_ctx c = { why, pipe, wt, rep, 0, 0, false };
    struct outcome o = { 0 };
    int op;

    struct wire_out out;
    if (m == &local) {
        wire_msg_init(m); /* re-entered (it is not today): a message of its own */
    }
    bool was_busy = tls_busy;
    tls_busy = true;
    wire_out_init(&out, rep, &pk);
    int rv = decode_request(b, m, req, len, why, &op);
    if (wt != NULL) {
        wt->parked = false;
        wt->took_rep = false;
        wt->commit_lsn = 0;
        wt->jr = NULL;
    }
    rv = run_locked(b, m, op, rv, &pk, &c, &o);
    park_send_all(o.out);
    wire_out_flush(&out);
    if (o.parked || (o.commit != 0 && hold_reply(&o, wt, &out, &pk, rv, why))) {
        wire_msg_fini(m);
        tls_busy = was_busy;
        return OPS_PARKED;
    }
    if (rv != 0 && c.standby) {
        nng_msg_clear(rep);
        pack_not_leader(b, &pk, why);
    } else if (rv != 0) {
        /* A handler packs only after it has succeeded, but clear in case it did not. */
        nng_msg_clear(rep);
        wire_pack_err(&pk, rv, why[0] != '\0' ? why : NULL);
        LOG(LOG_DEBUG, "request.error", "op=%s err=%s msg=\"%s\"",
            op >= 0 ? wire_ops[op].name : "?", sl_err_code(rv), why);
    }
    wire_out_flush(&out);
    wire_msg_fini(m);
    tls_busy = was_busy;
    return rv;
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
op_cluster_status(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                  struct op_ctx *c)
{
    (void)req;
    if (b->cluster == NULL) {
        snprintf(c->why, WHY_MAX, "this broker is not in a cluster (no --cluster)");
        return SL_ENOTFOUND;
    }
    wire_pack_ok(pk, cluster_status_pairs());
    cluster_status_pack(b->cluster, pk);
    return 0;
}

static int
op_cluster_step_down(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
                     struct op_ctx *c)
{
    (void)req;
    if (b->cluster == NULL) {
        snprintf(c->why, WHY_MAX, "this broker is not in a cluster (no --cluster)");
        return SL_ENOTFOUND;
    }
    if (cluster_step_down(b->cluster) != 0) {
        snprintf(c->why, WHY_MAX, "this broker does not lead its cluster");
        return SL_ENOTLEADER;
    }
    wire_pack_ok(pk, 0);
    return 0;
}
