#include "action.h"

#include "log.h"
#include "ratespec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- lists ------------------------------------------------------------------------------- */

void
action_list_init(struct action_list *l)
{
    memset(l, 0, sizeof(*l));
}

void
action_list_fini(struct action_list *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

void
action_list_clear(struct action_list *l)
{
    l->n = 0;
}

struct action *
action_list_add(struct action_list *l, enum action_kind kind)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap == 0 ? 16 : l->cap * 2;
        struct action *nv = realloc(l->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            return NULL;
        }
        l->v = nv;
        l->cap = ncap;
    }
    struct action *a = &l->v[l->n++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    return a;
}

const char *
action_verb(enum action_kind kind)
{
    static const char *const verbs[] = {
        [ACT_QUEUE_CREATE] = "create", [ACT_QUEUE_UPDATE] = "update", [ACT_ROUTE_SET] = "route",
        [ACT_ROUTE_UNSET] = "unroute", [ACT_QUEUE_DESTROY] = "destroy",
        [ACT_GROUP_WEIGHT] = "weight", [ACT_GROUP_LIMIT] = "limit",
    };
    return (unsigned)kind < sizeof(verbs) / sizeof(verbs[0]) ? verbs[kind] : "?";
}

/* --- requests and the log ---------------------------------------------------------------- */

void
action_request(const struct action *a, uint64_t lease, struct wire_msg *req)
{
    static const char *const ops[] = {
        [ACT_QUEUE_CREATE] = "queue.create", [ACT_QUEUE_UPDATE] = "queue.update",
        [ACT_ROUTE_SET] = "route.set", [ACT_ROUTE_UNSET] = "route.unset",
        [ACT_QUEUE_DESTROY] = "queue.destroy", [ACT_GROUP_WEIGHT] = "group.weight",
        [ACT_GROUP_LIMIT] = "group.limit",
    };

    wire_msg_init(req);
    wire_set_cstr(req, WK_OP, ops[a->kind]);
    switch (a->kind) {
    case ACT_QUEUE_CREATE:
    case ACT_QUEUE_UPDATE:
        wire_set_cstr(req, WK_NAME, a->queue);
        wire_set_u64(req, WK_PRIORITY, a->set.priority);
        wire_set_u64(req, WK_WEIGHT, a->set.weight);
        wire_set_u64(req, WK_MAX_INFLIGHT, a->set.max_inflight);
        break;
    case ACT_ROUTE_SET:
        wire_set_cstr(req, WK_GROUP, a->group);
        wire_set_cstr(req, WK_QUEUE, a->queue);
        wire_set_cstr(req, WK_EXPECT, a->expect);
        break;
    case ACT_ROUTE_UNSET:
        wire_set_cstr(req, WK_GROUP, a->group);
        wire_set_cstr(req, WK_EXPECT, a->expect);
        break;
    case ACT_QUEUE_DESTROY:
        wire_set_cstr(req, WK_NAME, a->queue);
        if (a->force) {
            wire_set_bool(req, WK_FORCE, true);
        }
        break;
    case ACT_GROUP_WEIGHT:
        wire_set_cstr(req, WK_GROUP, a->group);
        wire_set_num(req, WK_WEIGHT, a->weight);
        if (a->expect[0] != '\0') {
            wire_set_cstr(req, WK_EXPECT, a->expect);
        }
        break;
    case ACT_GROUP_LIMIT:
        wire_set_cstr(req, WK_GROUP, a->group);
        wire_set_num(req, WK_RATE, (double)a->rate_milli / 1000.0);
        if (a->rate_milli != 0) {
            wire_set_u64(req, WK_BURST, a->burst);
        }
        wire_set_cstr(req, WK_EXPECT, a->expect);
        break;
    }
    /* The reason travels with the change: the broker logs it and publishes it. */
    wire_set_cstr(req, WK_REASON, a->reason);
    if (lease != 0) {
        wire_set_u64(req, WK_LEASE, lease);
    }
}

void
action_describe(const struct action *a, char *out, size_t cap)
{
    int n = snprintf(out, cap, "action=%s", action_verb(a->kind));
    if (a->group[0] != '\0' && n > 0 && (size_t)n < cap) {
        n += snprintf(out + n, cap - (size_t)n, " group=%s count=%" PRIu64, a->group, a->count);
    }
    if (a->queue[0] != '\0' && n > 0 && (size_t)n < cap) {
        n += snprintf(out + n, cap - (size_t)n, " queue=%s", a->queue);
    }
    if (a->kind == ACT_QUEUE_CREATE || a->kind == ACT_QUEUE_UPDATE) {
        if (n > 0 && (size_t)n < cap) {
            n += snprintf(out + n, cap - (size_t)n,
                          " priority=%" PRIu64 " weight=%" PRIu64 " max_inflight=%" PRIu64,
                          a->set.priority, a->set.weight, a->set.max_inflight);
        }
    }
    if (a->kind == ACT_GROUP_WEIGHT && n > 0 && (size_t)n < cap) {
        n += snprintf(out + n, cap - (size_t)n, " weight=%g", a->weight);
    }
    if (a->kind == ACT_GROUP_LIMIT && n > 0 && (size_t)n < cap) {
        char r[32] = "none";
        if (a->rate_milli != 0) {
            ratespec_format(a->rate_milli, r, sizeof(r));
        }
        n += snprintf(out + n, cap - (size_t)n, " rate=%s burst=%" PRIu64, r, a->burst);
    }
    if (n > 0 && (size_t)n < cap) {
        char reason[ACTION_REASON_MAX + 16];
        snprintf(out + n, cap - (size_t)n, " reason=%s",
                 log_quote(reason, sizeof(reason), a->reason, (unsigned)strlen(a->reason)));
    }
}

