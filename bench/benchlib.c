#include "benchlib.h"

#include "err.h"
#include "rundir.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

uint64_t
benchlib_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
benchlib_sleep_us(uint64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int
benchlib_push(struct client *c, const char *group, const void *payload, size_t len, uint32_t n,
              uint64_t timeout_ms)
{
    struct sl_str *pl = malloc(n * sizeof(*pl));
    struct wire_msg req, rep;
    struct sl_str msg;
    int rv;

    if (pl == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        pl[i] = (struct sl_str){ payload, (uint32_t)len };
    }
    wire_msg_init(&req);
    wire_msg_init(&rep);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_strs(&req, WK_PAYLOADS, pl, n);
    if ((rv = client_call(c, &req, &rep, timeout_ms)) == 0) {
        rv = client_reply_err(&rep, &msg);
    }
    wire_msg_fini(&rep);
    free(pl);
    return rv;
}

bool
benchlib_workers_registered(struct client *c, uint64_t n, uint64_t within_ms)
{
    struct wire_msg req, rep;
    uint64_t until = benchlib_mono_us() + within_ms * 1000;
    bool up = false;

    wire_msg_init(&rep);
    while (!up) {
        wire_msg_init(&req);
        wire_set_cstr(&req, WK_OP, "stats");
        up = client_call(c, &req, &rep, 2000) == 0 && WIRE_HAS(&rep, WK_WORKERS) &&
             rep.v[WK_WORKERS].any->type == MSGPACK_OBJECT_ARRAY &&
             rep.v[WK_WORKERS].any->via.array.size >= n;
        if (!up) {
            if (benchlib_mono_us() >= until) {
                break;
            }
            benchlib_sleep_us(10000);
        }
    }
    wire_msg_fini(&rep);
    return up;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void
benchlib_sort_u64(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
}

double
benchlib_pct_ms(const uint64_t *v, uint64_t n, double q)
{
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999);
    if (rank == 0) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return (double)v[rank - 1] / 1e3;
}

int
benchlib_url(const char *prog, const char *given, char *buf, size_t cap, const char **url)
{
    char why[RUNDIR_MAX * 2 + 256];

    if (given != NULL) {
        *url = given;
        return 0;
    }
    if (rundir_default_url(buf, cap, "broker.ipc", why, sizeof(why)) != 0) {
        fprintf(stderr, "%s: %s\n", prog, why);
        return 2;
    }
    *url = buf;
    return 0;
}

/* The watchdog is the process's: one deadline, however many threads. */
static struct {
    pthread_mutex_t lock;
    bool started;
    uint64_t at_us;       /* CLOCK_MONOTONIC */
    uint64_t ms;          /* as last armed, for the message */
    const char *prog;
} watchdog = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *
watchdog_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&watchdog.lock);
        uint64_t at = watchdog.at_us, now = benchlib_mono_us();
        pthread_mutex_unlock(&watchdog.lock);
        if (now >= at) {
            break;
        }
        benchlib_sleep_us(at - now < 50000 ? at - now : 50000);
    }
    pthread_mutex_lock(&watchdog.lock);
    fprintf(stderr, "%s: no result within %llu ms: giving up\n", watchdog.prog,
            (unsigned long long)watchdog.ms);
    _exit(1);
}

int
benchlib_watchdog(const char *prog, uint64_t ms)
{
    pthread_t t;
    pthread_attr_t a;

    pthread_mutex_lock(&watchdog.lock);
    watchdog.at_us = benchlib_mono_us() + ms * 1000;
    watchdog.ms = ms;
    watchdog.prog = prog;
    bool start = !watchdog.started;
    watchdog.started = true;
    pthread_mutex_unlock(&watchdog.lock);
    if (!start) {
        return 0;
    }
    int rv = pthread_attr_init(&a);
    if (rv == 0) {
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        rv = pthread_create(&t, &a, watchdog_main, NULL);
        pthread_attr_destroy(&a);
    }
    if (rv != 0) {
        pthread_mutex_lock(&watchdog.lock);
        watchdog.started = false;
        pthread_mutex_unlock(&watchdog.lock);
        fprintf(stderr, "%s: cannot start the watchdog thread\n", prog);
        return -1;
    }
    return 0;
}
