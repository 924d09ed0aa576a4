/* bench/peers's systems under test (peers.c has the runs): Redis, beanstalkd and sluice, each
 * a table entry of the same operations over a connection of its own kind. Clients written
 * here (no client library but sluice's own) over a Unix socket; see peers.c for what each
 * operation is in each system. */
#ifndef SLUICE_BENCH_PEERS_SYS_H
#define SLUICE_BENCH_PEERS_SYS_H

#include "wire.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAYLOAD_LEN 16          /* bytes of every job: 16 hex digits */
#define THREADS_MAX 256         /* producers, and consumers, of one run */
#define BATCH_MAX 100000
#define RBUF_CAP 65536          /* a connection's read buffer: the longest reply line */
#define PUSH_TIMEOUT_MS 30000   /* sluice: a push not answered by then fails the run */
#define WARMUP_RT 100           /* rt, sockrt: round trips before the measured ones */
/* A take waits at most this long, so that a consumer sees a run's end even when nothing wakes
 * it (a run that failed elsewhere). */
#define TAKE_WAIT_MS 1000
/* sluice's: a worker's long poll. Shorter, as nothing wakes a worker at a run's end (no
 * system.wake): it sees *stop once its reserve returns. */
#define SLUICE_WAIT_MS 200
#define LATENCY_DRAIN_US 5000000 /* latency: how long the last jobs may take to arrive */

struct conn {
    int fd;                     /* redis, beanstalkd: the Unix socket; -1: none */
    char *rbuf;                 /* bytes read: rbuf[roff, rlen) not yet consumed */
    size_t roff, rlen;
    char *wbuf;                 /* a request being built: wlen bytes of wcap */
    size_t wlen, wcap;
    struct client *cl;          /* sluice producer */
    struct wapi *w;             /* sluice consumer */
    struct sl_str *views;       /* sluice producer: one view per payload of a push */
    uint64_t id;                /* the job taken last (beanstalkd, sluice); sluice-unique
                                   producer: pushes made */
    char key[48];               /* sluice-unique producer: the last push's unique key */
    char payload[PAYLOAD_LEN];  /* ...and its payload */
    const char *sys;            /* the system's name, for messages */
    /* Consumers: set once the run is over, when the socket may be shut down under a waiting
     * take; a failed read or write is then the end, not an error. */
    const volatile sig_atomic_t *stop;
};

/* One system under test. Every function prints what went wrong and returns -1, else 0. */
struct system {
    const char *name;
    /* Connects a producer that pushes at most batch jobs per request. */
    int (*open_producer)(struct conn *c, const char *addr, uint32_t batch);
    /* Connects a consumer; take gives up once *stop is set. name: unique within the run. */
    int (*open_consumer)(struct conn *c, const char *addr, const char *name,
                         const volatile sig_atomic_t *stop);
    /* Pushes the n payloads (PAYLOAD_LEN bytes each, back to back) and waits for the answer. */
    int (*push)(struct conn *c, const char *payloads, uint32_t n);
    /* Takes one job into c->payload (and c->id): 0; 1 when none came within about
     * TAKE_WAIT_MS (or the run is stopping); -1 on error. */
    int (*take)(struct conn *c);
    /* Acknowledges the job taken last: it is gone from the system. */
    int (*ack)(struct conn *c);
    /* NULL, or sends what ack left pending: after it every ack has reached the server. */
    void (*settle)(struct conn *c);
    /* NULL, or makes a take that waits in another thread return at once (once *stop is set).
     * Without it a take sees the end when its wait is over. */
    void (*wake)(struct conn *c);
    /* NULL, or waits until n consumers are known to the server (producer connection p). */
    int (*wait_consumers)(struct conn *p, uint32_t n);
    void (*close)(struct conn *c);
};

extern const struct system peers_systems[];
extern const size_t peers_nsystems;

/* CLOCK_MONOTONIC in ns. */
int64_t peers_now_ns(void);

/* Writes v as PAYLOAD_LEN hex digits at dst (no NUL). */
void peers_payload_put(char *dst, uint64_t v);

/* The number peers_payload_put wrote at src; false if src is not PAYLOAD_LEN hex digits. */
bool peers_payload_get(const char *src, uint64_t *v);

/* An empty connection of system sys (a name, for messages). */
void peers_conn_init(struct conn *c, const char *sys);

#endif
