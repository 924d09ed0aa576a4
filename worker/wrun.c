#include "wrun.h"

#include "deadline.h"

#include "err.h"
#include "log.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

/* The status page's heartbeat: the worker is alive, whether it runs a job or waits. */
static void
beat(void *arg)
{
    struct worker_status *page = arg;
    atomic_store(&page->heartbeat_ms, status_now_ms());
}

/* A stop noted while a job runs (the handler polls the signal pipe): the page says so at once,
 * not when the job ends. */
static void
draining(void *arg)
{
    struct worker_status *page = arg;
    atomic_store(&page->state, (uint64_t)WORKER_DRAINING);
}

static void
set_state(struct worker_status *page, enum worker_state st)
{
    if (page != NULL) {
        atomic_store(&page->state, (uint64_t)st);
        atomic_store(&page->heartbeat_ms, status_now_ms());
    }
}

int
wrun_run(const struct wrun_cfg *cfg)
{
    struct worker_status *page = cfg->page;
    struct wapi_cfg wc = cfg->wapi;
    struct wapi *w;
    struct wapi_job job;
    uint64_t done = 0, failed = 0, released = 0;
    int rv, status = 0;

    if (page != NULL) {
        atomic_store(&page->pid, (uint64_t)getpid());
        wc.tick = beat;
        wc.tick_arg = page;
        cfg->sig->on_stop = draining;
        cfg->sig->on_stop_arg = page;
    }
    set_state(page, WORKER_STARTING);
    /* nng's threads start with the first nng call, here, and inherit this mask: the worker's
     * signals then always reach this thread, never interrupt one of nng's. */
    sigset_t ours, old;
    sigemptyset(&ours);
    sigaddset(&ours, SIGTERM);
    sigaddset(&ours, SIGINT);
    sigaddset(&ours, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &ours, &old);
    rv = wapi_open(&w, &wc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != 0) {
        return rv == SL_EBADREQ ? 2 : 1;
    }
    LOG(LOG_INFO, "start", "worker=%s pid=%ld prefetch=%u max_jobs=%llu drain_ms=%llu",
        wapi_name(w), (long)getpid(), wc.prefetch == 0 ? 1 : wc.prefetch,
        (unsigned long long)wc.max_jobs, (unsigned long long)cfg->sig->drain_ms);
    for (;;) {
        struct handler_result res;

        set_state(page, wsig_stopping(cfg->sig) ? WORKER_DRAINING : WORKER_IDLE);
        if ((rv = wapi_next(w, &job)) != 0) {
            if (rv != SL_ETIMEDOUT) {
                /* The broker refuses us: logged by wapi. A wrong token is a configuration error
                 * that a restart cannot fix: exit 2, which worker-pool does not restart. */
                status = rv == SL_EUNAUTH ? 2 : 1;
            }
            break;
        }
        if (page != NULL) {
            uint64_t now = status_now_ms();
            atomic_store(&page->current_id, job.id);
            atomic_store(&page->current_start_ms, now);
            atomic_store(&page->state, (uint64_t)(wsig_stopping(cfg->sig) ? WORKER_DRAINING
                                                                          : WORKER_BUSY));
            atomic_store(&page->heartbeat_ms, now);
        }
        handler_run(cfg->handler, &job, &res);
        switch (res.verdict) {
        case HANDLER_ACK:
            wapi_ack(w, job.id);
            done++;
            break;
        case HANDLER_NACK:
            wapi_nack_error(w, job.id, res.delay_ms, res.error, res.error_len);
            failed++;
            break;
        case HANDLER_RELEASE:
            /* Only a stopping worker releases. The prefetched jobs go back first, then this
             * older one, so that it ends up ahead of them at the head of the queue. */
            wapi_release_all(w);
            wapi_release(w, job.id);
            released++;
            break;
        }
        if (page != NULL) {
            atomic_store(&page->jobs_done, done);
            atomic_store(&page->jobs_failed, failed);
            atomic_store(&page->current_id, 0);
            atomic_store(&page->current_start_ms, 0);
        }
    }
    set_state(page, WORKER_DRAINING);
    wsig_update(cfg->sig);
    LOG(LOG_INFO, "drain", "worker=%s reason=%s done=%llu failed=%llu released=%llu",
        wapi_name(w),
        status != 0 ? "refused" : wsig_stopping(cfg->sig) || wsig_stop_flag ? "signal"
                                                                           : "max_jobs",
        (unsigned long long)done, (unsigned long long)failed, (unsigned long long)released);
    /* Settling takes at most a few request timeouts. The socket is then left to the exit:
     * nothing is left to say on it, and nng 1.5.2's close of it can hang (common/deadline.h). */
    exit_deadline(20000, DEADLINE_EXIT_FORCED, NULL);
    wapi_settle(w); /* sends pending acks and nacks, releases the prefetched jobs */
    exit_deadline(2000, DEADLINE_EXIT_FORCED, NULL);
    wapi_leave(w);
    set_state(page, WORKER_STOPPED);
    LOG(LOG_INFO, "stop", "status=%d", status);
    return status;
}
