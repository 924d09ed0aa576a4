/* The ops behind the dashboard's pages (README "Dashboard"): group.list, one sorted and
 * filtered page of the groups, and history, the last minutes' counts per second. */
#include "err.h"
#include "grouppage.h"
#include "history.h"
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>

/* Reads group.list's fields into r; why names the one that is wrong. */
static int
page_req(const struct wire_msg *req, struct grouppage_req *r, char *why)
{
    r->key = GP_NAME;
    r->desc = false;
    r->filter = (struct sl_str){ NULL, 0 };
    r->offset = WIRE_HAS(req, WK_OFFSET) ? req->v[WK_OFFSET].u : 0;
    r->max = GROUPPAGE_DEFAULT;
    if (WIRE_HAS(req, WK_SORT) && !grouppage_key_parse(req->v[WK_SORT].s, &r->key)) {
        snprintf(why, WHY_MAX, "sort must be one of: %s", grouppage_key_list());
        return SL_EBADREQ;
    }
    if (WIRE_HAS(req, WK_ORDER)) {
        struct sl_str o = req->v[WK_ORDER].s;
        if (!sl_str_eq(o, "asc") && !sl_str_eq(o, "desc")) {
            snprintf(why, WHY_MAX, "order must be asc or desc");
            return SL_EBADREQ;
        }
        r->desc = sl_str_eq(o, "desc");
    }
    if (WIRE_HAS(req, WK_MAX)) {
        uint64_t m = req->v[WK_MAX].u;
        if (m < 1 || m > GROUPPAGE_MAX) {
            snprintf(why, WHY_MAX, "max must be from 1 to %d", GROUPPAGE_MAX);
            return SL_EBADREQ;
        }
        r->max = (uint32_t)m;
    }
    if (WIRE_HAS(req, WK_FILTER)) {
        r->filter = req->v[WK_FILTER].s;
        if (r->filter.n > WIRE_NAME_MAX) {
            snprintf(why, WHY_MAX, "filter must be at most %d bytes", WIRE_NAME_MAX);
            return SL_EBADREQ;
        }
    }
    return 0;
}

int
op_group_list(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
              struct op_ctx *c)
{
    struct grouppage_req r;
    int rv = page_req(req, &r, c->why);
    if (rv != 0) {
        return rv;
    }
    uint32_t n = 0;
    for (const struct group *g = b->groups_head; g != NULL; g = g->next) {
        n++;
    }
    const struct group **page = malloc(r.max * sizeof(*page));
    uint32_t got = 0;
    uint64_t total = 0;
    int64_t now = broker_mono_ns(b);
    if (page == NULL ||
        grouppage_select(b->groups_head, n, &r, now, page, &got, &total) != 0) {
        free(page);
        snprintf(c->why, WHY_MAX, "out of memory");
        return SL_ENOMEM;
    }
    uint64_t all = wait_window_count(&b->dispatch_win, now);
    wire_pack_ok(pk, 2);
    key_u64(pk, WK_TOTAL, total);
    wire_pack_key(pk, WK_GROUPS);
    msgpack_pack_array(pk, got);
    for (uint32_t i = 0; i < got; i++) {
        ops_pack_group(pk, page[i], now, all);
    }
    free(page);
    return 0;
}

int
op_history(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    (void)req;
    (void)c;
    /* The second going on is left out: it is not over, its counts would look like a drop. */
    const uint32_t n = HISTORY_SECONDS - 2;
    int64_t now_s = broker_mono_ns(b) / 1000000000;
    wire_pack_ok(pk, 2);
    wire_pack_cstr(pk, "step_ms");
    msgpack_pack_uint32(pk, 1000);
    wire_pack_cstr(pk, "series");
    msgpack_pack_map(pk, HIST_NSERIES);
    for (int s = 0; s < HIST_NSERIES; s++) {
        wire_pack_cstr(pk, history_series_names[s]);
        msgpack_pack_array(pk, n);
        for (uint32_t i = n; i >= 1; i--) {  /* oldest first */
            msgpack_pack_uint64(pk, history_delta(&b->hist, now_s, i, (enum history_series)s));
        }
    }
    return 0;
}
