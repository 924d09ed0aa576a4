#!/usr/bin/env bash
# A runtime directory someone else controls (README, Security): every program that finds its
# server through the runtime directory refuses a directory that is not the user's alone (or a
# socket in it that is another user's or writable by others), naming the path, its owner and
# mode, and never connects. ctl exits 2, worker and router 1. An address given with --url is
# the user's choice and is used as given.
. "$(dirname "$0")/lib.sh"

# The "squatter's" broker: a broker of ours in a directory that is then opened up (and, as
# root, given away), as if another user had created it first and put their broker there.
SQ=$SLUICE_DIR/squat
mkdir -m 0700 "$SQ"
spawn broker "$SLUICE_BIN/broker" --no-journal --dir "$SQ"
BROKER_PID=$SPAWNED_PID
SQURL=ipc://$SQ/broker.ipc
wait_for 10 ctl --url "$SQURL" --timeout 250 ping || bail_out "the broker did not start"
ok "a job is there for a worker to take" ctl --url "$SQURL" push bait j1

# What reached the broker in SQ (counters that only grow; its log).
default_field() {
    json "$(ctl --url "$SQURL" stats --json)" \
        '[q for q in d["queues"] if q["name"] == "default"][0]["'"$1"'"]'
}
logged() {
    grep -c "event=$1 " "$SLUICE_DIR/broker.log"
}
# refused LABEL PATTERN: every client, run with SLUICE_DIR=$SQ, refuses and reaches nothing.
refused() {
    local label=$1 pat=$2
    run env SLUICE_DIR="$SQ" "$SLUICE_BIN/ctl" --timeout 500 ping
    is "$RC" 2 "$label: ctl ping exits 2"
    like "$ERR" "$pat" "... naming the directory, its owner and mode"
    run env SLUICE_DIR="$SQ" "$SLUICE_BIN/ctl" --timeout 500 push alice secret
    is "$RC" 2 "$label: ctl push exits 2"
    like "$ERR" "$pat" "... saying why"
    is "$(default_field pushed)" 1 "... and its payload never reached the broker there"
    run env SLUICE_DIR="$SQ" timeout 10 "$SLUICE_BIN/worker" --handler noop --max-jobs 1
    is "$RC" 1 "$label: worker exits 1 (cannot start)"
    like "$ERR" "$pat" "... saying why"
    is "$(logged worker.join)" 0 "... never registered there"
    is "$(default_field done)" 0 "... and took no job from it"
    run env SLUICE_DIR="$SQ" timeout 10 "$SLUICE_BIN/router" --once --name squatted
    is "$RC" 1 "$label: router exits 1 (cannot start)"
    like "$ERR" "$pat" "... saying why"
    is "$(logged lease.acquire)" 0 "... and took no lease there"
    run env SLUICE_DIR="$SQ" timeout 10 "$SLUICE_BIN/ctl" --timeout 500 events --count 1
    is "$RC" 2 "$label: ctl events exits 2"
    like "$ERR" "$pat" "... saying why"
}

# --- a directory of ours that others can enter ---------------------------------------------

chmod 0755 "$SQ"
refused "a directory open to others" "runtime directory $SQ is owned by uid $(id -u), mode 0755"
run env SLUICE_DIR="$SQ" "$SLUICE_BIN/ctl" configure
is "$RC" 1 "configure reports it as a failed check (exit 1)"
like "$OUT" "runtime directory: FAIL $SQ is owned by uid $(id -u), mode 0755: .*chmod 700 $SQ" \
    "... with what to do"
like "$OUT" "broker: FAIL not asked" "... and does not ask the broker there"
chmod 0700 "$SQ"
ok "closed again, it is used" env SLUICE_DIR="$SQ" "$SLUICE_BIN/ctl" --timeout 500 ping

# --- a socket others may write -------------------------------------------------------------

chmod 0666 "$SQ/broker.ipc"
run env SLUICE_DIR="$SQ" "$SLUICE_BIN/ctl" --timeout 500 ping
is "$RC" 2 "a socket writable by others: ctl ping exits 2"
like "$ERR" "socket $SQ/broker.ipc is owned by uid $(id -u), mode 0666" "... naming it"
chmod 0600 "$SQ/broker.ipc"

# --- another user's directory (the squat itself) -------------------------------------------

if [ "$(id -u)" = 0 ]; then
    chown 65534 "$SQ" "$SQ/broker.ipc" "$SQ/events.ipc"
    chmod 0755 "$SQ"
    chmod 0666 "$SQ/broker.ipc"
    refused "another user's directory" "runtime directory $SQ is owned by uid 65534, mode 0755"
    # Even private to its owner, it is not ours.
    chmod 0700 "$SQ"
    run env SLUICE_DIR="$SQ" "$SLUICE_BIN/ctl" --timeout 500 ping
    is "$RC" 2 "another user's private directory: ctl ping exits 2"
    like "$ERR" "owned by uid 65534, mode 0700, not yours \(uid 0\)" "... saying whose it is"
    chmod 0755 "$SQ"
else
    pass "# SKIP a directory owned by another user: needs root to make one"
fi

# --- an explicit address is the user's choice ----------------------------------------------

ok "ctl --url to a socket there is used as given" \
    env SLUICE_DIR="$SQ" "$SLUICE_BIN/ctl" --timeout 500 --url "$SQURL" ping
ok "... SLUICE_URL too" env SLUICE_DIR="$SQ" SLUICE_URL="$SQURL" "$SLUICE_BIN/ctl" --timeout 500 ping

done_testing
