"""Checks of the Python client (clients/python) against a real broker, run one at a time by
tests/integ/t_client_python.sh:  client_checks.py CHECK [ARG...]. Exit 0: the check passed;
anything else, with the reason on stderr, failed. The broker is the environment's
(SLUICE_DIR, SLUICE_URL, SLUICE_TOKEN_FILE), as a user's program would find it."""

import os
import socket
import struct
import sys
import threading
import time

import msgpack

import sluice


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_error(fn, cls, code, within=None):
    t = time.monotonic()
    try:
        fn()
    except sluice.Error as e:
        took = time.monotonic() - t
        expect(isinstance(e, cls), "raised %s (%s), want %s" % (type(e).__name__, e,
                                                                  cls.__name__))
        expect(e.code == code, "code %r (%s), want %r" % (e.code, e, code))
        if within is not None:
            expect(took <= within, "raised after %.2f s, want within %.2f s" % (took, within))
        print("raised %s: %s (%.3f s)" % (type(e).__name__, e, took))
        return e
    raise AssertionError("no error raised, want %s %s" % (cls.__name__, code))


def group_stats(c, group):
    for g in c.stats()["groups"]:
        if g["name"] == group:
            return g
    return None


def reserve_all(c, group, want):
    """The payloads of group's ready jobs, in the order the broker hands them out."""
    got = []
    while len(got) < want:
        jobs = c.request("reserve", worker="checker", max=10000)["jobs"]
        expect(jobs, "only %d of %d jobs could be reserved" % (len(got), want))
        got += [(j["id"], j["payload"]) for j in jobs if j["group"] == group]
    c.request("ack", ids=[i for i, _ in got], worker="checker")
    return got


# --- push ------------------------------------------------------------------------------------

def check_push():
    c = sluice.Client(timeout=5)
    first, n = c.push("py-one", "hello")
    expect(n == 1 and isinstance(first, int) and first > 0, "push gave %r" % ((first, n),))
    r = c.push("py-one", [b"\x00bin\xff", "caf\u00e9"], ttr_ms=5000, max_attempts=2)
    expect(r == (r.first_id, 2) and r.first_id == first + 1, "second push gave %r" % (r,))
    expect(r.batches == [(first + 1, 2)] and r.dup == 0, "batches %r dup %r" % (r.batches,
                                                                                 r.dup))
    g = group_stats(c, "py-one")
    expect(g is not None and g["count"] == 3, "stats shows %r" % g)
    got = [p for _, p in reserve_all(c, "py-one", 3)]
    expect(got == [b"hello", b"\x00bin\xff", "caf\u00e9".encode()], "payloads %r" % got)
    # Delayed: counted as delayed in its group, not ready.
    c.push("py-later", "soon", delay_ms=60000)
    c.push("py-later", "then", run_at_ms=int(time.time() * 1000) + 60000)
    g = group_stats(c, "py-later")
    expect(g is not None and g["delayed"] == 2 and g["ready"] == 0, "delayed push: %r" % g)
    # Unique: the second push with the key stores nothing and names the holder.
    u1 = c.push("py-uniq", "once", unique="py-key-1")
    u2 = c.push("py-uniq", "twice", unique="py-key-1")
    expect(not u1.duplicate and u1.count == 1, "unique push %r" % (u1,))
    expect(u2.duplicate and u2 == (u1.first_id, 0), "second unique push %r" % (u2,))
    g = group_stats(c, "py-uniq")
    expect(g is not None and g["count"] == 1, "one unique job held: %r" % g)


def check_batch(n, size):
    n, size = int(n), int(size)
    c = sluice.Client(timeout=30)
    payloads = [b"%0*d" % (size, i) for i in range(n)]
    r = c.push("py-batch", payloads)
    print("max_message %d: %d payloads of %d bytes in %d request(s)" % (
        c.max_message, n, size, len(r.batches)))
    expect(r.count == n, "count %d, want %d" % (r.count, n))
    if n * (size + 2) > c.max_message:
        expect(len(r.batches) > 1, "a list over max_message went in one request")
    for first, k in r.batches:
        expect(isinstance(first, int) and k > 0, "batch %r" % ((first, k),))
    expect(sum(k for _, k in r.batches) == n, "batches %r" % r.batches)
    got = reserve_all(c, "py-batch", n)
    expect([p for _, p in got] == payloads, "payloads out of order or changed")
    ids = [i for first, k in r.batches for i in range(first, first + k)]
    expect([i for i, _ in got] == ids, "ids are not the batches' ranges")


def check_too_large():
    c = sluice.Client(timeout=5)
    expect_error(lambda: c.push("py-big", b"x" * (c.max_message + 1)), sluice.Error,
                 "too_large", within=5)
    c.ping()  # the connection is still good: nothing was sent


def check_dup_key():
    """The same client and seq, sent twice: the second answer is the first one's ids."""
    c = sluice.Client(timeout=5)
    f = {"group": "py-dup", "payloads": [b"a", b"b"], "client": "py-dup-key", "seq": 7}
    a = c.request("push", f)
    b = c.request("push", f)
    expect(not a["dup"] and b["dup"], "dup flags %r %r" % (a, b))
    expect((a["first_id"], a["n"]) == (b["first_id"], b["n"]), "%r vs %r" % (a, b))
    expect(group_stats(c, "py-dup")["count"] == 2, "the resend was stored again")


class LosingProxy:
    """A Unix socket in front of the broker that forwards everything, except that on its
    first connection it reads the broker's reply to the request number `lose` and never
    delivers it: a reply lost after the broker stored the request. Then it closes that
    connection, or with hold=True keeps it open and silent (the client times out)."""

    def __init__(self, path, broker_path, lose=1, hold=False):
        self.path, self.broker_path, self.lose, self.hold = path, broker_path, lose, hold
        self.conns = 0
        self.lost = None
        self.held = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(4)
        threading.Thread(target=self.serve, daemon=True).start()

    @staticmethod
    def read(s, n):
        b = b""
        while len(b) < n:
            x = s.recv(n - len(b))
            if not x:
                raise EOFError
            b += x
        return b

    def frame(self, s):
        head = self.read(s, 9)
        return head + self.read(s, struct.unpack(">Q", head[1:])[0])

    def pump(self, a, b):
        try:
            while True:
                x = a.recv(65536)
                if not x:
                    break
                b.sendall(x)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve(self):
        while True:
            cl, _ = self.srv.accept()
            self.conns += 1
            br = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            br.connect(self.broker_path)
            if self.conns == 1:
                # One request at a time, as the client sends them; no threads, so no reader
                # is left behind on a closed descriptor.
                br.sendall(self.read(cl, 8))          # the client's handshake
                cl.sendall(self.read(br, 8))          # the broker's
                for i in range(1, self.lose + 1):
                    br.sendall(self.frame(cl))
                    reply = self.frame(br)
                    if i < self.lose:
                        cl.sendall(reply)
                self.lost = reply[9:]
                if self.hold:
                    self.held += [cl, br]
                else:
                    cl.close()
                    br.close()
            else:
                threading.Thread(target=self.pump, args=(cl, br), daemon=True).start()
                threading.Thread(target=self.pump, args=(br, cl), daemon=True).start()


def check_lost_reply():
    import msgpack
    d = os.environ["SLUICE_DIR"]
    proxy = LosingProxy(d + "/lossy.ipc", d + "/broker.ipc")
    c = sluice.Client("ipc://" + d + "/lossy.ipc", timeout=10)
    r = c.push("py-lost", ["one", "two", "three"])
    lost = msgpack.unpackb(proxy.lost[4:], raw=False)
    print("reply lost with the first connection: %r; after the resend: %r, dup %d, "
          "connections %d" % (lost, tuple(r), r.dup, proxy.conns))
    expect(proxy.conns == 2, "%d connections, want 2 (one lost, one resend)" % proxy.conns)
    expect(lost["ok"] and not lost["dup"], "the lost reply was %r" % lost)
    expect(tuple(r) == (lost["first_id"], 3) and r.dup == 3,
           "resend answered %r dup %d, want the lost reply's ids" % (tuple(r), r.dup))
    expect(group_stats(c, "py-lost")["count"] == 3, "jobs stored twice")
    r2 = c.push("py-lost", "four")  # the next push has a key of its own
    expect(r2.dup == 0 and r2.first_id > lost["first_id"] + 2, "next push %r" % (r2,))


def check_timeout_retry():
    """A split push whose second request's reply never comes: Timeout, with the first
    request's jobs in .pushed; pushing the same list again stores each job once, answering
    the first two requests with their original ids."""
    import msgpack
    d = os.environ["SLUICE_DIR"]
    # Requests on the first connection: the ping that learns max_message, then the pushes.
    proxy = LosingProxy(d + "/silent-reply.ipc", d + "/broker.ipc", lose=3, hold=True)
    c = sluice.Client("ipc://" + d + "/silent-reply.ipc", timeout=1)
    payloads = [b"%0100d" % i for i in range(1500)]
    e = expect_error(lambda: c.push("py-retry", payloads), sluice.Timeout, "timeout", within=3)
    lost = msgpack.unpackb(proxy.lost[4:], raw=False)
    expect(lost["ok"] and len(e.pushed.batches) == 1, "pushed before the timeout: %r, lost "
           "reply %r" % (e.pushed.batches, lost))
    r = c.push("py-retry", payloads)
    print("before the timeout %r, lost %r; the retry: %r dup %d" % (
        e.pushed.batches, lost, r.batches, r.dup))
    expect(len(r.batches) >= 3, "batches %r" % r.batches)
    expect(r.batches[0] == e.pushed.batches[0], "first request: %r, was %r" % (
        r.batches[0], e.pushed.batches[0]))
    expect(r.batches[1] == (lost["first_id"], lost["n"]), "second request: %r, was %r" % (
        r.batches[1], lost))
    expect(r.dup == e.pushed.count + lost["n"] and r.count == 1500, "dup %d count %d" % (
        r.dup, r.count))
    expect(group_stats(c, "py-retry")["count"] == 1500, "jobs stored twice")
    expect(c.push("py-retry", payloads[:1]).dup == 0, "another push was taken for a retry")


# --- sluice.Worker's frames ------------------------------------------------------------------

def check_worker_frames():
    """The pipe: frames both ways, through pipes: ack, fail with its delay capped, a job left
    unanswered acked when the next is asked for, a second answer refused, end of file."""
    import io
    import msgpack
    jobs = b""
    for i in (1, 2, 3):
        body = msgpack.packb({"id": i, "group": "g", "queue": "q", "attempt": i,
                              "payload": b"p%d" % i, "future": [1]}, use_bin_type=True)
        jobs += struct.pack(">I", len(body)) + body
    out = io.BytesIO()
    w = sluice.Worker(stdin=io.BytesIO(jobs), stdout=out)
    seen = []
    for job in w:
        seen.append((job.id, job.group, job.queue, job.attempt, job.payload))
        if job.id == 1:
            job.ack()
            expect_error(job.ack, sluice.Error, "bad_request")
        elif job.id == 2:
            job.fail(delay_ms=10 ** 9, msg="x" * 5000)
    expect(seen == [(i, "g", "q", i, b"p%d" % i) for i in (1, 2, 3)], "jobs %r" % seen)
    answers, b = [], out.getvalue()
    while b:
        (n,) = struct.unpack(">I", b[:4])
        answers.append(msgpack.unpackb(b[4:4 + n], raw=False))
        b = b[4 + n:]
    expect(answers[0] == {"id": 1, "ok": True}, "ack %r" % answers[0])
    expect(answers[1]["ok"] is False and answers[1]["delay_ms"] == 86400000 and
           len(answers[1]["msg"]) == 4096, "fail %r" % answers[1])
    expect(answers[2] == {"id": 3, "ok": True} and len(answers) == 3,
           "the unanswered job: %r" % answers[2:])


# --- token -----------------------------------------------------------------------------------

def check_token(path):
    c = sluice.Client(token_file=path, timeout=5)
    expect(c.push("py-token", "x").count == 1, "push with the token")


def check_wrong_token(path, good_path):
    c = sluice.Client(token_file=path or None, timeout=5)
    e = expect_error(lambda: c.push("py-token-wrong", "x"), sluice.Error, "unauthorized",
                     within=5)
    expect("token" in str(e), "the message does not speak of the token: %s" % e)
    good = sluice.Client(token_file=good_path, timeout=5)
    expect(group_stats(good, "py-token-wrong") is None, "a refused push stored something")


def check_token_file_refused(path):
    e = expect_error(lambda: sluice.Client(token_file=path), sluice.Error, "forbidden")
    expect("chmod 600" in str(e), "no hint: %s" % e)


# --- broker down -----------------------------------------------------------------------------

def check_down(url, within):
    c = sluice.Client(url or None, timeout=5)
    expect_error(c.ping, sluice.ConnectionError, "unreachable", within=float(within))
    expect_error(lambda: c.push("g", "x"), sluice.ConnectionError, "unreachable",
                 within=float(within))


def check_silent(path):
    """A socket that accepts and never answers: Timeout after the client's timeout."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    c = sluice.Client("ipc://" + path, timeout=1)
    e = expect_error(c.ping, sluice.Timeout, "timeout", within=3)
    expect(isinstance(e, TimeoutError), "sluice.Timeout is not a TimeoutError")


def check_dies(pid):
    """A client connected to a broker that then stops: the next request fails at once."""
    c = sluice.Client(timeout=10)
    c.push("py-dies", "x")
    os.kill(int(pid), 15)
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d" % int(pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    expect_error(lambda: c.push("py-dies", "y"), sluice.ConnectionError, "unreachable",
                 within=2)


def check_full():
    """A broker at its --max-connections (1) closes a new connection as it comes: the client
    tries again within its timeout, and gets in once the connection ahead of it closes."""
    path = os.environ["SLUICE_DIR"] + "/broker.ipc"
    # The hog holds the one connection once a ping on it is answered: a connection accepted
    # while the broker still counts one that just closed (the harness's start check) is
    # closed again, and then the hog tries anew.
    ping = b"\x80\x00\x00\x01" + msgpack.packb({"op": "ping"})
    deadline = time.monotonic() + 10
    while True:
        hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            hog.connect(path)
            hog.sendall(b"\x00SP\x00\x00\x30\x00\x00")
            LosingProxy.read(hog, 8)
            hog.sendall(b"\x01" + struct.pack(">Q", len(ping)) + ping)
            LosingProxy.read(hog, 9)
            break
        except (EOFError, OSError):
            hog.close()
            expect(time.monotonic() < deadline, "the broker never kept a connection")
            time.sleep(0.05)
    e = expect_error(sluice.Client(timeout=1).ping, sluice.ConnectionError, "unreachable",
                     within=3)
    expect("within 1 s" in str(e), "not tried for the whole timeout: %s" % e)
    threading.Timer(0.5, hog.close).start()
    t = time.monotonic()
    sluice.Client(timeout=10).ping()
    print("served %.2f s after asking, once the first connection closed"
          % (time.monotonic() - t))


# --- tcp -------------------------------------------------------------------------------------

def check_tcp(url):
    c = sluice.Client(url, timeout=5)
    expect(c.url == url, "url %r" % c.url)
    r = c.push("py-tcp", [b"t%d" % i for i in range(5000)])
    expect(r.count == 5000, "count %r" % (r,))
    g = group_stats(c, "py-tcp")
    expect(g["count"] == 5000, "stats %r" % g)


def check_default_dir():
    """The default address: a runtime directory open to others is refused, not used."""
    d = os.environ["SLUICE_DIR"] + "/opendir"
    os.mkdir(d, 0o700)
    os.chmod(d, 0o755)
    os.environ["SLUICE_DIR"] = d
    e = expect_error(sluice.Client, sluice.Error, "forbidden")
    expect("chmod 700" in str(e), "no hint: %s" % e)
    os.chmod(d, 0o750)  # a group may read it: refused too
    expect_error(sluice.Client, sluice.Error, "forbidden")
    os.chmod(d, 0o710)  # shared with a group by --socket-group: search only, taken
    expect(sluice.Client().url == "ipc://%s/broker.ipc" % d, "a 0710 directory refused")
    os.environ.pop("SLUICE_DIR")
    os.environ["XDG_RUNTIME_DIR"] = d
    os.chmod(d, 0o700)
    c = sluice.Client()
    expect(c.url == "ipc://%s/sluice/broker.ipc" % d, "url %r" % c.url)
    expect(os.stat(d + "/sluice").st_mode & 0o777 == 0o700, "runtime directory not made 0700")
    os.environ["SLUICE_URL"] = "tcp://127.0.0.1:1"
    expect(sluice.Client().url == "tcp://127.0.0.1:1", "SLUICE_URL not used")
    expect_error(lambda: sluice.Client("http://x"), sluice.Error, "bad_request")


# --- lists of brokers (a cluster), against fake standbys (tests/integ/py/fake_standby.py) ------

def check_list_parse():
    """A list: spaces around items dropped; an empty item, more than 8 or a bad address
    refused before anything is sent."""
    c = sluice.Client(" ipc:///x/a.ipc , tcp://127.0.0.1:1 ", timeout=1)
    expect(c.urls == ["ipc:///x/a.ipc", "tcp://127.0.0.1:1"], "urls %r" % c.urls)
    expect(c.url == "ipc:///x/a.ipc", "url %r" % c.url)
    for bad in (",", "ipc:///x/a.ipc,", ",ipc:///x/a.ipc", "ipc:///x/a.ipc,,ipc:///x/b.ipc",
                "ipc:///x/a.ipc, ,ipc:///x/b.ipc", ",".join(["ipc:///x/a.ipc"] * 9),
                "ipc:///x/a.ipc,http://y"):
        expect_error(lambda: sluice.Client(bad), sluice.Error, "bad_request")


def check_follow(standby, leader):
    """A standby first in the list names the leader: the push is done there."""
    c = sluice.Client(standby + "," + leader, timeout=5)
    r = c.push("py-follow", "a")
    expect(r.count == 1, "count %r" % (r,))
    expect(c.url == leader, "url %r, want %r" % (c.url, leader))
    c = sluice.Client(standby, timeout=5)  # the leader it names need not be in the list
    r = c.push("py-follow", "b")
    expect(r.count == 1 and c.url == leader, "count %r url %r" % (r, c.url))
    g = group_stats(sluice.Client(leader, timeout=5), "py-follow")
    expect(g is not None and g["pushed"] == 2, "stats %r" % g)


def check_no_leader(u1, u2):
    """Every broker answers leader_url "": not_leader once the timeout is spent."""
    c = sluice.Client(u1 + "," + u2, timeout=1.5)
    t = time.monotonic()
    expect_error(lambda: c.push("py-follow", "x"), sluice.Error, "not_leader", within=4)
    expect(time.monotonic() - t >= 1.0, "gave up after %.2f s of 1.5" % (time.monotonic() - t))


def check_lease(lease, leader):
    """A not_leader without leader_url (the router's lease) is final: raised at once, no
    other broker asked."""
    c = sluice.Client(lease + "," + leader, timeout=5)
    expect_error(lambda: c.push("py-lease", "x"), sluice.Error, "not_leader", within=1)
    expect(c.url == lease, "moved to %r" % c.url)
    expect(group_stats(sluice.Client(leader, timeout=5), "py-lease") is None,
           "the push reached the next broker")


def check_list_down(leader, tcp_free, silent, vanish):
    """Brokers of the list out of reach are passed over, also one that dies holding the
    request (vanish); none at all: ConnectionError at once when nobody listens anywhere."""
    d = os.environ["SLUICE_DIR"]
    for first in ("ipc://%s/nobody.ipc" % d, tcp_free, "ipc://" + silent, vanish):
        c = sluice.Client(first + "," + leader, timeout=8)
        t = time.monotonic()
        r = c.push("py-down", "x")
        expect(r.count == 1 and c.url == leader, "%s first: %r %r" % (first, r, c.url))
        expect(time.monotonic() - t < 5, "%s first: took %.2f s" % (first,
                                                                   time.monotonic() - t))
    c = sluice.Client("ipc://%s/nobody.ipc,%s" % (d, tcp_free), timeout=5)
    expect_error(c.ping, sluice.ConnectionError, "unreachable", within=1)


def main(argv):
    fn = globals().get("check_" + argv[1]) if len(argv) > 1 else None
    if fn is None:
        print("usage: client_checks.py CHECK [ARG...]", file=sys.stderr)
        return 2
    fn(*argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
