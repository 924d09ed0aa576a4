/* broker/journal_follow: a standby applying a leader's stream. A real journal is written by
 * a leader broker in one private directory; its segments' records are cut into messages as
 * the stream would carry them (at any byte, records split across messages) and given to a
 * standby in another directory, which is then promoted. Also what a leader that died
 * between two messages of one run leaves: a record cut in two and a snapshot cut short,
 * followed by the next leader's epoch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "err.h"
#include "flow.h"
#include "jfile.h"
#include "journal.h"
#include "journal_follow.h"
#include "log.h"
#include "ops.h"
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 (1700000000000LL * MS)
#define R_EPOCH_TYPE 17 /* journal_int.h's R_EPOCH: the record a new leader begins with */

struct fix {
    char lead[150], stand[150];
    struct broker_cfg cfg;
    struct journal_cfg lc, sc;
    struct broker *b;    /* the standby's broker */
    struct follow *f;
    uint64_t seq, lsn;   /* the next message's stream sequence and position */
};

/* One segment's records, framed, as the stream carries them. */
struct segbytes {
    uint8_t *p;
    size_t n;
    size_t first_rec;    /* bytes of its first record, frame included */
};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (f == NULL || tmpdir_make(f->lead, sizeof(f->lead), "follow-lead") != 0 ||
        tmpdir_make(f->stand, sizeof(f->stand), "follow-stand") != 0) {
        free(f);
        return -1;
    }
    broker_cfg_default(&f->cfg);
    log_level = LOG_ERROR;
    f->lc = (struct journal_cfg){ .dir = f->lead, .fsync = JOURNAL_NEVER,
                                  .segment_bytes = 64u << 20 };
    f->sc = f->lc;
    f->sc.dir = f->stand;
    f->seq = 1;
    fake_now = T0;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;
    journal_follow_close(f->f);
    if (f->b != NULL) {
        journal_close(f->b);
        broker_free(f->b);
    }
    /* A standby sets aside what an earlier run left, in stand/prev. */
    char prev[200];
    snprintf(prev, sizeof(prev), "%s/prev", f->stand);
    int rv = access(prev, F_OK) == 0 ? tmpdir_remove(prev) : 0;
    rv |= tmpdir_remove(f->lead) | tmpdir_remove(f->stand);
    free(f);
    return rv;
}

static int
op(struct broker *b, struct wire_msg *req)
{
    struct wire_msg rep;
    nng_msg *keep;
    int rv = request(b, req, &rep, &keep);
    wire_msg_fini(&rep);
    nng_msg_free(keep);
    return rv;
}

static void
push(struct broker *b, const char *group, const char *payload)
{
    struct wire_msg req;
    struct sl_str pl[1] = { { payload, (uint32_t)strlen(payload) } };
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "push");
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_strs(&req, WK_PAYLOADS, pl, 1);
    assert_int_equal(op(b, &req), 0);
}

/* The leader's history: queue q1 (priority 3), group g routed to it with weight 4, three
 * jobs of g; then a restart, so that segment 2 begins with a snapshot holding the queue, the
 * route and the weight, and two more jobs after it. */
static void
lead(struct fix *f)
{
    struct broker *b = journal_broker(&f->cfg, &f->lc, fake_now);
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "queue.create");
    wire_set_cstr(&req, WK_NAME, "q1");
    wire_set_u64(&req, WK_PRIORITY, 3);
    assert_int_equal(op(b, &req), 0);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "route.set");
    wire_set_cstr(&req, WK_GROUP, "g");
    wire_set_cstr(&req, WK_QUEUE, "q1");
    assert_int_equal(op(b, &req), 0);
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "group.weight");
    wire_set_cstr(&req, WK_GROUP, "g");
    wire_set_u64(&req, WK_WEIGHT, 4);
    assert_int_equal(op(b, &req), 0);
    push(b, "g", "a");
    push(b, "g", "b");
    push(b, "g", "c");
    journal_close(b);
    broker_free(b);
    b = journal_broker(&f->cfg, &f->lc, fake_now);
    push(b, "g", "d");
    push(b, "g", "e");
    journal_close(b);
    broker_free(b);
}

/* Segment seq of the leader's journal, without its file header. */
static struct segbytes
segment(struct fix *f, uint64_t seq)
{
    char path[512], why[256];
    struct jf_reader r;
    struct segbytes s = { NULL, 0, 0 };
    assert_int_equal(jf_path(path, sizeof(path), f->lead, seq), 0);
    assert_int_equal(jf_open(&r, path, seq, why, sizeof(why)), 0);
    s.n = r.size - JF_HEADER_SIZE;
    s.p = malloc(s.n);
    assert_non_null(s.p);
    memcpy(s.p, r.data + JF_HEADER_SIZE, s.n);
    const uint8_t *pl;
    uint32_t n;
    assert_int_equal(jf_next(&r, &pl, &n), JF_RECORD);
    s.first_rec = JF_FRAME_SIZE + n;
    jf_close(&r);
    return s;
}

/* A new standby broker following into f->stand. */
static void
standby(struct fix *f)
{
    char why[256] = "";
    f->b = fake_broker(&f->cfg, fake_now);
    int rv = journal_follow_open(&f->f, f->b, &f->sc, why, sizeof(why));
    if (rv != 0) {
        print_error("journal_follow_open: %s\n", why);
    }
    assert_int_equal(rv, 0);
}

/* Gives p[0..n) of segment seg, epoch epoch, in messages of at most chunk bytes. Returns the
 * first error of journal_follow_msg (0: all applied). */
static int
feed(struct fix *f, uint64_t seg, uint64_t epoch, const uint8_t *p, size_t n, size_t chunk)
{
    char why[256] = "";
    for (size_t off = 0; off < n;) {
        size_t k = n - off < chunk ? n - off : chunk;
        struct jstream_msg m = { p + off, k, seg, f->lsn, epoch, f->seq };
        int rv = journal_follow_msg(f->f, &m, why, sizeof(why));
        if (rv != 0) {
            print_message("journal_follow_msg: %s\n", why);
            return rv;
        }
        f->seq++;
        f->lsn += k;
        off += k;
    }
    return 0;
}

static size_t
epoch_record(uint8_t *out, uint64_t epoch)
{
    uint8_t *p = out + JF_FRAME_SIZE;
    p[0] = R_EPOCH_TYPE;
    for (int i = 0; i < 8; i++) {
        p[1 + i] = (uint8_t)(epoch >> (8 * i));
    }
    p[9] = p[10] = 0;
    jf_frame(out, p, 11);
    return JF_FRAME_SIZE + 11;
}

static void
promote(struct fix *f, uint64_t epoch)
{
    char why[256] = "";
    int rv = journal_promote(&f->f, epoch, why, sizeof(why));
    if (rv != 0) {
        print_error("journal_promote: %s\n", why);
    }
    assert_int_equal(rv, 0);
    assert_null(f->f);
    assert_non_null(f->b->jr);
}

/* What the leader held: q1 (priority 3) with g's five jobs, g routed there, weight 4. */
static void
assert_leaders_state(struct broker *b)
{
    struct queue *q = broker_queue_find(b, (struct sl_str){ "q1", 2 });
    assert_non_null(q);
    assert_int_equal(q->priority, 3);
    struct group *g = broker_group_find(b, (struct sl_str){ "g", 1 });
    assert_non_null(g);
    assert_ptr_equal(g->route, q);
    assert_int_equal(g->weight, 4 * GROUP_WEIGHT_ONE);
    assert_int_equal(b->jobs, 5);
    assert_int_equal(q->lists[JOB_READY].n, 5);
}

/* The whole stream, cut at every size from one byte to whole segments: records split across
 * messages are put together; promotion gives the leader's state. */
static void
test_stream_in_any_cut_rebuilds_the_state(void **state)
{
    struct fix *f = *state;
    lead(f);
    struct segbytes s1 = segment(f, 1), s2 = segment(f, 2);
    static const size_t chunks[] = { 1, 7, 64, 1u << 20 };
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        standby(f);
        f->seq = 1;
        f->lsn = 0;
        assert_int_equal(feed(f, 1, 1, s1.p, s1.n, chunks[i]), 0);
        assert_int_equal(feed(f, 2, 1, s2.p, s2.n, chunks[i]), 0);
        promote(f, 2);
        assert_leaders_state(f->b);
        journal_close(f->b);
        broker_free(f->b);
        f->b = NULL;
    }
    free(s1.p);
    free(s2.p);
}

/* A leader with a cron entry that fired twice, restarted (segment 2's snapshot holds the
 * entry) and fired once more; and another entry added then removed. */
static void
lead_cron(struct fix *f)
{
    struct broker *b = journal_broker(&f->cfg, &f->lc, fake_now);
    struct sl_str pl[1] = { S("tick") };
    struct wire_msg req;
    for (int k = 0; k < 2; k++) {
        wire_msg_init(&req);
        wire_set_cstr(&req, WK_OP, "cron.add");
        wire_set_cstr(&req, WK_NAME, k == 0 ? "every" : "gone");
        wire_set_cstr(&req, WK_SCHEDULE, "@every 1s");
        wire_set_cstr(&req, WK_GROUP, "cg");
        wire_set_strs(&req, WK_PAYLOADS, pl, 1);
        assert_int_equal(op(b, &req), 0);
    }
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "cron.remove");
    wire_set_cstr(&req, WK_NAME, "gone");
    assert_int_equal(op(b, &req), 0);
    for (int i = 1; i <= 3; i++) {
        if (i == 3) {
            journal_close(b);
            broker_free(b);
            b = journal_broker(&f->cfg, &f->lc, fake_now);
        }
        fake_now = T0 + i * 1000 * MS;
        pthread_mutex_lock(&b->lock);
        cron_tick(b, fake_now / MS);
        journal_op_end(b);
        pthread_mutex_unlock(&b->lock);
    }
    journal_close(b);
    broker_free(b);
}

/* A standby applies cron entries, removals and fired instants from the stream, jobs and
 * instants alike, and holds them once promoted. */
static void
test_standby_applies_cron_entries_and_fires(void **state)
{
    struct fix *f = *state;
    lead_cron(f);
    struct segbytes s1 = segment(f, 1), s2 = segment(f, 2);
    standby(f);
    assert_int_equal(feed(f, 1, 1, s1.p, s1.n, 7), 0);
    assert_int_equal(feed(f, 2, 1, s2.p, s2.n, 7), 0);
    pthread_mutex_lock(&f->b->lock);
    const struct cron_entry *e = cron_find(f->b, S("every"));
    assert_non_null(e);
    assert_int_equal(e->fired, 3);
    assert_int_equal(e->last_ms, (T0 + 3000 * MS) / MS);
    assert_null(cron_find(f->b, S("gone")));
    assert_int_equal(f->b->jobs, 3);
    pthread_mutex_unlock(&f->b->lock);
    promote(f, 2);
    e = cron_find(f->b, S("every"));
    assert_non_null(e);
    assert_int_equal(e->fired, 3);
    assert_int_equal(f->b->cron.n, 1);
    assert_int_equal(f->b->jobs, 3);
    free(s1.p);
    free(s2.p);
}

/* The old leader died after the first half of a record: the next leader's epoch record
 * follows it in the stream. The half record is dropped (it was never confirmed) and the
 * standby goes on with the new epoch. */
static void
test_record_cut_by_a_new_epoch_is_dropped(void **state)
{
    struct fix *f = *state;
    lead(f);
    struct segbytes s1 = segment(f, 1), s2 = segment(f, 2);
    standby(f);
    assert_int_equal(feed(f, 1, 1, s1.p, s1.n, 100), 0);
    assert_int_equal(feed(f, 2, 1, s2.p, s2.n, 100), 0);
    /* The first 5 bytes of a record (its frame cut short), then the new leader's epoch. */
    assert_int_equal(feed(f, 2, 1, s1.p, 5, 100), 0);
    uint8_t rec[32];
    size_t n = epoch_record(rec, 7);
    assert_int_equal(feed(f, 2, 7, rec, n, 100), 0);
    promote(f, 7);
    assert_leaders_state(f->b);
    free(s1.p);
    free(s2.p);
}

/* The stream begins with a segment whose snapshot its leader did not finish (it died; the
 * older segments were purged since): the new leader's epoch record ends that snapshot, and
 * the next segment's snapshot, complete, is the one that applies. */
static void
test_snapshot_cut_by_a_new_epoch_gives_way_to_the_next(void **state)
{
    struct fix *f = *state;
    lead(f);
    struct segbytes s2 = segment(f, 2);
    standby(f);
    assert_int_equal(feed(f, 2, 1, s2.p, s2.first_rec, 100), 0); /* R_SNAP_BEGIN alone */
    uint8_t rec[32];
    size_t n = epoch_record(rec, 7);
    assert_int_equal(feed(f, 2, 7, rec, n, 100), 0);
    /* The new leader's segment: the same snapshot, whole, and the two jobs after it. */
    assert_int_equal(feed(f, 3, 7, s2.p, s2.n, 100), 0);
    promote(f, 7);
    struct queue *q = broker_queue_find(f->b, (struct sl_str){ "q1", 2 });
    assert_non_null(q);
    assert_int_equal(q->priority, 3);
    struct group *g = broker_group_find(f->b, (struct sl_str){ "g", 1 });
    assert_non_null(g);
    assert_ptr_equal(g->route, q);
    assert_int_equal(g->weight, 4 * GROUP_WEIGHT_ONE);
    assert_int_equal(f->b->jobs, 2); /* d and e: a, b and c were in segment 1 */
    free(s2.p);
}

/* Reserves and acks every job b holds (worker w). */
static void
ack_all(struct broker *b)
{
    struct job *out[16];
    uint32_t n = 0;
    uint64_t ids[16];
    pthread_mutex_lock(&b->lock);
    struct worker *w = flow_worker(b, (struct sl_str){ "w", 1 }, 1);
    assert_non_null(w);
    assert_int_equal(flow_reserve(b, w, 16, NULL, out, &n), 0);
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = out[i]->id;
    }
    journal_op_end(b);
    pthread_mutex_unlock(&b->lock);
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_OP, "ack");
    wire_set_u64s(&req, WK_IDS, ids, n);
    assert_int_equal(op(b, &req), 0);
    assert_int_equal(b->jobs, 0);
}

/* A standby keeps no copy of a mirrored segment whose jobs are all gone, once two newer ones
 * exist (the next one's snapshot is then whole on disk). Segment 1 holds three jobs, all
 * acked; segments 2 and 3 are the leader's next starts. */
static void
test_standby_drops_segments_whose_jobs_are_gone(void **state)
{
    struct fix *f = *state;
    struct segbytes seg[3];
    for (int i = 0; i < 3; i++) {
        struct broker *b = journal_broker(&f->cfg, &f->lc, fake_now);
        if (i == 0) {
            push(b, "g", "a");
            push(b, "g", "b");
            push(b, "g", "c");
            ack_all(b);
        }
        journal_close(b);
        broker_free(b);
        seg[i] = segment(f, (uint64_t)i + 1); /* before the next start deletes it */
    }
    standby(f);
    assert_int_equal(feed(f, 1, 1, seg[0].p, seg[0].n, 100), 0);
    assert_int_equal(feed(f, 2, 1, seg[1].p, seg[1].n, 100), 0);
    assert_true(has_segment(f->stand, 1));
    assert_int_equal(feed(f, 3, 1, seg[2].p, seg[2].n, 100), 0);
    assert_false(has_segment(f->stand, 1));
    assert_true(has_segment(f->stand, 2));
    assert_true(has_segment(f->stand, 3));
    promote(f, 2);
    assert_int_equal(f->b->jobs, 0);
    for (int i = 0; i < 3; i++) {
        free(seg[i].p);
    }
}

/* Within one epoch a message must continue the one before it: a gap is refused. */
static void
test_gap_within_an_epoch_is_refused(void **state)
{
    struct fix *f = *state;
    lead(f);
    struct segbytes s1 = segment(f, 1);
    standby(f);
    assert_int_equal(feed(f, 1, 1, s1.p, s1.first_rec, 100), 0);
    f->lsn += 3;
    assert_int_equal(feed(f, 1, 1, s1.p + s1.first_rec, s1.n - s1.first_rec, 100),
                     SL_EBADREQ);
    free(s1.p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_in_any_cut_rebuilds_the_state, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_record_cut_by_a_new_epoch_is_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_cut_by_a_new_epoch_gives_way_to_the_next,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_within_an_epoch_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standby_applies_cron_entries_and_fires, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_standby_drops_segments_whose_jobs_are_gone, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
