#include "cron.h"

#include "broker.h"
#include "change.h"
#include "err.h"
#include "journal.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cron_missed_names[CRON_MISSED_RULES] = { "once", "skip" };

void
cron_init(struct cron_tab *t)
{
    memset(t, 0, sizeof(*t));
    hmap_init(&t->byname);
}

void
cron_fini(struct cron_tab *t)
{
    for (struct cron_entry *e = t->head, *next; e != NULL; e = next) {
        next = e->next;
        free(e);
    }
    hmap_fini(&t->byname);
    t->head = NULL;
    t->n = 0;
}

static struct cron_entry *
find(const struct broker *b, struct sl_str name)
{
    return hmap_get(&b->cron.byname, name.p, name.n);
}

const struct cron_entry *
cron_find(const struct broker *b, struct sl_str name)
{
    return find(b, name);
}

static int64_t
now_ms(const struct broker *b)
{
    return broker_wall_ns(b) / 1000000;
}

/* Instants after this one count. */
static int64_t
base_ms(const struct cron_entry *e)
{
    return e->last_ms > e->from_ms ? e->last_ms : e->from_ms;
}

/* After from_ms or last_ms changed. */
static void
renext(struct cron_entry *e)
{
    e->next_ms = cronexpr_next(&e->expr, base_ms(e));
}

int64_t
cron_next_ms(const struct cron_entry *e)
{
    return e->paused ? -1 : e->next_ms;
}

/* A new entry of s (checked), not linked anywhere. */
static struct cron_entry *
entry_new(const struct cron_spec *s, const struct cronexpr *expr)
{
    struct cron_entry *e = calloc(1, sizeof(*e) + s->payload.n);
    if (e == NULL) {
        return NULL;
    }
    memcpy(e->name, s->name.p, s->name.n);
    e->name_len = s->name.n;
    memcpy(e->sched, s->sched.p, s->sched.n);
    e->sched_len = s->sched.n;
    e->expr = *expr;
    memcpy(e->group, s->group.p, s->group.n);
    e->group_len = s->group.n;
    memcpy(e->queue, s->queue.p, s->queue.n);
    e->queue_len = s->queue.n;
    e->paused = s->paused;
    e->missed = s->missed;
    e->from_ms = s->from_ms;
    e->last_ms = s->last_ms;
    e->fired = s->fired;
    e->refused = s->refused;
    e->len = s->payload.n;
    memcpy(e->payload, s->payload.p, s->payload.n);
    renext(e);
    return e;
}

static void
unlink_entry(struct cron_tab *t, struct cron_entry *e)
{
    for (struct cron_entry **pp = &t->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    hmap_del(&t->byname, e->name, e->name_len);
    t->n--;
}

/* Puts e in t, in place of old (NULL: none), which is freed. 0 or SL_ENOMEM (e not put, old
 * kept). */
static int
put(struct cron_tab *t, struct cron_entry *e, struct cron_entry *old)
{
    if (hmap_reserve(&t->byname, (size_t)t->n + 1) != 0) {
        return SL_ENOMEM;
    }
    if (old != NULL) {
        unlink_entry(t, old); /* its key is its name: it leaves the map before it is freed */
        free(old);
    }
    (void)hmap_put(&t->byname, e->name, e->name_len, e); /* room reserved */
    struct cron_entry **pp = &t->head;
    while (*pp != NULL && strcmp((*pp)->name, e->name) < 0) {
        pp = &(*pp)->next;
    }
    e->next = *pp;
    *pp = e;
    t->n++;
    return 0;
}

/* Wakes the timer thread in time for e's next instant. */
static void
wake_for(struct broker *b, const struct cron_entry *e)
{
    int64_t next = cron_next_ms(e);
    if (next >= 0) {
        int64_t in_ns = next * 1000000 - broker_wall_ns(b);
        broker_timer_wake(b, broker_mono_ns(b) + (in_ns > 0 ? in_ns : 0));
    }
}

static void
entry_changed(struct broker *b, const struct cron_entry *e)
{
    change_made(b, &(struct change){ .kind = CH_CRON, .origin = b->origin, .cron = e });
}

int
cron_add(struct broker *b, const struct cron_spec *s, bool *replaced, char *why, size_t cap)
{
    struct cronexpr expr;
    struct cron_entry *old = find(b, s->name);

    if (cronexpr_parse(&expr, s->sched.p, s->sched.n, why, cap) != 0) {
        return SL_EBADREQ;
    }
    if (s->payload.n > b->cfg.max_payload) {
        snprintf(why, cap, "the payload exceeds the limit of %u bytes", b->cfg.max_payload);
        return SL_ETOOLARGE;
    }
    if (s->queue.n > 0 && broker_queue_find(b, s->queue) == NULL) {
        snprintf(why, cap, "queue '%.*s' does not exist", (int)s->queue.n, s->queue.p);
        return SL_ENOTFOUND;
    }
    if (old == NULL && b->cron.n >= CRON_MAX) {
        snprintf(why, cap, "the broker holds %u cron entries, its most", CRON_MAX);
        return SL_ETOOLARGE;
    }
    struct cron_spec fresh = *s;
    fresh.from_ms = now_ms(b);
    fresh.last_ms = 0;
    fresh.fired = fresh.refused = 0;
    struct cron_entry *e = entry_new(&fresh, &expr);
    *replaced = old != NULL;
    if (e == NULL || put(&b->cron, e, old) != 0) {
        free(e);
        return SL_ENOMEM;
    }
    entry_changed(b, e);
    wake_for(b, e);
    return 0;
}

int
cron_remove(struct broker *b, struct sl_str name)
{
    struct cron_entry *e = find(b, name);
    if (e == NULL) {
        return SL_ENOTFOUND;
    }
    change_made(b, &(struct change){ .kind = CH_CRON_GONE, .origin = b->origin, .name = name });
    unlink_entry(&b->cron, e);
    free(e);
    return 0;
}

int
cron_pause(struct broker *b, struct sl_str name, bool paused)
{
    struct cron_entry *e = find(b, name);
    if (e == NULL) {
        return SL_ENOTFOUND;
    }
    if (e->paused == paused) {
        return 0;
    }
    e->paused = paused;
    if (!paused) {
        e->from_ms = now_ms(b); /* what came while paused is not missed: it is skipped */
        renext(e);
        wake_for(b, e);
    }
    entry_changed(b, e);
    return 0;
}

static void
note_fired(struct broker *b, struct cron_entry *e, int64_t instant_ms, bool pushed)
{
    e->last_ms = instant_ms;
    renext(e);
    e->fired++;
    if (!pushed) {
        e->refused++;
    }
    if (!b->replaying) {
        b->cron.fired++;
        b->cron.refused += !pushed;
    }
}

/* Pushes e's job for instant_ms; a refusal consumes the instant all the same. */
static void
fire(struct broker *b, struct cron_entry *e, int64_t instant_ms)
{
    struct sl_str payload = { e->payload, e->len };
    struct wire_list pl = { 1, NULL, &payload, NULL };
    struct sl_str queue = { e->queue, e->queue_len };
    struct cron_fire cf = { { e->name, e->name_len }, instant_ms };
    struct push_req req = { .group = { e->group, e->group_len },
                            .queue = e->queue_len > 0 ? &queue : NULL,
                            .payloads = &pl,
                            .cron = &cf };
    struct push_res res;
    char why[160] = "";
    int rv = b->jr != NULL && journal_broken(b->jr, why, sizeof(why)) ? SL_EIO
                                                                      : broker_push(b, &req, &res);
    note_fired(b, e, instant_ms, rv == 0);
    if (rv != 0) {
        LOG(LOG_WARN, "cron.refused", "name=%s instant_ms=%lld group=%s queue=%s err=%s%s%s%s",
            e->name, (long long)instant_ms, e->group, e->queue_len > 0 ? e->queue : "-",
            sl_err_code(rv), why[0] != '\0' ? " reason=\"" : "", why,
            why[0] != '\0' ? "\"" : "");
        change_made(b, &(struct change){ .kind = CH_CRON_FIRE, .cron = e });
    }
}

int64_t
cron_tick(struct broker *b, int64_t now_wall_ms)
{
    bool catching_up = !b->cron.live;
    int64_t soonest = INT64_MAX;

    b->cron.live = true;
    for (struct cron_entry *e = b->cron.head; e != NULL; e = e->next) {
        if (e->paused || e->next_ms < 0) {
            continue;
        }
        if (e->next_ms <= now_wall_ms) {
            /* The last instant due: the ones before it, if any, were missed. */
            int64_t due = cronexpr_last(&e->expr, base_ms(e), now_wall_ms);
            due = due >= 0 ? due : e->next_ms; /* beyond the search: years down */
            if (catching_up && e->missed == CRON_MISSED_SKIP) {
                e->from_ms = due; /* missed while the broker did not serve */
                renext(e);
            } else {
                fire(b, e, due);
            }
        }
        if (e->next_ms >= 0 && e->next_ms < soonest) {
            soonest = e->next_ms;
        }
    }
    return soonest;
}

void
cron_idle(struct broker *b)
{
    b->cron.live = false;
}

int
cron_restore(struct broker *b, const struct cron_spec *s)
{
    struct cronexpr expr;
    char why[256];
    if (cronexpr_parse(&expr, s->sched.p, s->sched.n, why, sizeof(why)) != 0 ||
        (unsigned)s->missed >= CRON_MISSED_RULES) {
        return SL_EBADREQ;
    }
    struct cron_entry *e = entry_new(s, &expr);
    if (e == NULL || put(&b->cron, e, find(b, s->name)) != 0) {
        free(e);
        return SL_ENOMEM;
    }
    return 0;
}

void
cron_replay_fired(struct broker *b, struct sl_str name, int64_t instant_ms, bool pushed)
{
    struct cron_entry *e = find(b, name);
    if (e != NULL) {
        note_fired(b, e, instant_ms, pushed);
    }
}

void
cron_replay_remove(struct broker *b, struct sl_str name)
{
    struct cron_entry *e = find(b, name);
    if (e != NULL) {
        unlink_entry(&b->cron, e);
        free(e);
    }
}
