#!/usr/bin/env bash
# make run (scripts/run-main): broker, worker-pool and router in the foreground with prefixed
# logs. Run in a session of its own as a terminal would: jobs flow; a Ctrl-C (SIGINT to the
# script's process group) stops everything with status 0, leaving no socket file and no
# process; so does a SIGTERM to the script alone; and when one program dies by itself the
# others are stopped and the script exits 1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_proc.sh"

runner=$_root_dir/scripts/run-main

# marked TAG: pids of live processes carrying SL_RUNTEST=TAG:$SLUICE_DIR (all descendants of
# the script inherit it, whatever session or group they are in).
marked() {
    marked_by SL_RUNTEST "$1"
}
none_marked() {
    [ -z "$(marked "$1")" ]
}
sockets() {
    find "$SLUICE_DIR" -maxdepth 1 -type s -printf '%f\n' | sort | tr '\n' ' '
}
not_alive() {
    ! alive "$1"
}
stats_json() {
    run ctl stats --json --timeout 500
    [ "$RC" = 0 ]
}
workers_up() {
    stats_json && [ "$(json "$OUT" 'len(d["workers"])')" -ge "$1" ]
}
all_done() {
    stats_json && [ "$(json "$OUT" 'sum(q["done"] for q in d["queues"])')" = "$1" ]
}
router_pid() {
    run ctl routes --json
    ROUTER_PID=$(json "$OUT" '(d.get("leader") or {}).get("name", "").rpartition(":")[2]')
    [ -n "$ROUTER_PID" ]
}

# launch TAG: starts run-main (in its own session, as from a terminal) with quick jobs. A
# background job of this non-interactive shell would start with SIGINT ignored, which a
# script cannot trap: env resets it, as a terminal's foreground job has it.
launch() {
    spawn "run-$1" env --default-signal=INT "SL_RUNTEST=$1:$SLUICE_DIR" "$runner" "$SLUICE_BIN" -n 8 --handler sleep:10-50
    RUN_PID=$SPAWNED_PID
    ok "$1: the broker answers" wait_for 15 ctl --timeout 250 ping
    ok "$1: 8 workers are registered" wait_for 20 workers_up 8
    ok "$1: the router leads" wait_for 10 router_pid
}

# finished TAG STATUS: run-main exits with STATUS in time; nothing is left.
finished() {
    local tag=$1 want=$2 rc
    if wait_for 30 not_alive "$RUN_PID"; then
        pass "$tag: run-main exits"
        wait "$RUN_PID" 2>/dev/null
        rc=$?
    else
        fail "$tag: run-main exits" "$(tail -n 5 "$SLUICE_DIR/run-$tag.log")"
        stop_pgrp "$RUN_PID" 10
        rc=$?
    fi
    is "$rc" "$want" "$tag: exit status $want"
    is "$(sockets)" "" "$tag: no socket file is left"
    if wait_for 3 none_marked "$tag"; then
        pass "$tag: no process is left"
    else
        fail "$tag: no process is left" "$(for p in $(marked "$tag"); do
            printf '%s %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline")"; done)"
    fi
    retire_pgrp "$RUN_PID" "run-$tag"
}

# 1. Ctrl-C, with jobs flowing.
launch ctrlc
ok "ctrlc: push 40 jobs" ctl push bob hello -s 40
ok "ctrlc: all 40 are done" wait_for 30 all_done 40
kill -INT -- "-$RUN_PID"
finished ctrlc 0
log=$SLUICE_DIR/run-ctrlc.log
bad=$(grep -Ev '^(broker  |pool    |router  )\| |^run: ' "$log" | head -n 5)
is "$bad" "" "ctrlc: every log line is prefixed with its program (or is run's own)"
like "$(cat "$log")" $'broker  \\| ts=[^\n]* prog=broker event=start' "ctrlc: the broker's log is prefixed 'broker'"
like "$(cat "$log")" $'pool    \\| ts=[^\n]* prog=worker-pool event=start' "ctrlc: the pool's log is prefixed 'pool'"
like "$(cat "$log")" $'pool    \\| ts=[^\n]* prog=worker event=start' "ctrlc: the workers' logs are prefixed 'pool'"
like "$(cat "$log")" $'router  \\| ts=[^\n]* prog=router event=start' "ctrlc: the router's log is prefixed 'router'"
like "$(cat "$log")" $'pool    \\| ts=[^\n]* prog=worker-pool event=exit status=0' \
    "ctrlc: the pool drained and its last line was not lost"
like "$(cat "$log")" $'broker  \\| ts=[^\n]* prog=broker event=stop' "ctrlc: the broker stopped cleanly"
is "$(grep -c 'action=kill' "$log")" 0 "ctrlc: the pool got one stop signal (its workers drained, none killed)"

# 2. SIGTERM to the script alone.
launch term
kill -TERM "$RUN_PID"
finished term 0
like "$(cat "$SLUICE_DIR/run-term.log")" $'pool    \\| [^\n]*event=exit status=0' "term: the pool drained"

# 3. The router dies by itself: the others are stopped, and run-main says so.
launch early
kill -KILL "$ROUTER_PID"
finished early 1
like "$(cat "$SLUICE_DIR/run-early.log")" 'run: router exited \(status 137\); stopping the others' \
    "early: run-main names the program that exited"

done_testing
