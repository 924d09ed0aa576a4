/* broker/journal: replay against real segment files in a private directory per test. Each
 * test drives a journaled broker (through the dispatcher, which waits for the records to be
 * durable, or through flow_* under the lock followed by journal_op_end), closes it, opens a
 * new broker on the same directory and checks the rebuilt state: the whole of it (every
 * queue, job and route, compared as text with what the first broker held) and the values
 * the test is about. Also: segments rolled, deleted once empty and compacted; a corrupt
 * record, a torn tail, and the directory lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "change.h"
#include "err.h"
#include "flow.h"
#include "grate.h"
#include "jfile.h"
#include "journal.h"
#include "log.h"
#include "ops.h"
#include "support.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A plausible wall clock, whole milliseconds: the journal keeps times in ms. */
#define T0 (1700000000000LL * MS)
#define SEG_SMALL (64u << 10)
#define SEG_BIG (64u << 20)

struct fix {
    char dir[256];
    struct broker_cfg cfg;
    struct journal_cfg jc;
    struct broker *b;
};

/* --- fixture ------------------------------------------------------------------------------ */

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "journal") != 0) {
        free(f);
        return -1;
    }
    broker_cfg_default(&f->cfg);
    f->cfg.retry.base_ms = 0; /* failed jobs are ready again at once */
    log_level = LOG_WARN; /* a test of damage silences what it causes */
    f->jc = (struct journal_cfg){ .dir = f->dir, .fsync = JOURNAL_ALWAYS, .segment_bytes = SEG_BIG };
    fake_now = T0;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;

    if (f->b != NULL) {
        journal_close(f->b);
        broker_free(f->b);
    }
    int rv = tmpdir_remove(f->dir);
    free(f);
    return rv;
}

/* A new broker on the fake clock (left where it is) with the journal of f->dir open. */
static void
start(struct fix *f)
{
    f->b = journal_broker(&f->cfg, &f->jc, fake_now);
    assert_non_null(f->b->jr);
}

static void
stop(struct fix *f)
{
    journal_close(f->b);
    assert_null(f->b->jr);
    broker_free(f->b);
    f->b = NULL;
}

static void
restart(struct fix *f)
{
    stop(f);
    start(f);
}

/* --- the whole state as text -------------------------------------------------------------- */

static const char *const state_names[] = { "none", "ready", "reserved", "delayed", "dead" };

static void
put_payload(FILE *o, const struct job *j)
{
    const unsigned char *p = (const unsigned char *)job_payload(j);
    for (uint32_t i = 0; i < j->len; i++) {
        if (p[i] >= 0x21 && p[i] < 0x7f && p[i] != '\\') {
            fputc(p[i], o);
        } else {
            fprintf(o, "\\x%02x", p[i]);
        }
    }
}

static int
by_name(const void *a, const void *b)
{
    return strcmp((*(const struct group *const *)a)->name, (*(const struct group *const *)b)->name);
}

/* Everything replay must rebuild: ids, totals, queues (settings, paused, every list in
 * order, each job in full), groups holding jobs or a route (by name). Counters of done and
 * failed jobs are left out: they restart from zero by design. Malloc'd; free it. */
static char *
dump(struct broker *b)
{
    char *s = NULL;
    size_t n = 0;
    FILE *o = open_memstream(&s, &n);
    if (o == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&b->lock);
    fprintf(o, "next_id=%llu jobs=%llu bytes=%llu\n", (unsigned long long)b->next_id,
            (unsigned long long)b->jobs, (unsigned long long)b->bytes);
    for (uint32_t i = 0; i < b->nqueues; i++) {
        const struct queue *q = b->qorder[i];
        fprintf(o, "queue %s priority=%u weight=%u max_inflight=%u paused=%d routes=%u order=%s "
                "groups_ready=%u retry=%u/%u/%u\n", q->name, q->priority, q->weight,
                q->max_inflight, q->paused, q->routes, queue_order_names[q->order], q->nactive,
                q->retry.base_ms, q->retry.max_ms, q->retry.jitter);
        for (int st = JOB_READY; st < JOB_STATES; st++) {
            fprintf(o, "  %s n=%llu\n", state_names[st], (unsigned long long)q->lists[st].n);
            for (const struct job *j = list_first(b, q, st); j != NULL; j = list_next(b, j)) {
                fprintf(o, "    #%llu group=%s ttr_ms=%u attempts=%u/%u crashes=%u enq_ns=%lld",
                        (unsigned long long)j->id, j->group->name, j->ttr_ms, j->attempts,
                        j->max_attempts, j->crashes, (long long)j->enq_ns);
                if (st == JOB_DELAYED) {
                    fprintf(o, " due_ns=%lld", (long long)j->due_ns);
                }
                fprintf(o, " payload=");
                put_payload(o, j);
                fputc('\n', o);
            }
        }
    }
    size_t ng = 0;
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        ng++;
    }
    const struct group **gs = calloc(ng + 1, sizeof(*gs));
    ng = 0;
    for (const struct group *g = b->groups_head; g != NULL && gs != NULL; g = g->next) {
        if (group_jobs(g) > 0 || g->route != NULL || g->weight != GROUP_WEIGHT_ONE ||
            g->rate != NULL) {
            gs[ng++] = g;
        }
    }
    if (gs != NULL) {
        qsort(gs, ng, sizeof(*gs), by_name);
        for (size_t i = 0; i < ng; i++) {
            const struct group *g = gs[i];
            fprintf(o, "group %s route=%s weight=%u limit=%llu/%u ready=%llu reserved=%llu "
                    "delayed=%llu dead=%llu\n", g->name, g->route != NULL ? g->route->name : "-",
                    g->weight,
                    g->rate != NULL ? (unsigned long long)g->rate->bucket.rate_milli : 0ULL,
                    g->rate != NULL ? g->rate->bucket.burst : 0u,
                    (unsigned long long)g->jobs[JOB_READY],
                    (unsigned long long)g->jobs[JOB_RESERVED],
                    (unsigned long long)g->jobs[JOB_DELAYED],
                    (unsigned long long)g->jobs[JOB_DEAD]);
        }
    }
    pthread_mutex_unlock(&b->lock);
    free(gs);
    fclose(o);
    return s;
}

/* Restarts f's broker and asserts that the new one holds exactly what the old one held (no
 * job may be reserved at the close: those come back ready). */
static void
restart_same(struct fix *f)
{
    char *before = dump(f->b);
    assert_non_null(before);
    restart(f);
    char *after = dump(f->b);
    assert_non_null(after);
    bool same = strcmp(before, after) == 0;
    if (!same) {
        print_error("--- before close\n%s--- after replay\n%s--- end\n", before, after);
    }
    free(before);
    free(after);
    assert_true(same);
}

/* --- requests through the dispatcher ------------------------------------------------------ */

/* Sends req; returns its code and, when out is given, the u64 under key k of the reply. */
static int
call(struct broker *b, const struct wire_msg *req, enum wire_key k, uint64_t *out)
{
    struct wire_msg rep;
    nng_msg *keep;
    int rv = request(b, req, &rep, &keep);
    if (rv == 0 && out != NULL) {
        assert_true(WIRE_HAS(&rep, k));
        *out = rep.v[k].u;
    }
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

struct push_opt {
    const char *queue;        /* NULL: the route */
    uint64_t ttr_ms;          /* 0: not sent */
    uint64_t max_attempts;    /* 0: not sent */
    const char *client;       /* NULL: not keyed */
    uint64_t seq;
    uint64_t delay_ms;        /* 0: not sent */
    uint64_t run_at_ms;       /* 0: not sent */
    const char *unique;       /* NULL: not sent */
    uint64_t unique_ttl_ms;   /* 0: not sent */
    const char *unique_hold;  /* NULL: not sent */
};

struct pushed {
    uint64_t first_id, n;
    bool dup;
    bool duplicate;                 /* its unique key is held by first_id */
    char queue[WIRE_NAME_MAX + 1];  /* "" on a dup */
};

static int
push_o(struct broker *b, const char *group, const struct push_opt *o, const struct sl_str *pl,
       uint32_t n, struct pushed *out)
{
    struct wire_msg req, rep;
    nng_msg *keep;

    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_strs(&req, WK_PAYLOADS, pl, n);
    if (o != NULL && o->queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, o->queue);
    }
    if (o != NULL && o->ttr_ms != 0) {
        wire_set_u64(&req, WK_TTR_MS, o->ttr_ms);
    }
    if (o != NULL && o->max_attempts != 0) {
        wire_set_u64(&req, WK_MAX_ATTEMPTS, o->max_attempts);
    }
    if (o != NULL && o->client != NULL) {
        wire_set_cstr(&req, WK_CLIENT, o->client);
        wire_set_u64(&req, WK_SEQ, o->seq);
    }
    if (o != NULL && o->delay_ms != 0) {
        wire_set_u64(&req, WK_DELAY_MS, o->delay_ms);
    }
    if (o != NULL && o->run_at_ms != 0) {
        wire_set_u64(&req, WK_RUN_AT_MS, o->run_at_ms);
    }
    if (o != NULL && o->unique != NULL) {
        wire_set_cstr(&req, WK_UNIQUE, o->unique);
    }
    if (o != NULL && o->unique_ttl_ms != 0) {
        wire_set_u64(&req, WK_UNIQUE_TTL_MS, o->unique_ttl_ms);
    }
    if (o != NULL && o->unique_hold != NULL) {
        wire_set_cstr(&req, WK_UNIQUE_HOLD, o->unique_hold);
    }
    int rv = request(b, &req, &rep, &keep);
    if (rv == 0 && out != NULL) {
        *out = (struct pushed){ 0 };
        out->n = rep.v[WK_N].u;
        out->dup = rep.v[WK_DUP].b;
        out->duplicate = WIRE_HAS(&rep, WK_DUPLICATE) && rep.v[WK_DUPLICATE].b;
        if (WIRE_HAS(&rep, WK_FIRST_ID)) {
            out->first_id = rep.v[WK_FIRST_ID].u;
        }
        if (WIRE_HAS(&rep, WK_QUEUE)) {
            snprintf(out->queue, sizeof(out->queue), "%.*s", (int)rep.v[WK_QUEUE].s.n,
                     rep.v[WK_QUEUE].s.p);
        }
    }
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

/* Pushes one payload z; returns its id. */
static uint64_t
push1(struct broker *b, const char *group, const struct push_opt *o, const char *z)
{
    struct sl_str pl[1] = { S(z) };
    struct pushed p;
    assert_int_equal(push_o(b, group, o, pl, 1, &p), 0);
    assert_false(p.dup);
    assert_int_equal(p.n, 1);
    return p.first_id;
}

static void
queue_create(struct broker *b, const char *name, int64_t prio, int64_t weight, int64_t inflight)
{
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.create");
    wire_set_cstr(&req, WK_NAME, name);
    if (prio >= 0) {
        wire_set_u64(&req, WK_PRIORITY, (uint64_t)prio);
    }
    if (weight >= 0) {
        wire_set_u64(&req, WK_WEIGHT, (uint64_t)weight);
    }
    if (inflight >= 0) {
        wire_set_u64(&req, WK_MAX_INFLIGHT, (uint64_t)inflight);
    }
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
}

/* An op naming a queue (queue.pause, queue.resume). */
static int
queue_op(struct broker *b, const char *op, const char *name)
{
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, op);
    wire_set_cstr(&req, WK_NAME, name);
    return call(b, &req, WK_OK, NULL);
}

static int
queue_destroy(struct broker *b, const char *name, bool force, uint64_t *moved,
              uint64_t *routes_reset)
{
    struct wire_msg req, rep;
    nng_msg *keep;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.destroy");
    wire_set_cstr(&req, WK_NAME, name);
    wire_set_bool(&req, WK_FORCE, force);
    int rv = request(b, &req, &rep, &keep);
    if (rv == 0) {
        *moved = rep.v[WK_MOVED].u;
        *routes_reset = rep.v[WK_ROUTES_RESET].u;
    }
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

/* route.set (queue given) or route.unset; returns the jobs moved. */
static uint64_t
route(struct broker *b, const char *group, const char *queue)
{
    struct wire_msg req;
    uint64_t moved = UINT64_MAX;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, queue != NULL ? "route.set" : "route.unset");
    wire_set_cstr(&req, WK_GROUP, group);
    if (queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, queue);
    }
    assert_int_equal(call(b, &req, WK_MOVED, &moved), 0);
    return moved;
}

/* ack, nack, release, dead.retry, dead.purge of ids; returns the reply's count. */
static uint64_t
by_ids(struct broker *b, const char *op, const uint64_t *ids, uint32_t n, uint64_t delay_ms)
{
    struct wire_msg req;
    uint64_t done = UINT64_MAX;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, op);
    wire_set_u64s(&req, WK_IDS, ids, n);
    if (delay_ms != 0) {
        wire_set_u64(&req, WK_DELAY_MS, delay_ms);
    }
    assert_int_equal(call(b, &req, strcmp(op, "dead.purge") == 0 ? WK_PURGED : WK_N, &done), 0);
    return done;
}

static uint64_t
by_id(struct broker *b, const char *op, uint64_t id, uint64_t delay_ms)
{
    return by_ids(b, op, &id, 1, delay_ms);
}

static uint64_t
purge(struct broker *b, const char *queue, const char *group)
{
    struct wire_msg req;
    uint64_t n = UINT64_MAX;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "purge");
    if (queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, queue);
    }
    if (group != NULL) {
        wire_set_cstr(&req, WK_GROUP, group);
    }
    assert_int_equal(call(b, &req, WK_PURGED, &n), 0);
    return n;
}

/* --- the flow, under the lock ------------------------------------------------------------- */

/* Worker `worker` on connection pipe reserves up to max jobs (from the queue named from, or
 * any); their ids go to ids. Asserts only once the lock is released. */
static uint32_t
reserve(struct broker *b, const char *worker, uint32_t pipe, uint32_t max, const char *from,
        uint64_t *ids)
{
    struct job *out[128];
    struct sl_str fs[1];
    struct wire_list fl = { 1, NULL, fs, NULL };
    uint32_t n = 0;
    int rv = SL_ENOMEM;

    if (from != NULL) {
        fs[0] = S(from);
    }
    assert_true(max <= 128);
    pthread_mutex_lock(&b->lock);
    struct worker *w = flow_worker(b, S(worker), pipe);
    if (w != NULL) {
        rv = flow_reserve(b, w, max, from != NULL ? &fl : NULL, out, &n);
    }
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = out[i]->id;
    }
    journal_op_end(b);
    pthread_mutex_unlock(&b->lock);
    assert_int_equal(rv, 0);
    return n;
}

static uint64_t
reserve1(struct broker *b, const char *worker, uint32_t pipe)
{
    uint64_t id = 0;
    assert_int_equal(reserve(b, worker, pipe, 1, NULL, &id), 1);
    return id;
}

/* The worker reports job id as the one it runs (`current`). */
static void
set_current(struct broker *b, const char *worker, uint64_t id)
{
    pthread_mutex_lock(&b->lock);
    struct worker *w = hmap_get(&b->workers, worker, strlen(worker));
    assert_non_null(w);
    w->current = id;
    pthread_mutex_unlock(&b->lock);
}

/* A timer round at the fake clock's time. */
static void
tick(struct broker *b)
{
    pthread_mutex_lock(&b->lock);
    flow_tick(b, broker_mono_ns(b));
    journal_op_end(b);
    pthread_mutex_unlock(&b->lock);
}

/* --- reading the state -------------------------------------------------------------------- */

static struct group *
G(struct broker *b, const char *name)
{
    return broker_group_find(b, (struct sl_str){ name, (uint32_t)strlen(name) });
}

static struct queue *
Q(struct broker *b, const char *name)
{
    return broker_queue_find(b, S(name));
}

static struct job *
find(struct broker *b, uint64_t id)
{
    for (uint32_t i = 0; i < b->nqueues; i++) {
        for (int st = JOB_READY; st < JOB_STATES; st++) {
            for (struct job *j = list_first(b, b->qorder[i], st); j != NULL; j = list_next(b, j)) {
                if (j->id == id) {
                    return j;
                }
            }
        }
    }
    return NULL;
}

/* Asserts that list st of queue q holds exactly ids, in order. */
static void
assert_list(struct broker *b, const char *queue, enum job_state st, const uint64_t *ids, size_t n)
{
    struct queue *q = Q(b, queue);
    size_t i = 0;
    assert_non_null(q);
    /* Ready jobs in the order they arrived: the order one list would hold them in. */
    struct job **by = calloc(queue_n(q, st) + 1, sizeof(*by));
    size_t m = 0;
    assert_non_null(by);
    for (struct job *j = list_first(b, q, st); j != NULL; j = list_next(b, j)) {
        by[m++] = j;
    }
    if (st == JOB_READY) {
        qsort(by, m, sizeof(*by), by_arrival);
    }
    for (size_t k = 0; k < m; k++, i++) {
        const struct job *j = by[k];
        assert_true(i < n);
        assert_int_equal(j->id, ids[i]);
        assert_int_equal(j->state, st);
        assert_ptr_equal(j->queue, q);
    }
    free(by);
    assert_int_equal(i, n);
    assert_int_equal(queue_n(q, st), n);
}

static void
assert_job(struct broker *b, uint64_t id, const char *queue, const char *group,
           enum job_state st, const char *payload, uint32_t ttr_ms, uint16_t attempts,
           uint16_t max_attempts, uint8_t crashes)
{
    struct job *j = find(b, id);
    if (j == NULL) {
        print_error("job %llu is missing\n", (unsigned long long)id);
    }
    assert_non_null(j);
    assert_string_equal(j->queue->name, queue);
    assert_string_equal(j->group->name, group);
    assert_int_equal(j->state, st);
    assert_int_equal(j->len, strlen(payload));
    assert_memory_equal(job_payload(j), payload, j->len);
    assert_int_equal(j->ttr_ms, ttr_ms);
    assert_int_equal(j->attempts, attempts);
    assert_int_equal(j->max_attempts, max_attempts);
    assert_int_equal(j->crashes, crashes);
}

struct ids {
    uint64_t v[64];
    size_t n;
};

static void
collect(void *arg, const struct job *j)
{
    struct ids *l = arg;
    if (l->n < 64) {
        l->v[l->n++] = j->id;
    }
}

/* The dead jobs, in queue order. */
static struct ids
dead_ids(struct broker *b)
{
    struct ids l = { { 0 }, 0 };
    uint64_t total = 0;
    pthread_mutex_lock(&b->lock);
    int rv = flow_dead_list(b, NULL, NULL, 64, collect, &l, &total);
    pthread_mutex_unlock(&b->lock);
    assert_int_equal(rv, 0);
    assert_int_equal(total, l.n);
    return l;
}

/* The segments in dir: how many, and the first and last. */
static size_t
segments(const char *dir, uint64_t *first, uint64_t *last)
{
    uint64_t *seqs = NULL;
    size_t n = 0;
    assert_int_equal(jf_list(dir, &seqs, &n), 0);
    if (n > 0) {
        *first = seqs[0];
        *last = seqs[n - 1];
    }
    free(seqs);
    return n;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Waits (5 s at most) until segment seq is gone from dir: the writer deletes it once the
 * records that emptied it are durable. */
static bool
wait_segment_gone(const char *dir, uint64_t seq)
{
    for (int i = 0; i < 500; i++) {
        if (!has_segment(dir, seq)) {
            return true;
        }
        sleep_ms(10);
    }
    return false;
}

/* Pushes rounds x per jobs of size bytes to queue "bulk" (created if missing) and acks them
 * all: traffic that fills segments and leaves nothing behind. */
static void
churn(struct broker *b, uint32_t rounds, uint32_t per, uint32_t size)
{
    static char body[1024];
    struct sl_str pl[100];
    uint64_t ids[100];
    struct push_opt o = { .queue = "bulk" };

    assert_true(per <= 100 && size <= sizeof(body));
    memset(body, 'x', sizeof(body));
    for (uint32_t i = 0; i < per; i++) {
        pl[i] = (struct sl_str){ body, size };
    }
    if (Q(b, "bulk") == NULL) {
        queue_create(b, "bulk", -1, -1, -1);
    }
    for (uint32_t r = 0; r < rounds; r++) {
        struct pushed p;
        assert_int_equal(push_o(b, "bulk", &o, pl, per, &p), 0);
        assert_int_equal(reserve(b, "churner", 99, per, "bulk", ids), per);
        assert_int_equal(by_ids(b, "ack", ids, per, 0), per);
    }
}

/* The offsets of the records of segment path (frames), at most max. */
static size_t
record_offsets(const char *path, size_t *offs, uint8_t *types, size_t max)
{
    struct jf_reader r;
    const uint8_t *p;
    uint32_t n;
    size_t k = 0;
    char why[256];
    assert_int_equal(jf_open(&r, path, UINT64_MAX, why, sizeof(why)), 0);
    size_t off = r.off;
    while (jf_next(&r, &p, &n) == JF_RECORD && k < max) {
        offs[k] = off;
        types[k] = p[0];
        k++;
        off = r.off;
    }
    jf_close(&r);
    return k;
}

static off_t
file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* --- pushes ------------------------------------------------------------------------------- */

static void
test_pushes_replay_with_ids_payloads_and_order(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    struct sl_str bob[3] = { S("b0"), S("b1"), { "b\0\xff", 3 } };
    struct sl_str amy[2] = { S("a0"), S("") };
    struct pushed p;

    queue_create(b, "fast", 5, -1, -1);
    assert_int_equal(push_o(b, "bob", NULL, bob, 3, &p), 0);
    assert_int_equal(p.first_id, 1);
    struct push_opt o = { .queue = "fast", .ttr_ms = 5000, .max_attempts = 7 };
    assert_int_equal(push_o(b, "amy", &o, amy, 2, &p), 0);
    assert_int_equal(p.first_id, 4);
    assert_string_equal(p.queue, "fast");
    struct push_opt ttr = { .ttr_ms = 1234 };
    assert_int_equal(push1(b, "bob", &ttr, "b3"), 6);
    fake_now += 250 * MS;
    assert_int_equal(push1(b, "cat", NULL, "c0"), 7);
    assert_int_equal(push1(b, "cat", NULL, "c1"), 8);

    restart_same(f);
    b = f->b;
    assert_int_equal(b->next_id, 9);
    assert_int_equal(b->jobs, 8);
    assert_int_equal(b->bytes, 2 + 2 + 3 + 2 + 0 + 2 + 2 + 2);
    const uint64_t dflt[] = { 1, 2, 3, 6, 7, 8 }, fast[] = { 4, 5 };
    assert_list(b, "default", JOB_READY, dflt, 6);
    assert_list(b, "fast", JOB_READY, fast, 2);
    assert_job(b, 1, "default", "bob", JOB_READY, "b0", 60000, 0, 3, 0);
    assert_job(b, 2, "default", "bob", JOB_READY, "b1", 60000, 0, 3, 0);
    struct job *j3 = find(b, 3);
    assert_non_null(j3);
    assert_int_equal(j3->len, 3);
    assert_memory_equal(job_payload(j3), "b\0\xff", 3);
    assert_job(b, 4, "fast", "amy", JOB_READY, "a0", 5000, 0, 7, 0);
    assert_job(b, 5, "fast", "amy", JOB_READY, "", 5000, 0, 7, 0);
    assert_job(b, 6, "default", "bob", JOB_READY, "b3", 1234, 0, 3, 0);
    assert_job(b, 7, "default", "cat", JOB_READY, "c0", 60000, 0, 3, 0);
    assert_int_equal(find(b, 1)->enq_ns, T0);
    assert_int_equal(find(b, 8)->enq_ns, T0 + 250 * MS);
    assert_int_equal(Q(b, "fast")->priority, 5);
    /* Counters restart from zero; the ids go on after the last one. */
    assert_int_equal(Q(b, "default")->pushed, 0);
    assert_int_equal(push1(b, "dan", NULL, "d0"), 9);

    /* And once more, over two segments of history. */
    restart_same(f);
    assert_int_equal(f->b->next_id, 10);
    assert_int_equal(f->b->jobs, 9);
}

/* --- the flow ----------------------------------------------------------------------------- */

static void
test_ack_and_nack_replay(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    struct push_opt once = { .max_attempts = 1 };
    uint64_t ids[4];

    assert_int_equal(push1(b, "g", NULL, "a1"), 1);
    assert_int_equal(push1(b, "g", NULL, "a2"), 2);
    assert_int_equal(push1(b, "g", NULL, "a3"), 3);
    assert_int_equal(push1(b, "g", &once, "a4"), 4);
    assert_int_equal(reserve(b, "w1", 7, 4, NULL, ids), 4);
    assert_int_equal(by_id(b, "ack", 1, 0), 1);
    assert_int_equal(by_id(b, "nack", 2, 5000), 1);  /* delayed */
    assert_int_equal(by_id(b, "nack", 3, 0), 1);     /* ready again, at the tail */
    assert_int_equal(by_id(b, "nack", 4, 0), 1);     /* out of attempts: dead */
    assert_int_equal(push1(b, "g", NULL, "a5"), 5);

    restart_same(f);
    b = f->b;
    assert_int_equal(b->jobs, 4);
    assert_null(find(b, 1));
    assert_job(b, 2, "default", "g", JOB_DELAYED, "a2", 60000, 1, 3, 0);
    assert_int_equal(find(b, 2)->due_ns, T0 + 5000 * MS);
    assert_job(b, 3, "default", "g", JOB_READY, "a3", 60000, 1, 3, 0);
    assert_job(b, 4, "default", "g", JOB_DEAD, "a4", 60000, 1, 1, 0);
    const uint64_t ready[] = { 3, 5 };
    assert_list(b, "default", JOB_READY, ready, 2);
    struct ids dead = dead_ids(b);
    assert_int_equal(dead.n, 1);
    assert_int_equal(dead.v[0], 4);

    /* The delay runs on after replay: job 2 is ready at its due time, not before. */
    fake_now = T0 + 4999 * MS;
    tick(b);
    assert_int_equal(find(b, 2)->state, JOB_DELAYED);
    fake_now = T0 + 5000 * MS;
    tick(b);
    const uint64_t ready2[] = { 3, 5, 2 };
    assert_list(b, "default", JOB_READY, ready2, 3);
    assert_int_equal(reserve1(b, "w2", 8), 3);
    assert_int_equal(find(b, 3)->attempts, 2);
    /* The dead job is found by id after replay. */
    assert_int_equal(by_id(b, "dead.retry", 4, 0), 1);
    assert_job(b, 4, "default", "g", JOB_READY, "a4", 60000, 0, 1, 0);
}

/* A unique key answers a second push with its holder: while its job is held (active), or
 * until its TTL (ttl) whatever the job does; both after a restart, across compaction's
 * snapshot; a key whose job was acked or whose TTL ended is free again. */
static void
test_unique_keys_hold_and_replay(void **state)
{
    struct fix *f = *state;
    f->jc.segment_bytes = SEG_SMALL;
    f->jc.fsync = JOURNAL_NEVER;
    start(f);
    struct broker *b = f->b;
    struct push_opt ua = { .unique = "order-1" };
    struct push_opt ut = { .unique = "mail-7", .unique_ttl_ms = 60000, .unique_hold = "ttl" };
    struct push_opt ux = { .unique = "x", .unique_ttl_ms = 1000 };
    struct sl_str pl[2] = { S("a"), S("b") };
    struct pushed p;

    assert_int_equal(push1(b, "g", &ua, "a1"), 1);
    assert_int_equal(push_o(b, "g", &ua, pl, 1, &p), 0);
    assert_true(p.duplicate);
    assert_int_equal(p.first_id, 1);
    assert_int_equal(p.n, 0);
    assert_int_equal(b->jobs, 1);
    assert_int_equal(push_o(b, "g", &ua, pl, 2, &p), SL_EBADREQ); /* one job only */
    assert_int_equal(push1(b, "g", &ut, "t1"), 2);
    assert_int_equal(push1(b, "g", &ux, "x1"), 3);
    assert_int_equal(reserve1(b, "w", 7), 1);
    assert_int_equal(reserve1(b, "w", 7), 2);
    assert_int_equal(by_id(b, "ack", 2, 0), 1); /* the ttl key outlives its job */
    churn(b, 20, 100, 200);                     /* segments roll: snapshots carry the keys */

    assert_true(wait_segment_gone(f->dir, 1)); /* with the keys' own records */
    restart(f); /* job 1, reserved, comes back ready */
    b = f->b;
    assert_int_equal(push_o(b, "g", &ua, pl, 1, &p), 0);
    assert_true(p.duplicate);
    assert_int_equal(p.first_id, 1);
    assert_int_equal(push_o(b, "g", &ut, pl, 1, &p), 0);
    assert_true(p.duplicate);
    assert_int_equal(p.first_id, 2);
    fake_now += 1000 * MS; /* x's TTL ends */
    assert_int_equal(push_o(b, "g", &ux, pl, 1, &p), 0);
    assert_false(p.duplicate);
    assert_int_equal(p.n, 1);
    /* job 1 was handed back by the restart; acked, its key is free */
    assert_int_equal(reserve1(b, "w", 8), 1);
    assert_int_equal(by_id(b, "ack", 1, 0), 1);
    assert_int_equal(push_o(b, "g", &ua, pl, 1, &p), 0);
    assert_false(p.duplicate);
    fake_now += 60000 * MS;
    assert_int_equal(push_o(b, "g", &ut, pl, 1, &p), 0);
    assert_false(p.duplicate);
}

/* Delayed pushes (delay_ms and run_at_ms) come back delayed, due at the same time, beside a
 * push whose run_at_ms had passed (ready); they become ready at their time, in due order. */
static void
test_delayed_push_replays_with_its_due_time(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    struct push_opt later = { .delay_ms = 3000 };
    struct push_opt at = { .run_at_ms = (uint64_t)((T0 + 2000 * MS) / MS) };
    struct push_opt past = { .run_at_ms = (uint64_t)((T0 - 1000 * MS) / MS) };

    assert_int_equal(push1(b, "g", &later, "d1"), 1);
    assert_int_equal(push1(b, "g", &at, "d2"), 2);
    assert_int_equal(push1(b, "g", &past, "r3"), 3);
    restart_same(f);
    b = f->b;
    assert_int_equal(b->jobs, 3);
    assert_job(b, 1, "default", "g", JOB_DELAYED, "d1", 60000, 0, 3, 0);
    assert_int_equal(find(b, 1)->due_ns, T0 + 3000 * MS);
    assert_job(b, 2, "default", "g", JOB_DELAYED, "d2", 60000, 0, 3, 0);
    assert_int_equal(find(b, 2)->due_ns, T0 + 2000 * MS);
    assert_job(b, 3, "default", "g", JOB_READY, "r3", 60000, 0, 3, 0);
    assert_int_equal(G(b, "g")->jobs[JOB_DELAYED], 2);

    fake_now = T0 + 1999 * MS;
    tick(b);
    assert_int_equal(find(b, 2)->state, JOB_DELAYED);
    fake_now = T0 + 2000 * MS;
    tick(b);
    const uint64_t ready[] = { 3, 2 };
    assert_list(b, "default", JOB_READY, ready, 2);
    /* Its move to ready is recorded too: after another restart it is still ready. */
    restart_same(f);
    b = f->b;
    assert_list(b, "default", JOB_READY, ready, 2);
    fake_now = T0 + 3000 * MS;
    tick(b);
    const uint64_t ready2[] = { 3, 2, 1 };
    assert_list(b, "default", JOB_READY, ready2, 3);
}

static void
test_dead_retry_and_purge_replay(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    struct push_opt once = { .max_attempts = 1, .ttr_ms = 2000 };
    uint64_t ids[3];

    for (int i = 1; i <= 3; i++) {
        char z[8];
        snprintf(z, sizeof(z), "d%d", i);
        assert_int_equal(push1(b, "g", &once, z), (uint64_t)i);
    }
    assert_int_equal(reserve(b, "w1", 7, 3, NULL, ids), 3);
    assert_int_equal(by_ids(b, "nack", ids, 3, 0), 3);
    assert_int_equal(dead_ids(b).n, 3);
    assert_int_equal(by_id(b, "dead.retry", 1, 0), 1);
    assert_int_equal(by_id(b, "dead.purge", 2, 0), 1);

    restart_same(f);
    b = f->b;
    assert_int_equal(b->jobs, 2);
    assert_int_equal(b->next_id, 4);
    assert_null(find(b, 2));
    assert_job(b, 1, "default", "g", JOB_READY, "d1", 2000, 0, 1, 0);
    assert_job(b, 3, "default", "g", JOB_DEAD, "d3", 2000, 1, 1, 0);
    struct ids dead = dead_ids(b);
    assert_int_equal(dead.n, 1);
    assert_int_equal(dead.v[0], 3);
    /* Dead job 3 is still found by id: purged after replay, and that replays too. */
    assert_int_equal(by_id(b, "dead.purge", 3, 0), 1);
    restart_same(f);
    assert_int_equal(f->b->jobs, 1);
    assert_int_equal(dead_ids(f->b).n, 0);
}

static void
test_release_and_ttr_expiry_replay(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    struct push_opt ttr = { .ttr_ms = 1000 }, once = { .ttr_ms = 1000, .max_attempts = 1 };

    assert_int_equal(push1(b, "g", &ttr, "r1"), 1);
    assert_int_equal(push1(b, "g", &ttr, "r2"), 2);
    assert_int_equal(push1(b, "g", &ttr, "r3"), 3);
    assert_int_equal(push1(b, "g", &once, "r4"), 4);
    assert_int_equal(push1(b, "g", NULL, "r5"), 5);
    /* Reserved 10 ms apart, so that they expire in a known order. */
    for (uint64_t id = 1; id <= 4; id++) {
        assert_int_equal(reserve1(b, "w1", 7), id);
        fake_now += 10 * MS;
    }
    assert_int_equal(by_id(b, "release", 1, 0), 1);
    fake_now = T0 + 1025 * MS; /* jobs 2 (due at +1010) and 3 (+1020) expire */
    tick(b);
    const uint64_t want[] = { 3, 2, 1, 5 };
    assert_list(b, "default", JOB_READY, want, 4);
    assert_int_equal(find(b, 4)->state, JOB_RESERVED);
    fake_now = T0 + 1030 * MS; /* job 4 expires with its only attempt used: dead */
    tick(b);
    assert_int_equal(find(b, 4)->state, JOB_DEAD);

    restart_same(f);
    b = f->b;
    assert_list(b, "default", JOB_READY, want, 4);
    assert_job(b, 1, "default", "g", JOB_READY, "r1", 1000, 1, 3, 0);
    assert_job(b, 2, "default", "g", JOB_READY, "r2", 1000, 1, 3, 0);
    assert_job(b, 3, "default", "g", JOB_READY, "r3", 1000, 1, 3, 0);
    assert_job(b, 4, "default", "g", JOB_DEAD, "r4", 1000, 1, 1, 0);
    assert_job(b, 5, "default", "g", JOB_READY, "r5", 60000, 0, 3, 0);
    assert_int_equal(queue_n(Q(b, "default"), JOB_RESERVED), 0);
    /* The expiries' errors come back with their jobs; a released job has none. */
    assert_null(find(b, 1)->err);
    assert_non_null(find(b, 4)->err);
    assert_int_equal(find(b, 4)->err->cls, JERR_TTR_EXPIRED);
    assert_int_equal(find(b, 4)->err->at_ms, (T0 + 1030 * MS) / MS);
    assert_memory_equal(find(b, 4)->err->text, "TTR of 1000 ms expired on worker w1",
                        find(b, 4)->err->len);
    assert_int_equal(find(b, 2)->err->cls, JERR_TTR_EXPIRED);
    assert_int_equal(b->flowc.errors[JERR_TTR_EXPIRED], 0); /* counted since this start */
}

static void
test_closed_connection_replays(void **state)
{
    struct fix *f = *state;
    f->cfg.max_crashes = 2;
    start(f);
    struct broker *b = f->b;
    uint64_t ids[3];

    for (uint64_t i = 1; i <= 4; i++) {
        char z[8];
        snprintf(z, sizeof(z), "c%llu", (unsigned long long)i);
        assert_int_equal(push1(b, "g", NULL, z), i);
    }
    assert_int_equal(reserve(b, "w1", 7, 3, NULL, ids), 3);
    /* The job it runs is charged a crash; the others get their attempt back. */
    set_current(b, "w1", 1);
    ops_pipe_closed(b, 7);
    const uint64_t back[] = { 1, 2, 3, 4 };
    assert_list(b, "default", JOB_READY, back, 4);

    restart_same(f);
    b = f->b;
    assert_list(b, "default", JOB_READY, back, 4);
    assert_job(b, 1, "default", "g", JOB_READY, "c1", 60000, 1, 3, 1);
    assert_job(b, 2, "default", "g", JOB_READY, "c2", 60000, 0, 3, 0);
    assert_job(b, 3, "default", "g", JOB_READY, "c3", 60000, 0, 3, 0);

    /* The same worker name on a new connection: its job goes back with its attempt given
     * back, not charged a crash (and is reserved again from the head). */
    assert_int_equal(reserve1(b, "w9", 9), 1);
    assert_int_equal(find(b, 1)->attempts, 2);
    assert_int_equal(reserve1(b, "w9", 10), 1);
    assert_job(b, 1, "default", "g", JOB_RESERVED, "c1", 60000, 2, 3, 1);
    assert_int_equal(by_id(b, "release", 1, 0), 1);
    restart_same(f);
    b = f->b;
    assert_list(b, "default", JOB_READY, back, 4);
    assert_job(b, 1, "default", "g", JOB_READY, "c1", 60000, 2, 3, 1);

    /* A second crash under job 1 (max_crashes 2) kills it; that replays too. */
    assert_int_equal(reserve1(b, "w2", 8), 1);
    ops_pipe_closed(b, 8);
    assert_int_equal(find(b, 1)->state, JOB_DEAD);
    restart_same(f);
    b = f->b;
    assert_job(b, 1, "default", "g", JOB_DEAD, "c1", 60000, 3, 3, 2);
    const uint64_t left[] = { 2, 3, 4 };
    assert_list(b, "default", JOB_READY, left, 3);
    assert_job(b, 2, "default", "g", JOB_READY, "c2", 60000, 0, 3, 0);
    struct ids dead = dead_ids(b);
    assert_int_equal(dead.n, 1);
    assert_int_equal(dead.v[0], 1);
}

static void
test_reserved_job_comes_back_ready_at_head(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    uint64_t ids[2];

    queue_create(b, "first", 1, -1, -1);
    assert_int_equal(push1(b, "g", NULL, "j1"), 1);
    assert_int_equal(push1(b, "g", NULL, "j2"), 2);
    assert_int_equal(push1(b, "g", NULL, "j3"), 3);
    struct push_opt o = { .queue = "first" };
    assert_int_equal(push1(b, "h", &o, "j4"), 4);
    assert_int_equal(reserve1(b, "w1", 7), 4);      /* priority 1 first */
    assert_int_equal(reserve(b, "w1", 7, 2, NULL, ids), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(by_id(b, "release", 1, 0), 1); /* ready at the head, attempt counted */

    restart(f);
    b = f->b;
    /* Job 2, reserved at the close, goes back before job 1, released before it. */
    const uint64_t want[] = { 2, 1, 3 }, first[] = { 4 };
    assert_list(b, "default", JOB_READY, want, 3);
    assert_list(b, "first", JOB_READY, first, 1);
    assert_int_equal(queue_n(Q(b, "default"), JOB_RESERVED), 0);
    assert_int_equal(queue_n(Q(b, "first"), JOB_RESERVED), 0);
    assert_job(b, 1, "default", "g", JOB_READY, "j1", 60000, 1, 3, 0);
    assert_job(b, 2, "default", "g", JOB_READY, "j2", 60000, 1, 3, 0);
    assert_job(b, 3, "default", "g", JOB_READY, "j3", 60000, 0, 3, 0);
    assert_job(b, 4, "first", "h", JOB_READY, "j4", 60000, 1, 3, 0);
    assert_int_equal(b->jobs, 4);
    /* Not findable as reserved: an ack of the old reservation settles nothing. */
    assert_int_equal(by_id(b, "ack", 2, 0), 0);
    assert_int_equal(reserve1(b, "w2", 8), 4);
    assert_int_equal(reserve1(b, "w2", 8), 2);
    assert_int_equal(find(b, 2)->attempts, 2);
    assert_int_equal(by_id(b, "ack", 2, 0), 1);
}

/* A job handed back at a start is ready in its queue from then on, for the next start too: a
 * route change or a flush after it moves the job, and the next replay keeps it moved. */
static void
test_job_handed_back_follows_a_later_route_change(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;

    queue_create(b, "q2", 0, -1, -1);
    route(b, "carol", "q2");
    assert_int_equal(push1(b, "carol", NULL, "j1"), 1);
    assert_int_equal(push1(b, "carol", NULL, "j2"), 2);
    assert_int_equal(push1(b, "dave", NULL, "j3"), 3);
    assert_int_equal(reserve1(b, "w1", 7), 1);

    restart(f); /* job 1 comes back ready, before job 2 */
    b = f->b;
    const uint64_t q2[] = { 1, 2 };
    assert_list(b, "q2", JOB_READY, q2, 2);
    assert_int_equal(route(b, "carol", NULL), 2);
    const uint64_t moved[] = { 3, 1, 2 };
    assert_list(b, "default", JOB_READY, moved, 3);

    restart_same(f);
    b = f->b;
    assert_list(b, "default", JOB_READY, moved, 3);
    assert_list(b, "q2", JOB_READY, NULL, 0);
    assert_job(b, 1, "default", "carol", JOB_READY, "j1", 60000, 1, 3, 0);
    assert_job(b, 2, "default", "carol", JOB_READY, "j2", 60000, 0, 3, 0);
}

static void
test_job_handed_back_follows_a_later_flush(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;

    queue_create(b, "q2", 0, -1, -1);
    route(b, "carol", "q2");
    assert_int_equal(push1(b, "carol", NULL, "j1"), 1);
    assert_int_equal(reserve1(b, "w1", 7), 1);

    restart(f);
    b = f->b;
    const uint64_t one[] = { 1 };
    assert_list(b, "q2", JOB_READY, one, 1);
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "flush");
    assert_int_equal(call(b, &req, WK_N, NULL), 0);
    assert_list(b, "default", JOB_READY, one, 1);

    restart_same(f);
    b = f->b;
    assert_list(b, "default", JOB_READY, one, 1);
    assert_list(b, "q2", JOB_READY, NULL, 0);
    assert_job(b, 1, "default", "carol", JOB_READY, "j1", 60000, 1, 3, 0);
}

/* --- queues, routes, flush, purge --------------------------------------------------------- */

/* The order of each queue and the groups' weights replay, and so does the order in which
 * the jobs are then handed out. */
static void
test_orders_and_weights_replay(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    queue_create(b, "q1", -1, -1, -1);
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.update");
    wire_set_cstr(&req, WK_NAME, "q1");
    wire_set_cstr(&req, WK_ORDER, "fifo");
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.weight");
    wire_set_cstr(&req, WK_GROUP, "amy");
    wire_set_num(&req, WK_WEIGHT, 2.5);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.weight");
    wire_set_cstr(&req, WK_GROUP, "nobody"); /* a weight for a group with no job yet */
    wire_set_num(&req, WK_WEIGHT, 0.01);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    struct push_opt to1 = { .queue = "q1" };
    for (int i = 0; i < 3; i++) {
        push1(b, "bob", NULL, "b");
        push1(b, "bob", &to1, "b");
        push1(b, "amy", NULL, "a");
        push1(b, "amy", &to1, "a");
    }
    assert_int_equal(G(b, "amy")->weight, 2500);
    restart_same(f);
    b = f->b;
    assert_int_equal(Q(b, "q1")->order, QUEUE_ORDER_FIFO);
    assert_int_equal(b->dflt->order, QUEUE_ORDER_GROUPS);
    assert_int_equal(G(b, "amy")->weight, 2500);
    assert_int_equal(G(b, "nobody")->weight, 10);
    /* Started again: the weights now come from the new segment's snapshot. */
    restart_same(f);
    b = f->b;
    assert_int_equal(G(b, "amy")->weight, 2500);
    assert_int_equal(G(b, "nobody")->weight, 10);
    /* default: bob's turn (he came first), then amy's 2.5 jobs a turn; q1: arrival order. */
    struct worker *w = flow_worker(b, S("w1"), 7);
    struct job *got[12];
    uint32_t n = 0;
    char seq[13] = "";
    struct wire_list from = { 1, NULL, &(struct sl_str){ "default", 7 }, NULL };
    assert_int_equal(flow_reserve(b, w, 6, &from, got, &n), 0);
    assert_int_equal(n, 6);
    for (uint32_t i = 0; i < n; i++) {
        seq[i] = got[i]->group->name[0];
    }
    assert_string_equal(seq, "baabab"); /* amy has 3 there */
    assert_string_equal(queue_ready_head(Q(b, "q1"))->group->name, "bob");
    for (uint32_t i = 0; i < b->nqueues; i++) {
        assert_null(queue_check(b->qorder[i]));
    }
}

/* group.limit: the limit (not the tokens) replays from the records and then from a new
 * segment's snapshot; a removed limit stays removed; flush removes them all, replayed too. */
static void
test_group_limits_replay(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.limit");
    wire_set_cstr(&req, WK_GROUP, "amy");
    wire_set_num(&req, WK_RATE, 20);
    wire_set_u64(&req, WK_BURST, 5);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.limit");
    wire_set_cstr(&req, WK_GROUP, "bob");
    wire_set_num(&req, WK_RATE, 0.5);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.limit");
    wire_set_cstr(&req, WK_GROUP, "cat");
    wire_set_num(&req, WK_RATE, 3);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.limit");
    wire_set_cstr(&req, WK_GROUP, "cat");
    wire_set_num(&req, WK_RATE, 0);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    push1(b, "amy", NULL, "a");
    /* Spend amy's tokens: a restart starts her bucket full again. */
    pthread_mutex_lock(&b->lock);
    assert_int_equal(rate_bucket_take(&G(b, "amy")->rate->bucket, broker_mono_ns(b), 5), 5);
    pthread_mutex_unlock(&b->lock);
    for (int round = 0; round < 2; round++) {
        restart_same(f); /* the second time from the new segment's snapshot */
        b = f->b;
        assert_int_equal(G(b, "amy")->rate->bucket.rate_milli, 20000);
        assert_int_equal(G(b, "amy")->rate->bucket.burst, 5);
        assert_int_equal(grate_tokens(b, G(b, "amy")), 5);
        assert_int_equal(G(b, "bob")->rate->bucket.rate_milli, 500);
        assert_int_equal(G(b, "bob")->rate->bucket.burst, 1);
        assert_null(G(b, "cat") != NULL ? G(b, "cat")->rate : NULL);
    }
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "flush");
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    restart_same(f);
    b = f->b;
    assert_null(G(b, "amy")->rate);
    assert_null(broker_group_find(b, S("bob")));
}

static void
test_queue_settings_and_routes_replay(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    uint64_t moved = 99, reset = 99;

    queue_create(b, "q1", 3, 4, 5);
    queue_create(b, "q2", -1, -1, -1);
    queue_create(b, "q3", 20, -1, -1);
    queue_create(b, "q4", -1, 2, -1);
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.update");
    wire_set_cstr(&req, WK_NAME, "q1");
    wire_set_u64(&req, WK_WEIGHT, 9);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.update");
    wire_set_cstr(&req, WK_NAME, "default");
    wire_set_u64(&req, WK_PRIORITY, 4);
    wire_set_u64(&req, WK_MAX_INFLIGHT, 50);
    wire_set_u64(&req, WK_RETRY_BASE_MS, 250);
    wire_set_u64(&req, WK_RETRY_MAX_MS, 90000);
    wire_set_u64(&req, WK_RETRY_JITTER, 7);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);
    assert_int_equal(queue_op(b, "queue.pause", "q2"), 0);
    assert_int_equal(queue_op(b, "queue.pause", "q3"), 0);
    assert_int_equal(queue_op(b, "queue.resume", "q3"), 0);

    assert_int_equal(push1(b, "bob", NULL, "b1"), 1);
    assert_int_equal(push1(b, "bob", NULL, "b2"), 2);
    struct push_opt to3 = { .queue = "q3" }, to4 = { .queue = "q4" };
    assert_int_equal(push1(b, "amy", &to3, "a1"), 3);
    assert_int_equal(push1(b, "cat", &to4, "c1"), 4);
    assert_int_equal(route(b, "bob", "q1"), 2);     /* bob's ready jobs follow the route */
    assert_int_equal(route(b, "amy", "q2"), 0);     /* amy's job is in q3, not on a route */
    assert_int_equal(route(b, "amy", NULL), 0);
    assert_int_equal(route(b, "dan", "q4"), 0);     /* a group with a route and no job */
    assert_int_equal(route(b, "eve", "q2"), 0);
    assert_int_equal(queue_destroy(b, "q3", false, &moved, &reset), SL_ENOTEMPTY);
    assert_int_equal(queue_destroy(b, "q3", true, &moved, &reset), 0);
    assert_int_equal(moved, 1);
    assert_int_equal(reset, 0);
    assert_int_equal(queue_destroy(b, "q4", true, &moved, &reset), 0);
    assert_int_equal(moved, 1);
    assert_int_equal(reset, 1);
    assert_int_equal(push1(b, "bob", NULL, "b3"), 5);

    restart_same(f);
    b = f->b;
    assert_int_equal(b->nqueues, 3);
    assert_null(Q(b, "q3"));
    assert_null(Q(b, "q4"));
    struct queue *q1 = Q(b, "q1"), *q2 = Q(b, "q2");
    assert_non_null(q1);
    assert_non_null(q2);
    assert_int_equal(q1->priority, 3);
    assert_int_equal(q1->weight, 9);
    assert_int_equal(q1->max_inflight, 5);
    assert_false(q1->paused);
    assert_int_equal(q2->priority, 10);
    assert_int_equal(q2->weight, 1);
    assert_int_equal(q2->max_inflight, 0);
    assert_true(q2->paused);
    assert_false(Q(b, "default")->paused);
    assert_int_equal(Q(b, "default")->priority, 4);
    assert_int_equal(Q(b, "default")->max_inflight, 50);
    assert_int_equal(Q(b, "default")->retry.base_ms, 250);
    assert_int_equal(Q(b, "default")->retry.max_ms, 90000);
    assert_int_equal(Q(b, "default")->retry.jitter, 7);
    assert_int_equal(q1->retry.base_ms, 0); /* the broker's default when it was created */
    const uint64_t dflt[] = { 3, 4 }, inq1[] = { 1, 2, 5 };
    assert_list(b, "default", JOB_READY, dflt, 2);
    assert_list(b, "q1", JOB_READY, inq1, 3);
    assert_ptr_equal(broker_group_find(b, S("bob"))->route, q1);
    assert_ptr_equal(broker_group_find(b, S("eve"))->route, q2);
    assert_null(broker_group_find(b, S("amy"))->route);
    struct group *dan = broker_group_find(b, S("dan"));
    assert_true(dan == NULL || dan->route == NULL);
    /* The route works after replay. */
    struct pushed p;
    struct sl_str pl[1] = { S("b4") };
    assert_int_equal(push_o(b, "bob", NULL, pl, 1, &p), 0);
    assert_int_equal(p.first_id, 6);
    assert_string_equal(p.queue, "q1");
    assert_int_equal(route(b, "bob", NULL), 4);     /* all of bob's ready jobs move back */
    restart_same(f);
    const uint64_t dflt2[] = { 3, 4, 1, 2, 5, 6 };
    assert_list(f->b, "default", JOB_READY, dflt2, 6);
}

static void
test_flush_and_purge_replay(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    struct push_opt to1 = { .queue = "q1" };

    queue_create(b, "q1", -1, -1, -1);
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(push1(b, "bob", NULL, "b"), i);
    }
    assert_int_equal(push1(b, "amy", NULL, "a"), 4);
    assert_int_equal(push1(b, "amy", NULL, "a"), 5);
    assert_int_equal(push1(b, "cat", &to1, "c"), 6);
    assert_int_equal(route(b, "bob", "q1"), 3);
    assert_int_equal(route(b, "amy", "q1"), 2);
    const uint64_t q1[] = { 6, 1, 2, 3, 4, 5 };
    assert_list(b, "q1", JOB_READY, q1, 6);
    assert_int_equal(purge(b, "q1", "amy"), 2);

    struct wire_msg req;
    uint64_t routes_reset = 0;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "flush");
    assert_int_equal(call(b, &req, WK_ROUTES_RESET, &routes_reset), 0);
    assert_int_equal(routes_reset, 2);
    const uint64_t dflt[] = { 1, 2, 3 }, q1b[] = { 6 };
    assert_list(b, "default", JOB_READY, dflt, 3);
    assert_list(b, "q1", JOB_READY, q1b, 1);
    assert_null(broker_group_find(b, S("amy"))); /* no job left: forgotten by the flush */

    restart_same(f);
    b = f->b;
    assert_list(b, "default", JOB_READY, dflt, 3);
    assert_list(b, "q1", JOB_READY, q1b, 1);
    assert_null(broker_group_find(b, S("bob"))->route);
    assert_null(find(b, 4));
    assert_null(find(b, 5));

    assert_int_equal(purge(b, NULL, "cat"), 1);
    assert_int_equal(push1(b, "dan", NULL, "d"), 7);
    assert_int_equal(purge(b, "default", "bob"), 3);
    restart_same(f);
    b = f->b;
    assert_int_equal(b->jobs, 1);
    assert_int_equal(b->next_id, 8);
    const uint64_t last[] = { 7 };
    assert_list(b, "default", JOB_READY, last, 1);
    assert_int_equal(queue_n(Q(b, "q1"), JOB_READY), 0);
}

/* --- idempotency -------------------------------------------------------------------------- */

static void
test_keyed_push_is_a_dup_after_replay(void **state)
{
    struct fix *f = *state;
    start(f);
    struct broker *b = f->b;
    struct sl_str two[2] = { S("x"), S("y") }, one[1] = { S("z") };
    struct push_opt k1 = { .client = "c1", .seq = 1 }, k2 = { .client = "c1", .seq = 2 };
    struct push_opt k3 = { .client = "c1", .seq = 3 };
    struct pushed p;
    uint64_t ids[3];

    assert_int_equal(push_o(b, "bob", &k1, two, 2, &p), 0);
    assert_false(p.dup);
    assert_int_equal(p.first_id, 1);
    assert_int_equal(push_o(b, "bob", &k2, one, 1, &p), 0);
    assert_int_equal(p.first_id, 3);

    restart_same(f);
    b = f->b;
    assert_int_equal(push_o(b, "bob", &k1, two, 2, &p), 0);
    assert_true(p.dup);
    assert_int_equal(p.first_id, 1);
    assert_int_equal(p.n, 2);
    assert_int_equal(push_o(b, "bob", &k2, one, 1, &p), 0);
    assert_true(p.dup);
    assert_int_equal(p.first_id, 3);
    assert_int_equal(p.n, 1);
    assert_int_equal(b->jobs, 3);
    assert_int_equal(push_o(b, "bob", &k3, one, 1, &p), 0);
    assert_false(p.dup);
    assert_int_equal(p.first_id, 4);

    /* Every job done: the segment that held the pushes goes, and the keys live on in the
     * snapshot at the start of the next one. */
    assert_int_equal(reserve(b, "w", 7, 3, NULL, ids), 3);
    assert_int_equal(by_ids(b, "ack", ids, 3, 0), 3);
    assert_int_equal(reserve1(b, "w", 7), 4);
    assert_int_equal(by_id(b, "ack", 4, 0), 1);
    restart(f);
    b = f->b;
    assert_false(has_segment(f->dir, 1));
    assert_int_equal(b->jobs, 0);
    assert_int_equal(push_o(b, "bob", &k1, two, 2, &p), 0);
    assert_true(p.dup);
    assert_int_equal(p.first_id, 1);
    assert_int_equal(p.n, 2);
    assert_int_equal(push_o(b, "bob", &k3, one, 1, &p), 0);
    assert_true(p.dup);
    assert_int_equal(p.first_id, 4);
    assert_int_equal(b->jobs, 0);
    assert_int_equal(push1(b, "bob", NULL, "new"), 5);
}

/* --- segments ----------------------------------------------------------------------------- */

static void
test_segments_roll_and_go_once_empty(void **state)
{
    struct fix *f = *state;
    f->jc.segment_bytes = SEG_SMALL;
    f->jc.fsync = JOURNAL_NEVER;
    start(f);
    struct broker *b = f->b;
    struct push_opt k = { .client = "c1", .seq = 9 };
    struct sl_str one[1] = { S("keyed") };
    struct pushed p;
    uint64_t first = 0, last = 0;

    queue_create(b, "q1", 3, 2, 7);
    assert_int_equal(queue_op(b, "queue.pause", "q1"), 0);
    assert_int_equal(route(b, "bob", "q1"), 0);
    assert_int_equal(push_o(b, "amy", &k, one, 1, &p), 0);
    assert_int_equal(p.first_id, 1);
    assert_int_equal(reserve1(b, "w", 7), 1);
    assert_int_equal(by_id(b, "ack", 1, 0), 1);
    churn(b, 20, 100, 200);  /* about 500 KiB of records: several segments */
    assert_int_equal(b->next_id, 2002);
    assert_int_equal(b->jobs, 0);

    /* Every segment but the one written to holds no job: they are deleted. */
    struct journal_stats js = { 0 };
    bool one_left = false;
    for (int i = 0; i < 500 && !one_left; i++) {
        journal_stats(b->jr, &js);
        one_left = segments(f->dir, &first, &last) == 1 && js.segments == 1;
        if (!one_left) {
            sleep_ms(10);
        }
    }
    assert_true(one_left);
    assert_true(last >= 5);
    assert_int_equal(js.live_jobs, 0);
    assert_false(js.broken);
    uint64_t seg_before = last;

    restart_same(f);
    assert_int_equal(f->b->next_id, 2002);
    /* The replayed segment held no job either: once the new one is written, it goes, and
     * the next start has nothing but the new segment's snapshot to go by. */
    assert_true(wait_segment_gone(f->dir, seg_before));
    restart(f);
    b = f->b;
    assert_false(has_segment(f->dir, seg_before));
    assert_true(has_segment(f->dir, seg_before + 2));
    assert_int_equal(b->next_id, 2002);
    assert_int_equal(b->jobs, 0);
    struct queue *q1 = Q(b, "q1");
    assert_non_null(q1);
    assert_int_equal(q1->priority, 3);
    assert_int_equal(q1->weight, 2);
    assert_int_equal(q1->max_inflight, 7);
    assert_true(q1->paused);
    assert_ptr_equal(broker_group_find(b, S("bob"))->route, q1);
    assert_int_equal(q1->routes, 1);
    assert_int_equal(push_o(b, "amy", &k, one, 1, &p), 0);
    assert_true(p.dup);
    assert_int_equal(p.first_id, 1);
    assert_int_equal(p.n, 1);
    assert_int_equal(push1(b, "bob", NULL, "routed"), 2002);
    assert_ptr_equal(find(b, 2002)->queue, q1);
    stop(f);
    assert_int_equal(segments(f->dir, &first, &last), 1);
    assert_int_equal(first, seg_before + 2);
    start(f);
    assert_int_equal(f->b->jobs, 1);
    assert_int_equal(f->b->next_id, 2003);
    assert_job(f->b, 2002, "q1", "bob", JOB_READY, "routed", 60000, 0, 3, 0);
}

static void
test_long_lived_jobs_are_compacted(void **state)
{
    struct fix *f = *state;
    f->jc.segment_bytes = SEG_SMALL;
    f->jc.fsync = JOURNAL_NEVER;
    start(f);
    struct broker *b = f->b;
    struct push_opt slow = { .queue = "slow", .ttr_ms = 4321, .max_attempts = 9 };
    struct push_opt once = { .max_attempts = 1 };

    queue_create(b, "slow", -1, -1, -1);
    assert_int_equal(queue_op(b, "queue.pause", "slow"), 0);
    assert_int_equal(push1(b, "keep", &slow, "long-lived"), 1);
    assert_int_equal(push1(b, "keep", &once, "dead"), 2);
    assert_int_equal(push1(b, "keep", NULL, "delayed"), 3);
    assert_int_equal(reserve1(b, "w", 7), 2);
    assert_int_equal(by_id(b, "nack", 2, 0), 1);
    assert_int_equal(reserve1(b, "w", 7), 3);
    assert_int_equal(by_id(b, "nack", 3, 3600000), 1);
    assert_true(has_segment(f->dir, 1));
    churn(b, 20, 100, 200);

    /* Segment 1 holds three live jobs among thousands gone: they are written again in
     * full, and the segment is deleted. */
    assert_true(wait_segment_gone(f->dir, 1));
    struct journal_stats js;
    journal_stats(b->jr, &js);
    assert_int_equal(js.live_jobs, 3);
    assert_int_not_equal(find(b, 1)->seg, 1);

    restart_same(f);
    b = f->b;
    assert_false(has_segment(f->dir, 1));
    assert_int_equal(b->jobs, 3);
    assert_job(b, 1, "slow", "keep", JOB_READY, "long-lived", 4321, 0, 9, 0);
    assert_job(b, 2, "default", "keep", JOB_DEAD, "dead", 60000, 1, 1, 0);
    assert_job(b, 3, "default", "keep", JOB_DELAYED, "delayed", 60000, 1, 3, 0);
    /* written again in full with their errors */
    assert_null(find(b, 1)->err);
    assert_int_equal(find(b, 2)->err->cls, JERR_FAILED);
    assert_int_equal(find(b, 3)->err->cls, JERR_FAILED);
    assert_int_equal(find(b, 1)->enq_ns, T0);
    assert_int_equal(find(b, 3)->due_ns, T0 + 3600000 * MS);
    assert_true(Q(b, "slow")->paused);
    assert_int_equal(dead_ids(b).n, 1);
    assert_int_equal(b->next_id, 2004);
    fake_now = T0 + 3600000 * MS;
    tick(b);
    assert_int_equal(find(b, 3)->state, JOB_READY);
    assert_int_equal(by_id(b, "dead.retry", 2, 0), 1);
}

/* A job written again in full keeps its place in its queue: compaction must not move an
 * old job behind younger ones. */
/* A backlog of live jobs larger than eight segments stays where it is: copying a segment
 * whose jobs are all live frees nothing, and the copy would be copied again at every roll. */
static void
test_live_backlog_is_not_copied_forward(void **state)
{
    struct fix *f = *state;
    char pay[1024];
    uint64_t first = 0, last = 0;
    f->jc.segment_bytes = SEG_SMALL;
    f->jc.fsync = JOURNAL_NEVER;
    start(f);
    memset(pay, 'p', sizeof(pay) - 1);
    pay[sizeof(pay) - 1] = '\0';
    uint64_t n = 0;
    while (segments(f->dir, &first, &last) < 12 && n < 5000) {
        push1(f->b, "g", NULL, pay);
        n++;
    }
    assert_int_equal(first, 1);
    assert_true(last >= 12);
    struct journal_stats js;
    journal_stats(f->b->jr, &js);
    assert_int_equal(js.live_jobs, n);
    /* Every job was written once: the files hold little more than the payloads. */
    assert_true(js.bytes < n * (sizeof(pay) + 200));
    restart_same(f);
    assert_int_equal(f->b->jobs, n);
}

static void
test_compaction_keeps_queue_order(void **state)
{
    struct fix *f = *state;
    f->jc.segment_bytes = SEG_SMALL;
    f->jc.fsync = JOURNAL_NEVER;
    start(f);
    struct broker *b = f->b;
    struct push_opt slow = { .queue = "slow" }, work = { .queue = "work" };
    static char big[1000];
    uint64_t first = 0, last = 0;

    memset(big, 'w', sizeof(big));
    queue_create(b, "slow", -1, -1, -1);
    queue_create(b, "work", -1, -1, -1);
    assert_int_equal(queue_op(b, "queue.pause", "slow"), 0);
    assert_int_equal(push1(b, "g", &slow, "A"), 1);
    /* 70 live jobs of 1000 bytes fill segment 1: too many live ones to compact it. */
    for (uint64_t i = 0; i < 70; i++) {
        struct sl_str pl[1] = { { big, sizeof(big) } };
        struct pushed p;
        assert_int_equal(push_o(b, "w", &work, pl, 1, &p), 0);
    }
    assert_int_equal(segments(f->dir, &first, &last), 2);
    assert_int_equal(push1(b, "g", &slow, "B"), 72);  /* in segment 2 */
    uint64_t ids[70];
    assert_int_equal(reserve(b, "w", 7, 70, "work", ids), 70);
    assert_int_equal(by_ids(b, "ack", ids, 70, 0), 70);
    assert_true(wait_segment_gone(f->dir, 1)); /* A was written again after B */
    const uint64_t order[] = { 1, 72 };
    assert_list(b, "slow", JOB_READY, order, 2);

    restart_same(f);
    assert_list(f->b, "slow", JOB_READY, order, 2);
}

/* --- damage ------------------------------------------------------------------------------- */

/* Ten single-job pushes into segment 1; returns its path in path. */
static void
ten_pushes(struct fix *f, char *path, size_t cap)
{
    start(f);
    for (uint64_t i = 1; i <= 10; i++) {
        char z[16];
        snprintf(z, sizeof(z), "payload-%llu", (unsigned long long)i);
        assert_int_equal(push1(f->b, "g", NULL, z), i);
    }
    stop(f);
    assert_int_equal(jf_path(path, cap, f->dir, 1), 0);
    assert_true(has_segment(f->dir, 1));
}

static void
test_corrupt_record_stops_open_unless_repair(void **state)
{
    struct fix *f = *state;
    char path[512], why[512], want[600];
    size_t offs[32];
    uint8_t types[32];

    ten_pushes(f, path, sizeof(path));
    size_t n = record_offsets(path, offs, types, 32);
    /* The snapshot (begin, next id, default queue, end), then the ten pushes. */
    assert_int_equal(n, 14);
    assert_int_equal(types[4], 1);
    assert_int_equal(types[13], 1);
    size_t bad = offs[9]; /* the sixth push */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, (off_t)(bad + JF_FRAME_SIZE + 12)), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)(bad + JF_FRAME_SIZE + 12)), 1);
    close(fd);
    off_t size = file_size(path);

    log_level = LOG_OFF;
    struct broker *b = fake_broker(&f->cfg, fake_now);
    why[0] = 'x';
    assert_int_equal(journal_open(b, &f->jc, why, sizeof(why)), SL_EIO);
    assert_null(b->jr);
    assert_non_null(strstr(why, path));
    snprintf(want, sizeof(want), "offset %zu ", bad);
    if (strstr(why, want) == NULL) {
        print_error("why: %s\n", why);
    }
    assert_non_null(strstr(why, want));
    broker_free(b);
    /* Nothing was changed on disk, and the lock was let go. */
    assert_int_equal(file_size(path), size);
    assert_false(has_segment(f->dir, 2));

    f->jc.repair = true;
    start(f);
    b = f->b;
    assert_int_equal(b->jobs, 5);
    assert_int_equal(b->next_id, 6);
    const uint64_t five[] = { 1, 2, 3, 4, 5 };
    assert_list(b, "default", JOB_READY, five, 5);
    assert_job(b, 5, "default", "g", JOB_READY, "payload-5", 60000, 0, 3, 0);
    assert_int_equal(file_size(path), (off_t)bad);
    assert_int_equal(push1(b, "g", NULL, "after"), 6);
    f->jc.repair = false;
    restart_same(f);
    assert_int_equal(f->b->jobs, 6);
}

static void
test_torn_tail_is_cut_and_whole_records_kept(void **state)
{
    struct fix *f = *state;
    char path[512];
    size_t offs[32];
    uint8_t types[32];

    ten_pushes(f, path, sizeof(path));
    size_t n = record_offsets(path, offs, types, 32);
    assert_int_equal(n, 14);
    off_t size = file_size(path);
    assert_int_equal(truncate(path, size - 3), 0);

    log_level = LOG_OFF;
    start(f);
    struct broker *b = f->b;
    assert_int_equal(b->jobs, 9);
    assert_int_equal(b->next_id, 10);
    const uint64_t nine[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    assert_list(b, "default", JOB_READY, nine, 9);
    assert_job(b, 9, "default", "g", JOB_READY, "payload-9", 60000, 0, 3, 0);
    assert_int_equal(file_size(path), (off_t)offs[13]); /* cut at the torn record */
    assert_int_equal(push1(b, "g", NULL, "after"), 10);
    restart_same(f);
    assert_int_equal(f->b->jobs, 10);
    assert_int_equal(file_size(path), (off_t)offs[13]);
}

/* A segment torn that is not the last one is damage in the middle of the journal. */
static void
test_torn_segment_before_the_last_is_corruption(void **state)
{
    struct fix *f = *state;
    char path[512], why[512];

    ten_pushes(f, path, sizeof(path));
    start(f); /* segment 2: its snapshot */
    stop(f);
    assert_true(has_segment(f->dir, 2));
    off_t size = file_size(path);
    assert_int_equal(truncate(path, size - 3), 0);

    log_level = LOG_OFF;
    struct broker *b = fake_broker(&f->cfg, fake_now);
    assert_int_equal(journal_open(b, &f->jc, why, sizeof(why)), SL_EIO);
    assert_non_null(strstr(why, path));
    broker_free(b);
}

/* start(f) with the log (at warn) captured: *log gets it, malloc'd. */
static void
start_logged(struct fix *f, char **log)
{
    char path[300];
    snprintf(path, sizeof(path), "%s.log", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    log_level = LOG_WARN;
    start(f);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    *log = calloc(1, (size_t)size + 1);
    assert_non_null(*log);
    assert_int_equal(pread(fd, *log, (size_t)size, 0), (ssize_t)size);
    close(fd);
    unlink(path);
}

/* A kill between creating the newest segment and writing its header (by a broker that wrote
 * it in place) leaves it shorter than its header: a creation cut short, holding no record.
 * It is removed, said so, and the start goes on with everything before it. */
static void
test_newest_segment_shorter_than_its_header_is_removed(void **state)
{
    struct fix *f = *state;
    char path[512];
    static const size_t sizes[] = { 0, 7 };

    ten_pushes(f, path, sizeof(path));
    for (size_t k = 0; k < 2; k++) {
        uint64_t first = 0, last = 0;
        char seg[512], *log = NULL;
        size_t nseg = segments(f->dir, &first, &last);
        uint64_t seq = last + 1;
        assert_int_equal(jf_path(seg, sizeof(seg), f->dir, seq), 0);
        int fd = open(seg, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "SLUICEJ1", sizes[k]), (ssize_t)sizes[k]);
        close(fd);

        start_logged(f, &log);
        assert_int_equal(f->b->jobs, 10 + k);
        assert_non_null(strstr(log, "event=journal.torn_create"));
        assert_non_null(strstr(log, seg));
        free(log);
        /* The start made the segment again, whole this time. */
        assert_int_equal(segments(f->dir, &first, &last), nseg + 1);
        assert_int_equal(last, seq);
        assert_true(file_size(seg) >= (off_t)JF_HEADER_SIZE);
        push1(f->b, "g", NULL, "after");
        restart_same(f);
        stop(f);
    }
}

/* An older segment cannot be short from a crash: its successor exists only once its header
 * was written. So it is damage, even with --repair. */
static void
test_older_segment_shorter_than_its_header_stops_open(void **state)
{
    struct fix *f = *state;
    char path[512], why[512];

    ten_pushes(f, path, sizeof(path));
    start(f); /* segment 2 */
    stop(f);
    assert_int_equal(truncate(path, 7), 0);
    log_level = LOG_OFF;
    for (int repair = 0; repair < 2; repair++) {
        f->jc.repair = repair;
        struct broker *b = fake_broker(&f->cfg, fake_now);
        why[0] = '\0';
        assert_int_equal(journal_open(b, &f->jc, why, sizeof(why)), SL_EIO);
        assert_non_null(strstr(why, path));
        assert_non_null(strstr(why, "shorter than its header"));
        broker_free(b);
        assert_int_equal(file_size(path), 7);
    }
}

/* A temporary file a crash left while creating a segment is removed at start. */
static void
test_temporary_file_of_a_cut_creation_is_removed(void **state)
{
    struct fix *f = *state;
    char path[512], temp[512], *log = NULL;

    ten_pushes(f, path, sizeof(path));
    snprintf(temp, sizeof(temp), "%s/0000000000000002.seg.tmp", f->dir);
    int fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "SLUICEJ", 7), 7);
    close(fd);
    start_logged(f, &log);
    assert_int_equal(f->b->jobs, 10);
    assert_non_null(strstr(log, "event=journal.temp_removed"));
    free(log);
    assert_int_equal(access(temp, F_OK), -1);
    assert_true(has_segment(f->dir, 2));
}

/* What was accepted once comes back whatever the limits of the new start; the limits hold
 * again for what comes after. */
static void
test_replay_ignores_the_new_limits(void **state)
{
    struct fix *f = *state;
    start(f);
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(push1(f->b, "g", NULL, "0123456789"), i);
    }
    stop(f);
    f->cfg.max_jobs = 2;
    f->cfg.max_bytes = 20;
    f->cfg.max_payload = 4;
    start(f);
    struct broker *b = f->b;
    assert_int_equal(b->jobs, 5);
    assert_int_equal(b->bytes, 50);
    assert_job(b, 5, "default", "g", JOB_READY, "0123456789", 60000, 0, 3, 0);
    assert_int_equal(b->cfg.max_jobs, 2);
    assert_int_equal(b->cfg.max_payload, 4);
    struct sl_str pl[1] = { S("x") };
    assert_int_equal(push_o(b, "g", NULL, pl, 1, NULL), SL_EQUEUEFULL);
    assert_int_equal(b->jobs, 5);
}

/* A whole frame (its CRC right) holding a record this version does not know stops the
 * start: it is not damage that --repair could cut, but a journal this broker cannot read. */
/* Appends a well-framed record rec[0..n) after ten pushes: opening must stop at its offset,
 * naming the segment, and leave the file as it is. */
static void
framed_record_stops_open(struct fix *f, const uint8_t *rec, size_t n)
{
    char path[512], why[512], want[600];
    uint8_t hdr[JF_FRAME_SIZE];

    ten_pushes(f, path, sizeof(path));
    off_t size = file_size(path);
    jf_frame(hdr, rec, (uint32_t)n);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, hdr, sizeof(hdr)), sizeof(hdr));
    assert_int_equal(write(fd, rec, n), (ssize_t)n);
    close(fd);

    log_level = LOG_OFF;
    struct broker *b = fake_broker(&f->cfg, fake_now);
    assert_int_equal(journal_open(b, &f->jc, why, sizeof(why)), SL_EIO);
    assert_null(b->jr);
    assert_non_null(strstr(why, path));
    snprintf(want, sizeof(want), "offset %lld ", (long long)size);
    if (strstr(why, want) == NULL) {
        print_error("why: %s\n", why);
    }
    assert_non_null(strstr(why, want));
    broker_free(b);
    assert_int_equal(file_size(path), size + (off_t)(sizeof(hdr) + n));
}

static void
test_unknown_record_stops_open(void **state)
{
    static const uint8_t rec[5] = { 99, 1, 2, 3, 4 };
    framed_record_stops_open(*state, rec, sizeof(rec));
}

/* A route record whose group breaks the name rule ("a b"): refused like any bad record. */
static void
test_record_with_a_bad_name_stops_open(void **state)
{
    static const uint8_t rec[] = { 6, 3, 0, 'a', ' ', 'b', 0, 0 };
    framed_record_stops_open(*state, rec, sizeof(rec));
}

/* A dedup record whose time (ms since the epoch) is past what nanoseconds can hold: a bad
 * record, not a number to overflow. */
static void
test_record_with_a_time_out_of_range_stops_open(void **state)
{
    static const uint8_t rec[] = { 9, 1, 0, 'c', 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                   1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f };
    framed_record_stops_open(*state, rec, sizeof(rec));
}

/* A job record with no valid state stops the start even when its job is gone (id 999 never
 * existed): whether a record is good must not depend on the segments before it. */
static void
test_job_record_with_a_bad_state_stops_open_for_any_job(void **state)
{
    static const uint8_t rec[] = { 2, 0xe7, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                                   0, 0, 0, 0, 0, 0, 0, 0, 0 };
    framed_record_stops_open(*state, rec, sizeof(rec));
}

/* A push record naming ids the journal already gave out (1, after ten pushes) cannot come
 * from one broker's history: replayed under other ids, later records would miss it. */
static void
test_push_record_reusing_ids_stops_open(void **state)
{
    static const uint8_t rec[] = {
        1,                                     /* R_PUSH */
        0x00, 0x68, 0xe5, 0xcf, 0x8b, 0x01, 0, 0, /* wall_ms 1700000000000 */
        1, 0, 0, 0, 0, 0, 0, 0,                /* first_id 1 */
        1, 0, 0, 0,                            /* n */
        0xe8, 3, 0, 0,                         /* ttr_ms */
        1, 0,                                  /* max_attempts */
        1, 0, 'g', 7, 0, 'd', 'e', 'f', 'a', 'u', 'l', 't', 0, /* group, queue, not keyed */
        1, 0, 0, 0, 'x',                       /* one payload */
    };
    framed_record_stops_open(*state, rec, sizeof(rec));
}

static void
test_second_open_of_a_directory_fails(void **state)
{
    struct fix *f = *state;
    char why[512];

    start(f);
    assert_int_equal(push1(f->b, "g", NULL, "p"), 1);
    struct broker *b2 = fake_broker(&f->cfg, fake_now);
    log_level = LOG_OFF;
    assert_int_equal(journal_open(b2, &f->jc, why, sizeof(why)), SL_EIO);
    assert_null(b2->jr);
    assert_non_null(strstr(why, "LOCK"));
    assert_non_null(strstr(why, "another broker is using this data directory"));
    assert_int_equal(b2->jobs, 0);
    broker_free(b2);
    /* The first goes on; once it is closed the directory opens again. */
    assert_int_equal(push1(f->b, "g", NULL, "q"), 2);
    restart_same(f);
    assert_int_equal(f->b->jobs, 2);
}


/* --- the change path ------------------------------------------------------------------------ */

struct seen {
    char kinds[64];
    size_t n;
};

static void
note_change(const struct change *c, void *arg)
{
    static const char letter[CH_KINDS] = { [CH_PUSH] = 'P', [CH_JOB] = 'J', [CH_JOB_FIELDS] = 'F',
                                           [CH_JOB_GONE] = 'G', [CH_QUEUE] = 'Q',
                                           [CH_QUEUE_GONE] = 'D', [CH_ROUTE] = 'R',
                                           [CH_GROUP_WEIGHT] = 'W', [CH_FLUSH] = 'X' };
    struct seen *s = arg;
    if (s->n + 1 < sizeof(s->kinds)) {
        s->kinds[s->n++] = letter[c->kind];
        s->kinds[s->n] = '\0';
    }
}

/* Every state change reaches a consumer once, in order; replay reaches none. */
static void
test_changes_feed_each_consumer_once(void **state)
{
    struct fix *f = *state;
    struct seen seen = { "", 0 };
    start(f);
    struct broker *b = f->b;
    b->change_hook = note_change;
    b->change_arg = &seen;
    queue_create(b, "q1", -1, -1, -1);                 /* Q */
    push1(b, "g", NULL, "a");                           /* P */
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "route.set");
    wire_set_cstr(&req, WK_GROUP, "g");
    wire_set_cstr(&req, WK_QUEUE, "q1");
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);    /* R */
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.weight");
    wire_set_cstr(&req, WK_GROUP, "g");
    wire_set_num(&req, WK_WEIGHT, 2);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);    /* W */
    uint64_t id = reserve1(b, "w1", 7);                 /* J */
    assert_int_equal(by_id(b, "ack", id, 0), 1);        /* G */
    push1(b, "g", NULL, "b");                           /* P */
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "flush");
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);    /* X */
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.destroy");
    wire_set_cstr(&req, WK_NAME, "q1");
    wire_set_bool(&req, WK_FORCE, true);
    assert_int_equal(call(b, &req, WK_OK, NULL), 0);    /* D */
    assert_string_equal(seen.kinds, "QPRWJGPXD");
    /* Replayed, the same history feeds nothing: only the new segment's upkeep is new. */
    stop(f);
    seen.n = 0;
    seen.kinds[0] = '\0';
    f->b = fake_broker(&f->cfg, fake_now);
    f->b->change_hook = note_change;
    f->b->change_arg = &seen;
    char why[256];
    assert_int_equal(journal_open(f->b, &f->jc, why, sizeof(why)), 0);
    assert_string_equal(seen.kinds, "");
    assert_int_equal(f->b->jobs, 1);
    f->b->change_hook = NULL; /* seen lives on this stack */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pushes_replay_with_ids_payloads_and_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ack_and_nack_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_keys_hold_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_push_replays_with_its_due_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dead_retry_and_purge_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_and_ttr_expiry_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_connection_replays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_job_comes_back_ready_at_head, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_handed_back_follows_a_later_route_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_handed_back_follows_a_later_flush, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_settings_and_routes_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orders_and_weights_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_feed_each_consumer_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_and_purge_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyed_push_is_a_dup_after_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_roll_and_go_once_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lived_jobs_are_compacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_backlog_is_not_copied_forward, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_queue_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_stops_open_unless_repair, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut_and_whole_records_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_segment_before_the_last_is_corruption, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_newest_segment_shorter_than_its_header_is_removed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_segment_shorter_than_its_header_stops_open,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_temporary_file_of_a_cut_creation_is_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_record_stops_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_with_a_bad_name_stops_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_with_a_time_out_of_range_stops_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_job_record_with_a_bad_state_stops_open_for_any_job,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_record_reusing_ids_stops_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_ignores_the_new_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_limits_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_a_directory_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
