/* Processes that workers leave behind when they die without cleaning up (killed at
 * --job-timeout or by a second stop signal, crashed): a worker's exec: job or pipe: handler and
 * whatever those started. worker-pool makes itself their subreaper, so that they become its
 * children instead of init's, and kills those of the dead worker's handler group: they belong
 * to no job any more. */
#ifndef SLUICE_POOL_ORPHANS_H
#define SLUICE_POOL_ORPHANS_H

#include <stdbool.h>

/* Makes the calling process the subreaper of its descendants (PR_SET_CHILD_SUBREAPER).
 * Returns 0 or SL_EIO (logged; the pool runs on without it). */
int pool_orphans_adopt(void);

/* Says whether pid is one the caller keeps (a worker); arg is the caller's. */
typedef bool pool_orphans_keep_fn(void *arg, int pid);

/* Kills (SIGKILL, with its process group) every child of this process that keep does not
 * claim, logging each (event=orphan.kill). The caller reaps them. Reads /proc; never blocks.
 * Returns how many were killed. For the pool's exit, when no worker runs a job any more. */
unsigned pool_orphans_kill(pool_orphans_keep_fn *keep, void *arg);

/* The same for the children in process group pgid only: what a worker killed by a signal
 * left of its handler (the group its status page named). Processes of other workers' jobs
 * that ended up here (a job's `(cmd &)`) are in their own job's group and are left alone:
 * that job's end kills them. A pgid of 0, 1 or the pool's own group kills nothing. */
unsigned pool_orphans_kill_group(int pgid, pool_orphans_keep_fn *keep, void *arg);

#endif
