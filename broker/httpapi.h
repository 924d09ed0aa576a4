/* The broker's HTTP/JSON API (/v1/...), served by the broker's HTTP listener (promhttp.c)
 * beside /metrics. Each request is mapped onto one wire op (httpjson.h) and handled by
 * ops_handle like a request from the broker's socket, with a waiter of its own: a reply that
 * waits for the journal, or a reserve parked by its wait_ms, finishes the HTTP request later
 * from the thread that answers it; no nng thread blocks and nothing polls.
 *
 * Requests made over HTTP have no connection the broker follows (pipe 0): jobs a worker
 * reserved over HTTP come back by their TTR, as for a worker whose connection stays open but
 * which stopped working. */
#ifndef SLUICE_HTTPAPI_H
#define SLUICE_HTTPAPI_H

#include "broker.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <pthread.h>
#include <stdbool.h>

struct hreq;
struct sse;

/* Lives as long as struct promhttp (static storage): see promhttp.h. */
struct httpapi {
    struct broker *b;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct hreq *live;     /* requests accepted and not answered yet */
    unsigned nlive;
    unsigned busy;         /* handlers running (they may use b) */
    bool stopping;
    struct sse *sse;       /* GET /v1/events; NULL: not served */
};

/* Sets api up for b, with /v1/events fed from events_url (NULL: no event stream); returns 0
 * or SL_EIO. */
int httpapi_init(struct httpapi *api, struct broker *b, const char *events_url);

/* Adds the /v1 handler to srv (not started). Returns 0 or an nng error. */
int httpapi_register(struct httpapi *api, nng_http_server *srv);

/* Makes every later request answer 503, answers the parked reserves made over HTTP (503:
 * the broker stops), and waits until every accepted request was answered (the journal must
 * still run: replies waiting for it are answered by it), and closes the event streams.
 * After it b may be freed. */
void httpapi_quiesce(struct httpapi *api);

#endif
