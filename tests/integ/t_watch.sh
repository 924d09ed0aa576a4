#!/usr/bin/env bash
# ctl stats --watch against a running system (broker, worker-pool with a sleep handler, a
# router, jobs flowing for three groups), driven through tmux on a private socket: the screen
# shows the workers, queues and groups tables with their rows; its numbers change; it is
# redrawn to fit after the window shrinks and grows; stopping the broker puts up the
# "broker unreachable" notice over the kept data and a new broker makes it live again; SIGTERM
# and q both exit 0. Without a terminal (--plain, stdout a file) it prints a snapshot per
# interval; a bad --interval is refused with a message naming it. Against a stand-in broker
# (sl-fakestats): every field the view reads (the counters, waits and decisions a broker may
# lack) shown where it belongs; fields of the wrong types and a reply that is not msgpack
# neither stop it nor reach the terminal raw.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_router.sh
. "$(dirname "$0")/lib_router.sh"

command -v tmux >/dev/null 2>&1 ||
    skip_all "tmux is not installed (scripts/deps --test installs it)"
[ -x "$SLUICE_BIN/worker-pool" ] && [ -x "$SLUICE_BIN/worker" ] ||
    skip_all "bin/worker-pool and bin/worker are not built"

# A private tmux server (no user configuration), killed at exit before lib.sh's cleanup.
TM=(tmux -S "$SLUICE_DIR/tmux.sock" -f /dev/null)
trap '_rc=$?; "${TM[@]}" kill-server >/dev/null 2>&1; (exit $_rc); cleanup' EXIT

# --- usage errors first: nothing needs to run for them -------------------------------------

run ctl stats --watch --interval 5x
is "$RC" 2 "a bad --interval is a usage error"
like "$ERR" "--interval: '5x' is not a duration" "the message names --interval and the value"
run ctl stats --watch --interval 10ms
is "$RC" 2 "an --interval below 100ms is refused"
like "$ERR" "--interval: '10ms' is out of range" "and says it is out of range"
run ctl stats --interval 1s
is "$RC" 2 "--interval without --watch is refused"
like "$ERR" "go with --watch" "saying why"
run ctl stats --watch --json
is "$RC" 2 "--watch with --json is refused"

# --- a system with jobs flowing ---------------------------------------------------------

start_broker
spawn pool "$SLUICE_BIN/worker-pool" -n 3 --handler sleep:5-20 --drain-timeout 1s
workers_up() {
    run ctl stats --json
    [ "$(json "$OUT" 'len([w for w in d["workers"] if w["state"] in ("idle", "busy")])')" -ge 3 ]
}
ok "worker-pool's 3 workers are registered" wait_for 20 workers_up
# The router leads (the view shows it) but moves nobody: the groups stay where the test puts
# them.
start_router router --high 1000000
ok "the router leads" wait_leader router 10
ok "a capped queue" ctl queues create capped --max-inflight 2
ok "carol is routed to it" ctl routes set carol capped
# About 250 jobs/s go through 3 workers: enough for the whole test.
ok "bob pushes 30000 jobs" ctl push bob x -s 30000
ok "alice pushes 200" ctl push alice y -s 200
ok "carol pushes 2000" ctl push carol z -s 2000

# --- the screen -------------------------------------------------------------------------

# screen: the pane's text into SCREEN (wrapped lines joined, so a line wider than the pane
# shows as such).
screen() {
    SCREEN=$("${TM[@]}" capture-pane -p -J -t watch 2>/dev/null)
}

# shows TEXT...: every TEXT is on the screen.
shows() {
    local t
    screen || return 1
    for t in "$@"; do
        [[ "$SCREEN" == *"$t"* ]] || return 1
    done
}

shows_re() {
    screen && [[ "$SCREEN" =~ $1 ]]
}

# fits W H: the screen is H lines of at most W columns, the broker's line on top and the keys
# at the bottom.
fits() {
    local w=$1 h=$2 line n=0 first="" last=""
    screen || return 1
    while IFS= read -r line; do
        n=$((n + 1))
        [ "${#line}" -le "$w" ] || return 1
        [ "$n" = 1 ] && first=$line
        last=$line
    done <<<"$SCREEN"
    [ "$n" = "$h" ] && [[ "$first" == "broker pid "* ]] && [[ "$last" == "q quit"* ]]
}

# A number in the screen's row of group $1, column COUNT (the third).
count_of() {
    screen || return 1
    local nl=$'\n'
    local re="(^|$nl)$1 +[^ ]+ +([0-9]+) "
    [[ "$SCREEN" =~ $re ]] || return 1
    REPLY=${BASH_REMATCH[2]}
}

"${TM[@]}" new-session -d -s watch -x 120 -y 40 \
    "\"$SLUICE_BIN/ctl\" stats --watch --interval 200ms; echo \$? >\"$SLUICE_DIR/watch.rc\""
# tests/run kills the tmux server (a session leader of its own) should this script be killed
# before its EXIT trap runs.
if [ -n "${SLUICE_TEST_PGIDS:-}" ]; then
    "${TM[@]}" display-message -p '#{pid}' >>"$SLUICE_TEST_PGIDS" 2>/dev/null
fi

ok "the workers table's header" wait_for 20 shows "workers (3)" "PID" "STATE" "JOBS" "MEMORY" \
    "CURRENT" "UPTIME"
ok "the queues table's header" shows "queues (" "QUEUE" "PRIO" "WEIGHT" "CAP" "ORDER" \
    "READY" "GROUPS" "RESERVED" "DEAD" "JOBS/S"
ok "the groups table's header" shows "groups (3), by backlog" "GROUP" "ROUTE" "COUNT" \
    "INFLIGHT" "SHARE" "WEIGHT" "OLDEST" "P50" "P99" "LAST 60S"
ok "a worker's row" shows_re $'\n *[0-9]+ +(busy|idle) +[0-9]+ +[0-9.]+ [KMG]?i?B '
ok "the default queue's row" shows_re $'\ndefault +10 +1 +none +active +[a-z-]+ +[0-9]+ +[-0-9]+ +[0-9]+ '
ok "carol's row: in flight against its queue's cap of 2" \
    shows_re $'\ncarol +capped +[0-9]+ +[0-2]/2 '
ok "bob's row" shows_re $'\nbob +[^ ]+ +[0-9]+ +[0-9]+/'
ok "the router that leads" shows "router: router leads"
ok "the keys in the footer" shows "q quit" "b backlog" "r rate" "w p99 wait" "n name"
ok "a rate once a second has passed" wait_for 20 shows_re $'\nbob +[^ ]+ +[0-9]+ +[0-9]+/[-0-9]+ +[0-9.]+ '

count_of bob
first=$REPLY
changed() {
    count_of bob && [ "$REPLY" != "$first" ]
}
ok "bob's count changes on screen as jobs are done (was $first)" wait_for 20 changed

ok "n sorts the groups by name" "${TM[@]}" send-keys -t watch n
ok "the title says so" wait_for 10 shows "groups (3), by name"
by_name() {
    screen && [[ "$SCREEN" =~ $'\nalice '.*$'\nbob '.*$'\ncarol ' ]]
}
ok "alice, bob, carol in that order" by_name
"${TM[@]}" send-keys -t watch b

# --- resizing ---------------------------------------------------------------------------

ok "resize to 60x15" "${TM[@]}" resize-window -t watch -x 60 -y 15
ok "redrawn to fit 60x15: no line wider, broker on top, keys at the bottom" wait_for 10 fits 60 15
ok "a table header is still there" shows "PID"
ok "resize to 150x50" "${TM[@]}" resize-window -t watch -x 150 -y 50
ok "redrawn to fit 150x50" wait_for 10 fits 150 50
ok "every table is back" shows "workers (3)" "queues (" "groups (3)" "LAST 60S" \
    "router: router leads"

# --- the broker goes away and comes back ------------------------------------------------

old_pid=$(json "$(ctl stats --json)" 'd["broker"]["pid"]')
ok "the broker stops" stop_broker
ok "the view says the broker is unreachable" wait_for 30 shows "broker unreachable at" "[STALE]"
ok "and keeps the last data" shows "broker pid $old_pid" "groups (3)"
start_broker
new_pid=$(json "$(ctl stats --json)" 'd["broker"]["pid"]')
live_again() {
    shows "broker pid $new_pid" && [[ "$SCREEN" != *"broker unreachable"* ]] &&
        [[ "$SCREEN" != *"[STALE]"* ]]
}
ok "a new broker: the view is live again, by itself" wait_for 30 live_again
ctl push dave w -s 50 >/dev/null
ok "and shows what happens now" wait_for 20 shows_re $'\ndave '

# --- leaving ----------------------------------------------------------------------------

ok "q" "${TM[@]}" send-keys -t watch q
rc_written() {
    [ -s "$SLUICE_DIR/watch.rc" ]
}
ok "the view ends on q" wait_for 10 rc_written
is "$(cat "$SLUICE_DIR/watch.rc" 2>/dev/null)" 0 "with exit status 0"

# SIGTERM: ends cleanly, status 0.
rm -f "$SLUICE_DIR/watch.rc"
"${TM[@]}" new-session -d -s watch -x 100 -y 30 \
    "\"$SLUICE_BIN/ctl\" stats --watch --interval 200ms; echo \$? >\"$SLUICE_DIR/watch.rc\""
ok "a second view is up" wait_for 20 shows "workers ("
pane_pid=$("${TM[@]}" display-message -p -t watch '#{pane_pid}')
view_pid=$(pgrep -P "$pane_pid" -x ctl)
like "$view_pid" '^[0-9]+$' "its process is found"
kill -TERM "$view_pid" 2>/dev/null
ok "SIGTERM ends it" wait_for 10 rc_written
is "$(cat "$SLUICE_DIR/watch.rc" 2>/dev/null)" 0 "with exit status 0"

# --- no terminal ------------------------------------------------------------------------

spawn plain "$SLUICE_BIN/ctl" stats --watch --interval 200ms
PLAIN_PID=$SPAWNED_PID
two_snapshots() {
    [ "$(grep -c '^=== ' "$SLUICE_DIR/plain.log")" -ge 2 ] &&
        [ "$(grep -c '^QUEUE ' "$SLUICE_DIR/plain.log")" -ge 2 ] &&
        [ "$(grep -c '^GROUP ' "$SLUICE_DIR/plain.log")" -ge 2 ] &&
        [ "$(grep -c '^ *PID ' "$SLUICE_DIR/plain.log")" -ge 2 ]
}
ok "stdout not a terminal: plain snapshots, at least two" wait_for 20 two_snapshots
if grep -q $'\e' "$SLUICE_DIR/plain.log"; then
    fail "no terminal escapes in plain output"
else
    pass "no terminal escapes in plain output"
fi
stop_pgrp "$PLAIN_PID"
is "$?" 0 "SIGTERM ends the plain view with status 0"

# --plain on a terminal: plain too.
"${TM[@]}" new-session -d -s plain -x 100 -y 30 \
    "\"$SLUICE_BIN/ctl\" stats --watch --plain --interval 200ms"
plain_twice() {
    local s
    s=$("${TM[@]}" capture-pane -p -J -S -200 -t plain 2>/dev/null) || return 1
    [ "$(grep -c '^=== ' <<<"$s")" -ge 2 ] && ! grep -q '^q quit' <<<"$s"
}
ok "--plain on a terminal prints snapshots, no full screen" wait_for 20 plain_twice

# --- a broker that wants a token (--token-file) ------------------------------------------

tok=$SLUICE_DIR/token
printf 'watch-%s-secret\n' "$RANDOM$RANDOM" >"$tok"
chmod 600 "$tok"
spawn tokbroker "$SLUICE_BIN/broker" --no-journal --token-file "$tok" \
    --url "ipc://$SLUICE_DIR/tok.ipc" --events-url "ipc://$SLUICE_DIR/tok-events.ipc"
tok_up() {
    "$SLUICE_BIN/ctl" --url "ipc://$SLUICE_DIR/tok.ipc" --token-file "$tok" --timeout 250 ping
}
ok "a broker with a token" wait_for 20 tok_up
spawn view-tok "$SLUICE_BIN/ctl" --url "ipc://$SLUICE_DIR/tok.ipc" --token-file "$tok" \
    stats --watch --interval 200ms
TOKVIEW_PID=$SPAWNED_PID
spawn view-notok "$SLUICE_BIN/ctl" --url "ipc://$SLUICE_DIR/tok.ipc" stats --watch \
    --interval 200ms
NOTOKVIEW_PID=$SPAWNED_PID
tok_tables() {
    grep -q '^queues (1)' "$SLUICE_DIR/view-tok.log" && grep -q '^broker pid ' "$SLUICE_DIR/view-tok.log"
}
ok "--token-file: the view carries the token on every request" wait_for 20 tok_tables
notok_said() {
    grep -q 'no usable reply from the broker at .*(stats refused: unauthorized)' \
        "$SLUICE_DIR/view-notok.log"
}
ok "without it, the view says the broker refused" wait_for 20 notok_said
stop_pgrp "$TOKVIEW_PID"
stop_pgrp "$NOTOKVIEW_PID"

# --- replies the real broker may not send (yet) ------------------------------------------

# fake_view MODE: a stand-in broker answering MODE's canned stats on its own socket, and a
# plain view of it writing to $SLUICE_DIR/view-MODE.log. Sets VIEW_PID.
fake_view() {
    spawn "fake-$1" "$SLUICE_TESTBIN/sl-fakestats" "ipc://$SLUICE_DIR/fake-$1.ipc" "$1"
    wait_for 10 grep -q listening "$SLUICE_DIR/fake-$1.log" ||
        bail_out "sl-fakestats $1 did not start"
    spawn "view-$1" "$SLUICE_BIN/ctl" --url "ipc://$SLUICE_DIR/fake-$1.ipc" stats --watch \
        --interval 200ms
    VIEW_PID=$SPAWNED_PID
}

# has_re MODE REGEX: the view's output has a line matching REGEX (grep -E).
has_re() {
    grep -qE -- "$2" "$SLUICE_DIR/view-$1.log"
}

fake_view full
ok "every field: rates from the dispatched counters" \
    wait_for 20 has_re full '^bob +group\.bob +904 +4/4 +[0-9.]+ +80\.0% +0\.5 +3\.2s +12ms +2\.5s'
ok "the broker's dispatch rate, reserves and jobs without a free worker" \
    has_re full '^dispatch [0-9.]+ jobs/s, reserves 777 \(77 empty\), no free worker 7'
ok "failed attempts (every error class) and unique keys" \
    has_re full 'no free worker 7, failed attempts 42, unique keys 12,'
ok "the queue's rate from dispatched, though done was reset" \
    has_re full '^group\.bob +100 +1 +4 +active +groups +900 +1 +4 +1 +[0-9.]+$'
ok "the worker's uptime" has_re full '^5151 +busy +[0-9]+ +3\.0 MiB +99 +2m 05s +fake:1:0$'
ok "the router that leads" has_re full '^router: router:fake:1 leads \(lease 31337'
ok "its decisions, newest first" \
    has_re full '^  [0-9:]{8}  bob -> group\.bob  moved 1530  lease 31337  count 1530 > high 100$'
ok "an unset, with no reason or lease" has_re full '^  [0-9:]{8}  amy -> default  moved 3  lease -  -$'
stop_pgrp "$VIEW_PID"
is "$?" 0 "the view ends with status 0"

fake_view odd
odd_twice() {
    [ "$(grep -c '^=== ' "$SLUICE_DIR/view-odd.log")" -ge 2 ]
}
ok "fields of the wrong types: the view goes on" wait_for 20 odd_twice
ok "showing - for what it cannot use" has_re odd '^ +- +\?\[2Jbusy +- +- +- +- +-$'
ok "a group's row of wrong types: every cell -" has_re odd '^-( +-){9}$'
if grep -q $'\e' "$SLUICE_DIR/view-odd.log"; then
    fail "the broker's escapes never reach the terminal"
else
    pass "the broker's escapes never reach the terminal"
fi
alive "$VIEW_PID"
is "$?" 0 "ctl is still running"
stop_pgrp "$VIEW_PID"
is "$?" 0 "and ends with status 0"

fake_view junk
ok "a reply that is not msgpack is said so" wait_for 20 has_re junk \
    "^no usable reply from the broker at ipc://$SLUICE_DIR/fake-junk\.ipc \(not a sluice message\)"
stop_pgrp "$VIEW_PID"
is "$?" 0 "and the view ends with status 0"

done_testing
