#include "switches.h"

#include <stdlib.h>
#include <string.h>

void
switches_init(struct switches *sw)
{
    hmap_init(&sw->map);
    sw->epoch = 1;
}

void
switches_clear(struct switches *sw)
{
    size_t pos = 0;
    struct sw_entry *e;
    while ((e = hmap_next(&sw->map, &pos)) != NULL) {
        free(e);
    }
    hmap_fini(&sw->map);
    hmap_init(&sw->map);
}

void
switches_fini(struct switches *sw)
{
    switches_clear(sw);
    hmap_fini(&sw->map);
}

const struct sw_entry *
switches_get(const struct switches *sw, struct sl_str group)
{
    return hmap_get(&sw->map, group.p, group.n);
}

const struct sw_entry *
switches_observe(struct switches *sw, struct sl_str group, enum sw_route route, uint64_t now_ms)
{
    struct sw_entry *e = hmap_get(&sw->map, group.p, group.n);

    if (e == NULL) {
        if (group.n == 0 || group.n > WIRE_NAME_MAX || (e = calloc(1, sizeof(*e))) == NULL) {
            return NULL;
        }
        memcpy(e->name, group.p, group.n);
        e->len = group.n;
        e->route = route;
        /* A restarted router must not undo an isolation it did not see begin. */
        e->since_known = route == SW_OWN;
        e->since_ms = now_ms;
        if (hmap_put(&sw->map, e->name, e->len, e) != 0) {
            free(e);
            return NULL;
        }
    } else if (e->route != route) {
        e->route = route;
        e->since_known = true;
        e->since_ms = now_ms;
    }
    e->seen = sw->epoch;
    return e;
}

const struct sw_entry *
switches_set(struct switches *sw, struct sl_str group, enum sw_route route, uint64_t now_ms)
{
    const struct sw_entry *c = switches_observe(sw, group, route, now_ms);
    if (c == NULL) {
        return NULL;
    }
    /* Found in the map, so ours to change. */
    struct sw_entry *e = hmap_get(&sw->map, group.p, group.n);
    e->since_known = true;
    e->since_ms = now_ms;
    return e;
}

void
switches_sweep(struct switches *sw)
{
    size_t pos = 0, ngone = 0, cap = 0;
    struct sw_entry *e, **gone = NULL;

    /* The map must not change while it is iterated: collect first, then delete. */
    while ((e = hmap_next(&sw->map, &pos)) != NULL) {
        if (e->seen == sw->epoch) {
            continue;
        }
        if (ngone == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            struct sw_entry **ng = realloc(gone, ncap * sizeof(*ng));
            if (ng == NULL) {
                break; /* kept until a later sweep: harmless */
            }
            gone = ng;
            cap = ncap;
        }
        gone[ngone++] = e;
    }
    for (size_t i = 0; i < ngone; i++) {
        hmap_del(&sw->map, gone[i]->name, gone[i]->len);
        free(gone[i]);
    }
    free(gone);
    sw->epoch++;
}

uint64_t
switches_dwell_left(const struct sw_entry *e, uint64_t min_dwell_ms, uint64_t now_ms)
{
    if (e == NULL || !e->since_known) {
        return 0;
    }
    if (now_ms < e->since_ms) {
        return min_dwell_ms; /* a clock from another run: wait a whole dwell */
    }
    uint64_t passed = now_ms - e->since_ms;
    return passed >= min_dwell_ms ? 0 : min_dwell_ms - passed;
}
