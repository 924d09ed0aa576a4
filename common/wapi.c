#include "wapi.h"

#include "spreq.h"
#include "urllist.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "mpr.h"
#include "rundir.h"

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define URL_MAX 512
#define WAIT_MS_MAX 600000u        /* the broker's longest reserve wait */
#define NACK_DELAY_MAX_MS 86400000u
#define REPLY_MARGIN_MS 10000u     /* a reply this late after its wait: the broker is stuck */
#define SETTLE_TIMEOUT_MS 5000u    /* ack, nack, release, hello */
#define HEARTBEAT_MS 1000u         /* report at least this often */
#define HEARTBEAT_TIMEOUT_MS 2000u
#define UNREACHABLE_MS 1000u       /* no connection for this long at a request: an outage */
#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 1000u
#define SLICE_MS 100u              /* waits look at *cfg.stop this often */

#define KEY_IS(k, lit) ((k).n == sizeof(lit) - 1 && memcmp((k).p, (lit), sizeof(lit) - 1) == 0)

enum wstate { WS_IDLE, WS_BUSY, WS_DRAINING };
static const char *const state_names[] = { "idle", "busy", "draining" };

struct wapi {
    struct spreq *conn;         /* the connection: the caller's requests and the heartbeat's */
    nng_thread *hb_thr;

    nng_mtx *mtx;               /* guards the fields marked (mtx) */
    nng_cv *cv;                 /* any of them changed */
    bool closing;               /* (mtx) the heartbeat thread must exit */
    bool waiting;               /* (mtx) the caller waits for a reply: the heartbeat thread
                                   watches */
    uint64_t wait_start_ms;     /* (mtx) when that wait started */
    uint32_t conn_num;          /* the connection the caller's last reply came on */
    uint32_t batch_conn;        /* the connection the batch came on: its jobs are void once it
                                   closes (the broker took them back) */
    uint64_t marked;            /* (mtx) the job the broker was last told this worker runs: the
                                   one it charges a crash (0: none) */

    char name[WIRE_NAME_MAX + 1];
    uint32_t name_len;
    char url[URL_MAX];          /* (mtx) the broker asked now */
    struct urllist list;        /* every broker given (a cluster's) */
    uint64_t pid;
    uint32_t prefetch, wait_ms, ack_delay_ms;
    uint64_t max_jobs, taken;   /* taken: jobs handed out */
    struct sl_str from[WIRE_FROM_MAX];
    char from_buf[WIRE_FROM_MAX][WIRE_NAME_MAX];
    uint32_t nfrom;
    const volatile sig_atomic_t *stop;
    wapi_tick_fn *tick;
    void *tick_arg;
    struct token token;         /* attached to every request; n == 0: none */

    /* The batch: the reply of the last reserve, whose jobs are handed out in place. */
    nng_msg *batch;
    struct mpr cur;             /* at the next job map */
    uint32_t left;              /* jobs of the batch not handed out */
    bool busy;                  /* the last reserve brought jobs: the next one reports busy */
    atomic_uint_fast64_t tick_ms; /* when cfg.tick was last called */
    uint64_t handout_ms;        /* when the last job was handed out */

    /* Settlements waiting to be sent; capacity cap each. */
    uint64_t *acks, *nacks, *ids; /* ids: scratch for release_all */
    uint32_t cap, ack_n, nack_n;
    uint64_t ack_since_ms, nack_since_ms;
    uint32_t nack_delay_ms;     /* the delay shared by the pending nacks */
    bool settled;               /* wapi_settle ran: nothing more is handed out or sent */
    uint64_t rtok, rtok_got;    /* token of the last reserve sent, and of the last one whose
                                   reply arrived (PROTOCOL.md, rtok) */

    /* Reported to the broker; read by the heartbeat thread. */
    atomic_uint_fast64_t state; /* enum wstate */
    atomic_uint_fast64_t current; /* the job handed out last and not settled; 0: none */
    atomic_uint_fast64_t rss_bytes;
    atomic_uint_fast64_t reported_ms; /* last report the broker answered */

    /* Outages. */
    atomic_uint_fast64_t down_since_ms; /* 0: the broker is reachable (as far as we know) */
    uint32_t down_tries;        /* requests that failed in this outage */
    uint32_t backoff_ms;
    atomic_bool need_hello;     /* register (again) before the next reserve */
    bool contacted;             /* a hello was answered once */
    uint64_t broker_pid;
    uint32_t bad_replies;       /* in a row: log the first only */
};

static bool
stopping(const struct wapi *w)
{
    return w->stop != NULL && *w->stop != 0;
}

static uint64_t
read_rss(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    unsigned long long size = 0, resident = 0;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2) {
        return 0;
    }
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

/* --- the connection ------------------------------------------------------------------------ */

#define TICK_MS 1000u /* cfg.tick is called at least this often while a request waits */

static void
tick(struct wapi *w, uint64_t now)
{
    atomic_store(&w->tick_ms, now);
    if (w->tick != NULL) {
        w->tick(w->tick_arg);
    }
}

/* Logs the start of an outage once; every request until the broker answers again is part of
 * it. Either thread may call it. */
static void
outage(struct wapi *w, const char *op, const char *error)
{
    uint_fast64_t zero = 0;
    atomic_store(&w->need_hello, true);
    if (atomic_compare_exchange_strong(&w->down_since_ms, &zero, clock_mono_ms())) {
        LOG(LOG_WARN, "broker.lost", "worker=%s url=\"%s\" op=%s error=\"%s\"", w->name, w->url,
            op, error);
    }
}

/* A request of the caller's failed for want of the broker. */
static void
failed(struct wapi *w, const char *op, const char *error)
{
    w->down_tries++;
    outage(w, op, error);
}

/* The heartbeat thread's watch over a wait of the caller's, every SLICE_MS (mtx held): it
 * logs an outage after a second without a connection, and calls cfg.tick. */
static void
watch(struct wapi *w, uint64_t now)
{
    if (now - w->wait_start_ms >= UNREACHABLE_MS && !spreq_connected(w->conn)) {
        outage(w, "wait", "no connection");
    }
    if (now - atomic_load(&w->tick_ms) >= TICK_MS) {
        tick(w, now);
    }
}

/* Moves to the broker at url (a cluster's leader, or the next of the list): the connection
 * open now ends, the next request dials url, and the worker says hello there before it
 * reserves again. */
static void
move_to(struct wapi *w, const char *url)
{
    if (strlen(url) >= sizeof(w->url)) {
        return;
    }
    nng_mtx_lock(w->mtx);
    if (strcmp(url, w->url) == 0) {
        nng_mtx_unlock(w->mtx);
        return;
    }
    LOG(LOG_INFO, "broker.moved", "worker=%s from=\"%s\" to=\"%s\"", w->name, w->url, url);
    strcpy(w->url, url);
    nng_mtx_unlock(w->mtx);
    spreq_move(w->conn, url);
    atomic_store(&w->need_hello, true);
}

static const char *
call_error(int rv)
{
    switch (rv) {
    case SL_EUNREACHABLE: return "no connection";
    case SL_EIO: return "connection closed";
    case SL_ETIMEDOUT: return "no reply in time";
    case SL_EBADREQ: return "cannot dial this URL";
    default: return "out of memory";
    }
}

/* Sends req (taken in every case) and waits up to timeout_ms for the reply, stored in *rep
 * (the caller's to free). Returns 0, or SL_EUNREACHABLE with *why set. Without a connection
 * it dials until the reply's time is up (with other brokers to try, 2 s at most), or, if
 * may_abandon, until the program stops. A cluster's standby answering (not_leader with
 * leader_url) counts as unreachable: the worker moves to the leader it names, or to the next
 * broker of its list, and the caller tries again. */
static int
call(struct wapi *w, nng_msg *req, nng_msg **rep, uint64_t timeout_ms, bool may_abandon,
     const char **why)
{
    uint32_t conn = 0;

    if (token_attach(req, &w->token) != 0) {
        nng_msg_free(req);
        *why = "out of memory";
        return SL_EUNREACHABLE;
    }
    struct spreq_how how = { .dial = true,
                             .connect_ms = w->list.n > 1 && timeout_ms > 2000 ? 2000 : timeout_ms,
                             .stop = may_abandon ? w->stop : NULL };
    nng_mtx_lock(w->mtx);
    w->waiting = true;
    w->wait_start_ms = clock_mono_ms();
    nng_mtx_unlock(w->mtx);
    int rv = spreq_call(w->conn, nng_msg_body(req), nng_msg_len(req), timeout_ms, &how, rep,
                        &conn);
    nng_mtx_lock(w->mtx);
    w->waiting = false;
    nng_mtx_unlock(w->mtx);
    nng_msg_free(req);
    if (rv != 0) {
        *why = call_error(rv);
        if (rv == SL_EUNREACHABLE && w->list.n > 1 && !stopping(w)) {
            char cur[URL_MAX];
            nng_mtx_lock(w->mtx);
            strcpy(cur, w->url);
            nng_mtx_unlock(w->mtx);
            move_to(w, urllist_next(&w->list, cur, NULL));
        }
        return SL_EUNREACHABLE;
    }
    /* A new connection: a broker that may not know this worker (restarted, or another). */
    if (conn != w->conn_num) {
        if (w->conn_num != 0) {
            atomic_store(&w->need_hello, true);
        }
        w->conn_num = conn;
    }
    char leader[URLLIST_URL_MAX];
    if (urllist_redirect(nng_msg_body(*rep), nng_msg_len(*rep), leader, sizeof(leader))) {
        char cur[URL_MAX];
        nng_msg_free(*rep);
        *rep = NULL;
        nng_mtx_lock(w->mtx);
        strcpy(cur, w->url);
        nng_mtx_unlock(w->mtx);
        move_to(w, urllist_next(&w->list, cur, leader));
        *why = "the broker is a standby of its cluster";
        return SL_EUNREACHABLE;
    }
    return 0;
}

static void
answered(struct wapi *w)
{
    w->backoff_ms = 0;
}

/* Waits before trying again: 50 ms doubling to 1 s; returns early when the program stops. */
static void
backoff(struct wapi *w)
{
    w->backoff_ms = w->backoff_ms == 0 ? BACKOFF_MIN_MS
                    : w->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS
                                                          : w->backoff_ms * 2;
    uint64_t end = clock_mono_ms() + w->backoff_ms;
    for (uint64_t now = clock_mono_ms(); now < end && !stopping(w); now = clock_mono_ms()) {
        nng_msleep((nng_duration)(end - now < SLICE_MS ? end - now : SLICE_MS));
    }
}

/* --- requests ------------------------------------------------------------------------------- */

static nng_msg *
msg_new(size_t size, msgpack_packer *pk)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) != 0) {
        return NULL;
    }
    /* Reserved once, the appends below cannot fail. */
    if (nng_msg_reserve(m, size) != 0) {
        nng_msg_free(m);
        return NULL;
    }
    msgpack_packer_init(pk, m, wire_pack_into_msg);
    return m;
}

static void
kv_u64(msgpack_packer *pk, enum wire_key k, uint64_t v)
{
    wire_pack_key(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void
kv_str(msgpack_packer *pk, enum wire_key k, const char *p, size_t n)
{
    wire_pack_key(pk, k);
    wire_pack_str(pk, p, n);
}

static void
kv_ids(msgpack_packer *pk, enum wire_key k, const uint64_t *ids, uint32_t n, bool reverse)
{
    wire_pack_key(pk, k);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_uint64(pk, ids[reverse ? n - 1 - i : i]);
    }
}

/* The fields a worker reports: pid, state, rss_bytes, current (4 pairs). */
static void
pack_report(struct wapi *w, msgpack_packer *pk, uint64_t current)
{
    enum wstate st = (enum wstate)atomic_load(&w->state);
    kv_u64(pk, WK_PID, w->pid);
    kv_str(pk, WK_STATE, state_names[st], strlen(state_names[st]));
    kv_u64(pk, WK_RSS_BYTES, atomic_load(&w->rss_bytes));
    kv_u64(pk, WK_CURRENT, current);
}

/* What a reply says, read in place. */
struct reply {
    bool has_ok, ok;
    struct sl_str err, msg;
    bool has_jobs;
    struct mpr jobs;            /* at the first job map */
    uint32_t njobs;
    uint64_t pid;
};

/* Reads a reply; SL_EBADREQ (with *why) unless it is one well-formed map with a boolean "ok". */
static int
parse_reply(const nng_msg *m, struct reply *r, const char **why)
{
    const void *body = nng_msg_body((nng_msg *)m);
    size_t len = nng_msg_len(m);
    struct mpr c;
    uint32_t n;

    memset(r, 0, sizeof(*r));
    if (len == 0 || wire_check(body, len) != 0) {
        *why = "not one well-formed msgpack value";
        return SL_EBADREQ;
    }
    mpr_init(&c, body, len);
    if (!mpr_map(&c, &n)) {
        *why = "not a map";
        return SL_EBADREQ;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct sl_str k;
        bool ok;
        if (!mpr_str(&c, &k)) {
            ok = mpr_skip(&c) && mpr_skip(&c); /* a key that is no string, and its value */
        } else if (KEY_IS(k, "ok")) {
            ok = r->has_ok = mpr_bool(&c, &r->ok);
        } else if (KEY_IS(k, "err")) {
            ok = mpr_str(&c, &r->err);
        } else if (KEY_IS(k, "msg")) {
            ok = mpr_str(&c, &r->msg);
        } else if (KEY_IS(k, "pid")) {
            ok = mpr_u64(&c, &r->pid);
        } else if (KEY_IS(k, "jobs")) {
            ok = r->has_jobs = mpr_array(&c, &r->njobs);
            r->jobs = c;
            for (uint32_t j = 0; ok && j < r->njobs; j++) {
                ok = mpr_skip(&c);
            }
        } else {
            ok = mpr_skip(&c);
        }
        if (!ok) {
            *why = "a field has the wrong type";
            return SL_EBADREQ;
        }
    }
    if (!r->has_ok) {
        *why = "no 'ok'";
        return SL_EBADREQ;
    }
    return 0;
}

/* For an ok:false reply: the error code named by "err" (SL_EINTERNAL if none). */
static int
reply_err(const struct reply *r)
{
    int e = r->err.p != NULL ? sl_err_from_code(r->err.p, r->err.n) : SL_EINTERNAL;
    return e != SL_OK ? e : SL_EINTERNAL;
}

static void
log_refused(struct wapi *w, const char *op, const struct reply *r)
{
    char msg[256];
    log_quote(msg, sizeof(msg), r->msg.p != NULL ? r->msg.p : "", r->msg.n);
    LOG(LOG_WARN, "broker.refused", "worker=%s op=%s err=%s msg=%s", w->name, op,
        sl_err_code(reply_err(r)), msg);
}

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
    nng_msg *req = msg_new(80 + w->name_len + (size_t)n * 9 + errn, &pk), *rep = NULL;
    const char *why = NULL;
    struct reply r;

    if (req == NULL) {
        LOG(LOG_ERROR, "settle.no_memory", "worker=%s op=%s jobs=%u", w->name, op, n);
        return;
    }
    msgpack_pack_map(&pk, 4 + has_delay + (err != NULL));
    kv_str(&pk, WK_OP, op, strlen(op));
    kv_str(&pk, WK_WORKER, w->name, w->name_len);
    kv_ids(&pk, WK_IDS, ids, n, reverse);
    if (err != NULL) {
        wire_pack_key(&pk, WK_ERRORS);
        msgpack_pack_array(&pk, 1);
        wire_pack_str(&pk, err->p, err->n);
    }
    if (has_delay) {
        kv_u64(&pk, WK_DELAY_MS, delay_ms);
    }
    /* Sent between jobs: the worker runs none (the broker then charges none, see marked). */
    kv_u64(&pk, WK_CURRENT, 0);
    set_marked(w, 0);
    if (call(w, req, &rep, SETTLE_TIMEOUT_MS, false, &why) != 0) {
        failed(w, op, why);
        return;
    }
    answered(w);
    if (parse_reply(rep, &r, &why) != 0) {
        LOG(LOG_WARN, "reply.bad", "worker=%s op=%s reason=\"%s\"", w->name, op, why);
    } else if (!r.ok) {
        log_refused(w, op, &r);
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

/* Registers the worker: at the first contact and after every outage. Returns 0 when the broker
 * answered (whatever it said), SL_EUNREACHABLE otherwise. */
static int
hello(struct wapi *w)
{
    msgpack_packer pk;
    nng_msg *req = msg_new(128 + w->name_len, &pk), *rep = NULL;
    const char *why = NULL;
    struct reply r;

    if (req == NULL) {
        return SL_ENOMEM;
    }
    msgpack_pack_map(&pk, 6);
    kv_str(&pk, WK_OP, "hello", 5);
    kv_str(&pk, WK_WORKER, w->name, w->name_len);
    pack_report(w, &pk, atomic_load(&w->current));
    if (call(w, req, &rep, SETTLE_TIMEOUT_MS, true, &why) != 0) {
        if (!stopping(w)) {
            failed(w, "hello", why);
        }
        return SL_EUNREACHABLE;
    }
    answered(w);
    atomic_store(&w->need_hello, false);
    atomic_store(&w->reported_ms, clock_mono_ms());
    uint64_t pid = 0;
    if (parse_reply(rep, &r, &why) == 0 && r.ok) {
        pid = r.pid;
    } else if (r.has_ok) {
        log_refused(w, "hello", &r);
    }
    nng_msg_free(rep);
    uint64_t since = atomic_exchange(&w->down_since_ms, 0);
    if (since != 0) {
        LOG(LOG_INFO, "broker.back", "worker=%s down_ms=%llu failed=%u broker_pid=%llu restarted=%s",
            w->name, (unsigned long long)(clock_mono_ms() - since), w->down_tries,
            (unsigned long long)pid, w->contacted && pid != w->broker_pid ? "yes" : "no");
        w->down_tries = 0;
    } else if (!w->contacted) {
        LOG(LOG_INFO, "broker.connected", "worker=%s url=\"%s\" broker_pid=%llu", w->name, w->url,
            (unsigned long long)pid);
    }
    w->contacted = true;
    w->broker_pid = pid;
    return 0;
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
    nng_msg *req = msg_new(size, &pk);

    if (req == NULL) {
        return NULL;
    }
    msgpack_pack_map(&pk, 10 + (w->nfrom > 0) + (w->ack_n > 0));
    kv_str(&pk, WK_OP, "reserve", 7);
    kv_str(&pk, WK_WORKER, w->name, w->name_len);
    kv_u64(&pk, WK_MAX, max);
    kv_u64(&pk, WK_WAIT_MS, w->wait_ms);
    pack_report(w, &pk, 0);
    set_marked(w, 0);
    /* A reply that never arrives (given up on, or an error in its place) leaves rtok_got
     * behind: the broker gives that reply's jobs back when it reads the next reserve. */
    kv_u64(&pk, WK_RTOK, rtok);
    kv_u64(&pk, WK_RTOK_GOT, w->rtok_got);
    if (w->nfrom > 0) {
        wire_pack_key(&pk, WK_FROM);
        msgpack_pack_array(&pk, w->nfrom);
        for (uint32_t i = 0; i < w->nfrom; i++) {
            wire_pack_str(&pk, w->from[i].p, w->from[i].n);
        }
    }
    if (w->ack_n > 0) {
        kv_ids(&pk, WK_ACK, w->acks, w->ack_n, false);
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

    if (atomic_load(&w->need_hello) && hello(w) != 0) {
        if (!stopping(w)) {
            backoff(w);
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
        backoff(w);
        return 0;
    }
    if (call(w, req, &rep, (uint64_t)w->wait_ms + REPLY_MARGIN_MS, true, &why) != 0) {
        if (!stopping(w)) {
            failed(w, "reserve", why);
            backoff(w);
        }
        return 0;
    }
    answered(w);
    atomic_store(&w->reported_ms, clock_mono_ms());
    if (parse_reply(rep, &r, &why) != 0) {
        if (w->bad_replies++ == 0) {
            LOG(LOG_WARN, "reply.bad", "worker=%s op=reserve reason=\"%s\"", w->name, why);
        }
        nng_msg_free(rep);
        backoff(w);
        return 0;
    }
    w->bad_replies = 0;
    if (!r.ok) {
        int rv = reply_err(&r);
        log_refused(w, "reserve", &r);
        nng_msg_free(rep);
        if (rv == SL_EBADREQ || rv == SL_EUNKNOWNOP || rv == SL_EUNAUTH) {
            return rv;
        }
        backoff(w);
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

static void
default_name(char *out, size_t cap)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "worker");
    }
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            *p = '-';
        }
    }
    if (host[0] == '\0') {
        strcpy(host, "worker");
    }
    /* "HOST:PID" within the name limit: the host is cut, never the pid. */
    snprintf(out, cap, "%.*s:%ld", (int)(cap - 1 - 21), host, (long)getpid());
}

static int
configure(struct wapi *w, const struct wapi_cfg *cfg)
{
    char why[RUNDIR_MAX * 2 + 256];
    int rv;

    if (cfg->name != NULL) {
        if (!wire_name_ok(cfg->name, strlen(cfg->name))) {
            LOG(LOG_ERROR, "wapi.bad_name", "reason=\"a worker name is 1-128 bytes of "
                "[A-Za-z0-9._:-]\"");
            return SL_EBADREQ;
        }
        strcpy(w->name, cfg->name);
    } else {
        default_name(w->name, sizeof(w->name));
    }
    w->name_len = (uint32_t)strlen(w->name);
    if (cfg->url != NULL) {
        if (urllist_parse(&w->list, cfg->url) != 0 || strlen(w->list.url[0]) >= sizeof(w->url) ||
            urllist_check(&w->list) != 0) {
            LOG(LOG_ERROR, "wapi.bad_url", "url=\"%s\" reason=\"not a valid URL or URL,URL,... "
                "(at most %d, each under %d bytes)\"", cfg->url, URLLIST_MAX, URL_MAX);
            return SL_EBADREQ;
        }
        strcpy(w->url, w->list.url[0]);
    } else if ((rv = rundir_default_url(w->url, sizeof(w->url), "broker.ipc", why,
                                        sizeof(why))) != 0) {
        LOG(LOG_ERROR, "wapi.bad_url", "reason=\"%s\"", why);
        return rv;
    }
    w->prefetch = cfg->prefetch == 0 ? 1 : cfg->prefetch;
    w->wait_ms = cfg->wait_ms == 0 ? WAPI_WAIT_MS_DEFAULT : cfg->wait_ms;
    w->ack_delay_ms = cfg->ack_delay_ms == 0 ? WAPI_ACK_DELAY_MS_DEFAULT : cfg->ack_delay_ms;
    if (w->prefetch > WAPI_PREFETCH_MAX || w->wait_ms > WAIT_MS_MAX) {
        LOG(LOG_ERROR, "wapi.bad_cfg", "prefetch=%u wait_ms=%u reason=\"prefetch is 1-%u, "
            "wait_ms 1-%u\"", w->prefetch, w->wait_ms, WAPI_PREFETCH_MAX, WAIT_MS_MAX);
        return SL_EBADREQ;
    }
    if (cfg->nqueues > WIRE_FROM_MAX || (cfg->nqueues > 0 && cfg->queues == NULL)) {
        LOG(LOG_ERROR, "wapi.bad_cfg", "queues=%u reason=\"at most %u queues\"", cfg->nqueues,
            WIRE_FROM_MAX);
        return SL_EBADREQ;
    }
    for (uint32_t i = 0; i < cfg->nqueues; i++) {
        size_t n = cfg->queues[i] != NULL ? strlen(cfg->queues[i]) : 0;
        if (!wire_name_ok(cfg->queues[i], n)) {
            char q[64];
            log_quote(q, sizeof(q), cfg->queues[i] != NULL ? cfg->queues[i] : "", (unsigned)n);
            LOG(LOG_ERROR, "wapi.bad_queue", "queue=%s", q);
            return SL_EBADREQ;
        }
        memcpy(w->from_buf[i], cfg->queues[i], n);
        w->from[i] = (struct sl_str){ w->from_buf[i], (uint32_t)n };
    }
    w->nfrom = cfg->nqueues;
    w->max_jobs = cfg->max_jobs;
    w->stop = cfg->stop;
    w->tick = cfg->tick;
    w->tick_arg = cfg->tick_arg;
    if (cfg->token != NULL) {
        w->token = *cfg->token;
    }
    w->pid = (uint64_t)getpid();
    /* Room for a batch of acks beyond the one in progress, so a full list is rare. */
    w->cap = w->prefetch * 2 < 64 ? 64 : w->prefetch * 2;
    return 0;
}

static void
heartbeat(struct wapi *w)
{
    msgpack_packer pk;
    nng_msg *req = msg_new(128 + w->name_len, &pk), *rep = NULL;

    if (req == NULL) {
        return;
    }
    msgpack_pack_map(&pk, 6);
    kv_str(&pk, WK_OP, "heartbeat", 9);
    kv_str(&pk, WK_WORKER, w->name, w->name_len);
    /* Read and marked in one step: wapi_next, having cleared current, sees the mark of any
     * report that named the job before (see unmark). */
    nng_mtx_lock(w->mtx);
    uint64_t cur = atomic_load(&w->current);
    w->marked = cur;
    nng_mtx_unlock(w->mtx);
    pack_report(w, &pk, cur);
    if (token_attach(req, &w->token) != 0) {
        nng_msg_free(req);
        return;
    }
    /* One dial at most: a broker back after an outage sees a busy worker at once. */
    const struct spreq_how how = { .dial = true, .connect_ms = 0, .stop = NULL };
    uint32_t conn;
    if (spreq_call(w->conn, nng_msg_body(req), nng_msg_len(req), HEARTBEAT_TIMEOUT_MS, &how, &rep,
                   &conn) == 0) {
        nng_msg_free(rep); /* nothing in it matters */
    }
    nng_msg_free(req);
}

/* The heartbeat thread: reports the worker once a second when nothing else did, so a worker
 * busy with a long job still shows its state and current job (failures are the caller's
 * requests' to notice and log); and watches the caller's waits (watch()). */
static void
hb_main(void *arg)
{
    struct wapi *w = arg;

    nng_mtx_lock(w->mtx);
    while (!w->closing) {
        uint64_t now = clock_mono_ms();
        uint64_t due = atomic_load(&w->reported_ms) + HEARTBEAT_MS;
        uint64_t cur = atomic_load(&w->current);
        if (w->waiting) {
            watch(w, now);
        }
        /* A job started since the last report is reported within SLICE_MS: the broker
         * charges a crash only to the job it was told the worker runs. */
        if (now >= due || (cur != 0 && cur != w->marked && spreq_connected(w->conn))) {
            nng_mtx_unlock(w->mtx);
            atomic_store(&w->rss_bytes, read_rss());
            heartbeat(w);
            atomic_store(&w->reported_ms, clock_mono_ms());
            nng_mtx_lock(w->mtx);
            continue;
        }
        uint64_t wait = due - now < SLICE_MS ? due - now : SLICE_MS;
        nng_cv_until(w->cv, nng_clock() + (nng_time)wait);
    }
    nng_mtx_unlock(w->mtx);
}

int
wapi_open(struct wapi **wp, const struct wapi_cfg *cfg)
{
    struct wapi *w = calloc(1, sizeof(*w));
    int rv;

    if (w == NULL) {
        return SL_ENOMEM;
    }
    if ((rv = configure(w, cfg)) != 0) {
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
    atomic_init(&w->rss_bytes, read_rss());
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
    if ((rv = nng_thread_create(&w->hb_thr, hb_main, w)) != 0) {
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
        if (w->settled || stopping(w) || (w->max_jobs > 0 && w->taken >= w->max_jobs)) {
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
        tick(w, clock_mono_ms());
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
