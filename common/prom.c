#include "prom.h"

#include "err.h"
#include "wire.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Where a metric's samples come from: the "broker" map (one sample), or one sample per entry
 * of an array of maps, labelled by the entry's name. */
enum src { SRC_BROKER, SRC_QUEUE, SRC_GROUP, SRC_WORKER };

/* How a stats field becomes a sample value. */
enum conv {
    CONV_U64,     /* a non-negative integer as it is */
    CONV_BOOL,    /* true: 1, false: 0 */
    CONV_BUSY,    /* a worker's state: 0 for idle, 1 for any other */
    CONV_MS_S,    /* a float or integer of ms, as seconds; nil: no sample */
    CONV_NUM,     /* a float or integer as it is; nil: no sample */
};

struct metric {
    const char *name;
    const char *type;   /* "gauge" or "counter" */
    enum src src;
    const char *field;
    enum conv conv;
    const char *help;
};

/* The plain metrics, in the order they are written. The special ones (histograms, states,
 * info) follow them, written by the functions below. */
static const struct metric metrics[] = {
    { "sluice_broker_uptime_seconds", "gauge", SRC_BROKER, "uptime_s", CONV_U64,
      "Seconds since the broker started." },
    { "sluice_broker_jobs", "gauge", SRC_BROKER, "jobs", CONV_U64,
      "Jobs the broker holds, in any state." },
    { "sluice_broker_payload_bytes", "gauge", SRC_BROKER, "bytes", CONV_U64,
      "Payload bytes of the jobs held." },
    { "sluice_broker_memory_bytes", "gauge", SRC_BROKER, "mem_bytes", CONV_U64,
      "Bytes of the storage holding the jobs." },
    { "sluice_broker_max_jobs", "gauge", SRC_BROKER, "max_jobs", CONV_U64,
      "Jobs held at most (--max-jobs); beyond, pushes are refused." },
    { "sluice_broker_max_bytes", "gauge", SRC_BROKER, "max_bytes", CONV_U64,
      "Payload bytes held at most (--max-bytes)." },
    { "sluice_jobs_reserved", "gauge", SRC_BROKER, "reserved", CONV_U64,
      "Jobs reserved by workers now." },
    { "sluice_reserves_parked", "gauge", SRC_BROKER, "waiters", CONV_U64,
      "Reserve requests parked, waiting for a job." },
    { "sluice_reserves_total", "counter", SRC_BROKER, "reserves", CONV_U64,
      "Reserve requests answered." },
    { "sluice_reserves_empty_total", "counter", SRC_BROKER, "reserves_empty", CONV_U64,
      "Reserve requests answered with no job." },
    { "sluice_jobs_dispatched_total", "counter", SRC_BROKER, "dispatched", CONV_U64,
      "Jobs handed to workers by reserve." },
    { "sluice_jobs_no_worker_total", "counter", SRC_BROKER, "no_worker", CONV_U64,
      "Pushed jobs that no waiting worker took at once." },
    { "sluice_broker_token_required", "gauge", SRC_BROKER, "auth", CONV_BOOL,
      "1 when every request (and scrape) must carry the broker's token." },
    { "sluice_requests_unauthorized_total", "counter", SRC_BROKER, "unauthorized", CONV_U64,
      "Requests and scrapes refused for a missing or wrong token." },
    { "sluice_connections", "gauge", SRC_BROKER, "conns", CONV_U64,
      "Client connections open." },
    { "sluice_connections_dropped_total", "counter", SRC_BROKER, "conns_dropped", CONV_U64,
      "Connections closed for not reading their replies." },
    { "sluice_connections_refused_total", "counter", SRC_BROKER, "conns_refused", CONV_U64,
      "Connections closed as they came: the broker had as many open as it serves." },
    { "sluice_dedup_clients", "gauge", SRC_BROKER, "dedup_clients", CONV_U64,
      "Clients whose push keys the broker remembers." },
    { "sluice_unique_keys", "gauge", SRC_BROKER, "unique_keys", CONV_U64,
      "Unique keys the broker remembers (held, or no longer held and not yet dropped)." },
    { "sluice_cron_entries", "gauge", SRC_BROKER, "cron", CONV_U64,
      "Recurring job entries the broker holds." },
    { "sluice_cron_fired_total", "counter", SRC_BROKER, "cron_fired", CONV_U64,
      "Instants of recurring jobs fired, refused pushes included." },
    { "sluice_cron_refused_total", "counter", SRC_BROKER, "cron_refused", CONV_U64,
      "Instants of recurring jobs whose push was refused (a limit, a queue gone)." },
    { "sluice_journal_bytes", "gauge", SRC_BROKER, "journal_bytes", CONV_U64,
      "Size of the journal's segment files." },
    { "sluice_journal_segments", "gauge", SRC_BROKER, "journal_segments", CONV_U64,
      "Journal segment files." },
    { "sluice_journal_fsyncs_total", "counter", SRC_BROKER, "journal_fsyncs", CONV_U64,
      "Journal syncs to disk." },
    { "sluice_journal_ok", "gauge", SRC_BROKER, "journal_ok", CONV_BOOL,
      "1 when the journal can be written, 0 while it cannot (pushes are refused)." },
    { "sluice_db_owed_rows", "gauge", SRC_BROKER, "db_owed", CONV_U64,
      "Rows waiting to be written to the MySQL database." },

    { "sluice_queue_ready", "gauge", SRC_QUEUE, "ready", CONV_U64,
      "Jobs ready in the queue: its backlog." },
    { "sluice_queue_reserved", "gauge", SRC_QUEUE, "reserved", CONV_U64,
      "Jobs of the queue reserved by workers." },
    { "sluice_queue_delayed", "gauge", SRC_QUEUE, "delayed", CONV_U64,
      "Jobs of the queue waiting for their delay." },
    { "sluice_queue_dead", "gauge", SRC_QUEUE, "dead", CONV_U64, "Dead jobs kept in the queue." },
    { "sluice_queue_priority", "gauge", SRC_QUEUE, "priority", CONV_U64,
      "The queue's priority (lower is served first)." },
    { "sluice_queue_weight", "gauge", SRC_QUEUE, "weight", CONV_U64,
      "The queue's share among queues of equal priority." },
    { "sluice_queue_max_inflight", "gauge", SRC_QUEUE, "max_inflight", CONV_U64,
      "The queue's cap on reserved jobs (0: none)." },
    { "sluice_queue_retry_base_seconds", "gauge", SRC_QUEUE, "retry_base_ms", CONV_MS_S,
      "The wait before a failed job's first retry, doubled for each retry after (0: at once)." },
    { "sluice_queue_retry_max_seconds", "gauge", SRC_QUEUE, "retry_max_ms", CONV_MS_S,
      "The longest wait before a retry." },
    { "sluice_queue_paused", "gauge", SRC_QUEUE, "paused", CONV_BOOL,
      "1 when the queue is paused." },
    { "sluice_queue_jobs_pushed_total", "counter", SRC_QUEUE, "pushed", CONV_U64,
      "Jobs pushed to the queue (reset by flush)." },
    { "sluice_queue_jobs_done_total", "counter", SRC_QUEUE, "done", CONV_U64,
      "Jobs of the queue acknowledged (reset by flush)." },
    { "sluice_queue_jobs_failed_total", "counter", SRC_QUEUE, "failed", CONV_U64,
      "Failed attempts of the queue's jobs (reset by flush)." },
    { "sluice_queue_jobs_dispatched_total", "counter", SRC_QUEUE, "dispatched", CONV_U64,
      "Jobs of the queue handed to workers." },
    { "sluice_queue_groups_ready", "gauge", SRC_QUEUE, "groups_ready", CONV_U64,
      "Groups with ready jobs in the queue: those taking turns when its order is groups." },

    { "sluice_group_backlog", "gauge", SRC_GROUP, "count", CONV_U64,
      "The group's jobs ready, reserved or delayed: what the router balances on." },
    { "sluice_group_ready", "gauge", SRC_GROUP, "ready", CONV_U64, "The group's ready jobs." },
    { "sluice_group_reserved", "gauge", SRC_GROUP, "reserved", CONV_U64,
      "The group's reserved jobs." },
    { "sluice_group_delayed", "gauge", SRC_GROUP, "delayed", CONV_U64,
      "The group's delayed jobs." },
    { "sluice_group_dead", "gauge", SRC_GROUP, "dead", CONV_U64, "The group's dead jobs." },
    { "sluice_group_jobs_pushed_total", "counter", SRC_GROUP, "pushed_all", CONV_U64,
      "Jobs of the group pushed." },
    { "sluice_group_jobs_done_total", "counter", SRC_GROUP, "done_all", CONV_U64,
      "Jobs of the group acknowledged." },
    { "sluice_group_jobs_failed_total", "counter", SRC_GROUP, "failed_all", CONV_U64,
      "Failed attempts of the group's jobs." },
    { "sluice_group_jobs_dispatched_total", "counter", SRC_GROUP, "dispatched", CONV_U64,
      "Jobs of the group handed to workers." },
    { "sluice_group_wait_p50_seconds", "gauge", SRC_GROUP, "wait_p50_ms", CONV_MS_S,
      "Median wait from ready to dispatch of the group's jobs dispatched in the last 30-60 s." },
    { "sluice_group_wait_p99_seconds", "gauge", SRC_GROUP, "wait_p99_ms", CONV_MS_S,
      "99th percentile wait of the group's jobs dispatched in the last 30-60 s." },
    { "sluice_group_weight", "gauge", SRC_GROUP, "weight", CONV_NUM,
      "The group's weight: its share of turns in its queue, relative to the other groups (1 "
      "unless set)." },
    { "sluice_group_share", "gauge", SRC_GROUP, "share", CONV_NUM,
      "Fraction (0 to 1) of the jobs dispatched in the last 30-60 s that were the group's; no "
      "sample when none were dispatched." },
    { "sluice_group_oldest_ready_seconds", "gauge", SRC_GROUP, "oldest_ready_ms", CONV_MS_S,
      "How long the group's oldest ready job has waited; no sample when it has none ready." },
    { "sluice_group_rate_limit", "gauge", SRC_GROUP, "rate", CONV_NUM,
      "Jobs per second the group may start (ctl groups limit); no sample without a limit." },
    { "sluice_group_rate_burst", "gauge", SRC_GROUP, "burst", CONV_NUM,
      "Jobs the group may start at once after a pause; no sample without a limit." },
    { "sluice_group_rate_held", "gauge", SRC_GROUP, "held", CONV_BOOL,
      "1 while the group's start rate is spent: its ready jobs wait for its next token." },
    { "sluice_group_rate_holds_total", "counter", SRC_GROUP, "holds", CONV_U64,
      "Times the group was held back by its start rate since it got a limit." },

    { "sluice_worker_busy", "gauge", SRC_WORKER, "state", CONV_BUSY,
      "1 while the worker is not idle (busy or draining), 0 when idle." },
    { "sluice_worker_rss_bytes", "gauge", SRC_WORKER, "rss_bytes", CONV_U64,
      "The worker's resident memory, as it last reported." },
    { "sluice_worker_pid", "gauge", SRC_WORKER, "pid", CONV_U64,
      "The worker's process id, as it reported (0: unknown)." },
    { "sluice_worker_reserved_jobs", "gauge", SRC_WORKER, "reserved", CONV_U64,
      "Jobs the worker holds." },
    { "sluice_worker_jobs_done_total", "counter", SRC_WORKER, "jobs", CONV_U64,
      "Jobs the worker acknowledged on its current connection." },
    { "sluice_worker_uptime_seconds", "gauge", SRC_WORKER, "uptime_s", CONV_U64,
      "Seconds since the worker registered on its current connection." },
};

static const char *const src_array[] = { NULL, "queues", "groups", "workers" };
static const char *const src_label[] = { NULL, "queue", "group", "worker" };
static const char *const src_name[] = { NULL, "name", "name", "id" };

static const msgpack_object *
get(const msgpack_object *map, const char *key)
{
    return wire_obj_get(map, key);
}

static const msgpack_object *
get_type(const msgpack_object *map, const char *key, msgpack_object_type t)
{
    const msgpack_object *o = get(map, key);
    return o != NULL && o->type == t ? o : NULL;
}

void
prom_label_value(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '\\':
            fputs("\\\\", out);
            break;
        case '"':
            fputs("\\\"", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        default:
            /* Names are ASCII; a reported state might not be: the text must stay UTF-8. */
            fputc(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?', out);
        }
    }
}

static void
header(FILE *out, const char *name, const char *type, const char *help)
{
    /* Help texts are ours: no backslash or newline to escape. */
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A double as Prometheus reads it; integral values print without a fraction. */
static void
put_double(FILE *out, double v)
{
    fprintf(out, "%.9g", v);
}

/* Whether o gives a value under conv; *v is it. */
static bool
value(const msgpack_object *o, enum conv conv, double *v, uint64_t *u, bool *is_u)
{
    *is_u = false;
    if (o == NULL) {
        return false;
    }
    switch (conv) {
    case CONV_U64:
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            return false;
        }
        *u = o->via.u64;
        *is_u = true;
        return true;
    case CONV_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN) {
            return false;
        }
        *u = o->via.boolean;
        *is_u = true;
        return true;
    case CONV_BUSY:
        if (o->type != MSGPACK_OBJECT_STR) {
            return false;
        }
        *u = !(o->via.str.size == 4 && memcmp(o->via.str.ptr, "idle", 4) == 0);
        *is_u = true;
        return true;
    case CONV_MS_S:
    case CONV_NUM:
        if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
            *v = o->via.f64;
        } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *v = (double)o->via.u64;
        } else {
            return false;
        }
        *v = conv == CONV_MS_S ? *v / 1000.0 : *v;
        return true;
    }
    return false;
}

static void
sample(FILE *out, const char *name, const char *label, const msgpack_object *lv, double v,
       uint64_t u, bool is_u)
{
    fputs(name, out);
    if (label != NULL) {
        fprintf(out, "{%s=\"", label);
        prom_label_value(out, lv->via.str.ptr, lv->via.str.size);
        fputs("\"}", out);
    }
    fputc(' ', out);
    if (is_u) {
        fprintf(out, "%" PRIu64, u);
    } else {
        put_double(out, v);
    }
    fputc('\n', out);
}

static void
write_metric(FILE *out, const msgpack_object *stats, const struct metric *m)
{
    double v = 0;
    uint64_t u = 0;
    bool is_u;

    header(out, m->name, m->type, m->help);
    if (m->src == SRC_BROKER) {
        if (value(get(get(stats, "broker"), m->field), m->conv, &v, &u, &is_u)) {
            sample(out, m->name, NULL, NULL, v, u, is_u);
        }
        return;
    }
    const msgpack_object *a = get_type(stats, src_array[m->src], MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; a != NULL && i < a->via.array.size; i++) {
        const msgpack_object *e = &a->via.array.ptr[i];
        const msgpack_object *lv = get_type(e, src_name[m->src], MSGPACK_OBJECT_STR);
        if (lv != NULL && value(get(e, m->field), m->conv, &v, &u, &is_u)) {
            sample(out, m->name, src_label[m->src], lv, v, u, is_u);
        }
    }
}

/* A bound in ms as seconds, exactly: 5 -> 0.005, 1000 -> 1, 60000 -> 60. */
static void
put_ms_as_s(FILE *out, uint64_t ms)
{
    if (ms % 1000u == 0) {
        fprintf(out, "%" PRIu64, ms / 1000u);
        return;
    }
    char frac[8];
    snprintf(frac, sizeof(frac), "%03u", (unsigned)(ms % 1000u));
    for (size_t n = strlen(frac); n > 0 && frac[n - 1] == '0'; n--) {
        frac[n - 1] = '\0';
    }
    fprintf(out, "%" PRIu64 ".%s", ms / 1000u, frac);
}

/* The wait histogram of every queue: buckets cumulative over the broker's bounds, +Inf last. */
static void
write_wait_hist(FILE *out, const msgpack_object *stats)
{
    static const char name[] = "sluice_queue_wait_seconds";
    const msgpack_object *bounds =
        get_type(get(stats, "broker"), "wait_bounds_ms", MSGPACK_OBJECT_ARRAY);
    const msgpack_object *qs = get_type(stats, "queues", MSGPACK_OBJECT_ARRAY);

    header(out, name, "histogram",
           "Wait of the queue's dispatched jobs, from ready (push, retry, delay due, hand-back) "
           "to dispatch by reserve.");
    if (bounds == NULL || qs == NULL) {
        return;
    }
    for (uint32_t i = 0; i < bounds->via.array.size; i++) {
        if (bounds->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            return;
        }
    }
    for (uint32_t qi = 0; qi < qs->via.array.size; qi++) {
        const msgpack_object *q = &qs->via.array.ptr[qi];
        const msgpack_object *qn = get_type(q, "name", MSGPACK_OBJECT_STR);
        const msgpack_object *b = get_type(q, "wait_buckets", MSGPACK_OBJECT_ARRAY);
        const msgpack_object *sum = get_type(q, "wait_sum_us", MSGPACK_OBJECT_POSITIVE_INTEGER);
        const msgpack_object *cnt = get_type(q, "wait_count", MSGPACK_OBJECT_POSITIVE_INTEGER);
        if (qn == NULL || b == NULL || sum == NULL || cnt == NULL ||
            b->via.array.size != bounds->via.array.size + 1) {
            continue;
        }
        bool ok = true;
        uint64_t total = 0;
        for (uint32_t i = 0; i < b->via.array.size; i++) {
            ok = ok && b->via.array.ptr[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        }
        if (!ok) {
            continue;
        }
        for (uint32_t i = 0; i < b->via.array.size; i++) {
            total += b->via.array.ptr[i].via.u64;
            fprintf(out, "%s_bucket{queue=\"", name);
            prom_label_value(out, qn->via.str.ptr, qn->via.str.size);
            fputs("\",le=\"", out);
            if (i < bounds->via.array.size) {
                put_ms_as_s(out, bounds->via.array.ptr[i].via.u64);
            } else {
                fputs("+Inf", out);
            }
            fprintf(out, "\"} %" PRIu64 "\n", total);
        }
        fprintf(out, "%s_sum{queue=\"", name);
        prom_label_value(out, qn->via.str.ptr, qn->via.str.size);
        fprintf(out, "\"} %" PRIu64 ".%06" PRIu64 "\n", sum->via.u64 / 1000000u,
                sum->via.u64 % 1000000u);
        fprintf(out, "%s_count{queue=\"", name);
        prom_label_value(out, qn->via.str.ptr, qn->via.str.size);
        /* The count is the +Inf bucket's by definition; the broker keeps both equal. */
        fprintf(out, "\"} %" PRIu64 "\n", total);
    }
}

static bool
str_is(const msgpack_object *o, const char *z)
{
    size_t n = strlen(z);
    return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, z, n) == 0;
}

/* Workers by state: idle, busy and draining always, and any other state a worker reported. */
static void
write_worker_states(FILE *out, const msgpack_object *stats)
{
    static const char *const known[] = { "idle", "busy", "draining" };
    const msgpack_object *ws = get_type(stats, "workers", MSGPACK_OBJECT_ARRAY);
    uint32_t nw = ws != NULL ? ws->via.array.size : 0;

    header(out, "sluice_workers", "gauge", "Workers registered with the broker, by state.");
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        uint64_t n = 0;
        for (uint32_t i = 0; i < nw; i++) {
            n += str_is(get(&ws->via.array.ptr[i], "state"), known[k]);
        }
        fprintf(out, "sluice_workers{state=\"%s\"} %" PRIu64 "\n", known[k], n);
    }
    /* Other states, each once: counted at its first worker. */
    for (uint32_t i = 0; i < nw; i++) {
        const msgpack_object *st = get_type(&ws->via.array.ptr[i], "state", MSGPACK_OBJECT_STR);
        bool skip = st == NULL;
        for (size_t k = 0; !skip && k < sizeof(known) / sizeof(known[0]); k++) {
            skip = str_is(st, known[k]);
        }
        for (uint32_t j = 0; !skip && j < i; j++) {
            const msgpack_object *o = get(&ws->via.array.ptr[j], "state");
            skip = o != NULL && o->type == MSGPACK_OBJECT_STR &&
                   o->via.str.size == st->via.str.size &&
                   memcmp(o->via.str.ptr, st->via.str.ptr, st->via.str.size) == 0;
        }
        if (skip) {
            continue;
        }
        uint64_t n = 0;
        for (uint32_t j = i; j < nw; j++) {
            const msgpack_object *o = get(&ws->via.array.ptr[j], "state");
            n += o != NULL && o->type == MSGPACK_OBJECT_STR &&
                 o->via.str.size == st->via.str.size &&
                 memcmp(o->via.str.ptr, st->via.str.ptr, st->via.str.size) == 0;
        }
        fputs("sluice_workers{state=\"", out);
        prom_label_value(out, st->via.str.ptr, st->via.str.size);
        fprintf(out, "\"} %" PRIu64 "\n", n);
    }
}

/* A string field with a known set of values, as one sample per value: 1 for the current
 * one, 0 for the others (a value outside the set: every sample 0). */
struct state_set {
    const char *name;
    enum src src;
    const char *field;
    const char *label;                  /* the label holding the value */
    const char *const *values;          /* NULL-terminated */
    const char *help;
};

static const char *const db_states[] = { "off", "up", "down", NULL };
static const char *const queue_orders[] = { "groups", "fifo", NULL };

static const struct state_set state_sets[] = {
    { "sluice_db_state", SRC_BROKER, "db", "state", db_states,
      "1 for the state of the MySQL database link: off (no --db), up, down." },
    { "sluice_queue_order", SRC_QUEUE, "order", "order", queue_orders,
      "1 for the order the queue serves its ready jobs in: groups (each group in turn, by "
      "weight) or fifo (arrival order)." },
};

/* The samples of set ss for one entity: lv is its name (NULL for the broker). */
static void
write_states(FILE *out, const struct state_set *ss, const msgpack_object *lv,
             const msgpack_object *v)
{
    for (const char *const *s = ss->values; *s != NULL; s++) {
        fprintf(out, "%s{", ss->name);
        if (lv != NULL) {
            fprintf(out, "%s=\"", src_label[ss->src]);
            prom_label_value(out, lv->via.str.ptr, lv->via.str.size);
            fputs("\",", out);
        }
        fprintf(out, "%s=\"%s\"} %d\n", ss->label, *s, str_is(v, *s));
    }
}

static void
write_state_set(FILE *out, const msgpack_object *stats, const struct state_set *ss)
{
    header(out, ss->name, "gauge", ss->help);
    if (ss->src == SRC_BROKER) {
        const msgpack_object *v = get_type(get(stats, "broker"), ss->field, MSGPACK_OBJECT_STR);
        if (v != NULL) {
            write_states(out, ss, NULL, v);
        }
        return;
    }
    const msgpack_object *a = get_type(stats, src_array[ss->src], MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; a != NULL && i < a->via.array.size; i++) {
        const msgpack_object *e = &a->via.array.ptr[i];
        const msgpack_object *lv = get_type(e, src_name[ss->src], MSGPACK_OBJECT_STR);
        const msgpack_object *v = get_type(e, ss->field, MSGPACK_OBJECT_STR);
        if (lv != NULL && v != NULL) {
            write_states(out, ss, lv, v);
        }
    }
}

static void
write_info(FILE *out, const msgpack_object *stats)
{
    const msgpack_object *b = get(stats, "broker");
    const msgpack_object *ver = get_type(b, "version", MSGPACK_OBJECT_STR);
    const msgpack_object *mode = get_type(b, "journal", MSGPACK_OBJECT_STR);

    header(out, "sluice_broker_info", "gauge",
           "Always 1; the broker's version and journal mode (--fsync, or off) as labels.");
    if (ver != NULL && mode != NULL) {
        fputs("sluice_broker_info{version=\"", out);
        prom_label_value(out, ver->via.str.ptr, ver->via.str.size);
        fputs("\",journal=\"", out);
        prom_label_value(out, mode->via.str.ptr, mode->via.str.size);
        fputs("\"} 1\n", out);
    }

    const msgpack_object *gs = get_type(stats, "groups", MSGPACK_OBJECT_ARRAY);
    header(out, "sluice_group_route_info", "gauge",
           "Always 1; the queue the group's new jobs go to as a label (default: no route).");
    for (uint32_t i = 0; gs != NULL && i < gs->via.array.size; i++) {
        const msgpack_object *g = &gs->via.array.ptr[i];
        const msgpack_object *gn = get_type(g, "name", MSGPACK_OBJECT_STR);
        const msgpack_object *r = get(g, "route");
        if (gn == NULL || r == NULL ||
            (r->type != MSGPACK_OBJECT_STR && r->type != MSGPACK_OBJECT_NIL)) {
            continue;
        }
        fputs("sluice_group_route_info{group=\"", out);
        prom_label_value(out, gn->via.str.ptr, gn->via.str.size);
        fputs("\",queue=\"", out);
        if (r->type == MSGPACK_OBJECT_STR) {
            prom_label_value(out, r->via.str.ptr, r->via.str.size);
        } else {
            fputs("default", out);
        }
        fputs("\"} 1\n", out);
    }

    const msgpack_object *l = get(stats, "leader");
    const msgpack_object *ln = get_type(l, "name", MSGPACK_OBJECT_STR);
    header(out, "sluice_router_leader_info", "gauge",
           "1 for the router holding the lease (no sample when none does).");
    if (ln != NULL) {
        fputs("sluice_router_leader_info{router=\"", out);
        prom_label_value(out, ln->via.str.ptr, ln->via.str.size);
        fputs("\"} 1\n", out);
    }
}

/* sluice_job_errors_total{class}: the broker map's "errors", a map of class to count. */
static void
write_job_errors(FILE *out, const msgpack_object *stats)
{
    const msgpack_object *e = get_type(get(stats, "broker"), "errors", MSGPACK_OBJECT_MAP);
    header(out, "sluice_job_errors_total", "counter",
           "Failed attempts by the class of their error: failed (a handler's nack), exit and "
           "signal (a command's end), worker_died, ttr_expired.");
    for (uint32_t i = 0; e != NULL && i < e->via.map.size; i++) {
        const msgpack_object_kv *kv = &e->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            fputs("sluice_job_errors_total{class=\"", out);
            prom_label_value(out, kv->key.via.str.ptr, kv->key.via.str.size);
            fprintf(out, "\"} %" PRIu64 "\n", kv->val.via.u64);
        }
    }
}

int
prom_format(const msgpack_object *stats, FILE *out)
{
    if (stats == NULL || stats->type != MSGPACK_OBJECT_MAP ||
        get_type(stats, "broker", MSGPACK_OBJECT_MAP) == NULL) {
        return SL_EBADREQ;
    }
    write_info(out, stats);
    for (size_t i = 0; i < sizeof(state_sets) / sizeof(state_sets[0]); i++) {
        write_state_set(out, stats, &state_sets[i]);
    }
    for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
        write_metric(out, stats, &metrics[i]);
    }
    write_wait_hist(out, stats);
    write_worker_states(out, stats);
    write_job_errors(out, stats);
    return fflush(out) != 0 || ferror(out) ? SL_EIO : 0;
}
