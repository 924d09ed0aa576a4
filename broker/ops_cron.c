/* The recurring jobs' ops (cron.h): cron.add, cron.remove, cron.list, cron.pause,
 * cron.resume. */
#include "ops_int.h"

#include "err.h"

#include <stdio.h>

static int
not_found(char *why, struct sl_str name)
{
    snprintf(why, WHY_MAX, "cron entry '%.*s' does not exist", (int)name.n, name.p);
    return SL_ENOTFOUND;
}

/* The optional "missed" field into *out (default once). */
static int
missed_arg(const struct wire_msg *req, enum cron_missed *out, char *why)
{
    *out = CRON_MISSED_ONCE;
    if (!WIRE_HAS(req, WK_MISSED)) {
        return 0;
    }
    for (int i = 0; i < CRON_MISSED_RULES; i++) {
        if (sl_str_eq(req->v[WK_MISSED].s, cron_missed_names[i])) {
            *out = (enum cron_missed)i;
            return 0;
        }
    }
    snprintf(why, WHY_MAX, "cron.add: 'missed' must be \"once\" or \"skip\"");
    return SL_EBADREQ;
}

/* An instant as a value: nil for none (< 0, or 0 for last_ms never set). */
static void
kv_instant(msgpack_packer *pk, const char *k, int64_t ms)
{
    wire_pack_str(pk, k, strlen(k));
    if (ms > 0) {
        msgpack_pack_uint64(pk, (uint64_t)ms);
    } else {
        msgpack_pack_nil(pk);
    }
}

int
op_cron_add(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    struct cron_spec s = { 0 };
    bool replaced = false;
    int rv;

    if (req->v[WK_PAYLOADS].l.n != 1) {
        snprintf(c->why, WHY_MAX, "cron.add: 'payloads' must hold exactly one payload");
        return SL_EBADREQ;
    }
    if ((rv = missed_arg(req, &s.missed, c->why)) != 0) {
        return rv;
    }
    s.name = req->v[WK_NAME].s;
    s.sched = req->v[WK_SCHEDULE].s;
    s.group = req->v[WK_GROUP].s;
    s.queue = WIRE_HAS(req, WK_QUEUE) ? req->v[WK_QUEUE].s : (struct sl_str){ "", 0 };
    s.payload = wire_list_str(&req->v[WK_PAYLOADS].l, 0);
    char why[WHY_MAX - 32];
    b->origin = req;
    rv = cron_add(b, &s, &replaced, why, sizeof(why));
    b->origin = NULL;
    if (rv != 0) {
        snprintf(c->why, WHY_MAX, "%s%s", rv == SL_EBADREQ ? "cron.add: schedule: " : "", why);
        return rv;
    }
    /* next_ms is left out when there is none: a top-level key keeps its one type. */
    int64_t next = cron_next_ms(cron_find(b, s.name));
    wire_pack_ok(pk, 1 + (next > 0));
    wire_pack_key(pk, WK_REPLACED);
    replaced ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    if (next > 0) {
        key_u64(pk, WK_NEXT_MS, (uint64_t)next);
    }
    return 0;
}

int
op_cron_remove(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
               struct op_ctx *c)
{
    struct sl_str name = req->v[WK_NAME].s;
    b->origin = req;
    int rv = cron_remove(b, name);
    b->origin = NULL;
    if (rv != 0) {
        return not_found(c->why, name);
    }
    wire_pack_ok(pk, 0);
    return 0;
}

static int
pause_resume(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, char *why,
             bool paused)
{
    struct sl_str name = req->v[WK_NAME].s;
    b->origin = req;
    int rv = cron_pause(b, name, paused);
    b->origin = NULL;
    if (rv != 0) {
        return not_found(why, name);
    }
    wire_pack_ok(pk, 0);
    return 0;
}

int
op_cron_pause(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    return pause_resume(b, req, pk, c->why, true);
}

int
op_cron_resume(struct broker *b, const struct wire_msg *req, msgpack_packer *pk,
               struct op_ctx *c)
{
    return pause_resume(b, req, pk, c->why, false);
}

static void
pack_entry(msgpack_packer *pk, const struct cron_entry *e)
{
    msgpack_pack_map(pk, 11);
    kv_str(pk, "name", e->name, e->name_len);
    kv_str(pk, "schedule", e->sched, e->sched_len);
    kv_str(pk, "group", e->group, e->group_len);
    wire_pack_cstr(pk, "queue");
    if (e->queue_len > 0) {
        wire_pack_str(pk, e->queue, e->queue_len);
    } else {
        msgpack_pack_nil(pk);
    }
    wire_pack_cstr(pk, "payload");
    msgpack_pack_bin(pk, e->len);
    msgpack_pack_bin_body(pk, e->payload, e->len);
    wire_pack_cstr(pk, "paused");
    e->paused ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    const char *missed = cron_missed_names[e->missed];
    kv_str(pk, "missed", missed, strlen(missed));
    kv_instant(pk, "next_ms", cron_next_ms(e));
    kv_instant(pk, "last_ms", e->last_ms);
    kv_u64(pk, "fired", e->fired);
    kv_u64(pk, "refused", e->refused);
}

int
op_cron_list(struct broker *b, const struct wire_msg *req, msgpack_packer *pk, struct op_ctx *c)
{
    (void)req;
    (void)c;
    wire_pack_ok(pk, 1);
    wire_pack_key(pk, WK_CRON);
    msgpack_pack_array(pk, b->cron.n);
    for (const struct cron_entry *e = b->cron.head; e != NULL; e = e->next) {
        pack_entry(pk, e);
    }
    return 0;
}
