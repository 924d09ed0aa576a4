#include "watch_render.h"

#include "err.h"
#include "ratespec.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000LL

/* --- text ------------------------------------------------------------------------------ */

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

/* A weight: 4, 0.25, 0.01 (as typed; six digits at most). */
static void
fmt_num(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "-");
    } else {
        snprintf(out, cap, "%.6g", v);
    }
}

/* A fraction 0..1 as a percentage. */
static void
fmt_share(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "-");
    } else {
        snprintf(out, cap, "%.1f%%", v * 100);
    }
}

/* Reserved jobs against the queue's cap: 3/8, 3/- (no cap), 3 (cap unknown). */
static void
fmt_inflight(char *out, size_t cap, const struct watch_group *x)
{
    if (x->reserved == WATCH_NA) {
        snprintf(out, cap, "-");
    } else if (x->cap == WATCH_NA) {
        snprintf(out, cap, "%" PRIu64, x->reserved);
    } else if (x->cap == 0) {
        snprintf(out, cap, "%" PRIu64 "/-", x->reserved);
    } else {
        snprintf(out, cap, "%" PRIu64 "/%" PRIu64, x->reserved, x->cap);
    }
}

static const char *
dash(const char *s)
{
    return s[0] != '\0' ? s : "-";
}

/* A group's name, with its start rate when it has one: "bob (20/s)", "bob (held 20/s)" while
 * its ready jobs wait for a token. */
static void
fmt_group(char *out, size_t cap, const struct watch_group *x)
{
    if (isnan(x->limit)) {
        snprintf(out, cap, "%s", dash(x->name));
        return;
    }
    char r[32];
    ratespec_format((uint64_t)(x->limit * 1000 + 0.5), r, sizeof(r));
    snprintf(out, cap, "%s (%s%s)", x->name, x->held ? "held " : "", r);
}

/* --- sparklines ------------------------------------------------------------------------ */

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
    struct watch_grid g;
    char b[7][64];
    int rv;

    sec->fixed = 2;
    if ((rv = watch_lines_addf(&sec->l, WATCH_LINE_TITLE, width, "workers (%zu)",
                               s->nworkers)) != 0) {
        return rv;
    }
    if (s->nworkers == 0) {
        sec->fixed = 1;
        return watch_lines_add(&sec->l, WATCH_LINE_TEXT, "  none connected", width);
    }
    watch_grid_init(&g);
    watch_grid_col(&g, "PID", true, false);
    watch_grid_col(&g, "STATE", false, false);
    watch_grid_col(&g, "JOBS", true, false);
    watch_grid_col(&g, "MEMORY", true, false);
    watch_grid_col(&g, "CURRENT", true, false);
    watch_grid_col(&g, "UPTIME", true, false);
    watch_grid_col(&g, "WORKER", false, false);
    for (size_t i = 0; i < s->nworkers; i++) {
        const struct watch_worker *x = &s->workers[i];
        fmt_u64(b[0], sizeof(b[0]), x->pid);
        fmt_u64(b[1], sizeof(b[1]), x->jobs);
        fmt_bytes(b[2], sizeof(b[2]), x->rss_bytes);
        fmt_u64(b[3], sizeof(b[3]), x->current);
        fmt_secs(b[4], sizeof(b[4]), x->uptime_s);
        watch_grid_cell(&g, b[0]);
        watch_grid_cell(&g, dash(x->state));
        watch_grid_cell(&g, b[1]);
        watch_grid_cell(&g, b[2]);
        watch_grid_cell(&g, b[3]);
        watch_grid_cell(&g, b[4]);
        watch_grid_cell(&g, dash(x->id));
    }
    rv = watch_grid_render(&g, width, &sec->l);
    watch_grid_fini(&g);
    return rv;
}

static int
sec_queues(const struct watch *w, unsigned width, struct section *sec)
{
    const struct watch_snap *s = &w->snap;
    struct watch_grid g;
    char b[8][64];
    int rv;

    sec->fixed = 2;
    if ((rv = watch_lines_addf(&sec->l, WATCH_LINE_TITLE, width, "queues (%zu)",
                               s->nqueues)) != 0) {
        return rv;
    }
    if (s->nqueues == 0) {
        sec->fixed = 1;
        return watch_lines_add(&sec->l, WATCH_LINE_TEXT, "  none", width);
    }
    watch_grid_init(&g);
    watch_grid_col(&g, "QUEUE", false, false);
    watch_grid_col(&g, "PRIO", true, false);
    watch_grid_col(&g, "WEIGHT", true, false);
    watch_grid_col(&g, "CAP", true, false);
    watch_grid_col(&g, "STATE", false, false);
    watch_grid_col(&g, "ORDER", false, false);
    watch_grid_col(&g, "READY", true, false);
    watch_grid_col(&g, "GROUPS", true, false);
    watch_grid_col(&g, "RESERVED", true, false);
    watch_grid_col(&g, "DEAD", true, false);
    watch_grid_col(&g, "JOBS/S", true, false);
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
        fmt_u64(b[7], sizeof(b[7]), q->groups_ready);
        watch_grid_cell(&g, dash(q->name));
        watch_grid_cell(&g, b[0]);
        watch_grid_cell(&g, b[1]);
        watch_grid_cell(&g, b[2]);
        watch_grid_cell(&g, q->paused < 0 ? "-" : q->paused ? "paused" : "active");
        watch_grid_cell(&g, dash(q->order));
        watch_grid_cell(&g, b[3]);
        watch_grid_cell(&g, b[7]);
        watch_grid_cell(&g, b[4]);
        watch_grid_cell(&g, b[5]);
        watch_grid_cell(&g, b[6]);
    }
    rv = watch_grid_render(&g, width, &sec->l);
    watch_grid_fini(&g);
    return rv;
}

static int
sec_groups(const struct watch *w, unsigned width, struct section *sec)
{
    const struct watch_snap *s = &w->snap;
    double hist[WATCH_SPARK_N];
    char b[8][64], spark[WATCH_SPARK_N * 3 + 1], name[WATCH_NAME_CAP + 48];
    struct watch_grid g;
    int rv;

    sec->fixed = 2;
    if ((rv = watch_lines_addf(&sec->l, WATCH_LINE_TITLE, width, "groups (%zu), by %s", s->ngroups,
                               sort_name(w->sort))) != 0) {
        return rv;
    }
    if (s->ngroups == 0) {
        sec->fixed = 1;
        return watch_lines_add(&sec->l, WATCH_LINE_TEXT, "  none", width);
    }
    watch_grid_init(&g);
    watch_grid_col(&g, "GROUP", false, false);
    watch_grid_col(&g, "ROUTE", false, false);
    watch_grid_col(&g, "COUNT", true, false);
    watch_grid_col(&g, "INFLIGHT", true, false);
    watch_grid_col(&g, "JOBS/S", true, false);
    watch_grid_col(&g, "SHARE", true, false);
    watch_grid_col(&g, "WEIGHT", true, false);
    watch_grid_col(&g, "OLDEST", true, false);
    watch_grid_col(&g, "P50", true, false);
    watch_grid_col(&g, "P99", true, false);
    watch_grid_col(&g, "LAST 60S (JOBS/S)", false, true);
    for (size_t i = 0; i < s->ngroups; i++) {
        const struct watch_group *x = &s->groups[i];
        fmt_u64(b[0], sizeof(b[0]), x->count);
        fmt_inflight(b[1], sizeof(b[1]), x);
        fmt_rate(b[2], sizeof(b[2]), x->rate);
        fmt_wait(b[3], sizeof(b[3]), x->p50_ms);
        fmt_wait(b[4], sizeof(b[4]), x->p99_ms);
        fmt_share(b[5], sizeof(b[5]), x->share);
        fmt_num(b[6], sizeof(b[6]), x->weight);
        fmt_wait(b[7], sizeof(b[7]), x->oldest_ready_ms);
        size_t n = x->series != NULL ? watch_series_samples(x->series, hist) : 0;
        watch_spark(hist, n, WATCH_SPARK_N, w->utf8, spark, sizeof(spark));
        fmt_group(name, sizeof(name), x);
        watch_grid_cell(&g, name);
        watch_grid_cell(&g, x->route[0] != '\0' ? x->route : "-");
        watch_grid_cell(&g, b[0]);
        watch_grid_cell(&g, b[1]);
        watch_grid_cell(&g, b[2]);
        watch_grid_cell(&g, b[5]);
        watch_grid_cell(&g, b[6]);
        watch_grid_cell(&g, b[7]);
        watch_grid_cell(&g, b[3]);
        watch_grid_cell(&g, b[4]);
        watch_grid_cell(&g, spark);
    }
    rv = watch_grid_render(&g, width, &sec->l);
    watch_grid_fini(&g);
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
        rv = watch_lines_add(&sec->l, WATCH_LINE_TITLE, "router: none leads", width);
    } else {
        char exp[32];
        fmt_u64(lease, sizeof(lease), l->lease);
        fmt_u64(exp, sizeof(exp), l->expires_ms);
        rv = watch_lines_addf(&sec->l, WATCH_LINE_TITLE, width,
                              "router: %s leads (lease %s, expires in %s ms)", dash(l->name), lease,
                              exp);
    }
    if (rv != 0) {
        return rv;
    }
    if (!s->has_decisions) {
        return watch_lines_add(&sec->l, WATCH_LINE_TEXT,
                               "  decisions: - (not reported by this broker)", width);
    }
    if (s->ndecisions == 0) {
        return watch_lines_add(&sec->l, WATCH_LINE_TEXT, "  decisions: none yet", width);
    }
    for (size_t i = 0; i < s->ndecisions && rv == 0; i++) {
        const struct watch_decision *d = &s->decisions[i];
        if (d->ts_ms == WATCH_NA) {
            snprintf(when, sizeof(when), "--:--:--");
        } else {
            time_t t = (time_t)(d->ts_ms / 1000);
            struct tm tm;
            if (localtime_r(&t, &tm) == NULL ||
                strftime(when, sizeof(when), "%H:%M:%S", &tm) == 0) {
                snprintf(when, sizeof(when), "--:--:--");
            }
        }
        fmt_u64(moved, sizeof(moved), d->moved);
        fmt_u64(lease, sizeof(lease), d->lease);
        rv = watch_lines_addf(&sec->l, WATCH_LINE_TEXT, width,
                              "  %s  %s -> %s  moved %s  lease %s  %s", when, dash(d->group),
                              d->queue[0] != '\0' ? d->queue : "default", moved, lease,
                              dash(d->reason));
    }
    return rv;
}

static int
top_lines(const struct watch *w, unsigned width, int64_t now_ns, struct watch_lines *out)
{
    const struct watch_broker *b = &w->snap.broker;
    int rv;

    if (!w->have_snap) {
        rv = watch_lines_addf(out, WATCH_LINE_TITLE, width, "sluice: waiting for the broker at %s",
                              w->url != NULL ? w->url : "-");
    } else {
        char up[32], jb[32], seg[32], jobs[32], pid[32];
        fmt_u64(pid, sizeof(pid), b->pid);
        fmt_secs(up, sizeof(up), b->uptime_s);
        fmt_u64(jobs, sizeof(jobs), b->jobs);
        fmt_bytes(jb, sizeof(jb), b->journal_bytes);
        fmt_u64(seg, sizeof(seg), b->journal_segments);
        rv = watch_lines_addf(out, WATCH_LINE_TITLE, width,
                              "broker pid %s, version %s, up %s, %s jobs, journal %s %s in %s "
                              "segments%s",
                              pid, dash(b->version), up, jobs, dash(b->journal), jb, seg,
                              w->stale ? "  [STALE]" : "");
        if (rv == 0) {
            char rate[32], res[32], empty[32], nw[32], fl[32], uk[32];
            fmt_rate(rate, sizeof(rate), w->bseries.rate);
            fmt_u64(res, sizeof(res), b->reserves);
            fmt_u64(empty, sizeof(empty), b->reserves_empty);
            fmt_u64(nw, sizeof(nw), b->no_worker);
            fmt_u64(fl, sizeof(fl), b->failed);
            fmt_u64(uk, sizeof(uk), b->unique_keys);
            rv = watch_lines_addf(out, WATCH_LINE_TEXT, width,
                                  "dispatch %s jobs/s, reserves %s (%s empty), no free worker %s, "
                                  "failed attempts %s, unique keys %s, every %" PRIu64 " ms",
                                  rate, res, empty, nw, fl, uk, w->interval_ms);
        }
    }
    if (rv == 0 && w->stale) {
        int64_t ago = (now_ns - (w->have_snap ? w->snap_ns : w->stale_ns)) / NS_PER_S;
        const char *what = w->unusable ? "no usable reply from the broker" : "broker unreachable";
        const char *then = w->unusable ? "asking again" : "reconnecting";
        if (w->have_snap) {
            rv = watch_lines_addf(out, WATCH_LINE_NOTICE, width,
                                  "%s at %s (%s): data %" PRId64 " s old, %s", what,
                                  w->url != NULL ? w->url : "-", w->why, ago < 0 ? 0 : ago, then);
        } else {
            rv = watch_lines_addf(out, WATCH_LINE_NOTICE, width, "%s at %s (%s): %s", what,
                                  w->url != NULL ? w->url : "-", w->why, then);
        }
    }
    return rv;
}

/* Lines of the sections sec[0..nsec) to show, alloc[i] each (all of them on entry, total in
 * all), made to fit in avail: take a line from the section that has the most beyond its fixed
 * lines and one row, until everything fits; then cut from the bottom. */
static void
shrink(const struct section *sec, size_t nsec, size_t *alloc, size_t total, size_t avail)
{
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

int
watch_render(const struct watch *w, unsigned width, unsigned height, bool footer,
             int64_t now_ns, struct watch_lines *out)
{
    struct section sec[4];
    size_t nsec = 0, alloc[4], total = 0, avail, nfoot = footer ? 1 : 0;
    int rv;

    watch_lines_clear(out);
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
        shrink(sec, nsec, alloc, total, avail);
    }
    for (size_t i = 0; i < nsec && rv == 0; i++) {
        if (alloc[i] == 0) {
            continue;
        }
        if (gaps) {
            rv = watch_lines_add(out, WATCH_LINE_TEXT, "", width);
        }
        bool shrunk = alloc[i] < sec[i].l.n && alloc[i] > sec[i].fixed;
        size_t show = shrunk ? alloc[i] - 1 : alloc[i];
        for (size_t k = 0; k < show && rv == 0; k++) {
            rv = watch_lines_take(out, &sec[i].l, k);
        }
        if (rv == 0 && shrunk) {
            rv = watch_lines_addf(out, WATCH_LINE_TEXT, width, "  ... %zu more",
                                  sec[i].l.n - show);
        }
    }
    if (rv == 0 && footer) {
        rv = watch_lines_addf(out, WATCH_LINE_FOOTER, width,
                              "q quit   sort groups: b backlog  r rate  w p99 wait  n name   "
                              "(now: %s)",
                              sort_name(w->sort));
    }
out:
    for (size_t i = 0; i < 4; i++) {
        watch_lines_fini(&sec[i].l);
    }
    return rv;
}
