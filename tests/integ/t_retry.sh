#!/usr/bin/env bash
# Retry backoff (README "Semantics"), with the broker's defaults (lib.sh's SLUICE_RETRY_BASE=0
# is unset here):
# 1. a queue shows its retry settings in stats: the default queue the broker's (1 s, 10 min,
#    20 %), a queue created with --retry-base/--retry-max/--retry-jitter its own; bad values
#    exit 2 and change nothing;
# 2. a job whose exec: handler fails is tried again after 300 ms, then 600 ms, then 1 s
#    (doubling, capped at --retry-max), counted as delayed meanwhile, and dead after its last
#    attempt;
# 3. the settings survive kill -9; `ctl queues update` changes them.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

unset SLUICE_RETRY_BASE
# retry_of QUEUE: "base max jitter" from stats.
retry_of() {
    run ctl stats --json
    json "$OUT" '" ".join(str(q[k]) for q in d["queues"] if q["name"] == "'"$1"'"
        for k in ("retry_base_ms", "retry_max_ms", "retry_jitter"))'
}

data_broker

# --- 1. settings ----------------------------------------------------------------------------
is "$(retry_of default)" "1000 600000 20" "the default queue has the broker's backoff: 1 s, 10 min, 20 %"
ok "ctl queues create q --retry-base 300ms --retry-max 1s --retry-jitter 0" \
    ctl queues create q --retry-base 300ms --retry-max 1s --retry-jitter 0
is "$(retry_of q)" "300 1000 0" "stats shows q's own backoff"
for bad in "--retry-jitter 101" "--retry-base 25h" "--retry-max 0" "--retry-max 8d" \
    "--retry-base x"; do
    # shellcheck disable=SC2086 # the options are split on purpose
    run ctl queues update q $bad
    is "$RC" 2 "ctl queues update q $bad: exit 2"
done
is "$(retry_of q)" "300 1000 0" "the refused updates changed nothing"

# --- 2. the backoff at work ------------------------------------------------------------------
runs=$SLUICE_DIR/runs
spawn pool "$SLUICE_BIN/worker-pool" -n 1 --queues q \
    --handler "exec:date +%s%3N >>'$runs'; exit 1"
ok "push one job to q with 4 attempts" ctl push g x -q q --max-attempts 4
delayed_in_q() {
    run ctl stats --json
    [ "$(json "$OUT" '[q["delayed"] for q in d["queues"] if q["name"] == "q"][0]')" = 1 ]
}
ok "after its first failure the job is delayed" wait_for 10 delayed_in_q
dead_in_q() {
    run ctl stats --json
    [ "$(json "$OUT" '[q["dead"] for q in d["queues"] if q["name"] == "q"][0]')" = 1 ]
}
ok "after its 4th attempt it is dead" wait_for 20 dead_in_q
mapfile -t t <"$runs"
is "${#t[@]}" 4 "the handler ran 4 times"
g1=$((t[1] - t[0])) g2=$((t[2] - t[1])) g3=$((t[3] - t[2]))
diag "waits between attempts: $g1 ms, $g2 ms, $g3 ms"
cmp_num "$g1" -ge 300 "the 2nd attempt came at least 300 ms after the 1st ($g1 ms)"
cmp_num "$g2" -ge 600 "the 3rd at least 600 ms after the 2nd: doubled ($g2 ms)"
cmp_num "$g3" -ge 1000 "the 4th at least 1 s after the 3rd: 1.2 s capped at --retry-max ($g3 ms)"
cmp_num "$g3" -lt 3000 "... and not much more ($g3 ms)"
stop_pgrp "$SPAWNED_PID" 10

# --- 3. kill -9 and update ---------------------------------------------------------------------
data_broker_kill9
data_broker
is "$(retry_of q)" "300 1000 0" "after kill -9 and a restart, q keeps its backoff"
ok "ctl queues update q --retry-base 0" ctl queues update q --retry-base 0
is "$(retry_of q)" "0 1000 0" "a base of 0 (retry at once) is a setting too"

done_testing
