#include "client.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "urllist.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct client {
    nng_socket sock;
    _Atomic bool connected;  /* a connection has completed its handshake */
    nng_msg *last;  /* the last reply; decoded views point into it */
    bool stale;     /* a request timed out: the next one goes on a new connection */
    char url[512];  /* the broker asked now */
    struct urllist list; /* every broker given (a cluster's: README "Cluster") */
    bool cluster;   /* a broker named its leader: requests are kept for a resend */
    struct token token; /* attached to every request; n == 0: none */
    struct watch *w;    /* a list's client only (set before its first dial, then fixed) */
};

/* A list's client waits for a reply with an eye on its connection: when the broker it sent
 * to goes away (a leader failing over) and does not come back within WATCH_LOST_MS, the
 * request is given up there and sent to the next broker, within the call's timeout, rather
 * than waiting the whole timeout for a broker that is gone. */
#define WATCH_LOST_MS 2000

struct watch {
    nng_mtx *mtx;
    nng_cv *cv;
    nng_aio *aio;     /* receives the reply */
    bool done;        /* (mtx) aio finished */
    bool up;          /* (mtx) the current socket has a connection */
    uint32_t removed; /* (mtx) connections of the current socket lost so far */
    int sock_id;      /* (mtx) the current socket; other sockets' events are ignored */
};

static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct client *c = arg;
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_store(&c->connected, true);
    }
    if (c->w == NULL) {
        return;
    }
    nng_mtx_lock(c->w->mtx);
    if (nng_socket_id(nng_pipe_socket(p)) == c->w->sock_id) {
        c->w->up = ev == NNG_PIPE_EV_ADD_POST;
        c->w->removed += ev == NNG_PIPE_EV_REM_POST;
        nng_cv_wake(c->w->cv);
    }
    nng_mtx_unlock(c->w->mtx);
}

static void
on_reply(void *arg)
{
    struct watch *w = arg;
    nng_mtx_lock(w->mtx);
    w->done = true;
    nng_cv_wake(w->cv);
    nng_mtx_unlock(w->mtx);
}

static void
watch_free(struct watch *w)
{
    if (w == NULL) {
        return;
    }
    if (w->aio != NULL) {
        nng_aio_stop(w->aio);
        nng_aio_free(w->aio);
    }
    if (w->cv != NULL) {
        nng_cv_free(w->cv);
    }
    if (w->mtx != NULL) {
        nng_mtx_free(w->mtx);
    }
    free(w);
}

static int
watch_new(struct watch **wp)
{
    struct watch *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return SL_ENOMEM;
    }
    if (nng_mtx_alloc(&w->mtx) != 0 || nng_cv_alloc(&w->cv, w->mtx) != 0 ||
        nng_aio_alloc(&w->aio, on_reply, w) != 0) {
        watch_free(w);
        return SL_ENOMEM;
    }
    *wp = w;
    return 0;
}

/* A new REQ socket for c, its connections reported to on_pipe; it becomes the one watched
 * (call before dialing it, between requests). */
static int
sock_open(struct client *c, nng_socket *sp)
{
    int rv;
    if ((rv = nng_req0_open(sp)) != 0) {
        LOG(LOG_ERROR, "client.open", "error=\"%s\"", nng_strerror(rv));
        return SL_EIO;
    }
    nng_socket_set_ms(*sp, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(*sp, NNG_OPT_RECONNMAXT, 1000);
    nng_socket_set_size(*sp, NNG_OPT_RECVMAXSZ, 0);
    nng_pipe_notify(*sp, NNG_PIPE_EV_ADD_POST, on_pipe, c);
    nng_pipe_notify(*sp, NNG_PIPE_EV_REM_POST, on_pipe, c);
    if (c->w != NULL) {
        nng_mtx_lock(c->w->mtx);
        c->w->sock_id = nng_socket_id(*sp);
        c->w->up = false;
        nng_mtx_unlock(c->w->mtx);
    }
    return 0;
}

/* Receives the reply to the request just sent into *mp, as nng_recvmsg with a timeout of
 * timeout_ms would; but once the connection it went on is lost and none is back within
 * WATCH_LOST_MS, the request is given up: NNG_ECONNSHUT. */
static int
watch_recv(struct client *c, uint64_t timeout_ms, nng_msg **mp)
{
    struct watch *w = c->w;
    nng_aio_set_timeout(w->aio, timeout_ms > INT32_MAX ? NNG_DURATION_INFINITE
                                                        : (nng_duration)timeout_ms);
    nng_mtx_lock(w->mtx);
    w->done = false;
    uint32_t removed = w->removed; /* the request went on a connection up at the send */
    nng_mtx_unlock(w->mtx);
    nng_recv_aio(c->sock, w->aio);
    bool lost = false;
    nng_time down_since = 0;
    nng_mtx_lock(w->mtx);
    while (!w->done) {
        if (w->up || w->removed == removed) {
            down_since = 0;
            nng_cv_wait(w->cv);
            continue;
        }
        nng_time now = nng_clock();
        down_since = down_since != 0 ? down_since : now;
        if (now >= down_since + WATCH_LOST_MS) {
            lost = true;
            break;
        }
        nng_cv_until(w->cv, down_since + WATCH_LOST_MS);
    }
    nng_mtx_unlock(w->mtx);
    if (lost) {
        nng_aio_cancel(w->aio);
    }
    nng_aio_wait(w->aio);
    int rv = nng_aio_result(w->aio);
    if (rv == 0) {
        *mp = nng_aio_get_msg(w->aio);
        nng_aio_set_msg(w->aio, NULL);
        return 0;
    }
    return lost ? NNG_ECONNSHUT : rv;
}

bool
client_no_server(const char *url)
{
    struct stat st;

    return strncmp(url, "ipc://", 6) == 0 && url[6] != '\0' && lstat(url + 6, &st) != 0 &&
           errno == ENOENT;
}

static int
open_one(struct client **cp, const char *url, uint64_t connect_ms, bool watch)
{
    struct client *c;
    int rv;

    /* A server makes its socket file before it accepts: with none there, no server is up,
     * and waiting connect_ms for one would only keep the user waiting. */
    if (client_no_server(url)) {
        LOG(LOG_DEBUG, "client.unreachable", "url=\"%s\" error=\"no socket file\"", url);
        return SL_EUNREACHABLE;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return SL_ENOMEM;
    }
    if (strlen(url) >= sizeof(c->url)) {
        free(c);
        return SL_EBADREQ;
    }
    strcpy(c->url, url);
    if ((watch && (rv = watch_new(&c->w)) != 0) || (rv = sock_open(c, &c->sock)) != 0) {
        watch_free(c->w);
        free(c);
        return rv;
    }

    if (connect_ms == 0) {
        /* One attempt: fails at once when nobody listens, else waits for the handshake. */
        rv = nng_dial(c->sock, url, NULL, 0);
        if (rv != 0) {
            nng_close(c->sock);
            watch_free(c->w);
            free(c);
            return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL ? SL_EBADREQ
                                                                                : SL_EUNREACHABLE;
        }
        *cp = c;
        return 0;
    }
    /* A non-blocking dial keeps trying in the background; the connection counts once its
     * handshake is done (the pipe is added), so connect_ms bounds the handshake too. */
    rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK);
    if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL) {
        nng_close(c->sock);
        watch_free(c->w);
        free(c);
        return SL_EBADREQ;
    }
    uint64_t deadline = clock_mono_ms() + connect_ms;
    while (rv == 0 && !atomic_load(&c->connected) && clock_mono_ms() < deadline) {
        nng_msleep(5);
    }
    if (rv != 0 || !atomic_load(&c->connected)) {
        LOG(LOG_DEBUG, "client.unreachable", "url=\"%s\" error=\"%s\"", url,
            rv != 0 ? nng_strerror(rv) : "no connection within the time allowed");
        nng_close(c->sock);
        watch_free(c->w);
        free(c);
        return SL_EUNREACHABLE;
    }
    *cp = c;
    return 0;
}

int
client_open(struct client **cp, const char *url, uint64_t connect_ms)
{
    struct urllist l;
    int rv = urllist_parse(&l, url);
    if (rv != 0 || (l.n > 1 && (rv = urllist_check(&l)) != 0)) {
        return rv;
    }
    uint64_t deadline = clock_mono_ms() + connect_ms;
    rv = SL_EUNREACHABLE;
    /* Each in turn, a slice of the time at most, until one answers or the time is up. */
    do {
        bool absent = true; /* every URL an ipc:// one with no socket file: no server is up */
        for (unsigned i = 0; i < l.n; i++) {
            uint64_t now = clock_mono_ms(), left = deadline > now ? deadline - now : 0;
            uint64_t slice = l.n == 1 || left < 500 ? left : 500;
            if ((rv = open_one(cp, l.url[i], connect_ms == 0 ? 0 : slice, l.n > 1)) == 0) {
                (*cp)->list = l;
                return 0;
            }
            if (rv == SL_EBADREQ || rv == SL_ENOMEM) {
                return rv;
            }
            absent = absent && client_no_server(l.url[i]);
        }
        if (absent) {
            break;
        }
    } while (l.n > 1 && clock_mono_ms() + 10 < deadline && (nng_msleep(10), true));
    return rv;
}

void
client_set_token(struct client *c, const struct token *t)
{
    if (t == NULL) {
        token_clear(&c->token);
        return;
    }
    c->token = *t;
}

void
client_free(struct client *c)
{
    if (c == NULL) {
        return;
    }
    token_clear(&c->token);
    nng_close(c->sock);
    watch_free(c->w);
    if (c->last != NULL) {
        nng_msg_free(c->last);
    }
    free(c);
}

const char *
client_url(const struct client *c)
{
    return c->url;
}

int
client_call(struct client *c, const struct wire_msg *req, struct wire_msg *rep,
            uint64_t timeout_ms)
{
    nng_msg *m = NULL;
    msgpack_packer pk;

    if (nng_msg_alloc(&m, 0) != 0) {
        return SL_ENOMEM;
    }
    /* One allocation for the whole request: growing it per field would copy it many times. */
    if (nng_msg_reserve(m, wire_encoded_size(req)) != 0) {
        nng_msg_free(m);
        return SL_ENOMEM;
    }
    msgpack_packer_init(&pk, m, wire_pack_into_msg);
    if (wire_encode(req, &pk) != 0) {
        nng_msg_free(m);
        return SL_ENOMEM;
    }
    return client_call_msg(c, m, rep, timeout_ms);
}

int
client_reply_err(const struct wire_msg *rep, struct sl_str *msg)
{
    if (WIRE_HAS(rep, WK_OK) && rep->v[WK_OK].b) {
        return 0;
    }
    *msg = WIRE_HAS(rep, WK_MSG) ? rep->v[WK_MSG].s : (struct sl_str){ "", 0 };
    if (!WIRE_HAS(rep, WK_ERR)) {
        return SL_EINTERNAL;
    }
    /* A failed reply is never success, whatever its "err" says. */
    int e = sl_err_from_code(rep->v[WK_ERR].s.p, rep->v[WK_ERR].s.n);
    return e != SL_OK ? e : SL_EINTERNAL;
}

/* After a request timed out, the next one goes on a new connection: the old one may be stuck
 * (a server that took the connection and stopped reading it). A new socket dials in the
 * background; the request waits for it within its own timeout. The new dial starts only when
 * a next request comes: a program that gives up after a timeout exits with no dial in
 * flight, which nng 1.5.2's nng_fini() does not survive. */
static void
reconnect(struct client *c)
{
    nng_socket s;
    if (sock_open(c, &s) != 0) {
        return; /* keep the old socket */
    }
    if (nng_dial(s, c->url, NULL, NNG_FLAG_NONBLOCK) != 0) {
        nng_close(s);
        return;
    }
    nng_close(c->sock);
    c->sock = s;
    LOG(LOG_DEBUG, "client.reconnect", "url=\"%s\"", c->url);
}

/* Moves to the broker at url: a new socket dialing it in the background. */
static void
switch_url(struct client *c, const char *url)
{
    nng_socket s;
    if (strlen(url) >= sizeof(c->url) || sock_open(c, &s) != 0) {
        return;
    }
    if (nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK) != 0) {
        nng_close(s);
        return;
    }
    nng_close(c->sock);
    c->sock = s;
    c->stale = false;
    LOG(LOG_INFO, "client.moved", "from=\"%s\" to=\"%s\"", c->url, url);
    strcpy(c->url, url);
}

/* call_once's results for a request that was not sent (safe to send elsewhere), and (a
 * list's client) for one sent on a connection lost since: sent elsewhere too, since a
 * standby applied nothing and a push carries its idempotency key. */
#define NOT_SENT_TIMEOUT (-1)
#define NOT_SENT (-2)
#define LOST (-3)

/* One round trip on the current connection; send_ms bounds waiting for a connection to send
 * on. NOT_SENT_TIMEOUT / NOT_SENT / LOST, SL_EIO for a connection lost after sending, or
 * client_call_msg's results. */
static int
call_once(struct client *c, nng_msg *req, struct wire_msg *rep, uint64_t send_ms,
          uint64_t timeout_ms)
{
    int rv;

    if (c->stale) {
        reconnect(c);
        c->stale = false;
    }
    nng_duration t = timeout_ms > INT32_MAX ? NNG_DURATION_INFINITE : (nng_duration)timeout_ms;
    nng_duration ts = send_ms > INT32_MAX ? NNG_DURATION_INFINITE : (nng_duration)send_ms;
    nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, ts);
    nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, t);
    if (token_attach(req, &c->token) != 0) {
        nng_msg_free(req);
        return SL_ENOMEM;
    }
    if ((rv = nng_sendmsg(c->sock, req, 0)) != 0) {
        nng_msg_free(req); /* not sent: still ours */
        return rv == NNG_ETIMEDOUT ? NOT_SENT_TIMEOUT : NOT_SENT;
    }
    /* The previous reply's views die here; the caller finished with them. */
    wire_msg_fini(rep);
    if (c->last != NULL) {
        nng_msg_free(c->last);
        c->last = NULL;
    }
    rv = c->w != NULL ? watch_recv(c, timeout_ms, &c->last) : nng_recvmsg(c->sock, &c->last, 0);
    if (rv != 0) {
        if (rv == NNG_ETIMEDOUT) {
            c->stale = true;
            return SL_ETIMEDOUT;
        }
        return rv == NNG_ECONNSHUT ? LOST : SL_EIO; /* sent: it may have been done */
    }
    char why[160] = "reply has no 'ok'";
    if (wire_decode(rep, nng_msg_body(c->last), nng_msg_len(c->last), why, sizeof(why)) != 0 ||
        !WIRE_HAS(rep, WK_OK)) {
        LOG(LOG_WARN, "client.bad_reply", "url=\"%s\" reason=\"%s\"", c->url, why);
        return SL_EBADREQ;
    }
    return 0;
}

/* Requests up to this size are kept for a resend even before a broker is known to be in a
 * cluster, so that a client given one standby's address follows it to the leader. */
#define KEEP_MAX (256u << 10)

int
client_call_msg(struct client *c, nng_msg *req, struct wire_msg *rep, uint64_t timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    uint64_t pause_ms = 50;
    for (;;) {
        nng_msg *copy = NULL;
        if ((c->list.n > 1 || c->cluster || nng_msg_len(req) <= KEEP_MAX) &&
            nng_msg_dup(&copy, req) != 0) {
            copy = NULL;
        }
        uint64_t now = clock_mono_ms(), left = deadline > now ? deadline - now : 1;
        /* With other brokers to try, a connection is waited for 2 s at most. */
        uint64_t send_ms = c->list.n > 1 && left > 2000 ? 2000 : left;
        int rv = call_once(c, req, rep, send_ms, left);
        req = copy;
        char leader[URLLIST_URL_MAX];
        /* Another try needs time for a round trip (100 ms at least); else the caller gets
         * this reply. */
        bool more = req != NULL && clock_mono_ms() + 100 < deadline;
        if (rv == 0 && urllist_redirect(nng_msg_body(c->last), nng_msg_len(c->last), leader,
                                        sizeof(leader))) {
            c->cluster = true;
            if (!more) {
                break; /* the caller gets the not_leader reply */
            }
            const char *to = urllist_next(&c->list, c->url, leader);
            if (leader[0] == '\0' || strcmp(to, c->url) == 0) {
                /* An election is going on: wait a little before asking again, leaving
                 * time for a last try before the deadline. */
                uint64_t t = clock_mono_ms(), room = deadline > t + 100 ? deadline - t - 100 : 0;
                nng_msleep((nng_duration)(pause_ms < room ? pause_ms : room));
                pause_ms = pause_ms < 500 ? pause_ms * 2 : 500;
            }
            if (strcmp(to, c->url) != 0) {
                switch_url(c, to);
            }
            continue;
        }
        if ((rv == NOT_SENT || rv == NOT_SENT_TIMEOUT || rv == LOST) && c->list.n > 1 && more) {
            switch_url(c, urllist_next(&c->list, c->url, NULL));
            continue;
        }
        if (req != NULL) {
            nng_msg_free(req);
        }
        return rv == NOT_SENT_TIMEOUT ? SL_ETIMEDOUT
               : rv == NOT_SENT || rv == LOST || rv == SL_EIO ? SL_EUNREACHABLE
                                                 : rv;
    }
    if (req != NULL) {
        nng_msg_free(req);
    }
    return 0;
}
