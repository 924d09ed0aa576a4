/* ctl: everything a person or a script does to a sluice broker.
 *
 *   ctl [--url URL] [--timeout MS] COMMAND [SUBCOMMAND] [options] [args]
 *
 * The commands are rows of one table; the dispatcher does the shared work once: find the row,
 * parse the global and the command's options (accepted before or after the command), check the
 * number of arguments, print --help from the row, and turn the command's result into the exit
 * status: 0 done, 1 the broker refused (or failed; configure: a check failed), 2 usage error,
 * 3 the broker unreachable (migrate: the database unreachable, or its login refused). */
#include "ctl.h"
#include "deadline.h"

#include "log.h"

#include <nng/nng.h>
#include <stdio.h>
#include <string.h>

#define CTL_TIMEOUT_MS_MAX 3600000 /* 1 h: a bound on typos */
#define CTL_CLOSE_MS 1000          /* the most closing the connection may take */
#define OPT_END { 0, NULL, 0, NULL, NULL, NULL }
#define DEAD_IDS_MAX 1000000 /* job ids on one command line */

static const struct opt global_opts[] = {
    { CTL_OPT_TIMEOUT, "timeout", 0, "MS", NULL,
      "give up when the broker does not accept the connection, or answer a request, within MS "
      "(default 2000; units ms, s, m)" },
    OPT_END,
};

static const struct opt no_opts[] = { OPT_END };

static const struct opt json_opts[] = {
    { CTL_OPT_JSON, "json", 0, NULL, NULL, "print the broker's reply as one JSON document" },
    OPT_END,
};

static const struct opt stats_opts[] = {
    { CTL_OPT_JSON, "json", 0, NULL, NULL, "print the broker's reply as one JSON document" },
    { CTL_OPT_WATCH, "watch", 0, NULL, NULL,
      "a live view, full screen (q quits; b, r, w, n sort the groups); plain text snapshots "
      "when stdout is not a terminal" },
    { CTL_OPT_INTERVAL, "interval", 0, "D", NULL,
      "with --watch: refresh every D, 100ms-1h (default 1s; units ms, s, m)" },
    { CTL_OPT_PLAIN, "plain", 0, NULL, NULL,
      "with --watch: print a plain text snapshot every interval, even on a terminal" },
    OPT_END,
};

static const struct opt push_opts[] = {
    { CTL_OPT_COUNT, "count", 's', "COUNT", NULL, "push PAYLOAD COUNT times (default 1)" },
    { CTL_OPT_FILE, "file", 'f', "F", NULL,
      "push one job per line of F (- for stdin); the newline is not part of the payload" },
    { CTL_OPT_QUEUE, "queue", 'q', "Q", NULL,
      "push to queue Q (default: the group's route, else default)" },
    { CTL_OPT_BATCH, "batch", 'b', "N", NULL,
      "jobs per request, 1-1000000 (default 10000; a request also stops at 4 MiB of payloads)" },
    { CTL_OPT_TTR, "ttr", 0, "MS", NULL, "reservation timeout of each job, 1ms-24h (default 60s)" },
    { CTL_OPT_MAX_ATTEMPTS, "max-attempts", 0, "N", NULL,
      "attempts before a job is dead, 1-65535 (default 3)" },
    { CTL_OPT_DELAY, "delay", 0, "D", NULL,
      "the jobs become ready after D (e.g. 30s, 10m, 2h, 7d; up to 3650d)" },
    { CTL_OPT_AT, "at", 0, "TIME", NULL,
      "the jobs become ready at TIME, e.g. 2026-12-24T18:00:00Z or ...T19:00:00+01:00" },
    { CTL_OPT_UNIQUE, "unique", 0, "KEY", NULL,
      "push one job only if no job holds KEY; else print the one that does (exit 0)" },
    { CTL_OPT_UNIQUE_TTL, "unique-ttl", 0, "D", NULL,
      "the key is held at most D (e.g. 10m); with --unique-hold ttl, exactly D" },
    { CTL_OPT_UNIQUE_HOLD, "unique-hold", 0, "H", NULL,
      "active (default): while the job is ready, delayed or running; ttl: until --unique-ttl "
      "ends" },
    { CTL_OPT_CLIENT, "client", 0, "NAME", NULL,
      "idempotency client name (default: a new one per run); the same command run again with "
      "the same --client and --seq stores nothing twice" },
    { CTL_OPT_SEQ, "seq", 0, "N", NULL,
      "the first request's sequence number, 1-2^63 (default 1); the next ones N+1, ... "
      "(needs --client)" },
    OPT_END,
};

static const struct opt queue_opts[] = {
    { CTL_OPT_PRIORITY, "priority", 'p', "P", NULL,
      "0-1000000, lower is served first (default 10)" },
    { CTL_OPT_WEIGHT, "weight", 'w', "W", NULL,
      "1-1000, share among queues of equal priority (default 1)" },
    { CTL_OPT_MAX_INFLIGHT, "max-inflight", 'k', "K", NULL,
      "0-1000000 jobs reserved at once, 0 = no cap (default 0)" },
    { CTL_OPT_RETRY_BASE, "retry-base", 0, "D", NULL,
      "a failed job's first retry waits D, doubling for each retry after, 0-24h; 0: at once "
      "(default: the broker's --retry-base, 1s)" },
    { CTL_OPT_RETRY_MAX, "retry-max", 0, "D", NULL,
      "the longest wait before a retry, 1ms-7d (default: the broker's --retry-max, 10m)" },
    { CTL_OPT_RETRY_JITTER, "retry-jitter", 0, "PCT", NULL,
      "take up to PCT percent off each wait at random, 0-100 (default: the broker's, 20)" },
    { CTL_OPT_ORDER, "order", 0, "ORDER", NULL,
      "groups: serve the groups with ready jobs in turn, by their weights (the default); "
      "fifo: strict arrival order across groups" },
    OPT_END,
};

static const struct opt limit_opts[] = {
    { CTL_OPT_RATE, "rate", 0, "R", NULL,
      "jobs the group may start: 50/s, 600/m, 3600/h, 0.5/s (a bare number is per second); 0 "
      "removes the limit" },
    { CTL_OPT_BURST, "burst", 0, "B", NULL,
      "jobs it may start at once after a pause, 1-1000000 (default: one second's worth, at "
      "least 1)" },
    { CTL_OPT_NONE, "none", 0, NULL, NULL, "remove the group's limit" },
    OPT_END,
};

static const struct opt destroy_opts[] = {
    { CTL_OPT_FORCE, "force", 0, NULL, NULL,
      "destroy even if the queue holds jobs, moving them to default" },
    OPT_END,
};

static const struct opt purge_opts[] = {
    { CTL_OPT_QUEUE, "queue", 'q', "Q", NULL, "delete the ready jobs of queue Q" },
    { CTL_OPT_GROUP, "group", 'g', "G", NULL, "delete the ready jobs of group G" },
    OPT_END,
};

static const struct opt workers_opts[] = {
    { CTL_OPT_JSON, "json", 0, NULL, NULL, "print worker-pool's reply as one JSON document" },
    { CTL_OPT_POOL_URL, "pool-url", 0, "URL", "SLUICE_POOL_URL",
      "worker-pool's control socket (default ipc://$SLUICE_DIR/pool.ipc)" },
    OPT_END,
};

static const struct opt scale_opts[] = {
    { CTL_OPT_POOL_URL, "pool-url", 0, "URL", "SLUICE_POOL_URL",
      "worker-pool's control socket (default ipc://$SLUICE_DIR/pool.ipc)" },
    OPT_END,
};

static const struct opt dead_list_opts[] = {
    { CTL_OPT_QUEUE, "queue", 'q', "Q", NULL, "only the dead jobs of queue Q" },
    { CTL_OPT_GROUP, "group", 'g', "G", NULL, "only the dead jobs of group G" },
    { CTL_OPT_MAX, "max", 0, "N", NULL, "list at most N jobs, 1-10000 (default 100)" },
    { CTL_OPT_JSON, "json", 0, NULL, NULL, "print the broker's reply as one JSON document" },
    OPT_END,
};

static const struct opt peek_opts[] = {
    { CTL_OPT_QUEUE, "queue", 'q', "Q", NULL, "the jobs of queue Q" },
    { CTL_OPT_GROUP, "group", 'g', "G", NULL, "the jobs of group G" },
    { CTL_OPT_STATE, "state", 0, "S", NULL, "ready (default), reserved, delayed or dead" },
    { CTL_OPT_MAX, "max", 0, "N", NULL, "list at most N jobs, 1-1000 (default 20)" },
    { CTL_OPT_JSON, "json", 0, NULL, NULL, "print the broker's reply as one JSON document" },
    OPT_END,
};

static const struct opt group_list_opts[] = {
    { CTL_OPT_SORT, "sort", 0, "KEY", NULL,
      "sort by name (default), count, ready, reserved, delayed, dead, oldest_ready_ms, share, "
      "wait_p50_ms, wait_p99_ms, pushed, done or failed" },
    { CTL_OPT_ORDER, "order", 0, "asc|desc", NULL, "the order (default asc)" },
    { CTL_OPT_FILTER, "filter", 0, "TEXT", NULL, "only groups whose name holds TEXT (any case)" },
    { CTL_OPT_OFFSET, "offset", 0, "N", NULL, "skip the first N groups of the order" },
    { CTL_OPT_MAX, "max", 0, "N", NULL, "list at most N groups, 1-500 (default 50)" },
    { CTL_OPT_JSON, "json", 0, NULL, NULL, "print the broker's reply as one JSON document" },
    OPT_END,
};

static const struct opt dead_act_opts[] = {
    { CTL_OPT_QUEUE, "queue", 'q', "Q", NULL, "every dead job of queue Q (instead of IDs)" },
    { CTL_OPT_GROUP, "group", 'g', "G", NULL, "every dead job of group G (instead of IDs)" },
    OPT_END,
};

static const struct opt cron_add_opts[] = {
    { CTL_OPT_QUEUE, "queue", 'q', "Q", NULL,
      "push to queue Q (default: the group's route at each instant, else default)" },
    { CTL_OPT_MISSED, "missed", 0, "RULE", NULL,
      "instants missed while the broker was down: once (one job for them all, the default) "
      "or skip (none)" },
    OPT_END,
};

/* A password given in --db is visible to other users of the machine (ps): the help says to
 * prefer the environment. */
static const struct opt db_opts[] = {
    { CTL_OPT_DB, "db", 0, "URL", "SLUICE_DB",
      "the database, mysql://USER[:PASS]@HOST[:PORT]/DB[?socket=PATH] (%XX escapes); else "
      "$DB_HOST (host[:port] or socket path), $DB_PORT, $DB_NAME, $DB_USER, $DB_PASSWORD. Keep "
      "passwords off the command line (ps shows it)" },
    OPT_END,
};

struct cmd {
    const char *name;         /* the command word */
    const char *sub;          /* the subcommand word, or NULL; a command's first row is the one
                                 used when no subcommand is given */
    const char *usage;        /* what follows the words */
    const char *help;         /* one line */
    cmd_fn *fn;               /* NULL: help */
    const struct opt *opts;   /* the command's own options */
    int min_args, max_args;   /* positional arguments after the words */
};

static const struct cmd cmds[] = {
    { "push", NULL, "GROUP PAYLOAD [-s COUNT] | GROUP --file F", "push jobs", cmd_push,
      push_opts, 1, 2 },
    { "stats", NULL, "[--json] | --watch [--interval 1s] [--plain]",
      "show workers, queues and groups (--watch: live, until q or Ctrl-C)", cmd_stats,
      stats_opts, 0, 0 },
    { "metrics", NULL, "", "print the broker's state as Prometheus metrics (text format 0.0.4)",
      cmd_metrics, no_opts, 0, 0 },
    { "queues", "list", "[--json]", "list queues (also: ctl queues)", cmd_queue_list, json_opts,
      0, 0 },
    { "queues", "create",
      "NAME [--priority P] [--weight W] [--max-inflight K] [--retry-base D] [--retry-max D] "
      "[--retry-jitter PCT] [--order groups|fifo]",
      "create a queue", cmd_queue_create, queue_opts, 1, 1 },
    { "queues", "update",
      "NAME [--priority P] [--weight W] [--max-inflight K] [--retry-base D] [--retry-max D] "
      "[--retry-jitter PCT] [--order groups|fifo]",
      "change a queue's settings", cmd_queue_update, queue_opts, 1, 1 },
    { "queues", "destroy", "NAME [--force]", "destroy a queue; routes to it return to default",
      cmd_queue_destroy, destroy_opts, 1, 1 },
    { "queues", "pause", "NAME", "stop delivering a queue's jobs (pushes are still accepted)",
      cmd_queue_pause, no_opts, 1, 1 },
    { "queues", "resume", "NAME", "deliver a paused queue's jobs again", cmd_queue_resume,
      no_opts, 1, 1 },
    { "routes", "list", "[--json]", "list routes and the router that leads (also: ctl routes)", cmd_route_list, json_opts,
      0, 0 },
    { "routes", "set", "GROUP QUEUE", "send a group's jobs to a queue, moving its ready jobs",
      cmd_route_set, no_opts, 2, 2 },
    { "routes", "unset", "GROUP", "send a group's jobs to default again", cmd_route_unset,
      no_opts, 1, 1 },
    { "groups", "list", "[--sort KEY] [--order asc|desc] [--filter TEXT] [--offset N] [--max N] "
      "[--json]",
      "list one page of groups, sorted and filtered by the broker (also: ctl groups)",
      cmd_group_list, group_list_opts, 0, 0 },
    { "groups", "weight", "GROUP WEIGHT",
      "set a group's share of turns in its queue, 0.01-1000 (default 1; 4: four jobs to a "
      "weight-1 group's one)",
      cmd_group_weight, no_opts, 2, 2 },
    { "groups", "limit", "GROUP --rate R [--burst B] | GROUP --none",
      "limit how fast a group's jobs start, in every queue (its other jobs wait, no one else's)",
      cmd_group_limit, limit_opts, 1, 1 },
    { "flush", NULL, "", "reset every route to default and the statistics; keeps every job",
      cmd_flush, no_opts, 0, 0 },
    { "purge", NULL, "[--queue Q] [--group G]", "delete ready jobs of a queue, a group or both",
      cmd_purge, purge_opts, 0, 0 },
    { "cluster", "status", "[--json]",
      "a cluster broker's role, leader, epoch, lag and stream (--url one broker)",
      cmd_cluster_status, json_opts, 0, 0 },
    { "cluster", "step-down", "",
      "hand the leader lease to a standby on purpose (planned maintenance)",
      cmd_cluster_step_down, no_opts, 0, 0 },
    { "ping", NULL, "", "check the broker: pid, version, uptime, round trip", cmd_ping, no_opts,
      0, 0 },
    { "workers", NULL, "[--json] [--pool-url URL]", "show worker-pool's workers", cmd_workers,
      workers_opts, 0, 0 },
    { "scale", NULL, "N [--pool-url URL]", "make worker-pool keep N workers (0-1024)", cmd_scale,
      scale_opts, 1, 1 },
    { "dead", "list", "[--queue Q] [--group G] [--max N] [--json]",
      "list dead jobs (also: ctl dead)", cmd_dead_list, dead_list_opts, 0, 0 },
    { "dead", "retry", "[ID...] [--queue Q] [--group G]",
      "make dead jobs ready again, attempts and crashes reset", cmd_dead_retry, dead_act_opts, 0,
      DEAD_IDS_MAX },
    { "dead", "purge", "[ID...] [--queue Q] [--group G]", "delete dead jobs", cmd_dead_purge,
      dead_act_opts, 0, DEAD_IDS_MAX },
    { "job", NULL, "ID [--json]",
      "show a job: state, group, queue, attempts, times, last error, payload preview",
      cmd_job_info, json_opts, 1, 1 },
    { "job", "delete", "ID", "delete a ready or delayed job", cmd_job_delete, no_opts, 1, 1 },
    { "peek", NULL, "--queue Q | --group G [--state S] [--max N] [--json]",
      "list the first jobs of a queue or group in a state (default ready)", cmd_peek,
      peek_opts, 0, 0 },
    { "cron", "list", "[--json]", "list recurring jobs (also: ctl cron)", cmd_cron_list,
      json_opts, 0, 0 },
    { "cron", "add", "NAME 'SCHEDULE' GROUP PAYLOAD [--queue Q] [--missed once|skip]",
      "push PAYLOAD to GROUP at every instant of SCHEDULE ('*/5 * * * *', '@every 30s', "
      "'@daily'; UTC); an entry of that name is replaced",
      cmd_cron_add, cron_add_opts, 4, 4 },
    { "cron", "remove", "NAME", "remove a recurring job", cmd_cron_remove, no_opts, 1, 1 },
    { "cron", "pause", "NAME", "stop a recurring job firing (kept)", cmd_cron_pause, no_opts, 1,
      1 },
    { "cron", "resume", "NAME",
      "fire a paused recurring job again, from its next instant (those paused are skipped)",
      cmd_cron_resume, no_opts, 1, 1 },
    { "events", NULL, "[--json] [--count N] [--events-url URL]",
      "print the broker's events (route and queue changes, leases, floods) as they happen",
      cmd_events, events_opts, 0, 0 },
    { "migrate", NULL, "[--db URL]",
      "create or upgrade the MySQL tables to this sluice's schema (exit 3: no database login)",
      cmd_migrate, db_opts, 0, 0 },
    { "configure", NULL, "[--db URL]",
      "check the set-up: runtime directory, broker, database, schema, privileges (exit 1: a "
      "check failed)",
      cmd_configure, db_opts, 0, 0 },
    { "help", NULL, "[COMMAND [SUBCOMMAND]]", "print help for ctl or for a command", NULL,
      no_opts, 0, 2 },
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const char top_usage[] = "ctl [--url URL] [--timeout MS] COMMAND [options] [args]";

static void
words(char *out, size_t cap, const struct cmd *c)
{
    snprintf(out, cap, "%s%s%s", c->name, c->sub != NULL ? " " : "", c->sub != NULL ? c->sub : "");
}

static void
print_top_help(FILE *f)
{
    const struct opt *const tables[] = { global_opts, opt_common, opt_token, NULL };
    char w[64], left[160];
    int width = 0;

    opt_usage(f, top_usage, tables);
    for (size_t i = 0; i < NCMDS; i++) {
        words(w, sizeof(w), &cmds[i]);
        int n = snprintf(left, sizeof(left), "%s %s", w, cmds[i].usage);
        width = n > width ? n : width;
    }
    fprintf(f, "\ncommands:\n");
    for (size_t i = 0; i < NCMDS; i++) {
        words(w, sizeof(w), &cmds[i]);
        snprintf(left, sizeof(left), "%s %s", w, cmds[i].usage);
        fprintf(f, "  %-*s  %s\n", width, left, cmds[i].help);
    }
    fprintf(f, "\nctl COMMAND --help shows a command's options; they may come before or after "
               "its arguments.\n"
               "migrate and configure take --db URL, else $SLUICE_DB, else $DB_HOST, $DB_PORT, "
               "$DB_NAME, $DB_USER, $DB_PASSWORD (ctl migrate --help).\n"
               "exit status: 0 done, 1 the broker or the database refused (configure: a check "
               "failed), 2 usage error, 3 the broker cannot be reached or did not answer in time "
               "(migrate: the database cannot be reached or refused the login)\n");
}

static void
print_cmd_help(FILE *f, const struct cmd *c)
{
    const struct opt *const tables[] = { c->opts, global_opts, opt_common, opt_token, NULL };
    char w[64], usage[256];

    words(w, sizeof(w), c);
    snprintf(usage, sizeof(usage), "ctl %s %s", w, c->usage);
    fprintf(f, "ctl %s - %s\n\n", w, c->help);
    opt_usage(f, usage, tables);
}

/* Help for every row of a command with subcommands ("ctl queues --help"). */
static void
print_family_help(FILE *f, const char *name)
{
    const struct opt *const tables[] = { global_opts, opt_common, opt_token, NULL };
    char w[64], usage[128];

    fprintf(f, "ctl %s - subcommands (ctl %s SUBCOMMAND --help shows one's options):\n", name,
            name);
    for (size_t i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, name) == 0) {
            words(w, sizeof(w), &cmds[i]);
            fprintf(f, "  ctl %s %s\n      %s\n", w, cmds[i].usage, cmds[i].help);
        }
    }
    fputc('\n', f);
    snprintf(usage, sizeof(usage), "ctl %s SUBCOMMAND [options] [args]", name);
    opt_usage(f, usage, tables);
}

static bool
has_subs(const char *name)
{
    for (size_t i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, name) == 0 && cmds[i].sub != NULL) {
            return true;
        }
    }
    return false;
}

/* The row for argv[0] (and argv[1], a subcommand, when the command has them); *nwords is 1 or 2.
 * NULL, printed, when nothing matches. */
static const struct cmd *
find(int argc, char **argv, int *nwords)
{
    const struct cmd *first = NULL, *bare = NULL;

    for (size_t i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, argv[0]) != 0) {
            continue;
        }
        if (first == NULL) {
            first = &cmds[i];
        }
        if (cmds[i].sub == NULL) {
            bare = &cmds[i]; /* unless a subcommand matches: "job ID" beside "job delete ID" */
            continue;
        }
        if (argc > 1 && strcmp(cmds[i].sub, argv[1]) == 0) {
            *nwords = 2;
            return &cmds[i];
        }
    }
    if (first == NULL) {
        fprintf(stderr, "ctl: unknown command '%s' (ctl --help lists them)\n", argv[0]);
        return NULL;
    }
    if (bare != NULL) {
        *nwords = 1;
        return bare;
    }
    /* No subcommand given (nothing, or an option, follows): the command's first row. */
    if (argc < 2 || argv[1][0] == '-') {
        *nwords = 1;
        return first;
    }
    fprintf(stderr, "ctl %s: unknown subcommand '%s' (ctl %s --help lists them)\n", argv[0],
            argv[1], argv[0]);
    return NULL;
}

/* ctl help [COMMAND [SUBCOMMAND]] */
static int
help(int argc, char **argv)
{
    const struct cmd *c;
    int nwords;

    if (argc == 0) {
        print_top_help(stdout);
        return 0;
    }
    if ((c = find(argc, argv, &nwords)) == NULL) {
        return CTL_EXIT_USAGE;
    }
    if (nwords == 1 && has_subs(c->name)) {
        print_family_help(stdout, c->name);
    } else {
        print_cmd_help(stdout, c);
    }
    return 0;
}

/* Options given after the command win over those before it; a flag beats the environment. */
static void
merge(struct opt_vals *cmd, const struct opt_vals *global)
{
    for (int id = 0; id < OPT_MAX; id++) {
        if (global->v[id] == NULL) {
            continue;
        }
        if (cmd->v[id] == NULL || (cmd->from_env[id] && !global->from_env[id])) {
            cmd->v[id] = global->v[id];
            cmd->from_env[id] = global->from_env[id];
        }
    }
}

static int
run(int argc, char **argv)
{
    const struct opt *const gtables[] = { global_opts, opt_common, opt_token, NULL };
    struct opt_vals g, v;
    int argi, rv, nwords;
    bool done;

    /* Options before the command. */
    if ((rv = opt_parse(argc, argv, gtables, true, &g, &argi)) != 0) {
        return CTL_EXIT_USAGE;
    }
    if (argi >= argc) {
        if (g.v[OPT_HELP] != NULL) {
            print_top_help(stdout);
            return 0;
        }
        if (g.v[OPT_VERSION] != NULL) {
            return opt_common_apply(&g, top_usage, gtables, &done);
        }
        fprintf(stderr, "ctl: missing COMMAND\nusage: %s (ctl --help lists the commands)\n",
                top_usage);
        return CTL_EXIT_USAGE;
    }
    const struct cmd *c = find(argc - argi, argv + argi, &nwords);
    if (c == NULL) {
        return CTL_EXIT_USAGE;
    }

    /* The command's options (and the global ones again), mixed with its arguments. The last
     * word stands in for argv[0]. */
    const struct opt *const ctables[] = { c->opts, global_opts, opt_common, opt_token, NULL };
    int cargc = argc - argi - nwords + 1;
    char **cargv = argv + argi + nwords - 1;
    int carg;
    if ((rv = opt_parse(cargc, cargv, ctables, false, &v, &carg)) != 0) {
        return CTL_EXIT_USAGE;
    }
    merge(&v, &g);
    if (v.v[OPT_HELP] != NULL) {
        if (nwords == 1 && has_subs(c->name)) {
            print_family_help(stdout, c->name);
        } else {
            print_cmd_help(stdout, c);
        }
        return 0;
    }
    if ((rv = opt_common_apply(&v, c->usage, ctables, &done)) != 0 || done) {
        return rv;
    }
    int nargs = cargc - carg;
    char **args = cargv + carg;
    if (c->fn == NULL) {
        return help(nargs, args);
    }

    char cmdwords[64];
    words(cmdwords, sizeof(cmdwords), c);
    uint64_t timeout_ms = CTL_TIMEOUT_MS_DEFAULT;
    if (v.v[CTL_OPT_TIMEOUT] != NULL &&
        opt_ms("timeout", v.v[CTL_OPT_TIMEOUT], 1, CTL_TIMEOUT_MS_MAX, &timeout_ms) != 0) {
        return CTL_EXIT_USAGE;
    }
    struct ctl ctl;
    if ((rv = ctl_init(&ctl, cmdwords, c->usage, v.v[OPT_URL], timeout_ms)) != 0) {
        return rv;
    }
    if (v.v[OPT_TOKEN_FILE] != NULL) {
        char why[512];
        if (token_load(&ctl.token, v.v[OPT_TOKEN_FILE], why, sizeof(why)) != 0) {
            fprintf(stderr, "ctl: --token-file: %s\n", why);
            ctl_fini(&ctl);
            return CTL_EXIT_USAGE;
        }
    }
    if (nargs < c->min_args || nargs > c->max_args) {
        rv = ctl_usage(&ctl, nargs < c->min_args ? "missing arguments" : "too many arguments");
    } else {
        rv = c->fn(&ctl, nargs, args, &v);
    }
    /* nng 1.5.2's nng_close() can hang on a connection that still resends a request (one the
     * broker dropped as too large, say): whatever happens there, ctl ends within a second.
     * With the command's status: the command is done and its result printed, so a forced
     * close changes nothing of what the status says (event=stop.forced on stderr shows it). */
    fflush(stdout);
    exit_deadline(CTL_CLOSE_MS, rv, NULL);
    ctl_fini(&ctl);
    return rv;
}

int
main(int argc, char **argv)
{
    log_prog = "ctl";
    log_level = LOG_WARN; /* a command-line tool speaks through its output, not its log */
    int rv = run(argc, argv);
    if (fflush(stdout) != 0 && rv == 0) {
        fprintf(stderr, "ctl: cannot write to stdout\n");
        rv = CTL_EXIT_FAILED;
    }
    /* No nng_fini(): a connection given up in the middle of its handshake is still being
     * torn down on nng's threads, and nng 1.5.2's nng_fini() aborts the process under them.
     * The process ends here anyway. */
    return rv;
}
