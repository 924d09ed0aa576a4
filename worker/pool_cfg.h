/* worker-pool's configuration: its option table, and the parsed and checked settings that the
 * pool, the spawner and the control socket read. Strings are borrowed from argv or the
 * environment and live as long as the process. */
#ifndef SLUICE_POOL_CFG_H
#define SLUICE_POOL_CFG_H

#include <stdbool.h>
#include <stdint.h>

#define POOL_DRAIN_MS_DEFAULT 30000u     /* --drain-timeout */
#define POOL_HANDLER_DEFAULT "sleep:100-3000" /* the original demo's simulated work */

struct pool_cfg {
    uint32_t n;                 /* workers to keep running */
    bool n_given;               /* -n was given (else n is the number of CPUs) */
    const char *worker;         /* --worker, or NULL: find it (pool_spawn_find_worker) */
    const char *handler;        /* --handler, else POOL_HANDLER_DEFAULT, else NULL when the extra
                                   worker arguments name a --handler themselves */
    bool handler_default;       /* no --handler: the default is used (and logged) */
    const char *prefetch;       /* passed to every worker as given (checked), or NULL */
    const char *queues;         /* comma-separated names (checked), or NULL */
    const char *max_jobs;       /* passed to every worker as given (checked), or NULL */
    uint64_t max_jobs_n;        /* --max-jobs as a number; 0: none */
    uint64_t max_memory_bytes;  /* recycle a worker whose RSS is above this; 0: never */
    uint64_t job_timeout_ms;    /* kill a worker whose job runs longer; 0: never */
    uint64_t drain_timeout_ms;  /* a stopping worker's time to finish its job */
    const char *control_url;    /* --control-url, or NULL: ipc://DIR/pool.ipc */
    const char *broker_url;     /* --url, or NULL: the worker's own default */
    const char *token_file;     /* --token-file (SLUICE_TOKEN_FILE), or NULL: passed to every
                                   worker, and required of requests on the control socket */
    const char *dir;            /* --dir (SLUICE_DIR), or NULL: the default runtime directory */
    char **extra;               /* the arguments after "--", passed to every worker */
    int nextra;
};

/* Parses and checks worker-pool's command line into cfg (argv is reordered; cfg borrows its
 * strings). --help and --version print and set *done. On a usage error prints
 * "worker-pool: message" to stderr and returns 2; else returns 0. ncpu is the default of -n.
 * Reads the environment (options' variables). Not thread-safe (getopt). */
int pool_cfg_parse(struct pool_cfg *cfg, int argc, char **argv, uint32_t ncpu, bool *done);

#endif
