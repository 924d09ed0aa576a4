#!/usr/bin/env bash
# Recurring jobs (README "Recurring jobs"), on a broker with its journal:
# 1. `ctl cron add NAME '@every 1s' ...`: its jobs arrive once a second (counted over a
#    polled window), and the fired count of `cron list --json` equals the jobs pushed;
# 2. pause stops them, resume starts them again; list shows the state; remove;
# 3. bad input (schedules, names, --missed) exits 2 and changes nothing; not_found exits 1;
# 4. kill -9 just after an instant fired, down across two more instants, restart: --missed
#    once fires exactly one job for them, --missed skip none; fired counts and the jobs agree
#    exactly (no instant twice); entries survive the restart;
# 5. the HTTP API: GET/POST /v1/cron, DELETE /v1/cron/NAME, .../pause, .../resume, 400s;
#    and, from the jobs' enqueue times, that instants fire within 10 ms.
# tests/run: long
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

command -v curl >/dev/null || skip_all "curl is needed (scripts/deps --test installs it)"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

now_ms() {
    _now_us
    echo $((REPLY / 1000))
}

# field NAME KEY: the entry NAME's KEY in `cron list --json` ("none" when there is no NAME).
field() {
    run ctl cron list --json
    json "$OUT" "next((e[\"$2\"] for e in d[\"cron\"] if e[\"name\"] == \"$1\"), \"none\")"
}

# jobs G: the jobs group G holds (0 for a group the broker does not know).
jobs() {
    run ctl stats --json
    json "$OUT" "sum(g[\"count\"] for g in d[\"groups\"] if g[\"name\"] == \"$1\")"
}

entries() {
    run ctl cron list --json
    json "$OUT" 'len(d["cron"])'
}

jobs_at_least() {
    [ "$(jobs "$1")" -ge "$2" ]
}

data_broker --http-listen "127.0.0.1:$PORT"

# --- 1. once a second ---------------------------------------------------------------------------
run ctl cron add tick '@every 1s' g hello
is "$RC" 0 "ctl cron add tick '@every 1s' g hello: exit 0"
like "$OUT" "added cron entry tick \\(next [0-9-]+T[0-9:]+Z\\)" "... says it added it and when it fires"
ok "the first job arrives within 5 s" wait_for 5 jobs_at_least g 1
# A count is taken some time between the two clock readings around it: over the window the
# jobs that arrived are at least the whole seconds surely inside it (less one, for an instant
# fired a few ms late), at most those that may be.
a0=$(now_ms)
c0=$(jobs g)
b0=$(now_ms)
while [ "$(now_ms)" -lt $((b0 + 4000)) ]; do sleep 0.05; done
a1=$(now_ms)
c1=$(jobs g)
b1=$(now_ms)
lo=$((a1 / 1000 - b0 / 1000 - 1))
hi=$((b1 / 1000 - a0 / 1000))
cmp_num $((c1 - c0)) -ge "$lo" "a job a second: at least $lo in the window ($((c1 - c0)))"
cmp_num $((c1 - c0)) -le "$hi" "... and at most $hi"

# --- 2. pause, resume, list, remove --------------------------------------------------------------
run ctl cron pause tick
is "$RC" 0 "ctl cron pause tick: exit 0"
is "$(field tick paused)" true "list shows it paused"
p0=$(jobs g)
is "$(field tick fired)" "$p0" "its fired count equals the jobs pushed ($p0)"
t0=$(now_ms)
while [ "$(now_ms)" -lt $((t0 + 2500)) ]; do sleep 0.05; done
is "$(jobs g)" "$p0" "paused: no job in 2.5 s"
run ctl cron list
like "$OUT" "tick +@every 1s +g +- +paused +once" "the table shows it paused"
run ctl cron resume tick
is "$RC" 0 "ctl cron resume tick: exit 0"
ok "resumed: jobs arrive again" wait_for 10 jobs_at_least g $((p0 + 1))
run ctl cron pause tick
is "$(field tick fired)" "$(jobs g)" "fired still equals the jobs pushed"

run ctl cron add tmp '0 3 * * mon-fri' g2 x --missed skip
is "$RC" 0 "ctl cron add a weekday schedule: exit 0"
is "$(field tmp missed)" skip "its missed rule is skip"
run ctl cron list
like "$OUT" "tmp +0 3 \\* \\* mon-fri +g2 +- +active +skip +[0-9-]+T03:00:00Z +- +0 +0" \
    "the table shows its next instant at 03:00 UTC, none fired"
run ctl cron remove tmp
is "$RC" 0 "ctl cron remove tmp: exit 0"
is "$(field tmp name)" none "tmp is gone from the list"

# --- 3. bad input changes nothing ----------------------------------------------------------------
n0=$(entries)
for bad in "x|61 * * * *|g|p" "x|* * * *|g|p" "x|@every 0s|g|p" "x|@every 1x|g|p" \
    "x|0 0 30 2 *|g|p" "x|* * * * funday|g|p" "a b|@every 1s|g|p" "x|@every 1s|g g|p"; do
    IFS='|' read -r n s grp pl <<<"$bad"
    run ctl cron add "$n" "$s" "$grp" "$pl"
    is "$RC" 2 "ctl cron add '$n' '$s' '$grp': exit 2"
    [ -n "$ERR" ] || fail "... and says why"
done
like "$ERR" "group name 'g g' is invalid" "a bad group is named"
run ctl cron add x '61 * * * *' g p
like "$ERR" "minute: 61 is out of range 0-59" "a bad schedule names its field"
run ctl cron add x '@every 1s' g p --missed sometimes
is "$RC" 2 "--missed sometimes: exit 2"
run ctl cron add x '@every 1s' g p --queue nosuch
is "$RC" 1 "an unknown queue: exit 1 (the broker refuses)"
like "$ERR" "queue 'nosuch' does not exist" "... naming it"
run ctl cron remove nosuch
is "$RC" 1 "ctl cron remove of an unknown entry: exit 1"
like "$ERR" "not_found" "... not_found"
run ctl cron pause nosuch
is "$RC" 1 "ctl cron pause of an unknown entry: exit 1"
is "$(entries)" "$n0" "nothing was added by the refused commands"

# --- 4. kill -9, missed instants --------------------------------------------------------------------
# snap: one `cron list` into L_ONCE L_SKIP (last instants) and F_ONCE F_SKIP (fired counts).
snap() {
    run ctl cron list --json
    read -r L_ONCE L_SKIP F_ONCE F_SKIP < <(json "$OUT" '" ".join(str(e[k]) for k in ("last_ms",
        "fired") for e in sorted(d["cron"], key=lambda e: e["name"]) if e["name"] in ("once",
        "skip"))' | awk '{ print $1, $2, $3, $4 }')
}
run ctl queues create qo
run ctl queues create qs
# The two fire the same instants, every 5 s: time enough to kill the broker between two.
run ctl cron add once '@every 5s' go o --queue qo --missed once
is "$RC" 0 "ctl cron add once '@every 5s' --missed once: exit 0"
run ctl cron add skip '@every 5s' gs s --queue qs --missed skip
is "$RC" 0 "ctl cron add skip '@every 5s' --missed skip: exit 0"
snap
prev=$L_ONCE
t0=$(now_ms)
while snap && [ "$L_ONCE" = "$prev" ] || [ "$L_SKIP" != "$L_ONCE" ]; do
    [ "$(now_ms)" -lt $((t0 + 12000)) ] || break
    sleep 0.02
done
I=$L_ONCE
isnt "$I" "$prev" "an instant fires for both"
is "$L_SKIP" "$I" "... the same one"
# A change answered once durable: the fire before it is on disk too.
run ctl queues create sync
data_broker_kill9
cmp_num "$(now_ms)" -lt $((I + 4500)) "killed before the next instant (I+5 s)"
# Down across the instants I+5 s and I+10 s.
while [ "$(now_ms)" -lt $((I + 10300)) ]; do sleep 0.05; done
data_broker --http-listen "127.0.0.1:$PORT"
run ctl cron pause once
run ctl cron pause skip
cmp_num "$(now_ms)" -lt $((I + 15000)) "restarted and paused before the next instant, I+15 s"
once_fired=$(field once fired)
is "$once_fired" $((F_ONCE + 1)) "--missed once: exactly one job for the two instants missed"
is "$(field once last_ms)" $((I + 10000)) "... for the last of them"
is "$(field skip fired)" "$F_SKIP" "--missed skip: none"
is "$(field skip last_ms)" "$I" "... its last instant is still the one before the kill"
is "$(jobs go)" "$once_fired" "the jobs of once equal its fired count (no instant twice)"
is "$(jobs gs)" "$F_SKIP" "the jobs of skip equal its fired count"
is "$(field tick paused)" true "tick is still paused after the restart"
is "$(field tick fired)" "$(jobs g)" "tick's fired count still equals its jobs"
run ctl stats --json
is "$(json "$OUT" 'd["broker"]["cron"]')" 3 "stats counts 3 entries"
is "$(json "$OUT" 'd["broker"]["cron_fired"]')" 1 "stats counts the catch-up, the one fire since start"
run ctl metrics
like "$OUT" "sluice_cron_entries 3" "metrics: sluice_cron_entries"
like "$OUT" "sluice_cron_fired_total 1" "metrics: sluice_cron_fired_total"
run ctl cron resume skip
ok "skip goes on with its next instant" wait_for 7 jobs_at_least gs $((F_SKIP + 1))

# --- 5. HTTP ------------------------------------------------------------------------------------
http() {
    ST=$(curl -s --max-time 20 -o "$SLUICE_DIR/api.body" -w '%{http_code}' -X "$1" \
        -H "Content-Type: application/json" ${3:+--data-binary "$3"} "http://127.0.0.1:$PORT$2")
    BODY=$(cat "$SLUICE_DIR/api.body")
}
http GET /v1/cron
is "$ST" 200 "GET /v1/cron: 200"
is "$(json "$BODY" 'sorted(e["name"] for e in d["cron"])')" '["once", "skip", "tick"]' \
    "... lists the entries"
http POST /v1/cron '{"name":"web","schedule":"@hourly","group":"gw","payload":"hi"}'
is "$ST" 200 "POST /v1/cron: 200"
is "$(json "$BODY" 'd["replaced"]')" false "... added, not replaced"
http POST /v1/cron '{"name":"web","schedule":"*/10 * * * *","group":"gw","payload":"hi","missed":"skip"}'
is "$(json "$BODY" 'd["replaced"]')" true "a second POST of that name replaces it"
is "$(field web schedule)" "*/10 * * * *" "... with its new schedule"
http POST /v1/cron '{"name":"bad","schedule":"* 25 * * *","group":"gw","payload":"hi"}'
is "$ST" 400 "POST /v1/cron with a bad schedule: 400"
like "$BODY" "hour: 25 is out of range 0-23" "... naming the field"
http POST /v1/cron/web/pause
is "$ST" 200 "POST /v1/cron/web/pause: 200"
is "$(field web paused)" true "... paused"
http POST /v1/cron/web/resume
is "$(field web paused)" false "POST /v1/cron/web/resume resumes it"
# tick's jobs were pushed at whole seconds: how late after its instant each one was stored.
http POST /v1/reserve '{"worker":"w1","max":1000,"from":["default"]}'
is "$ST" 200 "POST /v1/reserve of tick's jobs: 200"
late=$(json "$BODY" 'sorted(j["enq_ms"] % 1000 for j in d["jobs"])[len(d["jobs"]) // 2]')
bound=10
sanitized && bound=50 # the sanitizers' build runs several times slower
cmp_num "$late" -le "$bound" "an instant fires within $bound ms (median ${late} ms late)"
http DELETE /v1/cron/web
is "$ST" 200 "DELETE /v1/cron/web: 200"
http DELETE /v1/cron/web
is "$ST" 404 "DELETE of an entry gone: 404"
is "$(field web name)" none "web is gone"

done_testing
