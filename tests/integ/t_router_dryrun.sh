#!/usr/bin/env bash
# router --dry-run decides and logs, and changes nothing in the broker: no queue, no route, no
# lease (so a real router is not kept from leading); --once runs one round and exits.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"

# The broker's state without what changes by itself: uptime, the lease's countdown and how
# long each group's oldest job has waited.
state() {
    ctl stats --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
for g in d["groups"]:
    g.pop("oldest_ready_ms", None)
print(json.dumps([d["queues"], d["groups"], d.get("leader")], sort_keys=True))'
}

start_broker
start_events
ctl queues create group.zed >/dev/null   # an own queue nobody routes to: a real router destroys it
ctl push bob x -s 1000 >/dev/null
ctl push alice y -s 20 >/dev/null
before=$(state)
nev=$(wc -l <"$SLUICE_DIR/events.log")

run "$SLUICE_BIN/router" --dry-run --once --name dry1
is "$RC" 0 "router --dry-run --once exits 0"
like "$ERR" 'event=decision action=create group=bob count=1000 queue=group.bob priority=100 weight=1 max_inflight=0 reason="[^"]*" dry_run=1' \
    "it logs the queue it would create for bob"
like "$ERR" 'event=decision action=route group=bob count=1000 queue=group.bob reason="count 1000 > high 100" dry_run=1' \
    "it logs the route it would set, with the reason"
like "$ERR" 'event=decision action=destroy queue=group.zed reason="empty and no longer routed to" dry_run=1' \
    "it logs the queue it would destroy"
if [[ "$ERR" == *"event=leader."* ]]; then
    fail "a dry run takes no lease" "$ERR"
else
    pass "a dry run takes no lease"
fi
is "$(state)" "$before" "the broker's queues, groups and leader are unchanged"

# As a daemon, over several rounds, with a real router standing by.
start_router dry2 --dry-run --tick 100ms
ok "the dry run decides round after round" \
    wait_for 5 bash -c "[ \$(grep -c 'action=route group=bob .*dry_run=1' '$SLUICE_DIR/dry2.log') -ge 3 ]"
is "$(state)" "$before" "still nothing changed after several rounds"
is "$(leader_name)" "" "no router holds the lease"
is "$(tail -n +"$((nev + 1))" "$SLUICE_DIR/events.log")" "" "the event stream saw no event since"


# A real router leads while the dry run runs.
start_router real --tick 100ms
ok "a real router next to the dry run leads" wait_leader real
ok "and routes bob" wait_for 2 routed_to bob group.bob
ok "and destroys group.zed" wait_for 2 queue_gone group.zed
done_testing
