/* The worker API's insides, shared by wapi.c (the jobs: reserve, hand out, settle) and
 * wapi_conn.c (the session with the broker: requests and replies, registration, the
 * heartbeat thread, outages). Not a public header: wapi.h is the contract. */
#ifndef SLUICE_WAPI_INT_H
#define SLUICE_WAPI_INT_H

#include "wapi.h"

#include "mpr.h"
#include "spreq.h"
#include "token.h"
#include "urllist.h"
#include "wire.h"

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define URL_MAX 512
#define WAIT_MS_MAX 600000u        /* the broker's longest reserve wait */
#define NACK_DELAY_MAX_MS 86400000u
#define REPLY_MARGIN_MS 10000u     /* a reply this late after its wait: the broker is stuck */
#define SETTLE_TIMEOUT_MS 5000u    /* ack, nack, release, hello */
#define HEARTBEAT_MS 1000u         /* report at least this often */
#define HEARTBEAT_TIMEOUT_MS 2000u
#define UNREACHABLE_MS 1000u       /* no connection for this long at a request: an outage */
#define BACKOFF_MIN_MS 50u
#define BACKOFF_MAX_MS 1000u
#define SLICE_MS 100u              /* waits look at *cfg.stop this often */

#define KEY_IS(k, lit) ((k).n == sizeof(lit) - 1 && memcmp((k).p, (lit), sizeof(lit) - 1) == 0)

enum wstate { WS_IDLE, WS_BUSY, WS_DRAINING };

struct wapi {
    struct spreq *conn;         /* the connection: the caller's requests and the heartbeat's */
    nng_thread *hb_thr;

    nng_mtx *mtx;               /* guards the fields marked (mtx) */
    nng_cv *cv;                 /* any of them changed */
    bool closing;               /* (mtx) the heartbeat thread must exit */
    bool waiting;               /* (mtx) the caller waits for a reply: the heartbeat thread
                                   watches */
    uint64_t wait_start_ms;     /* (mtx) when that wait started */
    uint32_t conn_num;          /* the connection the caller's last reply came on */
    uint32_t batch_conn;        /* the connection the batch came on: its jobs are void once it
                                   closes (the broker took them back) */
    uint64_t marked;            /* (mtx) the job the broker was last told this worker runs: the
                                   one it charges a crash (0: none) */

    char name[WIRE_NAME_MAX + 1];
    uint32_t name_len;
    char url[URL_MAX];          /* (mtx) the broker asked now */
    struct urllist list;        /* every broker given (a cluster's) */
    uint64_t pid;
    uint32_t prefetch, wait_ms, ack_delay_ms;
    uint64_t max_jobs, taken;   /* taken: jobs handed out */
    struct sl_str from[WIRE_FROM_MAX];
    char from_buf[WIRE_FROM_MAX][WIRE_NAME_MAX];
    uint32_t nfrom;
    const volatile sig_atomic_t *stop;
    wapi_tick_fn *tick;
    void *tick_arg;
    struct token token;         /* attached to every request; n == 0: none */

    /* The batch: the reply of the last reserve, whose jobs are handed out in place. */
    nng_msg *batch;
    struct mpr cur;             /* at the next job map */
    uint32_t left;              /* jobs of the batch not handed out */
    bool busy;                  /* the last reserve brought jobs: the next one reports busy */
    atomic_uint_fast64_t tick_ms; /* when cfg.tick was last called */
    uint64_t handout_ms;        /* when the last job was handed out */

    /* Settlements waiting to be sent; capacity cap each. */
    uint64_t *acks, *nacks, *ids; /* ids: scratch for release_all */
    uint32_t cap, ack_n, nack_n;
    uint64_t ack_since_ms, nack_since_ms;
    uint32_t nack_delay_ms;     /* the delay shared by the pending nacks */
    bool settled;               /* wapi_settle ran: nothing more is handed out or sent */
    uint64_t rtok, rtok_got;    /* token of the last reserve sent, and of the last one whose
                                   reply arrived (PROTOCOL.md, rtok) */

    /* Reported to the broker; read by the heartbeat thread. */
    atomic_uint_fast64_t state; /* enum wstate */
    atomic_uint_fast64_t current; /* the job handed out last and not settled; 0: none */
    atomic_uint_fast64_t rss_bytes;
    atomic_uint_fast64_t reported_ms; /* last report the broker answered */

    /* Outages. */
    atomic_uint_fast64_t down_since_ms; /* 0: the broker is reachable (as far as we know) */
    uint32_t down_tries;        /* requests that failed in this outage */
    uint32_t backoff_ms;
    atomic_bool need_hello;     /* register (again) before the next reserve */
    bool contacted;             /* a hello was answered once */
    uint64_t broker_pid;
    uint32_t bad_replies;       /* in a row: log the first only */
};

/* What a reply says, read in place. */
struct reply {
    bool has_ok, ok;
    struct sl_str err, msg;
    bool has_jobs;
    struct mpr jobs;            /* at the first job map */
    uint32_t njobs;
    uint64_t pid;
};

/* --- wapi_conn.c ---------------------------------------------------------------------------- */

/* Reads cfg into w (name, broker URLs, prefetch, waits, queues); 0 or SL_EBADREQ, logged. */
int wapi_configure(struct wapi *w, const struct wapi_cfg *cfg);
/* The heartbeat thread (nng_thread_create's function); runs until w->closing. */
void wapi_hb_main(void *arg);

/* The program is stopping (*cfg.stop set). */
bool wapi_stopping(const struct wapi *w);
/* This process's resident set, bytes (0: unknown). */
uint64_t wapi_read_rss(void);
/* Calls cfg.tick and notes when. */
void wapi_tick(struct wapi *w, uint64_t now);

/* A request for n bytes or so, its packer in *pk (NULL: no memory). */
nng_msg *wapi_msg_new(size_t size, msgpack_packer *pk);
void wapi_kv_u64(msgpack_packer *pk, enum wire_key k, uint64_t v);
void wapi_kv_str(msgpack_packer *pk, enum wire_key k, const char *p, size_t n);
/* ids[0..n) as an array, last first if reverse. */
void wapi_kv_ids(msgpack_packer *pk, enum wire_key k, const uint64_t *ids, uint32_t n,
                 bool reverse);
/* The four fields a worker reports: pid, state, rss_bytes, current. */
void wapi_pack_report(struct wapi *w, msgpack_packer *pk, uint64_t current);

/* Sends req (taken in every case) and waits up to timeout_ms for the reply, *rep the caller's
 * to free: 0, or SL_EUNREACHABLE with *why (see wapi_conn.c for dialling and redirects). */
int wapi_call(struct wapi *w, nng_msg *req, nng_msg **rep, uint64_t timeout_ms,
              bool may_abandon, const char **why);
/* A request of the caller's failed for want of the broker: counted, an outage logged once. */
void wapi_failed(struct wapi *w, const char *op, const char *error);
/* The broker answered: the next backoff starts from its minimum. */
void wapi_answered(struct wapi *w);
/* Waits before trying again: 50 ms doubling to 1 s; returns early when the program stops. */
void wapi_backoff(struct wapi *w);

/* Reads a reply in place; SL_EBADREQ (with *why) unless it is a map with a boolean "ok". */
int wapi_parse_reply(const nng_msg *m, struct reply *r, const char **why);
/* For an ok:false reply: the error code its "err" names (SL_EINTERNAL if none). */
int wapi_reply_err(const struct reply *r);
void wapi_log_refused(struct wapi *w, const char *op, const struct reply *r);

/* Registers the worker (first contact, after every outage): 0 once the broker answered,
 * SL_EUNREACHABLE or SL_ENOMEM otherwise. */
int wapi_hello(struct wapi *w);

#endif
