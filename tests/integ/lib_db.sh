# A private MariaDB server for one test script. Sourced after lib.sh. Bash only.
#
#   . "$(dirname "$0")/lib_db.sh"
#   db_available || skip_all "mariadb-server is not installed"
#   db_start                      # server on $DB_SOCK, database sluice, users below
#   db_sql "SELECT COUNT(*) FROM channels"      # as root; output without headers
#   db_kill; db_start_again       # SIGKILL it, start it again on the same data
#   db_stop
#
# The server lives in $SLUICE_DIR/db (data, socket, logs): no network, no system database, no
# option files. It is spawned like every other process here, so it is stopped at exit too.
# Users, all on localhost with password "pw":
#   sluice_admin  the privileges `ctl migrate` needs (README: CREATE, ALTER, INDEX, SELECT,
#                 INSERT on the database)
#   sluice        the privileges the broker needs (README: SELECT, INSERT, UPDATE)
# DB_URL / DB_ADMIN_URL: mysql:// URLs for them (socket form).
# shellcheck disable=SC2034

DB_DIR=$SLUICE_DIR/db
DB_SOCK=$DB_DIR/sock
DB_PID=
DB_URL="mysql://sluice:pw@localhost/sluice?socket=$DB_SOCK"
DB_ADMIN_URL="mysql://sluice_admin:pw@localhost/sluice?socket=$DB_SOCK"

db_available() {
    command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null
}

_db_ping() {
    mariadb-admin --no-defaults --socket="$DB_SOCK" -uroot ping >/dev/null 2>&1
}

# db_sql SQL: runs SQL as root on the database sluice; prints rows tab-separated, no headers.
db_sql() {
    mariadb --no-defaults --socket="$DB_SOCK" -uroot -N -B sluice -e "$1"
}

_db_spawn() {
    spawn mariadb mariadbd --no-defaults --datadir="$DB_DIR/data" --socket="$DB_SOCK" \
        --pid-file="$DB_DIR/mariadbd.pid" --skip-networking --user=root \
        --log-error="$DB_DIR/err.log" --innodb-buffer-pool-size=64M \
        --innodb-flush-log-at-trx-commit=2 --skip-log-bin
    DB_PID=$SPAWNED_PID
    if ! wait_for 30 _db_ping; then
        bail_out "the private MariaDB server did not start ($(tail -3 "$DB_DIR/err.log" 2>/dev/null | tr '\n' ' '))"
    fi
}

# db_start: a new server with an empty database sluice and the two users.
db_start() {
    mkdir -p "$DB_DIR"
    if ! mariadb-install-db --no-defaults --datadir="$DB_DIR/data" --user=root \
        --auth-root-authentication-method=normal --skip-test-db \
        --innodb-log-file-size=16M >"$DB_DIR/install.log" 2>&1; then
        bail_out "mariadb-install-db failed ($(tail -3 "$DB_DIR/install.log" | tr '\n' ' '))"
    fi
    _db_spawn
    mariadb --no-defaults --socket="$DB_SOCK" -uroot -e "
        CREATE DATABASE sluice;
        CREATE USER 'sluice_admin'@'localhost' IDENTIFIED BY 'pw';
        GRANT CREATE, ALTER, INDEX, SELECT, INSERT ON sluice.* TO 'sluice_admin'@'localhost';
        CREATE USER 'sluice'@'localhost' IDENTIFIED BY 'pw';
        GRANT SELECT, INSERT, UPDATE ON sluice.* TO 'sluice'@'localhost';" ||
        bail_out "cannot create the test database and users"
}

# db_kill: SIGKILL the server (as a crash would), and wait until it is gone.
db_kill() {
    [ -n "$DB_PID" ] || return 0
    kill -KILL -- "-$DB_PID" 2>/dev/null
    wait_for 10 _pgrp_dead "$DB_PID"
    wait "$DB_PID" 2>/dev/null
    DB_PID=
}

# db_start_again: start the server on the data it has (after db_kill or db_stop).
db_start_again() {
    _db_spawn
}

# db_stop: a clean stop.
db_stop() {
    [ -n "$DB_PID" ] || return 0
    stop_pgrp "$DB_PID" 20
    DB_PID=
}
