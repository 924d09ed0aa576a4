/* A request/reply client of the broker (or of worker-pool's control socket): one REQ socket,
 * used by one thread at a time. Every request carries a deadline; a request whose connection
 * drops is resent by nng once the dialer reconnects (so non-idempotent requests carry an
 * idempotency key, see push's client/seq). */
#ifndef SLUICE_CLIENT_H
#define SLUICE_CLIENT_H

#include "token.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

struct client;

/* Connects to url, retrying until connect_ms has passed; the connection's handshake must be
 * done by then too. connect_ms 0: one attempt, failing at once when nobody listens and else
 * waiting for the handshake (at most nng's 10 s). An ipc:// url whose socket file does not
 * exist fails at once (client_no_server), whatever connect_ms.
 * url may be a cluster's list "URL,URL,..." (urllist_parse: spaces around items dropped, at
 * most URLLIST_MAX): each is tried in order (up to 500 ms each) and again until connect_ms has
 * passed; the first that answers is used. A list whose every item is an ipc:// URL with no
 * socket file fails at once. A bad list (an empty item, too many, one too long) is SL_EBADREQ
 * with nothing dialed.
 * On success *cp is a new client (free with client_free) that reconnects on its own
 * afterwards. Returns 0, SL_EUNREACHABLE or SL_EBADREQ (an invalid URL or list). Blocks. */
int client_open(struct client **cp, const char *url, uint64_t connect_ms);

/* Whether url is an ipc:// address with no socket file at its path: no server has started
 * there (or it has stopped and removed it). */
bool client_no_server(const char *url);

/* Makes every later request carry the token t (copied; NULL or an empty token: none). */
void client_set_token(struct client *c, const struct token *t);

/* Closes the socket. client_free(NULL) does nothing. */
void client_free(struct client *c);

/* Sends req and waits up to timeout_ms for the reply, which is decoded into rep (initialised
 * by the caller; its views stay valid until wire_msg_fini(rep) and client_call's next use).
 * Returns 0 when a reply arrived and decoded, whatever its "ok" (check WK_OK);
 * SL_ETIMEDOUT, SL_EUNREACHABLE, SL_EBADREQ (an undecodable reply) or SL_ENOMEM (the request
 * could not be built) otherwise. After a
 * timeout the client moves to a new connection for its next request. Blocks.
 * A cluster (PROTOCOL.md "Clusters"): a reply not_leader WITH leader_url (a standby's) moves
 * the client to that URL (logged once, info "client.moved"), or to the next URL of the list
 * when it is "", and the same request is sent again there, within timeout_ms; while no broker
 * knows the leader it asks again after 50 ms doubling to 500 ms. When the time is spent the
 * caller gets the last not_leader reply (return 0). A not_leader without leader_url (the
 * router's lease) is returned at once. With a list, a request that could not be sent within
 * 2 s (no connection), or whose connection was lost after it was sent and not back within
 * 2 s (a leader failing over), goes to the next URL. */
int client_call(struct client *c, const struct wire_msg *req, struct wire_msg *rep,
                uint64_t timeout_ms);

/* As client_call, for a request the caller encoded itself (e.g. into a message reserved to its
 * estimated size, so a large push is packed without regrowing). Takes req in every case: it is
 * sent, or freed when it cannot be. Same returns as client_call. Blocks. */
struct nng_msg;
int client_call_msg(struct client *c, struct nng_msg *req, struct wire_msg *rep,
                    uint64_t timeout_ms);

/* For a decoded reply: 0 if "ok" is true; else the error code named by "err" (SL_EINTERNAL if
 * it names none) with *msg pointing at the reply's text (a view, may be empty). */
int client_reply_err(const struct wire_msg *rep, struct sl_str *msg);

/* The URL this client uses now: one of the list, or the leader a standby named. */
const char *client_url(const struct client *c);

#endif
