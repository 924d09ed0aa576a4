#include "httpjson.h"

#include "err.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const enum wire_key f_none[] = { WK_OP };
static const enum wire_key f_push[] = { WK_QUEUE, WK_TTR_MS, WK_MAX_ATTEMPTS, WK_DELAY_MS,
                                        WK_RUN_AT_MS, WK_CLIENT, WK_SEQ, WK_UNIQUE,
                                        WK_UNIQUE_TTL_MS, WK_UNIQUE_HOLD, WK_OP };
static const enum wire_key f_queue[] = { WK_NAME, WK_PRIORITY, WK_WEIGHT, WK_MAX_INFLIGHT,
                                         WK_ORDER, WK_RETRY_BASE_MS, WK_RETRY_MAX_MS,
                                         WK_RETRY_JITTER, WK_OP };
static const enum wire_key f_qset[] = { WK_PRIORITY, WK_WEIGHT, WK_MAX_INFLIGHT, WK_ORDER,
                                        WK_RETRY_BASE_MS, WK_RETRY_MAX_MS, WK_RETRY_JITTER,
                                        WK_OP };
static const enum wire_key f_destroy[] = { WK_FORCE, WK_OP };
static const enum wire_key f_route[] = { WK_QUEUE, WK_EXPECT, WK_OP };
static const enum wire_key f_unroute[] = { WK_EXPECT, WK_OP };
static const enum wire_key f_dead[] = { WK_IDS, WK_QUEUE, WK_GROUP, WK_OP };
static const enum wire_key f_deadlist[] = { WK_QUEUE, WK_GROUP, WK_MAX, WK_OP };
static const enum wire_key f_purge[] = { WK_QUEUE, WK_GROUP, WK_OP };
static const enum wire_key f_reserve[] = { WK_WORKER, WK_MAX, WK_WAIT_MS, WK_FROM, WK_ACK, WK_OP };
static const enum wire_key f_ack[] = { WK_IDS, WK_WORKER, WK_OP };
static const enum wire_key f_nack[] = { WK_IDS, WK_WORKER, WK_DELAY_MS, WK_ERRORS, WK_OP };
static const enum wire_key f_peek[] = { WK_QUEUE, WK_GROUP, WK_STATE, WK_MAX, WK_OP };
static const enum wire_key f_touch[] = { WK_IDS, WK_WORKER, WK_TTR_MS, WK_OP };
static const enum wire_key f_cron[] = { WK_NAME, WK_SCHEDULE, WK_GROUP, WK_QUEUE, WK_MISSED,
                                        WK_OP };
static const enum wire_key f_stats[] = { WK_MAX, WK_OP };
static const enum wire_key f_glist[] = { WK_SORT, WK_ORDER, WK_OFFSET, WK_MAX, WK_FILTER, WK_OP };
static const enum wire_key f_limit[] = { WK_RATE, WK_BURST, WK_EXPECT, WK_REASON, WK_OP };

/* The API. Order matters only among rows of one path. */
static const struct hj_endpoint endpoints[] = {
    { "POST", "/v1/groups/*/jobs", WOP_PUSH, WK_GROUP, f_push, HJ_PAYLOADS | HJ_IDEM | HJ_BODY },
    { "GET", "/v1/stats", WOP_STATS, WK_OP, f_stats, 0 },
    { "GET", "/v1/groups", WOP_GROUP_LIST, WK_OP, f_glist, 0 },
    { "GET", "/v1/history", WOP_HISTORY, WK_OP, f_none, 0 },
    { "GET", "/v1/queues", WOP_QUEUE_LIST, WK_OP, f_none, 0 },
    { "POST", "/v1/queues", WOP_QUEUE_CREATE, WK_OP, f_queue, HJ_BODY },
    { "GET", "/v1/queues/*", WOP_QUEUE_LIST, WK_NAME, f_none, 0 },
    { "PATCH", "/v1/queues/*", WOP_QUEUE_UPDATE, WK_NAME, f_qset, HJ_BODY },
    { "DELETE", "/v1/queues/*", WOP_QUEUE_DESTROY, WK_NAME, f_destroy, 0 },
    { "POST", "/v1/queues/*/pause", WOP_QUEUE_PAUSE, WK_NAME, f_none, 0 },
    { "POST", "/v1/queues/*/resume", WOP_QUEUE_RESUME, WK_NAME, f_none, 0 },
    { "GET", "/v1/routes", WOP_ROUTE_LIST, WK_OP, f_none, 0 },
    { "PUT", "/v1/routes/*", WOP_ROUTE_SET, WK_GROUP, f_route, HJ_BODY },
    { "DELETE", "/v1/routes/*", WOP_ROUTE_UNSET, WK_GROUP, f_unroute, 0 },
    { "GET", "/v1/dead", WOP_DEAD_LIST, WK_OP, f_deadlist, 0 },
    { "POST", "/v1/dead/retry", WOP_DEAD_RETRY, WK_OP, f_dead, 0 },
    { "POST", "/v1/dead/purge", WOP_DEAD_PURGE, WK_OP, f_dead, 0 },
    { "POST", "/v1/flush", WOP_FLUSH, WK_OP, f_none, 0 },
    { "POST", "/v1/purge", WOP_PURGE, WK_OP, f_purge, 0 },
    { "POST", "/v1/reserve", WOP_RESERVE, WK_OP, f_reserve, HJ_BODY },
    { "POST", "/v1/ack", WOP_ACK, WK_OP, f_ack, HJ_BODY },
    { "POST", "/v1/nack", WOP_NACK, WK_OP, f_nack, HJ_BODY },
    { "POST", "/v1/touch", WOP_TOUCH, WK_OP, f_touch, HJ_BODY },
    { "GET", "/v1/jobs", WOP_JOB_PEEK, WK_OP, f_peek, 0 },
    { "GET", "/v1/jobs/*", WOP_JOB_INFO, WK_ID, f_none, 0 },
    { "DELETE", "/v1/jobs/*", WOP_JOB_DELETE, WK_ID, f_none, 0 },
    { "GET", "/v1/cron", WOP_CRON_LIST, WK_OP, f_none, 0 },
    { "POST", "/v1/cron", WOP_CRON_ADD, WK_OP, f_cron, HJ_PAYLOADS | HJ_BODY },
    { "DELETE", "/v1/cron/*", WOP_CRON_REMOVE, WK_NAME, f_none, 0 },
    { "POST", "/v1/cron/*/pause", WOP_CRON_PAUSE, WK_NAME, f_none, 0 },
    { "POST", "/v1/cron/*/resume", WOP_CRON_RESUME, WK_NAME, f_none, 0 },
    { "PUT", "/v1/groups/*/limit", WOP_GROUP_LIMIT, WK_GROUP, f_limit, HJ_BODY },
};
#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

/* Does path match pattern? A "*" segment matches one non-empty segment, put in *arg. */
static bool
path_match(const char *pattern, const char *path, struct sl_str *arg)
{
    while (*pattern != '\0') {
        if (*pattern == '*') {
            const char *end = strchr(path, '/');
            size_t n = end != NULL ? (size_t)(end - path) : strlen(path);
            if (n == 0) {
                return false;
            }
            arg->p = path;
            arg->n = (uint32_t)n;
            path += n;
            pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *path == '\0';
}

const struct hj_endpoint *
hj_match(const char *method, const char *path, struct sl_str *arg, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < NENDPOINTS; i++) {
        struct sl_str a = { NULL, 0 };
        if (path_match(endpoints[i].path, path, &a)) {
            *path_known = true;
            if (strcmp(endpoints[i].method, method) == 0) {
                *arg = a;
                return &endpoints[i];
            }
        }
    }
    return NULL;
}

void
hj_allow(const char *path, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NENDPOINTS && off < cap; i++) {
        struct sl_str a;
        if (path_match(endpoints[i].path, path, &a)) {
            int n = snprintf(out + off, cap - off, "%s%s", off > 0 ? ", " : "",
                             endpoints[i].method);
            off += n > 0 ? (size_t)n : 0;
        }
    }
}

static const struct {
    int err;
    uint16_t status;
} statuses[] = {
    { SL_EBADREQ, 400 },     { SL_EUNKNOWNOP, 400 }, { SL_ENOTFOUND, 404 },
    { SL_EEXISTS, 409 },     { SL_EQUEUEFULL, 429 }, { SL_ETOOLARGE, 413 },
    { SL_EPAUSED, 409 },     { SL_ENOTLEADER, 409 }, { SL_ENOTEMPTY, 409 },
    { SL_EFORBIDDEN, 403 },  { SL_ENOMEM, 503 },     { SL_EIO, 503 },
    { SL_ETIMEDOUT, 504 },   { SL_EUNREACHABLE, 503 }, { SL_EINTERNAL, 500 },
    { SL_EUNAUTH, 401 },     { SL_ECONFLICT, 409 },
};

uint16_t
hj_status(int err)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (statuses[i].err == err) {
            return statuses[i].status;
        }
    }
    return 500;
}

static int
b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long
hj_b64_decode(const char *in, size_t n, unsigned char *out)
{
    if (n % 4 != 0) {
        return -1;
    }
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        size_t pad = 0;
        for (size_t j = 0; j < 4; j++) {
            if (in[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad > 0 || (v[j] = b64_val((unsigned char)in[i + j])) < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        if (out != NULL) {
            unsigned char b[3] = { (unsigned char)(w >> 16), (unsigned char)(w >> 8),
                                   (unsigned char)w };
            memcpy(out + o, b, 3 - pad);
        }
        o += (long)(3 - pad);
    }
    return o;
}

/* ---- JSON request -> msgpack ---- */

static bool
field_allowed(const struct hj_endpoint *e, const char *name, enum wire_key *k)
{
    for (const enum wire_key *f = e->fields; *f != WK_OP; f++) {
        if (strcmp(wire_key_name(*f), name) == 0) {
            *k = *f;
            return true;
        }
    }
    return false;
}

static bool
json_is_boolean_fn(const json_t *v)
{
    return json_is_boolean(v);
}

static bool
is_str(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) <= WIRE_STR_MAX;
}

static bool
is_name(const json_t *v)
{
    return json_is_string(v) && wire_name_ok(json_string_value(v), json_string_length(v));
}

static bool
is_u64(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

static bool
is_num(const json_t *v)
{
    return is_u64(v) || (json_is_real(v) && json_real_value(v) >= 0);
}

static void
pack_str(msgpack_packer *pk, const json_t *v)
{
    wire_pack_str(pk, json_string_value(v), json_string_length(v));
}

static void
pack_u64(msgpack_packer *pk, const json_t *v)
{
    msgpack_pack_uint64(pk, (uint64_t)json_integer_value(v));
}

static void
pack_num(msgpack_packer *pk, const json_t *v)
{
    if (json_is_integer(v)) {
        pack_u64(pk, v);
    } else {
        msgpack_pack_double(pk, json_real_value(v));
    }
}

static void
pack_bool(msgpack_packer *pk, const json_t *v)
{
    json_is_true(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

/* How a JSON value of each wire type is checked and packed; an array type names the type of
 * its items (scalar: itself). A type with no row (what NULL) cannot be set over HTTP. */
static const struct jtype {
    bool (*ok)(const json_t *v);
    void (*pack)(msgpack_packer *pk, const json_t *v);
    const char *what;
    enum wire_type item;
} jtypes[] = {
    [WT_STR] = { is_str, pack_str, "a string", WT_STR },
    [WT_NAME] = { is_name, pack_str, "a name (1-128 of A-Z a-z 0-9 . _ : -)", WT_NAME },
    [WT_U64] = { is_u64, pack_u64, "a non-negative integer", WT_U64 },
    [WT_NUM] = { is_num, pack_num, "a non-negative number", WT_NUM },
    [WT_BOOL] = { json_is_boolean_fn, pack_bool, "true or false", WT_BOOL },
    [WT_U64S] = { NULL, NULL, "an array", WT_U64 },
    [WT_NAMES] = { NULL, NULL, "an array", WT_NAME },
    [WT_BLOBS] = { NULL, NULL, "an array of strings", WT_STR }, /* nack's errors */
};
#define NJTYPES (sizeof(jtypes) / sizeof(jtypes[0]))

static bool
is_array_type(enum wire_type t)
{
    return jtypes[t].item != t;
}

/* Checks v against the wire type of k; why names the field. */
static int
check_value(const char *name, enum wire_key k, const json_t *v, char *why, size_t cap)
{
    enum wire_type t = wire_key_type(k);
    size_t i;
    json_t *x;
    if ((size_t)t >= NJTYPES || jtypes[t].what == NULL) {
        snprintf(why, cap, "field '%s' cannot be set over HTTP", name);
        return SL_EBADREQ;
    }
    const struct jtype *it = &jtypes[jtypes[t].item];
    if (!is_array_type(t)) {
        if (it->ok(v)) {
            return 0;
        }
        snprintf(why, cap, "field '%s' must be %s", name, it->what);
        return SL_EBADREQ;
    }
    if (!json_is_array(v)) {
        snprintf(why, cap, "field '%s' must be %s", name, jtypes[t].what);
        return SL_EBADREQ;
    }
    json_array_foreach (v, i, x) {
        if (!it->ok(x)) {
            snprintf(why, cap, "field '%s' item %zu must be %s", name, i, it->what);
            return SL_EBADREQ;
        }
    }
    return 0;
}

/* Packs v, checked by check_value. */
static void
pack_value(msgpack_packer *pk, enum wire_key k, const json_t *v)
{
    enum wire_type t = wire_key_type(k);
    const struct jtype *it = &jtypes[jtypes[t].item];
    size_t i;
    json_t *x;
    if (!is_array_type(t)) {
        it->pack(pk, v);
        return;
    }
    msgpack_pack_array(pk, json_array_size(v));
    json_array_foreach (v, i, x) {
        it->pack(pk, x);
    }
}

/* The payload fields: which one a body carries, and whether it is base64 / an array. */
static const struct {
    const char *name;
    bool b64, many;
} payload_fields[] = {
    { "payload", false, false },
    { "payloads", false, true },
    { "payload_b64", true, false },
    { "payloads_b64", true, true },
};

/* Finds the body's payload field (exactly one) and checks it; *one: its index. */
static int
check_payloads(json_t *root, int *one, char *why, size_t cap)
{
    *one = -1;
    for (int i = 0; i < 4; i++) {
        json_t *v = json_object_get(root, payload_fields[i].name);
        if (v == NULL) {
            continue;
        }
        if (*one >= 0) {
            snprintf(why, cap, "fields '%s' and '%s' exclude each other",
                     payload_fields[*one].name, payload_fields[i].name);
            return SL_EBADREQ;
        }
        *one = i;
        if (payload_fields[i].many && (!json_is_array(v) || json_array_size(v) == 0)) {
            snprintf(why, cap, "field '%s' must be a non-empty array of strings",
                     payload_fields[i].name);
            return SL_EBADREQ;
        }
        size_t n = payload_fields[i].many ? json_array_size(v) : 1;
        for (size_t j = 0; j < n; j++) {
            json_t *x = payload_fields[i].many ? json_array_get(v, j) : v;
            if (!json_is_string(x)) {
                snprintf(why, cap, "field '%s'%s must be a string", payload_fields[i].name,
                         payload_fields[i].many ? " items" : "");
                return SL_EBADREQ;
            }
            size_t sl = json_string_length(x);
            if (payload_fields[i].b64 && hj_b64_decode(json_string_value(x), sl, NULL) < 0) {
                snprintf(why, cap, "field '%s' item %zu is not base64", payload_fields[i].name,
                         j);
                return SL_EBADREQ;
            }
        }
    }
    if (*one < 0) {
        snprintf(why, cap, "missing field 'payloads' (or 'payload', 'payloads_b64', "
                           "'payload_b64')");
        return SL_EBADREQ;
    }
    return 0;
}

/* Packs the payloads of field one (checked). Returns 0 or SL_EBADREQ (base64). */
static int
pack_payloads(msgpack_packer *pk, json_t *root, int one, char *why, size_t cap)
{
    json_t *v = json_object_get(root, payload_fields[one].name);
    size_t n = payload_fields[one].many ? json_array_size(v) : 1;
    wire_pack_key(pk, WK_PAYLOADS);
    msgpack_pack_array(pk, n);
    for (size_t j = 0; j < n; j++) {
        json_t *x = payload_fields[one].many ? json_array_get(v, j) : v;
        const char *s = json_string_value(x);
        size_t sl = json_string_length(x);
        if (!payload_fields[one].b64) {
            msgpack_pack_bin(pk, sl);
            msgpack_pack_bin_body(pk, s, sl);
            continue;
        }
        unsigned char *buf = malloc(sl / 4 * 3 + 1);
        long got = buf != NULL ? hj_b64_decode(s, sl, buf) : -1;
        if (got < 0) {
            free(buf);
            snprintf(why, cap, "field '%s' item %zu is not base64", payload_fields[one].name, j);
            return SL_EBADREQ;
        }
        msgpack_pack_bin(pk, (size_t)got);
        msgpack_pack_bin_body(pk, buf, (size_t)got);
        free(buf);
    }
    return 0;
}

/* The Idempotency-Key header "CLIENT:SEQ" (CLIENT a name, which may hold ':'). */
static int
parse_idem(const char *idem, struct sl_str *client, uint64_t *seq, char *why, size_t cap)
{
    const char *colon = strrchr(idem, ':');
    char *end = NULL;
    if (colon != NULL && colon[1] >= '0' && colon[1] <= '9' &&
        wire_name_ok(idem, (size_t)(colon - idem))) {
        unsigned long long v = strtoull(colon + 1, &end, 10);
        if (*end == '\0') {
            client->p = idem;
            client->n = (uint32_t)(colon - idem);
            *seq = v;
            return 0;
        }
    }
    snprintf(why, cap, "header 'Idempotency-Key' must be CLIENT:SEQ (a name and a number)");
    return SL_EBADREQ;
}

/* Checks every field of root against e; *nfields: how many wire keys they give. */
static int
check_fields(const struct hj_endpoint *e, json_t *root, uint32_t *nfields, char *why, size_t cap)
{
    const char *name;
    json_t *v;
    json_object_foreach (root, name, v) {
        enum wire_key k;
        bool payload = false;
        for (int i = 0; i < 4; i++) {
            payload = payload || strcmp(name, payload_fields[i].name) == 0;
        }
        if (payload && (e->flags & HJ_PAYLOADS)) {
            continue;
        }
        if (!field_allowed(e, name, &k)) {
            snprintf(why, cap, "unknown field '%s'", name);
            return SL_EBADREQ;
        }
        int rv = check_value(name, k, v, why, cap);
        if (rv != 0) {
            return rv;
        }
        (*nfields)++;
    }
    return 0;
}

static json_t *
parse_body(const char *body, size_t len, char *why, size_t cap)
{
    json_error_t je;
    json_t *root = len > 0 ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : json_object();
    if (root == NULL) {
        snprintf(why, cap, "body: malformed JSON at line %d column %d: %s", je.line, je.column,
                 je.text);
    } else if (!json_is_object(root)) {
        snprintf(why, cap, "body: must be a JSON object");
        json_decref(root);
        root = NULL;
    }
    return root;
}

/* A path segment of 1-16 decimal digits, not 0. */
static bool
path_u64(struct sl_str s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.n == 0 || s.n > 16) {
        return false;
    }
    for (uint32_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    *out = v;
    return v > 0;
}

int
hj_build(const struct hj_endpoint *e, const char *body, size_t len, struct sl_str arg,
         const char *token, size_t token_n, const char *idem, nng_msg *msg, char *why,
         size_t why_cap)
{
    json_t *root = parse_body(body, len, why, why_cap);
    uint32_t n = 1 + (token_n > 0) + (e->path_key != WK_OP);
    struct sl_str client = { NULL, 0 };
    uint64_t seq = 0;
    int one = -1;
    int rv = root == NULL ? SL_EBADREQ : check_fields(e, root, &n, why, why_cap);

    bool num = e->path_key != WK_OP && wire_key_type(e->path_key) == WT_U64;
    uint64_t argu = 0;
    if (rv == 0 && num && !path_u64(arg, &argu)) {
        snprintf(why, why_cap, "path: '%s' must be a whole number from 1",
                 wire_key_name(e->path_key));
        rv = SL_EBADREQ;
    }
    if (rv == 0 && e->path_key != WK_OP && !num && !wire_name_ok(arg.p, arg.n)) {
        snprintf(why, why_cap, "path: '%s' must be a name (1-128 of A-Z a-z 0-9 . _ : -)",
                 wire_key_name(e->path_key));
        rv = SL_EBADREQ;
    }
    if (rv == 0 && (e->flags & HJ_PAYLOADS) && (rv = check_payloads(root, &one, why,
                                                                    why_cap)) == 0) {
        n++;
    }
    if (rv == 0 && idem != NULL && (e->flags & HJ_IDEM)) {
        if (json_object_get(root, "client") != NULL || json_object_get(root, "seq") != NULL) {
            snprintf(why, why_cap, "header 'Idempotency-Key' and fields 'client', 'seq' "
                                   "exclude each other");
            rv = SL_EBADREQ;
        } else if ((rv = parse_idem(idem, &client, &seq, why, why_cap)) == 0) {
            n += 2;
        }
    }
    if (rv == 0) {
        msgpack_packer pk;
        const char *name;
        json_t *v;
        enum wire_key k;
        msgpack_packer_init(&pk, msg, wire_pack_into_msg);
        msgpack_pack_map(&pk, n);
        wire_pack_key(&pk, WK_OP);
        wire_pack_cstr(&pk, wire_ops[e->op].name);
        if (token_n > 0) {
            wire_pack_key(&pk, WK_TOKEN);
            wire_pack_str(&pk, token, token_n);
        }
        if (num) {
            wire_pack_key(&pk, e->path_key);
            msgpack_pack_uint64(&pk, argu);
        } else if (e->path_key != WK_OP) {
            wire_pack_key(&pk, e->path_key);
            wire_pack_str(&pk, arg.p, arg.n);
        }
        json_object_foreach (root, name, v) {
            if (field_allowed(e, name, &k)) {
                wire_pack_key(&pk, k);
                pack_value(&pk, k, v);
            }
        }
        if (client.n > 0) {
            wire_pack_key(&pk, WK_CLIENT);
            wire_pack_str(&pk, client.p, client.n);
            wire_pack_key(&pk, WK_SEQ);
            msgpack_pack_uint64(&pk, seq);
        }
        if (one >= 0) {
            rv = pack_payloads(&pk, root, one, why, why_cap);
        }
    }
    json_decref(root);
    return rv;
}

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes in[0..n) into out (n + 1 bytes); false for a bad escape or a NUL. */
static bool
url_decode(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hexval(in[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return false;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0) {
            return false;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

char *
hj_query_body(const struct hj_endpoint *e, const char *query, size_t *len, char *why,
              size_t cap)
{
    json_t *obj = json_object();
    size_t qn = strlen(query);
    char *buf = malloc(qn + 1);
    char *out = NULL;
    for (const char *p = query; obj != NULL && buf != NULL && *p != '\0';) {
        size_t n = strcspn(p, "&"), kn = strcspn(p, "=");
        enum wire_key k;
        if (kn > n) {
            kn = n;
        }
        if (!url_decode(p, kn, buf) || !field_allowed(e, buf, &k)) {
            snprintf(why, cap, "unknown query parameter '%.*s'", (int)(kn < 64 ? kn : 64), p);
            goto done;
        }
        const char *name = wire_key_name(k);
        if (kn == n || !url_decode(p + kn + 1, n - kn - 1, buf)) {
            snprintf(why, cap, "query parameter '%s' needs a value", name);
            goto done;
        }
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        json_t *val = wire_key_type(k) == WT_U64 && buf[0] >= '0' && buf[0] <= '9' && *end == '\0'
                          ? json_integer((json_int_t)v)
                          : json_string(buf);
        if (val == NULL || json_object_set_new(obj, name, val) != 0) {
            snprintf(why, cap, "query parameter '%s' is not UTF-8", name);
            goto done;
        }
        p += n + (p[n] == '&');
    }
    out = obj != NULL && buf != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (out == NULL) {
        snprintf(why, cap, "out of memory");
    }
done:
    free(buf);
    json_decref(obj);
    *len = out != NULL ? strlen(out) : 0;
    return out;
}
