"""The exceptions of the sluice client.

Every failure is a sluice.Error, whose .code is one of the broker's error codes (PROTOCOL.md,
"Error codes": bad_request, unauthorized, queue_full, too_large, io, ...) or one of the
client's own: "unreachable" (sluice.ConnectionError) and "timeout" (sluice.Timeout).
"""

import builtins


class Error(Exception):
    """A request failed; .code says how, .msg says it for people."""

    def __init__(self, code, msg):
        super().__init__("%s: %s" % (code, msg))
        self.code = code
        self.msg = msg


class ConnectionError(Error, builtins.ConnectionError):
    """No broker could be reached at the address (not running, refused, connection lost)."""

    def __init__(self, msg):
        Error.__init__(self, "unreachable", msg)


class Timeout(Error, builtins.TimeoutError):
    """The broker did not answer within the client's timeout."""

    def __init__(self, msg):
        Error.__init__(self, "timeout", msg)
