/* The broker's request socket: an nng REP socket served by a pool of contexts, each
 * receiving a request, handing it to ops_handle and sending the reply, on nng's threads.
 *
 * Connections are bounded so that no client can stop the others from being served, nor take
 * the descriptors the journal needs:
 * - a connection has at most SERVER_REPLIES_WAITING replies waiting for it to read them (one
 *   that has not yet sent the token, when one is asked for: SERVER_UNAUTH_REPLIES_WAITING),
 *   and a reply it has not taken within SERVER_SEND_TIMEOUT_MS closes it (logged
 *   conn.dropped); a reply waiting for its connection holds no receiving context;
 * - at most b->cfg.max_conns connections are open at once: more are closed as soon as they are
 *   accepted (logged conn.refused). */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include "broker.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SERVER_REPLIES_WAITING 32u
#define SERVER_UNAUTH_REPLIES_WAITING 2u
#define SERVER_SEND_TIMEOUT_MS 10000
#define SERVER_DROP_QUIET_MS 200   /* a dropped connection is closed once quiet this long */
#define SERVER_SWEEP_MS 100
/* Descriptors kept out of reach of connections: the journal's segments and directory, the
 * event stream's and metrics' connections, the database's. */
#define SERVER_FD_RESERVE 64u
#define SERVER_CONNS_MIN 16u
#define SERVER_CONNS_MAX 1000000u

struct server;

/* The connections served at once with a limit of nofile descriptors: nofile less
 * SERVER_FD_RESERVE, within SERVER_CONNS_MIN..SERVER_CONNS_MAX. */
unsigned server_conns_for_fds(uint64_t nofile);

/* Listens on url and starts serving b with ncontexts concurrent requests, and at most
 * b->cfg.max_conns connections (0: server_conns_for_fds of the process's RLIMIT_NOFILE).
 * Returns 0 or an SL_E* code (logged). */
int server_start(struct server **sp, struct broker *b, const char *url, size_t max_message,
                 unsigned ncontexts);

#define SERVER_LISTEN_MAX 8

/* Where one server listens: every url on the same socket (a request is answered on the
 * connection it came on), ipc:// socket files with ipc_mode and, unless (gid_t)-1, group
 * ipc_gid (net_listen_shared). */
struct server_listen {
    const char *urls[SERVER_LISTEN_MAX];
    unsigned n;
    unsigned ipc_mode;
    gid_t ipc_gid;
};

/* As server_start, on every address of l; fails, listening nowhere, when one cannot be
 * listened on. */
int server_start_at(struct server **sp, struct broker *b, const struct server_listen *l,
                    size_t max_message, unsigned ncontexts);

/* Stops handling requests: requests in progress finish, parked ones and replies held for the
 * journal are dropped (their connections close). The socket stays open. Idempotent;
 * server_quiesce(NULL) does nothing. */
void server_quiesce(struct server *s);

/* Quiesces (if not done), closes the socket (removing an IPC socket file) and frees. Blocks until every callback has returned.
 * server_stop(NULL) does nothing. */
void server_stop(struct server *s);

#endif
