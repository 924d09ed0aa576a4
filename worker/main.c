/* worker: takes jobs from the broker and runs one handler on them.
 *
 *   worker [--url URL] [--name NAME] --handler H [--queues q1,q2] [--prefetch K]
 *          [--max-jobs N] [--drain-timeout D]
 *
 * Exit status: 0 after a drain (SIGTERM, SIGINT, --max-jobs), 1 when it cannot start, 2 for a
 * usage error (worker-pool does not restart a worker that exits 2). */
#include "child.h"
#include "err.h"
#include "handler.h"
#include "log.h"
#include "opt.h"
#include "status.h"
#include "token.h"
#include "wrun.h"
#include "wsig.h"

#include <nng/nng.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

enum {
    OPT_NAME = OPT_COMMON_END,
    OPT_HANDLER,
    OPT_QUEUES,
    OPT_PREFETCH,
    OPT_MAX_JOBS,
    OPT_DRAIN_TIMEOUT,
};

static const struct opt worker_opts[] = {
    { OPT_NAME, "name", 0, "NAME", NULL,
      "worker name, unique among live workers (default HOSTNAME:PID)" },
    { OPT_HANDLER, "handler", 0, "H", NULL,
      "noop, sleep:MIN-MAX (ms), exec:CMD (a process per job) or pipe:CMD (one long-lived "
      "process speaking frames); required" },
    { OPT_QUEUES, "queues", 0, "Q1,Q2", NULL, "take jobs only from these queues (at most 16)" },
    { OPT_PREFETCH, "prefetch", 0, "K", NULL, "jobs taken per reserve, 1-10000 (default 1)" },
    { OPT_MAX_JOBS, "max-jobs", 0, "N", NULL, "drain and exit 0 after N jobs (default: never)" },
    { OPT_DRAIN_TIMEOUT, "drain-timeout", 0, "D", NULL,
      "on SIGTERM, how long the running job may go on before it is stopped and released "
      "(default 30s; units ms, s, m, h)" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

static const struct opt *const tables[] = { opt_common, opt_token, worker_opts, NULL };
static const char usage[] = "worker [--url URL] [--name NAME] --handler H [--queues Q1,Q2] "
                            "[--prefetch K] [--max-jobs N] [--drain-timeout D]";

#define DRAIN_MS_DEFAULT 30000
#define DRAIN_MS_MAX (24ull * 3600 * 1000)
#define MAX_JOBS_MAX (UINT64_C(1) << 62)

/* Splits "q1,q2" in place into names. Returns 0 or 2 (usage error, printed). */
static int
split_queues(char *list, const char *names[], uint32_t *n)
{
    *n = 0;
    for (char *save = NULL, *q = strtok_r(list, ",", &save); q != NULL;
         q = strtok_r(NULL, ",", &save)) {
        if (*n == WIRE_FROM_MAX) {
            fprintf(stderr, "worker: --queues: at most %u queues\n", WIRE_FROM_MAX);
            return 2;
        }
        if (!wire_name_ok(q, strlen(q))) {
            fprintf(stderr, "worker: --queues: '%s' is not a queue name (1-128 bytes of "
                    "A-Z a-z 0-9 . _ : -)\n", q);
            return 2;
        }
        names[(*n)++] = q;
    }
    if (*n == 0) {
        fprintf(stderr, "worker: --queues: no queue named\n");
        return 2;
    }
    return 0;
}

/* The pool's status page, if it passed one. The fd is closed once mapped: handler children
 * must not inherit it. */
static struct worker_status *
status_page(const char *env)
{
    char *end;
    if (env == NULL || *env == '\0') {
        return NULL;
    }
    errno = 0;
    long fd = strtol(env, &end, 10);
    if (errno != 0 || *end != '\0' || fd < 0 || fd > 65535) {
        LOG(LOG_WARN, "status.bad_fd", "value=\"%.32s\"", env);
        return NULL;
    }
    struct worker_status *page = status_map((int)fd);
    if (page == NULL) {
        LOG(LOG_WARN, "status.unusable", "fd=%ld", fd);
    }
    close((int)fd);
    return page;
}

int
main(int argc, char **argv)
{
    struct opt_vals v;
    struct wrun_cfg cfg;
    struct wsig sig;
    struct handler *h = NULL;
    const char *queues[WIRE_FROM_MAX];
    char err[256];
    /* cppcheck-suppress variableScope ; cfg.wapi.queues points into it until the end */
    char queue_list[4096];
    uint64_t prefetch = 1, max_jobs = 0, drain_ms = DRAIN_MS_DEFAULT;
    bool done;
    int argi, rv;

    log_prog = "worker";
    memset(&cfg, 0, sizeof(cfg));
    if ((rv = opt_parse(argc, argv, tables, false, &v, &argi)) != 0 ||
        (rv = opt_common_apply(&v, usage, tables, &done)) != 0) {
        return rv;
    }
    if (done) {
        return 0;
    }
    if (argi < argc) {
        fprintf(stderr, "worker: unexpected argument '%s'\n", argv[argi]);
        return 2;
    }
    if (v.v[OPT_HANDLER] == NULL) {
        fprintf(stderr, "worker: --handler is required (noop, sleep:MIN-MAX, exec:CMD, "
                "pipe:CMD)\n");
        return 2;
    }
    if ((v.v[OPT_PREFETCH] &&
         (rv = opt_u64("prefetch", v.v[OPT_PREFETCH], 1, WAPI_PREFETCH_MAX, &prefetch))) ||
        (v.v[OPT_MAX_JOBS] && (rv = opt_u64("max-jobs", v.v[OPT_MAX_JOBS], 1, MAX_JOBS_MAX,
                                            &max_jobs))) ||
        (v.v[OPT_DRAIN_TIMEOUT] &&
         (rv = opt_ms("drain-timeout", v.v[OPT_DRAIN_TIMEOUT], 0, DRAIN_MS_MAX, &drain_ms)))) {
        return rv;
    }
    if (v.v[OPT_NAME] != NULL && !wire_name_ok(v.v[OPT_NAME], strlen(v.v[OPT_NAME]))) {
        fprintf(stderr, "worker: --name: '%s' is not a name (1-128 bytes of A-Z a-z 0-9 . _ : -)\n",
                v.v[OPT_NAME]);
        return 2;
    }
    if (v.v[OPT_QUEUES] != NULL) {
        if (strlen(v.v[OPT_QUEUES]) >= sizeof(queue_list)) {
            fprintf(stderr, "worker: --queues: too long\n");
            return 2;
        }
        strcpy(queue_list, v.v[OPT_QUEUES]);
        if ((rv = split_queues(queue_list, queues, &cfg.wapi.nqueues)) != 0) {
            return rv;
        }
        cfg.wapi.queues = queues;
    }
    struct token token = { 0 };
    if (v.v[OPT_TOKEN_FILE] != NULL) {
        char why[512];
        if (token_load(&token, v.v[OPT_TOKEN_FILE], why, sizeof(why)) != 0) {
            fprintf(stderr, "worker: --token-file: %s\n", why);
            return 2;
        }
        cfg.wapi.token = &token;
    }
    cfg.page = status_page(getenv("SLUICE_STATUS_FD"));
    child_set_page(cfg.page);
    if (wsig_init(&sig, drain_ms, true) != 0) {
        status_unmap(cfg.page);
        return 1;
    }
    struct handler_env env = { &sig, environ };
    if ((rv = handler_new(&h, v.v[OPT_HANDLER], &env, err, sizeof(err))) != 0) {
        if (rv == SL_EBADREQ) {
            fprintf(stderr, "worker: --handler: %s\n", err);
        }
        wsig_fini(&sig);
        status_unmap(cfg.page);
        return rv == SL_EBADREQ ? 2 : 1;
    }
    cfg.wapi.url = v.v[OPT_URL];
    cfg.wapi.name = v.v[OPT_NAME];
    cfg.wapi.prefetch = (uint32_t)prefetch;
    cfg.wapi.max_jobs = max_jobs;
    cfg.wapi.stop = &wsig_stop_flag;
    cfg.handler = h;
    cfg.sig = &sig;

    rv = wrun_run(&cfg);

    handler_free(h);
    status_unmap(cfg.page);
    wsig_fini(&sig);
    /* No nng_fini(): with the broker away, the closed socket's dial may still be in flight on
     * nng's threads, and nng 1.5.2's nng_fini() aborts under them (see ctl/main.c). */
    return rv;
}
