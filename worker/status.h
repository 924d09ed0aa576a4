/* The status page a worker shares with its worker-pool: one page of shared memory (a memfd the
 * pool creates and passes down as SLUICE_STATUS_FD) that the worker updates as it goes and the
 * pool reads at any time: for `ctl workers`, for --job-timeout (how long the current job has
 * run) and to see what a worker was doing when it died. Plain stores and loads of 64-bit
 * atomics: no locks, no system calls on the worker's hot path; fields may be read a moment
 * apart, never torn.
 *
 * The layout is versioned: to change it, add fields at the end and raise
 * WORKER_STATUS_VERSION; a reader ignores a page with another magic or a higher version. */
#ifndef SLUICE_WORKER_STATUS_H
#define SLUICE_WORKER_STATUS_H

#include <stdatomic.h>
#include <stdint.h>

#define WORKER_STATUS_MAGIC 0x736c7773u /* "slws" */
#define WORKER_STATUS_VERSION 1u

enum worker_state {
    WORKER_STARTING = 0, /* connecting, not yet taking jobs */
    WORKER_IDLE = 1,     /* waiting for a job */
    WORKER_BUSY = 2,     /* running a job */
    WORKER_DRAINING = 3, /* asked to stop: takes no new jobs */
    WORKER_STOPPED = 4,  /* exited cleanly */
};

struct worker_status {
    uint32_t magic;                 /* WORKER_STATUS_MAGIC once initialised */
    uint32_t version;               /* WORKER_STATUS_VERSION */
    _Atomic uint64_t pid;
    _Atomic uint64_t state;         /* enum worker_state */
    _Atomic uint64_t jobs_done;     /* jobs acked */
    _Atomic uint64_t jobs_failed;   /* jobs nacked */
    _Atomic uint64_t current_id;    /* job running now; 0: none */
    _Atomic uint64_t current_start_ms; /* CLOCK_MONOTONIC ms when it started; 0: none */
    _Atomic uint64_t heartbeat_ms;  /* CLOCK_MONOTONIC ms of the worker's last loop turn */
    _Atomic int32_t handler_pgid;   /* process group of its exec: job or pipe: handler; 0: none.
                                       What the pool kills when the worker dies by a signal */
};

/* Maps the page behind fd (created by the pool with status_create). Returns NULL when fd is
 * not a usable status page; the worker then runs without one. */
struct worker_status *status_map(int fd);

/* Creates an anonymous status page (memfd, not close-on-exec so a child can inherit it) and
 * maps it. Returns the fd, or -1 with errno set. *page is zeroed but for magic and version. */
int status_create(struct worker_status **page);

/* Unmaps a page. */
void status_unmap(struct worker_status *page);

/* Milliseconds of CLOCK_MONOTONIC, the clock of every *_ms field above. */
uint64_t status_now_ms(void);

#endif
