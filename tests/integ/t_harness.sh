#!/usr/bin/env bash
# The test harness itself (lib.sh): private SLUICE_DIR, wait_for deadlines, and that a script's
# exit kills every process group it started, grandchildren included, and removes SLUICE_DIR.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

lib=$(dirname "$0")/lib.sh

like "$SLUICE_DIR" '^/.+/sl\.[A-Za-z0-9]+$' "SLUICE_DIR is a private temporary directory"
is "$(stat -c %a "$SLUICE_DIR")" 700 "SLUICE_DIR has mode 0700"

elapsed_ms wait_for 0.3 false
is "$RC" 1 "wait_for fails when the condition never holds"
cmp_num "$ELAPSED_MS" -ge 300 "wait_for waits until its deadline"
cmp_num "$ELAPSED_MS" -lt 2000 "wait_for gives up soon after its deadline"

marker=$SLUICE_DIR/marker
( sleep 0.2; : >"$marker" ) &
elapsed_ms wait_for 5 test -e "$marker"
is "$RC" 0 "wait_for succeeds once the condition holds"
cmp_num "$ELAPSED_MS" -lt 2000 "wait_for returns soon after the condition holds"

# A child script that starts a process group with a grandchild, a process that ignores TERM,
# then exits: both must be gone afterwards, and its SLUICE_DIR removed.
_now_us
t0=$REPLY
run bash -c '
. "$1"
spawn sleeper bash -c "sleep 1000 & wait"
echo "dir=$SLUICE_DIR pg=$SPAWNED_PID"
spawn stubborn bash -c "trap \"\" TERM; : >\"\$SLUICE_DIR/ready\"; while :; do sleep 0.05; done"
echo "pg=$SPAWNED_PID"
wait_for 5 test -e "$SLUICE_DIR/ready" || exit 9
pass "started"
done_testing
' child "$lib"
_now_us
child_ms=$(((REPLY - t0) / 1000))
is "$RC" 0 "a passing script exits 0 through cleanup"
cmp_num "$child_ms" -ge 3000 "a process group that ignores TERM gets KILL after the 3 s deadline"
child_dir=$(sed -n 's/^dir=\([^ ]*\) .*/\1/p' <<<"$OUT")
pgs=$(sed -n 's/.*pg=\([0-9]*\)$/\1/p' <<<"$OUT")
isnt "$child_dir" "" "the child reported its SLUICE_DIR"
ok "the child's SLUICE_DIR is removed at exit" test ! -e "$child_dir"
n=0
for pg in $pgs; do
    _pgrp_alive "$pg" && n=$((n + 1))
done
is "$(wc -w <<<"$pgs")" 2 "the child started two process groups"
is "$n" 0 "every process group, grandchildren and TERM-ignorers included, is gone at exit"

run bash -c '. "$1"; fail "a failing check"; done_testing' child "$lib"
is "$RC" 1 "done_testing exits 1 after a failed check"
like "$OUT" 'not ok 1 - a failing check' "a failed check prints not ok"

run bash -c '. "$1"; done_testing' child "$lib"
is "$RC" 1 "done_testing exits 1 when nothing was tested"

run bash -c '. "$1"; ok "true passes" true; ok_status 3 "exit 3" bash -c "exit 3"; done_testing' child "$lib"
is "$RC" 0 "done_testing exits 0 when every check passed"
like "$OUT" $'ok 1 - true passes\nok 2 - exit 3\n1\\.\\.2' "ok and ok_status print numbered TAP lines and the plan"

run bash -c '. "$1"; pass "one"; exit 0' child "$lib"
is "$RC" 1 "a script that exits 0 before done_testing fails"

# A program stopped by force fails the script, whether the script waits for it (stop_pgrp)
# or the teardown does, whether its status (70) or its log (event=stop.forced) shows it; a
# script that forces a stop on purpose says so with allow_forced.
forced='trap "echo \"level=warn event=stop.forced after_ms=2000\"; exit 70" TERM; : >"$SLUICE_DIR/$0.up"; while :; do sleep 0.05; done'
run bash -c '
. "$1"
spawn prog bash -c "$2" prog
wait_for 5 test -e "$SLUICE_DIR/prog.up" || exit 9
stop_pgrp "$SPAWNED_PID"
is "$?" 70 "the status comes back"
done_testing
' child "$lib" "$forced"
is "$RC" 1 "a script whose program exited 70 when stopped fails"
like "$OUT" 'not ok [0-9]+ - prog was stopped by force' "it says which program was stopped by force"
like "$OUT" $'ok 2 - the status comes back\n1\\.\\.2' "the forced stop is a check of its own, before the plan"

run bash -c '
. "$1"
spawn prog bash -c "$2" prog
wait_for 5 test -e "$SLUICE_DIR/prog.up" || exit 9
pass "started"
done_testing
' child "$lib" "$forced"
is "$RC" 1 "a program stopped by force at the teardown fails the script"
like "$OUT" 'not ok 2 - prog was stopped by force' "the teardown says which program"

run bash -c '
. "$1"
spawn prog bash -c "trap \"echo level=warn event=stop.forced; exit 0\" TERM; : >\"\$SLUICE_DIR/up\"; while :; do sleep 0.05; done"
wait_for 5 test -e "$SLUICE_DIR/up" || exit 9
pass "started"
done_testing
' child "$lib"
is "$RC" 1 "a program that logged event=stop.forced fails the script whatever its status"

run bash -c '
. "$1"
allow_forced prog
spawn prog bash -c "$2" prog
wait_for 5 test -e "$SLUICE_DIR/prog.up" || exit 9
stop_pgrp "$SPAWNED_PID"
is "$?" 70 "the status comes back"
done_testing
' child "$lib" "$forced"
is "$RC" 0 "allow_forced: a script that forces a stop on purpose passes"

run bash -c '
. "$1"
spawn prog bash -c "trap \"exit 0\" TERM; : >\"\$SLUICE_DIR/up\"; while :; do sleep 0.05; done"
wait_for 5 test -e "$SLUICE_DIR/up" || exit 9
stop_pgrp "$SPAWNED_PID"
is "$?" 0 "a clean stop"
done_testing
' child "$lib"
is "$RC" 0 "a program that stops by itself passes"

ok "json reads a field" test "$(json '{"a": {"b": [1, 2]}}' 'd["a"]["b"][1]')" = 2
ok_status 1 "json fails on a document that is not JSON" json 'nope' 'd'

done_testing
