/* The worker's signals and its stop deadline.
 *
 * SIGTERM and SIGINT ask the worker to drain: take no more jobs, let the running one finish
 * until the drain deadline (--drain-timeout after the signal), then stop it. SIGCHLD tells a
 * handler that its child may have exited. The signal handlers only set wsig_stop_flag and
 * write a byte to a self-pipe; whoever waits polls the pipe's read end (wsig_fd) next to its
 * own fds and calls wsig_update when it is readable. A struct wsig made without signal
 * handlers (for tests) is driven with wsig_stop. One thread uses a struct wsig. */
#ifndef SLUICE_WSIG_H
#define SLUICE_WSIG_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Non-zero once SIGTERM or SIGINT arrived (set by the handler; give it to wapi_cfg.stop). */
extern volatile sig_atomic_t wsig_stop_flag;

/* Called once, on the thread that notes the stop (wsig_update or wsig_stop). */
typedef void wsig_stop_fn(void *arg);

struct wsig {
    int rfd, wfd;              /* the self-pipe, non-blocking, close-on-exec */
    wsig_stop_fn *on_stop;     /* may be NULL; set by the owner after wsig_init */
    void *on_stop_arg;
    bool installed;            /* the process's handlers write to wfd */
    bool stopping;             /* a stop was seen by wsig_update or asked by wsig_stop */
    uint64_t drain_ms;         /* how long a running job may go on after the stop */
    uint64_t deadline_ms;      /* CLOCK_MONOTONIC ms when it must end; UINT64_MAX: none */
};

/* Creates the self-pipe; with install, makes it the target of the process's SIGTERM, SIGINT
 * and SIGCHLD handlers (SA_RESTART) and ignores SIGPIPE (a child that stops reading shows as
 * EPIPE). Only one struct wsig per process may install. Returns 0 or SL_EIO (logged). */
int wsig_init(struct wsig *s, uint64_t drain_ms, bool install);

/* Restores the default dispositions if installed, closes the pipe. */
void wsig_fini(struct wsig *s);

/* The fd to poll for POLLIN. */
int wsig_fd(const struct wsig *s);

/* Reads what the pipe holds and notes a stop (starting the drain deadline). Never blocks. */
void wsig_update(struct wsig *s);

/* Asks for a stop from inside the program (wakes pollers like a signal). */
void wsig_stop(struct wsig *s);

/* A stop was asked (by a signal seen by wsig_update, or by wsig_stop). */
bool wsig_stopping(const struct wsig *s);

/* When the running job must be stopped, CLOCK_MONOTONIC ms; UINT64_MAX while no stop. */
uint64_t wsig_deadline_ms(const struct wsig *s);

#endif
