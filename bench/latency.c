/* bench/latency: the time from a push to the moment a worker has the job in hand, at a steady
 * rate. A producer pushes one job every 1/RATE s, its payload the monotonic time just before
 * the push is sent; a consumer in a process of its own, as a worker is, takes jobs with the
 * worker API (prefetch 1, a parked long poll, as an idle worker waits) and records now minus
 * that time (CLOCK_MONOTONIC is one clock for every process).
 *
 *     latency URL RATE SECONDS        prints: p50_us p90_us p99_us max_us n
 *
 * With a fourth argument `ping` it measures the floor under that figure instead: the round
 * trip of a `ping` request to the broker at the same rate (the same two hops between
 * processes, client to broker and broker to client, with no job in them).
 *
 * With a fourth argument `delay=MS` each job is pushed with run_at_ms, a wall-clock time MS
 * ahead rounded up to the millisecond, and its payload is that time (CLOCK_REALTIME, ns): the
 * figures are then how late after its due time a delayed job reaches a waiting worker. The
 * due time is the producer's, exact, so the push's own travel does not count in them (with
 * delay_ms the broker would count from the moment the push arrived). */
#include "client.h"
#include "err.h"
#include "log.h"
#include "wapi.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t
clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t
now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

struct consumer {
    const char *url;
    int64_t *samples;
    size_t cap;
    atomic_size_t n;
    volatile sig_atomic_t stop;
    atomic_int ready;
    clockid_t clock;             /* the payloads' clock: CLOCK_REALTIME for delay=MS */
};

static void
on_tick(void *arg)
{
    atomic_store(&((struct consumer *)arg)->ready, 1);
}

static void
consume(struct consumer *c)
{
    struct wapi_cfg cfg = { .url = c->url, .name = "bench-latency", .prefetch = 1,
                            .wait_ms = 200, .stop = &c->stop, .tick = on_tick, .tick_arg = c };
    struct wapi *w;
    struct wapi_job job;

    if (wapi_open(&w, &cfg) != 0) {
        fprintf(stderr, "latency: cannot open the worker API\n");
        _exit(1);
    }
    while (wapi_next(w, &job) == 0) {
        int64_t t = clock_ns(c->clock);
        int64_t sent;
        if (job.len == sizeof(sent)) {
            memcpy(&sent, job.payload, sizeof(sent));
            size_t i = atomic_load(&c->n);
            if (i < c->cap) {
                c->samples[i] = t - sent;
                atomic_store(&c->n, i + 1);
            }
        }
        wapi_ack(w, job.id);
    }
    wapi_close(w);
}

static int
cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Shared with a consumer process: the samples and the flags live in an anonymous shared
 * mapping (lock-free atomics work across processes). */
static void *
shared_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("latency: mmap");
        exit(1);
    }
    return p;
}

int
main(int argc, char **argv)
{
    long delay_ms = 0;
    if (argc == 5 && strncmp(argv[4], "delay=", 6) == 0) {
        delay_ms = atol(argv[4] + 6);
        if (delay_ms < 1 || delay_ms > 3600000) {
            fprintf(stderr, "latency: delay=MS wants 1 to 3600000\n");
            return 2;
        }
    } else if (argc != 4 && !(argc == 5 && strcmp(argv[4], "ping") == 0)) {
        fprintf(stderr, "usage: latency URL RATE SECONDS [ping | delay=MS]\n");
        return 2;
    }
    bool ping = argc == 5 && delay_ms == 0;
    log_level = LOG_WARN;
    const char *url = argv[1];
    long rate = atol(argv[2]), secs = atol(argv[3]);
    if (rate < 1 || rate > 100000 || secs < 1 || secs > 3600) {
        fprintf(stderr, "latency: RATE 1-100000, SECONDS 1-3600\n");
        return 2;
    }
    size_t total = (size_t)(rate * secs);
    struct consumer *c = shared_alloc(sizeof(*c));
    *c = (struct consumer){ .url = url, .cap = total,
                            .clock = delay_ms > 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC };
    c->samples = shared_alloc(total * sizeof(*c->samples));
    pid_t child = -1;
    if (ping) {
        atomic_store(&c->ready, 1);
    } else {
        /* Before this process has any nng thread: the child is the worker process. */
        fflush(NULL);
        pid_t parent = getpid();
        if ((child = fork()) < 0) {
            perror("latency: fork");
            return 1;
        }
        if (child == 0) {
            /* Gone with the producer, however it ends. */
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
                _exit(1);
            }
            consume(c);
            _exit(0);
        }
    }
    /* Wait until the consumer has reserved once: its long poll is then parked. */
    while (!atomic_load(&c->ready)) {
        if (child > 0 && waitpid(child, NULL, WNOHANG) == child) {
            fprintf(stderr, "latency: the consumer process exited\n");
            return 1;
        }
        usleep(1000);
    }
    struct client *cl;
    if (client_open(&cl, url, 2000) != 0) {
        fprintf(stderr, "latency: cannot reach %s\n", url);
        return 3;
    }
    char client_name[64];
    snprintf(client_name, sizeof(client_name), "bench-latency-%d", (int)getpid());
    struct wire_msg req, rep;
    wire_msg_init(&rep);
    int64_t period = 1000000000LL / rate, next = now_ns();
    for (size_t i = 0; i < total; i++) {
        next += period;
        struct timespec ts = { (time_t)(next / 1000000000LL), (long)(next % 1000000000LL) };
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        int64_t t = now_ns();
        /* delay=MS: due on the wall clock, MS ahead, rounded up to the ms run_at_ms names */
        int64_t due = t;
        if (delay_ms > 0) {
            int64_t at_ms = (clock_ns(CLOCK_REALTIME) + 999999) / 1000000 + delay_ms;
            due = at_ms * 1000000;
        }
        struct sl_str pl = { (const char *)&due, sizeof(due) };
        wire_msg_init(&req);
        if (ping) {
            wire_set_cstr(&req, WK_OP, "ping");
            if (client_call(cl, &req, &rep, 5000) != 0) {
                fprintf(stderr, "latency: ping failed\n");
                return 1;
            }
            c->samples[i] = now_ns() - t;
            atomic_store(&c->n, i + 1);
            continue;
        }
        wire_set_cstr(&req, WK_OP, "push");
        wire_set_cstr(&req, WK_GROUP, "latency");
        wire_set_strs(&req, WK_PAYLOADS, &pl, 1);
        wire_set_cstr(&req, WK_CLIENT, client_name);
        wire_set_u64(&req, WK_SEQ, i + 1);
        if (delay_ms > 0) {
            wire_set_u64(&req, WK_RUN_AT_MS, (uint64_t)(due / 1000000));
        }
        struct sl_str msg;
        if (client_call(cl, &req, &rep, 5000) != 0 || client_reply_err(&rep, &msg) != 0) {
            fprintf(stderr, "latency: push failed\n");
            return 1;
        }
    }
    /* Let the last jobs arrive. */
    int64_t deadline = now_ns() + 2000000000LL + delay_ms * 1000000LL;
    while (atomic_load(&c->n) < total && now_ns() < deadline) {
        usleep(1000);
    }
    c->stop = 1;
    if (child > 0) {
        waitpid(child, NULL, 0);
    }
    wire_msg_fini(&rep);
    client_free(cl);
    size_t n = atomic_load(&c->n);
    if (n == 0) {
        fprintf(stderr, "latency: no job arrived\n");
        return 1;
    }
    qsort(c->samples, n, sizeof(*c->samples), cmp);
    printf("%lld %lld %lld %lld %zu\n", (long long)(c->samples[n / 2] / 1000),
           (long long)(c->samples[n * 9 / 10] / 1000), (long long)(c->samples[n * 99 / 100] / 1000),
           (long long)(c->samples[n - 1] / 1000), n);
    return 0;
}
