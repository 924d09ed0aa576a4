/* The broker's state: queues, groups, jobs, limits, idempotency keys; and the operations
 * that change it. Every broker_* function except broker_new/broker_free must be called with
 * b->lock held (nng callbacks run on several threads); none blocks on I/O. Each either
 * succeeds or returns an SL_E* code having changed nothing. */
#ifndef SLUICE_BROKER_H
#define SLUICE_BROKER_H

#include "cron.h"
#include "decisions.h"
#include "dedup.h"
#include "events.h"
#include "group.h"
#include "hmap.h"
#include "joberr.h"
#include "history.h"
#include "jobidx.h"
#include "unique.h"
#include "job.h"
#include "lease.h"
#include "queue.h"
#include "scheduler.h"
#include "theap.h"
#include "token.h"
#include "wire.h"
#include "worker.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BROKER_DEFAULT_QUEUE "default"
#define BROKER_DEFAULT_PRIORITY 10
#define BROKER_PUSH_MAX 1000000u      /* payloads in one push */
#define BROKER_TTR_MAX_MS 86400000u   /* 24 h */
#define BROKER_ERROR_MAX 65536u       /* bytes of one error text a nack may carry */
#define BROKER_UNIQUE_TTL_MAX_MS 315360000000ull /* 3,650 days */
#define BROKER_DELAY_MAX_MS 315360000000ull /* a push's delay, or its run_at ahead: 3,650 days */
#define BROKER_RESERVE_MAX 10000u     /* jobs in one reserve */
#define BROKER_WAIT_MAX_MS 600000u    /* longest reserve wait: 10 min */
#define BROKER_CLOSED_PIPES 1024u

struct journal;
struct cluster;
struct change;
struct dbsync;

struct broker_clock {
    int64_t (*mono_ns)(void *arg);    /* monotonic: durations, timeouts, dedup window */
    int64_t (*wall_ns)(void *arg);    /* since the epoch: job timestamps */
    void *arg;
};

struct broker_cfg {
    uint64_t max_jobs;        /* jobs held in any state; beyond: queue_full */
    uint64_t max_bytes;       /* payload bytes held; beyond: queue_full */
    uint32_t max_payload;     /* one payload; beyond: too_large */
    uint64_t max_message;     /* one request, as the server takes it (said by ping) */
    uint32_t ttr_ms;          /* default reservation timeout */
    uint16_t max_attempts;    /* default attempts */
    int64_t dedup_window_ns;  /* how long a client's keys are remembered after its last push */
    uint32_t dedup_clients;   /* clients remembered at most */
    uint32_t min_share_ppm;   /* minimum share of each lower priority level, in millionths */
    uint8_t max_crashes;      /* a job whose worker died this often under it is dead */
    struct queue_retry retry; /* the retry backoff of a queue created without one */
    uint32_t max_conns;       /* connections open at once (server.c); 0: the descriptor
                                 limit less the descriptors kept for the journal */
    struct broker_clock clock; /* NULL functions: the system clocks */
    const char *const *listen; /* the addresses served (stats), nlisten of them; borrowed */
    unsigned nlisten;
    const char *pool_url;      /* worker-pool's control socket, for GET /v1/pool; borrowed */
};

/* Fills cfg with the defaults documented in the README. */
void broker_cfg_default(struct broker_cfg *cfg);

struct broker {
    pthread_mutex_t lock;
    struct broker_cfg cfg;
    struct hmap queues;              /* name -> struct queue */
    struct queue **qorder;           /* every queue by (priority, name) */
    uint32_t nqueues;
    struct sched_level *levels;      /* priority levels of qorder (scheduler.c) */
    struct sched_level *levels_spare; /* as large as levels, for sched_rebuild */
    uint32_t nlevels;
    struct hmap workers;             /* name -> struct worker */
    struct worker *workers_head, *workers_tail; /* registration order */
    uint32_t nworkers;
    int64_t idle_swept_ns;      /* monotonic: last look for idle connectionless workers */
    struct jobidx ids;               /* every job held, by id */
    struct unique uniq;              /* pushes' unique keys (unique.h) */
    struct theap timers;             /* delayed jobs and reservation deadlines */
    struct waiter *waiters_head, *waiters_tail; /* parked reserves, oldest first (park.c) */
    uint32_t nwaiters;
    struct group_rate *rate_held;    /* groups held back by their start rate (grate.c) */
    pthread_cond_t timer_cond;       /* wakes the timer thread (park.c) */
    int64_t timer_next_ns;           /* when the timer thread will next wake, monotonic */
    uint64_t rng;                    /* retry jitter (flow.c): xorshift state, never 0 */
    int64_t serve_after_ns;          /* park.c: parked reserves are served no earlier (0: any
                                        time) */
    bool stopping;                   /* the timer thread exits */
    bool timer_sending;              /* the timer thread sends replies it took off the list */
    pthread_cond_t timer_sent;       /* timer_sending went false */
    struct job **scratch;            /* BROKER_RESERVE_MAX slots for reserve results (lock held) */
    struct hmap closed_pipes;        /* the last BROKER_CLOSED_PIPES closed connections: a request
                                        handled after its connection closed registers nothing */
    uint32_t closed_ring[BROKER_CLOSED_PIPES]; /* their ids; the map's keys point here */
    uint32_t closed_next;
    struct lease lease;              /* the router's lease */
    struct events *events;           /* the event stream; NULL: none (set by main) */
    struct journal *jr;              /* the journal; NULL: memory only (journal.c) */
    struct cluster *cluster;         /* set with --cluster (cluster.h) */
    bool standby;                    /* a cluster standby: state comes from the stream only */
    bool replaying;                  /* journal records are being applied (replay, a standby):
                                        what changes is history, fed to no consumer */
    /* A consumer of the change path (change.h) for embedding and tests; NULL: none. */
    void (*change_hook)(const struct change *c, void *arg);
    void *change_arg;
    const struct wire_msg *origin;   /* the request whose handler is changing the state now,
                                        borrowed for the call (NULL: none); what the change
                                        path's consumers report carries its op and reason */
    struct dbsync *db;               /* the MySQL database kept in step; NULL: none (dbsync.c) */
    struct queue *dflt;              /* the default queue; always exists */
    struct hmap groups;              /* name -> struct group */
    struct group *groups_head, *groups_tail; /* first-seen order */
    struct dedup *dedup;
    uint64_t next_id;                /* the next job id; ids start at 1 */
    uint64_t jobs;                   /* jobs held, all states */
    uint64_t bytes;                  /* their payload bytes */
    uint64_t mem_bytes;              /* bytes of the job blocks holding them */
    int64_t started_ns;              /* monotonic */
    struct token token;              /* every request must carry it (n == 0: none is asked
                                        for); set by main before serving, then read-only, so
                                        read without the lock */
    struct {
        uint64_t calls[WOP_COUNT];
        uint64_t errors[WOP_COUNT];
        uint64_t bad_requests;       /* undecodable messages, unknown ops, missing fields */
        uint64_t unauthorized;       /* requests refused for a missing or wrong token */
    } opc;                           /* the dispatcher's counters */
    struct {                         /* since start, never reset */
        uint64_t reserves;           /* reserve requests answered (at once or after parking) */
        uint64_t reserves_empty;     /* of those, answered with no job */
        uint64_t dispatched;         /* jobs handed out by reserve */
        uint64_t no_worker;          /* pushed jobs no parked reserve took at once */
        uint64_t pushed, done, failed; /* jobs pushed, acked, failed attempts (the groups'
                                        *_all summed; changed where those are) */
        uint64_t errors[JERR_CLASSES]; /* failed attempts by the class of their error */
    } flowc;
    struct wait_window dispatch_win; /* every dispatched job's wait, in the window the groups'
                                        windows use: their share of the dispatches */
    struct {                         /* client connections (server.c) */
        uint64_t open;               /* open now */
        uint64_t dropped;            /* since start: closed for not reading their replies */
        uint64_t refused;            /* since start: closed at once, too many were open */
    } connc;
    struct decisions decisions;      /* the last route changes (fed by change.c) */
    struct cron_tab cron;            /* recurring jobs (cron.c) */
    struct history hist;             /* flowc's totals per second, for the dashboard's charts
                                        (history.h); sampled by ops_handle */
};

/* A new broker holding only the empty default queue. Returns 0 or SL_ENOMEM. */
int broker_new(struct broker **bp, const struct broker_cfg *cfg);
/* Frees every job, queue and group. broker_free(NULL) does nothing. */
void broker_free(struct broker *b);

int64_t broker_mono_ns(const struct broker *b);
int64_t broker_wall_ns(const struct broker *b);

/* Deletes j (acked, purged): made as a change (CH_JOB_GONE), then freed with the totals kept
 * exact. */
void broker_release_job(struct broker *b, struct job *j);

struct queue *broker_queue_find(const struct broker *b, struct sl_str name);
struct group *broker_group_find(const struct broker *b, struct sl_str name);
/* A new group named name, last of the broker's groups (NULL without memory); and the removal
 * of a group that holds no job and has no route. b->lock held. */
struct group *broker_group_add(struct broker *b, struct sl_str name);
void broker_group_remove(struct broker *b, struct group *g);

/* The timer thread (park.c) wakes at due_ns (monotonic) at the latest. b->lock held. */
void broker_timer_wake(struct broker *b, int64_t due_ns);

struct push_req {
    struct sl_str group;
    const struct sl_str *queue;       /* NULL: the group's route, else default */
    const struct wire_list *payloads; /* 1..BROKER_PUSH_MAX */
    uint32_t ttr_ms;                  /* 0: the default */
    uint16_t max_attempts;            /* 0: the default */
    bool keyed;                       /* client and seq given */
    struct sl_str client;
    uint64_t seq;
    uint64_t delay_ms;                /* > 0: delayed this long (up to BROKER_DELAY_MAX_MS) */
    int64_t due_wall_ms;              /* > 0: delayed until then (wall clock, ms since the
                                         epoch, at most BROKER_DELAY_MAX_MS ahead); a time
                                         already past makes the jobs ready. Not with delay_ms */
    struct sl_str unique;             /* n > 0: the job's unique key (a push of one job) */
    uint64_t unique_ttl_ms;           /* 0: none */
    uint8_t unique_hold;              /* enum unique_hold */
    const struct cron_fire *cron;     /* non-NULL: the push fires this cron instant, and is
                                         journaled with it (cron.h) */
};

struct push_res {
    uint64_t first_id;                /* 0 when stale */
    uint32_t n;                       /* 0 when stale */
    const struct queue *queue;        /* NULL on dup */
    bool dup;                         /* the key was stored before: nothing stored now */
    bool stale;                       /* dup whose first answer is forgotten */
    uint64_t lsn;                     /* dup, duplicate: the journal position the answer to
                                         the push that stored the jobs waited for, which
                                         this answer must wait for too (0: none); stored:
                                         the position this push's answer waits for */
    struct job *first;                /* stored: the first new job, the others after it by
                                         job_block_next (until anything else changes) */
    bool duplicate;                   /* its unique key is held by job first_id: nothing
                                         stored (n 0) */
};

/* Stores a batch of jobs, all or nothing, ready or (delay_ms, due_wall_ms) delayed; a keyed
 * push whose key was stored before stores nothing and answers res->dup, with the first answer
 * (or res->stale). Errors: SL_EBADREQ (empty batch, bad ttr, attempts or delay), SL_ENOTFOUND (queue), SL_ETOOLARGE, SL_EQUEUEFULL,
 * SL_ENOMEM. */
int broker_push(struct broker *b, const struct push_req *req, struct push_res *res);

struct queue_settings {
    bool has_priority, has_weight, has_max_inflight;
    uint32_t priority, weight, max_inflight;
    bool has_order;
    enum queue_order order;
    bool has_retry_base, has_retry_max, has_retry_jitter;
    struct queue_retry retry;
};

/* SL_EBADREQ if a setting given is out of range, else 0. Needs no lock. */
int broker_queue_settings_check(const struct queue_settings *s);

/* Errors: SL_EEXISTS, SL_EBADREQ (a setting out of range), SL_ENOMEM. */
int broker_queue_create(struct broker *b, struct sl_str name, const struct queue_settings *s);
/* Errors: SL_ENOTFOUND, SL_EBADREQ. */
int broker_queue_update(struct broker *b, struct sl_str name, const struct queue_settings *s);
/* Errors: SL_ENOTFOUND, SL_EFORBIDDEN (default), SL_ENOTEMPTY (jobs and !force). */
int broker_queue_destroy(struct broker *b, struct sl_str name, bool force, uint64_t *moved,
                         uint64_t *routes_reset);
/* Errors: SL_ENOTFOUND. Idempotent. */
int broker_queue_pause(struct broker *b, struct sl_str name, bool paused);

/* Sets group's weight in thousandths (GROUP_WEIGHT_MIN..GROUP_WEIGHT_MAX), creating the
 * group if needed; journaled. Errors: SL_EBADREQ (out of range), SL_ENOMEM. */
int broker_group_weight(struct broker *b, struct sl_str group, uint32_t weight);

/* Routes group to queue (queue NULL or "default": no route), moving its ready jobs from its
 * previous route queue. Creates the group if needed. Errors: SL_ENOTFOUND (queue),
 * SL_ENOMEM. */
int broker_route_set(struct broker *b, struct sl_str group, const struct sl_str *queue,
                     uint64_t *moved);

/* Whether group's route is expect ("" or "default": no route; a group the broker does not
 * know has none), so that a change decided on an earlier view of the routes is made only if
 * that view still holds (route.set's and route.unset's `expect`). Returns 0, or SL_ECONFLICT
 * when the route is another one. */
int broker_route_expect(const struct broker *b, struct sl_str group, struct sl_str expect);

/* Routes back to default, statistics reset, empty unrouted groups forgotten. */
void broker_flush(struct broker *b, uint64_t *routes_reset, uint64_t *reset);

/* A job as the journal recorded it in full, for replay. */
struct job_restore {
    uint64_t id;
    struct sl_str group, queue, payload;
    uint32_t ttr_ms;
    uint16_t max_attempts, attempts;
    uint8_t crashes, state;          /* state: JOB_READY..JOB_DEAD */
    int64_t enq_ns;                  /* wall clock */
    int64_t due_ns;                  /* JOB_DELAYED: monotonic */
};

/* Recreates a job (its queue gone: in default; its group created if needed), outside every
 * limit: it was accepted once. *out is the job. Errors: SL_ENOMEM. */
/* Sets j's last error (class cls, at at_ms wall clock, text shortened as joberr.h says),
 * replacing the one it had, and counts it by class (not when replaying). 0 or SL_ENOMEM (j
 * keeps its old error). */
int broker_job_error(struct broker *b, struct job *j, enum joberr_class cls, int64_t at_ms,
                     struct sl_str text);

int broker_restore_job(struct broker *b, const struct job_restore *r, struct job **out);

/* Deletes ready jobs of queue and/or group (at least one non-NULL). Errors: SL_EBADREQ,
 * SL_ENOTFOUND. */
int broker_purge(struct broker *b, const struct sl_str *queue, const struct sl_str *group,
                 uint64_t *purged);

#endif
