#!/usr/bin/env bash
# Looking at jobs and their errors (README "Inspecting jobs"), on a journaled broker:
# 1. a job whose exec: handler fails keeps its last error (exit status and the end of its
#    stderr) and shows its next attempt time in `ctl job`; the same by HTTP;
# 2. `ctl peek` lists the first jobs of a queue or group in a state, with exact totals;
# 3. `ctl job delete` deletes a ready or delayed job and refuses a dead one; bad input exits 2
#    and changes nothing;
# 4. after kill -9 the error and due time are as they were; a dead job's error shows in
#    `ctl dead list` and metrics count errors by class;
# 5. a nack's own error text (HTTP worker) is kept as class "failed".
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

command -v curl >/dev/null || skip_all "curl is needed (scripts/deps --test installs it)"

unset SLUICE_RETRY_BASE

# state_of ID: its state, or "gone".
state_of() {
    run ctl job "$1" --json
    if [ "$RC" = 0 ]; then json "$OUT" 'd["job"]["state"]'; else echo gone; fi
}

free_port
data_broker --http-listen "127.0.0.1:$PORT"

# --- 1. an exec: failure's error ---------------------------------------------------------------
ok "ctl queues create q --retry-base 1h" ctl queues create q --retry-base 1h --retry-max 2h \
    --retry-jitter 0
run ctl push g alpha -q q --max-attempts 2
A=1
ok "push a delayed job" ctl push g beta --delay 1h
B=2
ok "push a ready job" ctl push g gamma
C=3
ok "push 30 jobs to g2" ctl push g2 x -s 30
spawn pool "$SLUICE_BIN/worker-pool" -n 1 --queues q \
    --handler 'exec:echo "first words" >&2; echo "bad input on line 7" >&2; exit 3'
POOL=$SPAWNED_PID
ok "the failed job waits for its next attempt" wait_for 10 eval '[ "$(state_of $A)" = delayed ]'
stop_pgrp "$POOL" 10

run ctl job "$A" --json
is "$RC" 0 "ctl job $A --json"
is "$(json "$OUT" 'd["job"]["error"]["class"]')" exit "its error's class is exit"
is "$(json "$OUT" 'd["job"]["error"]["text"]')" $'exit 3\nfirst words\nbad input on line 7' \
    "its text: the exit status and the end of its stderr"
is "$(json "$OUT" 'd["job"]["attempts"]')" 1 "one attempt made"
now_ms=$(date +%s%3N)
due=$(json "$OUT" 'd["job"]["due_ms"]')
cmp_num "$due" -gt $((now_ms + 3500000)) "its next attempt is about an hour ahead (due_ms $due)"
A_DUE=$due
run ctl job "$A"
like "$OUT" 'next attempt +[0-9T:.-]+Z \(in 59m' "ctl job shows the next attempt time"
like "$OUT" 'last error +exit, ' "ctl job shows the error's class"
like "$OUT" 'bad input on line 7' "... and its text"
like "$OUT" 'payload +5 bytes: alpha' "... and the payload"

api GET "/v1/jobs/$A"
is "$ST" 200 "GET /v1/jobs/$A"
is "$(json "$BODY" 'd["job"]["error"]["class"]')" exit "the same error by HTTP"
api GET /v1/jobs/abc
is "$ST" 400 "GET /v1/jobs/abc: 400"
api GET /v1/jobs/999999
is "$ST" 404 "GET /v1/jobs/999999: 404"

# --- 2. peek -------------------------------------------------------------------------------------
run ctl peek --group g2 --max 5 --json
is "$(json "$OUT" '[len(d["jobs"]), d["total"], d["more"]]')" "[5, 30, true]" \
    "peek --group g2 --max 5: 5 of 30, more"
is "$(json "$OUT" '[j["id"] for j in d["jobs"]]')" "[4, 5, 6, 7, 8]" "... the first five, in order"
run ctl peek --queue default --state delayed --json
is "$(json "$OUT" '[[j["id"], j["payload"]] for j in d["jobs"]]')" "[[$B, \"beta\"]]" \
    "peek --queue default --state delayed: the delayed job"
run ctl peek --queue q --group g --state delayed
like "$OUT" "delayed jobs \(1 of 1\)" "peek as a table"
like "$OUT" " $A +delayed +g +q +1/2 .* exit +alpha" "... with its row"
api GET '/v1/jobs?group=g&state=ready'
is "$(json "$BODY" '[j["id"] for j in d["jobs"]]')" "[$C]" "GET /v1/jobs?group=g&state=ready"

# --- 3. delete and bad input -------------------------------------------------------------------
before=$(jobs_held)
for bad in "job abc" "job 0" "peek" "peek --queue default --state bogus" "peek --group g --max 0" \
    "job delete" "job delete x"; do
    # shellcheck disable=SC2086 # split on purpose
    run ctl $bad
    is "$RC" 2 "ctl $bad: exit 2"
done
run ctl peek --queue nosuch
is "$RC" 1 "peek of a queue that does not exist: exit 1"
like "$ERR" "queue 'nosuch' does not exist" "... saying so"
is "$(jobs_held)" "$before" "bad input changed nothing"
ok "ctl job delete $B (delayed)" ctl job delete "$B"
is "$(state_of "$B")" gone "job $B is gone"
api DELETE "/v1/jobs/$C"
is "$ST" 200 "DELETE /v1/jobs/$C (ready)"
is "$(json "$BODY" 'd["state"]')" ready "... answers the state it had"
is "$(jobs_held)" "$((before - 2))" "two jobs fewer, exactly"
run ctl job delete "$C"
is "$RC" 1 "deleting it again: exit 1"

# --- 4. kill -9, then dead ---------------------------------------------------------------------
data_broker_kill9
data_broker --http-listen "127.0.0.1:$PORT"
run ctl job "$A" --json
is "$(json "$OUT" '[d["job"]["state"], d["job"]["error"]["class"]]')" '["delayed", "exit"]' \
    "after kill -9: still delayed, same error"
due=$(json "$OUT" 'd["job"]["due_ms"]')
cmp_num "$(((due - A_DUE) * (due - A_DUE)))" -le 1 "... and the same due time, to the ms ($due, $A_DUE)"
is "$(state_of "$B")" gone "the deleted jobs stay deleted"
is "$(jobs_held)" "$((before - 2))" "... and the count is exact"
ok "ctl queues update q --retry-base 0" ctl queues update q --retry-base 0
# Job A's next attempt stays an hour away (a new setting does not move a waiting job): a new
# job with one attempt shows the dead path.
ok "push a job that dies at once" ctl push g3 omega -q q --max-attempts 1
spawn pool "$SLUICE_BIN/worker-pool" -n 1 --queues q --handler 'exec:kill -9 $$'
POOL=$SPAWNED_PID
dead_n() {
    run ctl stats --json
    [ "$(json "$OUT" '[q["dead"] for q in d["queues"] if q["name"] == "q"][0]')" = 1 ]
}
ok "the job is dead" wait_for 10 dead_n
stop_pgrp "$POOL" 10
run ctl dead list
like "$OUT" "signal: signal 9 \(Killed\)" "ctl dead list shows the error"
run ctl metrics
like "$OUT" 'sluice_job_errors_total\{class="signal"\} 1' "metrics count it by class"
like "$OUT" 'sluice_job_errors_total\{class="exit"\} 0' "... since this start"
D=$(json "$(ctl dead list --json)" 'd["jobs"][0]["id"]')
run ctl job delete "$D"
is "$RC" 1 "deleting a dead job: refused"
like "$ERR" "dead.purge" "... pointing at dead purge"

# --- 5. a nack's own error -----------------------------------------------------------------------
ok "ctl push g4 delta" ctl push g4 delta
api POST /v1/reserve '{"worker":"hw","max":1}'
E=$(json "$BODY" 'd["jobs"][0]["id"]')
api POST /v1/nack "{\"worker\":\"hw\",\"ids\":[$E],\"errors\":[\"upstream said 503\"]}"
is "$ST" 200 "nack with an error by HTTP"
run ctl job "$E" --json
is "$(json "$OUT" '[d["job"]["error"]["class"], d["job"]["error"]["text"]]')" \
    '["failed", "upstream said 503"]' "the nack's text is kept, class failed"
api POST /v1/nack '{"worker":"hw","ids":[1,2],"errors":["only one"]}'
is "$ST" 400 "errors and ids of different lengths: 400"

done_testing
