#include "net.h"

#include "err.h"
#include "log.h"
#include "wire.h"

#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
net_listen(nng_socket sock, const char *url, size_t recv_max, nng_listener *lp)
{
    nng_listener l;
    int rv;

    if ((rv = nng_listener_create(&l, sock, url)) != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"%s\"", url, nng_strerror(rv));
        return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ? SL_EBADREQ : SL_EIO;
    }
    if (strncmp(url, "ipc://", 6) == 0 &&
        (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600)) != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"cannot set permissions: %s\"", url,
            nng_strerror(rv));
        nng_listener_close(l);
        return SL_EIO;
    }
    nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, recv_max);
    if ((rv = nng_listener_start(l, 0)) != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"%s\"", url, nng_strerror(rv));
        nng_listener_close(l);
        return SL_EIO;
    }
    *lp = l;
    return 0;
}

#define GUARD_OLD_MAX 64 /* abandoned IPC listeners kept (with their connections) */

struct net_guard {
    nng_socket sock;
    nng_listener listener;      /* the one new connections reach */
    nng_listener old[GUARD_OLD_MAX]; /* replaced IPC listeners, kept for their connections */
    unsigned nold;
    char url[512];
    char probe_url[512];        /* where to dial: a wildcard TCP address becomes loopback */
    size_t recv_max;
    unsigned check_ms;
    enum net_probe kind;
    nng_mtx *mtx;               /* guards stop; never held across an nng call */
    nng_cv *cv;
    bool stop;
    _Atomic uint64_t accepted;  /* connections the server side completed */
    nng_thread *thread;
};

/* Waits up to ms for the accepted count to move past before. */
static bool
accepted_since(struct net_guard *g, uint64_t before, unsigned ms)
{
    for (unsigned waited = 0; waited < ms; waited += 10) {
        if (atomic_load(&g->accepted) != before) {
            return true;
        }
        nng_msleep(10);
    }
    return atomic_load(&g->accepted) != before;
}

/* One check: dial a new connection and see the server side accept it within a second; for a
 * REP server, also ask for a ping. *accepted tells whether the connection was accepted.
 * Returns 0 when everything answered. The probe is closed only once accepted or once the
 * listener it reached has been replaced: closing a connection in the middle of its
 * handshake is what wedges an nng 1.5.2 listener. */
static int
check(struct net_guard *g, bool *accepted, nng_socket *held)
{
    nng_socket s;
    nng_msg *m = NULL;
    msgpack_packer pk;
    uint64_t before = atomic_load(&g->accepted);
    int rv;

    *accepted = false;
    rv = g->kind == NET_PROBE_SUB ? nng_sub0_open(&s) : nng_req0_open(&s);
    if (rv != 0) {
        *accepted = true; /* not the listener's fault */
        return rv;
    }
    if ((rv = nng_dial(s, g->probe_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        nng_close(s);
        *accepted = true;
        return rv;
    }
    if (!accepted_since(g, before, 1000)) {
        *held = s; /* closed by the caller once the listener is replaced */
        return NNG_ETIMEDOUT;
    }
    *accepted = true;
    if (g->kind == NET_PROBE_REQ) {
        nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 1000);
        nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 1000);
        nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        if ((rv = nng_msg_alloc(&m, 0)) == 0) {
            msgpack_packer_init(&pk, m, wire_pack_into_msg);
            msgpack_pack_map(&pk, 1);
            wire_pack_key(&pk, WK_OP);
            wire_pack_cstr(&pk, "ping");
            if ((rv = nng_sendmsg(s, m, 0)) != 0) {
                nng_msg_free(m);
            } else if ((rv = nng_recvmsg(s, &m, 0)) == 0) {
                nng_msg_free(m);
            }
        }
    }
    nng_close(s);
    return rv;
}

/* Replaces the listener (see net.h). Returns 0 or net_listen's errors. Guard thread only. */
static int
repair(struct net_guard *g)
{
    nng_listener l;
    int rv;
    bool ipc = strncmp(g->url, "ipc://", 6) == 0;

    if (ipc) {
        /* A new listener on a new socket file: new connections reach it, while the old
         * listener keeps its established connections (closing it would close them). */
        if (unlink(g->url + 6) != 0 && errno != ENOENT) {
            LOG(LOG_ERROR, "listener.repair_failed", "url=\"%s\" error=\"%s\"", g->url,
                strerror(errno));
            return SL_EIO;
        }
        if (g->nold == GUARD_OLD_MAX) {
            /* The oldest goes, with what it still holds. Closed while no file is at the
             * path, so its clean-up cannot remove the new listener's. */
            nng_listener_close(g->old[0]);
            memmove(&g->old[0], &g->old[1], sizeof(g->old[0]) * (GUARD_OLD_MAX - 1));
            g->nold--;
        }
        if ((rv = net_listen(g->sock, g->url, g->recv_max, &l)) != 0) {
            return rv;
        }
        g->old[g->nold++] = g->listener;
        g->listener = l;
        return 0;
    }
    /* TCP cannot bind the port twice: the listener is replaced, and its connections close
     * (clients reconnect on their own). */
    nng_listener_close(g->listener);
    if ((rv = net_listen(g->sock, g->url, g->recv_max, &l)) != 0) {
        return rv;
    }
    g->listener = l;
    return 0;
}

static void
on_accept(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct net_guard *g = arg;
    (void)p;
    (void)ev;
    atomic_fetch_add(&g->accepted, 1);
}

static void
guard_main(void *arg)
{
    struct net_guard *g = arg;
    unsigned unaccepted = 0, unanswered = 0;
    /* Two checks in a row (three for TCP, whose repair closes connections): a loaded machine
     * may be slow to accept one probe. */
    unsigned needed = strncmp(g->url, "ipc://", 6) == 0 ? 2 : 3;
    nng_socket held[3];
    unsigned nheld = 0;

    nng_mtx_lock(g->mtx);
    while (!g->stop) {
        nng_cv_until(g->cv, nng_clock() + g->check_ms);
        if (g->stop) {
            break;
        }
        nng_mtx_unlock(g->mtx);
        bool accepted;
        nng_socket probe;
        int rv = check(g, &accepted, &probe);
        if (!accepted) {
            held[nheld++] = probe;
            unaccepted++;
        } else {
            unaccepted = 0;
            unanswered = rv == 0 ? 0 : unanswered + 1;
            /* The listener accepts: probes still waiting on it may close safely. */
            while (nheld > 0) {
                nng_close(held[--nheld]);
            }
        }
        if (unaccepted >= needed || unanswered >= 3) {
            LOG(LOG_WARN, "listener.repair", "url=\"%s\" reason=\"%s\"", g->url,
                unaccepted > 0 ? "new connections are not accepted" : "pings go unanswered");
            if (repair(g) != 0) {
                LOG(LOG_ERROR, "listener.repair_failed", "url=\"%s\"", g->url);
            }
            while (nheld > 0) {
                nng_close(held[--nheld]);
            }
            unaccepted = unanswered = 0;
        }
        nng_mtx_lock(g->mtx);
    }
    nng_mtx_unlock(g->mtx);
    while (nheld > 0) {
        nng_close(held[--nheld]);
    }
}

/* The address to dial to reach a listener on url. */
static void
probe_address(char *out, size_t cap, const char *url)
{
    static const struct {
        const char *wild, *local;
    } subst[] = {
        { "tcp://*:", "tcp://127.0.0.1:" },
        { "tcp://0.0.0.0:", "tcp://127.0.0.1:" },
        { "tcp://:", "tcp://127.0.0.1:" },
        { "tcp://[::]:", "tcp://[::1]:" },
    };
    for (size_t i = 0; i < sizeof(subst) / sizeof(subst[0]); i++) {
        size_t n = strlen(subst[i].wild);
        if (strncmp(url, subst[i].wild, n) == 0) {
            snprintf(out, cap, "%s%s", subst[i].local, url + n);
            return;
        }
    }
    snprintf(out, cap, "%s", url);
}

int
net_guard_start(struct net_guard **gp, nng_socket sock, const char *url, size_t recv_max,
                unsigned check_ms, enum net_probe kind)
{
    struct net_guard *g = calloc(1, sizeof(*g));
    int rv;

    if (g == NULL || strlen(url) >= sizeof(g->url)) {
        free(g);
        return g == NULL ? SL_ENOMEM : SL_EBADREQ;
    }
    g->sock = sock;
    g->recv_max = recv_max;
    g->check_ms = check_ms;
    g->kind = kind;
    strcpy(g->url, url);
    probe_address(g->probe_url, sizeof(g->probe_url), url);
    if (nng_mtx_alloc(&g->mtx) != 0) {
        free(g);
        return SL_ENOMEM;
    }
    if (nng_cv_alloc(&g->cv, g->mtx) != 0) {
        rv = SL_ENOMEM;
        goto fail_cv;
    }
    /* Server-side connection events show whether the probe's connection was accepted. */
    nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, on_accept, g);
    if ((rv = net_listen(sock, url, recv_max, &g->listener)) != 0) {
        goto fail_listen;
    }
    if (nng_thread_create(&g->thread, guard_main, g) != 0) {
        rv = SL_ENOMEM;
        goto fail_thread;
    }
    *gp = g;
    return 0;
fail_thread:
    nng_listener_close(g->listener);
fail_listen:
    nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
    nng_cv_free(g->cv);
fail_cv:
    nng_mtx_free(g->mtx);
    free(g);
    return rv;
}

void
net_guard_stop(struct net_guard *g)
{
    if (g == NULL) {
        return;
    }
    nng_mtx_lock(g->mtx);
    g->stop = true;
    nng_cv_wake(g->cv);
    nng_mtx_unlock(g->mtx);
    nng_thread_destroy(g->thread);
    /* The replaced listeners first: each removes the socket file as it closes, and the
     * current one's must be the last removal. */
    for (unsigned i = 0; i < g->nold; i++) {
        nng_listener_close(g->old[i]);
    }
    nng_listener_close(g->listener);
    nng_pipe_notify(g->sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
    nng_cv_free(g->cv);
    nng_mtx_free(g->mtx);
    free(g);
}
