# Sourced by integration scripts that need a peer misbehaving on a Unix socket (needs python3;
# source lib.sh first).
#
#   fake_server PATH MODE     starts a fake broker listening on the Unix socket PATH, in its own
#                             process group (killed at exit like any spawn), and waits until it
#                             listens. MODE:
#                               silent     listens but never accepts: the kernel completes the
#                                          connection, nothing ever answers
#                               handshake  accepts, completes the SP handshake of a rep0 peer
#                                          and reads requests without ever replying
#                               close      accepts and closes each connection at once
#                             Sets FAKE_PID.
#   fake_standby NAME URL MODE  starts a fake cluster standby (tests/integ/py/fake_standby.py:
#                             every request answered not_leader) on URL (ipc://PATH, or
#                             tcp://127.0.0.1:0 for a free port) and waits until it listens.
#                             MODE: leader=URL (leader_url URL), unknown (leader_url ""), lease
#                             (no leader_url, as the router's lease), vanish (a leader dying
#                             with the first request unanswered). Sets FAKE_PID, FAKE_URL
#                             (with the port taken) and FAKE_OPS (a file: the op of each
#                             request received, one a line).
#   stale_socket PATH         leaves a Unix socket file at PATH that nothing listens on
#   sp_poke PATH MODE         one connection to the Unix socket PATH that misbehaves, then
#                             closes; MODE: close (at once), half (4 of the 8 bytes of the SP
#                             header), header (a full req0 header, closing before the peer's),
#                             wrongproto (a header of protocol pair0), junk (8 bytes that are
#                             not an SP header). Fails only if it cannot connect.

_fake_py='
import os, socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(64)
open(path + ".ready", "w").close()
if mode == "silent":
    while True:
        time.sleep(3600)
conns = []
while True:
    c, _ = s.accept()
    if mode == "close":
        c.close()
        continue
    # rep0 (protocol 49) answers a req0 peer; then read and drop whatever comes.
    c.sendall(bytes([0, 0x53, 0x50, 0, 0, 49, 0, 0]))
    c.setblocking(False)
    conns.append(c)
    for k in list(conns):
        try:
            if k.recv(65536) == b"":
                conns.remove(k)
        except BlockingIOError:
            pass
'

fake_server() {
    local path=$1 mode=$2
    rm -f "$path.ready"
    spawn "fake-$mode" python3 -I -S -c "$_fake_py" "$path" "$mode"
    FAKE_PID=$SPAWNED_PID
    wait_for 10 test -e "$path.ready" || bail_out "the fake server ($mode) did not start"
}

fake_standby() {
    local name=$1 url=$2 mode=$3 ready=$SLUICE_DIR/$1.ready
    FAKE_OPS=$SLUICE_DIR/$name.ops
    rm -f "$ready"
    : >"$FAKE_OPS"
    spawn "$name" /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/py/fake_standby.py" \
        "$url" "$mode" "$ready" "$FAKE_OPS"
    FAKE_PID=$SPAWNED_PID
    wait_for 10 test -e "$ready" || bail_out "the fake standby $name did not start"
    FAKE_URL=$url
    case $url in tcp://*) FAKE_URL=tcp://127.0.0.1:$(cat "$ready") ;; esac
}

stale_socket() {
    python3 -I -S -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.close()
' "$1"
}

sp_poke() {
    python3 -I -S -c '
import socket, sys
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
req0 = bytes([0, 0x53, 0x50, 0, 0, 48, 0, 0])
data = {"close": b"", "half": req0[:4], "header": req0,
        "wrongproto": bytes([0, 0x53, 0x50, 0, 0, 16, 0, 0]),
        "junk": b"GET / HTTP/1.0\r\n\r\n"[:8]}[mode]
if data:
    s.sendall(data)
s.close()
' "$1" "$2"
}
