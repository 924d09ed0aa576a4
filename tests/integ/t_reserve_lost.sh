#!/usr/bin/env bash
# A reserve whose reply the worker never receives gives its jobs back at once, uncharged. The
# broker is stopped (SIGSTOP) longer than the worker waits for a reserve's reply (its wait plus
# 10 s): the worker gives up and asks again on the same connection, and the broker, once it
# runs again, answers both. The first reply's jobs (the worker never sees them) go back when
# the second reserve says which reply it got last (rtok_got, PROTOCOL.md), so with
# --max-attempts 1 every job runs and none is dead, long before their TTR (60 s).
. "$(dirname "$0")/lib.sh"

start_broker

stats() {
    run ctl stats --json
    S=$OUT
}

totals_are() { # DONE DEAD: the queue default's done and dead counts
    stats
    [ "$(json "$S" '[(q["done"], q["dead"]) for q in d["queues"] if q["name"] == "default"][0]')" = "[$1, $2]" ]
}

reserved_is() {
    stats
    [ "$(json "$S" 'd["broker"]["reserved"]')" = "$1" ]
}

gave_up() {
    grep -q 'event=broker.lost .*op=reserve' "$SLUICE_DIR/pool.log"
}

# The slow job keeps the worker busy while the broker is stopped, so that the reserve it sends
# next (carrying the slow job's ack) reaches a broker that cannot answer it. It runs long
# enough (5 s) for the steps up to the SIGSTOP on a loaded machine: should it end before,
# the worker takes the quick jobs and its first failed request is not the reserve.
spawn pool "$SLUICE_BIN/worker-pool" -n 1 --prefetch 4 \
    --handler 'exec:p=$(cat); if [ "$p" = slow ]; then sleep 5; fi; exit 0'
pool_pid=$SPAWNED_PID
ok "push a slow job" ctl push g slow --max-attempts 1
ok "the worker runs it" wait_for 10 reserved_is 1
ok "push 8 quick jobs while it runs" ctl push g quick -s 8 --max-attempts 1
ok "they wait for the worker" reserved_is 1
kill -STOP "$BROKER_PID"
ok "the worker gives up on its reserve (broker stopped past the wait + 10 s)" wait_for 30 gave_up
kill -CONT "$BROKER_PID"
ok "after SIGCONT every job runs and none is dead" wait_for 20 totals_are 9 0
ok "no job is left reserved" wait_for 5 reserved_is 0
like "$(cat "$SLUICE_DIR/broker.log")" 'event=reserve.unreceived' \
    "the broker logs the reply the worker never received"
stop_pgrp "$pool_pid" 10

done_testing
