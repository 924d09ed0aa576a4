/* The broker's request dispatcher: decodes a request, finds its op in the table, runs the
 * handler under the broker's lock and packs the reply. */
#ifndef SLUICE_OPS_H
#define SLUICE_OPS_H

#include "broker.h"
#include "park.h"

#include <nng/nng.h>
#include <stddef.h>

#define OPS_PARKED (-1)

/* Handles the request body req[0..len), which came on connection pipe (0: unknown), and
 * appends the reply to rep (empty on entry). Any error becomes {"ok": false, ...} and
 * changes nothing. Returns the error code the reply carries (0 for success), or OPS_PARKED:
 * a reserve that must wait was parked in wt, rep stays unused, and wt->send(wt) will be
 * called later (possibly before this returns) from another thread with the reply in wt->rep;
 * or, with a journal, the reply waits for the records that make the request's changes
 * durable: then wt->took_rep is set, rep is wt->rep and belongs to the waiter.
 * Takes b->lock itself; thread-safe. */
int ops_handle(struct broker *b, const void *req, size_t len, uint32_t pipe, nng_msg *rep,
               struct waiter *wt);

/* Packs a reserve reply {ok, jobs: [...], acked} into rep. Lock held. */
void ops_pack_reserve(struct broker *b, nng_msg *rep, struct job **jobs, uint32_t n,
                      uint64_t acked);

/* Appends the full reply of a `stats` request ({"ok": true, ...}, as PROTOCOL.md says) to
 * rep (empty on entry). Takes b->lock itself for the snapshot; thread-safe. Returns 0. Without
 * memory the packing stops short: the reply then fails to decode. */
int ops_stats(struct broker *b, nng_msg *rep);

/* The connection pipe closed: its waiters are answered and its workers' jobs handed back.
 * Takes the lock; thread-safe. */
void ops_pipe_closed(struct broker *b, uint32_t pipe);

#endif
