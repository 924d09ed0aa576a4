#include "deadline.h"

#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_PATHS 4
#define DEADLINE_PATH_MAX 512

static struct {
    unsigned ms;
    int code;
    char paths[DEADLINE_PATHS][DEADLINE_PATH_MAX];
} deadline;

static void *
deadline_main(void *arg)
{
    (void)arg;
    struct timespec ts = { (time_t)(deadline.ms / 1000), (long)(deadline.ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
    LOG(LOG_WARN, "stop.forced", "after_ms=%u reason=\"closing the sockets did not finish\"",
        deadline.ms);
    for (int i = 0; i < DEADLINE_PATHS; i++) {
        if (deadline.paths[i][0] != '\0') {
            unlink(deadline.paths[i]);
        }
    }
    _exit(deadline.code);
}

int
exit_deadline(unsigned ms, int code, const char *const *paths)
{
    deadline.ms = ms;
    deadline.code = code;
    for (int i = 0; paths != NULL && i < DEADLINE_PATHS && paths[i] != NULL; i++) {
        snprintf(deadline.paths[i], DEADLINE_PATH_MAX, "%s", paths[i]);
    }
    pthread_t t;
    pthread_attr_t a;
    if (pthread_attr_init(&a) != 0) {
        return -1;
    }
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rv = pthread_create(&t, &a, deadline_main, NULL);
    pthread_attr_destroy(&a);
    return rv == 0 ? 0 : -1;
}
