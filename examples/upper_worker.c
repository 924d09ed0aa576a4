/* A native worker in a few lines with the worker API (common/wapi.h): it uppercases each
 * payload and logs it. Ctrl-C (or SIGTERM) stops it: it finishes the job in hand, gives back
 * what it prefetched and exits.
 *
 *     build/rel/examples/upper_worker [URL]        (default: the local broker)
 *     ctl push bob hello -s 3
 *
 * With SLUICE_TOKEN_FILE set, every request carries the token that file holds (a broker
 * started with --token-file requires it).
 */
#include "log.h"
#include "wapi.h"

#include <ctype.h>
#include <nng/nng.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int
main(int argc, char **argv)
{
    struct wapi_cfg cfg = { .url = argc > 1 ? argv[1] : NULL, .prefetch = 16, .stop = &stop };
    struct wapi *w;
    struct wapi_job job;
    char text[64], quoted[160];

    log_prog = "upper_worker";
    struct token token;
    const char *token_file = getenv("SLUICE_TOKEN_FILE");
    if (token_file != NULL && token_file[0] != '\0') {
        char why[512];
        if (token_load(&token, token_file, why, sizeof(why)) != 0) {
            fprintf(stderr, "upper_worker: %s\n", why);
            return 2;
        }
        cfg.token = &token;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (wapi_open(&w, &cfg) != 0) {
        return 1;
    }
    while (wapi_next(w, &job) == 0) {
        uint32_t n = job.len;
        if (n > sizeof(text)) {
            n = sizeof(text);
        }
        for (uint32_t i = 0; i < n; i++) {
            text[i] = (char)toupper(((const unsigned char *)job.payload)[i]);
        }
        log_quote(quoted, sizeof(quoted), text, n);
        LOG(LOG_INFO, "job", "id=%llu group=%.*s text=%s", (unsigned long long)job.id,
            (int)job.group.n, job.group.p, quoted);
        wapi_ack(w, job.id);
    }
    wapi_close(w);
    /* No nng_fini(): nng 1.5.2 aborts in it while a closed socket is still being torn down
     * on its threads (see ctl/main.c). */
    return 0;
}
