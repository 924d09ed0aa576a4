/* The worker's loop: take a job (wapi), run the handler on it, settle it, keep the status page
 * up to date, and drain when asked.
 *
 * Draining (SIGTERM, SIGINT, or --max-jobs reached): no more reserves; the running job goes on
 * until the drain deadline (the handler kills its child then, and the job is released); every
 * prefetched job not started is released; pending acks and nacks are sent; the loop returns. */
#ifndef SLUICE_WRUN_H
#define SLUICE_WRUN_H

#include "handler.h"
#include "status.h"
#include "wapi.h"
#include "wsig.h"

struct wrun_cfg {
    struct wapi_cfg wapi;       /* its stop should be &wsig_stop_flag, max_jobs --max-jobs */
    struct handler *handler;    /* borrowed */
    struct wsig *sig;           /* borrowed */
    struct worker_status *page; /* the pool's status page; NULL: none */
};

/* Runs until drained. Returns the worker's exit status: 0 after a drain; 1 when the worker
 * cannot start (wapi_open failed for want of resources) or the broker refuses its requests;
 * 2 for a configuration wapi_open rejects (a usage error) or a token the broker refuses
 * (unauthorized). Blocks. */
int wrun_run(const struct wrun_cfg *cfg);

#endif
