#!/usr/bin/env bash
# Lists of broker addresses (--url URL,URL,...) and the following of a cluster standby's
# not_leader to the leader it names (PROTOCOL.md "Clusters"), without a cluster: fake standbys
# (tests/integ/py/fake_standby.py) answer every request not_leader, with leader_url naming a
# real broker, with leader_url "" (an election), or without it (the router's lease, final).
# Covers ctl (the C client), worker (wapi), router, `ctl events` (evsub) and bad lists.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_fake.sh
. "$(dirname "$0")/lib_fake.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"

/usr/bin/python3 -c 'import msgpack' 2>/dev/null ||
    skip_all "/usr/bin/python3 has no msgpack (apt install python3-msgpack)"

REAL=ipc://$SLUICE_DIR/broker.ipc
REAL_EV=ipc://$SLUICE_DIR/events.ipc
start_broker

pushed() {
    run ctl stats --json
    json "$OUT" "sum(g['pushed'] for g in d['groups'] if g['name'] == '$1')"
}
ops() {
    grep -c "^$2\$" "$1"
}

# --- a standby that names the leader ---------------------------------------------------------

fake_standby sb-ipc "ipc://$SLUICE_DIR/standby.ipc" "leader=$REAL"
SB_IPC=$FAKE_URL
SB_IPC_OPS=$FAKE_OPS
fake_standby sb-tcp "tcp://127.0.0.1:0" "leader=$REAL"
SB_TCP=$FAKE_URL
SB_TCP_OPS=$FAKE_OPS

run ctl --url "$SB_IPC,$REAL" push follow a
is "$RC" 0 "ctl --url standby,leader push: done (stderr: $ERR)"
is "$(ops "$SB_IPC_OPS" push)" 1 "... the standby was asked once"
is "$(pushed follow)" 1 "... and the leader stored the job"

run ctl --url "$SB_TCP" push follow b
is "$RC" 0 "ctl --url tcp-standby (alone): follows leader_url, not in the list (stderr: $ERR)"
is "$(pushed follow)" 2 "... the leader stored the job"

run ctl --url " $SB_TCP , $REAL " --log-level info push follow c
is "$RC" 0 "a list with spaces around its items: done"
like "$ERR" "client.moved.*from=\"$SB_TCP\" to=\"$REAL\"" "... the move is logged (info)"

# --- nobody knows the leader ----------------------------------------------------------------

fake_standby el-ipc "ipc://$SLUICE_DIR/election.ipc" unknown
EL_IPC=$FAKE_URL
EL_IPC_OPS=$FAKE_OPS
fake_standby el-tcp "tcp://127.0.0.1:0" unknown
EL_TCP=$FAKE_URL
EL_TCP_OPS=$FAKE_OPS

elapsed_ms ctl --url "$EL_IPC,$EL_TCP" --timeout 1500 push follow d
cmp_num "$RC" -ne 0 "leader_url \"\" everywhere: the push fails"
cmp_num "$ELAPSED_MS" -ge 1000 "... after trying for (most of) its timeout ($ELAPSED_MS ms)"
cmp_num "$ELAPSED_MS" -lt 6000 "... and not much longer"
run ctl --url "$EL_IPC,$EL_TCP" --timeout 1500 push follow d
like "$ERR" "not_leader" "... saying not_leader"
cmp_num "$(ops "$EL_IPC_OPS" push)" -ge 2 "... having asked the first broker again"
cmp_num "$(ops "$EL_TCP_OPS" push)" -ge 2 "... and the second"
cmp_num "$(($(ops "$EL_IPC_OPS" push) + $(ops "$EL_TCP_OPS" push)))" -le 40 \
    "... with a backoff between tries, not a busy loop"
is "$(pushed follow)" 3 "... nothing stored"

# --- the router's lease: a not_leader without leader_url is final ----------------------------

fake_standby lease "ipc://$SLUICE_DIR/lease.ipc" lease
LEASE_OPS=$FAKE_OPS
elapsed_ms ctl --url "$FAKE_URL,$REAL" --timeout 5000 push follow e
is "$RC" 1 "a not_leader without leader_url: the command fails"
cmp_num "$ELAPSED_MS" -lt 2500 "... at once, not after its timeout ($ELAPSED_MS ms)"
is "$(ops "$LEASE_OPS" push)" 1 "... asked once"
is "$(pushed follow)" 3 "... and not sent to the next broker of the list"

# --- brokers out of reach -------------------------------------------------------------------

free_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run ctl --url "ipc://$SLUICE_DIR/nobody.ipc,$REAL" push follow f
is "$RC" 0 "first URL with no socket file, second a broker: done (stderr: $ERR)"
run ctl --url "tcp://127.0.0.1:$free_port,$REAL" push follow g
is "$RC" 0 "first URL with nobody listening on tcp, second a broker: done (stderr: $ERR)"
is "$(pushed follow)" 5 "... both stored"
elapsed_ms ctl --url "ipc://$SLUICE_DIR/nobody.ipc,ipc://$SLUICE_DIR/none.ipc" --timeout 5000 ping
is "$RC" 3 "no broker at any URL (no socket files): unreachable"
cmp_num "$ELAPSED_MS" -lt 2500 "... at once ($ELAPSED_MS ms)"

elapsed_ms timeout 10 "$SLUICE_BIN/ctl" events --events-url "ipc://$SLUICE_DIR/nobody.ipc,tcp://127.0.0.1:$free_port" \
    --timeout 500
is "$RC" 3 "ctl events with no broker at any URL: unreachable"
cmp_num "$ELAPSED_MS" -lt 3000 "... after its timeout ($ELAPSED_MS ms)"

# A leader that dies holding the request: sent again to the next broker, well within the
# timeout, rather than waited for until the timeout.
fake_standby vanish "ipc://$SLUICE_DIR/vanish.ipc" vanish
VANISH_OPS=$FAKE_OPS
elapsed_ms ctl --url "$FAKE_URL,$REAL" --timeout 8000 push follow v
is "$RC" 0 "a broker that dies with the request sent: done at the next one"
cmp_num "$ELAPSED_MS" -lt 6000 "... within the timeout, not at its end ($ELAPSED_MS ms)"
is "$(ops "$VANISH_OPS" push)" 1 "... the dead broker had received it"
is "$(pushed follow)" 6 "... stored once"

# --- bad lists: refused before anything is sent ---------------------------------------------

for bad in "$REAL," ",$REAL" "$REAL,,$REAL" "$REAL, ,$REAL" \
    "$(printf "$REAL,%.0s" 1 2 3 4 5 6 7 8)$REAL"; do
    run ctl --url "$bad" push follow h
    is "$RC" 2 "a bad list is a usage error: '$bad'"
done
like "$ERR" "URL,URL" "... the message says what a list is"
run ctl --url "$REAL,nope://x" push follow h
is "$RC" 2 "a bad URL late in a list is refused before the first is used"
run timeout 10 "$SLUICE_BIN/worker" --url "$REAL,nope://x" --handler noop --max-jobs 1
is "$RC" 2 "worker: the same"
run timeout 10 "$SLUICE_BIN/ctl" events --events-url "$REAL_EV,nope://x" --count 1
is "$RC" 2 "ctl events: the same"
is "$(pushed follow)" 6 "... nothing stored"

# --- a worker, the router and `ctl events` with a list ---------------------------------------

run ctl push work x -s 5
run timeout 30 "$SLUICE_BIN/worker" --url "$SB_IPC,$REAL" --handler noop --max-jobs 10
is "$RC" 0 "worker --url standby,leader: took and acked the 10 jobs pushed"
run ctl stats --json
is "$(json "$OUT" "sum(g['done'] for g in d['groups'])")" 10 "... the broker counts them done"
cmp_num "$(ops "$SB_IPC_OPS" hello)" -ge 1 "... after the standby answered its hello"
run ctl push work y -s 3
run timeout 30 "$SLUICE_BIN/worker" --url "tcp://127.0.0.1:$free_port,$REAL" --handler noop \
    --max-jobs 3
is "$RC" 0 "worker --url nobody-on-tcp,leader: took and acked 3 jobs"
run ctl stats --json
is "$(json "$OUT" "sum(g['done'] for g in d['groups'])")" 13 "... the broker counts them done"

fake_standby vanish2 "ipc://$SLUICE_DIR/vanish2.ipc" vanish
run ctl push work z -s 2
_t0=$SECONDS
run timeout 30 "$SLUICE_BIN/worker" --url "$FAKE_URL,$REAL" --handler noop --max-jobs 2
is "$RC" 0 "worker: a leader that dies holding its reserve: the jobs are taken at the next"
cmp_num "$((SECONDS - _t0))" -lt 9 "... within seconds, not after the reserve's 11 s timeout"
is "$(ops "$FAKE_OPS" reserve)" 1 "... the dead broker had received the reserve"

spawn events "$SLUICE_BIN/ctl" events --events-url "ipc://$SLUICE_DIR/no-events.ipc,$REAL_EV"
_events_probe_ok() {
    ctl queues create list-probe >/dev/null 2>&1
    ctl queues destroy list-probe >/dev/null 2>&1
    grep -q 'event=queue.destroy name=list-probe' "$SLUICE_DIR/events.log"
}
ok "ctl events --events-url nobody,broker: receives the broker's events" \
    wait_for 10 _events_probe_ok

start_router r1 --tick 200ms --url "$SB_TCP,$REAL" \
    --events-url "ipc://$SLUICE_DIR/no-events.ipc,$REAL_EV"
ok "router --url standby,leader: takes the lease at the leader" wait_leader r1 10
cmp_num "$(ops "$SB_TCP_OPS" lease.acquire)" -ge 1 "... after the standby refused it"
stop_pgrp "$ROUTER_PID" 5

stop_broker
done_testing
