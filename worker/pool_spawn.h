/* Starting worker processes for the pool: the worker's command line and environment, built
 * once, and fork + immediate exec per start (nng is not fork-safe: the child calls only
 * async-signal-safe functions before exec). Also the pool's other ways of touching a process:
 * signals and RSS. pool_spawn_ops hands these to the pool as its struct pool_ops. */
#ifndef SLUICE_POOL_SPAWN_H
#define SLUICE_POOL_SPAWN_H

#include "pool.h"
#include "pool_cfg.h"

#include <stddef.h>

/* The status page's descriptor number in the child (SLUICE_STATUS_FD). */
#define POOL_STATUS_FD 3

struct pool_spawn {
    char *path;        /* the worker program: an absolute or relative path (owned) */
    char **argv;       /* NULL-terminated; argv[name_at] is set per start (array owned, strings
                          borrowed from cfg, but for drain) */
    int argc;
    int name_at;
    char drain[32];    /* --drain-timeout's value */
    char **envp;       /* NULL-terminated: the pool's environment without SLUICE_STATUS_FD and
                          SLUICE_DIR, then ours (array owned, strings borrowed but env_*) */
    char *env_fd, *env_dir;
    int parent;        /* the pool's pid: a child whose parent changed does not exec */
    long page_size;
};

/* Builds the worker's command line and environment:
 *   PATH --name NAME [--url U] --handler H [--queues Q] [--prefetch K] [--max-jobs N]
 *        --drain-timeout Dms [EXTRA...]
 * (--handler is left out when cfg->handler is NULL: the extra arguments name one), with
 * SLUICE_STATUS_FD=3 and SLUICE_DIR=dir added to env. cfg's strings must outlive sp.
 * Returns 0 or SL_ENOMEM. */
int pool_spawn_init(struct pool_spawn *sp, const struct pool_cfg *cfg, const char *path,
                    const char *dir, char *const *env);
void pool_spawn_fini(struct pool_spawn *sp);

/* The pool's ops backed by real processes (arg is sp). */
void pool_spawn_ops(struct pool_spawn *sp, struct pool_ops *ops);

/* Finds the worker program when --worker is not given: "worker" in the directory of self_exe
 * (the pool's own executable, from /proc/self/exe; may be NULL), else the first executable
 * "worker" in path_env (PATH; may be NULL). Writes it into out. Returns 0 or SL_ENOTFOUND. */
int pool_spawn_find_worker(char *out, size_t cap, const char *self_exe, const char *path_env);

#endif
