#!/usr/bin/env bash
# Idempotency keys of push (PROTOCOL.md, push): a request resent with the same (client, seq)
# is not stored again and is answered with the first answer and dup: true; another seq or
# another client is a new push; a refused push does not use up its key; the broker remembers
# the answers to the last 64 keys of each client, which seqs it stored before them (answered
# dup and stale), and up to 16,384 clients. The requests are built by hand (lib_mp.sh) and
# sent raw with sl-send, each on a connection of its own as a resend after a reconnect would
# be; then ctl push --client/--seq, which lets a script resend a push, of any number of
# requests; last, with a journal, such a push cut short by a kill -9 of the broker and run
# again after the restart stores every job exactly once.
# It runs for a minute or more under the sanitizers, so it starts before the short ones:
# tests/run: long
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"

send=$SLUICE_TESTBIN/sl-send
url=ipc://$SLUICE_DIR/broker.ipc

# The broker's stats (the reply of a raw stats request).
stats() {
    "$send" "$url" --hex "$(mp_op stats)"
}

# reply_is REPLY EXPR WANT NAME: the Python expression EXPR over the reply d is WANT.
reply_is() {
    is "$(json "$1" "$2")" "$3" "$4"
}

# Bulk requests are made by Python: lines of hex, for sl-send --lines.
# gen_pushes CLIENT_FMT FIRST LAST SEQ_FMT: a push of one job of group g per i in FIRST..LAST,
# with client CLIENT_FMT % i and seq SEQ_FMT % i (Python %-formats; SEQ_FMT a number).
gen_pushes() {
    python3 -c '
import sys
def s(x):
    b = x.encode()
    return (bytes([0xa0 | len(b)]) if len(b) < 32 else bytes([0xd9, len(b)])) + b
def u(n):
    return bytes([n]) if n < 128 else b"\xcf" + n.to_bytes(8, "big")
cf, first, last, sf = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
out = []
for i in range(first, last + 1):
    m = (b"\x85" + s("op") + s("push") + s("group") + s("g") + s("client") + s(cf % i if "%" in cf else cf)
         + s("seq") + u(int(sf % i if "%" in sf else sf)) + s("payloads") + b"\x91\xc4\x01x")
    out.append(m.hex())
print("\n".join(out))
' "$@"
}

start_broker

payloads=()
for i in $(seq 0 99); do
    payloads+=("p$i")
done
req=$(mp_push bob c1 1 "${payloads[@]}")

# --- the same key twice -------------------------------------------------------------------

run "$send" "$url" --hex "$req"
is "$RC" 0 "the first push of (c1, 1) gets a reply"
first=$OUT
reply_is "$first" '[d["ok"], d["n"], d["first_id"], d["queue"], d["dup"]]' \
    '[true, 100, 1, "default", false]' "the first push stores 100 jobs, ids 1..100, dup false"

run "$send" "$url" --hex "$req"
is "$RC" 0 "the resent push of (c1, 1) gets a reply"
again=$OUT
reply_is "$again" 'd["dup"]' true "the resent push is answered dup: true"
reply_is "$again" '[d["ok"], d["n"], d.get("first_id")]' '[true, 100, 1]' \
    "the resent push repeats the first answer's n and first_id"
reply_is "$again" '"queue" in d' false \
    "the resent push names no queue (PROTOCOL.md: the queue is not remembered)"

s=$(stats)
reply_is "$s" '[d["broker"]["jobs"], d["broker"]["next_id"]]' '[100, 101]' \
    "the broker holds 100 jobs, not 200, and used 100 ids"
reply_is "$s" '[(g["name"], g["count"], g["pushed"]) for g in d["groups"]]' '[["bob", 100, 100]]' \
    "group bob: count and pushed 100"
reply_is "$s" '[(q["ready"], q["pushed"]) for q in d["queues"] if q["name"] == "default"]' '[[100, 100]]' \
    "queue default: ready and pushed 100"

# The key alone decides: other payloads under a key already stored are not stored either.
run "$send" "$url" --hex "$(mp_push bob c1 1 other payloads)"
reply_is "$OUT" '[d["dup"], d.get("first_id"), d["n"]]' '[true, 1, 100]' \
    "a push reusing (c1, 1) with other payloads is answered with the first answer"
reply_is "$(stats)" 'd["broker"]["jobs"]' 100 "... and stores nothing"

# --- other keys ---------------------------------------------------------------------------

run "$send" "$url" --hex "$(mp_push bob c1 2 a b c)"
reply_is "$OUT" '[d["n"], d["first_id"], d["dup"]]' '[3, 101, false]' \
    "(c1, 2), a new seq, is stored: ids 101..103"
run "$send" "$url" --hex "$(mp_push bob c2 1 a b)"
reply_is "$OUT" '[d["n"], d["first_id"], d["dup"]]' '[2, 104, false]' \
    "(c2, 1), the same seq from another client, is stored: ids 104..105"
run "$send" "$url" --hex "$(mp_push bob "" 0 a)"
reply_is "$OUT" '[d["n"], d["first_id"], d["dup"]]' '[1, 106, false]' "a push without a key is stored"
run "$send" "$url" --hex "$(mp_push bob "" 0 a)"
reply_is "$OUT" '[d["n"], d["first_id"], d["dup"]]' '[1, 107, false]' \
    "the same push without a key sent again is stored again"
run "$send" "$url" --hex "$(mp_push bob c1 2 a b c)"
reply_is "$OUT" '[d["dup"], d.get("first_id")]' '[true, 101]' "(c1, 2) resent is a dup of ids 101..103"
reply_is "$(stats)" '[d["broker"]["jobs"], d["broker"]["next_id"]]' '[107, 108]' \
    "the broker holds 107 jobs"

# client and seq come together or not at all.
half=$(mp_op push group str bob client str c9 payloads hex "$(mp_array 1)$(mp_bin x)")
run "$send" "$url" --hex "$half"
reply_is "$OUT" 'd["err"]' bad_request "a push with client but no seq is bad_request"
half=$(mp_op push group str bob seq uint 5 payloads hex "$(mp_array 1)$(mp_bin x)")
run "$send" "$url" --hex "$half"
reply_is "$OUT" 'd["err"]' bad_request "a push with seq but no client is bad_request"
reply_is "$(stats)" 'd["broker"]["jobs"]' 107 "... neither stored anything"

# A refused push does not use up its key: sent again where it can be stored, it is stored.
nokey=$(mp_op push group str bob queue str nope client str c3 seq uint 1 \
    payloads hex "$(mp_array 1)$(mp_bin x)")
run "$send" "$url" --hex "$nokey"
reply_is "$OUT" 'd["err"]' not_found "a keyed push (c3, 1) to a missing queue is not_found"
run "$send" "$url" --hex "$(mp_push bob c3 1 x)"
reply_is "$OUT" '[d["n"], d["first_id"], d["dup"]]' '[1, 108, false]' \
    "(c3, 1) sent again to a queue that exists is stored, not taken for a dup"

# --- concurrent resends -------------------------------------------------------------------

req=$(mp_push race c4 1 r1 r2 r3)
pids=()
for i in 1 2 3 4 5 6 7 8; do
    "$send" "$url" --hex "$req" >"$SLUICE_DIR/race.$i" 2>&1 &
    pids+=("$!")
done
# Only these: a bare wait would also wait for the broker, a child of this shell too.
for p in "${pids[@]}"; do
    wait "$p"
done
cat "$SLUICE_DIR"/race.* >"$SLUICE_DIR/race"
is "$(grep -c '"dup": false' "$SLUICE_DIR/race")" 1 "8 concurrent sends of one key: exactly one is stored"
is "$(grep -c '"dup": true' "$SLUICE_DIR/race")" 7 "... the other 7 are answered dup"
is "$(grep -o '"first_id": [0-9]*' "$SLUICE_DIR/race" | sort -u)" '"first_id": 109' \
    "... all 8 with the same first_id"
reply_is "$(stats)" '[(g["name"], g["count"]) for g in d["groups"] if g["name"] == "race"]' \
    '[["race", 3]]' "group race holds 3 jobs, not 24"

# --- the window of remembered keys --------------------------------------------------------

# Client w pushes seq 1..65 (one job each, ids 112..176): seq 2..65 are its last 64.
gen_pushes w 1 65 %d >"$SLUICE_DIR/window"
run "$send" "$url" --lines "$SLUICE_DIR/window"
is "$RC" 0 "client w's 65 pushes all get a reply"
is "$(grep -c '"dup": false' <<<"$OUT")" 65 "... and all 65 are stored"
jobs=$(json "$(stats)" 'd["broker"]["jobs"]')
is "$jobs" 176 "the broker holds 176 jobs"
run "$send" "$url" --hex "$(mp_push g w 2 x)"
reply_is "$OUT" '[d["dup"], d.get("first_id")]' '[true, 113]' \
    "(w, 2), the oldest of w's last 64 keys, is remembered: dup with its first_id"
run "$send" "$url" --hex "$(mp_push g w 60 x)"
reply_is "$OUT" '[d["dup"], d.get("first_id")]' '[true, 171]' \
    "(w, 60) is remembered: dup with its first_id"
run "$send" "$url" --hex "$(mp_push g w 1 x)"
reply_is "$OUT" '[d["ok"], d["dup"], d.get("stale"), "first_id" in d, "n" in d]' \
    '[true, true, true, false, false]' \
    "(w, 1), older than the window, is answered dup and stale, without n and first_id"
reply_is "$(stats)" 'd["broker"]["jobs"]' "$jobs" "... none of the three resends stored anything"

# --- many clients -------------------------------------------------------------------------

# 10,000 more clients push once each. The broker remembers up to 16,384 clients, so the first
# client's key is still known afterwards.
run "$send" "$url" --hex "$(mp_push g old 1 x)"
reply_is "$OUT" '[d["first_id"], d["dup"]]' '[177, false]' "client old pushes (old, 1): id 177"
gen_pushes 'k%d' 1 5000 1 >"$SLUICE_DIR/clients.1"
gen_pushes 'k%d' 5001 10000 1 >"$SLUICE_DIR/clients.2"
"$send" "$url" --lines "$SLUICE_DIR/clients.1" >"$SLUICE_DIR/clients.1.out" 2>&1 &
p1=$!
"$send" "$url" --lines "$SLUICE_DIR/clients.2" >"$SLUICE_DIR/clients.2.out" 2>&1 &
p2=$!
wait "$p1"
rc1=$?
wait "$p2"
rc2=$?
is "$rc1:$rc2" 0:0 "10,000 pushes by 10,000 clients all get a reply"
is "$(cat "$SLUICE_DIR"/clients.*.out | grep -c '"dup": false')" 10000 "... and all are stored"
run "$send" "$url" --hex "$(mp_push g old 1 x)"
reply_is "$OUT" '[d["dup"], d.get("first_id")]' '[true, 177]' \
    "(old, 1) resent after 10,000 other clients is still a dup of id 177 (16,384 clients remembered)"
reply_is "$(stats)" 'd["broker"]["jobs"]' $((177 + 10000)) "the broker holds 10,177 jobs"

# --- keys older than the last 64 --------------------------------------------------------

jobs=$(json "$(stats)" 'd["broker"]["jobs"]')
run "$send" "$url" --hex "$(mp_push g w 66 x)"
reply_is "$OUT" '[d["dup"], d.get("stale"), d["n"]]' '[false, null, 1]' \
    "(w, 66), the next seq, is stored"

# A seq never stored is stored whenever it comes, however much older than the last 64 it is.
gen_pushes w2 1 9 %d >"$SLUICE_DIR/gap"
gen_pushes w2 11 100 %d >>"$SLUICE_DIR/gap"
run "$send" "$url" --lines "$SLUICE_DIR/gap"
is "$(grep -c '"dup": false' <<<"$OUT")" 99 "client w2 pushes seqs 1..100 but 10: 99 stored"
run "$send" "$url" --hex "$(mp_push g w2 10 x)"
reply_is "$OUT" '[d["dup"], d["n"]]' '[false, 1]' \
    "(w2, 10), a gap 90 keys back, is stored, not taken for one stored long ago"
run "$send" "$url" --hex "$(mp_push g w2 9 x)"
reply_is "$OUT" '[d["dup"], d.get("stale")]' '[true, true]' "(w2, 9) is stale"
reply_is "$(stats)" 'd["broker"]["jobs"]' $((jobs + 101)) \
    "... 101 jobs more in all: (w, 66) and w2's 100"

# --- ctl push --client --seq: a script resends a push from another process ----------------

jobs=$(json "$(stats)" 'd["broker"]["jobs"]')
ok "ctl push --client me --seq 5 stores" ctl push g2 a --client me --seq 5
run ctl push g2 a --client me --seq 5
is "$RC" 0 "the same key from a second ctl is answered"
like "$OUT" "^pushed 1 job to g2, 1 of them stored before" "... and ctl says it was stored before"
reply_is "$(stats)" 'd["broker"]["jobs"]' $((jobs + 1)) "... and stored once"
printf 'l1\nl2\nl3\n' >"$SLUICE_DIR/three"
ok "--file, one job per request, seqs 1..3" ctl push g2 --file "$SLUICE_DIR/three" --batch 1 \
    --client f3
ok "the same command again" ctl push g2 --file "$SLUICE_DIR/three" --batch 1 --client f3
reply_is "$(stats)" 'd["broker"]["jobs"]' $((jobs + 4)) "... stores none of the three again"
printf 'l1\nl2\nl3\nl4\n' >"$SLUICE_DIR/four"
ok "the file grown by one line, sent again" ctl push g2 --file "$SLUICE_DIR/four" --batch 1 \
    --client f3 --seq 1
reply_is "$(stats)" 'd["broker"]["jobs"]' $((jobs + 5)) "... stores only the new line (seq 4)"
# More requests than the broker keeps answers for: 100 of 10 jobs, seqs 1..100. The same
# command again finds every key stored (36 of them stale) and stores nothing.
ok "ctl push -s 1000 --batch 10 --client big: 100 requests" ctl push g3 x -s 1000 --batch 10 \
    --client big
jobs=$(json "$(stats)" 'd["broker"]["jobs"]')
run ctl push g3 x -s 1000 --batch 10 --client big
is "$RC" 0 "the same command again exits 0"
like "$OUT" "^pushed 1000 jobs to g3, 1000 of them stored before" \
    "... and says all 1000 jobs were stored before"
reply_is "$(stats)" 'd["broker"]["jobs"]' "$jobs" "... and stores none of them again"
run ctl push g3 x -s 1100 --batch 10 --client big
is "$RC" 0 "the command for 1100 jobs (seqs 1..110) exits 0"
like "$OUT" "^pushed 1100 jobs to g3 .*, 1000 of them stored before" "... 1000 stored before"
reply_is "$(stats)" 'd["broker"]["jobs"]' $((jobs + 100)) "... and stores only the last 100"

ok_status 2 "--seq without --client is a usage error" ctl push g2 x --seq 3
ok_status 2 "an invalid --client name is a usage error" ctl push g2 x --client 'a b'
ok_status 2 "--seq 0 is a usage error" ctl push g2 x --client me --seq 0

ok "the broker answers ping" ctl ping
stop_broker
is "$?" 0 "the broker exits 0 on TERM"

# --- with a journal: a push cut short by kill -9, run again ----------------------------------

# jbroker: a broker with its journal in $SLUICE_DIR/data (start_broker adds --no-journal).
# --fsync never: a reply still waits until its records are written, which a kill -9 of the
# broker (not of the machine) keeps.
nb=0
jbroker() {
    nb=$((nb + 1))
    spawn "jbroker$nb" "$SLUICE_BIN/broker" --data-dir "$SLUICE_DIR/data" --fsync never
    BROKER_PID=$SPAWNED_PID
    BROKER_URL=""
    _broker_answered=0
    wait_for 10 _broker_up
    [ "$_broker_answered" = 1 ] || bail_out "the journaled broker did not start (jbroker$nb.log)"
}
jobs_at_least() {
    [ "$(json "$(ctl stats --json)" 'd["broker"]["jobs"]')" -ge "$1" ]
}
total=20000
seq -f 'j%.0f' 1 "$total" >"$SLUICE_DIR/jobs"

# The push reads its jobs from a pipe: 1,000 lines (100 requests, more than the 64 answers
# kept), of which the first 990 are sent at once and the last 10 only at the end of the input,
# after the broker was killed.
jbroker
mkfifo "$SLUICE_DIR/feed"
spawn pusher "$SLUICE_BIN/ctl" push k --file "$SLUICE_DIR/feed" --batch 10 --client cut
pusher=$SPAWNED_PID
exec 7<>"$SLUICE_DIR/feed"
head -n 1000 "$SLUICE_DIR/jobs" >&7
wait_for 30 jobs_at_least 990 || bail_out "ctl push stored fewer than 990 jobs in 30 s"
{
    kill -KILL "$BROKER_PID"
    wait "$BROKER_PID"
} 2>/dev/null
exec 7>&-
wait_for 30 _pgrp_dead "$pusher"
wait "$pusher"
is "$?" 3 "ctl push whose broker is killed mid-push exits 3"
jbroker
reply_is "$(ctl stats --json)" 'd["broker"]["jobs"]' 990 \
    "the restarted broker holds the 990 jobs confirmed before the kill"
run ctl push k --file "$SLUICE_DIR/jobs" --batch 10 --client cut
is "$RC" 0 "the same push of all $total jobs again exits 0"
like "$OUT" "^pushed $total jobs to k .*, 990 of them stored before" \
    "... and says the 990 jobs stored before the kill were stored before"
reply_is "$(ctl stats --json)" '[d["broker"]["jobs"], d["broker"]["next_id"]]' \
    "[$total, $((total + 1))]" "the broker holds exactly $total jobs, each stored once"
stop_pgrp "$BROKER_PID" 5
is "$?" 0 "the journaled broker exits 0 on TERM"
jbroker
run ctl push k --file "$SLUICE_DIR/jobs" --batch 10 --client cut
is "$RC" 0 "after a restart, the completed command again exits 0"
like "$OUT" "^pushed $total jobs to k, $total of them stored before" "... all stored before"
reply_is "$(ctl stats --json)" 'd["broker"]["jobs"]' "$total" "... and it stores nothing"
stop_pgrp "$BROKER_PID" 5
is "$?" 0 "the journaled broker exits 0 on TERM"

done_testing
