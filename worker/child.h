/* A handler's child process: `/bin/sh -c CMD` started with fork+exec, its stdin and stdout
 * (and optionally stderr) on pipes, in a process group of its own so that a kill reaches
 * whatever the command started.
 *
 * nng is not fork-safe: between fork and exec the child makes only async-signal-safe calls
 * (signal dispositions, setpgid, dup2, execve, _exit); the environment is built beforehand.
 * The worker has at most one child per handler and reaps it by pid. */
#ifndef SLUICE_CHILD_H
#define SLUICE_CHILD_H

#include "wapi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct child {
    pid_t pid;                  /* 0: none running */
    pid_t pgid;                 /* its process group (its pid), kept after the reap until
                                   child_kill: what the command started may still run there */
    int in;                     /* write end of its stdin; -1 when closed */
    int out;                    /* read end of its stdout; -1 when closed */
    int err;                    /* read end of its stderr; -1 when closed or not piped */
    uint64_t started_ms;        /* CLOCK_MONOTONIC */
};

/* A child's environment: the worker's, less the variables a job sets, plus the job's. */
#define CHILD_ENV_JOB_VARS 4    /* SLUICE_JOB_ID, SLUICE_GROUP, SLUICE_QUEUE, SLUICE_ATTEMPT */
struct child_env {
    char **envp;                /* NULL-terminated, for execve */
    size_t base;                /* envp[base..base + CHILD_ENV_JOB_VARS) are the job's */
    char var[CHILD_ENV_JOB_VARS][WIRE_NAME_MAX + 32];
};

/* Copies the pointers of env (borrowed: they must outlive e), leaving out SLUICE_STATUS_FD
 * (the worker's own) and the job variables. Returns 0 or SL_ENOMEM. */
int child_env_init(struct child_env *e, char *const *env);

/* Sets the job variables from job (no allocation). */
void child_env_set_job(struct child_env *e, const struct wapi_job *job);

void child_env_fini(struct child_env *e);

struct worker_status;

/* Publishes the process group of every child started from now on in page's handler_pgid
 * (cleared by child_kill), so that worker-pool can end it if this worker is killed. page may
 * be NULL (a worker without a pool). */
void child_set_page(struct worker_status *page);

/* Sets c empty (no process, fds -1). */
void child_init(struct child *c);

/* Starts /bin/sh -c cmd with envp, stdin and stdout on pipes and stderr on a pipe when
 * pipe_err (else the worker's stderr). Our ends are non-blocking and close-on-exec.
 * Returns 0 or SL_EIO (logged). */
int child_spawn(struct child *c, const char *cmd, char *const envp[], bool pipe_err);

/* If the child has exited, kills what it left in its process group (before the reap, while
 * the group's id is still its own) and reaps it: true with its wait status in *status. Never
 * blocks. */
bool child_reaped(struct child *c, int *status);

/* Kills the child's process group with SIGKILL, reaps the child (its wait status in *status,
 * which may be NULL; 0 if it was reaped already) and closes our ends of its pipes. Nothing a
 * child left behind outlives its job (or its handler): child_reaped killed the group of one
 * reaped already. */
void child_kill(struct child *c, int *status);

/* Closes our ends of its pipes. */
void child_close(struct child *c);

/* Describes a wait status for a log line: "exit=3" or "signal=9". */
void child_status_str(int status, char *out, size_t cap);

#endif
