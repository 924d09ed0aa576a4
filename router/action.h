/* A change the router makes to the broker, as a policy decides it: the action types and
 * lists policies fill, the request that carries an action out (PROTOCOL.md: queue.create,
 * queue.update, queue.destroy, route.set, route.unset, group.weight, group.limit) and its
 * description for
 * the log.
 * Not thread-safe; no I/O. */
#ifndef SLUICE_ROUTER_ACTION_H
#define SLUICE_ROUTER_ACTION_H

#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACTION_REASON_MAX 128

/* The settings of a queue the router creates or keeps in line. */
struct action_qset {
    uint64_t priority, weight, max_inflight;
};

enum action_kind {
    ACT_QUEUE_CREATE,   /* queue, set */
    ACT_QUEUE_UPDATE,   /* queue, set: bring an own queue in line with the policy */
    ACT_ROUTE_SET,      /* group, queue */
    ACT_ROUTE_UNSET,    /* group */
    ACT_QUEUE_DESTROY,  /* queue; force: it holds only dead jobs, which move to default */
    ACT_GROUP_WEIGHT,   /* group, weight */
    ACT_GROUP_LIMIT,    /* group, rate_milli (0: remove), burst */
};

struct action {
    enum action_kind kind;
    char group[WIRE_NAME_MAX + 1];  /* "" for queue actions without a group */
    char queue[WIRE_NAME_MAX + 1];
    uint64_t count;                 /* the group's count in the snapshot (0 if no group) */
    struct action_qset set;         /* ACT_QUEUE_CREATE, ACT_QUEUE_UPDATE */
    bool force;                     /* ACT_QUEUE_DESTROY */
    double weight;                  /* ACT_GROUP_WEIGHT: the group's new weight (0.01..1000) */
    uint64_t rate_milli;            /* ACT_GROUP_LIMIT: its start rate, thousandths/s; 0: none */
    uint64_t burst;                 /* ACT_GROUP_LIMIT: its burst (with a rate) */
    char reason[ACTION_REASON_MAX]; /* why, for the log and the broker ("count 1530 > high 100") */
    char expect[WIRE_NAME_MAX + 1]; /* route actions: the group's route when the policy decided
                                       ("" for none); weight actions: its weight then ("0.250");
                                       limit actions: its limit then ("none", "20.000:5");
                                       the broker refuses the change with `conflict` if the
                                       route or weight is another one by then */
};

/* Actions in the order they are to be applied: a queue's creation before the route to it. */
struct action_list {
    struct action *v;
    size_t n, cap;
};

void action_list_init(struct action_list *l);
void action_list_fini(struct action_list *l);
void action_list_clear(struct action_list *l);

/* Appends a zeroed action of kind. Returns it, or NULL when out of memory (list unchanged). */
struct action *action_list_add(struct action_list *l, enum action_kind kind);

/* The verb of kind for the log: "create", "update", "route", "unroute", "destroy", "weight". */
const char *action_verb(enum action_kind kind);

/* Builds the request that carries out a into req (initialised here), with lease (0: none)
 * and the reason; a route change also carries `expect`, so that it never undoes a route set
 * after the policy looked. req borrows a's strings: a must outlive it. */
void action_request(const struct action *a, uint64_t lease, struct wire_msg *req);

/* Writes the decision for the log into out: "action=route group=bob count=1530
 * queue=group.bob reason=\"count 1530 > high 100\"" (create and update add the settings, a
 * weight change "weight=0.25"). */
void action_describe(const struct action *a, char *out, size_t cap);

#endif
