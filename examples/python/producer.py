#!/usr/bin/python3
"""A web-style producer: every HTTP request pushes one job, as a web application would.

    examples/python/producer.py 8080 &
    curl -d 'resize 1.jpg' http://127.0.0.1:8080/jobs/bob
    {"first_id": 1, "count": 1}

Each serving thread keeps its own sluice.Client (one connection to the broker, reused by
every request that thread serves), so requests never queue behind each other's pushes.
"""

import http.server
import json
import sys
import threading

import _path  # noqa: F401
import sluice

_local = threading.local()


def client():
    c = getattr(_local, "client", None)
    if c is None:
        c = _local.client = sluice.Client(timeout=5)
    return c


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "jobs":
            return self.reply(404, {"err": "not_found", "msg": "POST /jobs/GROUP"})
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            first_id, n = client().push(parts[1], [body])
        except sluice.Error as e:
            status = {"bad_request": 400, "unauthorized": 401, "too_large": 413,
                      "queue_full": 429}.get(e.code, 503)
            return self.reply(status, {"err": e.code, "msg": e.msg})
        self.reply(200, {"first_id": first_id, "count": n})

    def reply(self, status, doc):
        body = json.dumps(doc).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass  # one line per job would drown the terminal


def main(argv):
    port = int(argv[1]) if len(argv) > 1 else 8080
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening on http://127.0.0.1:%d/jobs/GROUP" % srv.server_address[1],
          file=sys.stderr)
    srv.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
