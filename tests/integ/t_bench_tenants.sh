#!/usr/bin/env bash
# bench/tenants and bench/spread, the programs behind make bench's tenants and groups lines,
# against a test broker, on a small load: their output has the documented fields, the jobs
# they push are the ones they say, and bad options are usage errors. Only the shape and the
# bookkeeping are checked here; the figures belong to make bench.
. "$(dirname "$0")/lib.sh"

TEN=${SLUICE_BENCHBIN:?SLUICE_BENCHBIN is not set}/tenants
SPREAD=$SLUICE_BENCHBIN/spread
[ -x "$TEN" ] || bail_out "$TEN is missing (make $TEN)"
[ -x "$SPREAD" ] || bail_out "$SPREAD is missing (make $SPREAD)"
start_broker
URL=ipc://$SLUICE_DIR/broker.ipc

# fields LINE: the keys of a key=value line, in order.
fields() { tr ' ' '\n' <<<"$1" | cut -d= -f1 | tr '\n' ' '; }
# num KEY LINE
num() { sed -n "s/.*\<$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# A load the 4 workers keep up with: every light job starts, well within the drain.
run "$TEN" --url "$URL" --for 2s --workers 4 --handler-us 100 --light 20 --light-rate 50 \
    --bursters 3 --wave 1s --wave-min 1 --wave-max 2 --burst-min 10 --burst-max 50 \
    --push-max 20 --trickle 5 --steady-rate 100 --steady-batch 10 --drain 10s
is "$RC" 0 "tenants on a small load exits 0 (stderr: $ERR)"
is "$(fields "$OUT")" "light_jobs light_unserved p50_ms p99_ms max_ms over_100ms \
heavy_done_per_s burst_done_per_s trickle_done_per_s steady_done_per_s light_done_per_s \
done_per_s " "it prints the documented fields, in order (got '$OUT')"
cmp_num "$(num light_jobs "$OUT")" -gt 0 "it pushed light jobs"
is "$(num light_unserved "$OUT")" 0 "every light job ran"
_ordered() {
    awk -v a="$(num p50_ms "$OUT")" -v b="$(num p99_ms "$OUT")" -v c="$(num max_ms "$OUT")" \
        'BEGIN {exit !(a <= b && b <= c)}'
}
ok "p50 <= p99 <= max" _ordered
run ctl stats --json
is "$(json "$OUT" 'sorted(set(g["name"].split("-")[0] for g in d["groups"]))')" \
    '["heavy", "light"]' "its groups are light-N and heavy-N"
is "$(json "$OUT" 'max(int(g["name"][6:]) for g in d["groups"] if g["name"].startswith("heavy-"))')" \
    "4" "three bursters, the trickle tenant and the steady one: heavy-0 .. heavy-4"

# Usage errors change nothing and say what is wrong.
for bad in "--for 0" "--workers 0" "--wave-min 4 --wave-max 3" "--bursters 2" \
    "--burst-min 9 --burst-max 8" "--light-rate x" "--drain 2h" "extra"; do
    # shellcheck disable=SC2086
    run "$TEN" --url "$URL" $bad
    is "$RC" 2 "tenants $bad is a usage error (exit 2)"
done
like "$ERR" "unexpected argument" "an argument is refused by name"
run "$TEN" --url "ipc://$SLUICE_DIR/nothing-here.ipc" --for 1s
is "$RC" 1 "with no broker at the URL it exits 1"
like "$ERR" "cannot reach" "and says it cannot reach the broker"

# spread: 1,000 jobs over 7 groups: 143 each for the first 6, 142 for the last.
run "$SPREAD" --url "$URL" --jobs 1000 --groups 7 --batch 50 --conns 3
is "$RC" 0 "spread exits 0"
like "$OUT" "^pushed=1000 groups=7 push_s=[0-9.]*$" "it prints what it pushed"
run ctl stats --json
is "$(json "$OUT" '" ".join(sorted("%s:%d" % (g["name"], g["pushed"]) for g in d["groups"]
                                   if g["name"].startswith("spread-")))')" \
    "spread-0:143 spread-1:143 spread-2:143 spread-3:143 spread-4:143 spread-5:143 spread-6:142" \
    "each group got its share"
run "$SPREAD" --url "$URL" --jobs 5 --groups 6
is "$RC" 2 "more groups than jobs is a usage error (exit 2)"

done_testing
