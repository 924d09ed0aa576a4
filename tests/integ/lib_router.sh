# Sourced by the router's integration scripts (after lib.sh): starting routers, tailing the
# broker's events, reading state.
#
#   start_router NAME [ARGS...]   spawns "$SLUICE_BIN/router" --name NAME ARGS (log in
#                                 $SLUICE_DIR/NAME.log); sets ROUTER_PID (its process group)
#   wait_leader NAME [SECS]       until `ctl routes` names NAME as the leader (default 5 s)
#   leader_name                   prints the leader's name ("" for none)
#   start_events                  spawns `ctl events` into $SLUICE_DIR/events.log and waits until
#                                 it receives events (probing with a queue created and destroyed)
#   route_of GROUP                prints GROUP's route ("" for none)
#   queue_field QUEUE FIELD       prints a field of QUEUE from stats ("" when it does not exist)
#   group_field GROUP FIELD       prints a field of GROUP from stats
#   decisions LOG                 prints how many decisions LOG holds (event=decision lines)

start_router() {
    local name=$1
    shift
    spawn "$name" "$SLUICE_BIN/router" --name "$name" "$@"
    ROUTER_PID=$SPAWNED_PID
}

leader_name() {
    "$SLUICE_BIN/ctl" routes --json | python3 -I -S -c '
import json, sys
l = json.load(sys.stdin).get("leader")
print(l["name"] if l else "")'
}

_is_leader() {
    [ "$(leader_name)" = "$1" ]
}

wait_leader() {
    wait_for "${2:-5}" _is_leader "$1"
}

_events_probe() {
    "$SLUICE_BIN/ctl" queues create events-probe >/dev/null 2>&1
    "$SLUICE_BIN/ctl" queues destroy events-probe >/dev/null 2>&1
    grep -q 'event=queue.destroy name=events-probe' "$SLUICE_DIR/events.log"
}

start_events() {
    spawn events "$SLUICE_BIN/ctl" events
    EVENTS_PID=$SPAWNED_PID
    wait_for 5 _events_probe || bail_out "ctl events saw no event within 5 s"
}

route_of() {
    "$SLUICE_BIN/ctl" stats --json | python3 -I -S -c '
import json, sys
for g in json.load(sys.stdin)["groups"]:
    if g["name"] == sys.argv[1]:
        print(g["route"] or "")' "$1"
}

queue_field() {
    "$SLUICE_BIN/ctl" stats --json | python3 -I -S -c '
import json, sys
for q in json.load(sys.stdin)["queues"]:
    if q["name"] == sys.argv[1]:
        print(q[sys.argv[2]])' "$1" "$2"
}

group_field() {
    "$SLUICE_BIN/ctl" stats --json | python3 -I -S -c '
import json, sys
for g in json.load(sys.stdin)["groups"]:
    if g["name"] == sys.argv[1]:
        print(g[sys.argv[2]])' "$1" "$2"
}

decisions() {
    grep -c 'event=decision ' "$1" 2>/dev/null || true
}

# Succeeds when GROUP's route is QUEUE.
routed_to() {
    [ "$(route_of "$1")" = "$2" ]
}

# Succeeds when QUEUE does not exist.
queue_gone() {
    [ -z "$(queue_field "$1" name)" ]
}
