/* The worker API's session with the broker (wapi.h): one request and its reply, outages and
 * moves between a cluster's brokers, registration (hello), and the heartbeat thread that
 * reports the worker and watches the caller's waits. */
#include "wapi_int.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "rundir.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS 1000u /* cfg.tick is called at least this often while a request waits */

static const char *const state_names[] = { "idle", "busy", "draining" };

bool
wapi_stopping(const struct wapi *w)
{
    return w->stop != NULL && *w->stop != 0;
}

uint64_t
wapi_read_rss(void)
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

void
wapi_tick(struct wapi *w, uint64_t now)
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
void
wapi_failed(struct wapi *w, const char *op, const char *error)
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
        wapi_tick(w, now);
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
int
wapi_call(struct wapi *w, nng_msg *req, nng_msg **rep, uint64_t timeout_ms, bool may_abandon,
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
        if (rv == SL_EUNREACHABLE && w->list.n > 1 && !wapi_stopping(w)) {
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

void
wapi_answered(struct wapi *w)
{
    w->backoff_ms = 0;
}

/* Waits before trying again: 50 ms doubling to 1 s; returns early when the program stops. */
void
wapi_backoff(struct wapi *w)
{
    w->backoff_ms = w->backoff_ms == 0 ? BACKOFF_MIN_MS
                    : w->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS
                                                          : w->backoff_ms * 2;
    uint64_t end = clock_mono_ms() + w->backoff_ms;
    for (uint64_t now = clock_mono_ms(); now < end && !wapi_stopping(w); now = clock_mono_ms()) {
        nng_msleep((nng_duration)(end - now < SLICE_MS ? end - now : SLICE_MS));
    }
}

nng_msg *
wapi_msg_new(size_t size, msgpack_packer *pk)
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

void
wapi_kv_u64(msgpack_packer *pk, enum wire_key k, uint64_t v)
{
    wire_pack_key(pk, k);
    msgpack_pack_uint64(pk, v);
}

void
wapi_kv_str(msgpack_packer *pk, enum wire_key k, const char *p, size_t n)
{
    wire_pack_key(pk, k);
    wire_pack_str(pk, p, n);
}

void
wapi_kv_ids(msgpack_packer *pk, enum wire_key k, const uint64_t *ids, uint32_t n, bool reverse)
{
    wire_pack_key(pk, k);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_uint64(pk, ids[reverse ? n - 1 - i : i]);
    }
}

/* The fields a worker reports: pid, state, rss_bytes, current (4 pairs). */
void
wapi_pack_report(struct wapi *w, msgpack_packer *pk, uint64_t current)
{
    enum wstate st = (enum wstate)atomic_load(&w->state);
    wapi_kv_u64(pk, WK_PID, w->pid);
    wapi_kv_str(pk, WK_STATE, state_names[st], strlen(state_names[st]));
    wapi_kv_u64(pk, WK_RSS_BYTES, atomic_load(&w->rss_bytes));
    wapi_kv_u64(pk, WK_CURRENT, current);
}

/* Reads a reply; SL_EBADREQ (with *why) unless it is one well-formed map with a boolean "ok". */
int
wapi_parse_reply(const nng_msg *m, struct reply *r, const char **why)
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
int
wapi_reply_err(const struct reply *r)
{
    int e = r->err.p != NULL ? sl_err_from_code(r->err.p, r->err.n) : SL_EINTERNAL;
    return e != SL_OK ? e : SL_EINTERNAL;
}

void
wapi_log_refused(struct wapi *w, const char *op, const struct reply *r)
{
    char msg[256];
    log_quote(msg, sizeof(msg), r->msg.p != NULL ? r->msg.p : "", r->msg.n);
    LOG(LOG_WARN, "broker.refused", "worker=%s op=%s err=%s msg=%s", w->name, op,
        sl_err_code(wapi_reply_err(r)), msg);
}

/* Registers the worker: at the first contact and after every outage. Returns 0 when the broker
 * answered (whatever it said), SL_EUNREACHABLE otherwise. */
int
wapi_hello(struct wapi *w)
{
    msgpack_packer pk;
    nng_msg *req = wapi_msg_new(128 + w->name_len, &pk), *rep = NULL;
    const char *why = NULL;
    struct reply r;

    if (req == NULL) {
        return SL_ENOMEM;
    }
    msgpack_pack_map(&pk, 6);
    wapi_kv_str(&pk, WK_OP, "hello", 5);
    wapi_kv_str(&pk, WK_WORKER, w->name, w->name_len);
    wapi_pack_report(w, &pk, atomic_load(&w->current));
    if (wapi_call(w, req, &rep, SETTLE_TIMEOUT_MS, true, &why) != 0) {
        if (!wapi_stopping(w)) {
            wapi_failed(w, "hello", why);
        }
        return SL_EUNREACHABLE;
    }
    wapi_answered(w);
    atomic_store(&w->need_hello, false);
    atomic_store(&w->reported_ms, clock_mono_ms());
    uint64_t pid = 0;
    if (wapi_parse_reply(rep, &r, &why) == 0 && r.ok) {
        pid = r.pid;
    } else if (r.has_ok) {
        wapi_log_refused(w, "hello", &r);
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

int
wapi_configure(struct wapi *w, const struct wapi_cfg *cfg)
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
    nng_msg *req = wapi_msg_new(128 + w->name_len, &pk), *rep = NULL;

    if (req == NULL) {
        return;
    }
    msgpack_pack_map(&pk, 6);
    wapi_kv_str(&pk, WK_OP, "heartbeat", 9);
    wapi_kv_str(&pk, WK_WORKER, w->name, w->name_len);
    /* Read and marked in one step: wapi_next, having cleared current, sees the mark of any
     * report that named the job before (see unmark). */
    nng_mtx_lock(w->mtx);
    uint64_t cur = atomic_load(&w->current);
    w->marked = cur;
    nng_mtx_unlock(w->mtx);
    wapi_pack_report(w, &pk, cur);
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
void
wapi_hb_main(void *arg)
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
            atomic_store(&w->rss_bytes, wapi_read_rss());
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
