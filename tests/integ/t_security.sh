#!/usr/bin/env bash
# The broker's runtime directory and sockets (PROTOCOL.md, Transport): the directory is 0700 and
# ours, the socket files 0600, whatever the umask; no TCP listener unless asked for; a second
# broker cannot take over a live one's socket, a stale one is replaced; on SIGTERM or SIGINT the
# broker removes broker.ipc and exits 0, also while a request is parked.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

send=$SLUICE_TESTBIN/sl-send

# broker_in DIR [ARGS...]: starts a broker with --dir DIR (log DIR's basename.log in
# SLUICE_DIR) and waits until it answers at ipc://DIR/broker.ipc, or has exited. Sets PID.
broker_in() {
    local dir=$1
    shift
    spawn "broker-${dir##*/}" "$SLUICE_BIN/broker" --no-journal --dir "$dir" "$@"
    PID=$SPAWNED_PID
    wait_for 10 _answers_or_dead "$dir" "$PID"
}

_answers_or_dead() {
    ! alive "$2" || "$SLUICE_BIN/ctl" --url "ipc://$1/broker.ipc" --timeout 250 ping
}

# The mode (octal) of a path, or "none".
mode_of() {
    stat -c %a "$1" 2>/dev/null || echo none
}

# Listening TCP sockets of process $1 (from /proc: its socket inodes in /proc/net/tcp{,6}).
tcp_listeners() {
    python3 -c '
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir("/proc/%s/fd" % pid):
    try:
        t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
    except OSError:
        continue
    if t.startswith("socket:["):
        inodes.add(t[8:-1])
n = 0
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(f).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        cols = line.split()
        if cols[3] == "0A" and cols[9] in inodes:
            n += 1
print(n)
' "$1"
}

# --- the default runtime directory ---------------------------------------------------------

start_broker
sock=$SLUICE_DIR/broker.ipc
ok "broker.ipc is a Unix socket" test -S "$sock"
is "$(mode_of "$sock")" 600 "broker.ipc has mode 0600"
is "$(stat -c %u "$sock")" "$(id -u)" "broker.ipc is owned by the broker's user"
is "$(mode_of "$SLUICE_DIR")" 700 "the runtime directory has mode 0700"
is "$(find "$SLUICE_DIR" -maxdepth 1 -type s ! -perm 600 | wc -l)" 0 \
    "every socket file in the runtime directory has mode 0600"
is "$(tcp_listeners "$BROKER_PID")" 0 "the broker listens on no TCP port when none is asked for"

# --- a second broker on the same directory ------------------------------------------------

run timeout 10 "$SLUICE_BIN/broker" --no-journal
isnt "$RC" 0 "a second broker on a live broker's socket does not start (exit $RC)"
isnt "$RC" 124 "... and says so at once, rather than running"
ok "the second broker left the first one's socket in place" test -S "$sock"
ok "the first broker still answers on it" ctl --timeout 1000 ping
run ctl ping
like "$OUT" "broker pid $BROKER_PID," "... and it is the first broker that answers"

# --- SIGTERM ------------------------------------------------------------------------------

stop_broker
is "$?" 0 "the broker exits 0 on SIGTERM"
ok "the broker removed broker.ipc on SIGTERM" test ! -e "$sock"
retire_pgrp "$BROKER_PID" broker-default

# --- a directory the broker creates, under umask 000 ----------------------------------------

old_umask=$(umask)
umask 000
broker_in "$SLUICE_DIR/new/rt"
umask "$old_umask"
ok "a broker started under umask 000 in a new nested directory answers" alive "$PID"
is "$(mode_of "$SLUICE_DIR/new/rt")" 700 "the runtime directory it created has mode 0700 despite umask 000"
is "$(mode_of "$SLUICE_DIR/new/rt/broker.ipc")" 600 "its broker.ipc has mode 0600 despite umask 000"
is "$(find "$SLUICE_DIR/new/rt" -maxdepth 1 -type s ! -perm 600 | wc -l)" 0 \
    "every socket file it created has mode 0600 despite umask 000"
kill -INT "$PID"
wait_for 3 _pgrp_dead "$PID"
wait "$PID"
is "$?" 0 "the broker exits 0 on SIGINT"
ok "the broker removed broker.ipc on SIGINT" test ! -e "$SLUICE_DIR/new/rt/broker.ipc"
retire_pgrp "$PID" broker-umask

# --- an existing directory of mode 0755 ----------------------------------------------------

mkdir -m 0755 "$SLUICE_DIR/open"
broker_in "$SLUICE_DIR/open"
ok "a broker in an existing directory of mode 0755 answers" alive "$PID"
is "$(mode_of "$SLUICE_DIR/open")" 700 "the broker made the directory 0700"
is "$(mode_of "$SLUICE_DIR/open/broker.ipc")" 600 "its broker.ipc has mode 0600"

# SIGTERM while a reserve is parked on a connection (the request waits up to 20 s).
"$send" "ipc://$SLUICE_DIR/open/broker.ipc" --timeout 30000 \
    --hex "$(mp_op reserve worker str w1 wait_ms uint 20000)" >"$SLUICE_DIR/parked.out" 2>&1 &
parked=$!
# Parked once the broker counts a waiter (stats "waiters"); without that key, after the stats
# show the worker w1.
_parked() {
    local s
    s=$("$SLUICE_BIN/ctl" --url "ipc://$SLUICE_DIR/open/broker.ipc" stats --json) || return 1
    [ "$(json "$s" 'd["broker"].get("waiters", len(d["workers"])) >= 1')" = true ]
}
ok "a reserve with wait_ms 20000 is parked" wait_for 5 _parked
_now_us
t0=$REPLY
kill -TERM "$PID"
wait_for 5 _pgrp_dead "$PID"
_now_us
ms=$(((REPLY - t0) / 1000))
wait "$PID"
is "$?" 0 "the broker exits 0 on SIGTERM with a reserve parked"
cmp_num "$ms" -lt 3000 "... within 3 s (took $ms ms)"
ok "... and removed broker.ipc" test ! -e "$SLUICE_DIR/open/broker.ipc"
retire_pgrp "$PID" broker-open
wait "$parked" 2>/dev/null

# --- a stale socket -------------------------------------------------------------------------

mkdir -m 0700 "$SLUICE_DIR/stale"
broker_in "$SLUICE_DIR/stale"
{
    kill -KILL "$PID"
    wait_for 3 _pgrp_dead "$PID"
    wait "$PID"
} 2>/dev/null # bash's "Killed" notice
retire_pgrp "$PID" broker-killed
ok "a broker killed with SIGKILL leaves its socket file behind" test -S "$SLUICE_DIR/stale/broker.ipc"
broker_in "$SLUICE_DIR/stale"
ok "a new broker starts over the stale socket" alive "$PID"
ok "... and answers on it" ctl --url "ipc://$SLUICE_DIR/stale/broker.ipc" ping
is "$(mode_of "$SLUICE_DIR/stale/broker.ipc")" 600 "... which has mode 0600"
stop_pgrp "$PID"
is "$?" 0 "... and exits 0 on SIGTERM"
retire_pgrp "$PID" broker-stale

# --- directories the broker must refuse ----------------------------------------------------

mkdir -m 0700 "$SLUICE_DIR/real"
ln -s "$SLUICE_DIR/real" "$SLUICE_DIR/link"
run timeout 10 "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/link"
is "$RC" 1 "a runtime directory that is a symlink is refused: exit 1"
ok "... and no socket is created through it" test ! -e "$SLUICE_DIR/real/broker.ipc"

if [ "$(id -u)" = 0 ]; then
    mkdir -m 0700 "$SLUICE_DIR/theirs"
    chown 65534 "$SLUICE_DIR/theirs"
    run timeout 10 "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/theirs"
    is "$RC" 1 "a runtime directory owned by another user is refused: exit 1"
    like "$ERR" "owned by uid 65534" "... saying who owns it"
    ok "... and no socket is created in it" test ! -e "$SLUICE_DIR/theirs/broker.ipc"
else
    pass "# SKIP a directory owned by another user: needs root to make one"
fi

mkdir -m 0700 "$SLUICE_DIR/file"
: >"$SLUICE_DIR/file/rt"
run timeout 10 "$SLUICE_BIN/broker" --no-journal --dir "$SLUICE_DIR/file/rt"
is "$RC" 1 "a runtime directory path that is a regular file is refused: exit 1"

done_testing
