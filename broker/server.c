#include "server.h"

#include "err.h"
#include "hmap.h"
#include "journal.h"
#include "log.h"
#include "net.h"
#include "ops.h"
#include "park.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* A context receives a request and handles it; then it sends the reply, or holds the request
 * while it is parked. A context that sends or parks no longer counts as receiving: the server
 * then opens (or reuses) another so that `base` contexts always receive, whatever the peers
 * do with their replies. nng's REP context waits in its send until the connection takes the
 * reply, which a connection that does not read never does: such a context must not keep
 * others from being served. A context whose send is done goes back to receiving if fewer
 * than `base` do, else to the spare list. */
enum sctx_state { SCTX_RECV, SCTX_PARKED, SCTX_SEND, SCTX_SPARE };

struct sctx {
    struct server *srv;
    nng_ctx ctx;
    nng_aio *aio;
    enum sctx_state state;
    uint32_t pipe;           /* the connection the current request came on */
    bool in_cb;              /* (server mutex) its receive callback is still running */
    nng_msg *pending;        /* (server mutex) a parked reply that arrived while in_cb */
    struct waiter wt;
    struct sctx *next_all;   /* every context, for shutdown */
    struct sctx *next_spare;
};

/* Events a peer can cause at will are logged at most once a second, with their count. */
struct lograte {
    int64_t logged_ms;       /* when one was last logged; 0: never */
    uint64_t unlogged;       /* since then */
};

/* A connection (nng pipe), from its NNG_PIPE_EV_ADD_PRE to its NNG_PIPE_EV_REM_POST. */
struct sconn {
    uint32_t id;             /* the pipe id; the map's key points here */
    unsigned waiting;        /* replies given to nng that the connection has not taken yet */
    bool authed;             /* it sent a request with the token, or none is asked for */
    bool dropped;            /* not reading: its requests and replies are discarded until
                                the sweep closes it */
    bool closing;            /* the sweep has closed it */
    int64_t last_ms;         /* (dropped) when its last request arrived */
};

struct server {
    struct broker *b;
    nng_socket sock;
    unsigned base;           /* contexts that should be receiving */
    unsigned max_conns;      /* connections served at once; more are closed at once */
    nng_mtx *mtx;            /* guards the fields below */
    unsigned receiving;      /* contexts receiving or handling a request */
    unsigned total;
    bool stopping;
    bool quiet;              /* server_quiesce done (main thread only) */
    struct sctx *all;
    struct sctx *spare;
    struct hmap conns;       /* pipe id -> struct sconn */
    struct lograte refused, dropped;
    unsigned unswept;        /* connections dropped and not yet closed */
    nng_aio *sweep;          /* closes dropped connections once they are quiet */
};

static void sctx_cb(void *arg);
static void sctx_send_parked(struct waiter *wt);

static struct sctx *
sctx_new(struct server *s)
{
    struct sctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->srv = s;
    c->wt.send = sctx_send_parked;
    if (nng_aio_alloc(&c->aio, sctx_cb, c) != 0) {
        free(c);
        return NULL;
    }
    if (nng_ctx_open(&c->ctx, s->sock) != 0) {
        nng_aio_free(c->aio);
        free(c);
        return NULL;
    }
    c->next_all = s->all;
    s->all = c;
    s->total++;
    return c;
}

/* Starts c receiving. Server mutex held. */
static void
start_recv(struct server *s, struct sctx *c)
{
    c->state = SCTX_RECV;
    s->receiving++;
    nng_aio_set_timeout(c->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(c->ctx, c->aio);
}

/* Called when a context stops receiving (its request parked, or it sends the reply): keeps
 * `base` contexts receiving. Server mutex held. */
static void
replace_receiver(struct server *s)
{
    s->receiving--;
    while (!s->stopping && s->receiving < s->base) {
        struct sctx *n = s->spare;
        if (n != NULL) {
            s->spare = n->next_spare;
        } else if ((n = sctx_new(s)) == NULL) {
            LOG(LOG_ERROR, "server.nomem", "reason=\"cannot open a context\" receiving=%u",
                s->receiving);
            break;
        }
        start_recv(s, n);
    }
}

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Counts one event; returns how many to log now (0: not now). Server mutex held. */
static uint64_t
lograte_due(struct lograte *r)
{
    int64_t now = mono_ms();
    r->unlogged++;
    if (r->logged_ms != 0 && now - r->logged_ms < 1000) {
        return 0;
    }
    uint64_t n = r->unlogged;
    r->unlogged = 0;
    r->logged_ms = now;
    return n;
}

/* The connection's record, or NULL once it has closed. Server mutex held. */
static struct sconn *
conn_find(struct server *s, uint32_t pipe)
{
    return hmap_get(&s->conns, &pipe, sizeof(pipe));
}

/* Stops serving connection k, which does not take its replies: from now on its requests are
 * discarded unread and no reply is sent to it (those waiting are discarded when it closes).
 * It is closed by the sweep once no request has come from it for SERVER_DROP_QUIET_MS: nng
 * 1.5.2 may lose track of a connection closed while its requests are still arriving (the
 * connection is then never freed, nor any closed after it). Server mutex held. Returns false
 * if it was dropped already. */
static bool
conn_drop(struct server *s, struct sconn *k)
{
    if (k->dropped) {
        return false;
    }
    k->dropped = true;
    k->last_ms = mono_ms();
    s->unswept++;
    return true;
}

/* Every SERVER_SWEEP_MS: closes the dropped connections that have gone quiet. */
static void
sweep_cb(void *arg)
{
    struct server *s = arg;
    uint32_t ids[64];
    unsigned n = 0;

    if (nng_aio_result(s->sweep) != 0) {
        return; /* stopped */
    }
    int64_t now = mono_ms();
    nng_mtx_lock(s->mtx);
    size_t pos = 0;
    for (struct sconn *k; s->unswept > 0 && n < 64 && (k = hmap_next(&s->conns, &pos));) {
        if (k->dropped && !k->closing && now - k->last_ms >= SERVER_DROP_QUIET_MS) {
            k->closing = true;
            s->unswept--;
            ids[n++] = k->id;
        }
    }
    bool stopping = s->stopping;
    nng_mtx_unlock(s->mtx);
    for (unsigned i = 0; i < n; i++) {
        nng_pipe p = NNG_PIPE_INITIALIZER;
        p.id = ids[i];
        nng_pipe_close(p);
    }
    if (!stopping) {
        nng_sleep_aio(SERVER_SWEEP_MS, s->sweep);
    }
}

/* Counts and logs (a few) a connection conn_drop dropped. Server mutex not held. */
static void
conn_dropped(struct server *s, uint32_t pipe, const char *reason, unsigned waiting,
             bool authed)
{
    nng_mtx_lock(s->mtx);
    uint64_t n = lograte_due(&s->dropped);
    nng_mtx_unlock(s->mtx);
    pthread_mutex_lock(&s->b->lock);
    s->b->connc.dropped++;
    pthread_mutex_unlock(&s->b->lock);
    if (n > 0) {
        LOG(LOG_WARN, "conn.dropped", "pipe=%u reason=%s waiting=%u authed=%s dropped=%llu",
            pipe, reason, waiting, authed ? "yes" : "no", (unsigned long long)n);
    }
}

/* c has no request any more: it receives again if fewer than `base` do, else waits in the
 * spare list. Server mutex held. */
static void
sctx_idle(struct server *s, struct sctx *c)
{
    if (s->stopping) {
        return;
    }
    if (s->receiving < s->base) {
        start_recv(s, c);
    } else {
        c->state = SCTX_SPARE;
        c->next_spare = s->spare;
        s->spare = c;
    }
}

/* Sends c's reply. A reply that the connection has not taken within SERVER_SEND_TIMEOUT_MS,
 * or one more than its connection's budget of waiting replies, drops that connection: it is
 * not reading. from_handling: c was receiving until now (not parked). */
static void
sctx_send(struct sctx *c, nng_msg *rep, bool from_handling)
{
    struct server *s = c->srv;
    unsigned waiting = 0;
    bool dropped = false, authed = false;

    nng_mtx_lock(s->mtx);
    c->state = SCTX_SEND;
    if (from_handling) {
        replace_receiver(s);
    }
    struct sconn *k = conn_find(s, c->pipe);
    if (k != NULL && !k->dropped && k->waiting >= (k->authed ? SERVER_REPLIES_WAITING
                                                              : SERVER_UNAUTH_REPLIES_WAITING)) {
        waiting = k->waiting + 1;
        authed = k->authed;
        dropped = conn_drop(s, k);
    }
    if (k != NULL && k->dropped) {
        nng_msg_free(rep);
        sctx_idle(s, c);
        nng_mtx_unlock(s->mtx);
        if (dropped) {
            conn_dropped(s, c->pipe, "not_reading", waiting, authed);
        }
        return;
    }
    if (k != NULL) {
        k->waiting++;
    }
    nng_aio_set_msg(c->aio, rep); /* rep belongs to the aio now */
    nng_aio_set_timeout(c->aio, SERVER_SEND_TIMEOUT_MS);
    nng_ctx_send(c->ctx, c->aio);
    nng_mtx_unlock(s->mtx);
}

/* The waiter's reply is ready (from the thread that served or expired it). */
static void
sctx_send_parked(struct waiter *wt)
{
    struct sctx *c = (struct sctx *)((char *)wt - offsetof(struct sctx, wt));
    if (wt->rep == NULL) {
        /* No memory for the reply: answer with nothing; the worker's REQ times out and
         * resends. Its jobs (none were reserved for it) are safe. */
        if (nng_msg_alloc(&wt->rep, 0) != 0) {
            LOG(LOG_ERROR, "reply.nomem", "reason=\"parked request dropped\"");
            nng_mtx_lock(c->srv->mtx);
            c->state = SCTX_SPARE;
            c->next_spare = c->srv->spare;
            c->srv->spare = c;
            nng_mtx_unlock(c->srv->mtx);
            return;
        }
    }
    nng_msg *rep = wt->rep;
    wt->rep = NULL;
    /* The request may have been answered before the callback that parked it returned: that
     * callback sends it then, so that one aio never has two callbacks at once. */
    nng_mtx_lock(c->srv->mtx);
    if (c->in_cb) {
        c->pending = rep;
        nng_mtx_unlock(c->srv->mtx);
        return;
    }
    nng_mtx_unlock(c->srv->mtx);
    sctx_send(c, rep, false);
}

/* c's send has ended (rv: its result): the reply no longer waits for its connection. */
static void
after_send(struct sctx *c, int rv)
{
    struct server *s = c->srv;
    unsigned waiting = 0;
    bool dropped = false, authed = false;

    nng_mtx_lock(s->mtx);
    struct sconn *k = conn_find(s, c->pipe);
    if (k != NULL) {
        waiting = k->waiting--;
        authed = k->authed;
        if (rv == NNG_ETIMEDOUT) {
            dropped = conn_drop(s, k);
        }
    }
    sctx_idle(s, c);
    nng_mtx_unlock(s->mtx);
    if (dropped) {
        conn_dropped(s, c->pipe, "send_timeout", waiting, authed);
    }
}

/* Before c handles a request from its connection: false if the connection was dropped (the
 * request is to be discarded), else c is marked as in its callback. */
static bool
handle_begin(struct server *s, struct sctx *c)
{
    nng_mtx_lock(s->mtx);
    struct sconn *k = conn_find(s, c->pipe);
    if (k != NULL && k->dropped) {
        k->last_ms = mono_ms();
        nng_mtx_unlock(s->mtx);
        return false;
    }
    c->in_cb = true;
    nng_mtx_unlock(s->mtx);
    return true;
}

/* After c has handled a request (rv: ops_handle's result). Returns the parked reply that
 * arrived meanwhile, if any, for the caller to send. */
static nng_msg *
handle_end(struct server *s, struct sctx *c, int rv)
{
    nng_mtx_lock(s->mtx);
    c->in_cb = false;
    nng_msg *pending = c->pending;
    c->pending = NULL;
    /* A request that got past the token check (it is neither refused for its token nor
     * undecodable, which is checked first) shows the connection has the token. */
    struct sconn *k = conn_find(s, c->pipe);
    if (k != NULL && rv != SL_EUNAUTH && rv != SL_EBADREQ) {
        k->authed = true;
    }
    if (rv == OPS_PARKED) {
        replace_receiver(s);
    }
    nng_mtx_unlock(s->mtx);
    return pending;
}

static void
sctx_cb(void *arg)
{
    struct sctx *c = arg;
    struct server *s = c->srv;
    int rv = nng_aio_result(c->aio);

    switch (c->state) {
    case SCTX_RECV: {
        if (rv != 0) {
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
                return; /* shutting down */
            }
            LOG(LOG_WARN, "recv.error", "error=\"%s\"", nng_strerror(rv));
            nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        nng_msg *req = nng_aio_get_msg(c->aio); /* ours until freed */
        nng_aio_set_msg(c->aio, NULL);
        nng_msg *rep = NULL;
        if (nng_msg_alloc(&rep, 0) != 0) {
            /* No memory for a reply: drop the request; the client's timeout reports it. */
            LOG(LOG_ERROR, "reply.nomem", "reason=\"request dropped\"");
            nng_msg_free(req);
            nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        uint32_t pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(req));
        c->pipe = pipe;
        /* PARKED before the request can park: its answer may be sent from another thread
         * before ops_handle returns, and sending sets SEND. */
        c->state = SCTX_PARKED;
        if (!handle_begin(s, c)) {
            /* Not handled: its connection does not read replies. */
            c->state = SCTX_RECV;
            nng_msg_free(req);
            nng_msg_free(rep);
            nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        int rv2 = ops_handle(s->b, nng_msg_body(req), nng_msg_len(req), pipe, rep, &c->wt);
        nng_msg_free(req); /* every view decoded from req dies here */
        nng_msg *pending = handle_end(s, c, rv2);
        if (rv2 == OPS_PARKED) {
            if (!c->wt.took_rep) {
                nng_msg_free(rep); /* else the waiter holds it until the journal has it */
            }
            if (pending != NULL) {
                sctx_send(c, pending, false);
            }
            return;
        }
        sctx_send(c, rep, true);
        return;
    }
    case SCTX_SEND:
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio)); /* not sent: still ours */
            nng_aio_set_msg(c->aio, NULL);
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
                return;
            }
        }
        after_send(c, rv);
        return;
    case SCTX_PARKED:
    case SCTX_SPARE:
        return;
    }
}

/* A new connection: recorded, or closed at once when max_conns are open already (the
 * descriptors left are the journal's) or memory is short. */
static void
conn_added(struct server *s, nng_pipe p)
{
    uint32_t id = (uint32_t)nng_pipe_id(p);
    struct sconn *k = calloc(1, sizeof(*k));
    uint64_t refused = 0;
    unsigned open;

    nng_mtx_lock(s->mtx);
    open = (unsigned)s->conns.n;
    if (k != NULL && open < s->max_conns) {
        k->id = id;
        k->authed = s->b->token.n == 0;
        if (hmap_put(&s->conns, &k->id, sizeof(k->id), k) == 0) {
            nng_mtx_unlock(s->mtx);
            pthread_mutex_lock(&s->b->lock);
            s->b->connc.open++;
            pthread_mutex_unlock(&s->b->lock);
            return;
        }
    }
    refused = lograte_due(&s->refused);
    nng_mtx_unlock(s->mtx);
    free(k);
    nng_pipe_close(p);
    pthread_mutex_lock(&s->b->lock);
    s->b->connc.refused++;
    pthread_mutex_unlock(&s->b->lock);
    if (refused > 0) {
        LOG(LOG_WARN, "conn.refused", "reason=\"%s\" open=%u max=%u refused=%llu",
            open >= s->max_conns ? "too many connections (--max-connections)" : "no memory",
            open, s->max_conns, (unsigned long long)refused);
    }
}

static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct server *s = arg;
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        conn_added(s, p);
        return;
    }
    if (ev == NNG_PIPE_EV_REM_POST) {
        uint32_t id = (uint32_t)nng_pipe_id(p);
        nng_mtx_lock(s->mtx);
        struct sconn *k = hmap_del(&s->conns, &id, sizeof(id));
        if (k != NULL && k->dropped && !k->closing) {
            s->unswept--; /* its peer closed it first */
        }
        nng_mtx_unlock(s->mtx);
        if (k != NULL) {
            pthread_mutex_lock(&s->b->lock);
            s->b->connc.open--;
            pthread_mutex_unlock(&s->b->lock);
            free(k);
        }
        ops_pipe_closed(s->b, id);
    }
}

unsigned
server_conns_for_fds(uint64_t nofile)
{
    if (nofile <= SERVER_FD_RESERVE + SERVER_CONNS_MIN) {
        return SERVER_CONNS_MIN;
    }
    uint64_t n = nofile - SERVER_FD_RESERVE;
    return n > SERVER_CONNS_MAX ? SERVER_CONNS_MAX : (unsigned)n;
}

int
server_start(struct server **sp, struct broker *b, const char *url, size_t max_message,
             unsigned ncontexts)
{
    struct server_listen l = { .urls = { url }, .n = 1, .ipc_mode = 0600,
                               .ipc_gid = (gid_t)-1 };
    return server_start_at(sp, b, &l, max_message, ncontexts);
}

int
server_start_at(struct server **sp, struct broker *b, const struct server_listen *l,
                size_t max_message, unsigned ncontexts)
{
    struct server *s = calloc(1, sizeof(*s));
    struct rlimit rl;
    int rv;

    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->b = b;
    s->base = ncontexts;
    s->max_conns = b->cfg.max_conns;
    if (s->max_conns == 0) {
        s->max_conns = server_conns_for_fds(getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
                                                    rl.rlim_cur != RLIM_INFINITY
                                                ? (uint64_t)rl.rlim_cur
                                                : SERVER_CONNS_MAX);
    }
    hmap_init(&s->conns);
    if (nng_mtx_alloc(&s->mtx) != 0) {
        free(s);
        return SL_ENOMEM;
    }
    if (nng_aio_alloc(&s->sweep, sweep_cb, s) != 0) {
        nng_mtx_free(s->mtx);
        free(s);
        return SL_ENOMEM;
    }
    if ((rv = nng_rep0_open(&s->sock)) != 0) {
        LOG(LOG_ERROR, "socket.open", "error=\"%s\"", nng_strerror(rv));
        nng_aio_free(s->sweep);
        nng_mtx_free(s->mtx);
        free(s);
        return SL_EIO;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, max_message);
    nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, s);
    nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_pipe, s);
    for (unsigned i = 0; i < ncontexts; i++) {
        if (sctx_new(s) == NULL) {
            rv = SL_ENOMEM;
            goto fail;
        }
    }
    /* The listeners are closed with the socket (server_stop). */
    for (unsigned i = 0; i < l->n; i++) {
        nng_listener nl;
        if ((rv = net_listen_shared(s->sock, l->urls[i], max_message, l->ipc_mode, l->ipc_gid,
                                    &nl)) != 0) {
            goto fail;
        }
    }
    nng_mtx_lock(s->mtx);
    for (struct sctx *c = s->all; c != NULL; c = c->next_all) {
        start_recv(s, c);
    }
    nng_mtx_unlock(s->mtx);
    nng_sleep_aio(SERVER_SWEEP_MS, s->sweep);
    *sp = s;
    return 0;
fail:
    s->stopping = true;
    server_stop(s);
    return rv;
}

void
server_quiesce(struct server *s)
{
    if (s == NULL || s->quiet) {
        return;
    }
    s->quiet = true;
    nng_mtx_lock(s->mtx);
    s->stopping = true;
    nng_mtx_unlock(s->mtx);
    /* Parked waiters are answered (dropped) first, so no other thread touches a context
     * being freed. */
    struct waiter *out = NULL;
    pthread_mutex_lock(&s->b->lock);
    park_expire(s->b, INT64_MAX, 0, &out);
    park_wait_timer_sends(s->b); /* replies the timer took off the list before this */
    pthread_mutex_unlock(&s->b->lock);
    for (struct waiter *wt = out; wt != NULL; wt = wt->next) {
        nng_msg_free(wt->rep);
        wt->rep = NULL;
    }
    nng_aio_stop(s->sweep);
    /* Stop every aio before freeing any: a callback may be running on an nng thread. After
     * this no request is handled. */
    for (struct sctx *c = s->all; c != NULL; c = c->next_all) {
        nng_aio_stop(c->aio);
    }
    /* Replies held until their records are durable point into the contexts freed later. */
    if (s->b->jr != NULL) {
        journal_release_waiters(s->b->jr);
    }
}

void
server_stop(struct server *s)
{
    if (s == NULL) {
        return;
    }
    server_quiesce(s);
    nng_close(s->sock);
    for (struct sctx *c = s->all, *next; c != NULL; c = next) {
        next = c->next_all;
        nng_msg *m = nng_aio_get_msg(c->aio);
        if (m != NULL && c->state == SCTX_SEND) {
            nng_msg_free(m);
        }
        nng_aio_free(c->aio);
        free(c);
    }
    /* nng_close has run every pipe's REM_POST; what is left was never removed. */
    size_t pos = 0;
    for (struct sconn *k; (k = hmap_next(&s->conns, &pos)) != NULL;) {
        free(k);
    }
    hmap_fini(&s->conns);
    nng_aio_free(s->sweep);
    nng_mtx_free(s->mtx);
    free(s);
}
