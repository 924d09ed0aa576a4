#!/usr/bin/env bash
# ctl migrate and ctl configure against a private MariaDB server: the schema is created once
# and then left alone; configure passes on a good set-up and names the problem of a bad one
# (broker down, runtime directory open to others, wrong password, unknown database, missing
# privileges, schema not migrated or newer than this sluice, no server); exit statuses as the
# README documents them; no password ever printed. One server for the whole script.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_db.sh"

db_available || skip_all "mariadb-server is not installed"
db_start

# Distinctive passwords, so that finding one in the output cannot be a coincidence. The
# broker's has '@' and ':', which a URL carries %-escaped.
ADMIN_PW='Adm1n-Qx7v'
BROKER_PW='Brk@Zr4:k9'
BROKER_PW_URL='Brk%40Zr4%3Ak9'
WRONG_PW='Wr0ng-Jq8t'
db_sql "ALTER USER 'sluice_admin'@'localhost' IDENTIFIED BY '$ADMIN_PW';
    ALTER USER 'sluice'@'localhost' IDENTIFIED BY '$BROKER_PW';
    CREATE USER 'reader'@'localhost' IDENTIFIED BY '$BROKER_PW';
    GRANT SELECT ON sluice.* TO 'reader'@'localhost';
    GRANT SELECT, INSERT, UPDATE ON nosuch.* TO 'sluice'@'localhost'" ||
    bail_out "cannot set up the users"
ADMIN_URL=${DB_ADMIN_URL/:pw@/:$ADMIN_PW@}
BROKER_DB=${DB_URL/:pw@/:$BROKER_PW_URL@}
WRONG_DB=${DB_URL/:pw@/:$WRONG_PW@}
READER_DB=${BROKER_DB/\/\/sluice:/\/\/reader:}
NOSUCH_DB=${BROKER_DB/\/sluice\?/\/nosuch\?}
SHOWN_DB="mysql://sluice:\*\*\*@localhost/sluice\?socket=$DB_SOCK"

# no_secret NAME: the last run's stdout and stderr hold no password, whole, escaped or in part.
no_secret() {
    local s
    for s in "$ADMIN_PW" "$BROKER_PW" "$BROKER_PW_URL" "$WRONG_PW" Qx7v Zr4 Jq8t; do
        if [[ "$OUT$ERR" == *"$s"* ]]; then
            fail "$1" "the output holds '$s':" "$OUT" "$ERR"
            return
        fi
    done
    pass "$1"
}

sluice_rows() {
    db_sql "SELECT (SELECT COUNT(*) FROM channels) + (SELECT COUNT(*) FROM usage_minute) +
        (SELECT COUNT(*) FROM route_log)"
}

# --- the command line --------------------------------------------------------------------

run ctl migrate --help
like "$OUT" "--db URL.*\[\\\$SLUICE_DB\]" "ctl migrate --help names --db and SLUICE_DB"
like "$OUT" "DB_HOST.*DB_PASSWORD" "... and the DB_* variables"
run ctl --help
like "$OUT" "configure \[--db URL\]" "ctl --help lists configure with --db"

run ctl migrate
is "$RC" 2 "migrate without a database is a usage error (exit 2)"
like "$ERR" "no database configured: give --db" "... saying how to configure one"
run ctl migrate --db "mysql://sluice:$WRONG_PW@localhost"
is "$RC" 2 "migrate with a URL naming no database: exit 2"
like "$ERR" "^ctl migrate: --db: the database URL names no database" "... saying so"
no_secret "... without the password"
run ctl configure --db "mysql://sluice:$WRONG_PW@localhost:65536/sluice"
is "$RC" 2 "configure with a bad port: exit 2, before any check"
like "$ERR" "port must be 1 to 65535" "... saying what is wrong"
is "$OUT" "" "... and checking nothing"
no_secret "... without the password"
SLUICE_DB="mysql://sluice:$WRONG_PW@localhost/sluice?sockt=/x" run ctl configure
is "$RC" 2 "a bad SLUICE_DB: exit 2"
like "$ERR" "SLUICE_DB: .*only option is \?socket=" "... naming SLUICE_DB"
no_secret "... without the password"

# --- before migrating, no broker ---------------------------------------------------------

run ctl --timeout 300 configure
is "$RC" 1 "configure without a broker fails (exit 1)"
like "$OUT" "runtime directory: ok \($SLUICE_DIR, mode 0700, yours\)" \
    "the runtime directory passes"
like "$OUT" \
    "broker: FAIL no answer at ipc://$SLUICE_DIR/broker.ipc within 300 ms: start the broker" \
    "the broker's line says it does not answer and what to do"
like "$OUT" "database: not configured \(optional\)" "no database configured: said, not a failure"
like "$OUT" "configure: 1 of 2 checks failed$" "the summary counts one failure"

run ctl --timeout 300 configure --db "$BROKER_DB"
is "$RC" 1 "configure on an empty database fails"
like "$OUT" "database: ok \($SHOWN_DB, server [0-9.]+-MariaDB" "it connects"
like "$OUT" \
    "schema: FAIL the database has schema version 0, this sluice needs 3: run \`ctl migrate\`" \
    "the schema's line says to run ctl migrate"
[[ "$OUT" != *"table "* ]]
is "$?" 0 "no table is checked before the schema is right"
no_secret "configure prints no password"

run ctl migrate --db "$BROKER_DB"
is "$RC" 1 "migrate as the broker's user fails (exit 1)"
like "$ERR" "ctl migrate: $SHOWN_DB: CREATE command denied to user 'sluice'@'localhost'" \
    "... with the server's refusal"
like "$ERR" "needs CREATE, ALTER, INDEX, SELECT and INSERT on sluice\.\*" \
    "... and the privileges migrating needs"
no_secret "... without the password"
is "$(db_sql "SHOW TABLES")" "" "... and creates nothing"

# --- migrate ------------------------------------------------------------------------------

run ctl migrate --db "$ADMIN_URL"
is "$RC" 0 "migrate as sluice_admin: exit 0"
is "$OUT" "schema: version 0 -> 3" "... from version 0 to 3"
no_secret "... without the password"
run ctl migrate --db "$ADMIN_URL"
is "$RC" 0 "migrate again: exit 0"
is "$OUT" "schema: already at version 3" "... and nothing to do"
is "$(db_sql "SELECT COUNT(*), MAX(version) FROM sluice_schema")" "3	3" \
    "sluice_schema holds a row per migration, versions 1 to 3"
is "$(db_sql "SHOW TABLES" | sort | tr '\n' ' ')" "channels route_log sluice_schema usage_minute " \
    "the tables are there"

columns() {
    db_sql "SELECT GROUP_CONCAT(column_name ORDER BY ordinal_position) FROM
        information_schema.columns WHERE table_schema = 'sluice' AND table_name = '$1'"
}
primary_key() {
    db_sql "SELECT GROUP_CONCAT(column_name ORDER BY ordinal_position) FROM
        information_schema.key_column_usage WHERE table_schema = 'sluice' AND
        table_name = '$1' AND constraint_name = 'PRIMARY'"
}
is "$(columns channels)" "id,route,count,done,failed,weight,rate_limit,rate_burst,updated_at" \
    "channels' columns"
is "$(db_sql "SELECT column_type, column_default, is_nullable FROM information_schema.columns
    WHERE table_schema = 'sluice' AND table_name = 'channels' AND column_name = 'weight'")" \
    "decimal(7,3)	1.000	NO" "channels.weight: DECIMAL(7,3) NOT NULL DEFAULT 1"
is "$(db_sql "SELECT column_name, column_type, column_default, is_nullable FROM
    information_schema.columns WHERE table_schema = 'sluice' AND table_name = 'channels' AND
    column_name LIKE 'rate\\_%' ORDER BY ordinal_position" | tr '\t\n' ' |')" \
    "rate_limit decimal(13,3) NULL YES|rate_burst int(10) unsigned NULL YES|" \
    "channels.rate_limit DECIMAL(13,3) and rate_burst INT UNSIGNED, both NULL by default"

# A database of schema version 2 (before the rate columns), with a row: migrate adds them, the
# row without a limit.
db_sql "ALTER TABLE channels DROP COLUMN rate_limit, DROP COLUMN rate_burst;
    DELETE FROM sluice_schema WHERE version = 3;
    INSERT INTO channels (id, route, count, done, failed, weight, updated_at)
    VALUES ('v2', NULL, 1, 2, 3, 0.5, NOW(3))"
run ctl configure --db "$BROKER_DB"
like "$OUT" "schema: FAIL the database has schema version 2, this sluice needs 3: run \`ctl migrate\`" \
    "configure on a version 2 database says to migrate"
run ctl migrate --db "$ADMIN_URL"
is "$RC.$OUT" "0.schema: version 2 -> 3" "migrate brings version 2 to 3"
is "$(db_sql "SELECT id, weight, IFNULL(rate_limit, '-'), IFNULL(rate_burst, '-') FROM channels")" \
    "v2	0.500	-	-" "... the row kept, with no limit"
db_sql "DELETE FROM channels"

# A database of schema version 1 (before channels.weight), with a row: migrate adds the column,
# the row weighing 1; a migration cut short after the column was added completes.
db_sql "ALTER TABLE channels DROP COLUMN weight, DROP COLUMN rate_limit, DROP COLUMN rate_burst;
    DELETE FROM sluice_schema WHERE version >= 2;
    INSERT INTO channels (id, route, count, done, failed, updated_at)
    VALUES ('old', NULL, 3, 4, 5, NOW(3))"
run ctl configure --db "$BROKER_DB"
like "$OUT" "schema: FAIL the database has schema version 1, this sluice needs 3: run \`ctl migrate\`" \
    "configure on a version 1 database says to migrate"
run ctl migrate --db "$ADMIN_URL"
is "$RC.$OUT" "0.schema: version 1 -> 3" "migrate brings version 1 to 3"
is "$(db_sql "SELECT id, count, weight FROM channels")" "old	3	1.000" \
    "... the row kept, weighing 1"
db_sql "DELETE FROM sluice_schema WHERE version >= 2"
run ctl migrate --db "$ADMIN_URL"
is "$RC.$OUT" "0.schema: version 1 -> 3" "migrations recorded as not done, their columns there: done"
db_sql "DELETE FROM channels"
is "$(columns usage_minute)" "group_id,minute,broker,pushed,done,failed,run_ms" \
    "usage_minute's columns"
is "$(columns route_log)" "id,at,group_id,old_queue,new_queue,reason,count,lease" \
    "route_log's columns"
is "$(primary_key usage_minute)" "group_id,minute,broker" \
    "usage_minute has one row per group, minute and broker run"

# --- configure with everything in place ----------------------------------------------------

start_broker
run ctl configure --db "$BROKER_DB"
is "$RC" 0 "configure passes with a broker and a migrated database (exit 0)"
like "$OUT" "^runtime directory: ok" "runtime directory: ok"
like "$OUT" "broker: ok \(ipc://$SLUICE_DIR/broker.ipc, pid $BROKER_PID, version " "broker: ok"
like "$OUT" "database: ok \($SHOWN_DB, server " "database: ok, shown without its password"
like "$OUT" "schema: ok \(version 3\)" "schema: ok"
for t in channels usage_minute route_log; do
    like "$OUT" "table $t: ok \(SELECT, INSERT, UPDATE\)" \
        "table $t: the broker's user may read and write it"
done
like "$OUT" "configure: all 7 checks passed$" "the summary"
no_secret "... and no password"
is "$(sluice_rows)" 0 "configure wrote no row"

SLUICE_DB=$BROKER_DB run ctl configure
is "$RC" 0 "SLUICE_DB works as --db"
SLUICE_DB=$WRONG_DB run ctl configure --db "$BROKER_DB"
is "$RC" 0 "--db wins over SLUICE_DB"
SLUICE_DB=$BROKER_DB DB_HOST=/nonexistent.sock DB_NAME=x DB_USER=x run ctl configure
is "$RC" 0 "SLUICE_DB wins over DB_*"
DB_HOST=$DB_SOCK DB_NAME=sluice DB_USER=sluice DB_PASSWORD=$BROKER_PW run ctl configure
is "$RC" 0 "DB_HOST (a socket path), DB_NAME, DB_USER, DB_PASSWORD work"
like "$OUT" "database: ok \($SHOWN_DB, " "... shown as a URL without the password"
no_secret "... and the password is not printed"
DB_HOST=$DB_SOCK DB_NAME=sluice DB_USER=sluice_admin DB_PASSWORD=$ADMIN_PW run ctl migrate
is "$RC.$OUT" "0.schema: already at version 3" "ctl migrate with DB_* as sluice_admin"
DB_HOST=$DB_SOCK DB_NAME=sluice DB_USER=sluice DB_PASSWORD=$WRONG_PW run ctl configure
is "$RC" 1 "DB_PASSWORD wrong: configure fails"
no_secret "... without printing it"

# --- what configure finds wrong ------------------------------------------------------------

run ctl configure --db "$READER_DB"
is "$RC" 1 "a user who may only read: exit 1"
like "$OUT" \
    "table channels: FAIL INSERT refused: INSERT command denied to user 'reader'@'localhost'" \
    "... naming the statement refused"
like "$OUT" "needs SELECT, INSERT and UPDATE on sluice\.\*" "... and the privileges needed"
like "$OUT" "configure: 3 of 7 checks failed" "... once per table"
no_secret "... without the password"

run ctl configure --db "$WRONG_DB"
is "$RC" 1 "a wrong password: configure exit 1"
like "$OUT" \
    "database: FAIL $SHOWN_DB: Access denied for user 'sluice'@'localhost' \(using password: YES\)" \
    "... access denied, for which user"
like "$OUT" "check the URL .*the user's password" "... and what to check"
no_secret "... without the password"
run ctl migrate --db "$WRONG_DB"
is "$RC" 3 "a wrong password: migrate exit 3"
like "$ERR" \
    "^ctl migrate: cannot connect to $SHOWN_DB: Access denied for user 'sluice'@'localhost'" \
    "... access denied"
no_secret "... without the password"

run ctl configure --db "$NOSUCH_DB"
is "$RC" 1 "a database that does not exist: configure exit 1"
like "$OUT" \
    "database: FAIL mysql://sluice:\*\*\*@localhost/nosuch\?socket=[^ ]*: Unknown database 'nosuch'" \
    "... unknown database, named"
no_secret "... without the password"
run ctl migrate --db "${ADMIN_URL/\/sluice\?/\/nosuch\?}"
is "$RC" 3 "a database that does not exist: migrate exit 3"
like "$ERR" "nosuch" "... naming it"
no_secret "... without the password"

chmod 0755 "$SLUICE_DIR"
run ctl configure
chmod 0700 "$SLUICE_DIR"
is "$RC" 1 "a runtime directory others can enter: exit 1"
like "$OUT" "runtime directory: FAIL $SLUICE_DIR is owned by uid [0-9]*, mode 0755: .*chmod 700 $SLUICE_DIR" \
    "... saying so and what to do"
# (run keeps its files in SLUICE_DIR: the variable is changed for ctl alone)
run env SLUICE_DIR="$SLUICE_DIR/none" "$SLUICE_BIN/ctl" --timeout 300 configure
like "$OUT" "runtime directory: FAIL $SLUICE_DIR/none does not exist: start the broker" \
    "a missing runtime directory: named, with what to do"

db_sql "INSERT INTO sluice_schema (version, applied_at) VALUES (99, NOW(3))"
run ctl migrate --db "$ADMIN_URL"
is "$RC" 1 "a schema newer than this sluice: migrate exit 1"
like "$ERR" "schema version 99, newer than this sluice's 3: upgrade sluice" \
    "... naming both versions"
is "$(db_sql "SELECT COUNT(*) FROM sluice_schema")" 4 "... and changing nothing"
run ctl configure --db "$BROKER_DB"
is "$RC" 1 "a schema newer than this sluice: configure exit 1"
like "$OUT" \
    "schema: FAIL the database has schema version 99, newer than this sluice's 3: upgrade sluice" \
    "... naming both versions"
db_sql "DELETE FROM sluice_schema WHERE version = 99"

db_stop
run ctl configure --db "$BROKER_DB"
is "$RC" 1 "no server: configure exit 1"
like "$OUT" "database: FAIL $SHOWN_DB: Can't connect to local server through socket '$DB_SOCK'" \
    "... cannot connect through the socket"
like "$OUT" "broker: ok" "... the other checks still run"
no_secret "... without the password"
run ctl migrate --db "$BROKER_DB"
is "$RC" 3 "no server: migrate exit 3"
like "$ERR" "cannot connect to $SHOWN_DB: Can't connect to local server" "... saying so"
no_secret "... without the password"

done_testing
