"""Lets the examples run from a sluice checkout without installing the client."""

import os
import sys

try:
    import sluice  # noqa: F401  (installed: pip install ./clients/python)
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "clients", "python"))
