/* ctl cluster status | step-down: a cluster broker's role, lease and stream (cluster.h). */
#include "ctl.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Prints the status reply's field key: a string as it is, a number in decimal. */
static void
field(const struct ctl *ctl, const char *label, const char *key)
{
    const msgpack_object *o = ctl_map_get(&ctl->rep.up.data, key);
    printf("%-18s ", label);
    if (o == NULL) {
        fputs("-\n", stdout);
    } else if (o->type == MSGPACK_OBJECT_STR) {
        printf("%.*s\n", (int)o->via.str.size, o->via.str.ptr);
    } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        printf("%" PRIu64 "\n", o->via.u64);
    } else {
        fputs("?\n", stdout);
    }
}

int
cmd_cluster_status(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    static const char *const rows[][2] = {
        { "role", "role" },           { "shard", "shard" },
        { "leader", "leader_url" },   { "epoch", "epoch" },
        { "serving", "serving" },     { "this broker", "advertise" },
        { "holder", "holder" },       { "applied seq", "applied_seq" },
        { "lag (records)", "lag_records" }, { "lag (ms)", "lag_ms" },
        { "stream first seq", "stream_first_seq" }, { "stream last seq", "stream_last_seq" },
        { "stream bytes", "stream_bytes" },
        { "replicas current", "stream_replicas_current" },
        { "stream leader", "stream_leader" },
    };
    struct wire_msg req;
    int rv;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if ((rv = ctl_call(ctl, "cluster.status", &req)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        field(ctl, rows[i][0], rows[i][1]);
    }
    return 0;
}

int
cmd_cluster_step_down(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    int rv;

    (void)argc;
    (void)argv;
    (void)ov;
    wire_msg_init(&req);
    if ((rv = ctl_call(ctl, "cluster.step_down", &req)) != 0) {
        return rv;
    }
    printf("stepping down: a standby takes the lease; this broker starts again as a standby\n");
    return 0;
}
