#!/usr/bin/env bash
# The broker's journal (--data-dir, --fsync, --segment-size, --repair):
# 1. queues (priority, weight, max in-flight, paused), routes and jobs survive a restart, after
#    SIGTERM and after kill -9; a job reserved at a kill -9 comes back ready at the head of its
#    queue with its attempt counted;
# 2. kill -9 of the broker in the middle of 200,000 jobs pushed by ctl and done by real workers
#    (--fsync always): no confirmed job is lost, and a job runs twice only if it was reserved at
#    the kill;
# 3. a torn or garbage tail of the newest segment is cut at start, keeping every complete
#    record; damage in the middle of the records stops the start (exit 1, naming the segment
#    and the offset) unless --repair;
# 4. an idempotent push resent after a restart is answered dup: true and stores nothing;
# 5. after 1,000,000 jobs pushed and acked with --segment-size 1M, the journal is small again;
# 6. a write that fails (EFBIG past `ulimit -f`): the request is answered io, stats say
#    journal_ok false and pushes are refused until the limit is raised; then the journal
#    recovers and what was confirmed survives a restart.
# It runs for a minute or more under the sanitizers, so it starts before the short ones:
# tests/run: long
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"

send=$SLUICE_TESTBIN/sl-send
url=ipc://$SLUICE_DIR/broker.ipc
[ -x "$send" ] || bail_out "$send is missing (make $send)"
command -v prlimit >/dev/null || bail_out "prlimit (util-linux) is missing"

# --- helpers ------------------------------------------------------------------------------

_nbrokers=0

# jbroker ARGS...: starts a broker with its journal on (start_broker would add --no-journal)
# and waits until it answers ping. Sets BROKER_PID and BROKER_LOG. With JB_FSIZE set, the broker
# runs under a soft file size limit of JB_FSIZE KiB (`ulimit -S -f`: the hard limit stays, so
# prlimit can raise the soft one again without CAP_SYS_RESOURCE). Bails out if it exits or does
# not answer within 10 s.
jbroker() {
    _nbrokers=$((_nbrokers + 1))
    BROKER_LOG=$SLUICE_DIR/broker$_nbrokers.log
    if [ -n "${JB_FSIZE:-}" ]; then
        # shellcheck disable=SC2016 # expanded by the inner bash
        spawn "broker$_nbrokers" bash -c 'ulimit -S -f "$0" && exec "$@"' "$JB_FSIZE" \
            "$SLUICE_BIN/broker" "$@"
    else
        spawn "broker$_nbrokers" "$SLUICE_BIN/broker" "$@"
    fi
    BROKER_PID=$SPAWNED_PID
    wait_for 10 _up_or_dead "$BROKER_PID"
    alive "$BROKER_PID" || bail_out "broker $* exited during start-up (broker$_nbrokers.log below)"
    ctl --timeout 500 ping >/dev/null 2>&1 ||
        bail_out "broker $* does not answer ping within 10 s (broker$_nbrokers.log below)"
}

_up_or_dead() {
    ! alive "$1" || ctl --timeout 250 ping
}

# kill9_broker: SIGKILL to the broker; returns once it is gone.
kill9_broker() {
    {
        kill -KILL "$BROKER_PID"
        wait_for 5 _pgrp_dead "$BROKER_PID"
        wait "$BROKER_PID"
    } 2>/dev/null # bash's "Killed" notice
    retire_pgrp "$BROKER_PID" "broker$_nbrokers"
}

# term_broker: SIGTERM; returns the broker's exit status.
term_broker() {
    local rc
    stop_pgrp "$BROKER_PID" 5
    rc=$?
    retire_pgrp "$BROKER_PID" "broker$_nbrokers"
    return "$rc"
}

# stats: `ctl stats --json` into S.
stats() {
    run ctl stats --json
    S=$OUT
}

# sj EXPR: EXPR (Python, d = the stats) over a fresh `ctl stats --json` (in $(...), S is not
# kept: call stats first where S is needed afterwards).
sj() {
    stats
    json "$S" "$1"
}

# log_field EVENT KEY [LOG]: KEY's value in the last EVENT line of the broker's log.
log_field() {
    grep "event=$1 " "${3:-$BROKER_LOG}" | tail -n 1 | grep -o " $2=[^ ]*" | cut -d= -f2-
}

# segs DIR: the segment files in DIR, oldest first.
segs() {
    find "$1" -maxdepth 1 -name '????????????????.seg' | sort
}

# frames SEG: one line per valid frame of the segment: "OFFSET LENGTH TYPE N", N the jobs of
# a push record (0 for other records), checking every CRC-32C; stops at the first bad frame.
frames() {
    python3 - "$1" <<'EOF'
import sys
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)
def crc(b):
    c = 0xFFFFFFFF
    for x in b:
        c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
assert crc(b"123456789") == 0xE3069283
d = open(sys.argv[1], "rb").read()
o = 16
while o + 8 <= len(d):
    n = int.from_bytes(d[o:o + 4], "little")
    p = d[o + 8:o + 8 + n]
    if n == 0 or len(p) != n or crc(d[o:o + 4] + p) != int.from_bytes(d[o + 4:o + 8], "little"):
        break
    jobs = int.from_bytes(p[17:21], "little") if p[0] == 1 else 0  # R_PUSH: u32 n at 17
    print(o, n, p[0], jobs)
    o += 8 + n
EOF
}

# push_n GROUP N PAYLOAD: N jobs in one request; fails unless ctl exits 0.
push_n() {
    ctl push "$1" "$3" -s "$2" >/dev/null
}

# === 1. queues, routes, paused state, settings and jobs survive a restart ===================

D1=$SLUICE_DIR/d1
jbroker --data-dir "$D1"
stats
is "$(json "$S" 'd["broker"]["journal"]')" always "the journal is on, --fsync always by default"
is "$(json "$S" '[d["broker"]["journal_ok"], d["broker"]["journal_segments"]]')" '[true, 1]' \
    "stats: journal_ok true, one segment"
ok "segment 1 is named as 16 hex digits + .seg" test -f "$D1/0000000000000001.seg"
is "$(head -c 16 "$D1/0000000000000001.seg" | od -An -v -tx1 | tr -d ' \n')" \
    "$(printf SLUICEJ1 | od -An -tx1 | tr -d ' \n')0100000000000000" \
    "its header is \"SLUICEJ1\" and its number, 1, as u64 little-endian"
setup_ok=1
for c in "queues create hi --priority 1 --weight 3 --max-inflight 7" \
    "queues create lo --priority 50 --weight 2" \
    "queues create held --max-inflight 2" "queues pause held" \
    "queues create gone" "queues destroy gone" "queues update hi --weight 4" \
    "routes set alice hi" "routes set bob held" "routes set carol lo" "routes unset carol" \
    "routes set erin lo" "push alice a -s 300" "push bob b -s 200" "push carol c -s 100" \
    "push dave d -s 50 --queue lo" "push erin e -s 25"; do
    # shellcheck disable=SC2086 # the arguments are split on purpose
    ctl $c >/dev/null || { setup_ok=0; diag "ctl $c failed"; }
done
is "$setup_ok" 1 "queues, routes and 675 jobs set up"

# canon [fold]: queues (from stats and from `ctl queues`), groups, routes and the broker's
# jobs, bytes, next id and idempotency clients, without the counters that restart from zero
# (pushed, done, failed, their never-reset *_all twins, dispatched and waits) and the figures of the process (pid, uptime, memory). With fold,
# reserved jobs count as ready (as they come back after a kill -9).
canon() {
    local st qs rs
    st=$(ctl stats --json) || return 1
    qs=$(ctl queues --json) || return 1
    rs=$(ctl routes --json) || return 1
    python3 - "$st" "$qs" "$rs" "${1:-}" <<'EOF'
import json, sys
st, qs, rs = (json.loads(a) for a in sys.argv[1:4])
fold = sys.argv[4] == "fold"
def strip(x):
    x = {k: v for k, v in x.items()
         if k not in ("done", "failed", "pushed", "pushed_all", "done_all", "failed_all",
                      "dispatched", "wait_buckets", "wait_sum_us", "wait_count",
                      "wait_p50_ms", "wait_p99_ms", "share", "oldest_ready_ms")}
    if fold:
        x["ready"] += x["reserved"]
        x["reserved"] = 0
    return x
b = st["broker"]
print(json.dumps({
    "broker": [b["jobs"], b["bytes"], b["next_id"], b["dedup_clients"],
               0 if fold else b["reserved"]],
    "queues": [strip(q) for q in st["queues"]],
    "queue_list": [strip(q) for q in qs["queues"]],
    "groups": [strip(g) for g in st["groups"]],
    "routes": rs["routes"],
}, sort_keys=True))
EOF
}

before=$(canon)
like "$before" '"name": "held", "order": "groups", "paused": true' "before: queue held is paused"
like "$before" '"max_inflight": 7, "name": "hi", "order": "groups", "paused": false, "priority": 1, .*"weight": 4' \
    "before: queue hi has priority 1, weight 4, max in-flight 7"
term_broker
is "$?" 0 "the broker exits 0 on SIGTERM"
jbroker --data-dir "$D1"
after=$(canon)
is "$after" "$before" "after SIGTERM and a restart: the same queues, settings, paused state, routes, groups and jobs"
is "$(log_field journal.replayed jobs)" 675 "the restart logs journal.replayed with jobs=675"
stats
is "$(json "$S" '[q["pushed"] for q in d["queues"]]')" '[0, 0, 0, 0]' \
    "the pushed counters start again from zero (by design)"
is "$(json "$S" 'd["broker"]["journal_segments"]')" 2 \
    "the restart began a second segment (the first still holds the jobs)"

# A job reserved by a worker when the broker is killed: the worker holds it (a handler that
# sleeps 10 minutes), the broker is killed with -9, then the worker too.
spawn holder "$SLUICE_BIN/worker" --handler sleep:600000-600000 --queues hi --prefetch 1
HOLDER=$SPAWNED_PID
_holding() {
    stats
    [ "$(json "$S" '[w["current"] for w in d["workers"] if w["current"]]')" != "[]" ]
}
ok "a worker holds one job of queue hi" wait_for 10 _holding
held_id=$(json "$S" '[w["current"] for w in d["workers"] if w["current"]][0]')
is "$(json "$S" '[q["reserved"] for q in d["queues"] if q["name"] == "hi"]')" '[1]' \
    "queue hi: 1 job reserved"
before=$(canon fold)
next_before=$(json "$S" 'd["broker"]["next_id"]')
kill9_broker
{
    kill -KILL -- "-$HOLDER"
    wait_for 5 _pgrp_dead "$HOLDER"
    wait "$HOLDER"
} 2>/dev/null # bash's "Killed" notice
retire_pgrp "$HOLDER" holder
jbroker --data-dir "$D1"
after=$(canon fold)
is "$after" "$before" "after kill -9 and a restart: the same queues, settings, paused state, routes, groups and jobs"
is "$(sj '[d["broker"]["reserved"], [q["reserved"] for q in d["queues"]]]')" '[0, [0, 0, 0, 0]]' \
    "after kill -9: nothing is reserved (the reserved job is ready again)"
run "$send" "$url" --hex "$(mp_op reserve worker str t1 max uint 1 from hex "$(mp_array 1)$(mp_str hi)")"
is "$(json "$OUT" '[(j["id"], j["attempts"]) for j in d["jobs"]]')" "[[$held_id, 2]]" \
    "the job reserved at the kill is first in its queue again, its attempt counted (attempts 2 at the next reserve)"
ok "a push after the restart is accepted" ctl push alice more
is "$(sj 'd["broker"]["next_id"]')" $((next_before + 1)) \
    "ids go on from where they were: none is used twice"
term_broker

# === 2. kill -9 in the middle of 200,000 jobs pushed and consumed, --fsync always ==========

D2=$SLUICE_DIR/d2
TOTAL=200000
PER=1000                 # payloads per batch file, one push request each
NFILES=$((TOTAL / PER))
PREFETCH=64
NWORKERS=2
KILL_AT=50000            # jobs done when the broker is killed
mkdir -p "$SLUICE_DIR/batches"
python3 - "$SLUICE_DIR/batches" "$NFILES" "$PER" <<'EOF'
import sys
d, nf, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for f in range(nf):
    with open("%s/%04d" % (d, f), "w") as out:
        out.write("".join("j%04d-%04d\n" % (f, i) for i in range(per)))
EOF

# The handler: records each payload it completes ("PAYLOAD ATTEMPT" per line, written to the
# ledger before it answers), then answers ok. Decodes the job frames itself (no msgpack module).
cat >"$SLUICE_DIR/ledger.py" <<'EOF'
import os, struct, sys

inp, out = sys.stdin.buffer, sys.stdout.buffer
led = os.open(os.environ["LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

def dec(b, i):
    c = b[i]
    if c <= 0x7F: return c, i + 1
    if c <= 0x8F: return dmap(b, i + 1, c & 0x0F)
    if c <= 0x9F: return darr(b, i + 1, c & 0x0F)
    if c <= 0xBF: n = c & 0x1F; return b[i + 1:i + 1 + n], i + 1 + n
    if c == 0xC0: return None, i + 1
    if c in (0xC2, 0xC3): return c == 0xC3, i + 1
    if c >= 0xE0: return c - 256, i + 1
    if c in (0xC4, 0xD9): n = b[i + 1]; return b[i + 2:i + 2 + n], i + 2 + n
    if c in (0xC5, 0xDA): n = int.from_bytes(b[i + 1:i + 3], "big"); return b[i + 3:i + 3 + n], i + 3 + n
    if c in (0xC6, 0xDB): n = int.from_bytes(b[i + 1:i + 5], "big"); return b[i + 5:i + 5 + n], i + 5 + n
    if 0xCC <= c <= 0xCF: w = 1 << (c - 0xCC); return int.from_bytes(b[i + 1:i + 1 + w], "big"), i + 1 + w
    if 0xD0 <= c <= 0xD3:
        w = 1 << (c - 0xD0); return int.from_bytes(b[i + 1:i + 1 + w], "big", signed=True), i + 1 + w
    if c == 0xDC: return darr(b, i + 3, int.from_bytes(b[i + 1:i + 3], "big"))
    if c == 0xDE: return dmap(b, i + 3, int.from_bytes(b[i + 1:i + 3], "big"))
    raise ValueError("msgpack type 0x%02x not expected in a job frame" % c)

def dmap(b, i, n):
    m = {}
    for _ in range(n):
        k, i = dec(b, i)
        m[k], i = dec(b, i)
    return m, i

def darr(b, i, n):
    a = []
    for _ in range(n):
        v, i = dec(b, i)
        a.append(v)
    return a, i

while True:
    h = inp.read(4)
    if len(h) < 4:
        sys.exit(0)
    body = inp.read(struct.unpack(">I", h)[0])
    job, _ = dec(body, 0)
    os.write(led, b"%s %d\n" % (job[b"payload"], job[b"attempt"]))
    jid = job[b"id"]
    ans = b"\x82\xa2id" + (bytes([jid]) if jid < 128 else b"\xcf" + jid.to_bytes(8, "big")) + b"\xa2ok\xc3"
    out.write(struct.pack(">I", len(ans)) + ans)
    out.flush()
EOF

# A producer: pushes batch files FIRST..LAST (step STEP) as group GROUP; a file is confirmed
# (its name appended to confirmed.GROUP) only when ctl exits 0, else it goes to
# unconfirmed.GROUP and is not sent again; after a failure it waits for the broker to answer.
# It keeps at most 30,000 confirmed jobs ahead of the ledger, so that the pushes go on while
# the workers run.
cat >"$SLUICE_DIR/producer.sh" <<'EOF'
group=$1 first=$2 last=$3 step=$4
cd "$SLUICE_DIR" || exit 1
for ((i = first; i <= last; i += step)); do
    f=$(printf 'batches/%04d' "$i")
    while [ $(( $(cat confirmed.* 2>/dev/null | wc -l) * PER - $(wc -l <ledger) )) -gt 30000 ]; do
        sleep 0.02
    done
    if "$SLUICE_BIN/ctl" push "$group" --file "$f" --batch "$PER" >/dev/null 2>>"producer.$group.err"; then
        echo "$f" >>"confirmed.$group"
    else
        echo "$f" >>"unconfirmed.$group"
        until "$SLUICE_BIN/ctl" --timeout 200 ping >/dev/null 2>&1; do sleep 0.02; done
    fi
done
EOF

export LEDGER=$SLUICE_DIR/ledger PER
: >"$LEDGER"
_now_us
t_run0=$REPLY
jbroker --data-dir "$D2" --fsync always
spawn consumers "$SLUICE_BIN/worker-pool" -n "$NWORKERS" --prefetch "$PREFETCH" \
    --handler "pipe:exec python3 $SLUICE_DIR/ledger.py"
POOL=$SPAWNED_PID
spawn producer-p0 bash "$SLUICE_DIR/producer.sh" p0 0 $((NFILES - 1)) 2
PROD0=$SPAWNED_PID
spawn producer-p1 bash "$SLUICE_DIR/producer.sh" p1 1 $((NFILES - 1)) 2
PROD1=$SPAWNED_PID

_ledger_at_least() {
    [ "$(wc -l <"$LEDGER")" -ge "$1" ]
}
ok "the workers complete $KILL_AT jobs (deadline 30 s)" wait_for 30 _ledger_at_least "$KILL_AT"
# The workers may keep up with the producers, so that nothing waits at a given moment: pause
# the queue until a backlog builds up (the producers go on pushing, the workers finish what
# they hold), so that the kill finds jobs not yet done whatever the machine's speed.
ok "queue default paused" ctl queues pause default
_backlog() {
    stats
    [ "$(json "$S" 'd["broker"]["jobs"]')" -ge $((2 * PER)) ]
}
ok "a backlog of at least $((2 * PER)) jobs builds up (deadline 30 s)" wait_for 30 _backlog
reserved_before=$(json "$S" 'd["broker"]["reserved"]')
kill9_broker
done_at_kill=$(wc -l <"$LEDGER")
confirmed_at_kill=$(cat "$SLUICE_DIR"/confirmed.* 2>/dev/null | wc -l)
diag "kill -9 of the broker with $done_at_kill jobs done, $((confirmed_at_kill * PER)) confirmed," \
    "$reserved_before reserved at the last stats before the kill"
cmp_num "$confirmed_at_kill" -lt "$NFILES" "the producers were still pushing at the kill"
jbroker --data-dir "$D2" --fsync always
replayed=$(log_field journal.replayed jobs)
cmp_num "${replayed:-0}" -gt 0 "after the restart the broker holds the jobs not yet done (replayed $replayed)"
diag "replay: $(grep 'event=journal.replayed' "$BROKER_LOG")"
is "$(sj '[q["paused"] for q in d["queues"] if q["name"] == "default"]')" '[true]' \
    "queue default is still paused after the restart"
ok "queue default resumed" ctl queues resume default

_gone() {
    _pgrp_dead "$PROD0" && _pgrp_dead "$PROD1"
}
ok "the producers push every batch (deadline 40 s)" wait_for 40 _gone
_drained() {
    stats
    [ "$(json "$S" 'd["broker"]["jobs"]')" = 0 ]
}
ok "the workers drain the backlog to 0 jobs (deadline 40 s)" wait_for 40 _drained
_now_us
diag "200,000 jobs pushed and done, with a kill -9 and a restart, in $(((REPLY - t_run0) / 1000)) ms"
is "$(json "$S" '[d["broker"]["reserved"], sorted(set((q["ready"], q["reserved"], q["delayed"], q["dead"]) for q in d["queues"])), sorted(set((g["count"], g["ready"], g["reserved"], g["dead"]) for g in d["groups"]))]')" \
    '[0, [[0, 0, 0, 0]], [[0, 0, 0, 0]]]' \
    "stats at the end: nothing ready, reserved, delayed or dead in any queue or group"
stop_pgrp "$POOL" 10
retire_pgrp "$POOL" consumers
retire_pgrp "$PROD0" producer-p0
retire_pgrp "$PROD1" producer-p1

verdict=$(python3 - "$SLUICE_DIR" "$LEDGER" $((NWORKERS * PREFETCH)) <<'EOF'
import collections, glob, json, os, sys
d, ledger, bound = sys.argv[1], sys.argv[2], int(sys.argv[3])
def payloads(listfiles):
    s = set()
    for lf in glob.glob(os.path.join(d, listfiles)):
        for f in open(lf).read().split():
            s.update(open(os.path.join(d, f)).read().split())
    return s
confirmed, unconfirmed = payloads("confirmed.*"), payloads("unconfirmed.*")
runs = collections.defaultdict(list)
for line in open(ledger):
    p, a = line.split()
    runs[p].append(int(a))
missing = sorted(confirmed - set(runs))
dups = {p: a for p, a in runs.items() if len(a) > 1}
print(json.dumps({
    "confirmed": len(confirmed), "unconfirmed": len(unconfirmed), "ledger": sum(map(len, runs.values())),
    "done": len(runs), "missing": len(missing), "missing_first": missing[:5],
    "unknown": len(set(runs) - confirmed - unconfirmed),
    "dups": len(dups), "dups_first": sorted(dups.items())[:5],
    # a job reserved at the kill comes back with its attempt counted: its run after the
    # restart has attempt >= 2; a job that was not reserved then never runs twice.
    "dups_not_redelivered": sorted(p for p, a in dups.items() if max(a) < 2)[:5],
    "redelivered": sum(1 for a in runs.values() if max(a) >= 2),
    "bound": bound,
}))
EOF
)
diag "ledger: $verdict"
cmp_num "$(json "$verdict" 'd["confirmed"]')" -ge $((TOTAL - 10 * PER)) \
    "at most 10 batches of 1,000 went unconfirmed around the kill"
is "$(json "$verdict" '[d["missing"], d["missing_first"]]')" '[0, []]' \
    "every confirmed payload was done at least once: no confirmed job lost"
is "$(json "$verdict" 'd["unknown"]')" 0 "every payload done was pushed"
is "$(json "$verdict" 'd["dups_not_redelivered"]')" '[]' \
    "a payload done twice was reserved at the kill (its second run has attempt >= 2)"
cmp_num "$(json "$verdict" 'd["redelivered"]')" -le "$((NWORKERS * PREFETCH))" \
    "jobs run again after the restart: at most what the workers held ($NWORKERS x $PREFETCH)"
term_broker

# === 3. torn tails, garbage tails, corrupt records =========================================

# pushes_then_kill DIR N: a broker on DIR, N pushes of 100 jobs each (one record each), kill -9.
pushes_then_kill() {
    local i ok=1
    jbroker --data-dir "$1"
    for ((i = 1; i <= $2; i++)); do
        push_n "g$i" 100 "payload-$i" || ok=0
    done
    kill9_broker
    [ "$ok" = 1 ]
}

# -- a truncated last record --
D3=$SLUICE_DIR/d3
ok "10 pushes of 100 jobs, then kill -9" pushes_then_kill "$D3" 10
seg=$(segs "$D3" | tail -n 1)
is "${seg##*/}" 0000000000000001.seg "the records are in segment 1, the newest"
read -r last_off last_len last_type _ < <(frames "$seg" | tail -n 1)
is "$last_type" 1 "its last record is a push"
size=$(stat -c %s "$seg")
is "$size" $((last_off + 8 + last_len)) "the segment ends with that record"
truncate -s $((size - 3)) "$seg"
jbroker --data-dir "$D3"
is "$(log_field journal.torn_tail offset) $(log_field journal.torn_tail cut_bytes)" \
    "$last_off $((last_len + 8 - 3))" \
    "3 bytes cut off the last record: the broker starts and logs journal.torn_tail at its offset, cutting the rest of it"
like "$(grep 'event=journal.torn_tail' "$BROKER_LOG")" "segment=\"$seg\"" "... naming the segment"
is "$(sj '[d["broker"]["jobs"], [(g["name"], g["count"]) for g in d["groups"]][-1]]')" \
    '[900, ["g9", 100]]' "the 9 complete pushes are kept (900 jobs), the torn one is not"
is "$(stat -c %s "$seg")" "$last_off" "the segment was cut at the torn record"
kill9_broker

# -- damage at the end of a segment that is not the newest: not a torn tail --
seg2=$(segs "$D3" | tail -n 1)
is "${seg2##*/}" 0000000000000002.seg "the restart began segment 2"
truncate -s $(($(stat -c %s "$seg") - 5)) "$seg"
run timeout 10 "$SLUICE_BIN/broker" --data-dir "$D3" --log-level off
is "$RC" 1 "5 bytes cut off segment 1, which is followed by segment 2: the broker refuses to start (exit 1)"
like "$ERR" "broker: journal: segment $seg is corrupt at offset [0-9]+" \
    "... and says which segment is corrupt, and where"

# -- garbage appended to the last segment --
D4=$SLUICE_DIR/d4
ok "10 pushes of 100 jobs, then kill -9" pushes_then_kill "$D4" 10
seg=$(segs "$D4" | tail -n 1)
size=$(stat -c %s "$seg")
python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(7).randbytes(100))' >>"$seg"
jbroker --data-dir "$D4"
is "$(log_field journal.torn_tail offset) $(log_field journal.torn_tail cut_bytes)" "$size 100" \
    "100 random bytes appended: the broker starts and cuts exactly them (journal.torn_tail)"
is "$(sj 'd["broker"]["jobs"]')" 1000 "every complete record is kept: 1,000 jobs"
is "$(stat -c %s "$seg")" "$size" "the segment is back to its size before the garbage"
kill9_broker

# -- a flipped byte in the middle of the records --
D5=$SLUICE_DIR/d5
ok "10 pushes of 100 jobs, then kill -9" pushes_then_kill "$D5" 10
seg=$(segs "$D5" | tail -n 1)
# The 3rd push record: its offset, and the jobs of the records before it.
read -r bad_off bad_len < <(frames "$seg" | awk '$3 == 1 { if (++n == 3) { print $1, $2; exit } }')
jobs_before=$(frames "$seg" | awk -v o="$bad_off" '$1 < o { s += $4 } END { print s + 0 }')
is "$jobs_before" 200 "two push records come before the 3rd"
flip=$((bad_off + 8 + bad_len / 2))
python3 - "$seg" "$flip" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0x40]))
EOF
size=$(stat -c %s "$seg")
run timeout 10 "$SLUICE_BIN/broker" --data-dir "$D5"
is "$RC" 1 "a byte flipped inside the 3rd of 10 push records: the broker exits 1"
like "$ERR" "broker: journal: segment $seg is corrupt at offset $bad_off \\(" \
    "... and stderr names the segment and the offset of the damaged record ($bad_off)"
is "$(stat -c %s "$seg")" "$size" "... and leaves the segment as it was"
jbroker --data-dir "$D5" --repair
like "$(grep 'event=journal.repair' "$BROKER_LOG")" "segment=\"$seg\" offset=$bad_off " \
    "with --repair the broker starts and logs journal.repair at the damaged record"
is "$(sj 'd["broker"]["jobs"]')" "$jobs_before" \
    "... keeping the records before it ($jobs_before jobs)"
term_broker
jbroker --data-dir "$D5"
is "$(sj 'd["broker"]["jobs"]')" "$jobs_before" "the repaired journal then starts without --repair, the same $jobs_before jobs"
term_broker

# === 4. an idempotent push resent after a restart ==========================================

D6=$SLUICE_DIR/d6
jbroker --data-dir "$D6"
req=$(mp_push idem c-restart 7 one two three)
run "$send" "$url" --hex "$req"
is "$(json "$OUT" '[d["ok"], d["n"], d["dup"]]')" '[true, 3, false]' \
    "a push with the key (c-restart, 7) stores 3 jobs"
first_id=$(json "$OUT" 'd["first_id"]')
for how in TERM KILL; do
    if [ "$how" = TERM ]; then term_broker; else kill9_broker; fi
    jbroker --data-dir "$D6"
    run "$send" "$url" --hex "$req"
    is "$(json "$OUT" '[d["ok"], d["n"], d.get("first_id"), d["dup"]]')" "[true, 3, $first_id, true]" \
        "after SIG$how and a restart, the same key is answered dup: true with the first answer"
    is "$(sj '[d["broker"]["jobs"], [(g["name"], g["count"]) for g in d["groups"]]]')" '[3, [["idem", 3]]]' \
        "... and stores nothing: 3 jobs"
done
run "$send" "$url" --hex "$(mp_push idem c-restart 8 four)"
is "$(json "$OUT" '[d["ok"], d["n"], d["dup"], d["first_id"] > '"$first_id"']')" '[true, 1, false, true]' \
    "the next seq of that client is a new push"
term_broker

# === 5. 1,000,000 jobs pushed and acked: the journal shrinks back ==========================

D7=$SLUICE_DIR/d7
jbroker --data-dir "$D7" --segment-size 1M
_now_us
t0=$REPLY
spawn noop-pool "$SLUICE_BIN/worker-pool" -n 2 --handler noop --prefetch 256
POOL=$SPAWNED_PID
ok "push 1,000,000 jobs" ctl push bob x -s 1000000
ok "the workers ack all 1,000,000 (deadline 40 s)" wait_for 40 _drained
_now_us
diag "1,000,000 jobs pushed and acked in $(((REPLY - t0) / 1000)) ms, journal: $(json "$S" '{k: v for k, v in d["broker"].items() if k.startswith("journal")}')"
is "$(json "$S" '[(g["name"], g["count"], g["done"]) for g in d["groups"]]')" '[["bob", 0, 1000000]]' \
    "group bob: 1,000,000 done, none left"
newest=$(segs "$D7" | tail -n 1)
newest=${newest##*/}
cmp_num $((16#${newest%.seg})) -gt 10 "the journal went through more than 10 segments of 1M (newest ${newest})"
seg_bytes() {
    local f n=0
    for f in $(segs "$D7"); do
        n=$((n + $(stat -c %s "$f")))
    done
    echo "$n"
}
_small() {
    stats
    [ "$(json "$S" 'd["broker"]["journal_bytes"]')" -lt $((2 << 20)) ] &&
        [ "$(seg_bytes)" -lt $((2 << 20)) ] &&
        [ "$(du -sk "$D7" | cut -f1)" -lt 2048 ]
}
ok "journal_bytes in stats, the segment files and du of the data directory are all below 2 MiB (deadline 10 s)" \
    wait_for 10 _small
diag "journal_bytes $(json "$S" 'd["broker"]["journal_bytes"]'), journal_segments $(json "$S" 'd["broker"]["journal_segments"]'), files: $(ls "$D7" | tr '\n' ' '), du $(du -sk "$D7" | cut -f1) KiB"
is "$(json "$S" '[d["broker"]["journal_bytes"], d["broker"]["journal_segments"]]')" \
    "[$(seg_bytes), $(segs "$D7" | wc -l)]" "journal_bytes and journal_segments match the files on disk"
stop_pgrp "$POOL" 10
retire_pgrp "$POOL" noop-pool
term_broker

# === 6. a write that fails: EFBIG past ulimit -f ============================================

D8=$SLUICE_DIR/d8
JB_FSIZE=256 jbroker --data-dir "$D8"
pay=$(printf 'x%.0s' $(seq 1 200))     # 200 bytes
confirmed=0
for ((i = 0; i < 100; i++)); do
    run ctl push limited "$pay" -s 100
    [ "$RC" = 0 ] || break
    confirmed=$((confirmed + 100))
done
is "$RC" 1 "pushes of 20 KB under a 256 KiB file size limit: one is answered with an error (ctl exits 1) after $confirmed jobs"
like "$ERR" "(^|[^a-z])io([^a-z]|$)" "... the error is io"
diag "ctl: $ERR"
cmp_num "$confirmed" -ge 1000 "at least 1,000 jobs were confirmed before the limit"
like "$(grep 'event=journal.write_failed' "$BROKER_LOG" | head -n 1)" 'error="File too large"' \
    "the broker logs journal.write_failed with the cause (EFBIG: File too large)"
stats
is "$(json "$S" 'd["broker"]["journal_ok"]')" false "stats: journal_ok false"
jobs_at_failure=$(json "$S" 'd["broker"]["jobs"]')
diag "jobs held by the broker after the failed push: $jobs_at_failure ($confirmed confirmed)"
run ctl push limited more
is "$RC" 1 "a further push is refused (exit 1)"
like "$ERR" "(^|[^a-z])io([^a-z]|$)" "... with err io"
is "$(sj 'd["broker"]["jobs"]')" "$jobs_at_failure" "... and stores nothing"
run "$send" "$url" --hex "$(mp_push limited c-io 1 refused)"
is "$(json "$OUT" '[d["ok"], d["err"]]')" '[false, "io"]' \
    "a push with the key (c-io, 1) is refused with io too"
ok "the broker still answers ping" ctl ping
ok "prlimit lifts the limit of the running broker" prlimit --pid "$BROKER_PID" --fsize=unlimited
_journal_ok() {
    [ "$(sj 'd["broker"]["journal_ok"]')" = true ]
}
ok "journal_ok becomes true again (deadline 5 s: a retry once a second)" wait_for 5 _journal_ok
ok "the broker logs journal.recovered" grep -q 'event=journal.recovered' "$BROKER_LOG"
ok "a push succeeds again" push_n limited 100 after
run "$send" "$url" --hex "$(mp_push limited c-io 1 refused)"
is "$(json "$OUT" '[d["ok"], d["n"], d["dup"]]')" '[true, 1, false]' \
    "the key (c-io, 1) refused while the journal failed is stored when resent"

# A second failure, met by a push with an idempotency key: the answer is io ("not confirmed"),
# the job is kept in memory and written once the journal recovers, and a resend of the same
# key after that is not stored twice.
seg=$(segs "$D8" | tail -n 1)
ok "prlimit lowers the limit again, 4 KiB above the segment's size" \
    prlimit --pid "$BROKER_PID" --fsize=$(($(stat -c %s "$seg") + 4096)):unlimited
big=$(printf 'y%.0s' $(seq 1 100))
# shellcheck disable=SC2046 # one payload per word, on purpose
keyed=$(mp_push limited c-io 2 $(for ((i = 0; i < 100; i++)); do echo "$big"; done))
run "$send" "$url" --hex "$keyed"
is "$(json "$OUT" '[d["ok"], d["err"]]')" '[false, "io"]' \
    "a keyed push of 10 KB past the new limit is answered io"
diag "reply: $OUT"
jobs_kept=$(sj 'd["broker"]["jobs"]')
ok "prlimit lifts the limit again" prlimit --pid "$BROKER_PID" --fsize=unlimited
ok "journal_ok becomes true again" wait_for 5 _journal_ok
run "$send" "$url" --hex "$keyed"
is "$(json "$OUT" '[d["ok"], d["n"], d["dup"]]')" '[true, 100, true]' \
    "the keyed push resent after the recovery is answered dup: true (its jobs were kept)"
is "$(sj 'd["broker"]["jobs"]')" "$jobs_kept" "... and stores nothing more ($jobs_kept jobs)"
jobs_mem=$jobs_kept
term_broker
is "$?" 0 "the broker exits 0 on SIGTERM"
jbroker --data-dir "$D8"
stats
jobs_disk=$(json "$S" 'd["broker"]["jobs"]')
cmp_num "$jobs_disk" -ge $((confirmed + 100 + 1)) \
    "after a restart the $confirmed jobs confirmed before the failure and the 101 after it are there ($jobs_disk)"
is "$jobs_disk" "$jobs_mem" "the restarted broker holds exactly the jobs it held in memory before the restart"
is "$(grep -c 'event=journal.write_failed' "$SLUICE_DIR"/broker$((_nbrokers - 1)).log) $(grep -c 'event=journal.recovered' "$SLUICE_DIR"/broker$((_nbrokers - 1)).log)" \
    "2 2" "journal.write_failed and journal.recovered were logged once per failure"
term_broker

done_testing
