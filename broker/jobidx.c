#include "jobidx.h"

#include "err.h"

#include <stdlib.h>

struct jobidx_chunk {
    uint64_t key;                   /* id >> JOBIDX_SHIFT; the map's key */
    uint32_t n;                     /* slots in use */
    struct job *slot[JOBIDX_CHUNK];
};

void
jobidx_init(struct jobidx *x)
{
    hmap_init(&x->chunks);
    x->last = NULL;
    x->n = 0;
}

void
jobidx_fini(struct jobidx *x)
{
    size_t pos = 0;
    struct jobidx_chunk *c;
    while ((c = hmap_next(&x->chunks, &pos)) != NULL) {
        free(c);
    }
    hmap_fini(&x->chunks);
    x->last = NULL;
    x->n = 0;
}

static struct jobidx_chunk *
chunk_of(struct jobidx *x, uint64_t id)
{
    uint64_t key = id >> JOBIDX_SHIFT;
    if (x->last != NULL && x->last->key == key) {
        return x->last;
    }
    struct jobidx_chunk *c = hmap_get(&x->chunks, &key, sizeof(key));
    if (c != NULL) {
        x->last = c;
    }
    return c;
}

static void
chunk_drop(struct jobidx *x, struct jobidx_chunk *c)
{
    hmap_del(&x->chunks, &c->key, sizeof(c->key));
    if (x->last == c) {
        x->last = NULL;
    }
    free(c);
}

int
jobidx_reserve(struct jobidx *x, uint64_t first, uint64_t n)
{
    if (n == 0) {
        return 0;
    }
    if (first == 0 || first + (n - 1) < first) {
        return SL_EBADREQ; /* id 0 is no job's; past UINT64_MAX ids would wrap */
    }
    uint64_t lo = first >> JOBIDX_SHIFT, hi = (first + n - 1) >> JOBIDX_SHIFT;
    for (uint64_t k = lo; k <= hi; k++) {
        if (chunk_of(x, k << JOBIDX_SHIFT) != NULL) {
            continue;
        }
        struct jobidx_chunk *c = calloc(1, sizeof(*c));
        if (c != NULL) {
            c->key = k;
        }
        if (c == NULL || hmap_put(&x->chunks, &c->key, sizeof(c->key), c) != 0) {
            free(c);
            for (uint64_t u = lo; u < k; u++) { /* the empty chunks made for this call */
                struct jobidx_chunk *e = chunk_of(x, u << JOBIDX_SHIFT);
                if (e != NULL && e->n == 0) {
                    chunk_drop(x, e);
                }
            }
            return SL_ENOMEM;
        }
        x->last = c;
    }
    return 0;
}

void
jobidx_add(struct jobidx *x, struct job *j)
{
    struct jobidx_chunk *c = chunk_of(x, j->id);
    struct job **s = &c->slot[j->id & (JOBIDX_CHUNK - 1)];
    if (*s == NULL) {
        c->n++;
        x->n++;
    }
    *s = j;
}

void
jobidx_del(struct jobidx *x, const struct job *j)
{
    struct jobidx_chunk *c = chunk_of(x, j->id);
    if (c == NULL) {
        return;
    }
    struct job **s = &c->slot[j->id & (JOBIDX_CHUNK - 1)];
    if (*s != j) {
        return;
    }
    *s = NULL;
    x->n--;
    if (--c->n == 0) {
        chunk_drop(x, c);
    }
}

struct job *
jobidx_get(struct jobidx *x, uint64_t id)
{
    struct jobidx_chunk *c = chunk_of(x, id);
    return c != NULL ? c->slot[id & (JOBIDX_CHUNK - 1)] : NULL;
}
