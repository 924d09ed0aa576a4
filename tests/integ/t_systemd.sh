#!/usr/bin/env bash
# contrib/systemd: the example units for broker, worker-pool and router. Each names the shared
# runtime directory (/run/sluice, 0700), the dedicated user, SIGTERM and a restart on failure;
# worker-pool and router come after the broker; every option of each ExecStart is one its
# program's --help shows; TimeoutStopSec covers the pool's drain. The three command lines then
# run for real (paths mapped into a private directory) and stop on SIGTERM with status 0
# within their TimeoutStopSec. `systemd-analyze verify` checks the files when it is installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_proc.sh"

units=$_root_dir/contrib/systemd
declare -A prog=([sluice-broker]=broker [sluice-worker-pool]=worker-pool [sluice-router]=router)

# key UNIT KEY: the values of KEY= in UNIT, one per line.
key() {
    sed -n "s/^$2=//p" "$units/$1.service"
}

# seconds VALUE: a systemd time span (30s, 1min 30s, 40) in whole seconds.
seconds() {
    python3 - "$1" <<'PY'
import re, sys
total = 0
for n, u in re.findall(r'(\d+)\s*(min|s|ms|)', sys.argv[1]):
    total += int(n) * {"min": 60, "s": 1, "": 1, "ms": 0.001}[u]
print(int(total))
PY
}

# argv UNIT: the ExecStart command line split into words, one per line.
argv() {
    python3 -c 'import shlex, sys; print("\n".join(shlex.split(sys.argv[1])))' "$(key "$1" ExecStart)"
}

for u in sluice-broker sluice-worker-pool sluice-router; do
    p=${prog[$u]}
    ok "$u.service exists" test -f "$units/$u.service"
    is "$(key "$u" Type)" simple "$u: Type=simple (no readiness protocol)"
    is "$(key "$u" User)" sluice "$u: runs as the dedicated user sluice"
    is "$(key "$u" KillSignal)" SIGTERM "$u: KillSignal=SIGTERM"
    is "$(key "$u" Restart)" on-failure "$u: Restart=on-failure"
    is "$(key "$u" RuntimeDirectory)" sluice "$u: RuntimeDirectory=sluice"
    is "$(key "$u" RuntimeDirectoryMode)" 0700 "$u: the runtime directory is 0700"
    is "$(key "$u" RuntimeDirectoryPreserve)" yes "$u: stopping one unit keeps the others' sockets"
    is "$(key "$u" Environment | grep '^SLUICE_DIR=')" SLUICE_DIR=/run/sluice "$u: SLUICE_DIR=/run/sluice"
    mapfile -t words < <(argv "$u")
    is "${words[0]}" "/usr/local/bin/$p" "$u: runs $p from make install's default PREFIX"
    help=$("$SLUICE_BIN/$p" --help)
    bad=""
    for w in "${words[@]:1}"; do
        case $w in
        --*) grep -Eq -- "^ +(-[A-Za-z0-9], )?${w%%=*}( |\$)" <<<"$help" || bad="$bad $w" ;;
        -?) grep -Eq -- "^ +$w, --" <<<"$help" || bad="$bad $w" ;;
        esac
    done
    is "$bad" "" "$u: every option of ExecStart is in $p --help"
done
for u in sluice-worker-pool sluice-router; do
    is "$(key "$u" After)" sluice-broker.service "$u: After=sluice-broker.service"
    is "$(key "$u" Wants)" sluice-broker.service "$u: Wants=sluice-broker.service"
done
is "$(key sluice-broker StateDirectory)" sluice "sluice-broker: StateDirectory=sluice"
like "$(key sluice-broker ExecStart)" ' --data-dir /var/lib/sluice( |$)' \
    "sluice-broker: the journal is in the state directory"
is "$(key sluice-worker-pool KillMode)" mixed \
    "sluice-worker-pool: KillMode=mixed (SIGTERM to the pool alone, which drains its workers)"
drain=$(argv sluice-worker-pool | sed -n '/^--drain-timeout$/{n;p}')
cmp_num "$(seconds "$(key sluice-worker-pool TimeoutStopSec)")" -ge $(($(seconds "${drain:-30s}") + 4)) \
    "sluice-worker-pool: TimeoutStopSec covers --drain-timeout + 2 s before SIGKILL + 2 s to close"

if command -v systemd-analyze >/dev/null; then
    # verify wants the programs where ExecStart names them: a copy pointing at this build.
    mkdir "$SLUICE_DIR/units"
    for u in sluice-broker sluice-worker-pool sluice-router; do
        sed "s|/usr/local/bin/|$SLUICE_BIN/|" "$units/$u.service" >"$SLUICE_DIR/units/$u.service"
    done
    run systemd-analyze verify --man=no "$SLUICE_DIR"/units/*.service
    is "$RC:$ERR" "0:" "systemd-analyze verify: no error, no warning"
else
    pass "# SKIP systemd-analyze is not installed"
fi

# The command lines themselves, as systemd would run them (the unit's paths mapped here).
state=$SLUICE_DIR/state
mkdir -m 0700 "$state"
start_unit() {
    local u=$1
    local -a w
    mapfile -t w < <(argv "$u" | sed -e "s|^/usr/local/bin/|$SLUICE_BIN/|" -e "s|^/var/lib/sluice\$|$state|")
    spawn "$u" "${w[@]}"
    UNIT_PID=$SPAWNED_PID
}
start_unit sluice-broker
bpid=$UNIT_PID
ok "broker (unit's command line) answers" wait_for 10 ctl --timeout 250 ping
ok "its journal is in the state directory" test -e "$state/0000000000000001.seg"
start_unit sluice-worker-pool
ppid_=$UNIT_PID
eight() {
    run ctl workers --json --timeout 500
    [ "$RC" = 0 ] && [ "$(json "$OUT" 'len([w for w in d["workers"] if w["state"] in ("idle", "busy")])')" = 8 ]
}
ok "worker-pool (unit's command line) runs 8 workers" wait_for 15 eight
start_unit sluice-router
rpid=$UNIT_PID
leads() {
    run ctl routes --json
    [ "$(json "$OUT" '(d.get("leader") or {}).get("name", "")')" = "router:$(hostname):$rpid" ]
}
ok "router (unit's command line) leads" wait_for 10 leads
for u in sluice-router:$rpid sluice-worker-pool:$ppid_ sluice-broker:$bpid; do
    name=${u%%:*}
    pid=${u##*:}
    limit=$(seconds "$(key "$name" TimeoutStopSec)")
    kill -TERM "$pid"
    ok "$name: stops on SIGTERM within TimeoutStopSec ($limit s)" wait_for "$limit" _pgrp_dead "$pid"
    wait "$pid"
    is "$?" 0 "$name: exit status 0"
    retire_pgrp "$pid" "$name"
done
is "$(find "$SLUICE_DIR" -maxdepth 1 -type s | wc -l)" 0 "no socket file is left"

done_testing
