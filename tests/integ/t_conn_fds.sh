#!/usr/bin/env bash
# Idle connections cannot take the descriptors the journal needs (README "Limits"): a broker
# whose open-files limit is 256 (ulimit -n in its shell) serves at most 256 - 64 connections;
# with 300 idle connections held open, a producer connected before them keeps pushing while
# the journal rolls 64 KiB segments, the connections beyond the limit are closed as they come
# (conn.refused in the log, conns_refused in stats), and once the idle ones are gone new
# connections are served again.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

hog=$SLUICE_TESTBIN/sl-hog
url=ipc://$SLUICE_DIR/broker.ipc

spawn broker bash -c 'ulimit -n 256 && exec "$@"' _ "$SLUICE_BIN/broker" --segment-size 64K
BROKER_PID=$SPAWNED_PID
wait_for 10 ctl --timeout 250 ping || bail_out "the broker did not start"
like "$(grep "event=start" "$SLUICE_DIR/broker.log")" "max_connections=192" \
    "the start line says 192 connections at most (256 less 64)"

in_log() {
    grep -q "$2" "$SLUICE_DIR/$1.log"
}

spawn producer "$hog" "$url" push 300 4000 "$SLUICE_DIR/go"
producer=$SPAWNED_PID
ok "a producer is connected" wait_for 10 in_log producer connected

spawn idle "$hog" "$url" idle 300 600000
idle=$SPAWNED_PID
ok "300 idle connections are tried" wait_for 30 in_log idle "opened="
ok "the broker refuses those beyond its limit (conn.refused)" \
    wait_for 10 in_log broker "event=conn.refused"
like "$(grep "event=conn.refused" "$SLUICE_DIR/broker.log" | head -n 1)" "max=192" \
    "... naming the limit"
ok "... and closes them" wait_for 10 in_log idle "closed=[1-9]"
run ctl --timeout 1000 ping
isnt "$RC" 0 "a new client is not served while the broker is full"

# 300 pushes of 4,000 bytes: the journal rolls a 64 KiB segment every 16 or so.
touch "$SLUICE_DIR/go"
wait_for 60 in_log producer "pushed="
like "$(cat "$SLUICE_DIR/producer.log")" "pushed=300 failed=0" \
    "every push of the connected producer succeeds while the journal rolls segments"
wait "$producer" 2>/dev/null

stop_pgrp "$idle" 3
ok "once the idle connections are gone, new clients are served" wait_for 10 ctl ping
run ctl stats --json
# Segment files are named by their sequence number in hex; compaction removes old ones.
last=$(find "$SLUICE_DIR/data" -name '*.seg' | sed 's|.*/||; s|\.seg$||' | sort | tail -n 1)
cmp_num "$((16#${last:-0}))" -ge 10 "the journal created segment files meanwhile (the last is $last)"
cmp_num "$(json "$OUT" 'd["broker"]["conns_refused"]')" -gt 0 "stats count conns_refused"
is "$(json "$OUT" '[q["ready"] for q in d["queues"] if q["name"] == "default"][0]')" 300 \
    "all 300 jobs are held"
stop_pgrp "$BROKER_PID" 3
is "$?" 0 "the broker exits 0 on TERM"

done_testing
