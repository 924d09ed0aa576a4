#include "pool_spawn.h"

#include "err.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARGV_MAX_FIXED 20 /* our own arguments, the program and the NULL */

static bool
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int
pool_spawn_init(struct pool_spawn *sp, const struct pool_cfg *cfg, const char *path,
                const char *dir, char *const *env)
{
    size_t nenv = 0;

    memset(sp, 0, sizeof(*sp));
    sp->parent = (int)getpid();
    sp->page_size = sysconf(_SC_PAGESIZE);
    if ((sp->path = strdup(path)) == NULL) {
        goto fail;
    }
    sp->argv = calloc((size_t)ARGV_MAX_FIXED + (size_t)cfg->nextra, sizeof(*sp->argv));
    if (sp->argv == NULL) {
        goto fail;
    }
    int a = 0;
    sp->argv[a++] = sp->path;
    sp->argv[a++] = "--name";
    sp->name_at = a;
    sp->argv[a++] = "";
    if (cfg->broker_url != NULL) {
        sp->argv[a++] = "--url";
        sp->argv[a++] = (char *)cfg->broker_url;
    }
    if (cfg->token_file != NULL) {
        /* The path, never the token: a command line is visible to every user. */
        sp->argv[a++] = "--token-file";
        sp->argv[a++] = (char *)cfg->token_file;
    }
    if (cfg->handler != NULL) {
        sp->argv[a++] = "--handler";
        sp->argv[a++] = (char *)cfg->handler;
    }
    if (cfg->queues != NULL) {
        sp->argv[a++] = "--queues";
        sp->argv[a++] = (char *)cfg->queues;
    }
    if (cfg->prefetch != NULL) {
        sp->argv[a++] = "--prefetch";
        sp->argv[a++] = (char *)cfg->prefetch;
    }
    if (cfg->max_jobs != NULL) {
        sp->argv[a++] = "--max-jobs";
        sp->argv[a++] = (char *)cfg->max_jobs;
    }
    snprintf(sp->drain, sizeof(sp->drain), "%llums", (unsigned long long)cfg->drain_timeout_ms);
    sp->argv[a++] = "--drain-timeout";
    sp->argv[a++] = sp->drain;
    for (int i = 0; i < cfg->nextra; i++) {
        sp->argv[a++] = cfg->extra[i];
    }
    sp->argv[a] = NULL;
    sp->argc = a;

    if (asprintf(&sp->env_fd, "SLUICE_STATUS_FD=%d", POOL_STATUS_FD) < 0) {
        sp->env_fd = NULL;
        goto fail;
    }
    if (asprintf(&sp->env_dir, "SLUICE_DIR=%s", dir) < 0) {
        sp->env_dir = NULL;
        goto fail;
    }
    while (env != NULL && env[nenv] != NULL) {
        nenv++;
    }
    if ((sp->envp = calloc(nenv + 3, sizeof(*sp->envp))) == NULL) {
        goto fail;
    }
    size_t e = 0;
    for (size_t i = 0; i < nenv; i++) {
        if (!has_prefix(env[i], "SLUICE_STATUS_FD=") && !has_prefix(env[i], "SLUICE_DIR=")) {
            sp->envp[e++] = env[i];
        }
    }
    sp->envp[e++] = sp->env_fd;
    sp->envp[e++] = sp->env_dir;
    sp->envp[e] = NULL;
    return 0;
fail:
    pool_spawn_fini(sp);
    return SL_ENOMEM;
}

void
pool_spawn_fini(struct pool_spawn *sp)
{
    free(sp->envp);
    free(sp->env_dir);
    free(sp->env_fd);
    free(sp->argv);
    free(sp->path);
    memset(sp, 0, sizeof(*sp));
}

/* In the child, between fork and exec: async-signal-safe calls only. Never returns. */
static void
child_exec(const struct pool_spawn *sp, int status_fd, int err_fd)
{
    static const int reset[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE, SIGQUIT };
    struct sigaction sa;
    sigset_t none;
    int e;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++) {
        sigaction(reset[i], &sa, NULL);
    }
    /* A worker whose pool died is told to drain, not left running unsupervised. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != sp->parent) {
        _exit(1);
    }
    if (status_fd != POOL_STATUS_FD) {
        if (dup2(status_fd, POOL_STATUS_FD) < 0) {
            goto fail;
        }
    } else if (fcntl(status_fd, F_SETFD, 0) != 0) {
        goto fail;
    }
    /* Nothing else of the pool's leaks into the worker (err_fd is close-on-exec already). */
    close_range(POOL_STATUS_FD + 1, ~0u, CLOSE_RANGE_CLOEXEC);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(sp->path, sp->argv, sp->envp);
fail:
    e = errno;
    if (write(err_fd, &e, sizeof(e)) < 0) {
        /* nothing more to do: the pool sees exit 127 */
    }
    _exit(127);
}

static int
spawn_start(void *arg, struct pool_slot *s, const char *name)
{
    struct pool_spawn *sp = arg;
    struct worker_status *page = NULL;
    sigset_t all, old;
    int errp[2], err_w, e = 0, rv = SL_EIO;
    ssize_t r;

    if (s->page != NULL) {
        status_unmap(s->page);
        s->page = NULL;
    }
    int fd = status_create(&page);
    if (fd < 0) {
        LOG(LOG_ERROR, "worker.spawn_failed", "slot=%u worker=%s error=\"status page: %s\"",
            s->idx, name, strerror(errno));
        return SL_EIO;
    }
    if (pipe2(errp, O_CLOEXEC) != 0) {
        LOG(LOG_ERROR, "worker.spawn_failed", "slot=%u worker=%s error=\"pipe: %s\"", s->idx,
            name, strerror(errno));
        goto fail_pipe;
    }
    /* Above the status page's number, so that dup2 onto it cannot close this one. */
    if ((err_w = fcntl(errp[1], F_DUPFD_CLOEXEC, POOL_STATUS_FD + 1)) < 0) {
        LOG(LOG_ERROR, "worker.spawn_failed", "slot=%u worker=%s error=\"fcntl: %s\"", s->idx,
            name, strerror(errno));
        close(errp[1]);
        goto fail_dup;
    }
    close(errp[1]);
    sp->argv[sp->name_at] = (char *)name;

    /* Signals stay blocked until the child has reset its handlers: a signal there must not run
     * the pool's handler, which would write to the pool's self-pipe. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        child_exec(sp, fd, err_w);
    }
    e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(err_w);
    if (pid < 0) {
        LOG(LOG_ERROR, "worker.spawn_failed", "slot=%u worker=%s error=\"fork: %s\"", s->idx,
            name, strerror(e));
        goto fail_dup;
    }
    /* The pipe closes on exec (nothing to read) or carries exec's errno. */
    do {
        r = read(errp[0], &e, sizeof(e));
    } while (r < 0 && errno == EINTR);
    if (r == (ssize_t)sizeof(e)) {
        LOG(LOG_ERROR, "worker.spawn_failed", "slot=%u worker=%s path=\"%s\" error=\"exec: %s\"",
            s->idx, name, sp->path, strerror(e));
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        goto fail_dup;
    }
    s->pid = (int)pid;
    s->page = page;
    page = NULL;
    rv = 0;
fail_dup:
    close(errp[0]);
fail_pipe:
    close(fd); /* the mapping stays */
    status_unmap(page);
    return rv;
}

static void
spawn_signal(void *arg, int pid, int sig)
{
    (void)arg;
    if (pid > 0 && kill(pid, sig) != 0 && errno != ESRCH) {
        LOG(LOG_ERROR, "worker.signal_failed", "pid=%d signal=%d error=\"%s\"", pid, sig,
            strerror(errno));
    }
}

static uint64_t
spawn_rss(void *arg, int pid)
{
    const struct pool_spawn *sp = arg;
    char path[64], buf[128];
    unsigned long long size, resident;

    snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2) {
        return 0;
    }
    return (uint64_t)resident * (uint64_t)sp->page_size;
}

static void
spawn_release(void *arg, struct pool_slot *s)
{
    (void)arg;
    status_unmap(s->page);
    s->page = NULL;
}

void
pool_spawn_ops(struct pool_spawn *sp, struct pool_ops *ops)
{
    ops->spawn = spawn_start;
    ops->signal = spawn_signal;
    ops->rss = spawn_rss;
    ops->release = spawn_release;
    ops->arg = sp;
}

static bool
executable(const char *path)
{
    return access(path, X_OK) == 0;
}

int
pool_spawn_find_worker(char *out, size_t cap, const char *self_exe, const char *path_env)
{
    int n;

    if (self_exe != NULL) {
        const char *slash = strrchr(self_exe, '/');
        if (slash != NULL) {
            n = snprintf(out, cap, "%.*s/worker", (int)(slash - self_exe), self_exe);
            if (n > 0 && (size_t)n < cap && executable(out)) {
                return 0;
            }
        }
    }
    for (const char *p = path_env; p != NULL && *p != '\0';) {
        const char *colon = strchr(p, ':');
        size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
        /* An empty PATH entry means the current directory. */
        n = len == 0 ? snprintf(out, cap, "./worker")
                     : snprintf(out, cap, "%.*s/worker", (int)len, p);
        if (n > 0 && (size_t)n < cap && executable(out)) {
            return 0;
        }
        if (colon == NULL) {
            break;
        }
        p = colon + 1;
    }
    return SL_ENOTFOUND;
}
