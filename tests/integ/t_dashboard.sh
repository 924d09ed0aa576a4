#!/usr/bin/env bash
# The web dashboard (README "Dashboard") in a real browser: headless Chromium driven by
# tests/integ/py/dashboard.py (Debian's python3-selenium and chromium-driver) against a broker
# with --http-listen and a token, a worker-pool, a router and a flood. Every section renders
# with /v1/stats' numbers, which change while jobs flow; pause, resume, a weight, retry and
# purge of dead jobs done by clicking change the broker; a wrong token is refused and nothing
# but the login page is served without it (curl); the page never holds the token; screenshots
# at 1280x800 and 390x844 are checked not blank and kept (below; their paths printed); the stale
# banner shows while the broker is stopped and goes when it is back. GET /v1/pool (curl) says
# the pool unreachable before it starts and at a --pool-url nobody listens on (a second
# broker), reachable with its workers once it runs; the Workers section's pool card shows it.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"

for c in curl python3 /usr/bin/chromium /usr/bin/chromedriver; do
    command -v "$c" >/dev/null || skip_all "$c is needed (scripts/deps --test installs it)"
done
# Debian's python3, which python3-selenium installs into (not a python3 earlier in PATH).
PY=/usr/bin/python3
"$PY" -c 'import selenium' 2>/dev/null ||
    skip_all "python3-selenium is needed (scripts/deps --test installs it)"
[ -x "$SLUICE_BIN/worker-pool" ] || skip_all "bin/worker-pool is not built"

TOKEN=dash-$RANDOM$RANDOM-secret
printf '%s\n' "$TOKEN" >"$SLUICE_DIR/token"
chmod 0600 "$SLUICE_DIR/token"
export SLUICE_TOKEN_FILE=$SLUICE_DIR/token
OUTDIR=$SLUICE_DIR/dash
mkdir -p "$OUTDIR"

free_port
start_broker --http-listen "127.0.0.1:$PORT"
URL=http://127.0.0.1:$PORT

# code PATH [CURL ARGS...]: the status of a GET.
code() {
    local p=$1
    shift
    curl -s --max-time 10 -o "$SLUICE_DIR/curl.body" -w '%{http_code}' "$@" "$URL$p"
}
auth=(-H "Authorization: Bearer $TOKEN")
is "$(code /)" 200 "/ (the login page) is served without the token"
is "$(code /loader.js)" 200 "so is its loader"
for p in /app.js /app.css /v1/stats /v1/groups /v1/history /v1/events /v1/dead /v1/pool \
    /metrics; do
    is "$(code "$p")" 401 "$p is refused without the token"
    is "$(code "$p" -H 'Authorization: Bearer wrong')" 401 "$p is refused with a wrong token"
done
is "$(code /app.js "${auth[@]}")" 200 "app.js is served with the token"
like "$(curl -s -D - -o /dev/null "${auth[@]}" "$URL/app.js")" \
    "Content-Type: text/javascript" "app.js comes as JavaScript"
hdrs=$(curl -s -D - -o /dev/null "$URL/")
like "$hdrs" "Content-Security-Policy: default-src 'none'; script-src 'self' blob:" \
    "/ comes with a Content-Security-Policy of 'self'"
like "$hdrs" "X-Content-Type-Options: nosniff" "and nosniff"
like "$hdrs" "Cache-Control: no-cache" "and no-cache"
unlike "$(curl -s "$URL/")$(curl -s "$URL/loader.js")" "$TOKEN" \
    "neither the login page nor the loader holds the token"
is "$(code '/v1/groups?max=501' "${auth[@]}")" 400 "/v1/groups refuses a max over 500"
like "$(cat "$SLUICE_DIR/curl.body")" "max" "naming max"
is "$(code '/v1/groups?sort=nope' "${auth[@]}")" 400 "and an unknown sort key"
is "$(code '/v1/groups?order=up' "${auth[@]}")" 400 "and an order not asc or desc"

# The pages reach the wire too: ctl groups list.
ctl push zed a -s 3 >/dev/null
ctl push amy a >/dev/null
run ctl groups list --sort count --order desc --max 1 --json
is "$(json "$OUT" '[d["total"], [g["name"] for g in d["groups"]]]')" '[2, ["zed"]]' \
    "ctl groups list: one page, sorted by the broker"
run ctl groups list --filter ZE
like "$OUT" "groups \(1 of 1\)" "ctl groups list --filter ignores case"
ctl purge --group zed >/dev/null
ctl purge --group amy >/dev/null

# Five dead jobs of group dlq: pushed with one attempt, reserved and failed over HTTP before any
# worker runs.
ctl push dlq "dead payload" -s 5 --max-attempts 1 >/dev/null
res=$(curl -s "${auth[@]}" -d '{"worker":"t-dash","max":5}' "$URL/v1/reserve")
ids=$(json "$res" '[j["id"] for j in d["jobs"]]')
errs=$(json "$res" '["boom"] * len(d["jobs"])')
curl -s "${auth[@]}" -d "{\"ids\":$ids,\"worker\":\"t-dash\",\"errors\":$errs}" \
    "$URL/v1/nack" >/dev/null
ctl queues create q1 >/dev/null
is "$(json "$(curl -s "${auth[@]}" "$URL/v1/dead?max=1")" 'd["total"]')" 5 \
    "five dead jobs to retry and purge"

# GET /v1/pool: worker-pool's pool.status, asked by the broker. No pool yet: reachable false
# (200: a state, not an error), with the default URL and why; POST is 405.
pool=$(curl -s --max-time 5 "${auth[@]}" "$URL/v1/pool")
is "$(json "$pool" '[d["reachable"], d["url"]]')" \
    "[false, \"ipc://$SLUICE_DIR/pool.ipc\"]" "/v1/pool: unreachable before the pool starts"
like "$(json "$pool" 'd["error"]')" "no socket file" "and says why"
is "$(code /v1/pool "${auth[@]}" -X POST)" 405 "/v1/pool takes GET only"
# A second broker whose --pool-url nobody listens on (tcp: refused at once).
PORT1=$PORT
free_port
PORT2=$PORT
PORT=$PORT1
spawn broker2 "$SLUICE_BIN/broker" --no-journal --url "ipc://$SLUICE_DIR/b2.ipc" \
    --events-url "ipc://$SLUICE_DIR/e2.ipc" --http-listen "127.0.0.1:$PORT2" \
    --pool-url "tcp://127.0.0.1:$PORT2"
BROKER2_PID=$SPAWNED_PID
pool2() {
    pool=$(curl -s --max-time 5 "${auth[@]}" "http://127.0.0.1:$PORT2/v1/pool") && [ -n "$pool" ]
}
ok "a broker with a bogus --pool-url answers /v1/pool" wait_for 10 pool2
is "$(json "$pool" '[d["reachable"], d["url"], bool(d["error"])]')" \
    "[false, \"tcp://127.0.0.1:$PORT2\", true]" "/v1/pool: unreachable at --pool-url, with an error"
stop_pgrp "$BROKER2_PID" 3

spawn pool "$SLUICE_BIN/worker-pool" -n 4 --handler sleep:2-6
start_router router
ok "the router leads" wait_leader router 10
workers_up() {
    [ "$(curl -s "${auth[@]}" "$URL/v1/stats?max=0" |
         python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))')" -ge 4 ]
}
ok "worker-pool's 4 workers are registered" wait_for 20 workers_up
pool=$(curl -s --max-time 5 "${auth[@]}" "$URL/v1/pool")
is "$(json "$pool" '[d["reachable"], d["n"], len(d["workers"])]')" "[true, 4, 4]" \
    "/v1/pool: reachable, with the pool's 4 workers"
run ctl workers --json
is "$(json "$pool" 'sorted(w["id"] for w in d["workers"])')" \
    "$(json "$OUT" 'sorted(w["id"] for w in d["workers"])')" "the same workers as ctl workers"
# The flood: bob well over the router's high mark, a few others.
ctl push bob x -s 1500 >/dev/null
for g in alice carol dave; do
    ctl push "$g" y -s 60 >/dev/null
done

# The driver asks for the broker to be stopped and started (the stale banner) through files.
spawn driver "$PY" "$(dirname "$0")/py/dashboard.py" test "$URL" "$TOKEN" "$OUTDIR"
DRIVER_PID=$SPAWNED_PID
driver_asks() {
    [ -e "$OUTDIR/req.$1" ] || ! alive "$DRIVER_PID"
}
if wait_for 120 driver_asks stop && [ -e "$OUTDIR/req.stop" ]; then
    stop_broker
    is "$?" 0 "the broker exits 0 when stopped"
    retire_pgrp "$BROKER_PID" broker-first
    touch "$OUTDIR/ack.stop"
    if wait_for 60 driver_asks start && [ -e "$OUTDIR/req.start" ]; then
        start_broker --http-listen "127.0.0.1:$PORT"
        touch "$OUTDIR/ack.start"
    fi
fi
driver_done() {
    ! alive "$DRIVER_PID"
}
ok "the browser checks end" wait_for 120 driver_done
wait "$DRIVER_PID"
drc=$?
while IFS= read -r line; do
    case $line in
    "ok "*) pass "browser: ${line#ok }" ;;
    "not ok "*) fail "browser: ${line#not ok }" ;;
    "# "*) echo "$line" ;;
    esac
done <"$SLUICE_DIR/driver.log"
is "$drc" 0 "the browser driver exits 0"
[ "$drc" = 0 ] || diag "$(tail -n 30 "$SLUICE_DIR/driver.log")"
# $SLUICE_DIR goes at exit: the screenshots are kept for a person to look at in
# SLUICE_DASH_SHOTS (default: dashboard/ beside the test programs, build/rel/dashboard), and
# with the logs when SLUICE_KEEP_LOGS is set (CI keeps those).
SHOTS=${SLUICE_DASH_SHOTS:-$(dirname "$SLUICE_TESTBIN")/dashboard}
mkdir -p "$SHOTS" && cp "$OUTDIR"/*.png "$SHOTS"/ 2>/dev/null
[ -n "${SLUICE_KEEP_LOGS:-}" ] && cp "$OUTDIR"/*.png "$SLUICE_KEEP_LOGS"/ 2>/dev/null
diag "screenshots: $(cd "$SHOTS" && ls -- *.png 2>/dev/null | sed "s|^|$SHOTS/|" | tr '\n' ' ')"
done_testing
