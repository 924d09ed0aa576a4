/* bench/peers: sluice beside Redis and beanstalkd, each driven the way its users drive it, by
 * clients written here (no client library but sluice's own) over a Unix socket:
 *
 *   peers push SYSTEM ADDR PRODUCERS BATCH SECONDS
 *       PRODUCERS threads, a connection each, push BATCH 16-byte jobs per request for SECONDS,
 *       each waiting for its answer before the next. Prints jobs, seconds, jobs_per_s.
 *   peers e2e SYSTEM ADDR PRODUCERS CONSUMERS BATCH JOBS
 *       the producers push JOBS jobs in all (as above) while CONSUMERS threads take and
 *       acknowledge one job at a time. Prints jobs, seconds, jobs_per_s: first push to last ack.
 *   peers latency SYSTEM ADDR RATE SECONDS
 *       one producer pushes one job at a time on an absolute schedule of RATE jobs/s, the
 *       payload its send time (CLOCK_MONOTONIC); one consumer as in e2e records how long each
 *       took to reach it. Prints n, rate_per_s, p50_us, p99_us, max_us.
 *   peers rt URL N        N round trips of 16 bytes between an nng REQ and a REP socket (a
 *                         thread echoing) on URL: what nng costs without a broker.
 *   peers sockrt N        the same over a Unix socketpair between two threads: the floor.
 *                         Both print n, p50_us, p99_us, rt_per_s.
 *
 * SYSTEM and ADDR:
 *   redis PATH        LPUSH q p1..pN; a consumer moves a job to a list of jobs in work with
 *                     BLMOVE q work RIGHT LEFT 1 and acknowledges it with LREM work 1 PAYLOAD
 *                     (Redis's reliable-queue pattern: two commands per job).
 *   beanstalkd PATH   N `put` commands written at once, then N replies read; a consumer
 *                     `reserve-with-timeout 1` (a reserve that gives up after a second, so
 *                     that a consumer never waits past a failed run) and `delete ID`: two
 *                     commands per job.
 *   sluice URL        one `push` request of N payloads through common/client.h; a consumer
 *                     is a worker API handle (common/wapi.h) with prefetch 1: one `reserve` per
 *                     job, which carries the ack of the job before (wapi batches acks so).
 *
 * Every output is one line of key=value pairs (for bench/peers to read). Any failure prints
 * "peers: ..." to stderr and exits 1; a usage error exits 2; a run that stops making progress is
 * ended by benchlib's watchdog (exit 1). Payloads are 16 hex digits of a number no other job of
 * the run carries, so that LREM removes the job taken and no other. */
#include "benchlib.h"
#include "peers_sys.h"
#include "err.h"
#include "log.h"
#include "opt.h"
#include "wapi.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- Runs: push, e2e ---- */

struct run {
    const struct system *sys;
    const char *addr;
    uint32_t batch;
    uint64_t jobs;              /* e2e: jobs in all */
    uint64_t end_us;            /* push: no request starts after this (benchlib_mono_us) */
    atomic_uint_least64_t next; /* e2e: the number of the next job to push */
    atomic_uint_least64_t pushed; /* jobs the servers confirmed */
    atomic_uint_least64_t done; /* e2e: jobs acknowledged */
    atomic_int_least64_t done_ns; /* e2e: when the last was (peers_now_ns) */
    volatile sig_atomic_t stop; /* consumers: end the run (set once, by any thread) */
    atomic_bool failed;
};

struct worker {
    struct run *r;
    struct conn c;
    uint32_t index;
    char *payloads;             /* producers: BATCH payloads, back to back */
    pthread_t th;
    bool started;
};

static void
run_fail(struct run *r)
{
    atomic_store(&r->failed, true);
    r->stop = 1;
}

static void *
producer_main(void *arg)
{
    struct worker *p = arg;
    struct run *r = p->r;
    uint64_t seq = 0;

    while (!atomic_load(&r->failed)) {
        uint64_t first;
        uint32_t n = r->batch;
        if (r->jobs > 0) {
            first = atomic_fetch_add(&r->next, r->batch);
            if (first >= r->jobs) {
                break;
            }
            if (r->jobs - first < n) {
                n = (uint32_t)(r->jobs - first);
            }
        } else {
            if (benchlib_mono_us() >= r->end_us) {
                break;
            }
            first = (uint64_t)p->index << 40 | seq;
            seq += n;
        }
        for (uint32_t i = 0; i < n; i++) {
            peers_payload_put(p->payloads + (size_t)i * PAYLOAD_LEN, first + i);
        }
        if (r->sys->push(&p->c, p->payloads, n) != 0) {
            run_fail(r);
            break;
        }
        atomic_fetch_add(&r->pushed, n);
    }
    return NULL;
}

static void *
consumer_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->r;

    while (!r->stop) {
        int rv = r->sys->take(&w->c);
        if (rv == 1) {
            continue;
        }
        if (rv != 0 || r->sys->ack(&w->c) != 0) {
            if (!r->stop) {
                run_fail(r);    /* else it was woken at the end (system.wake) */
            }
            break;
        }
        if (atomic_fetch_add(&r->done, 1) + 1 == r->jobs) {
            /* The last job: the run ends once its ack has reached the server. */
            if (r->sys->settle != NULL) {
                r->sys->settle(&w->c);
            }
            atomic_store(&r->done_ns, peers_now_ns());
            r->stop = 1;
        }
    }
    return NULL;
}

static const struct system *
system_find(const char *name)
{
    for (size_t i = 0; i < peers_nsystems; i++) {
        if (strcmp(peers_systems[i].name, name) == 0) {
            return &peers_systems[i];
        }
    }
    fprintf(stderr, "peers: unknown system '%s' (redis, beanstalkd, sluice)\n", name);
    return NULL;
}

static int
workers_open(struct run *r, struct worker *ws, uint32_t n, bool producers)
{
    char name[64];

    for (uint32_t i = 0; i < n; i++) {
        struct worker *w = &ws[i];
        w->r = r;
        w->index = i;
        peers_conn_init(&w->c, r->sys->name);
        if (producers) {
            if ((w->payloads = malloc((size_t)r->batch * PAYLOAD_LEN)) == NULL) {
                fprintf(stderr, "peers: out of memory\n");
                return -1;
            }
            if (r->sys->open_producer(&w->c, r->addr, r->batch) != 0) {
                return -1;
            }
        } else {
            snprintf(name, sizeof(name), "peers-%ld-%" PRIu32, (long)getpid(), i);
            if (r->sys->open_consumer(&w->c, r->addr, name, &r->stop) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Once the run is over (r->stop), wakes the n consumers that wait in a take. */
static void
consumers_wake(struct run *r, struct worker *ws, uint32_t n)
{
    while (!r->stop) {
        benchlib_sleep_us(10000);
    }
    for (uint32_t i = 0; r->sys->wake != NULL && i < n; i++) {
        if (ws[i].started) {
            r->sys->wake(&ws[i].c);
        }
    }
}

static int
workers_start(struct worker *ws, uint32_t n, void *(*fn)(void *))
{
    for (uint32_t i = 0; i < n; i++) {
        int rv = pthread_create(&ws[i].th, NULL, fn, &ws[i]);
        if (rv != 0) {
            fprintf(stderr, "peers: cannot start a thread: %s\n", strerror(rv));
            return -1;
        }
        ws[i].started = true;
    }
    return 0;
}

static void
workers_join(struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ws[i].started) {
            pthread_join(ws[i].th, NULL);
            ws[i].started = false;
        }
    }
}

/* Closes every connection opened (of n workers, their threads joined). */
static void
workers_close(struct run *r, struct worker *ws, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ws[i].r != NULL) {
            r->sys->close(&ws[i].c);
        }
        free(ws[i].payloads);
        ws[i].payloads = NULL;
    }
}

static int
parse_u32(const char *what, const char *arg, uint64_t min, uint64_t max, uint32_t *out)
{
    uint64_t v;
    if (opt_u64(what, arg, min, max, &v) != 0) {
        return 2;
    }
    *out = (uint32_t)v;
    return 0;
}

static int
cmd_push(char **argv)
{
    static struct run r;
    static struct worker ps[THREADS_MAX];
    uint32_t nprod, secs;

    if ((r.sys = system_find(argv[0])) == NULL ||
        parse_u32("PRODUCERS", argv[2], 1, THREADS_MAX, &nprod) != 0 ||
        parse_u32("BATCH", argv[3], 1, BATCH_MAX, &r.batch) != 0 ||
        parse_u32("SECONDS", argv[4], 1, 3600, &secs) != 0) {
        return 2;
    }
    r.addr = argv[1];
    benchlib_watchdog("peers", (uint64_t)secs * 1000 + 60000);
    int rv = workers_open(&r, ps, nprod, true);
    uint64_t t0 = benchlib_mono_us();
    r.end_us = t0 + (uint64_t)secs * 1000000;
    if (rv == 0) {
        rv = workers_start(ps, nprod, producer_main);
    }
    if (rv != 0) {
        run_fail(&r);
    }
    workers_join(ps, nprod);
    double el = (double)(benchlib_mono_us() - t0) / 1e6;
    workers_close(&r, ps, nprod);
    if (atomic_load(&r.failed)) {
        return 1;
    }
    uint64_t jobs = atomic_load(&r.pushed);
    printf("system=%s jobs=%" PRIu64 " seconds=%.3f jobs_per_s=%.0f\n", r.sys->name, jobs, el,
           (double)jobs / el);
    return 0;
}

static int
cmd_e2e(char **argv)
{
    static struct run r;
    static struct worker ps[THREADS_MAX], cs[THREADS_MAX];
    uint32_t nprod, ncons;
    uint64_t jobs;

    if ((r.sys = system_find(argv[0])) == NULL ||
        parse_u32("PRODUCERS", argv[2], 1, THREADS_MAX, &nprod) != 0 ||
        parse_u32("CONSUMERS", argv[3], 1, THREADS_MAX, &ncons) != 0 ||
        parse_u32("BATCH", argv[4], 1, BATCH_MAX, &r.batch) != 0 ||
        opt_u64("JOBS", argv[5], 1, UINT64_C(1) << 40, &jobs) != 0) {
        return 2;
    }
    r.addr = argv[1];
    r.jobs = jobs;
    benchlib_watchdog("peers", 600000);
    int64_t t0 = 0;
    int rv = workers_open(&r, cs, ncons, false);
    if (rv == 0) {
        rv = workers_open(&r, ps, nprod, true);
    }
    if (rv == 0) {
        rv = workers_start(cs, ncons, consumer_main);
    }
    /* Every consumer waits before the first push, as a deployed system's workers do. */
    if (rv == 0 && r.sys->wait_consumers != NULL) {
        rv = r.sys->wait_consumers(&ps[0].c, ncons);
    }
    if (rv == 0) {
        t0 = peers_now_ns();
        rv = workers_start(ps, nprod, producer_main);
    }
    if (rv != 0) {
        run_fail(&r);
    }
    workers_join(ps, nprod);
    consumers_wake(&r, cs, ncons);
    workers_join(cs, ncons);
    workers_close(&r, ps, nprod);
    workers_close(&r, cs, ncons);
    if (atomic_load(&r.failed)) {
        return 1;
    }
    double el = (double)(atomic_load(&r.done_ns) - t0) / 1e9;
    printf("system=%s jobs=%" PRIu64 " seconds=%.3f jobs_per_s=%.0f\n", r.sys->name, jobs, el,
           (double)jobs / el);
    return 0;
}

/* ---- Latency ---- */

struct lat {
    struct run *r;
    struct conn c;
    int64_t *samples_ns;        /* one per job taken, in the order taken */
    uint64_t cap;
    atomic_uint_least64_t n;
    int64_t start_ns;           /* no job of this run was sent before (peers_now_ns) */
};

static void *
lat_consumer_main(void *arg)
{
    struct lat *l = arg;
    struct run *r = l->r;

    while (!r->stop) {
        int rv = r->sys->take(&l->c);
        int64_t t = peers_now_ns();
        uint64_t sent;
        if (rv == 1) {
            continue;
        }
        if (rv != 0) {
            if (!r->stop) {
                run_fail(r);    /* else it was woken at the end (system.wake) */
            }
            break;
        }
        /* A job left by another run would give a meaningless figure. */
        if (!peers_payload_get(l->c.payload, &sent) || (int64_t)sent < l->start_ns ||
            (int64_t)sent > t) {
            fprintf(stderr, "peers: %s: a job not pushed by this run (%.16s): is the queue "
                    "empty?\n", r->sys->name, l->c.payload);
            run_fail(r);
            break;
        }
        if (r->sys->ack(&l->c) != 0) {
            if (!r->stop) {
                run_fail(r);
            }
            break;
        }
        /* Counted once acknowledged: the run ends (and wakes this thread) when all are. */
        uint64_t i = atomic_load(&l->n);
        if (i < l->cap) {
            l->samples_ns[i] = t - (int64_t)sent;
            atomic_store(&l->n, i + 1);
        }
    }
    return NULL;
}

/* The nearest-rank q quantile of n sorted values (n > 0). */
static uint64_t
quantile(const uint64_t *v, uint64_t n, double q)
{
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999);
    return v[(rank == 0 ? 1 : rank > n ? n : rank) - 1];
}

static int
cmd_latency(char **argv)
{
    static struct run r;
    static struct lat l;
    struct worker p = { .r = &r };
    pthread_t th;
    uint32_t rate, secs;
    char payload[PAYLOAD_LEN];

    if ((r.sys = system_find(argv[0])) == NULL ||
        parse_u32("RATE", argv[2], 1, 100000, &rate) != 0 ||
        parse_u32("SECONDS", argv[3], 1, 3600, &secs) != 0) {
        return 2;
    }
    r.addr = argv[1];
    r.batch = 1;
    l.r = &r;
    l.cap = (uint64_t)rate * secs;
    l.start_ns = peers_now_ns();
    benchlib_watchdog("peers", (uint64_t)secs * 1000 + 60000);
    if ((l.samples_ns = malloc(l.cap * sizeof(int64_t))) == NULL) {
        fprintf(stderr, "peers: out of memory\n");
        return 1;
    }
    peers_conn_init(&l.c, r.sys->name);
    peers_conn_init(&p.c, r.sys->name);
    if (r.sys->open_consumer(&l.c, r.addr, "peers-latency", &r.stop) != 0) {
        goto fail_samples;
    }
    if (r.sys->open_producer(&p.c, r.addr, 1) != 0) {
        goto fail_consumer;
    }
    int rv = pthread_create(&th, NULL, lat_consumer_main, &l);
    if (rv != 0) {
        fprintf(stderr, "peers: cannot start a thread: %s\n", strerror(rv));
        goto fail_producer;
    }
    if (r.sys->wait_consumers != NULL && r.sys->wait_consumers(&p.c, 1) != 0) {
        run_fail(&r);
    }
    /* An absolute schedule: a late send is not made up by a later one waiting less. */
    int64_t period_ns = 1000000000LL / rate;
    int64_t start = peers_now_ns() + 10000000;
    uint64_t sent = 0;
    for (; sent < l.cap && !atomic_load(&r.failed); sent++) {
        int64_t at = start + (int64_t)sent * period_ns;
        struct timespec ts = { (time_t)(at / 1000000000), (long)(at % 1000000000) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        peers_payload_put(payload, (uint64_t)peers_now_ns());
        if (r.sys->push(&p.c, payload, 1) != 0) {
            run_fail(&r);
        }
    }
    double el = (double)(peers_now_ns() - start) / 1e9;
    uint64_t until = benchlib_mono_us() + LATENCY_DRAIN_US;
    while (!atomic_load(&r.failed) && atomic_load(&l.n) < sent && benchlib_mono_us() < until) {
        benchlib_sleep_us(1000);
    }
    r.stop = 1;
    if (r.sys->wake != NULL) {
        r.sys->wake(&l.c);
    }
    pthread_join(th, NULL);
    uint64_t n = atomic_load(&l.n);
    if (!atomic_load(&r.failed) && n < sent) {
        fprintf(stderr, "peers: %s: %" PRIu64 " of %" PRIu64 " jobs arrived within %d s\n",
                r.sys->name, n, sent, LATENCY_DRAIN_US / 1000000);
        run_fail(&r);
    }
    r.sys->close(&p.c);
    r.sys->close(&l.c);
    if (atomic_load(&r.failed)) {
        free(l.samples_ns);
        return 1;
    }
    uint64_t *v = (uint64_t *)l.samples_ns;
    for (uint64_t i = 0; i < n; i++) {
        v[i] = l.samples_ns[i] > 0 ? (uint64_t)l.samples_ns[i] : 0;
    }
    benchlib_sort_u64(v, n);
    printf("system=%s n=%" PRIu64 " rate_per_s=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
           r.sys->name, n, (double)n / el, (double)quantile(v, n, 0.5) / 1e3,
           (double)quantile(v, n, 0.99) / 1e3, (double)v[n - 1] / 1e3);
    free(l.samples_ns);
    return 0;

fail_producer:
    r.sys->close(&p.c);
fail_consumer:
    r.sys->close(&l.c);
fail_samples:
    free(l.samples_ns);
    return 1;
}

/* ---- Round trips without a broker: nng REQ/REP, a socketpair ---- */

static void *
rep_main(void *arg)
{
    nng_socket *s = arg;
    nng_msg *m;

    /* Ends when the socket is closed (NNG_ECLOSED). */
    while (nng_recvmsg(*s, &m, 0) == 0) {
        if (nng_sendmsg(*s, m, 0) != 0) {
            nng_msg_free(m);  /* not sent, so still ours */
            break;
        }
    }
    return NULL;
}

static void *
echo_main(void *arg)
{
    int fd = *(int *)arg;
    char b[PAYLOAD_LEN];

    for (;;) {
        size_t got = 0;
        while (got < sizeof(b)) {
            ssize_t n = recv(fd, b + got, sizeof(b) - got, 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return NULL; /* the other end closed: the run is over */
            }
            got += (size_t)n;
        }
        for (size_t off = 0; off < sizeof(b);) {
            ssize_t n = send(fd, b + off, sizeof(b) - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                return NULL;
            }
            off += (size_t)n;
        }
    }
}

/* One round trip of 16 bytes over fd. */
static int
sock_rt(int fd)
{
    char b[PAYLOAD_LEN] = "0123456789abcde";

    for (size_t off = 0; off < sizeof(b);) {
        ssize_t n = send(fd, b + off, sizeof(b) - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "peers: sockrt: write: %s\n", strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    for (size_t got = 0; got < sizeof(b);) {
        ssize_t n = recv(fd, b + got, sizeof(b) - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "peers: sockrt: read: %s\n", n == 0 ? "end of file" : strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

static int
nng_rt(nng_socket s)
{
    nng_msg *m;
    int rv;

    if ((rv = nng_msg_alloc(&m, PAYLOAD_LEN)) != 0) {
        fprintf(stderr, "peers: rt: nng_msg_alloc: %s\n", nng_strerror(rv));
        return -1;
    }
    memset(nng_msg_body(m), 'x', PAYLOAD_LEN);
    if ((rv = nng_sendmsg(s, m, 0)) != 0) {
        nng_msg_free(m);
        fprintf(stderr, "peers: rt: send: %s\n", nng_strerror(rv));
        return -1;
    }
    if ((rv = nng_recvmsg(s, &m, 0)) != 0) {
        fprintf(stderr, "peers: rt: receive: %s\n", nng_strerror(rv));
        return -1;
    }
    size_t len = nng_msg_len(m);
    nng_msg_free(m);
    if (len != PAYLOAD_LEN) {
        fprintf(stderr, "peers: rt: a reply of %zu bytes, not %d\n", len, PAYLOAD_LEN);
        return -1;
    }
    return 0;
}

/* Times n round trips (after WARMUP_RT unmeasured ones) through rt(arg); prints the line. */
static int
time_rts(const char *what, uint32_t n, int (*rt)(void *), void *arg)
{
    uint64_t *v = malloc(n * sizeof(*v));

    if (v == NULL) {
        fprintf(stderr, "peers: out of memory\n");
        return -1;
    }
    for (int i = 0; i < WARMUP_RT; i++) {
        if (rt(arg) != 0) {
            goto fail;
        }
    }
    int64_t t0 = peers_now_ns();
    for (uint32_t i = 0; i < n; i++) {
        int64_t t = peers_now_ns();
        if (rt(arg) != 0) {
            goto fail;
        }
        v[i] = (uint64_t)(peers_now_ns() - t);
    }
    double el = (double)(peers_now_ns() - t0) / 1e9;
    benchlib_sort_u64(v, n);
    printf("what=%s n=%" PRIu32 " p50_us=%.1f p99_us=%.1f rt_per_s=%.0f\n", what, n,
           (double)quantile(v, n, 0.5) / 1e3, (double)quantile(v, n, 0.99) / 1e3,
           (double)n / el);
    free(v);
    return 0;
fail:
    free(v);
    return -1;
}

static int
nng_rt_of(void *arg)
{
    return nng_rt(*(nng_socket *)arg);
}

static int
sock_rt_of(void *arg)
{
    return sock_rt(*(int *)arg);
}

static int
cmd_rt(char **argv)
{
    static nng_socket rep, req;
    pthread_t th;
    uint32_t n;
    int rv;

    if (parse_u32("N", argv[1], 1, 100000000, &n) != 0) {
        return 2;
    }
    benchlib_watchdog("peers", 120000 + n / 10);
    if ((rv = nng_rep0_open(&rep)) != 0) {
        fprintf(stderr, "peers: rt: nng_rep0_open: %s\n", nng_strerror(rv));
        return 1;
    }
    if ((rv = nng_listen(rep, argv[0], NULL, 0)) != 0) {
        fprintf(stderr, "peers: rt: listen on %s: %s\n", argv[0], nng_strerror(rv));
        goto fail_rep;
    }
    if ((rv = pthread_create(&th, NULL, rep_main, &rep)) != 0) {
        fprintf(stderr, "peers: cannot start a thread: %s\n", strerror(rv));
        goto fail_rep;
    }
    if ((rv = nng_req0_open(&req)) != 0) {
        fprintf(stderr, "peers: rt: nng_req0_open: %s\n", nng_strerror(rv));
        goto fail_thread;
    }
    if ((rv = nng_dial(req, argv[0], NULL, 0)) != 0) {
        fprintf(stderr, "peers: rt: dial %s: %s\n", argv[0], nng_strerror(rv));
        goto fail_req;
    }
    rv = time_rts("nng", n, nng_rt_of, &req);
    nng_close(req);
    nng_close(rep);
    pthread_join(th, NULL);
    return rv == 0 ? 0 : 1;

fail_req:
    nng_close(req);
fail_thread:
    nng_close(rep);
    pthread_join(th, NULL);
    return 1;
fail_rep:
    nng_close(rep);
    return 1;
}

static int
cmd_sockrt(char **argv)
{
    static int sv[2];
    pthread_t th;
    uint32_t n;
    int rv;

    if (parse_u32("N", argv[0], 1, 100000000, &n) != 0) {
        return 2;
    }
    benchlib_watchdog("peers", 120000 + n / 10);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        fprintf(stderr, "peers: sockrt: socketpair: %s\n", strerror(errno));
        return 1;
    }
    if ((rv = pthread_create(&th, NULL, echo_main, &sv[1])) != 0) {
        fprintf(stderr, "peers: cannot start a thread: %s\n", strerror(rv));
        close(sv[0]);
        close(sv[1]);
        return 1;
    }
    rv = time_rts("socketpair", n, sock_rt_of, &sv[0]);
    close(sv[0]);           /* the echo thread reads the end of file and returns */
    pthread_join(th, NULL);
    close(sv[1]);
    return rv == 0 ? 0 : 1;
}

static const struct cmd {
    const char *name;
    const char *args;
    int argc;
    int (*fn)(char **argv);
} cmds[] = {
    { "push", "SYSTEM ADDR PRODUCERS BATCH SECONDS", 5, cmd_push },
    { "e2e", "SYSTEM ADDR PRODUCERS CONSUMERS BATCH JOBS", 6, cmd_e2e },
    { "latency", "SYSTEM ADDR RATE SECONDS", 4, cmd_latency },
    { "rt", "URL N", 2, cmd_rt },
    { "sockrt", "N", 1, cmd_sockrt },
};

int
main(int argc, char **argv)
{
    size_t ncmds = sizeof(cmds) / sizeof(cmds[0]);

    log_prog = "peers";
    log_level = LOG_WARN; /* the worker API's info lines (connected, ...) are noise here */
    for (size_t i = 0; argc >= 2 && i < ncmds; i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) {
            if (argc - 2 != cmds[i].argc) {
                fprintf(stderr, "usage: peers %s %s\n", cmds[i].name, cmds[i].args);
                return 2;
            }
            return cmds[i].fn(argv + 2);
        }
    }
    fprintf(stderr, "usage:\n");
    for (size_t i = 0; i < ncmds; i++) {
        fprintf(stderr, "  peers %s %s\n", cmds[i].name, cmds[i].args);
    }
    fprintf(stderr, "SYSTEM: redis PATH, beanstalkd PATH (Unix sockets), sluice URL\n");
    return 2;
}
