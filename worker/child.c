#include "child.h"

#include "err.h"
#include "log.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The worker's status page, where the process group of the running child is published. */
static struct worker_status *child_page;

static const char *const job_vars[CHILD_ENV_JOB_VARS] = {
    "SLUICE_JOB_ID=", "SLUICE_GROUP=", "SLUICE_QUEUE=", "SLUICE_ATTEMPT=",
};

static bool
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
left_out(const char *var)
{
    if (has_prefix(var, "SLUICE_STATUS_FD=")) {
        return true;
    }
    for (int i = 0; i < CHILD_ENV_JOB_VARS; i++) {
        if (has_prefix(var, job_vars[i])) {
            return true;
        }
    }
    return false;
}

int
child_env_init(struct child_env *e, char *const *env)
{
    size_t n = 0, k = 0;

    memset(e, 0, sizeof(*e));
    while (env != NULL && env[n] != NULL) {
        n++;
    }
    if ((e->envp = calloc(n + CHILD_ENV_JOB_VARS + 1, sizeof(char *))) == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!left_out(env[i])) {
            e->envp[k++] = env[i];
        }
    }
    e->base = k; /* envp[k] is NULL until a job sets its variables */
    return 0;
}

void
child_env_set_job(struct child_env *e, const struct wapi_job *job)
{
    size_t cap = sizeof(e->var[0]);
    unsigned gn = job->group.n > WIRE_NAME_MAX ? WIRE_NAME_MAX : job->group.n;
    unsigned qn = job->queue.n > WIRE_NAME_MAX ? WIRE_NAME_MAX : job->queue.n;

    snprintf(e->var[0], cap, "SLUICE_JOB_ID=%llu", (unsigned long long)job->id);
    snprintf(e->var[1], cap, "SLUICE_GROUP=%.*s", (int)gn, job->group.p != NULL ? job->group.p : "");
    snprintf(e->var[2], cap, "SLUICE_QUEUE=%.*s", (int)qn, job->queue.p != NULL ? job->queue.p : "");
    snprintf(e->var[3], cap, "SLUICE_ATTEMPT=%u", job->attempts);
    for (int i = 0; i < CHILD_ENV_JOB_VARS; i++) {
        e->envp[e->base + (size_t)i] = e->var[i];
    }
}

void
child_env_fini(struct child_env *e)
{
    free(e->envp);
    e->envp = NULL;
}

void
child_init(struct child *c)
{
    memset(c, 0, sizeof(*c));
    c->in = c->out = c->err = -1;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

void
child_close(struct child *c)
{
    close_fd(&c->in);
    close_fd(&c->out);
    close_fd(&c->err);
}

/* In the child, between fork and exec: async-signal-safe calls only. Never returns. */
static void
exec_child(const char *cmd, char *const envp[], const int in[2], const int out[2],
           const int err[2])
{
    static const int reset[] = { SIGTERM, SIGINT, SIGCHLD, SIGPIPE, SIGHUP, SIGQUIT };
    struct sigaction sa;
    sigset_t none;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++) {
        sigaction(reset[i], &sa, NULL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Its own process group: a kill at the drain deadline reaches what the command started,
     * and a Ctrl-C meant for the worker (which drains) does not cut the job short. */
    setpgid(0, 0);
    /* dup2 clears close-on-exec on the copies; every other fd of ours is close-on-exec. */
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || (err[1] >= 0 && dup2(err[1], 2) < 0)) {
        _exit(127);
    }
    close_range(3, ~0u, CLOSE_RANGE_CLOEXEC); /* nothing else of the worker's leaks in */
    char *const argv[] = { "sh", "-c", (char *)cmd, NULL };
    execve("/bin/sh", argv, envp);
    _exit(127);
}

int
child_spawn(struct child *c, const char *cmd, char *const envp[], bool pipe_err)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };

    child_init(c);
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
        (pipe_err && pipe2(err, O_CLOEXEC) != 0)) {
        LOG(LOG_ERROR, "child.spawn", "error=\"pipe: %s\"", strerror(errno));
        goto fail;
    }
    pid_t pid = fork();
    if (pid < 0) {
        LOG(LOG_ERROR, "child.spawn", "error=\"fork: %s\"", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        exec_child(cmd, envp, in, out, err);
    }
    setpgid(pid, pid); /* also here: a kill right after fork must find the group */
    if (child_page != NULL) {
        atomic_store(&child_page->handler_pgid, (int32_t)pid);
    }
    close(in[0]);
    close(out[1]);
    if (err[1] >= 0) {
        close(err[1]);
    }
    c->pid = pid;
    c->pgid = pid;
    c->in = in[1];
    c->out = out[0];
    c->err = err[0];
    c->started_ms = status_now_ms();
    fcntl(c->in, F_SETFL, O_NONBLOCK);
    fcntl(c->out, F_SETFL, O_NONBLOCK);
    if (c->err >= 0) {
        fcntl(c->err, F_SETFL, O_NONBLOCK);
    }
    return 0;

fail:
    for (int i = 0; i < 2; i++) {
        close_fd(&in[i]);
        close_fd(&out[i]);
        close_fd(&err[i]);
    }
    return SL_EIO;
}

bool
child_reaped(struct child *c, int *status)
{
    int st = 0;
    if (c->pid <= 0) {
        return false;
    }
    /* Looked at without reaping: while it is a zombie its process group's id stays its own,
     * so what it left in the group can be killed without hitting a group that reused the id. */
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int w = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    if ((w == 0 && si.si_pid == 0) || (w < 0 && errno == EINTR)) {
        return false;
    }
    if (w == 0 && c->pgid > 0) {
        kill(-c->pgid, SIGKILL);
    }
    c->pgid = 0;
    if (child_page != NULL) {
        atomic_store(&child_page->handler_pgid, 0);
    }
    pid_t r;
    while ((r = waitpid(c->pid, &st, 0)) < 0 && errno == EINTR) {
    }
    /* r < 0 (ECHILD): it is gone and its status with it. */
    *status = r == c->pid ? st : (127 << 8);
    c->pid = 0;
    return true;
}

void
child_kill(struct child *c, int *status)
{
    int st = 0;
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL); /* in case setpgid lost a race with exec */
        while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
        }
        c->pid = 0;
    }
    c->pgid = 0;
    if (child_page != NULL) {
        atomic_store(&child_page->handler_pgid, 0);
    }
    if (status != NULL) {
        *status = st;
    }
    child_close(c);
}

void
child_set_page(struct worker_status *page)
{
    child_page = page;
}

void
child_status_str(int status, char *out, size_t cap)
{
    if (WIFEXITED(status)) {
        snprintf(out, cap, "exit=%d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, cap, "signal=%d", WTERMSIG(status));
    } else {
        snprintf(out, cap, "status=%d", status);
    }
}
