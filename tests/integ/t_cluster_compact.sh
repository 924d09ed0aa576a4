#!/usr/bin/env bash
# A cluster's stream is compacted below the oldest live segment and a new standby rebuilds
# from it; a broker without NATS says so and exits; one whose NATS has no JetStream yet waits,
# and stops cleanly while it waits. Over a private 3-node NATS JetStream cluster of its own.
# It runs for a minute or more under the sanitizers, so it starts before the short ones:
# tests/run: long
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nats.sh"
. "$(dirname "$0")/lib_cluster.sh"

nats_cluster_start 3

# --- compaction: the stream is cut below the oldest live segment; a new standby rebuilds -----
pk1=$(free_port)
K1=tcp://127.0.0.1:$pk1
# Shard k's brokers have the smallest segments, so that compaction comes soon.
start_shard k k1 "$pk1" --segment-size 64K
ok "shard k: the first broker leads" wait_for 30 is_role "$K1" leader
seq 1 3000 | sed 's/^/payload-of-some-length-/' >"$SLUICE_DIR/pay.k"
ok "shard k: 3000 jobs pushed" ctl --url "$K1" push gk --file "$SLUICE_DIR/pay.k"
# What goes into the stream is compressed: it holds fewer bytes than half of the payloads
# alone, headers and all (broker/jzip.h). The pushes were confirmed, so a quorum of the NATS
# nodes holds every message: the most any node reports is the stream's size.
stream_bytes() {
    local i b max=0
    for i in 1 2 3; do
        b=$(curl -s "http://127.0.0.1:${_nats_mports[i]}/jsz?streams=true" | python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == sys.argv[1]:
            print(s["state"]["bytes"])' "$1")
        [ "${b:-0}" -gt "$max" ] && max=$b
    done
    echo "$max"
}
sb=$(stream_bytes SLJ_k)
cmp_num "${sb:-0}" -gt 0 "shard k: the stream holds the jobs"
cmp_num "${sb:-0}" -lt $(($(wc -c <"$SLUICE_DIR/pay.k") / 2)) "shard k: compressed ($sb bytes)"
ok "shard k: a worker acks them all" timeout 60 "$SLUICE_BIN/worker" --url "$K1" --handler noop --max-jobs 3000
printf 'k1\nk2\nk3\nk4\nk5\n' >"$SLUICE_DIR/pay.k5"
ok "shard k: 5 jobs pushed and kept" ctl --url "$K1" push gk --file "$SLUICE_DIR/pay.k5"
ok "shard k: the leader says what it deleted" wait_for 20 grep -qE \
    'event=cluster.compacted below=[0-9]+ segment=[0-9]+ deleted=[1-9]' "$SLUICE_DIR/k1.log"
cmp_num "$(stream_first "$K1")" -gt 1 "shard k: the stream's first message moved on"
is "$(grep -c compact_refused "$SLUICE_DIR/k1.log")" 0 "shard k: no compaction point was refused"
# Its port is taken only now: a port found free 20 s earlier, in the range the kernel picks
# outgoing connections' ports from, was once taken meanwhile ("address in use").
pk2=$(free_port)
K2=tcp://127.0.0.1:$pk2
start_shard k k2 "$pk2" --segment-size 64K
ok "shard k: a new standby stands by" wait_for 15 is_role "$K2" standby
ok "shard k: it rebuilds from the compacted stream" wait_for 20 caught_up "$K2"
bk=$(books "$K1")
ok "shard k: its books equal the leader's" wait_for 10 eval '[ "$(books "$K2")" = "$bk" ]'
like "$bk" '"gk"' "shard k: the leader holds gk's 5 jobs"
diag "shard k leader: $bk"
stop_pgrp "$PID_k2" 5
is "$?" 0 "shard k: the standby stops cleanly"
stop_pgrp "$PID_k1" 5
is "$?" 0 "shard k: the leader stops cleanly"

# --- a standby of an empty stream takes it over and begins it -------------------------------
# The lease of shard e is held by a broker that never renews it (a KV entry written by hand),
# so the first broker stands by on an empty stream until the lease has been still for a whole
# lease, then leads; a second one rebuilds from what it wrote.
pe1=$(free_port)
E1=tcp://127.0.0.1:$pe1
ok "a lease of shard e held by nobody alive" nats_pub '$KV.sluice_lease.e' 'gone:1:1'$'\n''tcp://127.0.0.1:1'
start_shard e e1 "$pe1"
ok "shard e: the first broker stands by on the empty stream" \
    wait_for 20 grep -q 'event=cluster.standby shard=e stream_last=0' "$SLUICE_DIR/e1.log"
ok "shard e: it takes the lease over and leads" wait_for 30 is_role "$E1" leader
printf 'e1\ne2\ne3\n' >"$SLUICE_DIR/pay.e"
ok "shard e: it takes pushes" ctl --url "$E1" push ge --file "$SLUICE_DIR/pay.e"
pe2=$(free_port)
E2=tcp://127.0.0.1:$pe2
start_shard e e2 "$pe2"
ok "shard e: a second broker stands by" wait_for 20 is_role "$E2" standby
ok "shard e: and applies the stream the first began" wait_for 20 caught_up "$E2"
be=$(books "$E1")
ok "shard e: their books are equal" wait_for 10 eval '[ "$(books "$E2")" = "$be" ]'
like "$be" '^\[3, .*"ge"' "shard e: the leader holds ge's 3 jobs"
is "$(grep -c 'cluster.restart' "$SLUICE_DIR/e1.log")" 0 "shard e: the first broker never started again"
stop_pgrp "$PID_e2" 5
is "$?" 0 "shard e: the standby stops cleanly"
stop_pgrp "$PID_e1" 5
is "$?" 0 "shard e: the leader stops cleanly"

# --- no NATS at start: a clear error, non-zero exit ------------------------------------------
run "$SLUICE_BIN/broker" --dir "$SLUICE_DIR/c" --cluster nats://127.0.0.1:1 --listen "tcp://127.0.0.1:$(free_port)"
isnt "$RC" 0 "a broker whose NATS is unreachable exits non-zero"
like "$ERR" "cannot reach NATS" "and says it cannot reach NATS"

# --- NATS without JetStream (not ready): the broker waits, and a stop during the wait is one -
pj=$(free_port)
spawn nojs nats-server -a 127.0.0.1 -p "$pj"
ok "a NATS server without JetStream listens" wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$pj"
mkdir -p "$SLUICE_DIR/d"
spawn d "$SLUICE_BIN/broker" --dir "$SLUICE_DIR/d" --cluster "nats://127.0.0.1:$pj" --shard t \
    --listen "tcp://127.0.0.1:$(free_port)"
PID_d=$SPAWNED_PID
ok "a broker whose NATS cannot serve the shard yet waits" \
    wait_for 20 grep -q 'event=cluster.waiting' "$SLUICE_DIR/d.log"
ok "and is still running" kill -0 "$PID_d"
stop_pgrp "$PID_d" 5
is "$?" 0 "a stop while it waits is a clean one"
ok "it says it stopped before joining" grep -q 'before the cluster could be joined' "$SLUICE_DIR/d.log"

done_testing
