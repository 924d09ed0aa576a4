#include "watch.h"

#include "err.h"
#include "wire.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000LL
#define GRID_COLS 10
#define TEXT_COL_MAX 32 /* columns a text cell may take before it is cut (the last one is '~') */
#define ELASTIC_MIN 8   /* an elastic column narrower than this is dropped */
#define GAP 2           /* spaces between columns */

/* --- reading a reply ------------------------------------------------------------------- */

static const msgpack_object *
map_get(const msgpack_object *map, const char *key)
{
    return wire_obj_get(map, key);
}

static uint64_t
get_u64(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = map_get(map, key);
    return o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : WATCH_NA;
}

/* A non-negative finite number (integer or float), else NaN. */
static double
get_f64(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = map_get(map, key);
    double v;

    if (o == NULL) {
        return NAN;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: v = o->via.f64; break;
    default: return NAN;
    }
    return isfinite(v) && v >= 0 ? v : NAN;
}

/* Copies a str field into dst, printable ASCII only; "" when absent or not a str. */
static void
get_text(const msgpack_object *map, const char *key, char *dst, size_t cap)
{
    const msgpack_object *o = map_get(map, key);
    size_t n = 0;

    if (o != NULL && o->type == MSGPACK_OBJECT_STR) {
        for (; n < o->via.str.size && n + 1 < cap; n++) {
            unsigned char c = (unsigned char)o->via.str.ptr[n];
            dst[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
    }
    dst[n] = '\0';
}

static const msgpack_object *
get_array(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = map_get(map, key);
    return o != NULL && o->type == MSGPACK_OBJECT_ARRAY ? o : NULL;
}

static void
parse_broker(const msgpack_object *b, struct watch_broker *out)
{
    out->pid = get_u64(b, "pid");
    out->uptime_s = get_u64(b, "uptime_s");
    out->jobs = get_u64(b, "jobs");
    out->journal_bytes = get_u64(b, "journal_bytes");
    out->journal_segments = get_u64(b, "journal_segments");
    out->dispatched = get_u64(b, "dispatched");
    out->reserves = get_u64(b, "reserves");
    out->reserves_empty = get_u64(b, "reserves_empty");
    out->no_worker = get_u64(b, "no_worker");
    get_text(b, "version", out->version, sizeof(out->version));
    get_text(b, "journal", out->journal, sizeof(out->journal));
}

static void
parse_leader(const msgpack_object *l, struct watch_leader *out)
{
    memset(out, 0, sizeof(*out));
    if (l == NULL || l->type != MSGPACK_OBJECT_MAP) {
        return; /* nil: nobody leads */
    }
    out->present = true;
    get_text(l, "name", out->name, sizeof(out->name));
    out->lease = get_u64(l, "lease");
    out->expires_ms = get_u64(l, "expires_ms");
}

static void
parse_worker(const msgpack_object *m, struct watch_worker *out)
{
    get_text(m, "id", out->id, sizeof(out->id));
    get_text(m, "state", out->state, sizeof(out->state));
    out->pid = get_u64(m, "pid");
    out->jobs = get_u64(m, "jobs");
    out->rss_bytes = get_u64(m, "rss_bytes");
    out->current = get_u64(m, "current");
    out->uptime_s = get_u64(m, "uptime_s");
}

static void
parse_queue(const msgpack_object *m, struct watch_queue *out)
{
    const msgpack_object *p = map_get(m, "paused");

    get_text(m, "name", out->name, sizeof(out->name));
    out->priority = get_u64(m, "priority");
    out->weight = get_u64(m, "weight");
    out->max_inflight = get_u64(m, "max_inflight");
    out->ready = get_u64(m, "ready");
    out->reserved = get_u64(m, "reserved");
    out->dead = get_u64(m, "dead");
    out->done = get_u64(m, "done");
    out->dispatched = get_u64(m, "dispatched");
    out->paused = p != NULL && p->type == MSGPACK_OBJECT_BOOLEAN ? p->via.boolean : -1;
    out->rate = NAN;
}

static void
parse_group(const msgpack_object *m, struct watch_group *out)
{
    get_text(m, "name", out->name, sizeof(out->name));
    get_text(m, "route", out->route, sizeof(out->route));
    out->count = get_u64(m, "count");
    out->reserved = get_u64(m, "reserved");
    out->done = get_u64(m, "done");
    out->dispatched = get_u64(m, "dispatched");
    out->p50_ms = get_f64(m, "wait_p50_ms");
    out->p99_ms = get_f64(m, "wait_p99_ms");
    out->cap = WATCH_NA;
    out->rate = NAN;
    out->series = NULL;
}

static void
parse_decision(const msgpack_object *m, struct watch_decision *out)
{
    out->ts_ms = get_u64(m, "ts_ms");
    out->moved = get_u64(m, "moved");
    out->lease = get_u64(m, "lease");
    get_text(m, "group", out->group, sizeof(out->group));
    get_text(m, "queue", out->queue, sizeof(out->queue));
    get_text(m, "reason", out->reason, sizeof(out->reason));
}

/* An array of n elements of size sz (at least one, so that NULL means no memory). */
static void *
alloc_n(size_t n, size_t sz)
{
    return calloc(n > 0 ? n : 1, sz);
}

/* Parses root into s. Entries that are not maps are skipped. Returns 0 or SL_ENOMEM (s is
 * empty then). */
static int
parse_snap(const msgpack_object *root, struct watch_snap *s)
{
    const msgpack_object *wa = get_array(root, "workers"), *qa = get_array(root, "queues");
    const msgpack_object *ga = get_array(root, "groups"), *da = get_array(root, "decisions");
    uint32_t nw = wa != NULL ? wa->via.array.size : 0, nq = qa != NULL ? qa->via.array.size : 0;
    uint32_t ng = ga != NULL ? ga->via.array.size : 0;

    memset(s, 0, sizeof(*s));
    parse_broker(map_get(root, "broker"), &s->broker);
    parse_leader(map_get(root, "leader"), &s->leader);
    s->workers = alloc_n(nw, sizeof(*s->workers));
    s->queues = alloc_n(nq, sizeof(*s->queues));
    s->groups = alloc_n(ng, sizeof(*s->groups));
    if (s->workers == NULL || s->queues == NULL || s->groups == NULL) {
        watch_snap_fini(s);
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < nw; i++) {
        if (wa->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
            parse_worker(&wa->via.array.ptr[i], &s->workers[s->nworkers++]);
        }
    }
    for (uint32_t i = 0; i < nq; i++) {
        if (qa->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
            parse_queue(&qa->via.array.ptr[i], &s->queues[s->nqueues++]);
        }
    }
    for (uint32_t i = 0; i < ng; i++) {
        if (ga->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
            parse_group(&ga->via.array.ptr[i], &s->groups[s->ngroups++]);
        }
    }
    s->has_decisions = da != NULL;
    for (uint32_t i = 0; da != NULL && i < da->via.array.size; i++) {
        if (s->ndecisions == WATCH_DECISIONS_MAX) {
            break;
        }
        if (da->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
            parse_decision(&da->via.array.ptr[i], &s->decisions[s->ndecisions++]);
        }
    }
    return 0;
}

void
watch_snap_fini(struct watch_snap *s)
{
    free(s->workers);
    free(s->queues);
    free(s->groups);
    memset(s, 0, sizeof(*s));
}

/* --- rates and sparklines -------------------------------------------------------------- */

static void
series_reset(struct watch_series *s)
{
    s->src = 0;
    s->rate = NAN;
    s->head = s->n = 0;
}

static void
series_push(struct watch_series *s, double v)
{
    unsigned at = (s->head + s->n) % WATCH_SPARK_N;

    s->ring[at] = (float)v;
    if (s->n < WATCH_SPARK_N) {
        s->n++;
    } else {
        s->head = (s->head + 1) % WATCH_SPARK_N;
    }
}

/* Feeds the counter's value v (of source src: 0 none, 1 dispatched, 2 done) seen at now_ns. */
static void
series_feed(struct watch_series *s, int src, uint64_t v, int64_t now_ns)
{
    if (src == 0) {
        s->src = 0;
        s->rate = NAN;
        return;
    }
    if (s->src != src) {
        /* A first value, or another counter than before: a new base, nothing to measure. */
        s->src = src;
        s->base = v;
        s->base_ns = now_ns;
        return;
    }
    if (v < s->base) {
        /* The counter went down: reset by flush, or the broker restarted. Not a negative
         * rate: none happened that we can measure. */
        s->base = v;
        s->base_ns = now_ns;
        s->rate = 0;
        return;
    }
    int64_t dt = now_ns - s->base_ns;
    if (dt < WATCH_WINDOW_NS) {
        return;
    }
    double r = (double)(v - s->base) * (double)NS_PER_S / (double)dt;
    int64_t secs = (dt + NS_PER_S / 2) / NS_PER_S;
    secs = secs < 1 ? 1 : secs > WATCH_SPARK_N ? WATCH_SPARK_N : secs;
    for (int64_t i = 0; i < secs; i++) {
        series_push(s, r);
    }
    s->rate = r;
    s->base = v;
    s->base_ns = now_ns;
}

/* The series of name in m, created when missing; NULL without memory. */
static struct watch_series *
series_get(struct hmap *m, const char *name)
{
    size_t n = strlen(name);
    struct watch_series *s = hmap_get(m, name, n);

    if (s != NULL) {
        return s;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        return NULL;
    }
    memcpy(s->name, name, n + 1);
    s->name_len = (uint32_t)n;
    series_reset(s);
    if (hmap_put(m, s->name, n, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Drops the series the update gen did not see (a queue destroyed, a group forgotten). The map
 * cannot change during an iteration: each pass collects a batch, then deletes it. */
static void
series_sweep(struct hmap *m, uint64_t gen)
{
    struct watch_series *old[256];
    size_t n;

    do {
        size_t pos = 0;
        struct watch_series *s;
        n = 0;
        while (n < sizeof(old) / sizeof(old[0]) && (s = hmap_next(m, &pos)) != NULL) {
            if (s->gen != gen) {
                old[n++] = s;
            }
        }
        for (size_t i = 0; i < n; i++) {
            hmap_del(m, old[i]->name, old[i]->name_len);
            free(old[i]);
        }
    } while (n == sizeof(old) / sizeof(old[0]));
}

static void
series_free_all(struct hmap *m)
{
    size_t pos = 0;
    struct watch_series *s;

    while ((s = hmap_next(m, &pos)) != NULL) {
        free(s);
    }
    hmap_fini(m);
}

size_t
watch_series_samples(const struct watch_series *s, double *out)
{
    for (unsigned i = 0; i < s->n; i++) {
        out[i] = s->ring[(s->head + i) % WATCH_SPARK_N];
    }
    return s->n;
}

void
watch_spark(const double *v, size_t n, unsigned width, bool utf8, char *out, size_t cap)
{
    static const char ascii[] = "._-~=+*#";
    size_t m = n < width ? n : width, o = 0;
    const double *last = v + (n - m);
    double max = 0;

    if (cap == 0) {
        return;
    }
    for (size_t i = 0; i < m; i++) {
        max = last[i] > max ? last[i] : max;
    }
    for (size_t i = 0; i < width; i++) {
        double x = i < width - m ? 0 : last[i - (width - m)];
        if (!(x > 0) || !(max > 0)) {
            if (o + 1 >= cap) {
                break;
            }
            out[o++] = ' ';
            continue;
        }
        double t = x / max * 8; /* in (0, 8]: level ceil(t) - 1, without libm */
        int level = (int)t;
        level -= (double)level == t;
        level = level < 0 ? 0 : level > 7 ? 7 : level;
        if (utf8) {
            if (o + 3 >= cap) {
                break;
            }
            /* U+2581 .. U+2588, LOWER ONE EIGHTH BLOCK to FULL BLOCK */
            out[o++] = (char)0xe2;
            out[o++] = (char)0x96;
            out[o++] = (char)(0x81 + level);
        } else {
            if (o + 1 >= cap) {
                break;
            }
            out[o++] = ascii[level];
        }
    }
    out[o] = '\0';
}

/* --- sorting --------------------------------------------------------------------------- */

/* Larger first, unknown (NaN / WATCH_NA) last; 0 when equal. */
static int
desc_f(double a, double b)
{
    if (isnan(a) || isnan(b)) {
        return isnan(a) - isnan(b);
    }
    return a > b ? -1 : a < b;
}

static int
cmp_groups(const void *pa, const void *pb, void *arg)
{
    const struct watch_group *a = pa, *b = pb;
    enum watch_sort sort = *(const enum watch_sort *)arg;
    int c = 0;

    switch (sort) {
    case WATCH_SORT_BACKLOG:
        c = desc_f(a->count == WATCH_NA ? NAN : (double)a->count,
                   b->count == WATCH_NA ? NAN : (double)b->count);
        break;
    case WATCH_SORT_RATE:
        c = desc_f(a->rate, b->rate);
        break;
    case WATCH_SORT_WAIT:
        c = desc_f(a->p99_ms, b->p99_ms);
        if (c == 0) {
            c = desc_f(a->p50_ms, b->p50_ms);
        }
        break;
    case WATCH_SORT_NAME:
        break;
    }
    return c != 0 ? c : strcmp(a->name, b->name);
}

static void
sort_groups(struct watch *w)
{
    if (w->snap.ngroups > 1) {
        qsort_r(w->snap.groups, w->snap.ngroups, sizeof(*w->snap.groups), cmp_groups, &w->sort);
    }
}

void
watch_set_sort(struct watch *w, enum watch_sort sort)
{
    w->sort = sort;
    sort_groups(w);
}

bool
watch_sort_key(int key, enum watch_sort *out)
{
    switch (key) {
    case 'b': *out = WATCH_SORT_BACKLOG; return true;
    case 'r': *out = WATCH_SORT_RATE; return true;
    case 'w': *out = WATCH_SORT_WAIT; return true;
    case 'n': *out = WATCH_SORT_NAME; return true;
    default: return false;
    }
}

/* --- the model ------------------------------------------------------------------------- */

void
watch_init(struct watch *w, const char *url, uint64_t interval_ms, bool utf8)
{
    memset(w, 0, sizeof(*w));
    hmap_init(&w->gseries);
    hmap_init(&w->qseries);
    series_reset(&w->bseries);
    w->url = url;
    w->interval_ms = interval_ms;
    w->utf8 = utf8;
    w->sort = WATCH_SORT_BACKLOG;
}

void
watch_fini(struct watch *w)
{
    watch_snap_fini(&w->snap);
    series_free_all(&w->gseries);
    series_free_all(&w->qseries);
}

static int
src_of(uint64_t dispatched, uint64_t done, uint64_t *v)
{
    if (dispatched != WATCH_NA) {
        *v = dispatched;
        return 1;
    }
    if (done != WATCH_NA) {
        *v = done;
        return 2;
    }
    *v = 0;
    return 0;
}

int
watch_update(struct watch *w, const msgpack_object *root, int64_t now_ns)
{
    struct watch_snap s;
    struct hmap qbyname;
    uint64_t v, done_sum = 0;
    bool done_all = true;
    int rv;

    if (root == NULL || root->type != MSGPACK_OBJECT_MAP) {
        return SL_EBADREQ;
    }
    if ((rv = parse_snap(root, &s)) != 0) {
        return rv;
    }
    hmap_init(&qbyname);
    if (hmap_reserve(&qbyname, s.nqueues) != 0) {
        watch_snap_fini(&s);
        return SL_ENOMEM;
    }
    w->gen++;
    for (size_t i = 0; i < s.nqueues; i++) {
        struct watch_queue *q = &s.queues[i];
        struct watch_series *ser = series_get(&w->qseries, q->name);
        int src = src_of(q->dispatched, q->done, &v);
        if (ser != NULL) {
            ser->gen = w->gen;
            series_feed(ser, src, v, now_ns);
            q->rate = ser->rate;
        }
        hmap_put(&qbyname, q->name, strlen(q->name), q); /* reserved: cannot fail */
        if (q->done == WATCH_NA) {
            done_all = false;
        } else {
            done_sum += q->done;
        }
    }
    for (size_t i = 0; i < s.ngroups; i++) {
        struct watch_group *g = &s.groups[i];
        struct watch_series *ser = series_get(&w->gseries, g->name);
        int src = src_of(g->dispatched, g->done, &v);
        if (ser != NULL) {
            ser->gen = w->gen;
            series_feed(ser, src, v, now_ns);
            g->rate = ser->rate;
            g->series = ser;
        }
        const char *qn = g->route[0] != '\0' ? g->route : "default";
        const struct watch_queue *q = hmap_get(&qbyname, qn, strlen(qn));
        g->cap = q != NULL ? q->max_inflight : WATCH_NA;
    }
    hmap_fini(&qbyname);
    series_sweep(&w->qseries, w->gen);
    series_sweep(&w->gseries, w->gen);
    if (s.broker.dispatched != WATCH_NA) {
        series_feed(&w->bseries, 1, s.broker.dispatched, now_ns);
    } else {
        series_feed(&w->bseries, done_all && s.nqueues > 0 ? 2 : 0, done_sum, now_ns);
    }

    watch_snap_fini(&w->snap);
    w->snap = s;
    w->have_snap = true;
    w->snap_ns = now_ns;
    w->stale = false;
    w->unusable = false;
    w->why[0] = '\0';
    sort_groups(w);
    return 0;
}

static void
mark_stale(struct watch *w, bool unusable, const char *why, int64_t now_ns)
{
    if (!w->stale) {
        w->stale = true;
        w->stale_ns = now_ns;
    }
    w->unusable = unusable;
    snprintf(w->why, sizeof(w->why), "%s", why);
}

void
watch_unreachable(struct watch *w, const char *why, int64_t now_ns)
{
    mark_stale(w, false, why, now_ns);
}

void
watch_unusable(struct watch *w, const char *why, int64_t now_ns)
{
    mark_stale(w, true, why, now_ns);
}

/* --- text ------------------------------------------------------------------------------ */

size_t
watch_text_cols(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        n += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return n;
}

/* The byte length of the first cols columns of s (all of it when shorter). */
static size_t
bytes_for_cols(const char *s, size_t cols)
{
    size_t i = 0, c = 0;
    while (s[i] != '\0') {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (c == cols) {
                break;
            }
            c++;
        }
        i++;
    }
    return i;
}

static void
fmt_u64(char *out, size_t cap, uint64_t v)
{
    if (v == WATCH_NA) {
        snprintf(out, cap, "-");
    } else {
        snprintf(out, cap, "%" PRIu64, v);
    }
}

static void
fmt_bytes(char *out, size_t cap, uint64_t v)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double x = (double)v;
    unsigned u = 0;

    if (v == WATCH_NA) {
        snprintf(out, cap, "-");
        return;
    }
    if (v < 1024) {
        snprintf(out, cap, "%" PRIu64 " B", v);
        return;
    }
    x /= 1024;
    while (x >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        x /= 1024;
        u++;
    }
    snprintf(out, cap, "%.1f %s", x, units[u]);
}

static void
fmt_secs(char *out, size_t cap, uint64_t s)
{
    if (s == WATCH_NA) {
        snprintf(out, cap, "-");
    } else if (s < 60) {
        snprintf(out, cap, "%" PRIu64 "s", s);
    } else if (s < 3600) {
        snprintf(out, cap, "%" PRIu64 "m %02" PRIu64 "s", s / 60, s % 60);
    } else if (s < 86400) {
        snprintf(out, cap, "%" PRIu64 "h %02" PRIu64 "m", s / 3600, s / 60 % 60);
    } else {
        snprintf(out, cap, "%" PRIu64 "d %02" PRIu64 "h", s / 86400, s / 3600 % 24);
    }
}

static void
fmt_rate(char *out, size_t cap, double r)
{
    if (isnan(r)) {
        snprintf(out, cap, "-");
    } else if (r < 10) {
        snprintf(out, cap, "%.1f", r);
    } else {
        snprintf(out, cap, "%.0f", r);
    }
}

static void
fmt_wait(char *out, size_t cap, double ms)
{
    if (isnan(ms)) {
        snprintf(out, cap, "-");
    } else if (ms < 10) {
        snprintf(out, cap, "%.1fms", ms);
    } else if (ms < 1000) {
        snprintf(out, cap, "%.0fms", ms);
    } else if (ms < 600000) {
        snprintf(out, cap, "%.1fs", ms / 1000);
    } else {
        snprintf(out, cap, "%.0fm", ms / 60000);
    }
}

static const char *
dash(const char *s)
{
    return s[0] != '\0' ? s : "-";
}

/* --- lines ----------------------------------------------------------------------------- */

void
watch_lines_init(struct watch_lines *l)
{
    memset(l, 0, sizeof(*l));
}

static void
lines_clear(struct watch_lines *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].text);
    }
    l->n = 0;
}

void
watch_lines_fini(struct watch_lines *l)
{
    lines_clear(l);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Appends s, cut to width columns (0: not cut) and without trailing blanks. Takes nothing. */
static int
lines_add(struct watch_lines *l, enum watch_line_kind kind, const char *s, unsigned width)
{
    size_t n = width > 0 ? bytes_for_cols(s, width) : strlen(s);

    while (n > 0 && s[n - 1] == ' ') {
        n--;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? l->cap * 2 : 64;
        struct watch_line *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            return SL_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    char *t = malloc(n + 1);
    if (t == NULL) {
        return SL_ENOMEM;
    }
    memcpy(t, s, n);
    t[n] = '\0';
    l->v[l->n++] = (struct watch_line){ kind, t };
    return 0;
}

static int
lines_addf(struct watch_lines *l, enum watch_line_kind kind, unsigned width, const char *fmt,
           ...) __attribute__((format(printf, 4, 5)));

static int
lines_addf(struct watch_lines *l, enum watch_line_kind kind, unsigned width, const char *fmt,
           ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return lines_add(l, kind, buf, width);
}

/* Moves the line at index i of from to the end of to. */
static int
lines_take(struct watch_lines *to, struct watch_lines *from, size_t i)
{
    if (lines_add(to, from->v[i].kind, "", 0) != 0) {
        return SL_ENOMEM;
    }
    free(to->v[to->n - 1].text);
    to->v[to->n - 1].text = from->v[i].text;
    from->v[i].text = NULL;
    return 0;
}

/* --- tables ---------------------------------------------------------------------------- */

/* A table being laid out: cells are copies, row-major. */
struct grid {
    unsigned ncols;
    const char *title[GRID_COLS];
    bool right[GRID_COLS];   /* numbers: aligned right */
    bool elastic[GRID_COLS]; /* takes what width is left, keeps its right end when cut */
    char **cells;
    size_t ncells, cap;
    bool nomem;
};

static void
grid_init(struct grid *g)
{
    memset(g, 0, sizeof(*g));
}

static void
grid_fini(struct grid *g)
{
    for (size_t i = 0; i < g->ncells; i++) {
        free(g->cells[i]);
    }
    free(g->cells);
}

static void
grid_col(struct grid *g, const char *title, bool right, bool elastic)
{
    g->title[g->ncols] = title;
    g->right[g->ncols] = right;
    g->elastic[g->ncols] = elastic;
    g->ncols++;
}

static void
grid_cell(struct grid *g, const char *s)
{
    if (g->nomem) {
        return;
    }
    if (g->ncells == g->cap) {
        size_t cap = g->cap > 0 ? g->cap * 2 : 64;
        char **c = realloc(g->cells, cap * sizeof(*c));
        if (c == NULL) {
            g->nomem = true;
            return;
        }
        g->cells = c;
        g->cap = cap;
    }
    if ((g->cells[g->ncells] = strdup(s)) == NULL) {
        g->nomem = true;
        return;
    }
    g->ncells++;
}

/* Appends cell s to line at *o (cap bytes), in w columns. */
static void
put_cell(char *line, size_t cap, size_t *o, const char *s, size_t w, bool right, bool keep_end)
{
    size_t cols = watch_text_cols(s), pad = 0;
    const char *p = s;
    size_t n;
    bool cut = false;

    if (cols > w) {
        if (keep_end) {
            p = s + bytes_for_cols(s, cols - w);
            n = strlen(p);
        } else {
            n = bytes_for_cols(s, w > 0 ? w - 1 : 0);
            cut = w > 0;
        }
    } else {
        n = strlen(s);
        pad = w - cols;
    }
    if (*o + pad + n + 2 >= cap) {
        return;
    }
    if (right) {
        memset(line + *o, ' ', pad);
        *o += pad;
    }
    memcpy(line + *o, p, n);
    *o += n;
    if (cut) {
        line[(*o)++] = '~';
    }
    if (!right) {
        memset(line + *o, ' ', pad);
        *o += pad;
    }
    line[*o] = '\0';
}

/* Lays g out at width (0: unlimited) into out: a header line, then one line per row. */
static int
grid_render(const struct grid *g, unsigned width, struct watch_lines *out)
{
    size_t w[GRID_COLS];
    unsigned vis = 0;
    size_t used = 0;
    char line[2048];
    int rv = 0;

    if (g->nomem) {
        return SL_ENOMEM;
    }
    for (unsigned c = 0; c < g->ncols; c++) {
        w[c] = watch_text_cols(g->title[c]);
        for (size_t i = c; i < g->ncells; i += g->ncols) {
            size_t n = watch_text_cols(g->cells[i]);
            w[c] = n > w[c] ? n : w[c];
        }
        if (!g->right[c] && !g->elastic[c] && w[c] > TEXT_COL_MAX) {
            w[c] = TEXT_COL_MAX;
        }
    }
    /* Columns from the left while they fit; an elastic one shrinks to what is left. */
    for (unsigned c = 0; c < g->ncols; c++) {
        size_t gap = c > 0 ? GAP : 0;
        if (width == 0 || used + gap + w[c] <= width) {
            used += gap + w[c];
            vis++;
            continue;
        }
        if (c == 0) {
            w[0] = width;
            used = width;
            vis = 1;
            continue;
        }
        if (g->elastic[c] && width > used + gap && width - used - gap >= ELASTIC_MIN) {
            w[c] = width - used - gap;
            vis++;
        }
        break;
    }
    size_t nrows = g->ncols > 0 ? g->ncells / g->ncols : 0;
    for (size_t r = 0; rv == 0 && r <= nrows; r++) {
        size_t o = 0;
        line[0] = '\0';
        for (unsigned c = 0; c < vis; c++) {
            const char *s = r == 0 ? g->title[c] : g->cells[(r - 1) * g->ncols + c];
            if (c > 0) {
                put_cell(line, sizeof(line), &o, "", GAP, false, false);
            }
            put_cell(line, sizeof(line), &o, s, w[c], g->right[c], g->elastic[c] && r > 0);
        }
        rv = lines_add(out, r == 0 ? WATCH_LINE_HEADER : WATCH_LINE_TEXT, line, width);
    }
    return rv;
}

/* --- the screen ------------------------------------------------------------------------ */

static const char *
sort_name(enum watch_sort s)
{
    switch (s) {
    case WATCH_SORT_RATE: return "rate";
    case WATCH_SORT_WAIT: return "p99 wait";
    case WATCH_SORT_NAME: return "name";
    default: return "backlog";
    }
}

/* A section: a title, maybe a table; the first fixed lines stay when it must shrink. */
struct section {
    struct watch_lines l;
    size_t fixed;
};

static int
sec_workers(const struct watch *w, unsigned width, struct section *sec)
{
    const struct watch_snap *s = &w->snap;
    struct grid g;
    char b[7][64];
    int rv;

    sec->fixed = 2;
    if ((rv = lines_addf(&sec->l, WATCH_LINE_TITLE, width, "workers (%zu)", s->nworkers)) != 0) {
        return rv;
    }
    if (s->nworkers == 0) {
        sec->fixed = 1;
        return lines_add(&sec->l, WATCH_LINE_TEXT, "  none connected", width);
    }
    grid_init(&g);
    grid_col(&g, "PID", true, false);
    grid_col(&g, "STATE", false, false);
    grid_col(&g, "JOBS", true, false);
    grid_col(&g, "MEMORY", true, false);
    grid_col(&g, "CURRENT", true, false);
    grid_col(&g, "UPTIME", true, false);
    grid_col(&g, "WORKER", false, false);
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct watch_worker *x = &s->workers[i];
        fmt_u64(b[0], sizeof(b[0]), x->pid);
        fmt_u64(b[1], sizeof(b[1]), x->jobs);
        fmt_bytes(b[2], sizeof(b[2]), x->rss_bytes);
        fmt_u64(b[3], sizeof(b[3]), x->current);
        fmt_secs(b[4], sizeof(b[4]), x->uptime_s);
        grid_cell(&g, b[0]);
        grid_cell(&g, dash(x->state));
        grid_cell(&g, b[1]);
        grid_cell(&g, b[2]);
        grid_cell(&g, b[3]);
        grid_cell(&g, b[4]);
        grid_cell(&g, dash(x->id));
    }
    rv = grid_render(&g, width, &sec->l);
    grid_fini(&g);
    return rv;
}

static int
sec_queues(const struct watch *w, unsigned width, struct section *sec)
{
    const struct watch_snap *s = &w->snap;
    struct grid g;
    char b[8][64];
    int rv;

    sec->fixed = 2;
    if ((rv = lines_addf(&sec->l, WATCH_LINE_TITLE, width, "queues (%zu)", s->nqueues)) != 0) {
        return rv;
    }
    if (s->nqueues == 0) {
        sec->fixed = 1;
        return lines_add(&sec->l, WATCH_LINE_TEXT, "  none", width);
    }
    grid_init(&g);
    grid_col(&g, "QUEUE", false, false);
    grid_col(&g, "PRIO", true, false);
    grid_col(&g, "WEIGHT", true, false);
    grid_col(&g, "CAP", true, false);
    grid_col(&g, "STATE", false, false);
    grid_col(&g, "READY", true, false);
    grid_col(&g, "RESERVED", true, false);
    grid_col(&g, "DEAD", true, false);
    grid_col(&g, "JOBS/S", true, false);
    for (size_t i = 0; i < s->nqueues; i++) {
        const struct watch_queue *q = &s->queues[i];
        fmt_u64(b[0], sizeof(b[0]), q->priority);
        fmt_u64(b[1], sizeof(b[1]), q->weight);
        if (q->max_inflight == 0) {
            snprintf(b[2], sizeof(b[2]), "none");
        } else {
            fmt_u64(b[2], sizeof(b[2]), q->max_inflight);
        }
        fmt_u64(b[3], sizeof(b[3]), q->ready);
        fmt_u64(b[4], sizeof(b[4]), q->reserved);
        fmt_u64(b[5], sizeof(b[5]), q->dead);
        fmt_rate(b[6], sizeof(b[6]), q->rate);
        grid_cell(&g, dash(q->name));
        grid_cell(&g, b[0]);
        grid_cell(&g, b[1]);
        grid_cell(&g, b[2]);
        grid_cell(&g, q->paused < 0 ? "-" : q->paused ? "paused" : "active");
        grid_cell(&g, b[3]);
        grid_cell(&g, b[4]);
        grid_cell(&g, b[5]);
        grid_cell(&g, b[6]);
    }
    rv = grid_render(&g, width, &sec->l);
    grid_fini(&g);
    return rv;
}

static int
sec_groups(const struct watch *w, unsigned width, struct section *sec)
{
    const struct watch_snap *s = &w->snap;
    double hist[WATCH_SPARK_N];
    char b[6][64], spark[WATCH_SPARK_N * 3 + 1];
    struct grid g;
    int rv;

    sec->fixed = 2;
    if ((rv = lines_addf(&sec->l, WATCH_LINE_TITLE, width, "groups (%zu), by %s", s->ngroups,
                         sort_name(w->sort))) != 0) {
        return rv;
    }
    if (s->ngroups == 0) {
        sec->fixed = 1;
        return lines_add(&sec->l, WATCH_LINE_TEXT, "  none", width);
    }
    grid_init(&g);
    grid_col(&g, "GROUP", false, false);
    grid_col(&g, "ROUTE", false, false);
    grid_col(&g, "COUNT", true, false);
    grid_col(&g, "INFLIGHT", true, false);
    grid_col(&g, "JOBS/S", true, false);
    grid_col(&g, "P50", true, false);
    grid_col(&g, "P99", true, false);
    grid_col(&g, "LAST 60S (JOBS/S)", false, true);
    for (size_t i = 0; i < s->ngroups; i++) {
        const struct watch_group *x = &s->groups[i];
        fmt_u64(b[0], sizeof(b[0]), x->count);
        if (x->reserved == WATCH_NA) {
            snprintf(b[1], sizeof(b[1]), "-");
        } else if (x->cap == WATCH_NA) {
            snprintf(b[1], sizeof(b[1]), "%" PRIu64, x->reserved);
        } else if (x->cap == 0) {
            snprintf(b[1], sizeof(b[1]), "%" PRIu64 "/-", x->reserved);
        } else {
            snprintf(b[1], sizeof(b[1]), "%" PRIu64 "/%" PRIu64, x->reserved, x->cap);
        }
        fmt_rate(b[2], sizeof(b[2]), x->rate);
        fmt_wait(b[3], sizeof(b[3]), x->p50_ms);
        fmt_wait(b[4], sizeof(b[4]), x->p99_ms);
        size_t n = x->series != NULL ? watch_series_samples(x->series, hist) : 0;
        watch_spark(hist, n, WATCH_SPARK_N, w->utf8, spark, sizeof(spark));
        grid_cell(&g, dash(x->name));
        grid_cell(&g, x->route[0] != '\0' ? x->route : "-");
        grid_cell(&g, b[0]);
        grid_cell(&g, b[1]);
        grid_cell(&g, b[2]);
        grid_cell(&g, b[3]);
        grid_cell(&g, b[4]);
        grid_cell(&g, spark);
    }
    rv = grid_render(&g, width, &sec->l);
    grid_fini(&g);
    return rv;
}

static int
sec_router(const struct watch *w, unsigned width, struct section *sec)
{
    const struct watch_snap *s = &w->snap;
    const struct watch_leader *l = &s->leader;
    char lease[32], moved[32], when[16];
    int rv;

    sec->fixed = 1;
    if (!l->present) {
        rv = lines_add(&sec->l, WATCH_LINE_TITLE, "router: none leads", width);
    } else {
        char exp[32];
        fmt_u64(lease, sizeof(lease), l->lease);
        fmt_u64(exp, sizeof(exp), l->expires_ms);
        rv = lines_addf(&sec->l, WATCH_LINE_TITLE, width,
                        "router: %s leads (lease %s, expires in %s ms)", dash(l->name), lease,
                        exp);
    }
    if (rv != 0) {
        return rv;
    }
    if (!s->has_decisions) {
        return lines_add(&sec->l, WATCH_LINE_TEXT, "  decisions: - (not reported by this broker)",
                         width);
    }
    if (s->ndecisions == 0) {
        return lines_add(&sec->l, WATCH_LINE_TEXT, "  decisions: none yet", width);
    }
    for (size_t i = 0; i < s->ndecisions && rv == 0; i++) {
        const struct watch_decision *d = &s->decisions[i];
        if (d->ts_ms == WATCH_NA) {
            snprintf(when, sizeof(when), "--:--:--");
        } else {
            time_t t = (time_t)(d->ts_ms / 1000);
            struct tm tm;
            if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%H:%M:%S", &tm) == 0) {
                snprintf(when, sizeof(when), "--:--:--");
            }
        }
        fmt_u64(moved, sizeof(moved), d->moved);
        fmt_u64(lease, sizeof(lease), d->lease);
        rv = lines_addf(&sec->l, WATCH_LINE_TEXT, width, "  %s  %s -> %s  moved %s  lease %s  %s",
                        when, dash(d->group), d->queue[0] != '\0' ? d->queue : "default", moved,
                        lease, dash(d->reason));
    }
    return rv;
}

static int
top_lines(const struct watch *w, unsigned width, int64_t now_ns, struct watch_lines *out)
{
    const struct watch_broker *b = &w->snap.broker;
    int rv;

    if (!w->have_snap) {
        rv = lines_addf(out, WATCH_LINE_TITLE, width, "sluice: waiting for the broker at %s",
                        w->url != NULL ? w->url : "-");
    } else {
        char up[32], jb[32], seg[32], jobs[32], pid[32];
        fmt_u64(pid, sizeof(pid), b->pid);
        fmt_secs(up, sizeof(up), b->uptime_s);
        fmt_u64(jobs, sizeof(jobs), b->jobs);
        fmt_bytes(jb, sizeof(jb), b->journal_bytes);
        fmt_u64(seg, sizeof(seg), b->journal_segments);
        rv = lines_addf(out, WATCH_LINE_TITLE, width,
                        "broker pid %s, version %s, up %s, %s jobs, journal %s %s in %s "
                        "segments%s",
                        pid, dash(b->version), up, jobs, dash(b->journal), jb, seg,
                        w->stale ? "  [STALE]" : "");
        if (rv == 0) {
            char rate[32], res[32], empty[32], nw[32];
            fmt_rate(rate, sizeof(rate), w->bseries.rate);
            fmt_u64(res, sizeof(res), b->reserves);
            fmt_u64(empty, sizeof(empty), b->reserves_empty);
            fmt_u64(nw, sizeof(nw), b->no_worker);
            rv = lines_addf(out, WATCH_LINE_TEXT, width,
                            "dispatch %s jobs/s, reserves %s (%s empty), no free worker %s, "
                            "every %" PRIu64 " ms",
                            rate, res, empty, nw, w->interval_ms);
        }
    }
    if (rv == 0 && w->stale) {
        int64_t ago = (now_ns - (w->have_snap ? w->snap_ns : w->stale_ns)) / NS_PER_S;
        const char *what = w->unusable ? "no usable reply from the broker" : "broker unreachable";
        const char *then = w->unusable ? "asking again" : "reconnecting";
        if (w->have_snap) {
            rv = lines_addf(out, WATCH_LINE_NOTICE, width,
                            "%s at %s (%s): data %" PRId64 " s old, %s", what,
                            w->url != NULL ? w->url : "-", w->why, ago < 0 ? 0 : ago, then);
        } else {
            rv = lines_addf(out, WATCH_LINE_NOTICE, width, "%s at %s (%s): %s", what,
                            w->url != NULL ? w->url : "-", w->why, then);
        }
    }
    return rv;
}

int
watch_render(const struct watch *w, unsigned width, unsigned height, bool footer,
             int64_t now_ns, struct watch_lines *out)
{
    struct section sec[4];
    size_t nsec = 0, alloc[4], total = 0, avail, nfoot = footer ? 1 : 0;
    int rv;

    lines_clear(out);
    if ((rv = top_lines(w, width, now_ns, out)) != 0) {
        return rv;
    }
    for (size_t i = 0; i < 4; i++) {
        watch_lines_init(&sec[i].l);
        sec[i].fixed = 0;
    }
    if (w->have_snap) {
        nsec = 4;
        if ((rv = sec_workers(w, width, &sec[0])) != 0 ||
            (rv = sec_queues(w, width, &sec[1])) != 0 ||
            (rv = sec_groups(w, width, &sec[2])) != 0 ||
            (rv = sec_router(w, width, &sec[3])) != 0) {
            goto out;
        }
    }
    for (size_t i = 0; i < nsec; i++) {
        alloc[i] = sec[i].l.n;
        total += sec[i].l.n;
    }
    if (height > 0 && out->n + nfoot > height) {
        /* Not even the broker's lines fit: keep the first ones and the footer. */
        while (out->n > 0 && out->n + nfoot > height) {
            free(out->v[--out->n].text);
        }
        nsec = 0;
    }
    avail = height > 0 ? height - out->n - nfoot : SIZE_MAX;
    bool gaps = total + nsec <= avail; /* a blank line before each section */
    if (!gaps) {
        /* Take a line from the section that has the most beyond its fixed lines and one row,
         * until everything fits; then cut from the bottom. */
        while (total > avail) {
            size_t best = nsec, most = 0;
            for (size_t i = 0; i < nsec; i++) {
                size_t min = sec[i].fixed + 1 < sec[i].l.n ? sec[i].fixed + 1 : sec[i].l.n;
                if (alloc[i] > min && alloc[i] - min >= most) {
                    most = alloc[i] - min;
                    best = i;
                }
            }
            if (best == nsec) {
                break;
            }
            alloc[best]--;
            total--;
        }
        for (size_t i = nsec; i-- > 0 && total > avail;) {
            size_t cut = total - avail < alloc[i] ? total - avail : alloc[i];
            alloc[i] -= cut;
            total -= cut;
        }
    }
    for (size_t i = 0; i < nsec && rv == 0; i++) {
        if (alloc[i] == 0) {
            continue;
        }
        if (gaps) {
            rv = lines_add(out, WATCH_LINE_TEXT, "", width);
        }
        bool shrunk = alloc[i] < sec[i].l.n && alloc[i] > sec[i].fixed;
        size_t show = shrunk ? alloc[i] - 1 : alloc[i];
        for (size_t k = 0; k < show && rv == 0; k++) {
            rv = lines_take(out, &sec[i].l, k);
        }
        if (rv == 0 && shrunk) {
            rv = lines_addf(out, WATCH_LINE_TEXT, width, "  ... %zu more",
                            sec[i].l.n - show);
        }
    }
    if (rv == 0 && footer) {
        rv = lines_addf(out, WATCH_LINE_FOOTER, width,
                        "q quit   sort groups: b backlog  r rate  w p99 wait  n name   (now: %s)",
                        sort_name(w->sort));
    }
out:
    for (size_t i = 0; i < 4; i++) {
        watch_lines_fini(&sec[i].l);
    }
    return rv;
}
