#include "evsub.h"

#include "urllist.h"

#include "clock.h"
#include "err.h"
#include "log.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/util/platform.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* Events are small maps; a bigger message is not one of ours. */
#define EVSUB_RECV_MAX (64u << 10)

struct evsub {
    nng_socket sock;
    atomic_bool connected; /* a connection has completed its handshake */
    nng_msg *last; /* the last event received; decoded views point into it */
};

static void
on_connected(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    atomic_store(&((struct evsub *)arg)->connected, true);
}

/* Dials every broker of a cluster's list on the one socket (each dial goes on in the
 * background): only the leader publishes, so the socket hears the leader, whichever it is.
 * With connect_ms, waits that long for one of them to connect. */
static int
dial_all(struct evsub *s, const struct urllist *l, uint64_t connect_ms)
{
    int rv;
    if ((rv = urllist_check(l)) != 0) {
        return rv;
    }
    nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, on_connected, s);
    for (unsigned i = 0; i < l->n; i++) {
        if ((rv = nng_dial(s->sock, l->url[i], NULL, NNG_FLAG_NONBLOCK)) != 0) {
            LOG(LOG_ERROR, "evsub.dial", "url=\"%s\" error=\"%s\"", l->url[i],
                nng_strerror(rv));
            return SL_EIO;
        }
    }
    uint64_t deadline = clock_mono_ms() + connect_ms;
    while (connect_ms > 0 && !atomic_load(&s->connected)) {
        if (clock_mono_ms() >= deadline) {
            LOG(LOG_DEBUG, "evsub.unreachable", "url=\"%s\" error=\"no connection within the "
                "time allowed\"", l->url[0]);
            return SL_EUNREACHABLE;
        }
        nng_msleep(5);
    }
    return 0;
}

int
evsub_open(struct evsub **sp, const char *url, uint64_t connect_ms)
{
    struct urllist l;
    int rv;

    if (urllist_parse(&l, url) != 0) {
        return SL_EBADREQ;
    }
    struct evsub *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SL_ENOMEM;
    }
    if ((rv = nng_sub0_open(&s->sock)) != 0) {
        LOG(LOG_ERROR, "evsub.open", "error=\"%s\"", nng_strerror(rv));
        free(s);
        return SL_EIO;
    }
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 1000);
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, EVSUB_RECV_MAX);
    if ((rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0) {
        LOG(LOG_ERROR, "evsub.subscribe", "error=\"%s\"", nng_strerror(rv));
        nng_close(s->sock);
        free(s);
        return SL_EIO;
    }
    if (l.n > 1) {
        if ((rv = dial_all(s, &l, connect_ms)) != 0) {
            nng_close(s->sock);
            free(s);
            return rv;
        }
        *sp = s;
        return 0;
    }
    uint64_t deadline = clock_mono_ms() + connect_ms;
    for (;;) {
        rv = nng_dial(s->sock, url, NULL, connect_ms == 0 ? NNG_FLAG_NONBLOCK : 0);
        if (rv == 0) {
            break;
        }
        if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL) {
            nng_close(s->sock);
            free(s);
            return SL_EBADREQ;
        }
        if (clock_mono_ms() >= deadline) {
            LOG(LOG_DEBUG, "evsub.unreachable", "url=\"%s\" error=\"%s\"", url,
                nng_strerror(rv));
            nng_close(s->sock);
            free(s);
            return SL_EUNREACHABLE;
        }
        nng_msleep(50);
    }
    *sp = s;
    return 0;
}

void
evsub_free(struct evsub *s)
{
    if (s == NULL) {
        return;
    }
    nng_close(s->sock);
    if (s->last != NULL) {
        nng_msg_free(s->last);
    }
    free(s);
}

void
evsub_leave(struct evsub *s)
{
    if (s == NULL) {
        return;
    }
    if (s->last != NULL) {
        nng_msg_free(s->last);
    }
    free(s);
}

int
evsub_fd(struct evsub *s, int *fd)
{
    int v, rv;
    if ((rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &v)) != 0) {
        LOG(LOG_ERROR, "evsub.fd", "error=\"%s\"", nng_strerror(rv));
        return SL_EIO;
    }
    *fd = v;
    return 0;
}

int
evsub_recv(struct evsub *s, struct wire_msg *ev, uint64_t wait_ms)
{
    int rv, flags = 0;

    if (wait_ms == 0) {
        flags = NNG_FLAG_NONBLOCK;
    } else {
        nng_duration t = wait_ms > INT32_MAX ? NNG_DURATION_INFINITE : (nng_duration)wait_ms;
        nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, t);
    }
    /* The previous event's views die here; the caller finished with them. */
    wire_msg_fini(ev);
    wire_msg_init(ev);
    if (s->last != NULL) {
        nng_msg_free(s->last);
        s->last = NULL;
    }
    if ((rv = nng_recvmsg(s->sock, &s->last, flags)) != 0) {
        if (rv == NNG_ETIMEDOUT || rv == NNG_EAGAIN) {
            return SL_ETIMEDOUT;
        }
        LOG(LOG_ERROR, "evsub.recv", "error=\"%s\"", nng_strerror(rv));
        return SL_EIO;
    }
    char why[160] = "event has no 'event' key";
    if (wire_decode(ev, nng_msg_body(s->last), nng_msg_len(s->last), why, sizeof(why)) != 0 ||
        !WIRE_HAS(ev, WK_EVENT)) {
        LOG(LOG_DEBUG, "evsub.bad_event", "reason=\"%s\"", why);
        wire_msg_fini(ev);
        wire_msg_init(ev);
        return SL_EBADREQ;
    }
    return 0;
}
