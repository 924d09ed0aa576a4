#include "grouppage.h"

#include "err.h"
#include "queue.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A sort key's value for g: a number (larger sorts later in ascending order). */
typedef double key_fn(const struct group *g, int64_t now_ns);

static double
k_backlog(const struct group *g, int64_t now)
{
    (void)now;
    return (double)group_count(g);
}

static double
k_ready(const struct group *g, int64_t now)
{
    (void)now;
    return (double)g->jobs[JOB_READY];
}

static double
k_inflight(const struct group *g, int64_t now)
{
    (void)now;
    return (double)g->jobs[JOB_RESERVED];
}

static double
k_delayed(const struct group *g, int64_t now)
{
    (void)now;
    return (double)g->jobs[JOB_DELAYED];
}

static double
k_dead(const struct group *g, int64_t now)
{
    (void)now;
    return (double)g->jobs[JOB_DEAD];
}

/* No job waiting: -1, below every age. */
static double
k_oldest(const struct group *g, int64_t now)
{
    int64_t since = queue_group_ready_since(g);
    return since == INT64_MAX ? -1.0 : now > since ? (double)(now - since) : 0.0;
}

static double
k_rate(const struct group *g, int64_t now)
{
    return (double)wait_window_count(&g->wait, now);
}

/* No wait in the window: -1, below every wait. */
static double
quantile(const struct group *g, int64_t now, double q)
{
    double ms;
    return wait_window_quantile(&g->wait, now, q, &ms) ? ms : -1.0;
}

static double
k_p50(const struct group *g, int64_t now)
{
    return quantile(g, now, 0.50);
}

static double
k_p99(const struct group *g, int64_t now)
{
    return quantile(g, now, 0.99);
}

static double
k_pushed(const struct group *g, int64_t now)
{
    (void)now;
    return (double)g->pushed;
}

static double
k_done(const struct group *g, int64_t now)
{
    (void)now;
    return (double)g->done;
}

static double
k_failed(const struct group *g, int64_t now)
{
    (void)now;
    return (double)g->failed;
}

/* name: by name, no key function. The names match stats' group fields where one exists. */
static const struct {
    const char *name;
    key_fn *fn;
} keys[GP_NKEYS] = {
    [GP_NAME] = { "name", NULL },
    [GP_BACKLOG] = { "count", k_backlog },
    [GP_READY] = { "ready", k_ready },
    [GP_INFLIGHT] = { "reserved", k_inflight },
    [GP_DELAYED] = { "delayed", k_delayed },
    [GP_DEAD] = { "dead", k_dead },
    [GP_OLDEST] = { "oldest_ready_ms", k_oldest },
    [GP_RATE] = { "share", k_rate },
    [GP_WAIT_P50] = { "wait_p50_ms", k_p50 },
    [GP_WAIT_P99] = { "wait_p99_ms", k_p99 },
    [GP_PUSHED] = { "pushed", k_pushed },
    [GP_DONE] = { "done", k_done },
    [GP_FAILED] = { "failed", k_failed },
};

bool
grouppage_key_parse(struct sl_str s, enum grouppage_key *k)
{
    for (int i = 0; i < GP_NKEYS; i++) {
        if (sl_str_eq(s, keys[i].name)) {
            *k = (enum grouppage_key)i;
            return true;
        }
    }
    return false;
}

const char *
grouppage_key_list(void)
{
    return "name, count, ready, reserved, delayed, dead, oldest_ready_ms, share, wait_p50_ms, "
           "wait_p99_ms, pushed, done, failed";
}

/* Does name (n bytes) hold f, ignoring ASCII case? */
static bool
holds(const char *name, uint32_t n, struct sl_str f)
{
    if (f.n == 0) {
        return true;
    }
    for (uint32_t i = 0; i + f.n <= n; i++) {
        if (strncasecmp(name + i, f.p, f.n) == 0) {
            return true;
        }
    }
    return false;
}

struct row {
    const struct group *g;
    double v;
    uint32_t seq;   /* first-seen order: ties keep it, so pages do not shuffle */
};

static int
cmp_value(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->v != y->v) {
        return x->v < y->v ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
cmp_name(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    return strcmp(x->g->name, y->g->name);
}

int
grouppage_select(const struct group *head, uint32_t n, const struct grouppage_req *r,
                 int64_t now_ns, const struct group **out, uint32_t *nout, uint64_t *total)
{
    struct row *rows = malloc((n > 0 ? n : 1) * sizeof(*rows));
    if (rows == NULL) {
        return SL_ENOMEM;
    }
    key_fn *fn = keys[r->key].fn;
    uint32_t m = 0, seq = 0;
    for (const struct group *g = head; g != NULL && seq < n; g = g->next, seq++) {
        if (holds(g->name, g->name_len, r->filter)) {
            rows[m].g = g;
            rows[m].v = fn != NULL ? fn(g, now_ns) : 0.0;
            rows[m].seq = seq;
            m++;
        }
    }
    qsort(rows, m, sizeof(*rows), fn != NULL ? cmp_value : cmp_name);
    uint32_t k = 0;
    for (uint64_t i = r->offset; i < m && k < r->max; i++, k++) {
        /* Descending: the same order read from the end (ties then go newest first). */
        out[k] = rows[r->desc ? m - 1 - i : i].g;
    }
    *nout = k;
    *total = m;
    free(rows);
    return 0;
}
