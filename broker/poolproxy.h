/* GET /v1/pool: worker-pool's pool.status (PROTOCOL.md "worker-pool's control socket"), asked
 * by the broker's HTTP thread at --pool-url for the dashboard. The pool being down is a state
 * of the answer, not an error of the request: the document says reachable true or false. */
#ifndef SLUICE_POOLPROXY_H
#define SLUICE_POOLPROXY_H

#include "token.h"
#include "wire.h"

#include <stddef.h>

#define POOLPROXY_CONNECT_MS 500 /* to connect to the pool */
#define POOLPROXY_CALL_MS 1000   /* for its reply */

/* The document for url (NULL: none configured): with error non-NULL,
 * {"reachable": false, "url", "error"}; else rep is pool.status's reply, checked (ok true, "n"
 * a whole number, "workers" an array of maps) and given as {"reachable": true, "url", "n",
 * "workers", ...} with the reply's fields in JSON as the HTTP API gives them (httpjson.h); a
 * reply that fails the check is reachable false with an error saying why. Returns a malloc'ed
 * string (*len its length) or NULL without memory. Pure. */
char *poolproxy_doc(const char *url, const struct wire_msg *rep, const char *error,
                    size_t *len);

/* Asks url for pool.status (with token t when it has one: worker-pool --token-file) and
 * returns poolproxy_doc's document. Blocks up to POOLPROXY_CONNECT_MS + POOLPROXY_CALL_MS;
 * takes no broker lock. */
char *poolproxy_fetch(const char *url, const struct token *t, size_t *len);

#endif
