/* The broker's HTTP listener (--http-listen, or its synonym --metrics-listen): an HTTP
 * server, nng's, serving the HTTP/JSON API under /v1 (httpapi.h) and answering
 * the web dashboard at / (dash.h) and
 * `GET /metrics` with the Prometheus text of a `stats` snapshot (common/prom.h); 404 for any
 * other path, 405 for another method on /metrics, 401 without "Authorization: Bearer TOKEN"
 * when the broker has a token. Handlers run on nng's threads, take the
 * broker's lock only to pack the snapshot, and format outside it. */
#ifndef SLUICE_PROMHTTP_H
#define SLUICE_PROMHTTP_H

#include "broker.h"
#include "dash.h"
#include "httpapi.h"

#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <pthread.h>
#include <stdbool.h>

/* Lives in storage that outlives nng's threads (the broker's is static in main.c): nng 1.5
 * stops an HTTP server asynchronously, so a request already past parsing may still reach
 * the handler, which then only locks `lock` and answers 503. Hence nothing here is freed or
 * destroyed by promhttp_stop. */
struct promhttp {
    struct broker *b;
    nng_http_server *srv;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    unsigned busy;         /* handlers using b now */
    bool stopping;         /* no handler may start using b */
    bool running;
    struct httpapi api;    /* /v1/...: the HTTP/JSON API */
    struct dash dash;      /* /, /app.js, ...: the web dashboard */
};

/* The URL to serve for a --metrics-listen value: "IPV4:PORT" or "[IPV6]:PORT", an address
 * literal and a port 1-65535, gives "http://IPV4:PORT" or "http://[IPV6]:PORT" in out.
 * Returns 0, or SL_EBADREQ (why says what is wrong, for the user) with out unchanged. */
int promhttp_url(const char *arg, char *out, size_t cap, char *why, size_t why_cap);

/* Is url (from promhttp_url) on a loopback address (127.0.0.0/8 or [::1])? */
bool promhttp_loopback(const char *url);

/* With a broker token, every request on the listener (/metrics, as Prometheus sends with
 * authorization.credentials_file, and /v1) must carry "Authorization: Bearer TOKEN"; one
 * that does not is counted as unauthorized, like a request on the broker's socket. True
 * when req may go on. Thread-safe. */
bool promhttp_authorized(struct broker *b, nng_http_req *req);

/* A handler of h (the dashboard's) starts using h's broker: returns it, or NULL when h
 * stops (then answer 503 without it). Every non-NULL return is paired with promhttp_leave. */
struct broker *promhttp_enter(struct promhttp *h);
void promhttp_leave(struct promhttp *h);

/* Starts serving url (from promhttp_url) for b in h; /v1/events relays the event stream at
 * events_url (NULL: not served). Returns 0, or SL_EIO (logged, and why
 * says what failed: the address in use, ...) with nothing left running. */
int promhttp_start(struct promhttp *h, struct broker *b, const char *url,
                   const char *events_url, char *why, size_t why_cap);

/* Makes every later request answer 503, answers the API's parked requests and waits until no
 * handler uses the broker any more;
 * after it b may be freed. Never waits on the network. Does nothing on an h never started. */
void promhttp_quiesce(struct promhttp *h);

/* Quiesces (if not done) and stops the server, closing its connections (nng finishes that on
 * its own threads). Does nothing on an h never started. */
void promhttp_stop(struct promhttp *h);

#endif
