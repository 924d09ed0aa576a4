/* router: the balancing policy as its own process (DESIGN.md, Router; router.h).
 *
 *   router [--url URL] [--events-url URL] [--policy threshold|fair|weights] [--tick 1s]
 *          [--high 100] [--low 10] [--priority 100] [--max-inflight K] [--heavy-weight 0.25]
 *          [--heavy-rate R [--heavy-burst B]] [--min-dwell 5s] [--dry-run] [--once] [--name NAME]
 *          [--lease-ttl 2s]
 *
 * main parses the options, sets up the signals and runs the router's loop. */
#include "router.h"
#include "sigpipe.h"

#include "deadline.h"
#include "err.h"
#include "log.h"
#include "opt.h"
#include "ratespec.h"
#include "rundir.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_EVENTS_URL = OPT_COMMON_END,
    OPT_POLICY,
    OPT_TICK,
    OPT_HIGH,
    OPT_LOW,
    OPT_PRIORITY,
    OPT_MAX_INFLIGHT,
    OPT_HEAVY_WEIGHT,
    OPT_MIN_DWELL,
    OPT_DRY_RUN,
    OPT_ONCE,
    OPT_NAME,
    OPT_LEASE_TTL,
    OPT_HEAVY_RATE,
    OPT_HEAVY_BURST,
};

/* PROTOCOL.md: queue.create's ranges, lease.acquire's ttl_ms. */
#define ROUTER_PRIORITY_MAX 1000000
#define ROUTER_INFLIGHT_MAX 1000000
#define ROUTER_TTL_MIN_MS 100
#define ROUTER_TTL_MAX_MS 600000

static const struct opt router_opts[] = {
    { OPT_EVENTS_URL, "events-url", 0, "URL", "SLUICE_EVENTS_URL",
      "the broker's event socket, or a cluster's URL,URL,... (default "
      "ipc://$SLUICE_DIR/events.ipc)" },
    { OPT_POLICY, "policy", 'p', "NAME", "SLUICE_ROUTER_POLICY",
      "threshold (heavy groups to an own queue at --priority), fair (at default's priority "
      "and weight) or weights (heavy groups' weight lowered in place); default threshold" },
    { OPT_TICK, "tick", 't', "DURATION", NULL, "time between two snapshots (default 1s)" },
    { OPT_HIGH, "high", 0, "N", NULL,
      "a group whose count exceeds N gets its own queue (weights: --heavy-weight) "
      "(default 100)" },
    { OPT_LOW, "low", 0, "N", NULL,
      "a moved group whose count falls below N returns to default (weights: to weight 1) "
      "(default 10)" },
    { OPT_PRIORITY, "priority", 0, "P", NULL,
      "threshold: the own queues' priority, lower is served first (default 100)" },
    { OPT_MAX_INFLIGHT, "max-inflight", 0, "K", NULL,
      "cap on the jobs reserved at once from an own queue, 0 = none (default 0)" },
    { OPT_HEAVY_WEIGHT, "heavy-weight", 0, "W", NULL,
      "weights: a heavy group's weight, 0.01 to 0.999 (default 0.25: one job per four a group "
      "at weight 1 takes)" },
    { OPT_MIN_DWELL, "min-dwell", 0, "DURATION", NULL,
      "least time a moved group stays moved before it returns (default 5s)" },
    { OPT_DRY_RUN, "dry-run", 'n', NULL, NULL,
      "decide and log, change nothing (takes no lease)" },
    { OPT_ONCE, "once", 0, NULL, NULL, "one round, then exit (status 1 if it could not run)" },
    { OPT_NAME, "name", 0, "NAME", "SLUICE_ROUTER_NAME",
      "the name this router holds the lease under (default router:HOST:PID)" },
    { OPT_LEASE_TTL, "lease-ttl", 0, "DURATION", NULL,
      "the lease's time to live; renewed every third of it (default 2s)" },
    { OPT_HEAVY_RATE, "heavy-rate", 0, "R", NULL,
      "any policy: limit how fast a group whose count exceeds --high starts jobs (50/s, 600/m, "
      "3600/h), unless it has a limit; removed below --low (default: no limit)" },
    { OPT_HEAVY_BURST, "heavy-burst", 0, "B", NULL,
      "with --heavy-rate: the burst, 1-1000000 (default one second's worth, at least 1)" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

static const struct opt *const tables[] = { opt_common, opt_token, router_opts, NULL };
static const char usage[] = "router [--policy threshold|fair|weights] [--tick 1s] [--high 100] "
                            "[--low 10] [--priority 100] [--max-inflight K] "
                            "[--heavy-weight 0.25] [--heavy-rate R [--heavy-burst B]] "
                            "[--min-dwell 5s] [--dry-run] [--once] "
                            "[options]";

/* Options a policy does not read: given anyway, they are logged as unused. */
static const struct {
    const char *policy;
    int id;
    const char *option, *reason;
} unused_opts[] = {
    { "fair", OPT_PRIORITY, "priority", "policy fair uses default's priority" },
    { "weights", OPT_PRIORITY, "priority", "policy weights creates no queue" },
    { "weights", OPT_MAX_INFLIGHT, "max-inflight", "policy weights creates no queue" },
    { "threshold", OPT_HEAVY_WEIGHT, "heavy-weight", "only policy weights changes weights" },
    { "fair", OPT_HEAVY_WEIGHT, "heavy-weight", "only policy weights changes weights" },
};

/* Parses --heavy-weight: a decimal number in POLICY_HEAVY_WEIGHT_MIN..MAX, rounded to the
 * broker's thousandths (so that the weight the broker shows is the one asked for). Returns 0,
 * or 2 (a usage error, printed). */
static int
heavy_weight(const char *arg, double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(d >= POLICY_HEAVY_WEIGHT_MIN - 5e-4 &&
                                                      d < POLICY_HEAVY_WEIGHT_MAX + 5e-4)) {
        fprintf(stderr, "router: --heavy-weight: '%s' is not a number from %.2f to %.3f\n", arg,
                POLICY_HEAVY_WEIGHT_MIN, POLICY_HEAVY_WEIGHT_MAX);
        return 2;
    }
    *out = (double)(uint64_t)(d * 1000 + 0.5) / 1000;
    return 0;
}

/* Parses --heavy-rate (a rate as ctl groups limit takes it, above 0) and --heavy-burst into
 * pcfg. Returns 0, or 2 (a usage error, printed). */
static int
heavy_rate(const struct opt_vals *v, struct policy_cfg *pcfg)
{
    const char *r = v->v[OPT_HEAVY_RATE], *b = v->v[OPT_HEAVY_BURST];
    if (r == NULL) {
        if (b != NULL) {
            fprintf(stderr, "router: --heavy-burst needs --heavy-rate\n");
            return 2;
        }
        return 0;
    }
    if (ratespec_parse(r, &pcfg->heavy_rate_milli) != 0 || pcfg->heavy_rate_milli == 0) {
        fprintf(stderr, "router: --heavy-rate: '%s' is not a rate from 0.001/s to 1000000/s "
                        "(as 50/s, 600/m, 3600/h)\n", r);
        return 2;
    }
    return b != NULL ? opt_u64("heavy-burst", b, 1, RATESPEC_BURST_MAX, &pcfg->heavy_burst) : 0;
}

/* "router:HOST:PID", with any byte a name may not hold replaced by '_'. */
static void
default_name(char *out, size_t cap)
{
    char host[64] = "localhost";

    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(out, cap, "router:%s:%d", host, (int)getpid());
    for (char *p = out; *p != '\0'; p++) {
        if (!wire_name_ok(p, 1)) {
            *p = '_';
        }
    }
}

/* Reads the options into cfg. Returns 0, or 2 (a usage error, printed). */
static int
configure(const struct opt_vals *v, struct router_cfg *cfg)
{
    static const struct {
        int id;
        const char *name;
        uint64_t min, max;
        size_t off; /* into struct policy_cfg */
    } nums[] = {
        { OPT_HIGH, "high", 1, UINT64_C(1) << 40, offsetof(struct policy_cfg, high) },
        { OPT_LOW, "low", 0, UINT64_C(1) << 40, offsetof(struct policy_cfg, low) },
        { OPT_PRIORITY, "priority", 0, ROUTER_PRIORITY_MAX, offsetof(struct policy_cfg, priority) },
        { OPT_MAX_INFLIGHT, "max-inflight", 0, ROUTER_INFLIGHT_MAX,
          offsetof(struct policy_cfg, max_inflight) },
    };
    int rv;

    cfg->pcfg = (struct policy_cfg){ .high = 100, .low = 10, .priority = 100,
                                     .max_inflight = 0, .min_dwell_ms = 5000,
                                     .heavy_weight = POLICY_HEAVY_WEIGHT_DEFAULT };
    cfg->tick_ms = 1000;
    cfg->ttl_ms = 2000;
    cfg->policy = v->v[OPT_POLICY] != NULL ? v->v[OPT_POLICY] : "threshold";
    cfg->dry_run = v->v[OPT_DRY_RUN] != NULL;
    cfg->once = v->v[OPT_ONCE] != NULL;
    cfg->token = NULL;
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        const char *arg = v->v[nums[i].id];
        if (arg != NULL && (rv = opt_u64(nums[i].name, arg, nums[i].min, nums[i].max,
                                         (uint64_t *)((char *)&cfg->pcfg + nums[i].off))) != 0) {
            return rv;
        }
    }
    if (v->v[OPT_HEAVY_WEIGHT] != NULL &&
        (rv = heavy_weight(v->v[OPT_HEAVY_WEIGHT], &cfg->pcfg.heavy_weight)) != 0) {
        return rv;
    }
    if ((rv = heavy_rate(v, &cfg->pcfg)) != 0) {
        return rv;
    }
    if (v->v[OPT_TICK] != NULL &&
        (rv = opt_ms("tick", v->v[OPT_TICK], 10, 3600000, &cfg->tick_ms)) != 0) {
        return rv;
    }
    if (v->v[OPT_MIN_DWELL] != NULL &&
        (rv = opt_ms("min-dwell", v->v[OPT_MIN_DWELL], 0, 86400000, &cfg->pcfg.min_dwell_ms)) != 0) {
        return rv;
    }
    if (v->v[OPT_LEASE_TTL] != NULL &&
        (rv = opt_ms("lease-ttl", v->v[OPT_LEASE_TTL], ROUTER_TTL_MIN_MS, ROUTER_TTL_MAX_MS,
                     &cfg->ttl_ms)) != 0) {
        return rv;
    }
    if (cfg->pcfg.low > cfg->pcfg.high) {
        fprintf(stderr, "router: --low %llu exceeds --high %llu\n",
                (unsigned long long)cfg->pcfg.low, (unsigned long long)cfg->pcfg.high);
        return 2;
    }
    bool known = false;
    for (size_t i = 0; policy_table[i] != NULL; i++) {
        known = known || strcmp(policy_table[i]->name, cfg->policy) == 0;
    }
    if (!known) {
        fprintf(stderr, "router: unknown policy '%s' (known: %s)\n", cfg->policy, policy_names());
        return 2;
    }
    if (v->v[OPT_NAME] != NULL && !wire_name_ok(v->v[OPT_NAME], strlen(v->v[OPT_NAME]))) {
        fprintf(stderr, "router: --name must be 1-128 bytes of A-Z a-z 0-9 . _ : -\n");
        return 2;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    char dir[RUNDIR_MAX], urlbuf[RUNDIR_MAX + 16], evbuf[RUNDIR_MAX + 16];
    char rwhy[RUNDIR_MAX * 2 + 256];
    char name[WIRE_NAME_MAX + 1];
    struct router_cfg cfg;
    struct router *r = NULL;
    struct opt_vals v;
    bool done;
    int argi, rv;

    log_prog = "router";
    if ((rv = opt_parse(argc, argv, tables, false, &v, &argi)) != 0 ||
        (rv = opt_common_apply(&v, usage, tables, &done)) != 0) {
        return rv;
    }
    if (done) {
        return 0;
    }
    if (argi < argc) {
        fprintf(stderr, "router: unexpected argument '%s'\n", argv[argi]);
        return 2;
    }
    if ((rv = configure(&v, &cfg)) != 0) {
        return rv;
    }
    if (rundir_default(dir, sizeof(dir)) != 0) {
        fprintf(stderr, "router: runtime directory path too long\n");
        return 2;
    }
    cfg.url = v.v[OPT_URL];
    if (cfg.url == NULL) {
        if ((rv = rundir_client_url(urlbuf, sizeof(urlbuf), dir, "broker.ipc", rwhy,
                                    sizeof(rwhy))) != 0) {
            fprintf(stderr, "router: %s\n", rwhy);
            return rv == SL_EBADREQ ? 2 : 1;
        }
        cfg.url = urlbuf;
    }
    cfg.events_url = v.v[OPT_EVENTS_URL];
    if (cfg.events_url == NULL) {
        if ((rv = rundir_client_url(evbuf, sizeof(evbuf), dir, "events.ipc", rwhy,
                                    sizeof(rwhy))) != 0) {
            fprintf(stderr, "router: %s\n", rwhy);
            return rv == SL_EBADREQ ? 2 : 1;
        }
        cfg.events_url = evbuf;
    }
    struct token token = { 0 };
    if (v.v[OPT_TOKEN_FILE] != NULL) {
        char why[512];
        if (token_load(&token, v.v[OPT_TOKEN_FILE], why, sizeof(why)) != 0) {
            fprintf(stderr, "router: --token-file: %s\n", why);
            return 1;
        }
        cfg.token = &token;
    }
    if (v.v[OPT_NAME] != NULL) {
        cfg.name = v.v[OPT_NAME];
    } else {
        default_name(name, sizeof(name));
        cfg.name = name;
    }
    for (size_t i = 0; i < sizeof(unused_opts) / sizeof(unused_opts[0]); i++) {
        if (strcmp(cfg.policy, unused_opts[i].policy) == 0 && v.v[unused_opts[i].id] != NULL) {
            LOG(LOG_WARN, "option.unused", "option=%s reason=\"%s\"",
                unused_opts[i].option, unused_opts[i].reason);
        }
    }
    static const int handled[] = { SIGTERM, SIGINT };
    if (sigpipe_install(handled, 2) != 0) {
        fprintf(stderr, "router: cannot set up signal handling\n");
        return 1;
    }
    if ((rv = router_new(&r, &cfg)) != 0) {
        fprintf(stderr, "router: cannot start: %s\n", sl_err_str(rv));
        return rv == SL_EBADREQ ? 2 : 1;
    }
    int status = router_run(r, sigpipe_fd());
    /* Giving the lease up takes a second at most (leader.h); then only sockets are left. */
    exit_deadline(2000, DEADLINE_EXIT_FORCED, NULL);
    router_free(r);
    /* No nng_fini(): a dial still in flight on nng's threads makes nng 1.5.2's nng_fini()
     * abort (see ctl/main.c). */
    return status;
}
