#!/usr/bin/env bash
# A full disk under the journal (ENOSPC; t_journal.sh covers EFBIG past a file size limit).
# Needs root (mount); skipped otherwise.
#
# 1. The data directory is a 2 MB tmpfs. Pushes fill it until one is refused with io ("journal
#    full"); stats say journal_ok false; further pushes are refused with io and store nothing;
#    the broker keeps answering. The tmpfs is then grown (space returns): pushes are accepted
#    again within seconds, and after a restart every confirmed job is there.
# 2. A 4 MB tmpfs with --segment-size 256K, filled by the journal itself. While it is full,
#    ping and stats are answered at once and never io, refused pushes do not grow the broker's
#    memory, and acks are accepted; once workers have acked every job the journal shrinks and
#    pushes are accepted again, with nothing done from outside.
# 3. The same, but another file takes the room the reserve left too, so that even acks and
#    purges cannot be written (io): the segments they empty are deleted all the same, and the
#    journal recovers from the space that frees.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integ/lib_mp.sh
. "$(dirname "$0")/lib_mp.sh"
# shellcheck source=tests/integ/lib_proc.sh
. "$(dirname "$0")/lib_proc.sh"

[ "$(id -u)" = 0 ] || skip_all "mounting a small tmpfs needs root"
mnt=$SLUICE_DIR/data
mnt2=$SLUICE_DIR/data2
mnt3=$SLUICE_DIR/data3
mkdir -m 0700 "$mnt" "$mnt2" "$mnt3"
mount -t tmpfs -o size=2m,mode=0700 sluice-test "$mnt" 2>/dev/null ||
    skip_all "mount -t tmpfs is not permitted here"
# Unmounted before lib.sh's cleanup removes SLUICE_DIR (lazily: a broker still running keeps
# its files open until cleanup stops it).
trap '_rc=$?; umount -l "$SLUICE_DIR"/data*/ 2>/dev/null; (exit "$_rc"); cleanup' EXIT

send=$SLUICE_TESTBIN/sl-send
url=ipc://$SLUICE_DIR/broker.ipc
n=0

# jbroker [ARGS]: a broker with its journal in the tmpfs $mnt (start_broker would add
# --no-journal).
jbroker() {
    n=$((n + 1))
    spawn "broker$n" "$SLUICE_BIN/broker" --data-dir "$mnt" --fsync always "$@"
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
like "$ERR" "journal full" "... saying the journal is full"
ok "the broker logs journal.full" grep -q 'event=journal.full' "$SLUICE_DIR/broker$n.log"
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
ok "the broker logs journal.space_back" grep -q 'event=journal.space_back' "$SLUICE_DIR/broker$n.log"
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

# --- 2. the journal fills the disk itself, and workers' acks empty it again ---------------
diag "a 4 MB tmpfs filled by the journal itself (--segment-size 256K)"
mount -t tmpfs -o size=4m,mode=0700 sluice-test2 "$mnt2" || bail_out "cannot mount a second tmpfs"
mnt=$mnt2
jbroker --segment-size 256K
run ctl push filler "$pay" -s 10000 --batch 50
is "$RC" 1 "pushing 10 MB into a 4 MB journal: exit 1"
like "$ERR" "(^|[^a-z])io([^a-z]|$).*journal full" "... refused with io: journal full"
confirmed=$(sed -n 's/.*pushed \([0-9]*\) jobs to filler before the error.*/\1/p' <<<"$ERR")
[ -n "$confirmed" ] || confirmed=0
cmp_num "$confirmed" -ge 2000 "thousands of jobs were confirmed before the disk was full ($confirmed)"
is "$(sj 'd["broker"]["journal_ok"]')" false "stats: journal_ok false"
held=$(sj 'd["broker"]["jobs"]')

# While it is full: reads are answered at once and never io, and refused pushes cost no memory.
rss() {
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$BROKER_PID/status"
}
rss0=$(rss)
pings=0 stats=0 refused=0
for i in $(seq 1 20); do
    run ctl --timeout 1000 push other "$pay" -s 50 --batch 50
    [ "$RC" = 1 ] && grep -q "journal full" <<<"$ERR" && refused=$((refused + 1))
    "$SLUICE_BIN/ctl" --timeout 500 ping >/dev/null 2>&1 && pings=$((pings + 1))
    "$SLUICE_BIN/ctl" --timeout 500 stats --json >/dev/null 2>&1 && stats=$((stats + 1))
done
rss1=$(rss)
is "$refused" 20 "20 pushes while the disk is full: each refused with journal full"
is "$pings" 20 "20 pings meanwhile: each answered ok within 500 ms"
is "$stats" 20 "20 stats meanwhile: each answered ok within 500 ms"
diag "VmRSS before the 60 requests: $rss0 kB, after: $rss1 kB"
cmp_num $((rss1 - rss0)) -lt 16384 "... and the broker's memory did not grow with them ($rss0 -> $rss1 kB)"
is "$(sj '[d["broker"]["jobs"], [g["name"] for g in d["groups"]]]')" "[$held, [\"filler\"]]" \
    "... and the refused pushes stored nothing"

# An ack is accepted while the disk is full: it is what lets the journal shrink. Reserve and
# ack on one connection (a worker's jobs go back when its connection closes): filler's jobs
# are ids 1, 2, ... in order, so the reserve takes 1-20.
ack_ids=$(mp_array 20; for id in $(seq 1 20); do mp_uint "$id"; done)
{
    mp_op reserve worker str w-full max uint 20
    echo
    mp_op ack ids hex "$ack_ids" worker str w-full
    echo
} >"$SLUICE_DIR/settle.hex"
run "$send" "$url" --lines "$SLUICE_DIR/settle.hex"
is "$(sed -n 1p <<<"$OUT" | python3 -c 'import json, sys; print([j["id"] for j in json.load(sys.stdin)["jobs"]] == list(range(1, 21)))')" \
    True "a raw reserve takes jobs 1-20"
is "$(json "$(sed -n 2p <<<"$OUT")" '[d["ok"], d.get("n"), d.get("err")]')" "[true, 20, null]" \
    "their ack is answered ok"

spawn worker "$SLUICE_BIN/worker" --handler noop --prefetch 16
worker_pid=$SPAWNED_PID
_all_acked() {
    [ "$(sj '[d["broker"]["jobs"], d["broker"]["journal_ok"]]')" = "[0, true]" ]
}
ok "a worker acks every job and the journal is writable again (deadline 30 s)" \
    wait_for 30 _all_acked
stop_pgrp "$worker_pid" 10
retire_pgrp "$worker_pid" worker
ok "the broker logs journal.space_back" grep -q 'event=journal.space_back' "$SLUICE_DIR/broker$n.log"
cmp_num "$(sj 'd["broker"]["journal_bytes"]')" -lt 1048576 "the journal shrank below 1 MB"
run ctl push other x -s 10
is "$RC" 0 "pushes are accepted again"
stop_pgrp "$BROKER_PID" 10
is "$?" 0 "the broker exits 0 on SIGTERM"
retire_pgrp "$BROKER_PID" "broker$n"
jbroker --segment-size 256K
is "$(sj '[d["broker"]["jobs"], [(g["name"], g["count"]) for g in d["groups"] if g["count"]]]')" \
    '[10, [["other", 10]]]' "after a restart: the 10 jobs pushed after the recovery, nothing else"
stop_pgrp "$BROKER_PID" 10
is "$?" 0 "the broker exits 0 on SIGTERM"
retire_pgrp "$BROKER_PID" "broker$n"

# --- 3. acks that cannot be written still empty the journal ------------------------------
diag "a 4 MB tmpfs whose last bytes another file takes"
mount -t tmpfs -o size=4m,mode=0700 sluice-test3 "$mnt3" || bail_out "cannot mount a third tmpfs"
mnt=$mnt3
jbroker --segment-size 256K
run ctl push filler "$pay" -s 2000 --batch 50
is "$RC" 0 "2,000 jobs of 1 KB pushed"
dd if=/dev/zero of="$mnt3/ballast1" bs=4k 2>/dev/null
run ctl push filler "$pay" -s 50 --batch 50
is "$RC" 0 "another file fills the disk: the next push is written into the reserve's room"
ok "the broker logs journal.full" grep -q 'event=journal.full' "$SLUICE_DIR/broker$n.log"
dd if=/dev/zero of="$mnt3/ballast2" bs=4k 2>/dev/null
run "$send" "$url" --lines "$SLUICE_DIR/settle.hex"
is "$(json "$(sed -n 2p <<<"$OUT")" '[d["ok"], d.get("err")]')" '[false, "io"]' \
    "that file takes the reserve's room too: an ack cannot be written (io)"
is "$(sj 'd["broker"]["jobs"]')" 2030 "... but it is done: 2,030 jobs are left"
# A restart now: there is no room even for the segment a start begins.
stop_pgrp "$BROKER_PID" 10
is "$?" 0 "the broker exits 0 on SIGTERM"
retire_pgrp "$BROKER_PID" "broker$n"
jbroker --segment-size 256K
ok "a restart on the full disk starts (journal.no_segment)" \
    grep -q 'event=journal.no_segment' "$SLUICE_DIR/broker$n.log"
is "$(sj '[d["broker"]["jobs"], d["broker"]["journal_ok"]]')" "[2050, false]" \
    "... with every job (the ack that was not confirmed did not happen) and journal_ok false"
run ctl purge --group filler
like "$ERR" "(^|[^a-z])io([^a-z]|$)" "a purge of every job cannot be written either (io)"
_emptied() {
    [ "$(sj '[d["broker"]["jobs"], d["broker"]["journal_ok"]]')" = "[0, true]" ]
}
ok "... but the segments it emptied go, and the journal is writable again (deadline 30 s)" \
    wait_for 30 _emptied
ok "the broker logs journal.recovered" grep -q 'event=journal.recovered' "$SLUICE_DIR/broker$n.log"
run ctl push other x -s 10
is "$RC" 0 "pushes are accepted again, the other file still there"
stop_pgrp "$BROKER_PID" 10
is "$?" 0 "the broker exits 0 on SIGTERM"
retire_pgrp "$BROKER_PID" "broker$n"
jbroker --segment-size 256K
is "$(sj '[d["broker"]["jobs"], [(g["name"], g["count"]) for g in d["groups"] if g["count"]]]')" \
    '[10, [["other", 10]]]' "after a restart: the 10 jobs pushed after the recovery, nothing else"
stop_pgrp "$BROKER_PID" 10
is "$?" 0 "the broker exits 0 on SIGTERM"
retire_pgrp "$BROKER_PID" "broker$n"

done_testing
