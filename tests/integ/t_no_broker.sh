#!/usr/bin/env bash
# With no broker running (no socket file at the default ipc:// address), every ctl command
# that needs one fails at once, long before its --timeout, with exit status 3 and a message
# that says the broker is not running and how to start it; the same for worker-pool's
# commands. Once a broker runs, the same command succeeds; once it has stopped (its socket
# removed), the command fails at once again.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

# fails_at_once NAME CMD...: CMD (given a 60 s --timeout) exits 3 within 20 s (bounded by
# timeout(1), which would end it with 124) saying that the peer is not running.
fails_at_once() {
    local name=$1
    shift
    run timeout 20 "$SLUICE_BIN/ctl" --timeout 60000 "$@"
    if [ "$RC" -eq 3 ] && [[ "$ERR" == *"is not running"* ]] && [[ "$ERR" == *"make run"* ]]; then
        pass "$name: exit 3 at once ($ERR)"
    else
        fail "$name" "exit status: $RC (124: still waiting after 20 s)" "stderr: $ERR"
    fi
}

fails_at_once "ctl push with no broker" push g hello
fails_at_once "ctl stats with no broker" stats
fails_at_once "ctl ping with no broker" ping
like "$ERR" "bin/broker" "the message names bin/broker"
fails_at_once "ctl workers with no worker-pool" workers
like "$ERR" "worker-pool is not running" "the message names worker-pool"

start_broker
ok "ctl push with the broker up" ctl push g hello
stop_broker
[ -e "$SLUICE_DIR/broker.ipc" ] && diag "the broker left its socket behind"
fails_at_once "ctl push after the broker stopped" push g hello

done_testing
