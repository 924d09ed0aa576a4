#!/usr/bin/env bash
# The HTTP/JSON API (broker --http-listen; README "HTTP API"): every endpoint group answers
# JSON through the same ops as the wire (push, stats, queues, routes, dead jobs, flush, purge,
# a worker's reserve/ack/nack/touch); a long-poll reserve is woken by a push; an
# Idempotency-Key resend answers the original ids; malformed JSON, a wrong type, an unknown
# field or a bad name is 400 naming the field and stores nothing; a body over --max-message is
# answered 413 unread; 404 and 405 are JSON; with a token every /v1 endpoint wants "Authorization:
# Bearer TOKEN" (401 without or wrong); /metrics is served as before; start errors: a
# non-loopback address without a token (unless --http-insecure), --http-listen and
# --metrics-listen differing, a bad address.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip_all "curl is needed (scripts/deps --test installs it)"
command -v python3 >/dev/null || skip_all "python3 is needed to read JSON"

free_port() {
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
}

# api METHOD PATH [BODY [CURL ARGS...]]: one request; ST is the status, BODY the answer (and
# CT its Content-Type). HTTP_AUTH, when set, is sent as the Authorization header.
api() {
    local m=$1 p=$2 d=${3-} out
    shift 3 2>/dev/null || shift $#
    local -a extra=("$@")
    [ -n "${HTTP_AUTH:-}" ] && extra+=(-H "Authorization: $HTTP_AUTH")
    [ -n "$d" ] && extra+=(--data-binary "$d" -H "Content-Type: application/json")
    out=$(curl -s --max-time 20 -o "$SLUICE_DIR/api.body" -w '%{http_code}\t%{content_type}' \
        -X "$m" "${extra[@]}" "http://127.0.0.1:$PORT$p")
    IFS=$'\t' read -r ST CT <<<"$out"
    BODY=$(cat "$SLUICE_DIR/api.body")
}

started_or_gone() {
    grep -q 'event=start' "$SLUICE_DIR/broker.log" 2>/dev/null || ! alive "$BROKER_PID"
}

# start_http ARGS...: a broker with --http-listen on a free port (another port if it was
# taken meanwhile).
start_http() {
    local _
    for _ in 1 2 3; do
        free_port
        spawn broker "$SLUICE_BIN/broker" --no-journal --http-listen "127.0.0.1:$PORT" "$@"
        BROKER_PID=$SPAWNED_PID
        wait_for 10 started_or_gone
        if grep -q 'event=start' "$SLUICE_DIR/broker.log" && alive "$BROKER_PID"; then
            return 0
        fi
        stop_pgrp "$BROKER_PID" 3
    done
    bail_out "the broker did not start with --http-listen"
}

jobs_held() {
    api GET /v1/stats
    json "$BODY" 'd["broker"]["jobs"]'
}

# --- start errors --------------------------------------------------------------------------------

run timeout 10 "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/r1" --http-listen 0.0.0.0:9
is "$RC" 2 "--http-listen on 0.0.0.0 without a token: exit 2"
like "$ERR" "not a loopback address.*--http-insecure" "and says why and how to allow it"
run timeout 10 "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/r2" \
    --http-listen 127.0.0.1:9 --metrics-listen 127.0.0.1:10
is "$RC" 2 "--http-listen and --metrics-listen with different values: exit 2"
like "$ERR" "differ" "and says they differ"
run timeout 10 "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/r3" --http-listen localhost:80
is "$RC" 2 "--http-listen with a host name: exit 2"
like "$ERR" "--http-listen" "and names the option"
ok "a refused start leaves no socket behind" [ ! -e "$SLUICE_DIR/r1/broker.ipc" ]

# --- push, stats, errors -------------------------------------------------------------------------

start_http --max-message 4096 --max-payload 1024
# A TTR that no loaded machine runs out between the reserve and the ack below.
api POST /v1/groups/alice/jobs '{"payloads":["a","b"],"ttr_ms":120000}'
is "$ST" 200 "push: 200"
is "$CT" "application/json" "push: JSON"
is "$(json "$BODY" '[d["count"], d["first_id"], d["queue"]]')" '[2, 1, "default"]' \
    "push answers count, first_id and queue"
api POST /v1/groups/alice/jobs '{"payload_b64":"/wA="}'
is "$(json "$BODY" 'd["count"]')" 1 "push of one base64 payload"

api GET /v1/stats
is "$ST" 200 "GET /v1/stats: 200"
is "$(json "$BODY" 'sorted(d)')" "$(json "$(ctl stats --json)" 'sorted(d)')" \
    "GET /v1/stats has the keys of ctl stats --json"
is "$(json "$BODY" 'd["broker"]["jobs"]')" 3 "and counts the jobs pushed"

api POST /v1/groups/alice/jobs '{"payloads":["a"'
is "$ST" 400 "malformed JSON: 400"
like "$(json "$BODY" 'd["err"] + " " + d["msg"]')" "bad_request body: malformed JSON at line 1" \
    "says where"
api POST /v1/groups/alice/jobs '{"payloads":["a"],"ttr_ms":"soon"}'
is "$ST" 400 "a wrong type: 400"
like "$BODY" "field 'ttr_ms'" "naming the field"
api POST /v1/groups/alice/jobs '{"payloads":["a"],"colour":"red"}'
is "$ST" 400 "an unknown field: 400"
like "$BODY" "unknown field 'colour'" "naming the field"
api POST /v1/groups/alice/jobs '{"payloads":["a"],"queue":"no such"}'
is "$ST" 400 "a bad queue name: 400"
like "$BODY" "field 'queue'" "naming the field"
api POST '/v1/groups/a%20b/jobs' '{"payloads":["a"]}'
is "$ST" 400 "a bad group name in the path: 400"
like "$BODY" "'group'" "naming it"
api POST /v1/groups/alice/jobs '{"payloads":["a", 7]}'
is "$ST" 400 "a payload that is not a string: 400"
api POST /v1/groups/alice/jobs '{"payloads":["a"],"queue":"nope"}'
is "$ST" 404 "a queue that does not exist: 404"
is "$(json "$BODY" 'd["err"]')" not_found "err not_found"
is "$(jobs_held)" 3 "no refused push stored anything"

big=$(head -c 5000 /dev/zero | tr '\0' a)
api POST /v1/groups/alice/jobs "{\"payload\":\"$big\"}"
is "$ST" 413 "a body over --max-message: 413"
is "$(json "$BODY" 'd["err"]')" too_large "err too_large, in JSON"
is "$(jobs_held)" 3 "and stores nothing"
# Refused from its Content-Length alone: the connection closes without the body being read.
python3 - "$PORT" >"$SLUICE_DIR/big.out" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /v1/groups/alice/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.split(b"\r\n", 1)[0].decode())
PY
like "$(cat "$SLUICE_DIR/big.out")" "^HTTP/1.1 413" \
    "a 1 GB Content-Length is answered 413 and closed before any of it is sent"
api POST /v1/groups/alice/jobs '{"payload":"a"}' -H "Transfer-Encoding: chunked"
is "$ST" 400 "a chunked body: 400 (no length to check)"

api GET /v1/nothing
is "$ST" 404 "an unknown path: 404"
is "$(json "$BODY" 'd["err"]')" not_found "in JSON"
api DELETE /v1/stats
is "$ST" 405 "a method the path does not take: 405"

# --- idempotency ---------------------------------------------------------------------------------

api POST /v1/groups/bob/jobs '{"payloads":["x","y"]}' -H "Idempotency-Key: web-1:7"
first=$(json "$BODY" 'd["first_id"]')
is "$(json "$BODY" 'd["dup"]')" false "a push with an Idempotency-Key is stored"
api POST /v1/groups/bob/jobs '{"payloads":["x","y"]}' -H "Idempotency-Key: web-1:7"
is "$ST" 200 "its resend: 200"
is "$(json "$BODY" '[d["dup"], d["first_id"], d["count"]]')" "[true, $first, 2]" \
    "answers dup with the original ids"
is "$(jobs_held)" 5 "and stores nothing again"
api POST /v1/groups/bob/jobs '{"payloads":["x"]}' -H "Idempotency-Key: web-1"
is "$ST" 400 "an Idempotency-Key that is not CLIENT:SEQ: 400"

# --- queues, routes, dead, flush, purge ----------------------------------------------------------

api POST /v1/queues '{"name":"q1","priority":5}'
is "$ST" 200 "POST /v1/queues creates a queue"
api POST /v1/queues '{"name":"q1"}'
is "$ST" 409 "creating it again: 409"
api PATCH /v1/queues/q1 '{"weight":3}'
is "$ST" 200 "PATCH /v1/queues/q1"
api GET /v1/queues
is "$(json "$BODY" '[q["weight"] for q in d["queues"] if q["name"] == "q1"]')" "[3]" \
    "GET /v1/queues shows the change"
api GET /v1/queues/q1
is "$(json "$BODY" '[(q["name"], q["weight"], q["priority"]) for q in d["queues"]]')" \
    '[["q1", 3, 5]]' "GET /v1/queues/q1: that queue alone"
api GET /v1/queues/nope
is "$ST" 404 "GET /v1/queues/nope: 404"
api POST /v1/queues/q1/pause
is "$ST" 200 "pause"
api GET /v1/queues
is "$(json "$BODY" '[q["paused"] for q in d["queues"] if q["name"] == "q1"]')" "[true]" "paused"
api POST /v1/queues/q1/resume
is "$ST" 200 "resume"
api PUT /v1/routes/carol '{"queue":"q1"}'
is "$ST" 200 "PUT /v1/routes/carol"
api GET /v1/routes
is "$(json "$BODY" 'd["routes"]')" '[{"group": "carol", "queue": "q1"}]' "GET /v1/routes"
api DELETE /v1/routes/carol
is "$ST" 200 "DELETE /v1/routes/carol"
api PUT /v1/groups/carol/limit '{"rate":2.5,"burst":4}'
is "$ST" 200 "PUT /v1/groups/carol/limit"
is "$(json "$BODY" '[d["rate"], d["burst"]]')" "[2.5, 4]" "answers the limit set"
api GET /v1/stats
is "$(json "$BODY" '[[g["rate"], g["burst"], g["held"]] for g in d["groups"] if g["name"] == "carol"]')" \
    "[[2.5, 4, false]]" "GET /v1/stats shows carol's limit"
api PUT /v1/groups/carol/limit '{"rate":0.0001}'
is "$ST" 400 "a rate below 0.001/s: 400"
like "$BODY" "'rate' must be 0" "saying why"
api PUT /v1/groups/carol/limit '{"rate":0,"expect":"2.5:4"}'
is "$(json "$BODY" '[d["rate"], d["burst"]]')" "[0.0, 0]" "rate 0 with the right expect removes it"
api PUT /v1/groups/carol/limit '{"rate":1,"expect":"2.5:4"}'
is "$ST" 409 "an expect that no longer holds: 409"
api DELETE /v1/queues/q1
is "$ST" 200 "DELETE /v1/queues/q1"
api GET /v1/dead
is "$(json "$BODY" 'd["total"]')" 0 "GET /v1/dead"
api GET '/v1/dead?queue=default&max=5'
is "$(json "$BODY" '[d["total"], d["more"]]')" "[0, false]" "GET /v1/dead?queue=default&max=5"
api GET '/v1/dead?queue=nope'
is "$ST" 404 "GET /v1/dead?queue=nope: 404"
api GET '/v1/dead?colour=red'
is "$ST" 400 "an unknown query parameter: 400"
like "$BODY" "'colour'" "naming it"
api GET '/v1/dead?max=many'
is "$ST" 400 "a query parameter of the wrong type: 400"
like "$BODY" "'max'" "naming it"
api POST /v1/dead/retry '{"queue":"default"}'
is "$(json "$BODY" 'd["n"]')" 0 "POST /v1/dead/retry"
api POST /v1/dead/purge '{"queue":"default"}'
is "$ST" 200 "POST /v1/dead/purge"
api POST /v1/flush
is "$ST" 200 "POST /v1/flush"
api POST /v1/purge '{"group":"bob"}'
is "$(json "$BODY" 'd["purged"]')" 2 "POST /v1/purge deletes bob's ready jobs"

# --- a worker over HTTP --------------------------------------------------------------------------

api POST /v1/reserve '{"worker":"hw","max":2}'
is "$(json "$BODY" '[j["payload"] for j in d["jobs"]]')" '["a", "b"]' "reserve takes 2 jobs"
ids=$(json "$BODY" '[j["id"] for j in d["jobs"]]')
api POST /v1/reserve '{"worker":"hw"}'
is "$(json "$BODY" '[j.get("payload_b64") for j in d["jobs"]]')" '["/wA="]' \
    "a payload that is not UTF-8 comes as payload_b64"
bin_id=$(json "$BODY" 'd["jobs"][0]["id"]')
api POST /v1/ack "{\"ids\":$ids,\"worker\":\"hw\"}"
is "$(json "$BODY" '[d["n"], d["missing"]]')" "[2, 0]" "ack settles both"
api POST /v1/touch "{\"ids\":[$bin_id],\"worker\":\"hw\",\"ttr_ms\":30000}"
is "$(json "$BODY" 'd["n"]')" 1 "touch"
api POST /v1/nack "{\"ids\":[$bin_id],\"worker\":\"hw\",\"delay_ms\":0}"
is "$(json "$BODY" 'd["n"]')" 1 "nack"
api POST /v1/reserve '{"worker":"hw","max":"two"}'
is "$ST" 400 "reserve with a wrong type: 400"
like "$BODY" "field 'max'" "naming it"
api POST /v1/reserve '{"worker":"hw"}'
api POST /v1/ack "{\"ids\":[$bin_id]}"

# A long poll: parked until a push comes, answered with the job well before wait_ms.
curl -s --max-time 30 -o "$SLUICE_DIR/poll.body" -X POST \
    --data-binary '{"worker":"hw","wait_ms":20000}' "http://127.0.0.1:$PORT/v1/reserve" &
poll=$!
parked() {
    [ "$(json "$(ctl stats --json)" 'd["broker"]["waiters"]')" = 1 ]
}
ok "the reserve is parked" wait_for 10 parked
_now_us
t0=$REPLY
api POST /v1/groups/dave/jobs '{"payload":"wake"}'
wait "$poll"
_now_us
is "$(json "$(cat "$SLUICE_DIR/poll.body")" '[j["payload"] for j in d["jobs"]]')" '["wake"]' \
    "a push wakes the long-polling reserve"
cmp_num "$(((REPLY - t0) / 1000))" -lt 10000 "well before its wait_ms"

# A client that goes away while its reserve is parked leaves no reserve behind to take jobs.
curl -s --max-time 30 -o /dev/null -X POST \
    --data-binary '{"worker":"hgone","wait_ms":20000}' "http://127.0.0.1:$PORT/v1/reserve" &
poll=$!
ok "a second reserve is parked" wait_for 10 parked
kill "$poll"
wait "$poll" 2>/dev/null || true
no_waiter() {
    [ "$(json "$(ctl stats --json)" 'd["broker"]["waiters"]')" = 0 ]
}
ok "its client gone, the reserve leaves the park" wait_for 10 no_waiter
api POST /v1/groups/dave/jobs '{"payload":"left"}'
is "$(json "$(ctl stats --json)" '[q["ready"] for q in d["queues"] if q["name"] == "default"]')" \
    "[1]" "and a job pushed then stays ready"
api POST /v1/reserve '{"worker":"hw"}'
is "$(json "$BODY" '[j["payload"] for j in d["jobs"]]')" '["left"]' "for the next worker"
api POST /v1/ack "{\"ids\":[$(json "$BODY" 'd["jobs"][0]["id"]')]}"

# --- events as Server-Sent Events ----------------------------------------------------------------

curl -s -N --max-time 30 -o "$SLUICE_DIR/events.out" "http://127.0.0.1:$PORT/v1/events" &
sse=$!
sse_open() {
    grep -q "^: sluice events" "$SLUICE_DIR/events.out" 2>/dev/null
}
ok "GET /v1/events opens a stream" wait_for 10 sse_open
# The stream subscribes on its own socket: create queues until one is seen (the first may
# come before the subscription is in place, as for any subscriber).
sse_got() {
    api POST /v1/queues "{\"name\":\"ev$RANDOM\"}"
    grep -q "^event: queue.create" "$SLUICE_DIR/events.out"
}
ok "a queue.create event arrives on it" wait_for 10 sse_got
like "$(grep -A1 '^event: queue.create' "$SLUICE_DIR/events.out" | head -2 | tail -1)" \
    '^data: \{"name":"ev[0-9]+","event":"queue.create","ts_ms":[0-9]+\}$' "as one JSON data line"
api POST /v1/events
is "$ST" 405 "POST /v1/events: 405"

# Stopping with an event stream and a parked reserve open: both are answered, exit 0.
curl -s --max-time 30 -o "$SLUICE_DIR/stop.body" -w '%{http_code}' -X POST \
    --data-binary '{"worker":"hw2","wait_ms":25000}' "http://127.0.0.1:$PORT/v1/reserve" \
    >"$SLUICE_DIR/stop.status" &
poll=$!
ok "the reserve is parked" wait_for 10 parked
# And a request whose body never comes: its read ends when the broker stops.
python3 - "$PORT" >"$SLUICE_DIR/half.out" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /v1/groups/alice/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
print("sent", flush=True)
try:
    s.recv(4096)
except OSError:
    pass
PY
halfbody=$!
ok "a request waits for the rest of its body" wait_for 10 grep -q sent "$SLUICE_DIR/half.out"

# --- /metrics as before --------------------------------------------------------------------------

api GET /metrics
is "$ST" 200 "GET /metrics: 200"
like "$BODY" "sluice_broker_info" "Prometheus text"
_now_us
t0=$REPLY
ok "the broker stops cleanly with a stream and a parked reserve open" stop_broker
_now_us
cmp_num "$(((REPLY - t0) / 1000))" -lt 5000 "promptly"
wait "$poll"
is "$(cat "$SLUICE_DIR/stop.status")" 503 "the parked reserve is answered 503"
wait "$halfbody"
wait "$sse"

# --- a token -------------------------------------------------------------------------------------

tok=$SLUICE_DIR/token
printf 'tok-%s-secret\n' "$RANDOM$RANDOM" >"$tok"
chmod 600 "$tok"
start_http --token-file "$tok"
HTTP_AUTH=""
api GET /v1/stats
is "$ST" 401 "with a token, no Authorization: 401"
is "$(json "$BODY" 'd["err"]')" unauthorized "err unauthorized"
api POST /v1/groups/alice/jobs '{"payload":"a"}'
is "$ST" 401 "a push without it: 401"
HTTP_AUTH="Bearer wrong"
api GET /v1/stats
is "$ST" 401 "a wrong token: 401"
HTTP_AUTH="Bearer $(head -n1 "$tok")"
api POST /v1/groups/alice/jobs '{"payload":"a"}'
is "$ST" 200 "the right token: push 200"
api GET /metrics
is "$ST" 200 "and /metrics with it"
HTTP_AUTH=""
api GET /metrics
is "$ST" 401 "/metrics without it: 401, as before"
ok "the broker stops cleanly" stop_broker

# A non-loopback address is allowed with a token, or with --http-insecure.
free_port
spawn broker "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/ins" \
    --http-listen "0.0.0.0:$PORT" --http-insecure
BROKER_PID=$SPAWNED_PID
wait_for 10 started_or_gone
ok "--http-insecure allows 0.0.0.0 without a token" alive "$BROKER_PID"
stop_broker

done_testing
