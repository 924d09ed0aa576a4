#!/usr/bin/env bash
# The router leaves a route a person set alone (README, router), also when the person sets it
# between the router's view and its change: every route change the router makes carries the
# route it saw (`expect`), and the broker refuses it with `conflict` when the route changed
# since (PROTOCOL.md, route.set).
#
# The race, made deterministic: a group crosses --high (the broker tells the router) while the
# router is stopped (SIGSTOP); a person routes the group elsewhere; the router, continued,
# reacts on what it last saw (the group in default) and must not undo the person's route.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"

ROUNDS=20

start_broker
ctl queues create special >/dev/null || bail_out "cannot create queue special"

# A tick of an hour: the router's only snapshot is its first, so a reaction always decides on
# what it saw before the person's change. A long lease, so that the stops cannot lose it.
start_router r1 --high 10 --tick 1h --lease-ttl 60s --log-level debug
r1=$ROUTER_PID
ok "r1 leads" wait_leader r1
ok "r1 has taken its first snapshot" wait_for 5 grep -q 'event=round cause=tick' "$SLUICE_DIR/r1.log"

# reacted G: the router has carried out (or been refused) its route change of G.
reacted() {
    grep -q "event=decision action=route group=$1 " "$SLUICE_DIR/r1.log"
}

kept=0
for i in $(seq 1 "$ROUNDS"); do
    g=gK$i
    kill -STOP "$r1"
    ctl push "$g" x -s 20 >/dev/null || diag "push $g failed"
    ctl routes set "$g" special >/dev/null || diag "routes set $g failed"
    kill -CONT "$r1"
    wait_for 5 reacted "$g" || diag "r1 did not react to $g within 5 s"
    route=$(route_of "$g")
    if [ "$route" = special ]; then
        kept=$((kept + 1))
    else
        diag "$g: the router moved it to '$route'"
    fi
done
is "$kept" "$ROUNDS" "a route set after the router's view survives its reaction ($ROUNDS of $ROUNDS)"
is "$(grep -c 'event=decision action=route group=gK[0-9]* .*result=conflict' "$SLUICE_DIR/r1.log")" \
    "$ROUNDS" "each of the router's stale changes was refused as a conflict, and logged"
ok "... at level info, not as a failure" \
    grep -q 'level=info .*event=decision action=route group=gK1 .*result=conflict msg="group gK1 is routed to special, not to default' \
    "$SLUICE_DIR/r1.log"
is "$(json "$(ctl stats --json)" 'd["queues"][[q["name"] for q in d["queues"]].index("special")]["ready"]')" \
    $((ROUNDS * 20)) "every job of those groups is in special"
ok "r1 still leads" _is_leader r1

# --- the broker's compare-and-set, as any client can use it --------------------------------

url="ipc://$SLUICE_DIR/broker.ipc"
# route.set bob special, expecting bob in default (it is: bob is new)
req=$(mp_map 4)$(mp_str op)$(mp_str route.set)$(mp_str group)$(mp_str bob)
req+=$(mp_str queue)$(mp_str special)$(mp_str expect)$(mp_str "")
run "$SLUICE_TESTBIN/sl-send" "$url" --hex "$req"
like "$OUT" '"ok": ?true' "route.set with the right expect: done"
is "$(route_of bob)" special "... bob is in special"
# the same again, now stale
run "$SLUICE_TESTBIN/sl-send" "$url" --hex "$req"
like "$OUT" '"err": ?"conflict"' "route.set with a stale expect: conflict"
like "$OUT" 'group bob is routed to special, not to default' "... saying where the group is"
# route.unset bob, expecting group.bob: stale
req=$(mp_map 3)$(mp_str op)$(mp_str route.unset)$(mp_str group)$(mp_str bob)
req+=$(mp_str expect)$(mp_str group.bob)
run "$SLUICE_TESTBIN/sl-send" "$url" --hex "$req"
like "$OUT" '"err": ?"conflict"' "route.unset with a stale expect: conflict"
is "$(route_of bob)" special "... bob stays in special"
ok "a person's change (no expect) is unconditional" ctl routes unset bob
is "$(route_of bob)" "" "... bob is back in default"

done_testing
