#!/usr/bin/env bash
# router --policy weights with real processes: a flooding group is slowed in default itself.
# bob (1,000 jobs, there before the router) is lowered to weight 0.25 at the router's first
# round, carol (500, pushed later) within 100 ms of the push that took her over --high; no
# queue is created and no route set. Workers then serve alice's 20 jobs taking about one of
# bob's and one of carol's for every four of alice's. Once bob and carol are purged below
# --low, both return to weight 1 after the dwell. --dry-run decides and logs, and changes
# nothing; a --heavy-weight of 1 or more is a usage error.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"

[ -x "$SLUICE_BIN/worker-pool" ] && [ -x "$SLUICE_BIN/worker" ] ||
    skip_all "bin/worker-pool and bin/worker are not built"

# The broker's groups without what a dry run may change: their weights, routes and counts.
state() {
    ctl stats --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps([[g["name"], g.get("weight"), g["route"], g["count"]] for g in d["groups"]]
                 + [[q["name"] for q in d["queues"]], d.get("leader")], sort_keys=True))'
}

# Succeeds when GROUP's weight is W (as numbers: ctl may print 1 or 1.0).
weight_is() {
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1] or "nan") == float(sys.argv[2]) else 1)' \
        "$(group_field "$1" weight)" "$2"
}

start_broker
start_events

run "$SLUICE_BIN/router" --policy weights --heavy-weight 1 --once
is "$RC" 2 "--heavy-weight 1 is a usage error"
like "$ERR" "--heavy-weight: '1' is not a number from 0.01 to 0.999" "which names the range"

ctl push bob b -s 1000 >/dev/null
ctl push alice a -s 20 >/dev/null
ok "bob starts at weight 1" weight_is bob 1

# --dry-run: the decision logged, nothing changed.
before=$(state)
run "$SLUICE_BIN/router" --policy weights --dry-run --once --name dry1 --priority 5
is "$RC" 0 "router --policy weights --dry-run --once exits 0"
like "$ERR" 'event=option.unused option=priority reason="policy weights creates no queue"' \
    "it says that --priority is not used"
like "$ERR" 'event=decision action=weight group=bob count=1000 weight=0.25 reason="count 1000 > high 100" dry_run=1' \
    "it logs the weight it would give bob, with the reason"
is "$(state)" "$before" "the broker's weights, routes and queues are unchanged"

start_router router --policy weights --min-dwell 1s
ok "the router leads" wait_leader router
ok "bob's weight is lowered to 0.25" wait_for 3 weight_is bob 0.25
ok "with the router's reason" \
    wait_for 2 grep -Eq 'event=group.weight .*group=bob .*reason="count 1000 > high 100"' \
    "$SLUICE_DIR/events.log"
is "$(route_of bob)" "" "bob is not routed anywhere"
is "$(queue_field group.bob name)" "" "no queue group.bob is created"
ok "alice keeps weight 1" weight_is alice 1

# The reaction: from the push that took carol over --high (the broker's group.high) to her
# new weight (the broker's group.weight), both stamped by the broker's clock; the tick is 1 s.
ctl push carol c -s 500 >/dev/null
ok "carol's weight is lowered to 0.25" wait_for 3 weight_is carol 0.25
react_ms=$(python3 - "$SLUICE_DIR/events.log" <<'PY'
import re, sys, datetime
ts = {}
for line in open(sys.argv[1]):
    m = re.match(r'ts=(\S+)Z event=(\S+)(.*)', line)
    if not m or " group=carol " not in m.group(3) + " ":
        continue
    t = datetime.datetime.fromisoformat(m.group(1))
    if m.group(2) in ("group.high", "group.weight"):
        ts.setdefault(m.group(2), t)
print(int((ts["group.weight"] - ts["group.high"]).total_seconds() * 1000) if len(ts) == 2 else "missing")
PY
)
diag "carol's weight lowered ${react_ms} ms after her push crossed --high"
cmp_num "$react_ms" -le 100 "carol is lowered within 100 ms of the push"

# Two workers record the order they take the jobs in. alice (weight 1) takes four turns to
# bob's one and carol's one (0.25 each): about 5 of each of theirs while alice's 20 run
# (at weight 1 for all, about 20 each). Each job takes 20 ms, so that bob's and carol's 1,500
# cannot all be done (and their weights return to 1) before alice's last is seen, however
# slowly this machine polls: that would take 15 s.
spawn pool "$SLUICE_BIN/worker-pool" -n 2 \
    --handler "exec:echo \$SLUICE_GROUP >>'$SLUICE_DIR/order'; sleep 0.02"
alice_done() {
    [ "$(group_field alice done)" = 20 ]
}
ok "all of alice's 20 jobs are done" wait_for 20 alice_done
ok "bob is still at 0.25 while heavy" weight_is bob 0.25
stop_pgrp "$SPAWNED_PID"
read -r bob_before carol_before < <(python3 - "$SLUICE_DIR/order" <<'PY'
import sys
order = [l.strip() for l in open(sys.argv[1])]
last = max(i for i, g in enumerate(order) if g == "alice")
print(order[:last].count("bob"), order[:last].count("carol"))
PY
)
diag "bob had $bob_before and carol $carol_before jobs done before alice's last"
cmp_num "${bob_before:-99}" -le 10 "bob took at most 10 turns to alice's 20"
cmp_num "${carol_before:-99}" -le 10 "carol took at most 10 turns to alice's 20"

# Drained below --low (10): back to 1 once the dwell (1 s) is over.
ctl purge --group bob >/dev/null
ctl purge --group carol >/dev/null
ok "bob returns to weight 1" wait_for 5 weight_is bob 1
ok "carol returns to weight 1" wait_for 5 weight_is carol 1
ok "with the reason count < low" \
    grep -Eq 'event=group.weight .*group=bob .*reason="count [0-9] < low 10"' "$SLUICE_DIR/events.log"
is "$(route_of bob)" "" "bob was never routed"
done_testing
