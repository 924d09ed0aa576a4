# Sourced by the cluster tests, after lib.sh and lib_nats.sh. Bash only.
#
#   free_port            a free TCP port on 127.0.0.1
#   role URL             the broker's cluster role ("" when it does not answer)
#   is_role URL ROLE     succeeds when it has that role
#   caught_up URL        succeeds when the standby has applied everything the stream holds
#   books URL            the jobs a broker holds, per queue and state, and its routes, as one line
#   stream_first URL     the first sequence the shard's stream holds, as the broker reads it
#   start_shard SHARD NAME PORT [OPTION...]
#                        a cluster broker of SHARD (lease 1 s, 3 replicas) named NAME, with its
#                        own directories, listening on PORT; sets PID_NAME

free_port() {
    python3 -I -S -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

role() {
    "$SLUICE_BIN/ctl" --url "$1" --timeout 500 cluster status --json 2>/dev/null |
        python3 -I -S -c 'import json,sys; print(json.load(sys.stdin)["role"])' 2>/dev/null
}
is_role() { [ "$(role "$1")" = "$2" ]; }

caught_up() {
    local doc
    doc=$("$SLUICE_BIN/ctl" --url "$1" --timeout 500 cluster status --json 2>/dev/null) || return 1
    [ "$(json "$doc" 'd["lag_records"]')" = 0 ] &&
        [ "$(json "$doc" 'd["applied_seq"]')" = "$(json "$doc" 'd["stream_last_seq"]')" ]
}

books() {
    local s
    s=$("$SLUICE_BIN/ctl" --url "$1" --timeout 1000 stats --json 2>/dev/null) || return 1
    json "$s" '(d["broker"]["jobs"], sorted((q["name"], q["ready"], q["reserved"], q["dead"]) for q in d["queues"]), sorted((g["name"], g.get("route","")) for g in d["groups"]))'
}

stream_first() {
    "$SLUICE_BIN/ctl" --url "$1" --timeout 1000 cluster status --json 2>/dev/null |
        python3 -I -S -c 'import json,sys; print(json.load(sys.stdin)["stream_first_seq"])' 2>/dev/null
}

start_shard() {
    local shard=$1 name=$2 port=$3
    shift 3
    mkdir -p "$SLUICE_DIR/$name"
    spawn "$name" "$SLUICE_BIN/broker" --dir "$SLUICE_DIR/$name" --cluster "$NATS_URLS" \
        --shard "$shard" --listen "tcp://127.0.0.1:$port" --lease 1s --replicas 3 "$@"
    eval "PID_$name=$SPAWNED_PID"
}
