#include "wsig.h"

#include "err.h"
#include "log.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t wsig_stop_flag;
static volatile sig_atomic_t pipe_wfd = -1; /* the installed self-pipe's write end */

static void
on_signal(int sig)
{
    int saved = errno;
    char c = sig == SIGCHLD ? 'C' : 'T';
    if (sig != SIGCHLD) {
        wsig_stop_flag = 1;
    }
    if (pipe_wfd >= 0) {
        ssize_t w = write(pipe_wfd, &c, 1); /* full pipe: a wake-up is pending anyway */
        (void)w;
    }
    errno = saved;
}

int
wsig_init(struct wsig *s, uint64_t drain_ms, bool install)
{
    int fds[2];
    struct sigaction sa;

    memset(s, 0, sizeof(*s));
    s->rfd = s->wfd = -1;
    s->drain_ms = drain_ms;
    s->deadline_ms = UINT64_MAX;
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        LOG(LOG_ERROR, "signals", "error=\"pipe: %s\"", strerror(errno));
        return SL_EIO;
    }
    s->rfd = fds[0];
    s->wfd = fds[1];
    if (!install) {
        return 0;
    }
    pipe_wfd = s->wfd;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
        sigaction(SIGCHLD, &sa, NULL) != 0) {
        LOG(LOG_ERROR, "signals", "error=\"sigaction: %s\"", strerror(errno));
        pipe_wfd = -1;
        close(s->rfd);
        close(s->wfd);
        return SL_EIO;
    }
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
    s->installed = true;
    return 0;
}

void
wsig_fini(struct wsig *s)
{
    if (s->installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGCHLD, &sa, NULL);
        pipe_wfd = -1;
        s->installed = false;
    }
    if (s->rfd >= 0) {
        close(s->rfd);
        close(s->wfd);
    }
    s->rfd = s->wfd = -1;
}

int
wsig_fd(const struct wsig *s)
{
    return s->rfd;
}

static void
note_stop(struct wsig *s)
{
    if (!s->stopping) {
        s->stopping = true;
        s->deadline_ms = status_now_ms() + s->drain_ms;
        if (s->on_stop != NULL) {
            s->on_stop(s->on_stop_arg);
        }
    }
}

void
wsig_update(struct wsig *s)
{
    char buf[64];
    ssize_t n;

    while ((n = read(s->rfd, buf, sizeof(buf))) > 0) {
        if (memchr(buf, 'T', (size_t)n) != NULL) {
            note_stop(s);
        }
    }
    if (s->installed && wsig_stop_flag) {
        note_stop(s);
    }
}

void
wsig_stop(struct wsig *s)
{
    note_stop(s);
    ssize_t w = write(s->wfd, "T", 1);
    (void)w;
}

bool
wsig_stopping(const struct wsig *s)
{
    return s->stopping;
}

uint64_t
wsig_deadline_ms(const struct wsig *s)
{
    return s->deadline_ms;
}
