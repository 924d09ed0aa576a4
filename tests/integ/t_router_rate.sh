#!/usr/bin/env bash
# router --heavy-rate with a real broker: a round limits the start rate of a group above
# --high that has no limit (bob), leaves alone a limit a person set (carol's) and groups below
# --high; once bob is purged below --low the next round removes exactly that limit, and a
# person's limit stays. --dry-run changes nothing; a bad --heavy-rate or a --heavy-burst
# without it is a usage error.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || skip_all "python3 is needed to read JSON"

# limit_of GROUP: "RATE/BURST" of GROUP as stats shows it, "none" without a limit.
limit_of() {
    json "$(ctl stats --json)" "next(('none' if x['rate'] is None else '%g/%d' %
        (x['rate'], x['burst'])) for x in d['groups'] if x['name'] == '$1')"
}

start_broker

run "$SLUICE_BIN/router" --heavy-rate 0 --once
is "$RC" 2 "--heavy-rate 0 is a usage error"
like "$ERR" "--heavy-rate: '0' is not a rate from 0.001/s to 1000000/s" "which names the range"
run "$SLUICE_BIN/router" --heavy-burst 5 --once
is "$RC" 2 "--heavy-burst without --heavy-rate is a usage error"

ctl push bob b -s 1000 >/dev/null
ctl push carol c -s 500 >/dev/null
ctl push alice a -s 20 >/dev/null
ctl groups limit carol --rate 5/s >/dev/null

run "$SLUICE_BIN/router" --heavy-rate 20/s --dry-run --once
is "$RC" 0 "--dry-run --once exits 0"
like "$ERR" 'event=decision action=limit group=bob count=1000 rate=20/s burst=20 reason="count 1000 > high 100" dry_run=1' \
    "it logs the limit it would give bob"
is "$(limit_of bob)" none "... and changes nothing"

run "$SLUICE_BIN/router" --heavy-rate 20/s --once
is "$RC" 0 "router --heavy-rate 20/s --once exits 0"
is "$(limit_of bob)" 20/20 "bob, above --high, is limited to 20/s, burst 20"
is "$(limit_of carol)" 5/5 "carol's own limit is left alone"
is "$(limit_of alice)" none "alice, below --high, is not limited"

ctl purge --group bob >/dev/null
ctl purge --group carol >/dev/null
run "$SLUICE_BIN/router" --heavy-rate 20/s --once
is "$RC" 0 "a second round exits 0"
like "$ERR" 'event=decision action=limit group=bob count=0 rate=none burst=0 reason="count 0 < low 10"' \
    "it removes bob's limit, below --low, saying why"
is "$(limit_of bob)" none "bob has no limit any more"
is "$(limit_of carol)" 5/5 "carol's own limit stays"
done_testing
