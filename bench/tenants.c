/* The multi-tenant benchmark: many light tenants pushing single jobs while a few heavy ones
 * flood, every tenant a group of the one queue `default` (unless a router moves it).
 *
 *     build/rel/bench/tenants [--url URL] [--for 30s] [--workers 8] [--handler-us 1000] ...
 *
 * - light: --light tenants (light-0 ..), one job per push at random times (a Poisson process
 *   of --light-rate jobs/s in all), each push for a light tenant drawn at random;
 * - burst: --bursters tenants (heavy-0 ..); every --wave, --wave-min to --wave-max of them,
 *   drawn at random, push a burst of --burst-min to --burst-max jobs at once (pushes of at most
 *   --push-max);
 * - trickle: one tenant (heavy-B, B = --bursters) keeping --trickle jobs outstanding (pushed,
 *   not yet done): just below a router's --high, so that a router never moves it;
 * - steady: one tenant (heavy-B+1) pushing --steady-rate jobs/s in pushes of --steady-batch,
 *   more than it is served.
 * --workers worker threads (worker API, prefetch 1, so no job waits in a worker's hands) run a
 * handler of --handler-us. A light job's wait is its handler's start less its push time (in
 * its payload, CLOCK_MONOTONIC), for every light job pushed in the --for interval; the jobs
 * done per second count those finished within it. After --for nothing is pushed, and the
 * workers go on until every light job measured has started or --drain has passed; a light job
 * that has not started by then counts as having waited until then (light_unserved says how
 * many: its wait is a lower bound). Output, one line:
 *
 *     light_jobs=5980 light_unserved=0 p50_ms=1.10 p99_ms=12.30 max_ms=40.20 over_100ms=0
 *     heavy_done_per_s=7850 burst_done_per_s=... trickle_done_per_s=... steady_done_per_s=...
 *     light_done_per_s=199 done_per_s=8040
 *
 * The same --seed gives the same tenants, bursts and push times (relative to the start), so
 * runs against differently configured brokers face the same load. Jobs left in the broker
 * at the end stay there. */
#include "benchlib.h"
#include "client.h"
#include "err.h"
#include "log.h"
#include "opt.h"
#include "rundir.h"
#include "wapi.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define TEN_WORKERS_MAX 256
#define TEN_BURSTERS_MAX 256
#define TEN_PUSH_TIMEOUT_MS 10000 /* one push; the watchdog bounds the whole run */
#define TEN_TAG_LEN 25            /* a job's payload: struct tag, packed */
#define TEN_GROUP_MAX 32

enum {
    OPT_FOR = OPT_COMMON_END,
    OPT_WORKERS,
    OPT_HANDLER_US,
    OPT_LIGHT,
    OPT_LIGHT_RATE,
    OPT_BURSTERS,
    OPT_WAVE,
    OPT_WAVE_MIN,
    OPT_WAVE_MAX,
    OPT_BURST_MIN,
    OPT_BURST_MAX,
    OPT_PUSH_MAX,
    OPT_TRICKLE,
    OPT_STEADY_RATE,
    OPT_STEADY_BATCH,
    OPT_DRAIN,
    OPT_SEED,
};

static const struct opt ten_opts[] = {
    { OPT_FOR, "for", 0, "DURATION", NULL, "how long the tenants push (default 30s)" },
    { OPT_WORKERS, "workers", 'n', "N", NULL, "worker threads (default 8)" },
    { OPT_HANDLER_US, "handler-us", 0, "US", NULL, "the handler's run time (default 1000)" },
    { OPT_LIGHT, "light", 0, "N", NULL, "light tenants (default 990)" },
    { OPT_LIGHT_RATE, "light-rate", 0, "N", NULL, "light jobs per second in all (default 200)" },
    { OPT_BURSTERS, "bursters", 0, "N", NULL, "heavy tenants pushing bursts (default 8)" },
    { OPT_WAVE, "wave", 0, "DURATION", NULL, "time between two waves of bursts (default 3s)" },
    { OPT_WAVE_MIN, "wave-min", 0, "N", NULL, "least bursters in a wave (default 3)" },
    { OPT_WAVE_MAX, "wave-max", 0, "N", NULL, "most bursters in a wave (default 5)" },
    { OPT_BURST_MIN, "burst-min", 0, "N", NULL, "least jobs in a burst (default 4000)" },
    { OPT_BURST_MAX, "burst-max", 0, "N", NULL, "most jobs in a burst (default 20000)" },
    { OPT_PUSH_MAX, "push-max", 0, "N", NULL, "most jobs in one push of a burst (default 10000)" },
    { OPT_TRICKLE, "trickle", 0, "N", NULL,
      "jobs the trickle tenant keeps outstanding, 0 = no such tenant (default 90)" },
    { OPT_STEADY_RATE, "steady-rate", 0, "N", NULL,
      "the steady tenant's jobs per second, 0 = no such tenant (default 5000)" },
    { OPT_STEADY_BATCH, "steady-batch", 0, "N", NULL, "jobs in one steady push (default 500)" },
    { OPT_DRAIN, "drain", 0, "DURATION", NULL,
      "after --for, how long to wait for the light jobs still waiting (default 5s)" },
    { OPT_SEED, "seed", 0, "N", NULL, "seed of the random choices (default 1)" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

enum cls { CLS_LIGHT, CLS_BURST, CLS_TRICKLE, CLS_STEADY, CLS_N };

struct cfg {
    uint64_t for_ms, workers, handler_us, light, light_rate, bursters, wave_ms, wave_min,
        wave_max, burst_min, burst_max, push_max, trickle, steady_rate, steady_batch, drain_ms,
        seed;
};

struct bench {
    struct cfg cfg;
    const char *url;
    uint64_t run;                      /* in every payload: jobs of another run are ignored */
    uint64_t t0_us, t_end_us;          /* the measured interval, CLOCK_MONOTONIC */
    volatile sig_atomic_t stop;        /* the workers' (wapi) */
    atomic_int failed;                 /* a pusher failed: the run is void */
    uint64_t light_cap;                /* room in light_push_us and light_wait_us */
    uint64_t *light_push_us;           /* [i]: light job i's push time; the light pusher's */
    _Atomic uint64_t *light_wait_us;   /* [i]: its wait, UINT64_MAX until it starts */
    atomic_uint_fast64_t light_pushed; /* light jobs pushed: indexes below it are valid */
    atomic_uint_fast64_t light_started;
    atomic_uint_fast64_t done_in[CLS_N]; /* finished within the measured interval */
    atomic_uint_fast64_t trickle_pushed, trickle_done;
    char url_buf[RUNDIR_MAX + 32];
};

/* What a payload carries. idx: a light job's index, 0 for the others. */
struct tag {
    uint64_t run, pushed_us, idx;
    uint8_t cls;
};

static void
tag_pack(uint8_t out[TEN_TAG_LEN], const struct tag *t)
{
    memcpy(out, &t->run, 8);
    memcpy(out + 8, &t->pushed_us, 8);
    memcpy(out + 16, &t->idx, 8);
    out[24] = t->cls;
}

static bool
tag_unpack(const void *p, uint32_t len, uint64_t run, struct tag *t)
{
    const uint8_t *b = p;

    if (len != TEN_TAG_LEN) {
        return false;
    }
    memcpy(&t->run, b, 8);
    memcpy(&t->pushed_us, b + 8, 8);
    memcpy(&t->idx, b + 16, 8);
    t->cls = b[24];
    return t->run == run && t->cls < CLS_N;
}

/* splitmix64: each pusher its own stream, from --seed. */
static uint64_t
rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static uint64_t
rnd_in(uint64_t *s, uint64_t lo, uint64_t hi)
{
    return lo + rnd(s) % (hi - lo + 1);
}

/* Records a job's start (light: its wait) and, after the handler, its end. */
static void
run_job(struct bench *b, const struct tag *t)
{
    uint64_t start = benchlib_mono_us();

    if (t->cls == CLS_LIGHT && t->idx < b->light_cap) {
        uint64_t none = UINT64_MAX;
        uint64_t wait = start > t->pushed_us ? start - t->pushed_us : 0;
        /* The first start counts: a job handed out again (a worker's connection dropped)
         * waited from its push to its first start. */
        if (atomic_compare_exchange_strong(&b->light_wait_us[t->idx], &none, wait)) {
            atomic_fetch_add(&b->light_started, 1);
        }
    }
    benchlib_sleep_us(b->cfg.handler_us);
    if (benchlib_mono_us() < b->t_end_us) {
        atomic_fetch_add(&b->done_in[t->cls], 1);
    }
    if (t->cls == CLS_TRICKLE) {
        atomic_fetch_add(&b->trickle_done, 1);
    }
}

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
    snprintf(name, sizeof(name), "tenants-%d", wa->n);
    struct wapi_cfg cfg = { .url = b->url, .name = name, .prefetch = 1, .wait_ms = 100,
                            .stop = &b->stop };
    struct wapi *w;
    struct wapi_job job;

    if (wapi_open(&w, &cfg) != 0) {
        return NULL;
    }
    while (wapi_next(w, &job) == 0) {
        struct tag t;
        if (tag_unpack(job.payload, job.len, b->run, &t)) {
            run_job(b, &t);
        }
        wapi_ack(w, job.id);
    }
    wapi_close(w);
    return NULL;
}

struct pusher {
    struct bench *b;
    struct client *c;
    uint64_t rng;
};

/* Sleeps until due (CLOCK_MONOTONIC us). False when the run is over before then (the end of
 * the interval, or a pusher failed): the pusher stops. */
static bool
wait_until(struct pusher *p, uint64_t due)
{
    struct bench *b = p->b;

    if (due >= b->t_end_us || atomic_load(&b->failed)) {
        return false;
    }
    uint64_t now = benchlib_mono_us();
    if (due > now) {
        benchlib_sleep_us(due - now);
    }
    return !atomic_load(&b->failed);
}

/* n jobs of one class for group, pushed now, in pushes of at most --push-max. False (the
 * run is void, said on stderr) when a push fails. */
static bool
push_jobs(struct pusher *p, const char *group, enum cls cls, uint64_t idx, uint64_t n)
{
    struct bench *b = p->b;
    uint8_t pl[TEN_TAG_LEN];

    while (n > 0) {
        uint64_t k = n < b->cfg.push_max ? n : b->cfg.push_max;
        struct tag t = { b->run, benchlib_mono_us(), idx, (uint8_t)cls };
        tag_pack(pl, &t);
        if (cls == CLS_LIGHT) {
            b->light_push_us[idx] = t.pushed_us;
        }
        int rv = benchlib_push(p->c, group, pl, sizeof(pl), (uint32_t)k, TEN_PUSH_TIMEOUT_MS);
        if (rv != 0) {
            fprintf(stderr, "tenants: a push of %" PRIu64 " jobs for %s failed: %s\n", k, group,
                    sl_err_code(rv));
            atomic_store(&b->failed, 1);
            return false;
        }
        n -= k;
    }
    return true;
}

/* Light jobs: a Poisson process of --light-rate, each for a light tenant drawn at random. */
static void *
light_main(void *arg)
{
    struct pusher *p = arg;
    struct bench *b = p->b;
    char group[TEN_GROUP_MAX];
    double due = (double)b->t0_us;

    for (uint64_t i = 0;; i++) {
        double u = (double)(rnd(&p->rng) >> 11) / 9007199254740992.0; /* [0, 1) */
        due += -log(1.0 - u) * 1e6 / (double)b->cfg.light_rate;
        if (!wait_until(p, (uint64_t)due)) {
            break;
        }
        if (i >= b->light_cap) {
            fprintf(stderr, "tenants: more light jobs than the %" PRIu64 " planned for\n",
                    b->light_cap);
            atomic_store(&b->failed, 1);
            break;
        }
        snprintf(group, sizeof(group), "light-%" PRIu64, rnd(&p->rng) % b->cfg.light);
        if (!push_jobs(p, group, CLS_LIGHT, i, 1)) {
            break;
        }
        atomic_store(&b->light_pushed, i + 1);
    }
    return NULL;
}

/* Waves of bursts: every --wave, a random few of the bursters push a burst each. */
static void *
burst_main(void *arg)
{
    struct pusher *p = arg;
    struct bench *b = p->b;
    const struct cfg *cfg = &b->cfg;
    uint64_t order[TEN_BURSTERS_MAX];
    char group[TEN_GROUP_MAX];

    for (uint64_t w = 0; wait_until(p, b->t0_us + w * cfg->wave_ms * 1000); w++) {
        uint64_t m = rnd_in(&p->rng, cfg->wave_min, cfg->wave_max);
        for (uint64_t i = 0; i < cfg->bursters; i++) {
            order[i] = i;
        }
        /* The first m of a partial Fisher-Yates shuffle: m distinct bursters. */
        for (uint64_t i = 0; i < m; i++) {
            uint64_t j = rnd_in(&p->rng, i, cfg->bursters - 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (uint64_t i = 0; i < m && benchlib_mono_us() < b->t_end_us; i++) {
            snprintf(group, sizeof(group), "heavy-%" PRIu64, order[i]);
            if (!push_jobs(p, group, CLS_BURST,
                           0, rnd_in(&p->rng, cfg->burst_min, cfg->burst_max))) {
                return NULL;
            }
        }
    }
    return NULL;
}

/* The trickle tenant: tops its outstanding jobs up to --trickle every 5 ms. */
static void *
trickle_main(void *arg)
{
    struct pusher *p = arg;
    struct bench *b = p->b;
    char group[TEN_GROUP_MAX];

    snprintf(group, sizeof(group), "heavy-%" PRIu64, b->cfg.bursters);
    for (uint64_t due = b->t0_us; wait_until(p, due); due += 5000) {
        uint64_t out = atomic_load(&b->trickle_pushed) - atomic_load(&b->trickle_done);
        /* Counted before the push: a job may be done before its push's reply is back. */
        if (out < b->cfg.trickle) {
            atomic_fetch_add(&b->trickle_pushed, b->cfg.trickle - out);
            if (!push_jobs(p, group, CLS_TRICKLE, 0, b->cfg.trickle - out)) {
                break;
            }
        }
    }
    return NULL;
}

/* The steady tenant: --steady-batch jobs at a time, --steady-rate jobs/s. */
static void *
steady_main(void *arg)
{
    struct pusher *p = arg;
    struct bench *b = p->b;
    char group[TEN_GROUP_MAX];
    double due = (double)b->t0_us;
    double every_us = (double)b->cfg.steady_batch * 1e6 / (double)b->cfg.steady_rate;

    snprintf(group, sizeof(group), "heavy-%" PRIu64, b->cfg.bursters + 1);
    for (; wait_until(p, (uint64_t)due); due += every_us) {
        if (!push_jobs(p, group, CLS_STEADY, 0, b->cfg.steady_batch)) {
            break;
        }
    }
    return NULL;
}

/* One option: 0, or 2 after opt_u64/opt_ms said what is wrong. */
struct num_opt {
    int id;
    const char *name;
    bool duration;
    uint64_t min, max;
    size_t off; /* into struct cfg */
};

static const struct num_opt num_opts[] = {
    { OPT_FOR, "for", true, 1000, 3600000, offsetof(struct cfg, for_ms) },
    { OPT_WORKERS, "workers", false, 1, TEN_WORKERS_MAX, offsetof(struct cfg, workers) },
    { OPT_HANDLER_US, "handler-us", false, 0, 10000000, offsetof(struct cfg, handler_us) },
    { OPT_LIGHT, "light", false, 1, 1000000, offsetof(struct cfg, light) },
    { OPT_LIGHT_RATE, "light-rate", false, 1, 100000, offsetof(struct cfg, light_rate) },
    { OPT_BURSTERS, "bursters", false, 0, TEN_BURSTERS_MAX, offsetof(struct cfg, bursters) },
    { OPT_WAVE, "wave", true, 10, 3600000, offsetof(struct cfg, wave_ms) },
    { OPT_WAVE_MIN, "wave-min", false, 0, TEN_BURSTERS_MAX, offsetof(struct cfg, wave_min) },
    { OPT_WAVE_MAX, "wave-max", false, 0, TEN_BURSTERS_MAX, offsetof(struct cfg, wave_max) },
    { OPT_BURST_MIN, "burst-min", false, 1, 1000000, offsetof(struct cfg, burst_min) },
    { OPT_BURST_MAX, "burst-max", false, 1, 1000000, offsetof(struct cfg, burst_max) },
    { OPT_PUSH_MAX, "push-max", false, 1, 1000000, offsetof(struct cfg, push_max) },
    { OPT_TRICKLE, "trickle", false, 0, 1000000, offsetof(struct cfg, trickle) },
    { OPT_STEADY_RATE, "steady-rate", false, 0, 1000000, offsetof(struct cfg, steady_rate) },
    { OPT_STEADY_BATCH, "steady-batch", false, 1, 1000000, offsetof(struct cfg, steady_batch) },
    { OPT_DRAIN, "drain", true, 0, 3600000, offsetof(struct cfg, drain_ms) },
    { OPT_SEED, "seed", false, 0, UINT64_MAX, offsetof(struct cfg, seed) },
};

/* The options into cfg (defaults first). Returns 0, or 2 (usage; said on stderr). */
static int
parse_cfg(const struct opt_vals *v, struct cfg *cfg)
{
    *cfg = (struct cfg){ .for_ms = 30000, .workers = 8, .handler_us = 1000, .light = 990,
                         .light_rate = 200, .bursters = 8, .wave_ms = 3000, .wave_min = 3,
                         .wave_max = 5, .burst_min = 4000, .burst_max = 20000,
                         .push_max = 10000, .trickle = 90, .steady_rate = 5000,
                         .steady_batch = 500, .drain_ms = 5000, .seed = 1 };
    for (size_t i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++) {
        const struct num_opt *o = &num_opts[i];
        uint64_t *out = (uint64_t *)(void *)((char *)cfg + o->off);
        const char *arg = v->v[o->id];
        if (arg != NULL && (o->duration ? opt_ms(o->name, arg, o->min, o->max, out)
                                        : opt_u64(o->name, arg, o->min, o->max, out)) != 0) {
            return 2;
        }
    }
    const char *bad = NULL;
    if (cfg->wave_min > cfg->wave_max) {
        bad = "--wave-min is over --wave-max";
    } else if (cfg->wave_max > cfg->bursters) {
        bad = "--wave-max is over --bursters (a wave's bursters are distinct)";
    } else if (cfg->burst_min > cfg->burst_max) {
        bad = "--burst-min is over --burst-max";
    }
    if (bad != NULL) {
        fprintf(stderr, "tenants: %s\n", bad);
        return 2;
    }
    return 0;
}

/* A thread per pusher that has work: light always; the others per their options. */
struct pushers {
    struct pusher p[CLS_N];
    pthread_t th[CLS_N];
    bool up[CLS_N];
};

static void *(*const pusher_main[CLS_N])(void *) = {
    [CLS_LIGHT] = light_main,
    [CLS_BURST] = burst_main,
    [CLS_TRICKLE] = trickle_main,
    [CLS_STEADY] = steady_main,
};

/* Connects every pusher (each its own connection, so a burst's push does not hold up a light
 * one's), then starts them at t0. Returns 0 or 1 (said on stderr); on failure nothing runs. */
static int
pushers_start(struct bench *b, struct pushers *ps)
{
    const struct cfg *cfg = &b->cfg;
    const bool wanted[CLS_N] = { true, cfg->bursters > 0 && cfg->wave_max > 0, cfg->trickle > 0,
                                 cfg->steady_rate > 0 };

    for (int k = 0; k < CLS_N; k++) {
        ps->p[k] = (struct pusher){ .b = b, .rng = cfg->seed * 0x100000001b3ULL + (uint64_t)k };
        if (wanted[k] && client_open(&ps->p[k].c, b->url, 5000) != 0) {
            fprintf(stderr, "tenants: cannot reach the broker at %s\n", b->url);
            for (int i = 0; i < k; i++) {
                client_free(ps->p[i].c);
            }
            return 1;
        }
    }
    b->t0_us = benchlib_mono_us();
    b->t_end_us = b->t0_us + cfg->for_ms * 1000;
    for (int k = 0; k < CLS_N; k++) {
        ps->up[k] = ps->p[k].c != NULL &&
                    pthread_create(&ps->th[k], NULL, pusher_main[k], &ps->p[k]) == 0;
        if (ps->p[k].c != NULL && !ps->up[k]) {
            fprintf(stderr, "tenants: cannot start a pusher thread\n");
            atomic_store(&b->failed, 1);
        }
    }
    return 0;
}

static void
pushers_join(struct pushers *ps)
{
    for (int k = 0; k < CLS_N; k++) {
        if (ps->up[k]) {
            pthread_join(ps->th[k], NULL);
        }
        client_free(ps->p[k].c);
    }
}

/* Pushing for --for, then the drain: until every light job pushed has started, or --drain. */
static void
push_and_drain(struct bench *b)
{
    struct pushers ps = { 0 };

    if (pushers_start(b, &ps) != 0) {
        atomic_store(&b->failed, 1);
        return;
    }
    pushers_join(&ps);
    uint64_t until = b->t_end_us + b->cfg.drain_ms * 1000;
    while (!atomic_load(&b->failed) && benchlib_mono_us() < until &&
           atomic_load(&b->light_started) < atomic_load(&b->light_pushed)) {
        benchlib_sleep_us(5000);
    }
}

/* The line of results. The light jobs not started count as having waited until now. */
static int
report(struct bench *b)
{
    uint64_t n = atomic_load(&b->light_pushed), unserved = 0, over = 0;
    uint64_t now = benchlib_mono_us();
    uint64_t *w = malloc((n > 0 ? n : 1) * sizeof(*w));
    double secs = (double)b->cfg.for_ms / 1e3;
    uint64_t done[CLS_N];

    if (w == NULL) {
        fprintf(stderr, "tenants: out of memory\n");
        return 1;
    }
    if (n == 0) {
        fprintf(stderr, "tenants: no light job was pushed\n");
        free(w);
        return 1;
    }
    for (uint64_t i = 0; i < n; i++) {
        w[i] = atomic_load(&b->light_wait_us[i]);
        if (w[i] == UINT64_MAX) {
            w[i] = now - b->light_push_us[i];
            unserved++;
        }
        over += w[i] > 100000;
    }
    benchlib_sort_u64(w, n);
    for (int k = 0; k < CLS_N; k++) {
        done[k] = atomic_load(&b->done_in[k]);
    }
    uint64_t heavy = done[CLS_BURST] + done[CLS_TRICKLE] + done[CLS_STEADY];
    printf("light_jobs=%" PRIu64 " light_unserved=%" PRIu64
           " p50_ms=%.2f p99_ms=%.2f max_ms=%.2f over_100ms=%" PRIu64
           " heavy_done_per_s=%.0f burst_done_per_s=%.0f trickle_done_per_s=%.0f"
           " steady_done_per_s=%.0f light_done_per_s=%.0f done_per_s=%.0f\n",
           n, unserved, benchlib_pct_ms(w, n, 0.50), benchlib_pct_ms(w, n, 0.99),
           (double)w[n - 1] / 1e3, over, (double)heavy / secs, (double)done[CLS_BURST] / secs,
           (double)done[CLS_TRICKLE] / secs, (double)done[CLS_STEADY] / secs,
           (double)done[CLS_LIGHT] / secs, (double)(heavy + done[CLS_LIGHT]) / secs);
    free(w);
    return 0;
}

/* Workers up, the tenants' load for --for, the drain, the workers stopped. */
static int
bench_run(struct bench *b)
{
    struct worker_arg wa[TEN_WORKERS_MAX];
    pthread_t th[TEN_WORKERS_MAX];
    uint64_t started = 0;
    struct client *c = NULL;
    int rv = 1;

    if (client_open(&c, b->url, 5000) != 0) {
        fprintf(stderr, "tenants: cannot reach the broker at %s\n", b->url);
        return 1;
    }
    for (; started < b->cfg.workers; started++) {
        wa[started] = (struct worker_arg){ b, (int)started };
        if (pthread_create(&th[started], NULL, worker_main, &wa[started]) != 0) {
            fprintf(stderr, "tenants: cannot start a worker thread\n");
            goto stop;
        }
    }
    if (!benchlib_workers_registered(c, b->cfg.workers, 5000)) {
        fprintf(stderr, "tenants: the workers did not register within 5 s\n");
        goto stop;
    }
    push_and_drain(b);
    rv = atomic_load(&b->failed) ? 1 : 0;
stop:
    b->stop = 1;
    for (uint64_t i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    client_free(c);
    return rv;
}

static int
setup(struct bench *b, int argc, char **argv, bool *done)
{
    const struct opt *const tables[] = { opt_common, ten_opts, NULL };
    struct opt_vals v;
    int argi, rv;

    if ((rv = opt_parse(argc, argv, tables, false, &v, &argi)) != 0 ||
        (rv = opt_common_apply(&v, "tenants [options]", tables, done)) != 0 || *done) {
        return rv;
    }
    if (argi < argc) {
        fprintf(stderr, "tenants: unexpected argument '%s'\n", argv[argi]);
        return 2;
    }
    if ((rv = parse_cfg(&v, &b->cfg)) != 0) {
        return rv;
    }
    if ((rv = benchlib_url("tenants", v.v[OPT_URL], b->url_buf, sizeof(b->url_buf), &b->url))) {
        return rv;
    }
    /* Poisson arrivals: over 2x the mean plus 1,000 does not happen. */
    b->light_cap = b->cfg.light_rate * b->cfg.for_ms / 1000 * 2 + 1000;
    b->light_push_us = calloc(b->light_cap, sizeof(*b->light_push_us));
    b->light_wait_us = calloc(b->light_cap, sizeof(*b->light_wait_us));
    if (b->light_push_us == NULL || b->light_wait_us == NULL) {
        fprintf(stderr, "tenants: out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < b->light_cap; i++) {
        atomic_init(&b->light_wait_us[i], UINT64_MAX);
    }
    if (getrandom(&b->run, sizeof(b->run), 0) != (ssize_t)sizeof(b->run)) {
        b->run = benchlib_mono_us() ^ ((uint64_t)getpid() << 32);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof(*b));
    bool done = false;

    log_prog = "tenants";
    log_level = LOG_WARN;
    if (b == NULL) {
        fprintf(stderr, "tenants: out of memory\n");
        return 1;
    }
    int rv = setup(b, argc, argv, &done);
    if (rv == 0 && !done) {
        /* The run, the drain, and a minute for the workers' stop; a broker that stops
         * answering ends the run there rather than hanging its caller. */
        benchlib_watchdog("tenants", b->cfg.for_ms + b->cfg.drain_ms + 60000);
        rv = bench_run(b);
        if (rv == 0) {
            rv = report(b);
        }
    }
    free(b->light_push_us);
    free(b->light_wait_us);
    free(b);
    /* No nng_fini(): nng 1.5.2 aborts in it while a closed socket is still being torn down
     * on its threads (see ctl/main.c). */
    return rv;
}
