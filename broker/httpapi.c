#include "httpapi.h"

#include "err.h"
#include "httpjson.h"
#include "log.h"
#include "ops.h"
#include "park.h"
#include "poolproxy.h"
#include "promhttp.h"
#include "sse.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 512

/* One accepted request, from its headers to its answer. */
struct hreq {
    struct waiter wt;            /* for ops_handle; send() answers */
    struct httpapi *api;
    struct hreq *next, *prev;    /* in api->live */
    nng_aio *aio;                /* the handler's: finished once, by answer() */
    nng_http_req *req;
    const struct hj_endpoint *e;
    struct sl_str arg;           /* into path */
    char path[PATH_MAX_LEN];
    const char *body;            /* buf, once read */
    size_t blen;
    char *buf;                   /* the body, blen bytes (malloc'ed; NULL: none) */
    nng_aio *rdaio;              /* reads the body; NULL once read */
    nng_http_conn *conn;
    nng_aio *watch;              /* reads the connection while the reserve is parked */
    char peek;                   /* its one byte */
    unsigned refs;               /* 1, 2 while watch runs: freed at 0 (api->lock) */
    bool answered;               /* retired: watch's end only frees (api->lock) */
    bool close;                  /* watch took a byte of the next request: close after */
    struct hreq *drop_next;      /* in httpapi_quiesce's list */
    bool in_ops;                 /* ops_handle has not returned yet */
    bool early;                  /* send() came before it returned */
};

int
httpapi_init(struct httpapi *api, struct broker *b, const char *events_url)
{
    memset(api, 0, sizeof(*api));
    api->b = b;
    if (pthread_mutex_init(&api->lock, NULL) != 0) {
        return SL_EIO;
    }
    if (pthread_cond_init(&api->idle, NULL) != 0) {
        pthread_mutex_destroy(&api->lock);
        return SL_EIO;
    }
    if (events_url != NULL && sse_start(&api->sse, events_url) != 0) {
        pthread_cond_destroy(&api->idle);
        pthread_mutex_destroy(&api->lock);
        return SL_EIO;
    }
    return 0;
}

/* Answers aio with status and a JSON body (NULL: none); hdr, val: one more header or NULL.
 * close: the connection is closed after it (a body left unread). */
static void
respond(nng_aio *aio, uint16_t status, const char *json, size_t len, const char *hdr,
        const char *val, bool close)
{
    nng_http_res *res;
    int rv;
    if ((rv = nng_http_res_alloc(&res)) != 0) {
        nng_aio_finish(aio, rv); /* nng drops the connection */
        return;
    }
    /* nng 1.5 knows no reason phrase for 413. */
    if ((rv = nng_http_res_set_status(res, status)) != 0 ||
        (status == 413 && (rv = nng_http_res_set_reason(res, "Payload Too Large")) != 0) ||
        (json != NULL &&
         ((rv = nng_http_res_set_header(res, "Content-Type", "application/json")) != 0 ||
          (rv = nng_http_res_copy_data(res, json, len)) != 0)) ||
        (hdr != NULL && (rv = nng_http_res_set_header(res, hdr, val)) != 0) ||
        (close && (rv = nng_http_res_set_header(res, "Connection", "close")) != 0)) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

/* Answers with the error document {"err", "msg"}. */
static void
respond_err(nng_aio *aio, int err, const char *msg, const char *hdr, const char *val,
            bool close)
{
    size_t len;
    char *doc = hj_error(err, msg, &len);
    respond(aio, doc != NULL ? hj_status(err) : 500, doc, len, hdr, val, close);
    free(doc);
}

static void
hreq_free(struct hreq *r)
{
    if (r->rdaio != NULL) {
        nng_aio_reap(r->rdaio); /* may be called from its own callback */
    }
    if (r->watch != NULL) {
        nng_aio_reap(r->watch);
    }
    free(r->buf);
    free(r);
}

/* Takes r off the live list and frees it (or leaves that to the end of its watch, which comes
 * when the connection closes after the answer); the one that answers r calls it once. */
static void
retire(struct hreq *r)
{
    struct httpapi *api = r->api;
    pthread_mutex_lock(&api->lock);
    r->answered = true;
    bool gone = --r->refs == 0;
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        api->live = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    if (--api->nlive == 0) {
        pthread_cond_broadcast(&api->idle);
    }
    pthread_mutex_unlock(&api->lock);
    if (gone) {
        hreq_free(r);
    }
}

/* Answers r with the wire reply rep (freed; NULL: the broker had no memory). */
static void
answer(struct hreq *r, nng_msg *rep)
{
    nng_aio *aio = r->aio;
    uint16_t status = 500;
    size_t len = 0;
    char *doc = rep != NULL ? hj_reply(r->e, nng_msg_body(rep), nng_msg_len(rep), &status, &len)
                            : NULL;
    if (rep != NULL) {
        nng_msg_free(rep);
    }
    /* A watched connection closes after the answer: nng 1.5 closes a connection whose read is
     * cancelled, and a watch left reading would take the next request's first byte. */
    bool close = r->close || r->watch != NULL;
    retire(r);
    if (doc == NULL) {
        respond_err(aio, SL_ENOMEM, "the broker could not build the reply", NULL, NULL, close);
    } else {
        respond(aio, status, doc, len, NULL, NULL, close);
        free(doc);
    }
}

/* The waiter's reply is ready: from the thread that served, expired or confirmed it. */
static void
hreq_send(struct waiter *wt)
{
    struct hreq *r = (struct hreq *)((char *)wt - offsetof(struct hreq, wt));
    pthread_mutex_lock(&r->api->lock);
    if (r->in_ops) {
        r->early = true; /* dispatch() answers once ops_handle has returned */
        pthread_mutex_unlock(&r->api->lock);
        return;
    }
    pthread_mutex_unlock(&r->api->lock);
    nng_msg *rep = wt->rep;
    wt->rep = NULL;
    answer(r, rep);
}

/* The watch's read ended: the client went away (or sent a byte of another request). */
static void
watch_end(void *arg)
{
    struct hreq *r = arg;
    struct httpapi *api = r->api;
    int rv = nng_aio_result(r->watch);
    pthread_mutex_lock(&api->lock);
    bool answered = r->answered;
    bool gone = --r->refs == 0;
    if (!answered && rv == 0) {
        r->close = true; /* a pipelined request lost its first byte: end with the reply */
    }
    pthread_mutex_unlock(&api->lock);
    if (gone) {
        hreq_free(r);
        return;
    }
    if (answered || rv == 0) {
        return;
    }
    /* Gone while parked: the reserve leaves the park before it can take a job, unless it is
     * being answered already (then that answer finds a closed connection, as on the wire). */
    struct broker *b = api->b;
    pthread_mutex_lock(&b->lock);
    bool took = park_take(b, &r->wt);
    pthread_mutex_unlock(&b->lock);
    if (took) {
        nng_aio *aio = r->aio;
        retire(r);
        nng_aio_finish(aio, NNG_ECLOSED); /* nng drops the connection */
    }
}

/* r's reserve is parked: watches its connection, so a client that goes away does not leave
 * behind a reserve that takes jobs nobody will run (they would wait for their TTR). The
 * answer then closes the connection (answer). Called with api->lock held, before anyone may
 * answer r. */
static void
watch_start(struct hreq *r)
{
    nng_iov iov = { .iov_buf = &r->peek, .iov_len = 1 };
    if (nng_aio_alloc(&r->watch, watch_end, r) != 0 || nng_aio_set_iov(r->watch, 1, &iov) != 0) {
        return; /* without memory: not watched, as before */
    }
    r->refs++;
    nng_http_conn_read(r->conn, r->watch);
}

/* The body is in: builds the wire request and hands it to ops_handle. */
static void
dispatch(struct hreq *r)
{
    struct httpapi *api = r->api;
    struct broker *b = api->b;
    char why[HJ_WHY_MAX] = "";
    nng_msg *req = NULL, *rep = NULL;
    int rv = nng_msg_alloc(&req, 0) == 0 && nng_msg_alloc(&rep, 0) == 0 ? 0 : SL_ENOMEM;

    /* Fields may come as a query string instead (GET /v1/dead?queue=q). */
    const char *q = strchr(nng_http_req_get_uri(r->req), '?');
    char *qbody = NULL;
    size_t qlen = 0;
    if (rv == 0 && q != NULL && q[1] != '\0') {
        if (r->blen > 0) {
            rv = SL_EBADREQ;
            snprintf(why, sizeof(why), "give the fields in the query or in the body, not both");
        } else if ((qbody = hj_query_body(r->e, q + 1, &qlen, why, sizeof(why))) == NULL) {
            rv = SL_EBADREQ;
        }
    }
    if (rv == 0) {
        rv = hj_build(r->e, qbody != NULL ? qbody : r->body, qbody != NULL ? qlen : r->blen,
                      r->arg, b->token.s, b->token.n,
                      nng_http_req_get_header(r->req, "Idempotency-Key"), req, why, sizeof(why));
    }
    free(qbody);
    pthread_mutex_lock(&api->lock);
    r->in_ops = rv == 0;
    pthread_mutex_unlock(&api->lock);
    if (rv != 0) {
        nng_msg_free(req);
        nng_msg_free(rep);
        nng_aio *aio = r->aio;
        retire(r);
        respond_err(aio, rv, why, NULL, NULL, false);
        return;
    }
    int got = ops_handle(b, nng_msg_body(req), nng_msg_len(req), 0, rep, &r->wt);
    nng_msg_free(req);
    pthread_mutex_lock(&api->lock);
    r->in_ops = false;
    bool early = r->early;
    if (got == OPS_PARKED && !early && !r->wt.took_rep) {
        watch_start(r);
    }
    pthread_mutex_unlock(&api->lock);
    if (got != OPS_PARKED) {
        answer(r, rep);
        return;
    }
    if (!r->wt.took_rep) {
        nng_msg_free(rep); /* else the waiter holds it until the journal has it */
    }
    if (early) {
        nng_msg *m = r->wt.rep;
        r->wt.rep = NULL;
        answer(r, m);
    }
}

/* The request's body length from its Content-Length (none: 0), in *len. False for a chunked
 * body (no length to check before reading it) or a length that is not a number. */
static bool
body_len(nng_http_req *req, uint64_t *len)
{
    const char *cl = nng_http_req_get_header(req, "Content-Length");
    *len = 0;
    if (nng_http_req_get_header(req, "Transfer-Encoding") != NULL) {
        return false;
    }
    if (cl == NULL) {
        return true;
    }
    size_t i = 0;
    for (; cl[i] >= '0' && cl[i] <= '9' && i < 20; i++) {
        *len = *len * 10u + (uint64_t)(cl[i] - '0');
    }
    return i > 0 && i < 20 && cl[i] == '\0';
}

/* GET /v1/pool: worker-pool's state, asked here on the HTTP thread (no broker lock held). */
static void
serve_pool(struct httpapi *api, nng_aio *aio)
{
    size_t len;
    char *doc = poolproxy_fetch(api->b->cfg.pool_url, &api->b->token, &len);
    if (doc == NULL) {
        respond_err(aio, SL_ENOMEM, "the broker could not build the reply", NULL, NULL, false);
        return;
    }
    respond(aio, 200, doc, len, NULL, NULL, false);
    free(doc);
}

/* Checks what can be checked from the headers; on refusal answers aio and returns NULL. */
static struct hreq *
accept_req(struct httpapi *api, nng_aio *aio, nng_http_req *req)
{
    char path[PATH_MAX_LEN];
    struct sl_str arg = { NULL, 0 };
    bool known;
    const char *uri = nng_http_req_get_uri(req);
    size_t n = strcspn(uri, "?");

    if (n >= sizeof(path)) {
        respond_err(aio, SL_ENOTFOUND, "no such endpoint", NULL, NULL, false);
        return NULL;
    }
    memcpy(path, uri, n);
    path[n] = '\0';
    bool events = strcmp(path, "/v1/events") == 0 && api->sse != NULL;
    if (events || strcmp(path, "/v1/pool") == 0) {
        if (strcmp(nng_http_req_get_method(req), "GET") != 0) {
            size_t len;
            char *doc = hj_error(SL_EBADREQ, "method not allowed on this path", &len);
            respond(aio, 405, doc, len, "Allow", "GET", false);
            free(doc);
        } else if (!promhttp_authorized(api->b, req)) {
            respond_err(aio, SL_EUNAUTH, "this broker requires 'Authorization: Bearer TOKEN'",
                        "WWW-Authenticate", "Bearer realm=\"sluice\"", false);
        } else if (events) {
            sse_serve(api->sse, aio);
        } else {
            serve_pool(api, aio);
        }
        return NULL;
    }
    const struct hj_endpoint *e = hj_match(nng_http_req_get_method(req), path, &arg, &known);
    if (e == NULL) {
        char allow[64];
        hj_allow(path, allow, sizeof(allow));
        if (known) {
            size_t len;
            char *doc = hj_error(SL_EBADREQ, "method not allowed on this path", &len);
            respond(aio, 405, doc, len, "Allow", allow, false);
            free(doc);
        } else {
            respond_err(aio, SL_ENOTFOUND, "no such endpoint", NULL, NULL, false);
        }
        return NULL;
    }
    if (!promhttp_authorized(api->b, req)) {
        respond_err(aio, SL_EUNAUTH, "this broker requires 'Authorization: Bearer TOKEN'",
                    "WWW-Authenticate", "Bearer realm=\"sluice\"", false);
        return NULL;
    }
    uint64_t blen;
    if (!body_len(req, &blen)) {
        respond_err(aio, SL_EBADREQ, "the body must come with a Content-Length (no chunked "
                    "bodies)", NULL, NULL, true);
        return NULL;
    }
    if (blen > api->b->cfg.max_message) {
        /* Refused unread: the connection closes, so its body is never taken in. */
        char why[96];
        snprintf(why, sizeof(why), "the body is over --max-message (%zu bytes)",
                 (size_t)api->b->cfg.max_message);
        respond_err(aio, SL_ETOOLARGE, why, NULL, NULL, true);
        return NULL;
    }
    struct hreq *r = calloc(1, sizeof(*r));
    if (r == NULL || (blen > 0 && (r->buf = malloc((size_t)blen)) == NULL)) {
        free(r);
        respond_err(aio, SL_ENOMEM, "out of memory", NULL, NULL, true);
        return NULL;
    }
    r->blen = (size_t)blen;
    r->body = r->buf;
    memcpy(r->path, path, n + 1);
    r->arg.p = arg.p != NULL ? r->path + (arg.p - path) : NULL;
    r->arg.n = arg.n;
    r->e = e;
    r->req = req;
    r->aio = aio;
    r->conn = nng_aio_get_input(aio, 2);
    r->refs = 1;
    r->api = api;
    r->wt.send = hreq_send;
    return r;
}

/* r's body has been read (or not: the read failed, was cancelled by httpapi_quiesce). */
static void
body_read(void *arg)
{
    struct hreq *r = arg;
    struct httpapi *api = r->api;
    int rv = nng_aio_result(r->rdaio);
    pthread_mutex_lock(&api->lock);
    bool go = rv == 0 && !api->stopping;
    api->busy += go;
    pthread_mutex_unlock(&api->lock);
    if (!go) {
        nng_aio *aio = r->aio;
        retire(r);
        if (rv != 0) {
            nng_aio_finish(aio, rv); /* the client went away: nng drops the connection */
        } else {
            respond_err(aio, SL_EUNREACHABLE, "the broker is stopping", NULL, NULL, true);
        }
        return;
    }
    dispatch(r);
    pthread_mutex_lock(&api->lock);
    if (--api->busy == 0) {
        pthread_cond_broadcast(&api->idle);
    }
    pthread_mutex_unlock(&api->lock);
}

/* Starts reading r's body (r->blen bytes, checked against --max-message) from conn: the
 * handler reads it itself rather than nng, so that a body over the limit is answered 413
 * without being read. body_read goes on, or r is answered here. */
static void
read_body(struct hreq *r, nng_http_conn *conn)
{
    nng_iov iov = { .iov_buf = r->buf, .iov_len = r->blen };
    if (nng_aio_alloc(&r->rdaio, body_read, r) != 0 || nng_aio_set_iov(r->rdaio, 1, &iov) != 0) {
        nng_aio *aio = r->aio;
        retire(r);
        respond_err(aio, SL_ENOMEM, "out of memory", NULL, NULL, true);
        return;
    }
    nng_http_conn_read_all(conn, r->rdaio);
}

/* On an nng thread, for every request under /v1. */
static void
handle(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    struct httpapi *api = nng_http_handler_get_data(nng_aio_get_input(aio, 1));

    /* busy from here: httpapi_quiesce waits for it before b may go (nng may still call a
     * handler after the server was stopped; then it only answers 503). */
    pthread_mutex_lock(&api->lock);
    if (api->stopping) {
        pthread_mutex_unlock(&api->lock);
        respond_err(aio, SL_EUNREACHABLE, "the broker is stopping", NULL, NULL, false);
        return;
    }
    api->busy++;
    pthread_mutex_unlock(&api->lock);
    struct hreq *r = accept_req(api, aio, req);
    if (r != NULL) {
        pthread_mutex_lock(&api->lock);
        r->next = api->live;
        if (api->live != NULL) {
            api->live->prev = r;
        }
        api->live = r;
        api->nlive++;
        pthread_mutex_unlock(&api->lock);
        if (r->blen == 0) {
            dispatch(r);
        } else {
            read_body(r, r->conn);
        }
    }
    pthread_mutex_lock(&api->lock);
    if (--api->busy == 0) {
        pthread_cond_broadcast(&api->idle);
    }
    pthread_mutex_unlock(&api->lock);
}

int
httpapi_register(struct httpapi *api, nng_http_server *srv)
{
    nng_http_handler *hd;
    int rv;
    if ((rv = nng_http_handler_alloc(&hd, "/v1", handle)) != 0) {
        return rv;
    }
    /* Every method and path under /v1 comes here: 404 and 405 are answered in JSON. The
     * handler reads the body itself (read_body), after checking its Content-Length. */
    if ((rv = nng_http_handler_set_method(hd, NULL)) != 0 ||
        (rv = nng_http_handler_collect_body(hd, false, 0)) != 0 ||
        (rv = nng_http_handler_set_tree(hd)) != 0 ||
        (rv = nng_http_handler_set_data(hd, api, NULL)) != 0 ||
        (rv = nng_http_server_add_handler(srv, hd)) != 0) {
        nng_http_handler_free(hd);
    }
    return rv;
}

void
httpapi_quiesce(struct httpapi *api)
{
    struct hreq *drop = NULL;
    pthread_mutex_lock(&api->lock);
    api->stopping = true;
    while (api->busy > 0) {
        pthread_cond_wait(&api->idle, &api->lock);
    }
    /* A body still being read never gets to ops_handle: its read ends now (body_read answers;
     * the cancel's callback runs on nng's threads, never inside nng_aio_cancel). */
    for (struct hreq *r = api->live; r != NULL; r = r->next) {
        if (r->rdaio != NULL) {
            nng_aio_cancel(r->rdaio);
        }
    }
    /* No request enters ops_handle any more: the parked ones are answered here. */
    pthread_mutex_lock(&api->b->lock);
    for (struct hreq *r = api->live; r != NULL; r = r->next) {
        if (park_take(api->b, &r->wt)) {
            r->drop_next = drop;
            drop = r;
        }
    }
    pthread_mutex_unlock(&api->b->lock);
    pthread_mutex_unlock(&api->lock);
    while (drop != NULL) {
        struct hreq *next = drop->drop_next;
        nng_aio *aio = drop->aio;
        retire(drop);
        respond_err(aio, SL_EUNREACHABLE, "the broker is stopping", NULL, NULL, true);
        drop = next;
    }
    /* The rest wait for the journal (or are being answered): it still runs. */
    pthread_mutex_lock(&api->lock);
    while (api->nlive > 0) {
        pthread_cond_wait(&api->idle, &api->lock);
    }
    pthread_mutex_unlock(&api->lock);
    sse_stop(api->sse);
    api->sse = NULL;
}
