#!/usr/bin/env bash
# Limits and bad input (README "Limits"), the parts no other test covers:
# 1. names of exactly 128 bytes are accepted and of 129 refused (bad_request, nothing changes)
#    for a queue, a worker, a route (its group and its queue) and a push's client;
# 2. settling what a worker does not hold: an ack of an id never reserved, a second ack, an ack
#    of another worker's job each answer ok with the id counted in "missing" and change nothing;
# 3. 10,000 groups and 1,000 queues: every one counted exactly, stats still answers (timed),
#    the broker's memory stays sane;
# 4. a client that sends half a message and hangs: the broker keeps answering everyone else; the
#    half-open connection is held (nng 1.5.2 has no timeout for a partial message) until the
#    client goes, then its descriptor is released; a message declared larger than
#    --max-message is cut off at once; 20 such clients declaring 60 MB each do not grow the
#    broker's resident memory;
# 5. 1,000 clients connecting, asking and disconnecting (and 1,000 more leaving in the middle of
#    a message): the broker stays up, answers, and its descriptor count returns to where it was;
# 6. the job and byte limits (--max-jobs, --max-bytes) reached: queue_full, never an
#    out-of-memory kill, and the broker's resident memory stays near what the limit allows.
# Already covered elsewhere: payload at / one byte over --max-payload, pushes over --max-jobs and
# --max-bytes changing nothing, group names of 128/129 bytes (t_semantics.sh); garbage messages
# (t_garbage.sh); disconnects mid-handshake (t_listener.sh); a full disk (t_disk_full.sh).
# It runs for a minute or more under the sanitizers, so it starts before the short ones:
# tests/run: long
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

send=$SLUICE_TESTBIN/sl-send
raw=$SLUICE_TESTBIN/sl-raw
sock=$SLUICE_DIR/broker.ipc
url=ipc://$sock

# Resident memory (kB) and open descriptors of a process.
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
fds() {
    find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}
st() {
    json "$(ctl stats --json)" "$1"
}
# Memory bounds hold for a normal build; under ASan (SANITIZE=1) shadow memory and the
# quarantine of freed blocks make resident sizes meaningless, so those checks are skipped.
if ldd "$SLUICE_BIN/broker" 2>/dev/null | grep -q libasan; then
    sanitized=1
else
    sanitized=0
fi
# mem_lt GROWTH_KB BOUND_KB NAME: growth below bound, or a skip under ASan.
mem_lt() {
    if [ "$sanitized" = 1 ]; then
        pass "# SKIP $3: resident memory is not meaningful under ASan"
    else
        cmp_num "$1" -lt "$2" "$3"
    fi
}
# jf FILE EXPR: as json, for a document in FILE (a large one does not fit in an argument).
jf() {
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2], {"d": d})
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2"
}
snapshot() {
    st '[d["broker"][k] for k in ("jobs", "bytes", "next_id", "reserved")] + [(q["name"], q["ready"], q["reserved"], q["done"]) for q in d["queues"]] + [(g["name"], g["count"], g["route"]) for g in d["groups"]] + [w["id"] for w in d["workers"]]'
}
# The replies of sl-send --lines, one JSON per line: "field,field" of each, space separated.
fields() {
    python3 -c '
import json, sys
keys = sys.argv[1].split(",")
out = []
for line in sys.stdin:
    d = json.loads(line)
    out.append(",".join(str(d.get(k)) for k in keys))
print(" ".join(out))
' "$1"
}

start_broker

# --- 1. names at the length limit ----------------------------------------------------------

n128=$(printf 'q%.0s' $(seq 1 128))
n129=${n128}q
w128=$(printf 'w%.0s' $(seq 1 128))
g128=$(printf 'g%.0s' $(seq 1 128))
before=$(snapshot)
for req in \
    "$(mp_op queue.create name str "$n129")|queue.create, a name of 129 bytes" \
    "$(mp_op reserve worker str "${w128}w")|reserve, a worker name of 129 bytes" \
    "$(mp_op hello worker str "${w128}w")|hello, a worker name of 129 bytes" \
    "$(mp_op route.set group str "${g128}g" queue str default)|route.set, a group of 129 bytes" \
    "$(mp_op route.set group str bob queue str "$n129")|route.set, a queue of 129 bytes" \
    "$(mp_op route.unset group str "${g128}g")|route.unset, a group of 129 bytes" \
    "$(mp_push bob "${w128}c" 1 x)|push, a client name of 129 bytes"; do
    run "$send" "$url" --hex "${req%%|*}"
    is "$(json "$OUT" '[d["ok"], d["err"]]')" '[false, "bad_request"]' "raw ${req#*|}: bad_request"
done
is "$(snapshot)" "$before" "the names of 129 bytes changed nothing"

run "$send" "$url" --hex "$(mp_op queue.create name str "$n128")"
is "$(json "$OUT" 'd["ok"]')" true "queue.create of a 128-byte name is accepted"
run ctl queues create "$n129"
is "$RC" 2 "ctl queues create of a 129-byte name: exit 2 (checked by ctl)"
run "$send" "$url" --hex "$(mp_op route.set group str "$g128" queue str "$n128")"
is "$(json "$OUT" 'd["ok"]')" true "route.set of a 128-byte group to a 128-byte queue is accepted"
run "$send" "$url" --hex "$(mp_push "$g128" "${w128}" 1 job)"
is "$(json "$OUT" '[d["ok"], d["queue"]]')" "[true, \"$n128\"]" \
    "a push of the 128-byte group with a 128-byte client name goes to its 128-byte route"
run "$send" "$url" --hex "$(mp_op reserve worker str "$w128" from hex "$(mp_array 1)$(mp_str "$n128")")"
is "$(json "$OUT" '[d["ok"], len(d["jobs"])]')" '[true, 1]' "a worker of a 128-byte name reserves the job"
_no_workers() {
    [ "$(st 'len(d["workers"])')" = 0 ]
}
ok "... and once its connection closed it is gone from stats (its job back to ready)" \
    wait_for 10 _no_workers
is "$(st '[q["ready"] for q in d["queues"] if q["name"] == "'"$n128"'"]')" '[1]' \
    "the job is ready again in the 128-byte queue"
run "$send" "$url" --hex "$(mp_op route.unset group str "$g128")"
is "$(json "$OUT" '[d["ok"], d["moved"]]')" '[true, 1]' "route.unset of the 128-byte group moves its job"
stop_broker
retire_pgrp "$BROKER_PID" broker-names

# --- 2. acks of jobs a worker does not hold -------------------------------------------------

start_broker
ctl push bob job -s 3 >/dev/null
# w2 holds job 1 on a connection that stays open (sl-send reads its requests from a FIFO).
mkfifo "$SLUICE_DIR/w2.fifo"
exec 7<>"$SLUICE_DIR/w2.fifo"
spawn w2 "$send" "$url" --timeout 10000 --lines "$SLUICE_DIR/w2.fifo"
w2=$SPAWNED_PID
{ mp_op reserve worker str w2 max uint 1; echo; } >&7
ok "worker w2 reserved job 1" wait_for 10 grep -q '"id": 1,' "$SLUICE_DIR/w2.log"
# w1, on one connection: reserves job 2, then acks an id nobody reserved, w2's job, job 3 (ready,
# not reserved), its own job twice, and a mix.
{
    mp_op reserve worker str w1 max uint 1; echo
    mp_op ack worker str w1 ids hex "$(mp_array 1)$(mp_uint 999)"; echo
    mp_op ack worker str w1 ids hex "$(mp_array 1)$(mp_uint 1)"; echo
    mp_op ack worker str w1 ids hex "$(mp_array 1)$(mp_uint 3)"; echo
    mp_op nack worker str w1 ids hex "$(mp_array 1)$(mp_uint 1)"; echo
    mp_op release worker str w1 ids hex "$(mp_array 1)$(mp_uint 1)"; echo
    mp_op touch worker str w1 ids hex "$(mp_array 1)$(mp_uint 1)"; echo
    mp_op stats; echo
    mp_op ack worker str w1 ids hex "$(mp_array 1)$(mp_uint 2)"; echo
    mp_op ack worker str w1 ids hex "$(mp_array 1)$(mp_uint 2)"; echo
    mp_op ack worker str w1 ids hex "$(mp_array 3)$(mp_uint 2)$(mp_uint 1)$(mp_uint 4)"; echo
} >"$SLUICE_DIR/w1.lines"
run "$send" "$url" --lines "$SLUICE_DIR/w1.lines"
is "$RC" 0 "every request of w1 got a reply"
mapfile -t rep <<<"$OUT"
is "$(json "${rep[0]}" '[j["id"] for j in d["jobs"]]')" '[2]' "w1 reserved job 2"
is "$(printf '%s\n' "${rep[1]}" "${rep[2]}" "${rep[3]}" | fields ok,n,missing)" \
    "True,0,1 True,0,1 True,0,1" \
    "acks of an unknown id, of w2's job and of a ready job: ok, n 0, missing 1 each"
is "$(printf '%s\n' "${rep[4]}" "${rep[5]}" "${rep[6]}" | fields ok,n,missing)" \
    "True,0,1 True,0,1 True,0,1" "nack, release and touch of w2's job by w1: n 0, missing 1 each"
is "$(json "${rep[7]}" '[d["broker"]["jobs"], d["broker"]["reserved"], [(q["ready"], q["done"], q["failed"]) for q in d["queues"]]]')" \
    '[3, 2, [[1, 0, 0]]]' "... and none of it changed anything: 3 jobs, 2 reserved, 1 ready, none done or failed"
is "$(printf '%s\n' "${rep[8]}" "${rep[9]}" "${rep[10]}" | fields ok,n,missing)" \
    "True,1,0 True,0,1 True,0,3" \
    "w1 acks its job: n 1; again: missing 1; with w2's and an unknown id: missing 3"
is "$(st '[d["broker"]["jobs"], d["broker"]["reserved"], [(q["ready"], q["reserved"], q["done"]) for q in d["queues"]]]')" \
    '[2, 1, [[1, 1, 1]]]' "only w1's own job was done; w2 still holds job 1, job 3 is ready"
exec 7>&-
stop_pgrp "$w2"
retire_pgrp "$w2" w2
stop_broker
retire_pgrp "$BROKER_PID" broker-acks

# --- 3. 10,000 groups and 1,000 queues ---------------------------------------------------------

start_broker
rss0=$(rss_kb "$BROKER_PID")
# One connection, one push per group (batches of requests as lines of hex).
python3 -c '
import sys
def s(b):
    n = len(b)
    return (bytes([0xa0 | n]) if n < 32 else bytes([0xd9, n])) + b
for i in range(10000):
    m = bytes([0x83]) + s(b"op") + s(b"push") + s(b"group") + s(b"g%05d" % i) + s(b"payloads") + bytes([0x91, 0xc4, 1]) + b"x"
    print(m.hex())
' >"$SLUICE_DIR/groups.lines"
run "$send" "$url" --timeout 10000 --lines "$SLUICE_DIR/groups.lines"
is "$RC" 0 "10,000 pushes, one per group, each got a reply"
is "$(grep -c '"ok": true' <<<"$OUT")" 10000 "... all 10,000 ok"
elapsed_ms ctl --timeout 10000 stats --json
is "$RC" 0 "stats answers with 10,000 groups"
diag "stats with 10,000 groups took $ELAPSED_MS ms"
cmp_num "$ELAPSED_MS" -lt 5000 "... within 5 s (took $ELAPSED_MS ms)"
ctl --timeout 10000 stats --json >"$SLUICE_DIR/stats.json"
is "$(jf "$SLUICE_DIR/stats.json" '[len(d["groups"]), sum(g["count"] for g in d["groups"]), len(set(g["name"] for g in d["groups"])), all(g["count"] == 1 and g["ready"] == 1 for g in d["groups"]), d["broker"]["jobs"]]')" \
    '[10000, 10000, 10000, true, 10000]' "10,000 distinct groups listed, each counted exactly: 1 job each"
python3 -c '
import sys
def s(b):
    n = len(b)
    return (bytes([0xa0 | n]) if n < 32 else bytes([0xd9, n])) + b
for i in range(1000):
    print((bytes([0x82]) + s(b"op") + s(b"queue.create") + s(b"name") + s(b"q%04d" % i)).hex())
for i in range(1000):
    m = bytes([0x84]) + s(b"op") + s(b"push") + s(b"group") + s(b"g%05d" % i) + s(b"queue") + s(b"q%04d" % i) + s(b"payloads") + bytes([0x91, 0xc4, 1]) + b"y"
    print(m.hex())
' >"$SLUICE_DIR/queues.lines"
run "$send" "$url" --timeout 10000 --lines "$SLUICE_DIR/queues.lines"
is "$(grep -c '"ok": true' <<<"$OUT")" 2000 "1,000 queues created and one job pushed to each: 2,000 ok"
ctl --timeout 10000 stats --json >"$SLUICE_DIR/stats.json"
is "$(jf "$SLUICE_DIR/stats.json" '[len(d["queues"]), sum(1 for q in d["queues"] if q["name"].startswith("q") and q["ready"] == 1), d["broker"]["jobs"], sum(g["count"] for g in d["groups"])]')" \
    '[1001, 1000, 11000, 11000]' "1,001 queues, each new one holding its job; 11,000 jobs, all counted in their groups"
"$send" "$url" --hex "$(mp_op reserve worker str wq max uint 10000)" >"$SLUICE_DIR/reserve.json"
is "$(jf "$SLUICE_DIR/reserve.json" 'len(d["jobs"])')" 10000 "a reserve across 1,001 queues hands out 10,000 jobs"
rss1=$(rss_kb "$BROKER_PID")
diag "resident memory: $rss0 kB at start, $rss1 kB with 10,000 groups, 1,000 queues, 11,000 jobs"
mem_lt "$((rss1 - rss0))" 65536 "the broker's resident memory grew by less than 64 MB ($(((rss1 - rss0) / 1024)) MB)"
ok "the broker answers ping" ctl ping
stop_broker
is "$?" 0 "the broker exits 0 on SIGTERM (under SANITIZE=1: and frees it all)"
retire_pgrp "$BROKER_PID" broker-many

# --- 4. half a message, and hanging --------------------------------------------------------------

start_broker --max-message 1M --max-payload 512K
fd0=$(fds "$BROKER_PID")
spawn half "$raw" "$sock" half 1000 10 60000 "$SLUICE_DIR/half.ready"
half=$SPAWNED_PID
ok "a client sent 10 of the 1,000 bytes it declared and hangs" wait_for 10 test -e "$SLUICE_DIR/half.ready"
elapsed_ms ctl ping
is "$RC" 0 "another client's ping is answered meanwhile"
cmp_num "$ELAPSED_MS" -lt 3000 "... at once (took $ELAPSED_MS ms)"
run ctl push bob x -s 100
is "$RC" 0 "... and pushes are stored"
run "$raw" "$sock" half 1000 10 2000
like "$OUT" '^held_ms=2[0-9]{3}$' "a half-sent message holds its connection: still open after 2 s (no timeout in nng 1.5.2)"
ok "the first hanging client is still connected" alive "$half"
cmp_num "$(fds "$BROKER_PID")" -gt "$fd0" "... and holds one more descriptor of the broker"
stop_pgrp "$half"
retire_pgrp "$half" half
_fds_back() {
    [ "$(fds "$BROKER_PID")" -le "$fd0" ]
}
ok "once the client is gone the broker's descriptors return to $fd0" wait_for 10 _fds_back
run "$raw" "$sock" half 2000000 10 5000
like "$OUT" '^closed_after_ms=' "a message declared larger than --max-message: the broker closes the connection"
cmp_num "${OUT#closed_after_ms=}" -lt 3000 "... at once (after ${OUT#closed_after_ms=} ms)"
# ctl push sizes its requests by the broker's --max-message (ping says it): many payloads
# that together exceed it go in several requests, a payload at --max-payload still goes, and
# one too large for any request is refused by ctl at once.
run ctl push big "$(head -c 100000 /dev/zero | tr '\0' y)" -s 40
is "$RC" 0 "forty 100,000-byte payloads (4 MB in all, --max-message 1M) are pushed"
like "$OUT" '^pushed 40 jobs to big' "... all forty"
head -c $((512 * 1024)) /dev/zero | tr '\0' z >"$SLUICE_DIR/max.txt"
echo >>"$SLUICE_DIR/max.txt"
head -c 2000 /dev/zero | tr '\0' s >>"$SLUICE_DIR/max.txt"
echo >>"$SLUICE_DIR/max.txt"
run ctl push big --file "$SLUICE_DIR/max.txt"
is "$RC" 0 "a payload of exactly --max-payload (512K) and a small one, from a file"
head -c $((1024 * 1024)) /dev/zero | tr '\0' w >"$SLUICE_DIR/huge.txt"
elapsed_ms ctl push big --file "$SLUICE_DIR/huge.txt"
cmp_num "$ELAPSED_MS" -lt 2000 "a payload of 1 MiB, too large for any request, is refused at once, not after a timeout ($ELAPSED_MS ms)"
run ctl push big --file "$SLUICE_DIR/huge.txt"
is "$RC" 1 "... exit 1"
like "$ERR" 'does not fit in a request the broker takes' "... said clearly"
is "$(st '[g["count"] for g in d["groups"] if g["name"] == "big"][0]')" 42 "group big holds the 42 jobs pushed, nothing more"
stop_broker
retire_pgrp "$BROKER_PID" broker-half

# A request the broker drops as too large (80,000 ids to retry, ~900 KB, --max-message 4K):
# ctl says there was no reply and ends; closing a connection that nng still resends on must
# not hang it (nng 1.5.2), so it exits within its --timeout and a second.
start_broker --max-message 4K --max-payload 1K
seq 1000000000 1000080000 >"$SLUICE_DIR/ids"
# shellcheck disable=SC2046
elapsed_ms timeout 30 "$SLUICE_BIN/ctl" --timeout 1s dead retry $(cat "$SLUICE_DIR/ids")
is "$RC" 3 "ctl exits 3 (no reply) for a request the broker drops"
cmp_num "$ELAPSED_MS" -lt 10000 "... and ends ($ELAPSED_MS ms; its timeout is 1 s)"
stop_broker
retire_pgrp "$BROKER_PID" broker-small

start_broker
rss0=$(rss_kb "$BROKER_PID")
pids=()
for i in $(seq 1 20); do
    "$raw" "$sock" half 60000000 100 60000 "$SLUICE_DIR/big$i.ready" >/dev/null &
    pids+=($!)
done
_all_big() {
    local i
    for i in $(seq 1 20); do
        [ -e "$SLUICE_DIR/big$i.ready" ] || return 1
    done
}
ok "20 clients each declared a 60 MB message, sent 100 bytes and hang" wait_for 20 _all_big
ok "the broker answers ping meanwhile" ctl ping
rss1=$(rss_kb "$BROKER_PID")
diag "resident memory: $rss0 kB before, $rss1 kB with 20 x 60 MB declared"
mem_lt "$((rss1 - rss0))" 32768 \
    "... and its resident memory grew by less than 32 MB (the declared bytes never arrived)"
kill "${pids[@]}" 2>/dev/null
wait "${pids[@]}" 2>/dev/null
ok "the broker answers ping after they left" ctl ping

# --- 5. 1,000 clients connecting and disconnecting ---------------------------------------------

fd0=$(fds "$BROKER_PID")
run "$raw" "$sock" cycle 1000
is "$OUT" "ok=1000 failed=0" "1,000 clients connected, pinged and left (and 1,000 more left mid-message): 1,000 answers"
ok "the broker is up" alive "$BROKER_PID"
ok "... and answers ctl ping" ctl ping
ok "its descriptor count returns to $fd0" wait_for 20 _fds_back
stop_broker
is "$?" 0 "the broker exits 0 on SIGTERM"
retire_pgrp "$BROKER_PID" broker-cycle

# --- 6. the job and byte limits reached ---------------------------------------------------------

start_broker --max-jobs 100000 --max-bytes 16M
rss0=$(rss_kb "$BROKER_PID")
p1000=$(printf 'p%.0s' $(seq 1 1000))
run ctl push big "$p1000" -s 100000 --batch 1000
is "$RC" 1 "pushing 100 MB of 1 KB payloads into --max-bytes 16M: exit 1"
like "$ERR" "queue_full" "... queue_full"
like "$ERR" "pushed 16000 jobs to big before the error" "... after 16,000 jobs (16,000,000 bytes) were stored"
for i in 1 2 3 4 5; do
    ctl push big "$p1000" -s 1000 >/dev/null 2>&1
done
ok "the broker is still running (no out-of-memory kill)" alive "$BROKER_PID"
S=$(ctl stats --json)
is "$(json "$S" '[d["broker"]["jobs"], d["broker"]["bytes"] <= d["broker"]["max_bytes"]]')" '[16000, true]' \
    "it holds 16,000 jobs, within --max-bytes; the later pushes stored nothing"
held=$(json "$S" '(d["broker"]["bytes"] + d["broker"]["mem_bytes"]) // 1024')
rss1=$(rss_kb "$BROKER_PID")
diag "resident memory: $rss0 kB at start, $rss1 kB holding $held kB of jobs"
mem_lt "$((rss1 - rss0))" "$((held + 16384))" \
    "its resident memory stays near the limit: grew $((rss1 - rss0)) kB for $held kB held"
ctl purge --group big >/dev/null
run ctl push small x -s 200000 --batch 5000
is "$RC" 1 "pushing 200,000 jobs into --max-jobs 100000: exit 1"
like "$ERR" "pushed 100000 jobs to small before the error" "... after exactly 100,000 were stored"
rss2=$(rss_kb "$BROKER_PID")
for i in 1 2 3 4 5; do
    ctl push small x -s 5000 >/dev/null 2>&1
done
rss3=$(rss_kb "$BROKER_PID")
mem_lt "$((rss3 - rss2))" 8192 "refused pushes at the limit do not grow its memory ($((rss3 - rss2)) kB)"
is "$(st 'd["broker"]["jobs"]')" 100000 "it holds exactly 100,000 jobs"
stop_broker
is "$?" 0 "the broker exits 0 on SIGTERM"

done_testing
