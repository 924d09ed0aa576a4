/* The broker's event stream: an nng PUB socket (default ipc://$SLUICE_DIR/events.ipc) on which
 * the broker publishes, as they happen, every change of queues and routes (with the reason and
 * lease the request carried), lease changes, and groups crossing the leader's high threshold.
 * Each message is one msgpack map: {"event": string, "ts_ms": uint (wall clock), ...fields}.
 * Publishing never blocks: a subscriber that cannot keep up misses messages (PUB semantics);
 * events are a live feed, not a log. Thread-safe. */
#ifndef SLUICE_EVENTS_H
#define SLUICE_EVENTS_H

#include "wire.h"

#include <stdint.h>

struct events;

/* Listens on url. Returns 0, or an SL_E* code (logged). */
int events_open(struct events **ep, const char *url);
void events_close(struct events *e);

/* Publishes event with the keys present in fields (WK_EVENT and WK_TS_MS are set here).
 * e NULL: nothing (a broker without an event socket, as in unit tests). */
void events_emit(struct events *e, const char *event, struct wire_msg *fields, uint64_t wall_ms);

#endif
