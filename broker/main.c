/* broker: holds queues, groups and jobs, and answers requests on an nng REP socket. */
#include "broker.h"
#include "clock.h"
#include "cluster.h"
#include "db.h"
#include "dbsync.h"
#include "deadline.h"
#include "err.h"
#include "journal.h"
#include "log.h"
#include "opt.h"
#include "park.h"
#include "promhttp.h"
#include "rundir.h"
#include "listen.h"
#include "server.h"
#include "sigpipe.h"
#include "token.h"

#include <nng/nng.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_DIR = OPT_COMMON_END,
    OPT_NO_JOURNAL,
    OPT_MAX_JOBS,
    OPT_MAX_BYTES,
    OPT_MAX_PAYLOAD,
    OPT_MAX_MESSAGE,
    OPT_TTR,
    OPT_MAX_ATTEMPTS,
    OPT_RETRY_BASE,
    OPT_RETRY_MAX,
    OPT_RETRY_JITTER,
    OPT_THREADS,
    OPT_CONTEXTS,
    OPT_MIN_SHARE,
    OPT_MAX_CRASHES,
    OPT_EVENTS_URL,
    OPT_DATA_DIR,
    OPT_FSYNC,
    OPT_SEGMENT_SIZE,
    OPT_REPAIR,
    OPT_DB,
    OPT_METRICS_LISTEN,
    OPT_MAX_CONNS,
    OPT_HTTP_LISTEN,
    OPT_HTTP_INSECURE,
    OPT_LISTEN,
    OPT_SOCKET_MODE,
    OPT_SOCKET_GROUP,
    OPT_CLUSTER,
    OPT_SHARD,
    OPT_ADVERTISE,
    OPT_REPLICAS,
    OPT_LEASE,
    OPT_POOL_URL,
};

static const struct opt broker_opts[] = {
    { OPT_DIR, "dir", 'd', "DIR", "SLUICE_DIR", "runtime directory (default $XDG_RUNTIME_DIR/sluice or /tmp/sluice-$UID)" },
    { OPT_NO_JOURNAL, "no-journal", 0, NULL, NULL, "keep jobs in memory only: nothing survives a restart" },
    { OPT_DATA_DIR, "data-dir", 0, "DIR", "SLUICE_DATA_DIR", "where the journal lives (default $SLUICE_DIR/data)" },
    { OPT_FSYNC, "fsync", 0, "MODE", "SLUICE_FSYNC", "always (default): confirm after fdatasync; everysec; never" },
    { OPT_SEGMENT_SIZE, "segment-size", 0, "SIZE", NULL, "journal segment size (default 64M)" },
    { OPT_REPAIR, "repair", 0, NULL, NULL, "cut the journal at a corrupt record instead of refusing to start" },
    { OPT_MAX_JOBS, "max-jobs", 0, "N", "SLUICE_MAX_JOBS", "jobs held at most, any state (default 10000000)" },
    { OPT_MAX_BYTES, "max-bytes", 0, "SIZE", "SLUICE_MAX_BYTES", "payload bytes held at most (default 1G)" },
    { OPT_MAX_PAYLOAD, "max-payload", 0, "SIZE", "SLUICE_MAX_PAYLOAD", "largest payload (default 1M)" },
    { OPT_MAX_MESSAGE, "max-message", 0, "SIZE", "SLUICE_MAX_MESSAGE", "largest request (default 64M)" },
    { OPT_TTR, "ttr", 0, "DURATION", NULL, "default reservation timeout (default 60s)" },
    { OPT_MAX_ATTEMPTS, "max-attempts", 0, "N", NULL, "default attempts per job (default 3)" },
    { OPT_RETRY_BASE, "retry-base", 0, "DURATION", "SLUICE_RETRY_BASE",
      "a new queue's first retry after a failure waits this, doubling after (default 1s; 0: at once)" },
    { OPT_RETRY_MAX, "retry-max", 0, "DURATION", "SLUICE_RETRY_MAX",
      "a new queue's longest wait before a retry (default 10m)" },
    { OPT_RETRY_JITTER, "retry-jitter", 0, "PCT", "SLUICE_RETRY_JITTER",
      "a new queue's jitter: up to PCT percent off each wait (default 20)" },
    { OPT_THREADS, "threads", 0, "N", NULL, "threads reading and answering requests, 1-64 (default 1)" },
    { OPT_CONTEXTS, "contexts", 0, "N", NULL, "accepted for older command lines and ignored (see --threads)" },
    { OPT_MAX_CONNS, "max-connections", 0, "N", NULL, "connections open at once; more are closed as they come (default: the open-files limit less 64, kept for the journal)" },
    { OPT_MIN_SHARE, "min-share", 0, "PERCENT", NULL, "share of reservations each lower priority level still gets (default 5)" },
    { OPT_MAX_CRASHES, "max-crashes", 0, "N", NULL, "a job whose worker died under it this often is dead (default 3)" },
    { OPT_DB, "db", 0, "URL", "SLUICE_DB", "MySQL database to keep in step: mysql://USER:PASS@HOST[:PORT]/DB[?socket=PATH] (or DB_HOST, DB_NAME, DB_USER, DB_PASSWORD)" },
    { OPT_HTTP_LISTEN, "http-listen", 0, "ADDR:PORT", "SLUICE_HTTP_LISTEN", "serve the HTTP/JSON API (/v1/...) and Prometheus metrics (/metrics) at http://ADDR:PORT; ADDR an IPv4 address or [IPv6] (default: off)" },
    { OPT_HTTP_INSECURE, "http-insecure", 0, NULL, NULL, "allow --http-listen on an address other than loopback without --token-file" },
    { OPT_METRICS_LISTEN, "metrics-listen", 0, "ADDR:PORT", "SLUICE_METRICS_LISTEN", "the same as --http-listen (one listener serves both)" },
    { OPT_LISTEN, "listen", 0, "URL", "SLUICE_LISTEN", "serve requests at URL; repeat for several, e.g. --listen ipc --listen tcp://0.0.0.0:7450 (ipc: the default socket; default --url)" },
    { OPT_SOCKET_MODE, "socket-mode", 0, "MODE", "SLUICE_SOCKET_MODE", "the ipc:// sockets' mode: 0600 (default), or 0660 for --socket-group" },
    { OPT_SOCKET_GROUP, "socket-group", 0, "GROUP", "SLUICE_SOCKET_GROUP", "let GROUP (name or gid) reach the ipc:// sockets: the runtime directory becomes 0710 and GROUP's, the sockets 0660" },
    { OPT_EVENTS_URL, "events-url", 0, "URL", "SLUICE_EVENTS_URL", "where to publish events (default ipc://$SLUICE_DIR/events.ipc)" },
    { OPT_POOL_URL, "pool-url", 0, "URL", "SLUICE_POOL_URL", "worker-pool's control socket, shown by the dashboard (GET /v1/pool; default ipc://$SLUICE_DIR/pool.ipc)" },
    { OPT_CLUSTER, "cluster", 0, "URLS", "SLUICE_CLUSTER", "replicate the journal through the NATS JetStream servers nats://HOST:PORT,... and lead or stand by (default: a single broker)" },
    { OPT_SHARD, "shard", 0, "NAME", "SLUICE_SHARD", "with --cluster: the shard this broker serves (default main)" },
    { OPT_ADVERTISE, "advertise", 0, "URL", "SLUICE_ADVERTISE", "with --cluster: the URL clients reach this broker at (default: the first --listen that is not ipc://)" },
    { OPT_REPLICAS, "replicas", 0, "N", NULL, "with --cluster: the stream's replicas when it is created (default 3)" },
    { OPT_LEASE, "lease", 0, "DURATION", NULL, "with --cluster: the leader lease (default 2s): a standby takes over after it" },
    { 0, NULL, 0, NULL, NULL, NULL },
};

static const struct opt *const tables[] = { opt_common, opt_token, broker_opts, NULL };
static const char usage[] = "broker [options]";

/* The URL of --http-listen or its synonym --metrics-listen in out ("" when neither); both
 * with different values is an error. Returns 0, or 2 having said why. */
static int
http_listen(const struct opt_vals *v, char *out, size_t cap)
{
    const char *h = v->v[OPT_HTTP_LISTEN], *m = v->v[OPT_METRICS_LISTEN];
    const char *name = h != NULL ? "--http-listen" : "--metrics-listen";
    char why[256];
    if (h != NULL && m != NULL && strcmp(h, m) != 0) {
        fprintf(stderr, "broker: --http-listen %s and --metrics-listen %s differ: they name the "
                "one listener that serves both; give one\n", h, m);
        return 2;
    }
    if ((h != NULL || m != NULL) &&
        promhttp_url(h != NULL ? h : m, out, cap, why, sizeof(why)) != 0) {
        fprintf(stderr, "broker: %s: %s\n", name, why);
        return 2;
    }
    return 0;
}

/* Raises the soft limit of open files to the hard one (connections and the journal share
 * it) and returns the limit now in force. */
static uint64_t
open_files_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 1024;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = { rl.rlim_max, rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            rl = up;
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? SERVER_CONNS_MAX : (uint64_t)rl.rlim_cur;
}

/* Parses the options into cfg, url and dir. Returns 0, or 2 on a usage error. */
static int
configure(const struct opt_vals *v, struct broker_cfg *cfg, uint64_t *max_message,
          uint64_t *threads, struct journal_cfg *jc)
{
    uint64_t x;
    int rv = 0;

    jc->fsync = JOURNAL_ALWAYS;
    jc->segment_bytes = 64ULL << 20;
    jc->repair = v->v[OPT_REPAIR] != NULL;
    if (v->v[OPT_FSYNC]) {
        const char *m = v->v[OPT_FSYNC];
        if (strcmp(m, "always") == 0) {
            jc->fsync = JOURNAL_ALWAYS;
        } else if (strcmp(m, "everysec") == 0) {
            jc->fsync = JOURNAL_EVERYSEC;
        } else if (strcmp(m, "never") == 0) {
            jc->fsync = JOURNAL_NEVER;
        } else {
            fprintf(stderr, "broker: --fsync must be always, everysec or never (not '%s')\n", m);
            return 2;
        }
    }
    if (v->v[OPT_SEGMENT_SIZE] && (rv = opt_size("segment-size", v->v[OPT_SEGMENT_SIZE], 64 << 10, UINT64_C(1) << 34, &jc->segment_bytes))) {
        return rv;
    }
    if (v->v[OPT_NO_JOURNAL] && (v->v[OPT_FSYNC] || v->v[OPT_DATA_DIR] || v->v[OPT_REPAIR])) {
        fprintf(stderr, "broker: --no-journal goes with none of --fsync, --data-dir, --repair\n");
        return 2;
    }

    broker_cfg_default(cfg);
    *max_message = 64ULL << 20;
    *threads = 1;
    if (v->v[OPT_MAX_JOBS] && (rv = opt_u64("max-jobs", v->v[OPT_MAX_JOBS], 1, UINT64_C(1) << 40, &cfg->max_jobs))) {
        return rv;
    }
    if (v->v[OPT_MAX_BYTES] && (rv = opt_size("max-bytes", v->v[OPT_MAX_BYTES], 1, UINT64_C(1) << 50, &cfg->max_bytes))) {
        return rv;
    }
    if (v->v[OPT_MAX_MESSAGE] && (rv = opt_size("max-message", v->v[OPT_MAX_MESSAGE], 1024, UINT64_C(1) << 31, max_message))) {
        return rv;
    }
    if (v->v[OPT_MAX_PAYLOAD]) {
        if ((rv = opt_size("max-payload", v->v[OPT_MAX_PAYLOAD], 1, UINT64_C(1) << 30, &x))) {
            return rv;
        }
        cfg->max_payload = (uint32_t)x;
    }
    /* Room for a push's other fields and for a token of up to TOKEN_MAX bytes. */
    if ((uint64_t)cfg->max_payload + 1024 + TOKEN_MAX > *max_message) {
        fprintf(stderr, "broker: --max-payload must be at least 2K below --max-message (room "
                "for the request's other fields and a token)\n");
        return 2;
    }
    if (v->v[OPT_TTR]) {
        if ((rv = opt_ms("ttr", v->v[OPT_TTR], 1, BROKER_TTR_MAX_MS, &x))) {
            return rv;
        }
        cfg->ttr_ms = (uint32_t)x;
    }
    if (v->v[OPT_RETRY_BASE]) {
        if ((rv = opt_ms("retry-base", v->v[OPT_RETRY_BASE], 0, QUEUE_RETRY_BASE_MAX, &x))) {
            return rv;
        }
        cfg->retry.base_ms = (uint32_t)x;
    }
    if (v->v[OPT_RETRY_MAX]) {
        if ((rv = opt_ms("retry-max", v->v[OPT_RETRY_MAX], 1, QUEUE_RETRY_MAX_MAX, &x))) {
            return rv;
        }
        cfg->retry.max_ms = (uint32_t)x;
    }
    if (v->v[OPT_RETRY_JITTER]) {
        if ((rv = opt_u64("retry-jitter", v->v[OPT_RETRY_JITTER], 0, 100, &x))) {
            return rv;
        }
        cfg->retry.jitter = (uint8_t)x;
    }
    if (v->v[OPT_MAX_ATTEMPTS]) {
        if ((rv = opt_u64("max-attempts", v->v[OPT_MAX_ATTEMPTS], 1, UINT16_MAX, &x))) {
            return rv;
        }
        cfg->max_attempts = (uint16_t)x;
    }
    if (v->v[OPT_MIN_SHARE]) {
        if ((rv = opt_u64("min-share", v->v[OPT_MIN_SHARE], 0, 50, &x))) {
            return rv;
        }
        cfg->min_share_ppm = (uint32_t)(x * 10000);
    }
    if (v->v[OPT_MAX_CRASHES]) {
        if ((rv = opt_u64("max-crashes", v->v[OPT_MAX_CRASHES], 1, 255, &x))) {
            return rv;
        }
        cfg->max_crashes = (uint8_t)x;
    }
    if (v->v[OPT_MAX_CONNS]) {
        if ((rv = opt_u64("max-connections", v->v[OPT_MAX_CONNS], 1, SERVER_CONNS_MAX, &x))) {
            return rv;
        }
        cfg->max_conns = (uint32_t)x;
    }
    if (v->v[OPT_THREADS] && (rv = opt_u64("threads", v->v[OPT_THREADS], 1, SERVER_THREADS_MAX, threads))) {
        return rv;
    }
    if (v->v[OPT_CONTEXTS]) {
        if ((rv = opt_u64("contexts", v->v[OPT_CONTEXTS], 1, 4096, &x))) {
            return rv;
        }
        fprintf(stderr, "broker: --contexts is ignored: requests are served by --threads\n");
    }
    return 0;
}

/* The --cluster options into cc (cc->urls NULL: no cluster). 0, or 2 having said why. */
static int
cluster_configure(const struct opt_vals *v, const struct listen_cfg *lc,
                  struct cluster_cfg *cc)
{
    uint64_t x;
    int rv;
    *cc = (struct cluster_cfg){ v->v[OPT_CLUSTER], "main", v->v[OPT_ADVERTISE], 3, 2000 };
    if (cc->urls == NULL) {
        if (v->v[OPT_SHARD] || v->v[OPT_ADVERTISE] || v->v[OPT_REPLICAS] || v->v[OPT_LEASE]) {
            fprintf(stderr, "broker: --shard, --advertise, --replicas and --lease go with "
                    "--cluster\n");
            return 2;
        }
        return 0;
    }
    if (v->v[OPT_NO_JOURNAL]) {
        fprintf(stderr, "broker: --cluster replicates the journal: it cannot go with "
                "--no-journal\n");
        return 2;
    }
    if (v->v[OPT_DB] != NULL || getenv("SLUICE_DB") != NULL) {
        fprintf(stderr, "broker: --cluster does not keep a MySQL database in step yet: give "
                "one of --cluster and --db\n");
        return 2;
    }
    if (v->v[OPT_SHARD] != NULL) {
        cc->shard = v->v[OPT_SHARD];
    }
    if (v->v[OPT_REPLICAS] && (rv = opt_u64("replicas", v->v[OPT_REPLICAS], 1, 5, &x))) {
        return rv;
    }
    cc->replicas = v->v[OPT_REPLICAS] ? (unsigned)x : 3;
    if (v->v[OPT_LEASE] && (rv = opt_ms("lease", v->v[OPT_LEASE], 200, 60000, &cc->lease_ms))) {
        return rv;
    }
    for (unsigned i = 0; cc->advertise == NULL && i < lc->sl.n; i++) {
        if (strncmp(lc->sl.urls[i], "ipc://", 6) != 0) {
            cc->advertise = lc->sl.urls[i];
        }
    }
    if (cc->advertise == NULL || strlen(cc->advertise) >= 256) {
        fprintf(stderr, "broker: --cluster needs --advertise URL (or a --listen other than "
                "ipc://): the address the other brokers send clients to\n");
        return 2;
    }
    return 0;
}

/* The environment variable that marks a cluster broker started again by itself, as a
 * standby, after it stopped leading ("1"). */
#define RESTART_ENV "SLUICE_BROKER_RESTARTED"

/* Waits up to ms for a signal that stops the broker (SIGTERM, SIGINT; a SIGUSR2 is not one).
 * Returns that signal, or 0. */
static int
stop_signal_within(unsigned ms)
{
    int64_t until = clock_mono_ns() + (int64_t)ms * 1000000;
    for (;;) {
        int64_t left = (until - clock_mono_ns()) / 1000000;
        int sig = sigpipe_wait(left > 0 ? (int)left : 0);
        if (sig == SIGTERM || sig == SIGINT) {
            return sig;
        }
        if (sig == 0 && left <= 0) {
            return 0;
        }
    }
}

/* cluster_open, again every second while JetStream cannot serve the shard yet (NATS nodes
 * starting, electing), and while no NATS server can be reached when this broker started
 * itself again as a standby (a first start says at once that NATS cannot be reached).
 * Returns cluster_open's result, or 1 when a stop signal came first. */
static int
open_cluster(struct cluster **cl, struct broker *b, const struct cluster_cfg *cc,
             struct journal_cfg *jc, char *why, size_t cap)
{
    const char *re = getenv(RESTART_ENV);
    bool restarted = re != NULL && strcmp(re, "1") == 0;
    for (unsigned tries = 0;; tries++) {
        int rv = cluster_open(cl, b, cc, jc, why, cap);
        if (rv != SL_ETIMEDOUT && (rv != SL_EUNREACHABLE || !restarted)) {
            return rv;
        }
        if (tries % 10 == 0) {
            LOG(LOG_WARN, "cluster.waiting", "tries=%u reason=\"%s\" retry_ms=1000", tries + 1,
                why);
        }
        int sig = stop_signal_within(1000);
        if (sig != 0) {
            LOG(LOG_INFO, "stop", "signal=%d reason=\"before the cluster could be joined\"",
                sig);
            return 1;
        }
    }
}

/* Opens the journal: the local one, or with --cluster the shard's (leading or standing by).
 * 0; 1: stopped by a signal before it was open; else an error, said. */
static int
open_journal(struct broker *b, struct journal_cfg *jc, const struct cluster_cfg *cc,
             struct cluster **cl)
{
    char why[512];
    int rv = cc->urls != NULL ? open_cluster(cl, b, cc, jc, why, sizeof(why))
                              : journal_open(b, jc, why, sizeof(why));
    if (rv == 1) {
        return 1;
    }
    if (rv != 0) {
        fprintf(stderr, "broker: %s: %s\n", cc->urls != NULL ? "cluster" : "journal", why);
        LOG(LOG_ERROR, "journal.open_failed", "dir=\"%s\" reason=\"%s\"", jc->dir, why);
    }
    return rv;
}

int
main(int argc, char **argv)
{
    struct opt_vals v;
    struct broker_cfg cfg;
    struct broker *b = NULL;
    struct server *srv = NULL;
    char dir[RUNDIR_MAX], evbuf[RUNDIR_MAX + 16];
    uint64_t max_message, threads;
    static struct listen_cfg lc; /* its addresses are shown by stats for the broker's life */
    char metrics_url[96] = "";
    /* Static: nng may run the tail of an HTTP handler after the server is stopped (see
     * promhttp.h), so this outlives main's frame. */
    static struct promhttp metrics;
    bool done;
    int argi, rv;

    log_prog = "broker";
    if ((rv = opt_parse(argc, argv, tables, false, &v, &argi)) != 0 ||
        (rv = opt_common_apply(&v, usage, tables, &done)) != 0) {
        return rv;
    }
    if (done) {
        return 0;
    }
    if (argi < argc) {
        fprintf(stderr, "broker: unexpected argument '%s'\n", argv[argi]);
        return 2;
    }
    struct journal_cfg jc;
    if ((rv = configure(&v, &cfg, &max_message, &threads, &jc)) != 0) {
        return rv;
    }
    cfg.max_message = max_message;
    if (http_listen(&v, metrics_url, sizeof(metrics_url)) != 0) {
        return 2;
    }
    if (rundir_path(dir, sizeof(dir), v.v[OPT_DIR], getenv("XDG_RUNTIME_DIR")) != 0) {
        fprintf(stderr, "broker: runtime directory path too long\n");
        return 2;
    }
    {
        char why[512];
        if (v.v[OPT_LISTEN] != NULL && v.v[OPT_URL] != NULL && !v.from_env[OPT_URL]) {
            fprintf(stderr, "broker: give --listen (repeatable) or --url, not both\n");
            return 2;
        }
        if (listen_configure(&lc, v.all[OPT_LISTEN], v.n[OPT_LISTEN], v.v[OPT_URL],
                             v.v[OPT_SOCKET_MODE], v.v[OPT_SOCKET_GROUP], dir, why,
                             sizeof(why)) != 0) {
            fprintf(stderr, "broker: %s\n", why);
            return 2;
        }
        cfg.listen = lc.sl.urls;
        cfg.nlisten = lc.sl.n;
    }
    struct cluster_cfg cc;
    struct cluster *cl = NULL;
    if ((rv = cluster_configure(&v, &lc, &cc)) != 0) {
        return rv;
    }
    if (rundir_ensure(dir) != 0 || rundir_share(dir, lc.sl.ipc_gid) != 0) {
        return 1;
    }
    const char *events_url = v.v[OPT_EVENTS_URL];
    if (events_url == NULL) {
        if (rundir_ipc_url(evbuf, sizeof(evbuf), dir, "events.ipc") != 0) {
            fprintf(stderr, "broker: socket path %s/events.ipc is too long for a Unix socket\n",
                    dir);
            return 2;
        }
        events_url = evbuf;
    }
    /* Static: the HTTP thread reads it (cfg.pool_url) for the broker's life. */
    static char poolbuf[RUNDIR_MAX + 16];
    cfg.pool_url = v.v[OPT_POOL_URL];
    if (cfg.pool_url == NULL && rundir_ipc_url(poolbuf, sizeof(poolbuf), dir, "pool.ipc") == 0) {
        cfg.pool_url = poolbuf; /* else none: /v1/pool says so */
    }
    struct db_cfg dbc;
    char dbwhy[512];
    int has_db = db_cfg_resolve(&dbc, v.v[OPT_DB], dbwhy, sizeof(dbwhy));
    if (has_db < 0) {
        fprintf(stderr, "broker: --db: %s\n", dbwhy);
        return 2;
    }
    /* Read before anything is created: a token file that is not private stops the start. */
    struct token token = { 0 };
    if (v.v[OPT_TOKEN_FILE] != NULL) {
        char why[512];
        if (token_load(&token, v.v[OPT_TOKEN_FILE], why, sizeof(why)) != 0) {
            fprintf(stderr, "broker: --token-file: %s\n", why);
            return 1;
        }
    }
    if (metrics_url[0] != '\0' && token.n == 0 && v.v[OPT_HTTP_INSECURE] == NULL &&
        !promhttp_loopback(metrics_url)) {
        fprintf(stderr, "broker: --http-listen: %s is not a loopback address and the broker "
                "has no --token-file: anyone who reaches it could use the broker; give "
                "--token-file, or --http-insecure to allow it\n", metrics_url);
        return 2;
    }
    /* SIGUSR2: a cluster broker that stopped leading starts again as a standby. */
    static const int handled[] = { SIGTERM, SIGINT, SIGUSR2 };
    if (sigpipe_install(handled, 3) != 0) {
        fprintf(stderr, "broker: cannot set up signal handling\n");
        return 1;
    }
    if (broker_new(&b, &cfg) != 0) {
        fprintf(stderr, "broker: out of memory\n");
        return 1;
    }
    b->token = token;
    token_clear(&token);
    char datadir[RUNDIR_MAX + 8];
    if (!v.v[OPT_NO_JOURNAL]) {
        if (v.v[OPT_DATA_DIR] != NULL) {
            snprintf(datadir, sizeof(datadir), "%s", v.v[OPT_DATA_DIR]);
        } else {
            snprintf(datadir, sizeof(datadir), "%s/data", dir);
        }
        jc.dir = datadir;
        /* A write past a file size limit fails with EFBIG instead of killing the broker. */
        signal(SIGXFSZ, SIG_IGN);
        if ((rv = open_journal(b, &jc, &cc, &cl)) != 0) {
            broker_free(b);
            return rv == 1 ? 0 : 1;
        }
    }
    /* Whatever fails from here undoes what was set up before it, in reverse (fail_*). */
    if (events_open(&b->events, events_url) != 0) {
        goto fail_events;
    }
    /* Before serving: without a journal, the routes come from the database. */
    struct dbsync *db = NULL;
    if (has_db > 0 && dbsync_new(&db, b, &dbc, b->jr == NULL, dbwhy, sizeof(dbwhy)) != 0) {
        fprintf(stderr, "broker: database: %s\n", dbwhy);
        LOG(LOG_ERROR, "db.refused", "reason=\"%s\"", dbwhy);
        goto fail_db;
    }
    uint64_t nofile = open_files_limit();
    if (b->cfg.max_conns == 0) {
        b->cfg.max_conns = server_conns_for_fds(nofile);
    } else if (b->cfg.max_conns > server_conns_for_fds(nofile)) {
        LOG(LOG_WARN, "conns.limit", "max_connections=%u open_files=%llu reason=\"fewer than "
            "%u descriptors are left for the journal when every connection is open\"",
            b->cfg.max_conns, (unsigned long long)nofile, SERVER_FD_RESERVE);
    }
    pthread_t timer;
    if (park_timer_start(b, &timer) != 0) {
        fprintf(stderr, "broker: cannot start the timer thread\n");
        goto fail_timer;
    }
    if (server_start_at(&srv, b, &lc.sl, max_message, (unsigned)threads) != 0) {
        goto fail_server;
    }
    if (metrics_url[0] != '\0') {
        char why[256];
        if (promhttp_start(&metrics, b, metrics_url, events_url, why, sizeof(why)) != 0) {
            fprintf(stderr, "broker: %s: %s\n",
                    v.v[OPT_HTTP_LISTEN] != NULL ? "--http-listen" : "--metrics-listen", why);
            goto fail_metrics;
        }
    }
    if (db != NULL && dbsync_start(db) != 0) {
        fprintf(stderr, "broker: cannot start the database thread\n");
        goto fail_dbsync;
    }
    if (cl != NULL && cluster_start(cl) != 0) {
        fprintf(stderr, "broker: cannot start the cluster thread\n");
        goto fail_cluster;
    }
    if (b->jr == NULL && cl == NULL) {
        LOG(LOG_INFO, "journal.off", "reason=\"--no-journal: jobs are kept in memory only\"");
    }
    char urls[SERVER_LISTEN_MAX * (RUNDIR_MAX + 16)] = "";
    for (unsigned i = 0, n = 0; i < lc.sl.n && n < sizeof(urls); i++) {
        n += (unsigned)snprintf(urls + n, sizeof(urls) - n, "%s%s", i > 0 ? " " : "",
                                lc.sl.urls[i]);
    }
    LOG(LOG_INFO, "start", "url=\"%s\" events=\"%s\" dir=\"%s\" pid=%d version=%s max_jobs=%llu max_bytes=%llu auth=%s max_connections=%u socket_mode=%04o socket_group=%d",
        urls, events_url, dir, (int)getpid(), SLUICE_VERSION, (unsigned long long)cfg.max_jobs,
        (unsigned long long)cfg.max_bytes, b->token.n > 0 ? "token" : "none",
        b->cfg.max_conns, lc.sl.ipc_mode, lc.shared ? (int)lc.sl.ipc_gid : -1);
    for (unsigned i = 0; i < lc.sl.n; i++) {
        if (b->token.n == 0 && strncmp(lc.sl.urls[i], "ipc://", 6) != 0) {
            LOG(LOG_WARN, "auth.none", "url=\"%s\" reason=\"a listener other than ipc:// "
                "without --token-file: anyone who can reach it can use the broker\"",
                lc.sl.urls[i]);
        }
    }
    if (strncmp(events_url, "ipc://", 6) != 0) {
        LOG(LOG_WARN, "events.open", "url=\"%s\" reason=\"the event stream is not "
            "authenticated: whoever reaches it reads queue, group and router names\"", events_url);
    }

    int sig;
    while ((sig = sigpipe_wait(-1)) == SIGUSR2 && (cl == NULL || !cluster_restart_wanted(cl))) {
    }
    bool again = sig == SIGUSR2; /* the loop ends on SIGUSR2 only when a restart is wanted */
    unsigned again_ms = cl != NULL ? cluster_restart_delay_ms(cl) : 0;
    LOG(LOG_INFO, "stop", "signal=%d%s", sig, again ? " then=standby" : "");
    /* No request is handled once quiesced; then the journal is written and closed, and only
     * then are the sockets closed, under a deadline (common/deadline.h). */
    exit_deadline_step("quiesce");
    promhttp_quiesce(&metrics);
    server_quiesce(srv);
    dbsync_stop(db);
    park_timer_stop(b, timer);
    dbsync_free(db);
    exit_deadline_step("cluster_stop");
    cluster_stop(cl);
    exit_deadline_step("journal_close");
    journal_close(b);
    cluster_free(cl);
    const char *files[SERVER_LISTEN_MAX + 2] = { NULL };
    unsigned nfiles = 0;
    for (unsigned i = 0; i < lc.sl.n; i++) {
        if (strncmp(lc.sl.urls[i], "ipc://", 6) == 0) {
            files[nfiles++] = lc.sl.urls[i] + 6;
        }
    }
    if (strncmp(events_url, "ipc://", 6) == 0) {
        files[nfiles++] = events_url + 6;
    }
    if (again && setenv(RESTART_ENV, "1", 1) == 0) {
        exit_deadline_exec(argv); /* a close that hangs does not also cost the restart */
    }
    exit_deadline(2000, DEADLINE_EXIT_FORCED, files);
    exit_deadline_step("metrics_stop");
    promhttp_stop(&metrics);
    exit_deadline_step("server_stop");
    server_stop(srv);
    exit_deadline_step("events_close");
    events_close(b->events);
    b->events = NULL;
    exit_deadline_step("broker_free");
    broker_free(b);
    exit_deadline_step("exit");
    if (db != NULL) {
        mysql_library_end();
    }
    if (again) {
        /* Nothing of the deposed leader's state survives: the standby is a new process. A
         * stop asked for meanwhile is a stop (the new process would not hear of it). */
        exit_deadline(again_ms + 2000, DEADLINE_EXIT_FORCED, files);
        int stop_sig = stop_signal_within(again_ms);
        if (stop_sig != 0) {
            LOG(LOG_INFO, "stop", "signal=%d reason=\"before starting again as a standby\"",
                stop_sig);
            return 0;
        }
        if (setenv(RESTART_ENV, "1", 1) != 0) {
            fprintf(stderr, "broker: cannot start again as a standby: %s\n", strerror(errno));
            return 1;
        }
        execv("/proc/self/exe", argv);
        fprintf(stderr, "broker: cannot start again as a standby: %s\n", strerror(errno));
        return 1;
    }
    /* No nng_fini(): nng 1.5.2 aborts in it while a closed socket is still being torn down
     * on its threads (see ctl/main.c). */
    return 0;

fail_cluster:
    dbsync_stop(db);
fail_dbsync:
    promhttp_stop(&metrics);
fail_metrics:
    server_stop(srv);
fail_server:
    park_timer_stop(b, timer);
fail_timer:
    dbsync_free(db);
fail_db:
    events_close(b->events);
fail_events:
    cluster_stop(cl);
    journal_close(b);
    cluster_free(cl);
    broker_free(b);
    if (has_db > 0) {
        mysql_library_end();
    }
    return 1;
}
