#!/usr/bin/env bash
# ctl push and stats against a real broker: 100,000 jobs across 3 groups show as exact counts
# in `ctl stats --json`; `push --file -` takes one job per stdin line; ctl's exit codes: 1 for
# a refusal (printing the broker's err and msg), 2 for a usage error (nothing sent), 3 when no
# broker answers, within 3 s.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_fake.sh
. "$(dirname "$0")/lib_fake.sh"

# ctl_in DIR ARGS...: ctl with SLUICE_DIR=DIR.
ctl_in() {
    local dir=$1
    shift
    SLUICE_DIR=$dir "$SLUICE_BIN/ctl" "$@"
}

start_broker

# --- 100,000 jobs across 3 groups ---------------------------------------------------------

run ctl push bob job-bob -s 50000
is "$RC" 0 "push of 50,000 jobs for bob exits 0"
like "$OUT" '^pushed 50000 jobs to bob \(queue default\)' "ctl reports 50,000 confirmed jobs for bob"
run ctl push carol job-carol -s 30000 --batch 7
is "$RC" 0 "push of 30,000 jobs for carol in batches of 7 exits 0"
like "$OUT" '^pushed 30000 jobs to carol \(queue default\)' "ctl reports 30,000 confirmed jobs for carol"
run ctl push dave job-dave -s 20000 --batch 1000000
is "$RC" 0 "push of 20,000 jobs for dave in one request exits 0"
like "$OUT" '^pushed 20000 jobs to dave \(queue default\)' "ctl reports 20,000 confirmed jobs for dave"

run ctl stats --json
is "$RC" 0 "stats --json exits 0"
stats=$OUT
is "$(json "$stats" '[g["name"] for g in d["groups"]]')" '["bob", "carol", "dave"]' \
    "the groups are listed in the order first seen"
for g in bob:50000 carol:30000 dave:20000; do
    name=${g%%:*} n=${g#*:}
    is "$(json "$stats" "[(g['count'], g['ready'], g['pushed'], g['reserved'], g['route']) for g in d['groups'] if g['name'] == '$name']")" \
        "[[$n, $n, $n, 0, null]]" "group $name: count, ready and pushed are exactly $n, nothing reserved, no route"
done
is "$(json "$stats" '[(q["name"], q["ready"], q["pushed"], q["reserved"], q["dead"]) for q in d["queues"]]')" \
    '[["default", 100000, 100000, 0, 0]]' "the default queue alone holds the 100,000 ready jobs"
is "$(json "$stats" 'd["broker"]["jobs"]')" 100000 "the broker holds exactly 100,000 jobs"
is "$(json "$stats" 'd["broker"]["bytes"]')" $((50000 * 7 + 30000 * 9 + 20000 * 8)) \
    "the broker's payload bytes are exactly the sum of the payloads"
is "$(json "$stats" 'd["broker"]["next_id"]')" 100001 "ids 1..100,000 were used, one per job"
run ctl stats
is "$RC" 0 "stats (tables) exits 0"
like "$OUT" $'\nbob +- +50000 +50000 ' "the stats table shows bob's 50,000 jobs"

# --- push --file --------------------------------------------------------------------------

run bash -c 'printf "one\ntwo\n\nfour" | "$SLUICE_BIN/ctl" push filed --file -'
is "$RC" 0 "push --file - exits 0"
like "$OUT" '^pushed 4 jobs to filed' "one job per stdin line: 4, the empty line and the unterminated last line included"
run ctl stats --json
is "$(json "$OUT" "[(g['count'], g['pushed']) for g in d['groups'] if g['name'] == 'filed']")" \
    '[[4, 4]]' "group filed holds the 4 jobs"
is "$(json "$OUT" 'd["broker"]["bytes"] - '"$(json "$stats" 'd["broker"]["bytes"]')")" 10 \
    "the newlines are not part of the payloads (3 + 3 + 0 + 4 bytes)"

ctl queues create side >/dev/null
seq 1 2500 >"$SLUICE_DIR/lines"
run ctl push filed2 --file "$SLUICE_DIR/lines" --queue side --batch 1000
is "$RC" 0 "push --file F --queue side of 2,500 lines in batches of 1,000 exits 0"
like "$OUT" '^pushed 2500 jobs to filed2 \(queue side\)' "ctl reports 2,500 jobs to queue side"
run ctl stats --json
is "$(json "$OUT" '[q["ready"] for q in d["queues"] if q["name"] == "side"]')" '[2500]' \
    "queue side holds the 2,500 jobs"
is "$(json "$OUT" 'd["broker"]["jobs"]')" 102504 "the broker holds 102,504 jobs"
before=$OUT

# --- exit codes ---------------------------------------------------------------------------

run ctl push bob x --queue nope
is "$RC" 1 "a push to a queue that does not exist is refused: exit 1"
like "$ERR" "not_found" "the refusal prints the broker's err (not_found)"
like "$ERR" "queue 'nope' does not exist" "the refusal prints the broker's msg"
run ctl queues create side
is "$RC" 1 "creating a queue that exists: exit 1"
like "$ERR" "exists" "... printing err exists"
run ctl queues destroy default
is "$RC" 1 "destroying default: exit 1"
like "$ERR" "forbidden" "... printing err forbidden"
run ctl purge --group nobody
is "$RC" 1 "purging a group that does not exist: exit 1"
like "$ERR" "not_found" "... printing err not_found"

for args in "" "bogus" "push" "push bob" "push bob x -s abc" "push bob x -s 0" \
    "push bob x --file $SLUICE_DIR/lines" "push bob x --nope" "push b@d x" \
    "queues create" "queues create q --weight 0" "queues frob q" "routes set onlyone" \
    "purge" "stats extra" "--timeout 0 ping"; do
    # shellcheck disable=SC2086 # the arguments are split on purpose
    run ctl $args
    is "$RC" 2 "usage error 'ctl $args': exit 2"
    isnt "$ERR" "" "usage error 'ctl $args' says why on stderr"
done
run ctl stats --json
is "$(json "$OUT" '[d["broker"][k] for k in ("jobs", "bytes", "next_id")]')" \
    "$(json "$before" '[d["broker"][k] for k in ("jobs", "bytes", "next_id")]')" \
    "refusals and usage errors stored nothing"
is "$(json "$OUT" '[q["name"] for q in d["queues"]]')" '["default", "side"]' \
    "refusals and usage errors created no queue"

# --- no broker ----------------------------------------------------------------------------

mkdir -m 0700 "$SLUICE_DIR/empty"
t0=$(date +%s%N)
run ctl_in "$SLUICE_DIR/empty" ping
ms=$((($(date +%s%N) - t0) / 1000000))
is "$RC" 3 "ctl ping with no broker (empty SLUICE_DIR): exit 3"
cmp_num "$ms" -lt 3000 "ctl ping with no broker gives up within 3 s (took $ms ms)"
like "$ERR" "ipc://$SLUICE_DIR/empty/broker\\.ipc" "ctl ping with no broker names the address it tried"

# The rest with --timeout 300, to keep the script short: each must end within it (plus 1 s of
# slack for process start-up under the sanitizers).
for cmd in "stats --json" "push bob x" "queues create q" "purge --queue default"; do
    t0=$(date +%s%N)
    # shellcheck disable=SC2086 # the arguments are split on purpose
    run ctl_in "$SLUICE_DIR/empty" --timeout 300 $cmd
    ms=$((($(date +%s%N) - t0) / 1000000))
    is "$RC" 3 "ctl $cmd with no broker: exit 3"
    cmp_num "$ms" -lt 1300 "ctl --timeout 300 $cmd with no broker gives up within 1.3 s (took $ms ms)"
done

mkdir -m 0700 "$SLUICE_DIR/stale"
stale_socket "$SLUICE_DIR/stale/broker.ipc"
t0=$(date +%s%N)
run ctl_in "$SLUICE_DIR/stale" --timeout 300 ping
ms=$((($(date +%s%N) - t0) / 1000000))
is "$RC" 3 "ctl ping at a stale socket file nothing listens on: exit 3"
cmp_num "$ms" -lt 1300 "... within --timeout 300 + 1 s (took $ms ms)"

# A peer that completes the handshake and never answers: "did not answer in time".
mkdir -m 0700 "$SLUICE_DIR/mute"
fake_server "$SLUICE_DIR/mute/broker.ipc" handshake
t0=$(date +%s%N)
run ctl_in "$SLUICE_DIR/mute" --timeout 300 ping
ms=$((($(date +%s%N) - t0) / 1000000))
is "$RC" 3 "ctl ping at a peer that never replies: exit 3"
cmp_num "$ms" -lt 1300 "... within --timeout 300 + 1 s (took $ms ms)"
like "$ERR" "no reply" "... saying no reply came"

# A listener that never completes the handshake (a hung or wedged broker: the kernel accepts
# the connection, nothing speaks on it). --timeout promises "give up when the broker does not
# accept the connection ... within MS".
mkdir -m 0700 "$SLUICE_DIR/silent"
fake_server "$SLUICE_DIR/silent/broker.ipc" silent
t0=$(date +%s%N)
run ctl_in "$SLUICE_DIR/silent" --timeout 300 ping
ms=$((($(date +%s%N) - t0) / 1000000))
is "$RC" 3 "ctl ping at a listener that never completes the handshake: exit 3"
cmp_num "$ms" -lt 1300 "... within --timeout 300 + 1 s, as --timeout promises (took $ms ms)"

ok "the broker still answers ping" ctl ping
stop_broker
is "$?" 0 "the broker exits 0 on TERM"

done_testing
