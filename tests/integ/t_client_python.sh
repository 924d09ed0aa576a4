#!/usr/bin/env bash
# The Python client (clients/python) and its examples against real brokers: push, batches
# split under max_message, the idempotency key across a lost reply, the token, the broker
# down, tcp://, lists of brokers (fake cluster standbys, lib_fake.sh), and
# examples/python/worker.py under worker-pool acking, failing and crashing.
# Each check is one run of tests/integ/py/client_checks.py (the reason on failure).
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_fake.sh
. "$(dirname "$0")/lib_fake.sh"

PY=/usr/bin/python3
root=$(cd "$(dirname "$0")/../.." && pwd)
checks=$root/tests/integ/py/client_checks.py
"$PY" -c 'import msgpack' 2>/dev/null || skip_all "$PY has no msgpack (apt install python3-msgpack)"
export PYTHONPATH=$root/clients/python
export PYTHONDONTWRITEBYTECODE=1

tok=$SLUICE_DIR/token
wrong=$SLUICE_DIR/wrong
printf 'py-secret-%s\n' "$RANDOM$RANDOM" >"$tok"
printf 'not-the-token\n' >"$wrong"
chmod 600 "$tok" "$wrong"
cp "$tok" "$SLUICE_DIR/open"
chmod 644 "$SLUICE_DIR/open"

# --- a broker with a token and a small message limit, over IPC ------------------------------

# start_broker pings with ctl, and the checks' clients find the token the same way.
export SLUICE_TOKEN_FILE=$tok
start_broker --token-file "$tok" --max-message 64K --max-payload 16K

ok "push: one job, then two (bytes and str), ids in order" "$PY" "$checks" push
ok "batch: 1,000 payloads of 16 bytes" "$PY" "$checks" batch 1000 16
ok "batch: a list larger than one message is split, order and ids kept" \
    "$PY" "$checks" batch 5000 100
ok "a payload over max_message: too_large before anything is sent" "$PY" "$checks" too_large
ok "the same client and seq twice: duplicate with the first ids" "$PY" "$checks" dup_key
ok "a lost reply: the push is resent on a new connection and answered duplicate" \
    "$PY" "$checks" lost_reply
ok "a push that timed out, pushed again: each job stored once, with the first ids" \
    "$PY" "$checks" timeout_retry
ok "token: a push with the token file" "$PY" "$checks" token "$tok"
ok "wrong token: unauthorized, nothing stored" "$PY" "$checks" wrong_token "$wrong" "$tok"
ok "no token: unauthorized, nothing stored" env -u SLUICE_TOKEN_FILE "$PY" "$checks" \
    wrong_token "" "$tok"
ok "a token file others can read is refused" "$PY" "$checks" token_file_refused \
    "$SLUICE_DIR/open"
ok "the default address: checks on the runtime directory, SLUICE_URL" \
    "$PY" "$checks" default_dir

ok "sluice.Worker: frames in and out, ack, fail, an unanswered job acked" \
    "$PY" "$checks" worker_frames

# --- examples/python/worker.py under worker-pool --------------------------------------------

spawn pool "$SLUICE_BIN/worker-pool" -n 1 --token-file "$tok" \
    --handler "pipe:$PY $root/examples/python/worker.py"
pool_pid=$SPAWNED_PID
run "$PY" "$root/examples/python/push.py" py-work "hello" "fail me" "crash me"
is "$RC" 0 "examples/python/push.py pushes three jobs"
like "$OUT" "pushed 3 job" "... and says so"

# All three done: the failed one and the crashed one each on their second attempt.
done_3() {
    run ctl --token-file "$tok" stats --json
    [ "$(json "$OUT" '[g["done"] for g in d["groups"] if g["name"] == "py-work"][0]')" = 3 ]
}
ok "worker.py acks, and the failed and crashed jobs run again and are acked" wait_for 20 done_3
log=$(cat "$SLUICE_DIR/pool.log")
like "$log" "HELLO" "the handler's print() reaches the worker's log, not the frames"
like "$log" "FAIL ME" "the failed job ran again"
like "$log" "crashing on purpose" "the crash happened mid-job"
like "$log" "CRASH ME" "the crashed job ran again"
run ctl --token-file "$tok" stats --json
is "$(json "$OUT" '[g["failed"] for g in d["groups"] if g["name"] == "py-work"][0]')" 2 \
    "stats: two failed attempts (one nack, one crash)"
stop_pgrp "$pool_pid" 5

# examples/python/producer.py: one job per HTTP request.
hport=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
spawn producer "$PY" "$root/examples/python/producer.py" "$hport"
post() {
    "$PY" -c 'import sys, urllib.request as u
print(u.urlopen(u.Request(sys.argv[1], data=sys.argv[2].encode())).read().decode())' "$@"
}
ok "producer.py listens" wait_for 10 post "http://127.0.0.1:$hport/jobs/py-web" "first"
run post "http://127.0.0.1:$hport/jobs/py-web" "second"
like "$OUT" '"count": 1' "producer.py: a POST pushes one job and answers its id"
run ctl --token-file "$tok" stats --json
is "$(json "$OUT" '[g["pushed"] for g in d["groups"] if g["name"] == "py-web"][0]')" 2 \
    "... both jobs are in the broker"
stop_broker
unset SLUICE_TOKEN_FILE

# --- the broker down ------------------------------------------------------------------------

ok "no broker (no socket file): ConnectionError at once" "$PY" "$checks" down "" 2
ok "a socket nobody serves: Timeout after the client's timeout" \
    "$PY" "$checks" silent "$SLUICE_DIR/silent.ipc"
start_broker
ok "a broker that stops under a connected client: ConnectionError at once" \
    "$PY" "$checks" dies "$BROKER_PID"

stop_broker
start_broker --max-connections 1
ok "a broker at its connection limit: tried again until the timeout" "$PY" "$checks" full
stop_broker

# --- a list of brokers: fake cluster standbys in front of a real broker ----------------------

start_broker
real=ipc://$SLUICE_DIR/broker.ipc
fake_standby sb "ipc://$SLUICE_DIR/standby.ipc" "leader=$real"
sb=$FAKE_URL
fake_standby el1 "ipc://$SLUICE_DIR/el1.ipc" unknown
el1=$FAKE_URL
fake_standby el2 "tcp://127.0.0.1:0" unknown
el2=$FAKE_URL
fake_standby lease "ipc://$SLUICE_DIR/lease.ipc" lease
lease=$FAKE_URL
lease_ops=$FAKE_OPS
fake_server "$SLUICE_DIR/silent2.ipc" silent
fake_standby vanish "ipc://$SLUICE_DIR/vanish.ipc" vanish
vanish=$FAKE_URL
free=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ok "a list: spaces dropped; empty items, more than 8, a bad address refused" \
    "$PY" "$checks" list_parse
ok "standby,leader: the standby's leader_url is followed, the push done there" \
    "$PY" "$checks" follow "$sb" "$real"
ok "leader_url \"\" at every broker: not_leader after the timeout" \
    "$PY" "$checks" no_leader "$el1" "$el2"
ok "a not_leader without leader_url: raised at once, not sent on" \
    "$PY" "$checks" lease "$lease" "$real"
is "$(grep -c '^push$' "$lease_ops")" 1 "... the lease's broker was asked once"
ok "a first broker with no socket file, nobody on tcp, silent, or dying with the request: the next one answers" \
    "$PY" "$checks" list_down "$real" "tcp://127.0.0.1:$free" "$SLUICE_DIR/silent2.ipc" \
    "$vanish"
stop_broker

# --- tcp:// ---------------------------------------------------------------------------------

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ok "tcp: no broker listening: ConnectionError at once" "$PY" "$checks" down \
    "tcp://127.0.0.1:$port" 2
start_broker --url "tcp://127.0.0.1:$port" --max-message 32K --max-payload 8K
ok "tcp: 5,000 payloads split under a 32K max_message" "$PY" "$checks" tcp \
    "tcp://127.0.0.1:$port"
stop_broker

done_testing
