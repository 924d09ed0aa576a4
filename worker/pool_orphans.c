#include "pool_orphans.h"

#include "err.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int
pool_orphans_adopt(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        LOG(LOG_WARN, "orphans.subreaper", "error=\"%s\" reason=\"processes left by a killed "
            "worker go to init\"", strerror(errno));
        return SL_EIO;
    }
    return 0;
}

/* The parent of process pid from /proc/PID/stat, its process group and its name; -1 when it
 * is gone. */
static long
parent_of(const char *pid, long *pgrp, char *comm, size_t cap)
{
    char path[300], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so the last ')'. */
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (open == NULL || close == NULL || close < open) {
        return -1;
    }
    snprintf(comm, cap, "%.*s", (int)(close - open - 1), open + 1);
    char state;
    long ppid;
    if (sscanf(close + 1, " %c %ld %ld", &state, &ppid, pgrp) != 3 || state == 'Z') {
        return -1; /* a zombie is dead already: the reap takes it */
    }
    return ppid;
}

/* Kills the children of this process that keep does not claim and, when pgid > 0, that are
 * in process group pgid. */
static unsigned
kill_children(long pgid, pool_orphans_keep_fn *keep, void *arg)
{
    unsigned killed = 0;
    long self = (long)getpid();
    DIR *d = opendir("/proc");
    if (d == NULL) {
        LOG(LOG_WARN, "orphans.scan", "error=\"/proc: %s\"", strerror(errno));
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char comm[64], q[160];
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 1 || pid == self) {
            continue;
        }
        long pgrp = 0;
        if (parent_of(e->d_name, &pgrp, comm, sizeof(comm)) != self || keep(arg, (int)pid) ||
            (pgid > 0 && pgrp != pgid)) {
            continue;
        }
        /* A handler's process leads a group of its own: the group takes what it started. */
        kill((pid_t)-pid, SIGKILL);
        kill((pid_t)pid, SIGKILL);
        log_quote(q, sizeof(q), comm, (unsigned)strlen(comm));
        LOG(LOG_WARN, "orphan.kill", "pid=%ld comm=%s reason=\"left by a worker that died\"",
            pid, q);
        killed++;
    }
    closedir(d);
    if (pgid > 0 && killed > 0) {
        kill((pid_t)-pgid, SIGKILL); /* the rest of the group: it lives, so its id is its own */
    }
    return killed;
}

unsigned
pool_orphans_kill(pool_orphans_keep_fn *keep, void *arg)
{
    return kill_children(0, keep, arg);
}

unsigned
pool_orphans_kill_group(int pgid, pool_orphans_keep_fn *keep, void *arg)
{
    /* 0, 1 and our own group are never a handler's (the page is the worker's to write). */
    if (pgid <= 1 || (pid_t)pgid == getpgrp()) {
        return 0;
    }
    return kill_children(pgid, keep, arg);
}
