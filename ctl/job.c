/* ctl job ID, ctl job delete ID, ctl peek: looking at jobs (PROTOCOL.md, job.info, job.peek,
 * job.delete). Times are shown in UTC (RFC 3339) with how long ago or ahead they are. */
#include "ctl.h"

#include "table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PEEK_MAX 1000u
#define ID_MAX 9007199254740991ull /* ids as JSON numbers stay exact */
#define PREVIEW_ROW 40u            /* payload bytes in a table row */

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "2026-12-06T02:10:00.123Z (3.2 s ago)" or "(in 5m 06s)". */
static void
fmt_when(char *out, size_t cap, uint64_t ms, uint64_t now)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char rel[64];
    gmtime_r(&s, &tm);
    uint64_t d = ms > now ? ms - now : now - ms;
    ctl_fmt_duration_us(rel, sizeof(rel), d < UINT64_MAX / 1000 ? d * 1000 : UINT64_MAX);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ (%s%s%s)", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(ms % 1000), ms > now ? "in " : "", rel, ms > now ? "" : " ago");
}

/* The str or bin at o as (p, n); false when o is neither. */
static bool
bytes_of(const msgpack_object *o, const char **p, uint32_t *n)
{
    if (o == NULL) {
        return false;
    }
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr;
        *n = o->via.str.size;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr;
        *n = o->via.bin.size;
        return true;
    }
    return false;
}

static uint64_t
u64_of(const msgpack_object *job, const char *key)
{
    const msgpack_object *o = ctl_map_get(job, key);
    return o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static void
str_of(const msgpack_object *job, const char *key, const char **p, uint32_t *n)
{
    if (!bytes_of(ctl_map_get(job, key), p, n)) {
        *p = "-";
        *n = 1;
    }
}

/* Writes n bytes of p printably: control bytes and non-ASCII as \xNN. */
static void
put_printable(FILE *f, const char *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f) {
            fputc(c, f);
        } else {
            fprintf(f, "\\x%02x", c);
        }
    }
}

/* The error's text with each line after the first indented under the value column. */
static void
put_error_text(const char *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n') {
            fputs("\n               ", stdout);
        } else if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
            fputc(c, stdout);
        } else {
            printf("\\x%02x", c);
        }
    }
}

static int
print_job(const struct ctl *ctl, const msgpack_object *job)
{
    const char *state, *group, *queue, *worker, *payload;
    uint32_t nstate, ngroup, nqueue, nworker, npayload;
    uint64_t now = now_ms();
    char when[128];

    if (job->type != MSGPACK_OBJECT_MAP || u64_of(job, "id") == 0) {
        return ctl_bad_reply(ctl, "'job' is not a job");
    }
    str_of(job, "state", &state, &nstate);
    str_of(job, "group", &group, &ngroup);
    str_of(job, "queue", &queue, &nqueue);
    printf("job %" PRIu64 "\n", u64_of(job, "id"));
    printf("  state        %.*s\n", (int)nstate, state);
    printf("  group        %.*s\n", (int)ngroup, group);
    printf("  queue        %.*s\n", (int)nqueue, queue);
    printf("  attempts     %" PRIu64 " of %" PRIu64 " (crashes %" PRIu64 ")\n",
           u64_of(job, "attempts"), u64_of(job, "max_attempts"), u64_of(job, "crashes"));
    fmt_when(when, sizeof(when), u64_of(job, "enq_ms"), now);
    printf("  pushed       %s\n", when);
    if (ctl_map_get(job, "due_ms") != NULL) {
        fmt_when(when, sizeof(when), u64_of(job, "due_ms"), now);
        printf("  %-12s %s\n", u64_of(job, "attempts") > 0 ? "next attempt" : "ready at", when);
    }
    if (bytes_of(ctl_map_get(job, "worker"), &worker, &nworker)) {
        fmt_when(when, sizeof(when), u64_of(job, "ttr_deadline_ms"), now);
        printf("  worker       %.*s (TTR ends %s)\n", (int)nworker, worker, when);
    }
    printf("  ttr          %" PRIu64 " ms\n", u64_of(job, "ttr_ms"));
    const msgpack_object *err = ctl_map_get(job, "error");
    if (err != NULL && err->type == MSGPACK_OBJECT_MAP) {
        const char *cls, *text;
        uint32_t ncls, ntext;
        str_of(err, "class", &cls, &ncls);
        str_of(err, "text", &text, &ntext);
        fmt_when(when, sizeof(when), u64_of(err, "at_ms"), now);
        printf("  last error   %.*s, %s\n", (int)ncls, cls, when);
        if (ntext > 0) {
            fputs("               ", stdout);
            put_error_text(text, ntext);
            fputc('\n', stdout);
        }
    } else {
        printf("  last error   none\n");
    }
    if (!bytes_of(ctl_map_get(job, "payload"), &payload, &npayload)) {
        payload = "";
        npayload = 0;
    }
    const msgpack_object *cut = ctl_map_get(job, "truncated");
    printf("  payload      %" PRIu64 " bytes: ", u64_of(job, "payload_len"));
    put_printable(stdout, payload, npayload);
    printf("%s\n", cut != NULL && cut->type == MSGPACK_OBJECT_BOOLEAN && cut->via.boolean
                       ? "..." : "");
    return 0;
}

static int
job_id(const struct ctl *ctl, const char *arg, struct wire_msg *req)
{
    uint64_t id;
    (void)ctl;
    if (opt_u64("job ID", arg, 1, ID_MAX, &id) != 0) {
        return CTL_EXIT_USAGE;
    }
    wire_set_u64(req, WK_ID, id);
    return 0;
}

int
cmd_job_info(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    const msgpack_object *job;
    int rv;

    (void)argc;
    wire_msg_init(&req);
    if ((rv = job_id(ctl, argv[0], &req)) != 0 || (rv = ctl_call(ctl, "job.info", &req)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_JOB, MSGPACK_OBJECT_MAP, &job)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    return print_job(ctl, job);
}

int
cmd_job_delete(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    struct wire_msg req;
    int rv;

    (void)argc;
    (void)ov;
    wire_msg_init(&req);
    if ((rv = job_id(ctl, argv[0], &req)) != 0 ||
        (rv = ctl_call(ctl, "job.delete", &req)) != 0) {
        return rv;
    }
    struct sl_str was = ctl->rep.v[WK_STATE].s;
    printf("deleted job %s (it was %.*s)\n", argv[0], (int)was.n, was.p);
    return 0;
}

/* One row of the peek table. */
static void
peek_row(struct table *t, const msgpack_object *job, uint64_t now)
{
    const char *state, *group, *queue, *payload, *cls = "-";
    uint32_t nstate, ngroup, nqueue, npayload, ncls = 1;
    char age[64], due[64] = "-";

    str_of(job, "state", &state, &nstate);
    str_of(job, "group", &group, &ngroup);
    str_of(job, "queue", &queue, &nqueue);
    uint64_t enq = u64_of(job, "enq_ms");
    uint64_t ms = now > enq ? now - enq : 0;
    ctl_fmt_duration_us(age, sizeof(age), ms < UINT64_MAX / 1000 ? ms * 1000 : UINT64_MAX);
    const char *dk = ctl_map_get(job, "due_ms") != NULL ? "due_ms" : "ttr_deadline_ms";
    if (ctl_map_get(job, dk) != NULL) {
        uint64_t at = u64_of(job, dk);
        uint64_t d = at > now ? at - now : 0;
        ctl_fmt_duration_us(due, sizeof(due), d < UINT64_MAX / 1000 ? d * 1000 : UINT64_MAX);
    }
    const msgpack_object *err = ctl_map_get(job, "error");
    if (err != NULL && err->type == MSGPACK_OBJECT_MAP) {
        str_of(err, "class", &cls, &ncls);
    }
    table_cellf(t, "%" PRIu64, u64_of(job, "id"));
    table_cell(t, state, nstate);
    table_cell(t, group, ngroup);
    table_cell(t, queue, nqueue);
    table_cellf(t, "%" PRIu64 "/%" PRIu64, u64_of(job, "attempts"), u64_of(job, "max_attempts"));
    table_cell(t, age, strlen(age));
    table_cell(t, due, strlen(due));
    table_cell(t, cls, ncls);
    if (!bytes_of(ctl_map_get(job, "payload"), &payload, &npayload)) {
        payload = "";
        npayload = 0;
    }
    char buf[PREVIEW_ROW + 4];
    uint32_t n = npayload;
    if (n > PREVIEW_ROW) {
        n = PREVIEW_ROW;
    }
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)payload[i];
        buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '.';
    }
    if (u64_of(job, "payload_len") > n) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    table_cell(t, buf, n);
}

int
cmd_peek(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const char *queue = ov->v[CTL_OPT_QUEUE], *group = ov->v[CTL_OPT_GROUP];
    const char *state = ov->v[CTL_OPT_STATE];
    const msgpack_object *jobs;
    struct wire_msg req;
    uint64_t total, max;
    int rv;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if (queue == NULL && group == NULL) {
        return ctl_usage(ctl, "say whose jobs: --queue Q and/or --group G");
    }
    if ((queue != NULL && (rv = ctl_check_name(ctl, "queue", queue)) != 0) ||
        (group != NULL && (rv = ctl_check_name(ctl, "group", group)) != 0)) {
        return rv;
    }
    if (queue != NULL) {
        wire_set_cstr(&req, WK_QUEUE, queue);
    }
    if (group != NULL) {
        wire_set_cstr(&req, WK_GROUP, group);
    }
    if (state != NULL) {
        if (strcmp(state, "ready") != 0 && strcmp(state, "reserved") != 0 &&
            strcmp(state, "delayed") != 0 && strcmp(state, "dead") != 0) {
            return ctl_usage(ctl, "--state is ready, reserved, delayed or dead, not '%s'", state);
        }
        wire_set_cstr(&req, WK_STATE, state);
    }
    if (ov->v[CTL_OPT_MAX] != NULL) {
        if (opt_u64("max", ov->v[CTL_OPT_MAX], 1, PEEK_MAX, &max) != 0) {
            return CTL_EXIT_USAGE;
        }
        wire_set_u64(&req, WK_MAX, max);
    }
    if ((rv = ctl_call(ctl, "job.peek", &req)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_JOBS, MSGPACK_OBJECT_ARRAY, &jobs)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_TOTAL, &total)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    uint32_t shown = jobs->via.array.size;
    const char *st = state != NULL ? state : "ready";
    if (shown == 0) {
        printf("%s jobs: none\n", st);
        return 0;
    }
    struct table t;
    table_init(&t);
    static const char *const cols[] = { "ID", "STATE", "GROUP", "QUEUE", "ATTEMPTS", "AGE",
                                        "DUE IN", "ERROR", "PAYLOAD" };
    static const bool right[] = { true, false, false, false, true, true, true, false, false };
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        table_col(&t, cols[i], right[i]);
    }
    uint64_t now = now_ms();
    for (uint32_t i = 0; i < shown; i++) {
        if (jobs->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
            peek_row(&t, &jobs->via.array.ptr[i], now);
        }
    }
    printf("%s jobs (%" PRIu32 " of %" PRIu64 "):\n", st, shown, total);
    rv = 0;
    if (table_print(&t, stdout) != 0) {
        fprintf(stderr, "ctl: out of memory formatting jobs\n");
        rv = CTL_EXIT_FAILED;
    }
    table_fini(&t);
    return rv;
}
