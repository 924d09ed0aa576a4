#include "client.h"

#include "clock.h"
#include "err.h"
#include "log.h"
#include "urllist.h"

#include "spconn.h"

#include <nng/nng.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct client {
    struct spconn *conn; /* NULL: none now; the next request dials */
    nng_msg *last;  /* the last reply; decoded views point into it */
    bool stale;     /* a request timed out: the next one goes on a new connection */
    char url[512];  /* the broker asked now */
    struct urllist list; /* every broker given (a cluster's: README "Cluster") */
    bool cluster;   /* a broker named its leader: requests are kept for a resend */
    struct token token; /* attached to every request; n == 0: none */
};

/* A list's client whose connection is lost with a request outstanding tries to connect to
 * the same broker again for WATCH_LOST_MS; a broker not back by then (a leader failing over)
 * is given up, and the request goes to the next one, within the call's timeout. */
#define WATCH_LOST_MS 2000

/* A connection lost with a request outstanding is dialed again after a pause growing from
 * RETRY_MIN_MS to RETRY_MAX_MS (PROTOCOL.md "Timeouts, reconnecting and resending"). */
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 1000

static void
drop_conn(struct client *c)
{
    spconn_close(c->conn);
    c->conn = NULL;
}

bool
client_no_server(const char *url)
{
    struct stat st;

    return strncmp(url, "ipc://", 6) == 0 && url[6] != '\0' && lstat(url + 6, &st) != 0 &&
           errno == ENOENT;
}

static void
pause_ms(uint64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Dials c->url until it answers or deadline passes; connect_once: one attempt only. At open
 * (absent_fails), an ipc:// URL with no socket file fails at once; later it is a broker
 * starting again, and waited for. */
static int
dial_until(struct client *c, uint64_t deadline, bool connect_once, bool absent_fails)
{
    uint64_t wait = 5;
    for (;;) {
        if (absent_fails && client_no_server(c->url)) {
            LOG(LOG_DEBUG, "client.unreachable", "url=\"%s\" error=\"no socket file\"", c->url);
            return SL_EUNREACHABLE;
        }
        uint64_t now = clock_mono_ms(), left = deadline > now ? deadline - now : 0;
        /* One attempt waits for the handshake as long as nng's dialer would (10 s). */
        int rv = spconn_dial(&c->conn, c->url, connect_once ? 10000 : left);
        if (rv == 0 || rv == SL_EBADREQ || rv == SL_ENOMEM || connect_once) {
            return rv;
        }
        now = clock_mono_ms();
        if (now + wait >= deadline) {
            LOG(LOG_DEBUG, "client.unreachable", "url=\"%s\" error=\"no connection within "
                "the time allowed\"", c->url);
            return SL_EUNREACHABLE;
        }
        pause_ms(wait);
        wait = wait < 100 ? wait * 2 : 100;
    }
}

static int
open_one(struct client **cp, const char *url, uint64_t connect_ms)
{
    struct client *c;

    /* A server makes its socket file before it accepts: with none there, no server is up,
     * and waiting connect_ms for one would only keep the user waiting. */
    if (client_no_server(url)) {
        LOG(LOG_DEBUG, "client.unreachable", "url=\"%s\" error=\"no socket file\"", url);
        return SL_EUNREACHABLE;
    }
    if (!spconn_handles(url)) {
        return SL_EBADREQ;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        return SL_ENOMEM;
    }
    if (strlen(url) >= sizeof(c->url)) {
        free(c);
        return SL_EBADREQ;
    }
    strcpy(c->url, url);
    int rv = dial_until(c, clock_mono_ms() + connect_ms, connect_ms == 0, true);
    if (rv != 0) {
        free(c);
        return rv;
    }
    *cp = c;
    return 0;
}

int
client_open(struct client **cp, const char *url, uint64_t connect_ms)
{
    struct urllist l;
    int rv = urllist_parse(&l, url);
    if (rv != 0 || (l.n > 1 && (rv = urllist_check(&l)) != 0)) {
        return rv;
    }
    uint64_t deadline = clock_mono_ms() + connect_ms;
    rv = SL_EUNREACHABLE;
    /* Each in turn, a slice of the time at most, until one answers or the time is up. */
    do {
        bool absent = true; /* every URL an ipc:// one with no socket file: no server is up */
        for (unsigned i = 0; i < l.n; i++) {
            uint64_t now = clock_mono_ms(), left = deadline > now ? deadline - now : 0;
            uint64_t slice = l.n == 1 || left < 500 ? left : 500;
            if ((rv = open_one(cp, l.url[i], connect_ms == 0 ? 0 : slice)) == 0) {
                (*cp)->list = l;
                return 0;
            }
            if (rv == SL_EBADREQ || rv == SL_ENOMEM) {
                return rv;
            }
            absent = absent && client_no_server(l.url[i]);
        }
        if (absent) {
            break;
        }
    } while (l.n > 1 && clock_mono_ms() + 10 < deadline && (pause_ms(10), true));
    return rv;
}

void
client_set_token(struct client *c, const struct token *t)
{
    if (t == NULL) {
        token_clear(&c->token);
        return;
    }
    c->token = *t;
}

void
client_free(struct client *c)
{
    if (c == NULL) {
        return;
    }
    token_clear(&c->token);
    drop_conn(c);
    if (c->last != NULL) {
        nng_msg_free(c->last);
    }
    free(c);
}

const char *
client_url(const struct client *c)
{
    return c->url;
}

int
client_call(struct client *c, const struct wire_msg *req, struct wire_msg *rep,
            uint64_t timeout_ms)
{
    nng_msg *m = NULL;
    msgpack_packer pk;
    struct wire_out out;

    if (nng_msg_alloc(&m, 0) != 0) {
        return SL_ENOMEM;
    }
    /* One allocation for the whole request: growing it per field would copy it many times. */
    if (nng_msg_reserve(m, wire_encoded_size(req)) != 0) {
        nng_msg_free(m);
        return SL_ENOMEM;
    }
    wire_out_init(&out, m, &pk);
    if (wire_encode(req, &pk) != 0 || wire_out_flush(&out) != 0) {
        nng_msg_free(m);
        return SL_ENOMEM;
    }
    return client_call_msg(c, m, rep, timeout_ms);
}

int
client_reply_err(const struct wire_msg *rep, struct sl_str *msg)
{
    if (WIRE_HAS(rep, WK_OK) && rep->v[WK_OK].b) {
        return 0;
    }
    *msg = WIRE_HAS(rep, WK_MSG) ? rep->v[WK_MSG].s : (struct sl_str){ "", 0 };
    if (!WIRE_HAS(rep, WK_ERR)) {
        return SL_EINTERNAL;
    }
    /* A failed reply is never success, whatever its "err" says. */
    int e = sl_err_from_code(rep->v[WK_ERR].s.p, rep->v[WK_ERR].s.n);
    return e != SL_OK ? e : SL_EINTERNAL;
}

/* Moves to the broker at url: its connection is dialed by the next request. */
static void
switch_url(struct client *c, const char *url)
{
    if (strlen(url) >= sizeof(c->url)) {
        return;
    }
    drop_conn(c);
    c->stale = false;
    LOG(LOG_INFO, "client.moved", "from=\"%s\" to=\"%s\"", c->url, url);
    strcpy(c->url, url);
}

/* call_once's results for a request that was not sent (safe to send elsewhere), and (a
 * list's client) for one sent on a connection lost since: sent elsewhere too, since a
 * standby applied nothing and a push carries its idempotency key. */
#define NOT_SENT_TIMEOUT (-1)
#define NOT_SENT (-2)
#define LOST (-3)

/* Sends req (kept) and waits for its reply into c->last. A connection lost on the way is
 * dialed again, with a growing pause, and the request sent again, until deadline; a list's
 * client gives a broker that does not come back within WATCH_LOST_MS up (LOST). Before
 * anything was sent, the connection is waited for until send_deadline (NOT_SENT_TIMEOUT /
 * NOT_SENT). */
static int
round_trip(struct client *c, nng_msg *req, uint64_t send_deadline, uint64_t deadline)
{
    bool sent = false;
    uint64_t lost_at = 0, wait = RETRY_MIN_MS;
    for (;;) {
        uint64_t now = clock_mono_ms(), until = sent ? deadline : send_deadline;
        if (c->conn == NULL) {
            uint64_t dial_by = until;
            if (sent && c->list.n > 1 && lost_at + WATCH_LOST_MS < dial_by) {
                dial_by = lost_at + WATCH_LOST_MS;
            }
            int rv = now < dial_by ? dial_until(c, dial_by, false, false) : SL_EUNREACHABLE;
            if (rv != 0) {
                if (!sent) {
                    return rv == SL_EUNREACHABLE ? NOT_SENT_TIMEOUT : NOT_SENT;
                }
                return c->list.n > 1 ? LOST : clock_mono_ms() >= deadline ? SL_ETIMEDOUT
                                                                           : SL_EIO;
            }
            now = clock_mono_ms();
        }
        int rv = spconn_send(c->conn, nng_msg_body(req), nng_msg_len(req),
                             until > now ? until - now : 0);
        if (rv == 0) {
            sent = true;
            now = clock_mono_ms();
            rv = spconn_recv(c->conn, &c->last, deadline > now ? deadline - now : 0);
            if (rv == 0) {
                return 0;
            }
            if (rv == SL_ETIMEDOUT) {
                c->stale = true;
                return SL_ETIMEDOUT;
            }
        } else if (rv == SL_ETIMEDOUT && !sent) {
            drop_conn(c);
            return NOT_SENT_TIMEOUT;
        }
        /* The connection is lost (or unusable): again on a new one, after a pause. */
        drop_conn(c);
        if (rv == SL_ENOMEM) {
            return sent ? SL_EIO : NOT_SENT;
        }
        lost_at = lost_at != 0 ? lost_at : clock_mono_ms();
        sent = true; /* it may have been, and is sent again: resends are safe */
        now = clock_mono_ms();
        if (now + wait >= deadline) {
            return c->list.n > 1 ? LOST : SL_EIO;
        }
        pause_ms(wait);
        wait = wait * 2 < RETRY_MAX_MS ? wait * 2 : RETRY_MAX_MS;
    }
}

/* One request on the current broker; send_ms bounds waiting for a connection to send on.
 * NOT_SENT_TIMEOUT / NOT_SENT / LOST, SL_EIO for a connection lost after sending, or
 * client_call_msg's results. Takes req. */
static int
call_once(struct client *c, nng_msg *req, struct wire_msg *rep, uint64_t send_ms,
          uint64_t timeout_ms)
{
    if (c->stale) {
        /* After a timeout the old connection may be stuck (a server that took it and stopped
         * reading), and a late reply on it must not answer the next request. */
        drop_conn(c);
        c->stale = false;
    }
    if (token_attach(req, &c->token) != 0) {
        nng_msg_free(req);
        return SL_ENOMEM;
    }
    /* The previous reply's views die here; the caller finished with them. */
    wire_msg_fini(rep);
    if (c->last != NULL) {
        nng_msg_free(c->last);
        c->last = NULL;
    }
    uint64_t now = clock_mono_ms();
    int rv = round_trip(c, req, now + send_ms, now + timeout_ms);
    nng_msg_free(req);
    if (rv != 0) {
        return rv;
    }
    char why[160] = "reply has no 'ok'";
    if (wire_decode(rep, nng_msg_body(c->last), nng_msg_len(c->last), why, sizeof(why)) != 0 ||
        !WIRE_HAS(rep, WK_OK)) {
        LOG(LOG_WARN, "client.bad_reply", "url=\"%s\" reason=\"%s\"", c->url, why);
        return SL_EBADREQ;
    }
    return 0;
}

/* Requests up to this size are kept for a resend even before a broker is known to be in a
 * cluster, so that a client given one standby's address follows it to the leader. */
#define KEEP_MAX (256u << 10)

int
client_call_msg(struct client *c, nng_msg *req, struct wire_msg *rep, uint64_t timeout_ms)
{
    uint64_t deadline = clock_mono_ms() + timeout_ms;
    uint64_t pause = 50;
    for (;;) {
        nng_msg *copy = NULL;
        if ((c->list.n > 1 || c->cluster || nng_msg_len(req) <= KEEP_MAX) &&
            nng_msg_dup(&copy, req) != 0) {
            copy = NULL;
        }
        uint64_t now = clock_mono_ms(), left = deadline > now ? deadline - now : 1;
        /* With other brokers to try, a connection is waited for 2 s at most. */
        uint64_t send_ms = c->list.n > 1 && left > 2000 ? 2000 : left;
        int rv = call_once(c, req, rep, send_ms, left);
        req = copy;
        char leader[URLLIST_URL_MAX];
        /* Another try needs time for a round trip (100 ms at least); else the caller gets
         * this reply. */
        bool more = req != NULL && clock_mono_ms() + 100 < deadline;
        if (rv == 0 && urllist_redirect(nng_msg_body(c->last), nng_msg_len(c->last), leader,
                                        sizeof(leader))) {
            c->cluster = true;
            if (!more) {
                break; /* the caller gets the not_leader reply */
            }
            const char *to = urllist_next(&c->list, c->url, leader);
            if (leader[0] == '\0' || strcmp(to, c->url) == 0) {
                /* An election is going on: wait a little before asking again, leaving
                 * time for a last try before the deadline. */
                uint64_t t = clock_mono_ms(), room = deadline > t + 100 ? deadline - t - 100 : 0;
                pause_ms(pause < room ? pause : room);
                pause = pause < 500 ? pause * 2 : 500;
            }
            if (strcmp(to, c->url) != 0) {
                switch_url(c, to);
            }
            continue;
        }
        if ((rv == NOT_SENT || rv == NOT_SENT_TIMEOUT || rv == LOST) && c->list.n > 1 && more) {
            switch_url(c, urllist_next(&c->list, c->url, NULL));
            continue;
        }
        if (req != NULL) {
            nng_msg_free(req);
        }
        return rv == NOT_SENT_TIMEOUT ? SL_ETIMEDOUT
               : rv == NOT_SENT || rv == LOST || rv == SL_EIO ? SL_EUNREACHABLE
                                                 : rv;
    }
    if (req != NULL) {
        nng_msg_free(req);
    }
    return 0;
}
