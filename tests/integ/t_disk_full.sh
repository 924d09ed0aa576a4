#!/usr/bin/env bash
# A full disk under the journal (ENOSPC; t_journal.sh covers EFBIG past a file size limit): the
# data directory is a 2 MB tmpfs. Pushes fill it until one is answered io; stats say journal_ok
# false; further pushes are refused with io and store nothing; the broker keeps answering. The
# tmpfs is then grown (space returns): the journal recovers within seconds, pushes succeed, and
# after a restart every confirmed job is there. Needs root (mount); skipped otherwise.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

[ "$(id -u)" = 0 ] || skip_all "mounting a small tmpfs needs root"
mnt=$SLUICE_DIR/data
mkdir -m 0700 "$mnt"
mount -t tmpfs -o size=2m,mode=0700 sluice-test "$mnt" 2>/dev/null ||
    skip_all "mount -t tmpfs is not permitted here"
# Unmounted before lib.sh's cleanup removes SLUICE_DIR (lazily: a broker still running keeps
# its files open until cleanup stops it).
trap '_rc=$?; umount -l "$mnt" 2>/dev/null; (exit "$_rc"); cleanup' EXIT

send=$SLUICE_TESTBIN/sl-send
url=ipc://$SLUICE_DIR/broker.ipc
n=0

# jbroker: a broker with its journal in the tmpfs (start_broker would add --no-journal).
jbroker() {
    n=$((n + 1))
    spawn "broker$n" "$SLUICE_BIN/broker" --data-dir "$mnt" --fsync always
    BROKER_PID=$SPAWNED_PID
    wait_for 10 _up_or_dead
    alive "$BROKER_PID" || bail_out "the broker exited during start-up (broker$n.log below)"
}
_up_or_dead() {
    ! alive "$BROKER_PID" || ctl --timeout 250 ping
}
sj() {
    json "$(ctl stats --json)" "$1"
}

jbroker
pay=$(printf 'k%.0s' $(seq 1 1000))
run ctl push filler "$pay" -s 10000 --batch 50
is "$RC" 1 "pushing 10 MB of 1 KB jobs into a 2 MB journal: exit 1"
like "$ERR" "(^|[^a-z])io([^a-z]|$)" "... the error is io"
confirmed=$(sed -n 's/.*pushed \([0-9]*\) jobs to filler before the error.*/\1/p' <<<"$ERR")
[ -n "$confirmed" ] || confirmed=0
diag "ctl: $ERR"
cmp_num "$confirmed" -ge 500 "hundreds of jobs were confirmed before the disk was full ($confirmed)"
like "$(grep -m1 'event=journal.write_failed' "$SLUICE_DIR/broker$n.log")" 'No space left on device' \
    "the broker logs journal.write_failed with the cause (ENOSPC)"
is "$(sj 'd["broker"]["journal_ok"]')" false "stats: journal_ok false"
held=$(sj 'd["broker"]["jobs"]')
cmp_num "$held" -ge "$confirmed" "the broker holds every confirmed job ($held >= $confirmed)"
run ctl push other x
is "$RC" 1 "a further push is refused: exit 1"
like "$ERR" "(^|[^a-z])io([^a-z]|$)" "... with io"
run "$send" "$url" --hex "$(mp_push other c-full 1 y)"
is "$(json "$OUT" '[d["ok"], d["err"]]')" '[false, "io"]' "a raw push with a key: io"
is "$(sj '[d["broker"]["jobs"], [g["name"] for g in d["groups"]]]')" "[$held, [\"filler\"]]" \
    "... and the refused pushes stored nothing (no group other)"
ok "the broker still answers ping" ctl ping
ok "the broker still answers stats" ctl stats

ok "space returns: the tmpfs grows to 16 MB" mount -o remount,size=16m "$mnt"
_journal_ok() {
    [ "$(sj 'd["broker"]["journal_ok"]')" = true ]
}
ok "journal_ok becomes true again (a retry once a second; deadline 10 s)" wait_for 10 _journal_ok
ok "the broker logs journal.recovered" grep -q 'event=journal.recovered' "$SLUICE_DIR/broker$n.log"
run ctl push other x -s 10
is "$RC" 0 "pushes succeed again"
run "$send" "$url" --hex "$(mp_push other c-full 1 y)"
is "$(json "$OUT" '[d["ok"], d["n"]]')" '[true, 1]' "the keyed push refused while the disk was full is stored when resent"
before=$(sj '[d["broker"]["jobs"], [(g["name"], g["count"]) for g in d["groups"]]]')
stop_pgrp "$BROKER_PID" 10
is "$?" 0 "the broker exits 0 on SIGTERM"
retire_pgrp "$BROKER_PID" "broker$n"

jbroker
after=$(sj '[d["broker"]["jobs"], [(g["name"], g["count"]) for g in d["groups"]]]')
is "$after" "$before" "after a restart the broker holds exactly the jobs it held before"
cmp_num "$(sj '[g["count"] for g in d["groups"] if g["name"] == "filler"][0]')" -ge "$confirmed" \
    "... every one of the $confirmed confirmed jobs of filler among them"
stop_pgrp "$BROKER_PID" 10
is "$?" 0 "the broker exits 0 on SIGTERM"
retire_pgrp "$BROKER_PID" "broker$n"

done_testing
