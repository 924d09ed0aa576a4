/* GET /v1/events: the broker's events (events.h) as Server-Sent Events. One "event: NAME" and
 * "data: {JSON}" per event, a comment line every SSE_BEAT_MS so that proxies and clients see
 * the stream alive.
 *
 * The source is an nng SUB socket of its own dialing the broker's event URL: the feed is the
 * one every subscriber gets, and the broker's lock is never taken for it. Each client's
 * connection is taken over from the HTTP server (nng_http_hijack) and written to
 * asynchronously; a client that does not read has at most SSE_QUEUE_MAX messages waiting and
 * is dropped beyond that, so no client ever holds the broker or another client up. At most
 * SSE_CLIENTS_MAX clients at once (503 beyond). */
#ifndef SLUICE_SSE_H
#define SLUICE_SSE_H

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#define SSE_BEAT_MS 15000
#define SSE_QUEUE_MAX 256
#define SSE_CLIENTS_MAX 64

struct sse;

/* Subscribes to the event stream at events_url. Returns 0 or SL_EIO (logged). */
int sse_start(struct sse **sp, const char *events_url);

/* Answers the handler's aio of a GET /v1/events (already authorized): takes the connection
 * over and streams to it. */
void sse_serve(struct sse *s, nng_aio *aio);

/* Closes every client stream and the subscription, waiting for their callbacks; frees s.
 * NULL: nothing. */
void sse_stop(struct sse *s);

#endif
