"""sluice.Client: requests to a broker over its native protocol (IPC or TCP)."""

import os
import random
import socket
import struct
import threading
import time

import msgpack

from . import config
from .errors import ConnectionError, Error
from .wire import BadPeer, Conn, bad_reply, timeout_error

MIN_MAX_MESSAGE = 1024         # the smallest --max-message a broker takes: no need to ask
BATCH_BYTES = 4 << 20          # payload bytes per push: one request never holds the broker long
BATCH_MAX = 1000000            # payloads per push (PROTOCOL.md, push)
RECONNECT_MIN, RECONNECT_MAX = 0.05, 1.0  # the pause between tries, as the programs' dialer
LIST_CONNECT_S = 2.0  # with other brokers to try, one is given this long to connect
_BLOB_HEAD = 5                 # the widest msgpack bin header


class Pushed(tuple):
    """(first_id, count) of a push, with .batches: one (first_id, n) per request the push was
    split into (ids first_id .. first_id + n - 1; first_id None for a resend the broker
    answered "stale"), and .dup: jobs an earlier send of the same request had stored.
    .duplicate: a unique push that stored nothing because job first_id holds its key."""

    def __new__(cls, batches, dup, duplicate=False):
        first = batches[0][0] if batches else None
        self = tuple.__new__(cls, (first, sum(n for _, n in batches)))
        self.batches = batches
        self.dup = dup
        self.duplicate = duplicate
        return self

    @property
    def first_id(self):
        return self[0]

    @property
    def count(self):
        return self[1]


def _blob(p):
    if isinstance(p, bytes):
        return p
    if isinstance(p, str):
        return p.encode("utf-8")
    if isinstance(p, (bytearray, memoryview)):
        return bytes(p)
    raise TypeError("a payload is bytes or str, not %s" % type(p).__name__)


class Client:
    """A connection to a sluice broker.

    url: ipc://PATH or tcp://HOST:PORT, or a cluster's brokers "URL,URL,..." (a standby's
    not_leader sends the request on to the leader it names, PROTOCOL.md "Clusters"); default
    $SLUICE_URL, else the broker's socket in the runtime directory (checked as the programs
    check it). token_file: default
    $SLUICE_TOKEN_FILE; its token goes with every request. timeout: seconds each request
    may take, reconnecting included. The connection is made at the first request; a Client
    may be shared by threads (their requests take turns) and survives fork (the child
    connects anew, under its own idempotency client name).
    """

    def __init__(self, url=None, token_file=None, timeout=10.0):
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise Error("bad_request", "timeout must be a positive number of seconds")
        self._absent = 0  # brokers of the list found with nobody listening, in a row
        self.urls = config.split_urls(config.resolve_url(url))
        self._use(self.urls[0])
        self.timeout = float(timeout)
        tf = config.resolve_token_file(token_file)
        self._token = b""
        if tf is not None:
            token = config.load_token(tf)
            n = len(token)
            head = bytes([0xA0 | n]) if n <= 31 else (
                b"\xd9" + bytes([n]) if n <= 0xFF else b"\xda" + struct.pack(">H", n))
            self._token = b"\xa5token" + head + token  # "token": str, bytes as the file has them
        self._lock = threading.Lock()
        self._packer = msgpack.Packer(use_bin_type=True)
        self._conn = None
        self._max_message = None
        self._rid = random.getrandbits(31)
        self._fork_reset()

    # --- connection -------------------------------------------------------------------------

    def _use(self, url):
        """Talks to the broker at url from now on (a new connection at the next request)."""
        self._kind, self._addr = config.parse_url(url)
        self.url = url
        if getattr(self, "_conn", None) is not None:
            self._drop()

    def _next_url(self, leader=""):
        """Where to go after a standby's answer (leader: the one it named, "" unknown) or a
        broker out of reach: the named leader, else the next address of the list."""
        if leader and leader != self.url:
            return leader
        if self.url in self.urls:
            return self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
        return self.urls[0]

    def _fork_reset(self):
        self._pid = os.getpid()
        # The idempotency client name: unique to this process (a pid alone repeats across hosts
        # and restarts, and the broker remembers keys for 10 minutes), its seq from 1.
        self.client_name = "py-%d-%016x" % (self._pid, random.getrandbits(64))
        self._seq = 0
        self._unconfirmed = None  # (push, its seqs) of a push that failed unconfirmed

    def _drop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self):
        with self._lock:
            self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def _connect(self, deadline, sent):
        """Connects and returns None, or returns why not when trying again may help; raises
        when there is no point. With a list, a broker out of reach sends the client on to the
        next (a failover: the request, sent or not, goes to whichever answers)."""
        many = len(self.urls) > 1
        until = min(deadline, time.monotonic() + LIST_CONNECT_S) if many else deadline
        try:
            self._conn = Conn(self._kind, self._addr, until)
            self._absent = 0
            return None
        except socket.timeout:
            if many and time.monotonic() < deadline:
                self._use(self._next_url())
                return "no connection within %g s" % LIST_CONNECT_S
            raise timeout_error(self.url, self.timeout) from None
        except BadPeer as e:
            raise bad_reply(self.url, str(e)) from None
        except (OSError, EOFError) as e:
            why = getattr(e, "strerror", None) or str(e)
            nobody = not sent and isinstance(e, (FileNotFoundError, ConnectionRefusedError,
                                                 PermissionError, socket.gaierror))
            if many:
                # Nobody listening at any broker of the list, in a row, and no request of ours
                # waiting at one: said at once, as for one address.
                self._absent = self._absent + 1 if nobody else 0
                if self._absent >= len(self.urls):
                    self._absent = 0
                    raise ConnectionError("cannot connect to any broker of %s: %s"
                                          % (",".join(self.urls), why)) from None
                self._use(self._next_url())  # the others may answer
                return why
            if nobody:
                # Nobody listens there, and no request of ours can be waiting there: said at
                # once, not after the timeout. (A connection accepted and then closed, as a
                # broker at its --max-connections does, is tried again.)
                hint = ""
                if not isinstance(e, (PermissionError, socket.gaierror)):
                    hint = " (is the broker running? start it with: broker)" if self._kind == \
                        "ipc" else " (is the broker running and listening there?)"
                raise ConnectionError("cannot connect to the broker at %s: %s%s"
                                      % (self.url, why, hint)) from None
            return why

    def _roundtrip(self, payload, deadline):
        """Sends one request map (payload: its msgpack bytes) and returns the reply's bytes.
        A request sent on a connection that then dropped is sent again on a new one until the
        deadline (REQ's rule; pushes carry their idempotency key for this)."""
        sent = False  # the request may have reached a broker
        pause = 0.0   # the first retry at once: a connection found closed after a long idle
        while True:
            why = self._connect(deadline, sent) if self._conn is None else None
            if why is None:
                self._rid = (self._rid + 1) & 0x7FFFFFFF
                rid = struct.pack(">I", 0x80000000 | self._rid)
                try:
                    self._conn.send(rid + payload, deadline)
                    sent = True
                    while True:
                        body = self._conn.recv(deadline)
                        if body[:4] == rid:
                            return memoryview(body)[4:]
                        # The late answer to a request given up on: not ours.
                except socket.timeout:
                    # The connection may be held by a broker that stopped reading it: the next
                    # request goes on a new one, where no late reply can be taken for its own.
                    self._drop()
                    raise timeout_error(self.url, self.timeout) from None
                except BadPeer as e:
                    self._drop()
                    raise bad_reply(self.url, str(e)) from None
                except (OSError, EOFError) as e:
                    self._drop()  # connect again and send it again
                    why = getattr(e, "strerror", None) or str(e)
            if deadline - time.monotonic() <= pause:
                what = "lost the connection to the broker at %s and could not get an answer" \
                    if sent else "could not connect to the broker at %s"
                raise ConnectionError("%s within %.3g s (%s)" % (what % self.url, self.timeout,
                                                                 why))
            time.sleep(pause)
            pause = min(max(pause * 2, RECONNECT_MIN), RECONNECT_MAX)

    # --- requests ---------------------------------------------------------------------------

    def _encode(self, op, fields):
        pk = self._packer
        items = [(k, v) for k, v in fields.items() if v is not None]
        parts = [pk.pack_map_header(len(items) + 1 + (1 if self._token else 0)),
                 pk.pack("op"), pk.pack(op)]
        for k, v in items:
            parts.append(pk.pack(k))
            parts.append(pk.pack(v))
        parts.append(self._token)
        return b"".join(parts)

    def _decode(self, body):
        try:
            rep = msgpack.unpackb(body, raw=False, unicode_errors="surrogateescape")
        except Exception as e:  # msgpack raises several kinds for bad input
            self._drop()
            raise bad_reply(self.url, "a reply that is not msgpack (%s)" % e) from None
        if not isinstance(rep, dict) or not isinstance(rep.get("ok"), bool):
            self._drop()
            raise bad_reply(self.url, "a reply that is not a map with 'ok'")
        return rep

    def _call(self, op, fields, extra_s=0.0):
        """Locked by the caller. The reply map of a successful request; Error otherwise."""
        if os.getpid() != self._pid:
            self._conn = None  # the parent's: leave it to the parent
            self._fork_reset()
        payload = self._encode(op, fields)
        if self._max_message is not None and len(payload) + 4 > self._max_message:
            raise Error("too_large", "a request of %d bytes is over the broker's max_message "
                        "(%d)" % (len(payload) + 4, self._max_message))
        deadline = time.monotonic() + self.timeout + extra_s
        pause = 0.05
        while True:
            rep = self._decode(self._roundtrip(payload, deadline))
            # A cluster's standby: the same request goes to the leader it names (a not_leader
            # without leader_url is the router's lease, and final).
            leader = rep.get("leader_url")
            if rep["ok"] or rep.get("err") != "not_leader" or not isinstance(leader, str):
                break
            # Another try needs time for a round trip (0.1 s at least); else this reply is
            # the caller's.
            room = deadline - time.monotonic() - 0.1
            if room <= 0:
                break
            to = self._next_url(leader)
            if not leader or to == self.url:
                time.sleep(min(pause, room))  # an election: ask again a little later
                pause = min(pause * 2, 0.5)
            try:
                self._use(to)
            except Error:
                break
        if not rep["ok"]:
            code = rep.get("err") if isinstance(rep.get("err"), str) else "internal"
            msg = rep.get("msg") if isinstance(rep.get("msg"), str) else ""
            raise Error(code, msg)
        if op == "ping" and isinstance(rep.get("max_message"), int):
            self._max_message = rep["max_message"]
        return rep

    def request(self, op, fields=None, **kw):
        """Any operation of PROTOCOL.md: request("queue.create", name="bulk", priority=20).
        Fields whose names are Python keywords go in the dict: request("reserve", {"from":
        ["bulk"]}, worker="w1"). Returns the reply map without "ok"; a failure raises
        sluice.Error with the broker's code."""
        f = dict(fields or {})
        f.update(kw)
        wait = f.get("wait_ms")
        extra = wait / 1000.0 if isinstance(wait, int) and wait > 0 else 0.0
        with self._lock:
            rep = self._call(op, f, extra)
        del rep["ok"]
        return rep

    def ping(self):
        return self.request("ping")

    def stats(self):
        """The broker's stats document (PROTOCOL.md, stats): as `ctl stats --json`."""
        return self.request("stats")

    @property
    def max_message(self):
        """The largest request the broker takes (asked once, with a ping)."""
        with self._lock:
            if self._max_message is None:
                self._call("ping", {})
            return self._max_message

    # --- push -------------------------------------------------------------------------------

    def push(self, group, payloads, queue=None, ttr_ms=None, max_attempts=None, delay_ms=None,
             run_at_ms=None, unique=None, unique_ttl_ms=None, unique_hold=None):
        """Pushes jobs of one group: payloads is a list of bytes or str (UTF-8), or one of
        them. Returns (first_id, count), a Pushed whose .batches tell the ids of each request
        when the list was split to fit the broker's max_message. Every request carries an
        idempotency key (client_name, seq): one the broker already stored is not stored
        again, so a request resent after a lost connection never doubles its jobs.

        A failure raises sluice.Error; requests of the list sent before it are stored (their
        jobs are in .pushed of the exception, a Pushed). After Timeout, ConnectionError or
        "io" the jobs may or may not be stored: push the same list again (same group and
        options) and it goes under the same keys, so the broker stores each job at most once
        and answers with its ids.

        unique (str, one payload only): while a job holds that key (README "Unique jobs";
        unique_ttl_ms bounds it, unique_hold="ttl" holds it for exactly unique_ttl_ms), the
        push stores nothing and returns (holder_id, 0) with .duplicate True."""
        if isinstance(payloads, (bytes, str, bytearray, memoryview)):
            payloads = [payloads]
        blobs = [_blob(p) for p in payloads]
        if not blobs:
            raise Error("bad_request", "push needs at least one payload")
        if unique is not None and len(blobs) != 1:
            raise Error("bad_request", "a unique push is of one payload")
        fields = {"group": group, "queue": queue, "ttr_ms": ttr_ms,
                  "max_attempts": max_attempts, "delay_ms": delay_ms, "run_at_ms": run_at_ms,
                  "unique": unique, "unique_ttl_ms": unique_ttl_ms, "unique_hold": unique_hold}
        batches, dup = [], 0
        with self._lock:
            if os.getpid() != self._pid:
                self._conn = None  # the parent's: leave it to the parent
                self._fork_reset()
            # The same push as one that failed unconfirmed goes again under the same keys, so
            # a caller that retries it cannot store its jobs twice.
            sig = (group, queue, ttr_ms, max_attempts, delay_ms, run_at_ms, unique,
                   unique_ttl_ms, unique_hold, blobs)
            old = self._unconfirmed[1] if self._unconfirmed and self._unconfirmed[0] == sig \
                else []
            self._unconfirmed = None
            seqs = []
            try:
                for i, chunk in enumerate(self._split(fields, blobs)):
                    if i < len(old):
                        seqs.append(old[i])
                    else:
                        self._seq += 1
                        seqs.append(self._seq)
                    first, n, was_dup = self._push_one(fields, chunk, seqs[-1])
                    if was_dup == "duplicate":
                        return Pushed([(first, 0)], 0, duplicate=True)
                    batches.append((first, n))
                    dup += n if was_dup else 0
            except Error as e:
                if e.code in ("timeout", "unreachable", "io"):
                    self._unconfirmed = (sig, seqs)
                e.pushed = Pushed(batches, dup)
                raise
        return Pushed(batches, dup)

    def _push_one(self, fields, chunk, seq):
        f = dict(fields)
        f["payloads"] = chunk
        f["client"] = self.client_name
        f["seq"] = seq
        rep = self._call("push", f)
        if rep.get("stale"):
            return None, len(chunk), True
        if rep.get("duplicate"):
            return rep.get("first_id"), 0, "duplicate"
        if not isinstance(rep.get("first_id"), int) or not isinstance(rep.get("n"), int):
            raise bad_reply(self.url, "a push reply without first_id and n")
        return rep["first_id"], rep["n"], bool(rep.get("dup"))

    def _split(self, fields, blobs):
        """The payloads in requests that each fit the broker's max_message."""
        # Everything but the payloads: the request without them, a wider array header, the id.
        base = len(self._encode("push", dict(fields, payloads=[], client=self.client_name,
                                             seq=(1 << 64) - 1))) + 4 + 4
        total = sum(map(len, blobs))
        if base + total + _BLOB_HEAD * len(blobs) <= MIN_MAX_MESSAGE:
            yield blobs  # fits any broker: no need to ask
            return
        if self._max_message is None:
            self._call("ping", {})
        limit = (self._max_message or MIN_MAX_MESSAGE) - base
        if total <= BATCH_BYTES and len(blobs) <= BATCH_MAX and \
                total + _BLOB_HEAD * len(blobs) <= limit:
            yield blobs
            return
        start, size, nbytes = 0, 0, 0
        for i, p in enumerate(blobs):
            n = len(p)
            if n + _BLOB_HEAD > limit:
                raise Error("too_large", "payload %d has %d bytes: over what a request to this "
                            "broker can carry (max_message %d)" % (i, n, self._max_message))
            if i > start and (i - start == BATCH_MAX or nbytes + n > BATCH_BYTES or
                              size + n + _BLOB_HEAD > limit):
                yield blobs[start:i]
                start, size, nbytes = i, 0, 0
            size += n + _BLOB_HEAD
            nbytes += n
        yield blobs[start:]
