/* Error codes shared by every sluice program and by the wire protocol.
 *
 * A function that can fail returns 0 (SL_OK) or one of these. Each code has a
 * stable wire name ("err" in a reply); add new codes at the end and document
 * them in PROTOCOL.md. */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

enum sl_err {
    SL_OK = 0,
    SL_EBADREQ,     /* bad_request: malformed message, missing or wrong-typed field */
    SL_EUNKNOWNOP,  /* unknown_op: the "op" is not one the broker knows */
    SL_ENOTFOUND,   /* not_found: the named queue, group or job does not exist */
    SL_EEXISTS,     /* exists: a queue of that name already exists */
    SL_EQUEUEFULL,  /* queue_full: the broker's job or byte limit would be exceeded */
    SL_ETOOLARGE,   /* too_large: a payload or message over the configured limit */
    SL_EPAUSED,     /* paused: the target is paused and the op needs it active */
    SL_ENOTLEADER,  /* not_leader: the caller's router lease is stale */
    SL_ENOTEMPTY,   /* not_empty: queue destroy refused while it holds jobs */
    SL_EFORBIDDEN,  /* forbidden: the op is never allowed on this object (e.g. destroy default) */
    SL_ENOMEM,      /* no_memory: the broker could not allocate; nothing changed */
    SL_EIO,         /* io: a disk or system call failed */
    SL_ETIMEDOUT,   /* timeout: a client gave up waiting for a reply */
    SL_EUNREACHABLE,/* unreachable: a client could not connect to the server */
    SL_EINTERNAL,   /* internal: a bug; the request changed nothing */
    SL_EUNAUTH,     /* unauthorized: the server wants a token and the request's is missing or wrong */
    SL_ECONFLICT,   /* conflict: the object is no longer as the request's `expect` says */
    SL_ERR_COUNT
};

/* The wire name of err, e.g. "queue_full"; "internal" for an unknown value. Never NULL. */
const char *sl_err_code(int err);

/* The code whose wire name is the n bytes at s; SL_EINTERNAL if none matches. */
int sl_err_from_code(const char *s, unsigned n);

/* A short human description of err. Never NULL. */
const char *sl_err_str(int err);

#endif
