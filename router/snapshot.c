#include "snapshot.h"

#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
snapshot_buf_init(struct snapshot_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void
snapshot_buf_fini(struct snapshot_buf *b)
{
    free(b->groups);
    free(b->queues);
    memset(b, 0, sizeof(*b));
}

static const msgpack_object *
map_get(const msgpack_object *map, const char *key)
{
    return wire_obj_get(map, key);
}

static bool
get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *o = map_get(map, key);
    if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return false;
    }
    *out = o->via.u64;
    return true;
}

/* An optional positive number: absent -> dflt. */
static bool
get_num_opt(const msgpack_object *map, const char *key, double dflt, double *out)
{
    const msgpack_object *o = map_get(map, key);
    double d;

    if (o == NULL) {
        *out = dflt;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        d = (double)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
        d = o->via.f64;
    } else {
        return false;
    }
    /* Written so that NaN fails too; infinity is no weight either. */
    if (!(d > 0 && d < 1e300)) {
        return false;
    }
    *out = d;
    return true;
}

static bool
get_str(const msgpack_object *map, const char *key, bool nil_ok, struct sl_str *out)
{
    const msgpack_object *o = map_get(map, key);
    if (o != NULL && o->type == MSGPACK_OBJECT_NIL && nil_ok) {
        *out = (struct sl_str){ "", 0 };
        return true;
    }
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0) {
        return false;
    }
    *out = (struct sl_str){ o->via.str.ptr, o->via.str.size };
    return true;
}

static int
grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap) {
        return 0;
    }
    void *nv = realloc(*v, n * size);
    if (nv == NULL) {
        return SL_ENOMEM;
    }
    *v = nv;
    *cap = n;
    return 0;
}

static int
decode_groups(struct snapshot_buf *b, const msgpack_object *arr, char *why, size_t whycap)
{
    if (grow((void **)&b->groups, &b->capg, arr->via.array.size, sizeof(*b->groups)) != 0) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *m = &arr->via.array.ptr[i];
        struct snap_group *g = &b->groups[i];
        if (m->type != MSGPACK_OBJECT_MAP || !get_str(m, "name", false, &g->name) ||
            !get_str(m, "route", true, &g->route) || !get_u64(m, "count", &g->count)) {
            snprintf(why, whycap, "groups[%u] lacks a string name, a route or a count", i);
            return SL_EBADREQ;
        }
        /* A broker from before group weights does not say: every group has weight 1 there. */
        if (!get_num_opt(m, "weight", POLICY_GROUP_WEIGHT, &g->weight)) {
            snprintf(why, whycap, "groups[%u] has a weight that is not a positive number", i);
            return SL_EBADREQ;
        }
        /* Its start rate: nil or absent (a broker from before group.limit) is none. */
        double rate = 0, burst = 0;
        const msgpack_object *r = map_get(m, "rate");
        if ((r != NULL && r->type != MSGPACK_OBJECT_NIL &&
             (!get_num_opt(m, "rate", 0, &rate) || !get_num_opt(m, "burst", 0, &burst))) ||
            rate > 1e9 || burst > 1e9) {
            snprintf(why, whycap, "groups[%u] has a rate or burst that is not a positive number",
                     i);
            return SL_EBADREQ;
        }
        g->rate_milli = (uint64_t)(rate * 1000 + 0.5);
        g->burst = (uint64_t)burst;
    }
    b->s.groups = b->groups;
    b->s.ngroups = arr->via.array.size;
    return 0;
}

static int
decode_queues(struct snapshot_buf *b, const msgpack_object *arr, char *why, size_t whycap)
{
    if (grow((void **)&b->queues, &b->capq, arr->via.array.size, sizeof(*b->queues)) != 0) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *m = &arr->via.array.ptr[i];
        struct snap_queue *q = &b->queues[i];
        const msgpack_object *paused = m->type == MSGPACK_OBJECT_MAP ? map_get(m, "paused") : NULL;
        if (m->type != MSGPACK_OBJECT_MAP || !get_str(m, "name", false, &q->name) ||
            !get_u64(m, "priority", &q->priority) || !get_u64(m, "weight", &q->weight) ||
            !get_u64(m, "max_inflight", &q->max_inflight) || !get_u64(m, "ready", &q->ready) ||
            !get_u64(m, "reserved", &q->reserved) || !get_u64(m, "delayed", &q->delayed) ||
            !get_u64(m, "dead", &q->dead) || paused == NULL ||
            paused->type != MSGPACK_OBJECT_BOOLEAN) {
            snprintf(why, whycap, "queues[%u] lacks a field or has one of a wrong type", i);
            return SL_EBADREQ;
        }
        q->paused = paused->via.boolean;
    }
    b->s.queues = b->queues;
    b->s.nqueues = arr->via.array.size;
    return 0;
}

int
snapshot_decode(struct snapshot_buf *b, const struct wire_msg *rep, uint64_t now_ms, char *why,
                size_t whycap)
{
    const msgpack_object *groups, *queues;
    int rv;

    memset(&b->s, 0, sizeof(b->s));
    if (!WIRE_HAS(rep, WK_GROUPS) || !WIRE_HAS(rep, WK_QUEUES) ||
        (groups = rep->v[WK_GROUPS].any)->type != MSGPACK_OBJECT_ARRAY ||
        (queues = rep->v[WK_QUEUES].any)->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(why, whycap, "the reply lacks the arrays 'groups' and 'queues'");
        return SL_EBADREQ;
    }
    if ((rv = decode_groups(b, groups, why, whycap)) != 0 ||
        (rv = decode_queues(b, queues, why, whycap)) != 0) {
        memset(&b->s, 0, sizeof(b->s));
        return rv;
    }
    b->s.now_ms = now_ms;
    return 0;
}
