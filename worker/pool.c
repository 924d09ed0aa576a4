#include "pool.h"

#include "err.h"
#include "log.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Slots that count toward the target: wanted, whether or not a process runs now. */
static bool
counted(const struct pool_slot *s)
{
    switch (s->state) {
    case POOL_BACKOFF:
    case POOL_STARTING:
    case POOL_RUNNING:
    case POOL_RECYCLING:
    case POOL_FAILED:
        return true;
    default:
        return false;
    }
}

void
pool_name_prefix(char *out, size_t cap, const char *host, int pid)
{
    size_t room = POOL_PREFIX_MAX - 11; /* ":" and up to 10 digits of pid */
    size_t n = 0;

    for (const char *h = host; *h != '\0' && n < room && n + 1 < cap; h++) {
        char c = *h;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[n++] = ok ? c : '_';
    }
    if (n == 0 && cap > 1) {
        out[n++] = 'h'; /* no host name */
    }
    snprintf(out + n, cap - n, ":%d", pid);
}

int
pool_init(struct pool *p, const struct pool_params *par, const struct pool_ops *ops)
{
    memset(p, 0, sizeof(*p));
    p->slots = calloc(POOL_SLOTS_MAX, sizeof(*p->slots));
    if (p->slots == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < POOL_SLOTS_MAX; i++) {
        p->slots[i].idx = i;
        p->slots[i].state = POOL_FREE;
    }
    p->par = *par;
    snprintf(p->prefix, sizeof(p->prefix), "%s", par->name_prefix);
    p->par.name_prefix = p->prefix;
    p->ops = *ops;
    p->n = par->n;
    p->roll_old = p->roll_new = -1;
    return 0;
}

void
pool_fini(struct pool *p)
{
    if (p->slots == NULL) {
        return;
    }
    for (uint32_t i = 0; i < p->nslots; i++) {
        p->ops.release(p->ops.arg, &p->slots[i]);
    }
    free(p->slots);
    p->slots = NULL;
}

void
pool_slot_name(const struct pool *p, const struct pool_slot *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%u", p->prefix, s->idx);
}

/* The lowest FREE slot not freed within POOL_REUSE_MS, or NULL: when some are that recent
 * (the next tick tries again), or when every slot number is taken (logged once). */
static struct pool_slot *
free_slot(struct pool *p, uint64_t now)
{
    bool recent = false;

    for (uint32_t i = 0; i < POOL_SLOTS_MAX; i++) {
        const struct pool_slot *s = &p->slots[i];
        if (s->state != POOL_FREE) {
            continue;
        }
        if (s->freed_ms != 0 && now - s->freed_ms < POOL_REUSE_MS) {
            recent = true;
            continue;
        }
        if (i >= p->nslots) {
            p->nslots = i + 1;
        }
        p->no_slot_logged = false;
        return &p->slots[i];
    }
    if (!recent && !p->no_slot_logged) {
        LOG(LOG_WARN, "pool.no_slot", "slots=%u reason=\"every slot number is held by a live "
            "or stopping worker; retrying\"", POOL_SLOTS_MAX);
        p->no_slot_logged = true;
    }
    return NULL;
}

static void
roll_clear(struct pool *p)
{
    p->roll_old = p->roll_new = -1;
}

/* The next process a rolling restart replaces: the lowest slot whose live process started
 * before the restart was asked for. */
static struct pool_slot *
roll_candidate(struct pool *p)
{
    for (uint32_t i = 0; i < p->nslots; i++) {
        struct pool_slot *s = &p->slots[i];
        if ((s->state == POOL_STARTING || s->state == POOL_RUNNING) && s->seq < p->roll_before) {
            return s;
        }
    }
    return NULL;
}

/* Moves a rolling restart on: stops the old process once its replacement serves. */
static void
roll_check(struct pool *p, uint64_t now)
{
    char oname[WIRE_NAME_MAX + 1], nname[WIRE_NAME_MAX + 1];

    if (p->roll_new < 0) {
        return;
    }
    struct pool_slot *old = &p->slots[p->roll_old], *nw = &p->slots[p->roll_new];
    pool_slot_name(p, old, oname, sizeof(oname));
    pool_slot_name(p, nw, nname, sizeof(nname));
    switch (nw->state) {
    case POOL_RUNNING:
        LOG(LOG_INFO, "pool.roll.step", "old=%s new=%s", oname, nname);
        roll_clear(p);
        pool_child_event(p, old, POOL_EV_STOP, now);
        break;
    case POOL_FAILED:
        LOG(LOG_ERROR, "pool.roll.abandon", "old=%s new=%s reason=\"the new worker exits 2 "
            "(usage error): the old workers keep serving\"", oname, nname);
        roll_clear(p);
        p->roll_before = 0;
        pool_child_event(p, nw, POOL_EV_STOP, now);
        break;
    case POOL_STARTING:
    case POOL_BACKOFF:
        break;      /* still coming up */
    default:
        roll_clear(p); /* the replacement is gone (scaled away): pick again */
        break;
    }
}

void
pool_reconcile(struct pool *p, uint64_t now_ms)
{
    struct pool_slot *s;
    uint32_t count = 0;

    if (p->stopping) {
        return;
    }
    roll_check(p, now_ms);
    for (uint32_t i = 0; i < p->nslots; i++) {
        count += counted(&p->slots[i]);
    }
    /* During a rolling restart the old process is the one extra. */
    if (p->roll_new >= 0 && counted(&p->slots[p->roll_old])) {
        count--;
    }
    while (count < p->n && (s = free_slot(p, now_ms)) != NULL) {
        pool_child_event(p, s, POOL_EV_START, now_ms);
        count++;
    }
    if (count > p->n && p->roll_new >= 0) {
        /* Scaled down mid-roll: the pair becomes two ordinary workers, one to stop. */
        if (counted(&p->slots[p->roll_old])) {
            count++;
        }
        roll_clear(p);
    }
    for (uint32_t i = p->nslots; i-- > 0 && count > p->n;) {
        if (counted(&p->slots[i])) {
            pool_child_event(p, &p->slots[i], POOL_EV_STOP, now_ms);
            count--;
        }
    }
    if (p->roll_before != 0 && p->roll_new < 0) {
        struct pool_slot *old = roll_candidate(p);
        if (old == NULL) {
            LOG(LOG_INFO, "pool.roll.done", "workers=%u", count);
            p->roll_before = 0;
        } else if ((s = free_slot(p, now_ms)) != NULL) {
            p->roll_old = old->idx;
            p->roll_new = s->idx;
            pool_child_event(p, s, POOL_EV_START, now_ms);
        }
    }
}

int
pool_scale(struct pool *p, uint32_t n, uint64_t now_ms)
{
    if (p->stopping) {
        return SL_EFORBIDDEN;
    }
    LOG(LOG_INFO, "pool.scale", "from=%u to=%u", p->n, n);
    p->n = n;
    pool_reconcile(p, now_ms);
    return 0;
}

void
pool_roll(struct pool *p, uint64_t now_ms)
{
    if (p->stopping) {
        return;
    }
    LOG(LOG_INFO, "pool.roll", "workers=%u reason=\"SIGHUP: each worker is replaced by a new "
        "one, started first\"", pool_live(p));
    roll_clear(p);
    p->roll_before = p->spawn_seq + 1;
    for (uint32_t i = 0; i < p->nslots; i++) {
        if (p->slots[i].state == POOL_FAILED) {
            pool_child_event(p, &p->slots[i], POOL_EV_START, now_ms);
        }
    }
    pool_reconcile(p, now_ms);
}

/* Whether the worker did its --max-jobs before exiting 0 (a worker that never wrote its
 * status page is taken at its word). */
static bool
max_jobs_done(const struct pool *p, const struct pool_slot *s)
{
    if (p->par.max_jobs == 0) {
        return false;
    }
    if (s->page == NULL || atomic_load(&s->page->pid) == 0) {
        return true;
    }
    uint64_t jobs = atomic_load(&s->page->jobs_done) + atomic_load(&s->page->jobs_failed);
    return jobs >= p->par.max_jobs;
}

/* The slot whose live process is pid, or NULL. */
static struct pool_slot *
slot_of(const struct pool *p, int pid)
{
    for (uint32_t i = 0; i < p->nslots && pid > 0; i++) {
        if (p->slots[i].pid == pid) {
            return &p->slots[i];
        }
    }
    return NULL;
}

bool
pool_has_pid(const struct pool *p, int pid)
{
    return slot_of(p, pid) != NULL;
}

int
pool_handler_pgid(const struct pool *p, int pid)
{
    const struct pool_slot *s = slot_of(p, pid);
    return s != NULL && s->page != NULL ? (int)atomic_load(&s->page->handler_pgid) : 0;
}

bool
pool_reaped(struct pool *p, int pid, int status, uint64_t now_ms)
{
    char name[WIRE_NAME_MAX + 1], how[32];
    struct pool_slot *s = slot_of(p, pid);

    if (s == NULL) {
        return false;
    }
    enum pool_event ev = POOL_EV_EXIT_FAIL;
    if (WIFEXITED(status)) {
        snprintf(how, sizeof(how), "exit:%d", WEXITSTATUS(status));
        if (WEXITSTATUS(status) == 2) {
            ev = POOL_EV_EXIT_USAGE;
        } else if (WEXITSTATUS(status) == 0 &&
                   (s->state == POOL_RECYCLING || s->state == POOL_STOPPING ||
                    max_jobs_done(p, s))) {
            ev = POOL_EV_EXIT_RECYCLE;
        }
    } else if (WIFSIGNALED(status)) {
        snprintf(how, sizeof(how), "signal:%d", WTERMSIG(status));
    } else {
        snprintf(how, sizeof(how), "status:%d", status);
    }
    bool asked = s->state == POOL_RECYCLING || s->state == POOL_STOPPING;
    uint64_t job = s->page != NULL ? atomic_load(&s->page->current_id) : 0;
    pool_slot_name(p, s, name, sizeof(name));
    LOG(asked || ev == POOL_EV_EXIT_RECYCLE ? LOG_INFO : LOG_WARN, "worker.exit",
        "slot=%u worker=%s pid=%d how=%s state=%s uptime_ms=%llu job=%llu", s->idx, name, pid,
        how, pool_state_name((enum pool_state)s->state),
        (unsigned long long)(now_ms - s->started_ms), (unsigned long long)job);
    s->pid = 0;
    pool_child_event(p, s, ev, now_ms);
    pool_reconcile(p, now_ms);
    return true;
}

/* The status page shows the worker serving (or it has run long without ever writing it). */
static bool
page_ready(const struct pool_slot *s, uint64_t now)
{
    if (s->page == NULL) {
        return now - s->started_ms >= POOL_UNREPORTED_READY_MS;
    }
    uint64_t st = atomic_load(&s->page->state);
    if (st == WORKER_IDLE || st == WORKER_BUSY) {
        return true;
    }
    return atomic_load(&s->page->pid) == 0 && now - s->started_ms >= POOL_UNREPORTED_READY_MS;
}

/* How long the current job has run, in ms; 0 when none. */
static uint64_t
job_ms(const struct pool_slot *s, uint64_t now)
{
    if (s->page == NULL || atomic_load(&s->page->current_id) == 0) {
        return 0;
    }
    uint64_t start = atomic_load(&s->page->current_start_ms);
    return start != 0 && now > start ? now - start : 0;
}

void
pool_tick(struct pool *p, uint64_t now_ms)
{
    char name[WIRE_NAME_MAX + 1];
    bool mem = p->par.max_memory_bytes != 0 && now_ms >= p->mem_check_ms;

    if (mem) {
        p->mem_check_ms = now_ms + POOL_MEM_CHECK_MS;
    }
    for (uint32_t i = 0; i < p->nslots; i++) {
        struct pool_slot *s = &p->slots[i];
        if (s->due_ms != 0 && s->due_ms <= now_ms) {
            pool_child_event(p, s, POOL_EV_TIMER, now_ms);
        }
        if (s->state == POOL_STARTING && s->pid > 0 && page_ready(s, now_ms)) {
            pool_child_event(p, s, POOL_EV_READY, now_ms);
        }
        bool live = s->state == POOL_RUNNING || s->state == POOL_RECYCLING ||
                    s->state == POOL_STOPPING;
        uint64_t ran;
        if (p->par.job_timeout_ms != 0 && live && s->pid > 0 && !s->killed &&
            (ran = job_ms(s, now_ms)) > p->par.job_timeout_ms) {
            pool_slot_name(p, s, name, sizeof(name));
            LOG(LOG_WARN, "worker.hung", "slot=%u worker=%s pid=%d job=%llu ran_ms=%llu "
                "job_timeout_ms=%llu", s->idx, name, s->pid,
                (unsigned long long)atomic_load(&s->page->current_id), (unsigned long long)ran,
                (unsigned long long)p->par.job_timeout_ms);
            pool_child_event(p, s, POOL_EV_HUNG, now_ms);
        }
        uint64_t rss;
        if (mem && s->state == POOL_RUNNING && s->pid > 0 &&
            (rss = p->ops.rss(p->ops.arg, s->pid)) > p->par.max_memory_bytes) {
            pool_slot_name(p, s, name, sizeof(name));
            LOG(LOG_INFO, "worker.recycle", "slot=%u worker=%s pid=%d reason=max_memory "
                "rss_bytes=%llu max_memory_bytes=%llu", s->idx, name, s->pid,
                (unsigned long long)rss, (unsigned long long)p->par.max_memory_bytes);
            pool_child_event(p, s, POOL_EV_RECYCLE, now_ms);
        }
    }
    pool_reconcile(p, now_ms);
}

void
pool_stop(struct pool *p, uint64_t now_ms)
{
    LOG(LOG_INFO, "pool.stop", "workers=%u drain_timeout_ms=%llu", pool_live(p),
        (unsigned long long)p->par.drain_timeout_ms);
    p->stopping = true;
    roll_clear(p);
    p->roll_before = 0;
    for (uint32_t i = 0; i < p->nslots; i++) {
        pool_child_event(p, &p->slots[i], POOL_EV_STOP, now_ms);
    }
}

void
pool_kill_all(struct pool *p)
{
    for (uint32_t i = 0; i < p->nslots; i++) {
        struct pool_slot *s = &p->slots[i];
        if (s->pid > 0) {
            p->ops.signal(p->ops.arg, s->pid, SIGKILL);
            s->killed = true;
            s->due_ms = 0;
        }
    }
}

uint32_t
pool_live(const struct pool *p)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < p->nslots; i++) {
        n += p->slots[i].pid > 0;
    }
    return n;
}

bool
pool_done(const struct pool *p)
{
    return p->stopping && pool_live(p) == 0;
}

uint64_t
pool_next_due(const struct pool *p)
{
    uint64_t due = 0;

    for (uint32_t i = 0; i < p->nslots; i++) {
        uint64_t d = p->slots[i].due_ms;
        if (d != 0 && (due == 0 || d < due)) {
            due = d;
        }
    }
    return due;
}

/* The state pool.status shows: the worker's own word while it serves. */
static const char *
shown_state(const struct pool_slot *s)
{
    static const char *const page_states[] = {
        [WORKER_STARTING] = "starting", [WORKER_IDLE] = "idle",  [WORKER_BUSY] = "busy",
        [WORKER_DRAINING] = "draining", [WORKER_STOPPED] = "stopped",
    };
    if (s->state == POOL_RUNNING) {
        uint64_t st = s->page != NULL ? atomic_load(&s->page->state) : WORKER_STOPPED + 1;
        return st <= WORKER_STOPPED ? page_states[st] : "running";
    }
    return pool_state_name((enum pool_state)s->state);
}

static void
kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    wire_pack_cstr(pk, k);
    msgpack_pack_uint64(pk, v);
}

void
pool_pack_status(const struct pool *p, msgpack_packer *pk, uint64_t now_ms)
{
    char name[WIRE_NAME_MAX + 1];
    uint32_t listed = 0;

    for (uint32_t i = 0; i < p->nslots; i++) {
        listed += p->slots[i].state != POOL_FREE;
    }
    wire_pack_key(pk, WK_WORKERS);
    msgpack_pack_array(pk, listed);
    for (uint32_t i = 0; i < p->nslots; i++) {
        const struct pool_slot *s = &p->slots[i];
        if (s->state == POOL_FREE) {
            continue;
        }
        bool live = s->pid > 0;
        const struct worker_status *pg = live ? s->page : NULL;
        uint64_t cur = pg != NULL ? atomic_load(&pg->current_id) : 0;
        pool_slot_name(p, s, name, sizeof(name));
        msgpack_pack_map(pk, 11);
        kv_u64(pk, "slot", s->idx);
        wire_pack_cstr(pk, "id");
        wire_pack_cstr(pk, name);
        kv_u64(pk, "pid", live ? (uint64_t)s->pid : 0);
        wire_pack_cstr(pk, "state");
        wire_pack_cstr(pk, shown_state(s));
        kv_u64(pk, "jobs", pg != NULL ? atomic_load(&pg->jobs_done) : 0);
        kv_u64(pk, "failed", pg != NULL ? atomic_load(&pg->jobs_failed) : 0);
        kv_u64(pk, "rss_bytes", live ? p->ops.rss(p->ops.arg, s->pid) : 0);
        wire_pack_cstr(pk, "current");
        if (cur != 0) {
            msgpack_pack_uint64(pk, cur);
        } else {
            msgpack_pack_nil(pk);
        }
        kv_u64(pk, "current_ms", live ? job_ms(s, now_ms) : 0);
        kv_u64(pk, "uptime_s", live ? (now_ms - s->started_ms) / 1000 : 0);
        kv_u64(pk, "restarts", s->restarts);
    }
    wire_pack_key(pk, WK_N);
    msgpack_pack_uint64(pk, p->n);
}
