/* Parked reserves and the timer thread.
 *
 * A reserve that finds no job and may wait is parked: the request stays unanswered in its
 * waiter, holding no server thread (parked requests never use up the broker's capacity to
 * answer others). Whenever jobs may have become
 * available (a push, a nack, an ack freeing a capped queue, a resume...), parked waiters
 * are served oldest first. The timer thread applies job deadlines (flow_tick) and answers
 * waiters whose wait ended with an empty job list. */
#ifndef SLUICE_PARK_H
#define SLUICE_PARK_H

#include "broker.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>

struct waiter {
    struct waiter *next, *prev;  /* in the broker's waiter list while parked; next also
                                    links the list of waiters to send */
    bool parked;
    struct worker *w;
    uint32_t pipe;               /* connection the request came on */
    uint32_t max;
    uint64_t rtok;               /* the reserve's token; 0: none */
    int64_t deadline_ns;         /* monotonic */
    uint64_t acked;              /* acks carried by the request, for the reply */
    struct wire_list from;       /* over from_s */
    struct sl_str from_s[WIRE_FROM_MAX];
    char from_buf[WIRE_FROM_MAX][WIRE_NAME_MAX];
    nng_msg *rep;                /* the reply, set when served or expired */
    bool took_rep;               /* the dispatcher kept the request's reply message in rep
                                    (held until the journal has the request's changes) */
    uint64_t commit_lsn;         /* journal position the reply must wait for (0: none) */
    struct journal *jr;          /* the journal holding it, with commit_lsn */
    void (*send)(struct waiter *); /* sends rep; called without the broker's lock */
};

/* Parks wt (filled in by the reserve handler) at the tail. */
void park_add(struct broker *b, struct waiter *wt);

/* Takes wt off the waiter list if it is parked there (its reply will never be sent by the
 * broker) and returns true; false when it is not parked (answered, or being answered). Lock
 * held. */
bool park_take(struct broker *b, struct waiter *wt);

/* Serves parked waiters that can get jobs now, oldest first, prepending each served one to
 * *out. Lock held. */
void park_serve(struct broker *b, struct waiter **out);

/* Has the timer thread serve parked waiters PARK_CLOSE_GRACE_MS from now, not at once: used
 * when a connection closed. A pool killed whole closes many connections at once, seen one by
 * one; jobs handed back at the first close must not go to the parked reserves of workers that
 * died with it (a one-job reply counts as started: each such close would charge the job a
 * crash). The grace lets those closes be seen first. Lock held. */
#define PARK_CLOSE_GRACE_MS 20
void park_serve_later(struct broker *b);

/* Answers, with no jobs, the waiters whose deadline is at or before now_ns, and those on
 * pipe (if pipe != 0) or of a worker on it. Lock held. */
void park_expire(struct broker *b, int64_t now_ns, uint32_t pipe, struct waiter **out);

/* Sends each waiter of the list. Lock NOT held. */
void park_send_all(struct waiter *list);

/* Waits until the timer thread is not sending replies it took off the list (it sends them
 * without the lock): after park_expire has emptied the list, no reply is in flight from it.
 * Lock held. */
void park_wait_timer_sends(struct broker *b);

/* Starts / stops the timer thread. */
int park_timer_start(struct broker *b, pthread_t *t);
void park_timer_stop(struct broker *b, pthread_t t);

#endif
