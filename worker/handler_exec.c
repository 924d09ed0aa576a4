/* exec:CMD: one process per job, `/bin/sh -c CMD`. The command is the operator's and fixed;
 * the job reaches it only as data: the payload on its stdin (then EOF), the job's fields in
 * SLUICE_JOB_ID, SLUICE_GROUP, SLUICE_QUEUE, SLUICE_ATTEMPT. Exit status 0 acks the job, any
 * other exit or a signal nacks it. Each line the command writes on stdout or stderr becomes a
 * log line (event=job.output, with the job id, quoted). At the drain deadline its process
 * group is killed and the job released. A job's processes end with it: when the command
 * exits, whatever it left running in its process group is killed. */
#include "handler.h"

#include "child.h"
#include "err.h"
#include "log.h"
#include "status.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_CAP 4096            /* longer lines are logged in pieces */
#define WRITE_CHUNK 65536
#define SPAWN_FAIL_DELAY_MS 1000 /* a job that could not start is retried after this */

struct line {
    char buf[LINE_CAP];
    size_t n;
};

/* The last TAIL_CAP bytes a job's command wrote on stderr, for its error. */
#define TAIL_CAP 1024u
struct tail {
    char buf[TAIL_CAP];
    size_t n;      /* bytes written in all, this job */
};

struct exec_handler {
    struct handler base;
    char *cmd;
    struct wsig *sig;
    struct child_env env;
    struct child c;
    struct line out, err;
    struct tail tail;
};

static void
tail_add(struct tail *t, const char *p, size_t n)
{
    if (n > TAIL_CAP) {
        p += n - TAIL_CAP;
        t->n += n - TAIL_CAP;
        n = TAIL_CAP;
    }
    for (size_t i = 0; i < n; i++) {
        t->buf[(t->n + i) % TAIL_CAP] = p[i];
    }
    t->n += n;
}

/* The kept bytes in order into out (TAIL_CAP room); their count. */
static size_t
tail_get(const struct tail *t, char *out)
{
    size_t k = t->n;
    if (k > TAIL_CAP) {
        k = TAIL_CAP;
    }
    for (size_t i = 0; i < k; i++) {
        out[i] = t->buf[(t->n - k + i) % TAIL_CAP];
    }
    return k;
}

static int
exec_make(const char *arg, const struct handler_env *env, struct handler **hp, char *err,
          size_t errcap)
{
    if (arg[0] == '\0') {
        snprintf(err, errcap, "exec:CMD needs a command");
        return SL_EBADREQ;
    }
    struct exec_handler *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->cmd = strdup(arg)) == NULL) {
        free(h);
        return SL_ENOMEM;
    }
    if (child_env_init(&h->env, env->environ) != 0) {
        free(h->cmd);
        free(h);
        return SL_ENOMEM;
    }
    h->base.ops = &handler_exec_ops;
    h->sig = env->sig;
    child_init(&h->c);
    *hp = &h->base;
    return 0;
}

static void
emit(const char *stream, uint64_t id, const char *p, size_t n)
{
    char q[1024];
    if (n > 0 && p[n - 1] == '\r') {
        n--;
    }
    log_quote(q, sizeof(q), p, (unsigned)n);
    LOG(LOG_INFO, "job.output", "id=%llu stream=%s line=%s", (unsigned long long)id, stream, q);
}

/* Reads what fd holds, logging each whole line. Returns false at EOF or on an error (the rest
 * of a last unterminated line is logged then). */
static bool
pump(int fd, struct line *l, struct tail *t, const char *stream, uint64_t id)
{
    for (;;) {
        ssize_t r = read(fd, l->buf + l->n, sizeof(l->buf) - l->n);
        if (r > 0 && t != NULL) {
            tail_add(t, l->buf + l->n, (size_t)r);
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && errno == EAGAIN) {
            return true;
        }
        if (r <= 0) {
            if (l->n > 0) {
                emit(stream, id, l->buf, l->n);
                l->n = 0;
            }
            return false;
        }
        l->n += (size_t)r;
        char *start = l->buf, *end = l->buf + l->n, *nl;
        while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
            emit(stream, id, start, (size_t)(nl - start));
            start = nl + 1;
        }
        size_t rest = (size_t)(end - start);
        if (rest == sizeof(l->buf)) {
            emit(stream, id, l->buf, rest); /* a line longer than the buffer: in pieces */
            rest = 0;
        } else if (start != l->buf) {
            memmove(l->buf, start, rest);
        }
        l->n = rest;
    }
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void
exec_run(struct handler *hh, const struct wapi_job *job, struct handler_result *res)
{
    struct exec_handler *h = (struct exec_handler *)hh;
    struct child *c = &h->c;
    const char *p = job->payload;
    size_t left = job->len;
    int status = 0;
    char how[32];

    child_env_set_job(&h->env, job);
    if (child_spawn(c, h->cmd, h->env.envp, true) != 0) {
        res->verdict = HANDLER_NACK;
        res->delay_ms = SPAWN_FAIL_DELAY_MS;
        handler_error(res, "the command could not be started");
        return;
    }
    h->out.n = h->err.n = h->tail.n = 0;
    if (left == 0) {
        close_fd(&c->in);
    }
    for (;;) {
        struct pollfd pf[4];
        int n = 0, in_at = -1, out_at = -1, err_at = -1;
        uint64_t now = status_now_ms(), deadline = wsig_deadline_ms(h->sig);

        if (now >= deadline) {
            child_kill(c, NULL);
            LOG(LOG_WARN, "job.stopped", "id=%llu reason=\"drain deadline: killed, released\"",
                (unsigned long long)job->id);
            res->verdict = HANDLER_RELEASE;
            return;
        }
        pf[n++] = (struct pollfd){ wsig_fd(h->sig), POLLIN, 0 };
        if (c->in >= 0) {
            in_at = n;
            pf[n++] = (struct pollfd){ c->in, POLLOUT, 0 };
        }
        if (c->out >= 0) {
            out_at = n;
            pf[n++] = (struct pollfd){ c->out, POLLIN, 0 };
        }
        if (c->err >= 0) {
            err_at = n;
            pf[n++] = (struct pollfd){ c->err, POLLIN, 0 };
        }
        /* SIGCHLD wakes the poll through the signal pipe; the timeout is only a backstop. */
        uint64_t wait = deadline - now < 1000 ? deadline - now : 1000;
        if (poll(pf, (nfds_t)n, (int)wait) < 0 && errno != EINTR) {
            LOG(LOG_ERROR, "job.poll", "id=%llu error=\"%s\"", (unsigned long long)job->id,
                strerror(errno));
        }
        if (pf[0].revents != 0) {
            wsig_update(h->sig);
        }
        if (in_at >= 0 && pf[in_at].revents != 0) {
            ssize_t w = write(c->in, p, left < WRITE_CHUNK ? left : WRITE_CHUNK);
            if (w > 0) {
                p += w;
                left -= (size_t)w;
            }
            /* Done, or the command stopped reading (EPIPE): either way it gets EOF. */
            if (left == 0 || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                close_fd(&c->in);
            }
        }
        if (out_at >= 0 && pf[out_at].revents != 0 && !pump(c->out, &h->out, NULL, "stdout", job->id)) {
            close_fd(&c->out);
        }
        if (err_at >= 0 && pf[err_at].revents != 0 && !pump(c->err, &h->err, &h->tail, "stderr", job->id)) {
            close_fd(&c->err);
        }
        if (child_reaped(c, &status)) {
            break;
        }
    }
    /* What it wrote before it exited is in the pipes; what its own children write later is
     * not waited for. */
    if (c->out >= 0) {
        pump(c->out, &h->out, NULL, "stdout", job->id);
        if (h->out.n > 0) {
            emit("stdout", job->id, h->out.buf, h->out.n);
        }
    }
    if (c->err >= 0) {
        pump(c->err, &h->err, &h->tail, "stderr", job->id);
        if (h->err.n > 0) {
            emit("stderr", job->id, h->err.buf, h->err.n);
        }
    }
    child_kill(c, NULL); /* what the command left running in its group ends with the job */
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        res->verdict = HANDLER_ACK;
        return;
    }
    child_status_str(status, how, sizeof(how));
    LOG(LOG_INFO, "job.failed", "id=%llu %s", (unsigned long long)job->id, how);
    res->verdict = HANDLER_NACK;
    res->delay_ms = 0;
    /* "exit 3" or "signal 9 (Killed)", then the end of its stderr */
    char last[TAIL_CAP];
    size_t k = tail_get(&h->tail, last);
    while (k > 0 && (last[k - 1] == '\n' || last[k - 1] == '\r')) {
        k--;
    }
    if (WIFSIGNALED(status)) {
        handler_error(res, "signal %d (%s)%s%.*s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                      k > 0 ? "\n" : "", (int)k, last);
    } else {
        handler_error(res, "exit %d%s%.*s", WIFEXITED(status) ? WEXITSTATUS(status) : status,
                      k > 0 ? "\n" : "", (int)k, last);
    }
}

static void
exec_destroy(struct handler *hh)
{
    struct exec_handler *h = (struct exec_handler *)hh;
    child_kill(&h->c, NULL);
    child_env_fini(&h->env);
    free(h->cmd);
    free(h);
}

const struct handler_ops handler_exec_ops = { "exec", true, exec_make, exec_run, exec_destroy };
