#include "handler.h"

#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct handler_ops *const variants[] = {
    &handler_noop_ops,
    &handler_sleep_ops,
    &handler_exec_ops,
    &handler_pipe_ops,
};

int
handler_new(struct handler **hp, const char *spec, const struct handler_env *env, char *err,
            size_t errcap)
{
    const char *colon = strchr(spec, ':');
    size_t n = colon != NULL ? (size_t)(colon - spec) : strlen(spec);

    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        const struct handler_ops *ops = variants[i];
        if (strlen(ops->name) != n || memcmp(ops->name, spec, n) != 0) {
            continue;
        }
        if (ops->takes_arg && colon == NULL) {
            snprintf(err, errcap, "'%s' needs an argument: %s:...", ops->name, ops->name);
            return SL_EBADREQ;
        }
        if (!ops->takes_arg && colon != NULL) {
            snprintf(err, errcap, "'%s' takes no argument", ops->name);
            return SL_EBADREQ;
        }
        return ops->make(colon != NULL ? colon + 1 : NULL, env, hp, err, errcap);
    }
    snprintf(err, errcap, "unknown handler '%.*s' (noop, sleep:MIN-MAX, exec:CMD, pipe:CMD)",
             (int)(n > 64 ? 64 : n), spec);
    return SL_EBADREQ;
}

void
handler_run(struct handler *h, const struct wapi_job *job, struct handler_result *res)
{
    res->verdict = HANDLER_ACK;
    res->delay_ms = 0;
    res->error_len = 0;
    h->ops->run(h, job, res);
}

void
handler_free(struct handler *h)
{
    if (h != NULL) {
        h->ops->destroy(h);
    }
}

void
handler_error(struct handler_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
    res->error_len = n < 0 ? 0 : (size_t)n < sizeof(res->error) ? (size_t)n
                                                                : sizeof(res->error) - 1;
}
