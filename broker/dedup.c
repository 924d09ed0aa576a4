#include "dedup.h"

#include "err.h"
#include "hmap.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    uint64_t seq;
    uint64_t first_id;
    uint32_t n;
    uint64_t lsn;                  /* journal position its answer waited for */
};

struct client {
    char name[WIRE_NAME_MAX + 1];
    uint32_t name_len;
    int64_t last_ns;
    uint64_t hi;                   /* highest seq recorded */
    uint32_t count;                /* entries used, up to DEDUP_RING */
    uint32_t head;                 /* next slot to overwrite */
    struct entry ring[DEDUP_RING];
    uint64_t gone_lsn;             /* highest lsn of the entries the ring let go */
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
        if (c->ring[i].seq == seq) {
            *first_id = c->ring[i].first_id;
            *n = c->ring[i].n;
            *lsn = c->ring[i].lsn;
            return DEDUP_SEEN;
        }
    }
    /* The ring is full and seq is older than all it holds: it was answered long ago. */
    if (c->count == DEDUP_RING && seq < c->hi && c->hi - seq >= DEDUP_RING) {
        *lsn = c->gone_lsn;
        return DEDUP_STALE;
    }
    return DEDUP_NEW;
}

int
dedup_record(struct dedup *d, struct sl_str client, uint64_t seq, uint64_t first_id,
             uint32_t n, uint64_t lsn, int64_t now_ns)
{
    struct client *c = hmap_get(&d->clients, client.p, client.n);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            return SL_ENOMEM;
        }
        /* Keyed on our own copy of the name: the caller's bytes die with its request. */
        memcpy(c->name, client.p, client.n);
        c->name_len = client.n;
        if (hmap_put(&d->clients, c->name, c->name_len, c) != 0) {
            free(c);
            return SL_ENOMEM;
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
    if (c->count == DEDUP_RING && c->ring[c->head].lsn > c->gone_lsn) {
        c->gone_lsn = c->ring[c->head].lsn;
    }
    c->ring[c->head] = (struct entry){ seq, first_id, n, lsn };
    c->head = (c->head + 1) % DEDUP_RING;
    if (c->count < DEDUP_RING) {
        c->count++;
    }
    if (seq > c->hi) {
        c->hi = seq;
    }
    return 0;
}

uint32_t
dedup_clients(const struct dedup *d)
{
    return (uint32_t)d->clients.n;
}

void
dedup_foreach(const struct dedup *d, dedup_fn *fn, void *arg)
{
    for (const struct client *c = d->oldest; c != NULL; c = c->newer) {
        struct sl_str name = { c->name, c->name_len };
        for (uint32_t k = 0; k < c->count; k++) {
            const struct entry *e = &c->ring[(c->head + DEDUP_RING - c->count + k) % DEDUP_RING];
            fn(arg, name, e->seq, e->first_id, e->n, c->last_ns);
        }
    }
}
