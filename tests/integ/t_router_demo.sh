#!/usr/bin/env bash
# The original demo with real processes: worker-pool -n 8 --handler sleep:10-20 and a router;
# bob pushes 1,000 jobs, alice 20. Within 100 ms bob is routed to group.bob at priority 100;
# every one of alice's jobs is done before bob's backlog is gone; when bob drops below 10 its
# route returns to default, and group.bob is destroyed once it is empty.
#
# It watches an ordering in time (alice done while bob still waits), which a test running beside
# it can blur (bob was empty when alice's last job was seen done, once, two tests at a time):
# tests/run: alone
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"

[ -x "$SLUICE_BIN/worker-pool" ] && [ -x "$SLUICE_BIN/worker" ] ||
    skip_all "bin/worker-pool and bin/worker are not built"

workers_up() {
    [ "$(ctl stats --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))')" -ge 8 ]
}

start_broker
start_events
spawn pool "$SLUICE_BIN/worker-pool" -n 8 --handler sleep:10-20
ok "worker-pool's 8 workers are registered" wait_for 10 workers_up
start_router router
ok "the router leads" wait_leader router

ctl push bob x -s 1000 >/dev/null
ctl push alice y -s 20 >/dev/null
ok "bob is routed to group.bob" wait_for 2 routed_to bob group.bob
is "$(queue_field group.bob priority)" 100 "group.bob has priority 100"

# How fast: from the push that took bob over 100 (the broker's group.high) to the route (the
# broker's route.set), both stamped by the broker's clock.
react_ms=$(python3 - "$SLUICE_DIR/events.log" <<'PY'
import re, sys, datetime
ts = {}
for line in open(sys.argv[1]):
    m = re.match(r'ts=(\S+)Z event=(\S+)(.*)', line)
    if not m:
        continue
    t = datetime.datetime.fromisoformat(m.group(1))
    if m.group(2) == "group.high" and " group=bob " in m.group(3) + " ":
        ts.setdefault("high", t)
    if m.group(2) == "route.set" and " group=bob " in m.group(3) + " ":
        ts.setdefault("route", t)
print(int((ts["route"] - ts["high"]).total_seconds() * 1000) if len(ts) == 2 else "missing")
PY
)
diag "bob routed ${react_ms} ms after its push crossed --high"
cmp_num "$react_ms" -le 100 "bob is routed within 100 ms of the push"

# alice done while bob still has a backlog: one stats snapshot answers both.
alice_done_bob_left() {
    ctl stats --json | python3 -c '
import json, sys
g = {x["name"]: x for x in json.load(sys.stdin)["groups"]}
a, b = g["alice"], g["bob"]
if a["count"] == 0 and a["done"] == 20:
    print(b["count"])
    sys.exit(0)
sys.exit(1)' >"$SLUICE_DIR/bob_left"
}
ok "all of alice's 20 jobs are done" wait_for 10 alice_done_bob_left
bob_left=$(cat "$SLUICE_DIR/bob_left")
diag "bob had $bob_left jobs left when alice's last was done"
cmp_num "${bob_left:-0}" -gt 0 "bob's backlog is not gone when alice is done"

ok "bob returns to default" wait_for 20 routed_to bob ""
ok "with a count below 10 (the reason the router gave)" \
    grep -Eq 'event=route.unset group=bob .*reason="count [0-9] < low 10"' "$SLUICE_DIR/events.log"
ok "group.bob is destroyed" wait_for 5 queue_gone group.bob
ok "after it emptied (nothing moved by the destroy)" \
    grep -q 'event=queue.destroy name=group.bob moved=0' "$SLUICE_DIR/events.log"
ok "every job of bob is done" wait_for 10 bash -c "[ \"\$(\"$SLUICE_BIN/ctl\" stats --json | python3 -c 'import json,sys; print([g[\"done\"] for g in json.load(sys.stdin)[\"groups\"] if g[\"name\"] == \"bob\"][0])')\" = 1000 ]"
done_testing
