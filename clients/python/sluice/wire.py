"""One connection to a broker, in the framing of nng's SP protocols (PROTOCOL.md, "Speaking
the protocol without nng"): the req0 handshake, then frames of a u64 big-endian length (after
a 0x01 type byte on IPC) and a body of a 4-byte request id and a msgpack map."""

import socket
import struct
import time

from .errors import Error, Timeout

HELLO_REQ = b"\x00SP\x00\x00\x30\x00\x00"  # req0, protocol 48
HELLO_REP = b"\x00SP\x00\x00\x31\x00\x00"  # rep0, protocol 49: the broker
REPLY_MAX = 1 << 31  # a longer length than any reply the broker sends: not a sluice broker
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)  # a closed peer is an error, not SIGPIPE


class BadPeer(Exception):
    """The peer broke the protocol: the connection cannot be used any more."""


def _remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("deadline passed")
    return left


class Conn:
    """A connected, handshaken socket. Raises OSError (connection failures, socket.timeout),
    BadPeer or EOFError; the caller drops the connection on any of them."""

    def __init__(self, kind, addr, deadline):
        self.ipc = kind == "ipc"
        if self.ipc:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.settimeout(_remaining(deadline))
                s.connect(addr)
            except BaseException:
                s.close()
                raise
        else:
            s = socket.create_connection(addr, timeout=_remaining(deadline))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        try:
            s.sendall(HELLO_REQ, _SEND_FLAGS)
            peer = self._read(8, deadline)
            if peer != HELLO_REP:
                raise BadPeer("the peer is not a sluice broker (SP header %s, want %s)"
                              % (peer.hex(), HELLO_REP.hex()))
        except BaseException:
            s.close()
            raise

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _read(self, n, deadline):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            self.sock.settimeout(_remaining(deadline))
            r = self.sock.recv_into(view[got:], n - got)
            if r == 0:
                raise EOFError("the broker closed the connection")
            got += r
        return bytes(buf)

    def send(self, body, deadline):
        if self.ipc:
            head = b"\x01" + struct.pack(">Q", len(body))
        else:
            head = struct.pack(">Q", len(body))
        self.sock.settimeout(_remaining(deadline))
        self.sock.sendall(head + body, _SEND_FLAGS)

    def recv(self, deadline):
        if self.ipc:
            head = self._read(9, deadline)
            if head[0] != 1:
                raise BadPeer("frame of type %d, want 1" % head[0])
            (n,) = struct.unpack(">Q", head[1:])
        else:
            (n,) = struct.unpack(">Q", self._read(8, deadline))
        if n < 4 or n > REPLY_MAX:
            raise BadPeer("a reply of %d bytes" % n)
        return self._read(n, deadline)


def timeout_error(url, timeout):
    return Timeout("no answer from the broker at %s within %.3g s" % (url, timeout))


def bad_reply(url, why):
    return Error("internal", "the broker at %s broke the protocol: %s" % (url, why))
