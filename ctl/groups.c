/* ctl groups list: one page of the broker's groups, sorted and filtered by the broker
 * (group.list, the dashboard's Groups table), so that a broker with 10,000 groups is read a
 * page at a time. */
#include "ctl.h"

#include "err.h"
#include "opt.h"
#include "table.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The value of key k in map o, or NULL. */
static const msgpack_object *
get(const msgpack_object *o, const char *k)
{
    size_t n = strlen(k);
    if (o->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == n &&
            memcmp(kv->key.via.str.ptr, k, n) == 0) {
            return &kv->val;
        }
    }
    return NULL;
}

/* One cell: a uint, a float (as an integer of ms), a string, or "-" for nil or missing. */
static void
cell(struct table *t, const msgpack_object *o, const char *k)
{
    const msgpack_object *v = get(o, k);
    if (v == NULL || v->type == MSGPACK_OBJECT_NIL) {
        table_cell(t, "-", 1);
    } else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        table_cellf(t, "%" PRIu64, v->via.u64);
    } else if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32) {
        table_cellf(t, "%.0f", v->via.f64);
    } else if (v->type == MSGPACK_OBJECT_STR) {
        table_cell(t, v->via.str.ptr, v->via.str.size);
    } else {
        table_cell(t, "?", 1);
    }
}

static const struct {
    const char *title, *key;
    bool right;
} cols[] = {
    { "GROUP", "name", false },          { "COUNT", "count", true },
    { "READY", "ready", true },          { "RESERVED", "reserved", true },
    { "DEAD", "dead", true },            { "ROUTE", "route", false },
    { "OLDEST_MS", "oldest_ready_ms", true }, { "P50_MS", "wait_p50_ms", true },
    { "P99_MS", "wait_p99_ms", true },
};

int
cmd_group_list(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const msgpack_object *groups;
    struct wire_msg req;
    uint64_t total, v;
    int rv;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if (ov->v[CTL_OPT_SORT] != NULL) {
        wire_set_cstr(&req, WK_SORT, ov->v[CTL_OPT_SORT]);
    }
    if (ov->v[CTL_OPT_ORDER] != NULL) {
        wire_set_cstr(&req, WK_ORDER, ov->v[CTL_OPT_ORDER]);
    }
    if (ov->v[CTL_OPT_FILTER] != NULL) {
        wire_set_cstr(&req, WK_FILTER, ov->v[CTL_OPT_FILTER]);
    }
    if (ov->v[CTL_OPT_OFFSET] != NULL) {
        if (opt_u64("offset", ov->v[CTL_OPT_OFFSET], 0, UINT32_MAX, &v) != 0) {
            return CTL_EXIT_USAGE;
        }
        wire_set_u64(&req, WK_OFFSET, v);
    }
    if (ov->v[CTL_OPT_MAX] != NULL) {
        if (opt_u64("max", ov->v[CTL_OPT_MAX], 1, 500, &v) != 0) {
            return CTL_EXIT_USAGE;
        }
        wire_set_u64(&req, WK_MAX, v);
    }
    if ((rv = ctl_call(ctl, "group.list", &req)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_GROUPS, MSGPACK_OBJECT_ARRAY, &groups)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_TOTAL, &total)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    struct table t;
    table_init(&t);
    for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
        table_col(&t, cols[c].title, cols[c].right);
    }
    for (uint32_t i = 0; i < groups->via.array.size; i++) {
        for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
            cell(&t, &groups->via.array.ptr[i], cols[c].key);
        }
    }
    printf("groups (%" PRIu32 " of %" PRIu64 "):\n", groups->via.array.size, total);
    if (table_print(&t, stdout) != 0) {
        fprintf(stderr, "ctl: out of memory formatting groups\n");
        rv = CTL_EXIT_FAILED;
    }
    table_fini(&t);
    return rv;
}
