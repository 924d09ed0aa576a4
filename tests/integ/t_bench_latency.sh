#!/usr/bin/env bash
# bench/latency, the program behind make bench's latency lines, against a test broker: its
# output has the documented shape, every job it pushes is taken and acked, and its worker
# process never outlives it (not when it finishes, not when it cannot reach the broker).
# Only the shape and the bookkeeping are checked here; the figures belong to make bench.
. "$(dirname "$0")/lib.sh"

LAT=${SLUICE_BENCHBIN:?SLUICE_BENCHBIN is not set}/latency
[ -x "$LAT" ] || bail_out "$LAT is missing (make $LAT)"
start_broker
URL=ipc://$SLUICE_DIR/broker.ipc

# latency_procs: the pids of bench/latency processes using this test's broker.
latency_procs() {
    pgrep -f -- "$LAT ipc://$SLUICE_DIR/" || true
}

# shape OUT N: "p50 p90 p99 max n", ordered, n = N.
shape() {
    python3 -c '
import sys
f = sys.argv[1].split()
ok = len(f) == 5 and all(x.isdigit() for x in f)
ok = ok and 0 < int(f[0]) <= int(f[1]) <= int(f[2]) <= int(f[3]) and int(f[4]) == int(sys.argv[2])
sys.exit(0 if ok else 1)' "$1" "$2"
}

# While it runs: two processes, the producer and its worker (this also shows that
# latency_procs finds them).
spawn lat "$LAT" "$URL" 100 3
_two() {
    [ "$(latency_procs | wc -w)" = 2 ]
}
ok "while it runs there are two latency processes: the producer and its worker" wait_for 5 _two
_none() {
    [ -z "$(latency_procs)" ]
}
ok "both are gone when it ends" wait_for 10 _none

run "$LAT" "$URL" 200 2
is "$RC" 0 "latency URL 200 2 exits 0"
ok "it prints p50 p90 p99 max n, in order, n = 400 (got '$OUT')" shape "$OUT" 400
is "$(latency_procs)" "" "its worker process is gone when it exits"
_clean() {
    run ctl stats --json
    [ "$(json "$OUT" '[d["broker"]["jobs"], d["broker"]["reserved"], [q["pushed"] for q in d["queues"]]]')" = "[0, 0, [700]]" ]
}
ok "the broker got 700 pushes (300 + 400) and holds no job: each was taken and acked" wait_for 10 _clean

run "$LAT" "$URL" 200 2 ping
is "$RC" 0 "latency URL 200 2 ping exits 0"
ok "it prints the same shape, n = 400 (got '$OUT')" shape "$OUT" 400
run ctl stats --json
is "$(json "$OUT" '[q["pushed"] for q in d["queues"]]')" "[700]" "ping mode pushes no job"

run "$LAT" "ipc://$SLUICE_DIR/nothing-here.ipc" 200 1
cmp_num "$RC" -ne 0 "with no broker at the URL it exits non-zero (rc $RC)"
like "$ERR" "cannot reach" "and says it cannot reach the broker"
ok "and leaves no worker process behind" wait_for 5 _none

run "$LAT" "$URL" 0 1
is "$RC" 2 "a rate of 0 is a usage error (exit 2)"
run "$LAT" "$URL" 100 1 pong
is "$RC" 2 "an unknown fourth argument is a usage error (exit 2)"

done_testing
