/* ctl dead [list], ctl dead retry, ctl dead purge: the broker's dead jobs (PROTOCOL.md,
 * dead.list, dead.retry, dead.purge). A selection is job ids, or --queue and/or --group; never
 * both, since the broker ignores the filters when given ids. */
#include "ctl.h"

#include "table.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEAD_LIST_MAX 10000u   /* dead.list's max */
#define PAYLOAD_PREVIEW 40u    /* bytes of a payload shown in the table */
#define ERROR_PREVIEW 48u      /* bytes of an error's first line shown in the table */

static const char *
plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

/* --queue and --group into req, checked. */
static int
filters(const struct ctl *ctl, const struct opt_vals *ov, struct wire_msg *req)
{
    const char *queue = ov->v[CTL_OPT_QUEUE], *group = ov->v[CTL_OPT_GROUP];
    int rv;

    if (queue != NULL) {
        if ((rv = ctl_check_name(ctl, "queue", queue)) != 0) {
            return rv;
        }
        wire_set_cstr(req, WK_QUEUE, queue);
    }
    if (group != NULL) {
        if ((rv = ctl_check_name(ctl, "group", group)) != 0) {
            return rv;
        }
        wire_set_cstr(req, WK_GROUP, group);
    }
    return 0;
}

static uint64_t
now_epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Field key of job i when it has type want (or, for blobs, bin or str). NULL, printed, when
 * not. */
static const msgpack_object *
job_field(const struct ctl *ctl, uint32_t i, const msgpack_object *job, const char *key,
          msgpack_object_type want)
{
    const msgpack_object *o = ctl_map_get(job, key);

    if (o != NULL && (o->type == want ||
                      (want == MSGPACK_OBJECT_BIN && o->type == MSGPACK_OBJECT_STR))) {
        return o;
    }
    ctl_bad_reply(ctl, "jobs[%" PRIu32 "]%s '%s'%s", i, o == NULL ? " has no" : ".", key,
                  o == NULL ? "" : " has the wrong type");
    return NULL;
}

/* The error cell: its class and the first line of its text, cut at ERROR_PREVIEW bytes. */
static void
add_error(struct table *t, const msgpack_object *err)
{
    const msgpack_object *cls = err != NULL && err->type == MSGPACK_OBJECT_MAP
                                    ? ctl_map_get(err, "class") : NULL;
    const msgpack_object *text = cls != NULL ? ctl_map_get(err, "text") : NULL;
    if (cls == NULL || cls->type != MSGPACK_OBJECT_STR) {
        table_cell(t, "-", 1);
        return;
    }
    char buf[ERROR_PREVIEW + 64];
    int n = snprintf(buf, sizeof(buf), "%.*s", (int)cls->via.str.size, cls->via.str.ptr);
    if (text != NULL && text->type == MSGPACK_OBJECT_STR && text->via.str.size > 0) {
        const char *p = text->via.str.ptr;
        uint32_t len = text->via.str.size, k = 0;
        while (k < len && p[k] != '\n' && k < ERROR_PREVIEW) {
            k++;
        }
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": ");
        for (uint32_t i = 0; i < k; i++) {
            buf[n++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.';
        }
        if (k < len) {
            memcpy(buf + n, "...", 3);
            n += 3;
        }
    }
    table_cell(t, buf, (size_t)n);
}

/* One row of the dead-job table. Returns 0 or CTL_EXIT_FAILED (printed). */
static int
add_job(const struct ctl *ctl, struct table *t, uint32_t i, const msgpack_object *job,
        uint64_t now_ms)
{
    const msgpack_object *id, *group, *queue, *att, *max, *enq, *payload;
    char age[64];

    if (job->type != MSGPACK_OBJECT_MAP) {
        return ctl_bad_reply(ctl, "jobs[%" PRIu32 "] is not a map", i);
    }
    if ((id = job_field(ctl, i, job, "id", MSGPACK_OBJECT_POSITIVE_INTEGER)) == NULL ||
        (group = job_field(ctl, i, job, "group", MSGPACK_OBJECT_STR)) == NULL ||
        (queue = job_field(ctl, i, job, "queue", MSGPACK_OBJECT_STR)) == NULL ||
        (att = job_field(ctl, i, job, "attempts", MSGPACK_OBJECT_POSITIVE_INTEGER)) == NULL ||
        (max = job_field(ctl, i, job, "max_attempts", MSGPACK_OBJECT_POSITIVE_INTEGER)) == NULL ||
        (enq = job_field(ctl, i, job, "enq_ms", MSGPACK_OBJECT_POSITIVE_INTEGER)) == NULL ||
        (payload = job_field(ctl, i, job, "payload", MSGPACK_OBJECT_BIN)) == NULL) {
        return CTL_EXIT_FAILED;
    }
    /* str and bin share their layout in msgpack_object (ptr, size). */
    const char *p = payload->type == MSGPACK_OBJECT_BIN ? payload->via.bin.ptr
                                                        : payload->via.str.ptr;
    uint32_t n = payload->type == MSGPACK_OBJECT_BIN ? payload->via.bin.size
                                                     : payload->via.str.size;
    uint64_t ms = now_ms > enq->via.u64 ? now_ms - enq->via.u64 : 0;
    ctl_fmt_duration_us(age, sizeof(age), ms < UINT64_MAX / 1000 ? ms * 1000 : UINT64_MAX);

    table_cellf(t, "%" PRIu64, id->via.u64);
    table_cell(t, group->via.str.ptr, group->via.str.size);
    table_cell(t, queue->via.str.ptr, queue->via.str.size);
    table_cellf(t, "%" PRIu64 "/%" PRIu64, att->via.u64, max->via.u64);
    table_cell(t, age, strlen(age));
    add_error(t, ctl_map_get(job, "error"));
    if (n > PAYLOAD_PREVIEW) {
        char buf[PAYLOAD_PREVIEW + 4];
        memcpy(buf, p, PAYLOAD_PREVIEW);
        memcpy(buf + PAYLOAD_PREVIEW, "...", 3);
        table_cell(t, buf, PAYLOAD_PREVIEW + 3);
    } else {
        table_cell(t, p, n);
    }
    return 0;
}

int
cmd_dead_list(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    const msgpack_object *jobs;
    struct wire_msg req;
    struct table t;
    uint64_t total, max;
    int rv;

    (void)argc;
    (void)argv;
    wire_msg_init(&req);
    if ((rv = filters(ctl, ov, &req)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_MAX] != NULL) {
        if (opt_u64("max", ov->v[CTL_OPT_MAX], 1, DEAD_LIST_MAX, &max) != 0) {
            return CTL_EXIT_USAGE;
        }
        wire_set_u64(&req, WK_MAX, max);
    }
    if ((rv = ctl_call(ctl, "dead.list", &req)) != 0 ||
        (rv = ctl_reply_obj(ctl, WK_JOBS, MSGPACK_OBJECT_ARRAY, &jobs)) != 0 ||
        (rv = ctl_reply_u64(ctl, WK_TOTAL, &total)) != 0) {
        return rv;
    }
    if (ov->v[CTL_OPT_JSON] != NULL) {
        return ctl_print_reply_json(ctl);
    }
    table_init(&t);
    table_col(&t, "ID", true);
    table_col(&t, "GROUP", false);
    table_col(&t, "QUEUE", false);
    table_col(&t, "ATTEMPTS", true);
    table_col(&t, "AGE", true);
    table_col(&t, "ERROR", false);
    table_col(&t, "PAYLOAD", false);
    uint64_t now = now_epoch_ms();
    for (uint32_t i = 0; i < jobs->via.array.size && rv == 0; i++) {
        rv = add_job(ctl, &t, i, &jobs->via.array.ptr[i], now);
    }
    if (rv != 0) {
        goto out;
    }
    uint32_t shown = jobs->via.array.size;
    if (shown == 0) {
        printf("dead jobs: none\n");
        goto out;
    }
    printf("dead jobs (%" PRIu32 " of %" PRIu64 "):\n", shown, total);
    if (table_print(&t, stdout) != 0) {
        fprintf(stderr, "ctl: out of memory formatting dead jobs\n");
        rv = CTL_EXIT_FAILED;
        goto out;
    }
    if (total > shown) {
        printf("%" PRIu64 " more not shown (--max N lists up to %u)\n", total - shown,
               DEAD_LIST_MAX);
    }
out:
    table_fini(&t);
    return rv;
}

/* dead.retry or dead.purge of ids (argv) or of --queue/--group. */
static int
dead_act(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov, bool purge)
{
    const char *op = purge ? "dead.purge" : "dead.retry";
    bool filtered = ov->v[CTL_OPT_QUEUE] != NULL || ov->v[CTL_OPT_GROUP] != NULL;
    struct wire_msg req;
    uint64_t *ids = NULL, n;
    int rv;

    wire_msg_init(&req);
    if (argc == 0 && !filtered) {
        return ctl_usage(ctl, "say which dead jobs: job IDs, or --queue Q and/or --group G");
    }
    if (argc > 0 && filtered) {
        return ctl_usage(ctl, "give job IDs or --queue/--group, not both");
    }
    if ((rv = filters(ctl, ov, &req)) != 0) {
        return rv;
    }
    if (argc > 0) {
        if ((ids = calloc((size_t)argc, sizeof(*ids))) == NULL) {
            fprintf(stderr, "ctl: out of memory\n");
            return CTL_EXIT_FAILED;
        }
        for (int i = 0; i < argc; i++) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(argv[i], &end, 10);
            if (argv[i][0] < '0' || argv[i][0] > '9' || *end != '\0' || errno != 0) {
                rv = ctl_usage(ctl, "'%s' is not a job id (a whole number)", argv[i]);
                goto out;
            }
            ids[i] = v;
        }
        wire_set_u64s(&req, WK_IDS, ids, (uint32_t)argc);
    }
    if ((rv = ctl_call(ctl, op, &req)) != 0 ||
        (rv = ctl_reply_u64(ctl, purge ? WK_PURGED : WK_N, &n)) != 0) {
        goto out;
    }
    printf("%s %" PRIu64 " dead job%s", purge ? "purged" : "retried", n, plural(n));
    if (argc > 0 && n < (uint64_t)argc) {
        uint64_t skipped = (uint64_t)argc - n;
        printf(" (%" PRIu64 " id%s named no dead job)", skipped, plural(skipped));
    }
    fputc('\n', stdout);
out:
    free(ids);
    return rv;
}

int
cmd_dead_retry(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    return dead_act(ctl, argc, argv, ov, false);
}

int
cmd_dead_purge(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    return dead_act(ctl, argc, argv, ov, true);
}
