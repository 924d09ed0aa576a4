/* Handlers: what `worker --handler H` runs for each job. One variant per file behind this
 * interface (handler_noop.c, handler_sleep.c, handler_exec.c, handler_pipe.c); handler.c maps
 * the spec's name to its variant and holds the calls every variant shares.
 *
 * A handler runs one job at a time on the worker's thread and tells how it ended: done (ack),
 * failed (nack, with an optional delay) or stopped unfinished (release: the worker is
 * stopping and the drain deadline passed). While a job runs the handler polls the worker's
 * signal pipe (wsig_fd) next to its own fds, so a stop is seen at once and the deadline kept;
 * a child it started is killed (its whole process group) at the deadline. */
#ifndef SLUICE_HANDLER_H
#define SLUICE_HANDLER_H

#include "wapi.h"
#include "wsig.h"

#include <stddef.h>
#include <stdint.h>

enum handler_verdict {
    HANDLER_ACK,     /* done */
    HANDLER_NACK,    /* failed: ready again after delay_ms, or dead when out of attempts */
    HANDLER_RELEASE, /* not finished because the worker stops: back to the head of its queue */
};

#define HANDLER_ERROR_MAX 1280u

struct handler_result {
    enum handler_verdict verdict;
    uint32_t delay_ms;          /* HANDLER_NACK only */
    char error[HANDLER_ERROR_MAX]; /* HANDLER_NACK: why, kept as the job's last error */
    size_t error_len;           /* 0: no reason given */
};

/* Sets res's error to the formatted text (cut at HANDLER_ERROR_MAX). */
void handler_error(struct handler_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What the worker lends its handler, for the handler's lifetime. */
struct handler_env {
    struct wsig *sig;           /* stop requests and the drain deadline */
    char *const *environ;       /* the worker's environment, passed on to children */
};

struct handler;

/* Parses the part of the spec after "NAME:" (NULL for a bare "NAME") and makes the handler,
 * starting what it needs. Returns 0; SL_EBADREQ for a bad argument, with the reason in err
 * (a usage error); SL_EIO or SL_ENOMEM when it cannot start (logged). */
typedef int handler_new_fn(const char *arg, const struct handler_env *env, struct handler **hp,
                           char *err, size_t errcap);
/* Runs one job; blocks until it ends or the drain deadline passes. Never fails: a failure of
 * the handler's own machinery is a nack of the job, logged. job's views are borrowed. */
typedef void handler_run_fn(struct handler *h, const struct wapi_job *job,
                            struct handler_result *res);
/* Stops what the handler started (a child gets EOF on stdin, then a kill after a grace
 * period) and frees it. */
typedef void handler_free_fn(struct handler *h);

struct handler_ops {
    const char *name;           /* the spec's name: "noop", "sleep", "exec", "pipe" */
    bool takes_arg;             /* "NAME:ARG" (required), else the bare "NAME" */
    handler_new_fn *make;
    handler_run_fn *run;
    handler_free_fn *destroy;
};

/* Every variant's state starts with this. */
struct handler {
    const struct handler_ops *ops;
};

extern const struct handler_ops handler_noop_ops, handler_sleep_ops, handler_exec_ops,
    handler_pipe_ops;

/* Makes the handler named by spec: "noop", "sleep:MIN-MAX" (or "sleep:MS"), "exec:CMD",
 * "pipe:CMD". Returns as handler_new_fn, SL_EBADREQ also for an unknown name. */
int handler_new(struct handler **hp, const char *spec, const struct handler_env *env, char *err,
                size_t errcap);

/* Runs job on h (see handler_run_fn). */
void handler_run(struct handler *h, const struct wapi_job *job, struct handler_result *res);

/* Frees h (see handler_free_fn); handler_free(NULL) does nothing. */
void handler_free(struct handler *h);

#endif
