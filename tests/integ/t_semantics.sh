#!/usr/bin/env bash
# Broker semantics through ctl against a real broker (PROTOCOL.md): a route change moves the
# group's ready jobs, order kept; queues destroy refuses a queue that holds jobs (not_empty) and
# --force moves them to default; flush keeps every job and resets routes and statistics; purge
# deletes only what it names; limits answer queue_full / too_large and change nothing; names
# outside the rules are refused by ctl (exit 2) and by the broker (bad_request).
#
# No op lists ready jobs, so order is read by reserving a queue's jobs raw with sl-send (a
# worker of its own; the jobs go back to the head of their queue when its connection closes),
# and each part that does so runs on a broker of its own.
# It runs for a minute or more under the sanitizers, so it starts before the short ones:
# tests/run: long
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

send=$SLUICE_TESTBIN/sl-send
url=ipc://$SLUICE_DIR/broker.ipc

# queue_order Q: the payloads of queue Q's ready jobs in the order reserve hands them out,
# comma separated (reserves up to 1,000 as a new worker that then disconnects).
queue_order() {
    local rep
    # A name of its own ($BASHPID: this runs in a command substitution, where a counter
    # would not survive).
    rep=$("$send" "$url" --hex "$(mp_op reserve worker str "reader$BASHPID" max uint 1000 \
        from hex "$(mp_array 1)$(mp_str "$1")")") || return 1
    json "$rep" '",".join(bytes.fromhex(j["payload"][4:]).decode() for j in d["jobs"])'
}

# order Q ORDER: sets queue Q's order (groups: the groups in turn; fifo: arrival order).
order() {
    local rep
    rep=$("$send" "$url" --hex "$(mp_op queue.update name str "$1" order str "$2")") || return 1
    [ "$(json "$rep" 'd.get("ok")')" = true ]
}

# st EXPR: EXPR over the current `ctl stats --json`.
st() {
    json "$(ctl stats --json)" "$1"
}

# Per queue "name:ready", in stats order.
queues_ready() {
    st '" ".join("%s:%d" % (q["name"], q["ready"]) for q in d["queues"])'
}

# Per group "name:count:ready:route", in stats order.
groups_view() {
    st '" ".join("%s:%d:%d:%s" % (g["name"], g["count"], g["ready"], g["route"]) for g in d["groups"])'
}

# The parts of stats a refused request must not change.
snapshot() {
    st '[d["broker"][k] for k in ("jobs", "bytes", "next_id")] + [(q["name"], q["ready"], q["pushed"]) for q in d["queues"]] + [(g["name"], g["count"], g["pushed"], g["route"]) for g in d["groups"]]'
}

# end_part NAME: stops this part's broker, which must exit 0, and keeps its log as
# broker-NAME.log.
end_part() {
    stop_broker
    is "$?" 0 "the broker of part '$1' exits 0 on TERM"
    retire_pgrp "$BROKER_PID" "broker-$1"
}

# push_lines GROUP [CTL PUSH OPTIONS...] < lines: one job per line.
push_lines() {
    "$SLUICE_BIN/ctl" push "$1" --file - "${@:2}" >/dev/null
}

# --- route change moves ready jobs, order kept ----------------------------------------------

start_broker
ctl queues create q1 >/dev/null
ctl queues create q2 >/dev/null
# Arrival order across groups, so that the order of the moved jobs shows in one list.
ok "default's order can be set to fifo" order default fifo
ok "q1's order can be set to fifo" order q1 fifo
printf 'x1\nx2\n' | push_lines other --queue q1
printf 'g0\ng1\ng2\ng3\ng4\n' | push_lines g
printf 'h0\nh1\nh2\n' | push_lines h
printf 'g5\ng6\ng7\ng8\ng9\n' | push_lines g
printf 'pinned\n' | push_lines g --queue q2
is "$(queues_ready)" "default:13 q1:2 q2:1" "set-up: default 13 (g 10, h 3), q1 2, q2 1"

run ctl routes set g q1
is "$RC" 0 "routes set g q1 exits 0"
like "$OUT" "moved 10 ready jobs" "routes set g q1 moves g's 10 ready jobs from default"
is "$(queues_ready)" "default:3 q1:12 q2:1" "after the route change: default 3, q1 12, q2 1 (the explicit push stays)"
is "$(groups_view)" "other:2:2:None g:11:11:q1 h:3:3:None" "group g is routed to q1; counts unchanged"
run ctl routes list --json
is "$(json "$OUT" 'd["routes"]')" '[{"group": "g", "queue": "q1"}]' "routes list shows g -> q1"
run ctl push g g10
like "$OUT" '\(queue q1\)' "a new push of g goes to q1, its route"
is "$(queue_order q1)" "x1,x2,g0,g1,g2,g3,g4,g5,g6,g7,g8,g9,g10" \
    "q1 holds its own jobs, then g's moved jobs in push order, then the new one"

run ctl routes unset g
like "$OUT" "moved 11 ready jobs" "routes unset g moves g's 11 ready jobs back to default"
is "$(queues_ready)" "default:14 q1:2 q2:1" "after unset: default 14, q1 2, q2 1"
is "$(queue_order default)" "h0,h1,h2,g0,g1,g2,g3,g4,g5,g6,g7,g8,g9,g10" \
    "default: h's jobs, then g's appended in their order"
is "$(queue_order q1)" "x1,x2" "q1 keeps the jobs of other groups"
is "$(queue_order q2)" "pinned" "q2 keeps g's job pushed there explicitly"
is "$(st 'd["broker"]["jobs"]')" 17 "route changes kept all 17 jobs"

run ctl routes set g nope
is "$RC" 1 "routes set to a queue that does not exist: exit 1"
like "$ERR" "not_found" "... err not_found"
is "$(groups_view)" "other:2:2:None g:12:12:None h:3:3:None" "... and g's route is unchanged (none)"
run ctl routes set g default
is "$RC" 0 "routes set g default exits 0 (the same as unset)"
is "$(st 'd["routes"] if "routes" in d else [g["route"] for g in d["groups"]]')" '[null, null, null]' \
    "no group has a route"
end_part routes

# --- the order inside a queue ---------------------------------------------------------------

start_broker
printf 'f0\nf1\nf2\nf3\nf4\nf5\n' | push_lines flood
printf 'a0\na1\n' | push_lines a
printf 'b0\n' | push_lines b
is "$(st '[q["order"] for q in d["queues"]]')" '["groups"]' "default serves groups in turn"
is "$(queue_order default)" "f0,a0,b0,f1,a1,f2,f3,f4,f5" \
    "groups order: the groups in turn, each group's jobs in order"
ctl purge --queue default >/dev/null
printf 'f0\nf1\nf2\n' | push_lines flood
printf 'a0\n' | push_lines a
printf 'f3\n' | push_lines flood
ok "default's order can be set to fifo" order default fifo
is "$(queue_order default)" "f0,f1,f2,a0,f3" "fifo order: arrival order across groups"
run "$send" "$url" --hex "$(mp_op queue.update name str default order str random)"
is "$(json "$OUT" 'd.get("err")')" bad_request "an order that is neither groups nor fifo: bad_request"
is "$(st '[q["order"] for q in d["queues"]]')" '["fifo"]' "... and the order is unchanged"
end_part order

# --- queues destroy --------------------------------------------------------------------------

start_broker
order default fifo
printf 'd0\nd1\n' | push_lines dflt
ctl queues create q1 >/dev/null
printf 'a0\na1\na2\n' | push_lines a --queue q1
ctl routes set h q1 >/dev/null
printf 'h0\nh1\n' | push_lines h
before=$(snapshot)
run ctl queues destroy q1
is "$RC" 1 "queues destroy of a queue holding 5 jobs: exit 1"
like "$ERR" "not_empty" "... err not_empty"
is "$(snapshot)" "$before" "... and nothing changed"
is "$(queues_ready)" "default:2 q1:5" "q1 still holds its 5 jobs"

run ctl queues destroy q1 --force
is "$RC" 0 "queues destroy q1 --force exits 0"
like "$OUT" "moved 5 jobs to default, reset 1 route" "--force moved 5 jobs and reset h's route"
is "$(queues_ready)" "default:7" "q1 is gone; default holds all 7 jobs"
is "$(groups_view)" "dflt:2:2:None a:3:3:None h:2:2:None" "h's route is reset; group counts unchanged"
is "$(queue_order default)" "d0,d1,a0,a1,a2,h0,h1" "q1's jobs were appended to default in order"
run ctl push h h2
like "$OUT" '\(queue default\)' "h's next push goes to default"

ctl queues create empty >/dev/null
ctl routes set k empty >/dev/null
run ctl queues destroy empty
is "$RC" 0 "queues destroy of an empty queue needs no --force"
like "$OUT" "reset 1 route" "... and resets the route to it"
run ctl routes list --json
is "$(json "$OUT" 'd["routes"]')" '[]' "no route is left"
run ctl queues destroy empty
is "$RC" 1 "destroying it again: exit 1"
like "$ERR" "not_found" "... err not_found"
run ctl queues destroy default --force
is "$RC" 1 "queues destroy default --force: exit 1"
like "$ERR" "forbidden" "... err forbidden"
end_part destroy

# --- flush -------------------------------------------------------------------------------------

start_broker
order default fifo
ctl queues create q1 >/dev/null
ctl routes set a q1 >/dev/null
printf 'a0\na1\na2\na3\n' | push_lines a
printf 'b0\nb1\nb2\n' | push_lines b
printf 'c0\nc1\n' | push_lines c --queue q1
ctl routes set e q1 >/dev/null      # a route, no jobs
printf 'f0\n' | push_lines f        # jobs, then none
ctl purge --group f >/dev/null
is "$(groups_view)" "a:4:4:q1 b:3:3:None c:2:2:None e:0:0:q1 f:0:0:None" "set-up: groups a..f"
run ctl flush
is "$RC" 0 "flush exits 0"
like "$OUT" "reset 2 routes" "flush reports the 2 routes it reset"
is "$(st 'd["broker"]["jobs"]')" 9 "flush keeps all 9 jobs"
is "$(queues_ready)" "default:7 q1:2" "a's jobs moved to default as with unset; c's explicit jobs stay in q1"
is "$(groups_view)" "a:4:4:None b:3:3:None c:2:2:None" \
    "every route is reset; e and f, with no job and no route, are forgotten"
is "$(st '[q["pushed"] for q in d["queues"]] + [g["pushed"] for g in d["groups"]]')" '[0, 0, 0, 0, 0]' \
    "the pushed statistics of queues and groups are reset"
is "$(queue_order default)" "b0,b1,b2,a0,a1,a2,a3" "default: b's jobs, then a's moved in order"
run ctl routes list --json
is "$(json "$OUT" 'd["routes"]')" '[]' "no route is left after flush"
end_part flush

# --- purge ---------------------------------------------------------------------------------

start_broker
ctl queues create q1 >/dev/null
printf 'a0\na1\na2\n' | push_lines a
printf 'a3\na4\n' | push_lines a --queue q1
printf 'b0\nb1\nb2\nb3\n' | push_lines b
printf 'b4\n' | push_lines b --queue q1
printf 'r0\nr1\nr2\n' | push_lines r
# A worker holds one of r's jobs reserved (its connection stays open: sl-send reads a FIFO).
mkfifo "$SLUICE_DIR/worker.fifo"
exec 7<>"$SLUICE_DIR/worker.fifo"
spawn worker "$send" "$url" --timeout 5000 --lines "$SLUICE_DIR/worker.fifo"
{ mp_op reserve worker str w1 max uint 1 from hex "$(mp_array 1)$(mp_str q1)"; echo; } >&7
ok "worker w1 reserved a job of q1" wait_for 5 grep -q '"jobs": \[{' "$SLUICE_DIR/worker.log"
is "$(queues_ready)" "default:10 q1:2" "set-up: default 10 ready, q1 2 ready and 1 reserved"

run ctl purge --queue q1 --group a
is "$RC" 0 "purge --queue q1 --group a exits 0"
like "$OUT" "purged 1 " "it purges a's 1 ready job in q1 (the other is reserved)"
is "$(groups_view)" "a:4:3:None b:5:5:None r:3:3:None" "a keeps its reserved job and its 3 in default"
run ctl purge --group b
like "$OUT" "purged 5 " "purge --group b purges b's 5 ready jobs in both queues"
is "$(queues_ready)" "default:6 q1:0" "default 6 ready, q1 none"
run ctl purge --queue default
like "$OUT" "purged 6 " "purge --queue default purges its 6 ready jobs"
is "$(groups_view)" "a:1:0:None b:0:0:None r:0:0:None" "only a's reserved job is left"
is "$(st '[d["broker"]["jobs"], [q["reserved"] for q in d["queues"]]]')" '[1, [0, 1]]' \
    "the broker holds the 1 reserved job, in q1"
run ctl purge --queue nope
is "$RC" 1 "purge --queue of a queue that does not exist: exit 1"
like "$ERR" "not_found" "... err not_found"
run ctl purge --group nobody
is "$RC" 1 "purge --group of a group that does not exist: exit 1"
like "$ERR" "not_found" "... err not_found"
exec 7>&-
end_part purge

# --- limits ----------------------------------------------------------------------------------

start_broker --max-jobs 1000 --max-bytes 10000 --max-payload 100
p100=$(printf 'p%.0s' $(seq 1 100))
p101=${p100}q
before=$(snapshot)
run ctl push big "$p101"
is "$RC" 1 "a push of a 101-byte payload (--max-payload 100): exit 1"
like "$ERR" "too_large" "... err too_large"
is "$(snapshot)" "$before" "... and nothing changed: no job, no id used, no group big"
run "$send" "$url" --hex "$(mp_push big "" 0 "$p100" "$p101")"
is "$(json "$OUT" 'd["err"]')" too_large "a batch of a 100-byte and a 101-byte payload is too_large"
is "$(snapshot)" "$before" "... and its valid payload is not stored either"

run ctl push big "$p100"
is "$RC" 0 "a push of exactly 100 bytes is accepted"
for i in $(seq 1 98); do echo "$p100"; done | push_lines big
is "$(st '[d["broker"]["jobs"], d["broker"]["bytes"]]')" '[99, 9900]' "99 jobs of 100 bytes: 9,900 bytes"
before=$(snapshot)
run "$send" "$url" --hex "$(mp_push big "" 0 "$p100" "$p100")"
is "$(json "$OUT" 'd["err"]')" queue_full "a batch of 2 x 100 bytes over --max-bytes 10000 is queue_full"
is "$(snapshot)" "$before" "... and nothing of it is stored"
run ctl push big "$p100"
is "$RC" 0 "100 more bytes, exactly up to --max-bytes, are accepted"
is "$(st 'd["broker"]["bytes"]')" 10000 "the broker holds exactly 10,000 bytes"
before=$(snapshot)
run ctl push big x
is "$RC" 1 "one more byte: exit 1"
like "$ERR" "queue_full" "... err queue_full"
is "$(snapshot)" "$before" "... and nothing changed"

ctl purge --queue default >/dev/null
is "$(st '[d["broker"]["jobs"], d["broker"]["bytes"]]')" '[0, 0]' "purged: no job, no byte"
run ctl push many x -s 999
is "$RC" 0 "999 one-byte jobs are accepted"
before=$(snapshot)
run "$send" "$url" --hex "$(mp_push many "" 0 x y)"
is "$(json "$OUT" 'd["err"]')" queue_full "a batch of 2 jobs over --max-jobs 1000 is queue_full"
is "$(snapshot)" "$before" "... and neither is stored"
run ctl push many x
is "$RC" 0 "the 1,000th job is accepted"
before=$(snapshot)
run ctl push many x
is "$RC" 1 "the 1,001st job: exit 1"
like "$ERR" "queue_full" "... err queue_full"
run ctl push newgroup x
is "$RC" 1 "a push of a new group when full: exit 1"
is "$(snapshot)" "$before" "... and nothing changed, no group newgroup"
ctl purge --group many >/dev/null
ctl push many x -s 500 >/dev/null
run ctl push many x -s 700 --batch 400
is "$RC" 1 "pushing 700 in batches of 400 with room for 500: exit 1"
like "$ERR" "pushed 400 jobs to many before the error" "ctl says how many were confirmed before queue_full"
is "$(st 'd["broker"]["jobs"]')" 900 "the first batch of 400 stands, the refused one left nothing"
end_part limits

# --- names -----------------------------------------------------------------------------------

start_broker
ctl queues create q1 >/dev/null
long128=$(printf 'n%.0s' $(seq 1 128))
long129=${long128}n
run ctl push "$long128" x
is "$RC" 0 "a group name of 128 bytes is accepted"
run ctl push 'Az09._:-' x
is "$RC" 0 "a group name of every allowed kind of character is accepted"
before=$(snapshot)
for args in "push b@d x" "push $long129 x" "push g x --queue bad!" "queues create a/b" \
    "queues create é" "routes set g q/1" "routes set g@ q1" "routes unset g*" \
    "purge --group x%y" "purge --queue q?"; do
    # shellcheck disable=SC2086 # split on purpose; no argument holds a space
    run ctl $args
    is "$RC" 2 "ctl $args: exit 2 (ctl checks the name itself)"
    like "$ERR" "invalid|name" "... saying the name is invalid"
done
for args in "push '' x" "queues create ''" "queues create 'a b'"; do
    eval "run ctl $args"
    is "$RC" 2 "ctl $args: exit 2"
done
is "$(snapshot)" "$before" "the refused names changed nothing"

# The same sent raw: bad_request, and nothing changes.
nul=$(_mp_hex bob)00$(_mp_hex x)
for req in \
    "$(mp_push 'b@d' '' 0 x)|push, group b@d" \
    "$(mp_push "$long129" '' 0 x)|push, a group name of 129 bytes" \
    "$(mp_push '' '' 0 x)|push, an empty group name" \
    "$(mp_map 3)$(mp_str op)$(mp_str push)$(mp_str group)$(mp_hexstr "$nul")$(mp_str payloads)$(mp_array 1)$(mp_bin x)|push, a group name with a NUL byte (bob\\0x)" \
    "$(mp_push 'café' '' 0 x)|push, a group name with a non-ASCII byte" \
    "$(mp_op push group str g queue str 'bad!' payloads hex "$(mp_array 1)$(mp_bin x)")|push, queue bad!" \
    "$(mp_push g 'c c' 1 x)|push, client 'c c'" \
    "$(mp_op queue.create name str 'a b')|queue.create, name 'a b'" \
    "$(mp_op queue.create name str "$long129")|queue.create, a name of 129 bytes" \
    "$(mp_op route.set group str g queue str 'q/1')|route.set, queue q/1" \
    "$(mp_op route.set group str 'g g' queue str q1)|route.set, group 'g g'" \
    "$(mp_op route.unset group str 'g*')|route.unset, group g*" \
    "$(mp_op purge group str 'x%y')|purge, group x%y" \
    "$(mp_op queue.destroy name str '../q1')|queue.destroy, name ../q1" \
    "$(mp_op reserve worker str 'w w')|reserve, worker 'w w'"; do
    run "$send" "$url" --hex "${req%%|*}"
    is "$(json "$OUT" 'd.get("err")')" bad_request "raw ${req#*|}: bad_request"
done
is "$(snapshot)" "$before" "the raw requests with bad names changed nothing"
is "$(st '[g["name"] for g in d["groups"]]')" "[\"$long128\", \"Az09._:-\"]" \
    "no group bob (from the name with a NUL byte) or any other was created"
ok "the broker still answers ping" ctl ping
stop_broker
is "$?" 0 "the broker exits 0 on TERM"

done_testing
