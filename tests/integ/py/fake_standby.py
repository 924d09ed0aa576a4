"""A fake cluster standby: answers every request but ping with not_leader, as a broker that
does not serve does (PROTOCOL.md "Clusters"), speaking the SP framing of PROTOCOL.md "Speaking the
protocol without nng" by hand (rep0 over a Unix or TCP socket).

    fake_standby.py URL MODE READY_FILE LOG_FILE

URL: ipc://PATH or tcp://127.0.0.1:0 (the port taken is written to READY_FILE).
MODE: leader=URL    not_leader with leader_url URL (a standby that knows the leader)
      unknown       not_leader with leader_url "" (an election)
      lease         not_leader without leader_url (the router's lease: final)
      vanish        a leader that dies holding the first request but ping and hello (which
                    it answers): no answer, its connections and listener closed, its
                    socket file removed; then exits
READY_FILE is written once it listens (the port for tcp, else empty); LOG_FILE gets the op
of each request received, one a line.
"""
import os
import select
import socket
import struct
import sys

import msgpack

url, mode, ready, logf = sys.argv[1:5]
if mode.startswith("leader="):
    reply_extra = {"leader_url": mode[len("leader="):]}
elif mode == "unknown":
    reply_extra = {"leader_url": ""}
elif mode in ("lease", "vanish"):
    reply_extra = {}
else:
    sys.exit("fake_standby: unknown mode %r" % mode)

ipc = url.startswith("ipc://")
if ipc:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(url[len("ipc://"):])
else:
    host, port = url[len("tcp://"):].rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
srv.listen(64)
log = open(logf, "a", buffering=1)
tmp = ready + ".tmp"
with open(tmp, "w") as f:
    f.write("" if ipc else str(srv.getsockname()[1]))
os.rename(tmp, ready)

head = 9 if ipc else 8  # IPC: type byte + u64 length; TCP: u64 length
bufs = {}    # connection -> bytes received and not yet used
greeted = set()  # connections whose 8-byte SP header has been read


def answer(c, body):
    try:
        req = msgpack.unpackb(body[4:], raw=False)
        op = req.get("op", "?") if isinstance(req, dict) else "?"
    except Exception:
        op = "?"
    log.write("%s\n" % op)
    if mode == "vanish" and op == "hello":
        rep = {"ok": True, "pid": os.getpid()}
        out = body[:4] + msgpack.packb(rep, use_bin_type=True)
        c.sendall((b"\x01" if ipc else b"") + struct.pack(">Q", len(out)) + out)
        return
    if mode == "vanish" and op != "ping":
        for k in list(bufs):
            k.close()
        srv.close()
        if ipc:
            os.unlink(url[len("ipc://"):])
        sys.exit(0)
    if op == "ping":  # answered by a standby too
        rep = {"ok": True, "pid": os.getpid(), "version": "fake", "uptime_ms": 1,
               "max_message": 1 << 20}
    else:
        rep = {"ok": False, "err": "not_leader", "msg": "this broker is a standby"}
        rep.update(reply_extra)
    out = body[:4] + msgpack.packb(rep, use_bin_type=True)  # the request id, then the map
    c.sendall((b"\x01" if ipc else b"") + struct.pack(">Q", len(out)) + out)


while True:
    r, _, _ = select.select([srv] + list(bufs), [], [])
    for s in r:
        if s is srv:
            c, _ = srv.accept()
            c.sendall(bytes([0, 0x53, 0x50, 0, 0, 49, 0, 0]))  # rep0's header, at once
            bufs[c] = b""
            continue
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            del bufs[s]
            greeted.discard(s)
            s.close()
            continue
        b = bufs[s] + data
        if s not in greeted:
            if len(b) < 8:
                bufs[s] = b
                continue
            greeted.add(s)
            b = b[8:]
        while len(b) >= head:
            n = struct.unpack(">Q", b[head - 8:head])[0]
            if len(b) < head + n:
                break
            answer(s, b[head:head + n])
            b = b[head + n:]
        bufs[s] = b
