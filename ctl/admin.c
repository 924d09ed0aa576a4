/* ctl's administrative commands: queues, routes, group weights and limits, flush, purge,
 * ping. Each checks its arguments before anything is sent, makes one request and prints one
 * line (or a table) from the reply. */
#include "ctl.h"

#include "clock.h"
#include "json.h"
#include "ratespec.h"
#include "table.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* PROTOCOL.md, queue.create. */
#define QUEUE_PRIORITY_MAX 1000000
#define QUEUE_WEIGHT_MAX 1000
#define QUEUE_INFLIGHT_MAX 1000000
#define QUEUE_RETRY_BASE_MAX 86400000   /* 24 h */
#define QUEUE_RETRY_MAX_MAX 604800000   /* 7 days */

/* PROTOCOL.md, group.weight: a decimal number; 1 is every group's weight until set. */
#define GROUP_WEIGHT_MIN 0.01
#define GROUP_WEIGHT_MAX 1000.0

/* The orders a queue serves its ready jobs in (PROTOCOL.md, queue.create). */
static const char *const queue_orders[] = { "groups", "fifo" };

static const char *
plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

/* --order into req when given; *nset counts it. */
static int
queue_order(struct ctl *ctl, const struct opt_vals *ov, struct wire_msg *req, int *nset)
{
    const char *arg = ov->v[CTL_OPT_ORDER];

    if (arg == NULL) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(queue_orders) / sizeof(queue_orders[0]); i++) {
        if (strcmp(arg, queue_orders[i]) == 0) {
            wire_set_cstr(req, WK_ORDER, queue_orders[i]);
            (*nset)++;
            return 0;
        }
    }
    return ctl_usage(ctl, "--order '%s': the order is groups (each group in turn) or fifo "
                          "(arrival order)", arg);
}

/* --priority, --weight, --max-inflight, --retry-*, --order into req; *nset counts those
 * given. */
static int
queue_settings(struct ctl *ctl, const struct opt_vals *ov, struct wire_msg *req, int *nset)
{
    static const struct {
        int opt;
        const char *name;
        enum wire_key key;
        uint64_t min, max;
        bool duration;             /* a duration (opt_ms), else a number */
    } settings[] = {
        { CTL_OPT_PRIORITY, "priority", WK_PRIORITY, 0, QUEUE_PRIORITY_MAX, false },
        { CTL_OPT_WEIGHT, "weight", WK_WEIGHT, 1, QUEUE_WEIGHT_MAX, false },
        { CTL_OPT_MAX_INFLIGHT, "max-inflight", WK_MAX_INFLIGHT, 0, QUEUE_INFLIGHT_MAX, false },
        { CTL_OPT_RETRY_BASE, "retry-base", WK_RETRY_BASE_MS, 0, QUEUE_RETRY_BASE_MAX, true },
        { CTL_OPT_RETRY_MAX, "retry-max", WK_RETRY_MAX_MS, 1, QUEUE_RETRY_MAX_MAX, true },
        { CTL_OPT_RETRY_JITTER, "retry-jitter", WK_RETRY_JITTER, 0, 100, false },
    };
    uint64_t u;
    int rv;

    *nset = 0;
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        const char *arg = ov->v[settings[i].opt];
        if (arg == NULL) {
            continue;
        }
        rv = settings[i].duration
                 ? opt_ms(settings[i].name, arg, settings[i].min, settings[i].max, &u)
                 : opt_u64(settings[i].name, arg, settings[i].min, settings[i].max, &u);
        if (rv != 0) {
            return rv;
        }
        wire_set_u64(req, settings[i].key, u);
        (*nset)++;
    }
    return queue_order(ctl, ov, req, nset);
}

/* A request naming one queue (argv[0]), checked. */
static int
queue_req(struct ctl *ctl, char **argv, struct wire_msg *req)
{
    int rv;

    wire_msg_init(req);
    if ((rv = ctl_check_name(ctl, "queue", argv[0])) != 0) {
        return rv;
    }
    wire_set_cstr(req, WK_NAME, argv[0]);
    return 0;
}

int
cmd_queue_list(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const msgpack_object *queues;
    struct wire_msg req;
    int rv;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if ((rv = ctl_call(ctl, "queue.list", &req)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_QUEUES, MSGPACK_OBJECT_ARRAY, &queues)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    return stats_print_queues(ctl, "queues", queues);
}

int
cmd_queue_create(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    int rv, nset;

    (void)argc;
    if ((rv = queue_req(ctl, argv, &req)) != 0 ||
        (rv = queue_settings(ctl, ov, &req, &nset)) != 0 ||
        (rv = ctl_call(ctl, "queue.create", &req)) != 0) {
        return rv;
    }
    printf("created queue %s\n", argv[0]);
    return 0;
}

int
cmd_queue_update(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    int rv, nset;

    (void)argc;
    if ((rv = queue_req(ctl, argv, &req)) != 0 ||
        (rv = queue_settings(ctl, ov, &req, &nset)) != 0) {
        return rv;
    }
    if (nset == 0) {
        return ctl_usage(ctl, "nothing to change: give --priority, --weight, --max-inflight, "
                              "--retry-base, --retry-max, --retry-jitter or --order");
    }
    if ((rv = ctl_call(ctl, "queue.update", &req)) != 0) {
        return rv;
    }
    printf("updated queue %s\n", argv[0]);
    return 0;
}

int
cmd_queue_destroy(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    uint64_t moved, reset;
    int rv;

    (void)argc;
    if ((rv = queue_req(ctl, argv, &req)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_FORCE] != NULL) {
        wire_set_bool(&req, WK_FORCE, true);
    }
    if ((rv = ctl_call(ctl, "queue.destroy", &req)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_MOVED, &moved)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_ROUTES_RESET, &reset)) != 0) {
        return rv;
    }
    printf("destroyed queue %s (moved %" PRIu64 " job%s to default, reset %" PRIu64 " route%s)\n",
           argv[0], moved, plural(moved), reset, plural(reset));
    return 0;
}

static int
queue_simple(struct ctl *ctl, char **argv, const char *op, const char *done)
{
    struct wire_msg req;
    int rv;

    if ((rv = queue_req(ctl, argv, &req)) != 0 || (rv = ctl_call(ctl, op, &req)) != 0) {
        return rv;
    }
    printf("%s queue %s\n", done, argv[0]);
    return 0;
}

int
cmd_queue_pause(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    (void)argc;
    (void)ov;
    return queue_simple(ctl, argv, "queue.pause", "paused");
}

int
cmd_queue_resume(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    (void)argc;
    (void)ov;
    return queue_simple(ctl, argv, "queue.resume", "resumed");
}

/* "leader: NAME (lease N, expires in 1.6 s, high 100)" from route.list's leader (nil: none). */
static int
print_leader(const struct ctl *ctl)
{
    const msgpack_object *l = WIRE_HAS(&ctl->rep, WK_LEADER) ? ctl->rep.v[WK_LEADER].any : NULL;
    char left[64];

    if (l == NULL || l->type == MSGPACK_OBJECT_NIL) {
        printf("leader: none (no router holds the lease)\n");
        return 0;
    }
    const msgpack_object *name = ctl_map_get(l, "name"), *lease = ctl_map_get(l, "lease"),
                         *exp = ctl_map_get(l, "expires_ms"), *high = ctl_map_get(l, "high");
    if (name == NULL || name->type != MSGPACK_OBJECT_STR || lease == NULL ||
        lease->type != MSGPACK_OBJECT_POSITIVE_INTEGER || exp == NULL ||
        exp->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return ctl_bad_reply(ctl, "'leader' is not a map of a string 'name' and numbers 'lease' "
                                  "and 'expires_ms'");
    }
    ctl_fmt_duration_us(left, sizeof(left),
                        exp->via.u64 < UINT64_MAX / 1000 ? exp->via.u64 * 1000 : UINT64_MAX);
    printf("leader: ");
    json_write_text(stdout, name->via.str.ptr, name->via.str.size);
    printf(" (lease %" PRIu64 ", expires in %s", lease->via.u64, left);
    if (high != NULL && high->type == MSGPACK_OBJECT_POSITIVE_INTEGER && high->via.u64 > 0) {
        printf(", high %" PRIu64, high->via.u64);
    }
    printf(")\n");
    return 0;
}

int
cmd_route_list(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const msgpack_object *routes;
    struct wire_msg req;
    struct table t;
    int rv = 0;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if ((rv = ctl_call(ctl, "route.list", &req)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_ROUTES, MSGPACK_OBJECT_ARRAY, &routes)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    if ((rv = print_leader(ctl)) != 0) {
        return rv;
    }
    table_init(&t);
    table_col(&t, "GROUP", false);
    table_col(&t, "QUEUE", false);
    for (uint32_t i = 0; i < routes->via.array.size; i++) {
        const msgpack_object *r = &routes->via.array.ptr[i];
        const msgpack_object *g = ctl_map_get(r, "group"), *q = ctl_map_get(r, "queue");
        if (g == NULL || g->type != MSGPACK_OBJECT_STR || q == NULL ||
            q->type != MSGPACK_OBJECT_STR) {
            rv = ctl_bad_reply(ctl, "routes[%" PRIu32 "] is not a map of a string 'group' and a "
                                    "string 'queue'", i);
            goto out;
        }
        table_cell(&t, g->via.str.ptr, g->via.str.size);
        table_cell(&t, q->via.str.ptr, q->via.str.size);
    }
    if (routes->via.array.size == 0) {
        printf("routes: none (every group goes to default)\n");
    } else {
        printf("routes (%" PRIu32 "):\n", routes->via.array.size);
        if (table_print(&t, stdout) != 0) {
            fprintf(stderr, "ctl: out of memory formatting routes\n");
            rv = CTL_EXIT_FAILED;
        }
    }
out:
    table_fini(&t);
    return rv;
}

int
cmd_route_set(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    uint64_t moved;
    int rv;

    (void)argc;
    (void)ov;
    wire_msg_init(&req);
    if ((rv = ctl_check_name(ctl, "group", argv[0])) != 0 ||
        (rv = ctl_check_name(ctl, "queue", argv[1])) != 0) {
        return rv;
    }
    wire_set_cstr(&req, WK_GROUP, argv[0]);
    wire_set_cstr(&req, WK_QUEUE, argv[1]);
    if ((rv = ctl_call(ctl, "route.set", &req)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_MOVED, &moved)) != 0) {
        return rv;
    }
    printf("routed group %s to queue %s (moved %" PRIu64 " ready job%s)\n", argv[0], argv[1],
           moved, plural(moved));
    return 0;
}

int
cmd_route_unset(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    uint64_t moved;
    int rv;

    (void)argc;
    (void)ov;
    wire_msg_init(&req);
    if ((rv = ctl_check_name(ctl, "group", argv[0])) != 0) {
        return rv;
    }
    wire_set_cstr(&req, WK_GROUP, argv[0]);
    if ((rv = ctl_call(ctl, "route.unset", &req)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_MOVED, &moved)) != 0) {
        return rv;
    }
    printf("routed group %s back to default (moved %" PRIu64 " ready job%s)\n", argv[0], moved,
           plural(moved));
    return 0;
}

/* A group's weight as typed: digits, maybe a point and more digits (no sign, exponent or
 * blank), from GROUP_WEIGHT_MIN to GROUP_WEIGHT_MAX. Returns 0 or CTL_EXIT_USAGE (printed). */
static int
parse_group_weight(const struct ctl *ctl, const char *arg, double *out)
{
    size_t i = strspn(arg, "0123456789");
    bool shape = i > 0 && (arg[i] == '\0' ||
                           (arg[i] == '.' && arg[i + 1] != '\0' &&
                            arg[i + 1 + strspn(arg + i + 1, "0123456789")] == '\0'));
    double w = shape ? strtod(arg, NULL) : NAN;

    if (!(w >= GROUP_WEIGHT_MIN && w <= GROUP_WEIGHT_MAX)) {
        return ctl_usage(ctl, "weight '%s' is not a number from 0.01 to 1000 (a group's share of "
                              "turns in its queue; 1 is the default)", arg);
    }
    *out = w;
    return 0;
}

int
cmd_group_weight(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    double w = 1;
    int rv;

    (void)argc;
    (void)ov;
    wire_msg_init(&req);
    if ((rv = ctl_check_name(ctl, "group", argv[0])) != 0 ||
        (rv = parse_group_weight(ctl, argv[1], &w)) != 0) {
        return rv;
    }
    wire_set_cstr(&req, WK_GROUP, argv[0]);
    wire_set_num(&req, WK_WEIGHT, w);
    if ((rv = ctl_call(ctl, "group.weight", &req)) != 0) {
        return rv;
    }
    printf("set group %s's weight to %.6g\n", argv[0], w);
    return 0;
}

/* groups limit's options into rate (thousandths per second; 0: none) and burst (0: the
 * broker's default). Returns 0 or CTL_EXIT_USAGE (printed). */
static int
limit_args(const struct ctl *ctl, const struct opt_vals *ov, uint64_t *milli, uint64_t *burst)
{
    const char *rate = ov->v[CTL_OPT_RATE], *b = ov->v[CTL_OPT_BURST];
    *milli = 0;
    *burst = 0;
    if (ov->v[CTL_OPT_NONE] != NULL) {
        return rate != NULL || b != NULL
                   ? ctl_usage(ctl, "--none removes the limit: give it without --rate or --burst")
                   : 0;
    }
    if (rate == NULL) {
        return ctl_usage(ctl, "give --rate R (as 50/s, 600/m, 3600/h) or --none");
    }
    if (ratespec_parse(rate, milli) != 0) {
        return ctl_usage(ctl, "rate '%s' is not a rate from 0.001/s to 1000000/s (as 50/s, "
                              "600/m, 3600/h, 0.5/s; 0 removes the limit)", rate);
    }
    if (b != NULL && *milli == 0) {
        return ctl_usage(ctl, "--burst needs a rate above 0 (--rate 0 removes the limit)");
    }
    if (b != NULL && opt_u64("burst", b, 1, RATESPEC_BURST_MAX, burst) != 0) {
        return CTL_EXIT_USAGE;
    }
    return 0;
}

int
cmd_group_limit(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    uint64_t milli, burst, set_burst;
    int rv;

    (void)argc;
    wire_msg_init(&req);
    if ((rv = ctl_check_name(ctl, "group", argv[0])) != 0 ||
        (rv = limit_args(ctl, ov, &milli, &burst)) != 0) {
        return rv;
    }
    wire_set_cstr(&req, WK_GROUP, argv[0]);
    wire_set_num(&req, WK_RATE, (double)milli / 1000.0);
    if (burst != 0) {
        wire_set_u64(&req, WK_BURST, burst);
    }
    if ((rv = ctl_call(ctl, "group.limit", &req)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_BURST, &set_burst)) != 0) {
        return rv;
    }
    if (milli == 0) {
        printf("removed group %s's limit\n", argv[0]);
        return 0;
    }
    char text[32];
    ratespec_format(milli, text, sizeof(text));
    printf("limited group %s to %s, burst %" PRIu64 "\n", argv[0], text, set_burst);
    return 0;
}

int
cmd_flush(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    uint64_t routes, groups;
    int rv;

    (void)argc;
    (void)argv;
    (void)ov;
    wire_msg_init(&req);
    if ((rv = ctl_call(ctl, "flush", &req)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_ROUTES_RESET, &routes)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_RESET, &groups)) != 0) {
        return rv;
    }
    printf("flushed: reset %" PRIu64 " route%s to default and the statistics of %" PRIu64
           " group%s; no job was deleted\n",
           routes, plural(routes), groups, plural(groups));
    return 0;
}

int
cmd_purge(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const char *queue = ov->v[CTL_OPT_QUEUE], *group = ov->v[CTL_OPT_GROUP];
    struct wire_msg req;
    uint64_t purged;
    int rv;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if (queue == NULL && group == NULL) {
        return ctl_usage(ctl, "say what to purge: --queue Q, --group G, or both");
    }
    if (queue != NULL) {
        if ((rv = ctl_check_name(ctl, "queue", queue)) != 0) {
            return rv;
        }
        wire_set_cstr(&req, WK_QUEUE, queue);
    }
    if (group != NULL) {
        if ((rv = ctl_check_name(ctl, "group", group)) != 0) {
            return rv;
        }
        wire_set_cstr(&req, WK_GROUP, group);
    }
    if ((rv = ctl_call(ctl, "purge", &req)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_PURGED, &purged)) != 0) {
        return rv;
    }
    printf("purged %" PRIu64 " ready job%s", purged, plural(purged));
    if (group != NULL) {
        printf(" of group %s", group);
    }
    if (queue != NULL) {
        printf(" %s queue %s", group != NULL ? "in" : "from", queue);
    }
    fputc('\n', stdout);
    return 0;
}

int
cmd_ping(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    uint64_t pid, uptime_ms;
    char up[64], rtt[64];
    int rv;

    (void)argc;
    (void)argv;
    (void)ov;
    wire_msg_init(&req);
    /* Connect first: the round trip is one request on an open connection. */
    if ((rv = ctl_connect(ctl)) != 0) {
        return rv;
    }
    uint64_t t0 = clock_mono_us();
    if ((rv = ctl_call(ctl, "ping", &req)) != 0) {
        return rv;
    }
    uint64_t t1 = clock_mono_us();
    if ((rv = ctl_reply_u64(ctl, WK_PID, &pid)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_UPTIME_MS, &uptime_ms)) != 0) {
        return rv;
    }
    if (!WIRE_HAS(&ctl->rep, WK_VERSION)) {
        return ctl_bad_reply(ctl, "no 'version'");
    }
    struct sl_str version = ctl->rep.v[WK_VERSION].s;
    ctl_fmt_duration_us(up, sizeof(up),
                        uptime_ms < UINT64_MAX / 1000 ? uptime_ms * 1000 : UINT64_MAX);
    ctl_fmt_duration_us(rtt, sizeof(rtt), t1 - t0);
    printf("pong from %s: broker pid %" PRIu64 ", version ", ctl->url, pid);
    json_write_text(stdout, version.p, version.n);
    printf(", up %s, round trip %s\n", up, rtt);
    return 0;
}
