#!/usr/bin/env bash
# A stop that the exit deadline (common/deadline.h) has to force is visible: the broker and
# worker-pool then exit 70, not the status of a clean stop, log event=stop.forced and remove
# their socket files. ctl, the router and the worker close no nng socket on the way out (their
# requests go over plain sockets, common/spconn.h and common/spreq.h; an events subscriber is
# left to the end of the process), so nothing of theirs hangs.
#
# The hang is made with a preloaded nng_close and nng_ctx_close that block for good once the file
# $SL_HANG_CLOSE exists (created after each program has started, so that what it closes while
# starting closes for real). Every program here is stopped by force on purpose: allow_forced.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || skip_all "no C compiler ($cc) to build the nng_close shim"

shim=$SLUICE_DIR/hangclose.so
cat >"$SLUICE_DIR/hangclose.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct { uint32_t id; } nng_socket;
typedef struct { uint32_t id; } nng_ctx;

static void
hang_if_asked(void)
{
    const char *f = getenv("SL_HANG_CLOSE");
    if (f != NULL && access(f, F_OK) == 0) {
        for (;;) {
            pause();
        }
    }
}

int
nng_close(nng_socket s)
{
    hang_if_asked();
    int (*real)(nng_socket) = (int (*)(nng_socket))dlsym(RTLD_NEXT, "nng_close");
    return real(s);
}

int
nng_ctx_close(nng_ctx c)
{
    hang_if_asked();
    int (*real)(nng_ctx) = (int (*)(nng_ctx))dlsym(RTLD_NEXT, "nng_ctx_close");
    return real(c);
}
EOF
"$cc" -shared -fPIC -O1 -o "$shim" "$SLUICE_DIR/hangclose.c" -ldl ||
    bail_out "cannot build the nng_close shim"

hang=$SLUICE_DIR/hang
# A sanitizer runtime wants to come first among the libraries; the shim comes before it.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
hung() {
    env LD_PRELOAD="$shim" SL_HANG_CLOSE="$hang" "$@"
}

allow_forced broker broker-forced pool

# The broker (its journal in SLUICE_DIR): forced after the journal is closed.
spawn broker env LD_PRELOAD="$shim" SL_HANG_CLOSE="$hang" "$SLUICE_BIN/broker" \
    --data-dir "$SLUICE_DIR/data"
BROKER_PID=$SPAWNED_PID
ok "a broker with the shim answers" wait_for 10 ctl --timeout 250 ping
: >"$hang"
stop_pgrp "$BROKER_PID" 10
is "$?" 70 "broker: a stop forced by its exit deadline exits 70"
ok "broker: it logs event=stop.forced" grep -q 'event=stop\.forced' "$SLUICE_DIR/broker.log"
ok "broker: its socket file is removed" test ! -e "$SLUICE_DIR/broker.ipc"
rm -f "$hang"
retire_pgrp "$BROKER_PID" broker-forced

# The others need a broker that stops cleanly.
start_broker
ok "a push for the worker" ctl push alice a1

# ctl: requests go over plain sockets (common/spconn.h) and the events subscriber is left to
# the end of the process (evsub_leave), so no nng close can hold a finished command: with every
# nng close hanging, ctl ping and ctl events end at once with their status, nothing forced.
: >"$hang"
elapsed_ms hung "$SLUICE_BIN/ctl" ping
is "$RC" 0 "ctl ping: status 0 with nng's close hanging"
cmp_num "$ELAPSED_MS" -lt 1000 "ctl ping: it ends at once (${ELAPSED_MS} ms)"
hung "$SLUICE_BIN/ctl" events --count 1 >"$SLUICE_DIR/ev.out" 2>"$SLUICE_DIR/ev.err" &
evpid=$!
_evented() {
    ctl queues create "fq$RANDOM" >/dev/null 2>&1
    [ -s "$SLUICE_DIR/ev.out" ]
}
ok "ctl events: it gets an event" wait_for 10 _evented
_ev_gone() { ! kill -0 "$evpid" 2>/dev/null; }
ok "ctl events: it ends at once after it" wait_for 2 _ev_gone
wait "$evpid"
is "$?" 0 "ctl events: status 0"
unlike "$(cat "$SLUICE_DIR/ev.err")" 'stop\.forced' "ctl events: nothing forced"
rm -f "$hang"

# The router talks to the broker over a plain socket and leaves its events subscriber to the
# end of the process: with nng's close hanging, it still stops cleanly.
spawn router env LD_PRELOAD="$shim" SL_HANG_CLOSE="$hang" "$SLUICE_BIN/router" --name r1
ROUTER=$SPAWNED_PID
ok "the router takes the lease" wait_for 10 grep -q 'event=leader.acquire' "$SLUICE_DIR/router.log"
: >"$hang"
stop_pgrp "$ROUTER" 10
is "$?" 0 "router: it stops cleanly (0) with nng's close hanging"
is "$(grep -c 'event=stop\.forced' "$SLUICE_DIR/router.log")" 0 "router: nothing forced"
ok "router: the lease was given up" grep -q 'event=leader.release' "$SLUICE_DIR/router.log"
rm -f "$hang"

# The worker's connection and its heartbeat's are one plain socket (common/spreq.h): with
# nng's close hanging, it still stops cleanly.
spawn worker env LD_PRELOAD="$shim" SL_HANG_CLOSE="$hang" "$SLUICE_BIN/worker" --name w1 \
    --handler noop
WORKER=$SPAWNED_PID
_drained() {
    run ctl stats --json
    [ "$(json "$OUT" 'd["broker"]["jobs"]')" = 0 ]
}
ok "the worker does the job" wait_for 10 _drained
: >"$hang"
stop_pgrp "$WORKER" 10
is "$?" 0 "worker: it stops cleanly (0) with nng's close hanging"
is "$(grep -c 'event=stop\.forced' "$SLUICE_DIR/worker.log")" 0 "worker: nothing forced"
rm -f "$hang"

spawn pool env LD_PRELOAD="$shim" SL_HANG_CLOSE="$hang" "$SLUICE_BIN/worker-pool" -n 1 \
    --handler noop
POOL=$SPAWNED_PID
ok "the pool's control socket is there" wait_for 10 test -S "$SLUICE_DIR/pool.ipc"
: >"$hang"
stop_pgrp "$POOL" 15
is "$?" 70 "worker-pool: a stop forced by its exit deadline exits 70"
ok "worker-pool: it logs event=stop.forced" grep -q 'event=stop\.forced' "$SLUICE_DIR/pool.log"
ok "worker-pool: its socket file is removed" test ! -e "$SLUICE_DIR/pool.ipc"
rm -f "$hang"

done_testing
