/* The dashboard's broker side: the embedded files' table (dash.c), the history ring
 * (history.c) and the pages of groups (grouppage.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dash.h"
#include "err.h"
#include "grouppage.h"
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the static files ---- */

static void
test_root_serves_index_and_files_have_their_type(void **state)
{
    (void)state;
    const struct dash_file *f = dash_lookup("/");
    assert_non_null(f);
    assert_string_equal(f->name, "index.html");
    assert_ptr_equal(dash_lookup("/?x=1"), f);
    assert_ptr_equal(dash_lookup("/index.html"), f);
    assert_true(f->len > 0 && memcmp(f->data, "<!doctype html>", 15) == 0);
    assert_string_equal(dash_content_type("index.html"), "text/html; charset=utf-8");
    assert_string_equal(dash_content_type("app.js"), "text/javascript; charset=utf-8");
    assert_string_equal(dash_content_type("app.css"), "text/css; charset=utf-8");
    assert_string_equal(dash_content_type("x.bin"), "application/octet-stream");
    assert_string_equal(dash_content_type("js"), "application/octet-stream");
}

static void
test_only_login_page_and_loader_are_public(void **state)
{
    (void)state;
    const char *pub[] = { "/index.html", "/loader.js" };
    const char *priv[] = { "/app.js", "/app.css" };
    for (size_t i = 0; i < COUNT(pub); i++) {
        assert_non_null(dash_lookup(pub[i]));
        assert_true(dash_public(dash_lookup(pub[i])));
    }
    for (size_t i = 0; i < COUNT(priv); i++) {
        assert_non_null(dash_lookup(priv[i]));
        assert_false(dash_public(dash_lookup(priv[i])));
    }
    assert_true(dash_nfiles >= 4 && dash_nfiles <= DASH_FILES_MAX);
}

static void
test_unknown_paths_find_nothing(void **state)
{
    (void)state;
    const char *bad[] = { "", "/nope.js", "app.js", "/app.js/", "/../app.js", "/v1/stats",
                          "/app.jsx", "/ap" };
    for (size_t i = 0; i < COUNT(bad); i++) {
        assert_null(dash_lookup(bad[i]));
    }
}

/* ---- the history ring ---- */

static void
sample(struct history *h, int64_t s, uint64_t pushed, uint64_t done)
{
    const uint64_t t[HIST_NSERIES] = { pushed, done, 0, 0 };
    history_sample(h, s, t);
}

static void
test_empty_history_is_zero(void **state)
{
    (void)state;
    struct history *h = calloc(1, sizeof(*h));
    assert_int_equal(history_delta(h, 100, 1, HIST_PUSHED), 0);
    sample(h, 100, 5000, 0);
    /* What came before the first sample is not charged to it. */
    assert_int_equal(history_delta(h, 100, 0, HIST_PUSHED), 0);
    assert_int_equal(history_delta(h, 101, 1, HIST_PUSHED), 0);
    free(h);
}

static void
test_history_counts_per_second_and_carries_gaps(void **state)
{
    (void)state;
    struct history *h = calloc(1, sizeof(*h));
    sample(h, 10, 0, 0);
    sample(h, 11, 3, 1);
    sample(h, 11, 7, 2);   /* later in the same second: the latest totals count */
    sample(h, 15, 10, 2);  /* 12-14 saw no request: nothing counted then */
    assert_int_equal(history_delta(h, 16, 5, HIST_PUSHED), 7);   /* second 11 */
    assert_int_equal(history_delta(h, 16, 5, HIST_DONE), 2);
    assert_int_equal(history_delta(h, 16, 4, HIST_PUSHED), 0);   /* 12 */
    assert_int_equal(history_delta(h, 16, 2, HIST_PUSHED), 0);   /* 14 */
    assert_int_equal(history_delta(h, 16, 1, HIST_PUSHED), 3);   /* 15 */
    assert_int_equal(history_delta(h, 16, 0, HIST_PUSHED), 0);   /* 16: after the last */
    assert_int_equal(history_delta(h, 16, HISTORY_SECONDS - 1, HIST_PUSHED), 0); /* range */
    assert_int_equal(history_delta(h, 16, 1, HIST_NSERIES), 0);
    free(h);
}

static void
test_history_forgets_past_its_ring(void **state)
{
    (void)state;
    struct history *h = calloc(1, sizeof(*h));
    uint64_t tot = 0;
    for (int64_t s = 1; s <= 3 * HISTORY_SECONDS; s++) {
        tot += (uint64_t)s;
        sample(h, s, tot, 0);
    }
    int64_t now = 3 * HISTORY_SECONDS;
    for (uint32_t n = 0; n <= HISTORY_SECONDS - 2; n++) {
        assert_int_equal(history_delta(h, now, n, HIST_PUSHED), (uint64_t)(now - n));
    }
    /* A gap longer than the ring: everything before it is gone, nothing wraps. */
    sample(h, now + 5 * HISTORY_SECONDS, tot + 9, 0);
    assert_int_equal(history_delta(h, now + 5 * HISTORY_SECONDS, 0, HIST_PUSHED), 9);
    for (uint32_t n = 1; n <= HISTORY_SECONDS - 2; n++) {
        assert_int_equal(history_delta(h, now + 5 * HISTORY_SECONDS, n, HIST_PUSHED), 0);
    }
    /* A clock that went back is taken as the last second. */
    sample(h, 1, tot + 10, 0);
    assert_int_equal(history_delta(h, now + 5 * HISTORY_SECONDS, 0, HIST_PUSHED), 10);
    free(h);
}

/* ---- pages of groups ---- */

struct fleet {
    struct group *g[8];
    uint32_t n;
};

static void
add(struct fleet *f, const char *name, uint64_t ready, uint64_t dead)
{
    struct group *g = group_new((struct sl_str){ name, (uint32_t)strlen(name) });
    assert_non_null(g);
    g->jobs[JOB_READY] = ready;
    g->jobs[JOB_DEAD] = dead;
    if (f->n > 0) {
        f->g[f->n - 1]->next = g;
    }
    f->g[f->n++] = g;
}

static void
fleet_free(struct fleet *f)
{
    for (uint32_t i = 0; i < f->n; i++) {
        group_free(f->g[i]);
    }
}

static void
names(const struct group **out, uint32_t n, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        strncat(buf, out[i]->name, cap - strlen(buf) - 2);
        strcat(buf, " ");
    }
}

static int
page(struct fleet *f, const char *sort, bool desc, const char *filter, uint64_t off,
     uint32_t max, char *got, uint64_t *total)
{
    struct grouppage_req r = { GP_NAME, desc, { filter, (uint32_t)strlen(filter) }, off, max };
    const struct group *out[8];
    uint32_t n = 0;
    assert_true(grouppage_key_parse((struct sl_str){ sort, (uint32_t)strlen(sort) }, &r.key));
    int rv = grouppage_select(f->g[0], f->n, &r, 0, out, &n, total);
    names(out, n, got, 128);
    return rv;
}

static void
test_pages_sort_filter_and_slice(void **state)
{
    (void)state;
    struct fleet f = { { NULL }, 0 };
    char got[128];
    uint64_t total;
    add(&f, "carol", 5, 0);
    add(&f, "Alice", 9, 1);
    add(&f, "bob", 5, 2);
    add(&f, "dave", 0, 0);
    add(&f, "alina", 7, 0);

    assert_int_equal(page(&f, "name", false, "", 0, 10, got, &total), 0);
    assert_string_equal(got, "Alice alina bob carol dave ");
    assert_int_equal(total, 5);
    /* Ties (carol, bob: 5) keep first-seen order ascending, and reverse descending. */
    page(&f, "count", false, "", 0, 10, got, &total);
    assert_string_equal(got, "dave carol bob alina Alice ");
    page(&f, "count", true, "", 0, 10, got, &total);
    assert_string_equal(got, "Alice alina bob carol dave ");
    /* Offset and max slice the sorted list; total counts every match. */
    page(&f, "count", true, "", 1, 2, got, &total);
    assert_string_equal(got, "alina bob ");
    assert_int_equal(total, 5);
    page(&f, "count", true, "", 5, 2, got, &total);
    assert_string_equal(got, "");
    /* The filter ignores case. */
    page(&f, "dead", true, "ALI", 0, 10, got, &total);
    assert_string_equal(got, "Alice alina ");
    assert_int_equal(total, 2);
    page(&f, "name", false, "zz", 0, 10, got, &total);
    assert_string_equal(got, "");
    assert_int_equal(total, 0);
    fleet_free(&f);
}

static void
test_page_keys_are_named_and_checked(void **state)
{
    (void)state;
    enum grouppage_key k;
    const char *good[] = { "name", "count", "ready", "reserved", "delayed", "dead",
                           "oldest_ready_ms", "share", "wait_p50_ms", "wait_p99_ms", "pushed",
                           "done", "failed" };
    for (size_t i = 0; i < COUNT(good); i++) {
        assert_true(grouppage_key_parse((struct sl_str){ good[i], (uint32_t)strlen(good[i]) },
                                        &k));
        assert_int_equal(k, (enum grouppage_key)i);
        assert_non_null(strstr(grouppage_key_list(), good[i]));
    }
    assert_false(grouppage_key_parse((struct sl_str){ "Name", 4 }, &k));
    assert_false(grouppage_key_parse((struct sl_str){ "nam", 3 }, &k));
    assert_false(grouppage_key_parse((struct sl_str){ "", 0 }, &k));
}

static void
test_empty_broker_gives_empty_page(void **state)
{
    (void)state;
    struct grouppage_req r = { GP_BACKLOG, true, { NULL, 0 }, 0, 10 };
    const struct group *out[1];
    uint32_t n = 9;
    uint64_t total = 9;
    assert_int_equal(grouppage_select(NULL, 0, &r, 0, out, &n, &total), 0);
    assert_int_equal(n, 0);
    assert_int_equal(total, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_serves_index_and_files_have_their_type),
        cmocka_unit_test(test_only_login_page_and_loader_are_public),
        cmocka_unit_test(test_unknown_paths_find_nothing),
        cmocka_unit_test(test_empty_history_is_zero),
        cmocka_unit_test(test_history_counts_per_second_and_carries_gaps),
        cmocka_unit_test(test_history_forgets_past_its_ring),
        cmocka_unit_test(test_pages_sort_filter_and_slice),
        cmocka_unit_test(test_page_keys_are_named_and_checked),
        cmocka_unit_test(test_empty_broker_gives_empty_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
