/* The broker's request server: nng's SP REP protocol (req0/rep0, as PROTOCOL.md "Speaking the
 * protocol without nng" describes) served over plain stream sockets by a few threads of its
 * own, each waiting in epoll on its share of the connections.
 *
 * A thread woken by a connection reads everything that has arrived on it, handles every
 * request in it (ops_handle) and writes all their replies in one go: a request costs no hand-off
 * between threads. A reply that is not ready at once (a parked reserve, a change waiting for
 * the journal) is written by the thread that makes it ready (the journal writer, the timer,
 * the thread whose push served the reserve), straight to the connection.
 *
 * Connections are bounded so that no client can stop the others from being served, nor take
 * the descriptors the journal needs:
 * - a connection has at most SERVER_REPLIES_WAITING replies the kernel would not take yet
 *   (one that has not yet sent the token, when one is asked for:
 *   SERVER_UNAUTH_REPLIES_WAITING), and a reply that has waited SERVER_SEND_TIMEOUT_MS closes
 *   it: it is not reading (logged conn.dropped, its requests from then on are discarded);
 * - at most b->cfg.max_conns connections are open at once: more are closed as soon as they are
 *   accepted (logged conn.refused);
 * - a message longer than the largest the broker takes closes its connection. */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include "broker.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SERVER_REPLIES_WAITING 32u
#define SERVER_UNAUTH_REPLIES_WAITING 2u
#define SERVER_SEND_TIMEOUT_MS 10000
#define SERVER_SWEEP_MS 500        /* how often replies left waiting are looked at */
/* Descriptors kept out of reach of connections: the journal's segments and directory, the
 * event stream's and metrics' connections, the database's. */
#define SERVER_FD_RESERVE 64u
#define SERVER_CONNS_MIN 16u
#define SERVER_CONNS_MAX 1000000u
#define SERVER_THREADS_MAX 64u

struct server;

/* The connections served at once with a limit of nofile descriptors: nofile less
 * SERVER_FD_RESERVE, within SERVER_CONNS_MIN..SERVER_CONNS_MAX. */
unsigned server_conns_for_fds(uint64_t nofile);

/* Listens on url and starts serving b with nthreads threads (1..SERVER_THREADS_MAX), and at
 * most b->cfg.max_conns connections (0: server_conns_for_fds of the process's RLIMIT_NOFILE).
 * Returns 0 or an SL_E* code (logged). */
int server_start(struct server **sp, struct broker *b, const char *url, size_t max_message,
                 unsigned nthreads);

#define SERVER_LISTEN_MAX 8

/* Where one server listens: every url served alike (a request is answered on the connection
 * it came on), ipc:// socket files with ipc_mode and, unless (gid_t)-1, group ipc_gid. */
struct server_listen {
    const char *urls[SERVER_LISTEN_MAX];
    unsigned n;
    unsigned ipc_mode;
    gid_t ipc_gid;
};

/* As server_start, on every address of l; fails, listening nowhere, when one cannot be
 * listened on. */
int server_start_at(struct server **sp, struct broker *b, const struct server_listen *l,
                    size_t max_message, unsigned nthreads);

/* Stops handling requests: requests in progress finish, parked ones and replies held for the
 * journal are dropped (unanswered). Connections and listeners stay open. Idempotent;
 * server_quiesce(NULL) does nothing. Main thread. */
void server_quiesce(struct server *s);

/* Quiesces (if not done), closes every connection (ops_pipe_closed for each) and listener
 * (removing IPC socket files) and frees. server_stop(NULL) does nothing. */
void server_stop(struct server *s);

#endif
