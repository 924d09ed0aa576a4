# Sourced by every tests/integ/t_*.sh. Bash only.
#
#   . "$(dirname "$0")/lib.sh"
#   start_broker
#   ok "ping answers" ctl ping
#   run ctl stats --json
#   is "$(json "$OUT" 'd["broker"]["jobs"]')" 0 "a new broker holds no jobs"
#   done_testing
#
# What sourcing it does:
# - SLUICE_DIR: a private directory (mktemp -d), exported, so every program started here uses
#   its own sockets; SLUICE_URL and the MySQL variables are unset so that nothing from the
#   caller's environment leaks in.
# - SLUICE_RETRY_BASE=0: the brokers started here retry a failed job at once, as the scripts
#   that count attempts, crashes and dead jobs expect; t_retry unsets it to test the backoff.
# - SLUICE_BIN (broker, ctl) and SLUICE_TESTBIN (sl-send, ...) default to this tree's bin/
#   and build/rel/tests/ when the script is run by hand.
# - At done_testing (or, without it, on EXIT and on INT/TERM, which exit): every process group
#   started with spawn/start_broker gets TERM, then KILL if still alive after 3 s, and
#   SLUICE_DIR is removed. When a test failed, the tail of each started process's log is
#   printed as "# " lines.
# - A program stopped by force fails the script: one whose exit status, where a script waits
#   for it (stop_pgrp, stop_broker, the teardown), is 70 (DEADLINE_EXIT_FORCED of
#   common/deadline.h), or whose log (or, for a command run by run/ok/ok_status, its output)
#   has event=stop.forced gets a check "not ok N - NAME was stopped by force". A script that
#   forces a stop on purpose says so first: allow_forced NAME... (the spawn names, or the
#   command's name, e.g. ctl).
#
# TAP: each check prints "ok N - NAME" or "not ok N - NAME" and, on failure, "# " lines that
# say why; done_testing prints the plan "1..N" and exits 1 if anything failed or nothing ran.
# Synchronise with wait_for (polls with a deadline), never with a bare sleep.

# OUT, ERR, RC, ELAPSED_MS, SPAWNED_PID and BROKER_PID are results for the sourcing script.
# shellcheck disable=SC2034
set -u

_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_root_dir=$(cd "$_lib_dir/../.." && pwd)
: "${SLUICE_BIN:=$_root_dir/bin}"
: "${SLUICE_TESTBIN:=$_root_dir/build/rel/tests}"
export SLUICE_BIN SLUICE_TESTBIN

unset SLUICE_URL SLUICE_DB DB_HOST DB_NAME DB_USER DB_PASSWORD
unset SLUICE_RETRY_MAX SLUICE_RETRY_JITTER
export SLUICE_RETRY_BASE=0
# Keep the path short: a Unix socket path has at most 107 bytes.
SLUICE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sl.XXXXXX") || {
    echo "Bail out! cannot create a temporary directory"
    exit 1
}
chmod 0700 "$SLUICE_DIR"
export SLUICE_DIR

# python3 through a version manager's shim (pyenv's is a shell script that runs `pyenv exec`)
# takes about a second to start on the CI machine, against 0.1 s for the interpreter itself,
# and a script starts python3 up to a few hundred times (json, the checks' helpers). The
# interpreter the shim runs is found once and linked as python3 in a directory put first on
# PATH, for this script and everything it starts: the same Python, without the shim.
_py=$(command -v python3 2>/dev/null)
if [ -n "$_py" ] && [ "$(head -c 2 "$_py" 2>/dev/null)" = '#!' ]; then
    _py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
    if [ -n "$_py" ] && [ -x "$_py" ] && [ "$(head -c 2 "$_py" 2>/dev/null)" != '#!' ] &&
        mkdir "$SLUICE_DIR/.python" && ln -s "$_py" "$SLUICE_DIR/.python/python3"; then
        export PATH=$SLUICE_DIR/.python:$PATH
    fi
fi
unset _py

_tap_n=0
_tap_fail=0
_tap_t0=${EPOCHREALTIME//[.,]/}
_tap_done=0
_pgids=()        # process groups started here (each leader's pid is its pgid)
_pg_names=()     # the name given to each, for its log file $SLUICE_DIR/NAME.log
_forced_allowed=" "  # names that may be stopped by force (allow_forced)
_forced_seen=" "     # names already reported as stopped by force
_torn_down=0     # done_testing has stopped every process group
FORCED_EXIT=70   # the status of a program stopped by its exit deadline (common/deadline.h)

# --- processes ---------------------------------------------------------------------------

# Is any non-zombie process left in process group $1?
_pgrp_alive() {
    local pg=$1 f line
    local -a fields
    for f in /proc/[0-9]*/stat; do
        { read -r line <"$f"; } 2>/dev/null || continue
        read -r -a fields <<<"${line##*) }"     # after "pid (comm) ": state ppid pgrp ...
        if [ "${fields[2]:-}" = "$pg" ] && [ "${fields[0]}" != Z ] && _ours "${f%/stat}"; then
            return 0
        fi
    done
    return 1
}

# _ours /proc/PID: was the process started by this script? Everything spawn starts inherits
# this script's private SLUICE_DIR. Process ids are reused (pid_max may be 32768), so a group
# recorded long ago may by now be somebody else's: it must never get our signals.
_ours() {
    _env_has "$1/environ" "SLUICE_DIR=$SLUICE_DIR"
}

# _env_has FILE ENTRY: the NUL-separated environment FILE (/proc/PID/environ) has exactly the
# entry ENTRY (VAR=VALUE). Read by bash itself: a scan of /proc that started two programs per
# process (tr and grep) took 2 s on a loaded CI machine, and the tests poll such scans.
_env_has() {
    local IFS=$'\n'
    local -a env=()
    mapfile -d '' -t env 2>/dev/null <"$1" || return 1
    [[ $'\n'"${env[*]}"$'\n' == *$'\n'"$2"$'\n'* ]]
}

# marked_by VAR TAG: pids of live (not zombie) processes whose environment has
# VAR=TAG:$SLUICE_DIR, space-separated. A test exports such a mark before starting what it
# wants to find again, whatever session or group its descendants end up in.
marked_by() {
    local f pid line state
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}
        pid=${pid%/environ}
        _env_has "$f" "$1=$2:$SLUICE_DIR" || continue
        { read -r line <"/proc/$pid/stat"; } 2>/dev/null || continue
        state=${line##*) }
        [ "${state%% *}" = Z ] && continue
        printf '%s ' "$pid"
    done
}

# _signal_pgrp SIG PGID: signals the group if it is still one of ours.
_signal_pgrp() {
    _pgrp_alive "$2" && kill "-$1" -- "-$2" 2>/dev/null
}

# spawn NAME CMD [ARGS...]: starts CMD in the background in a process group of its own, stdout
# and stderr to $SLUICE_DIR/NAME.log; sets SPAWNED_PID (= its process group id). The group is
# killed at exit.
spawn() {
    local name=$1
    shift
    setsid "$@" </dev/null >"$SLUICE_DIR/$name.log" 2>&1 &
    SPAWNED_PID=$!
    _pgids+=("$SPAWNED_PID")
    _pg_names+=("$name")
    # Tell tests/run too, which kills what is left should this shell be killed outright.
    if [ -n "${SLUICE_TEST_PGIDS:-}" ]; then
        echo "$SPAWNED_PID" >>"$SLUICE_TEST_PGIDS"
    fi
}

# stop_pgrp PGID [DEADLINE_S]: TERM to the group, KILL after the deadline (default 3 s); waits
# until no process of the group is left. Returns the leader's exit status when it was our child.
# A leader stopped by force fails a check (see allow_forced).
stop_pgrp() {
    local pg=$1 deadline=${2:-3} rc=0 i
    _signal_pgrp TERM "$pg"
    if ! wait_for "$deadline" _pgrp_dead "$pg"; then
        _signal_pgrp KILL "$pg"
        wait_for 5 _pgrp_dead "$pg"
    fi
    wait "$pg" 2>/dev/null
    rc=$?
    for i in "${!_pgids[@]}"; do
        if [ "${_pgids[i]}" = "$pg" ]; then
            _forced_check "${_pg_names[i]}" "$rc" "$SLUICE_DIR/${_pg_names[i]}.log"
        fi
    done
    return "$rc"
}

# allow_forced NAME...: the script stops NAME (a spawn name, or a command's name such as ctl)
# by force on purpose: its forced stop is not a failure.
allow_forced() {
    _forced_allowed+="$* "
}

# _forced_check NAME STATUS FILE: fails "NAME was stopped by force" (once per name) when
# STATUS is FORCED_EXIT or FILE has event=stop.forced, unless allow_forced NAME was said.
_forced_check() {
    local name=$1 st=$2 file=$3 line=""
    [[ "$_forced_allowed" == *" $name "* || "$_forced_seen" == *" $name "* ]] && return 0
    [ -f "$file" ] && line=$(grep -m 1 -a 'event=stop\.forced' "$file")
    if [ "$st" = "$FORCED_EXIT" ] || [ -n "$line" ]; then
        _forced_seen+="$name "
        fail "$name was stopped by force" "exit status: ${st:-not known}" \
            "${line:-(no event=stop.forced line in $file)}" \
            "its exit deadline ended it: closing its sockets or joining its threads hung"
    fi
    return 0
}

# _stop_all: TERM every process group still listed, then waits for each (KILL after 3 s),
# then checks every program started here for a forced stop.
_stop_all() {
    local i pg st
    local -a status=()
    # TERM every group first, then wait for all of them, so the deadlines run concurrently.
    for pg in "${_pgids[@]}"; do
        [ -n "$pg" ] && _signal_pgrp TERM "$pg"
    done
    for i in "${!_pgids[@]}"; do
        pg=${_pgids[i]}
        [ -n "$pg" ] || continue
        if ! wait_for 3 _pgrp_dead "$pg"; then
            echo "# process group $pg ignored TERM for 3 s: KILL"
            _signal_pgrp KILL "$pg"
            wait_for 5 _pgrp_dead "$pg"
        fi
        wait "$pg" 2>/dev/null
        st=$?
        # 127: not our child any more (already waited for): the status is not known.
        [ "$st" = 127 ] && st=""
        status[i]=$st
        _pgids[i]=
    done
    for i in "${!_pg_names[@]}"; do
        _forced_check "${_pg_names[i]}" "${status[i]:-}" "$SLUICE_DIR/${_pg_names[i]}.log"
    done
}

_pgrp_dead() {
    ! _pgrp_alive "$1"
}

# alive PID: is the process running (and not a zombie)?
alive() {
    local line state
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    state=${line##*) }
    [ "${state%% *}" != Z ]
}

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    if [ "$_tap_done" = 0 ] && [ "$rc" -eq 0 ]; then
        echo "# the script ended without done_testing: tests after that point never ran"
        rc=1
    fi
    if [ "$_torn_down" = 0 ]; then
        _torn_down=1
        _stop_all
        [ "$_tap_fail" -gt 0 ] && rc=1
    fi
    if [ "$_tap_fail" -gt 0 ] || [ "$rc" -ne 0 ]; then
        for i in "${!_pg_names[@]}"; do
            local log=$SLUICE_DIR/${_pg_names[$i]}.log
            if [ -s "$log" ]; then
                echo "# --- last lines of ${_pg_names[$i]}.log ---"
                tail -n 20 "$log" | sed 's/^/#   /'
            fi
        done
    fi
    if [ -n "${SLUICE_KEEP_LOGS:-}" ]; then cp "$SLUICE_DIR"/*.log "$SLUICE_KEEP_LOGS"/ 2>/dev/null; fi
    rm -rf "$SLUICE_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --- waiting -----------------------------------------------------------------------------

_now_us() {
    REPLY=${EPOCHREALTIME//[.,]/}
}

# wait_for DEADLINE_S CMD [ARGS...]: runs CMD (output discarded) every ~20 ms until it
# succeeds (returns 0) or DEADLINE_S seconds (may be fractional, e.g. 0.5) have passed
# (returns 1). CMD runs at least once.
wait_for() {
    local secs=$1 whole frac end
    shift
    whole=${secs%%.*}
    frac=
    [[ "$secs" == *.* ]] && frac=${secs#*.}
    frac=${frac}000000
    frac=${frac:0:6}
    _now_us
    end=$((REPLY + ${whole:-0} * 1000000 + 10#$frac))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        _now_us
        [ "$REPLY" -ge "$end" ] && return 1
        sleep 0.02
    done
}

# --- TAP ---------------------------------------------------------------------------------

# diag MSG...: each argument, and each line of it, as a "# " line.
diag() {
    local arg line
    for arg in "$@"; do
        while IFS= read -r line; do
            printf '# %s\n' "$line"
        done <<<"$arg"
    done
}

pass() {
    _tap_n=$((_tap_n + 1))
    echo "ok $_tap_n - $1"
}

# fail NAME [WHY...]: a failed check, with the reasons as diagnostics.
fail() {
    _tap_n=$((_tap_n + 1))
    _tap_fail=$((_tap_fail + 1))
    echo "not ok $_tap_n - $1"
    shift
    [ "$#" -gt 0 ] && diag "$@"
    _now_us
    diag "at $(((REPLY - _tap_t0) / 1000000)) s into the script"
    return 1
}

# ok NAME CMD [ARGS...]: passes when CMD exits 0; on failure shows its status and the last
# lines of its output.
ok() {
    local name=$1 rc t
    shift
    _now_us
    t=$REPLY
    "$@" >"$SLUICE_DIR/.ok.out" 2>&1
    rc=$?
    _now_us
    # A slow check is named, so a script that ran out of time says where the time went.
    [ $((REPLY - t)) -ge 5000000 ] && diag "slow: \"$name\" took $(((REPLY - t) / 1000000)) s"
    if [ "$rc" -eq 0 ]; then
        pass "$name"
    else
        fail "$name" "command: $*" "exit status: $rc" "$(tail -n 20 "$SLUICE_DIR/.ok.out")"
    fi
    _forced_out "$1" "$SLUICE_DIR/.ok.out"
}

# ok_status STATUS NAME CMD [ARGS...]: passes when CMD exits with exactly STATUS.
ok_status() {
    local want=$1 name=$2 rc
    shift 2
    "$@" >"$SLUICE_DIR/.ok.out" 2>&1
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        pass "$name"
    else
        fail "$name" "command: $*" "exit status: $rc, expected $want" \
            "$(tail -n 20 "$SLUICE_DIR/.ok.out")"
    fi
    _forced_out "$1" "$SLUICE_DIR/.ok.out"
}

# _forced_out CMD FILE: a program of sluice that logged event=stop.forced in FILE (its
# output) fails a check, as a spawned one does (ctl keeps its command's status when only its
# close hung). Other commands (grep, cat) may well print such a line from a log they read.
_forced_out() {
    local name=${1##*/}
    case $name in ctl | broker | worker | worker-pool | router) ;; *) return 0 ;; esac
    grep -q -a 'event=stop\.forced' "$2" 2>/dev/null || return 0
    [[ "$_forced_allowed" == *" $name "* ]] && return 0
    fail "$name was stopped by force" "command: $name" "$(grep -m 1 -a 'event=stop\.forced' "$2")"
    return 0
}

# is GOT WANT NAME: string equality.
is() {
    if [ "$1" = "$2" ]; then
        pass "$3"
    else
        fail "$3" "got:      '$1'" "expected: '$2'"
    fi
}

# isnt GOT UNWANTED NAME
isnt() {
    if [ "$1" != "$2" ]; then
        pass "$3"
    else
        fail "$3" "got '$1', which it must not be"
    fi
}

# like GOT REGEX NAME: bash regex (=~) match.
like() {
    if [[ "$1" =~ $2 ]]; then
        pass "$3"
    else
        fail "$3" "got:         '$1'" "not matching: /$2/"
    fi
}

# unlike GOT REGEX NAME: no bash regex (=~) match.
unlike() {
    if [[ "$1" =~ $2 ]]; then
        fail "$3" "got:         '$1'" "matching: /$2/, which it must not"
    else
        pass "$3"
    fi
}

# cmp_num A OP B NAME: numeric comparison, OP one of -eq -ne -lt -le -gt -ge.
cmp_num() {
    if [[ "$1" =~ ^-?[0-9]+$ ]] && [[ "$3" =~ ^-?[0-9]+$ ]] && test "$1" "$2" "$3"; then
        pass "$4"
    else
        fail "$4" "expected: $1 $2 $3"
    fi
}

# skip_all REASON: nothing here can run on this machine; a plan of 0 tests.
skip_all() {
    echo "1..0 # SKIP $*"
    _tap_done=1
    exit 0
}

# bail_out REASON: stop the script now (a failure).
bail_out() {
    echo "Bail out! $*"
    _tap_fail=$((_tap_fail + 1))
    exit 1
}

done_testing() {
    _tap_done=1
    # What the script started stops now, so that a forced stop counts before the plan.
    _torn_down=1
    _stop_all
    echo "1..$_tap_n"
    if [ "$_tap_n" -eq 0 ]; then
        echo "# no tests ran"
        exit 1
    fi
    echo "# $((_tap_n - _tap_fail)) passed, $_tap_fail failed"
    [ "$_tap_fail" -eq 0 ] || exit 1
    exit 0
}

# --- running commands --------------------------------------------------------------------

# run CMD [ARGS...]: runs CMD to completion; sets OUT (stdout), ERR (stderr) and RC. Always
# returns 0, so a failing command does not end a script run with `set -e`.
run() {
    "$@" >"$SLUICE_DIR/.run.out" 2>"$SLUICE_DIR/.run.err"
    RC=$?
    OUT=$(cat "$SLUICE_DIR/.run.out")
    ERR=$(cat "$SLUICE_DIR/.run.err")
    _forced_out "$1" "$SLUICE_DIR/.run.err"
    return 0
}

# Whether the programs under test are built with the sanitizers (they start and run several
# times slower: a check of a time may allow for that).
sanitized() {
    ! "$SLUICE_BIN/broker" --version 2>/dev/null | grep -qx 'sanitizers: none'
}

# elapsed_ms CMD [ARGS...]: runs CMD (output discarded) and sets ELAPSED_MS and RC.
elapsed_ms() {
    local t0
    _now_us
    t0=$REPLY
    "$@" >/dev/null 2>&1
    RC=$?
    _now_us
    ELAPSED_MS=$(((REPLY - t0) / 1000))
    return 0
}

ctl() {
    "$SLUICE_BIN/ctl" "$@"
}

# json DOC EXPR: evaluates the Python expression EXPR with d = the parsed JSON document DOC
# and prints the result (strings bare, everything else as JSON: true, null, [1, 2]). Fails
# (status 1, message on stderr) if DOC is not JSON or EXPR raises. -I -S: the standard
# library is all it needs; without site and the user's environment python3 starts in half the
# time, and a script calls json up to a few hundred times.
json() {
    python3 -I -S -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError as e:
    sys.exit("json: not a JSON document: %s" % e)
try:
    v = eval(sys.argv[2], {"d": d})
except Exception as e:
    sys.exit("json: %s: %r" % (sys.argv[2], e))
print(v if isinstance(v, str) else json.dumps(v))
' "$1" "$2"
}

# --- the broker --------------------------------------------------------------------------

# start_broker [ARGS...]: starts "$SLUICE_BIN/broker" --no-journal ARGS (log in
# $SLUICE_DIR/broker.log) and waits until `ctl ping` (with the same --url, if ARGS name one)
# answers. Sets BROKER_PID and BROKER_URL (empty for the default address). Bails out if the
# broker exits or does not answer within 10 s.
start_broker() {
    local a prev=""
    BROKER_URL=""
    for a in "$@"; do
        case $prev in --url|-u) BROKER_URL=$a ;; esac
        case $a in --url=*) BROKER_URL=${a#--url=} ;; esac
        prev=$a
    done
    spawn broker "$SLUICE_BIN/broker" --no-journal "$@"
    BROKER_PID=$SPAWNED_PID
    _broker_answered=0
    wait_for 10 _broker_up
    if [ "$_broker_answered" != 1 ]; then
        alive "$BROKER_PID" || bail_out "broker exited during startup (its log is below)"
        bail_out "broker did not answer ping within 10 s (its log is below)"
    fi
}

# Succeeds once the broker answers ping, and also (to stop waiting) once it has died.
_broker_up() {
    local -a url_opt=()
    [ -n "$BROKER_URL" ] && url_opt=(--url "$BROKER_URL")
    # Checked first: ctl itself waits a while for a broker that is not there.
    alive "$BROKER_PID" || return 0
    if "$SLUICE_BIN/ctl" "${url_opt[@]}" --timeout 250 ping; then
        _broker_answered=1
        return 0
    fi
    ! alive "$BROKER_PID"
}

# stop_broker: TERM, and wait (3 s, then KILL) until it has exited; returns its exit status.
stop_broker() {
    stop_pgrp "$BROKER_PID" 3
}
