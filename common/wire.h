/* The wire protocol: msgpack maps over nng, one request, one reply (PROTOCOL.md).
 *
 * Every key the protocol uses has one entry in a key table with one type, so a
 * single decoder checks every message: a request or reply decodes into a
 * struct wire_msg whose slots are views into the message body (zero-copy; strings
 * are not NUL-terminated) and live until wire_msg_fini or until the body is freed,
 * whichever is first. Unknown keys are ignored; a known key with the wrong type,
 * a truncated message, trailing bytes or an oversize string is bad_request.
 *
 * To add a key: append a WK_ constant before WK_COUNT and a row in wire.c's key
 * table; document it in PROTOCOL.md. Keys never change type. */
#ifndef SLUICE_WIRE_H
#define SLUICE_WIRE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_str {
    const char *p; /* not NUL-terminated; borrowed */
    uint32_t n;
};
#define SL_STR_LIT(lit) ((struct sl_str){ (lit), (uint32_t)(sizeof(lit) - 1) })

bool sl_str_eq(struct sl_str a, const char *z);

#define WIRE_NAME_MAX 128       /* names: 1-128 bytes of [A-Za-z0-9._:-] */
#define WIRE_STR_MAX 4096       /* free-text strings (msg, version, reason) */
#define WIRE_DEPTH_MAX 8        /* nesting of arrays and maps */
#define WIRE_FROM_MAX 16u       /* queues named in one reserve */

/* Is s a valid queue, group, worker or client name? */
bool wire_name_ok(const char *s, size_t n);

enum wire_type {
    WT_STR,   /* str, up to WIRE_STR_MAX bytes */
    WT_NAME,  /* str obeying the name rule */
    WT_U64,   /* non-negative integer */
    WT_NUM,   /* non-negative number: an integer or a finite float */
    WT_BOOL,
    WT_BLOBS, /* array of bin or str (payloads); sizes are checked by the receiver */
    WT_U64S,  /* array of non-negative integers (job ids) */
    WT_NAMES, /* array of names */
    WT_ANY,   /* any value (nested replies such as stats), checked by its reader */
};

enum wire_key {
    WK_OP, WK_OK, WK_ERR, WK_MSG,
    WK_GROUP, WK_QUEUE, WK_NAME, WK_PAYLOADS, WK_CLIENT, WK_SEQ,
    WK_PRIORITY, WK_WEIGHT, WK_MAX_INFLIGHT, WK_FORCE,
    WK_DELAY_MS, WK_TTR_MS, WK_MAX_ATTEMPTS,
    WK_N, WK_FIRST_ID, WK_DUP, WK_MOVED, WK_PURGED, WK_RESET, WK_ROUTES_RESET,
    WK_PID, WK_VERSION, WK_UPTIME_MS, WK_MAX_MESSAGE,
    WK_QUEUES, WK_ROUTES, WK_BROKER, WK_GROUPS, WK_WORKERS,
    WK_LEASE, WK_IDS, WK_WORKER, WK_MAX, WK_WAIT_MS, WK_JOBS,
    WK_FROM, WK_ACK, WK_ACKED, WK_MISSING, WK_STATE, WK_RSS_BYTES, WK_CURRENT, WK_TOTAL,
    WK_MORE, WK_ID, WK_PAYLOAD, WK_ATTEMPTS, WK_ENQ_MS,
    WK_TTL_MS, WK_LEADER, WK_REASON, WK_HIGH, WK_EVENT, WK_TS_MS,
    WK_TOKEN,
    WK_EXPECT,
    WK_STALE,
    WK_RTOK, WK_RTOK_GOT,
    WK_ORDER,
    WK_LEADER_URL,
    WK_RUN_AT_MS,
    WK_RETRY_BASE_MS, WK_RETRY_MAX_MS, WK_RETRY_JITTER,
    WK_ERRORS, WK_JOB, WK_DUPLICATE,
    WK_UNIQUE, WK_UNIQUE_TTL_MS, WK_UNIQUE_HOLD,
    WK_SCHEDULE, WK_MISSED, WK_CRON, WK_REPLACED, WK_NEXT_MS,
    WK_RATE, WK_BURST,
    WK_SORT, WK_OFFSET, WK_FILTER, /* group.list (the dashboard's pages of groups) */
    WK_COUNT
};

/* The key's name on the wire and its type. */
const char *wire_key_name(enum wire_key k);
enum wire_type wire_key_type(enum wire_key k);

/* A list value: decoded lists point at msgpack objects (o); lists built to be
 * encoded point at caller arrays (s for blobs and names, u for ids). */
struct wire_list {
    uint32_t n;
    const msgpack_object *o;
    const struct sl_str *s;
    const uint64_t *u;
};

/* Element i (< n) of a blobs or names list, or of an id list. */
struct sl_str wire_list_str(const struct wire_list *l, uint32_t i);
uint64_t wire_list_u64(const struct wire_list *l, uint32_t i);

union wire_val {
    struct sl_str s;         /* WT_STR, WT_NAME */
    uint64_t u;              /* WT_U64 */
    double d;                /* WT_NUM */
    bool b;                  /* WT_BOOL */
    struct wire_list l;      /* WT_BLOBS, WT_U64S, WT_NAMES */
    const msgpack_object *any; /* WT_ANY */
};

/* A set of keys, one bit per enum wire_key. */
#define WIRE_KEYSET_WORDS 2
struct wire_keyset {
    uint64_t w[WIRE_KEYSET_WORDS];
};

static inline bool
wire_keyset_has(const struct wire_keyset *s, unsigned k)
{
    return (s->w[k / 64] >> (k % 64)) & 1u;
}

static inline void
wire_keyset_add(struct wire_keyset *s, unsigned k)
{
    s->w[k / 64] |= UINT64_C(1) << (k % 64);
}

/* Keys in s. */
unsigned wire_keyset_count(const struct wire_keyset *s);
/* s has no key. */
bool wire_keyset_empty(const struct wire_keyset *s);

struct wire_msg {
    struct wire_keyset has;    /* the keys present */
    union wire_val v[WK_COUNT];
    msgpack_unpacked up;       /* owns the decoded object tree */
    bool decoded;
    bool keep_zone;            /* up.zone is small enough to keep for the next decode */
};

_Static_assert(WK_COUNT <= 64 * WIRE_KEYSET_WORDS, "a wire_keyset holds one bit per key");

#define WIRE_HAS(m, k) wire_keyset_has(&(m)->has, (unsigned)(k))

/* Operations: their names and the keys each requires. The broker maps them to
 * handlers; clients use the names. */
enum wire_op {
    WOP_PING, WOP_PUSH,
    WOP_QUEUE_CREATE, WOP_QUEUE_UPDATE, WOP_QUEUE_DESTROY, WOP_QUEUE_PAUSE, WOP_QUEUE_RESUME,
    WOP_QUEUE_LIST,
    WOP_ROUTE_SET, WOP_ROUTE_UNSET, WOP_ROUTE_LIST,
    WOP_STATS, WOP_FLUSH, WOP_PURGE,
    WOP_HELLO, WOP_HEARTBEAT, WOP_RESERVE, WOP_ACK, WOP_NACK, WOP_RELEASE, WOP_TOUCH,
    WOP_DEAD_LIST, WOP_DEAD_RETRY, WOP_DEAD_PURGE,
    WOP_POOL_STATUS, WOP_POOL_SCALE, /* worker-pool's control socket */
    WOP_LEASE_ACQUIRE, WOP_LEASE_RENEW, WOP_LEASE_RELEASE,
    WOP_GROUP_WEIGHT,
    WOP_CLUSTER_STATUS, WOP_CLUSTER_STEP_DOWN,
    WOP_JOB_INFO, WOP_JOB_PEEK, WOP_JOB_DELETE,
    WOP_CRON_ADD, WOP_CRON_REMOVE, WOP_CRON_LIST, WOP_CRON_PAUSE, WOP_CRON_RESUME,
    WOP_GROUP_LIMIT,
    WOP_GROUP_LIST, WOP_HISTORY, /* the dashboard's pages of groups and charts */
    WOP_COUNT
};

#define WIRE_REQUIRED_MAX 4

struct wire_op_spec {
    const char *name;
    /* keys a request must carry besides "op"; the list ends at the first WK_OP (0) */
    enum wire_key required[WIRE_REQUIRED_MAX];
};

extern const struct wire_op_spec wire_ops[WOP_COUNT];

/* The op whose name is s, or -1. */
int wire_op_find(struct sl_str s);

/* Whether op's requests must carry key k ("op" itself is not listed). */
bool wire_op_requires(enum wire_op op, enum wire_key k);

void wire_msg_init(struct wire_msg *m);
/* Frees what decoding allocated; views into it die. m may be reused after wire_msg_init. */
void wire_msg_fini(struct wire_msg *m);

/* Checks that buf[0..len) is exactly one msgpack value whose array and map counts fit the
 * bytes that follow and whose nesting is at most WIRE_DEPTH_MAX, without allocating. msgpack-c
 * allocates from declared counts before reading elements, so untrusted input must pass this
 * first. Returns 0 or SL_EBADREQ. */
int wire_check(const void *buf, size_t len);

/* The value of key in map (a MAP object; keys that are not str are passed over), or NULL,
 * also when map is NULL or not a map: a lookup into a reply unpacked by msgpack-c. */
const msgpack_object *wire_obj_get(const msgpack_object *map, const char *key);

/* Decodes one map from buf into m (initialised, empty). Views point into buf and into m.
 * On failure returns SL_EBADREQ, writes a reason into why (if why != NULL) and leaves m empty
 * (still to be finalised). */
int wire_decode(struct wire_msg *m, const void *buf, size_t len, char *why, size_t whycap);

/* For a decoded request: SL_EBADREQ (with why) if the op's required keys are missing. */
int wire_check_required(const struct wire_msg *m, enum wire_op op, char *why, size_t whycap);

/* Setters for building a message to encode. Strings and lists are borrowed until encoded. */
void wire_set_str(struct wire_msg *m, enum wire_key k, const char *p, size_t n);
void wire_set_cstr(struct wire_msg *m, enum wire_key k, const char *z);
void wire_set_u64(struct wire_msg *m, enum wire_key k, uint64_t u);
/* Sets a WT_NUM key. */
void wire_set_num(struct wire_msg *m, enum wire_key k, double d);
void wire_set_bool(struct wire_msg *m, enum wire_key k, bool b);
void wire_set_strs(struct wire_msg *m, enum wire_key k, const struct sl_str *v, uint32_t n);
void wire_set_u64s(struct wire_msg *m, enum wire_key k, const uint64_t *v, uint32_t n);

/* Packs m as a map of its present keys, in key order. Returns 0 or SL_ENOMEM. */
int wire_encode(const struct wire_msg *m, msgpack_packer *pk);

/* An upper bound of the bytes wire_encode packs for m (WT_ANY values are estimated), so a
 * sender can reserve the message once instead of growing it per field. */
size_t wire_encoded_size(const struct wire_msg *m);

/* Packing helpers for replies packed straight into a message. */
void wire_pack_key(msgpack_packer *pk, enum wire_key k);
void wire_pack_str(msgpack_packer *pk, const char *p, size_t n);
void wire_pack_cstr(msgpack_packer *pk, const char *z);
/* Starts a success reply: a map of nfields + 1 entries, the first "ok": true. */
void wire_pack_ok(msgpack_packer *pk, uint32_t nfields);
/* A whole error reply: {"ok": false, "err": code of err, "msg": msg}. */
void wire_pack_err(msgpack_packer *pk, int err, const char *msg);

/* The msgpack write callback that appends to an nng_msg (data is the nng_msg *). */
int wire_pack_into_msg(void *data, const char *buf, size_t len);

/* A packer's output gathered in a buffer and appended to an nng_msg a few KiB at a time:
 * packing a reply writes once per key and value, and an append to a message costs several
 * times what copying those few bytes does. The message holds the packed bytes only after
 * wire_out_flush: flush before anything else reads, clears or sends it. */
#define WIRE_OUT_BUF 2048
struct wire_out {
    struct nng_msg *msg;
    size_t n;                  /* bytes in buf not yet appended */
    char buf[WIRE_OUT_BUF];
};

/* Points pk at o, which gathers for msg. */
void wire_out_init(struct wire_out *o, struct nng_msg *msg, msgpack_packer *pk);
/* Appends what o gathered to its message: 0, or -1 (out of memory: those bytes are lost, as
 * an append that failed while packing would have lost them). */
int wire_out_flush(struct wire_out *o);

#endif
