#!/usr/bin/env bash
# Two routers on one broker: only the lease holder acts, the other stands by; kill -9 of the
# leader and the standby acts within 3 s; a router stopped with TERM releases the lease, so a
# standby takes over at once; `ctl routes` names the leader throughout.
#
# The takeover is timed, which another test running beside it can push past 3 s:
# tests/run: alone
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"

start_broker
start_events

start_router r1 --tick 200ms
r1=$ROUTER_PID
ok "r1 leads (ctl routes names it)" wait_leader r1
start_router r2 --tick 200ms --log-level debug
r2=$ROUTER_PID
ok "r2 stands by" wait_for 5 grep -q 'event=leader.standby name=r2' "$SLUICE_DIR/r2.log"
is "$(leader_name)" r1 "r1 still leads with r2 running"

ctl push bob x -s 1000 >/dev/null
ok "bob goes to group.bob" wait_for 2 routed_to bob group.bob
# Both routers hear dave cross --high; only the leader acts.
ctl push dave z -s 300 >/dev/null
ok "dave goes to group.dave" wait_for 2 routed_to dave group.dave
ok "the standby r2 heard dave's crossing too, and let it be" \
    wait_for 2 grep -q 'event=group.high group=dave count=300 react=0' "$SLUICE_DIR/r2.log"
is "$(decisions "$SLUICE_DIR/r2.log")" 0 "the standby r2 decided nothing"
is "$(decisions "$SLUICE_DIR/r1.log")" 4 "the leader r1 made the 4 decisions (create and route, twice)"
lease1=$(ctl routes --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"]["lease"])')

# kill -9 of the leader: the lease lapses (2 s), r2 takes it and acts.
kill -KILL -- "-$r1"
{ wait "$r1"; } 2>/dev/null
_now_us
t0=$REPLY
ctl push carol y -s 500 >/dev/null
ok "r2 routes carol within 3 s of r1's death" wait_for 3 routed_to carol group.carol
_now_us
took_ms=$(((REPLY - t0) / 1000))
diag "r2 acted ${took_ms} ms after kill -9 of r1"
cmp_num "$took_ms" -le 3000 "the takeover took at most 3 s"
is "$(leader_name)" r2 "ctl routes names r2 as the leader"
lease2=$(ctl routes --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"]["lease"])')
cmp_num "$lease2" -gt "$lease1" "the new lease's number is greater than the old one's"
ok "r2 logged that it took the lease" grep -q 'event=leader.acquire name=r2' "$SLUICE_DIR/r2.log"
ok "r2's decisions carry its lease" grep -q "event=decision action=route group=carol .*lease=$lease2 result=ok" "$SLUICE_DIR/r2.log"
ok "the event stream shows carol's route with r2's lease and its reason" \
    grep -q "event=route.set group=carol queue=group.carol .*lease=$lease2 reason=\"count 500 > high 100\"" "$SLUICE_DIR/events.log"

# TERM releases the lease: a standby takes over at once, not after the lapse.
start_router r3 --tick 200ms
ok "r3 stands by" wait_for 5 grep -q 'event=leader.standby name=r3' "$SLUICE_DIR/r3.log"
_now_us
t0=$REPLY
stop_pgrp "$r2"
is "$?" 0 "r2 exits 0 on TERM"
ok "r2 released its lease" grep -q 'event=leader.release name=r2' "$SLUICE_DIR/r2.log"
ok "r3 leads within 1 s" wait_leader r3 1
_now_us
diag "r3 took over $(((REPLY - t0) / 1000)) ms after TERM to r2"
ok "the event stream shows the release and the new holder" \
    grep -q 'event=lease.release name=r2' "$SLUICE_DIR/events.log"

# A route someone set is not the router's to move: erin, routed by hand to a capped queue and
# flooded at once (before any tick has seen the route), stays there; the broker tells the leader
# only of groups with no route crossing --high.
ctl queues create capped --max-inflight 2 >/dev/null
ctl routes set erin capped >/dev/null
ctl push erin e -s 400 >/dev/null
ctl push frank f -s 300 >/dev/null
ok "frank, with no route, still goes to group.frank" wait_for 3 routed_to frank group.frank
is "$(route_of erin)" capped "erin stays on the route set by hand"
ok "no group.high event for erin" bash -c "! grep -q 'event=group.high group=erin' '$SLUICE_DIR/events.log'"

# --once while another router leads: nothing done, exit 1, said why.
run "$SLUICE_BIN/router" --once --name r4
is "$RC" 1 "router --once exits 1 while another router leads"
like "$ERR" 'event=once.skipped reason="another router holds the lease"' "and says why"
is "$(leader_name)" r3 "r3 still leads"
done_testing
