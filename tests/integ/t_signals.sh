#!/usr/bin/env bash
# SIGTERM and SIGINT to every long-running program: broker, router, `ctl events`, worker (exec:
# and pipe: handlers busy with a job, and a job that left a process behind), worker-pool (three
# workers, both handlers; a second signal that kills draining workers), and a worker killed
# at --job-timeout. Each must catch the signal itself, exit 0 within a deadline, leave
# no socket file of its own in SLUICE_DIR and no process behind: not its workers, not a
# handler's process, not what a handler's command started.
#
# Each program starts with a marker variable (SL_SIGTEST=<case>:$SLUICE_DIR) that every descendant inherits
# (handlers' processes get the worker's environment); after the exit no process may carry it.
# For SIGINT the program starts through `env --default-signal=INT`: a background job of a
# non-interactive shell starts with SIGINT ignored, and the test must see the program's own
# handler at work, as a Ctrl-C from a terminal would.
# It runs for a minute or more under the sanitizers, so it starts before the short ones:
# tests/run: long
. "$(dirname "$0")/lib.sh"

DRAIN=500ms      # a busy job is stopped this long after the signal
EXIT_S=20        # deadline for an exit (the pool: drain, then 2 s before SIGKILL; a slow machine)
UP_S=30          # deadline for a program to start, take its job, run it: under the
                 # sanitizers, three scripts at a time, one took 14 s

# marked CASE: pids of live processes that carry SL_SIGTEST=CASE.
marked() {
    marked_by SL_SIGTEST "$1"
}

# marked_comm CASE COMM: how many marked processes are named COMM.
marked_comm() {
    local n=0 p c
    for p in $(marked "$1"); do
        c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
        [ "$c" = "$2" ] && n=$((n + 1))
    done
    echo "$n"
}

at_least_comm() {
    [ "$(marked_comm "$1" "$2")" -ge "$3" ]
}

none_marked() {
    [ -z "$(marked "$1")" ]
}

# sockets: the socket files in SLUICE_DIR, sorted, on one line.
sockets() {
    find "$SLUICE_DIR" -maxdepth 1 -type s -printf '%f\n' | sort | tr '\n' ' '
}

# catches PID SIG: the process has a handler installed for SIG (its SigCgt mask).
catches() {
    local mask num
    mask=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$mask" ] || return 1
    num=$(kill -l "$2")
    (((16#$mask >> (num - 1)) & 1))
}

not_alive() {
    ! alive "$1"
}

# launch CASE SIG NAME CMD...: starts CMD marked with CASE; for INT with SIGINT at its default.
launch() {
    local case=$1 sig=$2 name=$3
    shift 3
    local -a pre=(env "SL_SIGTEST=$case:$SLUICE_DIR")
    [ "$sig" = INT ] && pre=(env --default-signal=INT "SL_SIGTEST=$case:$SLUICE_DIR")
    spawn "$name" "${pre[@]}" "$@"
    LAUNCHED=$SPAWNED_PID
}

# stop_and_check CASE SIG PID WANT_SOCKETS: sends SIG, and checks: exit 0 within EXIT_S, the
# socket files left are exactly WANT_SOCKETS, no marked process is left.
stop_and_check() {
    local case=$1 sig=$2 pid=$3 want=$4 rc
    ok "$case: catches SIG$sig" catches "$pid" "$sig"
    kill "-$sig" "$pid"
    if wait_for "$EXIT_S" not_alive "$pid"; then
        pass "$case: exits within ${EXIT_S} s of SIG$sig"
    else
        fail "$case: exits within ${EXIT_S} s of SIG$sig" "$(tail -n 5 "$SLUICE_DIR/$case.log")"
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    is "$rc" 0 "$case: exit status 0"
    is "$(sockets)" "$want" "$case: socket files left: '${want% }'"
    if wait_for 3 none_marked "$case"; then
        pass "$case: no process left"
    else
        fail "$case: no process left" "$(for p in $(marked "$case"); do
            printf '%s %s ppid=%s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline")" \
                "$(awk '/^PPid:/ { print $2 }' "/proc/$p/status")"; done)"
    fi
    retire_pgrp "$pid" "$case"
}

. "$(dirname "$0")/lib_proc.sh"

# reserved QUEUE N / acked QUEUE N: the queue's reserved / done count is N.
reserved() {
    run ctl stats --json
    [ "$(json "$OUT" "[x['reserved'] for x in d['queues'] if x['name'] == '$1'][0]")" = "$2" ]
}
acked() {
    run ctl stats --json
    [ "$(json "$OUT" "[x['done'] for x in d['queues'] if x['name'] == '$1'][0]")" = "$2" ]
}

for sig in TERM INT; do
    s=$(echo "$sig" | tr '[:upper:]' '[:lower:]')
    # The broker, with its journal (closed on the way out), serves every other case.
    launch "broker-$s" "$sig" "broker-$s" "$SLUICE_BIN/broker"
    BROKER_PID=$LAUNCHED
    BROKER_URL=""
    _broker_answered=0
    wait_for "$UP_S" _broker_up
    [ "$_broker_answered" = 1 ] || bail_out "broker did not answer ping within 10 s"
    is "$(sockets)" "broker.ipc events.ipc " "broker-$s: broker.ipc and events.ipc exist"
    live="broker.ipc events.ipc "

    # router: leads (holds the lease) when the signal comes.
    launch "router-$s" "$sig" "router-$s" "$SLUICE_BIN/router" --tick 100ms
    leads() {
        run ctl routes --json
        [ "$(json "$OUT" '(d.get("leader") or {}).get("name", "")')" = "router:$(hostname):$1" ]
    }
    ok "router-$s: leads" wait_for "$UP_S" leads "$LAUNCHED"
    stop_and_check "router-$s" "$sig" "$LAUNCHED" "$live"
    run ctl routes --json
    is "$(json "$OUT" 'd.get("leader")')" null "router-$s: the lease was released"

    # ctl events: subscribed, waiting for events.
    launch "events-$s" "$sig" "events-$s" "$SLUICE_BIN/ctl" events
    # It installs its handlers once subscribed. (Until it runs ctl, the process is a fork of
    # this shell, whose TERM trap would show too.)
    is_ctl_catching() {
        [ "$(readlink "/proc/$1/exe")" = "$(readlink -f "$SLUICE_BIN/ctl")" ] && catches "$1" "$2"
    }
    ok "events-$s: subscribed" wait_for "$UP_S" is_ctl_catching "$LAUNCHED" "$sig"
    stop_and_check "events-$s" "$sig" "$LAUNCHED" "$live"

    # worker, exec: a job whose command left a process behind (acked at once), then a job
    # busy in a command that started one more.
    q=wexec-$s
    ok "$q: queue" ctl queues create "$q"
    ok "$q: push" ctl push g bg --queue "$q"
    launch "$q" "$sig" "$q" "$SLUICE_BIN/worker" --queues "$q" --drain-timeout "$DRAIN" \
        --handler 'exec:read -r p; if [ "$p" = bg ]; then sleep 60 >/dev/null 2>&1 & else sleep 60 & sleep 61; fi'
    ok "$q: the first job is done" wait_for "$UP_S" acked "$q" 1
    ok "$q: push a long job" ctl push g long --queue "$q"
    ok "$q: the long job is reserved" wait_for "$UP_S" reserved "$q" 1
    ok "$q: the long job runs (two sleeps)" wait_for "$UP_S" at_least_comm "$q" sleep 2
    stop_and_check "$q" "$sig" "$LAUNCHED" "$live"

    # worker, pipe: the handler process (and one it started) busy with a job it never answers.
    q=wpipe-$s
    ok "$q: queue" ctl queues create "$q"
    launch "$q" "$sig" "$q" "$SLUICE_BIN/worker" --queues "$q" --drain-timeout "$DRAIN" \
        --handler 'pipe:sleep 60 >/dev/null 2>&1 & cat >/dev/null; exit 0'
    ok "$q: push" ctl push g x --queue "$q"
    ok "$q: the job is reserved" wait_for "$UP_S" reserved "$q" 1
    ok "$q: the handler runs" wait_for "$UP_S" at_least_comm "$q" cat 1
    stop_and_check "$q" "$sig" "$LAUNCHED" "$live"
    ok "$q: the job was handed back" wait_for "$UP_S" reserved "$q" 0

    # worker-pool, three workers each busy in an exec: job; then three pipe: workers, two busy
    # and one idle (whose handler ends at EOF but leaves its sleep behind).
    for h in exec pipe; do
        q=pool$h-$s
        ok "$q: queue" ctl queues create "$q"
        if [ "$h" = exec ]; then
            ok "$q: push 3" ctl push g x -s 3 --queue "$q"
            handler='exec:sleep 60 & sleep 61'
            busy=3
        else
            ok "$q: push 2" ctl push g x -s 2 --queue "$q"
            handler='pipe:sleep 60 >/dev/null 2>&1 & cat >/dev/null; exit 0'
            busy=2
        fi
        launch "$q" "$sig" "$q" "$SLUICE_BIN/worker-pool" -n 3 --queues "$q" \
            --drain-timeout "$DRAIN" --handler "$handler"
        ok "$q: pool.ipc exists" wait_for "$UP_S" test -S "$SLUICE_DIR/pool.ipc"
        ok "$q: $busy jobs reserved" wait_for "$UP_S" reserved "$q" "$busy"
        ok "$q: three workers run" wait_for "$UP_S" at_least_comm "$q" worker 3
        stop_and_check "$q" "$sig" "$LAUNCHED" "$live"
    done

    # worker-pool, a second signal while its workers drain slow jobs: it kills them at once,
    # and what their handlers ran goes too (the pool is its subreaper).
    q=pool2x-$s
    ok "$q: queue" ctl queues create "$q"
    ok "$q: push 2" ctl push g x -s 2 --queue "$q"
    launch "$q" "$sig" "$q" "$SLUICE_BIN/worker-pool" -n 2 --queues "$q" \
        --drain-timeout 60s --handler 'exec:sleep 60 & sleep 61'
    ok "$q: 2 jobs reserved" wait_for "$UP_S" reserved "$q" 2
    ok "$q: both run (four sleeps)" wait_for "$UP_S" at_least_comm "$q" sleep 4
    kill "-$sig" "$LAUNCHED"
    ok "$q: the first signal starts the drain" wait_for "$UP_S" grep -q 'event=pool.stop' "$SLUICE_DIR/$q.log"
    stop_and_check "$q" "$sig" "$LAUNCHED" "$live"
    like "$(cat "$SLUICE_DIR/$q.log")" 'event=orphan.kill' "$q: the handlers' processes were killed"

    stop_and_check "broker-$s" "$sig" "$BROKER_PID" ""
done

# --job-timeout kills a worker (SIGKILL) whose job runs too long: the job's processes, which
# the worker can no longer end, go with it. 4 s: the test must see the job's two sleeps before
# the timeout. A scan of /proc for them once took over 3 s under load (sanitizers, three
# scripts at a time), when it started tr and grep per process; read by bash (_env_has in
# lib.sh) it takes a few tens of ms. --drain-timeout: the pool's restarted worker takes the
# job again, and the stop at the end would otherwise wait for that job's timeout.
start_broker
q=jobtimeout
ok "$q: queue" ctl queues create "$q"
ok "$q: push" ctl push g x --queue "$q"
launch "$q" TERM "$q" "$SLUICE_BIN/worker-pool" -n 1 --queues "$q" --job-timeout 4s \
    --drain-timeout "$DRAIN" --handler 'exec:sleep 60 & sleep 61'
ok "$q: the job runs (two sleeps)" wait_for "$UP_S" at_least_comm "$q" sleep 2
first=$(for p in $(marked "$q"); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sleep ] && echo "$p"; done)
ok "$q: the worker is killed at the timeout" wait_for "$UP_S" grep -q 'event=orphan.kill' "$SLUICE_DIR/$q.log"
gone() {
    local p
    for p in $first; do alive "$p" && return 1; done
    return 0
}
ok "$q: the job's processes are gone" wait_for 5 gone
stop_and_check "$q" TERM "$LAUNCHED" "broker.ipc events.ipc "

# A worker killed by a signal takes only its own job's processes with it. A running job's
# `(sleep 301 &)` is reparented to the pool at once (the pool is the subreaper) while its job
# runs on: killing the other, idle, worker must leave it alone; killing the busy worker ends it.
q=orphans
ok "$q: queue" ctl queues create "$q"
ok "$q: push" ctl push g x --queue "$q"
launch "$q" TERM "$q" "$SLUICE_BIN/worker-pool" -n 2 --queues "$q" --drain-timeout "$DRAIN" \
    --handler 'exec:(sleep 301 &); sleep 62'
ok "$q: the job runs (two sleeps)" wait_for "$UP_S" at_least_comm "$q" sleep 2
ok "$q: two workers run" wait_for "$UP_S" at_least_comm "$q" worker 2
# parent_of PID: its parent's pid.
parent_of() {
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    line=${line##*) }
    read -r _ ppid _ <<<"$line"
    echo "$ppid"
}
busy_w= idle_w= bg_sleep=
for p in $(marked "$q"); do
    case $(cat "/proc/$p/comm" 2>/dev/null) in
    worker) w_pids="${w_pids:-} $p" ;;
    sleep) [ "$(tr '\0' ' ' <"/proc/$p/cmdline")" = "sleep 301 " ] && bg_sleep=$p ;;
    esac
done
for w in $w_pids; do
    has_child=0
    for p in $(marked "$q"); do [ "$(parent_of "$p")" = "$w" ] && has_child=1; done
    if [ "$has_child" = 1 ]; then busy_w=$w; else idle_w=$w; fi
done
ok "$q: one busy worker, one idle, and the job's background sleep found" \
    test -n "$busy_w" -a -n "$idle_w" -a -n "$bg_sleep"
is "$(parent_of "$bg_sleep")" "$LAUNCHED" "$q: the background sleep is the pool's child now"
kill -KILL "$idle_w"
ok "$q: the pool restarts the idle worker" wait_for "$UP_S" grep -q "event=worker.exit .*pid=$idle_w how=signal:9" "$SLUICE_DIR/$q.log"
ok "$q: ... and two workers run again" wait_for "$UP_S" at_least_comm "$q" worker 2
ok "$q: the running job's background sleep still runs" alive "$bg_sleep"
ok "$q: nothing was killed as an orphan" bash -c "! grep -q 'event=orphan.kill' '$SLUICE_DIR/$q.log'"
kill -KILL "$busy_w"
ok "$q: killing the busy worker ends its job's processes" wait_for "$UP_S" not_alive "$bg_sleep"
like "$(cat "$SLUICE_DIR/$q.log")" 'event=orphan.kill' "$q: and says so"
stop_and_check "$q" TERM "$LAUNCHED" "broker.ipc events.ipc "

done_testing
