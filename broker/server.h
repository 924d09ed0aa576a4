/* The broker's request socket: an nng REP socket served by a pool of contexts, each
 * receiving a request, handing it to ops_handle and sending the reply, on nng's threads. */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include "broker.h"

#include <stddef.h>

struct server;

/* Listens on url and starts serving b with ncontexts concurrent requests. Returns 0 or an
 * SL_E* code (logged). */
int server_start(struct server **sp, struct broker *b, const char *url, size_t max_message,
                 unsigned ncontexts);

/* Stops handling requests: requests in progress finish, parked ones and replies held for the
 * journal are dropped (their connections close). The socket stays open. Idempotent;
 * server_quiesce(NULL) does nothing. */
void server_quiesce(struct server *s);

/* Quiesces (if not done), closes the socket (removing an IPC socket file) and frees. Blocks until every callback has returned.
 * server_stop(NULL) does nothing. */
void server_stop(struct server *s);

#endif
