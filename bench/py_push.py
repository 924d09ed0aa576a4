#!/usr/bin/python3
"""Push throughput and latency of the Python client (clients/python), for bench/run.

    py_push.py batch JOBS [BATCH]     one client pushes JOBS 16-byte jobs, BATCH per push
                                      (default 1000); prints "N jobs/s"
    py_push.py producers P SECONDS    P processes, each with its own client, push one job per
                                      call for SECONDS, as a web application's workers do;
                                      prints "N jobs/s p50 X us p99 Y us" (per push request)

The broker is the environment's ($SLUICE_URL, else the local one).
"""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                "python"))
import sluice  # noqa: E402

PAYLOAD = b"0123456789abcdef"


def batch(jobs, per=1000):
    c = sluice.Client(timeout=60)
    c.ping()  # connected, and the message limit known, before the clock starts
    payloads = [PAYLOAD] * per
    t0 = time.monotonic()
    left = jobs
    while left > 0:
        n = min(per, left)
        c.push("pybench", payloads if n == per else payloads[:n])
        left -= n
    dt = time.monotonic() - t0
    print("%d jobs/s" % (jobs / dt))


def producer(seconds, start_at, out_fd):
    c = sluice.Client(timeout=60)
    c.ping()
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    lat = []
    while True:
        t = time.perf_counter()
        if time.time() >= end:
            break
        c.push("pybench", PAYLOAD)
        lat.append(int((time.perf_counter() - t) * 1e6))
    data = struct.pack(">%dI" % len(lat), *lat)
    os.write(out_fd, struct.pack(">I", len(data)))
    while data:
        data = data[os.write(out_fd, data):]


def producers(p, seconds):
    start_at = time.time() + 0.5 + 0.02 * p  # every producer connected before it starts
    kids = []
    for _ in range(p):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                producer(seconds, start_at, w)
            finally:
                os._exit(0)
        os.close(w)
        kids.append((pid, r))
    lat = []
    for pid, r in kids:
        with os.fdopen(r, "rb") as f:
            (n,) = struct.unpack(">I", f.read(4))
            lat += struct.unpack(">%dI" % (n // 4), f.read(n))
        os.waitpid(pid, 0)
    lat.sort()
    if not lat:
        sys.exit("py_push: no push completed")
    print("%d jobs/s p50 %d us p99 %d us" % (len(lat) / seconds, lat[len(lat) // 2],
                                              lat[min(len(lat) - 1, len(lat) * 99 // 100)]))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "batch":
        batch(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
    elif len(sys.argv) == 4 and sys.argv[1] == "producers":
        producers(int(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit(__doc__)
