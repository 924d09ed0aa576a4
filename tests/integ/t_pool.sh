#!/usr/bin/env bash
# worker-pool with real workers and a real broker: start, ctl workers, scale 4 -> 2 -> 4 with
# jobs flowing, a killed worker restarted, --max-jobs recycling, a rolling restart (SIGHUP),
# a worker that exits 2 left alone, and SIGTERM draining with nothing left reserved, no process
# left and pool.ipc removed.
. "$(dirname "$0")/lib.sh"

start_broker

# pool_json: the pool's status document into POOL.
pool_json() {
    POOL=$(ctl workers --json --timeout 500) || return 1
}

# serving N: the pool shows exactly N workers, all idle or busy.
serving() {
    pool_json || return 1
    [ "$(json "$POOL" 'len([w for w in d["workers"] if w["state"] in ("idle", "busy")])')" = "$1" ] &&
        [ "$(json "$POOL" 'len(d["workers"])')" = "$1" ]
}

done_count() {
    run ctl stats --json
    json "$OUT" 'sum(q["done"] for q in d["queues"])'
}

done_is() {
    [ "$(done_count)" = "$1" ]
}

pids() {
    pool_json && json "$POOL" '" ".join(str(w["pid"]) for w in d["workers"])'
}

# noop jobs need no time to drain; a worker that fails to exit is killed 1 + 2 s after SIGTERM.
spawn pool "$SLUICE_BIN/worker-pool" -n 4 --handler noop --max-jobs 300 --drain-timeout 1s
POOL_PID=$SPAWNED_PID
ok "four workers serve" wait_for 10 serving 4
is "$(json "$POOL" 'd["n"]')" 4 "pool.status says the target is 4"
is "$(json "$POOL" 'sorted(d["workers"][0].keys())')" \
    '["current", "current_ms", "failed", "id", "jobs", "pid", "restarts", "rss_bytes", "slot", "state", "uptime_s"]' \
    "each worker has the documented fields"
like "$(json "$POOL" 'd["workers"][0]["id"]')" "^[A-Za-z0-9._-]+:$POOL_PID:0\$" \
    "workers are named HOST:POOLPID:SLOT"
run ctl workers
like "$OUT" "SLOT +WORKER +PID +STATE" "ctl workers prints a table"

ok "push 2000 jobs" ctl push bob hello -s 2000
ok "every job is done" wait_for 20 done_is 2000
pool_json
cmp_num "$(json "$POOL" 'sum(w["restarts"] for w in d["workers"])')" -ge 4 \
    "--max-jobs 300 recycled workers (2000 jobs over 4 workers)"

ok "ctl scale 2" ctl scale 2
ok "two workers serve" wait_for 10 serving 2
ok "push 1000 more with two workers" ctl push bob hello -s 1000
ok "scale back up to 4 while they run" ctl scale 4
ok "four workers serve again" wait_for 10 serving 4
ok "all 3000 jobs are done" wait_for 20 done_is 3000

# A worker killed outright is restarted (after a backoff) under the same slot.
pool_json
victim=$(json "$POOL" 'd["workers"][1]["pid"]')
slot=$(json "$POOL" 'd["workers"][1]["slot"]')
kill -KILL "$victim"
restarted() {
    pool_json && [ "$(json "$POOL" "[w['pid'] for w in d['workers'] if w['slot'] == $slot][0]")" != "$victim" ] &&
        serving 4
}
ok "a killed worker is restarted" wait_for 10 restarted

# SIGHUP replaces every worker, one at a time.
before=$(pids)
kill -HUP "$POOL_PID"
replaced() {
    local now p
    now=$(pids) || return 1
    serving 4 || return 1
    for p in $before; do
        [[ " $now " == *" $p "* ]] && return 1
    done
    return 0
}
ok "SIGHUP replaces every worker" wait_for 15 replaced
ok "the pool still has 4 workers" serving 4

ok_status 2 "ctl scale out of range is a usage error" ctl scale 1025
ok_status 3 "ctl workers with nobody at --pool-url exits 3" \
    ctl workers --pool-url "ipc://$SLUICE_DIR/nobody.ipc" --timeout 200

pool_gone() {
    ! alive "$POOL_PID"
}

# SIGTERM to the pool alone (not its process group): it stops its workers and exits 0.
kill -TERM "$POOL_PID"
ok "SIGTERM stops the pool" wait_for 10 pool_gone
wait "$POOL_PID"
is "$?" 0 "the pool exits 0"
ok "no process of the pool's group is left" wait_for 5 _pgrp_dead "$POOL_PID"
ok "pool.ipc is removed" test ! -e "$SLUICE_DIR/pool.ipc"
run ctl stats --json
is "$(json "$OUT" 'sum(q["reserved"] for q in d["queues"])')" 0 "no job is left reserved"

# SIGTERM with sleeping jobs in flight: they are finished or handed back, never left reserved.
spawn pool2 "$SLUICE_BIN/worker-pool" -n 3 --handler sleep:200-400 --prefetch 4 \
    --drain-timeout 5s
POOL_PID=$SPAWNED_PID
ok "three sleeping workers serve" wait_for 10 serving 3
ok "push 200 slow jobs" ctl push slow x -s 200
busy() {
    pool_json && [ "$(json "$POOL" 'len([w for w in d["workers"] if w["state"] == "busy"])')" -ge 1 ]
}
ok "some worker is busy" wait_for 5 busy
kill -TERM "$POOL_PID"
ok "the pool drains and exits" wait_for 10 pool_gone
wait "$POOL_PID"
is "$?" 0 "the pool exits 0 after SIGTERM"
ok "no worker is left" wait_for 5 _pgrp_dead "$POOL_PID"
run ctl stats --json
is "$(json "$OUT" 'sum(q["reserved"] for q in d["queues"])')" 0 \
    "after the drain no job is reserved"
is "$(json "$OUT" 'len(d["workers"])')" 0 "the broker lists no worker"
is "$(json "$OUT" 'sum(q["dead"] for q in d["queues"])')" 0 "nothing died"
is "$(json "$OUT" 'sum(q["done"] + q["ready"] for q in d["queues"])')" 3200 \
    "every job is done or ready again"

# A worker that exits 2 (usage) is not restarted; the pool keeps running and says so.
spawn pool3 "$SLUICE_BIN/worker-pool" -n 2 --handler no-such-handler
POOL_PID=$SPAWNED_PID
all_failed() {
    pool_json && [ "$(json "$POOL" '[w["state"] for w in d["workers"]]')" = '["failed", "failed"]' ]
}
ok "workers that exit 2 are left failed" wait_for 10 all_failed
ok "the pool is still up" alive "$POOL_PID"
like "$(cat "$SLUICE_DIR/pool3.log")" "event=worker.failed" "the pool logs the failure"

done_testing
