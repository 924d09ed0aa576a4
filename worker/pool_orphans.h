/* Processes that workers leave behind when they die without cleaning up (killed at
 * --job-timeout or by a second stop signal, crashed): a worker's exec: job or pipe: handler and
 * whatever those started. worker-pool makes itself their subreaper, so that they become its
 * children instead of init's, and kills them: they belong to no job any more. */
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
 * Returns how many were killed. */
unsigned pool_orphans_kill(pool_orphans_keep_fn *keep, void *arg);

#endif
