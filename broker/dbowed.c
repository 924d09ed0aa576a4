#include "dbowed.h"

#include "err.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* A group the broker forgot, with its counters as it left. */
struct gone {
    struct gone *next;
    char name[WIRE_NAME_MAX + 1];
    uint32_t name_len;
    uint64_t pushed_all, done_all, failed_all, run_ns;
};

struct dbowed {
    uint32_t log_cap, usage_cap;

    /* The inbox: b->lock. */
    struct dbowed_log *in_head, *in_tail;
    uint64_t in_n;
    struct gone *gone_head, *gone_tail;
    uint64_t log_dropped;            /* changed only with b->lock held */
    bool log_drop_logged;            /* until the log drains */

    /* The syncing thread's. */
    struct dbowed_log *pend_head, *pend_tail; /* taken from the inbox, oldest first */
    uint64_t pend_n;
    struct hmap chans;               /* id -> struct dbowed_chan */
    struct hmap usage;               /* key -> struct dbowed_usage */
    struct dbowed_usage *u_head, *u_tail;
    uint32_t nusage;
    uint64_t usage_dropped;
    bool usage_drop_logged;          /* until no usage row is owed */
    uint64_t gen;                    /* snapshots taken */
    void **scratch;                  /* the arrays dbowed_dirty_* return */
    size_t scratch_cap;
};

struct dbowed *
dbowed_new(uint32_t log_cap, uint32_t usage_cap)
{
    struct dbowed *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        return NULL;
    }
    o->log_cap = log_cap;
    o->usage_cap = usage_cap;
    hmap_init(&o->chans);
    hmap_init(&o->usage);
    return o;
}

static void
free_logs(struct dbowed_log *l)
{
    while (l != NULL) {
        struct dbowed_log *next = l->next;
        free(l);
        l = next;
    }
}

void
dbowed_free(struct dbowed *o)
{
    if (o == NULL) {
        return;
    }
    free_logs(o->in_head);
    free_logs(o->pend_head);
    for (struct gone *g = o->gone_head, *next; g != NULL; g = next) {
        next = g->next;
        free(g);
    }
    size_t pos = 0;
    struct dbowed_chan *c;
    while ((c = hmap_next(&o->chans, &pos)) != NULL) {
        free(c);
    }
    for (struct dbowed_usage *u = o->u_head, *next; u != NULL; u = next) {
        next = u->next;
        free(u);
    }
    hmap_fini(&o->chans);
    hmap_fini(&o->usage);
    free(o->scratch);
    free(o);
}

/* --- the inbox ---------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static uint32_t
utf8_seq(const unsigned char *s, uint32_t n)
{
    unsigned char c = s[0];
    uint32_t len;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (uint32_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return 0;
    }
    return len;
}

/* Copies s into out (room for DBOWED_REASON_MAX * 4 bytes): at most DBOWED_REASON_MAX
 * characters of valid UTF-8, each bad byte replaced by '?'. Returns the bytes written. */
static uint32_t
clean_reason(char *out, struct sl_str s)
{
    const unsigned char *p = (const unsigned char *)s.p;
    uint32_t k = 0, chars = 0;
    for (uint32_t i = 0; i < s.n && chars < DBOWED_REASON_MAX; chars++) {
        uint32_t len = utf8_seq(p + i, s.n - i);
        if (len == 0) {
            out[k++] = '?';
            i++;
        } else {
            memcpy(out + k, p + i, len);
            k += len;
            i += len;
        }
    }
    return k;
}

static void
log_drop(struct dbowed *o, const char *why)
{
    o->log_dropped++;
    if (!o->log_drop_logged) {
        o->log_drop_logged = true;
        LOG(LOG_WARN, "db.route_log_dropped",
            "cap=%u reason=\"%s\" note=\"older route changes are lost until the database "
            "takes the log again\"",
            o->log_cap, why);
    }
}

void
dbowed_route_changed(struct dbowed *o, int64_t at_ms, struct sl_str group, struct sl_str old_q,
                     struct sl_str new_q, struct sl_str reason, uint64_t count, uint64_t lease)
{
    static const struct sl_str dflt = SL_STR_LIT(BROKER_DEFAULT_QUEUE);
    char why[DBOWED_REASON_MAX * 4];
    uint32_t why_n = clean_reason(why, reason);

    if (old_q.n == 0) {
        old_q = dflt;
    }
    if (new_q.n == 0) {
        new_q = dflt;
    }
    struct dbowed_log *l =
        malloc(sizeof(*l) + (size_t)group.n + old_q.n + new_q.n + why_n);
    if (l == NULL) {
        log_drop(o, "no memory");
        return;
    }
    char *p = (char *)(l + 1);
    l->next = NULL;
    l->at_ms = at_ms;
    l->count = count;
    l->lease = lease;
    l->group = p;
    l->group_len = group.n;
    memcpy(p, group.p, group.n);
    p += group.n;
    l->old_queue = p;
    l->old_len = old_q.n;
    memcpy(p, old_q.p, old_q.n);
    p += old_q.n;
    l->new_queue = p;
    l->new_len = new_q.n;
    memcpy(p, new_q.p, new_q.n);
    p += new_q.n;
    l->reason = p;
    l->reason_len = why_n;
    memcpy(p, why, why_n);

    if (o->in_tail != NULL) {
        o->in_tail->next = l;
    } else {
        o->in_head = l;
    }
    o->in_tail = l;
    o->in_n++;
    while (o->in_n > o->log_cap) {
        struct dbowed_log *old = o->in_head;
        o->in_head = old->next;
        o->in_n--;
        free(old);
        log_drop(o, "too many route changes waiting");
    }
    if (o->in_head == NULL) {
        o->in_tail = NULL;
    }
}

void
dbowed_group_gone(struct dbowed *o, const struct group *g)
{
    if (g->pushed_all == 0 && g->done_all == 0 && g->failed_all == 0 && g->run_ns == 0) {
        return; /* nothing to account: every snapshot compares its row against zero anyway */
    }
    struct gone *r = malloc(sizeof(*r));
    if (r == NULL) {
        o->usage_dropped++;
        LOG(LOG_WARN, "db.usage_lost", "group=%s reason=\"no memory\"", g->name);
        return;
    }
    r->next = NULL;
    memcpy(r->name, g->name, g->name_len);
    r->name[g->name_len] = '\0';
    r->name_len = g->name_len;
    r->pushed_all = g->pushed_all;
    r->done_all = g->done_all;
    r->failed_all = g->failed_all;
    r->run_ns = g->run_ns;
    if (o->gone_tail != NULL) {
        o->gone_tail->next = r;
    } else {
        o->gone_head = r;
    }
    o->gone_tail = r;
}

uint64_t
dbowed_inbox_n(const struct dbowed *o)
{
    return o->in_n;
}

/* --- rows --------------------------------------------------------------------------------- */

static uint32_t
usage_key(char *key, struct sl_str group, int64_t minute_s)
{
    memcpy(key, group.p, group.n);
    memcpy(key + group.n, &minute_s, sizeof(minute_s));
    return group.n + (uint32_t)sizeof(minute_s);
}

const struct dbowed_usage *
dbowed_usage_find(const struct dbowed *o, struct sl_str group, int64_t minute_s)
{
    char key[WIRE_NAME_MAX + 8];
    if (group.n > WIRE_NAME_MAX) {
        return NULL;
    }
    uint32_t klen = usage_key(key, group, minute_s);
    return hmap_get(&o->usage, key, klen);
}

const struct dbowed_chan *
dbowed_chan_find(const struct dbowed *o, struct sl_str id)
{
    return hmap_get(&o->chans, id.p, id.n);
}

uint32_t
dbowed_usage_n(const struct dbowed *o)
{
    return o->nusage;
}

static void
usage_unlink(struct dbowed *o, struct dbowed_usage *u)
{
    if (u->prev != NULL) {
        u->prev->next = u->next;
    } else {
        o->u_head = u->next;
    }
    if (u->next != NULL) {
        u->next->prev = u->prev;
    } else {
        o->u_tail = u->prev;
    }
    hmap_del(&o->usage, u->key, u->group_len + sizeof(u->minute_s));
    o->nusage--;
    free(u);
}

/* Adds to group's row of minute_s. Returns 0 or SL_ENOMEM (nothing added). */
static int
usage_add(struct dbowed *o, struct sl_str group, int64_t minute_s, uint64_t pushed,
          uint64_t done, uint64_t failed, uint64_t run_ms)
{
    char key[WIRE_NAME_MAX + 8];
    uint32_t klen = usage_key(key, group, minute_s);
    struct dbowed_usage *u = hmap_get(&o->usage, key, klen);
    if (u == NULL) {
        if ((u = calloc(1, sizeof(*u))) == NULL) {
            return SL_ENOMEM;
        }
        memcpy(u->key, key, klen);
        u->group_len = group.n;
        u->minute_s = minute_s;
        if (hmap_put(&o->usage, u->key, klen, u) != 0) {
            free(u);
            return SL_ENOMEM;
        }
        u->prev = o->u_tail;
        if (o->u_tail != NULL) {
            o->u_tail->next = u;
        } else {
            o->u_head = u;
        }
        o->u_tail = u;
        o->nusage++;
    }
    u->pushed += pushed;
    u->done += done;
    u->failed += failed;
    u->run_ms += run_ms;
    u->dirty = true;
    return 0;
}

static struct dbowed_chan *
chan_add(struct dbowed *o, struct sl_str id)
{
    struct dbowed_chan *c = calloc(1, sizeof(*c));
    if (c == NULL || id.n > WIRE_NAME_MAX) {
        free(c);
        return NULL;
    }
    memcpy(c->id, id.p, id.n);
    c->id_len = id.n;
    c->weight = GROUP_WEIGHT_ONE;
    if (hmap_put(&o->chans, c->id, c->id_len, c) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void
chan_set(struct dbowed_chan *c, const char *route, uint32_t route_len, uint64_t count,
         uint64_t done, uint64_t failed, uint32_t weight)
{
    if (c->route_len != route_len || memcmp(c->route, route, route_len) != 0 ||
        c->count != count || c->done != done || c->failed != failed || c->weight != weight) {
        memcpy(c->route, route, route_len);
        c->route[route_len] = '\0';
        c->route_len = route_len;
        c->count = count;
        c->done = done;
        c->failed = failed;
        c->weight = weight;
        c->dirty = true;
    }
}

static int
scratch_room(struct dbowed *o, size_t n)
{
    if (n <= o->scratch_cap) {
        return 0;
    }
    size_t cap = o->scratch_cap != 0 ? o->scratch_cap : 64;
    while (cap < n) {
        cap *= 2;
    }
    void **p = realloc(o->scratch, cap * sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    o->scratch = p;
    o->scratch_cap = cap;
    return 0;
}

/* Frees what was written and will not change again: gone channels rows, rows of minutes
 * before minute_s. */
static void
sweep(struct dbowed *o, int64_t minute_s)
{
    if (scratch_room(o, o->chans.n) == 0) {
        size_t pos = 0, n = 0;
        struct dbowed_chan *c;
        while ((c = hmap_next(&o->chans, &pos)) != NULL) {
            if (c->gone && !c->dirty) {
                o->scratch[n++] = c;
            }
        }
        for (size_t i = 0; i < n; i++) {
            c = o->scratch[i];
            hmap_del(&o->chans, c->id, c->id_len);
            free(c);
        }
    }
    bool owed = false;
    for (struct dbowed_usage *u = o->u_head, *next; u != NULL; u = next) {
        next = u->next;
        if (!u->dirty && u->minute_s < minute_s) {
            usage_unlink(o, u);
        } else {
            owed = owed || u->dirty;
        }
    }
    if (!owed) {
        o->usage_drop_logged = false;
    }
}

static uint64_t
ns_to_ms_delta(uint64_t now_ns, uint64_t then_ns)
{
    return now_ns / 1000000 - then_ns / 1000000;
}

int
dbowed_snapshot(struct dbowed *o, const struct broker *b, int64_t now_ms)
{
    int64_t minute_s = (now_ms >= 0 ? now_ms / 60000 : (now_ms - 59999) / 60000) * 60;
    int rv = 0;

    sweep(o, minute_s);
    o->gen++;

    /* Forgotten groups first: their growth happened before anything a group of the same
     * name, made again since, did. */
    for (struct gone *r = o->gone_head, *next; r != NULL; r = next) {
        next = r->next;
        struct sl_str name = { r->name, r->name_len };
        struct dbowed_chan *c = hmap_get(&o->chans, r->name, r->name_len);
        uint64_t p0 = 0, d0 = 0, f0 = 0, r0 = 0;
        if (c != NULL && r->pushed_all >= c->pushed_all && r->done_all >= c->done_all &&
            r->failed_all >= c->failed_all && r->run_ns >= c->run_ns) {
            p0 = c->pushed_all;
            d0 = c->done_all;
            f0 = c->failed_all;
            r0 = c->run_ns;
        }
        if (usage_add(o, name, minute_s, r->pushed_all - p0, r->done_all - d0,
                      r->failed_all - f0, ns_to_ms_delta(r->run_ns, r0)) != 0) {
            o->usage_dropped++;
            rv = SL_ENOMEM;
        }
        if (c != NULL) {
            /* A group made again under this name counts from zero. */
            c->pushed_all = c->done_all = c->failed_all = c->run_ns = 0;
        }
        free(r);
    }
    o->gone_head = o->gone_tail = NULL;

    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        struct sl_str name = { g->name, g->name_len };
        struct dbowed_chan *c = hmap_get(&o->chans, g->name, g->name_len);
        if (c == NULL && (c = chan_add(o, name)) == NULL) {
            rv = SL_ENOMEM;
            continue;
        }
        c->seen = o->gen;
        c->gone = false;
        if (g->pushed_all < c->pushed_all || g->done_all < c->done_all ||
            g->failed_all < c->failed_all || g->run_ns < c->run_ns) {
            /* Counters never go back: this is a group made again whose departure was not
             * seen. It counts from zero. */
            c->pushed_all = c->done_all = c->failed_all = c->run_ns = 0;
        }
        uint64_t dp = g->pushed_all - c->pushed_all, dd = g->done_all - c->done_all;
        uint64_t df = g->failed_all - c->failed_all, dr = ns_to_ms_delta(g->run_ns, c->run_ns);
        if (dp != 0 || dd != 0 || df != 0 || dr != 0) {
            if (usage_add(o, name, minute_s, dp, dd, df, dr) != 0) {
                rv = SL_ENOMEM; /* the growth stays to be taken next time */
            } else {
                c->pushed_all = g->pushed_all;
                c->done_all = g->done_all;
                c->failed_all = g->failed_all;
                c->run_ns = g->run_ns;
            }
        }
        if (g->route != NULL) {
            chan_set(c, g->route->name, g->route->name_len, group_count(g), g->done, g->failed,
                     g->weight);
        } else {
            chan_set(c, "", 0, group_count(g), g->done, g->failed, g->weight);
        }
    }

    /* Rows of groups the broker no longer has: count 0, route NULL, weight 1, once. */
    size_t pos = 0;
    struct dbowed_chan *c;
    while ((c = hmap_next(&o->chans, &pos)) != NULL) {
        if (c->seen != o->gen && !c->gone) {
            c->gone = true;
            c->pushed_all = c->done_all = c->failed_all = c->run_ns = 0;
            chan_set(c, "", 0, 0, 0, 0, GROUP_WEIGHT_ONE);
            if (!c->in_db) {
                c->dirty = false; /* never written: nothing to take back */
            }
        }
    }

    /* Route changes: the inbox joins the pending log, which keeps the newest log_cap. */
    if (o->in_head != NULL) {
        if (o->pend_tail != NULL) {
            o->pend_tail->next = o->in_head;
        } else {
            o->pend_head = o->in_head;
        }
        o->pend_tail = o->in_tail;
        o->pend_n += o->in_n;
        o->in_head = o->in_tail = NULL;
        o->in_n = 0;
    }
    while (o->pend_n > o->log_cap) {
        struct dbowed_log *old = o->pend_head;
        o->pend_head = old->next;
        o->pend_n--;
        free(old);
        log_drop(o, "too many route changes waiting");
    }
    if (o->pend_head == NULL) {
        o->pend_tail = NULL;
        o->log_drop_logged = false;
    }

    /* Usage rows beyond the cap: the oldest go. */
    while (o->nusage > o->usage_cap) {
        o->usage_dropped++;
        if (!o->usage_drop_logged) {
            o->usage_drop_logged = true;
            LOG(LOG_WARN, "db.usage_dropped",
                "cap=%u note=\"the oldest unwritten usage rows are lost until the database "
                "takes them again\"",
                o->usage_cap);
        }
        usage_unlink(o, o->u_head);
    }
    return rv;
}

int
dbowed_load_chan(struct dbowed *o, struct sl_str id, struct sl_str route, uint64_t count,
                 uint64_t done, uint64_t failed, uint32_t weight)
{
    if (id.n == 0 || id.n > WIRE_NAME_MAX || route.n > WIRE_NAME_MAX) {
        return SL_EBADREQ;
    }
    struct dbowed_chan *c = hmap_get(&o->chans, id.p, id.n);
    if (c != NULL) {
        /* Known already: owed only if the database holds something else. */
        c->dirty = c->route_len != route.n || memcmp(c->route, route.p, route.n) != 0 ||
                   c->count != count || c->done != done || c->failed != failed ||
                   c->weight != weight;
        c->in_db = true;
        return 0;
    }
    if ((c = chan_add(o, id)) == NULL) {
        return SL_ENOMEM;
    }
    memcpy(c->route, route.p, route.n);
    c->route[route.n] = '\0';
    c->route_len = route.n;
    c->count = count;
    c->done = done;
    c->failed = failed;
    c->weight = weight;
    c->in_db = true;
    return 0;
}

uint32_t
dbowed_dirty_chans(struct dbowed *o, struct dbowed_chan ***rows)
{
    uint32_t n = 0;
    size_t pos = 0;
    struct dbowed_chan *c;
    if (scratch_room(o, o->chans.n) != 0) {
        *rows = NULL;
        return 0;
    }
    while ((c = hmap_next(&o->chans, &pos)) != NULL) {
        if (c->dirty) {
            o->scratch[n++] = c;
        }
    }
    *rows = (struct dbowed_chan **)o->scratch;
    return n;
}

uint32_t
dbowed_dirty_usage(struct dbowed *o, struct dbowed_usage ***rows)
{
    uint32_t n = 0;
    if (scratch_room(o, o->nusage) != 0) {
        *rows = NULL;
        return 0;
    }
    for (struct dbowed_usage *u = o->u_head; u != NULL; u = u->next) {
        if (u->dirty) {
            o->scratch[n++] = u;
        }
    }
    *rows = (struct dbowed_usage **)o->scratch;
    return n;
}

void
dbowed_chans_written(struct dbowed *o, struct dbowed_chan **rows, uint32_t n)
{
    (void)o;
    for (uint32_t i = 0; i < n; i++) {
        rows[i]->dirty = false;
        rows[i]->in_db = true;
    }
}

void
dbowed_usage_written(struct dbowed *o, struct dbowed_usage **rows, uint32_t n)
{
    (void)o;
    for (uint32_t i = 0; i < n; i++) {
        rows[i]->dirty = false;
    }
}

uint32_t
dbowed_log_peek(const struct dbowed *o, struct dbowed_log **out, uint32_t max)
{
    uint32_t n = 0;
    for (struct dbowed_log *l = o->pend_head; l != NULL && n < max; l = l->next) {
        out[n++] = l;
    }
    return n;
}

void
dbowed_log_written(struct dbowed *o, uint32_t n)
{
    while (n-- > 0 && o->pend_head != NULL) {
        struct dbowed_log *l = o->pend_head;
        o->pend_head = l->next;
        o->pend_n--;
        free(l);
    }
    if (o->pend_head == NULL) {
        o->pend_tail = NULL;
    }
}

uint64_t
dbowed_owed(const struct dbowed *o)
{
    uint64_t n = o->pend_n;
    size_t pos = 0;
    const struct dbowed_chan *c;
    while ((c = hmap_next(&o->chans, &pos)) != NULL) {
        n += c->dirty;
    }
    for (const struct dbowed_usage *u = o->u_head; u != NULL; u = u->next) {
        n += u->dirty;
    }
    return n;
}

uint64_t
dbowed_log_dropped(const struct dbowed *o)
{
    return o->log_dropped;
}

uint64_t
dbowed_usage_dropped(const struct dbowed *o)
{
    return o->usage_dropped;
}
