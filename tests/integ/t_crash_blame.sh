#!/usr/bin/env bash
# A worker killed for --job-timeout while it holds prefetched jobs: the crash is charged to the
# job it was running, never to the others it holds (finished with their acks still pending, or
# not started). The hanging job is dead after --max-crashes (3) kills; every other job is done.
. "$(dirname "$0")/lib.sh"

start_broker

stats() {
    run ctl stats --json
    S=$OUT
}

totals_are() { # GROUP DONE DEAD: the group's done and dead counts
    stats
    [ "$(json "$S" "[(g['done'], g['dead']) for g in d['groups'] if g['name'] == '$1']")" = "[[$2, $3]]" ]
}

echo -n >"$SLUICE_DIR/hang.runs"
handler='exec:p=$(cat); if [ "$p" = hang ]; then echo run >>"$SLUICE_DIR/hang.runs"; sleep 60; fi; exit 0'

for prefetch in 2 4; do
    g=g$prefetch
    : >"$SLUICE_DIR/hang.runs"
    ok "prefetch $prefetch: push a healthy job" ctl push $g h0
    stats
    hang_id=$(json "$S" 'd["broker"]["next_id"]')
    ok "prefetch $prefetch: push the hanging job" ctl push $g hang
    for i in 1 2 3 4 5 6; do
        ctl push $g "h$i" >/dev/null || fail "push h$i"
    done
    spawn "pool$prefetch" "$SLUICE_BIN/worker-pool" -n 1 --prefetch "$prefetch" --job-timeout 1s \
        --handler "$handler"
    pool_pid=$SPAWNED_PID
    ok "prefetch $prefetch: the hanging job dies and the 7 healthy ones are done" \
        wait_for 40 totals_are $g 7 1
    run ctl dead --json --group $g
    is "$(json "$OUT" '[j["id"] for j in d["jobs"]]')" "[$hang_id]" \
        "prefetch $prefetch: the only dead job is the hanging one"
    is "$(json "$OUT" '[j["attempts"] for j in d["jobs"]]')" "[3]" \
        "prefetch $prefetch: it was charged one attempt per kill, 3 in all"
    is "$(wc -l <"$SLUICE_DIR/hang.runs" | tr -d ' ')" 3 \
        "prefetch $prefetch: the hanging job ran exactly 3 times (--max-crashes)"
    stats
    is "$(json "$S" "[(g['done'], g['dead'], g['count']) for g in d['groups'] if g['name'] == '$g']")" \
        '[[7, 1, 0]]' "prefetch $prefetch: group $g: 7 done, 1 dead, nothing left"
    stop_pgrp "$pool_pid" 10
done

done_testing
