"""sluice.Worker: the handler side of `worker --handler pipe:CMD` (PROTOCOL.md, "Pipe
handlers"). The worker writes one job frame (a 4-byte big-endian length and a msgpack map)
to the handler's stdin and reads the answer frame from its stdout, one job at a time."""

import os
import struct
import sys

import msgpack

from .errors import Error

FRAME_MAX = 1 << 31    # a job frame longer than this is not from a sluice worker
DELAY_MAX = 86400000   # PROTOCOL.md: delay_ms 0 to 86,400,000
MSG_MAX = 4096         # the worker logs at most this much of msg


class Job:
    """One job: .id, .group, .queue, .attempt (1 on the first delivery) and .payload (bytes;
    .text decodes it as UTF-8). Answer it once, with ack() or fail()."""

    __slots__ = ("id", "group", "queue", "attempt", "payload", "_worker", "answered")

    def __init__(self, worker, frame):
        self._worker = worker
        self.id = frame["id"]
        self.group = frame.get("group", "")
        self.queue = frame.get("queue", "")
        self.attempt = frame.get("attempt", 1)
        p = frame.get("payload", b"")
        self.payload = p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p
        self.answered = False

    @property
    def text(self):
        return self.payload.decode("utf-8", "replace")

    def ack(self):
        """Done: the worker acks the job."""
        self._answer({"id": self.id, "ok": True})

    def fail(self, delay_ms=0, msg=None):
        """Failed: the worker nacks it; it is ready again after delay_ms (until its attempts
        are used up, then it is dead). msg is logged by the worker and kept by the broker as
        the job's last error (ctl job ID, ctl dead list)."""
        if not isinstance(delay_ms, int) or delay_ms < 0:
            raise ValueError("delay_ms is a whole number of milliseconds, 0 or more")
        a = {"id": self.id, "ok": False, "delay_ms": min(delay_ms, DELAY_MAX)}
        if msg is not None:
            a["msg"] = str(msg)[:MSG_MAX]
        self._answer(a)

    def _answer(self, a):
        if self.answered:
            raise Error("bad_request", "job %d was answered already" % self.id)
        self.answered = True
        self._worker._send(a)

    def __repr__(self):
        return "<sluice.Job id=%d group=%s queue=%s attempt=%d %d bytes>" % (
            self.id, self.group, self.queue, self.attempt, len(self.payload))


class Worker:
    """Iterates over the jobs a sluice worker hands to this process:

        for job in sluice.Worker():
            handle(job.payload)
            job.ack()            # or job.fail(delay_ms=1000, msg="why")

    A job the loop's body leaves unanswered is acked when the next one is asked for (as an
    exec: handler's exit 0 is); an exception that escapes the loop ends the process and the
    worker nacks the job. The iteration ends when the worker closes our stdin (it drains).

    By default the frames go over the process's real stdout, and file descriptor 1 and
    sys.stdout are pointed at stderr, so that print() and child processes cannot break the
    framing: their output ends up in the worker's log.
    """

    def __init__(self, stdin=None, stdout=None):
        if stdin is None:
            stdin = sys.stdin.buffer
        if stdout is None:
            sys.stdout.flush()
            fd = os.dup(1)
            os.set_inheritable(fd, False)
            os.dup2(2, 1)
            stdout = os.fdopen(fd, "wb", buffering=0)
            sys.stdout = sys.stderr
        self._in = stdin
        self._out = stdout
        self._packer = msgpack.Packer(use_bin_type=True)
        self._job = None

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            b = self._in.read(n - len(buf))
            if not b:
                if buf:
                    raise Error("bad_request", "a job frame cut short by end of file")
                return None
            buf += b
        return buf

    def _send(self, a):
        body = self._packer.pack(a)
        data = struct.pack(">I", len(body)) + body
        while data:
            n = self._out.write(data)
            data = data[n if n is not None else len(data):]
        self._out.flush()

    def next_job(self):
        """The next job, or None at end of file (the worker is done with us)."""
        if self._job is not None and not self._job.answered:
            self._job.ack()
        self._job = None
        head = self._read(4)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        if n > FRAME_MAX:
            raise Error("bad_request", "a job frame of %d bytes" % n)
        body = self._read(n) if n > 0 else b""
        if body is None:
            raise Error("bad_request", "a job frame cut short by end of file")
        frame = msgpack.unpackb(body, raw=False, unicode_errors="surrogateescape")
        if not isinstance(frame, dict) or not isinstance(frame.get("id"), int):
            raise Error("bad_request", "a job frame that is not a map with an id")
        self._job = Job(self, frame)
        return self._job

    def __iter__(self):
        while True:
            job = self.next_job()
            if job is None:
                return
            yield job
