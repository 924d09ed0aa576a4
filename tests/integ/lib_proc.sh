# Sourced after lib.sh by scripts that start and stop several brokers in one run.
#
#   retire_pgrp PGID NAME   for a process group this script started and has already stopped:
#                           keeps its log as NAME.log (lib.sh prints the log of each process it
#                           started, by the name it was spawned with, so a second broker would
#                           otherwise show the last broker.log twice) and takes it off the list
#                           lib.sh signals at exit. Process ids are reused (pid_max is 32768 on
#                           small machines), so a group that ended long ago may by then be
#                           somebody else's: it must not get TERM from our cleanup.
#   data_broker ARGS...     starts a broker with its journal in $SLUICE_DIR/data (and ARGS),
#                           spawned as broker1, broker2, ...; waits until it answers ping.
#                           Sets BROKER_PID. Bails out if it exits during start-up.
#   data_broker_kill9       SIGKILL to that broker; returns once it is gone (its log kept).
#   free_port               PORT: a TCP port free on 127.0.0.1 just now.
#   api METHOD PATH [BODY]  one HTTP request to the broker's --http-listen on 127.0.0.1:$PORT
#                           (BODY: JSON); ST is its status, BODY its answer.
#   jobs_held               prints the broker's job count (stats).

retire_pgrp() {
    local pg=$1 name=$2 i old
    for i in "${!_pgids[@]}"; do
        [ "${_pgids[i]}" = "$pg" ] || continue
        old=${_pg_names[i]}
        if [ -e "$SLUICE_DIR/$old.log" ] && [ "$old" != "$name" ]; then
            mv "$SLUICE_DIR/$old.log" "$SLUICE_DIR/$name.log"
        fi
        _pg_names[i]=$name
        # An empty entry: cleanup's kill and wait on it fail quietly, and no group matches it.
        _pgids[i]=
    done
}

_data_brokers=0

data_broker() {
    _data_brokers=$((_data_brokers + 1))
    spawn "broker$_data_brokers" "$SLUICE_BIN/broker" --data-dir "$SLUICE_DIR/data" "$@"
    BROKER_PID=$SPAWNED_PID
    wait_for 10 _data_broker_up
    alive "$BROKER_PID" || bail_out "the broker exited during start-up (broker$_data_brokers.log)"
}

_data_broker_up() {
    ! alive "$BROKER_PID" || "$SLUICE_BIN/ctl" --timeout 250 ping >/dev/null 2>&1
}

data_broker_kill9() {
    {
        kill -KILL "$BROKER_PID"
        wait_for 5 _pgrp_dead "$BROKER_PID"
        wait "$BROKER_PID"
    } 2>/dev/null # bash's "Killed" notice
    retire_pgrp "$BROKER_PID" "broker$_data_brokers"
}

free_port() {
    PORT=$(python3 -I -S -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
}

api() {
    local -a extra=()
    [ -n "${3-}" ] && extra+=(--data-binary "$3" -H "Content-Type: application/json")
    ST=$(curl -s --max-time 20 -o "$SLUICE_DIR/api.body" -w '%{http_code}' -X "$1" \
        "${extra[@]}" "http://127.0.0.1:$PORT$2")
    BODY=$(cat "$SLUICE_DIR/api.body")
}

jobs_held() {
    run ctl stats --json
    json "$OUT" 'd["broker"]["jobs"]'
}
