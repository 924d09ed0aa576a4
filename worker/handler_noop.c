/* noop: every job is done at once (benchmarks, draining a queue). */
#include "handler.h"

#include "err.h"

#include <stdlib.h>

static int
noop_make(const char *arg, const struct handler_env *env, struct handler **hp, char *err,
          size_t errcap)
{
    static struct handler h = { &handler_noop_ops }; /* no state: one for everyone */
    (void)arg;
    (void)env;
    (void)err;
    (void)errcap;
    *hp = &h;
    return 0;
}

static void
noop_run(struct handler *h, const struct wapi_job *job, struct handler_result *res)
{
    (void)h;
    (void)job;
    res->verdict = HANDLER_ACK;
}

static void
noop_destroy(struct handler *h)
{
    (void)h;
}

const struct handler_ops handler_noop_ops = { "noop", false, noop_make, noop_run, noop_destroy };
