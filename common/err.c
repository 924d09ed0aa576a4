#include "err.h"

#include <string.h>

static const struct {
    const char *code;
    const char *text;
} errs[SL_ERR_COUNT] = {
    [SL_OK] = { "ok", "success" },
    [SL_EBADREQ] = { "bad_request", "malformed request" },
    [SL_EUNKNOWNOP] = { "unknown_op", "unknown operation" },
    [SL_ENOTFOUND] = { "not_found", "no such object" },
    [SL_EEXISTS] = { "exists", "already exists" },
    [SL_EQUEUEFULL] = { "queue_full", "broker job or byte limit reached" },
    [SL_ETOOLARGE] = { "too_large", "payload or message too large" },
    [SL_EPAUSED] = { "paused", "paused" },
    [SL_ENOTLEADER] = { "not_leader", "router lease is not current" },
    [SL_ENOTEMPTY] = { "not_empty", "queue holds jobs" },
    [SL_EFORBIDDEN] = { "forbidden", "operation not allowed" },
    [SL_ENOMEM] = { "no_memory", "out of memory" },
    [SL_EIO] = { "io", "input/output error" },
    [SL_ETIMEDOUT] = { "timeout", "timed out" },
    [SL_EUNREACHABLE] = { "unreachable", "cannot reach the server" },
    [SL_EINTERNAL] = { "internal", "internal error" },
    [SL_EUNAUTH] = { "unauthorized", "missing or wrong token" },
    [SL_ECONFLICT] = { "conflict", "changed since it was read" },
};

const char *
sl_err_code(int err)
{
    if (err < 0 || err >= SL_ERR_COUNT) {
        return "internal";
    }
    return errs[err].code;
}

const char *
sl_err_str(int err)
{
    if (err < 0 || err >= SL_ERR_COUNT) {
        return "internal error";
    }
    return errs[err].text;
}

int
sl_err_from_code(const char *s, unsigned n)
{
    for (int i = 0; i < SL_ERR_COUNT; i++) {
        if (strlen(errs[i].code) == n && memcmp(errs[i].code, s, n) == 0) {
            return i;
        }
    }
    return SL_EINTERNAL;
}
