/* worker-pool: keeps N worker processes running (pool.h), answers ctl workers/scale on its
 * control socket (pool_server.h), and drains them all on SIGTERM or SIGINT. SIGHUP replaces
 * every worker, one at a time, never serving with fewer than N.
 *
 * One thread runs everything below: signal handlers only write the signal's number to a
 * self-pipe, and the loop polls that pipe, the control socket and the pool's timers. */
#include "deadline.h"
#include "err.h"
#include "log.h"
#include "pool.h"
#include "pool_cfg.h"
#include "pool_orphans.h"
#include "pool_server.h"
#include "pool_spawn.h"
#include "rundir.h"
#include "sigpipe.h"
#include "status.h"

#include <nng/nng.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TICK_MS 100u /* status pages (ready, hung) are read this often */

extern char **environ;

/* The worker program: --worker, else found next to us or on PATH. Returns 0 or 1 (printed). */
static int
worker_path(const struct pool_cfg *cfg, char *out, size_t cap)
{
    char self[PATH_MAX];

    if (cfg->worker != NULL) {
        snprintf(out, cap, "%s", cfg->worker);
        if (access(out, X_OK) != 0) {
            fprintf(stderr, "worker-pool: --worker %s: %s\n", out, strerror(errno));
            return 1;
        }
        return 0;
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    if (pool_spawn_find_worker(out, cap, n > 0 ? self : NULL, getenv("PATH")) != 0) {
        fprintf(stderr, "worker-pool: cannot find the worker program next to %s or on PATH; "
                        "give --worker PATH\n", n > 0 ? self : "worker-pool");
        return 1;
    }
    return 0;
}

static bool
keep_worker(void *arg, int pid)
{
    return pool_has_pid(arg, pid);
}

static void
reap(struct pool *p)
{
    int st;
    pid_t pid;

    for (;;) {
        pid = waitpid(-1, &st, WNOHANG);
        if (pid > 0) {
            /* A worker killed by a signal did not end its handler's processes: they are ours
             * now (pool_orphans_adopt), and go; those of other workers' jobs stay. */
            if (WIFSIGNALED(st)) {
                pool_orphans_kill_group(pool_handler_pgid(p, (int)pid), keep_worker, p);
            }
            if (!pool_reaped(p, (int)pid, st, status_now_ms())) {
                LOG(LOG_DEBUG, "reap.other", "pid=%d", (int)pid);
            }
            continue; /* and reap what was killed */
        }
        if (pid < 0 && errno == EINTR) {
            continue;
        }
        return; /* 0: children left, none exited; ECHILD: no children */
    }
}

/* Acts on the signals the handlers wrote to the self-pipe. */
static void
drain_signals(struct pool *p)
{
    unsigned char buf[64];
    ssize_t n;

    while ((n = read(sigpipe_fd(), buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            uint64_t now = status_now_ms();
            switch (buf[i]) {
            case SIGTERM:
            case SIGINT:
                if (!p->stopping) {
                    LOG(LOG_INFO, "signal", "signal=%s action=drain",
                        buf[i] == SIGTERM ? "TERM" : "INT");
                    pool_stop(p, now);
                } else {
                    LOG(LOG_WARN, "signal", "signal=%s action=kill workers=%u reason=\"second "
                        "stop signal\"", buf[i] == SIGTERM ? "TERM" : "INT", pool_live(p));
                    pool_kill_all(p);
                }
                break;
            case SIGHUP:
                pool_roll(p, now);
                break;
            default: /* SIGCHLD: reaped below, after every turn */
                break;
            }
        }
    }
}

static int
run(struct pool *p, struct pool_server *srv)
{
    struct pollfd fds[2] = {
        { .fd = sigpipe_fd(), .events = POLLIN },
        { .fd = pool_server_fd(srv), .events = POLLIN },
    };
    uint64_t next_tick = 0;

    pool_reconcile(p, status_now_ms());
    while (!pool_done(p)) {
        uint64_t now = status_now_ms();
        if (now >= next_tick) {
            pool_tick(p, now);
            next_tick = now + TICK_MS;
        }
        uint64_t wake = next_tick, due = pool_next_due(p);
        if (due != 0 && due < wake) {
            wake = due;
        }
        int timeout = wake > now ? (int)(wake - now) : 0;
        int r = poll(fds, 2, timeout);
        if (r < 0 && errno != EINTR) {
            LOG(LOG_ERROR, "poll", "error=\"%s\"", strerror(errno));
            return 1;
        }
        if (r > 0 && (fds[0].revents & POLLIN)) {
            drain_signals(p);
        }
        reap(p);
        if (r > 0 && (fds[1].revents & POLLIN)) {
            pool_server_serve(srv, p, status_now_ms());
        }
        now = status_now_ms();
        if (due != 0 && due <= now) {
            next_tick = 0; /* timers are run by the tick */
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct pool_cfg cfg;
    struct pool_spawn sp;
    struct pool pool;
    struct pool_ops ops;
    struct pool_server *srv = NULL;
    char dir[RUNDIR_MAX], urlbuf[RUNDIR_MAX + 16], path[PATH_MAX], host[256], prefix[160];
    const char *url;
    bool done;
    int rv;

    log_prog = "worker-pool";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if ((rv = pool_cfg_parse(&cfg, argc, argv, ncpu > 0 ? (uint32_t)ncpu : 1, &done)) != 0 ||
        done) {
        return rv;
    }
    if (rundir_path(dir, sizeof(dir), cfg.dir, getenv("XDG_RUNTIME_DIR")) != 0) {
        fprintf(stderr, "worker-pool: runtime directory path too long\n");
        return 2;
    }
    url = cfg.control_url;
    if (url == NULL) {
        if (rundir_ipc_url(urlbuf, sizeof(urlbuf), dir, "pool.ipc") != 0) {
            fprintf(stderr, "worker-pool: socket path %s/pool.ipc is too long for a Unix "
                            "socket; set a shorter SLUICE_DIR or give --control-url\n", dir);
            return 2;
        }
        url = urlbuf;
    }
    if ((rv = worker_path(&cfg, path, sizeof(path))) != 0) {
        return rv;
    }
    /* Checked here, so that a bad file stops the pool rather than every worker it starts. */
    struct token token = { 0 };
    if (cfg.token_file != NULL) {
        char why[512];
        if (token_load(&token, cfg.token_file, why, sizeof(why)) != 0) {
            fprintf(stderr, "worker-pool: --token-file: %s\n", why);
            return 1;
        }
    }
    if (rundir_ensure(dir) != 0) {
        return 1;
    }
    if (gethostname(host, sizeof(host)) != 0) {
        host[0] = '\0';
    }
    host[sizeof(host) - 1] = '\0';
    pool_name_prefix(prefix, sizeof(prefix), host, (int)getpid());
    static const int handled[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
    if (sigpipe_install(handled, sizeof(handled) / sizeof(handled[0])) != 0) {
        fprintf(stderr, "worker-pool: cannot set up signal handling: %s\n", strerror(errno));
        return 1;
    }
    pool_orphans_adopt();
    if (pool_spawn_init(&sp, &cfg, path, dir, environ) != 0) {
        fprintf(stderr, "worker-pool: out of memory\n");
        return 1;
    }
    pool_spawn_ops(&sp, &ops);
    struct pool_params par = {
        .n = cfg.n,
        .drain_timeout_ms = cfg.drain_timeout_ms,
        .job_timeout_ms = cfg.job_timeout_ms,
        .max_memory_bytes = cfg.max_memory_bytes,
        .max_jobs = cfg.max_jobs_n,
        .name_prefix = prefix,
    };
    if (pool_init(&pool, &par, &ops) != 0) {
        fprintf(stderr, "worker-pool: out of memory\n");
        rv = 1;
        goto out_spawn;
    }
    uint64_t started = status_now_ms();
    if (pool_server_start(&srv, url, started) != 0) {
        fprintf(stderr, "worker-pool: cannot listen on %s (another worker-pool?)\n", url);
        rv = 1;
        goto out_pool;
    }
    pool_server_set_token(srv, &token);
    token_clear(&token);
    if (cfg.handler_default) {
        LOG(LOG_INFO, "handler.default", "handler=\"%s\" reason=\"no --handler given: workers "
            "run the original demo's simulated work\"", POOL_HANDLER_DEFAULT);
    }
    LOG(LOG_INFO, "start", "pid=%d version=%s workers=%u%s worker=\"%s\" control_url=\"%s\" "
        "broker_url=\"%s\" dir=\"%s\"", (int)getpid(), SLUICE_VERSION, cfg.n,
        cfg.n_given ? "" : " (CPUs)", path, url,
        cfg.broker_url != NULL ? cfg.broker_url : "(worker default)", dir);

    rv = run(&pool, srv);
    if (rv != 0) {
        pool_stop(&pool, status_now_ms());
        pool_kill_all(&pool);
    }
    /* Nothing of ours outlives the pool: what dead workers left, and any it still adopts. */
    if (pool_orphans_kill(keep_worker, &pool) > 0) {
        for (uint64_t end = status_now_ms() + 2000; status_now_ms() < end;) {
            pid_t r = waitpid(-1, NULL, WNOHANG);
            if (r < 0 && errno == ECHILD) {
                break;
            }
            if (r <= 0) {
                usleep(10000);
            }
        }
    }
    const char *files[] = { strncmp(url, "ipc://", 6) == 0 ? url + 6 : "", NULL };
    exit_deadline(2000, DEADLINE_EXIT_FORCED, files); /* its workers are gone: only sockets are left to close */
    pool_server_stop(srv);
    LOG(LOG_INFO, "exit", "status=%d", rv);
out_pool:
    pool_fini(&pool);
out_spawn:
    pool_spawn_fini(&sp);
    return rv;
}
