#!/usr/bin/env bash
# The shared token (--token-file, SLUICE_TOKEN_FILE; README "Security"): a token file that group
# or others can read stops every program at start; a broker with a token refuses requests
# without it or with another one (unauthorized, exit 1 from ctl) on TCP and on IPC alike, and
# they change nothing; with the right token ctl (push, stats), worker-pool and its workers
# (reserve, ack) and the router (lease, routes) work over TCP on 127.0.0.1; a worker with a wrong
# token exits 2; worker-pool's control socket wants the token too; the token appears in no log
# and no output; the runtime directory's sockets (events.ipc, pool.ipc) are owner-only.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

send=$SLUICE_TESTBIN/sl-send
secret="tok-$RANDOM$RANDOM-shared-secret"
tok=$SLUICE_DIR/token
wrong=$SLUICE_DIR/wrong
printf '%s\n' "$secret" >"$tok"
chmod 600 "$tok"
printf 'not-the-token\n' >"$wrong"
chmod 600 "$wrong"
cp "$tok" "$SLUICE_DIR/open"
chmod 644 "$SLUICE_DIR/open"

# A free TCP port on 127.0.0.1 (the kernel's choice; nothing else binds it between here and the
# broker's start but by bad luck, which the start_broker bail-out would show).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
turl=tcp://127.0.0.1:$port

# --- token files that are refused -----------------------------------------------------------

run timeout 10 "$SLUICE_BIN/broker" --no-journal --token-file "$SLUICE_DIR/open"
is "$RC" 1 "broker with a token file of mode 0644: exit 1"
like "$ERR" "mode 644.*chmod 600" "... saying the mode is wrong and what to do"
ok "... and no socket was made" test ! -e "$SLUICE_DIR/broker.ipc"
: >"$SLUICE_DIR/empty"
chmod 600 "$SLUICE_DIR/empty"
run timeout 10 "$SLUICE_BIN/broker" --no-journal --token-file "$SLUICE_DIR/empty"
is "$RC" 1 "broker with an empty token file: exit 1"
like "$ERR" "is empty" "... saying it is empty"
run timeout 10 "$SLUICE_BIN/broker" --no-journal --token-file "$SLUICE_DIR/none"
is "$RC" 1 "broker with a token file that does not exist: exit 1"
for prog in router worker-pool; do
    run timeout 10 "$SLUICE_BIN/$prog" --token-file "$SLUICE_DIR/open"
    is "$RC" 1 "$prog with a token file of mode 0644: exit 1"
    like "$ERR" "mode 644" "... saying why"
done
run timeout 10 "$SLUICE_BIN/worker" --handler noop --token-file "$SLUICE_DIR/open"
is "$RC" 2 "worker with a token file of mode 0644: exit 2 (worker-pool does not restart it)"
run ctl --token-file "$SLUICE_DIR/open" ping
is "$RC" 2 "ctl with a token file of mode 0644: exit 2, nothing sent"
SLUICE_TOKEN_FILE=$SLUICE_DIR/open run ctl ping
is "$RC" 2 "... the same through SLUICE_TOKEN_FILE"

# --- a broker with a token, on TCP ----------------------------------------------------------

# start_broker pings with ctl: the token reaches it through the environment.
SLUICE_TOKEN_FILE=$tok start_broker --url "$turl" --token-file "$tok"
ctlt() {
    "$SLUICE_BIN/ctl" --url "$turl" --token-file "$tok" "$@"
}
snap() {
    local s
    s=$(ctlt stats --json) || return 1
    json "$s" '[d["broker"][k] for k in ("jobs", "bytes", "next_id")] + [[g["name"], g["count"]] for g in d["groups"]] + [[q["name"], q["ready"]] for q in d["queues"]]'
}
before=$(snap)
is "$before" '[0, 0, 1, ["default", 0]]' "the broker answers stats with the token"

run ctl --url "$turl" push bob hello
is "$RC" 1 "ctl push without a token: exit 1"
like "$ERR" "unauthorized" "... err unauthorized"
run ctl --url "$turl" --token-file "$wrong" push bob hello
is "$RC" 1 "ctl push with a wrong token: exit 1"
like "$ERR" "unauthorized: wrong token" "... err unauthorized, 'wrong token'"
run ctl --url "$turl" --token-file "$wrong" queues create sneaky
is "$RC" 1 "ctl queues create with a wrong token: exit 1"
run ctl --url "$turl" stats
is "$RC" 1 "ctl stats without a token: exit 1 (nothing is readable either)"
run "$send" "$turl" --hex "$(mp_op push group str bob payloads hex "$(mp_array 1)$(mp_bin x)" token str "${secret}X")"
is "$(json "$OUT" '[d["ok"], d["err"]]')" '[false, "unauthorized"]' "a raw push whose token has one byte more: unauthorized"
run "$send" "$turl" --hex "$(mp_op no.such.op token str nope)"
is "$(json "$OUT" 'd["err"]')" unauthorized "a raw unknown op with a wrong token: unauthorized (no hint about ops)"
is "$(snap)" "$before" "the refused requests changed nothing: no job, no id, no group, no queue"
run ctlt stats --json
is "$(json "$OUT" '[d["broker"]["auth"], d["broker"]["unauthorized"]]')" '[true, 6]' \
    "stats: auth true, 6 requests refused as unauthorized"

run "$send" "$turl" --hex "$(mp_op push group str bob payloads hex "$(mp_array 1)$(mp_bin x)" token str "$secret")"
is "$(json "$OUT" '[d["ok"], d["n"]]')" '[true, 1]' "a raw push with the token is stored"
run ctlt push bob hello -s 500
is "$RC" 0 "ctl push with --token-file: exit 0"
SLUICE_TOKEN_FILE=$tok run ctl --url "$turl" push carol hi -s 100
is "$RC" 0 "ctl push with SLUICE_TOKEN_FILE: exit 0"
is "$(json "$(ctlt stats --json)" 'd["broker"]["jobs"]')" 601 "the broker holds the 601 jobs"

# worker-pool and its workers over TCP, with the token: they reserve and ack everything.
spawn pool "$SLUICE_BIN/worker-pool" -n 2 --handler noop --url "$turl" --token-file "$tok"
pool=$SPAWNED_PID
_all_done() {
    [ "$(json "$(ctlt stats --json)" '[d["broker"]["jobs"], sum(q["done"] for q in d["queues"])]')" = '[0, 601]' ]
}
ok "worker-pool's workers, with the token, reserve and ack all 601 jobs over TCP" wait_for 30 _all_done
ok "worker-pool's control socket pool.ipc exists" wait_for 10 test -S "$SLUICE_DIR/pool.ipc"
is "$(find "$SLUICE_DIR" -maxdepth 1 -type s -printf '%f:%m ' | tr ' ' '\n' | sort | tr '\n' ' ')" \
    "events.ipc:600 pool.ipc:600 " "the runtime directory's sockets (events.ipc, pool.ipc) are owner-only (0600)"
run ctl --token-file "$tok" workers --json
is "$RC" 0 "ctl workers with the token: worker-pool answers"
is "$(json "$OUT" 'len(d["workers"])')" 2 "... 2 workers"
run ctl workers
is "$RC" 1 "ctl workers without the token: exit 1"
like "$ERR" "unauthorized" "... worker-pool's control socket says unauthorized"
run ctl --token-file "$tok" scale 1
is "$RC" 0 "ctl scale 1 with the token: exit 0"
run ctl --token-file "$wrong" scale 5
like "$ERR" "unauthorized" "ctl scale 5 with a wrong token: unauthorized"
_one_worker() {
    [ "$(json "$(ctl --token-file "$tok" workers --json)" '[d["n"], len(d["workers"])]')" = '[1, 1]' ]
}
ok "... and the pool keeps 1 worker (the refused scale changed nothing)" wait_for 20 _one_worker
stop_pgrp "$pool" 20
is "$?" 0 "worker-pool exits 0 on SIGTERM"
retire_pgrp "$pool" pool

# A worker with a wrong token: refused, it stops with exit 2 and takes no job.
ctlt push dave x >/dev/null
run timeout 20 "$SLUICE_BIN/worker" --handler noop --url "$turl" --token-file "$wrong"
is "$RC" 2 "a worker with a wrong token exits 2"
like "$ERR" "unauthorized" "... logging unauthorized"
is "$(json "$(ctlt stats --json)" '[d["broker"]["jobs"], [g["ready"] for g in d["groups"] if g["name"] == "dave"]]')" '[1, [1]]' \
    "... and dave's job is still ready"

# The router over TCP with the token: one round takes the lease and moves a heavy group.
ctlt push heavy x -s 50 >/dev/null
run timeout 20 "$SLUICE_BIN/router" --url "$turl" --token-file "$wrong" --once --high 10 --low 2
is "$RC" 1 "router --once with a wrong token: exit 1 (could not run its round)"
is "$(json "$(ctlt stats --json)" '[q["name"] for q in d["queues"]]')" '["default"]' "... and created no queue"
# A router daemon with a wrong token: it keeps trying, and says why once.
refused0=$(json "$(ctlt stats --json)" 'd["broker"]["unauthorized"]')
spawn router-wrong "$SLUICE_BIN/router" --url "$turl" --token-file "$wrong" --name wrong
rw=$SPAWNED_PID
_retried() {
    [ "$(json "$(ctlt stats --json)" 'd["broker"]["unauthorized"]')" -ge $((refused0 + 5)) ]
}
ok "a router daemon with a wrong token keeps trying (5 refusals counted)" wait_for 20 _retried
is "$(grep -c 'event=leader.acquire_failed.*err=unauthorized' "$SLUICE_DIR/router-wrong.log")" 1 \
    "... and logs the refusal once, not at every try"
stop_pgrp "$rw"
retire_pgrp "$rw" router-wrong
run timeout 20 "$SLUICE_BIN/router" --url "$turl" --token-file "$tok" --once --high 10 --low 2
is "$RC" 0 "router --once with the token: exit 0"
run ctlt routes --json
is "$(json "$OUT" '[[r["group"], r["queue"]] for r in d["routes"]]')" '[["heavy", "group.heavy"]]' \
    "... it routed heavy to group.heavy"

# --- the same broker's token on IPC ----------------------------------------------------------

stop_broker
retire_pgrp "$BROKER_PID" broker-tcp
# This one keeps a journal, so that the search for the token below covers it too.
spawn broker-ipc "$SLUICE_BIN/broker" --token-file "$tok" --data-dir "$SLUICE_DIR/data"
BROKER_PID=$SPAWNED_PID
_ipc_up() {
    ! alive "$BROKER_PID" || SLUICE_TOKEN_FILE=$tok ctl --timeout 250 ping
}
wait_for 10 _ipc_up
ok "a broker with a journal and the token answers on IPC" alive "$BROKER_PID"
run ctl push bob x
is "$RC" 1 "on IPC too: ctl push without the token: exit 1"
like "$ERR" "unauthorized" "... unauthorized"
SLUICE_TOKEN_FILE=$tok run ctl push bob x
is "$RC" 0 "on IPC, with the token: exit 0"

# --- the token is never written anywhere -----------------------------------------------------

SLUICE_TOKEN_FILE=$tok ctl queues create q1 >/dev/null
SLUICE_TOKEN_FILE=$tok ctl routes set bob q1 >/dev/null
stop_broker
retire_pgrp "$BROKER_PID" broker-ipc
ok "the journal was written" test -s "$SLUICE_DIR/data/0000000000000001.seg"
leaks=$(grep -rlF --exclude=token --exclude=open -e "$secret" "$SLUICE_DIR" 2>/dev/null)
is "$leaks" "" "the token appears in no log, no saved output and not in the journal"
ok "every log was looked at (there are some)" test -s "$SLUICE_DIR/broker-tcp.log" -a -s "$SLUICE_DIR/pool.log"

done_testing
