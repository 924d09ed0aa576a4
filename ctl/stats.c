/* ctl stats: the broker's snapshot as three tables (workers, queues, groups) for people, or as
 * one JSON document (--json) for scripts, the router and the checks.
 *
 * Tables are described as data: one row per column naming the field, its title, how it is shown
 * and whether a reply without it is an error. Required are the keys the stats document
 * promises; the others PROTOCOL.md adds are shown as "-" when absent, so an older or
 * leaner broker still prints. */
#include "ctl.h"

#include "json.h"
#include "ratespec.h"
#include "table.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct stats_col worker_cols[] = {
    { "id", "WORKER", STATS_SHOW_TEXT, true },
    { "pid", "PID", STATS_SHOW_U64, true },
    { "state", "STATE", STATS_SHOW_TEXT, true },
    { "jobs", "JOBS", STATS_SHOW_U64, true },
    { "rss_bytes", "RSS", STATS_SHOW_BYTES, true },
    { "current", "CURRENT", STATS_SHOW_ANY, true },
    { "reserved", "RESERVED", STATS_SHOW_U64, false },
    { "uptime_s", "UPTIME", STATS_SHOW_SECS, false },
};

static const struct stats_col queue_cols[] = {
    { "name", "QUEUE", STATS_SHOW_TEXT, true },
    { "priority", "PRIO", STATS_SHOW_U64, true },
    { "weight", "WEIGHT", STATS_SHOW_NUM, true },
    { "max_inflight", "MAX_INFLIGHT", STATS_SHOW_CAP, true },
    { "paused", "STATE", STATS_SHOW_PAUSED, true },
    { "ready", "READY", STATS_SHOW_U64, true },
    { "reserved", "RESERVED", STATS_SHOW_U64, true },
    { "delayed", "DELAYED", STATS_SHOW_U64, true },
    { "done", "DONE", STATS_SHOW_U64, true },
    { "failed", "FAILED", STATS_SHOW_U64, true },
    { "dead", "DEAD", STATS_SHOW_U64, true },
    { "pushed", "PUSHED", STATS_SHOW_U64, false },
    /* Added columns go last: scripts reading the columns before them keep working. */
    { "order", "ORDER", STATS_SHOW_TEXT, false },
    { "groups_ready", "GROUPS_READY", STATS_SHOW_U64, false },
};

static const struct stats_col group_cols[] = {
    { "name", "GROUP", STATS_SHOW_TEXT, true },
    { "route", "ROUTE", STATS_SHOW_ROUTE, true },
    { "count", "COUNT", STATS_SHOW_U64, true },
    { "ready", "READY", STATS_SHOW_U64, true },
    { "reserved", "RESERVED", STATS_SHOW_U64, true },
    { "delayed", "DELAYED", STATS_SHOW_U64, false },
    { "done", "DONE", STATS_SHOW_U64, true },
    { "failed", "FAILED", STATS_SHOW_U64, true },
    { "dead", "DEAD", STATS_SHOW_U64, false },
    { "pushed", "PUSHED", STATS_SHOW_U64, false },
    /* Added columns go last, as in queue_cols. */
    { "weight", "WEIGHT", STATS_SHOW_NUM, false },
    { "share", "SHARE", STATS_SHOW_SHARE, false },
    { "oldest_ready_ms", "OLDEST_READY", STATS_SHOW_AGE, false },
    { "rate", "RATE", STATS_SHOW_RATE, false },
    { "burst", "BURST", STATS_SHOW_U64_NIL, false },
    { "holds", "HOLDS", STATS_SHOW_U64, false },
};

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

/* --watch's refresh: a floor that keeps the broker's stats cheap, a ceiling against typos. */
#define STATS_INTERVAL_MS_DEFAULT 1000
#define STATS_INTERVAL_MS_MIN 100
#define STATS_INTERVAL_MS_MAX 3600000

static bool
is_u64(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

static bool
is_str(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR;
}

static bool
is_bool(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_BOOLEAN;
}

static bool
is_str_or_nil(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_NIL;
}

static bool
is_any(const msgpack_object *o)
{
    (void)o;
    return true;
}

/* A non-negative finite number, integer or float, into *v. */
static bool
num_of(const msgpack_object *o, double *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *v = (double)o->via.u64;
        return true;
    }
    if ((o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) &&
        isfinite(o->via.f64) && o->via.f64 >= 0) {
        *v = o->via.f64;
        return true;
    }
    return false;
}

static bool
is_num(const msgpack_object *o)
{
    double v;
    return num_of(o, &v);
}

static bool
is_share(const msgpack_object *o)
{
    double v;
    return o->type == MSGPACK_OBJECT_NIL || (num_of(o, &v) && v <= 1);
}

static bool
is_u64_or_nil(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NIL;
}

static uint64_t
ms_to_us(uint64_t ms)
{
    return ms < UINT64_MAX / 1000 ? ms * 1000 : UINT64_MAX;
}

static void
cell_text(struct table *t, const msgpack_object *o)
{
    table_cell(t, o->via.str.ptr, o->via.str.size);
}

static void
cell_u64(struct table *t, const msgpack_object *o)
{
    table_cellf(t, "%" PRIu64, o->via.u64);
}

static void
cell_cap(struct table *t, const msgpack_object *o)
{
    if (o->via.u64 == 0) {
        table_cell(t, "-", 1);
    } else {
        cell_u64(t, o);
    }
}

static void
cell_bytes(struct table *t, const msgpack_object *o)
{
    char buf[64];
    ctl_fmt_bytes(buf, sizeof(buf), o->via.u64);
    table_cell(t, buf, strlen(buf));
}

static void
cell_paused(struct table *t, const msgpack_object *o)
{
    table_cellf(t, "%s", o->via.boolean ? "paused" : "active");
}

static void
cell_route(struct table *t, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        table_cell(t, "-", 1);
    } else {
        cell_text(t, o);
    }
}

/* A cell for a value of any type (STATS_SHOW_ANY). */
static void
cell_any(struct table *t, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        table_cell(t, "-", 1);
        return;
    case MSGPACK_OBJECT_STR:
        table_cell(t, o->via.str.ptr, o->via.str.size);
        return;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        table_cellf(t, "%" PRIu64, o->via.u64);
        return;
    default:
        break;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m == NULL) {
        table_cell(t, "?", 1);
        return;
    }
    json_write(m, o);
    if (fclose(m) == 0 && text != NULL) {
        table_cell(t, text, len);
    } else {
        table_cell(t, "?", 1);
    }
    free(text);
}

static void
cell_secs(struct table *t, const msgpack_object *o)
{
    char buf[64];
    if (o->via.u64 < 60) {
        table_cellf(t, "%" PRIu64 "s", o->via.u64);
        return;
    }
    ctl_fmt_duration_us(buf, sizeof(buf),
                        o->via.u64 < UINT64_MAX / 1000000 ? o->via.u64 * 1000000 : UINT64_MAX);
    table_cell(t, buf, strlen(buf));
}

static void
cell_age(struct table *t, const msgpack_object *o)
{
    char buf[64];
    if (o->type == MSGPACK_OBJECT_NIL) {
        table_cell(t, "-", 1);
        return;
    }
    ctl_fmt_duration_us(buf, sizeof(buf), ms_to_us(o->via.u64));
    table_cell(t, buf, strlen(buf));
}

static void
cell_ms(struct table *t, const msgpack_object *o)
{
    if (o->via.u64 == 0) {
        table_cell(t, "-", 1);
    } else {
        cell_age(t, o);
    }
}

/* Weights are decimal numbers: 4, 0.25, 0.01; never more digits than a person typed. */
static void
cell_num(struct table *t, const msgpack_object *o)
{
    double v = 0;
    num_of(o, &v);
    table_cellf(t, "%.6g", v);
}

static bool
is_num_or_nil(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_NIL || is_num(o);
}

/* A start rate (group.limit): 20/s, 0.5/s, as ctl groups limit takes it; "-" for none. */
static void
cell_rate(struct table *t, const msgpack_object *o)
{
    double v = 0;
    char buf[48];
    if (o->type == MSGPACK_OBJECT_NIL) {
        table_cell(t, "-", 1);
        return;
    }
    num_of(o, &v);
    ratespec_format((uint64_t)(v * 1000 + 0.5), buf, sizeof(buf));
    table_cell(t, buf, strlen(buf));
}

static void
cell_u64_nil(struct table *t, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        table_cell(t, "-", 1);
    } else {
        cell_u64(t, o);
    }
}

static void
cell_share(struct table *t, const msgpack_object *o)
{
    double v = 0;
    if (o->type == MSGPACK_OBJECT_NIL) {
        table_cell(t, "-", 1);
        return;
    }
    num_of(o, &v);
    table_cellf(t, "%.1f%%", v * 100);
}

static void
cell_time(struct table *t, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        table_cell(t, "-", 1);
        return;
    }
    uint64_t ms = o->via.u64;
    time_t s = (time_t)(ms / 1000 < (uint64_t)INT32_MAX * 128 ? ms / 1000 : 0);
    struct tm tm;
    char buf[64];
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    if (ms % 1000 != 0) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%03u", (unsigned)(ms % 1000));
    }
    table_cellf(t, "%.*sZ", (int)n, buf);
}

/* How each kind of column is checked and shown. */
static const struct show {
    bool (*ok)(const msgpack_object *o);        /* the value has a type this kind shows */
    void (*cell)(struct table *t, const msgpack_object *o);
    const char *expected;                       /* for the message when it does not */
    bool text;                                  /* left-aligned (else numbers, right) */
} shows[] = {
    [STATS_SHOW_TEXT] = { is_str, cell_text, "a string", true },
    [STATS_SHOW_U64] = { is_u64, cell_u64, "a non-negative integer", false },
    [STATS_SHOW_CAP] = { is_u64, cell_cap, "a non-negative integer", false },
    [STATS_SHOW_BYTES] = { is_u64, cell_bytes, "a non-negative integer", false },
    [STATS_SHOW_PAUSED] = { is_bool, cell_paused, "a boolean", true },
    [STATS_SHOW_ROUTE] = { is_str_or_nil, cell_route, "a string or nil", true },
    [STATS_SHOW_ANY] = { is_any, cell_any, "any value", true },
    [STATS_SHOW_SECS] = { is_u64, cell_secs, "a non-negative integer", false },
    [STATS_SHOW_MS] = { is_u64, cell_ms, "a non-negative integer", false },
    [STATS_SHOW_NUM] = { is_num, cell_num, "a non-negative number", false },
    [STATS_SHOW_SHARE] = { is_share, cell_share, "a number from 0 to 1 or nil", false },
    [STATS_SHOW_AGE] = { is_u64_or_nil, cell_age, "a non-negative integer or nil", false },
    [STATS_SHOW_TIME] = { is_u64_or_nil, cell_time, "a non-negative integer or nil", true },
    [STATS_SHOW_RATE] = { is_num_or_nil, cell_rate, "a non-negative number or nil", false },
    [STATS_SHOW_U64_NIL] = { is_u64_or_nil, cell_u64_nil, "a non-negative integer or nil",
                             false },
};

_Static_assert(sizeof(shows) / sizeof(shows[0]) == STATS_SHOW_U64_NIL + 1,
               "every kind of column has a row in shows");

/* Adds the cells of item (element idx of the array where) to t. Returns 0 or CTL_EXIT_FAILED
 * (printed) when item is not a map, lacks a required field or has one of the wrong type. */
static int
add_row(const struct ctl *ctl, struct table *t, const struct stats_col *cols, size_t ncols,
        const char *where, uint32_t idx, const msgpack_object *item)
{
    if (item->type != MSGPACK_OBJECT_MAP) {
        return ctl_bad_reply(ctl, "%s[%" PRIu32 "] is not a map", where, idx);
    }
    for (size_t c = 0; c < ncols; c++) {
        const struct show *sh = &shows[cols[c].show];
        const msgpack_object *o = ctl_map_get(item, cols[c].key);
        if (o == NULL) {
            if (cols[c].required) {
                return ctl_bad_reply(ctl, "%s[%" PRIu32 "] has no '%s'", where, idx,
                                     cols[c].key);
            }
            table_cell(t, "-", 1);
            continue;
        }
        if (!sh->ok(o)) {
            return ctl_bad_reply(ctl, "%s[%" PRIu32 "].%s is not %s", where, idx, cols[c].key,
                                 sh->expected);
        }
        sh->cell(t, o);
    }
    return 0;
}

static void
table_for(struct table *t, const struct stats_col *cols, size_t ncols)
{
    table_init(t);
    for (size_t c = 0; c < ncols; c++) {
        /* Text columns read left to right; numbers line up on the right. */
        table_col(t, cols[c].title, !shows[cols[c].show].text);
    }
}

/* Fills t (set up by table_for) with the rows of arr (an ARRAY of maps), in order[] when given.
 * Returns 0 or CTL_EXIT_FAILED (printed). */
static int
fill(const struct ctl *ctl, struct table *t, const char *where, const struct stats_col *cols,
     size_t ncols, const msgpack_object *arr, const uint32_t *order)
{
    int rv = 0;

    for (uint32_t i = 0; i < arr->via.array.size && rv == 0; i++) {
        uint32_t k = order != NULL ? order[i] : i;
        rv = add_row(ctl, t, cols, ncols, where, k, &arr->via.array.ptr[k]);
    }
    return rv;
}

/* Prints "TITLE (n):" and the table, or "TITLE: none". */
static int
print_section(const char *title, const struct table *t)
{
    size_t n = table_rows(t);

    if (n == 0) {
        printf("%s: none\n", title);
        return 0;
    }
    printf("%s (%zu):\n", title, n);
    if (table_print(t, stdout) != 0) {
        fprintf(stderr, "ctl: out of memory formatting %s\n", title);
        return CTL_EXIT_FAILED;
    }
    return 0;
}

int
stats_print_rows(const struct ctl *ctl, const char *where, const struct stats_col *cols,
                 size_t ncols, const msgpack_object *arr)
{
    struct table t;
    int rv;

    table_for(&t, cols, ncols);
    if ((rv = fill(ctl, &t, where, cols, ncols, arr, NULL)) == 0) {
        rv = print_section(where, &t);
    }
    table_fini(&t);
    return rv;
}

int
stats_print_queues(const struct ctl *ctl, const char *where, const msgpack_object *queues)
{
    return stats_print_rows(ctl, where, queue_cols, NCOLS(queue_cols), queues);
}

/* Field key of item (element idx of the array where; NULL for a lone map) when it has type
 * want, into *out. Returns 0 or CTL_EXIT_FAILED (printed). */
static int
field(const struct ctl *ctl, const char *where, int64_t idx, const msgpack_object *item,
      const char *key, msgpack_object_type want, const msgpack_object **out)
{
    char at[64];

    if (idx >= 0) {
        snprintf(at, sizeof(at), "%s[%" PRId64 "]", where, idx);
    } else {
        snprintf(at, sizeof(at), "%s", where);
    }
    if (item->type != MSGPACK_OBJECT_MAP) {
        return ctl_bad_reply(ctl, "%s is not a map", at);
    }
    const msgpack_object *o = ctl_map_get(item, key);
    if (o == NULL) {
        return ctl_bad_reply(ctl, "%s has no '%s'", at, key);
    }
    if (o->type != want) {
        return ctl_bad_reply(ctl, "%s.%s is not %s", at, key,
                             want == MSGPACK_OBJECT_STR ? "a string" : "a non-negative integer");
    }
    *out = o;
    return 0;
}

struct group_key {
    uint64_t count;
    struct sl_str name;
    uint32_t idx;
};

static int
cmp_group(const void *a, const void *b)
{
    const struct group_key *x = a, *y = b;

    if (x->count != y->count) {
        return x->count > y->count ? -1 : 1; /* heaviest first */
    }
    uint32_t n = x->name.n < y->name.n ? x->name.n : y->name.n;
    int c = memcmp(x->name.p, y->name.p, n);
    if (c != 0) {
        return c;
    }
    return x->name.n < y->name.n ? -1 : x->name.n > y->name.n;
}

/* Groups sorted by count descending, then name: the backlog the router acts on comes first. */
static int
fill_groups(const struct ctl *ctl, struct table *t, const msgpack_object *groups)
{
    uint32_t n = groups->via.array.size;
    struct group_key *keys = calloc(n > 0 ? n : 1, sizeof(*keys));
    uint32_t *order = calloc(n > 0 ? n : 1, sizeof(*order));
    int rv = 0;

    if (keys == NULL || order == NULL) {
        fprintf(stderr, "ctl: out of memory sorting %" PRIu32 " groups\n", n);
        rv = CTL_EXIT_FAILED;
        goto out;
    }
    for (uint32_t i = 0; i < n && rv == 0; i++) {
        const msgpack_object *g = &groups->via.array.ptr[i], *name, *count;
        if ((rv = field(ctl, "groups", i, g, "name", MSGPACK_OBJECT_STR, &name)) == 0 &&
            (rv = field(ctl, "groups", i, g, "count", MSGPACK_OBJECT_POSITIVE_INTEGER,
                        &count)) == 0) {
            keys[i] = (struct group_key){ count->via.u64,
                                          { name->via.str.ptr, name->via.str.size }, i };
        }
    }
    if (rv != 0) {
        goto out;
    }
    qsort(keys, n, sizeof(*keys), cmp_group);
    for (uint32_t i = 0; i < n; i++) {
        order[i] = keys[i].idx;
    }
    rv = fill(ctl, t, "groups", group_cols, NCOLS(group_cols), groups, order);
out:
    free(keys);
    free(order);
    return rv;
}

/* The broker line: who answered, and how much it holds. Checked before anything is printed. */
struct broker_line {
    uint64_t pid, uptime_s, jobs, bytes;
    const msgpack_object *version, *mem_bytes, *journal; /* the last two optional (NULL) */
    const msgpack_object *db, *db_owed;                  /* optional (NULL) */
};

static int
check_broker(const struct ctl *ctl, const msgpack_object *b, struct broker_line *l)
{
    static const char *const need[] = { "pid", "uptime_s", "jobs", "bytes" };
    uint64_t *dst[] = { &l->pid, &l->uptime_s, &l->jobs, &l->bytes };
    const msgpack_object *o;
    int rv;

    for (size_t i = 0; i < NCOLS(need); i++) {
        if ((rv = field(ctl, "broker", -1, b, need[i], MSGPACK_OBJECT_POSITIVE_INTEGER, &o)) !=
            0) {
            return rv;
        }
        *dst[i] = o->via.u64;
    }
    if ((rv = field(ctl, "broker", -1, b, "version", MSGPACK_OBJECT_STR, &l->version)) != 0) {
        return rv;
    }
    o = ctl_map_get(b, "mem_bytes");
    l->mem_bytes = o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o : NULL;
    o = ctl_map_get(b, "journal");
    l->journal = o != NULL && o->type == MSGPACK_OBJECT_STR ? o : NULL;
    o = ctl_map_get(b, "db");
    l->db = o != NULL && o->type == MSGPACK_OBJECT_STR ? o : NULL;
    o = ctl_map_get(b, "db_owed");
    l->db_owed = o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o : NULL;
    return 0;
}

static void
print_broker(const struct broker_line *l)
{
    char up[64], bytes[64];

    if (l->uptime_s < 60) {
        snprintf(up, sizeof(up), "%" PRIu64 " s", l->uptime_s);
    } else {
        ctl_fmt_duration_us(up, sizeof(up),
                            l->uptime_s < UINT64_MAX / 1000000 ? l->uptime_s * 1000000
                                                               : UINT64_MAX);
    }
    ctl_fmt_bytes(bytes, sizeof(bytes), l->bytes);
    printf("broker: pid %" PRIu64 ", version ", l->pid);
    json_write_text(stdout, l->version->via.str.ptr, l->version->via.str.size);
    printf(", up %s, %" PRIu64 " job%s, %s of payloads", up, l->jobs, l->jobs == 1 ? "" : "s",
           bytes);
    if (l->mem_bytes != NULL) {
        ctl_fmt_bytes(bytes, sizeof(bytes), l->mem_bytes->via.u64);
        printf(", %s of memory", bytes);
    }
    if (l->journal != NULL) {
        fputs(", journal ", stdout);
        json_write_text(stdout, l->journal->via.str.ptr, l->journal->via.str.size);
    }
    /* The database only when there is one: "db up", "db down (120 rows owed)". */
    if (l->db != NULL &&
        !(l->db->via.str.size == 3 && memcmp(l->db->via.str.ptr, "off", 3) == 0)) {
        fputs(", db ", stdout);
        json_write_text(stdout, l->db->via.str.ptr, l->db->via.str.size);
        if (l->db_owed != NULL && l->db_owed->via.u64 > 0) {
            printf(" (%" PRIu64 " rows owed)", l->db_owed->via.u64);
        }
    }
    fputc('\n', stdout);
}

int
cmd_stats(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const msgpack_object *broker, *queues, *groups, *workers;
    struct broker_line line;
    struct table tw, tq, tg;
    struct wire_msg req;
    int rv;

    (void)argc;
    (void)argv;
    if (ov->v[CTL_OPT_WATCH] != NULL) {
        uint64_t interval_ms = STATS_INTERVAL_MS_DEFAULT;
        if (ov->v[CTL_OPT_JSON] != NULL) {
            return ctl_usage(ctl, "--json and --watch exclude each other");
        }
        if (ov->v[CTL_OPT_INTERVAL] != NULL &&
            opt_ms("interval", ov->v[CTL_OPT_INTERVAL], STATS_INTERVAL_MS_MIN,
                   STATS_INTERVAL_MS_MAX, &interval_ms) != 0) {
            return CTL_EXIT_USAGE;
        }
        return watch_tui_run(ctl, interval_ms, ov->v[CTL_OPT_PLAIN] != NULL);
    }
    if (ov->v[CTL_OPT_INTERVAL] != NULL || ov->v[CTL_OPT_PLAIN] != NULL) {
        return ctl_usage(ctl, "--interval and --plain go with --watch");
    }
    wire_msg_init(&req);
    if ((rv = ctl_call(ctl, "stats", &req)) != 0) {
        return rv;
    }
    if ((rv = ctl_reply_obj(ctl, WK_BROKER, MSGPACK_OBJECT_MAP, &broker)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_QUEUES, MSGPACK_OBJECT_ARRAY, &queues)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_GROUPS, MSGPACK_OBJECT_ARRAY, &groups)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_WORKERS, MSGPACK_OBJECT_ARRAY, &workers)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    /* Everything is checked before the first line is printed: a bad reply prints no half. */
    table_for(&tw, worker_cols, NCOLS(worker_cols));
    table_for(&tq, queue_cols, NCOLS(queue_cols));
    table_for(&tg, group_cols, NCOLS(group_cols));
    if ((rv = check_broker(ctl, broker, &line)) != 0 ||
        (rv = fill(ctl, &tw, "workers", worker_cols, NCOLS(worker_cols), workers, NULL)) != 0 ||
        (rv = fill(ctl, &tq, "queues", queue_cols, NCOLS(queue_cols), queues, NULL)) != 0 ||
        (rv = fill_groups(ctl, &tg, groups)) != 0) {
        goto out;
    }
    print_broker(&line);
    fputc('\n', stdout);
    if ((rv = print_section("workers", &tw)) != 0) {
        goto out;
    }
    fputc('\n', stdout);
    if ((rv = print_section("queues", &tq)) != 0) {
        goto out;
    }
    fputc('\n', stdout);
    if ((rv = print_section("groups", &tg)) != 0) {
        goto out;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "ctl: cannot write to stdout\n");
        rv = CTL_EXIT_FAILED;
    }
out:
    table_fini(&tw);
    table_fini(&tq);
    table_fini(&tg);
    return rv;
}
