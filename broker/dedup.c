#include "dedup.h"

#include "err.h"
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    uint64_t seq;
    uint64_t first_id;
    uint64_t lsn;                  /* journal position its answer waited for */
    uint32_t n;
    bool forgotten;                /* its run was: the key is not remembered at all */
};

struct range {
    uint64_t lo, hi;               /* seqs lo..hi were stored */
};

struct client {
    char name[WIRE_NAME_MAX + 1];
    uint32_t name_len;
    int64_t last_ns;
    uint32_t count;                /* entries used, up to DEDUP_RING */
    uint32_t head;                 /* next slot to overwrite */
    struct entry ring[DEDUP_RING]; /* every key not forgotten is in ranges too */
    uint64_t gone_lsn;             /* highest lsn of the entries the ring let go */
    uint32_t nranges;
    struct range ranges[DEDUP_RANGES]; /* ascending, disjoint, never adjacent */
    struct client *older, *newer;  /* LRU list: d->oldest ... d->newest */
};

struct dedup {
    struct hmap clients;
    struct client *oldest, *newest;
    int64_t window_ns;
    uint32_t max_clients;
};

struct dedup *
dedup_new(int64_t window_ns, uint32_t max_clients)
{
    struct dedup *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return NULL;
    }
    hmap_init(&d->clients);
    d->window_ns = window_ns;
    d->max_clients = max_clients > 0 ? max_clients : 1;
    return d;
}

void
dedup_free(struct dedup *d)
{
    if (d == NULL) {
        return;
    }
    for (struct client *c = d->oldest, *next; c != NULL; c = next) {
        next = c->newer;
        free(c);
    }
    hmap_fini(&d->clients);
    free(d);
}

static void
lru_unlink(struct dedup *d, struct client *c)
{
    if (c->older != NULL) {
        c->older->newer = c->newer;
    } else {
        d->oldest = c->newer;
    }
    if (c->newer != NULL) {
        c->newer->older = c->older;
    } else {
        d->newest = c->older;
    }
    c->older = c->newer = NULL;
}

static void
lru_append(struct dedup *d, struct client *c)
{
    c->older = d->newest;
    c->newer = NULL;
    if (d->newest != NULL) {
        d->newest->newer = c;
    } else {
        d->oldest = c;
    }
    d->newest = c;
}

static void
forget(struct dedup *d, struct client *c)
{
    lru_unlink(d, c);
    hmap_del(&d->clients, c->name, c->name_len);
    free(c);
}

static void
expire(struct dedup *d, int64_t now_ns)
{
    while (d->oldest != NULL && now_ns - d->oldest->last_ns > d->window_ns) {
        forget(d, d->oldest);
    }
}

static bool
ranges_have(const struct client *c, uint64_t seq)
{
    for (uint32_t i = 0; i < c->nranges && c->ranges[i].lo <= seq; i++) {
        if (seq <= c->ranges[i].hi) {
            return true;
        }
    }
    return false;
}

/* Whether run r ends before lo with a gap (it neither overlaps nor touches lo..). */
static bool
ends_before(const struct range *r, uint64_t lo)
{
    return r->hi < lo && lo - r->hi > 1;
}

/* Whether run r starts after hi with a gap. */
static bool
starts_after(const struct range *r, uint64_t hi)
{
    return r->lo > hi && r->lo - hi > 1;
}

/* Forgets c's lowest run, and the answers the ring holds for its keys: a key is remembered
 * whole or not at all, so the runs alone say whether a key was stored, and dedup_foreach's
 * calls rebuild exactly that (a rebuilt ring answer never brings back a forgotten run). */
static void
ranges_drop_lowest(struct client *c)
{
    const struct range *r = &c->ranges[0];
    for (uint32_t i = 0; i < c->count; i++) {
        if (c->ring[i].seq >= r->lo && c->ring[i].seq <= r->hi) {
            c->ring[i].forgotten = true;
        }
    }
    memmove(&c->ranges[0], &c->ranges[1], (c->nranges - 1) * sizeof(*r));
    c->nranges--;
}

/* Adds lo..hi to c's runs, merging the runs it overlaps or touches. With every run in use,
 * the lowest run but the one added is forgotten (the oldest keys, as the ring forgets). */
static void
ranges_add(struct client *c, uint64_t lo, uint64_t hi)
{
    struct range *r = c->ranges;
    uint32_t i = 0, j;

    while (i < c->nranges && ends_before(&r[i], lo)) {
        i++;
    }
    for (j = i; j < c->nranges && !starts_after(&r[j], hi); j++) {
        lo = r[j].lo < lo ? r[j].lo : lo;
        hi = r[j].hi > hi ? r[j].hi : hi;
    }
    if (j > i) {
        r[i] = (struct range){ lo, hi };
        memmove(&r[i + 1], &r[j], (c->nranges - j) * sizeof(*r));
        c->nranges -= j - i - 1;
        return;
    }
    if (c->nranges == DEDUP_RANGES) {
        ranges_drop_lowest(c);
        i -= i > 0;
    }
    memmove(&r[i + 1], &r[i], (c->nranges - i) * sizeof(*r));
    r[i] = (struct range){ lo, hi };
    c->nranges++;
}

enum dedup_verdict
dedup_check(struct dedup *d, struct sl_str client, uint64_t seq, int64_t now_ns,
            uint64_t *first_id, uint32_t *n, uint64_t *lsn)
{
    expire(d, now_ns);
    struct client *c = hmap_get(&d->clients, client.p, client.n);
    if (c == NULL) {
        return DEDUP_NEW;
    }
    for (uint32_t i = 0; i < c->count; i++) {
        if (c->ring[i].seq == seq && !c->ring[i].forgotten) {
            *first_id = c->ring[i].first_id;
            *n = c->ring[i].n;
            *lsn = c->ring[i].lsn;
            return DEDUP_SEEN;
        }
    }
    if (ranges_have(c, seq)) {
        *first_id = 0;
        *n = 0;
        *lsn = c->gone_lsn;
        return DEDUP_STALE;
    }
    return DEDUP_NEW;
}

/* c, remembered from now on as the most recent client; created if new. NULL on ENOMEM. */
static struct client *
touch(struct dedup *d, struct sl_str client, int64_t now_ns)
{
    struct client *c = hmap_get(&d->clients, client.p, client.n);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            return NULL;
        }
        /* Keyed on our own copy of the name: the caller's bytes die with its request. */
        memcpy(c->name, client.p, client.n);
        c->name_len = client.n;
        if (hmap_put(&d->clients, c->name, c->name_len, c) != 0) {
            free(c);
            return NULL;
        }
        lru_append(d, c);
        while (d->clients.n > d->max_clients && d->oldest != c) {
            forget(d, d->oldest);
        }
    } else {
        lru_unlink(d, c);
        lru_append(d, c);
    }
    c->last_ns = now_ns;
    return c;
}

int
dedup_record(struct dedup *d, struct sl_str client, uint64_t seq, uint64_t first_id,
             uint32_t n, uint64_t lsn, int64_t now_ns)
{
    struct client *c = touch(d, client, now_ns);
    if (c == NULL) {
        return SL_ENOMEM;
    }
    if (c->count == DEDUP_RING && c->ring[c->head].lsn > c->gone_lsn) {
        c->gone_lsn = c->ring[c->head].lsn;
    }
    c->ring[c->head] = (struct entry){ seq, first_id, lsn, n, false };
    c->head = (c->head + 1) % DEDUP_RING;
    if (c->count < DEDUP_RING) {
        c->count++;
    }
    ranges_add(c, seq, seq);
    return 0;
}

int
dedup_record_stored(struct dedup *d, struct sl_str client, uint64_t lo, uint64_t hi,
                    int64_t now_ns)
{
    struct client *c = touch(d, client, now_ns);
    if (c == NULL) {
        return SL_ENOMEM;
    }
    ranges_add(c, lo, hi);
    return 0;
}

uint32_t
dedup_clients(const struct dedup *d)
{
    return (uint32_t)d->clients.n;
}

void
dedup_foreach(const struct dedup *d, dedup_range_fn *range, dedup_fn *fn, void *arg)
{
    for (const struct client *c = d->oldest; c != NULL; c = c->newer) {
        struct sl_str name = { c->name, c->name_len };
        for (uint32_t k = 0; k < c->nranges; k++) {
            range(arg, name, c->ranges[k].lo, c->ranges[k].hi, c->last_ns);
        }
        for (uint32_t k = 0; k < c->count; k++) {
            const struct entry *e = &c->ring[(c->head + DEDUP_RING - c->count + k) % DEDUP_RING];
            if (!e->forgotten) {
                fn(arg, name, e->seq, e->first_id, e->n, c->last_ns);
            }
        }
    }
}
