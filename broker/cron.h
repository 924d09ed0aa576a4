/* Recurring jobs (README "Recurring jobs"): the broker's cron entries, each a schedule
 * (cronexpr.h) and the job it pushes at every instant of it, kept, journaled and fired by the
 * broker itself.
 *
 * An instant fires once: the job it pushes and the instant it consumes are one journal record
 * (the push path writes R_CRON_FIRE for a push carrying a struct cron_fire), so a torn tail
 * loses both or neither. Instants are fired by the timer thread (park.c) while the broker
 * serves (a cluster standby, or a leader out of its lease, fires nothing); the instants that
 * came while it did not (down, a standby, out of lease) are missed, and each entry's missed
 * rule says what they give once it serves again: one job (once) or none (skip). While it
 * serves, a tick that finds several instants due (a stall, a clock step) pushes one job for
 * them, the last.
 *
 * Every function is called with b->lock held; none blocks. */
#ifndef SLUICE_CRON_H
#define SLUICE_CRON_H

#include "cronexpr.h"
#include "hmap.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

#define CRON_MAX 10000u /* entries one broker holds */

struct broker;

enum cron_missed {
    CRON_MISSED_ONCE, /* the instants missed give one job */
    CRON_MISSED_SKIP, /* they give none */
    CRON_MISSED_RULES
};

/* The wire's and the journal's names of the rules: "once", "skip". */
extern const char *const cron_missed_names[CRON_MISSED_RULES];

struct cron_entry {
    struct cron_entry *next;     /* the next by name */
    char name[WIRE_NAME_MAX + 1];
    uint32_t name_len;
    char sched[CRONEXPR_TEXT_MAX + 1]; /* as given */
    uint32_t sched_len;
    struct cronexpr expr;
    char group[WIRE_NAME_MAX + 1];
    uint32_t group_len;
    char queue[WIRE_NAME_MAX + 1];
    uint32_t queue_len;          /* 0: the group's route, as for a push without a queue */
    bool paused;
    enum cron_missed missed;
    int64_t from_ms;             /* only instants after this count (wall ms): set when the
                                    entry was added or resumed, or missed instants skipped */
    int64_t last_ms;             /* the last instant fired (wall ms; 0: none yet) */
    uint64_t fired;              /* instants fired, refused pushes included */
    uint64_t refused;            /* of those, the instants whose push was refused */
    int64_t next_ms;             /* the first instant after from_ms and last_ms (-1: none),
                                    kept so that a timer round looks at the entries due only */
    uint32_t len;                /* payload bytes */
    char payload[];
};

struct cron_tab {
    struct hmap byname;          /* name -> struct cron_entry */
    struct cron_entry *head;     /* every entry, by name */
    uint32_t n;
    uint64_t fired, refused;     /* since start: instants fired, pushes refused */
    bool live;                   /* the broker has fired since it began serving */
};

/* What an entry is made of: what cron.add gives (counts and times 0), or a journal record. */
struct cron_spec {
    struct sl_str name, sched, group, queue, payload; /* queue.n 0: the group's route */
    bool paused;
    enum cron_missed missed;
    int64_t from_ms, last_ms;
    uint64_t fired, refused;
};

/* An instant being fired, carried by its push (push_req.cron) into the journal. */
struct cron_fire {
    struct sl_str name;
    int64_t instant_ms;
};

void cron_init(struct cron_tab *t);
void cron_fini(struct cron_tab *t);

/* Adds an entry, or replaces the one of that name (*replaced) with a new one whose instants
 * count from now (its counts start again). Errors, with why: SL_EBADREQ (the schedule, which
 * field), SL_ETOOLARGE (payload over the broker's max_payload, or CRON_MAX entries),
 * SL_ENOTFOUND (queue), SL_ENOMEM. */
int cron_add(struct broker *b, const struct cron_spec *s, bool *replaced, char *why,
             size_t cap);
/* Errors: SL_ENOTFOUND. */
int cron_remove(struct broker *b, struct sl_str name);
/* Pauses or resumes (a resumed entry's instants count from now). Idempotent. Errors:
 * SL_ENOTFOUND. */
int cron_pause(struct broker *b, struct sl_str name, bool paused);

/* The entry named name, or NULL. */
const struct cron_entry *cron_find(const struct broker *b, struct sl_str name);
/* e's next instant (wall ms): -1 when paused or when it has none. */
int64_t cron_next_ms(const struct cron_entry *e);

/* The timer thread, while the broker serves: fires what is due at now_wall_ms; returns the
 * wall ms of the next instant due (INT64_MAX: none). */
int64_t cron_tick(struct broker *b, int64_t now_wall_ms);
/* The timer thread, while the broker does not serve: what comes before it serves again is
 * missed. */
void cron_idle(struct broker *b);

/* Replay (journal_replay.c): an entry as recorded, made whatever its queue (SL_EBADREQ: its
 * schedule does not parse; SL_ENOMEM); an instant recorded as fired (pushed: its job was
 * replayed with it); an entry removed. An instant or a removal of an entry the broker does not
 * hold (removed later, recorded in a deleted segment) changes nothing. */
int cron_restore(struct broker *b, const struct cron_spec *s);
void cron_replay_fired(struct broker *b, struct sl_str name, int64_t instant_ms, bool pushed);
void cron_replay_remove(struct broker *b, struct sl_str name);

#endif
