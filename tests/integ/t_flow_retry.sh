#!/usr/bin/env bash
# exec: and pipe: handlers end to end through bin/worker: payload on stdin, SLUICE_JOB_ID,
# SLUICE_GROUP, SLUICE_QUEUE and SLUICE_ATTEMPT in the environment, exit 0 acks and exit 1
# nacks; a job that fails twice then succeeds is done after 3 attempts; one that always fails
# is dead after --max-attempts 3 and `ctl dead retry` runs it again from attempt 1; a pipe
# handler that dies is restarted and its job retried and done.
. "$(dirname "$0")/lib.sh"

start_broker
D=$SLUICE_DIR

stats() {
    run ctl stats --json
    S=$OUT
}

next_id() {
    stats
    json "$S" 'd["broker"]["next_id"]'
}

# group_is G DONE FAILED DEAD COUNT
group_is() {
    stats
    [ "$(json "$S" "[(g['done'], g['failed'], g['dead'], g['count']) for g in d['groups'] if g['name'] == '$1']")" = "[[$2, $3, $4, $5]]" ]
}

group_diag() {
    json "$S" "[(g['done'], g['failed'], g['dead'], g['count']) for g in d['groups'] if g['name'] == '$1']"
}

lines_are() { # FILE WANT: FILE's lines joined by spaces are WANT
    [ -f "$1" ] && [ "$(tr '\n' ' ' <"$1")" = "$2 " ]
}

# --- exec: ---
# Each run records its environment and payload under the job's id, appends its attempt, and
# counts its runs; group "nackme" always exits 1, group "flaky" exits 1 on its first two runs.
spawn worker "$SLUICE_BIN/worker" --handler 'exec:
    f="$SLUICE_DIR/job.$SLUICE_JOB_ID"
    cat >"$f.payload"
    env | grep -E "^SLUICE_(JOB_ID|GROUP|QUEUE|ATTEMPT)=" | sort >"$f.env"
    echo "$SLUICE_ATTEMPT" >>"$f.attempts"
    n=$(wc -l <"$f.attempts")
    case $SLUICE_GROUP in
    nackme) exit 1 ;;
    flaky) [ "$n" -ge 3 ] ;;
    *) exit 0 ;;
    esac'

id=$(next_id)
payload='two words
and a second line, "quotes" $HOME'
ok "push a job with a two-line payload" ctl push env "$payload"
ok "exit 0 acks it: done" wait_for 5 group_is env 1 0 0 0
printf '%s' "$payload" >"$D/want.payload"
ok "the handler read the payload on stdin, byte for byte" cmp "$D/want.payload" "$D/job.$id.payload"
is "$(cat "$D/job.$id.env")" "SLUICE_ATTEMPT=1
SLUICE_GROUP=env
SLUICE_JOB_ID=$id
SLUICE_QUEUE=default" "the handler's environment names the job, group, queue and attempt"

ok "create queue q2" ctl queues create q2
id=$(next_id)
ok "push a job to queue q2" ctl push env2 x -q q2
ok "it is done" wait_for 5 group_is env2 1 0 0 0
is "$(grep QUEUE "$D/job.$id.env")" "SLUICE_QUEUE=q2" "SLUICE_QUEUE is the queue the job came from"

id=$(next_id)
ok "push a job the handler fails twice (max attempts 5)" ctl push flaky x --max-attempts 5
ok "it ends done, after two failures" wait_for 10 group_is flaky 1 2 0 0
ok "its attempts were 1, 2, 3" lines_are "$D/job.$id.attempts" "1 2 3"

id=$(next_id)
ok "push a job that always fails (max attempts 3)" ctl push nackme x --max-attempts 3
ok "exit 1 nacks it: dead after 3 failed attempts" wait_for 10 group_is nackme 0 3 1 0
ok "it ran with attempts 1, 2, 3" lines_are "$D/job.$id.attempts" "1 2 3"
run ctl dead --json
is "$(json "$OUT" '[(j["id"], j["attempts"], j["max_attempts"]) for j in d["jobs"]]')" "[[$id, 3, 3]]" \
    "ctl dead lists it with 3 of 3 attempts"
run ctl dead retry "$id"
is "$OUT" "retried 1 dead job" "ctl dead retry ID"
ok "it runs again from attempt 1 and dies again after 3 more" \
    wait_for 10 lines_are "$D/job.$id.attempts" "1 2 3 1 2 3"
ok "dead again: failed 6" wait_for 5 group_is nackme 0 6 1 0
stop_pgrp "$SPAWNED_PID" 5

# --- pipe: ---
ph=$SLUICE_TESTBIN/../examples/pipe_handler
[ -x "$ph" ] || bail_out "no $ph (make builds it)"
# The first command reads a little of the first job's frame and exits 3 mid-job; every later
# one is examples/pipe_handler.
spawn pworker "$SLUICE_BIN/worker" --handler "pipe:if [ -e \"\$SLUICE_DIR/pipe.once\" ]; then exec '$ph'; else touch \"\$SLUICE_DIR/pipe.once\"; head -c 2 >/dev/null; exit 3; fi"
ok "push a job to the pipe handler" ctl push pipe1 hello --max-attempts 3
ok "the handler dies mid-job, is restarted, and the job is retried and done" \
    wait_for 10 group_is pipe1 1 1 0 0
ok "push a job the pipe handler fails" ctl push pipefail fail --max-attempts 2
ok "answered ok:false: nacked until dead" wait_for 10 group_is pipefail 0 2 1 0
ok "push a job that makes the pipe handler crash every time" ctl push pipecrash crash --max-attempts 2
ok "it is nacked until dead" wait_for 10 group_is pipecrash 0 2 1 0
ok "push 5 ordinary jobs after the crashes" ctl push pipe2 ok -s 5
ok "a restarted handler does them all" wait_for 10 group_is pipe2 5 0 0 0
like "$(cat "$D/pworker.log")" "HELLO" "the handler's stderr reaches the worker's log"

done_testing
