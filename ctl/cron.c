/* ctl cron add|list|remove|pause|resume: the broker's recurring jobs (README "Recurring
 * jobs"). A schedule is checked here first, with the broker's own parser (cronexpr.h), so that
 * a bad one is a usage error (exit 2) that sends nothing. */
#include "ctl.h"

#include "cronexpr.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ms since the epoch as RFC 3339 UTC, into out; "-" for none (<= 0). */
static void
fmt_instant(char *out, size_t cap, int64_t ms)
{
    if (ms <= 0) {
        snprintf(out, cap, "-");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ms % 1000 != 0 ? ".%03dZ" : "Z", (int)(ms % 1000));
}

int
cmd_cron_add(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const char *name = argv[0], *sched = argv[1], *group = argv[2], *payload = argv[3];
    const char *queue = ov->v[CTL_OPT_QUEUE], *missed = ov->v[CTL_OPT_MISSED];
    struct cronexpr ce;
    char why[256];
    struct wire_msg req;
    int rv;

    (void)argc;
    if ((rv = ctl_check_name(ctl, "cron entry", name)) != 0 ||
        (rv = ctl_check_name(ctl, "group", group)) != 0 ||
        (queue != NULL && (rv = ctl_check_name(ctl, "queue", queue)) != 0)) {
        return rv;
    }
    if (cronexpr_parse(&ce, sched, strlen(sched), why, sizeof(why)) != 0) {
        return ctl_usage(ctl, "schedule '%s': %s", sched, why);
    }
    if (missed != NULL && strcmp(missed, "once") != 0 && strcmp(missed, "skip") != 0) {
        return ctl_usage(ctl, "--missed: '%s' is not once or skip", missed);
    }
    struct sl_str pl = { payload, (uint32_t)strlen(payload) };
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_NAME, name);
    wire_set_cstr(&req, WK_SCHEDULE, sched);
    wire_set_cstr(&req, WK_GROUP, group);
    wire_set_strs(&req, WK_PAYLOADS, &pl, 1);
    if (queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, queue);
    }
    if (missed != NULL) {
        wire_set_cstr(&req, WK_MISSED, missed);
    }
    if ((rv = ctl_call(ctl, "cron.add", &req)) != 0) {
        return rv;
    }
    bool replaced = WIRE_HAS(&ctl->rep, WK_REPLACED) && ctl->rep.v[WK_REPLACED].b;
    char next[64];
    fmt_instant(next, sizeof(next),
                WIRE_HAS(&ctl->rep, WK_NEXT_MS) ? (int64_t)ctl->rep.v[WK_NEXT_MS].u : 0);
    printf("%s cron entry %s (next %s)\n", replaced ? "replaced" : "added", name, next);
    return 0;
}

static const struct stats_col cron_cols[] = {
    { "name", "NAME", STATS_SHOW_TEXT, true },
    { "schedule", "SCHEDULE", STATS_SHOW_TEXT, true },
    { "group", "GROUP", STATS_SHOW_TEXT, true },
    { "queue", "QUEUE", STATS_SHOW_ROUTE, true },
    { "paused", "STATE", STATS_SHOW_PAUSED, true },
    { "missed", "MISSED", STATS_SHOW_TEXT, true },
    { "next_ms", "NEXT", STATS_SHOW_TIME, true },
    { "last_ms", "LAST", STATS_SHOW_TIME, true },
    { "fired", "FIRED", STATS_SHOW_U64, true },
    { "refused", "REFUSED", STATS_SHOW_U64, true },
};

int
cmd_cron_list(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const msgpack_object *entries;
    struct wire_msg req;
    int rv;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if ((rv = ctl_call(ctl, "cron.list", &req)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_CRON, MSGPACK_OBJECT_ARRAY, &entries)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    return stats_print_rows(ctl, "cron", cron_cols, sizeof(cron_cols) / sizeof(cron_cols[0]),
                            entries);
}

/* remove, pause, resume: NAME, then "DONE cron entry NAME". */
static int
by_name(struct ctl *ctl, char **argv, const char *op, const char *done)
{
    struct wire_msg req;
    int rv;
    if ((rv = ctl_check_name(ctl, "cron entry", argv[0])) != 0) {
        return rv;
    }
    wire_msg_init(&req);
    wire_set_cstr(&req, WK_NAME, argv[0]);
    if ((rv = ctl_call(ctl, op, &req)) != 0) {
        return rv;
    }
    printf("%s cron entry %s\n", done, argv[0]);
    return 0;
}

int
cmd_cron_remove(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    (void)argc;
    (void)ov;
    return by_name(ctl, argv, "cron.remove", "removed");
}

int
cmd_cron_pause(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    (void)argc;
    (void)ov;
    return by_name(ctl, argv, "cron.pause", "paused");
}

int
cmd_cron_resume(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    (void)argc;
    (void)ov;
    return by_name(ctl, argv, "cron.resume", "resumed");
}
