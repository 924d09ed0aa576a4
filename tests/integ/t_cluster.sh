#!/usr/bin/env bash
# Two brokers in a cluster over a private 3-node NATS JetStream cluster: the standby holds the
# leader's state; kill -9 of the leader under load loses no confirmed job; a paused leader is
# fenced and rejoins as a standby; step-down hands over; NATS nodes lost are survived, and all
# of them lost confirms nothing. Compaction and starting without NATS: t_cluster_compact.sh.
# It runs for a minute or more under the sanitizers, so it starts before the short ones:
# tests/run: long
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nats.sh"
. "$(dirname "$0")/lib_cluster.sh"

nats_cluster_start 3
pa=$(free_port)
pb=$(free_port)
A=tcp://127.0.0.1:$pa
B=tcp://127.0.0.1:$pb
export SLUICE_URL="$A,$B"


# --- start: the first broker seeds the empty stream and leads ----------------------------
start_shard t a "$pa"
ok "the first broker leads" wait_for 15 is_role "$A" leader
start_shard t b "$pb"
ok "the second stands by" wait_for 15 is_role "$B" standby

# --- a mixed workload; the standby's state equals the leader's -----------------------------
ok "queue created" ctl --url "$A" queues create q1 --priority 2
ok "route set" ctl --url "$A" routes set g2 q1
ok "weight set" ctl --url "$A" groups weight g3 4
for g in g1 g2 g3; do
    seq 1 200 | sed "s/^/$g-/" >"$SLUICE_DIR/pay.$g"
    ok "push 200 to $g" ctl --url "$A" push "$g" --file "$SLUICE_DIR/pay.$g" --client t-$g --seq 1
done
ok "a worker acks 50 jobs" timeout 60 "$SLUICE_BIN/worker" --url "$A" --handler noop --max-jobs 50
ok "a failing worker fails 5" timeout 60 "$SLUICE_BIN/worker" --url "$A" --handler exec:false --max-jobs 5
ok "standby caught up" wait_for 10 caught_up "$B"
ba=$(books "$A")
ok "standby's books equal the leader's" wait_for 10 eval '[ "$(books "$B")" = "$ba" ]'
diag "leader: $ba"
diag "standby: $(books "$B")"
# ids URL: the next job id and the idempotency clients a broker holds.
ids() {
    "$SLUICE_BIN/ctl" --url "$1" --timeout 1000 stats --json 2>/dev/null |
        python3 -I -S -c 'import json,sys; d=json.load(sys.stdin)["broker"]; print(d["next_id"], d["dedup_clients"])'
}
ia=$(ids "$A")
like "$ia" '^[0-9]+ [1-9]' "the leader holds ids and idempotency clients"
is "$(ids "$B")" "$ia" "the standby's next id and idempotency clients equal the leader's"

# --- a standby refuses changes and names the leader ----------------------------------------
run "$SLUICE_TESTBIN/sl-send" "$B" --hex "$(/usr/bin/python3 -c 'import msgpack; print(msgpack.packb({"op":"push","group":"x","payloads":[b"p"]}).hex())')"
like "$OUT" '"err": "not_leader"' "a push to the standby is refused not_leader"
like "$OUT" "\"leader_url\": \"$A\"" "and names the leader's URL"
ok "ctl given both URLs pushes through the leader" ctl --url "$B,$A" push gx x1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
run /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1] + "/clients/python"); import sluice
c = sluice.Client(sys.argv[2], timeout=5)
print(c.push("gp", [b"p1", b"p2"]).count, c.url)' "$ROOT" "$B,$A"
is "$OUT" "2 $A" "the Python client given the standby first pushes through the leader"
run /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1] + "/clients/python"); import sluice
c = sluice.Client(sys.argv[2], timeout=5)
print(c.push("gp", [b"p3"]).count, c.url)' "$ROOT" "$B"
is "$OUT" "1 $A" "and so does one given only the standby's address"
run php -r 'require $argv[1] . "/clients/php/autoload.php";
$c = new Sluice\Client($argv[2], null, 5.0);
$r = $c->push("gq", ["q1", "q2"]);
echo $r["count"], " ", $c->url;' "$ROOT" "$B,$A"
is "$OUT" "2 $A" "the PHP client given the standby first pushes through the leader"

# --- kill -9 of the leader under load: the standby takes over, nothing confirmed lost ------
mkdir -p "$SLUICE_DIR/chaos"
spawn prod1 "$(dirname "$0")/../chaos/producer" p1 "$SLUICE_DIR/chaos" 1 20 20 0
spawn prod2 "$(dirname "$0")/../chaos/producer" p2 "$SLUICE_DIR/chaos" 2 20 20 0
PID_p1=$SPAWNED_PID
wait_for 10 eval '[ "$(wc -l <"$SLUICE_DIR/chaos/ledger.p1" 2>/dev/null || echo 0)" -gt 100 ]'
kill -9 -- "-$PID_a"
t0=${EPOCHREALTIME/./}
ok "the standby takes over after the leader's kill -9" wait_for 20 is_role "$B" leader
t1=${EPOCHREALTIME/./}
diag "failover took $(((t1 - t0) / 1000)) ms"
wait_for 10 eval '[ "$(wc -l <"$SLUICE_DIR/chaos/ledger.p1")" -gt 300 ]'
touch "$SLUICE_DIR/chaos/stop"
ok "producers finish" wait_for 60 eval '[ -e "$SLUICE_DIR/chaos/producer.p1" ] && [ -e "$SLUICE_DIR/chaos/producer.p2" ]'
confirmed=$(cat "$SLUICE_DIR"/chaos/ledger.p1 "$SLUICE_DIR"/chaos/ledger.p2 | wc -l)
s=$("$SLUICE_BIN/ctl" --url "$B" stats --json)
held=$(json "$s" 'sum(g["ready"] + g.get("reserved", 0) + g.get("delayed", 0) for g in d["groups"] if g["name"] in ("p1", "p2"))')
cmp_num "$confirmed" -gt 300 "the producers confirmed jobs across the failover ($confirmed)"
is "$held" "$confirmed" "every confirmed job of the producers is held by the new leader"

ok "a worker given both URLs (the first dead) works for the new leader" \
    timeout 30 "$SLUICE_BIN/worker" --url "$A,$B" --handler noop --max-jobs 20
jobs1=$(json "$s" 'd["broker"]["jobs"]')
s2=$("$SLUICE_BIN/ctl" --url "$B" stats --json)
jobs2=$(json "$s2" 'd["broker"]["jobs"]')
is "$jobs2" "$((jobs1 - 20))" "and its 20 acks reached the new leader"
# The idempotency keys came over: g1's first push sent again with its key stores nothing.
g1_jobs() {
    json "$("$SLUICE_BIN/ctl" --url "$B" stats --json)" \
        'sum(g["ready"] + g.get("reserved", 0) + g.get("dead", 0) for g in d["groups"] if g["name"] == "g1")'
}
g1a=$(g1_jobs)
ok "g1's first push sent again with its key after the failover" \
    ctl --url "$B" push g1 --file "$SLUICE_DIR/pay.g1" --client t-g1 --seq 1
is "$(g1_jobs)" "$g1a" "stores nothing twice: the new leader holds the keys"

# --- the old leader restarted rejoins as a standby and catches up --------------------------
start_shard t a "$pa"
ok "the restarted broker stands by" wait_for 20 is_role "$A" standby
ok "and catches up" wait_for 20 caught_up "$A"
bb=$(books "$B")
ok "its books equal the leader's" wait_for 10 eval '[ "$(books "$A")" = "$bb" ]'

# The roles from here on are read, not assumed: under load a lease can change hands.
# who_leads: sets L (a or b), LU and SU (the leader's and the standby's URLs), LPID.
who_leads() {
    if is_role "$A" leader; then
        L=a LU=$A SU=$B LPID=$PID_a
    elif is_role "$B" leader; then
        L=b LU=$B SU=$A LPID=$PID_b
    else
        return 1
    fi
}

# --- step-down hands over on purpose -------------------------------------------------------
ok "a leader is known" wait_for 20 who_leads
ok "step-down accepted" ctl --url "$LU" cluster step-down
ok "the standby leads after a step-down" wait_for 15 is_role "$SU" leader
ok "the old leader stands by again" wait_for 20 is_role "$LU" standby

# --- a leader paused past its lease is fenced and rejoins as a standby ---------------------
ok "a leader is known before the pause" wait_for 20 who_leads
ok "standby caught up before the pause" wait_for 10 caught_up "$SU"
kill -STOP -- "-$LPID"
ok "the standby takes over from a paused leader" wait_for 20 is_role "$SU" leader
ok "the new leader takes a push" ctl --url "$SU" push gz z1
kill -CONT -- "-$LPID"
ok "the paused leader comes back as a standby" wait_for 20 is_role "$LU" standby
ok "and catches up with the new epoch" wait_for 20 caught_up "$LU"
bb=$(books "$SU")
ok "books equal after the fence" wait_for 10 eval '[ "$(books "$LU")" = "$bb" ]'

# --- NATS nodes lost: service goes on; NATS gone: nothing is confirmed --------------------------
ok "a leader is known before NATS nodes go" wait_for 20 who_leads
doc=$("$SLUICE_BIN/ctl" --url "$LU" cluster status --json)
sl=$(json "$doc" 'd["stream_leader"]')
like "$sl" '^n[123]$' "the status names the stream's leader node"
other=1
[ "$sl" = n1 ] && other=2
nats_node_kill "$other" KILL
ok "a push goes on with a NATS node down" ctl --url "$A,$B" --timeout 30000 push gn n1
nats_node_start "$other"
nats_node_kill "${sl#n}" KILL
ok "a push goes on once the stream's leader node is killed" \
    ctl --url "$A,$B" --timeout 60000 push gn n2
nats_node_start "${sl#n}"
ok "a leader is known after the NATS nodes return" wait_for 60 who_leads
ok "the standby follows after the NATS nodes return" wait_for 60 caught_up "$SU"
for i in 1 2 3; do nats_node_kill "$i" KILL; done
run ctl --url "$A,$B" --timeout 5000 push gn n3
isnt "$RC" 0 "with every NATS node gone a push is not confirmed"
like "$ERR" 'io|not_leader|no reply|unreachable|reach' "and the error says so"
for i in 1 2 3; do nats_node_start "$i"; done
ok "NATS back: the cluster has a leader again" wait_for 60 who_leads
# The broker that stopped leading started itself again and waited for NATS: both serve.
both_answer() { [ -n "$(role "$A")" ] && [ -n "$(role "$B")" ]; }
ok "NATS back: both brokers answer again" wait_for 60 both_answer

stop_pgrp "$PID_a" 5
is "$?" 0 "broker a stops cleanly"
stop_pgrp "$PID_b" 5
is "$?" 0 "broker b stops cleanly"

done_testing
