#!/usr/bin/env bash
# Metrics: `broker --metrics-listen` serves GET /metrics and `ctl metrics` prints the same
# Prometheus text. With jobs flowing through a worker-pool, both parse as valid text format
# (tests/tools/promcheck.py, and promtool when installed); once quiet, every value matches
# `ctl stats --json`, and every metric family is documented in README.md. Other paths are
# 404, other methods 405; bad --metrics-listen values are refused at start (exit 2, nothing
# started), a port in use is exit 1; the broker stops promptly, exit 0, with the listener up
# and an HTTP client connected.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip_all "python3 is needed for HTTP and the format checker"
promcheck=$(cd "$(dirname "$0")/../tools" && pwd)/promcheck.py
readme=$(cd "$(dirname "$0")/../.." && pwd)/README.md

# --- refused values --------------------------------------------------------------------------

for bad in localhost:9100 127.0.0.1 127.0.0.1:0 127.0.0.1:65536 127.0.0.1:9x 1.2.3:80 \
    '[::1]' '[::1' '::1:80' '[127.0.0.1]:80' ''; do
    run "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/refused" --metrics-listen "$bad"
    if [ "$RC" -eq 2 ] && [[ "$ERR" == *"--metrics-listen"* ]]; then
        pass "--metrics-listen '$bad' is refused (exit 2, says why)"
    else
        fail "--metrics-listen '$bad' is refused (exit 2, says why)" "exit $RC" "$ERR"
    fi
done
ok "a refused start leaves no socket behind" [ ! -e "$SLUICE_DIR/refused/broker.ipc" ]

# --- HTTP helpers ------------------------------------------------------------------------------

# free_port: a TCP port on 127.0.0.1 nobody listens on now, into PORT.
free_port() {
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
}

# http METHOD PATH [HOST]: one request (with the header "Authorization: $HTTP_AUTH" when that
# is set); sets HTTP_STATUS, HTTP_TYPE (Content-Type), HTTP_ALLOW (Allow, or for a 401 its
# WWW-Authenticate) and writes the body to $SLUICE_DIR/http.body. Status 0: no answer.
http() {
    local out
    out=$(python3 - "$1" "http://${3:-127.0.0.1}:$PORT$2" "$SLUICE_DIR/http.body" <<'EOF'
import os, sys, urllib.request, urllib.error
method, url, path = sys.argv[1:4]
req = urllib.request.Request(url, method=method, data=b"x" if method in ("POST", "PUT") else None)
if os.environ.get("HTTP_AUTH"):
    req.add_header("Authorization", os.environ["HTTP_AUTH"])
try:
    r = urllib.request.urlopen(req, timeout=10)
    status, headers, body = r.status, r.headers, r.read()
except urllib.error.HTTPError as e:
    status, headers, body = e.code, e.headers, e.read()
except Exception as e:
    print("0\t\t")
    sys.exit(0)
open(path, "wb").write(body)
print("%d\t%s\t%s" % (status, headers.get("Content-Type", ""),
                      headers.get("Allow", headers.get("WWW-Authenticate", ""))))
EOF
)
    IFS=$'\t' read -r HTTP_STATUS HTTP_TYPE HTTP_ALLOW <<<"$out"
}

# valid NAME FILE: FILE passes the format checker (and promtool, if installed).
valid() {
    local name=$1 file=$2 why
    if ! why=$(python3 "$promcheck" "$file" 2>&1); then
        fail "$name" "$why" "$(head -c 2000 "$file")"
        return
    fi
    if command -v promtool >/dev/null && ! why=$(promtool check metrics <"$file" 2>&1); then
        fail "$name (promtool)" "$why"
        return
    fi
    pass "$name"
}

# --- a broker with the listener, jobs flowing ----------------------------------------------

# started_or_gone: the broker logged its start, or it has exited (the port was taken).
started_or_gone() {
    grep -q 'event=start' "$SLUICE_DIR/broker.log" || ! alive "$BROKER_PID"
}

started=0
for _ in 1 2 3; do
    free_port
    spawn broker "$SLUICE_BIN/broker" --no-journal --metrics-listen "127.0.0.1:$PORT"
    BROKER_PID=$SPAWNED_PID
    wait_for 10 started_or_gone
    if grep -q 'event=start' "$SLUICE_DIR/broker.log" && alive "$BROKER_PID"; then
        started=1
        break
    fi
    # Someone took the port between free_port and the start: try another.
    stop_pgrp "$BROKER_PID" 3
done
[ "$started" = 1 ] || bail_out "the broker did not start with --metrics-listen"
ok "the broker answers ping" wait_for 10 ctl --timeout 500 ping
like "$(cat "$SLUICE_DIR/broker.log")" "event=metrics.listen url=\"http://127.0.0.1:$PORT\"" \
    "the broker logs where metrics are served"

# The same port again (another runtime directory): in use, exit 1, said so.
run "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/second" --metrics-listen "127.0.0.1:$PORT"
is "$RC" 1 "a second broker on the same metrics port cannot start (exit 1)"
like "$ERR" "metrics-listen.*cannot serve http://127.0.0.1:$PORT" "and says it cannot serve it"

ok "queue q1 for alice" ctl queues create q1 --priority 10
ok "alice routed to q1" ctl routes set alice q1
spawn pool "$SLUICE_BIN/worker-pool" -n 3 --handler sleep:5-20 --drain-timeout 2s
POOL_PID=$SPAWNED_PID
# Enough work that the first snapshots surely find it flowing (about 4 s on 3 workers).
ok "push 1200 jobs for bob" ctl push bob hello -s 1200
ok "push 60 jobs for alice" ctl push alice hi -s 60

dispatched() {
    run ctl stats --json
    json "$OUT" 'd["broker"]["dispatched"]'
}
some_dispatched() {
    [ "$(dispatched)" -ge 20 ]
}
ok "jobs flow" wait_for 30 some_dispatched

http GET /metrics
is "$HTTP_STATUS" 200 "GET /metrics while jobs flow: 200"
is "$HTTP_TYPE" "text/plain; version=0.0.4; charset=utf-8" "with the text format's content type"
cp "$SLUICE_DIR/http.body" "$SLUICE_DIR/flow.http"
valid "GET /metrics is valid Prometheus text while jobs flow" "$SLUICE_DIR/flow.http"
ok "ctl metrics while jobs flow" sh -c "'$SLUICE_BIN/ctl' metrics >'$SLUICE_DIR/flow.ctl'"
valid "ctl metrics is valid Prometheus text while jobs flow" "$SLUICE_DIR/flow.ctl"
like "$(cat "$SLUICE_DIR/flow.ctl")" $'\nsluice_workers\\{state="busy"\\} [1-3]\n' \
    "busy workers are counted while jobs flow"

# --- HTTP errors ---------------------------------------------------------------------------------

http GET /nope
is "$HTTP_STATUS" 404 "GET /nope: 404"
http GET /
is "$HTTP_STATUS" 200 "GET /: 200, the web dashboard (t_dashboard.sh tests it)"
http POST /metrics
is "$HTTP_STATUS" 405 "POST /metrics: 405"
is "$HTTP_ALLOW" "GET, HEAD" "405 says what is allowed"
http DELETE /metrics
is "$HTTP_STATUS" 405 "DELETE /metrics: 405"
http HEAD /metrics
is "$HTTP_STATUS" 200 "HEAD /metrics: 200"

# --- quiet: values match ctl stats --json ------------------------------------------------------

all_done() {
    run ctl stats --json
    [ "$(json "$OUT" 'sum(g["count"] for g in d["groups"])')" = 0 ] &&
        [ "$(json "$OUT" 'sum(q["done"] for q in d["queues"])')" = 1260 ] &&
        [ "$(json "$OUT" 'all(w["state"] == "idle" for w in d["workers"])')" = true ]
}
ok "all 1260 jobs are done, workers idle" wait_for 120 all_done

# compare STATS_JSON METRICS_FILE MODE: every sample matches the stats document; MODE
# "running" leaves out what moves while workers wait (their parked reserves expire and
# come back, they report memory and state); "exact" leaves out only the broker's uptime, which may
# have moved on between the snapshots. Prints the mismatches; exit 1 if any.
compare() {
    python3 - "$promcheck" "$1" "$2" "$3" "$readme" <<'EOF'
import importlib.util, json, re, sys
spec = importlib.util.spec_from_file_location("promcheck", sys.argv[1])
pc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pc)
d = json.load(open(sys.argv[2]))
text = open(sys.argv[3]).read()
mode = sys.argv[4]
errs, got = pc.check(text)
if errs:
    sys.exit("\n".join(errs))
want = {}
def put(name, labels, v):
    want[pc.series_key(name, labels)] = float(v)
b = d["broker"]
for name, f in [("sluice_broker_jobs", "jobs"), ("sluice_broker_payload_bytes", "bytes"),
                ("sluice_broker_memory_bytes", "mem_bytes"), ("sluice_broker_max_jobs", "max_jobs"),
                ("sluice_broker_max_bytes", "max_bytes"), ("sluice_jobs_reserved", "reserved"),
                ("sluice_reserves_parked", "waiters"), ("sluice_reserves_total", "reserves"),
                ("sluice_reserves_empty_total", "reserves_empty"),
                ("sluice_jobs_dispatched_total", "dispatched"),
                ("sluice_jobs_no_worker_total", "no_worker"), ("sluice_dedup_clients", "dedup_clients"),
                ("sluice_journal_bytes", "journal_bytes"), ("sluice_journal_segments", "journal_segments"),
                ("sluice_journal_fsyncs_total", "journal_fsyncs"), ("sluice_db_owed_rows", "db_owed"),
                ("sluice_broker_uptime_seconds", "uptime_s"), ("sluice_connections", "conns"),
                ("sluice_connections_dropped_total", "conns_dropped"),
                ("sluice_connections_refused_total", "conns_refused")]:
    put(name, {}, b[f])
for name, f in [("sluice_cron_entries", "cron"), ("sluice_cron_fired_total", "cron_fired"),
                ("sluice_cron_refused_total", "cron_refused")]:
    put(name, {}, b[f])
put("sluice_journal_ok", {}, 1 if b["journal_ok"] else 0)
put("sluice_broker_token_required", {}, 1 if b["auth"] else 0)
put("sluice_unique_keys", {}, b["unique_keys"])
put("sluice_requests_unauthorized_total", {}, b["unauthorized"])
for s in ("off", "up", "down"):
    put("sluice_db_state", {"state": s}, 1 if b["db"] == s else 0)
put("sluice_broker_info", {"version": b["version"], "journal": b["journal"]}, 1)
if d["leader"] is not None:
    put("sluice_router_leader_info", {"router": d["leader"]["name"]}, 1)
bounds = b["wait_bounds_ms"]
for q in d["queues"]:
    L = {"queue": q["name"]}
    for name, f in [("ready", "ready"), ("reserved", "reserved"), ("delayed", "delayed"),
                    ("dead", "dead"), ("priority", "priority"), ("weight", "weight"),
                    ("max_inflight", "max_inflight"), ("jobs_pushed_total", "pushed"),
                    ("jobs_done_total", "done"), ("jobs_failed_total", "failed"),
                    ("jobs_dispatched_total", "dispatched")]:
        put("sluice_queue_" + name, L, q[f])
    put("sluice_queue_paused", L, 1 if q["paused"] else 0)
    if "retry_base_ms" in q:
        put("sluice_queue_retry_base_seconds", L, q["retry_base_ms"] / 1000.0)
        put("sluice_queue_retry_max_seconds", L, q["retry_max_ms"] / 1000.0)
    if "groups_ready" in q:
        put("sluice_queue_groups_ready", L, q["groups_ready"])
    if "order" in q:
        for o in ("groups", "fifo"):
            put("sluice_queue_order", dict(L, order=o), 1 if q["order"] == o else 0)
    cum = 0
    for i, n in enumerate(q["wait_buckets"]):
        cum += n
        le = "+Inf" if i == len(bounds) else ("%g" % (bounds[i] / 1000.0))
        put("sluice_queue_wait_seconds_bucket", dict(L, le=le), cum)
    put("sluice_queue_wait_seconds_count", L, q["wait_count"])
    put("sluice_queue_wait_seconds_sum", L, q["wait_sum_us"] / 1e6)
for g in d["groups"]:
    L = {"group": g["name"]}
    for name, f in [("backlog", "count"), ("ready", "ready"), ("reserved", "reserved"),
                    ("delayed", "delayed"), ("dead", "dead"), ("jobs_pushed_total", "pushed_all"),
                    ("jobs_done_total", "done_all"), ("jobs_failed_total", "failed_all"),
                    ("jobs_dispatched_total", "dispatched")]:
        put("sluice_group_" + name, L, g[f])
    put("sluice_group_route_info", dict(L, queue=g["route"] or "default"), 1)
    for p in ("p50", "p99"):
        if g["wait_%s_ms" % p] is not None:
            put("sluice_group_wait_%s_seconds" % p, L, g["wait_%s_ms" % p] / 1000.0)
    for name, f, scale in [("weight", "weight", 1), ("share", "share", 1),
                           ("oldest_ready_seconds", "oldest_ready_ms", 1000.0),
                           ("rate_limit", "rate", 1), ("rate_burst", "burst", 1)]:
        if g.get(f) is not None:
            put("sluice_group_" + name, L, g[f] / scale)
    if "held" in g:
        put("sluice_group_rate_held", L, 1 if g["held"] else 0)
        put("sluice_group_rate_holds_total", L, g["holds"])
states = {"idle": 0, "busy": 0, "draining": 0}
for w in d["workers"]:
    L = {"worker": w["id"]}
    states[w["state"]] = states.get(w["state"], 0) + 1
    put("sluice_worker_busy", L, 0 if w["state"] == "idle" else 1)
    for name, f in [("rss_bytes", "rss_bytes"), ("pid", "pid"), ("reserved_jobs", "reserved"),
                    ("jobs_done_total", "jobs"), ("uptime_seconds", "uptime_s")]:
        put("sluice_worker_" + name, L, w[f])
for s, n in states.items():
    put("sluice_workers", {"state": s}, n)
for c, n in b["errors"].items():
    put("sluice_job_errors_total", {"class": c}, n)
# The connections open differ by the asking one (ctl's, or none for an HTTP scrape).
moving = {"sluice_broker_uptime_seconds", "sluice_connections"}
if mode == "running":
    moving |= {"sluice_reserves_total", "sluice_reserves_empty_total", "sluice_reserves_parked",
               "sluice_worker_rss_bytes", "sluice_worker_uptime_seconds",
               "sluice_worker_busy", "sluice_workers"}
bad = []
def fam(key):
    return key.split("{", 1)[0]
for k in sorted(set(want) | set(got)):
    if k not in got:
        bad.append("missing in the metrics: %s (stats says %s)" % (k, want[k]))
    elif k not in want:
        bad.append("not in stats: %s %s" % (k, got[k]))
    elif fam(k) in moving:
        continue
    elif abs(got[k] - want[k]) > 1e-8 * max(1.0, abs(want[k])):
        bad.append("%s: metrics %r, stats %r" % (k, got[k], want[k]))
# Taken after the stats document: as old, or older by the time between them.
if not 0 <= got.get("sluice_broker_uptime_seconds{}", -9) - b["uptime_s"] <= 60:
    bad.append("uptime %s, stats said %s" % (got.get("sluice_broker_uptime_seconds{}"), b["uptime_s"]))
# Every family written is documented in the README's Metrics section.
readme = open(sys.argv[5]).read()
fams = set(re.findall(r"^# TYPE (\S+)", text, re.M))
undoc = sorted(f for f in fams if ("`%s`" % f) not in readme)
if undoc:
    bad.append("not documented in README.md: " + ", ".join(undoc))
if bad:
    sys.exit("\n".join(bad))
print("%d samples match" % len(got))
EOF
}

run ctl stats --json
echo "$OUT" >"$SLUICE_DIR/quiet.json"
ok "ctl metrics when quiet" sh -c "'$SLUICE_BIN/ctl' metrics >'$SLUICE_DIR/quiet.ctl'"
http GET /metrics
cp "$SLUICE_DIR/http.body" "$SLUICE_DIR/quiet.http"
ok "ctl metrics matches ctl stats --json (workers waiting)" \
    compare "$SLUICE_DIR/quiet.json" "$SLUICE_DIR/quiet.ctl" running
ok "GET /metrics matches ctl stats --json (workers waiting)" \
    compare "$SLUICE_DIR/quiet.json" "$SLUICE_DIR/quiet.http" running
like "$(cat "$SLUICE_DIR/quiet.ctl")" \
    $'\nsluice_queue_wait_seconds_count\\{queue="default"\\} 1200\n' \
    "bob's 1200 jobs are in default's wait histogram"
like "$(cat "$SLUICE_DIR/quiet.ctl")" \
    $'\nsluice_group_jobs_done_total\\{group="alice"\\} 60\n' "alice's 60 jobs are done"
like "$(cat "$SLUICE_DIR/quiet.ctl")" \
    $'\nsluice_queue_order\\{queue="default",order="groups"\\} 1\n' "default serves groups in turn"
like "$(cat "$SLUICE_DIR/quiet.ctl")" $'\nsluice_group_weight\\{group="bob"\\} 1\n' \
    "bob's weight is the default, 1"
like "$(cat "$SLUICE_DIR/quiet.ctl")" $'\nsluice_queue_groups_ready\\{queue="q1"\\} 0\n' \
    "no group has jobs ready in q1"

# Without workers nothing moves: exact agreement, and the same text from both.
stop_pgrp "$POOL_PID" 10
is "$?" 0 "worker-pool stops (exit 0)"
no_workers() {
    run ctl stats --json
    [ "$(json "$OUT" 'len(d["workers"]) + d["broker"]["waiters"]')" = 0 ]
}
ok "the workers are gone" wait_for 10 no_workers
echo "$OUT" >"$SLUICE_DIR/still.json"
ctl metrics >"$SLUICE_DIR/still.ctl"
http GET /metrics
cp "$SLUICE_DIR/http.body" "$SLUICE_DIR/still.http"
ok "ctl metrics matches ctl stats --json exactly" \
    compare "$SLUICE_DIR/still.json" "$SLUICE_DIR/still.ctl" exact
ok "GET /metrics matches ctl stats --json exactly" \
    compare "$SLUICE_DIR/still.json" "$SLUICE_DIR/still.http" exact
# ctl's connection is counted in its own sluice_connections, a scrape has none.
is "$(grep -Ev '^sluice_(broker_uptime_seconds|connections) ' "$SLUICE_DIR/still.http")" \
    "$(grep -Ev '^sluice_(broker_uptime_seconds|connections) ' "$SLUICE_DIR/still.ctl")" \
    "GET /metrics and ctl metrics print the same text"

# --- IPv6 -------------------------------------------------------------------------------------

if PORT6=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0)); print(s.getsockname()[1])' 2>/dev/null); then
    mkdir -m 0700 "$SLUICE_DIR/v6"
    spawn broker6 "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/v6" --metrics-listen "[::1]:$PORT6"
    B6=$SPAWNED_PID
    ok "a broker with --metrics-listen [::1]:PORT starts" \
        wait_for 10 grep -q 'event=start' "$SLUICE_DIR/broker6.log"
    port4=$PORT
    PORT=$PORT6
    http GET /metrics "[::1]"
    PORT=$port4
    is "$HTTP_STATUS" 200 "GET http://[::1]:PORT/metrics: 200"
    valid "and valid text" "$SLUICE_DIR/http.body"
    stop_pgrp "$B6" 3
    is "$?" 0 "that broker stops, exit 0"
else
    pass "# SKIP no IPv6 loopback here"
fi

# --- with the broker's token, a scrape must carry it ------------------------------------------

secret="tok-$RANDOM$RANDOM-metrics"
printf '%s\n' "$secret" >"$SLUICE_DIR/token"
chmod 600 "$SLUICE_DIR/token"
mkdir -m 0700 "$SLUICE_DIR/tk"
main_port=$PORT
free_port
spawn brokertk "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/tk" \
    --token-file "$SLUICE_DIR/token" --metrics-listen "127.0.0.1:$PORT"
BTK=$SPAWNED_PID
ok "a broker with a token and --metrics-listen starts" \
    wait_for 10 grep -q 'event=start' "$SLUICE_DIR/brokertk.log"
http GET /metrics
is "$HTTP_STATUS" 401 "GET /metrics without the token: 401"
is "$HTTP_ALLOW" 'Bearer realm="sluice"' "which asks for a bearer token"
HTTP_AUTH="Bearer not-$secret" http GET /metrics
is "$HTTP_STATUS" 401 "with another token: 401"
HTTP_AUTH="Bearer $secret" http GET /metrics
is "$HTTP_STATUS" 200 "with the token: 200"
valid "and valid text" "$SLUICE_DIR/http.body"
like "$(cat "$SLUICE_DIR/http.body")" $'\nsluice_requests_unauthorized_total 2\n' \
    "the two refused scrapes are counted as unauthorized"
like "$(cat "$SLUICE_DIR/http.body")" $'\nsluice_broker_token_required 1\n' \
    "and the token shows as required"
if grep -qF -- "$secret" "$SLUICE_DIR/http.body" "$SLUICE_DIR/brokertk.log"; then
    fail "the token appears neither in the text nor in the log"
else
    pass "the token appears neither in the text nor in the log"
fi
run env SLUICE_TOKEN_FILE="$SLUICE_DIR/token" "$SLUICE_BIN/ctl" \
    --url "ipc://$SLUICE_DIR/tk/broker.ipc" metrics
is "$RC" 0 "ctl metrics with the token file"
like "$OUT" $'\nsluice_requests_unauthorized_total 2\n' "prints the same counts"
stop_pgrp "$BTK" 3
is "$?" 0 "that broker stops, exit 0"
PORT=$main_port

# --- stopping with the listener up and a client connected ------------------------------------

python3 - "$PORT" "$SLUICE_DIR/client.ready" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /metr")          # half a request, then nothing
open(sys.argv[2], "w").close()
s.settimeout(30)
try:
    s.recv(1)
except Exception:
    pass
EOF
client=$!
ok "a client holds a half-sent request" wait_for 10 test -e "$SLUICE_DIR/client.ready"
elapsed_ms stop_broker
is "$RC" 0 "SIGTERM stops the broker with the listener up: exit 0"
cmp_num "$ELAPSED_MS" -lt 3000 "promptly (${ELAPSED_MS} ms)"
run grep -c 'event=stop.forced' "$SLUICE_DIR/broker.log"
is "$OUT" 0 "by itself, not by the exit deadline"
ok "its socket file is gone" [ ! -e "$SLUICE_DIR/broker.ipc" ]
http GET /metrics
is "$HTTP_STATUS" 0 "nothing answers on the metrics port any more"
kill "$client" 2>/dev/null
wait "$client" 2>/dev/null

done_testing
