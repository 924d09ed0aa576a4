/* The request server's way out (server_int.h): a connection's replies, written as far as the
 * kernel takes them and dropped with the connection when its peer does not read; and the
 * records of requests whose replies come later, kept for reuse. */
#include "server_int.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/* Counts one event; returns how many to log now (0: not now). Server mutex held. */
uint64_t
srv_lograte_due(struct lograte *r)
{
    int64_t now = (int64_t)clock_mono_ms();
    r->unlogged++;
    if (r->logged_ms != 0 && now - r->logged_ms < 1000) {
        return 0;
    }
    uint64_t n = r->unlogged;
    r->unlogged = 0;
    r->logged_ms = now;
    return n;
}

void
srv_count_conn(struct broker *b, uint64_t *counter, int delta)
{
    pthread_mutex_lock(&b->lock);
    *counter += (uint64_t)(int64_t)delta;
    pthread_mutex_unlock(&b->lock);
}

void
srv_conn_put(struct sconn *k)
{
    if (__atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        pthread_mutex_destroy(&k->mtx);
        free(k->in);
        free(k->out);
        free(k);
    }
}

/* Sets what epoll waits for on k. k->mtx held, k open. */
static void
want_out(struct sconn *k, bool out)
{
    if (k->pollout == out) {
        return;
    }
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = k };
    if (epoll_ctl(k->lp->ep, EPOLL_CTL_MOD, k->fd, &ev) == 0) {
        k->pollout = out;
    }
}

/* Marks k as not to be served any more: its loop closes it. k->mtx held. Returns false if
 * that was done already. */
bool
srv_conn_shut(struct sconn *k)
{
    if (k->dropped || k->closed) {
        return false;
    }
    k->dropped = true;
    (void)shutdown(k->fd, SHUT_RDWR); /* its loop wakes and closes it */
    return true;
}

/* Counts and logs (a few) a connection dropped for not taking its replies. */
void
srv_conn_dropped(struct server *s, uint32_t id, const char *reason, unsigned waiting, bool authed)
{
    pthread_mutex_lock(&s->mtx);
    uint64_t n = srv_lograte_due(&s->dropped);
    pthread_mutex_unlock(&s->mtx);
    srv_count_conn(s->b, &s->b->connc.dropped, 1);
    if (n > 0) {
        LOG(LOG_WARN, "conn.dropped", "pipe=%u reason=%s waiting=%u authed=%s dropped=%llu", id,
            reason, waiting, authed ? "yes" : "no", (unsigned long long)n);
    }
}

/* Writes what k's replies left unwritten, as far as the kernel takes it. k->mtx held. */
void
srv_flush(struct sconn *k)
{
    while (k->outpos < k->outlen) {
        ssize_t w = send(k->fd, k->out + k->outpos, k->outlen - k->outpos,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            k->outpos += (size_t)w;
            k->written += (uint64_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        (void)srv_conn_shut(k); /* the peer is gone: its loop sees it */
        return;
    }
    unsigned before = k->waiting;
    while (k->waiting > 0 && k->ends[k->head] <= k->written) {
        k->head = (k->head + 1) % SERVER_REPLIES_WAITING;
        k->waiting--;
    }
    if (k->waiting != before) {
        k->since_ms = (int64_t)clock_mono_ms();
    }
    if (k->outpos == k->outlen) {
        k->outpos = k->outlen = 0;
        if (k->outcap > (256u << 10)) {
            free(k->out);
            k->out = NULL;
            k->outcap = 0;
        }
    }
    want_out(k, k->outpos < k->outlen);
}

/* Room for n more bytes in k's output. k->mtx held. */
static bool
out_reserve(struct sconn *k, size_t n)
{
    if (k->outpos > 0 && k->outlen + n > k->outcap) {
        memmove(k->out, k->out + k->outpos, k->outlen - k->outpos);
        k->outlen -= k->outpos;
        k->outpos = 0;
    }
    if (k->outlen + n <= k->outcap) {
        return true;
    }
    size_t cap = k->outcap > 0 ? k->outcap : 4096;
    while (cap < k->outlen + n) {
        cap *= 2;
    }
    uint8_t *p = realloc(k->out, cap);
    if (p == NULL) {
        return false;
    }
    k->out = p;
    k->outcap = cap;
    return true;
}

/* Queues a reply (backtrace bt, then body) on k, and writes it now if now. A connection with
 * as many replies waiting as it may have is dropped: it does not read. */
void
srv_conn_reply(struct server *s, struct sconn *k, const uint8_t *bt, size_t btlen,
           const void *body, size_t n, bool now)
{
    unsigned waiting = 0;
    bool dropped = false, authed;

    pthread_mutex_lock(&k->mtx);
    authed = k->authed;
    unsigned limit = authed ? SERVER_REPLIES_WAITING : SERVER_UNAUTH_REPLIES_WAITING;
    if (!k->dropped && !k->closed && k->waiting >= limit) {
        srv_flush(k);
        if (k->waiting >= limit) {
            waiting = k->waiting + 1;
            dropped = srv_conn_shut(k);
        }
    }
    size_t hn = k->ipc ? 9 : 8;
    if (k->dropped || k->closed || !out_reserve(k, hn + btlen + n)) {
        pthread_mutex_unlock(&k->mtx);
        if (dropped) {
            srv_conn_dropped(s, k->id, "not_reading", waiting, authed);
        }
        return;
    }
    uint8_t *p = k->out + k->outlen;
    uint64_t len = (uint64_t)btlen + n;
    if (k->ipc) {
        *p++ = 1;
    }
    for (int i = 7; i >= 0; i--) {
        *p++ = (uint8_t)(len >> (8 * i));
    }
    memcpy(p, bt, btlen);
    if (n > 0) {
        memcpy(p + btlen, body, n);
    }
    k->outlen += hn + btlen + n;
    k->queued += hn + btlen + n;
    if (k->waiting == 0) {
        k->since_ms = (int64_t)clock_mono_ms();
    }
    k->ends[(k->head + k->waiting) % SERVER_REPLIES_WAITING] = k->queued;
    k->waiting++;
    if (now) {
        srv_flush(k);
    }
    pthread_mutex_unlock(&k->mtx);
}

void
srv_sreq_put(struct sreq *r)
{
    if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        struct server *s = r->k->lp->srv;
        srv_conn_put(r->k);
        r->k = NULL;
        pthread_mutex_lock(&s->free_mtx);
        if (s->nfree < SREQ_KEEP) {
            r->next_free = s->free;
            s->free = r;
            s->nfree++;
            r = NULL;
        }
        pthread_mutex_unlock(&s->free_mtx);
        if (r != NULL) {
            nng_msg_free(r->spare_rep);
            free(r);
        }
    }
}

/* A request record: a kept one, with a reply message when it has one, or a new one. */
struct sreq *
srv_sreq_get(struct server *s)
{
    pthread_mutex_lock(&s->free_mtx);
    struct sreq *r = s->free;
    if (r != NULL) {
        s->free = r->next_free;
        s->nfree--;
    }
    pthread_mutex_unlock(&s->free_mtx);
    if (r == NULL && (r = malloc(sizeof(*r))) != NULL) {
        r->spare_rep = NULL;
    }
    return r;
}

/* A parked request's reply is ready (from the thread that served, expired or confirmed it). */
void
srv_sreq_send(struct waiter *wt)
{
    struct sreq *r = (struct sreq *)((char *)wt - offsetof(struct sreq, wt));
    nng_msg *rep = wt->rep;
    wt->rep = NULL;
    if (rep != NULL) {
        srv_conn_reply(r->k->lp->srv, r->k, r->bt, r->btlen, nng_msg_body(rep), nng_msg_len(rep),
                   true);
        if (r->spare_rep == NULL) {
            nng_msg_clear(rep);
            r->spare_rep = rep;
        } else {
            nng_msg_free(rep);
        }
    } else {
        /* No memory for the reply: none is sent; the client's deadline reports it. Its jobs
         * (none were reserved for it) are safe. */
        LOG(LOG_ERROR, "reply.nomem", "reason=\"parked request dropped\"");
    }
    srv_sreq_put(r);
}

/* Frees the records of requests whose replies will not be sent: list of waiters linked by
 * next, their rep freed or to be freed here. */
void
srv_drop_waiters(struct waiter *list)
{
    for (struct waiter *wt = list, *next; wt != NULL; wt = next) {
        next = wt->next;
        nng_msg_free(wt->rep);
        wt->rep = NULL;
        if (wt->send == srv_sreq_send) {
            srv_sreq_put((struct sreq *)((char *)wt - offsetof(struct sreq, wt)));
        }
    }
}
