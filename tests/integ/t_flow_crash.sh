#!/usr/bin/env bash
# Workers that die under a job: kill -9 of a worker in the middle of a job (the job is
# delivered again and done), and a poison job whose handler kills its worker every time (dead
# after --max-crashes 3, while the other jobs all get done).
. "$(dirname "$0")/lib.sh"

start_broker

stats() {
    run ctl stats --json
    S=$OUT
}

next_id() {
    stats
    json "$S" 'd["broker"]["next_id"]'
}

# running_on ID: a worker reports job ID as its current one; its pid into RUNNER.
running_on() {
    stats
    RUNNER=$(json "$S" "[w['pid'] for w in d['workers'] if w['current'] == $1][0]")
}

# running_elsewhere ID PID: a worker other than PID runs job ID.
running_elsewhere() {
    stats
    [ "$(json "$S" "len([w for w in d['workers'] if w['current'] == $1 and w['pid'] != $2])")" = 1 ]
}

totals_are() { # DONE DEAD: the queue default's done and dead counts
    stats
    [ "$(json "$S" '[(q["done"], q["dead"]) for q in d["queues"] if q["name"] == "default"][0]')" = "[$1, $2]" ]
}

# --- kill -9 in the middle of a job ---
spawn pool "$SLUICE_BIN/worker-pool" -n 2 --handler sleep:2000-2000
POOL_PID=$SPAWNED_PID
id=$(next_id)
ok "push one 2-second job" ctl push slow x
ok "a worker reports the job as its current one" wait_for 5 running_on "$id"
victim=$RUNNER
kill -KILL "$victim"
ok "the job is delivered again, to another worker" wait_for 5 running_elsewhere "$id" "$victim"
ok "and ends done" wait_for 6 totals_are 1 0
stats
is "$(json "$S" '[(g["done"], g["dead"], g["count"]) for g in d["groups"] if g["name"] == "slow"]')" \
    '[[1, 0, 0]]' "group slow: done 1, dead 0, nothing left"
stop_pgrp "$POOL_PID" 5

# --- a poison job that kills its worker every time ---
ctl flush >/dev/null
# $PPID of the handler's shell is the worker (exec: runs /bin/sh -c CMD from the worker).
echo -n > "$SLUICE_DIR/poison.runs"
spawn pool2 "$SLUICE_BIN/worker-pool" -n 2 --handler \
    'exec:p=$(cat); if [ "$p" = poison ]; then echo "$SLUICE_ATTEMPT" >>"$SLUICE_DIR/poison.runs"; kill -9 $PPID; sleep 5; fi; exit 0'
POOL_PID=$SPAWNED_PID
ok "push 20 ordinary jobs" ctl push g ordinary -s 20 --max-attempts 10
pid_before=$(next_id)
ok "push the poison job (max attempts 10, so crashes decide)" ctl push p poison --max-attempts 10
ok "push 20 more ordinary jobs" ctl push g ordinary -s 20 --max-attempts 10
ok "the poison job dies and the 40 others are done" wait_for 20 totals_are 40 1
stats
is "$(json "$S" '[(g["name"], g["done"], g["dead"], g["count"]) for g in d["groups"]]')" \
    '[["g", 40, 0, 0], ["p", 0, 1, 0]]' "g: 40 done; p: 1 dead; nothing left in either"
run ctl dead --json
is "$(json "$OUT" '[(j["id"], j["group"]) for j in d["jobs"]]')" "[[$pid_before, \"p\"]]" \
    "the dead job is the poison job"
is "$(wc -l <"$SLUICE_DIR/poison.runs" | tr -d ' ')" 3 "the poison job ran exactly 3 times"
POOL=$(ctl workers --json)
is "$(json "$POOL" 'sum(w["restarts"] for w in d["workers"])')" 3 \
    "the pool restarted workers 3 times, once per crash"
ok "push 10 more ordinary jobs" ctl push g ordinary -s 10
ok "jobs keep flowing after the poison job died" wait_for 10 totals_are 50 1

done_testing
