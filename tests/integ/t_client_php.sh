#!/usr/bin/env bash
# The PHP client (clients/php) and its examples against real brokers: push, payloads as bin,
# batches split under max_message, the idempotency key across a lost reply, the token, the
# broker down, tcp://, lists of brokers (fake cluster standbys, lib_fake.sh),
# examples/php/worker.php under worker-pool acking, failing and crashing,
# and examples/php/producer.php served by `php -S`. Each check is one run of
# clients/php/tests/checks.php (the reason on failure).
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_fake.sh
. "$(dirname "$0")/lib_fake.sh"

PHP=php
root=$(cd "$(dirname "$0")/../.." && pwd)
checks=$root/clients/php/tests/checks.php
command -v "$PHP" >/dev/null || skip_all "no php (apt install php-cli php-msgpack)"
"$PHP" -r 'exit(function_exists("msgpack_unpack") ? 0 : 1);' ||
    skip_all "php has no msgpack (apt install php-msgpack)"
"$PHP" -r 'exit(function_exists("pcntl_fork") ? 0 : 1);' ||
    skip_all "php has no pcntl, which the checks' proxy needs"

tok=$SLUICE_DIR/token
wrong=$SLUICE_DIR/wrong
printf 'php-secret-%s\n' "$RANDOM$RANDOM" >"$tok"
printf 'not-the-token\n' >"$wrong"
chmod 600 "$tok" "$wrong"
cp "$tok" "$SLUICE_DIR/open"
chmod 644 "$SLUICE_DIR/open"

ok "the msgpack of a request: payloads as bin, names as str" "$PHP" "$checks" encoding

# --- a broker with a token and a small message limit, over IPC ------------------------------

# start_broker pings with ctl, and the checks' clients find the token the same way.
export SLUICE_TOKEN_FILE=$tok
start_broker --token-file "$tok" --max-message 64K --max-payload 16K

ok "push: one job, then two (not UTF-8), ids in order, bad options refused" \
    "$PHP" "$checks" push
ok "batch: 1,000 payloads of 16 bytes" "$PHP" "$checks" batch 1000 16
ok "batch: a list larger than one message is split, order and ids kept" \
    "$PHP" "$checks" batch 5000 100
ok "a payload over max_message: too_large before anything is sent" "$PHP" "$checks" too_large
ok "the same client and seq twice: duplicate with the first ids" "$PHP" "$checks" dup_key
ok "a lost reply: the push is resent on a new connection and answered duplicate" \
    "$PHP" "$checks" lost_reply
ok "a push that timed out, pushed again: each job stored once, with the first ids" \
    "$PHP" "$checks" timeout_retry
ok "token: a push with the token file" "$PHP" "$checks" token "$tok"
ok "wrong token: unauthorized, nothing stored" "$PHP" "$checks" wrong_token "$wrong" "$tok"
ok "no token: unauthorized, nothing stored" env -u SLUICE_TOKEN_FILE "$PHP" "$checks" \
    wrong_token "" "$tok"
ok "a token file others can read is refused" "$PHP" "$checks" token_file_refused \
    "$SLUICE_DIR/open"
ok "the default address: checks on the runtime directory, SLUICE_URL" \
    "$PHP" "$checks" default_dir

ok "Sluice\\Worker: frames in and out, ack, fail, an unanswered job acked" \
    "$PHP" "$checks" worker_frames

# --- examples/php/worker.php under worker-pool ----------------------------------------------

SLUICE_DEMO_SLEEP=0-20 spawn pool "$SLUICE_BIN/worker-pool" -n 1 --token-file "$tok" \
    --handler "pipe:$PHP $root/examples/php/worker.php"
pool_pid=$SPAWNED_PID
run "$PHP" "$root/examples/php/push.php" php-work "hello" "fail me" "crash me"
is "$RC" 0 "examples/php/push.php pushes three jobs"
like "$OUT" "pushed 3 job" "... and says so"

# All three done: the failed one and the crashed one each on their second attempt.
done_3() {
    run ctl --token-file "$tok" stats --json
    [ "$(json "$OUT" '[g["done"] for g in d["groups"] if g["name"] == "php-work"][0]')" = 3 ]
}
ok "worker.php acks, and the failed and crashed jobs run again and are acked" wait_for 20 done_3
log=$(cat "$SLUICE_DIR/pool.log")
like "$log" "HELLO" "the handler's echo reaches the worker's log, not the frames"
like "$log" "FAIL ME" "the failed job ran again"
like "$log" "asked to fail" "the failure's message is logged"
like "$log" "crashing on purpose" "the crash happened mid-job"
like "$log" "CRASH ME" "the crashed job ran again"
run ctl --token-file "$tok" stats --json
is "$(json "$OUT" '[g["failed"] for g in d["groups"] if g["name"] == "php-work"][0]')" 2 \
    "stats: two failed attempts (one nack, one crash)"
stop_pgrp "$pool_pid" 5

# --- examples/php/producer.php under php -S: one job per HTTP request -----------------------

hport=$("$PHP" -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];')
spawn producer "$PHP" -S "127.0.0.1:$hport" "$root/examples/php/producer.php"
post() {
    "$PHP" -r '$c = stream_context_create(["http" => ["method" => "POST", "content" => $argv[2],
        "ignore_errors" => true, "timeout" => 5]]);
$b = @file_get_contents($argv[1], false, $c);
if ($b === false) exit(1);
echo $http_response_header[0], "\n", $b;' "$@"
}
ok "producer.php is served" wait_for 10 post "http://127.0.0.1:$hport/jobs/php-web" "first"
run post "http://127.0.0.1:$hport/jobs/php-web" "second"
like "$OUT" '200 OK' "producer.php: a POST is answered 200"
like "$OUT" '"count":1' "... with the one job it pushed"
run post "http://127.0.0.1:$hport/jobs/bad%20name" "x"
like "$OUT" '400 Bad Request' "a bad group name: 400"
like "$OUT" '"err":"bad_request"' "... with the broker's code"
run ctl --token-file "$tok" stats --json
is "$(json "$OUT" '[g["pushed"] for g in d["groups"] if g["name"] == "php-web"][0]')" 2 \
    "... both jobs are in the broker"
stop_broker
unset SLUICE_TOKEN_FILE

# --- the broker down ------------------------------------------------------------------------

ok "no broker (no socket file): ConnectionException at once" "$PHP" "$checks" down "" 2
ok "a socket nobody serves: TimeoutException after the client's timeout" \
    "$PHP" "$checks" silent "$SLUICE_DIR/silent.ipc"
start_broker
ok "a broker that stops under a connected client: ConnectionException at once" \
    "$PHP" "$checks" dies "$BROKER_PID"
stop_broker
start_broker --max-connections 1
ok "a broker at its connection limit: tried again until the timeout" "$PHP" "$checks" full
stop_broker

# --- a list of brokers: fake cluster standbys in front of a real broker ----------------------

ok "a list: spaces dropped; empty items, more than 8, a bad address refused" \
    "$PHP" "$checks" list_parse
if /usr/bin/python3 -c 'import msgpack' 2>/dev/null; then
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
    free=$("$PHP" -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];')
    ok "standby,leader: the standby's leader_url is followed, the push done there" \
        "$PHP" "$checks" follow "$sb" "$real"
    ok "leader_url \"\" at every broker: not_leader after the timeout" \
        "$PHP" "$checks" no_leader "$el1" "$el2"
    ok "a not_leader without leader_url: thrown at once, not sent on" \
        "$PHP" "$checks" lease "$lease" "$real"
    is "$(grep -c '^push$' "$lease_ops")" 1 "... the lease's broker was asked once"
    ok "a first broker with no socket file, nobody on tcp, silent, or dying with the request: the next one answers" \
        "$PHP" "$checks" list_down "$real" "tcp://127.0.0.1:$free" "$SLUICE_DIR/silent2.ipc" \
        "$vanish"
    stop_broker
else
    diag "skipped the fake standbys' checks: /usr/bin/python3 has no msgpack"
fi

# --- tcp:// ---------------------------------------------------------------------------------

port=$("$PHP" -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];')
ok "tcp: no broker listening: ConnectionException at once" "$PHP" "$checks" down \
    "tcp://127.0.0.1:$port" 2
start_broker --url "tcp://127.0.0.1:$port" --max-message 32K --max-payload 8K
ok "tcp: 5,000 payloads split under a 32K max_message" "$PHP" "$checks" tcp \
    "tcp://127.0.0.1:$port"
stop_broker

done_testing
