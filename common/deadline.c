#include "deadline.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_PATHS 4
#define DEADLINE_PATH_MAX 512
#define DEADLINE_STEP_MS 50 /* how soon a moved deadline is seen */

/* A build with AddressSanitizer runs several times slower, and closing sockets with it: its
 * deadlines are three times as long, so that a loaded machine is not taken for a hang (a
 * real hang outlasts them all the same). */
#if defined(__SANITIZE_ADDRESS__)
#define DEADLINE_SCALE 3u
#else
#define DEADLINE_SCALE 1u
#endif

static struct {
    pthread_mutex_t mtx;     /* guards the fields below */
    bool started;
    int64_t at_ms;           /* CLOCK_MONOTONIC */
    unsigned ms;             /* as last armed, for the log */
    int code;
    const char *step;        /* what the program was doing when last told */
    char *const *argv;       /* non-NULL: execute this instead of exiting */
    char paths[DEADLINE_PATHS][DEADLINE_PATH_MAX];
} deadline = { .mtx = PTHREAD_MUTEX_INITIALIZER };

static void *
deadline_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&deadline.mtx);
        int64_t left = deadline.at_ms - (int64_t)clock_mono_ms();
        pthread_mutex_unlock(&deadline.mtx);
        if (left <= 0) {
            break;
        }
        long step = left < DEADLINE_STEP_MS ? (long)left : DEADLINE_STEP_MS;
        struct timespec ts = { 0, step * 1000000L };
        nanosleep(&ts, NULL);
    }
    /* The process ends here: the fields are not changed any more that matters. */
    pthread_mutex_lock(&deadline.mtx);
    for (int i = 0; i < DEADLINE_PATHS; i++) {
        if (deadline.paths[i][0] != '\0') {
            unlink(deadline.paths[i]);
        }
    }
    const char *step = deadline.step != NULL ? deadline.step : "";
    if (deadline.argv != NULL) {
        LOG(LOG_WARN, "restart.forced", "after_ms=%u at=\"%s\" reason=\"closing the sockets "
            "did not finish\"", deadline.ms, step);
        execv("/proc/self/exe", deadline.argv);
        LOG(LOG_ERROR, "restart.failed", "error=\"%s\"", strerror(errno));
    } else {
        LOG(LOG_WARN, "stop.forced", "after_ms=%u at=\"%s\" reason=\"closing the sockets did "
            "not finish\"", deadline.ms, step);
    }
    _exit(deadline.code);
}

int
exit_deadline(unsigned ms, int code, const char *const *paths)
{
    pthread_mutex_lock(&deadline.mtx);
    deadline.at_ms = (int64_t)clock_mono_ms() + (int64_t)ms * DEADLINE_SCALE;
    deadline.ms = ms;
    deadline.code = code;
    for (int i = 0; paths != NULL && i < DEADLINE_PATHS && paths[i] != NULL; i++) {
        snprintf(deadline.paths[i], DEADLINE_PATH_MAX, "%s", paths[i]);
    }
    bool start = !deadline.started;
    deadline.started = true;
    pthread_mutex_unlock(&deadline.mtx);
    if (!start) {
        return 0;
    }
    pthread_t t;
    pthread_attr_t a;
    int rv = pthread_attr_init(&a);
    if (rv == 0) {
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        rv = pthread_create(&t, &a, deadline_main, NULL);
        pthread_attr_destroy(&a);
    }
    if (rv != 0) {
        pthread_mutex_lock(&deadline.mtx);
        deadline.started = false;
        pthread_mutex_unlock(&deadline.mtx);
        return -1;
    }
    return 0;
}

void
exit_deadline_step(const char *what)
{
    pthread_mutex_lock(&deadline.mtx);
    deadline.step = what;
    pthread_mutex_unlock(&deadline.mtx);
}

void
exit_deadline_exec(char *const *argv)
{
    pthread_mutex_lock(&deadline.mtx);
    deadline.argv = argv;
    pthread_mutex_unlock(&deadline.mtx);
}
