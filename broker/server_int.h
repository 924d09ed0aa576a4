/* What the request server's files share (server.c: the loops, connections and requests in;
 * server_reply.c: replies out and request records). Not a contract for anyone else. */
#ifndef SLUICE_SERVER_INT_H
#define SLUICE_SERVER_INT_H

#include "server.h"

#include "broker.h"
#include "park.h"
#include "splisten.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PROTO_REQ0 48
#define PROTO_REP0 49
#define ID_BIT 0x80000000u
#define HOPS_MAX 8              /* words of a request's backtrace, its id included */
#define READ_CHUNK (64u << 10)
#define EVENTS_MAX 64

/* What an epoll event points at. */
enum sfd_kind { SFD_LISTEN, SFD_CONN, SFD_WAKE };

struct sloop;

/* A connection. The thread of its loop reads it and is the only one to close it; any thread
 * may write a reply to it, under mtx. It is freed when the loop has closed it and no request
 * of it is still unanswered (refs). */
struct sconn {
    enum sfd_kind kind;          /* SFD_CONN; first */
    uint32_t id;                 /* the connection's id: ops' "pipe" */
    int fd;
    bool ipc;                    /* IPC frames carry a type byte */
    struct sloop *lp;
    struct sconn *next, *prev;   /* the loop's connections (loop's mtx) */
    unsigned refs;               /* atomic: the loop's and one per unanswered request */
    /* The loop thread only: */
    bool greeted;                /* the peer's SP header has come, and is REQ's */
    uint8_t *in;                 /* the start of a frame not yet whole */
    size_t inlen, incap;
    /* Under mtx: */
    pthread_mutex_t mtx;
    bool closed;                 /* fd is closed: replies are discarded */
    bool dropped;                /* not reading (or broken): shut down, discarded until closed */
    bool authed;                 /* it sent a request with the token, or none is asked for */
    bool pollout;                /* epoll also waits for room to write */
    uint8_t *out;                /* replies not yet written: out[outpos..outlen) */
    size_t outpos, outlen, outcap;
    uint64_t queued, written;    /* bytes given to out / written, since the connection began */
    uint64_t ends[SERVER_REPLIES_WAITING]; /* where each waiting reply ends, in queued bytes */
    unsigned head, waiting;
    int64_t since_ms;            /* when the oldest waiting reply began to wait */
};

/* A request whose reply may come later: the waiter ops_handle parks, the connection it
 * answers, and the backtrace its reply carries. */
struct sreq {
    struct waiter wt;
    struct sconn *k;
    unsigned refs;               /* atomic: the handling thread's and the reply's */
    uint8_t bt[4 * HOPS_MAX];
    uint8_t btlen;
    struct sreq *next_free;      /* in the server's free list */
    nng_msg *spare_rep;          /* the reply message sent last, kept for a next request */
};

/* Records of requests kept for reuse: a parked request's record is let go on the thread that
 * answers it (the journal's writer, with --fsync always), and allocating and freeing a few KiB
 * on two threads for every request cost more than the request. */
#define SREQ_KEEP 1024

struct sloop {
    struct server *srv;
    pthread_t th;
    bool started;
    int ep;
    struct { enum sfd_kind kind; int fd; } wake; /* an eventfd: stop */
    pthread_mutex_t mtx;         /* guards conns */
    struct sconn *conns;
    struct sreq *spare;          /* the next request's record */
    nng_msg *rep;                /* the next request's reply */
    int64_t swept_ms;
    uint8_t buf[READ_CHUNK];
};

/* Events a peer can cause at will are logged at most once a second, with their count. */
struct lograte {
    int64_t logged_ms;
    uint64_t unlogged;
};

struct slisten {
    enum sfd_kind kind;          /* SFD_LISTEN; first */
    struct splisten l;
};

struct server {
    struct broker *b;
    size_t max_message;
    unsigned max_conns;
    unsigned nloops;
    struct sloop *loops;
    struct slisten ls[SERVER_LISTEN_MAX];
    unsigned nls;
    pthread_mutex_t mtx;         /* guards the fields below */
    unsigned nconns;
    uint32_t next_id;
    struct lograte refused, dropped;
    pthread_mutex_t free_mtx;    /* guards free, nfree */
    struct sreq *free;
    unsigned nfree;
    bool stopping;               /* atomic */
    bool quiet;                  /* server_quiesce done (main thread only) */
};

/* Counts one event; returns how many to log now (0: not now). Server mutex held. */
uint64_t srv_lograte_due(struct lograte *r);
/* Adds delta to one of the broker's connection counters. */
void srv_count_conn(struct broker *b, uint64_t *counter, int delta);
/* Lets go of one reference to k; the last frees it. */
void srv_conn_put(struct sconn *k);
/* Marks k as not to be served any more: its loop closes it. k->mtx held. Returns false if
 * that was done already. */
bool srv_conn_shut(struct sconn *k);
/* Counts and logs (a few) a connection dropped for not taking its replies. */
void srv_conn_dropped(struct server *s, uint32_t id, const char *reason, unsigned waiting,
                      bool authed);
/* Writes what k's replies left unwritten, as far as the kernel takes it. k->mtx held. */
void srv_flush(struct sconn *k);
/* Queues a reply (backtrace bt, then body) on k, and writes it now if now. A connection with
 * as many replies waiting as it may have is dropped: it does not read. */
void srv_conn_reply(struct server *s, struct sconn *k, const uint8_t *bt, size_t btlen,
                    const void *body, size_t n, bool now);
/* A request record: a kept one, with a reply message when it has one, or a new one (NULL:
 * no memory). */
struct sreq *srv_sreq_get(struct server *s);
/* Lets go of one reference to r; the last keeps it for reuse (or frees it). */
void srv_sreq_put(struct sreq *r);
/* A parked request's reply is ready (from the thread that served, expired or confirmed it):
 * r->wt.send. */
void srv_sreq_send(struct waiter *wt);
/* Frees the records of requests whose replies will not be sent: list of waiters linked by
 * next, their rep freed or to be freed here. */
void srv_drop_waiters(struct waiter *list);

#endif
