#!/usr/bin/env bash
# The broker survives garbage: 1,000 random messages (random bytes, mutated and truncated
# requests, lying size headers) each get a reply, and the broker still answers ping after.
# shellcheck source=tests/integ/lib.sh
. "$(dirname "$0")/lib.sh"

send=$SLUICE_TESTBIN/sl-send
url=ipc://$SLUICE_DIR/broker.ipc

start_broker

run "$send" "$url" --hex ''
is "$RC" 0 "an empty message gets a reply"
like "$OUT" '"err": "bad_request"' "an empty message is bad_request"

run "$send" "$url" --hex 'df 07 ff 07 ff'
like "$OUT" '"err": "bad_request"' "a 5-byte map header declaring 134 million entries is bad_request"

run "$send" "$url" --hex '81 a2 6f 70 a4 70 69 6e 67 c0'
like "$OUT" '"err": "bad_request"' "a ping with a trailing byte is bad_request"

run "$send" "$url" --hex '81 a2 6f 70 a4 6e 6f 70 65'
like "$OUT" '"err": "unknown_op"' "op \"nope\" is unknown_op"

run "$send" "$url" --random 1000 --seed "${SLUICE_SEED:-20261127}"
is "$RC" 0 "every one of 1,000 garbage messages gets a reply"
like "$OUT" '^replies=1000 ' "1,000 replies counted"
ok "the broker is still running" alive "$BROKER_PID"
ok "the broker answers ping after 1,000 garbage messages" ctl ping

# Under SANITIZE=1 a leak or memory error found at exit shows here as a non-zero status.
stop_broker
is "$?" 0 "the broker exits 0 on TERM after the garbage"

done_testing
