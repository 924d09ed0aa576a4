#include "server.h"

#include "err.h"
#include "journal.h"
#include "log.h"
#include "net.h"
#include "ops.h"
#include "park.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#include <stdlib.h>
#include <string.h>

/* A context receives a request, handles it and sends the reply, then receives again. A
 * context whose request parked holds it until the waiter is answered; the server then opens
 * (or reuses) another so that `base` contexts always receive. A context that finishes a
 * parked request while enough others receive goes to the spare list. */
enum sctx_state { SCTX_RECV, SCTX_PARKED, SCTX_SEND, SCTX_SPARE };

struct sctx {
    struct server *srv;
    nng_ctx ctx;
    nng_aio *aio;
    enum sctx_state state;
    bool was_parked;         /* the reply being sent answers a parked request */
    bool in_cb;              /* (server mutex) its receive callback is still running */
    nng_msg *pending;        /* (server mutex) a parked reply that arrived while in_cb */
    struct waiter wt;
    struct sctx *next_all;   /* every context, for shutdown */
    struct sctx *next_spare;
};

struct server {
    struct broker *b;
    nng_socket sock;
    nng_listener listener;
    unsigned base;           /* contexts that should be receiving */
    nng_mtx *mtx;            /* guards the fields below */
    unsigned receiving;      /* contexts not parked and not spare */
    unsigned total;
    bool stopping;
    bool quiet;              /* server_quiesce done (main thread only) */
    struct sctx *all;
    struct sctx *spare;
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
    nng_ctx_recv(c->ctx, c->aio);
}

/* Called when c stops receiving (its request parked): keeps `base` contexts receiving. */
static void
replace_receiver(struct server *s)
{
    nng_mtx_lock(s->mtx);
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
    nng_mtx_unlock(s->mtx);
}

static void
sctx_send(struct sctx *c, nng_msg *rep)
{
    c->state = SCTX_SEND;
    nng_aio_set_msg(c->aio, rep); /* rep belongs to the aio now */
    nng_ctx_send(c->ctx, c->aio);
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
    c->was_parked = true;
    /* The request may have been answered before the callback that parked it returned: that
     * callback sends it then, so that one aio never has two callbacks at once. */
    nng_mtx_lock(c->srv->mtx);
    if (c->in_cb) {
        c->pending = rep;
        nng_mtx_unlock(c->srv->mtx);
        return;
    }
    nng_mtx_unlock(c->srv->mtx);
    sctx_send(c, rep);
}

static void
after_send(struct sctx *c)
{
    struct server *s = c->srv;
    if (!c->was_parked) {
        c->state = SCTX_RECV; /* still counted as receiving */
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    c->was_parked = false;
    nng_mtx_lock(s->mtx);
    if (!s->stopping) {
        if (s->receiving < s->base) {
            start_recv(s, c);
        } else {
            c->state = SCTX_SPARE;
            c->next_spare = s->spare;
            s->spare = c;
        }
    }
    nng_mtx_unlock(s->mtx);
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
        /* PARKED before the request can park: its answer may be sent from another thread
         * before ops_handle returns, and sending sets SEND. */
        c->state = SCTX_PARKED;
        nng_mtx_lock(s->mtx);
        c->in_cb = true;
        nng_mtx_unlock(s->mtx);
        int rv2 = ops_handle(s->b, nng_msg_body(req), nng_msg_len(req), pipe, rep, &c->wt);
        nng_msg_free(req); /* every view decoded from req dies here */
        nng_mtx_lock(s->mtx);
        c->in_cb = false;
        nng_msg *pending = c->pending;
        c->pending = NULL;
        nng_mtx_unlock(s->mtx);
        if (rv2 == OPS_PARKED) {
            if (!c->wt.took_rep) {
                nng_msg_free(rep); /* else the waiter holds it until the journal has it */
            }
            replace_receiver(s);
            if (pending != NULL) {
                sctx_send(c, pending);
            }
            return;
        }
        c->was_parked = false;
        sctx_send(c, rep);
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
        after_send(c);
        return;
    case SCTX_PARKED:
    case SCTX_SPARE:
        return;
    }
}

static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct server *s = arg;
    if (ev == NNG_PIPE_EV_REM_POST) {
        ops_pipe_closed(s->b, (uint32_t)nng_pipe_id(p));
    }
}

int
server_start(struct server **sp, struct broker *b, const char *url, size_t max_message,
             unsigned ncontexts)
{
    struct server *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL) {
        return SL_ENOMEM;
    }
    s->b = b;
    s->base = ncontexts;
    if (nng_mtx_alloc(&s->mtx) != 0) {
        free(s);
        return SL_ENOMEM;
    }
    if ((rv = nng_rep0_open(&s->sock)) != 0) {
        LOG(LOG_ERROR, "socket.open", "error=\"%s\"", nng_strerror(rv));
        nng_mtx_free(s->mtx);
        free(s);
        return SL_EIO;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, max_message);
    nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_pipe, s);
    for (unsigned i = 0; i < ncontexts; i++) {
        if (sctx_new(s) == NULL) {
            rv = SL_ENOMEM;
            goto fail;
        }
    }
    if ((rv = net_listen(s->sock, url, max_message, &s->listener)) != 0) {
        goto fail;
    }
    nng_mtx_lock(s->mtx);
    for (struct sctx *c = s->all; c != NULL; c = c->next_all) {
        start_recv(s, c);
    }
    nng_mtx_unlock(s->mtx);
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
    nng_mtx_free(s->mtx);
    free(s);
}
