/* The broker's request server (server.h). */
#include "server_int.h"

#include "err.h"
#include "clock.h"
#include "journal.h"
#include "log.h"
#include "ops.h"
#include "park.h"
#include "splisten.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A request of k, whose backtrace is bt[0..btlen): handled, answered now or later. */
static void
handle(struct sloop *lp, struct sconn *k, const uint8_t *bt, size_t btlen, const uint8_t *body,
       size_t n)
{
    struct server *s = lp->srv;
    struct sreq *r = lp->spare;
    if (r == NULL && (r = lp->spare = srv_sreq_get(s)) == NULL) {
        LOG(LOG_ERROR, "reply.nomem", "reason=\"request dropped\"");
        return;
    }
    if (lp->rep == NULL && r->spare_rep != NULL) {
        lp->rep = r->spare_rep;
        r->spare_rep = NULL;
    }
    if (lp->rep == NULL && nng_msg_alloc(&lp->rep, 0) != 0) {
        LOG(LOG_ERROR, "reply.nomem", "reason=\"request dropped\"");
        return;
    }
    memset(&r->wt, 0, sizeof(r->wt));
    r->wt.send = srv_sreq_send;
    r->k = k;
    r->refs = 2;
    memcpy(r->bt, bt, btlen);
    r->btlen = (uint8_t)btlen;
    __atomic_add_fetch(&k->refs, 1, __ATOMIC_ACQ_REL);
    nng_msg *rep = lp->rep;
    int rv = ops_handle(s->b, body, n, k->id, rep, &r->wt);
    if (rv != SL_EUNAUTH && rv != SL_EBADREQ && !__atomic_load_n(&k->authed, __ATOMIC_ACQUIRE)) {
        /* A request past the token check (it is neither refused for its token nor
         * undecodable, which is checked first) shows the connection has the token. */
        pthread_mutex_lock(&k->mtx);
        k->authed = true;
        pthread_mutex_unlock(&k->mtx);
    }
    if (rv == OPS_PARKED) {
        if (r->wt.took_rep) {
            lp->rep = NULL; /* the waiter holds it until the journal has the request */
        } else {
            nng_msg_clear(rep);
        }
        lp->spare = NULL;
        srv_sreq_put(r); /* its reply may have gone already */
        return;
    }
    __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL); /* the loop's own stays */
    srv_conn_reply(s, k, bt, btlen, nng_msg_body(rep), nng_msg_len(rep), false);
    nng_msg_clear(rep);
}

/* One frame's payload: its backtrace (words up to the one with the high bit, the request id),
 * then the request. A payload without a whole backtrace is discarded, as nng's REP does. */
static void
frame(struct sloop *lp, struct sconn *k, const uint8_t *p, size_t n)
{
    size_t bt = 0;
    for (;;) {
        if (bt + 4 > n || bt >= 4 * HOPS_MAX) {
            return;
        }
        bt += 4;
        if ((p[bt - 4] & 0x80) != 0) {
            break;
        }
    }
    handle(lp, k, p, bt, p + bt, n - bt);
}

/* Takes whatever whole frames p[0..n) holds; returns how many bytes it used, or SIZE_MAX when
 * the connection is to be closed (not SP, or a message larger than the broker takes). */
static size_t
take(struct sloop *lp, struct sconn *k, const uint8_t *p, size_t n)
{
    size_t used = 0;
    if (!k->greeted) {
        static const uint8_t want[8] = { 0, 'S', 'P', 0, 0, PROTO_REQ0, 0, 0 };
        if (n < 8) {
            return memcmp(p, want, n) == 0 ? 0 : SIZE_MAX;
        }
        if (memcmp(p, want, 8) != 0) {
            return SIZE_MAX;
        }
        k->greeted = true;
        used = 8;
    }
    size_t hn = k->ipc ? 9 : 8;
    while (n - used >= hn) {
        const uint8_t *h = p + used;
        if (k->ipc && h[0] != 1) {
            return SIZE_MAX;
        }
        uint64_t len = 0;
        for (size_t i = hn - 8; i < hn; i++) {
            len = len << 8 | h[i];
        }
        if (len > lp->srv->max_message) {
            return SIZE_MAX;
        }
        if (n - used - hn < len) {
            break;
        }
        bool dropped = __atomic_load_n(&k->dropped, __ATOMIC_ACQUIRE);
        if (!dropped && !__atomic_load_n(&lp->srv->stopping, __ATOMIC_ACQUIRE)) {
            frame(lp, k, h + hn, (size_t)len);
        }
        used += hn + (size_t)len;
    }
    return used;
}

/* Closes k (its loop's thread): its unanswered requests' replies are discarded, its waiters
 * answered and its workers' jobs handed back (ops_pipe_closed). */
static void
conn_close(struct sloop *lp, struct sconn *k)
{
    struct server *s = lp->srv;
    pthread_mutex_lock(&k->mtx);
    (void)epoll_ctl(lp->ep, EPOLL_CTL_DEL, k->fd, NULL);
    close(k->fd);
    k->closed = true;
    k->outpos = k->outlen = 0;
    pthread_mutex_unlock(&k->mtx);
    pthread_mutex_lock(&lp->mtx);
    if (k->prev != NULL) {
        k->prev->next = k->next;
    } else {
        lp->conns = k->next;
    }
    if (k->next != NULL) {
        k->next->prev = k->prev;
    }
    pthread_mutex_unlock(&lp->mtx);
    pthread_mutex_lock(&s->mtx);
    s->nconns--;
    pthread_mutex_unlock(&s->mtx);
    srv_count_conn(s->b, &s->b->connc.open, -1);
    ops_pipe_closed(s->b, k->id);
    srv_conn_put(k);
}

/* k is readable (or hung up): reads what has come, handles every whole request in it, and
 * writes their replies together. */
static void
conn_read(struct sloop *lp, struct sconn *k)
{
    if (__atomic_load_n(&k->dropped, __ATOMIC_ACQUIRE)) {
        conn_close(lp, k); /* what it sent since is discarded */
        return;
    }
    ssize_t r = read(k->fd, lp->buf, sizeof(lp->buf));
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        conn_close(lp, k);
        return;
    }
    const uint8_t *p = lp->buf;
    size_t n = (size_t)r;
    if (k->inlen > 0) {
        /* The rest of a frame begun earlier: it is put together in k->in. */
        if (k->inlen + n > k->incap) {
            size_t cap = k->incap > 0 ? k->incap : 4096;
            while (cap < k->inlen + n) {
                cap *= 2;
            }
            uint8_t *q = realloc(k->in, cap);
            if (q == NULL) {
                LOG(LOG_ERROR, "conn.nomem", "pipe=%u reason=\"connection closed\"", k->id);
                conn_close(lp, k);
                return;
            }
            k->in = q;
            k->incap = cap;
        }
        memcpy(k->in + k->inlen, p, n);
        k->inlen += n;
        p = k->in;
        n = k->inlen;
    }
    size_t used = take(lp, k, p, n);
    if (used == SIZE_MAX) {
        LOG(LOG_DEBUG, "conn.closed", "pipe=%u reason=\"not an SP request stream, or a message "
            "too large\"", k->id);
        conn_close(lp, k);
        return;
    }
    if (used < n) {
        if (p == k->in) {
            memmove(k->in, k->in + used, n - used);
        } else {
            uint8_t *q = k->incap >= n - used ? k->in : realloc(k->in, n - used);
            if (q == NULL) {
                conn_close(lp, k);
                return;
            }
            if (q != k->in) {
                k->in = q;
                k->incap = n - used;
            }
            memcpy(k->in, p + used, n - used);
        }
    } else if (k->incap > (256u << 10)) {
        free(k->in);
        k->in = NULL;
        k->incap = 0;
    }
    k->inlen = n - used;
    pthread_mutex_lock(&k->mtx);
    if (!k->dropped) {
        srv_flush(k);
    }
    pthread_mutex_unlock(&k->mtx);
}

/* Accepts every connection waiting on l, each served by the next loop. */
static void
accept_all(struct server *s, struct slisten *l)
{
    for (;;) {
        int fd = accept4(l->l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                LOG(LOG_WARN, "accept", "error=\"%s\"", strerror(errno));
            }
            return;
        }
        static const uint8_t hello[8] = { 0, 'S', 'P', 0, 0, PROTO_REP0, 0, 0 };
        struct sconn *k = calloc(1, sizeof(*k));
        pthread_mutex_lock(&s->mtx);
        bool room = k != NULL && s->nconns < s->max_conns;
        unsigned open = s->nconns;
        uint64_t refused = room ? 0 : srv_lograte_due(&s->refused);
        uint32_t id = 0;
        if (room) {
            s->nconns++;
            if (++s->next_id == 0) {
                s->next_id = 1;
            }
            id = s->next_id;
        }
        pthread_mutex_unlock(&s->mtx);
        if (!room) {
            free(k);
            close(fd);
            srv_count_conn(s->b, &s->b->connc.refused, 1);
            if (refused > 0) {
                LOG(LOG_WARN, "conn.refused", "reason=\"%s\" open=%u max=%u refused=%llu",
                    open >= s->max_conns ? "too many connections (--max-connections)"
                                         : "no memory",
                    open, s->max_conns, (unsigned long long)refused);
            }
            continue;
        }
        int one = 1;
        if (!l->l.ipc) {
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        k->kind = SFD_CONN;
        k->id = id;
        k->fd = fd;
        k->ipc = l->l.ipc;
        k->lp = &s->loops[id % s->nloops];
        k->refs = 1;
        k->authed = s->b->token.n == 0;
        pthread_mutex_init(&k->mtx, NULL);
        srv_count_conn(s->b, &s->b->connc.open, 1);
        struct sloop *lp = k->lp;
        pthread_mutex_lock(&lp->mtx);
        k->next = lp->conns;
        if (lp->conns != NULL) {
            lp->conns->prev = k;
        }
        lp->conns = k;
        pthread_mutex_unlock(&lp->mtx);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = k };
        if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(hello) ||
            epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            /* Gone already: closed as any other, by its loop's rules (this thread owns it
             * until epoll has it). */
            (void)epoll_ctl(lp->ep, EPOLL_CTL_DEL, fd, NULL);
            conn_close(lp, k);
        }
    }
}

/* Every SERVER_SWEEP_MS: drops the connections of lp whose oldest reply has waited
 * SERVER_SEND_TIMEOUT_MS for them to read it, and closes those dropped (their shutdown wakes
 * the loop; this is in case it did not). */
static void
sweep(struct sloop *lp)
{
    struct sconn *shut[64];
    unsigned nshut = 0;
    int64_t now = (int64_t)clock_mono_ms();
    if (now - lp->swept_ms < SERVER_SWEEP_MS) {
        return;
    }
    lp->swept_ms = now;
    pthread_mutex_lock(&lp->mtx);
    for (struct sconn *k = lp->conns; k != NULL; k = k->next) {
        pthread_mutex_lock(&k->mtx);
        bool late = k->waiting > 0 && now - k->since_ms >= SERVER_SEND_TIMEOUT_MS;
        unsigned waiting = k->waiting;
        bool authed = k->authed;
        bool dropped = late && srv_conn_shut(k);
        if (k->dropped && nshut < 64) {
            shut[nshut++] = k;
        }
        pthread_mutex_unlock(&k->mtx);
        if (dropped) {
            srv_conn_dropped(lp->srv, k->id, "send_timeout", waiting, authed);
        }
    }
    pthread_mutex_unlock(&lp->mtx);
    for (unsigned i = 0; i < nshut; i++) {
        conn_close(lp, shut[i]); /* only this thread closes them: still there */
    }
}

static void *
loop_main(void *arg)
{
    struct sloop *lp = arg;
    struct server *s = lp->srv;
    struct epoll_event evs[EVENTS_MAX];

    for (;;) {
        int n = epoll_wait(lp->ep, evs, EVENTS_MAX, SERVER_SWEEP_MS);
        if (n < 0 && errno != EINTR) {
            LOG(LOG_ERROR, "server.epoll", "error=\"%s\"", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            enum sfd_kind *kind = evs[i].data.ptr;
            if (*kind == SFD_WAKE) {
                return NULL;
            }
            if (*kind == SFD_LISTEN) {
                accept_all(s, (struct slisten *)kind);
                continue;
            }
            struct sconn *k = (struct sconn *)kind;
            if ((evs[i].events & EPOLLOUT) != 0) {
                pthread_mutex_lock(&k->mtx);
                srv_flush(k);
                pthread_mutex_unlock(&k->mtx);
            }
            if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
                conn_read(lp, k);
            }
        }
        sweep(lp);
    }
    return NULL;
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
             unsigned nthreads)
{
    struct server_listen l = { .urls = { url }, .n = 1, .ipc_mode = 0600,
                               .ipc_gid = (gid_t)-1 };
    return server_start_at(sp, b, &l, max_message, nthreads);
}

static int
loop_init(struct server *s, struct sloop *lp)
{
    lp->srv = s;
    lp->wake.kind = SFD_WAKE;
    lp->ep = epoll_create1(EPOLL_CLOEXEC);
    lp->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&lp->mtx, NULL);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &lp->wake };
    if (lp->ep < 0 || lp->wake.fd < 0 ||
        epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->wake.fd, &ev) != 0) {
        LOG(LOG_ERROR, "server.epoll", "error=\"%s\"", strerror(errno));
        return SL_EIO;
    }
    return 0;
}

int
server_start_at(struct server **sp, struct broker *b, const struct server_listen *l,
                size_t max_message, unsigned nthreads)
{
    struct server *s = calloc(1, sizeof(*s));
    struct rlimit rl;
    int rv;

    if (nthreads < 1 || nthreads > SERVER_THREADS_MAX || l->n > SERVER_LISTEN_MAX) {
        free(s);
        return SL_EBADREQ;
    }
    if (s == NULL || (s->loops = calloc(nthreads, sizeof(*s->loops))) == NULL) {
        free(s);
        return SL_ENOMEM;
    }
    s->b = b;
    s->max_message = max_message;
    s->nloops = nthreads;
    s->max_conns = b->cfg.max_conns;
    if (s->max_conns == 0) {
        s->max_conns = server_conns_for_fds(getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
                                                    rl.rlim_cur != RLIM_INFINITY
                                                ? (uint64_t)rl.rlim_cur
                                                : SERVER_CONNS_MAX);
    }
    pthread_mutex_init(&s->mtx, NULL);
    pthread_mutex_init(&s->free_mtx, NULL);
    for (unsigned i = 0; i < nthreads; i++) {
        s->loops[i].ep = s->loops[i].wake.fd = -1;
    }
    for (unsigned i = 0; i < nthreads; i++) {
        if ((rv = loop_init(s, &s->loops[i])) != 0) {
            goto fail;
        }
    }
    for (unsigned i = 0; i < l->n; i++) {
        struct slisten *x = &s->ls[s->nls];
        x->kind = SFD_LISTEN;
        if ((rv = splisten_open(&x->l, l->urls[i], l->ipc_mode, l->ipc_gid)) != 0) {
            goto fail;
        }
        s->nls++;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = x };
        if (epoll_ctl(s->loops[0].ep, EPOLL_CTL_ADD, x->l.fd, &ev) != 0) {
            rv = SL_EIO;
            goto fail;
        }
    }
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&s->loops[i].th, NULL, loop_main, &s->loops[i]) != 0) {
            LOG(LOG_ERROR, "server.thread", "reason=\"cannot start a thread\"");
            rv = SL_EIO;
            goto fail;
        }
        s->loops[i].started = true;
    }
    *sp = s;
    return 0;
fail:
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
    __atomic_store_n(&s->stopping, true, __ATOMIC_RELEASE);
    /* Requests in progress finish; then no thread of the server handles one. */
    for (unsigned i = 0; i < s->nloops; i++) {
        struct sloop *lp = &s->loops[i];
        if (lp->started) {
            uint64_t one = 1;
            (void)!write(lp->wake.fd, &one, sizeof(one));
            pthread_join(lp->th, NULL);
            lp->started = false;
        }
    }
    /* Parked waiters are dropped, as are replies the journal holds. */
    struct waiter *out = NULL;
    pthread_mutex_lock(&s->b->lock);
    park_expire(s->b, INT64_MAX, 0, &out);
    park_wait_timer_sends(s->b); /* replies the timer took off the list before this */
    pthread_mutex_unlock(&s->b->lock);
    srv_drop_waiters(out);
    if (s->b->jr != NULL) {
        srv_drop_waiters(journal_release_waiters(s->b->jr));
    }
}

void
server_stop(struct server *s)
{
    if (s == NULL) {
        return;
    }
    server_quiesce(s);
    for (unsigned i = 0; i < s->nls; i++) {
        splisten_close(&s->ls[i].l);
    }
    for (unsigned i = 0; i < s->nloops; i++) {
        struct sloop *lp = &s->loops[i];
        while (lp->conns != NULL) {
            conn_close(lp, lp->conns);
        }
        if (lp->spare != NULL) {
            nng_msg_free(lp->spare->spare_rep);
            free(lp->spare);
        }
        nng_msg_free(lp->rep);
        if (lp->ep >= 0) {
            close(lp->ep);
        }
        if (lp->wake.fd >= 0) {
            close(lp->wake.fd);
        }
        pthread_mutex_destroy(&lp->mtx);
    }
    while (s->free != NULL) {
        struct sreq *r = s->free;
        s->free = r->next_free;
        nng_msg_free(r->spare_rep);
        free(r);
    }
    pthread_mutex_destroy(&s->free_mtx);
    pthread_mutex_destroy(&s->mtx);
    free(s->loops);
    free(s);
}
