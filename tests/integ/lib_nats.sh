# Sourced by tests that need a NATS JetStream cluster, after lib.sh. Bash only.
#
#   nats_cluster_start [N]   N (default 3) nats-server processes on 127.0.0.1, private free
#                            ports, configs and stores under $SLUICE_DIR/nats; returns once
#                            JetStream answers on every node (polled, 30 s at most). Exports
#                            NATS_URLS (nats://127.0.0.1:P1,...).
#   nats_node_kill I [SIG]   SIG (default KILL) to node I (1-based), and waits for it to go
#   nats_node_start I        starts node I again with its store
#   nats_node_start_if_down I  the same, unless it runs
#   nats_pub SUBJECT DATA    publishes DATA (one line) to SUBJECT through node 1, and waits for
#                            the server's PONG, so the message is routed before it returns
# The nodes are spawned like any process of the test, so the teardown stops them.

_nats_ports=()   # client port of each node
_nats_cports=()  # cluster port of each node
_nats_mports=()  # monitoring port of each node
_nats_pids=()

_nats_free_port() {
    python3 -I -S -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

_nats_conf() {
    local i=$1 n=$2 routes="" k
    for ((k = 1; k <= n; k++)); do
        routes+="${routes:+, }nats-route://127.0.0.1:${_nats_cports[k]}"
    done
    mkdir -p "$SLUICE_DIR/nats/n$i"
    cat >"$SLUICE_DIR/nats/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:${_nats_ports[i]}
http: 127.0.0.1:${_nats_mports[i]}
jetstream { store_dir: "$SLUICE_DIR/nats/n$i" }
cluster {
    name: sl
    listen: 127.0.0.1:${_nats_cports[i]}
    routes: [ $routes ]
}
CONF
}

nats_node_start() {
    local i=$1
    spawn "nats$i" nats-server -c "$SLUICE_DIR/nats/n$i.conf"
    _nats_pids[i]=$SPAWNED_PID
}

nats_node_kill() {
    local i=$1 sig=${2:-KILL}
    kill "-$sig" -- "-${_nats_pids[i]}" 2>/dev/null
    [ "$sig" = STOP ] || [ "$sig" = CONT ] || wait_for 10 _pgrp_dead "${_nats_pids[i]}"
}

# nats_node_start_if_down I: starts node I unless it runs.
nats_node_start_if_down() {
    _pgrp_alive "${_nats_pids[$1]}" || nats_node_start "$1"
}

nats_pub() {
    local subj=$1 data=$2 line
    exec 7<>"/dev/tcp/127.0.0.1/${_nats_ports[1]}" || return 1
    read -r -t 5 line <&7
    printf 'CONNECT {"verbose":false,"pedantic":false}\r\nPUB %s %d\r\n%s\r\nPING\r\n' \
        "$subj" "${#data}" "$data" >&7
    while read -r -t 5 line <&7; do
        [[ "$line" == PONG* ]] && break
        [[ "$line" == -ERR* ]] && break
    done
    exec 7<&-
    [[ "$line" == PONG* ]]
}

# Succeeds once node I's JetStream is up with a meta leader (monitoring /jsz).
_nats_js_ready() {
    local doc
    doc=$(curl -s --max-time 1 "http://127.0.0.1:${_nats_mports[$1]}/jsz" 2>/dev/null) || return 1
    python3 -I -S -c 'import json,sys; d=json.loads(sys.argv[1]); c=d.get("meta_cluster") or {}; sys.exit(0 if d.get("config") and c.get("leader") else 1)' "$doc" 2>/dev/null
}

_nats_all_ready() {
    local i
    for ((i = 1; i <= ${#_nats_ports[@]}; i++)); do
        _nats_js_ready "$i" || return 1
    done
}

nats_cluster_start() {
    local n=${1:-3} i urls try
    command -v nats-server >/dev/null || bail_out "nats-server is not installed (scripts/deps --test)"
    # Twice at most: a port picked free may be taken by another test's process before its node
    # binds it (the suite runs scripts side by side), and that node then never joins. The
    # second try has new ports and empty stores.
    for try in 1 2; do
        urls=""
        for ((i = 1; i <= n; i++)); do
            _nats_ports[i]=$(_nats_free_port)
            _nats_cports[i]=$(_nats_free_port)
            _nats_mports[i]=$(_nats_free_port)
        done
        for ((i = 1; i <= n; i++)); do
            _nats_conf "$i" "$n"
            nats_node_start "$i"
            urls+="${urls:+,}nats://127.0.0.1:${_nats_ports[i]}"
        done
        export NATS_URLS=$urls
        wait_for 30 _nats_all_ready && return 0
        [ "$try" = 2 ] && break
        diag "the NATS cluster did not come up within 30 s; starting it again on other ports"
        for ((i = 1; i <= n; i++)); do
            nats_node_kill "$i" KILL
        done
        rm -rf "$SLUICE_DIR/nats"
    done
    bail_out "the NATS cluster did not come up within 30 s, twice"
}
