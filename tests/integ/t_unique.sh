#!/usr/bin/env bash
# Unique jobs (README "Unique jobs"), on a journaled broker:
# 1. a push with --unique KEY stores one job; another with the same key stores nothing and
#    names the job holding it (ctl: exit 0; HTTP: "duplicate": true); bad input exits 2 (HTTP
#    400) and stores nothing;
# 2. once the job is done the key is free;
# 3. --unique-hold ttl keeps the key until its TTL ends, across the job's end and kill -9;
#    then it is free.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

command -v curl >/dev/null || skip_all "curl is needed (scripts/deps --test installs it)"

free_port
data_broker --http-listen "127.0.0.1:$PORT"

# --- 1. one job per key --------------------------------------------------------------------------
run ctl push g first --unique order-42
is "$RC" 0 "ctl push --unique order-42"
like "$OUT" "pushed 1 job to g" "... stores the job"
run ctl push g second --unique order-42
is "$RC" 0 "the same key again: exit 0"
is "$OUT" "not pushed: job 1 holds unique key 'order-42'" "... naming the job that holds it"
api POST /v1/groups/g/jobs '{"payload":"third","unique":"order-42"}'
is "$ST" 200 "the same key by HTTP: 200"
is "$(json "$BODY" '[d["count"], d["first_id"], d["duplicate"]]')" "[0, 1, true]" \
    "... count 0, the holder's id, duplicate"
is "$(jobs_held)" 1 "one job held"
long=$(printf 'k%.0s' $(seq 257))
for bad in "--unique k -s 2" "--unique-ttl 5s" "--unique k --unique-hold ttl" \
    "--unique k --unique-hold forever" "--unique $long" "--unique k --unique-ttl 0"; do
    # shellcheck disable=SC2086 # split on purpose
    run ctl push g x $bad
    is "$RC" 2 "ctl push ${bad:0:40}: exit 2"
done
api POST /v1/groups/g/jobs '{"payloads":["a","b"],"unique":"two"}'
is "$ST" 400 "HTTP: a unique push of two jobs is 400"
api POST /v1/groups/g/jobs '{"payload":"a","unique_ttl_ms":5}'
is "$ST" 400 "HTTP: unique_ttl_ms without unique is 400"
is "$(jobs_held)" 1 "the refused pushes stored nothing"

# --- 2. the key is free once its job is done ---------------------------------------------------
spawn pool "$SLUICE_BIN/worker-pool" -n 1 --handler noop
POOL=$SPAWNED_PID
ok "the job is done" wait_for 10 eval '[ "$(jobs_held)" = 0 ]'
run ctl push g again --unique order-42
like "$OUT" "pushed 1 job" "then the key is free: the push stores a job"
ok "that job is done too" wait_for 10 eval '[ "$(jobs_held)" = 0 ]'

# --- 3. hold ttl, across kill -9 -------------------------------------------------------------------
t0=$(date +%s%3N)
ok "push --unique mail-7 --unique-ttl 6s --unique-hold ttl" \
    ctl push g mail --unique mail-7 --unique-ttl 6s --unique-hold ttl
ok "its job is done" wait_for 10 eval '[ "$(jobs_held)" = 0 ]'
stop_pgrp "$POOL" 10
run ctl push g mail --unique mail-7
like "$OUT" "not pushed: job [0-9]+ holds unique key 'mail-7'" "the key outlives its job"
data_broker_kill9
data_broker --http-listen "127.0.0.1:$PORT"
run ctl push g mail --unique mail-7
t1=$(date +%s%3N)
if [ $((t1 - t0)) -lt 5500 ]; then
    like "$OUT" "not pushed: job [0-9]+ holds unique key 'mail-7'" "... and kill -9"
else
    diag "not checked after kill -9: the restart took $((t1 - t0)) ms, the TTL may have ended"
fi
run ctl stats --json
cmp_num "$(json "$OUT" 'd["broker"]["unique_keys"]')" -ge 1 "stats counts the key"
free_now() {
    run ctl push g mail --unique mail-7
    [[ $OUT == pushed* ]]
}
ok "once the TTL ends the key is free" wait_for 15 free_now
t2=$(date +%s%3N)
cmp_num $((t2 - t0)) -ge 6000 "... not before 6 s ($((t2 - t0)) ms)"

done_testing
