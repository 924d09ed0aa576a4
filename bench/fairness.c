/* The fairness benchmark: bob pushes 50,000 jobs at once while alice
 * pushes one job every 50 ms for 10 s; 8 workers run a 1 ms handler. Prints alice's wait from
 * push to handler start, p50 and p99, measured from the first job of the flood on. Whether a
 * router runs (and which policy) is up to the caller (bench/run starts it).
 *
 *     build/rel/bench/fairness [--url URL] [--workers 8] [--flood 50000] [--every 50ms]
 *                              [--for 10s] [--handler-us 1000]
 *
 * Output, one line: alice_jobs=200 p50_ms=0.93 p99_ms=1.86 max_ms=2.11 bob_done=50000
 * bob_drain_s=6.61
 *
 * The workers are threads of this process using the worker API (common/wapi.h), prefetch 1 so
 * no job waits in a worker's hands; alice's payload is her push time (CLOCK_MONOTONIC, this
 * process), so her wait is read off without clock skew. */
#include "benchlib.h"
#include "client.h"
#include "err.h"
#include "log.h"
#include "opt.h"
#include "rundir.h"
#include "wapi.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAIR_WORKERS_MAX 256
#define FAIR_ALICE_MAX 100000

enum {
    OPT_WORKERS = OPT_COMMON_END,
    OPT_FLOOD,
    OPT_EVERY,
    OPT_FOR,
    OPT_HANDLER_US,
};

static const struct opt fair_opts[] = {
    { OPT_WORKERS, "workers", 'n', "N", NULL, "worker threads (default 8)" },
    { OPT_FLOOD, "flood", 0, "N", NULL, "bob's jobs, pushed at once (default 50000)" },
    { OPT_EVERY, "every", 0, "DURATION", NULL, "time between two of alice's pushes (default 50ms)" },
    { OPT_FOR, "for", 0, "DURATION", NULL, "how long alice pushes (default 10s)" },
    { OPT_HANDLER_US, "handler-us", 0, "US", NULL, "the handler's run time (default 1000)" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

struct bench {
    const char *url;
    uint64_t handler_us;
    volatile sig_atomic_t stop;       /* set by main when alice's last job ran */
    pthread_mutex_t lock;
    uint64_t alice_wait_us[FAIR_ALICE_MAX];
    uint64_t alice_done;              /* under lock */
    uint64_t bob_done;                /* under lock */
    uint64_t bob_last_us;             /* when bob's last job started, under lock */
    char url_buf[RUNDIR_MAX + 32];
};

struct worker_arg {
    struct bench *b;
    int n;
};

static void *
worker_main(void *p)
{
    struct worker_arg *wa = p;
    struct bench *b = wa->b;
    char name[64];
    snprintf(name, sizeof(name), "fairness-%d", wa->n);
    struct wapi_cfg cfg = { .url = b->url, .name = name, .prefetch = 1, .wait_ms = 100,
                            .stop = &b->stop };
    struct wapi *w;
    struct wapi_job job;

    if (wapi_open(&w, &cfg) != 0) {
        return NULL;
    }
    while (wapi_next(w, &job) == 0) {
        uint64_t start = benchlib_mono_us();
        pthread_mutex_lock(&b->lock);
        if (sl_str_eq(job.group, "alice") && job.len == sizeof(uint64_t)) {
            uint64_t pushed;
            memcpy(&pushed, job.payload, sizeof(pushed));
            if (b->alice_done < FAIR_ALICE_MAX) {
                b->alice_wait_us[b->alice_done] = start - pushed;
            }
            b->alice_done++;
        } else {
            b->bob_done++;
            b->bob_last_us = start;
        }
        pthread_mutex_unlock(&b->lock);
        benchlib_sleep_us(b->handler_us);
        wapi_ack(w, job.id);
    }
    wapi_close(w);
    return NULL;
}

static int
run(struct bench *b, int argc, char **argv)
{
    const struct opt *const tables[] = { opt_common, fair_opts, NULL };
    uint64_t nworkers = 8, flood = 50000, every_ms = 50, for_ms = 10000;
    struct worker_arg wa[FAIR_WORKERS_MAX];
    pthread_t th[FAIR_WORKERS_MAX];
    struct opt_vals v;
    struct client *c = NULL;
    bool done;
    int argi, rv;

    b->handler_us = 1000;
    if ((rv = opt_parse(argc, argv, tables, false, &v, &argi)) != 0 ||
        (rv = opt_common_apply(&v, "fairness [options]", tables, &done)) != 0) {
        return rv;
    }
    if (done) {
        return 0;
    }
    if ((v.v[OPT_WORKERS] && opt_u64("workers", v.v[OPT_WORKERS], 1, FAIR_WORKERS_MAX, &nworkers)) ||
        (v.v[OPT_FLOOD] && opt_u64("flood", v.v[OPT_FLOOD], 1, 1000000, &flood)) ||
        (v.v[OPT_EVERY] && opt_ms("every", v.v[OPT_EVERY], 1, 60000, &every_ms)) ||
        (v.v[OPT_FOR] && opt_ms("for", v.v[OPT_FOR], 1, 3600000, &for_ms)) ||
        (v.v[OPT_HANDLER_US] &&
         opt_u64("handler-us", v.v[OPT_HANDLER_US], 0, 10000000, &b->handler_us))) {
        return 2;
    }
    if (for_ms / every_ms >= FAIR_ALICE_MAX) {
        fprintf(stderr, "fairness: --for / --every exceeds %d jobs\n", FAIR_ALICE_MAX);
        return 2;
    }
    if (benchlib_url("fairness", v.v[OPT_URL], b->url_buf, sizeof(b->url_buf), &b->url) != 0) {
        return 2;
    }
    if (client_open(&c, b->url, 5000) != 0) {
        fprintf(stderr, "fairness: cannot reach the broker at %s\n", b->url);
        return 1;
    }
    for (uint64_t i = 0; i < nworkers; i++) {
        wa[i] = (struct worker_arg){ b, (int)i };
        pthread_create(&th[i], NULL, worker_main, &wa[i]);
    }
    if (!benchlib_workers_registered(c, nworkers, 5000)) {
        fprintf(stderr, "fairness: the workers did not register within 5 s\n");
        rv = SL_ETIMEDOUT;
        goto stop;
    }

    uint64_t t0 = benchlib_mono_us();
    uint64_t nalice = for_ms / every_ms;
    if ((rv = benchlib_push(c, "bob", "b", 1, (uint32_t)flood, 30000)) != 0) {
        fprintf(stderr, "fairness: bob's push failed: %s\n", sl_err_code(rv));
        goto stop;
    }
    for (uint64_t k = 0; k < nalice; k++) {
        uint64_t due = t0 + k * every_ms * 1000, now = benchlib_mono_us();
        if (due > now) {
            benchlib_sleep_us(due - now);
        }
        uint64_t pushed = benchlib_mono_us();
        if ((rv = benchlib_push(c, "alice", &pushed, sizeof(pushed), 1, 30000)) != 0) {
            fprintf(stderr, "fairness: alice's push failed: %s\n", sl_err_code(rv));
            goto stop;
        }
    }
    /* Until alice's last job and bob's flood have run, or 10 minutes. */
    for (uint64_t waited = 0; waited < 600000; waited += 10) {
        pthread_mutex_lock(&b->lock);
        bool all = b->alice_done >= nalice && b->bob_done >= flood;
        pthread_mutex_unlock(&b->lock);
        if (all) {
            break;
        }
        benchlib_sleep_us(10000);
    }
stop:
    b->stop = 1;
    for (uint64_t i = 0; i < nworkers; i++) {
        pthread_join(th[i], NULL);
    }
    client_free(c);
    if (rv != 0) {
        return 1;
    }
    pthread_mutex_lock(&b->lock);
    uint64_t alice_done = b->alice_done, bob_done = b->bob_done;
    pthread_mutex_unlock(&b->lock);
    uint64_t n = alice_done < FAIR_ALICE_MAX ? alice_done : FAIR_ALICE_MAX;
    /* The workers (other threads) counted them. */
    // cppcheck-suppress knownConditionTrueFalse
    if (n == 0) {
        fprintf(stderr, "fairness: none of alice's jobs ran\n");
        return 1;
    }
    benchlib_sort_u64(b->alice_wait_us, n);
    printf("alice_jobs=%" PRIu64 " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f bob_done=%" PRIu64
           " bob_drain_s=%.2f\n",
           n, benchlib_pct_ms(b->alice_wait_us, n, 0.50),
           benchlib_pct_ms(b->alice_wait_us, n, 0.99),
           (double)b->alice_wait_us[n - 1] / 1e3, bob_done,
           b->bob_last_us > t0 ? (double)(b->bob_last_us - t0) / 1e6 : 0.0);
    return alice_done >= nalice && bob_done >= flood ? 0 : 1;
}

int
main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof(*b)); /* alice's waits: too large for the stack */

    log_prog = "fairness";
    log_level = LOG_WARN;
    if (b == NULL) {
        fprintf(stderr, "fairness: out of memory\n");
        return 1;
    }
    pthread_mutex_init(&b->lock, NULL);
    int rv = run(b, argc, argv);
    pthread_mutex_destroy(&b->lock);
    free(b);
    /* No nng_fini(): nng 1.5.2 aborts in it while a closed socket is still being torn down
     * on its threads (see ctl/main.c). */
    return rv;
}
