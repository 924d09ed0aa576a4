#!/usr/bin/env bash
# 500 reserves parked at the broker (sl-park, each on its own connection, waiting 30 s): a
# `ctl push` is still answered within 100 ms, and the parked reserves then get the jobs.
#
# It times an answer, which another test running beside it would slow:
# tests/run: alone
. "$(dirname "$0")/lib.sh"

start_broker

waiters_are() {
    run ctl stats --json
    [ "$(json "$OUT" 'd["broker"]["waiters"]')" = "$1" ]
}

spawn park "$SLUICE_TESTBIN/sl-park" "ipc://$SLUICE_DIR/broker.ipc" 500 30000
PARK_PID=$SPAWNED_PID
ok "sl-park sends 500 reserves" wait_for 15 grep -qx "sent 500" "$SLUICE_DIR/park.log"
ok "the broker holds 500 parked reserves" wait_for 10 waiters_are 500

# The wall time of the whole ctl process: its own start and connection are in it (a start that
# takes several times longer under the sanitizers).
limit=100
sanitized && limit=300
elapsed_ms ctl push g first
is "$RC" 0 "ctl push exits 0 with 500 reserves parked"
cmp_num "$ELAPSED_MS" -lt $limit "ctl push is answered within $limit ms (took $ELAPSED_MS ms)"
elapsed_ms ctl ping
cmp_num "$ELAPSED_MS" -lt $limit "ctl ping too (took $ELAPSED_MS ms)"
ok "push 499 more" ctl push g more -s 499
ok "all 500 parked reserves are answered, each with a job" \
    wait_for 10 grep -qx "replies 500 jobs 500" "$SLUICE_DIR/park.log"
# sl-park exits once answered; its connections close, so the broker hands the jobs back.
park_gone() {
    ! alive "$PARK_PID"
}
ok "sl-park exits" wait_for 10 park_gone
back_to_ready() {
    run ctl stats --json
    [ "$(json "$OUT" '(d["broker"]["waiters"], d["broker"]["reserved"], d["queues"][0]["ready"])')" = '[0, 0, 500]' ]
}
ok "its 500 jobs are ready again once its connections closed, none parked or reserved" \
    wait_for 10 back_to_ready

done_testing
