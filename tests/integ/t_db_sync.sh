#!/usr/bin/env bash
# broker --db against a private MariaDB server, the broker logged in as `sluice` (SELECT,
# INSERT, UPDATE only):
# - a bad URL is a usage error (exit 2); a database not migrated refuses the start (exit 1);
#   no password in any log;
# - channels matches `ctl stats` groups within a second of the state settling; routes set by
#   ctl and by the router show in channels.route and in route_log (reason, count, lease);
#   names of 128 bytes with every punctuation allowed round-trip;
# - MariaDB killed mid-run: pushes and processing go on, stats say db "down", one db.down
#   line; once it is back, everything owed is written and the usage sums equal what was pushed
#   and done; flush forgets groups (written once as count 0) and leaves usage alone;
# - without a journal the broker loads routes and weights from channels at start (creating the
#   queue; a weight out of range is skipped with a warning and put back to 1); with one, it
#   does not; a database down at start does not stop the start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_db.sh"

db_available || skip_all "mariadb-server is not installed"
[ -x "$SLUICE_BIN/worker-pool" ] && [ -x "$SLUICE_BIN/router" ] ||
    skip_all "bin/worker-pool and bin/router are not built"
db_start
ok "ctl migrate creates the schema" ctl migrate --db "$DB_ADMIN_URL"

# --- helpers ------------------------------------------------------------------------------

stats() { ctl stats --json; }
broker_field() { json "$(stats)" "d['broker']['$1']"; }

# The groups as stats shows them and as channels holds them: "id route count done failed
# weight" per line, sorted; route "-" for none, weight to the thousandth.
stats_groups() {
    json "$(stats)" '"\n".join(sorted("%s %s %d %d %d %.3f" % (g["name"], g["route"] or "-",
        g["count"], g["done"], g["failed"], g["weight"]) for g in d["groups"]))'
}
channel_rows() {
    db_sql "SELECT id, IFNULL(route, '-'), count, done, failed, weight FROM channels
        ORDER BY id" | tr '\t' ' ' | LC_ALL=C sort
}
channels_match() {
    local s c
    s=$(stats_groups) && c=$(channel_rows) && [ -n "$s" ] && [ "$s" = "$c" ]
}
# channels_match_now NAME: wait up to DEADLINE (s) for channels to match stats, showing both
# when they do not.
channels_match_within() {
    if wait_for "$1" channels_match; then
        pass "$2"
    else
        fail "$2" "stats:" "$(stats_groups)" "channels:" "$(channel_rows)"
    fi
}
held() { broker_field jobs; }
jobs_done() { [ "$(held)" = 0 ]; }
# The state stops changing once every job is done: wait for that, then give channels 1 s.
settled_then_match() {
    wait_for 30 jobs_done || fail "every job is done" "held: $(held)"
    channels_match_within 1 "$1"
}
db_is() { [ "$(broker_field db)" = "$1" ]; }
usage_sum() { db_sql "SELECT IFNULL(SUM($1), 0) FROM usage_minute"; }
stats_sum() { json "$(stats)" "sum(g['$1'] for g in d['groups'])"; }
log_count() { grep -c "event=$1 " "$SLUICE_DIR/$2.log"; }
# restart_broker ARGS: stop_broker, keep its log (start_broker starts a new one), start_broker.
restart_broker() {
    stop_broker
    cat "$SLUICE_DIR/broker.log" >>"$SLUICE_DIR/brokers.log"
    start_broker "$@"
}

# --- start-up ----------------------------------------------------------------------------

run "$SLUICE_BIN/broker" --no-journal --db "mysql:/nohost"
is "$RC" 2 "a bad --db URL is a usage error (exit 2)"
like "$ERR" "--db: a database URL starts with mysql://" "... saying what is wrong"

db_sql "CREATE DATABASE bare; GRANT SELECT ON bare.* TO 'sluice'@'localhost'" ||
    bail_out "cannot create the database bare"
run "$SLUICE_BIN/broker" --no-journal --db "${DB_URL/\/sluice\?/\/bare\?}"
is "$RC" 1 "a database without the schema refuses the start (exit 1)"
like "$ERR" "schema version 0, this sluice needs 3: run \`ctl migrate\`" "... saying to migrate"
like "$ERR" "sluice:\*\*\*@localhost" "... with the password hidden"

start_broker --db "$DB_URL"
is "$(broker_field db) $(broker_field db_owed)" "up 0" "stats: db up, nothing owed"
like "$(grep 'event=db.up' "$SLUICE_DIR/broker.log")" 'url="mysql://sluice:\*\*\*@localhost' \
    "the start logs db.up with the password hidden"

# --- channels follow the broker ----------------------------------------------------------

ctl push bob x -s 2000 >/dev/null
ctl push alice y -s 300 >/dev/null
channels_match_within 1.5 "channels rows match stats after the pushes"
spawn pool "$SLUICE_BIN/worker-pool" -n 2 --handler noop --prefetch 64
settled_then_match "after the workers did every job, channels match stats within 1 s"
is "$(db_sql "SELECT count, done FROM channels WHERE id = 'bob'" | tr '\t' ' ')" "0 2000" \
    "bob's row: count 0, done 2000"
stop_pgrp "$SPAWNED_PID"
POOL_PID=

# --- routes: by ctl, by the router, with long names ---------------------------------------

ctl queues create q1 >/dev/null
ctl push bob x -s 7 >/dev/null
ctl routes set bob q1 >/dev/null
route_row() {
    db_sql "SELECT group_id, old_queue, new_queue, reason, count, lease FROM route_log
        WHERE group_id = '$1' ORDER BY id DESC LIMIT 1" | tr '\t' ' '
}
bob_routed() { [ "$(db_sql "SELECT route FROM channels WHERE id = 'bob'")" = q1 ]; }
ok "ctl routes set shows in channels.route" wait_for 1.5 bob_routed
is "$(route_row bob)" "bob default q1 route.set 7 0" \
    "... and in route_log: from default to q1, reason route.set (no reason given), count 7, lease 0"

ctl push carol z -s 150 >/dev/null
run "$SLUICE_BIN/router" --once --high 100 --low 10
is "$RC" 0 "router --once routes carol (count 150 > high 100)"
lease=$(sed -n 's/.*event=route.set group=carol .*lease=\([0-9]*\).*/\1/p' "$SLUICE_DIR/broker.log")
carol_logged() { [ -n "$(route_row carol)" ]; }
wait_for 1.5 carol_logged
like "$(route_row carol)" "^carol default group\.carol count 150 > high 100.* 150 $lease\$" \
    "route_log has the router's change: its reason, count 150 and its lease ($lease)"
cmp_num "${lease:-0}" -gt 0 "... a real lease number"
carol_routed() { [ "$(db_sql "SELECT route FROM channels WHERE id = 'carol'")" = group.carol ]; }
ok "channels.route of carol is group.carol" wait_for 1.5 carol_routed

# 128 bytes each, every punctuation the name rule allows.
long_g=$(printf 'G.-_:%.0s' {1..25})abc
long_q=$(printf 'q:_.-%.0s' {1..25})xyz
is "${#long_g} ${#long_q}" "128 128" "the long names are 128 bytes"
ctl push "$long_g" x -s 3 >/dev/null
ctl queues create "$long_q" >/dev/null
ctl routes set "$long_g" "$long_q" >/dev/null
long_routed() {
    [ "$(db_sql "SELECT route FROM channels WHERE id = '$long_g'")" = "$long_q" ]
}
ok "a 128-byte group and queue round-trip through channels" wait_for 1.5 long_routed
is "$(route_row "$long_g")" "$long_g default $long_q route.set 3 0" \
    "... and through route_log"
channels_match_within 1.5 "channels match stats with every route set"

# --- MariaDB killed mid-run ---------------------------------------------------------------

spawn pool "$SLUICE_BIN/worker-pool" -n 2 --handler noop --prefetch 64
POOL_PID=$SPAWNED_PID
settled_then_match "every backlog processed; channels match"
downs_before=$(log_count db.down broker)
db_kill
ok "stats say db down within 3 s of the kill" wait_for 3 db_is down
done_before=$(stats_sum done)
for i in 1 2 3; do
    ctl push "dave" "d$i" -s 1000 >/dev/null || fail "push $i while the database is down"
done
ctl push erin e -s 500 >/dev/null
dave_done() { [ "$(stats_sum done)" -ge $((done_before + 3500)) ]; }
ok "pushes and processing go on while it is down (3,500 jobs pushed and done)" \
    wait_for 20 dave_done
is "$(broker_field db)" down "still down"
owing() { [ "$(broker_field db_owed)" -gt 0 ]; }
ok "stats show rows owed (counted once a second)" wait_for 1.5 owing
is "$(($(log_count db.down broker) - downs_before))" 1 "exactly one db.down line for the outage"
like "$(grep 'event=db.down' "$SLUICE_DIR/broker.log" | tail -1)" 'reason=' "... with the reason"

db_start_again
caught_up() { db_is up && [ "$(broker_field db_owed)" = 0 ]; }
ok "back up: stats say db up and nothing owed (backoff: within 10 s)" wait_for 10 caught_up
like "$(grep 'event=db.up' "$SLUICE_DIR/broker.log" | tail -1)" 'owed=[1-9]' \
    "the return logs db.up with what was owed"
channels_match_within 1.5 "channels caught up with stats"
pushed=$(stats_sum pushed) done=$(stats_sum done)
is "$(usage_sum pushed) $(usage_sum done)" "$pushed $done" \
    "SUM(pushed), SUM(done) over usage_minute equal the jobs pushed and done ($pushed, $done)"
cmp_num "$(usage_sum run_ms)" -ge 0 "run_ms is summed"
is "$(db_sql "SELECT COUNT(DISTINCT broker) FROM usage_minute")" 1 "one broker run in usage"

# flush: routes reset (logged), empty groups forgotten (written once as count 0), usage kept.
ctl flush >/dev/null
alice_forgotten() {
    [ "$(db_sql "SELECT IFNULL(route, '-'), count, done FROM channels WHERE id = 'alice'" |
        tr '\t' ' ')" = "- 0 0" ]
}
ok "flush forgets alice: her row says count 0, route NULL, done 0" wait_for 1.5 alice_forgotten
is "$(route_row bob)" "bob q1 default flush 0 0" "flush's route resets are in route_log"
is "$(usage_sum pushed) $(usage_sum done)" "$pushed $done" "usage is not reset by flush"
stop_pgrp "$POOL_PID"

# --- routes from channels at start --------------------------------------------------------

ctl queues create qr >/dev/null
ctl routes set frank qr >/dev/null
frank_routed() { [ "$(db_sql "SELECT route FROM channels WHERE id = 'frank'")" = qr ]; }
ok "frank's route is in channels" wait_for 1.5 frank_routed
restart_broker --db "$DB_URL"
is "$(json "$(ctl routes --json)" '[(r["group"], r["queue"]) for r in d["routes"]]')" \
    '[["frank", "qr"]]' "--no-journal --db: the route comes back from channels"
like "$(grep 'event=db.queue_created' "$SLUICE_DIR/broker.log")" "queue=qr group=frank" \
    "... its queue made again, and logged"

# --- weights from channels at start ---------------------------------------------------------

ok "ctl groups weight frank 2.5" ctl groups weight frank 2.5
ok "ctl groups weight heidi 0.25 (a group of no job and no route)" ctl groups weight heidi 0.25
weight_of() { db_sql "SELECT weight FROM channels WHERE id = '$1'"; }
weights_written() { [ "$(weight_of frank) $(weight_of heidi)" = "2.500 0.250" ]; }
ok "the weights are in channels.weight" wait_for 1.5 weights_written
db_sql "INSERT INTO channels (id, route, count, done, failed, weight, updated_at)
    VALUES ('ivan', NULL, 0, 0, 0, 5000, NOW(3)), ('judy', NULL, 0, 0, 0, 0, NOW(3))"
# Start rates, as a plan's quota would be written: kim's and leo's are taken (leo's burst the
# default), mia's and ned's are out of range and skipped.
db_sql "INSERT INTO channels (id, route, count, done, failed, weight, rate_limit, rate_burst,
    updated_at) VALUES ('kim', NULL, 0, 0, 0, 1, 20.5, 7, NOW(3)),
    ('leo', NULL, 0, 0, 0, 1, 0.5, NULL, NOW(3)), ('mia', NULL, 0, 0, 0, 1, 0.0001, NULL, NOW(3)),
    ('ned', NULL, 0, 0, 0, 1, 5, 0, NOW(3))"
restart_broker --db "$DB_URL"
is "$(json "$(stats)" 'sorted((g["name"], g["rate"], g["burst"]) for g in d["groups"] if g["rate"])')" \
    '[["kim", 20.5, 7], ["leo", 0.5, 1]]' "--no-journal --db: the start rates come from channels"
like "$(grep 'event=db.routes_loaded' "$SLUICE_DIR/broker.log")" "limits=2" "... logged"
like "$(grep 'event=db.limit_skipped' "$SLUICE_DIR/broker.log")" \
    'group="mia" rate_limit=0.000 rate_burst=-1 reason="rate_limit not 0.001 to 1000000"' \
    "a rate_limit below 0.001 is skipped, said"
like "$(grep 'event=db.limit_skipped' "$SLUICE_DIR/broker.log")" \
    'group="ned" rate_limit=5.000 rate_burst=0 reason="rate_burst not 1 to 1000000"' \
    "... and a rate_burst of 0"
is "$(json "$(stats)" 'sorted((g["name"], g["weight"]) for g in d["groups"])')" \
    '[["frank", 2.5], ["heidi", 0.25], ["kim", 1], ["leo", 1]]' \
    "--no-journal --db: the weights come back from channels (kim, leo: limited, weight 1)"
like "$(grep 'event=db.routes_loaded' "$SLUICE_DIR/broker.log")" "routes=1 weights=2" \
    "... logged with the routes"
like "$(grep 'event=db.weight_skipped' "$SLUICE_DIR/broker.log")" \
    'group="ivan" weight=5000.000 reason="not 0.01 to 1000"' "a weight of 5000 is skipped, said"
like "$(grep 'event=db.weight_skipped' "$SLUICE_DIR/broker.log")" \
    'group="judy" weight=0.000 reason="not 0.01 to 1000"' "... and one of 0"
bad_weights_reset() { [ "$(weight_of ivan) $(weight_of judy)" = "1.000 1.000" ]; }
ok "... and put back to 1 in channels" wait_for 1.5 bad_weights_reset
stop_broker
cat "$SLUICE_DIR/broker.log" >>"$SLUICE_DIR/brokers.log"

spawn jbroker "$SLUICE_BIN/broker" --data-dir "$SLUICE_DIR/data" --db "$DB_URL"
JB=$SPAWNED_PID
wait_for 10 ctl --timeout 250 ping
is "$(json "$(ctl routes --json)" 'd["routes"]')" "[]" \
    "with a journal, routes are not loaded from channels"
frank_reset() {
    [ "$(db_sql "SELECT IFNULL(route, '-'), weight FROM channels WHERE id = 'frank'")" = \
        "-	1.000" ]
}
ok "... the journal is the truth: channels forgets frank's route and weight" \
    wait_for 1.5 frank_reset
is "$(json "$(stats)" '[g["weight"] for g in d["groups"] if g["name"] == "heidi"]')" "[]" \
    "... and heidi's weight is not loaded"
is "$(json "$(stats)" '[g["rate"] for g in d["groups"] if g["name"] == "kim"]')" "[]" \
    "... nor kim's start rate"
is "$(db_sql "SELECT rate_limit, rate_burst FROM channels WHERE id = 'kim'")" "20.500	7" \
    "the broker never writes rate_limit and rate_burst"
stop_pgrp "$JB"

# --- a database down at start -------------------------------------------------------------

db_stop
restart_broker --db "$DB_URL"
is "$(broker_field db)" down "a database down at start does not stop the broker: db down"
ctl push grace g -s 5 >/dev/null
db_start_again
ok "... and up once the database is (within 5 s)" wait_for 5 db_is up
grace_row() { [ "$(db_sql "SELECT count FROM channels WHERE id = 'grace'")" = 5 ]; }
ok "... then grace's row is written" wait_for 1.5 grace_row

if grep -h ':pw@' "$SLUICE_DIR"/broker.log "$SLUICE_DIR"/brokers.log "$SLUICE_DIR"/jbroker.log; then
    fail "no password in the broker logs"
else
    pass "no password in the broker logs"
fi
done_testing
