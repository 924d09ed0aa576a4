#!/usr/bin/python3
"""A pipe: handler: run by a worker, it gets jobs on stdin and answers on stdout.

    worker-pool --handler 'pipe:/usr/bin/python3 examples/python/worker.py'

It logs each payload upper-cased (print() goes to the worker's log: sluice.Worker keeps
stdout for the answers). Two kinds of payload show the other outcomes on their first attempt,
and succeed on the next:
  "fail..."   the job fails; the worker nacks it and it runs again 100 ms later
  "crash..."  the process exits mid-job; the worker nacks the job and starts a new process
"""

import os

import _path  # noqa: F401
import sluice

for job in sluice.Worker():
    text = job.text
    if text.startswith("crash") and job.attempt == 1:
        print("job %d: crashing on purpose (attempt %d)" % (job.id, job.attempt), flush=True)
        os._exit(3)
    if text.startswith("fail") and job.attempt == 1:
        job.fail(delay_ms=100, msg="asked to fail (attempt %d)" % job.attempt)
        continue
    print("job %d (%s, attempt %d): %s" % (job.id, job.group, job.attempt, text.upper()),
          flush=True)
    job.ack()
