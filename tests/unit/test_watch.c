/* The live view's model (ctl/watch.c): stats replies with missing and odd fields, rates from
 * monotonic counters and their resets, the groups' sort orders, sparklines, and the screen
 * laid out at a given width and height. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "err.h"
#include "watch_render.h"
#include "wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NS 1000000000LL

/* --- building replies ------------------------------------------------------------------ */

struct reply {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
};

static void
rbegin(struct reply *r)
{
    msgpack_sbuffer_init(&r->sb);
    msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&r->up);
}

static const msgpack_object *
rend(struct reply *r)
{
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&r->up, r->sb.data, r->sb.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    return &r->up.data;
}

static void
rfree(struct reply *r)
{
    msgpack_unpacked_destroy(&r->up);
    msgpack_sbuffer_destroy(&r->sb);
}

static void
ku(msgpack_packer *pk, const char *k, uint64_t v)
{
    wire_pack_cstr(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void
ks(msgpack_packer *pk, const char *k, const char *v)
{
    wire_pack_cstr(pk, k);
    wire_pack_cstr(pk, v);
}

/* A group map: name, route ("" for nil), count, reserved, and its counter: dispatched when
 * disp is not UINT64_MAX, else done. */
static void
group(msgpack_packer *pk, const char *name, const char *route, uint64_t count, uint64_t reserved,
      uint64_t done, uint64_t disp, double p99)
{
    msgpack_pack_map(pk, disp != UINT64_MAX ? 7 : 6);
    ks(pk, "name", name);
    wire_pack_cstr(pk, "route");
    if (route[0] != '\0') {
        wire_pack_cstr(pk, route);
    } else {
        msgpack_pack_nil(pk);
    }
    ku(pk, "count", count);
    ku(pk, "reserved", reserved);
    ku(pk, "done", done);
    wire_pack_cstr(pk, "wait_p99_ms");
    if (isnan(p99)) {
        msgpack_pack_nil(pk);
    } else {
        msgpack_pack_double(pk, p99);
    }
    if (disp != UINT64_MAX) {
        ku(pk, "dispatched", disp);
    }
}

static void
queue(msgpack_packer *pk, const char *name, uint64_t cap, uint64_t done)
{
    msgpack_pack_map(pk, 8);
    ks(pk, "name", name);
    ku(pk, "priority", 10);
    ku(pk, "weight", 1);
    ku(pk, "max_inflight", cap);
    wire_pack_cstr(pk, "paused");
    msgpack_pack_false(pk);
    ku(pk, "ready", 5);
    ku(pk, "reserved", 1);
    ku(pk, "done", done);
}

/* A reply with one queue "default" (done qdone), the groups given as (name, count, done)
 * triples with done as their counter, no workers. */
static const msgpack_object *
simple(struct reply *r, uint64_t qdone, size_t ng, const char *const *names,
       const uint64_t *counts, const uint64_t *dones)
{
    rbegin(r);
    msgpack_pack_map(&r->pk, 3);
    wire_pack_cstr(&r->pk, "queues");
    msgpack_pack_array(&r->pk, 1);
    queue(&r->pk, "default", 0, qdone);
    wire_pack_cstr(&r->pk, "groups");
    msgpack_pack_array(&r->pk, (uint32_t)ng);
    for (size_t i = 0; i < ng; i++) {
        group(&r->pk, names[i], "", counts[i], 0, dones[i], UINT64_MAX, NAN);
    }
    wire_pack_cstr(&r->pk, "workers");
    msgpack_pack_array(&r->pk, 0);
    return rend(r);
}

/* A busy system: a broker, a leader, two workers, one queue, ngroups groups (layout below). */
static const msgpack_object *busy(struct reply *r, int ngroups);

static const struct watch_group *
find_group(const struct watch *w, const char *name)
{
    for (size_t i = 0; i < w->snap.ngroups; i++) {
        if (strcmp(w->snap.groups[i].name, name) == 0) {
            return &w->snap.groups[i];
        }
    }
    fail_msg("no group %s", name);
    return NULL;
}

static bool
has_line(const struct watch_lines *l, const char *needle)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strstr(l->v[i].text, needle) != NULL) {
            return true;
        }
    }
    return false;
}

static bool
is_line(const struct watch_lines *l, const char *want)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].text, want) == 0) {
            return true;
        }
    }
    return false;
}

/* --- parsing --------------------------------------------------------------------------- */

static void
test_parse_odd_fields_shows_dashes_and_never_fails(void **state)
{
    struct reply r;
    struct watch w;
    (void)state;

    rbegin(&r);
    msgpack_pack_map(&r.pk, 6);
    wire_pack_cstr(&r.pk, "broker");
    msgpack_pack_map(&r.pk, 3);
    ku(&r.pk, "pid", 42);
    ks(&r.pk, "uptime_s", "soon");       /* wrong type */
    wire_pack_cstr(&r.pk, "journal_bytes");
    msgpack_pack_int64(&r.pk, -5);       /* negative: not a count */
    wire_pack_cstr(&r.pk, "leader");
    msgpack_pack_nil(&r.pk);
    wire_pack_cstr(&r.pk, "workers");
    msgpack_pack_array(&r.pk, 2);
    msgpack_pack_uint64(&r.pk, 7);       /* not a map: skipped */
    msgpack_pack_map(&r.pk, 2);
    ks(&r.pk, "state", "bu\x1b[2Jsy");   /* a terminal escape: made harmless */
    wire_pack_cstr(&r.pk, "current");
    msgpack_pack_nil(&r.pk);
    wire_pack_cstr(&r.pk, "queues");
    msgpack_pack_map(&r.pk, 0);          /* not an array: no queues */
    wire_pack_cstr(&r.pk, "groups");
    msgpack_pack_array(&r.pk, 1);
    msgpack_pack_map(&r.pk, 4);
    wire_pack_cstr(&r.pk, "name");
    msgpack_pack_uint64(&r.pk, 3);       /* wrong type */
    ks(&r.pk, "wait_p50_ms", "fast");
    wire_pack_cstr(&r.pk, "wait_p99_ms");
    msgpack_pack_double(&r.pk, -1.0);
    ku(&r.pk, "count", 9);
    wire_pack_cstr(&r.pk, "decisions");
    msgpack_pack_array(&r.pk, 2);
    msgpack_pack_map(&r.pk, 4);
    ku(&r.pk, "ts_ms", 1000);
    ks(&r.pk, "group", "bob");
    wire_pack_cstr(&r.pk, "queue");
    msgpack_pack_nil(&r.pk);
    ku(&r.pk, "moved", 12);
    msgpack_pack_true(&r.pk);

    watch_init(&w, "ipc:///x", 1000, false);
    assert_int_equal(watch_update(&w, rend(&r), S_NS), 0);
    assert_true(w.have_snap);
    assert_int_equal(w.snap.broker.pid, 42);
    assert_true(w.snap.broker.uptime_s == WATCH_NA);
    assert_true(w.snap.broker.journal_bytes == WATCH_NA);
    assert_true(w.snap.broker.dispatched == WATCH_NA);
    assert_string_equal(w.snap.broker.version, "");
    assert_false(w.snap.leader.present);
    assert_int_equal(w.snap.nworkers, 1);
    assert_string_equal(w.snap.workers[0].state, "bu?[2Jsy");
    assert_true(w.snap.workers[0].current == WATCH_NA);
    assert_true(w.snap.workers[0].pid == WATCH_NA);
    assert_int_equal(w.snap.nqueues, 0);
    assert_int_equal(w.snap.ngroups, 1);
    assert_string_equal(w.snap.groups[0].name, "");
    assert_int_equal(w.snap.groups[0].count, 9);
    assert_true(isnan(w.snap.groups[0].p50_ms));
    assert_true(isnan(w.snap.groups[0].p99_ms));
    assert_true(w.snap.groups[0].cap == WATCH_NA); /* no queue "default" in the reply */
    assert_true(w.snap.has_decisions);
    assert_int_equal(w.snap.ndecisions, 1);
    assert_string_equal(w.snap.decisions[0].group, "bob");
    assert_string_equal(w.snap.decisions[0].queue, "");
    assert_true(w.snap.decisions[0].lease == WATCH_NA);

    /* And it lays out, with "-" for what is missing. */
    struct watch_lines l;
    watch_lines_init(&l);
    assert_int_equal(watch_render(&w, 0, 0, false, S_NS, &l), 0);
    assert_true(has_line(&l, "broker pid 42, version -, up -"));
    assert_true(has_line(&l, "router: none leads"));
    assert_true(has_line(&l, "bob -> default  moved 12  lease -  -"));
    for (size_t i = 0; i < l.n; i++) {
        assert_null(strchr(l.v[i].text, '\x1b'));
    }
    watch_lines_fini(&l);
    watch_fini(&w);
    rfree(&r);
}

static void
test_reply_not_a_map_keeps_the_last_data(void **state)
{
    struct reply r, bad;
    struct watch w;
    const char *names[] = { "bob" };
    uint64_t counts[] = { 4 }, dones[] = { 0 };
    (void)state;

    watch_init(&w, "u", 1000, false);
    assert_int_equal(watch_update(&w, simple(&r, 0, 1, names, counts, dones), 0), 0);
    rbegin(&bad);
    msgpack_pack_array(&bad.pk, 0);
    assert_int_equal(watch_update(&w, rend(&bad), S_NS), SL_EBADREQ);
    assert_int_equal(w.snap.ngroups, 1);
    assert_int_equal(w.snap_ns, 0);
    watch_fini(&w);
    rfree(&r);
    rfree(&bad);
}

static void
test_group_inflight_is_against_its_queues_cap(void **state)
{
    struct reply r;
    struct watch w;
    struct watch_lines l;
    (void)state;

    rbegin(&r);
    msgpack_pack_map(&r.pk, 2);
    wire_pack_cstr(&r.pk, "queues");
    msgpack_pack_array(&r.pk, 2);
    queue(&r.pk, "default", 0, 0);
    queue(&r.pk, "group.bob", 8, 0);
    wire_pack_cstr(&r.pk, "groups");
    msgpack_pack_array(&r.pk, 2);
    group(&r.pk, "bob", "group.bob", 100, 3, 0, UINT64_MAX, 12.6);
    group(&r.pk, "amy", "", 2, 1, 0, UINT64_MAX, NAN);
    watch_init(&w, "u", 1000, false);
    assert_int_equal(watch_update(&w, rend(&r), 0), 0);
    assert_int_equal(find_group(&w, "bob")->cap, 8);
    assert_int_equal(find_group(&w, "amy")->cap, 0);
    watch_lines_init(&l);
    assert_int_equal(watch_render(&w, 0, 0, false, 0, &l), 0);
    assert_true(has_line(&l, "3/8"));
    assert_true(has_line(&l, "1/-"));
    assert_true(has_line(&l, "13ms")); /* p99 12.6 ms */
    watch_lines_fini(&l);
    watch_fini(&w);
    rfree(&r);
}

/* --- rates ----------------------------------------------------------------------------- */

static void
test_rates_start_empty_and_need_a_second(void **state)
{
    struct reply r1, r2, r3;
    struct watch w;
    const char *names[] = { "bob" };
    uint64_t counts[] = { 10 }, d1[] = { 100 }, d2[] = { 150 }, d3[] = { 300 };
    (void)state;

    watch_init(&w, "u", 200, false);
    assert_int_equal(watch_update(&w, simple(&r1, 1000, 1, names, counts, d1), 0), 0);
    assert_true(isnan(find_group(&w, "bob")->rate));
    assert_true(isnan(w.snap.queues[0].rate));
    /* 200 ms later: too short a window, still unknown. */
    assert_int_equal(watch_update(&w, simple(&r2, 1100, 1, names, counts, d2), S_NS / 5), 0);
    assert_true(isnan(find_group(&w, "bob")->rate));
    /* 2 s after the start: 200 jobs in 2 s. */
    assert_int_equal(watch_update(&w, simple(&r3, 1400, 1, names, counts, d3), 2 * S_NS), 0);
    assert_float_equal(find_group(&w, "bob")->rate, 100.0, 1e-9);
    assert_float_equal(w.snap.queues[0].rate, 200.0, 1e-9);
    /* No "dispatched" from the broker: its rate is the queues' done. */
    assert_float_equal(w.bseries.rate, 200.0, 1e-9);
    /* Two seconds: two samples in the sparkline. */
    double v[WATCH_SPARK_N];
    assert_int_equal(watch_series_samples(find_group(&w, "bob")->series, v), 2);
    assert_float_equal(v[0], 100.0, 1e-3);
    watch_fini(&w);
    rfree(&r1);
    rfree(&r2);
    rfree(&r3);
}

static void
test_dispatched_wins_over_done(void **state)
{
    struct reply r1, r2;
    struct watch w;
    (void)state;

    watch_init(&w, "u", 1000, false);
    rbegin(&r1);
    msgpack_pack_map(&r1.pk, 2);
    wire_pack_cstr(&r1.pk, "broker");
    msgpack_pack_map(&r1.pk, 1);
    ku(&r1.pk, "dispatched", 1000);
    wire_pack_cstr(&r1.pk, "groups");
    msgpack_pack_array(&r1.pk, 1);
    group(&r1.pk, "bob", "", 5, 0, 0, 50, NAN);
    assert_int_equal(watch_update(&w, rend(&r1), 0), 0);
    rbegin(&r2);
    msgpack_pack_map(&r2.pk, 2);
    wire_pack_cstr(&r2.pk, "broker");
    msgpack_pack_map(&r2.pk, 1);
    ku(&r2.pk, "dispatched", 1500);
    wire_pack_cstr(&r2.pk, "groups");
    msgpack_pack_array(&r2.pk, 1);
    group(&r2.pk, "bob", "", 5, 0, 0 /* done reset by flush */, 80, NAN);
    assert_int_equal(watch_update(&w, rend(&r2), S_NS), 0);
    assert_float_equal(find_group(&w, "bob")->rate, 30.0, 1e-9);
    assert_float_equal(w.bseries.rate, 500.0, 1e-9);
    watch_fini(&w);
    rfree(&r1);
    rfree(&r2);
}

static void
test_counter_reset_is_rate_zero_not_negative(void **state)
{
    struct reply r1, r2, r3;
    struct watch w;
    const char *names[] = { "bob" };
    uint64_t counts[] = { 1 }, d1[] = { 500 }, d2[] = { 20 }, d3[] = { 70 };
    (void)state;

    watch_init(&w, "u", 1000, false);
    assert_int_equal(watch_update(&w, simple(&r1, 500, 1, names, counts, d1), 0), 0);
    /* flush: done went from 500 to 20. */
    assert_int_equal(watch_update(&w, simple(&r2, 20, 1, names, counts, d2), S_NS), 0);
    assert_float_equal(find_group(&w, "bob")->rate, 0.0, 0);
    assert_float_equal(w.snap.queues[0].rate, 0.0, 0);
    /* Measured again from the reset on. */
    assert_int_equal(watch_update(&w, simple(&r3, 70, 1, names, counts, d3), 2 * S_NS), 0);
    assert_float_equal(find_group(&w, "bob")->rate, 50.0, 1e-9);
    watch_fini(&w);
    rfree(&r1);
    rfree(&r2);
    rfree(&r3);
}

static void
test_sparkline_keeps_the_last_60_seconds_and_forgets_gone_groups(void **state)
{
    struct watch w;
    const char *names[] = { "bob", "amy" };
    uint64_t counts[] = { 1, 1 }, d[2];
    double v[WATCH_SPARK_N];
    (void)state;

    watch_init(&w, "u", 1000, false);
    for (int i = 0; i <= 70; i++) {
        struct reply r;
        d[0] = (uint64_t)(i * (i + 1) / 2); /* second i runs i jobs */
        d[1] = 0;
        assert_int_equal(watch_update(&w, simple(&r, 0, 2, names, counts, d), i * S_NS), 0);
        rfree(&r);
    }
    assert_int_equal(watch_series_samples(find_group(&w, "bob")->series, v), WATCH_SPARK_N);
    assert_float_equal(v[0], 11.0, 1e-3);
    assert_float_equal(v[WATCH_SPARK_N - 1], 70.0, 1e-3);
    assert_int_equal(w.gseries.n, 2);

    /* amy is gone (a flush forgot it): so is its history. */
    struct reply r;
    assert_int_equal(watch_update(&w, simple(&r, 0, 1, names, counts, d), 71 * S_NS), 0);
    assert_int_equal(w.gseries.n, 1);
    rfree(&r);
    watch_fini(&w);
}

static void
test_many_groups_gone_at_once_are_all_forgotten(void **state)
{
    struct watch w;
    struct reply r;
    (void)state;

    watch_init(&w, "u", 1000, false);
    assert_int_equal(watch_update(&w, busy(&r, 600), 0), 0);
    rfree(&r);
    assert_int_equal(w.gseries.n, 600);
    assert_int_equal(watch_update(&w, busy(&r, 3), S_NS), 0);
    rfree(&r);
    assert_int_equal(w.gseries.n, 3);
    assert_int_equal(w.snap.ngroups, 3);
    assert_non_null(find_group(&w, "tenant-02")->series);
    watch_fini(&w);
}

static void
test_spark_scales_to_the_largest_sample(void **state)
{
    const double v[] = { 0, 1, 2, 4, 8 };
    const double flat[] = { 0, 0, 0 };
    char out[256];
    (void)state;

    watch_spark(v, 5, 5, false, out, sizeof(out));
    assert_string_equal(out, " ._~#");
    watch_spark(v, 5, 8, false, out, sizeof(out));
    assert_string_equal(out, "    ._~#");     /* fewer samples than width: blanks on the left */
    watch_spark(v, 5, 2, false, out, sizeof(out));
    assert_string_equal(out, "~#");          /* the newest ones */
    watch_spark(flat, 3, 3, false, out, sizeof(out));
    assert_string_equal(out, "   ");         /* nothing ran: no bars */
    watch_spark(v, 5, 2, true, out, sizeof(out));
    assert_string_equal(out, "\xe2\x96\x84\xe2\x96\x88");
    assert_int_equal(watch_text_cols(out), 2);
    watch_spark(v, 5, 5, true, out, 5);      /* cut to cap, never a half glyph */
    assert_string_equal(out, " \xe2\x96\x81");
}

/* --- sorting --------------------------------------------------------------------------- */

static void
order(const struct watch *w, const char *want)
{
    char got[64] = "";
    for (size_t i = 0; i < w->snap.ngroups; i++) {
        strcat(got, w->snap.groups[i].name);
    }
    assert_string_equal(got, want);
}

static void
test_sort_orders(void **state)
{
    struct reply r1, r2;
    struct watch w;
    enum watch_sort s;
    (void)state;

    rbegin(&r1);
    msgpack_pack_map(&r1.pk, 1);
    wire_pack_cstr(&r1.pk, "groups");
    msgpack_pack_array(&r1.pk, 4);
    group(&r1.pk, "a", "", 10, 0, 0, UINT64_MAX, 5);
    group(&r1.pk, "b", "", 30, 0, 0, UINT64_MAX, NAN);
    group(&r1.pk, "c", "", 20, 0, 0, UINT64_MAX, 50);
    group(&r1.pk, "d", "", 30, 0, 0, UINT64_MAX, 1);
    rbegin(&r2);
    msgpack_pack_map(&r2.pk, 1);
    wire_pack_cstr(&r2.pk, "groups");
    msgpack_pack_array(&r2.pk, 4);
    group(&r2.pk, "a", "", 10, 0, 40, UINT64_MAX, 5);
    group(&r2.pk, "b", "", 30, 0, 10, UINT64_MAX, NAN);
    group(&r2.pk, "c", "", 20, 0, 0, UINT64_MAX, 50);
    group(&r2.pk, "d", "", 30, 0, 20, UINT64_MAX, 1);

    watch_init(&w, "u", 1000, false);
    assert_int_equal(watch_update(&w, rend(&r1), 0), 0);
    order(&w, "bdca"); /* backlog by default; ties by name */
    assert_int_equal(watch_update(&w, rend(&r2), S_NS), 0);
    assert_true(watch_sort_key('r', &s));
    watch_set_sort(&w, s);
    order(&w, "adbc");
    assert_true(watch_sort_key('w', &s));
    watch_set_sort(&w, s);
    order(&w, "cadb"); /* unknown waits last */
    assert_true(watch_sort_key('n', &s));
    watch_set_sort(&w, s);
    order(&w, "abcd");
    assert_true(watch_sort_key('b', &s));
    watch_set_sort(&w, s);
    order(&w, "bdca");
    assert_false(watch_sort_key('x', &s));
    watch_fini(&w);
    rfree(&r1);
    rfree(&r2);
}

/* --- layout ---------------------------------------------------------------------------- */

static const msgpack_object *
busy(struct reply *r, int ngroups)
{
    char name[32];

    rbegin(r);
    msgpack_pack_map(&r->pk, 5);
    wire_pack_cstr(&r->pk, "broker");
    msgpack_pack_map(&r->pk, 4);
    ku(&r->pk, "pid", 7);
    ku(&r->pk, "uptime_s", 3725);
    ks(&r->pk, "version", "0.1.0");
    ku(&r->pk, "journal_bytes", 3 * 1024 * 1024);
    wire_pack_cstr(&r->pk, "leader");
    msgpack_pack_map(&r->pk, 3);
    ks(&r->pk, "name", "router:vm:12");
    ku(&r->pk, "lease", 99);
    ku(&r->pk, "expires_ms", 1500);
    wire_pack_cstr(&r->pk, "workers");
    msgpack_pack_array(&r->pk, 2);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(&r->pk, 6);
        ku(&r->pk, "pid", 100 + (uint64_t)i);
        ks(&r->pk, "state", "busy");
        ku(&r->pk, "jobs", 5);
        ku(&r->pk, "rss_bytes", 2048);
        ku(&r->pk, "current", 77);
        ks(&r->pk, "id", "a-rather-long-worker-name-on-a-host:123:0");
    }
    wire_pack_cstr(&r->pk, "queues");
    msgpack_pack_array(&r->pk, 1);
    queue(&r->pk, "default", 0, 0);
    wire_pack_cstr(&r->pk, "groups");
    msgpack_pack_array(&r->pk, (uint32_t)ngroups);
    for (int i = 0; i < ngroups; i++) {
        snprintf(name, sizeof(name), "tenant-%02d", i);
        group(&r->pk, name, "", 100 - (uint64_t)i, 1, 0, UINT64_MAX, 3.0);
    }
    return rend(r);
}

static void
test_render_fits_the_width(void **state)
{
    struct reply r;
    struct watch w;
    struct watch_lines l;
    (void)state;

    watch_init(&w, "ipc:///run/broker.ipc", 1000, true);
    assert_int_equal(watch_update(&w, busy(&r, 3), 0), 0);
    watch_lines_init(&l);
    for (unsigned width = 1; width <= 140; width += 7) {
        assert_int_equal(watch_render(&w, width, 0, false, 0, &l), 0);
        for (size_t i = 0; i < l.n; i++) {
            assert_true(watch_text_cols(l.v[i].text) <= width);
        }
    }
    assert_int_equal(watch_render(&w, 60, 0, false, 0, &l), 0);
    assert_true(has_line(&l, "broker pid 7, version 0.1.0, up 1h 02m"));
    assert_true(has_line(&l, "workers (2)"));
    assert_true(has_line(&l, "PID  STATE  JOBS   MEMORY  CURRENT  UPTIME"));
    assert_false(has_line(&l, "WORKER")); /* did not fit: dropped whole */
    /* The queues' last columns (RESERVED, DEAD, JOBS/S) did not fit in 60. */
    assert_true(is_line(&l, "QUEUE    PRIO  WEIGHT   CAP  STATE   ORDER  READY  GROUPS"));
    assert_true(has_line(&l, "groups (3), by backlog"));
    assert_true(has_line(&l, "router: router:vm:12 leads (lease 99, expires in 1500 ms)"));
    assert_true(has_line(&l, "decisions: - (not reported by this broker)"));
    assert_false(has_line(&l, "q quit")); /* no footer asked for */
    /* Unlimited width: every column, the sparkline last. */
    assert_int_equal(watch_render(&w, 0, 0, false, 0, &l), 0);
    assert_true(has_line(&l, "GROUP      ROUTE  COUNT  INFLIGHT  JOBS/S  SHARE  WEIGHT  OLDEST  "
                             "P50    P99  LAST 60S"));
    assert_true(has_line(&l, "UPTIME  WORKER"));
    assert_true(has_line(&l, "  a-rather-long-worker-name-on-a-~")); /* cut at 32 columns */
    watch_lines_fini(&l);
    watch_fini(&w);
    rfree(&r);
}

static void
test_render_fits_the_height_and_says_what_is_hidden(void **state)
{
    struct reply r;
    struct watch w;
    struct watch_lines l;
    (void)state;

    watch_init(&w, "u", 1000, false);
    assert_int_equal(watch_update(&w, busy(&r, 40), 0), 0);
    watch_lines_init(&l);
    for (unsigned h = 1; h <= 60; h++) {
        assert_int_equal(watch_render(&w, 80, h, true, 0, &l), 0);
        assert_true(l.n <= h);
        assert_int_equal(l.v[l.n - 1].kind, WATCH_LINE_FOOTER);
    }
    assert_int_equal(watch_render(&w, 80, 24, true, 0, &l), 0);
    assert_int_equal(l.n, 24);
    assert_true(has_line(&l, "GROUP"));
    assert_true(has_line(&l, "tenant-00"));
    assert_true(has_line(&l, "more"));
    assert_true(has_line(&l, "q quit"));
    assert_true(has_line(&l, "b backlog  r rate  w p99 wait  n name"));
    /* Tall enough: everything, nothing hidden. */
    assert_int_equal(watch_render(&w, 80, 200, true, 0, &l), 0);
    assert_true(has_line(&l, "tenant-39"));
    assert_false(has_line(&l, "more"));
    watch_lines_fini(&l);
    watch_fini(&w);
    rfree(&r);
}

static void
test_unreachable_is_said_and_the_data_kept(void **state)
{
    struct reply r;
    struct watch w;
    struct watch_lines l;
    (void)state;

    watch_init(&w, "ipc:///run/broker.ipc", 1000, false);
    watch_lines_init(&l);
    watch_unreachable(&w, "no connection", 0);
    assert_int_equal(watch_render(&w, 0, 0, false, 0, &l), 0);
    assert_true(has_line(&l, "waiting for the broker at ipc:///run/broker.ipc"));
    assert_true(has_line(&l, "broker unreachable at ipc:///run/broker.ipc (no connection)"));

    assert_int_equal(watch_update(&w, busy(&r, 2), S_NS), 0);
    assert_false(w.stale);
    rfree(&r);
    watch_unreachable(&w, "no reply within 2000 ms", 3 * S_NS);
    watch_unreachable(&w, "no reply within 2000 ms", 5 * S_NS);
    assert_int_equal(w.stale_ns, 3 * S_NS);
    assert_int_equal(watch_render(&w, 0, 0, false, 6 * S_NS, &l), 0);
    assert_true(has_line(&l, "[STALE]"));
    assert_true(has_line(&l, "broker unreachable at ipc:///run/broker.ipc (no reply within "
                             "2000 ms): data 5 s old"));
    assert_true(has_line(&l, "tenant-01")); /* the last data stays */
    assert_int_equal(l.v[2].kind, WATCH_LINE_NOTICE);

    /* An answer that is not stats is not "unreachable". */
    watch_unusable(&w, "not a sluice message", 7 * S_NS);
    assert_int_equal(w.stale_ns, 3 * S_NS);
    assert_int_equal(watch_render(&w, 0, 0, false, 7 * S_NS, &l), 0);
    assert_true(has_line(&l, "no usable reply from the broker at ipc:///run/broker.ipc (not a "
                             "sluice message): data 6 s old, asking again"));
    assert_false(has_line(&l, "unreachable"));
    /* And a good reply clears it all. */
    assert_int_equal(watch_update(&w, busy(&r, 2), 8 * S_NS), 0);
    assert_int_equal(watch_render(&w, 0, 0, false, 8 * S_NS, &l), 0);
    assert_false(has_line(&l, "[STALE]"));
    assert_false(has_line(&l, "no usable reply"));
    watch_lines_fini(&l);
    watch_fini(&w);
    rfree(&r);
}

/* A queue serving groups in turn, and two groups: one weighted 4 with most of the dispatches
 * and a ready job 1.5 s old, one of weight 0.25 with neither (nil). */
static const msgpack_object *
fair(struct reply *r)
{
    rbegin(r);
    msgpack_pack_map(&r->pk, 2);
    wire_pack_cstr(&r->pk, "queues");
    msgpack_pack_array(&r->pk, 1);
    msgpack_pack_map(&r->pk, 4);
    ks(&r->pk, "name", "default");
    ks(&r->pk, "order", "groups");
    ku(&r->pk, "ready", 7);
    ku(&r->pk, "groups_ready", 2);
    wire_pack_cstr(&r->pk, "groups");
    msgpack_pack_array(&r->pk, 2);
    msgpack_pack_map(&r->pk, 7);
    ks(&r->pk, "name", "bob");
    ku(&r->pk, "count", 6);
    ku(&r->pk, "weight", 4);
    ku(&r->pk, "rate", 20);
    wire_pack_cstr(&r->pk, "held");
    msgpack_pack_true(&r->pk);
    wire_pack_cstr(&r->pk, "share");
    msgpack_pack_double(&r->pk, 0.75);
    ku(&r->pk, "oldest_ready_ms", 1500);
    msgpack_pack_map(&r->pk, 5);
    ks(&r->pk, "name", "eve");
    ku(&r->pk, "count", 1);
    wire_pack_cstr(&r->pk, "weight");
    msgpack_pack_double(&r->pk, 0.25);
    wire_pack_cstr(&r->pk, "share");
    msgpack_pack_nil(&r->pk);
    wire_pack_cstr(&r->pk, "oldest_ready_ms");
    msgpack_pack_nil(&r->pk);
    return rend(r);
}

static void
test_weight_share_oldest_ready_and_order_are_shown(void **state)
{
    struct reply r;
    struct watch w;
    struct watch_lines l;
    (void)state;

    watch_init(&w, "u", 1000, false);
    assert_int_equal(watch_update(&w, fair(&r), 0), 0);
    assert_string_equal(w.snap.queues[0].order, "groups");
    assert_int_equal(w.snap.queues[0].groups_ready, 2);
    const struct watch_group *bob = find_group(&w, "bob"), *eve = find_group(&w, "eve");
    assert_true(bob->weight == 4 && bob->share == 0.75 && bob->oldest_ready_ms == 1500);
    assert_true(eve->weight == 0.25 && isnan(eve->share) && isnan(eve->oldest_ready_ms));

    watch_lines_init(&l);
    assert_int_equal(watch_render(&w, 0, 0, false, 0, &l), 0);
    assert_true(is_line(&l, "QUEUE    PRIO  WEIGHT  CAP  STATE  ORDER   READY  GROUPS  RESERVED  "
                            "DEAD  JOBS/S"));
    assert_true(is_line(&l, "default     -       -    -  -      groups      7       2         -  "
                            "   -       -"));
    /* bob's start rate is shown with its name, and that it is held now. */
    assert_true(is_line(&l, "GROUP            ROUTE  COUNT  INFLIGHT  JOBS/S  SHARE  WEIGHT  "
                            "OLDEST  P50  P99  LAST 60S (JOBS/S)"));
    assert_true(is_line(&l, "bob (held 20/s)  -          6         -       -  75.0%       4    "
                            "1.5s    -    -"));
    assert_true(is_line(&l, "eve              -          1         -       -      -    0.25    "
                            "   -    -    -"));
    watch_lines_fini(&l);
    watch_fini(&w);
    rfree(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_odd_fields_shows_dashes_and_never_fails),
        cmocka_unit_test(test_reply_not_a_map_keeps_the_last_data),
        cmocka_unit_test(test_group_inflight_is_against_its_queues_cap),
        cmocka_unit_test(test_rates_start_empty_and_need_a_second),
        cmocka_unit_test(test_dispatched_wins_over_done),
        cmocka_unit_test(test_counter_reset_is_rate_zero_not_negative),
        cmocka_unit_test(test_sparkline_keeps_the_last_60_seconds_and_forgets_gone_groups),
        cmocka_unit_test(test_many_groups_gone_at_once_are_all_forgotten),
        cmocka_unit_test(test_spark_scales_to_the_largest_sample),
        cmocka_unit_test(test_sort_orders),
        cmocka_unit_test(test_render_fits_the_width),
        cmocka_unit_test(test_render_fits_the_height_and_says_what_is_hidden),
        cmocka_unit_test(test_unreachable_is_said_and_the_data_kept),
        cmocka_unit_test(test_weight_share_oldest_ready_and_order_are_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
