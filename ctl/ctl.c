#include "ctl.h"

#include "err.h"
#include "json.h"
#include "urllist.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
ctl_init(struct ctl *ctl, const char *cmd, const char *usage, const char *url,
         uint64_t timeout_ms)
{
    char dir[RUNDIR_MAX];

    memset(ctl, 0, sizeof(*ctl));
    ctl->cmd = cmd;
    ctl->usage = usage;
    ctl->timeout_ms = timeout_ms;
    ctl->op = "";
    ctl->peer = "the broker";
    wire_msg_init(&ctl->rep);
    if (url != NULL) {
        ctl->url = url;
        return 0;
    }
    if (rundir_default(dir, sizeof(dir)) != 0 ||
        rundir_ipc_url(ctl->url_buf, sizeof(ctl->url_buf), dir, "broker.ipc") != 0) {
        fprintf(stderr,
                "ctl: the runtime directory's path is too long for a socket: set a shorter "
                "SLUICE_DIR or give --url\n");
        return CTL_EXIT_USAGE;
    }
    ctl->url = ctl->url_buf;
    snprintf(ctl->dir, sizeof(ctl->dir), "%s", dir);
    ctl->sock = "broker.ipc";
    return 0;
}

int
ctl_use_pool(struct ctl *ctl, const char *url)
{
    char dir[RUNDIR_MAX];

    ctl->peer = "worker-pool";
    ctl->dir[0] = '\0';
    if (url != NULL) {
        ctl->url = url;
        return 0;
    }
    if (rundir_default(dir, sizeof(dir)) != 0 ||
        rundir_ipc_url(ctl->url_buf, sizeof(ctl->url_buf), dir, "pool.ipc") != 0) {
        fprintf(stderr,
                "ctl: the runtime directory's path is too long for a socket: set a shorter "
                "SLUICE_DIR or give --pool-url\n");
        return CTL_EXIT_USAGE;
    }
    ctl->url = ctl->url_buf;
    snprintf(ctl->dir, sizeof(ctl->dir), "%s", dir);
    ctl->sock = "pool.ipc";
    return 0;
}

int
ctl_trust(struct ctl *ctl)
{
    char why[RUNDIR_MAX * 2 + 256];

    if (ctl->url != ctl->url_buf || ctl->dir[0] == '\0') {
        return 0;
    }
    if (rundir_client_url(ctl->url_buf, sizeof(ctl->url_buf), ctl->dir, ctl->sock, why,
                          sizeof(why)) != 0) {
        fprintf(stderr, "ctl: %s (or give %s)\n", why,
                strcmp(ctl->sock, "pool.ipc") == 0 ? "--pool-url" : "--url");
        return CTL_EXIT_USAGE;
    }
    return 0;
}

void
ctl_fini(struct ctl *ctl)
{
    wire_msg_fini(&ctl->rep);
    client_free(ctl->cl); /* frees the message the reply's views pointed into */
    ctl->cl = NULL;
    token_clear(&ctl->token);
}

int
ctl_connect(struct ctl *ctl)
{
    if (ctl->cl != NULL) {
        return 0;
    }
    int rv = ctl_trust(ctl);
    if (rv != 0) {
        return rv;
    }
    rv = client_open(&ctl->cl, ctl->url, ctl->timeout_ms);
    switch (rv) {
    case 0:
        client_set_token(ctl->cl, &ctl->token);
        return 0;
    case SL_EBADREQ:
        fprintf(stderr, "ctl: '%s' is not a valid address for %s (e.g. ipc:///path/broker.ipc, "
                        "tcp://host:port, or a cluster's URL,URL,... of at most %d)\n",
                ctl->url, ctl->peer, URLLIST_MAX);
        return CTL_EXIT_USAGE;
    case SL_EUNREACHABLE:
        if (strchr(ctl->url, ',') != NULL) {
            fprintf(stderr, "ctl: cannot reach %s at any of %s\n", ctl->peer, ctl->url);
            return CTL_EXIT_UNREACHABLE;
        }
        if (client_no_server(ctl->url)) {
            fprintf(stderr, "ctl: %s is not running: no socket file for %s (start it: %s)\n",
                    ctl->peer, ctl->url,
                    strcmp(ctl->peer, "worker-pool") == 0
                        ? "bin/worker-pool, or `make run` for broker, worker-pool and router"
                        : "bin/broker, or `make run` for broker, worker-pool and router");
            return CTL_EXIT_UNREACHABLE;
        }
        fprintf(stderr, "ctl: cannot reach %s at %s\n", ctl->peer, ctl->url);
        return CTL_EXIT_UNREACHABLE;
    default:
        fprintf(stderr, "ctl: cannot reach %s at %s: %s\n", ctl->peer, ctl->url, sl_err_str(rv));
        return CTL_EXIT_UNREACHABLE;
    }
}

/* Turns client_call's result and the reply's "ok" into an exit code, printing why. */
static int
finish(struct ctl *ctl, int rv)
{
    switch (rv) {
    case 0:
        break;
    case SL_ETIMEDOUT:
        fprintf(stderr, "ctl: no reply to %s from %s at %s within %" PRIu64 " ms\n", ctl->op,
                ctl->peer, ctl->url, ctl->timeout_ms);
        return CTL_EXIT_UNREACHABLE;
    case SL_EUNREACHABLE:
        fprintf(stderr, "ctl: lost the connection to %s at %s during %s\n", ctl->peer, ctl->url,
                ctl->op);
        return CTL_EXIT_UNREACHABLE;
    case SL_EBADREQ:
        return ctl_bad_reply(ctl, "not a valid sluice message");
    default:
        fprintf(stderr, "ctl: %s: %s\n", ctl->op, sl_err_str(rv));
        return CTL_EXIT_FAILED;
    }
    struct sl_str msg;
    if (client_reply_err(&ctl->rep, &msg) == 0) {
        return 0;
    }
    struct sl_str err = WIRE_HAS(&ctl->rep, WK_ERR) ? ctl->rep.v[WK_ERR].s : SL_STR_LIT("internal");
    /* err and msg are the broker's text: written terminal-safe. */
    fputs("ctl: ", stderr);
    json_write_text(stderr, err.p, err.n);
    fputs(": ", stderr);
    if (msg.n > 0) {
        json_write_text(stderr, msg.p, msg.n);
    } else {
        fputs(sl_err_str(sl_err_from_code(err.p, err.n)), stderr);
    }
    fputc('\n', stderr);
    return CTL_EXIT_FAILED;
}

int
ctl_call(struct ctl *ctl, const char *op, struct wire_msg *req)
{
    nng_msg *m = NULL;
    msgpack_packer pk;

    /* Encoded here and sent through ctl_call_msg, the one path every request takes. */
    wire_set_cstr(req, WK_OP, op);
    ctl->op = op;
    if (nng_msg_alloc(&m, 0) != 0) {
        fprintf(stderr, "ctl: %s: out of memory\n", op);
        return CTL_EXIT_FAILED;
    }
    msgpack_packer_init(&pk, m, wire_pack_into_msg);
    if (wire_encode(req, &pk) != 0) {
        nng_msg_free(m);
        fprintf(stderr, "ctl: %s: out of memory\n", op);
        return CTL_EXIT_FAILED;
    }
    return ctl_call_msg(ctl, op, m);
}

int
ctl_call_msg(struct ctl *ctl, const char *op, nng_msg *req)
{
    int rv;

    ctl->op = op;
    if ((rv = ctl_connect(ctl)) != 0) {
        nng_msg_free(req);
        return rv;
    }
    return finish(ctl, client_call_msg(ctl->cl, req, &ctl->rep, ctl->timeout_ms));
}

int
ctl_usage(const struct ctl *ctl, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ctl %s: ", ctl->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: ctl %s %s (see ctl %s --help)\n", ctl->cmd, ctl->usage, ctl->cmd);
    return CTL_EXIT_USAGE;
}

int
ctl_bad_reply(const struct ctl *ctl, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ctl: unexpected reply to %s from %s at %s: ", ctl->op, ctl->peer, ctl->url);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CTL_EXIT_FAILED;
}

int
ctl_check_name(const struct ctl *ctl, const char *what, const char *s)
{
    if (wire_name_ok(s, strlen(s))) {
        return 0;
    }
    return ctl_usage(ctl, "%s name '%s' is invalid: a name is 1-%d bytes of A-Z a-z 0-9 . _ : -",
                     what, s, WIRE_NAME_MAX);
}

int
ctl_reply_u64(const struct ctl *ctl, enum wire_key k, uint64_t *out)
{
    /* wire_decode has checked the type of every key it knows; only presence is left. */
    if (!WIRE_HAS(&ctl->rep, k)) {
        return ctl_bad_reply(ctl, "no '%s'", wire_key_name(k));
    }
    *out = ctl->rep.v[k].u;
    return 0;
}

static const char *
type_name(msgpack_object_type t)
{
    switch (t) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "a non-negative integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "a negative integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_BIN: return "binary";
    default: return "an extension value";
    }
}

int
ctl_reply_obj(const struct ctl *ctl, enum wire_key k, msgpack_object_type type,
              const msgpack_object **out)
{
    if (!WIRE_HAS(&ctl->rep, k)) {
        return ctl_bad_reply(ctl, "no '%s'", wire_key_name(k));
    }
    const msgpack_object *o = ctl->rep.v[k].any;
    if (o->type != type) {
        return ctl_bad_reply(ctl, "'%s' is %s, not %s", wire_key_name(k), type_name(o->type),
                             type_name(type));
    }
    *out = o;
    return 0;
}

int
ctl_print_reply_json(const struct ctl *ctl)
{
    const msgpack_object *root = &ctl->rep.up.data;
    bool first = true;

    /* A decoded reply is a map whose keys are all strings (wire_decode checks both). */
    fputc('{', stdout);
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 2 &&
            memcmp(k->via.str.ptr, "ok", 2) == 0) {
            continue;
        }
        if (!first) {
            fputc(',', stdout);
        }
        first = false;
        json_write(stdout, k);
        fputc(':', stdout);
        json_write(stdout, &root->via.map.ptr[i].val);
    }
    fputs("}\n", stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "ctl: cannot write to stdout\n");
        return CTL_EXIT_FAILED;
    }
    return 0;
}

const msgpack_object *
ctl_map_get(const msgpack_object *map, const char *key)
{
    return wire_obj_get(map, key);
}

void
ctl_fmt_duration_us(char *out, size_t cap, uint64_t us)
{
    uint64_t s = us / 1000000;

    if (us < 1000) {
        snprintf(out, cap, "%.3f ms", (double)us / 1e3);
    } else if (us < 1000000) {
        snprintf(out, cap, "%.1f ms", (double)us / 1e3);
    } else if (s < 60) {
        snprintf(out, cap, "%.3f s", (double)us / 1e6);
    } else if (s < 3600) {
        snprintf(out, cap, "%" PRIu64 "m %02" PRIu64 "s", s / 60, s % 60);
    } else if (s < 86400) {
        snprintf(out, cap, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s", s / 3600,
                 s / 60 % 60, s % 60);
    } else {
        snprintf(out, cap, "%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m", s / 86400,
                 s / 3600 % 24, s / 60 % 60);
    }
}

void
ctl_fmt_bytes(char *out, size_t cap, uint64_t bytes)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)bytes;
    unsigned u = 0;

    if (bytes < 1024) {
        snprintf(out, cap, "%" PRIu64 " B", bytes);
        return;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(out, cap, "%.1f %s", v, units[u]);
}
