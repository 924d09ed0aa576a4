"""sluice: push jobs to a sluice broker and work them, from Python.

    import sluice
    c = sluice.Client()                      # $SLUICE_URL, else the local broker's socket
    first_id, n = c.push("bob", ["job 1", "job 2"])
    print(c.stats()["broker"]["jobs"])

    for job in sluice.Worker():              # run by: worker-pool --handler 'pipe:python3 w.py'
        print(job.payload, file=sys.stderr)
        job.ack()

Standard library and msgpack (Debian: python3-msgpack) only. The protocol is PROTOCOL.md's.
"""

from .client import Client, Pushed
from .errors import ConnectionError, Error, Timeout
from .worker import Job, Worker

__all__ = ["Client", "Pushed", "Worker", "Job", "Error", "ConnectionError", "Timeout"]
__version__ = "0.1.0"
