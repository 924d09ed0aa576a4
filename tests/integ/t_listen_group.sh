#!/usr/bin/env bash
# The broker on several addresses at once (--listen, repeatable) and its ipc:// socket shared
# with a group (--socket-mode, --socket-group; README "Security"):
# - bad combinations stop the start with exit 2 and a message, creating nothing;
# - --listen ipc --listen tcp://...: both answer, `stats` lists both, and the warning for a
#   listener without a token names the TCP one only; with a token both want it;
# - --socket-group G: the runtime directory becomes 0710 and G's, broker.ipc 0660 and G's,
#   events.ipc stays 0600; the owner's ctl, which checks the directory, accepts it; worker-pool
#   starting in it leaves it shared; as root, a member of G reaches the broker and a user in no
#   such group does not;
# - a directory writable by its group or open to others is still refused by the clients;
# - a broker started again without --socket-group makes the directory 0700 again.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

mode_of() {
    stat -c %a "$1" 2>/dev/null || echo none
}
group_of() {
    stat -c %G "$1" 2>/dev/null || echo none
}

# refused_at_start NAME PATTERN ARGS...: broker ARGS exits 2 with PATTERN on stderr, leaving
# no runtime directory behind.
refused_at_start() {
    local name=$1 pat=$2
    shift 2
    run env SLUICE_DIR="$SLUICE_DIR/never" "$SLUICE_BIN/broker" --no-journal "$@"
    if [ "$RC" -eq 2 ] && [[ "$ERR" =~ $pat ]] && [ ! -e "$SLUICE_DIR/never" ]; then
        pass "$name"
    else
        fail "$name" "exit status: $RC" "stderr: $ERR" "not matching: /$pat/" \
            "runtime directory created: $([ -e "$SLUICE_DIR/never" ] && echo yes || echo no)"
    fi
}

# The group: as root a new one (removed at the end), else the user's own.
if [ "$(id -u)" = 0 ] && command -v groupadd >/dev/null; then
    grp=sltest$$
    groupadd "$grp" || bail_out "groupadd $grp failed"
    trap 'groupdel "$grp" 2>/dev/null; cleanup' EXIT
else
    grp=$(id -gn)
fi

# --- refused at start ---------------------------------------------------------------------
refused_at_start "--socket-mode 0644 is refused" "'0644' is not a socket mode" --socket-mode 0644
refused_at_start "--socket-mode 0666 is refused" "'0666' is not a socket mode" --socket-mode 0666
refused_at_start "--socket-mode 0660 without a group is refused" "say which with --socket-group" \
    --socket-mode 0660
refused_at_start "an unknown --socket-group is refused" "no group 'no-such-group-sl'" \
    --socket-group no-such-group-sl
refused_at_start "--socket-group with mode 0600 is refused" "give --socket-mode 0660" \
    --socket-group "$grp" --socket-mode 0600
refused_at_start "--socket-group with no ipc:// listener is refused" "listens on none" \
    --socket-group "$grp" --listen tcp://127.0.0.1:1
refused_at_start "--listen and --url together are refused" "not both" \
    --url "ipc://$SLUICE_DIR/x.ipc" --listen ipc
refused_at_start "the same --listen twice is refused" "given twice" --listen ipc --listen ipc
refused_at_start "a ninth --listen is refused" "at most 8" $(for i in 1 2 3 4 5 6 7 8 9; do
    echo --listen "tcp://127.0.0.1:$((20000 + i))"; done)
refused_at_start "--threads 0 is refused" "threads" --threads 0
refused_at_start "--threads 65 is refused" "threads" --threads 65
refused_at_start "--listen with a scheme the broker does not serve is refused" \
    "ipc:// and tcp://" --listen "ws://127.0.0.1:1"
if [ "$(id -u)" != 0 ]; then
    refused_at_start "a group the user is not in is refused" "not a member of group" \
        --socket-group "$(getent group | cut -d: -f1,4 | grep -v ":.*\b$(id -un)\b" |
                          grep -vx "$(id -gn):.*" | head -n 1 | cut -d: -f1)"
fi

# --- IPC and TCP at once ------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
turl=tcp://127.0.0.1:$port
start_broker --listen ipc --listen "$turl" --threads 1 --contexts 16
ok "ping over the default ipc:// socket" ctl ping
ok "--contexts, its former name, is accepted and said to be ignored" \
    grep -q "contexts is ignored" "$SLUICE_DIR/broker.log"
ok "ping over $turl" ctl --url "$turl" ping
run ctl --url "$turl" stats --json
is "$(json "$OUT" '" ".join(d["broker"]["listen"])')" "ipc://$SLUICE_DIR/broker.ipc $turl" \
    "stats lists both listeners"
ok "one auth.none warning, for the TCP listener" \
    grep -q "event=auth.none url=\"$turl\"" "$SLUICE_DIR/broker.log"
is "$(grep -c 'event=auth.none' "$SLUICE_DIR/broker.log")" 1 "... and none for ipc://"
ok "the start line names both" grep -q "url=\"ipc://$SLUICE_DIR/broker.ipc $turl\"" \
    "$SLUICE_DIR/broker.log"
stop_broker

printf 'sekrit-%s\n' "$RANDOM$RANDOM" >"$SLUICE_DIR/token"
chmod 600 "$SLUICE_DIR/token"
spawn broker2 "$SLUICE_BIN/broker" --no-journal --token-file "$SLUICE_DIR/token" \
    --listen ipc --listen "$turl"
ok "with a token: TCP answers with it" wait_for 10 "$SLUICE_BIN/ctl" --url "$turl" \
    --token-file "$SLUICE_DIR/token" ping
run "$SLUICE_BIN/ctl" --url "$turl" ping
is "$RC" 1 "with a token: TCP without it is refused"
run "$SLUICE_BIN/ctl" ping
is "$RC" 1 "with a token: IPC without it is refused"
ok "no auth.none warning with a token" bash -c "! grep -q event=auth.none '$SLUICE_DIR/broker2.log'"
stop_pgrp "$SPAWNED_PID" 3

# --- a group shared runtime directory -----------------------------------------------------
base=$(mktemp -d /tmp/slg.XXXXXX)
chmod 0711 "$base" # others may pass through, to reach the runtime directory's own mode
trap 'rm -rf "$base"; [ -n "${grp:-}" ] && [ "$grp" != "$(id -gn)" ] && groupdel "$grp" 2>/dev/null; cleanup' EXIT
rt=$base/rt
spawn broker3 "$SLUICE_BIN/broker" --dir "$rt" --no-journal --socket-group "$grp"
b3=$SPAWNED_PID
ok "a broker with --socket-group $grp answers its owner's ctl (which checks the directory)" \
    wait_for 10 env SLUICE_DIR="$rt" "$SLUICE_BIN/ctl" ping
is "$(mode_of "$rt") $(group_of "$rt")" "710 $grp" "the runtime directory is 0710 and $grp's"
is "$(mode_of "$rt/broker.ipc") $(group_of "$rt/broker.ipc")" "660 $grp" \
    "broker.ipc is 0660 and $grp's"
is "$(mode_of "$rt/events.ipc")" 600 "events.ipc stays 0600"
run env SLUICE_DIR="$rt" "$SLUICE_BIN/ctl" push g hello
is "$RC" 0 "the owner's ctl push through the shared directory"
spawn pool "$SLUICE_BIN/worker-pool" --dir "$rt" -n 1 --handler noop
pool=$SPAWNED_PID
ok "worker-pool starts in the shared directory" wait_for 10 test -S "$rt/pool.ipc"
is "$(mode_of "$rt") $(group_of "$rt")" "710 $grp" "... and leaves it shared"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    gid=$(getent group "$grp" | cut -d: -f3)
    run setpriv --reuid 65534 --regid 65534 --groups "$gid" \
        "$SLUICE_BIN/ctl" --url "ipc://$rt/broker.ipc" ping
    is "$RC" 0 "a member of $grp (uid 65534) reaches the broker"
    run setpriv --reuid 65534 --regid 65534 --clear-groups \
        "$SLUICE_BIN/ctl" --url "ipc://$rt/broker.ipc" --timeout 300 ping
    is "$RC" 3 "a user in no such group does not"
    run setpriv --reuid 65534 --regid 65534 --groups "$gid" \
        "$SLUICE_BIN/ctl" --url "ipc://$rt/events.ipc" --timeout 300 ping
    isnt "$RC" 0 "a member of $grp cannot reach events.ipc"
else
    pass "# SKIP other users' access needs root and setpriv"
fi
chmod 0770 "$rt"
run env SLUICE_DIR="$rt" "$SLUICE_BIN/ctl" ping
is "$RC" 2 "a runtime directory its group may write is refused by ctl"
like "$ERR" "mode 0770: refused" "... saying so"
chmod 0711 "$rt"
run env SLUICE_DIR="$rt" "$SLUICE_BIN/ctl" ping
is "$RC" 2 "a runtime directory open to others is refused by ctl"
chmod 0710 "$rt"
stop_pgrp "$pool" 3
stop_pgrp "$b3" 3

spawn broker4 "$SLUICE_BIN/broker" --dir "$rt" --no-journal
ok "the broker started again without --socket-group answers" \
    wait_for 10 env SLUICE_DIR="$rt" "$SLUICE_BIN/ctl" ping
is "$(mode_of "$rt")" 700 "it made the runtime directory 0700 again"
is "$(mode_of "$rt/broker.ipc")" 600 "and broker.ipc 0600"

done_testing
