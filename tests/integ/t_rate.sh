#!/usr/bin/env bash
# Per-group start rates against a real broker with a journal: `ctl groups limit G --rate R
# --burst B` holds a flooded group to R jobs per second after a first burst of B, while an
# unlimited group beside it, on the same workers, runs all its jobs meanwhile; the limit shows
# in `ctl stats` (text and JSON); a kill -9 and restart keeps it; bad values are refused (ctl:
# exit 2, the broker: bad_request) and change nothing; `--none` removes it and the group's
# jobs run at once.
# tests/run: alone
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"

command -v python3 >/dev/null || skip_all "python3 is needed to read JSON"
send=$SLUICE_TESTBIN/sl-send
url=ipc://$SLUICE_DIR/broker.ipc
RATE=20
BURST=5

# g GROUP FIELD: the field of GROUP in `ctl stats --json` (null when the group is unknown).
g() {
    json "$(ctl stats --json)" \
        "next((x[\"$2\"] for x in d[\"groups\"] if x[\"name\"] == \"$1\"), None)"
}

# has GROUP FIELD VALUE: the field of GROUP is VALUE now (for wait_for).
has() {
    [ "$(g "$1" "$2")" = "$3" ]
}

# workers_in STATE N: at least N workers are in STATE now.
workers_in() {
    local n
    n=$(json "$(ctl stats --json)" "sum(1 for w in d['workers'] if w['state'] == '$1')")
    [ "$n" -ge "$2" ]
}

# workers_back N: the broker knows at least N workers.
workers_back() {
    [ "$(json "$(ctl stats --json)" 'len(d["workers"])')" -ge "$1" ]
}

# started GROUP: jobs of GROUP reserve handed out since the broker started.
started() {
    g "$1" dispatched
}

# test_started GROUP: some job of GROUP was started since the broker started.
test_started() {
    [ "$(started "$1")" -gt 0 ]
}

# snap GROUP: one `ctl stats --json` of GROUP: SNAP_STARTED, SNAP_DONE, and SNAP_T, the time
# (us) half-way through the call that took it.
snap() {
    local a doc
    _now_us
    a=$REPLY
    doc=$(ctl stats --json)
    _now_us
    SNAP_T=$(((a + REPLY) / 2))
    read -r SNAP_STARTED SNAP_DONE < <(json "$doc" \
        "next('%d %d' % (x['dispatched'], x['done']) for x in d['groups'] if x['name'] == '$1')")
}

# within_pct GOT WANT PCT NAME: |GOT - WANT| <= PCT% of WANT.
within_pct() {
    if python3 -c 'import sys
g, w, p = map(float, sys.argv[1:4])
sys.exit(abs(g - w) > w * p / 100)' "$1" "$2" "$3"; then
        pass "$4 ($1, expected $2 +-$3%)"
    else
        fail "$4" "got $1, expected $2 within $3%"
    fi
}

# f64 X: X as a msgpack float 64, in hex.
f64() {
    python3 -c 'import struct, sys
print("cb" + struct.pack(">d", float(sys.argv[1])).hex())' "$1"
}

# wire_refused WHY FIELDS...: a raw group.limit with FIELDS is answered bad_request, saying WHY.
wire_refused() {
    local why=$1 rep
    shift
    rep=$("$send" "$url" --hex "$(mp_op group.limit group str bob "$@")")
    if [ "$(json "$rep" 'd["err"]')" = bad_request ] &&
        [[ "$(json "$rep" 'd["msg"]')" == *"$why"* ]]; then
        pass "group.limit $* is refused: $why"
    else
        fail "group.limit $* is refused: $why" "reply: $rep"
    fi
}

data_broker

# --- bad values: refused, nothing changes ----------------------------------------------------

for r in abc -1 1e3 0x10 .5 5. '' ' 5' 5/d 5/sec 0.0001/s 0.0004 2000000/s 1000001; do
    run ctl groups limit bob --rate "$r"
    if [ "$RC" -eq 2 ] && [[ "$ERR" == *"is not a rate from 0.001/s to 1000000/s"* ]]; then
        pass "--rate '$r' is refused (exit 2)"
    else
        fail "--rate '$r' is refused (exit 2)" "exit $RC" "$ERR"
    fi
done
for b in 0 -1 1000001 x; do
    ok_status 2 "--burst '$b' is refused (exit 2)" ctl groups limit bob --rate 10/s --burst "$b"
done
ok_status 2 "--none with --rate is refused" ctl groups limit bob --none --rate 5/s
ok_status 2 "--burst without a rate above 0 is refused" ctl groups limit bob --rate 0 --burst 3
ok_status 2 "a limit needs --rate or --none" ctl groups limit bob
ok_status 2 "a bad group name is refused" ctl groups limit 'b b' --rate 5/s
wire_refused "'rate' must be 0 (no limit) or 0.001 to 1000000" rate hex "$(f64 0.0001)"
wire_refused "'rate' must be 0 (no limit) or 0.001 to 1000000" rate hex "$(f64 1000001)"
wire_refused "'burst' must be 1 to 1000000" rate uint 5 burst uint 0
wire_refused "'burst' needs a rate above 0" rate uint 0 burst uint 3
wire_refused "missing required field 'rate'" burst uint 3
is "$(json "$(ctl stats --json)" '[x["name"] for x in d["groups"]]')" '[]' \
    "no group was created by a refused limit"

# --- a limited group beside an unlimited one, one pool of workers ----------------------------

run ctl groups limit bob --rate "$RATE/s" --burst "$BURST"
is "$OUT" "limited group bob to 20/s, burst 5" "ctl groups limit says what it set"
run ctl groups limit carol --rate 600/m
is "$OUT" "limited group carol to 10/s, burst 10" "600/m is 10/s; the burst defaults to 1 s worth"
run ctl groups limit dave --rate 0.5/s
is "$OUT" "limited group dave to 0.5/s, burst 1" "0.5/s has a burst of 1"
ok "--none removes a limit" ctl groups limit carol --none
is "$(g carol rate)" null "carol has no limit any more"

ctl push alice a -s 5000 >/dev/null
spawn pool "$SLUICE_BIN/worker-pool" -n 4 --handler noop
ok "the unlimited group's jobs all run" wait_for 60 has alice done 5000
ok "the pool's workers wait for jobs" wait_for 10 workers_in idle 4

ctl push alice a -s 5000 >/dev/null
_now_us
t0=$REPLY
ctl push bob b -s 5000 >/dev/null
ok "the unlimited group finishes its flood while the limited one is held" \
    wait_for 60 has alice done 10000
sleep 1 # a window to measure over; the rate is what is checked
snap bob
t1=$SNAP_T s1=$SNAP_STARTED
sleep 4
snap bob
t2=$SNAP_T s2=$SNAP_STARTED d2=$SNAP_DONE
want=$(python3 -c "print(round($BURST + $RATE * ($t2 - $t0) / 1e6, 1))")
within_pct "$s2" "$want" 5 "bob started rate*time+burst jobs since its push"
within_pct "$d2" "$want" 5 "bob finished rate*time+burst jobs since its push"
want=$(python3 -c "print(round($RATE * ($t2 - $t1) / 1e6, 1))")
within_pct "$((s2 - s1))" "$want" 5 "bob started rate jobs a second over a 4 s window"
is "$(json "$(ctl stats --json)" \
    "next(x['ready'] > 0 and x['ready'] + x['dispatched'] for x in d['groups'] if x['name'] == 'bob')")" \
    5000 "bob's other jobs wait, ready: every one of its 5000 is ready or started"
is "$(g bob rate)" 20 "stats: bob's rate"
is "$(g bob burst)" 5 "stats: bob's burst"
is "$(g alice rate)" null "stats: alice has no rate"
cmp_num "$(g bob holds)" -gt 50 "stats: bob was held back many times"
is "$(g alice holds)" 0 "stats: alice never was"
run ctl stats
like "$(grep '^bob ' <<<"$OUT")" " 20/s +5 +[1-9][0-9]*$" "ctl stats shows bob's rate, burst, holds"
like "$(grep '^alice ' <<<"$OUT")" " - +- +0$" "ctl stats shows no limit for alice"

# --- kill -9 and restart: the limit stays ------------------------------------------------------

data_broker_kill9
data_broker
is "$(g bob rate)" 20 "after kill -9, bob's rate is back"
is "$(g bob burst)" 5 "after kill -9, bob's burst is back"
is "$(g dave rate)" 0.5 "after kill -9, dave's rate is back"
is "$(g carol rate)" null "after kill -9, carol's removed limit stays removed"
ok "the pool's workers are back" wait_for 15 workers_back 4
ok "bob's jobs start again" wait_for 10 test_started bob
snap bob
t1=$SNAP_T s1=$SNAP_STARTED
sleep 3
snap bob
t2=$SNAP_T s2=$SNAP_STARTED
want=$(python3 -c "print(round($RATE * ($t2 - $t1) / 1e6, 1))")
within_pct "$((s2 - s1))" "$want" 5 "after the restart bob still starts rate jobs a second"

# --- --none: the rest runs at once -------------------------------------------------------------

run ctl groups limit bob --none
is "$OUT" "removed group bob's limit" "ctl groups limit --none says so"
ok "bob's remaining jobs run at once" wait_for 30 has bob ready 0
is "$(g bob rate)" null "stats: bob has no rate"
done_testing
