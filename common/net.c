#include "net.h"

#include "err.h"
#include "log.h"
#include "wire.h"

#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct net_guard {
    nng_socket sock;
    nng_listener listener;
    char url[512];
    char probe_url[512];   /* where to dial: a wildcard TCP address becomes loopback */
    size_t recv_max;
    unsigned check_ms;
    enum net_probe kind;
    nng_mtx *mtx;
    nng_cv *cv;
    bool stop;
    uint64_t accepted;     /* (mtx) connections the server side completed */
    nng_thread *thread;
};

/* Dials a new connection; for a REP server, asks for a ping and returns 0 when any reply
 * arrived. For a PUB server, returns 0 once dialed (the caller checks that it was accepted). */
static int
probe(const char *url, unsigned timeout_ms, enum net_probe kind)
{
    nng_socket s;
    nng_msg *m = NULL;
    msgpack_packer pk;
    int rv;

    if (kind == NET_PROBE_SUB) {
        if ((rv = nng_sub0_open(&s)) != 0) {
            return rv;
        }
        if ((rv = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK)) == 0) {
            nng_msleep(timeout_ms < 200 ? timeout_ms : 200); /* time for the handshake */
        }
        nng_close(s);
        return rv;
    }
    if ((rv = nng_req0_open(&s)) != 0) {
        return rv;
    }
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, (nng_duration)timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, (nng_duration)timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if ((rv = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK)) == 0 &&
        (rv = nng_msg_alloc(&m, 0)) == 0) {
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
    nng_close(s);
    return rv;
}

int
net_guard_repair(struct net_guard *g)
{
    nng_listener l;
    int rv;

    nng_mtx_lock(g->mtx);
    nng_listener_close(g->listener);
    rv = net_listen(g->sock, g->url, g->recv_max, &l);
    if (rv == 0) {
        g->listener = l;
    }
    nng_mtx_unlock(g->mtx);
    return rv;
}

static void
on_accept(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct net_guard *g = arg;
    (void)p;
    (void)ev;
    nng_mtx_lock(g->mtx);
    g->accepted++;
    nng_mtx_unlock(g->mtx);
}

static void
guard_main(void *arg)
{
    struct net_guard *g = arg;
    unsigned failures = 0;

    nng_mtx_lock(g->mtx);
    while (!g->stop) {
        nng_cv_until(g->cv, nng_clock() + g->check_ms);
        if (g->stop) {
            break;
        }
        uint64_t before = g->accepted;
        nng_mtx_unlock(g->mtx);
        int rv = probe(g->probe_url, 1000, g->kind);
        nng_mtx_lock(g->mtx);
        bool accepted = g->accepted != before;
        nng_mtx_unlock(g->mtx);
        /* A connection the server side never completes is the wedged listener; one that is
         * made but not answered is a busy server, and only repeated failures count. */
        failures = rv == 0 && accepted ? 0 : accepted ? failures + 1 : 3;
        if (failures >= 3) {
            LOG(LOG_WARN, "listener.repair", "url=\"%s\" reason=\"%s\"", g->url,
                accepted ? "pings time out" : "new connections are not accepted");
            if (net_guard_repair(g) != 0) {
                LOG(LOG_ERROR, "listener.repair_failed", "url=\"%s\"", g->url);
            }
            failures = 0;
        }
        nng_mtx_lock(g->mtx);
    }
    nng_mtx_unlock(g->mtx);
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
    nng_listener_close(g->listener);
    nng_pipe_notify(g->sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
    nng_cv_free(g->cv);
    nng_mtx_free(g->mtx);
    free(g);
}
