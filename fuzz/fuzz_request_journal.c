/* Fuzz target: the broker's request path with a journal, and the replay of what it wrote.
 *
 * Like fuzz_request (the input is one or more request bodies; a fresh broker on a fake clock,
 * brought to fuzz_request_base's starting state, runs them on connections 1, 2, 3, 1, ...
 * with its timers after each), but the broker has a journal (--fsync never, small segments
 * so that they roll and compact) in a private directory of $TMPDIR, emptied for each input.
 * Replies to changes are held until the writer thread has written their records, as the
 * server's are; each request waits for its reply before the next.
 *
 * A value that is msgpack nil is not a request: it restarts the broker there, and the input
 * always ends with a restart. A restart answers the parked reserves (with no jobs: their
 * jobs stay reserved, as in a broker that is killed), closes the journal and opens it again
 * in a new broker, which replays it. Checked: the replay succeeds, and it gives back what
 * the broker held: as many jobs in all, the same queues with the same settings, pause, jobs
 * and dead jobs each, the same routes, and no job id handed out again. Reserved jobs come
 * back ready, so states other than dead are not compared one by one.
 *
 * Checked after every request as in fuzz_request: a reply map whose "ok" says whether
 * ops_handle succeeded (a held reply: any well-formed reply, since the journal may replace
 * it with an io error) and the broker's totals. */
#include "fuzz.h"
#include "fuzz_base.h"

#include "broker.h"
#include "flow.h"
#include "group.h"
#include "journal.h"
#include "log.h"
#include "mpr.h"
#include "ops.h"
#include "park.h"
#include "queue.h"
#include "wire.h"

#include <dirent.h>
#include <limits.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STEP_NS (FUZZ_BASE_STEP_MS * 1000000LL)
#define MAX_REQUESTS 64      /* values of one input run as requests; the rest is ignored */
#define MAX_RESTARTS 8       /* restarts asked for by one input, at most */
#define SEGMENT_BYTES 4096u  /* small: segments roll and compact within one input */
#define MAX_QUEUES 64        /* queues compared across a restart, at most */

static int64_t now_ns;
static char dir[PATH_MAX / 2];

static int64_t
fake_clock(void *arg)
{
    (void)arg;
    return now_ns;
}

/* A request slot: the waiter its reply may wait in, and whether that reply is owed. The
 * journal's writer thread answers held replies, so owed is read and written under mtx. */
struct slot {
    struct waiter wt; /* first: the send callback gets &slot->wt */
    bool owed;
};

static struct slot slots[MAX_REQUESTS + (MAX_RESTARTS + 2) * FUZZ_BASE_MAX + 1];
static size_t nslots;
static uint32_t owed; /* slots whose reply has not been sent */
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sent = PTHREAD_COND_INITIALIZER;

/* A held or parked reply is sent (from this thread or the journal's writer). */
static void
on_send(struct waiter *wt)
{
    struct slot *s = (struct slot *)wt;
    if (wt->rep != NULL) {
        fuzz_check_reply(nng_msg_body(wt->rep), nng_msg_len(wt->rep), FUZZ_ANY_REPLY);
        nng_msg_free(wt->rep);
        wt->rep = NULL;
    }
    pthread_mutex_lock(&mtx);
    FUZZ_CHECK(s->owed);
    s->owed = false;
    owed--;
    pthread_cond_broadcast(&sent);
    pthread_mutex_unlock(&mtx);
}

/* Waits until every reply owed is sent but those of reserves still parked: the writer has
 * answered every change made so far. A lost reply shows as libFuzzer's timeout. */
static void
settle(struct broker *b)
{
    for (;;) {
        pthread_mutex_lock(&b->lock);
        uint32_t parked = b->nwaiters;
        pthread_mutex_unlock(&b->lock);
        pthread_mutex_lock(&mtx);
        FUZZ_CHECK(owed >= parked);
        if (owed == parked) {
            pthread_mutex_unlock(&mtx);
            return;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&sent, &mtx, &ts);
        pthread_mutex_unlock(&mtx);
    }
}

/* One request on connection pipe; then the clock moves and the timers run. */
static void
request(struct broker *b, const void *p, size_t n, uint32_t pipe)
{
    FUZZ_CHECK(nslots < sizeof(slots) / sizeof(slots[0]));
    struct slot *s = &slots[nslots++];
    nng_msg *rep;
    struct waiter *out = NULL;

    memset(s, 0, sizeof(*s));
    s->wt.send = on_send;
    s->owed = true;
    pthread_mutex_lock(&mtx);
    owed++;
    pthread_mutex_unlock(&mtx);
    FUZZ_CHECK(nng_msg_alloc(&rep, 0) == 0);
    int rv = ops_handle(b, p, n, pipe, rep, &s->wt);
    if (rv == OPS_PARKED) {
        if (!s->wt.took_rep) {
            nng_msg_free(rep); /* a parked reserve: its reply is made when it is served */
        }
    } else {
        fuzz_check_reply(nng_msg_body(rep), nng_msg_len(rep), rv);
        nng_msg_free(rep);
        pthread_mutex_lock(&mtx);
        s->owed = false;
        owed--;
        pthread_mutex_unlock(&mtx);
    }
    settle(b);
    fuzz_check_broker(b);

    now_ns += STEP_NS;
    pthread_mutex_lock(&b->lock);
    flow_tick(b, now_ns);
    park_expire(b, now_ns, 0, &out);
    if (b->nwaiters > 0) {
        park_serve(b, &out);
    }
    journal_op_end(b);
    pthread_mutex_unlock(&b->lock);
    park_send_all(out);
    settle(b);
    fuzz_check_broker(b);
}

/* What a restart must keep. */
struct state {
    uint64_t jobs, next_id;
    uint32_t nqueues;
    struct qstate {
        char name[WIRE_NAME_MAX + 1];
        uint32_t priority, weight, max_inflight;
        bool paused;
        uint64_t jobs, dead;
    } q[MAX_QUEUES];
};

static int
qcmp(const void *a, const void *b)
{
    return strcmp(((const struct qstate *)a)->name, ((const struct qstate *)b)->name);
}

static void
take_state(struct broker *b, struct state *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&b->lock);
    st->jobs = b->jobs;
    st->next_id = b->next_id;
    st->nqueues = b->nqueues;
    for (uint32_t i = 0; i < b->nqueues && i < MAX_QUEUES; i++) {
        const struct queue *q = b->qorder[i];
        struct qstate *s = &st->q[i];
        memcpy(s->name, q->name, sizeof(s->name));
        s->priority = q->priority;
        s->weight = q->weight;
        s->max_inflight = q->max_inflight;
        s->paused = q->paused;
        s->jobs = queue_jobs(q);
        s->dead = q->lists[JOB_DEAD].n;
    }
    pthread_mutex_unlock(&b->lock);
    qsort(st->q, st->nqueues < MAX_QUEUES ? st->nqueues : MAX_QUEUES, sizeof(st->q[0]), qcmp);
}

/* Every routed group of a routes to the same queue in b. */
static void
check_routes(struct broker *a, struct broker *b)
{
    pthread_mutex_lock(&a->lock);
    pthread_mutex_lock(&b->lock);
    for (const struct group *g = a->groups_head; g != NULL; g = g->next) {
        if (g->route == NULL) {
            continue;
        }
        const struct group *h = broker_group_find(b, (struct sl_str){ g->name, g->name_len });
        FUZZ_CHECK(h != NULL && h->route != NULL);
        FUZZ_CHECK(strcmp(h->route->name, g->route->name) == 0);
    }
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_unlock(&a->lock);
}

static void
say(const char *what, const struct state *s)
{
    fprintf(stderr, "fuzz_request_journal: %s: %llu jobs, next id %llu, queues:", what,
            (unsigned long long)s->jobs, (unsigned long long)s->next_id);
    for (uint32_t i = 0; i < s->nqueues && i < MAX_QUEUES; i++) {
        fprintf(stderr, " %s (%llu jobs, %llu dead)", s->q[i].name,
                (unsigned long long)s->q[i].jobs, (unsigned long long)s->q[i].dead);
    }
    fprintf(stderr, "\n");
}

static void
check_same(const struct state *a, const struct state *b)
{
    if (getenv("SLUICE_FUZZ_LOG") != NULL) {
        say("before the restart", a);
        say("after the restart", b);
    }
    FUZZ_CHECK(b->jobs == a->jobs);
    FUZZ_CHECK(b->next_id >= a->next_id);
    FUZZ_CHECK(b->nqueues == a->nqueues);
    for (uint32_t i = 0; i < a->nqueues && i < MAX_QUEUES; i++) {
        const struct qstate *x = &a->q[i], *y = &b->q[i];
        FUZZ_CHECK(strcmp(x->name, y->name) == 0);
        FUZZ_CHECK(x->priority == y->priority && x->weight == y->weight &&
                   x->max_inflight == y->max_inflight && x->paused == y->paused);
        FUZZ_CHECK(x->jobs == y->jobs);
        FUZZ_CHECK(x->dead == y->dead);
    }
}

/* A new broker over the journal in dir (replaying it); aborts if it cannot start. */
static struct broker *
open_broker(void)
{
    struct broker_cfg cfg;
    struct broker *b;
    char why[512];

    broker_cfg_default(&cfg);
    /* Small limits, so that the fuzzer reaches them and memory stays bounded. */
    cfg.max_jobs = 2000;
    cfg.max_bytes = 1u << 20;
    cfg.max_payload = 4096;
    cfg.dedup_clients = 64;
    cfg.clock = (struct broker_clock){ fake_clock, fake_clock, NULL };
    FUZZ_CHECK(broker_new(&b, &cfg) == 0);
    struct journal_cfg jc = { .dir = dir, .fsync = JOURNAL_NEVER, .segment_bytes = SEGMENT_BYTES };
    int rv = journal_open(b, &jc, why, sizeof(why));
    if (rv != 0) {
        fprintf(stderr, "fuzz_request_journal: the journal does not replay: %s\n", why);
    }
    FUZZ_CHECK(rv == 0);
    fuzz_check_broker(b);
    return b;
}

/* Ends b as a killed broker would end (its parked reserves answered with nothing, their
 * workers' jobs still reserved), and starts the next one over its journal. */
static struct broker *
restart(struct broker *b)
{
    struct waiter *out = NULL;
    struct state before, after;

    pthread_mutex_lock(&b->lock);
    park_expire(b, INT64_MAX, 0, &out);
    pthread_mutex_unlock(&b->lock);
    park_send_all(out);
    settle(b);
    pthread_mutex_lock(&mtx);
    FUZZ_CHECK(owed == 0);
    pthread_mutex_unlock(&mtx);
    take_state(b, &before);
    journal_close(b);
    struct broker *nb = open_broker();
    take_state(nb, &after);
    check_same(&before, &after);
    check_routes(b, nb);
    broker_free(b);
    return nb;
}

static void
empty_dir(void)
{
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX + 256];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        FUZZ_CHECK(unlink(p) == 0);
    }
    closedir(d);
}

static void
remove_dir(void)
{
    empty_dir();
    rmdir(dir);
}

/* The data directory: one per process, in $TMPDIR (make fuzz points it at a memory file
 * system when there is one), removed at exit. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_level = fuzz_log_level();
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/sluice-fuzz-rjournal.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    atexit(remove_dir);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    log_level = fuzz_log_level();
    if (dir[0] == '\0') {
        LLVMFuzzerInitialize(NULL, NULL);
    }
    empty_dir();
    now_ns = FUZZ_BASE_START_NS;
    nslots = 0;
    owed = 0;
    struct broker *b = open_broker();

    const struct fuzz_req *base;
    size_t nbase = fuzz_request_base(&base);
    for (size_t i = 0; i < nbase; i++) {
        request(b, base[i].p, base[i].n, base[i].pipe);
    }

    struct mpr c;
    const uint8_t *start = data;
    size_t values = 0, restarts = 0;
    mpr_init(&c, data, size);
    while (values < MAX_REQUESTS && mpr_left(&c) > 0 && mpr_skip(&c)) {
        size_t n = (size_t)(c.p - start);
        values++;
        if (n == 1 && start[0] == 0xc0) {
            if (restarts++ < MAX_RESTARTS) {
                b = restart(b);
            }
        } else {
            request(b, start, n, 1 + (uint32_t)((values - 1) % 3));
        }
        start = c.p;
    }
    if (values == 0) {
        request(b, data, size, 1); /* not even one value: the broker must still answer */
    }
    b = restart(b);

    for (uint32_t pipe = 1; pipe <= 3; pipe++) {
        ops_pipe_closed(b, pipe);
        settle(b);
        fuzz_check_broker(b);
    }
    FUZZ_CHECK(b->nwaiters == 0);
    pthread_mutex_lock(&mtx);
    FUZZ_CHECK(owed == 0);
    pthread_mutex_unlock(&mtx);
    journal_close(b);
    broker_free(b);
    return 0;
}
