#include "pool_cfg.h"

#include "pool.h"

#include "log.h"
#include "opt.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>

enum {
    POOL_OPT_N = OPT_COMMON_END,
    POOL_OPT_WORKER,
    POOL_OPT_HANDLER,
    POOL_OPT_PREFETCH,
    POOL_OPT_QUEUES,
    POOL_OPT_MAX_JOBS,
    POOL_OPT_MAX_MEMORY,
    POOL_OPT_JOB_TIMEOUT,
    POOL_OPT_DRAIN_TIMEOUT,
    POOL_OPT_CONTROL_URL,
    POOL_OPT_DIR,
};

#define PREFETCH_MAX 10000u            /* reserve's max (PROTOCOL.md) */
#define MAX_JOBS_MAX UINT64_C(1000000000000)
#define MAX_MEMORY_MIN (UINT64_C(1) << 20)
#define MAX_MEMORY_MAX (UINT64_C(1) << 44)
#define JOB_TIMEOUT_MS_MIN 100u
#define TIMEOUT_MS_MAX (24u * 3600u * 1000u)

static const struct opt pool_opts[] = {
    { POOL_OPT_N, "workers", 'n', "N", NULL,
      "workers to keep running, 0-1024 (default: the number of CPUs)" },
    { POOL_OPT_WORKER, "worker", 'w', "PATH", NULL,
      "the worker program (default: worker next to worker-pool, else on PATH)" },
    { POOL_OPT_HANDLER, "handler", 0, "H", NULL,
      "the workers' handler: noop, sleep:MIN-MAX, exec:CMD, pipe:CMD (default "
      POOL_HANDLER_DEFAULT ", simulated work)" },
    { POOL_OPT_PREFETCH, "prefetch", 0, "K", NULL, "jobs each worker reserves at once, 1-10000" },
    { POOL_OPT_QUEUES, "queues", 'q', "LIST", NULL,
      "comma-separated queues the workers take jobs from (default: all)" },
    { POOL_OPT_MAX_JOBS, "max-jobs", 0, "N", NULL,
      "recycle a worker after N jobs (it exits 0 and is restarted at once)" },
    { POOL_OPT_MAX_MEMORY, "max-memory", 0, "SIZE", NULL,
      "recycle a worker whose RSS is above SIZE, e.g. 256M (stopped gracefully, restarted)" },
    { POOL_OPT_JOB_TIMEOUT, "job-timeout", 0, "DURATION", NULL,
      "kill (SIGKILL) and restart a worker whose job runs longer, e.g. 5m" },
    { POOL_OPT_DRAIN_TIMEOUT, "drain-timeout", 0, "DURATION", NULL,
      "time a stopping worker has to finish its job (default 30s; 2s more before SIGKILL)" },
    { POOL_OPT_CONTROL_URL, "control-url", 'c', "URL", "SLUICE_POOL_URL",
      "control socket for ctl workers/scale (default ipc://$SLUICE_DIR/pool.ipc)" },
    { POOL_OPT_DIR, "dir", 'd', "DIR", "SLUICE_DIR",
      "runtime directory (default $XDG_RUNTIME_DIR/sluice or /tmp/sluice-$UID)" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

static const struct opt *const tables[] = { pool_opts, opt_common, opt_token, NULL };
static const char usage[] = "worker-pool [-n N] [options] [-- extra worker arguments]";

static int
usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "%s: %s '%s'\n", log_prog, what, arg);
    return 2;
}

/* A comma-separated list of 1 to WIRE_FROM_MAX queue names. */
static int
check_queues(const char *list)
{
    unsigned n = 0;
    const char *p = list;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (!wire_name_ok(p, len)) {
            return usage_error("--queues: not a list of queue names (1-128 bytes of A-Z a-z 0-9 "
                               ". _ : -, separated by commas):", list);
        }
        if (++n > WIRE_FROM_MAX) {
            fprintf(stderr, "%s: --queues: at most %u queues\n", log_prog, WIRE_FROM_MAX);
            return 2;
        }
        if (comma == NULL) {
            return 0;
        }
        p = comma + 1;
    }
}

/* Index of the first "--" in argv, or argc. */
static int
dashdash(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            return i;
        }
    }
    return argc;
}

/* The extra worker arguments choose the handler themselves. */
static bool
extra_names_handler(const struct pool_cfg *cfg)
{
    for (int i = 0; i < cfg->nextra; i++) {
        if (strcmp(cfg->extra[i], "--handler") == 0 ||
            strncmp(cfg->extra[i], "--handler=", 10) == 0) {
            return true;
        }
    }
    return false;
}

int
pool_cfg_parse(struct pool_cfg *cfg, int argc, char **argv, uint32_t ncpu, bool *done)
{
    struct opt_vals v;
    uint64_t x;
    int argi, rv;

    memset(cfg, 0, sizeof(*cfg));
    *done = false;
    /* Arguments before "--" are a mistake (worker arguments go after it); count those after. */
    int after = argc - dashdash(argc, argv) - 1;
    after = after < 0 ? 0 : after;
    if ((rv = opt_parse(argc, argv, tables, false, &v, &argi)) != 0 ||
        (rv = opt_common_apply(&v, usage, tables, done)) != 0 || *done) {
        return rv;
    }
    if (argc - argi > after) {
        return usage_error("unexpected argument (worker arguments go after --):", argv[argi]);
    }
    cfg->extra = argv + argi;
    cfg->nextra = argc - argi;

    cfg->n = ncpu < POOL_N_MAX ? ncpu : POOL_N_MAX;
    if (v.v[POOL_OPT_N] != NULL) {
        if ((rv = opt_u64("workers", v.v[POOL_OPT_N], 0, POOL_N_MAX, &x)) != 0) {
            return rv;
        }
        cfg->n = (uint32_t)x;
        cfg->n_given = true;
    }
    cfg->worker = v.v[POOL_OPT_WORKER];
    if (cfg->worker != NULL && cfg->worker[0] == '\0') {
        return usage_error("--worker: empty path", "");
    }
    cfg->handler = v.v[POOL_OPT_HANDLER];
    if (cfg->handler == NULL && !extra_names_handler(cfg)) {
        cfg->handler = POOL_HANDLER_DEFAULT;
        cfg->handler_default = true;
    } else if (cfg->handler != NULL && cfg->handler[0] == '\0') {
        return usage_error("--handler: empty handler", "");
    }
    if ((cfg->prefetch = v.v[POOL_OPT_PREFETCH]) != NULL &&
        (rv = opt_u64("prefetch", cfg->prefetch, 1, PREFETCH_MAX, &x)) != 0) {
        return rv;
    }
    if ((cfg->queues = v.v[POOL_OPT_QUEUES]) != NULL && (rv = check_queues(cfg->queues)) != 0) {
        return rv;
    }
    if ((cfg->max_jobs = v.v[POOL_OPT_MAX_JOBS]) != NULL &&
        (rv = opt_u64("max-jobs", cfg->max_jobs, 1, MAX_JOBS_MAX, &cfg->max_jobs_n)) != 0) {
        return rv;
    }
    if (v.v[POOL_OPT_MAX_MEMORY] != NULL &&
        (rv = opt_size("max-memory", v.v[POOL_OPT_MAX_MEMORY], MAX_MEMORY_MIN, MAX_MEMORY_MAX,
                       &cfg->max_memory_bytes)) != 0) {
        return rv;
    }
    if (v.v[POOL_OPT_JOB_TIMEOUT] != NULL &&
        (rv = opt_ms("job-timeout", v.v[POOL_OPT_JOB_TIMEOUT], JOB_TIMEOUT_MS_MIN, TIMEOUT_MS_MAX,
                     &cfg->job_timeout_ms)) != 0) {
        return rv;
    }
    cfg->drain_timeout_ms = POOL_DRAIN_MS_DEFAULT;
    if (v.v[POOL_OPT_DRAIN_TIMEOUT] != NULL &&
        (rv = opt_ms("drain-timeout", v.v[POOL_OPT_DRAIN_TIMEOUT], 0, TIMEOUT_MS_MAX,
                     &cfg->drain_timeout_ms)) != 0) {
        return rv;
    }
    cfg->control_url = v.v[POOL_OPT_CONTROL_URL];
    cfg->broker_url = v.v[OPT_URL];
    cfg->token_file = v.v[OPT_TOKEN_FILE];
    cfg->dir = v.v[POOL_OPT_DIR];
    if ((cfg->control_url != NULL && cfg->control_url[0] == '\0') ||
        (cfg->broker_url != NULL && cfg->broker_url[0] == '\0')) {
        return usage_error("empty URL", "");
    }
    return 0;
}
