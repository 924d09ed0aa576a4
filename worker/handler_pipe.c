/* pipe:CMD: one long-lived `/bin/sh -c CMD` per worker, fed one job at a time as frames on its
 * stdin and answering each with a frame on its stdout (frame.h; PROTOCOL.md, "Pipe
 * handlers"). Its stderr is the worker's. A child that exits, closes a pipe, or answers with a
 * bad frame (undecodable, over FRAME_REPLY_MAX, for another job, before the whole job was
 * written) has its job nacked and is killed; the next job starts a new one, after a backoff
 * (100 ms doubling to 5 s) when it lived less than a second. At the drain deadline the child is
 * killed and its job released. The child is started with the handler, so a worker that
 * cannot fork fails at start. */
#include "handler.h"

#include "child.h"
#include "err.h"
#include "frame.h"
#include "log.h"
#include "status.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPAWN_FAIL_DELAY_MS 1000 /* a job whose child could not start is retried after this */
#define HEALTHY_MS 1000          /* a child that lived this long restarts without a backoff */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define EXIT_GRACE_MS 1000       /* at the end, after EOF on stdin, before the kill */

struct pipe_handler {
    struct handler base;
    char *cmd;
    struct wsig *sig;
    struct child_env env;
    struct child c;
    int status;                 /* the wait status of a child that was reaped */
    bool reaped;
    uint64_t restart_at_ms;     /* no new child before (CLOCK_MONOTONIC) */
    uint32_t backoff_ms;
    uint32_t restarts;
    msgpack_sbuffer sb;         /* the job frame being written */
    struct frame_reader rd;
    uint8_t body[FRAME_REPLY_MAX];
};

static int
spawn(struct pipe_handler *h)
{
    h->reaped = false;
    return child_spawn(&h->c, h->cmd, h->env.envp, false);
}

static int
pipe_make(const char *arg, const struct handler_env *env, struct handler **hp, char *err,
          size_t errcap)
{
    if (arg[0] == '\0') {
        snprintf(err, errcap, "pipe:CMD needs a command");
        return SL_EBADREQ;
    }
    struct pipe_handler *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->cmd = strdup(arg)) == NULL) {
        free(h);
        return SL_ENOMEM;
    }
    if (child_env_init(&h->env, env->environ) != 0) {
        free(h->cmd);
        free(h);
        return SL_ENOMEM;
    }
    h->base.ops = &handler_pipe_ops;
    h->sig = env->sig;
    child_init(&h->c);
    msgpack_sbuffer_init(&h->sb);
    frame_reader_init(&h->rd, h->body, FRAME_REPLY_MAX);
    if (spawn(h) != 0) {
        child_env_fini(&h->env);
        free(h->cmd);
        free(h);
        return SL_EIO;
    }
    *hp = &h->base;
    return 0;
}

/* Ends the child (killing its process group if it still runs) and sets when the next may
 * start. */
static void
end_child(struct pipe_handler *h, uint64_t id, const char *why)
{
    char how[32] = "running";
    uint64_t now = status_now_ms();
    uint64_t lived = now - h->c.started_ms;

    if (h->c.pid > 0 && !child_reaped(&h->c, &h->status)) {
        child_kill(&h->c, &h->status);
        snprintf(how, sizeof(how), "killed");
    } else {
        child_kill(&h->c, NULL); /* what it left running in its group */
        child_status_str(h->status, how, sizeof(how));
    }
    h->reaped = false;
    h->c.pid = 0;
    h->backoff_ms = lived >= HEALTHY_MS ? 0
                    : h->backoff_ms == 0 ? BACKOFF_MIN_MS
                    : h->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS
                                                          : h->backoff_ms * 2;
    h->restart_at_ms = now + h->backoff_ms;
    h->restarts++;
    LOG(LOG_WARN, "handler.exit", "id=%llu reason=\"%s\" child=%s lived_ms=%llu restart_in_ms=%u",
        (unsigned long long)id, why, how, (unsigned long long)lived, h->backoff_ms);
}

/* Waits until ms (or the drain deadline, or a stop when the child is down). Returns false if
 * the job must be released instead. */
static bool
wait_until(struct pipe_handler *h, uint64_t ms)
{
    for (uint64_t now = status_now_ms(); now < ms; now = status_now_ms()) {
        if (wsig_stopping(h->sig)) {
            return false; /* no new child for a job of a worker that stops: release it */
        }
        struct pollfd pf = { wsig_fd(h->sig), POLLIN, 0 };
        if (poll(&pf, 1, (int)(ms - now)) > 0) {
            wsig_update(h->sig);
        }
    }
    return true;
}

/* Makes sure a child runs: one that died while idle is restarted without blaming the job.
 * Returns false with res set when the job cannot run. */
static bool
ensure_child(struct pipe_handler *h, const struct wapi_job *job, struct handler_result *res)
{
    if (h->c.pid > 0 && child_reaped(&h->c, &h->status)) {
        h->reaped = true;
        end_child(h, 0, "exited between jobs");
    }
    if (h->c.pid > 0) {
        return true;
    }
    if (!wait_until(h, h->restart_at_ms)) {
        res->verdict = HANDLER_RELEASE;
        return false;
    }
    if (spawn(h) != 0) {
        LOG(LOG_WARN, "job.failed", "id=%llu reason=\"cannot start the pipe handler\"",
            (unsigned long long)job->id);
        res->verdict = HANDLER_NACK;
        res->delay_ms = SPAWN_FAIL_DELAY_MS;
        return false;
    }
    return true;
}

static void
fail(struct pipe_handler *h, const struct wapi_job *job, const char *why,
     struct handler_result *res)
{
    end_child(h, job->id, why);
    res->verdict = HANDLER_NACK;
    res->delay_ms = 0;
    handler_error(res, "pipe handler: %s", why);
}

/* A whole reply frame is in h->rd: the job's verdict. */
static void
verdict(struct pipe_handler *h, const struct wapi_job *job, struct handler_result *res)
{
    struct frame_reply rep;
    const char *why;
    char msg[512];

    if (frame_decode_reply(h->body, h->rd.len, &rep, &why) != 0) {
        fail(h, job, why, res);
        return;
    }
    if (rep.id != job->id) {
        fail(h, job, "a reply for another job", res);
        return;
    }
    if (rep.ok) {
        res->verdict = HANDLER_ACK;
        return;
    }
    log_quote(msg, sizeof(msg), rep.msg.p, rep.msg.n);
    LOG(LOG_INFO, "job.failed", "id=%llu delay_ms=%u msg=%s", (unsigned long long)job->id,
        rep.delay_ms, msg);
    res->verdict = HANDLER_NACK;
    res->delay_ms = rep.delay_ms;
    if (rep.msg.n > 0) {
        handler_error(res, "%.*s",
                      (int)(rep.msg.n < HANDLER_ERROR_MAX ? rep.msg.n : HANDLER_ERROR_MAX),
                      rep.msg.p);
    }
}

static void
pipe_run(struct handler *hh, const struct wapi_job *job, struct handler_result *res)
{
    struct pipe_handler *h = (struct pipe_handler *)hh;
    const char *why = NULL;

    if (!ensure_child(h, job, res)) {
        return;
    }
    if (frame_encode_job(&h->sb, job) != 0) {
        LOG(LOG_WARN, "job.failed", "id=%llu reason=\"cannot encode the job's frame\"",
            (unsigned long long)job->id);
        res->verdict = HANDLER_NACK;
        return;
    }
    const char *p = h->sb.data;
    size_t left = h->sb.size;
    frame_reader_reset(&h->rd);
    for (;;) {
        struct pollfd pf[3];
        int n = 0, in_at = -1;
        uint64_t now = status_now_ms(), deadline = wsig_deadline_ms(h->sig);
        bool done = false;

        if (now >= deadline) {
            end_child(h, job->id, "drain deadline: killed, job released");
            res->verdict = HANDLER_RELEASE;
            return;
        }
        pf[n++] = (struct pollfd){ wsig_fd(h->sig), POLLIN, 0 };
        pf[n++] = (struct pollfd){ h->c.out, POLLIN, 0 };
        if (left > 0) {
            in_at = n;
            pf[n++] = (struct pollfd){ h->c.in, POLLOUT, 0 };
        }
        uint64_t wait = deadline - now < 1000 ? deadline - now : 1000;
        if (poll(pf, (nfds_t)n, (int)wait) < 0 && errno != EINTR) {
            fail(h, job, "poll failed", res);
            return;
        }
        if (pf[0].revents != 0) {
            wsig_update(h->sig);
        }
        if (in_at >= 0 && pf[in_at].revents != 0) {
            ssize_t w = write(h->c.in, p, left);
            if (w > 0) {
                p += w;
                left -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                fail(h, job, "its stdin closed", res);
                return;
            }
        }
        if (pf[1].revents != 0) {
            int rv = frame_read(&h->rd, h->c.out, &done, &why);
            if (rv != 0) {
                fail(h, job, why, res);
                return;
            }
            if (done && left > 0) {
                fail(h, job, "a reply before the whole job was written", res);
                return;
            }
            if (done) {
                verdict(h, job, res);
                return;
            }
        }
        if (h->reaped && pf[1].revents == 0) {
            fail(h, job, "exited", res); /* and nothing more came from its stdout */
            return;
        }
        if (!h->reaped && child_reaped(&h->c, &h->status)) {
            h->reaped = true; /* what it wrote before it died is read by the next turn */
        }
    }
}

static void
pipe_destroy(struct handler *hh)
{
    struct pipe_handler *h = (struct pipe_handler *)hh;
    int st;

    if (h->c.pid > 0) {
        /* EOF on its stdin asks it to finish; it gets a moment before the kill. */
        if (h->c.in >= 0) {
            close(h->c.in);
            h->c.in = -1;
        }
        uint64_t end = status_now_ms() + EXIT_GRACE_MS;
        while (!child_reaped(&h->c, &st) && status_now_ms() < end) {
            usleep(10000);
        }
    }
    child_kill(&h->c, NULL);
    msgpack_sbuffer_destroy(&h->sb);
    child_env_fini(&h->env);
    free(h->cmd);
    free(h);
}

const struct handler_ops handler_pipe_ops = { "pipe", true, pipe_make, pipe_run, pipe_destroy };
