/* ctl stats --watch, the data model: the broker's stats replies parsed into structs, rates and
 * the per-group sparkline computed from successive snapshots, and the groups' sort order. The
 * screen is laid out from it by watch_render.h; no terminal I/O in either (that is
 * watch_tui.c), so every part can be unit tested.
 *
 * A stats reply is external input: every field may be missing or of another type. A number
 * that is missing or not a non-negative integer is WATCH_NA and shown as "-"; a float that is
 * missing, nil or not a finite non-negative number is NaN, also "-". Text is copied with every
 * byte outside printable ASCII replaced by '?', so nothing from the broker reaches the
 * terminal as a control sequence.
 *
 * Rates (jobs/s) come from a monotonic counter of each queue and group: `dispatched` when the
 * broker sends it, else `done` (which `flush` resets: a counter that went down counts as a
 * reset, rate 0). A rate is measured over windows of at least WATCH_WINDOW_NS; each window
 * adds one sample per second to the group's sparkline ring (WATCH_SPARK_N seconds). Both start
 * empty.
 *
 * Single-threaded: one struct watch per view. */
#ifndef SLUICE_CTL_WATCH_H
#define SLUICE_CTL_WATCH_H

#include "hmap.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WATCH_NA UINT64_MAX         /* a number the reply lacked (or sent with a wrong type) */
#define WATCH_NAME_CAP 129          /* a name (at most 128 bytes) and its NUL */
#define WATCH_TEXT_CAP 161          /* other text (state, version, reason, leader): cut here */
#define WATCH_ORDER_CAP 16          /* a queue's order: cut here */
#define WATCH_SPARK_N 60            /* seconds of history in a sparkline */
#define WATCH_DECISIONS_MAX 16      /* router decisions kept from a reply */
#define WATCH_WINDOW_NS 950000000LL /* a rate's shortest window (one second, less some jitter) */

enum watch_sort {
    WATCH_SORT_BACKLOG, /* count, largest first (the default: what the router acts on) */
    WATCH_SORT_RATE,    /* jobs/s, fastest first; unknown rates last */
    WATCH_SORT_WAIT,    /* p99 wait, longest first; unknown waits last */
    WATCH_SORT_NAME,    /* name, A to Z */
};

/* A counter's rate and its history: one per queue, per group and for the broker. */
struct watch_series {
    char name[WATCH_NAME_CAP];  /* the hash map's key */
    uint32_t name_len;
    int src;                    /* which counter the base is of: 0 none yet, 1 dispatched, 2 done */
    uint64_t base;              /* its value at base_ns, the start of the current window */
    int64_t base_ns;
    double rate;                /* jobs/s over the last window; NaN before the first */
    float ring[WATCH_SPARK_N];  /* jobs/s per second, ring[(head + i) % N] oldest first */
    unsigned head, n;           /* n samples held, at most WATCH_SPARK_N */
    uint64_t gen;               /* the update that last saw it; others are dropped */
};

struct watch_worker {
    char id[WATCH_TEXT_CAP];
    char state[WATCH_TEXT_CAP];
    uint64_t pid, jobs, rss_bytes, current, uptime_s; /* current: WATCH_NA for none */
};

struct watch_queue {
    char name[WATCH_NAME_CAP];
    char order[WATCH_ORDER_CAP]; /* "groups" or "fifo"; "" when not sent */
    uint64_t priority, weight, max_inflight, ready, reserved, dead, done, dispatched;
    uint64_t groups_ready;       /* groups with ready jobs in it */
    int paused;   /* 1 paused, 0 active, -1 unknown */
    double rate;  /* jobs/s, NaN unknown */
};

struct watch_group {
    char name[WATCH_NAME_CAP];
    char route[WATCH_NAME_CAP]; /* "" when the group has none (it goes to default) */
    uint64_t count, reserved, done, dispatched;
    uint64_t cap;               /* its queue's max_inflight (0 none), WATCH_NA unknown */
    double p50_ms, p99_ms;      /* wait from push to start, NaN unknown */
    double weight;              /* its share of turns in its queue, NaN unknown */
    double share;               /* of the jobs dispatched lately, 0..1; NaN unknown or none */
    double oldest_ready_ms;     /* its oldest ready job's wait, NaN unknown or none ready */
    double rate;                /* jobs/s, NaN unknown */
    double limit;               /* its start rate (group.limit), jobs/s; NaN none or unknown */
    bool held;                  /* its start rate is spent: its ready jobs wait */
    const struct watch_series *series; /* its history, NULL when none (no memory) */
};

struct watch_decision {
    uint64_t ts_ms, moved, lease;  /* WATCH_NA when absent */
    char group[WATCH_NAME_CAP];
    char queue[WATCH_NAME_CAP];    /* "" for an unset (back to default) */
    char reason[WATCH_TEXT_CAP];   /* "" when none */
};

struct watch_broker {
    uint64_t pid, uptime_s, jobs, journal_bytes, journal_segments;
    uint64_t dispatched, reserves, reserves_empty, no_worker;
    uint64_t failed;             /* failed attempts since start, every error class */
    uint64_t unique_keys;
    char version[WATCH_TEXT_CAP];
    char journal[WATCH_TEXT_CAP];  /* "" when absent */
};

struct watch_leader {
    bool present;
    char name[WATCH_TEXT_CAP];
    uint64_t lease, expires_ms;
};

/* One reply, parsed. The arrays are owned (watch_snap_fini frees them). */
struct watch_snap {
    struct watch_broker broker;
    struct watch_leader leader;
    struct watch_worker *workers;
    struct watch_queue *queues;
    struct watch_group *groups;   /* in the view's sort order once watch_update returns */
    size_t nworkers, nqueues, ngroups;
    struct watch_decision decisions[WATCH_DECISIONS_MAX]; /* newest first */
    size_t ndecisions;
    bool has_decisions;           /* the reply carried "decisions" (else shown as absent) */
};

struct watch {
    struct watch_snap snap;       /* the last good snapshot */
    bool have_snap;
    int64_t snap_ns;              /* when it was taken (monotonic) */
    struct hmap gseries, qseries; /* name -> struct watch_series * */
    struct watch_series bseries;  /* the broker's dispatch rate */
    uint64_t gen;
    enum watch_sort sort;
    bool stale;                   /* the last request got no usable reply */
    bool unusable;                /* stale because the broker answered, but not with stats */
    int64_t stale_ns;             /* since when */
    char why[WATCH_TEXT_CAP];     /* why not */
    const char *url;              /* borrowed, for messages */
    uint64_t interval_ms;
    bool utf8;                    /* the terminal takes UTF-8: sparklines in block glyphs */
};

/* Sets w up: url (borrowed) and interval for the screen; utf8 picks the sparkline's glyphs. */
void watch_init(struct watch *w, const char *url, uint64_t interval_ms, bool utf8);
void watch_fini(struct watch *w);

/* Frees what s owns and empties it. */
void watch_snap_fini(struct watch_snap *s);

/* Parses root (a stats reply's map) taken at now_ns into a new snapshot, updates every rate
 * and sparkline, sorts the groups, and clears the stale mark. Returns 0; SL_EBADREQ (root is
 * not a map) or SL_ENOMEM, when w keeps its previous data. Borrows root. */
int watch_update(struct watch *w, const msgpack_object *root, int64_t now_ns);

/* Marks the data stale from now_ns (if not already) with the reason why (copied): the broker
 * did not answer (unreachable), or answered with something that is not a stats reply
 * (unusable). */
void watch_unreachable(struct watch *w, const char *why, int64_t now_ns);
void watch_unusable(struct watch *w, const char *why, int64_t now_ns);

/* Changes the groups' order (and re-sorts the current snapshot). */
void watch_set_sort(struct watch *w, enum watch_sort sort);

/* The sort a key selects ('b', 'r', 'w', 'n'), into *out; false for another key. */
bool watch_sort_key(int key, enum watch_sort *out);

/* The series' samples, oldest first, into out (cap at least WATCH_SPARK_N); returns how many. */
size_t watch_series_samples(const struct watch_series *s, double *out);

#endif
