/* A request connection shared by a few threads (spreq.h). */
#include "spreq.h"

#include "clock.h"
#include "err.h"
#include "spconn.h"

#include <nng/nng.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define URL_MAX 512
#define REDIAL_MIN_MS 50u
#define REDIAL_MAX_MS 1000u
#define DIAL_MAX_MS 1000u  /* one dial's own limit */

/* One connection; freed when the last of its references goes. */
struct conn {
    struct spconn *sc;
    uint32_t num;
    int refs;                /* (mtx) the spreq's while it is current, and each user's */
    bool dead;               /* (mtx) lost or replaced: nothing new goes on it */
    uint64_t looked_ms;      /* (mtx) when the peer's close was last looked for */
};

/* A request waiting for its reply (on the stack of the thread that sent it). */
struct waiter {
    struct waiter *next;
    struct conn *c;
    uint32_t id;
    bool done;               /* (mtx) rv (and rep) are set */
    int rv;
    nng_msg *rep;
};

struct spreq {
    pthread_mutex_t mtx;
    pthread_cond_t cv;       /* a waiter is done, the reader left, a dial ended */
    pthread_mutex_t wmtx;    /* one thread writes at a time */
    char url[URL_MAX];       /* (mtx) */
    struct conn *cur;        /* (mtx) the connection open now; NULL: none */
    uint32_t nconn;          /* (mtx) connections dialed */
    bool dialing;            /* (mtx) a thread dials */
    bool reading;            /* (mtx) a thread reads replies */
    bool interrupted;        /* (mtx) */
    struct waiter *waiters;  /* (mtx) */
};

static void
wait_until(struct spreq *r, uint64_t deadline_ms)
{
    struct timespec ts = { .tv_sec = (time_t)(deadline_ms / 1000),
                           .tv_nsec = (long)(deadline_ms % 1000) * 1000000L };
    (void)pthread_cond_timedwait(&r->cv, &r->mtx, &ts);
}

static void
finish_waiter(struct waiter *w, int rv, nng_msg *rep)
{
    w->done = true;
    w->rv = rv;
    w->rep = rep;
}

/* (mtx) Lets go of one reference to c. */
static void
conn_unref(struct conn *c)
{
    if (--c->refs == 0) {
        spconn_close(c->sc);
        free(c);
    }
}

/* (mtx) Ends c: its traffic stops (a thread reading it wakes), its waiters fail with rv, and
 * it is no longer the current connection. */
static void
conn_kill(struct spreq *r, struct conn *c, int rv)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    spconn_shutdown(c->sc);
    for (struct waiter *w = r->waiters; w != NULL; w = w->next) {
        if (w->c == c && !w->done) {
            finish_waiter(w, rv, NULL);
        }
    }
    pthread_cond_broadcast(&r->cv);
    if (r->cur == c) {
        r->cur = NULL;
        conn_unref(c);
    }
}

/* (mtx) The current connection, checked for a close by the peer: a poll() at most once a
 * millisecond (a worker handing out a large batch asks before every job). */
static struct conn *
current(struct spreq *r)
{
    struct conn *c = r->cur;
    if (c != NULL) {
        uint64_t now = clock_mono_ms();
        if (now != c->looked_ms) {
            c->looked_ms = now;
            if (spconn_closed(c->sc)) {
                conn_kill(r, c, SL_EIO);
            }
        }
    }
    return r->cur;
}

int
spreq_open(struct spreq **rp, const char *url)
{
    *rp = NULL;
    if (!spconn_handles(url) || strlen(url) >= URL_MAX) {
        return SL_EBADREQ;
    }
    struct spreq *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return SL_ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&r->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        free(r);
        return SL_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mtx, NULL);
    pthread_mutex_init(&r->wmtx, NULL);
    strcpy(r->url, url);
    *rp = r;
    return 0;
}

/* (mtx) Dials r->url once, the lock let go meanwhile; on success the new connection is
 * current. */
static int
dial_once(struct spreq *r, uint64_t timeout_ms)
{
    char url[URL_MAX];
    struct spconn *sc = NULL;

    r->dialing = true;
    strcpy(url, r->url);
    pthread_mutex_unlock(&r->mtx);
    int rv = spconn_dial(&sc, url, timeout_ms);
    struct conn *c = rv == 0 ? malloc(sizeof(*c)) : NULL;
    pthread_mutex_lock(&r->mtx);
    r->dialing = false;
    pthread_cond_broadcast(&r->cv);
    if (rv == 0 && c == NULL) {
        spconn_close(sc);
        return SL_ENOMEM;
    }
    if (rv != 0) {
        return rv;
    }
    if (r->interrupted || strcmp(url, r->url) != 0 || r->cur != NULL) {
        /* Moved meanwhile (not this one), or stopping; a current connection is kept. */
        spconn_close(sc);
        free(c);
        return r->cur != NULL ? 0 : SL_EUNREACHABLE;
    }
    *c = (struct conn){ .sc = sc, .num = ++r->nconn, .refs = 1 };
    r->cur = c;
    return 0;
}

/* (mtx) A reference to the current connection, dialing as how allows until deadline. Every
 * turn looks at the current connection first: another thread's dial (a heartbeat's, while
 * this one waited to dial again) serves this one too. */
static int
acquire(struct spreq *r, const struct spreq_how *how, uint64_t deadline, struct conn **cp)
{
    uint64_t now = clock_mono_ms();
    uint64_t connect_end = now + how->connect_ms < deadline ? now + how->connect_ms : deadline;
    uint64_t next_dial = now;
    uint32_t backoff = 0;

    for (;;) {
        if (r->interrupted) {
            return SL_EUNREACHABLE;
        }
        struct conn *c = current(r);
        if (c != NULL) {
            c->refs++;
            *cp = c;
            return 0;
        }
        if (!how->dial || (how->stop != NULL && *how->stop != 0)) {
            return SL_EUNREACHABLE;
        }
        now = clock_mono_ms();
        if (r->dialing || now < next_dial) { /* another thread dials, or the last dial failed */
            if (!r->dialing && now >= connect_end) {
                return SL_EUNREACHABLE;
            }
            uint64_t until = r->dialing ? now + 100 : next_dial;
            wait_until(r, until < now + 100 ? until : now + 100);
            continue;
        }
        if (backoff > 0 && now >= connect_end) {
            return SL_EUNREACHABLE;
        }
        uint64_t left = connect_end > now ? connect_end - now : 0;
        int rv = dial_once(r, left < REDIAL_MIN_MS ? REDIAL_MIN_MS
                              : left > DIAL_MAX_MS ? DIAL_MAX_MS : left);
        if (rv == SL_EBADREQ || rv == SL_ENOMEM || r->interrupted) {
            return rv != 0 ? rv : SL_EUNREACHABLE;
        }
        if (rv != 0) {
            backoff = backoff == 0 ? REDIAL_MIN_MS
                      : backoff >= REDIAL_MAX_MS / 2 ? REDIAL_MAX_MS : backoff * 2;
            next_dial = clock_mono_ms() + backoff;
        }
    }
}

/* (mtx) Hands a reply read on c to the waiter it answers; a reply nobody waits for (given up
 * on) is dropped. */
static void
dispatch(struct spreq *r, const struct conn *c, uint32_t id, nng_msg *m)
{
    for (struct waiter *w = r->waiters; w != NULL; w = w->next) {
        if (w->c == c && w->id == id && !w->done) {
            finish_waiter(w, 0, m);
            pthread_cond_broadcast(&r->cv);
            return;
        }
    }
    nng_msg_free(m);
}

/* (mtx) Waits for me's reply until deadline: reads c itself when no other thread does. */
static void
await(struct spreq *r, struct waiter *me, uint64_t deadline)
{
    while (!me->done) {
        uint64_t now = clock_mono_ms();
        if (now >= deadline) {
            finish_waiter(me, SL_ETIMEDOUT, NULL);
            break;
        }
        if (r->reading) {
            wait_until(r, deadline);
            continue;
        }
        r->reading = true;
        pthread_mutex_unlock(&r->mtx);
        nng_msg *m = NULL;
        uint32_t id = 0;
        int rv = spconn_recv_frame(me->c->sc, &m, &id, deadline - now);
        pthread_mutex_lock(&r->mtx);
        r->reading = false;
        pthread_cond_broadcast(&r->cv); /* another waiter may read now */
        if (rv == 0) {
            dispatch(r, me->c, id, m);
        } else if (rv != SL_ETIMEDOUT) {
            conn_kill(r, me->c, rv == SL_ENOMEM ? SL_ENOMEM : SL_EIO);
        }
    }
}

int
spreq_call(struct spreq *r, const void *body, size_t n, uint64_t timeout_ms,
           const struct spreq_how *how, struct nng_msg **rep, uint32_t *conn)
{
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    struct waiter me = { 0 };
    int rv;

    *rep = NULL;
    pthread_mutex_lock(&r->mtx);
    if ((rv = acquire(r, how, deadline, &me.c)) != 0) {
        pthread_mutex_unlock(&r->mtx);
        return rv;
    }
    me.id = spconn_new_id(me.c->sc);
    me.next = r->waiters;
    /* cppcheck-suppress autoVariables ; unlinked below, before this function returns */
    r->waiters = &me;
    pthread_mutex_unlock(&r->mtx);

    uint64_t now = clock_mono_ms();
    pthread_mutex_lock(&r->wmtx);
    rv = spconn_send_id(me.c->sc, me.id, body, n, now < deadline ? deadline - now : 0);
    pthread_mutex_unlock(&r->wmtx);

    pthread_mutex_lock(&r->mtx);
    if (rv != 0 && !me.done) {
        /* Part of a request may have gone: the connection cannot carry another. */
        conn_kill(r, me.c, SL_EIO);
    }
    await(r, &me, deadline);
    for (struct waiter **p = &r->waiters; *p != NULL; p = &(*p)->next) {
        if (*p == &me) {
            *p = me.next;
            break;
        }
    }
    *conn = me.c->num;
    conn_unref(me.c);
    pthread_mutex_unlock(&r->mtx);
    *rep = me.rep;
    return me.rv;
}

bool
spreq_connected(struct spreq *r)
{
    pthread_mutex_lock(&r->mtx);
    bool up = current(r) != NULL;
    pthread_mutex_unlock(&r->mtx);
    return up;
}

bool
spreq_lost(struct spreq *r, uint32_t conn)
{
    pthread_mutex_lock(&r->mtx);
    struct conn *c = current(r);
    bool lost = c == NULL || c->num != conn;
    pthread_mutex_unlock(&r->mtx);
    return lost;
}

void
spreq_move(struct spreq *r, const char *url)
{
    if (strlen(url) >= URL_MAX) {
        return;
    }
    pthread_mutex_lock(&r->mtx);
    strcpy(r->url, url);
    if (r->cur != NULL) {
        conn_kill(r, r->cur, SL_EIO);
    }
    pthread_mutex_unlock(&r->mtx);
}

void
spreq_interrupt(struct spreq *r)
{
    pthread_mutex_lock(&r->mtx);
    r->interrupted = true;
    for (struct waiter *w = r->waiters; w != NULL; w = w->next) {
        if (!w->done) {
            finish_waiter(w, SL_EIO, NULL);
        }
    }
    if (r->cur != NULL) {
        spconn_shutdown(r->cur->sc); /* a thread reading it wakes */
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mtx);
}

void
spreq_free(struct spreq *r)
{
    if (r == NULL) {
        return;
    }
    if (r->cur != NULL) {
        conn_unref(r->cur);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mtx);
    pthread_mutex_destroy(&r->wmtx);
    free(r);
}
