/* The broker's request dispatcher: decodes a request, finds its op in the table, runs the
 * handler under the broker's lock and packs the reply. */
#ifndef SLUICE_OPS_H
#define SLUICE_OPS_H

#include "broker.h"

#include <nng/nng.h>
#include <stddef.h>

/* Handles the request body req[0..len) and appends the reply to rep (empty on entry). Never
 * fails to produce a reply: any error becomes {"ok": false, ...} and changes nothing. Takes
 * b->lock itself; thread-safe. Returns the error code the reply carries (0 for success). */
int ops_handle(struct broker *b, const void *req, size_t len, nng_msg *rep);

#endif
