#include "watch.h"

#include "err.h"
#include "wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL

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
    out->unique_keys = get_u64(b, "unique_keys");
    const msgpack_object *e = map_get(b, "errors");
    out->failed = e != NULL && e->type == MSGPACK_OBJECT_MAP ? 0 : WATCH_NA;
    for (uint32_t i = 0; e != NULL && e->type == MSGPACK_OBJECT_MAP && i < e->via.map.size; i++) {
        const msgpack_object *v = &e->via.map.ptr[i].val;
        out->failed += v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
    }
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
    get_text(m, "order", out->order, sizeof(out->order));
    out->priority = get_u64(m, "priority");
    out->weight = get_u64(m, "weight");
    out->max_inflight = get_u64(m, "max_inflight");
    out->ready = get_u64(m, "ready");
    out->reserved = get_u64(m, "reserved");
    out->dead = get_u64(m, "dead");
    out->done = get_u64(m, "done");
    out->dispatched = get_u64(m, "dispatched");
    out->groups_ready = get_u64(m, "groups_ready");
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
    out->weight = get_f64(m, "weight");
    out->share = get_f64(m, "share");
    out->oldest_ready_ms = get_f64(m, "oldest_ready_ms");
    out->limit = get_f64(m, "rate");
    const msgpack_object *h = map_get(m, "held");
    out->held = h != NULL && h->type == MSGPACK_OBJECT_BOOLEAN && h->via.boolean;
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
