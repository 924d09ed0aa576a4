/* ctl: what its files share. main.c holds the command table, option parsing and dispatch; each
 * command lives in the file of its concern (push.c; stats.c; admin.c: queues, routes, group
 * weights, flush, purge, ping; setup.c: migrate, configure) behind cmd_fn; this module (ctl.c)
 * owns one run's connection to the broker, the last reply, and the messages and exit codes of
 * failures that every command shares.
 *
 * Single-threaded: one struct ctl per run, passed to every function. */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include "client.h"
#include "opt.h"
#include "rundir.h"
#include "token.h"
#include "wire.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes: the same for every command. */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILED = 1,      /* the broker (or the database) refused, its reply was unusable,
                                 local I/O failed, or a check of configure failed */
    CTL_EXIT_USAGE = 2,       /* bad command line; nothing was sent */
    CTL_EXIT_UNREACHABLE = 3, /* no connection, or no reply, within --timeout; for migrate, no
                                 connection to the database, or its login refused */
};

/* ctl's option ids: indexes into struct opt_vals after the common ones, unique across every
 * command's table, so one opt_vals holds the global and the command's options. */
enum {
    CTL_OPT_TIMEOUT = OPT_COMMON_END,
    CTL_OPT_COUNT,
    CTL_OPT_QUEUE,
    CTL_OPT_GROUP,
    CTL_OPT_BATCH,
    CTL_OPT_TTR,
    CTL_OPT_MAX_ATTEMPTS,
    CTL_OPT_DELAY,
    CTL_OPT_AT,
    CTL_OPT_FILE,
    CTL_OPT_JSON,
    CTL_OPT_PRIORITY,
    CTL_OPT_WEIGHT,
    CTL_OPT_MAX_INFLIGHT,
    CTL_OPT_RETRY_BASE,
    CTL_OPT_RETRY_MAX,
    CTL_OPT_RETRY_JITTER,
    CTL_OPT_FORCE,
    CTL_OPT_MAX,
    CTL_OPT_POOL_URL,
    CTL_OPT_EVENTS_URL,
    CTL_OPT_DB,
    CTL_OPT_WATCH,
    CTL_OPT_INTERVAL,
    CTL_OPT_PLAIN,
    CTL_OPT_CLIENT,
    CTL_OPT_SEQ,
    CTL_OPT_ORDER,
    CTL_OPT_STATE,
    CTL_OPT_UNIQUE,
    CTL_OPT_UNIQUE_TTL,
    CTL_OPT_UNIQUE_HOLD,
    CTL_OPT_MISSED,
    CTL_OPT_RATE,
    CTL_OPT_BURST,
    CTL_OPT_NONE,
    CTL_OPT_SORT,
    CTL_OPT_FILTER,
    CTL_OPT_OFFSET,
    CTL_OPT_END
};

_Static_assert(CTL_OPT_END <= OPT_MAX, "ctl's option ids index struct opt_vals");

#define CTL_TIMEOUT_MS_DEFAULT 2000

struct ctl {
    const char *cmd;          /* the command's words ("queues create"), for messages */
    const char *usage;        /* its usage line, for usage errors */
    const char *url;          /* the server's address: borrowed (argv, environment) or url_buf */
    const char *peer;         /* who url names, for messages: "the broker" or "worker-pool" */
    char url_buf[RUNDIR_MAX + 32];
    char dir[RUNDIR_MAX];     /* the runtime directory url_buf is in; "" for a url given */
    const char *sock;         /* the socket's name in dir */
    uint64_t timeout_ms;      /* limit on connecting, and on waiting for each reply */
    struct client *cl;        /* NULL until the first request connects */
    struct wire_msg rep;      /* the last reply; its views live until the next request */
    const char *op;           /* the last request's op, for messages */
    struct token token;       /* --token-file's token, carried by every request; n == 0: none */
};

/* A command: argv[0..argc) are its arguments (after the command words, options removed); ov holds
 * the global and the command's options. Returns an exit code; on failure the message is already
 * printed. */
typedef int cmd_fn(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov);

/* Sets ctl up for the command cmd (usage: its usage line; both static strings). url NULL means
 * the default, ipc://RUNDIR/broker.ipc. Connects nothing. Returns 0, or CTL_EXIT_USAGE (printed)
 * when the default address cannot be formed. */
int ctl_init(struct ctl *ctl, const char *cmd, const char *usage, const char *url,
             uint64_t timeout_ms);

/* Whether the default address may be used: its runtime directory and socket pass
 * rundir_client_url (mine, no access for others). Checked just before connecting rather than
 * in ctl_init, so that configure can report a refused directory as one of its checks. An
 * address the user gave is not checked. Returns 0, or CTL_EXIT_USAGE (printed, naming the
 * path, its owner and mode). */
int ctl_trust(struct ctl *ctl);
void ctl_fini(struct ctl *ctl);

/* Makes worker-pool's control socket the server of this run instead of the broker: url, or
 * NULL for the default ipc://RUNDIR/pool.ipc. Call before the first request. Returns 0, or
 * CTL_EXIT_USAGE (printed) when the default address cannot be formed. */
int ctl_use_pool(struct ctl *ctl, const char *url);

/* Connects if not yet connected, waiting up to timeout_ms. Returns 0 or an exit code (printed):
 * CTL_EXIT_UNREACHABLE ("cannot reach the broker at URL"), CTL_EXIT_USAGE (an invalid URL). */
int ctl_connect(struct ctl *ctl);

/* Sends req (op set here) and waits for the reply, connecting first if needed. Returns 0 when
 * the broker answered ok (the reply is in ctl->rep until the next request); else an exit code,
 * printed: CTL_EXIT_FAILED for a refusal ("ctl: ERR: MSG"), an undecodable reply or no memory,
 * CTL_EXIT_UNREACHABLE for a timeout or a lost connection. Blocks up to twice timeout_ms
 * (connect, then the reply). */
int ctl_call(struct ctl *ctl, const char *op, struct wire_msg *req);

/* As ctl_call for a request the caller encoded (op names it in messages). Takes req in every
 * case. */
struct nng_msg;
int ctl_call_msg(struct ctl *ctl, const char *op, struct nng_msg *req);

/* Prints "ctl CMD: message" and the command's usage line to stderr; returns CTL_EXIT_USAGE. */
int ctl_usage(const struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "ctl: unexpected reply to OP from URL: message" to stderr; returns CTL_EXIT_FAILED. */
int ctl_bad_reply(const struct ctl *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Checks that s is a valid name (what: "group", "queue", ... for the message). Returns 0 or
 * CTL_EXIT_USAGE (printed). */
int ctl_check_name(const struct ctl *ctl, const char *what, const char *s);

/* The last reply's field k (a uint key), into *out. Returns 0, or CTL_EXIT_FAILED (printed)
 * when the reply lacks it. */
int ctl_reply_u64(const struct ctl *ctl, enum wire_key k, uint64_t *out);

/* The last reply's nested field k (an any-typed key) when it has the given type. Returns 0, or
 * CTL_EXIT_FAILED (printed) when it is missing or of another type. */
int ctl_reply_obj(const struct ctl *ctl, enum wire_key k, msgpack_object_type type,
                  const msgpack_object **out);

/* Prints the last reply, every key the broker sent but "ok", as one JSON document and a newline
 * to stdout (json.h tells how msgpack maps to JSON). Returns 0 or CTL_EXIT_FAILED (stdout
 * failed, printed). */
int ctl_print_reply_json(const struct ctl *ctl);

/* The value of key in map (a MAP object with str keys), or NULL: a lookup into a reply. */
const msgpack_object *ctl_map_get(const msgpack_object *map, const char *key);

/* A duration in microseconds as text, into out: "1d 02h 03m", "3h 04m 05s", "5m 06s",
 * "7.089 s", "12.3 ms" or "0.123 ms". */
void ctl_fmt_duration_us(char *out, size_t cap, uint64_t us);

/* "512 B", "1.5 KiB", "3.2 MiB", ... into out. */
void ctl_fmt_bytes(char *out, size_t cap, uint64_t bytes);

/* Commands (push.c, stats.c, admin.c, workers.c, dead.c, events.c, setup.c). */
cmd_fn cmd_push;
cmd_fn cmd_job_info, cmd_job_delete, cmd_peek; /* job.c */
cmd_fn cmd_stats;
cmd_fn cmd_metrics;
cmd_fn cmd_queue_list;
cmd_fn cmd_queue_create;
cmd_fn cmd_queue_update;
cmd_fn cmd_queue_destroy;
cmd_fn cmd_queue_pause;
cmd_fn cmd_queue_resume;
cmd_fn cmd_route_list;
cmd_fn cmd_route_set;
cmd_fn cmd_route_unset;
cmd_fn cmd_group_weight;
cmd_fn cmd_group_list;   /* groups list (groups.c) */
cmd_fn cmd_group_limit;    /* groups limit (admin.c) */
cmd_fn cmd_flush;
cmd_fn cmd_purge;
cmd_fn cmd_ping;
cmd_fn cmd_cluster_status;     /* cluster.c */
cmd_fn cmd_cluster_step_down;
cmd_fn cmd_workers;
cmd_fn cmd_scale;
cmd_fn cmd_dead_list;
cmd_fn cmd_dead_retry;
cmd_fn cmd_dead_purge;
cmd_fn cmd_events;
cmd_fn cmd_migrate;
cmd_fn cmd_configure;
cmd_fn cmd_cron_add;           /* cron.c */
cmd_fn cmd_cron_list;
cmd_fn cmd_cron_remove;
cmd_fn cmd_cron_pause;
cmd_fn cmd_cron_resume;

/* ctl stats --watch (watch_tui.c): the live view, refreshed every interval_ms, full screen on
 * a terminal, else (or with plain) a text snapshot each interval, until q (on the screen),
 * SIGINT or SIGTERM. The broker being unreachable is shown, not fatal. Returns 0, or an exit
 * code (printed): CTL_EXIT_USAGE for an invalid --url, CTL_EXIT_FAILED when the terminal cannot
 * be driven or stdout fails. Blocks until then; restores the terminal on every path. */
int watch_tui_run(struct ctl *ctl, uint64_t interval_ms, bool plain);

/* ctl events' options (events.c). */
extern const struct opt events_opts[];

/* How a column of a reply table shows its field (stats.c). */
enum stats_show {
    STATS_SHOW_TEXT,   /* str */
    STATS_SHOW_U64,    /* non-negative integer */
    STATS_SHOW_CAP,    /* non-negative integer; 0 (no cap, none) as "-" */
    STATS_SHOW_BYTES,  /* non-negative integer, as 1.5 MiB */
    STATS_SHOW_PAUSED, /* bool: paused or active */
    STATS_SHOW_ROUTE,  /* str, or nil (no route) as "-" */
    STATS_SHOW_ANY,    /* any value: nil as "-", strings and numbers as they are, the rest as JSON */
    STATS_SHOW_SECS,   /* non-negative integer of seconds, as 42s or 3m 04s */
    STATS_SHOW_MS,     /* non-negative integer of milliseconds, as 1.234 s; 0 as "-" */
    STATS_SHOW_NUM,    /* non-negative number, integer or float: 4, 0.25 */
    STATS_SHOW_SHARE,  /* float 0..1 (or integer 0 or 1) as a percentage, 12.5%; nil as "-" */
    STATS_SHOW_AGE,    /* non-negative integer of milliseconds, as 1.234 s (0 too); nil as "-" */
    STATS_SHOW_TIME,   /* milliseconds since the epoch, as RFC 3339 UTC; nil as "-" */
    STATS_SHOW_RATE,   /* non-negative number of jobs per second, as 20/s, 0.5/s; nil as "-" */
    STATS_SHOW_U64_NIL, /* non-negative integer; nil as "-" */
};

/* A column of a table printed from an array of maps. */
struct stats_col {
    const char *key;   /* field of each map */
    const char *title;
    enum stats_show show;
    bool required;     /* a map without it is a bad reply; else shown as "-" */
};

/* Prints "WHERE (n):" and a table of arr (an array of maps, one row each) to stdout, or
 * "WHERE: none". Every row is checked before anything is printed. Returns 0, or
 * CTL_EXIT_FAILED (printed) when an entry is not a map, lacks a required field or has one of
 * the wrong type. */
int stats_print_rows(const struct ctl *ctl, const char *where, const struct stats_col *cols,
                     size_t ncols, const msgpack_object *arr);

/* Prints the queue table of queues (an array of queue maps, as in stats and queue.list) to
 * stdout. Returns 0, or CTL_EXIT_FAILED (printed) when an entry lacks a field or has a wrong
 * type. stats.c. */
int stats_print_queues(const struct ctl *ctl, const char *where, const msgpack_object *queues);

#endif
