#include "unique.h"

#include "err.h"

#include <stdlib.h>
#include <string.h>

const char *const unique_hold_names[UNIQUE_HOLDS] = { [UNIQUE_ACTIVE] = "active",
                                                      [UNIQUE_TTL] = "ttl" };

int
unique_hold_parse(struct sl_str s)
{
    for (int i = 0; i < UNIQUE_HOLDS; i++) {
        if (sl_str_eq(s, unique_hold_names[i])) {
            return i;
        }
    }
    return -1;
}

void
unique_init(struct unique *u)
{
    hmap_init(&u->map);
    u->sweep = 0;
}

void
unique_fini(struct unique *u)
{
    size_t pos = 0;
    struct ukey *k;
    while ((k = hmap_next(&u->map, &pos)) != NULL) {
        free(k);
    }
    hmap_fini(&u->map);
}

static bool
is_held(const struct ukey *k, struct jobidx *ids, int64_t now)
{
    if (now >= k->expire_ns) {
        return false;
    }
    if (k->hold == UNIQUE_TTL) {
        return true;
    }
    const struct job *j = jobidx_get(ids, k->job_id);
    return j != NULL && j->state != JOB_DEAD && j->state != JOB_NONE;
}

static void
drop(struct unique *u, struct ukey *k)
{
    hmap_del(&u->map, k->key, k->klen);
    free(k);
}

const struct ukey *
unique_held(struct unique *u, struct jobidx *ids, struct sl_str key, int64_t now)
{
    struct ukey *k = hmap_get(&u->map, key.p, key.n);
    if (k != NULL && !is_held(k, ids, now)) {
        drop(u, k);
        return NULL;
    }
    return k;
}

int
unique_prepare(struct unique *u, struct sl_str key, struct ukey **out)
{
    if (key.n == 0 || key.n > UNIQUE_KEY_MAX) {
        return SL_EBADREQ;
    }
    struct ukey *k = malloc(sizeof(*k) + key.n);
    if (k == NULL || hmap_reserve(&u->map, u->map.n + 1) != 0) {
        free(k);
        return SL_ENOMEM;
    }
    k->klen = (uint16_t)key.n;
    memcpy(k->key, key.p, key.n);
    *out = k;
    return 0;
}

void
unique_commit(struct unique *u, struct ukey *k, uint64_t job_id, int64_t expire_ns,
              enum unique_hold hold, uint64_t lsn)
{
    k->job_id = job_id;
    k->lsn = lsn;
    k->expire_ns = expire_ns;
    k->hold = (uint8_t)hold;
    struct ukey *old = hmap_get(&u->map, k->key, k->klen);
    if (old != NULL) {
        drop(u, old);
    }
    hmap_put(&u->map, k->key, k->klen, k); /* room: reserved by unique_prepare */
}

int
unique_put(struct unique *u, struct sl_str key, uint64_t job_id, int64_t expire_ns,
           enum unique_hold hold)
{
    struct ukey *k;
    int rv = unique_prepare(u, key, &k);
    if (rv == 0) {
        unique_commit(u, k, job_id, expire_ns, hold, 0);
    }
    return rv;
}

void
unique_sweep(struct unique *u, struct jobidx *ids, int64_t now, unsigned n)
{
    /* Slots are walked in order from where the last sweep stopped; a deletion may move a
     * later key before the cursor, to be seen on the next round. */
    for (unsigned i = 0; i < n && u->map.cap > 0; i++) {
        if (u->sweep >= u->map.cap) {
            u->sweep = 0;
        }
        struct hmap_slot *s = &u->map.slots[u->sweep];
        if (s->key != NULL && !is_held(s->val, ids, now)) {
            drop(u, s->val); /* the slot may now hold a key shifted back: look again */
            continue;
        }
        u->sweep++;
    }
}

void
unique_foreach(struct unique *u, struct jobidx *ids, int64_t now,
               void (*fn)(void *arg, const struct ukey *k), void *arg)
{
    size_t i = 0;
    while (i < u->map.cap) {
        struct hmap_slot *s = &u->map.slots[i];
        if (s->key == NULL) {
            i++;
        } else if (!is_held(s->val, ids, now)) {
            drop(u, s->val); /* look at slot i again */
        } else {
            fn(arg, s->val);
            i++;
        }
    }
}

size_t
unique_count(const struct unique *u)
{
    return u->map.n;
}
