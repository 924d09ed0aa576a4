#!/usr/bin/env bash
# Scheduling with real workers: the minimum share of a lower-priority queue (5% +- 2%), weights
# 3:1 at equal priority (within 10%), a max in-flight of 2 never exceeded, a paused queue never
# served until resumed.
#
# It samples shares while the queues are busy, which another test's load can starve:
# tests/run: alone
. "$(dirname "$0")/lib.sh"

start_broker

stats() {
    run ctl stats --json
    S=$OUT
}

# q NAME FIELD: a queue's field in the last stats.
q() {
    json "$S" "[x['$2'] for x in d['queues'] if x['name'] == '$1'][0]"
}

queue_drained() { # NAME: nothing ready, delayed or reserved in it
    stats
    [ "$(json "$S" "[(x['ready'], x['reserved'], x['delayed']) for x in d['queues'] if x['name'] == '$1'][0]")" = '[0, 0, 0]' ]
}

# sample EXPR: one stats snapshot, EXPR evaluated over it with qs = {name: queue}. A stats
# call that fails (on a loaded machine) is tried again for up to 10 s; then the reason goes
# to stderr and the status is 1, which ends the caller's sampling loop.
sample() {
    local deadline=$((SECONDS + 10)) v
    while :; do
        run ctl stats --json
        if [ "$RC" = 0 ] && v=$(json "$OUT" "(lambda qs: $1)({x['name']: x for x in d['queues']})"); then
            echo "$v"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "# stats failed for 10 s: exit $RC: $ERR" >&2
            return 1
        fi
    done
}

# --- minimum share: default (10) and low (100), both full ---
ok "create queue low at priority 100" ctl queues create low --priority 100
# Enough for a few seconds of two noop workers (some 36k jobs/s here), so that several
# samples (a ctl stats each) fall while both queues still have jobs ready.
ok "push 120000 jobs to default" ctl push hi x -s 120000
ok "push 12000 jobs to low" ctl push lo x -s 12000 -q low
spawn pool "$SLUICE_BIN/worker-pool" -n 2 --handler noop --prefetch 1
POOL_PID=$SPAWNED_PID
# Samples while default still has ready jobs (and low too): low's part of everything done.
samples=0 bad=""
while :; do
    s=$(sample '"%d %d %d %d" % (qs["default"]["ready"], qs["low"]["ready"], qs["default"]["done"], qs["low"]["done"])') || break
    read -r dr lr dd ld <<<"$s"
    [ "$dr" -gt 0 ] && [ "$lr" -gt 0 ] || break
    if [ $((dd + ld)) -ge 1000 ]; then
        samples=$((samples + 1))
        # 3% <= ld / (dd + ld) <= 7%, in integers
        if [ $((ld * 100)) -lt $((3 * (dd + ld))) ] || [ $((ld * 100)) -gt $((7 * (dd + ld))) ]; then
            bad="$bad [default done $dd, low done $ld]"
        fi
    fi
done
cmp_num "$samples" -ge 3 "at least 3 samples taken with both queues busy ($samples; the last: ready default low, done default low = ${s:-none})"
is "$bad" "" "in every sample low has 5% +- 2% of the jobs done"
cmp_num "$ld" -ge 1 "low was served while default was busy (at the end: default done $dd, low done $ld)"
ok "everything drains" wait_for 20 queue_drained low
stop_pgrp "$POOL_PID" 5

# --- weights 3:1 at equal priority ---
ok "create queue w3 (priority 20, weight 3)" ctl queues create w3 --priority 20 --weight 3
ok "create queue w1 (priority 20, weight 1)" ctl queues create w1 --priority 20 --weight 1
ok "push 24000 jobs to w3" ctl push g3 x -s 24000 -q w3
ok "push 24000 jobs to w1" ctl push g1 x -s 24000 -q w1
spawn pool2 "$SLUICE_BIN/worker-pool" -n 2 --handler noop --prefetch 1 --queues w3,w1
POOL_PID=$SPAWNED_PID
samples=0 bad="" last=""
while :; do
    s=$(sample '"%d %d %d %d" % (qs["w3"]["ready"], qs["w1"]["ready"], qs["w3"]["done"], qs["w1"]["done"])') || break
    read -r r3 r1 d3 d1 <<<"$s"
    [ "$r3" -gt 0 ] && [ "$r1" -gt 0 ] || break
    if [ "$d1" -ge 200 ]; then
        samples=$((samples + 1))
        last="$d3:$d1"
        # 2.7 <= d3 / d1 <= 3.3
        if [ $((d3 * 10)) -lt $((27 * d1)) ] || [ $((d3 * 10)) -gt $((33 * d1)) ]; then
            bad="$bad [w3 done $d3, w1 done $d1]"
        fi
    fi
done
cmp_num "$samples" -ge 1 "at least one sample taken with both queues busy ($samples; the last: ready w3 w1, done w3 w1 = ${s:-none})"
is "$bad" "" "in every sample w3:w1 done is 3:1 within 10% (last sample: ${last:-none})"
stop_pgrp "$POOL_PID" 5
ok "purge w3" ctl purge --queue w3
ok "purge w1" ctl purge --queue w1

# --- max in-flight 2, with 8 workers ---
ok "create queue cap with --max-inflight 2" ctl queues create cap --max-inflight 2
ok "push 300 jobs to cap" ctl push gc x -s 300 -q cap
spawn pool3 "$SLUICE_BIN/worker-pool" -n 8 --handler sleep:20-20 --prefetch 1
POOL_PID=$SPAWNED_PID
max=0 samples=0
while :; do
    s=$(sample '"%d %d %d" % (qs["cap"]["ready"], qs["cap"]["reserved"], qs["cap"]["done"])') || break
    read -r rc rs dn <<<"$s"
    [ "$rs" -gt "$max" ] && max=$rs
    samples=$((samples + 1))
    [ "$rc" -gt 0 ] || break
done
cmp_num "$samples" -ge 5 "sampled cap's reserved count repeatedly ($samples times)"
is "$max" 2 "cap never had more than 2 jobs reserved, and did reach 2"
ok "cap drains" wait_for 20 queue_drained cap
stats
is "$(q cap done)" 300 "all 300 of cap's jobs are done"

# --- a paused queue ---
ok "create queue pz" ctl queues create pz
ok "pause pz" ctl queues pause pz
ok "push 100 jobs to pz" ctl push gp x -s 100 -q pz
ok "push 300 jobs to default" ctl push gd x -s 300
ok "default drains while pz is paused" wait_for 15 queue_drained default
stats
is "$(json "$S" '[(x["ready"], x["reserved"], x["done"]) for x in d["queues"] if x["name"] == "pz"]')" \
    '[[100, 0, 0]]' "pz was never served: 100 ready, none reserved or done"
ok "resume pz" ctl queues resume pz
ok "pz is served after resume" wait_for 15 queue_drained pz
stats
is "$(q pz done)" 100 "all 100 of pz's jobs are done"

done_testing
