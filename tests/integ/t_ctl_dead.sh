#!/usr/bin/env bash
# ctl dead list / retry / purge against jobs that really died: a pool whose handler always
# fails (exec:false) and jobs with one attempt each.
. "$(dirname "$0")/lib.sh"

start_broker

dead_is() {
    run ctl dead --json
    [ "$(json "$OUT" 'd["total"]')" = "$1" ]
}

spawn pool "$SLUICE_BIN/worker-pool" -n 2 --handler exec:false
ok "push 3 jobs of g" ctl push g "a payload longer than the forty bytes the table shows" -s 3 \
    --max-attempts 1
ok "push 1 job of h" ctl push h short --max-attempts 1
ok "all 4 die" wait_for 10 dead_is 4
stop_pgrp "$SPAWNED_PID" 5

run ctl dead
is "$RC" 0 "ctl dead exits 0"
like "$OUT" "^dead jobs \(4 of 4\):" "ctl dead lists them"
like "$OUT" "ID +GROUP +QUEUE +ATTEMPTS +AGE +ERROR +PAYLOAD" "as a table"
like "$OUT" " 1 +g +default +1/1 .* exit: exit 1 " "... with each job's last error"
like "$OUT" "a payload longer than the forty bytes th\.\.\." "payloads are cut for the table"
run ctl dead list --group g --max 2
like "$OUT" "^dead jobs \(2 of 3\):" "--group and --max"
like "$OUT" "1 more not shown" "the rest is announced"
run ctl dead --json --queue default
is "$(json "$OUT" 'sorted(j["group"] for j in d["jobs"])')" '["g", "g", "g", "h"]' "--json lists the jobs"
is "$(json "$OUT" 'd["more"]')" false "--json says there is no more"
ok_status 1 "an unknown queue is refused (exit 1)" ctl dead --queue nope
ok_status 2 "--max 0 is a usage error" ctl dead --max 0

ok_status 2 "retry without a selection is a usage error" ctl dead retry
ok_status 2 "ids and --group together are a usage error" ctl dead retry 1 --group g
ok_status 2 "a bad id is a usage error" ctl dead purge 12x
run ctl dead retry --group g
is "$OUT" "retried 3 dead jobs" "retry --group g"
run ctl stats --json
is "$(json "$OUT" '[g["ready"] for g in d["groups"] if g["name"] == "g"][0]')" 3 \
    "the retried jobs are ready again"
id=$(json "$(ctl dead --json)" 'd["jobs"][0]["id"]')
run ctl dead purge "$id" 999999
is "$OUT" "purged 1 dead job (1 id named no dead job)" "purge by id skips ids that are not dead"
ok "nothing is dead any more" dead_is 0

done_testing
