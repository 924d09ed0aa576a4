/* ctl workers, ctl scale: worker-pool's control socket (PROTOCOL.md, "worker-pool's control
 * socket"), at --pool-url (SLUICE_POOL_URL), default ipc://$SLUICE_DIR/pool.ipc. */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_SCALE_MAX 1024 /* pool.scale's n: 0 to this */

static const struct stats_col pool_cols[] = {
    { "slot", "SLOT", STATS_SHOW_U64, true },
    { "id", "WORKER", STATS_SHOW_TEXT, true },
    { "pid", "PID", STATS_SHOW_CAP, true },
    { "state", "STATE", STATS_SHOW_TEXT, true },
    { "jobs", "JOBS", STATS_SHOW_U64, true },
    { "failed", "FAILED", STATS_SHOW_U64, false },
    { "rss_bytes", "RSS", STATS_SHOW_BYTES, true },
    { "current", "CURRENT", STATS_SHOW_ANY, true },
    { "current_ms", "RUNNING", STATS_SHOW_MS, false },
    { "uptime_s", "UPTIME", STATS_SHOW_SECS, false },
    { "restarts", "RESTARTS", STATS_SHOW_U64, false },
};

/* Counts the workers whose state says they serve. */
static uint32_t
serving(const msgpack_object *workers)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < workers->via.array.size; i++) {
        const msgpack_object *st = ctl_map_get(&workers->via.array.ptr[i], "state");
        if (st != NULL && st->type == MSGPACK_OBJECT_STR &&
            ((st->via.str.size == 4 && memcmp(st->via.str.ptr, "idle", 4) == 0) ||
             (st->via.str.size == 4 && memcmp(st->via.str.ptr, "busy", 4) == 0))) {
            n++;
        }
    }
    return n;
}

int
cmd_workers(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const msgpack_object *workers;
    struct wire_msg req;
    uint64_t n;
    int rv;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if ((rv = ctl_use_pool(ctl, ov->v[CTL_OPT_POOL_URL])) != 0 ||
        (rv = ctl_call(ctl, "pool.status", &req)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_WORKERS, MSGPACK_OBJECT_ARRAY, &workers)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_N, &n)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    printf("pool: target %" PRIu64 " worker%s, %" PRIu32 " serving (idle or busy)\n", n,
           n == 1 ? "" : "s", serving(workers));
    return stats_print_rows(ctl, "workers", pool_cols, sizeof(pool_cols) / sizeof(pool_cols[0]),
                            workers);
}

int
cmd_scale(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    uint64_t n;
    char *end = NULL;
    int rv;

    (void)argc;
    wire_msg_init(&req);
    errno = 0;
    unsigned long long v = strtoull(argv[0], &end, 10);
    if (argv[0][0] < '0' || argv[0][0] > '9' || *end != '\0' || errno != 0 ||
        v > POOL_SCALE_MAX) {
        return ctl_usage(ctl, "N must be a whole number from 0 to %d, not '%s'", POOL_SCALE_MAX,
                         argv[0]);
    }
    wire_set_u64(&req, WK_N, v);
    if ((rv = ctl_use_pool(ctl, ov->v[CTL_OPT_POOL_URL])) != 0 ||
        (rv = ctl_call(ctl, "pool.scale", &req)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_N, &n)) != 0) {
        return rv;
    }
    printf("worker-pool now keeps %" PRIu64 " worker%s\n", n, n == 1 ? "" : "s");
    return 0;
}
