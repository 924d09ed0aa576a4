/* The ops of the flow of jobs: push, and the workers' hello, heartbeat, reserve, ack, nack,
 * release and touch; and what a closed connection hands back. */
#include "err.h"
#include "flow.h"
#include "journal.h"
#include "ops_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The push request's fields into pr, checked. */
static int
push_args(const struct wire_msg *req, struct push_req *pr, char *why)
{
    pr->group = req->v[WK_GROUP].s;
    pr->queue = WIRE_HAS(req, WK_QUEUE) ? &req->v[WK_QUEUE].s : NULL;
    pr->payloads = &req->v[WK_PAYLOADS].l;
    if (WIRE_HAS(req, WK_CLIENT) != WIRE_HAS(req, WK_SEQ)) {
        snprintf(why, WHY_MAX, "push: 'client' and 'seq' go together");
        return SL_EBADREQ;
    }
    if (WIRE_HAS(req, WK_DELAY_MS) && WIRE_HAS(req, WK_RUN_AT_MS)) {
        snprintf(why, WHY_MAX, "push: give 'delay_ms' or 'run_at_ms', not both");
        return SL_EBADREQ;
    }
    if (WIRE_HAS(req, WK_DELAY_MS)) {
        pr->delay_ms = req->v[WK_DELAY_MS].u;
        if (pr->delay_ms > BROKER_DELAY_MAX_MS) {
            snprintf(why, WHY_MAX, "push: 'delay_ms' must be 0 to %llu (3,650 days)",
                     (unsigned long long)BROKER_DELAY_MAX_MS);
            return SL_EBADREQ;
        }
    }
    if (WIRE_HAS(req, WK_RUN_AT_MS)) {
        uint64_t at = req->v[WK_RUN_AT_MS].u;
        if (at > (uint64_t)INT64_MAX / 2) {
            snprintf(why, WHY_MAX, "push: 'run_at_ms' is out of range");
            return SL_EBADREQ;
        }
        pr->due_wall_ms = (int64_t)at;
    }
    if (pr->payloads->n == 0 || pr->payloads->n > BROKER_PUSH_MAX) {
        snprintf(why, WHY_MAX, "push: 'payloads' must hold 1 to %u payloads", BROKER_PUSH_MAX);
        return SL_EBADREQ;
    }
    if (WIRE_HAS(req, WK_TTR_MS)) {
        uint64_t t = req->v[WK_TTR_MS].u;
        if (t < 1 || t > BROKER_TTR_MAX_MS) {
            snprintf(why, WHY_MAX, "push: 'ttr_ms' must be 1 to %u", BROKER_TTR_MAX_MS);
            return SL_EBADREQ;
        }
        pr->ttr_ms = (uint32_t)t;
    }
    if (WIRE_HAS(req, WK_MAX_ATTEMPTS)) {
        uint64_t a = req->v[WK_MAX_ATTEMPTS].u;
        if (a < 1 || a > UINT16_MAX) {
            snprintf(why, WHY_MAX, "push: 'max_attempts' must be 1 to 65535");
            return SL_EBADREQ;
        }
        pr->max_attempts = (uint16_t)a;
    }
    if (WIRE_HAS(req, WK_UNIQUE)) {
        pr->unique = req->v[WK_UNIQUE].s;
        if (pr->unique.n == 0 || pr->unique.n > UNIQUE_KEY_MAX || pr->payloads->n != 1) {
            snprintf(why, WHY_MAX, "push: 'unique' is a key of 1 to %u bytes, for a push of "
                                   "one job", UNIQUE_KEY_MAX);
            return SL_EBADREQ;
        }
    } else if (WIRE_HAS(req, WK_UNIQUE_TTL_MS) || WIRE_HAS(req, WK_UNIQUE_HOLD)) {
        snprintf(why, WHY_MAX, "push: 'unique_ttl_ms' and 'unique_hold' go with 'unique'");
        return SL_EBADREQ;
    }
    if (WIRE_HAS(req, WK_UNIQUE_TTL_MS)) {
        pr->unique_ttl_ms = req->v[WK_UNIQUE_TTL_MS].u;
        if (pr->unique_ttl_ms > BROKER_UNIQUE_TTL_MAX_MS) {
            snprintf(why, WHY_MAX, "push: 'unique_ttl_ms' must be 0 to %llu (3,650 days)",
                     (unsigned long long)BROKER_UNIQUE_TTL_MAX_MS);
            return SL_EBADREQ;
        }
    }
    if (WIRE_HAS(req, WK_UNIQUE_HOLD)) {
        int h = unique_hold_parse(req->v[WK_UNIQUE_HOLD].s);
        if (h < 0 || (h == UNIQUE_TTL && pr->unique_ttl_ms == 0)) {
            snprintf(why, WHY_MAX, "push: 'unique_hold' is 'active' or 'ttl' (with "
                                   "'unique_ttl_ms')");
            return SL_EBADREQ;
        }
        pr->unique_hold = (uint8_t)h;
    }
    if (WIRE_HAS(req, WK_CLIENT)) {
        pr->keyed = true;
        pr->client = req->v[WK_CLIENT].s;
        pr->seq = req->v[WK_SEQ].u;
    }
    return 0;
}

/* Why broker_push refused pr with rv, into why. */
static void
push_refused(const struct broker *b, const struct push_req *pr, int rv, char *why)
{
    if (rv == SL_ENOTFOUND) {
        snprintf(why, WHY_MAX, "queue '%.*s' does not exist", (int)pr->queue->n, pr->queue->p);
    } else if (rv == SL_ETOOLARGE) {
        snprintf(why, WHY_MAX, "a payload exceeds the limit of %u bytes", b->cfg.max_payload);
    } else if (rv == SL_EBADREQ) {
        /* The one check broker_push makes that push_args cannot: against the clock. */
        snprintf(why, WHY_MAX, "push: 'run_at_ms' is more than 3,650 days ahead");
    } else if (rv == SL_EQUEUEFULL) {
        snprintf(why, WHY_MAX,
                 "the broker holds %llu jobs, %llu bytes; limits %llu jobs, %llu bytes",
                 (unsigned long long)b->jobs, (unsigned long long)b->bytes,
                 (unsigned long long)b->cfg.max_jobs, (unsigned long long)b->cfg.max_bytes);
    }
}

int
op_push(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    struct push_req pr = { 0 };
    struct push_res res;
    int rv;

    if ((rv = push_args(req, &pr, c->why)) != 0) {
        return rv;
    }
    if (b->jr != NULL && journal_broken(b->jr, c->why, WHY_MAX)) {
        return SL_EIO;
    }
    if ((rv = broker_push(b, &pr, &res)) != 0) {
        push_refused(b, &pr, rv, c->why);
        return rv;
    }
    if (res.duplicate) {
        /* Another job holds the key: nothing stored; its id answers. */
        wire_pack_ok(pk, 4);
        key_u64(pk, WK_N, 0);
        key_u64(pk, WK_FIRST_ID, res.first_id);
        wire_pack_key(pk, WK_DUP);
        msgpack_pack_false(pk);
        wire_pack_key(pk, WK_DUPLICATE);
        msgpack_pack_true(pk);
        c->pushed = 0;
        c->wait_lsn = res.lsn;
        return 0;
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

int
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

int
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

void
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

int
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
        flow_settle(b, FLOW_ACK, w, &req->v[WK_ACK].l, NULL, 0, &acked, &missing);
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
    const struct wire_list *errors = WIRE_HAS(req, WK_ERRORS) ? &req->v[WK_ERRORS].l : NULL;
    if (errors != NULL && (how != FLOW_NACK || errors->n != req->v[WK_IDS].l.n)) {
        snprintf(c->why, WHY_MAX, "'errors' goes with nack, one per id");
        return SL_EBADREQ;
    }
    for (uint32_t i = 0; errors != NULL && i < errors->n; i++) {
        if (wire_list_str(errors, i).n > BROKER_ERROR_MAX) {
            snprintf(c->why, WHY_MAX, "an error's text is at most %u bytes", BROKER_ERROR_MAX);
            return SL_EBADREQ;
        }
    }
    flow_settle(b, how, w, &req->v[WK_IDS].l, errors, ms, &done, &missing);
    wire_pack_ok(pk, 2);
    key_u64(pk, WK_N, done);
    key_u64(pk, WK_MISSING, missing);
    return 0;
}

int
op_ack(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return settle(b, req, pk, c, FLOW_ACK, WK_DELAY_MS, 0);
}

int
op_nack(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return settle(b, req, pk, c, FLOW_NACK, WK_DELAY_MS, BROKER_TTR_MAX_MS);
}

int
op_release(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return settle(b, req, pk, c, FLOW_RELEASE, WK_DELAY_MS, 0);
}

int
op_touch(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return settle(b, req, pk, c, FLOW_TOUCH, WK_TTR_MS, BROKER_TTR_MAX_MS);
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
