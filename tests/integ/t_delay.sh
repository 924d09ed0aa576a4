#!/usr/bin/env bash
# Delayed and scheduled pushes (README "Delayed jobs"), on a broker with its journal:
# 1. `ctl push --delay` and `--at`: the jobs count as delayed (queue and group), are not ready
#    before their time and are ready once it has come;
# 2. they survive kill -9 with their due time: after the restart (well before the first is
#    due: 5.5 s) they are still delayed and become ready at the same time, not at restart +
#    delay;
# 3. a time already past is ready at once;
# 4. bad values (too long, not a time, both options, a day that does not exist) are refused
#    with exit 2 and store nothing;
# 5. the HTTP API's delay_ms and run_at_ms, and its 400 for both at once.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

command -v curl >/dev/null || skip_all "curl is needed (scripts/deps --test installs it)"

PORT=

# counts: "ready delayed" of queue default, and the group g's delayed, into C.
counts() {
    run ctl stats --json
    C=$(json "$OUT" '"%d %d %d" % (d["queues"][0]["ready"], d["queues"][0]["delayed"],
        sum(x["delayed"] for x in d["groups"] if x["name"] == "g"))')
}

counts_are() {
    counts
    [ "$C" = "$1" ]
}

now_ms() {
    _now_us
    echo $((REPLY / 1000))
}

free_port
data_broker --http-listen "127.0.0.1:$PORT"

# --- 1. --delay and --at -----------------------------------------------------------------------
t_push=$(now_ms)
run ctl push g later -s 3 --delay 9s
is "$RC" 0 "ctl push --delay 9s exits 0"
like "$OUT" "pushed 3 jobs to g" "and says it pushed 3"
run ctl push g now
counts
is "$C" "1 3 3" "3 delayed in the queue and in the group, 1 ready"
at_s=$(( (t_push + 6500) / 1000 ))   # whole seconds: 5.5 to 6.5 s after the push
at=$(date -u -d "@$at_s" +%Y-%m-%dT%H:%M:%SZ)
run ctl push g at --at "$at"
is "$RC" 0 "ctl push --at $at exits 0"
counts
is "$C" "1 4 4" "the --at job is delayed too"
# Well before either time: nothing has become ready.
sleep_until=$((t_push + 1000))
while [ "$(now_ms)" -lt "$sleep_until" ]; do sleep 0.05; done
counts
is "$C" "1 4 4" "a second after the push, all 4 are still delayed"

# --- 2. kill -9: the due times are kept ----------------------------------------------------------
data_broker_kill9
data_broker --http-listen "127.0.0.1:$PORT"
counts
is "$C" "1 4 4" "after kill -9 and a restart, the 4 are delayed still"
ok "the --at job is ready at its time" wait_for 10 counts_are "2 3 3"
t_at=$(now_ms)
cmp_num "$t_at" -ge $((at_s * 1000)) "... not before it ($((t_at - at_s * 1000)) ms after $at)"
ok "the --delay jobs are ready once 9 s have passed since the push" wait_for 10 counts_are "5 0 0"
t_due=$(now_ms)
cmp_num $((t_due - t_push)) -ge 9000 "... not before ($((t_due - t_push)) ms after the push)"
cmp_num $((t_due - t_push)) -lt 14000 "... and counted from the push, not from the restart"

# --- 3. a time past -----------------------------------------------------------------------------
run ctl push g past --at 2020-01-01T00:00:00Z
is "$RC" 0 "ctl push --at a time past exits 0"
counts
is "$C" "6 0 0" "a time past is ready at once"
run ctl push g zone --at 2021-06-01T12:00:00.250+02:00
is "$RC" 0 "a time with a fraction and a zone offset is accepted"

# --- 4. bad values change nothing -----------------------------------------------------------------
for bad in "--delay 3651d" "--delay 1x" "--at 2026-02-30T00:00:00Z" "--at 2026-12-24T18:00:00" \
    "--at tomorrow" "--delay 1s --at 2030-01-01T00:00:00Z"; do
    # shellcheck disable=SC2086 # the options are split on purpose
    run ctl push g bad $bad
    is "$RC" 2 "ctl push $bad: exit 2"
    [ -n "$ERR" ] || fail "ctl push $bad says why"
done
like "$ERR" "--delay or --at, not both" "both options: the message says to give one"
counts
is "$C" "7 0 0" "nothing was stored by the refused pushes"

# --- 5. HTTP ------------------------------------------------------------------------------------
http() {
    local out
    out=$(curl -s --max-time 20 -o "$SLUICE_DIR/api.body" -w '%{http_code}' -X POST \
        -H "Content-Type: application/json" --data-binary "$2" "http://127.0.0.1:$PORT$1")
    ST=$out
    BODY=$(cat "$SLUICE_DIR/api.body")
}
http /v1/groups/g/jobs '{"payload":"h1","delay_ms":60000}'
is "$ST" 200 "HTTP push with delay_ms: 200"
far=$(( $(now_ms) + 120000 ))
http /v1/groups/g/jobs "{\"payload\":\"h2\",\"run_at_ms\":$far}"
is "$ST" 200 "HTTP push with run_at_ms: 200"
counts
is "$C" "7 2 2" "both are delayed"
http /v1/groups/g/jobs "{\"payload\":\"h3\",\"delay_ms\":1,\"run_at_ms\":$far}"
is "$ST" 400 "HTTP push with delay_ms and run_at_ms: 400"
like "$BODY" "not both" "... saying to give one"
http /v1/groups/g/jobs '{"payload":"h4","delay_ms":315360000001}'
is "$ST" 400 "HTTP push with a delay over 3,650 days: 400"
counts
is "$C" "7 2 2" "the refused pushes stored nothing"

done_testing
