#include "broker.h"

#include "change.h"

#include "dbsync.h"
#include "err.h"
#include "grate.h"
#include "journal.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
broker_cfg_default(struct broker_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_jobs = 10000000;
    cfg->max_bytes = 1ULL << 30;
    cfg->max_payload = 1U << 20;
    cfg->max_message = 64ULL << 20;
    cfg->ttr_ms = 60000;
    cfg->max_attempts = 3;
    cfg->dedup_window_ns = 600LL * 1000000000LL;
    cfg->dedup_clients = 16384;
    cfg->min_share_ppm = 50000;
    cfg->max_crashes = 3;
    cfg->retry = (struct queue_retry){ .base_ms = 1000, .max_ms = 600000, .jitter = 20 };
}

static int64_t
sys_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t
broker_mono_ns(const struct broker *b)
{
    return b->cfg.clock.mono_ns != NULL ? b->cfg.clock.mono_ns(b->cfg.clock.arg)
                                        : sys_clock(CLOCK_MONOTONIC);
}

int64_t
broker_wall_ns(const struct broker *b)
{
    return b->cfg.clock.wall_ns != NULL ? b->cfg.clock.wall_ns(b->cfg.clock.arg)
                                        : sys_clock(CLOCK_REALTIME);
}

static int
qcmp(const void *a, const void *b)
{
    const struct queue *x = *(struct queue *const *)a, *y = *(struct queue *const *)b;
    if (x->priority != y->priority) {
        return x->priority < y->priority ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}

static void
qorder_sort(struct broker *b)
{
    qsort(b->qorder, b->nqueues, sizeof(*b->qorder), qcmp);
    sched_rebuild(b);
}

/* Adds q to the map and the order; on failure q is not added (and not freed). */
static int
queue_add(struct broker *b, struct queue *q)
{
    size_t n = b->nqueues + 1;
    struct queue **qo = realloc(b->qorder, sizeof(*qo) * n);
    if (qo == NULL) {
        return SL_ENOMEM;
    }
    b->qorder = qo;
    struct sched_level *l1 = realloc(b->levels, sizeof(*l1) * n);
    if (l1 == NULL) {
        return SL_ENOMEM;
    }
    b->levels = l1;
    struct sched_level *l2 = realloc(b->levels_spare, sizeof(*l2) * n);
    if (l2 == NULL) {
        return SL_ENOMEM;
    }
    b->levels_spare = l2;
    if (hmap_put(&b->queues, q->name, q->name_len, q) != 0) {
        return SL_ENOMEM;
    }
    b->qorder[b->nqueues++] = q;
    qorder_sort(b);
    return 0;
}

static void
queue_remove(struct broker *b, struct queue *q)
{
    hmap_del(&b->queues, q->name, q->name_len);
    for (uint32_t i = 0; i < b->nqueues; i++) {
        if (b->qorder[i] == q) {
            memmove(&b->qorder[i], &b->qorder[i + 1], sizeof(*b->qorder) * (b->nqueues - i - 1));
            b->nqueues--;
            break;
        }
    }
    sched_rebuild(b);
}

int
broker_new(struct broker **bp, const struct broker_cfg *cfg)
{
    struct broker *b = calloc(1, sizeof(*b));
    int rv = SL_ENOMEM;

    if (b == NULL) {
        return SL_ENOMEM;
    }
    b->cfg = *cfg;
    hmap_init(&b->queues);
    hmap_init(&b->groups);
    hmap_init(&b->workers);
    jobidx_init(&b->ids);
    unique_init(&b->uniq);
    hmap_init(&b->closed_pipes);
    theap_init(&b->timers);
    cron_init(&b->cron);
    b->next_id = 1;
    if ((b->scratch = calloc(BROKER_RESERVE_MAX, sizeof(*b->scratch))) == NULL) {
        goto fail_scratch;
    }
    if ((b->dedup = dedup_new(cfg->dedup_window_ns, cfg->dedup_clients)) == NULL) {
        goto fail_dedup;
    }
    b->dflt = queue_new(SL_STR_LIT(BROKER_DEFAULT_QUEUE), BROKER_DEFAULT_PRIORITY, 1, 0);
    if (b->dflt == NULL) {
        goto fail_queue;
    }
    b->dflt->retry = cfg->retry;
    b->rng = ((uint64_t)sys_clock(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32)) | 1;
    if ((rv = queue_add(b, b->dflt)) != 0) {
        goto fail_add;
    }
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        rv = SL_ENOMEM;
        goto fail_lock;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&b->timer_cond, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        rv = SL_ENOMEM;
        goto fail_cond;
    }
    pthread_condattr_destroy(&ca);
    if (pthread_cond_init(&b->timer_sent, NULL) != 0) {
        pthread_cond_destroy(&b->timer_cond);
        rv = SL_ENOMEM;
        goto fail_cond;
    }
    b->started_ns = broker_mono_ns(b);
    *bp = b;
    return 0;
fail_cond:
    pthread_mutex_destroy(&b->lock);
fail_lock:
    queue_remove(b, b->dflt);
fail_add:
    queue_free(b->dflt);
fail_queue:
    dedup_free(b->dedup);
fail_dedup:
    free(b->scratch);
fail_scratch:
    cron_fini(&b->cron);
    hmap_fini(&b->queues);
    hmap_fini(&b->groups);
    free(b->qorder);
    free(b->levels);
    free(b->levels_spare);
    free(b);
    return rv;
}

/* Frees j, keeping the totals exact. */
static void
release(struct broker *b, struct job *j)
{
    theap_del(&b->timers, j);
    jobidx_del(&b->ids, j);
    queue_job_set(j->queue, j, JOB_NONE);
    b->jobs--;
    b->bytes -= j->len;
    b->mem_bytes -= job_free(j);
}

void
broker_release_job(struct broker *b, struct job *j)
{
    change_made(b, &(struct change){ .kind = CH_JOB_GONE, .job = j });
    release(b, j);
}

void
broker_free(struct broker *b)
{
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; i < b->nqueues; i++) {
        struct queue *q = b->qorder[i];
        struct job *j;
        while ((j = queue_ready_first(q)) != NULL) {
            release(b, j);
        }
        for (int st = JOB_READY + 1; st < JOB_STATES; st++) {
            while ((j = q->lists[st].head) != NULL) {
                release(b, j);
            }
        }
        queue_free(q);
    }
    for (struct group *g = b->groups_head, *next; g != NULL; g = next) {
        next = g->next;
        group_free(g);
    }
    for (struct worker *w = b->workers_head, *next; w != NULL; w = next) {
        next = w->next;
        worker_free(w);
    }
    hmap_fini(&b->queues);
    hmap_fini(&b->groups);
    hmap_fini(&b->workers);
    jobidx_fini(&b->ids);
    unique_fini(&b->uniq);
    hmap_fini(&b->closed_pipes);
    theap_fini(&b->timers);
    cron_fini(&b->cron);
    free(b->qorder);
    free(b->levels);
    free(b->levels_spare);
    dedup_free(b->dedup);
    free(b->scratch);
    pthread_cond_destroy(&b->timer_cond);
    pthread_cond_destroy(&b->timer_sent);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

struct queue *
broker_queue_find(const struct broker *b, struct sl_str name)
{
    return hmap_get(&b->queues, name.p, name.n);
}

struct group *
broker_group_find(const struct broker *b, struct sl_str name)
{
    return hmap_get(&b->groups, name.p, name.n);
}

struct group *
broker_group_add(struct broker *b, struct sl_str name)
{
    struct group *g = group_new(name);
    if (g == NULL) {
        return NULL;
    }
    if (hmap_put(&b->groups, g->name, g->name_len, g) != 0) {
        group_free(g);
        return NULL;
    }
    g->prev = b->groups_tail;
    if (b->groups_tail != NULL) {
        b->groups_tail->next = g;
    } else {
        b->groups_head = g;
    }
    b->groups_tail = g;
    return g;
}

void
broker_group_remove(struct broker *b, struct group *g)
{
    dbsync_group_gone(b->db, g);
    grate_drop(b, g);
    hmap_del(&b->groups, g->name, g->name_len);
    if (g->prev != NULL) {
        g->prev->next = g->next;
    } else {
        b->groups_head = g->next;
    }
    if (g->next != NULL) {
        g->next->prev = g->prev;
    } else {
        b->groups_tail = g->prev;
    }
    group_free(g);
}

void
broker_timer_wake(struct broker *b, int64_t due_ns)
{
    if (due_ns < b->timer_next_ns) {
        b->timer_next_ns = due_ns;
        pthread_cond_signal(&b->timer_cond);
    }
}

static void
queue_changed(struct broker *b, const struct queue *q)
{
    change_made(b, &(struct change){ .kind = CH_QUEUE, .origin = b->origin, .queue = q });
}

int
broker_queue_settings_check(const struct queue_settings *s)
{
    if ((s->has_order && (unsigned)s->order >= QUEUE_ORDERS) ||
        (s->has_priority && s->priority > QUEUE_PRIORITY_MAX) ||
        (s->has_weight && (s->weight < 1 || s->weight > QUEUE_WEIGHT_MAX)) ||
        (s->has_max_inflight && s->max_inflight > QUEUE_INFLIGHT_MAX) ||
        (s->has_retry_base && s->retry.base_ms > QUEUE_RETRY_BASE_MAX) ||
        (s->has_retry_max && (s->retry.max_ms < 1 || s->retry.max_ms > QUEUE_RETRY_MAX_MAX)) ||
        (s->has_retry_jitter && s->retry.jitter > 100)) {
        return SL_EBADREQ;
    }
    return 0;
}

/* The retry settings s gives, onto q's. */
static void
apply_retry(struct queue *q, const struct queue_settings *s)
{
    if (s->has_retry_base) {
        q->retry.base_ms = s->retry.base_ms;
    }
    if (s->has_retry_max) {
        q->retry.max_ms = s->retry.max_ms;
    }
    if (s->has_retry_jitter) {
        q->retry.jitter = s->retry.jitter;
    }
}

int
broker_queue_create(struct broker *b, struct sl_str name, const struct queue_settings *s)
{
    int rv;

    if ((rv = broker_queue_settings_check(s)) != 0) {
        return rv;
    }
    if (broker_queue_find(b, name) != NULL) {
        return SL_EEXISTS;
    }
    struct queue *q = queue_new(name, s->has_priority ? s->priority : BROKER_DEFAULT_PRIORITY,
                                s->has_weight ? s->weight : 1,
                                s->has_max_inflight ? s->max_inflight : 0);
    if (q == NULL) {
        return SL_ENOMEM;
    }
    q->retry = b->cfg.retry;
    apply_retry(q, s);
    if ((s->has_order && (rv = queue_set_order(q, s->order)) != 0) ||
        (rv = queue_add(b, q)) != 0) {
        queue_free(q);
        return rv;
    }
    queue_changed(b, q);
    return 0;
}

int
broker_queue_update(struct broker *b, struct sl_str name, const struct queue_settings *s)
{
    int rv;
    struct queue *q = broker_queue_find(b, name);

    if (q == NULL) {
        return SL_ENOTFOUND;
    }
    if ((rv = broker_queue_settings_check(s)) != 0) {
        return rv;
    }
    if (s->has_order && (rv = queue_set_order(q, s->order)) != 0) {
        return rv;
    }
    if (s->has_priority) {
        q->priority = s->priority;
    }
    if (s->has_weight) {
        q->weight = s->weight;
    }
    if (s->has_max_inflight) {
        q->max_inflight = s->max_inflight;
    }
    apply_retry(q, s);
    qorder_sort(b);
    queue_changed(b, q);
    return 0;
}

/* The groups routed to q, first-seen order, each with its jobs in q: what a destruction of q
 * resets and moves. *out is NULL when there are none; the caller frees it. */
static int
routed_to(const struct broker *b, const struct queue *q, struct change_reset **out,
          uint32_t *n)
{
    *out = NULL;
    *n = 0;
    if (q->routes == 0) {
        return 0;
    }
    struct change_reset *r = malloc(q->routes * sizeof(*r));
    if (r == NULL) {
        return SL_ENOMEM;
    }
    for (const struct group *g = b->groups_head; g != NULL && *n < q->routes; g = g->next) {
        if (g->route == q) {
            r[(*n)++] = (struct change_reset){ g, queue_group_jobs(q, g) };
        }
    }
    *out = r;
    return 0;
}

int
broker_queue_destroy(struct broker *b, struct sl_str name, bool force, uint64_t *moved,
                     uint64_t *routes_reset)
{
    struct queue *q = broker_queue_find(b, name);
    struct change_reset *resets;
    uint32_t nresets;

    if (q == NULL) {
        return SL_ENOTFOUND;
    }
    if (q == b->dflt) {
        return SL_EFORBIDDEN;
    }
    if (queue_jobs(q) > 0 && !force) {
        return SL_ENOTEMPTY;
    }
    if (routed_to(b, q, &resets, &nresets) != 0) {
        return SL_ENOMEM;
    }
    if (queue_move_all(q, b->dflt, moved) != 0) {
        free(resets);
        return SL_ENOMEM;
    }
    *routes_reset = 0;
    for (struct group *g = b->groups_head; g != NULL && q->routes > 0; g = g->next) {
        if (g->route == q) {
            g->route = NULL;
            q->routes--;
            (*routes_reset)++;
        }
    }
    change_made(b, &(struct change){ .kind = CH_QUEUE_GONE, .origin = b->origin, .name = name,
                                     .queue = q, .moved = *moved, .resets = resets,
                                     .nresets = nresets });
    free(resets);
    queue_remove(b, q);
    queue_free(q);
    return 0;
}

int
broker_queue_pause(struct broker *b, struct sl_str name, bool paused)
{
    struct queue *q = broker_queue_find(b, name);
    if (q == NULL) {
        return SL_ENOTFOUND;
    }
    q->paused = paused;
    queue_changed(b, q);
    return 0;
}

/* Points g's route at q (NULL: none), moving its ready jobs from the old route's queue.
 * Without memory for that, the route changes all the same and the jobs stay where they are
 * (still served from there): returns SL_ENOMEM then. */
static int
reroute(struct broker *b, struct group *g, struct queue *q, uint64_t *moved)
{
    int rv = 0;
    *moved = 0;
    if (g->route == q) {
        return 0;
    }
    struct queue *from = g->route != NULL ? g->route : b->dflt;
    struct queue *to = q != NULL ? q : b->dflt;
    if (g->jobs[JOB_READY] > 0) {
        rv = queue_move_ready(from, to, g, moved);
    }
    if (g->route != NULL) {
        g->route->routes--;
    }
    g->route = q;
    if (q != NULL) {
        q->routes++;
    }
    return rv;
}

int
broker_route_set(struct broker *b, struct sl_str group, const struct sl_str *queue,
                 uint64_t *moved)
{
    struct queue *q = NULL;

    if (queue != NULL && !sl_str_eq(*queue, BROKER_DEFAULT_QUEUE)) {
        if ((q = broker_queue_find(b, *queue)) == NULL) {
            return SL_ENOTFOUND;
        }
    }
    struct group *g = broker_group_find(b, group);
    if (g == NULL) {
        if (q == NULL) {
            *moved = 0; /* no group, no route: nothing to undo, but the request is told */
            change_made(b, &(struct change){ .kind = CH_ROUTE, .origin = b->origin,
                                             .name = group });
            return 0;
        }
        if ((g = broker_group_add(b, group)) == NULL) {
            return SL_ENOMEM;
        }
    }
    if (q != g->route && queue_lane_make(q != NULL ? q : b->dflt, g) != 0) {
        queue_lane_trim(g);
        return SL_ENOMEM; /* before anything changed */
    }
    const struct queue *from = g->route;
    if (reroute(b, g, q, moved) != 0) {
        LOG(LOG_WARN, "route.nomem", "group=%.*s reason=\"out of memory: ready jobs stay in "
            "the old queue\"", (int)group.n, group.p);
    }
    queue_lane_trim(g);
    change_made(b, &(struct change){ .kind = CH_ROUTE, .origin = b->origin, .name = group,
                                     .group = g, .from = from, .queue = q, .moved = *moved });
    return 0;
}

int
broker_group_weight(struct broker *b, struct sl_str group, uint32_t weight)
{
    if (weight < GROUP_WEIGHT_MIN || weight > GROUP_WEIGHT_MAX) {
        return SL_EBADREQ;
    }
    struct group *g = broker_group_find(b, group);
    if (g == NULL && (g = broker_group_add(b, group)) == NULL) {
        return SL_ENOMEM;
    }
    g->weight = weight;
    change_made(b, &(struct change){ .kind = CH_GROUP_WEIGHT, .origin = b->origin,
                                     .group = g });
    return 0;
}

int
broker_route_expect(const struct broker *b, struct sl_str group, struct sl_str expect)
{
    const struct group *g = broker_group_find(b, group);
    const struct queue *q = g != NULL ? g->route : NULL;

    if (expect.n == 0 || sl_str_eq(expect, BROKER_DEFAULT_QUEUE)) {
        return q == NULL ? 0 : SL_ECONFLICT;
    }
    return q != NULL && q->name_len == expect.n && memcmp(q->name, expect.p, expect.n) == 0
               ? 0
               : SL_ECONFLICT;
}

void
broker_flush(struct broker *b, uint64_t *routes_reset, uint64_t *reset)
{
    *routes_reset = 0;
    *reset = 0;
    change_made(b, &(struct change){ .kind = CH_FLUSH, .origin = b->origin });
    for (struct group *g = b->groups_head, *next; g != NULL; g = next) {
        next = g->next;
        uint64_t moved;
        if (g->route != NULL) {
            if (reroute(b, g, NULL, &moved) != 0) {
                LOG(LOG_WARN, "flush.nomem", "group=%s reason=\"out of memory: ready jobs "
                    "stay in the old queue\"", g->name);
            }
            (*routes_reset)++;
        }
        g->weight = GROUP_WEIGHT_ONE;
        grate_drop(b, g);
        g->done = g->failed = g->pushed = 0;
        (*reset)++;
        if (group_jobs(g) == 0) {
            broker_group_remove(b, g);
        }
    }
    for (uint32_t i = 0; i < b->nqueues; i++) {
        b->qorder[i]->done = b->qorder[i]->failed = b->qorder[i]->pushed = 0;
    }
}

static uint64_t
purge_queue(struct broker *b, struct queue *q, const struct group *g)
{
    uint64_t n = 0;
    if (g != NULL) {
        struct job *j;
        while ((j = queue_group_first(q, g)) != NULL) {
            broker_release_job(b, j);
            n++;
        }
        return n;
    }
    for (struct job *j = queue_ready_first(q), *next; j != NULL; j = next) {
        next = queue_ready_next(j); /* in another lane when j is its lane's last */
        broker_release_job(b, j);
        n++;
    }
    return n;
}

int
broker_purge(struct broker *b, const struct sl_str *queue, const struct sl_str *group,
             uint64_t *purged)
{
    struct queue *q = NULL;
    struct group *g = NULL;

    if (queue == NULL && group == NULL) {
        return SL_EBADREQ;
    }
    if (queue != NULL && (q = broker_queue_find(b, *queue)) == NULL) {
        return SL_ENOTFOUND;
    }
    if (group != NULL && (g = broker_group_find(b, *group)) == NULL) {
        return SL_ENOTFOUND;
    }
    *purged = 0;
    if (q != NULL) {
        *purged = purge_queue(b, q, g);
    } else {
        for (uint32_t i = 0; i < b->nqueues && g->jobs[JOB_READY] > 0; i++) {
            *purged += purge_queue(b, b->qorder[i], g);
        }
    }
    change_made(b, &(struct change){ .kind = CH_PURGE, .origin = b->origin,
                                     .moved = *purged });
    return 0;
}

int
broker_restore_job(struct broker *b, const struct job_restore *r, struct job **out)
{
    struct queue *q = broker_queue_find(b, r->queue);
    if (q == NULL) {
        q = b->dflt;
    }
    struct group *g = broker_group_find(b, r->group);
    if (g == NULL && (g = broker_group_add(b, r->group)) == NULL) {
        return SL_ENOMEM;
    }
    struct wire_list one = { 1, NULL, &r->payload, NULL };
    struct job *j;
    size_t mem;
    int rv = SL_ENOMEM;
    if (queue_lane_make(q, g) != 0 || (rv = jobidx_reserve(&b->ids, r->id, 1)) != 0 ||
        (rv = SL_ENOMEM, job_block_new(&one, 1, &j, &mem) != 0)) {
        queue_lane_trim(g);
        return rv; /* SL_EBADREQ: id 0 */
    }
    j->id = r->id;
    j->enq_ns = r->enq_ns;
    j->ttr_ms = r->ttr_ms;
    j->max_attempts = r->max_attempts;
    j->attempts = r->attempts;
    j->crashes = r->crashes;
    j->group = g;
    if (r->state == JOB_DELAYED) {
        j->due_ns = r->due_ns;
        if (theap_add(&b->timers, j) != 0) {
            job_free(j);
            queue_lane_trim(g);
            return SL_ENOMEM;
        }
    }
    if (r->state == JOB_READY) {
        j->ready_ns = broker_mono_ns(b);
    }
    queue_job_set(q, j, (enum job_state)r->state);
    jobidx_add(&b->ids, j);
    b->jobs++;
    b->bytes += j->len;
    b->mem_bytes += mem;
    *out = j;
    return 0;
}

int
broker_job_error(struct broker *b, struct job *j, enum joberr_class cls, int64_t at_ms,
                 struct sl_str text)
{
    struct joberr *e = joberr_new(cls, at_ms, text);
    if (e == NULL) {
        return SL_ENOMEM;
    }
    free(j->err);
    j->err = e;
    if (!b->replaying) {
        b->flowc.errors[cls]++;
    }
    change_made(b, &(struct change){ .kind = CH_JOB_ERR, .job = j });
    return 0;
}
