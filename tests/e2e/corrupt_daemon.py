"""A friend's daemon that sends a corrupt copy of every third chunk it serves, the first included (run as a
script by test_peers)."""

from __future__ import annotations

import sys

from client import sharing
from client.cli import main

honest_read = sharing.Library.read
served = 0


def lying_read(self: sharing.Library, sha256: str) -> bytes | None:
    global served
    data = honest_read(self, sha256)
    served += 1
    if data is None or served % 3 != 1:
        return data
    return bytes([data[0] ^ 0xFF]) + data[1:]


sharing.Library.read = lying_read  # type: ignore[method-assign]
sys.exit(main(["daemon", "--port", "0"]))
