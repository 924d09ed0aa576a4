#include "theap.h"

#include "err.h"

#include <stdbool.h>
#include <stdlib.h>

void
theap_init(struct theap *h)
{
    h->v = NULL;
    h->n = h->cap = 0;
}

void
theap_fini(struct theap *h)
{
    free(h->v);
    theap_init(h);
}

static void
put(struct theap *h, uint32_t i, struct job *j)
{
    h->v[i] = j;
    j->heap_idx = i;
}

/* Whether a is due before b: by due time, then by id, so that jobs due at once come out in
 * the order they were pushed. */
static inline bool
before(const struct job *a, const struct job *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->id < b->id);
}

static void
sift_up(struct theap *h, uint32_t i)
{
    struct job *j = h->v[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(j, h->v[p])) {
            break;
        }
        put(h, i, h->v[p]);
        i = p;
    }
    put(h, i, j);
}

static void
sift_down(struct theap *h, uint32_t i)
{
    struct job *j = h->v[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n) {
            break;
        }
        if (c + 1 < h->n && before(h->v[c + 1], h->v[c])) {
            c++;
        }
        if (!before(h->v[c], j)) {
            break;
        }
        put(h, i, h->v[c]);
        i = c;
    }
    put(h, i, j);
}

int
theap_reserve(struct theap *h, uint32_t extra)
{
    if ((uint64_t)h->n + extra <= h->cap) {
        return 0;
    }
    uint64_t ncap = h->cap ? h->cap : 1024;
    while (ncap < (uint64_t)h->n + extra) {
        ncap *= 2;
    }
    if (ncap > UINT32_MAX) {
        return SL_ENOMEM;
    }
    struct job **nv = realloc(h->v, sizeof(*nv) * ncap);
    if (nv == NULL) {
        return SL_ENOMEM;
    }
    h->v = nv;
    h->cap = (uint32_t)ncap;
    return 0;
}

int
theap_add(struct theap *h, struct job *j)
{
    if (h->n == h->cap && theap_reserve(h, 1) != 0) {
        return SL_ENOMEM;
    }
    put(h, h->n++, j);
    sift_up(h, h->n - 1);
    return 0;
}

void
theap_del(struct theap *h, struct job *j)
{
    uint32_t i = j->heap_idx;
    if (i == UINT32_MAX || i >= h->n || h->v[i] != j) {
        return;
    }
    j->heap_idx = UINT32_MAX;
    struct job *last = h->v[--h->n];
    if (i == h->n) {
        return;
    }
    put(h, i, last);
    sift_up(h, i);
    sift_down(h, last->heap_idx);
}

void
theap_update(struct theap *h, struct job *j)
{
    if (j->heap_idx == UINT32_MAX) {
        return;
    }
    sift_up(h, j->heap_idx);
    sift_down(h, j->heap_idx);
}

struct job *
theap_top(const struct theap *h)
{
    return h->n > 0 ? h->v[0] : NULL;
}
