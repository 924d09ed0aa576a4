#!/usr/bin/env bash
# ctl and the fair order inside queues, against a real broker: `ctl queues create/update
# --order groups|fifo` and `ctl groups weight GROUP WEIGHT` reach the broker (the order reserve
# hands jobs out in changes with them); bad values are refused by ctl (exit 2, saying why,
# nothing sent); `ctl queues`, `ctl stats` and `ctl stats --json` show each queue's order and
# groups with ready jobs, and each group's weight, share of recent dispatches and the age of its
# oldest ready job (`-` when there is none).
#
# The order of a queue's jobs is read by reserving them raw with sl-send as a worker of its own
# that then disconnects, as t_semantics.sh does. Its jobs go back to the head of their queue in
# the order they were reserved, which is another order than their arrival: every reading is of
# jobs pushed afresh.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"

command -v python3 >/dev/null || skip_all "python3 is needed to read JSON"
send=$SLUICE_TESTBIN/sl-send
url=ipc://$SLUICE_DIR/broker.ipc

# reserve_order Q: the payloads of queue Q's ready jobs in the order reserve hands them out,
# comma separated.
reserve_order() {
    local rep
    rep=$("$send" "$url" --hex "$(mp_op reserve worker str "reader$BASHPID" max uint 1000 \
        from hex "$(mp_array 1)$(mp_str "$1")")") || return 1
    json "$rep" '",".join(bytes.fromhex(j["payload"][4:]).decode() for j in d["jobs"])'
}

# st EXPR: EXPR over the current `ctl stats --json`.
st() {
    json "$(ctl stats --json)" "$1"
}

# fresh Q GROUP:PAYLOAD...: empties queue Q, then pushes each payload for its group, in order.
fresh() {
    local q=$1 gp
    shift
    ctl purge --queue "$q" >/dev/null || return 1
    for gp in "$@"; do
        ctl push "${gp%%:*}" "${gp#*:}" -q "$q" >/dev/null || return 1
    done
}

# refused WHAT ARGS...: `ctl ARGS` exits 2 and says WHAT (text) on stderr, nothing on stdout.
refused() {
    local what=$1
    shift
    run ctl "$@"
    if [ "$RC" -eq 2 ] && [[ "$ERR" == *"$what"* ]] && [ -z "$OUT" ]; then
        pass "ctl $* is refused (exit 2: $what)"
    else
        fail "ctl $* is refused (exit 2: $what)" "exit $RC" "$ERR"
    fi
}

start_broker

# --- bad values: refused by ctl, nothing sent -------------------------------------------------

refused "--order 'lifo': the order is groups (each group in turn) or fifo (arrival order)" \
    queues create q1 --order lifo
refused "--order '': the order is groups" queues create q1 --order ''
refused "--order 'FIFO'" queues update default --order FIFO
refused "nothing to change: give --priority, --weight, --max-inflight, --retry-base, --retry-max, --retry-jitter or --order" \
    queues update default
for w in 0 0.009 1000.5 1001 +2 1e2 0x10 .5 5. ' 2' 2x abc ''; do
    refused "weight '$w' is not a number from 0.01 to 1000" groups weight bob "$w"
done
refused "unknown option: '-1'" groups weight bob -1
refused "group name 'b b' is invalid" groups weight 'b b' 2
refused "missing arguments" groups weight bob
is "$(st '[q["name"] for q in d["queues"]]')" '["default"]' "no queue was created"
is "$(st '[g["name"] for g in d["groups"]]')" '[]' "no group was created"
run ctl groups weight --help
is "$RC" 0 "ctl groups weight --help"
like "$OUT" "0.01-1000" "says the range"

# --- a queue's order --------------------------------------------------------------------------

ok "create a queue with --order fifo" ctl queues create bulk --order fifo
is "$(st '[q["order"] for q in d["queues"] if q["name"] == "bulk"][0]')" fifo \
    "stats --json: bulk's order is fifo"
is "$(st '[q["order"] for q in d["queues"] if q["name"] == "default"][0]')" groups \
    "default's is groups"
run ctl queues
like "$OUT" $'\nQUEUE +PRIO +WEIGHT .* PUSHED +ORDER +GROUPS_READY(\n|$)' \
    "ctl queues has ORDER and GROUPS_READY columns, last"
like "$OUT" $'\nbulk +10 +1 .* fifo +0(\n|$)' "bulk: fifo"
like "$OUT" $'\ndefault +10 +1 .* groups +0(\n|$)' "default: groups"

# Arrival order: bob's three jobs, then one of eve's.
ok "push bob's 3 jobs, then eve's 1" fresh bulk bob:b1 bob:b2 bob:b3 eve:e1
# Nothing dispatched yet: no share to show.
is "$(st '[g["share"] for g in d["groups"]]')" "[null, null]" "stats --json: share null"
run ctl stats
like "$OUT" $'\nbob +- +3 +3 .* 1 +- +[0-9.]+ m?s +- +- +0(\n|$)' \
    "ctl stats: SHARE -, OLDEST_READY a duration (no RATE, BURST, HOLDS 0)"
is "$(reserve_order bulk)" "b1,b2,b3,e1" "fifo: the jobs come in arrival order"
is "$(st '[q["groups_ready"] for q in d["queues"] if q["name"] == "bulk"][0]')" 2 \
    "two groups have jobs ready in bulk"
run ctl queues
like "$OUT" $'\nbulk .* 2\n' "ctl queues: GROUPS_READY 2 for bulk"

ok "update it to --order groups" ctl queues update bulk --order groups
is "$(st '[q["order"] for q in d["queues"] if q["name"] == "bulk"][0]')" groups \
    "stats --json: bulk's order is groups"
fresh bulk bob:b1 bob:b2 bob:b3 eve:e1
order=$(reserve_order bulk)
is "$order" "b1,e1,b2,b3" "groups: eve's job comes in the first turn, before bob's others"

ok "and back to fifo" ctl queues update bulk --order fifo
fresh bulk bob:b1 bob:b2 bob:b3 eve:e1
is "$(reserve_order bulk)" "b1,b2,b3,e1" "arrival order again"
ok "back to groups, and other settings beside" ctl queues update bulk --order groups -p 5

# --- a group's weight -------------------------------------------------------------------------

run ctl groups weight bob 2
is "$RC" 0 "ctl groups weight bob 2"
is "$OUT" "set group bob's weight to 2" "says so"
ok "ctl groups weight eve 0.25" ctl groups weight eve 0.25
ok "ctl groups weight amy 1000 (a group not seen before)" ctl groups weight amy 1000
is "$(st '{g["name"]: g["weight"] for g in d["groups"]}')" \
    '{"bob": 2, "eve": 0.25, "amy": 1000}' "stats --json: the weights, as decimal numbers"
# bob (weight 2) has six jobs, eve (weight 0.25) one: bob gets two jobs a turn, eve one every
# fourth turn.
ok "push bob's 6 jobs, then eve's 1" fresh bulk bob:b1 bob:b2 bob:b3 bob:b4 bob:b5 bob:b6 eve:e1
order=$(reserve_order bulk)
first4=$(cut -d, -f1-4 <<<"$order")
like "$first4" '^b1,b2,' "weight 2: two of bob's jobs in a turn ($order)"
if [[ "$first4" == *e1* ]]; then
    fail "weight 0.25: eve waits more than a turn of bob's ($order)"
else
    pass "weight 0.25: eve waits more than a turn of bob's ($order)"
fi

# --- ctl stats: weight, share, oldest ready ---------------------------------------------------

run ctl stats
is "$RC" 0 "ctl stats"
like "$OUT" \
    $'\nGROUP +ROUTE +COUNT +READY .* PUSHED +WEIGHT +SHARE +OLDEST_READY +RATE +BURST +HOLDS(\n|$)' \
    "the groups table has WEIGHT, SHARE, OLDEST_READY, then RATE, BURST, HOLDS, last"
like "$OUT" $'\nbob +- +6 +6 .* 2 +[0-9.]+% +[0-9.]+ m?s +- +- +0(\n|$)' \
    "bob: weight 2, a share of the jobs dispatched, its oldest ready job's age"
like "$OUT" $'\neve +- +1 +1 .* 0\\.25 +[0-9.]+% +[0-9.]+ m?s +- +- +0(\n|$)' "eve: weight 0.25"
like "$OUT" $'\namy +- +0 +0 .* 1000 +0\\.0% +- +- +- +0(\n|$)' \
    "amy: none of its jobs dispatched, none ready: 0% and -"
like "$OUT" $'\nQUEUE +PRIO +WEIGHT .* ORDER +GROUPS_READY(\n|$)' \
    "the queues table has ORDER and GROUPS_READY"
like "$OUT" $'\nbulk +5 +1 .* groups +[0-9]+(\n|$)' "bulk: priority 5, still groups"

# share: of every job dispatched lately (the reserves above), bob's and eve's.
share_sum=$(st 'round(sum(g["share"] for g in d["groups"] if g["share"] is not None), 6)')
is "$share_sum" 1.0 "the shares of the groups sum to 1"
is "$(st '[g["share"] for g in d["groups"] if g["name"] == "amy"][0]')" 0 \
    "amy's share is 0 (none of its jobs was dispatched)"
oldest_ok() {
    [ "$(st '[g for g in d["groups"] if g["name"] == "bob"][0]["oldest_ready_ms"] >= 50')" = true ]
}
ok "bob's oldest_ready_ms grows while it waits" wait_for 10 oldest_ok
is "$(st '[g["oldest_ready_ms"] for g in d["groups"] if g["name"] == "amy"][0]')" null \
    "amy's oldest_ready_ms is null (none ready)"

# --- the metrics say the same -----------------------------------------------------------------

run ctl metrics
like "$OUT" $'\nsluice_queue_order\\{queue="bulk",order="groups"\\} 1\n' "metrics: bulk's order"
like "$OUT" $'\nsluice_queue_groups_ready\\{queue="bulk"\\} 2\n' "metrics: groups ready in bulk"
like "$OUT" $'\nsluice_group_weight\\{group="eve"\\} 0.25\n' "metrics: eve's weight"
like "$OUT" $'\nsluice_group_oldest_ready_seconds\\{group="bob"\\} [0-9.]+\n' \
    "metrics: bob's oldest ready job"
if [[ "$OUT" == *'sluice_group_oldest_ready_seconds{group="amy"}'* ]]; then
    fail "metrics: no oldest ready sample for amy"
else
    pass "metrics: no oldest ready sample for amy"
fi

# --- the broker refuses what ctl would --------------------------------------------------------

run "$send" "$url" --hex "$(mp_op group.weight group str bob weight uint 1001)"
like "$OUT" '"err": ?"bad_request"' "the broker itself refuses a weight of 1001"

done_testing
