#include "wire.h"

#include "err.h"

#include <math.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    enum wire_type type;
} keys[WK_COUNT] = {
    [WK_OP] = { "op", WT_STR },
    [WK_OK] = { "ok", WT_BOOL },
    [WK_ERR] = { "err", WT_STR },
    [WK_MSG] = { "msg", WT_STR },
    [WK_GROUP] = { "group", WT_NAME },
    [WK_QUEUE] = { "queue", WT_NAME },
    [WK_NAME] = { "name", WT_NAME },
    [WK_PAYLOADS] = { "payloads", WT_BLOBS },
    [WK_CLIENT] = { "client", WT_NAME },
    [WK_SEQ] = { "seq", WT_U64 },
    [WK_PRIORITY] = { "priority", WT_U64 },
    [WK_WEIGHT] = { "weight", WT_NUM },
    [WK_MAX_INFLIGHT] = { "max_inflight", WT_U64 },
    [WK_FORCE] = { "force", WT_BOOL },
    [WK_DELAY_MS] = { "delay_ms", WT_U64 },
    [WK_TTR_MS] = { "ttr_ms", WT_U64 },
    [WK_MAX_ATTEMPTS] = { "max_attempts", WT_U64 },
    [WK_N] = { "n", WT_U64 },
    [WK_FIRST_ID] = { "first_id", WT_U64 },
    [WK_DUP] = { "dup", WT_BOOL },
    [WK_MOVED] = { "moved", WT_U64 },
    [WK_PURGED] = { "purged", WT_U64 },
    [WK_RESET] = { "reset", WT_U64 },
    [WK_ROUTES_RESET] = { "routes_reset", WT_U64 },
    [WK_PID] = { "pid", WT_U64 },
    [WK_VERSION] = { "version", WT_STR },
    [WK_UPTIME_MS] = { "uptime_ms", WT_U64 },
    [WK_MAX_MESSAGE] = { "max_message", WT_U64 },
    [WK_QUEUES] = { "queues", WT_ANY },
    [WK_ROUTES] = { "routes", WT_ANY },
    [WK_BROKER] = { "broker", WT_ANY },
    [WK_GROUPS] = { "groups", WT_ANY },
    [WK_WORKERS] = { "workers", WT_ANY },
    [WK_LEASE] = { "lease", WT_U64 },
    [WK_IDS] = { "ids", WT_U64S },
    [WK_WORKER] = { "worker", WT_NAME },
    [WK_MAX] = { "max", WT_U64 },
    [WK_WAIT_MS] = { "wait_ms", WT_U64 },
    [WK_JOBS] = { "jobs", WT_ANY },
    [WK_FROM] = { "from", WT_NAMES },
    [WK_ACK] = { "ack", WT_U64S },
    [WK_ACKED] = { "acked", WT_U64 },
    [WK_MISSING] = { "missing", WT_U64 },
    [WK_STATE] = { "state", WT_NAME },
    [WK_RSS_BYTES] = { "rss_bytes", WT_U64 },
    [WK_CURRENT] = { "current", WT_U64 },
    [WK_TOTAL] = { "total", WT_U64 },
    [WK_MORE] = { "more", WT_BOOL },
    [WK_ID] = { "id", WT_U64 },
    [WK_PAYLOAD] = { "payload", WT_ANY },
    [WK_ATTEMPTS] = { "attempts", WT_U64 },
    [WK_ENQ_MS] = { "enq_ms", WT_U64 },
    [WK_TTL_MS] = { "ttl_ms", WT_U64 },
    [WK_LEADER] = { "leader", WT_ANY },
    [WK_REASON] = { "reason", WT_STR },
    [WK_HIGH] = { "high", WT_U64 },
    [WK_EVENT] = { "event", WT_STR },
    [WK_TS_MS] = { "ts_ms", WT_U64 },
    [WK_TOKEN] = { "token", WT_STR },
    [WK_EXPECT] = { "expect", WT_STR },
    [WK_STALE] = { "stale", WT_BOOL },
    [WK_RTOK] = { "rtok", WT_U64 },
    [WK_RTOK_GOT] = { "rtok_got", WT_U64 },
    [WK_ORDER] = { "order", WT_STR },
    [WK_LEADER_URL] = { "leader_url", WT_STR },
    [WK_RUN_AT_MS] = { "run_at_ms", WT_U64 },
    [WK_RETRY_BASE_MS] = { "retry_base_ms", WT_U64 },
    [WK_RETRY_MAX_MS] = { "retry_max_ms", WT_U64 },
    [WK_RETRY_JITTER] = { "retry_jitter", WT_U64 },
    [WK_ERRORS] = { "errors", WT_BLOBS },
    [WK_JOB] = { "job", WT_ANY },
    [WK_DUPLICATE] = { "duplicate", WT_BOOL },
    [WK_UNIQUE] = { "unique", WT_STR },
    [WK_UNIQUE_TTL_MS] = { "unique_ttl_ms", WT_U64 },
    [WK_UNIQUE_HOLD] = { "unique_hold", WT_NAME },
    [WK_SCHEDULE] = { "schedule", WT_STR },
    [WK_MISSED] = { "missed", WT_STR },
    [WK_CRON] = { "cron", WT_ANY },
    [WK_REPLACED] = { "replaced", WT_BOOL },
    [WK_NEXT_MS] = { "next_ms", WT_U64 },
    [WK_RATE] = { "rate", WT_NUM },
    [WK_BURST] = { "burst", WT_U64 },
    [WK_SORT] = { "sort", WT_STR },
    [WK_OFFSET] = { "offset", WT_U64 },
    [WK_FILTER] = { "filter", WT_STR },
};


const struct wire_op_spec wire_ops[WOP_COUNT] = {
    [WOP_PING] = { "ping", { 0 } },
    [WOP_PUSH] = { "push", { WK_GROUP, WK_PAYLOADS } },
    [WOP_QUEUE_CREATE] = { "queue.create", { WK_NAME } },
    [WOP_QUEUE_UPDATE] = { "queue.update", { WK_NAME } },
    [WOP_QUEUE_DESTROY] = { "queue.destroy", { WK_NAME } },
    [WOP_QUEUE_PAUSE] = { "queue.pause", { WK_NAME } },
    [WOP_QUEUE_RESUME] = { "queue.resume", { WK_NAME } },
    [WOP_QUEUE_LIST] = { "queue.list", { 0 } },
    [WOP_ROUTE_SET] = { "route.set", { WK_GROUP, WK_QUEUE } },
    [WOP_ROUTE_UNSET] = { "route.unset", { WK_GROUP } },
    [WOP_ROUTE_LIST] = { "route.list", { 0 } },
    [WOP_STATS] = { "stats", { 0 } },
    [WOP_FLUSH] = { "flush", { 0 } },
    [WOP_PURGE] = { "purge", { 0 } },
    [WOP_HELLO] = { "hello", { WK_WORKER } },
    [WOP_HEARTBEAT] = { "heartbeat", { WK_WORKER } },
    [WOP_RESERVE] = { "reserve", { WK_WORKER } },
    [WOP_ACK] = { "ack", { WK_IDS } },
    [WOP_NACK] = { "nack", { WK_IDS } },
    [WOP_RELEASE] = { "release", { WK_IDS } },
    [WOP_TOUCH] = { "touch", { WK_IDS } },
    [WOP_DEAD_LIST] = { "dead.list", { 0 } },
    [WOP_DEAD_RETRY] = { "dead.retry", { 0 } },
    [WOP_DEAD_PURGE] = { "dead.purge", { 0 } },
    [WOP_POOL_STATUS] = { "pool.status", { 0 } },
    [WOP_POOL_SCALE] = { "pool.scale", { WK_N } },
    [WOP_LEASE_ACQUIRE] = { "lease.acquire", { WK_NAME, WK_TTL_MS } },
    [WOP_LEASE_RENEW] = { "lease.renew", { WK_NAME, WK_LEASE, WK_TTL_MS } },
    [WOP_LEASE_RELEASE] = { "lease.release", { WK_NAME, WK_LEASE } },
    [WOP_GROUP_WEIGHT] = { "group.weight", { WK_GROUP, WK_WEIGHT } },
    [WOP_CLUSTER_STATUS] = { "cluster.status", { 0 } },
    [WOP_CLUSTER_STEP_DOWN] = { "cluster.step_down", { 0 } },
    [WOP_JOB_INFO] = { "job.info", { WK_ID } },
    [WOP_JOB_PEEK] = { "job.peek", { 0 } },
    [WOP_JOB_DELETE] = { "job.delete", { WK_ID } },
    [WOP_CRON_ADD] = { "cron.add", { WK_NAME, WK_SCHEDULE, WK_GROUP, WK_PAYLOADS } },
    [WOP_CRON_REMOVE] = { "cron.remove", { WK_NAME } },
    [WOP_CRON_LIST] = { "cron.list", { 0 } },
    [WOP_CRON_PAUSE] = { "cron.pause", { WK_NAME } },
    [WOP_CRON_RESUME] = { "cron.resume", { WK_NAME } },
    [WOP_GROUP_LIMIT] = { "group.limit", { WK_GROUP, WK_RATE } },
    [WOP_GROUP_LIST] = { "group.list", { 0 } },
    [WOP_HISTORY] = { "history", { 0 } },
};

bool
sl_str_eq(struct sl_str a, const char *z)
{
    size_t n = strlen(z);
    return a.n == n && memcmp(a.p, z, n) == 0;
}

bool
wire_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > WIRE_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Keys by name: an open-addressed table of key index + 1 (0: empty), and each name's length,
 * filled once. A message's every key is looked up here. */
#define BY_NAME_SLOTS 256
_Static_assert(WK_COUNT * 2 <= BY_NAME_SLOTS, "by_name stays at most half full");
static uint8_t by_name[BY_NAME_SLOTS];
static uint8_t key_len[WK_COUNT];
static pthread_once_t by_name_once = PTHREAD_ONCE_INIT;

static unsigned
name_hash(const char *p, size_t n)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h ^ (h >> 16);
}

static void
by_name_fill(void)
{
    for (int k = 0; k < WK_COUNT; k++) {
        size_t n = strlen(keys[k].name);
        key_len[k] = (uint8_t)n;
        unsigned i = name_hash(keys[k].name, n) & (BY_NAME_SLOTS - 1);
        while (by_name[i] != 0) {
            i = (i + 1) & (BY_NAME_SLOTS - 1);
        }
        by_name[i] = (uint8_t)(k + 1);
    }
}

static void
keys_ready(void)
{
    pthread_once(&by_name_once, by_name_fill);
}

/* The key named p[0..n), or -1. keys_ready() first. */
static int
key_of(const char *p, size_t n)
{
    if (n == 0 || n > UINT8_MAX) {
        return -1;
    }
    for (unsigned i = name_hash(p, n) & (BY_NAME_SLOTS - 1); by_name[i] != 0;
         i = (i + 1) & (BY_NAME_SLOTS - 1)) {
        int k = by_name[i] - 1;
        if (key_len[k] == n && memcmp(keys[k].name, p, n) == 0) {
            return k;
        }
    }
    return -1;
}

const char *
wire_key_name(enum wire_key k)
{
    return (unsigned)k < WK_COUNT ? keys[k].name : "?";
}

enum wire_type
wire_key_type(enum wire_key k)
{
    return (unsigned)k < WK_COUNT ? keys[k].type : WT_ANY;
}

bool
wire_op_requires(enum wire_op op, enum wire_key k)
{
    for (int i = 0; i < WIRE_REQUIRED_MAX && wire_ops[op].required[i] != WK_OP; i++) {
        if (wire_ops[op].required[i] == k) {
            return true;
        }
    }
    return false;
}

unsigned
wire_keyset_count(const struct wire_keyset *s)
{
    unsigned n = 0;
    for (int i = 0; i < WIRE_KEYSET_WORDS; i++) {
        n += (unsigned)__builtin_popcountll(s->w[i]);
    }
    return n;
}

bool
wire_keyset_empty(const struct wire_keyset *s)
{
    return wire_keyset_count(s) == 0;
}

int
wire_op_find(struct sl_str s)
{
    for (int i = 0; i < WOP_COUNT; i++) {
        if (sl_str_eq(s, wire_ops[i].name)) {
            return i;
        }
    }
    return -1;
}

struct sl_str
wire_list_str(const struct wire_list *l, uint32_t i)
{
    if (l->o != NULL) {
        const msgpack_object *o = &l->o[i];
        if (o->type == MSGPACK_OBJECT_BIN) {
            return (struct sl_str){ o->via.bin.ptr, o->via.bin.size };
        }
        return (struct sl_str){ o->via.str.ptr, o->via.str.size };
    }
    return l->s[i];
}

uint64_t
wire_list_u64(const struct wire_list *l, uint32_t i)
{
    return l->o != NULL ? l->o[i].via.u64 : l->u[i];
}

void
wire_msg_init(struct wire_msg *m)
{
    memset(m, 0, sizeof(*m));
}

/* The object tree of a decoded message lives in a zone. Each thread keeps one zone, cleared,
 * for the next small message (up to ZONE_KEEP_LEN bytes): decoding a request then allocates
 * nothing, where a new zone each time cost a malloc and free of 8 KiB per request. A larger
 * message's zone (its tree may take many times the message's size) is freed. */
#define ZONE_KEEP_LEN 4096

static pthread_key_t zone_key;
static pthread_once_t zone_once = PTHREAD_ONCE_INIT;
static bool zone_key_ok;

static void
zone_free_kept(void *z)
{
    msgpack_zone_free(z);
}

static void
zone_key_init(void)
{
    zone_key_ok = pthread_key_create(&zone_key, zone_free_kept) == 0;
}

static msgpack_zone *
zone_take(void)
{
    pthread_once(&zone_once, zone_key_init);
    msgpack_zone *z = zone_key_ok ? pthread_getspecific(zone_key) : NULL;
    if (z != NULL) {
        pthread_setspecific(zone_key, NULL);
        return z;
    }
    return msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
}

static void
zone_give(msgpack_zone *z, bool keep)
{
    if (keep && zone_key_ok && pthread_getspecific(zone_key) == NULL) {
        msgpack_zone_clear(z);
        if (pthread_setspecific(zone_key, z) == 0) {
            return;
        }
    }
    msgpack_zone_free(z);
}

/* Zeroes the values of the keys present and forgets them: only a present key's value is ever
 * other than zero (every writer of v[k] also sets k in has), so m's values are then all zero,
 * as wire_msg_init left them, at the cost of a few keys rather than of all of them. */
static void
clear_present(struct wire_msg *m)
{
    for (unsigned w = 0; w < WIRE_KEYSET_WORDS; w++) {
        for (uint64_t bits = m->has.w[w]; bits != 0; bits &= bits - 1) {
            memset(&m->v[w * 64 + (unsigned)__builtin_ctzll(bits)], 0, sizeof(m->v[0]));
        }
        m->has.w[w] = 0;
    }
}

void
wire_msg_fini(struct wire_msg *m)
{
    if (m->decoded && m->up.zone != NULL) {
        zone_give(m->up.zone, m->keep_zone);
    }
    clear_present(m);
    memset(&m->up, 0, sizeof(m->up));
    m->decoded = false;
    m->keep_zone = false;
}

static int bad(struct wire_msg *m, char *why, size_t whycap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
bad(struct wire_msg *m, char *why, size_t whycap, const char *fmt, ...)
{
    if (why != NULL && whycap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whycap, fmt, ap);
        va_end(ap);
    }
    clear_present(m);
    return SL_EBADREQ;
}

static bool
is_name_obj(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR && wire_name_ok(o->via.str.ptr, o->via.str.size);
}

int
wire_decode(struct wire_msg *m, const void *buf, size_t len, char *why, size_t whycap)
{
    size_t off = 0;

    if (len == 0 || wire_check(buf, len) != 0) {
        return bad(m, why, whycap, "%s", "not one well-formed msgpack value");
    }
    if (m->decoded && m->up.zone != NULL) {
        zone_give(m->up.zone, m->keep_zone);
    }
    msgpack_unpacked_init(&m->up);
    m->decoded = true;
    m->keep_zone = len <= ZONE_KEEP_LEN;
    if ((m->up.zone = zone_take()) == NULL) {
        return bad(m, why, whycap, "%s", "no memory to decode the message");
    }
    if (msgpack_unpack(buf, len, &off, m->up.zone, &m->up.data) != MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        return bad(m, why, whycap, "%s", "not one well-formed msgpack value");
    }
    const msgpack_object *root = &m->up.data;
    if (root->type != MSGPACK_OBJECT_MAP) {
        return bad(m, why, whycap, "%s", "a message must be a map");
    }
    clear_present(m);
    keys_ready();
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *ko = &root->via.map.ptr[i].key;
        const msgpack_object *vo = &root->via.map.ptr[i].val;
        if (ko->type != MSGPACK_OBJECT_STR) {
            return bad(m, why, whycap, "%s", "map keys must be strings");
        }
        int k = key_of(ko->via.str.ptr, ko->via.str.size);
        if (k < 0) {
            continue; /* unknown keys are ignored */
        }
        if (WIRE_HAS(m, k)) {
            return bad(m, why, whycap, "field '%s' appears twice", keys[k].name);
        }
        union wire_val *v = &m->v[k];
        switch (keys[k].type) {
        case WT_STR:
            if (vo->type != MSGPACK_OBJECT_STR || vo->via.str.size > WIRE_STR_MAX) {
                return bad(m, why, whycap, "field '%s': expected a string of at most 4096 bytes",
                           keys[k].name);
            }
            v->s = (struct sl_str){ vo->via.str.ptr, vo->via.str.size };
            break;
        case WT_NAME:
            if (!is_name_obj(vo)) {
                return bad(m, why, whycap,
                           "field '%s': expected a name of 1-128 bytes of [A-Za-z0-9._:-]",
                           keys[k].name);
            }
            v->s = (struct sl_str){ vo->via.str.ptr, vo->via.str.size };
            break;
        case WT_U64:
            if (vo->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                return bad(m, why, whycap, "field '%s': expected a non-negative integer",
                           keys[k].name);
            }
            v->u = vo->via.u64;
            break;
        case WT_NUM:
            if (vo->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                v->d = (double)vo->via.u64;
            } else if ((vo->type == MSGPACK_OBJECT_FLOAT32 || vo->type == MSGPACK_OBJECT_FLOAT64) &&
                       isfinite(vo->via.f64) && vo->via.f64 >= 0) {
                v->d = vo->via.f64;
            } else {
                return bad(m, why, whycap, "field '%s': expected a non-negative number",
                           keys[k].name);
            }
            break;
        case WT_BOOL:
            if (vo->type != MSGPACK_OBJECT_BOOLEAN) {
                return bad(m, why, whycap, "field '%s': expected a boolean", keys[k].name);
            }
            v->b = vo->via.boolean;
            break;
        case WT_BLOBS:
        case WT_U64S:
        case WT_NAMES:
            if (vo->type != MSGPACK_OBJECT_ARRAY) {
                return bad(m, why, whycap, "field '%s': expected an array", keys[k].name);
            }
            for (uint32_t e = 0; e < vo->via.array.size; e++) {
                const msgpack_object *eo = &vo->via.array.ptr[e];
                bool ok = keys[k].type == WT_BLOBS
                              ? (eo->type == MSGPACK_OBJECT_BIN || eo->type == MSGPACK_OBJECT_STR)
                          : keys[k].type == WT_U64S ? eo->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                                                    : is_name_obj(eo);
                if (!ok) {
                    return bad(m, why, whycap, "field '%s': an element has the wrong type",
                               keys[k].name);
                }
            }
            v->l = (struct wire_list){ vo->via.array.size, vo->via.array.ptr, NULL, NULL };
            break;
        case WT_ANY:
            v->any = vo;
            break;
        }
        wire_keyset_add(&m->has, (unsigned)k);
    }
    return 0;
}

int
wire_check_required(const struct wire_msg *m, enum wire_op op, char *why, size_t whycap)
{
    for (int i = 0; i < WIRE_REQUIRED_MAX && wire_ops[op].required[i] != WK_OP; i++) {
        enum wire_key k = wire_ops[op].required[i];
        if (!WIRE_HAS(m, k)) {
            if (why != NULL && whycap > 0) {
                snprintf(why, whycap, "%s: missing required field '%s'", wire_ops[op].name,
                         keys[k].name);
            }
            return SL_EBADREQ;
        }
    }
    return 0;
}

void
wire_set_str(struct wire_msg *m, enum wire_key k, const char *p, size_t n)
{
    m->v[k].s = (struct sl_str){ p, (uint32_t)n };
    wire_keyset_add(&m->has, (unsigned)k);
}

void
wire_set_cstr(struct wire_msg *m, enum wire_key k, const char *z)
{
    wire_set_str(m, k, z, strlen(z));
}

void
wire_set_u64(struct wire_msg *m, enum wire_key k, uint64_t u)
{
    if (keys[k].type == WT_NUM) {
        m->v[k].d = (double)u;
    } else {
        m->v[k].u = u;
    }
    wire_keyset_add(&m->has, (unsigned)k);
}

void
wire_set_num(struct wire_msg *m, enum wire_key k, double d)
{
    m->v[k].d = d;
    wire_keyset_add(&m->has, (unsigned)k);
}

void
wire_set_bool(struct wire_msg *m, enum wire_key k, bool b)
{
    m->v[k].b = b;
    wire_keyset_add(&m->has, (unsigned)k);
}

void
wire_set_strs(struct wire_msg *m, enum wire_key k, const struct sl_str *v, uint32_t n)
{
    m->v[k].l = (struct wire_list){ n, NULL, v, NULL };
    wire_keyset_add(&m->has, (unsigned)k);
}

void
wire_set_u64s(struct wire_msg *m, enum wire_key k, const uint64_t *v, uint32_t n)
{
    m->v[k].l = (struct wire_list){ n, NULL, NULL, v };
    wire_keyset_add(&m->has, (unsigned)k);
}

/* A string under 256 bytes goes as one write, its header and bytes together: a packer's
 * write appends to a message and costs more than the few bytes it moves. The header is the
 * one msgpack_pack_str picks (fixstr, else str8). 0, or the writer's error. */
static int
put_str(msgpack_packer *pk, const char *p, size_t n)
{
    if (n < 256) {
        unsigned char b[2 + 255];
        size_t h = 0;
        if (n < 32) {
            b[h++] = (unsigned char)(0xa0u | n);
        } else {
            b[h++] = 0xd9;
            b[h++] = (unsigned char)n;
        }
        memcpy(b + h, p, n);
        return msgpack_pack_str_body(pk, b, h + n);
    }
    int rv = msgpack_pack_str(pk, n);
    return rv == 0 ? msgpack_pack_str_body(pk, p, n) : rv;
}

/* The same for bin (bin8 under 256 bytes, as msgpack_pack_bin picks). */
static int
put_bin(msgpack_packer *pk, const char *p, size_t n)
{
    if (n < 256) {
        unsigned char b[2 + 255];
        b[0] = 0xc4;
        b[1] = (unsigned char)n;
        memcpy(b + 2, p, n);
        return msgpack_pack_bin_body(pk, b, n + 2);
    }
    int rv = msgpack_pack_bin(pk, n);
    return rv == 0 ? msgpack_pack_bin_body(pk, p, n) : rv;
}

void
wire_pack_str(msgpack_packer *pk, const char *p, size_t n)
{
    put_str(pk, p, n);
}

void
wire_pack_cstr(msgpack_packer *pk, const char *z)
{
    wire_pack_str(pk, z, strlen(z));
}

void
wire_pack_key(msgpack_packer *pk, enum wire_key k)
{
    keys_ready();
    wire_pack_str(pk, keys[k].name, key_len[k]);
}

void
wire_pack_ok(msgpack_packer *pk, uint32_t nfields)
{
    msgpack_pack_map(pk, nfields + 1);
    wire_pack_key(pk, WK_OK);
    msgpack_pack_true(pk);
}

void
wire_pack_err(msgpack_packer *pk, int err, const char *msg)
{
    msgpack_pack_map(pk, 3);
    wire_pack_key(pk, WK_OK);
    msgpack_pack_false(pk);
    wire_pack_key(pk, WK_ERR);
    wire_pack_cstr(pk, sl_err_code(err));
    wire_pack_key(pk, WK_MSG);
    const char *text = msg != NULL ? msg : sl_err_str(err);
    size_t n = strlen(text);
    wire_pack_str(pk, text, n < WIRE_STR_MAX ? n : WIRE_STR_MAX); /* decodable by any client */
}

int
wire_encode(const struct wire_msg *m, msgpack_packer *pk)
{
    uint32_t n = wire_keyset_count(&m->has);
    int rv = msgpack_pack_map(pk, n);

    keys_ready();
    for (int k = 0; k < WK_COUNT && rv == 0; k++) {
        if (!WIRE_HAS(m, k)) {
            continue;
        }
        const union wire_val *v = &m->v[k];
        if ((rv = put_str(pk, keys[k].name, key_len[k])) != 0) {
            break;
        }
        switch (keys[k].type) {
        case WT_STR:
        case WT_NAME:
            rv = put_str(pk, v->s.p, v->s.n);
            break;
        case WT_U64:
            rv = msgpack_pack_uint64(pk, v->u);
            break;
        case WT_NUM:
            /* A whole number travels as an integer, so that readers expecting one (an older
             * broker's queue weight) accept it. */
            rv = v->d < 0x1p63 && v->d == (double)(uint64_t)v->d ? msgpack_pack_uint64(pk, (uint64_t)v->d)
                                                       : msgpack_pack_double(pk, v->d);
            break;
        case WT_BOOL:
            rv = v->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
            break;
        case WT_BLOBS:
        case WT_NAMES:
            rv = msgpack_pack_array(pk, v->l.n);
            for (uint32_t i = 0; i < v->l.n && rv == 0; i++) {
                struct sl_str s = wire_list_str(&v->l, i);
                if (keys[k].type == WT_BLOBS) {
                    rv = put_bin(pk, s.p, s.n);
                } else {
                    rv = put_str(pk, s.p, s.n);
                }
            }
            break;
        case WT_U64S:
            rv = msgpack_pack_array(pk, v->l.n);
            for (uint32_t i = 0; i < v->l.n && rv == 0; i++) {
                rv = msgpack_pack_uint64(pk, wire_list_u64(&v->l, i));
            }
            break;
        case WT_ANY:
            rv = v->any != NULL ? msgpack_pack_object(pk, *v->any) : msgpack_pack_nil(pk);
            break;
        }
    }
    return rv == 0 ? 0 : SL_ENOMEM;
}

size_t
wire_encoded_size(const struct wire_msg *m)
{
    size_t n = 5;

    keys_ready();
    for (int k = 0; k < WK_COUNT; k++) {
        if (!WIRE_HAS(m, k)) {
            continue;
        }
        const union wire_val *v = &m->v[k];
        n += 1 + key_len[k];
        switch (keys[k].type) {
        case WT_STR:
        case WT_NAME:
            n += 5 + v->s.n;
            break;
        case WT_U64:
        case WT_NUM:
        case WT_BOOL:
            n += 9;
            break;
        case WT_BLOBS:
        case WT_NAMES:
            n += 5;
            for (uint32_t i = 0; i < v->l.n; i++) {
                n += 5 + wire_list_str(&v->l, i).n;
            }
            break;
        case WT_U64S:
            n += 5 + (size_t)v->l.n * 9;
            break;
        case WT_ANY:
            n += 256;
            break;
        }
    }
    return n;
}

int
wire_pack_into_msg(void *data, const char *buf, size_t len)
{
    nng_msg *msg = data;
    size_t need = nng_msg_len(msg) + len, cap = nng_msg_capacity(msg);

    /* nng grows a message to the exact size asked for, so packing item by item would copy
     * the message once per item; doubling keeps packing linear. */
    if (need > cap && nng_msg_reserve(msg, need > 2 * cap ? need : 2 * cap) != 0) {
        return -1;
    }
    return nng_msg_append(msg, buf, len) == 0 ? 0 : -1;
}

const msgpack_object *
wire_obj_get(const msgpack_object *map, const char *key)
{
    size_t n = strlen(key);
    if (map == NULL || map->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0) {
            return &map->via.map.ptr[i].val;
        }
    }
    return NULL;
}
