/* Pushes jobs spread over many groups, fast: the set-up of the benchmark of what a job costs
 * the broker when its queue holds many groups (bench/run, "groups"). Group g (spread-0 ..)
 * gets --jobs / --groups jobs (the first --jobs % --groups one more), pushed at once in pushes
 * of at most --batch; --conns connections push in parallel, each its own share of the groups.
 *
 *     build/rel/bench/spread [--url URL] [--jobs 1000000] [--groups 10] [--batch 10000]
 *                            [--conns 4] [--payload-bytes 16]
 *
 * Output, one line: pushed=1000000 groups=10 push_s=1.52 */
#include "benchlib.h"
#include "client.h"
#include "err.h"
#include "log.h"
#include "opt.h"
#include "rundir.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPREAD_CONNS_MAX 64
#define SPREAD_PAYLOAD_MAX 65536
#define SPREAD_PUSH_TIMEOUT_MS 30000

enum {
    OPT_JOBS = OPT_COMMON_END,
    OPT_GROUPS,
    OPT_BATCH,
    OPT_CONNS,
    OPT_PAYLOAD_BYTES,
};

static const struct opt spread_opts[] = {
    { OPT_JOBS, "jobs", 'j', "N", NULL, "jobs in all (default 1000000)" },
    { OPT_GROUPS, "groups", 'g', "N", NULL, "groups they are spread over (default 10)" },
    { OPT_BATCH, "batch", 0, "N", NULL, "most jobs in one push (default 10000)" },
    { OPT_CONNS, "conns", 0, "N", NULL, "connections pushing in parallel (default 4)" },
    { OPT_PAYLOAD_BYTES, "payload-bytes", 0, "N", NULL, "bytes of each payload (default 16)" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

struct spread {
    const char *url;
    uint64_t jobs, groups, batch, conns;
    char payload[SPREAD_PAYLOAD_MAX];
    uint64_t payload_len;
    atomic_int failed;
    atomic_uint_fast64_t pushed;
    char url_buf[RUNDIR_MAX + 32];
};

struct conn {
    struct spread *s;
    struct client *c;
    uint64_t first; /* groups first, first + conns, first + 2 * conns, ... */
};

/* Jobs of group g. */
static uint64_t
jobs_of(const struct spread *s, uint64_t g)
{
    return s->jobs / s->groups + (g < s->jobs % s->groups ? 1 : 0);
}

static void *
conn_main(void *arg)
{
    struct conn *cn = arg;
    struct spread *s = cn->s;
    char group[32];

    for (uint64_t g = cn->first; g < s->groups && !atomic_load(&s->failed); g += s->conns) {
        snprintf(group, sizeof(group), "spread-%" PRIu64, g);
        for (uint64_t left = jobs_of(s, g); left > 0;) {
            uint64_t k = left < s->batch ? left : s->batch;
            int rv = benchlib_push(cn->c, group, s->payload, s->payload_len, (uint32_t)k,
                                   SPREAD_PUSH_TIMEOUT_MS);
            if (rv != 0) {
                fprintf(stderr, "spread: a push of %" PRIu64 " jobs for %s failed: %s\n", k,
                        group, sl_err_code(rv));
                atomic_store(&s->failed, 1);
                return NULL;
            }
            atomic_fetch_add(&s->pushed, k);
            left -= k;
        }
    }
    return NULL;
}

static int
setup(struct spread *s, int argc, char **argv, bool *done)
{
    const struct opt *const tables[] = { opt_common, spread_opts, NULL };
    struct opt_vals v;
    int argi, rv;

    s->jobs = 1000000;
    s->groups = 10;
    s->batch = 10000;
    s->conns = 4;
    s->payload_len = 16;
    if ((rv = opt_parse(argc, argv, tables, false, &v, &argi)) != 0 ||
        (rv = opt_common_apply(&v, "spread [options]", tables, done)) != 0 || *done) {
        return rv;
    }
    if (argi < argc) {
        fprintf(stderr, "spread: unexpected argument '%s'\n", argv[argi]);
        return 2;
    }
    if ((v.v[OPT_JOBS] && opt_u64("jobs", v.v[OPT_JOBS], 1, 100000000, &s->jobs)) ||
        (v.v[OPT_GROUPS] && opt_u64("groups", v.v[OPT_GROUPS], 1, 10000000, &s->groups)) ||
        (v.v[OPT_BATCH] && opt_u64("batch", v.v[OPT_BATCH], 1, 1000000, &s->batch)) ||
        (v.v[OPT_CONNS] && opt_u64("conns", v.v[OPT_CONNS], 1, SPREAD_CONNS_MAX, &s->conns)) ||
        (v.v[OPT_PAYLOAD_BYTES] && opt_u64("payload-bytes", v.v[OPT_PAYLOAD_BYTES], 0,
                                           SPREAD_PAYLOAD_MAX, &s->payload_len))) {
        return 2;
    }
    if (s->groups > s->jobs) {
        fprintf(stderr, "spread: --groups is over --jobs (every group gets a job)\n");
        return 2;
    }
    for (uint64_t i = 0; i < s->payload_len; i++) {
        s->payload[i] = "0123456789abcdef"[i % 16];
    }
    return benchlib_url("spread", v.v[OPT_URL], s->url_buf, sizeof(s->url_buf), &s->url);
}

static int
spread_run(struct spread *s)
{
    struct conn cn[SPREAD_CONNS_MAX] = { 0 };
    pthread_t th[SPREAD_CONNS_MAX];
    uint64_t opened = 0, started = 0;
    int rv = 1;

    for (; opened < s->conns; opened++) {
        cn[opened] = (struct conn){ .s = s, .first = opened };
        if (client_open(&cn[opened].c, s->url, 5000) != 0) {
            fprintf(stderr, "spread: cannot reach the broker at %s\n", s->url);
            goto out;
        }
    }
    uint64_t t0 = benchlib_mono_us();
    for (; started < s->conns; started++) {
        if (pthread_create(&th[started], NULL, conn_main, &cn[started]) != 0) {
            fprintf(stderr, "spread: cannot start a thread\n");
            atomic_store(&s->failed, 1);
            break;
        }
    }
    for (uint64_t i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    if (!atomic_load(&s->failed)) {
        printf("pushed=%" PRIu64 " groups=%" PRIu64 " push_s=%.2f\n", atomic_load(&s->pushed),
               s->groups, (double)(benchlib_mono_us() - t0) / 1e6);
        rv = 0;
    }
out:
    for (uint64_t i = 0; i < opened; i++) {
        client_free(cn[i].c);
    }
    return rv;
}

int
main(int argc, char **argv)
{
    struct spread *s = calloc(1, sizeof(*s));
    bool done = false;

    log_prog = "spread";
    log_level = LOG_WARN;
    if (s == NULL) {
        fprintf(stderr, "spread: out of memory\n");
        return 1;
    }
    int rv = setup(s, argc, argv, &done);
    if (rv == 0 && !done) {
        /* A push waits at most 30 s; a broker that keeps taking that long ends the run. */
        benchlib_watchdog("spread", 600000);
        rv = spread_run(s);
    }
    free(s);
    /* No nng_fini(): see bench/fairness.c. */
    return rv;
}
