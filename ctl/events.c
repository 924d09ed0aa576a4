/* ctl events: tails the broker's event stream (PROTOCOL.md, Events) on --events-url
 * (SLUICE_EVENTS_URL), default ipc://$SLUICE_DIR/events.ipc, printing one line per event until
 * Ctrl-C (or --count events):
 *
 *   ts=2026-11-27T22:11:10.123Z event=route.set group=bob queue=group.bob moved=990
 *       reason="count 1000 > high 100" lease=1795819037811
 *
 * ts and event first, then the event's other fields in the order the broker sent them; strings
 * that are plain words bare, others quoted as JSON strings (so terminal-safe); numbers bare;
 * nil as -. With --json, each event is one JSON object per line, every field as sent. Each line
 * is flushed at once, so a pipe sees events as they happen. Events are a live feed: only what
 * happens after ctl connects is shown, and PUB drops events for a reader that falls behind. */
#include "ctl.h"

#include "err.h"
#include "evsub.h"
#include "json.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* How often the loop looks at the stop flag while no event comes. */
#define EVENTS_POLL_MS 100
#define EVENTS_COUNT_MAX 1000000000u

const struct opt events_opts[] = {
    { CTL_OPT_JSON, "json", 0, NULL, NULL, "one JSON object per event and line" },
    { CTL_OPT_COUNT, "count", 'n', "N", NULL, "exit after N events (default: until Ctrl-C)" },
    { CTL_OPT_EVENTS_URL, "events-url", 0, "URL", "SLUICE_EVENTS_URL",
      "the broker's event socket, or a cluster's URL,URL,... (default "
      "ipc://$SLUICE_DIR/events.ipc)" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

static volatile sig_atomic_t stop_flag;

static void
on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* A string printed bare when it is one plain word, else as a JSON string. */
static void
write_value_str(FILE *f, const char *p, size_t n)
{
    bool plain = n > 0;
    for (size_t i = 0; i < n && plain; i++) {
        unsigned char c = (unsigned char)p[i];
        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == ':' || c == '-' || c == '/';
    }
    if (plain) {
        fwrite(p, 1, n, f);
    } else {
        json_write_str(f, p, n);
    }
}

static void
write_ts(FILE *f, uint64_t ts_ms)
{
    time_t secs = (time_t)(ts_ms / 1000);
    struct tm tm;
    char buf[32];

    gmtime_r(&secs, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "ts=%s.%03uZ", buf, (unsigned)(ts_ms % 1000));
}

static bool
key_is(const msgpack_object *k, const char *z)
{
    size_t n = strlen(z);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, z, n) == 0;
}

/* One key=value line for the event map m (ev: its decoded keys). */
static int
write_line(FILE *f, const struct wire_msg *ev, const msgpack_object *m)
{
    if (WIRE_HAS(ev, WK_TS_MS)) {
        write_ts(f, ev->v[WK_TS_MS].u);
        fputc(' ', f);
    }
    fputs("event=", f);
    write_value_str(f, ev->v[WK_EVENT].s.p, ev->v[WK_EVENT].s.n);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || key_is(k, "event") || key_is(k, "ts_ms")) {
            continue;
        }
        fputc(' ', f);
        write_value_str(f, k->via.str.ptr, k->via.str.size);
        fputc('=', f);
        switch (v->type) {
        case MSGPACK_OBJECT_STR:
        case MSGPACK_OBJECT_BIN:
            write_value_str(f, v->via.str.ptr, v->via.str.size);
            break;
        case MSGPACK_OBJECT_NIL:
            fputc('-', f);
            break;
        default:
            json_write(f, v); /* numbers, booleans; maps and arrays as JSON */
            break;
        }
    }
    fputc('\n', f);
    return 0;
}

int
cmd_events(struct ctl *ctl, int argc, char **argv, const struct opt_vals *ov)
{
    char urlbuf[RUNDIR_MAX + 32];
    const char *url = ov->v[CTL_OPT_EVENTS_URL];
    bool as_json = ov->v[CTL_OPT_JSON] != NULL;
    uint64_t count = 0, seen = 0;
    struct evsub *sub = NULL;
    struct wire_msg ev;
    int rv;

    (void)argc;
    (void)argv;
    if (ov->v[CTL_OPT_COUNT] != NULL &&
        opt_u64("count", ov->v[CTL_OPT_COUNT], 1, EVENTS_COUNT_MAX, &count) != 0) {
        return CTL_EXIT_USAGE;
    }
    if (url == NULL) {
        char why[RUNDIR_MAX * 2 + 256];
        if (rundir_default_url(urlbuf, sizeof(urlbuf), "events.ipc", why, sizeof(why)) != 0) {
            fprintf(stderr, "ctl: %s (or give --events-url)\n", why);
            return CTL_EXIT_USAGE;
        }
        url = urlbuf;
    }
    switch ((rv = evsub_open(&sub, url, ctl->timeout_ms))) {
    case 0:
        break;
    case SL_EBADREQ:
        fprintf(stderr, "ctl: '%s' is not a valid address for the broker's events\n", url);
        return CTL_EXIT_USAGE;
    case SL_EUNREACHABLE:
        fprintf(stderr, "ctl: cannot reach the broker's events at %s\n", url);
        return CTL_EXIT_UNREACHABLE;
    default:
        fprintf(stderr, "ctl: cannot subscribe to %s: %s\n", url, sl_err_str(rv));
        return CTL_EXIT_FAILED;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    rv = 0;
    wire_msg_init(&ev);
    while (!stop_flag && (count == 0 || seen < count)) {
        int r = evsub_recv(sub, &ev, EVENTS_POLL_MS);
        if (r == SL_ETIMEDOUT || r == SL_EBADREQ) {
            continue;
        }
        if (r != 0) {
            fprintf(stderr, "ctl: lost the event stream at %s: %s\n", url, sl_err_str(r));
            rv = CTL_EXIT_FAILED;
            break;
        }
        seen++;
        if (as_json) {
            json_write(stdout, &ev.up.data);
            fputc('\n', stdout);
        } else {
            write_line(stdout, &ev, &ev.up.data);
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "ctl: cannot write to stdout\n");
            rv = CTL_EXIT_FAILED;
            break;
        }
    }
    wire_msg_fini(&ev);
    evsub_leave(sub); /* ctl ends now: its close is not worth nng's risk (evsub.h) */
    return rv;
}
