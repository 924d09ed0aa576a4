#!/usr/bin/env bash
# A router restarted mid-run keeps no state the broker lacks, so it flips nothing: a group in
# its own queue stays there (even one already below --low, until a whole --min-dwell has
# passed since the restart), no queue is created twice; and what it finds half done (a queue
# created but not yet routed to, after a crash) it finishes without a duplicate.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"

# Queues and routes, the state a restart must not change.
layout() {
    ctl stats --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps([[(q["name"], q["priority"], q["weight"], q["max_inflight"]) for q in d["queues"]],
                  [(g["name"], g["route"]) for g in d["groups"]]]))'
}

start_broker
start_events
# r1's dwell is long enough that it never sends dave back before it is killed, however slow
# the machine (under the sanitizers, three scripts at a time, 2 s passed and it did).
start_router r1 --tick 100ms --min-dwell 20s --max-inflight 4
r1=$ROUTER_PID
ok "r1 leads" wait_leader r1
ctl push bob x -s 1000 >/dev/null
ctl push dave x -s 300 >/dev/null
ctl push carol x -s 50 >/dev/null
ok "bob goes to group.bob" wait_for 2 routed_to bob group.bob
ok "dave goes to group.dave" wait_for 2 routed_to dave group.dave
# dave drains below --low at once; r1 holds it for its dwell (20 s) but is killed before.
ctl purge --group dave >/dev/null
kill -KILL -- "-$r1"
{ wait "$r1"; } 2>/dev/null
before=$(layout)
is "$(group_field dave count)" 0 "dave is below --low in its own queue when r1 dies"

# A dwell of 6 s: under the sanitizers, three scripts at a time, r2's first five rounds have
# taken over 3 s, and dave went back to default before the layout was read.
start_router r2 --tick 100ms --min-dwell 6s --max-inflight 4 --log-level debug
ok "r2 takes the lease over" wait_leader r2 4
_now_us
t_lead=$REPLY
ok "r2 runs rounds" wait_for 3 bash -c "[ \$(grep -c 'event=round cause=tick' '$SLUICE_DIR/r2.log') -ge 5 ]"
_now_us
since_ms=$(((REPLY - t_lead) / 1000))
is "$(layout)" "$before" "after r2's first rounds, queues and routes are as r1 left them"
ok "no decision yet" bash -c "! grep -q 'event=decision' '$SLUICE_DIR/r2.log'"
# r2 leads since before t_lead, so this holds while less than the dwell (6 s) has passed.
if [ "$since_ms" -lt 5000 ]; then
    ok "dave, found in its own queue, is not flipped back before a dwell has passed" routed_to dave group.dave
else
    diag "r2's first rounds took ${since_ms} ms: too slow a machine to check the dwell"
fi
ok "after the dwell, dave returns to default (a decision, not a flip)" wait_for 9 routed_to dave ""
ok "and group.dave is destroyed" wait_for 2 queue_gone group.dave
is "$(route_of bob)" group.bob "bob stays in group.bob throughout"
is "$(grep -c 'event=queue.create name=group.bob' "$SLUICE_DIR/events.log")" 1 \
    "group.bob was created once"

# Half done: a queue created, the route not yet set (a router that died in between).
stop_pgrp "$ROUTER_PID"
ctl queues create group.erin --priority 100 --max-inflight 4 >/dev/null
ctl push erin x -s 500 >/dev/null
start_router r3 --tick 100ms --min-dwell 2s --max-inflight 4
ok "r3 routes erin to the queue that exists" wait_for 4 routed_to erin group.erin
ok "without creating it again" bash -c "! grep -q 'action=create group=erin' '$SLUICE_DIR/r3.log'"
is "$(grep -c 'event=queue.create name=group.erin' "$SLUICE_DIR/events.log")" 1 \
    "group.erin was created once"
is "$(queue_field group.erin max_inflight)" 4 "group.erin keeps its settings"
done_testing
