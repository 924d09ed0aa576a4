#!/usr/bin/python3
"""Push jobs from a script: one job per argument, or one per line of stdin.

    examples/python/push.py bob "resize 1.jpg" "resize 2.jpg"
    seq 1 100000 | examples/python/push.py bob

The broker is $SLUICE_URL, else the local one; $SLUICE_TOKEN_FILE gives the token.
A long list is sent in as many requests as the broker's message limit asks.
"""

import sys

import _path  # noqa: F401
import sluice


def main(argv):
    if len(argv) < 2:
        print("usage: push.py GROUP [PAYLOAD...]   (no payload: one per line of stdin)",
              file=sys.stderr)
        return 2
    group = argv[1]
    payloads = argv[2:] or [line.rstrip(b"\n") for line in sys.stdin.buffer]
    try:
        first_id, n = sluice.Client().push(group, payloads)
    except sluice.Error as e:
        print("push.py: %s" % e, file=sys.stderr)
        return 1
    print("pushed %d job(s) to %s, first id %s" % (n, group, first_id))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
