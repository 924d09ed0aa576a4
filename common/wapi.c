#include "wapi_int.h"

#include "clock.h"
#include "err.h"
#include "log.h"

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
set_marked(struct wapi *w, uint64_t id)
{
    nng_mtx_lock(w->mtx);
    w->marked = id;
    nng_mtx_unlock(w->mtx);
}

/* One settling request (ack, nack, release) of n ids; err: a nack's error text for its one
 * id (NULL: none). A failure is logged as an outage and not retried: a connection that closed
 * made the broker take the jobs back anyway. */
static void
settle(struct wapi *w, const char *op, const uint64_t *ids, uint32_t n, bool reverse,
       bool has_delay, uint32_t delay_ms, const struct sl_str *err)
{
    msgpack_packer pk;
    size_t errn = err != NULL ? err->n + 16 : 0;
    nng_msg *req = wapi_msg_new(80 + w->name_len + (size_t)n * 9 + errn, &pk), *rep = NULL;
    const char *why = NULL;
    struct reply r;

    if (req == NULL) {
        LOG(LOG_ERROR, "settle.no_memory", "worker=%s op=%s jobs=%u", w->name, op, n);
        return;
    }
    msgpack_pack_map(&pk, 4 + has_delay + (err != NULL));
    wapi_kv_str(&pk, WK_OP, op, strlen(op));
    wapi_kv_str(&pk, WK_WORKER, w->name, w->name_len);
    wapi_kv_ids(&pk, WK_IDS, ids, n, reverse);
    if (err != NULL) {
        wire_pack_key(&pk, WK_ERRORS);
        msgpack_pack_array(&pk, 1);
        wire_pack_str(&pk, err->p, err->n);
    }
    if (has_delay) {
        wapi_kv_u64(&pk, WK_DELAY_MS, delay_ms);
    }
    /* Sent between jobs: the worker runs none (the broker then charges none, see marked). */
    wapi_kv_u64(&pk, WK_CURRENT, 0);
    set_marked(w, 0);
    if (wapi_call(w, req, &rep, SETTLE_TIMEOUT_MS, false, &why) != 0) {
        wapi_failed(w, op, why);
        return;
    }
    wapi_answered(w);
    if (wapi_parse_reply(rep, &r, &why) != 0) {
        LOG(LOG_WARN, "reply.bad", "worker=%s op=%s reason=\"%s\"", w->name, op, why);
    } else if (!r.ok) {
        wapi_log_refused(w, op, &r);
    }
    nng_msg_free(rep);
}

static void
flush_acks(struct wapi *w)
{
    if (w->ack_n > 0) {
        settle(w, "ack", w->acks, w->ack_n, false, false, 0, NULL);
        w->ack_n = 0;
    }
}

static void
flush_nacks(struct wapi *w)
{
    if (w->nack_n > 0) {
        settle(w, "nack", w->nacks, w->nack_n, false, true, w->nack_delay_ms, NULL);
        w->nack_n = 0;
    }
}

/* --- the batch ------------------------------------------------------------------------------ */

static void
batch_drop(struct wapi *w)
{
    if (w->batch != NULL) {
        nng_msg_free(w->batch);
        w->batch = NULL;
    }
    w->left = 0;
}

static void
batch_set(struct wapi *w, nng_msg *rep, const struct reply *r)
{
    w->batch = rep;
    w->cur = r->jobs;
    w->left = r->njobs;
    w->batch_conn = w->conn_num;
}

/* Reads the job map at c into *j. Returns 0, or SL_EBADREQ with *why (then *id is the job's id
 * if it had a valid one, else 0). The cursor moves past the map in every case it can. */
static int
parse_job(struct mpr *c, struct wapi_job *j, uint64_t *id, const char **why)
{
    uint32_t n;
    bool has_id = false, has_payload = false;
    uint64_t u;

    memset(j, 0, sizeof(*j));
    *id = 0;
    *why = NULL;
    if (!mpr_map(c, &n)) {
        *why = "a job is not a map";
        mpr_skip(c);
        return SL_EBADREQ;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct sl_str k, s;
        bool ok = true, known = true;
        if (!mpr_str(c, &k)) {
            known = false;
            ok = mpr_skip(c); /* the key */
        } else if (KEY_IS(k, "id")) {
            ok = has_id = mpr_u64(c, &j->id) && j->id != 0;
        } else if (KEY_IS(k, "payload")) {
            ok = has_payload = mpr_blob(c, &s);
            j->payload = s.p;
            j->len = s.n;
        } else if (KEY_IS(k, "group")) {
            ok = mpr_str(c, &j->group);
        } else if (KEY_IS(k, "queue")) {
            ok = mpr_str(c, &j->queue);
        } else if (KEY_IS(k, "attempts")) {
            ok = mpr_u64(c, &u);
            j->attempts = u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
        } else if (KEY_IS(k, "max_attempts")) {
            ok = mpr_u64(c, &u);
            j->max_attempts = u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
        } else if (KEY_IS(k, "ttr_ms")) {
            ok = mpr_u64(c, &u);
            j->ttr_ms = u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
        } else if (KEY_IS(k, "enq_ms")) {
            ok = mpr_u64(c, &j->enq_ms);
        } else {
            known = false;
        }
        if (!ok && *why == NULL) {
            *why = "a field of a job has the wrong type";
        }
        if ((!ok || !known) && !mpr_skip(c)) {
            *why = "a job is truncated";
            c->p = c->end;
            return SL_EBADREQ;
        }
    }
    if (has_id) {
        *id = j->id;
    }
    if (*why == NULL && !has_id) {
        *why = "a job has no id";
    }
    if (*why == NULL && !has_payload) {
        *why = "a job has no payload";
    }
    return *why == NULL ? 0 : SL_EBADREQ;
}

/* The reserve request of token rtok for up to max jobs, carrying the pending acks; NULL
 * without memory. */
static nng_msg *
reserve_request(struct wapi *w, uint64_t max, uint64_t rtok)
{
    msgpack_packer pk;
    size_t size = 200 + w->name_len + (size_t)w->ack_n * 9 + (size_t)w->nfrom * (WIRE_NAME_MAX + 5);
    nng_msg *req = wapi_msg_new(size, &pk);

    if (req == NULL) {
        return NULL;
    }
    msgpack_pack_map(&pk, 10 + (w->nfrom > 0) + (w->ack_n > 0));
    wapi_kv_str(&pk, WK_OP, "reserve", 7);
    wapi_kv_str(&pk, WK_WORKER, w->name, w->name_len);
    wapi_kv_u64(&pk, WK_MAX, max);
    wapi_kv_u64(&pk, WK_WAIT_MS, w->wait_ms);
    wapi_pack_report(w, &pk, 0);
    set_marked(w, 0);
    /* A reply that never arrives (given up on, or an error in its place) leaves rtok_got
     * behind: the broker gives that reply's jobs back when it reads the next reserve. */
    wapi_kv_u64(&pk, WK_RTOK, rtok);
    wapi_kv_u64(&pk, WK_RTOK_GOT, w->rtok_got);
    if (w->nfrom > 0) {
        wire_pack_key(&pk, WK_FROM);
        msgpack_pack_array(&pk, w->nfrom);
        for (uint32_t i = 0; i < w->nfrom; i++) {
            wire_pack_str(&pk, w->from[i].p, w->from[i].n);
        }
    }
    if (w->ack_n > 0) {
        wapi_kv_ids(&pk, WK_ACK, w->acks, w->ack_n, false);
    }
    return req;
}

/* Asks for jobs, carrying pending acks; waits up to wait_ms in the broker. Returns 0 when the
 * round is over (a batch may have arrived; on a failure after a backoff), or a permanent
 * error. */
static int
reserve(struct wapi *w)
{
    nng_msg *req, *rep = NULL;
    const char *why = NULL;
    struct reply r;

    if (atomic_load(&w->need_hello) && wapi_hello(w) != 0) {
        if (!wapi_stopping(w)) {
            wapi_backoff(w);
        }
        return 0;
    }
    flush_nacks(w);
    uint64_t max = w->prefetch;
    if (w->max_jobs > 0 && w->max_jobs - w->taken < max) {
        max = w->max_jobs - w->taken;
    }
    atomic_store(&w->state, w->busy ? WS_BUSY : WS_IDLE);
    atomic_store(&w->current, 0);
    uint64_t rtok = ++w->rtok;
    if ((req = reserve_request(w, max, rtok)) == NULL) {
        LOG(LOG_ERROR, "reserve.no_memory", "worker=%s", w->name);
        wapi_backoff(w);
        return 0;
    }
    if (wapi_call(w, req, &rep, (uint64_t)w->wait_ms + REPLY_MARGIN_MS, true, &why) != 0) {
        if (!wapi_stopping(w)) {
            wapi_failed(w, "reserve", why);
            wapi_backoff(w);
        }
        return 0;
    }
    wapi_answered(w);
    atomic_store(&w->reported_ms, clock_mono_ms());
    if (wapi_parse_reply(rep, &r, &why) != 0) {
        if (w->bad_replies++ == 0) {
            LOG(LOG_WARN, "reply.bad", "worker=%s op=reserve reason=\"%s\"", w->name, why);
        }
        nng_msg_free(rep);
        wapi_backoff(w);
        return 0;
    }
    w->bad_replies = 0;
    if (!r.ok) {
        int rv = wapi_reply_err(&r);
        wapi_log_refused(w, "reserve", &r);
        nng_msg_free(rep);
        if (rv == SL_EBADREQ || rv == SL_EUNKNOWNOP || rv == SL_EUNAUTH) {
            return rv;
        }
        wapi_backoff(w);
        return 0;
    }
    w->ack_n = 0; /* settled by the broker before it reserved */
    w->rtok_got = rtok;
    w->busy = r.has_jobs && r.njobs > 0;
    if (!w->busy) {
        nng_msg_free(rep);
        return 0;
    }
    batch_set(w, rep, &r);
    return 0;
}

/* --- the API -------------------------------------------------------------------------------- */

int
wapi_open(struct wapi **wp, const struct wapi_cfg *cfg)
{
    struct wapi *w = calloc(1, sizeof(*w));
    int rv;

    if (w == NULL) {
        return SL_ENOMEM;
    }
    if ((rv = wapi_configure(w, cfg)) != 0) {
        free(w);
        return rv;
    }
    w->acks = calloc(w->cap, sizeof(uint64_t));
    w->nacks = calloc(w->cap, sizeof(uint64_t));
    w->ids = calloc(w->cap, sizeof(uint64_t));
    if (w->acks == NULL || w->nacks == NULL || w->ids == NULL) {
        rv = SL_ENOMEM;
        goto fail_arrays;
    }
    atomic_init(&w->state, WS_IDLE);
    atomic_init(&w->current, 0);
    atomic_init(&w->rss_bytes, wapi_read_rss());
    atomic_init(&w->reported_ms, clock_mono_ms());
    atomic_init(&w->need_hello, true);
    atomic_init(&w->down_since_ms, 0);
    atomic_init(&w->tick_ms, clock_mono_ms());
    if ((rv = nng_mtx_alloc(&w->mtx)) != 0) {
        goto fail_nng;
    }
    if ((rv = nng_cv_alloc(&w->cv, w->mtx)) != 0) {
        goto fail_mtx;
    }
    if (w->list.n == 0) {
        w->list.n = 1;
        strcpy(w->list.url[0], w->url);
    }
    if ((rv = spreq_open(&w->conn, w->url)) != 0) {
        if (rv == SL_EBADREQ) {
            LOG(LOG_ERROR, "wapi.bad_url", "url=\"%s\" reason=\"a worker speaks ipc:// and "
                "tcp:// only\"", w->url);
        }
        nng_cv_free(w->cv);
        nng_mtx_free(w->mtx);
        goto fail_arrays;
    }
    if ((rv = nng_thread_create(&w->hb_thr, wapi_hb_main, w)) != 0) {
        spreq_free(w->conn);
        goto fail_cv;
    }
    *wp = w;
    return 0;

fail_cv:
    nng_cv_free(w->cv);
fail_mtx:
    nng_mtx_free(w->mtx);
fail_nng:
    if (rv != SL_EBADREQ) {
        LOG(LOG_ERROR, "wapi.open", "error=\"%s\"", nng_strerror(rv));
        rv = rv == NNG_ENOMEM ? SL_ENOMEM : SL_EIO;
    }
fail_arrays:
    free(w->ids);
    free(w->nacks);
    free(w->acks);
    free(w);
    return rv;
}

int
wapi_connections(struct wapi *w)
{
    return spreq_connected(w->conn) ? 1 : 0;
}

const char *
wapi_name(const struct wapi *w)
{
    return w->name;
}

/* Sends the pending settlements if they waited long enough: ack_delay_ms for the oldest, or
 * since the last job was handed out (slow jobs: an ack per job costs little next to them). */
static void
flush_due(struct wapi *w, uint64_t now)
{
    if (w->ack_n > 0 &&
        (now - w->ack_since_ms >= w->ack_delay_ms || now - w->handout_ms >= w->ack_delay_ms)) {
        flush_acks(w);
    }
    if (w->nack_n > 0 &&
        (now - w->nack_since_ms >= w->ack_delay_ms || now - w->handout_ms >= w->ack_delay_ms)) {
        flush_nacks(w);
    }
}

/* Before a job starts: if the broker was told that a job (now finished) runs, tell it that
 * none does, so that a death during the next job is not charged to the finished one. The
 * pending settlements carry that word; else an empty ack. One round trip, only after a job
 * that ran long enough to be reported. */
static void
unmark(struct wapi *w)
{
    nng_mtx_lock(w->mtx);
    bool marked = w->marked != 0;
    nng_mtx_unlock(w->mtx);
    if (!marked) {
        return;
    }
    if (w->nack_n > 0 || w->ack_n > 0) {
        flush_nacks(w);
        flush_acks(w);
    } else {
        settle(w, "ack", NULL, 0, false, false, 0, NULL);
    }
}

int
wapi_next(struct wapi *w, struct wapi_job *job)
{
    int rv;

    for (;;) {
        if (w->settled || wapi_stopping(w) || (w->max_jobs > 0 && w->taken >= w->max_jobs)) {
            atomic_store(&w->state, WS_DRAINING);
            return SL_ETIMEDOUT;
        }
        if (w->left > 0 && spreq_lost(w->conn, w->batch_conn)) {
            LOG(LOG_INFO, "batch.dropped", "worker=%s jobs=%u reason=\"connection closed: the "
                "broker took them back\"", w->name, w->left);
            batch_drop(w);
        }
        if (w->left > 0) {
            uint64_t id;
            const char *why;
            w->left--;
            if (parse_job(&w->cur, job, &id, &why) != 0) {
                LOG(LOG_WARN, "job.bad", "worker=%s id=%llu reason=\"%s\"", w->name,
                    (unsigned long long)id, why);
                if (id != 0) {
                    wapi_nack(w, id, 0); /* a job we cannot read fails, and dies in time */
                }
                if (mpr_left(&w->cur) == 0) {
                    w->left = 0;
                }
                continue;
            }
            uint64_t now = clock_mono_ms();
            flush_due(w, now);
            unmark(w);
            w->handout_ms = now;
            w->taken++;
            atomic_store(&w->state, WS_BUSY);
            atomic_store(&w->current, job->id);
            return 0;
        }
        batch_drop(w);
        if ((rv = reserve(w)) != 0) {
            return rv;
        }
        wapi_tick(w, clock_mono_ms());
    }
}

void
wapi_ack(struct wapi *w, uint64_t id)
{
    if (w->ack_n == w->cap) {
        flush_acks(w);
    }
    if (w->ack_n == 0) {
        w->ack_since_ms = w->handout_ms; /* no clock read: the job was handed out then */
    }
    w->acks[w->ack_n++] = id;
    atomic_compare_exchange_strong(&w->current, &(uint_fast64_t){ id }, 0);
}

void
wapi_nack_error(struct wapi *w, uint64_t id, uint32_t delay_ms, const char *err, size_t n)
{
    if (err == NULL || n == 0) {
        wapi_nack(w, id, delay_ms);
        return;
    }
    if (delay_ms > NACK_DELAY_MAX_MS) {
        delay_ms = NACK_DELAY_MAX_MS;
    }
    struct sl_str e = { err, (uint32_t)(n < WAPI_ERROR_MAX ? n : WAPI_ERROR_MAX) };
    flush_nacks(w); /* in order */
    settle(w, "nack", &id, 1, false, true, delay_ms, &e);
    atomic_compare_exchange_strong(&w->current, &(uint_fast64_t){ id }, 0);
}

void
wapi_nack(struct wapi *w, uint64_t id, uint32_t delay_ms)
{
    if (delay_ms > NACK_DELAY_MAX_MS) {
        delay_ms = NACK_DELAY_MAX_MS;
    }
    if (w->nack_n == w->cap || (w->nack_n > 0 && delay_ms != w->nack_delay_ms)) {
        flush_nacks(w);
    }
    if (w->nack_n == 0) {
        w->nack_since_ms = w->handout_ms;
        w->nack_delay_ms = delay_ms;
    }
    w->nacks[w->nack_n++] = id;
    atomic_compare_exchange_strong(&w->current, &(uint_fast64_t){ id }, 0);
}

void
wapi_release(struct wapi *w, uint64_t id)
{
    atomic_compare_exchange_strong(&w->current, &(uint_fast64_t){ id }, 0);
    settle(w, "release", &id, 1, false, false, 0, NULL);
}

void
wapi_release_all(struct wapi *w)
{
    uint32_t n = 0;

    if (w->left > 0 && !spreq_lost(w->conn, w->batch_conn)) {
        while (w->left > 0 && n < w->cap) {
            struct wapi_job j;
            uint64_t id;
            const char *why;
            w->left--;
            parse_job(&w->cur, &j, &id, &why);
            if (id != 0) {
                w->ids[n++] = id;
            }
        }
    }
    batch_drop(w);
    if (n > 0) {
        /* Each released job goes to the head of its queue: last first keeps their order. */
        settle(w, "release", w->ids, n, true, false, 0, NULL);
        LOG(LOG_INFO, "released", "worker=%s jobs=%u", w->name, n);
    }
}

void
wapi_settle(struct wapi *w)
{
    if (w->settled) {
        return;
    }
    w->settled = true;
    atomic_store(&w->state, WS_DRAINING);
    if (spreq_connected(w->conn)) {
        flush_nacks(w);
        flush_acks(w);
        wapi_release_all(w);
    } else if (w->ack_n + w->nack_n + w->left > 0) {
        LOG(LOG_INFO, "close.offline", "worker=%s acks=%u nacks=%u prefetched=%u "
            "reason=\"broker unreachable: it takes the jobs back itself\"", w->name, w->ack_n,
            w->nack_n, w->left);
    }
    batch_drop(w);
}

/* Settles, stops the heartbeat thread (a heartbeat waiting for its reply gives up at once),
 * closes the connection and frees w. */
static void
finish(struct wapi *w)
{
    wapi_settle(w); /* does nothing if the caller settled */
    nng_mtx_lock(w->mtx);
    w->closing = true;
    nng_cv_wake(w->cv);
    nng_mtx_unlock(w->mtx);
    spreq_interrupt(w->conn);
    nng_thread_destroy(w->hb_thr);
    spreq_free(w->conn);
    nng_cv_free(w->cv);
    nng_mtx_free(w->mtx);
    free(w->ids);
    free(w->nacks);
    free(w->acks);
    free(w);
}

void
wapi_close(struct wapi *w)
{
    if (w != NULL) {
        finish(w);
    }
}

void
wapi_leave(struct wapi *w)
{
    if (w != NULL) {
        finish(w);
    }
}
