/* Writes the seed corpora of the fuzz targets: `make fuzz-corpus` runs it as
 * `mkcorpus fuzz/corpus`, replacing the files of DIR/TARGET for each target. The output depends on nothing but this file and the code it calls (a fake
 * clock everywhere), so running it again changes a seed only when the wire or the journal
 * did. The seeds are small on purpose: the fuzzer mutates them, and small inputs run fast.
 *
 *   fuzz_request  one valid request of every op, requests that fail in each way the broker
 *                 answers, sequences (a parked reserve served by a push, a TTR expiring,
 *                 a delay ending), and malformed bodies
 *   (the next two in mkcorpus_req.c)
 *   fuzz_request_journal  the same, and sequences with restarts (a nil value) between
 *                 changes of every kind, and pushes that fill several segments
 *   fuzz_request_token  the same with the token in each request, and a ping and a push
 *                 with no token, a wrong one, a prefix, one of each other type, two
 *   fuzz_journal  segments written by the real journal: a run of every change it records,
 *                 across several segments, raw (as on disk) and framed (fuzz_journal.c);
 *                 a torn tail; damage in the middle, with and without repair
 *   fuzz_frame    pipe handlers' answers: good ones, several at once, and each failure of
 *                 PROTOCOL.md's "Pipe handlers" */
#include "fuzz.h"
#include "fuzz_base.h"
#include "mkcorpus.h"

#include "broker.h"
#include "frame.h"
#include "jfile.h"
#include "journal.h"
#include "log.h"
#include "ops.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char out_dir[PATH_MAX / 2];
static unsigned written;

/* --- files ---------------------------------------------------------------------------------- */

static void
make_empty_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mkcorpus: %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    DIR *d = opendir(dir);
    FUZZ_CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            FUZZ_CHECK(unlink(p) == 0);
        }
    }
    closedir(d);
}

void
save_one(const char *target, const char *name, const void *p, size_t n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "mkcorpus: cannot write %s\n", path);
        exit(1);
    }
    written++;
}

/* A fuzz_request seed is also one of fuzz_request_journal, as it is, and one of
 * fuzz_request_token, with the token in each request. */
static void
save(const char *target, const char *name, const void *p, size_t n)
{
    save_one(target, name, p, n);
    if (strcmp(target, "fuzz_request") == 0) {
        nng_msg *m;
        save_one("fuzz_request_journal", name, p, n);
        with_token(p, n, &m);
        save_one("fuzz_request_token", name, nng_msg_body(m), nng_msg_len(m));
        nng_msg_free(m);
    }
}

/* --- fuzz_request --------------------------------------------------------------------------- */

msgpack_sbuffer req_seq;

void
req_begin(struct wire_msg *m, const char *op)
{
    wire_msg_init(m);
    wire_set_cstr(m, WK_OP, op);
}

void
req_add(const struct wire_msg *m)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &req_seq, msgpack_sbuffer_write);
    FUZZ_CHECK(wire_encode(m, &pk) == 0);
}

static void
req_save(const char *name)
{
    save("fuzz_request", name, req_seq.data, req_seq.size);
    msgpack_sbuffer_clear(&req_seq);
}

/* A request of op with no field but op, saved alone. */
static void
req_bare(const char *op, const char *name)
{
    struct wire_msg m;
    req_begin(&m, op);
    req_add(&m);
    req_save(name);
}

static void
set_payloads(struct wire_msg *m, const struct sl_str *v, uint32_t n)
{
    wire_set_strs(m, WK_PAYLOADS, v, n);
}

static void
requests(void)
{
    static const struct sl_str two[] = { { "x", 1 }, { "yy", 2 } };
    static const struct sl_str one[] = { { "z", 1 } };
    static const struct sl_str names[] = { { "q1", 2 }, { "default", 7 } };
    static const uint64_t five[] = { 5 }, four[] = { 4 }, many[] = { 1, 5, 9, 4, 77 };
    static char big[4097];
    struct wire_msg m;

    msgpack_sbuffer_init(&req_seq);
    req_bare("ping", "ping");
    req_bare("stats", "stats");
    req_bare("queue.list", "queue.list");
    req_bare("route.list", "route.list");
    req_bare("flush", "flush");
    req_bare("dead.list", "dead.list");
    req_bare("pool.status", "pool.status");

    req_begin(&m, "push");
    wire_set_cstr(&m, WK_GROUP, "alice");
    set_payloads(&m, two, 2);
    req_add(&m);
    req_save("push");
    req_begin(&m, "push");
    wire_set_cstr(&m, WK_GROUP, "erin");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    wire_set_cstr(&m, WK_CLIENT, "c2");
    wire_set_u64(&m, WK_SEQ, 7);
    wire_set_u64(&m, WK_TTR_MS, 100);
    wire_set_u64(&m, WK_MAX_ATTEMPTS, 2);
    set_payloads(&m, one, 1);
    req_add(&m);
    req_save("push-keyed");
    req_begin(&m, "push"); /* the starting state's key again: a duplicate */
    wire_set_cstr(&m, WK_GROUP, "bob");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    wire_set_cstr(&m, WK_CLIENT, "c1");
    wire_set_u64(&m, WK_SEQ, 1);
    set_payloads(&m, two, 2);
    req_add(&m);
    req_save("push-dup");
    memset(big, 'p', sizeof(big));
    struct sl_str bigs = { big, sizeof(big) };
    req_begin(&m, "push");
    wire_set_cstr(&m, WK_GROUP, "alice");
    set_payloads(&m, &bigs, 1);
    req_add(&m);
    req_save("push-too-large");
    req_begin(&m, "push");
    wire_set_cstr(&m, WK_GROUP, "alice");
    wire_set_cstr(&m, WK_QUEUE, "nosuch");
    set_payloads(&m, one, 1);
    req_add(&m);
    req_save("push-no-queue");

    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w3");
    wire_set_u64(&m, WK_MAX, 5);
    wire_set_strs(&m, WK_FROM, names, 2);
    wire_set_u64s(&m, WK_ACK, five, 1);
    wire_set_u64(&m, WK_PID, 42);
    wire_set_cstr(&m, WK_STATE, "busy");
    req_add(&m);
    req_save("reserve");
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w1");
    wire_set_u64(&m, WK_MAX, 3);
    wire_set_u64(&m, WK_WAIT_MS, 1000);
    req_add(&m);
    req_save("reserve-wait");

    req_begin(&m, "ack");
    wire_set_u64s(&m, WK_IDS, many, 5);
    wire_set_cstr(&m, WK_WORKER, "w1");
    req_add(&m);
    req_save("ack");
    req_begin(&m, "nack");
    wire_set_u64s(&m, WK_IDS, five, 1);
    wire_set_u64(&m, WK_DELAY_MS, 500);
    req_add(&m);
    req_save("nack");
    req_begin(&m, "release");
    wire_set_u64s(&m, WK_IDS, many, 5);
    req_add(&m);
    req_save("release");
    req_begin(&m, "touch");
    wire_set_u64s(&m, WK_IDS, five, 1);
    wire_set_u64(&m, WK_TTR_MS, 300);
    wire_set_cstr(&m, WK_WORKER, "w1");
    req_add(&m);
    req_save("touch");

    req_begin(&m, "queue.create");
    wire_set_cstr(&m, WK_NAME, "q3");
    wire_set_u64(&m, WK_PRIORITY, 100);
    wire_set_u64(&m, WK_WEIGHT, 3);
    wire_set_u64(&m, WK_MAX_INFLIGHT, 2);
    wire_set_u64(&m, WK_LEASE, FUZZ_BASE_LEASE);
    wire_set_cstr(&m, WK_REASON, "seed");
    req_add(&m);
    req_save("queue.create");
    req_begin(&m, "queue.create");
    wire_set_cstr(&m, WK_NAME, "q3");
    wire_set_u64(&m, WK_LEASE, 12345);
    req_add(&m);
    req_save("queue.create-stale-lease");
    req_begin(&m, "queue.update");
    wire_set_cstr(&m, WK_NAME, "q2");
    wire_set_u64(&m, WK_PRIORITY, 1);
    wire_set_u64(&m, WK_MAX_INFLIGHT, 0);
    req_add(&m);
    req_save("queue.update");
    req_begin(&m, "queue.destroy");
    wire_set_cstr(&m, WK_NAME, "q2");
    wire_set_bool(&m, WK_FORCE, true);
    req_add(&m);
    req_save("queue.destroy");
    req_begin(&m, "queue.destroy");
    wire_set_cstr(&m, WK_NAME, "default");
    req_add(&m);
    req_save("queue.destroy-default");
    req_begin(&m, "queue.pause");
    wire_set_cstr(&m, WK_NAME, "q1");
    req_add(&m);
    req_save("queue.pause");
    req_begin(&m, "queue.resume");
    wire_set_cstr(&m, WK_NAME, "slow");
    req_add(&m);
    req_save("queue.resume");

    req_begin(&m, "route.set");
    wire_set_cstr(&m, WK_GROUP, "alice");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    wire_set_cstr(&m, WK_REASON, "count 4 > high 3");
    req_add(&m);
    req_save("route.set");
    req_begin(&m, "route.unset");
    wire_set_cstr(&m, WK_GROUP, "carol");
    req_add(&m);
    req_save("route.unset");

    req_begin(&m, "purge");
    wire_set_cstr(&m, WK_QUEUE, "default");
    wire_set_cstr(&m, WK_GROUP, "alice");
    req_add(&m);
    req_save("purge");
    req_bare("purge", "purge-nothing-selected");

    req_begin(&m, "dead.retry");
    wire_set_u64s(&m, WK_IDS, four, 1);
    req_add(&m);
    req_save("dead.retry");
    req_begin(&m, "dead.retry");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    req_add(&m);
    req_save("dead.retry-queue");
    req_begin(&m, "dead.purge");
    wire_set_cstr(&m, WK_GROUP, "bob");
    req_add(&m);
    req_save("dead.purge");
    req_begin(&m, "dead.list");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    wire_set_u64(&m, WK_MAX, 1);
    req_add(&m);
    req_save("dead.list-queue");

    req_begin(&m, "hello");
    wire_set_cstr(&m, WK_WORKER, "w9");
    wire_set_u64(&m, WK_PID, 99);
    wire_set_cstr(&m, WK_STATE, "idle");
    req_add(&m);
    req_save("hello");
    req_begin(&m, "heartbeat");
    wire_set_cstr(&m, WK_WORKER, "w1");
    wire_set_cstr(&m, WK_STATE, "draining");
    wire_set_u64(&m, WK_RSS_BYTES, 1u << 20);
    wire_set_u64(&m, WK_CURRENT, 5);
    req_add(&m);
    req_save("heartbeat");

    req_begin(&m, "lease.acquire");
    wire_set_cstr(&m, WK_NAME, "router:2");
    wire_set_u64(&m, WK_TTL_MS, 1000);
    req_add(&m);
    req_save("lease.acquire-held");
    req_begin(&m, "lease.renew");
    wire_set_cstr(&m, WK_NAME, "router:1");
    wire_set_u64(&m, WK_LEASE, FUZZ_BASE_LEASE);
    wire_set_u64(&m, WK_TTL_MS, 2000);
    wire_set_u64(&m, WK_HIGH, 1);
    req_add(&m);
    req_save("lease.renew");
    req_begin(&m, "lease.release");
    wire_set_cstr(&m, WK_NAME, "router:1");
    wire_set_u64(&m, WK_LEASE, FUZZ_BASE_LEASE);
    req_add(&m);
    req_save("lease.release");
    req_begin(&m, "pool.scale");
    wire_set_u64(&m, WK_N, 3);
    req_add(&m);
    req_save("pool.scale");

    /* Sequences. A reserve parks, a push serves it. */
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w5");
    wire_set_u64(&m, WK_WAIT_MS, 5000);
    wire_set_strs(&m, WK_FROM, &names[0], 1);
    req_add(&m);
    req_begin(&m, "push");
    wire_set_cstr(&m, WK_GROUP, "frank");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    set_payloads(&m, one, 1);
    req_add(&m);
    req_save("seq-park-then-push");
    /* A short TTR expires while pings pass the time; the job is then dead (1 attempt). */
    req_begin(&m, "push");
    wire_set_cstr(&m, WK_GROUP, "gina");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    wire_set_u64(&m, WK_TTR_MS, 100);
    wire_set_u64(&m, WK_MAX_ATTEMPTS, 1);
    set_payloads(&m, one, 1);
    req_add(&m);
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w1");
    req_add(&m);
    req_begin(&m, "ping");
    req_add(&m);
    req_add(&m);
    req_begin(&m, "dead.list");
    req_add(&m);
    req_save("seq-ttr-expires");
    /* A nack with a delay, the delay ending, the job reserved again. */
    req_begin(&m, "nack");
    wire_set_u64s(&m, WK_IDS, five, 1);
    wire_set_u64(&m, WK_DELAY_MS, 400);
    req_add(&m);
    req_begin(&m, "stats");
    req_add(&m);
    req_add(&m);
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w2");
    wire_set_u64(&m, WK_MAX, 10);
    req_add(&m);
    req_save("seq-nack-delay");
    /* A route to a queue that is then destroyed, with jobs in it. */
    req_begin(&m, "route.set");
    wire_set_cstr(&m, WK_GROUP, "alice");
    wire_set_cstr(&m, WK_QUEUE, "q2");
    req_add(&m);
    req_begin(&m, "queue.destroy");
    wire_set_cstr(&m, WK_NAME, "q2");
    wire_set_bool(&m, WK_FORCE, true);
    req_add(&m);
    req_begin(&m, "route.list");
    req_add(&m);
    req_save("seq-route-destroy");
    /* A worker's reservations, then a flush and a purge of everything left. */
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w4");
    wire_set_u64(&m, WK_MAX, 100);
    req_add(&m);
    req_begin(&m, "flush");
    req_add(&m);
    req_begin(&m, "purge");
    wire_set_cstr(&m, WK_QUEUE, "default");
    req_add(&m);
    req_begin(&m, "dead.retry");
    wire_set_cstr(&m, WK_GROUP, "bob");
    req_add(&m);
    req_save("seq-flush-purge");

    /* Malformed bodies. */
    static const uint8_t truncated[] = { 0x82, 0xa2, 'o', 'p', 0xa4, 'p', 'i' };
    static const uint8_t array[] = { 0x91, 0xa4, 'p', 'i', 'n', 'g' };
    static const uint8_t op_int[] = { 0x81, 0xa2, 'o', 'p', 0x07 };
    static const uint8_t huge_count[] = { 0x81, 0xa3, 'i', 'd', 's', 0xdd, 0xff, 0xff, 0xff,
                                          0xff };
    static const uint8_t deep[] = { 0x81, 0xa1, 'x', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                                    0x91, 0x91, 0x91, 0x90 };
    static const uint8_t neg_ids[] = { 0x82, 0xa2, 'o', 'p', 0xa3, 'a', 'c', 'k', 0xa3, 'i',
                                       'd', 's', 0x91, 0xff };
    static const uint8_t trailing[] = { 0x81, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g', 0xc0 };
    static const uint8_t dup_key[] = { 0x82, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g', 0xa2,
                                       'o', 'p', 0xa5, 's', 't', 'a', 't', 's' };
    save("fuzz_request", "bad-empty", "", 0);
    save("fuzz_request", "bad-truncated", truncated, sizeof(truncated));
    save("fuzz_request", "bad-array", array, sizeof(array));
    save("fuzz_request", "bad-op-int", op_int, sizeof(op_int));
    save("fuzz_request", "bad-huge-count", huge_count, sizeof(huge_count));
    save("fuzz_request", "bad-deep", deep, sizeof(deep));
    save("fuzz_request", "bad-negative-id", neg_ids, sizeof(neg_ids));
    save("fuzz_request", "bad-trailing", trailing, sizeof(trailing));
    save("fuzz_request", "bad-duplicate-key", dup_key, sizeof(dup_key));
    req_bare("no.such.op", "bad-unknown-op");
    req_bare("push", "bad-missing-fields");
    char longname[WIRE_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    req_begin(&m, "queue.create");
    wire_set_cstr(&m, WK_NAME, longname);
    req_add(&m);
    req_save("bad-name-too-long");
    req_begin(&m, "route.set");
    wire_set_cstr(&m, WK_GROUP, "a b");
    wire_set_cstr(&m, WK_QUEUE, "q1/..");
    req_add(&m);
    req_save("bad-name-chars");
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w1");
    wire_set_u64(&m, WK_MAX, 100000);
    wire_set_u64(&m, WK_WAIT_MS, 700000);
    req_add(&m);
    req_save("bad-reserve-limits");
    msgpack_sbuffer_destroy(&req_seq);
}

/* --- fuzz_journal --------------------------------------------------------------------------- */

static int64_t jclock_ns;

static int64_t
jclock(void *arg)
{
    (void)arg;
    return jclock_ns;
}

/* A temporary data directory; removed by rm_dir. */
static void
tmp_dir(char *dir, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, cap, "%s/sluice-mkcorpus.XXXXXX", t != NULL && t[0] != '\0' ? t : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
}

static void
rm_dir(const char *dir)
{
    make_empty_dir(dir);
    FUZZ_CHECK(rmdir(dir) == 0);
}

/* Runs the fuzz_request starting state and then reqs (through ops_handle) against a broker
 * journaling into dir, and closes it. */
static void
journal_run(const char *dir, uint64_t segment_bytes, void (*more)(struct broker *))
{
    struct broker_cfg cfg;
    struct broker *b;
    char why[256];

    broker_cfg_default(&cfg);
    cfg.clock = (struct broker_clock){ jclock, jclock, NULL };
    jclock_ns = FUZZ_BASE_START_NS;
    FUZZ_CHECK(broker_new(&b, &cfg) == 0);
    struct journal_cfg jc = { .dir = dir, .fsync = JOURNAL_NEVER, .segment_bytes = segment_bytes };
    if (journal_open(b, &jc, why, sizeof(why)) != 0) {
        fprintf(stderr, "mkcorpus: journal_open: %s\n", why);
        exit(1);
    }
    const struct fuzz_req *base;
    size_t n = fuzz_request_base(&base);
    for (size_t i = 0; i < n; i++) {
        nng_msg *rep;
        FUZZ_CHECK(nng_msg_alloc(&rep, 0) == 0);
        ops_handle(b, base[i].p, base[i].n, base[i].pipe, rep, NULL);
        nng_msg_free(rep);
        jclock_ns += FUZZ_BASE_STEP_MS * 1000000LL;
    }
    if (more != NULL) {
        more(b);
    }
    journal_close(b);
    broker_free(b);
}

/* One request through the dispatcher, built by the caller in m. */
static void
jreq(struct broker *b, const struct wire_msg *m, uint32_t pipe)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    nng_msg *rep;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    FUZZ_CHECK(wire_encode(m, &pk) == 0);
    FUZZ_CHECK(nng_msg_alloc(&rep, 0) == 0);
    ops_handle(b, sb.data, sb.size, pipe, rep, NULL);
    nng_msg_free(rep);
    msgpack_sbuffer_destroy(&sb);
    jclock_ns += FUZZ_BASE_STEP_MS * 1000000LL;
}

/* Every other kind of change the journal records, on top of the starting state. */
static void
journal_more(struct broker *b)
{
    static const struct sl_str pl[] = { { "m1", 2 }, { "m2", 2 }, { "m3", 2 } };
    static const uint64_t two[] = { 2 }, three[] = { 3 }, four[] = { 4 };
    struct wire_msg m;

    req_begin(&m, "queue.update");
    wire_set_cstr(&m, WK_NAME, "q1");
    wire_set_u64(&m, WK_WEIGHT, 7);
    jreq(b, &m, 1);
    req_begin(&m, "push");
    wire_set_cstr(&m, WK_GROUP, "mo");
    wire_set_cstr(&m, WK_CLIENT, "c9");
    wire_set_u64(&m, WK_SEQ, 3);
    set_payloads(&m, pl, 3);
    jreq(b, &m, 1);
    req_begin(&m, "ack");
    wire_set_u64s(&m, WK_IDS, two, 1);
    jreq(b, &m, 1);
    req_begin(&m, "nack");
    wire_set_u64s(&m, WK_IDS, three, 1);
    wire_set_u64(&m, WK_DELAY_MS, 60000);
    jreq(b, &m, 1);
    req_begin(&m, "dead.retry");
    wire_set_u64s(&m, WK_IDS, four, 1);
    jreq(b, &m, 1);
    req_begin(&m, "route.set");
    wire_set_cstr(&m, WK_GROUP, "mo");
    wire_set_cstr(&m, WK_QUEUE, "q1");
    jreq(b, &m, 1);
    req_begin(&m, "queue.create");
    wire_set_cstr(&m, WK_NAME, "gone");
    jreq(b, &m, 1);
    req_begin(&m, "queue.destroy");
    wire_set_cstr(&m, WK_NAME, "gone");
    jreq(b, &m, 1);
    req_begin(&m, "purge");
    wire_set_cstr(&m, WK_GROUP, "dave");
    jreq(b, &m, 1);
    req_begin(&m, "flush");
    jreq(b, &m, 1);
    req_begin(&m, "reserve");
    wire_set_cstr(&m, WK_WORKER, "w7");
    wire_set_u64(&m, WK_MAX, 2);
    jreq(b, &m, 3);
    ops_pipe_closed(b, 3);
}

/* Recurring jobs: entries added, paused, removed, and instants fired (one pushed, one
 * refused for a queue gone) as the timer thread fires them. */
static void
cron_round(struct broker *b)
{
    pthread_mutex_lock(&b->lock);
    cron_tick(b, jclock_ns / 1000000);
    journal_op_end(b);
    pthread_mutex_unlock(&b->lock);
}

static void
journal_cron(struct broker *b)
{
    static const struct sl_str pl[] = { { "c1", 2 } };
    struct wire_msg m;

    cron_round(b); /* the timer thread's first round, as the broker starts */

    req_begin(&m, "queue.create");
    wire_set_cstr(&m, WK_NAME, "cq");
    jreq(b, &m, 1);
    req_begin(&m, "cron.add");
    wire_set_cstr(&m, WK_NAME, "every");
    wire_set_cstr(&m, WK_SCHEDULE, "@every 1s");
    wire_set_cstr(&m, WK_GROUP, "cg");
    set_payloads(&m, pl, 1);
    jreq(b, &m, 1);
    req_begin(&m, "cron.add");
    wire_set_cstr(&m, WK_NAME, "gone");
    wire_set_cstr(&m, WK_SCHEDULE, "@every 2s");
    wire_set_cstr(&m, WK_GROUP, "cg");
    wire_set_cstr(&m, WK_QUEUE, "cq");
    wire_set_cstr(&m, WK_MISSED, "skip");
    set_payloads(&m, pl, 1);
    jreq(b, &m, 1);
    req_begin(&m, "cron.add");
    wire_set_cstr(&m, WK_NAME, "weekdays");
    wire_set_cstr(&m, WK_SCHEDULE, "*/5 9-17 * * mon-fri");
    wire_set_cstr(&m, WK_GROUP, "cg");
    set_payloads(&m, pl, 1);
    jreq(b, &m, 1);
    req_begin(&m, "cron.pause");
    wire_set_cstr(&m, WK_NAME, "weekdays");
    jreq(b, &m, 1);
    req_begin(&m, "queue.destroy");
    wire_set_cstr(&m, WK_NAME, "cq");
    jreq(b, &m, 1);
    jclock_ns += 2000 * 1000000LL;
    cron_round(b);
    req_begin(&m, "cron.remove");
    wire_set_cstr(&m, WK_NAME, "gone");
    jreq(b, &m, 1);
}

/* The segment files of dir in order, concatenated (raw) or as records (framed). */
static void
journal_files(const char *dir, msgpack_sbuffer *raw, msgpack_sbuffer *framed, size_t *nsegs)
{
    uint64_t *seqs;
    size_t n;
    FUZZ_CHECK(jf_list(dir, &seqs, &n) == 0);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct jf_reader r;
        const uint8_t *p;
        uint32_t len;
        FUZZ_CHECK(jf_path(path, sizeof(path), dir, seqs[i]) == 0);
        FUZZ_CHECK(jf_open(&r, path, seqs[i], NULL, 0) == 0);
        msgpack_sbuffer_write(raw, (const char *)r.data, r.size);
        if (i > 0) {
            msgpack_sbuffer_write(framed, "\0\0\0\0", 4); /* the next segment */
        }
        while (jf_next(&r, &p, &len) == JF_RECORD) {
            uint8_t le[4] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                              (uint8_t)(len >> 24) };
            msgpack_sbuffer_write(framed, (const char *)le, 4);
            msgpack_sbuffer_write(framed, (const char *)p, len);
        }
        jf_close(&r);
    }
    free(seqs);
    *nsegs = n;
}

static void
journal_seed(const char *name, uint64_t segment_bytes, void (*more)(struct broker *))
{
    char dir[PATH_MAX], fname[128];
    msgpack_sbuffer raw, framed;
    size_t nsegs;

    tmp_dir(dir, sizeof(dir));
    journal_run(dir, segment_bytes, more);
    msgpack_sbuffer_init(&raw);
    msgpack_sbuffer_init(&framed);
    msgpack_sbuffer_write(&raw, "\0", 1);      /* raw, no repair */
    msgpack_sbuffer_write(&framed, "\2", 1);   /* framed, no repair */
    journal_files(dir, &raw, &framed, &nsegs);
    rm_dir(dir);
    if (nsegs > 4) {
        fprintf(stderr, "mkcorpus: %s: %zu segments (fuzz_journal reads 4)\n", name, nsegs);
        exit(1);
    }
    snprintf(fname, sizeof(fname), "%s-raw", name);
    save("fuzz_journal", fname, raw.data, raw.size);
    snprintf(fname, sizeof(fname), "%s-framed", name);
    save("fuzz_journal", fname, framed.data, framed.size);
    /* A torn tail: the last record cut in half. */
    snprintf(fname, sizeof(fname), "%s-torn", name);
    save("fuzz_journal", fname, raw.data, raw.size - 5);
    /* Damage in the middle: one byte flipped, with and without repair. */
    raw.data[raw.size / 2] ^= 0x55;
    snprintf(fname, sizeof(fname), "%s-corrupt", name);
    save("fuzz_journal", fname, raw.data, raw.size);
    raw.data[0] = 1;
    snprintf(fname, sizeof(fname), "%s-corrupt-repair", name);
    save("fuzz_journal", fname, raw.data, raw.size);
    msgpack_sbuffer_destroy(&raw);
    msgpack_sbuffer_destroy(&framed);
}

/* --- fuzz_frame ----------------------------------------------------------------------------- */

static msgpack_sbuffer frames;

/* Appends a frame holding body[0..n). */
static void
frame_add(const void *body, size_t n)
{
    uint8_t h[4] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    msgpack_sbuffer_write(&frames, (const char *)h, 4);
    msgpack_sbuffer_write(&frames, body, n);
}

/* Appends a frame holding a reply map: id, ok, and msg and delay_ms when given. */
static void
frame_reply(uint64_t id, bool ok, const char *msg, int64_t delay_ms, bool extra)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2 + (msg != NULL) + (delay_ms >= 0) + extra);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint64(&pk, id);
    msgpack_pack_str_with_body(&pk, "ok", 2);
    ok ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    if (msg != NULL) {
        msgpack_pack_str_with_body(&pk, "msg", 3);
        msgpack_pack_str_with_body(&pk, msg, strlen(msg));
    }
    if (delay_ms >= 0) {
        msgpack_pack_str_with_body(&pk, "delay_ms", 8);
        msgpack_pack_uint64(&pk, (uint64_t)delay_ms);
    }
    if (extra) {
        msgpack_pack_int(&pk, 7); /* a key that is no string */
        msgpack_pack_array(&pk, 1);
        msgpack_pack_nil(&pk);
    }
    frame_add(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void
frame_save(const char *name)
{
    save("fuzz_frame", name, frames.data, frames.size);
    msgpack_sbuffer_clear(&frames);
}

static void
frame_seeds(void)
{
    msgpack_sbuffer_init(&frames);
    frame_reply(1, true, NULL, -1, false);
    frame_save("ok");
    frame_reply(42, false, "no such file", 1500, false);
    frame_save("failed-delay");
    frame_reply(7, false, NULL, 100000000000LL, true);
    frame_save("delay-capped-extra-key");
    frame_reply(1, true, NULL, -1, false);
    frame_reply(2, false, "x", 0, false);
    frame_reply(3, true, "", -1, false);
    frame_save("three");
    static char msg[FRAME_MSG_MAX + 10];
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    frame_reply(9, false, msg, -1, false);
    frame_save("msg-cut");
    static const uint8_t too_large[] = { 0x00, 0x01, 0x00, 0x01, 0x81 };
    save("fuzz_frame", "too-large", too_large, sizeof(too_large));
    frame_reply(1, true, NULL, -1, false);
    frames.size -= 3;
    frame_save("cut");
    static const uint8_t not_map[] = { 0, 0, 0, 2, 0x91, 0x01 };
    save("fuzz_frame", "not-a-map", not_map, sizeof(not_map));
    static const uint8_t neg_id[] = { 0, 0, 0, 9, 0x82, 0xa2, 'i', 'd', 0xff, 0xa2, 'o', 'k',
                                      0xc3 };
    save("fuzz_frame", "negative-id", neg_id, sizeof(neg_id));
    static const uint8_t no_ok[] = { 0, 0, 0, 5, 0x81, 0xa2, 'i', 'd', 0x05 };
    save("fuzz_frame", "no-ok", no_ok, sizeof(no_ok));
    static const uint8_t empty_frame[] = { 0, 0, 0, 0 };
    save("fuzz_frame", "empty-frame", empty_frame, sizeof(empty_frame));
    save("fuzz_frame", "short-header", empty_frame, 3);
    msgpack_sbuffer_destroy(&frames);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mkcorpus DIR (e.g. fuzz/corpus)\n");
        return 2;
    }
    log_level = LOG_OFF;
    snprintf(out_dir, sizeof(out_dir), "%s", argv[1]);
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mkcorpus: %s: %s\n", out_dir, strerror(errno));
        return 1;
    }
    static const char *const targets[] = { "fuzz_request", "fuzz_journal", "fuzz_frame",
                                           "fuzz_request_journal", "fuzz_request_token" };
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        char d[PATH_MAX];
        snprintf(d, sizeof(d), "%s/%s", out_dir, targets[i]);
        make_empty_dir(d);
    }
    requests();
    journal_requests();
    token_requests();
    journal_seed("base", 64u << 20, NULL);
    journal_seed("changes", 64u << 20, journal_more);
    journal_seed("cron", 64u << 20, journal_cron);
    journal_seed("segments", 800, journal_more);
    frame_seeds();
    printf("mkcorpus: %u files in %s\n", written, out_dir);
    return 0;
}
