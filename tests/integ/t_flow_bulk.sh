#!/usr/bin/env bash
# 100,000 jobs through `worker-pool -n 8 --handler noop --prefetch 64`: every job done and
# acked exactly once, nothing failed, dead, reserved or ready at the end.
. "$(dirname "$0")/lib.sh"

start_broker

all_done() {
    run ctl stats --json
    [ "$(json "$OUT" 'sum(q["done"] for q in d["queues"])')" = 100000 ]
}

ok "push 100000 jobs" ctl push bob hello -s 100000
spawn pool "$SLUICE_BIN/worker-pool" -n 8 --handler noop --prefetch 64
ok "all 100000 are done" wait_for 20 all_done
run ctl stats --json
S=$OUT
is "$(json "$S" '[(g["pushed"], g["done"]) for g in d["groups"] if g["name"] == "bob"]')" \
    '[[100000, 100000]]' "group bob: pushed 100000, done 100000"
is "$(json "$S" '[(q["name"], q["pushed"], q["done"], q["failed"], q["dead"], q["reserved"], q["ready"], q["delayed"]) for q in d["queues"]]')" \
    '[["default", 100000, 100000, 0, 0, 0, 0, 0]]' \
    "queue default: pushed = done = 100000; failed, dead, reserved, ready, delayed 0"
is "$(json "$S" '(d["broker"]["jobs"], d["broker"]["reserved"])')" '[0, 0]' \
    "the broker holds no job and has none reserved"
# Each worker counts the jobs it acked; a job acked twice (or run by two workers) would push
# the sum above 100000.
is "$(json "$S" 'sum(w["jobs"] for w in d["workers"])')" 100000 \
    "the workers' job counts add up to exactly 100000 (each job acked once)"
is "$(json "$S" 'len(d["workers"])')" 8 "eight workers are registered"

done_testing
