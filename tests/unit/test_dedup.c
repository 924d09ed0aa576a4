/* Idempotency keys: seen, stale, gaps, per-client, window expiry and the client cap; then,
 * through the dispatcher with a journal, that a repeated key is answered "stored" only once
 * the original's records are durable, and that what is remembered survives a restart. The
 * journal's disk is made slow or failing by this program's own fdatasync, which the writer
 * thread calls instead of libc's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "dedup.h"
#include "jfile.h"
#include "journal.h"
#include "log.h"
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000LL

/* --- the module --------------------------------------------------------------------------- */

static void
test_recorded_key_is_seen_with_first_answer(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 10);
    uint64_t id = 0, lsn = 0;
    uint32_t n = 0;
    (void)state;
    assert_int_equal(dedup_check(d, S("c"), 1, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_record(d, S("c"), 1, 100, 5, 4242, 0), 0);
    assert_int_equal(dedup_check(d, S("c"), 1, SEC, &id, &n, &lsn), DEDUP_SEEN);
    assert_int_equal(id, 100);
    assert_int_equal(n, 5);
    assert_int_equal(lsn, 4242);
    assert_int_equal(dedup_check(d, S("c"), 2, SEC, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("other"), 1, SEC, &id, &n, &lsn), DEDUP_NEW);
    dedup_free(d);
}

static void
test_keys_older_than_the_ring_are_stale(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 10);
    uint64_t id, lsn;
    uint32_t n;
    (void)state;
    for (uint64_t s = 1; s <= DEDUP_RING + 10; s++) {
        assert_int_equal(dedup_record(d, S("c"), s, s * 10, 1, s * 100, 0), 0);
    }
    assert_int_equal(dedup_check(d, S("c"), 1, 0, &id, &n, &lsn), DEDUP_STALE);
    assert_int_equal(id, 0);
    assert_int_equal(n, 0);
    /* It waits for everything the ring let go: seqs 1..10. */
    assert_int_equal(lsn, 10 * 100);
    assert_int_equal(dedup_check(d, S("c"), DEDUP_RING + 10, 0, &id, &n, &lsn), DEDUP_SEEN);
    assert_int_equal(id, (DEDUP_RING + 10) * 10);
    assert_int_equal(lsn, (DEDUP_RING + 10) * 100);
    assert_int_equal(dedup_check(d, S("c"), 11, 0, &id, &n, &lsn), DEDUP_SEEN);
    assert_int_equal(dedup_check(d, S("c"), DEDUP_RING + 11, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("c"), 0, 0, &id, &n, &lsn), DEDUP_NEW);
    dedup_free(d);
}

/* A key older than the ring is stale only if it was stored: a gap stays new, however old,
 * and so do keys below the first one stored and keys far above the last. */
static void
test_a_key_never_stored_is_new_however_old(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 10);
    uint64_t id, lsn;
    uint32_t n;
    (void)state;
    for (uint64_t s = 1000; s <= 1200; s++) {
        if (s != 1050) {
            assert_int_equal(dedup_record(d, S("c"), s, s, 1, 0, 0), 0);
        }
    }
    assert_int_equal(dedup_check(d, S("c"), 1050, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("c"), 1049, 0, &id, &n, &lsn), DEDUP_STALE);
    assert_int_equal(dedup_check(d, S("c"), 1051, 0, &id, &n, &lsn), DEDUP_STALE);
    assert_int_equal(dedup_check(d, S("c"), 1000, 0, &id, &n, &lsn), DEDUP_STALE);
    assert_int_equal(dedup_check(d, S("c"), 999, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("c"), 1, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("c"), 5000, 0, &id, &n, &lsn), DEDUP_NEW);
    /* The gap filled later joins the two runs. */
    assert_int_equal(dedup_record(d, S("c"), 1050, 7, 1, 0, 0), 0);
    assert_int_equal(dedup_check(d, S("c"), 1050, 0, &id, &n, &lsn), DEDUP_SEEN);
    assert_int_equal(id, 7);
    dedup_free(d);
}

struct seen {
    char text[4096];
    size_t len;
};

static void
seen_range(void *arg, struct sl_str client, uint64_t lo, uint64_t hi, int64_t last_ns)
{
    struct seen *s = arg;
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "%.*s:%llu-%llu@%lld ",
                               (int)client.n, client.p, (unsigned long long)lo,
                               (unsigned long long)hi, (long long)last_ns);
}

static void
seen_key(void *arg, struct sl_str client, uint64_t seq, uint64_t first_id, uint32_t n,
         int64_t last_ns)
{
    struct seen *s = arg;
    s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len,
                               "%.*s:%llu=%llu+%u@%lld ", (int)client.n, client.p,
                               (unsigned long long)seq, (unsigned long long)first_id, n,
                               (long long)last_ns);
}

/* Runs of stored seqs merge when they meet; past DEDUP_RANGES runs the lowest other than the
 * one just extended is forgotten, with the ring's answers for its keys; foreach lists each
 * client's runs, then its keys, clients least recent first. */
static void
test_runs_merge_and_the_lowest_go_first(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 10);
    uint64_t id, lsn;
    uint32_t n;
    (void)state;
    /* 1, 3, 5, ...: one run more than are kept. */
    for (uint64_t s = 1; s <= 2 * DEDUP_RANGES + 1; s += 2) {
        assert_int_equal(dedup_record(d, S("c"), s, s * 10, 1, 0, 0), 0);
    }
    /* Still in the ring, but its run is gone: not remembered at all. */
    assert_int_equal(dedup_check(d, S("c"), 1, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("c"), 3, 0, &id, &n, &lsn), DEDUP_SEEN);
    assert_int_equal(id, 30);
    assert_int_equal(dedup_check(d, S("c"), 4, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("c"), 2 * DEDUP_RANGES + 1, 0, &id, &n, &lsn),
                     DEDUP_SEEN);
    /* A run below all the others is kept; the lowest of the others goes. */
    assert_int_equal(dedup_record_stored(d, S("c"), 1, 1, 0), 0);
    assert_int_equal(dedup_check(d, S("c"), 1, 0, &id, &n, &lsn), DEDUP_STALE);
    assert_int_equal(lsn, 0);
    assert_int_equal(dedup_check(d, S("c"), 3, 0, &id, &n, &lsn), DEDUP_NEW);
    /* One touching a kept run joins it... */
    assert_int_equal(dedup_record_stored(d, S("c"), 2, 2, 0), 0);
    assert_int_equal(dedup_check(d, S("c"), 2, 0, &id, &n, &lsn), DEDUP_STALE);
    /* ...and one over the gaps makes a single run. */
    assert_int_equal(dedup_record_stored(d, S("c"), 4, 2 * DEDUP_RANGES, 0), 0);
    assert_int_equal(dedup_record_stored(d, S("c"), 100, UINT64_MAX, 0), 0);
    assert_int_equal(dedup_record(d, S("c"), 99, 5, 2, 0, 1), 0);
    assert_int_equal(dedup_record(d, S("b"), 7, 9, 1, 0, 2), 0);
    struct seen s = { "", 0 };
    dedup_foreach(d, seen_range, seen_key, &s);
    assert_string_equal(s.text, "c:1-2@1 c:4-33@1 c:99-18446744073709551615@1 "
                                "c:5=50+1@1 c:7=70+1@1 c:9=90+1@1 c:11=110+1@1 c:13=130+1@1 "
                                "c:15=150+1@1 c:17=170+1@1 c:19=190+1@1 c:21=210+1@1 "
                                "c:23=230+1@1 c:25=250+1@1 c:27=270+1@1 c:29=290+1@1 "
                                "c:31=310+1@1 c:33=330+1@1 c:99=5+2@1 b:7-7@2 b:7=9+1@2 ");
    assert_int_equal(dedup_check(d, S("c"), 3, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("c"), 50, 0, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("c"), UINT64_MAX, 0, &id, &n, &lsn), DEDUP_STALE);
    dedup_free(d);
}

struct copy {
    struct dedup *to;
};

static void
copy_range(void *arg, struct sl_str client, uint64_t lo, uint64_t hi, int64_t last_ns)
{
    struct copy *c = arg;
    assert_int_equal(dedup_record_stored(c->to, client, lo, hi, last_ns), 0);
}

static void
copy_key(void *arg, struct sl_str client, uint64_t seq, uint64_t first_id, uint32_t n,
         int64_t last_ns)
{
    struct copy *c = arg;
    assert_int_equal(dedup_record(c->to, client, seq, first_id, n, 0, last_ns), 0);
}

/* What foreach lists, recorded again in its order (as the journal's snapshot is replayed),
 * remembers exactly the same keys, also after more runs than are kept were forgotten. */
static void
test_foreach_rebuilds_the_same_keys(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 10), *e = dedup_new(600 * SEC, 10);
    (void)state;
    /* Gaps every third key, more of them than runs are kept, and keys recorded out of order. */
    for (uint64_t s = 1; s <= 200; s++) {
        if (s % 3 != 0) {
            assert_int_equal(dedup_record(d, S("c"), s < 100 ? s : 300 - s, s, 1, 0, 0), 0);
        }
    }
    assert_int_equal(dedup_record(d, S("x"), 5, 1, 1, 0, 1), 0);
    struct copy c = { e };
    dedup_foreach(d, copy_range, copy_key, &c);
    for (uint64_t s = 0; s <= 310; s++) {
        uint64_t id1 = 0, id2 = 0, l1, l2;
        uint32_t n1 = 0, n2 = 0;
        enum dedup_verdict v1 = dedup_check(d, S("c"), s, 2, &id1, &n1, &l1);
        enum dedup_verdict v2 = dedup_check(e, S("c"), s, 2, &id2, &n2, &l2);
        if (v1 != v2 || id1 != id2 || n1 != n2) {
            fail_msg("seq %llu: %d (%llu+%u) before, %d (%llu+%u) rebuilt", (unsigned long long)s,
                     (int)v1, (unsigned long long)id1, n1, (int)v2, (unsigned long long)id2, n2);
        }
    }
    struct seen s1 = { "", 0 }, s2 = { "", 0 };
    dedup_foreach(d, seen_range, seen_key, &s1);
    dedup_foreach(e, seen_range, seen_key, &s2);
    assert_string_equal(s1.text, s2.text);
    dedup_free(d);
    dedup_free(e);
}

static void
test_idle_client_is_forgotten_after_window(void **state)
{
    struct dedup *d = dedup_new(10 * SEC, 10);
    uint64_t id, lsn;
    uint32_t n;
    (void)state;
    assert_int_equal(dedup_record(d, S("c"), 1, 1, 1, 0, 0), 0);
    assert_int_equal(dedup_check(d, S("c"), 1, 10 * SEC, &id, &n, &lsn), DEDUP_SEEN);
    assert_int_equal(dedup_check(d, S("c"), 1, 11 * SEC, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_clients(d), 0);
    dedup_free(d);
}

static void
test_client_cap_forgets_least_recently_used(void **state)
{
    struct dedup *d = dedup_new(600 * SEC, 3);
    uint64_t id, lsn;
    uint32_t n;
    (void)state;
    assert_int_equal(dedup_record(d, S("a"), 1, 1, 1, 0, 0), 0);
    assert_int_equal(dedup_record(d, S("b"), 1, 2, 1, 0, 1), 0);
    assert_int_equal(dedup_record(d, S("c"), 1, 3, 1, 0, 2), 0);
    assert_int_equal(dedup_record(d, S("a"), 2, 4, 1, 0, 3), 0); /* a is now the most recent */
    assert_int_equal(dedup_record(d, S("d"), 1, 5, 1, 0, 4), 0); /* evicts b */
    assert_int_equal(dedup_clients(d), 3);
    assert_int_equal(dedup_check(d, S("b"), 1, 5, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("a"), 1, 5, &id, &n, &lsn), DEDUP_SEEN);
    assert_int_equal(dedup_check(d, S("c"), 1, 5, &id, &n, &lsn), DEDUP_SEEN);
    assert_int_equal(dedup_record_stored(d, S("e"), 1, 9, 5), 0); /* evicts c */
    assert_int_equal(dedup_check(d, S("c"), 1, 5, &id, &n, &lsn), DEDUP_NEW);
    assert_int_equal(dedup_check(d, S("e"), 9, 5, &id, &n, &lsn), DEDUP_STALE);
    dedup_free(d);
}

/* --- through the dispatcher, with a journal ----------------------------------------------- */

static pthread_mutex_t disk_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t disk_cond = PTHREAD_COND_INITIALIZER;
static bool disk_held;  /* fdatasync waits while set: a slow disk */
static int disk_errno;  /* fdatasync fails with it while non-zero */

/* Stands in for libc's in this program: the journal's writer syncs through it. */
int
fdatasync(int fd)
{
    pthread_mutex_lock(&disk_mtx);
    while (disk_held) {
        pthread_cond_wait(&disk_cond, &disk_mtx);
    }
    int e = disk_errno;
    pthread_mutex_unlock(&disk_mtx);
    if (e != 0) {
        errno = e;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

static void
disk_set(bool held, int err)
{
    pthread_mutex_lock(&disk_mtx);
    disk_held = held;
    disk_errno = err;
    pthread_cond_broadcast(&disk_cond);
    pthread_mutex_unlock(&disk_mtx);
}

struct fix {
    char dir[256];
    struct broker_cfg cfg;
    struct journal_cfg jc;
    struct broker *b;
};

static int
jsetup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (f == NULL || tmpdir_make(f->dir, sizeof(f->dir), "dedup") != 0) {
        free(f);
        return -1;
    }
    broker_cfg_default(&f->cfg);
    log_level = LOG_ERROR + 1; /* the failures these tests cause are not news */
    f->jc = (struct journal_cfg){ .dir = f->dir, .fsync = JOURNAL_ALWAYS, .segment_bytes = 64u << 20 };
    disk_set(false, 0);
    *state = f;
    return 0;
}

static int
jteardown(void **state)
{
    struct fix *f = *state;

    disk_set(false, 0);
    if (f->b != NULL) {
        journal_close(f->b);
        broker_free(f->b);
    }
    int rv = tmpdir_remove(f->dir);
    free(f);
    return rv;
}

static void
start(struct fix *f)
{
    f->b = journal_broker(&f->cfg, &f->jc, 1700000000000LL * MS);
}

static void
stop(struct fix *f)
{
    journal_close(f->b);
    broker_free(f->b);
    f->b = NULL;
}

/* A request as the server hands it over: with a waiter, so a reply held for the journal is
 * sent later, from the writer thread, through got_reply. */
struct call {
    struct waiter wt;          /* first: got_reply finds the call from it */
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    int rv;                    /* what ops_handle returned */
    bool answered;
    nng_msg *rep;
    struct wire_msg m;         /* the reply, decoded by answer() */
};

static void
got_reply(struct waiter *wt)
{
    struct call *c = (struct call *)wt;
    pthread_mutex_lock(&c->mtx);
    c->rep = wt->rep;
    wt->rep = NULL;
    c->answered = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mtx);
}

/* Sends push (group, one payload, key client/seq) through the dispatcher. */
static void
push_keyed(struct broker *b, struct call *c, const char *group, const char *client,
           uint64_t seq)
{
    struct wire_msg req;
    struct sl_str pl[1] = { S("payload") };
    nng_msg *q, *r;
    msgpack_packer pk;

    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mtx, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->wt.send = got_reply;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_strs(&req, WK_PAYLOADS, pl, 1);
    wire_set_cstr(&req, WK_CLIENT, client);
    wire_set_u64(&req, WK_SEQ, seq);
    assert_int_equal(nng_msg_alloc(&q, 0), 0);
    assert_int_equal(nng_msg_alloc(&r, 0), 0);
    msgpack_packer_init(&pk, q, wire_pack_into_msg);
    assert_int_equal(wire_encode(&req, &pk), 0);
    c->rv = ops_handle(b, nng_msg_body(q), nng_msg_len(q), 0, r, &c->wt);
    nng_msg_free(q);
    if (c->rv == OPS_PARKED) {
        assert_true(c->wt.took_rep); /* a push parks only to wait for the journal */
        return;
    }
    got_reply(&c->wt);
    c->rep = r;
}

/* Whether c was answered already (without waiting). */
static bool
answered(struct call *c)
{
    pthread_mutex_lock(&c->mtx);
    bool a = c->answered;
    pthread_mutex_unlock(&c->mtx);
    return a;
}

/* Waits (at most 10 s) for c's reply and decodes it into c->m; returns the reply's ok. */
static bool
answer(struct call *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&c->mtx);
    while (!c->answered) {
        if (pthread_cond_timedwait(&c->cond, &c->mtx, &ts) != 0) {
            break;
        }
    }
    bool a = c->answered;
    pthread_mutex_unlock(&c->mtx);
    assert_true(a);
    wire_msg_init(&c->m);
    assert_int_equal(wire_decode(&c->m, nng_msg_body(c->rep), nng_msg_len(c->rep), NULL, 0), 0);
    assert_true(WIRE_HAS(&c->m, WK_OK));
    return c->m.v[WK_OK].b;
}

static void
call_fini(struct call *c)
{
    wire_msg_fini(&c->m);
    nng_msg_free(c->rep);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mtx);
}

static bool
reply_bool(const struct call *c, enum wire_key k)
{
    return WIRE_HAS(&c->m, k) && c->m.v[k].b;
}

static uint64_t
held_jobs(struct broker *b)
{
    pthread_mutex_lock(&b->lock);
    uint64_t n = b->jobs;
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* The original push waits in fdatasync; its key sent again is not answered "stored" before
 * the original is durable, and is answered so once it is. */
static void
test_repeat_waits_until_the_original_is_durable(void **state)
{
    struct fix *f = *state;
    struct call orig, again, third;

    start(f);
    disk_set(true, 0);
    push_keyed(f->b, &orig, "alice", "X", 1);
    assert_int_equal(orig.rv, OPS_PARKED);
    push_keyed(f->b, &again, "bob", "X", 1);
    assert_int_equal(again.rv, OPS_PARKED); /* held, like the original */
    assert_false(answered(&again));
    assert_int_equal(held_jobs(f->b), 1);
    disk_set(false, 0);

    assert_true(answer(&orig));
    assert_false(reply_bool(&orig, WK_DUP));
    assert_int_equal(orig.m.v[WK_FIRST_ID].u, 1);
    assert_true(answer(&again));
    assert_true(reply_bool(&again, WK_DUP));
    assert_int_equal(again.m.v[WK_FIRST_ID].u, 1);
    assert_int_equal(again.m.v[WK_N].u, 1);
    /* Once the original is durable a repeat needs no wait. */
    push_keyed(f->b, &third, "bob", "X", 1);
    assert_int_equal(third.rv, 0);
    assert_true(answer(&third));
    assert_true(reply_bool(&third, WK_DUP));
    assert_int_equal(held_jobs(f->b), 1);
    call_fini(&orig);
    call_fini(&again);
    call_fini(&third);
}

/* The original's write fails: neither it nor its repeat is confirmed, a repeat while the
 * journal cannot be written is refused, and once the journal has written the kept push a
 * repeat is a dup of it, which a restart keeps. */
static void
test_repeat_of_a_push_whose_write_failed_is_not_stored(void **state)
{
    struct fix *f = *state;
    struct call orig, again, refused, later;
    char why[256];

    start(f);
    disk_set(true, 0);
    push_keyed(f->b, &orig, "alice", "X", 1);
    assert_int_equal(orig.rv, OPS_PARKED);
    push_keyed(f->b, &again, "bob", "X", 1);
    assert_int_equal(again.rv, OPS_PARKED);
    disk_set(false, EIO);
    assert_false(answer(&orig));
    assert_true(sl_str_eq(orig.m.v[WK_ERR].s, "io"));
    assert_false(answer(&again));
    assert_true(sl_str_eq(again.m.v[WK_ERR].s, "io"));
    push_keyed(f->b, &refused, "bob", "X", 1);
    assert_false(answer(&refused));
    assert_true(sl_str_eq(refused.m.v[WK_ERR].s, "io"));

    /* The disk comes back; the writer tries again within a second or so. */
    disk_set(false, 0);
    for (int i = 0; i < 1000 && journal_broken(f->b->jr, why, sizeof(why)); i++) {
        usleep(10000);
    }
    assert_false(journal_broken(f->b->jr, why, sizeof(why)));
    push_keyed(f->b, &later, "bob", "X", 1);
    assert_true(answer(&later));
    assert_true(reply_bool(&later, WK_DUP));
    assert_int_equal(later.m.v[WK_FIRST_ID].u, 1);
    assert_int_equal(held_jobs(f->b), 1);
    stop(f);
    start(f);
    assert_int_equal(held_jobs(f->b), 1);
    call_fini(&orig);
    call_fini(&again);
    call_fini(&refused);
    call_fini(&later);
}

/* A key the ring has let go (stale) waits too: for every key its client's ring let go. */
static void
test_stale_repeat_waits_until_the_original_is_durable(void **state)
{
    struct fix *f = *state;
    enum { N = DEDUP_RING + 1 };
    struct call *calls = calloc(N, sizeof(*calls)), again;

    assert_non_null(calls);
    start(f);
    disk_set(true, 0);
    for (uint64_t s = 1; s <= N; s++) {
        push_keyed(f->b, &calls[s - 1], "g", "Y", s);
        assert_int_equal(calls[s - 1].rv, OPS_PARKED);
    }
    push_keyed(f->b, &again, "g", "Y", 1);
    assert_int_equal(again.rv, OPS_PARKED);
    assert_false(answered(&again));
    disk_set(false, 0);
    assert_true(answer(&again));
    assert_true(reply_bool(&again, WK_DUP));
    assert_true(reply_bool(&again, WK_STALE));
    assert_false(WIRE_HAS(&again.m, WK_N));
    assert_false(WIRE_HAS(&again.m, WK_FIRST_ID));
    for (uint64_t s = 1; s <= N; s++) {
        assert_true(answer(&calls[s - 1]));
        call_fini(&calls[s - 1]);
    }
    assert_int_equal(held_jobs(f->b), N);
    call_fini(&again);
    free(calls);
}

/* The runs of stored keys live on in each segment's snapshot: once the segments holding the
 * pushes are gone, a restarted broker still knows keys far older than the ring. */
static void
test_stored_runs_survive_restart_without_their_pushes(void **state)
{
    struct fix *f = *state;
    struct call c;
    char big[2048];
    struct sl_str pl[1] = { { big, sizeof(big) } };
    uint64_t purged = 0;

    memset(big, 'x', sizeof(big));
    f->jc.segment_bytes = 64u << 10;
    start(f);
    for (uint64_t s = 1; s <= 100; s++) {
        struct wire_msg req, rep;
        nng_msg *keep;
        wire_msg_init(&req);
        wire_set_cstr(&req, WK_OP, "push");
        wire_set_cstr(&req, WK_GROUP, "g");
        wire_set_strs(&req, WK_PAYLOADS, pl, 1);
        wire_set_cstr(&req, WK_CLIENT, "Z");
        wire_set_u64(&req, WK_SEQ, s);
        assert_int_equal(request(f->b, &req, &rep, &keep), 0);
        wire_msg_fini(&rep);
        nng_msg_free(keep);
    }
    pthread_mutex_lock(&f->b->lock);
    struct sl_str g = S("g");
    assert_int_equal(broker_purge(f->b, NULL, &g, &purged), 0);
    journal_op_end(f->b);
    pthread_mutex_unlock(&f->b->lock);
    assert_int_equal(purged, 100);
    /* The writer deletes the emptied segments once the purge is on disk. */
    for (int i = 0; i < 1000 && has_segment(f->dir, 1); i++) {
        usleep(10000);
    }
    assert_false(has_segment(f->dir, 1));
    stop(f);
    start(f);

    push_keyed(f->b, &c, "g", "Z", 1);
    assert_true(answer(&c));
    assert_true(reply_bool(&c, WK_DUP));
    assert_true(reply_bool(&c, WK_STALE));
    call_fini(&c);
    push_keyed(f->b, &c, "g", "Z", 100);
    assert_true(answer(&c));
    assert_true(reply_bool(&c, WK_DUP));
    assert_false(reply_bool(&c, WK_STALE));
    call_fini(&c);
    assert_int_equal(held_jobs(f->b), 0);
    push_keyed(f->b, &c, "g", "Z", 101);
    assert_true(answer(&c));
    assert_false(reply_bool(&c, WK_DUP));
    call_fini(&c);
    assert_int_equal(held_jobs(f->b), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded_key_is_seen_with_first_answer),
        cmocka_unit_test(test_keys_older_than_the_ring_are_stale),
        cmocka_unit_test(test_a_key_never_stored_is_new_however_old),
        cmocka_unit_test(test_runs_merge_and_the_lowest_go_first),
        cmocka_unit_test(test_foreach_rebuilds_the_same_keys),
        cmocka_unit_test(test_idle_client_is_forgotten_after_window),
        cmocka_unit_test(test_client_cap_forgets_least_recently_used),
        cmocka_unit_test_setup_teardown(test_repeat_waits_until_the_original_is_durable, jsetup,
                                        jteardown),
        cmocka_unit_test_setup_teardown(test_repeat_of_a_push_whose_write_failed_is_not_stored,
                                        jsetup, jteardown),
        cmocka_unit_test_setup_teardown(test_stale_repeat_waits_until_the_original_is_durable,
                                        jsetup, jteardown),
        cmocka_unit_test_setup_teardown(test_stored_runs_survive_restart_without_their_pushes,
                                        jsetup, jteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
